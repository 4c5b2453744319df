"""The flow of areas: from sites to the panel, by treatment group, as one tidy table.

Every count of areas the report prints reconciles with this table. The real-data
panel records why each CCG area is in or out (:func:`vanguard.mar.areas.flow_table`:
sites -> register CCGs -> analysis areas -> mixed -> data-quality -> panel); any
other panel (synthetic or a user's own) has its sites and panel areas.
"""

from __future__ import annotations

import pandas as pd

from vanguard import schema

COLUMNS: tuple[str, ...] = ("step", "group", "n", "codes", "note")
"""Columns of a flow table."""


def _codes(values) -> str:
    return ";".join(sorted({str(v) for v in values if str(v)}, key=lambda c: (len(c), c)))


def area_flow(panel: pd.DataFrame) -> pd.DataFrame:
    """Sites and areas of a panel, by group, in the order the data pass through.

    Parameters
    ----------
    panel : pandas.DataFrame
        A validated panel; when its ``attrs`` carry the real data's area records
        (``areas``), the full real-data flow is returned.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``n`` counts sites or areas, never people.
    """
    if "areas" in panel.attrs:
        from vanguard.mar.areas import flow_table

        return flow_table(panel).loc[:, list(COLUMNS)]
    areas = panel.drop_duplicates(schema.AREA)
    groups = [g for g in schema.GROUPS if g in set(areas[schema.GROUP])]
    groups += sorted(set(areas[schema.GROUP]) - set(groups))  # a user's own labels
    rows = []
    for step in ("sites", "panel areas"):
        for g in groups:
            in_group = areas[areas[schema.GROUP] == g]
            if step == "sites":
                if g == schema.CONTROL or schema.SITE not in areas.columns:
                    continue
                sites = [s for v in in_group[schema.SITE].astype(str) for s in v.split(";")]
                codes = _codes(sites)
            else:
                codes = _codes(in_group[schema.AREA])
            n = len(codes.split(";")) if codes else 0
            long_list = g == schema.CONTROL and n > 12
            rows.append({"step": step, "group": g, "n": n, "codes": "" if long_list else codes,
                         "note": ""})
    return pd.DataFrame(rows, columns=list(COLUMNS))
