"""The area-month panel contract, and loading a panel from any supported source.

Every estimator reads the panel described in :mod:`vanguard.schema`: one row per area x
month, non-negative outcome counts, and the area's vanguard ``group``, ``start`` and
``site``. This module enforces that contract (one pandera schema plus the checks a
schema cannot express: no gaps in an area's months, treatment constant within an area)
and turns every violation into a :class:`~vanguard.errors.DataError` that names the
file, the row (header = row 1) and the column, and says what was expected.

Sources
-------
``synthetic``
    The committed SYNTHETIC England in ``data/raw/synthetic/`` (see
    :mod:`vanguard.synthetic`); treatment from its synthetic site register.
``custom``
    A researcher's own tidy area-month CSV or parquet file (columns ``area``, ``month``,
    optional ``population``, outcome counts) plus a site register in the project's
    format; or a file that already carries ``group``, ``start`` and ``site``.
``nhs_mar``
    The NHS England Monthly Activity Return panel from :func:`vanguard.mar.build_panel`,
    with treatment from the real site register.

Raw files are only ever read.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import importlib
import inspect
import io
import re
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors as pa_errors
import pandera.pandas as pa

from vanguard import config, schema
from vanguard.errors import DataError, DataWarning

SOURCES: tuple[str, ...] = ("synthetic", "custom", "nhs_mar")
TREATMENT_COLUMNS: tuple[str, ...] = (schema.GROUP, schema.START, schema.SITE)
CORE_COLUMNS: tuple[str, ...] = (schema.AREA, schema.MONTH, schema.POPULATION, *TREATMENT_COLUMNS)


def _plain(value):
    """A numpy scalar as the Python value, so messages read ``-4`` not ``np.int64(-4)``."""
    return value.item() if isinstance(value, np.generic) else value


def _row(index_label) -> int | None:
    """File row of a positional index: the header is row 1, so data row 0 is row 2."""
    try:
        return int(index_label) + 2
    except (TypeError, ValueError):
        return None


# --- the schema ------------------------------------------------------------------------


def panel_schema(outcomes: Sequence[str], *, treatment: bool = True) -> pa.DataFrameSchema:
    """The pandera schema of the analysis panel.

    Parameters
    ----------
    outcomes : sequence of str
        Outcome columns: numeric, non-negative, no missing values.
    treatment : bool
        Whether ``group``, ``start`` and ``site`` are required.

    Returns
    -------
    pandera.pandas.DataFrameSchema
    """
    first_of_month = pa.Check(lambda s: s.dt.day == 1, error="the first day of a month")
    cols = {
        schema.AREA: pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        schema.MONTH: pa.Column("datetime64[ns]", first_of_month, nullable=False),
        schema.POPULATION: pa.Column(float, pa.Check.gt(0), nullable=False, required=False),
    }
    for o in outcomes:
        cols[o] = pa.Column(None, pa.Check.ge(0), nullable=False)
    if treatment:
        cols[schema.GROUP] = pa.Column(
            str, pa.Check.str_matches(schema.GROUP_LABEL_PATTERN), nullable=False)
        cols[schema.START] = pa.Column("datetime64[ns]", nullable=True)
        cols[schema.SITE] = pa.Column(str, nullable=False)
    return pa.DataFrameSchema(
        cols, unique=[schema.AREA, schema.MONTH], strict=False, name="area-month panel"
    )


_CHECK_WORDS = {
    "greater_than_or_equal_to(0)": "a non-negative number",
    "greater_than(0)": "a positive number",
    "not_nullable": "a value (no missing values)",
    "str_length(1, None)": "a non-empty area code",
    "field_uniqueness": "one row per area and month",
    "multiple_fields_uniqueness": "one row per area and month",
}


def _expected_from_check(check: str, column: str | None) -> str:
    check = str(check)
    if check in _CHECK_WORDS:
        return _CHECK_WORDS[check]
    if check.startswith("str_matches"):
        return (
            "a treatment group name (a letter, then letters, digits or _), several joined "
            f"by '{schema.GROUP_SEPARATOR}', or 'control' (vanguard groups: "
            f"{', '.join(schema.GROUPS)})"
        )
    if check.startswith("dtype"):
        return f"column type {check[len('dtype(') : -1]}"
    if column == schema.MONTH:
        return "the first day of a month"
    return check


def _raise_pandera(err: pa_errors.SchemaErrors, file) -> None:
    cases = err.failure_cases.copy()
    cases["_row"] = [_row(i) for i in cases["index"]]
    cases = cases.sort_values("_row", na_position="first", kind="stable")
    first = cases.iloc[0]
    column = first["column"] if isinstance(first["column"], str) else None
    if column in (None, "area-month panel"):
        column = None
    expected = _expected_from_check(first["check"], column)
    row = first["_row"]
    found = first["failure_case"]
    if expected == "one row per area and month":
        column = None
    if pd.isna(row):
        row = None
    if found is not None and np.ndim(found) == 0 and pd.isna(found):
        found = None
    raise DataError(file, expected, row=row, column=column, found=_plain(found)) from err


# --- reading files ----------------------------------------------------------------------


MAX_VALUE = 1e12
"""Largest count or population accepted: a value above it is a unit or typing error, and
values near float limits break the demeaning in the estimators later, far from the file."""

_COMPRESSED = {
    b"BZh": "bzip2-compressed",
    b"\xfd7zXZ\x00": "xz-compressed",
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
}
_SAVE_AS_CSV = "save it as CSV (UTF-8, comma-separated) and give that file"


def _zip_kind(path: Path) -> str:
    """What a zip container holds: spreadsheets are zip files too."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        return "a damaged zip archive"
    if any(n.startswith("xl/") for n in names):
        return "an Excel workbook (.xlsx)"
    if "content.xml" in names:
        return "an OpenDocument spreadsheet (.ods)"
    return "a zip archive"


