"""The content model of the evaluation report, built only from a run's files.

:func:`build_content` reads ``reports/<run>/results/*.csv``, ``manifest.json``, the
figures, the published estimates and the lessons register, and returns a plain
JSON-serialisable dict. The HTML and the PDF are both rendered from that one dict, so
they can never disagree. Every number is formatted here from a results file; none is
typed into a template.

Text that carries numbers is a list of segments ``{"t": text, "k": kind}`` with kind
``""`` (plain), ``"num"`` (a number from a results file) or ``"truth"`` (a planted effect
from the synthetic truth table), so renderers and tests can tell them apart.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import config, plots, schema, sdc
from vanguard.errors import DataError
from vanguard.report_figures import FIGURE_SECTIONS, figure_entries  # noqa: F401
from vanguard.report_lessons import Evidence, assess_lessons, load_lessons, site_heterogeneity

HOPED_FOR_PCT = 3.0
"""Default hoped-for reduction in emergency admissions, in %: NHS England's July 2017
targets asked PACS vanguards for growth 3 percentage points below the rest of England
(see ``data/raw/published_results.csv``). A run overrides it with ``hoped_for_pct``."""

SCALE_PREFERENCE = ("rate", "poisson", "log", "count")
ESTIMATOR_PREFERENCE = ("twfe", "twfe_poisson", "imputation", "cs_notyet", "cs_never")
INFERENCE_PREFERENCE = ("wild_bootstrap", "randomisation", "cluster", "analytic",
                        "multiplier_bootstrap", "none")
PRETREND_PREFERENCE = ("event_study", "twfe", "imputation", "cs_notyet", "cs_never")
INFERENCE_LABELS = {
    "wild_bootstrap": "wild cluster bootstrap",
    "randomisation": "randomisation inference",
    "cluster": "cluster-robust standard errors (by area)",
    "analytic": "analytic standard errors",
    "multiplier_bootstrap": "multiplier bootstrap",
    "none": "no inference",
}
MORCIANO_CITATION = (
    "Morciano M, Checkland K, Billings J, et al. New integrated care models in England "
    "associated with small reduction in hospital admissions in longer-term: a "
    "difference-in-differences analysis. Health Policy 2020;124(8):826-833, Table 1."
)



# ---------------------------------------------------------------------------
# loading


def load_manifest(run_path: Path) -> dict:
    """Read ``manifest.json`` of a run (empty dict when absent).

    Raises
    ------
    DataError
        If the file exists but is not a JSON object.
    """
    path = run_path / "manifest.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, "valid JSON", row=exc.lineno, found=exc.msg) from None
    if not isinstance(data, dict):
        raise DataError(path, "a JSON object", found=type(data).__name__)
    return data


def manifest_parameters(manifest: dict) -> dict:
    """Run parameters: ``manifest["parameters"]`` if present, else the manifest itself."""
    params = manifest.get("parameters", manifest)
    return params if isinstance(params, dict) else {}


def load_run_results(run_path: Path) -> pd.DataFrame:
    """All results files of a run, concatenated, in the tidy schema.

    Raises
    ------
    DataError
        If the run has no results files, or a file does not follow the schema.
    """
    files = sorted((run_path / "results").glob("*.csv"))
    if not files:
        raise DataError(run_path / "results", "one or more results files (*.csv)",
                        found="none")
    frames = []
    for f in files:
        try:
            frames.append(schema.read_results(f))
        except ValueError as exc:
            raise DataError(f, f"a results file in the tidy schema ({exc})") from None
    return pd.concat(frames, ignore_index=True)


def run_data_source(manifest: dict, results: pd.DataFrame) -> str:
    """The data a run is built on: the manifest's ``data_source`` parameter, else the
    results files' ``data_source`` column, else ``custom``."""
    params = manifest_parameters(manifest)
    sources = sorted(set(results["data_source"]) - {""})
    return str(params.get("data_source") or manifest.get("data_source")
               or (sources[0] if sources else "custom"))


