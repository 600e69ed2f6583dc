"""Readers: every format, encoding and convention the data contract allows."""

from __future__ import annotations

import datetime as dt
import re
import socket

import polars as pl
import pytest
from fixtures_raw import (
    aida_firms,
    census_rows,
    llma_rows,
    subsidiaries,
    survey_rows,
    write_aida_xlsx,
    write_csv,
    write_parquet,
    write_survey_csv,
)

from offshoring import geo
from offshoring.readers import aida, reference
from offshoring.readers.column_map import ColumnMap, as_column_map, load_column_map
from offshoring.readers.common import detect_separator, header_line, number_from_text, to_utf8
from offshoring.readers.survey import SURVEY_COLUMNS, discover_survey_files, read_survey
from offshoring.validation import ContractError

YEAR = 2008


def _expected(rows):
    return pl.DataFrame(rows).select(SURVEY_COLUMNS)


def _check_same(df: pl.DataFrame, rows) -> None:
    exp = _expected(rows)
    assert df.height == len(rows)
    assert df["tax_code"].to_list() == exp["tax_code"].to_list()
    assert df["filing_date"].to_list() == exp["filing_date"].to_list()
    assert df["ateco_2007"].to_list() == exp["ateco_2007"].to_list()
    assert df["municipality_code"].to_list() == exp["municipality_code"].to_list()
    for c in ("turnover", "employees", "export_share", "subcontracting_other", "net_income"):
        assert df[c].to_list() == pytest.approx(exp[c].to_list(), nan_ok=True), c
    assert df["credit_access"].to_list() == exp["credit_access"].to_list()
    assert df["source_row"].to_list() == list(range(1, len(rows) + 1))


@pytest.mark.parametrize(
    "kw",
    [
        pytest.param(dict(italian=True, encoding="cp1252"), id="italian-cp1252"),
        pytest.param(dict(italian=True, encoding="utf-8", date_style="iso", ateco_dots=False), id="italian-utf8-iso"),
        pytest.param(dict(italian=False, encoding="utf-8", date_style="iso", ateco_dots=False), id="plain-utf8"),
        pytest.param(dict(italian=False, encoding="cp1252", date_style="dmy"), id="plain-cp1252-dmy"),
        pytest.param(dict(italian=True, encoding="utf-8", gz=True), id="italian-gzip"),
    ],
)
def test_survey_csv_variants(tmp_path, kw):
    rows = survey_rows(30, YEAR)
    name = "survey_2008.csv.gz" if kw.get("gz") else "survey_2008.csv"
    path = write_survey_csv(tmp_path / name, rows, **kw)
    _check_same(read_survey(path, YEAR), rows)


def test_survey_cp1252_headers_detected(tmp_path):
    rows = survey_rows(5, YEAR)
    headers = {"market_area": "Area di mercato più ampia", "year": "Anno d'imposta"}
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows, encoding="cp1252", headers=headers)
    assert b"\xf9" in path.read_bytes()  # 'ù' in cp1252, invalid as UTF-8
    cmap = as_column_map({"survey": {"Area di mercato più ampia": "market_area", "ANNO D'IMPOSTA": "year"}})
    df = read_survey(path, YEAR, cmap)
    assert df["market_area"].to_list() == [r["market_area"] for r in rows]


def test_survey_parquet_native_types(tmp_path):
    rows = survey_rows(12, YEAR)
    path = write_parquet(tmp_path / "survey_2008.parquet", rows, columns=SURVEY_COLUMNS)
    _check_same(read_survey(path, YEAR), rows)


def test_survey_parquet_lost_leading_zeros_and_nan(tmp_path):
    rows = survey_rows(6, YEAR)
    rows[2]["turnover"] = float("nan")  # pandas's missing value
    path = write_parquet(tmp_path / "survey_2008.parquet", rows, columns=SURVEY_COLUMNS,
                         overrides={"municipality_code": pl.Int64, "year": pl.Float64})
    df = read_survey(path, YEAR)
    assert df["municipality_code"].to_list() == [r["municipality_code"] for r in rows]
    assert df["turnover"][2] is None
    assert df["year"].dtype == pl.Int32


def test_italian_synonyms_and_value_map(tmp_path):
    rows = survey_rows(3, YEAR)
    cells = {(0, "market_area"): "Nazionale", (1, "market_area"): " LOCALE ", (2, "market_area"): "extra-ue"}
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows, raw_cells=cells)
    cmap = as_column_map({"survey": {"columns": {}, "values": {"market_area": {"Extra-UE": "international"}}}})
    df = read_survey(path, YEAR, cmap)
    assert df["market_area"].to_list() == ["national", "local", "international"]


def test_column_map_file_renames_and_sets_options(tmp_path):
    rows = survey_rows(4, YEAR)
    headers = {c: f"COL_{c.upper()}" for c in SURVEY_COLUMNS}
    path = write_survey_csv(tmp_path / "survey" / "survey_2008.csv", rows, headers=headers,
                            italian=False, separator="|")
    (tmp_path / "column_map.yaml").write_text(
        "survey:\n  separator: '|'\n  decimal: '.'\n  columns:\n"
        + "".join(f"    COL_{c.upper()}: {c}\n" for c in SURVEY_COLUMNS),
        encoding="utf-8",
    )
    cmap = load_column_map(tmp_path)
    _check_same(read_survey(path, YEAR, cmap), rows)


