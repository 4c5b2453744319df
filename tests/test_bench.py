"""Smoke tests of the benchmark machinery on tiny sizes: structure, not timings."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest

from vanguard import config

# The benchmarks are a folder beside src/, not part of the installed package: make them
# importable however pytest was started (``python -m pytest`` adds the root itself).
if str(config.ROOT) not in sys.path:
    sys.path.insert(0, str(config.ROOT))

from benchmarks import COLUMNS, Result, interleaved, to_frame, to_markdown  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402
from benchmarks.scale_records import (  # noqa: E402
    generate_records,
    growth_exponent,
    pandas_aggregate,
)


def test_growth_exponent_recovers_planted_power_law():
    rows = np.array([1e6, 1e7, 5e7])
    assert growth_exponent(rows, 3e-7 * rows) == pytest.approx(1.0)
    assert growth_exponent(rows, 1e-12 * rows**2) == pytest.approx(2.0)
    assert math.isnan(growth_exponent([1e6], [0.5]))


def test_ratios_use_the_baseline_of_the_same_case_and_size():
    results = [
        Result("s", "c", "base", size="1", times=[2.0, 4.0, 3.0], baseline=True),
        Result("s", "c", "impl", size="1", times=[6.0, 6.0, 9.0]),
        Result("s", "c", "impl", size="2", times=[1.0]),  # no baseline at size 2
        Result("s", "c", "other", size="x", times=[1.5], ratio_to="1"),
    ]
    table = to_frame(results)
    assert list(table.columns) == list(COLUMNS)
    assert table["median_s"].tolist() == [3.0, 6.0, 1.0, 1.5]
    assert table["ratio"].iloc[1] == pytest.approx(2.0)
    assert math.isnan(table["ratio"].iloc[2])
    assert table["ratio"].iloc[3] == pytest.approx(0.5)
    md = to_markdown(table)
    assert md.count("\n") == 2 + len(table)


def test_interleaved_alternates_and_keeps_outputs():
    calls = []
    outs = {}
    times = interleaved(
        {"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2},
        repeats=2,
        warmup=False,
        outputs=outs,
    )
    assert calls == ["a", "b", "a", "b"]
    assert outs == {"a": 1, "b": 2} and all(len(t) == 2 for t in times.values())
    with pytest.raises(ValueError):
        interleaved({"a": lambda: None}, repeats=0)


def test_generated_records_are_deterministic_and_both_routes_agree(tmp_path):
    from vanguard.records import aggregate_records

    a = generate_records(tmp_path / "a.parquet", 5000, n_areas=7)
    b = generate_records(tmp_path / "b.parquet", 5000, n_areas=7)
    ra, rb = pd.read_parquet(a), pd.read_parquet(b)
    pd.testing.assert_frame_equal(ra, rb)
    assert ra["area"].nunique() == 7 and ra["los"].between(0, 14).all()
    pd.testing.assert_frame_equal(aggregate_records(a, los_col="los"), pandas_aggregate(a))


def test_quick_run_writes_one_table(tmp_path, capsys):
    # Spark is left out here (a JVM per measurement is minutes, not seconds); its worker
    # task is tested in test_spark.py, and here only that turning it off is recorded.
    args = ["--quick", "--only", "report", "records", "inference", "--no-spark"]
    page = tmp_path / "benchmarks.md"
    assert main(args + ["--out", str(tmp_path), "--write-docs", str(page)]) == 0
    table = pd.read_csv(
        tmp_path / "bench.csv",
        keep_default_na=False,
        na_values={c: [""] for c in ("median_s", "ratio", "value", "peak_mb")},
    )
    assert list(table.columns) == list(COLUMNS)
    assert set(table["section"]) == {"report", "records", "inference"}
    report = table[table["section"] == "report"]
    assert report["note"].str.startswith("skipped").all()

    duck = table[
        (table["section"] == "records")
        & (table["case"] == "aggregate records to area-month")
        & table["implementation"].str.startswith("duckdb")
    ]
    assert len(duck) == 3 and (duck["median_s"] > 0).all() and (duck["peak_mb"] > 0).all()
    pandas_rows = table[
        table["implementation"].str.startswith("pandas")
        & (table["case"] == "aggregate records to area-month")
    ]
    assert (pandas_rows["ratio"] == 1.0).all()
    slope = table[
        table["case"].str.startswith("growth exponent")
        & table["implementation"].str.startswith("duckdb")
    ]
    assert np.isfinite(slope["value"]).all()
    assert slope["note"].str.contains("identical to pandas at .*: yes").all()
    spark_rows = table[table["implementation"].str.startswith("spark")]
    assert len(spark_rows) == 3 and spark_rows["note"].str.contains("turned off").all()

    inf = table[table["section"] == "inference"]
    if not inf["note"].str.startswith("skipped").all():
        assert {
            "cluster-robust (CRV1)",
            "wild cluster bootstrap (Webb)",
            "randomisation inference",
        } <= set(inf["implementation"])
        assert inf.loc[inf["implementation"] != "cluster-robust (CRV1)", "ratio"].notna().all()

    md = (tmp_path / "bench.md").read_text()
    assert md.startswith("# Benchmarks (quick") and "| section |" in md
    # the regenerated page: one table per family, each with the load around it
    doc = page.read_text()
    for title in ("## Resampling inference", "## Record-level route", "## The whole report"):
        assert title in doc
    assert doc.count("load before:") == 3
    assert "Growth exponent of duckdb" in doc
    assert "| section |" in capsys.readouterr().out


@pytest.mark.slow
def test_quick_estimators_and_panel(tmp_path):
    assert main(["--quick", "--only", "estimators", "panel", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(
        tmp_path / "bench.csv",
        keep_default_na=False,
        na_values={c: [""] for c in ("median_s", "ratio", "value", "peak_mb")},
    )
    assert set(table["section"]) == {"estimators", "panel"}
    ran = table[table["median_s"].notna()]
    # every case that ran has exactly one baseline, with ratio 1
    for (_, case), rows in ran.groupby(["section", "case"]):
        assert (rows["ratio"] == 1.0).sum() >= 1, case
    panel = table[(table["section"] == "panel") & table["median_s"].notna()]
    assert (panel["peak_mb"] > 0).all()


def test_unknown_section_rejected():
    with pytest.raises(SystemExit):
        main(["--only", "nonsense"])


def test_per_notebook_sums_jobs_of_a_planted_manifest():
    from benchmarks.report import _finished_ok, per_notebook

    manifest = {
        "status": "ok",
        "notebooks": [
            {
                "notebook": "03_did",
                "wall_seconds": 2.0,
                "cell_seconds": 1.5,
                "kernel_and_io_seconds": 0.5,
            },
            {
                "notebook": "03_did",
                "wall_seconds": 3.0,
                "cell_seconds": 2.0,
                "kernel_and_io_seconds": 1.0,
            },
            {
                "notebook": "01_data",
                "wall_seconds": 1.0,
                "cell_seconds": 0.25,
                "kernel_and_io_seconds": 0.75,
            },
        ],
    }
    table = per_notebook(manifest)
    assert table["03_did"] == {
        "jobs": 2,
        "wall_seconds": 5.0,
        "cell_seconds": 3.5,
        "kernel_and_io_seconds": 1.5,
    }
    assert table["01_data"]["jobs"] == 1
    assert _finished_ok(manifest) and not _finished_ok({"status": "failed"})


def test_docs_page_reads_its_figures_off_the_table():
    from benchmarks import Result, to_frame
    from benchmarks.docs import SectionLog, render

    case = "vanguard-report --params default"
    results = [
        Result("report", case, "whole report, cold (empty caches)", size="default",
               times=[58.0], baseline=True, goal="<= 60 s on 2 cores", goal_met="yes"),
        Result("report", case, "whole report, warm (caches of the cold run)",
               size="default", times=[20.0], goal="<= 15 s on 2 cores", goal_met="no"),
        Result("estimators", "TWFE x", "pyfixest.feols (raw)", size="n", times=[1.0],
               baseline=True),
        Result("estimators", "TWFE x", "vanguard.did.twfe.estimate_twfe", size="n",
               times=[1.25], goal="overhead <= 10%", goal_met="no"),
    ]
    logs = [SectionLog("report", 80.0, "4.10, 3.00, 2.00", "5.00, 4.00, 3.00")]
    page = render(to_frame(results), machine="m", packages="p", started="s", seconds=120,
                  repeats=1, report_repeats=1, logs=logs, command="python -m benchmarks")
    assert "The cold report took 58.0 s (goal <= 60 s on 2 cores: yes)" in page
    assert "The warm report took 20.0 s (goal <= 15 s on 2 cores: no)" in page
    assert "ratio 1.25" in page
    assert "load before: 4.10, 3.00, 2.00; after: 5.00, 4.00, 3.00" in page
    assert page.index("## The whole report") < page.index("## Estimators")
