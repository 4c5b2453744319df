"""HonestDiD relative-magnitude bounds: plumbing checked against moderndid's own
event-study wrapper, the robust interval checked against the identified set computed by
hand when sampling noise is negligible, and the monotonicity in Mbar."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cvxpy")
pytest.importorskip("highspy")

from vanguard.did import honest, staggered  # noqa: E402
from vanguard.errors import EstimationError  # noqa: E402

# Planted event study: reference -1 (= 0), pre-period coefficients at -4..-2, post at 0, 1.
PRE = np.array([0.03, -0.01, 0.02])
POST = np.array([0.10, 0.15])
# Largest change between consecutive pre-periods, up to the reference: |-0.01 - 0.03|.
MAX_PRE_CHANGE = 0.04


@pytest.fixture(scope="module")
def mpdta_fit():
    md = pytest.importorskip("moderndid")
    data = md.load_mpdta().to_pandas()
    return staggered.fit_cs(
        data,
        "lemp",
        scale="log",
        group="all",
        id_col="countyreal",
        time_col="year",
        cohort_col="first.treat",
        base_period="universal",
        aggregations=("dynamic",),
    )


@pytest.fixture(scope="module")
def mpdta_bounds(mpdta_fit):
    return honest.honest_bounds(
        mpdta_fit, Mbar=(0.0, 0.5, 1.0, 2.0), target="average", grid_points=60
    )


def test_same_as_moderndid_event_study_wrapper(mpdta_fit):
    """Through our inputs (reference dropped, covariance from CSFit) the intervals equal
    those of moderndid.honest_did on the same aggte event study."""
    md = pytest.importorskip("moderndid")
    mine = honest.honest_bounds(mpdta_fit, Mbar=(0.0, 1.0), target=0, grid_points=60)
    theirs = md.honest_did(
        mpdta_fit.aggregations["dynamic"],
        event_time=0,
        sensitivity_type="relative_magnitude",
        m_bar_vec=[0.0, 1.0],
        grid_points=60,
    )
    rob = mine[mine["param"].notna()].sort_values("param")
    np.testing.assert_allclose(rob["ci_low"], theirs.robust_ci["lb"].to_numpy(), atol=1e-10)
    np.testing.assert_allclose(rob["ci_high"], theirs.robust_ci["ub"].to_numpy(), atol=1e-10)
    orig = mine[mine["param"].isna()].iloc[0]
    assert orig["ci_low"] == pytest.approx(theirs.original_ci.lb, abs=1e-12)
    assert orig["ci_high"] == pytest.approx(theirs.original_ci.ub, abs=1e-12)
    # labels come from the fit
    assert set(mine["estimator"]) == {"cs_never"}
    assert set(mine["analysis"]) == {"honestdid"}
    assert set(mine["window"]) == {"rel_0"}


def test_original_interval_is_normal_interval(mpdta_bounds, mpdta_fit):
    rel, beta, _ = mpdta_fit.event_study()
    orig = mpdta_bounds[mpdta_bounds["param"].isna()].iloc[0]
    assert orig["estimate"] == pytest.approx(beta[rel >= 0].mean(), rel=1e-12)
    assert orig["ci_low"] == pytest.approx(orig["estimate"] - 1.959964 * orig["se"], rel=1e-5)


def test_intervals_widen_with_mbar(mpdta_bounds):
    rob = mpdta_bounds[mpdta_bounds["param"].notna()].sort_values("param")
    assert (np.diff(rob["ci_low"].to_numpy()) <= 1e-12).all()
    assert (np.diff(rob["ci_high"].to_numpy()) >= -1e-12).all()
    assert rob["ci_high"].iloc[-1] - rob["ci_low"].iloc[-1] > 2 * (
        rob["ci_high"].iloc[0] - rob["ci_low"].iloc[0]
    )


def test_mbar_zero_close_to_original_interval(mpdta_bounds):
    """Mbar = 0 point-identifies the effect, so the robust interval is close to (not
    identical with: C-LF is a different test, and ends sit on a grid) the original one."""
    orig = mpdta_bounds[mpdta_bounds["param"].isna()].iloc[0]
    zero = mpdta_bounds[mpdta_bounds["param"] == 0].iloc[0]
    width = orig["ci_high"] - orig["ci_low"]
    assert zero["ci_low"] <= orig["estimate"] <= zero["ci_high"]
    assert zero["ci_high"] - zero["ci_low"] == pytest.approx(width, rel=0.25)
    assert abs(zero["ci_low"] - orig["ci_low"]) < 0.25 * width


@pytest.mark.parametrize(
    "target,centre,half_width_per_m",
    [
        (0, POST[0], MAX_PRE_CHANGE),  # |delta_0| <= M * max pre change
        ("average", POST.mean(), 1.5 * MAX_PRE_CHANGE),  # |delta_1| <= 2 M ..., averaged
        ((0, 2), POST.mean(), 1.5 * MAX_PRE_CHANGE),  # the same two periods as a window
    ],
)
def test_identified_set_when_noise_is_negligible(target, centre, half_width_per_m):
    """With (almost) no sampling noise the robust interval is the identified set
    beta_target +/- Mbar * bound, derived by hand from the Delta^RM definition."""
    rel = np.array([-4, -3, -2, 0, 1])
    beta = np.concatenate([PRE, POST])
    vcov = np.eye(5) * 1e-10
    grid = 400
    out = honest.honest_bounds(
        (rel, beta, vcov),
        Mbar=(1.0,),
        target=target,
        grid_points=grid,
        outcome="y",
        scale="count",
        group="g",
    )
    row = out[out["param"] == 1.0].iloc[0]
    lo, hi = centre - half_width_per_m, centre + half_width_per_m
    step = 4 * (hi - lo) / grid  # interval ends lie on the test-inversion grid
    assert row["ci_low"] == pytest.approx(lo, abs=step)
    assert row["ci_high"] == pytest.approx(hi, abs=step)
    assert row["estimate"] == pytest.approx(centre, abs=1e-12)


def test_four_tuple_input_equals_event_time_input():
    beta = np.concatenate([PRE, POST])
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 5))
    vcov = a @ a.T * 1e-4
    x = honest.honest_bounds((beta, vcov, 3, 2), Mbar=(0.5,), grid_points=40)
    y = honest.honest_bounds(
        (
            np.array([-4, -3, -2, -1, 0, 1]),
            np.insert(beta, 3, 0.0),
            np.insert(np.insert(vcov, 3, 0.0, axis=0), 3, 0.0, axis=1),
        ),
        Mbar=(0.5,),
        grid_points=40,
    )
    pd.testing.assert_frame_equal(x, y)


def test_breakdown_mbar(mpdta_bounds):
    b = honest.breakdown_mbar(mpdta_bounds)
    rob = mpdta_bounds[mpdta_bounds["param"].notna()].set_index("param")
    assert b in rob.index
    assert rob.at[b, "ci_low"] <= 0 <= rob.at[b, "ci_high"]
    below = rob[rob.index < b]
    assert ((below["ci_high"] < 0) | (below["ci_low"] > 0)).all()
    never = mpdta_bounds.assign(ci_low=1.0, ci_high=2.0)
    assert math.isnan(honest.breakdown_mbar(never))


def test_bad_inputs_raise(mpdta_fit):
    rel = np.array([-4, -3, -2, 0, 1])
    beta = np.concatenate([PRE, POST])
    v = np.eye(5) * 1e-4
    with pytest.raises(EstimationError, match="consecutive"):
        honest.honest_bounds((np.array([-5, -3, -2, 0, 1]), beta, v))
    with pytest.raises(EstimationError, match="pre-period"):
        honest.honest_bounds((np.array([0, 1, 2, 3, 4]), beta, v))
    with pytest.raises(EstimationError, match="5x5"):
        honest.honest_bounds((rel, beta, np.eye(4)))
    with pytest.raises(EstimationError, match="non-negative"):
        honest.honest_bounds((rel, beta, v), Mbar=(-1,))
    with pytest.raises(EstimationError, match="target event time 7"):
        honest.honest_bounds((rel, beta, v), target=7)
    with pytest.raises(EstimationError, match="finite"):
        honest.honest_bounds((rel, np.where(rel == 0, np.nan, beta), v))
    varying = staggered.CSFit(
        sample=mpdta_fit.sample,
        control="never",
        att=mpdta_fit.att,
        aggregations=mpdta_fit.aggregations,
        bootstrap=False,
        n_boot=0,
        seed=0,
        alpha=0.05,
    )
    varying.att = type("A", (), {"estimation_params": {"base_period": "varying"}})()
    with pytest.raises(EstimationError, match="universal"):
        honest.honest_bounds(varying)


def test_tidy_event_study_table_needs_covariance():
    rel = np.array([-4, -3, -2, -1, 0, 1])
    table = pd.DataFrame(
        {
            "analysis": "event_study",
            "estimator": "event_study",
            "outcome": "y",
            "scale": "count",
            "group": "g",
            "rel_time": rel,
            "estimate": np.insert(np.concatenate([PRE, POST]), 3, 0.0),
            "se": 0.01,
        }
    )
    with pytest.raises(EstimationError, match="covariance"):
        honest.honest_bounds(table)
    v = np.eye(5) * 1e-4
    a = honest.honest_bounds(table, vcov=v, Mbar=(1.0,), grid_points=40)
    b = honest.honest_bounds(
        (rel[rel != -1], np.concatenate([PRE, POST]), v),
        Mbar=(1.0,),
        grid_points=40,
        estimator="event_study",
        outcome="y",
        scale="count",
        group="g",
    )
    pd.testing.assert_frame_equal(a, b)


def _noisy_event_study(seed: int, n_pre: int, n_post: int):
    """An event study with a correlated covariance, as a regression event study has."""
    rng = np.random.default_rng(seed)
    k = n_pre + n_post
    L = rng.normal(0, 0.02, (k, k))
    vcov = L @ L.T + np.eye(k) * 4e-4
    beta = rng.multivariate_normal(np.r_[np.zeros(n_pre), np.full(n_post, -0.05)], vcov)
    return beta, vcov


@pytest.mark.parametrize(
    "seed,n_pre,n_post,target", [(1, 4, 5, "average"), (2, 3, 4, (0, 2)), (3, 5, 3, 1)]
)
def test_fast_bounds_equal_moderndid_over_the_whole_grid(seed, n_pre, n_post, target):
    """The inward scan with reused bases reports moderndid's intervals exactly."""
    beta, vcov = _noisy_event_study(seed, n_pre, n_post)
    kw = {"Mbar": (0.0, 0.5, 1.0, 2.0), "target": target, "grid_points": 40, "seed": 5}
    fast = honest.honest_bounds((beta, vcov, n_pre, n_post), fast=True, **kw)
    slow = honest.honest_bounds((beta, vcov, n_pre, n_post), fast=False, **kw)
    pd.testing.assert_frame_equal(fast.drop(columns="note"), slow.drop(columns="note"))
    assert fast["ci_low"].notna().all()


