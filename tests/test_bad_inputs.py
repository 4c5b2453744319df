"""Bad inputs, as a new user would make them, against every loader.

Each case writes one small valid dataset (an area-month panel, a site register, a
records extract), spoils one thing in one file, and checks that loading it raises a
:class:`~vanguard.errors.DataError` whose message starts with that file, names the row
(header = row 1) and/or the column where they exist, and says what was expected. No
input file may change: every file in the case's folder is hashed before and after.
"""

from __future__ import annotations

import bz2
import datetime as _dt
import gzip
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vanguard.errors import DataError, DataWarning
from vanguard.io import sha256_file
from vanguard.panel import load_panel, validate_panel
from vanguard.records import aggregate_records
from vanguard.sites import load_register

AREAS = [f"A0{i}" for i in range(1, 7)]
MONTHS = [f"{p:%Y-%m}" for p in pd.period_range("2014-04", "2016-03", freq="M")]
PANEL_HEADER = "area,month,population,emergency_admissions,bed_days"
SITES = [
    "site_id,type,wave,announced,start_month,name,footprint,source_url,note",
    "PACS01,PACS,1,2015-03-10,2015-04,Example PACS,area,,",
    "EHCH01,EHCH,1,2015-03-10,2015-04,Example care homes,area,,",
    "ACC01,ACC,2,2015-09-01,2015-10,Example collaboration,none,,",
]
SITE_AREAS = [
    "site_id,area,area_name,coverage,evidence",
    "PACS01,A01,Area one,whole,plan p. 1",
    "PACS01,A02,Area two,part,plan p. 2",
    "EHCH01,A03,Area three,whole,plan p. 3",
]
RECORDS_HEADER = "admission_date,area,los"
PERIOD = {"start": "2015-01", "end": "2015-03"}


def panel_lines() -> list[str]:
    """144 rows: six areas x 24 months; area A01 is rows 2-25, A02 rows 26-49, ..."""
    rows = [PANEL_HEADER]
    for i, area in enumerate(AREAS):
        for j, month in enumerate(MONTHS):
            rows.append(f"{area},{month},{100_000 + 1000 * i},{500 + i + j},{3000 + 7 * j}")
    return rows


def record_lines() -> list[str]:
    """20 admissions, January to March 2015, areas A01-A03: rows 2-21."""
    rows = [RECORDS_HEADER]
    for k in range(20):
        rows.append(f"2015-0{1 + k % 3}-{1 + k:02d},A0{1 + k % 3},{k % 5}")
    return rows


def set_field(lines: list[str], row: int, column: str, value: str) -> list[str]:
    """Copy of ``lines`` with one field changed; ``row`` as a spreadsheet row."""
    out = list(lines)
    cols = out[0].split(",")
    fields = out[row - 1].split(",")
    fields[cols.index(column)] = value
    out[row - 1] = ",".join(fields)
    return out


def rename(lines: list[str], old: str, new: str) -> list[str]:
    header = lines[0].split(",")
    header[header.index(old)] = new
    return [",".join(header), *lines[1:]]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def xlsx_bytes() -> bytes:
    """The zip layout of an Excel workbook: enough for the format to be recognised."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def panel_frame() -> pd.DataFrame:
    lines = panel_lines()
    df = pd.DataFrame([ln.split(",") for ln in lines[1:]], columns=lines[0].split(","))
    df["month"] = pd.to_datetime(df["month"])
    for c in ("population", "emergency_admissions", "bed_days"):
        df[c] = df[c].astype(float)
    return df


# --- how each file is loaded -------------------------------------------------------------


def _register(tmp: Path, sites=None, areas=None) -> tuple[Path, Path]:
    s, a = tmp / "sites.csv", tmp / "site_areas.csv"
    if not s.exists():
        write(s, SITES if sites is None else sites)
    if not a.exists():
        write(a, SITE_AREAS if areas is None else areas)
    return s, a


def load_custom(tmp: Path, name: str) -> Callable[[], object]:
    s, a = _register(tmp)
    if not (tmp / "panel.csv").exists() and name != "panel.csv":
        write(tmp / "panel.csv", panel_lines())
    return lambda: load_panel("custom", path=tmp / name, sites_path=s, areas_path=a)


def load_reg(tmp: Path) -> Callable[[], object]:
    """The register through the panel loader, so areas are checked against a panel."""
    s, a = _register(tmp)
    if not (tmp / "panel.csv").exists():
        write(tmp / "panel.csv", panel_lines())
    return lambda: load_panel("custom", path=tmp / "panel.csv", sites_path=s, areas_path=a)


# --- the cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One spoilt input: ``build`` writes the files and returns the call that must fail."""

    id: str
    file: str
    build: Callable[[Path], Callable[[], object]]
    row: int | None
    column: str | None
    words: tuple[str, ...]
    kwargs: dict = field(default_factory=dict)


