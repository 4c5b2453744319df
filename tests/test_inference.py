"""Tests of vanguard.did.inference: cluster-robust variance, the restricted wild cluster
bootstrap (against a brute-force loop), randomisation inference and the headline rule."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from did_sim import simulate

from vanguard.did import inference as inf
from vanguard.did.design import prepare
from vanguard.did.twfe import add_window_dummies, fit_fixest
from vanguard.errors import EstimationError

OUT = "emergency_admissions"


@pytest.fixture(scope="module")
def setup():
    p = simulate(seed=8, n_control=14, n_pop=6, n_care=3)
    d = prepare(p, OUT, scale="log")
    frame, cols = add_window_dummies(d, ("year_1", "year_2", "year_3"))
    regs = list(cols.values())
    return d, frame, regs


def test_headline_rule():
    assert inf.headline_inference(6)[0] == "wild_bootstrap"
    assert inf.headline_inference(9)[0] == "wild_bootstrap"
    assert inf.headline_inference(10)[0] == "cluster"
    assert inf.headline_inference(23)[0] == "cluster"
    assert "fewer than 10" in inf.headline_inference(23)[1]
    with pytest.raises(EstimationError):
        inf.headline_inference(0)


def test_residualised_cluster_vcov_matches_pyfixest(setup):
    _, frame, regs = setup
    r = inf.residualise(frame, "y", regs)
    beta, vcov = inf.cluster_vcov(r)
    fit = fit_fixest(frame, regs, "log")
    assert np.allclose(beta, fit.coef()[regs].to_numpy(), atol=1e-9)
    assert np.allclose(np.sqrt(np.diag(vcov)), fit.se()[regs].to_numpy(), rtol=1e-6)


def test_balanced_closed_form_demeaning_matches_iterative(setup):
    _, frame, regs = setup
    r_fast = inf.residualise(frame, "y", regs)
    # drop one row: no longer balanced, so the iterative path is used
    r_iter = inf.residualise(frame.iloc[1:], "y", regs)
    assert r_fast.n == len(frame) and r_iter.n == len(frame) - 1
    # rebuild the balanced case through the iterative algorithm for comparison
    from pyfixest.estimation import demean

    codes = np.column_stack([pd.factorize(frame[c])[0] for c in ("area", "t")]).astype(np.uint64)
    data = frame[["y", *regs]].to_numpy(float)
    ref, ok = demean(data, codes, np.ones(len(frame)), tol=1e-12, maxiter=100_000)
    assert ok
    assert np.allclose(r_fast.y, ref[:, 0], atol=1e-9)
    assert np.allclose(r_fast.X, ref[:, 1:], atol=1e-9)


def _brute_force_t(r: inf.Residualised, k: int, b0: float, V: np.ndarray) -> np.ndarray:
    """Restricted wild cluster bootstrap, one explicit regression per draw."""
    X, y = r.X, r.y
    others = [j for j in range(X.shape[1]) if j != k]
    y0 = y - b0 * X[:, k]
    br = np.linalg.lstsq(X[:, others], y0, rcond=None)[0]
    fitted = b0 * X[:, k] + X[:, others] @ br
    u_r = y0 - X[:, others] @ br
    out = np.empty(V.shape[1])
    for b in range(V.shape[1]):
        # a full refit: the fixed effects are projected out of y* again
        ystar = inf._demean((fitted + u_r * V[r.cluster, b])[:, None], r.fe_codes)[:, 0]
        bstar = np.linalg.lstsq(X, ystar, rcond=None)[0]
        ustar = ystar - X @ bstar
        A_inv = np.linalg.inv(X.T @ X)
        S = np.zeros((r.G, X.shape[1]))
        np.add.at(S, r.cluster, X * ustar[:, None])
        vc = r.ssc * A_inv @ S.T @ S @ A_inv
        out[b] = (bstar[k] - b0) / np.sqrt(vc[k, k])
    return out


@pytest.mark.parametrize("b0", [0.0, -0.03, 0.4])
@pytest.mark.parametrize("drop", [0, 7])
def test_vectorised_wild_bootstrap_equals_brute_force(setup, b0, drop):
    _, frame, regs = setup
    # drop > 0: an unbalanced panel (iterative demeaning, fixed effects not orthogonal)
    r = inf.residualise(frame.iloc[drop:], "y", regs)
    rng = np.random.default_rng(3)
    V = inf.bootstrap_weights(r.G, 40, rng, "webb")
    for k in (0, 4):
        fast = inf._WCR(r, k, V).t_boot(b0)
        slow = _brute_force_t(r, k, b0, V)
        assert np.allclose(fast, slow, rtol=1e-6, atol=1e-8)
        # without the refit of the fixed effects the draws differ (the old shortcut)
        r_old = inf.Residualised(r.y, r.X, r.names, r.cluster, r.G, r.df_k)
        assert not np.allclose(inf._WCR(r_old, k, V).t_boot(b0), slow, rtol=1e-4)


def test_webb_weights_moments():
    v = inf.bootstrap_weights(50, 4000, np.random.default_rng(1), "webb")
    assert abs(v.mean()) < 0.01 and abs(v.var() - 1) < 0.01
    assert set(np.round(np.unique(v) ** 2, 10)) == {0.5, 1.0, 1.5}
    with pytest.raises(EstimationError):
        inf.bootstrap_weights(5, 5, np.random.default_rng(1), "normal")


def test_wild_bootstrap_interval_is_test_inversion(setup):
    _, frame, regs = setup
    r = inf.residualise(frame, "y", regs)
    res = inf.wild_cluster_bootstrap(r, regs[3], n_boot=399, seed=4)
    assert res.ci_low < res.estimate < res.ci_high
    again = inf.wild_cluster_bootstrap(r, regs[3], n_boot=399, seed=4)
    assert (res.p_value, res.ci_low, res.ci_high) == (again.p_value, again.ci_low, again.ci_high)
    V = inf.bootstrap_weights(r.G, 399, np.random.default_rng(4), "webb")
    wcr = inf._WCR(r, 3, V)
    width = res.ci_high - res.ci_low
    # just inside the interval the null is not rejected, just outside it is
    assert wcr.p_value(res.ci_low + 0.02 * width) >= 0.05
    assert wcr.p_value(res.ci_high - 0.02 * width) >= 0.05
    assert wcr.p_value(res.ci_low - 0.02 * width) < 0.05
    assert wcr.p_value(res.ci_high + 0.02 * width) < 0.05
    assert wcr.p_value(res.estimate) == 1.0


def test_wild_bootstrap_rejects_a_large_effect_and_not_a_null():
    eff = {"population_based": (0, 0, 0), "care_home": (-0.08, -0.08, -0.08)}
    p = simulate(seed=9, n_control=40, n_pop=4, n_care=5, effects=eff, noise=0.02)
    d = prepare(p, OUT, scale="log")
    frame, cols = add_window_dummies(d, ("years_1_3",))
    r = inf.residualise(frame, "y", list(cols.values()))
    big = inf.wild_cluster_bootstrap(r, cols[("care_home", "years_1_3")], n_boot=399, seed=1)
    assert big.p_value < 0.01
    assert big.ci_low <= -0.08 <= big.ci_high
    null = inf.wild_cluster_bootstrap(
        r, cols[("population_based", "years_1_3")], n_boot=399, seed=1
    )
    assert null.p_value > 0.01


def test_randomisation_inference_recovers_effect_and_is_seeded():
    eff = {"population_based": (-0.1, -0.1, -0.1), "care_home": (0, 0, 0)}
    p = simulate(seed=12, n_control=25, n_pop=6, n_care=3, effects=eff, noise=0.02)
    d = prepare(p, OUT, scale="log")
    res = inf.randomisation_inference(d, "population_based", "years_1_3", n_perm=199, seed=2)
    assert res.p_value == pytest.approx(1 / 200)
    assert res.ci_low <= -0.1 <= res.ci_high
    assert res.ci_high < 0
    again = inf.randomisation_inference(d, "population_based", "years_1_3", n_perm=199, seed=2)
    assert (again.ci_low, again.ci_high) == (res.ci_low, res.ci_high)
    null = inf.randomisation_inference(d, "care_home", "years_1_3", n_perm=199, seed=2)
    assert null.p_value > 0.05


def test_randomisation_draws_keep_group_size_and_starts():
    pool = [f"A{i}" for i in range(10)]
    starts = np.array([540, 540, 544])
    draws = inf.randomisation_draws(pool, starts, 50, np.random.default_rng(0))
    assert len(draws) == 50
    for dr in draws:
        assert len(dr) == 3 and set(dr) <= set(pool)
        assert sorted(dr.values()) == [540, 540, 544]
    assert len({tuple(sorted(dr)) for dr in draws}) > 10


def test_randomisation_warns_when_treated_areas_are_noisier():
    p = simulate(seed=13, n_control=25, n_pop=6, n_care=3, treated_noise=3.0, noise=0.05)
    d = prepare(p, OUT, scale="log")
    with pytest.warns(UserWarning, match="noisier"):
        res = inf.randomisation_inference(d, "population_based", "years_1_3", n_perm=19)
    assert res.variance_ratio > 1.5
    quiet = simulate(seed=13, n_control=25, n_pop=6, n_care=3, noise=0.05)
    d = prepare(quiet, OUT, scale="log")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = inf.randomisation_inference(d, "population_based", "years_1_3", n_perm=19)
    assert res.variance_ratio < 1.5


def test_wild_bootstrap_wald_equals_brute_force(setup):
    _, frame, regs = setup
    r = inf.residualise(frame, "y", regs)
    tested = [0, 3, 5]
    W, q, p = inf.wild_bootstrap_wald(r, [regs[j] for j in tested], n_boot=60, seed=7, chunk=25)
    X, y = r.X, r.y
    others = [j for j in range(X.shape[1]) if j not in tested]
    beta, vcov = inf.cluster_vcov(r)
    b = beta[tested]
    assert W == pytest.approx(float(b @ np.linalg.solve(vcov[np.ix_(tested, tested)], b)))
    assert q == 3
    bo = np.linalg.lstsq(X[:, others], y, rcond=None)[0]
    fitted, u = X[:, others] @ bo, y - X[:, others] @ bo
    V = inf.bootstrap_weights(r.G, 60, np.random.default_rng(7), "webb")
    W_star = []
    for k in range(60):
        ystar = inf._demean((fitted + u * V[r.cluster, k])[:, None], r.fe_codes)[:, 0]
        rs = inf.Residualised(ystar, X, r.names, r.cluster, r.G, r.df_k)
        bs, vs = inf.cluster_vcov(rs)
        W_star.append(float(bs[tested] @ np.linalg.solve(vs[np.ix_(tested, tested)], bs[tested])))
    assert p == pytest.approx(np.mean(np.array(W_star) >= W))


def test_poisson_linearisation_reproduces_fepois():
    p = simulate(seed=2, n_control=25, n_pop=8, n_care=4)
    d = prepare(p, OUT, scale="poisson")
    frame, cols = add_window_dummies(d, ("year_1", "year_2", "year_3"))
    regs = list(cols.values())
    fit = fit_fixest(frame, regs, "poisson")
    r = inf.residualise_poisson(frame, regs, fit._Y_hat_response)
    beta, vcov = inf.cluster_vcov(r)
    assert np.allclose(beta, fit.coef()[regs].to_numpy(), atol=1e-8)
    assert np.allclose(np.sqrt(np.diag(vcov)), fit.se()[regs].to_numpy(), rtol=1e-6)
    with pytest.raises(EstimationError):
        inf.residualise_poisson(frame, regs, fit._Y_hat_response[1:])


def test_randomisation_estimates_equal_pyfixest_refits():
    p = simulate(seed=14, n_control=20, n_pop=5, n_care=3)
    d = prepare(p, OUT, scale="log")
    res = inf.randomisation_inference(d, "care_home", "years_1_3", n_perm=4, seed=9)
    f = d.frame
    names = pd.factorize(f["area"])[1]
    per = f.groupby("area", sort=False)[["group", "cohort"]].first().loc[list(names)]
    care = per["group"].eq("care_home").to_numpy()
    pool = list(names[care | per["group"].eq("control").to_numpy()])
    draws = inf.randomisation_draws(
        pool, per["cohort"].to_numpy()[care], 4, np.random.default_rng(9)
    )
    for draw, b_perm in zip(draws, res.perm_estimates, strict=True):
        g = f.copy()
        start = g["area"].map(draw)
        g["dc"] = (start.notna() & (g["t"] - start.fillna(0) >= 0)).astype(float)
        g["dp"] = g["treated_population_based"].astype(float)
        ref = fit_fixest(g, ["dc", "dp"], "log").coef()["dc"]
        assert b_perm == pytest.approx(ref, abs=1e-9)


def _ri_pair(d, group, windows, **kw):
    """The same permutations estimated by the residualised form and by refitting."""
    fast = inf.randomisation_inference(d, group, None, windows=windows, method="fwl", **kw)
    slow = inf.randomisation_inference(d, group, None, windows=windows, method="refit", **kw)
    return fast, slow


def _assert_same_inference(fast, slow):
    assert set(fast) == set(slow)
    for w in slow:
        f, s = fast[w], slow[w]
        assert f.n_perm == s.n_perm
        assert f.n_refit == 0 and s.n_refit == s.n_perm  # each path really ran
        np.testing.assert_allclose(f.perm_estimates, s.perm_estimates, rtol=1e-9, atol=1e-12)
        assert f.p_value == s.p_value
        assert f.estimate == s.estimate
        assert f.ci_low == pytest.approx(s.ci_low, rel=1e-9, abs=1e-12)
        assert f.ci_high == pytest.approx(s.ci_high, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("windows", [("years_1_3",), ("year_1", "year_2", "year_3"), ("year_2",)])
def test_randomisation_fwl_equals_refit_with_another_group(windows):
    # two groups in the design: the other group's exposure is partialled out once; the
    # year_2-only window leaves a gap column (year 1) that must be handled like a refit
    eff = {"population_based": (-0.03, -0.05, -0.08), "care_home": (-0.05, -0.05, -0.05)}
    p = simulate(seed=21, n_control=18, n_pop=5, n_care=3, effects=eff)
    d = prepare(p, OUT, scale="log")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast, slow = _ri_pair(d, "care_home", windows, n_perm=60, seed=4)
    _assert_same_inference(fast, slow)
    assert len({round(float(x), 12) for x in fast[next(iter(fast))].perm_estimates}) > 30


def test_randomisation_fwl_equals_refit_on_an_unbalanced_panel():
    # rows missing at random: the balanced shortcut does not apply, each draw is demeaned
    p = simulate(seed=22, n_control=16, n_pop=5, n_care=0)
    rng = np.random.default_rng(0)
    p = p.drop(index=rng.choice(p.index, size=40, replace=False)).reset_index(drop=True)
    d = prepare(p, OUT, scale="log", groups=("population_based",), balanced=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast, slow = _ri_pair(
            d, "population_based", ("year_1", "year_2", "year_3"), n_perm=40, seed=5
        )
    _assert_same_inference(fast, slow)


def test_randomisation_fwl_refuses_a_changing_sample_and_auto_refits():
    # uec starts four months after the others: a control given the April start would
    # lose its months beyond the post-period, so the sample changes between draws
    p = simulate(seed=23, n_control=16, n_pop=4, n_care=0, n_uec=3, last="2019-03-01")
    d = prepare(p, OUT, scale="log", groups=("population_based", "uec"))
    with pytest.raises(EstimationError, match="sample changes"):
        inf.randomisation_inference(d, "population_based", "years_1_3", n_perm=9, method="fwl")
    auto = inf.randomisation_inference(d, "population_based", "years_1_3", n_perm=9, seed=1)
    refit = inf.randomisation_inference(
        d, "population_based", "years_1_3", n_perm=9, seed=1, method="refit"
    )
    np.testing.assert_array_equal(auto.perm_estimates, refit.perm_estimates)
    assert auto.n_refit == 9
    with pytest.raises(EstimationError, match="method"):
        inf.randomisation_inference(d, "population_based", "years_1_3", method="fast")


def test_cluster_sums_equal_add_at_to_the_bit():
    rng = np.random.default_rng(5)
    cluster = rng.integers(0, 9, size=400)
    values = rng.normal(size=(400, 3, 2)) * 10.0 ** rng.integers(-6, 6, size=(400, 1, 1))
    ref = np.zeros((9, 3, 2))
    np.add.at(ref, cluster, values)
    assert np.array_equal(inf._cluster_sum(values, cluster, 9), ref)


def test_cluster_cross_products_equal_the_row_product_sums(setup):
    _, frame, regs = setup
    r = inf.residualise(frame, "y", regs)
    ref = np.zeros((r.G, len(regs), len(regs)))
    np.add.at(ref, r.cluster, np.einsum("ni,nj->nij", r.X, r.X))
    assert np.array_equal(inf._cluster_cross(r), ref)
