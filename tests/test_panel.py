"""The panel contract and loader: every source, and a clear DataError for bad input."""

from __future__ import annotations

import shutil
import sys
import types

import numpy as np
import pandas as pd
import pytest

from vanguard import config, schema, synthetic
from vanguard.errors import DataError
from vanguard.io import sha256_file
from vanguard.panel import load_panel, read_table, validate_panel

OUTCOMES = list(synthetic.OUTCOMES)
HEADER = "area,month,population,emergency_admissions,bed_days,ae_attendances"


@pytest.fixture()
def custom(tmp_path, synthetic_panel):
    """A small custom dataset: 12 areas (4 treated) x 2013-04..2016-03 + its register."""
    reg_areas = pd.read_csv(config.SYNTHETIC_DIR / "site_areas.csv", dtype=str)
    reg_sites = pd.read_csv(config.SYNTHETIC_DIR / "sites.csv", dtype=str, keep_default_na=False)
    treated = sorted(reg_areas.groupby(reg_areas["site_id"].str[:3])["area"].first())
    controls = sorted(
        set(synthetic_panel.loc[synthetic_panel[schema.GROUP] == schema.CONTROL, schema.AREA])
    )[:8]
    areas = treated + controls
    p = synthetic_panel[
        synthetic_panel[schema.AREA].isin(areas)
        & synthetic_panel[schema.MONTH].between("2013-04-01", "2016-03-01")
    ]
    raw = p[[schema.AREA, schema.MONTH, schema.POPULATION, *OUTCOMES]].copy()
    raw[schema.MONTH] = raw[schema.MONTH].dt.strftime("%Y-%m")
    raw[schema.POPULATION] = raw[schema.POPULATION].astype(int)
    path = tmp_path / "panel.csv"
    raw.to_csv(path, index=False, lineterminator="\n")
    keep = reg_areas[reg_areas["area"].isin(treated)]
    sites_path, areas_path = tmp_path / "sites.csv", tmp_path / "site_areas.csv"
    reg_sites[reg_sites["site_id"].isin(keep["site_id"])].to_csv(sites_path, index=False)
    keep.to_csv(areas_path, index=False)
    expected = p.reset_index(drop=True)
    return types.SimpleNamespace(
        path=path, sites=sites_path, areas=areas_path, expected=expected, raw=raw, tmp=tmp_path
    )


def _load(c, path=None, **kw):
    return load_panel(
        "custom",
        path=path or c.path,
        sites_path=kw.pop("sites", c.sites),
        areas_path=kw.pop("areas", c.areas),
        **kw,
    )


def _write_lines(c, lines: list[str], name="bad.csv"):
    path = c.tmp / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _lines(c) -> list[str]:
    return c.path.read_text(encoding="utf-8").splitlines()


# --- happy paths ---------------------------------------------------------------------------


def test_synthetic_panel_matches_generator(synthetic_panel, synthetic_data):
    pd.testing.assert_frame_equal(synthetic_panel, synthetic_data.panel)
    assert synthetic_panel.attrs["data_source"] == "synthetic"
    assert list(synthetic_panel.columns) == [
        schema.AREA,
        schema.MONTH,
        schema.POPULATION,
        *OUTCOMES,
        schema.GROUP,
        schema.START,
        schema.SITE,
    ]


def test_custom_csv_with_register(custom):
    df = _load(custom)
    assert df.attrs["data_source"] == "custom"
    pd.testing.assert_frame_equal(df, custom.expected, check_exact=True)
    assert df[schema.GROUP].value_counts()[schema.CONTROL] == 8 * 36


def test_custom_parquet_and_outcome_selection(custom):
    pq = custom.tmp / "panel.parquet"
    custom.raw.to_parquet(pq, index=False)
    df = _load(custom, path=pq, outcomes=["bed_days"])
    assert list(df.columns) == [
        schema.AREA,
        schema.MONTH,
        schema.POPULATION,
        "bed_days",
        schema.GROUP,
        schema.START,
        schema.SITE,
    ]
    pd.testing.assert_series_equal(df["bed_days"], custom.expected["bed_days"])


def test_custom_file_with_treatment_columns_needs_no_register(custom):
    full = custom.expected.copy()
    full[schema.MONTH] = full[schema.MONTH].dt.strftime("%Y-%m-%d")
    full[schema.START] = full[schema.START].dt.strftime("%Y-%m").fillna("")
    path = custom.tmp / "full.csv"
    full.to_csv(path, index=False)
    df = load_panel("custom", path=path)
    pd.testing.assert_frame_equal(df, custom.expected)


