"""Sensitivity analyses a referee asks for, each re-estimating the headline on changed data.

The headline analysis makes choices about which areas enter the panel; each
sensitivity undoes one of them and re-estimates the headline estimator (two-way fixed
effects on the run's scale, the headline inference rule) for every treatment group:

``whole_ccg_only``
    Areas of sites that cover only part of their CCG are left out (the CCG's count
    mixes the vanguard's patients with others, diluting any effect).
``anomalies_kept``
    Areas failing the data-quality rule (:func:`vanguard.mar.quality.quality_hits`)
    stay in the panel.
``mixed_kept``
    Areas that merge vanguard and control CCGs stay in the panel, labelled by their
    vanguard member.
``uec_as_controls``
    Urgent & emergency care areas join the comparison areas (the headline keeps them
    out: their own vanguard may have changed emergency admissions).
``without_site_<id>``
    One partly covering site's areas left out, for each such site.
``per_1000_aged_75plus``
    Care-home sites: rates per 1,000 residents aged 75 and over (care-home residents
    are mostly that age, so the whole-population rate dilutes their change).

A sensitivity that cannot change anything on the run's data (no partly covering sites,
no area failing the rule, no 75+ denominator) is not estimated but listed, with the
reason, in the table :func:`run_sensitivities` returns beside the results, so nothing
is silently absent. The sustainability window (after the programme's funding ended)
is :func:`sustainability`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from vanguard import schema
from vanguard.did.spec import Spec

HEADLINE = "headline"

LABELS: dict[str, str] = {
    HEADLINE: "Headline analysis (as in the main table)",
    "whole_ccg_only": "Sites covering whole CCGs only (areas of partly covering sites left out)",
    "anomalies_kept": "Areas failing the data-quality rule kept in",
    "mixed_kept": "Areas mixing vanguard and control CCGs kept in",
    "uec_as_controls": "Urgent & emergency care areas added to the comparison areas",
    "per_1000_aged_75plus": "Rates per 1,000 residents aged 75 and over",
}
"""Plain-language label of each sensitivity (``without_site_<id>`` are built per site)."""

SITE_OUT = "without_site_"
COLUMNS_SKIPPED = ("outcome", "sensitivity", "sensitivity_label", "group", "reason")
SUSTAINABILITY_WINDOW = "sustainability"


@dataclass(frozen=True)
class Variant:
    """One sensitivity: its panel and what changes in the specification.

    Attributes
    ----------
    key, label : str
    panel : pandas.DataFrame or None
        ``None`` when the sensitivity cannot be built; ``reason`` says why.
    groups : tuple of str or None
        Groups it applies to (``None``: every group of the run).
    with_uec_controls : bool
        Add the panel's urgent & emergency care areas to the comparison areas.
    changes_values : bool
        The panel's values differ from the headline's (not only its areas), so it is
        estimated even when it keeps the same areas.
    reason : str
    """

    key: str
    label: str
    panel: pd.DataFrame | None
    groups: tuple[str, ...] | None = None
    with_uec_controls: bool = False
    changes_values: bool = False
    reason: str = ""


def _areas(panel: pd.DataFrame) -> set[str]:
    return set(panel[schema.AREA].unique())


def partial_sites(areas: pd.DataFrame, panel: pd.DataFrame) -> dict[str, list[str]]:
    """Sites that cover only part of a CCG in the panel, with the panel areas they touch.

    Parameters
    ----------
    areas : pandas.DataFrame
        Area records with ``area``, ``site`` (``;``-joined ids) and ``coverage``
        (``whole`` | ``part``), as the real-data panel records them.
    panel : pandas.DataFrame

    Returns
    -------
    dict
        Site id -> sorted areas of the panel in that site; sites ordered numerically.

    Raises
    ------
    ValueError
        If ``areas`` lacks one of those columns.
    """
    missing = [c for c in ("area", "site", "coverage") if c not in areas.columns]
    if missing:
        raise ValueError(f"area records: missing column(s) {missing}; expected area, site, "
                         "coverage")
    inside = areas[areas["area"].isin(_areas(panel))]
    out: dict[str, set[str]] = {}
    for area, sites in inside.loc[inside["coverage"] == "part", ["area", "site"]].itertuples(
            index=False):
        for site in str(sites).split(";"):
            if site:
                out.setdefault(site, set()).add(area)
    # every panel area of a partly covering site leaves with it, whole-CCG ones included
    for area, sites in inside[["area", "site"]].itertuples(index=False):
        for site in str(sites).split(";"):
            if site in out:
                out[site].add(area)
    return {s: sorted(out[s]) for s in sorted(out, key=lambda s: (len(s), s))}


def _drop(panel: pd.DataFrame, areas: Sequence[str]) -> pd.DataFrame:
    out = panel[~panel[schema.AREA].isin(set(areas))].reset_index(drop=True)
    out.attrs = dict(panel.attrs)
    return out


def variants(
    panel: pd.DataFrame,
    *,
    areas: pd.DataFrame | None = None,
    rebuild: Callable[..., pd.DataFrame] | None = None,
    site_names: dict[str, str] | None = None,
) -> list[Variant]:
    """Every sensitivity for ``panel``, built or with the reason it cannot be.

    Parameters
    ----------
    panel : pandas.DataFrame
        The run's headline panel.
    areas : pandas.DataFrame, optional
        Area records (``area``, ``site``, ``coverage``, ``in_panel``, ``reason``) of
        a real-data panel; without them, the coverage-based sensitivities are not
        built.
    rebuild : callable, optional
        ``rebuild(mixed=..., quality=...)`` returns the panel with another area rule
        (the real data's :func:`vanguard.panel.load_panel` with the run's window);
        without it, ``anomalies_kept`` and ``mixed_kept`` are not built.
    site_names : dict, optional
        Site id -> name, for the labels of ``without_site_<id>``.

    Returns
    -------
    list of Variant
        ``headline`` first.
    """
    site_names = site_names or {}
    out = [Variant(HEADLINE, LABELS[HEADLINE], panel)]
    groups_present = set(panel[schema.GROUP].unique())

    # Coverage: whole-CCG sites only, and each partly covering site out.
    if areas is None:
        why = "no area records with site coverage (real-data panels only)"
        out.append(Variant("whole_ccg_only", LABELS["whole_ccg_only"], None, reason=why))
        partial: dict[str, list[str]] = {}
    else:
        partial = partial_sites(areas, panel)
        part_areas = sorted({a for a in areas.loc[areas["coverage"] == "part", "area"]}
                            & _areas(panel))
        if part_areas:
            out.append(Variant("whole_ccg_only", LABELS["whole_ccg_only"], _drop(panel, part_areas)))
        else:
            out.append(Variant("whole_ccg_only", LABELS["whole_ccg_only"], None,
                               reason="every site of the panel covers whole CCGs"))

    # Area rules of the real data, rebuilt with the rule switched off.
    for key, option in (("anomalies_kept", {"quality": "keep"}), ("mixed_kept", {"mixed": "keep"})):
        if rebuild is None:
            out.append(Variant(key, LABELS[key], None,
                               reason="the data source has no area rules to switch off"))
            continue
        other = rebuild(**option)
        added = sorted(_areas(other) - _areas(panel))
        if not added:
            out.append(Variant(key, LABELS[key], None,
                               reason="no area of the window is excluded by this rule"))
        else:
            label = f"{LABELS[key]} ({len(added)} area(s): {', '.join(added)})"
            out.append(Variant(key, label, other))

    if schema.UEC in groups_present:
        out.append(Variant("uec_as_controls", LABELS["uec_as_controls"], panel,
                           groups=tuple(sorted(groups_present - {schema.UEC, schema.CONTROL})),
                           with_uec_controls=True))
    else:
        out.append(Variant("uec_as_controls", LABELS["uec_as_controls"], None,
                           reason="the panel has no urgent & emergency care areas"))

    for site, site_areas in partial.items():
        name = site_names.get(site, "")
        label = (f"Site {site}{f' ({name})' if name else ''} left out: it covers part of "
                 f"its CCG(s) ({', '.join(site_areas)})")
        out.append(Variant(f"{SITE_OUT}{site}", label, _drop(panel, site_areas)))

    if "population_75plus" in panel.columns and schema.CARE_HOME in groups_present:
        aged = panel.copy()
        aged[schema.POPULATION] = aged["population_75plus"]
        aged.attrs = dict(panel.attrs)
        out.append(Variant("per_1000_aged_75plus", LABELS["per_1000_aged_75plus"], aged,
                           groups=(schema.CARE_HOME,), changes_values=True))
    else:
        out.append(Variant("per_1000_aged_75plus", LABELS["per_1000_aged_75plus"], None,
                           groups=(schema.CARE_HOME,),
                           reason="no care-home group or no population aged 75+ in the panel"))
    return out


def headline_estimator(scale: str) -> str:
    """The headline estimator's grid name on ``scale`` (Poisson TWFE on counts)."""
    return "twfe_poisson" if scale == "poisson" else "twfe"


