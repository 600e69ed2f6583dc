"""Every report output from a tiny DuckDB warehouse built here (docs/warehouse.md layouts).

The data are made to trip each disclosure rule where it matters:
* footwear offshoring has 2 firms: its whole Table 1 column is suppressed;
* one clothing outsourcer holds nearly all the group's turnover: dominance;
* in 2008 one clothing outsourcer is alone in Napoli: threshold on the map, and
  Firenze (3 firms, the smallest non-zero province) is suppressed to protect it
  from the published panel total;
* one clothing outsourcer subcontracts in North Africa: its bar is suppressed.
"""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest

from offshoring.reports import figures, html, provenance, render, sdc, tables
from offshoring.reports.published import TABLE1, TABLE2, TABLE3
from offshoring.reports.source import DataSource
from offshoring.spec import load_study_spec

SPEC = load_study_spec()
RULES = sdc.Rules(min_firms=3, dominance_share=0.85, marker="x")
SRC = DataSource.of(True, 7)  # the outputs of this module say they are synthetic
REAL = DataSource.of(False)
FIG2 = SPEC.reports.figure2
FIG2_KW = dict(geo_year=FIG2.geo_year, simplify_tolerance=FIG2.simplify_tolerance,
               classes=list(FIG2.classes))
PERIOD2, PERIOD3 = (2006, 2012), (2007, 2012)

# (firm, sector, province, district, turnover, employees, export %, italy, europe, north_africa, east_asia, other)
OUTSOURCERS = [
    # clothing: 13 firms in 2008 -> PO 4, NA 1, FI 3, TV 5
    ("c01", "clothing", "PO", 1, 50_000_000, 40, 20, 100_000, 300_000, 0, 0, 0),  # dominant
    ("c02", "clothing", "PO", 1, 200_000, 5, 10, 20_000, 50_000, 0, 0, 0),
    ("c03", "clothing", "PO", 1, 150_000, 4, 0, 10_000, 30_000, 0, 10_000, 0),
    ("c04", "clothing", "PO", 1, 180_000, 6, 5, 15_000, 40_000, 0, 0, 0),
    ("c05", "clothing", "NA", 0, 120_000, 3, 0, 5_000, 0, 20_000, 0, 0),
    ("c06", "clothing", "FI", 1, 300_000, 8, 30, 40_000, 60_000, 0, 20_000, 0),
    ("c07", "clothing", "FI", 1, 250_000, 7, 25, 30_000, 50_000, 0, 0, 0),
    ("c08", "clothing", "FI", 1, 260_000, 7, 15, 25_000, 45_000, 0, 0, 0),
    ("c09", "clothing", "TV", 0, 400_000, 9, 40, 60_000, 70_000, 0, 15_000, 0),
    ("c10", "clothing", "TV", 0, 350_000, 9, 35, 55_000, 65_000, 0, 0, 0),
    ("c11", "clothing", "TV", 0, 330_000, 8, 30, 50_000, 60_000, 0, 0, 0),
    ("c12", "clothing", "TV", 0, 310_000, 8, 20, 45_000, 55_000, 0, 0, 0),
    ("c13", "clothing", "TV", 0, 290_000, 7, 10, 35_000, 50_000, 0, 0, 0),
    # footwear: 5 firms in Fermo / Ascoli Piceno
    ("f01", "footwear", "FM", 1, 900_000, 20, 50, 200_000, 100_000, 30_000, 0, 0),
    ("f02", "footwear", "FM", 1, 800_000, 18, 45, 180_000, 90_000, 25_000, 0, 0),
    ("f03", "footwear", "FM", 1, 700_000, 15, 40, 150_000, 80_000, 20_000, 0, 0),
    ("f04", "footwear", "AP", 1, 600_000, 14, 35, 120_000, 70_000, 0, 0, 0),
    ("f05", "footwear", "AP", 0, 500_000, 12, 30, 100_000, 60_000, 0, 0, 0),
]

# (firm, sector, province, turnover, employees, europe, north_africa, east_asia, other)
AIDA = [
    ("a01", "clothing", "MI", 40_000_000, 150, 1, 0, 1, 0),
    ("a02", "clothing", "MI", 45_000_000, 170, 2, 0, 0, 0),
    ("a03", "clothing", "TV", 42_000_000, 160, 1, 0, 0, 1),
    ("a04", "clothing", "VI", 38_000_000, 140, 1, 0, 0, 0),
    ("b01", "footwear", "FM", 46_000_000, 165, 1, 0, 1, 0),
    ("b02", "footwear", "VE", 44_000_000, 160, 0, 0, 2, 0),
]

