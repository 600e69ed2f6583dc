"""One test per rejection rule: the message names file, rule, column and rows (never a
tax code), and the data loaded before stays as it was. Then warnings and table checks."""

from __future__ import annotations

import copy
import json
import re

import duckdb
import pytest
from fixtures_raw import (
    KEY,
    aida_firms,
    census_rows,
    llma_rows,
    subsidiaries,
    survey_rows,
    write_csv,
    write_survey_csv,
)

from offshoring import load, validation
from offshoring.readers.survey import SURVEY_COLUMNS
from offshoring.validation import ContractError

YEAR = 2008
N = 20


@pytest.fixture
def loaded(tmp_path):
    con = duckdb.connect()
    rows = survey_rows(N, YEAR)
    path = write_survey_csv(tmp_path / "survey" / "survey_2008.csv", rows)
    load.load_survey_year(con, path, YEAR, key=KEY, code_version="test")
    yield con, rows, tmp_path
    con.close()


def _snapshot(con, table="survey_returns"):
    return con.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").fetchall()


def _assert_rejected(con, rows, path, load_call, *, rule, column, data_rows, table="survey_returns"):
    before = _snapshot(con, table)
    with pytest.raises(ContractError) as err:
        load_call(path)
    msg = str(err.value)
    assert path.name in msg
    assert "nothing loaded" in msg
    line = next((ln for ln in msg.splitlines() if f"[{rule}]" in ln), None)
    assert line is not None, msg
    if column:
        assert f"'{column}'" in line or f"({column})" in line, line
    listed = [int(x) for x in re.findall(r"\d+", line.split("data row")[-1])] if data_rows else []
    for r in data_rows:
        assert r in listed, (r, line)
    for row in rows:
        code = row.get("tax_code")
        if code:
            assert code not in msg
    assert _snapshot(con, table) == before
    assert err.value.report.status == "rejected" and err.value.report.rows_written == 0
    log = con.execute("SELECT status, rows_written, reject_reasons FROM raw.load_log "
                      "ORDER BY loaded_at DESC LIMIT 1").fetchone()
    assert log[0] == "rejected" and log[1] == 0
    assert rule in {r["rule"] for r in json.loads(log[2])}
    for row in rows:
        if row.get("tax_code"):
            assert row["tax_code"] not in log[2]
    return msg


def _survey_case(loaded, *, cells=None, mutate=None, rule, column, data_rows, columns=None):
    con, rows, tmp = loaded
    rows = copy.deepcopy(rows)
    if mutate:
        mutate(rows)
    path = write_survey_csv(tmp / "survey" / "survey_2008.csv", rows, raw_cells=cells,
                            columns=columns or SURVEY_COLUMNS)
    return _assert_rejected(
        con, rows, path, lambda p: load.load_survey_year(con, p, YEAR, key=KEY, code_version="test"),
        rule=rule, column=column, data_rows=data_rows,
    )


def test_missing_required_column(loaded):
    msg = _survey_case(loaded, columns=[c for c in SURVEY_COLUMNS if c != "export_share"],
                       rule="missing_columns", column=None, data_rows=[])
    assert "missing: export_share" in msg and "found: 'tax_code'" in msg


def test_unparseable_number(loaded):
    msg = _survey_case(loaded, cells={(3, "turnover"): "12x", (6, "turnover"): "1,2,3"},
                       rule="unparseable_number", column="turnover", data_rows=[4, 7])
    assert "12x" not in msg.split("survey_2008.csv", 1)[1]


def test_unparseable_date(loaded):
    _survey_case(loaded, cells={(2, "filing_date"): "31/02/2009"},
                 rule="unparseable_date", column="filing_date", data_rows=[3])


def test_unparseable_year(loaded):
    _survey_case(loaded, cells={(2, "year"): "2008,5"},
                 rule="unparseable_integer", column="year", data_rows=[3])


def test_year_differs_from_file(loaded):
    def mutate(rows):
        rows[1]["year"] = 2009
    _survey_case(loaded, mutate=mutate, rule="year_mismatch", column="year", data_rows=[2])


def test_duplicate_firm_year_same_filing_date(loaded):
    def mutate(rows):
        rows[4] = dict(rows[0])
    msg = _survey_case(loaded, mutate=mutate, rule="duplicate_filing", column="tax_code, year, filing_date",
                       data_rows=[1, 5])
    assert "same filing date" in msg


