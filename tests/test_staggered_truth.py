"""Every estimator on a staggered programme it was not designed for: three cohorts, effects
that grow with time and differ between cohorts, a user-defined treatment group.

Checks: estimates within 2 standard errors of the planted truth; agreement with pyfixest
and moderndid called directly; the areas reported are the areas used; every field of the
specification is honoured or refused by name.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from staggered_sim import staggered_panel

from vanguard.did import fit
from vanguard.did.spec import Programme, Spec, SpecError, TreatmentGroup

OUT = "admissions"


@pytest.fixture(scope="module")
def sim():
    return staggered_panel(seed=11)


@pytest.fixture(scope="module")
def spec(sim):
    return Spec(OUT, sim.group, inference="cluster", n_boot=199, data_source="custom")


@pytest.fixture(scope="module")
def results(sim, spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: fit.estimate(sim.panel, spec, name) for name in fit.ESTIMATORS
                if name != "twfe_poisson"}


@pytest.mark.parametrize("estimator", ["twfe", "cs_never", "cs_notyet", "imputation"])
def test_every_window_within_two_standard_errors_of_the_truth(sim, spec, results, estimator):
    main = results[estimator].query("analysis == 'main'").set_index("window")
    assert list(main.index) == [w for w, _, _ in spec.windows]
    for window, (lo, hi) in spec.window_map.items():
        est, se = main.loc[window, ["estimate", "se"]]
        truth = sim.truth(lo, hi)
        assert abs(est - truth) < 2 * se, (estimator, window, est, se, truth)
    # the planted effect grows: year 3 is clearly larger than year 1
    assert main.loc["year_3", "estimate"] < main.loc["year_1", "estimate"] - 0.3


@pytest.mark.parametrize("estimator", ["cs_never", "cs_notyet"])
def test_per_cohort_effects_recover_each_cohorts_truth(sim, results, estimator):
    cohorts = results[estimator].query("analysis == 'cohort'").set_index("window")
    assert sorted(cohorts.index) == [f"cohort_{c}" for c in sorted(sim.cohorts)]
    for c, (areas, _) in sim.cohorts.items():
        row = cohorts.loc[f"cohort_{c}"]
        assert row["n_treated"] == len(areas)
        assert abs(row["estimate"] - sim.cohort_truth(c, 36)) < 2 * row["se"], (c, row)


def test_results_report_the_areas_used(sim, results):
    for name, res in results.items():
        main = res.query("analysis == 'main'")
        assert set(main["n_treated"]) == {40}, name
        assert set(main["n_control"]) == {80}, name


def test_an_area_dropped_to_balance_the_panel_is_not_counted(sim, spec):
    p = sim.panel
    gap = (p["area"] == "X001") & (p["month"] == pd.Timestamp("2016-01-01"))
    with pytest.warns(UserWarning, match="X001"):
        res = fit.estimate(p[~gap], spec, "cs_never")
    assert set(res.query("analysis == 'main'")["n_treated"]) == {39}


def test_callaway_santanna_equals_moderndid_on_the_same_sample(sim, results):
    import moderndid

    p = sim.panel.copy()
    p["t"] = p["month"].dt.year * 12 + p["month"].dt.month
    first = p.loc[p["start"].notna(), "start"]
    start_t = p["start"].dt.year * 12 + p["start"].dt.month
    lo = (first.min().year * 12 + first.min().month) - 24
    hi = (first.max().year * 12 + first.max().month) + 35
    keep = p["t"].between(lo, hi)
    s = p[keep].copy()
    s["y"] = s[OUT] / s["population"] * 1000
    s["g"] = np.where(s["start"].notna(), start_t[keep] - lo + 1, 0).astype(int)
    s["time"] = (s["t"] - lo + 1).astype(int)
    s["uid"] = pd.factorize(s["area"], sort=True)[0] + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        att = moderndid.att_gt(data=s, yname="y", tname="time", idname="uid", gname="g",
                               control_group="nevertreated", est_method="dr", cband=False)
    ours = results["cs_never"].query("analysis == 'group_time'")
    np.testing.assert_allclose(np.sort(ours["estimate"].to_numpy()),
                               np.sort(np.asarray(att.att_gt, float)), rtol=0, atol=1e-9)


def test_twfe_equals_pyfixest_called_directly(sim, results):
    import pyfixest as pf

    p = sim.panel.copy()
    p["t"] = p["month"].dt.year * 12 + p["month"].dt.month
    start_t = p["start"].dt.year * 12 + p["start"].dt.month
    first = np.nanmin(start_t)
    rel = p["t"] - start_t
    keep = p["t"].between(first - 24, np.nanmax(start_t) + 35) & ~(rel >= 36)
    d = p[keep].copy()
    d["y"] = d[OUT] / d["population"] * 1000
    d["post"] = (rel[keep] >= 0).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols("y ~ post | area + t", data=d, vcov={"CRV1": "area"})
    row = results["twfe"].query("analysis == 'main' and window == 'years_1_3'").iloc[0]
    assert row["estimate"] == pytest.approx(float(m.coef()["post"]), abs=1e-10)
    assert row["se"] == pytest.approx(float(m.se()["post"]), rel=1e-8)


def test_imputation_equals_a_fixed_effects_fit_on_untreated_months(sim, results):
    """BJS by hand with pyfixest: area and month effects from untreated area-months,
    treated effects as observed minus imputed, averaged over years 1-3."""
    import pyfixest as pf

    p = sim.panel.copy()
    p["t"] = p["month"].dt.year * 12 + p["month"].dt.month
    start_t = p["start"].dt.year * 12 + p["start"].dt.month
    rel = p["t"] - start_t
    keep = p["t"].between(np.nanmin(start_t) - 24, np.nanmax(start_t) + 35) & ~(rel >= 36)
    d = p[keep].assign(y=lambda x: x[OUT] / x["population"] * 1000, rel=rel[keep])
    untreated = d[~(d["rel"] >= 0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols("y ~ 1 | area + t", data=untreated)
    treated = d[d["rel"] >= 0]
    tau = treated["y"].to_numpy() - np.asarray(m.predict(newdata=treated), float)
    row = results["imputation"].query("analysis == 'main' and window == 'years_1_3'").iloc[0]
    assert row["estimate"] == pytest.approx(float(tau.mean()), abs=1e-8)


def test_event_study_lags_follow_the_growing_effect(sim, spec):
    es = fit.event_study(sim.panel, spec.replace(inference="cluster"), leads=12, lags=24)
    coefs = es.query("analysis == 'event_study'").set_index("rel_time")
    sizes = {c: len(a) for c, (a, _) in sim.cohorts.items()}
    for k in range(0, 24):
        truth = sum(n * float(sim.effect(c, k)) for c, n in sizes.items()) / sum(sizes.values())
        row = coefs.loc[float(k)]
        assert abs(row["estimate"] - truth) < 3.5 * row["se"], (k, row["estimate"], truth)
    assert es.query("analysis == 'pretrend'")["p_value"].iloc[0] > 0.01


def test_quarters_refused_off_the_grid_and_used_on_it(sim, spec):
    with pytest.raises(SpecError, match="'unit'.*2016-04, 2017-02.*quarter grid"):
        fit.callaway_santanna(sim.panel, spec.replace(unit="quarter"))
    aligned = staggered_panel(seed=11, cohorts={"2016-04": (14, 0.3), "2016-10": (13, 0.15)})
    res = fit.callaway_santanna(aligned.panel, spec.replace(unit="quarter"))
    main = res.query("analysis == 'main'").set_index("window")
    assert abs(main.loc["years_1_3", "estimate"] - aligned.truth(0, 36)) < 2 * main.loc[
        "years_1_3", "se"]
    assert "quarter" in main.loc["years_1_3", "note"]


# --- every field honoured ---------------------------------------------------------------
def _main(res, window="years_1_3"):
    return res.query("analysis == 'main' and window == @window").iloc[0]


@pytest.mark.parametrize("estimator", ["twfe", "imputation"])
def test_pre_months_changes_every_estimator(sim, spec, results, estimator):
    other = fit.estimate(sim.panel, spec.replace(pre_months=12), estimator)
    assert _main(other)["n_obs"] < _main(results[estimator])["n_obs"]
    assert _main(other)["estimate"] != _main(results[estimator])["estimate"]


def test_pre_months_changes_callaway_santanna_where_it_can(sim, spec, results):
    """Post-period ATT(g,t) compare each period with the one before the start, so a shorter
    pre-period leaves them as they are; the pre-period comparisons and their test change."""
    other = fit.estimate(sim.panel, spec.replace(pre_months=12), "cs_never")
    base = results["cs_never"]
    assert _main(other)["n_obs"] < _main(base)["n_obs"]
    assert _main(other)["estimate"] == pytest.approx(_main(base)["estimate"], abs=1e-12)
    leads = (other.query("analysis == 'event_study' and rel_time < 0"),
             base.query("analysis == 'event_study' and rel_time < 0"))
    assert leads[0]["rel_time"].min() > leads[1]["rel_time"].min()
    pre = [r.query("analysis == 'pretrend'")["estimate"].iloc[0] for r in (other, base)]
    assert pre[0] != pre[1]


@pytest.mark.parametrize(
    ("estimator", "inference", "column", "analysis"),
    [
        ("twfe", "wild_bootstrap", "ci_low", "main"),
        ("twfe", "randomisation", "ci_low", "main"),
        ("cs_never", "cluster", "p_value", "pretrend"),
        ("imputation", "cluster", "p_value", "pretrend"),
    ],
)
def test_seed_changes_every_random_draw(sim, spec, estimator, inference, column, analysis):
    small = spec.replace(inference=inference, n_boot=49)
    a = fit.estimate(sim.panel, small, estimator).query("analysis == @analysis")
    b = fit.estimate(sim.panel, small.replace(seed=7), estimator).query("analysis == @analysis")
    assert a[column].to_numpy()[0] != b[column].to_numpy()[0]


@pytest.mark.parametrize(
    ("function", "change", "field"),
    [
        (fit.twfe, {"unit": "quarter"}, "unit"),
        (fit.twfe, {"controls": "notyet"}, "controls"),
        (fit.twfe, {"inference": "multiplier_bootstrap"}, "inference"),
        (fit.twfe, {"alpha": 0.1}, "alpha"),
        (fit.callaway_santanna, {"scale": "poisson"}, "scale"),
        (fit.callaway_santanna, {"inference": "wild_bootstrap"}, "inference"),
        (fit.imputation, {"controls": "notyet"}, "controls"),
        (fit.imputation, {"unit": "quarter"}, "unit"),
        (fit.imputation, {"inference": "randomisation"}, "inference"),
        (fit.per_site, {"inference": "wild_bootstrap"}, "inference"),
        (fit.per_site, {"scale": "poisson"}, "scale"),
    ],
)
def test_a_field_an_estimator_cannot_honour_is_refused_by_name(sim, spec, function, change,
                                                               field):
    with pytest.raises(SpecError, match=f"'{field}'"):
        function(sim.panel, spec.replace(**change))


def test_event_study_and_honest_refuse_what_they_cannot_do(sim, spec):
    with pytest.raises(SpecError, match="'pre_months'"):
        fit.event_study(sim.panel, spec.replace(pre_months=6), leads=12, lags=12)
    with pytest.raises(SpecError, match="'inference'"):
        fit.honest(sim.panel, spec.replace(inference="wild_bootstrap"), mbar=[1.0])
    with pytest.raises(SpecError, match="'inference'"):
        fit.event_study(sim.panel, spec.replace(inference="randomisation"), leads=6, lags=6)


@pytest.mark.parametrize(
    ("field", "value"),
    [("scale", "linear"), ("unit", "week"), ("inference", "bayes"), ("n_boot", 0),
     ("n_boot", "abc"), ("seed", -1), ("seed", 1.5), ("pre_months", True), ("alpha", 0.7),
     ("controls", "sometimes"), ("controls", ()), ("windows", ("year_9",)),
     ("windows", (("late", 12, 6),)), ("outcome", "")],
)
def test_bad_values_are_refused_when_the_spec_is_made(field, value):
    kwargs = {"outcome": OUT, "group": "g", field: value}
    with pytest.raises(SpecError, match=f"'{field}'"):
        Spec(**kwargs)


# --- comparison areas and user-defined groups --------------------------------------------
def test_explicit_controls_are_the_only_controls(sim, spec, results):
    controls = tuple(f"X{i:03d}" for i in range(41, 81))
    res = fit.estimate(sim.panel, spec.replace(controls=controls), "twfe")
    assert set(res["n_control"]) == {40}
    assert _main(res)["estimate"] != _main(results["twfe"])["estimate"]
    with pytest.raises(Exception, match="cannot be their own controls"):
        fit.estimate(sim.panel, spec.replace(controls=("X001", "X050")), "twfe")


def test_a_programme_imposes_its_own_groups(sim, spec, results):
    """Split the 40 treated areas into two made-up groups; estimating one of them uses
    only its areas, and the other group's areas are neither treated nor controls."""
    starts = sim.panel.drop_duplicates("area").set_index("area")["start"].dropna()
    early = {a: m for a, m in starts.items() if m < pd.Timestamp("2016-09-01")}
    late = {a: m for a, m in starts.items() if a not in early}
    prog = Programme((TreatmentGroup.of("early", early), TreatmentGroup.of("late", late)))
    res = fit.estimate(sim.panel, spec.replace(group="early", programme=prog), "cs_never")
    main = _main(res)
    assert main["group"] == "early" and main["n_treated"] == 14 and main["n_control"] == 80
    with pytest.raises(SpecError, match="'group'"):
        spec.replace(group="nobody", programme=prog)


