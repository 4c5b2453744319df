"""House-style charts: checked through the figure's data, labels and type sizes, not pixels."""

from __future__ import annotations

import hashlib
import re

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
from vanguard.mar import crosswalk  # noqa: E402

OUT = "emergency_admissions"
GROUPS = ("population_based", "care_home", "uec")
CODE_NAMES = re.compile(r"\b(twfe|cs_never|cs_notyet|wild_bootstrap|conley_taber|"
                        r"analytic_t|imputation)\b")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _by_gid(fig, gid):
    for ax in fig.axes:
        for artist in list(ax.lines) + list(ax.collections) + list(ax.patches) + list(ax.texts):
            if artist.get_gid() == gid:
                return artist
    for t in fig.texts:
        if t.get_gid() == gid:
            return t
    raise AssertionError(f"no artist {gid!r}")


def _texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def _event_study(groups=("population_based", "care_home"), pretrend=(0.412, 0.01)):
    rows = []
    for gi, g in enumerate(groups):
        shift = -0.02 * (gi + 1)
        for k in range(-4, 9):
            b = 0.0 if k == -1 else (shift if k >= 0 else 0.001 * k)
            ci = (np.nan, np.nan) if k == -1 else (b - 0.01, b + 0.02)
            note = ("binned: all periods <= -4 (quarters)" if k == -4 else
                    "binned: all periods >= 8 (quarters)" if k == 8 else "")
            rows.append(dict(analysis="event_study", estimator="event_study", outcome=OUT,
                             scale="rate", group=g, window=f"rel_{k}", rel_time=k,
                             estimate=b, ci_low=ci[0], ci_high=ci[1], note=note))
        rows.append(dict(analysis="pretrend", estimator="event_study", outcome=OUT,
                         scale="rate", group=g, window="pre", estimate=1.0,
                         p_value=pretrend[gi % len(pretrend)]))
    return schema.results_frame(rows)


def _honest(group, original, grid):
    """HonestDiD rows: ``original`` and each grid entry are (ci_low, ci_high)."""
    rows = [dict(analysis="honestdid", estimator="cs_never", outcome=OUT, scale="rate",
                 group=group, window="post_average", param=np.nan, estimate=-0.1,
                 ci_low=original[0], ci_high=original[1])]
    rows += [dict(analysis="honestdid", estimator="cs_never", outcome=OUT, scale="rate",
                  group=group, window="post_average", param=m, estimate=-0.1,
                  ci_low=lo, ci_high=hi) for m, (lo, hi) in grid.items()]
    return schema.results_frame(rows)


def test_style_file_is_colour_blind_palette():
    rc = matplotlib.rc_params_from_file(str(config.MPL_STYLE), use_default_template=False)
    cycle = [to_hex(c).upper() for c in rc["axes.prop_cycle"].by_key()["color"]]
    assert cycle == [c.upper() for c in plots.OKABE_ITO]
    assert rc["axes.spines.top"] is False and rc["axes.spines.right"] is False


# --- event study ---------------------------------------------------------------------


def test_event_study_is_one_panel_per_group_on_a_shared_axis():
    es = _event_study(GROUPS, pretrend=(0.412, 0.01, 0.2))
    fig = plots.plot_event_study(es, unit="quarter")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    assert len({ax.get_ylim() for ax in axes}) == 1  # shared y axis
    for ax, g in zip(axes, GROUPS, strict=True):
        sub = es[(es["group"] == g) & (es["analysis"] == "event_study")].sort_values("rel_time")
        line = _by_gid(fig, f"es-{g}")
        assert line.axes is ax
        np.testing.assert_allclose(line.get_xdata(), sub["rel_time"])  # not dodged
        np.testing.assert_allclose(line.get_ydata(), sub["estimate"])
        segs = [s for s in _by_gid(fig, f"ci-{g}").get_segments()
                if len(s) and np.isfinite(s).all()]
        np.testing.assert_allclose([s[0][1] for s in segs], sub["ci_low"].dropna())
        ref = _by_gid(fig, f"ref-{g}")
        assert list(ref.get_xdata()) == [-1] and list(ref.get_ydata()) == [0]
        assert ax.get_xlabel() == "Quarters since the area's start"
        assert "per 1,000 population per month" in axes[0].get_ylabel()
    stats = _by_gid(fig, "stats-care_home").get_text()
    assert "Pre-trend test p = 0.010" in stats and "HonestDiD breakdown" in stats
    assert "p = 0.412" in _by_gid(fig, "stats-population_based").get_text()


