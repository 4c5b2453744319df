# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 05 Robustness: placebos, inference, single sites and power
#
# How much should we trust the main estimate? This notebook asks five questions of one
# outcome, for each site group in turn:
#
# 1. **Placebo start dates** - pretend the programme started earlier, inside the
#    pre-period. A real effect should not appear before the programme existed.
# 2. **Inference variants** - cluster-robust, wild cluster bootstrap and randomisation
#    inference. With few treated areas they can disagree; the project reports the more
#    cautious one (see `vanguard.did.inference`).
# 3. **Leave one site out** - re-estimate the years 1-3 effect without each vanguard site
#    in turn: is the pooled effect driven by one site?
# 4. **Per-site effects** - a forest plot of each site's own estimate, with intervals that
#    are honest about a single treated area (Conley-Taber placebo intervals).
# 5. **Minimum detectable effect** - by simulation on the pre-period, the smallest effect
#    this design would detect with 80% power. A null result is only informative if the
#    MDE is smaller than the effect the programme hoped for.

# %%
import pandas as pd

from vanguard import analysis, config, plots, schema
from vanguard.params import check_parameters

# %% tags=["parameters"]
run: str = "default"  # run name; reads reports/<run>/data/panel.parquet written by 01_data
outcome: str = "emergency_admissions"  # outcome column of the panel
groups: list = ["population_based", "care_home", "uec"]  # treatment groups, each checked alone
scale: str = "rate"  # rate (per 1,000; needs population), log or count
pre_months: int = 24  # months of pre-period before the earliest start
placebo_shifts: list = [-24, -12]  # placebo starts, months relative to the real start (< 0)
inference: str = "auto"  # placebo and leave-one-out: cluster, wild_bootstrap, randomisation, auto
inference_variants: list = ["cluster", "wild_bootstrap", "randomisation"]  # methods compared
n_boot: int = 999  # bootstrap/permutation draws of placebo, leave-one-out and per-site intervals
n_perm: int = 999  # permutation draws of the randomisation-inference variant
n_sims: int = 200  # simulations for the minimum detectable effect
mde_draws: int = 199  # bootstrap or permutation draws inside each power simulation
powers: list = [0.8, 0.9]  # statistical power(s) at which to report the minimum detectable effect
hoped_for_pct: float = 3.0  # % reduction the programme hoped for, drawn on the MDE chart
seed: int = 20150310  # seed of every random draw

# %%
# every parameter checked for its value, whether it came from a parameter set or from
# papermill -p (an unknown name or a value such as n_boot "abc" stops here)
check_parameters("05_robustness", globals())

# %%
panel = pd.read_parquet(config.run_dir(run) / "data" / "panel.parquet")
data_source = panel.attrs.get("data_source", "custom")
analysis.require_groups(panel, groups)
note = plots.source_note(data_source)
results_dir = config.run_dir(run) / "results"
specs = {group: analysis.Spec(outcome, group, scale=scale, pre_months=pre_months,
                              inference=inference, n_boot=n_boot, seed=seed,
                              data_source=data_source)
         for group in groups}
failures = []  # analyses a group's data cannot support: recorded, the others go on

# %% [markdown]
# ## 1. Placebo start dates

# %%
# NBVAL_CHECK_OUTPUT
for group in groups:
    with analysis.group_guard(failures, notebook="05_robustness", outcome=outcome,
                              group=group, analysis="placebo start dates"):
        placebo = analysis.placebo(panel, specs[group], shifts=placebo_shifts)
        schema.write_results(placebo, results_dir / f"placebo__{outcome}__{group}.csv")
        print(f"{outcome} | {group}")
        print(placebo[["param", "window", "estimate", "ci_low", "ci_high", "p_value"]]
              .round(3).to_string(index=False))

# %% [markdown]
# ## 2. Inference variants

# %%
# NBVAL_CHECK_OUTPUT
variants = {}
for group in groups:
    with analysis.group_guard(failures, notebook="05_robustness", outcome=outcome,
                              group=group, analysis="inference variants"):
        both = pd.concat(
            [analysis.estimate(panel, specs[group].replace(
                inference=method, n_boot=n_perm if method == "randomisation" else n_boot),
                "twfe") for method in inference_variants],
            ignore_index=True,
        )
        variants[group] = both[both["analysis"] == "main"].assign(analysis="inference")
        schema.write_results(variants[group], results_dir / f"inference__{outcome}__{group}.csv")
        print(f"{outcome} | {group}")
        print(variants[group][["window", "inference", "estimate", "ci_low", "ci_high",
                               "p_value"]].round(3).to_string(index=False))

# %% [markdown]
# ## 3. Leave one site out

