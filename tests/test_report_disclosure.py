"""Disclosure control is the same rule for every published file of a run: counts of
people or events from 1 to 7 never appear; counts of areas always do."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_report import make_run

from vanguard import config, sdc
from vanguard.errors import DataError


def _panel_with_small_counts(run_path):
    path = run_path / "data" / "panel.parquet"
    panel = pd.read_parquet(path)
    panel.loc[panel.index[:3], "emergency_admissions"] = [3, 0, 12]
    panel.to_parquet(path)
    return path


def test_audit_finds_people_counts_in_every_kind_of_file(tmp_path, monkeypatch):
    run = make_run(tmp_path, monkeypatch, name="audit")
    run_path = config.run_dir(run)
    assert sdc.audit_run(run_path) == []
    _panel_with_small_counts(run_path)
    figures = run_path / "figures"
    figures.mkdir()
    pd.DataFrame({"month": ["2015-04", "2015-05"], "emergency_admissions": [5, 900],
                  "n_areas": [3, 3]}).to_csv(figures / "trend_counts.csv", index=False)
    hits = sdc.audit_run(run_path)
    assert "data/panel.parquet: row 2, column 'emergency_admissions': 3" in hits
    assert "figures/trend_counts.csv: row 2, column 'emergency_admissions': 5" in hits
    assert len(hits) == 2  # zero, 12, 900 and the 3 areas are not breaches


def test_the_published_copy_of_the_panel_passes_the_audit(tmp_path, monkeypatch):
    run = make_run(tmp_path, monkeypatch, name="publish")
    run_path = config.run_dir(run)
    path = _panel_with_small_counts(run_path)
    assert sdc.audit_run(run_path)
    assert sdc.publish_run_panel(path, full=False) == "disclosure-controlled"
    assert sdc.audit_run(run_path, count_columns=["emergency_admissions"]) == []


def test_a_panel_published_in_full_is_not_audited(tmp_path, monkeypatch):
    run = make_run(tmp_path, monkeypatch, name="full")
    run_path = config.run_dir(run)
    _panel_with_small_counts(run_path)
    m = json.loads((run_path / "manifest.json").read_text())
    (run_path / "manifest.json").write_text(json.dumps(m | {"panel_published": "full"}))
    assert sdc.audit_run(run_path) == []


def test_no_report_is_published_beside_a_disclosive_file(tmp_path, monkeypatch):
    from vanguard.report import build_report

    run = make_run(tmp_path, monkeypatch, name="refuse")
    run_path = config.run_dir(run)
    tables = run_path / "tables"
    tables.mkdir()
    pd.DataFrame({"group": ["care_home"], "population": [6]}).to_csv(
        tables / "small.csv", index=False)
    with pytest.raises(DataError, match=r"tables/small.csv: row 2, column 'population': 6"):
        build_report(run)
    assert not (run_path / "report.html").exists() and not (run_path / "report.pdf").exists()
    (tables / "small.csv").unlink()
    html_path, pdf_path = build_report(run)
    assert html_path.is_file() and pdf_path.is_file()