def _sample(panel: pd.DataFrame, group: str) -> frozenset[str]:
    """Areas a group's model can use: its own areas and the never-treated controls.

    An area also in another group (``both``, ``a+b``) is left out of single-group
    models by the design, so it does not count here.
    """
    areas = panel.drop_duplicates(schema.AREA)
    only = {lab: schema.label_groups(lab) == {group}
            for lab in areas[schema.GROUP].astype(str).unique()}
    keep = areas[schema.GROUP].astype(str).map(only) | (areas[schema.GROUP] == schema.CONTROL)
    return frozenset(areas.loc[keep.astype(bool), schema.AREA])


def _uec_controls(panel: pd.DataFrame) -> tuple[str, ...]:
    roles = panel.drop_duplicates(schema.AREA).set_index(schema.AREA)[schema.GROUP]
    return tuple(sorted(roles.index[roles.isin([schema.CONTROL, schema.UEC])]))


def _skip(spec: Spec, key: str, label: str, group: str, reason: str) -> dict:
    """One row of the table of what was not estimated (:data:`COLUMNS_SKIPPED`)."""
    return {"outcome": spec.outcome, "sensitivity": key, "sensitivity_label": label,
            "group": group, "reason": reason}


def _headline_rows(estimate, panel: pd.DataFrame, spec: Spec, analysis: str):
    """The headline estimator's ``main`` rows relabelled ``analysis``, or, when the data
    cannot support the estimate, the first line of the error (the reason it is listed)."""
    from vanguard.errors import EstimationError

    try:
        res = estimate(panel, spec, headline_estimator(spec.scale))
    except (EstimationError, ValueError) as exc:
        return str(exc).splitlines()[0]
    main = res[res["analysis"] == "main"].copy()
    main["analysis"] = analysis
    return main


