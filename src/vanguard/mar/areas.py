"""Analysis areas for a window: the footprint, mixed areas, and the flow table.

The footprint rule
------------------
A panel over ``[start, end]`` must fold every CCG merger or boundary change that falls
inside the window (otherwise a code stops or starts reporting mid-panel). Folding more
than that merges CCGs for no reason. So the footprint is the **latest change inside
the window** (the footprint of the window's end that needs the fewest merges): April 2017
for April 2013 - March 2018, April 2019 for a panel to December 2019. With no change
inside the window the CCGs are used as they are.

Mixed areas
-----------
Folding can put CCGs with different roles into one unit: a vanguard CCG with control
CCGs (13T Newcastle Gateshead = 00F Gateshead, a care-home site, + two Newcastle
controls), or a population-based CCG with a control and a UEC CCG (15E Birmingham and
Solihull on the April 2018 footprint). Such an area is **mixed**: its members' roles
(the vanguard group of each CCG as the register names it, ``control`` if none) differ,
or it folds several CCGs one of which a site covers only in part (01K Morecambe Bay on
the April 2017 footprint takes in all of 01H Cumbria, whose North Cumbria is not in the
site). A single CCG a site covers in part (e.g. 11X Somerset) is not mixed: it is a
``part`` coverage area, as the register says.
Mixed areas are left out of the headline panel (``mixed="exclude"``) and kept in a
sensitivity (``mixed="keep"``). Whole-CCG merges of like with like (e.g. three control
CCGs into 14L Manchester) are not mixed.
"""

from __future__ import annotations

import pandas as pd

from vanguard import schema
from vanguard.mar.crosswalk import code_map, read_crosswalk
from vanguard.sites import Register, area_assignments

MIXED_RULES: tuple[str, ...] = ("exclude", "keep")

AREA_COLUMNS: tuple[str, ...] = (
    "area",
    "group",
    "site",
    "coverage",
    "members",
    "member_groups",
    "mixed",
    "quality_months",
    "min_ratio",
    "in_panel",
    "reason",
)
"""Columns of the per-area table in ``panel.attrs["areas"]``."""


def footprint_for_window(start, end, crosswalk: pd.DataFrame | None = None) -> pd.Timestamp:
    """The footprint that folds every CCG change inside ``(start, end]`` and no other.

    Parameters
    ----------
    start, end : str or Timestamp
        First and last month of the panel.
    crosswalk : pandas.DataFrame, optional
        From :func:`vanguard.mar.crosswalk.read_crosswalk`.

    Returns
    -------
    pandas.Timestamp
        The latest ``effective`` date in ``(start, end]``, or ``start`` if none.

    Raises
    ------
    ValueError
        If ``end`` precedes ``start``.
    """
    cw = read_crosswalk() if crosswalk is None else crosswalk
    first = pd.Timestamp(start).to_period("M").to_timestamp()
    last = pd.Timestamp(end).to_period("M").to_timestamp()
    if last < first:
        raise ValueError(f"end {last:%Y-%m} precedes start {first:%Y-%m}")
    inside = cw.loc[(cw["effective"] > first) & (cw["effective"] <= last), "effective"]
    return inside.max() if len(inside) else first


def member_roles(register: Register) -> tuple[dict[str, str], dict[str, str]]:
    """CCG code (as the register names it) -> its vanguard group, and -> its coverage.

    Parameters
    ----------
    register : Register
        The site register as written (codes not folded).

    Returns
    -------
    tuple of dict
        ``{code: group}`` and ``{code: "whole" | "part"}`` for every register CCG;
        CCGs in no footprint are absent (controls).
    """
    raw = area_assignments(register)
    return (
        dict(zip(raw["area"], raw["group"], strict=True)),
        dict(zip(raw["area"], raw["coverage"], strict=True)),
    )