def test_event_study_shades_each_post_year_and_labels_binned_ends():
    fig = plots.plot_event_study(_event_study(), unit="quarter")
    ax = fig.axes[0]
    y1, y2, y3 = (_by_gid(fig, f"year-{k}") for k in (1, 2, 3))
    assert y1.axes is ax
    # quarters: year 1 = event times 0..3, year 2 = 4..7, year 3 from 8 (the binned end)
    xs = [(p.get_x(), p.get_x() + p.get_width()) for p in (y1, y2, y3)]
    assert xs[0] == (-0.5, 3.5) and xs[1] == (3.5, 7.5) and xs[2] == (7.5, 8.5)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "\u2264\u22124" and ticks[-1] == "\u22658" and "4" in ticks
    months = plots.plot_event_study(_event_study().assign(note=""), unit="month")
    assert months.axes[0].get_xlabel() == "Months since the area's start"


def test_event_study_unit_read_from_binned_notes():
    fig = plots.plot_event_study(_event_study())
    assert fig.axes[0].get_xlabel().startswith("Quarters since")


def test_event_study_pretrend_override_and_missing_test():
    es = _event_study()
    fig = plots.plot_event_study(es, pretrend_p={"population_based": 0.5,
                                                 "care_home": None})
    assert "p = 0.500" in _by_gid(fig, "stats-population_based").get_text()
    assert "not available" in _by_gid(fig, "stats-care_home").get_text()


def test_event_study_rejects_missing_columns_and_nan():
    with pytest.raises(DataError, match="rel_time"):
        plots.plot_event_study(pd.DataFrame({"estimate": [1.0]}))
    es = _event_study()
    es.loc[2, "estimate"] = np.nan
    with pytest.raises(DataError, match=r"column 'estimate'"):
        plots.plot_event_study(es)


@pytest.mark.parametrize("original, grid, breakdown, text", [
    ((-0.3, 0.1), {0.0: (-0.5, 0.3)}, np.nan, "none"),  # not significant to begin with
    ((-0.3, -0.1), {0.0: (-0.3, -0.1), 0.5: (-0.4, -0.01), 1.0: (-0.6, 0.1),
                    1.5: (-0.7, -0.05)}, 0.5, "0.5"),  # the grid must hold from the start
    ((-0.3, -0.1), {0.5: (-0.4, -0.2), 1.0: (-0.5, -0.1)}, 1.0, "at least 1"),
    ((-0.3, -0.1), {0.5: (-0.6, 0.2)}, np.nan, "below 0.5"),
    ((0.1, 0.3), {1.0: (0.05, 0.6)}, 1.0, "at least 1"),  # positive effects too
])
def test_breakdown_value_is_the_last_bound_that_holds(original, grid, breakdown, text):
    s = plots.event_study_summary(_honest("care_home", original, grid)).iloc[0]
    if np.isnan(breakdown):
        assert np.isnan(s["breakdown"])
    else:
        assert s["breakdown"] == breakdown
    assert s["breakdown_text"].startswith(text)
    assert s["honest_significant"] == float(original[0] > 0 or original[1] < 0)
    assert np.isnan(s["pretrend_p"]) and s["pretrend_text"] == "not available"


def test_event_study_summary_without_honest_rows():
    s = plots.event_study_summary(_event_study()).set_index("group")
    assert s.loc["care_home", "pretrend_p"] == pytest.approx(0.01)
    assert s.loc["care_home", "breakdown_text"] == "not computed"