def _refuse_binary(path: Path, raw: bytes, expected: str = "a CSV or parquet file") -> None:
    """Raise a DataError naming the format when ``raw`` is a container pandas would
    otherwise report as a codec or tokenizer error."""
    if raw.startswith(b"PK\x03\x04"):
        kind = _zip_kind(path)
        what = "extract the CSV from it" if kind.startswith(("a zip", "a damaged")) else None
        raise DataError(path, expected, found=f"this is {kind}; {what or _SAVE_AS_CSV}")
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise DataError(
            path, expected, found=f"this is an Excel 97-2003 workbook (.xls); {_SAVE_AS_CSV}"
        )
    for magic, kind in _COMPRESSED.items():
        if raw.startswith(magic):
            raise DataError(path, expected, found=f"this is {kind}; decompress it first")
    if raw.startswith(b"%PDF"):
        raise DataError(path, expected, found="this is a PDF document")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            path,
            "UTF-8 encoded text",
            row=1,
            found="UTF-16 text (a byte-order mark); save it as 'CSV UTF-8'",
        )


def _decompress(path: Path, raw: bytes) -> bytes:
    """The content of a gzip file (``.csv.gz``); other bytes unchanged."""
    if not raw.startswith(b"\x1f\x8b"):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            path, "a complete gzip-compressed CSV", found=f"a damaged gzip file ({exc})"
        ) from exc


