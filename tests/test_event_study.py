"""Tests of the event study (vanguard.did.event_study): planted dynamic effects are
recovered, the pre-trend test rejects a planted pre-trend and keeps its size otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from did_sim import simulate

from vanguard import schema
from vanguard.did.design import prepare
from vanguard.did.event_study import estimate_event_study, pretrend_wald, relative_period
from vanguard.errors import EstimationError

OUT = "emergency_admissions"
SLOPE = -0.003  # planted effect: -0.3 % per month since start


@pytest.fixture(scope="module")
def dynamic_panel() -> pd.DataFrame:
    return simulate(
        seed=31,
        n_control=60,
        n_pop=20,
        n_care=6,
        first="2012-04-01",
        last="2019-03-01",
        noise=0.02,
        dynamic={
            "population_based": lambda k: SLOPE * (k + 1),
            "care_home": lambda k: SLOPE * (k + 1),
        },
    )


def test_relative_period_quarters():
    got = relative_period(np.array([-4, -3, -1, 0, 2, 3, np.nan]), "quarter")
    assert np.array_equal(got[:-1], [-2, -1, -1, 0, 0, 1]) and np.isnan(got[-1])
    with pytest.raises(EstimationError):
        relative_period(np.array([1.0]), "week")


def test_rows_and_reference(dynamic_panel):
    res = estimate_event_study(
        dynamic_panel, OUT, scale="log", group="population_based", unit="quarter", leads=8, lags=11
    )
    assert list(res.columns) == list(schema.RESULT_COLUMNS)
    es = res[res.analysis == "event_study"]
    assert es["rel_time"].tolist() == list(range(-8, 12))
    assert es["window"].tolist() == [f"rel_{k}" for k in range(-8, 12)]
    ref = es[es.rel_time == -1].iloc[0]
    assert ref["estimate"] == 0 and np.isnan(ref["se"])
    assert "binned" in es[es.rel_time == -8].iloc[0]["note"]
    pt = res[res.analysis == "pretrend"]
    assert len(pt) == 1 and pt.iloc[0]["param"] == 7
    assert pt.iloc[0]["inference"] == "wild_bootstrap"  # the default for OLS scales


def test_recovers_planted_dynamic_effects(dynamic_panel):
    res = estimate_event_study(
        dynamic_panel,
        OUT,
        scale="log",
        group="population_based",
        unit="month",
        leads=24,
        lags=35,
        bin_ends=False,
    )
    es = res[(res.analysis == "event_study") & (res.rel_time != -1)].set_index("rel_time")
    truth = np.where(es.index >= 0, SLOPE * (es.index + 1), 0.0)
    z = (es["estimate"] - truth) / es["se"]
    assert (np.abs(z) < 4).all()
    # every coefficient shares the reference period's noise, so the average error is
    # of the order of one coefficient's SE, not SE / sqrt(#coefficients)
    post_err = (es["estimate"] - truth)[es.index >= 0].mean()
    assert abs(post_err) < 2 * es["se"].median()
    # the dynamic path is visibly recovered: slope of estimates over the post-period
    post = es[es.index >= 0]
    slope = np.polyfit(post.index.to_numpy(float), post["estimate"].to_numpy(), 1)[0]
    assert slope == pytest.approx(SLOPE, abs=0.0008)


def test_matches_statsmodels_dummies(dynamic_panel):
    small = dynamic_panel[
        dynamic_panel.area.isin([f"A{i:03d}" for i in list(range(15)) + list(range(60, 66))])
    ]
    res = estimate_event_study(
        small,
        OUT,
        scale="log",
        group="population_based",
        unit="quarter",
        leads=4,
        lags=4,
        bin_ends=True,
    )
    d = prepare(
        small, OUT, scale="log", groups=("population_based",), pre_months=None, post_months=None
    )
    f = d.frame
    k = np.clip(np.floor(f["rel"] / 3), -4, 4)
    cols = {}
    for p in [p for p in range(-4, 5) if p != -1]:
        cols[p] = ((k == p) & f["group"].eq("population_based")).astype(float).rename(f"k{p}")
    X = pd.concat(
        [
            *cols.values(),
            pd.get_dummies(f[["area"]].assign(t=f.t.astype(str)), drop_first=True, dtype=float),
        ],
        axis=1,
    )
    ref = sm.OLS(f["y"], sm.add_constant(X)).fit()
    es = res[(res.analysis == "event_study") & (res.rel_time != -1)].set_index("rel_time")
    for p in cols:
        assert es.loc[float(p), "estimate"] == pytest.approx(ref.params[f"k{p}"], abs=1e-8)


def test_pretrend_test_rejects_planted_pretrend():
    p = simulate(
        seed=32,
        n_control=60,
        n_pop=20,
        n_care=6,
        first="2012-04-01",
        last="2019-03-01",
        pre_trend=-0.002,
    )
    res = estimate_event_study(
        p, OUT, scale="log", group="population_based", unit="quarter", leads=8, lags=12
    )
    assert res[res.analysis == "pretrend"].iloc[0]["p_value"] < 0.01
    f_test = estimate_event_study(
        p,
        OUT,
        scale="log",
        group="population_based",
        unit="quarter",
        leads=8,
        lags=12,
        pretrend_test="cluster",
    )
    pt = f_test[f_test.analysis == "pretrend"].iloc[0]
    assert pt["p_value"] < 0.01 and pt["inference"] == "cluster" and "F(7" in pt["note"]


def test_pretrend_test_size_without_pretrend():
    pvals = []
    for seed in range(40, 60):
        p = simulate(
            seed=seed, n_control=40, n_pop=15, n_care=0, first="2012-04-01", last="2019-03-01"
        )
        res = estimate_event_study(
            p,
            OUT,
            scale="log",
            group="population_based",
            unit="quarter",
            leads=8,
            lags=12,
            n_boot=199,
            seed=seed,
        )
        pvals.append(res[res.analysis == "pretrend"].iloc[0]["p_value"])
    pvals = np.array(pvals)
    # 20 draws at the 5 % level: expect 1 rejection; 5 or more would be P < 0.003
    assert (pvals < 0.05).sum() <= 4
    assert 0.3 < pvals.mean() < 0.7  # roughly uniform under the null


def test_wild_bootstrap_event_study_and_errors(dynamic_panel):
    res = estimate_event_study(
        dynamic_panel,
        OUT,
        scale="log",
        group="care_home",
        unit="quarter",
        leads=4,
        lags=4,
        inference="wild_bootstrap",
        n_boot=199,
    )
    es = res[(res.analysis == "event_study") & (res.rel_time != -1)]
    assert set(es["inference"]) == {"wild_bootstrap"}
    assert (es["ci_low"] <= es["estimate"]).all() and (es["estimate"] <= es["ci_high"]).all()
    with pytest.raises(EstimationError, match="reference"):
        estimate_event_study(dynamic_panel, OUT, scale="log", leads=4, reference=-5)
    with pytest.raises(EstimationError, match="unit"):
        estimate_event_study(dynamic_panel, OUT, scale="log", unit="week")
    with pytest.raises(EstimationError, match="pretrend_test"):
        estimate_event_study(dynamic_panel, OUT, scale="log", pretrend_test="exact")


def test_poisson_event_study_recovers_dynamic_effects(dynamic_panel):
    res = estimate_event_study(
        dynamic_panel,
        OUT,
        scale="poisson",
        group="population_based",
        unit="quarter",
        leads=4,
        lags=11,
        bin_ends=False,
        inference="wild_bootstrap",
        n_boot=199,
    )
    es = res[(res.analysis == "event_study") & (res.rel_time >= 0)].set_index("rel_time")
    assert set(es["estimator"]) == {"event_study_poisson"}
    # quarter k averages months 3k..3k+2: effect SLOPE * (3k + 2)
    truth = SLOPE * (3 * es.index.to_numpy() + 2)
    inside = (es["ci_low"] <= truth) & (truth <= es["ci_high"])
    assert inside.mean() >= 0.75
    pt = res[res.analysis == "pretrend"].iloc[0]
    assert pt["inference"] == "wild_bootstrap" and pt["p_value"] > 0.01


def test_pretrend_wald_against_chi2_formula():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    V = A @ A.T + np.eye(4)
    b = rng.normal(size=4)
    F, q, p = pretrend_wald(b, V, 30)
    assert q == 4
    assert F == pytest.approx(float(b @ np.linalg.solve(V, b)) / 4)
    from scipy import stats

    assert p == pytest.approx(stats.f.sf(F, 4, 29))


def test_pretrend_on_synthetic_england_care_homes():
    """No pre-trend is planted in the synthetic England; with 6 care-home areas and 23
    monthly leads the F approximation rejects wildly, the bootstrap does not."""
    panel_mod = pytest.importorskip("vanguard.panel")
    try:
        panel = panel_mod.load_panel("synthetic")
    except FileNotFoundError:
        pytest.skip("embedded synthetic data not generated")
    boot = estimate_event_study(
        panel, OUT, scale="log", group="care_home", n_boot=399, inference="cluster"
    )
    f_test = estimate_event_study(
        panel, OUT, scale="log", group="care_home", pretrend_test="cluster", inference="cluster"
    )
    pb = boot[boot.analysis == "pretrend"].iloc[0]
    pf = f_test[f_test.analysis == "pretrend"].iloc[0]
    assert pb["estimate"] == pytest.approx(pf["estimate"])  # same statistic
    assert pb["p_value"] > 0.05
    assert pf["p_value"] < 1e-6


def test_default_pointwise_inference_follows_headline_rule(dynamic_panel):
    """6 care-home areas -> wild bootstrap intervals; 20 population-based -> cluster."""
    kw = dict(scale="log", unit="quarter", leads=2, lags=2, n_boot=199)
    care = estimate_event_study(dynamic_panel, OUT, group="care_home", **kw)
    pop = estimate_event_study(dynamic_panel, OUT, group="population_based", **kw)
    ce = care[(care.analysis == "event_study") & (care.rel_time != -1)]
    pe = pop[(pop.analysis == "event_study") & (pop.rel_time != -1)]
    assert set(ce["inference"]) == {"wild_bootstrap"}
    assert set(pe["inference"]) == {"cluster"}
    assert ce["note"].str.contains("6 treated areas -> wild cluster bootstrap").all()
    assert pe["note"].str.contains("20 treated areas -> cluster-robust").all()
    # bootstrap intervals are test inversions, not estimate +- t x se
    t_ci = ce["estimate"] + 2.0 * ce["se"]
    assert not np.allclose(ce["ci_high"], t_ci)
