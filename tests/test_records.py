"""Record-level route: DuckDB aggregation checked against planted counts and a pandas
group-by, plus one test per kind of bad input."""

from __future__ import annotations

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

from vanguard.errors import DataError, DataWarning
from vanguard.records import aggregate_records, aggregation_sql, month_range

SPAN = {"start": "2015-01", "end": "2015-06"}
"""The stated period of the planted records."""
JAN = {"start": "2015-01", "end": "2015-01"}


def _planted(seed: int = 7, n: int = 4000) -> pd.DataFrame:
    """Random admissions 2015-01 .. 2015-06 over four areas; area 'Z9' has no March."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 181, n), unit="D")
    hours = pd.to_timedelta(rng.integers(0, 24, n), unit="h")
    area = rng.choice(["001", "01A", "B2", "Z9"], size=n)
    df = pd.DataFrame({"admission_date": days + hours, "area": area, "los": rng.integers(0, 30, n)})
    march = (df["area"] == "Z9") & (df["admission_date"].dt.month == 3)
    return df.loc[~march].reset_index(drop=True)


def _pandas_truth(df: pd.DataFrame) -> pd.DataFrame:
    """Independent aggregation: pandas group-by, then reindex on the full grid."""
    month = df["admission_date"].dt.to_period("M").dt.to_timestamp()
    agg = (
        df.assign(month=month)
        .groupby(["area", "month"])
        .agg(emergency_admissions=("los", "size"), bed_days=("los", "sum"))
    )
    grid = pd.MultiIndex.from_product(
        [sorted(df["area"].unique()), pd.date_range("2015-01-01", "2015-06-01", freq="MS")],
        names=["area", "month"],
    )
    out = agg.reindex(grid, fill_value=0).reset_index()
    out["emergency_admissions"] = out["emergency_admissions"].astype("int64")
    out["bed_days"] = out["bed_days"].astype("float64")
    out["month"] = out["month"].astype("datetime64[ns]")
    return out


def _write_csv(df: pd.DataFrame, path, sep: str = ",") -> None:
    out = df.copy()
    out["admission_date"] = out["admission_date"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index=False, sep=sep)


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    return _planted()


def test_dataframe_matches_pandas_groupby(planted):
    got = aggregate_records(planted, los_col="los", **SPAN)
    pd.testing.assert_frame_equal(got, _pandas_truth(planted))


def test_zero_months_present(planted):
    got = aggregate_records(planted, los_col="los", **SPAN)
    z9 = got[(got["area"] == "Z9") & (got["month"] == "2015-03-01")]
    assert len(z9) == 1
    assert z9["emergency_admissions"].item() == 0
    assert z9["bed_days"].item() == 0.0
    assert len(got) == 4 * 6  # full grid


def test_csv_and_parquet_globs_agree_and_keep_leading_zeros(planted, tmp_path):
    half = len(planted) // 2
    _write_csv(planted.iloc[:half], tmp_path / "part1.csv")
    _write_csv(planted.iloc[half:], tmp_path / "part2.csv")
    planted.iloc[:half].to_parquet(tmp_path / "p1.parquet")
    planted.iloc[half:].to_parquet(tmp_path / "p2.parquet")
    from_csv = aggregate_records(str(tmp_path / "part*.csv"), los_col="los", **SPAN)
    from_pq = aggregate_records(str(tmp_path / "p*.parquet"), los_col="los", **SPAN)
    truth = _pandas_truth(planted)
    pd.testing.assert_frame_equal(from_csv, truth)
    pd.testing.assert_frame_equal(from_pq, truth)
    assert "001" in set(from_csv["area"])  # not read as the integer 1


def test_without_los_has_count_only(planted):
    got = aggregate_records(planted, **SPAN)
    assert list(got.columns) == ["area", "month", "emergency_admissions"]
    assert got["emergency_admissions"].sum() == len(planted)


def test_out_of_range_dropped_with_warning(planted):
    with pytest.warns(UserWarning, match=r"dropped .* outside 2015-02 to 2015-04"):
        got = aggregate_records(planted, los_col="los", start="2015-02", end="2015-04")
    months = planted["admission_date"].dt.to_period("M")
    inside = (months >= pd.Period("2015-02")) & (months <= pd.Period("2015-04"))
    assert got["emergency_admissions"].sum() == int(inside.sum())
    assert sorted(got["month"].dt.strftime("%Y-%m").unique()) == ["2015-02", "2015-03", "2015-04"]


def test_requested_range_wider_than_data_gives_zero_months(planted):
    got = aggregate_records(planted, start="2014-11", end="2015-06")
    early = got[got["month"] < "2015-01-01"]
    assert len(early) == 4 * 2 and early["emergency_admissions"].eq(0).all()


def test_areas_argument_adds_empty_area_and_rejects_unknown(planted):
    got = aggregate_records(planted, areas=["001", "01A", "B2", "Z9", "Q0"], **SPAN)
    assert got.loc[got["area"] == "Q0", "emergency_admissions"].eq(0).all()
    with pytest.raises(DataError, match=r"column 'area'.*listed in 'areas'"):
        aggregate_records(planted, areas=["001", "01A"], **SPAN)


def test_write_parquet_and_csv(planted, tmp_path):
    got = aggregate_records(planted, los_col="los", out=tmp_path / "panel.parquet", **SPAN)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "panel.parquet"), got, check_dtype=False
    )
    aggregate_records(planted, out=tmp_path / "panel.csv", **SPAN)
    csv = pd.read_csv(tmp_path / "panel.csv", dtype={"area": str})
    assert csv["month"].iloc[0] == "2015-01"
    assert not list(tmp_path.glob(".*.tmp"))


def test_sql_is_portable_text_and_runs_on_a_plain_table(planted):
    sql = aggregation_sql("admissions", start="2015-01", end="2015-06", los_col="los")
    for engine_specific in (
        "read_csv",
        "read_parquet",
        "TRY_CAST",
        "generate_series",
        "FILTER (WHERE",
    ):
        assert engine_specific not in sql
    assert '"' not in sql  # plain names stay bare: Spark reads "x" as a string
    con = duckdb.connect()
    con.register("admissions", planted)
    got = con.sql(sql).df()
    assert int(got["emergency_admissions"].sum()) == len(planted)
    assert len(got) == 24


def test_month_range_rejects_reversed():
    assert len(month_range("2015-01-31", "2015-03-01")) == 3
    with pytest.raises(ValueError, match="before start"):
        month_range("2015-05", "2015-01")


# --- bad input ----------------------------------------------------------------------------


def _csv_text(tmp_path, text: str, name: str = "rec.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_column(tmp_path):
    path = _csv_text(tmp_path, "date,area\n2015-01-01,A\n")
    with pytest.raises(DataError, match=r"rec.csv: row 1, column 'admission_date'"):
        aggregate_records(path)


def test_missing_column_dataframe():
    with pytest.raises(DataError, match=r"<DataFrame>: column 'los'"):
        aggregate_records(
            pd.DataFrame({"admission_date": ["2015-01-01"], "area": ["A"]}), los_col="los"
        )


def test_unparseable_date_names_row_deep_in_file(tmp_path):
    lines = ["admission_date,area"] + ["2015-01-05,A"] * 30000 + ["2015-31-12,A"]
    lines += ["2015-02-05,B"] * 10
    path = _csv_text(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        aggregate_records(path)
    assert err.value.row == 30002  # header is row 1
    assert err.value.column == "admission_date"
    assert err.value.found == "2015-31-12"
    assert "rec.csv" in str(err.value)


def test_missing_date_in_parquet_names_row(tmp_path):
    df = pd.DataFrame(
        {"admission_date": ["2015-01-01", None, "2015-01-03"], "area": ["A", "A", "B"]}
    )
    df.to_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataError, match=r"r.parquet: row 3, column 'admission_date'"):
        aggregate_records(tmp_path / "r.parquet")


def test_negative_los(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area,los\n2015-01-01,A,3\n2015-01-02,A,-1\n")
    with pytest.raises(DataError, match=r"row 3, column 'los': expected a non-negative"):
        aggregate_records(path, los_col="los", **JAN)


def test_non_numeric_los(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area,los\n2015-01-01,A,three\n")
    with pytest.raises(DataError, match=r"row 2, column 'los'.*found 'three'"):
        aggregate_records(path, los_col="los", **JAN)


def test_empty_los_warns_and_counts(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area,los\n2015-01-01,A,\n2015-01-02,A,4\n")
    with pytest.warns(UserWarning, match="1 record"):
        got = aggregate_records(path, los_col="los", **JAN)
    assert got["emergency_admissions"].item() == 2 and got["bed_days"].item() == 4.0


def test_blank_area(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area\n2015-01-01,A\n2015-01-02,\n")
    with pytest.raises(DataError, match=r"row 3, column 'area'"):
        aggregate_records(path, **JAN)


def test_empty_file(tmp_path):
    path = _csv_text(tmp_path, "")
    with pytest.raises(DataError, match=r"rec.csv: expected a records file.*0 bytes"):
        aggregate_records(path, **JAN)


def test_header_only_file_among_several(tmp_path):
    _csv_text(tmp_path, "admission_date,area\n2015-01-01,A\n", "a.csv")
    _csv_text(tmp_path, "admission_date,area\n", "b.csv")
    with pytest.raises(DataError, match=r"b.csv: expected at least one record"):
        aggregate_records(str(tmp_path / "*.csv"), **JAN)


def test_wrong_delimiter(tmp_path):
    path = _csv_text(tmp_path, "admission_date;area\n2015-01-01;A\n")
    with pytest.raises(DataError, match=r"row 1: expected columns separated by ','.*';'"):
        aggregate_records(path, **JAN)
    got = aggregate_records(path, delimiter=";", **JAN)
    assert got["emergency_admissions"].item() == 1


def test_nothing_in_range(planted):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"column 'admission_date'.*2016-01 to 2016-02"):
            aggregate_records(planted, start="2016-01", end="2016-02")


def test_no_matching_files(tmp_path):
    with pytest.raises(DataError, match="glob matching"):
        aggregate_records(str(tmp_path / "*.parquet"))
    with pytest.raises(DataError, match="existing records file"):
        aggregate_records(tmp_path / "missing.csv")


def test_output_loads_as_custom_panel(tmp_path):
    """Records for the synthetic areas -> parquet -> the custom-panel loader with a register."""
    panel_mod = pytest.importorskip("vanguard.panel")
    from vanguard import config

    areas = pd.read_csv(config.SYNTHETIC_DIR / "panel.csv", usecols=["area"])["area"].unique()
    rng = np.random.default_rng(11)
    n = 40 * len(areas)
    days = pd.Timestamp("2013-04-01") + pd.to_timedelta(rng.integers(0, 1461, n), unit="D")
    records = pd.DataFrame(
        {"admission_date": days, "area": rng.choice(areas, n), "los": rng.integers(0, 10, n)}
    )
    out = tmp_path / "panel.parquet"
    agg = aggregate_records(records, los_col="los", start="2013-04", end="2017-03", out=out)
    loaded = panel_mod.load_panel(
        "custom",
        path=out,
        sites_path=config.SYNTHETIC_DIR / "sites.csv",
        areas_path=config.SYNTHETIC_DIR / "site_areas.csv",
    )
    assert len(loaded) == len(agg) == len(areas) * 48
    assert int(loaded["emergency_admissions"].sum()) == n
    assert {"population_based", "control"} <= set(loaded["group"])


def test_column_names_needing_quotes():
    df = _planted().rename(columns={"admission_date": "Admission Date", "area": "date"})
    got = aggregate_records(df, date_col="Admission Date", area_col="date", **SPAN)
    assert got["emergency_admissions"].sum() == len(df)
    assert '"Admission Date"' in aggregation_sql(
        "t", start="2015-01", end="2015-02", date_col="Admission Date"
    )


def test_gzipped_csv(planted, tmp_path):
    path = tmp_path / "rec.csv.gz"
    out = planted.copy()
    out["admission_date"] = out["admission_date"].dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, compression="gzip")
    got = aggregate_records(path, los_col="los", **SPAN)
    pd.testing.assert_frame_equal(got, _pandas_truth(planted))


# --- the stated period, area codes and out= ----------------------------------------------


def test_inferred_period_warns_naming_the_extreme_dates(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area\n2015-03-04,A\n2015-01-09,A\n2015-02-01,B\n")
    with pytest.warns(
        DataWarning, match=r"no start or end given.*earliest 2015-01-09, latest 2015-03-04"
    ):
        got = aggregate_records(path)
    assert sorted(got["month"].dt.strftime("%Y-%m").unique()) == ["2015-01", "2015-02", "2015-03"]
    with pytest.warns(DataWarning, match=r"no end given.*latest 2015-03-04"):
        aggregate_records(path, start="2014-12")


def test_stated_period_gives_no_inference_warning(planted):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = aggregate_records(planted, **SPAN)
    assert got["emergency_admissions"].sum() == len(planted)


def test_typo_year_does_not_stretch_the_panel(tmp_path):
    lines = ["admission_date,area"] + ["2015-01-05,A"] * 8 + ["2051-05-03,A"]
    path = _csv_text(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        aggregate_records(path)
    assert (err.value.row, err.value.column, err.value.found) == (
        10,
        "admission_date",
        "2051-05-03",
    )
    assert "a mistyped year?" in str(err.value)
    # The same typo is an error, not a silently dropped record, with a stated period too.
    with pytest.raises(DataError, match=r"row 10, column 'admission_date'.*'2051-05-03'"):
        aggregate_records(path, start="2015-01", end="2015-01")


def test_year_201_is_reported_not_a_pandas_crash(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area\n2015-01-05,A\n201-05-03,A\n0201-05-03,B\n")
    with pytest.raises(
        DataError,
        match=r"row 3, column 'admission_date'.*found '201-05-03' "
        r"\(also row 4 '0201-05-03'",
    ):
        aggregate_records(path)


def test_date_limits_widen_the_window(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area\n1989-04-05,A\n1989-05-03,A\n")
    with pytest.raises(
        DataError, match=r"row 2, column 'admission_date': expected a date from 1990"
    ):
        aggregate_records(path)
    with pytest.raises(ValueError, match="start: expected a month from 1990-01"):
        aggregate_records(path, start="1989-04", end="1989-05")
    got = aggregate_records(path, start="1989-04", end="1989-05", date_limits=("1985-01-01", None))
    assert got["emergency_admissions"].tolist() == [1, 1]


def test_inferred_span_over_30_years_is_refused_with_both_rows(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area\n2024-01-01,A\n1991-05-03,B\n")
    with pytest.raises(DataError) as err:
        aggregate_records(path)
    msg = str(err.value)
    assert "at most 30 years" in msg
    assert "earliest 1991-05-03 in" in msg and "row 3" in msg
    assert "latest 2024-01-01 in" in msg and "row 2" in msg


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"start": "2015-01", "end": "2051-03"}, r"end: expected a month from 1990-01 to"),
        ({"start": "1850-01", "end": "2015-03"}, r"start: expected a month from 1990-01"),
        ({"start": "1990-01", "end": "2025-03"}, r"expected at most 30 years; found 35.2 years"),
        ({"start": "2015-13", "end": "2015-03"}, r"start: expected a month such as"),
    ],
)
def test_stated_period_checked_before_reading(tmp_path, kwargs, pattern):
    path = _csv_text(tmp_path, "admission_date,area\n2015-01-05,A\n")
    with pytest.raises(ValueError, match=pattern):
        aggregate_records(path, **kwargs)


def test_area_codes_are_trimmed_like_the_panel_loader(tmp_path):
    path = _csv_text(
        tmp_path, "admission_date,area\n2015-01-05,00C\n2015-01-06, 00C\n2015-01-07,00C \n"
    )
    got = aggregate_records(path, **JAN)
    assert got["area"].tolist() == ["00C"] and got["emergency_admissions"].tolist() == [3]
    got = aggregate_records(path, areas=[" 00C", "00D"], **JAN)
    assert got["area"].tolist() == ["00C", "00D"]
    assert got["emergency_admissions"].tolist() == [3, 0]


def test_every_bad_date_kind_names_file_row_and_value(tmp_path):
    path = _csv_text(
        tmp_path, "admission_date,area\n2015-01-05,A\n2015-13-01,A\nsoon,B\n2015-02-30,B\n"
    )
    with pytest.raises(DataError) as err:
        aggregate_records(path, **JAN)
    msg = str(err.value)
    assert msg.startswith(str(path) + ": row 3, column 'admission_date'")
    assert "(3 unreadable in all)" in msg
    assert "found '2015-13-01' (also row 4 'soon', row 5 '2015-02-30')" in msg


def test_out_inside_a_file_names_out(planted, tmp_path):
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("x")
    out = blocker / "panel.parquet"
    with pytest.raises(DataError, match=rf"^{out}: expected an output path whose folder"):
        aggregate_records(planted, out=out, **SPAN)


def test_failed_write_names_out_not_the_temporary_file(planted, tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".panel.csv.x1.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "panel.csv"
    with pytest.raises(DataError) as err:
        aggregate_records(planted, out=out, **SPAN)
    assert str(err.value).startswith(f"{out}: expected a path the panel can be written to")
    assert "Permission denied" in str(err.value) and ".tmp" not in str(err.value)


def test_out_checked_before_any_work(tmp_path):
    path = _csv_text(tmp_path, "admission_date,area\n2015-01-05,A\n")
    before = path.read_bytes()
    with pytest.raises(DataError, match="an output file other than the records"):
        aggregate_records(path, out=path.with_suffix(".csv"), **JAN)
    with pytest.raises(DataError, match=r"ending in \.parquet or \.csv; found '\.xlsx'"):
        aggregate_records(path, out=tmp_path / "panel.xlsx", **JAN)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="a file name for the panel; found 'an existing folder'"):
        aggregate_records(path, out=tmp_path / "dir.csv", **JAN)
    assert path.read_bytes() == before