def load_published_table1(path: str | Path = config.PUBLISHED_RESULTS) -> pd.DataFrame:
    """Morciano et al. (2020) Table 1 in machine-usable form.

    Parameters
    ----------
    path : str or pathlib.Path
        ``published_results.csv``: the published figures with their sources, where the
        Table 1 rows carry ``table1_group``, ``table1_window`` and ``table1_outcome``.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``window``, ``outcome``, ``estimate``, ``ci_low``,
        ``ci_high`` (floats, per 1,000 population per month), ``source`` and
        ``source_url``.

    Raises
    ------
    DataError
        If the file or a column is missing, a key is unknown or a number does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "the published results file", found="no such file")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    need = ("study", "estimate", "ci_low", "ci_high", "source_url", "table1_group",
            "table1_window", "table1_outcome")
    for col in need:
        if col not in df.columns:
            raise DataError(path, f"columns {list(need)}", column=col, found=list(df.columns))
    rows = []
    for i, r in df.iterrows():
        if not r["table1_group"]:
            continue
        row = int(i) + 2
        if r["table1_group"] not in schema.ANALYSIS_GROUPS:
            raise DataError(path, f"one of {schema.ANALYSIS_GROUPS}", row=row,
                            column="table1_group", found=r["table1_group"])
        if r["table1_window"] not in schema.WINDOWS:
            raise DataError(path, f"one of {tuple(schema.WINDOWS)}", row=row,
                            column="table1_window", found=r["table1_window"])
        nums = {}
        for col in ("estimate", "ci_low", "ci_high"):
            try:
                nums[col] = float(r[col])
            except ValueError:
                raise DataError(path, "a number", row=row, column=col, found=r[col]) from None
        rows.append({"group": r["table1_group"], "window": r["table1_window"],
                     "outcome": r["table1_outcome"], **nums,
                     "source": f"{r['study']} ({r['source_url']})",
                     "source_url": r["source_url"]})
    return pd.DataFrame(rows, columns=["group", "window", "outcome", "estimate", "ci_low",
                                       "ci_high", "source", "source_url"])


def load_truth(path: str | Path | None = None) -> pd.DataFrame | None:
    """The synthetic truth table, or None (with a warning) when it is absent.

    Raises
    ------
    DataError
        If the file exists but lacks a required column.
    """
    path = Path(path) if path is not None else config.SYNTHETIC_DIR / "truth.csv"
    if not path.is_file():
        warnings.warn(f"{path}: no synthetic truth table; planted effects are not shown",
                      stacklevel=2)
        return None
    df = pd.read_csv(path, dtype={"site": str}, keep_default_na=False,
                     na_values={"truth": [""]})
    for col in ("group", "window", "outcome", "scale", "truth"):
        if col not in df.columns:
            raise DataError(path, "columns group, window, outcome, scale, truth, site",
                            column=col, found=list(df.columns))
    if "site" not in df.columns:
        df["site"] = ""
    df["truth"] = pd.to_numeric(df["truth"], errors="coerce")
    return df


# ---------------------------------------------------------------------------
# formatting


def fmt(x: float, digits: int = 3, *, thousands: bool = False) -> str:
    """Format a number for display with a fixed number of decimals (ASCII minus)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    s = f"{x:,.{digits}f}" if thousands else f"{x:.{digits}f}"
    return "0." + "0" * digits if s == "-0." + "0" * digits else s


def _seg(t: str, k: str = "") -> dict:
    return {"t": t, "k": k}


def _digits(scale: str) -> int:
    return 1 if scale == "count" else 3


# ---------------------------------------------------------------------------
# headline choice


def _pick(values: list[str], preference: tuple[str, ...], wanted: str | None) -> str:
    if wanted and wanted in values:
        return wanted
    for v in preference:
        if v in values:
            return v
    return sorted(values)[0]


