# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 03 Difference-in-differences: one outcome, one site group, one estimator
#
# This notebook is one cell of the analysis grid: it estimates the effect of one vanguard
# **site group** on one **outcome** with one **estimator**, in each post-period window
# (years 1-3 together, and each year on its own), following Morciano et al. (2020).
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

from vanguard import config, plots, schema
from vanguard.did.imputation import estimate_imputation
from vanguard.did.staggered import estimate_cs
from vanguard.did.twfe import estimate_twfe

# %% tags=["parameters"]
run: str = "default"  # run name; reads reports/<run>/data/panel.parquet written by 01_data
outcome: str = "emergency_admissions"  # outcome column of the panel
group: str = "population_based"  # site group: population_based, care_home or uec
estimator: str = "twfe"  # twfe, twfe_poisson, cs_never, cs_notyet or imputation
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
if estimator in ("twfe", "twfe_poisson"):
    results = estimate_twfe(
        panel, outcome, scale="poisson" if estimator == "twfe_poisson" else scale,
        groups=(group,), pre_months=pre_months, inference=inference, n_boot=n_boot, seed=seed,
    )
elif estimator in ("cs_never", "cs_notyet"):
    results = estimate_cs(
        panel, outcome, scale=scale, group=group, control=estimator.removeprefix("cs_"),
        seed=seed, data_source=data_source,
    )
elif estimator == "imputation":
    results = estimate_imputation(panel, outcome, scale=scale, groups=(group,),
                                  windows=tuple(schema.WINDOWS))
else:
    raise ValueError(f"estimator {estimator!r}: expected twfe, twfe_poisson, cs_never, "
                     "cs_notyet or imputation")

main = results[results["analysis"] == "main"].reset_index(drop=True)

# %% [markdown]
# ## Headline estimates
#
# Effect by window on the estimation scale, its 95% interval, and the same as a percentage
# change. A negative effect means fewer admissions (or bed days, attendances) than the
# control trend predicts.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{outcome} | {group} | {estimator} | scale {main['scale'].iloc[0]}")
print(main[["window", "estimate", "ci_low", "ci_high", "p_value", "pct", "inference",
            "n_treated", "n_control"]].round(3).to_string(index=False))

# %% [markdown]
# ## Save
#
# The full table (every analysis the estimator returns) goes to `results/`; the report
# compares estimators across the grid from these files.

# %%
cell = f"{outcome}__{group}__{estimator}"
schema.write_results(results, config.run_dir(run) / "results" / f"did__{cell}.csv")
plots.plot_estimator_comparison(main)
