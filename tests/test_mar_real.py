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

from vanguard import config
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
    eng = t[(t.measure == "emergency_admissions") & (t.org_type == "England")]
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
    parts = t[(t.measure == "emergency_admissions") & (t.org_type != "England")]
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
        p = build_panel(
            MAR_DIR, start="2013-04", end="2018-03", footprint=footprint, cache=parsed["cache"]
        )
        months = p.groupby("area")["month"].nunique()
        assert (months == 60).all()
        assert not p.isna().drop(columns="start").any().any()
        folded = set(cwm.code_map(footprint, cw))
        assert not folded & set(p["area"])
        # Folding moves counts between codes and never loses or creates any.
        ccg = t[
            (t.org_type == "CCG")
            & (t.measure == "emergency_admissions")
            & (t.month <= "2018-03-01")
        ]
        pd.testing.assert_series_equal(
            p.groupby("month")["emergency_admissions"].sum().astype(float),
            ccg.groupby("month")["value"].sum(),
            check_names=False,
        )


def test_default_panel_keeps_every_site(parsed):
    p = build_panel(MAR_DIR, cache=parsed["cache"])
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


def test_known_submission_problems_are_flagged_not_dropped(parsed):
    from vanguard.mar.quality import flag_anomalies

    with pytest.warns(UserWarning, match="02T emergency_admissions 2017-05..2017-07"):
        p = build_panel(MAR_DIR, cache=parsed["cache"])
    f = flag_anomalies(p, ["emergency_admissions"])
    cal = f[f["area"] == "02T"]
    assert cal["month"].dt.strftime("%Y-%m").tolist() == ["2017-05", "2017-06", "2017-07"]
    assert (p.groupby("area")["month"].nunique() == 72).all()