# --- forest --------------------------------------------------------------------------


def _per_site():
    spec = {"care_home": [("EHCH02", 0.02, 0.04), ("EHCH01", -0.05, 0.01),
                          ("EHCH10", -0.01, 0.02)],
            "population_based": [("PACS01", 0.03, 0.02), ("MCP01", -0.02, np.nan)]}
    rows = [dict(analysis="per_site", estimator="twfe", inference="conley_taber", outcome=OUT,
                 scale="rate", group=g, window="years_1_3", site=site, estimate=b, se=se,
                 ci_low=b - 0.05, ci_high=b + 0.05, n_treated=1)
            for g, sites in spec.items() for site, b, se in sites]
    return schema.results_frame(rows)


def test_forest_sorts_names_and_sizes_sites_by_weight():
    names = {"EHCH01": "Airedale care homes", "EHCH02": "Sutton homes of care"}
    fig = plots.plot_forest(_per_site(), names=names)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ch = labels.index(schema.GROUP_LABELS["care_home"])
    # sorted by estimate, not by id ("1, 10, 2"); names where the register has one
    assert labels[ch + 1:ch + 4] == ["Airedale care homes", "EHCH10", "Sutton homes of care"]
    pts = _by_gid(fig, "sites-care_home")
    np.testing.assert_allclose(pts.get_offsets()[:, 0], [-0.05, -0.01, 0.02])
    w = 1 / np.array([0.01, 0.02, 0.04]) ** 2
    sizes = pts.get_sizes()
    np.testing.assert_allclose((sizes - sizes.min()) / (sizes.max() - sizes.min()),
                               (w - w.min()) / (w.max() - w.min()))
    # a site without a standard error gets the smallest square, not a made-up weight
    pb = _by_gid(fig, "sites-population_based")
    assert pb.get_sizes()[0] < pb.get_sizes()[1]


def test_forest_iv_pool_is_named_as_not_the_headline():
    fig = plots.plot_forest(_per_site())
    w = 1 / np.array([0.04, 0.01, 0.02]) ** 2
    expected = np.sum(w * np.array([0.02, -0.05, -0.01])) / np.sum(w)
    assert _by_gid(fig, "pooled-care_home").get_xdata()[0] == pytest.approx(expected)
    caption = _by_gid(fig, "caption").get_text()
    assert "inverse-variance" in caption and "not the headline" in " ".join(caption.split())


def test_forest_draws_the_given_headline_estimate():
    headline = pd.DataFrame([dict(group="care_home", estimate=-0.0133, ci_low=-0.03,
                                  ci_high=0.01)])
    fig = plots.plot_forest(_per_site(), pooled=headline)
    assert _by_gid(fig, "pooled-care_home").get_xdata()[0] == pytest.approx(-0.0133)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "Headline estimate, all sites" in labels
    caption = " ".join(_by_gid(fig, "caption").get_text().split())
    assert "headline estimate for all the type's areas" in caption
    assert "inverse-variance weighted mean" in caption  # population-based has no headline


def test_inverse_variance_weights_sum_to_one_per_group():
    ps = _per_site()
    w = plots.inverse_variance_weights(ps)
    assert w.groupby(ps["group"]).sum().to_dict() == pytest.approx(
        {"care_home": 1.0, "population_based": 1.0})
    assert np.isnan(w[ps["site"] == "MCP01"]).all()
    assert w[ps["site"] == "EHCH01"].iloc[0] == pytest.approx(
        (1 / 0.01**2) / (1 / 0.01**2 + 1 / 0.02**2 + 1 / 0.04**2))


