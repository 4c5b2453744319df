"""Fault suite: a run stopped by a signal, a failed notebook, a damaged cache, two runs at once.

The runner is driven as a user drives it, through the ``vanguard-report`` command in a
subprocess, over stand-in notebooks with the real stage names (so the faults exercise
the runner, not the estimators). The stand-in ``01_data`` writes a panel with small
counts in it, ``03_did`` computes through :func:`vanguard.cache.cached`, and can be told
to fail or to hang (writing a heartbeat file into the run folder and starting a child
process of its own, as an orphan would).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import psutil
import pytest

from vanguard import cache, config, job_cache, pipeline, sdc
from vanguard.io import sha256_file

KERNEL_SPEC = {"name": config.KERNEL_NAME, "language": "python",
               "display_name": "Python (vanguard-did)"}

# two lines at least: IPython reads a lone `run: str = ...` as the %run magic
PARAMS_CELL = {
    "01_data": 'run: str = "default"  # run name\nseed: int = 1  # seed',
    "02_trends": 'run: str = "default"  # run name\noutcomes: list = ["a"]  # outcomes',
    "03_did": (
        'run: str = "default"  # run name\noutcome: str = "a"  # outcome\n'
        'seed: int = 1  # seed\nmode: str = ""  # "", "fail" or "hang"\n'
        'fail_on: str = ""  # outcome that fails or hangs ("" for all)'
    ),
    "04_event_study": 'run: str = "default"  # run name\noutcome: str = "a"  # outcome',
    "05_robustness": 'run: str = "default"  # run name\nn_sims: int = 5  # draws',
    "05_sensitivity": 'run: str = "default"  # run name\nseed: int = 1  # seed',
    "06_report": 'run: str = "default"  # run name\nrequire_all: bool = False  # unused',
}

BODY = {
    "01_data": (
        "import pandas as pd\n"
        "from vanguard import config\n"
        "from vanguard.io import write_parquet\n"
        "panel = pd.DataFrame({'area': ['A', 'A', 'B', 'B'], 'month': pd.to_datetime(\n"
        "    ['2015-01-01', '2015-02-01'] * 2), 'emergency_admissions': [3, 120, 0, 7],\n"
        "    'population': [5000.0, 5000.0, 6.0, 6.0], 'rate': [0.6, 24.0, 0.0, 1.5]})\n"
        "write_parquet(config.run_dir(run) / 'data' / 'panel.parquet', panel)\n"
    ),
    "03_did": (
        "import os, subprocess, sys, time\n"
        "import numpy as np, pandas as pd\n"
        "from vanguard import cache, config, schema\n"
        "results = config.run_dir(run) / 'results'\n"
        "if mode == 'fail' and fail_on in ('', outcome):\n"
        "    raise RuntimeError(f'planted failure for {outcome}')\n"
        "if mode == 'hang' and fail_on in ('', outcome):\n"
        "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "    (results / f'child_{outcome}.pid').parent.mkdir(parents=True, exist_ok=True)\n"
        "    (results / f'child_{outcome}.pid').write_text(str(child.pid))\n"
        "    beat = results / f'heartbeat_{outcome}.txt'\n"
        "    while True:\n"
        "        with open(beat, 'a') as fh:\n"
        "            fh.write('x')\n"
        "        time.sleep(0.2)\n"
        "def estimate(panel, *, outcome, seed):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    return pd.DataFrame({'outcome': [outcome], 'estimate': [rng.normal(size=500).mean()],\n"
        "                         'n': [int(panel['emergency_admissions'].fillna(0).sum())]})\n"
        "panel = pd.read_parquet(config.run_dir(run) / 'data' / 'panel.parquet')\n"
        "est = cache.cached(estimate, panel, outcome=outcome, seed=seed)\n"
        "schema.write_results([{'outcome': outcome, 'scale': 'rate', 'estimator': 'twfe',\n"
        "    'group': 'uec', 'window': 'years_1_3', 'estimate': float(est['estimate'][0]),\n"
        "    'se': 0.1, 'pre_mean': 7.5}], results / f'did__{outcome}.csv')\n"
    ),
    "06_report": (
        "from vanguard import config\n"
        "from vanguard.io import write_text\n"
        "write_text(config.run_dir(run) / 'report.html', f'<p>report of {run}</p>')\n"
    ),
}

SET = """\
run: {run}
parameters:
  seed: 7
grid:
  outcomes: {outcomes}
notebooks:
  03_did: {{mode: "{mode}", fail_on: "{fail_on}"}}