def test_missing_column_lists_missing_and_found(tmp_path):
    rows = survey_rows(3, YEAR)
    cols = [c for c in SURVEY_COLUMNS if c not in ("turnover", "supplier")]
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows, columns=cols,
                            headers={"employees": "Addetti"})
    with pytest.raises(ContractError) as err:
        read_survey(path, YEAR)
    msg = str(err.value)
    assert "survey_2008.csv" in msg and "missing_columns" in msg
    assert "missing: turnover, employees, supplier" in msg
    assert "'Addetti'" in msg and "'tax_code'" in msg


def test_header_line_breaks_and_separator_detection():
    text = '"Codice\nComune";"Nome, lungo";x\n001001;"A;b";1\n'
    assert header_line(text) == '"Codice\nComune";"Nome, lungo";x'
    assert detect_separator(header_line(text)) == ";"
    assert detect_separator("a,b,c") == ","
    assert detect_separator("a\tb\tc") == "\t"


def test_encoding_detection():
    assert to_utf8("perché".encode("utf-8"))[1] == "utf-8"
    data, enc = to_utf8("perché".encode("cp1252"))
    assert enc == "cp1252" and data.decode("utf-8") == "perché"
    assert to_utf8(b"\xef\xbb\xbfabc")[0] == b"abc"


@pytest.mark.parametrize(
    "text,decimal,dot_thousands,expected",
    [
        ("1234,5", ",", False, 1234.5),
        ("1.234,5", ",", False, 1234.5),
        ("1.234.567", ",", False, 1234567.0),
        ("1.234", ",", True, 1234.0),
        ("1.5", ",", False, 1.5),
        ("-12,25", ",", False, -12.25),
        ("1,234,567.5", ".", False, 1234567.5),
        ("1.234.567", ".", True, 1234567.0),
        ("1.234", ".", True, 1234.0),
        ("1.234", ".", False, 1.234),
        ("1e3", ".", False, 1000.0),
        ("abc", ",", False, None),
        ("1,2,3", ",", False, None),
    ],
)
def test_number_parsing(text, decimal, dot_thousands, expected):
    out = pl.DataFrame({"s": [text]}).select(
        number_from_text(pl.col("s"), decimal=decimal, dot_thousands=dot_thousands)
    ).item()
    assert out == (pytest.approx(expected) if expected is not None else None)


def test_discover_survey_files(tmp_path):
    rows = survey_rows(2, 2007)
    write_survey_csv(tmp_path / "survey" / "survey_2007.csv", rows)
    write_survey_csv(tmp_path / "survey" / "survey_2009.csv.gz", survey_rows(2, 2009), gz=True)
    write_parquet(tmp_path / "survey" / "survey_2010.parquet", survey_rows(2, 2010), columns=SURVEY_COLUMNS)
    (tmp_path / "survey" / "notes.txt").write_text("x")  # what is no delivery is left alone
    (tmp_path / "survey" / "README.md").write_text("x")
    (tmp_path / "survey" / ".DS_Store").write_text("x")
    (tmp_path / "survey" / "._survey_2011.csv").write_text("x")  # macOS's shadow of a copied file
    (tmp_path / "survey" / "~$survey_2011.xlsx").write_text("x")  # the lock file of an open workbook
    (tmp_path / "survey" / "old").mkdir()
    (tmp_path / "survey" / "old" / "notes.txt").write_text("x")
    found = discover_survey_files(tmp_path)
    assert list(found) == [2007, 2009, 2010]
    assert found[2009].name == "survey_2009.csv.gz"
    # the raw folder is what is given: the survey folder itself holds deliveries at its top
    with pytest.raises(ContractError, match="at the top of the raw folder"):
        discover_survey_files(tmp_path / "survey")
    write_survey_csv(tmp_path / "survey" / "survey_2007.csv.gz", rows, gz=True)
    with pytest.raises(ContractError, match="more than one delivery.*2007"):
        discover_survey_files(tmp_path)


def test_survey_files_at_the_top_of_the_raw_folder_are_refused(tmp_path):
    """The contract's place is <raw>/survey/: deliveries beside it were read, but nothing else
    (the no-op's file hashes, the column map, the municipality list) took them for deliveries, so
    a corrected one was never loaded. Refused, naming them and where they go."""
    from offshoring.readers.layout import discover_raw_files

    write_survey_csv(tmp_path / "survey_2011.csv", survey_rows(2, 2011))
    write_survey_csv(tmp_path / "survey_2012.csv", survey_rows(2, 2012))
    (tmp_path / "column_map.yaml").write_text("survey:\n  RICAVI: turnover\n")
    with pytest.raises(ContractError) as err:
        discover_survey_files(tmp_path)
    msg = str(err.value)
    assert [f.rule for f in err.value.failures] == ["misplaced_delivery"]
    assert "survey_2011.csv and survey_2012.csv are at the top of the raw folder" in msg
    assert f"move them into {tmp_path / 'survey'}/" in msg
    with pytest.raises(ContractError, match="at the top of the raw folder"):
        discover_raw_files(tmp_path)
    # also beside a survey folder: the one at the top would be left out
    (tmp_path / "survey").mkdir()
    (tmp_path / "survey_2011.csv").rename(tmp_path / "survey" / "survey_2011.csv")
    with pytest.raises(ContractError, match=r"survey_2012\.csv is at the top of the raw folder"):
        discover_survey_files(tmp_path)
    (tmp_path / "survey_2012.csv").rename(tmp_path / "survey" / "survey_2012.csv")
    assert list(discover_survey_files(tmp_path)) == [2011, 2012]
    # a survey folder spelt otherwise
    (tmp_path / "survey").rename(tmp_path / "Survey")
    with pytest.raises(ContractError, match="the survey folder is called Survey"):
        discover_survey_files(tmp_path)


