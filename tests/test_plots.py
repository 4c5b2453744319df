"""House-style charts: checked through the figure's data and labels, not pixels."""

from __future__ import annotations

import hashlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from vanguard import config, plots, schema  # noqa: E402
from vanguard.errors import DataError  # noqa: E402

OUT = "emergency_admissions"


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _by_gid(fig, gid):
    for ax in fig.axes:
        for artist in list(ax.lines) + list(ax.collections):
            if artist.get_gid() == gid:
                return artist
    raise AssertionError(f"no artist {gid!r}")


def _event_study():
    rows = []
    for g, shift in (("population_based", -0.02), ("care_home", -0.05)):
        for k in range(-4, 5):
            if k == -1:
                continue
            b = shift if k >= 0 else 0.001 * k
            rows.append(dict(analysis="event_study", estimator="event_study", outcome=OUT,
                             scale="rate", group=g, window=f"rel_{k}", rel_time=k,
                             estimate=b, ci_low=b - 0.01, ci_high=b + 0.02))
    return schema.results_frame(rows)


def test_style_file_is_colour_blind_palette():
    rc = matplotlib.rc_params_from_file(str(config.MPL_STYLE), use_default_template=False)
    cycle = [to_hex(c).upper() for c in rc["axes.prop_cycle"].by_key()["color"]]
    assert cycle == [c.upper() for c in plots.OKABE_ITO]
    assert rc["axes.spines.top"] is False and rc["axes.spines.right"] is False


def test_event_study_draws_every_coefficient_and_interval():
    es = _event_study()
    fig = plots.plot_event_study(es, pretrend_p=0.4123)
    for g in ("population_based", "care_home"):
        sub = es[es["group"] == g].sort_values("rel_time")
        line = _by_gid(fig, f"es-{g}")
        np.testing.assert_allclose(line.get_ydata(), sub["estimate"])
        segs = _by_gid(fig, f"ci-{g}").get_segments()
        np.testing.assert_allclose([s[0][1] for s in segs], sub["ci_low"])
        np.testing.assert_allclose([s[1][1] for s in segs], sub["ci_high"])
    # the two groups are dodged symmetrically around the true event times
    x_pb = _by_gid(fig, "es-population_based").get_xdata()
    x_ch = _by_gid(fig, "es-care_home").get_xdata()
    np.testing.assert_allclose((x_pb + x_ch) / 2, sorted(set(es["rel_time"])))
    ref = _by_gid(fig, "reference")
    assert list(ref.get_xdata()) == [-1] and list(ref.get_ydata()) == [0]
    ax = fig.axes[0]
    assert "per 1,000 population per month" in ax.get_ylabel()
    assert "relative to start" in ax.get_xlabel()
    captions = [t.get_text() for t in fig.texts]
    assert any("pre-trend test p = 0.412" in c for c in captions)
    # the post period is shaded from just before event time 0
    patch = [p for p in ax.patches if p.get_label() == "Post period"][0]
    assert patch.get_x() == pytest.approx(-0.5)


def test_event_study_without_pretrend_has_no_p():
    fig = plots.plot_event_study(_event_study())
    assert not any("p =" in t.get_text() for t in fig.texts)


def test_event_study_rejects_missing_columns_and_nan():
    with pytest.raises(DataError, match="rel_time"):
        plots.plot_event_study(pd.DataFrame({"estimate": [1.0]}))
    es = _event_study()
    es.loc[2, "estimate"] = np.nan
    with pytest.raises(DataError, match=r"row 4, column 'estimate'"):
        plots.plot_event_study(es)


def _per_site(with_pooled=False):
    rows = [dict(analysis="per_site", estimator="twfe", outcome=OUT, scale="rate", group=g,
                 window="years_1_3", site=f"{g[:2]}{i}", estimate=b, se=se,
                 ci_low=b - 1.96 * se, ci_high=b + 1.96 * se)
            for g in ("care_home", "population_based")
            for i, (b, se) in enumerate([(-0.05, 0.01), (-0.01, 0.02), (0.02, 0.04)])]
    if with_pooled:
        rows.append(dict(analysis="per_site", estimator="twfe", outcome=OUT, scale="rate",
                         group="care_home", window="years_1_3", site="", estimate=-0.9,
                         ci_low=-1.0, ci_high=-0.8))
    return schema.results_frame(rows)


