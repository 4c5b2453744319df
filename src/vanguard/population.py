"""Population denominators for CCG analysis areas: monthly, all ages, 65+ and 75+.

The Monthly Activity Return carries counts only. To report rates per 1,000 population
per month, in the units of Morciano et al. (2020) Table 1, every analysis area needs a
monthly population. The public tables used are listed, with sha256 and source, in
``data/raw/population_manifest.csv`` (see ``data/raw/README.md``):

* ONS mid-2015 resident population by 2015 CCG, single year of age (``SAPE18DT5``);
* ONS small-area mid-year estimates 2015-2018 summed to 2019 CCGs, all ages;
* NHS BSA GP registered list sizes by practice and age band, quarterly Apr 2013 -
  Mar 2016 (the practice's CCG is its ``PCO Code``);
* ONS names-and-codes lookups (E38 code <-> 3-character ODS code) for 2013-2020.

The rule (:func:`monthly_population`)
-------------------------------------
All populations are **resident** (ONS) populations; GP list sizes only give the *shape*
over time, never the level, because registered lists run a few per cent above resident
populations (list inflation) and mixing the two would put a step into the series.

1. **Level.** The ONS mid-2015 estimate of the area (2015 CCGs folded onto the
   footprint with :mod:`vanguard.mar.crosswalk`), dated July 2015 (the estimate is for
   30 June).
2. **After July 2015.** The level is moved with the ONS 2015-2018 series of the
   area's 2019 unit (the area folded through every later merger, so it is a union of
   2019 CCGs): linear between mid-years (July), flat after July 2018.
3. **Before July 2015.** The level is moved with the area's total GP list size
   (practices summed to the area), linear between quarterly list dates (each file is
   dated at the first month of its quarter).
4. **65+ and 75+.** The ONS mid-2015 share of the area aged 65+ (75+), moved with the
   area's GP list share in the ``65-74`` plus ``75+`` bands (``75+`` band): linear
   between list dates, flat after the last list (January 2016). The count is the share
   times the all-ages population of the month.

The shares and levels therefore equal the ONS mid-2015 figures exactly in July 2015
(the README sanity figures: Airedale, Wharfedale and Craven about 159,000; Wakefield
about 334,000; Rushcliffe about 114,000; England 54.79 million).

Where the files are read from: ``$VANGUARD_POPULATION_DIR``; else the shared copy beside
the project (``../shared/data/population``); else ``data/raw/population`` (filled by
``python -m vanguard.population``), as :func:`vanguard.config.mar_dir` does for MAR.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import config
from vanguard.errors import DataError
from vanguard.io import sha256_file

POPULATION_MANIFEST: Path = config.DATA_RAW / "population_manifest.csv"
"""File, sha256, bytes, source address and licence of every population table used."""
SHARED_POPULATION_DIR: Path = config.ROOT.parent / "shared" / "data" / "population"
"""Where a copy of the population tables sits beside the project on shared machines."""
DOWNLOADED_POPULATION_DIR: Path = config.DATA_RAW / "population"
"""Where ``python -m vanguard.population`` downloads the tables (not committed)."""

MANIFEST_COLUMNS: tuple[str, ...] = (
    "file", "sha256", "bytes", "source_url", "direct", "what_it_is", "licence",
)
"""``direct`` is ``yes`` when ``source_url`` is the file itself (a download address) and
``no`` when the table was extracted from the repository at that address (no single-file
address exists; such files must be copied, not downloaded)."""

MID2015 = "ons_mye_mid2015_ccg_syoa.xls"
CCG19_SERIES = "ccg19_population_2015_2018_from_lsoa.csv"
MID2018 = "ons_mye_mid2018_ccg19_allages.csv"
LOOKUPS: tuple[str, ...] = (
    "lookups/ccg13_names_codes.csv",
    "lookups/ccg17_names_codes.csv",
    "lookups/ccg19_names_codes.csv",
    "lookups/ccg20_names_codes.csv",
)
GP_LIST_DIR = "gp_list_size"

ANCHOR_MONTH = pd.Timestamp("2015-07-01")
"""Month the ONS mid-2015 level applies to (the estimate is for 30 June 2015)."""
MID_YEAR_MONTH = 7
"""ONS mid-year estimates (30 June) are dated at July of their year."""

POPULATION_COLUMNS: tuple[str, ...] = ("population", "population_65plus", "population_75plus")
"""Denominators added to the panel: resident population, all ages, 65+ and 75+."""

MAX_NON_CCG_SHARE = 0.001
"""Largest share of a list-size file's patients allowed under non-CCG PCO codes."""

