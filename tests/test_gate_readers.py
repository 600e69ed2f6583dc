"""The readers' half of the delivery gate: raw files that do not fit the contract are refused.

Every test writes a small contract file by hand (no generator), reads it, and checks the
`ContractError`: it names the file, the rule, the column and the data rows where there
are some, and no cell of the file (the tax codes above all: personal data) is in its
message or in its `reasons`.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import polars as pl
import pytest

from offshoring.readers import aida, common, reference, survey
from offshoring.readers.column_map import as_column_map, plausible_header
from offshoring.readers.common import CellSet, inside_folder
from offshoring.readers.survey import SURVEY_COLUMNS, discover_survey_files, read_survey
from offshoring.validation import ContractError

YEAR = 2010
HEADER = ";".join(SURVEY_COLUMNS)
PERSONAL = "RSSMRA80A01F205X"  # a sole proprietor's codice fiscale: personal data
COMPANY = "12345678903"
OTHER = "03456789012"
ROWS = [
    f"{PERSONAL};2010;15/05/2011;14.13.10;015146;352300;3,5;120000;80000;1500,5;2,5;10;1;local;0;1;1000;0;0;0;0",
    # the last field empty: a short row leaves it empty too, and must not be confused with it
    f"{COMPANY};2010;16/05/2011;15.20.10;015146;250000;2;90000;60000;-200;1,5;0;0;national;1;0;0;500;0;0;",
    f"{OTHER};2010;17/05/2011;14.13.10;001272;1200000;12;300000;200000;5000;3;45,5;1;international;1;0;0;0;0;2000;0",
]
CODES = (PERSONAL, COMPANY, OTHER)


def write(folder: Path, name: str, lines: list[str], *, end: str = "\n", gz: bool = False,
          encoding: str = "utf-8") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + end).encode(encoding)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def refused(fn, *args, **kwargs) -> ContractError:
    with pytest.raises(ContractError) as info:
        fn(*args, **kwargs)
    return info.value


def cells(lines: list[str], separator: str = ";") -> set[str]:
    """The cells of the data lines that could identify something: anything with a digit, 4+ long."""
    out = set(CODES)
    for line in lines[1:]:
        for cell in line.replace("\n", separator).split(separator):
            cell = cell.strip('"')
            if len(cell) >= 4 and any(ch.isdigit() for ch in cell):
                out.add(cell)
    return out


def assert_clean(err: ContractError, values: set[str] | tuple[str, ...]) -> str:
    """No value in the message (the file's own path aside) nor in the reasons; returns the message."""
    msg = str(err)
    assert err.file in msg
    text = msg.replace(err.file, "<file>") + json.dumps(err.reasons)
    leaked = sorted(v for v in values if v in text)
    assert not leaked, f"values in the error: {leaked}\n{msg}"
    return msg


def rules(err: ContractError) -> list[str]:
    return [r["rule"] for r in err.reasons]


# --- valid files still load --------------------------------------------------------------


def test_valid_file_loads_with_empty_last_cells_blank_lines_and_quoted_breaks(tmp_path):
    lines = [HEADER + ";notes", ROWS[0] + ';"a; b\nc. d"', ROWS[1] + ";", "", ROWS[2] + ";x.y"]
    df = read_survey(write(tmp_path, "survey_2010.csv", lines), YEAR)
    assert df["tax_code"].to_list() == list(CODES)
    assert df["turnover"].to_list() == [352300.0, 250000.0, 1_200_000.0]
    assert df["subcontracting_other"].to_list() == [0.0, None, 0.0]
    assert df["export_share"].to_list() == [10.0, 0.0, 45.5]
    assert df["source_row"].to_list() == [1, 2, 4]  # the blank line is row 3, skipped


# --- 1. rows of the wrong width ------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "csv.gz"])
@pytest.mark.parametrize("end", ["", "\n", "\r\n"], ids=["no-newline", "newline", "crlf"])
def test_file_cut_inside_a_number_is_refused(tmp_path, gz, end):
    cut = ROWS[2][: ROWS[2].index("1200000") + 2]  # two characters into turnover
    lines = [HEADER, *ROWS[:2], cut]
    if end == "\r\n":
        lines = [line + "\r" for line in lines[:-1]] + [cut]
    path = write(tmp_path, "survey_2010.csv.gz" if gz else "survey_2010.csv", lines, end=end, gz=gz)
    err = refused(read_survey, path, YEAR)
    msg = assert_clean(err, cells(lines))
    assert rules(err) == ["ragged_row"]
    assert path.name in msg and "[ragged_row]" in msg
    assert "the header has 21 fields; data row 3 has 6 fields" in msg
    assert err.reasons[0]["first_rows"] == [3] and err.n_rows_rejected == 1


def test_long_and_short_rows_are_named_by_row(tmp_path):
    short = ";".join(ROWS[0].split(";")[:18])
    lines = [HEADER, short, ROWS[1] + ";7", ROWS[2]]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(lines))
    assert rules(err) == ["ragged_row"]
    assert err.reasons[0]["first_rows"] == [1, 2] and err.reasons[0]["n_rows"] == 2
    assert "the header has 21 fields; data row 1 has 18 fields" in msg
    assert "2 data rows: 1, 2" in msg


