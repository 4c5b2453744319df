"""Every parameter set in ``params/`` names only parameters the notebooks declare.

The notebooks' ``parameters`` cells are read twice: by :mod:`vanguard.pipeline` (which
the runner uses) and, independently, by papermill's own inspection (what papermill would
inject), so a mistake in either reader cannot hide a wrong name.
"""

from __future__ import annotations

import re

import papermill as pm
import pytest
import yaml

from vanguard import config, pipeline, schema
from vanguard.errors import DataError

PARAM_SETS = sorted(config.PARAMS.glob("*.yml"))
NOTEBOOK_NAMES = [name for stage in pipeline.STAGES for name in stage]


@pytest.fixture(scope="module")
def declared_by_papermill():
    return {
        name: set(pm.inspect_notebook(str(config.NOTEBOOKS / f"{name}.ipynb")))
        for name in NOTEBOOK_NAMES
    }


def test_the_three_parameter_sets_exist():
    assert {p.stem for p in PARAM_SETS} >= {"default", "ci", "nhs_mar"}


@pytest.mark.parametrize("path", PARAM_SETS, ids=lambda p: p.stem)
def test_parameter_set_names_only_declared_parameters(path, declared_by_papermill):
    ps = pipeline.load_params(path)
    assert pipeline.check_param_set(ps) == []
    # independent reading: every name must be in some papermill-inspected notebook
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    everything = set().union(*declared_by_papermill.values())
    for name in raw.get("parameters", {}):
        assert name in everything, f"{path.name}: parameters.{name} is declared by no notebook"
    for key in raw.get("grid", {}):
        single = pipeline.GRID_KEYS[key]
        assert single in everything or key in everything, f"{path.name}: grid.{key}"
    for nb, overrides in raw.get("notebooks", {}).items():
        for name in overrides:
            assert name in declared_by_papermill[nb], f"{path.name}: {nb}.{name} not declared"


@pytest.mark.parametrize("path", PARAM_SETS, ids=lambda p: p.stem)
def test_every_planned_job_passes_only_declared_parameters(path, declared_by_papermill):
    ps = pipeline.load_params(path)
    waves = pipeline.plan_jobs(ps, config.run_dir(ps["run"]))
    assert [j.notebook for j in waves[0]] == ["01_data"]
    assert [j.notebook for j in waves[-1]] == ["06_report"]
    for job in (j for w in waves for j in w):
        undeclared = set(job.parameters) - declared_by_papermill[job.notebook]
        assert not undeclared, f"{path.name}: {job.label} gets undeclared {undeclared}"
        assert job.parameters["run"] == ps["run"]


@pytest.mark.parametrize("path", PARAM_SETS, ids=lambda p: p.stem)
def test_parameter_values_are_known_to_the_project(path):
    ps = pipeline.load_params(path)
    grid = ps["grid"]
    assert set(grid.get("groups", [])) <= set(schema.ANALYSIS_GROUPS)
    assert ps["parameters"].get("scale", "rate") in schema.SCALES
    assert ps["parameters"].get("data_source", "synthetic") in {"synthetic", "nhs_mar", "custom"}
    assert set(grid.get("estimators", [])) <= {
        "twfe",
        "twfe_poisson",
        "cs_never",
        "cs_notyet",
        "imputation",
    }
    if ps["parameters"].get("data_source") == "nhs_mar":
        # the MAR panel carries population denominators (vanguard.population): rates are
        # the headline scale, log and Poisson remain available
        assert ps["parameters"]["scale"] in schema.SCALES
        assert ps["parameters"]["first_month"] == "2013-04"


def test_ci_set_is_small():
    waves = pipeline.plan_jobs(pipeline.load_params("ci"), config.run_dir("ci"))
    assert sum(len(w) for w in waves) <= 8  # each notebook is a kernel start


def test_a_misspelt_parameter_fails_the_check(tmp_path):
    text = (config.PARAMS / "ci.yml").read_text(encoding="utf-8")
    bad = tmp_path / "typo.yml"
    bad.write_text(text.replace("pre_months:", "pre_month:", 1), encoding="utf-8")
    problems = pipeline.check_param_set(pipeline.load_params(bad))
    assert problems == ["typo.yml: parameters.pre_month: no notebook declares it"]
    with pytest.raises(DataError, match="pre_month"):
        pipeline.plan_jobs(pipeline.load_params(bad), tmp_path)


