"""Run the notebooks of a parameter set with papermill and record the run.

A *parameter set* is a YAML file in ``params/`` (or anywhere, given by path)::

    run: ci                      # outputs go to reports/ci/
    description: small and fast
    timeout: 900                 # seconds per notebook cell (optional)
    workers: 2                   # parallel notebooks (optional; default: CPU count)
    parameters:                  # given to every notebook that declares them
      data_source: synthetic
      scale: rate
    grid:                        # the analysis grid
      outcomes: [emergency_admissions]
      groups: [population_based]
      estimators: [twfe, cs_never]
    notebooks:                   # per-notebook parameters
      05_robustness: {n_placebo: 3}
    publish_panel: false         # true: keep the full panel in the run folder (public
                                 # data only); default: a disclosure-controlled copy

Each grid key is plural (``outcomes``); a notebook that declares the singular
(``outcome``) runs once per value, a notebook that declares the plural gets the whole
list. Every name must be declared in the ``parameters`` cell of a notebook it is given
to, with a value of the declared type that its rule in :mod:`vanguard.params` allows;
:func:`check_param_set` enforces this before anything runs. A key given twice in the
YAML is an error, not "the last one wins".

Stages run in order (``01_data``; then trends, estimates, event studies and robustness
in parallel; ``06_report`` last). A failing notebook does not stop the others of its
stage, but the later stages are skipped (so no report is built from partial results);
the runner exits non-zero, names the notebook and its parameters, and keeps the
executed copy with the traceback. Every run writes ``reports/<run>/manifest.json``.

A run holds a lock on its name, starts by removing what an earlier run of that name
wrote (report included), and can be stopped with SIGTERM or Ctrl-C: every worker and
kernel is stopped, the manifest says ``interrupted`` and the report and the executed
copies of the stopped notebooks are removed or renamed, so nothing partial looks
finished. The panel notebooks 02-05 read from ``data/panel.parquet`` is replaced by a
disclosure-controlled copy once they are done (:func:`vanguard.sdc.publish_run_panel`).

Each notebook is a kernel start. The kernels of every stage after the first are forked
from a preload process that imported the heavy libraries once, while the first stage ran
(:mod:`vanguard.kernel_fork`; the manifest records each notebook's ``kernel``), so a
kernel starts in well under a second; still, the notebooks
that loop over a grid dimension themselves (``03_did`` over groups and estimators,
``04_event_study`` and ``05_robustness`` over groups) run once per outcome. The analyses
inside them are cached by content (:mod:`vanguard.cache`), so a re-run recomputes only
what its inputs, arguments or code changed; the manifest records whether the cache was on.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import contextlib
import copy
import dataclasses
import datetime as dt
import importlib.metadata
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tokenize
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vanguard import config
from vanguard import params as params_module
from vanguard.errors import DataError
from vanguard.io import sha256_file, write_text

if TYPE_CHECKING:
    import nbformat

# nbformat is imported where a notebook is read or written, not here: every notebook
# kernel imports this module (its parameter check reads the parameters cell), and
# nbformat's schema validator takes seconds to import, which a kernel would pay per job.

# --- the notebooks ---------------------------------------------------------------

STAGES: tuple[tuple[str, ...], ...] = (
    ("01_data",),
    ("02_trends", "03_did", "04_event_study", "05_robustness", "05_sensitivity"),
    ("06_report",),
)
"""Notebooks in run order; notebooks within a stage run in parallel."""

LONGEST_FIRST: tuple[str, ...] = (
    "04_event_study", "05_robustness", "05_sensitivity", "03_did", "02_trends",
)
"""Within a stage, start the slowest notebooks first so no core idles at the end (the
order used where no earlier run of the same name says how long each job took)."""

HASH_SEED_ENV, HASH_SEED = "PYTHONHASHSEED", "0"
"""The kernels' string-hash seed, fixed for a run unless the user set one: pyfixest's
estimates differ in the last bits between interpreters with different hash seeds (the
order of its sums follows string hashing), and a value can then round differently in a
results file. With one seed, a re-run gives the same bits."""

THREAD_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "RAYON_NUM_THREADS",
)
"""Thread pools capped in each kernel so that parallel notebooks do not oversubscribe
the cores (a variable the user has set is left alone)."""

GRID_KEYS: dict[str, str] = {"outcomes": "outcome", "groups": "group", "estimators": "estimator"}
"""Grid dimension (plural, in the YAML) -> the per-cell notebook parameter (singular)."""

TOP_LEVEL_KEYS: frozenset[str] = frozenset(
    {"run", "description", "timeout", "workers", "parameters", "grid", "notebooks",
     "publish_panel"}
)

DEFAULT_TIMEOUT = 1800
"""Seconds any one cell may run before the notebook is stopped."""

KERNEL_START_TIMEOUT = 120

PACKAGES: tuple[str, ...] = (
    "vanguard-did",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "statsmodels",
    "pyfixest",
    "moderndid",
    "pandera",
    "duckdb",
    "xlrd",
    "pyyaml",
    "jinja2",
    "typst",
    "papermill",
    "nbclient",
    "ipykernel",
    "jupyter_client",
)
"""Packages whose versions the manifest records (those that can change printed numbers)."""

RUN_OUTPUTS: tuple[str, ...] = ("data", "notebooks", "results", "figures", "tables")
"""Sub-folders of a run the runner empties before it starts, so that a results file of an
earlier run with another grid never reaches this run's report."""

GOLDEN_DIR: Path = config.TESTS / "golden"
GOLDEN_RUN = "golden"
"""Run name of the reference notebooks: when nbval re-executes them they write to
``reports/golden/``, never over a user's own run."""

@dataclass(frozen=True)
class NotebookParameter:
    """One line of a notebook's ``parameters`` cell."""

    name: str
    type: str
    default: Any
    help: str


@dataclass(frozen=True)
class Job:
    """One notebook execution."""

    notebook: str
    label: str
    parameters: dict
    input_path: Path
    output_path: Path


@dataclass
class JobResult:
    """What happened to one :class:`Job`.

    ``status`` is ``ok``, ``failed`` (the notebook raised or its worker crashed),
    ``skipped`` (not started because an earlier stage failed), ``interrupted`` (stopped
    by a signal while it ran) or ``not run`` (the run was stopped before it started);
    left empty it follows ``ok``. ``restored`` says the notebook did not run because an
    earlier run with the same inputs was put back (:mod:`vanguard.job_cache`).
    ``kernel`` says how the notebook's kernel started: ``forked`` from the run's preload
    process, or ``fresh`` and why (:mod:`vanguard.kernel_fork`).
    """

    job: Job
    ok: bool
    error: str = ""
    wall_seconds: float = 0.0
    cell_seconds: float = 0.0
    failed_cell: int | None = None
    status: str = ""
    restored: bool = False
    kernel: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "ok" if self.ok else "failed"

    @property
    def overhead_seconds(self) -> float:
        """Kernel start-up, shut-down and notebook I/O: wall time not spent in cells."""
        return max(self.wall_seconds - self.cell_seconds, 0.0)


# --- parameter sets -----------------------------------------------------------------


