# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 05 Sensitivity: the headline under other data choices, and after the funding ended
#
# The headline analysis chooses which areas enter the panel. Each sensitivity undoes one
# choice and re-estimates the headline estimator (two-way fixed effects on the run's scale,
# with the headline inference rule) for every treatment group (`vanguard.sensitivity`):
#
# * **whole-CCG sites only** - areas of sites that cover only part of their CCG out;
# * **anomalies kept** - areas failing the data-quality rule kept in;
# * **mixed areas kept** - areas merging vanguard and control CCGs kept in;
# * **urgent & emergency care areas as controls** - added to the comparison areas;
# * **each partly covering site out**, one at a time;
# * **care-home sites per 1,000 aged 75+** - the population care homes serve.
#
# A sensitivity that cannot change anything on this run's data is listed with the reason,
# not silently absent. Then the **sustainability window**: the programme's funding ended
# in March 2018; did effects persist, fade or appear in the months after (April 2018 -
# December 2019 on the real data, as in Wattal et al. 2024)?

# %%
import pandas as pd

from vanguard import analysis, config, schema, sensitivity
from vanguard.io import write_csv
from vanguard.params import check_parameters
from vanguard.sites import site_names

# %% tags=["parameters"]
run: str = "default"  # run name; reads reports/<run>/data/panel.parquet written by 01_data
outcomes: list = ["emergency_admissions"]  # outcome columns of the panel, each estimated alone
groups: list = ["population_based", "care_home", "uec"]  # treatment groups, each estimated alone
scale: str = "rate"  # rate (per 1,000; needs population), log or poisson
pre_months: int = 24  # months of pre-period before the earliest start
inference: str = "auto"  # auto (the headline rule), cluster, wild_bootstrap or randomisation
n_boot: int = 999  # bootstrap or permutation draws
seed: int = 20150310  # seed of every random draw
first_month: str = ""  # the first month notebook 01 kept ("" keeps every month)
mar_end: str = ""  # nhs_mar only: last month of the headline panel ("" means 2018-03)
mar_mixed: str = "exclude"  # nhs_mar only: the headline's mixed-area rule (exclude or keep)
mar_quality: str = "drop"  # nhs_mar only: the headline's data-quality rule (drop or keep)

# %%
# every parameter checked for its value, whether it came from a parameter set or from
# papermill -p (an unknown name or a value such as n_boot "abc" stops here)
check_parameters("05_sensitivity", globals())

# %%
run_path = config.run_dir(run)
panel = pd.read_parquet(run_path / "data" / "panel.parquet")
data_source = panel.attrs.get("data_source", "custom")
analysis.require_groups(panel, groups)
areas_file = run_path / "tables" / "areas.csv"
areas = pd.read_csv(areas_file, dtype=str, keep_default_na=False) if areas_file.is_file() else None
real = data_source == "nhs_mar"
specs = {outcome: analysis.Spec(outcome, groups[0], scale=scale, pre_months=pre_months,
                                inference=inference, n_boot=n_boot, seed=seed,
                                data_source=data_source)
         for outcome in outcomes}

# %% [markdown]
# ## Sensitivities
#
# For each outcome, one row per sensitivity, group and window in
# `results/sensitivity__<outcome>.csv`
# (`sensitivity` names it, `sensitivity_label` says what it changes); what could not be
# estimated, and why, in `tables/sensitivity_skipped__<outcome>.csv`.

# %%
# NBVAL_CHECK_OUTPUT
built = sensitivity.variants(
    panel, areas=areas, site_names=site_names(data_source, missing_ok=True),
    rebuild=sensitivity.real_data_rebuild(end=mar_end, mixed=mar_mixed, quality=mar_quality,
                                          first_month=first_month) if real else None,
)
for outcome in outcomes:
    results, skipped = sensitivity.run_sensitivities(built, specs[outcome], groups,
                                                     analysis.estimate)
    schema.write_results(results, run_path / "results" / f"sensitivity__{outcome}.csv")
    write_csv(run_path / "tables" / f"sensitivity_skipped__{outcome}.csv", skipped)
    print(f"{outcome}: years 1-3")
    print(results[results["window"] == "years_1_3"][
        ["sensitivity", "group", "estimate", "ci_low", "ci_high", "p_value", "n_treated",
         "n_control"]].round(3).to_string(index=False))
    print(f"not estimated: {len(skipped)}")
    print(skipped[["sensitivity", "group", "reason"]].to_string(index=False) if len(skipped)
          else "", end="\n\n")

# %% [markdown]
# ## After the funding ended
#
# The same estimator on a panel that runs past the programme: `years_1_3` (months 0-35
# after each area's start), `year_4` and `sustainability` (month 36 to the last month). On
# the real data this panel runs to December 2019, so it is built on the April 2019 CCG
# footprint, where more areas mix vanguard and control CCGs: its years 1-3 estimate can
# differ from the headline's for that reason alone, and is shown beside it.

# %%
# NBVAL_CHECK_OUTPUT
longer, why_not = sensitivity.sustainability_panel(panel, data_source, mixed=mar_mixed,
                                                   quality=mar_quality, first_month=first_month)
for outcome in outcomes:
    after, after_skipped = sensitivity.sustainability(longer, specs[outcome], groups,
                                                      analysis.estimate, reason=why_not)
    schema.write_results(after, run_path / "results" / f"sustainability__{outcome}.csv")
    write_csv(run_path / "tables" / f"sustainability_skipped__{outcome}.csv", after_skipped)
    print(outcome)
    print(after[["group", "window", "estimate", "ci_low", "ci_high", "p_value", "n_treated",
                 "n_control"]].round(3).to_string(index=False) if len(after)
          else f"not estimated: {why_not}", end="\n\n")
