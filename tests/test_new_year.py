"""A new survey year flows through by itself; the yearly schedule loads what is new.

Materialize 2005-2012, drop a generated 2013 delivery, evaluate the delivery sensor and
the refresh sensor: the 2013 partition is registered and loaded, everything downstream is
requested in one run (and nothing that 2013 does not change), and the tables then cover
2013. The same path under a real daemon: tests/test_daemon_new_year.py.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil

import dagster as dg
import duckdb
import pytest

from offshoring.spec import load_study_spec
from offshoring.synth import generate
from orchestration.definitions import build_definitions
from orchestration.pipeline import run_everything, run_partition
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.resources import Folders, Study, Warehouse
from conftest import small_world_config

UNCHANGED_BY_A_NEW_YEAR = {"municipalities", "llma_map", "census_employment", "aida_firm_years",
                           "aida_subsidiaries", "municipality_xwalk", "llma_districts"}
DOWNSTREAM = {"firm_years", "aida_offshoring", "dedup_report", "province_spillovers", "model_panel",
              "outsourcing_spells", "spell_years", "outsourcing_probit", "backshoring_cox",
              "backshoring_grouped_ph", "table1", "table2", "table3", "table3_grouped", "figure1",
              "figure2", "report_index"}
# the robustness assets: every variant with its own fit, and the two robustness tables
DOWNSTREAM |= {"table2_robustness", "table3_robustness"} | {
    v.asset_name for vs in load_study_spec(None).variants.values() for v in vs if v.main_fit is None}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("newyear")
    raw = root / "raw"
    generate(raw, firms=900, seed=5, years=range(2005, 2014))
    held = root / "survey_2013.csv"
    shutil.move(raw / "survey" / "survey_2013.csv", held)
    resources = {"warehouse": Warehouse(database=str(root / "w.duckdb")),
                 "folders": Folders(raw_dir=str(raw), reports_dir=str(root / "reports"), synthetic=True),
                 "study": Study(config_dir=str(small_world_config(root / "config")))}
    defs = build_definitions(resources)
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        assert run_everything(raw, instance=instance, defs=defs)
        yield root, raw, held, defs, instance, resources


def keys(result) -> set[str]:
    return {k.to_user_string() for k in result.get_requested_asset_partitions_keys()} \
        if hasattr(result, "get_requested_asset_partitions_keys") else set()


def requests_of(result) -> list:
    """The run requests of a sensor evaluation, whatever form it returned them in (a
    RunRequest alone, a list, a SensorResult, a SkipReason or None)."""
    if result is None or isinstance(result, dg.SkipReason):
        return []
    if isinstance(result, dg.RunRequest):
        return [result]
    if isinstance(result, dg.SensorResult):
        return list(result.run_requests or [])
    return list(result)


def test_new_delivery_is_sensed_loaded_and_propagated(world):
    root, raw, held, defs, instance, resources = world
    sensor = defs.resolve_sensor_def("survey_delivery_sensor")
    # first tick after the CLI run: every year is already loaded, nothing to do
    ctx = dg.build_sensor_context(instance=instance, resources=resources, definitions=defs)
    first = sensor(ctx)
    assert first.run_requests == []
    cursor = first.cursor
    # the refresh sensor is at rest: the reports are newer than every load
    refresh = defs.resolve_sensor_def("outputs_refresh_sensor")
    rest = refresh(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs))
    assert requests_of(rest) == []

    shutil.copy(held, raw / "survey" / "survey_2013.csv")
    tick = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources,
                                          definitions=defs))
    assert [r.partition_key for r in tick.run_requests] == ["2013"]
    assert tick.run_requests[0].tags["offshoring/data"] == "synthetic"  # the UI's run list says which data
    adds = tick.dynamic_partitions_requests
    assert adds and list(adds[0].partition_keys) == ["2013"]
    instance.add_dynamic_partitions("survey_year", ["2013"])
    assert run_partition(defs, instance, "2013").success

    # one refresh of everything below the survey, and nothing a new year does not change
    requested_runs = requests_of(refresh(dg.build_sensor_context(instance=instance, resources=resources,
                                                                 definitions=defs)))
    assert len(requested_runs) == 1  # one refresh run
    request = requested_runs[0]
    requested = {k.to_user_string() for k in request.asset_selection}
    assert request.tags["offshoring/data"] == "synthetic"
    assert requested == DOWNSTREAM
    assert not (UNCHANGED_BY_A_NEW_YEAR & requested)

    run = defs.resolve_job_def("refresh_outputs").execute_in_process(
        instance=instance, asset_selection=list(request.asset_selection))
    assert run.success
    con = duckdb.connect(str(root / "w.duckdb"), read_only=True)
    assert con.execute("SELECT max(year) FROM panel.firm_years").fetchall()[0][0] == 2013
    assert con.execute("SELECT max(year) FROM panel.model_panel WHERE n_outsourcing_prov_lag "
                       "IS NOT NULL").fetchall()[0][0] == 2013
    con.close()
    assert "2007-2013" in (root / "reports" / "table1.md").read_text()
    after = refresh(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs))
    assert requests_of(after) == []

    # a re-delivered year (new content) is noticed too
    path = raw / "survey" / "survey_2013.csv"
    path.write_bytes(path.read_bytes() + b"")  # same content: nothing
    again = sensor(dg.build_sensor_context(instance=instance, cursor=tick.cursor,
                                           resources=resources, definitions=defs))
    assert again.run_requests == []
    lines = path.read_bytes().decode("cp1252").splitlines(keepends=True)
    path.write_bytes("".join(lines[:-1]).encode("cp1252"))
    redelivered = sensor(dg.build_sensor_context(instance=instance, cursor=again.cursor,
                                                 resources=resources, definitions=defs))
    assert [r.partition_key for r in redelivered.run_requests] == ["2013"]


def test_yearly_schedule(world):
    root, raw, held, defs, instance, resources = world
    schedule = defs.resolve_schedule_def("yearly_refresh")
    assert schedule.cron_schedule == "0 6 1 3 *"
    from dagster._utils.schedules import cron_string_iterator

    ticks = cron_string_iterator(dt.datetime(2014, 1, 15).timestamp(), schedule.cron_schedule, "UTC")
    assert next(ticks).strftime("%Y-%m-%d %H:%M") == "2014-03-01 06:00"
    # a 2014 delivery lands: the March tick asks to load it and registers its partition
    src = raw / "survey" / "survey_2012.csv"
    text = src.read_bytes().decode("cp1252").replace(";2012;", ";2014;").replace("/2013;", "/2015;")
    (raw / "survey" / "survey_2014.csv").write_bytes(text.encode("cp1252"))
    with dg.build_schedule_context(instance=instance, resources=resources,
                                   repository_def=defs.get_repository_def(),
                                   scheduled_execution_time=dt.datetime(2015, 3, 1, 6)) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    # one run: 2014 alone, or 2013-2014 as one partition range when 2013 was re-delivered
    (req,) = requests
    covered = [req.partition_key] if req.partition_key else [req.tags[RANGE_START_TAG], req.tags[RANGE_END_TAG]]
    assert covered[-1] == "2014" and set(covered) <= {"2013", "2014"}
    assert "2014" in instance.get_dynamic_partitions("survey_year")


def _refused_folder(tmp_path):
    """Resources and definitions over a raw folder the layout refuses (survey_2013.xlsx)."""
    raw = tmp_path / "raw"
    (raw / "survey").mkdir(parents=True)
    (raw / "survey" / "survey_2012.csv").write_text("x")
    (raw / "survey" / "survey_2013.xlsx").write_text("x")
    resources = {"warehouse": Warehouse(database=str(tmp_path / "w.duckdb")),
                 "folders": Folders(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"), synthetic=True),
                 "study": Study(config_dir=str(small_world_config(tmp_path / "config")))}
    return resources, build_definitions(resources)


def test_a_refused_survey_folder_skips_the_sensor_tick_with_its_sentence(tmp_path, capfd):
    """An entry of survey/ that looks like a delivery but would not be read (survey_2013.xlsx)
    refuses the folder. The sensor used to raise on every tick (an error in the UI, new deliveries
    no longer loaded, nothing saying why); the tick is skipped, its reason names the file and what
    to do, and the sentence is logged at error level."""
    resources, defs = _refused_folder(tmp_path)
    sensor = defs.resolve_sensor_def("survey_delivery_sensor")
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        tick = sensor(dg.build_sensor_context(instance=instance, cursor='{"2012": {"sha256": "abc"}}',
                                              resources=resources, definitions=defs))
    assert isinstance(tick, dg.SkipReason), tick
    assert "survey/survey_2013.xlsx looks like a delivery" in tick.skip_message
    assert "save it as CSV (survey_2013.csv)" in tick.skip_message
    logged = capfd.readouterr().err  # the sensor context's log, at error level
    assert re.search(r"dagster - ERROR - new survey deliveries are not loaded.*survey_2013\.xlsx", logged), logged


def test_a_refused_survey_folder_skips_the_yearly_schedule_with_its_sentence(tmp_path):
    """The yearly refresh reads the same folder: a refusal skips its tick with the sentence
    instead of failing it."""
    resources, defs = _refused_folder(tmp_path)
    schedule = defs.resolve_schedule_def("yearly_refresh")
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        # entered, so the context's own instance (opened from the ref) is closed on the way out;
        # left open, it stays Dagster's current state storage and a later materialize() fails
        with dg.build_schedule_context(instance=instance, resources=resources) as ctx:
            tick = schedule(ctx)
    assert isinstance(tick, dg.SkipReason), tick
    assert "survey_2013.xlsx looks like a delivery" in tick.skip_message
