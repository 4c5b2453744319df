"""The flow of areas: every count of areas in the rendered report reconciles with it."""

from __future__ import annotations

import pandas as pd
import pytest
from test_report import _parse, fabricate_results, make_run

from vanguard import config, schema
from vanguard.errors import DataError
from vanguard.report_flow import (
    ANALYSED,
    ANALYSED_CONTROLS,
    PANEL,
    build_flow,
    count_key,
    flow_count,
    read_flow_csv,
    reconciliation_notes,
)

AREA_HEADERS = ("areas", "Treated areas", "Comparison areas", "Vanguard areas",
                "Control areas")


def _real_style_flow(n_pop: int, n_care: int, n_both: int, n_ctrl: int) -> pd.DataFrame:
    """A flow table in the data notebook's format (steps of the real data)."""
    rows = []
    for g, sites, ccgs, areas, mixed, bad in (
            ("population_based", 23, n_pop + 4, n_pop + 3, 2, 1),
            ("care_home", 6, n_care + 2, n_care + 1, 1, 0),
            ("both", 0, n_both, n_both, 0, 0),
            ("control", 0, n_ctrl + 9, n_ctrl + 5, 3, 2)):
        for step, n in (("sites", sites), ("register CCGs", ccgs), ("analysis areas", areas),
                        ("mixed areas", mixed), ("areas failing the data-quality rule", bad),
                        ("panel areas", areas - mixed - bad)):
            rows.append({"step": step, "group": g, "n": n, "codes": "", "note": ""})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    """A run whose models leave out the area in both site types, as the real data do."""
    from vanguard.report import build_report

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("flow")
    res = fabricate_results()
    # 30 population-based and 5 care-home panel areas plus 1 in both; the models of one
    # site type leave the shared area out, so they analyse 30 and 5
    res.loc[(res["group"] == "population_based") & res["n_treated"].notna(), "n_treated"] = 30
    res.loc[(res["group"] == "care_home") & res["n_treated"].notna(), "n_treated"] = 5
    run = make_run(root, mp, name="flow", results=res, panel=False)
    run_path = config.run_dir(run)
    (run_path / "tables").mkdir(parents=True)
    flow = _real_style_flow(30, 5, 1, 186)
    flow.loc[(flow["step"] == "mixed areas") & (flow["group"] == "care_home"), "codes"] = "13T"
    flow.to_csv(run_path / "tables" / "flow.csv", index=False)
    pd.DataFrame([
        dict(group=g, outcome="emergency_admissions", measure="rate_per_1000",
             mean_treated=8.0, sd_treated=1.0, n_treated=n, mean_control=7.9, sd_control=1.0,
             n_control=186, difference=0.1, std_diff=0.1)
        for g, n in (("population_based", 31), ("care_home", 6))
    ]).to_csv(run_path / "tables" / "balance.csv", index=False)
    html_path, _ = build_report(run)
    flow = pd.read_csv(run_path / "tables" / "flow.csv")
    yield {"html": html_path.read_text(encoding="utf-8"), "run_path": run_path,
           "flow": flow}
    mp.undo()


def _flow_from_html(doc) -> pd.DataFrame:
    """The flow table as rendered: each tagged cell of the table with id 'flow'."""
    return pd.DataFrame([{"step": k.split("|")[0], "group": k.split("|")[1], "n": int(t)}
                         for k, t in doc.flow_counts])


class _FlowDoc:
    def __init__(self, html: str):
        self.doc = _parse(html)
        flow_html = html.split('<table id="flow-table">')[1].split("</table>")[0]
        self.flow_counts = _parse(flow_html).counts


def test_every_count_in_the_report_reconciles_with_the_rendered_flow(flow_run):
    doc = _FlowDoc(flow_run["html"])
    rendered_flow = _flow_from_html(doc)
    assert len(rendered_flow) >= 20  # six steps x four groups, and the analysed steps
    assert doc.doc.counts
    for key, text in doc.doc.counts:
        step, _, groups = key.partition("|")
        want = rendered_flow[(rendered_flow["step"] == step)
                             & rendered_flow["group"].isin(groups.split("+"))]["n"].sum()
        assert not rendered_flow[rendered_flow["step"] == step].empty, key
        assert int(text.replace(",", "")) == int(want), (key, text, want)
    # the rendered flow is the data notebook's table plus the analysed steps
    for r in flow_run["flow"].itertuples():
        shown = rendered_flow[(rendered_flow["step"] == r.step)
                              & (rendered_flow["group"] == r.group)]
        assert shown["n"].tolist() == [r.n], (r.step, r.group)