def read_table(path: str | Path, *, csv_only: bool = False) -> pd.DataFrame:
    """Read a CSV (UTF-8, comma-separated) or parquet file with every CSV field as text.

    The format is taken from the file's content, not its name: a gzip-compressed CSV is
    read, a parquet file is read as parquet, and spreadsheets, other archives and binary
    files are refused with a message naming what the file is.

    Parameters
    ----------
    path : str or pathlib.Path
    csv_only : bool
        Refuse parquet (the site register is CSV only).

    Returns
    -------
    pandas.DataFrame
        CSV fields as strings (empty fields as ``""``), positional index; row ``i`` of
        the frame is row ``i + 2`` of the file (header = row 1). Column names are
        stripped of surrounding spaces.

    Raises
    ------
    DataError
        If the file is missing, empty, a spreadsheet, archive or other binary file, not
        UTF-8, not comma-separated, has a line with more or fewer fields than the
        header, an empty line between data rows, an empty or repeated column name, or
        no data rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "an existing file", found="no such file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, "a readable file", found=exc.strerror or str(exc)) from exc
    expected = "a CSV file" if csv_only else "a CSV or parquet file"
    _refuse_binary(path, raw, expected)
    raw = _decompress(path, raw)
    _refuse_binary(path, raw, expected)
    if raw.startswith(b"PAR1"):
        if csv_only:
            raise DataError(path, "a CSV file", found="a parquet file")
        return _read_parquet(path)
    if not raw.strip():
        raise DataError(path, "a CSV file with a header row and data rows", found="empty file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            path,
            "UTF-8 encoded text (save the file as 'CSV UTF-8')",
            row=line,
            found=raw[exc.start : exc.start + 4],
        ) from exc
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(path, "a text CSV file", row=line, found="binary data (NUL bytes)")
    header = text.splitlines()[0]
    if "," not in header:
        for delim in (";", "\t", "|"):
            if delim in header:
                raise DataError(
                    path, "comma-separated columns", row=1, found=f"columns separated by {delim!r}"
                )
    return _frame_from_records(path, _csv_records(path, text))


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(path, "a readable parquet file", found=str(exc)) from exc
    # Checked on the schema: pyarrow's own error for a repeated name is a query-plan dump.
    _check_header(path, [str(n).strip() for n in names])
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(path, "a readable parquet file", found=str(exc)) from exc
    if df.empty:
        raise DataError(path, "at least one data row", found="no rows")
    df.columns = [str(c).strip() for c in df.columns]
    _check_header(path, list(df.columns))
    return df.reset_index(drop=True)


def _csv_records(path: Path, text: str) -> list[list[str]]:
    """Records of a CSV text; blank lines at the end are dropped, others refused."""
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DataError(path, "a well-formed CSV file", found=str(exc)) from exc
    while records and not records[-1]:
        records.pop()
    # A spreadsheet counts an empty line as a row; skipping it, as pandas does, would
    # shift every later row number in our messages.
    for i, rec in enumerate(records):
        if not rec:
            raise DataError(
                path,
                "a header in row 1" if i == 0 else "a data row (no empty lines)",
                row=i + 1,
                found="an empty line",
            )
    return records


def _frame_from_records(path: Path, records: list[list[str]]) -> pd.DataFrame:
    header = [name.strip() for name in records[0]]
    _check_header(path, header)
    n = len(header)
    for i, rec in enumerate(records[1:], start=2):
        if len(rec) != n:
            raise DataError(
                path,
                f"{n} fields, as in the header row",
                row=i,
                found=f"{len(rec)} field" + ("" if len(rec) == 1 else "s"),
                note="a stray comma or an unquoted field containing a comma?"
                if len(rec) > n
                else None,
            )
    if len(records) < 2:
        raise DataError(path, "at least one data row", row=2, found="only a header")
    return pd.DataFrame(records[1:], columns=header, dtype=str)


def _check_header(path, header: list[str]) -> None:
    """Refuse empty and repeated column names (pandas would rename them silently)."""
    seen: dict[str, int] = {}
    for j, name in enumerate(header, start=1):
        if name == "":
            raise DataError(
                path, "a name for every column", row=1, found=f"an empty name in column {j}"
            )
        if name in seen:
            raise DataError(
                path,
                "each column name once",
                row=1,
                column=name,
                found=f"{name!r} in columns {seen[name]} and {j}",
            )
        seen[name] = j


def _close_match(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``name`` looks like a misspelling of, if any."""
    lower = {str(c).lower(): str(c) for c in candidates}
    hit = difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.75)
    return lower[hit[0]] if hit else None


def _missing_column(file, col: str, columns, expected: str | None = None) -> DataError:
    """A DataError for a required column that is absent, naming a likely misspelling."""
    columns = [str(c) for c in columns]
    near = _close_match(col, columns)
    return DataError(
        file,
        expected or f"a column named {col!r}",
        row=1,
        column=col,
        found=columns,
        note=f"is {near!r} a misspelling of {col!r}?" if near else None,
    )


def _parse_month(values: pd.Series, file, column: str) -> pd.Series:
    """Months from ``YYYY-MM`` or ``YYYY-MM-01`` text (or datetimes), as month starts.

    Time-zone-aware datetimes (parquet) keep their wall-clock date in their own zone:
    ``2015-04-01 00:00+01:00`` is April 2015, whereas converting to UTC first would
    make it 31 March.

    Raises
    ------
    DataError
        At the first value that is not a month start (the first day of a month, at
        midnight), naming file, row and column.
    """
    tz_note = None
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        tz_note = (
            f"time-zone-aware months are read as wall-clock dates in {values.dt.tz}; "
            "store months as dates or YYYY-MM text"
        )
        out = values.dt.tz_localize(None).astype("datetime64[ns]")
    elif pd.api.types.is_datetime64_any_dtype(values):
        out = values.astype("datetime64[ns]")
    else:
        text = values.astype("string").str.strip()
        out = pd.to_datetime(text, format="%Y-%m", errors="coerce")
        full = out.isna()
        out[full] = pd.to_datetime(text[full], format="%Y-%m-%d", errors="coerce")
        bad = out.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                file,
                "a month as YYYY-MM or YYYY-MM-01",
                row=i + 2,
                column=column,
                found=_plain(values.iloc[i]),
            )
        out = out.astype("datetime64[ns]")
    # A time of day would make two rows of one month look like different months.
    bad = out.isna() | (out.dt.day != 1) | (out != out.dt.normalize())
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        value = values.iloc[i]
        raise DataError(
            file,
            "the first day of a month (at midnight)",
            row=i + 2,
            column=column,
            found=str(value) if isinstance(value, pd.Timestamp) else _plain(value),
            note=tz_note,
        )
    return out


