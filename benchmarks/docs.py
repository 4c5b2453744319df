"""``docs/benchmarks.md`` from one benchmark run (``make bench BENCH_ARGS=--write-docs``).

The page is regenerated whole from the run's table: how to run the benchmarks, the
machine and how loaded it was while each family ran, then one table per family with a
few sentences that read its headline figures off the same table. Nothing in it is typed
by hand, so a later run on another machine replaces every figure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks import estimators, to_markdown

TITLES: dict[str, str] = {
    "report": "The whole report, cold and warm",
    "estimators": "Estimators against the raw library calls they wrap",
    "inference": "Resampling inference",
    "records": "Record-level route: DuckDB vs pandas vs local Spark",
    "panel": "A large fixed-effects panel",
}

USAGE = """\
`make bench` (`python -m benchmarks`, from the project root) runs every benchmark
family and prints one table, also written to `reports/bench/bench.csv` and `bench.md`.
`make bench BENCH_ARGS=--write-docs` also regenerates this page from that run. Options
go through `BENCH_ARGS`:

| command | what it runs |
|---|---|
| `make bench BENCH_ARGS=--write-docs` | everything at full size, median of 3 runs, and this page |
| `make bench BENCH_ARGS="--quick"` | tiny sizes, one run each, no whole report: a smoke test, not for reading |
| `make bench BENCH_ARGS="--only records --repeats 1"` | one family (`estimators`, `inference`, `records`, `panel`, `report`) |
| `make bench BENCH_ARGS="--no-spark"` | the record-level family without local Spark |

The whole-report family runs `vanguard-report` in a fresh reports folder with a results
cache of its own: first *cold* (empty caches, every notebook run and every analysis
computed), then *warm* (the caches the cold run filled: unchanged analysis notebooks are
restored, the report notebook runs). The estimator rows set each wrapper beside the raw library
call on inputs prepared outside the timer, so `ratio` is the wrapper's whole cost
(sample preparation, checks, tidy output) over the bare computation. The record-level
family times DuckDB (`vanguard.records`), a pandas group-by (the baseline of its
`ratio` column) and, where pyspark and Java are installed (`make test-spark` installs
both), local Spark (`vanguard.records_spark`), each in a fresh process on the same
generated parquet files, and gives each route's growth exponent (the log-log slope of
time on rows: 1 is linear). Local Spark proves the route where records already sit on a
Spark cluster ([spark.md](spark.md)); on one machine it is not meant to compete, and its
session start and warm-up are given in the note, not timed.
"""


@dataclass
class SectionLog:
    """How long one family ran and how loaded the machine was around it."""

    section: str
    seconds: float
    load_before: str
    load_after: str


def _rows(table: pd.DataFrame, section: str) -> pd.DataFrame:
    return table[table["section"] == section].reset_index(drop=True)


def _num(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _pick(rows: pd.DataFrame, pattern: str) -> pd.DataFrame:
    return rows[rows["implementation"].astype(str).str.contains(pattern, regex=True)]


def _seconds(x: float) -> str:
    return "n/a" if not math.isfinite(x) else (f"{x:.1f} s" if x < 100 else f"{x:.0f} s")


def _reading(section: str, rows: pd.DataFrame) -> list[str]:
    """A few sentences with the family's headline figures, read off its rows."""
    out: list[str] = []
    if section == "report":
        for label, kind in (("cold", "cold"), ("warm", "warm")):
            r = _pick(rows, f"whole report, {kind}")
            if len(r):
                r = r.iloc[0]
                out.append(
                    f"- The {label} report took {_seconds(_num(r['median_s']))} "
                    f"(goal {r['goal']}: {r['goal_met'] or 'not judged'})."
                )
    elif section == "estimators":
        for case, g in rows.groupby("case", sort=False):
            base = g[g["ratio"].astype(float) == 1.0]
            wrap = g[g["implementation"].astype(str).str.startswith("vanguard.")]
            if len(base) and len(wrap):
                w = wrap.iloc[0]
                out.append(
                    f"- {case}: `{w['implementation']}` {_seconds(_num(w['median_s']))} against "
                    f"{_seconds(_num(base.iloc[0]['median_s']))} for `{base.iloc[0]['implementation']}`"
                    f", ratio {_num(w['ratio']):.2f} (goal {w['goal'] or 'none'}: "
                    f"{w['goal_met'] or 'not judged'})."
                )
    elif section == "inference":
        for _, r in rows[rows["value"].notna() & rows["size"].str.contains("draws")].iterrows():
            if math.isfinite(_num(r["value"])):
                out.append(
                    f"- {r['implementation']}, {r['size']}: {_num(r['value']):.3f} s per "
                    "1,000 draws."
                )
    elif section == "records":
        for _, r in rows.iterrows():
            if "growth" in str(r["case"]) and math.isfinite(_num(r["value"])):
                out.append(
                    f"- Growth exponent of {r['implementation']} over {r['size']}: "
                    f"{_num(r['value']):.2f}."
                )
        for _, r in rows.iterrows():
            if "baseline" in str(r["implementation"]):
                continue
            if "aggregate" in str(r["case"]) and math.isfinite(_num(r["median_s"])):
                out.append(
                    f"- {r['implementation']} at {r['size']}: {_seconds(_num(r['median_s']))}"
                    + (
                        f" ({_num(r['ratio']):.2f} x pandas)."
                        if math.isfinite(_num(r["ratio"]))
                        else "."
                    )
                )
    return out


