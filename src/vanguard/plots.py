"""House-style charts of the evaluation, and the one helper that saves a figure.

Every chart function takes tidy DataFrames (the results schema of
:mod:`vanguard.schema`, or the trends table of :mod:`vanguard.descriptives`) and returns
a :class:`matplotlib.figure.Figure`; none of them writes files. :func:`save_figure`
writes the PNG, its alt text and the data behind it, so a reader can always check a
chart against numbers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

# The backend is left to the caller: notebooks show figures inline, tests and the
# pipeline run headless (MPLBACKEND=Agg).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.io import atomic_write, write_csv, write_text

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
"""First exposed month of the wave-1 vanguards (announced 10 March 2015)."""
SOURCE_SYNTHETIC = "Source: synthetic data (not real NHS data)."
SOURCE_NHS_MAR = "Source: NHS England Monthly Activity Return, Open Government Licence v3.0."

OUTCOME_LABELS: dict[str, str] = {
    "emergency_admissions": "Emergency admissions",
    "bed_days": "Bed days",
    "ae_attendances": "A&E attendances",
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
    # One note per figure even when a figure is saved twice.
    for t in list(fig.texts):
        if t.get_gid() == "source-note":
            t.remove()
    # Under everything drawn (axis labels can reach below the figure's bottom edge).
    bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
    fig.text(0.01, min(0.0, bottom) - 0.02, source_note.strip(), ha="left", va="top",
             fontsize=8, color="#444444", gid="source-note")
    png = folder / f"{name}.png"
    # Explicit: the style's savefig settings are not active outside the chart functions.
    atomic_write(png, lambda p: fig.savefig(p, format="png", dpi=DPI, bbox_inches="tight",
                                            pad_inches=0.15, facecolor="white",
                                            metadata={"Software": None}))
    write_text(folder / f"{name}.alt.txt", alt_text.strip() + "\n")
    write_csv(folder / f"{name}.csv", pd.DataFrame(data), float_format="%.10g")
    return png


# ---------------------------------------------------------------------------
# charts

_TIME_COLUMNS = ("month", "period", "date", "quarter")
_VALUE_COLUMNS = ("index", "indexed", "value")


def plot_trends(trends: pd.DataFrame, first_start: pd.Timestamp | str | None = None) -> Figure:
    """Indexed trends of an outcome by site type.

    Parameters
    ----------
    trends : pandas.DataFrame
        Tidy group x period table: ``group``, a time column (``month`` or ``period``),
        and an index column (``index`` or ``value``; pre-period mean = 100). An
        ``outcome`` column, when constant, names the outcome in the title.
    first_start : month, optional
        The programme's earliest start, marked with a dashed line (the panel's own, so a
        user's programme is not marked with the vanguards' April 2015).

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
    with _style():
        fig, ax = plt.subplots()
        for group, g in trends.groupby("group", sort=False):
            g = g.sort_values(time_col)
            ax.plot(g[time_col], g[value_col], label=group_label(group),
                    color=GROUP_COLOURS.get(group), gid=f"trend-{group}")
        ax.axhline(100, color="#444444", linewidth=0.8, linestyle=":")
        if first_start is not None and pd.api.types.is_datetime64_any_dtype(trends[time_col]):
            first_start = pd.Timestamp(first_start)
            ax.axvline(first_start, color="#444444", linewidth=0.9, linestyle="--",
                       label=f"First start ({first_start:%b %Y})", gid="first-start")
        ax.set_title(f"{outcome_label(outcome)}: indexed trend by site type")
        ax.set_xlabel("Month" if time_col == "month" else time_col.capitalize())
        ax.set_ylabel("Index (pre-period mean = 100)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_event_study(
    es: pd.DataFrame, pretrend_p: float | None = None, unit: str | None = None
) -> Figure:
    """Event-study coefficients with confidence intervals.

    Parameters
    ----------
    es : pandas.DataFrame
        Results rows with ``rel_time``, ``estimate``, ``ci_low``, ``ci_high`` (and
        ``group``, ``outcome``, ``scale``). One series per group.
    pretrend_p : float, optional
        p-value of the joint pre-trend test, printed in the caption.
    unit : {"month", "quarter"}, optional
        Unit of ``rel_time``, named on the x axis.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If required columns are missing or ``rel_time``/``estimate`` are not finite.
    """
    _require(es, ["rel_time", "estimate", "ci_low", "ci_high"], "event-study results")
    _finite(es, ["rel_time", "estimate"], "event-study results")
    outcome = _one(es, "outcome", "outcome")
    scale = _one(es, "scale", "")
    groups = list(es["group"].unique()) if "group" in es.columns else ["all"]
    step = float(np.min(np.diff(np.unique(es["rel_time"])))) if es["rel_time"].nunique() > 1 else 1.0
    with _style():
        fig, ax = plt.subplots()
        ax.axvspan(-0.5 * step, float(es["rel_time"].max()) + 0.5 * step, color="#EEEEEE",
                   zorder=0, label="Post period")
        ax.axhline(0, color="#333333", linewidth=0.9)
        ax.axvline(-0.5 * step, color="#333333", linewidth=0.8, linestyle="--")
        width = 0.15 * step * (len(groups) - 1)
        for i, group in enumerate(groups):
            g = es[es["group"] == group] if "group" in es.columns else es
            g = g.sort_values("rel_time")
            shift = (i * 0.15 * step - width / 2) if len(groups) > 1 else 0.0
            x = g["rel_time"].to_numpy(float) + shift
            y = g["estimate"].to_numpy(float)
            lo = g["ci_low"].to_numpy(float)
            hi = g["ci_high"].to_numpy(float)
            colour = GROUP_COLOURS.get(group, OKABE_ITO[i % len(OKABE_ITO)])
            ax.vlines(x, lo, hi, color=colour, linewidth=1.2, gid=f"ci-{group}")
            ax.plot(x, y, marker="o", linestyle="-", linewidth=0.8, color=colour,
                    label=group_label(group), gid=f"es-{group}")
        if not (es["rel_time"] == -step).any():
            # The omitted reference period is zero by construction; show it as such.
            ax.plot([-step], [0.0], marker="o", markerfacecolor="white", color="#333333",
                    linestyle="none", label="Reference period (set to 0)", gid="reference")
        ax.set_title(f"{outcome_label(outcome)}: event study")
        ax.set_xlabel(f"{unit.capitalize()}s since the area's start (0 = first exposed {unit})"
                      if unit else "Time relative to start (0 = first exposed period)")
        ax.set_ylabel(effect_label(outcome, scale))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        caption = "Points: estimates relative to the period before start; bars: 95% CI."
        if pretrend_p is not None and math.isfinite(pretrend_p):
            caption = f"Joint pre-trend test p = {pretrend_p:.3f}. " + caption
        fig.text(0.01, 0.01, caption, ha="left", va="bottom", fontsize=8.5, gid="caption")
        fig.subplots_adjust(bottom=0.18)
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