"""


def make_notebooks(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stage in pipeline.STAGES:
        for name in stage:
            nb = nbformat.v4.new_notebook()
            nb.metadata.kernelspec = KERNEL_SPEC
            params = nbformat.v4.new_code_cell(PARAMS_CELL[name])
            params.metadata.tags = ["parameters"]
            nb.cells = [params, nbformat.v4.new_code_cell(BODY.get(name, "print(run)"))]
            nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    return make_notebooks(tmp_path_factory.mktemp("faults") / "notebooks")


@pytest.fixture
def env(tmp_path):
    """Environment of the command: its own reports folder and cache."""
    out = dict(os.environ)
    out.update(VANGUARD_REPORTS_DIR=str(tmp_path / "reports"),
               VANGUARD_CACHE_DIR=str(tmp_path / "cache"), MPLBACKEND="Agg")
    out.pop("VANGUARD_CACHE", None)
    out.pop(pipeline.RUN_ENV, None)
    return out


def write_set(tmp_path: Path, run: str = "fault", mode: str = "", fail_on: str = "",
              outcomes: str = "[a]") -> Path:
    """A parameter set; one outcome unless more are needed (each is two kernel starts)."""
    path = tmp_path / f"{run}.yml"
    path.write_text(SET.format(run=run, mode=mode, fail_on=fail_on, outcomes=outcomes),
                    encoding="utf-8")
    return path


def command(params: Path, notebooks: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vanguard.pipeline", "--params", str(params),
            "--notebooks", str(notebooks), "--workers", "2", "--no-progress", *extra]


def run_command(params, notebooks, env, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(command(params, notebooks, *extra), env=env, capture_output=True,
                          text=True, timeout=600)


def manifest(run_path: Path) -> dict:
    return json.loads((run_path / "manifest.json").read_text(encoding="utf-8"))


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None, limit: float = 300):
    """Poll until ``predicate()``; a limit only so that a broken run cannot hang the suite."""
    deadline = time.monotonic() + limit
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before {what}: rc {proc.returncode}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- stopping a run -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_every_process_and_marks_the_run_interrupted(
    tmp_path, notebooks, env, sig
):
    run_path = Path(env["VANGUARD_REPORTS_DIR"]) / "fault"
    # what an earlier run of the same name left: none of it may survive the new run
    (run_path / "results").mkdir(parents=True)
    (run_path / "results" / "did__old.csv").write_text("from an earlier run\n")
    (run_path / "report.html").write_text("<p>an earlier report</p>")
    (run_path / "report.pdf").write_bytes(b"%PDF-1.7 earlier")
    (run_path / "mine.txt").write_text("a user's own note")
    # two hanging kernels for SIGTERM; one is enough to show SIGINT takes the same path
    outcomes = ["a", "b"] if sig == signal.SIGTERM else ["a"]
    params = write_set(tmp_path, mode="hang", outcomes=f"[{', '.join(outcomes)}]")
    proc = subprocess.Popen(command(params, notebooks), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        beats = [run_path / "results" / f"heartbeat_{o}.txt" for o in outcomes]
        pids = [run_path / "results" / f"child_{o}.pid" for o in outcomes]
        wait_for(lambda: all(p.is_file() and p.read_text() for p in pids)
                 and all(b.is_file() for b in beats), "the hanging notebooks", proc)
        assert not (run_path / "report.html").exists()  # removed before anything ran
        assert not (run_path / "report.pdf").exists()
        assert not (run_path / "results" / "did__old.csv").exists()

        # a second run of the same name is refused while this one holds the folder
        second = run_command(params, notebooks, env)
        assert second.returncode == 2
        assert "run in progress" in second.stderr

        tree = psutil.Process(proc.pid).children(recursive=True)
        # multiprocessing's resource tracker belongs to the runner's interpreter, not to
        # the run: it leaves by itself once the runner has exited
        trackers = [p for p in tree if "resource_tracker" in " ".join(p.cmdline())]
        tree = [p for p in tree if p not in trackers]
        # kernels started fresh run ipykernel; the later stages' kernels are forks of the
        # run's preload process (vanguard.kernel_fork) and carry its command line
        preload = [p for p in tree if "kernel_fork.py" in " ".join(p.cmdline())
                   and "kernel_fork.py" not in " ".join(p.parent().cmdline())]
        assert len(preload) == 1
        kernels = [p for p in tree if "ipykernel" in " ".join(p.cmdline())
                   or p.ppid() == preload[0].pid]
        assert len(kernels) >= len(outcomes)
        grandchildren = [int(p.read_text()) for p in pids]
        assert all(alive(pid) for pid in grandchildren)
        tagged = pipeline.run_processes(run_path)
        assert {k.pid for k in kernels} <= {p.pid for p in tagged}

        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err[-3000:]
    assert f"run stopped by {signal.Signals(sig).name}" in err
    # no orphans: every worker, kernel and the kernels' own children are gone
    assert [p.pid for p in tree if alive(p.pid)] == []
    assert [pid for pid in grandchildren if alive(pid)] == []
    assert pipeline.run_processes(run_path) == []
    psutil.wait_procs(trackers, timeout=60)
    assert [p.pid for p in trackers if alive(p.pid)] == []
    sizes = [b.stat().st_size for b in beats]
    assert [b.stat().st_size for b in beats] == sizes  # nothing writes any more

    m = manifest(run_path)
    assert m["status"] == "interrupted" and m["interrupted_by"] == signal.Signals(sig).name
    status = {n["output"].rsplit("/", 1)[-1]: n["status"] for n in m["notebooks"]}
    assert status["01_data.ipynb"] == "ok"
    assert [status[f"03_did__{o}.ipynb"] for o in outcomes] == ["interrupted"] * len(outcomes)
    assert status["06_report.ipynb"] == "not run"
    # nothing partial that looks complete
    assert not list(run_path.rglob(".*.tmp"))
    assert not (run_path / "report.html").exists()
    assert not (run_path / "notebooks" / "03_did__a.ipynb").exists()
    assert (run_path / "notebooks" / f"03_did__a{pipeline.INTERRUPTED_SUFFIX}").is_file()
    assert (run_path / "mine.txt").read_text() == "a user's own note"  # not ours to remove
    # the panel left behind is the disclosure-controlled copy
    panel = pd.read_parquet(run_path / "data" / "panel.parquet")
    assert sdc.PUBLISHED_ATTR in panel.attrs
    assert not panel["emergency_admissions"].isin(range(1, 8)).any()


def test_orphans_of_a_killed_run_are_stopped_before_the_folder_is_cleaned(tmp_path):
    """SIGKILL cannot be handled: the next run of the name finds its processes by tag."""
    run_path = tmp_path / "reports" / "orphaned"
    run_path.mkdir(parents=True)
    env = dict(os.environ, **{pipeline.RUN_ENV: str(run_path.resolve())})
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"], env=env
    )
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        wait_for(lambda: any(p.pid == orphan.pid for p in pipeline.run_processes(run_path)),
                 "the orphan to show up")
        (run_path / "report.html").write_text("old")
        removed = pipeline.clean_run_folder(run_path)
        assert orphan.wait(timeout=60) is not None
        assert run_path / "report.html" in removed and not (run_path / "report.html").exists()
        assert stranger.poll() is None  # a process of no run is left alone
    finally:
        for p in (orphan, stranger):
            if p.poll() is None:
                p.kill()
            p.wait()


# --- a failed notebook ----------------------------------------------------------------


@pytest.mark.slow
def test_a_failed_notebook_gives_no_silent_report(tmp_path, notebooks, env):
    params = write_set(tmp_path, mode="fail", fail_on="b", outcomes="[a, b]")
    done = run_command(params, notebooks, env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAILED 03_did" in done.stderr and "planted failure for b" in done.stderr
    assert "SKIPPED 06_report" in done.stderr and "no report" in done.stderr
    run_path = Path(env["VANGUARD_REPORTS_DIR"]) / "fault"
    assert not (run_path / "report.html").exists()
    m = manifest(run_path)
    assert m["status"] == "failed"
    status = {n["output"].rsplit("/", 1)[-1]: n["status"] for n in m["notebooks"]}
    assert status["03_did__a.ipynb"] == "ok" and status["03_did__b.ipynb"] == "failed"
    assert status["06_report.ipynb"] == "skipped"


def test_build_report_refuses_an_incomplete_run_or_says_so_in_a_banner(tmp_path, monkeypatch):
    import typst
    from test_report import make_run

    from vanguard import report

    run = make_run(tmp_path, monkeypatch, name="partial")
    run_path = config.run_dir(run)
    m = json.loads((run_path / "manifest.json").read_text())
    m.update(status="failed", git_commit="f" * 40, git_dirty=True, notebooks=[
        {"notebook": "03_did", "output": "notebooks/03_did__emergency_admissions.ipynb",
         "ok": True, "status": "ok"},
        {"notebook": "04_event_study", "output": "notebooks/04_event_study__x.ipynb",
         "ok": False, "status": "failed"},
        {"notebook": "06_report", "output": "notebooks/06_report.ipynb", "ok": False,
         "status": "skipped"}])
    (run_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(report.IncompleteRunError, match=r"04_event_study__x \(failed\)"):
        report.build_report(run)
    assert not (run_path / "report.html").exists()

    html_path, pdf_path = report.build_report(run, allow_incomplete=True)
    html = html_path.read_text(encoding="utf-8")
    assert 'id="failure-banner"' in html and "04_event_study__x (failed)" in html
    assert "03_did__emergency" not in html.split('id="failure-banner"')[1].split("</div>")[0]
    # no figure was drawn to stand in for the failed notebook's
    assert not list((run_path / "figures").glob("event_study*.png"))
    assert pdf_path.read_bytes().startswith(b"%PDF")
    # the PDF is typeset from the same model: its banner element holds the same text
    content = report.build_content(run)
    content.update(failure_banner=report.failure_banner(report.incomplete_notebooks(m)),
                   reproducibility=report.reproducibility_note(m))
    found = typst.query((report.TEMPLATES / "report.typ").read_bytes(), "<failure-banner>",
                        root=str(run_path),
                        sys_inputs={"content": json.dumps(content, default=report._json_default)})
    assert "04_event_study__x (failed)" in found


def test_an_interrupted_manifest_is_incomplete_even_without_failures():
    from vanguard import report

    m = {"status": "interrupted", "interrupted_by": "SIGTERM", "notebooks": []}
    assert report.incomplete_notebooks(m) == ["the run itself (interrupted by SIGTERM)"]
    assert report.incomplete_notebooks({"status": "running", "notebooks": [
        {"notebook": "01_data", "output": "notebooks/01_data.ipynb", "ok": True}]}) == []


# --- a damaged cache ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_damaged_cache_entry_is_recomputed_to_the_same_bytes(tmp_path, notebooks, env):
    params = write_set(tmp_path)
    first = run_command(params, notebooks, env)
    assert first.returncode == 0, first.stderr[-3000:]
    run_path = Path(env["VANGUARD_REPORTS_DIR"]) / "fault"
    results = {p.name: sha256_file(p) for p in sorted((run_path / "results").glob("*.csv"))}
    assert len(results) == 1
    payloads = sorted(Path(env["VANGUARD_CACHE_DIR"]).rglob("*.parquet"))
    assert len(payloads) == 1
    good = {p: p.read_bytes() for p in payloads}
    for p in payloads:  # flip one byte in the middle of every entry
        data = bytearray(good[p])
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))
    # the unchanged notebook would be restored whole (vanguard.job_cache) without reading
    # the results cache: forget it, so the notebook runs and meets the damaged entry
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cache.CACHE_DIR_ENV, env["VANGUARD_CACHE_DIR"])
        shutil.rmtree(job_cache.folder(), ignore_errors=True)
    second = run_command(params, notebooks, env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {p.name: sha256_file(p) for p in sorted((run_path / "results").glob("*.csv"))} \
        == results
    assert {p: p.read_bytes() for p in payloads} == good  # recomputed and rewritten


# --- two runs at once -------------------------------------------------------------------


@pytest.mark.slow
def test_two_concurrent_runs_of_different_names_do_not_touch_each_other(
    tmp_path, notebooks, env
):
    params = write_set(tmp_path, run="one")
    procs = {run: subprocess.Popen(command(params, notebooks, "--run", run), env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for run in ("one", "two")}
    outs = {run: p.communicate(timeout=600) for run, p in procs.items()}
    for run, p in procs.items():
        assert p.returncode == 0, outs[run][1][-3000:]
    reports = Path(env["VANGUARD_REPORTS_DIR"])
    digests = {}
    for run in ("one", "two"):
        m = manifest(reports / run)
        assert m["run"] == run and m["status"] == "ok"
        assert all(f"/{run}/" in f"/{n['output']}" or n["output"].startswith(f"$REPORTS/{run}/")
                   for n in m["notebooks"])
        assert (reports / run / "report.html").read_text() == f"<p>report of {run}</p>"
        digests[run] = {p.name: sha256_file(p)
                        for p in sorted((reports / run / "results").glob("*.csv"))}
    assert digests["one"] == digests["two"] and len(digests["one"]) == 1
    assert sorted(p.name for p in reports.iterdir() if not p.name.startswith(".")) == [
        "one", "two"]
