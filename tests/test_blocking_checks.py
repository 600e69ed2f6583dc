"""Checks that can fail: a failing blocking check stops what is built below it, in a real run.

The warehouse of the session's pipeline run is copied, one raw return is broken behind
the raw layer's back (a share of 250%, which the loader itself would refuse), and the
panel and what depends on it are materialized through Dagster: the panel's schema
check fails and is recorded as failed, the panel keeps its previous content, nothing
downstream runs, and the command line's summary names the check and the delivery row.
"""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb

from orchestration.definitions import build_definitions
from orchestration.pipeline import failure_summary
from assets.resources import Folders, Warehouse

BELOW = ["model_panel", "outsourcing_spells", "spell_years", "outsourcing_probit", "backshoring_cox",
         "table2", "table3"]


def test_failing_panel_schema_check_stops_the_assets_below(pipeline_run, tmp_path):
    assert pipeline_run.ok
    db = tmp_path / "w.duckdb"
    shutil.copy(pipeline_run.db, db)
    con = duckdb.connect(str(db))
    before = con.execute("SELECT count(*), sum(hash(f)::HUGEINT) FROM panel.firm_years f").fetchall()
    year, file, row = con.execute(
        "UPDATE raw.survey_returns SET export_share = 250 WHERE rowid = (SELECT min(rowid) FROM "
        "raw.survey_returns WHERE year = 2009) RETURNING year, source_file, source_row").fetchall()[0]
    con.close()

    defs = build_definitions({"warehouse": Warehouse(database=str(db)),
                              "folders": Folders(raw_dir=str(pipeline_run.raw),
                                                 reports_dir=str(tmp_path / "reports"), synthetic=True)})
    selection = [dg.AssetKey(k) for k in ["firm_years", "dedup_report", *BELOW]]
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("refresh_outputs").execute_in_process(
            instance=instance, asset_selection=selection, raise_on_error=False)
        assert not result.success
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert checks["panel_schema_valid"].passed is False
        assert "export_share" in checks["panel_schema_valid"].description
        materialized = {e.event_specific_data.materialization.asset_key.to_user_string()
                        for e in result.get_asset_materialization_events()}
        assert "firm_years" in materialized  # recorded as rolled back
        assert not (set(BELOW) & materialized), materialized
        # the check's failure is in the instance, where the alert sensor reads it
        records = instance.get_event_records(dg.EventRecordsFilter(
            event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=100)
        failed = [r for r in records
                  if not r.event_log_entry.dagster_event.event_specific_data.passed]
        assert [r.event_log_entry.dagster_event.event_specific_data.check_name for r in failed] \
            == ["panel_schema_valid"]
        summary = failure_summary(result)
    assert "panel_schema_valid" in summary and f"{file} row {row}" in summary and str(year) in summary
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), sum(hash(f)::HUGEINT) FROM panel.firm_years f").fetchall() == before
    con.close()
