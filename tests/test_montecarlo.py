"""Monte Carlo coverage of the TWFE intervals on the synthetic England design.

200 replications of the synthetic design (23 population-based and 6 care-home areas
against 173 controls, 60 months, AR(1) noise, heterogeneous site effects), each with a
fresh seed. 95 % intervals must cover the planted truth 92-98 % of the time for
population-based sites with cluster-robust errors and for care-home sites with the
restricted wild cluster bootstrap. The over-rejection of plain cluster-robust errors with
6 treated areas is measured and reported, not asserted to be any particular size.
"""

from __future__ import annotations

import pytest

N_REP = 200
SEEDS = range(1000, 1000 + N_REP)


@pytest.fixture(scope="module")
def coverage():
    import montecarlo

    draws = montecarlo.coverage_study(
        SEEDS, outcome="emergency_admissions", scale="log", windows=("years_1_3",), n_boot=399
    )
    summary = montecarlo.summarise_coverage(draws)
    print("\n" + summary.to_string())
    return summary.set_index(["group", "method"])


@pytest.mark.slow
def test_population_based_cluster_robust_coverage(coverage):
    row = coverage.loc[("population_based", "cluster")]
    assert row["n_rep"] == N_REP
    assert 0.92 <= row["coverage"] <= 0.98, row.to_dict()


@pytest.mark.slow
def test_care_home_wild_bootstrap_coverage(coverage):
    row = coverage.loc[("care_home", "wild_bootstrap")]
    assert row["n_rep"] == N_REP
    assert 0.92 <= row["coverage"] <= 0.98, row.to_dict()


@pytest.mark.slow
def test_care_home_cluster_robust_over_rejection_is_measured(coverage, record_property):
    cl = coverage.loc[("care_home", "cluster")]
    wb = coverage.loc[("care_home", "wild_bootstrap")]
    rate = float(cl["rejection_rate"])
    record_property("care_home_cluster_rejection_rate", rate)
    record_property("care_home_wild_bootstrap_rejection_rate", float(wb["rejection_rate"]))
    print(
        f"\n5% test of the true care-home effect, {N_REP} replications: "
        f"cluster-robust rejects {rate:.3f}, wild bootstrap {wb['rejection_rate']:.3f}"
    )
    assert cl["n_rep"] == N_REP and 0.0 <= rate <= 1.0
    # the two methods share the estimate and differ only in inference
    assert cl["bias"] == pytest.approx(wb["bias"])
