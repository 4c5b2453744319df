"""``python -m benchmarks`` (``make bench``): run the benchmarks, print one table and
write it to ``reports/bench/bench.csv`` and ``bench.md``."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from benchmarks import SECTIONS, Result, to_frame, to_markdown, write_table
from vanguard import config

PACKAGES = (
    "duckdb",
    "pandas",
    "numpy",
    "pyarrow",
    "pyfixest",
    "moderndid",
    "highspy",
    "statsmodels",
    "pyspark",
)


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def _memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):  # not every platform names these
        return None


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _java() -> str:
    """The Java runtime Spark would use, as ``java -version`` names it."""
    java = shutil.which("java")
    if java is None:
        return "none"
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[0] if lines else "unknown"


@functools.cache
def machine() -> str:
    """One line describing this machine: CPU, cores, memory, Python, Java."""
    mem = _memory_gb()
    return (
        f"{_cpu_model()} ({platform.machine()}), {os.cpu_count()} logical cores, "
        + (f"{mem:.0f} GB memory, " if mem else "")
        + f"{platform.system()}, Python {platform.python_version()}, Java: {_java()}"
    )


def _load() -> str:
    """Load averages now: on a shared machine they say how much the figures were crowded."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) when written"


def uptime_load() -> str:
    """The load averages as ``uptime`` prints them (1, 5 and 15 minutes)."""
    try:
        proc = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10, check=False)
        text = proc.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    if "load average" in text:
        return text[text.index("load average") :].replace("load average: ", "")
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run_sections(
    sections: Sequence[str],
    *,
    quick: bool,
    repeats: int,
    threads: int,
    params: str,
    report_repeats: int | None = None,
    after_each: Callable[[list[Result]], None] | None = None,
    spark: bool = True,
    logs: list | None = None,
) -> list[Result]:
    """Run the chosen benchmark families in the order of :data:`benchmarks.SECTIONS`.

    Parameters
    ----------
    sections : sequence of str
        Subset of :data:`benchmarks.SECTIONS`.
    quick : bool
        Tiny sizes for a smoke test.
    repeats : int
        Timed runs per figure.
    threads : int
        DuckDB threads and Spark local cores for the record-level route.
    params : str
        Parameter set of the whole-report benchmark.
    report_repeats : int, optional
        Runs of the whole report (default ``repeats``).
    after_each : callable, optional
        Called with the results so far after each family (to save partial tables).
    spark : bool
        Include local Spark in the record-level family (where pyspark and Java exist).
    logs : list, optional
        Appended with a :class:`benchmarks.docs.SectionLog` per family (seconds, load
        before and after).

    Returns
    -------
    list of Result

    Raises
    ------
    ValueError
        If a section name is unknown.
    """
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {unknown}; expected some of {SECTIONS}")
    results: list[Result] = []
    for name in SECTIONS:
        if name not in sections:
            continue
        print(f"[bench] {name}", flush=True)
        t0 = time.perf_counter()
        load_before = uptime_load()
        if name == "report":
            from benchmarks import report

            n = report_repeats if report_repeats is not None else repeats
            results += report.run(quick=quick, repeats=n, params=params)
        elif name == "estimators":
            from benchmarks import estimators

            results += estimators.run(quick=quick, repeats=repeats)
        elif name == "inference":
            from benchmarks import inference

            results += inference.run(quick=quick, repeats=repeats)
        elif name == "records":
            from benchmarks import scale_records

            results += scale_records.run(quick=quick, repeats=repeats, threads=threads, spark=spark)
        elif name == "panel":
            from benchmarks import scale_panel

            results += scale_panel.run(quick=quick, repeats=repeats)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
        if logs is not None:
            from benchmarks.docs import SectionLog

            logs.append(SectionLog(name, time.perf_counter() - t0, load_before, uptime_load()))
        if after_each is not None:
            after_each(results)
    return results


def _header(quick: bool, repeats: int, report_repeats: int, seconds: float, done: bool) -> str:
    title = "# Benchmarks"
    if quick:
        title += " (quick smoke run: tiny sizes, not for reading)"
    if not done:
        title += " (partial: run in progress or stopped)"
    return "\n".join(
        [
            title,
            "",
            f"- run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {seconds:.0f} s",
            f"- machine: {machine()}",
            f"- load: {_load()}",
            f"- packages: {_versions()}",
            f"- figures: median of {repeats} run(s) ({report_repeats} for the whole report); "
            "`ratio` = median / the case's baseline measured in the same run; `value` = "
            "overhead fraction, growth exponent, estimate or seconds per 1,000 draws (see `note`)",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the benchmarks.

    Returns
    -------
    int
        0 when the table was written (goals not met do not fail the run).
    """
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks: estimators next to the library calls they wrap, "
        "resampling inference, the record-level route, a large fixed-effects panel and the "
        "whole report. Writes reports/bench/bench.csv and bench.md.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one run each: a smoke test"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per figure, reported as the median (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--report-repeats",
        type=int,
        default=None,
        help="runs of the whole report (default: --repeats)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        metavar="SECTION",
        help=f"run only these families: {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: reports/bench)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="DuckDB threads and Spark local cores for the record-level route",
    )
    parser.add_argument(
        "--no-spark",
        action="store_true",
        help="leave local Spark out of the record-level route even where it is installed",
    )
    parser.add_argument(
        "--params", default="default", help="parameter set of the whole-report benchmark"
    )
    parser.add_argument(
        "--write-docs",
        nargs="?",
        const=config.ROOT / "docs" / "benchmarks.md",
        default=None,
        type=Path,
        metavar="PATH",
        help="also regenerate docs/benchmarks.md (or PATH) from this run",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write profile_twfe.txt: cProfile of one TWFE estimator call",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    report_repeats = args.report_repeats if args.report_repeats is not None else repeats
    if repeats < 1 or report_repeats < 1:
        parser.error("--repeats and --report-repeats must be at least 1")
    out = args.out if args.out is not None else config.reports_dir() / "bench"

    t0 = time.perf_counter()
    started = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    logs: list = []

    def save(results: list[Result], done: bool = False):
        header = _header(args.quick, repeats, report_repeats, time.perf_counter() - t0, done)
        table = to_frame(results)
        return table, header, write_table(table, out, header)

    results = run_sections(
        args.only,
        quick=args.quick,
        repeats=repeats,
        threads=args.threads,
        params=args.params,
        report_repeats=report_repeats,
        after_each=save,
        spark=not args.no_spark,
        logs=logs,
    )
    table, header, (csv_path, md_path) = save(results, done=True)
    if args.write_docs is not None:
        from benchmarks import docs

        page = docs.render(
            table,
            machine=machine(),
            packages=_versions(),
            started=started,
            seconds=time.perf_counter() - t0,
            repeats=repeats,
            report_repeats=report_repeats,
            logs=logs,
            command="python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
            cores=os.cpu_count(),
        )
        print(f"[bench] wrote {docs.write(args.write_docs, page)}")
    if args.profile:
        from benchmarks.profile import profile_twfe
        from vanguard.io import write_text

        write_text(out / "profile_twfe.txt", profile_twfe(quick=args.quick))
        print(f"[bench] profile written to {out / 'profile_twfe.txt'}")
    print()
    print(to_markdown(table, header))
    print(f"[bench] wrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
