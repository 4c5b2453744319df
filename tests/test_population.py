"""Population denominators: manifest, readers, the monthly rule, and the README sanity figures.

The tests marked ``shared`` need the population tables (``../shared/data/population`` or
``$VANGUARD_POPULATION_DIR``) and skip cleanly without them.
"""

from __future__ import annotations

import hashlib
import io
import shutil

import pandas as pd
import pytest

from vanguard import population as pop
from vanguard.errors import DataError
from vanguard.io import sha256_file
from vanguard.mar.download import DownloadError

FOLDER = pop.population_dir()
MANIFEST = pop.read_population_manifest()
HAVE_FILES = all((FOLDER / f).is_file() for f in MANIFEST["file"])
needs_files = pytest.mark.skipif(
    not HAVE_FILES, reason=f"population tables not found in {FOLDER}"
)


# --- without the files --------------------------------------------------------------------


def _manifest(tmp_path, rows):
    f = tmp_path / "manifest.csv"
    pd.DataFrame(rows, columns=list(pop.MANIFEST_COLUMNS)).to_csv(f, index=False)
    return f


def _row(**kw):
    base = {"file": "a.csv", "sha256": "0" * 64, "bytes": "3", "source_url": "https://x/a.csv",
            "direct": "yes", "what_it_is": "", "licence": "OGL"}
    return {**base, **kw}


@pytest.mark.parametrize(
    ("bad", "column"),
    [
        ({"file": "../a.csv"}, "file"),
        ({"sha256": "abc"}, "sha256"),
        ({"bytes": "0"}, "bytes"),
        ({"direct": "maybe"}, "direct"),
        ({"source_url": "ftp://x"}, "source_url"),
    ],
)
def test_manifest_errors_name_row_and_column(tmp_path, bad, column):
    f = _manifest(tmp_path, [_row(file="ok.csv"), _row(**bad)])
    with pytest.raises(DataError, match=rf"row 3, column '{column}'"):
        pop.read_population_manifest(f)


def test_committed_manifest_lists_every_table_the_rule_reads():
    files = set(MANIFEST["file"])
    assert {pop.MID2015, pop.CCG19_SERIES, pop.MID2018, *pop.LOOKUPS} <= files
    assert sum(f.startswith(pop.GP_LIST_DIR + "/") for f in files) == 12
    assert MANIFEST["sha256"].is_unique


def test_population_dir_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VANGUARD_POPULATION_DIR", str(tmp_path))
    assert pop.population_dir() == tmp_path.resolve()


def test_check_files_names_a_changed_file(tmp_path):
    (tmp_path / "a.csv").write_text("abc")
    good = hashlib.sha256(b"abc").hexdigest()
    pop.check_files(tmp_path, _manifest(tmp_path, [_row(sha256=good)]))
    with pytest.raises(DataError, match=r"a\.csv: expected sha256 0{64}"):
        pop.check_files(tmp_path, _manifest(tmp_path, [_row()]))
    with pytest.raises(DataError, match="no such file"):
        pop.check_files(tmp_path, _manifest(tmp_path, [_row(file="b.csv")]))


