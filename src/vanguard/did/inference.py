"""Inference for the two-way fixed-effects DiD: cluster-robust, wild cluster bootstrap,
randomisation inference, and the rule that picks the headline method.

Why not pyfixest's ``wildboottest``
-----------------------------------
pyfixest delegates the wild bootstrap to the optional ``wildboottest`` package, which
is not a project dependency, and it returns p-values only (no confidence interval by
test inversion). The design here is small (a handful to a few dozen regressors once
the fixed effects are projected out), so the restricted wild cluster bootstrap (WCR) is
written directly on the Frisch-Waugh-Lovell residualised data: every bootstrap statistic
is a function of per-cluster sums, and all draws are computed at once as matrix products
(``O(G * p * B)`` for ``G`` clusters, ``p`` regressors, ``B`` draws). Poisson models are
bootstrapped on their IRLS linearisation (:func:`residualise_poisson`).

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
from dataclasses import dataclass, field

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
    rule = (
        f"headline inference rule: fewer than {WILD_BOOTSTRAP_THRESHOLD} treated areas "
        f"-> restricted wild cluster bootstrap (Webb weights), otherwise cluster-robust "
        f"(CRV1 by area); {n} treated areas"
    )
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
    fe_codes : list of ndarray, optional
        Fixed-effect codes of each row. When given, the wild bootstraps project the
        fixed effects out of every bootstrap outcome again (``y*`` multiplies residuals by
        cluster weights, which is no longer orthogonal to the month effects), exactly as
        refitting the full model on ``y*`` would. ``None`` (the Poisson linearisation)
        skips that step: the bootstrap then keeps the month effects of the original fit,
        which makes bootstrap standard errors slightly too small.
    """

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    cluster: np.ndarray
    G: int
    df_k: int
    fe_codes: list[np.ndarray] | None = None
    _refit: object = field(default=None, init=False, repr=False, compare=False)
    _cross: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _ols: tuple | None = field(default=None, init=False, repr=False, compare=False)

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


def residualise(
    frame: pd.DataFrame,
    y: str,
    regressors: Sequence[str],
    *,
    fe: Sequence[str] = ("area", "t"),
    cluster: str = "area",
    tol: float = 1e-10,
) -> Residualised:
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
    data = frame[[y, *regressors]].to_numpy(dtype="float64")
    codes = [pd.factorize(frame[f])[0] for f in fe]
    out = _demean(data, codes, tol)
    X = out[:, 1:]
    scale = np.abs(data[:, 1:]).max(axis=0)
    absorbed = np.abs(X).max(axis=0) <= 1e-8 * np.where(scale > 0, scale, 1)
    if absorbed.any():
        raise EstimationError(
            f"regressor(s) {list(np.asarray(regressors)[absorbed])} are "
            "collinear with the fixed effects"
        )
    cl = pd.factorize(frame[cluster])[0]
    n_other_fe = sum(int(frame[f].nunique()) for f in fe[1:])
    return Residualised(
        y=out[:, 0],
        X=X,
        names=list(regressors),
        cluster=cl,
        G=int(cl.max()) + 1,
        df_k=len(regressors) + n_other_fe,
        fe_codes=codes,
    )


def residualise_poisson(
    frame: pd.DataFrame,
    regressors: Sequence[str],
    mu: np.ndarray,
    *,
    y: str = "y",
    fe: Sequence[str] = ("area", "t"),
    cluster: str = "area",
    tol: float = 1e-10,
) -> Residualised:
    """The Poisson fixed-effects model's IRLS linearisation at its estimate, residualised.

    At convergence the Poisson estimate is the weighted least-squares fit of the working
    response ``z = log(mu) + (y - mu) / mu`` on the regressors and fixed effects with
    weights ``mu``. Scaling the weighted-demeaned ``z`` and regressors by ``sqrt(mu)``
    gives an OLS problem with the same coefficients, scores ``X'(y - mu)`` and Hessian
    ``X' diag(mu) X``, so its cluster-robust covariance is the Poisson sandwich, and the
    wild cluster bootstrap of :func:`wild_cluster_bootstrap` applies to it (a wild
    bootstrap of the linearised model, first-order equivalent to a score bootstrap).

    Parameters
    ----------
    frame : pandas.DataFrame
        Estimation rows, in the order of ``mu``.
    regressors : sequence of str
    mu : ndarray
        Fitted means of the Poisson model.
    y, fe, cluster : str
    tol : float

    Returns
    -------
    Residualised

    Raises
    ------
    EstimationError
        If ``mu`` does not match the rows or is not positive, or demeaning fails.
    """
    mu = np.asarray(mu, dtype="float64").ravel()
    if len(mu) != len(frame) or not np.all(mu > 0):
        raise EstimationError(
            f"Poisson linearisation: expected {len(frame)} positive fitted means; found {len(mu)}"
        )
    from pyfixest.estimation import demean

    z = np.log(mu) + (frame[y].to_numpy(dtype="float64") - mu) / mu
    data = np.column_stack([z, frame[list(regressors)].to_numpy(dtype="float64")])
    flist = np.column_stack([pd.factorize(frame[f])[0] for f in fe]).astype(np.uint64)
    out, ok = demean(np.ascontiguousarray(data), flist, mu, tol=tol, maxiter=100_000)
    if not ok:
        raise EstimationError("weighted fixed-effect demeaning did not converge")
    out = out * np.sqrt(mu)[:, None]
    cl = pd.factorize(frame[cluster])[0]
    n_other_fe = sum(int(frame[f].nunique()) for f in fe[1:])
    return Residualised(
        y=out[:, 0],
        X=out[:, 1:],
        names=list(regressors),
        cluster=cl,
        G=int(cl.max()) + 1,
        df_k=len(regressors) + n_other_fe,
    )


