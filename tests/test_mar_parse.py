"""MAR parser: small workbooks made here (every layout rule and bad input)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("xlwt")

from mar_xls import (  # noqa: E402
    HEADINGS,
    NON_ELECTIVE,
    ORGS,
    XlError,
    file_name,
    make_set,
    org_values,
    write_mar_xls,
)

from vanguard.errors import DataError  # noqa: E402
from vanguard.io import sha256_file  # noqa: E402
from vanguard.mar import parse  # noqa: E402

MONTHS = ["2013-04", "2013-05", "2013-06"]


def test_parse_file_reads_every_measure_and_org(tmp_path):
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04")
    t = parse.parse_file(f, "2013-04")
    assert set(t["measure"]) == set(parse.MEASURES.values())
    assert len(t) == (len(ORGS) + 1) * len(HEADINGS)
    vals = org_values("2013-04")
    got = t[(t.org_code == "B2B") & (t.measure == "non_elective_admissions")]["value"].item()
    assert got == vals["B2B"][NON_ELECTIVE]
    kinds = t.drop_duplicates("org_code").set_index("org_code")["org_type"].to_dict()
    assert kinds == {
        "ENG": "England",
        "X24": "NHS England",
        "A1A": "CCG",
        "B2B": "CCG",
        "C3C": "CCG",
    }
    assert (t["month"] == pd.Timestamp("2013-04-01")).all()


def test_month_comes_from_manifest_not_the_wrong_year_cell(tmp_path):
    # Some 2017-18 files carry year cells such as '2017-22'; they must not matter.
    f = write_mar_xls(tmp_path / "Jun_17.xls", "2017-06", year_cell="2017-22")
    t = parse.parse_file(f, "2017-06")
    assert set(t["month"]) == {pd.Timestamp("2017-06-01")}


def test_other_grouping_headers_and_padding_accepted(tmp_path):
    heads = [h + "  " for h in HEADINGS]  # trailing spaces as in the published headings
    f = write_mar_xls(tmp_path / "x.xls", "2013-04", headings=heads)
    assert len(parse.parse_file(f, "2013-04")) == (len(ORGS) + 1) * len(HEADINGS)


def test_parse_all_sorted_checked_and_sums(tmp_path):
    man = make_set(tmp_path, MONTHS)
    t = parse.parse_all(tmp_path, man)
    em = t[t.measure == "non_elective_admissions"]
    eng = em[em.org_type == "England"].set_index("month")["value"]
    rest = em[em.org_type != "England"].groupby("month")["value"].sum()
    np.testing.assert_array_equal(eng.to_numpy(), rest.to_numpy())
    assert list(t.columns) == list(parse.TIDY_COLUMNS)


# --- bad input -----------------------------------------------------------------------


def test_corrupt_xls(tmp_path):
    f = tmp_path / "Apr_13.xls"
    f.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(DataError, match=r"Apr_13\.xls.*readable Excel"):
        parse.parse_file(f, "2013-04")


def test_truncated_xls(tmp_path):
    good = write_mar_xls(tmp_path / "good.xls", "2013-04")
    bad = tmp_path / "Apr_13.xls"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match=r"Apr_13\.xls"):
        parse.parse_file(bad, "2013-04")


def test_empty_file(tmp_path):
    f = tmp_path / "Apr_13.xls"
    f.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        parse.parse_file(f, "2013-04")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        parse.parse_file(tmp_path / "nope.xls", "2013-04")


def test_wrong_sheet(tmp_path):
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", sheet="Provider")
    with pytest.raises(DataError, match="worksheet named 'Commissioner'"):
        parse.parse_file(f, "2013-04")


def test_renamed_column(tmp_path):
    heads = list(HEADINGS)
    heads[NON_ELECTIVE] = "Total Emergency Admissions"
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", headings=heads)
    with pytest.raises(DataError, match="total emergency admissions") as err:
        parse.parse_file(f, "2013-04")
    assert err.value.row == 14


def test_missing_column(tmp_path):
    heads = HEADINGS[:NON_ELECTIVE] + HEADINGS[NON_ELECTIVE + 1 :]
    vals = {k: v[:NON_ELECTIVE] + v[NON_ELECTIVE + 1 :] for k, v in org_values("2013-04").items()}
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", headings=heads, values=vals)
    with pytest.raises(DataError, match="total non-elective"):
        parse.parse_file(f, "2013-04")


def test_no_header_row(tmp_path):
    heads = list(HEADINGS)
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", headings=heads)
    import xlrd  # rewrite with the Org Code heading removed
    import xlwt

    src = xlrd.open_workbook(f).sheet_by_name("Commissioner")
    book = xlwt.Workbook()
    ws = book.add_sheet("Commissioner")
    for r in range(src.nrows):
        for c, v in enumerate(src.row_values(r)):
            ws.write(r, c, "Code" if v == "Org Code" else v)
    book.save(str(f))
    with pytest.raises(DataError, match="header row with 'Org Code'"):
        parse.parse_file(f, "2013-04")


def test_negative_count(tmp_path):
    vals = org_values("2013-04")
    vals["A1A"][2] = -5.0
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", values=vals)
    with pytest.raises(DataError, match="non-negative") as err:
        parse.parse_file(f, "2013-04")
    assert err.value.row == 18 and err.value.found == -5.0


def test_text_in_count_cell(tmp_path):
    vals = org_values("2013-04")
    vals["C3C"][0] = "n/a"
    eng = list(np.sum([org_values("2013-04")[c] for c, _ in ORGS], axis=0))
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", values=vals, england=eng)
    with pytest.raises(DataError, match="row 20.*non-negative count.*'n/a'"):
        parse.parse_file(f, "2013-04")


def test_unknown_organisation_kind(tmp_path):
    orgs = ORGS[:-1] + [("RXX", "SOME HOSPITAL TRUST")]
    vals = org_values("2013-04")
    vals["RXX"] = vals.pop("C3C")
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", values=vals, orgs=orgs)
    with pytest.raises(DataError, match="CCG, PCT, NHS England or England"):
        parse.parse_file(f, "2013-04")


def test_counts_without_organisation(tmp_path):
    f = write_mar_xls(
        tmp_path / "Apr_13.xls",
        "2013-04",
        extra_rows=[["", "2013-14", "APRIL", "", "", "", ""] + [1.0] * 14],
    )
    with pytest.raises(DataError, match="row 21.*Org Code or Org Name"):
        parse.parse_file(f, "2013-04")


def test_period_line_disagrees_with_manifest(tmp_path):
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", period="May 2013")
    with pytest.raises(DataError, match="April 2013.*May 2013"):
        parse.parse_file(f, "2013-04")


def test_commissioners_do_not_sum_to_england(tmp_path):
    eng = list(np.sum([org_values("2013-05")[c] for c, _ in ORGS], axis=0))
    eng[NON_ELECTIVE] += 7
    folder = tmp_path / "m"
    man = make_set(folder, MONTHS)
    write_mar_xls(folder / file_name("2013-05"), "2013-05", england=eng)
    with pytest.raises(DataError, match="2013-05: commissioners .* vs England"):
        parse.parse_all(folder, _remanifest(folder, man), verify=True)


def _remanifest(folder, man):
    from mar_xls import write_manifest

    months = pd.read_csv(man)["month"].tolist()
    return write_manifest(folder, months)


def test_duplicate_rows(tmp_path):
    man = make_set(tmp_path, MONTHS)
    t = parse.parse_all(tmp_path, man)
    dup = pd.concat([t, t.iloc[[5]]], ignore_index=True)
    with pytest.raises(DataError, match="one row per organisation, month and measure"):
        parse.check_table(dup)


def test_duplicate_org_inside_a_file(tmp_path):
    orgs = ORGS + [ORGS[1]]
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", orgs=orgs)
    t = parse.parse_file(f, "2013-04")
    with pytest.raises(DataError, match="A1A 2013-04 .* repeated"):
        parse.check_table(t, f)


def test_month_gap(tmp_path):
    man = make_set(tmp_path, MONTHS)
    t = parse.parse_all(tmp_path, man)
    with pytest.raises(DataError, match="contiguous months.*2013-05"):
        parse.check_table(t[t.month != pd.Timestamp("2013-05-01")])


def test_manifest_month_gap(tmp_path):
    man = make_set(tmp_path, MONTHS)
    m = pd.read_csv(man)
    m.drop(index=1).to_csv(man, index=False)
    with pytest.raises(DataError, match="contiguous months"):
        parse.parse_all(tmp_path, man)


def test_checksum_mismatch(tmp_path):
    man = make_set(tmp_path, MONTHS)
    write_mar_xls(tmp_path / file_name("2013-06"), "2013-06", values=org_values("2013-06", 9))
    with pytest.raises(DataError, match=r"Jun_13\.xls.*sha256"):
        parse.parse_all(tmp_path, man)


def test_negative_value_in_table(tmp_path):
    man = make_set(tmp_path, MONTHS)
    t = parse.parse_all(tmp_path, man)
    t.loc[3, "value"] = -1
    with pytest.raises(DataError, match="non-negative counts"):
        parse.check_table(t)


# --- cache, atomicity, raw files untouched -----------------------------------------------


def test_cache_is_used_and_refreshed(tmp_path, monkeypatch):
    man = make_set(tmp_path / "mar", MONTHS)
    cache = tmp_path / "out" / "nhs_mar.parquet"
    first = parse.load_mar(tmp_path / "mar", manifest=man, cache=cache)
    assert cache.is_file()

    def boom(*a, **k):
        raise AssertionError("re-parsed although the inputs did not change")

    monkeypatch.setattr(parse, "parse_all", boom)
    again = parse.load_mar(tmp_path / "mar", manifest=man, cache=cache)
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    monkeypatch.undo()
    # A changed input (new manifest, new file) makes a new key: parsed again.
    write_mar_xls(
        tmp_path / "mar" / file_name("2013-06"), "2013-06", values=org_values("2013-06", seed=5)
    )
    man2 = _remanifest(tmp_path / "mar", man)
    with pytest.warns(UserWarning, match="inputs changed"):
        third = parse.load_mar(tmp_path / "mar", manifest=man2, cache=cache)
    assert not third.equals(first)


def test_failed_parse_leaves_no_parquet_and_raw_files_unchanged(tmp_path):
    folder = tmp_path / "mar"
    man = make_set(folder, MONTHS)
    before = {p.name: sha256_file(p) for p in folder.glob("*.xls")}
    cache = tmp_path / "out" / "nhs_mar.parquet"
    parse.load_mar(folder, manifest=man, cache=cache)
    assert {p.name: sha256_file(p) for p in folder.glob("*.xls")} == before
    os.remove(cache)
    # Corrupt one file and list its new checksum: the parse itself must fail.
    (folder / file_name("2013-05")).write_bytes(b"not an excel file at all" * 50)
    man2 = _remanifest(folder, man)
    with pytest.raises(DataError, match="readable Excel"):
        parse.load_mar(folder, manifest=man2, cache=cache)
    assert not cache.exists()
    assert list(cache.parent.glob("*")) == []


@pytest.mark.parametrize("bad, shown", [(XlError("#REF!"), "'#REF!'"), (True, "1")])
def test_excel_error_and_boolean_cells_are_not_counts(tmp_path, bad, shown):
    # Both read back from xlrd as small numbers; only the cell type gives them away.
    vals = org_values("2013-04")
    vals["B2B"][4] = bad
    eng = list(np.sum([org_values("2013-04")[c] for c, _ in ORGS], axis=0))
    f = write_mar_xls(tmp_path / "Apr_13.xls", "2013-04", values=vals, england=eng)
    with pytest.raises(DataError, match="row 19.*planned daycase.*non-negative count") as err:
        parse.parse_file(f, "2013-04")
    assert str(err.value).endswith(f"found {shown}")


def test_command_line_reports_bad_input(monkeypatch, capsys):
    def bad(**kw):
        raise DataError("Apr_13.xls", "a readable Excel 97-2003 (.xls) workbook")

    monkeypatch.setattr(parse, "load_mar", bad)
    assert parse.main([]) == 1
    assert "Apr_13.xls: expected a readable Excel" in capsys.readouterr().err
