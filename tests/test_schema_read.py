"""schema.read_results: many files parsed together give the rows of each file parsed
alone, and a bad file is still named by file, row and column."""

from __future__ import annotations

import pandas as pd
import pytest

from vanguard import schema
from vanguard.errors import DataError


def _rows(group: str, n: int, note: str = "") -> list[dict]:
    return [{"outcome": "y", "scale": schema.SCALES[i % len(schema.SCALES)],
             "estimator": "twfe", "group": group, "window": f"year_{i + 1}",
             "site": f"00{i}", "estimate": 0.1 * i - 0.05, "ci_low": -1.0, "ci_high": 1.0,
             "pre_mean": 7.5 if i % 2 else float("nan"), "n_treated": i + 3,
             "note": note} for i in range(n)]


def _write(path, rows: list[dict]):
    schema.write_results(pd.DataFrame(rows), path)
    return path


def _one_by_one(paths) -> pd.DataFrame:
    """The reference: each file parsed and validated by itself, then concatenated."""
    opts = {"dtype": {c: "string" for c, t in schema.RESULT_COLUMNS.items()
                      if t == "string"},
            "keep_default_na": False,
            "na_values": {c: [""] for c, t in schema.RESULT_COLUMNS.items()
                          if t != "string"}}
    frames = [schema.results_frame(pd.read_csv(p, **opts)) for p in paths]
    return schema.results_frame(pd.concat(frames, ignore_index=True))


@pytest.fixture
def files(tmp_path):
    paths = [
        _write(tmp_path / "a.csv", _rows("care_home", 4, note="plain")),
        # quoted fields: commas, doubled quotes and a line break inside a note
        _write(tmp_path / "b.csv", _rows("uec", 3, note='rule: a, b; "quoted"\nnext line')),
        _write(tmp_path / "c.csv", _rows("population_based", 0)),
        _write(tmp_path / "d.csv", _rows("both", 2)),
    ]
    # a file with fewer columns (another header) and no final line break
    (tmp_path / "e.csv").write_text(
        "outcome,scale,estimator,group,window,estimate\n"
        "y,log,cs_never,care_home,year_3,-0.02\ny,rate,cs_never,uec,year_1,0.5")
    return [*paths, tmp_path / "e.csv"]


def test_files_read_together_equal_files_read_one_by_one(files):
    got = schema.read_results(files)
    want = _one_by_one(files)
    pd.testing.assert_frame_equal(got, want)
    assert list(got["group"]) == (["care_home"] * 4 + ["uec"] * 3 + ["both"] * 2
                                  + ["care_home", "uec"])
    assert got.loc[4, "note"] == 'rule: a, b; "quoted"\nnext line'
    assert {"000", "001"} <= set(got["site"])  # codes stay strings


def test_blank_lines_are_skipped_as_when_read_alone(files):
    text = files[0].read_text()
    head, body = text.split("\n", 1)
    files[0].write_text(head + "\n\n" + body.replace("\n", "\n\n", 1))
    pd.testing.assert_frame_equal(schema.read_results(files), _one_by_one(files))


def _corrupt(path, row: int, column: str, value: str):
    """Set one cell (row counted with the header as row 1) of a CSV file."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row - 2, column] = value
    df.to_csv(path, index=False)


@pytest.mark.parametrize("column, value, expected", [
    ("estimate", "n.a.", "a number"),
    ("n_treated", "2.5", "a whole number"),
    ("scale", "ratio", "one of"),
])
def test_bad_cell_is_named_by_file_row_and_column(files, column, value, expected):
    _corrupt(files[3], 3, column, value)
    with pytest.raises(DataError, match=expected) as err:
        schema.read_results(files)
    assert err.value.file == str(files[3])
    assert (err.value.row, err.value.column, str(err.value.found)) == (3, column, value)


def test_first_bad_cell_in_file_order_is_named(files):
    _corrupt(files[3], 2, "ci_low", "x")
    _corrupt(files[1], 4, "se", "y")
    with pytest.raises(DataError) as err:
        schema.read_results(files)
    assert (err.value.file, err.value.row, err.value.column) == (str(files[1]), 4, "se")


def test_unknown_and_missing_columns_name_the_file(files, tmp_path):
    bad = tmp_path / "f.csv"
    bad.write_text("outcome,scale,estimator,group,window,estimate,colour\n"
                   "y,rate,twfe,uec,year_1,0.1,red\n")
    with pytest.raises(DataError, match="colour") as err:
        schema.read_results([*files, bad])
    assert err.value.file == str(bad)
    bad.write_text("outcome,scale,estimator,group,window\ny,rate,twfe,uec,year_1\n")
    with pytest.raises(DataError) as err:
        schema.read_results([*files, bad])
    assert (err.value.file, err.value.column) == (str(bad), "estimate")
    # a header-only file lacking a required column holds no estimate to miss
    bad.write_text("outcome,scale,estimator,group,window\n")
    assert len(schema.read_results([*files, bad])) == len(schema.read_results(files))


def test_unpaired_quote_and_empty_file_are_named(files, tmp_path):
    bad = tmp_path / "g.csv"
    bad.write_text(files[0].read_text().replace("plain", '"plain', 1))
    with pytest.raises(DataError) as err:
        schema.read_results([bad, *files])
    assert err.value.file == str(bad)
    bad.write_text("")
    with pytest.raises(DataError, match="header") as err:
        schema.read_results([*files, bad])
    assert err.value.file == str(bad)


def test_no_files_give_an_empty_table():
    got = schema.read_results([])
    assert got.empty and list(got.columns) == list(schema.RESULT_COLUMNS)