YEARS = (2007, 2008)


def build_warehouse(path) -> None:
    con = duckdb.connect(str(path))
    for schema in ("raw", "panel", "geography"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        """CREATE TABLE panel.firm_years (
            firm_id VARCHAR, year INTEGER, ateco_2007 VARCHAR, sector VARCHAR,
            province VARCHAR, district TINYINT, turnover DOUBLE, employees DOUBLE,
            export_share DOUBLE, subcontracting_italy DOUBLE, subcontracting_europe DOUBLE,
            subcontracting_north_africa DOUBLE, subcontracting_east_asia DOUBLE,
            subcontracting_other DOUBLE, subcontracting_abroad DOUBLE, outsourcing TINYINT)"""
    )
    rows = []
    for year in YEARS:
        for f, sector, prov, dist, to, emp, exp, it, eu, na, ea, ot in OUTSOURCERS:
            if f == "c05" and year == 2007:
                continue  # enters in 2008 only
            abroad = eu + na + ea + ot
            rows.append((f, year, "141310", sector, prov, dist, to, emp, exp, it, eu, na, ea, ot,
                         abroad, int(abroad > 0)))
        # SMEs that do not outsource, never counted
        for k in range(3):
            rows.append((f"n{k}", year, "141310", "clothing", "NA", 0, 1e5, 2, 0, 1e4, 0, 0, 0, 0, 0, 0))
    con.executemany("INSERT INTO panel.firm_years VALUES " + "(" + ",".join("?" * 16) + ")", rows)
    con.execute(
        """CREATE TABLE panel.aida_offshoring (
            firm_id VARCHAR, year INTEGER, province VARCHAR, sector VARCHAR, turnover DOUBLE,
            employees DOUBLE, n_subsidiaries INTEGER, n_sub_europe INTEGER,
            n_sub_north_africa INTEGER, n_sub_east_asia INTEGER, n_sub_other INTEGER)"""
    )
    arows = []
    for year in YEARS:
        for f, sector, prov, to, emp, eu, na, ea, ot in AIDA:
            arows.append((f, year, prov, sector, to, emp, eu + na + ea + ot, eu, na, ea, ot))
    arows.append(("a01", 2005, "MI", "clothing", 39e6, 150, 2, 1, 0, 1, 0))  # a gap: own spell
    con.executemany("INSERT INTO panel.aida_offshoring VALUES (?,?,?,?,?,?,?,?,?,?,?)", arows)
    con.execute(
        """CREATE TABLE panel.outsourcing_spells (
            firm_id VARCHAR, destination VARCHAR, spell_no INTEGER, start_year INTEGER,
            end_year INTEGER, duration INTEGER, outcome VARCHAR, left_censored BOOLEAN)"""
    )
    srows = []
    for f, *_ in OUTSOURCERS:
        start = 2008 if f == "c05" else 2007
        srows.append((f, "any", 1, start, 2008, 2008 - start + 1, "censored", start == 2007))
        srows.append((f, "europe", 1, start, 2008, 2008 - start + 1, "censored", start == 2007))
    con.executemany("INSERT INTO panel.outsourcing_spells VALUES (?,?,?,?,?,?,?,?)", srows)
    con.execute(
        """CREATE TABLE raw.aida_subsidiaries (firm_id VARCHAR, subsidiary_name VARCHAR,
            country_iso2 VARCHAR, destination VARCHAR, ownership_pct DOUBLE,
            first_year INTEGER, last_year INTEGER)"""
    )
    con.execute(
        "CREATE TABLE geography.llma_districts (llma_code VARCHAR, district TINYINT, "
        "dominant_group VARCHAR, area_type VARCHAR)"
    )
    con.close()


def fake_results(params: dict, se: float = 0.01, nobs: int = 1000, ngroups: int = 200):
    idx = list(params)
    p = pd.Series(params, index=idx)
    bse = pd.Series(se, index=idx)
    z = (p / bse).abs()
    pvalues = z.map(lambda v: math.erfc(v / math.sqrt(2)))
    return SimpleNamespace(params=p, bse=bse, pvalues=pvalues, nobs=nobs, ngroups=ngroups)


