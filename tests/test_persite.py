"""Per-site effects: planted truth, the TWFE identity, and coverage of the placebo interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from vanguard import schema
from vanguard.did import persite
from vanguard.errors import DataError, EstimationError

START = pd.Timestamp("2015-04-01")
MONTHS = pd.date_range("2010-04-01", "2019-03-01", freq="MS")


def make_panel(
    *,
    n_control: int = 60,
    sites: dict[str, tuple[str, int, float]] | None = None,
    seed: int = 1,
    pop_range: tuple[float, float] = (80_000, 600_000),
    area_sd: float = 0.15,
    months: pd.DatetimeIndex = MONTHS,
) -> pd.DataFrame:
    """A small panel in the schema's format with planted effects.

    ``sites`` maps site id -> (group, n_areas, effect on the rate per 1,000 per month in
    the post-period). Counts are Poisson around population x rate; each area also has a
    persistent AR(1) shock of sd ``area_sd`` on the rate, so areas differ beyond sampling.
    """
    sites = sites or {"CH1": (schema.CARE_HOME, 1, 0.0)}
    rng = np.random.default_rng(seed)
    areas = [(f"C{i:03d}", schema.CONTROL, pd.NaT, "", 0.0) for i in range(n_control)]
    k = 0
    for site, (group, n_areas, effect) in sites.items():
        for _ in range(n_areas):
            areas.append((f"T{k:03d}", group, START, site, effect))
            k += 1
    n, m = len(areas), len(months)
    names, groups, starts, site_ids, effects = (
        np.array(v, dtype=object) for v in zip(*areas, strict=True)
    )
    season = 0.4 * np.cos(2 * np.pi * (months.month.to_numpy() - 1) / 12)
    trend = 8.0 + 0.01 * np.arange(m) + season
    pop = rng.uniform(*pop_range, size=n)
    level = rng.normal(0, 0.8, size=n)
    innov = rng.normal(0, area_sd, size=(n, m))
    # AR(1) area shocks, started from the stationary distribution so early months are as
    # noisy as later ones.
    innov[:, 0] /= np.sqrt(1 - 0.6**2)
    shock = lfilter([1.0], [1.0, -0.6], innov, axis=1)
    treated = (groups != schema.CONTROL)[:, None] & (months.to_numpy()[None, :] >= START)
    rate = np.clip(
        trend + level[:, None] + shock + effects.astype(float)[:, None] * treated, 0.5, None
    )
    counts = rng.poisson(pop[:, None] * rate / 1000.0)
    return pd.DataFrame(
        {
            schema.AREA: np.repeat(names, m).astype(str),
            schema.MONTH: np.tile(months, n),
            schema.POPULATION: np.repeat(pop, m),
            "emergency_admissions": counts.ravel(),
            schema.GROUP: np.repeat(groups, m).astype(str),
            schema.START: pd.to_datetime(np.repeat(starts, m)),
            schema.SITE: np.repeat(site_ids, m).astype(str),
        }
    )


def _twfe_ols(panel, treated_areas, start, pre=24, post=36):
    """Independent check: TWFE by least squares with area and month dummies."""
    lo, hi = persite.month_offset(start, -pre), persite.month_offset(start, post)
    keep = panel[(panel.month >= lo) & (panel.month < hi)].copy()
    keep = keep[keep.area.isin(treated_areas) | (keep.group == schema.CONTROL)]
    y = 1000 * keep.emergency_admissions / keep.population
    d = (keep.area.isin(treated_areas) & (keep.month >= start)).astype(float)
    x = pd.concat(
        [
            d.rename("d"),
            pd.get_dummies(keep.area, dtype=float),
            pd.get_dummies(keep.month, drop_first=True, dtype=float),
        ],
        axis=1,
    )
    beta, *_ = np.linalg.lstsq(x.to_numpy(), y.to_numpy(), rcond=None)
    return beta[0]


def test_collapsed_change_equals_twfe_by_least_squares():
    panel = make_panel(n_control=25, sites={"CH1": (schema.CARE_HOME, 2, -0.3)}, seed=3)
    om = persite.outcome_matrix(panel, "emergency_admissions", "rate")
    change, _ = persite.area_changes(om, START, pre_months=24, window=(0, 36))
    treated = ["T000", "T001"]
    est, se, _ = persite.did_cluster(change[treated].to_numpy(), change.drop(treated).to_numpy())
    assert est == pytest.approx(_twfe_ols(panel, treated, START), abs=1e-9)
    assert se > 0


def test_per_site_recovers_planted_effects_and_groups():
    sites = {
        "EHCH1": (schema.CARE_HOME, 1, -0.8),
        "PACS1": (schema.POPULATION_BASED, 1, 0.0),
        "MCP2": (schema.POPULATION_BASED, 2, 0.6),
    }
    panel = make_panel(n_control=80, sites=sites, seed=7, area_sd=0.05)
    res = persite.per_site_effects(
        panel,
        "emergency_admissions",
        scale="rate",
        windows=("years_1_3", "year_1"),
        data_source="test",
    )
    assert list(res.columns) == list(schema.RESULT_COLUMNS)
    assert set(res.site) == set(sites)
    assert (res.analysis == "per_site").all()
    main = res[res.window == "years_1_3"].set_index("site")
    for site, (group, n_areas, effect) in sites.items():
        assert main.loc[site, "group"] == group
        assert main.loc[site, "n_treated"] == n_areas
        assert main.loc[site, "n_control"] == 80
        assert abs(main.loc[site, "estimate"] - effect) < 4 * main.loc[site, "se"]
        assert main.loc[site, "ci_low"] < main.loc[site, "estimate"] < main.loc[site, "ci_high"]
    assert main.loc["EHCH1", "p_value"] < 0.05
    assert main.loc["EHCH1", "pct"] == pytest.approx(
        100 * main.loc["EHCH1", "estimate"] / main.loc["EHCH1", "pre_mean"]
    )


@pytest.mark.slow
def test_placebo_interval_covers_at_nominal_rate_where_cluster_does_not():
    """Monte Carlo: one treated area, no effect, heterogeneous populations."""
    covered = {"conley_taber": 0, "cluster": 0}
    n_rep = 60
    for rep in range(n_rep):
        panel = make_panel(
            n_control=40,
            sites={"S": (schema.CARE_HOME, 1, 0.0)},
            seed=100 + rep,
            pop_range=(40_000, 700_000),
            months=MONTHS[24:84],
        )
        for inf in covered:
            r = persite.per_site_effects(
                panel, "emergency_admissions", inference=inf, windows=("year_1",)
            ).iloc[0]
            covered[inf] += r.ci_low <= 0 <= r.ci_high
    assert covered["conley_taber"] / n_rep >= 0.85
    # One treated cluster: the cluster-robust interval is far too narrow.
    assert covered["cluster"] / n_rep < 0.6


def test_placebo_errors_population_rescaling_widens_for_small_areas():
    rng = np.random.default_rng(0)
    pop = pd.Series(rng.uniform(20_000, 500_000, 300), index=[f"A{i}" for i in range(300)])
    change = pd.Series(rng.normal(0, np.sqrt(0.01 + 2000 / pop)), index=pop.index)
    small = persite.placebo_errors(change, population=pop, target_population=20_000)
    large = persite.placebo_errors(change, population=pop, target_population=500_000)
    # Var at 20k is 0.11 and at 500k 0.014: the rescaled spreads must follow.
    assert small.std() / large.std() == pytest.approx(np.sqrt(0.11 / 0.014), rel=0.25)


def test_bad_inputs_name_the_problem():
    panel = make_panel(n_control=5)
    bad = panel.copy()
    bad.loc[7, "emergency_admissions"] = -1
    with pytest.raises(DataError, match="row 9.*emergency_admissions"):
        persite.outcome_matrix(bad, "emergency_admissions", "rate")
    with pytest.raises(DataError, match="population"):
        persite.outcome_matrix(panel.drop(columns="population"), "emergency_admissions", "rate")
    with pytest.raises(EstimationError, match="scale"):
        persite.outcome_matrix(panel, "emergency_admissions", "poisson")
    with pytest.raises(EstimationError, match="window"):
        persite.per_site_effects(panel, "emergency_admissions", windows=("year_9",))
    short = panel[panel.month >= "2014-01-01"]
    with pytest.raises(EstimationError, match="does not cover"):
        persite.per_site_effects(short, "emergency_admissions")


def test_incomplete_area_is_dropped_with_a_warning():
    panel = make_panel(n_control=12)
    panel = panel.drop(panel.index[(panel.area == "C003") & (panel.month == "2014-06-01")])
    with pytest.warns(UserWarning, match="C003"):
        res = persite.per_site_effects(panel, "emergency_admissions")
    assert res.n_control.iloc[0] == 11


def test_collapsed_did_matches_the_main_twfe_estimator_on_the_synthetic_panel():
    """Cross-check with the project's TWFE (pyfixest) on the embedded synthetic England."""
    from vanguard import synthetic
    from vanguard.did.twfe import estimate_twfe

    panel = synthetic.generate().panel
    om = persite.outcome_matrix(panel, "emergency_admissions", "rate")
    change, _ = persite.area_changes(om, START, pre_months=24, window=(0, 36))
    group = om.areas.loc[change.index, schema.GROUP]
    treated = group.isin(schema.GROUP_MEMBERS[schema.CARE_HOME])
    est, se, _ = persite.did_cluster(change[treated], change[group == schema.CONTROL])
    main = estimate_twfe(
        panel, "emergency_admissions", groups=(schema.CARE_HOME,), windows=("years_1_3",)
    ).iloc[0]
    assert est == pytest.approx(main.estimate, rel=1e-8)
    # pyfixest also applies (N-1)/(N-K) with the month effects in K: a fraction of a percent.
    assert se == pytest.approx(main.se, rel=0.01)


