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

Entries hold data, never code: a DataFrame result is stored as parquet, any other
result as JSON, and the warnings raised while computing it as JSON. An entry lives in
``data/processed/cache/`` (or ``$VANGUARD_CACHE_DIR``) as ``<key>.json`` (the key, the
kind of result, the sha256 of each payload file, the warnings) and, for a DataFrame,
``<key>.0.parquet`` (plus one part per DataFrame in its ``attrs``). Every file is
written atomically (:mod:`vanguard.io`), the payload first, so the JSON file is the
entry's commit mark. An entry that cannot be read, whose key differs or whose payload
does not match its sha256 is recomputed and replaced, never trusted. Reading one can
neither run code nor import a module (a warning class is looked up only among modules
already imported). A result that does not come back from its stored form exactly
as it was computed (a frame of mixed-type object columns, a tuple, a custom class) is
returned but not stored, so a hit can never differ from a miss.

Old entries are evicted (:func:`prune`, run once per process before its first write):
entries not used for :data:`MAX_AGE_DAYS` days (``$VANGUARD_CACHE_MAX_AGE_DAYS``), then
the least recently used until the folder is under :data:`MAX_BYTES`
(``$VANGUARD_CACHE_MAX_MB``); files of an older entry format (the former pickles
included) are removed on sight. A hit refreshes the entry's modification time, which is
what "used" means here. Delete the folder at any time. Set ``VANGUARD_CACHE=off`` to
bypass the cache.

Warnings raised while computing are stored with the result and raised again on every
call, hit or miss, so an executed notebook prints the same thing either way.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vanguard import config
from vanguard.io import sha256_file, write_bytes, write_text

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

_FORMAT = 2
"""Entry layout version; bump it to orphan every old entry (format 1 was pickles)."""

MAX_AGE_ENV = "VANGUARD_CACHE_MAX_AGE_DAYS"
MAX_MB_ENV = "VANGUARD_CACHE_MAX_MB"
MAX_AGE_DAYS = 60
"""Default: an entry not used for this many days is evicted."""
MAX_BYTES = 2 * 1024**3
"""Default cap on the cache folder (2 GiB); the least recently used entries go first."""


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


def _canonical(value: Any) -> Any:
    """Arguments as plain JSON values; option objects become ``{"__class__": ..., fields}``.

    The class name is part of the form, so two option classes with equal fields never
    share a key.
    """
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, (pd.DataFrame, pd.Series, type)):
        fields = to_dict()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.asdict(value)
    else:
        return value
    if not isinstance(fields, Mapping):
        raise TypeError(
            f"cache arguments must be JSON-serialisable: {type(value).__name__}.to_dict() "
            f"returned {type(fields).__name__}, not a mapping"
        )
    cls = type(value)
    return {"__class__": f"{cls.__module__}.{cls.__qualname__}", **_canonical(dict(fields))}


