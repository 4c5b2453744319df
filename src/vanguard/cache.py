"""Content-addressed cache of deterministic analysis results.

Re-running a report recomputes nothing that cannot have changed. A result is stored
under the sha256 of everything that determines it:

* the function (module and qualified name);
* the panel's content (:func:`panel_digest`: values, column names, dtypes and attrs);
* the keyword arguments (canonical JSON, so ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}``
  agree and ``1`` and ``1.0`` do not);
* the project's code (:func:`code_digest`: every ``.py`` file of the package) and the
  reference data it may read (every file under ``data/raw/``);
* the versions of Python and of the numerical packages.

A change to any of them is a new key, so a cache hit can only return what the same call
computed before. Every random draw in the project is seeded through the arguments, which
is what makes the results deterministic and therefore safe to cache.

Entries are pickles written atomically (:func:`vanguard.io.write_bytes`) to
``data/processed/cache/`` (or ``$VANGUARD_CACHE_DIR``); each repeats its own key, and an
entry that cannot be read or whose key differs is recomputed, never trusted. The cache
is local and written only by this package: delete the folder at any time. Set
``VANGUARD_CACHE=off`` to bypass it.

Warnings raised while computing are stored with the result and raised again on every
call, hit or miss, so an executed notebook prints the same thing either way.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import pickle
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vanguard import config
from vanguard.io import write_bytes

CACHE_ENV = "VANGUARD_CACHE"
"""Environment variable: ``off`` (or ``0``, ``no``, ``false``) disables the cache."""

CACHE_DIR_ENV = "VANGUARD_CACHE_DIR"
"""Environment variable: folder of the cache (default ``data/processed/cache``)."""

KEY_PACKAGES: tuple[str, ...] = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "statsmodels",
    "pyfixest",
    "moderndid",
    "numba",
)
"""Packages whose version is part of every key: an upgrade may change a number."""

_FORMAT = 1
"""Entry layout version; bump it to orphan every old entry."""


def cache_dir() -> Path:
    """Folder of the cache entries (``$VANGUARD_CACHE_DIR`` or ``data/processed/cache``)."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else config.DATA_PROCESSED / "cache"


def enabled() -> bool:
    """False when ``$VANGUARD_CACHE`` is ``off``, ``0``, ``no`` or ``false``."""
    return os.environ.get(CACHE_ENV, "on").strip().lower() not in {"off", "0", "no", "false"}


def panel_digest(panel: pd.DataFrame) -> str:
    """sha256 of a DataFrame's content: values, index, column names, dtypes and attrs.

    Parameters
    ----------
    panel : pandas.DataFrame

    Returns
    -------
    str
        Hex digest; equal for equal frames, different when any cell, column name, column
        order, dtype or ``attrs`` entry differs.

    Raises
    ------
    TypeError
        If ``panel`` is not a DataFrame or its ``attrs`` are not JSON-serialisable.
    """
    if not isinstance(panel, pd.DataFrame):
        raise TypeError(f"panel must be a pandas DataFrame; found {type(panel).__name__}")
    h = hashlib.sha256()
    header = {
        "columns": [str(c) for c in panel.columns],
        "dtypes": [str(t) for t in panel.dtypes],
        "shape": list(panel.shape),
        "attrs": panel.attrs,
    }
    h.update(json.dumps(header, sort_keys=True, default=str).encode())
    h.update(pd.util.hash_pandas_object(panel.index, index=False).to_numpy().tobytes())
    for col in panel.columns:
        # hash column by column: one row hash over all columns would cost a copy of the frame
        values = pd.util.hash_pandas_object(panel[col], index=False).to_numpy()
        h.update(values.tobytes())
    return h.hexdigest()