def _tables(rows: list[pd.DataFrame], skipped: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = schema.results_frame(pd.concat(rows, ignore_index=True) if rows else [])
    return results, pd.DataFrame(skipped, columns=list(COLUMNS_SKIPPED))


def run_sensitivities(
    variant_list: Sequence[Variant],
    spec: Spec,
    groups: Sequence[str],
    estimate: Callable[[pd.DataFrame, Spec, str], pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-estimate the headline for each sensitivity and group.

    Parameters
    ----------
    variant_list : sequence of Variant
        From :func:`variants`.
    spec : Spec
        The headline specification; its ``group`` is replaced by each of ``groups``.
    groups : sequence of str
        The run's treatment groups.
    estimate : callable
        ``estimate(panel, spec, estimator)`` (:func:`vanguard.analysis.estimate`).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The ``main`` rows of every estimate in the results schema with
        ``analysis="sensitivity"`` and the ``sensitivity`` key and label filled; and
        what was not estimated (:data:`COLUMNS_SKIPPED`), with the reason, including
        estimates the data could not support (the error's message) and sensitivities
        that leave a group's areas and controls as they are in the headline (they would
        repeat its estimate).
    """
    head = next((v.panel for v in variant_list if v.key == HEADLINE), None)
    rows, skipped = [], []
    for v in variant_list:
        wanted = [g for g in groups if v.groups is None or g in v.groups]
        if v.panel is None:
            skipped += [_skip(spec, v.key, v.label, g, v.reason) for g in wanted]
            continue
        for group in wanted:
            unchanged = (head is not None and v.key != HEADLINE and not v.changes_values
                         and not v.with_uec_controls
                         and _sample(v.panel, group) == _sample(head, group))
            if unchanged:
                skipped.append(_skip(spec, v.key, v.label, group,
                                     "leaves this group's areas and comparison areas as in "
                                     "the headline (same estimate)"))
                continue
            fields = {"group": group}
            if v.with_uec_controls:
                fields["controls"] = _uec_controls(v.panel)
            main = _headline_rows(estimate, v.panel, spec.replace(**fields), "sensitivity")
            if isinstance(main, str):
                skipped.append(_skip(spec, v.key, v.label, group, main))
                continue
            main["sensitivity"] = v.key
            main["sensitivity_label"] = v.label
            rows.append(main)
    return _tables(rows, skipped)


def sustainability_windows(panel: pd.DataFrame) -> tuple[tuple[str, int, int], ...]:
    """Post-period windows of the sustainability analysis, in months since start.

    ``years_1_3`` is the programme period (months 0-35 after each area's start);
    ``sustainability`` every month from 36 to the panel's last month (for the April 2015
    sites: April 2018 to December 2019); ``year_4`` (months 36-47) when the panel runs
    beyond it.

    Raises
    ------
    ValueError
        If the panel does not reach 37 months after its earliest start.
    """
    starts = pd.to_datetime(panel[schema.START].dropna())
    if starts.empty:
        raise ValueError("sustainability: the panel has no treated areas (no start month)")
    last = pd.Timestamp(panel[schema.MONTH].max()).to_period("M")
    first = starts.min().to_period("M")
    span = (last - first).n + 1  # months from the earliest start to the last, inclusive
    if span <= 36:
        raise ValueError(
            f"sustainability: the panel ends {last}, {span} months after the earliest start "
            f"{first}; expected more than 36 (a window after the programme's three years)"
        )
    after = (SUSTAINABILITY_WINDOW, 36, span)
    # year 4 on its own only when months follow it (else it repeats the whole window)
    return (("years_1_3", 0, 36), *([("year_4", 36, 48)] if span > 48 else []), after)


def sustainability(
    panel: pd.DataFrame | None,
    spec: Spec,
    groups: Sequence[str],
    estimate: Callable[[pd.DataFrame, Spec, str], pd.DataFrame],
    reason: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline estimator on a panel running past the programme's end.

    Parameters
    ----------
    panel : pandas.DataFrame or None
        A panel reaching beyond 36 months after the earliest start (the real data:
        April 2013 - December 2019, on the April 2019 footprint); ``None`` when there is
        none (:func:`sustainability_panel`), and every group is listed with ``reason``.
    spec : Spec
        The headline specification; windows become :func:`sustainability_windows`.
    groups : sequence of str
    estimate : callable
        ``estimate(panel, spec, estimator)``.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        ``main`` rows with ``analysis="sustainability"``; groups not estimated with the
        reason (:data:`COLUMNS_SKIPPED`).
    """
    what = "after the programme's funding ended"
    if panel is None:
        return _tables([], [_skip(spec, SUSTAINABILITY_WINDOW, what, g, reason) for g in groups])
    windows = sustainability_windows(panel)
    rows, skipped = [], []
    for group in groups:
        main = _headline_rows(estimate, panel, spec.replace(group=group, windows=windows),
                              "sustainability")
        if isinstance(main, str):
            skipped.append(_skip(spec, SUSTAINABILITY_WINDOW, what, group, main))
            continue
        rows.append(main)
    return _tables(rows, skipped)


def _from_month(panel: pd.DataFrame, first_month: str) -> pd.DataFrame:
    if not first_month:
        return panel
    out = panel[panel[schema.MONTH] >= pd.Timestamp(first_month)].reset_index(drop=True)
    out.attrs = dict(panel.attrs)
    return out


def real_data_rebuild(*, end: str = "", mixed: str = "exclude", quality: str = "drop",
                      first_month: str = "", **load_options) -> Callable[..., pd.DataFrame]:
    """A ``rebuild(mixed=..., quality=...)`` for :func:`variants` on the real data.

    Parameters
    ----------
    end, mixed, quality, first_month : str
        The run's real-data options (notebook 01's ``mar_end``, ``mar_mixed``,
        ``mar_quality``, ``first_month``); ``""`` means the default.
    **load_options
        Further options of :func:`vanguard.panel.load_panel` (e.g. ``cache``).

    Returns
    -------
    callable
        Builds the panel the run built, with the given rule changed.
    """
    from vanguard.panel import load_panel

    base = {"mixed": mixed, "quality": quality, **({"end": end} if end else {}), **load_options}

    def rebuild(**changes: str) -> pd.DataFrame:
        return _from_month(load_panel("nhs_mar", **{**base, **changes}), first_month)

    return rebuild


def sustainability_panel(
    panel: pd.DataFrame, data_source: str, *, mixed: str = "exclude", quality: str = "drop",
    first_month: str = "", **load_options,
) -> tuple[pd.DataFrame | None, str]:
    """The panel of the sustainability window, or ``None`` with the reason.

    On the real data the panel is rebuilt to the last month of the files (its
    footprint follows the window: April 2019), with the run's area rules; any other
    panel is used as it is when it reaches past 36 months after the earliest start.
    ``load_options`` go to :func:`vanguard.panel.load_panel` (real data only).

    Returns
    -------
    (pandas.DataFrame or None, str)
    """
    if data_source == "nhs_mar":
        from vanguard.mar.windows import MAR_LAST_MONTH
        from vanguard.panel import load_panel

        longer = load_panel("nhs_mar", end=MAR_LAST_MONTH, mixed=mixed, quality=quality,
                            **load_options)
        return _from_month(longer, first_month), ""
    try:
        sustainability_windows(panel)
    except ValueError as exc:
        return None, str(exc)
    return panel, ""
