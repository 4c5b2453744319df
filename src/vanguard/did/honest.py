"""HonestDiD sensitivity of an event study to violations of parallel trends.

Rambachan and Roth (2023) replace "parallel trends holds" by "the post-period violation
is bounded by what the pre-period shows". Under the *relative magnitudes* restriction
``Delta^RM(Mbar)`` every change in the differential trend after the start may be at most
``Mbar`` times the largest change between consecutive pre-periods: ``Mbar = 0`` imposes
no change after the start (point identification), ``Mbar = 1`` allows post-period breaks as
large as the worst pre-period one. For each ``Mbar`` the robust confidence interval (C-LF
method by default) covers the target effect whatever the violation in that set.
``moderndid.create_sensitivity_results_rm`` does the computation; this module turns an
event study (coefficients *and* their covariance) into its inputs and returns tidy rows.

Inputs
------
HonestDiD needs the full covariance matrix of the event-study coefficients, not just
their standard errors, measured against one reference period (event time -1 by default,
omitted from the inputs). Accepted forms:

* ``(rel_time, beta, vcov)``: event times (reference period may be included; it is
  dropped), coefficients and covariance, e.g. from
  :meth:`vanguard.did.staggered.CSFit.event_study` of a fit with
  ``base_period="universal"``;
* ``(betahat, sigma, n_pre, n_post)``: the HonestDiD convention, reference excluded,
  pre-periods first;
* a :class:`vanguard.did.staggered.CSFit` (must use ``base_period="universal"``);
* tidy ``analysis="event_study"`` rows (e.g. from
  :func:`vanguard.did.event_study.estimate_event_study`) *plus* ``vcov=``: the tidy table
  carries standard errors only. Use ``bin_ends=False`` there: HonestDiD would read a
  binned end coefficient as one ordinary period.

Run time grows with the number of pre-periods (one polyhedron per candidate location and
sign of the largest pre-period break, each tested at grid points): bin a monthly event
study to quarters or trim it to a year or two of pre-periods first. moderndid tests every
grid point of every polyhedron and simulates each polyhedron's least-favourable critical
value with one linear programme per draw; :func:`honest_bounds` gives the same intervals
with far fewer programmes (``fast=True``: the grid scanned inwards from both ends,
identical polyhedra once, bases reused across draws, and a grid point whose first-stage
statistic a known basis already puts above the critical value rejected without moderndid's
full test, :class:`_FirstStage`). A quarterly Callaway-Sant'Anna event study of the
synthetic data (7 pre, 12 post quarters) then takes well under a second per ``Mbar`` at
100 grid points on one core, against over ten seconds with moderndid. Relative-magnitude
bounds on the *average* of many post periods grow quickly with ``Mbar`` (the allowed
violation accumulates period by period), so for a long post-period also report a short
target such as year 1, ``target=(0, 4)`` in quarters.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.errors import EstimationError

__all__ = ["HonestInputs", "breakdown_mbar", "event_study_inputs", "honest_bounds"]

LF_FEASIBILITY_TOL: float = 1e-10
"""Relative slack below which a reused basis is not taken as optimal for a draw (see
:func:`_least_favourable_cv`); far tighter than HiGHS's own 1e-7 feasibility tolerance."""

DEFAULT_MBAR: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)


@dataclass
class HonestInputs:
    """Event-study inputs in HonestDiD order.

    Attributes
    ----------
    betahat : ndarray
        Pre-period coefficients (earliest first, reference excluded) then post-period.
    sigma : ndarray
        Their covariance.
    n_pre, n_post : int
    post_rel : ndarray of int
        Event times of the post-period coefficients.
    """

    betahat: np.ndarray
    sigma: np.ndarray
    n_pre: int
    n_post: int
    post_rel: np.ndarray


