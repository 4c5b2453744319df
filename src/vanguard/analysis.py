"""The estimators of :mod:`vanguard.did.fit` and the descriptive tables of
:mod:`vanguard.descriptives`, each behind the results cache.

Notebooks call these functions: each has the signature of the function it wraps
(``panel, spec, ...`` or ``panel, outcome, ...``) and passes its arguments unchanged (the specification classes of
:mod:`vanguard.did.spec` are re-exported here, so a notebook needs one import); every call goes through
:func:`vanguard.cache.cached`, keyed by the panel's content, the specification, the
other arguments, the code and the package versions, so re-running a report (or an
analysis shared by several notebooks) reads the stored result. See
:mod:`vanguard.did.fit` for the statistics.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from vanguard import descriptives
from vanguard.cache import cached
from vanguard.did import fit
from vanguard.did.spec import Programme, Spec, TreatmentGroup
from vanguard.errors import DataError, EstimationError
from vanguard.io import write_csv

__all__ = [
    "ESTIMATORS", "FAILURE_COLUMNS", "Programme", "Spec", "TreatmentGroup", "estimate",
    "event_study", "group_guard", "honest", "indexed_trends", "require_groups", "leave_one_out",
    "mde", "per_site", "placebo", "pre_period_balance", "seasonality", "write_failures",
]

FAILURE_COLUMNS: tuple[str, ...] = ("notebook", "outcome", "group", "analysis", "error")
"""Columns of a notebook's table of analyses that could not be estimated."""

ESTIMATORS: tuple[str, ...] = tuple(fit.ESTIMATORS)
"""Estimators of the difference-in-differences grid (notebook 03)."""


def estimate(panel: pd.DataFrame, spec: Spec, estimator: str) -> pd.DataFrame:
    """Cached :func:`vanguard.did.fit.estimate`: one estimator of the grid on ``spec``."""
    return cached(fit.estimate, panel, spec=spec, estimator=estimator)


def event_study(panel: pd.DataFrame, spec: Spec, *, leads: int, lags: int) -> pd.DataFrame:
    """Cached :func:`vanguard.did.fit.event_study`."""
    return cached(fit.event_study, panel, spec=spec, leads=leads, lags=lags)


def honest(panel: pd.DataFrame, spec: Spec, *, mbar: Sequence[float]) -> pd.DataFrame:
    """Cached :func:`vanguard.did.fit.honest`."""
    return cached(fit.honest, panel, spec=spec, mbar=[float(m) for m in mbar])


def placebo(panel: pd.DataFrame, spec: Spec, *, shifts: Sequence[int]) -> pd.DataFrame:
    """Cached :func:`vanguard.did.fit.placebo`."""
    return cached(fit.placebo, panel, spec=spec, shifts=[int(s) for s in shifts])


def leave_one_out(panel: pd.DataFrame, spec: Spec, *, window: str = "years_1_3") -> pd.DataFrame:
    """Cached :func:`vanguard.did.fit.leave_one_out`."""
    return cached(fit.leave_one_out, panel, spec=spec, window=window)


def per_site(panel: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Cached :func:`vanguard.did.fit.per_site`."""
    return cached(fit.per_site, panel, spec=spec)


def mde(
    panel: pd.DataFrame,
    spec: Spec,
    *,
    powers: Sequence[float],
    n_sims: int,
    window: str = "years_1_3",
) -> pd.DataFrame:
    """Cached :func:`vanguard.did.fit.mde`."""
    return cached(
        fit.mde, panel, spec=spec, powers=[float(p) for p in powers], n_sims=int(n_sims),
        window=window,
    )


def indexed_trends(panel: pd.DataFrame, outcome: str, **options) -> pd.DataFrame:
    """Cached :func:`vanguard.descriptives.indexed_trends` (``options``: its keywords)."""
    return cached(descriptives.indexed_trends, panel, outcome=outcome, **options)


def seasonality(panel: pd.DataFrame, outcome: str, **options) -> pd.DataFrame:
    """Cached :func:`vanguard.descriptives.seasonality` (``options``: its keywords)."""
    return cached(descriptives.seasonality, panel, outcome=outcome, **options)


def pre_period_balance(
    panel: pd.DataFrame, outcomes: str | Sequence[str], **options
) -> pd.DataFrame:
    """Cached :func:`vanguard.descriptives.pre_period_balance` (``options``: its keywords)."""
    return cached(descriptives.pre_period_balance, panel, outcomes=outcomes, **options)


def require_groups(panel: pd.DataFrame, groups: Sequence[str]) -> None:
    """Stop if a requested treatment group has no areas in the panel.

    A misspelt group would otherwise fail only inside each analysis, one at a time.

    Raises
    ------
    DataError
        Naming the missing groups and the groups the panel has.
    """
    from vanguard import schema

    present = schema.groups_in(panel[schema.GROUP].astype(str).unique())
    missing = [g for g in groups if g not in present]
    if missing:
        raise DataError("panel", f"treatment groups among {present}", column=schema.GROUP,
                        found=missing)


@contextmanager
def group_guard(
    failures: list[dict], *, notebook: str, outcome: str, group: str, analysis: str
) -> Iterator[None]:
    """Run one group's analysis; if its data cannot support it, record why and go on.

    A design that cannot be estimated for one group (a single site for leave-one-out, no
    pre-period for a late cohort, a setting the estimator cannot honour) must not take
    the other groups of the notebook down with it. Only the project's own errors about
    data and designs are caught; anything else is a bug and propagates.

    Parameters
    ----------
    failures : list of dict
        Appended to: one row of :data:`FAILURE_COLUMNS` per failure.
    notebook, outcome, group, analysis : str
        What was attempted, for the row and the message.

    Warns
    -----
    UserWarning
        Naming the group, the analysis and the reason.
    """
    try:
        yield
    except (EstimationError, DataError) as exc:
        failures.append({"notebook": notebook, "outcome": outcome, "group": group,
                         "analysis": analysis, "error": str(exc)})
        warnings.warn(f"{analysis} for group {group!r} ({outcome}) not estimated: {exc}",
                      UserWarning, stacklevel=3)


def write_failures(failures: list[dict], path: str | Path) -> Path:
    """Write the analyses that could not be estimated (possibly none) as a CSV table.

    The report reads every such table of a run and names each failure on its first page.

    Returns
    -------
    pathlib.Path
    """
    return write_csv(path, pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)))
