"""Benchmark of each estimator next to the raw library call it wraps.

On the synthetic panel (one outcome, the rate scale):

* two-way fixed effects: :func:`vanguard.did.twfe.estimate_twfe` versus ``pyfixest.feols``
  (baseline) versus statsmodels OLS with area and month dummy variables and
  area-clustered standard errors; the Poisson scale versus ``pyfixest.fepois``;
* Callaway-Sant'Anna: :func:`vanguard.did.staggered.estimate_cs` versus
  ``moderndid.att_gt`` + ``moderndid.aggte`` on the same estimation frame (baseline);
* imputation: :func:`vanguard.did.imputation.estimate_imputation` versus its own numpy
  core :func:`vanguard.did.imputation.fit_imputation` (baseline; there is no library
  call to wrap), with ``pyfixest.did2s`` (Gardner's two-stage estimator, the same point
  estimate) as a reference.

Like for like: the raw calls get their inputs built outside the timer, and they are the
inputs the wrapper passes (for TWFE the very regression frames,
:func:`vanguard.did.twfe.model_frame`), with the same options: the same regressions,
CRV1 standard errors clustered by area with pyfixest's default small-sample correction,
and the coefficient table read (``tidy``); for Callaway-Sant'Anna the outcome-regression
estimator and the event-time cut of the dynamic aggregation the wrapper uses, with
the pre-trend row taken from moderndid's own Wald statistic. The ratio is then the
wrapper's whole cost (input checks, finding the prepared sample, tidy output) relative
to the bare computation. Estimation samples are built once per panel
(:func:`vanguard.did.design.prepared`), so the wrapper is timed on later calls, as a
report makes them; extra rows time the first call on a panel (cache cleared) and, for
Callaway-Sant'Anna, the default call with the bootstrap pre-trend test, which the
library does not offer. Each case also records whether the implementations agree on
the estimate.
"""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pandas as pd

from benchmarks import Result, interleaved, skipped, yes_no
from vanguard import schema

OUTCOME = "emergency_admissions"
SCALE = "rate"
OVERHEAD_GOAL = 0.10
"""Wrapper time at most this fraction above the raw library call."""
QUICK_AREAS = 90


