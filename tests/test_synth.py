"""Synthetic DiD: solver against scipy, identity with DiD, planted effects under a factor
model where plain DiD is biased, and the public function on a panel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from test_persite import make_panel

from vanguard import schema
from vanguard.did import synth
from vanguard.errors import DataError, EstimationError


@pytest.mark.parametrize("zeta", [0.3, 1e-6])
def test_simplex_ridge_matches_an_independent_qp_solver(zeta):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 9))
    w = synth.simplex_ridge(y, zeta)
    yc = y - y.mean(axis=0)
    a, b = yc[:, :-1], yc[:, -1]

    def objective(v):
        return zeta**2 * v @ v + np.sum((a @ v - b) ** 2) / a.shape[0]

    ref = minimize(
        objective,
        np.full(8, 1 / 8),
        method="SLSQP",
        bounds=[(0, 1)] * 8,
        constraints={"type": "eq", "fun": lambda v: v.sum() - 1},
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert ref.success
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert objective(w) == pytest.approx(ref.fun, rel=1e-4)
    np.testing.assert_allclose(w, ref.x, atol=1e-3)


def test_uniform_weights_give_plain_did():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(12, 10))
    n0, t0 = 10, 6
    did = (y[n0:, t0:].mean() - y[n0:, :t0].mean()) - (y[:n0, t0:].mean() - y[:n0, :t0].mean())
    tau = synth.sdid_effect(y, n0, t0, np.full(n0, 1 / n0), np.full(t0, 1 / t0))
    assert tau == pytest.approx(did)


def _factor_model(rng, effect, n0=60, t0=24, t1=12):
    """Interactive fixed effects: the treated unit loads on a trending factor that the
    average control barely shares, so plain DiD is biased; some controls share it."""
    t = np.arange(t0 + t1)
    factor = 0.05 * t + np.sin(t / 3.0)
    load = np.concatenate([rng.uniform(-1.0, 1.5, n0), [1.2]])
    y = (
        rng.normal(0, 1, (n0 + 1, 1))
        + 0.02 * t
        + np.outer(load, factor)
        + rng.normal(0, 0.1, (n0 + 1, t0 + t1))
    )
    y[n0:, t0:] += effect
    return y, n0, t0


def test_sdid_recovers_a_planted_effect_where_did_is_biased():
    rng = np.random.default_rng(7)
    err_sdid, err_did = [], []
    for _ in range(10):
        y, n0, t0 = _factor_model(rng, effect=-0.5)
        err_sdid.append(synth.sdid_fit(y, n0, t0).estimate + 0.5)
        uniform = synth.sdid_effect(y, n0, t0, np.full(n0, 1 / n0), np.full(t0, 1 / t0))
        err_did.append(uniform + 0.5)
    assert abs(np.mean(err_did)) > 0.4  # plain DiD is badly biased here
    assert abs(np.mean(err_sdid)) < 0.1
    assert np.sqrt(np.mean(np.square(err_sdid))) < 0.2


def test_synthetic_control_matches_levels_and_recovers_the_effect():
    rng = np.random.default_rng(3)
    y, n0, t0 = _factor_model(rng, effect=1.0)
    fit = synth.sdid_fit(y, n0, t0, estimator="synth")
    assert (fit.lam == 0).all() and fit.omega.sum() == pytest.approx(1.0)
    assert fit.estimate == pytest.approx(1.0, abs=0.35)


def test_placebo_se_reflects_noise_and_the_panel_function_runs():
    sites = {"EHCH9": (schema.CARE_HOME, 1, -1.0), "PACS1": (schema.POPULATION_BASED, 1, 0.0)}
    panel = make_panel(
        n_control=30, sites=sites, seed=4, area_sd=0.05, pop_range=(250_000, 300_000)
    )
    res = synth.synthetic_did(
        panel, "emergency_admissions", site="EHCH9", n_placebo=20, post_window="year_1"
    )
    row = res.iloc[0]
    assert list(res.columns) == list(schema.RESULT_COLUMNS)
    assert (row.analysis, row.estimator, row.group, row.site) == (
        "per_site",
        "sdid",
        schema.CARE_HOME,
        "EHCH9",
    )
    assert row.n_control == 30 and row.n_treated == 1
    assert 0.02 < row.se < 0.5
    assert abs(row.estimate + 1.0) < 4 * row.se
    assert row.ci_high < 0
    null = synth.synthetic_did(
        panel,
        "emergency_admissions",
        site="PACS1",
        n_placebo=20,
        post_window="year_1",
        estimator="synth",
    ).iloc[0]
    assert null.estimator == "synth" and abs(null.estimate) < 4 * null.se
    with pytest.raises(DataError, match="site"):
        synth.synthetic_did(panel, "emergency_admissions", site="NOPE")
    with pytest.raises(EstimationError, match="estimator"):
        synth.synthetic_did(panel, "emergency_admissions", site="EHCH9", estimator="x")


@pytest.mark.slow
def test_placebo_interval_covers_a_planted_site_effect():
    """Monte Carlo on panels with one treated area and a planted effect of -0.5."""
    n_rep, covered, estimates = 30, 0, []
    for rep in range(n_rep):
        panel = make_panel(
            n_control=40,
            sites={"S": (schema.CARE_HOME, 1, -0.5)},
            seed=300 + rep,
            pop_range=(150_000, 400_000),
        )
        row = synth.synthetic_did(panel, "emergency_admissions", site="S", n_placebo=40).iloc[0]
        covered += row.ci_low <= -0.5 <= row.ci_high
        estimates.append(row.estimate)
    assert covered / n_rep >= 0.8
    assert np.mean(estimates) == pytest.approx(-0.5, abs=0.06)
