"""Placebo start dates and leave-one-site-out, against planted pre-trends and site effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_persite import make_panel

from vanguard import schema
from vanguard.did import robustness
from vanguard.errors import EstimationError

OUTCOME = "emergency_admissions"


def _with_pretrend(panel, slope):
    """Treated areas' rate drifts by ``slope`` per 1,000 per month, all along."""
    out = panel.copy()
    months = (out.month.dt.year - 2010) * 12 + out.month.dt.month - 4
    treated = out.group != schema.CONTROL
    extra = slope * months * out.population / 1000.0
    out.loc[treated, OUTCOME] = np.maximum(out.loc[treated, OUTCOME] + extra[treated], 0).round()
    return out


def test_placebo_panel_uses_only_real_pre_period_data():
    panel = make_panel(n_control=5)
    fake = robustness.placebo_panel(panel, schema.CARE_HOME, -24, window_months=12)
    assert fake.month.max() == pd.Timestamp("2014-03-01")
    treated = fake[fake.group == schema.CARE_HOME]
    assert (treated.start == pd.Timestamp("2013-04-01")).all()
    assert fake[fake.group == schema.CONTROL].start.isna().all()
    with pytest.raises(EstimationError, match="reach the real start"):
        robustness.placebo_panel(panel, schema.CARE_HOME, -6, window_months=12)
    with pytest.raises(EstimationError, match="before the real one"):
        robustness.placebo_panel(panel, schema.CARE_HOME, 3)


def test_placebo_is_near_zero_under_parallel_trends_and_finds_a_planted_pretrend():
    sites = {f"CH{i}": (schema.CARE_HOME, 1, -1.0) for i in range(8)}
    panel = make_panel(n_control=40, sites=sites, seed=21, area_sd=0.05)
    kw = dict(groups=(schema.CARE_HOME,), shifts=(-12, -24), inference="cluster")
    flat = robustness.placebo_start_dates(panel, OUTCOME, **kw)
    assert list(flat.param) == [-12.0, -24.0]
    assert (flat.analysis == "placebo").all() and (flat.window == "year_1").all()
    # The real effect (-1) lies after the real start and must not leak into a placebo.
    assert (flat.estimate.abs() < 4 * flat.se).all()
    assert (flat.estimate.abs() < 0.15).all()
    # A linear pre-trend of s per month shows as 18 s: window mean is month 5.5 and
    # pre-period mean month -12.5 relative to the pretend start.
    slope = 0.02
    drift = robustness.placebo_start_dates(_with_pretrend(panel, slope), OUTCOME, **kw)
    assert drift.estimate.to_numpy() == pytest.approx(
        flat.estimate.to_numpy() + 18 * slope, abs=0.03
    )
    assert (drift.p_value < 0.05).all()


def test_leave_one_site_out_moves_with_the_dominant_site():
    effects = {"EHCH1": -2.0, "EHCH2": 0.0, "EHCH3": 0.0, "EHCH4": 0.0}
    sites = {s: (schema.CARE_HOME, 1, e) for s, e in effects.items()}
    sites["PACS1"] = (schema.POPULATION_BASED, 2, 0.0)
    panel = make_panel(n_control=40, sites=sites, seed=5, area_sd=0.03)
    res = robustness.leave_one_site_out(
        panel, OUTCOME, group=schema.CARE_HOME, inference="cluster"
    ).set_index("site")
    assert sorted(res.index) == sorted(effects)
    assert (res.analysis == "leave_one_out").all()
    assert (res.n_treated == 3).all()
    assert res.loc["EHCH1", "estimate"] == pytest.approx(0.0, abs=0.1)
    for s in ("EHCH2", "EHCH3", "EHCH4"):
        assert res.loc[s, "estimate"] == pytest.approx(-2.0 / 3, abs=0.1)
    with pytest.raises(EstimationError, match="at least two"):
        robustness.leave_one_site_out(panel, OUTCOME, group=schema.UEC)
