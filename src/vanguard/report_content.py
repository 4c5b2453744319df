"""The content model of the evaluation report, built only from a run's files.

:func:`build_content` reads ``reports/<run>/results/*.csv``, ``manifest.json``, the
tables and figures, the published estimates and the lessons register, and returns a
plain JSON-serialisable dict. The HTML and the PDF are both rendered from that one dict,
so they can never disagree. Every number is formatted from a results file; none is typed
into a template. The parts live in their own modules: key findings and main tables
(:mod:`vanguard.report_findings`), the flow of areas (:mod:`vanguard.report_flow`), the
robustness appendix (:mod:`vanguard.report_appendix`), the data and reproducibility box
(:mod:`vanguard.report_provenance`), the prose (:mod:`vanguard.report_text`, filled from
``templates/report_text.md``) and the reader-facing names (:mod:`vanguard.report_labels`).

Text that carries numbers is a list of segments ``{"t": text, "k": kind}`` with kind
``""`` (plain), ``"num"`` (a number from a results file), ``"truth"`` (a planted effect
from the synthetic truth table) or ``"count"`` (a count of areas, with its flow ``key``);
table cells that count areas are ``{"t": text, "key": flow key}``, so renderers and tests
can tell them apart and check every count against the flow of areas.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import config, plots, schema
from vanguard.errors import DataError
from vanguard.report_appendix import (
    OWN_FILES,
    SENSITIVITY_EXTRA,
    not_estimated_table,
    read_extra,
    robustness_tables,
)
from vanguard.report_figures import FIGURE_SECTIONS, figure_entries  # noqa: F401
from vanguard.report_findings import (
    PUBLISHED_OUTCOME,
    fmt,
    has_published,
    holm_adjusted,
    key_findings,
    main_table,
    percent_bases,
    published_baseline,
    verdict,
)
from vanguard.report_flow import PANEL, build_flow, count_key, flow_table
from vanguard.report_labels import INFERENCE_LABELS, in_sentence, label, plain
from vanguard.report_lessons import (
    Evidence,
    assess_lessons,
    lesson_inputs,
    load_lessons,
    site_heterogeneity,
    untested_sentence,
)
from vanguard.report_provenance import data_availability, reproducibility
from vanguard.report_text import render_text

HOPED_FOR_PCT = 3.0
"""Default hoped-for reduction in emergency admissions, in %: NHS England's July 2017
targets asked PACS vanguards for growth 3 percentage points below the rest of England
(see ``data/raw/published_results.csv``). A run overrides it with ``hoped_for_pct``."""

HEADLINE_OUTCOMES = ("emergency_admissions", "non_elective_admissions")
SCALE_PREFERENCE = ("rate", "poisson", "log", "count")
ESTIMATOR_PREFERENCE = ("twfe", "twfe_poisson", "imputation", "cs_notyet", "cs_never")
INFERENCE_PREFERENCE = ("wild_bootstrap", "randomisation", "cluster", "analytic",
                        "multiplier_bootstrap", "none")
PRETREND_PREFERENCE = ("event_study", "twfe", "imputation", "cs_notyet", "cs_never")
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

    The sensitivity and sustainability files (:data:`vanguard.report_appendix.OWN_FILES`)
    are left to the appendix, which reads them with their extra columns.

    Raises
    ------
    DataError
        If the run has no results files, or a file does not follow the schema (naming
        the file and, for a bad cell, its row and column).
    """
    files = [f for f in sorted((run_path / "results").glob("*.csv"))
             if not f.name.startswith(OWN_FILES)]
    if not files:
        raise DataError(run_path / "results", "one or more results files (*.csv)",
                        found="none")
    return schema.read_results(files)


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
        ``ci_high`` (floats, per 1,000 population per month), ``unit`` (as the file
        states it), ``source`` and ``source_url``.

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
    unit = ""
    for i, r in df.iterrows():
        # "as above" repeats the unit of the row before, as the source table does
        unit = unit if r.get("unit", "") == "as above" else r.get("unit", "")
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
                     "outcome": r["table1_outcome"], **nums, "unit": unit,
                     "source": f"{r['study']} ({r['source_url']})",
                     "source_url": r["source_url"]})
    return pd.DataFrame(rows, columns=["group", "window", "outcome", "estimate", "ci_low",
                                       "ci_high", "unit", "source", "source_url"])


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
    ``inference``) where given; otherwise emergency (or, on the Monthly Activity Return, non-elective) admissions on the
    rate scale when
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
    outcome = _pick(sorted(set(src["outcome"])), HEADLINE_OUTCOMES, params.get("outcome"))
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
    rule = (f"Headline estimates: {plots.outcome_label(outcome).lower()}, "
            f"{label('scale', scale)}, {label('estimator', estimator)}; {inf_text}; "
            f"inference {how}.")
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
# tables


