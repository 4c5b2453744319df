"""Monte Carlo coverage of the TWFE intervals, for the tests.

The helpers the coverage tests need; they live with the tests, not in the package.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from vanguard import schema
from vanguard.did.design import prepare
from vanguard.did.inference import cluster_vcov, residualise, wild_cluster_bootstrap
from vanguard.did.twfe import add_window_dummies
from vanguard.errors import EstimationError


def synthetic_draw(seed: int, start: str = "2013-04", end: str = "2018-03"):
    """One draw of the synthetic England restricted to the months an analysis needs.

    Returns
    -------
    panel, truth : pandas.DataFrame
        The panel and the group-level rows (``site == ""``) of its truth table.

    Raises
    ------
    ValueError
        From the generator, for an invalid month range.
    """
    from vanguard import synthetic

    data = synthetic.generate(seed=seed, start=start, end=end)
    truth = data.truth
    return data.panel, truth[truth["site"].fillna("") == ""]


def coverage_study(
    seeds: Sequence[int],
    *,
    make_data: Callable[[int], tuple[pd.DataFrame, pd.DataFrame]] | None = None,
    outcome: str = "emergency_admissions",
    scale: str = "log",
    groups: Sequence[str] = (schema.POPULATION_BASED, schema.CARE_HOME),
    windows: Sequence[str] = ("years_1_3",),
    methods: Sequence[str] = ("cluster", "wild_bootstrap"),
    n_boot: int = 399,
    alpha: float = 0.05,
    boot_seed: int = 20150310,
) -> pd.DataFrame:
    """Monte Carlo coverage of the TWFE confidence intervals against planted truth.

    Each replication draws a data set, estimates the TWFE model (the same estimator as
    :func:`vanguard.did.twfe.estimate_twfe`, on the FWL-residualised data) and records
    whether each method's ``1 - alpha`` interval covers the true effect. For the wild
    bootstrap the interval is a test inversion, so it covers the truth exactly when the
    bootstrap test of ``H0: effect = truth`` does not reject: one bootstrap per
    replication instead of a full interval search.

    Parameters
    ----------
    seeds : sequence of int
        One replication per seed.
    make_data : callable, optional
        ``seed -> (panel, truth)`` with truth columns ``group, window, outcome, scale,
        truth``; default :func:`synthetic_draw`.
    outcome, scale : str
    groups, windows : sequence of str
        Windows must not overlap (they are estimated in one regression).
    methods : sequence of {"cluster", "wild_bootstrap"}
    n_boot : int
        Bootstrap draws per replication (399 is adequate for coverage).
    alpha : float
    boot_seed : int
        Base seed of the bootstrap weights (offset by the replication seed).

    Returns
    -------
    pandas.DataFrame
        One row per seed x group x window x method: ``seed, group, window, method,
        estimate, se, truth, covered, n_treated``.

    Raises
    ------
    EstimationError
        Unknown method, the Poisson scale, or no truth for a group x window.
    """
    bad = [m for m in methods if m not in ("cluster", "wild_bootstrap")]
    if bad:
        raise EstimationError(f"coverage_study: unknown method(s) {bad}")
    if scale == "poisson":
        raise EstimationError("coverage_study: OLS scales only (rate, log, count)")
    make_data = make_data or synthetic_draw
    rows = []
    for seed in seeds:
        panel, truth = make_data(int(seed))
        design = prepare(panel, outcome, scale=scale, groups=groups)
        frame, cols = add_window_dummies(design, windows)
        r = residualise(frame, "y", list(cols.values()))
        beta, vcov = cluster_vcov(r)
        tq = stats.t.ppf(1 - alpha / 2, r.G - 1)
        for j, ((g, w), _col) in enumerate(cols.items()):
            tv = truth[
                (truth["group"] == g)
                & (truth["window"] == w)
                & (truth["outcome"] == outcome)
                & (truth["scale"] == scale)
            ]["truth"]
            if len(tv) != 1:
                raise EstimationError(f"coverage_study: no unique truth for {g}/{w}")
            tv = float(tv.iloc[0])
            se = math.sqrt(vcov[j, j])
            base = {
                "seed": int(seed),
                "group": g,
                "window": w,
                "estimate": float(beta[j]),
                "se": se,
                "truth": tv,
                "n_treated": design.n_treated[g],
            }
            if "cluster" in methods:
                rows.append(
                    dict(base, method="cluster", covered=bool(abs(beta[j] - tv) <= tq * se))
                )
            if "wild_bootstrap" in methods:
                p_truth = wild_cluster_bootstrap(
                    r, j, n_boot=n_boot, seed=boot_seed + int(seed), null=tv, ci=False
                ).p_value
                rows.append(dict(base, method="wild_bootstrap", covered=bool(p_truth >= alpha)))
    return pd.DataFrame(rows)


def summarise_coverage(draws: pd.DataFrame, *, nominal: float = 0.95) -> pd.DataFrame:
    """Coverage rate by group x window x method, with its Monte Carlo standard error.

    Parameters
    ----------
    draws : pandas.DataFrame
        Output of :func:`coverage_study`.
    nominal : float

    Returns
    -------
    pandas.DataFrame
        ``group, window, method, n_rep, coverage, mc_se, rejection_rate, bias, sd, mean_se``
        (``rejection_rate`` = 1 - coverage: how often a true null about the effect is
        rejected at level ``1 - nominal``).

    Raises
    ------
    EstimationError
        If ``draws`` is empty.
    """
    if draws.empty:
        raise EstimationError("summarise_coverage: no replications")
    out = (
        draws.groupby(["group", "window", "method"], sort=False)
        .agg(
            n_rep=("covered", "size"),
            coverage=("covered", "mean"),
            bias=("estimate", lambda s: float(np.mean(s - draws.loc[s.index, "truth"]))),
            sd=("estimate", "std"),
            mean_se=("se", "mean"),
        )
        .reset_index()
    )
    out["mc_se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["n_rep"])
    out["rejection_rate"] = 1 - out["coverage"]
    out["nominal"] = nominal
    return out
