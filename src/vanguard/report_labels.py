"""Plain-language names for the identifiers of the results files.

The results files speak in code names (``twfe``, ``cs_never``, ``wild_bootstrap``,
``years_1_3`` ...); a reader of the report should never meet one. Every label the report
prints for an estimator, an inference method, an analysis, a window, a scale or a
sensitivity comes from here, and :func:`code_names_in` finds any that slipped through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vanguard import plots, schema

ESTIMATOR_LABELS: dict[str, str] = {
    "twfe": "two-way fixed effects",
    "twfe_poisson": "Poisson fixed effects",
    "cs_never": "Callaway-Sant'Anna (never-treated comparison)",
    "cs_notyet": "Callaway-Sant'Anna (not-yet-treated comparison)",
    "imputation": "imputation (Borusyak-Jaravel-Spiess)",
    "event_study": "event study",
    "synthetic_control": "synthetic control",
    "sdid": "synthetic difference-in-differences",
}
INFERENCE_LABELS: dict[str, str] = {
    "wild_bootstrap": "wild cluster bootstrap",
    "randomisation": "randomisation inference",
    "cluster": "cluster-robust standard errors (by area)",
    "analytic": "analytic standard errors",
    "analytic_t": "analytic standard errors with t intervals",
    "multiplier_bootstrap": "multiplier bootstrap",
    "conley_taber": "Conley-Taber few-treated intervals",
    "none": "no inference",
}
ANALYSIS_LABELS: dict[str, str] = {
    "main": "main effects",
    "inference": "inference variants",
    "event_study": "event study",
    "pretrend": "pre-trend test",
    "honestdid": "HonestDiD bounds",
    "placebo": "placebo start dates",
    "leave_one_out": "leave one site out",
    "per_site": "per-site effects",
    "power": "minimum detectable effect",
    "power_curve": "power curve",
    "cohort": "effects by start cohort",
    "aggregation": "aggregated group-time effects",
    "group_time": "group-time effects",
    "sensitivity": "sensitivity analyses",
    "sustainability": "sustainability",
}
SCALE_LABELS: dict[str, str] = {
    "rate": "rate per 1,000 population per month",
    "count": "count per area per month",
    "log": "log scale (% change)",
    "poisson": "Poisson rate ratio (% change)",
}
SCALE_UNITS: dict[str, str] = {
    "rate": "per 1,000 per month",
    "count": "per area per month",
    "log": "log points",
    "poisson": "log rate ratio",
}
WINDOW_LABELS: dict[str, str] = {
    **schema.WINDOW_LABELS,
    "sustainability": "month 36 after the start to the last month (after the programme)",
    "year_4": "Year 4 (months 36-47, after the programme)",
    "post_average": "average of the post-period",
    "pre": "pre-period",
}
SENSITIVITY_LABELS: dict[str, str] = {
    "headline": "headline specification",
    "whole_ccg_only": "only sites that cover whole CCGs",
    "anomalies_kept": "areas with data-quality anomalies kept",
    "mixed_kept": "mixed areas kept",
    "uec_as_controls": "urgent & emergency care areas as controls",
    "per_1000_aged_75plus": "rates per 1,000 people aged 75 and over",
}

OUTCOME_LABELS: dict[str, str] = {
    "elective_total": "Elective admissions",
    "first_outpatient_attendances": "First outpatient attendances",
    "gp_referrals_made_all": "GP referrals (all specialties)",
}
"""Outcomes of the Monthly Activity Return whose column names do not read as labels."""

CODE_NAMES: tuple[str, ...] = tuple(sorted(
    {k for d in (ESTIMATOR_LABELS, INFERENCE_LABELS, ANALYSIS_LABELS, SENSITIVITY_LABELS)
     for k in d if "_" in k or k in ("twfe", "honestdid")}
    | {k for k in WINDOW_LABELS if "_" in k}
    | {k for k in schema.GROUP_LABELS if "_" in k}
    | {"twfe", "twfe_poisson", "uec", "without_site", "rel_time", "n_treated", "n_control",
       "pre_mean", "p_value", "ci_low", "ci_high", "emergency_admissions", "non_elective_admissions",
       "elective_total", "first_outpatient_attendances", "gp_referrals_made_all"}))
"""Identifiers of the results files that must not appear in the report's text."""

_CODE_RE = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(c) for c in
                                                  sorted(CODE_NAMES, key=len, reverse=True))
                      + r")(?![\w-])")


def label(kind: str, key: str) -> str:
    """Reader-facing name of an identifier.

    Parameters
    ----------
    kind : str
        ``estimator``, ``inference``, ``analysis``, ``window``, ``scale``, ``group``,
        ``outcome`` or ``sensitivity``.
    key : str
        The identifier as the results files write it.

    Returns
    -------
    str
        The label; an unknown identifier gets its underscores replaced by spaces (a
        user's own group or outcome).

    Raises
    ------
    ValueError
        If ``kind`` is not one of the above.
    """
    key = str(key)
    if kind == "group":
        return schema.group_label(key)
    if kind == "outcome":
        return OUTCOME_LABELS.get(key) or plots.outcome_label(key)
    if kind == "sensitivity" and key.startswith("without_site_"):
        return f"without site {key.removeprefix('without_site_')}"
    tables = {"estimator": ESTIMATOR_LABELS, "inference": INFERENCE_LABELS,
              "analysis": ANALYSIS_LABELS, "window": WINDOW_LABELS, "scale": SCALE_LABELS,
              "sensitivity": SENSITIVITY_LABELS}
    if kind not in tables:
        raise ValueError(f"label kind {kind!r}: expected one of {sorted(tables) + ['group']}")
    if kind == "window" and key.startswith("cohort_"):
        return f"cohort starting {key.removeprefix('cohort_')}"
    return tables[kind].get(key, key.replace("_", " "))


def in_sentence(text: str) -> str:
    """A label as it reads inside a sentence: first letter lower case, unless the label
    starts with an abbreviation (``GP referrals`` stays as it is)."""
    if len(text) > 1 and text[:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def plain(text: str) -> str:
    """Replace every code name in a free text (a note, an error, an alt text) by its label.

    Text written by the analyses (failure reasons, figure descriptions) may name an
    estimator or a group as the code does; the report prints them through this.
    """
    def swap(m: re.Match) -> str:
        code = m.group(1)
        for kind in ("group", "estimator", "inference", "window", "analysis", "sensitivity",
                     "outcome"):
            got = label(kind, code)
            if got != code.replace("_", " ") or kind == "outcome":
                return got if kind != "outcome" else in_sentence(got)
        return code.replace("_", " ")

    return _CODE_RE.sub(swap, str(text))


def code_names_in(texts: Iterable[str]) -> list[str]:
    """Code names found in reader-facing texts (empty when the text is clean).

    Parameters
    ----------
    texts : iterable of str

    Returns
    -------
    list of str
        ``"<code name> in: <40 characters around it>"``, one per hit.
    """
    hits = []
    for t in texts:
        for m in _CODE_RE.finditer(str(t)):
            lo, hi = max(0, m.start() - 20), m.end() + 20
            hits.append(f"{m.group(1)} in: {t[lo:hi]!r}")
    return hits