def test_quote_that_never_closes_is_refused_without_values(tmp_path):
    lines = [HEADER, ROWS[0], ROWS[1].replace(";national;", ';"national;'), ROWS[2]]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    assert_clean(err, cells(lines))
    assert set(rules(err)) <= {"ragged_row", "unreadable_file"} and rules(err)


def test_many_ragged_rows_keep_twenty_and_count_all(tmp_path):
    lines = [HEADER] + [ROWS[0] + ";x" if i % 2 else ROWS[0] for i in range(300)]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    reason = err.reasons[0]
    assert reason["rule"] == "ragged_row" and reason["n_rows"] == 150 and err.n_rows_rejected == 150
    assert len(err.failures[0].rows) == common.MAX_ROWS_KEPT
    assert "150 data rows: 2, 4, 6, 8, 10 and 145 more" in str(err)


# --- 2. a column twice ---------------------------------------------------------------------


def test_header_written_twice_is_refused(tmp_path):
    lines = ["turnover;" + HEADER] + ["1;" + row for row in ROWS]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(lines))
    assert rules(err) == ["duplicate_columns"]
    assert err.failures[0].column == "turnover"
    assert "column 'turnover'" in msg and "appears 2 times" in msg


def test_two_headers_mapped_to_one_column_are_refused(tmp_path):
    lines = ["RICAVI;" + HEADER] + ["1;" + row for row in ROWS]
    cmap = as_column_map({"survey": {"RICAVI": "turnover"}})
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR, cmap)
    msg = assert_clean(err, cells(lines))
    assert rules(err) == ["duplicate_columns"] and "column 'turnover'" in msg
    assert "'RICAVI'" in msg and "'turnover'" in msg


def test_header_written_twice_in_an_xlsx_is_refused(tmp_path):
    import openpyxl  # required (requirements.lock): missing, the test fails, never skips
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["tax_code", "company_name", "province", "ateco_2007", "turnover_2008", "turnover_2008"])
    ws.append([COMPANY, "Maglificio Alfa S.p.A.", "MI", "141310", 1000, 2000])
    path = tmp_path / "aida_firms.xlsx"
    wb.save(path)
    err = refused(aida.read_aida_firms_raw, path)
    msg = assert_clean(err, (COMPANY,))
    assert rules(err) == ["duplicate_columns"] and "column 'turnover_2008'" in msg


# --- 3. numbers that read two ways ---------------------------------------------------------


