"""Run one benchmark task in this process and print its timing and peak memory as JSON.

Used by :func:`benchmarks.run_worker`: ``python -m benchmarks._worker TASK JSON``.
Each task prepares its inputs, then the timed step runs once; the process exits so the
next measurement starts clean.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path

TASKS: dict[str, str] = {
    "records_duckdb": "benchmarks.scale_records:task_duckdb",
    "records_pandas": "benchmarks.scale_records:task_pandas",
    "records_spark": "benchmarks.scale_records:task_spark",
    "panel_feols": "benchmarks.scale_panel:task_feols",
    "panel_twfe": "benchmarks.scale_panel:task_twfe",
}
"""Task name to ``module:function``. A task function takes the parameters and returns
``(prepare, step)``: ``prepare()`` builds inputs untimed, ``step(inputs)`` is timed and
returns a dict of extra figures to report."""


def peak_mb() -> float:
    """Peak resident memory of this process in MB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` survives
    ``fork`` + ``exec``, so a worker started by a large parent would report the parent's
    size. Elsewhere ``ru_maxrss`` (KB on Linux, bytes on macOS) is the fallback.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024**2 if sys.platform == "darwin" else rss / 1024


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    task, params = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    if task not in TASKS:
        print(f"unknown task {task!r}; expected one of {sorted(TASKS)}", file=sys.stderr)
        return 2
    module, func = TASKS[task].split(":")
    prepare, step = getattr(importlib.import_module(module), func)(**params)
    inputs = prepare()
    base = peak_mb()
    t0 = time.perf_counter()
    extra = step(inputs) or {}
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "base_mb": base, **extra}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
