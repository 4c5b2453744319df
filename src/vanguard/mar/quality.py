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
        flagged area-month-outcome, sorted.

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
    return pd.concat(frames, ignore_index=True)[cols].sort_values(
        ["outcome", "area", "month"], ignore_index=True
    )


def describe_flags(flags: pd.DataFrame, limit: int = 6) -> str:
    """One line per area-outcome: months flagged and the lowest/highest ratio."""
    parts = []
    for (outcome, area), g in flags.groupby(["outcome", "area"], sort=True):
        months = f"{g['month'].min():%Y-%m}" + (f"..{g['month'].max():%Y-%m}" if len(g) > 1 else "")
        parts.append(
            f"{area} {outcome} {months} ({len(g)} month(s), {g['ratio'].min():.0%}-"
            f"{g['ratio'].max():.0%} of its median)"
        )
    more = f"; and {len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more
