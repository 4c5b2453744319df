"""Record-level route: one row per admission, aggregated to the area-month panel.

Researchers with access to record-level data (a national extract may hold tens of
millions of admissions) aggregate it here to the area x month panel the estimators use.
The extract is never loaded into pandas: DuckDB reads the CSV or parquet files directly
and streams them through one ``GROUP BY``.

The work is split in two so that the aggregation itself can move to another engine:

* :func:`aggregation_sql` returns ONE plain SQL query (``date_trunc('month', ...)``,
  ``TRIM``, ``COUNT(*)``, ``SUM(...)``, ``GROUP BY``, ``LEFT JOIN``, ``COALESCE`` and a ``VALUES``
  list of months) over a table or view of records. No DuckDB-only functions are used,
  so the same text runs on PostgreSQL, Trino/Presto or Spark SQL against a table of
  the same shape.
* :func:`aggregate_records` is the local driver: it points a DuckDB view at the files
  (or DataFrame), checks each file's content and header, validates the records in one
  pass (blank areas, unreadable or implausible dates, lengths of stay that are not
  finite non-negative numbers) and then runs the query. A period not stated with
  ``start``/``end`` is taken from the data with a warning, and no more than
  :data:`MAX_SPAN_YEARS` years are accepted, so one mistyped year cannot stretch the
  panel.

Every area x month of the requested period appears in the output, with 0 admissions when
an area had no records that month: the grid of areas x months is built in the query,
because a month without records is information (a real zero or a data gap), not a row to
lose.
"""

from __future__ import annotations

import csv
import glob as _glob
import gzip
import io
import os
import re
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vanguard import schema
from vanguard.errors import DataError, DataWarning

DEFAULT_COUNT = "emergency_admissions"
"""Output column holding the number of records per area x month."""
DEFAULT_LOS_SUM = "bed_days"
"""Output column holding the summed length of stay per area x month."""

_RESERVED = frozenset(
    {
        "ALL",
        "AND",
        "AS",
        "BY",
        "CASE",
        "CAST",
        "CROSS",
        "DATE",
        "DISTINCT",
        "ELSE",
        "END",
        "FROM",
        "GROUP",
        "IN",
        "JOIN",
        "LEFT",
        "NOT",
        "NULL",
        "ON",
        "OR",
        "ORDER",
        "SELECT",
        "TABLE",
        "THEN",
        "TIMESTAMP",
        "TO",
        "USER",
        "VALUES",
        "WHEN",
        "WHERE",
        "WITH",
    }
)
"""Words that must stay quoted even when plain (a column named ``date`` or ``user``)."""
_DELIMITER_CANDIDATES = (",", ";", "\t", "|")
EARLIEST_DATE = pd.Timestamp("1990-01-01")
"""Earliest record date accepted by default: older dates are typing errors in any extract
this project is built for (``date_limits=`` widens the window for older data)."""
MAX_SPAN_YEARS = 30
"""Longest panel accepted: a longer span comes from a typo such as ``2051-05-03``."""
MAX_LOS_DAYS = 36_525
"""Longest length of stay accepted (100 years): anything longer is a typing error."""
_MAX_EXAMPLES = 5
_DATAFRAME_LABEL = "<DataFrame>"


# --- the portable query ---------------------------------------------------------------


_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _quote_ident(name: str) -> str:
    """An SQL identifier: bare when plain lower-case, else double-quoted (standard SQL).

    Plain names stay bare because engines disagree on quoting: Spark SQL reads
    ``"area"`` as a string literal unless told otherwise, while every engine reads a
    bare lower-case ``area`` as the column.
    """
    name = str(name)
    if _PLAIN_IDENT.match(name) and name.upper() not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def month_range(start, end) -> list[pd.Timestamp]:
    """Month starts from ``start`` to ``end`` inclusive.

    Parameters
    ----------
    start, end : str, datetime-like
        Any date in the first and last month (``"2014-04"``, ``"2014-04-17"``, ...).

    Returns
    -------
    list of pandas.Timestamp
        First day of each month.

    Raises
    ------
    ValueError
        If ``start`` or ``end`` cannot be read as a date, or ``end`` is before ``start``.
    """
    lo = _month_start(start, "start")
    hi = _month_start(end, "end")
    if hi < lo:
        raise ValueError(f"month range: end {hi:%Y-%m} is before start {lo:%Y-%m}")
    return list(pd.date_range(lo, hi, freq="MS"))


