"""Sensitivity analyses and the sustainability window (``vanguard.sensitivity``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.did_sim import simulate
from vanguard import analysis, schema, sensitivity

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

GROUPS = ["population_based", "care_home"]


def _spec(scale="rate", **kw):
    return analysis.Spec("emergency_admissions", "population_based", scale=scale,
                         inference="cluster", **kw)


def _areas(panel: pd.DataFrame, partial_site: str) -> pd.DataFrame:
    """Area records as the real data keeps them: one site partly covers its areas."""
    a = panel.drop_duplicates("area")[["area", "site"]].copy()
    a["coverage"] = np.where(a["site"] == partial_site, "part", "whole")
    return a


@pytest.fixture(scope="module")
def panel():
    return simulate(seed=3, n_control=40, n_pop=9, n_care=6, n_uec=5)


def test_partial_sites_take_every_panel_area_of_the_site():
    panel = pd.DataFrame({"area": list("ABCDE"), "month": pd.Timestamp("2015-04-01")})
    areas = pd.DataFrame({
        "area": list("ABCDF"),
        "site": ["1", "1", "2", "2;3", "4"],
        "coverage": ["part", "whole", "whole", "part", "part"],
    })
    got = sensitivity.partial_sites(areas, panel)
    # F is not in the panel, so site 4 has nothing to leave out
    assert got == {"1": ["A", "B"], "2": ["C", "D"], "3": ["D"]}
    assert list(got) == ["1", "2", "3"]


def test_partial_sites_need_the_coverage_column():
    with pytest.raises(ValueError, match="coverage"):
        sensitivity.partial_sites(pd.DataFrame({"area": ["A"], "site": ["1"]}),
                                  pd.DataFrame({"area": ["A"]}))


def test_variants_change_what_they_say(panel):
    site = "S_population_based_0"
    built = {v.key: v for v in sensitivity.variants(panel, areas=_areas(panel, site),
                                                    site_names={site: "Somewhere"})}
    assert built["headline"].panel is panel
    part = set(panel.loc[panel["site"] == site, "area"])
    assert part and not part & set(built["whole_ccg_only"].panel["area"])
    assert set(built["whole_ccg_only"].panel["area"]) == set(panel["area"]) - part
    out = built[f"without_site_{site}"]
    assert set(out.panel["area"]) == set(panel["area"]) - part
    assert "Somewhere" in out.label
    uec = built["uec_as_controls"]
    assert uec.with_uec_controls and uec.groups == ("care_home", "population_based")
    # rules of the real data cannot be switched off on this panel: listed, not dropped
    for key in ("anomalies_kept", "mixed_kept"):
        assert built[key].panel is None and built[key].reason
    assert built["per_1000_aged_75plus"].panel is None


def test_rebuilt_panels_that_add_nothing_are_not_estimated_again(panel):
    bigger = pd.concat([panel, panel[panel["group"] == "control"].assign(area="ZZZ")],
                       ignore_index=True)
    built = {v.key: v for v in sensitivity.variants(
        panel, rebuild=lambda **opt: bigger if opt.get("mixed") == "keep" else panel)}
    assert built["anomalies_kept"].panel is None
    assert "no area" in built["anomalies_kept"].reason
    assert built["mixed_kept"].panel is bigger and "ZZZ" in built["mixed_kept"].label


def test_headline_rows_are_the_main_estimate_and_skips_are_listed(panel):
    built = sensitivity.variants(panel, areas=_areas(panel, "S_care_home_1"))
    res, skipped = sensitivity.run_sensitivities(built, _spec(), GROUPS, analysis.estimate)
    assert (res["analysis"] == "sensitivity").all()
    assert set(res.columns) == set(schema.RESULT_COLUMNS)
    for group in GROUPS:
        main = analysis.estimate(panel, _spec().replace(group=group), "twfe")
        main = main[main["analysis"] == "main"].set_index("window")
        head = res[(res["sensitivity"] == "headline") & (res["group"] == group)].set_index("window")
        assert np.allclose(head.loc[main.index, "estimate"], main["estimate"], rtol=0, atol=1e-12)
    keys = set(res["sensitivity"])
    assert {"headline", "whole_ccg_only", "uec_as_controls", "without_site_S_care_home_1"} <= keys
    # care-home sites only: per 1,000 aged 75+ is listed once, for that group
    row = skipped[skipped["sensitivity"] == "per_1000_aged_75plus"]
    assert row["group"].tolist() == ["care_home"]
    assert set(skipped.columns) == set(sensitivity.COLUMNS_SKIPPED)


def test_uec_areas_as_controls_are_really_used():
    # UEC areas with a large effect of their own pull the comparison trend up after their
    # start: as controls they move the population-based estimate; the headline does not.
    panel = simulate(seed=5, n_control=30, n_pop=9, n_care=0, n_uec=12,
                     effects={"population_based": (0.0, 0.0, 0.0), "uec": (0.3, 0.3, 0.3)})
    built = [v for v in sensitivity.variants(panel) if v.key in ("headline", "uec_as_controls")]
    res, _ = sensitivity.run_sensitivities(built, _spec("log"), ["population_based"],
                                           analysis.estimate)
    y13 = res[res["window"] == "years_1_3"].set_index("sensitivity")
    assert y13.loc["uec_as_controls", "n_control"] == 42
    assert y13.loc["headline", "n_control"] == 30
    assert abs(y13.loc["headline", "estimate"]) < 0.03
    # bias = -(UEC share of controls) x (their effect) x (share of months 0-35 after
    # the population-based start that follow the UEC start, 32 of 36)
    assert y13.loc["uec_as_controls", "estimate"] == pytest.approx(-12 / 42 * 0.3 * 32 / 36,
                                                                   abs=0.02)


def test_rates_per_1000_aged_75_plus_use_that_denominator(panel):
    aged = panel.assign(population_75plus=panel["population"] * 0.08)
    built = {v.key: v for v in sensitivity.variants(aged)}
    assert built["per_1000_aged_75plus"].groups == ("care_home",)
    res, _ = sensitivity.run_sensitivities(
        [built["headline"], built["per_1000_aged_75plus"]], _spec(), GROUPS, analysis.estimate)
    ch = res[(res["group"] == "care_home") & (res["window"] == "years_1_3")].set_index("sensitivity")
    # a constant 8 % share: every rate, so the effect, is 1 / 0.08 times the all-ages one
    assert ch.loc["per_1000_aged_75plus", "estimate"] == pytest.approx(
        ch.loc["headline", "estimate"] / 0.08, rel=1e-9)
    assert set(res.loc[res["sensitivity"] == "per_1000_aged_75plus", "group"]) == {"care_home"}


def test_sustainability_window_recovers_a_persisting_effect():
    # effects stay at their year-3 value after month 36 (the simulator's rule)
    panel = simulate(seed=9, n_control=50, n_pop=15, n_care=0, last="2019-12-01",
                     effects={"population_based": (-0.02, -0.04, -0.08)})
    assert sensitivity.sustainability_windows(panel) == (
        ("years_1_3", 0, 36), ("year_4", 36, 48), ("sustainability", 36, 57))
    res, skipped = sensitivity.sustainability(panel, _spec("log"), ["population_based"],
                                              analysis.estimate)
    assert skipped.empty and (res["analysis"] == "sustainability").all()
    est = res.set_index("window")["estimate"]
    assert est["sustainability"] == pytest.approx(-0.08, abs=0.02)
    assert est["year_4"] == pytest.approx(-0.08, abs=0.02)
    assert est["years_1_3"] == pytest.approx(np.mean([-0.02, -0.04, -0.08]), abs=0.02)


def test_sustainability_needs_months_after_the_programme(panel):
    with pytest.raises(ValueError, match="more than 36"):
        sensitivity.sustainability_windows(panel)  # ends March 2018, three years after start
    got, why = sensitivity.sustainability_panel(panel, "synthetic")
    assert got is None and "more than 36" in why
    res, skipped = sensitivity.sustainability(got, _spec(), GROUPS, analysis.estimate, reason=why)
    assert res.empty and skipped["group"].tolist() == GROUPS
    assert (skipped["reason"] == why).all() and (skipped["sensitivity"] == "sustainability").all()


def test_a_sensitivity_that_leaves_a_group_alone_is_listed_not_repeated(panel):
    site = "S_population_based_0"
    built = sensitivity.variants(panel, areas=_areas(panel, site))
    res, skipped = sensitivity.run_sensitivities(built, _spec(), GROUPS, analysis.estimate)
    # dropping a population-based site leaves the care-home model's sample unchanged
    for key in ("whole_ccg_only", f"without_site_{site}"):
        assert set(res.loc[res["sensitivity"] == key, "group"]) == {"population_based"}
        row = skipped[(skipped["sensitivity"] == key)]
        assert row["group"].tolist() == ["care_home"] and "same estimate" in row["reason"].iloc[0]
    # UEC areas as controls changes every group's controls: estimated for both
    assert set(res.loc[res["sensitivity"] == "uec_as_controls", "group"]) == set(GROUPS)


def test_areas_in_two_groups_do_not_count_as_a_change(panel):
    # an area in a population-based and a care-home site is out of both single-group
    # models, so leaving its site out changes neither sample
    both = panel.copy()
    first = both.loc[both["group"] == "care_home", "area"].iloc[0]
    both.loc[both["area"] == first, ["group", "site"]] = ["both", "S_both"]
    areas = _areas(both, "S_both")
    res, skipped = sensitivity.run_sensitivities(sensitivity.variants(both, areas=areas),
                                                 _spec(), GROUPS, analysis.estimate)
    assert "without_site_S_both" not in set(res["sensitivity"])
    assert set(skipped.loc[skipped["sensitivity"] == "without_site_S_both", "group"]) == set(GROUPS)
