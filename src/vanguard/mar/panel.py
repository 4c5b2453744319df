"""The CCG x month analysis panel built from the MAR files and the site register."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.mar.crosswalk import fold, fold_areas, read_crosswalk
from vanguard.mar.parse import MEASURES, load_mar
from vanguard.mar.quality import describe_flags, flag_anomalies
from vanguard.sites import Register, area_assignments, load_register

FIRST_CCG_MONTH = pd.Timestamp("2013-04-01")
"""CCGs replaced PCTs in April 2013; earlier rows are PCTs and cannot be mapped."""

DEFAULT_FOOTPRINT = "2018-04"
"""Fold the 2015, 2017 and 2018 changes; the next (April 2019) mergers end the panel."""


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
    footprint=DEFAULT_FOOTPRINT,
    register: Register | None = None,
    manifest: str | Path = config.MAR_MANIFEST,
    cache: str | Path | None = config.DATA_PROCESSED / "nhs_mar.parquet",
) -> pd.DataFrame:
    """The analysis panel on real data: one row per CCG x month.

    Parameters
    ----------
    mar_dir : str or pathlib.Path, optional
        Folder of MAR files; default :func:`vanguard.config.mar_dir`.
    start : str or Timestamp
        First month (not before April 2013, when CCGs began).
    end : str or Timestamp, optional
        Last month. Default: the month before the first CCG change after ``footprint``
        (March 2019 for the 2018-04 footprint), or the last month of data.
    footprint : str or Timestamp
        CCG boundaries the panel is expressed in; every merger and boundary change up
        to this month is folded (see :mod:`vanguard.mar.crosswalk`). It must not precede
        a change inside ``[start, end]``.
    register : Register, optional
        Site register; default the committed real one (:func:`vanguard.sites.load_register`).
    manifest : str or pathlib.Path
        The MAR manifest (default ``data/raw/nhs_mar_manifest.csv``).
    cache : str or pathlib.Path or None
        Parquet cache of the parsed files (see :func:`vanguard.mar.parse.load_mar`).

    Returns
    -------
    pandas.DataFrame
        ``area``, ``month``, one count column per MAR measure (``emergency_admissions``
        is total non-elective FFCEs), ``group``, ``start``, ``site`` (see
        :mod:`vanguard.schema`); no population. CCGs in no site footprint are
        ``control``. ``attrs``: ``data_source = "nhs_mar"``, ``footprint``,
        ``assignments`` (records of the folded :func:`vanguard.sites.area_assignments`
        table, with ``site_types`` and ``coverage``; ``start`` as YYYY-MM).

    Raises
    ------
    DataError
        If a register CCG code is not in the MAR files (naming the register row), the
        folded panel is not balanced, or from parsing (:func:`vanguard.mar.parse.load_mar`).
    ValueError
        If the window is empty, starts before April 2013 or ends after the data, or
        ``footprint`` precedes a CCG change inside the window.
    """
    cw = read_crosswalk()
    foot = _month(footprint, "footprint")
    first = _month(start, "start")
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
    panel.attrs["data_source"] = "nhs_mar"
    panel.attrs["footprint"] = f"{foot:%Y-%m}"
    flags = flag_anomalies(panel, ["emergency_admissions"])
    if len(flags):
        # Kept as published: excluding them is an analysis decision, so say so loudly.
        warnings.warn(
            f"NHS MAR panel: {len(flags)} area-month(s) of emergency_admissions below half or "
            f"above twice the area's median (submission problems noted in the files): "
            f"{describe_flags(flags)}. Kept; see vanguard.mar.quality.flag_anomalies",
            stacklevel=2,
        )
    # Plain records, not a DataFrame: pandas compares attrs when it concatenates frames.
    panel.attrs["assignments"] = assign.assign(start=assign["start"].dt.strftime("%Y-%m")).to_dict(
        "records"
    )
    return panel
