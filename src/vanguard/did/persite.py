"""Per-site effects for a forest plot, with inference that works for one treated area.

Each vanguard site with an area footprint is compared with the never-treated control
areas by the same two-way fixed-effects (TWFE) difference-in-differences as the main
analysis. On a balanced panel with one common start date and one post-period window,
the TWFE coefficient equals the difference between the treated and control means of the
area-level change ``mean(y in window) - mean(y in the pre-period)``; this module works on
those area-level changes ("collapsed" DiD, Bertrand, Duflo & Mullainathan 2004), which
makes thousands of re-estimations cheap. :mod:`vanguard.did.power`,
:mod:`vanguard.did.robustness` and :mod:`vanguard.did.synth` reuse the same machinery.

Why not cluster-robust standard errors?
---------------------------------------
With one treated area, a cluster-robust variance has one treated cluster: its treated
half is estimated from a single residual that the fit forces to zero, so the SE is far too
small and tests over-reject badly (MacKinnon & Webb 2017). The default here is the
Conley & Taber (2011) placebo interval: the estimation error of a one-area DiD is that
area's own idiosyncratic change minus the control average, whose distribution is read off
the control areas by treating each in turn as a placebo site. Areas differ in how noisy
they are: smaller areas have noisier rates, and the noise is largely multiplicative, so
it also grows with an area's rate level. Each control's placebo error is therefore
rescaled by ``sd(site) / sd(control)``, the ratio of the areas' own pre-period residual
SDs (:func:`pre_period_noise`, two-way demeaned pre-period months), in the spirit of
Ferman & Pinto (2019); sites with several areas draw random sets of controls, each
rescaled to one of the site's areas. (:func:`placebo_errors` still offers the
population-based variance model ``a + b / size``.) The interval assumes the site's standardised error is drawn from the
same distribution as the controls'; the ``cluster`` option is kept for comparison only.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vanguard import schema
from vanguard.errors import DataError, EstimationError

PANEL_NAME = "panel"
"""How in-memory panels are named in error messages."""

PER_SITE_INFERENCE: tuple[str, ...] = ("conley_taber", "cluster")


# --- the outcome on its analysis scale, as an area x month matrix ---------------------


@dataclass(frozen=True)
class OutcomeMatrix:
    """An outcome on its analysis scale, one row per area and one column per month.

    Attributes
    ----------
    y : pandas.DataFrame
        Areas x months (month starts), on the analysis scale; NaN where a month is missing.
    natural : pandas.DataFrame
        The same cells on the natural scale (rate per 1,000 for ``rate``, else counts),
        used for pre-period means.
    areas : pandas.DataFrame
        One row per area, indexed by area: ``group``, ``start``, ``site`` (tuple of site
        ids) and ``population`` (mean over the panel; NaN without a population column).
    outcome, scale : str
    """

    y: pd.DataFrame
    natural: pd.DataFrame
    areas: pd.DataFrame
    outcome: str
    scale: str


def outcome_matrix(panel: pd.DataFrame, outcome: str, scale: str = "rate") -> OutcomeMatrix:
    """Put an outcome of the analysis panel on its analysis scale as an area x month matrix.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel (see :mod:`vanguard.schema`).
    outcome : str
        Outcome column (a count).
    scale : {"rate", "log", "count"}
        ``rate``: per 1,000 population per month; ``log``: natural log of the count;
        ``count``: the count. Poisson is not linear and is not supported here.

    Returns
    -------
    OutcomeMatrix

    Raises
    ------
    DataError
        If a required column is missing, a count is negative or missing, a population is
        not positive (``rate``), a count is zero (``log``), an area-month is duplicated, or
        an area's group/start/site is not constant.
    EstimationError
        If ``scale`` is not one of ``rate``, ``log``, ``count``.
    """
    if scale not in ("rate", "log", "count"):
        raise EstimationError(
            f"scale {scale!r}: expected one of 'rate', 'log', 'count' (Poisson fixed effects "
            "are not linear, so the collapsed estimators here do not apply)"
        )
    need = [schema.AREA, schema.MONTH, outcome, schema.GROUP, schema.START, schema.SITE]
    if scale == "rate":
        need.append(schema.POPULATION)
    for col in need:
        if col not in panel.columns:
            raise DataError(PANEL_NAME, f"a column {col!r}", column=col)
    df = panel[[c for c in dict.fromkeys(need + [schema.POPULATION]) if c in panel.columns]]
    df = df.reset_index(drop=True)
    counts = pd.to_numeric(df[outcome], errors="coerce")
    _check_rows(counts.isna() | (counts < 0), outcome, "a non-negative count", df[outcome])
    if scale == "log":
        _check_rows(counts == 0, outcome, "a positive count on the log scale", df[outcome])
    if scale == "rate":
        pop = pd.to_numeric(df[schema.POPULATION], errors="coerce")
        _check_rows(~(pop > 0), schema.POPULATION, "a positive population", df[schema.POPULATION])
        natural = schema.per_1000(counts, pop)
        y = natural
    else:
        natural = counts.astype(float)
        y = np.log(natural) if scale == "log" else natural
    dup = df.duplicated([schema.AREA, schema.MONTH])
    _check_rows(dup, schema.MONTH, "one row per area and month", df[schema.MONTH])
    month = pd.to_datetime(df[schema.MONTH]).dt.to_period("M").dt.to_timestamp()
    wide = pd.DataFrame({"area": df[schema.AREA].astype(str), "month": month, "y": y, "n": natural})
    y_wide = wide.pivot(index="area", columns="month", values="y").sort_index(axis=1)
    n_wide = wide.pivot(index="area", columns="month", values="n").reindex_like(y_wide)

    attrs = df[[schema.AREA, schema.GROUP, schema.START, schema.SITE]].copy()
    attrs[schema.AREA] = attrs[schema.AREA].astype(str)
    attrs[schema.SITE] = attrs[schema.SITE].fillna("").astype(str)
    attrs[schema.START] = pd.to_datetime(attrs[schema.START])
    per_area = attrs.drop_duplicates()
    varying = per_area[schema.AREA][per_area[schema.AREA].duplicated()]
    if len(varying):
        area = varying.iloc[0]
        rows = attrs.index[attrs[schema.AREA] == area]
        raise DataError(
            PANEL_NAME,
            "group, start and site constant within an area",
            row=int(rows[0]) + 2,
            column="group/start/site",
            found=area,
        )
    areas = per_area.set_index(schema.AREA).reindex(y_wide.index)
    bad_group = ~areas[schema.GROUP].astype(str).str.fullmatch(schema.GROUP_LABEL_PATTERN)
    if bad_group.any():
        raise DataError(
            PANEL_NAME,
            "a treatment group name or 'control' as the area's group",
            column=schema.GROUP,
            found=areas[schema.GROUP][bad_group].iloc[0],
        )
    areas[schema.SITE] = [
        tuple(s.strip() for s in v.split(";") if s.strip()) for v in areas[schema.SITE]
    ]
    if schema.POPULATION in df.columns:
        pop = pd.to_numeric(df[schema.POPULATION], errors="coerce")
        areas[schema.POPULATION] = pop.groupby(df[schema.AREA].astype(str)).mean()
    else:
        areas[schema.POPULATION] = np.nan
    return OutcomeMatrix(y_wide, n_wide, areas, outcome, scale)


def _check_rows(bad: pd.Series, column: str, expected: str, values: pd.Series) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        # Spreadsheet numbering: header is row 1.
        raise DataError(PANEL_NAME, expected, row=i + 2, column=column, found=values.iloc[i])


def month_offset(month: pd.Timestamp, months: int) -> pd.Timestamp:
    """The month start ``months`` months after ``month`` (negative: before)."""
    return (pd.Timestamp(month).to_period("M") + int(months)).to_timestamp()


def control_mask(areas: pd.DataFrame) -> pd.Series:
    """Comparison areas: never-treated and in no vanguard site's footprint.

    Parameters
    ----------
    areas : pandas.DataFrame
        :attr:`OutcomeMatrix.areas`.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``areas``.
    """
    return (areas[schema.GROUP] == schema.CONTROL) & (areas[schema.SITE].map(len) == 0)


def site_start(om: OutcomeMatrix, site: str, site_areas: Sequence[str]) -> pd.Timestamp:
    """The one start month of a site's areas.

    Parameters
    ----------
    om : OutcomeMatrix
    site : str
        Site id, named in the error.
    site_areas : sequence of str
        The site's areas.

    Returns
    -------
    pandas.Timestamp

    Raises
    ------
    DataError
        If the areas have no start month or more than one.
    """
    start = om.areas.loc[list(site_areas), schema.START].dropna().unique()
    if len(start) != 1:
        raise DataError(
            PANEL_NAME,
            f"one start month for the areas of site {site}",
            column=schema.START,
            found=[str(s) for s in start],
        )
    return pd.Timestamp(start[0])


def treated_start(om: OutcomeMatrix, areas: Iterable[str], *, common: bool = True) -> pd.Timestamp:
    """The start month of a set of treated areas.

    Parameters
    ----------
    om : OutcomeMatrix
    areas : iterable of str
        Treated area codes.
    common : bool
        Require one start shared by all (the collapsed per-site estimators); with
        ``False`` the earliest start (a staggered group's pre-period ends there).

    Raises
    ------
    EstimationError
        If there are no such areas, or with ``common`` they start in different months
        (the collapsed estimators here need one start date; use the staggered
        estimators instead).
    """
    areas = list(areas)
    treated = om.areas.loc[om.areas.index.intersection(areas)]
    if treated.empty:
        raise EstimationError(f"no treated areas among {areas[:5]}")
    starts = treated[schema.START].dropna().unique()
    if common and len(starts) != 1:
        raise EstimationError(
            f"treated areas {areas[:5]} start in {len(starts)} different months "
            "(expected one common start for this estimator)"
        )
    return pd.Timestamp(min(starts))


def area_changes(
    om: OutcomeMatrix,
    start: pd.Timestamp,
    *,
    pre_months: int = 24,
    window: tuple[int, int] = (0, 36),
    areas: Sequence[str] | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Area-level change ``mean(y over the window) - mean(y over the pre-period)``.

    Parameters
    ----------
    om : OutcomeMatrix
    start : pandas.Timestamp
        Month 0 of the (real or pretend) programme.
    pre_months : int
        Months before ``start`` that form the pre-period.
    window : (int, int)
        Post-period window in months since ``start``, half-open.
    areas : sequence of str, optional
        Areas to keep (default: all).

    Returns
    -------
    changes : pandas.Series
        Indexed by area; only areas observed in every month of the pre-period and window
        (a balanced panel). Areas dropped for missing months raise a warning naming them.
    pre_mean : pandas.Series
        Each area's pre-period mean on the natural scale.

    Raises
    ------
    EstimationError
        If the panel does not cover the pre-period and window.
    """
    lo, hi = window
    pre = pd.date_range(month_offset(start, -pre_months), periods=pre_months, freq="MS")
    post = pd.date_range(month_offset(start, lo), periods=hi - lo, freq="MS")
    cols = om.y.columns
    missing = pre.difference(cols).union(post.difference(cols))
    if len(missing):
        raise EstimationError(
            f"the panel does not cover {len(missing)} month(s) needed for a pre-period of "
            f"{pre_months} months and window {window} around {start:%Y-%m} "
            f"(first missing {missing[0]:%Y-%m}; panel covers {cols.min():%Y-%m} to "
            f"{cols.max():%Y-%m})"
        )
    y = om.y if areas is None else om.y.loc[list(areas)]
    used = y[pre.append(post)]
    complete = used.notna().all(axis=1)
    if not complete.all():
        dropped = list(used.index[~complete])
        warnings.warn(
            f"dropped {len(dropped)} area(s) without a complete pre-period and window "
            f"(balanced panel): {dropped[:10]}{' ...' if len(dropped) > 10 else ''}",
            stacklevel=2,
        )
    y = y[complete]
    change = y[post].mean(axis=1) - y[pre].mean(axis=1)
    pre_mean = om.natural.loc[y.index, pre].mean(axis=1)
    return change, pre_mean


def pre_period_noise(
    om: OutcomeMatrix, start: pd.Timestamp, *, pre_months: int = 24, areas: Sequence[str]
) -> pd.Series:
    """Each area's noise level: the SD of its pre-period two-way residuals.

    The pre-period months of ``areas`` are demeaned by area and by month (the month
    means are dominated by the many control areas), and each area's root mean squared
    residual measures how noisy its outcome is on the analysis scale. Noise in the rates
    is largely multiplicative, so it grows with an area's rate level as well as falling
    with its size; the area's own residual variance captures both.

    Returns
    -------
    pandas.Series
        Indexed by area (areas with a missing pre-period month are left out).

    Raises
    ------
    EstimationError
        If the panel does not cover the pre-period.
    """
    pre = pd.date_range(month_offset(start, -pre_months), periods=pre_months, freq="MS")
    if len(pre.difference(om.y.columns)):
        raise EstimationError(
            f"the panel does not cover the {pre_months}-month pre-period before {start:%Y-%m}"
        )
    y = om.y.loc[list(areas), pre].dropna()
    r = y.sub(y.mean(axis=1), axis=0)
    r = r - r.mean(axis=0)
    dof = (len(r) - 1) * (pre_months - 1) / len(r)  # per-area share of residual dof
    return np.sqrt((r**2).sum(axis=1) / dof)


def did_cluster(change_treated: np.ndarray, change_control: np.ndarray) -> tuple[float, float, int]:
    """DiD estimate and its cluster-robust (by area, CR1) standard error.

    On a balanced panel the area-clustered variance of the TWFE coefficient equals the
    heteroskedasticity-robust variance of the difference in mean changes,
    ``s2_T / n_T + s2_C / n_C`` with divisor n, times the CR1 factor G / (G - 1).

    Returns
    -------
    estimate, se, df
        ``df`` = G - 1, the degrees of freedom for t-based tests.
    """
    t = np.asarray(change_treated, float)
    c = np.asarray(change_control, float)
    g = t.size + c.size
    est = t.mean() - c.mean()
    var = np.sum((t - t.mean()) ** 2) / t.size**2 + np.sum((c - c.mean()) ** 2) / c.size**2
    return float(est), float(math.sqrt(var * g / (g - 1))), g - 1


def placebo_errors(
    change_control: pd.Series,
    *,
    n_treated: int = 1,
    population: pd.Series | None = None,
    target_population: float | None = None,
    noise: pd.Series | None = None,
    target_noise: float | Sequence[float] | None = None,
    n_draws: int = 999,
    seed: int = schema.DEFAULT_SEED,
) -> np.ndarray:
    """Draws from the null distribution of a DiD estimate's error, from control areas.

    With ``n_treated == 1`` every control area is used once as a placebo site (its change
    minus the mean change of the other controls). With more treated areas, ``n_draws``
    random sets of that many controls are drawn. When ``population`` and
    ``target_population`` are given (one treated area only), each placebo error is
    rescaled by ``sqrt(v(target) / v(population_j))`` with ``v(p) = a + b / p`` fitted by
    least squares to the controls' squared centred changes (Ferman & Pinto 2019).

    When ``noise`` (each control's noise level, e.g. :func:`pre_period_noise`) and
    ``target_noise`` (the treated area's, or one per treated area) are given instead,
    each control's centred change is rescaled by ``target / noise_j`` before it enters a
    placebo: the placebo errors then have the noise level of the treated area(s) whatever
    makes areas noisy (size, or a level-dependent, multiplicative noise).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    EstimationError
        If there are fewer than ``n_treated + 2`` control areas.
    """
    c = change_control.to_numpy(float)
    n = c.size
    if n < n_treated + 2:
        raise EstimationError(f"{n} control areas: too few for placebo inference")
    ratio = None
    if noise is not None and target_noise is not None:
        sd = noise.reindex(change_control.index).to_numpy(float)
        tgt = np.broadcast_to(np.asarray(target_noise, float), (n_treated,))
        if np.all(np.isfinite(sd) & (sd > 0)) and np.all(np.isfinite(tgt) & (tgt > 0)):
            ratio = tgt[None, :] / sd[:, None]  # (controls, treated areas)
    if n_treated == 1 and ratio is not None:
        errors = c - (c.sum() - c) / (n - 1)
        return errors * ratio[:, 0]
    if ratio is not None:
        rng = np.random.default_rng(seed)
        out = np.empty(n_draws)
        total, cbar = c.sum(), c.mean()
        for b in range(n_draws):
            pick = rng.choice(n, size=n_treated, replace=False)
            scaled = (c[pick] - cbar) * ratio[pick, np.arange(n_treated)]
            rest = (total - c[pick].sum()) / (n - n_treated) - cbar
            out[b] = scaled.mean() - rest
        return out
    if n_treated == 1:
        errors = c - (c.sum() - c) / (n - 1)
        if population is not None and target_population is not None:
            p = population.reindex(change_control.index).to_numpy(float)
            if np.all(np.isfinite(p)) and np.isfinite(target_population):
                errors = errors * np.sqrt(_variance_model(c, p, target_population))
        return errors
    rng = np.random.default_rng(seed)
    out = np.empty(n_draws)
    total = c.sum()
    for b in range(n_draws):
        pick = rng.choice(n, size=n_treated, replace=False)
        s = c[pick].sum()
        out[b] = s / n_treated - (total - s) / (n - n_treated)
    return out


def _variance_model(c: np.ndarray, pop: np.ndarray, target: float) -> np.ndarray:
    """Ratio v(target) / v(pop_j) under ``v(p) = a + b / p`` (both coefficients >= 0)."""
    from scipy.optimize import nnls

    r2 = (c - c.mean()) ** 2
    design = np.column_stack([np.ones_like(pop), 1.0 / pop])
    coef, _ = nnls(design, r2)
    v = design @ coef
    v_target = coef[0] + coef[1] / target
    if not np.all(v > 0) or not v_target > 0:
        return np.ones_like(pop)
    return v_target / v


def placebo_interval(
    estimate: float, errors: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float, float]:
    """Conley-Taber interval, SE and two-sided p-value from placebo errors.

    Returns
    -------
    ci_low, ci_high, se, p_value
        ``[estimate - q(1 - alpha/2), estimate - q(alpha/2)]``; ``se`` is the standard
        deviation of the errors; ``p`` = (1 + #{|error| >= |estimate|}) / (1 + n).
    """
    e = np.asarray(errors, float)
    q_lo, q_hi = np.quantile(e, [alpha / 2, 1 - alpha / 2])
    p = (1 + np.sum(np.abs(e) >= abs(estimate))) / (1 + e.size)
    return float(estimate - q_hi), float(estimate - q_lo), float(e.std(ddof=1)), float(p)


# --- per-site effects -------------------------------------------------------------------


def area_sites(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per area: its ``group`` and ``site`` (a tuple of site ids).

    Raises
    ------
    DataError
        If the ``area``, ``group`` or ``site`` column is missing.
    """
    for col in (schema.AREA, schema.GROUP, schema.SITE):
        if col not in panel.columns:
            raise DataError(PANEL_NAME, f"a column {col!r}", column=col)
    areas = panel.drop_duplicates(schema.AREA).set_index(schema.AREA)[[schema.GROUP, schema.SITE]]
    areas.index = areas.index.astype(str)
    areas[schema.SITE] = [
        tuple(x.strip() for x in str(v).split(";") if x.strip()) if isinstance(v, str) else ()
        for v in areas[schema.SITE]
    ]
    return areas


def register_site_groups(data_source: str | None) -> dict[str, str]:
    """Site id -> analysis group, from the site register of a known data source.

    The panel alone cannot tell the group of a site whose areas are all ``both`` areas,
    or of an urgent-care site covering areas that another site makes population-based;
    the register's site ``type`` can.

    Parameters
    ----------
    data_source : str or None
        ``nhs_mar`` (the real register), ``synthetic`` (the synthetic register); anything
        else gives an empty mapping.

    Returns
    -------
    dict

    Raises
    ------
    DataError
        If the register exists but is malformed (see :func:`vanguard.sites.load_register`).
    """
    from vanguard import sites

    paths = sites.register_paths(data_source)
    if paths is None or not all(p.is_file() for p in paths):
        return {}
    register = sites.load_register(*paths)
    return {
        str(sid): schema.SITE_TYPE_GROUP[kind]
        for sid, kind in zip(register.sites["site_id"], register.sites["type"], strict=True)
        if kind in schema.SITE_TYPE_GROUP
    }


def site_groups(
    areas: OutcomeMatrix | pd.DataFrame,
    overrides: Mapping[str, str] | None = None,
    *,
    ambiguous: str = "raise",
) -> dict[str, str]:
    """The analysis group of every site with an area footprint.

    A site's group is the group of its areas, ``both`` areas aside (they belong to a
    population-based AND a care-home site); ``overrides`` (e.g. from
    :func:`register_site_groups`) take precedence.

    Parameters
    ----------
    areas : OutcomeMatrix or pandas.DataFrame
        An outcome matrix, or a table from :func:`area_sites`.
    overrides : mapping, optional
        Site id -> analysis group.
    ambiguous : {"raise", "skip"}
        What to do with a site whose group the areas cannot tell: raise, or leave it out
        with a warning naming it.

    Returns
    -------
    dict
        Site id -> analysis group, sorted by site id.

    Raises
    ------
    DataError
        With ``ambiguous="raise"``, if a site's areas span two analysis groups, or a site
        only has ``both`` areas, and no override says which group it belongs to.
    """
    table = areas.areas if isinstance(areas, OutcomeMatrix) else areas
    overrides = dict(overrides or {})
    out: dict[str, str] = {}
    members: dict[str, set[str]] = {}
    skipped = []
    for sites, group in zip(table[schema.SITE], table[schema.GROUP], strict=True):
        for s in sites:
            members.setdefault(s, set()).add(group)
    for site, groups in sorted(members.items(), key=lambda kv: _natural_key(kv[0])):
        if site in overrides:
            out[site] = overrides[site]
            continue
        # areas in one treatment group tell the site's group; areas in several do not
        specific = {
            next(iter(gs)) for gs in map(schema.label_groups, groups) if len(gs) == 1
        }
        if len(specific) == 1:
            out[site] = specific.pop()
        elif ambiguous == "skip":
            skipped.append(f"{site} ({', '.join(sorted(groups))})")
        else:
            raise DataError(
                PANEL_NAME,
                "the areas of a site to share one analysis group (or an entry in site_groups)",
                column=schema.SITE,
                found=f"{site}: {sorted(groups)}",
            )
    if skipped:
        warnings.warn(
            f"left out {len(skipped)} site(s) whose analysis group the panel cannot tell and "
            f"no site register gives: {'; '.join(skipped)}",
            stacklevel=2,
        )
    return out


def _natural_key(text: str) -> tuple:
    """Sort key putting site ``2`` before ``10`` and ``MCP2`` before ``MCP10``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text))