class _Resp(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_checks_sha_and_refuses_extracted_tables(tmp_path):
    body = b"x,y\n1,2\n"
    sha = hashlib.sha256(body).hexdigest()
    man = _manifest(tmp_path, [_row(file="sub/t.csv", sha256=sha, bytes=str(len(body)))])
    got = pop.download_population(man, tmp_path / "out", opener=lambda r, timeout: _Resp(body),
                                  progress=False)
    assert got == [tmp_path / "out" / "sub" / "t.csv"]
    assert sha256_file(got[0]) == sha
    # Already present and valid: nothing fetched.
    assert pop.download_population(man, tmp_path / "out", opener=None, progress=False) == []
    bad = _manifest(tmp_path, [_row(file="u.csv", sha256=sha)])
    with pytest.raises(DataError, match="sha256"):
        pop.download_population(bad, tmp_path / "o2", opener=lambda r, timeout: _Resp(b"no"),
                                progress=False)
    assert not (tmp_path / "o2" / "u.csv").exists()
    extracted = _manifest(tmp_path, [_row(file="v.csv", direct="no")])
    with pytest.raises(DownloadError, match="no single-file address"):
        pop.download_population(extracted, tmp_path / "o3", progress=False)


def test_interpolation_is_linear_between_points_and_flat_beyond():
    pts = pd.DataFrame({"k": ["a", "a"], "month": pd.to_datetime(["2015-07-01", "2016-07-01"]),
                        "v": [100.0, 112.0]})
    months = pd.date_range("2015-01-01", "2017-01-01", freq="MS")
    out = pop._interp(pts, "k", "v", months).set_index("month")["v"]
    assert out["2015-01-01"] == 100.0 and out["2017-01-01"] == 112.0
    assert out["2016-01-01"] == pytest.approx(106.0)
    assert out["2015-08-01"] == pytest.approx(101.0)


def test_footprint_before_april_2015_is_refused(tmp_path):
    with pytest.raises(ValueError, match="April 2015 or later"):
        pop.monthly_population(["2014-01-01"], "2014-04", folder=tmp_path, verify=False)


# --- with the files -----------------------------------------------------------------------

MONTHS = pd.date_range("2013-04-01", "2019-12-01", freq="MS")


@pytest.fixture(scope="module")
def monthly():
    return pop.monthly_population(MONTHS, "2017-04")


@pytest.mark.shared
@needs_files
def test_readme_sanity_figures_mid_2015(monthly):
    at = monthly[monthly["month"] == pop.ANCHOR_MONTH].set_index("area")["population"]
    # README: Airedale, Wharfedale and Craven about 159,000; Wakefield about 334,000;
    # Rushcliffe about 114,000; England 54.79 million (all ONS mid-2015).
    assert at["02N"] == pytest.approx(159_000, rel=0.005)
    assert at["03R"] == pytest.approx(334_000, rel=0.005)
    assert at["04N"] == pytest.approx(114_000, rel=0.005)
    assert at.sum() == pytest.approx(54.79e6, abs=0.005e6)
    assert len(at) == 206


@pytest.mark.shared
@needs_files
def test_files_match_the_manifest_and_are_untouched():
    before = {f: sha256_file(FOLDER / f) for f in MANIFEST["file"]}
    assert before == dict(zip(MANIFEST["file"], MANIFEST["sha256"], strict=True))
    shared_man = FOLDER / "MANIFEST.csv"
    if shared_man.is_file():
        ref = pd.read_csv(shared_man, dtype=str).set_index("file")["sha256"]
        assert ref.to_dict() == dict(zip(MANIFEST["file"], MANIFEST["sha256"], strict=True))


@pytest.mark.shared
@needs_files
def test_monthly_series_follow_the_rule(monthly):
    eng = monthly.groupby("month")["population"].sum()
    # No steps: England moves smoothly (under 0.3 % a month) and grows 2013 -> 2018.
    assert eng.pct_change().abs().max() < 0.003
    assert eng["2018-07-01"] > eng["2015-07-01"] > eng["2013-04-01"]
    # Flat after the last mid-year (July 2018).
    assert eng["2019-12-01"] == eng["2018-07-01"]
    # After July 2015 the area follows its 2019 unit's ONS estimates exactly, e.g.
    # Wakefield (unchanged by any merger) at mid-2016.
    s19 = pop.read_ccg19_series().set_index(["ccg", "year"])["population"]
    wak = monthly[monthly["area"] == "03R"].set_index("month")["population"]
    assert wak["2016-07-01"] / wak["2015-07-01"] == pytest.approx(
        s19["03R", 2016] / s19["03R", 2015])
    # Before July 2015, it follows its GP list size.
    gp = pop.read_gp_lists()
    lw = gp[gp["ccg"] == "03R"].set_index("month")["list_total"]
    assert wak["2014-04-01"] / wak["2015-07-01"] == pytest.approx(
        lw["2014-04-01"] / lw["2015-07-01"])


@pytest.mark.shared
@needs_files
def test_age_shares_are_the_ons_shares_in_july_2015(monthly):
    m15 = pop.read_mid2015().set_index("ccg")
    at = monthly[monthly["month"] == pop.ANCHOR_MONTH].set_index("area")
    assert at.loc["03R", "population_65plus"] == pytest.approx(m15.loc["03R", "population_65plus"])
    assert at.loc["04N", "population_75plus"] == pytest.approx(m15.loc["04N", "population_75plus"])
    share65 = monthly["population_65plus"] / monthly["population"]
    share75 = monthly["population_75plus"] / monthly["population"]
    assert share65.between(0.05, 0.35).all() and (share75 < share65).all()
    eng = monthly.groupby("month")[["population", "population_65plus"]].sum()
    assert (eng["population_65plus"] / eng["population"]).loc["2015-07-01"] == pytest.approx(
        0.178, abs=0.005)


@pytest.mark.shared
@needs_files
def test_a_changed_table_is_refused(tmp_path):
    work = tmp_path / "pop"
    shutil.copytree(FOLDER, work)
    f = work / pop.CCG19_SERIES
    f.chmod(0o644)
    f.write_text(f.read_text().replace("159169", "159170"))
    with pytest.raises(DataError, match="expected sha256"):
        pop.monthly_population(MONTHS[:2], "2017-04", folder=work)
    # The readers themselves catch a malformed count, naming row and column.
    lines = f.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",lots"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 2, column 'total_pop'"):
        pop.read_ccg19_series(work)


def test_data_log_gives_the_manifest_checksum():
    import re

    from vanguard import config

    log = (config.DATA_RAW / "README.md").read_text(encoding="utf-8")
    row = next(ln for ln in log.splitlines() if ln.startswith("| `population_manifest.csv`"))
    assert re.findall(r"`([0-9a-f]{64})`", row) == [sha256_file(pop.POPULATION_MANIFEST)]