def test_validate_panel_accepts_in_memory_panel_and_keeps_attrs(synthetic_panel):
    shuffled = synthetic_panel.sample(frac=1.0, random_state=3)
    shuffled.attrs["data_source"] = "synthetic"
    out = validate_panel(shuffled)
    pd.testing.assert_frame_equal(out, synthetic_panel)
    assert out.attrs["data_source"] == "synthetic"


def test_nhs_mar_source_delegates_to_build_panel(custom, monkeypatch):
    calls = {}

    def fake_build_panel(mar_dir=None):
        calls["mar_dir"] = mar_dir
        return custom.raw.copy()

    fake = types.ModuleType("vanguard.mar")
    fake.build_panel = fake_build_panel
    monkeypatch.setitem(sys.modules, "vanguard.mar", fake)
    df = load_panel("nhs_mar", path=custom.tmp, sites_path=custom.sites, areas_path=custom.areas)
    assert calls["mar_dir"] == custom.tmp
    assert df.attrs["data_source"] == "nhs_mar"
    pd.testing.assert_frame_equal(df, custom.expected)


def test_raw_files_are_not_modified(custom):
    files = [config.SYNTHETIC_DIR / n for n in ("panel.csv", "sites.csv", "site_areas.csv")]
    files += [custom.path, custom.sites, custom.areas]
    before = {f: (sha256_file(f), f.stat().st_mtime_ns) for f in files}
    load_panel("synthetic")
    _load(custom)
    assert {f: (sha256_file(f), f.stat().st_mtime_ns) for f in files} == before


def test_unknown_source():
    with pytest.raises(ValueError, match="source"):
        load_panel("excel")


# --- bad input: one DataError each, naming file, row and column -----------------------------


def test_missing_file(custom):
    with pytest.raises(DataError, match="no_such.csv.*an existing file"):
        _load(custom, path=custom.tmp / "no_such.csv")


def test_empty_file(custom):
    path = custom.tmp / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty.csv.*empty file"):
        _load(custom, path=path)
    header_only = _write_lines(custom, [HEADER], "header.csv")
    with pytest.raises(DataError, match="header.csv: row 2.*at least one data row"):
        _load(custom, path=header_only)


def test_wrong_delimiter(custom):
    path = _write_lines(custom, [line.replace(",", ";") for line in _lines(custom)])
    with pytest.raises(DataError, match=r"bad.csv: row 1: expected comma-separated.*';'"):
        _load(custom, path=path)


def test_non_utf8_encoding(custom):
    lines = _lines(custom)
    lines[3] = lines[3].replace(lines[3].split(",")[0], "Sé01")
    path = custom.tmp / "latin1.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(DataError, match="latin1.csv: row 4: expected UTF-8"):
        _load(custom, path=path)


def test_missing_or_renamed_column(custom):
    lines = _lines(custom)
    lines[0] = lines[0].replace("month", "period")
    with pytest.raises(DataError, match="row 1, column 'month': expected a column named 'month'"):
        _load(custom, path=_write_lines(custom, lines))
    with pytest.raises(DataError, match="column 'beds': expected a column named 'beds'"):
        _load(custom, outcomes=["beds"])


def _replace_field(c, row: int, column: str, value: str):
    """Copy of the custom file with one field changed; ``row`` as a spreadsheet row."""
    lines = _lines(c)
    cols = lines[0].split(",")
    fields = lines[row - 1].split(",")
    fields[cols.index(column)] = value
    lines[row - 1] = ",".join(fields)
    return _write_lines(c, lines)


def test_non_numeric_count(custom):
    path = _replace_field(custom, 17, "bed_days", "12a")
    with pytest.raises(
        DataError,
        match=r"bad.csv: row 17, column 'bed_days': expected a "
        r"number; found '12a'",
    ):
        _load(custom, path=path)


def test_missing_count(custom):
    path = _replace_field(custom, 9, "ae_attendances", "")
    with pytest.raises(DataError, match=r"row 9, column 'ae_attendances': expected a number"):
        _load(custom, path=path)


def test_negative_count(custom):
    path = _replace_field(custom, 23, "emergency_admissions", "-4")
    with pytest.raises(
        DataError,
        match=r"row 23, column 'emergency_admissions': expected a "
        r"non-negative number; found -4",
    ):
        _load(custom, path=path)


def test_duplicate_area_month(custom):
    lines = _lines(custom)
    lines.append(lines[5])
    area, month = lines[5].split(",")[:2]
    n = len(lines)
    with pytest.raises(
        DataError,
        match=rf"row {n}: expected one row per area and month; found \"area '{area}', "
        rf"month {month} again \(first on row 6\)",
    ):
        _load(custom, path=_write_lines(custom, lines))