def test_headline_twfe_follows_the_headline_rule():
    rows = schema.results_frame([
        dict(analysis="inference", estimator="twfe", outcome=OUT, scale="rate", group=g,
             window=w, inference=i, estimate=0.1, n_treated=n)
        for g, n in (("care_home", 6), ("population_based", 23))
        for w in ("years_1_3", "year_1") for i in ("cluster", "wild_bootstrap")])
    auto = plots.headline_twfe(rows).set_index("group")["inference"].to_dict()
    assert auto == {"care_home": "wild_bootstrap", "population_based": "cluster"}
    assert set(plots.headline_twfe(rows, "wild_bootstrap")["inference"]) == {"wild_bootstrap"}
    assert plots.headline_twfe(rows, "randomisation").empty
    assert set(plots.headline_twfe(rows)["window"]) == {"years_1_3"}


def test_site_names_come_from_the_register():
    assert plots.site_names("synthetic")["PACS01"] == "Synthetic PACS site 1"
    real = plots.site_names("nhs_mar")
    assert real["1"] == "Wirral Partners" and len(real) == 50
    assert plots.site_names("custom") == {}


# --- estimator comparison ------------------------------------------------------------


def _main_rows():
    rows = []
    for g in ("population_based", "care_home"):
        for w in schema.WINDOWS:
            for k, (e, i) in enumerate((("twfe", "cluster"), ("twfe", "wild_bootstrap"),
                                        ("imputation", "analytic" if g == "population_based"
                                         else "analytic_t"))):
                b = 0.01 * k - (0.05 if g == "care_home" else 0)
                rows.append(dict(analysis="main", estimator=e, inference=i, outcome=OUT,
                                 scale="rate", group=g, window=w, estimate=b,
                                 ci_low=b - 0.02, ci_high=b + 0.02))
    return schema.results_frame(rows)


def test_estimator_comparison_has_every_estimate_and_plain_labels():
    res = _main_rows()
    fig = plots.plot_estimator_comparison(res)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left").replace("\n", " ") for ax in panels] == [
        schema.GROUP_LABELS["population_based"], schema.GROUP_LABELS["care_home"]]
    for r in res.itertuples():
        pt = _by_gid(fig, f"cmp-{r.group}-{r.window}-{r.estimator}-{r.inference}")
        assert pt.get_xdata()[0] == pytest.approx(r.estimate)
    ticks = [t.get_text() for t in panels[0].get_yticklabels()]
    # imputation uses one method per group (the headline rule's), so it gets one row
    assert ticks == ["Two-way fixed effects\ncluster-robust errors",
                     "Two-way fixed effects\nwild cluster bootstrap",
                     "Imputation (Borusyak et al.)\nanalytic errors (t interval if few areas)"]
    assert not [t for t in _texts(fig) if CODE_NAMES.search(t)]


def test_estimator_labels_cover_every_estimator_and_method():
    from vanguard.did import fit

    assert set(fit.ESTIMATORS) <= set(plots.ESTIMATOR_LABELS)
    for method in ("cluster", "wild_bootstrap", "randomisation", "analytic", "analytic_t",
                   "conley_taber"):
        assert not CODE_NAMES.search(plots.INFERENCE_LABELS[method])


# --- minimum detectable effect -------------------------------------------------------


def _power_rows():
    mde = [dict(analysis="power", estimator="twfe", outcome=OUT, scale="rate", group=g,
                window="years_1_3", param=p, estimate=m * k, pre_mean=10.0)
           for g, k in (("population_based", 1.0), ("care_home", 2.0))
           for p, m in ((0.8, 0.3), (0.9, 0.35))]
    curve = [dict(analysis="power_curve", estimator="twfe", outcome=OUT, scale="rate",
                  group="care_home", window="years_1_3", param=e, estimate=r, pre_mean=10.0,
                  pct=100 * e / 10.0)
             for e, r in ((0.0, 0.05), (0.4, 0.5), (0.6, 0.8), (1.0, 0.99))]
    return schema.results_frame(mde + curve)


