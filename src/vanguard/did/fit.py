"""Every estimator, called the same way: ``estimator(panel, spec) -> tidy results``.

Each function here takes the analysis panel and a :class:`vanguard.did.spec.Spec`,
checks that it can honour every field of the specification (raising
:class:`vanguard.did.spec.SpecError` naming the first one it cannot), imposes the
specification's programme of treatment groups on the panel when it has one, runs the
estimator and returns the project's tidy results table
(:func:`vanguard.schema.results_frame`). The estimators themselves live in the modules
named in each docstring; this module is the one place that maps specification fields
onto their arguments.

Headline inference (``inference="auto"``)
-----------------------------------------
* Two-way fixed effects, event studies, placebo and leave-one-out:
  :func:`vanguard.did.inference.headline_inference` - the restricted wild cluster
  bootstrap with fewer than 10 treated areas, cluster-robust (CRV1) otherwise.
* Callaway-Sant'Anna and imputation have no wild bootstrap here; their analytic,
  area-clustered influence-function standard errors are kept, and with fewer than 10
  treated areas intervals and p-values use the t distribution with (treated areas - 1)
  degrees of freedom instead of the normal (``inference="analytic_t"``): the variance
  is estimated from the treated areas' few residuals and a normal interval is too
  narrow (see the Monte Carlo in the tests).
* Per-site effects: placebo-based (Conley-Taber style) intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.did.spec import Spec, SpecError

TWFE_INFERENCE = ("auto", "cluster", "wild_bootstrap", "randomisation")
ANALYTIC_INFERENCE = ("auto", "cluster", "multiplier_bootstrap")
SMALL_T_THRESHOLD = 10
"""Fewer treated areas than this: t(G_treated - 1) intervals for the analytic
influence-function standard errors under ``inference="auto"``."""

_ANALYTIC_ROWS = ("main", "event_study", "aggregation", "cohort", "group_time")


def _controls_for(spec: Spec, *, notyet: bool) -> str | list[str]:
    if spec.controls == "notyet" and not notyet:
        raise SpecError(
            "controls",
            "'notyet' compares cohorts period by period, which only Callaway-Sant'Anna "
            "does; use 'never' or an explicit list of areas",
        )
    return spec.control_setting


def _explicit(spec: Spec) -> list[str] | None:
    return None if isinstance(spec.controls, str) else list(spec.controls)


def small_sample_t(results: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Replace normal intervals of analytic rows by t(G_treated - 1) ones.

    Applied where a row has fewer than :data:`SMALL_T_THRESHOLD` treated areas and
    ``inference == "analytic"``; the row's ``inference`` becomes ``"analytic_t"`` and its
    note says so. Other rows are returned unchanged.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results.
    alpha : float

    Returns
    -------
    pandas.DataFrame
    """
    out = results.copy()
    n = out["n_treated"].astype("float64")
    hit = (
        out["inference"].eq("analytic")
        & out["analysis"].isin(_ANALYTIC_ROWS)
        & n.lt(SMALL_T_THRESHOLD)
        & n.ge(2)
        & out["se"].gt(0)
    ).to_numpy(dtype=bool)
    if not hit.any():
        return out
    # scipy.stats takes about a second to import: only where a t interval is needed, so
    # a notebook that reads every result from the cache never pays it
    from scipy import stats

    df = n[hit].to_numpy() - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    est, se = out.loc[hit, "estimate"].to_numpy(), out.loc[hit, "se"].to_numpy()
    out.loc[hit, "ci_low"] = est - crit * se
    out.loc[hit, "ci_high"] = est + crit * se
    out.loc[hit, "p_value"] = 2 * stats.t.sf(np.abs(est / se), df)
    out.loc[hit, "inference"] = "analytic_t"
    rule = (
        f"headline inference rule: fewer than {SMALL_T_THRESHOLD} treated areas -> analytic "
        "influence-function SE with t(treated areas - 1) intervals"
    )
    out.loc[hit, "note"] = [f"{x}; {rule}" if x else rule for x in out.loc[hit, "note"]]
    out[["pct", "pct_ci_low", "pct_ci_high"]] = np.nan
    return schema.results_frame(out, blank_tests=True)


