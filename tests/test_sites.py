"""Site register: validation, group assignment, and the committed real register."""

from __future__ import annotations

import pandas as pd
import pytest

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.sites import (
    AREA_COLUMNS,
    SITE_COLUMNS,
    area_assignments,
    load_register,
)

SITES = [
    # site_id, type, wave, announced, start_month, name, footprint, source_url, note
    ("P1", "PACS", "1", "2015-03-10", "2015-04", "Pop one", "area", "", ""),
    ("M1", "MCP", "1", "2015-03-10", "2015-04", "Pop two", "area", "", ""),
    ("E1", "EHCH", "1", "2015-03-10", "2015-04", "Care one", "area", "", ""),
    ("U1", "UEC", "2", "2015-07-24", "2015-08", "Urgent one", "area", "", ""),
    ("A1", "ACC", "3", "2015-09-25", "2015-10", "Acute one", "none", "", ""),
]
AREAS = [
    # site_id, area, area_name, coverage, evidence
    ("P1", "X01", "x1", "whole", "e"),
    ("M1", "X02", "x2", "part", "e"),
    ("E1", "X02", "x2", "whole", "e"),  # X02: MCP + EHCH -> both, part
    ("E1", "X03", "x3", "whole", "e"),  # X03: EHCH + UEC -> care_home
    ("U1", "X03", "x3", "whole", "e"),
    ("U1", "X04", "x4", "whole", "e"),  # X04: UEC only
    ("U1", "X01", "x1", "part", "e"),  # X01: PACS (whole) + UEC (part) -> pop, whole
]


def _write(tmp_path, sites=SITES, areas=AREAS, site_cols=SITE_COLUMNS, area_cols=AREA_COLUMNS):
    s = tmp_path / "sites.csv"
    a = tmp_path / "areas.csv"
    pd.DataFrame(sites, columns=site_cols).to_csv(s, index=False)
    pd.DataFrame(areas, columns=area_cols).to_csv(a, index=False)
    return s, a


def _edit(rows, i, col, value, cols=SITE_COLUMNS):
    rows = [list(r) for r in rows]
    rows[i][list(cols).index(col)] = value
    return [tuple(r) for r in rows]


def test_assignment_groups_starts_sites_and_coverage(tmp_path):
    reg = load_register(*_write(tmp_path))
    a = area_assignments(reg).set_index("area")
    assert list(a.reset_index().columns) == [
        "area",
        "group",
        "start",
        "site",
        "site_types",
        "coverage",
    ]
    assert a.loc["X01", "group"] == schema.POPULATION_BASED
    assert a.loc["X02", "group"] == schema.BOTH
    assert a.loc["X03", "group"] == schema.CARE_HOME
    assert a.loc["X04", "group"] == schema.UEC
    # UEC membership of X01 is partial but does not define its group.
    assert a.loc["X01", "coverage"] == "whole"
    assert a.loc["X02", "coverage"] == "part"
    assert a.loc["X02", "site"] == "M1;E1" or a.loc["X02", "site"] == "E1;M1"
    assert a.loc["X03", "site"] == "E1" and a.loc["X03", "site_types"] == "EHCH;UEC"
    assert a.loc["X01", "site_types"] == "PACS;UEC"
    assert a.loc["X04", "start"] == pd.Timestamp("2015-08-01")
    assert a.loc["X03", "start"] == pd.Timestamp("2015-04-01")
    assert "A1" not in ";".join(a["site"])


def test_both_takes_earliest_start(tmp_path):
    sites = _edit(SITES, 2, "start_month", "2015-06")
    a = area_assignments(load_register(*_write(tmp_path, sites=sites))).set_index("area")
    assert a.loc["X02", "start"] == pd.Timestamp("2015-04-01")
    assert a.loc["X03", "start"] == pd.Timestamp("2015-06-01")


def test_numeric_site_ids_sort_numerically(tmp_path):
    sites = [
        ("10", "MCP", "1", "2015-03-10", "2015-04", "a", "area", "", ""),
        ("9", "EHCH", "1", "2015-03-10", "2015-04", "b", "area", "", ""),
    ]
    areas = [("10", "Z1", "z", "whole", ""), ("9", "Z1", "z", "whole", "")]
    a = area_assignments(load_register(*_write(tmp_path, sites=sites, areas=areas)))
    assert a["site"].item() == "9;10"


def test_unknown_area_code_names_register_row(tmp_path):
    reg = load_register(*_write(tmp_path))
    with pytest.raises(DataError, match=r"areas\.csv: row 7, column 'area'.*'X04'"):
        area_assignments(reg, known_areas={"X01", "X02", "X03"})


