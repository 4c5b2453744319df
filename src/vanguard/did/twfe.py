"""Morciano-style two-way fixed-effects difference-in-differences.

The model of Morciano et al. (2020) on a monthly area panel::

    y_it = a_i + m_t + sum_g b_g * D_git + e_it

with area (``a_i``) and month (``m_t``) fixed effects and one exposure dummy per analysis
group ``g`` (population-based, care-home, ...), compared against never-treated areas.
The pooled years 1-3 effect comes from a regression with one post dummy per group; the
year 1 / 2 / 3 effects from a regression with one dummy per group x year.

Scales: ``rate``, ``log`` and ``count`` are estimated by OLS (:func:`pyfixest.feols`),
``poisson`` by Poisson fixed effects (:func:`pyfixest.fepois`, log link; effects are log
rate ratios).

Small-sample conventions of the cluster-robust (CRV1, by area) standard errors
------------------------------------------------------------------------------
pyfixest's default ``ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min")``:
``V = G/(G-1) * (N-1)/(N-K) * V0`` where ``K`` counts the regressors plus the month fixed
effects, but not the area fixed effects, because areas are nested in the clusters
(Stata ``reghdfe`` / R ``fixest`` convention). p-values and confidence intervals use
the t distribution with ``G - 1`` degrees of freedom.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.did.design import Design, as_design
from vanguard.errors import EstimationError

INFERENCE_METHODS = ("cluster", "wild_bootstrap", "randomisation", "auto")
POOLED = "years_1_3"
YEARLY = ("year_1", "year_2", "year_3")


def window_column(group: str, window: str) -> str:
    """Regressor name of the exposure dummy of ``group`` in ``window``."""
    return f"d_{group}__{window}"


def add_window_dummies(design: Design, windows: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """Add one 0/1 column per group x window to a copy of ``design.frame``.

    Parameters
    ----------
    design : Design
    windows : sequence of str
        Keys of :data:`vanguard.schema.WINDOWS` estimated jointly in one regression; they
        must not overlap.

    Returns
    -------
    frame : pandas.DataFrame
        Treated areas' months after the last window are dropped.
    columns : dict
        ``(group, window) -> column name``.

    Raises
    ------
    EstimationError
        Unknown or overlapping windows, or a window with no treated area-months.

    Warns
    -----
    UserWarning
        When treated area-months after the last window are dropped (a design prepared
        with a longer post-period than the windows), or when a window is only partly
        inside the panel for a group (naming the group and window).
    """
    unknown = [w for w in windows if w not in schema.WINDOWS]
    if unknown:
        raise EstimationError(f"unknown window(s) {unknown}; expected among {list(schema.WINDOWS)}")
    spans = sorted(schema.WINDOWS[w] for w in windows)
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        if lo < hi:
            raise EstimationError(f"windows {list(windows)} overlap; estimate them separately")
    frame = design.frame
    last = max(hi for _, hi in spans)
    beyond = frame["rel"].to_numpy() >= last
    if beyond.any():
        # kept, these treated months would be coded untreated and join the baseline
        areas = frame.loc[beyond, schema.AREA].unique()
        warnings.warn(
            f"dropped {int(beyond.sum())} area-months of {len(areas)} treated area(s) "
            f"more than {last} months after start (beyond the windows {list(windows)})",
            UserWarning,
            stacklevel=2,
        )
    frame = frame[~beyond].copy()
    cols = {}
    rel = frame["rel"].to_numpy()
    for g in design.groups:
        member = frame[design.treated_col(g)].to_numpy() == 1
        for w in windows:
            lo, hi = schema.WINDOWS[w]
            col = window_column(g, w)
            frame[col] = (member & (rel >= lo) & (rel < hi)).astype("float64")
            if not frame[col].any():
                raise EstimationError(
                    f"group {g!r}, window {w!r}: no treated area-months in the sample "
                    f"(post-period of {design.post_months} months)"
                )
            covered = np.unique(rel[frame[col].to_numpy() == 1])
            if len(covered) < hi - lo:
                # e.g. a late cohort whose third year runs past the end of the panel: the
                # estimate then averages only the months observed
                warnings.warn(
                    f"group {g!r}, window {w!r} (months {lo}..{hi - 1} after start) is only "
                    f"partly inside the panel: {len(covered)} of {hi - lo} months since "
                    f"start observed (months {int(covered.min())}..{int(covered.max())}); "
                    "the estimate averages those months only",
                    UserWarning,
                    stacklevel=2,
                )
            cols[(g, w)] = col
    return frame, cols


def fit_fixest(frame: pd.DataFrame, regressors: Sequence[str], scale: str):
    """Fit the TWFE model with pyfixest, CRV1 standard errors clustered by area.

    Parameters
    ----------
    frame : pandas.DataFrame
        Needs ``y``, ``area``, ``t`` and the regressors.
    regressors : sequence of str
    scale : str
        ``poisson`` uses :func:`pyfixest.fepois`, otherwise :func:`pyfixest.feols`.

    Returns
    -------
    pyfixest model

    Raises
    ------
    EstimationError
        If pyfixest drops a regressor (collinear with the fixed effects).
    """
    import pyfixest as pf

    fml = f"y ~ {' + '.join(regressors)} | area + t"
    with warnings.catch_warnings():
        # pyfixest warns about its own defaults; they are stated in the module docstring
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        if scale == "poisson":
            fit = pf.fepois(fml, data=frame, vcov={"CRV1": "area"})
        else:
            fit = pf.feols(fml, data=frame, vcov={"CRV1": "area"})
    got = list(fit.coef().index)
    lost = [r for r in regressors if r not in got]
    if lost:
        raise EstimationError(f"regressor(s) {lost} dropped as collinear with the fixed effects")
    return fit


def _residualised(fit, frame: pd.DataFrame, regs: list[str], scale: str):
    """FWL-residualised data of a fitted model, for the bootstrap."""
    from vanguard.did import inference as inf

    if scale != "poisson":
        return inf.residualise(frame, "y", regs)
    mu = getattr(fit, "_Y_hat_response", None)
    if mu is None or len(mu) != len(frame):
        raise EstimationError(
            "Poisson wild bootstrap: fitted means not available for every row "
            "(pyfixest dropped rows or changed its interface)"
        )
    return inf.residualise_poisson(frame, regs, mu)


def _window_sets(windows: Sequence[str]) -> list[tuple[str, ...]]:
    """Group requested windows into regressions: pooled alone, the years together."""
    sets = []
    if POOLED in windows:
        sets.append((POOLED,))
    years = [w for w in windows if w != POOLED]
    if years:
        # all three years enter together so no post month is coded as baseline
        sets.append(tuple(dict.fromkeys(list(YEARLY) + years)))
    return sets


def estimate_twfe(
    panel_or_design,
    outcome: str | None = None,
    *,
    scale: str = "rate",
    groups: Sequence[str] = (schema.POPULATION_BASED, schema.CARE_HOME),
    windows: Sequence[str] = ("years_1_3", "year_1", "year_2", "year_3"),
    pre_months: int | None = 24,
    balanced: bool = True,
    inference: str = "cluster",
    n_boot: int = 999,
    seed: int = 20150310,
    data_source: str | None = None,
) -> pd.DataFrame:
    """Two-way fixed-effects DiD effects by group x post-period window.

    Parameters
    ----------
    panel_or_design : pandas.DataFrame or Design
        The analysis panel, or a design from :func:`vanguard.did.design.prepare` (then
        ``outcome``, ``scale``, ``groups``, ``pre_months`` and ``balanced`` are taken
        from it).
    outcome : str, optional
        Outcome column (required with a panel).
    scale : {"rate", "log", "poisson", "count"}
    groups : sequence of str
        Analysis groups, estimated jointly (one dummy each) against never-treated areas.
    windows : sequence of str
        Keys of :data:`vanguard.schema.WINDOWS`.
    pre_months : int or None
    balanced : bool
    inference : {"cluster", "wild_bootstrap", "randomisation", "auto"}
        ``cluster``: CRV1 by area (pyfixest). ``wild_bootstrap``: restricted wild cluster
        bootstrap with Webb weights (:func:`vanguard.did.inference.wild_cluster_bootstrap`).
        ``randomisation``: permutation of treated areas
        (:func:`vanguard.did.inference.randomisation_inference`). ``auto``: per group,
        the rule of :func:`vanguard.did.inference.headline_inference`, recorded in ``note``.
        Poisson models: the wild bootstrap perturbs the model's IRLS linearisation
        (:func:`vanguard.did.inference.residualise_poisson`); no randomisation inference.
    n_boot : int
        Bootstrap draws or permutations.
    seed : int
        Seed of the bootstrap / permutation generator.
    data_source : str, optional

    Returns
    -------
    pandas.DataFrame
        Tidy results (:func:`vanguard.schema.results_frame`), one row per group x window,
        ``analysis="main"``, ``estimator="twfe"`` or ``"twfe_poisson"``.

    Raises
    ------
    EstimationError
        Unknown inference method or window, a design that cannot be estimated,
        randomisation inference requested for a Poisson model.
    DataError
        Bad panel (see :func:`vanguard.did.design.prepare`).
    """
    from vanguard.did import inference as inf

    if inference not in INFERENCE_METHODS:
        raise EstimationError(
            f"unknown inference {inference!r}; expected one of {INFERENCE_METHODS}"
        )
    windows = tuple(dict.fromkeys(windows))
    unknown = [w for w in windows if w not in schema.WINDOWS]
    if unknown:
        raise EstimationError(f"unknown window(s) {unknown}; expected among {list(schema.WINDOWS)}")
    # a single year is estimated with all three years, so the sample keeps them all
    post = max(schema.WINDOWS[w][1] for wset in _window_sets(windows) for w in wset)
    design = as_design(
        panel_or_design,
        outcome,
        scale=scale,
        groups=groups,
        pre_months=pre_months,
        post_months=post,
        balanced=balanced,
        data_source=data_source,
    )
    if design.scale == "poisson" and inference == "randomisation":
        raise EstimationError(
            "inference='randomisation' is not available for the Poisson model; use "
            "'cluster', 'wild_bootstrap' or 'auto'"
        )
    estimator = "twfe_poisson" if design.scale == "poisson" else "twfe"
    rows = []
    ri_cache: dict = {}
    for wset in _window_sets(windows):
        frame, cols = add_window_dummies(design, wset)
        regs = list(cols.values())
        fit = fit_fixest(frame, regs, design.scale)
        tidy = fit.tidy()
        n_obs = int(fit._N)
        fwl = None
        for (g, w), col in cols.items():
            if w not in windows:
                continue
            method, note = inference, ""
            if inference == "auto":
                method, rule = inf.headline_inference(design.n_treated[g])
                note = rule
            est = float(tidy.loc[col, "Estimate"])
            row = {
                "data_source": design.data_source,
                "analysis": "main",
                "estimator": estimator,
                "outcome": design.outcome,
                "scale": design.scale,
                "group": g,
                "window": w,
                "estimate": est,
                "n_treated": design.n_treated[g],
                "n_control": design.n_control,
                "n_obs": n_obs,
                "pre_mean": design.pre_mean[g],
            }
            if method == "cluster":
                row.update(
                    se=float(tidy.loc[col, "Std. Error"]),
                    ci_low=float(tidy.loc[col, "2.5%"]),
                    ci_high=float(tidy.loc[col, "97.5%"]),
                    p_value=float(tidy.loc[col, "Pr(>|t|)"]),
                    inference="cluster",
                )
            elif method == "wild_bootstrap":
                if fwl is None:
                    fwl = _residualised(fit, frame, regs, design.scale)
                res = inf.wild_cluster_bootstrap(fwl, col, n_boot=n_boot, seed=seed)
                if design.scale == "poisson":
                    res.note = "; ".join(
                        x for x in (res.note, "wild bootstrap of the IRLS linearisation") if x
                    )
                row.update(
                    se=res.se,
                    ci_low=res.ci_low,
                    ci_high=res.ci_high,
                    p_value=res.p_value,
                    inference="wild_bootstrap",
                )
                note = "; ".join(x for x in (note, res.note) if x)
            else:
                if (g, wset) not in ri_cache:
                    ri_cache[(g, wset)] = inf.randomisation_inference(
                        design, g, None, windows=wset, n_perm=n_boot, seed=seed
                    )
                res = ri_cache[(g, wset)][w]
                row.update(
                    se=float(tidy.loc[col, "Std. Error"]),
                    ci_low=res.ci_low,
                    ci_high=res.ci_high,
                    p_value=res.p_value,
                    inference="randomisation",
                )
                note = "; ".join(x for x in (note, res.note) if x)
            row["note"] = note
            rows.append(row)
    worder = {w: i for i, w in enumerate(windows)}
    gorder = {g: i for i, g in enumerate(design.groups)}
    out = schema.results_frame(rows)
    out["_g"] = out["group"].map(gorder)
    out["_w"] = out["window"].map(worder)
    out = out.sort_values(["_g", "_w"], kind="stable").drop(columns=["_g", "_w"])
    return out.reset_index(drop=True)