TABLE2_PARAMS = {
    "const": -2.0,
    "y_initial": 0.52,
    "y_lag": 2.5,
    "export_ratio_lag": -0.015,
    "market_area_order_lag": 0.13,
    "credit_access_lag": 0.1,
    "va_per_employee_k_lag": 0.001,
    "supplier_lag": 0.09,
    "district": -0.05,
    "n_offshoring_prov_lag": -0.01,
    "n_outsourcing_prov_lag": 0.02,
    "footwear": 0.1,
    "area_south": -0.1,
    "mean_export_ratio_lag": 0.01,
    "init_export_ratio": 0.02,
    "lnsig2u": 0.3,
}
TABLE3_PARAMS = {
    "share_destination": math.log(0.98),
    "supplier": math.log(1.2),
    "profit": math.log(0.64),
    "export_share_pre": 0.0,
    "wage_per_employee_k": math.log(0.99),
    "roi": 0.0001,
    "employees": math.log(0.984),
    "n_outsourcing_prov_pre": math.log(0.994),
    "n_migrant_prov_lag": 0.0002,
    "footwear": 0.05,
    "area_centre": -0.02,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("reports")
    db = base / "warehouse.duckdb"
    build_warehouse(db)
    reports = base / "reports"
    prov = provenance.collect([db], SPEC.as_dict(), SPEC.sha256, SRC, "test-run",
                              spec_files=dict(SPEC.files), paths={"reports_dir": str(reports)})
    con = duckdb.connect(str(db), read_only=True)
    try:
        t1 = tables.table1(con, RULES, 2007, 2012, source=SRC)
        t1c = tables.table1_comparison(t1.sdc, (2007, 2012), source=SRC)
        f1 = figures.figure1(con, 2008, RULES, source=SRC)
        f2 = figures.figure2(con, 2008, RULES, **FIG2_KW, source=SRC)
    finally:
        con.close()
    res2 = fake_results(TABLE2_PARAMS)
    res3 = fake_results(TABLE3_PARAMS, se=0.005, nobs=900, ngroups=150)
    spec2, spec3 = tables.table2_spec(SPEC.probit, PERIOD2), tables.table3_spec(SPEC.cox, PERIOD3)
    truth2 = {k: v + 0.001 for k, v in TABLE2_PARAMS.items()}
    truth2["y_lag"] = 3.0  # far outside the interval
    kw = dict(digits=3, rules=RULES, source=SRC)
    records = [
        render.write_table(t1, reports, prov, order=10),
        render.write_table(t1c, reports, prov, order=11),
        figures.write_figure(f1, reports, prov, order=20),
        figures.write_figure(f2, reports, prov, order=30),
        render.write_table(tables.model_table(res2, spec2, **kw), reports, prov, order=40),
        render.write_table(
            tables.comparison_table(res2, spec2, truth=truth2, **kw), reports, prov, order=41
        ),
        render.write_table(tables.model_table(res3, spec3, **kw), reports, prov, order=50),
        render.write_table(tables.comparison_table(res3, spec3, **kw), reports, prov, order=51),
    ]
    index = html.write_index(reports, records, prov, source=SRC)
    return SimpleNamespace(
        db=db, reports=reports, prov=prov, t1=t1, t1c=t1c, f1=f1, f2=f2, records=records,
        index=index, res2=res2, res3=res3, spec2=spec2, spec3=spec3,
    )


def test_every_output_is_written(built):
    names = sorted(p.name for p in built.reports.iterdir())
    for t in ("table1", "table1_comparison", "table2", "table2_comparison", "table3", "table3_comparison"):
        for ext in (".md", ".tex", ".csv", ".provenance.json"):
            assert t + ext in names
    for f in ("figure1", "figure2"):
        for ext in (".png", ".svg", "_data.csv", ".provenance.json"):
            assert f + ext in names
    assert "index.html" in names
    assert not [n for n in names if ".tmp" in n]
    png = (built.reports / "figure2.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_table1_layout_and_values(built):
    t = built.t1
    assert t.column_names() == [
        "Clothing production: Offshore outsourcing",
        "Clothing production: Offshoring",
        "Footwear production: Offshore outsourcing",
        "Footwear production: Offshoring",
    ]
    assert [r.label for r in t.rows] == [
        "Number of firms",
        "Duration of internationalization activity",
        "Turnover",
        "Number of employees",
        "% of export on turnover",
        "Cost of subcontracting production in foreign countries",
        "Cost of subcontracting production in Italy",
        "Number of subsidiaries in foreign countries",
        "% of firms located inside Industrial Districts",
    ]
    cells = {r.label: r.cells for r in t.rows}
    # 12 clothing outsourcers in 2007 + 13 in 2008 over 2 years
    assert cells["Number of firms"][0] == "13"  # 12.5, rounded half up
    assert t.sdc.published_value("n_firms", "clothing:outsourcing") == pytest.approx(12.5)
    assert cells["Number of firms"][1] == "4"
    assert cells["Number of firms"][2] == "5"
    # footwear offshoring: 2 firms -> every non-blank cell suppressed
    assert [cells[label][3] for label in ("Number of firms", "Duration of internationalization activity",
                                          "Turnover", "Number of employees",
                                          "Number of subsidiaries in foreign countries")] == ["x"] * 5
    # dominance: c01 holds ~93% of clothing outsourcers' turnover
    assert cells["Turnover"][0] == "x"
    assert t.sdc.suppressed[("turnover", "clothing:outsourcing")] == sdc.DOMINANCE
    assert cells["Turnover"][2] == "700,000"
    # cells the paper leaves empty do not apply: "–", and the notes say what "–" means
    assert cells["% of export on turnover"][1] == "–" and cells["% of export on turnover"][3] == "–"
    assert cells["Number of subsidiaries in foreign countries"][0] == "–"
    assert cells["% of firms located inside Industrial Districts"][1] == "–"
    assert any(n.startswith("–: does not apply") for n in t.notes)
    assert any(n.startswith("x: suppressed") for n in t.notes)
    # asked for 2007-2012 on data of 2007-2008: the title says the years the averages are over
    assert t.title.endswith("(average values over the 2007-2008 period)")
    assert t.source == SRC.line()
    # durations: outsourcing spells; offshoring runs of consecutive AIDA years
    dur_cloth_out = (12 * 2 + 1) / 13
    assert cells["Duration of internationalization activity"][0] == f"{dur_cloth_out:.2f}"
    # a01 has spells 2005 (outside the window) and 2007-08; 4 firms' 2007-08 spells of 2 years
    assert cells["Duration of internationalization activity"][1] == "2.00"
    assert cells["% of firms located inside Industrial Districts"][2] == "80%"
    assert cells["Number of subsidiaries in foreign countries"][1] == "1.75"


def test_table1_formats(built):
    md = (built.reports / "table1.md").read_text()
    assert md.startswith("**Table 1.")
    assert "| Turnover | x |" in md
    tex = (built.reports / "table1.tex").read_text()
    assert "\\documentclass" not in tex and "\\begin{table}" not in tex
    assert tex.count("\\begin{tabular}{lrrrr}") == 1 and tex.rstrip().endswith("\\end{tabular}")
    for rule in ("\\toprule", "\\midrule", "\\bottomrule", "\\cmidrule(lr){2-3}", "\\cmidrule(lr){4-5}"):
        assert rule in tex
    assert "\\multicolumn{2}{c}{Clothing production}" in tex
    assert "\\% of export on turnover" in tex
    csv_lines = (built.reports / "table1.csv").read_text().splitlines()
    assert csv_lines[0].startswith("row,Clothing production: Offshore outsourcing,")
    assert csv_lines[3].startswith("Turnover,x,")


def test_figure1_bars_and_suppression(built):
    p = built.f1.protected
    assert p.suppressed[("north_africa", "clothing:outsourcing")] == sdc.THRESHOLD
    assert p.published_value("europe", "clothing:outsourcing") == pytest.approx(100 * 12 / 13)
    assert p.published_value("east_asia", "clothing:outsourcing") == pytest.approx(100 * 3 / 13)
    assert p.published_value("other", "clothing:outsourcing") == 0.0
    assert p.published_value("north_africa", "footwear:outsourcing") == pytest.approx(60.0)
    # footwear offshoring: N = 2 firms; even its 0% bars rest on those two firms
    for row in ("n_total", "europe", "north_africa", "east_asia", "other"):
        assert p.is_suppressed(row, "footwear:offshoring")
    svg = (built.reports / "figure1.svg").read_text()
    assert 'id="bar-clothing-outsourcing-north_africa"' in svg
    assert not re.search(r'(href|src)="https?:', svg)  # XML namespaces only, no resources


def test_figure1_leaves_out_a_return_whose_regions_are_not_all_known(built, tmp_path):
    """A return with an empty regional amount (its total abroad unknown) was counted in the
    group with that region read as "not there". It is left out of the shares instead: with c03's
    East Asia blank, Europe is 11 of 12 clothing outsourcers (12 of 13 before)."""
    import shutil

    db = tmp_path / "w.duckdb"
    shutil.copy(built.db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE panel.firm_years SET subcontracting_east_asia = NULL, subcontracting_abroad = NULL "
                    "WHERE firm_id = 'c03' AND year = 2008")
        p = figures.figure1(con, 2008, RULES, source=SRC).protected
    assert p.published_value("europe", "clothing:outsourcing") == pytest.approx(100 * 11 / 12)
    assert p.published_value("n_total", "clothing:outsourcing") == 12


def test_figure2_has_every_province_and_suppression(built):
    ref = figures.reference_provinces(FIG2.geo_year)
    assert len(ref) == 107 and {"PO", "FM", "SU", "BT"} <= set(ref)
    p = built.f2.protected
    assert p.rows == ref + ["total"]
    assert built.f2.info["provinces_drawn"] == 107
    col = "clothing:outsourcing"
    assert p.suppressed[("NA", col)] == sdc.THRESHOLD
    assert p.suppressed[("FI", col)] == sdc.SECONDARY  # smallest non-zero complement
    assert p.published_value("PO", col) == 4 and p.published_value("TV", col) == 5
    assert p.published_value("total", col) == 13
    assert p.published_value("RM", col) == 0  # no firms: drawn empty
    sdc.assert_safe(p)
    # each panel draws all 107 provinces
    axes = built.f2.figure.axes
    assert sum(1 for ax in axes if len(ax.patches) == 107) == 4
    svg = (built.reports / "figure2.svg").read_text()
    for s in ("clothing", "footwear"):
        for t in ("outsourcing", "offshoring"):
            ids = set(re.findall(rf'id="prov-{s}-{t}-([A-Z]{{2}})"', svg))
            assert ids == set(ref)
    data = (built.reports / "figure2_data.csv").read_text().splitlines()
    assert len(data) == 1 + 107 + 1
    assert any(line.startswith("NA Napoli,x,") for line in data)


def test_table2_layout(built):
    t = render.DisplayTable.from_dict(
        json.loads((built.reports / "table2.provenance.json").read_text())["display"]
    )
    labels = [r.label for r in t.rows]
    lab = tables.probit_labels(SPEC.probit)
    # the initial outcome's year is the specification's (the year before its first year)
    assert lab["y_initial"] == f"Initial outcome (y_{SPEC.probit.first_year - 1})"
    assert labels == [
        lab["y_initial"],
        lab["y_lag"],
        "Export (% of sales)",
        "Extension of market area served",
        "Financial constraints (1 if firm has access to credit)",
        "Value added per employee",
        "Supplier",
        "Location inside an industrial district",
        "# of firms engaged in offshoring activities at t-1",
        "# of firms engaged in offshore outsourcing activities at t-1",
        "Industry dummies",
        "Territorial dummies (macro-areas)",
        "Observations",
        "Groups",
    ]
    assert "yt-1" not in labels and "y_lag" not in labels  # the specification's wording
    assert t.column_names() == ["Coefficient", "Std. err."]
    assert t.title == ("Table 2. Dynamic Probit Model: Probability to engage in offshore outsourcing "
                       "among manufacturing firms in Italy, period 2006-2012, industries: clothing "
                       "and footwear production")
    cells = {r.label: r.cells for r in t.rows}
    assert cells[lab["y_lag"]] == ["2.500***", "0.010"]
    assert cells["Export (% of sales)"] == ["-0.015", "0.010"]  # z = 1.5: not significant
    assert cells["Supplier"] == ["0.090***", "0.010"]
    assert cells["Industry dummies"] == ["Yes", ""]
    assert cells["Territorial dummies (macro-areas)"] == ["Yes", ""]
    assert cells["Observations"][0] == "1,000" and cells["Groups"][0] == "200"
    assert t.source == SRC.line()
    # every term of the fit is either shown or hidden by design: no stray-term note
    assert not any("not in the specification" in n for n in t.notes)
    tex = (built.reports / "table2.tex").read_text()
    assert "2.500$^{***}$" in tex
    assert "\\# of firms engaged in offshoring activities at t-1" in tex
    # the reports' initial-outcome label, when given, replaces the specification's
    spec = tables.table2_spec(SPEC.probit, PERIOD2, initial_outcome_label="y_2006")
    assert spec.rows[0] == ("y_initial", "y_2006")


def test_table3_hazard_ratios(built):
    t = tables.model_table(built.res3, built.spec3, digits=3, rules=RULES, source=SRC)
    assert t.column_names() == ["Hazard ratio", "Std. err."]
    assert "period 2007-2012" in t.title
    cells = {r.label: r.cells for r in t.rows}
    assert cells["Share of outsourcing costs in the foreign region"][0] == "0.980***"
    assert cells["Supplier"][0] == "1.200***"
    assert cells["Supplier"][1] == f"{1.2 * 0.005:.3f}"  # delta method
    assert cells["Export (% of sales)"][0] == "1.000"
    assert cells["Return on Investments"][0] == "1.000"  # b/se = 0.02
    assert [r.label for r in t.rows][-4:] == ["Industry dummies", "Territorial dummies (macro-areas)",
                                             "Observations", "Groups"]
    # an unclustered fit has no groups: "–", said in the notes
    res = fake_results(TABLE3_PARAMS, se=0.005, nobs=900, ngroups=150)
    res.ngroups = None
    t = tables.model_table(res, built.spec3, digits=3, rules=RULES, source=SRC)
    assert t.row("Groups").cells[0] == "–" and any(n.startswith("Groups –") for n in t.notes)


def test_comparison_tables(built):
    t = tables.comparison_table(built.res2, built.spec2, digits=3, rules=RULES, source=SRC)
    assert t.column_names() == ["Published", "Published s.e.", "Estimate", "Std. err.", "Difference"]
    cells = {r.label: r.cells for r in t.rows}
    y0, y1 = tables.probit_labels(SPEC.probit)["y_initial"], SPEC.probit.labels["y_lag"]
    assert cells[y0] == ["0.527***", "0.039", "0.520***", "0.010", "-0.007"]
    assert cells["Observations"] == ["117,505", "", "1,000", "", "-116,505"]
    assert cells["Groups"][0] == "17,338"
    assert t.title == "Table 2: published values and this run's estimates (2006-2012)"
    sidecar = json.loads((built.reports / "table2_comparison.provenance.json").read_text())
    d = render.DisplayTable.from_dict(sidecar["display"])
    assert d.column_names()[-2:] == ["True value", "Covered by 95% CI"]
    rows = {r.label: r.cells for r in d.rows}
    assert rows[y0][-1] == "yes" and rows[y1][-1] == "no"
    t3 = tables.comparison_table(built.res3, built.spec3, digits=3, rules=RULES, source=SRC)
    rows3 = {r.label: r.cells for r in t3.rows}
    # the paper prints no standard errors in Table 3: "–", not a blank
    assert rows3["Share of outsourcing costs in the foreign region"][:3] == ["0.981***", "–", "0.980***"]
    assert rows3["Share of outsourcing costs in the foreign region"][4] == "-0.001"
    assert TABLE3.estimates["share_destination"].value == 0.981
    assert TABLE2.nobs == 117_505 and TABLE2.ngroups == 17_338


def test_model_tables_refuse_tiny_models():
    res = fake_results({"y_lag": 1.0}, ngroups=2)
    with pytest.raises(sdc.DisclosureError):
        tables.model_table(res, tables.table2_spec(SPEC.probit, PERIOD2), digits=3, rules=RULES,
                           source=SRC)


def test_provenance_sidecars(built):
    db_sha = provenance.file_sha256(built.db)
    for rec in built.records:
        side = json.loads((built.reports / rec.sidecar).read_text())
        prov = side["provenance"]
        assert prov["run_id"] == "test-run" and prov["seed"] == 7
        assert prov["data"] == "synthetic" and prov["source"] == SRC.line()
        assert prov["inputs"][0]["sha256"] == db_sha
        assert set(prov["code_version"]) >= {"commit", "dirty"}
        assert prov["packages"]["duckdb"] and prov["packages"]["polars"]
        # the effective specification, whole, and its hash
        assert prov["spec_sha256"] == SPEC.sha256
        assert set(prov["spec"]) == set(SPEC.as_dict())
        assert prov["spec"]["reports"]["sdc"]["min_firms"] == 3
        assert prov["spec"]["probit"]["labels"] == dict(SPEC.probit.labels)
        assert prov["spec_files"]["probit"].endswith("probit_table2.yaml")
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", prov["created_utc"])
        for f in side["output"]["files"]:
            assert f["sha256"] == provenance.file_sha256(built.reports / f["file"])
        assert side["sdc"]
    side1 = json.loads((built.reports / "table1.provenance.json").read_text())
    assert side1["sdc"]["by_rule"]["dominance"] >= 1
    meta = provenance.metadata(built.prov)
    assert meta["input_sha256"][str(built.db)] == db_sha
    assert meta["data"] == "synthetic" and meta["spec_sha256"] == SPEC.sha256
    rec_meta = built.records[0].metadata(built.reports)
    assert rec_meta["run_id"] == "test-run" and rec_meta["input_sha256"][str(built.db)] == db_sha
    assert rec_meta["file_sha256"]["table1.csv"] == provenance.file_sha256(built.reports / "table1.csv")
    assert rec_meta["sdc_suppressed"] == side1["sdc"]["n_suppressed"]
    assert rec_meta["source"] == SRC.line() and rec_meta["data"] == "synthetic"
    json.dumps(rec_meta)  # JSON-ready for MetadataValue.json


def test_provenance_redacts_credentials_and_keeps_no_cache(tmp_path):
    spec = SPEC.as_dict()
    spec["alerts"]["slack"]["webhook_url"] = "https://hooks.example/T000/SECRET"
    a = provenance.collect([tmp_path], spec, "abc", REAL, "run-a")
    assert a["spec"]["alerts"]["slack"]["webhook_url"] == "<redacted>"
    assert a["spec"]["alerts"]["slack"]["webhook_url_env"] == spec["alerts"]["slack"]["webhook_url_env"]
    assert "SECRET" not in json.dumps(a)
    assert a["data"] == "real" and a["seed"] is None
    (tmp_path / "new.csv").write_text("x\n")
    b = provenance.collect([tmp_path], spec, "abc", REAL, "run-b")
    assert b["run_id"] == "run-b" and len(b["inputs"]) == len(a["inputs"]) + 1
    import assets.reports as report_assets

    assert not hasattr(report_assets, "_PROVENANCE_CACHE")


def test_code_version_falls_back_outside_git(tmp_path):
    cv = provenance.code_version(tmp_path)
    assert cv["commit"] is None and "error" in cv


def test_index_page_is_offline_and_complete(built):
    page = built.index.read_text()
    for rec in built.records:
        assert f'id="{rec.name}"' in page
    assert '<img src="figure1.png"' in page and '<img src="figure2.png"' in page
    assert 'href="figure2.svg"' in page
    assert "Main characteristics of firms engaged" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"https?:", page)
    # no address outside the specification's text (alerts.ui_base_url is a setting, not a link)
    outside_spec = re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)
    assert "http://" not in outside_spec and "https://" not in outside_spec and "url(" not in page
    assert provenance.file_sha256(built.db) in page
    assert 'id="provenance"' in page and "test-run" in page
    assert SPEC.sha256 in page
    # synthetic data say so at the top of the page
    assert 'id="synthetic-banner"' in page and "seed 7" in page and "not from IMEFAS or AIDA" in page
    # rebuilt from the sidecars alone
    again = html.write_index(built.reports, source=SRC)
    assert again.read_text().count("<section") == page.count("<section")