def panel_case(id, mutate, row, column, *words, name="panel.csv"):
    def build(tmp: Path):
        write(tmp / name, mutate(panel_lines()))
        return load_custom(tmp, name)

    return Case(id, name, build, row, column, words)


def panel_bytes_case(id, data: Callable[[], bytes], row, column, *words, name="panel.csv"):
    def build(tmp: Path):
        (tmp / name).write_bytes(data())
        return load_custom(tmp, name)

    return Case(id, name, build, row, column, words)


def parquet_case(id, make: Callable[[Path], None], row, column, *words):
    def build(tmp: Path):
        make(tmp / "panel.parquet")
        return load_custom(tmp, "panel.parquet")

    return Case(id, "panel.parquet", build, row, column, words)


def _pq_with(change):
    def make(path: Path):
        df = panel_frame()
        change(df)
        df.to_parquet(path, index=False)

    return make


def _pq_duplicate_names(path: Path):
    df = panel_frame()
    arrays = [pa.array(df[c]) for c in df.columns] + [pa.array(df["bed_days"])]
    pq.write_table(pa.Table.from_arrays(arrays, names=[*df.columns, "bed_days"]), path)


def _set_cell(col, value, i=3):
    def change(df):
        df[col] = df[col].astype(object if isinstance(value, str) else df[col].dtype)
        df.loc[i, col] = value

    return change


def _tz_utc(df):
    df["month"] = df["month"].dt.tz_localize("Europe/London").dt.tz_convert("UTC")


def _time_of_day(df):
    df.loc[3, "month"] = df.loc[3, "month"] + pd.Timedelta(hours=13)


def register_case(id, which, mutate, row, column, *words):
    name = "sites.csv" if which == "sites" else "site_areas.csv"

    def build(tmp: Path):
        base = SITES if which == "sites" else SITE_AREAS
        write(tmp / name, mutate(list(base)))
        return load_reg(tmp)

    return Case(id, name, build, row, column, words)


def register_bytes_case(id, which, data: Callable[[], bytes], row, column, *words):
    name = "sites.csv" if which == "sites" else "site_areas.csv"

    def build(tmp: Path):
        (tmp / name).write_bytes(data())
        s, a = _register(tmp)
        return lambda: load_register(s, a)

    return Case(id, name, build, row, column, words)


def records_case(id, mutate, row, column, *words, name="rec.csv", **kwargs):
    kwargs = {**PERIOD, **kwargs} if "nostate" not in kwargs else {}

    def build(tmp: Path):
        write(tmp / name, mutate(record_lines()))
        return lambda: aggregate_records(tmp / name, los_col="los", **kwargs)

    return Case(id, name, build, row, column, words)


def records_bytes_case(id, data: Callable[[], bytes], row, column, *words, name="rec.csv"):
    def build(tmp: Path):
        (tmp / name).write_bytes(data())
        return lambda: aggregate_records(tmp / name, los_col="los", **PERIOD)

    return Case(id, name, build, row, column, words)


def records_parquet_case(id, dates: list, row, *words):
    def build(tmp: Path):
        t = pa.table(
            {
                "admission_date": pa.array(dates, pa.date32()),
                "area": ["A01"] * len(dates),
                "los": [1] * len(dates),
            }
        )
        pq.write_table(t, tmp / "rec.parquet")
        return lambda: aggregate_records(tmp / "rec.parquet", los_col="los")

    return Case(id, "rec.parquet", build, row, "admission_date", words)


