"""Each lesson rule on hand-built results: a supported, a not-supported and an
underpowered case, the gates (estimates that disagree, a failed pre-trend test) and the
statistics the rules rest on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lesson_cases import (
    G,
    H,
    all_not_supported,
    all_supported,
    evidence,
    main,
    rows,
    sites,
    underpowered,
)
from scipy import stats

from vanguard import lesson_rules as lr
from vanguard import schema
from vanguard.lesson_stats import (
    MDE_MULTIPLIER,
    cochran_q,
    mde_shortened,
    pct_se,
    q_power,
    site_heterogeneity,
)
from vanguard.report_lessons import INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED

M = 3.0  # the hoped-for reduction, %
A = 0.05

RULE_CALLS = {
    "placebo_fall": lambda ev: lr.rule_placebo_fall(ev, margin_pct=M),
    "timing": lambda ev: lr.rule_timing(ev, margin_pct=M, pretrend_alpha=A),
    "underpowered": lambda ev: lr.rule_underpowered(ev, margin_pct=M),
    "site_power": lambda ev: lr.rule_site_power(ev, margin_pct=M),
    "persistence": lambda ev: lr.rule_persistence(ev, margin_pct=M, pretrend_alpha=A),
    "heterogeneity": lambda ev: lr.rule_heterogeneity(ev, alpha=A, margin_pct=M, power=0.8),
    "concentration": lambda ev: lr.rule_concentration(ev, pretrend_alpha=A, shrink=0.5),
}


def test_every_testable_rule_is_exercised_here():
    assert set(RULE_CALLS) == {k for k, s in lr.RULES.items() if s.function is not None}


# --- the shared verdict logic ---------------------------------------------------------


@pytest.mark.parametrize("est, lo, hi, mde, verdict, why", [
    (-2.0, -3.0, -1.0, None, SUPPORTED, "below"),
    (-2.0, -3.0, -1.0, 9.0, SUPPORTED, "below"),  # a clear result needs no power argument
    (2.0, 1.0, 3.0, 9.0, NOT_SUPPORTED, "above"),
    (0.0, -1.0, 1.0, 2.0, NOT_SUPPORTED, "rules_out"),
    (0.0, -1.0, 1.0, 4.0, INCONCLUSIVE, "underpowered"),  # same interval, weaker design
    (0.0, -4.0, 1.0, 2.0, INCONCLUSIVE, "spans"),
    (0.0, -3.0, 1.0, None, INCONCLUSIVE, "spans"),  # exactly the margin is not ruled out
])
def test_judge_reduction(est, lo, hi, mde, verdict, why):
    assert lr.judge_reduction(est, lo, hi, M, mde) == (verdict, why)


def test_judge_reduction_refuses_bad_input():
    with pytest.raises(ValueError, match="margin"):
        lr.judge_reduction(0.0, -1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        lr.judge_reduction(0.0, math.nan, 1.0, M)


def test_judge_pvalue():
    assert lr.judge_pvalue(0.01, A, None, 0.8) == SUPPORTED
    assert lr.judge_pvalue(0.5, A, 0.9, 0.8) == NOT_SUPPORTED
    assert lr.judge_pvalue(0.5, A, 0.5, 0.8) == INCONCLUSIVE
    assert lr.judge_pvalue(0.5, A, None, 0.8) == INCONCLUSIVE


def test_combine():
    assert lr.combine([]) == NOT_TESTABLE
    assert lr.combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert lr.combine([SUPPORTED, NOT_SUPPORTED]) == INCONCLUSIVE
    assert lr.combine([NOT_SUPPORTED, INCONCLUSIVE]) == NOT_SUPPORTED
    assert lr.combine([INCONCLUSIVE, INCONCLUSIVE]) == INCONCLUSIVE


def test_pretrend_gate_and_disagreement():
    assert lr.pretrend_gate(SUPPORTED, 0.01, A) and lr.pretrend_gate(NOT_SUPPORTED, 0.01, A)
    assert not lr.pretrend_gate(INCONCLUSIVE, 0.01, A)  # nothing left to demote
    assert not lr.pretrend_gate(SUPPORTED, 0.2, A)
    assert not lr.pretrend_gate(SUPPORTED, None, A) and not lr.pretrend_gate(SUPPORTED, math.nan, A)
    others = [("a", NOT_SUPPORTED), ("b", INCONCLUSIVE), ("c", SUPPORTED)]
    assert lr.disagreement(SUPPORTED, others) == ["a"]
    assert lr.disagreement(NOT_SUPPORTED, others) == ["c"]
    assert lr.disagreement(INCONCLUSIVE, others) == []


def test_site_types_with_the_same_reason_share_one_sentence():
    f = [lr.Finding(G, INCONCLUSIVE, "A alone.", lead="The x is", values="1%", tail="too vague"),
         lr.Finding(H, INCONCLUSIVE, "B alone.", lead="The x is", values="2%", tail="too vague"),
         lr.Finding("uec", SUPPORTED, "C alone.", lead="The x is", values="3%", tail="clear")]
    got = lr.merge_findings(f)
    assert got == [f"The x is 1% for {schema.group_label(G)} and 2% for "
                   f"{schema.group_label(H)}: too vague.", "C alone."]
    # a finding with its own qualification (no tail) is never merged
    assert lr.merge_findings([f[0], lr.Finding(H, INCONCLUSIVE, "B, but.")]) == ["A alone.",
                                                                                "B, but."]


# --- each rule: supported, not supported, underpowered ---------------------------------


@pytest.mark.parametrize("rule", sorted(RULE_CALLS))
def test_rule_supported(rule):
    res = RULE_CALLS[rule](all_supported())
    assert res.verdict == SUPPORTED, res.evidence
    assert [f.group for f in res.findings] == [G]


@pytest.mark.parametrize("rule", sorted(RULE_CALLS))
def test_rule_not_supported(rule):
    res = RULE_CALLS[rule](all_not_supported())
    assert res.verdict == NOT_SUPPORTED, res.evidence


UNDERPOWERED_VERDICT = {
    # an underpowered design is what these two lessons predict
    "site_power": SUPPORTED,
}


@pytest.mark.parametrize("rule", sorted(RULE_CALLS))
def test_rule_underpowered_is_inconclusive(rule):
    res = RULE_CALLS[rule](underpowered())
    assert res.verdict == UNDERPOWERED_VERDICT.get(rule, INCONCLUSIVE), res.evidence


def test_underpowered_rule_and_a_shortened_design():
    ev = underpowered()  # MDE 6%, but simulated on a shortened design
    res = lr.rule_underpowered(ev, margin_pct=M)
    assert res.verdict == INCONCLUSIVE and "shortened" in res.evidence
    ev.mde_shortened = {G: False}
    assert lr.rule_underpowered(ev, margin_pct=M).verdict == SUPPORTED
    ev.mde_shortened = {}  # not known: no support claimed
    res = lr.rule_underpowered(ev, margin_pct=M)
    assert res.verdict == INCONCLUSIVE and "do not say" in res.evidence
    # an overstated MDE below the margin still shows the reduction is detectable
    ev.mde_pct, ev.mde_shortened = {G: 2.5}, {G: True}
    assert lr.rule_underpowered(ev, margin_pct=M).verdict == NOT_SUPPORTED


@pytest.mark.parametrize("rule", sorted(RULE_CALLS))
def test_rule_without_its_results_cannot_be_tested(rule):
    ev = evidence(main({(G, "years_1_3"): (-1.0, -2.0, 0.0)}))
    res = RULE_CALLS[rule](ev)
    assert res.verdict == NOT_TESTABLE and res.missing
    assert res.evidence.startswith("This run has no ")


# --- rule details -------------------------------------------------------------------


def test_placebo_uses_the_shift_closest_to_a_year_and_its_own_power():
    pl = rows("placebo", {(G, "year_1", -24): (-5.0, -6.0, -4.0),
                          (G, "year_1", -12): (0.2, -0.8, 1.2)})
    ev = evidence(main({(G, "years_1_3"): (0.0, -1.0, 1.0)}), placebo=pl)
    res = lr.rule_placebo_fall(ev, margin_pct=M)
    assert res.verdict == NOT_SUPPORTED and "12 months earlier" in res.evidence
    assert "ruled out" in res.evidence


def test_timing_difference_uses_both_standard_errors():
    res = lr.rule_timing(all_supported(), margin_pct=M, pretrend_alpha=A)
    s = math.hypot(pct_se(-1.5, 0.5), pct_se(-5.0, -3.0))
    z = stats.norm.ppf(0.975)
    assert f"is -3.5 points (95% CI {-3.5 - z * s:+.1f} to {-3.5 + z * s:+.1f})" in res.evidence


def test_timing_falls_to_inconclusive_when_another_estimator_disagrees():
    ev = all_supported()
    other = main({(G, "year_1"): (-3.0, -4.0, -2.0), (G, "year_3"): (-1.0, -2.0, 0.0)},
                 estimator="imputation", inference="analytic")
    ev.alternatives = pd.concat([ev.headline, other])
    res = lr.rule_timing(ev, margin_pct=M, pretrend_alpha=A)
    assert res.verdict == INCONCLUSIVE
    assert "imputation, analytic give the opposite verdict" in res.evidence
    # an alternative that agrees changes nothing
    same = main({(G, "year_1"): (-0.4, -1.4, 0.6), (G, "year_3"): (-3.9, -4.9, -2.9)},
                estimator="imputation", inference="analytic")
    ev.alternatives = pd.concat([ev.headline, same])
    assert lr.rule_timing(ev, margin_pct=M, pretrend_alpha=A).verdict == SUPPORTED


def test_persistence_falls_to_inconclusive_when_a_sensitivity_disagrees():
    ev = all_supported()
    sens = main({(G, "sustainability"): (2.0, 1.0, 3.0)}).assign(
        sensitivity="mixed_kept", sensitivity_label="mixed areas kept")
    ev.sensitivity = sens
    res = lr.rule_persistence(ev, margin_pct=M, pretrend_alpha=A)
    assert res.verdict == INCONCLUSIVE and "mixed areas kept" in res.evidence


@pytest.mark.parametrize("rule", ["timing", "persistence", "concentration"])
@pytest.mark.parametrize("case", [all_supported, all_not_supported])
def test_failed_pretrend_test_makes_post_period_verdicts_inconclusive(rule, case):
    ev = case()
    ev.pretrend_p = {G: 0.012}
    res = RULE_CALLS[rule](ev)
    assert res.verdict == INCONCLUSIVE and "p = 0.012" in res.evidence


def test_failed_pretrend_test_is_not_support_for_old_foundations():
    """The placebo-date rule is directional: a pre-period rise is evidence against."""
    ev = all_not_supported()
    ev.pretrend_p = {G: 0.001}
    assert lr.rule_placebo_fall(ev, margin_pct=M).verdict == NOT_SUPPORTED


def test_concentration_names_the_site_the_result_rests_on():
    res = lr.rule_concentration(all_supported(), pretrend_alpha=A, shrink=0.5)
    assert "site S03" in res.evidence and "rests on single sites" in res.evidence


def test_concentration_borderline_reduction_is_not_support():
    """Dropping a site blurs a borderline reduction without halving it: inconclusive."""
    ev = all_supported()
    ev.headline.loc[ev.headline["window"] == "years_1_3",
                    ["estimate", "ci_low", "ci_high", "pct", "pct_ci_low", "pct_ci_high"]] = [
        -2.0, -3.9, -0.1, -2.0, -3.9, -0.1]
    ev.leave_one_out = sites(G, [-2.0, -1.8, -2.1], half_width=1.9, analysis="leave_one_out",
                             inference="cluster")  # S02: -1.8 (-3.7 to +0.1), keeps 90%
    res = lr.rule_concentration(ev, pretrend_alpha=A, shrink=0.5)
    assert res.verdict == INCONCLUSIVE and "borderline" in res.evidence
    assert lr.rule_concentration(ev, pretrend_alpha=A, shrink=0.05).verdict == SUPPORTED
    with pytest.raises(ValueError, match="shrink"):
        lr.rule_concentration(ev, pretrend_alpha=A, shrink=0.0)


def test_site_types_that_disagree_give_inconclusive():
    sup, nos = all_supported(), all_not_supported()
    ev = evidence(pd.concat([sup.headline, nos.headline.assign(group=H)]),
                  mde_pct={G: 5.0, H: 1.5}, mde_shortened={G: False, H: False})
    res = lr.rule_underpowered(ev, margin_pct=M)
    assert res.verdict == INCONCLUSIVE and "site types disagree" in res.evidence
    assert [f.verdict for f in res.findings] == [SUPPORTED, NOT_SUPPORTED]


def test_heterogeneity_power_decides_between_not_supported_and_inconclusive():
    precise = sites(G, [-2.0, -2.1, -1.9, -2.0], half_width=1.0)
    vague = sites(G, [-2.0, -2.1, -1.9, -2.0], half_width=12.0)
    head = main({(G, "years_1_3"): (-2.0, -3.0, -1.0)})
    for per_site, verdict in ((precise, NOT_SUPPORTED), (vague, INCONCLUSIVE)):
        res = lr.rule_heterogeneity(evidence(head, per_site=per_site), alpha=A,
                                    margin_pct=M, power=0.8)
        assert res.verdict == verdict, res.evidence


def test_heterogeneity_without_pct_intervals_cannot_claim_power():
    per_site = sites(G, [-2.0, -2.1, -1.9, -2.0], half_width=1.0)
    per_site[["pct", "pct_ci_low", "pct_ci_high"]] = np.nan
    res = lr.rule_heterogeneity(evidence(main({}), per_site=per_site), alpha=A,
                                margin_pct=M, power=0.8)
    assert res.verdict == INCONCLUSIVE and "power cannot be computed" in res.evidence


# --- statistics -----------------------------------------------------------------------


def test_pct_se_and_mde_multiplier():
    assert pct_se(-1.96, 1.96) == pytest.approx(1.0, rel=1e-3)
    assert math.isnan(pct_se(1.0, 1.0)) and math.isnan(pct_se(math.nan, 1.0))
    assert MDE_MULTIPLIER == pytest.approx(1.959964 + 0.841621, rel=1e-6)


def test_shortened_design_flag_is_read_from_the_power_module_note():
    """The flag is set from the note the power simulation really writes."""
    from test_power import OUTCOME, _design

    from vanguard.did import power
    from vanguard.lesson_evidence import lesson_inputs

    panel = _design(seed=8)
    full = power.minimum_detectable_effect(panel, OUTCOME, n_sims=20, seed=1,
                                           inference="cluster")
    with pytest.warns(UserWarning, match="too short"):
        short = power.minimum_detectable_effect(panel[panel.month >= "2013-04-01"], OUTCOME,
                                                n_sims=20, seed=1, inference="cluster")
    assert not mde_shortened(str(full.note.iloc[0]))
    assert mde_shortened(str(short.note.iloc[0]))
    res = schema.results_frame(pd.concat([full, short.assign(group="other")]))
    got = lesson_inputs(res, OUTCOME, str(full.scale.iloc[0]))["mde_shortened"]
    assert got == {str(full.group.iloc[0]): False, "other": True}


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


def test_cochran_q_bad_input():
    with pytest.raises(ValueError):
        cochran_q(np.array([0.1]), np.array([0.1]))
    with pytest.raises(ValueError):
        cochran_q(np.array([0.1, 0.2]), np.array([0.1, 0.0]))


def test_q_power_matches_simulation():
    """Sites with a fixed spread of effects (SD tau about their weighted mean): the
    non-central chi-squared power agrees with the rejection rate of simulated Q tests."""
    rng = np.random.default_rng(5)
    se = np.array([1.0, 1.5, 2.0, 1.0, 2.5, 1.2])
    w = 1 / se**2
    delta = rng.normal(0, 1, se.size)
    delta -= np.sum(w * delta) / w.sum()
    tau = 2.0
    # scale the pattern so its weighted spread matches the formula's tau
    delta *= tau / math.sqrt(np.sum(w * delta**2) / (w.sum() - (w**2).sum() / w.sum()))
    sims = [cochran_q(rng.normal(delta, se), se)[2] < 0.05 for _ in range(2000)]
    assert np.mean(sims) == pytest.approx(q_power(se, tau), abs=0.03)
    assert q_power(se, 0.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        q_power(np.array([1.0]), 1.0)


def test_site_heterogeneity_on_pct_scale_and_fallback():
    per_site = sites(G, [-10.0, -5.0, 0.0, 5.0], half_width=1.96)
    h = site_heterogeneity(per_site)[G]
    q_ref = cochran_q(np.array([-10.0, -5.0, 0.0, 5.0]), np.full(4, 1.96 / stats.norm.ppf(0.975)))[0]
    assert h.unit == "%" and h.n_sites == 4 and h.q == pytest.approx(q_ref)
    assert h.n_reduction == 2
    raw = [dict(analysis="per_site", estimator="twfe", outcome="ea", scale="rate",
                group=H, window="years_1_3", site=f"S{i}", estimate=b,
                ci_low=b - 1.96 * 0.01, ci_high=b + 1.96 * 0.01)
           for i, b in enumerate([-0.1, -0.05, 0.0, 0.05])]
    h = site_heterogeneity(schema.results_frame(raw))[H]  # no pre-period mean: no %
    assert h.unit == "estimate"
    assert h.q == pytest.approx(cochran_q(np.array([-0.1, -0.05, 0.0, 0.05]),
                                          np.full(4, 0.01))[0], rel=1e-4)
