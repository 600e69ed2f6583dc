"""Tables 2 and 3 follow the study specification and the sample; the disclosure check can fail;
synthetic and real outputs say what they are.

Everything runs on a small DuckDB written here (a stored fit with `offshoring.fitstore.write_fit`,
a few panel rows), without the pipeline. The report assets are materialized with
`dagster.materialize` and the `Study` resource pointed at a folder of YAML overrides.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

import assets.reports as report_assets
from offshoring.fitstore import read_fit, write_fit
from offshoring.reports import render, sdc, tables
from offshoring.reports.source import DataSource
from offshoring.spec import load_study_spec
from offshoring.truth import MARKER
from assets.resources import Folders, Study, Warehouse

SPEC = load_study_spec()
RULES = sdc.Rules.from_spec(SPEC.reports.sdc)
SYN = DataSource.of(True, 5)
REAL = DataSource.of(False)
KW = dict(digits=SPEC.reports.format.digits, rules=RULES, source=SYN)


# --------------------------------------------------------------------------- fixtures


def probit_terms(probit) -> list[str]:
    """The exog columns a fit of `probit` has (year dummies for 2008-2012 when asked)."""
    terms = list(probit.exog_names)
    if probit.year_dummies:
        n_front = len([t for t in terms if not t.startswith(("mean_", "init_"))])
        terms = terms[:n_front] + [f"year_{y}" for y in range(2008, 2013)] + terms[n_front:]
    return terms + ["lnsig2u"]


_ESTIMATORS = {"outsourcing_probit": "probit", "backshoring_cox": "cox", "backshoring_grouped_ph": "grouped_ph"}


def store_fit(con, model: str, terms: list[str], *, nobs: int = 5000, ngroups: int | None = 800,
              stats: dict | None = None, spec=SPEC, truth: dict | None = None) -> None:
    """A fit as the model assets store it, made under `spec` (its hash and model settings)."""
    from types import SimpleNamespace

    from assets.models import main_fit_spec
    from offshoring.variants import fit_spec_record

    params = pd.Series([0.1 * (i % 7 - 3) + 0.01 for i in range(len(terms))], index=terms)
    bse = pd.Series(0.02, index=terms)
    pvalues = (params / bse).abs().map(lambda z: math.erfc(z / math.sqrt(2)))
    made = fit_spec_record(main_fit_spec(SimpleNamespace(spec=spec), _ESTIMATORS[model])) \
        if model in _ESTIMATORS else {}
    write_fit(con, model, params, bse, pvalues, nobs=nobs, ngroups=ngroups,
              stats={"spec_sha256": spec.sha256, **made, **(stats or {})}, truth=truth)


def build_panel(con, years=range(2005, 2013)) -> None:
    """panel.model_panel (firm, year) and panel.spell_years rows: enough for the periods."""
    con.execute("CREATE SCHEMA IF NOT EXISTS panel")
    con.execute("CREATE OR REPLACE TABLE panel.model_panel (firm_id VARCHAR, year INTEGER)")
    con.executemany("INSERT INTO panel.model_panel VALUES (?, ?)",
                    [(f"f{i}", y) for i in range(5) for y in years])
    con.execute("CREATE OR REPLACE TABLE panel.spell_years (firm_id VARCHAR, destination VARCHAR, "
                "year INTEGER, left_censored BOOLEAN, start INTEGER)")
    rows = [("f1", "europe", y, False, y - 2007) for y in years if y >= 2007]
    rows += [("f2", "europe", min(years), True, 0), ("f3", "any", min(years), False, 0)]
    con.executemany("INSERT INTO panel.spell_years VALUES (?, ?, ?, ?, ?)", rows)


@pytest.fixture
def warehouse(tmp_path):
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    build_panel(con)
    store_fit(con, "outsourcing_probit", probit_terms(SPEC.probit))
    store_fit(con, "backshoring_cox", list(SPEC.cox.covariates) + ["footwear", "area_centre"], ngroups=None)
    yield db, con
    con.close()


def table2(con, probit, **kw):
    fit = read_fit(con, "outsourcing_probit")
    spec = tables.table2_spec(probit, tables.probit_period(con, probit, fit), fit=fit, **kw)
    return tables.model_table(fit, spec, **KW)


def labels_of(t: render.DisplayTable) -> list[str]:
    return [r.label for r in t.rows]


# --------------------------------------------------------------------------- Table 2 follows the spec


def test_table2_rows_labels_and_dummies_come_from_the_spec(warehouse):
    _, con = warehouse
    t = table2(con, SPEC.probit)
    lab = tables.probit_labels(SPEC.probit)
    shown = tables.probit_rows(SPEC.probit)
    assert shown[:2] == ["y_initial", "y_lag"] and "const" not in shown
    assert not any(s.startswith(("mean_", "init_")) for s in shown)
    assert labels_of(t)[:len(shown)] == [lab.get(s, s) for s in shown]
    assert labels_of(t)[len(shown):] == ["Industry dummies", "Territorial dummies (macro-areas)",
                                         "Observations", "Groups"]
    assert t.row("Industry dummies").cells[0] == "Yes"
    assert t.row("Observations").cells[0] == "5,000" and t.row("Groups").cells[0] == "800"
    # years t of the sample: from the panel, the firm's row in t-1 needed (2005 is the initial year)
    assert "period 2006-2012" in t.title and t.title.startswith("Table 2. Dynamic Probit Model")


def test_a_changed_label_is_printed(warehouse):
    _, con = warehouse
    probit = dataclasses.replace(SPEC.probit, labels={**SPEC.probit.labels,
                                                      "y_lag": "Outcome at t-1",
                                                      "supplier_lag": "Supplier (1 if yes)"})
    t = table2(con, probit)
    assert "Outcome at t-1" in labels_of(t) and "Supplier (1 if yes)" in labels_of(t)
    assert "Supplier" not in labels_of(t)
    # a term without a label falls back to its name
    bare = dataclasses.replace(SPEC.probit, labels={})
    assert labels_of(table2(con, bare))[:3] == ["y_initial", "y_lag", "export_ratio_lag"]


def test_region_dummies_instead_of_macro_areas(tmp_path):
    regions = {"Lombardia": "region_lombardia", "Veneto": "region_veneto", "Marche": "region_marche"}
    probit = dataclasses.replace(SPEC.probit, dummies={"sector": ("clothing", {"footwear": "footwear"}),
                                                       "region": ("Toscana", regions)})
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    build_panel(con)
    store_fit(con, "outsourcing_probit", probit_terms(probit))
    t = table2(con, probit)
    assert labels_of(t)[-4:] == ["Industry dummies", "Territorial dummies (regions)", "Observations", "Groups"]
    assert t.row("Territorial dummies (regions)").cells[0] == "Yes"
    assert not any("macro-areas" in label for label in labels_of(t))
    assert not any("not in the specification" in n for n in t.notes)
    # the old fit (macro-area dummies) under the new spec: the table says so, it does not pretend
    store_fit(con, "outsourcing_probit", probit_terms(SPEC.probit))
    stale = table2(con, probit)
    assert stale.row("Territorial dummies (regions)").cells[0] == "No"
    assert any("area_south" in n and "not in the specification" in n for n in stale.notes)
    con.close()


def test_year_dummies_add_a_line(warehouse):
    _, con = warehouse
    probit = dataclasses.replace(SPEC.probit, year_dummies=True)
    store_fit(con, "outsourcing_probit", probit_terms(probit))
    t = table2(con, probit)
    assert labels_of(t)[-5:] == ["Industry dummies", "Territorial dummies (macro-areas)", "Year dummies",
                                 "Observations", "Groups"]
    assert t.row("Year dummies").cells[0] == "Yes"
    assert not any(label.startswith("year_") for label in labels_of(t))  # not a row each


def test_one_more_covariate_gets_its_row_in_spec_order(warehouse):
    _, con = warehouse
    probit = dataclasses.replace(
        SPEC.probit, lagged=(*SPEC.probit.lagged, "employees"),
        labels={**SPEC.probit.labels, "employees_lag": "Size (Number of employees) at t-1"})
    store_fit(con, "outsourcing_probit", probit_terms(probit))
    t = table2(con, probit)
    labels = labels_of(t)
    assert labels.index("Size (Number of employees) at t-1") == labels.index("Supplier") + 1
    assert t.row("Size (Number of employees) at t-1").cells[0] not in ("", "–")
    # the paper has no such term: the comparison says "–" for it
    fit = read_fit(con, "outsourcing_probit")
    comp = tables.comparison_table(fit, tables.table2_spec(probit, (2006, 2012)), **KW)
    assert comp.row("Size (Number of employees) at t-1").cells[0] == "–"


def test_logit_link_and_reports_label_override(warehouse):
    _, con = warehouse
    t = table2(con, dataclasses.replace(SPEC.probit, link="logit"),
               initial_outcome_label="Initial outcome (y_2005)")
    assert t.title.startswith("Table 2. Dynamic Logit Model")
    assert labels_of(t)[0] == "Initial outcome (y_2005)"


# --------------------------------------------------------------------------- periods follow the data


def test_period_follows_the_sample_after_a_new_year(warehouse):
    _, con = warehouse
    build_panel(con, years=range(2005, 2014))  # a 2013 delivery
    con.execute("CREATE TABLE panel.firm_years (firm_id VARCHAR, year INTEGER)")
    con.execute("INSERT INTO panel.firm_years SELECT * FROM panel.model_panel")
    con.execute("CREATE TABLE panel.aida_offshoring (firm_id VARCHAR, year INTEGER)")
    fit = read_fit(con, "outsourcing_probit")
    assert tables.probit_period(con, SPEC.probit, fit) == (2006, 2013)
    assert tables.cox_period(con, SPEC.cox, read_fit(con, "backshoring_cox")) == (2007, 2013)
    assert tables.table1_period(con, SPEC.reports.table1.start_year, None) == (2007, 2013)
    assert "(average values over the 2007-2013 period)" in tables.table1_title((2007, 2013))
    # a pinned last year, a common initial year
    assert tables.probit_period(con, dataclasses.replace(SPEC.probit, last_year=2010), fit) == (2006, 2010)
    assert tables.probit_period(con, dataclasses.replace(SPEC.probit, initial_period=2007), fit) == (2008, 2013)
    # the stored fit's own record of its sample wins over the panel
    store_fit(con, "outsourcing_probit", probit_terms(SPEC.probit),
              stats={"sample_first_year": 2007, "sample_last_year": 2012})
    assert tables.probit_period(con, SPEC.probit, read_fit(con, "outsourcing_probit")) == (2007, 2012)


def test_table1_period_is_the_data_inside_the_window(warehouse):
    """Table 1's title printed the specification's window (2003-2015, or 2007 to a data end
    of 2011 on data from 2008): it now prints the first and last survey year inside the
    window, names a year missing inside it source by source, and refuses a window holding no
    survey year. A year of AIDA alone (its one export usually covers every year) made a
    missing survey delivery look covered: no note said the outsourcing columns lacked it."""
    _, con = warehouse
    con.execute("CREATE TABLE panel.firm_years (firm_id VARCHAR, year INTEGER)")
    con.execute("INSERT INTO panel.firm_years VALUES ('a', 2008), ('a', 2009), ('b', 2011)")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("CREATE TABLE raw.aida_firm_years (firm_id VARCHAR, year INTEGER, turnover DOUBLE, "
                "employees DOUBLE)")
    con.execute("INSERT INTO raw.aida_firm_years VALUES ('c', 2008, 1, 1), ('c', 2009, 1, NULL), "
                "('c', 2010, NULL, 3), ('c', 2011, 1, 1), ('c', 2007, NULL, NULL)")
    assert tables.table1_period(con, 2003, 2015) == (2008, 2011)
    assert tables.table1_period(con, 2007, None) == (2008, 2011)
    # an AIDA year beyond the latest survey year waits for its survey year, and sets no bound
    con.execute("INSERT INTO raw.aida_firm_years VALUES ('c', 2012, 1, 1)")
    assert tables.table1_period(con, 2007, None) == (2008, 2011)
    assert tables.table1_period(con, 2007, 2012) == (2008, 2011)
    assert tables.table1_period(con, 2009, 2010) == (2009, 2009)
    # AIDA covers 2010, the survey does not: the outsourcing columns say so
    assert tables.table1_gap_note(con, (2008, 2011)) == (
        "No survey data for 2010: the outsourcing columns average over the 3 years with data "
        "(2008, 2009, 2011).")
    assert tables.table1_gap_note(con, (2008, 2009)) is None
    con.execute("DELETE FROM raw.aida_firm_years WHERE year = 2009")
    assert tables.table1_gap_note(con, (2008, 2009)) == (
        "No AIDA data for 2009: the offshoring columns average over the 1 years with data (2008).")
    with pytest.raises(tables.Table1PeriodError,
                       match=r"table1\.start_year 2013, end_year latest\) holds no year of the survey panel: "
                             r"the window is 2013 onwards, the survey years loaded are 2008-2011"):
        tables.table1_period(con, 2013, None)
    # a figure's year needs both sources: 2012 is AIDA's alone, 2009 the survey's alone
    for year, lacking in ((2012, "survey panel"), (2009, "AIDA export"), (2007, "survey panel")):
        with pytest.raises(tables.Table1PeriodError, match=rf"figure1\.year is {year}, a year with no data in "
                                                           rf"the {lacking}"):
            tables.require_data_year(con, year, "figure1.year")
    tables.require_data_year(con, 2011, "figure1.year")


def test_table3_follows_the_cox_spec(warehouse):
    _, con = warehouse
    cox = dataclasses.replace(SPEC.cox, covariates=(*SPEC.cox.covariates, "district"),
                              labels={**SPEC.cox.labels, "district": "Location inside an industrial district",
                                      "roi": "ROI"})
    store_fit(con, "backshoring_cox", list(cox.covariates) + ["footwear", "area_centre"], ngroups=None)
    fit = read_fit(con, "backshoring_cox")
    spec = tables.table3_spec(cox, tables.cox_period(con, cox, fit))
    t = tables.model_table(fit, spec, **KW)
    labels = labels_of(t)
    assert labels[:len(cox.covariates)] == [cox.labels.get(c, c) for c in cox.covariates]
    assert "ROI" in labels and labels[len(cox.covariates) - 1] == "Location inside an industrial district"
    assert "period 2007-2012" in t.title and t.column_names() == ["Hazard ratio", "Std. err."]
    assert t.row("Groups").cells[0] == "–"  # an unclustered fit has no groups


# --------------------------------------------------------------------------- assets


def _resources(tmp_path: Path, db: Path, *, synthetic: bool, config_dir: Path | None = None) -> dict:
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    if synthetic:
        (raw / "truth.json").write_text(json.dumps({"generator": MARKER, "seed": 5}))
    return {
        "warehouse": Warehouse(database=str(db)),
        "folders": Folders(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"), synthetic=synthetic),
        "study": Study(config_dir=str(config_dir) if config_dir else None),
    }


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


@pytest.mark.parametrize("synthetic", [True, False])
def test_table2_asset_follows_a_user_spec_and_says_where_the_data_come_from(tmp_path, warehouse, synthetic):
    db, con = warehouse
    con.close()
    user = tmp_path / "config"
    user.mkdir()
    (user / "probit_table2.yaml").write_text(
        "labels:\n  y_initial: \"Initial outcome (y_2005)\"\n  y_lag: \"Outcome at t-1\"\n")
    result = dg.materialize([report_assets.table2], resources=_resources(
        tmp_path, db, synthetic=synthetic, config_dir=user), raise_on_error=False)
    assert result.success
    check = _checks(result)["table2"]
    assert check.passed and check.metadata["unsafe_cells"].value == 0
    md = (tmp_path / "reports" / "table2.md").read_text()
    assert "| Initial outcome (y_2005) |" in md and "| Outcome at t-1 |" in md
    meta = result.asset_materializations_for_node("table2")[0].metadata
    assert "Outcome at t-1" in meta["table"].value  # the rendered table in the UI
    assert "comparison" in meta and meta["period"].value == "2006-2012"
    side = json.loads((tmp_path / "reports" / "table2.provenance.json").read_text())
    spec = load_study_spec(user)
    assert side["provenance"]["spec_sha256"] == spec.sha256 == meta["spec_sha256"].value
    assert side["provenance"]["spec"]["probit"]["labels"]["y_lag"] == "Outcome at t-1"
    if synthetic:
        line = "Source: synthetic data from the project's generator (seed 5), not IMEFAS/AIDA"
        assert line in md and side["provenance"]["data"] == "synthetic" and meta["data"].value == "synthetic"
        assert meta["source"].value == SYN.line() and "seed 5" in meta["source"].value
    else:
        assert "Source: elaborations on IMEFAS and AIDA data (this run)" in md
        assert "synthetic" not in md
        assert side["provenance"]["data"] == "real" and meta["data"].value == "real"


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_a_logit_table2_is_not_compared_with_probit_values(tmp_path, warehouse, link):
    """Table 2 fitted with a logit link: the paper's estimates and the generator's true values
    are probit coefficients; set beside a logit's they said the estimator missed 4 of 10 true
    values. They are left out, and the notes say why; under the probit they are shown."""
    db, con = warehouse
    user = tmp_path / "config"
    user.mkdir()
    (user / "probit_table2.yaml").write_text(f"link: {link}\n")
    spec = load_study_spec(user)
    terms = probit_terms(spec.probit)
    store_fit(con, "outsourcing_probit", terms, spec=spec, stats={"link": link},
              truth={t: 0.05 for t in terms})
    con.close()
    result = dg.materialize([report_assets.table2], resources=_resources(
        tmp_path, db, synthetic=True, config_dir=user), raise_on_error=False)
    assert result.success
    md = (tmp_path / "reports" / "table2_comparison.md").read_text()
    rows = list(csv.reader(io.StringIO((tmp_path / "reports" / "table2_comparison.csv").read_text())))
    if link == "probit":
        assert "True value" in md and "Covered by 95% CI" in md and "intervals miss" in md
        assert "link" not in md
        assert any(r[1] not in ("", "—") for r in rows[1:4])  # published values shown
    else:
        assert "True value" not in md and "Covered" not in md and "intervals miss" not in md
        assert "This fit uses a logit link (probit_table2.yaml: link)" in md
        assert "neither is shown beside it" in md
        published = [r[1] for r in rows[1:] if r and r[0] not in ("Observations", "Groups")]
        assert published and all(v in ("", "—", "None") for v in published), published


def test_disclosure_check_fails_on_a_model_of_two_firms(tmp_path, warehouse):
    db, con = warehouse
    store_fit(con, "outsourcing_probit", probit_terms(SPEC.probit), nobs=9, ngroups=2)
    con.close()
    result = dg.materialize([report_assets.table2], resources=_resources(tmp_path, db, synthetic=True),
                            raise_on_error=False)
    assert not result.success  # a failed blocking ERROR check fails the run
    check = _checks(result)["table2"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["unsafe_cells"].value == 1 and check.metadata["unsafe_threshold"].value == 1
    assert check.metadata["outputs_written"].value == 0
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").iterdir())
    assert result.asset_materializations_for_node("table2") == []


def test_disclosure_check_fails_and_writes_nothing_on_an_unsafe_table1(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_reports import build_warehouse

    db = tmp_path / "w.duckdb"
    build_warehouse(db)
    # a protection step that lets everything through: the check must catch it before writing
    monkeypatch.setattr(sdc, "protect", lambda table, rules: sdc.ProtectedTable(table, rules, {}))
    result = dg.materialize([report_assets.table1], resources=_resources(tmp_path, db, synthetic=True),
                            raise_on_error=False)
    assert not result.success
    check = _checks(result)["table1"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    counts = {k: v.value for k, v in check.metadata.items()}
    assert counts["unsafe_cells"] >= 2 and counts["unsafe_threshold"] >= 1 and counts["unsafe_dominance"] >= 1
    # labels only: no value of a cell in the check (c01's turnover is 50,000,000)
    assert "50000000" not in json.dumps(counts) and "50,000,000" not in (check.description or "")
    assert all(isinstance(v, int) for v in counts.values())
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").iterdir())
    assert result.asset_materializations_for_node("table1") == []


def test_the_demo_from_dagster_does_not_write_over_real_reports(tmp_path):
    """`offshoring ui --synthetic` with a shared reports folder: refused before any output is
    written, as the command line refuses it."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_reports import build_warehouse

    db = tmp_path / "w.duckdb"
    build_warehouse(db)
    assert dg.materialize([report_assets.table1], resources=_resources(tmp_path, db, synthetic=False)).success
    before = (tmp_path / "reports" / "table1.md").read_bytes()
    result = dg.materialize([report_assets.table1], resources=_resources(tmp_path, db, synthetic=True),
                            raise_on_error=False)
    assert not result.success
    text = " ".join(str(e.event_specific_data.error.message) for e in result.get_step_failure_events())
    assert "holds reports of real data" in text and "OFFSHORING_REPORTS_DIR" in text
    assert (tmp_path / "reports" / "table1.md").read_bytes() == before


