"""One specification for every difference-in-differences estimator.

A :class:`Spec` says what is estimated (outcome, scale, the treatment group), against
what (the comparison areas), over which periods (pre-period, post-period windows, time
unit) and with which inference (method, draws, seed). Every estimator in
:mod:`vanguard.did.fit` takes the same ``Spec``; one that cannot honour a field raises
:class:`SpecError` naming it, so no setting is silently ignored.

Treatment groups are the user's: a :class:`TreatmentGroup` is a name and its areas, each
with the month its exposure starts (staggered starts within a group are allowed) and,
optionally, the sites the areas belong to. A :class:`Programme` is a set of groups; the
NHS vanguard register is one ready-made programme (:func:`vanguard.did.spec.Programme.from_panel`
reads it off a vanguard panel), a user's groups file another
(:meth:`Programme.from_csv`). A programme writes its assignment into the panel's
``group``, ``start`` and ``site`` columns (:meth:`Programme.assign`); an area in several
groups gets a label joining their names (:func:`vanguard.schema.compose_label`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vanguard import schema
from vanguard.errors import DataError, EstimationError

DEFAULT_SEED: int = schema.DEFAULT_SEED
"""Seed of every random draw unless a specification says otherwise."""

UNITS: tuple[str, ...] = ("month", "quarter")
"""Time units of event time. Quarters are allowed only where every cohort of the sample
starts on one quarter grid (see :func:`vanguard.did.staggered.to_quarters`)."""

INFERENCE: tuple[str, ...] = (
    "auto",
    "cluster",
    "wild_bootstrap",
    "randomisation",
    "multiplier_bootstrap",
)
"""Inference methods a specification can ask for. ``auto`` is the project's headline
rule for the estimator at hand (:func:`vanguard.did.inference.headline_inference`)."""

CONTROLS: tuple[str, ...] = ("never", "notyet")
"""Named comparison sets; an explicit tuple of area codes is the third choice."""

_RESERVED_NAMES = frozenset({schema.CONTROL, schema.BOTH, ""})


class SpecError(EstimationError):
    """A specification field that is invalid, or that an estimator cannot honour.

    Parameters
    ----------
    field : str
        The field at fault.
    message : str
        What is wrong and what would be accepted.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"specification field {field!r}: {message}")


def _month(value: Any, what: str) -> str:
    """``YYYY-MM`` of a month given as text or a timestamp."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise SpecError(what, f"expected a month such as '2015-04'; found {value!r}") from exc
    if pd.isna(ts):
        raise SpecError(what, f"expected a month such as '2015-04'; found {value!r}")
    return f"{ts.year:04d}-{ts.month:02d}"


@dataclass(frozen=True)
class TreatmentGroup:
    """A named group of treated areas, each with its start month.

    Attributes
    ----------
    name : str
        Identifier used in results files (letters, digits, ``_``; no ``+``).
    starts : tuple of (str, str)
        ``(area, "YYYY-MM")``: the first exposed month of each area, sorted by area.
        Several start months make a staggered group (one cohort per month).
    sites : tuple of (str, str)
        ``(area, site ids joined by ";")`` for per-site analyses; may be empty.
    label : str
        Reader-facing name (defaults to ``name``).
    """

    name: str
    starts: tuple[tuple[str, str], ...]
    sites: tuple[tuple[str, str], ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name.strip() in _RESERVED_NAMES:
            raise SpecError("groups", f"a group name must be a non-empty text other than "
                            f"{sorted(n for n in _RESERVED_NAMES if n)}; found {self.name!r}")
        if schema.GROUP_SEPARATOR in self.name or ";" in self.name:
            raise SpecError("groups", f"group name {self.name!r} must not contain "
                            f"{schema.GROUP_SEPARATOR!r} or ';'")
        starts = tuple(sorted((str(a).strip(), _month(m, "groups")) for a, m in self.starts))
        if not starts:
            raise SpecError("groups", f"group {self.name!r} has no areas")
        areas = [a for a, _ in starts]
        dup = sorted({a for a in areas if areas.count(a) > 1})
        if dup:
            raise SpecError("groups", f"group {self.name!r} lists area(s) {dup[:5]} twice")
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "sites", tuple(sorted((str(a), str(s)) for a, s in self.sites)))
        object.__setattr__(self, "label", self.label or self.name.replace("_", " "))

    @classmethod
    def of(
        cls,
        name: str,
        starts: Mapping[str, Any],
        sites: Mapping[str, str] | None = None,
        label: str = "",
    ) -> TreatmentGroup:
        """Build a group from ``{area: start month}`` (and ``{area: site ids}``)."""
        return cls(name, tuple(starts.items()), tuple((sites or {}).items()), label)

    @property
    def areas(self) -> tuple[str, ...]:
        """The group's areas, sorted."""
        return tuple(a for a, _ in self.starts)

    @property
    def cohorts(self) -> dict[str, tuple[str, ...]]:
        """Start month -> the areas starting then."""
        out: dict[str, list[str]] = {}
        for a, m in self.starts:
            out.setdefault(m, []).append(a)
        return {m: tuple(v) for m, v in sorted(out.items())}