# %%
for group in groups:
    with analysis.group_guard(failures, notebook="05_robustness", outcome=outcome,
                              group=group, analysis="leave one site out"):
        loo = analysis.leave_one_out(panel, specs[group])
        schema.write_results(loo, results_dir / f"leave_one_out__{outcome}__{group}.csv")
        print(f"{outcome} | {group}")
        print(loo[["site", "window", "estimate", "ci_low", "ci_high"]]
              .round(3).to_string(index=False))

# %% [markdown]
# ## 4. Per-site effects

# %%
per_site_results = {}
for group in groups:
    with analysis.group_guard(failures, notebook="05_robustness", outcome=outcome,
                              group=group, analysis="per-site effects"):
        # per site, "auto" is the placebo-based interval: one treated area has no usable
        # cluster-robust or bootstrap error
        per_site = analysis.per_site(panel, specs[group].replace(windows=("years_1_3",),
                                                                 inference="auto"))
        schema.write_results(per_site, results_dir / f"per_site__{outcome}__{group}.csv")
        per_site_results[group] = per_site

# %% [markdown]
# One forest plot for every group: sites by name, sorted by their estimate, squares sized
# by inverse-variance weight. The diamond is the group's headline estimate (two-way fixed
# effects over years 1-3, with the inference the headline rule picks), the same number
# as the main results, when the inference variants above include that method; otherwise
# it is the inverse-variance pool of the sites, and the chart says so. With one start
# month and a balanced panel, the two-way fixed-effects estimate is the mean of the
# sites' estimates weighted by their numbers of areas, so a site with many areas pulls it
# more than its square suggests.

# %%
if per_site_results:
    forest = pd.concat(per_site_results.values(), ignore_index=True)
    headline = [plots.headline_twfe(variants[g], inference) for g in per_site_results
                if g in variants]
    headline = pd.concat(headline, ignore_index=True) if headline else None
    fig = plots.plot_forest(forest, names=plots.site_names(data_source), pooled=headline)
    png = plots.save_figure(
        fig, f"forest_{outcome}", run, source_note=note,
        data=forest if headline is None else pd.concat(
            [forest, headline.assign(analysis="headline", site="")], ignore_index=True),
        alt_text=(f"Forest plot of each vanguard site's own effect on "
                  f"{plots.outcome_label(outcome).lower()} over years 1-3 with 95% intervals, "
                  f"sites sorted by estimate within each site type, squares sized by "
                  f"inverse-variance weight, and each type's headline estimate as a diamond."),
    )

# %% [markdown]
# ## 5. Minimum detectable effect

# %%
# NBVAL_CHECK_OUTPUT
mde = {}
for group in groups:
    with analysis.group_guard(failures, notebook="05_robustness", outcome=outcome,
                              group=group, analysis="minimum detectable effect"):
        mde[group] = analysis.mde(panel, specs[group].replace(n_boot=mde_draws), powers=powers,
                                  n_sims=n_sims)
        schema.write_results(mde[group], results_dir / f"power__{outcome}__{group}.csv")
        print(f"{outcome} | {group}")
        print(mde[group][["window", "param", "estimate", "pct"]].round(3)
              .to_string(index=False))

# %% [markdown]
# One small chart for every group: the smallest reduction this design detects with each
# power, as a % of the pre-period mean, beside the reduction the programme hoped for.

# %%
if mde:
    mde_all = pd.concat(mde.values(), ignore_index=True)
    fig = plots.plot_mde(mde_all, hoped_for_pct=hoped_for_pct)
    png = plots.save_figure(
        fig, f"mde_{outcome}", run, data=mde_all, source_note=note,
        alt_text=(f"Minimum detectable reduction in {plots.outcome_label(outcome).lower()} "
                  f"over years 1-3 for each vanguard site type, at "
                  + ", ".join(f"{100 * p:g}%" for p in powers)
                  + f" power, beside the hoped-for reduction of {hoped_for_pct:g}%: "
                  + "; ".join(f"{plots.group_label(r.group)} {abs(r.pct):.1f}% at "
                              f"{100 * r.param:g}% power"
                              for r in mde_all[(mde_all["analysis"] == "power")
                                               & mde_all["pct"].notna()].itertuples())
                  + "."),
    )

# %% [markdown]
# ## What could not be estimated
#
# An analysis that a group's data cannot support (for example leaving one site out of a
# group with a single site) is recorded here and named in the report; the other groups'
# analyses still ran.

# %%
# NBVAL_CHECK_OUTPUT
analysis.write_failures(failures, config.run_dir(run) / "tables"
                        / f"failures__05_robustness__{outcome}.csv")
for f in failures:
    print(f"{f['analysis']} | {f['group']}: {f['error']}")
print(f"not estimated: {len(failures)} analyses" if failures else "every analysis estimated")
