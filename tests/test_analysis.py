"""The notebooks' analysis entry points: lazy imports, same numbers as the estimators."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from vanguard import analysis, cache
from vanguard.did.spec import Spec, SpecError


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def panel():
    from vanguard.panel import load_panel

    p = load_panel("synthetic")
    p.attrs["data_source"] = "synthetic"
    return p


def test_importing_the_entry_points_loads_no_estimation_library():
    code = (
        "import sys, vanguard.analysis\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}"
        " & {'pyfixest', 'moderndid', 'matplotlib', 'statsmodels'})\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert out == "[]"


def test_unknown_estimator_is_a_spec_error_naming_the_field(panel):
    spec = Spec("emergency_admissions", "uec")
    with pytest.raises(SpecError, match="'estimator'.*did_magic"):
        analysis.estimate(panel, spec, "did_magic")


def test_estimate_matches_the_estimator_called_directly_and_is_cached(panel, isolated_cache):
    from vanguard.did.twfe import estimate_twfe

    spec = Spec("emergency_admissions", "care_home", inference="cluster", n_boot=9, seed=3,
                data_source="synthetic")
    direct = estimate_twfe(panel, "emergency_admissions", groups=("care_home",),
                           scale="rate", pre_months=24, inference="cluster", n_boot=9, seed=3,
                           data_source="synthetic")
    first = analysis.estimate(panel, spec, "twfe")
    again = analysis.estimate(panel, spec, "twfe")
    pd.testing.assert_frame_equal(first, direct)
    pd.testing.assert_frame_equal(again, direct)
    n_entries = len([p for p in isolated_cache.rglob("*") if p.is_file()])
    assert n_entries >= 1
    other = analysis.estimate(panel, spec.replace(group="population_based"), "twfe")
    assert set(other["group"]) == {"population_based"}
    assert len([p for p in isolated_cache.rglob("*") if p.is_file()]) > n_entries


def test_per_site_returns_the_rows_of_its_group(panel):
    spec = Spec("emergency_admissions", "care_home", seed=3, n_boot=99,
                windows=("years_1_3",), data_source="synthetic")
    care = analysis.per_site(panel, spec)
    pop = analysis.per_site(panel, spec.replace(group="population_based"))
    assert set(care["group"]) == {"care_home"} and set(pop["group"]) == {"population_based"}
    assert care.index.tolist() == list(range(len(care)))


@pytest.mark.parametrize(
    "name,args,options",
    [
        ("indexed_trends", ("bed_days",), {"freq": "Q", "pre_months": 24}),
        ("seasonality", ("emergency_admissions",), {"by_group": True}),
        ("pre_period_balance", (["emergency_admissions", "bed_days"],), {}),
    ],
)
def test_descriptives_are_cached_and_equal_the_direct_call(panel, isolated_cache, monkeypatch,
                                                           name, args, options):
    from vanguard import descriptives

    direct = getattr(descriptives, name)(panel, *args, **options)
    first = getattr(analysis, name)(panel, *args, **options)
    pd.testing.assert_frame_equal(first, direct)
    stored = sorted(p.name for p in isolated_cache.rglob("*.json"))
    assert len(stored) == 1

    def boom(*a, **k):
        raise AssertionError("recomputed although the result is stored")

    monkeypatch.setattr(descriptives, name, boom)
    boom.__module__, boom.__qualname__ = "vanguard.descriptives", name  # the same cache key
    pd.testing.assert_frame_equal(getattr(analysis, name)(panel, *args, **options), direct)