_NAN_WORDS = frozenset({"nan", "-nan", "+nan"})
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d*)?$")


def _parse_number(values: pd.Series, file, column: str) -> pd.Series:
    """Finite numbers no larger than :data:`MAX_VALUE` from text or a numeric column.

    Raises
    ------
    DataError
        At the first value that is not a number, is missing, is ``inf`` or ``nan``, or
        exceeds :data:`MAX_VALUE`, naming file, row and column.
    """
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:
        # Nullable integer columns (parquet) hold pd.NA, which plain numpy cannot convert.
        out = pd.Series(values.to_numpy(dtype=float, na_value=np.nan), index=values.index)
        missing = out.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise DataError(
                file, "a number (no missing values)", row=i + 2, column=column, found="NaN"
            )
    else:
        text = values.astype("string").str.strip().fillna("")
        out = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
        bad = (out.isna() & text.ne("")).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            word = "a finite number" if text.iloc[i].lower() in _NAN_WORDS else "a number"
            note = "without thousands separators" if _THOUSANDS.match(text.iloc[i]) else None
            raise DataError(
                file, word, row=i + 2, column=column, found=_plain(values.iloc[i]), note=note
            )
        missing = out.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise DataError(
                file, "a number (no missing values)", row=i + 2, column=column, found=""
            )
        out = pd.Series(np.asarray(out, dtype=float), index=values.index)
    x = out.to_numpy()
    # pyfixest drops non-finite rows without a word, which would change the sample.
    infinite = ~np.isfinite(x)
    if infinite.any():
        i = int(np.flatnonzero(infinite)[0])
        raise DataError(
            file, "a finite number", row=i + 2, column=column, found=_plain(values.iloc[i])
        )
    huge = np.abs(x) > MAX_VALUE
    if huge.any():
        i = int(np.flatnonzero(huge)[0])
        raise DataError(
            file,
            f"a value no larger than {MAX_VALUE:,.0f} (10^12)",
            row=i + 2,
            column=column,
            found=_plain(values.iloc[i]),
        )
    out.name = column
    # Whole-number counts stay integers so files and sums are exact (every value up to
    # MAX_VALUE is exact in a float, so the conversion loses nothing).
    if np.all(np.mod(x, 1) == 0):
        return out.astype(np.int64)
    return out


def _outcome_columns(df: pd.DataFrame, outcomes, file, treatment: bool) -> list[str]:
    """Outcome columns: those asked for, or every column that is not a core column.

    Warns
    -----
    DataWarning
        For each would-be outcome whose name is close to a core column's
        (``populaton``), since it would otherwise become an outcome without a word.
    """
    if outcomes is None:
        outs = [c for c in df.columns if c not in CORE_COLUMNS]
        if not outs:
            raise DataError(
                file,
                f"at least one outcome column besides {', '.join(CORE_COLUMNS)}",
                row=1,
                found=list(df.columns),
            )
        absent = [c for c in CORE_COLUMNS if c not in df.columns]
        for o in outs:
            near = _close_match(o, absent)
            if near:
                warnings.warn(
                    f"{file}: column {o!r} looks like a misspelling of {near!r}; it is "
                    f"read as an outcome. Rename it to {near!r}, or pass outcomes= to "
                    "choose the outcome columns.",
                    DataWarning,
                    stacklevel=5,
                )
        return outs
    outs = list(outcomes)
    for o in outs:
        if o not in df.columns:
            raise _missing_column(file, o, df.columns)
    return outs