def test_least_favourable_cv_equals_moderndid_per_draw_loop(monkeypatch):
    from moderndid.didhonest import arp_nuisance as an

    rng = np.random.default_rng(4)
    x = rng.normal(size=(14, 3))
    L = rng.normal(size=(14, 14))
    sigma = L @ L.T / 14 + np.eye(14)
    rows = np.arange(2, 14)
    w = np.column_stack([np.sqrt(np.diag(sigma[np.ix_(rows, rows)])), x[rows]])
    ref = an._compute_least_favorable_cv(
        x, sigma, 0.005, rows_for_arp=rows, seed=9, model=an._eta_program_model(w)
    )
    solves = []
    solve = an._solve_with_row_upper
    monkeypatch.setattr(an, "_solve_with_row_upper", lambda m, r: solves.append(1) or solve(m, r))
    got = honest._least_favourable_cv(
        x,
        sigma,
        0.005,
        rows_for_arp=rows,
        seed=9,
        model=an._eta_program_model(w),
        fallback=an._compute_least_favorable_cv,
    )
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert 0 < len(solves) < 200  # most of the 1,000 draws took a basis already found


@pytest.mark.parametrize("m_bar,s_,positive", [(1.0, 0, True), (0.5, -2, False), (2.0, -1, True)])
def test_first_stage_screen_never_changes_a_grid_points_verdict(monkeypatch, m_bar, s_,
                                                               positive):
    """Every grid point gets the same verdict with the basis-reuse screen as without it,
    over the whole grid (not only at the interval's ends), and the screen spares most
    of moderndid's full tests."""
    from moderndid.didhonest import arp_nuisance as an
    from moderndid.didhonest.delta.rm import rm as _rm
    from moderndid.didhonest.utils import find_rows_with_post_period_values

    n_pre, n_post = 4, 5
    beta, vcov = _noisy_event_study(7, n_pre, n_post)
    inp = honest.event_study_inputs(
        np.r_[np.arange(-n_pre - 1, -1), np.arange(0, n_post)], beta, vcov
    )
    l_vec = np.full(n_post, 1 / n_post)
    A = _rm._create_relative_magnitudes_constraint_matrix(
        num_pre_periods=n_pre, num_post_periods=n_post, m_bar=m_bar, s=s_,
        max_positive=positive)
    d = _rm._create_relative_magnitudes_constraint_vector(A)
    rows = find_rows_with_post_period_values(A, list(range(n_pre, n_pre + n_post)))
    lo, hi = _rm.relative_magnitudes_grid_bounds(inp.betahat, inp.sigma, n_pre, n_post, l_vec,
                                                 m_bar)
    grid = np.linspace(lo - (hi - lo), hi + (hi - lo), 60)
    verdicts, full_tests = {}, []
    full = an._test_theta_accepted
    monkeypatch.setattr(an, "_test_theta_accepted",
                        lambda *a, **k: full_tests.append("test") or full(*a, **k))
    for screened in (True, False):
        test = honest._polyhedron_test(inp.betahat, inp.sigma, n_pre, n_post, l_vec, A, d, rows,
                                       0.05, "LF", 5, grid, screened)
        verdicts[screened] = [test(i) for i in range(len(grid))]
        full_tests.append("end")
    assert verdicts[True] == verdicts[False]
    n_screened = full_tests.index("end")
    n_plain = len(full_tests) - n_screened - 2
    assert 0 < n_screened < n_plain / 2
    assert any(verdicts[True]) and not all(verdicts[True])
