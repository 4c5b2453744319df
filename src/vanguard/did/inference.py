"""Inference for the two-way fixed-effects DiD: cluster-robust, wild cluster bootstrap,
randomisation inference, and the rule that picks the headline method.

Why not pyfixest's ``wildboottest``
-----------------------------------
pyfixest delegates the wild bootstrap to the optional ``wildboottest`` package, which
is not a project dependency, and it returns p-values only (no confidence interval by
test inversion). The design here is small (one to eight regressors after the fixed
effects are projected out), so the restricted wild cluster bootstrap (WCR) is written
directly on the Frisch-Waugh-Lovell residualised data: every bootstrap statistic is a
function of per-cluster sums, and all draws are computed at once as matrix products
(``O(G * p * B)`` for ``G`` clusters, ``p`` regressors, ``B`` draws).

Why not pyfixest's ``ritest``
-----------------------------
It permutes a treatment column row-wise (or within clusters) and cannot keep the
staggered structure of the vanguards: which areas are treated is permuted, each
pseudo-treated area gets one of the real start months, and the sample window is
rebuilt around it. :func:`randomisation_inference` does that.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vanguard import schema
from vanguard.errors import EstimationError

WILD_BOOTSTRAP_THRESHOLD: int = 10
"""Fewer treated clusters than this -> the wild cluster bootstrap is the headline method."""

RI_VARIANCE_RATIO: float = 1.5
"""Treated/control pre-period residual variance ratio above which randomisation
inference is flagged: permuting treatment then assumes exchangeable areas that are not."""

WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])
"""Webb's six-point weights (mean 0, variance 1); with few clusters they give far more
distinct bootstrap samples than Rademacher's two points."""


def headline_inference(n_treated_clusters: int) -> tuple[str, str]:
    """The rule that chooses the headline inference method.

    Cluster-robust standard errors rely on many treated clusters: with few treated areas
    the sandwich estimator is biased down and t-tests over-reject (MacKinnon & Webb 2017,
    Conley & Taber 2011). The restricted wild cluster bootstrap with Webb weights is far
    better calibrated there.

    Parameters
    ----------
    n_treated_clusters : int
        Treated areas (clusters) of the group.

    Returns
    -------
    method : str
        ``"wild_bootstrap"`` if ``n_treated_clusters < WILD_BOOTSTRAP_THRESHOLD`` (10),
        else ``"cluster"``.
    rule_text : str
        The rule and how it applied, for the ``note`` column.

    Raises
    ------
    EstimationError
        If ``n_treated_clusters`` is not a positive integer.
    """
    if n_treated_clusters is None or int(n_treated_clusters) < 1:
        raise EstimationError(f"n_treated_clusters must be >= 1; found {n_treated_clusters!r}")
    n = int(n_treated_clusters)
    rule = (f"headline inference rule: fewer than {WILD_BOOTSTRAP_THRESHOLD} treated areas "
            f"-> restricted wild cluster bootstrap (Webb weights), otherwise cluster-robust "
            f"(CRV1 by area); {n} treated areas")
    if n < WILD_BOOTSTRAP_THRESHOLD:
        return "wild_bootstrap", rule + " -> wild cluster bootstrap"
    return "cluster", rule + " -> cluster-robust"


# --- FWL residualisation and cluster-robust variance -----------------------------------

@dataclass
class Residualised:
    """Outcome and regressors with the area and month fixed effects projected out.

    Attributes
    ----------
    y : ndarray (n,)
    X : ndarray (n, p)
    names : list of str
        Regressor names, in the column order of ``X``.
    cluster : ndarray (n,) of int
        Cluster code 0..G-1 of each row.
    G : int
    df_k : int
        Parameters counted in the (N-1)/(N-K) small-sample factor: regressors plus the
        month fixed effects (area effects are nested in the clusters), as pyfixest.
    """

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    cluster: np.ndarray
    G: int
    df_k: int

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def ssc(self) -> float:
        """Small-sample factor G/(G-1) * (N-1)/(N-K)."""
        return self.G / (self.G - 1) * (self.n - 1) / (self.n - self.df_k)

    def index(self, name: str | int) -> int:
        if isinstance(name, (int, np.integer)):
            return int(name)
        if name not in self.names:
            raise EstimationError(f"unknown regressor {name!r}; expected one of {self.names}")
        return self.names.index(name)


