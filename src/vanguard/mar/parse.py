"""Read the NHS Monthly Activity Return (MAR) workbooks into one tidy long table.

Every file from April 2012 to December 2019 is read exactly as published. The layouts
differ in small ways that the reader absorbs:

- the grouping columns are ``SHA`` (2012-13), ``Area Team`` (2013-15) or ``Region``
  (2015 on); they are not needed and are ignored;
- the header row is found by its ``Org Code`` and ``Org Name`` cells, not by position;
- some 2017-18 files carry a wrong financial-year cell (``2017-22``, ``2017-30``, ...),
  and the period cell has typos (``Janaury``), so the month always comes from the
  manifest; the ``Period:`` line of the title block is cross-checked against it;
- notes below the table (``Note: ...``) are recognised and skipped.

The result has one row per month x organisation x measure: ``month``, ``org_code``,
``org_name``, ``org_type`` (``PCT``, ``CCG``, ``NHS England``, ``England``), ``measure``,
``value`` (float64: whole counts apart from two decimals published for November 2012).
The England total row has the code ``ENG``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xlrd

from vanguard import config
from vanguard.errors import DataError
from vanguard.io import atomic_write, sha256_file
from vanguard.mar.manifest import read_manifest

SHEET = "Commissioner"
"""Worksheet holding the commissioner-level table."""

MEASURES: dict[str, str] = {
    "elective g&a ordinary admissions (ffces)": "elective_ordinary",
    "elective g&a daycase admissions (ffces)": "elective_daycase",
    "elective g&a total admissions (ffces)": "elective_total",
    "elective g&a planned ordinary admissions (ffces)": "planned_ordinary",
    "elective g&a planned daycase admissions (ffces)": "planned_daycase",
    "elective g&a planned total admissions (ffces)": "planned_total",
    "elective g&a admissions (ffces) -nhs treatment centres (tcs)": "elective_treatment_centres",
    "total non-elective g&a admissions (ffces)": "non_elective_admissions",
    "gp referrals made (all specialties)": "gp_referrals_made_all",
    "gp referrals seen (all specialties)": "gp_referrals_seen_all",
    "gp referrals made (g&a)": "gp_referrals_made_ga",
    "gp referrals seen (g&a)": "gp_referrals_seen_ga",
    "other referrals made (g&a)": "other_referrals_made_ga",
    "all 1st outpatient attendances (g&a)": "first_outpatient_attendances",
}
"""Column heading as published (lower case, single spaces) -> measure name.

``non_elective_admissions`` is total non-elective general & acute FFCEs."""

MEASURE_LABELS: dict[str, str] = {
    "elective_ordinary": "Elective ordinary admissions (FFCEs)",
    "elective_daycase": "Elective day-case admissions (FFCEs)",
    "elective_total": "Elective admissions, total (FFCEs)",
    "planned_ordinary": "Planned ordinary admissions (FFCEs)",
    "planned_daycase": "Planned day-case admissions (FFCEs)",
    "planned_total": "Planned admissions, total (FFCEs)",
    "elective_treatment_centres": "Elective admissions at NHS treatment centres (FFCEs)",
    "non_elective_admissions": "Non-elective admissions, total G&A (FFCEs)",
    "gp_referrals_made_all": "GP referrals made, all specialties",
    "gp_referrals_seen_all": "GP referrals seen, all specialties",
    "gp_referrals_made_ga": "GP referrals made, general & acute",
    "gp_referrals_seen_ga": "GP referrals seen, general & acute",
    "other_referrals_made_ga": "Other referrals made, general & acute",
    "first_outpatient_attendances": "First outpatient attendances, general & acute",
}

ORG_TYPES: tuple[str, ...] = ("England", "NHS England", "CCG", "PCT")
ENGLAND_CODE = "ENG"
"""Code given to the England total row (the files leave it blank)."""

TIDY_COLUMNS: tuple[str, ...] = ("month", "org_code", "org_name", "org_type", "measure", "value")

PARSER_VERSION = "2"
"""Part of the cache key: bump when the parser's output changes for the same inputs."""

