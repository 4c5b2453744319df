"""Page 1 of the report: the key findings of each site type, and the main results tables.

A key finding answers "what did the sites do, and how sure can we be": the effect over
years 1-3 as a % and in the published units, its 95 % interval, the smallest effect the
design could detect, the pre-trend verdict, and the published estimate on the same scale
(or why there is none). Every number is read from the results files; the bases of the
percentages are stated once, in :func:`percent_bases`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.report_flow import ANALYSED, ANALYSED_CONTROLS, count_key
from vanguard.report_labels import SCALE_UNITS, in_sentence, label

PRETREND_ORDER = ("event_study", "twfe", "imputation", "cs_notyet", "cs_never")
"""Pre-trend tests in the order the report prefers: the event study's joint test first."""
MDE_POWER = 0.8
PUBLISHED_OUTCOME: dict[str, str] = {"non_elective_admissions": "emergency_admissions"}
"""Outcome -> the published outcome it is set beside, where the two differ. The Monthly
Activity Return counts every non-elective admission; Morciano et al. (2020) counted the
emergency admissions among them, so the two share units but not a definition."""
ALPHA = 0.05


def fmt(x: float, digits: int = 3, *, thousands: bool = False) -> str:
    """Format a number for display with a fixed number of decimals (ASCII minus)."""
    if x is None or x is pd.NA or not np.isfinite(float(x)):
        return "n/a"
    s = f"{float(x):,.{digits}f}" if thousands else f"{float(x):.{digits}f}"
    return "0." + "0" * digits if s == "-0." + "0" * digits else s


def seg(t: str, k: str = "", key: str = "") -> dict:
    """A text segment: ``k`` is "" (plain), "num" (from a results file), "truth" (planted
    effect) or "count" (a count of areas whose flow key is ``key``)."""
    out = {"t": t, "k": k}
    if key:
        out["key"] = key
    return out


def digits_for(scale: str) -> int:
    return 1 if scale == "count" else 3


def published_baseline(published_raw: pd.DataFrame) -> float | None:
    """The pre-programme rate (per 1,000 a month) the published file gives as the base of
    Morciano et al.'s Table 1, read from its ``baseline`` column (None when absent)."""
    if "baseline" not in published_raw.columns:
        return None
    for text in published_raw.loc[published_raw["table1_group"] != "", "baseline"]:
        m = re.search(r"(\d+(?:\.\d+)?) per 1,000", str(text))
        if m:
            return float(m.group(1))
    return None


def pretrend_test(results: pd.DataFrame, outcome: str, group: str,
                  estimators: tuple[str, ...] = PRETREND_ORDER) -> dict | None:
    """The joint pre-trend test the report names for a group: ``p`` and ``estimator``.

    ``estimators`` limits the tests considered (the event study's alone when another
    estimator's test must not stand in for it, as after the event-study notebook failed).
    """
    pre = results[(results["analysis"] == "pretrend") & (results["outcome"] == outcome)
                  & (results["group"] == group) & results["estimator"].isin(estimators)]
    pre = pre[np.isfinite(pre["p_value"].astype(float))]
    if pre.empty:
        return None
    order = {e: i for i, e in enumerate(PRETREND_ORDER)}
    pre = pre.assign(_o=pre["estimator"].map(lambda e: order.get(e, len(order))))
    r = pre.sort_values(["_o", "estimator"]).iloc[0]
    return {"p": float(r["p_value"]), "estimator": str(r["estimator"]),
            "inference": str(r["inference"])}


def pretrend_verdict(test: dict | None, missing: str = "not tested in this run") -> str:
    """``passed``/``failed`` with the p-value, naming the test when it is not the event
    study's."""
    if test is None:
        return missing
    p = test["p"]
    by = "" if test["estimator"] == "event_study" else f", {label('estimator', test['estimator'])}"
    return f"{'failed' if p < ALPHA else 'passed'} (p = {fmt(p)}{by})"