def _files_digest(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@functools.cache
def code_digest() -> str:
    """sha256 of the package's Python source and of the reference data under ``data/raw/``.

    Downloaded NHS MAR files are left out: they reach an analysis only through the panel.

    Computed once per process: a notebook kernel sees the code it imported.

    Returns
    -------
    str
    """
    code = [p for p in config.SRC.rglob("*.py") if "__pycache__" not in p.parts]
    # downloaded MAR files reach an analysis only through the panel, which is keyed already
    raw = [
        p
        for p in (config.DATA_RAW.rglob("*") if config.DATA_RAW.is_dir() else [])
        if p.is_file() and config.DOWNLOADED_MAR_DIR not in p.parents
    ]
    return hashlib.sha256(
        (_files_digest(code, config.SRC) + _files_digest(raw, config.DATA_RAW)).encode()
    ).hexdigest()


@functools.cache
def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def cache_key(function: Callable, panel_sha: str, arguments: Mapping[str, Any]) -> str:
    """The key of one call: sha256 over function, panel, arguments, code and versions.

    Parameters
    ----------
    function : callable
        Identified by ``__module__`` and ``__qualname__``.
    panel_sha : str
        From :func:`panel_digest`.
    arguments : mapping
        Keyword arguments; JSON-serialisable values only (str, int, float, bool, None,
        lists, tuples and dicts of them).

    Returns
    -------
    str
        Hex sha256.

    Raises
    ------
    TypeError
        If an argument is not JSON-serialisable (a value without a canonical text form
        could not be told apart from another one).
    """
    payload = {
        "format": _FORMAT,
        "function": f"{function.__module__}.{function.__qualname__}",
        "panel": panel_sha,
        # json keeps 1 and 1.0 apart; tuples and lists coincide, as the callees treat them
        "arguments": arguments,
        "code": code_digest(),
        "versions": _versions(),
    }
    try:
        text = json.dumps(payload, sort_keys=True, allow_nan=True, default=_canonical)
    except TypeError as exc:
        raise TypeError(f"cache arguments must be JSON-serialisable: {exc}") from exc
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """JSON form of an argument object that defines ``to_dict`` (a specification)."""
    if hasattr(value, "to_dict"):
        return {"type": type(value).__qualname__, **value.to_dict()}
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _entry_path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.pkl"


def _load(key: str) -> dict | None:
    path = _entry_path(key)
    try:
        entry = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a damaged entry is a miss, then overwritten
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or "value" not in entry:
        return None
    return entry


_SHOWN: dict = {}
"""Warnings registry of replayed warnings: like a module's ``__warningregistry__``, it
lets the default filter show a repeated warning once per process."""


def _replay(caught: list[dict]) -> None:
    for w in caught:
        warnings.warn_explicit(
            w["message"], w["category"], w["filename"], w["lineno"], registry=_SHOWN
        )


def cached(function: Callable, panel: pd.DataFrame, /, **arguments: Any) -> Any:
    """``function(panel, **arguments)``, from the cache when the same call ran before.

    Parameters
    ----------
    function : callable
        Deterministic given its arguments (seed every random draw through them).
    panel : pandas.DataFrame
        First positional argument; keyed by content (:func:`panel_digest`).
    **arguments
        Keyword arguments, JSON-serialisable.

    Returns
    -------
    object
        The function's result (a fresh copy on every call: callers may modify it).

    Raises
    ------
    TypeError
        If an argument is not JSON-serialisable.
    Exception
        Whatever ``function`` raises; failures are not cached.
    """
    if not enabled():
        return function(panel, **arguments)
    key = cache_key(function, panel_digest(panel), arguments)
    entry = _load(key)
    if entry is None:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            value = function(panel, **arguments)
        seen: set[tuple] = set()
        caught = []
        for r in records:
            # shown once per place and message, as the default warning filter would
            ident = (r.category, str(r.message), r.filename, r.lineno)
            if ident not in seen:
                seen.add(ident)
                caught.append(
                    {
                        "category": r.category,
                        "message": str(r.message),
                        "filename": r.filename,
                        "lineno": r.lineno,
                    }
                )
        entry = {"key": key, "value": value, "warnings": caught}
        write_bytes(_entry_path(key), pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
    _replay(entry["warnings"])
    # hand out a copy so that a caller editing the result cannot change the next hit
    return pickle.loads(pickle.dumps(entry["value"], protocol=pickle.HIGHEST_PROTOCOL))
