"""Small MAR-like ``.xls`` workbooks for the parser tests, laid out like the published files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import xlwt

HEADINGS = [
    "Elective G&A Ordinary Admissions (FFCEs)",
    "Elective G&A Daycase Admissions (FFCEs)",
    "Elective G&A Total Admissions (FFCEs)",
    "Elective G&A Planned Ordinary Admissions (FFCEs)",
    "Elective G&A Planned Daycase Admissions (FFCEs)",
    "Elective G&A Planned Total Admissions (FFCEs)",
    "Elective G&A Admissions (FFCEs) -NHS Treatment Centres (TCs) ",
    "Total Non-elective G&A Admissions (FFCEs)",
    "GP Referrals Made (All specialties) ",
    "GP Referrals Seen (All specialties) ",
    "GP Referrals Made (G&A) ",
    "GP Referrals Seen (G&A) ",
    "Other Referrals Made (G&A) ",
    "All 1st Outpatient Attendances (G&A) ",
]
NON_ELECTIVE = 7  # index of the total non-elective column in HEADINGS

ORGS = [
    ("X24", "NHS ENGLAND"),
    ("A1A", "NHS ALPHA CCG"),
    ("B2B", "NHS BETA CCG"),
    ("C3C", "NHS GAMMA CCG"),
]


class XlError:
    """An Excel error cell (e.g. ``#N/A``) to plant in a workbook."""

    def __init__(self, text: str = "#N/A"):
        self.text = text


def org_values(month: str, seed: int = 0) -> dict[str, list[float]]:
    """Deterministic counts per organisation for a month."""
    rng = np.random.default_rng([seed, pd.Timestamp(month).month, pd.Timestamp(month).year])
    return {
        code: [float(v) for v in rng.integers(10, 5000, size=len(HEADINGS))] for code, _ in ORGS
    }


def write_mar_xls(
    path: Path,
    month: str,
    *,
    values: dict | None = None,
    orgs=ORGS,
    sheet: str = "Commissioner",
    headings=None,
    period: str | None = None,
    year_cell: str | None = None,
    england: list | None = None,
    extra_rows: list | None = None,
) -> Path:
    """Write one workbook: title block, header on row 14, England row, CCG rows, notes."""
    m = pd.Timestamp(month)
    values = org_values(month) if values is None else values
    headings = HEADINGS if headings is None else headings
    fy = f"{m.year - (m.month < 4)}-{(m.year - (m.month < 4) + 1) % 100:02d}"
    year = fy if year_cell is None else year_cell
    book = xlwt.Workbook()
    ws = book.add_sheet(sheet)
    book.add_sheet("Region")
    ws.write(1, 1, "Title:")
    ws.write(1, 2, "Monthly Hospital Activity")
    ws.write(4, 1, "Period:")
    ws.write(4, 2, period if period is not None else m.strftime("%B %Y"))
    ws.write(12, 1, "Commissioner Level Data")
    for c, h in enumerate(
        ["Year", "Period", "Region Code", "Region Name", "Org Code", "Org Name", *headings], start=1
    ):
        ws.write(13, c, h)
    total = england if england is not None else list(np.sum([values[c] for c, _ in orgs], axis=0))
    ws.write(14, 1, year)
    ws.write(14, 2, m.strftime("%B").upper())
    ws.write(14, 6, "England")
    for k, v in enumerate(total):
        ws.write(14, 7 + k, float(v))
    r = 16
    for code, name in orgs:
        ws.write(r, 1, year)
        ws.write(r, 2, m.strftime("%B").upper())
        ws.write(r, 3, "Y99")
        ws.write(r, 4, "TEST REGION")
        ws.write(r, 5, code)
        ws.write(r, 6, name)
        for k, v in enumerate(values[code]):
            if isinstance(v, XlError):
                ws.row(r).set_cell_error(7 + k, v.text)
            else:
                ws.write(r, 7 + k, v)
        r += 1
    for row in extra_rows or []:
        for c, v in enumerate(row):
            ws.write(r, c, v)
        r += 1
    ws.write(r + 1, 1, "Note: test workbook")
    book.save(str(path))
    return path


def write_manifest(
    folder: Path, months: list[str], *, url_base: str | None = None, name: str = "manifest.csv"
) -> Path:
    """Manifest for the workbooks ``<Mon>_<yy>.xls`` in ``folder``."""
    rows = []
    for month in months:
        f = folder / file_name(month)
        data = f.read_bytes()
        url = f"{url_base}/{f.name}" if url_base else f.as_uri()
        rows.append(
            {
                "month": month,
                "file": f.name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "source_url": url,
            }
        )
    out = folder / name
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def file_name(month: str) -> str:
    return pd.Timestamp(month).strftime("%b_%y") + ".xls"


def make_set(folder: Path, months: list[str], **kw) -> Path:
    """Write one workbook per month and their manifest; return the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    for m in months:
        write_mar_xls(folder / file_name(m), m, **kw)
    return write_manifest(folder, months)