def residualise(frame: pd.DataFrame, y: str, regressors: Sequence[str], *,
                fe: Sequence[str] = ("area", "t"), cluster: str = "area",
                tol: float = 1e-10) -> Residualised:
    """Project the fixed effects out of the outcome and regressors (FWL).

    Parameters
    ----------
    frame : pandas.DataFrame
    y : str
        Outcome column.
    regressors : sequence of str
    fe : sequence of str
        Fixed-effect columns (default area and month index).
    cluster : str
        Cluster column (must nest the first fixed effect for the small-sample count).
    tol : float
        Convergence tolerance of the alternating projections.

    Returns
    -------
    Residualised

    Raises
    ------
    EstimationError
        If the demeaning does not converge or a regressor is absorbed by the fixed effects.
    """
    from pyfixest.estimation import demean

    codes = np.column_stack([pd.factorize(frame[f])[0] for f in fe]).astype(np.uint64)
    data = frame[[y, *regressors]].to_numpy(dtype="float64")
    out, ok = demean(np.ascontiguousarray(data), codes, np.ones(len(frame)), tol=tol,
                     maxiter=100_000)
    if not ok:
        raise EstimationError("fixed-effect demeaning did not converge")
    X = out[:, 1:]
    scale = np.abs(data[:, 1:]).max(axis=0)
    absorbed = np.abs(X).max(axis=0) <= 1e-8 * np.where(scale > 0, scale, 1)
    if absorbed.any():
        raise EstimationError(f"regressor(s) {list(np.asarray(regressors)[absorbed])} are "
                              "collinear with the fixed effects")
    cl = pd.factorize(frame[cluster])[0]
    n_other_fe = sum(int(frame[f].nunique()) for f in fe[1:])
    return Residualised(y=out[:, 0], X=X, names=list(regressors), cluster=cl,
                        G=int(cl.max()) + 1, df_k=len(regressors) + n_other_fe)


def _cluster_sum(values: np.ndarray, cluster: np.ndarray, G: int) -> np.ndarray:
    """Sum rows of ``values`` (n, ...) within clusters -> (G, ...)."""
    out = np.zeros((G,) + values.shape[1:])
    np.add.at(out, cluster, values)
    return out


