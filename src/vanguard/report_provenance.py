"""The data availability and reproducibility box, from the run's manifest and the data
manifests committed beside the raw data.

It names each data set with its vintage and public address, and the code version
(commit and whether the working tree was clean), the parameter set, the seed and the
package versions, so that a reader can obtain the data and re-run the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from vanguard import config


def _short(path: str) -> str:
    """A path as the report may print it: relative to the project, or the file name."""
    p = Path(str(path))
    try:
        return str(p.resolve().relative_to(config.ROOT))
    except (ValueError, OSError):
        return p.name


def _mar_vintage(manifest: dict, run_path: Path | None) -> str:
    path = config.DATA_RAW / "nhs_mar_manifest.csv"
    used = {Path(k).name for k in manifest.get("inputs", {}) if k.startswith("$MAR_DIR/")}
    if not path.is_file():
        return "NHS England Monthly Activity Return (file list not found)."
    m = pd.read_csv(path, dtype=str, keep_default_na=False)
    if used:
        m = m[m["file"].isin(used)]
    if m.empty:
        return "NHS England Monthly Activity Return (no files of this run in its manifest)."
    urls = [u for u in m["source_url"] if u]
    prefix = os.path.commonprefix(urls).rsplit("/", 1)[0] + "/" if urls else ""
    span = _panel_months(run_path)
    return (f"NHS England Monthly Activity Return, commissioner-based, {len(m)} monthly "
            f"files {m['month'].min()} to {m['month'].max()} as published (Open Government "
            "Licence v3.0)" + (f", of which the panel uses {span}" if span else "")
            + (f"; downloaded from {prefix}" if prefix else "")
            + "; each file's address and sha256 are in data/raw/nhs_mar_manifest.csv.")


def _panel_months(run_path: Path | None) -> str:
    path = run_path / "data" / "panel.parquet" if run_path is not None else None
    if path is None or not path.is_file():
        return ""
    months = pd.to_datetime(pd.read_parquet(path, columns=["month"])["month"])
    return f"{months.min():%B %Y} - {months.max():%B %Y}"


def _population_sources() -> list[str]:
    path = config.DATA_RAW / "population_manifest.csv"
    if not path.is_file():
        return []
    m = pd.read_csv(path, dtype=str, keep_default_na=False)
    kinds = {}
    for _, r in m.iterrows():
        what = r.get("what_it_is", "").split(":")[0].split(";")[0].strip()
        host = urlsplit(r.get("source_url", "")).netloc
        kinds.setdefault(what, set()).add(host)
    return [f"{what} ({', '.join(sorted(h for h in hosts if h))})"
            for what, hosts in kinds.items() if what]


def data_availability(manifest: dict, data_source: str, run_path: Path | None = None
                      ) -> list[str]:
    """One line per data set the run used, with vintage and address.

    Parameters
    ----------
    manifest : dict
        ``manifest.json`` of the run.
    data_source : str
    run_path : pathlib.Path, optional
        The run folder, whose ``data/panel.parquet`` gives the months the panel uses.

    Returns
    -------
    list of str
    """
    params = manifest.get("parameters", {}) if isinstance(manifest.get("parameters"),
                                                          dict) else {}
    inputs = manifest.get("inputs", {})
    if data_source == "synthetic":
        sha = inputs.get("data/raw/synthetic/panel.csv", "")
        lines = ["Synthetic England: data/raw/synthetic/panel.csv, made by the project's "
                 "generator with a fixed seed and committed with the code (not real NHS "
                 "data)" + (f"; sha256 {sha[:16]}..." if sha else "") + "."]
    elif data_source == "nhs_mar":
        lines = [_mar_vintage(manifest, run_path)]
        pops = _population_sources()
        if pops:
            lines.append("Population denominators: " + "; ".join(pops)
                         + "; addresses and sha256 in data/raw/population_manifest.csv.")
    else:
        nb = params.get("notebooks", {}).get("01_data", {}) if isinstance(
            params.get("notebooks"), dict) else {}
        files = [nb.get(k) for k in ("custom_panel", "custom_groups", "custom_sites",
                                     "custom_site_areas") if nb.get(k)]
        lines = ["User-supplied data" + (": " + ", ".join(_short(f) for f in files)
                                         if files else "") + "."]
    if data_source in ("synthetic", "nhs_mar"):
        lines.append("Vanguard site register and CCG footprints: data/raw/vanguard_sites.csv "
                     "and data/raw/vanguard_site_ccgs.csv (facts from public NHS England "
                     "pages, each link with its evidence); published comparison figures: "
                     "data/raw/published_results.csv.")
    return lines


def reproducibility(manifest: dict) -> list[str]:
    """Commit, dirty flag, parameter file, seed, date, restored notebook runs and package
    versions."""
    params = manifest.get("parameters", {}) if isinstance(manifest.get("parameters"),
                                                          dict) else {}
    commit = str(manifest.get("git_commit") or "unknown")
    dirty = manifest.get("git_dirty")
    state = {True: "with uncommitted changes (the commit alone does not reproduce this run)",
             False: "clean working tree"}.get(dirty, "whether the tree was clean is unknown")
    lines = [f"Code: commit {commit} ({state})." if commit != "unknown" else
             "Code: version unknown (not run from a git checkout)."]
    ps = manifest.get("parameter_set")
    seed = params.get("seed")
    lines.append("Parameter set: " + (str(ps) if ps else "not recorded")
                 + (f"; seed {seed}" if seed is not None else "")
                 + (f"; run {manifest['created_utc']}" if manifest.get("created_utc") else "")
                 + ".")
    nbs = [n for n in manifest.get("notebooks", []) if isinstance(n, dict)]
    restored = sum(bool(n.get("restored")) for n in nbs)
    if restored:
        lines.append(f"Notebook runs: {restored} of the {len(nbs)} analysis notebook runs "
                     "before this report were restored, unchanged, from an earlier run with "
                     "the same code, parameters and input files (the manifest marks them); "
                     "the report itself was built anew.")
    pk = manifest.get("packages", {})
    if isinstance(pk, dict) and pk:
        lines.append("Software: " + ", ".join(f"{k} {v}" for k, v in pk.items()) + ".")
    lines.append("To reproduce: check out the commit, then run the parameter set with the "
                 "project's report command (make report PARAMS=<set>).")
    return lines