def test_dots_in_a_decimal_comma_survey_are_ambiguous(tmp_path):
    lines = [HEADER, ROWS[0].replace(";352300;", ";352.300;"),
             ROWS[1].replace(";90000;", ";1.234.567;"), ROWS[2].replace(";12;", ";1.5;")]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(lines) | {"352.300", "1.234.567", "1.5"})
    got = {(r["column"], tuple(r["first_rows"])) for r in err.reasons}
    assert got == {("turnover", (1,)), ("value_added", (2,)), ("employees", (3,))}
    assert set(rules(err)) == {"ambiguous_number"}  # not also reported as unparseable
    assert "[ambiguous_number] column 'turnover'" in msg and "thousands: \".\"" in msg
    # both readings offered: '1,34' in a file of decimal points is a decimal comma, not grouping
    assert "if '.' is its decimal mark, declare decimal: \".\"" in msg
    assert err.n_rows_rejected == 3


def test_declared_thousands_dots_are_read_as_thousands(tmp_path):
    lines = [HEADER, ROWS[0].replace(";352300;", ";352.300;"),
             ROWS[1].replace(";90000;", ";1.234.567,5;"), ROWS[2]]
    cmap = as_column_map({"survey": {"thousands": "."}})
    df = read_survey(write(tmp_path, "survey_2010.csv", lines), YEAR, cmap)
    assert df["turnover"].to_list() == [352_300.0, 250_000.0, 1_200_000.0]
    assert df["value_added"].to_list() == [120_000.0, 1_234_567.5, 300_000.0]
    assert df["employees"].to_list() == [3.5, 2.0, 12.0]


def test_declared_thousands_with_a_bad_grouping_is_unparseable(tmp_path):
    lines = [HEADER, ROWS[0].replace(";352300;", ";35.23;"), *ROWS[1:]]
    cmap = as_column_map({"survey": {"thousands": "."}})
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR, cmap)
    assert_clean(err, cells(lines) | {"35.23"})
    assert [(r["rule"], r["column"], r["first_rows"]) for r in err.reasons] == [
        ("unparseable_number", "turnover", [1])]


def test_comma_grouping_in_a_decimal_point_survey_is_ambiguous(tmp_path):
    def plain(row: str) -> str:
        return ",".join(f'"{c}"' if "," in c else c for c in (x.replace(",", ".") for x in row.split(";")))

    lines = [",".join(SURVEY_COLUMNS), plain(ROWS[0]).replace(",352300,", ',"352,300",'), plain(ROWS[1]),
             plain(ROWS[2])]
    path = write(tmp_path, "survey_2010.csv", lines)
    err = refused(read_survey, path, YEAR)
    msg = assert_clean(err, cells(lines, ",") | {"352,300"})
    assert [(r["rule"], r["column"], r["first_rows"]) for r in err.reasons] == [
        ("ambiguous_number", "turnover", [1])]
    assert "thousands: \",\"" in msg
    df = read_survey(path, YEAR, as_column_map({"survey": {"thousands": ","}}))
    assert df["turnover"].to_list() == [352_300.0, 250_000.0, 1_200_000.0]
    assert df["employees"].to_list() == [3.5, 2.0, 12.0]


def test_aida_keeps_its_thousands_and_missing_markers(tmp_path):
    lines = ["tax_code;company_name;province;ateco_2007;turnover_2008;employees_2008;turnover_2009",
             f"{COMPANY};Maglificio Alfa S.p.A.;MI;14.13.10;1.234.567;1.234;n.d.",
             f"{OTHER};Calzaturificio Beta S.r.l.;FM;15.20.10;352.300;12,5;n.s."]
    raw = aida.read_aida_firms_raw(write(tmp_path, "aida_firms.csv", lines))
    wide, _ = aida.parse_aida_firms(raw)
    assert wide["turnover_2008"].to_list() == [1_234_567.0, 352_300.0]
    assert wide["employees_2008"].to_list() == [1234.0, 12.5]
    assert wide["turnover_2009"].to_list() == [None, None]


CENSUS_HEADER = "llma_code;ateco_division;size_class;local_units;employees"
CENSUS = ["0100;14;0-9;40;30", "0100;14;10-49;30;60", "0100;15;0-9;20;90", "0101;14;0-9;10;120"]


