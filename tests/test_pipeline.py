"""The papermill runner: parameter sets, planning, failures, manifest, golden notebooks.

Most tests run a stand-in set of tiny notebooks (same names and stage order as the real
ones) so that they exercise the runner, not the estimators, and stay fast. The end-to-end
run of the real ``ci`` parameter set is marked slow.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from vanguard import config, pipeline, schema
from vanguard.errors import DataError
from vanguard.io import sha256_file

PARAMS_CELL = {
    "01_data": 'run: str = "default"  # run name\nseed: int = 1  # seed',
    "02_trends": 'run: str = "default"  # run name\noutcomes: list = ["a"]  # outcomes',
    "03_did": (
        'run: str = "default"  # run name\noutcome: str = "a"  # outcome\n'
        'group: str = "uec"  # group\nestimator: str = "twfe"  # estimator\n'
        'seed: int = 1  # seed\nfail_on: str = ""  # outcome that raises'
    ),
    "04_event_study": 'run: str = "default"  # run name\noutcome: str = "a"  # outcome',
    "05_robustness": 'run: str = "default"  # run name\nn_sims: int = 5  # draws',
    "05_sensitivity": 'run: str = "default"  # run name\nseed: int = 1  # seed',
    # a one-line cell `run: str = ...` would be read by IPython as the %run magic
    "06_report": 'run: str = "default"  # run name\nformat: str = "html"  # output',
}

BODY = {
    "01_data": "import numpy as np\nrng = np.random.default_rng(seed)\nprint(rng.normal())",
    "03_did": (
        "import numpy as np\n"
        "from vanguard import config, schema\n"
        "if outcome == fail_on:\n"
        "    raise RuntimeError(f'planted failure for {outcome}')\n"
        "rng = np.random.default_rng(seed)\n"
        "est = float(rng.normal(size=500).mean())\n"
        "schema.write_results([{'outcome': outcome, 'scale': 'rate', 'estimator': estimator,\n"
        "    'group': group, 'window': 'years_1_3', 'estimate': est, 'se': 0.1,\n"
        "    'pre_mean': 7.5}],\n"
        "    config.run_dir(run) / 'results' / f'did__{outcome}__{group}__{estimator}.csv')\n"
        "print(round(est, 6))"
    ),
}


def make_notebooks(folder: Path) -> Path:
    """Stand-in notebooks with the real stage names."""
    folder.mkdir(parents=True, exist_ok=True)
    for stage in pipeline.STAGES:
        for name in stage:
            nb = nbformat.v4.new_notebook()
            nb.metadata.kernelspec = {
                "name": config.KERNEL_NAME,
                "language": "python",
                "display_name": "Python (vanguard-did)",
            }
            params = nbformat.v4.new_code_cell(PARAMS_CELL[name])
            params.metadata.tags = ["parameters"]
            nb.cells = [
                nbformat.v4.new_markdown_cell(f"# {name}"),
                params,
                nbformat.v4.new_code_cell(BODY.get(name, "print(run)")),
            ]
            nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


GOOD_SET = """\
run: fixture
parameters:
  seed: 7
grid:
  outcomes: [a, b]
  groups: [care_home, uec]
  estimators: [twfe]
notebooks:
  05_robustness: {n_sims: 3}
"""


@pytest.fixture
def nb_dir(tmp_path):
    return make_notebooks(tmp_path / "notebooks")


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One successful run of the stand-in notebooks, shared by the tests that read it."""
    base = tmp_path_factory.mktemp("good")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VANGUARD_REPORTS_DIR", str(base / "reports"))
        nbs = make_notebooks(base / "notebooks")
        path = write_yaml(base / "set.yml", GOOD_SET)
        run, results = pipeline.run_pipeline(path, notebooks_dir=nbs, workers=2, progress=False)
        yield {"run": run, "results": results, "path": path, "notebooks": nbs, "base": base}


@pytest.fixture
def reports(tmp_path, monkeypatch):
    folder = tmp_path / "reports"
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(folder))
    return folder