def test_mde_is_one_small_chart_for_all_groups():
    fig = plots.plot_mde(_power_rows(), hoped_for_pct=3)
    assert len(fig.axes) == 1 and fig.get_figheight() < 3
    # x = 100 * MDE / pre-period mean, one row per group in the house order
    for g, k, y in (("population_based", 1.0, 0), ("care_home", 2.0, -1)):
        for p, m in ((0.8, 0.3), (0.9, 0.35)):
            pt = _by_gid(fig, f"mde-{g}-years_1_3-{p:g}")
            assert pt.get_xdata()[0] == pytest.approx(100 * m * k / 10)
            assert pt.get_ydata()[0] == y
    assert list(_by_gid(fig, "hoped-for").get_xdata()) == [3, 3]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [schema.GROUP_LABELS["population_based"], schema.GROUP_LABELS["care_home"]]
    assert "%" in fig.axes[0].get_xlabel()


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
    _by_gid(fig, "mde-population_based-years_1_3-0.8")
    with pytest.raises(AssertionError):
        _by_gid(fig, "mde-population_based-years_1_3-0.9")


# --- truth comparison and trends -----------------------------------------------------


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


def _trends():
    months = pd.date_range("2013-04-01", periods=60, freq="MS")
    return pd.DataFrame([dict(group=g, month=m, index=100 + i * k * 0.1, outcome=OUT)
                         for k, g in enumerate(("control", "care_home", "population_based"))
                         for i, m in enumerate(months)])


def _date(x):
    return matplotlib.dates.num2date(x) if isinstance(x, float) else pd.Timestamp(x)


def test_trends_mark_the_start_and_the_mergers_in_the_window():
    events = plots.merger_events(crosswalk.read_crosswalk())
    # the crosswalk's four merger waves (2017 also has the South Cumbria boundary change)
    assert [f"{m:%Y-%m}" for m in events["month"]] == ["2015-04", "2017-04", "2018-04",
                                                       "2019-04"]
    assert "boundary change" in events["label"].iloc[1]
    fig = plots.plot_trends(_trends(), first_start="2015-04-01", events=events)
    np.testing.assert_allclose(_by_gid(fig, "trend-care_home").get_ydata(),
                               100 + 0.1 * np.arange(60))
    assert _date(_by_gid(fig, "first-start").get_xdata()[0]).strftime("%Y-%m") == "2015-04"
    for month in ("2015-04", "2017-04"):
        assert _date(_by_gid(fig, f"merger-{month}").get_xdata()[0]).strftime("%Y-%m") == month
    for month in ("2018-04", "2019-04"):  # after the panel's last month: not drawn
        with pytest.raises(AssertionError):
            _by_gid(fig, f"merger-{month}")
    # the start and the 2015 wave share a month: one label names both
    assert "Start and CCG" in _by_gid(fig, "mark-2015-04").get_text()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[-1] == schema.GROUP_LABELS["control"]
    with pytest.raises(DataError):
        plots.plot_trends(_trends().drop(columns="group"))


def test_merger_events_counts_and_window():
    cw = pd.DataFrame({"successor_code": ["A", "A", "A", "B", "C", "D"],
                       "effective": pd.to_datetime(["2017-04-01"] * 4 + ["2018-04-01"] * 2),
                       "kind": ["merger", "merger", "merger", "boundary", "merger", "merger"]})
    ev = plots.merger_events(cw)
    assert ev["label"].tolist() == ["Apr 2017: 3 CCGs merged into 1; a boundary change",
                                    "Apr 2018: 2 CCGs merged into 2"]
    assert len(plots.merger_events(cw, within=("2013-04", "2018-03"))) == 1


def test_synthetic_trends_have_no_merger_marks():
    fig = plots.plot_trends(_trends(), first_start="2015-04-01")
    assert not [a for a in fig.axes[0].lines if str(a.get_gid()).startswith("merger")]


# --- type size at A4 -----------------------------------------------------------------