def test_marks_in_census_counts_are_ambiguous(tmp_path):
    """A count holds no mark: '2.000' employees is two or two thousand (it read as 2), and
    '2,0' in a whole-number column is refused too (the CSV reader took it for 2)."""
    lines = [CENSUS_HEADER, CENSUS[0].replace(";30", ";2.000"), CENSUS[1].replace(";30;", ";1.000;"),
             CENSUS[2].replace(";90", ";2,0"), CENSUS[3]]
    path = write(tmp_path, "census_employment.csv", lines)
    err = refused(reference.read_census_employment, path)
    msg = assert_clean(err, cells(lines) | {"2.000", "1.000"})
    got = {(r["rule"], r["column"], tuple(r["first_rows"])) for r in err.reasons}
    assert got == {("ambiguous_number", "local_units", (2,)), ("ambiguous_number", "employees", (1, 3))}
    assert "[ambiguous_number] column 'employees'" in msg and "in digits alone" in msg
    assert err.n_rows_rejected == 3
    # declared thousands: '2.000' is 2000 (a decimal mark stays refused)
    df, _ = reference.read_census_employment(
        write(tmp_path, "ok/census_employment.csv", lines[:3] + lines[4:]),
        as_column_map({"census_employment": {"thousands": "."}}))
    assert df["employees"].to_list() == [2000, 60, 120] and df["local_units"].to_list() == [40, 1000, 10]
    # a decimal-point file: '2.0' employees is refused as well, '2,000' (quoted) too
    plain = [CENSUS_HEADER.replace(";", ","), CENSUS[0].replace(";", ",").replace(",30", ",2.0"),
             CENSUS[1].replace(";", ",").replace(",60", ',"2,000"')]
    err = refused(reference.read_census_employment, write(tmp_path, "plain/census_employment.csv", plain))
    assert {(r["rule"], tuple(r["first_rows"])) for r in err.reasons} == {("ambiguous_number", (1, 2))}


def test_dots_in_subsidiary_shares_and_years_are_ambiguous(tmp_path):
    header = "tax_code;subsidiary_name;country_iso2;ownership_pct;first_year;last_year"
    lines = [header, f"{COMPANY};Sub A;RO;50.001;2004;2011", f"{OTHER};Sub B;TN;51,5;2.005;",
             f"{COMPANY};Sub C;CN;100;2006;2011,0"]
    err = refused(aida.parse_aida_subsidiaries, aida.read_aida_subsidiaries_raw(write(tmp_path, "aida_subsidiaries.csv", lines)))
    msg = assert_clean(err, cells(lines) | {"50.001", "2.005"})
    got = {(r["rule"], r["column"], tuple(r["first_rows"])) for r in err.reasons}
    assert got == {("ambiguous_number", "ownership_pct", (1,)), ("ambiguous_number", "first_year", (2,)),
                   ("ambiguous_number", "last_year", (3,))}
    assert "[ambiguous_number] column 'ownership_pct'" in msg and "thousands: \".\"" in msg
    lines = [header, f"{COMPANY};Sub A;RO;50,001;2004;2011", f"{OTHER};Sub B;TN;51,5;2005;"]
    df = aida.parse_aida_subsidiaries(aida.read_aida_subsidiaries_raw(write(tmp_path, "ok/aida_subsidiaries.csv", lines)))
    assert df["ownership_pct"].to_list() == [50.001, 51.5] and df["first_year"].to_list() == [2004, 2005]


def test_column_map_thousands_option_is_checked():
    with pytest.raises(ValueError, match="thousands"):
        as_column_map({"survey": {"thousands": " "}})
    with pytest.raises(ValueError, match="both"):
        as_column_map({"survey": {"decimal": ".", "thousands": "."}})


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("date", ["20/09/11", "20-09-11", "20.09.11", "20/09/011"])
def test_a_filing_date_without_a_four_digit_year_is_refused(tmp_path, date):
    """'20/09/11' read as the year 11 would lose the latest-filing choice to any other filing."""
    lines = [HEADER, ROWS[0], ROWS[1].replace(";16/05/2011;", f";{date};"), ROWS[2]]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(lines))
    assert [(r["rule"], r["column"], r["first_rows"]) for r in err.reasons] == [
        ("unparseable_date", "filing_date", [2])]
    assert "year in four digits" in msg and "survey_2010.csv" in msg