# --- parameters cells ------------------------------------------------------------------


def test_notebook_parameters_parses_types_defaults_and_help(nb_dir):
    params = pipeline.notebook_parameters(nb_dir / "03_did.ipynb")
    assert list(params) == ["run", "outcome", "group", "estimator", "seed", "fail_on"]
    assert params["seed"] == pipeline.NotebookParameter("seed", "int", 1, "seed")
    assert params["fail_on"].default == ""


@pytest.mark.parametrize(
    "source, expected",
    [
        ("x: int = 1", "trailing comment"),
        ("x = 1  # untyped", "name: type = literal"),
        ("x: int = f(1)  # call", "literal default"),
    ],
)
def test_notebook_parameters_rejects_bad_lines(tmp_path, source, expected):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('run: str = "a"  # run\n' + source)
    cell.metadata.tags = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "x.ipynb")
    with pytest.raises(DataError, match=re.escape(expected)) as err:
        pipeline.notebook_parameters(tmp_path / "x.ipynb")
    assert err.value.row == 2  # the offending line of the cell, not the first


def test_two_parameters_cells_are_an_error(tmp_path):
    nb = nbformat.v4.new_notebook()
    cells = [
        nbformat.v4.new_code_cell("a: int = 1  # a"),
        nbformat.v4.new_code_cell("b: int = 1  # b"),
    ]
    for c in cells:
        c.metadata.tags = ["parameters"]
    nb.cells = cells
    nbformat.write(nb, tmp_path / "x.ipynb")
    with pytest.raises(DataError, match="exactly one code cell tagged 'parameters'"):
        pipeline.notebook_parameters(tmp_path / "x.ipynb")


# --- parameter sets --------------------------------------------------------------------


def test_params_resolve_by_name_and_by_path(tmp_path):
    assert pipeline.resolve_params_path("ci") == config.PARAMS / "ci.yml"
    own = write_yaml(tmp_path / "mine.yml", "run: mine\n")
    assert pipeline.load_params(str(own))["run"] == "mine"
    with pytest.raises(DataError, match="parameter set"):
        pipeline.resolve_params_path("no_such_set")


@pytest.mark.parametrize(
    "text, column",
    [
        ("run: x\nextra: 1\n", None),
        ("run: ../escape\n", "run"),
        ("grid:\n  sites: [a]\n", "grid"),
        ("grid:\n  outcomes: []\n", "grid.outcomes"),
        ("timeout: -3\n", "timeout"),
        ("- a\n- b\n", None),
    ],
)
def test_malformed_parameter_sets_name_the_key(tmp_path, text, column):
    path = write_yaml(tmp_path / "bad.yml", text)
    with pytest.raises(DataError) as err:
        pipeline.load_params(path)
    assert err.value.column == column
    assert "bad.yml" in str(err.value)


def test_check_param_set_finds_undeclared_and_mistyped(nb_dir, tmp_path):
    bad = write_yaml(
        tmp_path / "bad.yml", GOOD_SET + "  03_did: {seed: '7', bogus: 1}\n  99_nope: {}\n"
    ).read_text()
    bad = bad.replace("  seed: 7\n", "  seed: 7\n  colour: red\n")
    path = write_yaml(tmp_path / "bad.yml", bad)
    problems = pipeline.check_param_set(pipeline.load_params(path), nb_dir)
    text = "\n".join(problems)
    assert "parameters.colour: no notebook declares it" in text
    assert "notebooks.03_did.bogus: not declared by 03_did" in text
    assert "seed='7'" in text and "type int" in text
    assert "notebooks.99_nope" in text
    assert len(problems) == 4
    with pytest.raises(DataError, match="colour"):
        pipeline.plan_jobs(pipeline.load_params(path), tmp_path / "run", nb_dir)


