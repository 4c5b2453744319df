"""Which figures the report shows, and the sentence printed under each: computed from the
figure's own data file, so each sentence is checked here against numbers set by hand."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vanguard import report_figures, schema  # noqa: E402
from vanguard.errors import DataError  # noqa: E402

OUT = "emergency_admissions"


def _figure(run_path, stem, data=None, alt="A chart."):
    figs = run_path / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    (figs / f"{stem}.png").write_bytes(b"\x89PNG")
    (figs / f"{stem}.alt.txt").write_text(alt)
    if data is not None:
        pd.DataFrame(data).to_csv(figs / f"{stem}.csv", index=False)


def _sentence(run_path, stem, data):
    _figure(run_path, stem, data)
    return report_figures.figure_sentence(run_path, stem)


def test_left_out_other_outcomes_split_charts_and_single_group_charts(tmp_path):
    for stem in ("trends_emergency_admissions", "trends_bed_days",
                 "event_study_emergency_admissions",
                 "event_study_emergency_admissions__care_home",
                 "inference_emergency_admissions__care_home",
                 "did_emergency_admissions__care_home__twfe",
                 "estimator_comparison_emergency_admissions", "mde_emergency_admissions",
                 "forest_emergency_admissions"):
        _figure(tmp_path, stem)
    entries, left_out = report_figures.figure_entries(tmp_path, OUT, [OUT, "bed_days"])
    assert [e["name"] for e in entries] == [
        "trends_emergency_admissions", "event_study_emergency_admissions",
        "estimator_comparison_emergency_admissions", "forest_emergency_admissions",
        "mde_emergency_admissions"]
    assert sorted(left_out) == ["did_emergency_admissions__care_home__twfe",
                                "event_study_emergency_admissions__care_home",
                                "inference_emergency_admissions__care_home",
                                "trends_bed_days"]
    assert all(e["first_in_section"] for e in entries)
    assert entries[0]["caption"].startswith("Emergency admissions: indexed trend")
    assert all(set(e) >= {"section", "name", "path", "alt", "first_in_section", "caption",
                          "sentence"} for e in entries)
    assert all(e["sentence"] == "" for e in entries)  # no data files: nothing to say


def test_missing_alt_text_is_refused(tmp_path):
    _figure(tmp_path, "mde_emergency_admissions", alt=" ")
    with pytest.raises(DataError, match="alt text"):
        report_figures.figure_entries(tmp_path, OUT, [OUT])


def _es_rows(group, p, original, grid=()):
    rows = [dict(analysis="pretrend", group=group, p_value=p, param=5.0),
            dict(analysis="honestdid", group=group, param=np.nan, ci_low=original[0],
                 ci_high=original[1])]
    rows += [dict(analysis="honestdid", group=group, param=m, ci_low=lo, ci_high=hi)
             for m, (lo, hi) in grid]
    rows += [dict(analysis="event_study", group=group, rel_time=0.0, estimate=-0.1,
                  ci_low=-0.2, ci_high=0.0, param=np.nan)]
    return rows


def test_event_study_sentence_names_failed_pretrends_and_breakdown(tmp_path):
    data = (_es_rows("population_based", 0.010, (-0.3, 0.1))
            + _es_rows("care_home", 0.41, (-0.3, -0.1), [(0.5, (-0.4, -0.05)),
                                                         (1.0, (-0.5, 0.2))]))
    s = _sentence(tmp_path, "event_study_emergency_admissions", data)
    assert ("rejects parallel trends for Population-based (PACS & MCP) (p = 0.010) but not "
            "for Enhanced health in care homes (p = 0.410)") in s
    assert "Population-based (PACS & MCP) the average post-period effect is not significant" in s
    assert "care homes the average effect survives departures from parallel trends up to " \
           "M\u0304 = 0.5" in s


def _cmp_rows():
    rows = []
    for g, est in (("population_based", (-0.2, -0.1, 0.05)), ("care_home", (0.1, 0.2, 0.3))):
        for k, (e, i) in enumerate((("twfe", "cluster"), ("twfe", "wild_bootstrap"),
                                    ("imputation", "analytic"))):
            b = est[k]
            # only population-based twfe/cluster excludes zero over years 1-3
            half = 0.15 if (g, k) == ("population_based", 0) else 0.5
            rows.append(dict(group=g, window="years_1_3", estimator=e, inference=i,
                             estimate=b, ci_low=b - half, ci_high=b + half))
            rows.append(dict(group=g, window="year_1", estimator=e, inference=i,
                             estimate=b, ci_low=b + 0.01 if k == 2 else b - 1, ci_high=b + 1))
    return rows


def test_comparison_sentence_counts_intervals_honestly(tmp_path):
    s = _sentence(tmp_path, "estimator_comparison_emergency_admissions", _cmp_rows())
    assert "Population-based (PACS & MCP) from -0.200 to 0.050 (1 of 3 intervals exclude zero)" in s
    assert "Enhanced health in care homes from 0.100 to 0.300 (0 of 3 intervals exclude zero)" in s
    # single years are counted separately, not folded into an "all agree" claim
    assert s.endswith("In single years, 2 of 6 intervals exclude zero.")


def _forest_rows(headline):
    sites = [("EHCH01", -0.05, 1), ("EHCH02", 0.10, 2), ("EHCH03", 0.02, 1)]
    rows = [dict(analysis="per_site", data_source="synthetic", group="care_home", site=s,
                 estimate=b, ci_low=b - 0.04, ci_high=b + 0.04, n_treated=n)
            for s, b, n in sites]
    rows.append(dict(analysis="headline", data_source="synthetic", group="care_home", site="",
                     estimate=headline, ci_low=headline - 0.05, ci_high=headline + 0.05,
                     n_treated=4))
    return rows


def test_forest_sentence_checks_the_diamond_against_the_sites(tmp_path):
    mean = (-0.05 * 1 + 0.10 * 2 + 0.02 * 1) / 4  # area-weighted mean of the sites
    s = _sentence(tmp_path, "forest_emergency_admissions", _forest_rows(mean))
    assert ("sites range from -0.050 (Synthetic EHCH site 1) to 0.100 (Synthetic EHCH site 2), "
            "2 of 3 intervals excluding zero") in s
    assert f"the headline estimate ({mean:.3f}) equals the sites' area-weighted mean" in s
    s = _sentence(tmp_path, "forest_emergency_admissions", _forest_rows(0.2))
    assert f"differs from the sites' area-weighted mean ({mean:.3f})" in s


def test_mde_sentence_compares_with_the_hoped_for_reduction(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"parameters": {"hoped_for_pct": 3.0}}))
    rows = [dict(analysis="power", group=g, window="years_1_3", param=p, estimate=e, pct=pct)
            for g, p, e, pct in (("care_home", 0.8, 0.4, -4.8), ("care_home", 0.9, 0.5, -6.0),
                                 ("population_based", 0.8, 0.1, -1.6),
                                 ("population_based", 0.9, 0.12, -1.9))]
    rows.append(dict(analysis="power_curve", group="care_home", window="years_1_3", param=0.2,
                     estimate=0.3, pct=-2.0))
    s = _sentence(tmp_path, "mde_emergency_admissions", rows)
    assert s == ("With 80% power the design detects reductions of 1.6% for Population-based "
                 "(PACS & MCP) and 4.8% for Enhanced health in care homes; for Enhanced health "
                 "in care homes a reduction of the hoped-for 3% could go undetected.")
    (tmp_path / "manifest.json").write_text(json.dumps({"parameters": {"hoped_for_pct": 5.0}}))
    assert "each is below the hoped-for 5%" in report_figures.figure_sentence(
        tmp_path, "mde_emergency_admissions")


def test_trends_sentence_uses_the_last_period_and_the_pre_period_gap(tmp_path):
    periods = pd.date_range("2014-04-01", periods=8, freq="QS")
    rows = [dict(group=g, period=p.strftime("%Y-%m-%d"), period_label=f"{p.year}Q{p.quarter}",
                 index=100 + (i * d))
            for g, d in (("control", 1.0), ("care_home", 1.5)) for i, p in enumerate(periods)]
    (tmp_path / "data").mkdir()
    pd.DataFrame({schema.START: pd.to_datetime(["2015-04-01", None])}).to_parquet(
        tmp_path / "data" / "panel.parquet")
    s = _sentence(tmp_path, "trends_emergency_admissions", rows)
    assert s.startswith("In 2016Q1 the index (each group's pre-period mean = 100) stood at "
                        "110 for Enhanced health in care homes and 107 for the control areas")
    # pre-period: quarters before April 2015 (i = 0..3): the largest gap is 0.5 * 3
    assert "within 1.5 index points of the control areas" in s


def test_truth_sentence_counts_covering_intervals(tmp_path):
    truth = pd.read_csv(report_figures.config.SYNTHETIC_DIR / "truth.csv", dtype={"site": str})
    t = truth[truth["site"].isna() & (truth["outcome"] == OUT) & (truth["scale"] == "rate")
              & (truth["group"] == "care_home")].set_index("window")["truth"]
    rows = [dict(group="care_home", window=w, outcome=OUT, scale="rate", estimate=t[w],
                 ci_low=t[w] - 0.01 if w != "year_1" else t[w] + 0.001, ci_high=t[w] + 0.01)
            for w in schema.WINDOWS]
    s = _sentence(tmp_path, "truth_comparison_emergency_admissions", rows)
    assert s.startswith("3 of 4 95% intervals cover the effect planted")


def test_malformed_figure_data_names_the_file_and_column(tmp_path):
    with pytest.raises(DataError, match=r"mde_emergency_admissions\.csv.*column 'param'"):
        _sentence(tmp_path, "mde_emergency_admissions", [dict(group="care_home", estimate=1.0)])


def test_sentences_say_at_for_one_value_and_never_minus_zero(tmp_path):
    rows = [dict(group="uec", window="years_1_3", estimator="twfe", inference=i,
                 estimate=-0.00004, ci_low=-0.3, ci_high=0.3) for i in ("cluster", "randomisation")]
    s = _sentence(tmp_path, "estimator_comparison_emergency_admissions", rows)
    assert "Urgent & emergency care at 0.000 (0 of 2 intervals exclude zero)" in s


def test_breakdown_at_zero_is_said_in_plain_words(tmp_path):
    data = _es_rows("uec", 0.5, (-0.3, -0.1), [(0.0, (-0.3, -0.05)), (0.5, (-0.6, 0.2))])
    s = _sentence(tmp_path, "event_study_emergency_admissions", data)
    assert ("Urgent & emergency care the average effect is significant only with no "
            "departure from parallel trends (M\u0304 = 0)") in s


def test_forest_sentence_names_real_sites_whose_ids_are_numbers(tmp_path):
    rows = [dict(analysis="per_site", data_source="nhs_mar", group="population_based",
                 site=s, estimate=b, ci_low=b - 0.1, ci_high=b + 0.1, n_treated=1)
            for s, b in (("1", -0.2), ("10", 0.3), ("2", 0.1))]
    s = _sentence(tmp_path, "forest_emergency_admissions", rows)
    assert "from -0.200 (Wirral Partners) to 0.300 (" in s
    assert "(1)" not in s and "(10.0)" not in s