def test_every_count_of_areas_in_a_table_is_tied_to_the_flow(flow_run):
    """No table prints a count of areas without its flow key (or a declared other sample)."""
    html = flow_run["html"]
    for table in html.split("<table")[1:]:
        table = table.split("</table>")[0]
        head = _parse("<table" + table.split("</thead>")[0] + "</table>").cells
        cols = [i for i, h in enumerate(head) if h.endswith("areas")]
        if not cols:
            continue
        body = table.split("<tbody>")[1]
        for row in body.split("<tr>")[1:]:
            doc = _parse("<table><tr>" + row + "</table>")
            for i in cols:
                attrs = doc.cell_attrs[i]
                assert attrs.get("data-count") or attrs.get("data-sample") or \
                    not doc.cells[i], (head[i], doc.cells[i])


def test_the_shared_area_left_out_of_one_type_models_is_explained(flow_run):
    html = flow_run["html"]
    assert "<td>areas 13T</td>" in html  # the excluded mixed area, by code
    assert "Counts that do not reconcile" not in html
    assert ("Population-based (PACS &amp; MCP): 30 areas analysed; the 1 area(s) in both"
            in html)
    doc = _parse(html)
    assert ("panel areas|population_based+both", "31") in doc.counts  # balance: 30 + 1
    assert ("analysed|population_based", "30") in doc.counts


def test_a_count_that_disagrees_with_the_flow_is_reported(tmp_path, monkeypatch):
    from vanguard.report import build_report

    run = make_run(tmp_path, monkeypatch, name="bad", panel=False)
    run_path = config.run_dir(run)
    (run_path / "tables").mkdir(parents=True)
    flow = _real_style_flow(31, 6, 0, 186)
    flow.loc[(flow["step"] == PANEL) & (flow["group"] == "care_home"), "n"] = 9
    flow.to_csv(run_path / "tables" / "flow.csv", index=False)
    html = build_report(run)[0].read_text(encoding="utf-8")
    assert "Enhanced health in care homes: 6 areas analysed of 9 in the panel" in html


def test_flow_without_a_notebook_table_comes_from_the_panel_and_results(tmp_path,
                                                                       monkeypatch):
    run = make_run(tmp_path, monkeypatch, name="panel")
    res = fabricate_results()
    head = res[(res["analysis"] == "main") & (res["estimator"] == "twfe")
               & (res["inference"] == "cluster")]
    flow = build_flow(config.run_dir(run), head)
    assert flow_count(flow, count_key(PANEL, "care_home")) == 6
    assert flow_count(flow, count_key(PANEL, "control")) == 186
    assert flow_count(flow, count_key(ANALYSED, "population_based")) == 31
    assert flow_count(flow, count_key(ANALYSED_CONTROLS, "care_home")) == 186
    assert flow_count(flow, count_key(PANEL, "care_home", "both")) == 6  # no 'both' areas
    assert flow_count(flow, count_key("sites", "care_home")) is None
    assert reconciliation_notes(flow) == []


def test_counts_that_differ_across_windows_are_said_not_hidden(tmp_path, monkeypatch):
    run = make_run(tmp_path, monkeypatch, name="windows")
    res = fabricate_results()
    head = res[(res["analysis"] == "main") & (res["estimator"] == "twfe")
               & (res["inference"] == "cluster")].copy()
    year_3 = (head["group"] == "population_based") & (head["window"] == "year_3")
    head.loc[year_3, "n_treated"] = 30
    flow = build_flow(config.run_dir(run), head)
    assert flow_count(flow, count_key(ANALYSED, "population_based")) == 31  # years 1-3
    note = flow.loc[(flow["step"] == ANALYSED) & (flow["group"] == "population_based"),
                    "note"].iloc[0]
    assert "Year 3 30" in note and "Years 1-3 31" in note


def test_a_malformed_flow_file_names_its_row(tmp_path):
    path = tmp_path / "flow.csv"
    pd.DataFrame({"step": ["sites", "panel areas"], "group": ["uec", "uec"],
                  "n": ["8", "seven"], "codes": ["", ""], "note": ["", ""]}).to_csv(
        path, index=False)
    with pytest.raises(DataError, match=r"row 3, column 'n'"):
        read_flow_csv(path)
    pd.DataFrame({"step": ["sites"], "group": ["uec"], "n": [8]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="column 'codes'"):
        read_flow_csv(path)


def test_groups_are_the_schema_groups():
    assert set(_real_style_flow(1, 1, 1, 1)["group"]) <= set(schema.GROUPS)
