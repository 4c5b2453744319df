"""Benchmark of the record-level route: DuckDB, a pandas group-by and local Spark.

Synthetic admission records (date, area, length of stay) are written as parquet by
DuckDB itself, deterministically (hash of the row number, no random state), then
aggregated to the area-month panel by :func:`vanguard.records.aggregate_records`
(DuckDB), by the obvious pandas route (read the columns, group by area and month,
reindex on the full grid) and, where pyspark and Java are installed, by
:func:`vanguard.records_spark.aggregate_records_spark` on a ``local[threads]`` session.
Each measurement runs in a fresh process for its peak memory; every route's panel is
fingerprinted there, so the table says whether the routes agreed at every size.

Spark's figure is the aggregation in a started, warmed session (its driver JVM starts
once per job, so the start-up is reported in the note, not in the time), and its peak
memory adds the JVM's peak to the Python driver's.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import Result, skipped, yes_no

SIZES: tuple[int, ...] = (1_000_000, 10_000_000, 50_000_000)
QUICK_SIZES: tuple[int, ...] = (20_000, 60_000, 180_000)
PANDAS_CAP: int = 10_000_000
"""pandas materialises the extract in memory; it is not run above this many rows."""
SPARK_CAP: int = 10_000_000
"""Local Spark is run up to this many rows: it is here to show the route works and how
it scales, and a larger extract is what a cluster is for."""
SPARK_WARMUP_ROWS: int = 20_000
N_AREAS: int = 200
FIRST_DAY = "2012-04-01"
N_DAYS: int = 2191  # six financial years
GOAL_SECONDS: float = 30.0
GOAL_MB: float = 4096.0
GOAL_ROWS: int = 50_000_000
LINEAR_SLOPE_MAX: float = 1.15
"""A log-log slope of time on rows at most this is read as linear growth (fixed start-up
costs pull the slope below 1 at small sizes; above 1.15 something grows faster)."""


def generate_records(path, n_rows: int, *, n_areas: int = N_AREAS, threads: int = 2) -> Path:
    """Write ``n_rows`` synthetic admission records as one parquet file with DuckDB.

    Columns: ``admission_date`` (DATE, April 2012 to March 2018), ``area`` (``A000`` ...)
    and ``los`` (integer days, 0-14). Values come from a hash of the row number, so the
    file is the same on every run without any random generator.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination ``.parquet``.
    n_rows : int
    n_areas : int
    threads : int
        DuckDB threads.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        If ``n_rows`` or ``n_areas`` is not positive.
    """
    import duckdb

    if n_rows < 1 or n_areas < 1:
        raise ValueError(f"n_rows and n_areas must be positive; got {n_rows}, {n_areas}")
    path = Path(path)
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {int(threads)}")
        con.execute(f"""
            COPY (
                SELECT DATE '{FIRST_DAY}' + CAST(hash(i) % {N_DAYS} AS INTEGER) AS admission_date,
                       'A' || lpad(CAST(hash(i + 7919) % {n_areas} AS VARCHAR), 3, '0') AS area,
                       CAST(hash(i + 104729) % 15 AS INTEGER) AS los
                FROM range({int(n_rows)}) AS t(i)
            ) TO '{path.as_posix()}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
    finally:
        con.close()
    return path


def pandas_aggregate(path) -> pd.DataFrame:
    """Aggregate records with pandas alone (the route DuckDB is compared with).

    Parameters
    ----------
    path : str or pathlib.Path
        Parquet file of records (``admission_date``, ``area``, ``los``).

    Returns
    -------
    pandas.DataFrame
        Same shape and columns as :func:`vanguard.records.aggregate_records` with
        ``los_col="los"``.
    """
    df = pd.read_parquet(path, columns=["admission_date", "area", "los"])
    month = pd.to_datetime(df["admission_date"]).dt.to_period("M").dt.to_timestamp()
    agg = (
        df.assign(month=month)
        .groupby(["area", "month"], observed=True)
        .agg(emergency_admissions=("los", "size"), bed_days=("los", "sum"))
    )
    grid = pd.MultiIndex.from_product(
        [sorted(df["area"].unique()), pd.date_range(month.min(), month.max(), freq="MS")],
        names=["area", "month"],
    )
    out = agg.reindex(grid, fill_value=0).reset_index()
    out["month"] = out["month"].astype("datetime64[ns]")
    out["emergency_admissions"] = out["emergency_admissions"].astype("int64")
    out["bed_days"] = out["bed_days"].astype("float64")
    return out


def panel_digest(panel: pd.DataFrame) -> str:
    """A fingerprint of a panel's values, to tell in the parent whether routes agree."""
    return f"{int(pd.util.hash_pandas_object(panel, index=False).sum()) & (2**64 - 1):016x}"