def cache_key(function: Callable, panel_sha: str, arguments: Mapping[str, Any]) -> str:
    """The key of one call: sha256 over function, panel, arguments, code and versions.

    Parameters
    ----------
    function : callable
        Identified by ``__module__`` and ``__qualname__``.
    panel_sha : str
        From :func:`panel_digest`.
    arguments : mapping
        Keyword arguments: str, int, float, bool, None, lists, tuples and dicts of them,
        and objects with a ``to_dict()`` method (such as small frozen dataclasses of
        options) or dataclass instances, keyed by their class and their fields.

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
        "arguments": _canonical(dict(arguments)),
        "code": code_digest(),
        "versions": _versions(),
    }
    try:
        text = json.dumps(payload, sort_keys=True, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"cache arguments must be JSON-serialisable: {exc}") from exc
    return hashlib.sha256(text.encode()).hexdigest()


def _meta_path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.json"


def _payload_path(key: str, part: int = 0) -> Path:
    return cache_dir() / key[:2] / f"{key}.{part}.parquet"


_JSON_LABEL_TYPES = (str, int, float, bool, type(None))


def _encode_frame(frame: pd.DataFrame, parts: list[bytes]) -> dict:
    """Describe a frame for the entry's JSON and append its parquet bytes to ``parts``.

    Parquet needs unique text column names and pandas can keep only JSON ``attrs``
    there, so the columns are stored as ``c0, c1, ...`` with the real labels (and the
    label dtype) in the JSON, and every ``attrs`` value is stored by this package: JSON
    values as they are, DataFrames (an event study's covariance matrix) as parts of
    their own.

    Raises
    ------
    TypeError
        If a column label or an ``attrs`` value has no exact JSON or parquet form.
    """
    import io

    labels = list(frame.columns)
    if not all(isinstance(x, _JSON_LABEL_TYPES) for x in labels):
        raise TypeError("column labels must be plain values")
    attrs: dict[str, Any] = {}
    for name, v in frame.attrs.items():
        if not isinstance(name, str):
            raise TypeError("attrs names must be text")
        if isinstance(v, pd.DataFrame):
            attrs[name] = {"frame": _encode_frame(v, parts)}
        elif _json_exact(v):
            attrs[name] = {"json": v}
        else:
            raise TypeError(f"attrs[{name!r}] has no exact stored form")
    body = frame.copy(deep=False)
    body.attrs = {}
    body.columns = [f"c{i}" for i in range(len(labels))]
    buf = io.BytesIO()
    body.to_parquet(buf, engine="pyarrow", index=None)
    parts.append(buf.getvalue())
    return {
        "part": len(parts) - 1,
        "columns": [(type(x).__name__, x) for x in labels],
        "columns_dtype": str(frame.columns.dtype),
        "columns_name": frame.columns.name if isinstance(
            frame.columns.name, _JSON_LABEL_TYPES) else None,
        "attrs": attrs,
    }


def _decode_frame(spec: dict, read_part: Callable[[int], pd.DataFrame]) -> pd.DataFrame:
    """Inverse of :func:`_encode_frame` (raises on anything malformed)."""
    frame = read_part(int(spec["part"]))
    labels = [v for _, v in spec["columns"]]
    if len(labels) != frame.shape[1]:
        raise ValueError("column count differs from the entry's description")
    frame.columns = pd.Index(labels, dtype=spec["columns_dtype"], name=spec["columns_name"])
    frame.attrs = {
        name: _decode_frame(v["frame"], read_part) if "frame" in v else v["json"]
        for name, v in spec["attrs"].items()
    }
    return frame


def _same(a: Any, b: Any) -> bool:
    """Exact equality of results: frames cell by cell, with dtypes, labels and attrs."""
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        if not (isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame)):
            return False
        try:
            pd.testing.assert_frame_equal(
                a, b, check_exact=True, check_index_type=True, check_column_type=True
            )
        except AssertionError:
            return False
        return a.attrs.keys() == b.attrs.keys() and all(
            _same(a.attrs[k], b.attrs[k]) for k in a.attrs
        )
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _json_exact(value: Any) -> bool:
    """Whether ``value`` survives JSON unchanged, type by type (a tuple does not)."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return True  # NaN and inf are written as the JSON extensions Python reads back
    if isinstance(value, list):
        return all(_json_exact(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_exact(v) for k, v in value.items())
    return False


def _load(key: str) -> dict | None:
    """The entry of ``key`` with its ``value``, or None for a miss or a damaged entry."""
    meta_path = _meta_path(key)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # unreadable or not JSON: damaged, recompute
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("format") != _FORMAT:
        return None
    caught = meta.get("warnings")
    if not isinstance(caught, list) or not all(isinstance(w, dict) for w in caught):
        return None
    kind = meta.get("kind")
    if kind == "json" and "value" in meta:
        value = meta["value"]
    elif kind == "frame":
        digests = meta.get("sha256")

        def read_part(i: int) -> pd.DataFrame:
            path = _payload_path(key, i)
            if sha256_file(path) != digests[i]:
                raise ValueError(f"{path.name}: content differs from its checksum")
            return pd.read_parquet(path, engine="pyarrow")

        try:
            value = _decode_frame(meta["frame"], read_part)
        except Exception:  # noqa: BLE001 - any unreadable or altered part is a miss, rewritten
            return None
    else:
        return None
    try:
        # a hit counts as a use: least-recently-used eviction keeps what is read
        os.utime(meta_path)
    except OSError:
        pass
    return {"key": key, "value": value, "warnings": caught}


def _store(key: str, value: Any, caught: list[dict]) -> bool:
    """Write an entry; False (and nothing stored) when ``value`` has no exact safe form."""
    meta: dict[str, Any] = {"format": _FORMAT, "key": key, "warnings": caught,
                            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if isinstance(value, pd.DataFrame):
        parts: list[bytes] = []
        # pandas and pyarrow may warn about what they cannot store; those warnings are
        # about the cache, not the analysis, and must not reach the notebook's output
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                spec = _encode_frame(value, parts)
            except Exception:  # noqa: BLE001 - no exact parquet form: do not cache
                return False
            paths = [write_bytes(_payload_path(key, i), data) for i, data in enumerate(parts)]
            try:
                back = _decode_frame(
                    spec, lambda i: pd.read_parquet(paths[i], engine="pyarrow"))
            except Exception:  # noqa: BLE001 - written but unreadable: do not cache
                back = None
        if back is None or not _same(value, back):
            for path in paths:
                path.unlink(missing_ok=True)
            return False
        meta.update(kind="frame", frame=spec,
                    sha256=[hashlib.sha256(data).hexdigest() for data in parts])
    elif _json_exact(value):
        meta.update(kind="json", value=value)
    else:
        return False
    try:
        text = json.dumps(meta, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return False
    write_text(_meta_path(key), text + "\n")
    return True


def _max_age_seconds() -> float:
    try:
        days = float(os.environ.get(MAX_AGE_ENV, MAX_AGE_DAYS))
    except ValueError:
        days = MAX_AGE_DAYS
    return days * 86400.0


def _max_bytes() -> int:
    try:
        return int(float(os.environ[MAX_MB_ENV]) * 1024**2)
    except (KeyError, ValueError):
        return MAX_BYTES


def prune(
    folder: Path | None = None,
    *,
    max_age_days: float | None = None,
    max_bytes: int | None = None,
    now: float | None = None,
) -> list[Path]:
    """Evict old cache entries.

    In order: files of another entry format (``*.pkl`` and other unknown names) and
    temporary files older than an hour; entries whose JSON file was last used more than
    ``max_age_days`` ago; then the least recently used entries until the folder holds at
    most ``max_bytes``.

    Parameters
    ----------
    folder : pathlib.Path, optional
        Default :func:`cache_dir`.
    max_age_days : float, optional
        Default ``$VANGUARD_CACHE_MAX_AGE_DAYS`` or :data:`MAX_AGE_DAYS`.
    max_bytes : int, optional
        Default ``$VANGUARD_CACHE_MAX_MB`` (in MiB) or :data:`MAX_BYTES`.
    now : float, optional
        Current time (seconds since the epoch); for tests.

    Returns
    -------
    list of pathlib.Path
        The files removed.

    Raises
    ------
    OSError
        Never for a file another process removed first; other filesystem errors are
        passed on only from listing the folder.
    """
    folder = cache_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    max_age = _max_age_seconds() if max_age_days is None else max_age_days * 86400.0
    cap = _max_bytes() if max_bytes is None else max_bytes
    removed: list[Path] = []

    def remove(path: Path) -> None:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:  # another process pruned it first
            pass

    entries: dict[str, dict] = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        name = path.name
        if name.startswith(".") and name.endswith(".tmp"):
            # an interrupted write; a live writer finishes within seconds
            if now - st.st_mtime > 3600:
                remove(path)
            continue
        stem, _, suffix = name.partition(".")
        ours = suffix == "json" or (
            suffix.endswith(".parquet") and suffix.removesuffix(".parquet").isdigit()
        )
        if not ours or len(stem) != 64:
            remove(path)  # the pickles of format 1 and anything else not ours
            continue
        e = entries.setdefault(stem, {"files": [], "size": 0, "used": 0.0})
        e["files"].append(path)
        e["size"] += st.st_size
        if suffix == "json":
            e["used"] = st.st_mtime
    total = 0
    keep = []
    for key, e in entries.items():
        if not e["used"]:
            # a payload without its JSON: a write in progress, or left by a crash
            e["used"] = min(p.stat().st_mtime for p in e["files"] if p.exists()) \
                if any(p.exists() for p in e["files"]) else 0.0
        if now - e["used"] > max_age:
            for p in sorted(e["files"], key=lambda p: p.suffix != ".json"):
                remove(p)  # the JSON first: without it the entry is already a miss
        else:
            keep.append((e["used"], key, e))
            total += e["size"]
    for _, _, e in sorted(keep, key=lambda t: (t[0], t[1])):
        if total <= cap:
            break
        for p in sorted(e["files"], key=lambda p: p.suffix != ".json"):
            remove(p)
        total -= e["size"]
    return removed


_PRUNED: set[Path] = set()


def _prune_once() -> None:
    folder = cache_dir()
    if folder in _PRUNED:
        return
    _PRUNED.add(folder)
    try:
        prune(folder)
    except OSError:  # eviction is housekeeping: it never fails an analysis
        pass


_SHOWN: dict = {}
"""Warnings registry of replayed warnings: like a module's ``__warningregistry__``, it
lets the default filter show a repeated warning once per process."""


def _category_name(category: type) -> str:
    return f"{category.__module__}.{category.__qualname__}"


def _category(name: Any) -> type[Warning]:
    """The warning class named in an entry, without importing anything.

    Only classes of modules this process has already imported are found: an entry can
    never make the kernel import a module (which would run its code). Anything else is
    replayed as a UserWarning.
    """
    if isinstance(name, str) and "." in name:
        module, _, qualname = name.rpartition(".")
        owner = builtins if module == "builtins" else sys.modules.get(module)
        obj = getattr(owner, qualname, None) if owner is not None else None
        if isinstance(obj, type) and issubclass(obj, Warning):
            return obj
    return UserWarning


def _replay(caught: list[dict]) -> None:
    for w in caught:
        lineno = w.get("lineno")
        warnings.warn_explicit(
            str(w.get("message", "")),
            _category(w.get("category")),
            str(w.get("filename", "<cache>")),
            lineno if isinstance(lineno, int) else 0,
            registry=_SHOWN,
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
        Keyword arguments, JSON-serialisable, or option objects with ``to_dict()``
        (see :func:`cache_key`); passed to ``function`` unchanged.

    Returns
    -------
    object
        The function's result. A hit is read afresh from its file, so callers may modify
        what they get.

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
    if entry is not None:
        _replay(entry["warnings"])
        return entry["value"]
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
                    "category": _category_name(r.category),
                    "message": str(r.message),
                    "filename": str(r.filename),
                    "lineno": int(r.lineno or 0),
                }
            )
    _prune_once()
    _store(key, value, caught)
    _replay(caught)
    return value
