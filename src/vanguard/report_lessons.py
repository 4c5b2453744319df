"""The lessons register and its assessment against a run's results.

``data/raw/lessons.csv`` holds the lessons the source articles on the vanguards drew,
paraphrased, one row per lesson:

- ``lesson_id``, ``lesson``, ``summary``, ``audience``, ``source_file`` (the article in the
  seeds folder), ``source`` (author and publication as the article states them);
- ``rule``: the rule of :data:`vanguard.lesson_rules.RULES` that judges the lesson, or
  ``not_testable`` for lessons about process (governance, relationships, structures);
- ``prediction``: written before any result is read, the statement the run's results
  could contradict (empty for ``not_testable``);
- ``quantity``: the result files and the quantity computed from them; for
  ``not_testable``, what activity data do not record;
- ``threshold``: ``name=value`` pairs, exactly the parameters of the rule (``hoped_for``
  stands for the run's hoped-for reduction, ``hoped_for_pct``).

:func:`assess_lessons` applies the rules (:mod:`vanguard.lesson_rules`) to the evidence
of a run (:mod:`vanguard.lesson_evidence`) and gives each lesson one verdict: supported,
not supported, inconclusive, or cannot be tested with these data.
:func:`untested_sentence` collapses the last kind into the one sentence the report prints
instead of table rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import config
from vanguard.errors import DataError
from vanguard.lesson_evidence import Evidence, lesson_inputs, read_sensitivity
from vanguard.lesson_rules import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    RULES,
    SUPPORTED,
    VERDICTS,
    judge_reduction,
)
from vanguard.lesson_stats import Heterogeneity, cochran_q, q_power, site_heterogeneity

__all__ = [
    "Evidence", "Heterogeneity", "INCONCLUSIVE", "LESSON_COLUMNS", "NOT_SUPPORTED",
    "NOT_TESTABLE", "RULES", "SUPPORTED", "VERDICTS", "assess_lessons", "cochran_q",
    "judge_reduction", "lesson_inputs", "load_lessons", "parse_threshold", "q_power",
    "read_sensitivity", "site_heterogeneity", "untested_sentence",
]

LESSON_COLUMNS: tuple[str, ...] = (
    "lesson_id", "lesson", "summary", "audience", "source_file", "source", "rule",
    "prediction", "quantity", "threshold",
)
HOPED_FOR = "hoped_for"
"""Threshold value standing for the run's hoped-for reduction (``hoped_for_pct``)."""

_REQUIRED = ("lesson_id", "lesson", "summary", "source_file", "source", "rule", "quantity")


def parse_threshold(text: str) -> dict[str, float | str]:
    """Read a ``threshold`` cell: ``name=value`` pairs separated by ``;``.

    Parameters
    ----------
    text : str
        E.g. ``"margin_pct=hoped_for;pretrend_alpha=0.05"``; empty for no thresholds.

    Returns
    -------
    dict
        Name -> float, or the string ``"hoped_for"``.

    Raises
    ------
    ValueError
        If a pair has no ``=``, a name repeats, or a value is neither a finite number
        nor ``hoped_for``.
    """
    out: dict[str, float | str] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, sep, value = (x.strip() for x in part.partition("="))
        if not sep or not name:
            raise ValueError(f"{part!r} is not name=value")
        if name in out:
            raise ValueError(f"{name!r} is given twice")
        if value == HOPED_FOR:
            out[name] = HOPED_FOR
            continue
        try:
            num = float(value)
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected a number or {HOPED_FOR!r}") from None
        if not math.isfinite(num):
            raise ValueError(f"{name}={value!r}: expected a finite number")
        out[name] = num
    return out


