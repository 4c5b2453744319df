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

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.did.design import Design, prepared
from vanguard.errors import EstimationError

INFERENCE_METHODS = ("cluster", "wild_bootstrap", "randomisation", "auto")
POOLED = "years_1_3"
YEARLY = ("year_1", "year_2", "year_3")


def window_column(group: str, window: str) -> str:
    """Regressor name of the exposure dummy of ``group`` in ``window``."""
    return f"d_{group}__{window}"


def add_window_dummies(
    design: Design, windows: Sequence[str] | Mapping[str, tuple[int, int]]
) -> tuple[pd.DataFrame, dict]:
    """Add one 0/1 column per group x window to a copy of ``design.frame``.

    Post-period months before the end of the last window that no window covers get a
    nuisance dummy of their own (``d_<group>__other_post``): coded 0, they would join
    the baseline of a model that compares treated with untreated months.

    Parameters
    ----------
    design : Design
    windows : sequence of str or mapping
        Names of :data:`vanguard.schema.WINDOWS`, or ``{name: (lo, hi)}`` in months since
        start, estimated jointly in one regression; they must not overlap.

    Returns
    -------
    frame : pandas.DataFrame
        Treated areas' months after the last window are dropped.
    columns : dict
        ``(group, window) -> column name`` (the nuisance dummy is not included).

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
    spans_by_name = schema.resolve_windows(windows)
    spans = sorted(spans_by_name.values())
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        if lo < hi:
            raise EstimationError(
                f"windows {list(spans_by_name)} overlap; estimate them separately"
            )
    frame = design.frame
    last = max(hi for _, hi in spans)
    beyond = frame["rel"].to_numpy() >= last
    if beyond.any():
        # kept, these treated months would be coded untreated and join the baseline
        areas = frame.loc[beyond, schema.AREA].unique()
        warnings.warn(
            f"dropped {int(beyond.sum())} area-months of {len(areas)} treated area(s) "
            f"more than {last} months after start (beyond the windows {list(spans_by_name)})",
            UserWarning,
            stacklevel=2,
        )
    frame = frame[~beyond].copy()
    cols = {}
    rel = frame["rel"].to_numpy()
    covered_any = np.zeros(len(frame), dtype=bool)
    for lo, hi in spans:
        covered_any |= (rel >= lo) & (rel < hi)
    for g in design.groups:
        member = frame[design.treated_col(g)].to_numpy() == 1
        for w, (lo, hi) in spans_by_name.items():
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
        gap = member & ~covered_any
        if gap.any():
            frame[window_column(g, "other_post")] = gap.astype("float64")
    return frame, cols


def nuisance_columns(frame: pd.DataFrame, groups: Sequence[str]) -> list[str]:
    """The nuisance post-period dummies :func:`add_window_dummies` added to ``frame``."""
    return [c for g in groups if (c := window_column(g, "other_post")) in frame.columns]


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
    # only the model's columns: pyfixest's formula machinery copies and checks every
    # column it is given
    return _fit_tidy(frame[["y", "area", "t", *regressors]], regressors, scale)[0]


def _fit_tidy(data: pd.DataFrame, regressors: Sequence[str], scale: str):
    """The fit of :func:`fit_fixest` on the model's columns, and its coefficient table."""
    import pyfixest as pf

    fml = f"y ~ {' + '.join(regressors)} | area + t"
    with warnings.catch_warnings():
        # pyfixest warns about its own defaults; they are stated in the module docstring
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        if scale == "poisson":
            fit = pf.fepois(fml, data=data, vcov={"CRV1": "area"})
        else:
            fit = pf.feols(fml, data=data, vcov={"CRV1": "area"})
        tidy = fit.tidy()
    lost = [r for r in regressors if r not in tidy.index]
    if lost:
        raise EstimationError(f"regressor(s) {lost} dropped as collinear with the fixed effects")
    return fit, tidy