def event_study_inputs(
    rel_time: Sequence[float], beta: Sequence[float], vcov, *, reference: int = -1
) -> HonestInputs:
    """Order event-study coefficients and their covariance for HonestDiD.

    Parameters
    ----------
    rel_time : sequence of int
        Event time of each coefficient. The reference period, if present, is dropped.
    beta : sequence of float
        Coefficients.
    vcov : array-like
        Their covariance matrix (same order).
    reference : int
        Event time all coefficients are measured against.

    Returns
    -------
    HonestInputs

    Raises
    ------
    EstimationError
        Mismatched shapes, non-finite or non-symmetric covariance, no pre- or post-period
        coefficient, or event times with gaps (HonestDiD needs consecutive periods).
    """
    rel = np.asarray(rel_time, dtype=float)
    b = np.asarray(beta, dtype=float)
    v = np.asarray(vcov, dtype=float)
    if rel.ndim != 1 or b.shape != rel.shape or v.shape != (len(b), len(b)):
        raise EstimationError(
            f"event study: expected {len(rel)} event times, coefficients "
            f"and a {len(rel)}x{len(rel)} covariance; got {b.shape} and "
            f"{v.shape}"
        )
    if np.any(rel != np.round(rel)):
        raise EstimationError("event study: event times must be whole periods")
    keep = rel != reference
    rel, b, v = rel[keep].astype(int), b[keep], v[np.ix_(keep, keep)]
    order = np.argsort(rel, kind="stable")
    rel, b, v = rel[order], b[order], v[np.ix_(order, order)]
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(v))):
        raise EstimationError(
            "event study: coefficients and covariance must be finite "
            "(drop event times that could not be estimated)"
        )
    if not np.allclose(v, v.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(v).max())):
        raise EstimationError("event study: covariance matrix is not symmetric")
    pre, post = rel[rel < reference], rel[rel > reference]
    if len(pre) == 0 or len(post) == 0:
        raise EstimationError(
            f"event study: HonestDiD needs pre-period (< {reference}) and "
            f"post-period (> {reference}) coefficients; got event times "
            f"{rel.tolist()}"
        )
    if np.any(np.diff(pre) != 1) or pre[-1] != reference - 1 or np.any(np.diff(post) != 1):
        raise EstimationError(
            "event study: HonestDiD needs consecutive event times ending "
            f"at {reference - 1} before and starting after the reference "
            f"{reference}; got {rel.tolist()}"
        )
    # Symmetrise to remove rounding asymmetry from the caller's algebra.
    return HonestInputs(
        betahat=b, sigma=(v + v.T) / 2, n_pre=len(pre), n_post=len(post), post_rel=post
    )


def _from_table(table: pd.DataFrame, vcov, reference: int) -> tuple[HonestInputs, dict]:
    es = table[table["analysis"] == "event_study"] if "analysis" in table.columns else table
    if es.empty or "rel_time" not in es.columns or "estimate" not in es.columns:
        raise EstimationError(
            "honest_bounds: the table holds no event-study rows "
            "(analysis='event_study' with rel_time and estimate)"
        )
    if es["estimator"].nunique() > 1 or es["group"].nunique() > 1 or es["outcome"].nunique() > 1:
        raise EstimationError(
            "honest_bounds: pass the event-study rows of one estimator, outcome and group"
        )
    if vcov is None:
        raise EstimationError(
            "honest_bounds: a tidy event-study table has standard errors but no covariance; "
            "HonestDiD needs the full covariance matrix of the coefficients - pass "
            "vcov= (ordered by rel_time, reference period excluded)"
        )
    es = es[es["rel_time"] != reference].sort_values("rel_time")
    first = es.iloc[0]
    labels = {
        k: first[k]
        for k in (
            "estimator",
            "outcome",
            "scale",
            "group",
            "data_source",
            "n_treated",
            "n_control",
            "n_obs",
            "pre_mean",
        )
        if k in es.columns and not pd.isna(first[k])
    }
    return event_study_inputs(
        es["rel_time"].to_numpy(), es["estimate"].to_numpy(), vcov, reference=reference
    ), labels