@dataclass(frozen=True)
class Programme:
    """The treatment groups of one programme (or register of programmes).

    Attributes
    ----------
    groups : tuple of TreatmentGroup
    name : str
        Reader-facing name of the programme.

    Raises
    ------
    SpecError
        Two groups with one name, or an area in two groups with different start months
        (the panel holds one start per area).
    """

    groups: tuple[TreatmentGroup, ...]
    name: str = ""

    def __post_init__(self) -> None:
        groups = tuple(self.groups)
        names = [g.name for g in groups]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SpecError("groups", f"group name(s) {dup} used twice")
        start: dict[str, str] = {}
        for g in groups:
            for a, m in g.starts:
                if start.setdefault(a, m) != m:
                    raise SpecError(
                        "groups",
                        f"area {a} starts {start[a]} in one group and {m} in group "
                        f"{g.name!r}; an area has one start month",
                    )
        object.__setattr__(self, "groups", groups)

    @property
    def names(self) -> tuple[str, ...]:
        """Group names, in the programme's order."""
        return tuple(g.name for g in self.groups)

    def group(self, name: str) -> TreatmentGroup:
        """The group called ``name``.

        Raises
        ------
        SpecError
            If there is none.
        """
        for g in self.groups:
            if g.name == name:
                return g
        raise SpecError("group", f"no treatment group {name!r}; the programme has {list(self.names)}")

    def assignments(self) -> pd.DataFrame:
        """One row per treated area: ``area``, ``group`` (label), ``start``, ``site``."""
        by_area: dict[str, dict] = {}
        for g in self.groups:
            sites = dict(g.sites)
            for a, m in g.starts:
                row = by_area.setdefault(a, {"groups": set(), "start": m, "sites": []})
                row["groups"].add(g.name)
                row["sites"] += [s for s in sites.get(a, "").split(";") if s]
        return pd.DataFrame(
            [
                {
                    schema.AREA: a,
                    schema.GROUP: schema.compose_label(r["groups"]),
                    schema.START: pd.Timestamp(r["start"]),
                    schema.SITE: ";".join(dict.fromkeys(r["sites"])),
                }
                for a, r in sorted(by_area.items())
            ],
            columns=[schema.AREA, schema.GROUP, schema.START, schema.SITE],
        )

    def assign(self, panel: pd.DataFrame, *, file: str = "panel") -> pd.DataFrame:
        """A copy of ``panel`` whose ``group``, ``start`` and ``site`` columns are this
        programme's: its areas treated, every other area a control.

        Raises
        ------
        DataError
            If a programme area is not in the panel (a typo would otherwise leave a
            treated area among the controls).
        """
        table = self.assignments()
        codes = set(panel[schema.AREA].astype(str))
        missing = sorted(set(table[schema.AREA]) - codes)
        if missing:
            raise DataError(
                file,
                "every area of the treatment groups to be in the panel",
                column=schema.AREA,
                found=f"{len(missing)} missing, e.g. {missing[:5]}",
            )
        out = panel.drop(columns=[c for c in (schema.GROUP, schema.START, schema.SITE)
                                  if c in panel.columns])
        out = out.merge(table, on=schema.AREA, how="left", validate="many_to_one")
        out[schema.GROUP] = out[schema.GROUP].fillna(schema.CONTROL).astype(str)
        out[schema.SITE] = out[schema.SITE].fillna("").astype(str)
        out[schema.START] = pd.to_datetime(out[schema.START])
        out.attrs = dict(panel.attrs)
        return out

    def site_groups(self) -> dict[str, str]:
        """Site id -> the group whose areas name it (first group wins for a shared id)."""
        out: dict[str, str] = {}
        for g in self.groups:
            for _, sites in g.sites:
                for s in sites.split(";"):
                    if s:
                        out.setdefault(s, g.name)
        return out

    @classmethod
    def from_panel(cls, panel: pd.DataFrame, name: str = "") -> Programme:
        """The programme a panel's ``group``/``start``/``site`` columns describe.

        Raises
        ------
        DataError
            If a column is missing or a treated area has no start.
        """
        for col in (schema.AREA, schema.GROUP, schema.START):
            if col not in panel.columns:
                raise DataError("panel", f"a column {col!r}", column=col, found="missing")
        cols = [schema.AREA, schema.GROUP, schema.START] + (
            [schema.SITE] if schema.SITE in panel.columns else [])
        areas = panel[cols].drop_duplicates(schema.AREA)
        members: dict[str, dict] = {}
        for r in areas.itertuples(index=False):
            r = r._asdict()
            gs = schema.label_groups(str(r[schema.GROUP]))
            if not gs:
                continue
            if pd.isna(r[schema.START]):
                raise DataError("panel", "a start month for every treated area",
                                column=schema.START, found=f"none for area {r[schema.AREA]}")
            for g in gs:
                m = members.setdefault(g, {"starts": {}, "sites": {}})
                m["starts"][str(r[schema.AREA])] = r[schema.START]
                m["sites"][str(r[schema.AREA])] = str(r.get(schema.SITE, "") or "")
        groups = tuple(
            TreatmentGroup.of(g, members[g]["starts"], members[g]["sites"], schema.group_label(g))
            for g in schema.groups_in(members)
        )
        return cls(groups, name)

    @classmethod
    def from_csv(cls, path: str | Path, name: str = "") -> Programme:
        """Read a groups file: one row per group x area.

        Columns ``group``, ``area``, ``start_month`` (``YYYY-MM``), and optionally
        ``site`` (site ids joined by ``;``) and ``label``.

        Raises
        ------
        DataError
            Naming the file, row and column of a missing column, an empty cell, a bad
            month, or an area listed twice in one group.
        """
        path = Path(path)
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except FileNotFoundError as exc:
            raise DataError(path, "a groups file (CSV)", found="no such file") from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(path, "a CSV file with columns group, area, start_month",
                            found=str(exc).splitlines()[0]) from exc
        df.columns = [c.strip() for c in df.columns]
        for col in ("group", "area", "start_month"):
            if col not in df.columns:
                raise DataError(path, f"a column {col!r}", column=col,
                                found=f"columns {list(df.columns)}")
        df = df.apply(lambda s: s.str.strip())
        for col in ("group", "area", "start_month"):
            empty = df[col].eq("")
            if empty.any():
                raise DataError(path, "a value", row=int(np.flatnonzero(empty)[0]) + 2,
                                column=col, found="")
        ok = df["start_month"].str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])")
        if not ok.all():
            i = int(np.flatnonzero(~ok.to_numpy())[0])
            raise DataError(path, "a month as YYYY-MM", row=i + 2, column="start_month",
                            found=df["start_month"].iloc[i])
        dup = df.duplicated(["group", "area"])
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise DataError(path, "each area once per group", row=i + 2, column="area",
                            found=df["area"].iloc[i])
        groups = []
        for g, rows in df.groupby("group", sort=False):
            label = rows["label"].iloc[0] if "label" in rows else ""
            sites = dict(zip(rows["area"], rows["site"], strict=True)) if "site" in rows else {}
            try:
                groups.append(TreatmentGroup.of(
                    g, dict(zip(rows["area"], rows["start_month"], strict=True)), sites, label))
            except SpecError as exc:
                raise DataError(path, str(exc), column="group", found=g) from exc
        try:
            return cls(tuple(groups), name)
        except SpecError as exc:
            raise DataError(path, str(exc), column="start_month") from exc