def mde_row(results: pd.DataFrame, outcome: str, group: str, scale: str) -> dict | None:
    """The minimum detectable effect at 80 % power over years 1-3 for a group."""
    pw = results[(results["analysis"] == "power") & (results["outcome"] == outcome)
                 & (results["group"] == group)]
    if scale in set(pw["scale"]):
        pw = pw[pw["scale"] == scale]
    pw = pw[np.isfinite(pw["pct"].astype(float))]
    if pw.empty:
        return None
    if "years_1_3" in set(pw["window"]):
        pw = pw[pw["window"] == "years_1_3"]
    r = pw.iloc[(pw["param"].astype(float) - MDE_POWER).abs().argsort()[:1]].iloc[0]
    return {"pct": abs(float(r["pct"])), "estimate": abs(float(r["estimate"])),
            "scale": str(r["scale"]), "power": float(r["param"]),
            "overstates": "overstates" in str(r["note"]).lower(),
            "n_treated": r["n_treated"]}


def published_for(published: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """The published rows set beside ``outcome`` (see :data:`PUBLISHED_OUTCOME`)."""
    return published[published["outcome"] == PUBLISHED_OUTCOME.get(outcome, outcome)]


def published_row(published: pd.DataFrame, outcome: str, group: str,
                  window: str) -> pd.Series | None:
    p = published_for(published, outcome)
    p = p[(p["group"] == group) & (p["window"] == window)]
    return None if p.empty else p.iloc[0]


def has_published(published: pd.DataFrame, outcome: str, groups) -> bool:
    """Whether any of ``groups`` has a published estimate set beside ``outcome``."""
    return bool(published_for(published, outcome)["group"].isin(set(map(str, groups))).any())


def definition_note(outcome: str) -> list[str]:
    """A note, where the published outcome set beside ``outcome`` counts something else."""
    theirs = PUBLISHED_OUTCOME.get(outcome)
    if theirs is None:
        return []
    return [f"Morciano et al. (2020) counted {in_sentence(label('outcome', theirs))}, a "
            f"narrower count than {in_sentence(label('outcome', outcome))} (which adds "
            "maternity, transfers and other non-elective admissions): their figures share "
            "this run's units but not its definition, so read the comparison as approximate."]


def published_text(p: pd.Series | None, scale: str, baseline: float | None) -> str:
    """The published estimate on our scale, or plainly why it cannot be set beside ours."""
    if p is None:
        return "not published for this site type and outcome"
    if scale == "rate":
        return (f"{fmt(p['estimate'])} per 1,000 per month ({fmt(p['ci_low'])} to "
                f"{fmt(p['ci_high'])})" + (f", {fmt(100 * p['estimate'] / baseline, 1)} %"
                                           if baseline else ""))
    if scale in ("log", "poisson") and baseline:
        return (f"{fmt(100 * p['estimate'] / baseline, 1)} % ({fmt(100 * p['ci_low'] / baseline, 1)}"
                f" % to {fmt(100 * p['ci_high'] / baseline, 1)} %)")
    return ("not comparable, because the published figures are rates per 1,000 "
            f"population and this run's estimates are on the {label('scale', scale)}")


def verdict(r: pd.Series) -> str:
    if r["ci_high"] < 0:
        return "a clear reduction"
    if r["ci_low"] > 0:
        return "a clear increase"
    return "no clear effect"


def key_findings(head: pd.DataFrame, results: pd.DataFrame, hl: dict,
                 published: pd.DataFrame, baseline: float | None, hoped_for_pct: float,
                 truth_map: dict, synthetic: bool, incomplete: tuple[str, ...] = ()) -> dict:
    """The page-1 key findings of the headline outcome: a table and one sentence per
    site type.

    Parameters
    ----------
    head : pandas.DataFrame
        Headline main rows of the headline outcome.
    results : pandas.DataFrame
        Every results row of the run.
    hl : dict
        From :func:`vanguard.report_content.choose_headline`.
    published : pandas.DataFrame
        Morciano et al. (2020) Table 1 (:func:`vanguard.report_content.load_published_table1`).
    baseline : float or None
        The published pre-programme rate that turns their rates into %.
    hoped_for_pct : float
    truth_map : dict
        ``(group, window) -> planted effect`` (synthetic runs).
    synthetic : bool
    incomplete : tuple of str
        Notebooks of the run that did not finish (``"<name> (<status>)"``): what they
        would have produced is shown as missing, and no other analysis stands in for it.

    Returns
    -------
    dict
        ``table`` (a content-model table, cells may be ``{"t", "key"}``) and ``sentences``
        (list of segment lists), ``groups`` (the per-group facts, for the limitations).
    """
    scale, outcome = hl["scale"], hl["outcome"]
    d = digits_for(scale)
    units = SCALE_UNITS[scale]
    any_pub = has_published(published, outcome, head["group"])
    columns = ["Site type", "Effect, years 1-3 (95% CI)",
               "In published units (95% CI)" if scale == "rate" else "On the model scale",
               "p", "Smallest detectable effect", "Pre-trend test"]
    if any_pub:
        columns.append("Morciano et al. 2020, same scale")
    if synthetic:
        columns.insert(4, "Planted truth")
    rows, sentences, facts = [], [], {}
    for g in schema.groups_in(head["group"]):
        r = head[(head["group"] == g) & (head["window"] == "years_1_3")]
        if r.empty:
            continue
        r = r.iloc[0]
        mde = mde_row(results, outcome, g, scale)
        es_failed = [n for n in incomplete if n.startswith("04_event_study")]
        test = pretrend_test(results, outcome, g,
                             ("event_study",) if es_failed else PRETREND_ORDER)
        rb_failed = [n for n in incomplete if n.startswith("05_robustness")]
        no_mde = (f"missing: {rb_failed[0]} did not finish" if rb_failed
                  else "not simulated in this run")
        no_test = (f"missing: {es_failed[0]} did not finish" if es_failed
                   else "not tested in this run")
        pub = published_row(published, outcome, g, "years_1_3")
        name = label("group", g)
        pct = (f"{fmt(r['pct'], 1)} % ({fmt(r['pct_ci_low'], 1)} to "
               f"{fmt(r['pct_ci_high'], 1)})") if np.isfinite(r["pct"]) else "n/a"
        units_cell = (f"{fmt(r['estimate'], d)} {units} ({fmt(r['ci_low'], d)} to "
                      f"{fmt(r['ci_high'], d)})")
        mde_cell = (no_mde if mde is None else
                    f"{fmt(mde['pct'], 1)} %" + (f" ({fmt(mde['estimate'], d)} {units})"
                                                 if mde["scale"] in ("rate", "count") else "")
                    + (" - an upper bound" if mde["overstates"] else ""))
        row = [name, pct, units_cell, fmt(r["p_value"]), mde_cell,
               pretrend_verdict(test, no_test)]
        if any_pub:
            row.append(published_text(pub, scale, baseline))
        if synthetic:
            t = truth_map.get((g, "years_1_3"))
            row.insert(4, "n/a" if t is None else f"{fmt(t, d)} {units}")
        rows.append(row)
        facts[g] = {"row": r, "mde": mde, "pretrend": test, "published": pub}

        s = [seg(f"{name}: "), seg(verdict(r).capitalize()),
             seg(" in " + in_sentence(label("outcome", outcome)) + " over years 1-3, ")]
        if np.isfinite(r["pct"]):
            s += [seg(fmt(r["pct"], 1), "num"), seg(" % (95% CI "),
                  seg(fmt(r["pct_ci_low"], 1), "num"), seg(" % to "),
                  seg(fmt(r["pct_ci_high"], 1), "num"), seg(" %)")]
        else:
            s += [seg(fmt(r["estimate"], d), "num"), seg(f" {units} (95% CI "),
                  seg(fmt(r["ci_low"], d), "num"), seg(" to "),
                  seg(fmt(r["ci_high"], d), "num"), seg(")")]
        if pd.notna(r["n_treated"]) and pd.notna(r["n_control"]):
            s += [seg(", from "),
                  seg(str(int(r["n_treated"])), "count", count_key(ANALYSED, g)),
                  seg(" treated against "),
                  seg(str(int(r["n_control"])), "count", count_key(ANALYSED_CONTROLS, g)),
                  seg(" comparison areas")]
        s.append(seg(". "))
        if mde is not None:
            s += [seg("Effects smaller than "), seg(fmt(mde["pct"], 1), "num"),
                  seg(f" % could not be detected (with {mde['power']:.0%} power)")]
            s.append(seg(", so the hoped-for " + f"{hoped_for_pct:g} % reduction "
                         + ("was within reach of this design. " if mde["pct"] <= hoped_for_pct
                            else "was not detectable with these data. ")))
        if test is not None and test["p"] < ALPHA:
            s += [seg("The pre-trend test failed (p = "), seg(fmt(test["p"]), "num"),
                  seg("), so the estimate may partly reflect trends that differed before "
                      "the start. ")]
        if synthetic:
            t = truth_map.get((g, "years_1_3"))
            if t is not None:
                inside = r["ci_low"] <= t <= r["ci_high"]
                s += [seg("Planted effect: "), seg(fmt(t, d), "truth"),
                      seg(f" {units}, " + ("inside" if inside else "outside")
                          + " the interval.")]
        sentences.append(s)
    return {"table": {"title": "Key findings: " + in_sentence(label("outcome", outcome))
                      + ", years 1-3 after the start", "columns": columns, "rows": rows,
                      "id": "key-findings",
                      "notes": definition_note(outcome) if any_pub else []},
            "sentences": sentences, "groups": facts}


def percent_bases(scale: str, baseline: float | None) -> str:
    """The one statement of what every % in the report is a percentage of."""
    ours = ("the treated areas' mean rate over the pre-period" if scale in ("rate", "count")
            else "what the treated areas would have had without the programme "
                 "(100 x (exp(effect) - 1))")
    text = f"Every % in this report is a % of {ours}"
    if baseline:
        text += (f"; published Table 1 rates are turned into % of {baseline:g} per 1,000 a "
                 "month, the pre-programme rate of programme CCGs that Morciano et al. "
                 "(2021) report")
    return text + "."


def holm_adjusted(secondary: dict[str, pd.DataFrame]) -> dict[tuple[str, str, str], float]:
    """Holm-adjusted p-values over every secondary test the main tables print.

    The family is each secondary outcome x site type x window with a p-value: Holm's
    step-down keeps the chance of any false "clear effect" among them at 5 % whatever
    their dependence (the outcomes share areas and months, so they are correlated).

    Parameters
    ----------
    secondary : dict
        Outcome -> its headline rows (:func:`vanguard.report_content.headline_rows`).

    Returns
    -------
    dict
        ``(outcome, group, window) -> adjusted p``; empty when there is nothing to adjust.
    """
    keys, ps = [], []
    for outcome, rows in secondary.items():
        for r in rows.itertuples(index=False):
            if r.window in schema.WINDOWS and np.isfinite(r.p_value):
                keys.append((outcome, str(r.group), str(r.window)))
                ps.append(float(r.p_value))
    if not ps:
        return {}
    # Holm's step-down, p_(i) * (m - i + 1) made monotone, as statsmodels'
    # multipletests(method="holm") computes it (to the bit): importing statsmodels for
    # these few lines would cost the report more than the rest of this page
    p = np.asarray(ps)
    order = np.argsort(p)
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted = np.empty(len(p))
    adjusted[order] = np.minimum(stepped, 1.0)
    return dict(zip(keys, map(float, adjusted), strict=True))


def main_table(rows: pd.DataFrame, hl: dict, outcome: str, published: pd.DataFrame,
               baseline: float | None, truth_map: dict, synthetic: bool,
               adjusted: dict[tuple[str, str, str], float] | None = None) -> dict:
    """One outcome's main results: site type x window, published figures on our scale.

    The published column appears only when it is on our scale: per 1,000 on the rate
    scale, or as % of the published baseline beside our % on a multiplicative scale.
    Otherwise a note says why it is absent. Area counts carry their flow keys. A
    secondary outcome's table adds its Holm-adjusted p-values (``adjusted``, from
    :func:`holm_adjusted`) beside the unadjusted ones.
    """
    scale = hl["scale"]
    d = digits_for(scale)
    pub = published_for(published, outcome)
    show_pub = has_published(published, outcome, rows["group"]) and (
        scale == "rate" or (scale in ("log", "poisson") and baseline is not None))
    columns = ["Site type", "Window", f"Effect, {SCALE_UNITS[scale]} (95% CI)",
               "% change (95% CI)", "p"]
    if adjusted:
        columns.append("p, Holm-adjusted")
    if synthetic:
        columns.append("Planted truth")
    if show_pub:
        columns.append("Morciano et al. 2020, " + ("per 1,000 per month" if scale == "rate"
                                                    else "% of baseline") + " (95% CI)")
    columns += ["Treated areas", "Comparison areas"]
    out_rows = []
    for g in schema.groups_in(rows["group"]):
        first = True
        for w in schema.WINDOWS:
            sel = rows[(rows["group"] == g) & (rows["window"] == w)]
            if sel.empty:
                continue
            r = sel.iloc[0]
            cells: list = [label("group", g) if first else "", label("window", w),
                           f"{fmt(r['estimate'], d)} ({fmt(r['ci_low'], d)} to "
                           f"{fmt(r['ci_high'], d)})",
                           f"{fmt(r['pct'], 1)} ({fmt(r['pct_ci_low'], 1)} to "
                           f"{fmt(r['pct_ci_high'], 1)})" if np.isfinite(r["pct"]) else "n/a",
                           fmt(r["p_value"])]
            if adjusted:
                a = adjusted.get((outcome, g, w))
                cells.append("n/a" if a is None else fmt(a))
            first = False
            if synthetic:
                t = truth_map.get((g, w))
                cells.append("n/a" if t is None else fmt(t, d))
            if show_pub:
                p = published_row(pub, outcome, g, w)
                if p is None:
                    cells.append("not published")
                elif scale == "rate":
                    cells.append(f"{fmt(p['estimate'])} ({fmt(p['ci_low'])} to "
                                 f"{fmt(p['ci_high'])})")
                else:
                    cells.append(f"{fmt(100 * p['estimate'] / baseline, 1)} "
                                 f"({fmt(100 * p['ci_low'] / baseline, 1)} to "
                                 f"{fmt(100 * p['ci_high'] / baseline, 1)})")
            for col, step in (("n_treated", ANALYSED), ("n_control", ANALYSED_CONTROLS)):
                v = r[col]
                cells.append({"t": "" if pd.isna(v) else str(int(v)),
                              "key": "" if pd.isna(v) else count_key(step, g)})
            out_rows.append(cells)
    notes = definition_note(outcome) if show_pub else []
    if adjusted:
        notes.append(f"A secondary outcome: Holm-adjusted p-values account for all "
                     f"{len(adjusted)} secondary tests in these tables (each secondary "
                     "outcome, site type and window), so a clear effect should meet "
                     "p < 0.05 after adjustment.")
    odd = sorted({u for u in pub["unit"] if "label reads" in u}) if "unit" in pub else []
    if show_pub and odd:
        notes.append("The published unit is uncertain: Morciano et al.'s Table 1 gives it "
                     f"as {odd[0]}; the figures are shown as per 1,000 per month, as the "
                     "published-results file reads them.")
    if not has_published(published, outcome, rows["group"]):
        notes.append("Morciano et al. (2020) published no estimate for this outcome and "
                     "these site types.")
    elif not show_pub:
        notes.append("Morciano et al. (2020) published rates per 1,000 population; this "
                     f"run's estimates are on the {label('scale', scale)}, so the two are "
                     "not set side by side.")
    return {"title": "Main results: " + in_sentence(label("outcome", outcome)),
            "columns": columns, "rows": out_rows, "notes": notes,
            "id": f"main-{outcome}"}


def honest_breakdown(results: pd.DataFrame, outcome: str, group: str) -> str:
    """The HonestDiD breakdown value in words: the largest M whose robust interval still
    excludes zero."""
    h = results[(results["analysis"] == "honestdid") & (results["outcome"] == outcome)
                & (results["group"] == group) & results["param"].notna()]
    if h.empty:
        return "not computed"
    h = h.sort_values("param")
    excl = (h["ci_low"] > 0) | (h["ci_high"] < 0)
    if not excl.iloc[0]:
        return "none (zero is inside the interval already at M = 0)"
    if excl.all():
        return f"above {fmt(h['param'].iloc[-1], 1)} (every M tried excludes zero)"
    last = h.loc[excl.to_numpy().cumprod().astype(bool), "param"].iloc[-1]
    return f"M = {fmt(last, 1)}"


def is_finite(x) -> bool:
    return x is not None and x is not pd.NA and math.isfinite(float(x))