# --- the difference-in-differences grid ------------------------------------------------
def twfe(panel: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Two-way fixed effects by window (:func:`vanguard.did.twfe.estimate_twfe`).

    OLS on the rate, log or count scale; Poisson fixed effects with ``scale="poisson"``.

    Raises
    ------
    SpecError
        ``unit`` other than month (the windows are months since start), ``controls``
        'notyet', ``inference`` 'multiplier_bootstrap', ``alpha`` other than 0.05.
    """
    from vanguard.did.twfe import estimate_twfe

    spec.require("two-way fixed effects", unit=("month",), inference=TWFE_INFERENCE,
                 alpha=(0.05,))
    return estimate_twfe(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        groups=(spec.group,),
        windows=spec.window_map,
        pre_months=spec.pre_months,
        controls=_controls_for(spec, notyet=False),
        inference=spec.inference,
        n_boot=spec.n_boot,
        seed=spec.seed,
        data_source=spec.data_source,
    )


def callaway_santanna(panel: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Callaway-Sant'Anna group-time effects, aggregations, windows and per-cohort effects
    (:func:`vanguard.did.staggered.estimate_cs`).

    Raises
    ------
    SpecError
        ``scale`` 'poisson' (the estimator is linear), ``inference`` 'wild_bootstrap' or
        'randomisation'.
    """
    from vanguard.did.staggered import estimate_cs

    spec.require("Callaway-Sant'Anna", scale=("rate", "log", "count"),
                 inference=ANALYTIC_INFERENCE)
    out = estimate_cs(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        group=spec.group,
        control="notyet" if spec.controls == "notyet" else "never",
        controls=_explicit(spec),
        unit=spec.unit,
        windows=spec.window_map,
        bootstrap=spec.inference == "multiplier_bootstrap",
        n_boot=spec.n_boot,
        seed=spec.seed,
        alpha=spec.alpha,
        pre_months=spec.pre_months,
        data_source=spec.data_source,
    )
    return small_sample_t(out, spec.alpha) if spec.inference == "auto" else out


def imputation(panel: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Borusyak-Jaravel-Spiess imputation (:func:`vanguard.did.imputation.estimate_imputation`).

    Raises
    ------
    SpecError
        ``scale`` 'poisson', ``unit`` other than month, ``controls`` 'notyet',
        ``inference`` other than auto or cluster.
    """
    from vanguard.did.imputation import estimate_imputation

    spec.require("imputation", scale=("rate", "log", "count"), unit=("month",),
                 inference=("auto", "cluster"))
    _controls_for(spec, notyet=False)
    out = estimate_imputation(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        groups=(spec.group,),
        windows=spec.window_map,
        pre_months=spec.pre_months,
        post_months=spec.post_months,
        n_boot=spec.n_boot,
        seed=spec.seed,
        alpha=spec.alpha,
        controls=_explicit(spec),
        data_source=spec.data_source,
    )
    return small_sample_t(out, spec.alpha) if spec.inference == "auto" else out


ESTIMATORS: dict[str, tuple[Callable[[pd.DataFrame, Spec], pd.DataFrame], dict]] = {
    "twfe": (twfe, {}),
    "twfe_poisson": (twfe, {"scale": "poisson"}),
    "cs_never": (callaway_santanna, {"controls": "never"}),
    "cs_notyet": (callaway_santanna, {"controls": "notyet"}),
    "imputation": (imputation, {}),
}
"""Grid estimator name -> (function, the specification fields it fixes)."""

ESTIMATOR_LABELS: dict[str, str] = {
    "twfe": "Two-way fixed effects",
    "twfe_poisson": "Two-way fixed effects, Poisson",
    "cs_never": "Callaway-Sant'Anna, never-treated controls",
    "cs_notyet": "Callaway-Sant'Anna, not-yet-treated controls",
    "imputation": "Imputation (Borusyak-Jaravel-Spiess)",
}


def estimate(panel: pd.DataFrame, spec: Spec, estimator: str) -> pd.DataFrame:
    """One estimator of the grid (:data:`ESTIMATORS`) on ``spec``.

    Raises
    ------
    SpecError
        Unknown estimator (field ``estimator``), or a field it cannot honour.
    """
    if estimator not in ESTIMATORS:
        raise SpecError("estimator", f"expected one of {list(ESTIMATORS)}; found {estimator!r}")
    function, fixed = ESTIMATORS[estimator]
    return function(panel, spec.replace(**fixed) if fixed else spec)


# --- dynamics and sensitivity -------------------------------------------------------------
def event_study(panel: pd.DataFrame, spec: Spec, *, leads: int, lags: int) -> pd.DataFrame:
    """Regression event study by ``spec.unit`` since each area's own start, binned ends,
    joint pre-trend test (:func:`vanguard.did.event_study.estimate_event_study`).

    The sample is ``spec.pre_months`` before the earliest start to the end of the last
    window; periods beyond ``leads``/``lags`` are pooled into the end bins.

    Raises
    ------
    SpecError
        ``controls`` 'notyet', ``inference`` randomisation or multiplier bootstrap,
        ``alpha`` other than 0.05, or ``leads`` x unit longer than ``pre_months``.
    """
    from vanguard.did.event_study import UNITS, estimate_event_study

    spec.require("the event study", inference=("auto", "cluster", "wild_bootstrap"),
                 alpha=(0.05,))
    if leads * UNITS[spec.unit] > spec.pre_months:
        raise SpecError("pre_months", f"{leads} leads of a {spec.unit} need at least "
                        f"{leads * UNITS[spec.unit]} pre-period months; found {spec.pre_months}")
    return estimate_event_study(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        group=spec.group,
        unit=spec.unit,
        leads=leads,
        lags=lags,
        inference=spec.inference,
        n_boot=spec.n_boot,
        seed=spec.seed,
        pre_months=spec.pre_months,
        post_months=spec.post_months,
        controls=_controls_for(spec, notyet=False),
        data_source=spec.data_source,
    )


def honest(panel: pd.DataFrame, spec: Spec, *, mbar: Sequence[float]) -> pd.DataFrame:
    """HonestDiD relative-magnitude intervals for the average post-period effect
    (:func:`vanguard.did.honest.honest_bounds`).

    The event study behind them is Callaway-Sant'Anna with a universal base period on
    linear scales (robust to staggered starts, with the full covariance), and the
    Poisson regression event study (its CRV1 covariance) on the Poisson scale.

    Raises
    ------
    SpecError
        ``inference`` other than auto or cluster (the bounds use the analytic
        covariance), or a field the event study behind them cannot honour.
    """
    from vanguard.did.honest import honest_bounds
    from vanguard.did.staggered import fit_cs

    spec.require("HonestDiD", inference=("auto", "cluster"))
    mbar = [float(m) for m in mbar]
    if spec.scale == "poisson":
        per = 3 if spec.unit == "quarter" else 1
        es = event_study(panel, spec.replace(inference="cluster"),
                         leads=spec.pre_months // per, lags=spec.post_months // per - 1)
        return honest_bounds(
            es, vcov=es.attrs["vcov"].to_numpy(), Mbar=mbar, alpha=spec.alpha, seed=spec.seed,
            estimator="event_study_poisson",
            outcome=spec.outcome, scale=spec.scale, group=spec.group,
            data_source=spec.data_source,
        )
    fit = fit_cs(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        group=spec.group,
        control="notyet" if spec.controls == "notyet" else "never",
        controls=_explicit(spec),
        base_period="universal",
        unit=spec.unit,
        aggregations=("dynamic",),
        n_boot=spec.n_boot,
        seed=spec.seed,
        alpha=spec.alpha,
        pre_months=spec.pre_months,
        post_months=spec.post_months,
        data_source=spec.data_source,
    )
    return honest_bounds(fit, Mbar=mbar, alpha=spec.alpha, seed=spec.seed)


def placebo(panel: pd.DataFrame, spec: Spec, *, shifts: Sequence[int]) -> pd.DataFrame:
    """TWFE effects of pretend starts ``shift`` months early
    (:func:`vanguard.did.robustness.placebo_start_dates`).

    Raises
    ------
    SpecError
        As :func:`twfe`; explicit control lists are not supported here.
    """
    from vanguard.did.robustness import placebo_start_dates

    spec.require("the placebo analysis", unit=("month",), controls=("never",),
                 inference=TWFE_INFERENCE, alpha=(0.05,))
    return placebo_start_dates(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        groups=(spec.group,),
        shifts=[int(s) for s in shifts],
        pre_months=spec.pre_months,
        inference=spec.inference,
        n_boot=spec.n_boot,
        seed=spec.seed,
        data_source=spec.data_source,
    )


def _named_window(spec: Spec, window: str, who: str) -> None:
    """Refuse a window that is not both a named window and one of the specification's."""
    if window not in spec.window_map or window not in schema.WINDOWS:
        raise SpecError("windows", f"{who} needs the named window {window!r} among the "
                        f"specification's windows {list(spec.window_map)}")


def _site_groups(spec: Spec) -> dict[str, str] | None:
    return None if spec.programme is None else spec.programme.site_groups()


def leave_one_out(panel: pd.DataFrame, spec: Spec, *, window: str = "years_1_3") -> pd.DataFrame:
    """The TWFE effect with each site's areas left out in turn
    (:func:`vanguard.did.robustness.leave_one_site_out`).

    Raises
    ------
    SpecError
        As :func:`twfe`; ``window`` not a window of the specification.
    """
    from vanguard.did.robustness import leave_one_site_out

    spec.require("leave-one-site-out", unit=("month",), controls=("never",),
                 inference=TWFE_INFERENCE, alpha=(0.05,))
    _named_window(spec, window, "leave-one-site-out")
    return leave_one_site_out(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        group=spec.group,
        window=window,
        pre_months=spec.pre_months,
        inference=spec.inference,
        n_boot=spec.n_boot,
        seed=spec.seed,
        data_source=spec.data_source,
        site_group=_site_groups(spec),
    )


def per_site(panel: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """One effect per site of ``spec.group`` with placebo-based intervals
    (:func:`vanguard.did.persite.per_site_effects`).

    ``inference="auto"`` gives the Conley-Taber-style placebo intervals (a single
    treated area's cluster-robust error is far too narrow); ``cluster`` the
    cluster-robust ones. ``n_boot`` is the number of placebo draws.

    Raises
    ------
    SpecError
        ``scale`` 'poisson', ``unit`` other than month, ``controls`` other than never,
        ``inference`` other than auto or cluster, windows not named.
    """
    from vanguard.did.persite import per_site_effects

    spec.require("per-site effects", scale=("rate", "log", "count"), unit=("month",),
                 controls=("never",), inference=("auto", "cluster"))
    named = [w for w in spec.window_map if w in schema.WINDOWS]
    if len(named) != len(spec.windows):
        raise SpecError("windows", "per-site effects use the named windows "
                        f"{list(schema.WINDOWS)}")
    # only this group's areas and the controls: another group's sites (whose window may
    # not fit the panel) are neither estimated nor used as comparisons here
    p = spec.panel(panel)
    labels = p[schema.GROUP].astype(str)
    p = p[schema.member_mask(labels, spec.group) | labels.eq(schema.CONTROL).to_numpy()]
    out = per_site_effects(
        p,
        spec.outcome,
        scale=spec.scale,
        windows=tuple(named),
        inference="conley_taber" if spec.inference == "auto" else "cluster",
        pre_months=spec.pre_months,
        alpha=spec.alpha,
        site_group=_site_groups(spec),
        n_draws=spec.n_boot,
        seed=spec.seed,
        data_source=spec.data_source,
    )
    return out[out["group"] == spec.group].reset_index(drop=True)


def mde(
    panel: pd.DataFrame,
    spec: Spec,
    *,
    powers: Sequence[float],
    n_sims: int,
    window: str = "years_1_3",
) -> pd.DataFrame:
    """Minimum detectable effect by simulation on the pre-period, one row per power
    (:func:`vanguard.did.power.minimum_detectable_effect`); the pre-period ends at the
    group's earliest start, and ``spec.n_boot`` is the number of bootstrap or
    permutation draws inside each simulation.

    Raises
    ------
    SpecError
        ``scale`` 'poisson', ``unit`` other than month, ``controls`` other than never,
        ``inference`` multiplier bootstrap, ``window`` not a named window of the
        specification.
    """
    from vanguard.did.power import minimum_detectable_effect

    spec.require("the power simulation", scale=("rate", "log", "count"), unit=("month",),
                 controls=("never",),
                 inference=("auto", "cluster", "wild_bootstrap", "randomisation"))
    _named_window(spec, window, "the power simulation")
    # one set of simulations serves every power
    return minimum_detectable_effect(
        spec.panel(panel),
        spec.outcome,
        scale=spec.scale,
        group=spec.group,
        window=window,
        alpha=spec.alpha,
        power=[float(p) for p in powers],
        n_sims=int(n_sims),
        seed=spec.seed,
        pre_months=spec.pre_months,
        inference=spec.inference,
        n_perm=spec.n_boot,
        n_boot=spec.n_boot,
        data_source=spec.data_source,
    )
