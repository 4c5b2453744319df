"""Headline numbers as tolerance-based snapshots.

The years 1-3 and yearly effects of the continuous-integration grid (two site groups x
four estimators on the synthetic data, with the parameters of ``params/ci.yml``) are kept
in ``tests/snapshots/headline_ci.csv``. A deliberate change to an estimator shows here as a
readable table of the numbers that moved; ``make golden`` refreshes the file (it sets
``VANGUARD_REFRESH_SNAPSHOTS=1``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vanguard import config
from vanguard.did import fit
from vanguard.did.spec import Spec
from vanguard.io import write_csv
from vanguard.pipeline import load_params

SNAPSHOT = Path(__file__).parent / "snapshots" / "headline_ci.csv"
COLUMNS = ["group", "estimator", "window", "estimate", "ci_low", "ci_high", "p_value",
           "inference", "n_treated", "n_control"]
NUMBERS = ["estimate", "ci_low", "ci_high", "p_value"]
RTOL, ATOL = 1e-6, 1e-9


def headline() -> pd.DataFrame:
    from vanguard.panel import load_panel

    ps = load_params(config.PARAMS / "ci.yml")
    shared = ps["parameters"]
    panel = load_panel("synthetic")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for outcome in ps["grid"]["outcomes"]:
            for group in ps["grid"]["groups"]:
                spec = Spec(outcome, group, scale=shared["scale"],
                            pre_months=shared["pre_months"], inference=shared["inference"],
                            n_boot=shared["n_boot"], seed=shared["seed"],
                            data_source="synthetic")
                for estimator in ps["grid"]["estimators"]:
                    res = fit.estimate(panel, spec, estimator)
                    rows.append(res[res["analysis"] == "main"].assign(estimator=estimator))
    return pd.concat(rows, ignore_index=True)[COLUMNS]


@pytest.fixture(scope="module")
def current() -> pd.DataFrame:
    return headline()


def compare(snapshot: Path, current: pd.DataFrame) -> None:
    """Fail with a table of every headline number that differs from ``snapshot``."""
    kept = pd.read_csv(snapshot, keep_default_na=False, na_values={c: [""] for c in NUMBERS})
    key = ["group", "estimator", "window"]
    both = kept.merge(current, on=key, how="outer", suffixes=("_kept", "_now"), indicator=True)
    missing = both[both["_merge"] != "both"]
    assert missing.empty, f"rows added or removed:\n{missing[key + ['_merge']].to_string()}"
    moved = []
    for c in NUMBERS:
        a, b = both[f"{c}_kept"].to_numpy(float), both[f"{c}_now"].to_numpy(float)
        off = ~(np.isclose(a, b, rtol=RTOL, atol=ATOL) | (np.isnan(a) & np.isnan(b)))
        for i in np.flatnonzero(off):
            moved.append({**both.loc[i, key].to_dict(), "column": c, "kept": a[i], "now": b[i]})
    for c in ("inference", "n_treated", "n_control"):
        off = both[f"{c}_kept"].astype(str) != both[f"{c}_now"].astype(str)
        for i in np.flatnonzero(off.to_numpy()):
            moved.append({**both.loc[i, key].to_dict(), "column": c,
                          "kept": both.loc[i, f"{c}_kept"], "now": both.loc[i, f"{c}_now"]})
    assert not moved, (
        "headline numbers moved (refresh with `make golden` if deliberate):\n"
        + pd.DataFrame(moved).to_string(index=False)
    )


def test_headline_numbers_match_the_snapshot(current):
    if os.environ.get("VANGUARD_REFRESH_SNAPSHOTS") == "1":
        write_csv(SNAPSHOT, current, float_format="%.10g")
    assert SNAPSHOT.is_file(), "no snapshot: run `make golden`"
    compare(SNAPSHOT, current)


def test_a_moved_number_is_reported_readably(current, tmp_path):
    """The comparison is not vacuous: a changed estimate fails with a table naming it."""
    kept = pd.read_csv(SNAPSHOT)
    kept.loc[0, "estimate"] += 0.01
    fake = tmp_path / "headline.csv"
    kept.to_csv(fake, index=False)
    with pytest.raises(AssertionError, match=r"(?s)headline numbers moved.*estimate"):
        compare(fake, current)
