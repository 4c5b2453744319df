"""The notebooks' analysis entry points: lazy imports, same numbers as the estimators."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from vanguard import analysis, cache
from vanguard.errors import EstimationError


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


def test_unknown_estimator_is_an_estimation_error(panel):
    with pytest.raises(EstimationError, match="did_magic"):
        analysis.estimate(panel, "emergency_admissions", estimator="did_magic", group="uec")


def test_estimate_matches_the_estimator_called_directly_and_is_cached(panel, isolated_cache):
    from vanguard.did.twfe import estimate_twfe

    kwargs = dict(scale="rate", pre_months=24, inference="cluster", n_boot=9, seed=3)
    direct = estimate_twfe(panel, "emergency_admissions", groups=("care_home",), **kwargs)
    first = analysis.estimate(
        panel, "emergency_admissions", estimator="twfe", group="care_home", **kwargs
    )
    again = analysis.estimate(
        panel, "emergency_admissions", estimator="twfe", group="care_home", **kwargs
    )
    pd.testing.assert_frame_equal(first, direct)
    pd.testing.assert_frame_equal(again, direct)
    assert len(list(isolated_cache.rglob("*.json"))) == 1
    other = analysis.estimate(
        panel, "emergency_admissions", estimator="twfe", group="population_based", **kwargs
    )
    assert set(other["group"]) == {"population_based"}
    assert len(list(isolated_cache.rglob("*.json"))) == 2


def test_per_site_returns_one_group_from_one_shared_fit(panel, isolated_cache):
    kwargs = dict(scale="rate", pre_months=24, seed=3, data_source="synthetic")
    care = analysis.per_site(panel, "emergency_admissions", group="care_home", **kwargs)
    pop = analysis.per_site(panel, "emergency_admissions", group="population_based", **kwargs)
    assert set(care["group"]) == {"care_home"} and set(pop["group"]) == {"population_based"}
    assert care.index.tolist() == list(range(len(care)))
    assert len(list(isolated_cache.rglob("*.json"))) == 1  # the second group read the first fit
