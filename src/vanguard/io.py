"""Atomic file writing and checksums.

Every output is written to a temporary file in the destination folder and moved into
place with :func:`os.replace`, so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

WRITE_LOG_ENV = "VANGUARD_WRITE_LOG"
"""When set, every file written here is named on a line of that file (the runner uses it
to know what a notebook wrote: :mod:`vanguard.job_cache`)."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a file atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination. Its folder is created if missing.
    write : callable
        Called with a temporary path in the same folder; must write the whole file.

    Returns
    -------
    pathlib.Path
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        # mkstemp creates files readable by the owner only; give the output the
        # permissions an ordinary new file would get under the user's umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    log = os.environ.get(WRITE_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{path.resolve()}\n")
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write bytes."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def write_csv(path: str | Path, df: pd.DataFrame, **kwargs) -> Path:
    """Atomically write a DataFrame as CSV (no index, ``\\n`` line ends)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("lineterminator", "\n")
    return atomic_write(path, lambda p: df.to_csv(p, **kwargs))


def write_parquet(path: str | Path, df: pd.DataFrame) -> Path:
    """Atomically write a DataFrame as parquet (no index)."""
    return atomic_write(path, lambda p: df.to_parquet(p, index=False))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