def test_a_share_resting_on_two_firms_is_suppressed(tmp_path):
    """The district share is a share of firms: it rests on the firms inside a district, not on
    every firm of the group (two of five footwear outsourcers here: 40% must not be shown)."""
    db = tmp_path / "w.duckdb"
    build_warehouse(db)
    con = duckdb.connect(str(db))
    con.execute("UPDATE panel.firm_years SET district = 0 WHERE firm_id IN ('f03', 'f04')")
    try:
        cells = tables.table1_cells(con, 2007, 2012)
        t = tables.table1(con, RULES, 2007, 2012, source=SRC)
    finally:
        con.close()
    cell = cells.cell("district_share", "footwear:outsourcing")
    assert cell.value == pytest.approx(40.0) and cell.n_firms == 2
    assert t.sdc.suppressed[("district_share", "footwear:outsourcing")] == sdc.THRESHOLD
    assert t.row("% of firms located inside Industrial Districts").cells[2] == "x"
    # the clothing share rests on its 7 district firms: published
    assert cells.cell("district_share", "clothing:outsourcing").n_firms == 7
    assert t.row("% of firms located inside Industrial Districts").cells[0] == "56%"
    # a mean still rests on every firm with a value (5 footwear exporters)
    assert cells.cell("export_share", "footwear:outsourcing").n_firms == 5


