"""The record-level route on Spark gives the DuckDB route's panel, on the same files.

Run by ``make test-spark``, which installs the ``spark`` extra and a Java runtime first
and sets ``VANGUARD_REQUIRE_SPARK=1`` so that a missing pyspark or Java fails these tests
instead of skipping them. Under a plain ``make test`` without pyspark they are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vanguard.errors import DataError
from vanguard.records import aggregate_records

pytestmark = [
    pytest.mark.spark,
    # pyspark warns about pandas 3 on import; the route never hands data to pyspark's
    # pandas conversion (it collects plain rows), so the warning is noise here.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

_REQUIRED = os.environ.get("VANGUARD_REQUIRE_SPARK") == "1"
_HOW = "`make test-spark` installs the spark extra and Java, then runs these tests"

if not _REQUIRED:
    pytest.importorskip("pyspark", reason=f"pyspark is not installed; {_HOW}")
    _java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (
        _java_home and (Path(_java_home) / "bin" / "java").is_file()
    ):
        pytest.skip(f"no Java runtime for Spark; {_HOW}", allow_module_level=True)

from vanguard import records_spark  # noqa: E402  (after the skip: needs pyspark)
from vanguard.records_spark import aggregate_records_spark  # noqa: E402

START, END = "2015-01", "2015-06"
AREAS = ["001", "01A", "B2", "Z9", "Q7"]


def _records(seed: int = 3, n: int = 3000) -> pd.DataFrame:
    """Admissions Jan-Jun 2015 with every case the two engines could read differently.

    * ``Z9`` has no records in March (a zero area-month inside the data);
    * ``Q7`` has records only before and after the window (all zeros in the window);
    * the first and last instants of the window are in, the instants either side out;
    * area codes with leading zeros; fractional and empty lengths of stay.
    """
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 181, n), unit="D")
    minutes = pd.to_timedelta(rng.integers(0, 24 * 60, n), unit="min")
    df = pd.DataFrame(
        {
            "admission_date": days + minutes,
            "area": rng.choice(AREAS[:4], size=n),
            "los": rng.integers(0, 30, n).astype("float64") / 2,
        }
    )
    march = (df["area"] == "Z9") & (df["admission_date"].dt.month == 3)
    df = df.loc[~march]
    edges = pd.DataFrame(
        {
            "admission_date": pd.to_datetime(
                [
                    "2015-01-01 00:00:00",  # first instant of the window
                    "2015-06-30 23:59:59",  # last instant of the window
                    "2014-12-31 23:59:59",  # just before
                    "2015-07-01 00:00:00",  # just after
                    "2014-11-15 12:00:00",
                ]
            ),
            "area": ["B2", "001", "Q7", "Q7", "Q7"],
            "los": [1.0, 2.5, 3.0, 4.0, 5.0],
        }
    )
    df = pd.concat([df, edges], ignore_index=True)
    df.loc[df.index[::97], "los"] = np.nan  # empty lengths of stay
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = records_spark.local_session(2, conf={"spark.sql.warehouse.dir": str(warehouse)})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, object]:
    """The same records as one CSV, a gzipped CSV and two parquet files."""
    root = tmp_path_factory.mktemp("records")
    df = _records()
    text = df.assign(admission_date=df["admission_date"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    csv = root / "records.csv"
    text.to_csv(csv, index=False)
    gz = root / "records.csv.gz"
    text.to_csv(gz, index=False, compression="gzip")
    half = len(df) // 2
    df.iloc[:half].to_parquet(root / "part-0.parquet", index=False)
    df.iloc[half:].to_parquet(root / "part-1.parquet", index=False)
    # Dates as DATE (no time of day), as many extracts store them.
    dated = df.assign(admission_date=df["admission_date"].dt.date)
    dated.to_parquet(root / "dated.parquet", index=False)
    return {
        "csv": csv,
        "csv.gz": gz,
        "parquet": str(root / "part-*.parquet"),
        "date parquet": root / "dated.parquet",
        "frame": df,
    }


def _both(files, fmt: str, **kwargs):
    """Panels and warning texts of the DuckDB and Spark routes on the same input."""
    out = []
    for engine in (aggregate_records, aggregate_records_spark):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            panel = engine(files[fmt], **kwargs)
        texts = sorted(str(w.message) for w in caught if issubclass(w.category, UserWarning))
        out.append((panel, texts))
    return out


def _numbers(texts: list[str]) -> list[list[str]]:
    return [re.findall(r"\d[\d,]*", t) for t in texts]


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("csv", {"los_col": "los", "start": START, "end": END}),
        ("csv", {"los_col": "los"}),
        ("csv.gz", {"start": START, "end": END}),
        ("parquet", {"los_col": "los", "start": START, "end": END}),
        ("parquet", {"los_col": "los", "start": "2014-10", "end": "2015-08"}),
        ("date parquet", {"los_col": "los", "start": START, "end": END}),
        ("parquet", {"los_col": "los", "start": START, "end": END, "areas": AREAS + ["X0"]}),
    ],
    ids=["csv", "csv-data-range", "csv.gz-no-los", "parquet", "parquet-wide", "dates", "areas"],
)
def test_spark_panel_identical_to_duckdb(spark, files, fmt, kwargs):
    (duck, duck_warn), (sprk, sprk_warn) = _both(files, fmt, **kwargs)
    pd.testing.assert_frame_equal(sprk, duck)
    # The planted zero cells are really in the panel, so the test compares them too.
    assert (duck["emergency_admissions"] == 0).any()
    assert len(duck) == duck["area"].nunique() * duck["month"].nunique()
    # Same warnings with the same counts (dropped out-of-range records, empty LOS).
    assert _numbers(sprk_warn) == _numbers(duck_warn) and duck_warn


def test_window_edges_are_counted_like_duckdb(spark, files):
    """The last instant of June is in June; the first of July is dropped."""
    with pytest.warns(UserWarning, match=r"dropped 3 record\(s\).*\(2 before, 1 after\)"):
        panel = aggregate_records_spark(files["csv"], start=START, end=END, los_col="los")
    df = files["frame"]
    in_june = df[(df["admission_date"] >= "2015-06-01") & (df["admission_date"] < "2015-07-01")]
    got = panel[panel["month"] == pd.Timestamp("2015-06-01")]
    assert got["emergency_admissions"].sum() == len(in_june)
    q7 = panel[panel["area"] == "Q7"]
    assert len(q7) == 6 and (q7["emergency_admissions"] == 0).all()


def _write(tmp_path, rows: dict, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


_GOOD = {"admission_date": ["2015-01-02", "2015-02-03"], "area": ["A", "B"], "los": ["1", "2"]}


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        ({"admission_date": ["2015-01-02", "2015-02-30"]}, {}, "date YYYY-MM-DD"),
        ({"area": ["A", " "]}, {}, "non-blank area"),
        ({"los": ["1", "-2"]}, {"los_col": "los"}, "non-negative, finite length of stay"),
        ({"los": ["1", "inf"]}, {"los_col": "los"}, "non-negative, finite length of stay"),
        ({"admission_date": ["2015-01-02", "2051-05-03"]}, {}, "a date from 1990-01-01"),
        ({"los": ["1", "two"]}, {"los_col": "los"}, "length of stay in days, a number"),
        ({}, {"areas": ["A"]}, "area listed in 'areas'"),
        ({}, {"start": "2016-01", "end": "2016-02"}, "at least one record dated"),
        ({}, {"date_col": "admitted"}, "a column named 'admitted'"),
    ],
    ids=[
        "bad-date",
        "blank-area",
        "negative-los",
        "infinite-los",
        "implausible-date",
        "text-los",
        "unknown-area",
        "none-in-range",
        "missing-column",
    ],
)
def test_spark_rejects_what_duckdb_rejects(spark, tmp_path, change, kwargs, message):
    path = _write(tmp_path, {**_GOOD, **change})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # out-of-range drops, before the error
        with pytest.raises(DataError, match=re.escape(message)):
            aggregate_records(path, **kwargs)
        with pytest.raises(DataError, match=re.escape(message)) as err:
            aggregate_records_spark(path, **kwargs)
    assert str(path) in str(err.value)


def test_job_writes_a_panel_the_project_loads(spark, tmp_path):
    """``python -m vanguard.records_spark`` -> parquet -> ``load_panel("custom")``."""
    from vanguard import config
    from vanguard.panel import load_panel

    areas = pd.read_csv(config.SYNTHETIC_DIR / "panel.csv", usecols=["area"])["area"].unique()
    rng = np.random.default_rng(11)
    n = 30 * len(areas)
    days = pd.Timestamp("2013-04-01") + pd.to_timedelta(rng.integers(0, 1461, n), unit="D")
    records = pd.DataFrame(
        {"admission_date": days, "area": rng.choice(areas, n), "los": rng.integers(0, 10, n)}
    )
    src = tmp_path / "records.parquet"
    records.to_parquet(src, index=False)
    out = tmp_path / "panel.parquet"
    args = ["--input", str(src), "--out", str(out), "--los-col", "los"]
    assert records_spark.main(args + ["--start", "2013-04", "--end", "2017-03"]) == 0
    duck = aggregate_records(src, los_col="los", start="2013-04", end="2017-03")
    pd.testing.assert_frame_equal(pd.read_parquet(out), duck)
    loaded = load_panel(
        "custom",
        path=out,
        sites_path=config.SYNTHETIC_DIR / "sites.csv",
        areas_path=config.SYNTHETIC_DIR / "site_areas.csv",
    )
    assert len(loaded) == len(areas) * 48
    assert int(loaded["emergency_admissions"].sum()) == n
    # The session belonged to the caller (this test), so the job must not stop it.
    assert spark.sparkContext._jsc is not None


def test_spark_dataframe_and_table_sources(spark, files):
    """A notebook's DataFrame or catalog table goes straight in, no files involved."""
    df = spark.read.parquet(str(files["date parquet"]))
    df.createOrReplaceTempView("hes_like")
    with pytest.warns(UserWarning, match="<Spark DataFrame>: 30 record.*empty 'los'"):
        from_table = aggregate_records_spark(spark.table("hes_like"), los_col="los")
    with pytest.warns(UserWarning, match="30 record.*empty 'los'"):
        duck = aggregate_records(files["date parquet"], los_col="los")
    pd.testing.assert_frame_equal(from_table, duck)
    spark.catalog.dropTempView("hes_like")


