"""The synthetic England: reproducible files, the stated properties, and a correct truth."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from vanguard import config, schema, synthetic
from vanguard.synthetic import EffectSpec

FILES = ("panel.csv", "sites.csv", "site_areas.csv", "truth.csv", "README.md")


def _pre(panel: pd.DataFrame) -> pd.DataFrame:
    return panel[panel[schema.MONTH] < synthetic.WAVE1_START]


# --- reproducibility ----------------------------------------------------------------------


def test_regenerated_files_are_byte_identical_to_committed(tmp_path):
    synthetic.write(tmp_path)
    for name in FILES:
        committed = (config.SYNTHETIC_DIR / name).read_bytes()
        assert (tmp_path / name).read_bytes() == committed, f"{name} differs from the generator"


def test_generate_is_deterministic_and_seed_dependent():
    a, b, c = synthetic.generate(seed=7), synthetic.generate(seed=7), synthetic.generate(seed=8)
    pd.testing.assert_frame_equal(a.panel, b.panel)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not a.panel["emergency_admissions"].equals(c.panel["emergency_admissions"])
    assert set(a.site_areas["area"]) != set(c.site_areas["area"])


def test_generate_is_fast():
    synthetic.generate(seed=1)  # warm imports
    t0 = time.perf_counter()
    synthetic.generate(seed=2)
    assert time.perf_counter() - t0 < 1.5


def test_effects_do_not_change_the_design(synthetic_data):
    none = synthetic.generate(effects=EffectSpec.none())
    cols = [schema.AREA, schema.MONTH, schema.POPULATION, schema.GROUP, schema.START, schema.SITE]
    pd.testing.assert_frame_equal(none.panel[cols], synthetic_data.panel[cols])
    for o in synthetic.OUTCOMES:
        np.testing.assert_array_equal(none.expected["mu0"][o], synthetic_data.expected["mu0"][o])


# --- stated properties ----------------------------------------------------------------------


def test_areas_months_and_balance(synthetic_data):
    p = synthetic_data.panel
    assert p[schema.AREA].nunique() == 210
    assert p[schema.AREA].str.fullmatch(r"S\d{3}").all()
    months = pd.date_range("2010-04-01", "2019-03-01", freq="MS")
    assert p.groupby(schema.AREA)[schema.MONTH].apply(lambda s: s.tolist() == list(months)).all()
    assert p.attrs["data_source"] == "synthetic"


def test_populations_in_range_and_growing(synthetic_data):
    p = synthetic_data.panel
    assert p[schema.POPULATION].between(90_000, 950_000).all()
    first = p.groupby(schema.AREA)[schema.POPULATION].first()
    last = p.groupby(schema.AREA)[schema.POPULATION].last()
    growth = (last / first) ** (12 / 107) - 1
    assert growth.between(0.0, 0.015).all()


def test_pre_period_admission_rate_is_about_7_5_per_1000(synthetic_data):
    pre = _pre(synthetic_data.panel)
    rate = pre["emergency_admissions"].sum() / pre[schema.POPULATION].sum() * 1000
    assert 7.2 < rate < 7.8


@pytest.mark.parametrize(
    ("outcome", "growth"),
    [("emergency_admissions", 0.03), ("bed_days", 0.01), ("ae_attendances", 0.02)],
)
def test_national_growth_per_year(synthetic_data, outcome, growth):
    # National rate by month, regressed on time with calendar-month effects.
    agg = synthetic_data.panel.groupby(schema.MONTH)[[outcome, schema.POPULATION]].sum()
    agg = agg[agg.index < synthetic.WAVE1_START]
    y = np.log(agg[outcome] / agg[schema.POPULATION])
    t = np.arange(len(y)) / 12.0
    dummies = (agg.index.month.to_numpy()[:, None] == np.arange(1, 13)).astype(float)
    beta = np.linalg.lstsq(np.column_stack([t, dummies]), y.to_numpy(), rcond=None)[0]
    assert abs(np.expm1(beta[0]) - growth) < 0.006


def test_outcome_ratios_and_integers(synthetic_data):
    pre = _pre(synthetic_data.panel)
    by_area = pre.groupby(schema.AREA)[list(synthetic.OUTCOMES)].sum()
    beds = by_area["bed_days"] / by_area["emergency_admissions"]
    ae = by_area["ae_attendances"] / by_area["emergency_admissions"]
    assert beds.between(4, 6).mean() > 0.95 and 4.5 < beds.median() < 5.5
    assert ae.between(2, 3).mean() > 0.95 and 2.3 < ae.median() < 2.7
    for o in synthetic.OUTCOMES:
        assert synthetic_data.panel[o].dtype == np.int64
        assert (synthetic_data.panel[o] >= 0).all()


def test_winter_peak_for_admissions_summer_for_ae(synthetic_data):
    p = synthetic_data.panel.assign(moy=synthetic_data.panel[schema.MONTH].dt.month)
    # Per day, so the length of the month does not drive the comparison.
    per_day = (
        p.groupby("moy")[list(synthetic.OUTCOMES)]
        .sum()
        .div(p.groupby("moy")[schema.MONTH].first().dt.days_in_month, axis=0)
    )
    assert per_day.loc[1, "emergency_admissions"] > 1.05 * per_day.loc[7, "emergency_admissions"]
    assert per_day.loc[7, "ae_attendances"] > 1.04 * per_day.loc[1, "ae_attendances"]


def test_latent_noise_is_serially_correlated(synthetic_data):
    mu0 = synthetic_data.expected["mu0"]["emergency_admissions"]
    # Within-area log deviations from a month effect and an area trend keep the AR(1).
    resid = np.log(mu0) - np.log(mu0).mean(axis=0, keepdims=True)
    t = np.arange(mu0.shape[1])
    coef = np.polyfit(t, resid.T, 1)
    resid = resid - (coef[0][:, None] * t + coef[1][:, None])
    r1 = np.mean(np.sum(resid[:, 1:] * resid[:, :-1], axis=1) / np.sum(resid**2, axis=1))
    assert 0.5 < r1 < 0.85


def test_count_noise_matches_the_stated_dispersion(synthetic_data):
    p = synthetic_data.panel
    for o, lo, hi in (
        ("emergency_admissions", 0.85, 1.15),
        ("bed_days", 12, 18),
        ("ae_attendances", 0.85, 1.15),
    ):
        mu1 = synthetic_data.expected["mu1"][o].ravel()
        pearson = (p[o].to_numpy() - mu1) / np.sqrt(mu1)
        assert abs(pearson.mean()) < 0.1
        assert lo < pearson.var() < hi, o


def test_treated_groups_sites_and_staggered_starts(synthetic_data):
    areas = synthetic_data.panel.drop_duplicates(schema.AREA)
    counts = areas[schema.GROUP].value_counts()
    assert counts[schema.POPULATION_BASED] == 23
    assert counts[schema.CARE_HOME] == 6
    assert counts[schema.UEC] == 8
    assert counts[schema.CONTROL] == 210 - 37
    starts = areas.groupby(schema.GROUP)[schema.START].agg(["min", "max"])
    for g in (schema.POPULATION_BASED, schema.CARE_HOME):
        assert (starts.loc[g] == pd.Timestamp("2015-04-01")).all()
    assert (starts.loc[schema.UEC] == pd.Timestamp("2015-08-01")).all()
    assert areas.loc[areas[schema.GROUP] == schema.CONTROL, schema.START].isna().all()
    assert (areas.loc[areas[schema.GROUP] == schema.CONTROL, schema.SITE] == "").all()
    sites = synthetic_data.sites
    assert sites["type"].value_counts().to_dict() == {"MCP": 14, "PACS": 9, "UEC": 8, "EHCH": 6}
    assert sites["name"].str.startswith("Synthetic").all()
    assert synthetic_data.site_areas["area_name"].str.startswith("Synthetic").all()


def test_committed_files_say_they_are_synthetic():
    readme = (config.SYNTHETIC_DIR / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme
    sites = pd.read_csv(config.SYNTHETIC_DIR / "sites.csv")
    assert sites["note"].str.contains("SYNTHETIC").all()


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="n_areas"):
        synthetic.generate(n_areas=30)
    with pytest.raises(ValueError, match="months must start before"):
        synthetic.generate(start="2015-06", end="2019-03")
    with pytest.raises(ValueError, match="group"):
        EffectSpec(log_effects={("nonsense", "bed_days"): (0, 0, 0)})


# --- planted effects and the truth table ------------------------------------------------------


def _independent_truth(syn: synthetic.SyntheticData) -> pd.DataFrame:
    """The truth table recomputed with pandas from the expected values."""
    p = syn.panel[
        [schema.AREA, schema.MONTH, schema.POPULATION, schema.GROUP, schema.START, schema.SITE]
    ].copy()
    since = (p[schema.MONTH].dt.year - p[schema.START].dt.year) * 12 + (
        p[schema.MONTH].dt.month - p[schema.START].dt.month
    )
    p["since"] = since
    rows = []
    for o in synthetic.OUTCOMES:
        q = p.assign(mu0=syn.expected["mu0"][o].ravel(), mu1=syn.expected["mu1"][o].ravel())
        units = [
            (g, "", q[q[schema.GROUP].isin(schema.GROUP_MEMBERS[g])])
            for g in schema.ANALYSIS_GROUPS
        ]
        units += [
            (grp, site, d)
            for (grp, site), d in q[q[schema.SITE] != ""].groupby([schema.GROUP, schema.SITE])
        ]
        for g, site, d in units:
            for w, (lo, hi) in schema.WINDOWS.items():
                c = d[(d["since"] >= lo) & (d["since"] < hi)]
                diff = c["mu1"] - c["mu0"]
                vals = {
                    "rate": (diff / c[schema.POPULATION] * 1000).mean(),
                    "count": diff.mean(),
                    "log": np.log(c["mu1"] / c["mu0"]).mean(),
                    "poisson": np.log(c["mu1"].sum() / c["mu0"].sum()),
                }
                rows += [
                    {
                        "group": g,
                        "site": site,
                        "window": w,
                        "outcome": o,
                        "scale": s,
                        "expected": v,
                        "n_obs": len(c),
                    }
                    for s, v in vals.items()
                ]
    return pd.DataFrame(rows)


def test_truth_matches_independent_recomputation(synthetic_data):
    ours = synthetic_data.truth
    ref = _independent_truth(synthetic_data)
    m = ours.merge(
        ref,
        on=["group", "site", "window", "outcome", "scale"],
        how="outer",
        indicator=True,
        validate="one_to_one",
    )
    assert (m["_merge"] == "both").all()
    np.testing.assert_allclose(m["truth"], m["expected"], rtol=1e-9, atol=1e-12)
    assert (m["n_obs_x"] == m["n_obs_y"]).all()
    n_sites = len(synthetic_data.sites)
    assert len(ours) == (3 + n_sites) * 4 * 3 * 4


def test_committed_truth_equals_generated(synthetic_data):
    committed = pd.read_csv(config.SYNTHETIC_DIR / "truth.csv", keep_default_na=False)
    np.testing.assert_allclose(committed["truth"], synthetic_data.truth["truth"], rtol=1e-9)


def test_truth_has_the_published_shape(synthetic_data):
    t = synthetic_data.truth.set_index(["group", "site", "window", "outcome", "scale"])["truth"]
    em = "emergency_admissions"
    ch = [t[(schema.CARE_HOME, "", w, em, "rate")] for w in ("year_1", "year_2", "year_3")]
    assert ch[0] > ch[1] > ch[2] and -0.10 < ch[2] < -0.03
    assert -0.06 < t[(schema.CARE_HOME, "", "years_1_3", em, "rate")] < -0.025
    pb = schema.POPULATION_BASED
    assert t[(pb, "", "year_1", em, "rate")] == 0 and t[(pb, "", "year_2", em, "rate")] == 0
    assert -0.05 < t[(pb, "", "year_3", em, "rate")] < -0.015
    assert t[(schema.UEC, "", "years_1_3", "ae_attendances", "log")] < -0.01


def test_no_effect_before_start_or_in_controls_and_effect_persists(synthetic_data):
    since = synthetic_data.expected["since"]
    for o in synthetic.OUTCOMES:
        mu0, mu1 = synthetic_data.expected["mu0"][o], synthetic_data.expected["mu1"][o]
        np.testing.assert_array_equal(mu1[since < 0], mu0[since < 0])
    mu0 = synthetic_data.expected["mu0"]["emergency_admissions"]
    mu1 = synthetic_data.expected["mu1"]["emergency_admissions"]
    ch = (
        synthetic_data.panel.drop_duplicates(schema.AREA)[schema.GROUP] == schema.CARE_HOME
    ).to_numpy()
    eff = np.log(mu1[ch] / mu0[ch])
    s = since[ch]
    # Year 4 keeps the year-3 effect of the same site.
    np.testing.assert_allclose(eff[s == 40], eff[s == 30])
    assert np.all(eff[s == 30] < eff[s == 5])


def test_scaling_effects_scales_the_log_truth(synthetic_data):
    doubled = synthetic.generate(effects=EffectSpec().scaled(2.0))
    np.testing.assert_allclose(
        doubled.truth.query("scale == 'log'")["truth"].to_numpy(),
        2 * synthetic_data.truth.query("scale == 'log'")["truth"].to_numpy(),
        atol=1e-15,
    )
    none = synthetic.generate(effects=EffectSpec.none())
    assert (none.truth["truth"] == 0).all()


def test_poisson_truth_is_the_did_contrast_of_expected_values(synthetic_data):
    """DiD of log totals computed on mu1 minus the same DiD on mu0 isolates the planted
    effect; over the care-home years 1-3 it must equal the ``poisson`` truth exactly."""
    p = synthetic_data.panel
    pre = p[schema.MONTH].between("2013-04-01", "2015-03-01").to_numpy()
    post = p[schema.MONTH].between("2015-04-01", "2018-03-01").to_numpy()
    treated = (p[schema.GROUP] == schema.CARE_HOME).to_numpy()
    control = (p[schema.GROUP] == schema.CONTROL).to_numpy()

    def did(mu):
        lt = lambda m: np.log(mu[m].sum())  # noqa: E731
        return (lt(treated & post) - lt(treated & pre)) - (lt(control & post) - lt(control & pre))

    exp = synthetic_data.expected
    est = did(exp["mu1"]["emergency_admissions"].ravel()) - did(
        exp["mu0"]["emergency_admissions"].ravel()
    )
    truth = synthetic_data.truth.set_index(["group", "site", "window", "outcome", "scale"])[
        "truth"
    ][(schema.CARE_HOME, "", "years_1_3", "emergency_admissions", "poisson")]
    assert truth < -0.003
    assert est == pytest.approx(truth, rel=1e-9)


def test_true_effect_lookup(synthetic_data):
    row = synthetic_data.truth.iloc[5]
    assert synthetic_data.true_effect(
        row["group"], row["window"], row["outcome"], row["scale"], row["site"]
    ) == pytest.approx(row["truth"])
    with pytest.raises(KeyError):
        synthetic_data.true_effect("control", "year_1", "bed_days", "rate")


def test_main_writes_every_file(tmp_path, capsys):
    assert synthetic.main([str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)
    assert "wrote panel.csv" in capsys.readouterr().out