def test_table1_asset_shows_its_table_and_the_papers(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_reports import build_warehouse

    db = tmp_path / "w.duckdb"
    build_warehouse(db)
    result = dg.materialize([report_assets.table1, report_assets.figure1],
                            resources=_resources(tmp_path, db, synthetic=False))
    checks = _checks(result)
    assert checks["table1"].passed and checks["figure1"].passed
    assert checks["table1"].metadata["suppressed"].value >= 1
    meta = result.asset_materializations_for_node("table1")[0].metadata
    assert meta["table"].value.startswith("**Table 1. Main characteristics")
    assert "(average values over the 2007-2008 period)" in meta["table"].value  # the data's last year
    assert "| Number of firms | 486 | 13 |" in meta["comparison"].value
    assert meta["data"].value == "real"
    fmeta = result.asset_materializations_for_node("figure1")[0].metadata
    assert "Figure 1 data. Destination of offshoring and offshore outsourcing activities in 2008" \
        in fmeta["figure_data"].value
    assert fmeta["png"].value.endswith("figure1.png") and Path(fmeta["png"].value).exists()
    assert "Source: elaborations on IMEFAS and AIDA data" in fmeta["caption"].value


@pytest.mark.parametrize("figure", ["figure1", "figure2"])
def test_a_figure_of_a_year_without_data_is_refused(tmp_path, figure):
    """A figure year the data do not have was drawn as 0 firms in every group (bars, map and
    data file), with its disclosure check passed: now refused, naming the setting and the
    years loaded, and nothing is written."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_reports import build_warehouse

    db = tmp_path / "w.duckdb"
    build_warehouse(db)
    user = tmp_path / "config"
    user.mkdir()
    (user / "reports.yaml").write_text(f"{figure}:\n  year: 2013\n")
    result = dg.materialize([getattr(report_assets, figure)],
                            resources=_resources(tmp_path, db, synthetic=False, config_dir=user),
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.step_failure_data.user_failure_data.description
    assert f"reports.yaml: {figure}.year is 2013, a year with no data in the survey panel" in text
    assert "(its years are 2007, 2008)" in text and f"Set {figure}.year to a year both the survey and AIDA" in text
    assert not (tmp_path / "reports" / f"{figure}.png").exists()


def test_comparison_says_how_many_misses_chance_gives():
    from offshoring.reports.tables import chance_note

    text = chance_note(20, 2)
    assert text.startswith("2 of 20 intervals miss")
    assert "about 1.0 would" in text and "up to 3 in 95% of seeds" in text


# --------------------------------------------------------------------------- which fit, which settings


def _user_model_config(tmp_path: Path) -> Path:
    """The auditor's settings: probit with OIM errors, 24 points, years 2008-2011; Cox with
    Breslow ties and OIM errors; other turnover ceilings."""
    user = tmp_path / "model_config"
    user.mkdir()
    (user / "probit_table2.yaml").write_text("years:\n  first: 2008\n  last: 2011\ncov_type: oim\n"
                                             "quad_points: 24\n")
    (user / "cox_table3.yaml").write_text("ties: breslow\ncov_type: oim\n")
    return user


@pytest.mark.parametrize("asset, model", [("table2", "outsourcing_probit"), ("table3", "backshoring_cox"),
                                          ("table3_grouped", "backshoring_grouped_ph")])
def test_a_fit_made_under_other_model_settings_is_not_shown(tmp_path, warehouse, asset, model):
    """A fit made under the user's settings, then the table alone re-materialized under the
    default specification (as from the UI): refused with a plain sentence, nothing written."""
    db, con = warehouse
    other = load_study_spec(_user_model_config(tmp_path))
    terms = probit_terms(other.probit) if model == "outsourcing_probit" else \
        list(other.cox.covariates) + ["footwear", "area_centre"]
    store_fit(con, model, terms, spec=other, stats={"fitted_at": "2026-01-01T00:00:00+00:00"})
    con.close()
    result = dg.materialize([getattr(report_assets, asset)], resources=_resources(tmp_path, db, synthetic=True),
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.step_failure_data.user_failure_data.description
    assert f"the fit {model} was made on 2026-01-01" in text and f"Re-materialize {model}" in text
    assert other.sha256[:12] in text and "model.cov_type" in text
    assert not (tmp_path / "reports" / f"{asset}.md").exists()


@pytest.mark.parametrize("asset, model, source", [
    ("table2", "outsourcing_probit", "panel.model_panel"),
    ("table3", "backshoring_cox", "panel.spell_years"),
    ("table3_grouped", "backshoring_grouped_ph", "panel.spell_years")])
def test_a_fit_made_from_other_data_is_not_shown(tmp_path, warehouse, asset, model, source):
    """The fit records the content of the table it was made from. A new year loaded and the
    panel rebuilt, then the table alone re-materialized (from the UI): the table showed the old
    estimates beside a provenance listing the new delivery. Refused, naming the table that
    changed, nothing written; with the fit made from the current panel it renders."""
    import json as _json

    from offshoring.variants import inputs_fingerprint

    db, con = warehouse
    terms = probit_terms(SPEC.probit) if model == "outsourcing_probit" else \
        list(SPEC.cox.covariates) + ["footwear", "area_centre"]
    parts = inputs_fingerprint(con, "{}", [source]).parts
    store_fit(con, model, terms, ngroups=800 if model == "outsourcing_probit" else None,
              stats={"fitted_at": "2026-01-01T00:00:00+00:00", "input_fingerprint_parts": _json.dumps(parts)})
    con.close()
    resources = _resources(tmp_path, db, synthetic=True)
    assert dg.materialize([getattr(report_assets, asset)], resources=resources, raise_on_error=False).success
    (tmp_path / "reports" / f"{asset}.md").unlink()
    with duckdb.connect(str(db)) as con2:  # the panel rebuilt with a new year; the fit not redone
        if source == "panel.model_panel":
            con2.execute("INSERT INTO panel.model_panel VALUES ('f9', 2013)")
        else:
            con2.execute("INSERT INTO panel.spell_years VALUES ('f9', 'europe', 2013, false, 0)")
    result = dg.materialize([getattr(report_assets, asset)], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.step_failure_data.user_failure_data.description
    assert text.startswith(f"{asset} was not written: the fit {model} was made on 2026-01-01T00:00:00+00:00 "
                           f"from {source} as it was then, and it has changed since"), text
    assert f"Re-materialize {model} (and then {asset})" in text
    assert not (tmp_path / "reports" / f"{asset}.md").exists()


def test_a_label_edit_renders_the_fit_made_under_the_same_model_settings(tmp_path, warehouse):
    """Only report-side settings changed since the fit (a label, the digits): the table is
    rendered with the new labels."""
    db, con = warehouse
    con.close()
    user = tmp_path / "labels_only"
    user.mkdir()
    (user / "probit_table2.yaml").write_text("labels:\n  y_lag: \"Outcome at t-1 (edited)\"\n")
    (user / "reports.yaml").write_text("format:\n  digits: 2\n")
    assert load_study_spec(user).sha256 != SPEC.sha256
    result = dg.materialize([report_assets.table2], resources=_resources(tmp_path, db, synthetic=False,
                                                                          config_dir=user),
                            raise_on_error=False)
    assert result.success
    assert "| Outcome at t-1 (edited) |" in (tmp_path / "reports" / "table2.md").read_text()


def test_notes_name_standard_errors_quadrature_and_ties_of_the_fit(warehouse):
    _, con = warehouse
    # recorded with the fit: they win over the specification
    store_fit(con, "outsourcing_probit", probit_terms(SPEC.probit),
              stats={"cov_type": "opg", "quad_points": 24, "adaptive": 0})
    t = table2(con, SPEC.probit)
    note = next(n for n in t.notes if n.startswith("Estimation:"))
    assert "outer product of the gradients (OPG)" in note and "24-point ordinary (non-adaptive)" in note
    # not recorded: the specification the fit was made under
    store_fit(con, "outsourcing_probit", probit_terms(SPEC.probit))
    note = next(n for n in table2(con, SPEC.probit).notes if n.startswith("Estimation:"))
    assert f"{SPEC.probit.quad_points}-point adaptive" in note and "clustered by firm" in note
    store_fit(con, "backshoring_cox", list(SPEC.cox.covariates), ngroups=None,
              stats={"cov_type": "oim", "ties": "breslow"})
    fit = read_fit(con, "backshoring_cox")
    t3 = tables.model_table(fit, tables.table3_spec(SPEC.cox, (2007, 2012), fit), **KW)
    note = next(n for n in t3.notes if n.startswith("Estimation:"))
    assert "Breslow's approximation for tied event times" in note and "observed information (OIM)" in note
    t3 = tables.model_table(fit, tables.table3_spec(SPEC.cox, (2007, 2012)), **KW)
    assert any(f"{SPEC.cox.ties.capitalize()}'s approximation" in n for n in t3.notes)
    g = tables.table3_grouped_spec(SPEC.cox, (2007, 2012), fit)
    assert any("no approximation for ties" in n for n in g.notes)


def test_the_initial_outcome_is_labelled_with_its_year(warehouse):
    _, con = warehouse
    later = dataclasses.replace(SPEC.probit, first_year=2009)
    assert labels_of(table2(con, later))[0] == "Initial outcome (y_2008)"
    assert labels_of(table2(con, dataclasses.replace(SPEC.probit, initial_period=2007)))[0] == \
        "Initial outcome (y_2007)"
    # the fit's own record of its firms' earliest initial period wins
    store_fit(con, "outsourcing_probit", probit_terms(SPEC.probit), stats={"sample_initial_year": 2006})
    assert labels_of(table2(con, SPEC.probit))[0] == "Initial outcome (y_2006)"


def test_the_model_tables_check_says_what_it_checked(tmp_path, warehouse):
    db, con = warehouse
    con.close()
    result = dg.materialize([report_assets.table2], resources=_resources(tmp_path, db, synthetic=True),
                            raise_on_error=False)
    check = _checks(result)["table2"]
    assert check.passed
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta["groups"] == 800 and meta["min_firms"] == RULES.min_firms and meta["models_checked"] == 1
    assert "cells" not in meta  # no cell-by-cell check is claimed
    assert "800 groups" in check.description


def test_cox_period_leaves_out_spells_begun_before_first_spell_year(warehouse):
    _, con = warehouse
    con.execute("INSERT INTO panel.spell_years VALUES ('f4', 'europe', 2009, false, 0), "
                "('f4', 'europe', 2010, false, 1)")
    assert tables.cox_period(con, SPEC.cox) == (2007, 2012)
    assert tables.cox_period(con, dataclasses.replace(SPEC.cox, first_spell_year=2008)) == (2009, 2010)