def choose_headline(main: pd.DataFrame, params: dict) -> dict:
    """The outcome, scale, estimator and inference method of the headline estimates.

    Rule: when the analysis marked its rows with the headline-inference rule (a ``note``
    containing ``headline``, as ``inference="auto"`` does), those rows are the headline
    and their inference may differ by site type. Otherwise the run's parameters
    (``outcome``, ``scale``, ``headline_estimator``, ``headline_inference`` or a concrete
    ``inference``) where given; otherwise emergency admissions on the rate scale when
    populations exist (else Poisson or log), the two-way fixed-effects estimator, and the
    most conservative inference available (wild cluster bootstrap, then randomisation
    inference, then cluster-robust).

    Parameters
    ----------
    main : pandas.DataFrame
        ``analysis == "main"`` results rows.
    params : dict
        Run parameters from the manifest.

    Returns
    -------
    dict
        Keys ``outcome``, ``scale``, ``estimator``, ``inference`` (``"per site type"``
        when the analysis chose by group), ``tagged`` (bool) and ``rule`` (a sentence).

    Raises
    ------
    DataError
        If there are no main results.
    """
    if main.empty:
        raise DataError("results", "rows with analysis 'main'", column="analysis",
                        found="none")
    tagged = main[main["note"].str.contains("headline", case=False, na=False)]
    src = tagged if len(tagged) else main
    outcome = _pick(sorted(set(src["outcome"])), ("emergency_admissions",), params.get("outcome"))
    src = src[src["outcome"] == outcome]
    scale = _pick(sorted(set(src["scale"])), SCALE_PREFERENCE, params.get("scale"))
    src = src[src["scale"] == scale]
    estimator = _pick(sorted(set(src["estimator"])), ESTIMATOR_PREFERENCE,
                      params.get("headline_estimator"))
    src = src[src["estimator"] == estimator]
    if len(tagged):
        methods = sorted(set(src["inference"]))
        inference = methods[0] if len(methods) == 1 else "per site type"
        notes = sorted({n.split(";")[0] for n in src["note"] if "headline" in n.lower()})
        # notes[0] is the whole rule ("... fewer than 10 treated areas -> wild cluster
        # bootstrap, otherwise cluster-robust"); the per-group outcome follows the ';'.
        stated = notes[0] if notes else ""
        how = ("chosen for each site type by the analysis's " + stated if stated else
               "marked as headline by the analysis")
        by_group = "; ".join(
            f"{schema.group_label(g)}: {INFERENCE_LABELS.get(i, i)}"
            for g, i in src.drop_duplicates("group")[["group", "inference"]].itertuples(
                index=False, name=None))
        inf_text = f"95% intervals from {by_group}"
    else:
        wanted = params.get("headline_inference") or params.get("inference")
        inference = _pick(sorted(set(src["inference"])), INFERENCE_PREFERENCE, wanted)
        how = ("chosen by the report's rule: the run's stated inference where given, "
               "otherwise the most conservative available (wild cluster bootstrap, then "
               "randomisation inference, then cluster-robust)")
        inf_text = f"95% intervals from {INFERENCE_LABELS.get(inference, inference)}"
    rule = (f"Headline estimates: {plots.outcome_label(outcome).lower()}, {scale} scale, "
            f"estimator {estimator}; {inf_text}; inference {how}. An effect is called "
            "clear when its 95% interval excludes zero.")
    return {"outcome": outcome, "scale": scale, "estimator": estimator,
            "inference": inference, "tagged": bool(len(tagged)), "rule": rule}


def headline_rows(main: pd.DataFrame, hl: dict, outcome: str | None = None) -> pd.DataFrame:
    """Main rows of the headline estimator, scale and inference: one per group x window.

    Parameters
    ----------
    main : pandas.DataFrame
        ``analysis == "main"`` rows.
    hl : dict
        From :func:`choose_headline`.
    outcome : str, optional
        Another outcome on the same terms (default: the headline outcome).

    Returns
    -------
    pandas.DataFrame
    """
    rows = main[(main["outcome"] == (outcome or hl["outcome"])) & (main["scale"] == hl["scale"])
                & (main["estimator"] == hl["estimator"])]
    if hl["tagged"]:
        tagged = rows[rows["note"].str.contains("headline", case=False, na=False)]
        rows = tagged if len(tagged) else rows
    else:
        rows = rows[rows["inference"] == hl["inference"]]
    return rows.drop_duplicates(["group", "window"]).reset_index(drop=True)


# ---------------------------------------------------------------------------
# sections


def _truth_lookup(truth: pd.DataFrame | None, outcome: str, scale: str):
    if truth is None:
        return {}
    t = truth[(truth["outcome"] == outcome) & (truth["scale"] == scale)
              & (truth["site"].astype(str) == "")]
    return {(r.group, r.window): float(r.truth) for r in t.itertuples()
            if np.isfinite(r.truth)}


