"""The panel stage on small raw tables built here: dedup, geography, spells, spillovers."""

from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import polars as pl
import pytest

from offshoring import panel
from offshoring.geo import read_municipalities
from offshoring.spec import Thresholds

THRESHOLDS = Thresholds.model_validate({
    "turnover_ceiling": {"default": 7_500_000, "by_year": {2005: 5_164_569, 2006: 5_164_569}},
    "offshoring_ownership_pct": 50, "plausibility": {"max_median_factor": 3, "ceiling_share_margin": 0.02, "max_share_above_ceiling": 0.05},
    "delivery_gate": {"max_shrink_share": 0.1, "min_share_of_neighbours": 0.5, "accept_smaller": []}})

SURVEY_COLS = [
    "firm_id", "year", "filing_date", "ateco_2007", "municipality_code", "turnover", "employees",
    "value_added", "wage_costs", "net_income", "roi", "export_share", "credit_access",
    "market_area", "high_value_added", "supplier", "subcontracting_italy", "subcontracting_europe",
    "subcontracting_north_africa", "subcontracting_east_asia", "subcontracting_other",
    "legal_form", "foreign_owner", "tax_code_check_ok", "source_file", "source_row",
]


def fid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def ret(firm, year, code, *, turnover=1e6, europe=0.0, east_asia=0.0, filed=None, ateco="141310",
        foreign=0, row=1):
    return {
        "firm_id": fid(firm), "year": year,
        "filing_date": filed or dt.date(year + 1, 6, 30), "ateco_2007": ateco,
        "municipality_code": code, "turnover": turnover, "employees": 10.0,
        "value_added": 400_000.0, "wage_costs": 250_000.0, "net_income": 10_000.0, "roi": 5.0,
        "export_share": 20.0, "credit_access": 1, "market_area": "national", "high_value_added": 0,
        "supplier": 1, "subcontracting_italy": 1000.0, "subcontracting_europe": europe,
        "subcontracting_north_africa": 0.0, "subcontracting_east_asia": east_asia,
        "subcontracting_other": 0.0, "legal_form": "company", "foreign_owner": foreign,
        "tax_code_check_ok": True, "source_file": f"survey_{year}.csv", "source_row": row,
    }


PRATO, FERMO_107, FERMO_110, MONZA_107 = "100005", "044019", "109006", "015149"


@pytest.fixture()
def con():
    c = duckdb.connect()
    c.execute("CREATE SCHEMA raw; CREATE SCHEMA geography")
    munis = read_municipalities()
    c.register("m", munis.to_arrow())
    c.execute("CREATE TABLE raw.municipalities AS SELECT * FROM m")
    c.execute("CREATE TABLE raw.llma AS SELECT municipality_code, 'L' || province AS llma_code, "
              "'area ' || province AS llma_name FROM m")
    c.execute("CREATE TABLE geography.llma_districts AS SELECT DISTINCT 'L' || province AS llma_code, "
              "(province IN ('PO', 'FM'))::INT AS district FROM m")
    yield c
    c.close()


def load(con, survey: list[dict], aida: list[dict] | None = None, subs: list[dict] | None = None):
    df = pl.DataFrame(survey).select(SURVEY_COLS).with_columns(pl.col("year").cast(pl.Int32))
    con.register("s", df.to_arrow())
    con.execute("CREATE OR REPLACE TABLE raw.survey_returns AS SELECT * FROM s")
    a = pl.DataFrame(aida or [], schema={"firm_id": pl.String, "company_name": pl.String,
                                        "province": pl.String, "ateco_2007": pl.String,
                                        "year": pl.Int32, "turnover": pl.Float64,
                                        "employees": pl.Float64, "source_file": pl.String,
                                        "source_row": pl.Int32})
    con.register("a", a.to_arrow())
    con.execute("CREATE OR REPLACE TABLE raw.aida_firm_years AS SELECT * FROM a")
    sb = pl.DataFrame(subs or [], schema={"firm_id": pl.String, "subsidiary_name": pl.String,
                                         "country_iso2": pl.String, "destination": pl.String,
                                         "ownership_pct": pl.Float64, "first_year": pl.Int32,
                                         "last_year": pl.Int32})
    con.register("sb", sb.to_arrow())
    con.execute("CREATE OR REPLACE TABLE raw.aida_subsidiaries AS SELECT * FROM sb")
    from offshoring.sqlfiles import run_sql

    run_sql(con, "geography_municipality_xwalk")
    run_sql(con, "geography_province_prefix")
    panel.build_firm_years(con, THRESHOLDS)
    panel.build_aida_offshoring(con, THRESHOLDS)
    run_sql(con, "geography_province_spillovers")
    panel.build_model_panel(con, leave_one_out=True)
    panel.build_spells(con)
    panel.build_spell_years(con)
    run_sql(con, "panel_dedup_report")


