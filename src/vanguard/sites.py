"""The vanguard site register and each site's area footprint.

Two files make a register (the real one in ``data/raw/``, the synthetic one in
``data/raw/synthetic/``):

sites file, one row per vanguard
    ``site_id``, ``type`` (PACS, MCP, EHCH, UEC, ACC), ``wave``, ``announced``
    (YYYY-MM-DD), ``start_month`` (YYYY-MM, the first full month after announcement),
    ``name``, ``footprint`` (``area`` or ``none``; acute care collaborations are provider
    networks with no area footprint), ``source_url``, ``note``.
areas file, one row per site x area
    ``site_id``, ``area`` (a CCG code exactly as in the MAR files), ``area_name``,
    ``coverage`` (``whole`` or ``part``), ``evidence`` (why this area).

:func:`area_assignments` turns the register into one row per treated area with its
analysis group (see :mod:`vanguard.schema`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vanguard import config, schema
from vanguard.errors import DataError

SITE_COLUMNS: tuple[str, ...] = (
    "site_id",
    "type",
    "wave",
    "announced",
    "start_month",
    "name",
    "footprint",
    "source_url",
    "note",
)
AREA_COLUMNS: tuple[str, ...] = ("site_id", "area", "area_name", "coverage", "evidence")
SITE_TYPES: tuple[str, ...] = ("PACS", "MCP", "EHCH", "UEC", "ACC")
FOOTPRINTS: tuple[str, ...] = ("area", "none")
COVERAGES: tuple[str, ...] = ("whole", "part")
ASSIGNMENT_COLUMNS: tuple[str, ...] = ("area", "group", "start", "site", "site_types", "coverage")

_POPULATION_TYPES = frozenset({"PACS", "MCP"})
_CARE_HOME_TYPES = frozenset({"EHCH"})
_UEC_TYPES = frozenset({"UEC"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class Register:
    """A validated site register.

    Attributes
    ----------
    sites : pandas.DataFrame
        One row per site (:data:`SITE_COLUMNS`); ``announced`` and ``start_month`` are
        Timestamps, ``wave`` is int, ``site_id`` is str.
    areas : pandas.DataFrame
        One row per site x area (:data:`AREA_COLUMNS`).
    sites_path, areas_path : pathlib.Path
        The files read, named in error messages.
    """

    sites: pd.DataFrame
    areas: pd.DataFrame
    sites_path: Path
    areas_path: Path


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read one register file as text, refusing what :func:`vanguard.panel.read_table`
    refuses (spreadsheets, ragged lines, repeated column names, ...)."""
    from vanguard.panel import _missing_column, read_table

    if not path.is_file():
        raise DataError(path, "a site register CSV (file not found)")
    df = read_table(path, csv_only=True)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise _missing_column(path, missing[0], df.columns, expected=f"columns {list(columns)}")
    df = df[list(columns)].copy()
    for col in columns:
        df[col] = df[col].str.strip()
    return df


def _first_bad(mask: pd.Series) -> int:
    """1-based spreadsheet row (header = 1) of the first True in ``mask``."""
    return int(mask.to_numpy().argmax()) + 2


def _reject(df, bad, path, column, expected, note=None):
    """Raise a :class:`DataError` at the first row where ``bad`` holds, if any.

    ``note`` may be a function of the offending value giving a hint, or None.
    """
    if bad.any():
        r = _first_bad(bad)
        value = df[column].iloc[r - 2]
        raise DataError(
            path, expected, row=r, column=column, found=value, note=note(value) if note else None
        )


def _check_in(df, col, allowed, path):
    def hint(value: str) -> str | None:
        # Values are compared exactly; a case slip is the commonest miss.
        same = [a for a in allowed if a.lower() == value.lower()]
        return f"did you mean {same[0]!r}?" if same else None

    _reject(df, ~df[col].isin(allowed), path, col, f"one of {', '.join(allowed)}", hint)


def _check_unique(df, cols, path, what):
    _reject(df, df.duplicated(list(cols)), path, cols[-1], what)


def _check_nonempty(df, cols, path):
    for col in cols:
        _reject(df, df[col] == "", path, col, "a value")


def _plausible_dates() -> tuple[pd.Timestamp, pd.Timestamp]:
    """Dates a register can hold: a year typed as 2105 or 0215 is caught here, not as an
    odd start month far downstream."""
    from vanguard.records import plausible_dates

    return plausible_dates()