@pytest.mark.parametrize(
    "i, col, value, message",
    [
        (1, "type", "PAC", r"row 3, column 'type'.*PACS, MCP"),
        (0, "announced", "2015-13-10", r"row 2, column 'announced'.*YYYY-MM-DD"),
        (0, "start_month", "April 2015", r"row 2, column 'start_month'.*YYYY-MM"),
        (0, "start_month", "2015-02", r"row 2, column 'start_month'.*after the announcement"),
        (1, "site_id", "P1", r"row 3, column 'site_id'.*once"),
        (2, "footprint", "region", r"row 4, column 'footprint'"),
        (4, "footprint", "area", r"row 6, column 'footprint'.*acute care"),
        (3, "wave", "two", r"row 5, column 'wave'"),
        (3, "name", "", r"row 5, column 'name'"),
    ],
)
def test_bad_sites_file(tmp_path, i, col, value, message):
    s, a = _write(tmp_path, sites=_edit(SITES, i, col, value))
    with pytest.raises(DataError, match=r"sites\.csv: " + message):
        load_register(s, a)


@pytest.mark.parametrize(
    "i, col, value, message",
    [
        (0, "coverage", "most", r"row 2, column 'coverage'.*whole, part"),
        (1, "site_id", "Q9", r"row 3, column 'site_id'.*listed in sites\.csv"),
        (2, "site_id", "A1", r"row 4, column 'site_id'.*footprint is 'none'"),
        (5, "area", "X03", r"row 7, column 'area'.*once"),
        (3, "area", "", r"row 5, column 'area'"),
    ],
)
def test_bad_areas_file(tmp_path, i, col, value, message):
    s, a = _write(tmp_path, areas=_edit(AREAS, i, col, value, AREA_COLUMNS))
    with pytest.raises(DataError, match=r"areas\.csv: " + message):
        load_register(s, a)


def test_missing_column(tmp_path):
    cols = [c if c != "coverage" else "cover" for c in AREA_COLUMNS]
    s, a = _write(tmp_path, area_cols=cols)
    with pytest.raises(DataError, match=r"areas\.csv: row 1, column 'coverage'"):
        load_register(s, a)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_register(tmp_path / "a.csv", tmp_path / "b.csv")


# --- the committed register -------------------------------------------------------------


def test_real_register_has_all_50_vanguards():
    reg = load_register()
    counts = reg.sites["type"].value_counts().to_dict()
    assert counts == {"PACS": 9, "MCP": 14, "EHCH": 6, "UEC": 8, "ACC": 13}
    assert list(reg.sites["site_id"]) == [str(i) for i in range(1, 51)]
    starts = reg.sites.groupby("type")["start_month"].unique().map(list).to_dict()
    assert starts["PACS"] == [pd.Timestamp("2015-04-01")]
    assert starts["UEC"] == [pd.Timestamp("2015-08-01")]
    assert starts["ACC"] == [pd.Timestamp("2015-10-01")]
    assert set(reg.sites.loc[reg.sites["type"] == "ACC", "footprint"]) == {"none"}
    # Every site with an area footprint has at least one area.
    with_fp = set(reg.sites.loc[reg.sites["footprint"] == "area", "site_id"])
    assert with_fp == set(reg.areas["site_id"])


def test_real_register_matches_reference_list():
    ref = config.ROOT.parent / "shared" / "reference" / "vanguard_sites.csv"
    if not ref.is_file():
        pytest.skip("shared reference list not present")
    want = pd.read_csv(ref, dtype=str, keep_default_na=False)
    got = load_register().sites
    assert list(got["site_id"]) == list(want["nhse_number"])
    assert list(got["name"]) == list(want["name"])
    assert list(got["type"]) == list(want["type"])
    assert list(got["announced"].dt.strftime("%Y-%m-%d")) == list(want["announced"])


def test_real_register_groups_are_visible():
    a = area_assignments(load_register()).set_index("area")
    # Wakefield: West Wakefield MCP and the Wakefield care-home vanguard.
    assert a.loc["03R", "group"] == schema.BOTH
    assert a.loc["03R", "site_types"] == "MCP;EHCH;UEC"
    assert a.loc["12F", "group"] == schema.POPULATION_BASED
    assert a.loc["08T", "group"] == schema.CARE_HOME
    assert a.loc["99Q", "group"] == schema.UEC


def test_data_log_checksums_match_committed_files():
    import re

    from vanguard.io import sha256_file

    log = (config.DATA_RAW / "README.md").read_text(encoding="utf-8")
    for name in (
        "vanguard_sites.csv",
        "vanguard_site_ccgs.csv",
        "nhs_mar_manifest.csv",
        "ccg_crosswalk.csv",
    ):
        row = next(line for line in log.splitlines() if line.startswith(f"| `{name}`"))
        logged = re.findall(r"`([0-9a-f]{64})`", row)
        assert logged == [sha256_file(config.DATA_RAW / name)], name
