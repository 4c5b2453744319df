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
import json

from vanguard import config, schema
from vanguard.params import check_parameters
from vanguard.report import build_report

# %% tags=["parameters"]
run: str = "default"  # run name; assembles reports/<run>/
allow_incomplete: bool = False  # True: build a draft with a failure banner after a failure

# %%
# every parameter checked for its value, whether it came from a parameter set or from
# papermill -p (an unknown name or a value such as n_boot "abc" stops here)
check_parameters("06_report", globals())

# %% [markdown]
# ## Did every analysis run?
#
# When the run is driven by `vanguard-report`, `manifest.json` lists the notebooks run so
# far. After a failure no report is built, unless `allow_incomplete` asks for a draft,
# which then carries a banner naming the failed notebooks on every page.

# %%
manifest_file = config.run_dir(run) / "manifest.json"
manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
failed = [nb["output"] for nb in manifest.get("notebooks", []) if not nb.get("ok", True)]
print(f"failed notebooks: {failed}" if failed else "no failed notebooks")

# %% [markdown]
# ## What the run produced

# %%
# NBVAL_CHECK_OUTPUT
results = schema.read_results(sorted((config.run_dir(run) / "results").glob("*.csv")))
print(results.groupby(["analysis", "estimator"]).size().to_string())

# %%
html_path, pdf_path = build_report(run, allow_incomplete=allow_incomplete)
print(f"report: {html_path.relative_to(config.reports_dir())}, "
      f"{pdf_path.relative_to(config.reports_dir())}")