def per_site_effects(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    windows: Sequence[str] = ("years_1_3",),
    inference: str = "conley_taber",
    pre_months: int = 24,
    alpha: float = 0.05,
    site_group: Mapping[str, str] | None = None,
    n_draws: int = 999,
    seed: int = schema.DEFAULT_SEED,
    data_source: str = "",
) -> pd.DataFrame:
    """One DiD estimate per vanguard site (its areas vs never-treated controls).

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    outcome : str
        Outcome column.
    scale : {"rate", "log", "count"}
    windows : sequence of str
        Keys of :data:`vanguard.schema.WINDOWS`.
    inference : {"conley_taber", "cluster"}
        ``conley_taber`` (default): placebo interval from the control areas, rescaled to
        the noise level of the site's areas (see the module docstring). ``cluster``: CR1 cluster-robust t interval,
        unreliable with one treated area and reported for comparison only.
    pre_months : int
        Length of the pre-period before each site's start.
    alpha : float
        1 - confidence level.
    site_group : mapping, optional
        Site id -> analysis group, overriding the site register
        (:func:`register_site_groups`, for ``synthetic`` and ``nhs_mar`` panels) and the
        group inferred from the panel. Sites whose group none of these tells are left out
        with a warning.
    n_draws : int
        Placebo draws for sites with more than one area.
    seed : int
        Seeds the placebo draws.
    data_source : str
        Written to the ``data_source`` column.

    Returns
    -------
    pandas.DataFrame
        Tidy schema, ``analysis="per_site"``, ``estimator="twfe"``, one row per site x
        window; ``site`` = site id, ``group`` = its group, ``n_treated`` = its areas.

    Raises
    ------
    DataError
        For a malformed panel (see :func:`outcome_matrix`, :func:`site_groups`).
    EstimationError
        If a window key or inference method is unknown, or there are too few controls.
    """
    if inference not in PER_SITE_INFERENCE:
        raise EstimationError(f"inference {inference!r}: expected one of {PER_SITE_INFERENCE}")
    for w in windows:
        if w not in schema.WINDOWS:
            raise EstimationError(f"window {w!r}: expected one of {list(schema.WINDOWS)}")
    om = outcome_matrix(panel, outcome, scale)
    source = data_source or panel.attrs.get("data_source", "")
    overrides = {**register_site_groups(source), **dict(site_group or {})}
    groups = site_groups(om, overrides, ambiguous="skip")
    controls = list(om.areas.index[control_mask(om.areas)])
    rows = []
    for site, group in groups.items():
        site_areas = [a for a, s in om.areas[schema.SITE].items() if site in s]
        start = site_start(om, site, site_areas)
        for w in windows:
            change, pre_mean = area_changes(
                om,
                start,
                pre_months=pre_months,
                window=schema.WINDOWS[w],
                areas=site_areas + controls,
            )
            tr = change.reindex(site_areas).dropna()
            co = change.drop(site_areas, errors="ignore")
            if tr.empty:
                raise EstimationError(f"site {site}: no area with a complete pre-period and window")
            est, se_cl, df = did_cluster(tr.to_numpy(), co.to_numpy())
            row = dict(
                data_source=source,
                analysis="per_site",
                estimator="twfe",
                outcome=outcome,
                scale=scale,
                group=group,
                window=w,
                site=site,
                estimate=est,
                n_treated=len(tr),
                n_control=len(co),
                n_obs=(len(tr) + len(co)) * (pre_months + np.diff(schema.WINDOWS[w])[0]),
                pre_mean=float(pre_mean.reindex(tr.index).mean()),
            )
            if inference == "cluster":
                crit = stats.t.ppf(1 - alpha / 2, df)
                row.update(
                    se=se_cl,
                    ci_low=est - crit * se_cl,
                    ci_high=est + crit * se_cl,
                    p_value=float(2 * stats.t.sf(abs(est / se_cl), df)) if se_cl > 0 else math.nan,
                    inference="cluster",
                    note="cluster-robust SE with one treated cluster: unreliable, for comparison",
                )
            else:
                # Areas differ in noise: smaller areas are noisier, and noise in rates is
                # largely multiplicative (it grows with the rate level). Each control's
                # placebo error is put on the noise level of the site's own area(s),
                # measured by their pre-period residual SD.
                noise = pre_period_noise(
                    om, start, pre_months=pre_months, areas=list(tr.index) + list(co.index)
                )
                rescale = bool(set(tr.index) <= set(noise.index))
                errors = placebo_errors(
                    co,
                    n_treated=len(tr),
                    noise=noise if rescale else None,
                    target_noise=noise.reindex(tr.index).to_numpy() if rescale else None,
                    n_draws=n_draws,
                    seed=seed,
                )
                lo, hi, se, p = placebo_interval(est, errors, alpha)
                row.update(
                    se=se,
                    ci_low=lo,
                    ci_high=hi,
                    p_value=p,
                    inference="conley_taber",
                    note=(
                        f"placebo interval from {errors.size} control-area placebos"
                        + (
                            ", each rescaled to the noise level (pre-period residual SD) "
                            "of the site's area(s)"
                            if rescale
                            else ""
                        )
                        + f"; cluster-robust SE {se_cl:.4g} shown for comparison only"
                    ),
                )
            rows.append(row)
    if not rows:
        raise EstimationError("no vanguard site with an area footprint in the panel")
    return schema.results_frame(rows)
