"""Every path the project uses, built from the project root.

Nothing in the package or the notebooks depends on the working directory: notebooks
and scripts import the constants and helpers below. Two settings come from the
environment:

``VANGUARD_MAR_DIR``
    A folder that already holds the NHS England Monthly Activity Return ``.xls`` files.
``VANGUARD_REPORTS_DIR``
    Where runs are written (default ``reports/`` in the project).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vanguard.errors import DataError

ROOT: Path = Path(__file__).resolve().parents[2]
"""Project root (the folder holding ``pyproject.toml``)."""

SRC: Path = ROOT / "src" / "vanguard"
NOTEBOOKS: Path = ROOT / "notebooks"
PARAMS: Path = ROOT / "params"
TESTS: Path = ROOT / "tests"
DATA: Path = ROOT / "data"
DATA_RAW: Path = DATA / "raw"
DATA_PROCESSED: Path = DATA / "processed"

SYNTHETIC_DIR: Path = DATA_RAW / "synthetic"
"""The embedded synthetic England: panel, site register and truth table."""

SITE_REGISTER: Path = DATA_RAW / "vanguard_sites.csv"
"""The 50 vanguards: one row per site."""
SITE_AREAS: Path = DATA_RAW / "vanguard_site_ccgs.csv"
"""Site to CCG footprint: one row per site x CCG."""
MAR_MANIFEST: Path = DATA_RAW / "nhs_mar_manifest.csv"
"""Month, file name, original URL and sha256 of every MAR file."""
CCG_CROSSWALK: Path = DATA_RAW / "ccg_crosswalk.csv"
"""CCG mergers: predecessor code to successor code, with the date and a note."""
PUBLISHED_RESULTS: Path = DATA_RAW / "published_results.csv"
"""Published estimates the report sets beside ours."""
LESSONS: Path = DATA_RAW / "lessons.csv"
"""The lessons register rendered by the report."""

MPL_STYLE: Path = SRC / "vanguard.mplstyle"
KERNEL_NAME: str = "vanguard-did"
"""Jupyter kernel every notebook run names explicitly."""

SHARED_MAR_DIR: Path = ROOT.parent / "shared" / "data" / "nhs-mar"
"""Where a copy of the MAR files sits beside the project on shared machines."""
DOWNLOADED_MAR_DIR: Path = DATA_RAW / "nhs-mar"
"""Where ``make data-nhs`` downloads the MAR files (not committed)."""


REPORTS_DIR_ENV = "VANGUARD_REPORTS_DIR"


def reports_dir() -> Path:
    """Folder holding one sub-folder per run.

    Returns
    -------
    pathlib.Path
        ``$VANGUARD_REPORTS_DIR`` when set, else ``reports/`` in the project. The folder
        need not exist yet.

    Raises
    ------
    DataError
        If ``$VANGUARD_REPORTS_DIR`` names an existing file, or a path below one: every
        run would otherwise fail later with an operating-system error about a sub-folder.
    """
    env = os.environ.get(REPORTS_DIR_ENV)
    if not env:
        return ROOT / "reports"
    path = Path(env).resolve()
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise DataError(
                f"${REPORTS_DIR_ENV}={env}",
                "a folder for the run outputs (or a path where one can be created)",
                found=f"{part} is a file",
            )
    return path


_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def run_dir(run: str) -> Path:
    """Folder of one run of the report, e.g. ``reports/default``.

    Parameters
    ----------
    run : str
        Run name: letters, digits, ``_``, ``-`` and ``.`` only, so that a run name
        can never point outside the reports folder.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        If ``run`` is not a plain name.
    """
    if not _RUN_NAME.match(run):
        raise ValueError(
            f"run name {run!r}: expected letters, digits, '_', '-' or '.', not a path"
        )
    return reports_dir() / run


def mar_dir() -> Path:
    """Folder to read the NHS Monthly Activity Return files from.

    Order: ``$VANGUARD_MAR_DIR`` if set; else the shared copy beside the project if it
    exists; else ``data/raw/nhs-mar`` (filled by ``make data-nhs``).

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("VANGUARD_MAR_DIR")
    if env:
        return Path(env).resolve()
    if SHARED_MAR_DIR.is_dir():
        return SHARED_MAR_DIR
    return DOWNLOADED_MAR_DIR
