"""House-style charts of the evaluation, and the one helper that saves a figure.

Every chart function takes tidy DataFrames (the results schema of
:mod:`vanguard.schema`, or the trends table of :mod:`vanguard.descriptives`) and returns
a :class:`matplotlib.figure.Figure`; none of them writes files. :func:`save_figure`
writes the PNG, its alt text and the data behind it, so a reader can always check a
chart against numbers.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

# The backend is left to the caller: notebooks show figures inline, tests and the
# pipeline run headless (MPLBACKEND=Agg).
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.text import Text

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.io import atomic_write, write_csv, write_text
from vanguard.sites import site_names  # noqa: F401  (the charts name sites with it)

OKABE_ITO: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
)
"""Colour-blind-safe palette (Okabe & Ito 2008), the house colour cycle."""

GROUP_COLOURS: dict[str, str] = {
    schema.POPULATION_BASED: OKABE_ITO[0],
    schema.CARE_HOME: OKABE_ITO[1],
    schema.BOTH: OKABE_ITO[3],
    schema.UEC: OKABE_ITO[2],
    schema.CONTROL: "#666666",
}

DPI = 150
"""Resolution of the saved PNGs."""
A4_TEXT_WIDTH_CM = 16.0
"""Width at which the report places a figure on an A4 page (92% of the text width)."""
SAVE_PAD_IN = 0.15
"""White margin around a saved figure, in inches."""
FIG_WIDTH_IN = A4_TEXT_WIDTH_CM / 2.54 - 2 * SAVE_PAD_IN
"""Width every chart is drawn at: with its margins the PNG is 16 cm wide, so its type
prints at its nominal size when the report places it at A4 text width."""
MIN_FONT_PT = 7.0
"""Smallest type allowed once a figure is placed at :data:`A4_TEXT_WIDTH_CM`."""
SOURCE_SYNTHETIC = "Source: synthetic data (not real NHS data)."
SOURCE_NHS_MAR = "Source: NHS England Monthly Activity Return, Open Government Licence v3.0."

OUTCOME_LABELS: dict[str, str] = {
    "emergency_admissions": "Emergency admissions",
    "non_elective_admissions": "Non-elective admissions",
    "bed_days": "Bed days",
    "ae_attendances": "A&E attendances",
    "elective_total": "Elective admissions",
    "first_outpatient_attendances": "First outpatient attendances",
    "gp_referrals_made_all": "GP referrals",
}


def source_note(data_source: str) -> str:
    """Standard source note for a data source.

    Parameters
    ----------
    data_source : str
        ``synthetic``, ``nhs_mar`` or anything else (custom data).

    Returns
    -------
    str
    """
    if data_source == "synthetic":
        return SOURCE_SYNTHETIC
    if data_source == "nhs_mar":
        return SOURCE_NHS_MAR
    return f"Source: user-supplied data ({data_source})."


def outcome_label(outcome: str) -> str:
    """Readable name of an outcome column, e.g. ``Emergency admissions``."""
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " ").capitalize())


def unit_label(outcome: str, scale: str) -> str:
    """Label with units for an outcome on ``scale``.

    Parameters
    ----------
    outcome : str
    scale : str
        One of :data:`vanguard.schema.SCALES`.

    Returns
    -------
    str
        e.g. ``Emergency admissions per 1,000 population per month``.
    """
    name = outcome_label(outcome)
    return {
        "rate": f"{name} per 1,000 population per month",
        "log": f"{name}: difference in log count (log points)",
        "poisson": f"{name}: log rate ratio (Poisson)",
        "count": f"{name} per area per month (count)",
    }.get(scale, f"{name} ({scale})")


def effect_label(outcome: str, scale: str) -> str:
    """Axis label of an effect, on two lines so that it fits beside a chart."""
    label = unit_label(outcome, scale) if scale else outcome_label(outcome)
    name = outcome_label(outcome)
    rest = label[len(name):].lstrip(": ")
    return f"Effect on {name.lower()}" + (f"\n({rest})" if rest else "")


def group_label(group: str) -> str:
    """Readable name of a site group."""
    return schema.group_label(group)


def _style():
    return plt.style.context(str(config.MPL_STYLE))


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataError(what, "a pandas DataFrame", found=type(df).__name__)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(what, f"columns {list(columns)}", column=missing[0],
                        found=list(df.columns))
    if df.empty:
        raise DataError(what, "at least one row", found="an empty table")


def _finite(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    for col in columns:
        bad = ~np.isfinite(pd.to_numeric(df[col], errors="coerce").astype(float))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(what, "a finite number", row=row + 2, column=col,
                            found=df[col].iloc[row])


def _one(df: pd.DataFrame, column: str, default: str = "") -> str:
    if column not in df.columns:
        return default
    vals = df[column].dropna().unique()
    return str(vals[0]) if len(vals) == 1 else default


# ---------------------------------------------------------------------------
# saving


def _saved_width_in(fig: Figure, pad_inches: float = SAVE_PAD_IN) -> float:
    """Width of the PNG :func:`save_figure` writes (tight bounding box plus padding)."""
    bbox = fig.get_tightbbox(fig.canvas.get_renderer())
    return float(bbox.width) + 2 * pad_inches


def printed_font_sizes(fig: Figure, width_cm: float = A4_TEXT_WIDTH_CM) -> pd.DataFrame:
    """Size of every visible piece of text once the saved figure is scaled to ``width_cm``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    width_cm : float
        Width the PNG is placed at (the report uses :data:`A4_TEXT_WIDTH_CM`).

    Returns
    -------
    pandas.DataFrame
        ``text``, ``nominal_pt`` and ``printed_pt``, smallest first.
    """
    fig.canvas.draw()
    scale = (width_cm / 2.54) / _saved_width_in(fig)
    rows = [(t.get_text(), float(t.get_fontsize())) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()
            and (t.axes is None or t.axes.get_visible())]
    out = pd.DataFrame(rows, columns=["text", "nominal_pt"])
    return out.assign(printed_pt=out["nominal_pt"] * scale).sort_values(
        "printed_pt", kind="stable").reset_index(drop=True)


def save_figure(
    fig: Figure,
    name: str,
    run: str,
    *,
    alt_text: str,
    data: pd.DataFrame,
    source_note: str,
) -> Path:
    """Write a figure, its alt text and its data into ``reports/<run>/figures/``.

    Writes ``<name>.png`` (fixed dpi, no software/date metadata so that the same figure
    gives the same bytes), ``<name>.alt.txt`` and ``<name>.csv``, each atomically. The
    source note is drawn under the chart.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        File stem: letters, digits, ``_`` and ``-``.
    run : str
        Run name (see :func:`vanguard.config.run_dir`).
    alt_text : str
        Text alternative describing what the chart shows; must not be empty.
    data : pandas.DataFrame
        The numbers drawn in the chart.
    source_note : str
        Data source statement, e.g. :data:`SOURCE_SYNTHETIC`.

    Returns
    -------
    pathlib.Path
        Path of the PNG.

    Raises
    ------
    ValueError
        If ``name`` is not a plain file stem, or ``alt_text``/``source_note`` is empty.
    """
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"figure name {name!r}: expected letters, digits, '_' or '-'")
    if not alt_text or not alt_text.strip():
        raise ValueError(f"figure {name!r}: alt_text must describe the chart")
    if not source_note or not source_note.strip():
        raise ValueError(f"figure {name!r}: source_note must state the data source")
    folder = config.run_dir(run) / "figures"
    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        # the house charts: the note joins the caption in the band the layout keeps free
        _footer(fig, note=source_note.strip())
    else:
        # One note per figure even when a figure is saved twice.
        for t in list(fig.texts):
            if t.get_gid() == "source-note":
                t.remove()
        # Under everything drawn (axis labels can reach below the figure's bottom edge).
        bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
        fig.text(0.01, min(0.0, bottom) - 0.02, source_note.strip(), ha="left", va="top",
                 fontsize=7.5, color="#444444", gid="source-note")
    sizes = printed_font_sizes(fig)
    small = sizes[sizes["printed_pt"] < MIN_FONT_PT - 1e-9]
    if len(small):
        warnings.warn(f"figure {name!r}: {len(small)} text item(s) print below "
                      f"{MIN_FONT_PT:g} pt at {A4_TEXT_WIDTH_CM:g} cm wide (smallest "
                      f"{small['printed_pt'].iloc[0]:.1f} pt: {small['text'].iloc[0][:40]!r})",
                      stacklevel=2)
    png = folder / f"{name}.png"
    # Explicit: the style's savefig settings are not active outside the chart functions.
    atomic_write(png, lambda p: fig.savefig(p, format="png", dpi=DPI, bbox_inches="tight",
                                            pad_inches=SAVE_PAD_IN, facecolor="white",
                                            metadata={"Software": None}))
    write_text(folder / f"{name}.alt.txt", alt_text.strip() + "\n")
    write_csv(folder / f"{name}.csv", pd.DataFrame(data), float_format="%.10g")
    return png


# ---------------------------------------------------------------------------
# reading the results files


def event_study_summary(es: pd.DataFrame) -> pd.DataFrame:
    """Pre-trend p-value and HonestDiD breakdown value of each group's event study.

    The breakdown value is the largest relative-magnitude bound ``Mbar`` of the reported
    grid up to which the robust 95% interval of the average post-period effect still
    excludes zero (every smaller ``Mbar`` of the grid too): post-period violations of
    parallel trends up to ``Mbar`` times the largest pre-period one would not overturn
    the conclusion.

    Parameters
    ----------
    es : pandas.DataFrame
        Rows of ``results/event_study__<outcome>__<group>.csv``: ``analysis`` is
        ``pretrend`` (``p_value``) or ``honestdid`` (``param`` = ``Mbar``, empty for the
        interval under exact parallel trends; ``ci_low``, ``ci_high``); other rows are
        ignored.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``group``, ``pretrend_p`` (NaN when not tested) and
        ``pretrend_text`` (``p = 0.022`` or ``not available``), ``breakdown`` (NaN when there is none), ``breakdown_text`` (plain words) and
        ``honest_significant`` (whether the interval under parallel trends excludes 0;
        NaN without HonestDiD rows).
    """
    _require(es, ["group", "analysis"], "event-study results")
    rows = []
    for group in schema.groups_in(es["group"]):
        g = es[es["group"] == group]
        pre = g[g["analysis"] == "pretrend"]
        p = float(pre["p_value"].iloc[0]) if len(pre) and "p_value" in pre else math.nan
        honest = g[g["analysis"] == "honestdid"]
        breakdown, significant = math.nan, math.nan
        if honest.empty:
            text = "not computed"
        else:
            excludes = (honest["ci_low"] > 0) | (honest["ci_high"] < 0)
            base = honest[honest["param"].isna()]
            grid = honest[honest["param"].notna()].assign(ex=excludes).sort_values("param")
            significant = float(bool(excludes[base.index].all())) if len(base) else math.nan
            if len(base) and not significant:
                text = "none (the interval includes 0 even under parallel trends)"
            elif grid.empty:
                text = "not computed"
            elif not grid["ex"].iloc[0]:
                text = f"below {grid['param'].iloc[0]:g} (no bound of the grid holds)"
            else:
                holds = grid["ex"].to_numpy().cumprod().astype(bool)
                breakdown = float(grid["param"].to_numpy()[holds][-1])
                text = (f"at least {breakdown:g} (every bound of the grid holds)" if holds.all()
                        else f"{breakdown:g}")
        rows.append(dict(group=group, pretrend_p=p,
                         pretrend_text=f"p = {p:.3f}" if np.isfinite(p) else "not available",
                         breakdown=breakdown, breakdown_text=text,
                         honest_significant=significant))
    return pd.DataFrame(rows, columns=["group", "pretrend_p", "pretrend_text", "breakdown",
                                       "breakdown_text", "honest_significant"])


def merger_events(crosswalk: pd.DataFrame, within: tuple | None = None) -> pd.DataFrame:
    """Months in which CCGs merged or changed boundaries, for marking on a trend chart.

    Parameters
    ----------
    crosswalk : pandas.DataFrame
        :func:`vanguard.mar.crosswalk.read_crosswalk`: ``successor_code``, ``effective``,
        ``kind`` (``merger`` or ``boundary``).
    within : (month, month), optional
        Keep only the events in this period (both ends included), e.g. the panel's.

    Returns
    -------
    pandas.DataFrame
        One row per month: ``month`` (Timestamp) and ``label``, e.g.
        ``Apr 2017: 5 CCGs merged into 1; a boundary change``.
    """
    _require(crosswalk, ["successor_code", "effective", "kind"], "CCG crosswalk")
    rows = []
    for month, g in crosswalk.groupby(pd.to_datetime(crosswalk["effective"]), sort=True):
        merged = g[g["kind"] == "merger"]
        parts = []
        if len(merged):
            parts.append(f"{len(merged)} CCGs merged into {merged['successor_code'].nunique()}")
        n_boundary = int((g["kind"] == "boundary").sum())
        if n_boundary:
            parts.append("a boundary change" if n_boundary == 1
                         else f"{n_boundary} boundary changes")
        rows.append(dict(month=pd.Timestamp(month), label=f"{month:%b %Y}: " + "; ".join(parts)))
    out = pd.DataFrame(rows, columns=["month", "label"])
    if within is not None:
        lo, hi = (pd.Timestamp(x) for x in within)
        out = out[out["month"].between(lo, hi)].reset_index(drop=True)
    return out


def headline_twfe(variants: pd.DataFrame, inference: str = "auto",
                  window: str = "years_1_3") -> pd.DataFrame:
    """The headline two-way fixed-effects row of a group among its inference variants.

    The headline uses the inference method the run asked for, or with ``auto`` the one
    the headline rule gives for the group's number of treated areas
    (:func:`vanguard.did.inference.headline_inference`).

    Parameters
    ----------
    variants : pandas.DataFrame
        ``results/inference__<outcome>__<group>.csv`` rows (one group).
    inference : str
        The run's ``inference`` parameter.
    window : str

    Returns
    -------
    pandas.DataFrame
        The matching row (empty when the method is not among the variants).
    """
    from vanguard.did.inference import headline_inference

    _require(variants, ["group", "window", "inference", "estimate", "n_treated"],
             "inference variants")
    rows = variants[variants["window"] == window]
    out = []
    for _, g in rows.groupby("group", sort=False):
        method = (headline_inference(int(g["n_treated"].iloc[0]))[0] if inference == "auto"
                  else inference)
        out.append(g[g["inference"] == method].head(1))
    return pd.concat(out, ignore_index=True) if out else rows.iloc[:0]


# ---------------------------------------------------------------------------
# charts

_TIME_COLUMNS = ("month", "period", "date", "quarter")
_VALUE_COLUMNS = ("index", "indexed", "value")


def _year_bands(ax, max_rel: float, per_year: int | None, label: bool = True) -> None:
    """Shade each post-period year (alternating greys) from just before event time 0."""
    if per_year is None:
        ax.axvspan(-0.5, max_rel + 0.5, color="#EEEEEE", zorder=0, gid="post")
        return
    n_years = max(1, math.ceil((max_rel + 1) / per_year))
    for k in range(n_years):
        lo, hi = k * per_year - 0.5, min((k + 1) * per_year, max_rel + 1) - 0.5
        ax.axvspan(lo, hi, color="#E8E8E8" if k % 2 == 0 else "#F4F4F4", zorder=0,
                   gid=f"year-{k + 1}")
        if label and hi - lo >= per_year / 2:
            ax.text((lo + hi) / 2, 0.98, f"Year {k + 1}", transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=7.2, color="#555555")


def plot_trends(trends: pd.DataFrame, first_start: pd.Timestamp | str | None = None,
                events: pd.DataFrame | None = None) -> Figure:
    """Indexed trends of an outcome, one line per site type, with the programme start and
    the CCG mergers marked.

    Parameters
    ----------
    trends : pandas.DataFrame
        Tidy group x period table: ``group``, a time column (``month`` or ``period``),
        and an index column (``index`` or ``value``; pre-period mean = 100). An
        ``outcome`` column, when constant, names the outcome in the title.
    first_start : month, optional
        The programme's earliest start, marked with a dashed line (the panel's own, so a
        user's programme is not marked with the vanguards' April 2015).
    events : pandas.DataFrame, optional
        ``month`` and ``label`` of boundary events to mark with dotted lines, e.g.
        :func:`merger_events`; those outside the plotted period are not drawn.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If the group, time or value column is missing, or the table is empty.
    """
    time_col = next((c for c in _TIME_COLUMNS if c in trends.columns), None)
    value_col = next((c for c in _VALUE_COLUMNS if c in trends.columns), None)
    _require(trends, ["group", time_col or "month", value_col or "index"], "trends table")
    outcome = _one(trends, "outcome", "Outcome")
    dated = pd.api.types.is_datetime64_any_dtype(trends[time_col])
    with _style():
        fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, 3.4), layout="constrained")
        order = [g for g in schema.groups_in(trends["group"]) if g != schema.CONTROL]
        order += [schema.CONTROL] if (trends["group"] == schema.CONTROL).any() else []
        for group in order:
            g = trends[trends["group"] == group].sort_values(time_col)
            ax.plot(g[time_col], g[value_col], label=group_label(group),
                    color=GROUP_COLOURS.get(group), gid=f"trend-{group}",
                    linewidth=1.2 if group == schema.CONTROL else 1.5)
        ax.axhline(100, color="#444444", linewidth=0.7, linestyle=":")
        marks = []
        if first_start is not None and dated:
            first_start = pd.Timestamp(first_start)
            ax.axvline(first_start, color="#222222", linewidth=1.0, linestyle="--",
                       gid="first-start")
            marks.append((first_start, f"Start\n{first_start:%b %Y}"))
        if events is not None and len(events) and dated:
            lo, hi = trends[time_col].min(), trends[time_col].max()
            for ev in events.itertuples(index=False):
                month = pd.Timestamp(ev.month)
                if not lo <= month <= hi:
                    continue
                ax.axvline(month, color="#777777", linewidth=0.9, linestyle=":",
                           gid=f"merger-{month:%Y-%m}")
                marks.append((month, f"CCG mergers\n{month:%b %Y}"))
        for month, text in marks:
            same = [t for m, t in marks if m == month]
            if text != same[0]:
                continue  # one label per month (the programme start and a merger wave)
            label = same[0] if len(same) == 1 else f"Start and CCG\nmergers {month:%b %Y}"
            # text positions are not unit-converted: dates as matplotlib day numbers
            ax.text(mdates.date2num(month), 1.01, label, transform=ax.get_xaxis_transform(),
                    ha="center",
                    va="bottom", fontsize=7.2, color="#333333", gid=f"mark-{month:%Y-%m}")
        ax.set_title(f"{outcome_label(outcome)}: indexed trend by site type", pad=24)
        ax.set_xlabel("Month" if time_col == "month" else "Period start")
        ax.set_ylabel("Index (pre-period mean = 100)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(2, len(order)),
                  fontsize=7.5)
    return fig


def _unit_of(es: pd.DataFrame) -> str | None:
    if "note" not in es.columns:
        return None
    for note in es["note"].dropna().astype(str):
        for unit in ("quarter", "month"):
            if f"({unit}s)" in note:
                return unit
    return None


def _binned_ends(coefs: pd.DataFrame) -> dict[int, str]:
    """Event times whose coefficient pools every earlier (<=) or later (>=) period."""
    out = {}
    if "note" not in coefs.columns:
        return out
    for r in coefs[coefs["note"].astype(str).str.contains("binned", na=False)].itertuples():
        out[int(r.rel_time)] = "\u2264" if "<=" in str(r.note) else "\u2265"
    return out


def _tick(t: int, binned: dict[int, str]) -> str:
    return f"{binned.get(t, '')}{t}".replace("-", "\u2212")


def plot_event_study(
    es: pd.DataFrame,
    pretrend_p: float | dict | None = None,
    unit: str | None = None,
) -> Figure:
    """Event studies as small multiples: one panel per site group on a shared y axis.

    Each panel shows the coefficients with 95% intervals by time since the area's start,
    the post-period years shaded, and prints the joint pre-trend test p-value and the
    HonestDiD breakdown value (:func:`event_study_summary`).

    Parameters
    ----------
    es : pandas.DataFrame
        Results rows of one outcome: ``analysis == "event_study"`` rows with
        ``rel_time``, ``estimate``, ``ci_low``, ``ci_high``, ``group`` (others, such as
        the ``pretrend`` and ``honestdid`` rows of the same file, feed the panel text);
        a table without an ``analysis`` column is all coefficients.
    pretrend_p : float or dict, optional
        Pre-trend p-value (one group) or ``{group: p}``; overrides the ``pretrend`` rows.
    unit : {"month", "quarter"}, optional
        Unit of ``rel_time``; read off the binned-end notes when not given. Years are
        shaded only when it is known.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If required columns are missing or ``rel_time``/``estimate`` are not finite.
    """
    _require(es, ["rel_time", "estimate", "ci_low", "ci_high"], "event-study results")
    es = es.assign(group=es["group"] if "group" in es.columns else "all")
    coefs = es[es["analysis"] == "event_study"] if "analysis" in es.columns else es
    coefs = coefs[coefs["rel_time"].notna()] if "analysis" in es.columns else coefs
    _require(coefs, ["rel_time", "estimate"], "event-study results")
    _finite(coefs, ["rel_time", "estimate"], "event-study results")
    summary = (event_study_summary(es) if "analysis" in es.columns
               else pd.DataFrame({"group": schema.groups_in(coefs["group"])}))
    summary = summary.set_index("group")
    if pretrend_p is not None:
        given = pretrend_p if isinstance(pretrend_p, dict) else {
            g: pretrend_p for g in summary.index}
        summary["pretrend_p"] = pd.Series({g: float(p) if p is not None else math.nan
                                           for g, p in given.items()})
    unit = unit or _unit_of(coefs)
    per_year = {"quarter": 4, "month": 12}.get(unit or "")
    outcome = _one(coefs, "outcome", "outcome")
    scale = _one(coefs, "scale", "")
    groups = schema.groups_in(coefs["group"])
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    max_rel = float(coefs["rel_time"].max())
    min_rel = float(coefs["rel_time"].min())
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(FIG_WIDTH_IN, 2.3 * nrows + 0.9),
                                 sharey=True, sharex=True, squeeze=False, layout="constrained")
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        for ax, group in zip(axes.flat, groups, strict=False):
            g = coefs[coefs["group"] == group].sort_values("rel_time")
            colour = GROUP_COLOURS.get(group, OKABE_ITO[groups.index(group) % 8])
            _year_bands(ax, max_rel, per_year)
            ax.axhline(0, color="#333333", linewidth=0.8)
            x = g["rel_time"].to_numpy(float)
            ax.vlines(x, g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float),
                      color=colour, linewidth=1.0, gid=f"ci-{group}")
            ax.plot(x, g["estimate"].to_numpy(float), marker="o", markersize=3.2,
                    linestyle="-", linewidth=0.7, color=colour, gid=f"es-{group}")
            ref = (g["ci_low"].isna() & (g["estimate"] == 0)).to_numpy()
            ref_x = x[ref] if ref.any() else ([] if (x == -1).any() else [-1.0])
            if len(ref_x):
                # the omitted reference period is zero by construction; shown hollow
                ax.plot(ref_x, np.zeros(len(ref_x)), marker="o", markersize=3.6,
                        markerfacecolor="white", color="#333333", linestyle="none",
                        gid=f"ref-{group}")
            s = summary.loc[group] if group in summary.index else pd.Series(dtype=object)
            p = s.get("pretrend_p", math.nan)
            lines = [f"Pre-trend test p = {p:.3f}" if p is not None and np.isfinite(p)
                     else "Pre-trend test: not available"]
            if isinstance(s.get("breakdown_text"), str):
                short = s["breakdown_text"].split(" (")[0]
                lines.append(f"HonestDiD breakdown M\u0304: {short}")
            ax.text(0.0, 1.02, "\n".join(lines), transform=ax.transAxes, ha="left",
                    va="bottom", fontsize=7.2, color="#222222", gid=f"stats-{group}")
            ax.set_title("\n".join(textwrap.wrap(group_label(group), 24 if ncols > 2 else 40)),
                         fontsize=8, pad=24)
            ax.grid(axis="y", visible=True)
            ax.set_xlim(min_rel - 0.7, max_rel + 0.7)
        for ax in axes[:, 0]:
            ax.set_ylabel(effect_label(outcome, scale), fontsize=7.5)
        step = per_year or max(1, math.ceil((max_rel - min_rel) / 8))
        binned = _binned_ends(coefs)
        # ticks at whole years, and at the binned ends (no year tick crowding them)
        ticks = [t for t in range(int(min_rel), int(max_rel) + 1) if t % step == 0
                 and all(abs(t - b) > step / 3 for b in binned)]
        ticks = sorted(set(ticks) | set(binned))
        for ax in axes.flat[:len(groups)]:
            ax.set_xticks(ticks, [_tick(t, binned) for t in ticks])
            ax.tick_params(labelbottom=True)
            ax.set_xlabel(f"{unit.capitalize()}s since the area's start" if unit
                          else "Periods since the area's start", fontsize=8)
        period = unit or "period"
        _figure_caption(fig, f"Points: difference from the {period} before the start (hollow, "
                        f"set to 0); 0 = the first {period} of the programme; bars: 95% "
                        "intervals; shading: years 1, 2, 3 after the start; end points pool "
                        f"all earlier or later {period}s. Breakdown M\u0304: the largest "
                        "post-period departure from parallel trends, as a multiple of the "
                        "largest pre-period one, under which the average effect stays "
                        "significant (none: not significant even under parallel trends).")
    return fig


ESTIMATOR_LABELS: dict[str, str] = {
    "twfe": "Two-way fixed effects",
    "twfe_poisson": "Poisson fixed effects",
    "cs_never": "Callaway-Sant'Anna (never-treated)",
    "cs_notyet": "Callaway-Sant'Anna (not-yet-treated)",
    "imputation": "Imputation (Borusyak et al.)",
    "event_study": "Event study",
}
"""Plain-language names of the estimators (:data:`vanguard.did.fit.ESTIMATORS`)."""

INFERENCE_LABELS: dict[str, str] = {
    "cluster": "cluster-robust errors",
    "wild_bootstrap": "wild cluster bootstrap",
    "randomisation": "randomisation inference",
    "analytic": "analytic errors",
    "analytic_t": "analytic errors, t interval",
    "multiplier_bootstrap": "multiplier bootstrap",
    "conley_taber": "placebo-based interval",
    "none": "no interval",
}
"""Plain-language names of the inference methods."""


def method_label(estimator: str, inference: str) -> str:
    """Plain-language name of an estimator with its inference method, on two lines."""
    return (f"{ESTIMATOR_LABELS.get(estimator, estimator.replace('_', ' '))}\n"
            f"{INFERENCE_LABELS.get(inference, inference.replace('_', ' '))}")


def plot_estimator_comparison(results: pd.DataFrame) -> Figure:
    """Estimates of every estimator and inference method, for each group and window.

    Parameters
    ----------
    results : pandas.DataFrame
        Results rows with ``group``, ``window``, ``estimator``, ``inference``,
        ``estimate``, ``ci_low``, ``ci_high`` (one outcome and scale).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per group (sharing the rows); one row per estimator x inference,
        labelled in plain words, one marker per window.

    Raises
    ------
    DataError
        If required columns are missing or an estimate is not finite.
    """
    cols = ["group", "window", "estimator", "inference", "estimate", "ci_low", "ci_high"]
    _require(results, cols, "estimator comparison results")
    _finite(results, ["estimate"], "estimator comparison results")
    outcome = _one(results, "outcome", "outcome")
    scale = _one(results, "scale", "")
    groups = schema.groups_in(results["group"])
    windows = [w for w in schema.WINDOWS if w in set(results["window"])] + sorted(
        set(results["window"]) - set(schema.WINDOWS))
    order = {e: i for i, e in enumerate(ESTIMATOR_LABELS)}
    # An estimator with one inference method per group (the headline rule may pick a
    # different one for each) gets one row; one with several (the inference variants of
    # two-way fixed effects) gets a row per method.
    per_group = results.groupby(["estimator", "group"])["inference"].nunique()
    single = {e for e in set(results["estimator"]) if (per_group.loc[e] == 1).all()}

    def row_of(est: str, inf: str) -> tuple[str, str]:
        return (est, "") if est in single else (est, inf)

    methods = sorted({row_of(e, i) for e, i in
                      results[["estimator", "inference"]].to_numpy().tolist()},
                     key=lambda m: (order.get(m[0], len(order)), m[0], m[1]))

    def row_label(est: str, inf: str) -> str:
        infs = [inf] if inf else sorted(set(results.loc[results["estimator"] == est,
                                                        "inference"]))
        if set(infs) == {"analytic", "analytic_t"}:
            # the headline rule's t interval for groups with few treated areas
            return method_label(est, "analytic errors (t interval if few areas)")
        return method_label(est, " or ".join(INFERENCE_LABELS.get(i, i) for i in infs))

    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    dodge = 0.62 / max(1, len(windows))
    with _style():
        fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharey=True, figsize=(
            FIG_WIDTH_IN, nrows * (0.42 * len(methods) + 0.9) + 0.7), layout="constrained")
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        for ax, group in zip(axes.flat, groups, strict=False):
            ax.axvline(0, color="#333333", linewidth=0.8)
            for wi, window in enumerate(windows):
                for mi, (est, inf) in enumerate(methods):
                    r = results[(results["group"] == group) & (results["window"] == window)
                                & (results["estimator"] == est)
                                & ((results["inference"] == inf) if inf else True)]
                    if r.empty:
                        continue
                    r = r.iloc[0]
                    inf = r["inference"]
                    yy = -mi - (wi - (len(windows) - 1) / 2) * dodge
                    colour = OKABE_ITO[wi % len(OKABE_ITO)]
                    ax.hlines(yy, r["ci_low"], r["ci_high"], color=colour, linewidth=1.0)
                    ax.plot([r["estimate"]], [yy], marker="o", markersize=3.5, color=colour,
                            linestyle="none",
                            label=schema.WINDOW_LABELS.get(window, window),
                            gid=f"cmp-{group}-{window}-{est}-{inf}")
            ax.set_title("\n".join(textwrap.wrap(group_label(group),
                                                 {1: 60, 2: 22}.get(ncols, 17))),
                         fontsize=8)
            ax.grid(axis="y", visible=False)
            ax.grid(axis="x", visible=True)
            ax.set_ylim(-len(methods) + 0.45, 0.55)
            ax.tick_params(axis="x", labelsize=7.5)
        bottom = [ax for ax in axes[-1] if ax.get_visible()]
        # with three narrow panels, one label under the middle one (the units are shared)
        for ax in (bottom if len(bottom) < 3 else bottom[len(bottom) // 2:][:1]):
            ax.set_xlabel(effect_label(outcome, scale), fontsize=7.5)
        axes[0][0].set_yticks([-i for i in range(len(methods))],
                              [row_label(e, i) for e, i in methods], fontsize=7.5)
        handles, labels = {}, []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(lab, h)
        labels = [schema.WINDOW_LABELS.get(w, w) for w in windows
                  if schema.WINDOW_LABELS.get(w, w) in handles]
        legend = fig.legend([handles[lab] for lab in labels], labels, loc="lower center",
                            ncol=len(labels), fontsize=7.5, title="Post-period window",
                            title_fontsize=7.5)
        legend.set_gid("footer-legend")
        legend.set_in_layout(False)
        _footer(fig)
        fig.suptitle(f"{outcome_label(outcome)}: effect by estimator and inference method",
                     x=0.01, ha="left", fontsize=9)
    return fig


def _pooled(g: pd.DataFrame) -> tuple[float, float, float] | None:
    se = g["se"].to_numpy(float)
    est = g["estimate"].to_numpy(float)
    ok = np.isfinite(se) & (se > 0) & np.isfinite(est)
    if not ok.any():
        return None
    w = 1.0 / se[ok] ** 2
    b = float(np.sum(w * est[ok]) / np.sum(w))
    s = float(1.0 / math.sqrt(np.sum(w)))
    return b, b - 1.959963984540054 * s, b + 1.959963984540054 * s


def inverse_variance_weights(per_site: pd.DataFrame) -> pd.Series:
    """Each site's inverse-variance weight ``1 / se^2`` as a share of its group's total.

    Sites without a usable standard error get NaN (and no share of the total).

    Parameters
    ----------
    per_site : pandas.DataFrame
        Results rows with ``group``, ``se``.

    Returns
    -------
    pandas.Series
        Aligned with ``per_site``; sums to 1 within each group.
    """
    _require(per_site, ["group", "se"], "per-site results")
    se = pd.to_numeric(per_site["se"], errors="coerce").astype(float)
    w = (1.0 / se**2).where(np.isfinite(se) & (se > 0))
    return w / w.groupby(per_site["group"]).transform("sum")


def _short(text: str, n: int = 42) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "\u2026"


def plot_forest(per_site: pd.DataFrame, names: dict[str, str] | None = None,
                pooled: pd.DataFrame | None = None) -> Figure:
    """Per-site effects with 95% intervals, by site type, sorted by estimate, with squares
    sized by inverse-variance weight and the pooled estimate of each type.

    Parameters
    ----------
    per_site : pandas.DataFrame
        Results rows with ``group``, ``site``, ``estimate``, ``ci_low``, ``ci_high``
        (and ``se`` for the weights). Rows with an empty ``site`` are a pooled estimate
        of their group.
    names : dict, optional
        Site id -> name (:func:`site_names`); sites without a name keep their id.
    pooled : pandas.DataFrame, optional
        The headline estimate of each group (``group``, ``estimate``, ``ci_low``,
        ``ci_high``, e.g. :func:`headline_twfe`), drawn as the diamond. Without it (and
        without empty-``site`` rows) the diamond is the inverse-variance weighted mean of
        the sites, and the caption says that it is not the headline estimate.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If required columns are missing or an estimate is not finite.
    """
    _require(per_site, ["group", "site", "estimate", "ci_low", "ci_high"], "per-site results")
    _finite(per_site, ["estimate"], "per-site results")
    names = names or {}
    outcome = _one(per_site, "outcome", "outcome")
    scale = _one(per_site, "scale", "")
    df = per_site.assign(site=per_site["site"].fillna("").astype(str))
    weights = (inverse_variance_weights(df) if "se" in df.columns
               else pd.Series(np.nan, index=df.index))
    df = df.assign(weight=weights)
    rows = []  # (kind, group, label, est, lo, hi, weight); kind: header|site|pooled
    kinds = set()
    for group in schema.groups_in(df["group"]):
        g = df[df["group"] == group]
        sites = g[g["site"] != ""].sort_values(["estimate", "site"])
        rows.append(("header", group, group_label(group), *[math.nan] * 4))
        for r in sites.itertuples(index=False):
            rows.append(("site", group, _short(names.get(r.site, r.site)), r.estimate,
                         r.ci_low, r.ci_high, r.weight))
        given = (pooled[pooled["group"] == group] if pooled is not None
                 and len(pooled) else g.iloc[:0])
        own = g[g["site"] == ""]
        if len(given):
            r = given.iloc[0]
            rows.append(("pooled", group, "Headline estimate, all sites", r["estimate"],
                         r["ci_low"], r["ci_high"], math.nan))
            kinds.add("headline")
        elif len(own):
            r = own.iloc[0]
            rows.append(("pooled", group, "Pooled estimate", r["estimate"], r["ci_low"],
                         r["ci_high"], math.nan))
            kinds.add("given")
        elif "se" in g.columns and (p := _pooled(sites)) is not None:
            rows.append(("pooled", group, "Pooled (inverse-variance)", *p, math.nan))
            kinds.add("iv")
    # at most about 21 cm tall, so that the chart and its caption fit one A4 page
    pitch = min(0.2, 6.9 / max(1, len(rows)))
    with _style():
        fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, pitch * len(rows) + 1.5),
                               layout="constrained")
        ys, labels, bold = [], [], []
        for y, (kind, group, label, est, lo, hi, _w) in enumerate(rows):
            y = -float(y)
            colour = GROUP_COLOURS.get(group, OKABE_ITO[0])
            ys.append(y)
            labels.append(label)
            bold.append(kind != "site")
            if kind == "header":
                continue
            ax.hlines(y, lo, hi, color=colour, linewidth=1.3 if kind == "pooled" else 0.9)
            if kind == "pooled":
                ax.plot([est], [y], marker="D", markersize=6, color=colour, linestyle="none",
                        gid=f"pooled-{group}")
        for group in schema.groups_in(df["group"]):
            pts = [(ys[i], r) for i, r in enumerate(rows) if r[0] == "site" and r[1] == group]
            if not pts:
                continue
            w = np.array([r[6] for _, r in pts], float)
            # marker area proportional to the weight; sites without one get the smallest
            size = np.where(np.isfinite(w), 8 + 110 * w / np.nanmax(np.r_[w, 1e-12]), 8)
            ax.scatter([r[3] for _, r in pts], [y for y, _ in pts], s=size, marker="s",
                       color=GROUP_COLOURS.get(group, OKABE_ITO[0]), zorder=3,
                       gid=f"sites-{group}")
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_yticks(ys, labels, fontsize=7.5)
        for tick, is_bold in zip(ax.get_yticklabels(), bold, strict=True):
            if is_bold:
                tick.set_fontweight("bold")
        ax.set_ylim(min(ys) - 0.7, 0.7)
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", visible=True)
        ax.set_xlabel(effect_label(outcome, scale), fontsize=8)
        caption = ("Squares: each site's own effect (area proportional to its inverse-variance "
                   "weight in its site type); bars: 95% intervals; diamonds: ")
        parts = []
        if "headline" in kinds:
            parts.append("the headline estimate for all the type's areas together")
        if "given" in kinds:
            parts.append("the pooled estimate of the analysis")
        if "iv" in kinds:
            parts.append("the inverse-variance weighted mean of the sites, which is not the "
                         "headline estimate (that weights every area equally)")
        caption += "; ".join(parts) + "."
        fig.suptitle(f"{outcome_label(outcome)}: effect by vanguard site, years 1-3", x=0.01,
                     ha="left", fontsize=9)
        _figure_caption(fig, caption)
    return fig


def _figure_caption(fig: Figure, text: str) -> None:
    """A reading guide under the chart; :func:`_footer` keeps the space it needs free."""
    _footer(fig, caption=text)


def _footer(fig: Figure, caption: str | None = None, note: str | None = None) -> None:
    """Lay out the caption and the source note under a constrained-layout chart.

    Both are wrapped to the figure width and stacked from the bottom edge; the layout
    engine keeps that band free, so nothing overlaps and nothing reaches past the
    figure's width.
    """
    for t in list(fig.texts):
        if t.get_gid() in ("caption", "source-note"):
            if caption is None and t.get_gid() == "caption":
                caption = " ".join(t.get_text().split())
            t.remove()
    height = fig.get_figheight()
    y_in = 0.02
    for text, gid, size in ((note, "source-note", 7.5), (caption, "caption", 7.2)):
        if not text:
            continue
        # about 0.55 em a character in DejaVu Sans
        lines = textwrap.wrap(text, int(fig.get_figwidth() * 72 / (0.55 * size)))
        fig.text(0.005, y_in / height, "\n".join(lines), fontsize=size, color="#444444",
                 ha="left", va="bottom", gid=gid)
        y_in += len(lines) * 1.22 * size / 72 + 0.05
    for leg in fig.legends:
        if leg.get_gid() == "footer-legend":
            leg.set_bbox_to_anchor((0.5, y_in / height), transform=fig.transFigure)
            extent = leg.get_window_extent(fig.canvas.get_renderer())
            y_in += extent.height / fig.dpi + 0.03
    fig.get_layout_engine().set(rect=(0, y_in / height, 1, 1 - y_in / height))


def plot_mde(power: pd.DataFrame, hoped_for_pct: float | None = None) -> Figure:
    """Minimum detectable effect of every group in one small chart, beside the hoped-for
    effect.

    One row per group (and window): the minimum detectable reduction at each reported
    power, as a % of the pre-period mean when every row has one (else on the analysis
    scale). ``analysis == "power_curve"`` rows (the detection share of planted effects)
    are checked but not drawn: they stay in the figure's data file.

    Parameters
    ----------
    power : pandas.DataFrame
        Results rows of :mod:`vanguard.did.power` for one outcome and scale:
        ``analysis == "power"`` (or no ``analysis`` column) rows with ``param`` = the
        power (e.g. 0.8) and ``estimate`` = the minimum detectable effect (``pct`` as %).
    hoped_for_pct : float, optional
        Size of the reduction the programme hoped for, in %; drawn as a vertical line
        (only on the % axis).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If required columns are missing, or a power or detection share is outside
        [0, 1] (MDE rows: strictly inside).
    """
    _require(power, ["group", "window", "param", "estimate"], "power results")
    kind = power["analysis"] if "analysis" in power.columns else pd.Series("power",
                                                                           index=power.index)
    mde = power[kind != "power_curve"]
    curve = power[kind == "power_curve"]
    _finite(mde, ["param"], "power results")
    _finite(curve, ["param", "estimate"], "power results")
    bad = (mde["param"] <= 0) | (mde["param"] >= 1)
    bad_c = (curve["estimate"] < 0) | (curve["estimate"] > 1)
    for frame, mask, col in ((mde, bad, "param"), (curve, bad_c, "estimate")):
        if mask.any():
            row = int(power.index.get_loc(mask[mask].index[0]))
            raise DataError("power results", "a power (probability) between 0 and 1",
                            row=row + 2, column=col, found=frame.loc[mask, col].iloc[0])
    unreached = mde[~np.isfinite(mde["estimate"].astype(float))]
    if len(unreached):
        warnings.warn(f"power results: {len(unreached)} minimum detectable effect(s) not "
                      "reached on the simulation grid (NaN) are not drawn", stacklevel=2)
        mde = mde[np.isfinite(mde["estimate"].astype(float))]
    _require(mde, ["group", "param", "estimate"], "power results (minimum detectable effects)")
    use_pct = "pct" in mde.columns and bool(np.isfinite(mde["pct"].astype(float)).all())
    outcome = _one(power, "outcome", "outcome")
    scale = _one(power, "scale", "")
    windows = [w for w in schema.WINDOWS if w in set(mde["window"])] + sorted(
        set(mde["window"]) - set(schema.WINDOWS))
    keys = [(g, w) for g in schema.groups_in(mde["group"]) for w in windows
            if ((mde["group"] == g) & (mde["window"] == w)).any()]
    powers = sorted(set(mde["param"].astype(float)))
    markers = ("D", "o", "s", "^", "v")
    with _style():
        fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, 0.38 * len(keys) + 1.35),
                               layout="constrained")
        labels = []
        for i, (group, window) in enumerate(keys):
            colour = GROUP_COLOURS.get(group, OKABE_ITO[i % len(OKABE_ITO)])
            m = mde[(mde["group"] == group) & (mde["window"] == window)].sort_values("param")
            x = np.abs((m["pct"] if use_pct else m["estimate"]).to_numpy(float))
            ax.hlines(-i, 0, x.max(), color=colour, linewidth=0.6, alpha=0.6)
            for pw, xx in zip(m["param"].astype(float), x, strict=True):
                k = powers.index(pw)
                ax.plot([xx], [-i], marker=markers[k % len(markers)], markersize=5,
                        color=colour, linestyle="none", gid=f"mde-{group}-{window}-{pw:g}",
                        label=f"{100 * pw:g}% power")
            unit = "%" if use_pct else ""
            value = (f"{x.max():.1f}{unit}" if len(x) == 1
                     else f"{x.min():.1f}-{x.max():.1f}{unit}")
            ax.text(x.max(), -i + 0.18, f"  {value}",
                    fontsize=7.2, ha="left", va="bottom", color="#333333",
                    gid=f"mde-label-{group}-{window}")
            labels.append(group_label(group) + ("" if len(windows) == 1 else
                                                f", {schema.WINDOW_LABELS.get(window, window)}"))
        if hoped_for_pct is not None and use_pct:
            ax.axvline(abs(hoped_for_pct), color="#000000", linestyle="--", linewidth=0.9,
                       gid="hoped-for")
            ax.text(abs(hoped_for_pct), 1.0, f" hoped-for {abs(hoped_for_pct):g}%",
                    transform=ax.get_xaxis_transform(), fontsize=7.2, ha="left", va="bottom")
        ax.set_yticks([-i for i in range(len(keys))], labels, fontsize=7.5)
        ax.set_ylim(-len(keys) + 0.4, 0.6)
        ax.set_xlim(left=0)
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", visible=True)
        win = schema.WINDOW_LABELS.get(windows[0], windows[0]).lower() if len(windows) == 1 \
            else "each window"
        ax.set_xlabel(f"Smallest reduction detectable, {win} (% of pre-period mean)" if use_pct
                      else f"Smallest reduction detectable ({unit_label(outcome, scale)})",
                      fontsize=8)
        ax.set_title(f"{outcome_label(outcome)}: minimum detectable effect", pad=12)
        seen = {f"{100 * pw:g}% power": Line2D([], [], marker=markers[k % len(markers)],
                                                 color="#444444", linestyle="none")
                for k, pw in enumerate(powers)}
        ax.legend(list(seen.values()), list(seen), loc="upper center", ncol=len(seen),
                  bbox_to_anchor=(0.5, -0.5 if len(keys) < 3 else -0.3), fontsize=7.5,
                  handletextpad=0.3)
    return fig


def plot_truth_comparison(results: pd.DataFrame, truth: pd.DataFrame) -> Figure:
    """Estimates beside the effects planted in the synthetic data.

    Parameters
    ----------
    results : pandas.DataFrame
        Results rows (``group``, ``window``, ``outcome``, ``scale``, ``estimate``,
        ``ci_low``, ``ci_high``), typically the headline estimator.
    truth : pandas.DataFrame
        Truth table: ``group``, ``window``, ``outcome``, ``scale``, ``truth`` (pooled
        rows have an empty ``site``).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If required columns are missing or no result has a planted truth.
    """
    key = ["group", "window", "outcome", "scale"]
    _require(results, key + ["estimate", "ci_low", "ci_high"], "results")
    _require(truth, key + ["truth"], "truth table")
    t = truth
    if "site" in t.columns:
        t = t[t["site"].fillna("").astype(str) == ""]
    merged = results.merge(t[key + ["truth"]], on=key, how="inner")
    if merged.empty:
        raise DataError("truth table", "a planted truth for at least one estimate",
                        found="no matching group/window/outcome/scale")
    outcome = _one(merged, "outcome", "outcome")
    scale = _one(merged, "scale", "")
    windows = [w for w in schema.WINDOWS if w in set(merged["window"])]
    with _style():
        fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, 3.2), layout="constrained")
        groups = schema.groups_in(merged["group"])
        n = len(groups)
        for gi, group in enumerate(groups):
            g = merged[merged["group"] == group].set_index("window").reindex(windows).dropna(
                subset=["estimate"])
            x = np.array([windows.index(w) for w in g.index], float) + (gi - (n - 1) / 2) * 0.2
            colour = GROUP_COLOURS.get(group, OKABE_ITO[gi])
            ax.vlines(x, g["ci_low"], g["ci_high"], color=colour, linewidth=1.1)
            ax.plot(x, g["estimate"], marker="o", linestyle="none", color=colour,
                    label=f"{group_label(group)}: estimate", gid=f"est-{group}")
            ax.plot(x, g["truth"], marker="x", markersize=7, linestyle="none", color="#000000",
                    label="Planted truth" if gi == 0 else None, gid=f"truth-{group}")
        ax.axhline(0, color="#333333", linewidth=0.8)
        ax.set_xticks(range(len(windows)), [schema.WINDOW_LABELS[w] for w in windows])
        ax.set_xlabel("Post-period window")
        ax.set_ylabel(effect_label(outcome, scale), fontsize=8)
        ax.set_title(f"{outcome_label(outcome)}: estimates against planted truth")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(2, n + 1),
                  fontsize=7.5)
    return fig
