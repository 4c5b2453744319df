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
