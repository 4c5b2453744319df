"""Statistical disclosure control: small counts never reach a published table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vanguard import sdc
from vanguard.errors import DataError


def test_small_counts_suppressed_and_others_kept():
    table = pd.DataFrame({"label": list("abcdefg"), "n": [0, 1, 5, 7, 8, 186, np.nan]})
    out, suppressed = sdc.apply_sdc(table, ["n"])
    assert suppressed
    assert out["n"].tolist() == [0, sdc.MARKER, sdc.MARKER, sdc.MARKER, 8, 186, None]
    assert out["label"].tolist() == list("abcdefg")
    # the input is not modified
    assert table["n"].iloc[1] == 1


def test_every_value_in_range_is_suppressed_exhaustively():
    table = pd.DataFrame({"n": np.arange(0, 50)})
    out, _ = sdc.apply_sdc(table, ["n"])
    for v, shown in zip(table["n"], out["n"], strict=True):
        assert (shown == sdc.MARKER) == (1 <= v <= 7)


def test_no_suppression_flag_when_nothing_small():
    out, suppressed = sdc.apply_sdc(pd.DataFrame({"n": [0, 8, 100]}), ["n"])
    assert not suppressed
    assert out["n"].tolist() == [0, 8, 100]


def test_nullable_integer_column():
    table = pd.DataFrame({"n": pd.array([3, pd.NA, 40], dtype="Int64")})
    out, suppressed = sdc.apply_sdc(table, ["n"])
    assert suppressed and out["n"].tolist() == [sdc.MARKER, None, 40]


@pytest.mark.parametrize("bad", [-1, 2.5, "many"])
def test_bad_counts_raise_with_row_and_column(bad):
    table = pd.DataFrame({"n": [10, bad]})
    with pytest.raises(DataError, match=r"row 3, column 'n'"):
        sdc.apply_sdc(table, ["n"], source="t.csv")


def test_missing_column_raises():
    with pytest.raises(DataError, match="count column"):
        sdc.apply_sdc(pd.DataFrame({"x": [1]}), ["n"])


def test_cell_audit_finds_bare_small_counts_only():
    cells = ["7", " 3 ", "8", "0", "*", "-0.031 (-0.062 to -0.001)", "1,234", "Year 1", "5.0"]
    assert sdc.small_counts_in_cells(cells) == ["7", " 3 "]


def test_footnote_names_the_rule():
    assert sdc.MARKER in sdc.FOOTNOTE and "1" in sdc.FOOTNOTE and "7" in sdc.FOOTNOTE


# --- the panel copied into a run folder ------------------------------------------------


def _panel():
    return pd.DataFrame({
        "area": ["A", "A", "B", "B"],
        "month": pd.to_datetime(["2015-01-01", "2015-02-01"] * 2),
        "emergency_admissions": [3, 120, 0, 7],
        "bed_days": [8, 9, 10, 11],
        "population": [5000.0, 5000.0, 6.0, np.nan],
        "rate": [0.6, 24.0, 0.0, 1.5],
        "group": ["uec"] * 4,
    })


def test_panel_count_columns_are_whole_non_negative_numbers():
    assert sdc.panel_count_columns(_panel()) == ["emergency_admissions", "bed_days",
                                                 "population"]


def test_suppress_panel_blanks_and_flags_small_counts_only():
    panel = _panel()
    panel.attrs = {"path": "/somewhere/panel.csv", "data_source": "custom"}
    safe, touched = sdc.suppress_panel(panel)
    assert touched == ["emergency_admissions", "population"]
    assert safe["emergency_admissions"].tolist()[1:3] == [120, 0]
    assert safe["emergency_admissions"].isna().tolist() == [True, False, False, True]
    assert safe["emergency_admissions_suppressed"].tolist() == [True, False, False, True]
    # missing in the source stays missing and is not flagged as suppressed
    assert safe["population_suppressed"].tolist() == [False, False, True, False]
    assert safe["bed_days"].tolist() == [8, 9, 10, 11] and "bed_days_suppressed" not in safe
    assert safe["rate"].tolist() == panel["rate"].tolist()  # a rate is not a count
    assert safe.attrs == {"data_source": "custom", sdc.PUBLISHED_ATTR: sdc.FOOTNOTE}
    assert panel["emergency_admissions"].iloc[0] == 3  # the input is not modified
    shown = safe[sdc.panel_count_columns(safe)].stack().tolist()
    assert not [v for v in shown if sdc.is_small(v)]


def test_publish_run_panel_in_place_and_only_full_when_allowed(tmp_path):
    from vanguard.io import write_parquet

    path = write_parquet(tmp_path / "data" / "panel.parquet", _panel())
    before = path.read_bytes()
    assert sdc.publish_run_panel(path, full=True) == "full"
    assert path.read_bytes() == before
    assert sdc.publish_run_panel(path, full=False) == "disclosure-controlled"
    written = pd.read_parquet(path)
    assert written["emergency_admissions"].isna().sum() == 2
    assert sdc.PUBLISHED_ATTR in written.attrs
    again = path.read_bytes()
    assert sdc.publish_run_panel(path, full=False) == "disclosure-controlled"
    assert path.read_bytes() == again  # idempotent: the runner may call it twice
    assert sdc.publish_run_panel(tmp_path / "none.parquet", full=False) is None
    assert not list(tmp_path.rglob(".*.tmp"))
