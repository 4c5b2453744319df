"""No code name of the results files reaches the reader."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from test_report import make_run

from vanguard import config
from vanguard.report_labels import CODE_NAMES, code_names_in, label, plain


class _Text(HTMLParser):
    """The text a reader sees: element text, alt text and the title; not styles, not
    attribute values such as data URIs or count keys."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        for k, v in attrs:
            if k in ("alt", "title") and v:
                self.parts.append(v)

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data)


def visible_text(html: str) -> list[str]:
    p = _Text()
    p.feed(html)
    return p.parts


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    from vanguard.report import build_report

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("labels")
    run = make_run(root, mp, name="labels")
    # a recorded failure whose reason names code names, as an analysis may write it
    tables = config.run_dir(run) / "tables"
    tables.mkdir(parents=True)
    (tables / "failures__05_robustness__emergency_admissions.csv").write_text(
        "notebook,outcome,group,analysis,error\n"
        "05_robustness,emergency_admissions,care_home,leave_one_out,"
        "cs_never needs two cohorts; twfe / wild_bootstrap ran instead for years_1_3\n")
    text = build_report(run)[0].read_text(encoding="utf-8")
    mp.undo()
    return text


def test_the_rendered_report_has_no_code_names(html):
    hits = code_names_in(visible_text(html))
    assert hits == []


def test_the_scanner_finds_what_it_looks_for():
    text = ["Estimator cs_never / analytic", "twfe / wild_bootstrap", "window years_1_3",
            "population_based sites", "conley_taber intervals"]
    found = {h.split(" in: ")[0] for h in code_names_in(text)}
    assert found == {"cs_never", "twfe", "wild_bootstrap", "years_1_3", "population_based",
                     "conley_taber"}
    # words that merely contain a code name, or file names, are not hits
    assert code_names_in(["a twfe-like model", "results/did__x__twfe.csv"]) == []


def test_plain_replaces_code_names_by_labels():
    out = plain("cs_never needs two cohorts; twfe / wild_bootstrap for years_1_3 in uec")
    assert code_names_in([out]) == []
    assert out.endswith("in Urgent & emergency care")
    assert "Callaway-Sant'Anna (never-treated comparison)" in out
    assert "two-way fixed effects / wild cluster bootstrap" in out
    assert "Years 1-3" in out


def test_labels_of_every_kind():
    assert label("estimator", "twfe_poisson") == "Poisson fixed effects"
    assert label("inference", "conley_taber").startswith("Conley-Taber")
    assert label("group", "population_based") == "Population-based (PACS & MCP)"
    # the window after the programme is named by months since start, true on any data
    assert label("window", "sustainability").startswith("month 36 after the start")
    assert label("sensitivity", "without_site_12") == "without site 12"
    assert label("window", "cohort_2015-04") == "cohort starting 2015-04"
    assert label("group", "falls_prevention") == "falls prevention"  # a user's group
    with pytest.raises(ValueError, match="label kind"):
        label("colour", "red")


def test_code_names_cover_the_results_vocabulary():
    for code in ("cs_never", "twfe", "wild_bootstrap", "population_based", "conley_taber",
                 "years_1_3", "twfe_poisson", "multiplier_bootstrap"):
        assert code in CODE_NAMES
    assert all(re.fullmatch(r"[a-z0-9_]+", c) for c in CODE_NAMES)


def test_page_one_names_what_was_not_estimated_in_one_line(html):
    summary = html.split('id="summary"')[1].split("</section>")[0]
    banner = summary.split('id="not-estimated-banner">')[1].split("</p>")[0]
    assert banner.startswith("NOT ESTIMATED: leave one site out for Enhanced health in care "
                             "homes.")
    table = html.split('id="not-estimated"')[1].split("</table>")[0]
    assert "Callaway-Sant&#39;Anna (never-treated comparison) needs two cohorts" in table


def test_labels_inside_a_sentence_keep_abbreviations():
    from vanguard.report_labels import in_sentence

    assert in_sentence("Emergency admissions") == "emergency admissions"
    assert in_sentence("GP referrals (all specialties)") == "GP referrals (all specialties)"
    assert in_sentence(label("outcome", "gp_referrals_made_all")).startswith("GP")
