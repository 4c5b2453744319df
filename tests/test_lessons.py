"""The lessons register: its validation, and its assessment against hand-built results
(every testable lesson can come out "not supported"; evidence is never recycled)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lesson_cases import G, all_not_supported, all_supported, underpowered

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.report_lessons import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    RULES,
    SUPPORTED,
    VERDICTS,
    Evidence,
    assess_lessons,
    lesson_inputs,
    load_lessons,
    parse_threshold,
    read_sensitivity,
    untested_sentence,
)

SEEDS = Path(config.ROOT).parent / "shared" / "seeds"


# --- the register -----------------------------------------------------------------


def test_register_loads_and_covers_required_lessons():
    df = load_lessons()
    titles = " | ".join(df["lesson"]).lower()
    for needle in ("old foundations", "reserve more time", "evaluation should be a core",
                   "function before form", "evaluation capability", "scale",
                   "organisational form", "barriers to integration"):
        assert needle in titles or needle in " ".join(df["summary"]).lower(), needle
    assert df["lesson_id"].is_unique


def test_register_cites_every_seed_and_only_seeds():
    df = load_lessons()
    if SEEDS.is_dir():
        assert set(df["source_file"]) == {p.name for p in SEEDS.glob("*.txt")}
    assert (df["source"].str.len() > 10).all()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="source articles not beside the project")
def test_register_paraphrases_rather_than_copies():
    """No run of 12 consecutive words from a source appears in the register's summaries."""
    df = load_lessons()

    def grams(text, n=12):
        words = [w.strip(".,;:'\"()–-").lower() for w in text.split()]
        words = [w for w in words if w]
        return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}

    for r in df.itertuples():
        src = grams((SEEDS / r.source_file).read_text(encoding="utf-8"))
        assert not (grams(r.summary) & src), r.lesson_id


def test_register_sources_match_the_text_of_the_seed():
    if not SEEDS.is_dir():
        pytest.skip("source articles not beside the project")
    df = load_lessons()
    for r in df.itertuples():
        text = (SEEDS / r.source_file).read_text(encoding="utf-8")
        for name in ("Andrew Laird", "John Copps", "Lord Patel", "Melanie Henwood",
                     "Mutual Ventures", "Public Sector Focus", "Public Sector Executive",
                     "PSE", "Breaking Barriers", "Hazel Blears", "Guardian Professional",
                     "Health Foundation", "King's Fund", "Nuffield Trust"):
            if name in r.source:
                assert name in text, (r.lesson_id, name)


def _write(tmp_path, df):
    p = tmp_path / "lessons.csv"
    df.to_csv(p, index=False)
    return p


def test_unknown_rule_is_named(tmp_path):
    df = load_lessons()
    df.loc[3, "rule"] = "vibes"
    with pytest.raises(DataError, match=r"row 5, column 'rule'.*'vibes'"):
        load_lessons(_write(tmp_path, df))


def test_testable_lesson_needs_a_prediction(tmp_path):
    df = load_lessons()
    i = int(np.flatnonzero(df["rule"].to_numpy() == "timing")[0])
    df.loc[i, "prediction"] = " "
    with pytest.raises(DataError, match=rf"row {i + 2}, column 'prediction'"):
        load_lessons(_write(tmp_path, df))


def test_untestable_lesson_may_not_carry_a_prediction(tmp_path):
    """A prediction no rule tests would be silently ignored."""
    df = load_lessons()
    i = int(np.flatnonzero(df["rule"].to_numpy() == "not_testable")[0])
    df.loc[i, "prediction"] = "governance improves admissions"
    with pytest.raises(DataError, match=rf"row {i + 2}, column 'prediction'"):
        load_lessons(_write(tmp_path, df))


@pytest.mark.parametrize("threshold, message", [
    ("margin_pct=hoped_for", "exactly the thresholds of rule 'timing'"),  # one missing
    ("margin_pct=hoped_for;pretrend_alpha=0.05;power=0.8", "exactly the thresholds"),
    ("margin_pct=lots;pretrend_alpha=0.05", "expected a number"),
    ("margin_pct;pretrend_alpha=0.05", "not name=value"),
    ("margin_pct=1;margin_pct=2", "given twice"),
])
def test_thresholds_are_exactly_the_rules(tmp_path, threshold, message):
    df = load_lessons()
    i = int(np.flatnonzero(df["rule"].to_numpy() == "timing")[0])
    df.loc[i, "threshold"] = threshold
    with pytest.raises(DataError, match=rf"row {i + 2}, column 'threshold'.*{message}"):
        load_lessons(_write(tmp_path, df))


def test_parse_threshold():
    assert parse_threshold("") == {}
    assert parse_threshold("alpha=0.05; margin_pct=hoped_for") == {
        "alpha": 0.05, "margin_pct": "hoped_for"}
    with pytest.raises(ValueError, match="finite"):
        parse_threshold("alpha=inf")


