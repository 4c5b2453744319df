"""Benchmark of fixed-effects estimation on a large unit-level panel.

Patient- or practice-level designs have tens of thousands of units. This family builds
a seeded panel of 50,000 units x 24 months (half the units exposed from month 12, a
planted effect), and times pyfixest ``feols`` with unit and period fixed effects and
standard errors clustered by unit, and the project's two-way fixed-effects wrapper on
the same data laid out as an analysis panel. Each measurement runs in a fresh process
for its peak memory. statsmodels OLS with dummy variables is not run at this size: its
design matrix alone would be 1.2 million x 50,000 dense floats (about 480 GB).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmarks import Result, skipped, worker_repeats
from vanguard import schema

N_UNITS: int = 50_000
QUICK_UNITS: int = 600
N_PERIODS: int = 24
EFFECT: float = -0.5
"""Planted effect on the outcome (count scale) in exposed unit-months."""
SEED: int = 20150310


def unit_panel(n_units: int, n_periods: int = N_PERIODS, seed: int = SEED) -> pd.DataFrame:
    """A seeded unit x month panel in the analysis-panel layout.

    Half the units (``population_based``) are exposed from month 12 (April 2015); the
    rest are controls. ``emergency_admissions`` = unit effect + month effect +
    :data:`EFFECT` x exposed + noise, kept positive.

    Parameters
    ----------
    n_units, n_periods : int
    seed : int

    Returns
    -------
    pandas.DataFrame
        Columns ``area, month, population, emergency_admissions, group, start, site``
        plus ``treat`` (0/1 exposure) and ``t`` (period index).

    Raises
    ------
    ValueError
        If ``n_periods`` is 12 or fewer (no post period) or ``n_units`` below 4.
    """
    if n_periods <= 12 or n_units < 4:
        raise ValueError(
            f"unit_panel: need n_units >= 4 and n_periods > 12; got {n_units}, {n_periods}"
        )
    rng = np.random.default_rng(seed)
    months = pd.date_range("2014-04-01", periods=n_periods, freq="MS")
    start = pd.Timestamp("2015-04-01")
    treated = np.arange(n_units) % 2 == 0
    unit_fe = rng.normal(20.0, 3.0, n_units)
    month_fe = rng.normal(0.0, 1.0, n_periods)
    post = np.asarray(months >= start)
    exposed = treated[:, None] & post[None, :]
    y = unit_fe[:, None] + month_fe[None, :] + EFFECT * exposed
    y = y + rng.normal(0.0, 1.0, y.shape)
    codes = np.array([f"U{i:06d}" for i in range(n_units)])
    df = pd.DataFrame(
        {
            schema.AREA: np.repeat(codes, n_periods),
            schema.MONTH: np.tile(months.to_numpy(), n_units),
            schema.POPULATION: 1000.0,
            "emergency_admissions": np.clip(y.ravel(), 0.0, None),
            schema.GROUP: np.repeat(
                np.where(treated, schema.POPULATION_BASED, schema.CONTROL), n_periods
            ),
            "treat": exposed.ravel().astype(np.int8),
            "t": np.tile(np.arange(n_periods), n_units),
        }
    )
    df[schema.START] = pd.Series(
        np.where(df[schema.GROUP] == schema.CONTROL, pd.NaT, start), dtype="datetime64[ns]"
    )
    df[schema.SITE] = np.where(df[schema.GROUP] == schema.CONTROL, "", "BIG01")
    return df


def _warmed(fit, df: pd.DataFrame, tiny: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Fit once on a tiny panel first: pyfixest compiles its numba kernels on the first
    call of a process, a one-off cost (reported separately) that would otherwise swamp
    the timed fit."""
    import time

    t0 = time.perf_counter()
    fit(tiny)
    return df, time.perf_counter() - t0


def task_feols(n_units: int, n_periods: int = N_PERIODS):
    """Worker task: pyfixest feols with unit + period FE and unit-clustered SE."""

    import pyfixest as pf

    def fit(df):
        return pf.feols("emergency_admissions ~ treat | area + t", data=df, vcov={"CRV1": "area"})

    def prepare():
        return _warmed(fit, unit_panel(n_units, n_periods), unit_panel(40, n_periods))

    def step(inputs):
        df, warmup = inputs
        res = fit(df)
        return {
            "estimate": float(res.coef()["treat"]),
            "se": float(res.se()["treat"]),
            "warmup_s": warmup,
        }

    return prepare, step


def task_twfe(n_units: int, n_periods: int = N_PERIODS):
    """Worker task: the project's TWFE wrapper on the same panel (count scale, pooled post window)."""

    import warnings

    from vanguard.did.twfe import estimate_twfe

    def fit(df):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return estimate_twfe(
                df,
                "emergency_admissions",
                scale="count",
                groups=(schema.POPULATION_BASED,),
                windows=("years_1_3",),
                pre_months=12,
                data_source="custom",
            )

    def prepare():
        def panel(n):
            return unit_panel(n, n_periods).drop(columns=["treat", "t"])

        return _warmed(fit, panel(n_units), panel(40))

    def step(inputs):
        df, warmup = inputs
        res = fit(df)
        return {
            "estimate": float(res["estimate"].iloc[0]),
            "se": float(res["se"].iloc[0]),
            "warmup_s": warmup,
        }

    return prepare, step


def run(*, quick: bool = False, repeats: int = 3) -> list[Result]:
    """Benchmark fixed-effects estimation on a large unit-level panel.

    Parameters
    ----------
    quick : bool
        :data:`QUICK_UNITS` units instead of :data:`N_UNITS`.
    repeats : int
        Runs per implementation, each in a fresh process.

    Returns
    -------
    list of Result
    """
    n = QUICK_UNITS if quick else N_UNITS
    size = f"{n:,} units x {N_PERIODS} months"
    case = "unit + period FE, clustered SE"
    results = []
    for task, impl, is_base in (
        ("panel_feols", "pyfixest.feols (raw)", True),
        ("panel_twfe", "vanguard.did.twfe.estimate_twfe", False),
    ):
        print(f"  panel: {impl} on {size}", flush=True)
        try:
            out = worker_repeats(task, {"n_units": n}, repeats)
        except RuntimeError as exc:
            if task == "panel_twfe" and "ModuleNotFoundError" in str(exc):
                results.append(
                    skipped("panel", case, impl, "vanguard.did.twfe not importable", size=size)
                )
                continue
            results.append(Result("panel", case, impl, size=size, note=f"failed: {exc}"))
            continue
        bias = out["estimate"] - EFFECT
        results.append(
            Result(
                "panel",
                case,
                impl,
                size=size,
                times=out["times"],
                peak_mb=out["peak_mb"],
                baseline=is_base,
                value=out["estimate"],
                note=(
                    f"estimate {out['estimate']:.4f} (planted {EFFECT}), se {out['se']:.4f}, "
                    f"bias/se {bias / out['se']:.2f}; data + imports {out['base_mb']:.0f} MB; "
                    f"first call in a fresh process (compilation) {out['warmup_s']:.1f} s"
                    if math.isfinite(out["se"]) and out["se"] > 0
                    else ""
                ),
            )
        )
    results.append(
        skipped(
            "panel",
            case,
            "statsmodels OLS with dummies",
            f"a dense design of {n * N_PERIODS:,} x {n:,} dummies does not fit in memory",
            size=size,
        )
        if not quick
        else Result(
            "panel",
            case,
            "statsmodels OLS with dummies",
            size=size,
            note="not run (dense dummy design; see the full run)",
        )
    )
    return results
