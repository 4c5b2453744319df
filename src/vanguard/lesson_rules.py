"""The rules that judge each lesson's pre-stated prediction against a run's results.

Each testable lesson in the register states, before any number is read, a prediction
the results could contradict, the quantity it is judged by and its thresholds. A rule
here computes that quantity for every site type and gives one of four verdicts:

- **supported**: the data could have contradicted the prediction and did not (e.g. the
  95% interval lies on the predicted side of zero);
- **not supported**: the prediction's test fails - the interval lies on the other side,
  or it rules out an effect as large as the lesson's margin while the design had the
  power to detect one (minimum detectable effect at most the margin);
- **inconclusive**: the design lacks the power to tell (minimum detectable effect above
  the margin), the interval holds both answers, the estimates disagree (another estimator,
  inference method or sensitivity gives the opposite verdict), or the pre-period already
  shows vanguard and control areas on different paths;
- **cannot be tested with these data**: the run lacks the results the prediction needs.

Site types are judged separately and combined by :func:`combine`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.lesson_evidence import SUSTAINABILITY, Evidence
from vanguard.lesson_stats import MDE_MULTIPLIER, Z95, pct_se, q_power

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "cannot be tested with these data"
VERDICTS: tuple[str, ...] = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTABLE)

ESTIMATOR_WORDS = {
    "twfe": "two-way fixed effects", "twfe_poisson": "Poisson fixed effects",
    "cs_never": "Callaway-Sant'Anna", "cs_notyet": "Callaway-Sant'Anna (not-yet-treated)",
    "imputation": "imputation", "event_study": "event study",
}
INFERENCE_WORDS = {
    "cluster": "cluster-robust", "wild_bootstrap": "wild cluster bootstrap",
    "randomisation": "randomisation inference", "analytic": "analytic",
    "analytic_t": "analytic with t intervals", "conley_taber": "placebo-based",
}


@dataclass(frozen=True)
class Finding:
    """One site type's judgement: its verdict and the sentence that explains it.

    ``lead``, ``values`` and ``tail`` split the sentence so that site types with the same
    verdict for the same reason read as one sentence ("<lead> <values> for A and <values>
    for B: <tail>."); a finding without a ``tail`` is always written on its own.
    """

    group: str
    verdict: str
    sentence: str
    lead: str = ""
    values: str = ""
    tail: str = ""


@dataclass(frozen=True)
class RuleResult:
    """A lesson's combined verdict, its evidence text and the site types' findings."""

    verdict: str
    evidence: str
    findings: tuple[Finding, ...] = ()
    missing: str = ""  # the results the run lacks, when nothing could be judged


# ---------------------------------------------------------------------------
# the verdict logic shared by the rules


def judge_reduction(estimate: float, ci_low: float, ci_high: float, margin: float,
                    mde: float | None = None) -> tuple[str, str]:
    """Three-way verdict on the prediction "a reduction" (a negative effect, in %).

    Parameters
    ----------
    estimate, ci_low, ci_high : float
        The quantity and its 95% interval (% or percentage points).
    margin : float
        Smallest reduction that matters (positive, same unit).
    mde : float, optional
        Minimum detectable reduction of the design at 80% power (same unit). A null
        result counts against the prediction only when ``mde <= margin``.

    Returns
    -------
    (str, str)
        The verdict and why: ``below`` (interval below zero: supported), ``above``
        (interval above zero: not supported), ``underpowered`` (interval holds zero and
        ``mde > margin``: inconclusive), ``rules_out`` (interval holds zero but excludes
        a reduction of ``margin``: not supported) or ``spans`` (interval holds zero and
        ``-margin``: inconclusive).

    Raises
    ------
    ValueError
        If the margin is not positive or a bound is missing.
    """
    if not margin > 0:
        raise ValueError(f"judge_reduction: margin must be positive, got {margin}")
    if not (np.isfinite(ci_low) and np.isfinite(ci_high) and np.isfinite(estimate)):
        raise ValueError("judge_reduction: estimate and interval must be finite")
    if ci_high < 0:
        return SUPPORTED, "below"
    if ci_low > 0:
        return NOT_SUPPORTED, "above"
    if mde is not None and (not np.isfinite(mde) or mde > margin):
        return INCONCLUSIVE, "underpowered"
    if ci_low > -margin:
        return NOT_SUPPORTED, "rules_out"
    return INCONCLUSIVE, "spans"


def judge_pvalue(p: float, alpha: float, power: float | None, power_needed: float) -> str:
    """Verdict on a prediction that a test rejects (p < alpha).

    Supported when it rejects; not supported when it does not and had at least
    ``power_needed`` power against the lesson's margin; inconclusive otherwise (also when
    the power is unknown).
    """
    if p < alpha:
        return SUPPORTED
    if power is not None and np.isfinite(power) and power >= power_needed:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """Combine site types' verdicts into the lesson's.

    No verdict -> cannot be tested; supported and not supported together -> inconclusive
    (the site types disagree); otherwise the decisive verdict if there is one (the
    evidence names the site types where it was inconclusive), else inconclusive.
    """
    if not verdicts:
        return NOT_TESTABLE
    decisive = {v for v in verdicts if v in (SUPPORTED, NOT_SUPPORTED)}
    if len(decisive) == 2:
        return INCONCLUSIVE
    if decisive:
        return decisive.pop()
    return INCONCLUSIVE


def pretrend_gate(verdict: str, p: float | None, alpha: float) -> bool:
    """Whether a decisive verdict must fall to inconclusive for a failed pre-trend test.

    A post-period difference-in-differences estimate speaks to a lesson only if vanguard
    and control areas were on parallel paths before the start.
    """
    return (verdict in (SUPPORTED, NOT_SUPPORTED) and p is not None and np.isfinite(p)
            and p < alpha)


def disagreement(verdict: str, others: list[tuple[str, str]]) -> list[str]:
    """Labels of the other estimates whose decisive verdict is the opposite of ``verdict``."""
    opposite = {SUPPORTED: NOT_SUPPORTED, NOT_SUPPORTED: SUPPORTED}.get(verdict)
    return [label for label, v in others if opposite is not None and v == opposite]


# ---------------------------------------------------------------------------
# helpers


def _signed(x: float) -> str:
    # "-0.0" reads as a reduction that is not there
    return "0.0" if round(float(x), 1) == 0 else f"{x:+.1f}"


def _pct(x: float) -> str:
    return f"{_signed(x)}%"


def _ci(lo: float, hi: float) -> str:
    return f"95% CI {_signed(lo)}% to {_signed(hi)}%"


def _near(x: float, ref: float) -> str:
    """``x`` to one decimal, or two when one would print it equal to ``ref``."""
    one = f"{x:.1f}"
    return f"{x:.2f}" if float(one) == float(ref) and x != ref else one


def _label(g: str) -> str:
    return schema.group_label(g)


def _method(estimator: str, inference: str) -> str:
    e = ESTIMATOR_WORDS.get(estimator, estimator.replace("_", " "))
    i = INFERENCE_WORDS.get(inference, inference.replace("_", " "))
    return f"{e}, {i}" if i else e


def _finite(*xs) -> bool:
    return all(x is not None and not pd.isna(x) and math.isfinite(float(x)) for x in xs)


def _row(df: pd.DataFrame, group: str, window: str) -> pd.Series | None:
    if df is None or df.empty:
        return None
    r = df[(df["group"] == group) & (df["window"] == window)]
    return None if r.empty else r.iloc[0]


def _headline_only(df: pd.DataFrame, ev: Evidence) -> pd.DataFrame:
    """Rows of the headline estimator when the frame has any, else all rows."""
    if df is None or df.empty:
        return pd.DataFrame() if df is None else df
    est = ev.estimator
    return df[df["estimator"] == est] if est in set(df["estimator"]) else df


def _groups(*frames_or_dicts) -> list[str]:
    found: set[str] = set()
    for x in frames_or_dicts:
        if isinstance(x, pd.DataFrame):
            if len(x) and "group" in x.columns:
                found |= set(map(str, x["group"]))
        else:
            found |= set(map(str, x))
    return schema.groups_in(found)


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def merge_findings(findings: list[Finding]) -> list[str]:
    """The evidence sentences: site types sharing verdict, lead and reason in one."""
    out: list[str] = []
    used: set[int] = set()
    for i, f in enumerate(findings):
        if i in used:
            continue
        key = (f.verdict, f.lead, f.tail)
        same = [j for j in range(i, len(findings)) if findings[j].tail
                and (findings[j].verdict, findings[j].lead, findings[j].tail) == key]
        if not f.tail or len(same) < 2:
            out.append(f.sentence)
            continue
        used.update(same)
        parts = [f"{findings[j].values} for {_label(findings[j].group)}" for j in same]
        out.append(f"{f.lead} {_and(parts)}: {f.tail}.")
    return out


def _result(findings: list[Finding], missing: str, files: str,
            closing: str = "") -> RuleResult:
    if not findings:
        return RuleResult(NOT_TESTABLE, f"This run has no {missing} ({files}).", (), missing)
    verdict = combine([f.verdict for f in findings])
    text = " ".join(merge_findings(findings))
    if verdict == INCONCLUSIVE and {f.verdict for f in findings} >= {SUPPORTED, NOT_SUPPORTED}:
        text += " The site types disagree."
    if closing:
        text += " " + closing
    return RuleResult(verdict, text, tuple(findings))


# ---------------------------------------------------------------------------
# the rules


def rule_placebo_fall(ev: Evidence, margin_pct: float) -> RuleResult:
    """L01-type prediction: vanguard areas were already falling before the start.

    Quantity: the placebo estimate with the start moved earlier (the shift closest to 12
    months), its first-year effect in %, and its own MDE (2.80 standard errors). Judged
    by :func:`judge_reduction` with ``margin_pct``.
    """
    pl = _headline_only(ev.placebo, ev)
    findings = []
    for g in _groups(pl):
        rows = pl[(pl["group"] == g) & (pl["param"].astype(float) < 0)]
        rows = rows[rows["window"] == "year_1"] if "year_1" in set(rows["window"]) else rows
        if rows.empty:
            continue
        r = rows.iloc[(rows["param"].astype(float) + 12).abs().argsort()[:1]].iloc[0]
        if not _finite(r["pct"], r["pct_ci_low"], r["pct_ci_high"]):
            continue
        mde = MDE_MULTIPLIER * pct_se(r["pct_ci_low"], r["pct_ci_high"])
        verdict, why = judge_reduction(r["pct"], r["pct_ci_low"], r["pct_ci_high"],
                                       margin_pct, mde)
        shift = abs(int(float(r["param"])))
        head = (f"{_label(g)}: with the start moved {shift} months earlier, the placebo's "
                f"first-year effect is {_pct(r['pct'])} ({_ci(r['pct_ci_low'], r['pct_ci_high'])})")
        tail = {
            "below": "a fall before the programme began, as the lesson predicts (and a "
                     "bias the main estimates would carry)",
            "above": "activity was rising, not falling, against control areas before "
                     "the start",
            "underpowered": f"this placebo detects only earlier falls of {mde:.1f}% or "
                            f"more with 80% power, above the {margin_pct:g}% threshold",
            "rules_out": f"an earlier fall of {margin_pct:g}% or more is ruled out",
            "spans": f"the interval holds both no earlier change and an earlier fall of "
                     f"{margin_pct:g}%",
        }[why]
        common = {
            "below": "falls before the programme began, as the lesson predicts (and a bias "
                     "the main estimates would carry)",
            "above": "activity was rising, not falling, against control areas before the "
                     "start",
            "underpowered": f"each placebo is too imprecise to detect an earlier fall of "
                            f"{margin_pct:g}% with 80% power",
            "rules_out": f"an earlier fall of {margin_pct:g}% or more is ruled out",
            "spans": f"each interval holds both no earlier change and an earlier fall of "
                     f"{margin_pct:g}%",
        }[why]
        findings.append(Finding(
            g, verdict, f"{head}: {tail}.",
            lead=f"With the start moved {shift} months earlier, the placebo's first-year "
                 "effect is",
            values=(f"{_pct(r['pct'])} ({_ci(r['pct_ci_low'], r['pct_ci_high'])}; "
                    f"detectable fall {mde:.1f}%)"),
            tail=common))
    return _result(findings, "placebo-date estimates", f"placebo__{ev.outcome}__<group>.csv")


def _timing_one(df: pd.DataFrame, g: str, margin: float):
    y1, y3 = _row(df, g, "year_1"), _row(df, g, "year_3")
    if y1 is None or y3 is None:
        return None
    vals = (y1["pct"], y1["pct_ci_low"], y1["pct_ci_high"],
            y3["pct"], y3["pct_ci_low"], y3["pct_ci_high"])
    if not _finite(*vals):
        return None
    s1, s3 = pct_se(y1["pct_ci_low"], y1["pct_ci_high"]), pct_se(y3["pct_ci_low"], y3["pct_ci_high"])
    if not _finite(s1, s3):
        return None
    d = float(y3["pct"] - y1["pct"])
    sd = math.hypot(s1, s3)
    lo, hi, mde = d - Z95 * sd, d + Z95 * sd, MDE_MULTIPLIER * sd
    verdict, why = judge_reduction(d, lo, hi, margin, mde)
    return verdict, why, float(y1["pct"]), float(y3["pct"]), d, lo, hi, mde


def _other_estimates(ev: Evidence, window_filter: Callable[[pd.DataFrame], pd.DataFrame]):
    """Every estimate besides the headline's: (label, key, frame) triples.

    ``key`` is ``(estimator, inference)`` for an alternative estimator or inference method
    and ``("sensitivity", label)`` for a sensitivity (headline estimator only).
    """
    out = []
    alt = ev.alternatives
    if alt is not None and len(alt):
        for (e, i), a in alt.groupby(["estimator", "inference"], sort=True):
            out.append((_method(str(e), str(i)), (str(e), str(i)), window_filter(a)))
    sens = ev.sensitivity
    if sens is not None and len(sens):
        sens = _headline_only(sens, ev)
        for lab, s in sens.groupby("sensitivity_label", sort=True):
            out.append((f"the sensitivity '{lab}'", ("sensitivity", str(lab)),
                        window_filter(s)))
    return out


def _head_key(ev: Evidence, g: str) -> tuple[str, str] | None:
    rows = ev.headline[ev.headline["group"] == g] if len(ev.headline) else ev.headline
    if rows is None or rows.empty:
        return None
    return str(rows["estimator"].iloc[0]), str(rows["inference"].iloc[0])


def rule_timing(ev: Evidence, margin_pct: float, pretrend_alpha: float) -> RuleResult:
    """L03-type prediction: the reduction grows from year 1 to year 3.

    Quantity: year-3 minus year-1 effect in percentage points, with the standard error
    ``sqrt(se1**2 + se3**2)`` - an upper bound when the two estimates are positively
    correlated, as they are expected to be: they share the pre-period and the control
    areas - and the contrast's own MDE (2.80 times that SE). Checked for
    agreement with every other estimator, inference method and sensitivity, and gated by
    the pre-trend test at ``pretrend_alpha``.
    """
    findings = []
    others = _other_estimates(ev, lambda a: a)
    for g in _groups(ev.headline):
        one = _timing_one(ev.headline, g, margin_pct)
        if one is None:
            continue
        verdict, why, p1, p3, d, lo, hi, mde = one
        head = (f"{_label(g)}: the year-3 effect ({_pct(p3)}) minus the year-1 effect "
                f"({_pct(p1)}) is {d:+.1f} points (95% CI {lo:+.1f} to {hi:+.1f})")
        tail = {
            "below": "the reduction grew with time, as the lesson predicts",
            "above": "the effect moved towards an increase with time",
            "underpowered": f"this contrast detects only a growth of {mde:.1f} points or "
                            f"more with 80% power, above the {margin_pct:g}-point threshold",
            "rules_out": f"a growth of {margin_pct:g} points or more is ruled out",
            "spans": f"the interval holds both no growth and a growth of {margin_pct:g} "
                     "points",
        }[why]
        sentence = f"{head}: {tail}"
        common = {
            "below": "the reduction grew with time, as the lesson predicts",
            "above": "the effect moved towards an increase with time",
            "underpowered": "each contrast is too imprecise to detect a growth of "
                            f"{margin_pct:g} points with 80% power",
            "rules_out": f"a growth of {margin_pct:g} points or more is ruled out",
            "spans": f"each interval holds both no growth and a growth of {margin_pct:g} "
                     "points",
        }[why]
        plain = True
        key = _head_key(ev, g)
        against = disagreement(verdict, [
            (lab, o[0]) for lab, k, frame in others
            if k != key and (o := _timing_one(frame, g, margin_pct)) is not None])
        if against:
            verdict, plain = INCONCLUSIVE, False
            sentence += (f"; but {', '.join(against)} give the opposite verdict, so the "
                         "estimates disagree")
        p = ev.pretrend_p.get(g)
        if pretrend_gate(verdict, p, pretrend_alpha):
            verdict, plain = INCONCLUSIVE, False
            sentence += (f"; yet these areas were already on a different path before the "
                         f"start (joint pre-trend test p = {p:.3f}), so a change over the "
                         "years may continue it")
        findings.append(Finding(
            g, verdict, sentence + ".", lead="The year-3 minus year-1 effect is",
            values=f"{d:+.1f} points (95% CI {lo:+.1f} to {hi:+.1f}; detectable growth "
                   f"{mde:.1f})",
            tail=common if plain else ""))
    return _result(findings, "year 1 and year 3 estimates",
                   f"did__{ev.outcome}__<group>__<estimator>.csv")


def rule_underpowered(ev: Evidence, margin_pct: float) -> RuleResult:
    """L04-type prediction: the design cannot detect the hoped-for reduction.

    Quantity: the design's MDE at 80% power (years 1-3). Supported when it exceeds
    ``margin_pct`` and is known to be the full design's; not supported when it is at most
    ``margin_pct``; inconclusive when it exceeds ``margin_pct`` but was simulated on a
    shortened design, which overstates it by an unknown factor
    (:func:`vanguard.lesson_stats.mde_shortened`), or when that is not known (the
    group is missing from ``Evidence.mde_shortened``).
    """
    findings = []
    lead = "The minimum detectable effect at 80% power is"
    for g in _groups(ev.mde_pct):
        mde = abs(float(ev.mde_pct[g]))
        if not math.isfinite(mde):
            continue
        shown = _near(mde, margin_pct)
        if mde <= margin_pct:
            smaller = (", and less for the full design than for the shortened one simulated"
                       if ev.mde_shortened.get(g) else "")
            tail = (f"a {margin_pct:g}% reduction is detectable{smaller}, so routine activity "
                    "data suffice for this question")
            verdict = NOT_SUPPORTED
        elif ev.mde_shortened.get(g):
            tail = ("simulated on a design shortened to fit the pre-period, which overstates "
                    "the full design's by an unknown amount, so whether a "
                    f"{margin_pct:g}% reduction is detectable cannot be told")
            verdict = INCONCLUSIVE
        elif g not in ev.mde_shortened:
            tail = (f"above the hoped-for {margin_pct:g}%, but the run's power results do not "
                    "say whether this is the full design's or an overstatement from a "
                    "shortened one")
            verdict = INCONCLUSIVE
        else:
            tail = (f"above the hoped-for {margin_pct:g}%, so a reduction of that size could "
                    "pass unseen")
            verdict = SUPPORTED
        findings.append(Finding(g, verdict, f"{_label(g)}: {_lower(lead)} {shown}%: {tail}.",
                                lead=lead, values=f"{shown}%", tail=tail))
    return _result(findings, "minimum-detectable-effect results",
                   f"power__{ev.outcome}__<group>.csv")


def rule_site_power(ev: Evidence, margin_pct: float) -> RuleResult:
    """L05-type prediction: one site's own evaluation cannot detect the hoped-for effect.

    Quantity: each site's MDE, 2.80 standard errors of its years 1-3 estimate (the SE
    read off its % interval), and the median over the group's sites. Supported when the
    median exceeds ``margin_pct``, not supported otherwise.
    """
    ps = _headline_only(ev.per_site, ev)
    findings = []
    for g in _groups(ps):
        rows = ps[(ps["group"] == g) & (ps["site"].fillna("") != "")]
        mdes = np.array([MDE_MULTIPLIER * pct_se(lo, hi) for lo, hi in
                         zip(rows["pct_ci_low"].astype(float), rows["pct_ci_high"].astype(float),
                             strict=True)])
        mdes = mdes[np.isfinite(mdes)]
        if mdes.size < 2:
            continue
        med = float(np.median(mdes))
        k = int((mdes <= margin_pct).sum())
        values = (f"{med:.1f}% over {mdes.size} sites ({k} of them at most "
                  f"{margin_pct:g}%)")
        if med > margin_pct:
            verdict = SUPPORTED
            tail = (f"above the hoped-for {margin_pct:g}%, so a single site's own "
                    "evaluation would likely miss an effect of that size")
        else:
            verdict = NOT_SUPPORTED
            tail = (f"at most the hoped-for {margin_pct:g}%, so single-site evaluations "
                    "could answer the question alone")
        lead = "The median site's minimum detectable effect (80% power, own estimate) is"
        findings.append(Finding(g, verdict, f"{_label(g)}: {_lower(lead)} {values}: {tail}.",
                                lead=lead, values=values, tail=tail))
    return _result(findings, "per-site estimates", f"per_site__{ev.outcome}__<group>.csv")


def _sustain_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame()
    return frame[frame["window"] == SUSTAINABILITY]


def rule_persistence(ev: Evidence, margin_pct: float, pretrend_alpha: float) -> RuleResult:
    """L09-type prediction: the effect outlasts the programme's funding.

    Quantity: the effect in the window after funding ended (``sustainability``), in %,
    judged by :func:`judge_reduction` with the design's MDE; checked for agreement with
    the other estimators, inference methods and sensitivities; gated by the pre-trend
    test.
    """
    sus = _sustain_rows(ev.sustainability)
    if sus.empty:
        sus = _sustain_rows(ev.headline)
    head_sus = _headline_only(sus, ev)
    if len(head_sus) and len(ev.headline):
        inf = set(ev.headline["inference"])
        if inf & set(head_sus["inference"]):
            head_sus = head_sus[head_sus["inference"].isin(inf)]
    others = _other_estimates(ev, _sustain_rows)
    if len(sus):
        known = {k for _, k, _ in others}
        for (e, i), a in sus.groupby(["estimator", "inference"], sort=True):
            if (str(e), str(i)) not in known:
                others.append((_method(str(e), str(i)), (str(e), str(i)), a))
    findings = []
    for g in _groups(head_sus):
        r = _row(head_sus, g, SUSTAINABILITY)
        if r is None or not _finite(r["pct"], r["pct_ci_low"], r["pct_ci_high"]):
            continue
        mde = ev.mde_pct.get(g)
        mde = abs(float(mde)) if mde is not None else None
        verdict, why = judge_reduction(r["pct"], r["pct_ci_low"], r["pct_ci_high"],
                                       margin_pct, mde)
        head = (f"{_label(g)}: after funding ended the effect is {_pct(r['pct'])} "
                f"({_ci(r['pct_ci_low'], r['pct_ci_high'])})")
        tail = {
            "below": "a reduction outlasted the programme's funding",
            "above": "activity rose against control areas once funding ended",
            "underpowered": f"but the design detects only reductions of {mde or 0:.1f}% or "
                            f"more, above the {margin_pct:g}% threshold",
            "rules_out": f"a lasting reduction of {margin_pct:g}% or more is ruled out",
            "spans": "the interval holds both no lasting effect and a lasting reduction of "
                     f"{margin_pct:g}%",
        }[why]
        sentence = f"{head}: {tail}"
        common = {
            "below": "a reduction outlasted the programme's funding",
            "above": "activity rose against control areas once funding ended",
            "underpowered": f"the design cannot detect a lasting reduction of {margin_pct:g}% "
                            "with 80% power",
            "rules_out": f"a lasting reduction of {margin_pct:g}% or more is ruled out",
            "spans": "each interval holds both no lasting effect and a lasting reduction of "
                     f"{margin_pct:g}%",
        }[why]
        plain = True
        judged = []
        key = (str(r["estimator"]), str(r["inference"]))
        for lab, k, frame in others:
            if k == key:
                continue
            o = _row(frame, g, SUSTAINABILITY)
            if o is not None and _finite(o["pct"], o["pct_ci_low"], o["pct_ci_high"]):
                judged.append((lab, judge_reduction(o["pct"], o["pct_ci_low"],
                                                    o["pct_ci_high"], margin_pct, mde)[0]))
        against = disagreement(verdict, judged)
        if against:
            verdict, plain = INCONCLUSIVE, False
            sentence += (f"; {', '.join(against)} reach the opposite verdict, so the "
                         "estimates disagree")
        p = ev.pretrend_p.get(g)
        if pretrend_gate(verdict, p, pretrend_alpha):
            verdict, plain = INCONCLUSIVE, False
            sentence += (f"; the pre-period already differed (joint pre-trend test "
                         f"p = {p:.3f}), so a gap after funding may only extend it")
        design = f"; design's detectable effect {mde:.1f}%" if mde is not None else ""
        findings.append(Finding(
            g, verdict, sentence + ".", lead="After funding ended the effect is",
            values=f"{_pct(r['pct'])} ({_ci(r['pct_ci_low'], r['pct_ci_high'])}{design})",
            tail=common if plain else ""))
    return _result(findings, "estimates for the window after funding ended",
                   f"sustainability__{ev.outcome}.csv")


def rule_heterogeneity(ev: Evidence, alpha: float, margin_pct: float,
                       power: float) -> RuleResult:
    """L12-type prediction: site effects differ by more than chance.

    Quantity: Cochran's Q across the group's per-site years 1-3 estimates (on the %
    scale), its p-value against ``alpha``, and its power to detect a between-site SD of
    ``margin_pct`` (:func:`vanguard.lesson_stats.q_power`); a non-rejection is not
    supported only with at least ``power``.
    """
    findings = []
    for g in schema.groups_in(ev.heterogeneity):
        h = ev.heterogeneity[g]
        pw = (q_power(np.array(h.se), margin_pct, alpha)
              if h.unit == "%" and len(h.se) >= 2 else None)
        verdict = judge_pvalue(h.p_value, alpha, pw, power)
        head = (f"{_label(g)}: across {h.n_sites} sites Cochran's Q = {h.q:.1f} on {h.df} "
                f"degrees of freedom (p = {h.p_value:.3f}, I² = {h.i2:.0f}%)")
        if verdict == SUPPORTED:
            tail = "site effects differ more than chance explains"
        elif pw is None:
            tail = ("no more spread than chance, and the test's power cannot be computed "
                    "because the site intervals are not on the % scale")
        elif verdict == NOT_SUPPORTED:
            tail = (f"no more spread than chance, with {pw:.0%} power to detect a "
                    f"between-site SD of {margin_pct:g}%")
        else:
            tail = (f"no more spread than chance, but with only {pw:.0%} power to detect a "
                    f"between-site SD of {margin_pct:g}%")
        if verdict == SUPPORTED:
            common = "site effects differ more than chance explains"
        elif pw is None:
            common = ""
        elif verdict == NOT_SUPPORTED:
            common = (f"no more spread than chance, with at least {power:.0%} power to "
                      f"detect a between-site SD of {margin_pct:g}%")
        else:
            common = (f"no more spread than chance, but with less than {power:.0%} power to "
                      f"detect a between-site SD of {margin_pct:g}%")
        power_text = f", power {pw:.0%}" if pw is not None else ""
        findings.append(Finding(
            g, verdict, f"{head}: {tail}.", lead="Cochran's Q across sites is",
            values=(f"{h.q:.1f} on {h.df} degrees of freedom over {h.n_sites} sites "
                    f"(p = {h.p_value:.3f}, I² = {h.i2:.0f}%{power_text})"),
            tail=common))
    return _result(findings, "per-site estimates", f"per_site__{ev.outcome}__<group>.csv",
                   closing="Costs, benefits and equity between areas are not in activity "
                           "data; the sites share their control areas, so Q is approximate.")


def rule_concentration(ev: Evidence, pretrend_alpha: float, shrink: float) -> RuleResult:
    """L13-type prediction: a pooled reduction rests on single sites.

    Quantity: the headline years 1-3 effect and its leave-one-site-out re-estimates (%).
    Supported when the pooled effect is a clear reduction and leaving out some one site
    both leaves no clear reduction and shrinks it by at least the fraction ``shrink``;
    not supported when every omission keeps it clear; inconclusive when an omission
    only blurs a borderline reduction without shrinking it that much, when there is no
    clear pooled reduction to explain, or when the pre-trend test fails at
    ``pretrend_alpha``.
    """
    if not 0 < shrink <= 1:
        raise ValueError(f"rule_concentration: shrink must be in (0, 1], got {shrink}")
    loo = _headline_only(ev.leave_one_out, ev)
    findings = []
    for g in _groups(loo):
        pooled = _row(ev.headline, g, "years_1_3")
        rows = loo[(loo["group"] == g) & (loo["window"] == "years_1_3")]
        rows = rows[np.isfinite(rows["ci_high"].astype(float))
                    & np.isfinite(rows["pct"].astype(float))]
        if pooled is None or rows.empty or not _finite(pooled["pct"], pooled["pct_ci_low"],
                                                      pooled["pct_ci_high"]):
            continue
        head = (f"{_label(g)}: the pooled years 1-3 effect is {_pct(pooled['pct'])} "
                f"({_ci(pooled['pct_ci_low'], pooled['pct_ci_high'])})")
        if not pooled["ci_high"] < 0:
            tail = ("not a clear reduction, so there is no early result for a few keen sites "
                    "to explain")
            findings.append(Finding(
                g, INCONCLUSIVE, f"{head}, {tail}.", lead="The pooled years 1-3 effect is",
                values=f"{_pct(pooled['pct'])} ({_ci(pooled['pct_ci_low'], pooled['pct_ci_high'])})",
                tail=tail))
            continue
        lost = rows[rows["ci_high"].astype(float) >= 0]
        # the reduction left once the site is out, as a share of the pooled one
        kept = lost["pct"].astype(float) / float(pooled["pct"])
        driven = lost[kept <= 1 - shrink]
        if len(driven):
            names = ", ".join(str(s) for s in driven["site"].head(3))
            more = f" and {len(driven) - 3} more" if len(driven) > 3 else ""
            worst = driven.iloc[int(np.argmax(driven["pct"].astype(float).to_numpy()))]
            verdict = SUPPORTED
            sentence = (f"{head}, but leaving out site {names}{more} alone leaves no clear "
                        f"reduction (down to {_pct(worst['pct'])} without site "
                        f"{worst['site']}), so the result rests on single sites")
        elif len(lost):
            verdict = INCONCLUSIVE
            sentence = (f"{head}; leaving out site {lost['site'].iloc[0]} blurs it, but no "
                        f"omission takes away {shrink:.0%} of it, so the reduction is "
                        "borderline rather than carried by one site")
        else:
            weakest = rows.iloc[int(np.argmax(rows["ci_high"].astype(float).to_numpy()))]
            verdict = NOT_SUPPORTED
            sentence = (f"{head} and stays a clear reduction whichever of the {len(rows)} "
                        f"sites is left out (weakest without site {weakest['site']}: "
                        f"{_pct(weakest['pct'])})")
        p = ev.pretrend_p.get(g)
        if pretrend_gate(verdict, p, pretrend_alpha):
            verdict = INCONCLUSIVE
            sentence += (f"; the pooled reduction is itself in doubt, as the areas' paths "
                         f"already diverged before the start (joint pre-trend test "
                         f"p = {p:.3f})")
        findings.append(Finding(g, verdict, sentence + "."))
    return _result(findings, "leave-one-site-out estimates",
                   f"leave_one_out__{ev.outcome}__<group>.csv")


@dataclass(frozen=True)
class RuleSpec:
    """A rule, the thresholds the register must state for it, and its criterion in words."""

    function: Callable[..., RuleResult] | None
    params: tuple[str, ...]
    criterion: str


RULES: dict[str, RuleSpec] = {
    "placebo_fall": RuleSpec(
        rule_placebo_fall, ("margin_pct",),
        "supported if the placebo's 95% interval lies below zero; not supported if it lies "
        "above zero, or excludes a fall of {margin_pct:g}% while the placebo's own minimum "
        "detectable effect is at most {margin_pct:g}%; otherwise inconclusive"),
    "timing": RuleSpec(
        rule_timing, ("margin_pct", "pretrend_alpha"),
        "supported if the 95% interval of the year-3 minus year-1 difference lies below "
        "zero; not supported if it lies above zero, or excludes a growth of {margin_pct:g} "
        "points while the contrast's minimum detectable effect is at most {margin_pct:g} "
        "points; "
        "inconclusive otherwise, when another estimate gives the opposite verdict, or when "
        "the pre-trend test has p < {pretrend_alpha:g}"),
    "underpowered": RuleSpec(
        rule_underpowered, ("margin_pct",),
        "supported if the minimum detectable effect at 80% power exceeds {margin_pct:g}%; "
        "not supported if it is at most {margin_pct:g}%; inconclusive if it exceeds "
        "{margin_pct:g}% but was (or may have been) simulated on a shortened design, which "
        "overstates it"),
    "site_power": RuleSpec(
        rule_site_power, ("margin_pct",),
        "supported if the median site's minimum detectable effect (2.80 standard errors) "
        "exceeds {margin_pct:g}%; not supported otherwise"),
    "persistence": RuleSpec(
        rule_persistence, ("margin_pct", "pretrend_alpha"),
        "supported if the 95% interval after funding ended lies below zero; not supported "
        "if it lies above zero, or excludes a reduction of {margin_pct:g}% while the "
        "design's minimum detectable effect is at most {margin_pct:g}%; inconclusive "
        "otherwise, when another estimate gives the opposite verdict, or when the "
        "pre-trend test has p < {pretrend_alpha:g}"),
    "heterogeneity": RuleSpec(
        rule_heterogeneity, ("alpha", "margin_pct", "power"),
        "supported if Cochran's Q has p < {alpha:g}; not supported if not and the test had "
        "at least {power:.0%} power to detect a between-site SD of {margin_pct:g}%; "
        "inconclusive otherwise"),
    "concentration": RuleSpec(
        rule_concentration, ("pretrend_alpha", "shrink"),
        "supported if the pooled reduction is clear and leaving out some one site leaves "
        "no clear reduction and takes away at least {shrink:.0%} of it; not supported if it "
        "stays clear whichever site is left out; inconclusive otherwise, or if the "
        "pre-trend test has p < {pretrend_alpha:g}"),
    "not_testable": RuleSpec(None, (), "no prediction: not observed in activity data"),
}
"""Rule name (the register's ``rule`` column) -> :class:`RuleSpec`."""