def _importable(module: str) -> str | None:
    """None when ``module`` imports, else the reason it does not."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # a colleague's module may be mid-edit
        return f"{module} not importable ({type(exc).__name__}: {exc})"
    return None


def synthetic_panel(quick: bool = False) -> pd.DataFrame:
    """The committed synthetic panel (or a fresh draw when the loader is unavailable).

    Parameters
    ----------
    quick : bool
        Keep every treated area but only enough controls for :data:`QUICK_AREAS` areas.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ImportError
        If neither :mod:`vanguard.panel` nor :mod:`vanguard.synthetic` can be imported.
    """
    try:
        from vanguard.panel import load_panel

        panel = load_panel("synthetic")
    except ImportError:
        from vanguard.synthetic import generate

        panel = generate().panel
    if quick:
        areas = panel.groupby(schema.AREA, sort=True)[schema.GROUP].first()
        treated = areas[areas != schema.CONTROL].index
        controls = areas[areas == schema.CONTROL].index[: max(QUICK_AREAS - len(treated), 10)]
        keep = panel[schema.AREA].isin(treated.union(controls))
        panel = panel.loc[keep].reset_index(drop=True).copy()
        panel.attrs["data_source"] = "synthetic"
    return panel


def _overhead_goal(r: Result, base: Result, quick: bool) -> None:
    if not (r.times and base.times):
        return
    over = r.median / base.median - 1.0
    r.value = over
    r.goal = f"overhead <= {OVERHEAD_GOAL:.0%}"
    r.goal_met = "" if quick else yes_no(over <= OVERHEAD_GOAL)


# --- two-way fixed effects -------------------------------------------------------------


def bench_twfe(panel: pd.DataFrame, repeats: int, quick: bool, scale: str = SCALE) -> list[Result]:
    """TWFE wrapper versus pyfixest.feols (``fepois`` on the Poisson scale) versus
    statsmodels OLS with dummies (linear scales only)."""
    poisson = scale == "poisson"
    case = f"{'Poisson ' if poisson else ''}TWFE {OUTCOME} ({scale}), 2 groups x 4 windows"
    why = _importable("vanguard.did.twfe")
    if why:
        return [skipped("estimators", case, "vanguard.did.twfe.estimate_twfe", why)]
    import pyfixest as pf
    import statsmodels.formula.api as smf

    from vanguard.did import design as design_mod
    from vanguard.did import twfe

    windows = tuple(schema.WINDOWS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = design_mod.prepare(panel, OUTCOME, scale=scale, pre_months=24, post_months=36)
        sets = twfe.window_sets(schema.resolve_windows(windows))
        # the bare computation: the very frames the wrapper hands to pyfixest (the
        # model's columns only, areas as categorical codes), so both sides fit the same
        # regressions on the same input with the same CRV1-by-area covariance and
        # small-sample correction (pyfixest's defaults), and both read the coefficient
        # table the results are taken from
        frames = [twfe.model_frame(design, ws) for ws in sets]

    def wrapper():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return twfe.estimate_twfe(
                panel, OUTCOME, scale=scale, windows=windows, inference="cluster"
            )

    def cold():
        design_mod.clear_cache()
        return wrapper()

    def raw():
        fits = []
        for mf in frames:
            fml = f"y ~ {' + '.join(mf.regressors)} | area + t"
            call = pf.fepois if poisson else pf.feols
            fit = call(fml, data=mf.data, vcov={"CRV1": "area"})
            fit.tidy()
            fits.append(fit)
        return fits

    def dummies():
        fits = []
        for mf in frames:
            fml = f"y ~ {' + '.join(mf.columns.values())} + C(area) + C(t)"
            groups = pd.factorize(mf.frame["area"])[0]
            fits.append(
                smf.ols(fml, data=mf.frame).fit(cov_type="cluster", cov_kwds={"groups": groups})
            )
        return fits

    outs: dict = {}
    times = interleaved({"wrapper": wrapper, "raw": raw}, repeats, outputs=outs)
    # the first call on a panel builds and checks the sample; later calls reuse it
    times.update(interleaved({"cold": cold}, repeats, warmup=False))
    if not poisson:
        # statsmodels is two orders of magnitude slower: one run (no warm-up) places it.
        times.update(interleaved({"statsmodels": dummies}, 1, warmup=False, outputs=outs))
    # Agreement: the pooled-window effect of the first group from all three routes.
    g = design.groups[0] if hasattr(design, "groups") else schema.POPULATION_BASED
    col = twfe.window_column(g, "years_1_3")
    est_w = outs["wrapper"].set_index(["group", "window"]).loc[(g, "years_1_3"), "estimate"]
    est_r = float(outs["raw"][0].coef()[col])
    n = len(frames[0].data)
    base = Result(
        "estimators",
        case,
        f"pyfixest.{'fepois' if poisson else 'feols'} (raw)",
        size=f"{n:,} area-months",
        times=times["raw"],
        baseline=True,
        note=f"{len(frames)} regressions on prepared frames",
    )
    wrap = Result(
        "estimators",
        case,
        "vanguard.did.twfe.estimate_twfe",
        size=base.size,
        times=times["wrapper"],
        note=f"|estimate - raw| = {abs(est_w - est_r):.2e}",
    )
    _overhead_goal(wrap, base, quick)
    first = Result(
        "estimators",
        case,
        "vanguard.did.twfe.estimate_twfe, first call on the panel",
        size=base.size,
        times=times["cold"],
        note="sample cache cleared before each call: sample built and checked",
    )
    if poisson:
        return [base, wrap, first]
    est_s = float(outs["statsmodels"][0].params[col])
    sm = Result(
        "estimators",
        case,
        "statsmodels OLS with dummies",
        size=base.size,
        times=times["statsmodels"],
        note=f"|estimate - raw| = {abs(est_s - est_r):.2e}",
    )
    return [base, wrap, first, sm]


# --- Callaway-Sant'Anna ------------------------------------------------------------------


def bench_cs(panel: pd.DataFrame, repeats: int, quick: bool) -> list[Result]:
    """Callaway-Sant'Anna wrapper versus moderndid.att_gt + aggte."""
    case = f"Callaway-Sant'Anna {OUTCOME} ({SCALE}), population-based, 4 aggregations"
    why = _importable("vanguard.did.staggered")
    if why:
        return [skipped("estimators", case, "vanguard.did.staggered.estimate_cs", why)]
    import moderndid

    from vanguard.did import design as design_mod
    from vanguard.did import staggered

    group = schema.POPULATION_BASED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = staggered.estimation_sample(panel, OUTCOME, scale=SCALE, group=group)
    # The same frame moderndid receives inside the wrapper, and the same calls: the
    # outcome-regression estimator (without covariates "reg", "dr" and "ipw" give the
    # same estimates and standard errors, and the wrapper uses "reg"), analytic
    # standard errors, and the dynamic aggregation cut to the sample's 24 pre- and 36
    # post-period months as the wrapper cuts it.
    f, _ = staggered.moderndid_frame(sample)
    min_e, max_e = -24, 35

    def wrapper(pretrend_bootstrap: bool = False):
        # like for like, the pre-trend row holds moderndid's own Wald statistic (which
        # att_gt computes on both sides); the default call adds a bootstrap p-value
        # moderndid does not compute, timed separately ("full")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return staggered.estimate_cs(
                panel,
                OUTCOME,
                scale=SCALE,
                group=group,
                unit="month",
                pretrend_bootstrap=pretrend_bootstrap,
            )

    def full():
        return wrapper(pretrend_bootstrap=True)

    def raw():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            att = moderndid.att_gt(
                data=f,
                yname="y",
                tname="time",
                idname="uid",
                gname="cohort",
                control_group="nevertreated",
                base_period="varying",
                est_method="reg",
                boot=False,
                cband=False,
            )
            aggs = {
                a: moderndid.aggte(
                    att,
                    type=a,
                    boot=False,
                    cband=False,
                    **({"min_e": min_e, "max_e": max_e} if a == "dynamic" else {}),
                )
                for a in staggered.AGGREGATIONS
            }
        return att, aggs

    def cold():
        design_mod.clear_cache()
        return wrapper()

    outs: dict = {}
    times = interleaved({"wrapper": wrapper, "raw": raw, "full": full}, repeats, outputs=outs)
    times.update(interleaved({"cold": cold}, repeats, warmup=False))
    res = outs["wrapper"]
    simple_w = res.loc[(res["analysis"] == "aggregation") & (res["window"] == "simple"), "estimate"]
    simple_r = float(np.asarray(outs["raw"][1]["simple"].overall_att).ravel()[0])
    diff = abs(float(simple_w.iloc[0]) - simple_r) if len(simple_w) else math.nan
    size = f"{len(f):,} area-months"
    base = Result(
        "estimators",
        case,
        "moderndid.att_gt + aggte (raw)",
        size=size,
        times=times["raw"],
        baseline=True,
        note=f"est_method='reg', analytic SEs, event times {min_e}..{max_e}",
    )
    wrap = Result(
        "estimators",
        case,
        "vanguard.did.staggered.estimate_cs",
        size=size,
        times=times["wrapper"],
        note=f"|simple ATT - raw| = {diff:.2e}; adds windows and cohort effects; "
        "pre-trend bootstrap off",
    )
    _overhead_goal(wrap, base, quick)
    with_boot = Result(
        "estimators",
        case,
        "vanguard.did.staggered.estimate_cs, bootstrap pre-trend test (default)",
        size=size,
        times=times["full"],
        note="adds the pre-trend p-value from 999 bootstrap draws (moderndid has none)",
    )
    first = Result(
        "estimators",
        case,
        "vanguard.did.staggered.estimate_cs, first call on the panel",
        size=size,
        times=times["cold"],
        note="sample cache cleared before each call: sample built and checked",
    )
    return [base, wrap, with_boot, first]