def _validate_sites(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    _check_nonempty(
        df, ("site_id", "type", "wave", "announced", "start_month", "name", "footprint"), path
    )
    _check_unique(df, ("site_id",), path, "each site_id once")
    _check_in(df, "type", SITE_TYPES, path)
    _check_in(df, "footprint", FOOTPRINTS, path)
    _reject(df, ~df["wave"].str.fullmatch(r"\d{1,4}"), path, "wave", "a whole-number wave (0-9999)")
    lo, hi = _plausible_dates()
    days = f"between {lo:%Y-%m-%d} and {hi:%Y-%m-%d}"
    months = f"between {lo:%Y-%m} and {hi:%Y-%m}"
    announced = pd.to_datetime(df["announced"], format="%Y-%m-%d", errors="coerce")
    bad = announced.isna() | ~df["announced"].str.fullmatch(_DATE.pattern)
    _reject(df, bad, path, "announced", "a date as YYYY-MM-DD")
    _reject(df, (announced < lo) | (announced > hi), path, "announced", f"a date {days}")
    start = pd.to_datetime(df["start_month"], format="%Y-%m", errors="coerce")
    bad = start.isna() | ~df["start_month"].str.fullmatch(_MONTH.pattern)
    _reject(df, bad, path, "start_month", "a month as YYYY-MM")
    _reject(df, (start < lo) | (start > hi), path, "start_month", f"a month {months}")
    # Exposure starts in the first full month after the announcement.
    _reject(
        df, start <= announced, path, "start_month", "a start_month after the announcement date"
    )
    _reject(
        df,
        (df["type"] == "ACC") & (df["footprint"] != "none"),
        path,
        "footprint",
        "footprint 'none' for acute care collaborations (provider networks)",
    )
    out = df.copy()
    out["wave"] = out["wave"].astype(int)
    out["announced"] = announced
    out["start_month"] = start
    return out


def _validate_areas(
    areas: pd.DataFrame, sites: pd.DataFrame, path: Path, sites_path: Path
) -> pd.DataFrame:
    _check_nonempty(areas, ("site_id", "area", "coverage"), path)
    unknown = ~areas["site_id"].isin(sites["site_id"])
    _reject(areas, unknown, path, "site_id", f"a site_id listed in {sites_path.name}")
    _check_in(areas, "coverage", COVERAGES, path)
    _check_unique(areas, ("site_id", "area"), path, "each site x area once")
    no_fp = set(sites.loc[sites["footprint"] == "none", "site_id"])
    _reject(
        areas,
        areas["site_id"].isin(no_fp),
        path,
        "site_id",
        f"no areas for a site whose footprint is 'none' in {sites_path.name}",
    )
    return areas


def load_register(
    sites_path: str | Path = config.SITE_REGISTER, areas_path: str | Path = config.SITE_AREAS
) -> Register:
    """Read and validate a site register.

    Parameters
    ----------
    sites_path : str or pathlib.Path
        Sites file (:data:`SITE_COLUMNS`).
    areas_path : str or pathlib.Path
        Site x area file (:data:`AREA_COLUMNS`).

    Returns
    -------
    Register

    Raises
    ------
    DataError
        Naming file, row (header = 1) and column, if a file is missing or unreadable
        (a spreadsheet, parquet, archive or non-UTF-8 file, a line with more or fewer
        fields than the header, an empty or repeated column name), a column is missing
        (naming a likely misspelling), a required value is empty, a ``site_id``
        repeats, ``type``, ``footprint`` or ``coverage`` is not an allowed value,
        ``wave`` is not a whole number below 10,000, a date or month is malformed or
        outside 1990 to one year after today, ``start_month`` is not after
        ``announced``, an ACC site has an area footprint, an area row names an unknown
        site or a site with footprint ``none``, or a site x area pair repeats.
    """
    sites_path, areas_path = Path(sites_path), Path(areas_path)
    sites = _validate_sites(_read(sites_path, SITE_COLUMNS), sites_path)
    areas = _validate_areas(_read(areas_path, AREA_COLUMNS), sites, areas_path, sites_path)
    return Register(
        sites=sites.reset_index(drop=True),
        areas=areas.reset_index(drop=True),
        sites_path=sites_path,
        areas_path=areas_path,
    )


def _site_sort_key(site_id: str):
    return (0, int(site_id), "") if site_id.isdigit() else (1, 0, site_id)


def _group(types: set[str]) -> tuple[str, frozenset[str]]:
    """Group of an area from the site types covering it, and the types that define it."""
    pop, care = types & _POPULATION_TYPES, types & _CARE_HOME_TYPES
    if pop and care:
        return schema.BOTH, frozenset(pop | care)
    if pop:
        return schema.POPULATION_BASED, frozenset(pop)
    if care:
        return schema.CARE_HOME, frozenset(care)
    return schema.UEC, frozenset(types & _UEC_TYPES)


def area_assignments(register: Register, known_areas=None) -> pd.DataFrame:
    """One row per area in any site footprint, with its vanguard group.

    Group priority: an area in a PACS or MCP site and in an EHCH site is ``both``;
    PACS/MCP only is ``population_based``; EHCH only is ``care_home``; UEC only is
    ``uec``. A UEC site overlapping a population-based or care-home area does not change
    its group (it shows in ``site_types``). Areas in no footprint are controls and are
    not listed.

    Parameters
    ----------
    register : Register
        From :func:`load_register`.
    known_areas : iterable of str, optional
        Area codes present in the outcome data; a register area not among them raises.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ASSIGNMENT_COLUMNS`, sorted by area: ``start`` is the earliest
        ``start_month`` of the sites that define the group (Timestamp); ``site`` the
        ``;``-joined ids of those sites; ``site_types`` the ``;``-joined types of every
        site covering the area (including ones that do not define the group);
        ``coverage`` is ``part`` if any defining membership is partial.

    Raises
    ------
    DataError
        If ``known_areas`` is given and a register area is not in it (naming the areas
        file, row and column).
    """
    areas = register.areas
    if known_areas is not None:
        _reject(
            areas,
            ~areas["area"].isin(set(known_areas)),
            register.areas_path,
            "area",
            "an area code present in the outcome data",
        )
    m = areas.merge(
        register.sites[["site_id", "type", "start_month"]],
        on="site_id",
        how="left",
        validate="many_to_one",
    )
    rows = []
    for area, g in m.groupby("area", sort=True):
        group, defining = _group(set(g["type"]))
        d = g[g["type"].isin(defining)]
        rows.append(
            {
                "area": area,
                "group": group,
                "start": d["start_month"].min(),
                "site": ";".join(sorted(d["site_id"].unique(), key=_site_sort_key)),
                "site_types": ";".join(t for t in SITE_TYPES if t in set(g["type"])),
                "coverage": "part" if (d["coverage"] == "part").any() else "whole",
            }
        )
    out = pd.DataFrame(rows, columns=list(ASSIGNMENT_COLUMNS))
    out["start"] = pd.to_datetime(out["start"])
    return out.reset_index(drop=True)


def register_paths(data_source: str | None) -> tuple[Path, Path] | None:
    """The register files of a known data source (``None`` for any other source).

    Read when called, so a test or a user who points :data:`vanguard.config` elsewhere
    is followed.
    """
    if data_source == "synthetic":
        return (config.SYNTHETIC_DIR / "sites.csv", config.SYNTHETIC_DIR / "site_areas.csv")
    if data_source == "nhs_mar":
        return (config.SITE_REGISTER, config.SITE_AREAS)
    return None


def site_names(data_source: str, sites_path: str | Path | None = None, *,
               missing_ok: bool = False) -> dict[str, str]:
    """Site id -> site name from the site register of a data source.

    Parameters
    ----------
    data_source : str
        ``synthetic`` (the embedded synthetic register), ``nhs_mar`` (the vanguard
        register) or anything else.
    sites_path : path, optional
        A sites file (``site_id``, ``name``) for other data; without it the sites keep
        their ids.
    missing_ok : bool
        Return an empty mapping (sites keep their ids) when the register file does not
        exist, instead of raising.

    Returns
    -------
    dict

    Raises
    ------
    DataError
        If the register is missing (unless ``missing_ok``) or malformed.
    """
    paths = register_paths(data_source)
    if paths is None and sites_path is not None:
        paths = (Path(sites_path), None)
    if paths is None:
        return {}
    if missing_ok and not all(p.is_file() for p in paths if p is not None):
        return {}
    if paths[1] is None:
        table = pd.read_csv(paths[0], dtype=str, keep_default_na=False)
        missing = [c for c in ("site_id", "name") if c not in table.columns]
        if missing:
            raise DataError(paths[0], "columns site_id and name", column=missing[0],
                            found=list(table.columns))
    else:
        table = load_register(*paths).sites
    return dict(zip(table["site_id"].astype(str), table["name"].astype(str), strict=True))
