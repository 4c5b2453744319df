"""The lessons register and the rules that set each lesson against the results.

``data/raw/lessons.csv`` holds lessons drawn by the source articles on the vanguards,
paraphrased, each with its source, the analysis outputs that bear on it and the name of
the rule that turns those outputs into an evidence sentence. The rules are deliberately
simple and stated in words, so a reader can check each verdict against the tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from vanguard import config, schema
from vanguard.errors import DataError

LESSON_COLUMNS: tuple[str, ...] = (
    "lesson_id", "lesson", "summary", "audience", "source_file", "source", "evidence", "rule",
)
RULES: tuple[str, ...] = (
    "timing", "power", "heterogeneity", "spread", "pretrend", "robustness", "not_testable",
)
EVIDENCE_KEYS: tuple[str, ...] = (
    "main:year_1", "main:year_2", "main:year_3", "main:years_1_3", "main:estimators",
    "power:mde", "event_study:pretrend", "per_site:heterogeneity",
)

CONSISTENT = "consistent with the lesson"
NOT_CONSISTENT = "not consistent with the lesson"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "cannot be tested with these data"

Z95 = float(stats.norm.ppf(0.975))


def load_lessons(path: str | Path = config.LESSONS) -> pd.DataFrame:
    """Read and validate the lessons register.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV with columns :data:`LESSON_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        One row per lesson, strings only (empty ``evidence`` for untestable lessons).

    Raises
    ------
    DataError
        If the file is missing, a column is missing, a required cell is empty, an id is
        repeated, a rule is unknown or an evidence key is not one of :data:`EVIDENCE_KEYS`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "the lessons register (a CSV file)", found="no such file")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in LESSON_COLUMNS:
        if col not in df.columns:
            raise DataError(path, f"columns {list(LESSON_COLUMNS)}", column=col,
                            found=list(df.columns))
    for i, r in df.iterrows():
        row = int(i) + 2
        for col in ("lesson_id", "lesson", "summary", "source_file", "source", "rule"):
            if not r[col].strip():
                raise DataError(path, "a non-empty value", row=row, column=col, found=r[col])
        if r["rule"] not in RULES:
            raise DataError(path, f"one of {', '.join(RULES)}", row=row, column="rule",
                            found=r["rule"])
        keys = [k for k in r["evidence"].split(";") if k]
        for k in keys:
            if k not in EVIDENCE_KEYS:
                raise DataError(path, f"evidence keys from {', '.join(EVIDENCE_KEYS)}",
                                row=row, column="evidence", found=k)
        if r["rule"] != "not_testable" and not keys:
            raise DataError(path, "at least one evidence key for a testable rule", row=row,
                            column="evidence", found=r["evidence"])
    dup = df["lesson_id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise DataError(path, "a unique lesson_id", row=row, column="lesson_id",
                        found=df["lesson_id"].iloc[row - 2])
    return df[list(LESSON_COLUMNS)].reset_index(drop=True)


# ---------------------------------------------------------------------------
# evidence drawn from the results


@dataclass
class Heterogeneity:
    """Cochran's Q test of between-site heterogeneity within one group."""

    n_sites: int
    q: float
    df: int
    p_value: float
    i2: float  # % of variation across sites beyond chance
    n_reduction: int  # sites whose 95% CI lies below zero
    n_same_sign: int  # sites whose estimate has the sign of the pooled estimate


def cochran_q(estimates: np.ndarray, se: np.ndarray) -> tuple[float, int, float, float]:
    """Cochran's Q for heterogeneity of independent estimates.

    Parameters
    ----------
    estimates, se : numpy.ndarray
        Site estimates and their standard errors (finite, ``se > 0``).

    Returns
    -------
    (float, int, float, float)
        Q, degrees of freedom, p-value (chi-squared), and I-squared in % (0 when
        Q <= df).

    Raises
    ------
    ValueError
        If fewer than two estimates are given or a standard error is not positive.
    """
    b = np.asarray(estimates, float)
    s = np.asarray(se, float)
    if b.size < 2:
        raise ValueError("cochran_q: need at least two estimates")
    if not (np.isfinite(s).all() and (s > 0).all() and np.isfinite(b).all()):
        raise ValueError("cochran_q: estimates and standard errors must be finite, se > 0")
    w = 1.0 / s**2
    pooled = np.sum(w * b) / np.sum(w)
    q = float(np.sum(w * (b - pooled) ** 2))
    dof = int(b.size - 1)
    p = float(stats.chi2.sf(q, dof))
    i2 = float(max(0.0, (q - dof) / q) * 100) if q > 0 else 0.0
    return q, dof, p, i2


def site_heterogeneity(per_site: pd.DataFrame) -> dict[str, Heterogeneity]:
    """Heterogeneity of per-site effects, by group.

    Parameters
    ----------
    per_site : pandas.DataFrame
        Results rows for one outcome, scale and window; rows with a non-empty ``site``
        are used. A missing ``se`` is recovered from the 95% interval.

    Returns
    -------
    dict
        Group -> :class:`Heterogeneity`, for groups with at least two usable sites.
    """
    out: dict[str, Heterogeneity] = {}
    sites = per_site[per_site["site"].fillna("") != ""]
    for group, g in sites.groupby("group", sort=True):
        se = g["se"].astype(float).to_numpy()
        from_ci = (g["ci_high"].astype(float) - g["ci_low"].astype(float)).to_numpy() / (2 * Z95)
        se = np.where(np.isfinite(se) & (se > 0), se, from_ci)
        est = g["estimate"].astype(float).to_numpy()
        ok = np.isfinite(se) & (se > 0) & np.isfinite(est)
        if ok.sum() < 2:
            continue
        q, dof, p, i2 = cochran_q(est[ok], se[ok])
        pooled = float(np.sum(est[ok] / se[ok] ** 2) / np.sum(1 / se[ok] ** 2))
        out[str(group)] = Heterogeneity(
            n_sites=int(ok.sum()), q=q, df=dof, p_value=p, i2=i2,
            n_reduction=int((g["ci_high"].astype(float).to_numpy()[ok] < 0).sum()),
            n_same_sign=int((np.sign(est[ok]) == np.sign(pooled)).sum()),
        )
    return out


@dataclass
class Evidence:
    """Everything the lesson rules look at, drawn once from a run's results."""

    headline: pd.DataFrame  # main rows of the headline estimator/scale/inference
    alternatives: pd.DataFrame  # main rows of every estimator x inference, same outcome/scale
    pretrend_p: dict[str, float] = field(default_factory=dict)
    heterogeneity: dict[str, Heterogeneity] = field(default_factory=dict)
    mde_pct: dict[str, float] = field(default_factory=dict)  # at 80% power, years 1-3
    hoped_for_pct: float = 3.0
    data_source: str = "synthetic"


def _row(df: pd.DataFrame, group: str, window: str) -> pd.Series | None:
    r = df[(df["group"] == group) & (df["window"] == window)]
    return None if r.empty else r.iloc[0]


def _reduces(r: pd.Series | None) -> bool:
    return r is not None and math.isfinite(r["ci_high"]) and r["ci_high"] < 0


def _increases(r: pd.Series | None) -> bool:
    return r is not None and math.isfinite(r["ci_low"]) and r["ci_low"] > 0


def _groups(ev: Evidence) -> list[str]:
    present = set(ev.headline["group"]) if len(ev.headline) else set()
    return [g for g in schema.ANALYSIS_GROUPS if g in present]


def _label(group: str) -> str:
    return schema.GROUP_LABELS.get(group, group)


def _combine(verdicts: list[str]) -> str:
    if not verdicts:
        return NOT_TESTABLE
    if all(v == verdicts[0] for v in verdicts):
        return verdicts[0]
    if CONSISTENT in verdicts and NOT_CONSISTENT not in verdicts:
        return CONSISTENT + " (for some site types)"
    return INCONCLUSIVE


def rule_timing(ev: Evidence) -> tuple[str, str]:
    """Do effects appear only late (year 3) rather than in year 1?"""
    parts, verdicts = [], []
    for g in _groups(ev):
        y1, y3 = _row(ev.headline, g, "year_1"), _row(ev.headline, g, "year_3")
        if y1 is None or y3 is None:
            continue
        if _reduces(y3) and not _reduces(y1):
            parts.append(f"{_label(g)}: a reduction is clear in year 3 but not in year 1")
            verdicts.append(CONSISTENT)
        elif _reduces(y1):
            parts.append(f"{_label(g)}: a reduction is already clear in year 1")
            verdicts.append(NOT_CONSISTENT)
        else:
            parts.append(f"{_label(g)}: no window shows a clear reduction, so a late effect "
                         "can be neither confirmed nor ruled out")
            verdicts.append(INCONCLUSIVE)
    if not parts:
        return NOT_TESTABLE, "The run has no year 1 and year 3 estimates to compare."
    return _combine(verdicts), "; ".join(parts) + "."


def rule_power(ev: Evidence) -> tuple[str, str]:
    """Can the design detect a change of the size the programme hoped for?"""
    if not ev.mde_pct:
        return NOT_TESTABLE, "The run has no minimum-detectable-effect results."
    hoped = abs(ev.hoped_for_pct)
    parts, verdicts = [], []
    for g in [g for g in schema.ANALYSIS_GROUPS if g in ev.mde_pct]:
        mde = abs(ev.mde_pct[g])
        if mde > hoped:
            parts.append(f"{_label(g)}: the smallest change detectable with 80% power is "
                         f"{mde:.1f}%, larger than the hoped-for {hoped:g}% reduction, so "
                         "this design could miss a real effect of that size")
            verdicts.append(CONSISTENT)
        else:
            parts.append(f"{_label(g)}: a {hoped:g}% reduction is detectable with 80% power "
                         f"(minimum detectable effect {mde:.1f}%), so national activity data "
                         "can answer this question when the evaluation is planned for it")
            verdicts.append(INCONCLUSIVE)
    return _combine(verdicts), "; ".join(parts) + "."


def rule_heterogeneity(ev: Evidence) -> tuple[str, str]:
    """Do site effects differ more than chance would explain?"""
    if not ev.heterogeneity:
        return NOT_TESTABLE, "The run has no per-site estimates (at least two sites a group)."
    parts, verdicts = [], []
    for g, h in ev.heterogeneity.items():
        if h.p_value < 0.05:
            parts.append(f"{_label(g)}: effects differ across the {h.n_sites} sites more than "
                         f"chance explains (Cochran's Q p = {h.p_value:.3f}, I² = {h.i2:.0f}%), "
                         "so local context matters")
            verdicts.append(CONSISTENT)
        else:
            parts.append(f"{_label(g)}: no evidence that effects differ across the "
                         f"{h.n_sites} sites (Cochran's Q p = {h.p_value:.3f}, "
                         f"I² = {h.i2:.0f}%)")
            verdicts.append(INCONCLUSIVE)
    return _combine(verdicts), ("; ".join(parts) + ". Whether governance or organisational "
                                "form came first is not recorded in activity data.")


def rule_spread(ev: Evidence) -> tuple[str, str]:
    """Are local successes reproduced across the programme?"""
    if not ev.heterogeneity:
        return NOT_TESTABLE, "The run has no per-site estimates (at least two sites a group)."
    parts, verdicts = [], []
    for g, h in ev.heterogeneity.items():
        pooled = _row(ev.headline, g, "years_1_3")
        text = (f"{_label(g)}: {h.n_reduction} of {h.n_sites} sites show a reduction with a "
                f"95% interval below zero")
        if pooled is not None and _reduces(pooled) and h.n_same_sign >= 0.75 * h.n_sites:
            parts.append(text + " and the pooled effect is a clear reduction shared by most "
                         "sites")
            verdicts.append(NOT_CONSISTENT)
        elif pooled is not None and not _reduces(pooled) and h.n_reduction > 0:
            parts.append(text + ", but the pooled effect is not a clear reduction: local "
                         "successes are not reproduced across the programme")
            verdicts.append(CONSISTENT)
        else:
            parts.append(text)
            verdicts.append(INCONCLUSIVE)
    return _combine(verdicts), "; ".join(parts) + "."


def rule_pretrend(ev: Evidence) -> tuple[str, str]:
    """Were vanguard areas already on a different path before they started?"""
    if not ev.pretrend_p:
        return NOT_TESTABLE, "The run has no joint pre-trend test."
    parts, verdicts = [], []
    for g in [g for g in schema.ANALYSIS_GROUPS if g in ev.pretrend_p]:
        p = ev.pretrend_p[g]
        if p < 0.05:
            parts.append(f"{_label(g)}: areas were already on a different path before start "
                         f"(joint pre-trend test p = {p:.3f}), as expected if sites built on "
                         "earlier work; the difference-in-differences estimate needs caution")
            verdicts.append(CONSISTENT)
        else:
            parts.append(f"{_label(g)}: no evidence of different trends before start "
                         f"(joint pre-trend test p = {p:.3f})")
            verdicts.append(INCONCLUSIVE)
    return _combine(verdicts), ("; ".join(parts) + ". Local history and relationships "
                                "themselves are not observed in activity data.")


def rule_robustness(ev: Evidence) -> tuple[str, str]:
    """Do all estimators and inference methods reach the same conclusion (years 1-3)?"""
    alt = ev.alternatives[ev.alternatives["window"] == "years_1_3"]
    if alt.empty:
        return NOT_TESTABLE, "The run has no years 1-3 estimates."
    parts, verdicts = [], []
    for g in [g for g in schema.ANALYSIS_GROUPS if g in set(alt["group"])]:
        a = alt[alt["group"] == g]
        calls = {("reduction" if r.ci_high < 0 else "increase" if r.ci_low > 0 else "no clear")
                 for r in a.itertuples()}
        n = len(a)
        if len(calls) == 1:
            parts.append(f"{_label(g)}: all {n} estimator and inference combinations agree "
                         f"({next(iter(calls))} effect)")
            verdicts.append(CONSISTENT)
        else:
            parts.append(f"{_label(g)}: the {n} estimator and inference combinations disagree "
                         "on whether there is a clear effect")
            verdicts.append(INCONCLUSIVE)
    return _combine(verdicts), "; ".join(parts) + ". Costs are not in the data."


def rule_not_testable(ev: Evidence) -> tuple[str, str]:
    """Lessons about governance, organisational form, partnerships and barriers."""
    return NOT_TESTABLE, ("Activity data record admissions and bed days by area and month; "
                          "they say nothing about governance, organisational form, "
                          "partnership working or the barriers named, so this lesson is "
                          "reported as the source states it, without a test.")


RULE_FUNCTIONS = {
    "timing": rule_timing,
    "power": rule_power,
    "heterogeneity": rule_heterogeneity,
    "spread": rule_spread,
    "pretrend": rule_pretrend,
    "robustness": rule_robustness,
    "not_testable": rule_not_testable,
}


def assess_lessons(lessons: pd.DataFrame, ev: Evidence) -> list[dict]:
    """Apply each lesson's rule to the evidence.

    Parameters
    ----------
    lessons : pandas.DataFrame
        From :func:`load_lessons`.
    ev : Evidence

    Returns
    -------
    list of dict
        One dict per lesson: the register's columns plus ``verdict`` and ``evidence_text``.
    """
    out = []
    for r in lessons.to_dict("records"):
        verdict, text = RULE_FUNCTIONS[r["rule"]](ev)
        out.append({**r, "verdict": verdict, "evidence_text": text})
    return out
