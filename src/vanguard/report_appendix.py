"""The robustness appendix and the table of analyses that could not be estimated.

Each analysis gets one compact table of the headline outcome, built from its results
files: HonestDiD bounds, placebo start dates, leave one site out (summarised), inference
variants, Poisson fixed effects, the sensitivities (``results/sensitivity__<outcome>.csv``)
and the sustainability windows (``results/sustainability__<outcome>.csv``). A table
whose results are absent is left out; none is filled in from another analysis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.errors import DataError
from vanguard.report_findings import digits_for, fmt, honest_breakdown
from vanguard.report_flow import ANALYSED, ANALYSED_CONTROLS, count_key
from vanguard.report_labels import SCALE_UNITS, in_sentence, label, plain
from vanguard.sites import site_names

SENSITIVITY_EXTRA = ("sensitivity", "sensitivity_label")
OWN_FILES = ("sensitivity__", "sustainability__")
"""Results files read only by the appendix: their rows re-estimate the headline on other
samples or windows, so they must not be mistaken for the headline's own rows."""


def _ci(r, d: int) -> str:
    return f"{fmt(r['estimate'], d)} ({fmt(r['ci_low'], d)} to {fmt(r['ci_high'], d)})"


def _pct(r) -> str:
    if not np.isfinite(r["pct"]):
        return "n/a"
    return f"{fmt(r['pct'], 1)} ({fmt(r['pct_ci_low'], 1)} to {fmt(r['pct_ci_high'], 1)})"


def honest_table(results: pd.DataFrame, outcome: str) -> dict | None:
    h = results[(results["analysis"] == "honestdid") & (results["outcome"] == outcome)]
    if h.empty:
        return None
    ms = sorted({float(m) for m in h["param"].dropna()})
    rows = []
    for g in schema.groups_in(h["group"]):
        hg = h[h["group"] == g]
        d = digits_for(str(hg["scale"].iloc[0]))
        orig = hg[hg["param"].isna()]
        cells = [label("group", g),
                 f"{fmt(orig['ci_low'].iloc[0], d)} to {fmt(orig['ci_high'].iloc[0], d)}"
                 if len(orig) else "n/a"]
        for m in ms:
            r = hg[hg["param"] == m]
            cells.append(f"{fmt(r['ci_low'].iloc[0], d)} to {fmt(r['ci_high'].iloc[0], d)}"
                         if len(r) else "n/a")
        cells.append(honest_breakdown(results, outcome, g))
        rows.append(cells)
    est = sorted(set(h["estimator"]))
    return {"title": "HonestDiD: how far may post-start trends depart from pre-start ones?",
            "columns": ["Site type", "Assuming parallel trends"]
                       + [f"M = {fmt(m, 1)}" for m in ms] + ["Breakdown value"],
            "rows": rows, "id": "appendix-honest",
            "notes": ["95% intervals of the average post-start effect. Relative-magnitude "
                      "bounds (Rambachan and Roth): the post-start departure from parallel "
                      "trends may be up to M times the largest pre-start one. The breakdown "
                      "value is the largest M whose interval still excludes zero. Event "
                      "study by " + ", ".join(label("estimator", e) for e in est) + ", "
                      + label("scale", str(h["scale"].iloc[0])) + "."]}


def placebo_table(results: pd.DataFrame, outcome: str) -> dict | None:
    p = results[(results["analysis"] == "placebo") & (results["outcome"] == outcome)]
    if p.empty:
        return None
    rows = []
    order = {g: i for i, g in enumerate(schema.groups_in(p["group"]))}
    p = p.assign(_o=p["group"].map(order))
    for _, r in p.sort_values(["_o", "param"]).iterrows():
        d = digits_for(r["scale"])
        shift = int(r["param"]) if np.isfinite(r["param"]) else None
        rows.append([label("group", r["group"]),
                     "n/a" if shift is None else f"{abs(shift)} months "
                     + ("before" if shift < 0 else "after") + " the real start",
                     label("window", r["window"]), _ci(r, d), _pct(r), fmt(r["p_value"]),
                     label("inference", r["inference"])])
    return {"title": "Placebo start dates (expected: no effect)",
            "columns": ["Site type", "Pretend start", "Window", "Effect (95% CI)",
                        "% change (95% CI)", "p", "Inference"],
            "rows": rows, "id": "appendix-placebo",
            "notes": ["Estimated on data before the real start only; an interval that "
                      "excludes zero warns that the design finds effects where there are "
                      "none."]}


