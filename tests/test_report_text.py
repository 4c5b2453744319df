"""The editable prose template, the key findings box and the data and reproducibility box."""

from __future__ import annotations

import json
import re

import jinja2
import numpy as np
import pandas as pd
import pytest
from test_report import _parse, fabricate_results, make_run

from vanguard import config, schema
from vanguard.report_text import TEXT_TEMPLATE, read_sections, render_text


def test_the_shipped_template_has_the_sections_the_report_prints():
    names = set(read_sections())
    assert {"question", "findings_lead", "estimand", "model", "windows", "controls",
            "inference", "quality", "limitations", "not_estimated_banner"} <= names


def test_an_edited_template_changes_the_report_text_without_python(tmp_path):
    path = tmp_path / "text.md"
    path.write_text("<!-- a note for editors -->\n## question\nWhat did {{ programme }} do?"
                    "\n\nSecond paragraph.\n- a point\n  continued\n## other\n{% if flag %}"
                    "shown{% endif %}\n", encoding="utf-8")
    out = render_text({"programme": "the falls scheme", "flag": False}, path)
    assert out["question"] == [{"kind": "p", "text": "What did the falls scheme do?"},
                               {"kind": "p", "text": "Second paragraph."},
                               {"kind": "li", "text": "a point continued"}]
    assert out["other"] == []


def test_a_misspelt_placeholder_stops_the_report(tmp_path):
    path = tmp_path / "text.md"
    path.write_text("## question\n{{ programe }}\n", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError, match="programe"):
        render_text({"programme": "x"}, path)
    path.write_text("## a\nx\n## a\ny\n", encoding="utf-8")
    with pytest.raises(ValueError, match="appears twice"):
        read_sections(path)


def test_the_template_holds_no_numbers_of_results():
    """Numbers flow in from the results: the only digits in the prose are fixed facts
    of the design (dates, the 95 % level, the 0-35 months of years 1-3)."""
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|<!--.*?-->", "", TEXT_TEMPLATE.read_text(),
                  flags=re.S)
    numbers = set(re.findall(r"\d+(?:\.\d+)?", text))
    assert numbers <= {"95", "0", "1", "2", "3", "35", "5", "2015", "2018", "2019", "2013",
                       "0.05"}, numbers


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from vanguard.report import build_report

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("text")
    res = fabricate_results()
    run = make_run(root, mp, name="text", results=res)
    run_path = config.run_dir(run)
    m = json.loads((run_path / "manifest.json").read_text())
    m.update(git_commit="a" * 40, git_dirty=True, parameter_set="params/ci.yml",
             parameters={"data_source": "synthetic", "seed": 4242},
             packages={"numpy": "9.9.9", "typst": "0.0.1"})
    (run_path / "manifest.json").write_text(json.dumps(m))
    html_path, pdf_path = build_report(run)
    from vanguard import report as rep

    content = rep.build_content(run)
    yield {"html": html_path.read_text(encoding="utf-8"), "content": content,
           "run_path": run_path, "res": res}
    mp.undo()


def test_page_one_answers_the_question_with_the_numbers(report):
    summary = report["html"].split('id="summary"')[1].split("</section>")[0]
    cells = _parse(summary).cells
    res = report["res"]
    r = res[(res["analysis"] == "main") & (res["group"] == "care_home")
            & (res["window"] == "years_1_3") & (res["inference"] == "wild_bootstrap")].iloc[0]
    assert f"{r['pct']:.1f} % ({r['pct_ci_low']:.1f} to {r['pct_ci_high']:.1f})" in cells
    power = res[(res["analysis"] == "power") & (res["group"] == "care_home")
                & (res["param"] == 0.8)].iloc[0]
    assert f"Effects smaller than <span class=\"num\">{power['pct']:.1f}</span> % could not " \
           "be detected" in summary
    # the care-home pre-trend test of the fabricated run fails (p = 0.0312)
    assert "failed (p = 0.031)" in cells
    assert "passed (p = 0.412)" in cells
    # the published estimate on the same scale (rate: per 1,000 per month)
    assert "-0.042 per 1,000 per month (-0.082 to -0.002), -0.5 %" in cells  # % of 7.9


def test_the_base_of_every_percentage_is_stated_once(report):
    assert report["html"].count("Every % in this report is a % of") == 1


def test_failed_pretrend_and_power_become_limitations(report):
    lim = report["html"].split("Limitations of this run")[1].split("</section>")[0]
    assert "for Enhanced health in care homes the pre-trend test failed (p = 0.031)" in lim
    assert "Population-based (PACS &amp; MCP) the pre-trend" not in lim


