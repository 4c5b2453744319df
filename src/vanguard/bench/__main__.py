"""``python -m vanguard.bench`` (``make bench``): run the benchmarks, print one table and
write it to ``reports/bench/bench.csv`` and ``bench.md``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from vanguard import config
from vanguard.bench import SECTIONS, Result, to_frame, to_markdown, write_table

PACKAGES = ("duckdb", "pandas", "numpy", "pyfixest", "moderndid", "statsmodels")


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def run_sections(
    sections: Sequence[str], *, quick: bool, repeats: int, threads: int, params: str
) -> list[Result]:
    """Run the chosen benchmark families in order.

    Parameters
    ----------
    sections : sequence of str
        Subset of :data:`vanguard.bench.SECTIONS`.
    quick : bool
        Tiny sizes for a smoke test.
    repeats : int
        Timed runs per figure.
    threads : int
        DuckDB threads for the record-level route.
    params : str
        Parameter set of the whole-report benchmark.

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
        if name == "report":
            from vanguard.bench import report

            results += report.run(quick=quick, repeats=repeats, params=params)
        elif name == "estimators":
            from vanguard.bench import estimators

            results += estimators.run(quick=quick, repeats=repeats)
        elif name == "inference":
            from vanguard.bench import inference

            results += inference.run(quick=quick, repeats=repeats)
        elif name == "records":
            from vanguard.bench import scale_records

            results += scale_records.run(quick=quick, repeats=repeats, threads=threads)
        elif name == "panel":
            from vanguard.bench import scale_panel

            results += scale_panel.run(quick=quick, repeats=repeats)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the benchmarks.

    Returns
    -------
    int
        0 when the table was written (goals not met do not fail the run).
    """
    parser = argparse.ArgumentParser(
        prog="python -m vanguard.bench",
        description="Benchmarks: the whole report, estimators next to the library calls "
        "they wrap, resampling inference, the record-level route and a large "
        "fixed-effects panel. Writes reports/bench/bench.csv and bench.md.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, one run each: a smoke test that takes seconds",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per figure, reported as the median (default 3; 1 with --quick)",
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
        help="DuckDB threads for the record-level route (default 2)",
    )
    parser.add_argument(
        "--params",
        default="default",
        help="parameter set of the whole-report benchmark (default: default)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write profile_twfe.txt: cProfile of one TWFE estimator call",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    out = args.out if args.out is not None else config.reports_dir() / "bench"

    t0 = time.perf_counter()
    results = run_sections(
        args.only, quick=args.quick, repeats=repeats, threads=args.threads, params=args.params
    )
    table = to_frame(results)
    header = "\n".join(
        [
            "# Benchmarks"
            + (" (quick smoke run: tiny sizes, not for reading)" if args.quick else ""),
            "",
            f"- run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {time.perf_counter() - t0:.0f} s",
            f"- machine: {platform.machine()}, {os.cpu_count()} logical cores, "
            f"Python {platform.python_version()}",
            f"- packages: {_versions()}",
            f"- figures: median of {repeats} run(s); `ratio` = median / the case's baseline "
            "measured in the same run; `value` = overhead fraction, growth exponent, "
            "estimate or ms per draw (see `note`)",
        ]
    )
    csv_path, md_path = write_table(table, out, header)
    if args.profile:
        from vanguard.bench.profile import profile_twfe
        from vanguard.io import write_text

        write_text(out / "profile_twfe.txt", profile_twfe(quick=args.quick))
        print(f"[bench] profile written to {out / 'profile_twfe.txt'}")
    print()
    print(to_markdown(table, header))
    print(f"[bench] wrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
