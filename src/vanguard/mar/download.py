"""Download the NHS Monthly Activity Return files listed in the committed manifest.

``make data-nhs`` (or ``vanguard-data-nhs``, or ``python -m vanguard.mar.download``)
fetches every file in ``data/raw/nhs_mar_manifest.csv`` from its original NHS England
address into ``data/raw/nhs-mar/``, checks its sha256, and skips files already present
and valid. Each file is written atomically, so an interrupted download never leaves a
partial file under the final name.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from vanguard import config
from vanguard.errors import DataError
from vanguard.io import atomic_write, sha256_file
from vanguard.mar.manifest import read_manifest

CHUNK = 1 << 16
USER_AGENT = "vanguard-did (research; python-urllib)"


class DownloadError(OSError):
    """A file could not be fetched (offline, server error, address moved)."""


def _fetch(url: str, dest: Path, sha256: str, opener: Callable, timeout: float, bar) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})

    def write(tmp: Path) -> None:
        h = hashlib.sha256()
        try:
            with opener(request, timeout=timeout) as resp, open(tmp, "wb") as out:
                while block := resp.read(CHUNK):
                    h.update(block)
                    out.write(block)
                    bar.update(len(block))
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DownloadError(
                f"{url}: could not download ({exc}). Check the network connection, or set "
                "VANGUARD_MAR_DIR (MAR files) or VANGUARD_POPULATION_DIR (population "
                "tables) to a folder that already holds the files"
            ) from exc
        if h.hexdigest() != sha256:
            raise DataError(url, f"sha256 {sha256} (from the manifest)", found=h.hexdigest())

    atomic_write(dest, write)


def download_all(
    manifest: str | Path = config.MAR_MANIFEST,
    dest: str | Path = config.DOWNLOADED_MAR_DIR,
    *,
    opener: Callable | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[Path]:
    """Fetch every file in the manifest that is missing or invalid.

    Parameters
    ----------
    manifest : str or pathlib.Path
        The MAR manifest (month, file, sha256, bytes, source_url).
    dest : str or pathlib.Path
        Destination folder (created if missing).
    opener : callable, optional
        Called as ``opener(request, timeout=...)``; default ``urllib.request.urlopen``.
    timeout : float
        Seconds per request.
    progress : bool
        Show a tqdm progress bar (bytes) on stderr.

    Returns
    -------
    list of pathlib.Path
        Files downloaded now (files already valid are skipped).

    Raises
    ------
    DownloadError
        If a file cannot be fetched (offline, HTTP error).
    DataError
        If the manifest is invalid or a downloaded file's sha256 differs from it; the
        bad file is not kept.
    """
    opener = urllib.request.urlopen if opener is None else opener
    man = read_manifest(manifest)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    todo = []
    for rec in man.itertuples():
        path = dest / rec.file
        if path.is_file() and path.stat().st_size == rec.bytes and sha256_file(path) == rec.sha256:
            continue
        todo.append(rec)
    return fetch_all(
        [(r.source_url, dest / r.file, r.sha256, r.bytes) for r in todo],
        opener=opener,
        timeout=timeout,
        progress=progress,
        desc="MAR files",
    )


def fetch_all(
    todo: list[tuple[str, Path, str, int]],
    *,
    opener: Callable | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    desc: str = "files",
) -> list[Path]:
    """Fetch ``(url, dest, sha256, bytes)`` items, each written atomically and checked.

    Shared by the MAR and population downloads so both follow one rule: a file is
    only ever moved into place once its sha256 matches the manifest.

    Parameters
    ----------
    todo : list of (str, pathlib.Path, str, int)
        Address, destination, expected sha256 and size (for the progress bar).
    opener : callable, optional
        Called as ``opener(request, timeout=...)``; default ``urllib.request.urlopen``.
    timeout : float
        Seconds per request.
    progress : bool
        Show a tqdm progress bar (bytes) on stderr.
    desc : str
        Progress-bar label.

    Returns
    -------
    list of pathlib.Path
        The destinations written.

    Raises
    ------
    DownloadError
        If a file cannot be fetched.
    DataError
        If a downloaded file's sha256 differs from the one given; it is not kept.
    """
    opener = urllib.request.urlopen if opener is None else opener
    fetched = []
    with tqdm(
        total=int(sum(t[3] for t in todo)),
        unit="B",
        unit_scale=True,
        desc=desc,
        disable=not progress or not todo,
    ) as bar:
        for url, dest, sha, _ in todo:
            _fetch(url, Path(dest), sha, opener, timeout, bar)
            fetched.append(Path(dest))
    return fetched


def main(argv: list[str] | None = None) -> int:
    """Command line: download the MAR files; exit status 0 on success, 1 on failure.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    ap = argparse.ArgumentParser(prog="vanguard-data-nhs", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--manifest",
        type=Path,
        default=config.MAR_MANIFEST,
        help="manifest CSV (default: data/raw/nhs_mar_manifest.csv)",
    )
    ap.add_argument(
        "--dest",
        type=Path,
        default=config.DOWNLOADED_MAR_DIR,
        help="destination folder (default: data/raw/nhs-mar)",
    )
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        got = download_all(args.manifest, args.dest, timeout=args.timeout, progress=not args.quiet)
    except (DownloadError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = len(read_manifest(args.manifest))
    print(
        f"{len(got)} file(s) downloaded, {total - len(got)} already present and valid, "
        f"in {args.dest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