def test_programme_from_a_groups_file_and_its_errors(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("group,area,start_month,site,label\n"
                    "falls,A1,2016-04,s1,Falls prevention\n"
                    "falls,A2,2016-10,s1,Falls prevention\n"
                    "frailty,A3,2017-01,,\n")
    prog = Programme.from_csv(path)
    assert prog.names == ("falls", "frailty")
    assert prog.group("falls").cohorts == {"2016-04": ("A1",), "2016-10": ("A2",)}
    assert prog.group("falls").label == "Falls prevention"
    assert prog.site_groups() == {"s1": "falls"}
    path.write_text("group,area,start_month\nfalls,A1,2016-13\n")
    with pytest.raises(Exception, match="row 2, column 'start_month'"):
        Programme.from_csv(path)
    path.write_text("group,area,start_month\nfalls,A1,2016-04\nfrailty,A1,2016-05\n")
    with pytest.raises(Exception, match="one start month"):
        Programme.from_csv(path)
    path.write_text("group,area\nfalls,A1\n")
    with pytest.raises(Exception, match="column 'start_month'"):
        Programme.from_csv(path)


def test_the_vanguard_register_is_a_programme_read_off_its_panel():
    from vanguard.panel import load_panel

    panel = load_panel("synthetic")
    prog = Programme.from_panel(panel)
    assert prog.names == ("population_based", "care_home", "uec")
    again = prog.assign(panel)
    areas = panel.drop_duplicates("area").set_index("area")
    assigned = again.drop_duplicates("area").set_index("area")
    pd.testing.assert_series_equal(areas["group"].astype(str), assigned["group"],
                                   check_names=False)


def test_every_other_analysis_runs_on_the_staggered_programme(sim, spec):
    """HonestDiD, placebo dates, leave-one-site-out, per-site effects and power on three
    cohorts, each reporting the areas it used."""
    small = spec.replace(n_boot=49)
    # HonestDiD on two staggered cohorts on one quarter grid (monthly bounds over 60
    # event times take minutes)
    aligned = staggered_panel(seed=11, cohorts={"2016-04": (14, 0.3), "2016-10": (13, 0.15)})
    honest = fit.honest(aligned.panel, small.replace(unit="quarter"), mbar=[0.5, 1.0])
    assert set(honest["param"].dropna()) == {0.5, 1.0}
    assert (honest["ci_low"] <= honest["ci_high"]).all()
    assert honest["n_treated"].iloc[0] == 27
    placebo = fit.placebo(sim.panel, small, shifts=[-12])
    assert placebo["n_treated"].iloc[0] == 40
    # no real effect before the earliest start: the pretend effect is small beside the real
    assert abs(placebo["estimate"].iloc[0]) < 0.2
    loo = fit.leave_one_out(sim.panel, small)
    assert loo["site"].nunique() == 9 and (loo["n_treated"] < 40).all()
    sites = fit.per_site(sim.panel, small.replace(windows=("years_1_3",), inference="auto"))
    assert len(sites) == 9 and set(sites["group"]) == {sim.group}
    mde = fit.mde(sim.panel, small, powers=[0.8, 0.9], n_sims=20)
    assert list(mde["param"]) == [0.8, 0.9]
    assert mde["estimate"].iloc[0] <= mde["estimate"].iloc[1]


def test_power_and_leave_one_out_need_a_named_window(sim, spec):
    custom = spec.replace(windows=(("first_two_years", 0, 24),))
    with pytest.raises(SpecError, match="'windows'.*first_two_years"):
        fit.leave_one_out(sim.panel, custom)
    with pytest.raises(SpecError, match="'windows'.*first_two_years"):
        fit.mde(sim.panel, custom, powers=[0.8], n_sims=5)


def test_honest_bounds_on_the_poisson_scale_use_the_poisson_event_study():
    from vanguard.panel import load_panel

    panel = load_panel("synthetic")
    spec = Spec("emergency_admissions", "care_home", scale="poisson", unit="quarter",
                inference="cluster", data_source="synthetic")
    bounds = fit.honest(panel, spec, mbar=[1.0])
    assert set(bounds["estimator"]) == {"event_study_poisson"}
    robust = bounds[bounds["param"] == 1.0].iloc[0]
    plain = bounds[bounds["param"].isna()].iloc[0]
    assert robust["ci_low"] <= plain["ci_low"] and robust["ci_high"] >= plain["ci_high"]
