"""Loading into DuckDB: one transaction per load, exact replacement of a year, the load log."""

from __future__ import annotations

import hashlib

import duckdb
import pytest
from fixtures_raw import (
    KEY,
    aida_firms,
    census_rows,
    company_code,
    llma_rows,
    subsidiaries,
    survey_rows,
    write_aida_xlsx,
    write_csv,
    write_parquet,
    write_survey_csv,
)

from offshoring import load, pseudonym, validation
from offshoring.readers.survey import SURVEY_COLUMNS, discover_survey_files
from offshoring.validation import ContractError


def _rows(con, year=None):
    where = f" WHERE year = {int(year)}" if year is not None else ""
    return con.execute(f"SELECT * FROM raw.survey_returns{where} ORDER BY ALL").fetchall()


def test_create_schema_is_idempotent():
    con = duckdb.connect()
    load.create_schema(con)
    load.create_schema(con)
    tables = {t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()}
    assert tables == set(validation.RAW_TABLES)


def test_reload_same_year_twice_gives_same_rows(tmp_path):
    db = tmp_path / "w.duckdb"
    path = write_survey_csv(tmp_path / "survey" / "survey_2008.csv", survey_rows(25, 2008))
    with duckdb.connect(str(db)) as con:
        first = load.load_survey_year(con, path, 2008, key=KEY, code_version="t")
        rows1 = _rows(con)
        second = load.load_survey_year(con, path, 2008, key=KEY, code_version="t")
        assert _rows(con) == rows1
        assert first.rows_written == second.rows_written == 25
        assert first.sha256 == second.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert con.execute("SELECT count(*) FROM raw.load_log WHERE status = 'loaded'").fetchone()[0] == 2
    with duckdb.connect(str(db)) as con:  # committed to the file
        assert _rows(con) == rows1


def test_loading_a_year_replaces_exactly_that_year(tmp_path):
    con = duckdb.connect()
    p8 = write_survey_csv(tmp_path / "survey_2008.csv", survey_rows(20, 2008))
    p9 = write_survey_csv(tmp_path / "survey_2009.csv", survey_rows(15, 2009))
    load.load_survey_year(con, p8, 2008, key=KEY, code_version="t")
    load.load_survey_year(con, p9, 2009, key=KEY, code_version="t")
    y9 = _rows(con, 2009)
    # a corrected re-delivery, within the delivery gate (at most 10% fewer returns)
    p8b = write_survey_csv(tmp_path / "survey_2008.csv", survey_rows(19, 2008, seed=5, start=100))
    report = load.load_survey_year(con, p8b, 2008, key=KEY, code_version="t")
    assert report.rows_written == 19
    assert len(_rows(con, 2008)) == 19
    assert _rows(con, 2009) == y9


def test_failure_inside_the_transaction_rolls_back(tmp_path, monkeypatch):
    con = duckdb.connect()
    path = write_survey_csv(tmp_path / "survey_2008.csv", survey_rows(20, 2008))
    load.load_survey_year(con, path, 2008, key=KEY, code_version="t")
    before = _rows(con)
    logs = con.execute("SELECT count(*) FROM raw.load_log").fetchone()[0]

    other = write_survey_csv(tmp_path / "survey_2008.csv", survey_rows(20, 2008, seed=9, start=500))

    def boom(con, report):
        raise RuntimeError("something broke inside the transaction")

    monkeypatch.setattr(load, "_insert_log", boom)
    with pytest.raises(RuntimeError, match="something broke"):
        load.load_survey_year(con, other, 2008, key=KEY, code_version="t")
    monkeypatch.undo()
    assert _rows(con) == before
    assert con.execute("SELECT count(*) FROM raw.load_log").fetchone()[0] == logs

    prepared = load.prepare_survey_year(other, 2008, key=KEY)

    def fail_before_commit(con):
        assert _rows(con) != before  # inside the transaction: the new delivery replaced the old
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load.write_prepared(con, prepared, code_version="t", _before_commit=fail_before_commit)
    assert _rows(con) == before
    con.execute("SELECT 1")  # the connection is usable again (no open transaction)
    assert load.write_prepared(con, prepared, code_version="t").rows_written == 20


