# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 04 Event study: dynamics, pre-trends and sensitivity to their violation
#
# The difference-in-differences estimate averages over the post-period. An **event study**
# estimates the gap between treated and control areas at each time relative to the start
# (months or quarters), against the period just before it:
#
# * **leads** (before the start) test the parallel-trends assumption: they should be close
#   to zero, and a joint Wald test reports whether they are jointly different from zero;
# * **lags** (after the start) show whether effects build up, fade or appear at once.
#
# A pre-trend test that does not reject is weak evidence with few treated areas. **HonestDiD**
# (Rambachan & Roth 2023) asks instead how large a violation of parallel trends would
# overturn the conclusion: under "relative magnitudes", the post-period violation is at most
# `M` times the largest pre-period one. We report robust intervals for several `M`.

# %%
import pandas as pd

from vanguard import analysis, config, plots, schema
from vanguard.params import check_parameters

# %% tags=["parameters"]
run: str = "default"  # run name; reads reports/<run>/data/panel.parquet written by 01_data
outcome: str = "emergency_admissions"  # outcome column of the panel
groups: list = ["population_based", "care_home", "uec"]  # treatment groups, each studied alone
scale: str = "rate"  # rate (per 1,000; needs population), log, poisson or count
pre_months: int = 24  # months of pre-period before the earliest start
unit: str = "quarter"  # event time unit: month, or quarter (since each area's own start)
leads: int = 8  # periods before the start estimated separately (earlier ones binned)
lags: int = 12  # periods after the start estimated separately (later ones binned)
mbar: list = [0.0, 0.5, 1.0, 1.5, 2.0]  # HonestDiD relative-magnitude bounds Mbar to report
inference: str = "auto"  # auto (the headline rule), cluster or wild_bootstrap
n_boot: int = 999  # bootstrap draws (pointwise intervals and the pre-trend test)
seed: int = 20150310  # seed of every random draw

# %%
# every parameter checked for its value, whether it came from a parameter set or from
# papermill -p (an unknown name or a value such as n_boot "abc" stops here)
check_parameters("04_event_study", globals())

# %%
panel = pd.read_parquet(config.run_dir(run) / "data" / "panel.parquet")
data_source = panel.attrs.get("data_source", "custom")
analysis.require_groups(panel, groups)
results_dir = config.run_dir(run) / "results"
specs = {group: analysis.Spec(outcome, group, scale=scale, pre_months=pre_months, unit=unit,
                     inference=inference, n_boot=n_boot, seed=seed, data_source=data_source)
         for group in groups}

# %% [markdown]
# ## Event study
#
# One event study per site group, each against the control areas.

# %%
studies = {}
failures = []  # analyses a group's data cannot support: recorded, the others go on
for group in groups:
    with analysis.group_guard(failures, notebook="04_event_study", outcome=outcome,
                              group=group, analysis="event study"):
        studies[group] = analysis.event_study(panel, specs[group], leads=leads, lags=lags)

# %%
# NBVAL_CHECK_OUTPUT
coefs = {}
pretrend_p = {}
for group, es in studies.items():
    coefs[group] = es[es["analysis"] == "event_study"].reset_index(drop=True)
    pretrend = es[es["analysis"] == "pretrend"]
    pretrend_p[group] = float(pretrend["p_value"].iloc[0]) if len(pretrend) else None
    print(f"{outcome} | {group} | event study by {unit} | scale {scale}")
    print(f"joint pre-trend test p-value: {pretrend_p[group]:.3f}"
          if pretrend_p[group] is not None else "joint pre-trend test: not available")
    print(coefs[group][["rel_time", "estimate", "ci_low", "ci_high"]]
          .round(3).to_string(index=False))

# %% [markdown]
# ## HonestDiD: how robust is the average post-period effect?
#
# HonestDiD needs the full covariance of the event-study coefficients, measured against one
# reference period. We take them from the Callaway & Sant'Anna event study with a
# *universal* base period (every period compared with the one before the start), which
# is robust to staggered starts (on the Poisson scale, from the Poisson event study); the
# bounds use the analytic covariance, so the specification asks for cluster inference. For each `Mbar`, the robust 95% interval for the average
# post-period effect: if it still excludes zero at `Mbar = 1` (post-period violations as
# large as the worst pre-period one), the conclusion does not hinge on exact parallel
# trends. The row with no `Mbar` is the usual interval under parallel trends.

# %%
# NBVAL_CHECK_OUTPUT
for group in studies:
    honest = schema.results_frame([])
    with analysis.group_guard(failures, notebook="04_event_study", outcome=outcome,
                              group=group, analysis="HonestDiD"):
        honest = analysis.honest(panel, specs[group].replace(inference="cluster"), mbar=mbar)
        print(f"{outcome} | {group} | HonestDiD, relative magnitudes")
        print(honest[["param", "estimate", "ci_low", "ci_high"]].round(3).to_string(index=False))
    schema.write_results(pd.concat([studies[group], honest], ignore_index=True),
                         results_dir / f"event_study__{outcome}__{group}.csv")
analysis.write_failures(failures, config.run_dir(run) / "tables"
                        / f"failures__04_event_study__{outcome}.csv")
print(f"not estimated: {len(failures)} analyses" if failures else "every analysis estimated")

# %% [markdown]
# ## Event studies side by side
#
# One panel per site group on a shared vertical axis, by time since each area's own start,
# with the post-period years shaded. Each panel prints the joint pre-trend test p-value
# and the HonestDiD breakdown value: the largest `Mbar` of the grid up to which the robust
# interval of the average post-period effect still excludes zero.

# %%
if studies:
    es_all = pd.concat([schema.read_results(results_dir / f"event_study__{outcome}__{group}.csv")
                        for group in studies], ignore_index=True)
    summary = plots.event_study_summary(es_all)
    fig = plots.plot_event_study(es_all, unit=unit)
    png = plots.save_figure(
        fig, f"event_study_{outcome}", run, data=es_all,
        source_note=plots.source_note(data_source),
        alt_text=(f"Event studies of {plots.outcome_label(outcome).lower()}, one panel per "
                  f"vanguard site type on a shared axis: effect by {unit} since the area's "
                  f"start with 95% intervals, post-period years shaded. "
                  + " ".join(f"{plots.group_label(r.group)}: pre-trend test "
                             f"{r.pretrend_text}, HonestDiD breakdown value "
                             f"{r.breakdown_text}." for r in summary.itertuples())),
    )
