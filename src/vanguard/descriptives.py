"""Descriptive statistics of the panel: indexed trends, seasonality, pre-period balance.

All three return tidy tables (one row per group x period, per group x calendar month, or
per group x outcome x measure) that notebooks plot and the report tabulates. Outcomes
are rates per 1,000 population per month when the panel has ``population``, else mean
counts per area-month. Groups are the panel's area groups (``population_based``,
``care_home``, ``both``, ``uec``, ``control``) for trends and seasonality; the balance
table compares each analysis group's treated areas (:data:`vanguard.schema.GROUP_MEMBERS`)
with the controls, as the difference-in-differences estimators do.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.errors import DataError

FREQS: dict[str, str] = {"M": "M", "Q": "Q", "Y": "Y", "FY": "Y-MAR"}
"""Period lengths: month, calendar quarter, calendar year, financial year (April-March)."""

_MONTHS_IN = {"M": 1, "Q": 3, "Y": 12, "FY": 12}


def _require(panel: pd.DataFrame, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in panel.columns:
            raise DataError(
                "panel", f"a column named {col!r}", column=col, found=list(panel.columns)
            )


def _measure(panel: pd.DataFrame) -> str:
    return "rate_per_1000" if schema.POPULATION in panel.columns else "count_per_area"


def _month(value) -> pd.Timestamp:
    return pd.Timestamp(value).to_period("M").to_timestamp()


def _months_before_start(panel: pd.DataFrame, pre_months: int | None):
    """First and last month of the ``pre_months`` months before the earliest start
    (all months before it when ``pre_months`` is None)."""
    starts = panel[schema.START].dropna() if schema.START in panel.columns else []
    if len(starts) == 0:
        raise DataError(
            "panel",
            "a treated area (a start month) to define the pre-period, or explicit months",
            column=schema.START,
        )
    hi = pd.Timestamp(starts.min()) - pd.DateOffset(months=1)
    if pre_months is None:
        return panel[schema.MONTH].min(), hi
    if int(pre_months) < 1:
        raise ValueError(f"pre_months must be at least 1; got {pre_months}")
    return hi - pd.DateOffset(months=int(pre_months) - 1), hi


def _ordered_groups(groups) -> list[str]:
    present = set(groups)
    return [g for g in schema.GROUPS if g in present] + sorted(present - set(schema.GROUPS))


def _aggregate(df: pd.DataFrame, outcome: str, keys: list[str]) -> pd.DataFrame:
    """Population-weighted rate (or mean count) of ``outcome`` within ``keys``."""
    has_pop = schema.POPULATION in df.columns
    agg = df.groupby(keys, sort=True, observed=True).agg(
        total=(outcome, "sum"),
        denom=(schema.POPULATION if has_pop else outcome, "sum" if has_pop else "size"),
        n_areas=(schema.AREA, "nunique"),
        n_months=(schema.MONTH, "nunique"),
    )
    scale = schema.RATE_PER if has_pop else 1.0
    agg["value"] = agg["total"] / agg["denom"] * scale
    return agg.reset_index()


def indexed_trends(
    panel: pd.DataFrame,
    outcome: str,
    *,
    base: tuple[str, str] = ("2013-04", "2015-03"),
    freq: str = "Q",
    pre_months: int | None = None,
) -> pd.DataFrame:
    """Outcome by group and period, indexed to 100 in a base period.

    Parameters
    ----------
    panel : pandas.DataFrame
        Validated panel (:func:`vanguard.panel.validate_panel`).
    outcome : str
        Outcome column.
    base : (str, str)
        First and last month (``YYYY-MM``) of the base period; each group's index is
        100 at its population-weighted mean rate over these months.
    freq : {"M", "Q", "Y", "FY"}
        Period: month, quarter, calendar year or financial year.
    pre_months : int, optional
        When given, the base period is instead the ``pre_months`` months before the
        earliest treatment start in the panel.

    Returns
    -------
    pandas.DataFrame
        ``outcome, group, period, period_label, measure, value, base_value, index, n_areas,
        n_months, complete``: ``value`` is the rate per 1,000 per month (population-
        weighted) or the mean count per area-month; ``complete`` is False for a period
        the data cover only in part.

    Raises
    ------
    DataError
        If a column is missing or the base period has no data for a group.
    ValueError
        If ``freq`` is unknown.
    """
    if freq not in FREQS:
        raise ValueError(f"freq {freq!r}: expected one of {tuple(FREQS)}")
    _require(panel, (schema.AREA, schema.MONTH, schema.GROUP, outcome))
    if pre_months is not None:
        lo, hi = _months_before_start(panel, pre_months)
    else:
        lo, hi = _month(base[0]), _month(base[1])
    df = panel.assign(period=panel[schema.MONTH].dt.to_period(FREQS[freq]))
    out = _aggregate(df, outcome, [schema.GROUP, "period"])
    in_base = df[(df[schema.MONTH] >= lo) & (df[schema.MONTH] <= hi)]
    base_val = _aggregate(in_base, outcome, [schema.GROUP]).set_index(schema.GROUP)["value"]
    missing = sorted(set(out[schema.GROUP]) - set(base_val.index))
    if missing:
        raise DataError(
            "panel",
            f"data in the base period {lo:%Y-%m} to {hi:%Y-%m} for every group",
            column=schema.MONTH,
            found=f"none for {missing}",
        )
    out["base_value"] = out[schema.GROUP].map(base_val)
    out["index"] = 100.0 * out["value"] / out["base_value"]
    out["measure"] = _measure(panel)
    out["outcome"] = outcome
    out["complete"] = out["n_months"] == _MONTHS_IN[freq]
    out["period_label"] = out["period"].astype(str)
    out["period"] = out["period"].dt.start_time.astype("datetime64[ns]")
    order = {g: i for i, g in enumerate(_ordered_groups(out[schema.GROUP]))}
    out = out.sort_values(
        [schema.GROUP, "period"],
        key=lambda s: s.map(order) if s.name == schema.GROUP else s,
        kind="stable",
    )
    return out[
        [
            "outcome",
            schema.GROUP,
            "period",
            "period_label",
            "measure",
            "value",
            "base_value",
            "index",
            "n_areas",
            "n_months",
            "complete",
        ]
    ].reset_index(drop=True)


_MA_WEIGHTS = np.r_[0.5, np.ones(11), 0.5] / 12.0
"""Centred 2x12 moving average: removes level, trend and seasonality of monthly data."""


def seasonality(panel: pd.DataFrame, outcome: str, *, by_group: bool = False) -> pd.DataFrame:
    """Seasonal index of an outcome by calendar month (100 = an average month).

    Each area's monthly rate is divided by its centred 2x12 moving average (which
    removes level and trend); the ratios are averaged over areas and years for each
    calendar month and rescaled so the twelve indices average 100. The index includes
    the effect of the number of days in the month.

    Parameters
    ----------
    panel : pandas.DataFrame
        Validated panel (consecutive months in every area).
    outcome : str
        Outcome column.
    by_group : bool
        One index per area group as well as ``"all"`` areas.

    Returns
    -------
    pandas.DataFrame
        ``outcome, group, month_of_year, month_name, index, se, n``: ``se`` is the standard error
        of the mean ratio (x 100), ``n`` the number of area-months averaged.

    Raises
    ------
    DataError
        If a column is missing, an area has fewer than 13 consecutive months, or an
        area's moving average is zero.
    """
    _require(panel, (schema.AREA, schema.MONTH, outcome))
    df = panel.sort_values([schema.AREA, schema.MONTH], kind="stable")
    has_pop = schema.POPULATION in df.columns
    ratios = []
    for area, g in df.groupby(schema.AREA, sort=True):
        y = g[outcome].to_numpy(float)
        if has_pop:
            y = schema.per_1000(y, g[schema.POPULATION].to_numpy(float))
        if len(y) < 13:
            raise DataError(
                "panel",
                "at least 13 consecutive months per area for a seasonal index",
                column=schema.MONTH,
                found=f"{len(y)} months for area {area!r}",
            )
        ma = np.convolve(y, _MA_WEIGHTS, mode="valid")
        if np.any(ma <= 0):
            raise DataError(
                "panel",
                f"a positive 12-month average of {outcome!r}",
                column=outcome,
                found=f"zero for area {area!r}",
            )
        mid = g.iloc[6 : len(y) - 6]
        ratios.append(
            pd.DataFrame(
                {
                    schema.GROUP: mid[schema.GROUP].to_numpy() if schema.GROUP in mid else "all",
                    "month_of_year": mid[schema.MONTH].dt.month.to_numpy(),
                    "ratio": y[6 : len(y) - 6] / ma,
                }
            )
        )
    r = pd.concat(ratios, ignore_index=True)
    sets = [("all", r)]
    if by_group and schema.GROUP in panel.columns:
        sets += [(grp, r[r[schema.GROUP] == grp]) for grp in _ordered_groups(r[schema.GROUP])]
    rows = []
    for name, part in sets:
        s = part.groupby("month_of_year")["ratio"].agg(["mean", "std", "size"])
        norm = s["mean"].mean()
        for m, row in s.iterrows():
            rows.append(
                {
                    "outcome": outcome,
                    schema.GROUP: name,
                    "month_of_year": int(m),
                    "month_name": pd.Timestamp(2000, int(m), 1).strftime("%b"),
                    "index": 100.0 * row["mean"] / norm,
                    "se": 100.0 * row["std"] / np.sqrt(row["size"]) / norm,
                    "n": int(row["size"]),
                }
            )
    return pd.DataFrame(rows)


def _trend_slope(t: np.ndarray, y: np.ndarray, moy: np.ndarray) -> float:
    """Slope of ``y`` on ``t`` with calendar-month dummies when there is room for them.

    Without the dummies a window starting in April ends on the winter peak, which
    biases a plain slope upwards by several tenths of a percent a year.
    """
    months = np.unique(moy)
    if len(t) >= len(months) + 3 and len(months) == 12:
        x = np.column_stack([t - t.mean(), (moy[:, None] == months[None, :]).astype(float)])
    else:
        x = np.column_stack([t - t.mean(), np.ones_like(t)])
    return float(np.linalg.lstsq(x, y, rcond=None)[0][0])


def _area_pre_stats(pre: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Per area: mean rate and annual growth (%) from a log-linear fit over months
    (with calendar-month dummies when the period spans at least 15 months)."""
    has_pop = schema.POPULATION in pre.columns
    rows = []
    for area, g in pre.groupby(schema.AREA, sort=True):
        y = g[outcome].to_numpy(float)
        rate = schema.per_1000(y, g[schema.POPULATION].to_numpy(float)) if has_pop else y
        t = (g[schema.MONTH].dt.year * 12 + g[schema.MONTH].dt.month).to_numpy(float)
        pos = rate > 0
        if pos.sum() < 3:
            raise DataError(
                "panel",
                f"at least 3 positive pre-period values of {outcome!r} per area to measure growth",
                column=outcome,
                found=f"{int(pos.sum())} for area {area!r}",
            )
        if not pos.all():
            warnings.warn(
                f"pre_period_balance: area {area!r}: {int((~pos).sum())} zero "
                f"month(s) of {outcome!r} left out of its growth rate",
                stacklevel=3,
            )
        slope = _trend_slope(t[pos], np.log(rate[pos]), g[schema.MONTH].dt.month.to_numpy()[pos])
        level = schema.per_1000(y.sum(), g[schema.POPULATION].sum()) if has_pop else y.mean()
        rows.append(
            {schema.AREA: area, "level": level, "growth_pct": 100.0 * np.expm1(12.0 * slope)}
        )
    return pd.DataFrame(rows).set_index(schema.AREA)


