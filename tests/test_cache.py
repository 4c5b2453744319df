"""The content-addressed cache: hits only for the same call, misses for anything else."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from vanguard import cache

CALLS: list[dict] = []


def _mean_plus(panel: pd.DataFrame, *, column: str, shift: float = 0.0) -> pd.DataFrame:
    """A cheap deterministic function that records every real call."""
    CALLS.append({"column": column, "shift": shift})
    return pd.DataFrame({"value": [float(panel[column].mean()) + shift]})


def _other(panel: pd.DataFrame, *, column: str, shift: float = 0.0) -> pd.DataFrame:
    CALLS.append({"other": column})
    return pd.DataFrame({"value": [float(panel[column].sum())]})


def _warns(panel: pd.DataFrame, *, column: str) -> float:
    warnings.warn(f"few rows in {column}", UserWarning, stacklevel=1)
    return float(panel[column].sum())


def _fails(panel: pd.DataFrame, *, column: str) -> float:
    CALLS.append({"fails": column})
    raise ValueError("no estimate")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    CALLS.clear()
    return tmp_path / "cache"


@pytest.fixture
def panel():
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"area": np.repeat(["a", "b", "c"], 4), "y": rng.normal(size=12), "n": np.arange(12)}
    )


def entries(folder):
    return sorted(folder.rglob("*.pkl"))


def test_same_call_hits_and_returns_equal_result(panel, isolated_cache):
    first = cache.cached(_mean_plus, panel, column="y", shift=1.0)
    second = cache.cached(_mean_plus, panel.copy(), column="y", shift=1.0)
    assert len(CALLS) == 1  # the second call was read from the cache
    pd.testing.assert_frame_equal(first, second)
    assert first["value"].iloc[0] == pytest.approx(panel["y"].mean() + 1.0)
    assert len(entries(isolated_cache)) == 1


@pytest.mark.parametrize(
    "change",
    ["cell", "column_name", "dtype", "row_order", "attrs"],
)
def test_a_different_panel_is_a_miss(panel, change):
    cache.cached(_mean_plus, panel, column="y")
    other = panel.copy()
    if change == "cell":
        other.loc[5, "y"] += 1e-12  # the smallest change still counts
    elif change == "column_name":
        other = other.rename(columns={"n": "m"})
    elif change == "dtype":
        other["n"] = other["n"].astype("float64")
    elif change == "row_order":
        other = other.iloc[::-1]
    else:
        other.attrs["data_source"] = "nhs_mar"
    result = cache.cached(_mean_plus, other, column="y")
    assert len(CALLS) == 2, change
    assert result["value"].iloc[0] == pytest.approx(other["y"].mean())


def test_different_arguments_or_function_are_misses(panel):
    cache.cached(_mean_plus, panel, column="y", shift=1.0)
    cache.cached(_mean_plus, panel, column="y", shift=2.0)
    cache.cached(_mean_plus, panel, column="n", shift=1.0)
    # 1 and 1.0 are different arguments: a callee may treat an int differently
    cache.cached(_mean_plus, panel, column="y", shift=1)
    res = cache.cached(_other, panel, column="y", shift=1.0)
    assert len(CALLS) == 5
    assert res["value"].iloc[0] == pytest.approx(panel["y"].sum())


def test_argument_order_does_not_matter(panel):
    cache.cached(_mean_plus, panel, column="y", shift=1.0)
    cache.cached(_mean_plus, panel, shift=1.0, column="y")
    assert len(CALLS) == 1


def test_code_or_package_change_is_a_miss(panel, monkeypatch):
    cache.cached(_mean_plus, panel, column="y")
    monkeypatch.setattr(cache, "code_digest", lambda: "edited source")
    cache.cached(_mean_plus, panel, column="y")
    assert len(CALLS) == 2
    monkeypatch.setattr(cache, "_versions", lambda: {"numpy": "99.0"})
    cache.cached(_mean_plus, panel, column="y")
    assert len(CALLS) == 3


def test_code_digest_covers_the_package_source():
    digest = cache.code_digest()
    assert len(digest) == 64
    assert cache.code_digest() == digest  # stable within a process


def test_an_entry_under_the_wrong_key_is_never_returned(panel, isolated_cache):
    """A file copied or renamed to another key is recomputed, not trusted."""
    cache.cached(_mean_plus, panel, column="y", shift=1.0)
    source = entries(isolated_cache)[0]
    key = cache.cache_key(_mean_plus, cache.panel_digest(panel), {"column": "y", "shift": 2.0})
    target = cache._entry_path(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    result = cache.cached(_mean_plus, panel, column="y", shift=2.0)
    assert len(CALLS) == 2
    assert result["value"].iloc[0] == pytest.approx(panel["y"].mean() + 2.0)


def test_a_damaged_entry_is_recomputed_and_replaced(panel, isolated_cache):
    cache.cached(_mean_plus, panel, column="y")
    path = entries(isolated_cache)[0]
    path.write_bytes(b"not a pickle")
    result = cache.cached(_mean_plus, panel, column="y")
    assert len(CALLS) == 2
    assert result["value"].iloc[0] == pytest.approx(panel["y"].mean())
    assert pickle.loads(path.read_bytes())["value"].equals(result)


def test_callers_get_a_copy(panel):
    first = cache.cached(_mean_plus, panel, column="y")
    first.loc[0, "value"] = -999.0
    assert cache.cached(_mean_plus, panel, column="y")["value"].iloc[0] != -999.0


def test_failures_are_not_cached(panel, isolated_cache):
    for _ in range(2):
        with pytest.raises(ValueError, match="no estimate"):
            cache.cached(_fails, panel, column="y")
    assert len(CALLS) == 2
    assert entries(isolated_cache) == []


def test_warnings_are_raised_on_hits_too(panel):
    for _ in range(2):
        with pytest.warns(UserWarning, match="few rows in y"):
            assert cache.cached(_warns, panel, column="y") == pytest.approx(panel["y"].sum())


def test_disabled_cache_always_computes_and_writes_nothing(panel, isolated_cache, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    cache.cached(_mean_plus, panel, column="y")
    cache.cached(_mean_plus, panel, column="y")
    assert len(CALLS) == 2
    assert entries(isolated_cache) == []


def test_unserialisable_arguments_are_refused(panel):
    with pytest.raises(TypeError, match="JSON-serialisable"):
        cache.cached(_mean_plus, panel, column=object())


def test_panel_must_be_a_frame():
    with pytest.raises(TypeError, match="DataFrame"):
        cache.panel_digest([1, 2, 3])