def _coerce(df: pd.DataFrame, file, outcomes, treatment: bool) -> tuple[pd.DataFrame, list]:
    """Types of a raw frame, raising with the row of the first bad value."""
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise DataError(
            file, "each column name once", row=1, column=str(dup[0]), found=list(df.columns)
        )
    for col in (schema.AREA, schema.MONTH, *(TREATMENT_COLUMNS if treatment else ())):
        if col not in df.columns:
            raise _missing_column(file, col, df.columns)
    outs = _outcome_columns(df, outcomes, file, treatment)
    front = [c for c in (schema.AREA, schema.MONTH, schema.POPULATION) if c in df.columns]
    keep = front + outs + (list(TREATMENT_COLUMNS) if treatment else [])
    df = df[list(dict.fromkeys(keep))].reset_index(drop=True).copy()
    missing_area = np.flatnonzero(pd.isna(df[schema.AREA]).to_numpy())
    if missing_area.size:
        raise DataError(
            file, "an area code", row=int(missing_area[0]) + 2, column=schema.AREA, found=""
        )
    df[schema.AREA] = df[schema.AREA].astype(str).str.strip()
    df[schema.MONTH] = _parse_month(df[schema.MONTH], file, schema.MONTH)
    if schema.POPULATION in df.columns:
        df[schema.POPULATION] = _parse_number(
            df[schema.POPULATION], file, schema.POPULATION
        ).astype(float)
    for o in outs:
        try:
            df[o] = _parse_number(df[o], file, o)
        except DataError as err:
            numbers = pd.to_numeric(df[o].astype("string").str.strip(), errors="coerce")
            if outcomes is not None or err.note or numbers.notna().any():
                raise
            # Every column that is not a core column is taken for an outcome, so a text
            # column (notes, names) without a single number fails here; say how to leave
            # it out.
            raise DataError(
                err.file,
                err.expected,
                row=err.row,
                column=err.column,
                found=err.found,
                note=f"every column besides {', '.join(CORE_COLUMNS)} is read as an outcome "
                "count; pass outcomes= to choose them",
            ) from err
    if treatment:
        df[schema.GROUP] = df[schema.GROUP].astype(str).str.strip()
        df[schema.SITE] = df[schema.SITE].fillna("").astype(str).str.strip()
        start = df[schema.START]
        if isinstance(start.dtype, pd.DatetimeTZDtype):
            start = start.dt.tz_localize(None)
        if not pd.api.types.is_datetime64_any_dtype(start):
            text = start.astype("string").fillna("").str.strip()
            present = text.ne("") & text.str.lower().ne("nat")
            parsed = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
            if present.any():
                parsed[present] = _parse_month(text.where(present, "2000-01"), file, schema.START)[
                    present
                ]
            start = parsed
        df[schema.START] = start.astype("datetime64[ns]")
    return df, outs


# --- validation ------------------------------------------------------------------------


def validate_panel(
    df: pd.DataFrame,
    file: str | Path = "panel",
    *,
    outcomes: Sequence[str] | None = None,
    treatment: bool = True,
) -> pd.DataFrame:
    """Check a panel against the contract and return it typed and sorted.

    Rows are reported as in a CSV written from ``df`` (header row 1, first row 2).

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``area``, ``month``, optional ``population``, outcomes and (when
        ``treatment``) ``group``, ``start``, ``site``. Months may be datetimes or
        ``YYYY-MM`` text.
    file : str or pathlib.Path
        Name used in error messages.
    outcomes : sequence of str, optional
        Outcome columns; default every column not in :data:`CORE_COLUMNS`. Columns
        that are neither core nor listed are left out of the result.
    treatment : bool
        Whether treatment columns are required and checked.

    Returns
    -------
    pandas.DataFrame
        Columns area, month, [population], outcomes, [group, start, site]; sorted by
        area and month; ``attrs`` kept.

    Raises
    ------
    DataError
        On any violation: missing column, non-numeric, missing or negative value,
        unparseable month, duplicate area-month, a gap in an area's months, an unknown
        group, treatment not constant within an area, a start outside the data's months
        or a treated area without a start.
    """
    attrs = dict(df.attrs)
    out, outs = _coerce(df, file, outcomes, treatment)
    _check_duplicates(out, file)
    try:
        panel_schema(outs, treatment=treatment).validate(out, lazy=True)
    except pa_errors.SchemaErrors as err:
        _raise_pandera(err, file)
    _check_months(out, file)
    if treatment:
        _check_treatment(out, file)
    out = out.sort_values([schema.AREA, schema.MONTH], kind="stable").reset_index(drop=True)
    out.attrs.update(attrs)
    return out