def test_table1_beside_the_papers(built):
    t = built.t1c
    assert t.column_names()[:2] == ["Clothing production: Offshore outsourcing: Paper",
                                    "Clothing production: Offshore outsourcing: This run"]
    rows = {r.label: r.cells for r in t.rows}
    assert rows["Number of firms"][:2] == ["486", "13"]
    assert rows["Turnover"][:4] == ["2,333,955", "x", "41,626,846", "41,250,000"]  # this run's is suppressed
    assert rows["% of firms located inside Industrial Districts"][:2] == ["22%", "56%"]
    assert rows["Number of subsidiaries in foreign countries"][:2] == ["–", "–"]  # not applicable
    assert rows["Number of firms"][6:] == ["105", "x"]
    # the paper fills exactly the cells that apply
    assert set(TABLE1) == {(r.key, tables.column_key(sec, typ)) for r in tables.TABLE1_ROWS
                           for sec, _ in tables.SECTORS for typ, _ in tables.TYPES if typ in r.types}
    assert t.sdc is built.t1.sdc  # written through the same disclosure control


def test_figure_titles_legends_and_published_values(built, tmp_path):
    assert built.f1.title == "Figure 1. Destination of offshoring and offshore outsourcing activities in 2008"
    assert built.f2.title.endswith("outsourcing activities in 2008") and "year=" not in built.f2.title
    assert "year=" not in built.f1.data.title
    # the paper's two bars (its text, 2008) are drawn and listed beside this run's
    svg = (built.reports / "figure1.svg").read_text()
    assert 'id="paper-clothing-offshoring-north_africa"' in svg
    paper_row = built.f1.data.row("North Africa (% of firms), in the paper's text")
    assert paper_row.cells == ["–", "4.0", "–", "2.0"]
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in built.f1.figure.axes]
    assert all(any("in the paper's text" in t for t in lg) for lg in legends)
    assert all(any(t.startswith("suppressed") for t in lg) for lg in legends)  # both panels suppress
    # a year with nothing suppressed and no published value: no legend entry for either
    con = duckdb.connect(str(built.db), read_only=True)
    try:
        empty = figures.figure1(con, 2009, RULES, source=REAL)
    finally:
        con.close()
    for ax in empty.figure.axes:
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert not any(t.startswith("suppressed") or "paper" in t for t in texts)
    assert not any(n.startswith("x:") for n in empty.data.notes)
    assert any("no cell needed suppression" in n for n in empty.data.notes)
    # the source says synthetic (or not) in the caption and on the image itself
    assert built.f1.caption.endswith(f"Source: {SRC.line()}.")
    assert 'id="source-line"' in svg
    assert empty.caption.endswith("Source: elaborations on IMEFAS and AIDA data (this run).")


