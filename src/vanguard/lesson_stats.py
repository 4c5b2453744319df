"""Small statistics the lesson rules share: standard errors read off % intervals,
minimum detectable effects, Cochran's Q and its power, and whether a minimum detectable
effect was simulated on a shortened design.

Every quantity is on the percentage scale of the results files (``pct``,
``pct_ci_low``, ``pct_ci_high``: % of the treated areas' pre-period mean), because the
lessons' thresholds are stated in % (the hoped-for reduction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
Z80 = float(stats.norm.ppf(0.80))
MDE_MULTIPLIER = Z95 + Z80
"""(z_0.975 + z_0.80) = 2.80: a two-sided 5% test detects an effect of this many
standard errors with 80% power."""


def pct_se(ci_low: float, ci_high: float) -> float:
    """Standard error implied by a 95% interval on the % scale.

    Parameters
    ----------
    ci_low, ci_high : float
        Bounds of the 95% interval (% of the pre-period mean).

    Returns
    -------
    float
        Half the interval's width over z_0.975; NaN if a bound is missing or the
        interval is empty. Bootstrap and placebo intervals need not be symmetric, so this
        is the normal-equivalent standard error of the interval, not of the estimator.
    """
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)) or ci_high <= ci_low:
        return math.nan
    return float((ci_high - ci_low) / (2 * Z95))


def mde_from_se(se: float, power: float = 0.8) -> float:
    """Smallest effect a two-sided 5% test detects with ``power``, given its SE."""
    return float((Z95 + stats.norm.ppf(power)) * se)


SHORTENED_PHRASE = "overstates the design's"
"""What :func:`vanguard.did.power.minimum_detectable_effect` writes in a power row's note
when the pre-period was too short and it simulated a shortened design."""


def mde_shortened(note: str) -> bool:
    """Whether a power row's MDE was simulated on a shortened design.

    Fewer months average out less noise, so such an MDE overstates the design's by a
    factor the simulation does not give: it can show that a reduction *is* detectable
    (the design's MDE is smaller still) but not that it is not.

    Parameters
    ----------
    note : str
        The power row's ``note``.

    Returns
    -------
    bool
    """
    return SHORTENED_PHRASE in (note or "")


def cochran_q(estimates: np.ndarray, se: np.ndarray) -> tuple[float, int, float, float]:
    """Cochran's Q for heterogeneity of independent estimates.

    Parameters
    ----------
    estimates, se : numpy.ndarray
        Site estimates and their standard errors (finite, ``se > 0``).

    Returns
    -------
    (float, int, float, float)
        Q, degrees of freedom, p-value (chi-squared), and I-squared in % (0 when
        Q <= df).

    Raises
    ------
    ValueError
        If fewer than two estimates are given or a standard error is not positive.
    """
    b = np.asarray(estimates, float)
    s = np.asarray(se, float)
    if b.size < 2:
        raise ValueError("cochran_q: need at least two estimates")
    if not (np.isfinite(s).all() and (s > 0).all() and np.isfinite(b).all()):
        raise ValueError("cochran_q: estimates and standard errors must be finite, se > 0")
    w = 1.0 / s**2
    pooled = np.sum(w * b) / np.sum(w)
    q = float(np.sum(w * (b - pooled) ** 2))
    dof = int(b.size - 1)
    p = float(stats.chi2.sf(q, dof))
    i2 = float(max(0.0, (q - dof) / q) * 100) if q > 0 else 0.0
    return q, dof, p, i2


def q_power(se: np.ndarray, tau: float, alpha: float = 0.05) -> float:
    """Power of Cochran's Q test to detect site effects spread with SD ``tau``.

    Site effects that deviate from their weighted mean with spread ``tau`` make Q
    non-central chi-squared with ``k - 1`` degrees of freedom and non-centrality
    ``tau**2 * (sum(w) - sum(w**2) / sum(w))``, ``w = 1 / se**2`` (Hedges and Pigott
    2001, fixed-effects heterogeneity).

    Parameters
    ----------
    se : numpy.ndarray
        Standard errors of the site estimates (same unit as ``tau``).
    tau : float
        Between-site standard deviation to detect.
    alpha : float
        Size of the test.

    Returns
    -------
    float
        Probability that Q exceeds its ``1 - alpha`` critical value.

    Raises
    ------
    ValueError
        If fewer than two standard errors are given or one is not positive.
    """
    s = np.asarray(se, float)
    if s.size < 2 or not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError("q_power: need at least two finite, positive standard errors")
    w = 1.0 / s**2
    lam = tau**2 * (w.sum() - (w**2).sum() / w.sum())
    dof = s.size - 1
    crit = stats.chi2.ppf(1 - alpha, dof)
    return float(stats.ncx2.sf(crit, dof, lam)) if lam > 0 else float(alpha)


@dataclass
class Heterogeneity:
    """Cochran's Q test of between-site heterogeneity within one group."""

    n_sites: int
    q: float
    df: int
    p_value: float
    i2: float  # % of variation across sites beyond chance
    n_reduction: int  # sites whose 95% CI lies below zero
    n_same_sign: int  # sites whose estimate has the sign of the pooled estimate
    unit: str = "estimate"  # "%" when Q was computed on % of each site's pre-period mean
    se: tuple[float, ...] = ()  # the site standard errors Q used, in ``unit``
    sites: tuple[str, ...] = ()


def site_heterogeneity(per_site: pd.DataFrame) -> dict[str, Heterogeneity]:
    """Heterogeneity of per-site effects, by group.

    Q is computed on the % scale (each site's effect as % of its own pre-period mean,
    the unit of the lessons' thresholds) when every usable site has a finite % interval,
    otherwise on the estimate's own scale.

    Parameters
    ----------
    per_site : pandas.DataFrame
        Results rows for one outcome, scale and window; rows with a non-empty ``site``
        are used. A missing ``se`` is recovered from the 95% interval.

    Returns
    -------
    dict
        Group -> :class:`Heterogeneity`, for groups with at least two usable sites.
    """
    out: dict[str, Heterogeneity] = {}
    sites = per_site[per_site["site"].fillna("") != ""]
    for group, g in sites.groupby("group", sort=True):
        lo = g["ci_low"].astype(float).to_numpy()
        hi = g["ci_high"].astype(float).to_numpy()
        pct = g["pct"].astype(float).to_numpy()
        pct_lo = g["pct_ci_low"].astype(float).to_numpy()
        pct_hi = g["pct_ci_high"].astype(float).to_numpy()
        pct_se_ = np.array([pct_se(a, b) for a, b in zip(pct_lo, pct_hi, strict=True)])
        on_pct = bool(len(g) >= 2 and np.isfinite(pct).all() and np.isfinite(pct_se_).all())
        if on_pct:
            est, se, unit = pct, pct_se_, "%"
        else:
            est = g["estimate"].astype(float).to_numpy()
            se = g["se"].astype(float).to_numpy()
            se = np.where(np.isfinite(se) & (se > 0), se, (hi - lo) / (2 * Z95))
            unit = "estimate"
        ok = np.isfinite(se) & (se > 0) & np.isfinite(est)
        if ok.sum() < 2:
            continue
        q, dof, p, i2 = cochran_q(est[ok], se[ok])
        pooled = float(np.sum(est[ok] / se[ok] ** 2) / np.sum(1 / se[ok] ** 2))
        out[str(group)] = Heterogeneity(
            n_sites=int(ok.sum()), q=q, df=dof, p_value=p, i2=i2,
            n_reduction=int((hi[ok] < 0).sum()),
            n_same_sign=int((np.sign(est[ok]) == np.sign(pooled)).sum()),
            unit=unit, se=tuple(float(x) for x in se[ok]),
            sites=tuple(str(s) for s in g["site"].to_numpy()[ok]),
        )
    return out