_HEADER_SEARCH_ROWS = 40
_NATIONAL_CODES = {"X24", "YDD82"}  # NHS England; the 2012-13 National Commissioning Group


def _norm(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().lower()


def _org_type(code: str, name: str, file: Path, row: int) -> str:
    upper = name.upper()
    if code in _NATIONAL_CODES or upper in ("NHS ENGLAND", "NATIONAL COMMISSIONING GROUP"):
        return "NHS England"
    if upper.endswith("CCG"):
        return "CCG"
    if upper.endswith("PCT") or "CARE TRUST" in upper:
        return "PCT"
    raise DataError(
        file,
        "an organisation that is a CCG, PCT, NHS England or England",
        row=row,
        column="Org Name",
        found=name,
    )


def _check_period(sheet, month: pd.Timestamp, file: Path) -> None:
    """Cross-check the title block's ``Period:`` line against the manifest month."""
    for r in range(min(sheet.nrows, _HEADER_SEARCH_ROWS)):
        cells = [str(v).strip() for v in sheet.row_values(r)]
        for c, cell in enumerate(cells[:-1]):
            if cell.lower() == "period:":
                found = cells[c + 1]
                stamp = pd.to_datetime(found, format="%B %Y", errors="coerce")
                if pd.isna(stamp) or stamp != month:
                    raise DataError(
                        file,
                        f"'Period:' {month:%B %Y} (the month in the manifest)",
                        row=r + 1,
                        found=found,
                    )
                return


def _open_sheet(path: Path):
    if not path.is_file():
        raise DataError(path, "an MAR .xls workbook (file not found)")
    if path.stat().st_size == 0:
        raise DataError(path, "an MAR .xls workbook", found="an empty file")
    try:
        book = xlrd.open_workbook(path, on_demand=True)
    except Exception as exc:  # xlrd raises several unrelated types for damaged files
        raise DataError(
            path, "a readable Excel 97-2003 (.xls) workbook", found=f"{type(exc).__name__}: {exc}"
        ) from exc
    if SHEET not in book.sheet_names():
        raise DataError(path, f"a worksheet named {SHEET!r}", found=book.sheet_names())
    try:
        return book.sheet_by_name(SHEET)
    except Exception as exc:
        raise DataError(
            path, f"a readable worksheet {SHEET!r}", found=f"{type(exc).__name__}: {exc}"
        ) from exc


def parse_file(path: str | Path, month) -> pd.DataFrame:
    """Parse one MAR workbook.

    Parameters
    ----------
    path : str or pathlib.Path
        An MAR ``.xls`` file as published.
    month : str or Timestamp
        The month the file reports (from the manifest).

    Returns
    -------
    pandas.DataFrame
        Tidy rows in :data:`TIDY_COLUMNS`.

    Raises
    ------
    DataError
        If the file is missing, empty, truncated or not an ``.xls`` workbook; has no
        ``Commissioner`` sheet; has no header row; lacks a measure column or has an
        unknown one; its ``Period:`` line disagrees with ``month``; a count is missing,
        negative or fractional; an organisation is of an unknown kind; or the England
        row is absent or repeated.
    """
    path = Path(path)
    month = pd.Timestamp(month)
    sheet = _open_sheet(path)
    header_row = None
    for r in range(min(sheet.nrows, _HEADER_SEARCH_ROWS)):
        cells = [_norm(v) for v in sheet.row_values(r)]
        if "org code" in cells and "org name" in cells:
            header_row, header = r, cells
            break
    if header_row is None:
        raise DataError(
            path,
            f"a header row with 'Org Code' and 'Org Name' in the first "
            f"{_HEADER_SEARCH_ROWS} rows of sheet {SHEET!r}",
        )
    _check_period(sheet, month, path)
    code_col, name_col = header.index("org code"), header.index("org name")
    measure_cols: dict[str, int] = {}
    for c, cell in enumerate(header):
        if (
            c in (code_col, name_col)
            or not cell
            or cell == "year"
            or cell == "period"
            or cell.endswith(" code")
            or cell.endswith(" name")
        ):
            continue
        if cell not in MEASURES:
            raise DataError(
                path,
                f"a known measure heading ({', '.join(MEASURES)})",
                row=header_row + 1,
                column=cell,
            )
        if MEASURES[cell] in measure_cols:
            raise DataError(path, "each measure heading once", row=header_row + 1, column=cell)
        measure_cols[MEASURES[cell]] = c
    missing = [h for h, m in MEASURES.items() if m not in measure_cols]
    if missing:
        raise DataError(
            path, f"a column headed {missing[0]!r} on row {header_row + 1}", column=missing[0]
        )

    codes, names, types, values = [], [], [], []
    cols = list(measure_cols.values())
    for r in range(header_row + 1, sheet.nrows):
        cells = sheet.row_values(r)
        ctypes = sheet.row_types(r)
        code = str(cells[code_col]).strip() if code_col < len(cells) else ""
        name = str(cells[name_col]).strip() if name_col < len(cells) else ""
        raw = [cells[c] if c < len(cells) else "" for c in cols]
        if not code and not name:
            # Blank separators and the notes under the table carry no counts.
            if any(v != "" for v in raw):
                raise DataError(
                    path,
                    "an Org Code or Org Name on every row with counts",
                    row=r + 1,
                    column="Org Code",
                )
            continue
        if not code:
            if name.lower() != "england":
                raise DataError(
                    path,
                    "an Org Code (only the England row has none)",
                    row=r + 1,
                    column="Org Code",
                    found=name,
                )
            code, kind = ENGLAND_CODE, "England"
        else:
            kind = _org_type(code, name, path, r + 1)
        row_values = []
        for (m, c), v in zip(measure_cols.items(), raw, strict=True):
            heading = next(h for h, k in MEASURES.items() if k == m)
            # Only numeric cells count: an Excel error (#N/A, #REF!) reads as a small
            # integer code and a boolean as 0/1, so the cell type is checked, not the value.
            ctype = ctypes[c] if c < len(ctypes) else xlrd.XL_CELL_EMPTY
            if ctype == xlrd.XL_CELL_ERROR:
                found = xlrd.error_text_from_code.get(v, v)
            else:
                found = v
            if ctype != xlrd.XL_CELL_NUMBER or not np.isfinite(v) or v < 0:
                raise DataError(
                    path, "a non-negative count", row=r + 1, column=heading, found=found
                )
            if v != int(v):
                # Published as such (Nov 2012, Suffolk PCT and England); kept, not rounded,
                # so that the commissioner rows still sum to the England row.
                warnings.warn(
                    f"{path.name}: row {r + 1}, column {heading!r}: fractional "
                    f"count {v} kept as published",
                    stacklevel=2,
                )
            row_values.append(float(v))
        codes.append(code)
        names.append(name)
        types.append(kind)
        values.append(row_values)
    if types.count("England") != 1:
        raise DataError(path, "exactly one England total row", found=types.count("England"))
    wide = pd.DataFrame(values, columns=list(measure_cols))
    wide.insert(0, "org_type", types)
    wide.insert(0, "org_name", names)
    wide.insert(0, "org_code", codes)
    tidy = wide.melt(
        id_vars=["org_code", "org_name", "org_type"], var_name="measure", value_name="value"
    )
    tidy.insert(0, "month", month)
    return tidy[list(TIDY_COLUMNS)]


def check_table(table: pd.DataFrame, source: str | Path = "MAR table") -> pd.DataFrame:
    """Self-checks on the tidy MAR table; fail loudly.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy MAR rows (:data:`TIDY_COLUMNS`).
    source : str or pathlib.Path
        Named in error messages.

    Returns
    -------
    pandas.DataFrame
        ``table``, unchanged.

    Raises
    ------
    DataError
        If a column is missing; an organisation-month-measure repeats; the months are
        not contiguous; a count is negative or missing; a month has no England row; or
        in some month the commissioner rows do not sum to the England row for
        ``non_elective_admissions``.
    """
    missing = [c for c in TIDY_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(source, f"columns {list(TIDY_COLUMNS)}", column=missing[0])
    if table.empty:
        raise DataError(source, "at least one month of MAR data")
    key = ["month", "org_code", "measure"]
    dup = table.duplicated(key)
    if dup.any():
        first = table.loc[dup, key].iloc[0]
        raise DataError(
            source,
            "one row per organisation, month and measure",
            found=f"{first['org_code']} {first['month']:%Y-%m} {first['measure']} repeated",
        )
    if table["value"].isna().any() or (table["value"] < 0).any():
        bad = table.loc[table["value"].isna() | (table["value"] < 0)].iloc[0]
        raise DataError(
            source,
            "non-negative counts",
            column="value",
            found=f"{bad['value']} for {bad['org_code']} {bad['month']:%Y-%m} {bad['measure']}",
        )
    months = pd.DatetimeIndex(sorted(table["month"].unique()))
    expected = pd.date_range(months[0], months[-1], freq="MS")
    if len(expected) != len(months):
        gap = sorted(set(expected) - set(months))
        raise DataError(
            source,
            "contiguous months",
            column="month",
            found=f"no data for {', '.join(m.strftime('%Y-%m') for m in gap[:5])}",
        )
    em = table[table["measure"] == "non_elective_admissions"]
    england = em[em["org_type"] == "England"].groupby("month")["value"].sum()
    parts = em[em["org_type"] != "England"].groupby("month")["value"].sum()
    missing_eng = months.difference(england.index)
    if len(missing_eng):
        raise DataError(
            source, "an England row every month", found=f"none in {missing_eng[0]:%Y-%m}"
        )
    eng = england.reindex(months)
    diff = (parts.reindex(months, fill_value=0) - eng).abs()
    # Counts are whole numbers bar a few published decimals: allow float round-off only.
    bad = diff > 1e-6 * (1 + eng.abs())
    if bad.any():
        m = diff.index[bad.to_numpy()][0]
        raise DataError(
            source,
            "commissioner rows summing to the England row for total non-elective admissions",
            column="non_elective_admissions",
            found=f"{m:%Y-%m}: commissioners {parts.get(m, 0):g} vs England {england[m]:g}",
        )
    return table


def parse_all(
    mar_dir: str | Path | None = None,
    manifest: str | Path = config.MAR_MANIFEST,
    verify: bool = True,
) -> pd.DataFrame:
    """Parse every file the manifest lists and run :func:`check_table`.

    Parameters
    ----------
    mar_dir : str or pathlib.Path, optional
        Folder holding the files; default :func:`vanguard.config.mar_dir`.
    manifest : str or pathlib.Path
        The manifest CSV (month, file, sha256, bytes, source_url).
    verify : bool
        Check every file's sha256 against the manifest first.

    Returns
    -------
    pandas.DataFrame
        The tidy MAR table, sorted by month, organisation code and measure.

    Raises
    ------
    DataError
        If a file is missing or its checksum differs from the manifest, or from
        :func:`parse_file` and :func:`check_table`.
    """
    mar_dir = Path(mar_dir) if mar_dir is not None else config.mar_dir()
    man = read_manifest(manifest)
    if verify:
        _input_digests(mar_dir, man, manifest)
    frames = [parse_file(mar_dir / rec.file, rec.month) for rec in man.itertuples()]
    table = pd.concat(frames, ignore_index=True)
    table = table.sort_values(["month", "org_code", "measure"], kind="stable", ignore_index=True)
    table["value"] = table["value"].astype("float64")
    for col in ("org_code", "org_name", "org_type", "measure"):
        table[col] = table[col].astype("string")
    return check_table(table, source=mar_dir)


def _input_digests(mar_dir: Path, man: pd.DataFrame, manifest: str | Path) -> list[str]:
    digests = []
    for i, rec in enumerate(man.itertuples(), start=2):
        path = mar_dir / rec.file
        if not path.is_file():
            raise DataError(
                path,
                f"the MAR file for {rec.month:%Y-%m} listed in {manifest} "
                "(run `make data-nhs` or set VANGUARD_MAR_DIR)",
                row=i,
            )
        digest = sha256_file(path)
        if digest != rec.sha256:
            raise DataError(path, f"sha256 {rec.sha256} (from {manifest}, row {i})", found=digest)
        digests.append(digest)
    return digests


def cache_key(mar_dir: Path, manifest: str | Path = config.MAR_MANIFEST) -> str:
    """Key of a parsed table: parser version plus every input file's verified sha256.

    Raises
    ------
    DataError
        If a file is missing or differs from the manifest.
    """
    import hashlib

    man = read_manifest(manifest)
    digests = _input_digests(mar_dir, man, manifest)
    h = hashlib.sha256(PARSER_VERSION.encode())
    for rec, d in zip(man.itertuples(), digests, strict=True):
        h.update(f"{rec.month:%Y-%m} {rec.file} {d}\n".encode())
    return h.hexdigest()


_KEY_META = b"vanguard_mar_inputs"


def load_mar(
    mar_dir: str | Path | None = None,
    *,
    manifest: str | Path = config.MAR_MANIFEST,
    cache: str | Path | None = config.DATA_PROCESSED / "nhs_mar.parquet",
    refresh: bool = False,
) -> pd.DataFrame:
    """The tidy MAR table, from the parquet cache when its inputs are unchanged.

    The cache ``data/processed/nhs_mar.parquet`` stores, in its metadata, a key made of
    every input file's sha256 and the parser version; a different key re-parses and
    rewrites the cache atomically.

    Parameters
    ----------
    mar_dir : str or pathlib.Path, optional
        Folder of MAR files; default :func:`vanguard.config.mar_dir`.
    manifest : str or pathlib.Path
        The manifest CSV.
    cache : str or pathlib.Path or None
        Parquet cache; ``None`` parses without caching.
    refresh : bool
        Re-parse even when the cache is current.

    Returns
    -------
    pandas.DataFrame
        Tidy rows (:data:`TIDY_COLUMNS`).

    Raises
    ------
    DataError
        As :func:`parse_all`.
    """
    mar_dir = Path(mar_dir) if mar_dir is not None else config.mar_dir()
    if cache is None:
        return parse_all(mar_dir, manifest, verify=True)
    cache = Path(cache)
    key = cache_key(mar_dir, manifest).encode()
    if cache.is_file() and not refresh:
        try:
            meta = pq.read_schema(cache).metadata or {}
        except Exception:  # an unreadable cache is rebuilt, never trusted
            meta = {}
        if meta.get(_KEY_META) == key:
            table = pd.read_parquet(cache)
            return check_table(table, source=cache)
        if meta:
            warnings.warn(f"{cache}: inputs changed since it was written; re-parsing", stacklevel=2)
    table = parse_all(mar_dir, manifest, verify=False)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), _KEY_META: key})
    atomic_write(cache, lambda p: pq.write_table(arrow, p))
    return table


def main(argv: list[str] | None = None) -> int:
    """Command line: parse the MAR files into ``data/processed/nhs_mar.parquet``.

    Parameters
    ----------
    argv : list of str, optional
        ``--refresh`` re-parses even when the cache is current.

    Returns
    -------
    int
        Exit status: 0 on success, 1 on bad input (the message names the file).
    """
    import argparse
    import sys
    import time

    ap = argparse.ArgumentParser(
        prog="python -m vanguard.mar.parse", description=main.__doc__.splitlines()[0]
    )
    ap.add_argument("--refresh", action="store_true", help="re-parse even if the cache is current")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        table = load_mar(refresh=args.refresh)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    months = table["month"].nunique()
    print(
        f"{len(table):,} rows, {months} months, {table['org_code'].nunique()} organisations "
        f"in {time.perf_counter() - t0:.1f} s -> {config.DATA_PROCESSED / 'nhs_mar.parquet'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
