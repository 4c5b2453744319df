"""The flow of areas: from sites to the areas each model analysed, and the count keys.

Every count of areas the report prints is tied to a row of this table by a key
``"<step>|<group>"`` (groups may be joined by ``+`` to sum them, as the balance table
counts the areas in both a population-based and a care-home site with each), so a test
can parse the rendered report and check every count against the flow.

Sources, in order: ``tables/flow.csv`` written by the data notebook (columns ``step,
group, n, codes, note``); else the area labels of the run's ``data/panel.parquet``
(``panel areas`` only). The ``analysed`` and ``analysed controls`` steps always come from
the headline results (``n_treated``, ``n_control``). Areas are not people: their counts
are never suppressed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.errors import DataError
from vanguard.report_labels import label

FLOW_COLUMNS: tuple[str, ...] = ("step", "group", "n", "codes", "note")
ANALYSED = "analysed"
ANALYSED_CONTROLS = "analysed controls"
PANEL = "panel areas"
EXCLUSION_STEPS = ("mixed areas", "areas failing the data-quality rule")
STEP_LABELS: dict[str, str] = {
    "sites": "Vanguard sites (register)",
    "register CCGs": "CCGs named by the register",
    "analysis areas": "Analysis areas after folding CCG mergers",
    "mixed areas": "  excluded: mixed areas (members with different roles)",
    "areas failing the data-quality rule": "  excluded: areas failing the data-quality rule",
    PANEL: "Areas in the panel",
    ANALYSED: "Treated areas analysed (headline model)",
    ANALYSED_CONTROLS: "Comparison areas analysed (headline model)",
}


def read_flow_csv(path: Path) -> pd.DataFrame:
    """Read and check ``tables/flow.csv``.

    Raises
    ------
    DataError
        If a column is missing or ``n`` is not a non-negative whole number (naming the
        row).
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in FLOW_COLUMNS:
        if col not in df.columns:
            raise DataError(path, f"columns {list(FLOW_COLUMNS)}", column=col,
                            found=list(df.columns))
    n = pd.to_numeric(df["n"], errors="coerce")
    bad = n.isna() | (n < 0) | (n != np.floor(n))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, "a non-negative whole number of areas", row=i + 2, column="n",
                        found=df["n"].iloc[i])
    return df.assign(n=n.astype(int))[list(FLOW_COLUMNS)]


def _panel_flow(run_path: Path) -> pd.DataFrame:
    path = run_path / "data" / "panel.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=list(FLOW_COLUMNS))
    panel = pd.read_parquet(path, columns=["area", "group"])
    areas = panel.drop_duplicates("area")
    rows = [{"step": PANEL, "group": str(g), "n": int(n), "codes": "",
             "note": "distinct areas in the run's panel"}
            for g, n in areas["group"].value_counts().items()]
    return pd.DataFrame(rows, columns=list(FLOW_COLUMNS))


def build_flow(run_path: Path, head: pd.DataFrame) -> pd.DataFrame:
    """The flow table of a run, ending with the areas the headline models analysed.

    Parameters
    ----------
    run_path : pathlib.Path
    head : pandas.DataFrame
        Headline main rows of the headline outcome (one per group x window).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FLOW_COLUMNS`.

    Raises
    ------
    DataError
        If ``tables/flow.csv`` is malformed. Headline rows of one group whose counts
        differ by window are not an error: the years 1-3 count is kept and the note
        gives each window's.
    """
    path = run_path / "tables" / "flow.csv"
    flow = read_flow_csv(path) if path.is_file() else _panel_flow(run_path)
    rows = []
    for g in schema.groups_in(head["group"]):
        gg = head[head["group"] == g]
        for col, step in (("n_treated", ANALYSED), ("n_control", ANALYSED_CONTROLS)):
            vals = sorted({int(v) for v in gg[col].dropna()})
            if not vals:
                continue
            note = "from the headline results"
            if len(vals) > 1:
                # staggered starts can leave a late cohort out of a later window; the
                # flow keeps years 1-3 and says so, and other windows' counts are flagged
                by_window = dict(zip(gg["window"], gg[col], strict=True))
                n = int(by_window.get("years_1_3", max(vals)))
                note = ("differs by window: " + ", ".join(
                    f"{label('window', w)} {int(v)}" for w, v in by_window.items()
                    if pd.notna(v)))
            else:
                n = vals[0]
            rows.append({"step": step, "group": g, "n": n, "codes": "", "note": note})
    return pd.concat([flow, pd.DataFrame(rows, columns=list(FLOW_COLUMNS))],
                     ignore_index=True)


