"""schema.results_frame: the tidy table built column by column from rows of any shape."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vanguard import schema


def _rows(n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    specials = [math.nan, math.inf, -math.inf, 0.0]
    rows = []
    for i in range(n):
        est = float(rng.normal()) if rng.random() > 0.2 else specials[i % 4]
        pre = float(rng.normal(5, 3)) if rng.random() > 0.2 else specials[(i + 1) % 4]
        row = {
            "outcome": "y",
            "scale": schema.SCALES[i % len(schema.SCALES)],
            "estimator": "twfe",
            "group": "g",
            "window": f"w{i}",
            "estimate": est,
            "ci_low": est - 1.0,
            "ci_high": est + 1.0,
            "pre_mean": pre,
            "n_treated": int(rng.integers(1, 30)),
        }
        if i % 3 == 0:
            row["pct"] = 12.5  # given: kept as is
        if i % 5 == 0:
            del row["pre_mean"]
        rows.append(row)
    return rows


def test_percentages_are_pct_change_row_by_row():
    rows = _rows(400)
    out = schema.results_frame(rows)
    for col, src in (("pct", "estimate"), ("pct_ci_low", "ci_low"), ("pct_ci_high", "ci_high")):
        expected = [
            r.get(col, math.nan)
            if not math.isnan(r.get(col, math.nan))
            else (
                math.nan
                if math.isnan(r[src])
                else schema.pct_change(r[src], r["scale"], r.get("pre_mean", math.nan))
            )
            for r in rows
        ]
        np.testing.assert_array_equal(out[col].to_numpy(), np.array(expected, dtype=float))


def test_columns_dtypes_and_defaults():
    out = schema.results_frame(_rows(7))
    assert list(out.columns) == list(schema.RESULT_COLUMNS)
    assert {c: str(t) for c, t in out.dtypes.items()} == schema.RESULT_COLUMNS
    assert (out["site"] == "").all() and (out["inference"] == "none").all()
    assert out["n_control"].isna().all() and out["n_treated"].notna().all()
    assert isinstance(out.index, pd.RangeIndex)


def test_a_frame_and_its_rows_give_the_same_table():
    rows = _rows(50)
    frame = pd.DataFrame(rows, index=np.arange(100, 150))
    pd.testing.assert_frame_equal(schema.results_frame(frame), schema.results_frame(rows))


def test_columns_give_the_table_of_their_rows():
    rows = _rows(50)
    for i, r in enumerate(rows):
        r["analysis"] = "pretrend" if i % 7 == 0 else "main"
    names = dict.fromkeys(k for r in rows for k in r)
    columns = {c: [r.get(c, math.nan) for r in rows] for c in names}
    # numeric columns as arrays, as a builder holding its values in numpy gives them
    for c in ("estimate", "ci_low", "ci_high", "pre_mean", "pct"):
        columns[c] = np.array(columns[c], dtype=float)
    columns["n_treated"] = np.array(columns["n_treated"], dtype="int64")
    expected = schema.results_frame(rows)
    pd.testing.assert_frame_equal(schema.results_frame(columns), expected, check_exact=True)
    pd.testing.assert_frame_equal(
        schema.results_frame(columns, blank_tests=True),
        schema.blank_test_pct(expected.copy()),
        check_exact=True,
    )
    with pytest.raises(ValueError, match="different lengths"):
        schema.results_frame(dict(columns, window=["w"]))


def test_mixed_values_are_converted_or_refused():
    base = dict(outcome="y", scale="rate", estimator="twfe", group="g", estimate=0.5)
    out = schema.results_frame([dict(base, window=5, n_obs=np.int64(3), se=None)])
    assert out.loc[0, "window"] == "5" and out.loc[0, "n_obs"] == 3
    assert math.isnan(out.loc[0, "se"])
    with pytest.raises(ValueError, match="Unable to parse"):
        schema.results_frame([dict(base, window="w", estimate="abc")])
    with pytest.raises(TypeError):
        schema.results_frame([dict(base, window="w", n_obs=2.5)])
    with pytest.raises(ValueError, match="scale"):
        schema.results_frame([dict(base, window="w", scale="odd", estimate="abc")])
