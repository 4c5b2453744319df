"""Build the evaluation report of a run: ``report.html`` (self-contained, offline) and
``report.pdf`` (A4, typeset with Typst), both from one content model.

Usage::

    from vanguard.report import build_report
    html_path, pdf_path = build_report("default")

Figures the pipeline has not drawn but that the results files support (event study,
per-site forest plot, estimator comparison, minimum detectable effect, truth comparison)
are drawn first with :mod:`vanguard.plots` - only when every notebook of the run
finished, so that no figure stands in for one a failed notebook would have drawn.
Before anything is written, every published file of the run is audited for counts of
people or events between 1 and 7 (:func:`vanguard.sdc.audit_run`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import warnings
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vanguard import config, plots, sdc
from vanguard.errors import DataError
from vanguard.io import write_bytes, write_text
from vanguard.report_content import (
    build_content,
    choose_headline,
    headline_rows,
    load_manifest,
    load_run_results,
    load_truth,
    manifest_parameters,
    run_data_source,
)
from vanguard.report_labels import plain

TEMPLATES = Path(__file__).resolve().parent / "templates"
PDF_TIMESTAMP = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
"""Fixed creation date so that the same content gives the same PDF bytes
(``SOURCE_DATE_EPOCH`` overrides it)."""


def _has_figure(run_path: Path, prefix: str) -> bool:
    folder = run_path / "figures"
    return folder.is_dir() and any(folder.glob(f"{prefix}*.png"))


def ensure_figures(run: str, results: pd.DataFrame | None = None) -> list[Path]:
    """Draw the standard figures a run's results support and that are not there yet.

    Parameters
    ----------
    run : str
        Run name.
    results : pandas.DataFrame, optional
        The run's results (:func:`vanguard.report_content.load_run_results`), when the
        caller has read them already; read from the run folder otherwise.

    Returns
    -------
    list of pathlib.Path
        PNGs written (empty when the pipeline drew them all).

    Raises
    ------
    DataError
        If the results files are missing or malformed.
    """
    run_path = config.run_dir(run)
    if results is None:
        results = load_run_results(run_path)
    manifest = load_manifest(run_path)
    params = manifest_parameters(manifest)
    main = results[results["analysis"] == "main"]
    hl = choose_headline(main, params)
    data_source = run_data_source(manifest, results)
    note = plots.source_note(data_source)
    out, sel = hl["outcome"], (results["outcome"] == hl["outcome"])
    written: list[Path] = []

    def save(fig, name, alt, data):
        written.append(plots.save_figure(fig, name, run, alt_text=alt, data=data,
                                         source_note=note))
        plt.close(fig)

    label = plots.outcome_label(out).lower()
    es = results[sel & (results["analysis"] == "event_study") & results["rel_time"].notna()]
    if len(es) and not _has_figure(run_path, "event_study"):
        es = es[es["scale"] == (hl["scale"] if hl["scale"] in set(es["scale"])
                                else sorted(set(es["scale"]))[0])]
        es = es[es["estimator"] == sorted(set(es["estimator"]))[0]]
        for group, g in es.groupby("group", sort=True):
            pre = results[sel & (results["analysis"] == "pretrend") & (results["group"] == group)]
            p = float(pre["p_value"].iloc[0]) if len(pre) else None
            ptxt = f" Joint pre-trend test p = {p:.3f}." if p is not None else ""
            save(plots.plot_event_study(g, p), f"event_study_{group}_{out}",
                 f"Event study of {label} for {plots.group_label(group)} areas against "
                 f"controls: effect by time relative to start with 95% intervals.{ptxt}", g)
    same = sel & (results["scale"] == hl["scale"])
    ps = results[same & (results["analysis"] == "per_site")]
    if len(ps) and not _has_figure(run_path, "forest"):
        win = "years_1_3" if "years_1_3" in set(ps["window"]) else sorted(set(ps["window"]))[0]
        ps = ps[ps["window"] == win]
        ps = ps[ps["estimator"] == (hl["estimator"] if hl["estimator"] in set(ps["estimator"])
                                    else sorted(set(ps["estimator"]))[0])]
        save(plots.plot_forest(ps), f"forest_{out}",
             f"Forest plot of {label}: effect of each vanguard site with its 95% interval, "
             "grouped by site type, with the pooled effect of each type.", ps)
    cmp_rows = results[same & results["analysis"].isin(["main", "inference"])]
    cmp_rows = cmp_rows.drop_duplicates(["group", "window", "estimator", "inference"])
    if len(cmp_rows) and not _has_figure(run_path, "estimator_comparison"):
        save(plots.plot_estimator_comparison(cmp_rows), f"estimator_comparison_{out}",
             f"Comparison of {label} effects across estimators and inference methods, for "
             "each site type and post-period window, with 95% intervals.", cmp_rows)
    power = results[sel & results["analysis"].isin(["power", "power_curve"])]
    power = power[power["scale"] == (hl["scale"] if hl["scale"] in set(power["scale"])
                                     else (sorted(set(power["scale"])) or [""])[0])]
    if len(power) and not _has_figure(run_path, "mde"):
        hoped = float(params.get("hoped_for_pct", 3.0))
        save(plots.plot_mde(power, hoped), f"mde_{out}",
             f"Minimum detectable effect on {label} by power, for each site type, beside a "
             f"hoped-for reduction of {hoped:g}%.", power)
    if data_source == "synthetic" and not _has_figure(run_path, "truth_comparison"):
        truth = load_truth()
        head = headline_rows(main, hl)
        if truth is not None and len(head):
            try:
                fig = plots.plot_truth_comparison(head, truth)
            except DataError as exc:
                warnings.warn(f"truth comparison not drawn: {exc}", stacklevel=2)
            else:
                save(fig, f"truth_comparison_{out}",
                     f"Estimated effects on {label} by site type and window with 95% "
                     "intervals, beside the effect planted in the synthetic data.", head)
    return written


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_html(content: dict, run_path: Path) -> str:
    """Render the self-contained HTML report: every image is a base64 data URI.

    Parameters
    ----------
    content : dict
        From :func:`vanguard.report_content.build_content`.
    run_path : pathlib.Path
        The run folder the figure paths are relative to.

    Returns
    -------
    str
    """
    figures = []
    for f in content["figures"]:
        data = base64.b64encode((run_path / f["path"]).read_bytes()).decode("ascii")
        figures.append({**f, "data_uri": f"data:image/png;base64,{data}"})
    return _environment().get_template("report.html.j2").render(
        c={**content, "figures": figures})


def _timestamp() -> dt.datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    return PDF_TIMESTAMP


def render_pdf(content: dict, run_path: Path) -> bytes:
    """Typeset the A4 PDF report with Typst from the same content model.

    Parameters
    ----------
    content : dict
    run_path : pathlib.Path
        Typst project root: figure paths resolve inside it.

    Returns
    -------
    bytes
        The PDF.

    Raises
    ------
    RuntimeError
        If Typst fails to compile (``typst.TypstError``).
    """
    import typst

    source = (TEMPLATES / "report.typ").read_bytes()
    payload = json.dumps(content, ensure_ascii=False, allow_nan=False,
                         default=_json_default)
    pdf = typst.compile(source, root=str(run_path), format="pdf",
                        sys_inputs={"content": payload}, ignore_system_fonts=True,
                        timestamp=_timestamp())
    return bytes(pdf)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is pd.NA:
        return None
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class IncompleteRunError(RuntimeError):
    """The run a report was asked for has failed, skipped or interrupted notebooks."""


REPORT_NOTEBOOK = "06_report"


def incomplete_notebooks(manifest: dict) -> list[str]:
    """Notebooks of a run that did not finish, as ``"<output name> (<status>)"``.

    Parameters
    ----------
    manifest : dict
        ``manifest.json`` of the run (empty for a folder the runner did not write).

    Returns
    -------
    list of str
        Empty when every notebook listed so far ran; the report notebook itself is not
        listed (it is the one asking). A manifest whose run was interrupted lists at
        least that.
    """
    out = []
    for nb in manifest.get("notebooks", []) or []:
        status = nb.get("status") or ("ok" if nb.get("ok", True) else "failed")
        if status != "ok" and nb.get("notebook") != REPORT_NOTEBOOK:
            out.append(f"{Path(str(nb.get('output', nb.get('notebook', '?')))).stem} ({status})")
    if manifest.get("status") == "interrupted" and not out:
        out.append(f"the run itself (interrupted by {manifest.get('interrupted_by') or 'a signal'})")
    return out


def failure_banner(incomplete: list[str], not_estimated: list[str] | None = None) -> str:
    """Banner text of a report built from an incomplete run ("" when complete).

    ``not_estimated`` lists analyses a notebook could not estimate for one group while
    the others ran (see :func:`analyses_not_estimated`).
    """
    parts = []
    if incomplete:
        parts.append(
            "INCOMPLETE RUN - these notebooks did not finish: " + "; ".join(incomplete)
            + ". Everything they would have produced is missing from this report; no "
            "figure or number was filled in from elsewhere. Do not cite it as the "
            "run's result.")
    if not_estimated:
        names = list(dict.fromkeys(line.split(" for ")[0] for line in not_estimated))
        parts.append("NOT ESTIMATED - the data could not support: " + "; ".join(names)
                     + ". The table 'Analyses the data could not support' says for which "
                     "site types and outcomes, and why.")
    return " ".join(parts)


def analyses_not_estimated(run_path: Path) -> list[str]:
    """The analyses the notebooks of a run recorded as not estimated, one line each.

    Read from ``tables/failures__<notebook>__<outcome>.csv``
    (:func:`vanguard.analysis.write_failures`).
    """
    tables = [pd.read_csv(p, dtype=str, keep_default_na=False)
              for p in sorted((run_path / "tables").glob("failures__*.csv"))]
    rows = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if rows.empty:
        return []
    # one line per analysis, group and reason, naming every outcome it applies to
    lines = []
    for (name, group, error), g in rows.groupby(["analysis", "group", "error"], sort=False):
        lines.append(f"{name} for {group} ({', '.join(dict.fromkeys(g['outcome']))}): {error}")
    return lines


def reproducibility_note(manifest: dict) -> str:
    """One sentence stating the code version of a run and whether it was committed.

    Parameters
    ----------
    manifest : dict

    Returns
    -------
    str
    """
    commit = str(manifest.get("git_commit") or "unknown")
    dirty = manifest.get("git_dirty")
    if commit == "unknown":
        state = "code version unknown (not run from a git checkout)"
    elif dirty is True:
        state = (f"code version {commit} with uncommitted changes (the working tree was "
                 "dirty: this commit alone does not reproduce the run)")
    elif dirty is False:
        state = f"code version {commit} (clean working tree)"
    else:
        state = f"code version {commit} (whether the working tree was clean is unknown)"
    source = manifest.get("parameter_set")
    return state[0].upper() + state[1:] + (f"; parameter set {source}." if source else ".")


def build_report(run: str, *, allow_incomplete: bool = False) -> tuple[Path, Path]:
    """Write ``reports/<run>/report.html`` and ``reports/<run>/report.pdf``.

    A run whose manifest lists a notebook that failed, was skipped or was interrupted
    gets no report unless ``allow_incomplete``; then the report carries a banner naming
    those notebooks at the top of the HTML and of every PDF page, and no missing figure
    is drawn in their place.

    Parameters
    ----------
    run : str
        Run name (see :func:`vanguard.config.run_dir`); the run folder must hold
        ``results/*.csv`` and usually ``manifest.json`` and ``figures/``.
    allow_incomplete : bool
        Build a report of an incomplete run, with the failure banner.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        Paths of the HTML and the PDF.

    Raises
    ------
    DataError
        If the run folder, its results, the lessons register or the published results
        are missing or malformed, a figure has no alt text, or a published file of the
        run shows a count of people or events between 1 and 7
        (:func:`vanguard.sdc.audit_run`).
    IncompleteRunError
        If notebooks of the run did not finish and ``allow_incomplete`` is False.
    RuntimeError
        If the PDF cannot be typeset.
    """
    run_path = config.run_dir(run)
    if not run_path.is_dir():
        raise DataError(run_path, "a run folder (run the pipeline first)",
                        found="no such folder")
    manifest = load_manifest(run_path)
    incomplete = incomplete_notebooks(manifest)
    if incomplete and not allow_incomplete:
        raise IncompleteRunError(
            f"run {run!r} is incomplete, so no report is built from its partial results: "
            + "; ".join(incomplete)
            + ". Fix and re-run, or build_report(run, allow_incomplete=True) for a draft "
            "with a failure banner.")
    # read once: the figures and every part of the content select from this frame
    results = load_run_results(run_path)
    if not incomplete:
        # drawing the standard figures from the results is only safe when every
        # notebook ran: otherwise a figure would stand in for one that failed
        ensure_figures(run, results)
    breaches = sdc.audit_run(run_path)
    if breaches:
        raise DataError(run_path, "no published count of people or events between "
                        f"{sdc.SMALL_MIN} and {sdc.SMALL_MAX} (disclosure control)",
                        found="; ".join(breaches[:5])
                        + (f"; and {len(breaches) - 5} more" if len(breaches) > 5 else ""))
    content = build_content(run, incomplete, results)
    content["not_estimated"] = analyses_not_estimated(run_path)
    # page 1 names the analyses not estimated in the key-findings box; the failure
    # banner is kept for notebooks that did not finish
    content["failure_banner"] = failure_banner(incomplete)
    content["incomplete_notebooks"] = [plain(x) for x in incomplete]
    content["reproducibility"] = reproducibility_note(manifest)
    content["git_dirty"] = manifest.get("git_dirty")
    html = render_html(content, run_path)
    pdf = render_pdf(content, run_path)
    html_path = write_text(run_path / "report.html", html)
    pdf_path = write_bytes(run_path / "report.pdf", pdf)
    return html_path, pdf_path


__all__ = [
    "IncompleteRunError",
    "build_report",
    "ensure_figures",
    "failure_banner",
    "incomplete_notebooks",
    "render_html",
    "render_pdf",
    "reproducibility_note",
]
