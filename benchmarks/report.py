"""Benchmark of the whole report: ``vanguard-report --params <set>`` end to end, cold and
warm.

The report runs in a subprocess exactly as ``make report`` runs it, writing into a
temporary reports folder (``VANGUARD_REPORTS_DIR``) so that a benchmark never replaces
the user's ``reports/default``, with a results cache of its own (``VANGUARD_CACHE_DIR``):
the *cold* run starts from empty caches (every notebook run, every analysis computed),
the *warm* run follows it with the caches it filled (the unchanged analysis notebooks
are restored, :mod:`vanguard.job_cache`; the report notebook runs). Wall time is measured here; the per-notebook split (kernel
start-up and I/O versus cell compute) is read from the cold run's ``manifest.json``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks import Result, skipped, yes_no

GOAL_SECONDS: float = 60.0
"""Cold report on 2 cores."""
WARM_GOAL_SECONDS: float = 15.0
"""Warm report (results cache filled) on 2 cores."""
RUN_NAME = "bench"


def _command(params: str) -> list[str]:
    script = Path(sys.executable).with_name("vanguard-report")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "vanguard.pipeline"]
    return head + ["--params", params, "--run", RUN_NAME, "--no-progress"]


def run_report_once(
    params: str = "default",
    timeout: float = 3600,
    *,
    reports_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[float, dict]:
    """Run the report once in a temporary (or the given) reports folder.

    Parameters
    ----------
    params : str
        Parameter set name or YAML path.
    timeout : float
        Seconds before the run is stopped.
    reports_dir : path, optional
        Reports folder to run in (kept); default a temporary one, removed afterwards.
    cache_dir : path, optional
        Results cache folder (``VANGUARD_CACHE_DIR``); default the project's.

    Returns
    -------
    (float, dict)
        Wall seconds measured from outside, and the run's manifest.

    Raises
    ------
    RuntimeError
        If the run fails or writes no manifest.
    """
    tmp = (
        str(reports_dir)
        if reports_dir is not None
        else tempfile.mkdtemp(prefix="vanguard-bench-report-")
    )
    try:
        env = dict(os.environ, VANGUARD_REPORTS_DIR=tmp, MPLBACKEND="Agg")
        if cache_dir is not None:
            env["VANGUARD_CACHE_DIR"] = str(cache_dir)
        t0 = time.perf_counter()
        # A session of its own, so that a timeout or Ctrl-C stops the report's notebook
        # workers and kernels too, not only its main process.
        proc = subprocess.Popen(
            _command(params),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        wall = time.perf_counter() - t0
        manifest_path = Path(tmp) / RUN_NAME / "manifest.json"
        if not manifest_path.is_file():
            tail = "\n".join((stderr or stdout).strip().splitlines()[-5:])
            raise RuntimeError(f"report run wrote no manifest (exit {proc.returncode}): {tail}")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if proc.returncode != 0:
            manifest.setdefault("bench_note", f"exit code {proc.returncode}")
        return wall, manifest
    finally:
        if reports_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_cold_warm(
    params: str = "default", timeout: float = 3600
) -> tuple[tuple[float, dict], tuple[float, dict]]:
    """A cold report run (empty caches) and the warm run that follows it.

    Both use one temporary reports folder and one temporary cache, removed afterwards.

    Returns
    -------
    ((cold wall, cold manifest), (warm wall, warm manifest))

    Raises
    ------
    RuntimeError
        If a run fails or writes no manifest.
    """
    tmp = Path(tempfile.mkdtemp(prefix="vanguard-bench-report-"))
    try:
        kw = {"reports_dir": tmp / "reports", "cache_dir": tmp / "cache"}
        (tmp / "reports").mkdir()
        cold = run_report_once(params, timeout, **kw)
        warm = run_report_once(params, timeout, **kw)
        return cold, warm
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _finished_ok(manifest: dict) -> bool:
    """Whether every notebook ran (manifests carry ``status``; older ones ``ok``)."""
    if "status" in manifest:
        return manifest["status"] == "ok"
    return bool(manifest.get("ok", False))


def per_notebook(manifest: dict) -> dict[str, dict[str, float]]:
    """Sum the manifest's per-job timings by notebook.

    Parameters
    ----------
    manifest : dict
        A run's ``manifest.json``.

    Returns
    -------
    dict
        Notebook name to ``jobs``, ``wall_seconds``, ``cell_seconds`` and
        ``kernel_and_io_seconds`` (sums over that notebook's parameter combinations).
    """
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for job in manifest.get("notebooks", []):
        nb = out[str(job.get("notebook", "?"))]
        nb["jobs"] += 1
        for key in ("wall_seconds", "cell_seconds", "kernel_and_io_seconds"):
            value = job.get(key)
            nb[key] += float(value) if value is not None else math.nan
    return {k: dict(v) for k, v in out.items()}


def run(*, quick: bool = False, repeats: int = 3, params: str = "default") -> list[Result]:
    """Benchmark the whole report.

    Parameters
    ----------
    quick : bool
        Skip (a report run takes about a minute; the smoke test must take seconds).
    repeats : int
        Report runs; figures are medians.
    params : str
        Parameter set.

    Returns
    -------
    list of Result
    """
    case = f"vanguard-report --params {params}"
    if quick:
        return [
            skipped(
                "report",
                case,
                "whole report",
                "not run in --quick mode (a full report run takes about a minute)",
            )
        ]
    walls, manifests, warm_walls, warm_manifests = [], [], [], []
    for i in range(repeats):
        print(f"  report: cold and warm run {i + 1}/{repeats} of {case}", flush=True)
        try:
            (wall, manifest), (warm, warm_manifest) = run_cold_warm(params)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return [Result("report", case, "whole report", note=f"failed: {exc}")]
        walls.append(wall)
        manifests.append(manifest)
        warm_walls.append(warm)
        warm_manifests.append(warm_manifest)
    last = manifests[-1]

    def whole(label, times, runs, goal, baseline):
        ok = all(_finished_ok(m) for m in runs)
        wall = statistics.median(m.get("wall_seconds", math.nan) for m in runs)
        r = Result(
            "report",
            case,
            label,
            size=f"{params}",
            times=times,
            baseline=baseline,
            goal=f"<= {goal:g} s on 2 cores",
            note=(
                f"workers={last.get('workers')}; all notebooks ok: {yes_no(ok)}; "
                f"manifest wall {wall:.1f} s; notebooks restored unchanged: "
                f"{sum(bool(n.get('restored')) for n in runs[-1].get('notebooks', []))} of "
                f"{len(runs[-1].get('notebooks', []))}; kernels forked from the preload "
                f"process: {sum(n.get('kernel') == 'forked' for n in runs[-1].get('notebooks', []))}"
            ),
        )
        r.goal_met = yes_no(r.median <= goal and ok)
        return r

    results = [
        whole("whole report, cold (empty caches)", walls, manifests, GOAL_SECONDS, True),
        whole(
            "whole report, warm (caches of the cold run)",
            warm_walls,
            warm_manifests,
            WARM_GOAL_SECONDS,
            False,
        ),
    ]
    tables = [per_notebook(m) for m in manifests]
    for nb in sorted(tables[-1]):
        rows = [t[nb] for t in tables if nb in t]
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        results.append(
            Result(
                "report",
                case,
                f"notebook {nb}",
                size=f"{int(med['jobs'])} job(s)",
                times=[r["wall_seconds"] for r in rows],
                ratio_to=f"{params}",
                note=(
                    f"compute (cells) {med['cell_seconds']:.1f} s, kernel start-up and I/O "
                    f"{med['kernel_and_io_seconds']:.1f} s (sums over jobs)"
                ),
            )
        )
    return results
