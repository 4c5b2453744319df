"""The CCG x month analysis panel built from the MAR files and the site register."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.mar.areas import MIXED_RULES, area_table, footprint_for_window
from vanguard.mar.crosswalk import fold, fold_areas, read_crosswalk
from vanguard.mar.parse import MEASURES, load_mar
from vanguard.mar.quality import (
    QUALITY_RULES,
    QUALITY_THRESHOLD,
    describe_flags,
    min_ratio,
    quality_hits,
)
from vanguard.mar.windows import HEADLINE
from vanguard.sites import Register, area_assignments, load_register

FIRST_CCG_MONTH = pd.Timestamp("2013-04-01")
"""CCGs replaced PCTs in April 2013; earlier rows are PCTs and cannot be mapped."""

DEFAULT_FOOTPRINT = "2018-04"
"""The footprint earlier versions used for every window; now chosen per window
(:func:`vanguard.mar.areas.footprint_for_window`) unless given."""

OUTCOMES: dict[str, str] = {
    "non_elective_admissions": "total non-elective G&A admissions (FFCEs): emergency and "
    "other non-elective first finished consultant episodes, broader than emergency "
    "admissions alone; the headline outcome",
    "elective_total": "elective G&A admissions (FFCEs), ordinary and day case; secondary",
    "first_outpatient_attendances": "first outpatient attendances (G&A); secondary",
    "gp_referrals_made_all": "GP referrals made, all specialties; secondary",
}
"""Outcome columns the real-data analysis uses, with what each counts. The headline is
named for what the MAR counts (all non-elective FFCEs), not ``emergency_admissions`` as
in the synthetic panel: the published evaluations counted emergency admissions only, and
the report says so wherever it sets the two side by side."""


def folded_register(
    register: Register, footprint=DEFAULT_FOOTPRINT, crosswalk: pd.DataFrame | None = None
) -> Register:
    """The register with its areas mapped onto the footprint's CCG codes.

    Parameters
    ----------
    register : Register
    footprint : str or Timestamp
    crosswalk : pandas.DataFrame, optional

    Returns
    -------
    Register
        Same sites; areas from :func:`vanguard.mar.crosswalk.fold_areas`.
    """
    return Register(
        sites=register.sites,
        areas=fold_areas(register.areas, footprint, crosswalk),
        sites_path=register.sites_path,
        areas_path=register.areas_path,
    )


def _month(value, name: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value).to_period("M").to_timestamp()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a month such as '2013-04'; got {value!r}") from exc


def build_panel(
    mar_dir: str | Path | None = None,
    *,
    start="2013-04",
    end=None,
    footprint=None,
    register: Register | None = None,
    manifest: str | Path = config.MAR_MANIFEST,
    cache: str | Path | None = config.DATA_PROCESSED / "nhs_mar.parquet",
    mixed: str = "exclude",
    quality: str = "drop",
    population: bool = True,
    population_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The analysis panel on real data: one row per CCG x month.

    Parameters
    ----------
    mar_dir : str or pathlib.Path, optional
        Folder of MAR files; default :func:`vanguard.config.mar_dir`.
    start : str or Timestamp
        First month (not before April 2013, when CCGs began).
    end : str or Timestamp, optional
        Last month. Default: March 2018 (the end of the programme's funding,
        :data:`vanguard.mar.windows.HEADLINE`) when ``footprint`` is not given; with a
        ``footprint``, the month before the first CCG change after it, or the last month
        of data.
    footprint : str or Timestamp, optional
        CCG boundaries the panel is expressed in; every merger and boundary change up
        to this month is folded (see :mod:`vanguard.mar.crosswalk`). It must not precede
        a change inside ``[start, end]``. Default: the footprint of the window's end
        that needs the fewest merges (:func:`vanguard.mar.areas.footprint_for_window`;
        April 2017 for April 2013 - March 2018).
    register : Register, optional
        Site register; default the committed real one (:func:`vanguard.sites.load_register`).
    manifest : str or pathlib.Path
        The MAR manifest (default ``data/raw/nhs_mar_manifest.csv``).
    cache : str or pathlib.Path or None
        Parquet cache of the parsed files (see :func:`vanguard.mar.parse.load_mar`).
    mixed : {"exclude", "keep"}
        Whether areas whose member CCGs have different roles (:mod:`vanguard.mar.areas`)
        leave the panel (headline) or stay (sensitivity).
    quality : {"drop", "keep"}
        Whether areas failing the data-quality rule
        (:func:`vanguard.mar.quality.quality_hits`) leave the panel (headline) or stay
        (sensitivity; a warning lists them).
    population : bool
        Add ``population``, ``population_65plus`` and ``population_75plus``
        (:func:`vanguard.population.monthly_population`).
    population_dir : str or pathlib.Path, optional
        Folder of the population tables; default :func:`vanguard.population.population_dir`.

    Returns
    -------
    pandas.DataFrame
        ``area``, ``month``, one count column per MAR measure (``non_elective_admissions``
        is total non-elective FFCEs, see :data:`OUTCOMES`), the population columns when
        ``population``, ``group``, ``start``, ``site`` (see :mod:`vanguard.schema`).
        CCGs in no site footprint are ``control``. ``attrs``: ``data_source =
        "nhs_mar"``, ``footprint``, ``window`` (first and last month), ``rules``
        (``mixed``, ``quality``, the threshold, the population rule), ``assignments``
        (records of the folded :func:`vanguard.sites.area_assignments` table, with
        ``site_types`` and ``coverage``; ``start`` as YYYY-MM), ``areas`` (records of
        :data:`vanguard.mar.areas.AREA_COLUMNS`: every area of the window, whether in
        the panel or why not) and ``quality`` (records of the anomalous area-months).
        :func:`vanguard.mar.areas.flow_table` turns ``areas`` into the flow table.

    Raises
    ------
    DataError
        If a register CCG code is not in the MAR files (naming the register row), the
        folded panel is not balanced, or from parsing (:func:`vanguard.mar.parse.load_mar`).
    ValueError
        If the window is empty, starts before April 2013 or ends after the data,
        ``footprint`` precedes a CCG change inside the window, or ``mixed`` or
        ``quality`` is not one of its values.
    """
    if mixed not in MIXED_RULES:
        raise ValueError(f"mixed: expected one of {MIXED_RULES}; got {mixed!r}")
    if quality not in QUALITY_RULES:
        raise ValueError(f"quality: expected one of {QUALITY_RULES}; got {quality!r}")
    cw = read_crosswalk()
    first = _month(start, "start")
    if footprint is None and end is None:
        end = HEADLINE.panel_last
    if footprint is None:
        foot = footprint_for_window(first, _month(end, "end"), cw)
    else:
        foot = _month(footprint, "footprint")
    if first < FIRST_CCG_MONTH:
        raise ValueError(
            f"start: expected {FIRST_CCG_MONTH:%Y-%m} or later (CCGs began then; "
            f"earlier MAR rows are PCTs); got {first:%Y-%m}"
        )
    table = load_mar(mar_dir, manifest=manifest, cache=cache)
    ccg = table[table["org_type"] == "CCG"]
    if end is None:
        later = cw.loc[cw["effective"] > foot, "effective"]
        last = ccg["month"].max()
        if len(later):
            last = min(last, later.min() - pd.offsets.MonthBegin(1))
    else:
        last = _month(end, "end")
    if last < first:
        raise ValueError(f"end: expected a month after start {first:%Y-%m}; got {last:%Y-%m}")
    if last > ccg["month"].max():
        raise ValueError(
            f"end: expected {ccg['month'].max():%Y-%m} or earlier (the last month of the MAR "
            f"files); got {last:%Y-%m}"
        )
    inside = cw[(cw["effective"] > first) & (cw["effective"] <= last) & (cw["effective"] > foot)]
    if len(inside):
        eff = inside["effective"].max()
        raise ValueError(
            f"footprint {foot:%Y-%m}: the window {first:%Y-%m} to {last:%Y-%m} "
            f"spans CCG changes up to {eff:%Y-%m}; expected footprint >= "
            f"{eff:%Y-%m} or end < {inside['effective'].min():%Y-%m}"
        )

    register = load_register() if register is None else register
    # Check register codes against every code the files carry, before folding, so an
    # error names the register row as written.
    area_assignments(register, known_areas=set(ccg["org_code"].unique()))

    window = ccg[(ccg["month"] >= first) & (ccg["month"] <= last)]
    folded = fold(window, foot, cw)
    wide = folded.pivot_table(
        index=["org_code", "month"], columns="measure", values="value", aggfunc="sum", observed=True
    )
    wide.columns = [str(c) for c in wide.columns]
    measures = [m for m in MEASURES.values() if m in wide.columns]
    wide = (
        wide[measures]
        .reset_index()
        .rename(columns={"org_code": schema.AREA, "month": schema.MONTH})
    )
    wide[schema.AREA] = wide[schema.AREA].astype(str)
    months = pd.date_range(first, last, freq="MS")
    counts = wide.groupby(schema.AREA)[schema.MONTH].nunique()
    short = counts[counts != len(months)]
    if len(short) or wide[measures].isna().any().any():
        area = (
            short.index[0]
            if len(short)
            else wide.loc[wide[measures].isna().any(axis=1), schema.AREA].iloc[0]
        )
        have = set(wide.loc[wide[schema.AREA] == area, schema.MONTH])
        gap = [m for m in months if m not in have]
        raise DataError(
            config.mar_dir() if mar_dir is None else mar_dir,
            f"a balanced panel {first:%Y-%m} to {last:%Y-%m} after folding to the "
            f"{foot:%Y-%m} footprint",
            column=schema.AREA,
            found=f"{area} missing {', '.join(m.strftime('%Y-%m') for m in gap[:4])}"
            f"{' ...' if len(gap) > 4 else ''} ({len(short)} areas short)",
        )
    for m in measures:
        if (wide[m] % 1 == 0).all():
            wide[m] = wide[m].astype("int64")

    assign = area_assignments(folded_register(register, foot, cw))
    panel = wide.merge(
        assign[["area", "group", "start", "site"]],
        on=schema.AREA,
        how="left",
        validate="many_to_one",
    )
    panel[schema.GROUP] = panel[schema.GROUP].fillna(schema.CONTROL)
    panel[schema.SITE] = panel[schema.SITE].fillna("")
    panel[schema.START] = pd.to_datetime(panel[schema.START])
    panel = panel.sort_values([schema.AREA, schema.MONTH], ignore_index=True)

    # Which areas enter the panel: the mixed-area rule and the data-quality rule, both
    # decided on the whole window before anything is dropped, and recorded per area.
    areas = area_table(window, foot, register, assign, cw)
    hits = quality_hits(panel)
    n_hits = hits.groupby("area")["month"].nunique()
    areas["quality_months"] = areas["area"].map(n_hits).fillna(0).astype(int)
    areas["min_ratio"] = areas["area"].map(min_ratio(panel)).round(3)
    drop_mixed = areas["mixed"] & (mixed == "exclude")
    drop_quality = (areas["quality_months"] > 0) & (quality == "drop")
    areas["in_panel"] = ~(drop_mixed | drop_quality)
    areas["reason"] = [
        "; ".join(
            r
            for r, on in (("mixed", m), ("data-quality rule", q))
            if on
        )
        for m, q in zip(drop_mixed, drop_quality, strict=True)
    ]
    panel = panel[panel[schema.AREA].isin(areas.loc[areas["in_panel"], "area"])]
    panel = panel.reset_index(drop=True)
    if quality == "keep" and len(hits):
        # Kept on request (the sensitivity run): say so loudly.
        warnings.warn(
            f"NHS MAR panel: {hits['area'].nunique()} area(s) fail the data-quality rule "
            f"and are kept (quality='keep'): {describe_flags(hits)}",
            stacklevel=2,
        )

    rules = {"mixed": mixed, "quality": quality, "quality_threshold": QUALITY_THRESHOLD}
    if population:
        from vanguard import population as pop_mod

        pops = pop_mod.monthly_population(months, foot, folder=population_dir, crosswalk=cw)
        panel = panel.merge(pops, on=[schema.AREA, schema.MONTH], how="left",
                            validate="one_to_one")
        lacking = panel[schema.POPULATION].isna()
        if lacking.any():
            raise DataError(
                pop_mod.population_dir() if population_dir is None else population_dir,
                f"a population for every area of the {foot:%Y-%m} footprint",
                column=schema.POPULATION,
                found=f"none for {panel.loc[lacking, schema.AREA].iloc[0]}",
            )
        rules["population"] = pops.attrs["rule"]
        front = [schema.AREA, schema.MONTH, *pop_mod.POPULATION_COLUMNS]
        panel = panel[front + [c for c in panel.columns if c not in front]]
    panel.attrs["data_source"] = "nhs_mar"
    panel.attrs["footprint"] = f"{foot:%Y-%m}"
    panel.attrs["window"] = [f"{first:%Y-%m}", f"{last:%Y-%m}"]
    panel.attrs["rules"] = rules
    # Plain records, not a DataFrame: pandas compares attrs when it concatenates frames.
    panel.attrs["assignments"] = assign.assign(start=assign["start"].dt.strftime("%Y-%m")).to_dict(
        "records"
    )
    panel.attrs["areas"] = areas.to_dict("records")
    panel.attrs["quality"] = hits.assign(
        month=hits["month"].dt.strftime("%Y-%m")
    ).to_dict("records")
    return panel
