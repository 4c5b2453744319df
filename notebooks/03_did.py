# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 03 Difference-in-differences: one outcome, every site group and estimator
#
# This notebook is one slice of the analysis grid: it estimates the effect of each vanguard
# **site group** on one **outcome** with each chosen **estimator**, in each post-period
# window (years 1-3 together, and each year on its own), following Morciano et al. (2020).
#
# Estimators:
#
# * `twfe` - two-way fixed effects (area and month effects) on the chosen `scale`, the
#   design of Morciano et al.; with staggered starts it compares later with earlier
#   cohorts, which the next estimators avoid;
# * `twfe_poisson` - the same design as a Poisson fixed-effects model: effects are log rate
#   ratios, robust to areas of very different size;
# * `cs_never`, `cs_notyet` - Callaway & Sant'Anna group-time effects against never-treated
#   or not-yet-treated areas, aggregated to the same windows and to one effect per cohort
#   (start month); robust to effects that change over time and across start dates;
# * `imputation` - Borusyak, Jaravel & Spiess: fit area and month effects on untreated
#   area-months only and impute the counterfactual.
#
# Every estimator takes the same specification (`vanguard.did.spec.Spec`): outcome, scale,
# treatment group, comparison areas, pre-period, time unit, inference, draws and seed. An
# estimator that cannot honour a setting stops with an error naming it.
#
# Inference: with few treated areas, cluster-robust standard errors over-reject. `auto`
# applies the project's rule for each estimator (the wild cluster bootstrap for two-way
# fixed effects, t intervals on the analytic errors of Callaway & Sant'Anna and
# imputation, when a group has fewer than 10 treated areas); see `vanguard.did.fit`.

# %%
import pandas as pd

from vanguard import analysis, config, schema
from vanguard.params import check_parameters

# %% tags=["parameters"]
run: str = "default"  # run name; reads reports/<run>/data/panel.parquet written by 01_data
outcome: str = "emergency_admissions"  # outcome column of the panel
groups: list = ["population_based", "care_home", "uec"]  # treatment groups, each estimated alone
estimators: list = ["twfe", "twfe_poisson", "cs_never", "cs_notyet", "imputation"]  # estimators
scale: str = "rate"  # rate (per 1,000; needs population), log or count (poisson for twfe)
pre_months: int = 24  # months of pre-period before the earliest start
inference: str = "auto"  # auto (the headline rule), cluster, wild_bootstrap or randomisation
n_boot: int = 999  # bootstrap or permutation draws
seed: int = 20150310  # seed of every random draw

# %%
# every parameter checked for its value, whether it came from a parameter set or from
# papermill -p (an unknown name or a value such as n_boot "abc" stops here)
check_parameters("03_did", globals())

# %%
panel = pd.read_parquet(config.run_dir(run) / "data" / "panel.parquet")
data_source = panel.attrs.get("data_source", "custom")
analysis.require_groups(panel, groups)

# %% [markdown]
# ## Estimate
#
# Each estimator returns the project's tidy results table: one row per window, with the
# estimate on its scale, a 95% confidence interval, the p-value, the numbers of treated and
# control areas and the effect as a percentage of the treated group's pre-period mean.

# %%
results_dir = config.run_dir(run) / "results"
main = []
cohorts = []
failures = []  # analyses a group's data cannot support: recorded, the others go on
for group in groups:
    spec = analysis.Spec(outcome, group, scale=scale, pre_months=pre_months, inference=inference,
                         n_boot=n_boot, seed=seed, data_source=data_source)
    for estimator in estimators:
        with analysis.group_guard(failures, notebook="03_did", outcome=outcome, group=group,
                                  analysis=estimator):
            results = analysis.estimate(panel, spec, estimator)
            schema.write_results(results,
                                 results_dir / f"did__{outcome}__{group}__{estimator}.csv")
            main.append(results[results["analysis"] == "main"]
                        .assign(grid_group=group, grid_estimator=estimator))
            cohorts.append(results[results["analysis"] == "cohort"])
main = (pd.concat(main, ignore_index=True) if main
        else schema.results_frame([]).assign(grid_group="", grid_estimator=""))
cohorts = pd.concat(cohorts, ignore_index=True) if cohorts else schema.results_frame([])
schema.write_results(cohorts, results_dir / f"cohort__{outcome}.csv")
analysis.write_failures(failures, config.run_dir(run) / "tables" / f"failures__03_did__{outcome}.csv")
print(f"not estimated: {len(failures)} analyses" if failures else "every analysis estimated")

# %% [markdown]
# ## Headline estimates
#
# Effect by estimator and window on the estimation scale, its 95% interval, and the same
# as a percentage change. A negative effect means fewer admissions (or bed days,
# attendances) than the control trend predicts. Each estimator's full table (every
# analysis it returns) is in `results/did__<outcome>__<group>__<estimator>.csv`; the report
# compares estimators across the grid from these files. The effect of each cohort (areas
# that started in the same month) is in `results/cohort__<outcome>.csv`.

# %%
# NBVAL_CHECK_OUTPUT
for (group, estimator), rows in main.groupby(["grid_group", "grid_estimator"], sort=False):
    print(f"{outcome} | {group} | {estimator} | scale {rows['scale'].iloc[0]}")
    print(rows[["window", "estimate", "ci_low", "ci_high", "p_value", "pct", "inference",
                "n_treated", "n_control"]].round(3).to_string(index=False))

# %% [markdown]
# ## Effects by cohort
#
# Callaway & Sant'Anna's effect for each cohort of areas that started in the same month
# (the mean of its post-period group-time effects). A group whose areas all started in one
# month has a single cohort.

# %%
# NBVAL_CHECK_OUTPUT
if len(cohorts):
    print(cohorts[["group", "estimator", "window", "n_treated", "estimate", "ci_low",
                   "ci_high"]].round(3).to_string(index=False))
else:
    print("no Callaway-Sant'Anna estimator in this run: no per-cohort effects")
