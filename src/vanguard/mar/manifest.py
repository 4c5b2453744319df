"""The committed list of NHS Monthly Activity Return files: month, file, checksum, source."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from vanguard import config
from vanguard.errors import DataError

MANIFEST_COLUMNS: tuple[str, ...] = ("month", "file", "sha256", "bytes", "source_url")

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def read_manifest(path: str | Path = config.MAR_MANIFEST) -> pd.DataFrame:
    """Read and validate the MAR manifest.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV with columns :data:`MANIFEST_COLUMNS`, one row per monthly file.

    Returns
    -------
    pandas.DataFrame
        The manifest sorted by month, with ``month`` as a month-start Timestamp and
        ``bytes`` as int.

    Raises
    ------
    DataError
        If the file is missing, a column is missing, a month is malformed or repeated,
        months are not contiguous, a file name repeats or contains a folder, a checksum
        is not 64 hex digits, or a byte count is not a positive integer.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "the MAR manifest CSV (month, file, sha256, bytes, source_url)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            path, f"columns {list(MANIFEST_COLUMNS)}", column=missing[0], found=list(df.columns)
        )
    if df.empty:
        raise DataError(path, "at least one MAR file listed")
    for i, rec in enumerate(df.itertuples(index=False), start=2):
        if not _MONTH.match(rec.month):
            raise DataError(path, "a month as YYYY-MM", row=i, column="month", found=rec.month)
        if not rec.file or Path(rec.file).name != rec.file:
            raise DataError(path, "a bare file name", row=i, column="file", found=rec.file)
        if not _SHA.match(rec.sha256):
            raise DataError(
                path,
                "a sha256 of 64 lower-case hex digits",
                row=i,
                column="sha256",
                found=rec.sha256,
            )
        if not rec.bytes.isdigit() or int(rec.bytes) <= 0:
            raise DataError(
                path, "a positive whole number of bytes", row=i, column="bytes", found=rec.bytes
            )
    for col in ("month", "file"):
        dup = df[col].duplicated()
        if dup.any():
            i = int(dup.to_numpy().argmax())
            raise DataError(
                path, f"each {col} listed once", row=i + 2, column=col, found=df[col].iloc[i]
            )
    df["month"] = pd.to_datetime(df["month"], format="%Y-%m")
    df["bytes"] = df["bytes"].astype("int64")
    df = df.sort_values("month", kind="stable").reset_index(drop=True)
    expected = pd.date_range(df["month"].iloc[0], df["month"].iloc[-1], freq="MS")
    if len(expected) != len(df):
        gaps = sorted(set(expected) - set(df["month"]))
        raise DataError(
            path,
            "contiguous months",
            column="month",
            found=f"missing {', '.join(m.strftime('%Y-%m') for m in gaps[:5])}",
        )
    return df[list(MANIFEST_COLUMNS)]
