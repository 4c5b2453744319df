"""Statistical disclosure control for published tables.

NHS small-number rules: no published table may show a count between 1 and 7. Such
cells are replaced by a marker (``*``) and the table carries a footnote saying why.
Zero is not disclosive and stays; missing values stay missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from vanguard.errors import DataError

SMALL_MIN = 1
SMALL_MAX = 7
"""Counts in ``[SMALL_MIN, SMALL_MAX]`` are suppressed."""

MARKER = "*"
FOOTNOTE = (
    f"{MARKER} Suppressed: a count between {SMALL_MIN} and {SMALL_MAX} is not published "
    "(statistical disclosure control)."
)


def is_small(value: object) -> bool:
    """Whether a count falls in the suppressed range.

    Parameters
    ----------
    value : object
        A number (int, float, numpy scalar) or anything else.

    Returns
    -------
    bool
        True for a finite number ``v`` with ``SMALL_MIN <= v <= SMALL_MAX``.
    """
    if isinstance(value, bool) or value is None or value is pd.NA:
        return False
    if not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(math.isfinite(float(value)) and SMALL_MIN <= float(value) <= SMALL_MAX)


def apply_sdc(
    table: pd.DataFrame, count_columns: Sequence[str], *, source: str = "table"
) -> tuple[pd.DataFrame, bool]:
    """Suppress small counts in the named columns.

    Parameters
    ----------
    table : pandas.DataFrame
        The table to publish. It is not modified.
    count_columns : sequence of str
        Columns holding counts (non-negative whole numbers or missing).
    source : str
        Name of the table, used in error messages.

    Returns
    -------
    (pandas.DataFrame, bool)
        A copy in which the count columns are object columns holding ``int``, ``None``
        (missing) or :data:`MARKER`; and whether any cell was suppressed (the caller
        then prints :data:`FOOTNOTE`).

    Raises
    ------
    DataError
        If a count column is missing, or holds a negative, fractional or non-numeric value.
    """
    out = table.copy()
    suppressed = False
    for col in count_columns:
        if col not in out.columns:
            raise DataError(source, f"a count column {col!r}", column=col,
                            found=list(out.columns))
        values: list[object] = []
        for i, v in enumerate(out[col].tolist()):
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                values.append(None)
                continue
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise DataError(source, "a non-negative whole-number count", row=i + 2,
                                column=col, found=v) from None
            if f < 0 or not f.is_integer():
                raise DataError(source, "a non-negative whole-number count", row=i + 2,
                                column=col, found=v)
            if is_small(f):
                values.append(MARKER)
                suppressed = True
            else:
                values.append(int(f))
        out[col] = pd.Series(values, index=out.index, dtype=object)
    return out, suppressed


_CELL_NUMBER = re.compile(r"^\s*(-?\d[\d,]*)\s*$")


def small_counts_in_cells(cells: Iterable[str]) -> list[str]:
    """Find table cells that show a bare whole number in the suppressed range.

    Used to audit rendered tables: a cell whose whole text is a whole number between
    :data:`SMALL_MIN` and :data:`SMALL_MAX` is a disclosure breach. Estimates (with a
    decimal point or a sign and interval) are not counts and are ignored.

    Parameters
    ----------
    cells : iterable of str
        Text of each table cell.

    Returns
    -------
    list of str
        The offending cells (empty when the tables are safe).
    """
    bad = []
    for cell in cells:
        m = _CELL_NUMBER.match(cell)
        if m and is_small(int(m.group(1).replace(",", ""))):
            bad.append(cell)
    return bad