def test_corrected_refiling_is_not_a_duplicate(loaded):
    con, rows, tmp = loaded
    rows = copy.deepcopy(rows)
    refiled = dict(rows[0])
    refiled["filing_date"] = rows[0]["filing_date"].replace(day=28)
    rows.append(refiled)
    path = write_survey_csv(tmp / "survey" / "survey_2008.csv", rows)
    report = load.load_survey_year(con, path, YEAR, key=KEY, code_version="test")
    assert report.rows_written == N + 1


@pytest.mark.parametrize("column", ["turnover", "employees", "wage_costs", "subcontracting_east_asia"])
def test_negative_amounts(loaded, column):
    _survey_case(loaded, cells={(5, column): "-1,5"}, rule="negative_value", column=column, data_rows=[6])


def test_negative_income_and_value_added_are_allowed(loaded):
    con, rows, tmp = loaded
    rows = copy.deepcopy(rows)
    rows[0]["net_income"] = -10.0
    rows[0]["value_added"] = -5.0
    rows[0]["roi"] = -3.0
    path = write_survey_csv(tmp / "survey" / "survey_2008.csv", rows)
    assert load.load_survey_year(con, path, YEAR, key=KEY, code_version="test").rows_written == N


@pytest.mark.parametrize("value", ["100,5", "-1"])
def test_export_share_outside_0_100(loaded, value):
    _survey_case(loaded, cells={(7, "export_share"): value},
                 rule="share_out_of_range", column="export_share", data_rows=[8])


@pytest.mark.parametrize("column,value", [("credit_access", "2"), ("supplier", "0,5"), ("high_value_added", "-1")])
def test_flags_outside_0_1(loaded, column, value):
    _survey_case(loaded, cells={(0, column): value}, rule="flag_not_binary", column=column, data_rows=[1])


def test_unknown_market_area(loaded):
    _survey_case(loaded, cells={(9, "market_area"): "galactic"},
                 rule="unknown_market_area", column="market_area", data_rows=[10])


@pytest.mark.parametrize("value", ["12AB45", "1234567", "12"])
def test_malformed_municipality_code(loaded, value):
    _survey_case(loaded, cells={(2, "municipality_code"): value},
                 rule="malformed_municipality_code", column="municipality_code", data_rows=[3])


@pytest.mark.parametrize("value", ["ABC123", "123456789012", "RSSMRA80A01H50", "0123456789"])
def test_malformed_tax_code(loaded, value):
    msg = _survey_case(loaded, cells={(11, "tax_code"): value},
                       rule="malformed_tax_code", column="tax_code", data_rows=[12])
    assert value not in msg.split("survey_2008.csv", 1)[1]


def test_missing_tax_code(loaded):
    _survey_case(loaded, cells={(3, "tax_code"): ""}, rule="missing_value", column="tax_code", data_rows=[4])


def test_many_failures_are_counted_and_listed(loaded):
    cells = {(i, "employees"): "x" for i in range(12)} | {(15, "export_share"): "200"}
    msg = _survey_case(loaded, cells=cells, rule="unparseable_number", column="employees", data_rows=[1, 2, 3])
    assert "13 data rows break the contract" in msg
    assert "12 data rows: 1, 2, 3, 4, 5 and 7 more" in msg
    assert "[share_out_of_range]" in msg


def test_error_when_nothing_loaded_yet(tmp_path):
    con = duckdb.connect()
    rows = survey_rows(5, YEAR)
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows, raw_cells={(0, "roi"): "?"})
    with pytest.raises(ContractError):
        load.load_survey_year(con, path, YEAR, key=KEY, code_version="test")
    assert con.execute("SELECT count(*) FROM raw.survey_returns").fetchone()[0] == 0


# --- other inputs --------------------------------------------------------------------------------


@pytest.fixture
def loaded_aida(tmp_path):
    con = duckdb.connect()
    firms = aida_firms(6, [2008, 2009])
    load.load_aida_firms(con, write_csv(tmp_path / "aida" / "aida_firms.csv", firms), key=KEY, code_version="t")
    subs = subsidiaries(firms)
    load.load_aida_subsidiaries(con, write_csv(tmp_path / "aida" / "aida_subsidiaries.csv", subs), key=KEY,
                                code_version="t")
    yield con, firms, subs, tmp_path
    con.close()


