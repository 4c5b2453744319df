"""MAR download: local file:// sources and stand-in openers, never the network."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request

import pandas as pd
import pytest

from vanguard.errors import DataError
from vanguard.mar import download


def _remote(tmp_path, n=3):
    """A folder standing in for the NHS England site, and a manifest pointing at it."""
    remote = tmp_path / "remote"
    remote.mkdir()
    rows = []
    for k in range(n):
        name = f"M{k}.xls"
        data = bytes([k]) * (1000 + 37 * k)
        (remote / name).write_bytes(data)
        rows.append(
            {
                "month": f"2013-{k + 4:02d}",
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "source_url": (remote / name).as_uri(),
            }
        )
    man = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(man, index=False)
    return remote, man


def test_downloads_verifies_and_skips_valid_files(tmp_path):
    remote, man = _remote(tmp_path)
    dest = tmp_path / "dest"
    calls = []

    def opener(req, timeout):
        calls.append(req.full_url)
        return urllib.request.urlopen(req, timeout=timeout)

    got = download.download_all(man, dest, opener=opener, progress=False)
    assert len(got) == 3 and len(calls) == 3
    for f in remote.iterdir():
        assert (dest / f.name).read_bytes() == f.read_bytes()
    # Second run: everything present and valid, nothing fetched.
    assert download.download_all(man, dest, opener=opener, progress=False) == []
    assert len(calls) == 3
    # A damaged local copy is fetched again.
    (dest / "M1.xls").write_bytes(b"damaged")
    assert download.download_all(man, dest, opener=opener, progress=False) == [dest / "M1.xls"]
    assert len(calls) == 4


def test_checksum_mismatch_keeps_nothing(tmp_path):
    remote, man = _remote(tmp_path)
    (remote / "M2.xls").write_bytes(b"changed upstream")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=r"M2\.xls: expected sha256"):
        download.download_all(man, dest, progress=False)
    assert not (dest / "M2.xls").exists()
    assert not [p for p in dest.iterdir() if p.name.endswith(".tmp")]


def test_offline_fails_clearly_and_leaves_no_partial_file(tmp_path):
    _, man = _remote(tmp_path)
    dest = tmp_path / "dest"

    def offline(req, timeout):
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(download.DownloadError, match="could not download.*VANGUARD_MAR_DIR"):
        download.download_all(man, dest, opener=offline, progress=False)
    assert list(dest.iterdir()) == []


def test_connection_dropped_mid_file(tmp_path):
    _, man = _remote(tmp_path)
    dest = tmp_path / "dest"

    class Dropping:
        def __init__(self):
            self.n = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size):
            self.n += 1
            if self.n > 1:
                raise ConnectionResetError("reset by peer")
            return b"\x00" * 10

    with pytest.raises(download.DownloadError, match="reset by peer"):
        download.download_all(man, dest, opener=lambda req, timeout: Dropping(), progress=False)
    assert list(dest.iterdir()) == []


def test_main_reports_failure_with_exit_status(tmp_path, monkeypatch, capsys):
    _, man = _remote(tmp_path)

    def offline(req, timeout):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    status = download.main(["--manifest", str(man), "--dest", str(tmp_path / "d"), "--quiet"])
    assert status == 1
    assert "could not download" in capsys.readouterr().err


def test_main_success(tmp_path, capsys):
    _, man = _remote(tmp_path)
    status = download.main(["--manifest", str(man), "--dest", str(tmp_path / "d"), "--quiet"])
    assert status == 0
    assert "3 file(s) downloaded" in capsys.readouterr().out


def test_bad_manifest(tmp_path):
    _, man = _remote(tmp_path)
    m = pd.read_csv(man)
    m.loc[1, "sha256"] = "abc"
    m.to_csv(man, index=False)
    with pytest.raises(DataError, match=r"row 3, column 'sha256'"):
        download.download_all(man, tmp_path / "d", progress=False)


def test_committed_manifest_is_valid():
    from vanguard import config
    from vanguard.mar.manifest import read_manifest

    m = read_manifest(config.MAR_MANIFEST)
    assert len(m) == 93
    assert m["month"].iloc[0] == pd.Timestamp("2012-04-01")
    assert m["month"].iloc[-1] == pd.Timestamp("2019-12-01")
    assert m["source_url"].str.startswith("https://").all()
