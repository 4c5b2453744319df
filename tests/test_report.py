"""The report: built from a fabricated run folder, checked as a reader and an auditor would."""

from __future__ import annotations

import json
import math
import re
import zlib
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vanguard import config, schema, sdc  # noqa: E402
from vanguard.errors import DataError  # noqa: E402

OUTCOME = "emergency_admissions"
GROUPS = ("population_based", "care_home")
TRUTH = {("population_based", w): -0.03 for w in schema.WINDOWS} | {
    ("care_home", w): -0.06 for w in schema.WINDOWS}


def fabricate_results(seed: int = 7) -> pd.DataFrame:
    """A small results set covering every analysis the report reads."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in GROUPS:
        n_treated = 31 if g == "population_based" else 6  # 6 must be suppressed
        for w in schema.WINDOWS:
            for est, inf, se in (("twfe", "cluster", 0.012), ("twfe", "wild_bootstrap", 0.015),
                                 ("cs_never", "multiplier_bootstrap", 0.018)):
                b = TRUTH[(g, w)] + float(rng.normal(0, 0.005))
                rows.append(dict(
                    data_source="synthetic", analysis="main", estimator=est, outcome=OUTCOME,
                    scale="rate", group=g, window=w, estimate=b, se=se,
                    ci_low=b - 1.96 * se, ci_high=b + 1.96 * se, p_value=0.0123 + 0.1 * se,
                    inference=inf, n_treated=n_treated, n_control=186, n_obs=9000,
                    pre_mean=8.123))
        for k in range(-6, 7):
            if k == -1:
                continue
            b = (TRUTH[(g, "year_1")] if k >= 0 else 0.0) + float(rng.normal(0, 0.004))
            rows.append(dict(data_source="synthetic", analysis="event_study",
                             estimator="event_study", outcome=OUTCOME, scale="rate", group=g,
                             window=f"rel_{k}", rel_time=float(k), estimate=b, se=0.01,
                             ci_low=b - 0.0196, ci_high=b + 0.0196, inference="cluster"))
        rows.append(dict(data_source="synthetic", analysis="pretrend", estimator="event_study",
                         outcome=OUTCOME, scale="rate", group=g, window="pre",
                         estimate=1.1, p_value=0.412 if g == "population_based" else 0.0312,
                         inference="cluster"))
        for i in range(5):
            b = TRUTH[(g, "years_1_3")] + (i - 2) * 0.03
            rows.append(dict(data_source="synthetic", analysis="per_site", estimator="twfe",
                             outcome=OUTCOME, scale="rate", group=g, window="years_1_3",
                             site=f"V{i + 1:02d}", estimate=b, se=0.01, ci_low=b - 0.0196,
                             ci_high=b + 0.0196, inference="cluster"))
        for power, mde in ((0.5, 0.04), (0.8, 0.06), (0.9, 0.07)):
            rows.append(dict(data_source="synthetic", analysis="power", estimator="twfe",
                             outcome=OUTCOME, scale="rate", group=g, window="years_1_3",
                             param=power, estimate=mde, pre_mean=8.123, inference="none"))
    return schema.results_frame(rows)


def write_panel(run_path: Path, results: pd.DataFrame) -> Path:
    """A two-month panel whose area labels match the results' treated and control counts."""
    main = results[results["analysis"] == "main"]
    groups = {g: int(main.loc[main["group"] == g, "n_treated"].iloc[0])
              for g in dict.fromkeys(main["group"])}
    groups["control"] = int(main["n_control"].iloc[0])
    rows = [dict(area=f"{g[:3]}{i:03d}", month=m, group=g, population=100_000,
                 emergency_admissions=800)
            for g, n in groups.items() for i in range(n)
            for m in pd.to_datetime(["2015-03-01", "2015-04-01"])]
    path = run_path / "data" / "panel.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)
    return path


