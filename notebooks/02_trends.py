# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 02 Trends: what happened before and after the vanguards started
#
# Before estimating anything, look at the data. For each outcome this notebook shows
#
# * **indexed trends by site type** - each group's monthly mean, with its own pre-period
#   mean set to 100, so groups of different sizes share one axis. Difference-in-differences
#   assumes that, without the programme, vanguard areas would have followed the control
#   areas' trend: the pre-period lines should run roughly parallel;
# * **seasonality** - the average month-of-year profile; emergency admissions and bed days
#   peak in winter, A&E attendances in summer. Estimators absorb it with month fixed effects;
#   here we check that the groups share it;
# * **pre-period balance** - treated and control areas compared on pre-period level and
#   growth. Large differences in *growth* are a warning for the parallel-trends assumption.

# %%
import pandas as pd

from vanguard import analysis, config, plots, schema
from vanguard.io import write_csv
from vanguard.mar import crosswalk
from vanguard.params import check_parameters

# %% tags=["parameters"]
run: str = "default"  # run name; reads reports/<run>/data/panel.parquet written by 01_data
outcomes: list = ["emergency_admissions", "bed_days", "ae_attendances"]  # outcomes to describe
pre_months: int = 24  # months before the earliest start that form the base and pre-period
freq: str = "Q"  # period of the trend charts: M (month), Q (quarter), Y or FY (financial year)

# %%
# every parameter checked for its value, whether it came from a parameter set or from
# papermill -p (an unknown name or a value such as n_boot "abc" stops here)
check_parameters("02_trends", globals())

# %%
panel = pd.read_parquet(config.run_dir(run) / "data" / "panel.parquet")
data_source = panel.attrs.get("data_source", "custom")
note = plots.source_note(data_source)

# %% [markdown]
# ## Indexed trends by site type
#
# One chart per outcome: the programme's first start is the dashed line. On the NHS data,
# dotted lines mark the merger waves of the CCG crosswalk (April 2015, 2017, 2018, 2019)
# that fall inside the panel's months: an area's counts can jump then for reasons that
# have nothing to do with the programme (the panel folds every merger into one footprint).

# %%
events = (plots.merger_events(crosswalk.read_crosswalk(),
                              within=(panel[schema.MONTH].min(), panel[schema.MONTH].max()))
          if data_source == "nhs_mar" else None)
first_start = panel[schema.START].min()
for outcome in outcomes:
    trends = analysis.indexed_trends(panel, outcome, freq=freq, pre_months=pre_months)
    fig = plots.plot_trends(trends, first_start=first_start, events=events)
    marked = ("" if events is None or events.empty else
              " Dotted lines: CCG mergers (" + "; ".join(events["label"]) + ").")
    png = plots.save_figure(
        fig, f"trends_{outcome}", run, data=trends, source_note=note,
        alt_text=(f"Line chart of {plots.outcome_label(outcome).lower()} by vanguard site type "
                  f"and for the control areas, indexed to each group's pre-period mean (100), "
                  f"by period. Dashed line: the first start ({first_start:%B %Y}).{marked}"),
    )

# %% [markdown]
# ## Seasonality
#
# Index by calendar month (100 = an average month), for all areas and by group: each
# area's rate divided by its centred 12-month moving average, which removes level and trend.

# %%
season = pd.concat(
    [analysis.seasonality(panel, outcome, by_group=True).assign(outcome=outcome)
     for outcome in outcomes],
    ignore_index=True,
)
season.pivot_table(index="month_name", columns=["outcome", "group"], values="index",
                   sort=False).round(1)

# %% [markdown]
# ## Pre-period balance
#
# Each analysis group's treated areas against the controls before the programme: level,
# annual growth and population, with the standardised difference (|d| > 0.25 flags
# imbalance). Written, with the seasonal profile, to `tables/` in the run folder.

# %%
balance = analysis.pre_period_balance(panel, outcomes)
# NBVAL_CHECK_OUTPUT
print(balance[["group", "outcome", "measure", "mean_treated", "mean_control", "std_diff"]]
      .round(3).to_string(index=False))

# %%
tables = config.run_dir(run) / "tables"
balance_file = write_csv(tables / "balance.csv", balance, float_format="%.10g")
season_file = write_csv(tables / "seasonality.csv", season, float_format="%.10g")
