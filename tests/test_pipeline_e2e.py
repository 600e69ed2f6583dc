"""The whole pipeline on a small synthetic dataset: counts match the generator's truth,
geography resolves, models are fitted and every report is written with its content."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest


@pytest.fixture(scope="module")
def con(pipeline_run):
    assert pipeline_run.ok, "the pipeline run failed"
    c = duckdb.connect(str(pipeline_run.db), read_only=True)
    yield c
    c.close()


def by_year(con, sql):
    return {str(y): int(n) for y, n in con.execute(sql).fetchall()}


def test_panel_counts_match_truth(con, pipeline_run):
    counts = pipeline_run.truth["counts"]
    assert con.execute("SELECT count(DISTINCT firm_id) FROM panel.firm_years").fetchall()[0][0] == counts["firms"]
    assert by_year(con, "SELECT year, count(*) FROM panel.firm_years GROUP BY 1") == counts["firm_years_by_year"]
    assert by_year(con, "SELECT year, sum(outsourcing) FROM panel.firm_years GROUP BY 1") == \
        counts["outsourcing_firm_years_by_year"]
    assert by_year(con, "SELECT year, count(*) FROM panel.aida_offshoring GROUP BY 1") == \
        counts["offshoring_firms_by_year"]
    assert by_year(con, "SELECT year, sum(foreign_owner) FROM panel.firm_years GROUP BY 1") == \
        counts["migrant_firms_by_year"]
    rejected = by_year(con, "SELECT year, count(*) FROM panel.survey_rejects "
                            "WHERE reason = 'superseded_by_later_filing' GROUP BY 1")
    assert rejected == {k: v for k, v in counts["refilings_by_year"].items() if v}


def test_every_firm_year_resolves_to_province_and_llma(con):
    assert con.execute("SELECT count(*) FROM panel.firm_years WHERE province IS NULL "
                       "OR llma_code IS NULL OR macro_area IS NULL").fetchall()[0][0] == 0


def test_districts_found_are_the_intended_ones(con, pipeline_run):
    intended = set(pipeline_run.truth["districts"]["llma_codes"])
    found = {r[0] for r in con.execute("SELECT llma_code FROM geography.llma_districts "
                                       "WHERE district = 1").fetchall()}
    assert found == intended


def test_probit_recovers_true_parameters(con):
    rows = con.execute("SELECT term, covered FROM models.coefficients "
                       "WHERE model = 'outsourcing_probit' AND true_value IS NOT NULL").fetchall()
    assert len(rows) >= 20
    share = sum(bool(c) for _, c in rows) / len(rows)
    # 95% intervals: at this size a few misses are chance; many would be a bias
    assert share >= 0.8, rows
    key = dict(rows)
    assert key["y_lag"] and key["y_initial"]


def test_fit_tables_hold_sample_sizes_and_quadrature_check(con):
    stats = dict(con.execute("SELECT stat, value FROM models.fit_stats WHERE model = 'outsourcing_probit'").fetchall())
    assert stats["nobs"] > 10_000 and stats["ngroups"] > 2000
    assert con.execute("SELECT count(*) FROM models.probit_quadrature_check").fetchall()[0][0] > 0
    cox = dict(con.execute("SELECT stat, value FROM models.fit_stats WHERE model = 'backshoring_cox'").fetchall())
    assert cox["nobs"] > 0 and cox["n_events"] > 0


def test_reports_written_with_paper_layout(pipeline_run):
    rep = pipeline_run.reports
    for name in ("table1", "table2", "table3", "table2_comparison", "table3_comparison"):
        for ext in ("md", "tex", "csv"):
            assert (rep / f"{name}.{ext}").stat().st_size > 0
        prov = json.loads((rep / f"{name}.provenance.json").read_text())
        assert prov["provenance"]["inputs"] and prov["provenance"]["code_version"]
    for name in ("figure1", "figure2"):
        assert (rep / f"{name}.png").stat().st_size > 1000
        assert (rep / f"{name}.svg").stat().st_size > 1000
    t1 = (rep / "table1.md").read_text()
    for label in ("Number of firms", "Duration of internationalization activity", "Turnover",
                  "Number of employees", "% of export on turnover",
                  "Cost of subcontracting production in foreign countries",
                  "Cost of subcontracting production in Italy",
                  "Number of subsidiaries in foreign countries",
                  "% of firms located inside Industrial Districts"):
        assert label in t1
    t2 = (rep / "table2.md").read_text()
    for label in ("yt-1", "Industry dummies", "Territorial dummies", "Observations", "Groups"):
        assert label in t2
    assert "Yes" in t2
    index = (rep / "index.html").read_text()
    assert "table1" in index and "figure2.png" in index
    assert "<script src=\"http" not in index and "<link href=\"http" not in index  # offline


def test_provenance_lists_the_files_as_loaded(con, pipeline_run):
    """A report's inputs are the files its warehouse was loaded from, with their SHA-256 at
    load time (raw.load_log), not the raw folder hashed when the report was written (which
    listed truth.json and any stray file, and the new hash of a delivery replaced but not yet
    loaded)."""
    import hashlib

    from offshoring.truth import contract_files

    # the files loaded are the folder's contract files, unchanged since (and the bundled
    # municipality list): independent of how the report reads raw.load_log
    loaded = {(str(p), hashlib.sha256(p.read_bytes()).hexdigest()) for p in contract_files(pipeline_run.raw)}
    municipalities = con.execute("SELECT file, sha256 FROM raw.load_log WHERE table_name = 'municipalities' "
                                 "AND status <> 'rejected'").fetchall()
    loaded |= {tuple(m) for m in municipalities}
    assert any("survey_" in f for f, _ in loaded) and any("aida_firms" in f for f, _ in loaded)
    for name in ("table1", "table2", "figure1", "table3_robustness"):
        prov = json.loads((pipeline_run.reports / f"{name}.provenance.json").read_text())["provenance"]
        listed = {(i["path"], i["sha256"]) for i in prov["inputs"]}
        assert listed == loaded, name
        assert not any(i["path"].endswith("truth.json") for i in prov["inputs"])
        assert {"table", "partition", "rows", "loaded_at"} <= set(prov["inputs"][0])


def test_every_asset_page_says_the_data_are_synthetic(pipeline_run):
    """The UI's page of a fit, a variant or a load shows coefficients and counts: its metadata
    say what they come from, as the report pages' do."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(pipeline_run.home)) as instance:
        # every asset the run materialized (the panel's and the geography's pages showed counts
        # and rejects with no word of their origin)
        assets = sorted(k.to_user_string() for k in instance.get_asset_keys())
        assert {"outsourcing_probit", "table2_variant_logit", "table2", "survey_returns", "firm_years",
                "model_panel", "spell_years", "llma_districts", "province_spillovers",
                "municipality_xwalk", "dedup_report"} <= set(assets)
        for asset in assets:
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            if event is None:
                continue  # a key with only check or observation events
            assert event.asset_materialization is not None, asset
            meta = event.asset_materialization.metadata
            assert meta["data"].value == "synthetic", asset
            assert "synthetic" in meta["source"].value and "seed" in meta["source"].value, asset


def test_every_csv_says_its_data_are_synthetic(pipeline_run):
    """A CSV opened on its own (a spreadsheet, a colleague's e-mail) still says where its
    numbers come from: a last column `data_source`, on every row, the run's source line."""
    files = sorted(pipeline_run.reports.glob("*.csv"))
    assert len(files) >= 10
    for path in files:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0][-1] == "data_source", path.name
        assert len(rows) > 1, path.name
        for row in rows[1:]:
            assert row[-1].startswith("synthetic data from the project's generator"), (path.name, row)


def test_map_has_every_province(pipeline_run, con):
    with open(pipeline_run.reports / "figure2_data.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    provinces = {r["Province"].split()[0] for r in rows}  # "AG Agrigento"
    listed = {r[0] for r in con.execute("SELECT DISTINCT province FROM raw.municipalities").fetchall()}
    assert listed <= provinces