def _check_duplicates(df: pd.DataFrame, file) -> None:
    key = [schema.AREA, schema.MONTH]
    dup = df.duplicated(key, keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        area, month = df[schema.AREA].iloc[i], df[schema.MONTH].iloc[i]
        same = (df[schema.AREA] == area) & (df[schema.MONTH] == month)
        first = int(np.flatnonzero(same.to_numpy())[0])
        raise DataError(
            file,
            "one row per area and month",
            row=i + 2,
            found=f"area {area!r}, month {month:%Y-%m} again (first on row {first + 2})",
        )


def _check_months(df: pd.DataFrame, file) -> None:
    ym = df[schema.MONTH].dt.year * 12 + df[schema.MONTH].dt.month
    order = np.lexsort((ym.to_numpy(), df[schema.AREA].to_numpy()))
    area = df[schema.AREA].to_numpy()[order]
    ymo = ym.to_numpy()[order]
    same = area[1:] == area[:-1]
    jump = (ymo[1:] - ymo[:-1]) > 1
    bad = np.flatnonzero(same & jump)
    if bad.size:
        k = bad[0]
        after = int(order[k + 1])
        missing = pd.Timestamp(df[schema.MONTH].iloc[int(order[k])]) + pd.DateOffset(months=1)
        raise DataError(
            file,
            f"consecutive months for area {area[k]!r} (no gaps)",
            row=after + 2,
            column=schema.MONTH,
            found=f"{missing:%Y-%m} missing before "
            f"{pd.Timestamp(df[schema.MONTH].iloc[after]):%Y-%m}",
        )


def _check_treatment(df: pd.DataFrame, file) -> None:
    for col in TREATMENT_COLUMNS:
        key = df[col].astype("string").fillna("<NaT>")
        first = key.groupby(df[schema.AREA]).transform("first")
        differs = (key != first).to_numpy()
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise DataError(
                file,
                f"one {col} per area (constant over months): "
                f"{first.iloc[i]!r} as in the area's first row",
                row=i + 2,
                column=col,
                found=_plain(df[col].iloc[i]),
            )
    control = df[schema.GROUP].eq(schema.CONTROL)
    bad = np.flatnonzero((control & df[schema.START].notna()).to_numpy())
    if bad.size:
        raise DataError(
            file,
            "no start month for a control area",
            row=int(bad[0]) + 2,
            column=schema.START,
            found=f"{df[schema.START].iloc[bad[0]]:%Y-%m}",
        )
    bad = np.flatnonzero((~control & df[schema.START].isna()).to_numpy())
    if bad.size:
        raise DataError(
            file,
            "a start month for a treated area",
            row=int(bad[0]) + 2,
            column=schema.START,
            found="",
        )
    lo, hi = df[schema.MONTH].min(), df[schema.MONTH].max()
    outside = df[schema.START].notna() & ((df[schema.START] <= lo) | (df[schema.START] > hi))
    bad = np.flatnonzero(outside.to_numpy())
    if bad.size:
        raise DataError(
            file,
            f"a start month after {lo:%Y-%m} and no later than {hi:%Y-%m} "
            "(inside the data's months, with a pre-period)",
            row=int(bad[0]) + 2,
            column=schema.START,
            found=f"{df[schema.START].iloc[bad[0]]:%Y-%m}",
        )


# --- treatment from a site register -----------------------------------------------------


def attach_treatment(
    panel: pd.DataFrame,
    sites_path: str | Path,
    areas_path: str | Path,
    *,
    file: str | Path = "panel",
) -> pd.DataFrame:
    """Add ``group``, ``start`` and ``site`` to a panel from a site register.

    Areas not in the register's footprint are controls.

    Parameters
    ----------
    panel : pandas.DataFrame
        Validated panel without treatment columns.
    sites_path, areas_path : str or pathlib.Path
        Site register and site-to-area footprint in the project's format.
    file : str or pathlib.Path
        Name of the panel in error messages.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        If the register is malformed, names an area that is not in the panel, or a
        site with areas in the panel starts outside the panel's months.
    """
    from vanguard import sites as sites_mod

    sites_path, areas_path = Path(sites_path), Path(areas_path)
    register = sites_mod.load_register(sites_path, areas_path)
    known = set(panel[schema.AREA].unique())
    # Checks the register's areas against the panel before anything else is done.
    assign = sites_mod.area_assignments(register, known_areas=sorted(known))
    reg_areas = register.areas.reset_index(drop=True)
    lo, hi = panel[schema.MONTH].min(), panel[schema.MONTH].max()
    reg_sites = register.sites.reset_index(drop=True)
    used = reg_sites["site_id"].astype(str).isin(set(reg_areas["site_id"].astype(str)))
    starts = reg_sites["start_month"]
    if not pd.api.types.is_datetime64_any_dtype(starts):
        starts = pd.to_datetime(starts.astype(str), format="%Y-%m", errors="coerce")
    bad = used & (starts.isna() | (starts <= lo) | (starts > hi))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            sites_path,
            f"a start month after {lo:%Y-%m} and no later than {hi:%Y-%m} (the months of {file})",
            row=i + 2,
            column="start_month",
            found=f"{starts.iloc[i]:%Y-%m}",
        )
    assign = assign[[schema.AREA, schema.GROUP, schema.START, schema.SITE]].copy()
    assign[schema.START] = pd.to_datetime(assign[schema.START]).astype("datetime64[ns]")
    out = panel.merge(assign, on=schema.AREA, how="left", validate="many_to_one")
    treated = out[schema.GROUP].notna()
    out[schema.GROUP] = out[schema.GROUP].where(treated, schema.CONTROL).astype(str)
    out[schema.SITE] = out[schema.SITE].where(treated, "").astype(str)
    out[schema.START] = out[schema.START].astype("datetime64[ns]")
    out.attrs.update(panel.attrs)
    return out