def _as_inputs(event_study, reference: int, vcov=None) -> tuple[HonestInputs, dict]:
    labels: dict = {}
    if isinstance(event_study, pd.DataFrame):
        return _from_table(event_study, vcov, reference)
    if hasattr(event_study, "event_study") and hasattr(event_study, "sample"):
        params = getattr(event_study.att, "estimation_params", {}) or {}
        if params.get("base_period", "universal") != "universal":
            raise EstimationError(
                "HonestDiD needs an event study against one reference "
                "period: refit with base_period='universal'"
            )
        s = event_study.sample
        labels = {
            "estimator": event_study.estimator,
            "outcome": s.outcome,
            "scale": s.scale,
            "group": s.group,
            "data_source": s.data_source,
            "n_treated": s.n_treated,
            "n_control": s.n_control,
            "n_obs": s.n_obs,
            "pre_mean": s.pre_mean,
        }
        rel, b, v = event_study.event_study()
        return event_study_inputs(rel, b, v, reference=reference), labels
    if isinstance(event_study, HonestInputs):
        return event_study, labels
    if isinstance(event_study, tuple) and len(event_study) == 4:
        betahat, sigma, n_pre, n_post = event_study
        betahat = np.asarray(betahat, dtype=float)
        if len(betahat) != int(n_pre) + int(n_post):
            raise EstimationError(
                f"event study: {len(betahat)} coefficients but n_pre + "
                f"n_post = {int(n_pre) + int(n_post)}"
            )
        rel = np.concatenate(
            [
                np.arange(reference - int(n_pre), reference),
                np.arange(reference + 1, reference + 1 + int(n_post)),
            ]
        )
        return event_study_inputs(rel, betahat, sigma, reference=reference), labels
    if isinstance(event_study, tuple) and len(event_study) == 3:
        return event_study_inputs(*event_study, reference=reference), labels
    raise EstimationError(
        "honest_bounds: expected (rel_time, beta, vcov), (betahat, sigma, "
        f"n_pre, n_post) or a CSFit; got {type(event_study).__name__}"
    )


def _least_favourable_cv(
    x_t=None,
    sigma=None,
    hybrid_kappa=0.05,
    sims=1000,
    rows_for_arp=None,
    seed=0,
    model=None,
    *,
    fallback,
):
    """The least-favourable critical value of the hybrid (C-LF) test, by basis reuse.

    moderndid draws ``sims`` normal vectors ``xi`` and solves, for each, the linear
    programme ``eta(xi) = min eta  s.t.  sd * eta + X d >= xi`` (free ``eta``, ``d``), then
    takes a quantile of the ``eta``. Only the right-hand side changes between draws, so an
    optimal basis of one draw (its tight rows ``B``) stays dual feasible for all; it is
    optimal for every draw whose basic solution ``[sd, X]_B^-1 xi_B`` satisfies all rows,
    and ``eta`` is then that solution's first entry. Each basis found is checked against
    all unresolved draws at once; a programme is solved only for a draw no known basis
    fits. The values equal the per-draw solutions up to rounding, so the quantile does too.
    The arguments are those of moderndid's private function it stands in for;
    ``fallback`` (that function) handles what this does not (no nuisance parameters, a
    degenerate or non-optimal solve).
    """
    if x_t is None or model is None:
        return fallback(x_t, sigma, hybrid_kappa, sims, rows_for_arp, seed, model)
    import highspy
    from moderndid.didhonest.arp_nuisance import _solve_with_row_upper

    rng = np.random.default_rng(seed)
    x_rows, s_rows = x_t, sigma
    if rows_for_arp is not None:
        x_rows = x_t[rows_for_arp]
        s_rows = sigma[np.ix_(rows_for_arp, rows_for_arp)]
    if x_rows.ndim == 1:
        x_rows = x_rows.reshape(-1, 1)
    w = np.column_stack([np.sqrt(np.diag(s_rows)), x_rows])  # rows: sd * eta + X d >= xi
    k = w.shape[1]
    xi = rng.multivariate_normal(mean=np.zeros(s_rows.shape[0]), cov=s_rows, size=sims)
    eta = np.full(sims, np.nan)
    todo = np.ones(sims, dtype=bool)
    basic = highspy.HighsBasisStatus.kBasic.value
    while todo.any():
        i = int(np.flatnonzero(todo)[0])
        sol = _solve_with_row_upper(model, -xi[i])
        if sol is None:
            return fallback(x_t, sigma, hybrid_kappa, sims, rows_for_arp, seed, model)
        eta[i], todo[i] = sol.col_value[0], False
        status = model.getBasis()
        tight = np.array([st.value != basic for st in status.row_status])
        if not status.valid or tight.sum() != k:
            continue  # degenerate basis: this draw alone
        wb = w[tight]
        if np.linalg.cond(wb) > 1e10:
            continue
        rest = np.flatnonzero(todo)
        z = np.linalg.solve(wb, xi[rest][:, tight].T)  # (k, draws)
        slack = w @ z - xi[rest].T
        fits = np.all(slack >= -LF_FEASIBILITY_TOL * (1 + np.abs(xi[rest].T)), axis=0)
        eta[rest[fits]] = z[0, fits]
        todo[rest[fits]] = False
    return float(np.quantile(eta, 1 - hybrid_kappa))


