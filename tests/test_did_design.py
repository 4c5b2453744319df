"""Tests of the shared DiD estimation sample (vanguard.did.design)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from did_sim import simulate

from vanguard.did.design import NEVER_TREATED, Design, month_index, prepare
from vanguard.errors import DataError, EstimationError

OUT = "emergency_admissions"


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    # longer than the analysis window on both sides, with UEC areas starting later
    return simulate(
        seed=11, n_control=20, n_pop=5, n_care=3, n_uec=4, first="2012-01-01", last="2019-03-01"
    )


def test_month_index_counts_months_since_1970():
    got = month_index(pd.Series(pd.to_datetime(["1970-01-01", "2015-04-01", None])))
    assert got.tolist() == [0, 45 * 12 + 3, -1]


def test_structure_and_counts(panel):
    d = prepare(panel, OUT)
    assert isinstance(d, Design)
    f = d.frame
    for col in [
        "area",
        "month",
        "t",
        "y",
        "count",
        "population",
        "group",
        "start",
        "cohort",
        "rel",
        "site",
        "treated_population_based",
        "treated_care_home",
    ]:
        assert col in f.columns
    assert d.n_treated == {"population_based": 5, "care_home": 3}
    assert d.n_control == 20
    # UEC areas are not part of this analysis and are listed as dropped
    assert sorted(d.dropped["group"]) == ["uec"] * 4
    assert set(f["group"]) == {"control", "population_based", "care_home"}
    assert (f.loc[f.group == "control", "cohort"] == NEVER_TREATED).all()
    assert f.loc[f.group == "control", "rel"].isna().all()


def test_window_is_24_months_before_to_36_after(panel):
    d = prepare(panel, OUT)
    f = d.frame
    assert f["month"].min() == pd.Timestamp("2013-04-01")
    assert f["month"].max() == pd.Timestamp("2018-03-01")
    assert f.groupby("area").size().eq(60).all()
    tr = f[f.group == "care_home"]
    assert tr["rel"].min() == -24 and tr["rel"].max() == 35
    assert (tr["treated_care_home"] == (tr["rel"] >= 0)).all()
    assert f["treated_care_home"][f.group != "care_home"].eq(0).all()


def test_post_months_after_an_areas_last_window_are_excluded(panel):
    # UEC starts 2015-08, so the window runs to 2018-07; population-based areas (start
    # 2015-04) must lose 2018-04..2018-07 or those months would be coded untreated.
    d = prepare(panel, OUT, groups=("population_based", "uec"))
    f = d.frame
    assert f["month"].max() == pd.Timestamp("2018-07-01")
    pop = f[f.group == "population_based"]
    assert pop["rel"].max() == 35
    assert pop["month"].max() == pd.Timestamp("2018-03-01")
    ctrl = f[f.group == "control"]
    assert ctrl.groupby("area").size().eq(64).all()
    uec = f[f.group == "uec"]
    assert uec["rel"].max() == 35 and uec["rel"].min() == -28


def test_pre_months_none_keeps_all_pre_period(panel):
    d = prepare(panel, OUT, pre_months=None)
    assert d.frame["month"].min() == pd.Timestamp("2012-01-01")


def test_scales(panel):
    rate = prepare(panel, OUT, scale="rate").frame
    assert np.allclose(rate["y"], rate["count"] / rate["population"] * 1000)
    log = prepare(panel, OUT, scale="log").frame
    assert np.allclose(log["y"], np.log(log["count"]))
    for s in ("poisson", "count"):
        f = prepare(panel, OUT, scale=s).frame
        assert np.array_equal(f["y"], f["count"])


def test_pre_mean_is_treated_pre_period_mean(panel):
    d = prepare(panel, OUT, scale="rate")
    p = panel[
        (panel.group == "care_home") & (panel.month >= "2013-04-01") & (panel.month < "2015-04-01")
    ]
    assert d.pre_mean["care_home"] == pytest.approx(
        (p[OUT] / p["population"] * 1000).mean(), rel=1e-12
    )
    dc = prepare(panel, OUT, scale="count")
    assert dc.pre_mean["care_home"] == pytest.approx(p[OUT].mean(), rel=1e-12)


def test_both_areas_count_for_both_groups(panel):
    p = panel.copy()
    p.loc[p.area == "A020", "group"] = "both"  # first population-based area
    d = prepare(p, OUT)
    assert d.n_treated == {"population_based": 5, "care_home": 4}
    f = d.frame[d.frame.area == "A020"]
    assert (f["treated_population_based"] == f["treated_care_home"]).all()
    assert f["treated_care_home"].sum() == 36


@pytest.mark.parametrize("group", ["population_based", "care_home"])
def test_both_area_excluded_when_only_one_of_its_groups_is_modelled(panel, group):
    """A 'both' area in a population-based-only model would count as population-based
    treated while also receiving the care-home programme: it is excluded and recorded."""
    p = panel.copy()
    p.loc[p.area == "A020", "group"] = "both"
    with pytest.warns(UserWarning, match="belong to a treatment group not in this model"):
        d = prepare(p, OUT, groups=(group,))
    assert "A020" not in set(d.frame["area"])
    assert d.n_treated[group] == {"population_based": 4, "care_home": 3}[group]
    row = d.dropped[d.dropped["area"] == "A020"]
    assert len(row) == 1 and row.iloc[0]["group"] == "both"
    assert "not all of them in this model" in row.iloc[0]["reason"]


def test_both_area_not_in_a_uec_model(panel):
    p = panel.copy()
    p.loc[p.area == "A020", "group"] = "both"
    d = prepare(p, OUT, groups=("uec",))
    assert "A020" not in set(d.frame["area"])
    assert "A020" in set(d.dropped["area"])


def test_unbalanced_area_is_dropped_with_warning(panel):
    p = panel[~((panel.area == "A003") & (panel.month == "2014-06-01"))]
    with pytest.warns(UserWarning, match="A003"):
        d = prepare(p, OUT)
    assert "A003" not in set(d.frame.area)
    assert "A003" in set(d.dropped.area)
    assert d.n_control == 19


def test_missing_outcome_is_dropped_with_warning(panel):
    p = panel.copy()
    p.loc[(p.area == "A021") & (p.month == "2016-01-01"), OUT] = np.nan
    with pytest.warns(UserWarning, match="A021"):
        d = prepare(p, OUT)
    assert d.n_treated["population_based"] == 4


def test_missing_month_outside_window_is_harmless(panel):
    p = panel[~((panel.area == "A003") & (panel.month == "2012-06-01"))]
    d = prepare(p, OUT)
    assert "A003" in set(d.frame.area)


def test_log_scale_zero_count_names_area_and_month(panel):
    p = panel.copy()
    p.loc[(p.area == "A005") & (p.month == "2014-02-01"), OUT] = 0
    with pytest.raises(DataError, match=r"A005, 2014-02"):
        prepare(p, OUT, scale="log")


def test_poisson_all_zero_outcome_errors_and_zero_area_is_dropped(panel):
    p = panel.copy()
    p[OUT] = 0.0
    with pytest.raises(EstimationError, match="zero in every"):
        prepare(p, OUT, scale="poisson")
    p = panel.copy()
    p.loc[p.area == "A004", OUT] = 0.0
    with pytest.warns(UserWarning, match="A004"):
        d = prepare(p, OUT, scale="poisson")
    assert "A004" not in set(d.frame.area)


def test_no_treated_or_no_control_areas(panel):
    with pytest.raises(EstimationError, match="no treated"):
        prepare(panel[panel.group != "care_home"], OUT)
    with pytest.raises(EstimationError, match="no control"):
        prepare(panel[panel.group != "control"], OUT)


def test_start_outside_panel(panel):
    p = panel.copy()
    p.loc[p.area == "A025", "start"] = pd.Timestamp("2020-04-01")
    with pytest.raises(DataError, match="A025"):
        prepare(p, OUT)
    p.loc[p.area == "A025", "start"] = pd.Timestamp("2011-04-01")
    with pytest.raises(DataError, match="column 'start'"):
        prepare(p, OUT)


def test_single_treated_area_warns(panel):
    p = panel[~panel.area.isin(["A026", "A027"])]
    with pytest.warns(UserWarning, match="only one treated area in group 'care_home'"):
        d = prepare(p, OUT)
    assert d.n_treated["care_home"] == 1


def test_unknown_inputs(panel):
    with pytest.raises(DataError, match="column 'nope'"):
        prepare(panel, "nope")
    with pytest.raises(EstimationError, match="scale"):
        prepare(panel, OUT, scale="linear")
    with pytest.raises(EstimationError, match="group"):
        prepare(panel, OUT, groups=("acute",))
    with pytest.raises(DataError, match="population"):
        prepare(panel.drop(columns="population"), OUT, scale="rate")
    bad = panel.copy()
    # any label names a treatment group now; one that differs within an area is an error
    bad.loc[5, "group"] = "pacs"
    with pytest.raises(DataError, match="constant 'group' within each area"):
        prepare(bad, OUT)


def test_group_varying_within_area_is_an_error(panel):
    p = panel.copy()
    p.loc[(p.area == "A000") & (p.month == "2016-01-01"), "group"] = "care_home"
    with pytest.raises(DataError, match="constant"):
        prepare(p, OUT)


def test_data_source_from_attrs(panel):
    p = panel.copy()
    p.attrs["data_source"] = "synthetic"
    assert prepare(p, OUT).data_source == "synthetic"
    assert prepare(panel, OUT).data_source == "custom"


def test_explicit_controls_may_come_from_another_group_and_are_not_listed_as_dropped(panel):
    uec = sorted(panel.loc[panel["group"] == "uec", "area"].unique())
    d = prepare(panel, OUT, groups=("population_based",), controls=uec)
    assert d.n_control == len(uec)
    assert not set(uec) & set(d.dropped["area"])
    assert set(d.dropped.loc[d.dropped["group"] == "control", "reason"]) == {
        "control area not in the explicit control list"}