def test_a_filing_date_before_the_fiscal_year_is_refused(tmp_path):
    lines = [HEADER, ROWS[0].replace(";15/05/2011;", ";31/12/2009;"), ROWS[1].replace(";16/05/2011;", ";20/09/0011;"),
             ROWS[2].replace(";17/05/2011;", ";01/01/2010;")]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(lines) - {"2010"})  # the fiscal year is the file's, named in the rule
    assert [(r["rule"], r["column"], r["first_rows"]) for r in err.reasons] == [
        ("filing_before_year", "filing_date", [1, 2])]
    assert "[filing_before_year] column 'filing_date'" in msg and "1 January 2010" in msg
    # the first day of the year, and a date after today (a machine's clock may be wrong), pass
    lines = [HEADER, ROWS[0].replace(";15/05/2011;", ";01/01/2010;"), ROWS[1].replace(";16/05/2011;", ";2100-01-01;"),
             ROWS[2]]
    df = read_survey(write(tmp_path, "ok/survey_2010.csv", lines), YEAR)
    assert [d.year for d in df["filing_date"]] == [2010, 2100, 2011]


def test_a_return_the_panel_could_not_place_is_refused_at_the_load(tmp_path):
    """Empty municipality codes and codes in no layout whose first three digits are no province of
    the year were loaded and then stopped the panel (the raw table already replaced): now the
    delivery is refused. A code of another layout or of a municipality merged away (its province
    from its prefix) is placed by the panel and passes."""
    lines = [HEADER, ROWS[0].replace(";015146;", ";;"), ROWS[1].replace(";015146;", ";999001;"),
             ROWS[2].replace(";001272;", ";015999;")]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(lines) - {"2010"})
    assert [(r["rule"], r["column"], r["first_rows"]) for r in err.reasons] == [
        ("missing_municipality", "municipality_code", [1]), ("unplaceable_municipality", "municipality_code", [2])]
    assert "layout of 2010 (code_110)" in msg
    # 044019 is Fermo's code of 2006-2009 (another layout); 015999 a merged-away Milano code
    lines = [HEADER, ROWS[0].replace(";015146;", ";044019;"), ROWS[1].replace(";015146;", ";015999;"), ROWS[2]]
    assert read_survey(write(tmp_path, "ok/survey_2010.csv", lines), YEAR).height == 3
    # a return the panel does not use needs no municipality: a filing superseded by a later one
    # of the same firm-year, and another industry's return
    lines = [HEADER, *ROWS, ROWS[2].replace(";17/05/2011;", ";01/02/2011;").replace(";001272;", ";;"),
             ROWS[1].replace(f"{COMPANY};", "07643520567;").replace(";15.20.10;", ";13.10.00;").replace(";015146;", ";;")]
    assert read_survey(write(tmp_path, "other/survey_2010.csv", lines), YEAR).height == 5


# --- AIDA provinces ---------------------------------------------------------------------------

AIDA_HEADER = "tax_code;company_name;province;ateco_2007;turnover_2009;employees_2009"


def test_aida_province_outside_the_list_is_refused_naming_the_sigla(tmp_path):
    lines = [AIDA_HEADER, f"{COMPANY};Alfa S.p.A.;ZZ;14.13.10;1.234.567;12",
             f"{OTHER};Beta S.r.l.;OT;15.20.10;352.300;8", f"{PERSONAL};Gamma;zz;15.20.10;100;1",
             "01234567897;Delta S.r.l.;XY;15.20.10;200;2", "02345678901;Eta;M1;14.13.10;300;3"]
    err = refused(aida.parse_aida_firms, aida.read_aida_firms_raw(write(tmp_path, "aida_firms.csv", lines)))
    msg = assert_clean(err, cells(lines))
    got = [(r["rule"], r["column"], r["first_rows"]) for r in err.reasons]
    assert ("unknown_province", "province", [1, 3]) in got and ("unknown_province", "province", [4]) in got
    assert ("malformed_province", "province", [5]) in got  # not two letters: the shape's rule only
    assert "'ZZ'" in msg and "'XY'" in msg and "[unknown_province] column 'province'" in msg
    assert "reference/municipalities.csv" in msg and "OT" in msg  # what to do; OT (abolished 2016) passes
    assert err.n_rows_rejected == 4


