"""CCG crosswalk: folding counts and register areas, on planted tables."""

from __future__ import annotations

import pandas as pd
import pytest

from vanguard.errors import DataError
from vanguard.mar import crosswalk as cwm

CW = pd.DataFrame(
    [
        # A1 + A2 merge into AM (2015-04); AM and B1 merge into ZZ (2018-04);
        # population moves from C1 to C2 in 2017-04 (both continue).
        ("A1", "NHS A1 CCG", "AM", "NHS AM CCG", "2015-04-01", "merger", ""),
        ("A2", "NHS A2 CCG", "AM", "NHS AM CCG", "2015-04-01", "merger", ""),
        ("AM", "NHS AM CCG", "ZZ", "NHS ZZ CCG", "2018-04-01", "merger", ""),
        ("B1", "NHS B1 CCG", "ZZ", "NHS ZZ CCG", "2018-04-01", "merger", ""),
        ("C1", "NHS C1 CCG", "C2", "NHS C2 CCG", "2017-04-01", "boundary", ""),
    ],
    columns=cwm.CROSSWALK_COLUMNS,
)


@pytest.fixture
def cw(tmp_path):
    p = tmp_path / "cw.csv"
    CW.to_csv(p, index=False)
    return cwm.read_crosswalk(p)


def _tidy():
    rows = []
    for month, codes in (
        ("2015-03-01", ["A1", "A2", "B1", "C1", "C2", "D1"]),
        ("2015-04-01", ["AM", "B1", "C1", "C2", "D1"]),
    ):
        for k, code in enumerate(codes):
            for measure, base in (("non_elective_admissions", 100), ("elective_total", 10)):
                rows.append(
                    (
                        pd.Timestamp(month),
                        code,
                        f"NHS {code} CCG",
                        "CCG",
                        measure,
                        float(base * (k + 1)),
                    )
                )
    return pd.DataFrame(
        rows, columns=["month", "org_code", "org_name", "org_type", "measure", "value"]
    )


def test_code_map_follows_chains(cw):
    assert cwm.code_map("2015-04", cw) == {"A1": "AM", "A2": "AM"}
    assert cwm.code_map("2018-04", cw) == {
        "A1": "ZZ",
        "A2": "ZZ",
        "AM": "ZZ",
        "B1": "ZZ",
        "C1": "C2",
    }
    assert cwm.code_map("2015-03", cw) == {}


def test_fold_tidy_sums_predecessors(cw):
    t = _tidy()
    f = cwm.fold(t, "2015-04", cw)
    em = f[f.measure == "non_elective_admissions"].set_index(["month", "org_code"])["value"]
    # March: A1 (100) + A2 (200) -> AM 300; April: AM reported directly (100).
    assert em[(pd.Timestamp("2015-03-01"), "AM")] == 300
    assert em[(pd.Timestamp("2015-04-01"), "AM")] == 100
    assert "A1" not in set(f.org_code)
    assert f.loc[f.org_code == "AM", "org_name"].unique().tolist() == ["NHS AM CCG"]
    # Totals are preserved month by month and measure by measure.
    pd.testing.assert_series_equal(
        t.groupby(["month", "measure"])["value"].sum(),
        f.groupby(["month", "measure"])["value"].sum(),
    )
    # Untouched areas stay as they were.
    d1 = f[(f.org_code == "D1")].sort_values(["month", "measure"])["value"].to_numpy()
    assert list(d1) == list(t[t.org_code == "D1"].sort_values(["month", "measure"])["value"])


def test_fold_boundary_change_combines_both_codes(cw):
    f = cwm.fold(_tidy(), "2018-04", cw)
    em = f[f.measure == "non_elective_admissions"].set_index(["month", "org_code"])["value"]
    # 2015-03: C1 = 400, C2 = 500 -> C2 = 900; ZZ = A1+A2+B1 = 100+200+300.
    assert em[(pd.Timestamp("2015-03-01"), "C2")] == 900
    assert em[(pd.Timestamp("2015-03-01"), "ZZ")] == 600
    assert em[(pd.Timestamp("2015-04-01"), "ZZ")] == 100 + 200
    assert set(f.org_code) == {"ZZ", "C2", "D1"}


def test_fold_wide_table(cw):
    wide = pd.DataFrame(
        {
            "area": ["A1", "A2", "D1"],
            "month": pd.Timestamp("2015-03-01"),
            "non_elective_admissions": [1, 2, 4],
            "group": "control",
        }
    )
    f = cwm.fold(wide, "2015-04", cw)
    assert f.set_index("area")["non_elective_admissions"].to_dict() == {"AM": 3, "D1": 4}


def test_fold_areas_coverage(cw):
    areas = pd.DataFrame(
        [
            ("s1", "A1", "a1", "whole", "ev"),  # one of two predecessors -> part
            ("s2", "A1", "a1", "whole", "ev"),  # both predecessors, whole -> whole
            ("s2", "A2", "a2", "whole", "ev"),
            ("s3", "AM", "am", "whole", "ev"),  # the merged code itself -> whole
            ("s4", "C2", "c2", "whole", "ev"),  # boundary target only -> part
            ("s5", "C1", "c1", "whole", "ev"),  # both halves of boundary -> whole
            ("s5", "C2", "c2", "whole", "ev"),
            ("s6", "D1", "d1", "part", "ev"),  # untouched
        ],
        columns=["site_id", "area", "area_name", "coverage", "evidence"],
    )
    f = cwm.fold_areas(areas, "2017-04", cw).set_index(["site_id", "area"])["coverage"]
    assert f.to_dict() == {
        ("s1", "AM"): "part",
        ("s2", "AM"): "whole",
        ("s3", "AM"): "whole",
        ("s4", "C2"): "part",
        ("s5", "C2"): "whole",
        ("s6", "D1"): "part",
    }


@pytest.mark.parametrize(
    "col, value, message",
    [
        ("kind", "split", r"row 2, column 'kind'"),
        ("effective", "2015-04-15", r"row 2, column 'effective'.*first day"),
        ("successor_code", "A1", r"row 2, column 'successor_code'.*different"),
        ("predecessor_code", "a 1", r"row 2, column 'predecessor_code'"),
    ],
)
def test_bad_crosswalk(tmp_path, col, value, message):
    bad = CW.copy()
    bad.loc[0, col] = value
    p = tmp_path / "cw.csv"
    bad.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"cw\.csv: " + message):
        cwm.read_crosswalk(p)


def test_duplicate_predecessor(tmp_path):
    bad = pd.concat([CW, CW.iloc[[1]]], ignore_index=True)
    p = tmp_path / "cw.csv"
    bad.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"row 7, column 'predecessor_code'.*once"):
        cwm.read_crosswalk(p)


def test_cycle_detected(tmp_path):
    bad = CW.copy()
    bad.loc[len(bad)] = ("ZZ", "z", "A1", "a", "2018-04-01", "merger", "")
    p = tmp_path / "cw.csv"
    bad.to_csv(p, index=False)
    with pytest.raises(DataError, match="no cycles"):
        cwm.code_map("2018-04", cwm.read_crosswalk(p))


def test_committed_crosswalk_reads():
    cw = cwm.read_crosswalk()
    merged = cw[cw["kind"] == "merger"].groupby("effective")["successor_code"].nunique()
    assert merged.to_dict() == {
        pd.Timestamp("2015-04-01"): 1,
        pd.Timestamp("2017-04-01"): 1,
        pd.Timestamp("2018-04-01"): 6,
        pd.Timestamp("2019-04-01"): 2,
    }
