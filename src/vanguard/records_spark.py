"""Record-level route on Apache Spark: the same aggregation as :mod:`vanguard.records`.

NHS record-level hospital data (Hospital Episode Statistics and the like) is usually held
in a secure data environment that runs Spark (often Databricks), and a national extract
outgrows one machine. This module runs the project's aggregation there:

* the records are read by Spark (CSV or parquet files, or a table or DataFrame already in
  the session);
* they are checked in one Spark pass, with the same rules and the same
  :class:`~vanguard.errors.DataError` and warnings as :func:`vanguard.records.aggregate_records`
  (blank areas, unreadable dates, non-numeric or negative lengths of stay, records
  outside the requested months, areas outside ``areas``);
* the aggregation itself is the text of :func:`vanguard.records.aggregation_sql`, run
  unchanged by ``spark.sql``. There is no second, Spark-specific query to drift from
  the DuckDB one: the Spark driver only renames the record columns to plain names
  (``rec_date``, ``rec_area``, ``rec_los``) first, because Spark SQL reads a
  double-quoted name as a string, not a column;
* the area x month result is small (areas x months, whatever the number of records), so
  it is collected to the driver and returned, or written, as the same pandas panel the
  DuckDB route gives, ready for ``vanguard.panel.load_panel("custom", path=...)``.

``python -m vanguard.records_spark --input ... --out panel.parquet`` is the job entry
point (see ``docs/spark.md``); inside a Spark or Databricks notebook call
:func:`aggregate_records_spark` with the notebook's ``spark`` session.

pyspark is an optional dependency (``pip install -e '.[spark]'``, or ``make test-spark``);
it is imported only when a function here runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import pandas as pd

from vanguard import schema
from vanguard.errors import DataError, DataWarning
from vanguard.records import (
    DEFAULT_COUNT,
    DEFAULT_LOS_SUM,
    MAX_LOS_DAYS,
    MAX_SPAN_YEARS,
    aggregation_sql,
    month_range,
    plausible_dates,
    resolve_source,
    tidy_panel,
    write_panel,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from pyspark.sql import DataFrame, SparkSession

DATE = "rec_date"
AREA = "rec_area"
LOS = "rec_los"
"""Plain column names the records are renamed to before the portable query runs."""
FILE = "rec_file"
_COUNT_OUT = "n_records"
_LOS_OUT = "los_total"
_SPARK_FRAME = "<Spark DataFrame>"
_INSTALL_HINT = "pyspark is needed: pip install -e '.[spark]' (and a Java 17+ runtime)"


def _require_pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from exc


# --- sessions ---------------------------------------------------------------------------


def local_session(
    cores: int = 2,
    *,
    driver_memory: str = "2g",
    app_name: str = "vanguard-records",
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """A Spark session on this machine (``local[cores]``), for tests, benchmarks and a
    one-machine run.

    Parameters
    ----------
    cores : int
        Worker threads of the local master.
    driver_memory : str
        JVM heap of the driver, which in local mode also runs the tasks.
    app_name : str
        Spark application name.
    conf : dict, optional
        Further Spark settings (``{"spark.sql.warehouse.dir": ...}``).

    Returns
    -------
    pyspark.sql.SparkSession
        A new session, or the running one if a session already exists in this process
        (Spark allows one per process; its settings are then left as they are).

    Notes
    -----
    Sets ``PYSPARK_PYTHON`` to this interpreter unless it is already set.
    """
    _require_pyspark()
    from pyspark.sql import SparkSession

    # Python workers (needed by DataFrames built from Python objects) must run this
    # interpreter: pyspark otherwise starts whatever `python3` is first on PATH, and
    # refuses to run when its minor version differs from the driver's. pyspark reads
    # only the environment variable for this, so it is set (unless already set).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(f"local[{int(cores)}]")
        .appName(app_name)
        .config("spark.driver.memory", driver_memory)
        # The default of 200 shuffle partitions is sized for clusters; on a few local
        # cores it only adds scheduling overhead to a group-by of a few thousand cells.
        .config("spark.sql.shuffle.partitions", str(max(2 * int(cores), 2)))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextlib.contextmanager
def _utc(spark: SparkSession) -> Iterator[None]:
    """Run with the session time zone set to UTC, then restore it.

    Spark's TIMESTAMP is zoned by the session: in a session set to, say, Europe/London,
    a naive parquet timestamp or a date cast to a timestamp could fall into the
    neighbouring month at a month boundary. DuckDB's timestamps are naive, so UTC is
    the setting under which both engines read a record's month the same way.
    """
    key = "spark.sql.session.timeZone"
    before = spark.conf.get(key)
    spark.conf.set(key, "UTC")
    try:
        yield
    finally:
        spark.conf.set(key, before)


# --- reading ----------------------------------------------------------------------------


def _is_uri(path: str) -> bool:
    # dbfs:/..., s3a://..., abfss://...: a cluster path that only Spark can resolve.
    head = path.split("/", 1)[0]
    return head.endswith(":") and len(head) > 2


def _kind_of(path: str, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"fmt {fmt!r}: expected 'csv' or 'parquet'")
        return fmt
    name = path.lower().rstrip("/")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return "csv"
    raise DataError(path, "a .csv, .csv.gz or .parquet records path (or fmt=)", found=name)


def read_records(
    spark: SparkSession, source, *, delimiter: str = ",", fmt: str | None = None
) -> tuple[DataFrame, str]:
    """Point Spark at the records.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    source : str, pathlib.Path, list of them, or pyspark.sql.DataFrame
        Local files or globs (checked as :func:`vanguard.records.aggregate_records`
        checks them: they must exist, be non-empty and share one format), cluster paths
        such as ``dbfs:/...`` or ``abfss://...`` (folders and globs allowed, resolved by
        Spark), or a DataFrame (``spark.table("hes.apc")``).
    delimiter : str
        CSV field separator.
    fmt : {"csv", "parquet"}, optional
        Format of cluster paths whose names do not end in ``.csv`` or ``.parquet``
        (a folder of part files, say).

    Returns
    -------
    tuple of (pyspark.sql.DataFrame, str)
        The raw records (CSV columns as text, so area codes keep their leading zeros)
        and a label naming the source in messages.

    Raises
    ------
    DataError
        If a local file is missing or empty, or formats are mixed.
    """
    _require_pyspark()
    from pyspark.sql import DataFrame

    if isinstance(source, DataFrame):
        return source, _SPARK_FRAME
    items = [source] if isinstance(source, (str, Path)) else list(source)
    items = [str(x) for x in items]
    if items and all(_is_uri(x) for x in items):
        kinds = {_kind_of(x, fmt) for x in items}
        if len(kinds) > 1:
            raise DataError(items[0], "records of one format (all CSV or all parquet)")
        kind, files = kinds.pop(), items
        label = files[0] if len(files) == 1 else f"{len(files)} paths"
    else:
        # Local files get exactly the DuckDB route's checks, so both routes reject the
        # same inputs with the same messages.
        src = resolve_source(items)
        kind, files, label = src.kind, list(src.files), src.label()
    if kind == "parquet":
        return spark.read.option("mergeSchema", "true").parquet(*files), label
    reader = spark.read.options(
        header=True,
        sep=delimiter,
        # Every field stays text, as in the DuckDB route: a malformed value must reach
        # the checks below, and "00C" must not become 0.
        inferSchema=False,
        # Spark takes the column order from the first file's header; with this setting
        # a file whose header differs is an error rather than silently misaligned.
        enforceSchema=False,
        mode="FAILFAST",
    )
    return reader.csv(files), label


# --- checks -----------------------------------------------------------------------------


def _check_columns(raw: DataFrame, label: str, needed: Sequence[str]) -> None:
    cols = list(raw.columns)
    missing = [c for c in needed if c not in cols]
    if missing:
        raise DataError(
            label,
            f"a column named {missing[0]!r} (needed: {list(needed)})",
            row=1,
            column=missing[0],
            found=f"columns {cols}",
        )


def _conditions(los: bool, limits: tuple[pd.Timestamp, pd.Timestamp]):
    """Spark column expressions flagging each kind of bad record (on renamed columns),
    with the DuckDB route's rules: dates inside ``limits``, lengths of stay finite,
    non-negative and at most :data:`vanguard.records.MAX_LOS_DAYS`."""
    from pyspark.sql import functions as F

    ts = F.expr(f"try_cast({DATE} AS TIMESTAMP)")
    area = F.col(AREA).cast("string")
    lo, hi = limits
    cond = {
        "bad_area": area.isNull() | (F.trim(area) == ""),
        "bad_date": ts.isNull(),
        "implausible": ts.isNotNull()
        & ((ts < _ts_literal(lo)) | (ts >= _ts_literal(hi + pd.Timedelta(days=1)))),
    }
    if los:
        text = F.col(LOS).cast("string")
        num = F.expr(f"try_cast({LOS} AS DOUBLE)")
        missing = text.isNull() | (F.trim(text) == "")
        cond["missing_los"] = missing
        cond["bad_los"] = ~missing & num.isNull()
        cond["neg_los"] = (
            (num < 0) | F.isnan(num) | (num == float("inf")) | (num == float("-inf"))
            | (num > MAX_LOS_DAYS)
        )
    return ts, cond


def _first_offender(raw: DataFrame, picked: list, condition, column: str):
    """File and value of one record meeting ``condition`` (Spark keeps no row order).

    Only called once a check has failed, so the file lookup costs nothing on good data.
    ``_metadata.file_path`` is used rather than ``input_file_name()``, which some
    Databricks access modes forbid; a DataFrame that is not read from files has neither.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    try:
        recs = raw.select(*picked, F.col("_metadata.file_path").alias(FILE))
        row = recs.where(condition).select(FILE, column).limit(1).collect()
    except AnalysisException:
        recs = raw.select(*picked)
        row = recs.where(condition).select(F.lit(None).alias(FILE), column).limit(1).collect()
    if not row:
        return None, None
    file, value = row[0][0], row[0][1]
    if isinstance(file, str) and file.startswith("file:"):
        file = unquote(urlparse(file).path)
    return file or None, None if value is None else str(value)