def executive_summary(head: pd.DataFrame, hl: dict, truth_map: dict,
                      synthetic: bool) -> list[list[dict]]:
    """One paragraph (list of segments) per site type, for years 1-3."""
    paras = []
    digits = _digits(hl["scale"])
    unit = {"rate": " per 1,000 population per month", "count": " per area per month",
            "log": " log points", "poisson": " (log rate ratio)"}[hl["scale"]]
    for g in schema.groups_in(head["group"]):
        r = head[(head["group"] == g) & (head["window"] == "years_1_3")]
        if r.empty:
            continue
        r = r.iloc[0]
        segs = [_seg(f"{schema.group_label(g)}, years 1-3: ")]
        if hl["scale"] in ("rate", "count") or not np.isfinite(r["pct"]):
            segs += [_seg(fmt(r["estimate"], digits), "num"), _seg(unit + " (95% CI "),
                     _seg(fmt(r["ci_low"], digits), "num"), _seg(" to "),
                     _seg(fmt(r["ci_high"], digits), "num"), _seg(")")]
            if np.isfinite(r["pct"]):
                segs += [_seg(", a change of "), _seg(fmt(r["pct"], 1), "num"), _seg("% (")]
                segs += [_seg(fmt(r["pct_ci_low"], 1), "num"), _seg("% to "),
                         _seg(fmt(r["pct_ci_high"], 1), "num"), _seg("%)")]
        else:
            segs += [_seg("a change of "), _seg(fmt(r["pct"], 1), "num"), _seg("% (95% CI "),
                     _seg(fmt(r["pct_ci_low"], 1), "num"), _seg("% to "),
                     _seg(fmt(r["pct_ci_high"], 1), "num"), _seg("%); on the model scale "),
                     _seg(fmt(r["estimate"], 3), "num"), _seg(unit)]
        if np.isfinite(r["p_value"]):
            segs += [_seg("; p = "), _seg(fmt(r["p_value"], 3), "num")]
        if pd.notna(r["n_treated"]):
            n = int(r["n_treated"])
            shown = sdc.MARKER if sdc.is_small(n) else str(n)
            segs += [_seg("; treated areas: "), _seg(shown, "num" if shown != sdc.MARKER else "")]
        verdict = ("a clear reduction" if r["ci_high"] < 0 else
                   "a clear increase" if r["ci_low"] > 0 else "no clear effect")
        segs.append(_seg(f". Reading: {verdict}."))
        if synthetic:
            t = truth_map.get((g, "years_1_3"))
            if t is not None:
                covered = r["ci_low"] <= t <= r["ci_high"]
                segs += [_seg(" Planted truth: "), _seg(fmt(t, digits), "truth"),
                         _seg(" (inside the interval)." if covered else
                              " (outside the interval).")]
        paras.append(segs)
    return paras


def main_table(head: pd.DataFrame, hl: dict, outcome: str, published: pd.DataFrame,
               truth_map: dict, synthetic: bool) -> dict:
    """Morciano et al. (2020) Table 1 layout: site type x window, ours beside theirs."""
    digits = _digits(hl["scale"])
    pub = published[published["outcome"] == outcome]
    comparable = hl["scale"] == "rate"
    rows, suppressed_any = [], False
    columns = ["Site type", "Window", "Estimate (95% CI)", "% change (95% CI)", "p"]
    if synthetic:
        columns.append("Planted truth")
    columns += ["Morciano et al. 2020 (95% CI)", "Treated areas", "Control areas"]
    counts = head[["n_treated", "n_control"]].copy()
    safe, suppressed_any = sdc.apply_sdc(counts, ["n_treated", "n_control"],
                                         source="main table")
    for g in schema.groups_in(set(head["group"]) | set(pub["group"])):
        for w in schema.WINDOWS:
            idx = head.index[(head["group"] == g) & (head["window"] == w)]
            p = pub[(pub["group"] == g) & (pub["window"] == w)]
            if len(idx) == 0 and p.empty:
                continue
            cells = [schema.group_label(g), schema.WINDOW_LABELS[w]]
            if len(idx):
                r = head.loc[idx[0]]
                cells += [f"{fmt(r['estimate'], digits)} ({fmt(r['ci_low'], digits)} to "
                          f"{fmt(r['ci_high'], digits)})",
                          f"{fmt(r['pct'], 1)} ({fmt(r['pct_ci_low'], 1)} to "
                          f"{fmt(r['pct_ci_high'], 1)})" if np.isfinite(r["pct"]) else "n/a",
                          fmt(r["p_value"], 3)]
                if synthetic:
                    t = truth_map.get((g, w))
                    cells.append(fmt(t, digits) if t is not None else "n/a")
            else:
                cells += ["not estimated", "", ""] + ([""] if synthetic else [])
            cells.append(f"{fmt(p.iloc[0]['estimate'], 3)} ({fmt(p.iloc[0]['ci_low'], 3)} to "
                         f"{fmt(p.iloc[0]['ci_high'], 3)})" if len(p) else "not published")
            for c in ("n_treated", "n_control"):
                v = safe.loc[idx[0], c] if len(idx) else None
                cells.append("" if v is None else str(v))
            rows.append(cells)
    notes = [hl["rule"],
             "Published figures: " + MORCIANO_CITATION + " Monthly rates per 1,000 "
             "population; 31 population-based and 6 care-home sites against 186 controls. "
             "Source: " + ", ".join(sorted(set(pub["source_url"]))) + "."]
    if not comparable:
        notes.append("Our estimates are not on the per-1,000 rate scale (the data have no "
                     "population denominators), so compare the direction and the % change, "
                     "not the size, with the published rates.")
    if suppressed_any:
        notes.append(sdc.FOOTNOTE)
    return {"title": f"Main results: {plots.outcome_label(outcome).lower()}",
            "columns": columns, "rows": rows, "notes": notes}


