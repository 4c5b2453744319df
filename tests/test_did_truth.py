"""Truth recovery with effects large enough to see: the default synthetic effects are
small against their standard errors, so a check at the defaults cannot tell an estimator
that finds the effect from one that misses it. Here the planted effects are 20 times the
defaults, and every estimator must land near the truth AND away from zero."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from vanguard import schema, synthetic
from vanguard.did.imputation import estimate_imputation
from vanguard.did.staggered import estimate_cs
from vanguard.did.twfe import estimate_twfe

OUT = "emergency_admissions"


@pytest.fixture(scope="module")
def scaled_draw():
    return synthetic.generate(
        seed=11, effects=synthetic.EffectSpec().scaled(20), start="2013-04", end="2018-03"
    )


def _truth(data, group: str, scale: str = "log", window: str = "years_1_3") -> float:
    t = data.truth
    t = t[
        (t["site"].fillna("") == "")
        & (t["group"] == group)
        & (t["outcome"] == OUT)
        & (t["scale"] == scale)
        & (t["window"] == window)
    ]["truth"]
    assert len(t) == 1
    return float(t.iloc[0])


def _main(res, window: str = "years_1_3"):
    row = res[(res["analysis"] == "main") & (res["window"] == window)]
    assert len(row) == 1
    return row.iloc[0]


ESTIMATORS = {
    "twfe": lambda d, g: estimate_twfe(
        d.panel, OUT, scale="log", groups=(g,), windows=("years_1_3",)
    ),
    "cs": lambda d, g: estimate_cs(d.panel, OUT, scale="log", group=g, aggregations=("dynamic",)),
    "imputation": lambda d, g: estimate_imputation(
        d.panel, OUT, scale="log", groups=(g,), n_leads=None
    ),
}


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("group", [schema.POPULATION_BASED, schema.CARE_HOME])
def test_recovers_scaled_planted_effect(scaled_draw, estimator, group):
    truth = _truth(scaled_draw, group)
    assert truth < -0.02  # the scaled effect is a clear reduction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = _main(ESTIMATORS[estimator](scaled_draw, group))
    z_truth = (row["estimate"] - truth) / row["se"]
    assert abs(z_truth) < 2.5, (estimator, group, row["estimate"], truth, row["se"])
    assert row["estimate"] / row["se"] < -2.5, (estimator, group, row["estimate"], row["se"])


def test_imputation_default_sample_is_the_twfe_sample():
    """On the full 2010-2019 panel the imputation estimator fits its fixed effects on the
    same 24 pre-period months as TWFE; with one cohort the two point estimates coincide."""
    data = synthetic.generate(seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tw = _main(estimate_twfe(data.panel, OUT, scale="log", groups=(schema.CARE_HOME,)))
        imp = _main(
            estimate_imputation(
                data.panel, OUT, scale="log", groups=(schema.CARE_HOME,), n_leads=None
            )
        )
        imp_all = _main(
            estimate_imputation(
                data.panel,
                OUT,
                scale="log",
                groups=(schema.CARE_HOME,),
                n_leads=None,
                pre_months=None,
            )
        )
    assert imp["n_obs"] == tw["n_obs"]
    assert imp["estimate"] == pytest.approx(tw["estimate"], abs=1e-10)
    assert imp_all["n_obs"] > imp["n_obs"]  # None keeps the whole pre-period
    assert np.isfinite(imp_all["estimate"])