def test_plan_expands_the_grid_per_notebook(nb_dir, tmp_path):
    ps = pipeline.load_params(write_yaml(tmp_path / "set.yml", GOOD_SET))
    waves = pipeline.plan_jobs(ps, tmp_path / "run", nb_dir)
    assert [[j.notebook for j in w] for w in waves][0] == ["01_data"]
    assert [j.notebook for j in waves[-1]] == ["06_report"]
    did = [j for j in waves[1] if j.notebook == "03_did"]
    assert sorted((j.parameters["outcome"], j.parameters["group"]) for j in did) == [
        ("a", "care_home"),
        ("a", "uec"),
        ("b", "care_home"),
        ("b", "uec"),
    ]
    # 04 declares the singular outcome only: one run per outcome, no group axis
    assert [j.parameters for j in waves[1] if j.notebook == "04_event_study"] == [
        {"run": "fixture", "outcome": "a"},
        {"run": "fixture", "outcome": "b"},
    ]
    # 02 declares the plural: one run with the whole list
    trends = [j for j in waves[1] if j.notebook == "02_trends"]
    assert len(trends) == 1 and trends[0].parameters["outcomes"] == ["a", "b"]
    assert waves[0][0].parameters == {"run": "fixture", "seed": 7}
    assert [j.parameters["n_sims"] for j in waves[1] if j.notebook == "05_robustness"] == [3]
    labels = [j.label for w in waves for j in w]
    assert len(set(labels)) == len(labels)
    assert all(j.output_path.is_absolute() and j.input_path.is_absolute() for w in waves for j in w)


# --- running ---------------------------------------------------------------------------


def test_kernel_thread_pools_are_capped_unless_the_user_set_them(tmp_path, monkeypatch):
    """Two notebooks on two cores: each kernel's numerical libraries get one thread."""
    for var in pipeline.THREAD_VARS:
        monkeypatch.setenv(var, "x")  # records the original state, restored afterwards
        monkeypatch.delenv(var)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {
        "name": config.KERNEL_NAME,
        "language": "python",
        "display_name": "Python (vanguard-did)",
    }
    # two lines: IPython reads a lone `run: str = ...` as the %run magic
    cell = nbformat.v4.new_code_cell('run: str = "default"  # run name\nseed: int = 1  # seed')
    cell.metadata.tags = ["parameters"]
    nb.cells = [
        cell,
        nbformat.v4.new_code_cell(
            f"import os\nprint({{v: os.environ.get(v) for v in {list(pipeline.THREAD_VARS)!r}}})"
        ),
    ]
    src = tmp_path / "threads.ipynb"
    nbformat.write(nb, src)
    job = pipeline.Job("threads", "threads", {}, src, tmp_path / "out" / "threads.ipynb")
    res = pipeline.execute_job(job, timeout=120, threads=1)
    assert res.ok, res.error
    out = nbformat.read(job.output_path, as_version=4)
    seen = ast.literal_eval(out.cells[-1].outputs[0]["text"])
    expected = {v: "1" for v in pipeline.THREAD_VARS} | {"OMP_NUM_THREADS": "3"}
    assert seen == expected


