"""Sensors: new or re-delivered survey files, and alerts on failed checks and runs."""


import json
from pathlib import Path

import dagster as dg
from dagster import DagsterEventType

from offshoring.alerts import Alert, AlertSettings, dispatch
from offshoring.contract import ContractError
from offshoring.readers.common import sha256_file
from offshoring.readers.survey import discover_survey_files
from orchestration.jobs import load_survey_year, refresh_outputs
from assets.partitions import SURVEY_YEARS, block_target, contiguous_blocks, survey_year_partitions
from assets.resources import Folders, Study, data_tags


SURVEY_KEY = dg.AssetKey("survey_returns")


def loaded_sha256(instance: dg.DagsterInstance) -> dict[str, str]:
    """SHA-256 of the file behind each survey partition's latest materialization."""
    records = instance.fetch_materializations(SURVEY_KEY, limit=10_000, ascending=False).records
    out: dict[str, str] = {}
    for rec in records:
        mat = rec.asset_materialization
        if mat is None or mat.partition is None or mat.partition in out:
            continue
        sha = mat.metadata.get("sha256")
        if sha is not None:
            out[mat.partition] = getattr(sha, "value", sha)
    return out


def changed_deliveries(instance: dg.DagsterInstance, state: dict[str, dict],
                       previous: dict[str, dict]) -> list[str]:
    """Years whose delivery is new or differs from what was last seen or loaded.

    The cursor remembers what the sensor saw; a year it has not seen yet is compared
    with the hash of the file its latest load read, so a first tick after
    ``offshoring run`` does not reload every year.
    """
    loaded = None
    out = []
    for year, info in state.items():
        seen = (previous.get(year) or {}).get("sha256")
        if seen is None:
            loaded = loaded if loaded is not None else loaded_sha256(instance)
            seen = loaded.get(year)
        if seen != info["sha256"]:
            out.append(year)
    return out


def delivery_state(raw_dir: Path, previous: dict[str, dict]) -> dict[str, dict]:
    """Name, size, mtime and SHA-256 of each year's delivery.

    A file whose name, size and mtime are unchanged keeps its recorded hash, so a
    tick does not re-read every delivery; any change is hashed again.
    """
    state = {}
    for year, path in sorted(discover_survey_files(raw_dir).items()):
        st = path.stat()
        prev = previous.get(str(year)) or {}
        same = (prev.get("name") == path.name and prev.get("size") == st.st_size
                and prev.get("mtime_ns") == st.st_mtime_ns)
        state[str(year)] = {
            "name": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": prev["sha256"] if same and prev.get("sha256") else sha256_file(path),
        }
    return state


def refusal_sentence(err: ContractError) -> str:
    """A refusal of the raw folder in one paragraph: each failure's sentence (the entry, what
    to do), for a sensor's skip reason."""
    said = "; ".join(getattr(f, "detail", None) or f.describe() for f in err.failures) or str(err)
    return f"new survey deliveries are not loaded until the raw folder is fixed: {said}"


def refused_tick(context: dg.SensorEvaluationContext, err: ContractError) -> dg.SkipReason:
    """The tick of a sensor whose raw folder is refused: logged at error level (the daemon's and
    the UI's tick log) and skipped with the refusal's sentence as the reason shown in the UI."""
    sentence = refusal_sentence(err)
    context.log.error(f"{sentence}\n{err}")
    return dg.SkipReason(sentence)


def delivery_run_requests(order: list[str], state: dict[str, dict], years: list[str],
                          prefix: str, folders: Folders) -> list[dg.RunRequest]:
    """The loads of `years`: one run per block of years contiguous in the partitions' `order`
    (a partition range: the survey asset loads a range in one run), a single year as a
    plain partition run. The run key names the years and their files' hashes, so the same
    deliveries are not loaded twice. Every run carries the data tag (synthetic or real)."""
    import hashlib

    requests = []
    for block in contiguous_blocks(order, years):
        partition_key, tags = block_target(block)
        if partition_key is not None:
            run_key = f"{prefix}-{partition_key}-{state[partition_key]['sha256'][:16]}"
            tags = {"offshoring/delivery": state[partition_key]["name"],
                    "offshoring/sha256": state[partition_key]["sha256"]}
        else:
            digest = hashlib.sha256("".join(state[y]["sha256"] for y in block).encode()).hexdigest()
            run_key = f"{prefix}-{block[0]}-{block[-1]}-{digest[:16]}"
            tags = {**tags, "offshoring/delivery": f"{len(block)} deliveries, {block[0]} to {block[-1]}",
                    "offshoring/sha256": digest}
        requests.append(dg.RunRequest(partition_key=partition_key, run_key=run_key,
                                      tags={**data_tags(folders), **tags}))
    return requests


