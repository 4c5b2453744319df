"""The shared estimation sample of every difference-in-differences estimator.

:func:`prepare` turns an analysis panel (see :mod:`vanguard.schema`) into a
:class:`Design`: the outcome on the requested scale, the sample window, a balanced panel,
event time and one treatment dummy per analysis group. Every estimator in
:mod:`vanguard.did` starts from a :class:`Design`, so they all analyse the same rows.

Sample rules (Morciano et al. 2020)
-----------------------------------
* Treated areas are those of the requested analysis groups
  (area labels naming them, :func:`vanguard.schema.label_groups`); controls are
  never-treated ``control`` areas or an explicit list.
  Areas of other vanguard groups are excluded and listed in ``Design.dropped``.
* Months run from (earliest start - ``pre_months``) to (latest start + ``post_months`` - 1).
  A treated area's months after its own last post-period month are excluded: kept, they
  would be coded untreated and contaminate the baseline.
* Balanced panel: an area missing any month of its window, or with a missing outcome
  (or population on the rate scale), is dropped with a warning naming it.

Prepared samples are reused
---------------------------
Every estimate of a report starts from the same panel, so :func:`prepared` keeps the
last :data:`CACHE_SIZE` samples, keyed on a digest of the *content* of the panel
columns the sample is built from (:func:`panel_digest`; a panel object seen before is
compared with the bytes of its last digest instead of being hashed again) and on every
argument of :func:`prepare`. A panel changed in place, or another panel with the same values,
gets the sample its content calls for: never a sample built from other values. The
warnings raised while a sample was built are raised again each time it is served, so
a cached sample tells its caller what an uncached one would. Derived inputs of an
estimator (design matrices, long samples) are kept beside the sample
(:meth:`Prepared.derived`), so they too are built once per panel.
"""

from __future__ import annotations

import hashlib
import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.errors import DataError, EstimationError

NEVER_TREATED: int = 0
"""``cohort`` of never-treated (control) areas. Month indices of real starts are far
larger (months since January 1970), so the sentinel cannot collide with a cohort."""

RATE_PER: float = schema.RATE_PER

CONTROL_CHOICES: tuple[str, ...] = ("never", "notyet")
"""Comparison areas: never-treated areas, or never- and not-yet-treated ones (the
latter only changes estimators that compare cohorts, such as Callaway-Sant'Anna; the
sample is the same). An explicit sequence of area codes is the third choice."""

SINGLE_AREA_WARNING = (
    "only one treated area in group {group!r}: cluster-robust and bootstrap inference "
    "with a single treated cluster is unreliable (standard errors are not consistent and "
    "tests over- or under-reject); report the estimate with that caveat"
)


@dataclass
class Design:
    """An estimation sample, ready for any estimator.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per area x month with columns ``area``, ``month``, ``t`` (int month
        index, months since January 1970), ``y`` (outcome on ``scale``), ``count`` (raw
        outcome), ``population`` (NaN if the panel has none), ``group``, ``start``,
        ``cohort`` (``t`` of ``start``; :data:`NEVER_TREATED` for controls), ``rel``
        (months since start, NaN for controls), ``site`` and, per analysis group,
        ``treated_<group>`` (1 for that group's treated areas from month 0 of exposure).
    outcome, scale : str
    groups : tuple of str
        Analysis groups with treated areas in ``frame``.
    pre_months, post_months : int or None
        Pre- and post-period lengths used to cut the sample.
    pre_mean : dict
        Group -> treated areas' mean outcome over the pre-period (``rel < 0``) on the
        natural scale of the effect: rate per 1,000 on the ``rate`` scale, count on the
        ``count`` scale; on ``log``/``poisson`` the rate per 1,000 if there is a
        population, else the count.
    data_source : str
    dropped : pandas.DataFrame
        Columns ``area``, ``group``, ``reason``: areas excluded from the sample.
    n_treated : dict
        Group -> number of treated areas in ``frame``.
    n_control : int
        Number of control areas in ``frame``.
    """

    frame: pd.DataFrame
    outcome: str
    scale: str
    groups: tuple[str, ...]
    pre_months: int | None
    post_months: int | None
    pre_mean: dict[str, float]
    data_source: str
    dropped: pd.DataFrame
    n_treated: dict[str, int]
    n_control: int
    notes: list[str] = field(default_factory=list)

    @property
    def n_obs(self) -> int:
        """Area-months in the sample."""
        return len(self.frame)

    def treated_col(self, group: str) -> str:
        """Name of the 0/1 exposure column of ``group``."""
        return f"treated_{group}"

    def members(self, group: str) -> pd.Series:
        """Boolean row mask: rows of areas treated for ``group`` (any month)."""
        return pd.Series(schema.member_mask(self.frame[schema.GROUP], group), self.frame.index)

    def control_mask(self) -> pd.Series:
        """Boolean row mask: rows of control areas."""
        return self.frame[schema.GROUP].eq(schema.CONTROL)