def records_out_case(id, out: Callable[[Path], Path], *words):
    def build(tmp: Path):
        write(tmp / "rec.csv", record_lines())
        (tmp / "blocker.txt").write_text("x")
        (tmp / "folder.csv").mkdir()
        target = out(tmp)
        return lambda: aggregate_records(tmp / "rec.csv", los_col="los", out=target, **PERIOD)

    return Case(id, "", build, None, None, words)


def _append(*extra):
    return lambda lines: lines + list(extra)


def _header(new):
    return lambda lines: [new, *lines[1:]]


def _csv_text(lines):
    return ("\n".join(lines) + "\n").encode("utf-8")


def _zip_of(name: str, data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _parquet_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    pd.DataFrame({"site_id": ["X"]}).to_parquet(buf)
    return buf.getvalue()


def _damaged_records_parquet(tmp: Path):
    (tmp / "rec.parquet").write_bytes(b"PAR1" + b"\0" * 8)
    return lambda: aggregate_records(tmp / "rec.parquet", **PERIOD)


def _tz_records(tmp: Path):
    when = pd.to_datetime(["2015-01-31 23:30", "2015-02-01 00:30"]).tz_localize("Europe/London")
    pd.DataFrame({"admission_date": when, "area": "A01", "los": 1}).to_parquet(tmp / "rec.parquet")
    return lambda: aggregate_records(tmp / "rec.parquet", los_col="los", **PERIOD)


def _outcome_misspelt(tmp: Path):
    write(tmp / "panel.csv", panel_lines())
    s, a = _register(tmp)
    return lambda: load_panel(
        "custom", path=tmp / "panel.csv", sites_path=s, areas_path=a, outcomes=["bed_day"]
    )


def _set(row, column, value):
    return lambda lines: set_field(lines, row, column, value)


def _renamed(old, new):
    return lambda lines: rename(lines, old, new)


# One spoilt field: (id, row, column, new value, words the message must contain).
PANEL_FIELDS = [
    ("inf", 5, "bed_days", "inf", "expected a finite number", "'inf'"),
    ("-inf", 6, "bed_days", "-inf", "a finite number"),
    ("nan-text", 7, "emergency_admissions", "nan", "a finite number", "'nan'"),
    ("NaN-text", 8, "population", "NaN", "a finite number"),
    ("Infinity", 9, "bed_days", "Infinity", "a finite number"),
    ("overflow-1e400", 10, "bed_days", "1e400", "a finite number"),
    ("ceiling-1e18", 11, "bed_days", "1e18", "no larger than 1,000,000,000,000"),
    ("ceiling-population", 12, "population", "2e12", "no larger than"),
    ("text-count", 13, "bed_days", "12a", "expected a number", "'12a'"),
    ("NA-count", 14, "bed_days", "NA", "expected a number", "'NA'"),
    ("thousands", 18, "bed_days", '"3,021"', "expected a number", "without thousands separators"),
    ("empty-count", 15, "bed_days", "", "a number (no missing values)"),
    ("negative", 16, "emergency_admissions", "-3", "a non-negative number"),
    ("zero-population", 17, "population", "0", "a positive number"),
    ("month-13", 22, "month", "2014-13", "a month as YYYY-MM"),
    ("month-words", 23, "month", "Sept 2014", "a month as YYYY-MM"),
    ("mid-month", 24, "month", "2016-02-15", "the first day of a month"),
]

# A renamed column: (id, old name, new name, column named, words).
PANEL_RENAMES = [
    ("misspelt-month", "month", "montth", "month", "a column named 'month'", "'montth' a mis"),
    ("misspelt-area", "area", "aera", "area", "a column named 'area'", "'aera' a misspelling"),
    ("capital-Month", "month", "Month", "month", "'Month' a misspelling"),
]

PANEL_CASES = [
    *(panel_case(i, _set(r, c, v), r, c, *w) for i, r, c, v, *w in PANEL_FIELDS),
    *(panel_case(i, _renamed(o, n), 1, c, *w) for i, o, n, c, *w in PANEL_RENAMES),
    panel_case(
        "duplicate-column",
        _header("area,month,population,bed_days,bed_days"),
        1,
        "bed_days",
        "each column name once",
        "columns 4 and 5",
    ),
    panel_case(
        "empty-column-name",
        _header("area,month,population,,bed_days"),
        1,
        None,
        "a name for every column",
        "column 4",
    ),
    panel_case(
        "ragged-long", _set(20, "bed_days", "3000,1"), 20, None, "5 fields, as in the header"
    ),
    panel_case(
        "ragged-short",
        lambda ls: ls[:20] + [ls[20].rsplit(",", 1)[0]] + ls[21:],
        21,
        None,
        "5 fields, as in the header row",
        "4 fields",
    ),
    panel_case("empty-line", lambda ls: ls[:30] + [""] + ls[30:], 31, None, "no empty lines"),
    panel_case(
        "duplicate-area-month",
        lambda ls: ls + [ls[5]],
        146,
        None,
        "one row per area and month",
        "first on row 6",
    ),
    panel_case("gap", lambda ls: ls[:10] + ls[11:], 11, "month", "consecutive months"),
    panel_case(
        "text-column",
        lambda ls: [ls[0] + ",notes", *[ln + ",checked" for ln in ls[1:]]],
        2,
        "notes",
        "expected a number",
        "pass outcomes= to choose them",
    ),
    panel_case(
        "semicolons",
        lambda ls: [ln.replace(",", ";") for ln in ls],
        1,
        None,
        "comma-separated columns",
    ),
    Case(
        "outcome-misspelt",
        "panel.csv",
        _outcome_misspelt,
        1,
        "bed_day",
        ("a column named 'bed_day'", "'bed_days' a misspelling"),
    ),
    panel_bytes_case("xlsx", xlsx_bytes, None, None, "an Excel workbook", "save it as CSV"),
    panel_bytes_case("xlsx-named", xlsx_bytes, None, None, "an Excel", name="panel.xlsx"),
    panel_bytes_case(
        "xls", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504, None, None, "97-2003"
    ),
    panel_bytes_case(
        "zip",
        lambda: _zip_of("panel.csv", _csv_text(panel_lines())),
        None,
        None,
        "a zip archive",
        "extract the CSV",
    ),
    panel_bytes_case(
        "bzip2", lambda: bz2.compress(_csv_text(panel_lines())), None, None, "bzip2-compressed"
    ),
    panel_bytes_case(
        "gzip-damaged",
        lambda: gzip.compress(_csv_text(panel_lines()))[:40],
        None,
        None,
        "a damaged gzip file",
        name="panel.csv.gz",
    ),
    panel_bytes_case(
        "utf-16", lambda: "\n".join(panel_lines()).encode("utf-16"), 1, None, "UTF-8", "UTF-16"
    ),
    panel_bytes_case(
        "latin-1",
        lambda: _csv_text(set_field(panel_lines(), 4, "area", "A0")).replace(
            b"A0,", "Aé,".encode("latin-1"), 1
        ),
        4,
        None,
        "UTF-8 encoded text",
    ),
    panel_bytes_case(
        "nul-bytes",
        lambda: _csv_text(panel_lines()).replace(b"A03", b"A\x003", 1),
        50,
        None,
        "a text CSV file",
        "NUL",
    ),
    panel_bytes_case("pdf", lambda: b"%PDF-1.7\n...", None, None, "a PDF document"),
    panel_bytes_case("empty", lambda: b"", None, None, "empty file"),
    panel_bytes_case("header-only", lambda: _csv_text([PANEL_HEADER]), 2, None, "one data row"),
    parquet_case(
        "parquet-inf", _pq_with(_set_cell("bed_days", float("inf"))), 5, "bed_days", "finite"
    ),
    parquet_case(
        "parquet-nan",
        _pq_with(_set_cell("bed_days", float("nan"))),
        5,
        "bed_days",
        "a number (no missing values)",
    ),
    parquet_case(
        "parquet-huge", _pq_with(_set_cell("bed_days", 1e18)), 5, "bed_days", "no larger than"
    ),
    parquet_case(
        "parquet-tz-utc",
        _pq_with(_tz_utc),
        2,
        "month",
        "the first day of a month",
        "time-zone-aware",
    ),
    parquet_case("parquet-time-of-day", _pq_with(_time_of_day), 5, "month", "at midnight"),
    parquet_case(
        "parquet-duplicate-names", _pq_duplicate_names, 1, "bed_days", "each column name once"
    ),
    parquet_case(
        "parquet-damaged",
        lambda p: p.write_bytes(b"PAR1" + b"\0" * 20),
        None,
        None,
        "a readable parquet file",
    ),
]

# (id, which file, row, column, new value, words)
REGISTER_FIELDS = [
    ("sites-year-0201", "sites", 2, "announced", "0201-03-10", "a date between 1990-01-01"),
    ("sites-year-2105", "sites", 3, "announced", "2105-03-10", "a date between 1990-01-01"),
    ("sites-start-2051", "sites", 3, "start_month", "2051-04", "a month between 1990-01"),
    ("sites-bad-date", "sites", 2, "announced", "2015/03/10", "a date as YYYY-MM-DD"),
    ("sites-bad-month", "sites", 2, "start_month", "April 2015", "a month as YYYY-MM"),
    ("sites-huge-wave", "sites", 2, "wave", "99999999999999999999", "a whole-number wave"),
    ("sites-type-case", "sites", 2, "type", "pacs", "one of PACS", "did you mean 'PACS'?"),
    ("sites-start-early", "sites", 3, "start_month", "2015-02", "after the announcement"),
    ("sites-empty-type", "sites", 3, "type", "", "a value"),
    ("sites-footprint", "sites", 2, "footprint", "areas", "one of area, none"),
    ("sites-acc-with-areas", "sites", 4, "footprint", "area", "footprint 'none' for acute"),
    ("areas-unknown-site", "areas", 3, "site_id", "PACS09", "a site_id listed in sites.csv"),
    ("areas-coverage", "areas", 2, "coverage", "half", "one of whole, part"),
    ("areas-unknown-area", "areas", 4, "area", "X99", "an area code present in the outcome"),
]

REGISTER_CASES = [
    *(register_case(i, f, _set(r, c, v), r, c, *w) for i, f, r, c, v, *w in REGISTER_FIELDS),
    register_case(
        "sites-duplicate-column",
        "sites",
        lambda ls: [ls[0] + ",note", *[ln + "," for ln in ls[1:]]],
        1,
        "note",
        "each column name once",
    ),
    register_case(
        "sites-misspelt-column",
        "sites",
        _renamed("start_month", "start_mnth"),
        1,
        "start_month",
        "'start_mnth' a misspelling",
    ),
    register_case(
        "sites-ragged", "sites", lambda ls: ls[:2] + [ls[2] + ",x"] + ls[3:], 3, None, "9 fields"
    ),
    register_case(
        "sites-duplicate-id", "sites", lambda ls: ls + [ls[1]], 5, "site_id", "each site_id once"
    ),
    register_case(
        "sites-start-outside-panel",
        "sites",
        lambda ls: set_field(
            set_field(ls, 2, "announced", "2016-05-01"), 2, "start_month", "2016-06"
        ),
        2,
        "start_month",
        "a start month after 2014-04 and no later than 2016-03",
    ),
    register_bytes_case(
        "sites-xlsx", "sites", xlsx_bytes, None, None, "an Excel workbook", "a CSV file"
    ),
    register_bytes_case(
        "sites-parquet", "sites", _parquet_bytes, None, None, "a CSV file", "a parquet file"
    ),
    register_bytes_case("sites-empty", "sites", lambda: b"\n\n", None, None, "empty file"),
    register_case(
        "areas-duplicate-pair", "areas", lambda ls: ls + [ls[1]], 5, "area", "each site x area"
    ),
    register_case(
        "areas-misspelt-column",
        "areas",
        _renamed("coverage", "coverag"),
        1,
        "coverage",
        "'coverag' a misspelling",
    ),
    register_case(
        "areas-on-footprint-none",
        "areas",
        _append("ACC01,A04,x,whole,y"),
        5,
        "site_id",
        "no areas for a site whose footprint is 'none'",
    ),
    register_case(
        "areas-ragged", "areas", lambda ls: ls[:3] + ["EHCH01,A04"], 4, None, "5 fields, as in"
    ),
]

# (id, row, column, new value, words); read with the stated period.
RECORD_FIELDS = [
    ("year-0201", 5, "admission_date", "0201-05-03", "a date from 1990-01-01"),
    ("year-1900", 6, "admission_date", "1900-01-01", "a date from 1990-01-01"),
    ("month-13", 7, "admission_date", "2015-13-01", "a date YYYY-MM-DD", "(1 unreadable in"),
    ("feb-30", 8, "admission_date", "2015-02-30", "a date YYYY-MM-DD"),
    ("date-words", 9, "admission_date", "last week", "a date YYYY-MM-DD", "'last week'"),
    ("date-empty", 10, "admission_date", "", "a date YYYY-MM-DD"),
    ("blank-area", 11, "area", "  ", "a non-blank area code"),
    ("negative-los", 12, "los", "-1", "a non-negative, finite length of stay"),
    ("inf-los", 13, "los", "inf", "finite length of stay"),
    ("nan-los", 14, "los", "nan", "finite length of stay"),
    ("huge-los", 15, "los", "1e9", "at most 36,525 days"),
    ("text-los", 16, "los", "three", "a length of stay in days, a number"),
]

RECORDS_CASES = [
    *(records_case(i, _set(r, c, v), r, c, *w) for i, r, c, v, *w in RECORD_FIELDS),
    records_case(
        "typo-2051-no-period",
        _append("2051-05-03,A01,2"),
        22,
        "admission_date",
        "a date from 1990-01-01",
        "'2051-05-03'",
        "a mistyped year",
        nostate=True,
    ),
    records_case(
        "typo-2051-with-period",
        _append("2051-05-03,A01,2"),
        22,
        "admission_date",
        "a date from 1990-01-01",
    ),
    records_case(
        "year-201",
        _append("201-05-03,A01,2"),
        22,
        "admission_date",
        "a date from 1990-01-01",
        "'201-05-03'",
        nostate=True,
    ),
    records_case(
        "several-bad-dates",
        lambda ls: set_field(set_field(ls, 3, "admission_date", "x"), 12, "admission_date", "y"),
        3,
        "admission_date",
        "(2 unreadable in all)",
        "also row 12 'y'",
    ),
    records_case(
        "missing-column",
        _renamed("admission_date", "date"),
        1,
        "admission_date",
        "a column named 'admission_date'",
    ),
    records_case(
        "misspelt-column",
        _renamed("admission_date", "admision_date"),
        1,
        "admission_date",
        "'admision_date' a misspelling",
    ),
    records_case(
        "duplicate-column",
        lambda ls: [ls[0] + ",area", *[ln + ",B" for ln in ls[1:]]],
        1,
        "area",
        "each column name once",
    ),
    records_case(
        "semicolons",
        lambda ls: [ln.replace(",", ";") for ln in ls],
        1,
        None,
        "columns separated by ','",
    ),
    records_case(
        "ragged-long", _set(17, "los", "1,9"), 17, None, "3 fields, as in the header", "4 fields"
    ),
    records_case(
        "ragged-short",
        lambda ls: ls[:17] + ["2015-01-02"] + ls[18:],
        18,
        None,
        "3 fields, as in the header row",
        "1 field",
    ),
    records_case(
        "area-not-listed", lambda ls: ls, 2, "area", "an area listed in 'areas'", areas=["A02"]
    ),
    records_case(
        "span-over-30-years",
        _append("1991-05-03,A01,1", "2024-01-01,A02,1"),
        None,
        "admission_date",
        "at most 30 years",
        "earliest 1991-05-03",
        "row 22",
        nostate=True,
    ),
    records_case(
        "nothing-in-period",
        lambda ls: ls,
        None,
        "admission_date",
        "at least one record dated 2016-01 to 2016-02",
        start="2016-01",
        end="2016-02",
    ),
    records_bytes_case("empty-file", lambda: b"", None, None, "0 bytes"),
    records_bytes_case(
        "header-only", lambda: _csv_text([RECORDS_HEADER]), None, None, "below the header row"
    ),
    records_bytes_case("xlsx-as-csv", xlsx_bytes, None, None, "an Excel workbook"),
    records_bytes_case(
        "gzip-as-csv",
        lambda: gzip.compress(_csv_text(record_lines())),
        None,
        None,
        "named .csv.gz",
    ),
    records_bytes_case(
        "gzip-damaged",
        lambda: gzip.compress(_csv_text(record_lines()))[:30],
        None,
        None,
        "a damaged gzip file",
        name="rec.csv.gz",
    ),
    records_bytes_case(
        "utf-16", lambda: "\n".join(record_lines()).encode("utf-16"), 1, None, "UTF-8"
    ),
    records_bytes_case(
        "latin-1",
        lambda: _csv_text(record_lines() + ["2015-01-09,Sé,1"]).replace(
            "é".encode(), "é".encode("latin-1")
        ),
        22,
        None,
        "UTF-8 encoded text",
    ),
    records_bytes_case(
        "xlsx-extension", xlsx_bytes, None, None, "a .csv, .csv.gz or .parquet", name="rec.xlsx"
    ),
    records_parquet_case(
        "parquet-year-201",
        [_dt.date(2015, 1, 2), _dt.date(201, 5, 3)],
        3,
        "a date from 1990-01-01",
        "'0201-05-03'",
    ),
    records_case(
        "row-after-empty-line",
        lambda ls: ls[:5] + [""] + set_field(ls, 9, "admission_date", "x")[5:],
        10,
        "admission_date",
        "a date YYYY-MM-DD",
    ),
    Case(
        "parquet-damaged",
        "rec.parquet",
        _damaged_records_parquet,
        None,
        None,
        ("a readable parquet file",),
    ),
    Case(
        "tz-aware-parquet",
        "rec.parquet",
        _tz_records,
        None,
        "admission_date",
        ("timestamps without a time zone", "TIMESTAMP WITH TIME ZONE"),
    ),
    records_parquet_case("parquet-null-date", [_dt.date(2015, 1, 2), None], 3, "a date YYYY-MM-DD"),
]

OUT_CASES = [
    records_out_case(
        "out-inside-a-file",
        lambda t: t / "blocker.txt" / "panel.parquet",
        "an output path whose folder exists or can be created",
        "is a file",
    ),
    records_out_case(
        "out-is-a-folder",
        lambda t: t / "folder.csv",
        "a file name for the panel",
        "an existing folder",
    ),
    records_out_case("out-suffix", lambda t: t / "panel.xlsx", "ending in .parquet or .csv"),
    records_out_case(
        "out-is-the-input", lambda t: t / "rec.csv", "an output file other than the records"
    ),
]

ALL = (
    [replace(c, id=f"panel:{c.id}") for c in PANEL_CASES]
    + [replace(c, id=f"register:{c.id}") for c in REGISTER_CASES]
    + [replace(c, id=f"records:{c.id}") for c in RECORDS_CASES + OUT_CASES]
)


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_enough_cases_of_every_kind():
    assert len(ALL) >= 60
    assert len({c.id for c in ALL}) == len(ALL)
    assert len(PANEL_CASES) >= 20 and len(REGISTER_CASES) >= 15 and len(RECORDS_CASES) >= 20


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_bad_input_names_file_place_and_expectation(case, tmp_path):
    run = case.build(tmp_path)
    before = _hashes(tmp_path)
    with warnings.catch_warnings():
        # Warnings are tested on their own below; here only the error matters.
        warnings.simplefilter("ignore", DataWarning)
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(DataError) as err:
            run()
    msg = str(err.value)
    if case.file:
        assert msg.startswith(str(tmp_path / case.file) + ":"), msg
    else:
        assert msg.startswith(str(tmp_path)) and ".tmp" not in msg, msg
    assert ": expected " in msg, msg
    if case.row is not None:
        assert err.value.row == case.row, msg
        assert f"row {case.row}" in msg
    if case.column is not None:
        assert err.value.column == case.column, msg
        assert f"column {case.column!r}" in msg
    for words in case.words:
        assert words in msg, msg
    assert _hashes(tmp_path) == before, "an input file was modified"


# --- documented warnings and accepted variants ---------------------------------------------


def test_misspelt_optional_column_is_named_in_a_warning(tmp_path):
    write(tmp_path / "panel.csv", rename(panel_lines(), "population", "populaton"))
    s, a = _register(tmp_path)
    with pytest.warns(
        DataWarning,
        match=r"panel.csv: column 'populaton' looks like a "
        r"misspelling of 'population'; it is read as an outcome",
    ):
        df = load_panel("custom", path=tmp_path / "panel.csv", sites_path=s, areas_path=a)
    assert "populaton" in df.columns and "population" not in df.columns


def test_correct_names_give_no_misspelling_warning(tmp_path):
    write(tmp_path / "panel.csv", panel_lines())
    s, a = _register(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_panel("custom", path=tmp_path / "panel.csv", sites_path=s, areas_path=a)


def test_inferred_record_period_is_a_warning_naming_extreme_dates(tmp_path):
    write(tmp_path / "rec.csv", record_lines())
    with pytest.warns(
        DataWarning,
        match=r"rec.csv: no start or end given.*2015-01 to "
        r"2015-03.*earliest 2015-01-01, latest 2015-03-18",
    ):
        aggregate_records(tmp_path / "rec.csv")


def test_time_zone_aware_months_in_local_time_are_normalised(tmp_path):
    df = panel_frame()
    df["month"] = df["month"].dt.tz_localize("Europe/London")
    df.to_parquet(tmp_path / "panel.parquet", index=False)
    s, a = _register(tmp_path)
    got = load_panel("custom", path=tmp_path / "panel.parquet", sites_path=s, areas_path=a)
    assert str(got["month"].dtype) == "datetime64[ns]"
    assert got["month"].min() == pd.Timestamp("2014-04-01")
    assert got["month"].dt.is_month_start.all() and got.groupby("area").size().eq(24).all()


def test_gzip_panel_reads_like_the_plain_file(tmp_path):
    write(tmp_path / "panel.csv", panel_lines())
    (tmp_path / "panel.csv.gz").write_bytes(gzip.compress((tmp_path / "panel.csv").read_bytes()))
    s, a = _register(tmp_path)
    plain = load_panel("custom", path=tmp_path / "panel.csv", sites_path=s, areas_path=a)
    packed = load_panel("custom", path=tmp_path / "panel.csv.gz", sites_path=s, areas_path=a)
    pd.testing.assert_frame_equal(plain, packed)


def test_tz_aware_dataframe_records_refused():
    when = pd.to_datetime(["2015-01-31 23:30"]).tz_localize("UTC")
    with pytest.raises(
        DataError,
        match=r"<DataFrame>: column 'admission_date': expected "
        r"dates, or timestamps without a time zone",
    ):
        aggregate_records(pd.DataFrame({"admission_date": when, "area": ["A01"]}), **PERIOD)


def test_in_memory_duplicate_columns_refused():
    df = panel_frame()
    df.insert(4, "bed_days", df["bed_days"], allow_duplicates=True)
    with pytest.raises(
        DataError,
        match=r"memory: row 1, column 'bed_days': expected each "
        r"column name once",
    ):
        validate_panel(df, "memory", treatment=False)


def test_area_codes_with_spaces_are_one_area_in_both_routes(tmp_path):
    lines = record_lines()
    lines[1] = lines[1].replace(",A01,", ", A01 ,")
    write(tmp_path / "rec.csv", lines)
    got = aggregate_records(tmp_path / "rec.csv", los_col="los", **PERIOD)
    assert sorted(got["area"].unique()) == ["A01", "A02", "A03"]
    panel = panel_lines()
    panel[1] = " " + panel[1]
    write(tmp_path / "panel.csv", panel)
    s, a = _register(tmp_path)
    df = load_panel("custom", path=tmp_path / "panel.csv", sites_path=s, areas_path=a)
    assert sorted(df["area"].unique()) == AREAS


def test_data_error_survives_a_worker_process_boundary():
    import pickle

    err = DataError("panel.csv", "a finite number", row=5, column="bed_days", found="inf", note="n")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DataError and str(back) == str(err)
    assert (back.row, back.column, back.found, back.note) == (5, "bed_days", "inf", "n")
