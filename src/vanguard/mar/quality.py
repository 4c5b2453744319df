"""Data-quality flags for the MAR panel: area-months far from the area's usual level.

The published files carry known submission problems (providers that did not submit, or
submitted with data-quality issues, as the files' own notes say). On a CCG these show
as months with a fraction of the usual activity, e.g. Calderdale (02T) and Greater
Huddersfield (03A) in May-July 2017 at about a tenth of their median. They are flagged,
never dropped: whether to exclude them is an analysis decision.
"""

from __future__ import annotations

import pandas as pd

from vanguard import schema


def flag_anomalies(
    panel: pd.DataFrame, outcomes=None, *, low: float = 0.5, high: float = 2.0
) -> pd.DataFrame:
    """Area-months whose count is below ``low`` or above ``high`` times the area's median.

    Parameters
    ----------
    panel : pandas.DataFrame
        Area x month panel (``area``, ``month`` and count columns).
    outcomes : sequence of str, optional
        Count columns to check; default every numeric column.
    low, high : float
        Ratio bounds relative to the area's median over the panel's months.

    Returns
    -------
    pandas.DataFrame
        ``area``, ``month``, ``outcome``, ``value``, ``median``, ``ratio``; one row per
        flagged area-month-outcome, sorted by outcome (in the order of ``outcomes``), area
        and month.

    Raises
    ------
    KeyError
        If an outcome is not a column of ``panel``.
    """
    if outcomes is None:
        outcomes = [
            c
            for c in panel.columns
            if c not in (schema.AREA, schema.MONTH, schema.POPULATION)
            and pd.api.types.is_numeric_dtype(panel[c])
        ]
    frames = []
    for col in outcomes:
        med = panel.groupby(schema.AREA)[col].transform("median")
        ratio = panel[col] / med.where(med > 0)
        hit = (ratio < low) | (ratio > high)
        frames.append(
            pd.DataFrame(
                {
                    "area": panel.loc[hit, schema.AREA],
                    "month": panel.loc[hit, schema.MONTH],
                    "outcome": col,
                    "value": panel.loc[hit, col],
                    "median": med[hit],
                    "ratio": ratio[hit],
                }
            )
        )
    cols = ["area", "month", "outcome", "value", "median", "ratio"]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)[cols]
    # outcomes in the order asked for (the headline first), then area and month
    rank = out["outcome"].map({c: i for i, c in enumerate(outcomes)})
    order = out.assign(_rank=rank).sort_values(["_rank", "area", "month"]).index
    return out.loc[order].reset_index(drop=True)


def describe_flags(flags: pd.DataFrame, limit: int = 6) -> str:
    """One line per area-outcome: months flagged and the lowest/highest ratio."""
    parts = []
    # flags come in the order flag_anomalies gives (headline outcome first): keep it
    for (outcome, area), g in flags.groupby(["outcome", "area"], sort=False):
        months = f"{g['month'].min():%Y-%m}" + (f"..{g['month'].max():%Y-%m}" if len(g) > 1 else "")
        parts.append(
            f"{area} {outcome} {months} ({len(g)} month(s), {g['ratio'].min():.0%}-"
            f"{g['ratio'].max():.0%} of its median)"
        )
    more = f"; and {len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


# --- the data-quality rule ---------------------------------------------------------------

QUALITY_THRESHOLD: float = 0.5
"""An area-month below this fraction of the area's median over the window is anomalous."""

QUALITY_OUTCOMES: tuple[str, ...] = (
    "non_elective_admissions",
    "elective_total",
    "first_outpatient_attendances",
    "gp_referrals_made_all",
)
"""Outcomes the rule checks: the headline outcome and the three secondary ones."""

QUALITY_RULES: tuple[str, ...] = ("drop", "keep")
"""``drop``: areas with an anomalous month leave the panel (headline); ``keep``: they stay
(the sensitivity). Setting single cells missing is not offered: the panel contract
(:mod:`vanguard.panel`) has no missing outcome values."""


