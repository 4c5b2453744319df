"""Kernels forked from the preload process behave as fresh kernels (vanguard.kernel_fork)."""

from __future__ import annotations

import json
import os
import re
import sys

import nbformat
import papermill as pm
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from vanguard import config, kernel_fork

# What a notebook's imports could have been changed by: every global setting a library
# reads or sets at import, printed by the kernel as JSON.
PROBE = """
import contextlib, io, json, os, signal, sys, warnings
{imports}
import matplotlib as mpl
import numpy as np
import pandas as pd
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    pd.describe_option()
state = {{
    "pandas": buf.getvalue(),
    "rc": {{k: repr(v) for k, v in mpl.rcParams.items()}},
    "numpy": [repr(np.get_printoptions()), repr(np.geterr())],
    "warnings": [repr(f) for f in warnings.filters],
    "path": sys.path,
    "cwd": os.getcwd(),
    "argv0": sys.argv[0],
    "flags": repr(sys.flags),
    "signals": {{s.name: repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM,
                signal.SIGPIPE, signal.SIGCHLD, signal.SIGHUP)}},
    "env": {{k: v for k, v in os.environ.items() if k not in {per_kernel!r}}},
    "random": float(np.random.random()),
    "pid": os.getpid(),
}}
print(json.dumps(state))
"""


def _probe_notebook(path, imports):
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {
        "name": config.KERNEL_NAME,
        "language": "python",
        "display_name": "Python (vanguard-did)",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            PROBE.format(imports=imports, per_kernel=kernel_fork.PER_KERNEL_ENV)
        )
    ]
    nbformat.write(nb, path)
    return path


def _run(nb, out, cwd, folder=None):
    """Execute a notebook; its kernel forks from the preload process in ``folder``."""
    os.environ.pop(UNSTABLE, None)  # pytest sets it again for each phase of a test
    pm.execute_notebook(
        str(nb),
        str(out),
        kernel_name=config.KERNEL_NAME,
        progress_bar=False,
        cwd=str(cwd),
        kernel_manager_class=kernel_fork.kernel_manager_class(folder),
    )
    text = "".join(nbformat.read(out, as_version=4).cells[0].outputs[0]["text"])
    return json.loads(text), kernel_fork.last_launch()


MATRIX_NOTICE = "the matrix subclass is not the recommended way"

# pytest names the running test in the environment; the preload process outlives tests
UNSTABLE = "PYTEST_CURRENT_TEST"


@pytest.fixture(scope="module")
def preload(tmp_path_factory):
    argv = KernelSpecManager().get_kernel_spec(config.KERNEL_NAME).argv
    cwd = tmp_path_factory.mktemp("kernels")
    env = {k: v for k, v in os.environ.items() if k != UNSTABLE}
    process = kernel_fork.PreloadProcess(argv, cwd, env)
    ready, why = kernel_fork._wait_ready(process.folder)
    assert ready is not None, why
    yield process, cwd
    process.stop()


def test_a_forked_kernel_sees_what_a_fresh_kernel_sees(preload, tmp_path):
    process, cwd = preload
    every = "\n".join(f"import {m}" for m in kernel_fork.PRELOAD)
    nb = _probe_notebook(tmp_path / "probe.ipynb", every)
    forked, how = _run(nb, tmp_path / "f1.ipynb", cwd, process.folder)
    assert how["kernel"] == "forked", how
    forked2, _ = _run(nb, tmp_path / "f2.ipynb", cwd, process.folder)
    fresh, how = _run(nb, tmp_path / "n.ipynb", cwd)
    assert how["kernel"] == "fresh"

    # unseeded draws are not shared between kernels forked from one process
    assert len({forked["random"], forked2["random"], fresh["random"]}) == 3
    assert len({forked["pid"], forked2["pid"], process.proc.pid}) == 3
    for key in ("random", "pid"):
        for state in (forked, forked2, fresh):
            state.pop(key)
    # ipykernel adds its warnings filters when it starts: after the preloaded imports in
    # a forked kernel, before them in a fresh one. They match disjoint warnings, so only
    # their order differs, and order only matters between filters that overlap.
    for state in (forked, forked2, fresh):
        state["warnings"] = sorted(state["warnings"])
    for key in fresh:
        assert forked[key] == fresh[key], key
    assert forked2 == forked