def test_forest_pools_by_inverse_variance_independently_checked():
    fig = plots.plot_forest(_per_site())
    b = np.array([-0.05, -0.01, 0.02])
    w = 1 / np.array([0.01, 0.02, 0.04]) ** 2
    expected = np.sum(w * b) / np.sum(w)
    pooled = _by_gid(fig, "pooled-care_home")
    assert pooled.get_xdata()[0] == pytest.approx(expected)
    site = _by_gid(fig, "site-population_based-po1")
    assert site.get_xdata()[0] == pytest.approx(-0.01)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sum(lab.startswith("Pooled") for lab in labels) == 2
    assert len(labels) == 8


def test_forest_uses_given_pooled_row():
    fig = plots.plot_forest(_per_site(with_pooled=True))
    assert _by_gid(fig, "pooled-care_home").get_xdata()[0] == pytest.approx(-0.9)
    caption = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "caption"][0]
    assert "inverse-variance" in caption  # population-based has no given pooled row


def _main_rows():
    return schema.results_frame([
        dict(analysis="main", estimator=e, inference=i, outcome=OUT, scale="rate", group=g,
             window=w, estimate=k * 0.01, ci_low=k * 0.01 - 0.02, ci_high=k * 0.01 + 0.02)
        for k, (e, i, g, w) in enumerate(
            (e, i, g, w) for e in ("twfe", "cs_never") for i in ("cluster", "wild_bootstrap")
            for g in ("population_based", "care_home") for w in schema.WINDOWS)])


def test_estimator_comparison_has_panel_per_group_and_every_estimate():
    res = _main_rows()
    fig = plots.plot_estimator_comparison(res)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [schema.GROUP_LABELS["population_based"],
                                                   schema.GROUP_LABELS["care_home"]]
    for r in res.itertuples():
        pt = _by_gid(fig, f"cmp-{r.group}-{r.window}-{r.estimator}-{r.inference}")
        assert pt.get_xdata()[0] == pytest.approx(r.estimate)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "twfe / wild_bootstrap" in ticks and len(ticks) == 4


def _power_rows():
    mde = [dict(analysis="power", estimator="twfe", outcome=OUT, scale="rate", group=g,
                window="years_1_3", param=p, estimate=m * k, pre_mean=10.0)
           for g, k in (("population_based", 1.0), ("care_home", 2.0))
           for p, m in ((0.5, 0.2), (0.8, 0.3), (0.9, 0.35))]
    curve = [dict(analysis="power_curve", estimator="twfe", outcome=OUT, scale="rate",
                  group="care_home", window="years_1_3", param=e, estimate=r, pre_mean=10.0,
                  pct=100 * e / 10.0)  # as did.power writes it: pct of the planted effect
             for e, r in ((0.0, 0.05), (0.4, 0.5), (0.6, 0.8), (1.0, 0.99))]
    return schema.results_frame(mde + curve)


def test_mde_points_curve_and_hoped_for_line():
    fig = plots.plot_mde(_power_rows(), hoped_for_pct=3)
    m = _by_gid(fig, "mde-care_home-years_1_3")
    np.testing.assert_allclose(m.get_xdata(), [4.0, 6.0, 7.0])  # 100 * MDE / pre_mean
    np.testing.assert_allclose(m.get_ydata(), [50, 80, 90])
    c = _by_gid(fig, "curve-care_home-years_1_3")
    np.testing.assert_allclose(c.get_xdata(), [0, 4, 6, 10])
    np.testing.assert_allclose(c.get_ydata(), [5, 50, 80, 99])
    assert list(_by_gid(fig, "hoped-for").get_xdata()) == [3, 3]
    assert "%" in fig.axes[0].get_xlabel() and "power" in fig.axes[0].get_ylabel()


def test_mde_rejects_bad_power_and_warns_on_unreached():
    rows = _power_rows()
    bad = rows.copy()
    bad.loc[0, "param"] = 80.0
    with pytest.raises(DataError, match=r"row 2, column 'param'"):
        plots.plot_mde(bad)
    nan = rows.copy()
    nan.loc[1, ["estimate", "pct"]] = np.nan
    with pytest.warns(UserWarning, match="1 minimum detectable effect"):
        fig = plots.plot_mde(nan)
    assert len(_by_gid(fig, "mde-population_based-years_1_3").get_xdata()) == 2


