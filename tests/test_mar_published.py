"""The published comparison figures: Morciano et al. 2020 Table 1 complete and readable."""

from __future__ import annotations

import pandas as pd

from vanguard import config, schema
from vanguard.report_content import load_published_table1


def test_table1_has_both_outcomes_for_every_group_and_window():
    t = load_published_table1()
    keys = set(zip(t["group"], t["window"], t["outcome"], strict=True))
    want = {
        (g, w, o)
        for g in (schema.POPULATION_BASED, schema.CARE_HOME)
        for w in schema.WINDOWS
        for o in ("emergency_admissions", "bed_days")
    }
    assert keys == want and len(t) == len(want)
    assert ((t["ci_low"] < t["estimate"]) & (t["estimate"] < t["ci_high"])).all()
    # The two figures a referee checks first: years 1-3, per 1,000 a month.
    ea = t[(t["outcome"] == "emergency_admissions") & (t["window"] == "years_1_3")]
    assert ea.set_index("group")["estimate"].to_dict() == {
        schema.POPULATION_BASED: -0.004,
        schema.CARE_HOME: -0.042,
    }


def test_every_row_states_source_window_and_scale():
    df = pd.read_csv(config.PUBLISHED_RESULTS, dtype=str, keep_default_na=False)
    assert {"window_start", "window_end", "baseline", "scale_note"} <= set(df.columns)
    assert (df["source_url"].str.startswith("http")).all()
    studies = " ".join(df["study"])
    for name in ("Morciano et al. 2020", "Morciano et al. 2021", "Wattal et al. 2024",
                 "Health Foundation IAU: Rushcliffe", "Nottingham City", "Wakefield care"):
        assert name in studies, name
    comparisons = df[df["study"].str.contains("Morciano|Wattal|IAU|Lloyd")]
    assert (comparisons["scale_note"] != "").all()
    assert (comparisons["window_start"] != "").all()
