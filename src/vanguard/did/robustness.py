"""Robustness checks of the main two-way fixed-effects estimates.

Placebo start dates
    Pretend each group's programme started ``shift`` months early and estimate the
    effect of that pretend programme on data from before the real start only. Under
    parallel trends (and no anticipation) the placebo effect is zero; a clear non-zero
    placebo says the comparison areas were already drifting apart from the treated
    areas before any vanguard began.

Leave one site out
    Re-estimate a group's effect dropping each of its sites' areas in turn: an estimate
    driven by one site moves when that site is left out.

Both re-run :func:`vanguard.did.twfe.estimate_twfe` (same estimator, sample rules and
inference as the main analysis) on a modified panel.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import pandas as pd

from vanguard import schema
from vanguard.did.persite import (
    PANEL_NAME,
    area_sites,
    month_offset,
    register_site_groups,
    site_groups,
)
from vanguard.errors import DataError, EstimationError

DEFAULT_SHIFTS: tuple[int, ...] = (-12, -24)


def _window_for(window_months: int) -> str:
    """The :data:`vanguard.schema.WINDOWS` key covering months ``[0, window_months)``."""
    for key, (lo, hi) in schema.WINDOWS.items():
        if lo == 0 and hi == window_months:
            return key
    options = sorted({hi for lo, hi in schema.WINDOWS.values() if lo == 0})
    raise EstimationError(f"window_months={window_months}: expected one of {options}")


def _data_source(panel: pd.DataFrame, data_source: str | None) -> str | None:
    return data_source or panel.attrs.get("data_source") or None


def placebo_panel(
    panel: pd.DataFrame, group: str, shift: int, window_months: int = 12
) -> pd.DataFrame:
    """The panel of a pretend programme starting ``shift`` months before the real one.

    Keeps the months before the group's real start and, of those, only up to the end of
    the pretend post-period window, so no real post-period month enters the placebo
    estimate. The treated areas' ``start`` moves by ``shift`` months.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    group : str
        Analysis group (:data:`vanguard.schema.ANALYSIS_GROUPS`).
    shift : int
        Negative number of months.
    window_months : int
        Length of the pretend post-period.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    EstimationError
        If ``shift`` is not negative, the pretend window would reach the real start,
        or the group is unknown or has no treated areas.
    DataError
        If the ``group``, ``start`` or ``month`` column is missing.
    """
    for col in (schema.GROUP, schema.START, schema.MONTH):
        if col not in panel.columns:
            raise DataError(PANEL_NAME, f"a column {col!r}", column=col)
    if shift >= 0:
        raise EstimationError(f"shift={shift}: a placebo start must be before the real one (< 0)")
    if window_months > -shift:
        raise EstimationError(
            f"shift={shift} with a {window_months}-month window would reach the real start: "
            f"the window must fit in the {-shift} months before it"
        )
    members = pd.Series(schema.member_mask(panel[schema.GROUP].astype(str), group), panel.index)
    starts = pd.to_datetime(panel.loc[members, schema.START]).dropna().unique()
    if len(starts) == 0:
        raise EstimationError(f"no treated areas for group {group!r} in the panel")
    # With staggered starts every cohort moves by the same shift; the panel stops where
    # the earliest cohort's pretend window ends, so no real post month of any cohort
    # enters (later cohorts contribute the part of their pretend window before that).
    real = pd.Timestamp(min(starts))
    fake = month_offset(real, shift)
    end = month_offset(fake, window_months)
    month = pd.to_datetime(panel[schema.MONTH])
    out = panel[month < end].copy()
    # Every treated area moves; other vanguard groups are excluded by the design anyway.
    treated = out[schema.START].notna()
    out.loc[treated, schema.START] = (
        pd.to_datetime(out.loc[treated, schema.START]).dt.to_period("M") + shift
    ).dt.to_timestamp()
    out.attrs = dict(panel.attrs)
    return out


def placebo_start_dates(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    groups: Sequence[str] = (schema.POPULATION_BASED, schema.CARE_HOME),
    shifts: Sequence[int] = DEFAULT_SHIFTS,
    window_months: int = 12,
    pre_months: int = 24,
    inference: str = "auto",
    n_boot: int = 999,
    seed: int = schema.DEFAULT_SEED,
    data_source: str | None = None,
) -> pd.DataFrame:
    """TWFE effects of pretend programmes that start ``shift`` months early.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    outcome : str
    scale : {"rate", "log", "poisson", "count"}
    groups : sequence of str
        Analysis groups, each estimated on its own pre-period.
    shifts : sequence of int
        Negative month offsets of the pretend start.
    window_months : int
        Pretend post-period (12 or 36 months: a window of :data:`vanguard.schema.WINDOWS`
        starting at month 0).
    pre_months : int
        Pre-period before the pretend start (cut at the panel's first month).
    inference : str
        As :func:`vanguard.did.twfe.estimate_twfe`.
    n_boot, seed : int
        Bootstrap draws / permutations and their seed.
    data_source : str, optional

    Returns
    -------
    pandas.DataFrame
        Tidy schema, ``analysis="placebo"``, ``param`` = shift in months, one row per
        group x shift; ``window`` is the pretend window.

    Raises
    ------
    EstimationError
        See :func:`placebo_panel`; also for an unsupported ``window_months``.
    DataError
        For a malformed panel.
    """
    window = _window_for(window_months)
    frames = []
    for group in groups:
        for shift in shifts:
            fake = placebo_panel(panel, group, int(shift), window_months)
            # The placebo panel ends with the pretend window, so the pooled post dummy
            # covers exactly that window (a yearly window would be estimated jointly with
            # later years that do not exist here).
            res = _twfe(
                fake,
                outcome,
                scale=scale,
                groups=(group,),
                windows=("years_1_3",),
                pre_months=pre_months,
                inference=inference,
                n_boot=n_boot,
                seed=seed,
                data_source=_data_source(panel, data_source),
            )
            res["analysis"] = "placebo"
            res["window"] = window
            res["param"] = float(shift)
            res["note"] = [
                "; ".join(
                    x
                    for x in (
                        f"pretend start {shift:+d} months, data before the real "
                        "start only; expected ~0 under parallel trends",
                        n,
                    )
                    if x
                )
                for n in res["note"]
            ]
            frames.append(res)
    return schema.results_frame(pd.concat(frames, ignore_index=True))


def _twfe(panel, outcome, **kwargs) -> pd.DataFrame:
    from vanguard.did.twfe import estimate_twfe

    with warnings.catch_warnings():
        # The single-treated-area and balancing warnings of the main analysis repeat here.
        warnings.simplefilter("ignore", UserWarning)
        return estimate_twfe(panel, outcome, **kwargs)


def leave_one_site_out(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    group: str = schema.POPULATION_BASED,
    window: str = "years_1_3",
    pre_months: int = 24,
    inference: str = "auto",
    n_boot: int = 999,
    seed: int = schema.DEFAULT_SEED,
    data_source: str | None = None,
    site_group: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Re-estimate a group's TWFE effect dropping each of its sites' areas in turn.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    outcome : str
    scale : {"rate", "log", "poisson", "count"}
    group : str
        Analysis group; its sites are those the site register (for ``synthetic`` and
        ``nhs_mar`` panels) or else their areas assign to it
        (:func:`vanguard.did.persite.site_groups`).
    window : str
        Key of :data:`vanguard.schema.WINDOWS`.
    pre_months : int
    inference : str
        As :func:`vanguard.did.twfe.estimate_twfe`.
    n_boot, seed : int
    data_source : str, optional
    site_group : mapping, optional
        Site id -> treatment group (e.g. :meth:`vanguard.did.spec.Programme.site_groups`);
        it takes precedence over the vanguard register of ``data_source``.

    Returns
    -------
    pandas.DataFrame
        Tidy schema, ``analysis="leave_one_out"``, one row per site left out
        (``site`` = that site); ``n_treated`` counts the areas remaining.

    Raises
    ------
    EstimationError
        If the group has fewer than two sites (nothing would remain).
    DataError
        For a malformed panel.
    """
    areas = area_sites(panel)
    register = {**register_site_groups(_data_source(panel, data_source)), **(site_group or {})}
    sites = sorted(
        s for s, g in site_groups(areas, register, ambiguous="skip").items() if g == group
    )
    if len(sites) < 2:
        raise EstimationError(
            f"group {group!r} has {len(sites)} site(s) with an area "
            "footprint: leaving one out needs at least two"
        )
    frames = []
    area_col = panel[schema.AREA].astype(str)
    for site in sites:
        drop = [a for a, s in areas[schema.SITE].items() if site in s]
        rest = panel[~area_col.isin(drop)]
        rest.attrs = dict(panel.attrs)
        res = _twfe(
            rest,
            outcome,
            scale=scale,
            groups=(group,),
            windows=(window,),
            pre_months=pre_months,
            inference=inference,
            n_boot=n_boot,
            seed=seed,
            data_source=_data_source(panel, data_source),
        )
        res["analysis"] = "leave_one_out"
        res["site"] = site
        res["note"] = [
            "; ".join(x for x in (f"site {site} left out ({len(drop)} area(s))", n) if x)
            for n in res["note"]
        ]
        frames.append(res)
    return schema.results_frame(pd.concat(frames, ignore_index=True))