BALANCE_COLUMNS = ("group", "outcome", "measure", "mean_treated", "sd_treated", "n_treated",
                   "mean_control", "sd_control", "n_control", "std_diff")
MEASURE_LABELS = {"rate_per_1000": "rate per 1,000 per month", "growth_pct": "annual growth, %",
                  "population": "population", "count": "count per area per month"}


def balance_table(run_path: Path, outcome: str) -> dict | None:
    """Pre-period balance of treated and control areas, from ``tables/balance.csv``.

    Parameters
    ----------
    run_path : pathlib.Path
    outcome : str
        Outcome whose rows are shown (population rows are always shown).

    Returns
    -------
    dict or None
        A table of the content model (counts of areas suppressed by
        :func:`vanguard.sdc.apply_sdc`); None when the run has no balance table.

    Raises
    ------
    DataError
        If the file lacks a required column or a mean is not numeric.
    """
    path = run_path / "tables" / "balance.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path, dtype={"group": str, "outcome": str, "measure": str})
    for col in BALANCE_COLUMNS:
        if col not in df.columns:
            raise DataError(path, f"columns {list(BALANCE_COLUMNS)}", column=col,
                            found=list(df.columns))
    df = df[df["outcome"].isin([outcome, "population"])].reset_index(drop=True)
    for col in ("mean_treated", "sd_treated", "mean_control", "sd_control", "std_diff"):
        bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
        if bad.any():
            raise DataError(path, "a number", row=int(np.flatnonzero(bad)[0]) + 2, column=col,
                            found=df.loc[bad, col].iloc[0])
    safe, suppressed = sdc.apply_sdc(df, ["n_treated", "n_control"], source=str(path))
    digits = {"population": 0}
    rows = []
    for i, r in df.iterrows():
        d = digits.get(r["measure"], 2)
        rows.append([
            schema.group_label(r["group"]),
            plots.outcome_label(r["outcome"]) if r["outcome"] != "population" else "Population",
            MEASURE_LABELS.get(r["measure"], r["measure"]),
            f"{fmt(r['mean_treated'], d, thousands=True)} "
            f"({fmt(r['sd_treated'], d, thousands=True)})",
            f"{fmt(r['mean_control'], d, thousands=True)} "
            f"({fmt(r['sd_control'], d, thousands=True)})",
            fmt(r["std_diff"], 2),
            "" if safe.loc[i, "n_treated"] is None else str(safe.loc[i, "n_treated"]),
            "" if safe.loc[i, "n_control"] is None else str(safe.loc[i, "n_control"]),
        ])
    notes = ["Area means over the pre-period (standard deviation in brackets); a "
             "standardised difference beyond 0.25 in absolute value flags imbalance."]
    if suppressed:
        notes.append(sdc.FOOTNOTE)
    return {"title": "Pre-period balance of vanguard and control areas",
            "columns": ["Site type", "Outcome", "Measure", "Vanguard areas: mean (SD)",
                        "Control areas: mean (SD)", "Standardised difference",
                        "Vanguard areas", "Control areas"],
            "rows": rows, "notes": notes}