def _ts_literal(month: pd.Timestamp):
    from pyspark.sql import functions as F

    # A SQL literal is read in the session time zone (UTC here); a Python datetime
    # would be converted through the Python process's local zone instead.
    return F.expr(f"TIMESTAMP '{month:%Y-%m-%d} 00:00:00'")


def _check(
    raw: DataFrame,
    picked: list,
    label: str,
    cols: dict[str, str | None],
    *,
    start: pd.Timestamp | None,
    end_exclusive: pd.Timestamp | None,
    areas: list[str] | None,
    limits: tuple[pd.Timestamp, pd.Timestamp],
) -> dict:
    """Every record check in one Spark pass; raise for the first kind of bad record.

    Returns
    -------
    dict
        Counts ``n``, ``missing_los``, ``before`` and ``after`` (records outside
        ``[start, end_exclusive)``), and ``first``/``last``, the first and last month
        of the data as ``YYYY-MM`` text (formatted by Spark, in the session zone).
    """
    from pyspark.sql import functions as F

    los = cols["los"] is not None
    ts, cond = _conditions(los, limits)
    if areas is not None:
        cond["unknown_area"] = ~F.col(AREA).cast("string").isin(areas)
    aggs = [F.count(F.lit(1)).alias("n")]
    aggs += [F.count(F.when(c, 1)).alias(name) for name, c in cond.items()]
    aggs += [
        F.date_format(F.min(ts), "yyyy-MM").alias("first"),
        F.date_format(F.max(ts), "yyyy-MM").alias("last"),
        F.date_format(F.min(ts), "yyyy-MM-dd HH:mm:ss").alias("first_date"),
        F.date_format(F.max(ts), "yyyy-MM-dd HH:mm:ss").alias("last_date"),
    ]
    if start is not None:
        aggs.append(F.count(F.when(ts < _ts_literal(start), 1)).alias("before"))
    if end_exclusive is not None:
        aggs.append(F.count(F.when(ts >= _ts_literal(end_exclusive), 1)).alias("after"))
    recs = raw.select(*picked)
    got = recs.agg(*aggs).collect()[0].asDict()
    got.setdefault("before", 0)
    got.setdefault("after", 0)
    got.setdefault("missing_los", 0)
    for k in ("first_date", "last_date"):
        if got.get(k):
            # as the DuckDB route shows it: no midnight time that was never in the data
            got[k] = got[k].removesuffix(" 00:00:00")
    if got["n"] == 0:
        raise DataError(label, "at least one record below the header row", found="no records")

    # Same order and wording as the DuckDB driver's checks.
    failures = [
        ("bad_area", AREA, "area", "a non-blank area code ({n} blank in all)"),
        (
            "bad_date",
            DATE,
            "date",
            "a date YYYY-MM-DD or datetime YYYY-MM-DD HH:MM:SS ({n} unreadable in all)",
        ),
        (
            "implausible",
            DATE,
            "date",
            f"a date from {limits[0]:%Y-%m-%d} to {limits[1]:%Y-%m-%d} ({{n}} outside in all)",
        ),
        ("bad_los", LOS, "los", "a length of stay in days, a number ({n} unreadable in all)"),
        (
            "neg_los",
            LOS,
            "los",
            f"a non-negative, finite length of stay of at most {MAX_LOS_DAYS:,} days "
            "({n} outside in all)",
        ),
        (
            "unknown_area",
            AREA,
            "area",
            "an area listed in 'areas' ({n} record(s) outside the list)",
        ),
    ]
    for name, column, key, expected in failures:
        if got.get(name):
            file, value = _first_offender(raw, picked, cond[name], column)
            raise DataError(
                file or label,
                expected.format(n=f"{got[name]:,}"),
                column=cols[key],
                found=value,
            )
    return got