def load_lessons(path: str | Path = config.LESSONS) -> pd.DataFrame:
    """Read and validate the lessons register.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV with columns :data:`LESSON_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        One row per lesson, strings only.

    Raises
    ------
    DataError
        If the file or a column is missing, a required cell is empty, an id repeats, a
        rule is unknown, a testable lesson has no prediction (or an untestable one has a
        prediction or thresholds), or the thresholds are malformed or are not exactly
        the ones its rule takes (naming row and column).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "the lessons register (a CSV file)", found="no such file")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in LESSON_COLUMNS:
        if col not in df.columns:
            raise DataError(path, f"columns {list(LESSON_COLUMNS)}", column=col,
                            found=list(df.columns))
    for i, r in df.iterrows():
        row = int(i) + 2
        for col in _REQUIRED:
            if not r[col].strip():
                raise DataError(path, "a non-empty value", row=row, column=col, found=r[col])
        if r["rule"] not in RULES:
            raise DataError(path, f"one of {', '.join(RULES)}", row=row, column="rule",
                            found=r["rule"])
        spec = RULES[r["rule"]]
        if spec.function is None:
            for col in ("prediction", "threshold"):
                if r[col].strip():
                    raise DataError(path, f"an empty {col} for an untestable lesson "
                                    "(rule not_testable)", row=row, column=col, found=r[col])
            continue
        if not r["prediction"].strip():
            raise DataError(path, "the prediction, stated before the results, of a testable "
                            "lesson", row=row, column="prediction", found=r["prediction"])
        try:
            given = parse_threshold(r["threshold"])
        except ValueError as exc:
            raise DataError(path, f"thresholds as name=value;... ({exc})", row=row,
                            column="threshold", found=r["threshold"]) from None
        if set(given) != set(spec.params):
            raise DataError(path, f"exactly the thresholds of rule {r['rule']!r}: "
                            f"{', '.join(spec.params) or 'none'}", row=row,
                            column="threshold", found=r["threshold"])
    dup = df["lesson_id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise DataError(path, "a unique lesson_id", row=row, column="lesson_id",
                        found=df["lesson_id"].iloc[row - 2])
    return df[list(LESSON_COLUMNS)].reset_index(drop=True)


def _resolve(params: dict[str, float | str], hoped_for_pct: float) -> dict[str, float]:
    out = {}
    for k, v in params.items():
        out[k] = abs(float(hoped_for_pct)) if v == HOPED_FOR else float(v)
    return out


def assess_lessons(lessons: pd.DataFrame, ev: Evidence) -> list[dict]:
    """Judge each lesson's prediction against the evidence.

    Parameters
    ----------
    lessons : pandas.DataFrame
        From :func:`load_lessons`.
    ev : Evidence

    Returns
    -------
    list of dict
        One dict per lesson, in register order: the register's columns plus
        ``verdict`` (one of :data:`VERDICTS`), ``evidence`` (the sentences, one per site
        type, specific to the lesson), ``criterion`` (the rule in words, with this run's
        thresholds), ``thresholds`` (name -> value used), ``testable`` (False when the
        verdict is "cannot be tested with these data"), ``missing`` (the results the run
        lacks, if that is why), ``by_group`` (site type, label, verdict, sentence) and
        ``evidence_text`` (the same as ``evidence``, for older templates).

    Raises
    ------
    ValueError
        If the hoped-for reduction is zero or not a number.
    """
    if not (math.isfinite(float(ev.hoped_for_pct)) and float(ev.hoped_for_pct) != 0):
        raise ValueError(f"hoped_for_pct must be a non-zero number, got {ev.hoped_for_pct!r}")
    from vanguard import schema

    out = []
    for r in lessons.to_dict("records"):
        spec = RULES[r["rule"]]
        if spec.function is None:
            row = {**r, "verdict": NOT_TESTABLE,
                   "evidence": f"Not recorded in activity data: {r['quantity']}.",
                   "criterion": spec.criterion, "thresholds": {}, "testable": False,
                   "missing": "", "by_group": []}
        else:
            params = _resolve(parse_threshold(r["threshold"]), ev.hoped_for_pct)
            res = spec.function(ev, **params)
            row = {**r, "verdict": res.verdict, "evidence": res.evidence,
                   "criterion": spec.criterion.format(**params), "thresholds": params,
                   "testable": res.verdict != NOT_TESTABLE, "missing": res.missing,
                   "by_group": [{"group": f.group, "label": schema.group_label(f.group),
                                 "verdict": f.verdict, "sentence": f.sentence}
                                for f in res.findings]}
        row["evidence_text"] = row["evidence"]
        out.append(row)
    return out


def untested_sentence(assessed: list[dict]) -> str:
    """The one sentence that lists the lessons these data cannot test.

    Parameters
    ----------
    assessed : list of dict
        From :func:`assess_lessons`.

    Returns
    -------
    str
        Empty when every lesson was tested. Lessons about process (rule
        ``not_testable``) are named with what the data do not record; testable lessons
        this run could not judge are named with the results it lacks.
    """
    process = [a for a in assessed if a["rule"] == "not_testable"]
    lacking = [a for a in assessed if a["rule"] != "not_testable" and not a["testable"]]
    if not process and not lacking:
        return ""
    parts = []
    if process:
        parts.append("; ".join(f"{a['lesson']} ({a['quantity']})" for a in process)
                     + " - activity data record none of these")
    if lacking:
        parts.append(("and, in this run, " if process else "in this run: ")
                     + "; ".join(f"{a['lesson']} (no {a['missing']})" for a in lacking))
    return "Cannot be tested with these data: " + "; ".join(parts) + "."