def test_aida_province_is_checked_against_the_users_list(tmp_path):
    from offshoring import geo

    lines = geo.bundled_list_path().read_bytes().splitlines(keepends=True)
    user = tmp_path / "raw" / "reference" / "municipalities.csv"
    user.parent.mkdir(parents=True)
    user.write_bytes(b"".join(lines[:101]))  # the first 100 municipalities: province TO only
    rows = [AIDA_HEADER, f"{COMPANY};Alfa;TO;14.13.10;100;1", f"{OTHER};Beta;FI;15.20.10;200;2"]
    raw = aida.read_aida_firms_raw(write(tmp_path, "aida_firms.csv", rows))
    assert aida.parse_aida_firms(raw)[0]["province"].to_list() == ["TO", "FI"]  # the bundled list
    err = refused(aida.parse_aida_firms, raw, municipality_list=user)
    assert [(r["rule"], r["first_rows"]) for r in err.reasons] == [("unknown_province", [2])]
    assert "'FI'" in str(err) and str(user) in str(err)


# --- 4. files that cannot be read ----------------------------------------------------------


def test_truncated_and_corrupt_gzip_are_contract_errors(tmp_path):
    data = gzip.compress(("\n".join([HEADER, *ROWS]) + "\n").encode())
    cases = {
        "truncated": data[: len(data) // 2],
        "corrupt": data[:20] + bytes(b ^ 0xFF for b in data[20:40]) + data[40:],
        "not gzip": ("\n".join([HEADER, *ROWS]) + "\n").encode(),
        "empty": b"",
    }
    for what, content in cases.items():
        path = tmp_path / what.replace(" ", "_") / "survey_2010.csv.gz"
        path.parent.mkdir()
        path.write_bytes(content)
        err = refused(read_survey, path, YEAR)
        msg = assert_clean(err, CODES)
        assert rules(err) == ["unreadable_file"], what
        assert "not a readable gzip file: corrupt or truncated" in msg and "survey_2010.csv.gz" in msg


def test_unreadable_parquet_and_xlsx_are_contract_errors(tmp_path):
    pq = tmp_path / "survey_2010.parquet"
    pq.write_bytes(b"PAR1" + f"{PERSONAL};{COMPANY}".encode() + b"PAR1")
    err = refused(read_survey, pq, YEAR)
    assert rules(err) == ["unreadable_file"] and "not a Parquet file" in assert_clean(err, CODES)
    xlsx = tmp_path / "aida_firms.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + f"{PERSONAL};{COMPANY}".encode() * 10)
    err = refused(aida.read_aida_firms_raw, xlsx)
    assert rules(err) == ["unreadable_file"] and "not a readable xlsx workbook" in assert_clean(err, CODES)


# --- 5. files only inside the raw folder ---------------------------------------------------


def test_survey_link_pointing_outside_the_raw_folder_is_refused(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "survey", "survey_2010.csv", [HEADER, *ROWS])
    outside = write(tmp_path / "elsewhere", "data.csv", [HEADER, *ROWS])
    (raw / "survey" / "survey_2011.csv").symlink_to(outside)
    err = refused(discover_survey_files, raw)
    msg = assert_clean(err, CODES)
    assert rules(err) == ["outside_raw_folder"] and err.file.endswith("survey_2011.csv")
    assert "links pointing outside the raw folder are not followed" in msg
    # a link that stays inside the raw folder is fine
    (raw / "survey" / "survey_2011.csv").unlink()
    inner = write(raw / "archive", "delivery_2011.csv", [HEADER, *ROWS])
    (raw / "survey" / "survey_2011.csv").symlink_to(inner)
    assert sorted(discover_survey_files(raw)) == [2010, 2011]


def test_survey_folder_linked_outside_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere, "survey_2010.csv", [HEADER, *ROWS])
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "survey").symlink_to(elsewhere, target_is_directory=True)
    err = refused(discover_survey_files, raw)
    assert rules(err) == ["outside_raw_folder"] and "survey_2010.csv" in str(err)