def _column(name: str):
    """A column by its exact name: backtick-quoted, so dots and spaces are not parsed."""
    from pyspark.sql import functions as F

    return F.col("`" + str(name).replace("`", "``") + "`")


# --- the driver -------------------------------------------------------------------------


def aggregate_records_spark(
    source,
    *,
    spark: SparkSession | None = None,
    date_col: str = "admission_date",
    area_col: str = "area",
    los_col: str | None = None,
    start=None,
    end=None,
    out=None,
    areas: Iterable[str] | None = None,
    delimiter: str = ",",
    fmt: str | None = None,
    date_limits=None,
    count_name: str = DEFAULT_COUNT,
    los_name: str = DEFAULT_LOS_SUM,
) -> pd.DataFrame:
    """Aggregate admission records to the area-month panel with Spark.

    Same arguments, checks and result as :func:`vanguard.records.aggregate_records`
    (which it is tested against), plus the Spark session and the sources only Spark
    reads.

    Parameters
    ----------
    source : str, pathlib.Path, list of them, or pyspark.sql.DataFrame
        See :func:`read_records`.
    spark : pyspark.sql.SparkSession, optional
        Default: the running session (a notebook's ``spark``), else a new local one.
    date_col, area_col, los_col, start, end, areas, delimiter, date_limits, count_name, los_name
        As in :func:`vanguard.records.aggregate_records`.
    out : str or pathlib.Path, optional
        Write the panel (``.parquet`` or ``.csv``) with
        :func:`vanguard.records.write_panel`. It is a path on the driver: on Databricks
        a ``/Volumes/...`` or ``/dbfs/...`` path.
    fmt : {"csv", "parquet"}, optional
        Format of cluster paths without a telling extension.

    Returns
    -------
    pandas.DataFrame
        One row per area x month: ``area`` (str), ``month`` (datetime64, first of the
        month), ``count_name`` (int64) and, with ``los_col``, ``los_name`` (float64).

    Raises
    ------
    DataError
        As :func:`vanguard.records.aggregate_records`. Spark keeps no row order, so a
        message names the file and an offending value but not its row.
    ValueError
        If ``start``/``end`` are not months, ``end`` is before ``start``, the columns
        are not distinct, or a code in ``areas`` contains a backslash.

    Warns
    -----
    UserWarning
        When records outside ``[start, end]`` are dropped, or lengths of stay are empty.
    """
    _require_pyspark()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    needed = [date_col, area_col] + ([los_col] if los_col else [])
    if len(set(needed)) != len(needed):
        raise ValueError(
            f"aggregate_records_spark: date, area and LOS columns must differ: {needed}"
        )
    if spark is None:
        spark = SparkSession.getActiveSession() or local_session()
    limits = plausible_dates(date_limits)
    # month_range(x, x) reads one month with the DuckDB route's parsing and messages.
    lo = month_range(start, start)[0] if start is not None else None
    hi = month_range(end, end)[0] if end is not None else None
    if lo is not None and hi is not None:
        month_range(lo, hi)  # rejects a reversed range before any Spark work
    area_list = sorted({str(x) for x in areas}) if areas is not None else None
    if area_list and any("\\" in a for a in area_list):
        # The codes become SQL literals, and Spark SQL reads a backslash in a literal as
        # an escape, so such a code would silently stop matching its records.
        raise ValueError("aggregate_records_spark: area codes in 'areas' cannot contain '\\'")

    raw, label = read_records(spark, source, delimiter=delimiter, fmt=fmt)
    _check_columns(raw, label, needed)
    picked = [_column(date_col).alias(DATE), _column(area_col).alias(AREA)]
    if los_col:
        picked.append(_column(los_col).alias(LOS))
    cols = {"date": date_col, "area": area_col, "los": los_col}

    view = f"vanguard_records_{uuid.uuid4().hex}"
    with _utc(spark):
        got = _check(
            raw,
            picked,
            label,
            cols,
            start=lo,
            end_exclusive=hi + pd.offsets.MonthBegin(1) if hi is not None else None,
            areas=area_list,
            limits=limits,
        )
        months = month_range(
            lo if lo is not None else got["first"], hi if hi is not None else got["last"]
        )
        inferred = [n for n, a in zip(("start", "end"), (lo, hi), strict=True) if a is None]
        if inferred:
            # the DuckDB route's rule and words: an inferred period is stated, and one
            # longer than MAX_SPAN_YEARS is a typing error, not a panel
            if len(months) > MAX_SPAN_YEARS * 12:
                raise DataError(
                    label,
                    f"records spanning at most {MAX_SPAN_YEARS} years, or start= and end= "
                    f"(inferred {' and '.join(inferred)}: {months[0]:%Y-%m} to "
                    f"{months[-1]:%Y-%m})",
                    column=date_col,
                    found=f"{got['first_date']} to {got['last_date']}",
                )
            warnings.warn(
                f"{label}: no {' or '.join(inferred)} given, so the panel runs "
                f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}, taken from the records: earliest "
                f"{got['first_date']}, latest {got['last_date']} (column {date_col!r}). "
                "Pass start= and end= to state the period; a mistyped date would otherwise "
                "stretch the panel.",
                DataWarning,
                stacklevel=2,
            )
        before, after = got["before"], got["after"]
        if before or after:
            warnings.warn(
                f"{label}: dropped {before + after:,} record(s) dated outside "
                f"{months[0]:%Y-%m} to {months[-1]:%Y-%m} ({before:,} before, {after:,} after)",
                UserWarning,
                stacklevel=2,
            )
        if got["missing_los"]:
            warnings.warn(
                f"{label}: {got['missing_los']:,} record(s) with an empty "
                f"{los_col!r} are counted as admissions but add no {los_name}",
                UserWarning,
                stacklevel=2,
            )

        # As in the DuckDB driver, the length of stay becomes a number here, in the
        # engine-specific part, so that the shared query needs no engine's type names.
        typed = [DATE, AREA] + ([F.col(LOS).cast("double").alias(LOS)] if los_col else [])
        raw.select(*picked).select(*typed).createOrReplaceTempView(view)
        try:
            sql = aggregation_sql(
                view,
                start=months[0],
                end=months[-1],
                date_col=DATE,
                area_col=AREA,
                los_col=LOS if los_col else None,
                areas=area_list,
                count_name=_COUNT_OUT,
                los_name=_LOS_OUT,
            )
            # The result has one row per area x month, small enough to collect whatever
            # the number of records; building the frame from plain rows avoids pyspark's
            # pandas conversion and its pandas-version limits.
            rows = [tuple(r) for r in spark.sql(sql).collect()]
        finally:
            spark.catalog.dropTempView(view)

    names = [schema.AREA, schema.MONTH, count_name] + ([los_name] if los_col else [])
    panel = pd.DataFrame(rows, columns=names)
    panel = tidy_panel(panel, count_name, los_name if los_col else None)
    if panel[count_name].sum() == 0:
        raise DataError(
            label,
            f"at least one record dated {months[0]:%Y-%m} to {months[-1]:%Y-%m}",
            column=date_col,
            found="none in that range",
        )
    if out is not None:
        write_panel(panel, out)
    return panel