def resolve_params_path(spec: str | Path) -> Path:
    """Find a parameter set by name (``params/<name>.yml``) or by path.

    Parameters
    ----------
    spec : str or pathlib.Path
        ``"ci"``, ``"default"``, ``"nhs_mar"`` ... or a path to a YAML file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataError
        If no such parameter set exists.
    """
    text = str(spec)
    path = Path(text)
    if path.suffix in (".yml", ".yaml") or os.sep in text:
        if path.is_file():
            return path.resolve()
        raise DataError(path, "an existing parameter-set YAML file")
    for suffix in (".yml", ".yaml"):
        named = config.PARAMS / f"{text}{suffix}"
        if named.is_file():
            return named
    known = sorted(p.stem for p in config.PARAMS.glob("*.y*ml"))
    raise DataError(
        config.PARAMS / f"{text}.yml", f"a parameter set, one of {known} or a path", found=text
    )


def load_params(spec: str | Path) -> dict:
    """Read and structurally validate a parameter set.

    Parameters
    ----------
    spec : str or pathlib.Path
        Name in ``params/`` or path to a YAML file.

    Returns
    -------
    dict
        With keys ``run``, ``description``, ``timeout``, ``workers``, ``parameters``,
        ``grid`` and ``notebooks`` (missing ones filled with defaults) and ``path``.

    Raises
    ------
    DataError
        If the file is not valid YAML, repeats a key, is not a mapping, has unknown
        top-level keys, a grid key that is not one of :data:`GRID_KEYS`, an empty grid
        list, a bad run name or a ``publish_panel`` that is not true or false.
    """
    path = resolve_params_path(spec)
    raw = params_module.load_yaml(path)
    if not isinstance(raw, dict):
        raise DataError(
            path, "a mapping of run, parameters, grid and notebooks", found=type(raw).__name__
        )
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise DataError(path, f"top-level keys among {sorted(TOP_LEVEL_KEYS)}", found=unknown)
    ps = {
        "run": str(raw.get("run") or path.stem),
        "description": str(raw.get("description") or ""),
        "timeout": raw.get("timeout", DEFAULT_TIMEOUT),
        "workers": raw.get("workers"),
        "parameters": raw.get("parameters") or {},
        "grid": raw.get("grid") or {},
        "notebooks": raw.get("notebooks") or {},
        "publish_panel": raw.get("publish_panel", False),
        "path": path,
    }
    if params_module.value_problem("run", ps["run"]):
        raise DataError(
            path, "a plain run name (letters, digits, _ - .)", column="run", found=ps["run"]
        )
    if not isinstance(ps["publish_panel"], bool):
        raise DataError(path, "true or false", column="publish_panel", found=ps["publish_panel"])
    for key in ("parameters", "grid", "notebooks"):
        if not isinstance(ps[key], dict):
            raise DataError(path, "a mapping", column=key, found=ps[key])
    for key, values in ps["grid"].items():
        if key not in GRID_KEYS:
            raise DataError(path, f"grid keys among {sorted(GRID_KEYS)}", column="grid", found=key)
        if not isinstance(values, list) or not values:
            raise DataError(path, "a non-empty list", column=f"grid.{key}", found=values)
    if not isinstance(ps["timeout"], int) or ps["timeout"] <= 0:
        raise DataError(path, "a positive number of seconds", column="timeout", found=ps["timeout"])
    if ps["workers"] is not None and (not isinstance(ps["workers"], int) or ps["workers"] < 1):
        raise DataError(path, "a positive integer", column="workers", found=ps["workers"])
    return ps


# --- notebook parameters cells ---------------------------------------------------------


def parameters_cell(nb: Mapping, path: str | Path = "<notebook>") -> str:
    """Source of the one code cell tagged ``parameters``.

    Parameters
    ----------
    nb : nbformat.NotebookNode or dict
        A notebook, as nbformat reads it or as its JSON parses.
    path : str or pathlib.Path
        Named in errors.

    Raises
    ------
    DataError
        If the notebook does not have exactly one such cell.
    """
    cells = [
        c
        for c in nb["cells"]
        if c.get("cell_type") == "code"
        and "parameters" in (c.get("metadata") or {}).get("tags", [])
    ]
    if len(cells) != 1:
        raise DataError(path, "exactly one code cell tagged 'parameters'", found=len(cells))
    source = cells[0].get("source", "")
    # the JSON form may split a cell's source into lines
    return "".join(source) if isinstance(source, list) else source