class _ReusedBases:
    """Within the block, moderndid's least-favourable critical value reuses LP bases
    (:func:`_least_favourable_cv`); outside it, moderndid is untouched."""

    def __enter__(self):
        from moderndid.didhonest import arp_nuisance

        self._module = arp_nuisance
        self._original = getattr(arp_nuisance, "_compute_least_favorable_cv", None)
        if self._original is not None:
            original = self._original

            def fast(*args, **kwargs):
                return _least_favourable_cv(*args, fallback=original, **kwargs)

            arp_nuisance._compute_least_favorable_cv = fast
        return self

    def __exit__(self, *exc):
        if self._original is not None:
            self._module._compute_least_favorable_cv = self._original
        return False


class _FirstStage:
    """The first stage of the hybrid (C-LF) test of a grid point, by basis reuse.

    The test of ``theta`` first solves ``eta(theta) = min eta  s.t.  sd * eta + X d >= y_t``
    (free ``eta``, ``d``) and rejects when ``eta`` exceeds the least-favourable critical
    value; only a point that survives goes on to the conditional stage. The grid points
    differ only in the right-hand side ``y_t``, so an optimal basis found for one point
    (its tight rows ``B``) is optimal for every point whose basic solution
    ``W_B^-1 y_t,B`` satisfies all rows (dual feasibility does not depend on ``y_t``), as
    in :func:`_least_favourable_cv`. :meth:`rejects` answers True only when ``eta`` is
    known, from such a basis or from a solve of its own model, to exceed the critical
    value by more than the solver's tolerance; any other point gets moderndid's full
    test, so the accepted grid points are moderndid's.
    """

    MARGIN = 1e-7
    """Relative distance from the critical value below which the full test decides."""

    def __init__(self, w: np.ndarray, model, lf_cv: float):
        self.w, self.model, self.lf_cv = w, model, float(lf_cv)
        self.bases: list[tuple[np.ndarray, np.ndarray]] = []  # (tight rows, W_B^-1)

    def _eta(self, y: np.ndarray) -> float | None:
        import highspy
        from moderndid.didhonest.arp_nuisance import _solve_with_row_upper

        for tight, inv in self.bases:
            z = inv @ y[tight]
            if np.all(self.w @ z - y >= -LF_FEASIBILITY_TOL * (1 + np.abs(y))):
                return float(z[0])
        sol = _solve_with_row_upper(self.model, -y)
        if sol is None:
            return None
        status = self.model.getBasis()
        basic = highspy.HighsBasisStatus.kBasic.value
        tight = np.array([st.value != basic for st in status.row_status])
        if status.valid and tight.sum() == self.w.shape[1]:
            wb = self.w[tight]
            if np.linalg.cond(wb) < 1e10:
                self.bases.append((tight, np.linalg.inv(wb)))
        return float(sol.col_value[0])

    def rejects(self, y: np.ndarray) -> bool:
        """Whether the first stage surely rejects the point with right-hand side ``y``."""
        eta = self._eta(y)
        return eta is not None and eta > self.lf_cv + self.MARGIN * (1 + abs(self.lf_cv))


