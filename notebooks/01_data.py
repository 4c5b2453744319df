# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 01 Data: load and validate the analysis panel
#
# Every later notebook analyses one **area x month panel**: one row per area (a CCG on the
# real data) and month, with outcome counts, the area's vanguard group (population-based,
# care-home, both, urgent & emergency care, or control) and the month its exposure starts.
#
# This notebook loads the panel from the chosen source, validates it against the panel
# contract (`vanguard.panel`), and writes it **once** to the run folder as parquet. The
# estimation notebooks read that file, so the source is parsed and validated only once per
# run.
#
# Sources:
#
# * `synthetic` (default) - the embedded synthetic England in `data/raw/synthetic/`. It is
#   **not real NHS data**: it has known, planted effects so that the estimators can be checked
#   against the truth.
# * `nhs_mar` - NHS England Monthly Activity Return (commissioner-based counts, no
#   populations, so analyse it on the `log` or `poisson` scale).
# * `custom` - your own panel, named relative to `data/raw/`, with either your own
#   programme's treatment groups (a groups file: group, area, start month, optional site)
#   or a vanguard-style site register.

# %%
import pandas as pd

from vanguard import config, schema
from vanguard.flow import area_flow
from vanguard.io import write_csv, write_parquet
from vanguard.panel import CORE_COLUMNS, MAR_DENOMINATORS, load_panel
from vanguard.params import check_parameters

# %% tags=["parameters"]
run: str = "default"  # run name; outputs go to reports/<run>/
data_source: str = "synthetic"  # synthetic (embedded), nhs_mar (NHS MAR files) or custom
custom_panel: str = ""  # custom only: panel file (CSV or parquet), relative to data/raw/
custom_sites: str = ""  # custom only: site register CSV, relative to data/raw/
custom_site_areas: str = ""  # custom only: site-to-area footprint CSV, relative to data/raw/
custom_groups: str = ""  # custom only: your treatment groups CSV (instead of a site register)
first_month: str = ""  # first month to keep, e.g. "2013-04" ("" keeps every month)
mar_end: str = ""  # nhs_mar only: last month of the panel; "" means 2018-03 (end of funding)
mar_mixed: str = "exclude"  # nhs_mar only: areas mixing vanguard and control CCGs: exclude or keep
mar_quality: str = "drop"  # nhs_mar only: areas failing the data-quality rule: drop or keep

# %%
# every parameter checked for its value, whether it came from a parameter set or from
# papermill -p (an unknown name or a value such as n_boot "abc" stops here)
check_parameters("01_data", globals())

# %% [markdown]
# ## Load and validate
#
# `load_panel` raises a `DataError` naming the file, row and column of any value that
# breaks the contract, so a panel that reaches the next cell is valid.

# %%
panel = load_panel(
    data_source,
    path=config.DATA_RAW / custom_panel if custom_panel else None,
    sites_path=config.DATA_RAW / custom_sites if custom_sites else None,
    areas_path=config.DATA_RAW / custom_site_areas if custom_site_areas else None,
    groups_path=config.DATA_RAW / custom_groups if custom_groups else None,
    # The MAR panel's window (its footprint follows), mixed-area and data-quality rules.
    **(
        {"mixed": mar_mixed, "quality": mar_quality, **({"end": mar_end} if mar_end else {})}
        if data_source == "nhs_mar"
        else {}
    ),
)
if first_month:
    n_before = len(panel)
    panel = panel[panel[schema.MONTH] >= first_month].reset_index(drop=True)
    print(f"Dropped {n_before - len(panel):,} area-months before {first_month}.")
panel.attrs["data_source"] = data_source

# %% [markdown]
# ## What the panel holds
#
# Areas by treatment group (for the vanguards: population-based, care-home, both, urgent &
# emergency care, control), the months covered and the outcomes. The counts of areas are
# the design: few treated areas mean wide intervals whatever the estimator.

# %%
# NBVAL_CHECK_OUTPUT
outcomes = [c for c in panel.columns if c not in CORE_COLUMNS + MAR_DENOMINATORS]
areas = panel.drop_duplicates(schema.AREA)
print(f"data source: {data_source}")
print(f"months: {panel[schema.MONTH].min():%Y-%m} to {panel[schema.MONTH].max():%Y-%m}")
print(f"areas: {len(areas)}; area-months: {len(panel)}")
print(f"outcomes: {', '.join(outcomes)}")
print(areas[schema.GROUP].value_counts().sort_index().to_string())

# %% [markdown]
# ## Write the validated panel
#
# `reports/<run>/data/panel.parquet` is the single input of notebooks 02-05.

# %%
panel_file = write_parquet(config.run_dir(run) / "data" / "panel.parquet", panel)
print(f"wrote {panel_file.relative_to(config.reports_dir())}")

# %% [markdown]
# ## Flow of areas
#
# From sites to the panel, by group: every count of areas in the report reconciles with
# `tables/flow.csv`. On the real data each CCG area's record (`tables/areas.csv`) says
# which sites it belongs to, whether they cover all of it, and why an area is out
# (mixing vanguard and control CCGs, or failing the data-quality rule).

# %%
# NBVAL_CHECK_OUTPUT
flow = area_flow(panel)
write_csv(config.run_dir(run) / "tables" / "flow.csv", flow)
if "areas" in panel.attrs:
    write_csv(config.run_dir(run) / "tables" / "areas.csv", pd.DataFrame(panel.attrs["areas"]))
print(flow[["step", "group", "n"]].to_string(index=False))
