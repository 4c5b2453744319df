"""Minimum detectable effect: checked against an independent planted-effect simulation."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_persite import START, make_panel

from vanguard import schema
from vanguard.did import power
from vanguard.errors import EstimationError

OUTCOME = "emergency_admissions"


def _twfe_cluster_test(panel, treated, start, alpha=0.05):
    """Independent TWFE on the full area-month panel: two-way within transformation,
    OLS, CR1 area-clustered t test."""
    lo, hi = start - pd.DateOffset(months=24), start + pd.DateOffset(months=36)
    df = panel[(panel.month >= lo) & (panel.month < hi)]
    df = df[df.area.isin(treated) | (df.group == schema.CONTROL)].copy()
    df["y"] = 1000 * df[OUTCOME] / df.population
    df["d"] = (df.area.isin(treated) & (df.month >= start)).astype(float)
    for v in ("y", "d"):
        # Balanced panel: one sweep of area and month demeaning is exact.
        df[v] = (
            df[v]
            - df.groupby("area")[v].transform("mean")
            - df.groupby("month")[v].transform("mean")
            + df[v].mean()
        )
    beta = np.sum(df.d * df.y) / np.sum(df.d**2)
    scores = (df.d * (df.y - beta * df.d)).groupby(df.area).sum().to_numpy()
    g = scores.size
    se = np.sqrt(np.sum(scores**2) * g / (g - 1)) / np.sum(df.d**2)
    return abs(beta / se) > stats.t.ppf(1 - alpha / 2, g - 1)


def _design(seed, effect=0.0, n_control=60, pop_range=(80_000, 600_000)):
    return make_panel(
        n_control=n_control,
        pop_range=pop_range,
        seed=seed,
        sites={f"CH{i}": (schema.CARE_HOME, 1, effect) for i in range(6)},
    )


@pytest.mark.slow
def test_planted_mde_is_detected_about_80_percent_in_independent_simulation():
    # Similar populations, so that one panel's pre-period speaks for fresh panels.
    kw = dict(n_control=100, pop_range=(250_000, 270_000))
    t0 = time.perf_counter()
    results = [
        power.minimum_detectable_effect(
            _design(seed=s, **kw), OUTCOME, n_sims=400, seed=5, inference="cluster"
        )
        for s in (11, 12, 13)
    ]
    assert time.perf_counter() - t0 < 15
    res = results[0]
    assert res.analysis.iloc[0] == "power" and res.param.iloc[0] == 0.8
    assert res.n_treated.iloc[0] == 6 and res.n_control.iloc[0] == 100
    mde = np.mean([r.estimate.iloc[0] for r in results])
    treated = [f"T{i:03d}" for i in range(6)]
    n_rep = 150
    hits = sum(
        _twfe_cluster_test(_design(seed=1000 + r, effect=-mde, **kw), treated, START)
        for r in range(n_rep)
    )
    assert 0.68 <= hits / n_rep <= 0.92, (mde, hits / n_rep)
    # At a third of the MDE the same test is far from 80 %.
    weak = sum(
        _twfe_cluster_test(_design(seed=2000 + r, effect=-mde / 3, **kw), treated, START)
        for r in range(40)
    )
    assert weak / 40 < 0.4
    # The analytic cross-check (z_0.975 + z_0.8) x SD is close for a t test with 105 df.
    analytic = float(res.note.iloc[0].split("SD(placebo) = ")[1].split(";")[0])
    assert analytic == pytest.approx(res.estimate.iloc[0], rel=0.15)


def test_mde_shrinks_as_the_number_of_treated_areas_grows():
    panel = _design(seed=2)

    def mde(k, inference):
        return power.minimum_detectable_effect(
            panel, OUTCOME, n_treated=k, n_sims=200, seed=3, inference=inference, n_perm=99
        )

    for inference in ("cluster", "randomisation"):
        rows = [mde(k, inference) for k in (2, 6, 20)]
        mdes = [r.estimate.iloc[0] for r in rows]
        assert mdes[0] > mdes[1] > mdes[2] > 0, inference
    # Randomisation inference has the right size, so its MDE follows the placebo spread,
    # roughly 1/sqrt(k) while controls dominate.
    assert mdes[0] / mdes[1] == pytest.approx(np.sqrt(3), rel=0.3)
    sds = [r.se.iloc[0] for r in rows]
    assert sds[0] / sds[1] == pytest.approx(np.sqrt(3), rel=0.3)


def test_note_reports_the_empirical_size_of_the_test():
    # Two treated areas: a cluster-robust t test over-rejects and the note must say so.
    res = power.minimum_detectable_effect(
        _design(seed=2), OUTCOME, n_treated=2, n_sims=300, inference="cluster"
    )
    size = float(res.note.iloc[0].split("empirical size ")[1].split(" ")[0])
    assert size > 0.08


def test_detection_rate_is_alpha_at_zero_and_rises_to_one():
    panel = _design(seed=4)
    # Randomisation inference is exact under random assignment: size alpha at zero.
    curve = power.power_curve(
        panel, OUTCOME, n_sims=300, seed=1, n_points=11, inference="randomisation", n_perm=99
    )
    assert (curve.analysis == "power_curve").all()
    rate = curve.estimate.to_numpy()
    assert rate[0] == pytest.approx(0.05, abs=0.04)
    assert rate[-1] > 0.97
    assert np.all(np.diff(rate) >= -0.02)
    assert curve.pct.iloc[-1] == pytest.approx(100 * curve.param.iloc[-1] / curve.pre_mean.iloc[-1])


def test_randomisation_inference_gives_a_similar_mde():
    panel = _design(seed=6)
    kw = dict(n_sims=120, seed=9)
    cl = power.minimum_detectable_effect(panel, OUTCOME, inference="cluster", **kw)
    ri = power.minimum_detectable_effect(panel, OUTCOME, inference="randomisation", n_perm=99, **kw)
    assert ri.estimate.iloc[0] == pytest.approx(cl.estimate.iloc[0], rel=0.3)
    assert ri.inference.iloc[0] == "randomisation"


def test_same_seed_same_answer_and_errors():
    panel = _design(seed=8)
    a = power.minimum_detectable_effect(panel, OUTCOME, n_sims=50, seed=1)
    b = power.minimum_detectable_effect(panel, OUTCOME, n_sims=50, seed=1)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(EstimationError, match="pre-period has"):
        power.minimum_detectable_effect(
            panel, OUTCOME, pre_end="2013-04-01", n_sims=10, shorten=False
        )
    with pytest.raises(EstimationError, match="power"):
        power.minimum_detectable_effect(panel, OUTCOME, power=80, n_sims=10)
    with pytest.raises(EstimationError, match="inference"):
        power.minimum_detectable_effect(panel, OUTCOME, inference="bogus", n_sims=10)


def test_wild_bootstrap_p_value_matches_the_main_analysis_bootstrap():
    """The collapsed bootstrap against the project's panel-level restricted wild cluster
    bootstrap (different draws, so p-values agree up to Monte Carlo error)."""
    from vanguard import synthetic
    from vanguard.did import persite
    from vanguard.did.inference import bootstrap_weights
    from vanguard.did.twfe import estimate_twfe

    panel = synthetic.generate().panel
    main = estimate_twfe(
        panel,
        OUTCOME,
        groups=(schema.CARE_HOME,),
        windows=("years_1_3",),
        inference="wild_bootstrap",
        n_boot=1999,
    ).iloc[0]
    om = persite.outcome_matrix(panel, OUTCOME, "rate")
    change, _ = persite.area_changes(om, START, pre_months=24, window=(0, 36))
    group = om.areas.loc[change.index, schema.GROUP]
    keep = group.isin(schema.GROUP_MEMBERS[schema.CARE_HOME]) | (group == schema.CONTROL)
    c = change[keep].to_numpy()
    treated = (group[keep] != schema.CONTROL).to_numpy(float)
    n_tr, n_co = int(treated.sum()), int((1 - treated).sum())
    v = bootstrap_weights(c.size, 4999, np.random.default_rng(0)).T
    t_boot = power._wild_t(power._wild_terms(v, c, treated)[None], 0.0, n_tr, n_co)[0]
    est, se, _ = persite.did_cluster(c[treated == 1], c[treated == 0])
    t_obs = est / (se * np.sqrt((c.size - 1) / c.size))
    p = np.mean(np.abs(t_boot) >= abs(t_obs))
    assert p == pytest.approx(main.p_value, abs=0.04)


def test_auto_inference_follows_the_headline_rule_and_has_the_right_size():
    panel = _design(seed=4)
    res = power.minimum_detectable_effect(panel, OUTCOME, n_sims=300, seed=2)
    assert res.inference.iloc[0] == "wild_bootstrap"  # 6 treated areas < 10
    size = float(res.note.iloc[0].split("empirical size ")[1].split(" ")[0])
    assert size <= 0.09
    assert "headline inference rule" in res.note.iloc[0]
    many = power.minimum_detectable_effect(panel, OUTCOME, n_sims=50, seed=2, n_treated=12)
    assert many.inference.iloc[0] == "cluster"


def test_short_pre_period_gives_a_shortened_design_with_a_warning_and_note():
    panel = _design(seed=8)
    full = power.minimum_detectable_effect(panel, OUTCOME, n_sims=100, seed=1, inference="cluster")
    # 24 months of pre-period data only, as on the NHS MAR (April 2013 to March 2015).
    short = panel[panel.month >= "2013-04-01"]
    with pytest.warns(UserWarning, match="too short"):
        res = power.minimum_detectable_effect(
            short, OUTCOME, n_sims=100, seed=1, inference="cluster"
        )
    assert "simulated a 9-month pre-period and months [0, 15)" in res.note.iloc[0]
    # Fewer months average out less noise: the shortened MDE is larger.
    assert res.estimate.iloc[0] > full.estimate.iloc[0]


def test_log_scale_pct_is_the_size_of_the_planted_reduction():
    """A reduction of d log points lowers the outcome by 100 (1 - exp(-d)) %, not by
    100 (exp(d) - 1) % (that would be the size of an increase)."""
    assert power.reduction_pct(np.log(2.0), "log", np.nan) == pytest.approx(50.0)
    assert power.reduction_pct(0.5, "rate", 10.0) == pytest.approx(5.0)
    res = power.minimum_detectable_effect(
        _design(seed=3), OUTCOME, scale="log", n_sims=50, seed=1, inference="cluster"
    )
    mde = float(res.estimate.iloc[0])
    assert mde > 0
    assert res.pct.iloc[0] == pytest.approx(100 * (1 - np.exp(-mde)))
    assert "reduction" in res.note.iloc[0]
    with pytest.raises(EstimationError):
        power.reduction_pct(0.1, "bogus", 1.0)


def test_one_set_of_placebo_draws_serves_every_power(monkeypatch):
    """Several powers share one set of simulations, and each answer equals a run for that
    power alone with the same seed."""
    panel = _design(seed=10)
    calls = []
    draws = power.placebo_draws
    monkeypatch.setattr(power, "placebo_draws", lambda *a, **k: calls.append(1) or draws(*a, **k))
    kw = dict(n_sims=60, seed=4)
    both = power.minimum_detectable_effect(panel, OUTCOME, power=[0.8, 0.9], **kw)
    assert len(calls) == 1 and len(both) == 2
    for p in (0.8, 0.9):
        alone = power.minimum_detectable_effect(panel, OUTCOME, power=p, **kw)
        row = both[both["param"] == p]
        assert float(row["estimate"].iloc[0]) == float(alone["estimate"].iloc[0])
    assert len(calls) == 3
    assert float(both["estimate"].iloc[1]) > float(both["estimate"].iloc[0])
