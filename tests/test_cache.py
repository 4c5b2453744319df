"""The content-addressed cache: hits only for the same call, misses for anything else."""

from __future__ import annotations

import dataclasses
import json
import os
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


def payload_of(meta, part=0):
    """The parquet part of an entry, beside its JSON file."""
    return meta.with_name(f"{meta.stem}.{part}.parquet")


def entries(folder):
    """The committed entries (their JSON files)."""
    return sorted(folder.rglob("*.json"))


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
    target = cache._meta_path(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    cache._payload_path(key, 0).write_bytes(payload_of(source).read_bytes())
    result = cache.cached(_mean_plus, panel, column="y", shift=2.0)
    assert len(CALLS) == 2
    assert result["value"].iloc[0] == pytest.approx(panel["y"].mean() + 2.0)


@pytest.mark.parametrize("damage", ["json_garbage", "json_truncated", "payload_flipped",
                                    "payload_truncated", "payload_missing", "sha_edited"])
def test_a_damaged_entry_is_recomputed_and_replaced(panel, isolated_cache, damage):
    first = cache.cached(_mean_plus, panel, column="y")
    meta = entries(isolated_cache)[0]
    payload = payload_of(meta)
    good_bytes = payload.read_bytes()
    if damage == "json_garbage":
        meta.write_bytes(b"\x80not json")
    elif damage == "json_truncated":
        meta.write_bytes(meta.read_bytes()[:20])
    elif damage == "payload_flipped":
        data = bytearray(good_bytes)
        data[len(data) // 2] ^= 0xFF
        payload.write_bytes(bytes(data))
    elif damage == "payload_truncated":
        payload.write_bytes(good_bytes[: len(good_bytes) // 3])
    elif damage == "payload_missing":
        payload.unlink()
    else:
        doc = json.loads(meta.read_text())
        doc["sha256"] = "0" * 64
        meta.write_text(json.dumps(doc))
    result = cache.cached(_mean_plus, panel, column="y")
    assert len(CALLS) == 2, damage  # recomputed, not trusted
    pd.testing.assert_frame_equal(result, first)
    assert payload.read_bytes() == good_bytes  # replaced by the same bytes
    cache.cached(_mean_plus, panel, column="y")
    assert len(CALLS) == 2  # and the replacement is a hit


def test_entries_are_json_and_parquet_never_pickles(panel, isolated_cache):
    cache.cached(_mean_plus, panel, column="y")
    with pytest.warns(UserWarning, match="few rows"):
        assert cache.cached(_warns, panel, column="y") == pytest.approx(panel["y"].sum())
    files = sorted(p for p in isolated_cache.rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".json", ".parquet"}
    for p in files:
        with pytest.raises(pickle.UnpicklingError):
            pickle.loads(p.read_bytes())
    scalar = [json.loads(p.read_text()) for p in entries(isolated_cache)]
    assert sorted(e["kind"] for e in scalar) == ["frame", "json"]
    warned = next(e for e in scalar if e["kind"] == "json")
    assert warned["warnings"][0]["category"] == "builtins.UserWarning"


class _Boom:
    """Unpickling this runs code: the old cache format would have executed it."""

    def __reduce__(self):
        return (os.system, ("echo owned > pwned.txt",))


def test_a_planted_pickle_is_never_loaded(panel, isolated_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = cache.cache_key(_mean_plus, cache.panel_digest(panel), {"column": "y"})
    legacy = isolated_cache / key[:2] / f"{key}.pkl"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(pickle.dumps({"key": key, "value": _Boom(), "warnings": []}))
    cache.cached(_mean_plus, panel, column="y")
    assert len(CALLS) == 1 and not (tmp_path / "pwned.txt").exists()
    assert not legacy.exists()  # files of the old format are evicted on sight


def test_a_warning_category_is_never_imported(panel, isolated_cache):
    with pytest.warns(UserWarning, match="few rows"):
        cache.cached(_warns, panel, column="y")
    meta = entries(isolated_cache)[0]
    doc = json.loads(meta.read_text())
    doc["warnings"][0]["category"] = "antigravity.Planted"  # importing it would run code
    meta.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="few rows in y"):
        cache.cached(_warns, panel, column="y")
    import sys

    assert "antigravity" not in sys.modules


def _returns(panel: pd.DataFrame, *, kind: str):
    CALLS.append({"kind": kind})
    if kind == "tuple":
        return (1, 2)
    if kind == "mixed":
        return pd.DataFrame({"x": [1, "a"]}, dtype=object)
    if kind == "nan":
        return {"a": [1.5, float("nan")], "b": None}
    if kind == "vcov":  # an event study keeps its covariance matrix in attrs
        out = pd.DataFrame({"rel_time": [-2, 0], "estimate": [0.1, -0.2]})
        out.attrs = {"vcov": pd.DataFrame([[1.0, 0.5], [0.5, 2.0]], index=[-2, 0],
                                          columns=[-2, 0]), "note": "ok", "n": 3}
        return out
    if kind == "object_attrs":
        out = pd.DataFrame({"x": [1]})
        out.attrs = {"when": object()}
        return out
    return pd.DataFrame({"d": pd.to_datetime(["2015-04-01", None]), "n": pd.array([1, None],
                                                                                dtype="Int64")},
                        index=pd.Index(["p", "q"], name="site"))


@pytest.mark.parametrize("kind, stored", [("tuple", False), ("mixed", False), ("nan", True),
                                          ("frame", True), ("vcov", True),
                                          ("object_attrs", False)])
def test_only_exactly_representable_results_are_stored(panel, isolated_cache, kind, stored):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # storing must not warn into the notebook
        first = cache.cached(_returns, panel, kind=kind)
        second = cache.cached(_returns, panel, kind=kind)
    assert len(CALLS) == (1 if stored else 2)
    assert len(entries(isolated_cache)) == int(stored)
    assert not list(isolated_cache.rglob("*.parquet")) or stored
    if isinstance(first, pd.DataFrame):
        pd.testing.assert_frame_equal(first, second, check_exact=True, check_index_type=True)
        assert cache._same(first, second) or not stored
        if kind == "vcov":
            assert second.attrs["note"] == "ok" and second.attrs["n"] == 3
            pd.testing.assert_frame_equal(second.attrs["vcov"], first.attrs["vcov"],
                                          check_exact=True, check_column_type=True)
    elif kind == "nan":
        assert second["a"][0] == 1.5 and second["a"][1] != second["a"][1] and second["b"] is None
    else:
        assert first == second and type(first) is type(second)


@dataclasses.dataclass(frozen=True)
class Options:
    n_boot: int
    inference: str

    def to_dict(self) -> dict:
        return {"n_boot": self.n_boot, "inference": self.inference}


@dataclasses.dataclass(frozen=True)
class OtherOptions(Options):
    pass


def _with_options(panel: pd.DataFrame, *, column: str, options: Options) -> pd.DataFrame:
    CALLS.append({"options": options})
    return pd.DataFrame({"value": [float(panel[column].sum()) + options.n_boot]})


def test_option_objects_with_to_dict_are_keyed_by_class_and_fields(panel):
    res = cache.cached(_with_options, panel, column="y", options=Options(9, "cluster"))
    assert res["value"].iloc[0] == pytest.approx(panel["y"].sum() + 9)
    cache.cached(_with_options, panel, column="y", options=Options(9, "cluster"))
    assert len(CALLS) == 1
    cache.cached(_with_options, panel, column="y", options=Options(19, "cluster"))
    cache.cached(_with_options, panel, column="y", options=OtherOptions(9, "cluster"))
    assert len(CALLS) == 3
    # the function receives the object itself, not its dict
    assert all(isinstance(c["options"], Options) for c in CALLS)


def _age(path, days, now):
    os.utime(path, (now - days * 86400, now - days * 86400))


def test_prune_evicts_unused_entries_by_age_then_by_size(panel, isolated_cache):
    for shift in range(4):
        cache.cached(_mean_plus, panel, column="y", shift=float(shift))
    metas = entries(isolated_cache)
    assert len(metas) == 4
    now = 2_000_000_000.0
    for i, m in enumerate(metas):  # ages 0, 10, 20, 90 days
        for p in (m, payload_of(m)):
            _age(p, [0, 10, 20, 90][i], now)
    size = sum(p.stat().st_size for p in metas[0].parent.parent.rglob("*") if p.is_file()) // 4
    removed = cache.prune(isolated_cache, max_age_days=60, max_bytes=10**9, now=now)
    assert {p.name for p in removed} == {metas[3].name, payload_of(metas[3]).name}
    # over the cap: the least recently used go first, the newest stays
    cache.prune(isolated_cache, max_age_days=60, max_bytes=int(size * 1.5), now=now)
    assert entries(isolated_cache) == [metas[0]]


def test_a_hit_counts_as_a_use(panel, isolated_cache):
    cache.cached(_mean_plus, panel, column="y")
    meta = entries(isolated_cache)[0]
    os.utime(meta, (1_000_000_000, 1_000_000_000))
    cache.cached(_mean_plus, panel, column="y")
    assert meta.stat().st_mtime > 1_000_000_000


def test_prune_keeps_fresh_temporary_files_and_removes_stale_ones(isolated_cache):
    folder = isolated_cache / "ab"
    folder.mkdir(parents=True)
    fresh, stale = folder / ".x.json.fresh.tmp", folder / ".y.json.stale.tmp"
    fresh.write_text("{")
    stale.write_text("{")
    now = 2_000_000_000.0
    _age(fresh, 0, now)
    _age(stale, 1, now)
    cache.prune(isolated_cache, now=now)
    assert fresh.exists() and not stale.exists()


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
