# ---
# jupyter:
#   kernelspec:
#     display_name: Python (vanguard-did)
#     language: python
#     name: vanguard-did
# ---

# %% [markdown]
# # 06 Report: assemble the run into one document
#
# Notebooks 01-05 wrote tidy results files (`results/*.csv`) and figures with their data
# (`figures/`) into the run folder. This notebook assembles them, with the published
# estimates for comparison and the lessons register, into `report.html` and `report.pdf`.
# Nothing is re-estimated here: the report shows exactly the numbers in the results files.

# %%
from vanguard import config, schema
from vanguard.report import build_report

# %% tags=["parameters"]
run: str = "default"  # run name; assembles reports/<run>/

# %% [markdown]
# ## What the run produced

# %%
# NBVAL_CHECK_OUTPUT
results = schema.read_results(sorted((config.run_dir(run) / "results").glob("*.csv")))
print(results.groupby(["analysis", "estimator"]).size().to_string())

# %%
html_path, pdf_path = build_report(run)
print(f"report: {html_path.relative_to(config.reports_dir())}, "
      f"{pdf_path.relative_to(config.reports_dir())}")