def quality_hits(
    panel: pd.DataFrame,
    outcomes=QUALITY_OUTCOMES,
    *,
    threshold: float = QUALITY_THRESHOLD,
) -> pd.DataFrame:
    """Area-months the data-quality rule calls anomalous.

    The rule: for each area and each outcome in ``outcomes``, a month whose count is
    below ``threshold`` times the area's median over the panel's months is anomalous; an
    area with any anomalous month is dropped from the headline panel. The rule reads
    counts only, never ``group``, ``site`` or ``start``, so it treats vanguard and
    control areas identically. In the MAR files these months are submission problems the
    files' notes name (e.g. Heart of England NHS FT did not submit Jul 2014 - Mar 2015,
    which empties Solihull 05P and most of Birmingham CrossCity 13P; Calderdale and
    Huddersfield NHS FT data-quality issues May-Jul 2017, 02T and 03A; Gloucestershire
    non-submission Dec 2016 - Jun 2017, 11M).

    Parameters
    ----------
    panel : pandas.DataFrame
        Area x month panel.
    outcomes : sequence of str
        Columns checked; those absent from ``panel`` are skipped.
    threshold : float
        Fraction of the area's median; must be in (0, 1).

    Returns
    -------
    pandas.DataFrame
        As :func:`flag_anomalies`, low side only.

    Raises
    ------
    ValueError
        If ``threshold`` is not in (0, 1) or no outcome in ``outcomes`` is in the panel.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold: expected a fraction in (0, 1); got {threshold!r}")
    cols = [o for o in outcomes if o in panel.columns]
    if not cols:
        raise ValueError(f"quality rule: none of {list(outcomes)} is a panel column")
    flags = flag_anomalies(panel, cols, low=threshold, high=float("inf"))
    return flags[flags["ratio"] < threshold].reset_index(drop=True)


def min_ratio(panel: pd.DataFrame, outcomes=QUALITY_OUTCOMES) -> pd.Series:
    """Each area's lowest month-to-median ratio over ``outcomes`` (borderline cases show).

    Parameters
    ----------
    panel : pandas.DataFrame
        Area x month panel.
    outcomes : sequence of str
        Columns compared; those absent from ``panel`` are skipped.

    Returns
    -------
    pandas.Series
        Indexed by area.

    Raises
    ------
    ValueError
        If no outcome in ``outcomes`` is in the panel.
    """
    if not any(o in panel.columns for o in outcomes):
        raise ValueError(f"min_ratio: none of {list(outcomes)} is a panel column")
    cols = [o for o in outcomes if o in panel.columns]
    ratios = [
        panel[c] / panel.groupby(schema.AREA)[c].transform("median").where(lambda m: m > 0)
        for c in cols
    ]
    return pd.concat(ratios, axis=1).min(axis=1).groupby(panel[schema.AREA]).min()


# --- what the files' notes say -----------------------------------------------------------

NOTE_KINDS: dict[str, str] = {
    "did not submit": "did not submit",
    "data quality": "data quality",
    "estimated": "estimated values",
    "in november 2015": "submitted late",
    "revised": "revised",
}
"""Phrase in a note (lower case) -> kind of note; the first phrase found wins."""


def _kind(text: str) -> str:
    low = text.lower()
    return next((k for p, k in NOTE_KINDS.items() if p in low), "other")


def read_notes(mar_dir=None, manifest=None) -> pd.DataFrame:
    """Provider notes of every MAR file: who did not submit, submitted late, or with issues.

    Each file from April 2013 has a ``Notes`` sheet: sections headed "The following
    organisations did not submit ...", "... submitted estimated values ...", "... have
    revised their data ...", each followed by ``Code | Name`` rows, and free-text lines
    such as "Calderdale and Huddersfield NHS Foundation Trust submitted with data quality
    issues impacting non elective admissions". They say *why* an area-month is anomalous;
    the data-quality rule (:func:`quality_hits`) does not depend on them, since they name
    providers, not commissioners.

    Parameters
    ----------
    mar_dir : str or pathlib.Path, optional
        Default :func:`vanguard.config.mar_dir`.
    manifest : str or pathlib.Path, optional
        Default the committed MAR manifest.

    Returns
    -------
    pandas.DataFrame
        ``month`` (Timestamp), ``kind`` (a :data:`NOTE_KINDS` value or ``other``),
        ``code`` (provider code, empty for free text), ``text``; files without a
        ``Notes`` sheet (the 2012-13 PCT files) contribute nothing.

    Raises
    ------
    DataError
        If the manifest is invalid or a listed file is missing.
    """
    from pathlib import Path

    import xlrd

    from vanguard import config
    from vanguard.errors import DataError
    from vanguard.mar.manifest import read_manifest

    folder = Path(config.mar_dir() if mar_dir is None else mar_dir)
    man = read_manifest(config.MAR_MANIFEST if manifest is None else manifest)
    rows = []
    for rec in man.itertuples():
        f = folder / rec.file
        if not f.is_file():
            raise DataError(f, "the MAR file listed in the manifest", found="no such file")
        book = xlrd.open_workbook(f, on_demand=True)
        try:
            if "Notes" not in book.sheet_names():
                continue
            sh = book.sheet_by_name("Notes")
            section = None
            for r in range(sh.nrows):
                # The sheet's columns shift between years: read the non-empty cells.
                vals = [str(c).strip() for c in sh.row_values(r) if str(c).strip()]
                text = " ".join(vals)
                if not vals or text in ("Notes", "-") or vals[0] == "Code":
                    continue
                if text.lower().startswith("the following"):
                    section = _kind(text)
                    continue
                kind = _kind(text)
                if section is not None and kind == "other" and len(vals) > 1:
                    # A "Code | Name" row under a section header ("NA | NA": none).
                    if vals[0].upper() != "NA":
                        rows.append((rec.month, section, vals[0], " ".join(vals[1:])))
                    continue
                if kind != "other":
                    rows.append((rec.month, kind, "", text))
        finally:
            book.release_resources()
    return pd.DataFrame(rows, columns=["month", "kind", "code", "text"])