def leave_one_out_table(results: pd.DataFrame, outcome: str, names: dict) -> dict | None:
    lo = results[(results["analysis"] == "leave_one_out") & (results["outcome"] == outcome)]
    if lo.empty:
        return None
    rows = []
    for g in schema.groups_in(lo["group"]):
        gg = lo[lo["group"] == g]
        d = digits_for(str(gg["scale"].iloc[0]))
        main = results[(results["analysis"] == "main") & (results["outcome"] == outcome)
                       & (results["group"] == g) & (results["window"].isin(set(gg["window"])))
                       & (results["estimator"].isin(set(gg["estimator"])))
                       & (results["inference"].isin(set(gg["inference"])))]
        ref = float(main["estimate"].iloc[0]) if len(main) else np.nan
        move = (gg["estimate"] - ref).abs() if np.isfinite(ref) else gg["estimate"].abs()
        far = gg.loc[move.idxmax()]
        site = str(far["site"])
        excl = int(((gg["ci_low"] > 0) | (gg["ci_high"] < 0)).sum())
        rows.append([label("group", g), {"t": str(len(gg)), "key": "", "sample": "sites"},
                     f"{fmt(gg['estimate'].min(), d)} to {fmt(gg['estimate'].max(), d)}",
                     f"{fmt(gg['pct'].min(), 1)} to {fmt(gg['pct'].max(), 1)}",
                     f"{names.get(site, 'site ' + site)}: {fmt(far['estimate'], d)}",
                     f"{excl} of {len(gg)}"])
    return {"title": "Leave one site out",
            "columns": ["Site type", "Sites left out in turn", "Range of effects",
                        "Range of % change", "Largest change (site left out: effect)",
                        "Intervals excluding zero"],
            "rows": rows, "id": "appendix-loo",
            "notes": ["Each site's areas are dropped in turn and the years 1-3 effect "
                      "re-estimated; the full list is in the run's results folder."]}


def inference_table(results: pd.DataFrame, outcome: str, window: str = "years_1_3"
                    ) -> dict | None:
    inf = results[(results["analysis"] == "inference") & (results["outcome"] == outcome)
                  & (results["window"] == window)]
    if inf.empty:
        return None
    rows = []
    for g in schema.groups_in(inf["group"]):
        first = True
        for _, r in inf[inf["group"] == g].sort_values("inference").iterrows():
            d = digits_for(r["scale"])
            rows.append([label("group", g) if first else "", label("inference", r["inference"]),
                         _ci(r, d), _pct(r), fmt(r["p_value"])])
            first = False
    return {"title": f"Inference variants ({label('window', window).lower()})",
            "columns": ["Site type", "Inference", "Effect (95% CI)", "% change (95% CI)", "p"],
            "rows": rows, "id": "appendix-inference",
            "notes": ["The same estimate with intervals from each method; with few "
                      "treated areas cluster-robust intervals are too narrow."]}


def poisson_table(results: pd.DataFrame, outcome: str) -> dict | None:
    p = results[(results["analysis"] == "main") & (results["outcome"] == outcome)
                & (results["estimator"] == "twfe_poisson")]
    if p.empty:
        return None
    p = p.drop_duplicates(["group", "window"])
    rows = []
    for g in schema.groups_in(p["group"]):
        first = True
        for w in schema.WINDOWS:
            sel = p[(p["group"] == g) & (p["window"] == w)]
            if sel.empty:
                continue
            r = sel.iloc[0]
            rows.append([label("group", g) if first else "", label("window", w), _pct(r),
                         fmt(r["p_value"]), label("inference", r["inference"])])
            first = False
    return {"title": "Poisson fixed effects (% change in the count)",
            "columns": ["Site type", "Window", "% change (95% CI)", "p", "Inference"],
            "rows": rows, "id": "appendix-poisson",
            "notes": ["A rate ratio from a Poisson model with area and month fixed "
                      "effects and the population as exposure where the data have it."]}