def _evidence(results: pd.DataFrame, head: pd.DataFrame, hl: dict, params: dict,
              data_source: str) -> Evidence:
    same = (results["outcome"] == hl["outcome"]) & (results["scale"] == hl["scale"])
    alternatives = results[same & results["analysis"].isin(["main", "inference"])]
    alternatives = alternatives.drop_duplicates(["group", "window", "estimator", "inference"])
    pre = results[(results["analysis"] == "pretrend") & (results["outcome"] == hl["outcome"])
                  & np.isfinite(results["p_value"].astype(float))]
    # The event study's joint test is the pre-trend test the report names first.
    order = {e: i for i, e in enumerate(PRETREND_PREFERENCE)}
    pre = pre.assign(_o=pre["estimator"].map(lambda e: order.get(e, len(order))))
    pre = pre.sort_values(["_o", "estimator"]).drop_duplicates("group")
    pretrend = {str(r.group): float(r.p_value) for r in pre.itertuples()}
    ps = results[same & (results["analysis"] == "per_site")]
    if len(ps):
        win = "years_1_3" if "years_1_3" in set(ps["window"]) else sorted(set(ps["window"]))[0]
        ps = ps[ps["window"] == win]
        est = hl["estimator"] if hl["estimator"] in set(ps["estimator"]) else sorted(
            set(ps["estimator"]))[0]
        ps = ps[ps["estimator"] == est]
    power = results[(results["analysis"] == "power") & (results["outcome"] == hl["outcome"])]
    if hl["scale"] in set(power["scale"]):
        power = power[power["scale"] == hl["scale"]]
    mde = {}
    for g, gg in power.groupby("group"):
        gg = gg[np.isfinite(gg["pct"].astype(float))]
        if gg.empty:
            continue
        if "years_1_3" in set(gg["window"]):
            gg = gg[gg["window"] == "years_1_3"]
        best = gg.iloc[(gg["param"].astype(float) - 0.8).abs().argsort()[:1]]
        mde[str(g)] = float(best["pct"].iloc[0])
    hoped = float(params.get("hoped_for_pct", HOPED_FOR_PCT))
    return Evidence(headline=head, alternatives=alternatives, pretrend_p=pretrend,
                    heterogeneity=site_heterogeneity(ps) if len(ps) else {},
                    mde_pct=mde, hoped_for_pct=hoped, data_source=data_source)


def methods_section(data_source: str, hl: dict, params: dict) -> list[str]:
    """Methods and limitations paragraphs (no numbers from results)."""
    paras = [
        "Design: difference-in-differences comparing areas covered by vanguard sites with "
        "areas never in a vanguard, in the shape of Morciano et al. (2020): area and month "
        "fixed effects, a balanced panel, and post-period windows of years 1-3, 1, 2 and 3 "
        "after the first full month after announcement (wave 1: April 2015; urgent and "
        "emergency care: August 2015). Areas in both a population-based and a care-home "
        "site count towards both effects; acute care collaborations have no area footprint "
        "and are not analysed.",
        "Estimators: two-way fixed effects on the chosen scale, Poisson fixed effects for "
        "counts, an event study with a joint pre-trend test, and heterogeneity-robust "
        "estimators for staggered starts (Callaway-Sant'Anna, imputation) where the run "
        "includes them. Per-site effects are compared with Cochran's Q; the sites share "
        "the same control areas, so their estimates are not independent and the test (and "
        "any inverse-variance pooled effect drawn from them) is approximate.",
        hl["rule"],
        "Minimum detectable effect: simulated on the pre-period; it is set beside a "
        f"hoped-for reduction of {float(params.get('hoped_for_pct', HOPED_FOR_PCT)):g}% "
        "(NHS England's 2017 target for PACS vanguards: growth 3 percentage points below "
        "the rest of England), unless the run states another value.",
    ]
    limits = [
        "The NHS Monthly Activity Return counts finished consultant episodes (FFCEs) by "
        "responsible commissioner, not hospital spells by patient residence as in Hospital "
        "Episode Statistics: one admission can give several episodes.",
        "The Monthly Activity Return has no population denominators and no age split, so on "
        "those data effects are reported as % changes (log or Poisson scale), not as rates "
        "per 1,000.",
        "Clinical commissioning groups merged during the study period (April 2015, 2017, "
        "2018 and 2019); areas are held on a consistent footprint through a crosswalk from "
        "predecessor to successor codes.",
        "Several vanguards cover only part of a CCG; whole-CCG data dilute their effect "
        "towards zero.",
        "Governance, organisational form and partnership working are not observed in "
        "activity data; lessons about them are reported, not tested.",
        "Small counts (1-7) are suppressed in every published table.",
    ]
    if data_source == "synthetic":
        limits.insert(0, "This report is built on the embedded SYNTHETIC data: simulated "
                         "areas with effects planted by the generator. It is not real NHS "
                         "data and says nothing about the real vanguards; it shows that the "
                         "methods recover known effects.")
    return paras, limits