# --- imputation ----------------------------------------------------------------------------


def bench_imputation(panel: pd.DataFrame, repeats: int, quick: bool) -> list[Result]:
    """Imputation wrapper versus its numpy core, with pyfixest.did2s as a reference."""
    case = f"imputation (BJS) {OUTCOME} ({SCALE}), 2 groups x 4 windows"
    why = _importable("vanguard.did.imputation")
    if why:
        return [skipped("estimators", case, "vanguard.did.imputation.estimate_imputation", why)]
    import pyfixest as pf

    from vanguard.did import imputation
    from vanguard.did.staggered import estimation_sample

    groups = (schema.POPULATION_BASED, schema.CARE_HOME)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = [
            estimation_sample(panel, OUTCOME, scale=SCALE, group=g, pre_months=None, post_months=36)
            for g in groups
        ]
    first = samples[0].frame.copy()
    first["treat"] = ((first["cohort"] > 0) & (first["time"] >= first["cohort"])).astype(int)

    def wrapper():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return imputation.estimate_imputation(
                panel, OUTCOME, scale=SCALE, groups=groups, n_leads=None
            )

    def core():
        return [imputation.fit_imputation(s) for s in samples]

    def did2s():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pf.did2s(
                first,
                yname="y",
                first_stage="~ 0 | id + time",
                second_stage="~ treat",
                treatment="treat",
                cluster="id",
            )

    funcs = {"wrapper": wrapper, "core": core}
    did2s_note = ""
    try:
        did2s()
        funcs["did2s"] = did2s
    except Exception as exc:  # pyfixest's did2s rejects some designs; say so
        did2s_note = f"did2s failed: {type(exc).__name__}: {exc}"
    outs: dict = {}
    times = interleaved(funcs, repeats, outputs=outs)
    size = f"{sum(len(s.frame) for s in samples):,} area-months ({len(groups)} samples)"
    res = outs["wrapper"]
    simple = res.loc[(res["analysis"] == "aggregation") & (res["group"] == groups[0]), "estimate"]
    base = Result(
        "estimators",
        case,
        "fit_imputation (numpy core)",
        size=size,
        times=times["core"],
        baseline=True,
        note="point estimates only",
    )
    wrap = Result(
        "estimators",
        case,
        "vanguard.did.imputation.estimate_imputation",
        size=size,
        times=times["wrapper"],
        note="adds BJS standard errors per window; pre-trend test off",
    )
    _overhead_goal(wrap, base, quick)
    out = [base, wrap]
    if "did2s" in times:
        est = float(outs["did2s"].coef()["treat"])
        diff = abs(est - float(simple.iloc[0])) if len(simple) else math.nan
        out.append(
            Result(
                "estimators",
                case,
                "pyfixest.did2s (reference, 1 group)",
                size=f"{len(first):,} area-months",
                times=times["did2s"],
                note=f"|overall ATT - vanguard| = {diff:.2e}",
            )
        )
    else:
        out.append(
            Result("estimators", case, "pyfixest.did2s (reference, 1 group)", note=did2s_note)
        )
    return out


