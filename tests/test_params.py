"""Every parameter set in ``params/`` names only parameters the notebooks declare.

The notebooks' ``parameters`` cells are read twice: by :mod:`vanguard.pipeline` (which
the runner uses) and, independently, by papermill's own inspection (what papermill would
inject), so a mistake in either reader cannot hide a wrong name.
"""

from __future__ import annotations

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
    assert sum(per_notebook.values()) <= 12