@dg.sensor(
    job=load_survey_year, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A new survey_<YYYY> file registers the year's partition and loads it; a "
                "re-delivered file (new content) reloads its year; several years found at once "
                "load in one run. Cursor: names and SHA-256.",
)
def survey_delivery_sensor(context: dg.SensorEvaluationContext, folders: Folders):
    previous = json.loads(context.cursor) if context.cursor else {}
    try:
        state = delivery_state(folders.raw, previous)
    except ContractError as err:
        # a refused folder (an entry that looks like a delivery but would not be read, two files
        # for one year, ...): a skipped tick saying which file and what to do, not a crashed one;
        # the cursor is kept, so the next tick after the fix compares with what was last seen
        return refused_tick(context, err)
    known = list(context.instance.get_dynamic_partitions(SURVEY_YEARS))
    new_years = [y for y in state if y not in set(known)]
    requests = delivery_run_requests(known + new_years, state,
                                     changed_deliveries(context.instance, state, previous), "survey",
                                     folders)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=(
            [survey_year_partitions.build_add_request(new_years)] if new_years else []),
        cursor=json.dumps(state, sort_keys=True),
    )


@dg.sensor(
    minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert (e-mail, Slack; off by default in config/alerts.yaml) for "
                "every asset check that fails, ERROR or WARN.",
)
def check_failure_alert_sensor(context: dg.SensorEvaluationContext, study: Study):
    # The cursor is a timestamp: storage ids are not a valid cursor on the run-sharded
    # SQLite storage of a local instance. Each tick re-reads one second of overlap; the
    # sent-once log keeps an alert from going out twice.
    after = float(context.cursor) - 1.0 if context.cursor else None
    records = context.instance.get_event_records(
        dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                              after_timestamp=after),
        limit=1000, ascending=True,
    )
    cfg = AlertSettings.load(study.spec.alerts.model_dump())
    sent, failed = 0, []
    last = float(context.cursor) if context.cursor else None
    held = None  # the first record a channel could not send: the cursor stays there, to retry it
    down: set[str] = set()  # channels that failed in this tick: not tried again until the next
    origins: dict[str, str | None] = {}
    for rec in records:
        ev = rec.event_log_entry.dagster_event.event_specific_data
        if not getattr(ev, "passed", True):
            run_id = rec.event_log_entry.run_id
            if run_id not in origins:
                origins[run_id] = run_origin(context.instance.get_run_by_id(run_id))
            done = dispatch(check_alert(ev, run_id, origins[run_id]), cfg, skip=down)
            sent += bool(done)
            if done.failed:
                down |= set(done.failed)
                failed += [f"{ev.check_name}: {ch} ({why})" for ch, why in done.failed.items()]
                held = rec.timestamp if held is None else held
        if held is None:
            last = max(last or 0.0, rec.timestamp)
    if held is not None:
        last = held
    if last is not None:
        context.update_cursor(repr(last))
    if failed:
        context.log.error("alert(s) could not be sent, retried at the next tick: " + "; ".join(failed))
    return dg.SkipReason(f"{sent} alert(s) sent" + (f"; {len(failed)} could not be sent" if failed else ""))


def run_origin(run: dg.DagsterRun | None) -> str | None:
    """"synthetic" or "real": the data a run read (its offshoring/data tag), for its alerts."""
    return run.tags.get("offshoring/data") if run else None


