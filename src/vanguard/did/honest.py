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

Run time grows with the number of pre-periods (one linear programme per candidate
location of the largest pre-period break and per grid point): bin a monthly event study
to quarters or trim it to a year or two of pre-periods first. A quarterly
Callaway-Sant'Anna event study of the synthetic data (7 pre, 12 post quarters) takes
about 30 s for five ``Mbar`` values at 100 grid points on one core. Relative-magnitude
bounds on the *average* of many post periods grow quickly with ``Mbar`` (the allowed
violation accumulates period by period), so for a long post-period also report a short
target such as year 1, ``target=(0, 4)`` in quarters.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.errors import EstimationError

__all__ = ["HonestInputs", "breakdown_mbar", "event_study_inputs", "honest_bounds"]

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
            )
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
    for r in robust.iter_rows(named=True):
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