def _windows(value: Any) -> tuple[tuple[str, int, int], ...]:
    if isinstance(value, Mapping):
        items = [(str(k), v[0], v[1]) for k, v in value.items()]
    else:
        items = []
        for w in value:
            if isinstance(w, str):
                if w not in schema.WINDOWS:
                    raise SpecError("windows", f"unknown window {w!r}; named windows are "
                                    f"{list(schema.WINDOWS)}, or give (name, lo, hi)")
                items.append((w, *schema.WINDOWS[w]))
            else:
                items.append(tuple(w))
    out = []
    for item in items:
        if len(item) != 3:
            raise SpecError("windows", f"expected (name, lo, hi); found {item!r}")
        name, lo, hi = item
        if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer))):
            raise SpecError("windows", f"window {name!r}: months must be whole numbers")
        if not 0 <= lo < hi:
            raise SpecError("windows", f"window {name!r}: expected 0 <= lo < hi months "
                            f"after the start; found [{lo}, {hi})")
        out.append((str(name), int(lo), int(hi)))
    if not out:
        raise SpecError("windows", "at least one post-period window is needed")
    names = [w[0] for w in out]
    if len(set(names)) != len(names):
        raise SpecError("windows", f"window names must be unique; found {names}")
    return tuple(out)


def _int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SpecError(name, f"expected a whole number; found {value!r}")
    if value < lo:
        raise SpecError(name, f"expected at least {lo}; found {value}")
    return int(value)