def test_years_discovered_from_files(tmp_path):
    con = duckdb.connect()
    raw = tmp_path / "raw"
    write_survey_csv(raw / "survey" / "survey_2007.csv", survey_rows(10, 2007), encoding="cp1252")
    write_survey_csv(raw / "survey" / "survey_2008.csv.gz", survey_rows(10, 2008), gz=True,
                     italian=False, date_style="iso")
    write_parquet(raw / "survey" / "survey_2009.parquet", survey_rows(10, 2009), columns=SURVEY_COLUMNS)
    for year, path in discover_survey_files(raw).items():
        load.load_survey_year(con, path, year, key=KEY, code_version="t")
    counts = dict(con.execute("SELECT year, count(*) FROM raw.survey_returns GROUP BY year ORDER BY year").fetchall())
    assert counts == {2007: 10, 2008: 10, 2009: 10}
    formats = [f for (f,) in con.execute("SELECT file_format FROM raw.load_log ORDER BY partition").fetchall()]
    assert formats[0].startswith("csv;") and formats[1].startswith("csv.gz;") and formats[2] == "parquet"


def test_column_map_found_in_raw_folder(tmp_path):
    con = duckdb.connect()
    rows = survey_rows(5, 2008)
    headers = {"tax_code": "CODICE_FISCALE", "turnover": "RICAVI"}
    path = write_survey_csv(tmp_path / "survey" / "survey_2008.csv", rows, headers=headers)
    with pytest.raises(ContractError, match="missing: tax_code, turnover"):
        load.load_survey_year(con, path, 2008, key=KEY, code_version="t")
    (tmp_path / "column_map.yaml").write_text("survey:\n  CODICE_FISCALE: tax_code\n  RICAVI: turnover\n")
    assert load.load_survey_year(con, path, 2008, key=KEY, code_version="t").rows_written == 5


def test_report_metadata_and_log(tmp_path):
    con = duckdb.connect()
    path = write_survey_csv(tmp_path / "survey_2008.csv", survey_rows(8, 2008))
    report = load.load_survey_year(con, path, 2008, key=KEY)
    meta = report.as_metadata()
    assert meta["row_count"] == meta["rows_read"] == meta["rows_written"] == 8
    assert meta["rows_rejected"] == 0 and meta["reject_reasons"] == []
    assert meta["schema"] == dict(validation.RAW_TABLES["survey_returns"])
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["code_version"].startswith("0.")
    log = con.execute("SELECT table_name, partition, file, sha256, rows_read, rows_written, status, code_version "
                      "FROM raw.load_log").fetchone()
    assert log == ("survey_returns", "2008", str(path), meta["sha256"], 8, 8, "loaded", meta["code_version"])


def test_blank_rows_are_counted_as_rejected(tmp_path):
    con = duckdb.connect()
    path = write_survey_csv(tmp_path / "survey_2008.csv", survey_rows(4, 2008))
    path.write_text(path.read_text() + ";" * 20 + "\n")
    report = load.load_survey_year(con, path, 2008, key=KEY, code_version="t")
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (5, 4, 1)
    assert report.reasons[0]["rule"] == "empty_row"