def test_site_of_both_areas_takes_its_group_from_the_register_or_is_left_out_with_a_warning():
    sites = {"MCP1": (schema.POPULATION_BASED, 1, 0.0), "EHCH1": (schema.CARE_HOME, 1, 0.0)}
    panel = make_panel(n_control=20, sites=sites, seed=2)
    # A third site whose only area is in a population-based and a care-home site.
    extra = panel[panel.area == "T000"].assign(area="T999", group=schema.BOTH, site="MCP9;EHCH9")
    panel = pd.concat([panel, extra], ignore_index=True)
    with pytest.warns(UserWarning, match="MCP9.*EHCH9|EHCH9.*MCP9"):
        res = persite.per_site_effects(panel, "emergency_admissions")
    assert set(res.site) == {"MCP1", "EHCH1"}
    res = persite.per_site_effects(
        panel,
        "emergency_admissions",
        site_group={"MCP9": schema.POPULATION_BASED, "EHCH9": schema.CARE_HOME},
    ).set_index("site")
    assert res.loc["MCP9", "group"] == schema.POPULATION_BASED
    assert res.loc["EHCH9", "group"] == schema.CARE_HOME
    with pytest.raises(DataError, match="EHCH9"):
        persite.site_groups(persite.area_sites(panel))


def test_register_groups_for_the_real_and_synthetic_registers():
    real = persite.register_site_groups("nhs_mar")
    synthetic = persite.register_site_groups("synthetic")
    assert persite.register_site_groups("custom") == {}
    for groups in (real, synthetic):
        assert groups and set(groups.values()) <= set(schema.ANALYSIS_GROUPS)
    assert synthetic["EHCH01"] == schema.CARE_HOME and synthetic["UEC01"] == schema.UEC


