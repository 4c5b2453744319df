"""Reuse of whole notebook runs whose inputs are unchanged.

The results cache (:mod:`vanguard.cache`) spares a re-run the computing; this one spares
it the notebook itself: starting a kernel, importing, drawing the figures. A notebook of
the analysis stages that succeeded is stored with every file it wrote into the run
folder, under the sha256 of everything it can read:

* the notebook file and the parameters the runner injected;
* every file of the package (code, templates, style) and the input files of the run
  (:func:`vanguard.pipeline.input_files`: the parameter set, the reference data under
  ``data/raw/`` and the data the run reads);
* the versions of Python and of the packages that can change a printed number or a
  figure (those the run manifest records);
* every output of the earlier stages in the run folder (for ``03_did``, the panel that
  ``01_data`` wrote), read when the stage starts.

A later run with the same key restores the executed notebook and its files instead of
running it, and its manifest says so (``restored``). The report notebook (the last
stage) is never restored: it prints the run's own manifest (commit, parameters), so it
always runs.

Which files a notebook wrote is known because every output goes through
:func:`vanguard.io.atomic_write`, which appends each path to the file named by
``$VANGUARD_WRITE_LOG`` when it is set; the runner sets it for the notebook's kernel.

Entries live in ``<results cache folder>-jobs/`` (``data/processed/cache-jobs/`` by
default) as ``<key>/`` folders: the files, then ``entry.json`` (each file's sha256),
written last as the entry's commit mark. An entry whose files do not match their
sha256 is ignored and rebuilt. ``VANGUARD_CACHE=off`` turns this cache off with the
results cache. Entries unused for :data:`vanguard.cache.MAX_AGE_DAYS` days are removed
(:func:`prune`), then the least recently used until the folder is under
:data:`MAX_BYTES`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from vanguard import cache, config
from vanguard.io import WRITE_LOG_ENV, sha256_file, write_bytes, write_text

FORMAT = "1"
"""Part of every key: bump when what an entry holds changes."""

MAX_BYTES: int = 2 << 30
"""Size cap of the folder (``$VANGUARD_JOB_CACHE_MAX_MB`` overrides, in MiB)."""

ENTRY = "entry.json"
NOTEBOOK = "notebook.ipynb"
FILES = "files"

__all__ = ["WRITE_LOG_ENV", "folder", "job_key", "package_digest", "prior_outputs", "prune",
           "restore", "store", "written_files"]


def folder() -> Path:
    """Where entries live: beside the results cache, ``<its folder>-jobs``."""
    base = cache.cache_dir()
    return base.with_name(base.name + "-jobs")


def _file_digests(root: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """sha256 of each file under ``root`` by relative name, leaving out hidden files
    and any path through a folder named in ``skip``."""
    skip = set(skip)
    out = {}
    if root.is_dir():
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root)
            if p.is_file() and not p.name.startswith(".") and not skip & set(rel.parts):
                out[rel.as_posix()] = sha256_file(p)
    return out


def prior_outputs(run_path: Path, subfolders: Iterable[str]) -> dict[str, str]:
    """sha256 of each file the earlier stages wrote into ``subfolders`` of the run.

    Hidden temporary files are left out; so are executed notebooks, which the caller
    does not name (their timestamps differ from run to run and no notebook reads them).
    """
    return {f"{sub}/{rel}": digest for sub in subfolders
            for rel, digest in _file_digests(run_path / sub).items()}


def package_digest() -> str:
    """sha256 over every file of the package (code, templates, style sheet)."""
    text = json.dumps(_file_digests(config.SRC, skip=("__pycache__",)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def job_key(notebook: Path, parameters: Mapping, inputs: Mapping[str, str],
            prior: Mapping[str, str], package: str | None = None,
            versions: Mapping[str, str] | None = None) -> str:
    """Key of one notebook run.

    Parameters
    ----------
    notebook : pathlib.Path
        The source notebook.
    parameters : mapping
        The parameters papermill injects.
    inputs : mapping
        Input file -> sha256 (:func:`vanguard.pipeline.input_checksums`).
    prior : mapping
        Earlier stages' outputs (:func:`prior_outputs`).
    package : str, optional
        :func:`package_digest`, when the caller has it already.
    versions : mapping, optional
        Package -> version (default those of the results cache's keys); the runner gives
        the wider set of its manifest (plotting and notebook packages too).

    Returns
    -------
    str
        64 hex digits.
    """
    body = {
        "format": FORMAT,
        "notebook": sha256_file(notebook),
        "parameters": parameters,
        "package": package or package_digest(),
        "inputs": dict(sorted(inputs.items())),
        "versions": dict(versions) if versions is not None else cache._versions(),
        "prior": dict(sorted(prior.items())),
    }
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def written_files(log: Path, run_path: Path) -> list[Path]:
    """The run folder's files named in a write log, once each, in order."""
    if not log.is_file():
        return []
    root = run_path.resolve()
    seen: dict[Path, None] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        p = Path(line)
        if line and root in p.parents and p.is_file():
            seen[p] = None
    return list(seen)


def store(key: str, run_path: Path, executed: Path, files: Iterable[Path]) -> Path | None:
    """Keep a finished notebook and the files it wrote under ``key``.

    Returns
    -------
    pathlib.Path or None
        The entry folder; None when the cache is off or the files cannot be stored
        (a full disk costs the next run time, never this run's results).
    """
    if not cache.enabled():
        return None
    entry = folder() / key
    root = run_path.resolve()
    try:
        shutil.rmtree(entry, ignore_errors=True)
        listing = {}
        for p in files:
            rel = p.resolve().relative_to(root).as_posix()
            write_bytes(entry / FILES / rel, p.read_bytes())
            listing[rel] = sha256_file(p)
        write_bytes(entry / NOTEBOOK, executed.read_bytes())
        write_text(entry / ENTRY, json.dumps(
            {"key": key, "files": listing, "notebook": sha256_file(executed)},
            indent=1, sort_keys=True) + "\n")
    except OSError:
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return entry


def restore(key: str, run_path: Path, executed: Path) -> list[str] | None:
    """Put a stored notebook run back into the run folder.

    Every file is checked against its sha256 before any is written, so a damaged entry
    restores nothing (and the notebook runs).

    Returns
    -------
    list of str or None
        The files restored (run-relative), or None when there is no usable entry.
    """
    if not cache.enabled():
        return None
    entry = folder() / key
    try:
        meta = json.loads((entry / ENTRY).read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        payload = {rel: (entry / FILES / rel).read_bytes() for rel in meta["files"]}
        nb = (entry / NOTEBOOK).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if any(hashlib.sha256(b).hexdigest() != meta["files"][rel] for rel, b in payload.items()) \
            or hashlib.sha256(nb).hexdigest() != meta.get("notebook"):
        return None
    for rel, data in payload.items():
        write_bytes(run_path / rel, data)
    write_bytes(executed, nb)
    os.utime(entry / ENTRY)  # "used" for the eviction order
    return sorted(payload)


def _max_bytes() -> int:
    mb = os.environ.get("VANGUARD_JOB_CACHE_MAX_MB")
    return int(float(mb) * (1 << 20)) if mb else MAX_BYTES


def prune(now: float | None = None) -> list[Path]:
    """Remove entries unused for too long, then the least recently used over the cap.

    Returns
    -------
    list of pathlib.Path
        The entry folders removed.
    """
    base = folder()
    if not base.is_dir():
        return []
    now = time.time() if now is None else now
    entries = []
    for d in base.iterdir():
        meta = d / ENTRY
        if not d.is_dir():
            continue
        if not meta.is_file():  # unfinished: another run may be writing it, unless old
            if now - d.stat().st_mtime > 3600:
                shutil.rmtree(d, ignore_errors=True)
            continue
        size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        entries.append((meta.stat().st_mtime, size, d))
    removed = []
    max_age = cache._max_age_seconds()
    total = sum(s for _, s, _ in entries)
    for used, size, d in sorted(entries):
        if now - used > max_age or total > _max_bytes():
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
            total -= size
    return removed
