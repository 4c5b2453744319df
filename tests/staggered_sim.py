"""Staggered-adoption panels with planted, known effects, for verifying the estimators.

Not vanguard data: each panel is a made-up area-level programme with several cohorts
(start months), effects that grow with time since start and differ between cohorts,
and a truth table that says what each estimator should recover.

Model (rate per 1,000 per month, population constant per area)::

    rate_it = a_i + m_t + tau_c(e) * D_it + noise_it,   tau_c(e) = -delta_c * (1 + e / 12)

with ``e`` months since the area's start and ``D_it`` = 1 from the start on. Counts are
``rate * population / 1000`` rounded (the populations are large, so rounding is
negligible against the noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vanguard import schema


@dataclass(frozen=True)
class StaggeredPanel:
    """A simulated panel and what it was built with.

    Attributes
    ----------
    panel : pandas.DataFrame
        In the analysis-panel contract (``area``, ``month``, ``population``,
        ``admissions``, ``group``, ``start``, ``site``).
    cohorts : dict
        Start month (``YYYY-MM``) -> (areas, delta).
    group : str
    """

    panel: pd.DataFrame
    cohorts: dict
    group: str

    def effect(self, cohort: str, e: np.ndarray) -> np.ndarray:
        """Planted effect of a cohort at months since start ``e``."""
        return -self.cohorts[cohort][1] * (1 + np.asarray(e) / 12)

    def truth(self, lo: int, hi: int) -> float:
        """Mean planted effect over the treated area-months of window ``[lo, hi)``
        (area-months equally weighted; every cohort is observed over the whole window)."""
        num = den = 0.0
        for c, (areas, _) in self.cohorts.items():
            e = np.arange(lo, hi)
            num += len(areas) * self.effect(c, e).sum()
            den += len(areas) * len(e)
        return num / den

    def cohort_truth(self, cohort: str, hi: int) -> float:
        """Mean planted effect of one cohort over its months 0 .. hi-1."""
        return float(self.effect(cohort, np.arange(hi)).mean())


def staggered_panel(
    *,
    seed: int = 1,
    cohorts: dict | None = None,
    n_control: int = 80,
    first: str = "2013-01",
    last: str = "2020-12",
    noise: float = 0.25,
    rho: float = 0.0,
    scale_effect: float = 1.0,
    group: str = "falls_prevention",
    outcome: str = "admissions",
) -> StaggeredPanel:
    """Build one staggered panel.

    Parameters
    ----------
    seed : int
    cohorts : dict, optional
        Start month -> (number of areas, delta). Default: three cohorts of a made-up
        falls-prevention scheme, 2016-04 (14 areas), 2016-10 (13) and 2017-02 (13): the
        last is off the quarter grid of the first.
    n_control : int
    first, last : str
        Panel months.
    noise : float
        SD of the area-month noise on the rate scale.
    rho : float
        AR(1) coefficient of the noise within an area (serial correlation is what makes
        few-cluster inference hard).
    scale_effect : float
        Multiplies every planted effect.
    group, outcome : str

    Returns
    -------
    StaggeredPanel
    """
    rng = np.random.default_rng(seed)
    spec = cohorts or {"2016-04": (14, 0.30), "2016-10": (13, 0.15), "2017-02": (13, 0.45)}
    months = pd.date_range(first, last, freq="MS")
    n_treated = sum(n for n, _ in spec.values())
    n = n_treated + n_control
    areas = [f"X{i:03d}" for i in range(1, n + 1)]
    start = np.full(n, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    site = np.full(n, "", dtype=object)
    chosen = {}
    i = 0
    for m, (k, delta) in spec.items():
        chosen[m] = (tuple(areas[i : i + k]), delta * scale_effect)
        start[i : i + k] = np.datetime64(pd.Timestamp(m))
        # sites of about five areas, each inside one cohort (a site has one start)
        site[i : i + k] = [f"site_{m}_{j // 5 + 1}" for j in range(k)]
        i += k
    a = rng.normal(8.0, 1.0, n)
    t = np.arange(len(months))
    m_t = 0.02 * t / 12 * 8 + 0.4 * np.sin(2 * np.pi * months.month.to_numpy() / 12)
    shocks = rng.normal(0, noise * np.sqrt(1 - rho**2), (n, len(months)))
    e = np.empty_like(shocks)
    e[:, 0] = rng.normal(0, noise, n)
    for j in range(1, len(months)):
        e[:, j] = rho * e[:, j - 1] + shocks[:, j]
    rate = a[:, None] + m_t[None, :] + e
    rel = (
        (months.year.to_numpy()[None, :] * 12 + months.month.to_numpy()[None, :])
        - (pd.DatetimeIndex(start).year.to_numpy()[:, None] * 12
           + pd.DatetimeIndex(start).month.to_numpy()[:, None])
    )
    for members, delta in chosen.values():
        rows = [areas.index(x) for x in members]
        e = rel[rows]
        rate[rows] += np.where(e >= 0, -delta * (1 + e / 12), 0.0)
    population = rng.integers(400_000, 1_200_000, n).astype(float)
    counts = np.round(rate * population[:, None] / 1000)
    panel = pd.DataFrame(
        {
            schema.AREA: np.repeat(areas, len(months)),
            schema.MONTH: np.tile(months, n),
            schema.POPULATION: np.repeat(population, len(months)),
            outcome: counts.ravel(),
            schema.GROUP: np.repeat(
                np.where(pd.isna(start), schema.CONTROL, group), len(months)
            ),
            schema.START: np.repeat(start, len(months)),
            schema.SITE: np.repeat(site, len(months)),
        }
    )
    panel.attrs["data_source"] = "custom"
    return StaggeredPanel(panel=panel, cohorts=chosen, group=group)
