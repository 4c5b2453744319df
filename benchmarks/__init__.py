"""Benchmarks behind ``make bench`` (``python -m benchmarks``, from the project root).

They live beside ``src/``, not inside the ``vanguard`` package: they are a development
tool that measures the package, and an installed ``vanguard`` has no use for them.

Each benchmark family lives in its own module and returns :class:`Result` rows; this
module holds what they share: interleaved timing, running a measurement in a fresh
subprocess to read its peak memory, ratios against a baseline measured in the same run,
and the one output table (``reports/bench/bench.csv`` and ``bench.md``).

Families
--------
``report``
    The whole default report (``vanguard-report --params default``): wall time and the
    per-notebook timings of its ``manifest.json``. Goal: 60 s on 2 cores.
``estimators``
    Each estimator of :mod:`vanguard.did` on the synthetic panel next to the raw library
    call it wraps (and, for two-way fixed effects, next to statsmodels OLS with dummy
    variables). Goal: wrapper overhead at most 10 %.
``inference``
    Wild cluster bootstrap and randomisation inference at 999 and 9,999 draws.
``records``
    The record-level route: 1 M, 10 M and 50 M synthetic admission records aggregated
    with DuckDB (:mod:`vanguard.records`) next to a pandas group-by and, where pyspark
    and Java are installed, a local Spark session (:mod:`vanguard.records_spark`, up to
    10 M), with peak memory and the growth exponent of each. Goal: 50 M rows in 30 s and
    4 GB, linear growth.
``panel``
    A 50,000-unit x 24-period panel through fixed-effects regression, with peak memory.

Every figure is the median of ``repeats`` runs; the implementations compared in one
case are run interleaved (A, B, C, A, B, C, ...) so that a slow spell on a shared
machine hits them alike. Goals are reported as met or not, never asserted.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS: tuple[str, ...] = (
    "section",
    "case",
    "implementation",
    "size",
    "repeats",
    "median_s",
    "min_s",
    "peak_mb",
    "ratio",
    "value",
    "goal",
    "goal_met",
    "note",
)
"""Columns of the benchmark table. ``ratio`` is ``median_s`` over the case's baseline
(measured in the same run); ``value`` holds a derived number such as a growth exponent;
``goal_met`` is ``yes``, ``no`` or empty."""

SECTIONS: tuple[str, ...] = ("estimators", "inference", "records", "panel", "report")
"""Benchmark families, in the order they run (the long whole-report runs last)."""


@dataclass
class Result:
    """One row of the benchmark table (see :data:`COLUMNS`)."""

    section: str
    case: str
    implementation: str
    size: str = ""
    times: list[float] = field(default_factory=list)
    peak_mb: float = math.nan
    baseline: bool = False
    value: float = math.nan
    goal: str = ""
    goal_met: str = ""
    note: str = ""
    ratio_to: str | None = None
    """``size`` of the baseline row this one is divided by (default: its own size)."""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan


def skipped(section: str, case: str, implementation: str, reason: str, size: str = "") -> Result:
    """A row that records why a benchmark did not run (and prints the reason)."""
    print(f"  skip {section}/{case}/{implementation}: {reason}", flush=True)
    return Result(section, case, implementation, size=size, note=f"skipped: {reason}")


def yes_no(ok: bool) -> str:
    return "yes" if ok else "no"


def interleaved(
    funcs: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: bool = True,
    outputs: dict | None = None,
) -> dict[str, list[float]]:
    """Time several callables side by side.

    Parameters
    ----------
    funcs : mapping of name to callable
        Zero-argument callables doing the work to time.
    repeats : int
        Timed runs of each.
    warmup : bool
        Run each once untimed first, so imports and caches are not charged to the
        first implementation.
    outputs : dict, optional
        Filled with each callable's return value from its last run, so a caller can
        check the results without running the work again.

    Returns
    -------
    dict
        Name to list of wall times in seconds.

    Raises
    ------
    ValueError
        If ``repeats`` is less than 1.
    """
    if repeats < 1:
        raise ValueError(f"repeats: expected at least 1; found {repeats}")
    if warmup:
        for fn in funcs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, fn in funcs.items():
            t0 = time.perf_counter()
            value = fn()
            times[name].append(time.perf_counter() - t0)
            if outputs is not None:
                outputs[name] = value
    return times


def run_worker(task: str, params: Mapping, timeout: float = 1800) -> dict:
    """Run one measurement in a fresh Python process and return what it reports.

    A fresh process gives an honest peak resident memory (``ru_maxrss`` of that process
    alone) and an honest cold time, free of caches left by earlier measurements.

    Parameters
    ----------
    task : str
        Name of a task in :data:`benchmarks._worker.TASKS`.
    params : mapping
        JSON-serialisable keyword arguments of the task.
    timeout : float
        Seconds before the worker is killed.

    Returns
    -------
    dict
        At least ``seconds`` (time of the measured step), ``peak_mb`` (peak resident
        memory of the worker, imports included) and ``base_mb`` (resident memory before
        the measured step).

    Raises
    ------
    RuntimeError
        If the worker fails or times out; the message carries its stderr tail.
    """
    cmd = [sys.executable, "-m", "benchmarks._worker", task, json.dumps(dict(params))]
    # The benchmarks are not installed with the package: the worker finds them through
    # the project root, whatever the current folder.
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=path)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{task}: timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{task}: worker exited with {proc.returncode}: {tail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{task}: worker printed no result")
    return json.loads(lines[-1])


def worker_repeats(task: str, params: Mapping, repeats: int, timeout: float = 1800) -> dict:
    """Run a worker task ``repeats`` times; times of each run, the largest peak memory."""
    outs = [run_worker(task, params, timeout) for _ in range(repeats)]
    merged = dict(outs[-1])
    merged["times"] = [o["seconds"] for o in outs]
    merged["peak_mb"] = max(o["peak_mb"] for o in outs)
    return merged


def to_frame(results: list[Result]) -> pd.DataFrame:
    """The benchmark table: one row per result, ratios against each case's baseline.

    Parameters
    ----------
    results : list of Result

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`.
    """
    rows = []
    base: dict[tuple[str, str, str], float] = {}
    for r in results:
        if r.baseline and r.times:
            base[(r.section, r.case, r.size)] = r.median
    for r in results:
        key = r.size if r.ratio_to is None else r.ratio_to
        b = base.get((r.section, r.case, key), math.nan)
        ratio = r.median / b if r.times and b and math.isfinite(b) else math.nan
        rows.append(
            {
                "section": r.section,
                "case": r.case,
                "implementation": r.implementation,
                "size": r.size,
                "repeats": len(r.times),
                "median_s": r.median,
                "min_s": min(r.times) if r.times else math.nan,
                "peak_mb": r.peak_mb,
                "ratio": ratio,
                "value": r.value,
                "goal": r.goal,
                "goal_met": r.goal_met,
                "note": r.note,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def to_markdown(table: pd.DataFrame, header: str = "") -> str:
    """Render the benchmark table as a Markdown pipe table.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`to_frame`.
    header : str
        Text placed above the table (machine, date, options).

    Returns
    -------
    str
    """
    cols = list(table.columns)
    lines = [header.rstrip() + "\n"] if header else []
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, out_dir, header: str = ""):
    """Write ``bench.csv`` and ``bench.md`` atomically into ``out_dir``.

    Returns
    -------
    tuple of pathlib.Path
        The CSV and Markdown paths.
    """
    from vanguard.io import write_csv, write_text

    out_dir = Path(out_dir)
    csv = write_csv(out_dir / "bench.csv", table, float_format="%.6g")
    md = write_text(out_dir / "bench.md", to_markdown(table, header))
    return csv, md