def _truth_lookup(truth: pd.DataFrame | None, outcome: str, scale: str):
    if truth is None:
        return {}
    t = truth[(truth["outcome"] == outcome) & (truth["scale"] == scale)
              & (truth["site"].astype(str) == "")]
    return {(r.group, r.window): float(r.truth) for r in t.itertuples()
            if np.isfinite(r.truth)}


BALANCE_COLUMNS = ("group", "outcome", "measure", "mean_treated", "sd_treated", "n_treated",
                   "mean_control", "sd_control", "n_control", "std_diff")
MEASURE_LABELS = {"rate_per_1000": "rate per 1,000 per month", "growth_pct": "annual growth, %",
                  "population": "population", "count": "count per area per month"}


def _counted_with(group: str) -> tuple[str, ...]:
    """Panel groups whose areas count towards a site type in the balance table."""
    if group in (schema.POPULATION_BASED, schema.CARE_HOME):
        return (group, schema.BOTH)
    return (group,)


def _area_cell(value, key: str) -> dict:
    if value is None or pd.isna(value):
        return {"t": "", "key": ""}
    return {"t": str(int(float(value))), "key": key}


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
        A table of the content model (counts of areas are never suppressed and carry
        their flow keys); None when the run has no balance table.

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
    for col in ("n_treated", "n_control"):
        bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
        if bad.any():
            raise DataError(path, "a whole number of areas", row=int(np.flatnonzero(bad)[0]) + 2,
                            column=col, found=df.loc[bad, col].iloc[0])
    digits = {"population": 0}
    rows, last = [], None
    for _, r in df.iterrows():
        d = digits.get(r["measure"], 2)
        rows.append([
            schema.group_label(r["group"]) if r["group"] != last else "",
            plots.outcome_label(r["outcome"]) if r["outcome"] != "population" else "Population",
            MEASURE_LABELS.get(r["measure"], r["measure"]),
            f"{fmt(r['mean_treated'], d, thousands=True)} "
            f"({fmt(r['sd_treated'], d, thousands=True)})",
            f"{fmt(r['mean_control'], d, thousands=True)} "
            f"({fmt(r['sd_control'], d, thousands=True)})",
            fmt(r["std_diff"], 2),
            _area_cell(r["n_treated"], count_key(PANEL, *_counted_with(r["group"]))),
            _area_cell(r["n_control"], count_key(PANEL, schema.CONTROL)),
        ])
        last = r["group"]
    notes = ["Area means over the pre-period (standard deviation in brackets); a "
             "standardised difference beyond 0.25 in absolute value flags imbalance. The "
             "counts are the panel's areas of each site type, with the areas in both a "
             "population-based and a care-home site counted in each."]
    return {"title": "Pre-period balance of vanguard and control areas", "id": "balance",
            "columns": ["Site type", "Outcome", "Measure", "Vanguard areas: mean (SD)",
                        "Control areas: mean (SD)", "Standardised difference",
                        "Vanguard areas", "Control areas"],
            "rows": rows, "notes": notes}


def _evidence(results: pd.DataFrame, head: pd.DataFrame, hl: dict, params: dict,
              data_source: str, incomplete: tuple[str, ...] = (),
              run_path: Path | None = None,
              sensitivity: pd.DataFrame | None = None) -> Evidence:
    same = (results["outcome"] == hl["outcome"]) & (results["scale"] == hl["scale"])
    alternatives = results[same & results["analysis"].isin(["main", "inference"])]
    alternatives = alternatives.drop_duplicates(["group", "window", "estimator", "inference"])
    pre = results[(results["analysis"] == "pretrend") & (results["outcome"] == hl["outcome"])
                  & np.isfinite(results["p_value"].astype(float))]
    if any(n.startswith("04_event_study") for n in incomplete):
        # another estimator's test must not stand in for the event study that failed
        pre = pre[pre["estimator"] == "event_study"]
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
                    mde_pct=mde, hoped_for_pct=hoped, data_source=data_source,
                    **lesson_inputs(results, hl["outcome"], hl["scale"], run_path,
                                    sensitivity=sensitivity))