def test_inside_folder_helper_and_other_inputs(tmp_path):
    raw = tmp_path / "raw"
    inner = write(raw / "aida", "aida_subsidiaries.csv", ["tax_code"])
    assert inside_folder(inner, raw) == inner
    outside = write(tmp_path, "x.csv", ["tax_code"])
    link = raw / "aida" / "aida_firms.csv"
    link.symlink_to(outside)
    err = refused(inside_folder, link, raw)
    assert rules(err) == ["outside_raw_folder"] and "aida_firms.csv" in str(err)
    err = refused(reference.discover_raw_files, raw)
    assert rules(err) == ["outside_raw_folder"] and err.file.endswith("aida_firms.csv")
    loop = raw / "loop.csv"
    loop.symlink_to(loop)
    assert rules(refused(inside_folder, loop, raw)) == ["outside_raw_folder"]


# --- 6. and 7. which deliveries there are ----------------------------------------------------


def test_two_deliveries_for_one_year_is_one_plain_sentence(tmp_path):
    write(tmp_path / "survey", "survey_2010.csv", [HEADER, *ROWS])
    write(tmp_path / "survey", "survey_2010.csv.gz", [HEADER, *ROWS], gz=True)
    err = refused(discover_survey_files, tmp_path)
    msg = str(err)
    assert rules(err) == ["duplicate_delivery"]
    assert ("survey_2010.csv and survey_2010.csv.gz are both deliveries for fiscal year 2010; "
            "keep one of them") in msg
    assert msg.count("\n") == 1  # the head line and one reason


def test_year_in_the_future_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(survey, "current_year", lambda: 2026)
    write(tmp_path / "survey", "survey_2026.csv", [HEADER, *ROWS])
    assert list(discover_survey_files(tmp_path)) == [2026]
    write(tmp_path / "survey", "survey_2031.csv", [HEADER, *ROWS])
    err = refused(discover_survey_files, tmp_path)
    msg = assert_clean(err, CODES)
    assert rules(err) == ["future_year"] and err.file.endswith("survey_2031.csv")
    assert "2031" in msg and "this is 2026" in msg and "cannot be in the future" in msg


# --- 8. a header that is not one -------------------------------------------------------------


def test_file_without_header_echoes_no_cell(tmp_path):
    lines = [ROWS[0].replace(PERSONAL, PERSONAL), ROWS[1], ROWS[2]]  # the header line is missing
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(["", *lines]) | {PERSONAL, COMPANY})
    assert rules(err) == ["missing_columns"]
    assert "missing: tax_code, year, filing_date" in msg
    assert "is the header line missing?" in msg and "do not look like column names" in msg


def test_missing_column_lists_the_headers_found(tmp_path):
    header = HEADER.replace("turnover;", "Ricavi 2010;").replace("employees;", f"{PERSONAL};")
    lines = [header, *ROWS]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    msg = assert_clean(err, cells(lines))
    assert "missing: turnover, employees; found: 'tax_code', 'year'" in msg
    assert "'ateco_2007'" in msg  # a column of the contract, digits or not
    assert "'Ricavi 2010'" not in msg and "and 2 fields that do not look like column names" in msg
    assert "header line missing" not in msg


def test_found_headers_are_listed_only_when_they_look_like_names():
    for name in ("tax_code", "Addetti", "Area di mercato più ampia", "Anno d'imposta", "RICAVI"):
        assert plausible_header(name), name
    for cell in (PERSONAL, COMPANY, "RSSMRALPAMLFNQRX", "turnover_2008", "15/05/2011", "352300",
                 "1.234.567", "Rossi RSSMRA80A01F205X", "", "x" * 70):
        assert not plausible_header(cell), cell


# --- 9. bounded failures ----------------------------------------------------------------------