def test_all_inputs_load_and_no_tax_code_is_stored(tmp_path):
    con = duckdb.connect()
    srows = survey_rows(30, 2008)
    firms = aida_firms(8, [2007, 2008])
    subs = subsidiaries(firms)
    load.load_survey_year(con, write_survey_csv(tmp_path / "survey" / "survey_2008.csv", srows), 2008,
                          key=KEY, code_version="t")
    r1 = load.load_aida_firms(con, write_aida_xlsx(tmp_path / "aida" / "aida_firms.xlsx", firms, numeric_codes=True),
                              key=KEY, code_version="t")
    r2 = load.load_aida_subsidiaries(con, write_csv(tmp_path / "aida" / "aida_subsidiaries.csv", subs),
                                     key=KEY, code_version="t")
    r3 = load.load_llma(con, write_csv(tmp_path / "reference" / "llma.csv", llma_rows()), code_version="t")
    r4 = load.load_census_employment(con, write_csv(tmp_path / "reference" / "census_employment.csv",
                                                    census_rows()), code_version="t")
    r5 = load.load_municipalities(con, code_version="t")
    assert (r1.rows_read, r1.rows_written) == (8, 16)
    assert r2.rows_written == 8 and r3.rows_written == 6 and r4.rows_written == 48 and r5.rows_written > 7000
    for table in validation.RAW_TABLES:
        assert validation.check_schema(con, table).passed, table
        assert validation.check_unique_keys(con, table).passed, table
        assert validation.check_non_null_keys(con, table).passed, table

    # the same firm gets the same pseudonym in the survey and in AIDA: fixture firms 0-7
    # are in both, except firm 3, a sole proprietor in the survey fixture
    assert srows[0]["tax_code"] == firms[0]["tax_code"] == company_code(0)
    shared = con.execute("SELECT count(DISTINCT s.firm_id) FROM raw.survey_returns s "
                         "JOIN raw.aida_firm_years a USING (firm_id)").fetchone()[0]
    assert shared == sum(1 for r in srows[:8] if r["tax_code"] == company_code(srows.index(r))) == 7
    assert con.execute("SELECT count(*) FROM raw.aida_subsidiaries s "
                       "JOIN (SELECT DISTINCT firm_id FROM raw.aida_firm_years) USING (firm_id)").fetchone()[0] == 8

    expected = {pseudonym.firm_id(r["tax_code"], KEY): r["source"] for r in
                [{"tax_code": r["tax_code"], "source": i + 1} for i, r in enumerate(srows)]}
    got = dict(con.execute("SELECT firm_id, source_row FROM raw.survey_returns").fetchall())
    assert got == expected

    codes = {r["tax_code"] for r in srows} | {f["tax_code"] for f in firms}
    for table, cols in validation.RAW_TABLES.items():
        for col, dtype in cols:
            if dtype != "VARCHAR":
                continue
            values = {v for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM raw.{table}').fetchall() if v}
            assert not values & codes, (table, col)
            assert not any(c in v for v in values for c in codes if table == "load_log"), (table, col)


def test_municipalities_from_user_file(tmp_path):
    from offshoring import geo

    lines = geo.bundled_list_path().read_bytes()
    user = tmp_path / "Elenco-comuni-italiani.csv"
    user.write_bytes(lines)
    con = duckdb.connect()
    report = load.load_municipalities(con, user, code_version="t")
    assert report.file == str(user) and report.rows_written > 7000
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"a;b;c\n1;2;3\n")
    with pytest.raises(ContractError, match="invalid_list"):
        load.load_municipalities(con, broken, code_version="t")
    assert con.execute("SELECT count(*) FROM raw.municipalities").fetchone()[0] == report.rows_written


def test_year_of_the_file_name_must_match_the_load(tmp_path):
    con = duckdb.connect()
    path = write_survey_csv(tmp_path / "survey_2009.csv", survey_rows(3, 2009))
    with pytest.raises(ContractError, match="file name says 2009, the load says 2008"):
        load.load_survey_year(con, path, 2008, key=KEY, code_version="t")
    other = write_survey_csv(tmp_path / "delivery.csv", survey_rows(3, 2009))
    assert load.load_survey_year(con, other, 2009, key=KEY, code_version="t").rows_written == 3


# --- refused AIDA and reference files: the tables stay as they were -----------------------------


def _table(con, table):
    return con.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").fetchall()


def _last_log(con):
    return con.execute("SELECT table_name, status, rows_written FROM raw.load_log "
                       "ORDER BY loaded_at DESC LIMIT 1").fetchone()