@dataclass(frozen=True)
class ModelFrame:
    """One TWFE regression's inputs, built once per prepared sample and window set.

    Attributes
    ----------
    frame : pandas.DataFrame
        :func:`add_window_dummies`' frame (the sample with the window dummies).
    data : pandas.DataFrame
        What pyfixest is given: ``y``, ``area`` (categorical: pyfixest factorises integer
        codes far faster than strings), ``t`` and the regressors.
    columns : dict
        ``(group, window) -> column name``.
    regressors : list of str
        The window dummies, then the nuisance post-period dummies.
    """

    frame: pd.DataFrame
    data: pd.DataFrame
    columns: dict
    regressors: list[str]


def model_frame(
    design: Design, windows: Sequence[str] | Mapping[str, tuple[int, int]]
) -> ModelFrame:
    """The inputs of the regression of ``windows`` (estimated jointly) on ``design``.

    Parameters
    ----------
    design : Design
    windows : sequence of str or mapping
        As :func:`add_window_dummies`.

    Returns
    -------
    ModelFrame

    Raises
    ------
    EstimationError
        As :func:`add_window_dummies`.
    """
    frame, cols = add_window_dummies(design, windows)
    regs = list(cols.values()) + nuisance_columns(frame, design.groups)
    data = frame[["y", "area", "t", *regs]]
    # the clusters and the area effects are the same areas as with string codes
    data = data.assign(area=pd.Categorical(data["area"]))
    return ModelFrame(frame=frame, data=data, columns=cols, regressors=regs)


def window_sets(windows: Mapping[str, tuple[int, int]]) -> list[dict[str, tuple[int, int]]]:
    """Group windows into regressions of non-overlapping windows, in the order given.

    The Morciano windows give two regressions: years 1-3 alone, and the three years
    together (so no post month of a single-year model is coded as baseline).
    """
    sets: list[dict[str, tuple[int, int]]] = []
    for name, (lo, hi) in windows.items():
        for s in sets:
            if all(hi <= a or lo >= b for a, b in s.values()):
                s[name] = (lo, hi)
                break
        else:
            sets.append({name: (lo, hi)})
    return sets


