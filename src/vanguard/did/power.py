"""Minimum detectable effect (MDE) by simulation on the pre-period.

The question: given the noise in these areas, how large an effect could the main
difference-in-differences design have detected? The answer is read off data from
before any vanguard started, where the true effect is zero by construction:

1. keep the months before the programme (before ``pre_end``);
2. in each simulation, pick a pretend start month inside that period leaving a pre-period
   and a post-period window of the design's lengths, and pick as many pretend-treated
   areas as the design has, at random among the design's treated and control areas;
3. plant an effect of size ``delta`` in the pretend-treated areas' window, estimate it
   with the same estimator (TWFE on a balanced panel) and inference, and record whether
   the test rejects at level ``alpha``;
4. the MDE is the smallest ``delta`` detected in at least ``power`` of the simulations.

Speed: on a balanced panel the TWFE coefficient is the difference in mean area-level
changes (see :mod:`vanguard.did.persite`), and a planted additive effect shifts every
treated change by exactly ``delta``. So each simulation is estimated once, and detection
at every ``delta`` on a fine grid follows in closed form - no re-estimation. The same
holds for the tests: the CR1 t statistic shifts by ``delta / se``; a permuted estimate
shifts by ``delta`` times its share of truly pretend-treated areas; and the restricted
wild cluster bootstrap's statistics are ratios of polynomials in ``delta`` whose
coefficients are computed once per simulation.

Planted effects are reductions (the programme's aim); detection is two-sided. As a
cross-check the note carries the analytic approximation
``(z_{1-alpha/2} + z_{power}) x SD(placebo estimates)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vanguard import schema
from vanguard.did.persite import (
    OutcomeMatrix,
    area_changes,
    control_mask,
    month_offset,
    outcome_matrix,
    treated_start,
)
from vanguard.errors import EstimationError

POWER_INFERENCE: tuple[str, ...] = ("cluster", "wild_bootstrap", "randomisation", "auto")
GRID_POINTS = 801
GRID_SPAN = 8.0
"""The effect grid runs from 0 to ``GRID_SPAN`` placebo SDs in ``GRID_POINTS`` steps."""
COARSE_STEP = 20


@dataclass(frozen=True)
class PlaceboDraws:
    """Placebo (zero-effect) estimates from the pre-period, ready for planting effects.

    Attributes
    ----------
    estimate, se : numpy.ndarray
        One per simulation: the DiD estimate with no planted effect and its CR1 SE.
    df : numpy.ndarray
        Degrees of freedom of each simulation's t test (areas - 1).
    perm_estimate, perm_overlap : numpy.ndarray or None
        Randomisation inference only: per simulation x permutation, the permuted estimate
        with no planted effect and how many of the permuted-treated are truly treated.
    boot : numpy.ndarray or None
        Wild bootstrap only: simulations x 12 x draws, the coefficients from which the
        bootstrap t statistics follow for any planted effect (see :func:`_wild_terms`).
    inference : str
        The method used (``auto`` resolved).
    rule : str
        How ``auto`` was resolved, for the note.
    shortened : str
        How the design was shortened to fit the pre-period ("" if it was not).
    n_treated, n_control : int
    starts : list of pandas.Timestamp
        The pretend start months sampled from.
    pre_mean : float
        Mean of the pretend-treated areas' pre-period means (natural scale).
    """

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    perm_estimate: np.ndarray | None
    perm_overlap: np.ndarray | None
    n_treated: int
    n_control: int
    starts: list
    pre_mean: float
    boot: np.ndarray | None = None
    inference: str = "cluster"
    rule: str = ""
    shortened: str = ""


def placebo_draws(
    om: OutcomeMatrix,
    *,
    group: str = schema.CARE_HOME,
    n_treated: int | None = None,
    window: str = "years_1_3",
    pre_months: int = 24,
    pre_end: pd.Timestamp | str | None = None,
    n_sims: int = 200,
    inference: str = "cluster",
    n_perm: int = 199,
    n_boot: int = 199,
    seed: int = schema.DEFAULT_SEED,
    shorten: bool = True,
) -> PlaceboDraws:
    """Simulate pretend programmes on the pre-period and estimate each with no effect.

    Parameters
    ----------
    om : OutcomeMatrix
        From :func:`vanguard.did.persite.outcome_matrix`.
    group : str
        Analysis group whose design is mimicked (its treated areas and the controls).
    n_treated : int, optional
        Pretend-treated areas per simulation (default: the group's treated areas).
    window : str
        Key of :data:`vanguard.schema.WINDOWS`.
    pre_months : int
        Pre-period length of the design.
    pre_end : month, optional
        First month NOT usable (default: the group's start month).
    n_sims : int
    inference : {"cluster", "wild_bootstrap", "randomisation", "auto"}
        As the main analysis (:func:`vanguard.did.twfe.estimate_twfe`): CR1 t test,
        restricted wild cluster bootstrap with Webb weights, permutation of treated areas,
        or the headline rule of :func:`vanguard.did.inference.headline_inference`.
    n_perm : int
        Permutations per simulation for randomisation inference.
    n_boot : int
        Bootstrap draws per simulation for the wild bootstrap.
    seed : int
    shorten : bool
        When the pre-period is shorter than the design's pre-period plus window, simulate
        a proportionally shorter design (with a warning, and said in the note) instead of
        raising.

    Returns
    -------
    PlaceboDraws

    Raises
    ------
    EstimationError
        If the group, window or inference is unknown, the pre-period is too short for the
        design's pre-period plus window (and ``shorten`` is false, or it has fewer than 4
        months), or ``n_treated`` leaves fewer than 2 controls.
    """
    if not schema.member_mask(om.areas[schema.GROUP], group).any():
        raise EstimationError(
            f"group {group!r}: no treated areas; groups present: "
            f"{schema.groups_in(om.areas[schema.GROUP])}"
        )
    if window not in schema.WINDOWS:
        raise EstimationError(f"window {window!r}: expected one of {list(schema.WINDOWS)}")
    if inference not in POWER_INFERENCE:
        raise EstimationError(f"inference {inference!r}: expected one of {POWER_INFERENCE}")
    areas = om.areas
    is_treated = pd.Series(schema.member_mask(areas[schema.GROUP], group), areas.index)
    members = list(areas.index[is_treated])
    is_control = control_mask(areas)
    end = pd.Timestamp(pre_end) if pre_end is not None else treated_start(om, members, common=False)
    end = end.to_period("M").to_timestamp()
    n_tr = int(is_treated.sum()) if n_treated is None else int(n_treated)
    rule = ""
    if inference == "auto":
        from vanguard.did.inference import headline_inference

        inference, rule = headline_inference(n_tr)
    lo, hi = schema.WINDOWS[window]
    first = om.y.columns.min()
    # Pretend starts F with F - pre_months >= first month and F + hi <= end.
    earliest = month_offset(first, pre_months)
    latest = month_offset(end, -hi)
    shortened = ""
    if latest < earliest:
        have = len(pd.date_range(first, end, freq="MS")) - 1
        if not shorten or have < 4:
            raise EstimationError(
                f"the pre-period has {have} months before {end:%Y-%m}; a pretend programme "
                f"needs {pre_months} pre-period months plus {hi} months to the end of window "
                f"{window!r}: use a shorter window or pre-period"
            )
        # Keep the design's pre:post proportions in the months there are.
        new_pre = max(2, int(have * pre_months / (pre_months + hi)))
        new_hi = have - new_pre
        shortened = (
            f"pre-period of {have} months too short for the design's {pre_months} + {hi}: "
            f"simulated a {new_pre}-month pre-period and months [0, {new_hi}) as the window, "
            "so this MDE overstates the design's (fewer months average out less noise)"
        )
        warnings.warn(f"minimum detectable effect: {shortened}", stacklevel=2)
        pre_months, lo, hi = new_pre, 0, new_hi
        earliest = latest = month_offset(first, pre_months)
    starts = list(pd.date_range(earliest, latest, freq="MS"))
    sample = list(areas.index[is_treated | is_control])

    rng = np.random.default_rng(seed)
    which = rng.integers(len(starts), size=n_sims)
    est = np.empty(n_sims)
    se = np.empty(n_sims)
    dfs = np.empty(n_sims)
    perm_est = np.empty((n_sims, n_perm)) if inference == "randomisation" else None
    perm_k = np.empty((n_sims, n_perm)) if inference == "randomisation" else None
    boot = np.empty((n_sims, 12, n_boot)) if inference == "wild_bootstrap" else None
    pre_means = []
    n_co = None
    for s_idx in np.unique(which):
        change, pre_mean = area_changes(
            om, starts[s_idx], pre_months=pre_months, window=(lo, hi), areas=sample
        )
        c = change.to_numpy(float)
        n = c.size
        if n_tr < 1 or n - n_tr < 2:
            raise EstimationError(
                f"{n_tr} pretend-treated of {n} areas: need >= 1 treated and >= 2 controls"
            )
        sims = np.flatnonzero(which == s_idx)
        # Random treated sets as a 0/1 membership matrix (sims x areas).
        member = _random_sets(rng, len(sims), n, n_tr)
        est[sims], se[sims] = _did_many(member, c, n_tr)
        dfs[sims] = n - 1
        pre_means.append((member @ pre_mean.to_numpy(float) / n_tr).mean() * len(sims))
        n_co = n - n_tr
        if perm_est is not None:
            for j, sim in enumerate(sims):
                perm = _random_sets(rng, n_perm, n, n_tr)
                perm_est[sim], _ = _did_many(perm, c, n_tr)
                perm_k[sim] = perm @ member[j]
        if boot is not None:
            from vanguard.did.inference import bootstrap_weights

            for j, sim in enumerate(sims):
                v = bootstrap_weights(n, n_boot, rng).T  # draws x areas
                boot[sim] = _wild_terms(v, c, member[j])
    return PlaceboDraws(
        est,
        se,
        dfs,
        perm_est,
        perm_k,
        n_tr,
        int(n_co),
        starts,
        float(np.sum(pre_means) / n_sims),
        boot,
        inference,
        rule,
        shortened,
    )


def _random_sets(rng: np.random.Generator, n_sets: int, n: int, k: int) -> np.ndarray:
    """``n_sets`` random k-subsets of n items, as a 0/1 float matrix."""
    ranks = np.argsort(rng.random((n_sets, n)), axis=1)
    out = np.zeros((n_sets, n))
    np.put_along_axis(out, ranks[:, :k], 1.0, axis=1)
    return out


def _did_many(member: np.ndarray, c: np.ndarray, n_tr: int) -> tuple[np.ndarray, np.ndarray]:
    """DiD estimates and CR1 SEs for many treated sets at once (see ``did_cluster``)."""
    n = c.size
    n_co = n - n_tr
    s1, s2 = member @ c, member @ (c * c)
    mean_t = s1 / n_tr
    mean_c = (c.sum() - s1) / n_co
    ss_t = s2 - n_tr * mean_t**2
    ss_c = (np.sum(c * c) - s2) - n_co * mean_c**2
    var = (ss_t / n_tr**2 + ss_c / n_co**2) * n / (n - 1)
    return mean_t - mean_c, np.sqrt(np.maximum(var, 0.0))


def _wild_terms(v: np.ndarray, c: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Bootstrap coefficients of one simulation, for any planted effect ``d``.

    Restricted wild cluster bootstrap of the collapsed DiD (area = cluster): under
    ``H0: beta = 0`` the restricted residuals of the changes ``c + d T`` are
    ``u(d) = u0 + d e`` with ``u0 = c - mean(c)`` and ``e = T - mean(T)``; the bootstrap
    changes are ``v * u(d)`` (constants cancel in a DiD). The bootstrap estimate is linear
    and the within-group sums of squares quadratic in ``d``; the 12 rows returned are
    their coefficients, per draw.
    """
    t = treated
    u0 = c - c.mean()
    e = t - t.mean()
    n_tr = t.sum()
    a = t / n_tr - (1 - t) / (t.size - n_tr)
    v2 = v * v
    rows = [v @ (a * u0), v @ (a * e)]
    for mask in (t, 1 - t):
        rows += [
            v2 @ (mask * u0 * u0),
            v2 @ (mask * u0 * e),
            v2 @ (mask * e * e),
            v @ (mask * u0),
            v @ (mask * e),
        ]
    return np.array(rows)


def _wild_t(boot: np.ndarray, d: float, n_tr: int, n_co: int) -> np.ndarray:
    """Bootstrap t statistics (simulations x draws) at planted effect ``d``."""
    beta = boot[:, 0] + d * boot[:, 1]
    ss = []
    for off, n_g in ((2, n_tr), (7, n_co)):
        sq = boot[:, off] + 2 * d * boot[:, off + 1] + d * d * boot[:, off + 2]
        tot = boot[:, off + 3] + d * boot[:, off + 4]
        ss.append(np.maximum(sq - tot * tot / n_g, 0.0) / n_g**2)
    se = np.sqrt(ss[0] + ss[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, beta / se, 0.0)


def detection_rate(draws: PlaceboDraws, effects: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Share of simulations whose test rejects when ``-effect`` is planted.

    Parameters
    ----------
    draws : PlaceboDraws
    effects : array of float
        Effect magnitudes (planted as reductions).
    alpha : float

    Returns
    -------
    numpy.ndarray
        Detection probability per effect.
    """
    delta = -np.asarray(effects, float)
    out = np.empty(delta.size)
    if draws.boot is not None:
        # The CR1 factor G / (G - 1) is common to observed and bootstrap t and cancels.
        n_tr, n_co = draws.n_treated, draws.n_control
        g = n_tr + n_co
        se_obs = draws.se * np.sqrt((g - 1) / g)
        for i, d in enumerate(delta):
            t_obs = np.abs(draws.estimate + d) / se_obs
            t_boot = np.abs(_wild_t(draws.boot, d, n_tr, n_co))
            p = np.mean(t_boot >= t_obs[:, None] - 1e-12, axis=1)
            out[i] = np.mean(p <= alpha)
        return out
    if draws.perm_estimate is None:
        crit = stats.t.ppf(1 - alpha / 2, draws.df)
        for i, d in enumerate(delta):
            out[i] = np.mean(np.abs(draws.estimate + d) > crit * draws.se)
        return out
    n_tr, n_co = draws.n_treated, draws.n_control
    for i, d in enumerate(delta):
        observed = np.abs(draws.estimate + d)[:, None]
        # A permuted assignment carries the planted effect of the treated areas it holds.
        shift = d * (draws.perm_overlap / n_tr - (n_tr - draws.perm_overlap) / n_co)
        n_extreme = np.sum(np.abs(draws.perm_estimate + shift) >= observed - 1e-12, axis=1)
        p = (1 + n_extreme) / (1 + draws.perm_estimate.shape[1])
        out[i] = np.mean(p <= alpha)
    return out


def _grid(draws: PlaceboDraws, effects) -> np.ndarray:
    if effects is not None:
        return np.sort(np.asarray(effects, float))
    sd = float(np.std(draws.estimate, ddof=1))
    if not np.isfinite(sd) or sd == 0:
        raise EstimationError("placebo estimates have no variation: cannot set an effect grid")
    return np.linspace(0.0, GRID_SPAN * sd, GRID_POINTS)


def _design_fields(panel, draws, data_source, outcome, scale, group, window) -> dict:
    """Result fields that describe the simulated design, shared by MDE and curve rows."""
    return dict(
        data_source=data_source or panel.attrs.get("data_source", ""),
        estimator="twfe",
        outcome=outcome,
        scale=scale,
        group=group,
        window=window,
        inference=draws.inference,
        n_treated=draws.n_treated,
        n_control=draws.n_control,
        pre_mean=draws.pre_mean,
    )


def minimum_detectable_effect(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    group: str = schema.CARE_HOME,
    n_treated: int | None = None,
    window: str = "years_1_3",
    alpha: float = 0.05,
    power: float | Sequence[float] = 0.8,
    n_sims: int = 200,
    seed: int = schema.DEFAULT_SEED,
    pre_end: pd.Timestamp | str | None = None,
    pre_months: int = 24,
    inference: str = "auto",
    n_perm: int = 199,
    n_boot: int = 199,
    shorten: bool = True,
    data_source: str = "",
) -> pd.DataFrame:
    """Smallest effect the design detects with probability ``power``, by simulation.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    outcome : str
    scale : {"rate", "log", "count"}
        The MDE is on this scale (log points for ``log``).
    group : str
        Analysis group whose design is mimicked.
    n_treated : int, optional
        Treated areas (default: as many as the group has).
    window : str
        Post-period window (key of :data:`vanguard.schema.WINDOWS`).
    alpha : float
        Test level.
    power : float or sequence of float
        Target detection probability; several share one set of simulations.
    n_sims : int
        Simulations (pretend programmes).
    seed : int
    pre_end : month, optional
        First month not used (default: the group's start).
    pre_months : int
        Pre-period length of the design.
    inference : {"auto", "cluster", "wild_bootstrap", "randomisation"}
        Test used in each simulation, as in the main analysis (see :func:`placebo_draws`);
        ``auto`` applies the headline rule to the number of treated areas.
    n_perm : int
        Permutations per simulation for ``randomisation``.
    n_boot : int
        Bootstrap draws per simulation for ``wild_bootstrap``.
    shorten : bool
        Simulate a proportionally shorter design when the pre-period is too short (see
        :func:`placebo_draws`).
    data_source : str

    Returns
    -------
    pandas.DataFrame
        One row per power in the tidy schema: ``analysis="power"``, ``param`` = power,
        ``estimate`` = MDE (size of the smallest detectable reduction, positive),
        ``pct`` = that reduction as % of the pretend-treated pre-period mean
        (``100 x (1 - exp(-MDE))`` on the log scale, see :func:`reduction_pct`), ``se`` = SD of the placebo
        estimates; the note gives the analytic cross-check. NaN estimate when no effect
        on the grid reaches ``power``.

    Raises
    ------
    DataError
        For a malformed panel.
    EstimationError
        See :func:`placebo_draws`; also when ``power`` or ``alpha`` is not in (0, 1).
    """
    powers = [float(power)] if np.isscalar(power) else [float(p) for p in power]
    for name, v in [("alpha", alpha)] + [("power", p) for p in powers]:
        if not 0 < v < 1:
            raise EstimationError(f"{name} = {v}: expected a number between 0 and 1")
    om = outcome_matrix(panel, outcome, scale)
    draws = placebo_draws(
        om,
        group=group,
        n_treated=n_treated,
        window=window,
        pre_months=pre_months,
        pre_end=pre_end,
        n_sims=n_sims,
        inference=inference,
        n_perm=n_perm,
        n_boot=n_boot,
        seed=seed,
        shorten=shorten,
    )
    sd = float(np.std(draws.estimate, ddof=1))
    size = float(detection_rate(draws, np.zeros(1), alpha)[0])
    return schema.results_frame(
        [_mde_row(panel, draws, p, sd, size, alpha, n_sims, data_source, outcome, scale,
                  group, window) for p in powers]
    )


def _mde_row(panel, draws, power, sd, size, alpha, n_sims, data_source, outcome, scale, group,
             window) -> dict:
    mde = _search_mde(draws, alpha, power)
    analytic = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd
    pct = reduction_pct(mde, scale, draws.pre_mean)
    return dict(
        _design_fields(panel, draws, data_source, outcome, scale, group, window),
        analysis="power",
        param=power,
        estimate=mde,
        se=sd,
        pct=pct,
        note=(
            f"MDE (reduction; pct = its % of the pre-period mean) by {n_sims} pre-period "
            f"simulations (alpha {alpha}, power {power}, "
            f"{len(draws.starts)} pretend start month(s) {draws.starts[0]:%Y-%m} to "
            f"{draws.starts[-1]:%Y-%m}); analytic (z_(1-a/2)+z_power) x SD(placebo) = "
            f"{analytic:.4g}; empirical size {size:.3f} at zero effect (nominal {alpha}"
            f"{'; the test over-rejects, so this MDE is optimistic' if size > 2 * alpha else ''}"
            "); se column = SD of placebo estimates"
            + (f"; {draws.rule}" if draws.rule else "")
            + (f"; {draws.shortened}" if draws.shortened else "")
        ),
    )


def reduction_pct(effect, scale: str, pre_mean: float):
    """A planted reduction of size ``effect`` (positive) as % of the pre-period mean.

    Effects are planted as reductions, so on a multiplicative scale the outcome falls to
    ``exp(-effect)`` times its level: ``100 x (1 - exp(-effect))`` (positive, a fall).
    ``100 x (exp(effect) - 1)`` would be the (larger) percentage of an increase.

    Parameters
    ----------
    effect : float or ndarray
        Size of the reduction on ``scale`` (log points on the log scale).
    scale : str
    pre_mean : float
        Pre-period mean on the natural scale (used on additive scales).

    Returns
    -------
    float or ndarray

    Raises
    ------
    EstimationError
        Unknown scale.
    """
    if scale not in schema.SCALES:
        raise EstimationError(f"unknown scale {scale!r}; expected one of {schema.SCALES}")
    if scale in schema.MULTIPLICATIVE_SCALES:
        return -100.0 * np.expm1(-np.asarray(effect, dtype=float))
    return 100.0 * np.asarray(effect, dtype=float) / pre_mean


def _search_mde(draws: PlaceboDraws, alpha: float, power: float) -> float:
    """The MDE on the fine grid.

    The bootstrap is costly per grid point, so it is evaluated on every 20th point first
    and then on the fine points between the bracketing coarse points.
    """
    grid = _grid(draws, None)
    if draws.boot is None:
        return _first_crossing(grid, detection_rate(draws, grid, alpha), power)
    coarse = grid[::COARSE_STEP]
    rate = detection_rate(draws, coarse, alpha)
    below = np.flatnonzero(rate < power)
    if below.size == 0:
        return float(grid[0])
    j = int(below[-1])
    if j == coarse.size - 1:
        return float("nan")
    fine = grid[COARSE_STEP * j : COARSE_STEP * (j + 1) + 1]
    return _first_crossing(fine, detection_rate(draws, fine, alpha), power)


def _first_crossing(grid: np.ndarray, rate: np.ndarray, target: float) -> float:
    """Smallest grid effect from which detection stays at or above ``target``."""
    below = np.flatnonzero(rate < target)
    if below.size == 0:
        return float(grid[0])
    if below[-1] == grid.size - 1:
        return float("nan")
    return float(grid[below[-1] + 1])


def power_curve(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    group: str = schema.CARE_HOME,
    n_treated: int | None = None,
    window: str = "years_1_3",
    alpha: float = 0.05,
    effects=None,
    n_sims: int = 200,
    seed: int = schema.DEFAULT_SEED,
    pre_end: pd.Timestamp | str | None = None,
    pre_months: int = 24,
    inference: str = "auto",
    n_perm: int = 199,
    n_boot: int = 199,
    shorten: bool = True,
    n_points: int = 41,
    data_source: str = "",
) -> pd.DataFrame:
    """Detection probability by planted effect size, for a power chart.

    Parameters are those of :func:`minimum_detectable_effect`, plus:

    effects : array of float, optional
        Effect magnitudes (default: ``n_points`` from 0 to 5 placebo SDs).
    n_points : int

    Returns
    -------
    pandas.DataFrame
        Tidy schema, ``analysis="power_curve"``: one row per effect with ``param`` = the
        planted effect (a reduction, given as a magnitude), ``estimate`` = the share of
        simulations detecting it, ``pct`` = the effect as % of the pre-period mean.

    Raises
    ------
    DataError, EstimationError
        As :func:`minimum_detectable_effect`.
    """
    om = outcome_matrix(panel, outcome, scale)
    draws = placebo_draws(
        om,
        group=group,
        n_treated=n_treated,
        window=window,
        pre_months=pre_months,
        pre_end=pre_end,
        n_sims=n_sims,
        inference=inference,
        n_perm=n_perm,
        n_boot=n_boot,
        seed=seed,
        shorten=shorten,
    )
    if effects is None:
        sd = float(np.std(draws.estimate, ddof=1))
        effects = np.linspace(0.0, 5.0 * sd, n_points)
    effects = np.asarray(effects, float)
    rate = detection_rate(draws, effects, alpha)
    rows = []
    for eff, r in zip(effects, rate, strict=True):
        pct = reduction_pct(eff, scale, draws.pre_mean)
        rows.append(
            dict(
                _design_fields(panel, draws, data_source, outcome, scale, group, window),
                analysis="power_curve",
                param=eff,
                estimate=r,
                pct=pct,
                pct_ci_low=np.nan,
                pct_ci_high=np.nan,
                note=f"estimate = detection probability over {n_sims} simulations; "
                "param = planted reduction, pct = that reduction as % of the pre-period mean"
                + (f"; {draws.shortened}" if draws.shortened else ""),
            )
        )
    return schema.results_frame(rows)
