"""The lessons register and the rules that set each lesson against results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.report_lessons import (
    CONSISTENT,
    INCONCLUSIVE,
    NOT_CONSISTENT,
    NOT_TESTABLE,
    Evidence,
    assess_lessons,
    cochran_q,
    load_lessons,
    rule_heterogeneity,
    rule_power,
    rule_pretrend,
    rule_robustness,
    rule_spread,
    rule_timing,
    site_heterogeneity,
)

SEEDS = Path(config.ROOT).parent / "shared" / "seeds"


def _main(values: dict[tuple[str, str], tuple[float, float, float]], estimator="twfe",
          inference="cluster") -> pd.DataFrame:
    return schema.results_frame([
        dict(analysis="main", estimator=estimator, inference=inference, outcome="ea",
             scale="rate", group=g, window=w, estimate=b, ci_low=lo, ci_high=hi)
        for (g, w), (b, lo, hi) in values.items()])


def _ev(head, **kw) -> Evidence:
    return Evidence(headline=head, alternatives=kw.pop("alternatives", head), **kw)


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


def test_unknown_evidence_key_is_named(tmp_path):
    df = load_lessons()
    df.loc[0, "evidence"] = "main:year_9"
    with pytest.raises(DataError, match=r"row 2, column 'evidence'"):
        load_lessons(_write(tmp_path, df))


def test_duplicate_id_and_missing_column(tmp_path):
    df = load_lessons()
    df.loc[1, "lesson_id"] = df.loc[0, "lesson_id"]
    with pytest.raises(DataError, match="unique lesson_id"):
        load_lessons(_write(tmp_path, df))
    with pytest.raises(DataError, match="column 'source'"):
        load_lessons(_write(tmp_path, load_lessons().drop(columns="source")))


# --- statistics ---------------------------------------------------------------------


def test_cochran_q_matches_statsmodels():
    from statsmodels.stats.meta_analysis import combine_effects

    rng = np.random.default_rng(3)
    b = rng.normal(0, 0.05, 9)
    se = rng.uniform(0.01, 0.03, 9)
    q, dof, p, i2 = cochran_q(b, se)
    ref = combine_effects(b, se**2)
    assert q == pytest.approx(ref.q)
    assert dof == 8
    assert p == pytest.approx(stats.chi2.sf(ref.q, 8))
    assert i2 == pytest.approx(100 * ref.i2)


def test_cochran_q_size_under_homogeneity():
    """Planted truth: identical site effects -> Q test rejects about 5% of the time."""
    rng = np.random.default_rng(11)
    se = np.full(6, 0.02)
    rejections = sum(cochran_q(rng.normal(-0.03, se), se)[2] < 0.05 for _ in range(400))
    assert 0.02 < rejections / 400 < 0.09


def test_cochran_q_rejects_planted_heterogeneity():
    se = np.full(6, 0.01)
    q, _, p, i2 = cochran_q(np.array([-0.1, -0.05, 0.0, 0.05, 0.1, 0.0]), se)
    assert p < 1e-6 and i2 > 90


def test_cochran_q_bad_input():
    with pytest.raises(ValueError):
        cochran_q(np.array([0.1]), np.array([0.1]))
    with pytest.raises(ValueError):
        cochran_q(np.array([0.1, 0.2]), np.array([0.1, 0.0]))


def test_site_heterogeneity_recovers_se_from_ci_and_counts_sites():
    rows = [dict(analysis="per_site", estimator="twfe", outcome="ea", scale="rate",
                 group="care_home", window="years_1_3", site=f"S{i}", estimate=b,
                 ci_low=b - 1.96 * 0.01, ci_high=b + 1.96 * 0.01)
            for i, b in enumerate([-0.1, -0.05, 0.0, 0.05])]
    h = site_heterogeneity(schema.results_frame(rows))["care_home"]
    q_ref = cochran_q(np.array([-0.1, -0.05, 0.0, 0.05]), np.full(4, 0.01))[0]
    assert h.n_sites == 4 and h.q == pytest.approx(q_ref, rel=1e-4)  # 1.96 vs exact z
    assert h.n_reduction == 2  # -0.1 and -0.05 have CIs below zero


# --- rules --------------------------------------------------------------------------

G = "population_based"


def test_timing_rule_year3_only_is_consistent():
    head = _main({(G, "year_1"): (-0.01, -0.03, 0.01), (G, "year_3"): (-0.04, -0.06, -0.02)})
    verdict, text = rule_timing(_ev(head))
    assert verdict == CONSISTENT and "year 3" in text


def test_timing_rule_year1_effect_is_not_consistent():
    head = _main({(G, "year_1"): (-0.04, -0.06, -0.02), (G, "year_3"): (-0.04, -0.06, -0.02)})
    assert rule_timing(_ev(head))[0] == NOT_CONSISTENT


def test_timing_rule_no_effect_is_inconclusive_and_missing_is_untestable():
    head = _main({(G, "year_1"): (0.0, -0.02, 0.02), (G, "year_3"): (0.0, -0.02, 0.02)})
    assert rule_timing(_ev(head))[0] == INCONCLUSIVE
    head = _main({(G, "years_1_3"): (0.0, -0.02, 0.02)})
    assert rule_timing(_ev(head))[0] == NOT_TESTABLE


def test_power_rule_compares_mde_with_hoped_for():
    head = _main({(G, "years_1_3"): (0.0, -0.02, 0.02)})
    v, text = rule_power(_ev(head, mde_pct={G: 4.2}, hoped_for_pct=3))
    assert v == CONSISTENT and "4.2%" in text and "3% reduction" in text
    assert rule_power(_ev(head, mde_pct={G: 1.5}, hoped_for_pct=3))[0] == INCONCLUSIVE
    assert rule_power(_ev(head))[0] == NOT_TESTABLE


def test_pretrend_rule():
    head = _main({(G, "years_1_3"): (0.0, -0.02, 0.02)})
    v, text = rule_pretrend(_ev(head, pretrend_p={G: 0.004}))
    assert v == CONSISTENT and "p = 0.004" in text
    assert rule_pretrend(_ev(head, pretrend_p={G: 0.6}))[0] == INCONCLUSIVE


def test_heterogeneity_and_spread_rules():
    from vanguard.report_lessons import Heterogeneity

    head = _main({(G, "years_1_3"): (-0.01, -0.03, 0.01)})
    het = {G: Heterogeneity(n_sites=5, q=30.0, df=4, p_value=0.0001, i2=86.0,
                            n_reduction=2, n_same_sign=3)}
    v, text = rule_heterogeneity(_ev(head, heterogeneity=het))
    assert v == CONSISTENT and "I² = 86%" in text and "governance" in text
    v, text = rule_spread(_ev(head, heterogeneity=het))
    assert v == CONSISTENT and "2 of 5 sites" in text
    head_clear = _main({(G, "years_1_3"): (-0.04, -0.06, -0.02)})
    het_all = {G: Heterogeneity(5, 3.0, 4, 0.56, 0.0, 5, 5)}
    assert rule_spread(_ev(head_clear, heterogeneity=het_all))[0] == NOT_CONSISTENT
    assert rule_heterogeneity(_ev(head_clear, heterogeneity=het_all))[0] == INCONCLUSIVE


def test_robustness_rule_agreement_and_disagreement():
    a = _main({(G, "years_1_3"): (-0.04, -0.06, -0.02)})
    b = _main({(G, "years_1_3"): (-0.03, -0.07, 0.01)}, estimator="cs_never")
    agree = _ev(a, alternatives=pd.concat([a, a.assign(inference="wild_bootstrap")]))
    assert rule_robustness(agree)[0] == CONSISTENT
    assert rule_robustness(_ev(a, alternatives=pd.concat([a, b])))[0] == INCONCLUSIVE


def test_assess_all_lessons_names_untestable_ones():
    head = _main({(G, w): (-0.01, -0.03, 0.01) for w in schema.WINDOWS})
    out = assess_lessons(load_lessons(), _ev(head))
    assert len(out) == len(load_lessons())
    untestable = [o for o in out if o["rule"] == "not_testable"]
    assert untestable and all(o["verdict"] == NOT_TESTABLE for o in untestable)
    assert all(o["evidence_text"] for o in out)
