"""Imputation (Borusyak-Jaravel-Spiess) estimator: planted truth, equivalence with
extended TWFE, standard-error calibration by simulation, synthetic truth table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vanguard import schema
from vanguard.did import imputation, staggered
from vanguard.errors import EstimationError

GENERIC = dict(id_col="id", time_col="time", cohort_col="cohort")


def simulate(
    seed: int,
    n_units: int = 60,
    n_periods: int = 16,
    cohorts: tuple[int, ...] = (6, 11),
    effects: tuple[float, ...] = (1.0, 1.0),
    slope: float = 0.0,
    pretrend: float = 0.0,
    sigma: float = 1.0,
    share_never: float = 1 / 3,
) -> pd.DataFrame:
    """Staggered panel with unit and period effects and planted treatment effects.

    Cohort k's effect at event time e >= 0 is ``effects[k] + slope * e``; ``pretrend``
    adds a linear trend in event time before the start to treated units.
    """
    rng = np.random.default_rng(seed)
    n_never = int(round(n_units * share_never))
    cohort = np.concatenate([np.zeros(n_never, int), rng.choice(cohorts, size=n_units - n_never)])
    unit_fe = rng.normal(0, 2, n_units)
    time_fe = np.cumsum(rng.normal(0.2, 0.5, n_periods))
    ids, times = np.meshgrid(np.arange(n_units), np.arange(1, n_periods + 1), indexing="ij")
    c = cohort[ids]
    rel = times - c
    y = unit_fe[ids] + time_fe[times - 1] + rng.normal(0, sigma, ids.shape)
    eff = np.zeros(ids.shape)
    for k, g in enumerate(cohorts):
        eff += np.where((c == g) & (rel >= 0), effects[k] + slope * rel, 0.0)
    y += eff + np.where((c > 0) & (rel < 0), pretrend * rel, 0.0)
    return pd.DataFrame(
        {
            "id": ids.ravel(),
            "time": times.ravel(),
            "cohort": c.ravel(),
            "y": y.ravel(),
            "effect": eff.ravel(),
        }
    )


def _fit(df: pd.DataFrame) -> imputation.ImputationFit:
    s = staggered.estimation_sample(df, "y", scale="count", group="sim", **GENERIC)
    return imputation.fit_imputation(s)


def test_exact_without_noise():
    """With no noise the imputed effects equal the planted ones to machine precision."""
    df = simulate(1, sigma=0.0, effects=(2.0, -1.0), slope=0.3)
    fit = _fit(df)
    planted = df.set_index(["id", "time"])["effect"]
    got = fit.tau.set_index(["id", "time"])["tau"]
    np.testing.assert_allclose(got.to_numpy(), planted.loc[got.index].to_numpy(), atol=1e-9)


def test_recovers_heterogeneous_staggered_effect_where_twfe_fails():
    """Effects that grow with time since start and differ by cohort: the imputation
    estimate is unbiased for the average effect on treated area-months, static TWFE
    (treated dummy with unit and period FE) is not."""
    pf = pytest.importorskip("pyfixest")
    imp_err, twfe_err = [], []
    for seed in range(20):
        df = simulate(
            seed,
            n_units=60,
            n_periods=16,
            cohorts=(4, 10),
            effects=(3.0, 0.5),
            slope=0.4,
            sigma=0.5,
        )
        df["d"] = ((df["cohort"] > 0) & (df["time"] >= df["cohort"])).astype(float)
        truth = df.loc[df["d"] == 1, "effect"].mean()
        fit = _fit(df)
        est, _ = fit.effect(np.ones(len(fit.tau), dtype=bool))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tw = pf.feols("y ~ d | id + time", data=df).coef()["d"]
        imp_err.append(est - truth)
        twfe_err.append(tw - truth)
    assert abs(np.mean(imp_err)) < 0.05
    assert abs(np.mean(twfe_err)) > 0.5  # TWFE's forbidden comparisons bias it downwards
    assert np.mean(twfe_err) < 0


def test_equals_extended_twfe_on_mpdta():
    """Wooldridge (2021): with not-yet-treated controls and no covariates, the extended
    TWFE cohort x period effects equal the imputation estimates."""
    md = pytest.importorskip("moderndid")
    data = md.load_mpdta().to_pandas()
    s = staggered.estimation_sample(
        data,
        "lemp",
        scale="log",
        group="all",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
    )
    fit = imputation.fit_imputation(s)
    mine = fit.tau.groupby(["cohort", "time"])["tau"].mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        et = md.etwfe(
            data=data,
            yname="lemp",
            tname="year",
            gname="first.treat",
            idname="countyreal",
            cgroup="notyet",
        )
        simple = md.emfx(et, type="simple")
    theirs = pd.Series(
        np.asarray(et.coefficients),
        index=pd.MultiIndex.from_tuples([(int(g), int(t)) for g, t in et.gt_pairs]),
    )
    assert len(theirs) == len(mine) == 7
    np.testing.assert_allclose(mine.loc[theirs.index].to_numpy(), theirs.to_numpy(), atol=1e-8)
    res = imputation.estimate_imputation(
        data,
        "lemp",
        scale="log",
        groups=("all",),
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
        n_leads=None,
    )
    agg = res[res["window"] == "simple"].iloc[0]
    assert agg["estimate"] == pytest.approx(simple.overall_att, abs=1e-8)
    # BJS variance is conservative but close to ETWFE's area-clustered SE here
    assert agg["se"] == pytest.approx(simple.overall_se, rel=0.1)
    assert agg["se"] >= simple.overall_se * 0.98


def test_bjs_standard_error_matches_simulation_spread():
    """Homogeneous effects: the BJS variance is exact, so the mean SE matches the Monte
    Carlo SD of the estimates and 95% intervals cover the truth about 95% of the time."""
    n_rep = 200
    est, se = [], []
    for seed in range(n_rep):
        df = simulate(
            1000 + seed, n_units=40, n_periods=10, cohorts=(4, 7), effects=(1.0, 1.0), sigma=1.0
        )
        e, s = _fit(df).effect(
            np.ones(int(((df["cohort"] > 0) & (df["time"] >= df["cohort"])).sum()), bool)
        )
        est.append(e)
        se.append(s)
    est, se = np.asarray(est), np.asarray(se)
    sd = est.std(ddof=1)
    assert np.mean(se) == pytest.approx(sd, rel=0.15)
    cover = np.mean(np.abs(est - 1.0) <= 1.96 * se)
    assert 0.89 <= cover <= 0.99


def test_windows_event_times_and_pretrend_rows():
    df = simulate(7, n_units=90, n_periods=20, cohorts=(9,), effects=(2.0,), slope=0.0, sigma=0.5)
    res = imputation.estimate_imputation(
        df,
        "y",
        scale="count",
        groups=("sim",),
        windows={"first": (0, 4), "later": (4, 12)},
        n_leads=4,
        **GENERIC,
    )
    assert set(res["estimator"]) == {"imputation"}
    main = res[res["analysis"] == "main"].set_index("window")
    for w in ("first", "later"):
        assert abs(main.at[w, "estimate"] - 2.0) < 2.5 * main.at[w, "se"]
    es = res[res["analysis"] == "event_study"]
    assert sorted(es["rel_time"]) == list(range(-4, 12))
    pre = res[res["analysis"] == "pretrend"].iloc[0]
    assert pre["param"] == 4
    assert pre["p_value"] > 0.001


def test_pretrend_test_detects_planted_pretrend():
    df = simulate(
        3, n_units=90, n_periods=20, cohorts=(12,), effects=(0.0,), pretrend=0.4, sigma=0.5
    )
    s = staggered.estimation_sample(df, "y", scale="count", group="sim", **GENERIC)
    pt = imputation.pretrend_test(s, n_leads=6)
    assert pt["p_value"] < 1e-4
    leads = pt["leads"].set_index("rel")["estimate"]
    # leads measured against months before the lead window: closer to start = higher
    assert leads.loc[-1] > leads.loc[-6]


def test_unidentified_designs_raise():
    df = simulate(5)
    df.loc[df["id"] == df.loc[df["cohort"] > 0, "id"].iloc[0], "cohort"] = 1  # treated always
    with pytest.raises(EstimationError, match="no untreated period"):
        _fit(df)
    df = simulate(5, share_never=0.0, cohorts=(6,))
    with pytest.raises(EstimationError, match="never-treated"):
        _fit(df)


def test_pre_months_limits_fitting_sample():
    df = simulate(11, n_units=60, n_periods=20, cohorts=(12,), effects=(1.0,))
    full = imputation.estimate_imputation(
        df, "y", scale="count", groups=("sim",), n_leads=None, **GENERIC
    )
    short = imputation.estimate_imputation(
        df, "y", scale="count", groups=("sim",), pre_months=3, n_leads=None, **GENERIC
    )
    assert short["n_obs"].iloc[0] == full["n_obs"].iloc[0] - 60 * 8
    assert short["estimate"].iloc[0] != pytest.approx(full["estimate"].iloc[0], abs=1e-12)


# --- synthetic England ---------------------------------------------------------------------
@pytest.mark.parametrize("group", [schema.POPULATION_BASED, schema.CARE_HOME])
def test_synthetic_truth_within_two_se(group):
    try:
        from vanguard.panel import load_panel

        panel = load_panel("synthetic")
    except (ImportError, FileNotFoundError, AttributeError) as exc:
        pytest.skip(f"synthetic panel not available: {exc}")
    from vanguard import config

    truth = pd.read_csv(config.SYNTHETIC_DIR / "truth.csv")
    outcome = "emergency_admissions"
    res = imputation.estimate_imputation(
        panel, outcome, scale="rate", groups=(group,), n_leads=None, data_source="synthetic"
    )
    main = res[res["analysis"] == "main"].set_index("window")
    t = truth[
        (truth["group"] == group)
        & (truth["outcome"] == outcome)
        & truth["site"].isna()
        & (truth["scale"] == "rate")
    ].set_index("window")["truth"]
    # The headline window within 2 SE; every window within the Bonferroni bound for the
    # 8 window x group comparisons (z = 2.73), so the test fails by chance < 5% of the time.
    z = {w: (main.at[w, "estimate"] - t[w]) / main.at[w, "se"] for w in schema.WINDOWS}
    assert abs(z["years_1_3"]) <= 2, z
    assert all(abs(v) <= 2.73 for v in z.values()), z


@pytest.mark.slow
def test_pretrend_tests_keep_their_size_on_synthetic_englands():
    """No pre-trend is planted. With 6 care-home areas the F approximation of the BJS
    lead test (12 leads) and the chi2 reference of the Callaway-Sant'Anna Wald test
    (7 quarterly pre-periods) reject in nearly every draw; the bootstrap p-values must
    reject about 5% of the time (here: at most 2 of 8 draws, per test and group)."""
    from vanguard import synthetic
    from vanguard.did.staggered import estimation_sample, fit_cs

    rejections = {}
    for seed in range(8):
        data = synthetic.generate(
            seed=2000 + seed,
            effects=synthetic.EffectSpec.none(),
            start="2013-04",
            end="2018-03",
        )
        for g in (schema.POPULATION_BASED, schema.CARE_HOME):
            s = estimation_sample(data.panel, "emergency_admissions", scale="rate", group=g)
            p_imp = imputation.pretrend_test(s, n_leads=12, n_boot=199, seed=seed)["p_value"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fit_cs(data.panel, "emergency_admissions", group=g, aggregations=())
            p_cs = fit.pretrend_test(n_boot=199, seed=seed)["p_value"]
            for name, p in (("imputation", p_imp), ("cs", p_cs)):
                rejections[(name, g)] = rejections.get((name, g), 0) + int(p < 0.05)
    assert all(n <= 2 for n in rejections.values()), rejections