@pytest.mark.parametrize("entry,named,advice", [
    ("2013/survey_2013.csv", r"survey/2013/survey_2013\.csv is in a subfolder", r"move it there"),
    ("2013/notes.txt", r"survey/2013 is a folder named for a year", r"move survey/2013 out of the survey folder"),
    ("survey_2013.xlsx", r"survey/survey_2013\.xlsx looks like a delivery", r"save it as CSV \(survey_2013\.csv\)"),
    ("Survey 2013.xls", r"survey/Survey 2013\.xls looks like a delivery", r"save it as CSV \(survey_2013\.csv\)"),
    ("survey_2013.txt", r"survey/survey_2013\.txt looks like a delivery", r"rename it to survey_2013\.csv"),
    ("survey2013.csv", r"survey/survey2013\.csv looks like a delivery", r"rename it to survey_2013\.csv"),
    ("survey_2014.csv/data.csv", r"survey/survey_2014\.csv is a folder named like a delivery",
     r"put the file there"),
    ("survey_2014/data.csv", r"survey/survey_2014 is a folder named like a delivery", r"put the file there"),
    ("survey_2012_old.csv", r"survey/survey_2012_old\.csv looks like a delivery",
     r"copy of the 2012 delivery beside survey_2012\.csv.*remove it, or rename it to survey_2012_old\.csv\.bak"),
    ("survey_2012 - Copy.csv", r"survey/survey_2012 - Copy\.csv looks like a delivery",
     r"copy of the 2012 delivery beside survey_2012\.csv.*remove it"),
    ("survey_2012.xlsx", r"survey/survey_2012\.xlsx looks like a delivery", r"copy of the 2012 delivery"),
    ("returns_survey_2013.zip", r"survey/returns_survey_2013\.zip looks like a delivery",
     r"rename it to survey_2013\.csv"),
])
def test_entries_that_look_like_deliveries_but_would_not_be_read_are_refused(tmp_path, entry, named, advice):
    """A nested year folder, another name or extension, a copy beside a delivery, a folder named
    like a delivery: the run used to skip them without a word (2013 silently missing). Refused,
    naming the entry, the names that are read and what to do for its kind (the workbook advice
    for a workbook only)."""
    write_survey_csv(tmp_path / "survey" / "survey_2012.csv", survey_rows(2, 2012))
    target = tmp_path / "survey" / entry
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("x")
    with pytest.raises(ContractError) as err:
        discover_survey_files(tmp_path)
    msg = str(err.value)
    assert [f.rule for f in err.value.failures] == ["not_a_delivery"]
    assert re.search(named, msg), msg
    assert re.search(advice, msg), msg
    assert "survey_<YYYY>.csv, survey_<YYYY>.csv.gz or survey_<YYYY>.parquet" in msg
    if not entry.lower().endswith((".xlsx", ".xls")) or "2012" in entry:
        assert "save it as CSV" not in msg and "Excel" not in msg and "workbook" not in msg


@pytest.mark.parametrize("entry", [
    "survey/README_survey_2010.txt",
    "survey/survey_codebook_2010.pdf",
    "survey/codebook.xlsx",
    "survey/variable_list.csv",
    "survey/notes.md",
    "survey/survey_2010.csv.sha256",
    "survey/survey_2010.csv.md5",
    "survey/survey_2010.csv.asc",
    "survey/survey_2010.csv.bak",
    "survey/survey_2010.csv.gz.orig",
    "survey/survey_2010.parquet.old",
    "survey/checksums.md5",
    "survey/Thumbs.db",
    "survey/desktop.ini",
    "survey/~$survey_2013.xlsx",
    "survey/._survey_2013.csv",
    "survey/archive/survey_2009_v1.csv",
    "survey/old/survey_2013.xlsx",
    "Survey methodology 2010.pdf",
    "survey_deliveries_2005-2012.zip",
    "survey_2010.csv.bak",
    "README_survey_2013.txt",
])
def test_files_that_are_no_delivery_are_left_alone(tmp_path, entry):
    """Documents, codebooks, checksums and backups beside a delivery, other subfolders of survey/
    (archive/, old/), and at the top of the raw folder anything not named exactly as a delivery
    (the provider's methodology PDF, its zip archive): no delivery, so not refused."""
    write_survey_csv(tmp_path / "survey" / "survey_2010.csv", survey_rows(2, 2010))
    target = tmp_path / entry
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("x")
    assert list(discover_survey_files(tmp_path)) == [2010]


