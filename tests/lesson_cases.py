"""Hand-built results for the lesson rules: every number is chosen so the verdict it
should give can be worked out by hand from the rule's criterion.

Rows are on the rate scale with a pre-period mean of 100, so an estimate of -2 is a 2%
reduction and ``pct`` equals ``estimate``.
"""

from __future__ import annotations

import pandas as pd

from vanguard import schema
from vanguard.report_lessons import Evidence, site_heterogeneity

G = "population_based"
H = "care_home"
PRE_MEAN = 100.0


def rows(analysis: str, values: dict, estimator: str = "twfe", inference: str = "cluster",
         **extra) -> pd.DataFrame:
    """Tidy results rows: ``values`` maps (group, window[, site or param]) to
    (estimate, ci_low, ci_high) in % of the pre-period mean."""
    out = []
    for key, (b, lo, hi) in values.items():
        group, window, *rest = key
        row = dict(analysis=analysis, estimator=estimator, inference=inference,
                   outcome="emergency_admissions", scale="rate", group=group,
                   window=window, estimate=b, ci_low=lo, ci_high=hi,
                   se=(hi - lo) / 3.92, pre_mean=PRE_MEAN, **extra)
        if rest and analysis == "placebo":
            row["param"] = float(rest[0])
        elif rest:
            row["site"] = str(rest[0])
        out.append(row)
    return schema.results_frame(out)


def main(values: dict, **kw) -> pd.DataFrame:
    return rows("main", values, **kw)


def sites(group: str, effects: list[float], half_width: float,
          analysis: str = "per_site", inference: str = "conley_taber") -> pd.DataFrame:
    """One row per site, each with a symmetric 95% interval of the given half-width."""
    return rows(analysis, {(group, "years_1_3", f"S{i + 1:02d}"): (b, b - half_width, b + half_width)
                           for i, b in enumerate(effects)}, inference=inference)


def evidence(head: pd.DataFrame, **kw) -> Evidence:
    """An :class:`Evidence` with ``headline`` = ``head`` (and alternatives = ``head``
    unless given); per-site rows also fill ``heterogeneity`` as the report does."""
    per_site = kw.get("per_site")
    if per_site is not None and "heterogeneity" not in kw:
        kw["heterogeneity"] = site_heterogeneity(per_site)
    return Evidence(headline=head, alternatives=kw.pop("alternatives", head), **kw)


def all_not_supported() -> Evidence:
    """Each testable lesson's prediction fails, for the population-based group."""
    head = main({
        (G, "year_1"): (-3.0, -4.0, -2.0),  # the reduction shrinks: year 3 - year 1 = +2
        (G, "year_3"): (-1.0, -2.0, 0.0),
        (G, "years_1_3"): (-3.0, -4.0, -2.0),  # a clear pooled reduction ...
    })
    per_site = sites(G, [-2.0, -2.1, -1.9, -2.0, -2.05, -1.95], half_width=1.0)
    return evidence(
        head,
        pretrend_p={G: 0.5},
        mde_pct={G: 1.5},  # the design detects 3% reductions
        mde_shortened={G: False},
        placebo=rows("placebo", {(G, "year_1", -12): (2.0, 0.5, 3.5)}),  # rising before
        per_site=per_site,  # precise, identical sites: Q does not reject, with power
        leave_one_out=sites(G, [-3.0, -2.8, -3.2, -2.9, -3.1, -3.0], half_width=1.0,
                            analysis="leave_one_out", inference="cluster"),  # ... kept
        sustainability=main({(G, "sustainability"): (-0.2, -1.0, 0.6)}),  # gone
    )


def all_supported() -> Evidence:
    """Each testable lesson's prediction holds, for the population-based group."""
    head = main({
        (G, "year_1"): (-0.5, -1.5, 0.5),
        (G, "year_3"): (-4.0, -5.0, -3.0),
        (G, "years_1_3"): (-3.0, -4.0, -2.0),
    })
    per_site = sites(G, [-20.0, -10.0, 0.0, 10.0, 20.0], half_width=8.0)
    loo = sites(G, [-3.0, -2.5, -1.0, -3.5, -3.0], half_width=1.5, analysis="leave_one_out",
                inference="cluster")  # without S03 the interval reaches zero
    return evidence(
        head,
        pretrend_p={G: 0.5},
        mde_pct={G: 5.0},
        mde_shortened={G: False},  # simulated on the full design
        placebo=rows("placebo", {(G, "year_1", -12): (-2.0, -3.5, -0.5)}),
        per_site=per_site,
        leave_one_out=loo,
        sustainability=main({(G, "sustainability"): (-3.0, -5.0, -1.0)}),
    )


def underpowered() -> Evidence:
    """Wide intervals everywhere and a design that cannot detect the hoped-for 3%."""
    head = main({
        (G, "year_1"): (0.5, -7.5, 8.5),
        (G, "year_3"): (-1.0, -9.0, 7.0),
        (G, "years_1_3"): (-1.0, -6.0, 4.0),
    })
    return evidence(
        head,
        pretrend_p={G: 0.5},
        mde_pct={G: 6.0},
        mde_shortened={G: True},  # simulated on a shortened design: overstated
        placebo=rows("placebo", {(G, "year_1", -12): (0.5, -6.0, 7.0)}),
        per_site=sites(G, [-1.0, 1.0, 0.0], half_width=15.0),
        leave_one_out=sites(G, [-1.0, -0.5, -1.5], half_width=5.0, analysis="leave_one_out",
                            inference="cluster"),
        sustainability=main({(G, "sustainability"): (-0.5, -2.5, 1.5)}),
    )