# --- command line -----------------------------------------------------------------------


def _read_areas(path) -> list[str]:
    areas = pd.read_csv(path, dtype=str, keep_default_na=False)
    if schema.AREA not in areas.columns:
        raise DataError(path, f"a column named {schema.AREA!r}", row=1, found=list(areas.columns))
    return areas[schema.AREA].tolist()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vanguard.records_spark``: aggregate records with Spark, write the panel.

    Uses the running Spark session where there is one (a Databricks job or notebook),
    else the master given by ``--master`` or by ``spark-submit``, else a local one.

    Returns
    -------
    int
        0 on success.
    """
    parser = argparse.ArgumentParser(
        prog="python -m vanguard.records_spark",
        description="Aggregate admission records (one row each) to the area-month panel "
        "with Spark, running the same SQL as the DuckDB route.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--input",
        nargs="+",
        metavar="PATH",
        help="CSV or parquet files, globs or cluster paths (dbfs:/..., abfss://...)",
    )
    where.add_argument("--table", help="a table of records in the Spark catalog (db.table)")
    parser.add_argument(
        "--out", required=True, type=Path, help="panel file on the driver: .parquet or .csv"
    )
    parser.add_argument("--date-col", default="admission_date")
    parser.add_argument("--area-col", default="area")
    parser.add_argument("--los-col", default=None, help="length of stay in days (optional)")
    parser.add_argument("--start", default=None, help="first month, e.g. 2012-04")
    parser.add_argument("--end", default=None, help="last month, e.g. 2018-03")
    parser.add_argument(
        "--areas-file",
        type=Path,
        default=None,
        help="CSV with an 'area' column: the panel's areas (default: those in the records)",
    )
    parser.add_argument("--delimiter", default=",")
    parser.add_argument("--format", dest="fmt", choices=("csv", "parquet"), default=None)
    parser.add_argument("--count-name", default=DEFAULT_COUNT)
    parser.add_argument("--los-name", default=DEFAULT_LOS_SUM)
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master when no session is running and spark-submit did not start "
        "this job (default: local[2])",
    )
    args = parser.parse_args(argv)
    if args.out.suffix.lower() not in (".parquet", ".csv"):
        parser.error("--out must end in .parquet or .csv")

    _require_pyspark()
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    owned = spark is None
    if owned:
        if args.master is not None:
            spark = SparkSession.builder.master(args.master).getOrCreate()
        elif "PYSPARK_GATEWAY_PORT" in os.environ:
            # Started by spark-submit: its JVM is already up with the cluster's master.
            spark = SparkSession.builder.getOrCreate()
        else:
            spark = local_session()
    try:
        source = spark.table(args.table) if args.table else args.input
        panel = aggregate_records_spark(
            source,
            spark=spark,
            date_col=args.date_col,
            area_col=args.area_col,
            los_col=args.los_col,
            start=args.start,
            end=args.end,
            out=args.out,
            areas=_read_areas(args.areas_file) if args.areas_file else None,
            delimiter=args.delimiter,
            fmt=args.fmt,
            count_name=args.count_name,
            los_name=args.los_name,
        )
    finally:
        if owned:
            spark.stop()
    print(
        f"wrote {args.out}: {panel[schema.AREA].nunique():,} areas x "
        f"{panel[schema.MONTH].nunique():,} months, {int(panel[args.count_name].sum()):,} records"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