def test_unparseable_cells_keep_twenty_rows_and_count_all(tmp_path):
    lines = [HEADER] + [f"{i:011d};2010;15/05/2011;14.13.10;015146;12x;3;1;1;1;1;1;1;local;0;1;0;0;0;0;0"
                        for i in range(60)]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", lines), YEAR)
    assert_clean(err, cells(lines) | {"12x"})
    (failure,) = err.failures
    assert failure.rule == "unparseable_number" and failure.column == "turnover"
    assert failure.n_rows == 60 and len(failure.rows) == common.MAX_ROWS_KEPT
    assert err.n_rows_rejected == 60 and "and 55 more" in str(err)


def test_chunked_validation_matches_one_pass(tmp_path, monkeypatch):
    body = [f"{i:011d};2010;15/05/2011;14.13.10;015146;1000;3;1;1;1;1;1;1;local;0;1;0;0;0;0;0"
            for i in range(30)]
    body[4] = body[0]  # a duplicate filing, rows 1 and 5
    body[6] = body[6].replace(";2010;", ";2009;", 1)  # year of another file
    body[9] = "X" + body[9][1:]  # malformed tax code
    body[12] = body[12].replace(";1000;", ";12x;")  # unparseable
    body[13] = body[13].replace(";1000;", ";-5;")  # negative
    body[25] = body[25].replace(";15/05/2011;", ";31/02/2011;")  # no such date
    lines = [HEADER, *body]
    path = write(tmp_path, "survey_2010.csv", lines)

    def outcome():
        err = refused(read_survey, path, YEAR)
        assert_clean(err, cells(lines))
        return sorted((r["rule"], r["column"], r["n_rows"], tuple(r["first_rows"])) for r in err.reasons), \
            err.n_rows_rejected

    one_pass = outcome()
    monkeypatch.setattr(common, "VALIDATE_CHUNK_ROWS", 4)
    monkeypatch.setattr(common, "PANDERA_DUPLICATES", 0)
    assert outcome() == one_pass
    assert ("duplicate_filing", "tax_code, year, filing_date", 2, (1, 5)) in one_pass[0]
    assert one_pass[1] == 7


def test_cell_set():
    cells_ = CellSet()
    cells_.add("a", [5, 1, 9])
    cells_.add("b", [2])
    cells_.add("a", [3])
    assert len(cells_) == 5 and set(cells_) == {(1, "a"), (3, "a"), (5, "a"), (9, "a"), (2, "b")}
    assert (3, "a") in cells_ and (4, "a") not in cells_ and (2, "a") not in cells_
    assert cells_.window(2, 6) == {(1, "a"), (3, "a"), (0, "b")}
    assert cells_.rows().tolist() == [1, 2, 3, 5, 9]


def test_junk_text_after_a_header_is_refused_cheaply(tmp_path):
    """A few MB of junk: refused for its widths before being read whole (bench/bench_junk_input.py
    measures 200 MB)."""
    junk = [f"{PERSONAL} random words {i} ; and so on {COMPANY}" for i in range(50_000)]
    err = refused(read_survey, write(tmp_path, "survey_2010.csv", [HEADER, *junk]), YEAR)
    assert_clean(err, CODES)
    assert rules(err) == ["ragged_row"] and err.n_rows_rejected == 50_000
    assert len(err.failures[0].rows) == common.MAX_ROWS_KEPT


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_dangling_link_inside_is_ignored_by_discovery(tmp_path):
    write(tmp_path / "survey", "survey_2010.csv", [HEADER, *ROWS])
    (tmp_path / "survey" / "survey_2012.csv").symlink_to(tmp_path / "survey" / "gone.csv")
    assert list(discover_survey_files(tmp_path)) == [2010]


def test_cp1252_survey_with_accents_still_loads(tmp_path):
    lines = [HEADER + ";note", *(row + ";perché" for row in ROWS)]
    df = read_survey(write(tmp_path, "survey_2010.csv", lines, encoding="cp1252"), YEAR)
    assert df.height == 3 and df["value_added"].to_list() == [120000.0, 90000.0, 300000.0]
    assert isinstance(df, pl.DataFrame)