def _month_start(value, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: expected a month such as '2015-04'; found {value!r}") from exc
    if pd.isna(ts):
        raise ValueError(f"{name}: expected a month such as '2015-04'; found {value!r}")
    return ts.to_period("M").to_timestamp()


def plausible_dates(limits=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The window of believable record dates.

    Parameters
    ----------
    limits : (earliest, latest), optional
        Either may be None. Default: :data:`EARLIEST_DATE` to one year after today.

    Returns
    -------
    (pandas.Timestamp, pandas.Timestamp)
        Earliest and latest date accepted (both inclusive, at midnight).

    Raises
    ------
    ValueError
        If a limit cannot be read as a date, or the latest is before the earliest.
    """
    lo, hi = limits if limits is not None else (None, None)
    today = pd.Timestamp.today().normalize()
    try:
        lo = pd.Timestamp(lo).normalize() if lo is not None else EARLIEST_DATE
        hi = pd.Timestamp(hi).normalize() if hi is not None else today + pd.DateOffset(years=1)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"date_limits: expected two dates; found {limits!r}") from exc
    if hi < lo:
        raise ValueError(f"date_limits: latest {hi:%Y-%m-%d} is before earliest {lo:%Y-%m-%d}")
    return lo, hi


def aggregation_sql(
    table: str,
    *,
    start,
    end,
    date_col: str = "admission_date",
    area_col: str = "area",
    los_col: str | None = None,
    areas: Iterable[str] | None = None,
    count_name: str = DEFAULT_COUNT,
    los_name: str = DEFAULT_LOS_SUM,
) -> str:
    """The aggregation from records to the area-month panel as one portable SQL query.

    The query keeps records whose date falls in ``[start, end]`` (whole months), counts
    them per area and calendar month, sums length of stay when ``los_col`` is given, and
    left-joins the counts onto the full grid of areas x months so that empty cells are 0.

    Only standard SQL plus ``date_trunc('month', ...)`` is used (``CAST``, ``TRIM``, ``COUNT(*)``,
    ``SUM``, ``COALESCE``, ``GROUP BY``, ``CROSS JOIN``, ``LEFT JOIN``, a ``VALUES`` list of
    months), so the text is meant to run unchanged on DuckDB (where it is tested),
    PostgreSQL, Trino/Presto and Spark SQL,
    given a table ``table`` with the record columns. Plain lower-case column names are
    left bare (Spark reads ``"area"`` as a string literal); other names are
    double-quoted. Dates may be stored as DATE, TIMESTAMP or ISO-8601 text
    (``2015-04-01`` or ``2015-04-01 13:45:00``). Area codes are trimmed of surrounding
    spaces (``TRIM``), as the panel loader trims them, so ``" 00C"`` is area ``00C``.

    Parameters
    ----------
    table : str
        Table or view name, inserted verbatim (it may be schema-qualified, ``a.b``).
    start, end : str or datetime-like
        First and last month of the panel (inclusive), e.g. ``"2012-04"``.
    date_col, area_col : str
        Record columns holding the admission date (or datetime) and the area code.
    los_col : str, optional
        Length-of-stay column in days, numeric in ``table``. When given the output has
        ``los_name`` (the sum).
    areas : iterable of str, optional
        The areas of the grid (trimmed). By default every area present in the table
        (with any date), so an area whose records all fall outside the window still
        gets zeros.
    count_name, los_name : str
        Output column names.

    Returns
    -------
    str
        A ``SELECT`` returning ``area`` (text), ``month`` (DATE, first of month),
        ``count_name`` (integer) and, with ``los_col``, ``los_name`` (double), ordered by
        area and month.

    Raises
    ------
    ValueError
        If the month range is invalid or ``areas`` is empty.
    """
    months = month_range(start, end)
    lo = months[0]
    hi_exclusive = months[-1] + pd.offsets.MonthBegin(1)
    d = _quote_ident(date_col)
    a = _quote_ident(area_col)
    month_values = ",\n        ".join(f"(DATE {_quote_literal(f'{m:%Y-%m-%d}')})" for m in months)
    if areas is None:
        area_cte = f"SELECT DISTINCT TRIM(CAST({a} AS VARCHAR(255))) AS area FROM {table}"
    else:
        codes = sorted({str(x).strip() for x in areas})
        if not codes:
            raise ValueError("aggregation_sql: 'areas' is empty")
        rows = ",\n        ".join(f"({_quote_literal(c)})" for c in codes)
        area_cte = f"SELECT area FROM (VALUES\n        {rows}\n    ) AS a(area)"
    los_keep = f",\n        {_quote_ident(los_col)}" if los_col else ""
    los_select = f",\n        SUM({_quote_ident(los_col)}) AS los_sum" if los_col else ""
    los_out = f",\n    COALESCE(c.los_sum, 0.0) AS {_quote_ident(los_name)}" if los_col else ""
    return f"""WITH recs AS (
    SELECT
        TRIM(CAST({a} AS VARCHAR(255))) AS area,
        CAST(date_trunc('month', CAST({d} AS TIMESTAMP)) AS DATE) AS month{los_keep}
    FROM {table}
    WHERE CAST({d} AS TIMESTAMP) >= TIMESTAMP {_quote_literal(f"{lo:%Y-%m-%d} 00:00:00")}
      AND CAST({d} AS TIMESTAMP) < TIMESTAMP {_quote_literal(f"{hi_exclusive:%Y-%m-%d} 00:00:00")}
),
counts AS (
    SELECT area, month, COUNT(*) AS n{los_select}
    FROM recs
    GROUP BY area, month
),
areas AS (
    {area_cte}
),
months AS (
    SELECT month FROM (VALUES
        {month_values}
    ) AS m(month)
)
SELECT
    g.area AS area,
    g.month AS month,
    COALESCE(c.n, 0) AS {_quote_ident(count_name)}{los_out}
FROM (SELECT areas.area, months.month FROM areas CROSS JOIN months) AS g
LEFT JOIN counts AS c ON c.area = g.area AND c.month = g.month
ORDER BY g.area, g.month"""


# --- sources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where the records come from: files of one format, or an in-memory DataFrame."""

    kind: str  # "csv" | "parquet" | "frame"
    files: tuple[str, ...] = ()
    frame: pd.DataFrame | None = None

    def label(self) -> str:
        if self.kind == "frame":
            return _DATAFRAME_LABEL
        return self.files[0] if len(self.files) == 1 else f"{len(self.files)} files"


def resolve_source(source) -> _Source:
    """The records behind ``source`` (a DataFrame, a file, a glob or a list of them), with
    every file checked to exist and all of one kind; shared by the DuckDB and Spark routes.

    Raises
    ------
    DataError
        No file, a glob matching nothing, a missing file, or CSV and parquet mixed.
    """
    if isinstance(source, pd.DataFrame):
        return _Source("frame", frame=source)
    items = [source] if isinstance(source, (str, Path)) else list(source)
    if not items:
        raise DataError("records", "at least one CSV or parquet file or glob")
    files: list[str] = []
    for item in items:
        item = str(item)
        if any(ch in item for ch in "*?["):
            hits = sorted(_glob.glob(item))
            if not hits:
                raise DataError(item, "a glob matching at least one records file")
            files.extend(hits)
        else:
            if not Path(item).is_file():
                raise DataError(item, "an existing records file")
            files.append(item)
    kinds = {_file_kind(f) for f in files}
    if len(kinds) > 1:
        raise DataError(
            files[0], "records files of one format (all CSV or all parquet)", found=sorted(kinds)
        )
    for f in files:
        if Path(f).stat().st_size == 0:
            raise DataError(
                f,
                "a records file with a header row and at least one record",
                found="an empty file (0 bytes)",
            )
    kind = kinds.pop()
    for f in files:
        _check_content(f, kind)
    return _Source(kind, files=tuple(files))


_HEAD_BYTES = 1 << 16


def _open_text_head(path: str) -> bytes:
    """The first bytes of a records file, decompressed when it is a ``.gz``."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if path.lower().endswith(".gz") and head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(_HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                path, "a complete gzip-compressed CSV", found=f"a damaged gzip file ({exc})"
            ) from exc
    return head


def _check_content(path: str, kind: str) -> None:
    """Refuse a file whose content is not what its name says, before DuckDB reports it
    as a unicode or sniffing error.

    Raises
    ------
    DataError
        Naming the file: a spreadsheet, archive, compressed or UTF-16 file given as CSV,
        a gzip file not named ``.gz``, or a ``.parquet`` file that is not parquet.
    """
    from vanguard.panel import _refuse_binary

    if kind == "parquet":
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic != b"PAR1":
            _refuse_binary(Path(path), magic + Path(path).read_bytes()[4:8], "a parquet file")
            raise DataError(path, "a parquet file", found="no parquet signature (PAR1)")
        return
    head = _open_text_head(path)
    if head.startswith(b"\x1f\x8b"):
        raise DataError(
            path, "a plain CSV, or a gzip-compressed one named .csv.gz", found="gzip content"
        )
    _refuse_binary(Path(path), head, "a CSV records file")


def _file_kind(path: str) -> str:
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return "csv"
    raise DataError(path, "a .csv, .csv.gz or .parquet records file", found=Path(path).suffix)


def _scan_csv(path: str, delimiter: str) -> None:
    """Find, in Python, the first line of a CSV that DuckDB could not read.

    Only run once DuckDB has failed on the file, so its cost does not matter.

    Raises
    ------
    DataError
        For the first line that is not UTF-8, or the first record whose number of
        fields differs from the header's (header = row 1).
    """
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for i, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    path,
                    "UTF-8 encoded text (save the file as 'CSV UTF-8')",
                    row=i,
                    found=line[exc.start : exc.start + 4],
                ) from exc
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, [])
        for i, rec in enumerate(reader, start=2):
            if rec and len(rec) != len(header):
                raise DataError(
                    path,
                    f"{len(header)} fields, as in the header row",
                    row=i,
                    found=_fields(len(rec)),
                )


def _fields(n: int) -> str:
    return f"{n} field" + ("" if n == 1 else "s")


def _explain(exc: Exception, src: _Source, delimiter: str) -> DataError:
    """A DataError naming the file for a DuckDB failure reading the records."""
    if src.kind == "csv":
        for f in src.files:
            try:
                _scan_csv(f, delimiter)
            except DataError as err:
                return err
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    what = "a readable parquet file" if src.kind == "parquet" else "a readable CSV file"
    return DataError(src.label(), what, found=first)


def _sql_list(files: Sequence[str]) -> str:
    return "[" + ", ".join(_quote_literal(f) for f in files) + "]"


def _csv_reader(
    files: Sequence[str], delimiter: str, text_cols: Sequence[str], extra: str = ""
) -> str:
    # Record columns are read as text: a malformed value deep in the file must reach our
    # validation (with its row number), not abort DuckDB's type sniffer; and area codes
    # such as "00C" must keep their leading zeros.
    types = "{" + ", ".join(f"{_quote_literal(c)}: 'VARCHAR'" for c in text_cols) + "}"
    return (
        f"read_csv({_sql_list(files)}, delim={_quote_literal(delimiter)}, header=true, "
        f"types={types}{extra})"
    )


def _columns_of(con, relation_sql: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()]


def _check_columns(con, src: _Source, needed: Sequence[str], delimiter: str) -> None:
    """Raise DataError for the first file lacking a needed column."""
    if src.kind == "frame":
        missing = [c for c in needed if c not in src.frame.columns]
        if missing:
            raise DataError(
                _DATAFRAME_LABEL,
                f"column(s) {needed}",
                column=missing[0],
                found=f"columns {list(map(str, src.frame.columns))}",
            )
        _check_date_type(con, "__records_frame", _DATAFRAME_LABEL, needed[0])
        return
    for f in src.files:
        if src.kind == "csv":
            _check_csv_header(f, needed, delimiter)
        else:
            _check_date_type(con, f"read_parquet({_quote_literal(f)})", f, needed[0])
        if src.kind == "parquet":
            cols = _columns_of(con, f"read_parquet({_quote_literal(f)})")
        else:
            cols = _columns_of(
                con,
                f"read_csv({_quote_literal(f)}, delim={_quote_literal(delimiter)}, "
                "header=true, all_varchar=true)",
            )
        missing = [c for c in needed if c not in cols]
        if not missing:
            continue
        if src.kind == "csv" and all(c in _csv_header(f, delimiter) for c in needed):
            # The header is right but DuckDB's sniffer guessed another shape: a line
            # with more fields than the header, which the scan names.
            _scan_csv(f, delimiter)
        if src.kind == "csv" and len(cols) == 1:
            others = [d for d in _DELIMITER_CANDIDATES if d != delimiter and d in cols[0]]
            if others:
                raise DataError(
                    f,
                    f"columns separated by {delimiter!r} (delimiter=)",
                    row=1,
                    found=f"header {cols[0]!r} looks {others[0]!r}-separated",
                )
        from vanguard.panel import _close_match

        near = _close_match(missing[0], cols)
        raise DataError(
            f,
            f"a column named {missing[0]!r} (needed: {list(needed)})",
            row=1,
            column=missing[0],
            found=f"columns {cols}",
            note=f"is {near!r} a misspelling of {missing[0]!r}? (or pass date_col=/area_col=)"
            if near
            else None,
        )


def _csv_header(path: str, delimiter: str) -> list[str]:
    """The header row of a CSV, read as a spreadsheet would (quotes honoured)."""
    head = _open_text_head(path).decode("utf-8-sig", errors="replace")
    header = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter), [])
    return [h.strip() for h in header]


def _check_date_type(con, relation: str, label: str, date_col: str) -> None:
    """Refuse time-zone-aware admission times.

    DuckDB turns them into plain timestamps in the session's time zone, so a record near
    midnight would fall in a different month on a machine set to another zone.
    """
    types = dict(
        (row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    )
    if "WITH TIME ZONE" in str(types.get(date_col, "")):
        raise DataError(
            label,
            "dates, or timestamps without a time zone (local admission times)",
            column=date_col,
            found=types[date_col],
            note="convert to local time and drop the zone; the month of a record near "
            "midnight depends on the zone",
        )


def _check_csv_header(path: str, needed: Sequence[str], delimiter: str) -> None:
    """Refuse a needed column named twice: DuckDB would rename one copy silently."""
    names = _csv_header(path, delimiter)
    for col in needed:
        where = [j for j, name in enumerate(names, start=1) if name == col]
        if len(where) > 1:
            raise DataError(
                path,
                "each column name once",
                row=1,
                column=col,
                found=f"{col!r} in columns {where[0]} and {where[1]}",
            )


def _records_relation(
    src: _Source,
    date_col: str,
    area_col: str,
    los_col: str | None,
    delimiter: str,
    *,
    with_position: bool = False,
) -> str:
    """SQL relation over the raw records, optionally with file name and row position."""
    cols = [date_col, area_col] + ([los_col] if los_col else [])
    if src.kind == "frame":
        return "__records_frame"
    if src.kind == "parquet":
        extra = ", filename=true, file_row_number=true" if with_position else ""
        return f"read_parquet({_sql_list(src.files)}, union_by_name=true{extra})"
    extra = ", filename=true" if with_position else ""
    return _csv_reader(src.files, delimiter, cols, ", union_by_name=true" + extra)


# --- validation -------------------------------------------------------------------------


@dataclass
class _Checks:
    n: int
    bad_area: int
    bad_date: int
    implausible: int
    first_date: str | None
    last_date: str | None
    bad_los: int
    neg_los: int
    missing_los: int


def _los_out_of_range(los_num: str) -> str:
    """A length of stay that reads as a number but cannot be one: ``inf`` and ``nan``
    would make every bed-day sum of the area-month infinite or missing."""
    return f"({los_num} < 0 OR isnan({los_num}) OR isinf({los_num}) OR {los_num} > {MAX_LOS_DAYS})"


def _ts_literal(ts: pd.Timestamp) -> str:
    return f"TIMESTAMP {_quote_literal(f'{ts:%Y-%m-%d} 00:00:00')}"


def _outside(ts_sql: str, limits: tuple[pd.Timestamp, pd.Timestamp]) -> str:
    lo, hi = limits
    return f"({ts_sql} < {_ts_literal(lo)} OR {ts_sql} >= {_ts_literal(hi + pd.Timedelta(days=1))})"


def _validate(
    con,
    relation: str,
    date_col: str,
    area_col: str,
    los_col: str | None,
    limits: tuple[pd.Timestamp, pd.Timestamp],
) -> _Checks:
    d, a = _quote_ident(date_col), _quote_ident(area_col)
    ts = f"TRY_CAST({d} AS TIMESTAMP)"
    if los_col:
        lo = _quote_ident(los_col)
        los_num = f"TRY_CAST({lo} AS DOUBLE)"
        los_missing = f"({lo} IS NULL OR TRIM(CAST({lo} AS VARCHAR)) = '')"
        los_sql = (
            f"COUNT(*) FILTER (WHERE NOT {los_missing} AND {los_num} IS NULL), "
            f"COUNT(*) FILTER (WHERE {_los_out_of_range(los_num)}), "
            f"COUNT(*) FILTER (WHERE {los_missing})"
        )
    else:
        los_sql = "0, 0, 0"
    # The extreme dates come back as text: a year-201 date is a valid DuckDB timestamp
    # but outside what pandas can hold, and must be reported, not crash the conversion.
    row = con.execute(f"""
        SELECT COUNT(*),
               COUNT(*) FILTER (WHERE {a} IS NULL OR TRIM(CAST({a} AS VARCHAR)) = ''),
               COUNT(*) FILTER (WHERE {ts} IS NULL),
               COUNT(*) FILTER (WHERE {_outside(ts, limits)}),
               CAST(MIN({ts}) AS VARCHAR),
               CAST(MAX({ts}) AS VARCHAR),
               {los_sql}
        FROM {relation}""").fetchall()[0]
    return _Checks(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]),
        row[4],
        row[5],
        int(row[6]),
        int(row[7]),
        int(row[8]),
    )


def _offenders(
    con,
    src: _Source,
    condition: str,
    column: str,
    date_col: str,
    area_col: str,
    los_col: str | None,
    delimiter: str,
    limit: int = 1,
) -> list[tuple[str, int, object]]:
    """File, spreadsheet row (header = 1) and value of the first ``limit`` records
    meeting ``condition``, in file order."""
    c = _quote_ident(column)
    if src.kind == "frame":
        # The DataFrame is viewed in order, so its position is the row's position.
        q = (
            f"SELECT rn, CAST({c} AS VARCHAR) FROM (SELECT row_number() OVER () AS rn, * "
            f"FROM __records_frame) WHERE {condition} ORDER BY rn LIMIT {int(limit)}"
        )
        return [(_DATAFRAME_LABEL, int(rn) + 1, v) for rn, v in con.execute(q).fetchall()]
    found: list[tuple[str, int, object]] = []
    for f in src.files:
        left = int(limit) - len(found)
        if left <= 0:
            break
        if src.kind == "parquet":
            rel = f"read_parquet({_quote_literal(f)}, file_row_number=true)"
            q = (
                f"SELECT file_row_number + 1, CAST({c} AS VARCHAR) FROM {rel} "
                f"WHERE {condition} ORDER BY file_row_number LIMIT {left}"
            )
        else:
            rel = _csv_reader([f], delimiter, [date_col, area_col] + ([los_col] if los_col else []))
            # One file read in order: the row number over the scan is its line order.
            q = (
                f"SELECT rn, CAST({c} AS VARCHAR) FROM (SELECT row_number() OVER () AS rn, * "
                f"FROM {rel}) WHERE {condition} ORDER BY rn LIMIT {left}"
            )
        hits = con.execute(q).fetchall()
        if src.kind == "csv" and hits:
            rows = _spreadsheet_rows(f, delimiter, [int(rn) for rn, _ in hits])
            found.extend((f, rows.get(int(rn), int(rn) + 1), v) for rn, v in hits)
        else:
            found.extend((f, int(rn) + 1, v) for rn, v in hits)
    return found


def _first_offender(con, src, condition, column, date_col, area_col, los_col, delimiter):
    """File, spreadsheet row (header = 1) and value of the first record meeting ``condition``."""
    hits = _offenders(con, src, condition, column, date_col, area_col, los_col, delimiter)
    return hits[0] if hits else (src.label(), None, None)


def _spreadsheet_rows(path: str, delimiter: str, ordinals: Sequence[int]) -> dict[int, int]:
    """Spreadsheet rows (header = 1) of the ``ordinals``-th records of a CSV.

    DuckDB skips empty lines, so its record number falls behind the row a spreadsheet
    shows after each one. Read only on the error path, up to the last record asked for.
    """
    wanted, rows = set(ordinals), {}
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            next(reader, None)
            k = 0
            for row, rec in enumerate(reader, start=2):
                if not rec:
                    continue
                k += 1
                if k in wanted:
                    rows[k] = row
                    if len(rows) == len(wanted):
                        break
    except (OSError, csv.Error):
        # DuckDB read the file; if Python cannot, its record numbers are the best known.
        return {}
    return rows


def _more(hits: list[tuple[str, int, object]], total: int) -> str | None:
    """The offenders after the first, as ``also row 9 '2015-13-01', ...``."""
    if len(hits) < 2:
        return None
    first_file = hits[0][0]
    parts = [(f"{f} " if f != first_file else "") + f"row {r} {v!r}" for f, r, v in hits[1:]]
    more = total - len(hits)
    return "also " + ", ".join(parts) + (f" and {more:,} more" if more > 0 else "")


def _empty_files(con, src: _Source, relation_with_position: str) -> list[str]:
    if src.kind == "frame":
        return [_DATAFRAME_LABEL] if len(src.frame) == 0 else []
    seen = {
        r[0]
        for r in con.execute(f"SELECT DISTINCT filename FROM {relation_with_position}").fetchall()
    }
    return [f for f in src.files if f not in seen and str(Path(f)) not in seen]


# --- the driver -------------------------------------------------------------------------


def aggregate_records(
    source,
    *,
    date_col: str = "admission_date",
    area_col: str = "area",
    los_col: str | None = None,
    start=None,
    end=None,
    out=None,
    areas: Iterable[str] | None = None,
    delimiter: str = ",",
    count_name: str = DEFAULT_COUNT,
    los_name: str = DEFAULT_LOS_SUM,
    threads: int | None = None,
    memory_limit: str | None = None,
    date_limits=None,
) -> pd.DataFrame:
    """Aggregate admission records to the area-month panel with DuckDB.

    Parameters
    ----------
    source : str, pathlib.Path, list of them, or pandas.DataFrame
        CSV (``.csv``, ``.csv.gz``) or parquet file(s); globs such as
        ``"extract/*.parquet"`` are expanded. All files must share one format. Files are
        streamed by DuckDB and never loaded into pandas.
    date_col : str
        Admission date or datetime (DATE/TIMESTAMP, or ISO text ``YYYY-MM-DD`` with an
        optional time).
    area_col : str
        Area code (CCG, local authority, ...); read as text, so leading zeros stay.
    los_col : str, optional
        Length of stay in days (non-negative). Gives the ``los_name`` column (sum).
        Records with an empty length of stay are counted as admissions, add no bed days,
        and are reported in a warning.
    start, end : str or datetime-like, optional
        First and last month of the panel (inclusive), e.g. ``"2012-04"``, ``"2018-03"``.
        State both. A missing one is taken from the first or last month in the data, with
        a warning naming the earliest and latest record dates. Records outside are
        dropped with a warning that gives how many. The period may span at most
        :data:`MAX_SPAN_YEARS` years and must lie within ``date_limits``.
    out : str or pathlib.Path, optional
        Write the panel atomically: ``.parquet`` (month as a date) or ``.csv`` (month as
        ``YYYY-MM``, the documented area-month format). Checked before any work is done.
    areas : iterable of str, optional
        The areas of the panel (trimmed of surrounding spaces). Default: every area in
        the records. When given, a record for another area is an error. Area codes in
        the records are trimmed too, so ``" 00C"`` and ``"00C"`` are one area.
    delimiter : str
        CSV field separator (no sniffing: a file with another separator is an error).
    count_name, los_name : str
        Output column names (defaults ``emergency_admissions`` and ``bed_days``).
    threads : int, optional
        DuckDB worker threads (default: DuckDB's, one per core).
    memory_limit : str, optional
        DuckDB memory limit such as ``"2GB"``.
    date_limits : (earliest, latest), optional
        Believable record dates; any record outside is an error (a typed year). Default
        :data:`EARLIEST_DATE` to one year after today (:func:`plausible_dates`).

    Returns
    -------
    pandas.DataFrame
        One row per area x month: ``area`` (str), ``month`` (datetime64, first of the
        month), ``count_name`` (int64) and, with ``los_col``, ``los_name`` (float64).
        Area-months without records are 0.

    Raises
    ------
    DataError
        No file matched; a file is empty or has only a header; a needed column is
        missing (the message suggests the separator when the header looks like another
        delimiter); an area is blank; a date is missing, unparseable or outside
        ``date_limits``; the records span more than :data:`MAX_SPAN_YEARS` years when
        ``start``/``end`` are not both given; a length of stay is not a number or is
        negative; a record's area is not in ``areas``; no record falls in
        ``[start, end]``; or ``out`` cannot be written (naming ``out``). File, row
        (header = row 1), column and value are named, with the next offending rows.
    ValueError
        If ``start``/``end`` are not months, ``end`` is before ``start``, or the period
        lies outside ``date_limits`` or spans more than :data:`MAX_SPAN_YEARS` years.

    Warns
    -----
    UserWarning
        When records outside ``[start, end]`` are dropped, or lengths of stay are empty.
    DataWarning
        When ``start`` or ``end`` is inferred from the data.
    """
    import duckdb

    src = resolve_source(source)
    needed = [date_col, area_col] + ([los_col] if los_col else [])
    if len(set(needed)) != len(needed):
        raise ValueError(f"aggregate_records: date, area and LOS columns must differ: {needed}")
    limits = plausible_dates(date_limits)
    asked = _requested_months(start, end, limits)
    # A bad out= is found before minutes of aggregation, not after.
    out_path = _check_out(out, src) if out is not None else None
    con = duckdb.connect()
    try:
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            con.execute(f"SET memory_limit = {_quote_literal(memory_limit)}")
        con.execute("SET preserve_insertion_order = true")
        # DuckDB may push a TRY_CAST used twice in one query into the CSV reader as a strict
        # type, which turns a bad date into a reader crash instead of a counted NULL. The
        # validation queries therefore run without that optimisation; the aggregation
        # (on validated records) runs with it.
        con.execute("SET disabled_optimizers = 'type_pushdown'")
        if src.kind == "frame":
            con.register("__records_frame", src.frame)
        try:
            panel, months = _aggregate(
                con,
                src,
                needed,
                date_col,
                area_col,
                los_col,
                delimiter,
                limits,
                asked,
                start,
                end,
                areas,
                count_name,
                los_name,
            )
        except duckdb.Error as exc:
            # A reader failure deep in a file (a ragged line, bytes that are not UTF-8)
            # is explained with its row, not passed on as the engine's message.
            raise _explain(exc, src, delimiter) from exc
    finally:
        con.close()

    panel = tidy_panel(panel, count_name, los_name if los_col else None)
    if panel[count_name].sum() == 0:
        raise DataError(
            src.label(),
            f"at least one record dated {months[0]:%Y-%m} to {months[-1]:%Y-%m}",
            column=date_col,
            found="none in that range",
        )
    if out_path is not None:
        write_panel(panel, out_path)
    return panel


def _aggregate(
    con,
    src,
    needed,
    date_col,
    area_col,
    los_col,
    delimiter,
    limits,
    asked,
    start,
    end,
    areas,
    count_name,
    los_name,
) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """The checks and the query of :func:`aggregate_records`, on an open connection.

    Returns
    -------
    (pandas.DataFrame, list of pandas.Timestamp)
        The engine's panel (untidied) and the panel's months.
    """
    _check_columns(con, src, needed, delimiter)

    relation = _records_relation(src, date_col, area_col, los_col, delimiter)
    if src.kind != "frame":
        positioned = _records_relation(
            src, date_col, area_col, los_col, delimiter, with_position=True
        )
        empty = _empty_files(con, src, positioned)
        if empty:
            raise DataError(
                empty[0], "at least one record below the header row", found="no records"
            )
    elif len(src.frame) == 0:
        raise DataError(_DATAFRAME_LABEL, "at least one record", found="no rows")
    con.execute(f"CREATE TEMP VIEW records AS SELECT * FROM {relation}")

    checks = _validate(con, "records", date_col, area_col, los_col, limits)
    _raise_for_bad_records(con, src, checks, date_col, area_col, los_col, delimiter, limits)
    months = _panel_months(con, src, checks, asked, date_col, area_col, los_col, delimiter)
    if start is not None or end is not None:
        # Without a requested range the months span the data, so nothing is outside.
        _warn_out_of_range(con, src, date_col, months)

    area_list = None
    if areas is not None:
        area_list = sorted({str(x).strip() for x in areas})
        _check_known_areas(con, src, area_list, date_col, area_col, los_col, delimiter)
    if checks.missing_los:
        warnings.warn(
            f"{src.label()}: {checks.missing_los:,} record(s) with an empty "
            f"{los_col!r} are counted as admissions but add no {los_name}",
            UserWarning,
            stacklevel=3,
        )

    con.execute("RESET disabled_optimizers")
    table = "records"
    if los_col:
        # The query sums the column as it is; CSV text becomes a number here, in the
        # engine-specific part, so the query itself needs no engine's type names.
        lo = _quote_ident(los_col)
        con.execute(
            f"CREATE TEMP VIEW typed_records AS SELECT * REPLACE "
            f"(CAST({lo} AS DOUBLE) AS {lo}) FROM records"
        )
        table = "typed_records"
    sql = aggregation_sql(
        table,
        start=months[0],
        end=months[-1],
        date_col=date_col,
        area_col=area_col,
        los_col=los_col,
        areas=area_list,
        count_name=count_name,
        los_name=los_name,
    )
    return con.execute(sql).df(), months


def _requested_months(start, end, limits) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The stated first and last month, checked against the believable window and span.

    Raises
    ------
    ValueError
        If a month is unreadable or outside ``limits``, the end is before the start, or
        the period spans more than :data:`MAX_SPAN_YEARS` years.
    """
    lo_lim, hi_lim = (ts.to_period("M").to_timestamp() for ts in limits)
    asked = []
    for value, name in ((start, "start"), (end, "end")):
        if value is None:
            asked.append(None)
            continue
        m = _month_start(value, name)
        if not lo_lim <= m <= hi_lim:
            raise ValueError(
                f"{name}: expected a month from {lo_lim:%Y-%m} to {hi_lim:%Y-%m} "
                f"(date_limits=); found {value!r}"
            )
        asked.append(m)
    lo, hi = asked
    if lo is not None and hi is not None:
        n = len(month_range(lo, hi))
        if n > MAX_SPAN_YEARS * 12:
            raise ValueError(
                f"start {lo:%Y-%m} to end {hi:%Y-%m}: expected at most {MAX_SPAN_YEARS} "
                f"years; found {n / 12:.1f} years"
            )
    return lo, hi


def _panel_months(con, src, checks, asked, date_col, area_col, los_col, delimiter):
    """Months of the panel: as stated, or from the data with a warning naming its extremes.

    Raises
    ------
    DataError
        If an inferred period spans more than :data:`MAX_SPAN_YEARS` years (naming the
        file and row of the earliest and latest record).
    """
    first = pd.Timestamp(checks.first_date)
    last = pd.Timestamp(checks.last_date)
    first_text, last_text = _show(checks.first_date), _show(checks.last_date)
    lo = asked[0] if asked[0] is not None else first.to_period("M").to_timestamp()
    hi = asked[1] if asked[1] is not None else last.to_period("M").to_timestamp()
    if asked[0] is not None and asked[1] is not None:
        return month_range(lo, hi)
    months = month_range(lo, hi) if hi >= lo else []
    inferred = [n for n, a in zip(("start", "end"), asked, strict=True) if a is None]
    if len(months) > MAX_SPAN_YEARS * 12 or not months:
        d = _quote_ident(date_col)
        where = []
        for label, value in (("earliest", checks.first_date), ("latest", checks.last_date)):
            cond = f"TRY_CAST({d} AS TIMESTAMP) = TIMESTAMP {_quote_literal(value)}"
            f, row, _ = _first_offender(
                con, src, cond, date_col, date_col, area_col, los_col, delimiter
            )
            where.append(f"{label} {_show(value)} in {f} row {row}")
        raise DataError(
            src.label(),
            f"records spanning at most {MAX_SPAN_YEARS} years, or start= and end= "
            f"(inferred {' and '.join(inferred)}: {lo:%Y-%m} to {hi:%Y-%m})",
            column=date_col,
            found=f"{first_text} to {last_text}",
            note="; ".join(where) + "; a mistyped year?",
        )
    warnings.warn(
        f"{src.label()}: no {' or '.join(inferred)} given, so the panel runs "
        f"{lo:%Y-%m} to {hi:%Y-%m}, taken from the records: earliest {first_text}, "
        f"latest {last_text} (column {date_col!r}). Pass start= and end= to state "
        "the period; a mistyped date would otherwise stretch the panel.",
        DataWarning,
        stacklevel=4,
    )
    return months


def _show(timestamp_text: str) -> str:
    """A DuckDB timestamp as text, without a midnight time that was never in the data."""
    return timestamp_text.removesuffix(" 00:00:00")


def _check_out(out, src: _Source) -> Path:
    """Refuse an ``out`` that cannot be written, before any aggregation is done.

    Raises
    ------
    DataError
        Naming ``out``: not ``.parquet``/``.csv``, a folder, inside a file, in a folder
        that cannot be written, or one of the records files themselves.
    """
    path = Path(out)
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise DataError(
            path, "an output file name ending in .parquet or .csv", found=path.suffix or path.name
        )
    if path.is_dir():
        raise DataError(path, "a file name for the panel", found="an existing folder")
    if src.kind != "frame" and any(path.resolve() == Path(f).resolve() for f in src.files):
        raise DataError(path, "an output file other than the records", found="a records file")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(
            path,
            "an output path whose folder exists or can be created",
            found=f"{folder} is a file",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(
            path,
            "an output path in a folder you can write to",
            found=f"no write access to {folder}",
        )
    return path


def _raise_for_bad_records(
    con, src, checks: _Checks, date_col, area_col, los_col, delimiter, limits
):
    """Raise a DataError for the first kind of bad record found, naming the first few.

    Raises
    ------
    DataError
        For a blank area, an unreadable or implausible date, or an unreadable or
        negative length of stay: file, row, column and value of the first offender, the
        total, and the next few offending rows.
    """

    def locate(condition: str, column: str, total: int = 0):
        hits = _offenders(
            con, src, condition, column, date_col, area_col, los_col, delimiter, _MAX_EXAMPLES
        )
        f, row, value = hits[0] if hits else (src.label(), None, None)
        return f, row, value, _more(hits, total)

    d, a = _quote_ident(date_col), _quote_ident(area_col)
    if checks.bad_area:
        f, row, value, more = locate(
            f"({a} IS NULL OR TRIM(CAST({a} AS VARCHAR)) = '')", area_col, checks.bad_area
        )
        raise DataError(
            f,
            f"a non-blank area code ({checks.bad_area:,} blank in all)",
            row=row,
            column=area_col,
            found=value,
            note=more,
        )
    if checks.bad_date:
        f, row, value, more = locate(
            f"TRY_CAST({d} AS TIMESTAMP) IS NULL", date_col, checks.bad_date
        )
        raise DataError(
            f,
            f"a date YYYY-MM-DD or datetime YYYY-MM-DD HH:MM:SS "
            f"({checks.bad_date:,} unreadable in all)",
            row=row,
            column=date_col,
            found=value,
            note=more,
        )
    if checks.implausible:
        lo, hi = limits
        f, row, value, more = locate(
            _outside(f"TRY_CAST({d} AS TIMESTAMP)", limits), date_col, checks.implausible
        )
        hint = "a mistyped year? date_limits= widens the window for older or later data"
        raise DataError(
            f,
            f"a date from {lo:%Y-%m-%d} to {hi:%Y-%m-%d} ({checks.implausible:,} outside in all)",
            row=row,
            column=date_col,
            found=value,
            note=f"{more}; {hint}" if more else hint,
        )
    if los_col and checks.bad_los:
        lo = _quote_ident(los_col)
        f, row, value, more = locate(
            f"NOT ({lo} IS NULL OR TRIM(CAST({lo} AS VARCHAR)) = '') "
            f"AND TRY_CAST({lo} AS DOUBLE) IS NULL",
            los_col,
            checks.bad_los,
        )
        raise DataError(
            f,
            f"a length of stay in days, a number ({checks.bad_los:,} unreadable in all)",
            row=row,
            column=los_col,
            found=value,
            note=more,
        )
    if los_col and checks.neg_los:
        lo = _quote_ident(los_col)
        f, row, value, more = locate(
            _los_out_of_range(f"TRY_CAST({lo} AS DOUBLE)"), los_col, checks.neg_los
        )
        raise DataError(
            f,
            f"a non-negative, finite length of stay of at most {MAX_LOS_DAYS:,} days "
            f"({checks.neg_los:,} outside in all)",
            row=row,
            column=los_col,
            found=value,
            note=more,
        )


def _warn_out_of_range(con, src, date_col: str, months: list[pd.Timestamp]) -> None:
    d = _quote_ident(date_col)
    lo = f"{months[0]:%Y-%m-%d} 00:00:00"
    hi = f"{months[-1] + pd.offsets.MonthBegin(1):%Y-%m-%d} 00:00:00"
    before, after = con.execute(
        f"SELECT COUNT(*) FILTER (WHERE CAST({d} AS TIMESTAMP) < TIMESTAMP {_quote_literal(lo)}), "
        f"COUNT(*) FILTER (WHERE CAST({d} AS TIMESTAMP) >= TIMESTAMP {_quote_literal(hi)}) "
        "FROM records"
    ).fetchall()[0]
    if before or after:
        warnings.warn(
            f"{src.label()}: dropped {before + after:,} record(s) dated outside "
            f"{months[0]:%Y-%m} to {months[-1]:%Y-%m} ({before:,} before, {after:,} after)",
            UserWarning,
            stacklevel=4,
        )


def _check_known_areas(con, src, area_list, date_col, area_col, los_col, delimiter) -> None:
    con.register("__known_areas", pd.DataFrame({"area": area_list}))
    a = _quote_ident(area_col)
    unknown = f"TRIM(CAST({a} AS VARCHAR)) NOT IN (SELECT area FROM __known_areas)"
    n = con.execute(f"SELECT COUNT(*) FROM records WHERE {unknown}").fetchall()[0][0]
    if n:
        f, row, value = _first_offender(
            con, src, unknown, area_col, date_col, area_col, los_col, delimiter
        )
        raise DataError(
            f,
            f"an area listed in 'areas' ({n:,} record(s) outside the list)",
            row=row,
            column=area_col,
            found=value,
        )


def tidy_panel(panel: pd.DataFrame, count_name: str, los_name: str | None) -> pd.DataFrame:
    """The aggregated panel in its published types and order (both engines' output)."""
    panel[schema.AREA] = panel[schema.AREA].astype(str)
    panel[schema.MONTH] = pd.to_datetime(panel[schema.MONTH]).astype("datetime64[ns]")
    panel[count_name] = panel[count_name].astype("int64")
    if los_name:
        panel[los_name] = panel[los_name].astype("float64")
    return panel.sort_values([schema.AREA, schema.MONTH], kind="stable").reset_index(drop=True)


def write_panel(panel: pd.DataFrame, out) -> Path:
    """Write an area-month panel atomically as parquet or CSV.

    Parameters
    ----------
    panel : pandas.DataFrame
        Output of :func:`aggregate_records`.
    out : str or pathlib.Path
        ``.parquet`` keeps ``month`` as a date; ``.csv`` writes it as ``YYYY-MM``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        If ``out`` is neither ``.parquet`` nor ``.csv``.
    DataError
        If ``out`` cannot be written; the message names ``out``, not the temporary
        file the atomic write goes through.
    """
    from vanguard.io import write_csv, write_parquet

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"out {str(out)!r}: expected a .parquet or .csv file name")
    try:
        if suffix == ".parquet":
            return write_parquet(out, panel)
        csv = panel.copy()
        csv[schema.MONTH] = csv[schema.MONTH].dt.strftime("%Y-%m")
        return write_csv(out, csv)
    except OSError as exc:
        raise DataError(
            out, "a path the panel can be written to", found=exc.strerror or type(exc).__name__
        ) from exc
