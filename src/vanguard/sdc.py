"""Statistical disclosure control for published tables.

NHS small-number rules: no published table may show a count **of people or events**
(admissions, attendances, referrals, residents) between 1 and 7. Such cells are replaced
by a marker (``*``) and the table carries a footnote saying why. Zero is not disclosive
and stays; missing values stay missing. Counts of areas, sites or area-months
(:data:`AREA_COUNT_COLUMNS`) describe the design, not people, and are never suppressed.

The same rule (:func:`is_small`) applies to every published file: the report (HTML and
PDF are rendered from one content model, which shows no counts of people), the CSV files
of ``results/``, ``tables/`` and ``figures/``, and the panel copied into the run
(:func:`publish_run_panel`); :func:`audit_run` checks them all before a report is
published.
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


AREA_COUNT_COLUMNS: frozenset[str] = frozenset({
    "n_treated", "n_control", "n_obs", "n_areas", "n_months", "n", "n_sites"})
"""Columns that count areas, sites, months or area-months: never suppressed."""

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


# --- the panel copied into a run folder ------------------------------------------------

PUBLISHED_ATTR = "disclosure_control"
"""Key of the panel's ``attrs`` (kept in the parquet metadata) saying what was done."""

NOT_COUNTS: frozenset[str] = frozenset({"area", "month", "group", "start", "site"})
"""Panel columns that are never counts of people or events (keys and design)."""


def panel_count_columns(panel: pd.DataFrame) -> list[str]:
    """Columns of a panel that hold counts of people or events.

    Every numeric column outside :data:`NOT_COUNTS` whose values are all non-negative
    whole numbers (or missing): the outcomes and the population. A column with a
    fraction in it (a rate, a share) is not a count and is left as it is.

    Parameters
    ----------
    panel : pandas.DataFrame

    Returns
    -------
    list of str
        In the panel's column order.
    """
    out = []
    for col in panel.columns:
        if col in NOT_COUNTS or not pd.api.types.is_numeric_dtype(panel[col]):
            continue
        if pd.api.types.is_bool_dtype(panel[col]):
            continue
        values = pd.to_numeric(panel[col], errors="coerce").dropna().to_numpy(dtype=float)
        if values.size and np.all(np.isfinite(values)) and np.all(values >= 0) and np.all(
            values == np.floor(values)
        ):
            out.append(col)
    return out


def suppress_panel(panel: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A copy of a panel fit to publish: counts between 1 and 7 blanked and flagged.

    The rule is :func:`is_small`, as for every published table. A suppressed cell
    becomes missing (parquet has no room for the :data:`MARKER` in a number column) and
    a boolean column ``<column>_suppressed`` says which missing values were suppressed
    rather than missing in the source. ``attrs`` keep only :data:`PUBLISHED_ATTR` (the
    footnote) and ``data_source``: the source path is a detail of the machine it ran on.

    Parameters
    ----------
    panel : pandas.DataFrame
        Not modified.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The copy, and the count columns in which something was suppressed.
    """
    out = panel.copy()
    touched = []
    for col in panel_count_columns(panel):
        small = panel[col].map(is_small).astype(bool)
        if not small.any():
            continue
        touched.append(col)
        values = panel[col]
        if pd.api.types.is_integer_dtype(values):
            values = values.astype("Int64")
        out[col] = values.mask(small)
        out[f"{col}_suppressed"] = small.to_numpy()
    note = FOOTNOTE if touched else (
        f"Checked for counts between {SMALL_MIN} and {SMALL_MAX}; none found.")
    out.attrs = {k: v for k, v in panel.attrs.items() if k == "data_source"}
    out.attrs[PUBLISHED_ATTR] = note
    return out, touched


def publish_run_panel(path, *, full: bool) -> str | None:
    """Make the panel of a run folder safe to publish, in place and atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        ``reports/<run>/data/panel.parquet`` (the analysis input notebook 01 wrote).
    full : bool
        Keep the full panel: only for public data whose parameter set says
        ``publish_panel: true``.

    Returns
    -------
    str or None
        ``"full"``, ``"disclosure-controlled"``, or None when there is no panel.

    Raises
    ------
    OSError
        If the file cannot be read or replaced.
    """
    from pathlib import Path

    from vanguard.io import write_parquet

    path = Path(path)
    if not path.is_file():
        return None
    if full:
        return "full"
    panel = pd.read_parquet(path)
    if PUBLISHED_ATTR in panel.attrs:  # already done (the runner may call this twice)
        return "disclosure-controlled"
    safe, _ = suppress_panel(panel)
    write_parquet(path, safe)
    return "disclosure-controlled"


def audit_run(run_path, count_columns: Sequence[str] | None = None) -> list[str]:
    """Every published cell of a run that shows a count of people or events from 1 to 7.

    Parameters
    ----------
    run_path : str or pathlib.Path
        The run folder.
    count_columns : sequence of str, optional
        Names of columns that count people or events. Default: the count columns of the
        run's ``data/panel.parquet`` (:func:`panel_count_columns`: the outcomes and the
        population), or none when the run has no panel. :data:`AREA_COUNT_COLUMNS` are
        never treated as such.

    Returns
    -------
    list of str
        ``"<file>: row <r>, column '<c>': <value>"`` (header = row 1), one per breach;
        empty when the run is safe to publish. A panel the run marks as published in
        full (public data, ``panel_published: full`` in the manifest) is not audited.
    """
    import json
    from pathlib import Path

    run_path = Path(run_path)
    panel_path = run_path / "data" / "panel.parquet"
    manifest = run_path / "manifest.json"
    full = False
    if manifest.is_file():
        try:
            full = json.loads(manifest.read_text(encoding="utf-8")).get(
                "panel_published") == "full"
        except (json.JSONDecodeError, AttributeError):
            full = False
    panel = pd.read_parquet(panel_path) if panel_path.is_file() else None
    if count_columns is None:
        count_columns = panel_count_columns(panel) if panel is not None else []
    counts = [c for c in count_columns if c not in AREA_COUNT_COLUMNS]
    breaches: list[str] = []

    def scan(name: str, df: pd.DataFrame) -> None:
        for col in counts:
            if col not in df.columns:
                continue
            values = pd.to_numeric(df[col], errors="coerce")
            for i in np.flatnonzero(values.map(is_small).to_numpy(dtype=bool)):
                breaches.append(f"{name}: row {int(i) + 2}, column {col!r}: {df[col].iloc[i]}")

    if panel is not None and not full:
        scan(str(panel_path.relative_to(run_path)), panel)
    for folder in ("results", "tables", "figures"):
        for path in sorted((run_path / folder).glob("*.csv")):
            scan(str(path.relative_to(run_path)), pd.read_csv(path, low_memory=False))
    return breaches
