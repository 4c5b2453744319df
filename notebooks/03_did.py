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
#   design of Morciano et al.; every treated area starts within five months of the others,
#   so the staggering is mild;
# * `twfe_poisson` - the same design as a Poisson fixed-effects model: effects are log rate
#   ratios, robust to areas of very different size;
# * `cs_never`, `cs_notyet` - Callaway & Sant'Anna group-time effects against never-treated
#   or not-yet-treated areas, aggregated to the same windows; robust to effects that change
#   over time and across start dates;
# * `imputation` - Borusyak, Jaravel & Spiess: fit area and month effects on untreated
#   area-months only and impute the counterfactual.
#
# Inference: with few treated areas, cluster-robust standard errors over-reject. `auto`
# applies the project's rule (wild cluster bootstrap or randomisation inference when the
# treated clusters are few); see `vanguard.did.inference`.

# %%
import pandas as pd

from vanguard import analysis, config, schema

# %% tags=["parameters"]
run: str = "default"  # run name; reads reports/<run>/data/panel.parquet written by 01_data
outcome: str = "emergency_admissions"  # outcome column of the panel
groups: list = ["population_based", "care_home", "uec"]  # site groups, each estimated alone
estimators: list = ["twfe", "twfe_poisson", "cs_never", "cs_notyet", "imputation"]  # estimators
scale: str = "rate"  # rate (per 1,000; needs population), log or count (poisson for twfe)
pre_months: int = 24  # months of pre-period before the start
inference: str = "auto"  # twfe only: cluster, wild_bootstrap, randomisation or auto
n_boot: int = 999  # bootstrap or permutation draws
seed: int = 20150310  # seed of every random draw

# %%
panel = pd.read_parquet(config.run_dir(run) / "data" / "panel.parquet")
data_source = panel.attrs.get("data_source", "custom")

# %% [markdown]
# ## Estimate
#
# Each estimator returns the project's tidy results table: one row per window, with the
# estimate on its scale, a 95% confidence interval, the p-value, the numbers of treated and
# control areas and the effect as a percentage of the treated group's pre-period mean.

# %%
results_dir = config.run_dir(run) / "results"
main = []
for group in groups:
    for estimator in estimators:
        results = analysis.estimate(panel, outcome, estimator=estimator, group=group,
                                    scale=scale, pre_months=pre_months, inference=inference,
                                    n_boot=n_boot, seed=seed, data_source=data_source)
        schema.write_results(results, results_dir / f"did__{outcome}__{group}__{estimator}.csv")
        main.append(results[results["analysis"] == "main"]
                    .assign(grid_group=group, grid_estimator=estimator))
main = pd.concat(main, ignore_index=True)

# %% [markdown]
# ## Headline estimates
#
# Effect by estimator and window on the estimation scale, its 95% interval, and the same
# as a percentage change. A negative effect means fewer admissions (or bed days,
# attendances) than the control trend predicts. Each estimator's full table (every
# analysis it returns) is in `results/did__<outcome>__<group>__<estimator>.csv`; the report
# compares estimators across the grid from these files.

# %%
# NBVAL_CHECK_OUTPUT
for (group, estimator), rows in main.groupby(["grid_group", "grid_estimator"], sort=False):
    print(f"{outcome} | {group} | {estimator} | scale {rows['scale'].iloc[0]}")
    print(rows[["window", "estimate", "ci_low", "ci_high", "p_value", "pct", "inference",
                "n_treated", "n_control"]].round(3).to_string(index=False))
