"""Checks that can fail: a failing blocking check stops what is built below it, in a real run.

`offshoring run` builds a small world; one raw return is then broken behind the raw layer's
back (a share of 250%, which the loader itself would refuse) and the turnover ceiling moved
by one euro, so that the next `offshoring run` rebuilds the panel: the panel's schema check
fails and is recorded as failed, the panel keeps its previous content, nothing downstream
runs, and the command line says why in plain sentences naming the check and the delivery
row (it used to add "DagsterStepOutputNotFoundError: ... did not return an output" for a
check not evaluated on a panel not written).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from conftest import instance_at, small_world_config

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "orchestration.cli", "run", "--synthetic"]
BELOW = ["model_panel", "outsourcing_spells", "spell_years", "outsourcing_probit", "backshoring_cox",
         "table2", "table3"]


def test_failing_panel_schema_check_stops_the_assets_below(tmp_path):
    from offshoring.synth import generate

    generate(tmp_path / "raw", firms=2500, seed=11)
    config = small_world_config(tmp_path / "config")
    db, home = tmp_path / "w.duckdb", tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSHORING_")}
    env.update({"OFFSHORING_RAW_DIR": str(tmp_path / "raw"), "OFFSHORING_DB": str(db),
                "OFFSHORING_REPORTS_DIR": str(tmp_path / "reports"), "DAGSTER_HOME": str(home),
                "OFFSHORING_CONFIG_DIR": str(config)})
    first = subprocess.run(CLI, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    with instance_at(home) as instance:
        runs_before = {r.run_id for r in instance.get_runs()}

    con = duckdb.connect(str(db))
    before = con.execute("SELECT count(*), sum(hash(f)::HUGEINT) FROM panel.firm_years f").fetchall()
    year, file, row = con.execute(
        "UPDATE raw.survey_returns SET export_share = 250 WHERE rowid = (SELECT min(rowid) FROM "
        "raw.survey_returns WHERE year = 2009) RETURNING year, source_file, source_row").fetchall()[0]
    con.close()
    (config / "thresholds.yaml").write_text("turnover_ceiling:\n  default: 7500001\n")

    second = subprocess.run(CLI, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    out = second.stdout + second.stderr
    assert second.returncode == 1, out[-3000:]
    assert "firm_years: the new panel breaks its schema (check panel_schema_valid, below): the previous " \
           "panel stays, and nothing built from it ran" in out, out[-3000:]
    assert "check firm_years:panel_schema_valid failed" in out and f"{file} row {row}" in out \
        and f"year {year}" in out, out[-3000:]
    assert "Error" not in out and "Traceback" not in out, out[-3000:]  # no exception's name

    with instance_at(home) as instance:
        new = [r for r in instance.get_runs() if r.run_id not in runs_before]
        assert len(new) == 1 and new[0].status == dg.DagsterRunStatus.FAILURE
        run_id = new[0].run_id
        materialized = {rec.dagster_event.event_specific_data.materialization.asset_key.to_user_string()
                        for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
        assert "firm_years" in materialized  # recorded as rolled back
        assert not (set(BELOW) & materialized), materialized
        # the check's failure is in the instance, where the alert sensor reads it; the check
        # not evaluated on a panel not written is not recorded as failed (no false alert)
        checks = [rec.dagster_event.event_specific_data
                  for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
        assert [(c.check_name, c.passed) for c in checks if c.asset_key == dg.AssetKey("firm_years")] \
            == [("panel_schema_valid", False)], checks
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), sum(hash(f)::HUGEINT) FROM panel.firm_years f").fetchall() == before
    con.close()