@pytest.mark.parametrize("path", PARAM_SETS, ids=lambda p: p.stem)
def test_draw_counts_stay_defensible(path):
    """Fewer draws make a run faster; these floors keep the p-values meaningful.

    A permutation or bootstrap p-value is ``(1 + #{as extreme}) / (1 + B)``: a test at
    5% is exact only when ``0.05 * (B + 1)`` is a whole number, and its Monte Carlo error
    is about ``sqrt(0.05 * 0.95 / B)``.
    """
    ps = pipeline.load_params(path)
    declared = pipeline._declared(config.NOTEBOOKS)
    for job in (j for w in pipeline.plan_jobs(ps, config.run_dir(ps["run"])) for j in w):
        defaults = {k: p.default for k, p in declared[job.notebook].items()}
        given = {**defaults, **job.parameters}
        for name in ("n_boot", "n_perm"):
            if name not in given:
                continue
            draws = given[name]
            assert (draws + 1) % 20 == 0, (job.label, name, draws)  # 0.05 * (B + 1) whole
            if ps["run"] != "ci":  # ci checks the chain, not the numbers
                assert draws >= 499, (job.label, name, draws)


def test_default_set_starts_few_kernels():
    """Each notebook run is a kernel start (about 2 s): the grid is looped inside notebooks
    where one kernel can do the work of many."""
    waves = pipeline.plan_jobs(pipeline.load_params("default"), config.run_dir("default"))
    per_notebook = {}
    for job in (j for w in waves for j in w):
        per_notebook[job.notebook] = per_notebook.get(job.notebook, 0) + 1
    # one per outcome: every group (and, in 03, every estimator) inside
    assert per_notebook["03_did"] == per_notebook["04_event_study"] == 3
    assert per_notebook["05_robustness"] == 3
    assert per_notebook["05_sensitivity"] == 1  # the changed panels are built once
    assert sum(per_notebook.values()) <= 13


# --- values, not only types ------------------------------------------------------------

CI_TEXT = (config.PARAMS / "ci.yml").read_text(encoding="utf-8")


def _problems(tmp_path, old: str, new: str) -> list[str]:
    assert old in CI_TEXT
    path = tmp_path / "bad.yml"
    path.write_text(CI_TEXT.replace(old, new, 1), encoding="utf-8")
    return pipeline.check_param_set(pipeline.load_params(path))


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("pre_months: 24", 'first_month: "2013-13"\n  pre_months: 24',
         "parameters.first_month: expected a month \"YYYY-MM\""),
        ("pre_months: 24", 'first_month: "April 2013"\n  pre_months: 24', "first_month"),
        ("n_boot: 99", "n_boot: abc", "n_boot='abc': notebook 03_did declares type int"),
        ("n_boot: 99", "n_boot: 0", "parameters.n_boot: expected a whole number from 1"),
        ("n_boot: 99", "n_boot: true", "n_boot=True"),
        ("seed: 20150310", "seed: -1", "parameters.seed: expected a whole number from 0"),
        ("scale: rate", "scale: rates", "parameters.scale: expected one of"),
        ("inference: auto", "inference: bootstrap", "parameters.inference"),
        ("groups: [population_based, care_home]", "groups: [population_based, care home]",
         "grid.groups: expected a non-empty list without repeats, each a treatment group name"),
        ("groups: [population_based, care_home]", "groups: [care_home, care_home]",
         "grid.groups: expected a non-empty list without repeats"),
        ("estimators: [twfe, twfe_poisson, cs_never, imputation]", "estimators: [twfe, twfe]",
         "estimators"),
        ("hoped_for_pct: 3.0", "hoped_for_pct: 300", "hoped_for_pct: expected a percentage"),
        ("placebo_shifts: [-12]", "placebo_shifts: [12]", "placebo_shifts: expected"),
        ("powers: [0.8]", "powers: [80]", "powers: expected"),
        ("unit: quarter", "unit: week", "notebooks.04_event_study.unit: expected one of"),
        ("leads: 4", "leads: 0", "leads"),
    ],
)
def test_bad_values_are_refused_naming_the_parameter(tmp_path, old, new, expected):
    problems = _problems(tmp_path, old, new)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("bad.yml: ") for p in problems)


def test_a_value_problem_is_reported_once_for_a_shared_parameter(tmp_path):
    problems = _problems(tmp_path, "seed: 20150310", "seed: -1")
    assert len(problems) == 1  # seed goes to four notebooks