def _charts():
    long_names = {f"S{i}": "Mid Nottinghamshire Better Together vanguard" for i in range(40)}
    ps = schema.results_frame([
        dict(analysis="per_site", estimator="twfe", outcome=OUT, scale="rate", group=g,
             window="years_1_3", site=f"S{i}", estimate=0.01 * i, se=0.02,
             ci_low=0.01 * i - 0.04, ci_high=0.01 * i + 0.04)
        for g, n in (("population_based", 23), ("care_home", 6), ("uec", 8))
        for i in range(n)])
    es = pd.concat([_event_study(GROUPS, (0.4, 0.01, 0.2))]
                   + [_honest(g, (-0.3, 0.1), {1.0: (-0.5, 0.3)}) for g in GROUPS])
    three = pd.concat([_main_rows(), _main_rows().assign(group="uec")])
    return {
        "trends": lambda: plots.plot_trends(_trends(), "2015-04-01",
                                            plots.merger_events(crosswalk.read_crosswalk())),
        "event_study": lambda: plots.plot_event_study(es, unit="quarter"),
        "comparison": lambda: plots.plot_estimator_comparison(three),
        "forest": lambda: plots.plot_forest(ps, names=long_names),
        "mde": lambda: plots.plot_mde(_power_rows(), 3.0),
        "truth": lambda: plots.plot_truth_comparison(
            _main_rows()[lambda d: d["estimator"] == "imputation"],
            pd.DataFrame([dict(group=g, window=w, outcome=OUT, scale="rate", truth=0.0)
                          for g in ("population_based", "care_home")
                          for w in schema.WINDOWS])),
    }


@pytest.mark.parametrize("kind", list(_charts()))
def test_no_text_under_7pt_at_a4_width_even_with_the_source_note(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(tmp_path))
    fig = _charts()[kind]()
    sizes = plots.printed_font_sizes(fig)
    assert len(sizes) > 5
    assert sizes["printed_pt"].min() >= plots.MIN_FONT_PT, sizes.head(3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # save_figure warns about small type
        png = plots.save_figure(fig, kind, "r", alt_text="A chart.", data=pd.DataFrame(
            {"a": [1]}), source_note=plots.SOURCE_NHS_MAR)
    from PIL import Image

    width_in, height_in = (n / plots.DPI for n in Image.open(png).size)
    # the PNG is at most 16 cm wide, so the report does not shrink it, and short enough
    # to share an A4 page with its heading and caption
    assert width_in <= plots.A4_TEXT_WIDTH_CM / 2.54 + 0.02
    assert height_in <= 22 / 2.54
    assert plots.printed_font_sizes(fig)["printed_pt"].min() >= plots.MIN_FONT_PT


def test_small_type_is_measured_and_warned_about(tmp_path, monkeypatch):
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(tmp_path))
    fig, ax = plt.subplots(figsize=(12, 4))  # twice as wide as the page: type halves
    ax.set_title("Wide chart", fontsize=10)
    sizes = plots.printed_font_sizes(fig).set_index("text")
    assert sizes.loc["Wide chart", "printed_pt"] == pytest.approx(
        10 * (16 / 2.54) / plots._saved_width_in(fig), rel=1e-6)
    assert sizes.loc["Wide chart", "printed_pt"] < plots.MIN_FONT_PT
    with pytest.warns(UserWarning, match="below 7 pt"):
        plots.save_figure(fig, "wide", "r", alt_text="A chart.", data=pd.DataFrame({"a": [1]}),
                          source_note=plots.SOURCE_SYNTHETIC)


# --- saving --------------------------------------------------------------------------


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
    plots.save_figure(fig, "event_study_x", "r1", alt_text="An event study.", data=es,
                      source_note=plots.SOURCE_SYNTHETIC)
    notes = [t.get_text() for t in fig.texts if t.get_gid() == "source-note"]
    assert notes == [plots.SOURCE_SYNTHETIC]  # one note, even after saving twice
    captions = [t for t in fig.texts if t.get_gid() == "caption"]
    assert len(captions) == 1  # the caption survives the note, once
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


def test_site_names_missing_register(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "SYNTHETIC_DIR", tmp_path)
    with pytest.raises(DataError, match="sites.csv"):
        plots.site_names("synthetic")
    assert plots.site_names("synthetic", missing_ok=True) == {}
