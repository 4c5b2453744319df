"""Benchmark of the record-level route: DuckDB aggregation versus a pandas group-by.

Synthetic admission records (date, area, length of stay) are written as parquet by
DuckDB itself, deterministically (hash of the row number, no random state), then
aggregated to the area-month panel by :func:`vanguard.records.aggregate_records` and by
the obvious pandas route (read the columns, group by area and month, reindex on the full
grid). Each measurement runs in a fresh process for its peak memory.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard.bench import Result, skipped, yes_no

SIZES: tuple[int, ...] = (1_000_000, 10_000_000, 50_000_000)
QUICK_SIZES: tuple[int, ...] = (20_000, 60_000, 180_000)
PANDAS_CAP: int = 10_000_000
"""pandas materialises the extract in memory; it is not run above this many rows."""
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


def task_duckdb(path: str, threads: int = 2):
    """Worker task: DuckDB aggregation of one records file."""
    from vanguard.records import aggregate_records

    def step(_):
        panel = aggregate_records(path, los_col="los", threads=threads)
        return {"rows_out": len(panel), "total": int(panel["emergency_admissions"].sum())}

    return (lambda: None), step


def task_pandas(path: str):
    """Worker task: pandas aggregation of one records file."""

    def step(_):
        panel = pandas_aggregate(path)
        return {"rows_out": len(panel), "total": int(panel["emergency_admissions"].sum())}

    return (lambda: None), step


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


def run(*, quick: bool = False, repeats: int = 3, threads: int = 2, workdir=None) -> list[Result]:
    """Benchmark the record-level route at several sizes.

    Parameters
    ----------
    quick : bool
        Tiny sizes (:data:`QUICK_SIZES`) for a smoke test.
    repeats : int
        Runs per size and implementation (each in a fresh process).
    threads : int
        DuckDB threads (the project's machines have 2 cores).
    workdir : str or pathlib.Path, optional
        Where the generated parquet files go (default: a temporary folder, removed).

    Returns
    -------
    list of Result
    """
    sizes = QUICK_SIZES if quick else SIZES
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
        duck_times, pd_times, duck_sizes, pd_sizes = [], [], [], []
        for n in sizes:
            size = _label(n)
            print(f"  records: aggregating {size}", flush=True)
            out = _measure("records_duckdb", {"path": str(files[n]), "threads": threads}, repeats)
            r = Result(
                "records",
                "aggregate records to area-month",
                "duckdb (vanguard.records)",
                size=size,
                times=out.get("times", []),
                peak_mb=out.get("peak_mb", math.nan),
                baseline=False,
                note=out.get("note", ""),
            )
            if out.get("times"):
                duck_times.append(r.median)
                duck_sizes.append(n)
                r.note = (
                    f"{out['rows_out']:,} area-months; import footprint "
                    f"{out['base_mb']:.0f} MB; threads={threads}"
                )
                if n == GOAL_ROWS:
                    r.goal = f"<= {GOAL_SECONDS:g} s and <= {GOAL_MB:g} MB at 50M rows"
                    r.goal_met = yes_no(r.median <= GOAL_SECONDS and r.peak_mb <= GOAL_MB)
            results.append(r)
            if n > PANDAS_CAP:
                results.append(
                    skipped(
                        "records",
                        "aggregate records to area-month",
                        "pandas group-by (baseline)",
                        f"pandas capped at {PANDAS_CAP / 1e6:g}M rows "
                        "(it loads the whole extract into memory)",
                        size=size,
                    )
                )
                continue
            out = _measure("records_pandas", {"path": str(files[n])}, repeats)
            p = Result(
                "records",
                "aggregate records to area-month",
                "pandas group-by (baseline)",
                size=size,
                times=out.get("times", []),
                peak_mb=out.get("peak_mb", math.nan),
                baseline=True,
                note=out.get("note", ""),
            )
            if out.get("times"):
                pd_times.append(p.median)
                pd_sizes.append(n)
                p.note = f"import footprint {out['base_mb']:.0f} MB"
            results.append(p)
        slope = growth_exponent(duck_sizes, duck_times)
        results.append(
            Result(
                "records",
                "growth exponent (log-log slope of time on rows)",
                "duckdb (vanguard.records)",
                size=f"{_label(sizes[0])} to {_label(sizes[-1])}",
                value=slope,
                goal=f"<= {LINEAR_SLOPE_MAX} (linear)",
                goal_met=yes_no(slope <= LINEAR_SLOPE_MAX) if math.isfinite(slope) else "",
                note=f"outputs identical to pandas at {_label(sizes[0])}: {yes_no(agree)}",
            )
        )
        pslope = growth_exponent(pd_sizes, pd_times)
        results.append(
            Result(
                "records",
                "growth exponent (log-log slope of time on rows)",
                "pandas group-by (baseline)",
                size=f"{_label(pd_sizes[0]) if pd_sizes else ''} to {_label(pd_sizes[-1]) if pd_sizes else ''}",
                value=pslope,
            )
        )
    return results


def _measure(task: str, params: dict, repeats: int) -> dict:
    from vanguard.bench import worker_repeats

    try:
        return worker_repeats(task, params, repeats)
    except RuntimeError as exc:
        print(f"  {task} failed: {exc}", flush=True)
        return {"note": f"failed: {exc}"}


__all__ = ["generate_records", "growth_exponent", "pandas_aggregate", "run"]