def test_truth_comparison_pairs_estimate_with_truth():
    res = _main_rows()
    res = res[(res["estimator"] == "twfe") & (res["inference"] == "cluster")]
    truth = pd.DataFrame([dict(group=g, window=w, outcome=OUT, scale="rate",
                               truth=-0.5 if g == "care_home" else -0.25, site="")
                          for g in ("population_based", "care_home") for w in schema.WINDOWS]
                         + [dict(group="care_home", window="years_1_3", outcome=OUT,
                                 scale="rate", truth=99.0, site="V01")])
    fig = plots.plot_truth_comparison(res, truth)
    np.testing.assert_allclose(_by_gid(fig, "truth-care_home").get_ydata(), [-0.5] * 4)
    est = res[res["group"] == "care_home"].set_index("window").loc[list(schema.WINDOWS)]
    np.testing.assert_allclose(_by_gid(fig, "est-care_home").get_ydata(), est["estimate"])
    with pytest.raises(DataError, match="planted truth"):
        plots.plot_truth_comparison(res, truth.assign(outcome="bed_days"))


def test_trends_plots_one_line_per_group():
    months = pd.date_range("2013-04-01", periods=24, freq="MS")
    trends = pd.DataFrame([dict(group=g, month=m, index=100 + i * k, outcome=OUT)
                           for k, g in enumerate(("control", "care_home", "population_based"))
                           for i, m in enumerate(months)])
    fig = plots.plot_trends(trends, first_start="2015-04-01")
    ax = fig.axes[0]
    np.testing.assert_allclose(_by_gid(fig, "trend-care_home").get_ydata(),
                               100 + np.arange(24))
    assert "Index" in ax.get_ylabel() and "Emergency admissions" in ax.get_title(loc="left")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert schema.GROUP_LABELS["control"] in labels
    start = _by_gid(fig, "first-start")
    x0 = start.get_xdata()[0]
    x0 = matplotlib.dates.num2date(x0) if isinstance(x0, float) else pd.Timestamp(x0)
    assert x0.strftime("%Y-%m") == "2015-04"
    with pytest.raises(DataError):
        plots.plot_trends(trends.drop(columns="group"))


def test_save_figure_writes_png_alt_and_data_deterministically(tmp_path, monkeypatch):
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(tmp_path))
    es = _event_study()
    paths = []
    for _ in range(2):
        fig = plots.plot_event_study(es, 0.5)
        paths.append(plots.save_figure(fig, "event_study_x", "r1", alt_text="An event study.",
                                       data=es, source_note=plots.SOURCE_SYNTHETIC))
        digest = hashlib.sha256(paths[-1].read_bytes()).hexdigest()
        paths.append(digest)
    assert paths[1] == paths[3]  # same figure -> same bytes
    png = paths[0]
    assert png == tmp_path / "r1" / "figures" / "event_study_x.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (png.parent / "event_study_x.alt.txt").read_text() == "An event study.\n"
    back = pd.read_csv(png.parent / "event_study_x.csv")
    np.testing.assert_allclose(back["estimate"], es["estimate"])
    notes = [t.get_text() for t in fig.texts if t.get_gid() == "source-note"]
    assert notes == [plots.SOURCE_SYNTHETIC]  # one note, even after saving twice
    assert not list(png.parent.glob(".*.tmp"))


@pytest.mark.parametrize("kwargs, match", [
    ({"alt_text": " "}, "alt_text"),
    ({"source_note": ""}, "source_note"),
    ({"name": "../x"}, "figure name"),
])
def test_save_figure_refuses_missing_alt_source_or_bad_name(tmp_path, monkeypatch, kwargs,
                                                            match):
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(tmp_path))
    fig, _ = plt.subplots()
    args = dict(name="f", alt_text="A chart.", source_note=plots.SOURCE_NHS_MAR)
    args.update(kwargs)
    name = args.pop("name")
    with pytest.raises(ValueError, match=match):
        plots.save_figure(fig, name, "r", data=pd.DataFrame({"a": [1]}), **args)


def test_source_notes():
    assert "not real NHS data" in plots.source_note("synthetic")
    assert "Open Government Licence" in plots.source_note("nhs_mar")
    assert "custom" in plots.source_note("custom")


def test_event_study_axis_names_its_unit():
    es = pd.DataFrame({"rel_time": [-1.0, 0.0, 1.0], "estimate": [0.0, -0.1, -0.2],
                       "ci_low": [0.0, -0.2, -0.3], "ci_high": [0.0, 0.0, -0.1],
                       "group": "care_home", "outcome": OUT, "scale": "rate"})
    ax = plots.plot_event_study(es, unit="quarter").axes[0]
    assert ax.get_xlabel().startswith("Quarters since the area's start")