def test_methods_box_states_estimand_model_windows_controls_inference_quality(report):
    names = [m["name"] for m in report["content"]["methods"]]
    assert names == ["Outcome", "Estimand", "Model", "Windows", "Comparison areas",
                     "Inference", "Data quality"]
    model = report["content"]["methods"][2]["text"]
    assert "y(i,t) = a(i) + m(t) + b x D(i,t) + e(i,t)" in model
    assert "186" in report["content"]["methods"][4]["text"]
    # synthetic emergency admissions are what the published figures count: no caveat
    assert "definition" not in report["content"]["methods"][0]["text"]


def test_data_box_in_html_and_pdf_names_commit_dirty_state_seed_and_packages(report):
    import typst

    from vanguard import report as rep

    box = report["html"].split('id="data"')[1].split("</section>")[0]
    for text in ("a" * 40, "uncommitted changes", "params/ci.yml", "seed 4242",
                 "numpy 9.9.9", "Synthetic England"):
        assert text in box, text
    content = {**report["content"], "failure_banner": "", "not_estimated": [],
               "incomplete_notebooks": []}
    found = typst.query((rep.TEMPLATES / "report.typ").read_bytes(), "<data-box>",
                        root=str(report["run_path"]),
                        sys_inputs={"content": json.dumps(content,
                                                          default=rep._json_default)})
    for text in ("a" * 40, "uncommitted changes", "params/ci.yml", "seed 4242", "numpy 9.9.9"):
        assert text in found, text


def test_a_custom_programme_gets_its_own_title(tmp_path, monkeypatch):
    from vanguard.report import build_report

    res = fabricate_results()
    res = res[res["analysis"] == "main"].assign(
        group=lambda d: d["group"].map({"population_based": "falls_prevention",
                                        "care_home": "home_visits"}))
    res = schema.results_frame(res)
    run = make_run(tmp_path, monkeypatch, name="custom", data_source="falls", results=res,
                   truth=False, panel=False)
    html = build_report(run)[0].read_text(encoding="utf-8")
    title = re.search(r"<h1>(.*?)</h1>", html).group(1)
    assert "vanguard" not in title.lower()
    assert "falls prevention" in title
    # nothing was published for these groups: no comparison column, no published base
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert "Morciano" not in summary and "7.9 per 1,000" not in summary


def test_a_failed_event_study_is_missing_on_page_one_not_replaced(tmp_path, monkeypatch):
    """The event-study notebook failed: its pre-trend test is shown as missing, and the
    Callaway-Sant'Anna test that the DiD notebook also wrote does not stand in for it."""
    from vanguard.report import build_report

    res = fabricate_results()
    res = res[~res["analysis"].isin(["event_study", "pretrend"])]
    cs_test = [dict(data_source="synthetic", analysis="pretrend", estimator="cs_never",
                    outcome="emergency_admissions", scale="rate", group=g, window="pre",
                    estimate=2.0, p_value=0.0077, inference="multiplier_bootstrap")
               for g in ("population_based", "care_home")]
    res = schema.results_frame(pd.concat([res, schema.results_frame(cs_test)]))
    run = make_run(tmp_path, monkeypatch, name="noes", results=res)
    run_path = config.run_dir(run)
    m = json.loads((run_path / "manifest.json").read_text())
    m.update(status="failed", notebooks=[
        {"notebook": "04_event_study", "output": "notebooks/04_event_study__x.ipynb",
         "ok": False, "status": "failed"}])
    (run_path / "manifest.json").write_text(json.dumps(m))
    html = build_report(run, allow_incomplete=True)[0].read_text(encoding="utf-8")
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert "missing: 04_event_study__x (failed) did not finish" in summary
    assert "0.008" not in summary and "pre-trend test failed" not in summary
    lessons = html.split('id="lessons"')[1].split("</section>")[0]
    assert "p = 0.008" not in lessons


def test_a_complete_run_names_a_substitute_pretrend_test(tmp_path, monkeypatch):
    """Without an event study, another estimator's pre-trend test may be shown, by name."""
    from vanguard.report import build_report

    res = fabricate_results()
    res = res[~res["analysis"].isin(["event_study", "pretrend"])]
    cs_test = [dict(data_source="synthetic", analysis="pretrend", estimator="cs_never",
                    outcome="emergency_admissions", scale="rate", group="care_home",
                    window="pre", estimate=2.0, p_value=0.0077,
                    inference="multiplier_bootstrap")]
    res = schema.results_frame(pd.concat([res, schema.results_frame(cs_test)]))
    run = make_run(tmp_path, monkeypatch, name="cs", results=res)
    doc = _parse(build_report(run)[0].read_text(encoding="utf-8"))
    assert "failed (p = 0.008, Callaway-Sant'Anna (never-treated comparison))" in doc.cells


