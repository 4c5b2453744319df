"""The robustness appendix, from small hand-made results files."""

from __future__ import annotations

import pandas as pd
import pytest
from test_report import _parse, fabricate_results, make_run

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.report_appendix import (
    honest_table,
    leave_one_out_table,
    not_estimated_table,
    read_extra,
    robustness_tables,
)
from vanguard.report_findings import honest_breakdown

OUT = "emergency_admissions"


def _row(**kw):
    base = dict(data_source="nhs_mar", estimator="twfe", outcome=OUT, scale="rate",
                inference="cluster", n_treated=24, n_control=146, pre_mean=9.0)
    return base | kw


def _sensitivity_file(path):
    rows = []
    for key, text, b, n in (("headline", "Headline specification", -0.10, 31),
                            ("mixed_kept", "Mixed areas kept", -0.12, 26),
                            ("without_site_12", "", 0.05, 22),
                            ("per_1000_aged_75plus", "Per 1,000 aged 75+", -1.5, 24)):
        rows.append(_row(analysis="main", group="population_based", window="years_1_3",
                         estimate=b, se=0.1, ci_low=b - 0.2, ci_high=b + 0.2, p_value=0.5,
                         n_treated=n, n_control=186)
                     | {"sensitivity": key, "sensitivity_label": text})
    df = schema.results_frame([{k: v for k, v in r.items() if not k.startswith("sens")}
                               for r in rows])
    df["sensitivity"] = [r["sensitivity"] for r in rows]
    df["sensitivity_label"] = [r["sensitivity_label"] for r in rows]
    df.to_csv(path, index=False)
    return df


def _sustainability_file(path):
    rows = [_row(analysis="main", group=g, window=w, estimate=b, se=0.1, ci_low=b - 0.2,
                 ci_high=b + 0.2, p_value=0.3)
            for g in ("population_based", "care_home")
            for w, b in (("years_1_3", -0.05), ("sustainability", -0.2))]
    schema.write_results(schema.results_frame(rows), path)


@pytest.fixture(scope="module")
def appendix_html(tmp_path_factory):
    from vanguard.report import build_report

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("appendix")
    res = fabricate_results()
    extra = [dict(data_source="synthetic", analysis="honestdid", estimator="cs_never",
                  outcome=OUT, scale="rate", group="care_home", window="post_average",
                  param=m, estimate=-0.06, ci_low=lo, ci_high=hi, inference="none")
             for m, lo, hi in ((0.0, -0.10, -0.02), (0.5, -0.12, -0.01), (1.0, -0.2, 0.05))]
    extra.append(dict(data_source="synthetic", analysis="honestdid", estimator="cs_never",
                      outcome=OUT, scale="rate", group="care_home", window="post_average",
                      estimate=-0.06, ci_low=-0.09, ci_high=-0.03, inference="analytic"))
    extra += [dict(data_source="synthetic", analysis="placebo", estimator="twfe",
                   outcome=OUT, scale="rate", group="population_based", window="year_1",
                   param=-12, estimate=0.01, ci_low=-0.02, ci_high=0.04, p_value=0.61,
                   inference="cluster", pre_mean=8.1)]
    res = schema.results_frame(pd.concat([res, schema.results_frame(extra)],
                                         ignore_index=True))
    run = make_run(root, mp, name="appendix", results=res)
    run_path = config.run_dir(run)
    _sensitivity_file(run_path / "results" / f"sensitivity__{OUT}.csv")
    _sustainability_file(run_path / "results" / f"sustainability__{OUT}.csv")
    html = build_report(run)[0].read_text(encoding="utf-8")
    mp.undo()
    return html


def _appendix(html: str) -> str:
    return html.split('id="appendix"')[1].split("</section>")[0]


def test_each_robustness_table_is_shown(appendix_html):
    a = _appendix(appendix_html)
    for tid in ("appendix-honest", "appendix-placebo",
                "appendix-sensitivity", "appendix-sustainability"):
        assert f'id="{tid}"' in a, tid


def test_sensitivities_are_labelled_headline_first(appendix_html):
    a = _appendix(appendix_html).split('id="appendix-sensitivity"')[1].split("</table>")[0]
    cells = _parse("<table" + a + "</table>").cells
    variants = [c for c in cells if c in ("Headline specification", "Mixed areas kept",
                                          "without site 12", "Per 1,000 aged 75+")]
    assert variants[0] == "Headline specification"
    assert "without site 12" in variants  # an empty label falls back to the key's words
    assert "-0.120 (-0.320 to 0.080)" in cells
    # the variant's own sample, declared as such rather than tied to the flow
    doc = _parse("<table" + a + "</table>")
    samples = {x.get("data-sample") for x in doc.cell_attrs if x.get("data-sample")}
    assert "sensitivity:mixed_kept" in samples
    # the headline row is the headline sample: its counts are the flow's, and reconcile
    assert ("analysed|population_based", "31") in doc.counts
    assert "do not reconcile" not in appendix_html


def test_sustainability_window_is_named_in_words(appendix_html):
    a = _appendix(appendix_html)
    # synthetic data: named by months since start, with no real-data calendar months
    assert "month 36 after the start to the last month" in a
    assert "April 2018 - December 2019" not in a