def residualise_fit(fit, frame: pd.DataFrame, regs: list[str], scale: str) -> Residualised:
    """FWL-residualised data of a fitted pyfixest model, for the bootstrap.

    OLS scales residualise ``y`` and the regressors on the fixed effects
    (:func:`residualise`); the Poisson scale linearises the model at its fitted means
    (:func:`residualise_poisson`).

    Raises
    ------
    EstimationError
        If the Poisson model's fitted means are not available for every row.
    """
    if scale != "poisson":
        return residualise(frame, "y", regs)
    mu = getattr(fit, "_Y_hat_response", None)
    if mu is None or len(mu) != len(frame):
        raise EstimationError(
            "Poisson wild bootstrap: fitted means not available for every row "
            "(pyfixest dropped rows or changed its interface)"
        )
    return residualise_poisson(frame, regs, mu)


def _demean(data: np.ndarray, codes: list[np.ndarray], tol: float = 1e-10) -> np.ndarray:
    """Remove fixed effects from the columns of ``data``.

    A balanced two-way panel has the closed form ``x - x_i. - x_.t + x_..``, which is
    exact and much faster than alternating projections (this matters in permutation and
    Monte Carlo loops); anything else goes through pyfixest's demeaning.

    Raises
    ------
    EstimationError
        If the iterative demeaning does not converge.
    """
    if len(codes) == 2:
        a, t = codes
        A, T = int(a.max()) + 1, int(t.max()) + 1
        if len(a) == A * T:
            cell = a * T + t
            if np.unique(cell).size == A * T:
                grid = np.empty((A * T, data.shape[1]))
                grid[cell] = data
                grid = grid.reshape(A, T, -1)
                dm = (
                    grid
                    - grid.mean(axis=1, keepdims=True)
                    - grid.mean(axis=0, keepdims=True)
                    + grid.mean(axis=(0, 1), keepdims=True)
                )
                return dm.reshape(A * T, -1)[cell]
    from pyfixest.estimation import demean

    flist = np.column_stack(codes).astype(np.uint64)
    out, ok = demean(
        np.ascontiguousarray(data), flist, np.ones(len(data)), tol=tol, maxiter=100_000
    )
    if not ok:
        raise EstimationError("fixed-effect demeaning did not converge")
    return out


def _cluster_sum(values: np.ndarray, cluster: np.ndarray, G: int) -> np.ndarray:
    """Sum rows of ``values`` (n, ...) within clusters -> (G, ...).

    One weighted ``bincount`` per trailing column: it adds the rows in the same order as
    ``np.add.at`` (so the sums are the same to the last bit) at a fraction of its cost.
    """
    flat = values.reshape(len(values), -1)
    out = np.empty((G, flat.shape[1]))
    for j, column in enumerate(np.ascontiguousarray(flat.T)):
        out[:, j] = np.bincount(cluster, weights=column, minlength=G)
    return out.reshape((G,) + values.shape[1:])


def _cluster_cross(r: Residualised) -> np.ndarray:
    """``X_g' X_g`` of every cluster, shape (G, p, p), formed once per data set.

    Pair by pair, so memory stays O(n) rather than the (n, p, p) array of all row
    products (a monthly event study has dozens of regressors).
    """
    if r._cross is None:
        p = r.X.shape[1]
        cols = np.ascontiguousarray(r.X.T)
        H = np.empty((r.G, p, p))
        for i in range(p):
            for j in range(i, p):
                H[:, i, j] = H[:, j, i] = np.bincount(r.cluster, weights=cols[i] * cols[j],
                                                      minlength=r.G)
        r._cross = H
    return r._cross


def cluster_vcov(r: Residualised) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and CRV1 covariance (pyfixest conventions) on residualised data.

    Returns
    -------
    beta : ndarray (p,)
    vcov : ndarray (p, p)

    Raises
    ------
    numpy.linalg.LinAlgError
        If the residualised regressors are collinear.
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


def bootstrap_weights(
    G: int, n_boot: int, rng: np.random.Generator, kind: str = "webb"
) -> np.ndarray:
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