def test_bench_worker_task_measures_the_spark_route(spark, tmp_path):
    """The bench's Spark task gives the DuckDB panel's fingerprint and counts the JVM."""
    import sys

    from vanguard import config

    if str(config.ROOT) not in sys.path:  # the benchmarks folder is not installed
        sys.path.insert(0, str(config.ROOT))
    from benchmarks import scale_records

    path = scale_records.generate_records(tmp_path / "r.parquet", 30_000, n_areas=9)
    prepare, step = scale_records.task_spark(str(path), threads=2)
    out = step(prepare())
    duck = aggregate_records(path, los_col="los")
    assert out["digest"] == scale_records.panel_digest(duck)
    assert out["total"] == 30_000 and out["rows_out"] == len(duck)
    # The JVM is a child of this process and far larger than nothing.
    assert out["jvm_mb"] > 100 and out["peak_mb"] > out["jvm_mb"]
    assert scale_records.spark_available() == ""


def test_area_code_with_a_backslash_is_refused_not_mismatched(spark, files):
    # Spark SQL reads a backslash in a literal as an escape: "A\\1" would become "A1".
    with pytest.raises(ValueError, match="backslash|cannot contain"):
        aggregate_records_spark(files["csv"], areas=AREAS + ["A\\1"])


def test_bad_record_in_an_in_memory_dataframe_names_the_value(spark):
    """A DataFrame not read from files has no file to name: the message says what it is."""
    df = spark.createDataFrame(
        [("2015-01-02", "A"), ("2015-13-01", "B")], ["admission_date", "area"]
    )
    with pytest.raises(DataError, match=r"<Spark DataFrame>.*found '2015-13-01'"):
        aggregate_records_spark(df)