def _summary(panel: pd.DataFrame) -> dict:
    return {
        "rows_out": len(panel),
        "total": int(panel["emergency_admissions"].sum()),
        "digest": panel_digest(panel),
    }


def task_duckdb(path: str, threads: int = 2):
    """Worker task: DuckDB aggregation of one records file."""
    from vanguard.records import aggregate_records

    def step(_):
        return _summary(aggregate_records(path, los_col="los", threads=threads))

    return (lambda: None), step


def task_pandas(path: str):
    """Worker task: pandas aggregation of one records file."""

    def step(_):
        return _summary(pandas_aggregate(path))

    return (lambda: None), step


def _descendants_peak_mb() -> float:
    """Summed peak resident memory (``VmHWM``) of this process's descendants, in MB.

    pyspark runs Spark in a child JVM, whose memory the Python process's own peak does
    not include. Linux only (``/proc``); NaN elsewhere.
    """
    proc = Path("/proc")
    if not (proc / "self" / "status").is_file():
        return math.nan
    parent: dict[int, int] = {}
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            # Field 4 of /proc/PID/stat, after the parenthesised command name.
            parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), [os.getpid()]
    while frontier:
        pid = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == pid and c not in found]
        found.update(kids)
        frontier.extend(kids)
    total = 0.0
    for pid in found:
        try:
            for line in (proc / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def task_spark(path: str, threads: int = 2):
    """Worker task: Spark aggregation of one records file in a local session.

    ``prepare`` starts the session and runs the route once on a small file, so the
    timed step is the aggregation itself, not the JVM's start-up and first compilation.
    """
    from benchmarks._worker import peak_mb
    from vanguard.records_spark import aggregate_records_spark, local_session

    state: dict = {}

    def prepare():
        t0 = time.perf_counter()
        spark = local_session(threads)
        with tempfile.TemporaryDirectory(prefix="vanguard-bench-spark-") as tmp:
            warm = generate_records(Path(tmp) / "warm.parquet", SPARK_WARMUP_ROWS)
            aggregate_records_spark(str(warm), spark=spark, los_col="los")
        state["session_s"] = time.perf_counter() - t0
        return spark

    def step(spark):
        out = _summary(aggregate_records_spark(path, spark=spark, los_col="los"))
        jvm = _descendants_peak_mb()
        # The session is left for the worker's exit to end: stopping it here would be
        # charged to the timed step.
        out.update(session_s=state["session_s"], jvm_mb=jvm, peak_mb=peak_mb() + jvm)
        return out

    return prepare, step


def spark_available() -> str:
    """Empty when the Spark route can run here, else why not."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark not installed (pip install -e '.[spark]', or make test-spark)"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "no Java runtime (Debian's openjdk-17-jre-headless)"
    return ""


def growth_exponent(rows, seconds) -> float:
    """Slope of log(time) on log(rows): 1 is linear growth.

    Parameters
    ----------
    rows, seconds : sequence of float
        At least two sizes with positive times.

    Returns
    -------
    float
        NaN with fewer than two usable points.
    """
    pts = [(r, s) for r, s in zip(rows, seconds, strict=True) if s and s > 0 and r > 0]
    if len(pts) < 2:
        return math.nan
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def _label(n: int) -> str:
    return f"{n / 1e6:g}M rows" if n >= 1_000_000 else f"{n:,} rows"


_CASE = "aggregate records to area-month"
_GROWTH = "growth exponent (log-log slope of time on rows)"
DUCKDB = "duckdb (vanguard.records)"
PANDAS = "pandas group-by (baseline)"
SPARK = "spark local (vanguard.records_spark)"


def run(
    *,
    quick: bool = False,
    repeats: int = 3,
    threads: int = 2,
    workdir=None,
    spark: bool = True,
) -> list[Result]:
    """Benchmark the record-level route at several sizes.

    Parameters
    ----------
    quick : bool
        Tiny sizes (:data:`QUICK_SIZES`) for a smoke test.
    repeats : int
        Runs per size and implementation (each in a fresh process).
    threads : int
        DuckDB threads and Spark local cores (the project's machines have 2 cores).
    workdir : str or pathlib.Path, optional
        Where the generated parquet files go (default: a temporary folder, removed).
    spark : bool
        Include local Spark where pyspark and Java are installed (a row says why not
        otherwise).

    Returns
    -------
    list of Result
    """
    sizes = QUICK_SIZES if quick else SIZES
    no_spark = spark_available() if spark else "turned off (--no-spark)"
    # label, worker task, extra parameters, largest size run, is the baseline
    routes = [
        (DUCKDB, "records_duckdb", {"threads": threads}, max(sizes), False),
        (PANDAS, "records_pandas", {}, PANDAS_CAP, True),
        (SPARK, "records_spark", {"threads": threads}, SPARK_CAP, False),
    ]
    caps = {
        PANDAS: "it loads the whole extract into memory",
        SPARK: "local Spark shows the route; larger extracts are for a cluster",
    }
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="vanguard-bench-", dir=workdir) as tmp:
        files = {}
        for n in sizes:
            print(f"  records: generating {_label(n)} ...", flush=True)
            files[n] = generate_records(Path(tmp) / f"records_{n}.parquet", n, threads=threads)
        # Same answer first: a benchmark of two routes is only fair if they agree.
        smallest = files[sizes[0]]
        from vanguard.records import aggregate_records

        a = aggregate_records(smallest, los_col="los", threads=threads)
        b = pandas_aggregate(smallest)
        agree = a.equals(b)
        timed: dict[str, tuple[list[int], list[float]]] = {r[0]: ([], []) for r in routes}
        digests: dict[str, dict[int, str]] = {r[0]: {} for r in routes}
        for n in sizes:
            size = _label(n)
            print(f"  records: aggregating {size}", flush=True)
            for label, task, params, cap, baseline in routes:
                if label == SPARK and no_spark:
                    results.append(skipped("records", _CASE, label, no_spark, size=size))
                    continue
                if n > cap:
                    why = f"capped at {cap / 1e6:g}M rows ({caps[label]})"
                    results.append(skipped("records", _CASE, label, why, size=size))
                    continue
                out = _measure(task, {"path": str(files[n]), **params}, repeats)
                r = Result(
                    "records",
                    _CASE,
                    label,
                    size=size,
                    times=out.get("times", []),
                    peak_mb=out.get("peak_mb", math.nan),
                    baseline=baseline,
                    note=out.get("note", ""),
                )
                if out.get("times"):
                    timed[label][0].append(n)
                    timed[label][1].append(r.median)
                    digests[label][n] = out["digest"]
                    r.note = _note(label, out, threads, digests[DUCKDB].get(n))
                    if label == DUCKDB and n == GOAL_ROWS:
                        r.goal = f"<= {GOAL_SECONDS:g} s and <= {GOAL_MB:g} MB at 50M rows"
                        r.goal_met = yes_no(r.median <= GOAL_SECONDS and r.peak_mb <= GOAL_MB)
                results.append(r)
        for label, *_ in routes:
            ns, secs = timed[label]
            if label == SPARK and not ns:
                continue
            r = Result(
                "records",
                _GROWTH,
                label,
                size=f"{_label(ns[0])} to {_label(ns[-1])}" if ns else "",
                value=growth_exponent(ns, secs),
            )
            if label == DUCKDB:
                r.goal = f"<= {LINEAR_SLOPE_MAX} (linear)"
                r.goal_met = yes_no(r.value <= LINEAR_SLOPE_MAX) if math.isfinite(r.value) else ""
                r.note = f"outputs identical to pandas at {_label(sizes[0])}: {yes_no(agree)}"
            elif label == SPARK:
                same = all(digests[DUCKDB].get(n) == d for n, d in digests[SPARK].items())
                r.note = f"panels identical to duckdb's at every size run: {yes_no(same)}"
            results.append(r)
    return results


def _note(label: str, out: dict, threads: int, duck_digest: str | None) -> str:
    """What a reader needs beside the time: output size, footprint, agreement."""
    same = (
        ""
        if duck_digest is None
        else f"; same panel as duckdb: {yes_no(out['digest'] == duck_digest)}"
    )
    if label == DUCKDB:
        return (
            f"{out['rows_out']:,} area-months; import footprint {out['base_mb']:.0f} MB; "
            f"threads={threads}"
        )
    if label == SPARK:
        return (
            f"local[{threads}]; JVM {out['jvm_mb']:.0f} MB of the peak; session start and warm-up "
            f"{out['session_s']:.0f} s, not timed{same}"
        )
    return f"import footprint {out['base_mb']:.0f} MB{same}"


def _measure(task: str, params: dict, repeats: int) -> dict:
    from benchmarks import worker_repeats

    try:
        return worker_repeats(task, params, repeats)
    except RuntimeError as exc:
        print(f"  {task} failed: {exc}", flush=True)
        return {"note": f"failed: {exc}"}


__all__ = [
    "generate_records",
    "growth_exponent",
    "pandas_aggregate",
    "panel_digest",
    "run",
    "spark_available",
]