def area_table(
    codes_in_window: pd.DataFrame,
    footprint,
    register: Register,
    folded_assign: pd.DataFrame,
    crosswalk: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per analysis area: its member CCGs, their roles, and whether it is mixed.

    Parameters
    ----------
    codes_in_window : pandas.DataFrame
        ``org_code`` of every CCG reporting in the window (before folding).
    footprint : str or Timestamp
    register : Register
        The site register as written (unfolded codes).
    folded_assign : pandas.DataFrame
        :func:`vanguard.sites.area_assignments` of the folded register.
    crosswalk : pandas.DataFrame, optional

    Returns
    -------
    pandas.DataFrame
        ``area``, ``group``, ``site``, ``coverage``, ``members`` and ``member_groups``
        (``;``-joined, in member order), ``mixed`` (bool); sorted by area.
    """
    cw = read_crosswalk() if crosswalk is None else crosswalk
    mapping = code_map(footprint, cw)
    roles, coverage = member_roles(register)
    # A merger's successor reporting after the merger is the same population as its
    # predecessors, not a member with a role of its own, unless the register names it.
    folded_to = set(mapping.values()) & set(cw.loc[cw["kind"] == "merger", "successor_code"])
    codes = sorted(set(codes_in_window["org_code"]))
    members: dict[str, list[str]] = {}
    for c in codes:
        if c in folded_to and c not in roles:
            members.setdefault(c, [])
            continue
        members.setdefault(mapping.get(c, c), []).append(c)
    fa = folded_assign.set_index("area")
    rows = []
    for area, mem in sorted(members.items()):
        # A successor code named in the register (a site listed after its merger) is a
        # member in its own right: its role is the register's.
        mem_roles = [roles.get(m, schema.CONTROL) for m in mem]
        if area in roles and area not in mem:
            mem, mem_roles = [*mem, area], [*mem_roles, roles[area]]
        group = fa.at[area, "group"] if area in fa.index else schema.CONTROL
        if not mem:
            # Only the successor reports in the window: one unit, in its folded group.
            mem, mem_roles = [area], [group]
        rows.append(
            {
                "area": area,
                "group": group,
                "site": fa.at[area, "site"] if area in fa.index else "",
                "coverage": fa.at[area, "coverage"] if area in fa.index else "",
                "members": ";".join(mem),
                "member_groups": ";".join(mem_roles),
                # Different roles, or a fold that takes in the uncovered rest of a
                # partly covered vanguard CCG (01H's North Cumbria folded with 01K into
                # the Morecambe Bay unit): either way control population is labelled
                # treated.
                "mixed": len(set(mem_roles)) > 1
                or (len(mem) > 1 and any(coverage.get(m) == "part" for m in mem)),
            }
        )
    return pd.DataFrame(rows)


FLOW_STEPS: tuple[str, ...] = (
    "sites",
    "register CCGs",
    "analysis areas",
    "mixed areas",
    "areas failing the data-quality rule",
    "panel areas",
)


def flow_table(areas: pd.DataFrame | list, register: Register | None = None) -> pd.DataFrame:
    """Sites -> CCGs -> analysis areas -> panel, by group, as a tidy table.

    Parameters
    ----------
    areas : pandas.DataFrame or list of dict
        A panel from :func:`vanguard.mar.build_panel` (its ``attrs["areas"]`` is used),
        or those records themselves (columns :data:`AREA_COLUMNS`).
    register : Register, optional
        The register the panel was built from; default the committed one.

    Returns
    -------
    pandas.DataFrame
        ``step`` (one of :data:`FLOW_STEPS`), ``group`` (a :data:`vanguard.schema.GROUPS`
        value), ``n``, ``codes`` (``;``-joined site ids or area codes; empty for
        controls' long lists) and ``note``; one row per step x group.

    Raises
    ------
    ValueError
        If ``areas`` lacks a column of :data:`AREA_COLUMNS`.
    """
    if isinstance(areas, pd.DataFrame) and "areas" in areas.attrs:
        areas = areas.attrs["areas"]
    a = pd.DataFrame(areas)
    missing = [c for c in AREA_COLUMNS if c not in a.columns]
    if missing:
        raise ValueError(f"flow_table: expected the area records {list(AREA_COLUMNS)}; "
                         f"missing {missing}")
    if register is None:
        from vanguard.sites import load_register

        register = load_register()
    groups = list(schema.GROUPS)
    sites = register.sites[register.sites["footprint"] == "area"]
    site_group = sites["type"].map(schema.SITE_TYPE_GROUP)
    raw = area_assignments(register)
    rows = []

    def add(step, group, codes, note=""):
        codes = sorted(set(codes), key=lambda c: (len(c), c))  # site 2 before site 10
        rows.append(
            {
                "step": step,
                "group": group,
                "n": len(codes),
                "codes": "" if group == schema.CONTROL and step != "mixed areas"
                and len(codes) > 12 else ";".join(codes),
                "note": note,
            }
        )

    for g in groups:
        add("sites", g, sites.loc[site_group == g, "site_id"].astype(str),
            "sites by type; a CCG in a population-based and a care-home site is 'both'"
            if g == schema.BOTH else "")
        members = [m for mem, grp in zip(a["members"], a["member_groups"], strict=True)
                   for m, r in zip(mem.split(";"), grp.split(";"), strict=True) if r == g]
        add("register CCGs", g, raw.loc[raw["group"] == g, "area"] if g != schema.CONTROL
            else members, "CCGs reporting in the window" if g == schema.CONTROL else "")
        add("analysis areas", g, a.loc[a["group"] == g, "area"])
        add("mixed areas", g, a.loc[(a["group"] == g) & a["mixed"], "area"])
        add("areas failing the data-quality rule", g,
            a.loc[(a["group"] == g) & (a["quality_months"] > 0), "area"])
        add("panel areas", g, a.loc[(a["group"] == g) & a["in_panel"], "area"])
    out = pd.DataFrame(rows, columns=["step", "group", "n", "codes", "note"])
    order = {s: i for i, s in enumerate(FLOW_STEPS)}
    return out.sort_values(["step", "group"], key=lambda s: s.map(order) if s.name == "step"
                           else s.map({g: i for i, g in enumerate(groups)}),
                           ignore_index=True)
