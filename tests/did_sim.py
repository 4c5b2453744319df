"""A small, independent simulator of a vanguard-like area-month panel for tests.

It plants known effects so estimators can be checked against the truth. It is
deliberately separate from :mod:`vanguard.synthetic` so that the estimators are not only
tested against data made by the same hands as the production generator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate(
    seed: int = 1,
    n_control: int = 60,
    n_pop: int = 12,
    n_care: int = 6,
    n_uec: int = 0,
    first: str = "2013-04-01",
    last: str = "2018-03-01",
    start: str = "2015-04-01",
    uec_start: str = "2015-08-01",
    effects: dict | None = None,
    noise: float = 0.05,
    ar: float = 0.0,
    pre_trend: float = 0.0,
    dynamic: dict | None = None,
    treated_noise: float = 1.0,
) -> pd.DataFrame:
    """Simulate a panel with counts around exp(area + month effects + treatment effect).

    ``effects`` maps group -> (year_1, year_2, year_3) multiplicative log effects; the
    rate per 1,000 is then ``exp(log_rate)``. ``dynamic`` maps group -> function of the
    relative month giving the log effect (overrides ``effects``). ``pre_trend`` adds a
    linear trend (log points per month) to treated areas before start. ``noise`` is the
    sd of a log-normal area-month shock; ``treated_noise`` multiplies it for treated areas.
    """
    rng = np.random.default_rng(seed)
    effects = effects or {
        "population_based": (-0.02, -0.04, -0.06),
        "care_home": (-0.05, -0.05, -0.05),
        "uec": (0.0, 0.0, 0.0),
    }
    months = pd.date_range(first, last, freq="MS")
    groups = (
        ["control"] * n_control
        + ["population_based"] * n_pop
        + ["care_home"] * n_care
        + ["uec"] * n_uec
    )
    rows = []
    season = 0.05 * np.sin(2 * np.pi * months.month.to_numpy() / 12)
    trend = 0.002 * np.arange(len(months))
    month_fe = season + trend + rng.normal(0, 0.01, len(months))
    for i, g in enumerate(groups):
        area = f"A{i:03d}"
        pop = float(rng.integers(100_000, 400_000))
        base = np.log(8.0) + rng.normal(0, 0.2)  # monthly rate per 1,000
        st = pd.Timestamp(uec_start if g == "uec" else start) if g != "control" else pd.NaT
        rel = (
            ((months.year - st.year) * 12 + months.month - st.month).to_numpy()
            if g != "control"
            else np.full(len(months), np.nan)
        )
        eff = np.zeros(len(months))
        if g != "control":
            if dynamic and g in dynamic:
                eff = np.where(rel >= 0, np.array([dynamic[g](k) for k in rel]), 0.0)
            else:
                e = effects.get(g, (0.0, 0.0, 0.0))
                for y, (lo, hi) in enumerate(((0, 12), (12, 24), (24, 36))):
                    eff = np.where((rel >= lo) & (rel < hi), e[y], eff)
                eff = np.where(rel >= 36, e[2], eff)
            eff = eff + np.where(rel < 0, pre_trend * rel, 0.0)
        sd = noise * (treated_noise if g != "control" else 1.0)
        shock = np.zeros(len(months))
        eps = rng.normal(0, sd, len(months))
        for k in range(len(months)):
            shock[k] = (ar * shock[k - 1] if k else 0.0) + eps[k]
        lam = np.exp(base + month_fe + eff + shock) * pop / 1000.0
        counts = rng.poisson(lam).astype(float)
        rows.append(
            pd.DataFrame(
                {
                    "area": area,
                    "month": months,
                    "population": pop,
                    "emergency_admissions": counts,
                    "group": g,
                    "start": st,
                    "site": "" if g == "control" else f"S_{g}_{i % 3}",
                }
            )
        )
    panel = pd.concat(rows, ignore_index=True)
    panel["start"] = pd.to_datetime(panel["start"])
    return panel