def rows(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()


def test_corrected_return_latest_filing_counts(con):
    load(con, [
        ret("a", 2008, PRATO, turnover=1e6, filed=dt.date(2009, 6, 1), row=1),
        ret("a", 2008, PRATO, turnover=2e6, filed=dt.date(2009, 9, 1), row=2),
    ])
    assert rows(con, "SELECT turnover FROM panel.firm_years") == [(2e6,)]
    assert rows(con, "SELECT reason, source_row FROM panel.survey_rejects") == [
        ("superseded_by_later_filing", 1)]


def test_firm_crossing_ceiling_leaves_panel_and_counts_once_in_aida(con):
    load(con, [
        ret("b", 2007, PRATO, turnover=5e6),
        ret("b", 2008, PRATO, turnover=8e6),
        ret("z", 2008, PRATO),  # a year whose every return is above the ceiling is refused (below)
    ], aida=[
        {"firm_id": fid("b"), "company_name": "B", "province": "po", "ateco_2007": "141310",
         "year": 2007, "turnover": 5e6, "employees": 40.0},
        {"firm_id": fid("b"), "company_name": "B", "province": "po", "ateco_2007": "141310",
         "year": 2008, "turnover": 8e6, "employees": 45.0},
    ], subs=[{"firm_id": fid("b"), "subsidiary_name": "B RO", "country_iso2": "RO",
              "destination": "europe", "ownership_pct": 60.0, "first_year": 2007, "last_year": None}])
    assert rows(con, "SELECT year FROM panel.firm_years WHERE firm_id = ?", fid("b")) == [(2007,)]
    assert rows(con, "SELECT year, reason FROM panel.survey_rejects") == [(2008, "above_turnover_ceiling")]
    assert rows(con, "SELECT year, drop_reason FROM panel.aida_large ORDER BY year") == [
        (2007, "in_survey_sme_panel"), (2008, None)]
    assert rows(con, "SELECT year, province, n_subsidiaries, n_sub_europe FROM panel.aida_offshoring") == [
        (2008, "PO", 1, 1)]
    # the spell of a firm that crosses the ceiling is censored, not backshoring
    report = dict(((s, y, r), n) for s, y, r, n in rows(con, "SELECT * FROM panel.dedup_report"))
    assert report[("survey", 2007, "kept_sme_panel")] == 1
    assert report[("aida", 2008, "kept_large_firm")] == 1


def _aida_offshorer(name: str, province: str, row: int) -> tuple[list[dict], list[dict]]:
    firm = [{"firm_id": fid(name), "company_name": name, "province": province, "ateco_2007": "141310",
             "year": 2008, "turnover": 9e6, "employees": 80.0, "source_file": "aida_firms.csv",
             "source_row": row}]
    sub = [{"firm_id": fid(name), "subsidiary_name": f"{name} RO", "country_iso2": "RO",
            "destination": "europe", "ownership_pct": 60.0, "first_year": 2005, "last_year": None}]
    return firm, sub


def test_abolished_sardinian_sigla_counts_in_its_successor_province(con):
    """AIDA may record the registered office under a province of 2005-2016 (Olbia-Tempio,
    Ogliastra, Medio Campidano, Carbonia-Iglesias): such firms count in the reference province
    that now holds the old province's municipalities, in the panel, the spillovers and the map."""
    aida, subs = [], []
    for i, (name, sigla) in enumerate((("o", "OT"), ("g", "og"), ("v", "VS"), ("c", "CI"), ("f", "FI")), 2):
        a, b = _aida_offshorer(name, sigla, i)
        aida += a
        subs += b
    load(con, [ret("s", 2008, PRATO)], aida=aida, subs=subs)
    got = dict(rows(con, "SELECT firm_id, province FROM panel.aida_offshoring"))
    assert got == {fid("o"): "SS", fid("g"): "NU", fid("v"): "SU", fid("c"): "SU", fid("f"): "FI"}
    spill = dict(rows(con, "SELECT province, n_offshoring FROM geography.province_spillovers "
                           "WHERE year = 2008 AND n_offshoring > 0"))
    assert spill == {"SS": 1, "NU": 1, "SU": 2, "FI": 1}


def test_aida_sigla_outside_the_list_stops_the_panel_naming_it(con):
    a, b = _aida_offshorer("z", "ZZ", 41)
    load(con, [ret("s", 2008, PRATO)])
    before = rows(con, "SELECT count(*) FROM panel.aida_large")
    con.register("za", pl.DataFrame(a).to_arrow())
    con.execute("INSERT INTO raw.aida_firm_years BY NAME SELECT * FROM za")
    with pytest.raises(panel.AidaProvinceError) as err:
        panel.build_aida_offshoring(con, THRESHOLDS)
    assert "'ZZ'" in str(err.value) and "aida_firms.csv row 41" in str(err.value)
    assert rows(con, "SELECT count(*) FROM panel.aida_large") == before  # nothing rebuilt


def test_ceiling_is_per_year(con):
    # 6 million is above the 2006 ceiling (5,164,569) but below the 2007 one (7.5 million)
    load(con, [ret("c", 2006, PRATO, turnover=6e6), ret("c", 2007, PRATO, turnover=6e6),
               ret("z", 2006, PRATO)])  # a year whose every return is above the ceiling is refused
    assert rows(con, "SELECT year FROM panel.firm_years WHERE firm_id = ?", fid("c")) == [(2007,)]


def test_code_change_in_2010_maps_to_one_reference_municipality(con):
    load(con, [ret("f", 2009, FERMO_107), ret("f", 2010, FERMO_110), ret("m", 2008, MONZA_107)])
    got = rows(con, "SELECT firm_id = ?, year, municipality_ref, province, macro_area, geo_resolution "
                    "FROM panel.firm_years ORDER BY 1 DESC, 2", fid("f"))
    assert got == [(True, 2009, "109006", "FM", "Centre", "exact"),
                   (True, 2010, "109006", "FM", "Centre", "exact"),
                   (False, 2008, "108033", "MB", "North-West", "exact")]


def test_code_absent_from_list_gets_province_from_prefix(con):
    # 044999 is no municipality. In 2008 prefix 044 was Ascoli Piceno, which in 2010
    # split into Ascoli Piceno and Fermo; the reference province is the one that now
    # holds most of its municipalities (Fermo: 40 against 33).
    load(con, [ret("x", 2008, "044999"), ret("y", 2012, "097999")])
    assert rows(con, "SELECT province, region, llma_code, geo_resolution FROM panel.firm_years "
                     "ORDER BY year") == [("FM", "Marche", None, "province_prefix"),
                                          ("LC", "Lombardia", None, "province_prefix")]


def test_code_in_no_province_is_refused_naming_file_and_row(con):
    """The one geography policy: a code that resolves at least to a province is kept and
    flagged (above); one that resolves to none stops the panel, naming the delivery row."""
    load(con, [ret("ok", 2008, PRATO)])
    bad = ret("z", 2009, "999999", row=17)  # prefix 999 is no province in any layout
    df = pl.DataFrame([bad]).select(SURVEY_COLS).with_columns(pl.col("year").cast(pl.Int32))
    con.register("bad", df.to_arrow())
    con.execute("INSERT INTO raw.survey_returns SELECT * FROM bad")
    with pytest.raises(panel.PanelSchemaError, match="province") as err:
        panel.build_firm_years(con, THRESHOLDS)
    assert "survey_2009.csv row 17" in str(err.value)
    assert rows(con, "SELECT year, geo_resolution FROM panel.firm_years") == [(2008, "exact")]


def test_a_loaded_year_left_without_firm_years_is_refused(con):
    """Every return of a year above the ceiling (a ceiling or a delivery in thousands): the
    panel would lose the year, or be empty, and still pass its schema. Refused, naming the
    year and why its returns were left out; the previous panel stays."""
    load(con, [ret("a", 2008, PRATO), ret("b", 2008, PRATO)])
    over = [ret(f, 2009, PRATO, turnover=9e9) for f in ("a", "b", "c")]
    outside = ret("d", 2009, PRATO, ateco="131000")  # another industry: not a return the panel uses
    df = pl.DataFrame([*over, outside]).select(SURVEY_COLS).with_columns(pl.col("year").cast(pl.Int32))
    con.register("over", df.to_arrow())
    con.execute("INSERT INTO raw.survey_returns SELECT * FROM over")
    with pytest.raises(panel.PanelSchemaError, match=r"no firm-year for 2009 \(3 returns") as err:
        panel.build_firm_years(con, THRESHOLDS)
    assert "above_turnover_ceiling 3" in str(err.value) and "turnover_ceiling" in str(err.value)
    assert rows(con, "SELECT year, count(*) FROM panel.firm_years GROUP BY year") == [(2008, 2)]
    # a year with returns of other industries only is no study year: not refused
    con.execute("DELETE FROM raw.survey_returns WHERE year = 2009 AND turnover > 1e9")
    panel.build_firm_years(con, THRESHOLDS)
    assert rows(con, "SELECT DISTINCT year FROM panel.firm_years") == [(2008,)]


def test_spells_backshoring_exit_and_left_censoring(con):
    load(con, [
        # d: abroad 2006-2007, still surveyed in 2008 with nothing abroad -> backshoring
        ret("d", 2005, PRATO), ret("d", 2006, PRATO, europe=1e4), ret("d", 2007, PRATO, europe=1e4),
        ret("d", 2008, PRATO),
        # e: abroad 2007-2008, leaves the survey -> censored
        ret("e", 2006, PRATO), ret("e", 2007, PRATO, east_asia=5e3), ret("e", 2008, PRATO, east_asia=5e3),
        # g: abroad from its first observed year -> left-censored
        ret("g", 2005, FERMO_107, europe=1.0), ret("g", 2006, FERMO_107, europe=1.0), ret("g", 2007, FERMO_107),
    ])
    got = {r[0]: r[1:] for r in rows(
        con, "SELECT CASE firm_id WHEN ? THEN 'd' WHEN ? THEN 'e' ELSE 'g' END, start_year, end_year, "
             "duration, outcome, censoring, left_censored FROM panel.outsourcing_spells "
             "WHERE destination = 'any'", fid("d"), fid("e"))}
    assert got["d"] == (2006, 2007, 2, "backshoring", None, False)
    assert got["e"] == (2007, 2008, 2, "censored", "last_survey_year", False)
    assert got["g"] == (2005, 2006, 2, "backshoring", None, True)
    # region spells exist too, and the spell-years carry (start, stop] and the event
    sy = rows(con, "SELECT destination, year, start, stop, event FROM panel.spell_years "
                   "WHERE firm_id = ? ORDER BY destination, year", fid("d"))
    assert sy == [("any", 2006, 0, 1, 0), ("any", 2007, 1, 2, 1),
                  ("europe", 2006, 0, 1, 0), ("europe", 2007, 1, 2, 1)]


def test_spell_ending_by_exit_before_last_year_is_censored(con):
    load(con, [ret("e", 2006, PRATO, europe=1.0), ret("e", 2007, PRATO, europe=1.0),
               ret("z", 2006, PRATO), ret("z", 2007, PRATO), ret("z", 2008, PRATO)])
    assert rows(con, "SELECT outcome, censoring FROM panel.outsourcing_spells "
                     "WHERE destination = 'any' AND firm_id = ?", fid("e")) == [("censored", "left_survey")]


def test_leave_one_out_counts_and_missing_first_year(con):
    load(con, [
        ret("p1", 2007, PRATO, europe=1.0), ret("p1", 2008, PRATO),
        ret("p2", 2007, PRATO, europe=1.0, foreign=1), ret("p2", 2008, PRATO),
        ret("p3", 2007, PRATO), ret("p3", 2008, PRATO),
    ])
    got = dict(rows(con, "SELECT firm_id || year, n_outsourcing_prov_lag FROM panel.model_panel"))
    assert got[fid("p1") + "2007"] is None  # first year: missing, never zero
    assert got[fid("p1") + "2008"] == 1     # 2 outsourcing firms in Prato in 2007, minus itself
    assert got[fid("p2") + "2008"] == 1
    assert got[fid("p3") + "2008"] == 2
    mig = dict(rows(con, "SELECT firm_id, n_migrant_prov_lag FROM panel.model_panel WHERE year = 2008"))
    assert mig[fid("p2")] == 0 and mig[fid("p1")] == 1


def test_district_flag_and_derived_variables(con):
    load(con, [ret("q", 2008, PRATO, europe=3.0, east_asia=1.0), ret("r", 2008, "018177")])
    got = rows(con, "SELECT district, outsourcing, share_europe, share_east_asia, export_ratio, "
                    "va_per_employee_k, market_area_order, sector FROM panel.firm_years "
                    "ORDER BY district DESC")
    assert got[0] == (1, 1, 75.0, 25.0, 0.2, 40.0, 4, "clothing")
    assert got[1][:2] == (0, 0)


def test_panel_schema_failure_rolls_back(con):
    load(con, [ret("a", 2008, PRATO)])
    bad = ret("a", 2009, PRATO, row=8)
    bad["export_share"] = 250.0  # the raw layer rejects this; here it reaches the panel
    df = pl.DataFrame([bad]).select(SURVEY_COLS).with_columns(pl.col("year").cast(pl.Int32))
    con.register("bad", df.to_arrow())
    con.execute("INSERT INTO raw.survey_returns SELECT * FROM bad")
    with pytest.raises(panel.PanelSchemaError, match="export_share") as err:
        panel.build_firm_years(con, THRESHOLDS)
    # named by the delivery and its data row, not by the panel's row
    assert "survey_2009.csv row 8" in str(err.value)
    assert rows(con, "SELECT year FROM panel.firm_years") == [(2008,)]


# --- empty cells are missing, never zero -------------------------------------------------------


def test_empty_foreign_amounts_are_an_unknown_status_not_a_stop(con):
    """A return whose foreign subcontracting cells are empty was read as "nothing abroad": the
    firm's spell ended in backshoring on a value nobody reported. An empty amount is missing (the
    contract): the status is unknown, the spell is censored ('status_unknown'), and a spell after
    the unknown year has an unknown start (left-censored). A reported region still counts."""
    def blank(r, *regions):
        for region in regions:
            r[f"subcontracting_{region}"] = None
        return r

    every = ("europe", "north_africa", "east_asia", "other")
    load(con, [
        ret("a", 2007, PRATO, europe=5000.0), ret("a", 2008, PRATO, europe=5000.0),
        blank(ret("a", 2009, PRATO), *every),           # status unknown
        ret("a", 2010, PRATO, europe=4000.0),
        ret("b", 2007, PRATO, europe=5000.0), ret("b", 2008, PRATO),  # a reported stop: backshoring
        ret("c", 2007, PRATO, europe=5000.0, east_asia=100.0),
        blank(ret("c", 2008, PRATO, europe=3000.0), "east_asia", "other"),  # Europe reported
    ])
    fy = {(r[0], r[1]): r[2:] for r in rows(
        con, "SELECT firm_id, year, outsourcing, outsourcing_europe, outsourcing_east_asia, "
             "subcontracting_abroad, share_europe FROM panel.firm_years")}
    assert fy[(fid("a"), 2009)] == (None, None, None, None, None)
    assert fy[(fid("c"), 2008)] == (1, 1, None, None, None)  # outsourcing, Europe yes; the rest unknown
    assert fy[(fid("b"), 2008)] == (0, 0, 0, 0.0, None)
    spells = {(r[0], r[1], r[2]): r[3:] for r in rows(
        con, "SELECT firm_id, destination, start_year, end_year, outcome, censoring, left_censored "
             "FROM panel.outsourcing_spells")}
    assert spells[(fid("a"), "any", 2007)] == (2008, "censored", "status_unknown", True)
    assert spells[(fid("a"), "any", 2010)] == (2010, "censored", "last_survey_year", True)
    assert spells[(fid("a"), "europe", 2007)] == (2008, "censored", "status_unknown", True)
    assert spells[(fid("b"), "any", 2007)] == (2007, "backshoring", None, True)
    assert spells[(fid("c"), "europe", 2007)][1] == "censored"  # still abroad in 2008: goes on
    assert spells[(fid("c"), "east_asia", 2007)] == (2007, "censored", "status_unknown", True)
    # no spell-year (no Cox row) is made up for the unknown year
    assert rows(con, "SELECT count(*) FROM panel.spell_years WHERE firm_id = ? AND year = 2009", fid("a")) == [(0,)]


def test_an_empty_survey_turnover_defers_to_aida_above_the_ceiling(con):
    """A firm in both sources whose survey turnover is empty: it was kept as an SME and its AIDA
    row (9 million, above the 7.5 million ceiling) dropped as 'in the survey panel'. The empty
    turnover decides nothing: AIDA's figure puts the firm-year above the ceiling, so the AIDA row
    counts and the return is left out with its reason. Without an AIDA figure above the ceiling
    the return stays an SME of the survey."""
    aida = [{"firm_id": fid(f), "company_name": f.upper(), "province": "po", "ateco_2007": "141310",
             "year": 2010, "turnover": t, "employees": 50.0} for f, t in (("big", 9e6), ("small", 2e6))]
    survey = [ret(f, 2010, PRATO, row=i) for i, f in enumerate(("big", "small", "alone", "other"), start=1)]
    for r in survey[:3]:
        r["turnover"] = None
    load(con, survey, aida=aida)
    kept = {r[0] for r in rows(con, "SELECT firm_id FROM panel.firm_years")}
    assert kept == {fid("small"), fid("alone"), fid("other")}
    assert rows(con, "SELECT firm_id, reason, source_row FROM panel.survey_rejects") == [
        (fid("big"), "turnover_empty_above_ceiling_in_aida", 1)]
    assert rows(con, "SELECT firm_id, drop_reason FROM panel.aida_large ORDER BY company_name") == [
        (fid("big"), None), (fid("small"), "in_survey_sme_panel")]


def test_a_return_without_an_ateco_code_is_of_unknown_industry(con):
    """An empty ATECO code was rejected as 'outside_clothing_footwear' and the firm's spell
    ended as if it had left the survey. Its industry is unknown: the reason says so, and the
    spell before it is censored as 'status_unknown'."""
    load(con, [ret("a", 2008, PRATO, europe=5000.0), ret("a", 2009, PRATO, europe=5000.0, ateco=None, row=7),
               ret("a", 2010, PRATO, europe=5000.0), ret("b", 2009, PRATO)])
    assert rows(con, "SELECT year, reason, source_row FROM panel.survey_rejects") == [(2009, "missing_ateco", 7)]
    assert rows(con, "SELECT start_year, end_year, outcome, censoring, left_censored FROM panel.outsourcing_spells "
                     "WHERE destination = 'any' ORDER BY start_year") == [
        (2008, 2008, "censored", "status_unknown", True), (2010, 2010, "censored", "last_survey_year", True)]