_SHA = re.compile(r"^[0-9a-f]{64}$")
_GP_FILE = re.compile(r"^Patient_List_Size_(\d{4})_(\d{2})-(\d{2})\.csv$")
_ODS = re.compile(r"^[0-9A-Z]{3}$")


# --- where the files are -----------------------------------------------------------------


def population_dir() -> Path:
    """Folder to read the population tables from.

    Order: ``$VANGUARD_POPULATION_DIR`` if set; else the shared copy beside the project
    if it exists; else ``data/raw/population``.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("VANGUARD_POPULATION_DIR")
    if env:
        return Path(env).resolve()
    if SHARED_POPULATION_DIR.is_dir():
        return SHARED_POPULATION_DIR
    return DOWNLOADED_POPULATION_DIR


def read_population_manifest(path: str | Path = POPULATION_MANIFEST) -> pd.DataFrame:
    """Read and validate the population manifest.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV with columns :data:`MANIFEST_COLUMNS`, one row per file.

    Returns
    -------
    pandas.DataFrame
        ``bytes`` as int.

    Raises
    ------
    DataError
        If the file or a column is missing, a file is listed twice or points outside
        the folder, a checksum is not 64 hex digits, a byte count is not a positive
        integer, or ``direct`` is not ``yes``/``no``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"the population manifest CSV ({', '.join(MANIFEST_COLUMNS)})")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            path, f"columns {list(MANIFEST_COLUMNS)}", row=1, column=missing[0],
            found=list(df.columns),
        )
    if df.empty:
        raise DataError(path, "at least one file listed")
    for i, rec in enumerate(df.itertuples(index=False), start=2):
        rel = Path(rec.file)
        if not rec.file or rel.is_absolute() or ".." in rel.parts:
            raise DataError(path, "a relative file path inside the folder", row=i,
                            column="file", found=rec.file)
        if not _SHA.match(rec.sha256):
            raise DataError(path, "a sha256 of 64 lower-case hex digits", row=i,
                            column="sha256", found=rec.sha256)
        if not rec.bytes.isdigit() or int(rec.bytes) <= 0:
            raise DataError(path, "a positive whole number of bytes", row=i,
                            column="bytes", found=rec.bytes)
        if rec.direct not in ("yes", "no"):
            raise DataError(path, "yes or no", row=i, column="direct", found=rec.direct)
        if not rec.source_url.startswith("https://"):
            raise DataError(path, "an https address", row=i, column="source_url",
                            found=rec.source_url)
    dup = df["file"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise DataError(path, "each file listed once", row=i + 2, column="file",
                        found=df["file"].iloc[i])
    df["bytes"] = df["bytes"].astype("int64")
    return df[list(MANIFEST_COLUMNS)].reset_index(drop=True)


def check_files(
    folder: str | Path | None = None, manifest: str | Path = POPULATION_MANIFEST
) -> Path:
    """Check that every manifest file is in ``folder`` with the listed sha256.

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        Default :func:`population_dir`.
    manifest : str or pathlib.Path

    Returns
    -------
    pathlib.Path
        The folder checked.

    Raises
    ------
    DataError
        Naming the first file that is missing or whose sha256 differs.
    """
    folder = population_dir() if folder is None else Path(folder)
    man = read_population_manifest(manifest)
    for rec in man.itertuples():
        f = folder / rec.file
        if not f.is_file():
            raise DataError(
                f,
                "the population table listed in the manifest (set VANGUARD_POPULATION_DIR "
                "or run python -m vanguard.population)",
                found="no such file",
            )
        digest = sha256_file(f)
        if digest != rec.sha256:
            raise DataError(f, f"sha256 {rec.sha256} (from {manifest})", found=digest)
    return folder


def download_population(
    manifest: str | Path = POPULATION_MANIFEST,
    dest: str | Path = DOWNLOADED_POPULATION_DIR,
    *,
    opener: Callable | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[Path]:
    """Fetch every manifest file with a direct address that is missing or invalid.

    Parameters
    ----------
    manifest : str or pathlib.Path
    dest : str or pathlib.Path
        Destination folder (sub-folders created as needed).
    opener : callable, optional
        Called as ``opener(request, timeout=...)``; default ``urllib.request.urlopen``.
    timeout : float
        Seconds per request.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of pathlib.Path
        Files downloaded now.

    Raises
    ------
    DownloadError
        If a file cannot be fetched, or a missing file has no direct address (it was
        extracted from a repository and must be copied from a folder that holds it).
    DataError
        If the manifest is invalid or a downloaded file's sha256 differs.
    """
    from vanguard.mar.download import DownloadError, fetch_all

    man = read_population_manifest(manifest)
    dest = Path(dest)
    todo = []
    for rec in man.itertuples():
        path = dest / rec.file
        if path.is_file() and path.stat().st_size == rec.bytes and sha256_file(path) == rec.sha256:
            continue
        if rec.direct != "yes":
            raise DownloadError(
                f"{rec.file}: no single-file address ({rec.source_url} is the repository it "
                "was extracted from); copy it from a folder that holds the population "
                "tables and set VANGUARD_POPULATION_DIR"
            )
        todo.append((rec.source_url, path, rec.sha256, rec.bytes))
    return fetch_all(todo, opener=opener, timeout=timeout, progress=progress,
                     desc="population tables")


# --- readers -----------------------------------------------------------------------------


def _num(value, file, row: int, column: str) -> float:
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        raise DataError(file, "a number", row=row, column=column, found=value) from None


def read_lookups(folder: str | Path | None = None) -> dict[str, str]:
    """E38 code -> ODS code, from the 2013, 2017, 2019 and 2020 names-and-codes lookups.

    An E38 code identifies one CCG boundary, so it maps to one ODS code in every lookup;
    ODS codes were reused for new E38 codes after boundary changes, so the map is keyed
    on E38.

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        Default :func:`population_dir`.

    Returns
    -------
    dict
        E38 code -> ODS code, over every boundary in the four lookups.

    Raises
    ------
    DataError
        If a lookup is missing, has no E38/ODS columns, or two lookups give one E38
        code different ODS codes.
    """
    folder = population_dir() if folder is None else Path(folder)
    out: dict[str, str] = {}
    for rel in LOOKUPS:
        f = folder / rel
        if not f.is_file():
            raise DataError(f, "a CCG names-and-codes lookup", found="no such file")
        # The 2013 lookup is cp1252 text (the README says so); the others read as cp1252 too.
        df = pd.read_csv(f, dtype=str, encoding="cp1252", keep_default_na=False)
        cd = [c for c in df.columns if re.fullmatch(r"CCG\d\dCD", c)]
        cdh = [c for c in df.columns if re.fullmatch(r"CCG\d\dCDH", c)]
        if not cd or not cdh:
            raise DataError(f, "columns CCGyyCD and CCGyyCDH", row=1, found=list(df.columns))
        for i, (e38, ods) in enumerate(zip(df[cd[0]], df[cdh[0]], strict=True), start=2):
            e38, ods = e38.strip(), ods.strip()
            if not re.fullmatch(r"E38\d{6}", e38) or not _ODS.match(ods):
                raise DataError(f, "an E38 code and a 3-character ODS code", row=i,
                                column=cd[0], found=f"{e38} {ods}")
            if out.get(e38, ods) != ods:
                raise DataError(f, f"{e38} -> {out[e38]} as in the other lookups", row=i,
                                column=cdh[0], found=ods)
            out[e38] = ods
    return out


def read_mid2015(folder: str | Path | None = None) -> pd.DataFrame:
    """ONS mid-2015 resident population by 2015 CCG (persons): all ages, 65+, 75+.

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        Default :func:`population_dir`.

    Returns
    -------
    pandas.DataFrame
        ``ccg`` (ODS code), ``e38``, ``population``, ``population_65plus``,
        ``population_75plus``; plus ``attrs["england"]`` (the England row, all ages).

    Raises
    ------
    DataError
        If the file, the ``Mid-2015 Persons`` sheet or its age header is missing, a
        CCG's single years do not add up to its all-ages figure, an E38 code is not in
        the lookups, or the CCGs do not add up to England.
    """
    import xlrd

    folder = population_dir() if folder is None else Path(folder)
    f = folder / MID2015
    if not f.is_file():
        raise DataError(f, "the ONS mid-2015 CCG single-year-of-age table", found="no such file")
    book = xlrd.open_workbook(f, on_demand=True)
    try:
        if "Mid-2015 Persons" not in book.sheet_names():
            raise DataError(f, "a sheet named 'Mid-2015 Persons'", found=book.sheet_names())
        sh = book.sheet_by_name("Mid-2015 Persons")
        header = None
        for r in range(min(sh.nrows, 20)):
            row = sh.row_values(r)
            if str(row[0]).strip() == "Area Codes" and "All Ages" in [str(c).strip() for c in row]:
                header = r
                break
        if header is None:
            raise DataError(f, "a header row 'Area Codes ... All Ages 0 1 ... 90'",
                            column="Mid-2015 Persons")
        head = sh.row_values(header)
        c_all = [str(c).strip() for c in head].index("All Ages")
        ages = {int(v): c for c, v in enumerate(head) if isinstance(v, float) and c > c_all}
        if sorted(ages) != list(range(91)):
            raise DataError(f, "single years of age 0 to 90 (90 = 90 and over)",
                            row=header + 1, found=sorted(ages)[:3])
        lookup = read_lookups(folder)
        rows, england = [], None
        for r in range(header + 1, sh.nrows):
            vals = sh.row_values(r)
            code = str(vals[0]).strip()
            if code == "E92000001":
                england = float(vals[c_all])
            if not code.startswith("E38"):
                continue
            total = float(vals[c_all])
            by_age = np.array([float(vals[ages[a]]) for a in range(91)])
            if abs(by_age.sum() - total) > 0.5:
                raise DataError(f, f"single years adding to All Ages ({total:,.0f})",
                                row=r + 1, column="All Ages", found=f"{by_age.sum():,.0f}")
            if code not in lookup:
                raise DataError(f, "an E38 code listed in the CCG lookups", row=r + 1,
                                column="Area Codes", found=code)
            rows.append({"ccg": lookup[code], "e38": code, "population": total,
                         "population_65plus": by_age[65:].sum(),
                         "population_75plus": by_age[75:].sum()})
    finally:
        book.release_resources()
    out = pd.DataFrame(rows)
    if england is None or abs(out["population"].sum() - england) > 0.5:
        raise DataError(f, f"CCGs adding up to the England row ({england})",
                        found=f"{out['population'].sum():,.0f}")
    if out["ccg"].duplicated().any():
        dup = out.loc[out["ccg"].duplicated(), "ccg"].iloc[0]
        raise DataError(f, "each ODS code once", column="Area Codes", found=dup)
    out.attrs["england"] = england
    return out


def read_ccg19_series(folder: str | Path | None = None) -> pd.DataFrame:
    """ONS mid-year resident population 2015-2018 on 2019 CCGs, all ages.

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        Default :func:`population_dir`.

    Returns
    -------
    pandas.DataFrame
        ``ccg`` (2019 ODS code), ``year``, ``population``.

    Raises
    ------
    DataError
        If the file or a column is missing, a code is not in the lookups, a count does
        not parse, a CCG lacks a year, or mid-2018 disagrees with the ONS mid-2018 table
        by more than 0.5 %.
    """
    folder = population_dir() if folder is None else Path(folder)
    f = folder / CCG19_SERIES
    if not f.is_file():
        raise DataError(f, "the 2015-2018 CCG population series", found="no such file")
    df = pd.read_csv(f, dtype=str, keep_default_na=False)
    need = ("ccg19cd", "year", "total_pop")
    for c in need:
        if c not in df.columns:
            raise DataError(f, f"columns {list(need)}", row=1, column=c, found=list(df.columns))
    lookup = read_lookups(folder)
    rows = []
    for i, r in enumerate(df.itertuples(index=False), start=2):
        if r.ccg19cd not in lookup:
            raise DataError(f, "an E38 code listed in the CCG lookups", row=i,
                            column="ccg19cd", found=r.ccg19cd)
        rows.append({"ccg": lookup[r.ccg19cd], "year": int(_num(r.year, f, i, "year")),
                     "population": _num(r.total_pop, f, i, "total_pop")})
    out = pd.DataFrame(rows)
    years = out.groupby("ccg")["year"].apply(lambda s: sorted(s)).map(tuple)
    full = tuple(range(out["year"].min(), out["year"].max() + 1))
    bad = years[years != full]
    if len(bad):
        raise DataError(f, f"every CCG in every year {full}", column="year",
                        found=f"{bad.index[0]}: {bad.iloc[0]}")
    # Cross-check against the ONS mid-2018 table, so a mislabelled year cannot pass.
    g = folder / MID2018
    if g.is_file():
        m18 = pd.read_csv(g, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        m18.columns = [c.strip() for c in m18.columns]
        ref = {lookup.get(c.strip(), c.strip()): _num(v, g, i, "All Ages") for i, (c, v) in
               enumerate(zip(m18["Area Codes"], m18["All Ages"], strict=True), start=2)
               if c.strip().startswith("E38")}
        y18 = out[out["year"] == 2018].set_index("ccg")["population"]
        for ccg, v in y18.items():
            if ccg in ref and abs(v / ref[ccg] - 1) > 0.005:
                raise DataError(f, f"mid-2018 {ccg} within 0.5 % of {MID2018} ({ref[ccg]:,.0f})",
                                column="total_pop", found=f"{v:,.0f}")
    return out


def gp_list_files(folder: str | Path | None = None) -> list[tuple[pd.Timestamp, Path]]:
    """The quarterly list-size files, each dated at the first month of its quarter.

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        Default :func:`population_dir`.

    Returns
    -------
    list of (pandas.Timestamp, pathlib.Path)
        Sorted by date.

    Raises
    ------
    DataError
        If a file name does not follow ``Patient_List_Size_YYYY_MM-MM.csv`` or there
        are no files.
    """
    folder = population_dir() if folder is None else Path(folder)
    out = []
    for f in sorted((folder / GP_LIST_DIR).glob("Patient_List_Size_*.csv")):
        m = _GP_FILE.match(f.name)
        if not m:
            raise DataError(f, "a name like Patient_List_Size_2013_04-06.csv", found=f.name)
        out.append((pd.Timestamp(f"{m.group(1)}-{m.group(2)}-01"), f))
    if not out:
        raise DataError(folder / GP_LIST_DIR, "GP list-size files", found="none")
    return out


def read_gp_lists(folder: str | Path | None = None) -> pd.DataFrame:
    """GP registered patients by CCG and list date: all ages, 65+ and 75+.

    Practices are summed to their ``PCO Code`` (ODS CCG code + ``00``). PCO codes that
    are not CCG codes (closed PCTs with 0 patients; a few practices under councils,
    trusts or area teams) are left out, up to :data:`MAX_NON_CCG_SHARE` of the file.

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        Default :func:`population_dir`.

    Returns
    -------
    pandas.DataFrame
        ``month`` (list date), ``ccg``, ``list_total``, ``list_65plus``, ``list_75plus``.

    Raises
    ------
    DataError
        If a band column is missing, a count does not parse, or more than
        :data:`MAX_NON_CCG_SHARE` of the patients are under non-CCG PCO codes.
    """
    folder = population_dir() if folder is None else Path(folder)
    bands = ["0-4", "5-14", "15-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+"]
    cols = [f"{s} {b}" for b in bands for s in ("Male", "Female")]
    ccgs = set(read_lookups(folder).values())
    frames = []
    for month, f in gp_list_files(folder):
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
        df.columns = [c.strip() for c in df.columns]
        for c in ("PCO Code", *cols):
            if c not in df.columns:
                raise DataError(f, f"a column {c!r}", row=1, column=c, found=list(df.columns))
        num = df[cols].apply(lambda s: pd.to_numeric(s.str.replace(",", ""), errors="coerce"))
        bad = num.isna().any(axis=1)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            col = num.columns[num.iloc[i].isna()][0]
            raise DataError(f, "a whole number of patients", row=i + 2, column=col,
                            found=df[col].iloc[i])
        g = pd.DataFrame({
            "pco": df["PCO Code"].str.strip(),
            "list_total": num.sum(axis=1),
            "list_65plus": num[[c for c in cols if "65-74" in c or "75+" in c]].sum(axis=1),
            "list_75plus": num[[c for c in cols if "75+" in c]].sum(axis=1),
        }).groupby("pco", as_index=False).sum()
        g = g[g["list_total"] > 0]
        ccg = g["pco"].str[:3]
        other = ~(g["pco"].str.fullmatch(r"[0-9A-Z]{3}00") & ccg.isin(ccgs))
        # A few practices sit under councils, trusts or area teams (about 3,000 patients
        # of 56 million): too few to matter, so they are left out; more would mean the
        # file is not what the reader expects.
        if g.loc[other, "list_total"].sum() > MAX_NON_CCG_SHARE * g["list_total"].sum():
            raise DataError(
                f,
                f"at most {MAX_NON_CCG_SHARE:.1%} of patients under PCO codes that are not "
                "CCG codes + 00",
                column="PCO Code",
                found=f"{g.loc[other, 'list_total'].sum():,.0f} patients, e.g. "
                f"{g.loc[other, 'pco'].iloc[0]}",
            )
        frames.append(g[~other].assign(month=month, ccg=ccg[~other])[
            ["month", "ccg", "list_total", "list_65plus", "list_75plus"]])
    return pd.concat(frames, ignore_index=True)


# --- the monthly denominators ------------------------------------------------------------


def _interp(points: pd.DataFrame, key: str, value: str, months: pd.DatetimeIndex) -> pd.DataFrame:
    """Linear in months between dated points, flat beyond the first and last point."""
    out = []
    x = months.year * 12 + months.month
    for k, g in points.groupby(key, sort=True):
        g = g.sort_values("month")
        gx = g["month"].dt.year * 12 + g["month"].dt.month
        out.append(pd.DataFrame({key: k, "month": months,
                                 value: np.interp(x, gx.to_numpy(), g[value].to_numpy())}))
    return pd.concat(out, ignore_index=True)


def monthly_population(
    months: Sequence | pd.DatetimeIndex,
    footprint,
    *,
    folder: str | Path | None = None,
    crosswalk: pd.DataFrame | None = None,
    verify: bool = True,
) -> pd.DataFrame:
    """Monthly resident population of every analysis area on ``footprint`` (the rule above).

    Parameters
    ----------
    months : sequence of month-start Timestamps
        Months wanted (any within April 2013 - December 2019).
    footprint : str or Timestamp
        CCG footprint of the areas (as :func:`vanguard.mar.panel.build_panel`); April
        2015 or later (the ONS level is on 2015 CCGs).
    folder : str or pathlib.Path, optional
        Default :func:`population_dir`.
    crosswalk : pandas.DataFrame, optional
        From :func:`vanguard.mar.crosswalk.read_crosswalk`.
    verify : bool
        Check every file's sha256 against the manifest first.

    Returns
    -------
    pandas.DataFrame
        ``area``, ``month``, :data:`POPULATION_COLUMNS` (floats); one row per area x
        month; ``attrs["rule"]`` states the rule in one line.

    Raises
    ------
    DataError
        From the readers or :func:`check_files`, or if an area lacks GP lists or a 2019
        unit in the ONS series.
    ValueError
        If ``footprint`` precedes April 2015.
    """
    from vanguard.mar.crosswalk import code_map, read_crosswalk

    folder = population_dir() if folder is None else Path(folder)
    if verify:
        check_files(folder)
    cw = read_crosswalk() if crosswalk is None else crosswalk
    foot = pd.Timestamp(footprint).to_period("M").to_timestamp()
    if foot < pd.Timestamp("2015-04-01"):
        raise ValueError(
            f"footprint {foot:%Y-%m}: expected April 2015 or later (the ONS CCG level is on "
            "2015 CCGs, which cannot be split back into their predecessors)"
        )
    months = pd.DatetimeIndex(pd.to_datetime(list(months))).to_period("M").to_timestamp()
    to_foot = code_map(foot, cw)
    to_last = code_map(cw["effective"].max(), cw)

    def fold(codes: pd.Series, mapping) -> pd.Series:
        return codes.map(lambda c: mapping.get(c, c))

    # 1. level: ONS mid-2015 folded onto the footprint
    m15 = read_mid2015(folder)
    m15["area"] = fold(m15["ccg"], to_foot)
    level = m15.groupby("area")[list(POPULATION_COLUMNS)].sum()

    # 2. after July 2015: ONS 2015-2018 on the area's 2019 unit
    s19 = read_ccg19_series(folder)
    s19["unit"] = fold(s19["ccg"], to_last)
    s19 = s19.groupby(["unit", "year"], as_index=False)["population"].sum()
    s19["month"] = pd.to_datetime(s19["year"].astype(str) + f"-{MID_YEAR_MONTH:02d}-01")
    ons = _interp(s19, "unit", "population", months.union([ANCHOR_MONTH]))
    ons = ons.pivot(index="month", columns="unit", values="population")

    # 3. before July 2015 (and the age shares): GP lists folded onto the footprint
    gp = read_gp_lists(folder)
    gp["area"] = fold(gp["ccg"], to_foot)
    gp = gp.groupby(["month", "area"], as_index=False)[
        ["list_total", "list_65plus", "list_75plus"]].sum()
    gp["share65"] = gp["list_65plus"] / gp["list_total"]
    gp["share75"] = gp["list_75plus"] / gp["list_total"]
    want = months.union([ANCHOR_MONTH])
    lists = {v: _interp(gp, "area", v, want).pivot(index="month", columns="area", values=v)
             for v in ("list_total", "share65", "share75")}

    rows = []
    for area, lv in level.iterrows():
        unit = to_last.get(area, area)
        if unit not in ons.columns:
            raise DataError(folder / CCG19_SERIES, f"a 2019 CCG unit {unit} for area {area}",
                            column="ccg19cd")
        if area not in lists["list_total"].columns:
            raise DataError(folder / GP_LIST_DIR, f"GP practices in area {area}",
                            column="PCO Code")
        ons_idx = ons[unit] / ons.at[ANCHOR_MONTH, unit]
        gp_idx = lists["list_total"][area] / lists["list_total"].at[ANCHOR_MONTH, area]
        idx = np.where(months >= ANCHOR_MONTH, ons_idx.reindex(months), gp_idx.reindex(months))
        total = lv["population"] * idx
        # ONS share in July 2015, moved with the GP list share relative to July 2015.
        moved = {
            band: (lists[share][area].reindex(months) / lists[share].at[ANCHOR_MONTH, area])
            .to_numpy()
            * lv[f"population_{band}"]
            / lv["population"]
            for band, share in (("65plus", "share65"), ("75plus", "share75"))
        }
        rows.append(pd.DataFrame({
            "area": area, "month": months, "population": total,
            "population_65plus": total * moved["65plus"],
            "population_75plus": total * moved["75plus"],
        }))
    out = pd.concat(rows, ignore_index=True).sort_values(["area", "month"], ignore_index=True)
    out.attrs["rule"] = RULE
    return out


RULE = (
    "ONS resident population: mid-2015 level (July 2015) of the area; after July 2015 "
    "moved with the ONS 2015-2018 estimates of its 2019 CCG unit, linear between "
    "mid-years, flat after July 2018; before July 2015 moved with its GP registered list "
    "size, linear between quarters; 65+ and 75+ = ONS mid-2015 share moved with the GP "
    "list share (flat after January 2016)"
)
"""One-line statement of the denominator rule, for reports and ``attrs``."""


def main(argv: list[str] | None = None) -> int:
    """Command line: download the population tables; exit status 0 on success.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    from vanguard.mar.download import DownloadError

    ap = argparse.ArgumentParser(prog="python -m vanguard.population",
                                 description="Download the population tables in the manifest.")
    ap.add_argument("--dest", type=Path, default=DOWNLOADED_POPULATION_DIR)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        got = download_population(dest=args.dest, progress=not args.quiet)
    except (DownloadError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(got)} file(s) downloaded into {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