def test_every_testable_lesson_states_a_prediction_quantity_and_its_rules_thresholds():
    df = load_lessons()
    testable = df[df["rule"] != "not_testable"]
    assert len(testable) >= 6
    assert testable["rule"].is_unique  # no two lessons judged by the same test
    for r in testable.itertuples():
        assert len(r.prediction) > 60 and r.prediction.rstrip().endswith(".")
        assert ".csv" in r.quantity, r.lesson_id  # stated in terms of the result files
        assert set(parse_threshold(r.threshold)) == set(RULES[r.rule].params)
    process = df[df["rule"] == "not_testable"]
    assert process["lesson_id"].tolist() == ["L02", "L06", "L07", "L08", "L10", "L11"]


def test_duplicate_id_and_missing_column(tmp_path):
    df = load_lessons()
    df.loc[1, "lesson_id"] = df.loc[0, "lesson_id"]
    with pytest.raises(DataError, match="unique lesson_id"):
        load_lessons(_write(tmp_path, df))
    with pytest.raises(DataError, match="column 'source'"):
        load_lessons(_write(tmp_path, load_lessons().drop(columns="source")))




# --- assessment on hand-built results -------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [x.strip() for x in re.split(r"(?<=\.)\s+(?=[A-Z])", text) if x.strip()]


def _testable():
    return load_lessons().query("rule != 'not_testable'")["lesson_id"].tolist()


@pytest.mark.parametrize("case, verdict", [(all_not_supported, NOT_SUPPORTED),
                                           (all_supported, SUPPORTED)])
def test_every_testable_lesson_can_come_out_either_way(case, verdict):
    out = assess_lessons(load_lessons(), case())
    got = {o["lesson_id"]: o["verdict"] for o in out if o["rule"] != "not_testable"}
    assert set(got) == set(_testable())
    assert got == dict.fromkeys(got, verdict)
    assert all(o["testable"] for o in out if o["rule"] != "not_testable")


def test_underpowered_design_gives_inconclusive_except_where_power_is_the_prediction():
    out = assess_lessons(load_lessons(), underpowered())
    got = {o["rule"]: o["verdict"] for o in out if o["rule"] != "not_testable"}
    assert got.pop("site_power") == SUPPORTED  # the lesson predicts a single site's weakness
    assert set(got.values()) == {INCONCLUSIVE}


@pytest.mark.parametrize("case", [all_not_supported, all_supported, underpowered])
def test_no_two_lessons_share_an_evidence_sentence(case):
    out = assess_lessons(load_lessons(), case())
    seen: dict[str, str] = {}
    for o in out:
        assert o["verdict"] in VERDICTS
        assert o["evidence"] and o["evidence"] == o["evidence_text"]
        for sentence in _sentences(o["evidence"]):
            assert sentence not in seen, (o["lesson_id"], seen.get(sentence), sentence)
            seen[sentence] = o["lesson_id"]


def test_rows_keep_the_report_interface():
    out = assess_lessons(load_lessons(), all_supported())
    for o in out:
        for key in ("lesson", "verdict", "evidence", "prediction", "source", "quantity",
                    "criterion", "testable", "by_group", "thresholds", "missing"):
            assert key in o, key
    timing = next(o for o in out if o["rule"] == "timing")
    assert timing["thresholds"] == {"margin_pct": 3.0, "pretrend_alpha": 0.05}
    assert "3 points" in timing["criterion"]  # the run's threshold, written in
    assert timing["by_group"][0]["group"] == G and timing["by_group"][0]["verdict"] == SUPPORTED


def test_hoped_for_reduction_sets_the_margin():
    """The same results judged against a 1% instead of a 3% margin."""
    ev = all_not_supported()
    ev.hoped_for_pct = 0.1  # the design's 1.5% MDE is now too coarse
    out = {o["rule"]: o for o in assess_lessons(load_lessons(), ev)}
    assert out["underpowered"]["verdict"] == SUPPORTED
    assert "0.1%" in out["underpowered"]["evidence"]
    ev.hoped_for_pct = 0
    with pytest.raises(ValueError, match="hoped_for_pct"):
        assess_lessons(load_lessons(), ev)


def test_untestable_lessons_collapse_into_one_sentence():
    out = assess_lessons(load_lessons(), all_supported())
    sentence = untested_sentence(out)
    process = [o for o in out if o["rule"] == "not_testable"]
    assert sentence.startswith("Cannot be tested with these data: ")
    assert len(_sentences(sentence)) == 1
    for o in process:
        assert o["verdict"] == NOT_TESTABLE and not o["testable"]
        assert o["lesson"] in sentence and o["quantity"] in sentence
    for o in out:
        if o["testable"]:
            assert o["lesson"] not in sentence
    assert untested_sentence([o for o in out if o["testable"]]) == ""