def test_real_data_outputs_do_not_claim_to_be_synthetic(built, tmp_path):
    con = duckdb.connect(str(built.db), read_only=True)
    try:
        t = tables.table1(con, RULES, 2007, 2012, source=REAL)
    finally:
        con.close()
    assert t.source == "elaborations on IMEFAS and AIDA data (this run)"
    prov = provenance.collect([built.db], SPEC.as_dict(), SPEC.sha256, REAL, "real-run")
    assert prov["data"] == "real" and prov["seed"] is None
    rec = render.write_table(t, tmp_path, prov, order=10)
    page = html.write_index(tmp_path, [rec], prov, source=REAL).read_text()
    assert 'id="synthetic-banner"' not in page and "synthetic" not in page.split('id="provenance"')[0]
    assert "Source: elaborations on IMEFAS and AIDA data (this run)" in (tmp_path / "table1.md").read_text()
    csv_rows = (tmp_path / "table1.csv").read_text().splitlines()
    assert csv_rows[0].endswith(",data_source")
    assert all(r.endswith(",elaborations on IMEFAS and AIDA data (this run)") for r in csv_rows[1:])
    # a synthetic output found beside real ones is flagged, not silently mixed
    page = html.write_index(built.reports, None, prov, source=REAL).read_text()
    assert 'id="mixed-banner"' in page
    # every builder needs to be told: no default origin
    with pytest.raises(TypeError):
        tables.table1_display(t.sdc, (2007, 2012), source=None)


def test_a_figure_is_laid_out_once_and_written_the_same_each_time(built, tmp_path):
    """The constrained layout is computed for the PNG and reused for the SVG: the positions the
    SVG is drawn at are the layout's (not the unlaid subplot grid), the figure keeps its layout
    engine, and writing it again gives the same bytes."""
    fig = built.f1.figure
    engine = type(fig.get_layout_engine())
    for d in ("a", "b"):
        figures.write_figure(built.f1, tmp_path / d)
    assert type(fig.get_layout_engine()) is engine
    drawn = [b for ax in fig.axes for b in ax.get_position().bounds]
    fig.draw_without_rendering()  # the layout engine again, from scratch
    assert drawn == pytest.approx([b for ax in fig.axes for b in ax.get_position().bounds], abs=0.01)
    grid = [b for ax in fig.axes for b in ax.get_subplotspec().get_position(fig).bounds]
    assert drawn != pytest.approx(grid, abs=0.01)  # (the layout moved the axes: the check can fail)
    for ext in ("png", "svg"):
        assert (tmp_path / "a" / f"figure1.{ext}").read_bytes() == (tmp_path / "b" / f"figure1.{ext}").read_bytes()