def test_gap_in_months(custom):
    lines = _lines(custom)
    del lines[10]  # row 11 of the file: the 10th month of the first area
    area = lines[1].split(",")[0]
    missing = lines[9].split(",")[1]
    with pytest.raises(
        DataError,
        match=rf"row 11, column 'month': expected consecutive "
        rf"months for area '{area}'.*found '\d{{4}}-\d\d "
        rf"missing",
    ) as exc:
        _load(custom, path=_write_lines(custom, lines))
    assert exc.value.row == 11
    assert missing < exc.value.found[:7]


def test_unparseable_month(custom):
    path = _replace_field(custom, 30, "month", "Sept 2014")
    with pytest.raises(DataError, match=r"row 30, column 'month': expected a month as YYYY-MM"):
        _load(custom, path=path)


def test_unknown_area_in_register(custom):
    areas = pd.read_csv(custom.areas, dtype=str)
    areas.loc[2, "area"] = "X999"
    areas.to_csv(custom.areas, index=False)
    with pytest.raises(DataError, match=r"site_areas.csv: row 4, column 'area'.*'X999'"):
        _load(custom)


def test_site_start_outside_data_months(custom):
    sites = pd.read_csv(custom.sites, dtype=str, keep_default_na=False)
    sites.loc[1, "announced"] = "2016-05-01"
    sites.loc[1, "start_month"] = "2016-06"
    sites.to_csv(custom.sites, index=False)
    with pytest.raises(
        DataError,
        match=r"sites.csv: row 3, column 'start_month': expected a "
        r"start month after 2013-04 and no later than "
        r"2016-03.*'2016-06'",
    ):
        _load(custom)


def test_register_and_treatment_columns_together(custom):
    full = custom.expected.copy()
    full.to_csv(custom.tmp / "full.csv", index=False)
    with pytest.raises(DataError, match="no treatment columns when a site register is given"):
        _load(custom, path=custom.tmp / "full.csv")
    with pytest.raises(DataError, match="or a site register"):
        load_panel("custom", path=custom.path)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (
            # any name is a user's treatment group; a label that is not a name is refused
            lambda d: d.assign(group=d[schema.GROUP].replace(schema.UEC, "urgent care")),
            r"column 'group': expected a treatment group name",
        ),
        (
            lambda d: d.assign(start=d[schema.START].where(d[schema.GROUP] != schema.UEC)),
            r"column 'start': expected a start month for a treated area",
        ),
        (
            lambda d: d.assign(population=-d[schema.POPULATION]),
            r"row 2, column 'population': expected a positive number",
        ),
        (
            lambda d: d.assign(month=d[schema.MONTH] + pd.Timedelta(days=1)),
            r"row 2, column 'month': expected the first day of a month",
        ),
    ],
)
def test_in_memory_contract_violations(synthetic_panel, change, pattern):
    with pytest.raises(DataError, match=pattern) as exc:
        validate_panel(change(synthetic_panel.copy()), "memory")
    assert exc.value.file == "memory"


def test_inconsistent_treatment_within_area(synthetic_panel):
    df = synthetic_panel.copy()
    df.loc[5, schema.SITE] = "OTHER"
    with pytest.raises(DataError, match=r"row 7, column 'site': expected one site per area"):
        validate_panel(df)


def test_read_table_rejects_ragged_lines(custom):
    lines = _lines(custom)
    lines[4] += ",1,2"
    with pytest.raises(DataError, match=r"bad.csv: row 5: expected 6 fields, as in the header"):
        read_table(_write_lines(custom, lines))


def test_copy_of_synthetic_loads_as_custom(tmp_path, synthetic_panel):
    for name in ("panel.csv", "sites.csv", "site_areas.csv"):
        shutil.copy(config.SYNTHETIC_DIR / name, tmp_path / name)
    df = load_panel(
        "custom",
        path=tmp_path / "panel.csv",
        sites_path=tmp_path / "sites.csv",
        areas_path=tmp_path / "site_areas.csv",
    )
    assert df.attrs["data_source"] == "custom"
    np.testing.assert_array_equal(df["bed_days"], synthetic_panel["bed_days"])


def test_missing_area_code_in_memory(synthetic_panel):
    df = synthetic_panel.copy()
    df[schema.AREA] = df[schema.AREA].astype(object)
    df.loc[3, schema.AREA] = None
    with pytest.raises(DataError, match=r"row 5, column 'area': expected an area code"):
        validate_panel(df)