def test_the_preloaded_libraries_leave_global_settings_as_they_found_them(tmp_path):
    """A notebook that imports only pandas and matplotlib sees the same settings when the
    other preloaded libraries were imported too (as they are in a forked kernel)."""
    few, _ = _run(_probe_notebook(tmp_path / "few.ipynb", ""), tmp_path / "a.ipynb", tmp_path)
    every = "\n".join(f"import {m}" for m in kernel_fork.PRELOAD)
    many, _ = _run(_probe_notebook(tmp_path / "all.ipynb", every), tmp_path / "b.ipynb", tmp_path)
    for key in ("pandas", "rc", "numpy"):
        assert few[key] == many[key], key
    # the imports add warnings filters, none removed: "always" for the libraries' own
    # warning classes (raised only by them), and an "ignore" of numpy's matrix notice
    assert set(few["warnings"]) <= set(many["warnings"])
    packages = {m.split(".")[0] for m in kernel_fork.PRELOAD}
    for extra in set(many["warnings"]) - set(few["warnings"]):
        own = re.fullmatch(r"\('always', None, <class '(\w+)\..*'>, None, 0\)", extra)
        assert (own and own.group(1) in packages) or MATRIX_NOTICE in extra, extra


def test_a_kernel_that_cannot_be_forked_starts_fresh_and_says_why(preload, tmp_path, monkeypatch):
    process, cwd = preload
    nb = _probe_notebook(tmp_path / "probe.ipynb", "")
    monkeypatch.setenv("VANGUARD_SOMETHING_ELSE", "1")  # the kernel's env differs
    state, how = _run(nb, tmp_path / "o.ipynb", cwd, process.folder)
    assert how == {
        "kernel": "fresh",
        "why": "environment differs from the preload process's in: VANGUARD_SOMETHING_ELSE",
    }
    assert state["env"]["VANGUARD_SOMETHING_ELSE"] == "1"


def test_mismatch_names_what_differs(tmp_path):
    interp = [sys.executable, "-Xfrozen_modules=off"]
    ready = {
        "interpreter": interp,
        "cwd": str(tmp_path),
        "env": {"PATH": "/bin", "MPLBACKEND": kernel_fork.INLINE_BACKEND},
    }
    cmd = [*interp, "-m", "ipykernel_launcher", "-f", "kernel.json"]
    env = {"PATH": "/bin", "JPY_PARENT_PID": "12", "VANGUARD_WRITE_LOG": "x"}
    assert kernel_fork.mismatch(ready, cmd, env, tmp_path) == ""
    assert "interpreter" in kernel_fork.mismatch(ready, [sys.executable, *cmd[2:]], env, tmp_path)
    assert "not `python -m ipykernel_launcher" in kernel_fork.mismatch(
        ready, [sys.executable, "-m", "other", "-f", "k.json"], env, tmp_path
    )
    assert "working directory" in kernel_fork.mismatch(ready, cmd, env, tmp_path / "sub")
    assert kernel_fork.mismatch(ready, cmd, {**env, "MPLBACKEND": "Agg"}, tmp_path) == (
        "environment differs from the preload process's in: MPLBACKEND"
    )
    assert kernel_fork.mismatch(ready, cmd, {}, tmp_path).endswith("in: PATH")


def test_a_kernel_start_does_not_wait_for_a_preload_process_that_failed(tmp_path):
    (tmp_path / "failed.txt").write_text("importing pyfixest: ImportError: no")
    ready, why = kernel_fork._wait_ready(tmp_path, timeout=5)
    assert ready is None and why == "preload process failed: importing pyfixest: ImportError: no"
    ready, why = kernel_fork._wait_ready(tmp_path / "gone", timeout=5)
    assert ready is None and why == "preload process has stopped"


def test_stopping_the_preload_process_removes_its_folder(tmp_path):
    argv = KernelSpecManager().get_kernel_spec(config.KERNEL_NAME).argv
    process = kernel_fork.PreloadProcess(argv, tmp_path, os.environ)
    process.stop()
    assert process.proc.poll() is not None and not process.folder.exists()