def test_delivery_names_are_matched_in_any_case(tmp_path):
    """``SURVEY_2010.CSV`` is the 2010 delivery, and the readers read it: accepted, not refused."""
    write_survey_csv(tmp_path / "survey" / "SURVEY_2010.CSV", survey_rows(2, 2010))
    found = discover_survey_files(tmp_path)
    assert list(found) == [2010] and found[2010].name == "SURVEY_2010.CSV"


def test_only_delivery_names_at_the_top_are_refused_and_moving_them_is_enough(tmp_path):
    """At the top of the raw folder, a delivery name is refused with "move it into survey/";
    once moved, it is read, and the documents left at the top are not refused in turn."""
    (tmp_path / "Survey methodology 2010.pdf").write_text("x")
    (tmp_path / "survey_deliveries_2005-2012.zip").write_text("x")
    write_survey_csv(tmp_path / "survey_2010.csv", survey_rows(2, 2010))
    with pytest.raises(ContractError) as err:
        discover_survey_files(tmp_path)
    msg = str(err.value)
    assert "survey_2010.csv is at the top of the raw folder" in msg and "move it into" in msg
    assert "methodology" not in msg and "deliveries_2005" not in msg
    (tmp_path / "survey").mkdir()
    (tmp_path / "survey_2010.csv").rename(tmp_path / "survey" / "survey_2010.csv")
    assert list(discover_survey_files(tmp_path)) == [2010]


# --- column_map.yaml: every key checked ------------------------------------------------------


