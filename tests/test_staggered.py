"""Callaway-Sant'Anna wrapper: checked against the R ``did`` package's published
results on ``mpdta`` and against the synthetic truth table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vanguard import schema
from vanguard.did import staggered
from vanguard.errors import DataError, EstimationError

# Published by the R `did` package (Callaway & Sant'Anna), mpdta, outcome lemp, no
# covariates, never-treated controls, varying base period, analytic standard errors.
R_DID_ATT_GT = {
    (2004, 2004): -0.0105,
    (2004, 2005): -0.0704,
    (2004, 2006): -0.1373,
    (2004, 2007): -0.1008,
    (2006, 2004): 0.0065,
    (2006, 2005): -0.0028,
    (2006, 2006): -0.0046,
    (2006, 2007): -0.0412,
    (2007, 2004): 0.0305,
    (2007, 2005): -0.0027,
    (2007, 2006): -0.0311,
    (2007, 2007): -0.0261,
}
R_DID_AGGREGATIONS = {"simple": -0.0400, "dynamic": -0.0772, "group": -0.0310, "calendar": -0.0417}
R_DID_SIMPLE_SE = 0.012
R_DID_PRETEST_P = 0.17


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    moderndid = pytest.importorskip("moderndid")
    return moderndid.load_mpdta().to_pandas()


@pytest.fixture(scope="module")
def mpdta_results(mpdta) -> pd.DataFrame:
    return staggered.estimate_cs(
        mpdta,
        "lemp",
        scale="log",
        group="all",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
    )


def test_group_time_effects_match_r_did(mpdta_results):
    gt = mpdta_results[mpdta_results["analysis"] == "group_time"]
    assert len(gt) == len(R_DID_ATT_GT)
    for row in gt.itertuples():
        period = int(row.param + row.rel_time)
        assert round(row.estimate, 4) == pytest.approx(
            R_DID_ATT_GT[(int(row.param), period)], abs=1e-12
        ), (row.param, period)
    assert set(gt["estimator"]) == {"cs_never"}


def test_aggregations_match_r_did(mpdta_results):
    agg = mpdta_results[mpdta_results["analysis"] == "aggregation"].set_index("window")
    for name, value in R_DID_AGGREGATIONS.items():
        assert round(agg.at[name, "estimate"], 4) == pytest.approx(value, abs=1e-12), name
    assert agg.at["simple", "se"] == pytest.approx(R_DID_SIMPLE_SE, abs=5e-4)
    assert set(agg["inference"]) == {"analytic"}
    # confidence interval is the pointwise normal one
    row = agg.loc["simple"]
    assert row["ci_high"] - row["ci_low"] == pytest.approx(2 * 1.959964 * row["se"], rel=1e-5)


def test_pretest_matches_r_did(mpdta_results):
    pre = mpdta_results[mpdta_results["analysis"] == "pretrend"]
    assert len(pre) == 1
    # the chi2 p-value R reports is kept in the note; the reported one is bootstrapped
    assert f"would be {R_DID_PRETEST_P:.3g}" in pre["note"].iloc[0] or (
        "would be 0.16" in pre["note"].iloc[0]
    )
    assert pre["inference"].iloc[0] == "multiplier_bootstrap"
    assert 0 < pre["p_value"].iloc[0] <= 1
    assert pre["param"].iloc[0] == 5  # five pre-period ATT(g,t)
    assert pre[["pct", "pct_ci_low", "pct_ci_high"]].isna().all(axis=None)


def test_pretest_is_the_wald_test_on_influence_covariance(mpdta):
    """Independent recomputation of the Wald pre-test from the influence functions."""
    from scipy import stats

    fit = staggered.fit_cs(
        mpdta,
        "lemp",
        scale="log",
        group="all",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
        aggregations=(),
    )
    g, t = np.asarray(fit.att.groups), np.asarray(fit.att.times)
    pre = t < g
    inf = np.asarray(fit.att.influence_func)[:, pre]
    n = inf.shape[0]
    v = inf.T @ inf / n
    b = np.asarray(fit.att.att_gt)[pre]
    w = n * b @ np.linalg.solve(v, b)
    res = staggered.tidy_cs(fit)
    row = res[res["analysis"] == "pretrend"].iloc[0]
    assert row["estimate"] == pytest.approx(w, rel=1e-8)
    pt = fit.pretrend_test(n_boot=199, seed=1)
    assert pt["stat"] == pytest.approx(w, rel=1e-8)  # closed form = moderndid's statistic
    assert pt["p_chi2"] == pytest.approx(stats.chi2.sf(w, pre.sum()), rel=1e-6)


def test_window_average_of_event_times(mpdta):
    """A window is the plain mean of the dynamic effects it covers."""
    res = staggered.estimate_cs(
        mpdta,
        "lemp",
        scale="log",
        group="all",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
        windows={"e0_1": (0, 2), "e0_3": (0, 4)},
    )
    es = res[res["analysis"] == "event_study"].set_index("rel_time")["estimate"]
    main = res[res["analysis"] == "main"].set_index("window")
    assert main.at["e0_1", "estimate"] == pytest.approx(es.loc[[0.0, 1.0]].mean(), rel=1e-12)
    # e0_3 averages all post event times, exactly the dynamic aggregation's overall effect
    dyn = res[(res["analysis"] == "aggregation") & (res["window"] == "dynamic")].iloc[0]
    assert main.at["e0_3", "estimate"] == pytest.approx(dyn["estimate"], rel=1e-12)
    assert main.at["e0_3", "se"] == pytest.approx(dyn["se"], rel=1e-6)


def test_bootstrap_se_close_to_analytic_and_seeded(mpdta):
    kw = dict(
        scale="log",
        group="all",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
        aggregations=("simple",),
        bootstrap=True,
        n_boot=299,
    )
    a = staggered.estimate_cs(mpdta, "lemp", seed=1, **kw)
    b = staggered.estimate_cs(mpdta, "lemp", seed=1, **kw)
    pd.testing.assert_frame_equal(a, b)
    simple = a[a["window"] == "simple"].iloc[0]
    assert simple["inference"] == "multiplier_bootstrap"
    assert simple["se"] == pytest.approx(R_DID_SIMPLE_SE, rel=0.2)


def test_notyet_controls_labelled(mpdta):
    res = staggered.estimate_cs(
        mpdta,
        "lemp",
        scale="log",
        group="all",
        control="notyet",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
        aggregations=("simple",),
    )
    assert set(res["estimator"]) == {"cs_notyet"}
    assert np.isfinite(res["estimate"]).all()


def test_bad_inputs_raise(mpdta):
    with pytest.raises(DataError, match="column 'nope'"):
        staggered.estimate_cs(
            mpdta, "nope", id_col="countyreal", time_col="year", cohort_col="first.treat"
        )
    with pytest.raises(EstimationError, match="control"):
        staggered.estimate_cs(
            mpdta,
            "lemp",
            control="sometimes",
            id_col="countyreal",
            time_col="year",
            cohort_col="first.treat",
        )
    with pytest.raises(EstimationError, match="poisson"):
        staggered.estimate_cs(
            mpdta,
            "lemp",
            scale="poisson",
            id_col="countyreal",
            time_col="year",
            cohort_col="first.treat",
        )
    bad = mpdta.copy()
    bad.loc[5, "lemp"] = np.nan
    with pytest.raises(DataError, match="row 7"):
        staggered.estimate_cs(
            bad, "lemp", scale="log", id_col="countyreal", time_col="year", cohort_col="first.treat"
        )
    never = mpdta[mpdta["first.treat"] > 0]
    with pytest.raises(EstimationError, match="never-treated"):
        staggered.estimate_cs(
            never,
            "lemp",
            scale="log",
            id_col="countyreal",
            time_col="year",
            cohort_col="first.treat",
        )


# --- vanguard data ----------------------------------------------------------------------
def _monthly_sample(cohorts):
    months = np.arange(600, 624)  # two years of month indices
    rows = []
    for area, cohort in cohorts:
        rows += [{"id": area, "time": m, "cohort": cohort, "y": float(m)} for m in months]
    return staggered.EstimationSample(
        frame=pd.DataFrame(rows),
        outcome="y",
        scale="count",
        group="g",
        data_source="custom",
        unit="month",
        n_treated=sum(c > 0 for _, c in cohorts),
        n_control=sum(c == 0 for _, c in cohorts),
        cohort_labels={612: "2021-01", 614: "2021-03", 615: "2021-04"},
    )


def test_quarterly_blocks_align_with_first_start():
    q = staggered.to_quarters(_monthly_sample((("A", 612), ("B", 615), ("C", 0)))).frame
    a = q[q["id"] == "A"].set_index("time")
    b = q[q["id"] == "B"].set_index("time")
    # both starts sit on a block boundary, one quarter apart
    assert a.loc[a["cohort"].iloc[0], "y"] == pytest.approx(np.mean([612, 613, 614]))
    assert b.loc[b["cohort"].iloc[0], "y"] == pytest.approx(np.mean([615, 616, 617]))
    assert b["cohort"].iloc[0] == a["cohort"].iloc[0] + 1
    assert (q.loc[q["id"] == "C", "cohort"] == 0).all()
    assert q.groupby("id").size().eq(8).all()


def test_quarters_refused_for_cohorts_off_the_quarter_grid():
    """A cohort starting mid-quarter would have its event time shifted by 1-2 months."""
    with pytest.raises(EstimationError, match="'unit'.*2021-01, 2021-03.*unit='month'"):
        staggered.to_quarters(_monthly_sample((("A", 612), ("B", 614), ("C", 0))))


def _synthetic_panel():
    try:
        from vanguard.panel import load_panel

        return load_panel("synthetic")
    except (ImportError, FileNotFoundError, AttributeError) as exc:
        pytest.skip(f"synthetic panel not available: {exc}")


def _truth():
    from vanguard import config

    path = config.SYNTHETIC_DIR / "truth.csv"
    if not path.exists():
        pytest.skip("synthetic truth table not available")
    return pd.read_csv(path)


@pytest.mark.filterwarnings("ignore:.*pre-trend Wald test.*unreliable")
@pytest.mark.parametrize("group", [schema.POPULATION_BASED, schema.CARE_HOME])
def test_synthetic_truth_within_two_se(group):
    panel = _synthetic_panel()
    truth = _truth()
    outcome = "emergency_admissions"
    res = staggered.estimate_cs(
        panel,
        outcome,
        scale="rate",
        group=group,
        aggregations=("dynamic",),
        data_source="synthetic",
    )
    main = res[res["analysis"] == "main"].set_index("window")
    t = truth[
        (truth["group"] == group)
        & (truth["outcome"] == outcome)
        & truth["site"].isna()
        & (truth["scale"] == "rate")
    ].set_index("window")["truth"]
    assert set(schema.WINDOWS) <= set(main.index)
    # The headline window within 2 SE; every window within the Bonferroni bound for the
    # 8 window x group comparisons (z = 2.73), so the test fails by chance < 5% of the time.
    z = {w: (main.at[w, "estimate"] - t[w]) / main.at[w, "se"] for w in schema.WINDOWS}
    assert abs(z["years_1_3"]) <= 2, z
    assert all(abs(v) <= 2.73 for v in z.values()), z


def test_monthly_pretest_is_bootstrapped_with_few_treated_areas():
    """23 monthly pre-period effects for 6 care-home areas: the chi2 reference gives
    p ~ 1e-48 on the synthetic data, which has no planted pre-trend; the bootstrap
    p-value of the same statistic does not reject."""
    panel = _synthetic_panel()
    res = staggered.estimate_cs(
        panel,
        "emergency_admissions",
        group=schema.CARE_HOME,
        unit="month",
        aggregations=("dynamic",),
        n_boot=199,
    )
    pre = res[res["analysis"] == "pretrend"].iloc[0]
    assert pre["param"] == 23 and pre["inference"] == "multiplier_bootstrap"
    assert pre["p_value"] > 0.05
    chi2_p = float(pre["note"].split("would be ")[1].split(" ")[0])
    assert chi2_p < 1e-6
    res = staggered.estimate_cs(
        panel, "emergency_admissions", group=schema.POPULATION_BASED, unit="quarter",
        aggregations=("dynamic",)
    )
    pre = res[res["analysis"] == "pretrend"].iloc[0]
    assert pre["param"] == 7 and 0 < pre["p_value"] <= 1
    assert "quarter" in pre["note"]


def test_pretrend_bootstrap_rejects_a_planted_pretrend():
    """Power check: a linear pre-trend in the treated areas is detected."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(60):
        cohort = 9 if i < 15 else 0
        a = rng.normal()
        for t in range(1, 13):
            y = a + 0.1 * t + rng.normal(scale=0.3)
            if cohort and t < cohort:
                y += 0.25 * t  # diverging before the start
            rows.append((i, t, cohort, y))
    df = pd.DataFrame(rows, columns=["id", "t", "c", "y"])
    fit = staggered.fit_cs(
        df,
        "y",
        scale="count",
        group="all",
        id_col="id",
        time_col="t",
        cohort_col="c",
        aggregations=(),
    )
    pt = fit.pretrend_test(n_boot=199)
    assert pt["n_pre"] == 7 and pt["p_value"] < 0.01