def test_sustainability_months_are_named_on_the_real_data():
    from vanguard.report_appendix import sustainability_table

    rows = schema.results_frame([dict(analysis="sustainability", estimator="twfe", outcome=OUT,
                                      scale="rate", group="care_home", window=w, estimate=0.1,
                                      ci_low=-0.1, ci_high=0.3, p_value=0.4)
                                 for w in ("sustainability", "years_1_3", "year_4")])
    real = sustainability_table(rows, "nhs_mar")
    assert "April 2018 - December 2019" in real["notes"][0]
    assert [r[1] for r in real["rows"]][0].startswith("Years 1-3")
    assert "April 2018" not in sustainability_table(rows, "synthetic")["notes"][0]


def test_honest_breakdown_is_the_largest_m_that_excludes_zero(appendix_html):
    a = _appendix(appendix_html).split('id="appendix-honest"')[1].split("</table>")[0]
    assert "M = 0.5" in a and "-0.090 to -0.030" in a


def test_honest_breakdown_cases():
    def hd(bounds):
        return schema.results_frame([dict(analysis="honestdid", estimator="cs_never",
                                          outcome=OUT, scale="rate", group="uec",
                                          window="post_average", param=m, estimate=0.0,
                                          ci_low=lo, ci_high=hi) for m, lo, hi in bounds])
    assert honest_breakdown(hd([(0, -1, 1), (1, -2, 2)]), OUT, "uec").startswith("none")
    assert honest_breakdown(hd([(0, 1, 2), (1, 0.5, 3)]), OUT, "uec").startswith("above 1.0")
    assert honest_breakdown(hd([(0, 1, 2), (0.5, 0.1, 3), (1, -1, 3)]), OUT,
                            "uec") == "M = 0.5"
    assert honest_breakdown(hd([]), OUT, "uec") == "not computed"
    assert honest_table(hd([]), OUT) is None


def test_leave_one_out_summary_names_the_site_that_moves_the_estimate():
    rows = [_row(analysis="main", group="care_home", window="years_1_3", estimate=-0.10,
                 se=0.1, ci_low=-0.3, ci_high=0.1, p_value=0.4)]
    rows += [_row(analysis="leave_one_out", group="care_home", window="years_1_3",
                  site=s, estimate=b, se=0.1, ci_low=b - 0.2, ci_high=b + 0.2, p_value=0.5)
             for s, b in (("1", -0.11), ("2", 0.30), ("3", -0.09))]
    t = leave_one_out_table(schema.results_frame(rows), OUT, {"2": "Sutton Homes of Care"})
    assert t["rows"][0][4] == "Sutton Homes of Care: 0.300"
    assert t["rows"][0][5] == "1 of 3"


def test_extra_columns_are_required(tmp_path):
    (tmp_path / "results").mkdir()
    path = tmp_path / "results" / f"sensitivity__{OUT}.csv"
    assert read_extra(tmp_path, "sensitivity", OUT, ("sensitivity", "sensitivity_label")
                      ) is None
    df = _sensitivity_file(path).drop(columns=["sensitivity_label"])
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="sensitivity_label"):
        read_extra(tmp_path, "sensitivity", OUT, ("sensitivity", "sensitivity_label"))
    assert read_extra(tmp_path, "sustainability", OUT) is None


def test_absent_analyses_give_no_table(tmp_path):
    res = fabricate_results()
    res = res[res["analysis"] == "main"]
    (tmp_path / "results").mkdir()
    assert robustness_tables(tmp_path, res, OUT, "synthetic") == []


def test_not_estimated_rows_collapse_site_types_and_outcomes(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    for outcome in ("emergency_admissions", "elective_total"):
        pd.DataFrame({"notebook": "05_robustness", "outcome": outcome,
                      "group": ["population_based", "care_home"],
                      "analysis": "per-site effects",
                      "error": "the panel does not cover 4 month(s)"}).to_csv(
            tables / f"failures__05_robustness__{outcome}.csv", index=False)
    t = not_estimated_table(tmp_path)
    assert len(t["rows"]) == 1
    name, groups, outcomes, reason = t["rows"][0]
    assert name == "Per-site effects"
    assert groups == "Population-based (PACS & MCP), Enhanced health in care homes"
    assert sorted(outcomes.split(", ")) == ["elective admissions", "emergency admissions"]
    assert not_estimated_table(tmp_path / "nothing") is None


def test_what_the_sensitivity_notebook_skipped_is_one_clause_per_reason(tmp_path):
    from vanguard.report_appendix import skipped_note

    (tmp_path / "tables").mkdir()
    assert skipped_note(tmp_path, "sensitivity", OUT) == ""
    pd.DataFrame({
        "outcome": OUT, "sensitivity": ["whole_ccg_only", "without_site_3", "without_site_3"],
        "sensitivity_label": "x", "group": ["care_home", "care_home", "uec"],
        "reason": ["same estimate", "same estimate", "same estimate"],
    }).to_csv(tmp_path / "tables" / f"sensitivity_skipped__{OUT}.csv", index=False)
    note = skipped_note(tmp_path, "sensitivity", OUT)
    assert note.count("Same estimate") == 1
    assert "without site 3 (Enhanced health in care homes, Urgent & emergency care)" in note
    assert "uec" not in note and "care_home" not in note
