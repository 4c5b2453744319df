"""Monte Carlo: coverage of each estimator's headline inference with 6 treated areas.

200 staggered panels (two cohorts of three areas, 30 controls, effects growing with time
since start, different per cohort, AR(1) noise with coefficient 0.8 within each area); for each, the 95% interval of the years 1-2 effect
from each estimator's ``inference="auto"`` rule and from plain cluster-robust / analytic
errors. The headline rules must cover the planted truth in at least 90% of draws (the
Monte Carlo standard error of a 95% coverage over 200 draws is 1.5 points).

Run with ``-s`` to see the coverage table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from staggered_sim import staggered_panel

from vanguard.did import fit
from vanguard.did.spec import Spec

N_REPS = 200
COHORTS = {"2016-04": (3, 0.30), "2016-07": (3, 0.50)}


def _draw(seed: int) -> list[dict]:
    sim = staggered_panel(seed=1000 + seed, cohorts=COHORTS, n_control=30, first="2015-04",
                          last="2018-06", noise=0.4, rho=0.8)
    spec = Spec("admissions", sim.group, pre_months=12, windows=(("years_1_2", 0, 24),),
                inference="cluster", n_boot=199, seed=seed)
    truth = sim.truth(0, 24)
    fits = {
        "twfe / cluster-robust": fit.twfe(sim.panel, spec),
        "twfe / auto (wild bootstrap)": fit.twfe(sim.panel, spec.replace(inference="auto")),
    }
    cs = fit.callaway_santanna(sim.panel, spec)
    imp = fit.imputation(sim.panel, spec)
    fits["cs / analytic"] = cs
    fits["cs / auto (analytic, t)"] = fit.small_sample_t(cs)
    fits["imputation / analytic"] = imp
    fits["imputation / auto (analytic, t)"] = fit.small_sample_t(imp)
    rows = []
    for name, res in fits.items():
        m = res.query("analysis == 'main'").iloc[0]
        rows.append({"method": name, "inference": m["inference"], "estimate": m["estimate"],
                     "covered": bool(m["ci_low"] <= truth <= m["ci_high"]),
                     "width": m["ci_high"] - m["ci_low"], "error": m["estimate"] - truth})
    return rows


@pytest.fixture(scope="module")
def coverage() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draws = pd.DataFrame([r for s in range(N_REPS) for r in _draw(s)])
    table = draws.groupby("method", sort=False).agg(
        inference=("inference", "first"),
        coverage=("covered", "mean"),
        mean_width=("width", "mean"),
        bias=("error", "mean"),
        rmse=("error", lambda e: float(np.sqrt(np.mean(np.square(e))))),
    )
    print(f"\ncoverage of 95% intervals, {N_REPS} draws, 6 treated areas in 2 cohorts:")
    print(table.round(3).to_string())
    return table


@pytest.mark.slow
@pytest.mark.parametrize(
    "method",
    ["twfe / auto (wild bootstrap)", "cs / auto (analytic, t)", "imputation / auto (analytic, t)"],
)
def test_headline_inference_covers_with_six_treated_areas(coverage, method):
    row = coverage.loc[method]
    assert row["inference"] in ("wild_bootstrap", "analytic_t")
    assert row["coverage"] >= 0.90, coverage


@pytest.mark.slow
def test_estimators_are_unbiased_on_the_staggered_draws(coverage):
    # mean error against the width of the intervals: a bias would show as a shift of a
    # sizeable fraction of the interval
    assert (coverage["bias"].abs() < 0.1 * coverage["mean_width"]).all(), coverage