def _compare(treated: pd.Series, control: pd.Series) -> dict:
    mt, mc = treated.mean(), control.mean()
    vt = treated.var(ddof=1) if len(treated) > 1 else 0.0
    vc = control.var(ddof=1) if len(control) > 1 else 0.0
    pooled = np.sqrt((vt + vc) / 2.0)
    return {
        "mean_treated": mt,
        "sd_treated": np.sqrt(vt),
        "n_treated": len(treated),
        "mean_control": mc,
        "sd_control": np.sqrt(vc),
        "n_control": len(control),
        "difference": mt - mc,
        "std_diff": (mt - mc) / pooled if pooled > 0 else np.nan,
    }


def pre_period_balance(
    panel: pd.DataFrame,
    outcomes: str | Sequence[str],
    *,
    pre: tuple[str, str] | None = None,
    pre_months: int | None = None,
) -> pd.DataFrame:
    """Treated groups against controls before the programme: level, growth, population.

    Each area is summarised over the pre-period (its population-weighted mean rate, its
    annual growth from a log-linear fit with calendar-month effects, its mean
    population); areas are then compared
    between each analysis group's treated areas and the control areas. The
    standardised difference is ``(mean_treated - mean_control) / sqrt((var_treated +
    var_control) / 2)`` over areas (|d| > 0.25 is a common flag of imbalance).

    Parameters
    ----------
    panel : pandas.DataFrame
        Validated panel with ``group``.
    outcomes : str or sequence of str
        Outcome column(s).
    pre : (str, str), optional
        First and last pre-period month (``YYYY-MM``); default from the first month of
        data to the month before the earliest treatment start.
    pre_months : int, optional
        Without ``pre``: use only the ``pre_months`` months before the earliest start.

    Returns
    -------
    pandas.DataFrame
        ``group, outcome, measure, mean_treated, sd_treated, n_treated, mean_control,
        sd_control, n_control, difference, std_diff``; ``measure`` is ``rate_per_1000``
        (or ``count_per_area``), ``growth_pct`` (% a year), or ``population`` (with
        ``outcome == "population"``). A side with one area has sd 0.

    Raises
    ------
    DataError
        If a column is missing, the pre-period has no data, or an area has too few
        positive values to measure growth.
    ValueError
        If ``pre_months`` is below 1.
    """
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    _require(panel, (schema.AREA, schema.MONTH, schema.GROUP, *outcomes))
    if pre is None:
        lo, hi = _months_before_start(panel, pre_months)
    else:
        lo, hi = _month(pre[0]), _month(pre[1])
    pre_df = panel[(panel[schema.MONTH] >= lo) & (panel[schema.MONTH] <= hi)]
    if pre_df.empty:
        raise DataError(
            "panel", f"months in the pre-period {lo:%Y-%m} to {hi:%Y-%m}", column=schema.MONTH
        )
    area_group = pre_df.groupby(schema.AREA)[schema.GROUP].first()
    control = area_group.index[area_group == schema.CONTROL]
    stats = {o: _area_pre_stats(pre_df, o) for o in outcomes}
    if schema.POPULATION in pre_df.columns:
        pop = pre_df.groupby(schema.AREA)[schema.POPULATION].mean()
    else:
        pop = None
    measure = _measure(panel)
    rows = []
    for g in schema.groups_in(area_group):
        treated = area_group.index[schema.member_mask(area_group, g)]
        if len(treated) == 0 or len(control) == 0:
            continue
        for o in outcomes:
            for col, name in (("level", measure), ("growth_pct", "growth_pct")):
                s = stats[o][col]
                rows.append(
                    {
                        "group": g,
                        "outcome": o,
                        "measure": name,
                        **_compare(s.loc[treated], s.loc[control]),
                    }
                )
        if pop is not None:
            rows.append(
                {
                    "group": g,
                    "outcome": "population",
                    "measure": "population",
                    **_compare(pop.loc[treated], pop.loc[control]),
                }
            )
    cols = [
        "group",
        "outcome",
        "measure",
        "mean_treated",
        "sd_treated",
        "n_treated",
        "mean_control",
        "sd_control",
        "n_control",
        "difference",
        "std_diff",
    ]
    return pd.DataFrame(rows, columns=cols)
