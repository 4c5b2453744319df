"""Names and shapes shared by every module: the analysis panel, site groups,
post-period windows and the one tidy schema every estimator returns.

The analysis panel
------------------
One row per area x month. Columns:

``area`` (str)
    Area code (a CCG code on real data, ``S001`` ... on the synthetic data).
``month`` (datetime64, first day of the month)
``population`` (float, optional)
    Resident or registered population; when present, outcomes can be analysed as
    rates per 1,000 per month.
outcome columns (numeric, non-negative)
    Counts, e.g. ``emergency_admissions``, ``bed_days``, ``ae_attendances``.
``group`` (str)
    The area's vanguard group, one of :data:`GROUPS`; constant within an area.
``start`` (datetime64 or NaT)
    First month of exposure for the area's group (NaT for controls).
``site`` (str)
    Vanguard site identifier(s) covering the area, ``;``-separated; ``""`` for controls.

Post-period windows
-------------------
Months since start, half-open ``[lo, hi)``: month 0 is the first exposed month.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from vanguard.errors import EstimationError

# --- panel -----------------------------------------------------------------
AREA = "area"
MONTH = "month"
POPULATION = "population"
GROUP = "group"
START = "start"
SITE = "site"

SYNTHETIC_OUTCOMES: tuple[str, ...] = ("emergency_admissions", "bed_days", "ae_attendances")
"""Outcomes carried by the embedded synthetic data."""

# --- shared constants -------------------------------------------------------------
DEFAULT_SEED: int = 20150310
"""Seed of every random draw unless the parameters say otherwise (the date wave 1 of the
vanguards was announced)."""

RATE_PER: float = 1000.0
"""Rates are per 1,000 population per month."""


def per_1000(count, population):
    """``count / population * 1000``: the rate scale of every estimator and table."""
    return count / population * RATE_PER


# --- groups -----------------------------------------------------------------
POPULATION_BASED = "population_based"  # PACS and MCP sites
CARE_HOME = "care_home"  # Enhanced Health in Care Homes sites
BOTH = "both"  # an area in a population-based AND a care-home site
UEC = "uec"  # urgent & emergency care sites only ("other vanguard")
CONTROL = "control"  # never in a vanguard with an area footprint

GROUPS: tuple[str, ...] = (POPULATION_BASED, CARE_HOME, BOTH, UEC, CONTROL)
ANALYSIS_GROUPS: tuple[str, ...] = (POPULATION_BASED, CARE_HOME, UEC)
"""Groups an effect can be estimated for. ``both`` areas count towards the
population-based AND the care-home effect."""

GROUP_MEMBERS: dict[str, tuple[str, ...]] = {
    POPULATION_BASED: (POPULATION_BASED, BOTH),
    CARE_HOME: (CARE_HOME, BOTH),
    UEC: (UEC,),
}
"""Which area groups are treated when estimating the effect for an analysis group."""

GROUP_LABELS: dict[str, str] = {
    POPULATION_BASED: "Population-based (PACS & MCP)",
    CARE_HOME: "Enhanced health in care homes",
    BOTH: "Population-based and care-home",
    UEC: "Urgent & emergency care",
    CONTROL: "Control (non-vanguard)",
}

GROUP_SEPARATOR = "+"
"""Joins the names of the treatment groups of an area that belongs to several."""

GROUP_LABEL_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z][A-Za-z0-9_]*)*$"
"""An area's ``group`` label: ``control``, a treatment group's name, or several names
joined by :data:`GROUP_SEPARATOR`."""


def label_groups(label: str) -> frozenset[str]:
    """Treatment groups an area label stands for.

    A panel's ``group`` column holds one label per area: ``control`` (never treated),
    one treatment group's name, or several names joined by :data:`GROUP_SEPARATOR`
    (``both`` is the vanguard register's name for population-based + care-home).

    Parameters
    ----------
    label : str

    Returns
    -------
    frozenset of str
        Empty for controls.
    """
    if label is None or label in ("", CONTROL) or (isinstance(label, float) and math.isnan(label)):
        return frozenset()
    if label == BOTH:
        return frozenset({POPULATION_BASED, CARE_HOME})
    return frozenset(str(label).split(GROUP_SEPARATOR))


def compose_label(groups: Iterable[str]) -> str:
    """The area label of an area in ``groups`` (inverse of :func:`label_groups`)."""
    names = frozenset(groups)
    if not names:
        return CONTROL
    if names == frozenset({POPULATION_BASED, CARE_HOME}):
        return BOTH
    return GROUP_SEPARATOR.join(sorted(names))


def member_mask(labels: pd.Series, group: str) -> np.ndarray:
    """Rows whose area label includes treatment group ``group``.

    Parameters
    ----------
    labels : pandas.Series
        A ``group`` column.
    group : str
        A treatment group's name.

    Returns
    -------
    numpy.ndarray of bool
    """
    values = labels.astype(str)
    hit = {u: group in label_groups(u) for u in values.unique()}
    return values.map(hit).to_numpy(dtype=bool)


def groups_in(labels: Iterable[str]) -> list[str]:
    """Treatment groups present among area labels, the vanguard groups first."""
    found: set[str] = set()
    for lab in set(map(str, labels)):
        found |= label_groups(lab)
    return [g for g in ANALYSIS_GROUPS if g in found] + sorted(found - set(ANALYSIS_GROUPS))


def group_label(group: str) -> str:
    """Reader-facing name of a treatment group (its own name for a user's group)."""
    return GROUP_LABELS.get(group, str(group).replace("_", " "))


PCT_COLUMNS: tuple[str, ...] = ("pct", "pct_ci_low", "pct_ci_high")


def _blank_test_rows(analysis, columns) -> None:
    """Set the percentage columns of test-statistic rows to NaN, in ``columns`` (a frame
    or a mapping of column to values); a statistic is not an effect."""
    is_test = pd.Series(analysis).eq("pretrend").to_numpy(dtype=bool, na_value=False)
    if is_test.any():
        for col in PCT_COLUMNS:
            # column by column: a .loc assignment to several columns costs far more
            columns[col] = np.where(is_test, np.nan, np.asarray(columns[col], dtype="float64"))


def blank_test_pct(results: pd.DataFrame) -> pd.DataFrame:
    """Blank the percentage columns of test-statistic rows (a statistic is not an effect)."""
    _blank_test_rows(results["analysis"], results)
    return results


SITE_TYPE_GROUP: dict[str, str] = {"PACS": POPULATION_BASED, "MCP": POPULATION_BASED,
                                   "EHCH": CARE_HOME, "UEC": UEC}
"""Vanguard type (as in the site register) to analysis group; ACC has no footprint."""

# --- windows -----------------------------------------------------------------
WINDOWS: dict[str, tuple[int, int]] = {
    "years_1_3": (0, 36),
    "year_1": (0, 12),
    "year_2": (12, 24),
    "year_3": (24, 36),
}
"""Post-period windows of Morciano et al. (2020), in months since start, [lo, hi)."""

WINDOW_LABELS: dict[str, str] = {
    "years_1_3": "Years 1-3",
    "year_1": "Year 1",
    "year_2": "Year 2",
    "year_3": "Year 3",
}

def resolve_windows(windows: Iterable[str] | Mapping[str, tuple[int, int]]) -> dict:
    """``{name: (lo, hi)}`` from window names (:data:`vanguard.schema.WINDOWS`) or a mapping.

    Raises
    ------
    EstimationError
        An unknown name, or a window that is not ``0 <= lo < hi``.
    """
    if isinstance(windows, Mapping):
        out = {str(k): (int(v[0]), int(v[1])) for k, v in windows.items()}
    else:
        names = [windows] if isinstance(windows, str) else list(windows)
        unknown = [w for w in names if w not in WINDOWS]
        if unknown:
            raise EstimationError(
                f"unknown window(s) {unknown}; expected among {list(WINDOWS)} or a "
                "mapping name -> (lo, hi)"
            )
        out = {w: WINDOWS[w] for w in dict.fromkeys(names)}
    bad = [k for k, (lo, hi) in out.items() if not 0 <= lo < hi]
    if bad:
        raise EstimationError(f"window(s) {bad}: expected 0 <= lo < hi months after the start")
    return out


# --- scales ------------------------------------------------------------------
SCALES: tuple[str, ...] = ("rate", "log", "poisson", "count")
"""``rate``: per 1,000 population per month (needs population); ``log``: log count,
effect in log points; ``poisson``: Poisson fixed effects, effect as log rate ratio;
``count``: raw count (linear)."""

MULTIPLICATIVE_SCALES: frozenset[str] = frozenset({"log", "poisson"})

# --- the tidy result schema ----------------------------------------------------
RESULT_COLUMNS: dict[str, str] = {
    "data_source": "string",  # synthetic | nhs_mar | custom
    "analysis": "string",  # main | event_study | aggregation | placebo | leave_one_out |
    #                        per_site | honestdid | power | inference | pretrend
    "estimator": "string",  # twfe | twfe_poisson | event_study | cs_never | cs_notyet |
    #                         imputation | synth | ...
    "outcome": "string",
    "scale": "string",  # one of SCALES
    "group": "string",  # one of ANALYSIS_GROUPS (or "all")
    "window": "string",  # a WINDOWS key, "rel_<k>", an aggregation name, ...
    "rel_time": "float64",  # event time (months or quarters) for event studies, else NaN
    "site": "string",  # site id for per-site / leave-one-out rows, else ""
    "param": "float64",  # free numeric parameter: HonestDiD M, placebo shift, power, ...
    "estimate": "float64",
    "se": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "p_value": "float64",
    "inference": "string",  # cluster | wild_bootstrap | randomisation | analytic |
    #                         multiplier_bootstrap | none
    "n_treated": "Int64",  # treated areas
    "n_control": "Int64",  # control areas
    "n_obs": "Int64",  # area-months used
    "pre_mean": "float64",  # treated group's pre-period mean, natural scale
    "pct": "float64",  # effect as % change
    "pct_ci_low": "float64",
    "pct_ci_high": "float64",
    "note": "string",
    "sensitivity": "string",  # sensitivity-analysis key (vanguard.sensitivity); "" otherwise
    "sensitivity_label": "string",  # what the sensitivity changes, in plain words
}
"""Column -> pandas dtype of every results file."""

RESULT_KEY: tuple[str, ...] = (
    "data_source", "analysis", "estimator", "outcome", "scale", "group", "window",
    "site", "param", "inference", "sensitivity",
)
"""Columns that identify a row; results files are sorted by them."""

_STRING_DEFAULTS = {"site": "", "note": "", "inference": "none", "analysis": "main"}


def pct_change(estimate: float, scale: str, pre_mean: float) -> float:
    """Effect as a percentage change.

    Parameters
    ----------
    estimate : float
        Effect on ``scale``.
    scale : str
        One of :data:`SCALES`. Multiplicative scales (log, poisson) give
        ``100 * (exp(estimate) - 1)``; additive scales give ``100 * estimate / pre_mean``.
    pre_mean : float
        Treated group's pre-period mean on the natural scale (additive scales only).

    Returns
    -------
    float
        NaN when it cannot be computed (e.g. ``pre_mean`` missing or zero).
    """
    if estimate is None or not np.isfinite(estimate):
        return math.nan
    if scale in MULTIPLICATIVE_SCALES:
        return 100.0 * math.expm1(estimate)
    if pre_mean is None or not np.isfinite(pre_mean) or pre_mean == 0:
        return math.nan
    return 100.0 * estimate / pre_mean


def results_frame(
    rows: Iterable[Mapping] | Mapping[str, Sequence] | pd.DataFrame, *, blank_tests: bool = False
) -> pd.DataFrame:
    """Build a validated results table in the tidy schema.

    Missing optional columns are filled (strings with ``""``/defaults, numbers with NaN);
    ``pct``, ``pct_ci_low`` and ``pct_ci_high`` are derived from ``estimate``, ``ci_*``,
    ``scale`` and ``pre_mean`` where not given.

    Parameters
    ----------
    rows : iterable of mapping, mapping of column to sequence, or DataFrame
        One mapping per estimate, or the columns (sequences of one length: a list of
        values, or a numpy array for a numeric column), or a frame. ``outcome``,
        ``scale``, ``estimator``, ``group``, ``window`` and ``estimate`` are required.
    blank_tests : bool
        Blank the percentage columns of test-statistic rows, as :func:`blank_test_pct`
        does to the finished table.

    Returns
    -------
    pandas.DataFrame
        Columns exactly :data:`RESULT_COLUMNS`, in that order, with those dtypes.

    Raises
    ------
    ValueError
        If a required column is missing, an unknown column is given, columns differ in
        length, or ``scale`` is not one of :data:`SCALES`.
    """
    if isinstance(rows, pd.DataFrame):
        n = len(rows)
        given: dict = {c: rows[c] for c in rows.columns}
    elif isinstance(rows, Mapping):
        # a builder holding its values by column skips the row dictionaries, which cost
        # more than the table for a few hundred rows
        given = dict(rows)
        lengths = sorted({len(v) for v in given.values()})
        if len(lengths) > 1:
            raise ValueError(f"results: columns of different lengths {lengths}")
        n = lengths[0] if lengths else 0
    else:
        records = list(rows)
        n = len(records)
        # the columns of pd.DataFrame(records): every key, in order of first appearance
        names = dict.fromkeys(k for r in records for k in r)
        given = {c: [r.get(c, math.nan) for r in records] for c in names}
    required = ("outcome", "scale", "estimator", "group", "window", "estimate")
    missing = [c for c in required if c not in given]
    if missing and n:
        raise ValueError(f"results: missing required column(s) {missing}")
    unknown = [c for c in given if c not in RESULT_COLUMNS]
    if unknown:
        raise ValueError(f"results: unknown column(s) {unknown}; expected {list(RESULT_COLUMNS)}")
    # one array per column and one frame at the end: assigning columns one by one into
    # a frame costs more than everything else here
    data = {
        col: _string_column(given.get(col), _STRING_DEFAULTS.get(col, ""), n)
        for col, dtype in RESULT_COLUMNS.items()
        if dtype == "string"
    }
    # distinct values first: iterating the column boxes every value
    bad = sorted(set(data["scale"].unique().dropna()) - set(SCALES))
    if bad:
        raise ValueError(f"results: column 'scale': expected one of {SCALES}; found {bad}")
    for col, dtype in RESULT_COLUMNS.items():
        if dtype != "string":
            data[col] = _numeric_column(given.get(col), dtype, n)
    data = {col: data[col] for col in RESULT_COLUMNS}
    multiplicative = None
    for out, src in (("pct", "estimate"), ("pct_ci_low", "ci_low"), ("pct_ci_high", "ci_high")):
        need = np.isnan(data[out]) & ~np.isnan(data[src])
        if need.any():
            if multiplicative is None:
                multiplicative = np.fromiter(
                    (sc in MULTIPLICATIVE_SCALES for sc in data["scale"].tolist()), bool, n
                )
            filled = data[out].copy()
            filled[need] = _pct_changes(
                data[src][need], multiplicative[need], data["pre_mean"][need]
            )
            data[out] = filled
    if blank_tests:
        # on the arrays: setting columns of the finished frame costs more than building it
        _blank_test_rows(data["analysis"], data)
    return pd.DataFrame(data, index=pd.RangeIndex(n))


def _pct_changes(estimate: np.ndarray, multiplicative: np.ndarray, pre_mean: np.ndarray):
    """:func:`pct_change` of many estimates at once (the same arithmetic, value by value)."""
    with np.errstate(all="ignore"):
        additive = np.where(
            np.isfinite(pre_mean) & (pre_mean != 0), 100.0 * estimate / pre_mean, math.nan
        )
        out = additive.copy()
    # math.expm1, as pct_change: numpy's vectorised expm1 can differ from the C library's
    # in the last bit, depending on the processor's instruction set
    idx = np.flatnonzero(multiplicative & np.isfinite(estimate))
    out[idx] = [100.0 * math.expm1(v) for v in estimate[idx].tolist()]
    return np.where(np.isfinite(estimate), out, math.nan)


_FAST_NUMBERS = frozenset({int, float, np.float64, np.float32, np.int64, np.int32})
_FAST_INTEGERS = frozenset({int, np.int64, np.int32})


def _string_column(values, default: str, n: int):
    """A ``string`` column: missing values are ``default``."""
    # the dtype object itself: resolving the name "string" is a registry search
    string = pd.StringDtype()
    if values is None:
        return pd.array([default] * n, dtype=string)
    if isinstance(values, list) and set(map(type, values)) <= {str}:
        return pd.array(values, dtype=string)
    return pd.Series(values, dtype=object).fillna(default).astype(string).array


def _numeric_column(values, dtype: str, n: int):
    """A ``float64`` or ``Int64`` column; a value that is not a number is an error."""
    if values is None:
        if dtype == "Int64":
            return pd.array([pd.NA] * n, dtype=pd.Int64Dtype())
        return np.full(n, np.nan)
    if isinstance(values, np.ndarray) and values.dtype.kind in ("f" if dtype != "Int64" else "iu"):
        # already numbers: the conversion through a Series below reads every value
        if dtype == "Int64":
            return pd.array(values.astype("int64"), dtype=pd.Int64Dtype())
        return np.asarray(values, dtype=dtype)
    types = set(map(type, values)) if isinstance(values, list) else None
    if types is not None and types <= _FAST_NUMBERS:
        arr = np.asarray(values, dtype="float64") if values else np.empty(0)
        if dtype == "Int64" and types <= _FAST_INTEGERS:
            return pd.array(np.asarray(values, dtype="int64"), dtype=pd.Int64Dtype())
    else:
        arr = pd.to_numeric(pd.Series(values), errors="raise")
    if dtype == "Int64":
        return pd.Series(arr).astype("Int64").array
    return np.asarray(arr, dtype=dtype)


def write_results(df: pd.DataFrame, path) -> None:
    """Validate, sort and atomically write a results table as CSV.

    Floats are rounded to 10 significant digits so that re-running the same analysis
    on the same inputs gives a byte-identical file (last-digit differences from
    threaded linear algebra do not leak into the file).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows in (or coercible to) the tidy schema.
    path : str or pathlib.Path
        Destination ``.csv``.
    """
    from vanguard.io import write_csv

    out = results_frame(df).sort_values(list(RESULT_KEY) + ["rel_time"], kind="stable")
    write_csv(path, out, float_format="%.10g")


def read_results(paths) -> pd.DataFrame:
    """Read and concatenate results files written by :func:`write_results`.

    The files are parsed together - one CSV parse for all files that share a header,
    one validation of the concatenated rows - because parsing and validating file by
    file costs far more than the rows themselves. Rows keep the order of ``paths``.

    Parameters
    ----------
    paths : path or iterable of paths

    Returns
    -------
    pandas.DataFrame
        In the tidy schema.

    Raises
    ------
    DataError
        If a file is empty or not readable CSV, lacks a required column or has a column
        the schema does not know, or a cell does not parse (for example a
        non-number in a numeric column or an unknown scale); the message names the
        file and, for a bad cell, its row (header = row 1) and column.
    """
    from pathlib import Path

    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        return results_frame([])
    raw, origin = _read_joined(paths)
    try:
        return results_frame(raw)
    except (ValueError, TypeError) as exc:
        raise _cell_error(raw, origin, paths, exc) from None


_READ_OPTIONS = {
    "dtype": {c: "string" for c, t in RESULT_COLUMNS.items() if t == "string"},
    "keep_default_na": False,
    "na_values": {c: [""] for c, t in RESULT_COLUMNS.items() if t != "string"},
}
_REQUIRED = ("outcome", "scale", "estimator", "group", "window", "estimate")


def _records(body: bytes) -> int:
    """CSV records in ``body``: line ends outside quoted fields (which may hold them)."""
    return sum(part.count(b"\n") for part in body.split(b'"')[::2])


def _read_alone(path) -> pd.DataFrame:
    """One results file parsed by itself, a parse failure named by its file."""
    from vanguard.errors import DataError

    try:
        return pd.read_csv(path, **_READ_OPTIONS)
    except ValueError as exc:
        raise DataError(path, "a results file in the tidy schema (readable CSV)",
                        found=str(exc).strip()) from None


def _read_joined(paths: list) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """The rows of every file in one raw frame, with the file index and row of each.

    Files with the same header line are joined into one text and parsed at once; a
    file whose quotes do not pair (a quoted field would run into the next file) or
    whose records cannot be counted from its text is parsed alone.
    """
    from vanguard.errors import DataError

    groups: dict[bytes, list[int]] = {}
    bodies: list[bytes] = []
    for i, path in enumerate(paths):
        head, _, body = path.read_bytes().partition(b"\n")
        if not head.strip():
            raise DataError(path, "a results file in the tidy schema (a header row)",
                            found="an empty first line")
        if body and not body.endswith(b"\n"):
            body += b"\n"
        bodies.append(body)
        # an unpaired quote in one file would swallow the next: such a file goes alone
        key = head if body.count(b'"') % 2 == 0 else (head, i)
        groups.setdefault(key, []).append(i)
    frames, files, counts = [], [], []
    for key, members in groups.items():
        head = key if isinstance(key, bytes) else key[0]
        try:
            frame = pd.read_csv(io.BytesIO(head + b"\n" + b"".join(bodies[i] for i in members)),
                                **_READ_OPTIONS)
        except ValueError as exc:
            for i in members:
                _read_alone(paths[i])
            raise DataError(paths[members[0]], "results files that parse as CSV together",
                            found=str(exc).strip()) from None
        sizes = [_records(bodies[i]) for i in members]
        if sum(sizes) != len(frame):
            # e.g. blank lines, which the parser skips: parse each file by itself
            alone = [_read_alone(paths[i]) for i in members]
            frame, sizes = pd.concat(alone, ignore_index=True), [len(f) for f in alone]
        _check_columns(frame.columns,
                       [(paths[i], n) for i, n in zip(members, sizes, strict=True)])
        frames.append(frame)
        files.extend(members)
        counts.extend(sizes)
    file_of = np.repeat(np.asarray(files, dtype=np.intp), counts)
    row_of = np.concatenate([np.arange(2, n + 2) for n in counts]) if counts else np.empty(0)
    raw = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(frames) > 1:
        # back to the order of the files
        order = np.argsort(file_of, kind="stable")
        raw = raw.take(order).reset_index(drop=True)
        file_of, row_of = file_of[order], row_of[order]
    return raw, (file_of, row_of)


def _check_columns(columns, files: list[tuple]) -> None:
    """The checks of :func:`results_frame` that concern a header, for files sharing it."""
    from vanguard.errors import DataError

    unknown = [c for c in columns if c not in RESULT_COLUMNS]
    if unknown:
        raise DataError(files[0][0], f"only the columns of the results schema "
                        f"({', '.join(RESULT_COLUMNS)})", column=str(unknown[0]),
                        found=[str(c) for c in unknown])
    missing = [c for c in _REQUIRED if c not in columns]
    with_rows = [path for path, n in files if n]
    if missing and with_rows:
        raise DataError(with_rows[0], f"the required columns {list(_REQUIRED)}",
                        column=missing[0], found="no such column")


def _cell_error(raw: pd.DataFrame, origin: tuple[np.ndarray, np.ndarray], paths: list,
                exc: Exception):
    """The :class:`~vanguard.errors.DataError` naming the first cell that fails to parse.

    Cells are taken in file and row order; within a row, in the schema's column order.
    """
    from vanguard.errors import DataError

    file_of, row_of = origin
    bad: dict[str, tuple[np.ndarray, str]] = {}
    if "scale" in raw.columns:
        bad["scale"] = (~raw["scale"].isin(SCALES) & raw["scale"].notna()).to_numpy(bool), \
            f"one of {SCALES}"
    for col, dtype in RESULT_COLUMNS.items():
        if dtype == "string" or col not in raw.columns:
            continue
        num = pd.to_numeric(raw[col], errors="coerce")
        mask = num.isna() & raw[col].notna()
        if dtype == "Int64":
            mask |= num.notna() & (num % 1 != 0)
        bad[col] = mask.to_numpy(bool), "a whole number" if dtype == "Int64" else "a number"
    hits = [(int(np.flatnonzero(m)[0]), list(RESULT_COLUMNS).index(c), c, what)
            for c, (m, what) in bad.items() if m.any()]
    if not hits:
        where = paths[0] if len(paths) == 1 else f"{len(paths)} results files"
        return DataError(where, f"results in the tidy schema ({exc})")
    i, _, col, what = min(hits)
    return DataError(paths[file_of[i]], what, row=int(row_of[i]), column=col,
                     found=raw[col].iloc[i])