def flow_count(flow: pd.DataFrame, key: str) -> int | None:
    """The count a key names: ``"<step>|<group>[+<group>...]"`` (None when absent).

    A sum over several groups is None unless at least one of them is present; absent
    groups count zero.
    """
    step, _, groups = key.partition("|")
    wanted = set(groups.split("+"))
    # a plain scan of the few rows: the report asks for every count it prints, and a
    # frame filter per key cost more than the rest of the reconciliation
    found = [n for s, g, n in zip(flow["step"], flow["group"], flow["n"], strict=True)
             if s == step and g in wanted]
    return int(sum(found)) if found else None


def count_key(step: str, *groups: str) -> str:
    """The key of a count: see :func:`flow_count`."""
    return f"{step}|{'+'.join(groups)}"


def reconciliation_notes(flow: pd.DataFrame) -> list[str]:
    """Sentences that explain each gap between the panel and the analysed areas.

    A treated count below the panel's areas of its group (plus areas in both
    population-based and care-home sites) is explained, not hidden.
    """
    notes = []
    both = flow_count(flow, count_key(PANEL, schema.BOTH)) or 0
    for g in schema.ANALYSIS_GROUPS + tuple(sorted(set(flow["group"]) - set(schema.GROUPS))):
        n = flow_count(flow, count_key(ANALYSED, g))
        own = flow_count(flow, count_key(PANEL, g))
        if n is None or own is None:
            continue
        shared = both if g in (schema.POPULATION_BASED, schema.CARE_HOME) else 0
        name = label("group", g)
        if n == own + shared:
            if shared:
                notes.append(f"{name}: all {n} panel areas analysed, including the {shared} "
                             "in both a population-based and a care-home site.")
        elif n == own and shared:
            notes.append(f"{name}: {n} areas analysed; the {shared} area(s) in both a "
                         "population-based and a care-home site are left out of this "
                         "model, because they also belong to the other site type.")
        else:
            notes.append(f"{name}: {n} areas analysed of {own + shared} in the panel; the "
                         "model's sample rule (balanced panel, start dates in the window) "
                         f"left out {own + shared - n}.")
    ctrl = flow_count(flow, count_key(PANEL, schema.CONTROL))
    if ctrl is not None:
        used = sorted({int(v) for v in flow.loc[flow["step"] == ANALYSED_CONTROLS, "n"]})
        if used and used != [ctrl]:
            notes.append(f"Comparison areas: {ctrl} in the panel; the models used "
                         + ", ".join(map(str, used)) + ".")
    return notes


def flow_table(flow: pd.DataFrame) -> dict:
    """The flow as a report table: one row per step, one column per group.

    Returns
    -------
    dict
        A table of the content model whose cells are ``{"t": text, "key": count key}``
        for counts (so the renderers can tag them) and plain strings otherwise.
    """
    present = [g for g in schema.GROUPS if g in set(flow["group"])]
    present += sorted(set(flow["group"]) - set(schema.GROUPS))
    steps = list(dict.fromkeys(flow["step"]))
    rows = []
    for step in steps:
        cells: list = [STEP_LABELS.get(step, step)]
        for g in present:
            key = count_key(step, g)
            n = flow_count(flow, key)
            cells.append({"t": "" if n is None else f"{n:,}", "key": key if n is not None
                          else ""})
        sel = flow[flow["step"] == step]
        notes = list(dict.fromkeys(n for n in sel["note"]
                                   if n and n != "from the headline results"))
        if step in EXCLUSION_STEPS:
            # the excluded areas by code, so a reader can find each one
            codes = [c for cs in sel["codes"] for c in str(cs).split(";") if c]
            if codes:
                notes.append("areas " + ", ".join(codes))
        cells.append("; ".join(notes))
        rows.append(cells)
    return {"title": "Flow of areas: from the register to the analysis",
            "columns": ["Step"] + [label("group", g) for g in present] + ["Note"],
            "rows": rows, "id": "flow-table",
            "notes": reconciliation_notes(flow) + [
                "Counts of areas (not of people) are never suppressed. Every count of "
                "areas elsewhere in this report is one of the counts above."]}