def month_index(months: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Months since January 1970 as integers (NaT -> -1).

    Parameters
    ----------
    months : Series or DatetimeIndex of datetime64

    Returns
    -------
    numpy.ndarray of int64
    """
    m = pd.DatetimeIndex(pd.to_datetime(months))
    out = (m.year.to_numpy(dtype="float64") - 1970) * 12 + m.month.to_numpy(dtype="float64") - 1
    return np.where(np.isnan(out), -1, out).astype("int64")


def _data_source(panel: pd.DataFrame, data_source: str | None) -> str:
    if data_source:
        return data_source
    return str(panel.attrs.get("data_source", "custom")) if hasattr(panel, "attrs") else "custom"


def _check_inputs(
    panel: pd.DataFrame, outcome: str, scale: str, groups: Sequence[str], controls: str
) -> None:
    if not isinstance(panel, pd.DataFrame):
        raise DataError(
            "panel", "a pandas DataFrame (the analysis panel)", found=type(panel).__name__
        )
    need = [schema.AREA, schema.MONTH, schema.GROUP, schema.START]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise DataError("panel", f"columns {need}", column=missing[0], found="missing")
    if outcome not in panel.columns:
        raise DataError(
            "panel",
            f"an outcome column among {_outcome_columns(panel)}",
            column=outcome,
            found="missing",
        )
    if scale not in schema.SCALES:
        raise EstimationError(f"unknown scale {scale!r}; expected one of {schema.SCALES}")
    if not groups:
        raise EstimationError("no analysis group requested")
    present = schema.groups_in(panel[schema.GROUP].dropna().astype(str).unique())
    bad = [g for g in groups if g not in present]
    if bad:
        raise EstimationError(
            f"no treated areas for treatment group(s) {bad} in the panel; groups "
            f"present: {present}"
        )
    if isinstance(controls, str):
        if controls not in CONTROL_CHOICES:
            raise EstimationError(
                f"controls={controls!r}: expected one of {CONTROL_CHOICES} or a list of areas"
            )
    elif not len(controls):
        raise EstimationError("controls: an explicit list of control areas must not be empty")
    if scale == "rate" and schema.POPULATION not in panel.columns:
        raise DataError(
            "panel",
            "a 'population' column for the rate scale (or use scale='log', 'poisson' or 'count')",
            column=schema.POPULATION,
            found="missing",
        )


def _outcome_columns(panel: pd.DataFrame) -> list[str]:
    skip = {schema.AREA, schema.MONTH, schema.POPULATION, schema.GROUP, schema.START, schema.SITE}
    return [c for c in panel.columns if c not in skip and pd.api.types.is_numeric_dtype(panel[c])]


def _area_table(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per area with its group, start and site; errors if they vary within area."""
    cols = [schema.GROUP, schema.START] + ([schema.SITE] if schema.SITE in panel.columns else [])
    per_area = panel.groupby(schema.AREA, sort=True)[cols].nunique(dropna=False)
    varying = per_area[(per_area > 1).any(axis=1)]
    if len(varying):
        area = varying.index[0]
        col = varying.columns[(varying.iloc[0] > 1).to_numpy()][0]
        row = int(np.flatnonzero(panel[schema.AREA].eq(area).to_numpy())[0]) + 2
        raise DataError(
            "panel",
            f"a constant {col!r} within each area",
            row=row,
            column=col,
            found=f"area {area} has {int(varying.iloc[0][col])} values",
        )
    areas = panel.groupby(schema.AREA, sort=True)[cols].first()
    if schema.SITE not in areas.columns:
        areas[schema.SITE] = ""
    areas[schema.START] = pd.to_datetime(areas[schema.START])
    return areas


def prepare(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    groups: Sequence[str] = (schema.POPULATION_BASED, schema.CARE_HOME),
    pre_months: int | None = 24,
    post_months: int | None = 36,
    balanced: bool = True,
    controls: str | Sequence[str] = "never",
    trim_post: bool = True,
    data_source: str | None = None,
) -> Design:
    """Build the estimation sample of a difference-in-differences analysis.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (one row per area x month, see :mod:`vanguard.schema`).
    outcome : str
        Outcome column (a count).
    scale : {"rate", "log", "poisson", "count"}
        ``rate``: count / population * 1,000; ``log``: log(count); ``poisson``: the count,
        for a Poisson fixed-effects model; ``count``: the count.
    groups : sequence of str
        Analysis groups (:data:`vanguard.schema.ANALYSIS_GROUPS`) whose effects are wanted.
    pre_months : int or None
        Months before the earliest start kept in the sample; ``None`` keeps all.
    post_months : int or None
        Months from each treated area's start kept; ``None`` keeps all to the panel end.
    balanced : bool
        Drop (with a warning) areas missing any month of their window.
    controls : {"never", "notyet"} or sequence of str
        Comparison areas: never-treated ``control`` areas (``"notyet"`` gives the same
        sample; see :data:`CONTROL_CHOICES`), or an explicit list of area codes. Listed
        areas may belong to treatment groups not estimated here (e.g. another
        programme's areas as a sensitivity); every other control area is excluded.
    trim_post : bool
        Drop each treated area's months from its own month ``post_months`` on (the TWFE
        rule: kept, they would be coded untreated). Estimators that compare cohorts
        period by period (Callaway-Sant'Anna) need the balanced calendar window instead:
        with ``False`` every area keeps every month of the window.
    data_source : str, optional
        Recorded in results; defaults to ``panel.attrs["data_source"]`` or ``"custom"``.

    Returns
    -------
    Design

    Raises
    ------
    DataError
        Missing columns, unknown group labels, group/start varying within an area,
        start dates outside the panel, zero counts on the log scale, missing population.
    EstimationError
        Unknown scale or analysis group, no treated or no control areas, an outcome that is
        zero everywhere on the Poisson scale.

    Warns
    -----
    UserWarning
        When areas are dropped to balance the panel, when a group has a single treated
        area, when areas whose outcome is always zero are dropped on the Poisson scale, or
        when ``both`` areas (in a population-based and a care-home site) are excluded
        because the model does not estimate both of their groups (with both groups in
        the model they stay, with both treatment indicators).
    """
    return prepared(
        panel,
        outcome,
        scale=scale,
        groups=groups,
        pre_months=pre_months,
        post_months=post_months,
        balanced=balanced,
        controls=controls,
        trim_post=trim_post,
        data_source=data_source,
        stacklevel=3,
    ).copy_design()


CACHE_SIZE: int = 16
"""Prepared samples kept by :func:`prepared` (least recently used dropped first): a
notebook's estimators share a handful; each holds a few MB of frames."""

_CACHE: OrderedDict[tuple, Prepared] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _sample_columns(panel: pd.DataFrame, outcome: str) -> list[str]:
    """Panel columns a sample of ``outcome`` is built from (those present)."""
    cols = [
        schema.AREA,
        schema.MONTH,
        schema.GROUP,
        schema.START,
        schema.SITE,
        schema.POPULATION,
        outcome,
    ]
    return [c for c in dict.fromkeys(cols) if c in panel.columns]


def panel_digest(panel: pd.DataFrame, columns: Sequence[str]) -> bytes:
    """Digest of the content of ``columns`` of ``panel`` (names, dtypes and values).

    Two panels get the same digest only if those columns hold the same values with the
    same dtypes in the same row order; a panel changed in place gets a new one. The
    row index does not enter (samples are built from positions and values only).

    Parameters
    ----------
    panel : pandas.DataFrame
    columns : sequence of str
        Columns present in ``panel``.

    Returns
    -------
    bytes
    """
    return _digest(_digest_pieces(panel, columns))


def _digest(pieces) -> bytes:
    h = hashlib.sha1(usedforsecurity=False)
    for piece in pieces:
        h.update(piece)
    return h.digest()


def _digest_pieces(panel: pd.DataFrame, columns: Sequence[str]) -> list:
    """The bytes :func:`panel_digest` hashes, in order: short ``bytes`` (names, dtypes,
    slices) and byte views of the columns' buffers."""
    pieces: list = [repr((len(panel), list(columns))).encode()]
    for col in columns:
        values = panel[col].array
        pieces.append(f"|{col}|{values.dtype}|".encode())
        arrow = getattr(values, "__arrow_array__", None)
        if arrow is not None:
            # arrow-backed columns: the buffers as they are, with the slice each chunk
            # is of them (two slices of one buffer must not look alike)
            pa_values = arrow()
            for chunk in getattr(pa_values, "chunks", [pa_values]):
                pieces.append(repr((chunk.offset, len(chunk), chunk.null_count)).encode())
                pieces.extend(b"-" if buf is None else _bytes_view(buf) for buf in chunk.buffers())
            continue
        arr = np.asarray(values)
        if arr.dtype.kind in "biufcmM":
            pieces.append(_bytes_view(np.ascontiguousarray(arr)))
        else:
            # object columns: pandas' own row hash, which reads every value
            pieces.append(
                _bytes_view(pd.util.hash_pandas_object(panel[col], index=False).to_numpy()))
    return pieces


def _bytes_view(buffer) -> np.ndarray:
    """The bytes of a contiguous buffer or 1-d array as a uint8 array (no copy)."""
    if isinstance(buffer, np.ndarray):
        # an array's own view: datetimes do not export the buffer protocol
        return buffer.view(np.uint8)
    return np.frombuffer(buffer, dtype=np.uint8)


_CHECKED: OrderedDict[tuple, tuple[list, bytes]] = OrderedDict()
"""``(id(panel), columns)`` -> a copy of the bytes of the panel's last digest, and the
digest (:func:`_content_digest`)."""


def _content_digest(panel: pd.DataFrame, columns: Sequence[str]) -> bytes:
    """:func:`panel_digest`, hashed again only if the panel's bytes changed.

    The bytes of the last digest of each panel object are kept (a copy); comparing the
    panel with them costs a fraction of hashing it, and bytes equal to those hashed
    give the same digest. A panel changed in place, or another object (even at the
    address of a panel gone), is hashed as it is.
    """
    key = (id(panel), tuple(columns))
    pieces = _digest_pieces(panel, columns)
    with _CACHE_LOCK:
        seen = _CHECKED.get(key)
    if seen is not None and _same_bytes(pieces, seen[0]):
        with _CACHE_LOCK:
            if key in _CHECKED:
                _CHECKED.move_to_end(key)
        return seen[1]
    digest = _digest(pieces)
    copy = [p if isinstance(p, bytes) else p.copy() for p in pieces]
    with _CACHE_LOCK:
        _CHECKED[key] = (copy, digest)
        _CHECKED.move_to_end(key)
        while len(_CHECKED) > CACHE_SIZE:
            _CHECKED.popitem(last=False)
    return digest


def _same_bytes(pieces: list, kept: list) -> bool:
    """Whether two lists of :func:`_digest_pieces` hold the same bytes, piece by piece."""
    if len(pieces) != len(kept):
        return False
    for a, b in zip(pieces, kept, strict=True):
        if isinstance(a, bytes) or isinstance(b, bytes):
            if not (isinstance(a, bytes) and isinstance(b, bytes) and a == b):
                return False
        elif a.shape != b.shape or not np.array_equal(a, b):
            return False
    return True


@dataclass
class Prepared:
    """A cached estimation sample and what estimators derived from it.

    Attributes
    ----------
    design : Design
        The cached sample. Estimators read it and must never change it; callers get
        copies (:meth:`copy_design`).
    warned : list of tuple
        ``(message, category)`` of each warning raised while the sample was built.
    memo : dict
        Derived inputs (:meth:`derived`).
    """

    design: Design
    warned: list[tuple[str, type[Warning]]]
    memo: dict = field(default_factory=dict)

    def replay(self, stacklevel: int = 3) -> None:
        """Raise again the warnings raised while the sample was built."""
        for message, category in self.warned:
            warnings.warn(message, category, stacklevel=stacklevel)

    def copy_design(self) -> Design:
        """A copy of the design its receiver may change without touching the cache.

        The frames are shallow copies: pandas copies on write, so changing a copy's
        columns never changes the cached frame.
        """
        d = self.design
        return replace(
            d,
            frame=d.frame.copy(deep=False),
            pre_mean=dict(d.pre_mean),
            dropped=d.dropped.copy(deep=False),
            n_treated=dict(d.n_treated),
            notes=list(d.notes),
        )

    def derived(self, key: Hashable, build: Callable[[], object]):
        """``build()``, computed once per prepared sample and ``key``.

        The warnings ``build`` raises are kept and raised again on every call, like the
        sample's own. ``build`` must depend on nothing but the sample and ``key``, and its
        result must be treated as read-only.

        Parameters
        ----------
        key : hashable
            Names the input and every argument it depends on.
        build : callable
            No arguments.

        Returns
        -------
        object
            What ``build`` returned.
        """
        if key not in self.memo:
            self.memo[key] = _recorded(build)
        value, warned = self.memo[key]
        for message, category in warned:
            warnings.warn(message, category, stacklevel=3)
        return value


def _recorded(build: Callable[[], object]) -> tuple[object, list[tuple[str, type[Warning]]]]:
    """``build()`` and the warnings it raised (not shown: the caller raises them)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = build()
    except Exception:
        # a failing build is not cached: what it warned before failing is shown now
        for w in caught:
            warnings.warn(str(w.message), w.category, stacklevel=3)
        raise
    return value, [(str(w.message), w.category) for w in caught]


def prepared(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    groups: Sequence[str] = (schema.POPULATION_BASED, schema.CARE_HOME),
    pre_months: int | None = 24,
    post_months: int | None = 36,
    balanced: bool = True,
    controls: str | Sequence[str] = "never",
    trim_post: bool = True,
    data_source: str | None = None,
    stacklevel: int = 2,
) -> Prepared:
    """The estimation sample of :func:`prepare`, built once per panel content and arguments.

    Parameters are those of :func:`prepare`, and ``stacklevel``: where the sample's
    warnings point (2, the caller of this function). They are raised on every call,
    cached or not.

    Returns
    -------
    Prepared
        Shared with later calls on the same content: read it, do not change it.

    Raises
    ------
    DataError, EstimationError
        As :func:`prepare` (errors are never cached: a failing call fails every time).
    """
    if not isinstance(panel, pd.DataFrame):
        raise DataError(
            "panel", "a pandas DataFrame (the analysis panel)", found=type(panel).__name__
        )
    groups = tuple(dict.fromkeys(groups))
    if not isinstance(controls, str):
        controls = list(controls)  # read twice: for the key and for the sample
    ctrl = controls if isinstance(controls, str) else ("list", *map(str, controls))
    key = (
        _content_digest(panel, _sample_columns(panel, outcome)),
        outcome,
        scale,
        groups,
        pre_months,
        post_months,
        bool(balanced),
        ctrl,
        bool(trim_post),
        _data_source(panel, data_source),
    )
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            _CACHE.move_to_end(key)
    if entry is None:
        design, warned = _recorded(
            lambda: _build(
                panel,
                outcome,
                scale=scale,
                groups=groups,
                pre_months=pre_months,
                post_months=post_months,
                balanced=balanced,
                controls=controls,
                trim_post=trim_post,
                data_source=data_source,
            )
        )
        entry = Prepared(design, warned)
        with _CACHE_LOCK:
            _CACHE[key] = entry
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
    entry.replay(stacklevel + 1)
    return entry


def clear_cache() -> None:
    """Forget every prepared sample (:func:`prepared`)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _CHECKED.clear()


def _build(
    panel: pd.DataFrame,
    outcome: str,
    *,
    scale: str = "rate",
    groups: Sequence[str] = (schema.POPULATION_BASED, schema.CARE_HOME),
    pre_months: int | None = 24,
    post_months: int | None = 36,
    balanced: bool = True,
    controls: str | Sequence[str] = "never",
    trim_post: bool = True,
    data_source: str | None = None,
) -> Design:
    """:func:`prepare` without the cache (the sample built from scratch)."""
    groups = tuple(dict.fromkeys(groups))
    _check_inputs(panel, outcome, scale, groups, controls)
    # only the columns the sample is built from: the copy is the costliest step, and an
    # unrelated column named like a derived one ("y", "count") cannot collide with it
    used = [c for c in _sample_columns(panel, outcome) if c in panel.columns]
    df = panel[used].copy()
    df[schema.MONTH] = pd.to_datetime(df[schema.MONTH])
    df[schema.GROUP] = df[schema.GROUP].astype(str)
    dup = df.duplicated([schema.AREA, schema.MONTH])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise DataError(
            "panel",
            "one row per area x month",
            row=row,
            column=schema.MONTH,
            found="duplicate area-month",
        )
    areas = _area_table(df)

    estimated = frozenset(groups)
    dropped_rows = []
    # An area's label may name several treatment groups (the register's 'both', or a
    # user's "a+b"). In a model that does not estimate every one of them the area would
    # count as treated by one programme while carrying another's effect, so it goes.
    area_groups = areas[schema.GROUP].map(schema.label_groups)
    other = area_groups.map(lambda gs: bool(gs) and not (gs & estimated)).astype(bool)
    mixed = area_groups.map(lambda gs: bool(gs & estimated) and not gs <= estimated).astype(bool)
    for a in areas.index[other]:
        dropped_rows.append({"area": a, "group": areas.at[a, schema.GROUP],
                             "reason": "other treatment group, not in this analysis"})
    if mixed.any():
        names = list(areas.index[mixed])
        reason = (
            "in several treatment groups, not all of them in this model, so its effect "
            "would mix programmes"
        )
        warnings.warn(
            f"excluded {len(names)} area(s) that belong to a treatment group not in this "
            f"model as well ({', '.join(map(str, names))}): the model estimates "
            f"{list(groups)} only",
            UserWarning,
            stacklevel=2,
        )
        dropped_rows += [
            {"area": a, "group": areas.at[a, schema.GROUP], "reason": reason} for a in names
        ]
    if not isinstance(controls, str):
        listed = pd.Index(list(dict.fromkeys(map(str, controls))))
        unknown = listed.difference(areas.index)
        if len(unknown):
            raise EstimationError(
                f"controls: area(s) {list(unknown)[:5]} are not in the panel"
            )
        treated_listed = [a for a in listed if area_groups[a] & estimated]
        if treated_listed:
            raise EstimationError(
                f"controls: area(s) {treated_listed[:5]} are treated by {list(groups)} and "
                "cannot be their own controls"
            )
        unlisted = area_groups.map(len).eq(0) & ~areas.index.isin(listed)
        for a in areas.index[unlisted]:
            dropped_rows.append({"area": a, "group": schema.CONTROL,
                                 "reason": "control area not in the explicit control list"})
        # a listed area of another group is a control here, not an exclusion
        as_controls = set(listed)
        dropped_rows = [r for r in dropped_rows if r["area"] not in as_controls]
        areas.loc[listed, schema.GROUP] = schema.CONTROL
        areas.loc[listed, schema.START] = pd.NaT
        keep = (area_groups.map(len).gt(0) & ~other & ~mixed) | areas.index.isin(listed)
        # the listed areas are controls from here on, whatever their register group
        df.loc[df[schema.AREA].isin(listed), schema.GROUP] = schema.CONTROL
        df.loc[df[schema.AREA].isin(listed), schema.START] = pd.NaT
    else:
        keep = ~other & ~mixed
    areas = areas[keep].copy()

    is_ctrl = areas[schema.GROUP].eq(schema.CONTROL)
    no_start = ~is_ctrl & areas[schema.START].isna()
    if no_start.any():
        a = areas.index[no_start][0]
        raise DataError(
            "panel",
            "a start month for every treated area",
            column=schema.START,
            row=int(np.flatnonzero(df[schema.AREA].eq(a).to_numpy())[0]) + 2,
            found=f"NaT for area {a}",
        )
    pmin, pmax = df[schema.MONTH].min(), df[schema.MONTH].max()
    outside = ~is_ctrl & ((areas[schema.START] <= pmin) | (areas[schema.START] > pmax))
    if outside.any():
        a = areas.index[outside][0]
        raise DataError(
            "panel",
            f"start dates after the first panel month {pmin:%Y-%m} and no later "
            f"than the last {pmax:%Y-%m} (a pre- and a post-period)",
            column=schema.START,
            row=int(np.flatnonzero(df[schema.AREA].eq(a).to_numpy())[0]) + 2,
            found=f"{areas.at[a, schema.START]:%Y-%m} for area {a}",
        )

    for g in groups:
        if not schema.member_mask(areas[schema.GROUP], g).any():
            raise EstimationError(f"no treated areas for group {g!r} in the panel")
    if not is_ctrl.any():
        raise EstimationError("no control (never-treated) areas in the panel")

    df = df[df[schema.AREA].isin(areas.index)].copy()
    df["t"] = month_index(df[schema.MONTH])
    starts_t = pd.Series(month_index(areas[schema.START]), index=areas.index)
    starts_t[is_ctrl] = NEVER_TREATED
    df["cohort"] = starts_t.to_numpy()[starts_t.index.get_indexer(df[schema.AREA])].astype(
        "int64"
    )
    treated_row = df["cohort"].ne(NEVER_TREATED)
    df["rel"] = np.where(treated_row, df["t"] - df["cohort"], np.nan)

    tr_starts = starts_t[~is_ctrl]
    t_lo = int(tr_starts.min() - pre_months) if pre_months is not None else int(df["t"].min())
    t_hi = int(tr_starts.max() + post_months - 1) if post_months is not None else int(df["t"].max())
    in_window = df["t"].between(t_lo, t_hi)
    if post_months is not None and trim_post:
        # months after a treated area's own last post month would be coded untreated
        in_window &= ~(treated_row & (df["rel"] >= post_months))
    df = df[in_window].copy()

    # each area's expected months: the window, cut at its own last post month
    panel_hi = int(month_index(pd.Series([pmax]))[0])
    area_hi = pd.Series(min(t_hi, panel_hi), index=areas.index, dtype="int64")
    if post_months is not None and trim_post:
        area_hi[~is_ctrl] = np.minimum(area_hi[~is_ctrl], tr_starts + post_months - 1)
    area_lo = max(t_lo, int(month_index(pd.Series([pmin]))[0]))
    expected = (area_hi - area_lo + 1).clip(lower=0)

    df = df.rename(columns={outcome: "count"}) if outcome != "count" else df
    if schema.POPULATION not in df.columns:
        df[schema.POPULATION] = np.nan
    df["count"] = pd.to_numeric(df["count"], errors="raise").astype("float64")
    neg = df["count"] < 0
    if neg.any():
        r = df[neg].iloc[0]
        raise DataError(
            "panel",
            "non-negative counts",
            column=outcome,
            found=f"{r['count']} for area {r[schema.AREA]}, {r[schema.MONTH]:%Y-%m}",
        )

    bad_val = df["count"].isna()
    if scale == "rate":
        bad_val |= df[schema.POPULATION].isna() | (df[schema.POPULATION] <= 0)
    n_rows = df.groupby(schema.AREA).size().reindex(areas.index, fill_value=0)
    n_bad = bad_val.groupby(df[schema.AREA]).sum().reindex(areas.index, fill_value=0)
    incomplete = (n_rows < expected) | (n_bad > 0)
    names = list(incomplete.index[incomplete])
    # Unbalanced panels are allowed on request; missing values never are.
    if names and (balanced or n_bad[names].any()):
        reason = "missing months or missing outcome/population in the sample window"
        warnings.warn(
            f"balanced panel: dropped {len(names)} area(s) with {reason}: "
            f"{', '.join(map(str, names))}",
            UserWarning,
            stacklevel=2,
        )
        for a in names:
            dropped_rows.append({"area": a, "group": areas.at[a, schema.GROUP], "reason": reason})
        df = df[~df[schema.AREA].isin(names)].copy()

    if scale == "log":
        zero = df["count"] <= 0
        if zero.any():
            r = df[zero].iloc[0]
            raise DataError(
                "panel",
                "positive counts for the log scale (use scale='poisson' for counts with zeros)",
                column=outcome,
                found=f"{r['count']:g} for area {r[schema.AREA]}, {r[schema.MONTH]:%Y-%m}",
            )
    if scale == "poisson":
        if not (df["count"] > 0).any():
            raise EstimationError(
                f"outcome {outcome!r} is zero in every area-month; a "
                "Poisson model cannot be estimated"
            )
        all_zero = df.groupby(schema.AREA)["count"].sum().le(0)
        if all_zero.any():
            names = list(all_zero.index[all_zero])
            # such areas carry no information in a Poisson FE model (their FE is -inf)
            warnings.warn(
                f"poisson: dropped {len(names)} area(s) whose outcome is zero in "
                f"every month: {', '.join(map(str, names))}",
                UserWarning,
                stacklevel=2,
            )
            for a in names:
                dropped_rows.append(
                    {
                        "area": a,
                        "group": areas.at[a, schema.GROUP],
                        "reason": "outcome zero in every month (Poisson)",
                    }
                )
            df = df[~df[schema.AREA].isin(names)].copy()

    if scale == "rate":
        df["y"] = schema.per_1000(df["count"], df[schema.POPULATION])
    elif scale == "log":
        df["y"] = np.log(df["count"])
    else:
        df["y"] = df["count"]

    # membership is a property of the area: decide it once per area, then index rows
    row_area = areas.index.get_indexer(df[schema.AREA])
    members = {g: schema.member_mask(areas[schema.GROUP], g)[row_area] for g in groups}
    for g in groups:
        df[f"treated_{g}"] = (members[g] & (df["rel"] >= 0)).astype("int64")

    n_control = int(df.loc[df[schema.GROUP].eq(schema.CONTROL), schema.AREA].nunique())
    if n_control == 0:
        raise EstimationError("no control areas left after balancing the panel")
    n_treated: dict[str, int] = {}
    pre_mean: dict[str, float] = {}
    natural = (
        df["y"]
        if scale in ("rate", "count")
        else (
            schema.per_1000(df["count"], df[schema.POPULATION])
            if df[schema.POPULATION].notna().all()
            else df["count"]
        )
    )
    for g in groups:
        member = members[g]
        n_treated[g] = int(df.loc[member, schema.AREA].nunique())
        if n_treated[g] == 0:
            raise EstimationError(f"no treated areas left for group {g!r} after balancing")
        if n_treated[g] == 1:
            warnings.warn(SINGLE_AREA_WARNING.format(group=g), UserWarning, stacklevel=2)
        pre = member & (df["rel"] < 0)
        pre_mean[g] = float(natural[pre].mean()) if pre.any() else math.nan
        if not pre.any():
            raise EstimationError(f"group {g!r}: no pre-period months in the sample window")
        if not (member & (df["rel"] >= 0)).any():
            raise EstimationError(f"group {g!r}: no post-period months in the sample window")

    keep = [
        schema.AREA,
        schema.MONTH,
        "t",
        "y",
        "count",
        schema.POPULATION,
        schema.GROUP,
        schema.START,
        "cohort",
        "rel",
        schema.SITE,
    ] + [f"treated_{g}" for g in groups]
    if schema.SITE not in df.columns:
        df[schema.SITE] = ""
    frame = df[keep].sort_values([schema.AREA, "t"], kind="stable").reset_index(drop=True)
    dropped = pd.DataFrame(dropped_rows, columns=["area", "group", "reason"])
    return Design(
        frame=frame,
        outcome=outcome,
        scale=scale,
        groups=groups,
        pre_months=pre_months,
        post_months=post_months,
        pre_mean=pre_mean,
        data_source=_data_source(panel, data_source),
        dropped=dropped,
        n_treated=n_treated,
        n_control=n_control,
    )


def as_design(panel_or_design, outcome: str | None, **kwargs) -> Design:
    """Return ``panel_or_design`` if it is a :class:`Design`, else :func:`prepare` it.

    Raises
    ------
    EstimationError
        If a panel is given without ``outcome``.
    """
    if isinstance(panel_or_design, Design):
        return panel_or_design
    if outcome is None:
        raise EstimationError("outcome is required when a panel (not a Design) is given")
    return prepare(panel_or_design, outcome, **kwargs)