# --- loading ----------------------------------------------------------------------------


def load_panel(
    source: str = "synthetic",
    *,
    path: str | Path | None = None,
    sites_path: str | Path | None = None,
    areas_path: str | Path | None = None,
    groups_path: str | Path | None = None,
    outcomes: Sequence[str] | None = None,
    **mar_options,
) -> pd.DataFrame:
    """Load, validate and return the analysis panel.

    Parameters
    ----------
    source : {"synthetic", "custom", "nhs_mar"}
        Where the data come from (see the module docstring).
    path : str or pathlib.Path, optional
        The panel file (CSV or parquet). Required for ``custom``; for ``synthetic`` it
        defaults to ``data/raw/synthetic/panel.csv``; for ``nhs_mar`` it is the folder
        of MAR files (default :func:`vanguard.config.mar_dir`).
    sites_path, areas_path : str or pathlib.Path, optional
        Site register and footprint. Defaults: the synthetic register for
        ``synthetic``, the real register for ``nhs_mar``. For ``custom``, give both
        unless the panel file already has ``group``, ``start`` and ``site``, or
        ``groups_path`` is given.
    groups_path : str or pathlib.Path, optional
        ``custom`` only: a groups file of the user's own programme (``group``, ``area``,
        ``start_month``, optional ``site`` and ``label``; see
        :meth:`vanguard.did.spec.Programme.from_csv`) instead of a vanguard site register.
        Its areas are treated from their start months; every other area is a control.
    outcomes : sequence of str, optional
        Outcome columns to keep; default every non-core column.
    **mar_options
        ``nhs_mar`` only, passed to :func:`vanguard.mar.build_panel`: ``start``,
        ``end``, ``footprint``, ``mixed`` (``"exclude"`` | ``"keep"``), ``quality``
        (``"drop"`` | ``"keep"``), ``population`` (bool), ``population_dir``.

    Returns
    -------
    pandas.DataFrame
        The validated panel, sorted by area and month, with
        ``attrs["data_source"]`` set to ``source`` and ``attrs["path"]`` the file read.

    Raises
    ------
    DataError
        If a file is missing or malformed, or the data break the contract.
    ValueError
        If ``source`` is unknown, a required argument is missing, or MAR options are
        given for another source.
    """
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: expected one of {SOURCES}")
    if mar_options and source != "nhs_mar":
        raise ValueError(f"{sorted(mar_options)}: options of the nhs_mar source only")
    if source == "nhs_mar":
        df = _load_mar(path, sites_path, areas_path, outcomes, **mar_options)
    else:
        if source == "synthetic":
            path = Path(path) if path is not None else config.SYNTHETIC_DIR / "panel.csv"
            sites_path = sites_path or config.SYNTHETIC_DIR / "sites.csv"
            areas_path = areas_path or config.SYNTHETIC_DIR / "site_areas.csv"
        elif path is None:
            raise ValueError("source 'custom' needs path= (an area-month CSV or parquet)")
        path = Path(path)
        raw = read_table(path)
        if groups_path is not None:
            df = _with_groups(raw, path, Path(groups_path), sites_path, areas_path, outcomes)
        else:
            df = _with_treatment(raw, path, sites_path, areas_path, outcomes)
    df.attrs["data_source"] = source
    return df