@pytest.mark.slow
def test_no_systematic_bias_across_synthetic_draws():
    """Over independent synthetic Englands the z-scores of the years 1-3 effect centre on
    zero (the embedded draw alone cannot show this)."""
    try:
        from vanguard import synthetic
    except ImportError as exc:
        pytest.skip(f"synthetic generator not available: {exc}")
    z = []
    for seed in range(1, 5):
        data = synthetic.generate(seed=seed)
        truth = data.truth
        t = truth[
            (truth["group"] == schema.POPULATION_BASED)
            & truth["site"].fillna("").eq("")
            & (truth["outcome"] == "emergency_admissions")
            & (truth["scale"] == "rate")
            & (truth["window"] == "years_1_3")
        ]["truth"].iloc[0]
        res = staggered.estimate_cs(
            data.panel,
            "emergency_admissions",
            group=schema.POPULATION_BASED,
            aggregations=("dynamic",),
        )
        row = res[(res["analysis"] == "main") & (res["window"] == "years_1_3")].iloc[0]
        z.append((row["estimate"] - t) / row["se"])
    assert abs(np.mean(z)) < 1.5, z
    assert max(abs(v) for v in z) < 3.5, z


def test_windows_by_name_or_range():
    assert staggered.resolve_windows(("year_1", "year_3")) == {
        "year_1": schema.WINDOWS["year_1"],
        "year_3": schema.WINDOWS["year_3"],
    }
    assert staggered.resolve_windows({"a": (0, 6)}) == {"a": (0, 6)}
    with pytest.raises(EstimationError, match="unknown window"):
        staggered.resolve_windows(["year_9"])
    with pytest.raises(EstimationError, match="lo < hi"):
        staggered.resolve_windows({"a": (6, 6)})


