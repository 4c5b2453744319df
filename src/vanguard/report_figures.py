"""Which figures of a run the report shows, in what order, with their alt text, a caption
and one sentence of interpretation computed from the numbers each figure draws.

Every figure is saved with its data (``figures/<name>.csv``, the results rows it draws);
the sentences are computed from those files, so a sentence and its chart cannot disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import config, plots, schema
from vanguard.errors import DataError

FIGURE_SECTIONS: tuple[tuple[str, str], ...] = (
    ("trends", "Trends before and after the start"),
    ("truth_comparison", "Estimates against the planted truth"),
    ("event_study", "Event studies by site type"),
    ("estimator_comparison", "Estimators and inference methods"),
    ("forest", "Effects by vanguard site"),
    ("mde", "Minimum detectable effect"),
)
"""Figure name prefixes, in report order, with section titles."""

SPLIT_PREFIXES: tuple[str, ...] = ("did_", "inference_")
"""Charts of one estimator or one group's inference methods: the combined
``estimator_comparison`` chart shows the same numbers, so they are left out when it
exists."""

ALPHA = 0.05
"""Significance level the sentences use (the intervals drawn are 95%)."""


def _num(x: float) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    text = f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.000"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _excludes_zero(df: pd.DataFrame) -> pd.Series:
    return (df["ci_low"] > 0) | (df["ci_high"] < 0)


def _read(path: Path) -> pd.DataFrame | None:
    """A figure's data file, or None when the figure was saved without one."""
    if not path.is_file():
        return None
    try:
        # site ids such as "5" stay text (names are looked up by id)
        return pd.read_csv(path, dtype={"site": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, "the figure's data as CSV", found=str(exc)) from exc


def _need(df: pd.DataFrame, columns: Sequence[str], path: Path) -> bool:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(path, f"columns {list(columns)}", row=1, column=missing[0],
                        found=list(df.columns))
    return True


def _outcome_of(stem: str, outcomes: Sequence[str]) -> str | None:
    hits = [o for o in outcomes if o in stem]
    return max(hits, key=len) if hits else None


def _hoped_for(run_path: Path) -> float | None:
    manifest = run_path / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        params = json.loads(manifest.read_text(encoding="utf-8")).get("parameters", {})
    except json.JSONDecodeError as exc:
        raise DataError(manifest, "JSON", found=str(exc)) from exc
    value = params.get("hoped_for_pct") if isinstance(params, dict) else None
    return float(value) if isinstance(value, int | float) else None


# --- one sentence per kind of figure --------------------------------------------------


def sentence_trends(data: pd.DataFrame, path: Path, run_path: Path) -> str:
    """Where each group's index stands in the last period drawn."""
    _need(data, ["group", "index"], path)
    time_col = "period" if "period" in data.columns else "month"
    _need(data, [time_col], path)
    last = data[data[time_col] == data[time_col].max()]
    label = (str(last["period_label"].iloc[0]) if "period_label" in last.columns
             else str(last[time_col].iloc[0])[:7])
    groups = [g for g in schema.groups_in(last["group"]) if g != schema.CONTROL]
    groups += [schema.CONTROL] if (last["group"] == schema.CONTROL).any() else []
    parts = [f"{float(last.loc[last['group'] == g, 'index'].iloc[0]):.0f} for "
             f"{'the control areas' if g == schema.CONTROL else plots.group_label(g)}"
             for g in groups]
    text = (f"In {label} the index (each group's pre-period mean = 100) stood at "
            f"{_join(parts)}")
    start = _first_start(run_path)
    ctrl = data[data["group"] == schema.CONTROL].set_index(time_col)["index"]
    if start is not None and len(ctrl) and pd.api.types.is_datetime64_any_dtype(
            pd.to_datetime(data[time_col], errors="coerce")):
        when = pd.to_datetime(data[time_col])
        pre = data[when < start]
        gaps = {g: float((pre[pre["group"] == g].set_index(time_col)["index"]
                          - ctrl).abs().max()) for g in groups if g != schema.CONTROL}
        gaps = {g: v for g, v in gaps.items() if math.isfinite(v)}
        if gaps:
            worst = max(gaps, key=gaps.get)
            text += (f"; before the start every site type stayed within "
                     f"{gaps[worst]:.1f} index points of the control areas (largest gap: "
                     f"{plots.group_label(worst)})")
    return text + "."


def _first_start(run_path: Path) -> pd.Timestamp | None:
    """The panel's first start month, when the run kept its panel."""
    panel = run_path / "data" / "panel.parquet"
    if not panel.is_file():
        return None
    start = pd.read_parquet(panel, columns=[schema.START])[schema.START].min()
    return None if pd.isna(start) else pd.Timestamp(start)


def sentence_event_study(data: pd.DataFrame, path: Path, run_path: Path) -> str:
    """Which groups fail the pre-trend test, and how robust the average effect is."""
    _need(data, ["group", "analysis"], path)
    s = plots.event_study_summary(data)
    tested = s[np.isfinite(s["pretrend_p"])]
    rejected = tested[tested["pretrend_p"] < ALPHA]
    kept = tested[tested["pretrend_p"] >= ALPHA]

    def named(rows: pd.DataFrame) -> str:
        return _join([f"{plots.group_label(r.group)} (p = {r.pretrend_p:.3f})"
                      for r in rows.itertuples()])

    if tested.empty:
        pre = "No joint pre-trend test was available"
    elif rejected.empty:
        pre = f"The joint pre-trend test does not reject parallel trends for {named(kept)}"
    elif kept.empty:
        pre = f"The joint pre-trend test rejects parallel trends for {named(rejected)}"
    else:
        pre = (f"The joint pre-trend test rejects parallel trends for {named(rejected)} "
               f"but not for {named(kept)}")
    none = s[s["honest_significant"] == 0]
    held = s[s["honest_significant"] == 1]
    parts = []
    if len(none):
        parts.append(f"for {_join([plots.group_label(g) for g in none['group']])} the "
                     "average post-period effect is not significant even under exact "
                     "parallel trends, so there is no HonestDiD breakdown value")
    for r in held.itertuples():
        if r.breakdown == 0:
            parts.append(f"for {plots.group_label(r.group)} the average effect is significant "
                         "only with no departure from parallel trends (M\u0304 = 0)")
        elif np.isfinite(r.breakdown):
            parts.append(f"for {plots.group_label(r.group)} the average effect survives "
                         f"departures from parallel trends up to M\u0304 = {r.breakdown_text}")
        else:
            parts.append(f"for {plots.group_label(r.group)} the HonestDiD breakdown value is "
                         f"{r.breakdown_text}")
    return pre + (("; " + "; ".join(parts)) if parts else "") + "."


def sentence_estimator_comparison(data: pd.DataFrame, path: Path, run_path: Path) -> str:
    """Range of the estimates over years 1-3 and how many intervals exclude zero."""
    _need(data, ["group", "window", "estimator", "inference", "estimate", "ci_low",
                 "ci_high"], path)
    win = "years_1_3" if (data["window"] == "years_1_3").any() else str(data["window"].iloc[0])
    rows = data[data["window"] == win]
    parts = []
    for g in schema.groups_in(rows["group"]):
        r = rows[rows["group"] == g]
        k = int(_excludes_zero(r).sum())
        lo, hi = _num(r["estimate"].min()), _num(r["estimate"].max())
        span = f"at {lo}" if lo == hi else f"from {lo} to {hi}"
        parts.append(f"{plots.group_label(g)} {span} ({k} of {len(r)} intervals exclude zero)")
    single = data[data["window"] != win]
    tail = ""
    if len(single):
        k = int(_excludes_zero(single).sum())
        tail = (f" In single years, {k} of {len(single)} intervals exclude zero.")
    return (f"Over {schema.WINDOW_LABELS.get(win, win).lower()}, the estimators and inference "
            f"methods put the effect of {_join(parts)}.{tail}")


def sentence_forest(data: pd.DataFrame, path: Path, run_path: Path) -> str:
    """Spread of the site effects, and whether the diamond equals their area-weighted mean."""
    _need(data, ["group", "site", "estimate", "ci_low", "ci_high"], path)
    data = data.assign(site=data["site"].fillna("").astype(str))
    source = str(data["data_source"].dropna().iloc[0]) if "data_source" in data.columns \
        and data["data_source"].notna().any() else ""
    # a run moved away from its project keeps the ids rather than failing the report
    names = plots.site_names(source, missing_ok=True)
    kind = data["analysis"] if "analysis" in data.columns else pd.Series("", index=data.index)
    parts = []
    for g in schema.groups_in(data["group"]):
        sites = data[(data["group"] == g) & (data["site"] != "")]
        head = data[(data["group"] == g) & (kind == "headline")]
        if sites.empty:
            continue
        lo = sites.loc[sites["estimate"].idxmin()]
        hi = sites.loc[sites["estimate"].idxmax()]
        k = int(_excludes_zero(sites).sum())
        text = (f"{plots.group_label(g)} sites range from {_num(lo['estimate'])} "
                f"({names.get(lo['site'], lo['site'])}) to {_num(hi['estimate'])} "
                f"({names.get(hi['site'], hi['site'])}), {k} of {len(sites)} intervals "
                "excluding zero")
        if len(head) and "n_treated" in sites.columns and sites["n_treated"].notna().all():
            w = sites["n_treated"].astype(float)
            mean = float((w * sites["estimate"]).sum() / w.sum())
            b = float(head["estimate"].iloc[0])
            same = abs(mean - b) <= 1e-6 * max(1.0, abs(b))
            text += (f"; the headline estimate ({_num(b)}) "
                     + ("equals the sites' area-weighted mean" if same else
                        f"differs from the sites' area-weighted mean ({_num(mean)}): it pools "
                        "every area of the type in one regression, and areas shared by "
                        "sites, staggered starts or missing months separate the two"))
        parts.append(text)
    return ("; ".join(parts) + ".") if parts else ""


def sentence_mde(data: pd.DataFrame, path: Path, run_path: Path) -> str:
    """The smallest detectable reduction of each group, against the hoped-for one."""
    _need(data, ["group", "param", "estimate"], path)
    kind = data["analysis"] if "analysis" in data.columns else pd.Series("power",
                                                                         index=data.index)
    rows = data[(kind == "power") & np.isfinite(data["estimate"].astype(float))]
    if rows.empty:
        return "The simulations reached no minimum detectable effect on their grid."
    use_pct = "pct" in rows.columns and rows["pct"].notna().all()
    power = 0.8 if (rows["param"] == 0.8).any() else float(rows["param"].min())
    rows = rows[rows["param"] == power]
    order = {g: i for i, g in enumerate(schema.groups_in(rows["group"]))}
    rows = rows.sort_values("group", key=lambda c: c.map(order), kind="stable")
    hoped = _hoped_for(run_path)
    parts, above = [], []
    for r in rows.itertuples():
        size = abs(float(r.pct if use_pct else r.estimate))
        parts.append(f"{size:.1f}% for {plots.group_label(r.group)}" if use_pct
                     else f"{_num(size)} for {plots.group_label(r.group)}")
        if use_pct and hoped is not None and size > abs(hoped):
            above.append(plots.group_label(r.group))
    text = (f"With {100 * power:g}% power the design detects reductions of "
            f"{_join(parts)}")
    if hoped is not None and use_pct:
        text += (f"; for {_join(above)} a reduction of the hoped-for {abs(hoped):g}% could go "
                 "undetected" if above else
                 f"; each is below the hoped-for {abs(hoped):g}%, so a null result there "
                 "is informative")
    return text + "."


def sentence_truth_comparison(data: pd.DataFrame, path: Path, run_path: Path) -> str:
    """How many intervals cover the effect planted in the synthetic data."""
    key = ["group", "window", "outcome", "scale"]
    _need(data, key + ["estimate", "ci_low", "ci_high"], path)
    truth_path = config.SYNTHETIC_DIR / "truth.csv"
    if not truth_path.is_file():
        return ""
    truth = pd.read_csv(truth_path, dtype={"site": str}, keep_default_na=False,
                        na_values=[""])
    _need(truth, key + ["truth"], truth_path)
    if "site" in truth.columns:
        truth = truth[truth["site"].isna()]
    m = data.merge(truth[key + ["truth"]], on=key, how="inner")
    if m.empty:
        return ""
    covered = int(((m["ci_low"] <= m["truth"]) & (m["truth"] <= m["ci_high"])).sum())
    return (f"{covered} of {len(m)} 95% intervals cover the effect planted in the synthetic "
            "data; about 1 in 20 missing it is what correct intervals do.")


SENTENCES: dict[str, Callable[[pd.DataFrame, Path, Path], str]] = {
    "trends": sentence_trends,
    "truth_comparison": sentence_truth_comparison,
    "event_study": sentence_event_study,
    "estimator_comparison": sentence_estimator_comparison,
    "forest": sentence_forest,
    "mde": sentence_mde,
}

CAPTIONS: dict[str, str] = {
    "trends": "{Outcome}: indexed trend by site type, with the programme start and the CCG "
              "mergers in the window marked.",
    "truth_comparison": "{Outcome}: headline estimates with 95% intervals beside the "
                        "effects planted in the synthetic data.",
    "event_study": "{Outcome}: event study of each site type against the control areas, by "
                   "time since each area's start, with the pre-trend test and the HonestDiD "
                   "breakdown value.",
    "estimator_comparison": "{Outcome}: effect by estimator and inference method, for each "
                            "site type and post-period window.",
    "forest": "{Outcome}: effect of each vanguard site over years 1-3, sorted, squares sized "
              "by weight, with each site type's headline estimate.",
    "mde": "{Outcome}: smallest reduction the design detects with the stated power, by site "
           "type, beside the hoped-for reduction.",
}


def _kind(stem: str) -> str | None:
    return next((p for p, _ in FIGURE_SECTIONS if stem.startswith(p)), None)


def figure_sentence(run_path: Path, stem: str) -> str:
    """One sentence interpreting a figure, from the data file saved with it.

    Parameters
    ----------
    run_path : pathlib.Path
    stem : str
        Figure name, e.g. ``event_study_emergency_admissions``.

    Returns
    -------
    str
        Empty when the figure is of no known kind or has no data file.

    Raises
    ------
    DataError
        If the data file is malformed.
    """
    kind = _kind(stem)
    path = run_path / "figures" / f"{stem}.csv"
    data = _read(path) if kind else None
    if kind is None or data is None or data.empty:
        return ""
    return SENTENCES[kind](data, path, run_path)


def _left_out(stems: list[str], outcome: str | None, outcomes: Sequence[str]) -> list[str]:
    others = [o for o in outcomes if o != outcome]
    out = [s for s in stems if outcome and _outcome_of(s, outcomes) in others]
    if any(s.startswith("estimator_comparison") for s in stems):
        # One chart per estimator or per group's inference methods repeats the comparison.
        out += [s for s in stems if s.startswith(SPLIT_PREFIXES) and s not in out]
    # a group's own chart when the small multiple of its outcome exists (older runs)
    out += [s for s in stems if "__" in s and s.split("__")[0] in stems and s not in out]
    return out


def figure_entries(run_path: Path, outcome: str | None = None,
                   outcomes: Sequence[str] = ()) -> tuple[list[dict], list[str]]:
    """Figures found in ``figures/``, in report order, with their alt text, caption and
    sentence of interpretation.

    Parameters
    ----------
    run_path : pathlib.Path
    outcome : str, optional
        The headline outcome: figures named after another of ``outcomes`` are left out
        of the document (and listed) to keep it readable; so are the one-estimator
        ``did_*`` and ``inference_*`` charts when the combined ``estimator_comparison*``
        chart exists, and one group's chart when the chart of all groups exists.
    outcomes : sequence of str
        Every outcome of the run.

    Returns
    -------
    (list of dict, list of str)
        Entries ``section``, ``name``, ``path`` (relative to the run), ``alt``,
        ``first_in_section``, ``caption`` and ``sentence`` (one sentence computed from
        the figure's data file; empty when there is none); and the names of the figures
        left out.

    Raises
    ------
    DataError
        If an embedded figure has no alt text, or its data file is malformed.
    """
    folder = run_path / "figures"
    pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
    left_out = _left_out([p.stem for p in pngs], outcome, list(outcomes))
    entries, used = [], set(left_out)
    for prefix, title in FIGURE_SECTIONS + (("", "Other figures"),):
        for png in pngs:
            if png.stem in used or not png.stem.startswith(prefix):
                continue
            alt_path = folder / f"{png.stem}.alt.txt"
            alt = alt_path.read_text(encoding="utf-8").strip() if alt_path.is_file() else ""
            if not alt:
                raise DataError(alt_path, "non-empty alt text for the figure",
                                found="missing or empty")
            used.add(png.stem)
            name = _outcome_of(png.stem, list(outcomes) or ([outcome] if outcome else []))
            template = CAPTIONS.get(prefix, "")
            caption = template.replace("{Outcome}: ", "")
            caption = (template.format(Outcome=plots.outcome_label(name)) if template and name
                       else caption[:1].upper() + caption[1:])
            entries.append({"section": title, "name": png.stem,
                            "path": f"figures/{png.name}", "alt": alt,
                            "first_in_section": not entries or entries[-1]["section"] != title,
                            "caption": caption,
                            "sentence": figure_sentence(run_path, png.stem)})
    return entries, left_out