# ---------------------------------------------------------------------------
# the run's facts for the prose template


def _programme(data_source: str, params: dict, groups: list[str]) -> str:
    if params.get("programme"):
        return str(params["programme"])
    if data_source in ("synthetic", "nhs_mar"):
        return "NHS New Care Models vanguards"
    return " and ".join(label("group", g) for g in groups) or "programme"


def report_title(data_source: str, params: dict, groups: list[str]) -> str:
    """The title: the run's ``title`` parameter, else its programme's evaluation."""
    if params.get("title"):
        return str(params["title"])
    if data_source in ("synthetic", "nhs_mar"):
        return "What did the NHS New Care Models vanguards do to hospital use?"
    return f"Evaluation of {_programme(data_source, params, groups)}: difference-in-differences"


def _partial_sites() -> int:
    path = config.SITE_AREAS
    if not Path(path).is_file():
        return 0
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"site_id", "coverage"} <= set(df.columns):
        return 0
    return int(df.loc[df["coverage"] == "part", "site_id"].nunique())


def text_context(*, data_source: str, params: dict, hl: dict, head: pd.DataFrame,
                 results: pd.DataFrame, findings: dict, hoped_for_pct: float,
                 baseline: float | None, not_estimated_names: list[str]) -> dict:
    """The values the prose template (``templates/report_text.md``) may name."""
    from vanguard.mar.quality import QUALITY_THRESHOLD

    groups = schema.groups_in(head["group"])
    facts = findings["groups"]
    pretrend_failed = [{"name": label("group", g), "p": fmt(f["pretrend"]["p"])}
                       for g, f in facts.items()
                       if f["pretrend"] is not None and f["pretrend"]["p"] < 0.05]
    underpowered = [{"name": label("group", g), "mde": fmt(f["mde"]["pct"], 1),
                     "bound": f["mde"]["overstates"]} for g, f in facts.items()
                    if f["mde"] is not None and f["mde"]["pct"] > hoped_for_pct]
    few = [f"{label('group', g)}: {int(f['row']['n_treated'])}" for g, f in facts.items()
           if pd.notna(f["row"]["n_treated"]) and int(f["row"]["n_treated"]) < 10]
    others = sorted(set(results.loc[results["analysis"] == "main", "estimator"])
                    - {hl["estimator"], ""})
    controls = sorted({int(v) for v in head["n_control"].dropna()})
    nb01 = params.get("notebooks", {}).get("01_data", {}) if isinstance(
        params.get("notebooks"), dict) else {}
    quality = params.get("mar_quality", nb01.get("mar_quality", "drop"))
    mixed = params.get("mar_mixed", nb01.get("mar_mixed", "exclude"))
    def names(kind: str) -> str:
        found = [label("group", g) for g, f in facts.items() if verdict(f["row"]) == kind]
        return ", ".join(found[:-1]) + (" and " if len(found) > 1 else "") + (
            found[-1] if found else "")

    mdes = sorted(f["mde"]["pct"] for f in facts.values() if f["mde"] is not None)
    mde_range = ("" if not mdes else f"{fmt(mdes[0], 1)} %" if len(mdes) == 1
                 else f"{fmt(mdes[0], 1)} % to {fmt(mdes[-1], 1)} % (by site type)")
    return {
        "reductions": names("a clear reduction"),
        "increases": names("a clear increase"),
        "no_effect": names("no clear effect"),
        "mde_range": mde_range,
        "programme": _programme(data_source, params, groups),
        "synthetic": data_source == "synthetic",
        "real_mar": data_source == "nhs_mar",
        "outcome": in_sentence(label("outcome", hl["outcome"])),
        "outcome_cap": label("outcome", hl["outcome"]),
        "definition_differs": hl["outcome"] in PUBLISHED_OUTCOME,
        "published_study": "Morciano et al. (2020)",
        "secondary_outcomes": ", ".join(
            in_sentence(label("outcome", o))
            for o in sorted(set(results.loc[results["analysis"] == "main", "outcome"])
                            - {hl["outcome"]})),
        "scale_label": label("scale", hl["scale"]),
        "headline_estimator": label("estimator", hl["estimator"]),
        "other_estimators": (", ".join(label("estimator", e) for e in others)
                             or "no other estimators"),
        "percent_bases": percent_bases(
            hl["scale"], baseline if has_published(load_published_table1(), hl["outcome"],
                                                   groups) else None),
        "mde_power": "80 %",
        "n_not_estimated": len(not_estimated_names),
        "not_estimated_names": "; ".join(not_estimated_names) or "nothing",
        "pre_months": params.get("pre_months", 24),
        "has_uec": schema.UEC in groups,
        "n_control": " or ".join(map(str, controls)) or "n/a",
        "inference_rule": plain(hl["rule"]),
        "inference_by_group": "; ".join(
            f"{label('inference', i)} for {label('group', g)}" for g, i in
            head.drop_duplicates("group")[["group", "inference"]].itertuples(
                index=False, name=None)),
        "quality_action": "leaves the panel" if quality == "drop" else "stays in the panel "
                          "(the rule is reported, not applied)",
        "quality_threshold": f"{QUALITY_THRESHOLD:.0%}",
        "mixed_action": "left out" if mixed == "exclude" else "kept",
        "pretrend_failed": pretrend_failed,
        "underpowered": underpowered,
        "few_treated": "; ".join(few),
        "hoped_for_pct": f"{hoped_for_pct:g}",
        "n_partial": _partial_sites(),
    }


