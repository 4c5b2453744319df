"""One entry point per analysis the notebooks run, with lazy imports and caching.

The notebooks call these functions instead of the estimators in :mod:`vanguard.did`
directly, for two reasons:

* **start-up**: each estimator module imports its own heavy dependencies (pyfixest for
  the fixed-effects models, moderndid for Callaway-Sant'Anna); importing them inside
  the function means a notebook loads only what the estimators it runs need;
* **repeated work**: every call goes through :func:`vanguard.cache.cached`, keyed by the
  panel's content, the arguments, the code and the package versions, so re-running a
  report (or an analysis shared by several notebooks) reads the stored result.

Each function passes its arguments unchanged to the estimator it names; see there for
the statistics.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import pandas as pd

from vanguard.cache import cached
from vanguard.errors import EstimationError

ESTIMATORS: tuple[str, ...] = ("twfe", "twfe_poisson", "cs_never", "cs_notyet", "imputation")
"""Estimators of the difference-in-differences grid (notebook 03)."""


def _call(panel: pd.DataFrame, /, target: str, **kwargs) -> pd.DataFrame:
    """Import ``target`` ("module:function") only now and call it on the panel.

    ``target`` is one of the cached call's arguments, so it is part of the cache key:
    calls of different estimators can never share an entry.
    """
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)(panel, **kwargs)


def _estimate(
    panel: pd.DataFrame,
    outcome: str,
    *,
    estimator: str,
    group: str,
    scale: str,
    pre_months: int,
    inference: str,
    n_boot: int,
    seed: int,
    data_source: str,
) -> pd.DataFrame:
    if estimator in ("twfe", "twfe_poisson"):
        from vanguard.did.twfe import estimate_twfe

        return estimate_twfe(
            panel,
            outcome,
            scale="poisson" if estimator == "twfe_poisson" else scale,
            groups=(group,),
            pre_months=pre_months,
            inference=inference,
            n_boot=n_boot,
            seed=seed,
        )
    if estimator in ("cs_never", "cs_notyet"):
        from vanguard.did.staggered import estimate_cs

        return estimate_cs(
            panel,
            outcome,
            scale=scale,
            group=group,
            control=estimator.removeprefix("cs_"),
            seed=seed,
            data_source=data_source,
        )
    from vanguard import schema
    from vanguard.did.imputation import estimate_imputation

    return estimate_imputation(
        panel, outcome, scale=scale, groups=(group,), windows=tuple(schema.WINDOWS)
    )


def estimate(
    panel: pd.DataFrame,
    outcome: str,
    *,
    estimator: str,
    group: str,
    scale: str = "rate",
    pre_months: int = 24,
    inference: str = "auto",
    n_boot: int = 999,
    seed: int = 20150310,
    data_source: str = "custom",
) -> pd.DataFrame:
    """Difference-in-differences effects of one site group with one estimator.

    Parameters
    ----------
    panel : pandas.DataFrame
        The validated analysis panel.
    outcome : str
    estimator : {"twfe", "twfe_poisson", "cs_never", "cs_notyet", "imputation"}
        ``twfe``: :func:`vanguard.did.twfe.estimate_twfe` on ``scale``;
        ``twfe_poisson``: the same on the Poisson scale; ``cs_never``/``cs_notyet``:
        :func:`vanguard.did.staggered.estimate_cs` against never- or not-yet-treated
        areas; ``imputation``: :func:`vanguard.did.imputation.estimate_imputation`.
    group : str
    scale : str
    pre_months : int
        TWFE only.
    inference : str
        TWFE only: cluster, wild_bootstrap, randomisation or auto.
    n_boot : int
        TWFE only: bootstrap or permutation draws.
    seed : int
        TWFE and Callaway-Sant'Anna.
    data_source : str
        Callaway-Sant'Anna only (chooses the site register).

    Returns
    -------
    pandas.DataFrame
        The project's tidy results table (:func:`vanguard.schema.results_frame`).

    Raises
    ------
    EstimationError
        Unknown estimator, or whatever the estimator raises.
    DataError
        From the estimator, for a panel that breaks its contract.
    """
    if estimator not in ESTIMATORS:
        raise EstimationError(f"estimator {estimator!r}: expected one of {list(ESTIMATORS)}")
    return cached(
        _estimate,
        panel,
        outcome=outcome,
        estimator=estimator,
        group=group,
        scale=scale,
        pre_months=pre_months,
        inference=inference,
        n_boot=n_boot,
        seed=seed,
        data_source=data_source,
    )


def twfe(panel: pd.DataFrame, outcome: str, **kwargs) -> pd.DataFrame:
    """Cached :func:`vanguard.did.twfe.estimate_twfe` (keyword arguments only).

    Raises
    ------
    EstimationError, DataError
        From the estimator.
    TypeError
        If an argument is not JSON-serialisable.
    """
    return cached(_call, panel, target="vanguard.did.twfe:estimate_twfe", outcome=outcome, **kwargs)


def event_study(panel: pd.DataFrame, outcome: str, **kwargs) -> pd.DataFrame:
    """Cached :func:`vanguard.did.event_study.estimate_event_study`.

    Raises
    ------
    EstimationError, DataError
        From the estimator.
    TypeError
        If an argument is not JSON-serialisable.
    """
    return cached(
        _call,
        panel,
        target="vanguard.did.event_study:estimate_event_study",
        outcome=outcome,
        **kwargs,
    )


def _honest(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str,
    group: str,
    unit: str,
    mbar: Sequence[float],
    seed: int,
    data_source: str,
) -> pd.DataFrame:
    from vanguard.did.honest import honest_bounds
    from vanguard.did.staggered import fit_cs

    fit = fit_cs(
        panel,
        outcome,
        scale=scale,
        group=group,
        control="never",
        base_period="universal",
        unit=unit,
        seed=seed,
        data_source=data_source,
    )
    return honest_bounds(fit, Mbar=mbar, seed=seed)


def honest(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str,
    group: str,
    unit: str,
    mbar: Sequence[float],
    seed: int,
    data_source: str,
) -> pd.DataFrame:
    """HonestDiD relative-magnitude intervals for the average post-period effect.

    The event study behind them is Callaway & Sant'Anna against never-treated areas
    with a universal base period (:func:`vanguard.did.staggered.fit_cs`), which gives
    the full covariance HonestDiD needs; the bounds are
    :func:`vanguard.did.honest.honest_bounds` for each ``Mbar`` in ``mbar``.

    Parameters
    ----------
    panel : pandas.DataFrame
    outcome, scale, group : str
    unit : {"month", "quarter"}
    mbar : sequence of float
    seed : int
    data_source : str

    Returns
    -------
    pandas.DataFrame
        Tidy results, one row per ``Mbar`` plus the parallel-trends interval.

    Raises
    ------
    EstimationError, DataError
        From the estimators.
    """
    return cached(
        _honest,
        panel,
        outcome=outcome,
        scale=scale,
        group=group,
        unit=unit,
        mbar=[float(m) for m in mbar],
        seed=seed,
        data_source=data_source,
    )


def placebo(panel: pd.DataFrame, outcome: str, **kwargs) -> pd.DataFrame:
    """Cached :func:`vanguard.did.robustness.placebo_start_dates`.

    Raises
    ------
    EstimationError, DataError
        From the estimator.
    TypeError
        If an argument is not JSON-serialisable.
    """
    return cached(
        _call,
        panel,
        target="vanguard.did.robustness:placebo_start_dates",
        outcome=outcome,
        **kwargs,
    )


def leave_one_out(panel: pd.DataFrame, outcome: str, **kwargs) -> pd.DataFrame:
    """Cached :func:`vanguard.did.robustness.leave_one_site_out`.

    Raises
    ------
    EstimationError, DataError
        From the estimator.
    TypeError
        If an argument is not JSON-serialisable.
    """
    return cached(
        _call, panel, target="vanguard.did.robustness:leave_one_site_out", outcome=outcome, **kwargs
    )


def per_site(panel: pd.DataFrame, outcome: str, *, group: str, **kwargs) -> pd.DataFrame:
    """Per-site effects of one group's sites (:func:`vanguard.did.persite.per_site_effects`).

    The estimator fits every site of every group at once; that call is cached without
    the group, so the notebooks of the other groups read it instead of refitting.

    Returns
    -------
    pandas.DataFrame
        The rows of ``group``, re-indexed from 0.

    Raises
    ------
    EstimationError, DataError
        From the estimator.
    TypeError
        If an argument is not JSON-serialisable.
    """
    out = cached(
        _call, panel, target="vanguard.did.persite:per_site_effects", outcome=outcome, **kwargs
    )
    return out[out["group"] == group].reset_index(drop=True)


def mde(panel: pd.DataFrame, outcome: str, *, powers: Sequence[float], **kwargs) -> pd.DataFrame:
    """Cached :func:`vanguard.did.power.minimum_detectable_effect`, one call per power.

    Returns
    -------
    pandas.DataFrame
        The results of every power, stacked in the order given.

    Raises
    ------
    EstimationError, DataError
        From the estimator.
    TypeError
        If an argument is not JSON-serialisable.
    """
    return pd.concat(
        [
            cached(
                _call,
                panel,
                target="vanguard.did.power:minimum_detectable_effect",
                outcome=outcome,
                power=p,
                **kwargs,
            )
            for p in powers
        ],
        ignore_index=True,
    )