def test_failing_notebook_is_reported_and_the_rest_still_run(
    nb_dir, reports, tmp_path, monkeypatch, capsys
):
    path = write_yaml(tmp_path / "set.yml", GOOD_SET + "  03_did: {fail_on: b}\n")
    monkeypatch.setattr(config, "NOTEBOOKS", nb_dir)
    rc = pipeline.main(["--params", str(path), "--workers", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("FAILED 03_did") == 2  # outcome b, both groups
    assert '"outcome": "b"' in err and "planted failure for b" in err
    run = reports / "fixture"
    # the other notebooks of the stage ran; the report was not built from partial results
    assert sorted(p.name for p in (run / "results").glob("*.csv")) == [
        "did__a__care_home__twfe.csv",
        "did__a__uec__twfe.csv",
    ]
    assert (run / "notebooks" / "02_trends.ipynb").is_file()
    assert not (run / "notebooks" / "06_report.ipynb").exists()
    assert "SKIPPED 06_report: not run: earlier notebooks failed: 03_did__b__care_home" in err
    assert "no report" in err
    failed = nbformat.read(run / "notebooks" / "03_did__b__care_home__twfe.ipynb", as_version=4)
    assert "planted failure for b" in json.dumps(failed)  # the traceback is kept
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    bad = [n for n in manifest["notebooks"] if n["status"] == "failed"]
    assert [n["parameters"]["outcome"] for n in bad] == ["b", "b"]
    assert [n["notebook"] for n in manifest["notebooks"] if n["status"] == "skipped"] == [
        "06_report"
    ]
    assert "planted failure" in bad[0]["error"]
    assert all(isinstance(n["failed_cell"], int) for n in bad)


def test_run_manifest(good_run):
    run, results, path = good_run["run"], good_run["results"], good_run["path"]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert len(results) == 1 + (1 + 4 + 2 + 1 + 1) + 1
    files = sorted((run / "results").glob("*.csv"))
    est = schema.read_results(files)
    assert len(est) == 4 and est["estimate"].abs().max() < 0.2  # mean of 500 N(0,1) draws

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["run"] == "fixture"
    assert manifest["parameters"]["outcomes"] == ["a", "b"]
    assert manifest["parameters"]["seed"] == 7
    assert manifest["parameters"]["notebooks"]["05_robustness"] == {"n_sims": 3}
    assert manifest["inputs"]["set.yml"] == sha256_file(path)
    assert {"pandas", "papermill", "pyfixest", "python"} <= set(manifest["packages"])
    assert len(manifest["git_commit"]) == 40 or manifest["git_commit"] == "unknown"
    assert manifest["analysis_cache"] == "off" or manifest["analysis_cache"].startswith("on (")
    assert manifest["python_hash_seed"] == os.environ.get("PYTHONHASHSEED", "0")
    assert len(manifest["notebooks"]) == len(results)
    for nb in manifest["notebooks"]:
        assert nb["wall_seconds"] >= nb["cell_seconds"] >= 0
        assert nb["kernel_and_io_seconds"] == pytest.approx(
            nb["wall_seconds"] - nb["cell_seconds"], abs=0.02
        )
        assert not os.path.isabs(nb["output"])
    # the first stage's kernel starts fresh while the preload process imports; the
    # kernels of the later stages fork from it
    kernels = {nb["notebook"]: nb["kernel"] for nb in manifest["notebooks"]}
    assert kernels.pop("01_data") == "fresh"
    assert set(kernels.values()) == {"forked"}, kernels


def test_rerun_gives_byte_identical_results(good_run, monkeypatch):
    run = good_run["run"]
    first = {p.name: sha256_file(p) for p in sorted((run / "results").glob("*.csv"))}
    assert len(first) == 4
    stale = run / "results" / "did__old__grid__twfe.csv"
    stale.write_text("from an earlier run\n")
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(good_run["base"] / "reports"))
    pipeline.run_pipeline(
        good_run["path"], notebooks_dir=good_run["notebooks"], workers=1, progress=False
    )
    assert {p.name: sha256_file(p) for p in sorted((run / "results").glob("*.csv"))} == first


def test_sanitise_removes_paths_and_timings(good_run, tmp_path):
    results = good_run["results"]
    golden = tmp_path / "golden"
    written = pipeline.refresh_golden(results, golden)
    assert len(written) == len(results)
    for p in written:
        text = p.read_text()
        assert str(good_run["base"]) not in text
        assert "start_time" not in text and "duration" not in text
        nb = nbformat.read(p, as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
        assert nb.metadata.kernelspec.name == config.KERNEL_NAME
    failed = [pipeline.JobResult(results[0].job, ok=False, error="x")]
    with pytest.raises(RuntimeError, match="not refreshing"):
        pipeline.refresh_golden(failed, golden)
    assert len(list(golden.glob("*.ipynb"))) == len(results)  # untouched by a failed run


# --- the real ci parameter set ---------------------------------------------------------


@pytest.mark.slow
def test_ci_parameter_set_runs_and_is_reproducible(reports, tmp_path, monkeypatch):
    """Run ci twice: computed into an empty cache, then read back from it."""
    from vanguard import cache

    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    run, results = pipeline.run_pipeline("ci", progress=False)
    assert all(r.ok for r in results), [(r.job.label, r.error) for r in results if not r.ok]

    def tidy_files():
        files = sorted((run / "results").glob("*.csv")) + sorted((run / "figures").glob("*.csv"))
        return {p.relative_to(run).as_posix(): sha256_file(p) for p in files}

    first = tidy_files()
    assert any(k.startswith("results/did__") for k in first)
    assert (run / "report.html").is_file() and (run / "report.pdf").is_file()
    main = schema.read_results(sorted((run / "results").glob("did__*.csv")))
    # the ci grid's estimators; twfe_poisson rows carry their own estimator name
    assert set(main["estimator"]) == {"twfe", "twfe_poisson", "cs_never", "imputation"}
    assert main.loc[main["analysis"] == "main", "estimate"].notna().all()

    # every sensitivity file exists, the headline rows are the main estimates, and the
    # flow of areas counts the areas the estimates used
    grid = pipeline.load_params("ci")["grid"]
    flow = pd.read_csv(run / "tables" / "flow.csv").set_index(["step", "group"])["n"]
    for outcome in grid["outcomes"]:
        sens = schema.read_results(run / "results" / f"sensitivity__{outcome}.csv")
        assert (run / "results" / f"sustainability__{outcome}.csv").is_file()
        assert (run / "tables" / f"sensitivity_skipped__{outcome}.csv").is_file()
        head = sens[sens["sensitivity"] == "headline"].set_index(["group", "window"])
        twfe = main[(main["estimator"] == "twfe") & (main["analysis"] == "main")
                    & (main["outcome"] == outcome)].set_index(["group", "window"])
        assert set(head.index) == set(twfe.index)
        assert (head.loc[twfe.index, "estimate"] == twfe["estimate"]).all()
        for group in grid["groups"]:
            assert (twfe.loc[group, "n_treated"] == flow["panel areas", group]).all()
            assert (twfe.loc[group, "n_control"] == flow["panel areas", "control"]).all()

    # every figure has its alt text and its data; the data are the results it draws
    pngs = sorted((run / "figures").glob("*.png"))
    assert pngs
    for png in pngs:
        assert png.with_suffix(".alt.txt").read_text().strip(), png.name
        assert png.with_suffix(".csv").is_file(), png.name
    cell = "emergency_admissions__population_based"
    # one small-multiple chart per outcome: its data hold every group's panel
    drawn = schema.read_results(run / "figures" / "event_study_emergency_admissions.csv")
    drawn = drawn[(drawn["group"] == "population_based") & (drawn["analysis"] == "event_study")]
    estimated = schema.read_results(run / "results" / f"event_study__{cell}.csv")
    estimated = estimated[
        (estimated["analysis"] == "event_study") & (estimated["estimator"] == "event_study")
    ]
    cols = ["rel_time", "estimate", "ci_low", "ci_high"]
    assert (
        drawn[cols]
        .sort_values("rel_time")
        .reset_index(drop=True)
        .equals(estimated[cols].sort_values("rel_time").reset_index(drop=True))
    )
    mde = schema.read_results(run / "figures" / "mde_emergency_admissions.csv")
    mde = mde[mde["group"] == "population_based"]
    power = schema.read_results(run / "results" / f"power__{cell}.csv")
    assert mde["estimate"].tolist() == power["estimate"].tolist()

    assert list((tmp_path / "cache").rglob("*.parquet")), "the analyses were not cached"

    def outputs():
        return {p.relative_to(run).as_posix(): sha256_file(p)
                for sub in ("data", "results", "figures", "tables", "notebooks")
                for p in sorted((run / sub).rglob("*"))
                if p.is_file() and p.name != "06_report.ipynb"}

    computed = outputs()
    pipeline.run_pipeline("ci", progress=False)
    assert tidy_files() == first
    # the second run restored every notebook but the report, and restored exactly what
    # the first run computed: the same files, byte for byte
    manifest = json.loads((run / "manifest.json").read_text())
    restored = {n["notebook"]: n["restored"] for n in manifest["notebooks"]}
    assert restored.pop("06_report") is False and all(restored.values()), restored
    assert outputs() == computed


# --- golden notebooks (checked by nbval) ---------------------------------------------------

GOLDEN = sorted(pipeline.GOLDEN_DIR.glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(/(home|work|tmp|Users|root|mnt|opt|private|var)/|[A-Za-z]:\\\\)")


def _source_cells(nb):
    return [
        (c.cell_type, c.source)
        for c in nb.cells
        if "injected-parameters" not in c.metadata.get("tags", [])
    ]


def test_golden_notebooks_match_the_ci_set_and_the_current_notebooks():
    """Editing a notebook or ci.yml without `make golden` fails here, not silently in nbval."""
    ps = dict(pipeline.load_params("ci"), run=pipeline.GOLDEN_RUN)
    jobs = [j for w in pipeline.plan_jobs(ps, config.run_dir(ps["run"])) for j in w]
    assert [p.name for p in GOLDEN] == sorted(j.output_path.name for j in jobs)
    for job in jobs:
        golden = nbformat.read(pipeline.GOLDEN_DIR / job.output_path.name, as_version=4)
        source = nbformat.read(job.input_path, as_version=4)
        assert _source_cells(golden) == _source_cells(source), (
            f"{job.label}: notebook changed since tests/golden/ was made; run `make golden`"
        )
        injected = [c for c in golden.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1
        tree = ast.parse(injected[0].source)
        given = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body}
        assert given == job.parameters, f"{job.label}: ci.yml changed; run `make golden`"


def test_golden_notebooks_ran_cleanly_and_hold_no_machine_paths():
    assert GOLDEN, "no golden notebooks: run `make golden`"
    for path in GOLDEN:
        text = path.read_text(encoding="utf-8")
        found = MACHINE_PATH.search(text)
        assert not found, f"{path.name}: machine path {found.group(0)!r}"
        assert str(config.ROOT) not in text
        nb = nbformat.read(path, as_version=4)
        assert "papermill" not in nb.metadata
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.execution_count is not None, f"{path.name}: cell not executed"
                assert not [o for o in cell.outputs if o.output_type == "error"], path.name


def test_nbval_fails_when_a_headline_number_changes(tmp_path):
    """The strict nbval check catches an altered headline number and passes the original."""
    src = pipeline.GOLDEN_DIR / "01_data.ipynb"
    nb = nbformat.read(src, as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    text = checked[0].outputs[0]["text"]
    altered = re.sub(r"areas: (\d+)", lambda m: f"areas: {int(m.group(1)) + 1}", text, count=1)
    assert altered != text
    nbformat.write(nb, tmp_path / "a_original.ipynb")
    checked[0].outputs[0]["text"] = altered
    nbformat.write(nb, tmp_path / "b_altered.ipynb")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = dict(os.environ, VANGUARD_REPORTS_DIR=str(tmp_path / "reports"), MPLBACKEND="Agg")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-sanitize-with",
            str(config.TESTS / "nbval_sanitize.cfg"),
            "-rA",
            "-c",
            str(tmp_path / "pytest.ini"),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    failed = re.findall(r"^FAILED (\S+)", out, flags=re.M)
    assert failed and all("b_altered.ipynb" in f for f in failed), out[-3000:]
    assert len(failed) == 1  # exactly the altered cell
    assert re.search(r"^PASSED \S*a_original\.ipynb", out, flags=re.M), out[-3000:]


# --- run control: lock, clean folder, what the panel publishes ---------------------------


def test_a_run_name_is_locked_while_it_runs(tmp_path):
    one = tmp_path / "reports" / "one"
    with pipeline.RunLock(one):
        with pytest.raises(DataError, match="run in progress"):
            with pipeline.RunLock(one):
                pass
        with pipeline.RunLock(tmp_path / "reports" / "two"):  # another name is free
            pass
    with pipeline.RunLock(one):  # released on exit
        pass


def test_clean_run_folder_removes_only_the_runners_outputs(tmp_path):
    run = tmp_path / "reports" / "r"
    for sub in pipeline.RUN_OUTPUTS:
        (run / sub).mkdir(parents=True)
        (run / sub / "x.csv").write_text("old")
    for name in (*pipeline.RUN_FILES, ".report.html.abc.tmp", "notes.md"):
        (run / name).write_text("old")
    pipeline.clean_run_folder(run)
    assert sorted(p.name for p in run.iterdir()) == ["notes.md"]


def test_the_full_panel_is_published_only_for_public_data_and_when_asked(tmp_path):
    ps = pipeline.load_params("ci")
    waves = pipeline.plan_jobs(ps, tmp_path / "run")
    assert pipeline._panel_is_public(waves, config.NOTEBOOKS)  # synthetic
    custom = dict(ps, parameters={**ps["parameters"], "data_source": "custom"})
    waves = pipeline.plan_jobs(custom, tmp_path / "run")
    assert not pipeline._panel_is_public(waves, config.NOTEBOOKS)


def test_the_manifest_states_commit_and_dirty_flag(good_run):
    manifest = json.loads((good_run["run"] / "manifest.json").read_text())
    assert manifest["git_dirty"] in (True, False, None)
    assert manifest["publish_panel"] is False
    assert {n["status"] for n in manifest["notebooks"]} == {"ok"}


def test_git_state_is_unknown_without_git(monkeypatch):
    monkeypatch.setattr(pipeline, "_git", lambda *a: None)
    assert pipeline.git_state() == {"git_commit": "unknown", "git_dirty": None}
    monkeypatch.setattr(pipeline, "_git", lambda *a: "abc" if a[0] == "rev-parse" else " M x")
    assert pipeline.git_state() == {"git_commit": "abc", "git_dirty": True}


def _job(notebook: str, label: str) -> pipeline.Job:
    return pipeline.Job(notebook, label, {}, Path(f"{notebook}.ipynb"), Path(f"{label}.ipynb"))


def test_jobs_start_longest_first_from_the_last_run(tmp_path):
    wave = [_job("02_trends", "02_trends"), _job("03_did", "03_did__a"),
            _job("03_did", "03_did__b"), _job("04_event_study", "04_event_study__a"),
            _job("07_new", "07_new")]
    # no earlier run: the static ranking, an unlisted notebook after the two slowest
    first = [j.label for j in pipeline.longest_first(wave)]
    assert first == ["04_event_study__a", "07_new", "03_did__a", "03_did__b", "02_trends"]
    # an earlier run's timings decide; a job it did not have starts first
    manifest = {"notebooks": [
        {"output": "reports/x/notebooks/02_trends.ipynb", "wall_seconds": 9.0, "status": "ok"},
        {"output": "reports/x/notebooks/03_did__a.ipynb", "wall_seconds": 4.0, "status": "ok"},
        {"output": "reports/x/notebooks/03_did__b.ipynb", "wall_seconds": 30.0, "status": "ok"},
        {"output": "reports/x/notebooks/04_event_study__a.ipynb", "wall_seconds": 12.0,
         "status": "failed"},
    ]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    durations = pipeline.previous_durations(tmp_path)
    assert durations == {"02_trends": 9.0, "03_did__a": 4.0, "03_did__b": 30.0}
    order = [j.label for j in pipeline.longest_first(wave, durations)]
    assert order == ["04_event_study__a", "07_new", "03_did__b", "02_trends", "03_did__a"]
    assert pipeline.previous_durations(tmp_path / "missing") == {}