def _first_load(text: str) -> float:
    """The 1-minute figure of an ``uptime`` load string (NaN if there is none)."""
    m = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)", text)
    return float(m.group(1)) if m else math.nan


def shared_machine_note(logs: Sequence[SectionLog], cores: int | None) -> str:
    """A sentence saying how crowded the run was, from the loads around each family.

    Returns
    -------
    str
        Empty when no load is known.
    """
    loads = [x for log in logs for x in (_first_load(log.load_before), _first_load(log.load_after))]
    loads = [x for x in loads if math.isfinite(x)]
    if not loads:
        return ""
    lo, hi = min(loads), max(loads)
    if cores and hi > cores:
        return (
            f"**This run shared the machine**: the 1-minute load average was {lo:.1f} to "
            f"{hi:.1f} on {cores} cores, so every time here is slower than on a quiet "
            "machine and the whole report most of all; re-run `make bench "
            "BENCH_ARGS=--write-docs` on a quiet machine before reading figures against "
            "their goals."
        )
    return f"The 1-minute load average stayed between {lo:.1f} and {hi:.1f} on {cores} cores."


def render(
    table: pd.DataFrame,
    *,
    machine: str,
    packages: str,
    started: str,
    seconds: float,
    repeats: int,
    report_repeats: int,
    logs: Sequence[SectionLog],
    command: str,
    cores: int | None = None,
) -> str:
    """The whole page.

    Parameters
    ----------
    table : pandas.DataFrame
        The run's table (:func:`benchmarks.to_frame`).
    machine, packages : str
        One-line descriptions (:func:`benchmarks.__main__.machine`).
    started : str
        When the run started (UTC).
    seconds : float
        How long it ran.
    repeats, report_repeats : int
        Runs per figure.
    logs : sequence of SectionLog
        Per family: seconds and the load before and after.
    command : str
        The command that produced it.
    cores : int, optional
        Logical cores of the machine (to judge the load).

    Returns
    -------
    str
    """
    lines = ["# Benchmarks", "", USAGE, "## The machine and the run", ""]
    lines += [
        f"- Machine: {machine}.",
        f"- Packages: {packages}.",
        f"- Run: `{command}`, started {started}, {seconds / 60:.0f} minutes in all; median "
        f"of {repeats} run(s) per figure ({report_repeats} cold and warm pair(s) for the "
        "whole report; the estimator figures take at least "
        f"{estimators.MIN_REPEATS} interleaved runs, as their `repeats` column says).",
        "- Load: the load average (`uptime`) before and after each family is given beside "
        "its table. Where it exceeds the machine's core count other work shared the cores, "
        "and every time is slower than on a quiet machine (the whole report most, "
        "since it keeps both cores busy); ratios measured inside one family are "
        "interleaved or run back to back, so they suffer less.",
        "",
    ]
    note = shared_machine_note(logs, cores)
    if note:
        lines += [note, ""]
    by_section = {log.section: log for log in logs}
    for section in [s for s in TITLES if s in set(table["section"])]:
        rows = _rows(table, section)
        lines += [f"## {TITLES[section]}", ""]
        log = by_section.get(section)
        if log is not None:
            lines += [
                f"{_seconds(log.seconds)} in all; load before: {log.load_before}; after: "
                f"{log.load_after}.",
                "",
            ]
        lines += [to_markdown(rows.drop(columns="section")).rstrip(), ""]
        reading = _reading(section, rows)
        if reading:
            lines += ["How to read it:", "", *reading, ""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


def write(path: Path, text: str) -> Path:
    """Write the page atomically."""
    from vanguard.io import write_text

    return write_text(Path(path), text)