def build_content(run: str) -> dict:
    """Assemble the report content model of a run.

    Parameters
    ----------
    run : str
        Run name; files are read from :func:`vanguard.config.run_dir`.

    Returns
    -------
    dict
        JSON-serialisable content: banner, summary, tables, figures, lessons, methods.

    Raises
    ------
    DataError
        If the run folder, its results or a register file is missing or malformed.
    """
    run_path = config.run_dir(run)
    if not run_path.is_dir():
        raise DataError(run_path, "a run folder (run the pipeline first)", found="no such folder")
    manifest = load_manifest(run_path)
    params = manifest_parameters(manifest)
    results = load_run_results(run_path)
    data_source = run_data_source(manifest, results)
    synthetic = data_source == "synthetic"
    main = results[results["analysis"] == "main"]
    hl = choose_headline(main, params)
    head = headline_rows(main, hl)
    truth = load_truth() if synthetic else None
    truth_map = _truth_lookup(truth, hl["outcome"], hl["scale"])
    published = load_published_table1()

    tables = []
    for outcome in [hl["outcome"]] + sorted(set(main["outcome"]) - {hl["outcome"]}):
        rows = headline_rows(main, hl, outcome)
        if rows.empty:
            continue
        tables.append(main_table(rows, hl, outcome, published,
                                 _truth_lookup(truth, outcome, hl["scale"]), synthetic))

    balance = balance_table(run_path, hl["outcome"])
    if balance is not None:
        tables.append(balance)
    figures, left_out = figure_entries(run_path, hl["outcome"], sorted(set(results["outcome"])))
    ev = _evidence(results, head, hl, params, data_source)
    lessons = assess_lessons(load_lessons(), ev)
    methods, limitations = methods_section(data_source, hl, params)
    methods.insert(2, "This run's results hold the estimators "
                   + ", ".join(sorted(set(results["estimator"]) - {""}))
                   + "; inference methods " + ", ".join(
                       INFERENCE_LABELS.get(i, i) for i in sorted(set(results["inference"])))
                   + "; and the analyses " + ", ".join(sorted(set(results["analysis"]))) + ".")
    note = plots.source_note(data_source)
    banner = ("SYNTHETIC DATA - not real NHS data. Every estimate is from simulated areas "
              "and is shown beside the effect planted in the simulation." if synthetic else
              f"Data: {note.removeprefix('Source: ').rstrip('.')}.")
    return {
        "title": "Evaluation of the NHS New Care Models vanguards: difference-in-differences",
        "run": run,
        "data_source": data_source,
        "synthetic": synthetic,
        "banner": banner,
        "source_note": note,
        "git_commit": str(manifest.get("git_commit", "")),
        "headline": hl,
        "summary": executive_summary(head, hl, truth_map, synthetic),
        "tables": tables,
        "figures": figures,
        "figures_left_out": left_out,
        "lessons": lessons,
        "hoped_for_pct": ev.hoped_for_pct,
        "methods": methods,
        "limitations": limitations,
        "references": [
            MORCIANO_CITATION,
            "Published comparison figures and their sources: data/raw/published_results.csv.",
            "Lessons register and its sources: data/raw/lessons.csv.",
        ],
    }