def test_the_short_answer_gives_each_site_types_verdict(report):
    answer = report["html"].split('id="answer"')[1].split("</div>")[0]
    res = report["res"]
    head = res[(res["analysis"] == "main") & (res["estimator"] == "twfe")
               & (res["inference"] == "wild_bootstrap") & (res["window"] == "years_1_3")]
    for r in head.itertuples():
        name = {"population_based": "Population-based (PACS &amp; MCP)",
                "care_home": "Enhanced health in care homes"}[r.group]
        if r.ci_high < 0:
            assert f"a clear reduction in emergency admissions for {name}" in answer or (
                "a clear reduction" in answer and name in answer)
        elif r.ci_low > 0:
            assert "a clear increase" in answer and name in answer
        else:
            assert "no clear effect" in answer and name in answer
    assert "could not be detected" in answer
    assert "Enhanced health in care homes the trends before the start already differed" \
        in answer


def test_an_uncertain_published_unit_is_said_beside_the_comparison(tmp_path, monkeypatch):
    from vanguard.report import build_report

    res = fabricate_results()
    beds = res[res["analysis"] == "main"].assign(outcome="bed_days")
    res = schema.results_frame(pd.concat([res, beds], ignore_index=True))
    run = make_run(tmp_path, monkeypatch, name="beds", results=res)
    html = build_report(run)[0].read_text(encoding="utf-8")
    beds_table = html.split('id="main-bed_days"')[1].split("</table>")[0]
    notes = html.split('id="main-bed_days"')[1].split("<table")[0]
    assert "0.011 (-0.017 to 0.039)" in beds_table  # published years 1-3, population-based
    assert "The published unit is uncertain" in notes and "per, 00" in notes
    ea_notes = html.split('id="main-emergency_admissions"')[1].split("<table")[0]
    assert "uncertain" not in ea_notes


def test_published_figures_on_another_scale_are_called_not_comparable():
    from vanguard.report_findings import published_text

    p = pd.Series({"estimate": -0.042, "ci_low": -0.082, "ci_high": -0.002})
    assert published_text(p, "count", 7.9).startswith("not comparable, because the "
                                                      "published figures are rates")
    assert published_text(p, "log", None).startswith("not comparable")
    # -0.042 / 7.9 = -0.53 %; the upper limit -0.025 % rounds to 0.0 (no negative zero)
    assert published_text(p, "poisson", 7.9) == "-0.5 % (-1.0 % to 0.0 %)"
    assert published_text(None, "rate", 7.9).startswith("not published")


def _main_rows(groups=(schema.POPULATION_BASED, schema.CARE_HOME)):
    return pd.DataFrame([{"group": g, "window": w, "estimate": -0.01, "ci_low": -0.05,
                          "ci_high": 0.03, "pct": -0.1, "pct_ci_low": -0.6,
                          "pct_ci_high": 0.4, "p_value": 0.6, "n_treated": 20,
                          "n_control": 140} for g in groups for w in schema.WINDOWS])


def test_non_elective_admissions_sit_beside_published_emergency_admissions_with_a_caveat():
    """The real data's headline counts all non-elective admissions; Morciano et al.
    counted emergency admissions. Their figures are shown on the same scale, and every
    table that shows them says the definitions differ."""
    from vanguard.report_content import load_published_table1
    from vanguard.report_findings import definition_note, main_table, published_row

    pub = load_published_table1()
    row = published_row(pub, "non_elective_admissions", schema.CARE_HOME, "years_1_3")
    assert row["estimate"] == -0.042 and row["outcome"] == "emergency_admissions"
    assert published_row(pub, "elective_total", schema.CARE_HOME, "years_1_3") is None
    t = main_table(_main_rows(), {"scale": "rate"}, "non_elective_admissions", pub, 7.9,
                   {}, synthetic=False)
    assert any(c.startswith("Morciano et al. 2020") for c in t["columns"])
    assert "-0.042 (-0.082 to -0.002)" in [c for r in t["rows"] for c in r]
    assert t["notes"][:1] == definition_note("non_elective_admissions")
    assert "narrower count than non-elective admissions" in t["notes"][0]
    assert t["title"] == "Main results: non-elective admissions"
    same = main_table(_main_rows(), {"scale": "rate"}, "emergency_admissions", pub, 7.9,
                      {}, synthetic=True)
    assert not any("narrower" in n for n in same["notes"])


