"""The CCG x month panel, built from small workbooks made here and a planted register."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("xlwt")

from mar_xls import (  # noqa: E402
    NON_ELECTIVE,
    ORGS,
    file_name,
    make_set,
    org_values,
    write_manifest,
    write_mar_xls,
)

from vanguard import schema  # noqa: E402
from vanguard.errors import DataError  # noqa: E402
from vanguard.mar.panel import build_panel  # noqa: E402
from vanguard.sites import AREA_COLUMNS, SITE_COLUMNS, load_register  # noqa: E402

MONTHS = ["2013-04", "2013-05", "2013-06", "2013-07"]
RAW = {"population": False, "quality": "keep"}
"""The planted codes have no population, and random planted counts trip the quality rule
(tested on its own below)."""

# Random planted counts trip the anomaly warning; it is tested on its own below.
pytestmark = pytest.mark.filterwarnings("ignore:NHS MAR panel:UserWarning")


def _register(tmp_path, areas):
    # Site 1 starts inside the short test window; site 2 after it.
    sites = [
        ("1", "PACS", "1", "2013-05-10", "2013-06", "p", "area", "", ""),
        ("2", "EHCH", "1", "2015-03-10", "2015-04", "e", "area", "", ""),
    ]
    s, a = tmp_path / "sites.csv", tmp_path / "areas.csv"
    pd.DataFrame(sites, columns=SITE_COLUMNS).to_csv(s, index=False)
    pd.DataFrame(areas, columns=AREA_COLUMNS).to_csv(a, index=False)
    return load_register(s, a)


@pytest.fixture
def mar(tmp_path):
    folder = tmp_path / "mar"
    return folder, make_set(folder, MONTHS)


def test_panel_from_workbooks(tmp_path, mar):
    folder, man = mar
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", ""), ("2", "B2B", "b", "part", "")])
    p = build_panel(folder, manifest=man, register=reg, cache=None, **RAW, end="2013-07")
    assert p.attrs["data_source"] == "nhs_mar"
    assert set(p["area"]) == {"A1A", "B2B", "C3C"}  # CCGs only: no England, no X24
    assert len(p) == 3 * len(MONTHS)
    for m in MONTHS:
        row = p[(p.area == "C3C") & (p.month == pd.Timestamp(m))]
        assert row["non_elective_admissions"].item() == org_values(m)["C3C"][NON_ELECTIVE]
    g = p.drop_duplicates("area").set_index("area")
    assert g.loc["A1A", "group"] == schema.POPULATION_BASED
    assert g.loc["A1A", "start"] == pd.Timestamp("2013-06-01")
    assert g.loc["B2B", "group"] == schema.CARE_HOME and g.loc["B2B", "site"] == "2"
    assert g.loc["C3C", "group"] == schema.CONTROL and g.loc["C3C", "site"] == ""
    assert pd.isna(g.loc["C3C", "start"])
    assert pd.DataFrame(p.attrs["assignments"]).set_index("area").loc["B2B", "coverage"] == "part"


def test_unknown_ccg_in_register(tmp_path, mar):
    folder, man = mar
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", ""), ("2", "Q9Q", "q", "whole", "")])
    with pytest.raises(DataError, match=r"areas\.csv: row 3, column 'area'.*'Q9Q'"):
        build_panel(folder, manifest=man, register=reg, cache=None, **RAW, end="2013-07")


def test_unbalanced_panel_is_refused(tmp_path, mar):
    folder, man = mar
    orgs = [o for o in ORGS if o[0] != "C3C"]
    vals = {k: v for k, v in org_values("2013-05").items() if k != "C3C"}
    write_mar_xls(folder / file_name("2013-05"), "2013-05", orgs=orgs, values=vals)
    man = write_manifest(folder, MONTHS)
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", "")])
    with pytest.raises(DataError, match="balanced panel.*C3C missing 2013-05"):
        build_panel(folder, manifest=man, register=reg, cache=None, **RAW, end="2013-07")


def test_window_before_ccgs_is_refused(tmp_path, mar):
    folder, man = mar
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", "")])
    with pytest.raises(ValueError, match="start: expected 2013-04 or later"):
        build_panel(folder, manifest=man, register=reg, cache=None, **RAW, start="2012-04")
    with pytest.raises(ValueError, match="end: expected 2013-07 or earlier"):
        build_panel(folder, manifest=man, register=reg, cache=None, **RAW, end="2014-01")


def test_flag_anomalies_finds_planted_dips():
    from vanguard.mar.quality import describe_flags, flag_anomalies

    months = pd.date_range("2014-04-01", periods=12, freq="MS")
    p = pd.DataFrame(
        {
            "area": ["K1"] * 12 + ["K2"] * 12,
            "month": list(months) * 2,
            "non_elective_admissions": [1000] * 12 + [500] * 12,
        }
    )
    p.loc[3, "non_elective_admissions"] = 90  # K1, 2014-07: 9% of its median
    p.loc[20, "non_elective_admissions"] = 1200  # K2, 2014-12: 240%
    p.loc[5, "non_elective_admissions"] = 600  # 60%: inside the bounds
    f = flag_anomalies(p)
    assert list(zip(f["area"], f["month"].dt.strftime("%Y-%m"), f["value"], strict=True)) == [
        ("K1", "2014-07", 90),
        ("K2", "2014-12", 1200),
    ]
    assert f["ratio"].round(2).tolist() == [0.09, 2.4]
    assert "K1 non_elective_admissions 2014-07" in describe_flags(f)


# --- the data-quality rule, footprints, mixed areas, flow table ---------------------------


def _steady_set(folder, dips):
    """Workbooks with every count 1000, except ``{(code, month): value}`` dips."""
    for m in MONTHS:
        vals = {code: [1000.0] * len(org_values(m)[code]) for code, _ in ORGS}
        for (code, month), v in dips.items():
            if month == m:
                vals[code] = [v] * len(vals[code])
        write_mar_xls(folder / file_name(m), m, values=vals)
    return write_manifest(folder, MONTHS)


def test_quality_rule_drops_treated_and_control_areas_alike(tmp_path):
    folder = tmp_path / "mar"
    folder.mkdir()
    # A1A (treated below) at 30 % of its median in one month, C3C (control) at 40 %.
    man = _steady_set(folder, {("A1A", "2013-05"): 300.0, ("C3C", "2013-06"): 400.0})
    kw = {"manifest": man, "cache": None, "population": False, "end": "2013-07"}
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", "")])
    dropped = build_panel(folder, register=reg, **kw)
    assert set(dropped["area"]) == {"B2B"}
    areas = pd.DataFrame(dropped.attrs["areas"]).set_index("area")
    assert areas.loc["A1A", "reason"] == areas.loc["C3C", "reason"] == "data-quality rule"
    assert areas.loc["A1A", "group"] == schema.POPULATION_BASED
    assert areas.loc["C3C", "group"] == schema.CONTROL
    # Swapping which area is treated changes nothing about what the rule drops.
    tmp2 = tmp_path / "swap"
    tmp2.mkdir()
    swapped = build_panel(folder, register=_register(tmp2, [("1", "C3C", "c", "whole", "")]), **kw)
    assert set(swapped["area"]) == {"B2B"}
    # The sensitivity keeps them, and says so.
    with pytest.warns(UserWarning, match="2 area.*fail the data-quality rule and are kept"):
        kept = build_panel(folder, register=reg, quality="keep", **kw)
    assert set(kept["area"]) == {"A1A", "B2B", "C3C"}
    hits = pd.DataFrame(kept.attrs["quality"])
    assert sorted(set(zip(hits["area"], hits["month"], strict=True))) == [
        ("A1A", "2013-05"),
        ("C3C", "2013-06"),
    ]


def test_quality_hits_ignore_treatment_labels():
    from vanguard.mar.quality import quality_hits

    rng = np.random.default_rng(3)
    months = pd.date_range("2014-04-01", periods=24, freq="MS")
    areas = [f"K{i}" for i in range(10)]
    p = pd.DataFrame(
        [(a, m) for a in areas for m in months], columns=["area", "month"]
    )
    p["non_elective_admissions"] = rng.integers(800, 1200, len(p))
    p.loc[rng.choice(len(p), 6, replace=False), "non_elective_admissions"] = 100
    p["group"] = np.where(p["area"].isin(areas[:3]), "population_based", "control")
    flipped = p.assign(group=np.where(p["group"] == "control", "population_based", "control"))
    a, b = quality_hits(p), quality_hits(flipped)
    assert len(a) == 6
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="threshold"):
        quality_hits(p, threshold=1.5)


def test_unknown_rule_names_are_refused(tmp_path, mar):
    folder, man = mar
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", "")])
    with pytest.raises(ValueError, match="mixed: expected one of"):
        build_panel(folder, manifest=man, register=reg, cache=None, mixed="drop")
    with pytest.raises(ValueError, match="quality: expected one of"):
        build_panel(folder, manifest=man, register=reg, cache=None, quality="mask")


def test_footprint_is_the_latest_change_inside_the_window():
    from vanguard.mar.areas import footprint_for_window

    assert footprint_for_window("2013-04", "2018-03") == pd.Timestamp("2017-04-01")
    assert footprint_for_window("2013-04", "2019-12") == pd.Timestamp("2019-04-01")
    assert footprint_for_window("2013-04", "2018-04") == pd.Timestamp("2018-04-01")
    assert footprint_for_window("2013-04", "2015-03") == pd.Timestamp("2013-04-01")
    # A change in the window's first month is already in force: nothing to fold.
    assert footprint_for_window("2015-04", "2017-03") == pd.Timestamp("2015-04-01")
    with pytest.raises(ValueError, match="precedes"):
        footprint_for_window("2018-03", "2013-04")


def _cw(tmp_path):
    from vanguard.mar.crosswalk import CROSSWALK_COLUMNS, read_crosswalk

    rows = [
        ("A1A", "a", "M9M", "merged", "2013-06-01", "merger", ""),
        ("B2B", "b", "M9M", "merged", "2013-06-01", "merger", ""),
    ]
    f = tmp_path / "cw.csv"
    pd.DataFrame(rows, columns=CROSSWALK_COLUMNS).to_csv(f, index=False)
    return read_crosswalk(f)


def test_a_fold_of_treated_and_control_ccgs_is_mixed(tmp_path):
    from vanguard.mar.areas import area_table, flow_table
    from vanguard.mar.panel import folded_register
    from vanguard.sites import area_assignments

    cw = _cw(tmp_path)
    codes = pd.DataFrame({"org_code": ["A1A", "B2B", "M9M", "C3C", "D4D"]})
    cases = {
        # treated A1A + control B2B -> mixed
        "treated+control": ([("1", "A1A", "a", "whole", "")], True),
        # both members in the site, whole -> not mixed
        "like with like": ([("1", "A1A", "a", "whole", ""), ("1", "B2B", "b", "whole", "")],
                           False),
        # both in the site but one only in part: the rest of B2B is control -> mixed
        "part member": ([("1", "A1A", "a", "whole", ""), ("1", "B2B", "b", "part", "")], True),
    }
    for i, (name, (rows, mixed)) in enumerate(cases.items()):
        d = tmp_path / str(i)
        d.mkdir()
        reg = _register(d, [*rows, ("2", "D4D", "d", "part", "")])
        assign = area_assignments(folded_register(reg, "2013-06", cw))
        t = area_table(codes, "2013-06", reg, assign, cw).set_index("area")
        assert t.loc["M9M", "mixed"] == mixed, name
        assert t.loc["M9M", "group"] == schema.POPULATION_BASED, name
        # A single CCG covered in part is a 'part' area, not a mixed one.
        assert not t.loc["D4D", "mixed"] and t.loc["D4D", "coverage"] == "part"
        assert not t.loc["C3C", "mixed"] and t.loc["C3C", "group"] == schema.CONTROL
    # The flow table counts each step by group.
    t = t.reset_index().assign(
        quality_months=[0, 1, 0, 0][: len(t)], min_ratio=1.0, in_panel=True, reason=""
    )
    t.loc[t["mixed"] | (t["quality_months"] > 0), "in_panel"] = False
    flow = flow_table(t, reg).set_index(["step", "group"])["n"]
    assert flow["analysis areas", schema.POPULATION_BASED] == 1
    assert flow["mixed areas", schema.POPULATION_BASED] == 1
    assert flow["panel areas", schema.POPULATION_BASED] == 0
    assert flow["sites", schema.CARE_HOME] == 1
    for g in schema.GROUPS:
        assert flow["panel areas", g] == (t["in_panel"] & (t["group"] == g)).sum()
    with pytest.raises(ValueError, match="missing"):
        flow_table(t.drop(columns="reason"), reg)


def test_load_panel_passes_mar_options_and_keeps_age_denominators(monkeypatch):
    import sys
    import types

    from vanguard.panel import load_panel

    calls = {}
    months = pd.date_range("2015-04-01", periods=3, freq="MS")

    def fake_build_panel(mar_dir=None, **kw):
        calls.update(kw, mar_dir=mar_dir)
        return pd.DataFrame(
            {
                "area": ["A1A"] * 3,
                "month": months,
                "population": 1000.0,
                "population_65plus": 180.0,
                "population_75plus": 80.0,
                "non_elective_admissions": [9, 8, 10],
                "elective_total": [5, 6, 7],
                "group": "control",
                "start": pd.NaT,
                "site": "",
            }
        )

    fake = types.ModuleType("vanguard.mar")
    fake.build_panel = fake_build_panel
    monkeypatch.setitem(sys.modules, "vanguard.mar", fake)
    p = load_panel("nhs_mar", outcomes=["non_elective_admissions"], end="2019-12", mixed="keep",
                   quality="keep")
    assert calls == {"end": "2019-12", "mixed": "keep", "quality": "keep", "mar_dir": None}
    assert list(p.columns) == ["area", "month", "population", "non_elective_admissions",
                               "population_65plus", "population_75plus", "group", "start",
                               "site"]
    with pytest.raises(ValueError, match="nhs_mar source only"):
        load_panel("synthetic", quality="keep")


def test_windows_are_the_funding_years_and_after():
    from vanguard.mar.windows import HEADLINE, MAR_LAST_MONTH, SUSTAINABILITY, WINDOWS

    assert HEADLINE.months() == (pd.Timestamp("2015-04-01"), pd.Timestamp("2018-03-01"))
    first, last = SUSTAINABILITY.months(data_last=MAR_LAST_MONTH)
    assert first == pd.Timestamp("2018-04-01") == HEADLINE.months()[1] + pd.offsets.MonthBegin(1)
    assert last == pd.Timestamp("2019-12-01")
    with pytest.raises(ValueError, match="open-ended"):
        SUSTAINABILITY.months()
    assert set(WINDOWS) == {"headline", "sustainability"}