def _read_notebook_json(path: str | Path) -> dict:
    """A version-4 notebook as plain JSON (without importing nbformat); other versions
    go through nbformat's conversion."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(path, "a readable notebook (.ipynb JSON)", found=str(exc)) from exc
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(
        nb.get("cells"), list
    ):
        import nbformat

        return nbformat.read(path, as_version=4)
    return nb


def notebook_parameters(path: str | Path) -> dict[str, NotebookParameter]:
    """Parse a notebook's ``parameters`` cell.

    Every statement must be an annotated assignment of a literal with a trailing
    comment, e.g. ``outcome: str = "bed_days"  # outcome column``.

    Parameters
    ----------
    path : str or pathlib.Path
        An ``.ipynb`` file.

    Returns
    -------
    dict of str to NotebookParameter
        In the order declared.

    Raises
    ------
    DataError
        If the cell is missing or duplicated, or a line is not a typed literal with a
        comment (the row is the line within the cell, counting from 1).
    """
    source = parameters_cell(_read_notebook_json(path), path)
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise DataError(path, "valid Python in the parameters cell", row=exc.lineno) from exc
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    out: dict[str, NotebookParameter] = {}
    for node in tree.body:
        if not (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
        ):
            raise DataError(
                path,
                "parameters written as `name: type = literal  # help`",
                row=node.lineno,
                found=lines[node.lineno - 1],
            )
        name = node.target.id
        try:
            default = ast.literal_eval(node.value)
        except ValueError as exc:
            raise DataError(
                path,
                "a literal default value",
                row=node.lineno,
                column=name,
                found=lines[node.lineno - 1],
            ) from exc
        help_text = comments.get(node.end_lineno, "")
        if not help_text:
            raise DataError(
                path,
                "a trailing comment saying what the parameter means",
                row=node.end_lineno,
                column=name,
            )
        type_name = ast.unparse(node.annotation).split("[")[0]
        out[name] = NotebookParameter(name, type_name, default, help_text)
    return out


# --- planning -------------------------------------------------------------------------


def _notebook_path(notebooks_dir: Path, name: str) -> Path:
    return notebooks_dir / f"{name}.ipynb"


def _declared(notebooks_dir: Path) -> dict[str, dict[str, NotebookParameter]]:
    return {
        name: notebook_parameters(_notebook_path(notebooks_dir, name))
        for stage in STAGES
        for name in stage
    }


def check_param_set(ps: Mapping, notebooks_dir: Path = config.NOTEBOOKS) -> list[str]:
    """Problems with a parameter set against the notebooks' ``parameters`` cells.

    Parameters
    ----------
    ps : mapping
        As returned by :func:`load_params`.
    notebooks_dir : pathlib.Path
        Folder with the notebooks named in :data:`STAGES`.

    Returns
    -------
    list of str
        Empty when every shared parameter is declared by at least one notebook, every
        per-notebook parameter by that notebook, every grid key by some notebook
        (singular or plural), and every value has the declared type and a value its
        rule in :data:`vanguard.params.RULES` allows (a grid list value by value, as the
        singular parameter it becomes).

    Raises
    ------
    DataError
        If a notebook's parameters cell cannot be parsed.
    """
    declared = _declared(notebooks_dir)
    problems: list[str] = []
    where = Path(ps.get("path", "<params>")).name

    def check_value(nb: str, name: str, value: Any, context: str) -> None:
        p = declared[nb].get(name)
        if p is None:
            return
        if not params_module.type_ok(value, p.type):
            problems.append(
                f"{where}: {context} {name}={value!r}: notebook {nb} declares type {p.type}"
            )
            return
        why = params_module.value_problem(name, value)
        if why:
            text = f"{where}: {context}{name}: {why}"
            if text not in problems:  # a shared parameter is given to several notebooks
                problems.append(text)

    for name, value in ps["parameters"].items():
        takers = [nb for nb, params in declared.items() if name in params]
        if not takers:
            problems.append(f"{where}: parameters.{name}: no notebook declares it")
        for nb in takers:
            check_value(nb, name, value, "parameters.")
    for key, values in ps["grid"].items():
        single = GRID_KEYS[key]
        takers = [nb for nb, params in declared.items() if single in params or key in params]
        if not takers:
            problems.append(f"{where}: grid.{key}: no notebook declares {single} or {key}")
        for nb in takers:
            if single in declared[nb]:
                for v in values:
                    check_value(nb, single, v, f"grid.{key}: ")
            else:
                check_value(nb, key, values, "grid.")
    for nb, overrides in ps["notebooks"].items():
        if nb not in declared:
            problems.append(
                f"{where}: notebooks.{nb}: no such notebook; expected one of {sorted(declared)}"
            )
            continue
        if not isinstance(overrides, dict):
            problems.append(f"{where}: notebooks.{nb}: expected a mapping")
            continue
        for name, value in overrides.items():
            if name not in declared[nb]:
                problems.append(f"{where}: notebooks.{nb}.{name}: not declared by {nb}")
            else:
                check_value(nb, name, value, f"notebooks.{nb}.")
    return problems


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(value)).strip("-")


def plan_jobs(
    ps: Mapping, run_path: Path, notebooks_dir: Path = config.NOTEBOOKS
) -> list[list[Job]]:
    """Expand a parameter set into notebook executions, stage by stage.

    Parameters
    ----------
    ps : mapping
        As returned by :func:`load_params`.
    run_path : pathlib.Path
        The run folder; executed notebooks go to its ``notebooks/``.
    notebooks_dir : pathlib.Path
        Folder with the source notebooks.

    Returns
    -------
    list of list of Job
        One list per stage of :data:`STAGES`.

    Raises
    ------
    DataError
        If :func:`check_param_set` finds a problem.
    """
    problems = check_param_set(ps, notebooks_dir)
    if problems:
        raise DataError(
            ps.get("path"), "parameters every notebook declares:\n  " + "\n  ".join(problems)
        )
    declared = _declared(notebooks_dir)
    waves: list[list[Job]] = []
    for stage in STAGES:
        jobs: list[Job] = []
        for nb in stage:
            names = declared[nb]
            base = {"run": ps["run"]} if "run" in names else {}
            base.update({k: v for k, v in ps["parameters"].items() if k in names})
            axes: list[tuple[str, list]] = []
            for key, values in ps["grid"].items():
                single = GRID_KEYS[key]
                if single in names:
                    axes.append((single, list(values)))
                elif key in names:
                    base[key] = list(values)
            base.update(ps["notebooks"].get(nb, {}))
            for combo in itertools.product(*(values for _, values in axes)):
                params = dict(base)
                params.update({name: value for (name, _), value in zip(axes, combo, strict=True)})
                label = "__".join([nb, *(_slug(v) for v in combo)])
                jobs.append(
                    Job(
                        nb,
                        label,
                        params,
                        _notebook_path(notebooks_dir, nb).resolve(),
                        (run_path / "notebooks" / f"{label}.ipynb").resolve(),
                    )
                )
        waves.append(jobs)
    return waves


# --- execution -------------------------------------------------------------------------


def _cell_seconds(path: Path) -> float:
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return 0.0
    return float(
        sum((c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0) for c in nb.cells)
    )


@dataclass(frozen=True)
class Reuse:
    """Where and under which key a job's run is restored or stored (:mod:`vanguard.job_cache`)."""

    key: str
    run_path: Path


def execute_job(job: Job, timeout: int = DEFAULT_TIMEOUT, threads: int | None = None,
                reuse: Reuse | None = None, preload: str | None = None) -> JobResult:
    """Execute one notebook with papermill (runs in a worker process).

    The kernel is named explicitly (:data:`vanguard.config.KERNEL_NAME`) and the input
    and output paths are absolute, so the result does not depend on the working
    directory or on the kernelspec stored in the notebook.

    Parameters
    ----------
    job : Job
    timeout : int
        Seconds any one cell may run.
    threads : int, optional
        Cap on the kernel's numerical thread pools (:data:`THREAD_VARS`).
    reuse : Reuse, optional
        Store this run under this key when it succeeds (:mod:`vanguard.job_cache`).
    preload : str, optional
        Folder of the run's preload process: the kernel is forked from it where it can
        be (:mod:`vanguard.kernel_fork`); None starts a fresh kernel.

    Returns
    -------
    JobResult
        ``ok=False`` with the exception summary when the notebook failed; the executed
        copy with the traceback stays at ``job.output_path``.
    """
    import papermill as pm  # heavy import, only where notebooks run

    from vanguard import job_cache, kernel_fork

    if threads:
        for var in THREAD_VARS:  # the kernel inherits this worker's environment
            os.environ.setdefault(var, str(threads))
    job.output_path.parent.mkdir(parents=True, exist_ok=True)
    log = job.output_path.with_name(f".{job.output_path.name}.writes.tmp")
    log.unlink(missing_ok=True)
    if reuse is not None:  # the kernel inherits it: each file it writes is named there
        os.environ[job_cache.WRITE_LOG_ENV] = str(log)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(job.input_path),
            str(job.output_path),
            parameters=job.parameters,
            kernel_name=config.KERNEL_NAME,
            progress_bar=False,
            log_output=False,
            start_timeout=KERNEL_START_TIMEOUT,
            execution_timeout=timeout,
            cwd=str(job.input_path.parent),
            kernel_manager_class=kernel_fork.kernel_manager_class(preload),
        )
        ok, error, failed = True, "", None
    except Exception as exc:  # noqa: BLE001 - any failure is reported, the run goes on
        ok = False
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        error = f"{ename}: {evalue}".strip()
        failed = getattr(exc, "exec_count", None)
    finally:
        os.environ.pop(job_cache.WRITE_LOG_ENV, None)
    wall = time.perf_counter() - t0
    if ok and reuse is not None:
        job_cache.store(reuse.key, reuse.run_path, job.output_path,
                        job_cache.written_files(log, reuse.run_path))
    log.unlink(missing_ok=True)
    launch = kernel_fork.last_launch()
    kernel = launch.get("kernel", "")
    if kernel == "fresh" and preload is not None:
        kernel = f"fresh: {launch['why']}"
    return JobResult(job, ok, error, wall, _cell_seconds(job.output_path), failed,
                     kernel=kernel)