def _polyhedron_test(
    betahat, sigma, n_pre, n_post, l_vec, A, d, rows, alpha, hybrid, seed, grid, reuse_bases
):
    """Test of each grid point for one polyhedron ``A delta <= d`` of the union, set up as
    moderndid's ``compute_arp_nuisance_ci`` sets it up (several post periods).

    Returns a function ``accepted(i) -> bool`` for ``grid[i]``.
    """
    from moderndid.didhonest import arp_nuisance as an
    from moderndid.didhonest.utils import prepare_theta_grid_y_values

    hybrid_list: dict = {"hybrid_kappa": alpha / 10}
    gamma = an._construct_gamma(l_vec)
    a_gi = A[:, n_pre : n_pre + n_post] @ np.linalg.inv(gamma)
    a_one = np.ascontiguousarray(a_gi[:, 0])
    a_rest = a_gi[:, 1:]
    y = A @ betahat - d
    sigma_y = A @ sigma @ A.T
    r = np.arange(len(y)) if rows is None else rows
    variances = np.diag(sigma_y[np.ix_(r, r)])
    x_arp = a_rest[r]
    reuse = np.isfinite(variances).all() and (variances >= 0).all() and np.isfinite(x_arp).all()
    w_t = np.column_stack([np.sqrt(variances), x_arp]) if reuse else None
    if hybrid == "LF":
        model = an._eta_program_model(w_t) if reuse else None
        original = an._compute_least_favorable_cv
        if reuse_bases:
            hybrid_list["lf_cv"] = _least_favourable_cv(
                a_rest,
                sigma_y,
                hybrid_list["hybrid_kappa"],
                rows_for_arp=rows,
                seed=seed,
                model=model,
                fallback=original,
            )
        else:
            hybrid_list["lf_cv"] = original(
                a_rest,
                sigma_y,
                hybrid_list["hybrid_kappa"],
                rows_for_arp=rows,
                seed=seed,
                model=model,
            )
    y_t = prepare_theta_grid_y_values(y, a_one, grid)
    test_model = an._eta_program_model(w_t) if reuse else None
    max_model = an._max_program_model(w_t) if reuse else None
    screen = (
        _FirstStage(w_t, an._eta_program_model(w_t), hybrid_list["lf_cv"])
        if reuse and reuse_bases and hybrid == "LF" and np.isfinite(hybrid_list["lf_cv"])
        else None
    )

    def accepted(i: int) -> bool:
        if screen is not None and screen.rejects(y_t[i][r]):
            return False
        return bool(
            an._test_theta_accepted(
                i,
                y_t_matrix=y_t,
                hybrid_flag=hybrid,
                hybrid_list=hybrid_list,
                d_vec=d,
                a_gamma_inv_one=a_one,
                theta_grid=grid,
                a_gamma_inv_minus_one=a_rest,
                sigma_y=sigma_y,
                alpha=alpha,
                rows_for_arp=rows,
                test_model=test_model,
                max_model=max_model,
            )
        )

    return accepted


def _rm_interval(
    inp: HonestInputs, l_vec, m_bar: float, *, alpha, method, grid_points, seed, reuse_bases
) -> tuple[float, float]:
    """The C-LF (or conditional) robust interval of ``Delta^RM(m_bar)``, scanning inwards.

    moderndid tests every grid point against every polyhedron of the union (one per
    location and sign of the largest pre-period change) and reports the first and last
    grid points any polyhedron accepts. Only those two are needed: points are tested
    from the left end until one is accepted, then from the right end down to it, and
    identical polyhedra (all of them at ``m_bar = 0``) are tested once. The grid, the
    polyhedra and each point's test are moderndid's, so the interval is the one it
    reports.
    """
    from moderndid.didhonest.delta.rm import rm as _rm
    from moderndid.didhonest.utils import find_rows_with_post_period_values

    betahat, sigma, n_pre, n_post = inp.betahat, inp.sigma, inp.n_pre, inp.n_post
    lo, hi = _rm.relative_magnitudes_grid_bounds(betahat, sigma, n_pre, n_post, l_vec, m_bar)
    grid = np.linspace(lo, hi, grid_points)
    hybrid = "ARP" if method == "Conditional" else "LF"
    post_idx = list(range(n_pre, n_pre + n_post))
    polys, seen = [], set()
    for s_ in range(-(n_pre - 1), 1):
        for positive in (True, False):
            A = _rm._create_relative_magnitudes_constraint_matrix(
                num_pre_periods=n_pre,
                num_post_periods=n_post,
                m_bar=m_bar,
                s=s_,
                max_positive=positive,
            )
            d = _rm._create_relative_magnitudes_constraint_vector(A)
            key = (A.tobytes(), d.tobytes())
            if key in seen:
                continue
            seen.add(key)
            rows = find_rows_with_post_period_values(A, post_idx)
            polys.append((A, d, rows))
    tests: list = [None] * len(polys)

    def any_accepts(i: int) -> bool:
        for j, (A, d, rows) in enumerate(polys):
            if tests[j] is None:
                tests[j] = _polyhedron_test(
                    betahat,
                    sigma,
                    n_pre,
                    n_post,
                    l_vec,
                    A,
                    d,
                    rows,
                    alpha,
                    hybrid,
                    seed,
                    grid,
                    reuse_bases,
                )
            if tests[j](i):
                return True
        return False

    first = next((i for i in range(grid_points) if any_accepts(i)), None)
    if first is None:
        return math.nan, math.nan
    last = next(i for i in range(grid_points - 1, first - 1, -1) if i == first or any_accepts(i))
    return float(grid[first]), float(grid[last])