def _count_problems(content: dict, flow: pd.DataFrame) -> list[str]:
    """Counts in the content whose flow key gives another number (should be none)."""
    from vanguard.report_flow import flow_count

    problems = []

    def check(t, key):
        if key:
            want = flow_count(flow, key)
            if want is None or f"{want:,}" != t.replace(" ", ""):
                problems.append(f"{key}: shown {t}, flow {want}")

    for tbl in content["all_tables"]:
        for row in tbl["rows"]:
            for cell in row:
                if isinstance(cell, dict):
                    check(cell["t"], cell.get("key", ""))
    for para in content["findings"]["sentences"]:
        for s in para:
            check(s["t"], s.get("key", ""))
    return problems


def build_content(run: str, incomplete: tuple[str, ...] | list[str] = (),
                  results: pd.DataFrame | None = None) -> dict:
    """Assemble the report content model of a run.

    Parameters
    ----------
    run : str
        Run name; files are read from :func:`vanguard.config.run_dir`.
    incomplete : sequence of str
        Notebooks of the run that did not finish
        (:func:`vanguard.report.incomplete_notebooks`): page 1 shows what they would have
        produced as missing instead of drawing it from another analysis.
    results : pandas.DataFrame, optional
        The run's results (:func:`load_run_results`), when the caller has read them
        already; read from the run folder otherwise.

    Returns
    -------
    dict
        JSON-serialisable content: banner, key findings, tables, flow, figures, lessons,
        methods, limitations, appendix, data availability.

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
    if results is None:
        results = load_run_results(run_path)
    data_source = run_data_source(manifest, results)
    synthetic = data_source == "synthetic"
    main = results[results["analysis"] == "main"]
    hl = choose_headline(main, params)
    head = headline_rows(main, hl)
    truth = load_truth() if synthetic else None
    truth_map = _truth_lookup(truth, hl["outcome"], hl["scale"])
    published = load_published_table1()
    baseline = published_baseline(pd.read_csv(config.PUBLISHED_RESULTS, dtype=str,
                                              keep_default_na=False))
    hoped = float(params.get("hoped_for_pct", HOPED_FOR_PCT))

    findings = key_findings(head, results, hl, published, baseline, hoped, truth_map,
                            synthetic, tuple(incomplete))
    tables = []
    secondary = {o: headline_rows(main, hl, o)
                 for o in sorted(set(main["outcome"]) - {hl["outcome"]})}
    adjusted = holm_adjusted(secondary)
    for outcome in [hl["outcome"], *secondary]:
        rows = headline_rows(main, hl, outcome)
        if rows.empty:
            continue
        tables.append(main_table(rows, hl, outcome, published, baseline,
                                 _truth_lookup(truth, outcome, hl["scale"]), synthetic,
                                 adjusted if outcome in secondary else None))
    not_estimated = not_estimated_table(run_path)
    flow = build_flow(run_path, head)
    flow_tbl = flow_table(flow)
    balance = balance_table(run_path, hl["outcome"])
    # the sensitivity file feeds the appendix and the lessons: read it once for both
    sensitivity = read_extra(run_path, "sensitivity", hl["outcome"], SENSITIVITY_EXTRA)
    appendix = robustness_tables(run_path, results, hl["outcome"], data_source,
                                 sensitivity=sensitivity)
    figures, left_out = figure_entries(run_path, hl["outcome"], sorted(set(results["outcome"])))
    figures = [{**f, "alt": plain(f["alt"]), "caption": plain(f.get("caption") or f["alt"]),
                "sentence": plain(f.get("sentence") or "")} for f in figures]
    ev = _evidence(results, head, hl, params, data_source, tuple(incomplete), run_path,
                   sensitivity)
    assessed = assess_lessons(load_lessons(), ev)
    # lessons these data cannot test are one sentence under the table, not rows
    lessons = [{**lsn, "evidence_text": plain(lsn.get("evidence_text", "")),
                "prediction": plain(lsn.get("prediction", ""))}
               for lsn in assessed if lsn.get("testable", True)]
    lessons_untested = plain(untested_sentence(assessed))
    text = render_text(text_context(
        data_source=data_source, params=params, hl=hl, head=head, results=results,
        findings=findings, hoped_for_pct=hoped, baseline=baseline,
        not_estimated_names=list(dict.fromkeys(
            f"{r[0].lower()} for {r[1]}"
            for r in (not_estimated["rows"] if not_estimated else [])))))
    note = plots.source_note(data_source)
    banner = ("SYNTHETIC DATA - not real NHS data. Every estimate is from simulated areas "
              "and is shown beside the effect planted in the simulation." if synthetic else
              f"Data: {note.removeprefix('Source: ').rstrip('.')}.")
    groups = schema.groups_in(head["group"])
    content = {
        "title": report_title(data_source, params, groups),
        "subtitle": plain(str(manifest.get("description", ""))),
        "run": run,
        "data_source": data_source,
        "synthetic": synthetic,
        "banner": banner,
        "source_note": note,
        "git_commit": str(manifest.get("git_commit", "")),
        "headline": {**hl, "rule": plain(hl["rule"])},
        "findings": findings | {"groups": None},
        "text": text,
        "tables": tables,
        "not_estimated_table": not_estimated,
        "flow": flow_tbl,
        "balance": balance,
        "appendix": appendix,
        "figures": figures,
        "figures_left_out": left_out,
        "lessons": lessons,
        "lessons_untested": lessons_untested,
        "hoped_for_pct": ev.hoped_for_pct,
        "methods": [{"name": n, "text": " ".join(b["text"] for b in text[k])}
                    for n, k in (("Outcome", "outcome"), ("Estimand", "estimand"),
                                 ("Model", "model"),
                                 ("Windows", "windows"), ("Comparison areas", "controls"),
                                 ("Inference", "inference"), ("Data quality", "quality"))],
        "data_availability": data_availability(manifest, data_source, run_path),
        "reproducibility_lines": reproducibility(manifest),
        "references": [
            MORCIANO_CITATION,
            "Rambachan A, Roth J. A more credible approach to parallel trends. Review of "
            "Economic Studies 2023;90(5):2555-2591.",
            "Published comparison figures and their sources: data/raw/published_results.csv.",
            "Lessons register and its sources: data/raw/lessons.csv.",
        ],
    }
    content["findings"].pop("groups")
    content["all_tables"] = ([findings["table"]] + tables + [flow_tbl]
                             + ([balance] if balance else []) + appendix
                             + ([not_estimated] if not_estimated else []))
    problems = _count_problems(content, flow)
    if problems:
        flow_tbl["notes"].append("Counts that do not reconcile with this table: "
                                 + "; ".join(problems) + ".")
    content.pop("all_tables")
    return content