def cluster_vcov(r: Residualised) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and CRV1 covariance (pyfixest conventions) on residualised data.

    Returns
    -------
    beta : ndarray (p,)
    vcov : ndarray (p, p)
    """
    A_inv = np.linalg.inv(r.X.T @ r.X)
    beta = A_inv @ (r.X.T @ r.y)
    u = r.y - r.X @ beta
    scores = _cluster_sum(r.X * u[:, None], r.cluster, r.G)
    vcov = r.ssc * A_inv @ (scores.T @ scores) @ A_inv
    return beta, vcov


# --- restricted wild cluster bootstrap ---------------------------------------------------

@dataclass
class BootstrapResult:
    """Result of a wild cluster bootstrap for one coefficient."""

    estimate: float
    se: float
    t_stat: float
    p_value: float
    ci_low: float
    ci_high: float
    n_boot: int
    weights: str
    note: str = ""


def bootstrap_weights(G: int, n_boot: int, rng: np.random.Generator,
                      kind: str = "webb") -> np.ndarray:
    """Draw a (G, n_boot) matrix of wild bootstrap weights.

    Parameters
    ----------
    G, n_boot : int
    rng : numpy.random.Generator
    kind : {"webb", "rademacher"}

    Returns
    -------
    ndarray (G, n_boot)

    Raises
    ------
    EstimationError
        Unknown ``kind``.
    """
    if kind == "webb":
        return WEBB[rng.integers(0, 6, size=(G, n_boot))]
    if kind == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=(G, n_boot))
    raise EstimationError(f"unknown bootstrap weights {kind!r}; expected 'webb' or 'rademacher'")


class _WCR:
    """Restricted wild cluster bootstrap of one coefficient, for any null value.

    Under ``H0: beta_k = b0`` the restricted residuals are linear in ``b0``
    (``u_r(b0) = u_r(0) - b0 * M x_k`` with ``M`` the annihilator of the other
    regressors), so the per-cluster quantities are formed once and the test of any
    ``b0`` costs ``O(G * p * B)``.
    """

    def __init__(self, r: Residualised, k: int, V: np.ndarray):
        X, y, cl, G = r.X, r.y, r.cluster, r.G
        p = X.shape[1]
        self.k, self.V, self.ssc = k, V, r.ssc
        A_inv = np.linalg.inv(X.T @ X)
        self.beta, vcov = cluster_vcov(r)
        self.se = math.sqrt(vcov[k, k])
        w = A_inv[k]  # row of (X'X)^-1 picking coefficient k
        others = [j for j in range(p) if j != k]
        if others:
            Xo = X[:, others]
            Bo = np.linalg.solve(Xo.T @ Xo, Xo.T)
            u0 = y - Xo @ (Bo @ y)
            u1 = X[:, k] - Xo @ (Bo @ X[:, k])
        else:
            u0, u1 = y.copy(), X[:, k].copy()
        # S_g(b0) = X_g' u_r,g(b0) = S0_g - b0 * S1_g
        self.S0 = _cluster_sum(X * u0[:, None], cl, G)
        self.S1 = _cluster_sum(X * u1[:, None], cl, G)
        H = _cluster_sum(np.einsum("ni,nj->nij", X, X), cl, G)  # (G, p, p)
        self.L = np.einsum("j,gjl->gl", w, H) @ A_inv  # (G, p): w' H_g (X'X)^-1
        self.w = w

    def t_boot(self, b0: float) -> np.ndarray:
        S = self.S0 - b0 * self.S1
        a = S @ self.w  # (G,)
        SV = S.T @ self.V  # (p, B)
        num = a @ self.V  # beta*_k - b0
        s = a[:, None] * self.V - self.L @ SV  # per-cluster score along w
        se = np.sqrt(self.ssc * (s * s).sum(axis=0))
        return num / se

    def t_obs(self, b0: float) -> float:
        return (self.beta[self.k] - b0) / self.se

    def p_value(self, b0: float) -> float:
        t = abs(self.t_obs(b0))
        return float(np.mean(np.abs(self.t_boot(b0)) >= t))


def _invert(pfun: Callable[[float], float], centre: float, step: float, alpha: float,
            sign: int, tol: float) -> float:
    """Find where ``pfun`` crosses ``alpha`` moving away from ``centre`` (bisection)."""
    inner, outer = centre, centre + sign * step
    for _ in range(60):
        if pfun(outer) < alpha:
            break
        inner, outer = outer, outer + sign * step
        step *= 2
    else:
        return sign * math.inf
    while abs(outer - inner) > tol:
        mid = 0.5 * (inner + outer)
        if pfun(mid) < alpha:
            outer = mid
        else:
            inner = mid
    return 0.5 * (inner + outer)


def wild_cluster_bootstrap(
    r: Residualised,
    coef: str | int,
    *,
    n_boot: int = 999,
    seed: int = 20150310,
    weights: str = "webb",
    alpha: float = 0.05,
    null: float = 0.0,
    ci: bool = True,
) -> BootstrapResult:
    """Restricted (null-imposed) wild cluster bootstrap-t for one coefficient.

    The bootstrap samples are ``y* = X b_r + u_r * v_g`` with ``b_r``, ``u_r`` the
    estimates under the null and ``v_g`` one weight per cluster (area), applied to the
    residualised data; the statistic is the CRV1 t-statistic. The p-value is the share of
    ``|t*| >= |t|`` (symmetric). The confidence interval is found by test inversion:
    the set of ``b0`` whose bootstrap p-value is at least ``alpha``, with the same weights
    for every ``b0`` so the p-value is a deterministic function of ``b0``.

    Parameters
    ----------
    r : Residualised
        From :func:`residualise`.
    coef : str or int
        Regressor tested.
    n_boot : int
        Bootstrap draws (999 for reporting; 399 is adequate in simulations).
    seed : int
    weights : {"webb", "rademacher"}
        Webb weights by default: with few treated clusters Rademacher weights give few
        distinct bootstrap samples.
    alpha : float
        1 - confidence level.
    null : float
        Null value of the reported p-value.
    ci : bool
        Compute the test-inversion interval (about 60 further evaluations).

    Returns
    -------
    BootstrapResult
        ``se`` is the (analytic) CRV1 standard error, reported for reference.

    Raises
    ------
    EstimationError
        Unknown coefficient or weights, fewer than 2 clusters.
    """
    if r.G < 2:
        raise EstimationError("wild cluster bootstrap needs at least 2 clusters")
    k = r.index(coef)
    rng = np.random.default_rng(seed)
    V = bootstrap_weights(r.G, n_boot, rng, weights)
    wcr = _WCR(r, k, V)
    p = wcr.p_value(null)
    lo = hi = math.nan
    note = ""
    if ci:
        step = max(wcr.se, 1e-12)
        tol = 2e-3 * step  # finer than the resolution of a p-value from n_boot draws
        lo = _invert(wcr.p_value, wcr.beta[k], step, alpha, -1, tol)
        hi = _invert(wcr.p_value, wcr.beta[k], step, alpha, +1, tol)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            note = "wild bootstrap interval unbounded at this confidence level"
    return BootstrapResult(estimate=float(wcr.beta[k]), se=wcr.se, t_stat=wcr.t_obs(null),
                           p_value=p, ci_low=lo, ci_high=hi, n_boot=n_boot, weights=weights,
                           note=note)


# --- randomisation inference ----------------------------------------------------------

@dataclass
class RandomisationResult:
    """Result of randomisation inference for one coefficient."""

    estimate: float
    p_value: float
    ci_low: float
    ci_high: float
    n_perm: int
    variance_ratio: float
    note: str = ""


def _design_regressors(frame: pd.DataFrame, groups: Sequence[str], windows: Sequence[str],
                       rel: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Exposure dummies per group x window from per-group relative time arrays."""
    cols, names = [], []
    for g in groups:
        for w in windows:
            lo, hi = schema.WINDOWS[w]
            r = rel[g]
            cols.append(((r >= lo) & (r < hi)).astype("float64"))
            names.append(f"{g}__{w}")
    return np.column_stack(cols), names