def _pretrend_p_by_draw(fit, n_boot: int, seed: int) -> float:
    """The bootstrap p-value of the pre-trend test, one draw at a time: each draw's
    influence functions written out and its covariance pseudo-inverted."""
    from vanguard.did.inference import bootstrap_weights

    g_all = np.asarray(fit.att.groups, float) - fit.shift
    t_all = np.asarray(fit.att.times, float) - fit.shift
    cells = [
        (int(g), int(t))
        for g, t in zip(g_all, t_all, strict=True)
        if t < g and not (fit.base_period == "universal" and t == g - 1)
    ]
    f = fit.sample.frame
    wide = f.pivot(index="id", columns="time", values="y").sort_index()
    cohort = f.groupby("id")["cohort"].first().reindex(wide.index).to_numpy()
    Y = wide.to_numpy(float)
    col = {int(t): j for j, t in enumerate(wide.columns)}
    n, q = len(Y), len(cells)
    dY = np.column_stack(
        [
            Y[:, col[t]] - Y[:, col[t - 1 if fit.base_period == "varying" else g - 1]]
            for g, t in cells
        ]
    )
    in_g = np.column_stack([cohort == g for g, _ in cells])
    in_c = np.repeat((cohort == 0)[:, None], q, axis=1)

    def wald(d):
        m_g = (in_g * d).sum(0) / in_g.sum(0)
        m_c = (in_c * d).sum(0) / in_c.sum(0)
        psi = in_g * (d - m_g) * (n / in_g.sum(0)) - in_c * (d - m_c) * (n / in_c.sum(0))
        a = m_g - m_c
        return n * a @ np.linalg.pinv(psi.T @ psi / n, hermitian=True) @ a

    w = wald(dY)
    pool = in_g | in_c
    e = np.where(pool, dY - (dY * pool).sum(0) / pool.sum(0), 0.0)
    v = bootstrap_weights(n, n_boot, np.random.default_rng(seed), "webb")
    draws = np.array([wald(e * v[:, [b]]) for b in range(n_boot)])
    return float(np.mean(draws >= w * (1 - 1e-12)))


@pytest.mark.parametrize("base_period", ["varying", "universal"])
def test_pretrend_bootstrap_equals_the_draw_by_draw_computation(mpdta, base_period):
    fit = staggered.fit_cs(
        mpdta,
        "lemp",
        scale="log",
        group="all",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
        base_period=base_period,
        aggregations=(),
    )
    pt = fit.pretrend_test(n_boot=299, seed=7)
    assert 0 < pt["p_value"] < 1
    assert pt["p_value"] == _pretrend_p_by_draw(fit, 299, 7)


def test_monthly_pretrend_bootstrap_equals_the_draw_by_draw_computation():
    fit = staggered.fit_cs(
        _synthetic_panel(), "emergency_admissions", group=schema.POPULATION_BASED, unit="month"
    )
    pt = fit.pretrend_test(n_boot=199, seed=3)
    assert pt["df"] == pt["n_pre"]  # full rank: the Cholesky route
    assert pt["p_value"] == _pretrend_p_by_draw(fit, 199, 3)