def honest_bounds(
    event_study,
    *,
    Mbar: Iterable[float] = DEFAULT_MBAR,
    target: str | int | tuple[int, int] = "average",
    alpha: float = 0.05,
    reference: int = -1,
    vcov=None,
    method: str = "C-LF",
    grid_points: int = 100,
    seed: int = 0,
    estimator: str | None = None,
    outcome: str | None = None,
    scale: str | None = None,
    group: str | None = None,
    data_source: str | None = None,
    fast: bool = True,
) -> pd.DataFrame:
    """Relative-magnitude robust confidence intervals for an event-study effect.

    Parameters
    ----------
    event_study : tuple, CSFit or DataFrame
        ``(rel_time, beta, vcov)``, ``(betahat, sigma, n_pre, n_post)``, a
        :class:`vanguard.did.staggered.CSFit` fitted with ``base_period="universal"``,
        or tidy ``analysis="event_study"`` rows of one estimator/outcome/group together
        with ``vcov``.
    Mbar : iterable of float
        Relative-magnitude bounds (non-negative).
    target : "average", int or (lo, hi)
        ``"average"``: the mean of all post-period effects; an int: the effect at that
        event time; ``(lo, hi)``: the mean over event times ``lo .. hi-1`` (e.g. ``(0, 4)``
        for year 1 of a quarterly event study).
    alpha : float
        1 - confidence level.
    reference : int
        Reference event time of the event study.
    vcov : array-like, optional
        Covariance of the coefficients of a tidy table (ordered by ``rel_time``,
        reference excluded); required with a table, ignored otherwise.
    method : {"C-LF", "Conditional"}
        HonestDiD confidence-interval method.
    grid_points : int
        Candidate values tested per interval; interval ends are grid points, so the
        resolution is (grid width) / ``grid_points``.
    seed : int
        Seed of the simulated least-favourable critical value (C-LF).
    estimator, outcome, scale, group, data_source : str, optional
        Labels of the rows (taken from a CSFit when given one).
    fast : bool
        Solve as moderndid does but only where the answer needs it: the grid is scanned
        inwards from both ends, identical polyhedra are tested once (:func:`_rm_interval`),
        C-LF's least-favourable critical value reuses linear-programme bases across
        its simulated draws (:func:`_least_favourable_cv`), and so does the first stage of
        each grid point's test (:class:`_FirstStage`). The intervals are moderndid's
        (a test checks them against it); ``False`` runs
        ``moderndid.create_sensitivity_results_rm`` over the whole grid.

    Returns
    -------
    pandas.DataFrame
        Tidy rows, ``analysis="honestdid"``, ``window`` = ``"post_average"``,
        ``"rel_<k>"`` or ``"rel_<lo>_<hi-1>"``: one per ``Mbar`` (``param`` = Mbar, robust ``ci_low``/``ci_high``,
        ``inference="none"``) and one ``param`` = NaN row with the original
        (parallel-trends) interval, ``inference="analytic"``. ``estimate`` is the point
        estimate of the target in every row.

    Raises
    ------
    EstimationError
        Bad event-study inputs (see :func:`event_study_inputs`), negative ``Mbar``, an
        unknown target, or a failure inside HonestDiD.
    """
    from moderndid.didhonest.sensitivity import (
        construct_original_cs,
        create_sensitivity_results_rm,
    )

    inp, labels = _as_inputs(event_study, reference, vcov)
    mbar = np.asarray(list(Mbar), dtype=float)
    if mbar.size == 0 or np.any(~np.isfinite(mbar)) or np.any(mbar < 0):
        raise EstimationError(f"Mbar must be finite and non-negative; got {mbar.tolist()}")
    if isinstance(target, str) and target == "average":
        l_vec = np.full(inp.n_post, 1.0 / inp.n_post)
        window = "post_average"
    elif isinstance(target, tuple):
        lo, hi = (int(x) for x in target)
        sel = (inp.post_rel >= lo) & (inp.post_rel < hi)
        if sel.sum() != hi - lo:
            raise EstimationError(
                f"target event times [{lo}, {hi}) not all among the "
                f"post-period event times {inp.post_rel.tolist()}"
            )
        l_vec = sel / sel.sum()
        window = f"rel_{lo}_{hi - 1}"
    else:
        try:
            k = int(target)
        except (TypeError, ValueError) as exc:
            raise EstimationError(
                f"target must be 'average' or an event time; got {target!r}"
            ) from exc
        if k not in inp.post_rel:
            raise EstimationError(
                f"target event time {k} not among the post-period event "
                f"times {inp.post_rel.tolist()}"
            )
        l_vec = (inp.post_rel == k).astype(float)
        window = f"rel_{k}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            orig = construct_original_cs(
                inp.betahat, inp.sigma, inp.n_pre, inp.n_post, l_vec=l_vec, alpha=alpha
            )
            if fast and inp.n_post > 1 and method in ("C-LF", "Conditional"):
                robust = []
                for m in mbar:
                    lb, ub = _rm_interval(
                        inp,
                        l_vec,
                        float(m),
                        alpha=alpha,
                        method=method,
                        grid_points=grid_points,
                        seed=seed,
                        reuse_bases=True,
                    )
                    robust.append(
                        {"Mbar": float(m), "delta": "DeltaRM", "method": method, "lb": lb, "ub": ub}
                    )
            else:
                with _ReusedBases() if fast else contextlib.nullcontext():
                    robust = create_sensitivity_results_rm(
                        inp.betahat,
                        inp.sigma,
                        inp.n_pre,
                        inp.n_post,
                        method=method,
                        m_bar_vec=mbar,
                        l_vec=l_vec,
                        alpha=alpha,
                        grid_points=grid_points,
                        seed=seed,
                    ).to_dicts()
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise EstimationError(f"HonestDiD failed: {exc}") from exc
    est = float(l_vec @ inp.betahat[inp.n_pre :])
    se = float(np.sqrt(l_vec @ inp.sigma[inp.n_pre :, inp.n_pre :] @ l_vec))
    common = {
        "data_source": data_source or labels.get("data_source", ""),
        "analysis": "honestdid",
        "estimator": estimator or labels.get("estimator", "event_study"),
        "outcome": outcome or labels.get("outcome", ""),
        "scale": scale or labels.get("scale", "rate"),
        "group": group or labels.get("group", ""),
        "window": window,
        "estimate": est,
        "se": se,
        **{k: labels[k] for k in ("n_treated", "n_control", "n_obs", "pre_mean") if k in labels},
    }
    rows = [
        {
            **common,
            "param": math.nan,
            "ci_low": float(orig.lb),
            "ci_high": float(orig.ub),
            "inference": "analytic",
            "note": f"original CI assuming parallel trends ({inp.n_pre} pre, {inp.n_post} "
            "post periods)",
        }
    ]
    for r in robust:
        rows.append(
            {
                **common,
                "param": float(r["Mbar"]),
                "ci_low": float(r["lb"]),
                "ci_high": float(r["ub"]),
                "inference": "none",
                "note": f"HonestDiD {r['delta']} robust CI, method {r['method']}, "
                f"{grid_points} grid points",
            }
        )
    return schema.results_frame(rows)


def breakdown_mbar(bounds: pd.DataFrame, null: float = 0.0) -> float:
    """Smallest ``Mbar`` in a :func:`honest_bounds` table whose robust CI includes ``null``.

    Parameters
    ----------
    bounds : pandas.DataFrame
        Output of :func:`honest_bounds` (one target).
    null : float
        Value tested, usually 0.

    Returns
    -------
    float
        NaN if no interval in the grid includes ``null`` (the breakdown lies beyond the
        largest ``Mbar`` tried), 0.0 if even ``Mbar = 0`` does.

    Raises
    ------
    EstimationError
        If the table holds no robust rows or more than one target.
    """
    rob = bounds[(bounds["analysis"] == "honestdid") & bounds["param"].notna()]
    if rob.empty:
        raise EstimationError("no robust HonestDiD rows in the table")
    if rob["window"].nunique() != 1:
        raise EstimationError("breakdown_mbar needs the rows of one target")
    rob = rob.sort_values("param")
    covers = (rob["ci_low"] <= null) & (rob["ci_high"] >= null)
    return float(rob.loc[covers, "param"].iloc[0]) if covers.any() else math.nan