def _with_groups(raw: pd.DataFrame, file, groups_path: Path, sites_path, areas_path, outcomes):
    """Treatment from a user's groups file (a :class:`vanguard.did.spec.Programme`)."""
    from vanguard.did.spec import Programme

    if sites_path is not None or areas_path is not None:
        raise ValueError("give either groups_path= or a site register, not both")
    has = [c for c in TREATMENT_COLUMNS if c in raw.columns]
    if has:
        raise DataError(
            file,
            "no treatment columns when a groups file is given (treatment comes from it)",
            row=1,
            column=has[0],
            found=list(raw.columns),
        )
    base = validate_panel(raw, file, outcomes=outcomes, treatment=False)
    df = Programme.from_csv(groups_path).assign(base, file=str(groups_path))
    df = validate_panel(df, file, outcomes=[c for c in base.columns if c not in CORE_COLUMNS])
    df.attrs["path"] = str(file)
    df.attrs["groups_path"] = str(groups_path)
    return df


def _with_treatment(raw: pd.DataFrame, file, sites_path, areas_path, outcomes):
    has = [c for c in TREATMENT_COLUMNS if c in raw.columns]
    if sites_path is None and areas_path is None:
        if len(has) < len(TREATMENT_COLUMNS):
            missing = [c for c in TREATMENT_COLUMNS if c not in raw.columns]
            raise DataError(
                file,
                "columns group, start and site, or a site register (sites_path= and areas_path=)",
                row=1,
                column=missing[0],
                found=list(raw.columns),
            )
        df = validate_panel(raw, file, outcomes=outcomes)
    else:
        if sites_path is None or areas_path is None:
            raise ValueError("give both sites_path= and areas_path= (the site register)")
        if has:
            raise DataError(
                file,
                "no treatment columns when a site register is given "
                "(treatment comes from the register)",
                row=1,
                column=has[0],
                found=list(raw.columns),
            )
        base = validate_panel(raw, file, outcomes=outcomes, treatment=False)
        df = attach_treatment(base, sites_path, areas_path, file=file)
        df = validate_panel(df, file, outcomes=[c for c in base.columns if c not in CORE_COLUMNS])
    df.attrs["path"] = str(file)
    return df


def _load_mar(path, sites_path, areas_path, outcomes, **options) -> pd.DataFrame:
    build_panel = importlib.import_module("vanguard.mar").build_panel
    file = f"NHS MAR panel ({path or config.mar_dir()})"
    register_given = sites_path is not None or areas_path is not None
    kwargs = dict(options)
    if register_given and "register" in inspect.signature(build_panel).parameters:
        # The MAR builder maps the register's CCG codes through mergers itself.
        from vanguard import sites as sites_mod

        kwargs["register"] = sites_mod.load_register(
            sites_path or config.SITE_REGISTER, areas_path or config.SITE_AREAS
        )
    raw = build_panel(mar_dir=path, **kwargs)
    if outcomes is not None:
        # The 65+ and 75+ denominators are not outcomes but must survive the outcome
        # selection, or care-home rates per 1,000 aged 75+ cannot be formed.
        outcomes = list(
            dict.fromkeys([*outcomes, *(c for c in MAR_DENOMINATORS if c in raw.columns)])
        )
    if all(c in raw.columns for c in TREATMENT_COLUMNS):
        df = validate_panel(raw, file, outcomes=outcomes)
    else:
        base = validate_panel(raw, file, outcomes=outcomes, treatment=False)
        df = attach_treatment(
            base, sites_path or config.SITE_REGISTER, areas_path or config.SITE_AREAS, file=file
        )
        df = validate_panel(df, file, outcomes=[c for c in base.columns if c not in CORE_COLUMNS])
    df.attrs["path"] = str(path or config.mar_dir())
    return df


MAR_DENOMINATORS: tuple[str, ...] = ("population_65plus", "population_75plus")
"""Population columns of the MAR panel besides ``population`` (kept with any outcomes)."""
