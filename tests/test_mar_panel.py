"""The CCG x month panel, built from small workbooks made here and a planted register."""

from __future__ import annotations

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
    p = build_panel(folder, manifest=man, register=reg, cache=None, end="2013-07")
    assert p.attrs["data_source"] == "nhs_mar"
    assert set(p["area"]) == {"A1A", "B2B", "C3C"}  # CCGs only: no England, no X24
    assert len(p) == 3 * len(MONTHS)
    for m in MONTHS:
        row = p[(p.area == "C3C") & (p.month == pd.Timestamp(m))]
        assert row["emergency_admissions"].item() == org_values(m)["C3C"][NON_ELECTIVE]
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
        build_panel(folder, manifest=man, register=reg, cache=None, end="2013-07")


def test_unbalanced_panel_is_refused(tmp_path, mar):
    folder, man = mar
    orgs = [o for o in ORGS if o[0] != "C3C"]
    vals = {k: v for k, v in org_values("2013-05").items() if k != "C3C"}
    write_mar_xls(folder / file_name("2013-05"), "2013-05", orgs=orgs, values=vals)
    man = write_manifest(folder, MONTHS)
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", "")])
    with pytest.raises(DataError, match="balanced panel.*C3C missing 2013-05"):
        build_panel(folder, manifest=man, register=reg, cache=None, end="2013-07")


def test_window_before_ccgs_is_refused(tmp_path, mar):
    folder, man = mar
    reg = _register(tmp_path, [("1", "A1A", "a", "whole", "")])
    with pytest.raises(ValueError, match="start: expected 2013-04 or later"):
        build_panel(folder, manifest=man, register=reg, cache=None, start="2012-04")
    with pytest.raises(ValueError, match="end: expected 2013-07 or earlier"):
        build_panel(folder, manifest=man, register=reg, cache=None, end="2014-01")


def test_flag_anomalies_finds_planted_dips():
    from vanguard.mar.quality import describe_flags, flag_anomalies

    months = pd.date_range("2014-04-01", periods=12, freq="MS")
    p = pd.DataFrame(
        {
            "area": ["K1"] * 12 + ["K2"] * 12,
            "month": list(months) * 2,
            "emergency_admissions": [1000] * 12 + [500] * 12,
        }
    )
    p.loc[3, "emergency_admissions"] = 90  # K1, 2014-07: 9% of its median
    p.loc[20, "emergency_admissions"] = 1200  # K2, 2014-12: 240%
    p.loc[5, "emergency_admissions"] = 600  # 60%: inside the bounds
    f = flag_anomalies(p)
    assert list(zip(f["area"], f["month"].dt.strftime("%Y-%m"), f["value"], strict=True)) == [
        ("K1", "2014-07", 90),
        ("K2", "2014-12", 1200),
    ]
    assert f["ratio"].round(2).tolist() == [0.09, 2.4]
    assert "K1 emergency_admissions 2014-07" in describe_flags(f)