def test_refused_aida_subsidiaries_and_census_files_leave_their_tables_as_they_were(tmp_path):
    con = duckdb.connect()
    firms = aida_firms(6, [2009, 2010])
    firms[0]["turnover_2010"] = 123.456  # a number cell of the workbook (thousand EUR): kept as it is
    firms[1]["province"] = "OT"  # Olbia-Tempio, abolished in 2016: accepted, the panel maps it
    aida_dir, ref = tmp_path / "aida", tmp_path / "reference"
    load.load_aida_firms(con, write_aida_xlsx(aida_dir / "aida_firms.xlsx", firms), key=KEY, code_version="t")
    assert con.execute("SELECT turnover FROM raw.aida_firm_years WHERE source_row = 1 AND year = 2010"
                       ).fetchone()[0] == 123.456
    load.load_aida_subsidiaries(con, write_csv(aida_dir / "aida_subsidiaries.csv", subsidiaries(firms)), key=KEY,
                                code_version="t")
    load.load_census_employment(con, write_csv(ref / "census_employment.csv", census_rows()), code_version="t")
    bad_firms = [dict(f) for f in firms]
    bad_firms[3]["province"] = "ZZ"
    cases = [
        ("aida_firm_years", "unknown_province", "province", lambda: load.load_aida_firms(
            con, write_aida_xlsx(aida_dir / "aida_firms.xlsx", bad_firms), key=KEY, code_version="t")),
        ("aida_subsidiaries", "ambiguous_number", "ownership_pct", lambda: load.load_aida_subsidiaries(
            con, write_csv(aida_dir / "aida_subsidiaries.csv", subsidiaries(firms),
                           raw_cells={(3, "ownership_pct"): "50.001"}), key=KEY, code_version="t")),
        ("census_employment", "ambiguous_number", "employees", lambda: load.load_census_employment(
            con, write_csv(ref / "census_employment.csv", census_rows(), raw_cells={(3, "employees"): "2.000"}),
            code_version="t")),
    ]
    for table, rule, column, call in cases:
        before = _table(con, table)
        with pytest.raises(ContractError) as err:
            call()
        line = next(ln for ln in str(err.value).splitlines() if f"[{rule}]" in ln)
        assert f"column '{column}'" in line and line.endswith("1 data row: 4"), line
        assert _table(con, table) == before, table
        assert _last_log(con) == (table, "rejected", 0)


def test_unknown_province_is_refused_by_the_pre_flight_and_by_the_asset(tmp_path, monkeypatch):
    """The sigle are those of the raw folder's ISTAT list (a user's list overrides the bundled
    one) plus the abolished provinces; the command line's pre-flight and the Dagster asset
    both refuse a firm outside them before anything is written."""
    import dagster as dg

    from assets import raw as raw_assets
    from assets.resources import Folders, Warehouse
    from offshoring import geo

    key = "province-gate-key-0123456789abcdef-not-secret"
    monkeypatch.setenv("OFFSHORING_PSEUDONYM_KEY", key)
    raw, db = tmp_path / "raw", tmp_path / "w.duckdb"
    resources = {"warehouse": Warehouse(database=str(db)),
                 "folders": Folders(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"))}
    firms = aida_firms(4, [2009, 2010])
    for f, sigla in zip(firms, ["TO", "OT", "FI", "TO"]):
        f["province"] = sigla
    path = write_aida_xlsx(raw / "aida" / "aida_firms.xlsx", firms)
    assert dg.materialize([raw_assets.aida_firm_years], resources=resources).success  # the bundled list
    with duckdb.connect(str(db), read_only=True) as con:
        before = _table(con, "aida_firm_years")
    # a user's list of Turin's municipalities only (the bundled list's first 100): FI is not in it
    lines = geo.bundled_list_path().read_bytes().splitlines(keepends=True)
    (raw / "reference").mkdir()
    (raw / "reference" / "Elenco-comuni-italiani.csv").write_bytes(b"".join(lines[:101]))
    firms[3]["employees_2010"] = 1.0  # a changed export, for the pre-flight to read it again
    write_aida_xlsx(path, firms)
    with pytest.raises(ContractError) as err:
        load.check_changed_inputs(raw, db, key=key.encode())
    pre_flight = str(err.value)
    assert "aida_firms.xlsx" in pre_flight and "[unknown_province] column 'province'" in pre_flight
    assert "'FI'" in pre_flight and "1 data row: 3" in pre_flight and "Elenco-comuni-italiani.csv" in pre_flight
    result = dg.materialize([raw_assets.aida_firm_years], resources=resources, raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "[unknown_province] column 'province'" in message and "'FI'" in message
    with duckdb.connect(str(db), read_only=True) as con:
        assert _table(con, "aida_firm_years") == before
        assert _last_log(con) == ("aida_firm_years", "rejected", 0)
