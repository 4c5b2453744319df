"""A programme that is not an NHS vanguard runs end to end through ``vanguard-report``.

A made-up falls-prevention scheme in 40 areas with three start dates (one off the quarter
grid of the others), and a frailty scheme of a single site (5 areas, no effect planted),
given as a panel file and a groups file of their own, with 75 comparison areas. The run
must estimate both groups, report the falls scheme's three cohorts, record what a
single-site group cannot support (leaving one site out) without losing the rest, and
build the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from staggered_sim import staggered_panel

from vanguard import schema

FRAILTY = [f"X{i:03d}" for i in range(41, 46)]
PARAMS = """\
run: falls
description: A made-up falls-prevention scheme in 40 areas with three start dates.
timeout: 900
parameters:
  data_source: custom
  scale: rate
  pre_months: 24
  inference: auto
  n_boot: 99
  seed: 7
  hoped_for_pct: 3.0
grid:
  outcomes: [admissions]
  groups: [falls_prevention, frailty]
  estimators: [twfe, cs_never, imputation]
notebooks:
  01_data:
    custom_panel: {panel}
    custom_groups: {groups}
  04_event_study:
    unit: month
    leads: 12
    lags: 24
    mbar: [1.0]
  05_robustness:
    placebo_shifts: [-12]
    inference_variants: [cluster, wild_bootstrap]
    n_sims: 20
    mde_draws: 49
    powers: [0.8]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("falls")
    sim = staggered_panel(seed=5)
    p = sim.panel
    p[[schema.AREA, schema.MONTH, schema.POPULATION, "admissions"]].assign(
        month=p[schema.MONTH].dt.strftime("%Y-%m")
    ).to_csv(tmp / "panel.csv", index=False)
    g = p.drop_duplicates(schema.AREA).dropna(subset=[schema.START])
    falls = g.assign(group="falls_prevention", start_month=g[schema.START].dt.strftime("%Y-%m"),
                     label="Falls prevention")
    frailty = pd.DataFrame({"group": "frailty", "area": FRAILTY, "start_month": "2016-07",
                            "site": "frailty_1", "label": "Frailty"})
    pd.concat([falls, frailty])[["group", "area", "start_month", "site", "label"]].to_csv(
        tmp / "groups.csv", index=False)
    params = tmp / "falls.yml"
    params.write_text(PARAMS.format(panel=tmp / "panel.csv", groups=tmp / "groups.csv"))
    env = dict(os.environ, VANGUARD_REPORTS_DIR=str(tmp / "reports"),
               VANGUARD_CACHE_DIR=str(tmp / "cache"), MPLBACKEND="Agg")
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("vanguard-report")), "--params", str(params)],
        capture_output=True, text=True, env=env, timeout=1500,
    )
    return sim, tmp / "reports" / "falls", proc


@pytest.mark.slow
def test_the_falls_programme_runs_end_to_end(run):
    sim, out, proc = run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "report.html").is_file() and (out / "report.pdf").is_file()
    html = (out / "report.html").read_text()
    assert "falls prevention" in html.lower()


@pytest.mark.slow
def test_its_own_group_and_cohorts_are_estimated(run):
    sim, out, proc = run
    assert proc.returncode == 0
    main = schema.read_results(out / "results" / "did__admissions__falls_prevention__twfe.csv")
    pooled = main.query("analysis == 'main' and window == 'years_1_3'").iloc[0]
    assert pooled["n_treated"] == 40 and pooled["n_control"] == 75
    assert abs(pooled["estimate"] - sim.truth(0, 36)) < 2 * pooled["se"]
    cohorts = schema.read_results(out / "results" / "cohort__admissions.csv")
    falls = cohorts[cohorts["group"] == "falls_prevention"]
    assert sorted(falls["window"].unique()) == [f"cohort_{c}" for c in sorted(sim.cohorts)]
    assert set(cohorts.loc[cohorts["group"] == "frailty", "window"]) == {"cohort_2016-07"}
    per_site = schema.read_results(
        out / "results" / "per_site__admissions__falls_prevention.csv")
    assert set(per_site["group"]) == {"falls_prevention"} and len(per_site) >= 8


@pytest.mark.slow
def test_a_group_that_cannot_support_an_analysis_is_recorded_not_fatal(run):
    sim, out, proc = run
    assert proc.returncode == 0
    failures = pd.read_csv(out / "tables" / "failures__05_robustness__admissions.csv")
    rows = failures[failures["group"] == "frailty"]
    assert list(rows["analysis"]) == ["leave one site out"]
    assert "at least two" in rows["error"].iloc[0]
    # the other group's analysis and the single-site group's other analyses still ran
    assert (out / "results" / "leave_one_out__admissions__falls_prevention.csv").is_file()
    assert (out / "results" / "placebo__admissions__frailty.csv").is_file()
    html = (out / "report.html").read_text()
    assert "NOT ESTIMATED" in html and "leave one site out for frailty" in html
