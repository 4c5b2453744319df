"""The 93 published MAR files: parse, published totals, crosswalk, register, panel.

These need the files (``../shared/data/nhs-mar`` or ``$VANGUARD_MAR_DIR``) and skip
cleanly without them.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
import xlrd

from vanguard import config, population
from vanguard.io import sha256_file
from vanguard.mar import crosswalk as cwm
from vanguard.mar.manifest import read_manifest
from vanguard.mar.panel import build_panel
from vanguard.mar.parse import load_mar
from vanguard.sites import load_register

MANIFEST = read_manifest(config.MAR_MANIFEST)
MAR_DIR = config.mar_dir()
HAVE_FILES = all((MAR_DIR / f).is_file() for f in MANIFEST["file"])

pytestmark = [
    pytest.mark.shared,
    # build_panel warns about known submission problems; one test below asserts it.
    pytest.mark.filterwarnings("ignore:NHS MAR panel:UserWarning"),
    pytest.mark.skipif(not HAVE_FILES, reason=f"MAR files not found in {MAR_DIR}"),
]

PUBLISHED_NON_ELECTIVE = {2013: 5_565_567, 2018: 6_597_740}
"""England total non-elective G&A FFCEs by financial year (2013 = 2013-14), published."""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    before = {f: sha256_file(MAR_DIR / f) for f in MANIFEST["file"]}
    cache = tmp_path_factory.mktemp("processed") / "nhs_mar.parquet"
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = load_mar(MAR_DIR, cache=cache)
    seconds = time.perf_counter() - t0
    after = {f: sha256_file(MAR_DIR / f) for f in MANIFEST["file"]}
    return {
        "table": table,
        "before": before,
        "after": after,
        "seconds": seconds,
        "warnings": [str(w.message) for w in caught],
        "cache": cache,
    }


def _fy(months: pd.Series) -> pd.Series:
    return months.dt.year - (months.dt.month < 4)


def test_every_month_parsed_and_raw_files_untouched(parsed):
    t = parsed["table"]
    months = pd.DatetimeIndex(sorted(t["month"].unique()))
    assert len(months) == 93
    assert months[0] == pd.Timestamp("2012-04-01") and months[-1] == pd.Timestamp("2019-12-01")
    kinds = t.groupby(t["month"] >= "2013-04-01")["org_type"].unique().map(set).to_dict()
    assert kinds[False] == {"PCT", "NHS England", "England"}
    assert kinds[True] == {"CCG", "NHS England", "England"}
    assert t["measure"].nunique() == 14
    assert parsed["before"] == parsed["after"]
    assert parsed["after"] == dict(zip(MANIFEST["file"], MANIFEST["sha256"], strict=True))
    assert parsed["seconds"] < 60, parsed["seconds"]
    # The two decimals published for November 2012 are reported, not hidden.
    assert sum("fractional count" in w for w in parsed["warnings"]) == 2


def test_cache_reload_is_fast_and_identical(parsed):
    t0 = time.perf_counter()
    again = load_mar(MAR_DIR, cache=parsed["cache"])
    assert time.perf_counter() - t0 < parsed["seconds"] + 5
    pd.testing.assert_frame_equal(parsed["table"], again, check_dtype=False)


def _england_row_independently(path) -> float:
    """England total non-elective FFCEs read straight from the sheet, by heading."""
    sh = xlrd.open_workbook(path).sheet_by_name("Commissioner")
    for r in range(sh.nrows):
        row = [str(v).strip() for v in sh.row_values(r)]
        if "Total Non-elective G&A Admissions (FFCEs)" in row:
            col = row.index("Total Non-elective G&A Admissions (FFCEs)")
            for rr in range(r + 1, sh.nrows):
                if str(sh.cell_value(rr, 6)).strip() == "England":
                    return float(sh.cell_value(rr, col))
    raise AssertionError(f"no England row in {path}")


def test_england_non_elective_reproduces_published_totals(parsed):
    t = parsed["table"]
    eng = t[(t.measure == "non_elective_admissions") & (t.org_type == "England")]
    by_fy = eng.groupby(_fy(eng["month"]))["value"].sum()
    for fy, total in PUBLISHED_NON_ELECTIVE.items():
        assert by_fy[fy] == total, (fy, by_fy[fy])
    # The years between have no published figure here: check them against a reader
    # that shares no code with the parser, and against the commissioner rows.
    direct = pd.Series(
        {
            m: _england_row_independently(MAR_DIR / f)
            for m, f in zip(MANIFEST["month"], MANIFEST["file"], strict=True)
        }
    )
    direct_fy = direct.groupby(_fy(pd.Series(direct.index, index=direct.index))).sum()
    parts = t[(t.measure == "non_elective_admissions") & (t.org_type != "England")]
    parts_fy = parts.groupby(_fy(parts["month"]))["value"].sum()
    for fy in range(2013, 2019):
        assert by_fy[fy] == pytest.approx(direct_fy[fy], abs=1e-6)
        assert by_fy[fy] == pytest.approx(parts_fy[fy], abs=1e-6)
    # Activity grew every year 2013-14 to 2018-19.
    assert np.all(np.diff(by_fy.loc[2013:2018].to_numpy()) > 0)


def test_crosswalk_agrees_with_codes_in_the_files(parsed):
    t = parsed["table"]
    span = cwm.changes_in_data(t).set_index("code")
    cw = cwm.read_crosswalk()
    first_ccg, last = pd.Timestamp("2013-04-01"), t["month"].max()
    for rec in cw.itertuples():
        before = rec.effective - pd.offsets.MonthBegin(1)
        if rec.kind == "merger":
            assert span.loc[rec.predecessor_code, "last"] == before, rec
            assert span.loc[rec.successor_code, "first"] == rec.effective, rec
        else:
            assert span.loc[rec.predecessor_code, "last"] == last, rec
            assert span.loc[rec.successor_code, "first"] == first_ccg, rec
    # Every code that stops or starts inside the CCG era is in the crosswalk.
    stopped = set(span.index[span["last"] < last])
    started = set(span.index[span["first"] > first_ccg])
    merger = cw[cw["kind"] == "merger"]
    assert stopped == set(merger["predecessor_code"])
    assert started == set(merger["successor_code"])


def test_register_codes_exist_in_the_files(parsed):
    t = parsed["table"]
    names = t[t.org_type == "CCG"].groupby("org_code", observed=True)["org_name"].unique()
    reg = load_register()
    for i, rec in enumerate(reg.areas.itertuples(), start=2):
        assert rec.area in names.index, (i, rec.area)
        assert rec.area_name in set(names[rec.area]), (i, rec.area, rec.area_name)


def test_balanced_panel_april_2013_to_march_2018(parsed):
    t = parsed["table"]
    cw = cwm.read_crosswalk()
    for footprint in ("2017-04", "2018-04"):
        # Every area, no denominators: this checks folding, not the analysis rules.
        p = build_panel(
            MAR_DIR, start="2013-04", end="2018-03", footprint=footprint, cache=parsed["cache"],
            mixed="keep", quality="keep", population=False,
        )
        months = p.groupby("area")["month"].nunique()
        assert (months == 60).all()
        assert not p.isna().drop(columns="start").any().any()
        folded = set(cwm.code_map(footprint, cw))
        assert not folded & set(p["area"])
        # Folding moves counts between codes and never loses or creates any.
        ccg = t[
            (t.org_type == "CCG")
            & (t.measure == "non_elective_admissions")
            & (t.month <= "2018-03-01")
        ]
        pd.testing.assert_series_equal(
            p.groupby("month")["non_elective_admissions"].sum().astype(float),
            ccg.groupby("month")["value"].sum(),
            check_names=False,
        )


def test_april_2018_footprint_panel_keeps_every_site(parsed):
    p = build_panel(MAR_DIR, cache=parsed["cache"], footprint="2018-04", population=False)
    assert p["month"].min() == pd.Timestamp("2013-04-01")
    assert p["month"].max() == pd.Timestamp("2019-03-01")
    assert p.attrs["footprint"] == "2018-04"
    reg = load_register()
    footprint_sites = set(reg.sites.loc[reg.sites.footprint == "area", "site_id"])
    assign = pd.DataFrame(p.attrs["assignments"])
    listed = {s for v in assign["site"] for s in v.split(";")}
    # UEC sites whose areas are all population-based or care-home areas may not define
    # any area's group; every other site must.
    uec_only_shadowed = footprint_sites - listed
    assert all(reg.sites.set_index("site_id").loc[s, "type"] == "UEC" for s in uec_only_shadowed)
    a = assign.set_index("area")
    assert a.loc["13T", "coverage"] == "part"  # Gateshead within Newcastle Gateshead
    assert a.loc["01K", "coverage"] == "part"  # Morecambe Bay within 01K + 01H
    assert a.loc["15E", "group"] == "population_based"  # Modality via Birmingham CrossCity


def test_footprint_before_a_change_in_the_window_is_refused(parsed):
    with pytest.raises(ValueError, match="spans CCG changes"):
        build_panel(MAR_DIR, end="2018-03", footprint="2015-04", cache=parsed["cache"])


def test_known_submission_problems_are_kept_only_on_request(parsed):
    from vanguard.mar.quality import flag_anomalies

    with pytest.warns(UserWarning, match="02T non_elective_admissions 2017-05..2017-07"):
        p = build_panel(MAR_DIR, cache=parsed["cache"], quality="keep", population=False)
    f = flag_anomalies(p, ["non_elective_admissions"])
    cal = f[f["area"] == "02T"]
    assert cal["month"].dt.strftime("%Y-%m").tolist() == ["2017-05", "2017-06", "2017-07"]
    assert (p.groupby("area")["month"].nunique() == 60).all()


# --- the headline panel: footprint, mixed areas, data-quality rule, denominators --------

HAVE_POPULATION = all(
    (population.population_dir() / f).is_file()
    for f in population.read_population_manifest()["file"]
)


@pytest.fixture(scope="module")
def headline(parsed):
    if not HAVE_POPULATION:
        pytest.skip("population tables not found")
    return build_panel(MAR_DIR, cache=parsed["cache"])


def test_headline_panel_is_on_the_april_2017_footprint(headline):
    assert headline.attrs["footprint"] == "2017-04"
    assert headline.attrs["window"] == ["2013-04", "2018-03"]
    assert (headline.groupby("area")["month"].nunique() == 60).all()
    areas = pd.DataFrame(headline.attrs["areas"]).set_index("area")
    assert len(areas) == 206  # 211 CCGs of 2013, less 2 + 2 merged away and 01H into 01K
    assert "15E" not in areas.index
    assert areas.loc["13P", "members"] == "13P"  # Birmingham CrossCity on its own


def test_no_headline_treated_unit_contains_a_control_ccg(headline):
    areas = pd.DataFrame(headline.attrs["areas"])
    inside = areas[areas["in_panel"]]
    for rec in inside.itertuples():
        roles = set(rec.member_groups.split(";"))
        assert roles == {rec.group}, (rec.area, rec.members, rec.member_groups)
    panel_groups = headline.drop_duplicates("area").set_index("area")["group"]
    assert set(panel_groups.index) == set(inside["area"])
    assert (panel_groups == inside.set_index("area")["group"]).all()
    # The folds the window forces that take in control population are marked and out.
    out = areas.set_index("area")
    assert out.loc["13T", "mixed"] and not out.loc["13T", "in_panel"]  # Gateshead + Newcastle
    assert out.loc["01K", "mixed"] and not out.loc["01K", "in_panel"]  # + North Cumbria
    assert not out.loc["14L", "mixed"]  # three control CCGs


def test_birmingham_and_solihull_is_never_a_treated_unit(parsed):
    p = build_panel(MAR_DIR, cache=parsed["cache"], footprint="2018-04", population=False)
    areas = pd.DataFrame(p.attrs["areas"]).set_index("area")
    assert areas.loc["15E", "members"].split(";") == ["04X", "05P", "13P"]
    assert areas.loc["15E", "mixed"] and not areas.loc["15E", "in_panel"]
    assert "15E" not in set(p["area"])


def test_data_quality_rule_hits_named_problems_in_every_group(headline):
    areas = pd.DataFrame(headline.attrs["areas"]).set_index("area")
    failed = areas[areas["quality_months"] > 0]
    assert set(failed.index) == {"02T", "03A", "05P", "07Y", "11M", "13P"}
    assert set(failed["group"]) == {"population_based", "uec", "control"}
    assert not set(failed.index) & set(headline["area"])
    hits = pd.DataFrame(headline.attrs["quality"])
    heft = hits[(hits["area"] == "05P") & (hits["outcome"] == "non_elective_admissions")]
    assert heft["month"].min() == "2014-07" and heft["month"].max() == "2015-03"


def test_flow_table_adds_up(headline):
    from vanguard.mar.areas import flow_table

    flow = flow_table(headline.attrs["areas"], load_register()).set_index(["step", "group"])
    n = flow["n"]
    per_group = headline.drop_duplicates("area")["group"].value_counts()
    for g in ("population_based", "care_home", "both", "uec", "control"):
        assert n["panel areas", g] == per_group.get(g, 0)
    assert n.xs("analysis areas", level="step").sum() == 206
    assert n["panel areas", "population_based"] == 24
    assert n["panel areas", "care_home"] == 4


def test_headline_panel_carries_rates_denominators(headline):
    pop = headline.drop_duplicates("area")
    assert (headline["population"] > 0).all()
    assert (headline["population_75plus"] < headline["population_65plus"]).all()
    assert (headline["population_65plus"] < headline["population"]).all()
    rate = (headline["non_elective_admissions"] / headline["population"] * 1000).median()
    # Morciano et al. 2021: about 7.5-7.9 emergency admissions per 1,000 a month
    # before the programme; non-elective FFCEs run a little above emergency admissions.
    assert 7 < rate < 11, rate
    assert len(pop) == headline["area"].nunique()


def test_load_panel_passes_the_mar_options(parsed):
    from vanguard import panel as panel_mod

    if not HAVE_POPULATION:
        pytest.skip("population tables not found")
    p = panel_mod.load_panel("nhs_mar", outcomes=["non_elective_admissions"], mixed="keep",
                             quality="keep", cache=parsed["cache"])
    assert p["area"].nunique() == 206
    assert {"population", "population_65plus", "population_75plus"} <= set(p.columns)
    with pytest.raises(ValueError, match="options of the nhs_mar source only"):
        panel_mod.load_panel("synthetic", mixed="keep")


def test_notes_name_the_non_submissions_the_rule_finds(headline):
    from vanguard.mar.quality import read_notes

    notes = read_notes(MAR_DIR)
    heft = notes[(notes["code"] == "RR1") & (notes["kind"] == "did not submit")]
    heft_months = sorted(heft["month"].dt.strftime("%Y-%m"))
    assert heft_months == [m.strftime("%Y-%m") for m in pd.date_range("2014-07", "2015-03",
                                                                       freq="MS")]
    hits = pd.DataFrame(headline.attrs["quality"])
    solihull = hits[(hits["area"] == "05P") & (hits["outcome"] == "non_elective_admissions")]
    assert sorted(solihull["month"]) == heft_months
    glos = notes[(notes["code"] == "RTE") & (notes["kind"] == "did not submit")]
    gloucestershire = set(hits.loc[hits["area"] == "11M", "month"])
    assert set(glos["month"].dt.strftime("%Y-%m")) <= gloucestershire
    assert notes["text"].str.contains("Calderdale and Huddersfield").any()


def test_sensitivity_panels_change_exactly_the_areas_their_rules_name(parsed, headline):
    from vanguard import sensitivity

    areas = pd.DataFrame(headline.attrs["areas"])
    built = {v.key: v for v in sensitivity.variants(
        headline, areas=areas,
        rebuild=sensitivity.real_data_rebuild(cache=parsed["cache"]))}
    in_panel = set(headline["area"])
    part = set(areas.loc[areas["coverage"] == "part", "area"]) & in_panel
    assert part and set(built["whole_ccg_only"].panel["area"]) == in_panel - part
    # each partly covering site of the panel is left out once
    assert {k for k in built if k.startswith("without_site_")} == {
        f"without_site_{s}" for s in ("3", "13", "14", "17", "20", "22", "24")}
    for key, reason in (("mixed_kept", "mixed"), ("anomalies_kept", "data-quality rule")):
        named = set(areas.loc[areas["reason"] == reason, "area"])
        assert named, reason
        assert set(built[key].panel["area"]) - in_panel == named, key
    aged = built["per_1000_aged_75plus"].panel
    assert (aged["population"] == headline["population_75plus"]).all()


def test_sustainability_panel_runs_to_december_2019_without_mixed_treated_units(parsed):
    from vanguard import sensitivity

    if not HAVE_POPULATION:
        pytest.skip("population tables not found")
    longer, why = sensitivity.sustainability_panel(None, "nhs_mar", cache=parsed["cache"])
    assert why == "" and longer.attrs["footprint"] == "2019-04"
    assert longer["month"].min() == pd.Timestamp("2013-04") and (
        longer["month"].max() == pd.Timestamp("2019-12"))
    inside = pd.DataFrame(longer.attrs["areas"])
    inside = inside[inside["in_panel"]]
    for rec in inside.itertuples():
        assert set(rec.member_groups.split(";")) == {rec.group}, (rec.area, rec.members)
    assert sensitivity.sustainability_windows(longer)[-1] == ("sustainability", 36, 57)