def test_aida_negative_turnover_names_the_year_column(loaded_aida):
    con, firms, _, tmp = loaded_aida
    path = write_csv(tmp / "aida" / "aida_firms.csv", firms, raw_cells={(2, "turnover_2009"): "-1.000"})
    _assert_rejected(con, firms, path, lambda p: load.load_aida_firms(con, p, key=KEY, code_version="t"),
                     rule="negative_value", column="turnover_2009", data_rows=[3], table="aida_firm_years")


def test_aida_malformed_tax_code_and_duplicate(loaded_aida):
    con, firms, _, tmp = loaded_aida
    rows = copy.deepcopy(firms)
    rows[4]["tax_code"] = rows[0]["tax_code"]
    path = write_csv(tmp / "aida" / "aida_firms.csv", rows, raw_cells={(1, "tax_code"): "IT0123"})
    msg = _assert_rejected(con, rows, path, lambda p: load.load_aida_firms(con, p, key=KEY, code_version="t"),
                           rule="malformed_tax_code", column="tax_code", data_rows=[2], table="aida_firm_years")
    assert "[duplicate_key]" in msg and "IT0123" not in msg.split("aida_firms.csv", 1)[1]


def test_aida_unparseable_number(loaded_aida):
    con, firms, _, tmp = loaded_aida
    path = write_csv(tmp / "aida" / "aida_firms.csv", firms, raw_cells={(0, "employees_2008"): "circa 10"})
    _assert_rejected(con, firms, path, lambda p: load.load_aida_firms(con, p, key=KEY, code_version="t"),
                     rule="unparseable_number", column="employees_2008", data_rows=[1], table="aida_firm_years")


@pytest.mark.parametrize(
    "cells,rule,column",
    [
        ({(1, "ownership_pct"): "150"}, "share_out_of_range", "ownership_pct"),
        ({(1, "last_year"): "1990"}, "year_order", "last_year"),
        ({(1, "country_iso2"): "IT"}, "country_not_foreign", "country_iso2"),
        ({(1, "country_iso2"): "ROM"}, "malformed_country", "country_iso2"),
        ({(1, "first_year"): ""}, "missing_value", "first_year"),
    ],
)
def test_subsidiary_rules(loaded_aida, cells, rule, column):
    con, _, subs, tmp = loaded_aida
    path = write_csv(tmp / "aida" / "aida_subsidiaries.csv", subs, raw_cells=cells)
    _assert_rejected(con, subs, path, lambda p: load.load_aida_subsidiaries(con, p, key=KEY, code_version="t"),
                     rule=rule, column=column, data_rows=[2], table="aida_subsidiaries")


def test_llma_and_census_rules(tmp_path):
    con = duckdb.connect()
    load.load_llma(con, write_csv(tmp_path / "reference" / "llma.csv", llma_rows()), code_version="t")
    load.load_census_employment(con, write_csv(tmp_path / "reference" / "census_employment.csv", census_rows()),
                                code_version="t")
    path = write_csv(tmp_path / "reference" / "llma.csv", llma_rows(), raw_cells={(1, "municipality_code"): "A1"})
    _assert_rejected(con, [], path, lambda p: load.load_llma(con, p, code_version="t"),
                     rule="malformed_municipality_code", column="municipality_code", data_rows=[2], table="llma")
    rows = census_rows()
    path = write_csv(tmp_path / "reference" / "census_employment.csv", rows,
                     raw_cells={(0, "size_class"): "1000+", (3, "employees"): "-4", (5, "ateco_division"): "141"})
    msg = _assert_rejected(con, [], path, lambda p: load.load_census_employment(con, p, code_version="t"),
                           rule="unknown_size_class", column="size_class", data_rows=[1], table="census_employment")
    assert "[negative_value] column 'employees'" in msg and "[malformed_division]" in msg


# --- warnings ------------------------------------------------------------------------------------


def test_warnings_are_recorded_not_rejected(tmp_path):
    con = duckdb.connect()
    rows = survey_rows(40, YEAR)
    rows[5]["tax_code"] = rows[5]["tax_code"][:-1] + ("0" if rows[5]["tax_code"][-1] != "0" else "1")
    rows[6]["ateco_2007"] = None
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows)
    report = load.load_survey_year(con, path, YEAR, key=KEY, code_version="test")
    assert report.rows_written == 40
    by_rule = {w.rule: w for w in report.warnings}
    assert by_rule["tax_code_bad_check_character"].n_rows == 1
    assert by_rule["missing_ateco"].n_rows == 1
    assert set(by_rule) <= set(validation.WARNING_RULES["survey_returns"])
    logged = json.loads(con.execute("SELECT warnings FROM raw.load_log").fetchone()[0])
    assert {w["rule"] for w in logged} == set(by_rule)
    text = json.dumps([w.as_dict() for w in report.warnings]) + json.dumps(report.as_metadata(), default=str)
    for r in rows:
        assert r["tax_code"] not in text
    assert con.execute("SELECT count(*) FROM raw.survey_returns WHERE NOT tax_code_check_ok").fetchone()[0] == 1


