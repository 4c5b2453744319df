"""A failure in one group of a notebook is recorded and does not stop the others."""

from __future__ import annotations

from contextlib import nullcontext

import pandas as pd
import pytest

from vanguard import analysis
from vanguard.errors import DataError, EstimationError
from vanguard.report import analyses_not_estimated, failure_banner


def test_the_projects_errors_are_recorded_and_the_loop_goes_on(tmp_path):
    failures: list[dict] = []
    done = []
    for group, error in (("a", EstimationError("one site only")), ("b", None),
                         ("c", DataError("panel", "a start month"))):
        with pytest.warns(UserWarning, match=f"group '{group}'") if error else nullcontext():
            with analysis.group_guard(failures, notebook="05_robustness", outcome="y",
                                      group=group, analysis="leave one site out"):
                if error:
                    raise error
                done.append(group)
    assert done == ["b"]
    assert [f["group"] for f in failures] == ["a", "c"]
    path = analysis.write_failures(failures, tmp_path / "tables" / "failures__05__y.csv")
    table = pd.read_csv(path)
    assert list(table.columns) == list(analysis.FAILURE_COLUMNS) and len(table) == 2
    lines = analyses_not_estimated(tmp_path)
    assert lines[0] == "leave one site out for a (y): one site only"
    assert "NOT ESTIMATED" in failure_banner([], lines)
    assert failure_banner([], []) == ""


def test_a_bug_is_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        with analysis.group_guard([], notebook="03_did", outcome="y", group="a",
                                  analysis="twfe"):
            1 / 0  # noqa: B018


def test_an_empty_table_is_written_when_nothing_failed(tmp_path):
    path = analysis.write_failures([], tmp_path / "failures.csv")
    assert pd.read_csv(path).empty
    assert analyses_not_estimated(tmp_path) == []



def test_a_group_the_panel_does_not_have_is_a_clear_error():
    panel = pd.DataFrame({"area": ["A", "B"], "group": ["falls", "control"]})
    analysis.require_groups(panel, ["falls"])
    with pytest.raises(DataError, match=r"column 'group'.*among \['falls'\].*'fals'"):
        analysis.require_groups(panel, ["fals"])