def test_placebo_errors_take_the_sites_own_noise_level():
    """Placebo errors are put on the treated area's noise level: a site twice as noisy
    as a control gets errors twice as large (population plays no part)."""
    rng = np.random.default_rng(4)
    idx = [f"C{i}" for i in range(40)]
    change = pd.Series(rng.normal(size=40), index=idx)
    noise = pd.Series(rng.uniform(0.5, 2.0, size=40), index=idx)
    plain = persite.placebo_errors(change)
    scaled = persite.placebo_errors(change, noise=noise, target_noise=2.0)
    assert np.allclose(scaled, plain * 2.0 / noise.to_numpy())


def test_noisy_site_gets_a_wider_interval_than_a_quiet_one():
    """Same population, but one site's deviations from the control path are three times
    as large: its Conley-Taber interval must be much wider. Rescaling
    by population (the former scheme) gave both sites the same width."""
    panel = make_panel(sites={"Q1": (schema.CARE_HOME, 1, 0.0), "N1": (schema.CARE_HOME, 1, 0.0)})
    panel = panel.copy()
    pop = panel.groupby("area")["population"].transform("mean")
    panel["population"] = pop.mean()  # every area the same size
    noisy = panel["area"] == "T001"  # site N1
    ctrl = panel["group"] == schema.CONTROL
    rate = panel["emergency_admissions"] / panel["population"] * 1000
    path = rate[ctrl].groupby(panel.loc[ctrl, "month"]).mean()
    dev = rate[noisy] - panel.loc[noisy, "month"].map(path).to_numpy()
    new_rate = panel.loc[noisy, "month"].map(path).to_numpy() + dev.mean() + 3 * (dev - dev.mean())
    panel.loc[noisy, "emergency_admissions"] = np.clip(
        np.round(new_rate * panel.loc[noisy, "population"] / 1000), 1, None
    )
    res = persite.per_site_effects(panel, "emergency_admissions", scale="rate")
    width = res.set_index("site")["ci_high"] - res.set_index("site")["ci_low"]
    assert width["N1"] > 2 * width["Q1"], width
    assert res["note"].str.contains("noise level").all()