def estimate_twfe(
    panel_or_design,
    outcome: str | None = None,
    *,
    scale: str = "rate",
    groups: Sequence[str] = (schema.POPULATION_BASED, schema.CARE_HOME),
    windows: Sequence[str] | Mapping[str, tuple[int, int]] = (
        "years_1_3", "year_1", "year_2", "year_3"),
    pre_months: int | None = 24,
    balanced: bool = True,
    controls: str | Sequence[str] = "never",
    inference: str = "cluster",
    n_boot: int = 999,
    seed: int = schema.DEFAULT_SEED,
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
    windows : sequence of str or mapping
        Keys of :data:`vanguard.schema.WINDOWS`, or ``{name: (lo, hi)}`` months since
        start. Overlapping windows are fitted in separate regressions
        (:func:`window_sets`).
    pre_months : int or None
    balanced : bool
    controls : {"never", "notyet"} or sequence of str
        Comparison areas (:func:`vanguard.did.design.prepare`); ``notyet`` is refused:
        the regression compares with not-yet-treated months of other cohorts anyway,
        and never-treated areas cannot be left out of it.
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

    if isinstance(controls, str) and controls != "never":
        raise EstimationError(
            f"controls={controls!r}: two-way fixed effects compare with never-treated areas "
            "(or an explicit list); not-yet-treated comparisons are Callaway-Sant'Anna's"
        )
    if inference not in INFERENCE_METHODS:
        raise EstimationError(
            f"unknown inference {inference!r}; expected one of {INFERENCE_METHODS}"
        )
    named = not isinstance(windows, Mapping)
    windows = schema.resolve_windows(windows)
    fitted = dict(windows)
    if named and any(w in YEARLY for w in windows):
        # a single year is estimated with all three years, so that no post month of the
        # sample is coded as baseline
        fitted = {w: v for w, v in windows.items() if w not in YEARLY}
        fitted.update({w: schema.WINDOWS[w] for w in YEARLY})
    post = max(hi for _, hi in fitted.values())
    if isinstance(panel_or_design, Design):
        prep, design = None, panel_or_design
    else:
        if outcome is None:
            raise EstimationError("outcome is required when a panel (not a Design) is given")
        # the sample and its regression frames are built once per panel content
        prep = prepared(
            panel_or_design,
            outcome,
            scale=scale,
            groups=groups,
            pre_months=pre_months,
            post_months=post,
            balanced=balanced,
            controls=controls,
            data_source=data_source,
        )
        design = prep.copy_design()
    if design.scale == "poisson" and inference == "randomisation":
        raise EstimationError(
            "inference='randomisation' is not available for the Poisson model; use "
            "'cluster', 'wild_bootstrap' or 'auto'"
        )
    estimator = "twfe_poisson" if design.scale == "poisson" else "twfe"
    rows = []
    ri_cache: dict = {}
    for wset in window_sets(fitted):
        if prep is None:
            mf = model_frame(design, wset)
        else:
            build = functools.partial(model_frame, prep.design, wset)
            mf = prep.derived(("twfe.model_frame", tuple(wset.items())), build)
        frame, cols, regs = mf.frame, mf.columns, mf.regressors
        fit, tidy = _fit_tidy(mf.data, regs, design.scale)
        # plain arrays and a position per regressor: .loc (or to_dict) per cell costs
        # more than the rest of the tidy output, and one array of the whole table less
        # than one per column
        pos = {name: i for i, name in enumerate(tidy.index.tolist())}
        names = ("Estimate", "Std. Error", "2.5%", "97.5%", "Pr(>|t|)")
        at = tidy.columns.get_indexer(names)
        if (at < 0).any():
            raise KeyError(f"pyfixest's coefficient table has no column(s) "
                           f"{[c for c, i in zip(names, at, strict=True) if i < 0]}")
        coef = dict(zip(names, tidy.to_numpy(dtype="float64")[:, at].T, strict=True))
        n_obs = int(fit._N)
        fwl = None
        for (g, w), col in cols.items():
            if w not in windows:
                continue
            method, note = inference, ""
            if inference == "auto":
                method, rule = inf.headline_inference(design.n_treated[g])
                note = rule
            est = float(coef["Estimate"][pos[col]])
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
                    se=float(coef["Std. Error"][pos[col]]),
                    ci_low=float(coef["2.5%"][pos[col]]),
                    ci_high=float(coef["97.5%"][pos[col]]),
                    p_value=float(coef["Pr(>|t|)"][pos[col]]),
                    inference="cluster",
                )
            elif method == "wild_bootstrap":
                if fwl is None:
                    fwl = inf.residualise_fit(fit, frame, regs, design.scale)
                res = inf.wild_cluster_bootstrap(fwl, col, n_boot=n_boot, seed=seed)
                if design.scale == "poisson":
                    res.note = "; ".join(
                        x for x in (res.note, "wild bootstrap of the IRLS linearisation") if x
                    )
                row.update(
                    se=inf.interval_se(res.ci_low, res.ci_high, design.n_treated[g]
                                       + design.n_control, alpha=0.05),
                    ci_low=res.ci_low,
                    ci_high=res.ci_high,
                    p_value=res.p_value,
                    inference="wild_bootstrap",
                )
                note = "; ".join(x for x in (note, res.note, inf.INTERVAL_SE_NOTE) if x)
            else:
                key = (g, tuple(wset))
                if key not in ri_cache:
                    ri_cache[key] = inf.randomisation_inference(
                        design, g, None, windows=wset, n_perm=n_boot, seed=seed
                    )
                res = ri_cache[key][w]
                row.update(
                    se=inf.interval_se(res.ci_low, res.ci_high, design.n_treated[g]
                                       + design.n_control, alpha=0.05),
                    ci_low=res.ci_low,
                    ci_high=res.ci_high,
                    p_value=res.p_value,
                    inference="randomisation",
                )
                note = "; ".join(x for x in (note, res.note, inf.INTERVAL_SE_NOTE) if x)
            row["note"] = note
            rows.append(row)
    worder = {w: i for i, w in enumerate(windows)}
    gorder = {g: i for i, g in enumerate(design.groups)}
    rows.sort(key=lambda r: (gorder[r["group"]], worder[r["window"]]))
    return schema.results_frame(rows)