def test_a_duplicate_yaml_key_is_refused(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text(CI_TEXT.replace("  n_boot: 99\n", "  n_boot: 99\n  n_boot: 9\n"),
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"'n_boot' is given twice") as err:
        pipeline.load_params(path)
    assert "dup.yml" in str(err.value)


def test_a_duplicate_top_level_key_is_refused(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("run: a\nrun: b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"'run' is given twice \(lines 1 and 2\)"):
        pipeline.load_params(path)


def test_publish_panel_must_be_a_boolean(tmp_path):
    path = tmp_path / "pub.yml"
    path.write_text("run: a\npublish_panel: yes please\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        pipeline.load_params(path)
    assert err.value.column == "publish_panel"
    path.write_text("run: a\npublish_panel: true\n", encoding="utf-8")
    assert pipeline.load_params(path)["publish_panel"] is True
    assert pipeline.load_params("ci")["publish_panel"] is False


def test_a_reports_folder_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "reports.txt"
    blocker.write_text("not a folder")
    for value in (blocker, blocker / "sub"):
        monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(value))
        with pytest.raises(DataError, match="is a file") as err:
            config.reports_dir()
        assert "VANGUARD_REPORTS_DIR" in str(err.value)
    assert pipeline.main(["--params", "ci", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "VANGUARD_REPORTS_DIR" in err and "is a file" in err and "Traceback" not in err


# --- the check a notebook runs on what papermill injected ------------------------------


def test_every_declared_parameter_with_a_rule_accepts_its_default():
    """The rules cannot refuse what the notebooks ship with."""
    from vanguard import params

    for name in NOTEBOOK_NAMES:
        for p in pipeline.notebook_parameters(config.NOTEBOOKS / f"{name}.ipynb").values():
            assert params.value_problem(p.name, p.default, p.type) is None, (name, p)


@pytest.mark.parametrize(
    "injected, expected",
    [
        ({"n_boot": "abc"}, "parameter 'n_boot': expected a whole number (int); found 'abc'"),
        ({"n_boot": 0}, "parameter 'n_boot': expected a whole number from 1"),
        ({"n_bot": 99}, "parameter 'n_bot' is not declared by 03_did"),
        ({"groups": ["population_based", "no pe"]}, "parameter 'groups': expected"),
        ({"groups": ["control"]}, "parameter 'groups': expected"),
    ],
)
def test_check_parameters_refuses_what_papermill_let_through(injected, expected):
    from vanguard import params

    declared = pipeline.notebook_parameters(config.NOTEBOOKS / "03_did.ipynb")
    namespace = {k: p.default for k, p in declared.items()} | injected
    with pytest.raises(params.ParameterError) as err:
        params.check_parameters("03_did", namespace, injected=injected)
    assert expected in str(err.value)
    assert "03_did.ipynb" in str(err.value)


def test_check_parameters_passes_the_defaults_and_a_good_injection():
    from vanguard import params

    declared = pipeline.notebook_parameters(config.NOTEBOOKS / "03_did.ipynb")
    namespace = {k: p.default for k, p in declared.items()} | {"n_boot": 199}
    params.check_parameters("03_did", namespace, injected={"n_boot": 199, "run": "x"})


def test_injected_names_are_read_from_the_papermill_cell():
    from vanguard import params

    history = ["", "import x", 'run: str = "a"  # r', '# Parameters\nn_boot = "abc"\nrun = "ci"\n',
               "print(1)"]
    assert params.injected_names(history) == {"n_boot": "abc", "run": "ci"}
    assert params.injected_names(["print(1)"]) == {}


def test_papermill_cli_injection_is_caught_inside_the_kernel(tmp_path):
    """End to end: ``papermill -p n_boot abc`` on a notebook that calls the check."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": config.KERNEL_NAME, "language": "python",
                              "display_name": "Python (vanguard-did)"}
    src = tmp_path / "nbs"
    src.mkdir()
    cell = nbformat.v4.new_code_cell('run: str = "default"  # run name\nn_boot: int = 99  # draws')
    cell.metadata.tags = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(
        "from vanguard.params import check_parameters; "
        f"check_parameters('03_did', globals(), notebooks_dir={str(src)!r})")]
    nbformat.write(nb, src / "03_did.ipynb")
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(src / "03_did.ipynb"), str(out), parameters={"n_boot": 199},
                        kernel_name=config.KERNEL_NAME, progress_bar=False)
    for given, expected in (({"n_boot": "abc"}, "expected a whole number (int); found 'abc'"),
                            ({"nboot": 5}, "parameter 'nboot' is not declared")):
        with pytest.raises(pm.PapermillExecutionError, match=re.escape(expected)):
            pm.execute_notebook(str(src / "03_did.ipynb"), str(out), parameters=given,
                                kernel_name=config.KERNEL_NAME, progress_bar=False)


def test_an_executed_notebook_is_checked_against_its_parameters_cell(tmp_path):
    import nbformat

    from vanguard import params

    nb = nbformat.read(config.NOTEBOOKS / "03_did.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    injected = nbformat.v4.new_code_cell('# Parameters\nn_boot = "abc"\nnbot = 5\nrun = "ci"\n')
    injected.metadata.tags = ["injected-parameters"]
    nb.cells.insert(nb.cells.index(cells[0]) + 1, injected)
    nbformat.write(nb, tmp_path / "03_did__x.ipynb")
    problems = params.check_executed_notebook(tmp_path / "03_did__x.ipynb")
    assert problems == [
        "03_did__x.ipynb: parameter 'nbot' is not declared",
        "03_did__x.ipynb: parameter 'n_boot': expected a whole number (int); found 'abc'",
    ]
    assert params.check_executed_notebook(config.NOTEBOOKS / "03_did.ipynb") == []
    for golden in sorted(pipeline.GOLDEN_DIR.glob("*.ipynb")):  # what the runner injected
        assert params.check_executed_notebook(golden) == [], golden.name