def test_the_methods_outcome_entry_defines_the_real_data_headline(tmp_path):
    one = tmp_path / "outcome.md"
    one.write_text("## outcome\n" + read_sections()["outcome"], encoding="utf-8")
    ctx = {"outcome_cap": "Non-elective admissions", "real_mar": True,
           "definition_differs": True, "published_study": "Morciano et al. (2020)",
           "secondary_outcomes": "elective admissions, GP referrals"}
    text = " ".join(b["text"] for b in render_text(ctx, one)["outcome"])
    assert "maternity, transfers" in text and "emergency admissions only" in text
    assert "(Holm): elective admissions, GP referrals" in text


def test_secondary_outcomes_carry_holm_adjusted_p_values():
    from vanguard.report_content import load_published_table1
    from vanguard.report_findings import holm_adjusted, main_table

    a = _main_rows((schema.CARE_HOME,)).iloc[:2].assign(p_value=[0.01, 0.04])
    b = _main_rows((schema.UEC,)).iloc[:1].assign(p_value=[0.03])
    got = holm_adjusted({"elective_total": a, "gp_referrals_made_all": b})
    # Holm by hand: sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 0.04)
    w = list(schema.WINDOWS)
    assert got == pytest.approx({("elective_total", schema.CARE_HOME, w[0]): 0.03,
                                 ("elective_total", schema.CARE_HOME, w[1]): 0.06,
                                 ("gp_referrals_made_all", schema.UEC, w[0]): 0.06})
    t = main_table(a, {"scale": "rate"}, "elective_total", load_published_table1(), 7.9,
                   {}, synthetic=False, adjusted=got)
    col = t["columns"].index("p, Holm-adjusted")
    assert [r[col] for r in t["rows"]] == ["0.030", "0.060"]
    assert any("all 3 secondary tests" in n for n in t["notes"])
    assert holm_adjusted({}) == {}


def test_holm_adjustment_equals_statsmodels_to_the_bit():
    """Ties, p-values pushed past 1 and a NaN left out, on a family of 60 tests."""
    from statsmodels.stats.multitest import multipletests

    from vanguard.report_findings import holm_adjusted

    rng = np.random.default_rng(3)
    windows = list(schema.WINDOWS)
    p = np.round(rng.uniform(0, 0.2, 60), 2)  # rounding makes ties
    p[:5] = [0.5, 0.9, 0.0, 0.01, 0.01]
    secondary = {f"outcome_{k}": pd.DataFrame(
        {"group": schema.CARE_HOME, "window": windows[:4],
         "p_value": p[4 * k:4 * k + 4]}) for k in range(15)}
    secondary["outcome_nan"] = pd.DataFrame(
        {"group": [schema.UEC], "window": [windows[0]], "p_value": [np.nan]})
    got = holm_adjusted(secondary)
    want = multipletests(p, alpha=0.05, method="holm")[1]
    assert list(got.values()) == want.tolist()
    assert ("outcome_nan", schema.UEC, windows[0]) not in got


def test_the_real_data_headline_is_non_elective_admissions_among_its_outcomes():
    from vanguard.mar.panel import OUTCOMES
    from vanguard.params import load_yaml
    from vanguard.report_content import choose_headline

    grid = load_yaml(config.PARAMS / "nhs_mar.yml")["grid"]["outcomes"]
    assert grid[0] == "non_elective_admissions" and set(grid) == set(OUTCOMES)
    main = pd.concat([_main_rows().assign(outcome=o) for o in sorted(grid)])
    main = main.assign(analysis="main", scale="rate", estimator="twfe",
                       inference="cluster", note="")
    assert choose_headline(main, {})["outcome"] == "non_elective_admissions"


def test_the_reproducibility_box_says_how_many_notebook_runs_were_restored():
    from vanguard.report_provenance import reproducibility

    nbs = [{"notebook": "01_data", "restored": True}, {"notebook": "03_did", "restored": False},
           {"notebook": "03_did", "restored": True}]
    lines = reproducibility({"git_commit": "a" * 40, "git_dirty": False, "notebooks": nbs})
    assert any(line.startswith("Notebook runs: 2 of the 3 analysis notebook runs") for line in lines)
    fresh = reproducibility({"git_commit": "a" * 40, "notebooks": nbs[1:2]})
    assert not any(line.startswith("Notebook runs") for line in fresh)