def make_run(root: Path, monkeypatch, name: str = "fab", data_source: str = "synthetic",
             results: pd.DataFrame | None = None, truth: bool = True,
             panel: bool = True) -> str:
    """Write a fabricated run folder under ``root`` and point the project at it."""
    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(root / "reports"))
    run_path = config.run_dir(name)
    df = fabricate_results() if results is None else results
    df = df.assign(data_source=data_source)
    schema.write_results(df[df["analysis"] == "main"], run_path / "results" / "main.csv")
    schema.write_results(df[df["analysis"] != "main"], run_path / "results" / "other.csv")
    (run_path / "manifest.json").write_text(json.dumps(
        {"git_commit": "0123456789abcdef", "parameters": {"data_source": data_source}}))
    if panel:
        write_panel(run_path, df)
    if truth:
        tpath = root / "synthetic" / "truth.csv"
        tpath.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([dict(group=g, window=w, outcome=OUTCOME, scale="rate", truth=v, site="")
                      for (g, w), v in TRUTH.items()]).to_csv(tpath, index=False)
        monkeypatch.setattr(config, "SYNTHETIC_DIR", tpath.parent)
    return name


class _Collector(HTMLParser):
    """Collects images, links, table cells and the text of span classes by section."""

    def __init__(self):
        super().__init__()
        self.imgs, self.urls, self.cells, self.spans = [], [], [], []
        self.cell_attrs: list[dict] = []
        self.counts: list[tuple[str, str]] = []  # (flow key, text) of every tagged count
        self.section, self._cell, self._span, self.ids = None, None, None, set()
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "section":
            self.section = a.get("id")
        if tag == "img":
            self.imgs.append(a)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if key in a:
                self.urls.append(a[key])
        if tag in ("td", "th"):
            self._cell = []
            self._attrs = a
        if tag == "span" and a.get("class") in ("num", "truth", "count"):
            self._span = (self.section, a["class"], [], a.get("data-count", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self.cell_attrs.append(self._attrs)
            if self._attrs.get("data-count"):
                self.counts.append((self._attrs["data-count"], self.cells[-1]))
            self._cell = None
        if tag == "span" and self._span is not None:
            sec, cls, parts, key = self._span
            self.spans.append((sec, cls, "".join(parts).strip()))
            if key:
                self.counts.append((key, "".join(parts).strip()))
            self._span = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._span is not None:
            self._span[2].append(data)


def _parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    return c


def _displayed(values, digits=(0, 1, 3)) -> set[str]:
    out = set()
    for v in values:
        if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
            continue
        for d in digits:
            s = f"{float(v):.{d}f}"
            out.add("0" if s == "-0" else s.replace("-0." + "0" * d, "0." + "0" * d))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build one report for the module (typesetting is the slow step)."""
    from vanguard.report import build_report

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("run")
    run = make_run(root, mp)
    html_path, pdf_path = build_report(run)
    yield {"root": root, "run": run, "html": html_path, "pdf": pdf_path,
           "text": html_path.read_text(encoding="utf-8"), "run_path": config.run_dir(run)}
    mp.undo()


def test_outputs_written_inside_run(built):
    assert built["html"] == built["run_path"] / "report.html"
    assert built["pdf"] == built["run_path"] / "report.pdf"
    assert not list(built["run_path"].glob(".*.tmp"))


def test_every_image_has_alt_and_is_embedded(built):
    doc = _parse(built["text"])
    assert len(doc.imgs) >= 5  # event studies, forest, comparison, mde, truth
    for img in doc.imgs:
        assert img.get("alt", "").strip(), img.get("src", "")[:40]
        assert img["src"].startswith("data:image/png;base64,")


def test_no_external_resources_or_code(built):
    doc = _parse(built["text"])
    for url in doc.urls:
        assert not re.match(r"^(https?:)?//", url), url
    assert doc.scripts == 0
    assert "<link" not in built["text"].lower()
    assert "@import" not in built["text"] and "url(" not in built["text"]


def test_synthetic_banner_on_top_and_in_footer(built):
    doc = _parse(built["text"])
    assert {"data-banner", "data-footer"} <= doc.ids
    banner = re.search(r'id="data-banner"[^>]*>([^<]*)<', built["text"]).group(1)
    footer = re.search(r'id="data-footer"[^>]*>([^<]*)<', built["text"]).group(1)
    for text in (banner, footer):
        assert "SYNTHETIC" in text and "not real NHS data" in text
    assert "position: sticky" in built["text"]


def test_summary_numbers_come_from_results_and_truth(built):
    doc = _parse(built["text"])
    res = schema.read_results(sorted((built["run_path"] / "results").glob("*.csv")))
    allowed = _displayed(pd.concat([res[c].astype("float64") for c in
                                    ("estimate", "ci_low", "ci_high", "pct", "pct_ci_low",
                                     "pct_ci_high", "p_value", "n_treated", "n_control")]))
    nums = [t for sec, cls, t in doc.spans if sec == "summary" and cls == "num"]
    truths = [t for sec, cls, t in doc.spans if sec == "summary" and cls == "truth"]
    assert len(nums) >= 2 * 4  # %, its interval and the detectable effect, per group
    for t in nums:
        assert t in allowed, t
    assert sorted(truths) == sorted({f"{v:.3f}" for (g, w), v in TRUTH.items()
                                     if w == "years_1_3"})


def test_summary_states_inference_and_rule(built):
    summary = built["text"].split('id="summary"')[1].split("</section>")[0]
    assert "wild cluster bootstrap" in summary  # the most conservative available
    assert "95% interval excludes zero" in summary


def test_main_table_has_published_beside_ours(built):
    pub = pd.read_csv(config.PUBLISHED_RESULTS, dtype=str, keep_default_na=False)
    ph_y3 = pub[(pub["table1_group"] == "care_home") & (pub["table1_window"] == "year_3")
                & (pub["table1_outcome"] == OUTCOME)].iloc[0]
    cell = f"{float(ph_y3['estimate']):.3f} ({float(ph_y3['ci_low']):.3f} to " \
           f"{float(ph_y3['ci_high']):.3f})"
    assert cell in _parse(built["text"]).cells
    assert "Morciano" in built["text"]


def test_area_counts_are_shown_and_no_other_small_count_is(built):
    """Areas are not people: the care-home model's 6 treated areas are printed as 6; any
    other bare small number in a table would have to be a count of people or events."""
    doc = _parse(built["text"])
    assert doc.cells
    assert ("analysed|care_home", "6") in doc.counts
    assert sdc.MARKER not in doc.cells and "Suppressed" not in built["text"]
    undeclared = [c for c, a in zip(doc.cells, doc.cell_attrs, strict=True)
                  if not a.get("data-count") and not a.get("data-sample")]
    assert sdc.small_counts_in_cells(undeclared) == []


def test_lessons_rendered_with_evidence(built):
    lessons = pd.read_csv(config.LESSONS, keep_default_na=False)
    text = built["text"]
    for lesson in lessons["lesson"]:
        assert lesson.replace("&", "&amp;") in text
    assert "cannot be tested with these data" in text.lower()
    # care-home pre-trend p = 0.031 < 0.05 in the fabricated run
    assert "joint pre-trend test p = 0.031" in text


def test_pdf_is_a4_and_has_pages(built):
    data = built["pdf"].read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 20_000
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    if not boxes:  # object streams may compress the page tree
        for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
            try:
                boxes += re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]",
                                    zlib.decompress(m.group(1)))
            except zlib.error:
                continue
    assert boxes
    for w, h in boxes:
        assert abs(float(w) - 595.28) < 1 and abs(float(h) - 841.89) < 1
    n_pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert n_pages >= 3


def test_pdf_is_reproducible(built):
    from vanguard.report import build_report

    before = built["pdf"].read_bytes(), built["html"].read_bytes()
    html_path, pdf_path = build_report(built["run"])
    assert (pdf_path.read_bytes(), html_path.read_bytes()) == before


def test_real_data_report_has_no_synthetic_banner(tmp_path, monkeypatch):
    from vanguard.report import build_report

    res = fabricate_results()
    res = res[res["analysis"].isin(["main"])]
    run = make_run(tmp_path, monkeypatch, name="real", data_source="nhs_mar", results=res,
                   truth=False)
    html_path, _ = build_report(run)
    text = html_path.read_text(encoding="utf-8")
    assert "SYNTHETIC" not in text
    assert "Monthly Activity Return" in text
    assert "Planted truth" not in text


def test_missing_run_and_missing_results_raise(tmp_path, monkeypatch):
    from vanguard.report import build_report

    monkeypatch.setenv("VANGUARD_REPORTS_DIR", str(tmp_path))
    with pytest.raises(DataError, match="run folder"):
        build_report("nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="results"):
        build_report("empty")


def test_malformed_results_file_is_named_by_the_report(tmp_path, monkeypatch):
    """The results are read in one go, yet the report still names the bad file's cell."""
    from vanguard.report import build_report

    run = make_run(tmp_path, monkeypatch, name="badcell")
    bad = config.run_dir(run) / "results" / "other.csv"
    df = pd.read_csv(bad, dtype=str, keep_default_na=False)
    df.loc[4, "p_value"] = "0.o5"
    df.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"other\.csv: row 6, column 'p_value'"):
        build_report(run)


def test_a_build_reads_each_results_file_once(tmp_path, monkeypatch):
    """Figures, content, appendix and lessons share one read of the results files."""
    from vanguard import lesson_evidence, report_appendix
    from vanguard.report import build_report

    run = make_run(tmp_path, monkeypatch, name="once")
    results = config.run_dir(run) / "results"
    main = schema.read_results(results / "main.csv")
    sens = main.assign(sensitivity="mixed_kept", sensitivity_label="mixed areas kept")
    schema.write_results(sens, results / f"sensitivity__{OUTCOME}.csv")
    read: list[str] = []
    real_results, real_extra = schema.read_results, report_appendix.read_extra

    def spy_results(paths):
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        read.extend(Path(p).name for p in paths)
        return real_results(paths)

    def spy_extra(run_path, prefix, outcome, extra=()):
        read.append(f"{prefix}__{outcome}.csv")
        return real_extra(run_path, prefix, outcome, extra)

    def no_second_read(*args, **kwargs):
        raise AssertionError("the sensitivity file was read a second time")

    monkeypatch.setattr(schema, "read_results", spy_results)
    monkeypatch.setattr(report_appendix, "read_extra", spy_extra)
    monkeypatch.setattr("vanguard.report_content.read_extra", spy_extra)
    monkeypatch.setattr(lesson_evidence, "read_sensitivity", no_second_read)
    build_report(run)
    assert sorted(read) == ["main.csv", "other.csv", f"sensitivity__{OUTCOME}.csv",
                            f"sustainability__{OUTCOME}.csv"]


def test_figure_without_alt_text_is_refused(tmp_path, monkeypatch):
    from vanguard.report import build_report

    run = make_run(tmp_path, monkeypatch, name="noalt")
    figs = config.run_dir(run) / "figures"
    figs.mkdir(parents=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    fig.savefig(figs / "trends_x.png")
    plt.close(fig)
    with pytest.raises(DataError, match="alt text"):
        build_report(run)


def test_published_table1_loader_matches_source():
    from vanguard.report_content import load_published_table1

    t1 = load_published_table1()
    assert len(t1) == 16
    assert set(t1["window"]) == set(schema.WINDOWS)
    row = t1[(t1["group"] == "population_based") & (t1["window"] == "year_3")
             & (t1["outcome"] == OUTCOME)].iloc[0]
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == (-0.031, -0.062, -0.001)
    assert "PMC7386936" in row["source"]


def test_published_loader_names_bad_cell(tmp_path):
    from vanguard.report_content import load_published_table1

    df = pd.read_csv(config.PUBLISHED_RESULTS, dtype=str, keep_default_na=False)
    df.loc[2, "ci_low"] = "n.a."
    bad = tmp_path / "pub.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"row 4, column 'ci_low'"):
        load_published_table1(bad)


def test_headline_rule_prefers_parameters_then_conservative_inference():
    from vanguard.report_content import choose_headline

    main = fabricate_results()
    main = main[main["analysis"] == "main"]
    assert choose_headline(main, {})["inference"] == "wild_bootstrap"
    assert choose_headline(main, {"headline_inference": "cluster"})["inference"] == "cluster"
    assert choose_headline(main, {})["estimator"] == "twfe"
    with pytest.raises(DataError):
        choose_headline(main.iloc[0:0], {})


def test_count_data_report_leads_with_percent_change(tmp_path, monkeypatch):
    """MAR-like data have no populations: effects on the log scale, shown as % change."""
    from vanguard.report import build_report

    res = fabricate_results()
    res = res[res["analysis"] == "main"].assign(scale="log", pct=np.nan, pct_ci_low=np.nan,
                                                pct_ci_high=np.nan)
    res = schema.results_frame(res)  # % change re-derived as 100 * (exp(b) - 1)
    run = make_run(tmp_path, monkeypatch, name="mar", data_source="nhs_mar", results=res,
                   truth=False)
    html_path, pdf_path = build_report(run)
    text = html_path.read_text(encoding="utf-8")
    doc = _parse(text)
    summary = text.split('id="summary"')[1].split("</section>")[0]
    assert "per 1,000 per month" not in summary  # no rate is claimed without populations
    r = res[(res["group"] == "care_home") & (res["window"] == "years_1_3")
            & (res["inference"] == "wild_bootstrap")].iloc[0]
    nums = [t for sec, cls, t in doc.spans if sec == "summary" and cls == "num"]
    assert f"{100 * math.expm1(r['estimate']):.1f}" in nums
    # the published rate is never set beside log points: it appears only as % of the
    # published baseline (7.9 per 1,000 a month in the published-results file)
    pub = pd.read_csv(config.PUBLISHED_RESULTS, dtype=str, keep_default_na=False)
    p = pub[(pub["table1_group"] == "care_home") & (pub["table1_window"] == "years_1_3")
            & (pub["table1_outcome"] == OUTCOME)].iloc[0]
    raw = f"{float(p['estimate']):.3f} ({float(p['ci_low']):.3f} to {float(p['ci_high']):.3f})"
    assert raw not in doc.cells and f"{float(p['estimate']):.3f} per 1,000" not in text
    as_pct = f"{100 * float(p['estimate']) / 7.9:.1f} ({100 * float(p['ci_low']) / 7.9:.1f} to "
    assert any(c.startswith(as_pct) for c in doc.cells), as_pct
    assert "% of 7.9 per 1,000 a month" in summary
    assert pdf_path.stat().st_size > 10_000


def test_headline_rows_follow_the_analysis_rule_per_site_type():
    """With inference "auto" the estimator marks its rows; the report must follow them."""
    from vanguard.report_content import choose_headline, headline_rows

    res = fabricate_results()
    main = res[res["analysis"] == "main"].copy()
    rule = ("headline inference rule: fewer than 10 treated areas -> restricted wild cluster "
            "bootstrap (Webb weights), otherwise cluster-robust (CRV1 by area); {n} treated "
            "areas -> {m}")
    pick = {"population_based": "cluster", "care_home": "wild_bootstrap"}
    is_pick = (main["estimator"] == "twfe") & (main["inference"] == main["group"].map(pick))
    main.loc[is_pick, "note"] = [rule.format(n=n, m=m) for n, m in
                                 zip(main.loc[is_pick, "n_treated"],
                                     main.loc[is_pick, "inference"], strict=True)]
    hl = choose_headline(main, {})
    assert hl["tagged"] and hl["inference"] == "per site type"
    # the whole rule, both branches, reaches the reader
    assert "fewer than 10 treated areas -> restricted wild cluster bootstrap" in hl["rule"]
    assert "otherwise cluster-robust" in hl["rule"]
    rows = headline_rows(main, hl)
    assert len(rows) == 8
    assert dict(zip(rows["group"], rows["inference"], strict=False)) == pick


def test_balance_table_is_rendered_and_its_counts_checked_against_the_flow(tmp_path,
                                                                           monkeypatch):
    from vanguard.report import build_report

    run = make_run(tmp_path, monkeypatch, name="bal")
    tables = config.run_dir(run) / "tables"
    tables.mkdir()
    pd.DataFrame([
        dict(group="population_based", outcome=OUTCOME, measure="rate_per_1000",
             mean_treated=7.34, sd_treated=1.4, n_treated=23, mean_control=7.45,
             sd_control=1.04, n_control=173, difference=-0.11, std_diff=-0.0894),
        dict(group="care_home", outcome=OUTCOME, measure="rate_per_1000", mean_treated=7.49,
             sd_treated=1.64, n_treated=4, mean_control=7.45, sd_control=1.04, n_control=173,
             difference=0.03, std_diff=0.0245),
        dict(group="care_home", outcome="bed_days", measure="rate_per_1000", mean_treated=1.0,
             sd_treated=1.0, n_treated=2, mean_control=1.0, sd_control=1.0, n_control=3,
             difference=0.0, std_diff=0.0),
    ]).to_csv(tables / "balance.csv", index=False)
    html_path, _ = build_report(run)
    doc = _parse(html_path.read_text(encoding="utf-8"))
    assert "Pre-period balance of vanguard and control areas" in html_path.read_text()
    assert "7.49 (1.64)" in doc.cells and "-0.09" in doc.cells
    assert "Bed days" not in doc.cells  # other outcomes left out
    # area counts are printed as they are, tied to the flow's panel step...
    assert ("panel areas|care_home+both", "4") in doc.counts
    # ...and these hand-made counts disagree with the panel (6 care-home areas, 31
    # population-based, 186 controls), which the report says instead of hiding
    text = html_path.read_text(encoding="utf-8")
    assert "Counts that do not reconcile with this table" in text
    for bad in ("panel areas|care_home+both: shown 4, flow 6",
                "panel areas|population_based+both: shown 23, flow 31",
                "panel areas|control: shown 173, flow 186"):
        assert bad in text


def test_figures_of_other_outcomes_are_listed_not_embedded(tmp_path):
    from vanguard.report_content import figure_entries

    figs = tmp_path / "figures"
    figs.mkdir()
    for stem in ("trends_emergency_admissions", "trends_bed_days", "mde_x",
                 "did_emergency_admissions__care_home__twfe",
                 "estimator_comparison_emergency_admissions"):
        (figs / f"{stem}.png").write_bytes(b"\x89PNG")
        (figs / f"{stem}.alt.txt").write_text(f"Chart {stem}.")
    entries, left_out = figure_entries(tmp_path, "emergency_admissions",
                                       ["emergency_admissions", "bed_days"])
    assert [e["name"] for e in entries] == ["trends_emergency_admissions",
                                            "estimator_comparison_emergency_admissions",
                                            "mde_x"]
    assert sorted(left_out) == ["did_emergency_admissions__care_home__twfe", "trends_bed_days"]
    assert all(e["alt"].startswith("Chart ") for e in entries)
    assert [e["first_in_section"] for e in entries] == [True, True, True]