MIN_REPEATS = 15
"""Interleaved runs per estimator figure at least (outside ``--quick``): the calls take
0.05-0.3 s, and the ratio of two medians of 3 such runs moves by 10 % on a machine
doing anything else, as much as the overhead it is meant to show."""


def run(*, quick: bool = False, repeats: int = 3) -> list[Result]:
    """Benchmark every estimator that can be imported.

    Parameters
    ----------
    quick : bool
        A reduced synthetic panel (all treated areas, few controls).
    repeats : int
        Interleaved timed runs per implementation (after one untimed warm-up); at least
        :data:`MIN_REPEATS` unless ``quick``.

    Returns
    -------
    list of Result
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            panel = synthetic_panel(quick)
    except ImportError as exc:
        return [skipped("estimators", "all", "", f"no synthetic panel loader: {exc}")]
    if not quick:
        repeats = max(repeats, MIN_REPEATS)
    results = []
    benches = (
        ("twfe", bench_twfe),
        ("twfe_poisson", lambda p, r, q: bench_twfe(p, r, q, scale="poisson")),
        ("cs", bench_cs),
        ("imputation", bench_imputation),
    )
    for name, bench in benches:
        print(f"  estimators: {name}", flush=True)
        try:
            results += bench(panel, repeats, quick)
        except Exception as exc:  # report, do not abort the other benchmarks
            results.append(
                Result("estimators", name, "", note=f"failed: {type(exc).__name__}: {exc}")
            )
            print(f"  estimators: {name} failed: {exc}", flush=True)
    return results
