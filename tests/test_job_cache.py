"""Whole notebook runs restored when nothing they read has changed (vanguard.job_cache).

The stand-in notebooks of ``test_pipeline`` keep these fast; the real ci set's second
run, restored from this cache, is checked file by file in
``test_pipeline.test_ci_parameter_set_runs_and_is_reproducible``.
"""

from __future__ import annotations

import json

import pytest
from test_pipeline import GOOD_SET, make_notebooks, write_yaml

from vanguard import cache, job_cache, pipeline
from vanguard.io import WRITE_LOG_ENV, sha256_file, write_text


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    nbs = make_notebooks(tmp_path / "notebooks")
    path = write_yaml(tmp_path / "set.yml", GOOD_SET)
    return {"nbs": nbs, "path": path, "tmp": tmp_path}


def _run(setup, path=None):
    run, results = pipeline.run_pipeline(path or setup["path"], notebooks_dir=setup["nbs"],
                                         workers=2, progress=False)
    manifest = json.loads((run / "manifest.json").read_text())
    return run, {n["output"].rsplit("/", 1)[-1]: n["restored"] for n in manifest["notebooks"]}


def _files(run):
    return {p.relative_to(run).as_posix(): sha256_file(p)
            for sub in ("results", "data", "figures", "tables", "notebooks")
            for p in sorted((run / sub).rglob("*")) if p.is_file()}


def test_an_unchanged_rerun_is_restored_file_for_file_and_the_report_always_runs(setup):
    run, first = _run(setup)
    assert not any(first.values())
    before = _files(run)
    assert any(k.startswith("results/did__") for k in before)
    run, second = _run(setup)
    assert second.pop("06_report.ipynb") is False
    assert second and all(second.values()), second
    after = _files(run)
    report = "notebooks/06_report.ipynb"
    assert {k: v for k, v in after.items() if k != report} == {
        k: v for k, v in before.items() if k != report}


def test_a_changed_parameter_runs_the_notebooks_it_reaches(setup):
    _run(setup)
    changed = write_yaml(setup["tmp"] / "set2.yml",
                         GOOD_SET.replace("n_sims: 3", "n_sims: 4"))
    _, again = _run(setup, changed)
    assert again["05_robustness.ipynb"] is False  # its parameter changed
    assert again["01_data.ipynb"] is True and again["03_did__a__care_home__twfe.ipynb"] is True


def test_a_changed_earlier_output_changes_the_later_keys(setup, tmp_path):
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    write_text(run / "data" / "panel.csv", "area,month\nA,2015-01\n")
    nb = setup["nbs"] / "03_did.ipynb"
    params = {"run": "x", "outcome": "a"}
    prior = job_cache.prior_outputs(run, ["data", "results"])
    key = job_cache.job_key(nb, params, {"set.yml": "0" * 64}, prior)
    assert key == job_cache.job_key(nb, params, {"set.yml": "0" * 64}, prior)
    write_text(run / "data" / "panel.csv", "area,month\nA,2015-02\n")
    changed = job_cache.prior_outputs(run, ["data", "results"])
    assert job_cache.job_key(nb, params, {"set.yml": "0" * 64}, changed) != key
    assert job_cache.job_key(nb, {**params, "outcome": "b"}, {"set.yml": "0" * 64},
                             prior) != key
    assert job_cache.job_key(nb, params, {"set.yml": "1" * 64}, prior) != key
    # a new plotting package may redraw a figure: its version is part of the key
    new_mpl = [job_cache.job_key(nb, params, {}, prior, versions={"matplotlib": v})
               for v in ("3.9.0", "3.10.0")]
    assert new_mpl[0] != new_mpl[1]


def test_a_damaged_entry_is_never_restored(setup):
    run, _ = _run(setup)
    target = "results/did__a__care_home__twfe.csv"
    good = (run / target).read_bytes()
    entry = next(d for d in job_cache.folder().iterdir()
                 if target in json.loads((d / job_cache.ENTRY).read_text())["files"])
    (entry / job_cache.FILES / target).write_text("tampered\n")
    run, again = _run(setup)
    assert again["03_did__a__care_home__twfe.ipynb"] is False  # it ran instead
    assert again["03_did__b__care_home__twfe.ipynb"] is True
    assert (run / target).read_bytes() == good


def test_nothing_is_stored_or_restored_with_the_cache_off(setup, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    _run(setup)
    _, again = _run(setup)
    assert not any(again.values())
    assert not job_cache.folder().exists()


def test_atomic_writes_are_logged_only_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "log"
    write_text(tmp_path / "run" / "a.txt", "x")
    assert not log.exists()
    monkeypatch.setenv(WRITE_LOG_ENV, str(log))
    write_text(tmp_path / "run" / "b.txt", "y")
    write_text(tmp_path / "run" / "b.txt", "z")
    write_text(tmp_path / "elsewhere.txt", "w")
    got = job_cache.written_files(log, tmp_path / "run")
    assert got == [(tmp_path / "run" / "b.txt").resolve()]


def test_prune_drops_unused_entries_then_the_oldest_over_the_cap(setup, monkeypatch):
    import os

    _run(setup)
    entries = sorted(d for d in job_cache.folder().iterdir() if d.is_dir())
    assert len(entries) >= 3
    for i, d in enumerate(entries):
        os.utime(d / job_cache.ENTRY, (1_000_000 + i, 1_000_000 + i))
    removed = job_cache.prune(now=1_000_000 + len(entries))
    assert removed == []  # all used within the maximum age
    monkeypatch.setenv("VANGUARD_JOB_CACHE_MAX_MB", "0")
    removed = job_cache.prune(now=1_000_000 + len(entries))
    assert removed == entries  # oldest first, until the folder is under the cap