def plot_forest(per_site: pd.DataFrame) -> Figure:
    """Per-site effects with confidence intervals, grouped by site type, with the pooled
    estimate of each group.

    Parameters
    ----------
    per_site : pandas.DataFrame
        Results rows with ``group``, ``site``, ``estimate``, ``ci_low``, ``ci_high``.
        Rows with an empty ``site`` are the pooled estimate of their group; when a group
        has none, the inverse-variance (fixed-effect) pool of its sites is drawn, which
        needs ``se``.

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
    outcome = _one(per_site, "outcome", "outcome")
    scale = _one(per_site, "scale", "")
    labels, ys, rows = [], [], []
    y = 0.0
    pooled_iv = False
    for group, g in per_site.groupby("group", sort=True):
        sites = g[g["site"].fillna("") != ""].sort_values("site")
        pooled = g[g["site"].fillna("") == ""]
        for _, r in sites.iterrows():
            rows.append((group, str(r["site"]), r["estimate"], r["ci_low"], r["ci_high"], False))
        if len(pooled):
            r = pooled.iloc[0]
            rows.append((group, "Pooled", r["estimate"], r["ci_low"], r["ci_high"], True))
        elif "se" in g.columns and (p := _pooled(sites)) is not None:
            rows.append((group, "Pooled", *p, True))
            pooled_iv = True
        rows.append(None)  # gap between groups
    with _style():
        fig, ax = plt.subplots(figsize=(8, max(3.0, 0.28 * len(rows) + 1.2)))
        for row in rows:
            if row is None:
                y -= 0.6
                continue
            group, label, est, lo, hi, is_pool = row
            colour = GROUP_COLOURS.get(group, OKABE_ITO[0])
            ax.hlines(y, lo, hi, color=colour, linewidth=1.4 if is_pool else 1.0)
            ax.plot([est], [y], marker="D" if is_pool else "s", markersize=7 if is_pool else 4,
                    color=colour, linestyle="none",
                    gid=f"pooled-{group}" if is_pool else f"site-{group}-{label}")
            labels.append(f"Pooled: {group_label(group)}" if is_pool else label)
            ys.append(y)
            y -= 1.0
        ax.axvline(0, color="#333333", linewidth=0.9)
        ax.set_yticks(ys, labels)
        for tick, row in zip(ax.get_yticklabels(), [r for r in rows if r is not None],
                             strict=True):
            if row[5]:
                tick.set_fontweight("bold")
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", visible=True)
        ax.set_xlabel(effect_label(outcome, scale))
        caption = "Squares: each site's effect; diamonds: pooled effect of the site type"
        caption += (" (inverse-variance weighted mean of the sites)" if pooled_iv else "")
        ax.text(0.0, 1.0, caption + "; bars: 95% CI.", transform=ax.transAxes, fontsize=8,
                va="bottom", ha="left", color="#444444", gid="caption")
        ax.set_title(f"{outcome_label(outcome)}: effect by vanguard site", pad=16)
    return fig


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
        One panel per group; within a panel one row per estimator x inference, one
        marker per window.

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
    methods = (results[["estimator", "inference"]].drop_duplicates()
               .sort_values(["estimator", "inference"]).itertuples(index=False, name=None))
    methods = list(methods)
    with _style():
        fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups) + 1.5,
                                                         0.5 * len(methods) * len(windows) / 2 + 2.5),
                                 sharey=True, squeeze=False)
        for ax, group in zip(axes[0], groups, strict=True):
            ax.axvline(0, color="#333333", linewidth=0.9)
            for wi, window in enumerate(windows):
                for mi, (est, inf) in enumerate(methods):
                    r = results[(results["group"] == group) & (results["window"] == window)
                                & (results["estimator"] == est) & (results["inference"] == inf)]
                    if r.empty:
                        continue
                    r = r.iloc[0]
                    yy = -(mi + wi * 0.18)
                    colour = OKABE_ITO[wi % len(OKABE_ITO)]
                    ax.hlines(yy, r["ci_low"], r["ci_high"], color=colour, linewidth=1.1)
                    ax.plot([r["estimate"]], [yy], marker="o", color=colour, linestyle="none",
                            label=schema.WINDOW_LABELS.get(window, window) if mi == 0 else None,
                            gid=f"cmp-{group}-{window}-{est}-{inf}")
            ax.set_title(group_label(group), fontsize=10.5)
            ax.grid(axis="y", visible=False)
            ax.grid(axis="x", visible=True)
            ax.set_xlabel(effect_label(outcome, scale),
                          fontsize=9)
        axes[0][0].set_yticks([-i for i in range(len(methods))],
                              [f"{e} / {i}" for e, i in methods])
        axes[0][0].set_ylabel("Estimator / inference")
        # Outside the panels, on the right: clear of the axis labels and the source note.
        fig.legend(*axes[0][0].get_legend_handles_labels(), title="Window",
                   loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.suptitle(f"{outcome_label(outcome)}: estimators and inference methods", x=0.01,
                     ha="left")
    return fig


def plot_mde(power: pd.DataFrame, hoped_for_pct: float | None = None) -> Figure:
    """Power curve and minimum detectable effect, beside the hoped-for effect.

    Both kinds of row of :mod:`vanguard.did.power` are drawn in one coordinate system,
    x = size of the reduction, y = probability of detecting it:

    * ``analysis == "power"`` (or no ``analysis`` column): ``param`` is the power (e.g.
      0.8) and ``estimate`` the minimum detectable effect; drawn as diamonds.
    * ``analysis == "power_curve"``: ``param`` is the planted reduction (a magnitude) and
      ``estimate`` the share of simulations that detect it; drawn as lines.

    The x axis is the % change (``pct``) when every row has one, else the effect on
    ``scale``.

    Parameters
    ----------
    power : pandas.DataFrame
        Results rows as above, for one outcome and scale.
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
    use_pct = "pct" in power.columns and bool(
        np.isfinite(pd.concat([mde["pct"], curve["pct"]]).astype(float)).all())
    outcome = _one(power, "outcome", "outcome")
    scale = _one(power, "scale", "")
    keys = sorted(set(map(tuple, power[["group", "window"]].to_numpy().tolist())))
    with _style():
        fig, ax = plt.subplots()
        for i, (group, window) in enumerate(keys):
            colour = GROUP_COLOURS.get(group, OKABE_ITO[i % len(OKABE_ITO)])
            label = f"{group_label(group)}, {schema.WINDOW_LABELS.get(window, window)}"
            c = curve[(curve["group"] == group) & (curve["window"] == window)]
            if len(c):
                c = c.sort_values("param")
                x = np.abs(c["pct"] if use_pct else c["param"]).to_numpy(float)
                ax.plot(x, 100 * c["estimate"].to_numpy(float), color=colour, label=label,
                        gid=f"curve-{group}-{window}")
                label = None
            m = mde[(mde["group"] == group) & (mde["window"] == window)]
            if len(m):
                m = m.sort_values("param")
                x = np.abs(m["pct"] if use_pct else m["estimate"]).to_numpy(float)
                ax.plot(x, 100 * m["param"].to_numpy(float), marker="D", markersize=7,
                        linestyle=":" if len(m) > 1 else "none", color=colour,
                        label=f"Minimum detectable effect: {label or group_label(group)}",
                        gid=f"mde-{group}-{window}")
        if hoped_for_pct is not None and use_pct:
            ax.axvline(abs(hoped_for_pct), color="#000000", linestyle="--", linewidth=1.0,
                       label=f"Hoped-for reduction ({abs(hoped_for_pct):g}%)", gid="hoped-for")
        ax.axhline(80, color="#888888", linestyle=":", linewidth=0.9)
        ax.set_title(f"{outcome_label(outcome)}: power and minimum detectable effect")
        ax.set_xlabel("Size of reduction (% of pre-period mean)" if use_pct else
                      f"Size of reduction ({unit_label(outcome, scale)})")
        ax.set_ylabel("Probability of detecting it (power, %)")
        ax.set_ylim(0, 102)
        ax.set_xlim(left=0)
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), fontsize=8.5)
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
        fig, ax = plt.subplots()
        groups = schema.groups_in(merged["group"])
        n = len(groups)
        for gi, group in enumerate(groups):
            g = merged[merged["group"] == group].set_index("window").reindex(windows).dropna(
                subset=["estimate"])
            x = np.array([windows.index(w) for w in g.index], float) + (gi - (n - 1) / 2) * 0.2
            colour = GROUP_COLOURS.get(group, OKABE_ITO[gi])
            ax.vlines(x, g["ci_low"], g["ci_high"], color=colour, linewidth=1.2)
            ax.plot(x, g["estimate"], marker="o", linestyle="none", color=colour,
                    label=f"{group_label(group)}: estimate", gid=f"est-{group}")
            ax.plot(x, g["truth"], marker="x", markersize=8, linestyle="none", color="#000000",
                    label="Planted truth" if gi == 0 else None, gid=f"truth-{group}")
        ax.axhline(0, color="#333333", linewidth=0.9)
        ax.set_xticks(range(len(windows)), [schema.WINDOW_LABELS[w] for w in windows])
        ax.set_xlabel("Post-period window")
        ax.set_ylabel(effect_label(outcome, scale))
        ax.set_title(f"{outcome_label(outcome)}: estimates against planted truth")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
