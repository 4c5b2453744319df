"""CCG mergers and boundary changes: fold predecessor codes into successor codes.

``data/raw/ccg_crosswalk.csv`` lists one row per predecessor: ``predecessor_code``,
``predecessor_name``, ``successor_code``, ``successor_name``, ``effective``
(YYYY-MM-DD, the first day the successor reports), ``kind`` and ``note``.

``kind = merger``
    The predecessors stop reporting and the successor starts on ``effective``
    (Newcastle Gateshead 2015, Manchester 2017, six CCGs in 2018, two in 2019). The codes
    were read off the MAR files: the codes that disappear and appear that month.
``kind = boundary``
    Both codes carry on but population moved between them (South Cumbria from 01H to
    01K in April 2017); the two are combined into one unit.

Folding to a *footprint* date applies every row effective on or before that date, so
every area is one consistent unit over the months before and after.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from vanguard import config
from vanguard.errors import DataError

CROSSWALK_COLUMNS: tuple[str, ...] = (
    "predecessor_code",
    "predecessor_name",
    "successor_code",
    "successor_name",
    "effective",
    "kind",
    "note",
)
KINDS: tuple[str, ...] = ("merger", "boundary")


def read_crosswalk(path: str | Path = config.CCG_CROSSWALK) -> pd.DataFrame:
    """Read and validate the CCG crosswalk.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV with :data:`CROSSWALK_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        ``effective`` as Timestamp.

    Raises
    ------
    DataError
        If the file or a column is missing, a code or date is malformed, ``kind`` is
        unknown, a predecessor is listed twice, or a code maps to itself.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "the CCG crosswalk CSV (file not found)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in CROSSWALK_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"columns {list(CROSSWALK_COLUMNS)}", row=1, column=missing[0])
    for i, rec in enumerate(df.itertuples(index=False), start=2):
        for col in ("predecessor_code", "successor_code"):
            if not re.fullmatch(r"[0-9A-Z]{2,5}", getattr(rec, col)):
                raise DataError(
                    path,
                    "an organisation code such as 13T",
                    row=i,
                    column=col,
                    found=getattr(rec, col),
                )
        if rec.predecessor_code == rec.successor_code:
            raise DataError(
                path,
                "a successor different from the predecessor",
                row=i,
                column="successor_code",
                found=rec.successor_code,
            )
        if not re.fullmatch(r"\d{4}-\d{2}-01", rec.effective):
            raise DataError(
                path,
                "the first day of a month as YYYY-MM-DD",
                row=i,
                column="effective",
                found=rec.effective,
            )
        if rec.kind not in KINDS:
            raise DataError(
                path, f"one of {', '.join(KINDS)}", row=i, column="kind", found=rec.kind
            )
    dup = df["predecessor_code"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise DataError(
            path,
            "each predecessor once",
            row=i + 2,
            column="predecessor_code",
            found=df["predecessor_code"].iloc[i],
        )
    df["effective"] = pd.to_datetime(df["effective"], format="%Y-%m-%d")
    return df[list(CROSSWALK_COLUMNS)]


def _as_month(footprint) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(footprint)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"footprint: expected a date such as '2018-04'; got {footprint!r}"
        ) from exc
    return ts.to_period("M").to_timestamp()


def code_map(footprint, crosswalk: pd.DataFrame | None = None) -> dict[str, str]:
    """Predecessor code -> code on the ``footprint`` date (chains followed).

    Parameters
    ----------
    footprint : str or Timestamp
        Map every change effective on or before this month.
    crosswalk : pandas.DataFrame, optional
        From :func:`read_crosswalk`; default the committed file.

    Returns
    -------
    dict
        Only codes that change.

    Raises
    ------
    DataError
        If the crosswalk has a cycle.
    """
    cw = read_crosswalk() if crosswalk is None else crosswalk
    when = _as_month(footprint)
    step = dict(
        zip(
            cw.loc[cw["effective"] <= when, "predecessor_code"],
            cw.loc[cw["effective"] <= when, "successor_code"],
            strict=True,
        )
    )
    out = {}
    for code in step:
        seen, cur = {code}, step[code]
        while cur in step:
            if cur in seen:
                raise DataError(
                    config.CCG_CROSSWALK,
                    "no cycles of successor codes",
                    column="successor_code",
                    found=cur,
                )
            seen.add(cur)
            cur = step[cur]
        out[code] = cur
    return out


def successor_names(footprint, crosswalk: pd.DataFrame | None = None) -> dict[str, str]:
    """Successor code -> successor name for the changes folded at ``footprint``."""
    cw = read_crosswalk() if crosswalk is None else crosswalk
    mapping = code_map(footprint, cw)
    names = dict(zip(cw["successor_code"], cw["successor_name"], strict=False))
    return {succ: names[succ] for succ in set(mapping.values())}


def fold(
    table: pd.DataFrame, footprint="2018-04", crosswalk: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Fold predecessor CCGs into their successors, summing counts.

    Works on the tidy MAR table (``org_code`` ... ``value``) and on a wide area-month
    table (``area``, ``month`` and numeric count columns).

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy (has ``org_code`` and ``value``) or wide (has ``area``).
    footprint : str or Timestamp
        Apply every change effective on or before this month (e.g. ``"2018-04"``).
    crosswalk : pandas.DataFrame, optional
        From :func:`read_crosswalk`; default the committed file.

    Returns
    -------
    pandas.DataFrame
        Same columns; one row per successor per month (and measure). In the tidy table
        folded rows take the successor's name.

    Raises
    ------
    ValueError
        If the table has neither ``org_code`` nor ``area``, or ``footprint`` is not a date.
    """
    cw = read_crosswalk() if crosswalk is None else crosswalk
    mapping = code_map(footprint, cw)
    if "org_code" in table.columns and "value" in table.columns:
        out = table.copy()
        hit = out["org_code"].isin(list(mapping))
        out["org_code"] = out["org_code"].replace(mapping)
        names = successor_names(footprint, cw)
        folded_to = out["org_code"].isin(list(names))
        out.loc[folded_to, "org_name"] = out.loc[folded_to, "org_code"].map(names)
        keys = [c for c in out.columns if c != "value"]
        if not hit.any():
            return out
        return (
            out.groupby(keys, sort=False, observed=True, dropna=False)["value"]
            .sum()
            .reset_index()[list(table.columns)]
            .sort_values(["month", "org_code", "measure"], kind="stable", ignore_index=True)
        )
    if "area" in table.columns:
        out = table.copy()
        out["area"] = out["area"].replace(mapping)
        num = [
            c
            for c in out.columns
            if c not in ("area", "month") and pd.api.types.is_numeric_dtype(out[c])
        ]
        keys = [c for c in out.columns if c not in num]
        return (
            out.groupby(keys, sort=True, observed=True, dropna=False)[num]
            .sum()
            .reset_index()[list(table.columns)]
        )
    raise ValueError("fold: expected a tidy MAR table (org_code, value) or a wide table (area)")


def fold_areas(
    areas: pd.DataFrame, footprint, crosswalk: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Map a register's site x area rows onto the footprint's codes.

    A site whose CCG merged is represented by the successor. Coverage becomes ``part``
    unless the site covered the whole folded unit: either it names the successor itself
    (a merged code, used after the merger) whole, or it names every code folded into the
    successor, each whole.

    Parameters
    ----------
    areas : pandas.DataFrame
        Site x area rows (``site_id``, ``area``, ``area_name``, ``coverage``, ``evidence``).
    footprint : str or Timestamp
    crosswalk : pandas.DataFrame, optional

    Returns
    -------
    pandas.DataFrame
        Same columns, one row per site x folded area; ``evidence`` notes the folding.
    """
    cw = read_crosswalk() if crosswalk is None else crosswalk
    mapping = code_map(footprint, cw)
    names = successor_names(footprint, cw)
    boundary_targets = set(cw.loc[cw["kind"] == "boundary", "successor_code"])
    members: dict[str, set[str]] = {}
    for pred, succ in mapping.items():
        members.setdefault(succ, set()).add(pred)
    for succ in boundary_targets & set(members):
        members[succ].add(succ)  # a continuing code is itself part of the combined unit
    rows = []
    for (site, unit), g in areas.assign(unit=areas["area"].replace(mapping)).groupby(
        ["site_id", "unit"], sort=False
    ):
        if unit not in members:
            rows.append(g.drop(columns="unit").iloc[0].to_dict())
            continue
        listed = dict(zip(g["area"], g["coverage"], strict=True))
        all_whole = all(c == "whole" for c in listed.values())
        names_successor = unit in listed and unit not in boundary_targets
        whole = all_whole and (names_successor or members[unit] <= set(listed))
        folded = sorted(set(listed) - {unit})
        rows.append(
            {
                "site_id": site,
                "area": unit,
                "area_name": names.get(unit, g["area_name"].iloc[0]),
                "coverage": "whole" if whole else "part",
                "evidence": "; ".join(g["evidence"])
                + (
                    f" [folded {', '.join(folded)} into {unit} for the {_as_month(footprint):%Y-%m}"
                    f" footprint; coverage {'whole' if whole else 'part'}]"
                    if folded
                    else ""
                ),
            }
        )
    return pd.DataFrame(rows, columns=list(areas.columns)).reset_index(drop=True)


def changes_in_data(table: pd.DataFrame) -> pd.DataFrame:
    """Codes that stop and start reporting, month by month, in a tidy MAR table.

    Used to check the crosswalk against the files: every merger row's predecessor must
    last report the month before ``effective``, and its successor first report on it.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy MAR rows.

    Returns
    -------
    pandas.DataFrame
        ``code``, ``first``, ``last`` month each CCG code reports.
    """
    ccg = table[table["org_type"] == "CCG"]
    span = ccg.groupby("org_code", observed=True)["month"].agg(["min", "max"])
    return span.rename(columns={"min": "first", "max": "last"}).rename_axis("code").reset_index()