def previous_durations(run_path: Path) -> dict[str, float]:
    """Wall seconds of each job of the last run of this name, from its manifest.

    Returns
    -------
    dict
        Job label -> seconds, for the jobs that finished (empty without a readable
        manifest).
    """
    try:
        manifest = json.loads((run_path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for entry in manifest.get("notebooks", []) if isinstance(manifest, dict) else []:
        try:
            label = Path(str(entry["output"])).stem
            seconds = float(entry["wall_seconds"])
        except (KeyError, TypeError, ValueError):
            continue
        if entry.get("status", "ok") == "ok" and math.isfinite(seconds):
            out[label] = seconds
    return out


def longest_first(wave: Sequence[Job], durations: Mapping[str, float] | None = None) -> list[Job]:
    """Jobs of one stage in start order: longest expected first (LPT scheduling).

    A job's expected length is its wall time in the previous run (``durations``). Jobs
    without one (a first run, a new notebook or grid value) start before those with one,
    since a long job started late leaves a core idle at the end; among themselves they
    follow :data:`LONGEST_FIRST`, a notebook not listed there after its two slowest.
    Ties keep plan order.

    Parameters
    ----------
    wave : sequence of Job
    durations : mapping, optional
        Job label -> seconds.

    Returns
    -------
    list of Job
    """
    durations = durations or {}
    rank = {name: float(i) for i, name in enumerate(LONGEST_FIRST)}

    def key(job: Job) -> tuple[int, float]:
        if job.label in durations:
            return (1, -durations[job.label])
        return (0, rank.get(job.notebook, min(1.5, len(rank))))

    return sorted(wave, key=key)


def _worker_init() -> None:
    """Pool worker set-up: leave Ctrl-C to the runner.

    A terminal sends SIGINT to the whole foreground process group; the runner then
    stops every worker and kernel itself, in order, rather than each worker dying
    half-way through writing a notebook.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _reuse_keys(wave: Sequence[Job], inputs: Mapping[str, str] | None,
                run_path: Path | None) -> dict[str, Reuse]:
    """Job label -> where its run is restored from or stored, for a stage's jobs.

    Read when the stage starts, before any of its jobs writes: the earlier stages'
    outputs are then complete and no job of this stage has touched the folder. The last
    stage (the report, which prints this run's manifest) always runs.
    """
    from vanguard import cache, job_cache

    if inputs is None or run_path is None or not cache.enabled():
        return {}
    wave = [j for j in wave if j.notebook not in STAGES[-1]]
    if not wave:
        return {}
    prior = job_cache.prior_outputs(run_path, [s for s in RUN_OUTPUTS if s != "notebooks"])
    package, versions = job_cache.package_digest(), package_versions()
    return {j.label: Reuse(job_cache.job_key(j.input_path, j.parameters, inputs, prior, package,
                                             versions), run_path.resolve()) for j in wave}


def _restore(job: Job, reuse: Reuse | None) -> JobResult | None:
    """The result of a job put back from the job cache, or None to run it."""
    from vanguard import job_cache

    t0 = time.perf_counter()
    if reuse is None or job_cache.restore(reuse.key, reuse.run_path, job.output_path) is None:
        return None
    return JobResult(job, True, wall_seconds=time.perf_counter() - t0, restored=True)


def _skipped(job: Job, why: str) -> JobResult:
    return JobResult(job, False, why, status="skipped")


def run_jobs(
    waves: Sequence[Sequence[Job]],
    *,
    workers: int,
    timeout: int,
    progress: bool = True,
    after_stage: Callable[[list[JobResult]], None] | None = None,
    durations: Mapping[str, float] | None = None,
    reuse_inputs: Mapping[str, str] | None = None,
    run_path: Path | None = None,
    fork_kernels: bool = True,
) -> list[JobResult]:
    """Run stages in order, the jobs of each stage in a process pool.

    A stage starts only when every notebook of the earlier stages succeeded: the later
    notebooks read what the earlier ones wrote (``06_report`` reads everything), so
    running them after a failure would build on missing or partial results. Their
    results say ``skipped`` and name the failures. Within a stage a failing notebook
    does not stop the others.

    Parameters
    ----------
    waves : sequence of sequence of Job
        From :func:`plan_jobs`.
    workers : int
        Parallel notebooks (each runs its own kernel).
    timeout : int
        Seconds any one cell may run.
    progress : bool
        Show a tqdm progress bar on stderr.
    after_stage : callable, optional
        Called with the results so far after each stage (the runner updates the manifest,
        so that later notebooks can see which earlier ones failed).
    durations : mapping, optional
        Job label -> wall seconds of an earlier run, for the start order
        (:func:`longest_first`).
    reuse_inputs : mapping, optional
        The run's input checksums (:func:`input_checksums`): given with ``run_path``,
        a job of the stages before the last whose inputs are unchanged since a run that
        stored it is restored instead of run (:mod:`vanguard.job_cache`).
    run_path : pathlib.Path, optional
        The run folder.
    fork_kernels : bool
        Start a preload process with the run and fork the kernels of every stage after
        the first from it (:mod:`vanguard.kernel_fork`); the first stage's kernels start
        fresh, as the preload process is still importing while they run. False: every
        kernel starts fresh.

    Returns
    -------
    list of JobResult
        In plan order.

    Raises
    ------
    RunInterrupted
        When SIGTERM or SIGINT arrives (see :func:`stop_signals`): every worker and kernel
        has been stopped before it propagates, and its ``results`` hold one result per
        planned job (``interrupted`` for those that were running, ``not run`` for those
        not started).
    """
    from tqdm.auto import tqdm

    total = sum(len(w) for w in waves)
    results: dict[str, JobResult] = {}
    # spawn: a fresh interpreter per worker, so no zmq/asyncio state is inherited by fork
    ctx = multiprocessing.get_context("spawn")
    n_workers = max(1, min(workers, total or 1))
    threads = max(1, default_workers() // n_workers)
    pool = cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init)
    preload, no_preload = None, ""
    running: set[str] = set()
    try:
        if fork_kernels:  # inside the try: a signal now still stops the pool and the rest
            preload, no_preload = _start_preload(waves, pool, threads)
        with tqdm(
            total=total, desc="notebooks", unit="nb", disable=not progress, file=sys.stderr
        ) as bar:
            for stage, wave in enumerate(waves):
                # sorted: the message must not depend on which worker finished first
                failed = sorted(r.job.label for r in results.values() if not r.ok)
                if failed:
                    for job in wave:
                        results[job.label] = _skipped(
                            job, f"not run: earlier notebooks failed: {', '.join(failed)}"
                        )
                        bar.update()
                    continue
                ordered = longest_first(wave, durations)
                keys = _reuse_keys(wave, reuse_inputs, run_path)
                futures = {}
                for job in ordered:
                    restored = _restore(job, keys.get(job.label))
                    if restored is not None:  # no kernel, no worker: the files are put back
                        results[job.label] = restored
                        bar.set_postfix_str(job.label[:40], refresh=False)
                        bar.update()
                        continue
                    running.add(job.label)  # before submit: a signal may come in between
                    fork_from = str(preload.folder) if preload is not None and stage else None
                    futures[pool.submit(execute_job, job, timeout, threads,
                                        keys.get(job.label), fork_from)] = job
                for fut in cf.as_completed(futures):
                    job = futures[fut]
                    try:
                        res = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a crashed worker is one failure
                        res = JobResult(job, False, f"{type(exc).__name__}: {exc}")
                    if no_preload and stage:
                        res = dataclasses.replace(res, kernel=f"fresh: {no_preload}")
                    results[job.label] = res
                    running.discard(job.label)
                    bar.set_postfix_str(job.label[:40], refresh=False)
                    bar.update()
                if after_stage is not None:
                    after_stage([results[j.label] for w in waves for j in w if j.label in results])
    except RunInterrupted as stop:
        # stop the processes first: nothing may write into the run folder after this
        stop.stopped = stop_processes(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        for w in waves:
            for j in w:
                if j.label in results:
                    continue
                if j.label in running:
                    results[j.label] = JobResult(
                        j, False, f"interrupted by {stop.signal_name}", status="interrupted"
                    )
                else:
                    results[j.label] = JobResult(
                        j, False, f"not run: run stopped by {stop.signal_name}", status="not run"
                    )
        stop.results = [results[j.label] for w in waves for j in w]
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        if preload is not None:
            preload.stop()
    return [results[j.label] for w in waves for j in w]


def _kernel_environ(threads: int) -> dict[str, str]:
    """The environment a worker gives its kernels (runs in a worker: a spawned
    interpreter's environment can differ from its parent's)."""
    env = dict(os.environ)
    for var in THREAD_VARS:  # as execute_job sets them
        env.setdefault(var, str(threads))
    return env


def _start_preload(waves: Sequence[Sequence[Job]], pool: cf.Executor, threads: int):
    """The run's preload process (:mod:`vanguard.kernel_fork`) and, if there is none, why.

    Started with the environment a worker gives its kernels, in the kernels' working
    directory, so that what its imports read is what a fresh kernel's would read.
    """
    later = [j for w in waves[1:] for j in w]
    if not later:
        return None, ""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from vanguard import kernel_fork

    try:
        argv = KernelSpecManager().get_kernel_spec(config.KERNEL_NAME).argv
    except NoSuchKernel:
        return None, f"no kernelspec {config.KERNEL_NAME!r}"  # papermill says so per job
    try:
        env = pool.submit(_kernel_environ, threads).result()
    except Exception as exc:  # noqa: BLE001 - the first job meets the same failure
        return None, f"no worker started: {exc}"
    try:
        return kernel_fork.PreloadProcess(argv, later[0].input_path.parent, env), ""
    except (OSError, ValueError) as exc:
        return None, f"the preload process could not start: {exc}"


# --- stopping a run ------------------------------------------------------------------------

RUN_ENV = "VANGUARD_RUN_FOLDER"
"""Set, for the length of a run, to the run folder: every worker, kernel and process they
start inherits it, so the processes of a run can be found even after their parent died
(a kernel runs in a session of its own and is no child of the runner's process group)."""

STOP_GRACE_SECONDS = 5.0
"""How long a stopped process may take to exit after SIGTERM before it gets SIGKILL."""


class RunInterrupted(Exception):  # noqa: N818 - it is the event, not an error of the code
    """SIGTERM or SIGINT arrived while a run was executing."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.results: list[JobResult] = []
        self.stopped: list[int] = []
        super().__init__(f"run stopped by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """``128 + signal number``, as a shell reports a process a signal stopped."""
        return 128 + self.signum


@contextlib.contextmanager
def stop_signals():
    """Turn the first SIGTERM or SIGINT into :class:`RunInterrupted` in the main thread.

    A second signal while the run cleans up is ignored, so that pressing Ctrl-C twice
    cannot leave the workers running and the manifest unwritten. Outside the main thread
    (where Python cannot install handlers) this does nothing.

    Yields
    ------
    None

    Raises
    ------
    RunInterrupted
        From wherever the main thread is when the signal arrives.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, frame):
        if fired:
            return
        fired.append(signum)
        raise RunInterrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _helper_pids() -> set[int]:
    """multiprocessing's resource tracker of this process: it serves the process, not a run."""
    from multiprocessing import resource_tracker

    pid = getattr(resource_tracker._resource_tracker, "_pid", None)
    return {pid} if pid else set()


def _start_helpers() -> None:
    """Start the resource tracker before a run tags the environment, so it is never tagged
    (it outlives the run and is shared by every later run of this process)."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def run_processes(run_path: Path) -> list:
    """Live processes of this user started for ``run_path`` (found by :data:`RUN_ENV`).

    Parameters
    ----------
    run_path : pathlib.Path

    Returns
    -------
    list of psutil.Process
        Excluding this process and its ancestors.
    """
    import psutil  # a dependency of ipykernel, always installed with the project

    me = psutil.Process()
    exclude = {me.pid, *(p.pid for p in me.parents()), *_helper_pids()}
    token = str(Path(run_path).resolve())
    found = []
    for proc in psutil.process_iter(["pid", "uids"]):
        if proc.pid in exclude:
            continue
        try:
            if proc.environ().get(RUN_ENV) == token:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue  # another user's process, or one that just exited
    return found


def _terminate(procs: Iterable) -> list[int]:
    import psutil

    procs = {p.pid: p for p in procs}
    for p in procs.values():
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=STOP_GRACE_SECONDS)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=STOP_GRACE_SECONDS)
    return sorted(procs)


def stop_processes(pool: cf.ProcessPoolExecutor | None = None, run_path: Path | None = None
                   ) -> list[int]:
    """Stop every worker and kernel of a run, and whatever they started.

    The whole tree is collected before anything is signalled (a kernel whose worker
    died first would be re-parented and lost from the tree); processes that carry the
    run's :data:`RUN_ENV` are added, which finds kernels of a worker that died earlier.
    Each gets SIGTERM, then SIGKILL after :data:`STOP_GRACE_SECONDS`; the search is
    repeated until nothing of the run is left (a kernel may have been starting).

    Parameters
    ----------
    pool : concurrent.futures.ProcessPoolExecutor, optional
        The run's pool (its workers and their descendants).
    run_path : pathlib.Path, optional
        Run folder; default the one in this process's :data:`RUN_ENV`.

    Returns
    -------
    list of int
        Process ids stopped.
    """
    import psutil

    token = run_path or os.environ.get(RUN_ENV)
    procs: dict[int, psutil.Process] = {}
    workers = list(getattr(pool, "_processes", {}) or {}) if pool is not None else []
    for pid in workers:
        try:
            root = psutil.Process(pid)
            procs[pid] = root
            procs.update({c.pid: c for c in root.children(recursive=True)})
        except psutil.NoSuchProcess:
            continue
    stopped: list[int] = []
    for _ in range(5):
        if token:
            procs.update({p.pid: p for p in run_processes(Path(token))})
        if not procs:
            break
        stopped += _terminate(procs.values())
        procs = {}
    return sorted(set(stopped))


# --- the run folder ------------------------------------------------------------------------

REPORT_FILES: tuple[str, ...] = ("report.html", "report.pdf")
RUN_FILES: tuple[str, ...] = (*REPORT_FILES, "manifest.json")
"""Files of a run folder the runner owns (with the sub-folders :data:`RUN_OUTPUTS`)."""

INTERRUPTED_SUFFIX = ".interrupted.ipynb"


class RunLock:
    """An exclusive lock on one run name, held for the length of the run.

    ``reports/.<run>.lock`` is locked with ``flock``, which the operating system
    releases when the process ends however it ends, so a crashed run never leaves a
    stale lock. Two runs of the same name would empty and fill one folder at once;
    runs of different names do not share a lock. Where ``fcntl`` does not exist (not on
    POSIX) the lock is a no-op.

    Parameters
    ----------
    run_path : pathlib.Path

    Raises
    ------
    DataError
        On entering, if another process holds the lock.
    """

    def __init__(self, run_path: Path) -> None:
        self.path = run_path.parent / f".{run_path.name}.lock"
        self._fh = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise DataError(
                self.path.parent / self.path.name.removeprefix(".").removesuffix(".lock"),
                "a run name no other run is using; wait for it or choose another --run",
                found=f"run in progress ({holder})",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the flock
            self._fh = None


def clean_run_folder(run_path: Path) -> list[Path]:
    """Empty a run folder of everything an earlier run of the same name wrote.

    Processes still running for this folder (orphans of a run that was killed with
    SIGKILL, which no handler can see) are stopped first, then the runner's own outputs
    are removed: the sub-folders :data:`RUN_OUTPUTS`, the report, the manifest and
    hidden temporary files. Anything else a user put there is left alone.

    Parameters
    ----------
    run_path : pathlib.Path

    Returns
    -------
    list of pathlib.Path
        What was removed.
    """
    stop_processes(run_path=run_path)
    removed = []
    for sub in RUN_OUTPUTS:
        if (run_path / sub).exists():
            shutil.rmtree(run_path / sub, ignore_errors=True)
            removed.append(run_path / sub)
    for name in RUN_FILES:
        if (run_path / name).exists():
            (run_path / name).unlink()
            removed.append(run_path / name)
    if run_path.is_dir():
        for tmp in run_path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def discard_partial_outputs(run_path: Path, results: Sequence[JobResult]) -> list[Path]:
    """After an interruption: leave nothing that could pass for a finished output.

    Each results file is complete (written atomically) but the set is not, which the
    manifest says. What is removed or renamed: temporary files of writes that were cut
    off, the report unless ``06_report`` finished, and the executed notebooks of the
    notebooks that were stopped (kept, for their tracebacks, as
    ``<name>.interrupted.ipynb``).

    Parameters
    ----------
    run_path : pathlib.Path
    results : sequence of JobResult
        One per planned job, with the ``interrupted`` ones marked.

    Returns
    -------
    list of pathlib.Path
        Files removed or renamed (their old names).
    """
    touched = []
    if run_path.is_dir():
        for tmp in run_path.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            touched.append(tmp)
    report_ok = any(r.job.notebook == STAGES[-1][0] and r.ok for r in results)
    if not report_ok:
        for name in REPORT_FILES:
            if (run_path / name).exists():
                (run_path / name).unlink()
                touched.append(run_path / name)
    for r in results:
        out = r.job.output_path
        if r.status == "interrupted" and out.exists():
            out.replace(out.with_name(out.name.removesuffix(".ipynb") + INTERRUPTED_SUFFIX))
            touched.append(out)
    return touched


# --- the manifest ------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    """Output of a git command in the project, or None when git cannot answer."""
    try:
        return subprocess.run(
            ["git", *args], cwd=config.ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_state() -> dict:
    """The code a run used: ``git_commit`` and ``git_dirty``.

    Returns
    -------
    dict
        ``git_commit``: the commit hash, or ``"unknown"`` outside a git checkout;
        ``git_dirty``: True when tracked or untracked files differ from that commit
        (ignored files such as ``reports/`` do not count), None when unknown.
    """
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain") if commit else None
    return {
        "git_commit": commit or "unknown",
        "git_dirty": None if status is None else bool(status),
    }


def _rel(path: Path) -> str:
    """Path relative to the project root where possible, so the manifest is portable."""
    from vanguard.population import population_dir

    path = Path(path).resolve()
    for base, label in (
        (config.ROOT, ""),
        (config.mar_dir(), "$MAR_DIR/"),
        (population_dir(), "$POPULATION_DIR/"),
        (config.reports_dir(), "$REPORTS/"),
    ):
        try:
            return label + path.relative_to(base).as_posix()
        except ValueError:
            continue
    return path.name


def input_files(ps: Mapping, notebooks_dir: Path = config.NOTEBOOKS) -> list[Path]:
    """Every file a run reads: parameter set, notebooks, raw data, and the MAR files and
    population tables if used.

    Parameters
    ----------
    ps : mapping
        As returned by :func:`load_params`.
    notebooks_dir : pathlib.Path

    Returns
    -------
    list of pathlib.Path
        Sorted, existing files only.
    """
    files = {Path(ps["path"])}
    files.update(notebooks_dir.glob("*.ipynb"))
    if config.DATA_RAW.is_dir():
        files.update(
            p
            for p in config.DATA_RAW.rglob("*")
            if p.is_file() and config.DOWNLOADED_MAR_DIR not in p.parents
        )
    sources = {ps["parameters"].get("data_source")}
    sources.update(v.get("data_source") for v in ps["notebooks"].values() if isinstance(v, dict))
    if "nhs_mar" in sources and config.mar_dir().is_dir():
        files.update(p for p in config.mar_dir().iterdir() if p.is_file())
        from vanguard.population import population_dir

        if population_dir().is_dir():  # the rates' denominators
            files.update(p for p in population_dir().rglob("*") if p.is_file())
    # a user's own files named outside data/raw/ are inputs too
    for values in [ps["parameters"], *(v for v in ps["notebooks"].values() if isinstance(v, dict))]:
        files.update(config.DATA_RAW / v for k, v in values.items()
                     if k.startswith("custom_") and isinstance(v, str) and v)
    return sorted(f.resolve() for f in files if f.is_file())


def input_checksums(files: Iterable[Path]) -> dict[str, str]:
    """sha256 of each file, keyed by its project-relative name (see :func:`input_files`)."""
    return {_rel(p): sha256_file(p) for p in files}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` ("not installed" where missing)."""
    out = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_parameters(ps: Mapping) -> dict:
    """The parameters of a run as one flat mapping, as the report reads them.

    Shared parameters and the grid lists at the top level (``data_source``, ``scale``,
    ``outcomes`` ...), per-notebook parameters under ``notebooks``.
    """
    return {**ps["parameters"], **ps["grid"], "notebooks": ps["notebooks"]}


def _cache_setting() -> str:
    """``on`` with the cache folder (project-relative where possible), or ``off``."""
    from vanguard import cache

    return f"on ({_rel(cache.cache_dir())})" if cache.enabled() else "off"


def write_manifest(
    run_path: Path,
    ps: Mapping,
    results: Sequence[JobResult] | None,
    inputs: Mapping[str, str],
    wall_seconds: float,
    workers: int,
    finished: bool = True,
    *,
    interrupted_by: str | None = None,
    panel_published: str | None = None,
) -> Path:
    """Write ``manifest.json`` for a run.

    Written before the notebooks run and after each stage (``status: running``, so that
    the report notebook sees this run's parameters and failures, never a previous
    run's), and at the end.

    Parameters
    ----------
    run_path : pathlib.Path
    ps : mapping
        The parameter set.
    results : sequence of JobResult, or None
        Notebooks run so far (None before any).
    inputs : mapping
        Input file (relative name) -> sha256, from :func:`input_checksums`.
    wall_seconds : float
        Whole-run wall time.
    workers : int
    finished : bool
        False while notebooks are still to run.
    interrupted_by : str, optional
        Name of the signal that stopped the run; the status is then ``interrupted``.
    panel_published : str, optional
        What ``data/panel.parquet`` holds once the run is over (``full`` or
        ``disclosure-controlled``).

    Returns
    -------
    pathlib.Path
    """
    results = list(results or [])
    if interrupted_by:
        status = "interrupted"
    elif not finished:
        status = "running"
    else:
        status = "ok" if all(r.ok for r in results) else "failed"
    manifest = {
        "run": ps["run"],
        "status": status,
        "interrupted_by": interrupted_by,
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **git_state(),
        "parameter_set": _rel(ps["path"]),
        "description": ps["description"],
        "timeout_seconds": ps["timeout"],
        "parameters": run_parameters(ps),
        "publish_panel": bool(ps.get("publish_panel", False)),
        "panel_published": panel_published,
        "inputs": dict(inputs),
        "packages": package_versions(),
        "workers": workers,
        "analysis_cache": _cache_setting(),
        "python_hash_seed": os.environ.get(HASH_SEED_ENV, "random"),
        "wall_seconds": round(wall_seconds, 2),
        "notebooks": [
            {
                "notebook": r.job.notebook,
                "output": _rel(r.job.output_path),
                "parameters": r.job.parameters,
                "ok": r.ok,
                "status": r.status,
                "restored": r.restored,
                "error": r.error,
                "failed_cell": r.failed_cell,
                "wall_seconds": round(r.wall_seconds, 2),
                "cell_seconds": round(r.cell_seconds, 2),
                "kernel_and_io_seconds": round(r.overhead_seconds, 2),
                "kernel": r.kernel,
            }
            for r in results
        ],
    }
    return write_text(
        run_path / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n"
    )


# --- golden notebooks -----------------------------------------------------------------

_VOLATILE_NB_META = ("papermill", "widgets")
_VOLATILE_CELL_META = ("papermill", "execution")


def sanitise_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy of an executed notebook without machine paths, timestamps or durations.

    Keeps the text outputs (nbval compares those of cells marked
    ``# NBVAL_CHECK_OUTPUT``) and the parameters papermill injected, so the notebook
    re-runs as it ran in the pipeline. Images are dropped: nbval checks figures through
    their data files, and PNG bytes would make every refresh a large diff.

    Parameters
    ----------
    nb : nbformat.NotebookNode

    Returns
    -------
    nbformat.NotebookNode
    """
    nb = copy.deepcopy(nb)
    for key in _VOLATILE_NB_META:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_META:
            cell.metadata.pop(key, None)
        cell.pop("id", None)
        for output in cell.get("outputs", []):
            for mime in [m for m in output.get("data", {}) if m.startswith("image/")]:
                del output["data"][mime]
    # cell ids are optional before nbformat 4.5; dropping them keeps diffs to real changes
    nb.nbformat_minor = 4
    return nb


def refresh_golden(results: Sequence[JobResult], golden_dir: Path = GOLDEN_DIR) -> list[Path]:
    """Replace the reference notebooks nbval checks with this run's executed notebooks.

    Parameters
    ----------
    results : sequence of JobResult
        All must be ``ok``.
    golden_dir : pathlib.Path

    Returns
    -------
    list of pathlib.Path
        The notebooks written.

    Raises
    ------
    RuntimeError
        If any notebook failed: a failed run never becomes the reference.
    """
    import nbformat

    failed = [r.job.label for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"not refreshing golden notebooks: {failed} failed")
    golden_dir.mkdir(parents=True, exist_ok=True)
    for old in golden_dir.glob("*.ipynb"):
        old.unlink()
    written = []
    for r in results:
        nb = sanitise_notebook(nbformat.read(r.job.output_path, as_version=4))
        dest = golden_dir / r.job.output_path.name
        write_text(dest, nbformat.writes(nb) + "\n")
        written.append(dest)
    return written


# --- the run ----------------------------------------------------------------------------


def default_workers() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _panel_is_public(waves: Sequence[Sequence[Job]], notebooks_dir: Path) -> bool:
    """Whether the data of a run are public (the data source 01_data is given)."""
    declared = notebook_parameters(_notebook_path(notebooks_dir, STAGES[0][0]))
    first = waves[0][0].parameters if waves and waves[0] else {}
    default = declared["data_source"].default if "data_source" in declared else None
    return first.get("data_source", default) in params_module.PUBLIC_DATA_SOURCES


def run_pipeline(
    params: str | Path,
    *,
    run: str | None = None,
    workers: int | None = None,
    notebooks_dir: Path | None = None,
    golden: bool = False,
    progress: bool = True,
    fork_kernels: bool = True,
) -> tuple[Path, list[JobResult]]:
    """Run every notebook of a parameter set and write the run manifest.

    Before anything runs: the parameter set and every value in it are checked, the run
    name is locked (:class:`RunLock`), and the run folder is emptied of an earlier run's
    outputs (:func:`clean_run_folder`). While it runs, SIGTERM and SIGINT stop it
    (:func:`stop_signals`); every worker and kernel is then stopped, the manifest says
    ``interrupted`` and nothing partial is left that looks finished.

    ``data/panel.parquet`` is the analysis input of notebooks 02-05; once they are done
    (and whatever happens), it is replaced by a disclosure-controlled copy
    (:func:`vanguard.sdc.publish_run_panel`) unless the data are public and the
    parameter set says ``publish_panel: true``.

    Parameters
    ----------
    params : str or pathlib.Path
        Parameter set name in ``params/`` or a YAML path.
    run : str, optional
        Override the run name (outputs go to ``reports/<run>/``).
    workers : int, optional
        Parallel notebooks; default: the parameter set's ``workers`` or the CPU count.
    notebooks_dir : pathlib.Path, optional
        Folder with the source notebooks (default :data:`vanguard.config.NOTEBOOKS`).
    golden : bool
        Afterwards, replace ``tests/golden/`` with the executed notebooks; the run is
        named :data:`GOLDEN_RUN` unless ``run`` is given.
    progress : bool
        Show a progress bar.
    fork_kernels : bool
        Fork the kernels after the first stage from a process that has imported the
        heavy libraries once (:mod:`vanguard.kernel_fork`); False starts every kernel
        fresh (slower; for notebooks whose imports must run in their own kernel).

    Returns
    -------
    (pathlib.Path, list of JobResult)
        The run folder and one result per planned notebook (``skipped`` ones included).

    Raises
    ------
    DataError
        If the parameter set is malformed, names a parameter no notebook declares or a
        value its rule refuses, the reports folder cannot be used, or another run of
        the same name is in progress.
    RunInterrupted
        If SIGTERM or SIGINT stopped the run (after the clean-up above).
    """
    from vanguard import sdc

    notebooks_dir = notebooks_dir or config.NOTEBOOKS
    ps = load_params(params)
    if run is None and golden:
        run = GOLDEN_RUN
    if run is not None:
        if params_module.value_problem("run", run):
            raise DataError("--run", "a plain run name (letters, digits, _ - .)", found=run)
        ps["run"] = run
    run_path = config.run_dir(ps["run"])
    waves = plan_jobs(ps, run_path, notebooks_dir)
    full_panel = bool(ps["publish_panel"]) and _panel_is_public(waves, notebooks_dir)
    n_workers = workers or ps["workers"] or default_workers()
    inputs = input_checksums(input_files(ps, notebooks_dir))
    # a job's key holds its own notebook and parameters: the parameter set and the other
    # notebooks are no inputs of it
    own = {_rel(ps["path"]), *(_rel(p) for p in notebooks_dir.glob("*.ipynb"))}
    reuse_inputs = {k: v for k, v in inputs.items() if k not in own}
    try:
        run_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(run_path, "a run folder that can be created", found=str(exc)) from exc
    panel_file = run_path / "data" / "panel.parquet"
    with RunLock(run_path), stop_signals():
        durations = previous_durations(run_path)  # before the old manifest goes
        clean_run_folder(run_path)
        from vanguard import job_cache

        job_cache.prune()
        t0 = time.perf_counter()
        published: list[str | None] = [None]

        def record(so_far, finished=False, interrupted_by=None):
            write_manifest(run_path, ps, so_far, inputs, time.perf_counter() - t0, n_workers,
                           finished=finished, interrupted_by=interrupted_by,
                           panel_published=published[0])

        def after_stage(so_far: list[JobResult]) -> None:
            done = {r.job.notebook for r in so_far}
            if set(STAGES[1]) <= done:  # the last readers of the full panel have finished
                published[0] = sdc.publish_run_panel(panel_file, full=full_panel)
            record(so_far)

        previous = os.environ.get(RUN_ENV)
        previous_seed = os.environ.get(HASH_SEED_ENV)
        _start_helpers()
        # every worker, kernel and their children inherit the tag (see RUN_ENV)
        os.environ[RUN_ENV] = str(run_path.resolve())
        os.environ.setdefault(HASH_SEED_ENV, HASH_SEED)
        results: list[JobResult] = []
        try:
            record([])
            results = run_jobs(waves, workers=n_workers, timeout=ps["timeout"],
                               progress=progress, after_stage=after_stage,
                               durations=durations, reuse_inputs=reuse_inputs,
                               run_path=run_path, fork_kernels=fork_kernels)
            # a run whose analysis stage did not finish has not published its panel yet
            published[0] = sdc.publish_run_panel(panel_file, full=full_panel)
            record(results, finished=True)
        except RunInterrupted as stop:
            if not stop.results:  # stopped outside run_jobs: before it, or after it returned
                stop.stopped = stop_processes(run_path=run_path)
                stop.results = results or [
                    JobResult(j, False, f"not run: run stopped by {stop.signal_name}",
                              status="not run") for w in waves for j in w]
            discard_partial_outputs(run_path, stop.results)
            published[0] = sdc.publish_run_panel(panel_file, full=full_panel)
            record(stop.results, finished=True, interrupted_by=stop.signal_name)
            raise
        finally:
            for name, value in ((RUN_ENV, previous), (HASH_SEED_ENV, previous_seed)):
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    if golden and all(r.ok for r in results):
        refresh_golden(results)
    return run_path, results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``vanguard-report --params ci``.

    Returns
    -------
    int
        0 when every notebook ran; 1 when any failed or was skipped; 2 for a bad
        parameter set, a reports folder that cannot be used or a run name in use;
        128 + the signal number when SIGTERM (143) or SIGINT (130) stopped the run.
    """
    parser = argparse.ArgumentParser(
        prog="vanguard-report",
        description="Run the analysis notebooks of a parameter set into reports/<run>/.",
    )
    parser.add_argument(
        "--params",
        default="default",
        help="parameter set: a name in params/ (default, ci, nhs_mar) or a path to your own YAML",
    )
    parser.add_argument("--run", default=None, help="run name (default: the set's `run`)")
    parser.add_argument(
        "--workers", type=int, default=None, help="notebooks run in parallel (default: CPU cores)"
    )
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=None,
        help="folder of the notebooks to run (default: the project's notebooks/)",
    )
    parser.add_argument(
        "--golden",
        action="store_true",
        help="refresh the reference notebooks in tests/golden/ (use with ci)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--fresh-kernels",
        action="store_true",
        help="start every notebook's kernel fresh instead of forking it from a process "
        "that has imported the libraries once (slower)",
    )
    args = parser.parse_args(argv)
    try:
        run_path, results = run_pipeline(
            args.params,
            run=args.run,
            workers=args.workers,
            notebooks_dir=args.notebooks,
            golden=args.golden,
            progress=not args.no_progress,
            fork_kernels=not args.fresh_kernels,
        )
    except (DataError, ValueError) as exc:
        print(f"vanguard-report: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as stop:
        done = sum(r.ok for r in stop.results)
        print(
            f"vanguard-report: {stop}; {done}/{len(stop.results)} notebooks had finished; "
            f"{len(stop.stopped)} worker and kernel processes stopped; manifest status "
            "'interrupted'. Run again to start from a clean run folder.",
            file=sys.stderr,
        )
        return stop.exit_code
    failed = [r for r in results if not r.ok]
    wall = json.loads((run_path / "manifest.json").read_text(encoding="utf-8"))["wall_seconds"]
    print(
        f"{len(results) - len(failed)}/{len(results)} notebooks ran in {wall:.1f} s; "
        f"outputs in {run_path}"
    )
    for r in failed:
        if r.status == "skipped":
            print(f"SKIPPED {r.job.label}: {r.error}", file=sys.stderr)
            continue
        print(
            f"FAILED {r.job.notebook} with parameters {json.dumps(r.job.parameters)}\n"
            f"  {r.error}\n  executed copy with the traceback: {r.job.output_path}",
            file=sys.stderr,
        )
    if any(r.job.notebook == STAGES[-1][0] and r.status == "skipped" for r in results):
        print(
            f"no report: {STAGES[-1][0]} was not run because notebooks failed; a report "
            "built from partial results would not say what is missing",
            file=sys.stderr,
        )
    if args.golden and not failed:
        print(f"refreshed reference notebooks in {_rel(GOLDEN_DIR)}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