def check_alert(ev, run_id: str, origin: str | None = None) -> Alert:
    """The alert of a failed asset check (an AssetCheckEvaluation), from the daemon's sensor
    or from the command line's run: the same alert either way, so it is sent once."""
    return Alert(
        kind="check_failed", run_id=run_id, origin=origin,
        asset=ev.asset_key.to_user_string(), check=ev.check_name,
        partition=getattr(ev, "partition", None) or _metadata_text(ev.metadata, "partition"),
        severity=getattr(ev.severity, "value", str(ev.severity)),
        description=getattr(ev, "description", None) or f"check {ev.check_name} did not pass",
        failing_counts=Alert.counts_from_metadata(ev.metadata or {}),
    )


def run_failure_cause(instance: dg.DagsterInstance, run_id: str, fallback: str) -> str:
    """What made a run fail, step by step, from its step failures (a `dagster.Failure`'s
    sentence, else the error's first line): Dagster's own message ("Steps failed:
    ['firm_years']") is the same for every cause, so two different failures read as one."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    lines = []
    for rec in records:
        data = rec.event_log_entry.dagster_event.event_specific_data
        user = getattr(data, "user_failure_data", None)
        err = getattr(data, "error", None)
        while err is not None and err.cause is not None and err.cls_name in (
                "DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"):
            err = err.cause
        text = (user.description if user is not None and user.description else
                ((err.message.strip().splitlines() or [""])[0][:400] if err is not None else ""))
        lines.append(f"{rec.event_log_entry.step_key}: {text}")
    return "\n".join(lines) or fallback


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert when a run fails.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, study: Study):
    run = context.dagster_run
    message = run_failure_cause(context.instance, run.run_id, context.failure_event.message or "run failed")
    done = dispatch(Alert(kind="run_failed", run_id=run.run_id, job=run.job_name,
                          partition=run.tags.get("dagster/partition"), description=message,
                          origin=run_origin(run)),
                    AlertSettings.load(study.spec.alerts.model_dump()))
    if done.failed:
        context.log.error("the run-failure alert could not be sent: "
                          + "; ".join(f"{ch} ({why})" for ch, why in done.failed.items()))


REPORT_KEY = dg.AssetKey("report_index")


def _metadata_text(metadata, key: str) -> str | None:
    value = (metadata or {}).get(key)
    return None if value is None else str(getattr(value, "value", value))
_ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
           dg.DagsterRunStatus.STARTED]


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey):
    records = instance.fetch_materializations(key, limit=1, ascending=False).records
    return records[0] if records else None


@dg.sensor(
    job=refresh_outputs, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
    description="After survey years are loaded (by the delivery sensor, the schedule or the UI), "
                "refreshes everything built from them in one run: when the latest survey load is "
                "newer than the reports and no load is still queued or running. Catches up whatever "
                "was loaded while it was off.",
)
def outputs_refresh_sensor(context: dg.SensorEvaluationContext, folders: Folders):
    instance = context.instance
    busy = instance.get_runs(filters=dg.RunsFilter(job_name=load_survey_year.name, statuses=_ACTIVE), limit=1)
    if busy:
        return dg.SkipReason("survey loads still queued or running: one refresh after the last of them")
    if instance.get_runs(filters=dg.RunsFilter(job_name=refresh_outputs.name, statuses=_ACTIVE), limit=1):
        return dg.SkipReason("a refresh is already queued or running")
    load = _latest(instance, SURVEY_KEY)
    if load is None:
        return dg.SkipReason("no survey year loaded yet")
    report = _latest(instance, REPORT_KEY)
    if report is not None and report.storage_id > load.storage_id:
        return dg.SkipReason("the reports are newer than the latest survey load")
    below = (dg.AssetSelection.assets(SURVEY_KEY).downstream() - dg.AssetSelection.assets(SURVEY_KEY))
    keys = sorted(below.resolve(context.repository_def.asset_graph), key=lambda k: k.to_user_string())
    return dg.RunRequest(run_key=f"refresh-after-load-{load.storage_id}", asset_selection=keys,
                         tags={**data_tags(folders),
                               "offshoring/trigger": f"survey load {load.asset_materialization.partition}"})