class _FERefit:
    """Score correction for refitting the fixed effects on wild bootstrap outcomes.

    A bootstrap outcome ``u * v[cluster]`` (``v`` the cluster weights) is not orthogonal
    to the fixed effects, so refitting the full model removes its fixed-effect part
    ``P_F (u * v)`` from the bootstrap residuals. The coefficients do not change (the
    residualised regressors are orthogonal to the fixed effects) but each cluster's
    score does, by ``X_g' P_F (u * v) = K_g (F'F)^+ C(u) v``: ``K_g`` the sums of the
    regressors by fixed-effect level within cluster ``g``, ``C(u)`` the sums of ``u``
    by level and cluster. ``K`` and ``(F'F)^+`` are formed once per data set.
    """

    def __init__(self, r: Residualised):
        n, p = r.X.shape
        sizes = [int(c.max()) + 1 for c in r.fe_codes]
        offsets = np.cumsum([0, *sizes[:-1]])
        self.idx = [np.asarray(c) + o for c, o in zip(r.fe_codes, offsets, strict=True)]
        self.L, self.G, self.cluster = int(sum(sizes)), r.G, r.cluster
        # counts and sums by level with bincount: the same additions, in the same order,
        # as np.add.at, far faster
        ftf = np.zeros(self.L * self.L)
        for a in self.idx:
            for b in self.idx:
                ftf += np.bincount(a * self.L + b, minlength=self.L * self.L)
        ftf = ftf.reshape(self.L, self.L)
        K = np.zeros((self.G * self.L, p))
        for a in self.idx:
            K += _cluster_sum(r.X, r.cluster * self.L + a, self.G * self.L)
        self.K = K.reshape(self.G, self.L, p)
        self.P = np.linalg.pinv(ftf, hermitian=True)

    def proj(self, u: np.ndarray) -> np.ndarray:
        """``(F'F)^+ C(u)``, shape (L, G)."""
        C = np.zeros(self.L * self.G)
        for a in self.idx:
            C += np.bincount(a * self.G + self.cluster, weights=u, minlength=self.L * self.G)
        return self.P @ C.reshape(self.L, self.G)

    def along(self, w: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``w' Q_g`` for every cluster, shape (G, G): the correction of ``w' score_g``."""
        return np.einsum("p,glp->gl", w, self.K) @ self.proj(u)

    def full(self, u: np.ndarray) -> np.ndarray:
        """``Q`` with ``Q[g] @ v`` the score correction of cluster ``g``, shape (G, p, G)."""
        return np.einsum("glp,lh->gph", self.K, self.proj(u))


def _fe_refit(r: Residualised) -> _FERefit | None:
    """The fixed-effect refit helper of ``r`` (cached), or None without ``fe_codes``."""
    if r.fe_codes is None:
        return None
    if r._refit is None:
        r._refit = _FERefit(r)
    return r._refit


class _WCR:
    """Restricted wild cluster bootstrap of one coefficient, for any null value.

    Under ``H0: beta_k = b0`` the restricted residuals are linear in ``b0``
    (``u_r(b0) = u_r(0) - b0 * M x_k`` with ``M`` the annihilator of the other
    regressors), and so is everything built from them: each draw's numerator
    ``n0 - b0 n1`` and each cluster's score ``s0 - b0 s1``. The two score matrices
    ``(G, B)`` are formed once, in ``O(G * p * B)``; a draw's squared standard error is
    then the quadratic ``q00 - 2 b0 q01 + b0^2 q11`` of three per-draw sums, so testing
    any ``b0`` (the interval's test inversion asks for about a hundred) costs ``O(B)``.
    The quadratic equals the sum of the squared scores up to rounding (a test checks it
    against the direct computation).
    """

    def __init__(self, r: Residualised, k: int, V: np.ndarray):
        X, y, cl, G = r.X, r.y, r.cluster, r.G
        p = X.shape[1]
        self.k, self.ssc = k, r.ssc
        if r._ols is None:  # the same for every coefficient of the data set
            r._ols = (np.linalg.inv(X.T @ X), *cluster_vcov(r))
        A_inv, self.beta, vcov = r._ols
        self.se = math.sqrt(vcov[k, k])
        w = A_inv[k]  # row of (X'X)^-1 picking coefficient k
        others = [j for j in range(p) if j != k]
        if others:
            Xo = X[:, others]
            Bo = np.linalg.solve(Xo.T @ Xo, Xo.T @ np.column_stack([y, X[:, k]]))
            u0 = y - Xo @ Bo[:, 0]
            u1 = X[:, k] - Xo @ Bo[:, 1]
        else:
            u0, u1 = y.copy(), X[:, k].copy()
        H = _cluster_cross(r)  # (G, p, p)
        L = np.einsum("j,gjl->gl", w, H) @ A_inv  # (G, p): w' H_g (X'X)^-1
        refit = _fe_refit(r)
        parts = []
        for u in (u0, u1):
            # S_g = X_g' u_g; along w: a_g; the draw's score of cluster g along w is
            # a_g v_g - L_g S' v, less the fixed-effect refit correction R v
            S = _cluster_sum(X * u[:, None], cl, G)  # (G, p)
            a = S @ w  # (G,)
            s = a[:, None] * V - L @ (S.T @ V)  # (G, B)
            if refit is not None:
                s -= refit.along(w, u) @ V
            parts.append((a @ V, s))
        (self.num0, s0), (self.num1, s1) = parts
        self.q00 = np.einsum("gb,gb->b", s0, s0)
        self.q01 = np.einsum("gb,gb->b", s0, s1)
        self.q11 = np.einsum("gb,gb->b", s1, s1)

    def t_boot(self, b0: float) -> np.ndarray:
        """Bootstrap t statistics of every draw under ``H0: beta_k = b0``, shape (B,)."""
        num = self.num0 - b0 * self.num1  # beta*_k - b0
        ss = np.maximum(self.q00 - 2.0 * b0 * self.q01 + b0 * b0 * self.q11, 0.0)
        return num / np.sqrt(self.ssc * ss)

    def t_obs(self, b0: float) -> float:
        return (self.beta[self.k] - b0) / self.se

    def p_value(self, b0: float) -> float:
        t = abs(self.t_obs(b0))
        return float(np.mean(np.abs(self.t_boot(b0)) >= t))


def _invert(
    pfun: Callable[[float], float], centre: float, step: float, alpha: float, sign: int, tol: float
) -> float:
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
    seed: int = schema.DEFAULT_SEED,
    weights: str = "webb",
    alpha: float = 0.05,
    null: float = 0.0,
    ci: bool = True,
) -> BootstrapResult:
    """Restricted (null-imposed) wild cluster bootstrap-t for one coefficient.

    The bootstrap samples are ``y* = X b_r + u_r * v_g`` with ``b_r``, ``u_r`` the
    estimates under the null and ``v_g`` one weight per cluster (area), applied to the
    residualised data; each ``y*`` has the fixed effects projected out again (when
    ``r.fe_codes`` is set), so every draw equals refitting the full fixed-effects model
    on the bootstrap outcome; the statistic is the CRV1 t-statistic. The p-value is the share of
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
        ``se`` is the (analytic) CRV1 standard error, reported for reference. A p-value
        of 0 means below ``1 / n_boot``.

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
    return BootstrapResult(
        estimate=float(wcr.beta[k]),
        se=float(wcr.se),
        t_stat=float(wcr.t_obs(null)),
        p_value=p,
        ci_low=float(lo),
        ci_high=float(hi),
        n_boot=n_boot,
        weights=weights,
        note=note,
    )


INTERVAL_SE_NOTE = (
    "se = width of the bootstrap interval / (2 x t critical value), the standard error "
    "the interval implies; the cluster-robust one is not reported beside it"
)


def interval_se(ci_low: float, ci_high: float, n_clusters: int, alpha: float = 0.05) -> float:
    """The standard error a confidence interval implies: width / (2 t_{G-1, 1-alpha/2}).

    Bootstrap intervals have no standard error of their own; reporting the analytic one
    beside them would pair two inferences in one row.

    Returns
    -------
    float
        NaN when the interval is unbounded.
    """
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return math.nan
    crit = stats.t.ppf(1 - alpha / 2, max(int(n_clusters) - 1, 1))
    return float((ci_high - ci_low) / (2 * crit))


def wald_statistic(beta: np.ndarray, vcov: np.ndarray) -> tuple[float, int]:
    """Wald statistic ``b' V^+ b`` and the rank of ``V`` (pseudo-inverse if singular).

    Raises
    ------
    ValueError
        If the shapes of ``beta`` and ``vcov`` do not match.
    """
    q = int(np.linalg.matrix_rank(vcov))
    return float(beta @ np.linalg.pinv(vcov) @ beta), q


def wild_bootstrap_wald(
    r: Residualised,
    coefs: Sequence[str | int],
    *,
    n_boot: int = 999,
    seed: int = schema.DEFAULT_SEED,
    weights: str = "webb",
    chunk: int = 250,
) -> tuple[float, int, float]:
    """Restricted wild cluster bootstrap of a joint Wald test that ``coefs`` are all zero.

    With few treated clusters and many restrictions the cluster-robust covariance of the
    tested coefficients is estimated from effectively few clusters (the scores of
    treatment-timing regressors come almost entirely from the treated areas), so it is
    nearly singular and the F approximation rejects far too often. Here the Wald statistic's
    null distribution is bootstrapped instead: samples ``y* = X_o b_o + u_o * v_g`` from
    the model without the tested regressors (fixed effects refitted on each, as in
    :func:`wild_cluster_bootstrap`), and the same statistic (with the same
    pseudo-inverse) recomputed on each, so the near-singularity is reproduced and
    calibrated.

    Parameters
    ----------
    r : Residualised
    coefs : sequence of str or int
        Tested regressors.
    n_boot, seed : int
    weights : {"webb", "rademacher"}
    chunk : int
        Bootstrap draws processed at once (bounds memory).

    Returns
    -------
    W : float
        Observed Wald statistic.
    q : int
        Rank of the tested coefficients' covariance.
    p_value : float
        Share of bootstrap statistics at least as large as ``W``.

    Raises
    ------
    EstimationError
        No coefficient to test, or fewer than 2 clusters.
    """
    if not coefs:
        raise EstimationError("wild bootstrap Wald test: no coefficient to test")
    if r.G < 2:
        raise EstimationError("wild cluster bootstrap needs at least 2 clusters")
    R = [r.index(c) for c in coefs]
    p = r.X.shape[1]
    others = [j for j in range(p) if j not in R]
    X, y = r.X, r.y
    beta, vcov = cluster_vcov(r)
    W, q = wald_statistic(beta[R], vcov[np.ix_(R, R)])
    if others:
        Xo = X[:, others]
        u = y - Xo @ np.linalg.solve(Xo.T @ Xo, Xo.T @ y)
    else:
        u = y.copy()
    A_inv = np.linalg.inv(X.T @ X)
    S = _cluster_sum(X * u[:, None], r.cluster, r.G)  # (G, p)
    H = _cluster_cross(r)  # (G, p, p)
    AR = A_inv[R]  # (q, p)
    refit = _fe_refit(r)
    Q = None if refit is None else refit.full(u).reshape(r.G * p, r.G)
    rng = np.random.default_rng(seed)
    V = bootstrap_weights(r.G, n_boot, rng, weights)
    W_boot = np.empty(n_boot)
    for lo in range(0, n_boot, chunk):
        Vc = V[:, lo : lo + chunk]
        D = A_inv @ (S.T @ Vc)  # beta* - beta_r, (p, B)
        scores = S[:, :, None] * Vc[:, None, :] - np.einsum("gij,jb->gib", H, D)
        if Q is not None:
            scores -= (Q @ Vc).reshape(r.G, p, -1)
        Z = np.einsum("qi,gib->gqb", AR, scores)
        meat = r.ssc * np.einsum("gqb,grb->bqr", Z, Z)
        b = D[R].T  # (B, q); the tested coefficients are 0 under the null
        W_boot[lo : lo + chunk] = np.einsum("bq,bqr,br->b", b, np.linalg.pinv(meat), b)
    return W, q, float(np.mean(W_boot >= W * (1 - 1e-12)))


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
    perm_estimates: np.ndarray | None = None
    """Estimates under each permutation (for a randomisation-distribution plot)."""
    n_refit: int = 0
    """Draws estimated by refitting the model rather than in the residualised form."""


def _exposure(rel: np.ndarray, windows) -> np.ndarray:
    """0/1 exposure columns from relative months (-inf = never): one per window, then
    one for post-period months before the last window's end that no window covers (the
    nuisance dummy of :func:`vanguard.did.twfe.add_window_dummies`), if there are any."""
    spans = list(schema.resolve_windows(windows).values())
    cols = [(rel >= lo) & (rel < hi) for lo, hi in spans]
    last = max(hi for _, hi in spans)
    gap = (rel >= 0) & (rel < last) & ~np.any(cols, axis=0)
    if gap.any():
        cols.append(gap)
    return np.column_stack(cols).astype("float64")


RI_METHODS: tuple[str, ...] = ("auto", "fwl", "refit")
"""How :func:`randomisation_inference` estimates each draw."""


def _sample_varies(
    area_codes: np.ndarray,
    t: np.ndarray,
    keep: np.ndarray,
    pool_codes: np.ndarray,
    starts: np.ndarray,
    post: float,
) -> bool:
    """Whether some draw would drop rows: a pool area given the earliest start month has
    a kept month at or beyond its post-period."""
    if not np.isfinite(post) or len(starts) == 0:
        return False
    last = np.full(int(area_codes.max()) + 1, -np.inf)
    np.maximum.at(last, area_codes[keep], t[keep].astype("float64"))
    return bool(np.any(last[pool_codes] - float(np.min(starts)) >= post))


def _fwl_permutations(
    y: np.ndarray,
    D_obs: np.ndarray,
    other_X: list[np.ndarray],
    area_codes: np.ndarray,
    t: np.ndarray,
    keep: np.ndarray,
    windows: dict,
    pool_codes: np.ndarray,
    start_values: np.ndarray,
    chosen: np.ndarray,
    chosen_start: np.ndarray,
    chunk: int = 2_000,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Coefficients of every permutation draw on a fixed sample, without refitting.

    Let ``R`` residualise on the area and month effects and the other groups' exposure
    ``O``, and ``Xg`` be a draw's pseudo-exposure. By Frisch-Waugh-Lovell its
    coefficients on ``[y, D_obs]`` are ``(Xg' R Xg)^-1 Xg' R [y, D_obs]``. ``Xg`` is a sum
    of area blocks (each pseudo-treated area's 0/1 window pattern at its start), so
    ``Xg' R W`` and ``O' M Xg`` are sums of per-area, per-start terms computed once, and
    ``Xg' M Xg`` (``M``: the fixed effects alone) is the same for every draw of a
    balanced panel (draws differ only in which areas carry the fixed multiset of starts);
    an unbalanced panel demeans each draw's ``Xg`` instead.

    Parameters
    ----------
    y, D_obs, other_X, area_codes, t
        Rows of the design frame: outcome, observed window dummies of the group, the
        other groups' exposure columns, area codes (into the design's areas), month index.
    keep : ndarray of bool
        The rows every draw keeps.
    windows : dict
        Window name -> (lo, hi) months since start.
    pool_codes : ndarray of int
        Area code of each pool area.
    start_values : ndarray of int
        Distinct start months.
    chosen, chosen_start : ndarray of int (draws, treated areas)
        Each draw's pseudo-treated areas (positions in the pool) and their starts
        (positions in ``start_values``).
    chunk : int
        Draws processed at once (bounds memory).

    Returns
    -------
    b : ndarray (draws, windows)
        Each draw's coefficients of the windows on ``y``.
    k : ndarray (draws, windows)
        Each draw's coefficient of window ``j`` on observed dummy ``j``.
    redo : list of int
        Draws to refit: a pseudo-exposure column absorbed by the fixed effects (or
        collinear with ``O``), or a gap column present in some draws only.
    """
    spans = list(schema.resolve_windows(windows).values())
    nw = len(spans)
    rows = np.flatnonzero(keep)
    a_k, t_k = area_codes[rows], t[rows]
    codes = [pd.factorize(a_k)[0], pd.factorize(t_k)[0]]
    n_area, n_t = int(codes[0].max()) + 1, int(codes[1].max()) + 1
    balanced = len(rows) == n_area * n_t and (
        np.unique(codes[0] * n_t + codes[1]).size == n_area * n_t
    )
    W = _demean(np.column_stack([y[rows], D_obs[rows]]), codes)
    if other_X:
        Od = _demean(np.column_stack(other_X)[rows], codes)
        Od = Od[:, np.abs(Od).max(axis=0) > 1e-10]
    else:
        Od = np.empty((len(rows), 0))
    OtO_inv = np.linalg.inv(Od.T @ Od) if Od.shape[1] else np.empty((0, 0))
    if Od.shape[1]:
        W = W - Od @ (OtO_inv @ (Od.T @ W))

    def pattern(rel: np.ndarray) -> np.ndarray:
        """The window columns and the uncovered-months (gap) column of _exposure."""
        cols = [(rel >= lo) & (rel < hi) for lo, hi in spans]
        last = max(hi for _, hi in spans)
        cols.append((rel >= 0) & (rel < last) & ~np.any(cols, axis=0))
        return np.column_stack(cols).astype("float64")

    ncol = nw + 1
    P, S = len(pool_codes), len(start_values)
    U = np.zeros((P, S, ncol, 1 + nw))
    C = np.zeros((P, S, Od.shape[1], ncol))
    cnt = np.zeros((P, S, ncol))
    order = np.argsort(a_k, kind="stable")
    bounds = np.searchsorted(a_k[order], pool_codes, side="left")
    ends = np.searchsorted(a_k[order], pool_codes, side="right")
    area_rows = [order[lo:hi] for lo, hi in zip(bounds, ends, strict=True)]
    for j, rr in enumerate(area_rows):
        for q, s in enumerate(start_values):
            E = pattern(t_k[rr] - s)
            U[j, q] = E.T @ W[rr]
            C[j, q] = Od[rr].T @ E
            cnt[j, q] = E.sum(axis=0)
    flat = chosen * S + chosen_start  # (draws, k) into (P * S)
    U, C, cnt = U.reshape(P * S, -1), C.reshape(P * S, -1), cnt.reshape(P * S, ncol)
    n_draws = len(chosen)
    gap_n = cnt[flat, -1].sum(axis=1)
    redo = set(np.flatnonzero((gap_n > 0) != (gap_n[0] > 0)).tolist()) if n_draws else set()
    cols = ncol if n_draws and gap_n[0] > 0 else nw

    def draw_exposure(i: int) -> np.ndarray:
        Xg = np.zeros((len(rows), ncol))
        for pj, q in zip(chosen[i], chosen_start[i], strict=True):
            rr = area_rows[pj]
            Xg[rr] = pattern(t_k[rr] - start_values[q])
        return Xg[:, :cols]

    if balanced and n_draws:
        Xd = _demean(draw_exposure(0), codes)
        G0_fixed = Xd.T @ Xd
    b = np.full((n_draws, nw), np.nan)
    k = np.full((n_draws, nw), np.nan)
    for lo in range(0, n_draws, chunk):
        idx = flat[lo : lo + chunk]
        m = len(idx)
        N = U[idx].sum(axis=1).reshape(m, ncol, 1 + nw)[:, :cols]
        Cd = C[idx].sum(axis=1).reshape(m, Od.shape[1], ncol)[:, :, :cols]
        if balanced:
            G0 = np.broadcast_to(G0_fixed, (m, cols, cols))
        else:
            G0 = np.empty((m, cols, cols))
            for i in range(m):
                Xd = _demean(draw_exposure(lo + i), codes)
                G0[i] = Xd.T @ Xd
        G = G0 - np.einsum("mkc,kl,mld->mcd", Cd, OtO_inv, Cd) if Od.shape[1] else G0.copy()
        d0 = np.diagonal(G0, axis1=1, axis2=2)
        d = np.diagonal(G, axis1=1, axis2=2)
        # an absorbed column has a residual sum of squares of rounding size
        bad = np.any(d0 <= 1e-8, axis=1) | np.any(d <= 1e-10 * np.maximum(d0, 1e-300), axis=1)
        redo.update((lo + np.flatnonzero(bad)).tolist())
        good = np.flatnonzero(~bad)
        if len(good):
            coef = np.linalg.solve(G[good], N[good])  # (g, cols, 1 + nw)
            b[lo + good] = coef[:, :nw, 0]
            k[lo + good] = coef[:, np.arange(nw), 1 + np.arange(nw)]
    return b, k, sorted(redo)


def randomisation_draws(
    pool: Sequence[str], starts: np.ndarray, n_perm: int, rng: np.random.Generator
) -> list[dict[str, int]]:
    """Random treatment assignments that keep the group size and the start months.

    Parameters
    ----------
    pool : sequence of str
        Areas that can be pseudo-treated (the group's treated areas and the controls).
    starts : ndarray of int
        Start month index of each real treated area.
    n_perm : int
    rng : numpy.random.Generator

    Returns
    -------
    list of dict
        One ``{area: start month index}`` per draw, with ``len(starts)`` areas.
    """
    draws = []
    for _ in range(n_perm):
        chosen = rng.choice(len(pool), size=len(starts), replace=False)
        draws.append(
            {pool[c]: int(s) for c, s in zip(chosen, rng.permutation(starts), strict=True)}
        )
    return draws


def randomisation_inference(
    design,
    group: str,
    window: str | None = None,
    *,
    windows: Sequence[str] | None = None,
    n_perm: int = 999,
    seed: int = schema.DEFAULT_SEED,
    alpha: float = 0.05,
    method: str = "auto",
) -> RandomisationResult | dict[str, RandomisationResult]:
    """Randomisation (permutation) inference for the TWFE effects of one group.

    Each draw picks, from the group's treated areas and the controls, as many
    pseudo-treated areas as there are treated areas, gives them the real start months
    (shuffled, :func:`randomisation_draws`), drops their months after the post-period as
    the design does, and re-estimates the TWFE model; other groups' exposure stays as
    observed. The p-value is ``(1 + #{|b_perm| >= |b|}) / (1 + n_perm)``. The interval
    inverts the test under a constant additive effect: for every draw the estimate on
    ``y - b0 * D`` is linear in ``b0``, so the whole p-value function comes from two
    regressions per draw.

    When every draw keeps the same rows (no pseudo-treated area has months beyond its
    post-period, as with one start month per group), the draws are not refitted: by
    Frisch-Waugh-Lovell the outcome and the observed dummies are residualised on the
    fixed effects and the other groups' exposure once, and each draw's coefficients come
    from per-area sums of those residuals (:func:`_fwl_permutations`). The estimates equal
    the refitted ones up to rounding; a draw whose pseudo-treatment is absorbed by the
    fixed effects is refitted.

    Parameters
    ----------
    design : Design
    group : str
    window : str, optional
        The window reported; ``None`` returns every window of ``windows``.
    windows : sequence of str, optional
        Windows estimated jointly (default: ``window`` alone for ``years_1_3``, else the
        three years).
    n_perm : int
    seed : int
    alpha : float
    method : {"auto", "fwl", "refit"}
        ``fwl``: the residualised form above (an error where the sample changes between
        draws); ``refit``: re-estimate the model on every draw; ``auto``: ``fwl`` where
        it applies, else ``refit``.

    Returns
    -------
    RandomisationResult, or dict window -> RandomisationResult when ``window`` is None

    Raises
    ------
    EstimationError
        Unknown group, window or method; ``method="fwl"`` where the sample changes.

    Warns
    -----
    UserWarning
        When the treated areas' pre-period residual variance exceeds the controls' by more
        than :data:`RI_VARIANCE_RATIO`: permutation then treats noisier areas as
        exchangeable with quieter ones and over-rejects.
    """
    if method not in RI_METHODS:
        raise EstimationError(
            f"randomisation inference method {method!r}; expected one of {list(RI_METHODS)}"
        )
    if group not in design.groups:
        raise EstimationError(f"group {group!r} not in the design {design.groups}")
    if windows is None:
        windows = (
            ("years_1_3",) if window in (None, "years_1_3") else ("year_1", "year_2", "year_3")
        )
    windows = schema.resolve_windows(windows)
    if window is not None and window not in windows:
        raise EstimationError(f"window {window!r} not among {list(windows)}")
    f = design.frame
    area_codes, area_names = pd.factorize(f[schema.AREA])
    t_codes = pd.factorize(f["t"])[0]
    t = f["t"].to_numpy()
    per_area = f.groupby(schema.AREA, sort=False)[[schema.GROUP, "cohort"]].first()
    per_area = per_area.loc[list(area_names)]
    is_member = schema.member_mask(per_area[schema.GROUP], group)
    is_control = per_area[schema.GROUP].eq(schema.CONTROL).to_numpy()
    pool = list(area_names[is_member | is_control])
    starts = per_area["cohort"].to_numpy()[is_member]
    post = design.post_months if design.post_months is not None else math.inf
    rel_obs = f["rel"].to_numpy()
    other_X = [
        _exposure(
            np.where(schema.member_mask(f[schema.GROUP], g), rel_obs, -np.inf),
            windows,
        )
        for g in design.groups
        if g != group
    ]
    other_rel = [
        np.where(schema.member_mask(f[schema.GROUP], g), rel_obs, -np.inf)
        for g in design.groups
        if g != group
    ]
    y = f["y"].to_numpy(dtype="float64")
    D_obs = _exposure(
        np.where(schema.member_mask(f[schema.GROUP], group), rel_obs, -np.inf), windows
    )[:, : len(windows)]
    area_index = {a: i for i, a in enumerate(area_names)}

    def fit(cohort_by_area: np.ndarray):
        """Coefficients of the group's windows on y and on each observed dummy."""
        rel = np.where(cohort_by_area[area_codes] > 0, t - cohort_by_area[area_codes], -np.inf)
        keep = ~(rel >= post)
        for r in other_rel:
            keep &= ~(r >= post)
        Xg = _exposure(rel, windows)
        X = np.column_stack([Xg, *other_X]) if other_X else Xg
        data = np.column_stack([y, D_obs, X])[keep]
        codes = [pd.factorize(area_codes[keep])[0], pd.factorize(t_codes[keep])[0]]
        dm = _demean(data, codes)
        nw = len(windows)
        Xd = dm[:, 1 + nw :]
        live = np.abs(Xd).max(axis=0) > 1e-10
        coef = np.full((X.shape[1], 1 + nw), np.nan)
        Xl = Xd[:, live]
        # normal equations: a tall, thin, well-conditioned design (lstsq's SVD is slow)
        sol = np.linalg.solve(Xl.T @ Xl, Xl.T @ dm[:, : 1 + nw])
        coef[live] = sol
        return coef[:nw], dm, Xd, keep

    cohort_obs = np.where(is_member, per_area["cohort"].to_numpy(), 0).astype("int64")
    coef_obs, dm_obs, Xd_obs, keep_obs = fit(cohort_obs)
    b_obs = coef_obs[:, 0]

    # noisier treated areas make permutation over-reject: compare pre-period residuals
    resid = dm_obs[:, 0] - Xd_obs @ np.linalg.lstsq(Xd_obs, dm_obs[:, 0], rcond=None)[0]
    grp = f[schema.GROUP].to_numpy()[keep_obs]
    pre = ~(rel_obs[keep_obs] >= 0)
    v_tr = float(np.var(resid[schema.member_mask(pd.Series(grp), group) & pre], ddof=1))
    v_c = float(np.var(resid[(grp == schema.CONTROL) & pre], ddof=1))
    ratio = v_tr / v_c if v_c > 0 else math.inf
    note = ""
    if ratio > RI_VARIANCE_RATIO:
        note = (
            f"randomisation inference: treated areas' pre-period residual variance is "
            f"{ratio:.2f} x the controls' (> {RI_VARIANCE_RATIO}); permutation p-values "
            "over-reject when treated areas are noisier"
        )
        warnings.warn(note, UserWarning, stacklevel=2)

    rng = np.random.default_rng(seed)
    draws = randomisation_draws(pool, starts, n_perm, rng)
    nw = len(windows)
    b_perm = np.full((n_perm, nw), np.nan)
    k_perm = np.full((n_perm, nw), np.nan)

    def refit(i: int) -> None:
        cohort = np.where(is_member | is_control, 0, cohort_obs)
        for a, s in draws[i].items():
            cohort[area_index[a]] = s
        coef = fit(cohort)[0]
        b_perm[i] = coef[:, 0]
        # estimate on D_obs of window j, under the same pseudo-design
        k_perm[i] = coef[np.arange(nw), 1 + np.arange(nw)]

    keep_fixed = np.ones(len(f), dtype=bool)
    for r in other_rel:
        keep_fixed &= ~(r >= post)
    pool_codes = np.array([area_index[a] for a in pool])
    varies = _sample_varies(area_codes, t, keep_fixed, pool_codes, starts, post)
    if method == "fwl" and varies:
        raise EstimationError(
            "randomisation inference method 'fwl': a pseudo-treated area would lose months "
            f"after its {post}-month post-period in some draws, so the sample changes from "
            "draw to draw; use method='refit' (or 'auto')"
        )
    if method == "refit" or varies:
        redo = range(n_perm)
    else:
        start_values = np.unique(starts)
        pos = {a: i for i, a in enumerate(pool)}
        shape = (n_perm, len(starts))
        chosen = np.array([[pos[a] for a in d] for d in draws], dtype=np.int64).reshape(shape)
        chosen_start = np.searchsorted(
            start_values,
            np.array([list(d.values()) for d in draws], dtype=np.int64).reshape(shape),
        )
        b_fwl, k_fwl, redo = _fwl_permutations(
            y,
            D_obs,
            other_X,
            area_codes,
            t,
            keep_fixed,
            windows,
            pool_codes,
            start_values,
            chosen,
            chosen_start,
        )
        b_perm[:], k_perm[:] = b_fwl, k_fwl
    for i in redo:
        refit(i)
    n_refit = len(redo)

    results = {}
    for j, w in enumerate(windows):
        ok = np.isfinite(b_perm[:, j]) & np.isfinite(k_perm[:, j])
        bp, kp, n_ok = b_perm[ok, j], k_perm[ok, j], int(ok.sum())
        bo = float(b_obs[j])

        def pval(b0: float, bp=bp, kp=kp, bo=bo, n_ok=n_ok) -> float:
            stat = np.abs(bp - b0 * kp)
            return float((1 + np.sum(stat >= abs(bo - b0) * (1 - 1e-12))) / (1 + n_ok))

        step = max(float(np.std(bp)), 1e-12)
        lo = _invert(pval, bo, step, alpha, -1, 2e-3 * step)
        hi = _invert(pval, bo, step, alpha, +1, 2e-3 * step)
        results[w] = RandomisationResult(
            estimate=bo,
            p_value=pval(0.0),
            ci_low=lo,
            ci_high=hi,
            n_perm=n_ok,
            variance_ratio=ratio,
            note=note,
            perm_estimates=bp,
            n_refit=n_refit,
        )
    return results if window is None else results[window]
