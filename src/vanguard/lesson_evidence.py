"""What the lesson rules look at, drawn once from a run's results.

:class:`Evidence` holds the headline estimates and the other results the lessons'
predictions are stated in; :func:`lesson_inputs` selects the optional parts of it
(placebo dates, leave-one-site-out, per-site effects, the window after funding ended,
sensitivities, and which MDEs were simulated on a shortened design) from a run's results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard.errors import DataError
from vanguard.lesson_stats import Heterogeneity, mde_shortened

SUSTAINABILITY = "sustainability"
"""Window key of the estimates after programme funding ended (April 2018 onwards)."""

NOT_SUSTAINABILITY: tuple[str, ...] = (
    "per_site", "leave_one_out", "placebo", "power", "pretrend", "event_study", "honestdid",
    "sensitivity", "cohort",
)
"""Analyses whose rows are never the programme-wide effect after funding ended."""


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass
class Evidence:
    """Everything the lesson rules look at, drawn once from a run's results.

    Only ``headline`` and ``alternatives`` are required; a rule whose results are not
    given reports its lesson as "cannot be tested with these data" and names what is
    missing. All frames are in the tidy results schema, for the headline outcome and
    scale.

    Attributes
    ----------
    headline : pandas.DataFrame
        Main rows of the headline estimator, scale and inference (every window).
    alternatives : pandas.DataFrame
        Main and inference rows of every estimator x inference method.
    pretrend_p : dict
        Group -> p-value of the joint pre-trend test.
    heterogeneity : dict
        Group -> :class:`~vanguard.lesson_stats.Heterogeneity` of the per-site effects.
    mde_pct : dict
        Group -> minimum detectable reduction at 80% power, years 1-3, in %.
    hoped_for_pct : float
        The hoped-for reduction in %, the margin of most predictions.
    data_source : str
        ``synthetic``, ``nhs_mar`` or ``custom``.
    placebo, leave_one_out, per_site : pandas.DataFrame
        Rows of ``placebo__*``, ``leave_one_out__*`` and ``per_site__*`` (years 1-3).
    sustainability : pandas.DataFrame
        Rows whose window is ``sustainability`` (after programme funding ended).
    sensitivity : pandas.DataFrame
        Rows of ``sensitivity__<outcome>.csv`` with ``sensitivity`` and
        ``sensitivity_label``.
    mde_shortened : dict
        Group -> whether its MDE was simulated on a shortened design; a group missing
        here is treated as not known.
    """

    headline: pd.DataFrame
    alternatives: pd.DataFrame
    pretrend_p: dict[str, float] = field(default_factory=dict)
    heterogeneity: dict[str, Heterogeneity] = field(default_factory=dict)
    mde_pct: dict[str, float] = field(default_factory=dict)
    hoped_for_pct: float = 3.0
    data_source: str = "synthetic"
    # the optional parts lesson_inputs selects from a run
    placebo: pd.DataFrame = field(default_factory=_empty)
    leave_one_out: pd.DataFrame = field(default_factory=_empty)
    per_site: pd.DataFrame = field(default_factory=_empty)
    sustainability: pd.DataFrame = field(default_factory=_empty)
    sensitivity: pd.DataFrame = field(default_factory=_empty)
    mde_shortened: dict[str, bool] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """The headline outcome (the one every prediction is stated for)."""
        vals = sorted(set(self.headline["outcome"])) if len(self.headline) else []
        return vals[0] if vals else "<outcome>"

    @property
    def estimator(self) -> str:
        """The headline estimator."""
        vals = sorted(set(self.headline["estimator"])) if len(self.headline) else []
        return vals[0] if vals else ""


def _same(results: pd.DataFrame, outcome: str, scale: str) -> pd.Series:
    return (results["outcome"] == outcome) & (results["scale"] == scale)


def read_sensitivity(run_path: str | Path, outcome: str) -> pd.DataFrame:
    """Read ``results/sensitivity__<outcome>.csv`` of a run, if it exists.

    Parameters
    ----------
    run_path : str or pathlib.Path
        The run folder.
    outcome : str
        Outcome name.

    Returns
    -------
    pandas.DataFrame
        The file's rows (columns of the ``did__*`` files plus ``sensitivity`` and
        ``sensitivity_label``); empty when the run has no such file.

    Raises
    ------
    DataError
        If the file lacks a column the lesson rules need.
    """
    path = Path(run_path) / "results" / f"sensitivity__{outcome}.csv"
    if not path.is_file():
        return pd.DataFrame()
    df = pd.read_csv(path, keep_default_na=False,
                     na_values={c: [""] for c in ("estimate", "ci_low", "ci_high", "pct",
                                                  "pct_ci_low", "pct_ci_high")})
    need = ("sensitivity", "group", "window", "estimator", "inference", "pct",
            "pct_ci_low", "pct_ci_high")
    for col in need:
        if col not in df.columns:
            raise DataError(path, f"columns {list(need)}", column=col, found=list(df.columns))
    if "sensitivity_label" not in df.columns:
        df["sensitivity_label"] = df["sensitivity"]
    return df


def lesson_inputs(results: pd.DataFrame, outcome: str, scale: str,
                  run_path: str | Path | None = None, *,
                  sensitivity: pd.DataFrame | None = None) -> dict:
    """The optional :class:`Evidence` fields, selected from a run's results.

    Parameters
    ----------
    results : pandas.DataFrame
        Every results row of the run (tidy schema).
    outcome, scale : str
        The headline outcome and scale.
    run_path : str or pathlib.Path, optional
        The run folder; when given, ``results/sensitivity__<outcome>.csv`` is read with
        its extra columns (the tidy reader drops them).
    sensitivity : pandas.DataFrame, optional
        That file already read (with ``sensitivity`` and ``sensitivity_label``
        columns), so that it is not read again; it takes the place of ``run_path``'s.

    Returns
    -------
    dict
        Keyword arguments for :class:`Evidence`: ``placebo``, ``leave_one_out``,
        ``per_site`` (years 1-3 when present), ``sustainability`` (rows whose window is
        ``sustainability``), ``sensitivity`` and ``mde_shortened``.
    """
    same = _same(results, outcome, scale)
    placebo = results[same & (results["analysis"] == "placebo")]
    loo = results[same & (results["analysis"] == "leave_one_out")]
    ps = results[same & (results["analysis"] == "per_site")]
    if len(ps) and "years_1_3" in set(ps["window"]):
        ps = ps[ps["window"] == "years_1_3"]
    # whatever analysis name the sustainability file uses, its window says what it is
    sus = results[same & (results["window"] == SUSTAINABILITY)
                  & ~results["analysis"].isin(NOT_SUSTAINABILITY)]
    if sensitivity is not None:
        sens = sensitivity
    elif run_path is not None:
        sens = read_sensitivity(run_path, outcome)
    else:
        sens = results[same & (results["analysis"] == "sensitivity")]
    if len(sens) and "scale" in sens.columns:
        sens = sens[sens["scale"] == scale]
    power = results[(results["analysis"] == "power") & (results["outcome"] == outcome)]
    if scale in set(power["scale"]):
        power = power[power["scale"] == scale]
    shortened: dict[str, bool] = {}
    for g, gg in power.groupby("group"):
        gg = gg[np.isfinite(gg["pct"].astype(float))]
        if "years_1_3" in set(gg["window"]):
            gg = gg[gg["window"] == "years_1_3"]
        if gg.empty:
            continue
        best = gg.iloc[(gg["param"].astype(float) - 0.8).abs().argsort()[:1]].iloc[0]
        shortened[str(g)] = mde_shortened(str(best["note"]))
    return {"placebo": placebo.reset_index(drop=True),
            "leave_one_out": loo.reset_index(drop=True),
            "per_site": ps.reset_index(drop=True),
            "sustainability": sus.reset_index(drop=True),
            "sensitivity": sens.reset_index(drop=True),
            "mde_shortened": shortened}
