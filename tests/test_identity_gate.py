"""The load's own refusals, inside its transaction: the warehouse identity and the delivery gate."""

from __future__ import annotations

import duckdb
import pytest
from fixtures_raw import KEY, survey_rows, write_survey_csv

from offshoring import load
from offshoring.identity import Identity, IdentityError, check_database_file, key_fingerprint, stored_identity
from offshoring.validation import ContractError

REAL = Identity("real", key_fingerprint(KEY))


def _load(con, path, year, *, identity=REAL, gate=None, key=KEY):
    return load.load_survey_year(con, path, year, key=key, identity=identity, database="w.duckdb",
                                 gate=gate)


def _count(con, year):
    return con.execute("SELECT count(*) FROM raw.survey_returns WHERE year = ?", [year]).fetchall()[0][0]


def test_fingerprint_names_the_key_without_revealing_it():
    fp = key_fingerprint(KEY)
    assert fp == key_fingerprint(KEY) and fp != key_fingerprint(KEY + b"x")
    assert len(fp) == 16 and KEY.hex()[:16] != fp and KEY.decode(errors="ignore")[:16] != fp


def test_first_load_records_identity_and_others_are_refused(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    f = write_survey_csv(tmp_path / "survey" / "survey_2008.csv", survey_rows(30, 2008))
    _load(con, f, 2008)
    assert stored_identity(con) == REAL
    before = con.execute("SELECT * FROM raw.survey_returns ORDER BY ALL").fetchall()
    other_key = Identity("real", key_fingerprint(b"another-key-0123456789"))
    with pytest.raises(IdentityError, match="another key"):
        _load(con, f, 2008, identity=other_key, key=b"another-key-0123456789")
    with pytest.raises(IdentityError, match="holds real survey data"):
        _load(con, f, 2008, identity=Identity("synthetic", key_fingerprint(KEY)))
    assert con.execute("SELECT * FROM raw.survey_returns ORDER BY ALL").fetchall() == before
    assert stored_identity(con) == REAL
    con.close()
    # the command line's pre-flight says the same without opening the file for writing
    assert check_database_file(tmp_path / "w.duckdb", REAL) is None
    assert "another key" in check_database_file(tmp_path / "w.duckdb", other_key)
    assert check_database_file(tmp_path / "missing.duckdb", other_key) is None


def test_a_re_delivery_may_not_shrink_unless_accepted(tmp_path):
    con = duckdb.connect()
    rows = survey_rows(100, 2009)
    f = write_survey_csv(tmp_path / "survey" / "survey_2009.csv", rows)
    _load(con, f, 2009)
    write_survey_csv(f, rows[:89])  # -11%
    with pytest.raises(ContractError, match=r"smaller_delivery.*89 returns where the one it replaces had 100"):
        _load(con, f, 2009)
    assert _count(con, 2009) == 100
    rejected = con.execute("SELECT count(*) FROM raw.load_log WHERE status = 'rejected'").fetchall()[0][0]
    assert rejected == 1
    write_survey_csv(f, rows[:91])  # -9%: within the gate
    _load(con, f, 2009)
    assert _count(con, 2009) == 91
    write_survey_csv(f, rows[:10])
    report = _load(con, f, 2009, gate=load.DeliveryGate(accept_smaller=frozenset({2009})))
    assert _count(con, 2009) == 10
    assert [w.rule for w in report.warnings] == ["accepted_smaller_delivery"]
    logged = con.execute("SELECT warnings FROM raw.load_log WHERE status = 'loaded' "
                         "ORDER BY loaded_at DESC LIMIT 1").fetchall()[0][0]
    assert "accepted by the user for 2009" in logged


def test_a_new_year_far_below_its_neighbours_and_an_empty_first_year(tmp_path):
    con = duckdb.connect()
    for y in (2008, 2010):
        _load(con, write_survey_csv(tmp_path / "survey" / f"survey_{y}.csv", survey_rows(100, y)), y)
    small = write_survey_csv(tmp_path / "survey" / "survey_2009.csv", survey_rows(40, 2009))
    with pytest.raises(ContractError, match=r"40% of the 100 of its neighbouring years 2008 and 2010"):
        _load(con, small, 2009)
    assert _count(con, 2009) == 0
    _load(con, write_survey_csv(small, survey_rows(60, 2009)), 2009)
    assert _count(con, 2009) == 60
    empty = write_survey_csv(tmp_path / "other" / "survey" / "survey_2011.csv", [])
    with pytest.raises(ContractError, match="holds no returns"):
        _load(duckdb.connect(), empty, 2011)


def test_gate_settings_are_checked():
    with pytest.raises(ValueError, match="max_shrink_share"):
        load.DeliveryGate(max_shrink_share=1.5)
