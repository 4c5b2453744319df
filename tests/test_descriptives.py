"""Descriptives against hand-built panels with known answers and the planted synthetic truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vanguard import schema, synthetic
from vanguard.descriptives import indexed_trends, pre_period_balance, seasonality
from vanguard.errors import DataError


def _toy(rates: dict[str, tuple[str, float, float]], months, pop=None, start="2012-01"):
    """Panel with count = pop * rate * exp(growth * years) / 1000 exactly.

    ``rates``: area -> (group, rate per 1,000, log growth per year).
    """
    months = pd.date_range(months[0], months[1], freq="MS")
    rows = []
    for k, (area, (group, rate, growth)) in enumerate(rates.items()):
        p = (pop or {}).get(area, 1000.0 * (k + 1))
        for i, m in enumerate(months):
            rows.append(
                {
                    schema.AREA: area,
                    schema.MONTH: m,
                    schema.POPULATION: p,
                    "y": p * rate * np.exp(growth * i / 12) / 1000,
                    schema.GROUP: group,
                    schema.START: pd.NaT if group == schema.CONTROL else pd.Timestamp(start),
                    schema.SITE: "" if group == schema.CONTROL else f"X{area}",
                }
            )
    return pd.DataFrame(rows)


# --- indexed trends -----------------------------------------------------------------------


def test_indexed_trends_exact_on_a_toy_panel():
    df = _toy(
        {
            "A": (schema.CARE_HOME, 8.0, 0.0),
            "B": (schema.CARE_HOME, 4.0, 0.0),
            "C": (schema.CONTROL, 5.0, 0.0),
        },
        ("2011-01-01", "2012-12-01"),
    )
    # Care-home rate doubles in 2012 in area A only.
    late = (df[schema.AREA] == "A") & (df[schema.MONTH] >= "2012-01-01")
    df.loc[late, "y"] *= 2
    out = indexed_trends(df, "y", base=("2011-01", "2011-12"), freq="Y")
    ch = out[out[schema.GROUP] == schema.CARE_HOME].set_index("period_label")
    # Population-weighted: A has 1,000 people, B 2,000.
    base = (8 * 1000 + 4 * 2000) / 3000
    assert ch.loc["2011", "value"] == pytest.approx(base)
    assert ch.loc["2012", "value"] == pytest.approx((16 * 1000 + 4 * 2000) / 3000)
    assert ch.loc["2012", "index"] == pytest.approx(100 * 24 / 16)
    ctl = out[out[schema.GROUP] == schema.CONTROL]
    assert np.allclose(ctl["index"], 100) and (out["measure"] == "rate_per_1000").all()
    assert list(out[schema.GROUP].unique()) == [schema.CARE_HOME, schema.CONTROL]


def test_indexed_trends_without_population_and_partial_periods():
    df = _toy(
        {"A": (schema.UEC, 6.0, 0.0), "C": (schema.CONTROL, 6.0, 0.0)}, ("2011-02-01", "2012-12-01")
    ).drop(columns=schema.POPULATION)
    out = indexed_trends(df, "y", base=("2011-04", "2011-09"), freq="Q")
    assert (out["measure"] == "count_per_area").all()
    first = out[out["period_label"] == "2011Q1"]
    assert (first["n_months"] == 2).all() and not first["complete"].any()
    assert out.loc[out["period_label"] == "2011Q3", "complete"].all()
    a = out[out[schema.GROUP] == schema.UEC]
    assert a["value"].iloc[0] == pytest.approx(1000 * 6.0 / 1000)


def test_indexed_trends_control_growth_on_synthetic(synthetic_panel):
    out = indexed_trends(synthetic_panel, "emergency_admissions", freq="FY")
    ctl = out[out[schema.GROUP] == schema.CONTROL].set_index("period_label")["index"]
    # Financial years 2013-14 (labelled 2014) to 2017-18 (2018): four years of ~3 %.
    ratio = ctl["2018"] / ctl["2014"]
    assert abs(ratio - 1.03**4) < 0.03
    assert 98 < ctl["2015"] < 102  # inside the base period


def test_indexed_trends_errors(synthetic_panel):
    with pytest.raises(DataError, match="column 'nope'"):
        indexed_trends(synthetic_panel, "nope")
    with pytest.raises(DataError, match="base period 2020-01 to 2020-12"):
        indexed_trends(synthetic_panel, "bed_days", base=("2020-01", "2020-12"))
    with pytest.raises(ValueError, match="freq"):
        indexed_trends(synthetic_panel, "bed_days", freq="W")


# --- seasonality ----------------------------------------------------------------------------


def test_seasonality_recovers_planted_pattern(synthetic_panel):
    spec = synthetic.OUTCOME_SPECS["emergency_admissions"]
    out = seasonality(synthetic_panel, "emergency_admissions")
    assert (out[schema.GROUP] == "all").all() and len(out) == 12
    # Planted multiplicative month effect: cosine season times days in the month,
    # averaged over the months the ratios use (Oct 2010 - Sep 2018).
    months = pd.date_range("2010-10-01", "2018-09-01", freq="MS")
    planted = (
        pd.Series(
            np.exp(
                spec.season_amplitude * np.cos(2 * np.pi * (months.month - spec.peak_month) / 12)
            )
            * months.days_in_month
            / 30.4375,
            index=months.month,
        )
        .groupby(level=0)
        .mean()
    )
    planted = 100 * planted / planted.mean()
    np.testing.assert_allclose(out["index"].to_numpy(), planted.to_numpy(), atol=0.8)
    assert out["index"].mean() == pytest.approx(100)
    assert out.set_index("month_name")["index"].idxmax() == "Jan"


def test_seasonality_by_group_and_short_series(synthetic_panel):
    out = seasonality(synthetic_panel, "ae_attendances", by_group=True)
    assert set(out[schema.GROUP]) == {"all", *schema.GROUPS} - {schema.BOTH}
    assert (out.groupby(schema.GROUP).size() == 12).all()
    short = synthetic_panel[synthetic_panel[schema.MONTH] < "2011-01-01"]
    with pytest.raises(DataError, match="at least 13 consecutive months"):
        seasonality(short, "ae_attendances")


# --- pre-period balance ---------------------------------------------------------------------


def test_balance_exact_on_a_toy_panel():
    rates = {
        "T1": (schema.POPULATION_BASED, 7.0, np.log(1.05)),
        "T2": (schema.BOTH, 9.0, np.log(1.03)),
        "T3": (schema.CARE_HOME, 6.0, np.log(1.01)),
        "C1": (schema.CONTROL, 7.0, np.log(1.02)),
        "C2": (schema.CONTROL, 8.0, np.log(1.02)),
        "C3": (schema.CONTROL, 6.0, np.log(1.04)),
    }
    pops = {"T1": 100.0, "T2": 300.0, "T3": 200.0, "C1": 100.0, "C2": 200.0, "C3": 600.0}
    df = _toy(rates, ("2011-01-01", "2013-12-01"), pops, start="2013-01")
    out = pre_period_balance(df, ["y"])  # default pre-period: 2011-01 to 2012-12
    pb = out[out["group"] == schema.POPULATION_BASED].set_index("measure")

    # Level: the area mean rate over two years of constant growth.
    def level(rate, g):
        return rate * np.mean(np.exp(g * np.arange(24) / 12))

    lt = [level(7.0, np.log(1.05)), level(9.0, np.log(1.03))]
    lc = [level(7.0, np.log(1.02)), level(8.0, np.log(1.02)), level(6.0, np.log(1.04))]
    d = (np.mean(lt) - np.mean(lc)) / np.sqrt((np.var(lt, ddof=1) + np.var(lc, ddof=1)) / 2)
    assert pb.loc["rate_per_1000", "std_diff"] == pytest.approx(d)
    assert pb.loc["rate_per_1000", "n_treated"] == 2 and pb.loc["rate_per_1000", "n_control"] == 3
    assert pb.loc["growth_pct", "mean_treated"] == pytest.approx(4.0)
    assert pb.loc["growth_pct", "mean_control"] == pytest.approx((2 + 2 + 4) / 3)
    assert pb.loc["population", "mean_treated"] == pytest.approx(200.0)
    ch = out[out["group"] == schema.CARE_HOME].set_index("measure")
    assert ch.loc["growth_pct", "mean_treated"] == pytest.approx(2.0)  # T2 (both) and T3
    assert set(out["group"]) == {schema.POPULATION_BASED, schema.CARE_HOME}


def test_balance_on_synthetic_is_balanced_by_design(synthetic_panel):
    out = pre_period_balance(
        synthetic_panel, ["emergency_admissions", "bed_days"], pre=("2010-04", "2015-03")
    )
    lvl = out[out["measure"] == "rate_per_1000"]
    assert (lvl["std_diff"].abs() < 0.5).all()
    growth = out[(out["measure"] == "growth_pct") & (out["outcome"] == "emergency_admissions")]
    assert growth["mean_control"].iloc[0] == pytest.approx(3.0, abs=0.5)


def test_balance_errors(synthetic_panel):
    with pytest.raises(DataError, match="months in the pre-period"):
        pre_period_balance(synthetic_panel, ["bed_days"], pre=("2001-01", "2001-12"))
    controls_only = synthetic_panel[synthetic_panel[schema.GROUP] == schema.CONTROL]
    with pytest.raises(DataError, match="a treated area"):
        pre_period_balance(controls_only, ["bed_days"])


def test_pre_months_window_before_the_earliest_start():
    rates = {"T1": (schema.CARE_HOME, 7.0, 0.0), "C1": (schema.CONTROL, 7.0, 0.0)}
    df = _toy(rates, ("2011-01-01", "2013-12-01"), start="2013-01")
    # Treated level steps up in 2012-07: only the last 6 months before start see it.
    df.loc[(df[schema.AREA] == "T1") & (df[schema.MONTH] >= "2012-07-01"), "y"] *= 1.5
    last6 = pre_period_balance(df, "y", pre_months=6).set_index("measure")
    full = pre_period_balance(df, "y").set_index("measure")
    assert last6.loc["rate_per_1000", "mean_treated"] == pytest.approx(10.5)
    assert full.loc["rate_per_1000", "mean_treated"] == pytest.approx(7.0 * 18 / 24 + 10.5 / 4)
    trends = indexed_trends(df, "y", freq="M", pre_months=6)
    t1 = trends[trends[schema.GROUP] == schema.CARE_HOME].set_index("period_label")["index"]
    assert t1["2012-12"] == pytest.approx(100.0)
    assert t1["2012-01"] == pytest.approx(100 / 1.5)
    assert (trends["outcome"] == "y").all()
    with pytest.raises(ValueError, match="pre_months"):
        pre_period_balance(df, "y", pre_months=0)
