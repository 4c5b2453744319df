"""Callaway-Sant'Anna group-time effects and their aggregations, via ``moderndid``.

Two-way fixed effects regressions compare later-treated areas with earlier-treated
ones when adoption is staggered; with effects that change over time that comparison
is biased. Callaway and Sant'Anna (2021) estimate one 2x2 comparison per cohort ``g``
and period ``t`` against never-treated (or not-yet-treated) areas only, then average
those ``ATT(g, t)`` into an overall effect, an event study, cohort and calendar
effects. ``moderndid.att_gt`` / ``moderndid.aggte`` do the estimation; this module
prepares the estimation sample, chooses the time unit, maps the dynamic aggregation
onto the project's post-period windows and returns the tidy results schema.

Standard errors
---------------
By default (``bootstrap=False``) every standard error is the *analytic* one from the
unit-level influence function, ``sqrt(mean(IF**2) / n_areas)``: clustered by area,
pointwise, the same convention as the R ``did`` package with ``bootstrap=FALSE``. With
``bootstrap=True`` the standard errors come from the multiplier bootstrap (Rademacher
weights on area influence functions, ``n_boot`` draws, seeded) and ``inference`` is
``"multiplier_bootstrap"``; confidence intervals are pointwise in both cases.

Time unit
---------
``unit="month"`` estimates on the monthly panel; ``unit="quarter"`` first averages each
area's outcome over three-month blocks anchored at the earliest start month (April
2015 on the vanguard data, so wave-1 quarters are aligned with the start). A cohort
whose start is not on a block boundary (urgent & emergency care, August 2015) is
assigned to the block containing its start month, so its first block is only partly
exposed, which attenuates its first-quarter effect slightly.

The default is ``unit="quarter"`` (:data:`DEFAULT_UNIT`). Measured on the embedded
synthetic data (emergency admissions per 1,000, 24 pre and 36 post months, 173 control
areas): monthly estimation takes about 0.9 s per group and outcome, quarterly about
0.3-0.4 s. More important than speed: every post-period ``ATT(g, t)`` is measured
against the single period before the start, so with monthly data the whole estimate
rests on one month's noise; the quarterly base averages three months and the standard
error of the years 1-3 effect falls from 0.073 to 0.052 (population-based) while the
point estimate stays within its noise. The monthly pre-trend test has 23 restrictions
for 23 (population-based) or 6 (care-home) treated areas and is unreliable, the
quarterly one has 7 (both are bootstrapped, see below). Generic panels keep their own
time unit.

Pre-trend test
--------------
The ``pretrend`` row holds the Wald statistic (as ``moderndid`` and R ``did`` compute
it) that every pre-period ``ATT(g, t)`` is zero, using the analytic influence-function
covariance of those estimates: ``estimate`` is the statistic, ``param`` its degrees of
freedom. Its p-value is NOT the chi-squared one, which over-rejects with a couple of
dozen treated areas (about 20% at the 5% level with 7 quarterly pre-periods and no
pre-trend); it comes from a studentised multiplier bootstrap of the statistic
(:meth:`CSFit.pretrend_test`, ``inference="multiplier_bootstrap"``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import special, stats

from vanguard import schema
from vanguard.did.spec import DEFAULT_SEED, SpecError
from vanguard.errors import DataError, EstimationError

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_UNIT",
    "CSFit",
    "EstimationSample",
    "estimate_cs",
    "estimation_sample",
    "fit_cs",
    "resolve_windows",
    "tidy_cs",
    "to_quarters",
]

AGGREGATIONS: tuple[str, ...] = ("simple", "dynamic", "group", "calendar")
"""Aggregations of ``moderndid.aggte``."""

_CONTROL = {"never": "nevertreated", "notyet": "notyettreated"}
_UNITS = ("month", "quarter", "period")
DEFAULT_UNIT = "month"
"""Time unit of Callaway-Sant'Anna estimation on monthly data: months, which respect any
start month; quarters are a choice (see the module docstring) and need every cohort on
one quarter grid."""


# --- the estimation sample -------------------------------------------------------------
@dataclass
class EstimationSample:
    """Long panel ready for a staggered estimator.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``id`` (unit label), ``time`` (int period), ``cohort`` (int first treated
        period; 0 for never-treated units) and ``y``; one row per unit x period.
    outcome, scale, group, data_source : str
        Labels copied into every result row.
    unit : str
        ``"month"``, ``"quarter"`` or ``"period"`` (a generic panel's own time unit).
    pre_mean : float
        Treated units' pre-period mean on the natural scale (NaN when unknown).
    n_treated, n_control : int
        Treated and never-treated units.
    """

    frame: pd.DataFrame
    outcome: str
    scale: str
    group: str
    data_source: str
    unit: str
    pre_mean: float = math.nan
    n_treated: int = 0
    n_control: int = 0
    notes: list[str] = field(default_factory=list)
    months_used: int | None = None
    cohort_labels: dict[int, str] = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        """Unit-months used (unit-periods for a generic panel), before any quarterly
        averaging."""
        return len(self.frame) if self.months_used is None else self.months_used

    def copy(self) -> EstimationSample:
        """A copy its receiver may change: the frame is a shallow copy (pandas copies on
        write), the containers are new."""
        return replace(
            self,
            frame=self.frame.copy(deep=False),
            notes=list(self.notes),
            cohort_labels=dict(self.cohort_labels),
        )


def _check_numeric(df: pd.DataFrame, col: str, source: str) -> None:
    if col not in df.columns:
        raise DataError(
            source, f"a column {col!r}", column=col, found=f"columns {list(df.columns)}"
        )
    bad = df[col].isna() if col != "cohort" else pd.Series(False, index=df.index)
    if not pd.api.types.is_numeric_dtype(df[col]):
        raise DataError(source, "numeric values", column=col, found=str(df[col].dtype))
    bad = bad | ~np.isfinite(df[col].astype(float).fillna(0.0))
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            source, "finite numeric values", row=pos + 2, column=col, found=df[col].iloc[pos]
        )


def _generic_sample(
    data: pd.DataFrame,
    outcome: str,
    id_col: str,
    time_col: str,
    cohort_col: str,
    scale: str,
    group: str,
    data_source: str,
) -> EstimationSample:
    source = "panel"
    for col in (id_col, time_col, cohort_col, outcome):
        if col not in data.columns:
            raise DataError(
                source, f"a column {col!r}", column=col, found=f"columns {list(data.columns)}"
            )
    frame = pd.DataFrame(
        {
            "id": data[id_col].to_numpy(),
            "time": data[time_col].to_numpy(),
            "cohort": pd.to_numeric(data[cohort_col]).fillna(0).to_numpy(),
            "y": data[outcome].to_numpy(),
        }
    )
    for col in ("time", "cohort", "y"):
        _check_numeric(frame, col, source)
    if frame.duplicated(["id", "time"]).any():
        pos = int(np.flatnonzero(frame.duplicated(["id", "time"]).to_numpy())[0])
        raise DataError(
            source,
            f"one row per {id_col} x {time_col}",
            row=pos + 2,
            column=time_col,
            found="a duplicate",
        )
    if (frame.groupby("id")["cohort"].nunique() > 1).any():
        bad = frame.groupby("id")["cohort"].nunique()
        raise DataError(
            source,
            f"{cohort_col!r} constant within each {id_col}",
            column=cohort_col,
            found=f"varies for {bad[bad > 1].index[0]!r}",
        )
    frame["time"] = frame["time"].astype(np.int64)
    frame["cohort"] = frame["cohort"].astype(np.int64)
    treated = frame["cohort"] > 0
    pre = treated & (frame["time"] < frame["cohort"])
    return EstimationSample(
        frame=frame,
        outcome=outcome,
        scale=scale,
        group=group,
        data_source=data_source,
        unit="period",
        pre_mean=float(frame.loc[pre, "y"].mean()) if pre.any() else math.nan,
        n_treated=int(frame.loc[treated, "id"].nunique()),
        n_control=int(frame.loc[~treated, "id"].nunique()),
    )


def _design_sample(
    design, outcome: str | None, scale: str, group: str, data_source: str | None
) -> EstimationSample:
    """Turn a ``vanguard.did.design.Design`` into an :class:`EstimationSample`."""
    f = design.frame
    if "group" in f.columns:
        # A design may hold several analysis groups: keep this group's treated areas and
        # the never-treated controls only.
        member = schema.member_mask(f["group"], group)
        if not member.any():
            raise EstimationError(f"design has no areas for group {group!r}")
        keep = member | f["group"].eq(schema.CONTROL).to_numpy()
        f = f.loc[keep]
    need = ("area", "t", "y", "cohort")
    missing = [c for c in need if c not in f.columns]
    if missing:
        raise DataError(
            "design.frame",
            f"columns {list(need)}",
            column=missing[0],
            found=f"columns {list(f.columns)}",
        )
    if "start" in f.columns:
        never = f["start"].isna().to_numpy()
    else:
        # Without a start date the sentinel is any cohort outside the observed periods.
        c = pd.to_numeric(f["cohort"], errors="coerce")
        never = (c.isna() | (c < f["t"].min()) | (c > f["t"].max())).to_numpy()
    frame = pd.DataFrame(
        {
            "id": f["area"].astype(str).to_numpy(),
            "time": f["t"].astype(np.int64).to_numpy(),
            "cohort": np.where(never, 0, pd.to_numeric(f["cohort"], errors="coerce").fillna(0)),
            "y": f["y"].astype(float).to_numpy(),
        }
    )
    frame["cohort"] = frame["cohort"].astype(np.int64)
    _check_numeric(frame, "y", "design.frame")

    def _attr(name, default):
        v = getattr(design, name, default)
        return default if v is None else v

    pre_mean = _attr("pre_mean", math.nan)
    if isinstance(pre_mean, Mapping):
        pre_mean = pre_mean.get(group, math.nan)
    if getattr(design, "groups", None) and group not in design.groups:
        raise EstimationError(f"design was prepared for groups {design.groups}, not {group!r}")
    n_t = int(frame.loc[frame["cohort"] > 0, "id"].nunique())
    n_c = int(frame.loc[frame["cohort"] == 0, "id"].nunique())
    labels = {
        int(c): f"{1970 + int(c) // 12:04d}-{int(c) % 12 + 1:02d}"
        for c in np.unique(frame["cohort"]) if c > 0
    }
    return EstimationSample(
        cohort_labels=labels,
        frame=frame,
        outcome=outcome or str(_attr("outcome", "")),
        scale=str(_attr("scale", scale)),
        group=group,
        data_source=data_source or str(_attr("data_source", "")),
        unit="month",
        pre_mean=float(pre_mean),
        n_treated=n_t,
        n_control=n_c,
    )


def estimation_sample(
    data,
    outcome: str | None = None,
    *,
    scale: str = "rate",
    group: str = schema.POPULATION_BASED,
    id_col: str | None = None,
    time_col: str | None = None,
    cohort_col: str | None = None,
    data_source: str | None = None,
    pre_months: int = 24,
    post_months: int = 36,
    controls: str | Iterable[str] = "never",
) -> EstimationSample:
    """Build the long unit x period sample every staggered estimator here uses.

    Parameters
    ----------
    data : pandas.DataFrame or Design
        One of: a ``vanguard.did.design.Design`` (its ``.frame`` is used as is); a
        vanguard analysis panel (``area``, ``month``, ``group``, ``start``, outcomes),
        passed through ``vanguard.did.design.prepare``; or a generic long panel, when
        ``id_col``, ``time_col`` and ``cohort_col`` are all given.
    outcome : str, optional
        Outcome column (required for panels; taken from the design otherwise).
    scale : str
        One of :data:`vanguard.schema.SCALES` except ``"poisson"``.
    group : str
        Analysis group (one of :data:`vanguard.schema.ANALYSIS_GROUPS`).
    id_col, time_col, cohort_col : str, optional
        Column names of a generic panel. ``cohort_col`` holds the first treated period
        (integer, same unit as ``time_col``); 0 or missing marks never-treated units.
    data_source : str, optional
        ``synthetic``, ``nhs_mar`` or ``custom``; defaults to the design's or ``custom``.
    pre_months, post_months : int
        Sample window passed to ``design.prepare`` for a vanguard panel.
    controls : {"never", "notyet"} or iterable of str
        Comparison areas passed to ``design.prepare`` (an explicit list replaces the
        never-treated areas).

    Returns
    -------
    EstimationSample

    Raises
    ------
    DataError
        A named column is missing or non-numeric, a unit's cohort varies, or a unit x
        period appears twice.
    EstimationError
        ``scale="poisson"`` (not a linear outcome), or no treated or no never-treated
        units.
    """
    _check_scale(scale)
    generic = (id_col, time_col, cohort_col)
    if any(c is not None for c in generic):
        if not all(c is not None for c in generic) or outcome is None:
            raise EstimationError(
                "a generic panel needs outcome, id_col, time_col and cohort_col together"
            )
        sample = _generic_sample(
            data, outcome, id_col, time_col, cohort_col, scale, group, data_source or "custom"
        )
    elif hasattr(data, "frame"):
        sample = _design_sample(data, outcome, scale, group, data_source)
    elif isinstance(data, pd.DataFrame):
        if outcome is None:
            raise EstimationError("a vanguard panel needs the outcome column name")
        prep = _panel_prepared(
            data, outcome, scale, group, data_source, pre_months, post_months, controls
        )
        sample = _panel_sample(prep, outcome, scale, group, data_source).copy()
    else:
        raise EstimationError(f"expected a DataFrame or a Design; got {type(data).__name__}")
    _check_units(sample, group)
    return sample


def _check_scale(scale: str) -> None:
    if scale not in schema.SCALES:
        raise EstimationError(f"scale must be one of {schema.SCALES}; got {scale!r}")
    if scale == "poisson":
        raise EstimationError(
            "staggered estimators here are linear: use scale 'log' "
            "(log points) instead of 'poisson'"
        )


def _check_units(sample: EstimationSample, group: str) -> None:
    if sample.n_treated == 0:
        raise EstimationError(f"{sample.outcome}/{group}: no treated units in the sample")
    if sample.n_control == 0:
        raise EstimationError(f"{sample.outcome}/{group}: no never-treated units in the sample")


def _panel_prepared(data, outcome, scale, group, data_source, pre_months, post_months, controls):
    """The design of a vanguard panel's staggered sample (built once per panel content)."""
    from vanguard.did import design as _design

    # No treated area is cut at its own last post month: with staggered starts that
    # would unbalance the panel, and moderndid drops every unit not seen in every
    # period. The calendar window ends at the last cohort's last post month; event
    # times past the post-period are left out of the dynamic aggregation instead.
    return _design.prepared(
        data,
        outcome,
        scale=scale,
        groups=(group,),
        pre_months=pre_months,
        post_months=post_months,
        controls=controls,
        trim_post=False,
        data_source=data_source,
    )


def _panel_sample(prep, outcome, scale, group, data_source) -> EstimationSample:
    """The long sample of a prepared design, kept beside it (read-only: copy to change)."""
    build = functools.partial(_design_sample, prep.design, outcome, scale, group, data_source)
    return prep.derived(("staggered.sample", outcome, scale, group, data_source), build)


def to_quarters(sample: EstimationSample) -> EstimationSample:
    """Average a monthly sample over three-month blocks aligned with the first cohort.

    Parameters
    ----------
    sample : EstimationSample
        Monthly sample (``unit="month"``).

    Returns
    -------
    EstimationSample
        ``unit="quarter"``; ``time`` and ``cohort`` are block indices (cohort = the
        block containing the start month). Incomplete blocks at the sample edges are
        dropped, with a warning naming how many months went.

    Raises
    ------
    EstimationError
        If the sample is not monthly, or its cohorts do not all start on one quarter grid
        (a cohort starting mid-quarter would have its event time shifted).
    """
    if sample.unit != "month":
        raise EstimationError(f"quarterly aggregation needs a monthly sample; got {sample.unit}")
    f = sample.frame
    cohorts = np.unique(f.loc[f["cohort"] > 0, "cohort"])
    anchor = int(cohorts.min())
    off_grid = [int(c) for c in cohorts if (c - anchor) % 3]
    if off_grid:
        names = [sample.cohort_labels.get(c, str(c)) for c in (anchor, *off_grid)]
        raise SpecError(
            "unit",
            f"'quarter': cohorts starting {', '.join(names)} are not on one quarter "
            "grid, so quarters would shift their event time; use unit='month'",
        )
    # Shift so that block indices stay positive: moderndid reads cohort 0 as never-treated.
    base = anchor - 3 * ((anchor - int(f["time"].min())) // 3 + 1)
    q = (f["time"] - base) // 3
    per_block = f.assign(q=q).groupby("q")["time"].nunique()
    full = per_block.index[per_block == 3]
    keep = q.isin(full)
    if not keep.all():
        warnings.warn(
            f"{sample.outcome}: dropped {int((~keep).sum())} unit-months in "
            "incomplete quarters at the sample edges",
            stacklevel=2,
        )
    g = f.loc[keep].assign(time=q[keep])
    out = g.groupby(["id", "time"], as_index=False).agg(cohort=("cohort", "first"), y=("y", "mean"))
    out["cohort"] = np.where(out["cohort"] > 0, (out["cohort"] - base) // 3, 0).astype(np.int64)
    out = out[["id", "time", "cohort", "y"]]
    return EstimationSample(
        frame=out,
        outcome=sample.outcome,
        scale=sample.scale,
        group=sample.group,
        data_source=sample.data_source,
        unit="quarter",
        pre_mean=sample.pre_mean,
        n_treated=sample.n_treated,
        n_control=sample.n_control,
        notes=list(sample.notes),
        months_used=int(keep.sum()),
        cohort_labels={
            int((c - base) // 3): lab for c, lab in sample.cohort_labels.items()
        },
    )


def resolve_windows(windows) -> dict[str, tuple[int, int]]:
    """Normalise a window specification to ``{name: (lo, hi)}``.

    Parameters
    ----------
    windows : mapping, iterable of str, or None
        A mapping name -> ``(lo, hi)``, or names of :data:`vanguard.schema.WINDOWS`.

    Returns
    -------
    dict

    Raises
    ------
    EstimationError
        If a name is not a key of :data:`vanguard.schema.WINDOWS` or a range is not
        ``lo < hi``.
    """
    if windows is None:
        return {}
    if isinstance(windows, Mapping):
        out = {str(k): (int(v[0]), int(v[1])) for k, v in windows.items()}
    else:
        names = [windows] if isinstance(windows, str) else list(windows)
        unknown = [n for n in names if n not in schema.WINDOWS]
        if unknown:
            raise EstimationError(
                f"unknown window(s) {unknown}; expected names among {list(schema.WINDOWS)} "
                "or a mapping name -> (lo, hi)"
            )
        out = {n: schema.WINDOWS[n] for n in names}
    bad = [k for k, (lo, hi) in out.items() if not lo < hi]
    if bad:
        raise EstimationError(f"window(s) {bad}: expected lo < hi")
    return out


# --- estimation ----------------------------------------------------------------------
@dataclass
class CSFit:
    """A fitted Callaway-Sant'Anna model and its aggregations.

    Attributes
    ----------
    sample : EstimationSample
    control : str
        ``"never"`` or ``"notyet"``.
    att : moderndid MPResult
        Group-time estimates.
    aggregations : dict
        Aggregation name -> moderndid ``AGGTEResult``.
    bootstrap : bool
    n_boot, seed : int
    alpha : float
    shift : int
        What was added to periods and cohorts for moderndid (:func:`moderndid_frame`).
    base_period : str
    cohort_sizes : dict, optional
        Cohort -> units of the fitted sample, counted once per prepared sample; counted
        from ``sample.frame`` when not given.
    """

    sample: EstimationSample
    control: str
    att: object
    aggregations: dict
    bootstrap: bool
    n_boot: int
    seed: int
    alpha: float
    shift: int = 0
    base_period: str = "varying"
    cohort_sizes: dict[int, int] | None = None

    @property
    def estimator(self) -> str:
        """``cs_never`` or ``cs_notyet``."""
        return f"cs_{self.control}"

    @property
    def inference(self) -> str:
        """Name of the standard-error method in the results schema."""
        return "multiplier_bootstrap" if self.bootstrap else "analytic"

    def event_study(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Event-time effects of the dynamic aggregation and their covariance.

        Returns
        -------
        rel_time : ndarray of int
        beta : ndarray
        vcov : ndarray
            Analytic influence-function covariance of ``beta`` (area-clustered), the
            input :func:`vanguard.did.honest.honest_bounds` needs.

        Raises
        ------
        EstimationError
            If the dynamic aggregation was not computed.
        """
        dyn = self.aggregations.get("dynamic")
        if dyn is None:
            raise EstimationError("the dynamic aggregation was not computed")
        inf = np.asarray(dyn.influence_func, dtype=float)
        n = inf.shape[0]
        return (
            np.asarray(dyn.event_times).astype(int),
            np.asarray(dyn.att_by_event, float),
            inf.T @ inf / n**2,
        )

    def _se(self, influence: np.ndarray) -> np.ndarray:
        n = influence.shape[0]
        if self.bootstrap:
            from moderndid.did.mboot import mboot

            return np.asarray(
                mboot(
                    influence,
                    n_units=n,
                    biters=self.n_boot,
                    alpha=self.alpha,
                    random_state=self.seed,
                )["se"],
                dtype=float,
            )
        return np.sqrt(np.mean(influence**2, axis=0) / n)

    def pretrend_test(self, n_boot: int = 999, seed: int = DEFAULT_SEED) -> dict | None:
        """Wald test that every pre-period ``ATT(g, t)`` is 0, with a wild bootstrap p-value.

        Without covariates each pre-period ``ATT(g, t)`` is a difference of mean changes,
        ``mean_{i in g} dY_i - mean_{i in C} dY_i`` with ``dY_i = Y_it - Y_ib`` (``b`` the
        base period: ``t - 1`` for ``base_period="varying"``, ``g - 1`` for
        ``"universal"``) and ``C`` the never-treated areas; its influence function is
        the centred change scaled by the group's share. The statistic is
        ``W = n a' V^+ a`` with ``V`` the influence-function covariance (the statistic
        of ``moderndid`` and R ``did``, up to its propensity-score term). With few treated
        areas ``V`` is poorly estimated and ``W`` is far from its chi-squared reference
        (7 quarterly pre-periods, 23 treated areas: about 20% rejections at 5% with no
        pre-trend), so the p-value comes from a restricted wild cluster bootstrap of
        ``W``: bootstrap changes ``dY*_i = v_i (dY_i - mean_{g and C} dY)`` (one Webb
        weight per area, shared by all cells; the null of equal mean changes imposed)
        and ``W*`` recomputed on each, estimates and covariance alike.

        Parameters
        ----------
        n_boot, seed : int
            Bootstrap draws and seed.

        Returns
        -------
        dict or None
            ``stat`` (``W``), ``df`` (``q``, rank of ``V``), ``n_pre`` (pre-period
            estimates), ``p_value`` (share of ``W* >= W``), ``p_chi2`` (chi-squared
            reference, for comparison) and ``n_boot``; ``None`` without pre-period
            estimates or with not-yet-treated comparisons (the closed form above assumes
            never-treated ones).

        Raises
        ------
        EstimationError
            If the sample is not a balanced panel.
        """
        from vanguard.did.inference import bootstrap_weights

        if self.control != "never":
            return None
        groups = np.asarray(self.att.groups, dtype=float) - self.shift
        times = np.asarray(self.att.times, dtype=float) - self.shift
        cells = [
            (int(g), int(t))
            for g, t in zip(groups, times, strict=True)
            if t < g and not (self.base_period == "universal" and t == g - 1)
        ]
        if not cells:
            return None
        f = self.sample.frame
        # the unit x period matrix (units and periods sorted), filled from integer codes
        unit, _ = pd.factorize(f["id"], sort=True)
        period, periods = pd.factorize(f["time"], sort=True)
        n_units, n_periods = int(unit.max()) + 1, len(periods)
        cell = unit * n_periods + period
        if np.bincount(cell, minlength=n_units * n_periods).max() > 1:
            raise EstimationError(
                f"{self.sample.outcome}/{self.sample.group}: a unit x period appears twice"
            )
        Y = np.full(n_units * n_periods, np.nan)
        Y[cell] = f["y"].to_numpy(dtype=float)
        Y = Y.reshape(n_units, n_periods)
        if np.isnan(Y).any():
            raise EstimationError(
                f"{self.sample.outcome}/{self.sample.group}: pre-trend bootstrap needs a "
                "balanced panel"
            )
        cohort = np.empty(n_units, dtype="int64")
        cohort[unit] = f["cohort"].to_numpy(dtype="int64")  # constant within a unit
        col = {int(t): j for j, t in enumerate(periods)}
        n, q = len(Y), len(cells)
        dY = np.empty((n, q))
        in_g = np.zeros((n, q), dtype=bool)
        for c, (g, t) in enumerate(cells):
            b = t - 1 if self.base_period == "varying" else g - 1
            dY[:, c] = Y[:, col[t]] - Y[:, col[b]]
            in_g[:, c] = cohort == g
        in_c = np.broadcast_to((cohort == 0)[:, None], (n, q))
        n_g, n_c = in_g.sum(axis=0), in_c.sum(axis=0)
        W = float(_wald_pretrend(dY, np.ones((n, 1)), cohort, cells, in_g, in_c)[0])
        pool = in_g | in_c
        m_pool = (dY * pool).sum(axis=0) / pool.sum(axis=0)
        e = np.where(pool, dY - m_pool, 0.0)
        psi0 = in_g * (dY - (dY * in_g).sum(0) / n_g) * (n / n_g) - in_c * (
            dY - (dY * in_c).sum(0) / n_c
        ) * (n / n_c)
        rank = int(np.linalg.matrix_rank(psi0.T @ psi0 / n))
        v = bootstrap_weights(n, n_boot, np.random.default_rng(seed), "webb")
        W_boot = _wald_pretrend(e, v, cohort, cells, in_g, in_c, full_rank=rank == q)
        return {
            "stat": W,
            "df": rank,
            "n_pre": q,
            "p_value": float(np.mean(W_boot >= W * (1 - 1e-12))),
            "p_chi2": float(stats.chi2.sf(W, rank)) if rank > 0 else math.nan,
            "n_boot": n_boot,
        }

    def _units_per_cohort(self) -> dict[int, int]:
        """Cohort -> number of units (a unit's cohort is constant)."""
        if self.cohort_sizes is not None:
            return self.cohort_sizes
        return _units_per_cohort(self.sample.frame)

    def cohort_effects(self, lo: int, hi: int) -> pd.DataFrame:
        """Each cohort's average effect over months ``[lo, hi)`` since its start.

        The mean of the cohort's ``ATT(g, t)`` at event times in the window (equal weight
        per period, so per area-period within a cohort), its standard error from the mean
        of their influence functions.

        Parameters
        ----------
        lo, hi : int
            Months since start (quarters in a quarterly fit: both must be whole quarters).

        Returns
        -------
        pandas.DataFrame
            Columns ``cohort`` (period index), ``label`` (start month), ``estimate``,
            ``se``, ``n_periods``, ``n_areas``.

        Raises
        ------
        EstimationError
            If the window is not whole quarters in a quarterly fit.
        """
        return pd.DataFrame(
            self._cohort_rows(lo, hi),
            columns=["cohort", "label", "estimate", "se", "n_periods", "n_areas"],
        )

    def _cohort_rows(self, lo: int, hi: int) -> list[dict]:
        """The rows of :meth:`cohort_effects` (:func:`tidy_cs` reads them without a frame)."""
        if self.sample.unit == "quarter":
            if lo % 3 or hi % 3:
                raise EstimationError(f"window [{lo}, {hi}) months is not whole quarters")
            lo, hi = lo // 3, hi // 3
        groups = np.asarray(self.att.groups, dtype=float) - self.shift
        rel = np.asarray(self.att.times, dtype=float) - self.shift - groups
        att = np.asarray(self.att.att_gt, dtype=float)
        inf = np.asarray(self.att.influence_func, dtype=float)
        counts = self._units_per_cohort()
        rows = []
        for g in np.unique(groups):
            cols = np.flatnonzero((groups == g) & (rel >= lo) & (rel < hi))
            if not len(cols):
                continue
            rows.append({
                "cohort": int(g),
                "label": self.sample.cohort_labels.get(int(g), str(int(g))),
                "estimate": float(att[cols].mean()),
                "se": float(self._se(inf[:, cols].mean(axis=1, keepdims=True))[0]),
                "n_periods": len(cols),
                "n_areas": int(counts.get(int(g), 0)),
            })
        return rows

    def window_effects(self, windows: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
        """Average the dynamic aggregation over post-period windows.

        Each window's effect is the unweighted mean of the event-time effects it
        covers, its standard error from the mean of their influence functions.

        This equals the window's ATT (the average over treated area-periods in the
        window) only when the same treated areas are observed at every event time of
        the window. If some cohorts drop out of later event times (e.g. a late cohort
        whose third year runs past the end of the panel), the event-time effects average
        different sets of areas and the mean weights the remaining cohorts more; the
        imputation estimator's windows weight area-periods equally instead.

        Parameters
        ----------
        windows : mapping
            Name -> ``(lo, hi)`` half-open range in months (or in periods for a generic
            panel); quarterly fits divide by 3.

        Returns
        -------
        pandas.DataFrame
            Columns ``window``, ``estimate``, ``se``, ``n_periods``. Windows the data do
            not fully cover are left out with a warning.

        Raises
        ------
        EstimationError
            If a window does not fall on quarter boundaries in a quarterly fit.
        """
        rows = self._window_rows(windows, stacklevel=3)
        return pd.DataFrame(rows, columns=["window", "estimate", "se", "n_periods"])

    def _window_rows(
        self, windows: Mapping[str, tuple[int, int]], stacklevel: int = 2
    ) -> list[dict]:
        """The rows of :meth:`window_effects`; its warnings point ``stacklevel`` frames up."""
        dyn = self.aggregations.get("dynamic")
        if dyn is None or not windows:
            return []
        e = np.asarray(dyn.event_times).astype(int)
        inf = np.asarray(dyn.influence_func, dtype=float)
        att = np.asarray(dyn.att_by_event, dtype=float)
        rows = []
        for name, (lo, hi) in windows.items():
            if self.sample.unit == "quarter":
                if lo % 3 or hi % 3:
                    raise EstimationError(
                        f"window {name!r} [{lo}, {hi}) months is not whole quarters"
                    )
                lo, hi = lo // 3, hi // 3
            cols = np.flatnonzero((e >= lo) & (e < hi))
            if len(cols) != hi - lo:
                warnings.warn(
                    f"{self.sample.outcome}/{self.sample.group}: window {name!r} "
                    f"needs event times {lo}..{hi - 1}; the data cover "
                    f"{len(cols)} of them, window skipped",
                    stacklevel=stacklevel,
                )
                continue
            w_inf = inf[:, cols].mean(axis=1, keepdims=True)
            rows.append(
                {
                    "window": name,
                    "estimate": float(att[cols].mean()),
                    "se": float(self._se(w_inf)[0]),
                    "n_periods": len(cols),
                }
            )
        return rows


def _wald_pretrend(
    e: np.ndarray,
    v: np.ndarray,
    cohort: np.ndarray,
    cells: list[tuple[int, int]],
    in_g: np.ndarray,
    in_c: np.ndarray,
    full_rank: bool = False,
) -> np.ndarray:
    """The pre-trend Wald statistic of :meth:`CSFit.pretrend_test` for changes ``e * v``.

    Changes ``d_iqb = e_iq v_ib`` of area ``i`` in cell ``q`` (draw ``b``) give cell
    effects ``a_qb = m_g - m_c`` (cohort mean change minus control mean change) and the
    influence functions ``psi_iqb = v_ib x_iq - mu_kqb`` with ``x_iq`` the area's scaled
    change and ``mu_k`` a mean term that depends only on the area's cohort ``k``. So
    ``n V_b = sum_i v_ib^2 x_i x_i' - sum_k (S_kb mu_kb' + mu_kb S_kb' - N_k mu_kb mu_kb')``
    with ``S_kb = sum_{i in k} v_ib x_i`` and ``N_k`` the areas of cohort ``k``: one
    matrix product for all draws instead of one ``(n, q)`` cross-product per draw (a
    few times faster; the same statistic up to rounding).

    Parameters
    ----------
    e : ndarray (n, q)
        Changes of each area in each pre-period cell (zero outside the cell's cohort and
        the controls).
    v : ndarray (n, B)
        Per-area multipliers (ones for the statistic itself, bootstrap weights for draws).
    cohort : ndarray (n,)
        Each area's cohort (0 for controls).
    cells : list of (g, t)
        The pre-period cells, in the column order of ``e``.
    in_g, in_c : ndarray of bool (n, q)
        Area in the cell's cohort; area a control.
    full_rank : bool
        ``V`` is known to be of full rank, so ``V^+ a`` is ``V^-1 a``: a Cholesky
        factor instead of an eigendecomposition per draw (if a draw's ``V`` is not
        positive definite, every draw falls back to the pseudo-inverse).

    Returns
    -------
    ndarray (B,)
        ``W_b = n a_b' V_b^+ a_b``.
    """
    n, q = e.shape
    n_g, n_c = in_g.sum(axis=0), in_c.sum(axis=0)
    s_g, s_c = n / n_g, n / n_c
    m_g = (in_g * e).T @ v / n_g[:, None]  # (q, B)
    m_c = (in_c * e).T @ v / n_c[:, None]
    a = (m_g - m_c).T  # (B, q)
    x = (in_g * s_g - in_c * s_c) * e  # (n, q)
    outer = (x[:, :, None] * x[:, None, :]).reshape(n, q * q)
    V = ((v**2).T @ outer).reshape(-1, q, q)
    cell_g = np.array([g for g, _ in cells])
    # S mu' + mu S' - N mu mu' = T mu' + (T mu')' with T = S - N mu / 2: the cohorts'
    # terms summed first, then one transpose
    Ts, mus = [], []
    for k in np.unique(cohort):
        rows = cohort == k
        mu = (-(s_c[:, None] * m_c) if k == 0 else ((cell_g == k) * s_g)[:, None] * m_g).T
        Ts.append(v[rows].T @ x[rows] - int(rows.sum()) / 2 * mu)  # (B, q)
        mus.append(mu)
    P = np.einsum("kbq,kbr->bqr", np.stack(Ts), np.stack(mus))
    V -= P
    V -= P.transpose(0, 2, 1)
    V /= n
    if full_rank:
        try:
            L = np.linalg.cholesky(V)
        except np.linalg.LinAlgError:
            pass  # a draw not positive definite: the pseudo-inverse below
        else:
            # a' V^-1 a = |L^-1 a|^2: forward substitution, vectorised over the draws
            y = np.empty_like(a)
            for j in range(q):
                y[:, j] = (a[:, j] - np.einsum("bk,bk->b", L[:, j, :j], y[:, :j])) / L[:, j, j]
            return n * np.einsum("bq,bq->b", y, y)
    return n * np.einsum("bq,bqr,br->b", a, np.linalg.pinv(V, hermitian=True), a)


def moderndid_frame(sample: EstimationSample) -> tuple[pd.DataFrame, int]:
    """The estimation sample as :func:`moderndid.att_gt` reads it.

    moderndid needs integer unit ids and reads cohort 0 as never-treated, so times
    must start at 1 or later.

    Parameters
    ----------
    sample : EstimationSample

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``uid`` (1, 2, ... in sorted ``id`` order), ``time``, ``cohort``, ``y``.
    shift : int
        What was added to ``time`` and to the treated cohorts.

    Raises
    ------
    ValueError
        If the sample has no rows (no first time).
    """
    f = sample.frame.copy()
    f["uid"] = pd.factorize(f["id"], sort=True)[0] + 1
    shift = max(0, 1 - int(f["time"].min()))
    f["time"] += shift
    f.loc[f["cohort"] > 0, "cohort"] += shift
    return f[["uid", "time", "cohort", "y"]], shift


def _units_per_cohort(frame: pd.DataFrame) -> dict[int, int]:
    """Cohort -> number of units of a sample frame (a unit's cohort is constant)."""
    unit, _ = pd.factorize(frame["id"])
    first = np.unique(unit, return_index=True)[1]
    cohorts, n = np.unique(frame["cohort"].to_numpy()[first], return_counts=True)
    return {int(c): int(k) for c, k in zip(cohorts, n, strict=True)}


class _FitInputs(NamedTuple):
    """What :func:`fit_cs` estimates on, built once per prepared sample and unit."""

    sample: EstimationSample
    frame: pd.DataFrame
    shift: int
    n_units: int
    cohort_sizes: dict[int, int]


def _fit_inputs(sample: EstimationSample, unit: str) -> _FitInputs:
    """The sample in ``unit``, its moderndid frame and shift, and its units (all and per
    cohort)."""
    if unit == "quarter":
        sample = to_quarters(sample)
    f, shift = moderndid_frame(sample)
    return _FitInputs(sample, f, shift, int(f["uid"].nunique()), _units_per_cohort(sample.frame))


def fit_cs(
    data,
    outcome: str | None = None,
    *,
    scale: str = "rate",
    group: str = schema.POPULATION_BASED,
    control: str = "never",
    base_period: str = "varying",
    unit: str | None = None,
    aggregations: Iterable[str] = AGGREGATIONS,
    bootstrap: bool = False,
    n_boot: int = 999,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
    id_col: str | None = None,
    time_col: str | None = None,
    cohort_col: str | None = None,
    data_source: str | None = None,
    pre_months: int = 24,
    post_months: int = 36,
    controls: Iterable[str] | None = None,
) -> CSFit:
    """Fit Callaway-Sant'Anna group-time effects and aggregate them.

    Parameters are those of :func:`estimate_cs`.

    Returns
    -------
    CSFit

    Raises
    ------
    EstimationError
        Unknown ``control``, ``base_period``, ``unit`` or aggregation; no treated or no
        comparison units; or ``moderndid`` cannot estimate the design.
    DataError
        Bad input columns (see :func:`estimation_sample`).
    """
    if control not in _CONTROL:
        raise EstimationError(f"control must be one of {list(_CONTROL)}; got {control!r}")
    if base_period not in ("varying", "universal"):
        raise EstimationError(f"base_period must be 'varying' or 'universal'; got {base_period!r}")
    if unit is not None and unit not in _UNITS:
        raise EstimationError(f"unit must be one of {_UNITS}; got {unit!r}")
    aggregations = tuple(aggregations)
    unknown = sorted(set(aggregations) - set(AGGREGATIONS))
    if unknown:
        raise EstimationError(f"unknown aggregation(s) {unknown}; expected {AGGREGATIONS}")
    generic = any(c is not None for c in (id_col, time_col, cohort_col))
    ctrl = "never" if controls is None else list(controls)
    if isinstance(data, pd.DataFrame) and not generic and not hasattr(data, "frame"):
        # a vanguard panel: its sample, quarters and moderndid frame are built once per
        # panel content
        _check_scale(scale)
        if outcome is None:
            raise EstimationError("a vanguard panel needs the outcome column name")
        prep = _panel_prepared(
            data, outcome, scale, group, data_source, pre_months, post_months, ctrl
        )
        base = _panel_sample(prep, outcome, scale, group, data_source)
        _check_units(base, group)
        if unit is None:
            unit = DEFAULT_UNIT
        if unit not in (base.unit, "quarter"):
            raise EstimationError(f"unit={unit!r} does not fit a sample in {base.unit}s")
        key = ("staggered.moderndid_frame", outcome, scale, group, data_source, unit)
        inputs = prep.derived(key, functools.partial(_fit_inputs, base, unit))
        inputs = inputs._replace(
            sample=inputs.sample.copy(), cohort_sizes=dict(inputs.cohort_sizes))
    else:
        sample = estimation_sample(
            data,
            outcome,
            scale=scale,
            group=group,
            id_col=id_col,
            time_col=time_col,
            cohort_col=cohort_col,
            data_source=data_source,
            pre_months=pre_months,
            post_months=post_months,
            controls=ctrl,
        )
        if unit is None:
            unit = DEFAULT_UNIT if sample.unit == "month" else sample.unit
        if unit not in (sample.unit, "quarter"):
            raise EstimationError(f"unit={unit!r} does not fit a sample in {sample.unit}s")
        inputs = _fit_inputs(sample, unit)
    sample, f, shift = inputs.sample, inputs.frame, inputs.shift
    import moderndid

    # the dynamic aggregation stops at the post-period's end (in the fit's unit): early
    # cohorts of a staggered group are observed longer than post_months ...
    per = 3 if sample.unit == "quarter" else 1
    max_e = math.inf if sample.unit == "period" else math.ceil(post_months / per) - 1
    # and starts at the pre-period's: later cohorts are observed longer before their start
    min_e = -math.inf if sample.unit == "period" else -math.ceil(pre_months / per)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*simultaneous confidence band.*")
            att = moderndid.att_gt(
                data=f,
                yname="y",
                tname="time",
                idname="uid",
                gname="cohort",
                control_group=_CONTROL[control],
                base_period=base_period,
                # no covariates: "reg", "dr" and "ipw" give identical estimates and
                # standard errors, and "reg" is about twice as fast
                est_method="reg",
                boot=bootstrap,
                biters=n_boot,
                cband=False,
                alpha=alpha,
                random_state=seed,
            )
            aggs = {
                a: moderndid.aggte(
                    att,
                    type=a,
                    boot=bootstrap,
                    biters=n_boot,
                    cband=False,
                    alpha=alpha,
                    random_state=seed,
                    **({"max_e": max_e, "min_e": min_e} if a == "dynamic" else {}),
                )
                for a in aggregations
            }
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise EstimationError(
            f"{sample.outcome}/{group}: Callaway-Sant'Anna estimation failed: {exc}"
        ) from exc
    used = int(getattr(att, "n_units", inputs.n_units))
    if used != inputs.n_units:
        # moderndid drops units it does not see in every period; the results would then
        # describe other areas than the sample says
        raise EstimationError(
            f"{sample.outcome}/{group}: Callaway-Sant'Anna used {used} of "
            f"{inputs.n_units} areas (an unbalanced panel); balance the panel first"
        )
    return CSFit(
        sample=sample,
        control=control,
        att=att,
        aggregations=aggs,
        bootstrap=bootstrap,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        shift=shift,
        base_period=base_period,
        cohort_sizes=inputs.cohort_sizes,
    )


class _Columns:
    """The rows of :func:`tidy_cs`, gathered column by column.

    Each kind of row (group-time effects, an aggregation, its event times, ...) is one
    part: arrays of its per-row values and scalars for values shared by the part.
    Columns a part leaves out take the sample's labels, or NaN. Per-row dictionaries
    and a table converted row by row cost more than the aggregations themselves.
    """

    _PER_ROW = (list, np.ndarray)

    def __init__(self, fit: CSFit):
        s = fit.sample
        self.shared = {
            "data_source": s.data_source,
            "estimator": fit.estimator,
            "outcome": s.outcome,
            "scale": s.scale,
            "group": s.group,
            "inference": fit.inference,
            "n_treated": s.n_treated,
            "n_control": s.n_control,
            "n_obs": s.n_obs,
            "pre_mean": s.pre_mean,
        }
        self.parts: list[tuple[int, dict]] = []

    def add(self, n: int, **values) -> None:
        """Add ``n`` rows: each value a list or array of ``n``, or one for all of them."""
        self.parts.append((n, values))

    def _column(self, name: str, default):
        n_rows = sum(n for n, _ in self.parts)
        fill = self.shared.get(name, default)
        if schema.RESULT_COLUMNS[name] == "float64":
            if not any(name in v for _, v in self.parts):
                return np.full(n_rows, fill, dtype="float64")
        elif not any(name in v for _, v in self.parts):
            return [fill] * n_rows
        values = [v.get(name, fill) for _, v in self.parts]
        if schema.RESULT_COLUMNS[name] == "float64":
            return np.concatenate([
                np.asarray(v, dtype="float64")
                if isinstance(v, self._PER_ROW)
                else np.full(n, v, dtype="float64")
                for (n, _), v in zip(self.parts, values, strict=True)
            ])
        # strings and counts as lists: results_frame converts them as it converts rows
        out: list = []
        for (n, _), v in zip(self.parts, values, strict=True):
            out.extend(v if isinstance(v, self._PER_ROW) else [v] * n)
        return out

    def columns(self, alpha: float) -> dict:
        """The columns for :func:`vanguard.schema.results_frame`, with the normal interval
        and two-sided p-value of every row whose part does not give them."""
        given = ("ci_low", "ci_high", "p_value")
        names = dict.fromkeys([*self.shared, *(k for _, v in self.parts for k in v)])
        out = {c: self._column(c, math.nan) for c in names if c not in given}
        est, se = out["estimate"], out["se"]
        se[~np.isfinite(se)] = math.nan  # a missing or infinite se is no se
        # scipy.stats.norm's ppf and sf are ndtri and ndtr(-x) behind argument checks
        # that cost more than the values (the same values, infinities and NaN included)
        z = special.ndtri(1 - alpha / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(se > 0, 2 * special.ndtr(-np.abs(est / se)), math.nan)
        interval = {"ci_low": est - z * se, "ci_high": est + z * se, "p_value": p}
        start = 0
        for n, values in self.parts:
            for col, arr in interval.items():
                if col in values:
                    arr[start : start + n] = values[col]
            start += n
        out.update(interval)
        return out


def _same_lengths(what: str, **arrays) -> None:
    """Refuse moderndid output whose parallel arrays differ in length."""
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{what}: arrays of different lengths {sizes}")


def tidy_cs(
    fit: CSFit,
    windows: Mapping[str, tuple[int, int]] | None = None,
    *,
    pretrend_bootstrap: bool = True,
) -> pd.DataFrame:
    """Tidy results of a :class:`CSFit`.

    Parameters
    ----------
    fit : CSFit
    windows : mapping, optional
        Post-period windows for ``analysis="main"`` rows (see :meth:`CSFit.window_effects`).
    pretrend_bootstrap : bool
        Give the pre-trend Wald test its bootstrap p-value (:meth:`CSFit.pretrend_test`,
        ``fit.n_boot`` draws). ``False``: the row holds moderndid's Wald statistic with
        the p-value withheld (as for not-yet-treated comparisons), for callers that do
        not report the test.

    Returns
    -------
    pandas.DataFrame
        In the schema of :func:`vanguard.schema.results_frame`.

    Raises
    ------
    EstimationError
        If a window does not fall on quarter boundaries in a quarterly fit.
    """
    unit_note = f"time unit: {fit.sample.unit}"
    table = _Columns(fit)
    shift = fit.shift
    groups = np.asarray(fit.att.groups, dtype=float) - shift
    times = np.asarray(fit.att.times, dtype=float) - shift
    att_gt = np.asarray(fit.att.att_gt, float)
    se_gt = np.asarray(fit.att.se_gt, float)
    _same_lengths("group-time effects", cohorts=groups, periods=times, effects=att_gt,
                  standard_errors=se_gt)
    cells = list(zip(groups.tolist(), times.tolist(), strict=True))
    rel = [int(t - g) for g, t in cells]
    table.add(
        len(cells),
        analysis="group_time",
        window=[f"rel_{r}" for r in rel],
        rel_time=np.array(rel, dtype=float),
        param=groups,
        estimate=att_gt,
        se=se_gt,
        note=[f"ATT(g={int(g)}, t={int(t)}); {unit_note}" for g, t in cells],
    )
    for name, agg in fit.aggregations.items():
        table.add(
            1,
            analysis="aggregation",
            window=name,
            estimate=float(agg.overall_att),
            se=float(agg.overall_se),
            note=f"moderndid aggte type={name}; {unit_note}",
        )
        if name == "dynamic":
            e = np.asarray(agg.event_times).astype(int)
            att_e = np.asarray(agg.att_by_event, float)
            se_e = np.asarray(agg.se_by_event, float)
            _same_lengths("dynamic aggregation", event_times=e, effects=att_e,
                          standard_errors=se_e)
            table.add(
                len(e),
                analysis="event_study",
                window=[f"rel_{k}" for k in e.tolist()],
                rel_time=e.astype(float),
                estimate=att_e,
                se=se_e,
                note=unit_note,
            )
    if windows:
        # per-cohort effects over the longest window (years 1-3 by default)
        name, (lo, hi) = max(windows.items(), key=lambda kv: kv[1][1] - kv[1][0])
        coh = fit._cohort_rows(lo, hi)
        table.add(
            len(coh),
            analysis="cohort",
            window=[f"cohort_{r['label']}" for r in coh],
            param=np.array([float(r["cohort"]) for r in coh], dtype=float),
            estimate=np.array([r["estimate"] for r in coh], dtype=float),
            se=np.array([r["se"] for r in coh], dtype=float),
            n_treated=[r["n_areas"] for r in coh],
            note=[
                f"cohort starting {r['label']}: mean of its {r['n_periods']} ATT(g,t) in "
                f"window {name} (months {lo}..{hi - 1} after its start); {unit_note}"
                for r in coh
            ],
        )
        main = fit._window_rows(windows)
        table.add(
            len(main),
            analysis="main",
            window=[r["window"] for r in main],
            estimate=np.array([r["estimate"] for r in main], dtype=float),
            se=np.array([r["se"] for r in main], dtype=float),
            note=[
                f"mean of event-time effects over {r['n_periods']} "
                f"{fit.sample.unit}s; {unit_note}"
                for r in main
            ],
        )
    pt = fit.pretrend_test(n_boot=fit.n_boot, seed=fit.seed) if pretrend_bootstrap else None
    stat = getattr(fit.att, "wald_stat", None)
    n_pre = int(np.sum(times < groups))
    if pt is None and stat is not None and n_pre > 0:
        # not-yet-treated comparisons (or no bootstrap asked for): the chi2 p-value
        # over-rejects, so none is given
        why = (
            "the bootstrap p-value was not asked for"
            if not pretrend_bootstrap
            else "the bootstrap is implemented for never-treated comparisons only"
        )
        table.add(
            1,
            analysis="pretrend",
            window="pre",
            estimate=float(stat),
            param=float(n_pre),
            inference="analytic",
            se=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            p_value=math.nan,
            note=f"Wald statistic that all {n_pre} pre-period ATT(g,t) are 0; p-value "
            "withheld: the chi2 reference over-rejects with few treated areas and "
            f"{why}; {unit_note}",
        )
    if pt is not None:
        note = (
            f"Wald test that all {pt['n_pre']} pre-period ATT(g,t) are 0 (estimate = "
            f"statistic, param = df = rank of the influence-function covariance); p-value "
            f"from a studentised multiplier bootstrap of the statistic ({pt['n_boot']} "
            f"draws, Webb weights; the chi2({pt['df']}) p-value would be "
            f"{pt['p_chi2']:.3g} and over-rejects with few treated areas); {unit_note}"
        )
        table.add(
            1,
            analysis="pretrend",
            window="pre",
            estimate=pt["stat"],
            param=float(pt["df"]),
            inference="multiplier_bootstrap",
            se=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            p_value=pt["p_value"],
            note=note,
        )
    return schema.results_frame(table.columns(fit.alpha), blank_tests=True)


def estimate_cs(
    data,
    outcome: str | None = None,
    *,
    scale: str = "rate",
    group: str = schema.POPULATION_BASED,
    control: str = "never",
    base_period: str = "varying",
    unit: str | None = None,
    windows: Mapping[str, tuple[int, int]] | None = None,
    aggregations: Iterable[str] = AGGREGATIONS,
    bootstrap: bool = False,
    n_boot: int = 999,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
    id_col: str | None = None,
    time_col: str | None = None,
    cohort_col: str | None = None,
    data_source: str | None = None,
    pre_months: int = 24,
    controls: Iterable[str] | None = None,
    pretrend_bootstrap: bool = True,
) -> pd.DataFrame:
    """Callaway-Sant'Anna estimates in the tidy results schema.

    Parameters
    ----------
    data : pandas.DataFrame or Design
        A ``Design``, a vanguard panel, or a generic long panel (see
        :func:`estimation_sample`).
    outcome : str, optional
        Outcome column; required for panels.
    scale : str
        Scale of the outcome (``rate``, ``log`` or ``count``); the design applies it.
    group : str
        Analysis group.
    control : {"never", "notyet"}
        Comparison units: never-treated only, or also not-yet-treated ones.
    base_period : {"varying", "universal"}
        Pre-period comparisons against the previous period (R ``did`` default) or
        against the period before treatment (needed for an event study read like a
        regression event study, e.g. as HonestDiD input).
    unit : {"quarter", "month"}, optional
        Time unit of the estimation on monthly vanguard data; default
        :data:`DEFAULT_UNIT` (see module docstring). A generic panel keeps its own unit.
    windows : mapping or iterable of str, optional
        Post-period windows (months, ``[lo, hi)``) reported as ``analysis="main"`` rows,
        or names of :data:`vanguard.schema.WINDOWS`. Defaults to all of
        :data:`vanguard.schema.WINDOWS` for vanguard data, none for a generic panel.
    aggregations : iterable of str
        Subset of :data:`AGGREGATIONS`.
    bootstrap : bool
        Multiplier-bootstrap standard errors instead of analytic ones.
    n_boot : int
        Bootstrap draws.
    seed : int
        Seed of the bootstrap.
    alpha : float
        1 - confidence level of the pointwise intervals.
    id_col, time_col, cohort_col : str, optional
        Columns of a generic panel.
    data_source : str, optional
        Label of the data (``synthetic``, ``nhs_mar``, ``custom``).
    pre_months : int
        Months before the earliest start kept in the sample (vanguard panels).
    controls : iterable of str, optional
        An explicit list of comparison areas instead of the never-treated ones.
    pretrend_bootstrap : bool
        Bootstrap the pre-trend test's p-value (see :func:`tidy_cs`).

    Returns
    -------
    pandas.DataFrame
        Tidy schema rows, estimator ``cs_never`` or ``cs_notyet``:
        ``analysis="group_time"`` (``param`` = cohort, ``rel_time`` = period - cohort,
        ``window`` = ``rel_<k>``), ``"aggregation"`` (``window`` = aggregation name),
        ``"event_study"`` (dynamic aggregation by event time), ``"main"`` (windows) and
        ``"pretrend"`` (Wald pre-test).

    Raises
    ------
    EstimationError
        See :func:`fit_cs`.
    DataError
        See :func:`estimation_sample`.
    """
    if windows is None and id_col is None:
        windows = schema.WINDOWS
    windows = resolve_windows(windows)
    post = max((hi for _, hi in windows.values()), default=36)
    fit = fit_cs(
        data,
        outcome,
        scale=scale,
        group=group,
        control=control,
        base_period=base_period,
        unit=unit,
        aggregations=aggregations,
        bootstrap=bootstrap,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        id_col=id_col,
        time_col=time_col,
        cohort_col=cohort_col,
        data_source=data_source,
        pre_months=pre_months,
        post_months=post,
        controls=controls,
    )
    return tidy_cs(fit, windows, pretrend_bootstrap=pretrend_bootstrap)
