"""The conda environment file must not drift from pyproject.toml (the single source)."""

import tomllib

import yaml

from vanguard import config


def _pyproject():
    with open(config.ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def test_environment_yml_installs_the_project_with_dev_extras():
    env = yaml.safe_load((config.ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "conda-forge" in env["channels"]
    pythons = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert pythons == ["python=3.12"], pythons
    pip_blocks = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pip_blocks == [["-e .[dev]"]], (
        "environment.yml must install the project from pyproject.toml and list no "
        f"dependencies of its own; found {pip_blocks}"
    )
    # Any conda package besides python and pip would be a second source of truth.
    extra = [d for d in deps if isinstance(d, str) and d.split("=")[0] not in ("python", "pip")]
    assert not extra, f"environment.yml lists packages outside pyproject.toml: {extra}"


def test_pyproject_declares_python_312_and_dev_extra():
    project = _pyproject()["project"]
    assert project["requires-python"].startswith(">=3.12")
    assert "dev" in project["optional-dependencies"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for d in project["dependencies"]}
    for core in ("pandas", "matplotlib", "statsmodels", "papermill", "jupyterlab"):
        assert core in names, core
    dev = {d.split(">")[0].strip().lower() for d in project["optional-dependencies"]["dev"]}
    assert "nbval" in dev and "pytest" in dev


def test_config_paths_do_not_depend_on_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (config.ROOT / "pyproject.toml").is_file()
    assert config.DATA_RAW.is_absolute()
    assert config.run_dir("x") == config.reports_dir() / "x"


def test_run_dir_refuses_paths():
    import pytest

    for bad in ("../x", "/tmp/x", "a/b", ""):
        with pytest.raises(ValueError, match="run name"):
            config.run_dir(bad)