def test_lessons_a_run_lacks_results_for_join_the_sentence():
    ev = all_supported()
    ev.sustainability = ev.sustainability.iloc[0:0]
    out = assess_lessons(load_lessons(), ev)
    lacking = next(o for o in out if o["rule"] == "persistence")
    assert lacking["verdict"] == NOT_TESTABLE and not lacking["testable"]
    assert "sustainability__emergency_admissions.csv" in lacking["evidence"]
    sentence = untested_sentence(out)
    assert f"{lacking['lesson']} (no estimates for the window after funding ended)" in sentence
    assert len(_sentences(sentence)) == 1


# --- selecting the evidence from a run's results ----------------------------------------


def _run_results():
    from lesson_cases import main, rows, sites

    parts = [
        main({(G, "years_1_3"): (-1.0, -2.0, 0.0), (G, "sustainability"): (-2.0, -3.0, -1.0)}),
        main({(G, "years_1_3"): (-1.0, -2.0, 0.0)}, estimator="twfe_poisson"),
        rows("placebo", {(G, "year_1", -12): (0.5, -0.5, 1.5)}),
        sites(G, [-1.0, 0.0, 1.0], half_width=2.0),
        sites(G, [-1.0, -1.2], half_width=1.0, analysis="leave_one_out", inference="cluster"),
        rows("power", {(G, "years_1_3"): (1.5, float("nan"), float("nan"))},
             note="MDE ...; so this MDE overstates the design's (fewer months ...)"),
        # another outcome's rows are never picked up
        rows("placebo", {(G, "year_1", -12): (9.0, 8.0, 10.0)}).assign(outcome="other"),
    ]
    return schema.results_frame(pd.concat(parts, ignore_index=True))


def test_lesson_inputs_selects_each_part_for_the_headline_outcome():
    res = _run_results()
    got = lesson_inputs(res, "emergency_admissions", "rate")
    assert len(got["placebo"]) == 1 and got["placebo"]["pct"].iloc[0] == pytest.approx(0.5)
    assert len(got["per_site"]) == 3 and len(got["leave_one_out"]) == 2
    assert set(got["sustainability"]["window"]) == {"sustainability"}
    assert got["sensitivity"].empty
    assert got["mde_shortened"] == {G: True}
    assert lesson_inputs(res, "emergency_admissions", "log")["placebo"].empty


def test_lesson_inputs_reads_the_sensitivity_file_with_its_labels(tmp_path):
    from lesson_cases import main

    sens = main({(G, "year_1"): (-1.0, -2.0, 0.0)}).assign(
        sensitivity="mixed_kept", sensitivity_label="mixed areas kept")
    (tmp_path / "results").mkdir()
    sens.to_csv(tmp_path / "results" / "sensitivity__emergency_admissions.csv", index=False)
    got = lesson_inputs(_run_results(), "emergency_admissions", "rate", run_path=tmp_path)
    assert got["sensitivity"]["sensitivity_label"].tolist() == ["mixed areas kept"]
    assert got["sensitivity"]["pct"].iloc[0] == pytest.approx(-1.0)
    sens.drop(columns="sensitivity").to_csv(
        tmp_path / "results" / "sensitivity__emergency_admissions.csv", index=False)
    with pytest.raises(DataError, match="sensitivity__emergency_admissions.csv.*'sensitivity'"):
        read_sensitivity(tmp_path, "emergency_admissions")


def test_lesson_inputs_takes_a_sensitivity_frame_read_already(tmp_path):
    """The report reads the sensitivity file once and hands it over: the frame given is
    used (rows of another scale dropped) and no file is read in its place."""
    from lesson_cases import main

    given = schema.results_frame(pd.concat([
        main({(G, "year_1"): (-1.0, -2.0, 0.0)}).assign(
            sensitivity="mixed_kept", sensitivity_label="mixed areas kept"),
        main({(G, "year_1"): (-3.0, -4.0, -2.0)}).assign(
            scale="log", sensitivity="mixed_kept", sensitivity_label="mixed areas kept"),
    ], ignore_index=True))
    (tmp_path / "results").mkdir()
    on_disk = tmp_path / "results" / "sensitivity__emergency_admissions.csv"
    on_disk.write_text("not a results file\n")
    got = lesson_inputs(_run_results(), "emergency_admissions", "rate", run_path=tmp_path,
                        sensitivity=given)
    assert got["sensitivity"]["pct"].tolist() == [pytest.approx(-1.0)]
    assert got["sensitivity"]["sensitivity_label"].tolist() == ["mixed areas kept"]


def test_evidence_built_as_the_report_builds_it_still_assesses():
    """Without the optional parts, lessons needing them cannot be tested - and say why."""
    ev = Evidence(headline=all_supported().headline, alternatives=all_supported().headline,
                  pretrend_p={G: 0.5}, heterogeneity={}, mde_pct={G: 5.0},
                  hoped_for_pct=3.0, data_source="synthetic")
    out = {o["rule"]: o for o in assess_lessons(load_lessons(), ev)}
    assert out["timing"]["verdict"] == SUPPORTED
    for rule in ("placebo_fall", "site_power", "persistence", "heterogeneity",
                 "concentration"):
        assert out[rule]["verdict"] == NOT_TESTABLE and out[rule]["missing"], rule