def read_extra(run_path: Path, prefix: str, outcome: str,
               extra: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """``results/<prefix>__<outcome>.csv`` in the tidy schema plus ``extra`` columns.

    Raises
    ------
    DataError
        If the file lacks a column of the schema or of ``extra``.
    """
    path = run_path / "results" / f"{prefix}__{outcome}.csv"
    if not path.is_file():
        return None
    types = {c: "string" for c, t in schema.RESULT_COLUMNS.items() if t == "string"}
    raw = pd.read_csv(path, dtype=types | {c: "string" for c in extra}, keep_default_na=False,
                      na_values={c: [""] for c, t in schema.RESULT_COLUMNS.items()
                                 if t != "string"})
    for col in extra:
        if col not in raw.columns:
            raise DataError(path, f"a column {col!r} beside the results schema", column=col,
                            found=list(raw.columns))
    # the extra columns (sensitivity key and label) are schema columns: only their
    # presence is checked here, the schema reads them
    try:
        return schema.results_frame(raw)
    except ValueError as exc:
        raise DataError(path, f"a results file in the tidy schema ({exc})") from None


def sensitivity_table(df: pd.DataFrame, window: str = "years_1_3") -> dict:
    """The sensitivities of one outcome: the headline row first, then each variant."""
    sel = df[df["window"] == window] if window in set(df["window"]) else df
    order = {"headline": 0}
    sel = sel.assign(_o=sel["sensitivity"].map(lambda s: order.get(s, 1)))
    rows = []
    for g in schema.groups_in(sel["group"]):
        first = True
        for _, r in sel[sel["group"] == g].sort_values(["_o", "sensitivity"]).iterrows():
            d = digits_for(r["scale"])
            name = r["sensitivity_label"].strip() or label("sensitivity", r["sensitivity"])
            # the headline row is the headline sample, so its counts are the flow's;
            # every variant's sample differs by design and is declared as its own
            headline = r["sensitivity"] == "headline"
            cells = []
            for col, step in (("n_treated", ANALYSED), ("n_control", ANALYSED_CONTROLS)):
                v = r[col]
                cells.append({"t": "" if pd.isna(v) else str(int(v)),
                              "key": count_key(step, g) if headline and pd.notna(v) else "",
                              "sample": "" if headline else f"sensitivity:{r['sensitivity']}"})
            rows.append([label("group", g) if first else "", plain(name), _ci(r, d), _pct(r),
                         fmt(r["p_value"]), *cells])
            first = False
    return {"title": f"Sensitivity analyses ({label('window', window).lower()})",
            "columns": ["Site type", "Variant", "Effect (95% CI)", "% change (95% CI)", "p",
                        "Treated areas", "Comparison areas"],
            "rows": rows, "id": "appendix-sensitivity",
            "notes": ["Each variant changes one choice of the headline analysis, so its "
                      "areas differ from the flow of areas by design."]}


def skipped_note(run_path: Path, kind: str, outcome: str) -> str:
    """One sentence naming what a sensitivity notebook did not estimate, and why.

    Reads ``tables/<kind>_skipped__<outcome>.csv``; empty when the file is absent or
    lists nothing.
    """
    path = run_path / "tables" / f"{kind}_skipped__{outcome}.csv"
    if not path.is_file():
        return ""
    sk = pd.read_csv(path, dtype=str, keep_default_na=False)
    if sk.empty:
        return ""
    # one clause per reason, naming each variant briefly with its site types
    parts = []
    for reason, by_reason in sk.groupby("reason", sort=False):
        names = []
        for key, rows in by_reason.groupby("sensitivity", sort=False):
            groups = ", ".join(label("group", g) for g in schema.groups_in(rows["group"]))
            names.append(f"{label('sensitivity', key)} ({groups})")
        why = plain(reason)
        parts.append(f"{why[:1].upper()}{why[1:]}: {'; '.join(names)}")
    return "Not estimated. " + ". ".join(parts) + "."


SUSTAINABILITY_ORDER = {"years_1_3": 0, "year_4": 1, "sustainability": 2}


def sustainability_table(df: pd.DataFrame, data_source: str = "") -> dict:
    rows = []
    for g in schema.groups_in(df["group"]):
        first = True
        sel = df[df["group"] == g]
        for _, r in sel.iloc[sel["window"].map(SUSTAINABILITY_ORDER).fillna(3).argsort(
                kind="stable")].iterrows():
            d = digits_for(r["scale"])
            rows.append([label("group", g) if first else "", label("window", r["window"]),
                         _ci(r, d), _pct(r), fmt(r["p_value"])])
            first = False
    return {"title": "Sustainability: after the programme's funding ended",
            "columns": ["Site type", "Window", "Effect (95% CI)", "% change (95% CI)", "p"],
            "rows": rows, "id": "appendix-sustainability",
            "notes": [("On the real data the panel runs to December 2019 (April 2019 CCG "
                       "footprint), so for the sites that started in April 2015 the window "
                       "after the programme is April 2018 - December 2019; "
                       if data_source == "nhs_mar" else "")
                      + ("years" if data_source == "nhs_mar" else "Years")
                      + " 1-3 are estimated on the same panel, so the windows compare "
                      "like with like."]}


def robustness_tables(run_path: Path, results: pd.DataFrame, outcome: str,
                      data_source: str, *, sensitivity: pd.DataFrame | None = None
                      ) -> list[dict]:
    """Every robustness table the run's results support, in appendix order.

    ``sensitivity`` is ``results/sensitivity__<outcome>.csv`` as :func:`read_extra`
    reads it, when the caller has read it already; read here otherwise.
    """
    names = site_names(data_source, missing_ok=True)
    tables = [honest_table(results, outcome), placebo_table(results, outcome),
              leave_one_out_table(results, outcome, names), inference_table(results, outcome),
              poisson_table(results, outcome)]
    sens = (sensitivity if sensitivity is not None
            else read_extra(run_path, "sensitivity", outcome, SENSITIVITY_EXTRA))
    if sens is not None and len(sens):
        tables.append(sensitivity_table(sens))
        note = skipped_note(run_path, "sensitivity", outcome)
        if note:
            tables[-1]["notes"].append(note)
    sus = read_extra(run_path, "sustainability", outcome)
    if sus is not None and len(sus):
        tables.append(sustainability_table(sus, data_source))
        note = skipped_note(run_path, "sustainability", outcome)
        if note:
            tables[-1]["notes"].append(note)
    out = [t for t in tables if t is not None]
    units = {str(s) for s in results.loc[results["outcome"] == outcome, "scale"]}
    for t in out:
        if "Effect (95% CI)" in t["columns"] and len(units & set(SCALE_UNITS)) == 1:
            t["notes"].append(f"Effects in {SCALE_UNITS[next(iter(units))]}.")
    return out


def not_estimated_table(run_path: Path) -> dict | None:
    """One row per analysis and reason that a notebook recorded as not estimated.

    Read from ``tables/failures__<notebook>__<outcome>.csv``; the site types and outcomes
    it applies to are collapsed into one row.
    """
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False)
              for p in sorted((run_path / "tables").glob("failures__*.csv"))]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty:
        return None
    out = []
    for (name, error), g in rows.groupby(["analysis", "error"], sort=False):
        out.append([plain(name).capitalize(),
                    ", ".join(label("group", x) for x in schema.groups_in(g["group"]))
                    or ", ".join(dict.fromkeys(g["group"])),
                    ", ".join(in_sentence(label("outcome", o)) for o in dict.fromkeys(g["outcome"])),
                    plain(error)])
    return {"title": "Analyses the data could not support",
            "columns": ["Analysis", "Site types", "Outcomes", "Reason"], "rows": out,
            "id": "not-estimated",
            "notes": ["These analyses are missing from the report; nothing was filled in "
                      "from another analysis."]}