@pytest.mark.parametrize("text,key,words", [
    ("aida_firms:\n  scale:\n    turnovers: 1000\n", "aida_firms.scale.turnovers",
     ["'turnovers' is no variable of aida_firms (did you mean 'turnover'?)"]),
    ("aida_firms:\n  scale:\n    turnover_2009: 1000\n", "aida_firms.scale.turnover_2009",
     ["names one year", "write 'turnover'"]),
    ("aida_firms:\n  scale:\n    turnover: 0\n", "aida_firms.scale.turnover", ["positive number, not 0"]),
    ("aida_firms:\n  scale:\n    turnover: -1000\n", "aida_firms.scale.turnover", ["positive number"]),
    ("aida_firms:\n  scale:\n    turnover: mille\n", "aida_firms.scale.turnover",
     ["positive number, not 'mille'"]),
    ("survey:\n  scale:\n    market_area: 2\n", "survey.scale.market_area", ["cannot name 'market_area'"]),
    ("llma:\n  scale:\n    llma_code: 2\n", "llma.scale", ["read only for survey, aida_firms"]),
    ("survey:\n  values:\n    market_areas: {locale: local}\n", "survey.values.market_areas",
     ["did you mean 'market_area'?"]),
    ("aida_subsidiaries:\n  values:\n    country_iso2: {UK: GB}\n", "aida_subsidiaries.values",
     ["read only for survey"]),
    ("surveys:\n  columns:\n    RICAVI: turnover\n", "surveys", ["is no source (did you mean 'survey'?)"]),
    ("survey:\n  decimals: ','\n  columns:\n    RICAVI: turnover\n", "survey.decimals",
     ["is no option of the column map (did you mean 'decimal'?)"]),
    ("survey:\n  decimals: ','\n", "survey.decimals", ["did you mean 'decimal'?"]),
    ("survey:\n  separator: ';;'\n", "survey.separator", ["one character"]),
    ("survey:\n  columns:\n    RICAVI: turnovr\n", "survey.columns['RICAVI']",
     ["'turnovr', which is no column of survey (did you mean 'turnover'?)"]),
    ("- survey\n", "", ["the file must be a mapping of sources"]),
])
def test_column_map_key_that_does_not_fit_is_refused_naming_file_and_key(tmp_path, text, key, words):
    """A misspelt variable under scale: was skipped (an AIDA export in thousand EUR loaded 1000
    times too small), and a mistake elsewhere was a bare ValueError the command line could not
    show: every key is checked, and the error is a ContractError naming the file and the key."""
    from offshoring.readers.column_map import ColumnMapError

    (tmp_path / "column_map.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ColumnMapError) as err:
        load_column_map(tmp_path)
    msg = str(err.value)
    assert isinstance(err.value, ContractError)
    assert msg.startswith(f"{tmp_path / 'column_map.yaml'}: {f'{key}: ' if key else ''}"), msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def test_column_map_valid_keys_still_read(tmp_path):
    cmap = as_column_map({"aida_firms": {"scale": {"turnover": 1000, "employees": 1}, "columns": {
        "Ricavi {year}": "turnover_{year}", "Dipendenti 2010": "employees_2010"}},
        "survey": {"values": {"market_area": {"1": "local"}, "credit_access": {"si": "1"}},
                   "columns": {"decimals_col": "roi"}, "separator": "\\t"}})
    assert cmap.source("aida_firms").scale == {"turnover": 1000.0, "employees": 1.0}
    assert cmap.source("survey").separator == "\t" and cmap.source("survey").target("DECIMALS_COL") == "roi"


def test_column_map_names_are_the_readers(tmp_path):
    """The column map's own lists (kept light for the pre-flight) are the readers' columns, and
    scale and values name exactly what the readers apply them to."""
    from offshoring import validation
    from offshoring.readers import column_map as cm
    from offshoring.readers import survey as survey_reader

    assert cm.COLUMNS["survey"] == tuple(SURVEY_COLUMNS)
    assert cm.COLUMNS["aida_firms"] == (*aida.AIDA_COLUMNS, *(f"{s}_{{year}}" for s in aida.AIDA_STEMS))
    assert cm.COLUMNS["aida_subsidiaries"] == tuple(aida.SUBSIDIARY_COLUMNS)
    assert cm.COLUMNS["llma"] == tuple(reference.LLMA_COLUMNS)
    assert cm.COLUMNS["census_employment"] == tuple(reference.CENSUS_COLUMNS)
    assert cm.AIDA_STEMS == aida.AIDA_STEMS
    assert set(cm.SCALED["survey"]) == {c for c, k in survey_reader.SURVEY_KINDS.items() if k == "number"}
    assert set(cm.VALUE_MAPPED["survey"]) == {c for c, k in survey_reader.SURVEY_KINDS.items()
                                              if k in ("number", "integer", "flag", "lower")}
    assert set(cm.SCALED["survey"]) == set(validation.SURVEY_AMOUNTS)
    assert not {c for c, k in aida.SUBSIDIARY_KINDS.items() if k == "number"} & set(cm.SCALED)


def test_a_bad_column_map_fails_the_asset_with_its_sentence(tmp_path, monkeypatch):
    """From the Dagster path (the UI, the sensors): the asset reading the map fails with the
    same sentence the command line prints, and nothing is written."""
    import dagster as dg

    from assets import raw as raw_assets
    from assets.resources import Folders, Warehouse

    monkeypatch.setenv("OFFSHORING_PSEUDONYM_KEY", "column-map-key-0123456789abcdef-not-secret")
    raw, db = tmp_path / "raw", tmp_path / "w.duckdb"
    write_aida_xlsx(raw / "aida" / "aida_firms.xlsx", aida_firms(3, [2009, 2010]))
    (raw / "column_map.yaml").write_text("aida_firms:\n  scale:\n    turnovers: 1000\n")
    resources = {"warehouse": Warehouse(database=str(db)),
                 "folders": Folders(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"))}
    result = dg.materialize([raw_assets.aida_firm_years], resources=resources, raise_on_error=False)
    assert not result.success
    user = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert user is not None, "not a dagster.Failure: the UI shows a stack trace"
    assert user.description.startswith(f"{raw / 'column_map.yaml'}: aida_firms.scale.turnovers: "
                                       f"'turnovers' is no variable of aida_firms (did you mean 'turnover'?)")


# --- AIDA ----------------------------------------------------------------------------------


def test_aida_xlsx_wide_to_long(tmp_path):
    years = [2008, 2009, 2010]
    firms = aida_firms(6, years)
    firms[0]["turnover_2009"] = None
    text = {
        (1, "turnover_2008"): "12.345.678",
        (2, "employees_2009"): "n.d.",
        (3, "turnover_2010"): "n.s.",
        (4, "employees_2008"): "1.234",
        (5, "turnover_2008"): "n.d.",
        (5, "employees_2008"): "n.s.",
    }
    headers = {"tax_code": "Codice fiscale", "company_name": "Ragione sociale",
               "turnover_2008": "Ricavi delle vendite\nmigl EUR\n2008",
               "turnover_2009": "Ricavi delle vendite\nmigl EUR\n2009",
               "turnover_2010": "Ricavi delle vendite\nmigl EUR\n2010"}
    path = write_aida_xlsx(tmp_path / "aida_firms.xlsx", firms, headers=headers, text_cells=text,
                           numeric_codes=True)
    cmap = as_column_map({"aida_firms": {"columns": {
        "Codice fiscale": "tax_code", "Ragione sociale": "company_name",
        "Ricavi delle vendite migl EUR {year}": "turnover_{year}"}}})
    raw = aida.read_aida_firms_raw(path, cmap)
    wide, long = aida.parse_aida_firms(raw, cmap)
    assert wide["tax_code"].to_list() == [f["tax_code"] for f in firms]  # leading zeros restored
    got = {(r["source_row"], r["year"]): (r["turnover"], r["employees"]) for r in long.iter_rows(named=True)}
    assert got[(2, 2008)][0] == 12_345_678.0
    assert got[(3, 2009)][1] is None
    assert got[(4, 2010)][0] is None
    assert got[(5, 2008)][1] == 1234.0
    assert got[(1, 2009)] == (None, firms[0]["employees_2009"])
    assert (6, 2008) not in got  # neither figure: no row
    assert len(long) == 6 * 3 - 1


def test_aida_xlsx_text_cells_read_as_the_csv_of_the_same_export(tmp_path):
    """A workbook's text cells follow AIDA's Italian conventions, as the CSV of the same export:
    '12,5' employees was refused as not a number (the CSV reads it as 12.5); number cells keep
    their values, '12.5' and a typed 123.456 alike."""
    firms = aida_firms(4, [2008])
    firms[2]["employees_2008"] = 12.5       # number cells
    firms[3]["employees_2008"] = 123.456
    text = {(0, "employees_2008"): "12,5", (1, "turnover_2008"): "1.234.567,5"}
    path = write_aida_xlsx(tmp_path / "aida_firms.xlsx", firms, text_cells=text)
    _, long = aida.parse_aida_firms(aida.read_aida_firms_raw(path))
    got = {r["source_row"]: (r["turnover"], r["employees"]) for r in long.iter_rows(named=True)}
    assert got[1][1] == 12.5 and got[2][0] == 1_234_567.5
    assert got[3][1] == 12.5 and got[4][1] == 123.456


def test_aida_csv_italian_with_scale(tmp_path):
    firms = aida_firms(3, [2008, 2009])
    cells = {(0, "turnover_2008"): "1.234.567", (1, "turnover_2009"): "n.d.", (2, "employees_2008"): "12,5"}
    path = write_csv(tmp_path / "aida_firms.csv", firms, encoding="cp1252", raw_cells=cells)
    cmap = as_column_map({"aida_firms": {"scale": {"turnover": 1000}}})
    _, long = aida.parse_aida_firms(aida.read_aida_firms_raw(path, cmap), cmap)
    row = long.filter((pl.col("source_row") == 1) & (pl.col("year") == 2008)).row(0, named=True)
    assert row["turnover"] == 1_234_567_000.0
    assert long["company_name"][0] == "Maglificio Àlfa 0 S.p.A."
    assert long.filter(pl.col("source_row") == 3, pl.col("year") == 2008)["employees"].item() == 12.5


def test_aida_xlsx_number_cells_keep_their_value_text_cells_follow_aida(tmp_path):
    """A cell the workbook stores as a number is that number (123.456 thousand EUR is not
    123456); a text cell follows AIDA's conventions, as in the CSV export."""
    firms = aida_firms(9, [2010])
    for f, v in zip(firms, [123.456, 123.45, 9.125, 1_234_567.0, 0.5, None, None, None, None]):
        f["turnover_2010"] = v
    text = {(5, "turnover_2010"): "n.d.", (6, "turnover_2010"): "1.234.567", (7, "turnover_2010"): "12.345.678,5",
            (8, "turnover_2010"): "123.456", (0, "employees_2010"): "1.234", (1, "employees_2010"): "n.s."}
    for f in firms:
        f["note"] = None  # a column outside the contract, ignored
    # a row empty in every column of the contract, skipped: the number cells stay aligned
    blank = {**{c: None for c in firms[0]}, "note": "totale"}
    path = write_aida_xlsx(tmp_path / "aida_firms.xlsx", firms[:3] + [blank] + firms[3:],
                           text_cells={(i + (i >= 3), c): v for (i, c), v in text.items()})
    raw = aida.read_aida_firms_raw(path)
    wide, _ = aida.parse_aida_firms(raw)
    assert wide["turnover_2010"].to_list() == [123.456, 123.45, 9.125, 1_234_567.0, 0.5, None, 1_234_567.0,
                                               12_345_678.5, 123_456.0]
    assert wide["employees_2010"].to_list()[:3] == [1234.0, None, firms[2]["employees_2010"]]
    assert wide["source_row"].to_list() == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    cmap = as_column_map({"aida_firms": {"scale": {"turnover": 1000}}})
    wide, _ = aida.parse_aida_firms(aida.read_aida_firms_raw(path, cmap), cmap)
    assert wide["turnover_2010"].to_list()[:3] == pytest.approx([123_456.0, 123_450.0, 9_125.0])
    # the ';' CSV export is unchanged: the decimal comma reads 123,456 as 123.456, '123.456' is 123456
    firms = aida_firms(2, [2010])
    firms[0]["turnover_2010"] = 123.456
    path = write_csv(tmp_path / "aida_firms.csv", firms, raw_cells={(1, "turnover_2010"): "123.456"})
    wide, _ = aida.parse_aida_firms(aida.read_aida_firms_raw(path))
    assert wide["turnover_2010"].to_list() == [123.456, 123_456.0]


def test_aida_xlsx_number_cells_stay_in_their_columns_beside_an_empty_spacer_column(tmp_path):
    """A headerless empty column (a spacer left in the export) is dropped by the reader: the number
    cells of the columns to its right keep their own values, not their left neighbour's."""
    firms = aida_firms(2, [2010, 2011])
    values = {(0, "turnover_2010"): 123.456, (0, "turnover_2011"): 2000.25,
              (1, "turnover_2010"): 5.5, (1, "turnover_2011"): 7.25}
    rows = []
    for i, f in enumerate(firms):
        row = {"tax_code": f["tax_code"], "spacer": None, **{k: v for k, v in f.items() if k != "tax_code"}}
        for (r, c), v in values.items():
            if r == i:
                row[c] = v
        rows.append(row)
    path = write_aida_xlsx(tmp_path / "aida_firms.xlsx", rows, headers={"spacer": ""})
    wide, _ = aida.parse_aida_firms(aida.read_aida_firms_raw(path))
    assert wide["turnover_2010"].to_list() == [123.456, 5.5]  # 123.456 typed: not AIDA's text 123456
    assert wide["turnover_2011"].to_list() == [2000.25, 7.25]


def test_aida_provinces_of_the_list_and_abolished_ones_are_accepted(tmp_path):
    firms = aida_firms(6, [2010])
    for f, sigla in zip(firms, ["NA", "na", "OT", "OG", "VS", "CI"]):
        f["province"] = sigla
    # (no sigla at all is refused: test_empty_cells_that_decide_a_count_are_refused_naming_them)
    wide, _ = aida.parse_aida_firms(aida.read_aida_firms_raw(write_csv(tmp_path / "aida_firms.csv", firms)))
    assert wide["province"].to_list() == ["NA", "NA", "OT", "OG", "VS", "CI"]
    assert {"OT", "OG", "VS", "CI"} <= aida.valid_provinces()
    assert set(geo.read_municipalities()["province"].drop_nulls()) <= aida.valid_provinces()


def test_aida_without_year_columns_is_an_error(tmp_path):
    rows = [{"tax_code": "00000000000", "company_name": "x", "province": "MI", "ateco_2007": "141310"}]
    path = write_csv(tmp_path / "aida_firms.csv", rows)
    with pytest.raises(ContractError, match=r"turnover_<YYYY>"):
        aida.read_aida_firms_raw(path)


def test_subsidiary_destinations(tmp_path):
    firms = aida_firms(10, [2008])
    subs = subsidiaries(firms)
    path = write_csv(tmp_path / "aida_subsidiaries.csv", subs)
    df = aida.parse_aida_subsidiaries(aida.read_aida_subsidiaries_raw(path))
    dest = dict(zip(df["country_iso2"], df["destination"]))
    assert dest == {"RO": "europe", "TN": "north_africa", "CN": "east_asia", "TR": "europe", "US": "other",
                    "RS": "europe", "VN": "east_asia", "IN": "other", "MA": "north_africa", "AL": "europe"}
    assert df["last_year"].null_count() == sum(1 for s in subs if s["last_year"] is None)
    for code in ("MA", "DZ", "TN", "LY", "EG"):
        assert aida.destination_of(code) == "north_africa"
    assert aida.destination_of("ua") == "europe" and aida.destination_of("JP") == "east_asia"
    assert aida.destination_of("BD") == "other" and aida.destination_of("GE") == "other"
    assert not (aida.EUROPE & aida.EAST_ASIA) and not (aida.EUROPE & aida.NORTH_AFRICA)
    assert (aida.EUROPE | aida.EAST_ASIA | aida.NORTH_AFRICA) <= aida.ISO_COUNTRIES


def test_empty_cells_that_decide_a_count_are_refused_naming_them(tmp_path):
    """Empty cells the contract allows but no count can do without were read as definite values:
    an AIDA company without a province dropped out of every province count, one without an ATECO
    code was taken for another industry, a participation without a share for "not controlled",
    and an empty census count stopped the run half-way, after other tables had been replaced.
    Each is refused when the file is read, naming the row and column and what to do."""
    firms = aida_firms(4, [2008])
    firms[1]["province"] = None
    firms[2]["ateco_2007"] = None
    with pytest.raises(ContractError) as err:
        aida.parse_aida_firms(aida.read_aida_firms_raw(write_csv(tmp_path / "aida_firms.csv", firms)))
    text = str(err.value)
    assert "[missing_value] column 'province'" in text and "1 data row: 2" in text
    assert "[missing_value] column 'ateco_2007'" in text and "1 data row: 3" in text
    assert "fill it in from the AIDA record" in text

    subs = subsidiaries(aida_firms(10, [2008]))
    subs[3]["ownership_pct"] = None
    with pytest.raises(ContractError) as err:
        aida.parse_aida_subsidiaries(aida.read_aida_subsidiaries_raw(write_csv(tmp_path / "aida_subsidiaries.csv",
                                                                               subs)))
    assert "[missing_value] column 'ownership_pct'" in str(err.value) and "1 data row: 4" in str(err.value)
    assert "cannot say whether the parent controls" in str(err.value)

    for column in ("employees", "local_units"):
        census = census_rows()
        census[5][column] = None
        with pytest.raises(ContractError) as err:
            reference.read_census_employment(write_csv(tmp_path / f"census_{column}.csv", census, italian=False))
        assert f"[missing_value] column '{column}'" in str(err.value) and "1 data row: 6" in str(err.value)
        assert "write 0 where the census has no unit" in str(err.value)


# --- reference files ----------------------------------------------------------------------------


def test_municipality_list_offline(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("the municipality list must be read offline")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    df = reference.read_municipality_list()
    assert df.height > 7000
    assert df["municipality_code"].str.len_chars().unique().to_list() == [6]
    assert df.columns == reference.MUNICIPALITY_COLUMNS


def test_municipality_list_user_override(tmp_path):
    data = geo.bundled_list_path().read_bytes()
    text, _ = to_utf8(data)
    text = text.decode("utf-8").lstrip("\ufeff")
    head = header_line(text)  # the official header has line breaks inside quoted cells
    body = text[len(head):].lstrip("\r\n").splitlines()[:25]
    user = tmp_path / "reference" / "municipalities.csv"
    user.parent.mkdir()
    user.write_bytes((head + "\r\n" + "\r\n".join(body) + "\r\n").encode("cp1252"))
    path = reference.municipality_list_path(tmp_path)
    assert path == user
    assert reference.read_municipality_list(path).height == 25
    assert reference.municipality_list_path(tmp_path / "nothing") == geo.bundled_list_path()


def test_llma_and_census(tmp_path):
    rows = llma_rows()
    rows[0]["municipality_code"] = "1272"  # leading zeros lost in a spreadsheet
    llma, _ = reference.read_llma(write_csv(tmp_path / "llma.csv", rows))
    assert llma["municipality_code"][0] == "001272"
    census = census_rows()
    census[0]["ateco_division"] = "1"
    census[1]["size_class"] = "10 - 49"
    df, _ = reference.read_census_employment(write_csv(tmp_path / "census.csv", census, italian=False))
    assert df["ateco_division"][0] == "01"
    assert df["size_class"][1] == "10-49"
    assert df["local_units"].dtype == pl.Int64


def test_llma_codes_outside_the_municipality_list_are_refused(tmp_path):
    """The contract's map uses codes "in the current list": a code outside the list in use
    (another edition's, a typo) would leave its firms without an area behind a loaded file."""
    rows = llma_rows()
    rows[2]["municipality_code"] = "001999"  # well-formed, no municipality
    with pytest.raises(ContractError) as err:
        reference.read_llma(write_csv(tmp_path / "llma.csv", rows))
    assert [(r["rule"], r["first_rows"]) for r in err.value.reasons] == [("unlisted_municipality", [3])]
    assert "bundled ISTAT list" in str(err.value)
    # against a user's list (a folder's override): the codes of that list are the ones accepted
    raw = tmp_path / "raw"
    write_csv(raw / "reference" / "llma.csv", llma_rows())
    from offshoring import load

    text, _ = to_utf8(geo.bundled_list_path().read_bytes())
    text = text.decode("utf-8").lstrip("\ufeff")
    head = header_line(text)
    wanted = [r["municipality_code"] for r in llma_rows()[:3]]
    body = [line for line in text[len(head):].lstrip("\r\n").splitlines()
            if any(f";{c};" in line or line.startswith(f"{c};") for c in wanted)]
    user = raw / "reference" / "Elenco-comuni-italiani.csv"
    user.write_bytes((head + "\r\n" + "\r\n".join(body) + "\r\n").encode("cp1252"))
    assert sorted(reference.read_municipality_list(user)["municipality_code"].to_list()) == sorted(wanted)
    with pytest.raises(ContractError) as err:
        load.prepare_llma(raw / "reference" / "llma.csv")
    assert [(r["rule"], r["first_rows"]) for r in err.value.reasons] == [("unlisted_municipality", [4, 5, 6])]
    assert "Elenco-comuni-italiani.csv" in str(err.value)


def test_discover_raw_files(tmp_path):
    write_survey_csv(tmp_path / "survey" / "survey_2008.csv", survey_rows(2, 2008))
    write_csv(tmp_path / "aida" / "aida_firms.csv", aida_firms(2, [2008]))
    write_csv(tmp_path / "reference" / "llma.csv", llma_rows())
    found = reference.discover_raw_files(tmp_path)
    assert list(found.survey) == [2008]
    assert found.aida_firms.name == "aida_firms.csv"
    assert found.aida_subsidiaries is None and found.census_employment is None
    assert found.municipalities == geo.bundled_list_path()
    write_aida_xlsx(tmp_path / "aida" / "aida_firms.xlsx", aida_firms(2, [2008]))
    with pytest.raises(ContractError, match="keep one"):
        reference.discover_raw_files(tmp_path)


def test_column_map_example_parses():
    from offshoring.settings import PROJECT_ROOT

    cmap = load_column_map(PROJECT_ROOT / "config" / "column_map.example.yaml")
    assert isinstance(cmap, ColumnMap)
    assert cmap.source("survey").target("CODICE_FISCALE") == "tax_code"
    assert cmap.source("aida_firms").target("Ricavi delle vendite\nEUR\n2009") == "turnover_2009"
    assert cmap.source("nothing").target("x") is None


def test_dates_both_styles(tmp_path):
    rows = survey_rows(4, YEAR)
    cells = {(0, "filing_date"): "2009-03-05", (1, "filing_date"): "5/3/2009", (2, "filing_date"): "05/03/2009",
             (3, "filing_date"): "2009-03-05 00:00:00"}
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows, raw_cells=cells)
    df = read_survey(path, YEAR)
    assert df["filing_date"].to_list() == [dt.date(2009, 3, 5)] * 4


def test_value_map_for_flags(tmp_path):
    rows = survey_rows(3, YEAR)
    cells = {(0, "supplier"): "S", (1, "supplier"): "n", (2, "supplier"): "1"}
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows, raw_cells=cells)
    with pytest.raises(ContractError, match="unparseable_number"):
        read_survey(path, YEAR)
    cmap = as_column_map({"survey": {"columns": {}, "values": {"supplier": {"s": "1", "N": "0"}}}})
    assert read_survey(path, YEAR, cmap)["supplier"].to_list() == [1, 0, 1]