def randomisation_inference(
    design,
    group: str,
    window: str,
    *,
    windows: Sequence[str] | None = None,
    n_perm: int = 999,
    seed: int = 20150310,
    alpha: float = 0.05,
) -> RandomisationResult:
    """Randomisation (permutation) inference for one group x window TWFE effect.

    Each draw picks, from the group's treated areas and the controls, as many
    pseudo-treated areas as there are treated areas, gives them the real start months
    (shuffled), drops their months beyond the post-period as the design does, and
    re-estimates the TWFE model; other groups' exposure is left as observed. The p-value is
    ``(1 + #{|b_perm| >= |b|}) / (1 + n_perm)``. The interval inverts the test under a
    constant additive effect: the estimate on ``y - b0 * D`` is linear in ``b0`` for every
    permutation, so the whole p-value function comes from two regressions per draw.

    Parameters
    ----------
    design : Design
    group, window : str
    windows : sequence of str, optional
        Windows estimated jointly with ``window`` (default: ``window`` alone, or the three
        years for a single year).
    n_perm : int
    seed : int
    alpha : float

    Returns
    -------
    RandomisationResult

    Raises
    ------
    EstimationError
        Unknown group or window.

    Warns
    -----
    UserWarning
        When the treated areas' pre-period residual variance exceeds the controls' by more
        than :data:`RI_VARIANCE_RATIO`: permutation then treats noisier areas as
        exchangeable with quieter ones and over-rejects.
    """
    if group not in design.groups:
        raise EstimationError(f"group {group!r} not in the design {design.groups}")
    if windows is None:
        windows = (window,) if window == "years_1_3" else ("year_1", "year_2", "year_3")
    if window not in windows:
        raise EstimationError(f"window {window!r} not among {list(windows)}")
    f = design.frame
    areas = f[schema.AREA].to_numpy()
    area_codes, area_names = pd.factorize(areas)
    t = f["t"].to_numpy()
    area_group = f.groupby(schema.AREA, sort=False)[schema.GROUP].first()
    area_cohort = f.groupby(schema.AREA, sort=False)["cohort"].first()
    members = set(schema.GROUP_MEMBERS[group])
    pool = [a for a in area_names if area_group[a] in members or area_group[a] == schema.CONTROL]
    treated = [a for a in area_names if area_group[a] in members]
    starts = area_cohort[treated].to_numpy()
    post = design.post_months if design.post_months is not None else np.inf

    def rel_for(cohort_of_area: dict[str, int], g: str) -> np.ndarray:
        c = np.array([cohort_of_area.get(a, -10**9) for a in area_names])[area_codes]
        return np.where(c > -10**9, t - c, -np.inf)

    rel_obs = f["rel"].to_numpy()
    base_rel = {g: np.where(f[schema.GROUP].isin(schema.GROUP_MEMBERS[g]).to_numpy(), rel_obs,
                            -np.inf) for g in design.groups}
    obs_X, names = _design_regressors(f, design.groups, windows, base_rel)
    target = names.index(f"{group}__{window}")
    d_obs = obs_X[:, target]
    y = f["y"].to_numpy(dtype="float64")

    def fit(rel: dict[str, np.ndarray], keep: np.ndarray) -> tuple[float, float, Residualised]:
        X, _ = _design_regressors(f, design.groups, windows, rel)
        sub = pd.DataFrame({"area": areas[keep], "t": t[keep], "y": y[keep],
                            "d": d_obs[keep]})
        cols = [f"x{j}" for j in range(X.shape[1])]
        for j, c in enumerate(cols):
            sub[c] = X[keep, j]
        live = [c for c in cols if sub[c].any()]
        r = residualise(sub, "y", ["d", *live])
        # both regressions share the design: coefficients of y and of d on the regressors
        Xr = r.X[:, 1:]
        A = Xr.T @ Xr
        j = live.index(cols[target]) if cols[target] in live else None
        if j is None:
            return math.nan, math.nan, r
        coef = np.linalg.solve(A, Xr.T @ np.column_stack([r.y, r.X[:, 0]]))
        return float(coef[j, 0]), float(coef[j, 1]), r

    keep_all = np.ones(len(f), dtype=bool)
    b_obs, _, r_obs = fit(base_rel, keep_all)

    # noisier treated areas make permutation over-reject: compare pre-period residuals
    Xr = r_obs.X[:, 1:]
    resid = r_obs.y - Xr @ np.linalg.lstsq(Xr, r_obs.y, rcond=None)[0]
    is_tr = f[schema.GROUP].isin(members).to_numpy()
    is_ctrl = f[schema.GROUP].eq(schema.CONTROL).to_numpy()
    pre = np.isnan(f["rel"].to_numpy()) | (f["rel"].to_numpy() < 0)
    v_tr = float(np.var(resid[is_tr & pre], ddof=1))
    v_c = float(np.var(resid[is_ctrl & pre], ddof=1))
    ratio = v_tr / v_c if v_c > 0 else math.inf
    note = ""
    if ratio > RI_VARIANCE_RATIO:
        note = (f"randomisation inference: treated areas' pre-period residual variance is "
                f"{ratio:.2f} x the controls' (> {RI_VARIANCE_RATIO}); permutation p-values "
                "over-reject when treated areas are noisier")
        warnings.warn(note, UserWarning, stacklevel=2)

    rng = np.random.default_rng(seed)
    b_perm = np.empty(n_perm)
    k_perm = np.empty(n_perm)
    for i in range(n_perm):
        chosen = rng.choice(len(pool), size=len(treated), replace=False)
        pseudo = {pool[c]: int(s) for c, s in zip(chosen, rng.permutation(starts), strict=True)}
        rel = dict(base_rel)
        rel[group] = rel_for(pseudo, group)
        # other groups keep their observed exposure
        keep = ~(rel[group] >= post)
        for g in design.groups:
            if g != group:
                keep &= ~(rel[g] >= post)
        b_perm[i], k_perm[i], _ = fit(rel, keep)
    ok = np.isfinite(b_perm)
    b_perm, k_perm = b_perm[ok], k_perm[ok]
    n_ok = int(ok.sum())

    def pval(b0: float) -> float:
        stat = np.abs(b_perm - b0 * k_perm)
        return float((1 + np.sum(stat >= abs(b_obs - b0) - 1e-12)) / (1 + n_ok))

    step = max(float(np.std(b_perm)), 1e-12)
    lo = _invert(pval, b_obs, step, alpha, -1, 1e-4 * step)
    hi = _invert(pval, b_obs, step, alpha, +1, 1e-4 * step)
    return RandomisationResult(estimate=b_obs, p_value=pval(0.0), ci_low=lo, ci_high=hi,
                               n_perm=n_ok, variance_ratio=ratio, note=note)


# --- coverage study -----------------------------------------------------------------------

def t_interval(estimate: float, se: float, G: int, alpha: float = 0.05) -> tuple[float, float]:
    """Cluster-robust interval with t(G-1) critical values (pyfixest convention)."""
    q = stats.t.ppf(1 - alpha / 2, G - 1)
    return estimate - q * se, estimate + q * se