@dataclass(frozen=True)
class Spec:
    """What to estimate, against what, when, and how sure to be.

    Attributes
    ----------
    outcome : str
        Outcome column of the panel (a count).
    group : str
        The treatment group whose effect is estimated.
    scale : {"rate", "log", "poisson", "count"}
        Rate per 1,000 per month, log count, Poisson (log rate ratio) or count.
    controls : {"never", "notyet"} or tuple of str
        Comparison areas: never-treated areas; never- and not-yet-treated areas; or an
        explicit list of area codes.
    pre_months : int
        Months before the earliest start kept in the sample.
    windows : tuple of (name, lo, hi)
        Post-period windows in months since start, half-open ``[lo, hi)``; a sequence of
        names of :data:`vanguard.schema.WINDOWS` or a mapping is accepted.
    unit : {"month", "quarter"}
        Time unit of event time (event studies, Callaway-Sant'Anna, HonestDiD).
    inference : str
        One of :data:`INFERENCE`.
    n_boot : int
        Bootstrap or permutation draws.
    seed : int
        Seed of every random draw.
    alpha : float
        1 - confidence level.
    programme : Programme or None
        Treatment groups to impose on the panel; ``None`` uses the panel's own
        ``group``/``start``/``site`` columns.
    data_source : str
        Label recorded in every result row.

    Raises
    ------
    SpecError
        On a value of the wrong type or outside its range, naming the field.
    """

    outcome: str
    group: str
    scale: str = "rate"
    controls: str | tuple[str, ...] = "never"
    pre_months: int = 24
    windows: tuple[tuple[str, int, int], ...] = tuple(
        (k, lo, hi) for k, (lo, hi) in schema.WINDOWS.items()
    )
    unit: str = "month"
    inference: str = "auto"
    n_boot: int = 999
    seed: int = DEFAULT_SEED
    alpha: float = 0.05
    programme: Programme | None = None
    data_source: str = "custom"

    def __post_init__(self) -> None:
        for name in ("outcome", "group", "data_source"):
            v = getattr(self, name)
            if not isinstance(v, str) or (name != "data_source" and not v.strip()):
                raise SpecError(name, f"expected a non-empty text; found {v!r}")
        if self.scale not in schema.SCALES:
            raise SpecError("scale", f"expected one of {schema.SCALES}; found {self.scale!r}")
        if isinstance(self.controls, str):
            if self.controls not in CONTROLS:
                raise SpecError("controls", f"expected one of {CONTROLS} or a list of area "
                                f"codes; found {self.controls!r}")
        else:
            areas = tuple(str(a).strip() for a in self.controls)
            if not areas:
                raise SpecError("controls", "an explicit list of control areas is empty")
            object.__setattr__(self, "controls", areas)
        object.__setattr__(self, "pre_months", _int("pre_months", self.pre_months, 1))
        object.__setattr__(self, "n_boot", _int("n_boot", self.n_boot, 1))
        object.__setattr__(self, "seed", _int("seed", self.seed, 0))
        object.__setattr__(self, "windows", _windows(self.windows))
        if self.unit not in UNITS:
            raise SpecError("unit", f"expected one of {UNITS}; found {self.unit!r}")
        if self.inference not in INFERENCE:
            raise SpecError("inference", f"expected one of {INFERENCE}; found {self.inference!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not (
            0 < float(self.alpha) < 0.5
        ):
            raise SpecError("alpha", f"expected a number between 0 and 0.5; found {self.alpha!r}")
        object.__setattr__(self, "alpha", float(self.alpha))
        if self.programme is not None:
            if not isinstance(self.programme, Programme):
                raise SpecError("programme", "expected a Programme or None")
            self.programme.group(self.group)

    # --- derived ----------------------------------------------------------------------
    @property
    def window_map(self) -> dict[str, tuple[int, int]]:
        """Window name -> ``(lo, hi)`` months since start."""
        return {n: (lo, hi) for n, lo, hi in self.windows}

    @property
    def post_months(self) -> int:
        """Months after the start the sample needs: the end of the last window."""
        return max(hi for _, _, hi in self.windows)

    @property
    def control_setting(self) -> str | list[str]:
        """``controls`` as the sample builder takes it."""
        return self.controls if isinstance(self.controls, str) else list(self.controls)

    def replace(self, **changes: Any) -> Spec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-serialisable form (the results cache keys on it)."""
        out = dataclasses.asdict(self)
        out["windows"] = [list(w) for w in self.windows]
        out["controls"] = self.controls if isinstance(self.controls, str) else list(self.controls)
        return out

    def panel(self, panel: pd.DataFrame) -> pd.DataFrame:
        """The panel with this specification's programme imposed (as given without one)."""
        return panel if self.programme is None else self.programme.assign(panel)

    def require(self, estimator: str, **allowed: Iterable[Any]) -> None:
        """Refuse a field value an estimator cannot honour.

        Parameters
        ----------
        estimator : str
            Reader-facing estimator name, for the message.
        **allowed
            Field name -> the values the estimator supports. ``controls`` may list
            ``"explicit"`` for an explicit list of areas.

        Raises
        ------
        SpecError
            Naming the first field whose value is not supported.
        """
        for field, values in allowed.items():
            values = tuple(values)
            value = getattr(self, field)
            if field == "controls" and not isinstance(value, str):
                value_key: Any = "explicit"
            else:
                value_key = value
            if value_key not in values:
                raise SpecError(
                    field,
                    f"{estimator} cannot honour {field}={value!r}; it supports {list(values)}",
                )
