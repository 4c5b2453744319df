"""The cache of prepared estimation samples (vanguard.did.design.prepared).

A sample is reused only for a panel whose columns hold the same values: a panel changed
in place must get the sample (and the estimates) its new content calls for, never one
built from the old values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vanguard import schema
from vanguard.did import design as D
from vanguard.did.staggered import estimate_cs, estimation_sample
from vanguard.did.twfe import estimate_twfe
from vanguard.errors import DataError

OUTCOME = "emergency_admissions"


@pytest.fixture
def panel(synthetic_panel):
    # a private copy: the tests change it in place
    D.clear_cache()
    yield synthetic_panel.copy()
    D.clear_cache()


def _fresh_twfe(panel: pd.DataFrame, **kw) -> pd.DataFrame:
    D.clear_cache()
    return estimate_twfe(panel, OUTCOME, **kw)


def test_same_content_is_served_from_the_cache(panel):
    first = D.prepared(panel, OUTCOME)
    assert D.prepared(panel, OUTCOME) is first
    # another object with the same values is the same sample
    assert D.prepared(panel.copy(), OUTCOME) is first
    # any argument of prepare is part of the key
    assert D.prepared(panel, OUTCOME, pre_months=12) is not first
    assert D.prepared(panel, OUTCOME, scale="log") is not first
    assert D.prepared(panel, OUTCOME, groups=(schema.POPULATION_BASED,)) is not first


@pytest.mark.parametrize(
    "column",
    [OUTCOME, schema.POPULATION, schema.GROUP, schema.START, schema.MONTH, schema.AREA],
)
def test_a_panel_changed_in_place_gets_a_new_sample(panel, column):
    before = D.prepared(panel, OUTCOME)
    # rows inside the sample window (April 2013 to March 2018)
    inside = panel[schema.MONTH].eq(pd.Timestamp("2016-01-01"))
    treated = panel.index[inside & panel[schema.GROUP].eq(schema.POPULATION_BASED)][0]
    control = panel.index[inside & panel[schema.GROUP].eq(schema.CONTROL)][-1]
    if column == OUTCOME:
        panel.loc[treated, OUTCOME] += 50
    elif column == schema.POPULATION:
        panel.loc[treated, schema.POPULATION] *= 2
    elif column == schema.GROUP:
        area = panel.at[control, schema.AREA]
        panel.loc[panel[schema.AREA].eq(area), schema.GROUP] = schema.UEC
        panel.loc[panel[schema.AREA].eq(area), schema.START] = pd.Timestamp("2015-08-01")
    elif column == schema.START:
        area = panel.at[treated, schema.AREA]
        panel.loc[panel[schema.AREA].eq(area), schema.START] = pd.Timestamp("2015-05-01")
    elif column == schema.MONTH:
        # one month of a control area moves outside the sample window: the area is
        # then incomplete and the balanced panel drops it
        panel.loc[control, schema.MONTH] = pd.Timestamp("2030-01-01")
    else:
        area = panel.at[control, schema.AREA]
        panel.loc[panel[schema.AREA].eq(area), schema.AREA] = "Z999"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after = D.prepared(panel, OUTCOME)
        D.clear_cache()
        rebuilt = D.prepared(panel, OUTCOME)
    assert after is not before
    pd.testing.assert_frame_equal(after.design.frame, rebuilt.design.frame)
    assert not after.design.frame.equals(before.design.frame)


def test_estimates_follow_the_panel_not_the_cache(panel):
    first = estimate_twfe(panel, OUTCOME)
    treated = panel[schema.GROUP].eq(schema.POPULATION_BASED) & (
        panel[schema.MONTH] >= pd.Timestamp("2015-04-01")
    )
    panel.loc[treated, OUTCOME] = (panel.loc[treated, OUTCOME] * 1.2).round().astype("int64")
    cached_path = estimate_twfe(panel, OUTCOME)
    pd.testing.assert_frame_equal(cached_path, _fresh_twfe(panel))
    assert not np.allclose(cached_path["estimate"], first["estimate"])

    cs_first = estimate_cs(panel, OUTCOME, unit="month")
    panel.loc[treated, OUTCOME] += 7
    cs_cached = estimate_cs(panel, OUTCOME, unit="month")
    D.clear_cache()
    pd.testing.assert_frame_equal(cs_cached, estimate_cs(panel, OUTCOME, unit="month"))
    assert not np.allclose(cs_cached["estimate"], cs_first["estimate"], equal_nan=True)


def test_a_caller_changing_its_design_leaves_the_cache_alone(panel):
    d = D.prepare(panel, OUTCOME)
    y = d.frame["y"].to_numpy().copy()
    d.frame["y"] = 0.0
    d.frame.loc[0, "area"] = "changed"
    d.pre_mean[schema.POPULATION_BASED] = -1.0
    d.n_treated.clear()
    again = D.prepare(panel, OUTCOME)
    np.testing.assert_array_equal(again.frame["y"].to_numpy(), y)
    assert again.frame.loc[0, "area"] != "changed"
    assert again.pre_mean[schema.POPULATION_BASED] > 0
    assert again.n_treated

    s = estimation_sample(panel, OUTCOME, scale="rate")
    s.frame["y"] = np.nan
    assert estimation_sample(panel, OUTCOME, scale="rate").frame["y"].notna().all()


def test_two_slices_of_one_string_buffer_differ(panel):
    cols = [schema.AREA, schema.GROUP]
    a = panel.iloc[:100]
    b = panel.iloc[1:101]
    assert D.panel_digest(a, cols) != D.panel_digest(b, cols)
    assert D.panel_digest(a, cols) == D.panel_digest(panel.iloc[:100].copy(), cols)
    # the same values under another dtype are another panel
    c = panel.assign(**{OUTCOME: panel[OUTCOME].astype("float64")})
    assert D.panel_digest(c, [OUTCOME]) != D.panel_digest(panel, [OUTCOME])


def test_the_kept_bytes_give_the_digest_of_the_content(panel):
    # a panel seen before is compared with the bytes of its last digest instead of being
    # hashed again: whatever changed in place, the digest is that of its content
    cols = D._sample_columns(panel, OUTCOME)
    for change in (
        lambda: None,
        lambda: panel.__setitem__(OUTCOME, panel[OUTCOME].to_numpy()[::-1].copy()),
        lambda: panel.loc.__setitem__((panel.index[3], schema.POPULATION), 1.5),
        lambda: panel.loc.__setitem__((panel.index[0], schema.AREA), "Z999"),
        lambda: panel.loc.__setitem__((panel.index[0], schema.MONTH), pd.Timestamp("2030-01-01")),
    ):
        change()
        assert D._content_digest(panel, cols) == D.panel_digest(panel, cols)
        assert D._content_digest(panel, cols) == D.panel_digest(panel, cols)
    # another object with other values never takes the digest kept for this one
    other = panel.iloc[::-1].reset_index(drop=True)
    assert D._content_digest(other, cols) == D.panel_digest(other, cols)
    assert D._content_digest(other, cols) != D._content_digest(panel, cols)


def test_warnings_are_raised_on_every_call(panel):
    # one treated area loses a month: the balanced panel drops it, with a warning
    area = panel.loc[panel[schema.GROUP].eq(schema.CARE_HOME), schema.AREA].iloc[0]
    gap = panel.index[
        panel[schema.AREA].eq(area) & panel[schema.MONTH].eq(pd.Timestamp("2016-01-01"))
    ][0]
    holed = panel.drop(index=gap).reset_index(drop=True)
    for _ in range(2):
        with pytest.warns(UserWarning, match=f"balanced panel: dropped 1 area.*{area}"):
            D.prepare(holed, OUTCOME)
        with pytest.warns(UserWarning, match="balanced panel"):
            estimate_twfe(holed, OUTCOME)


def test_errors_are_not_cached(panel):
    bad = panel.copy()
    row = bad.index[bad[schema.MONTH].eq(pd.Timestamp("2016-01-01"))][0]
    bad.loc[row, OUTCOME] = -1
    for _ in range(2):
        with pytest.raises(DataError, match="non-negative"):
            D.prepare(bad, OUTCOME)
    bad.loc[row, OUTCOME] = 1
    assert D.prepare(bad, OUTCOME).n_obs > 0


def test_derived_inputs_are_built_once_and_replay_their_warnings(panel):
    prep = D.prepared(panel, OUTCOME)
    calls = []

    def build():
        calls.append(1)
        warnings.warn("built from the sample", UserWarning, stacklevel=2)
        return len(prep.design.frame)

    for _ in range(3):
        with pytest.warns(UserWarning, match="built from the sample"):
            assert prep.derived(("test", 1), build) == prep.design.n_obs
    assert len(calls) == 1
    prep.derived(("test", 2), build)
    assert len(calls) == 2


def test_the_cache_is_bounded(panel):
    first = D.prepared(panel, OUTCOME, pre_months=1)
    assert D.prepared(panel, OUTCOME, pre_months=1) is first
    for months in range(2, D.CACHE_SIZE + 2):
        D.prepared(panel, OUTCOME, pre_months=months)
    # the least recently used sample has made room for the others
    assert D.prepared(panel, OUTCOME, pre_months=1) is not first