def test_a_clean_delivery_raises_no_warning(tmp_path):
    rows = survey_rows(200, YEAR)
    path = write_survey_csv(tmp_path / "survey_2008.csv", rows)
    report = load.load_survey_year(duckdb.connect(), path, YEAR, key=KEY, code_version="t")
    assert report.warnings == []
    assert all(r.passed for r in validation.warning_checks(report.warnings, "survey_returns").values())


# --- checks on the loaded tables ------------------------------------------------------------------


def test_table_checks(loaded):
    con, rows, tmp = loaded
    for table in validation.RAW_TABLES:
        assert validation.check_schema(con, table).passed, table
    assert validation.check_unique_keys(con, "survey_returns", year=YEAR).passed
    assert validation.check_non_null_keys(con, "survey_returns", year=YEAR).passed
    assert validation.row_count_vs_previous(con, YEAR) == (True, N, None)

    # a year much smaller than its neighbour passes the delivery gate only when accepted
    small = survey_rows(N // 2 - 1, YEAR + 1)
    load.load_survey_year(con, write_survey_csv(tmp / "survey" / "survey_2009.csv", small), YEAR + 1,
                          key=KEY, code_version="t", gate=load.DeliveryGate(accept_smaller=frozenset({YEAR + 1})))
    assert validation.row_count_vs_previous(con, YEAR + 1) == (False, N // 2 - 1, N)
    load.load_survey_year(con, write_survey_csv(tmp / "survey" / "survey_2009.csv", survey_rows(N // 2, YEAR + 1)),
                          YEAR + 1, key=KEY, code_version="t")
    assert validation.row_count_vs_previous(con, YEAR + 1) == (True, N // 2, N)

    con.execute("INSERT INTO raw.survey_returns (firm_id, year, filing_date) "
                "SELECT firm_id, year, filing_date FROM raw.survey_returns WHERE year = 2008 LIMIT 2")
    con.execute("INSERT INTO raw.survey_returns (firm_id, year) VALUES (NULL, 2008)")
    dup = validation.check_unique_keys(con, "survey_returns", year=YEAR)
    assert not dup.passed and dup.metadata["duplicated_keys"] == 2
    assert validation.check_unique_keys(con, "survey_returns", year=YEAR + 1).passed
    nn = validation.check_non_null_keys(con, "survey_returns", year=YEAR)
    assert not nn.passed and nn.metadata["rows_with_null_key"] == 1
    con.execute("ALTER TABLE raw.llma ADD COLUMN extra INTEGER")
    sc = validation.check_schema(con, "llma")
    assert not sc.passed and "extra column extra" in sc.description


def test_duplicate_participations_are_kept_with_a_warning(tmp_path):
    firms = aida_firms(4, [2008])
    subs = subsidiaries(firms)
    subs.append(dict(subs[1]))
    path = write_csv(tmp_path / "aida_subsidiaries.csv", subs)
    con = duckdb.connect()
    report = load.load_aida_subsidiaries(con, path, key=KEY, code_version="t")
    assert report.rows_written == 5
    assert [(w.rule, w.n_rows) for w in report.warnings] == [("duplicate_participation", 2)]
    assert validation.check_unique_keys(con, "aida_subsidiaries").passed


def test_check_bundles_for_the_asset_layer(loaded):
    con, rows, tmp = loaded
    checks = validation.table_checks(con, "survey_returns", year=YEAR)
    assert set(checks) == {"unique_keys", "non_null_keys", "schema_matches_contract", "row_count_vs_previous"}
    assert all(c.passed for c in checks.values())
    assert "no previous delivery" in checks["row_count_vs_previous"].description
    warned = [validation.ValidationWarning("missing_ateco", "survey_returns", "ateco_2007", 3, "3 returns")]
    res = validation.warning_checks(warned, "survey_returns")
    assert set(res) == set(validation.WARNING_RULES["survey_returns"])
    assert not res["missing_ateco"].passed and res["missing_ateco"].metadata["n_rows"] == 3
    assert res["tax_code_bad_check_character"].passed
