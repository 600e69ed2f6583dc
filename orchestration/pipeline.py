"""Run the whole pipeline through Dagster from the command line.

Registers a partition for every survey delivery present, loads each year in its
own run, then refreshes everything else in one run. Each run is recorded in the
instance (DAGSTER_HOME), so the UI shows them.
"""


import os
import socket
import sys
import time
from pathlib import Path

import dagster as dg

from offshoring.readers.survey import discover_survey_files
from assets.partitions import SURVEY_YEARS
from orchestration.progress import PROGRESS_RUN_CONFIG


PID_TAG = "offshoring/pid"
HOST_TAG = "offshoring/host"


def process_tags() -> dict[str, str]:
    """Tags naming the process that executes a run in-process (the CLI, tests)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the in-process runs whose process died (SIGKILL, power loss) and free
    the writer-pool slots they held, so the next run is not blocked behind them.

    Only runs tagged with a pid on this host are judged; runs launched by the daemon
    are left to Dagster's run monitoring.
    """
    released = []
    runs = instance.get_runs(filters=dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]))
    for run in runs:
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or host != socket.gethostname() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the process running it (pid {pid}) is gone")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def run_partition(defs: dg.Definitions, instance: dg.DagsterInstance, year: str,
                  run_config: dict | None = None, accept_smaller: bool = False) -> dg.ExecuteInProcessResult:
    """Load one survey year in its own run (after releasing runs left by dead processes)."""
    release_dead_runs(instance)
    config = dict(run_config or {})
    if accept_smaller:
        config["ops"] = {"survey_returns": {"config": {"accept_smaller": True}}}
    return defs.resolve_job_def("load_survey_year").execute_in_process(
        instance=instance, partition_key=year, run_config=config or None, tags=process_tags(),
        raise_on_error=False)


def failure_summary(result: dg.ExecuteInProcessResult, debug: bool = False) -> str:
    """The root cause of a failed run in plain lines: the step and the message it failed with.

    A `dagster.Failure` carries a message written for users (file, row, column, what to
    do); any other error is named by its type, its stack trace left in the run's log
    (`debug` adds it here).
    """
    lines = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        if user is not None and user.description:
            text = user.description
        else:
            err = data.error
            while err is not None and err.cause is not None and err.cls_name in (
                    "DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"):
                err = err.cause
            first = (err.message.strip().splitlines() or [""])[0][:400] if err else ""
            text = (f"{first or (err.cls_name if err else 'error')} (the stack trace is in the run's log; "
                    f"rerun with --debug to print it)")
        lines.append(f"{event.step_key}: {text}")
        if debug and data.error is not None:
            lines.append(data.error.to_string())
    for ev in result.get_asset_check_evaluations():
        if not ev.passed and getattr(ev.severity, "value", "ERROR") == "ERROR":
            lines.append(f"check {ev.asset_key.to_user_string()}:{ev.check_name} failed: "
                         f"{ev.description or 'see the run in the UI'}")
    return "\n".join(lines) or "the run failed before any step ran (see the run's log)"


def register_years(instance: dg.DagsterInstance, raw_dir: Path) -> list[str]:
    """Add a partition for every survey file present; returns all year keys, sorted."""
    years = sorted(str(y) for y in discover_survey_files(raw_dir))
    known = set(instance.get_dynamic_partitions(SURVEY_YEARS))
    new = [y for y in years if y not in known]
    if new:
        instance.add_dynamic_partitions(SURVEY_YEARS, new)
    return years


def up_to_date_years(defs: dg.Definitions, raw_dir: Path) -> set[str]:
    """Years whose delivery the warehouse already holds: its latest load read a file with
    the same SHA-256, with this code version. Reloading them would change nothing, and a
    run that stops at a later, refused delivery then leaves the warehouse untouched."""
    import duckdb

    from offshoring.readers.common import sha256_file
    from offshoring.version import code_version

    warehouse = defs.resources.get("warehouse")
    db = Path(getattr(warehouse, "database", "") or "")
    if not db.is_file():
        return set()
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return set()
    try:
        rows = con.execute(
            "SELECT partition, arg_max(sha256, loaded_at), arg_max(code_version, loaded_at) "
            "FROM raw.load_log WHERE table_name = 'survey_returns' AND status = 'loaded' "
            "GROUP BY partition").fetchall()
    except duckdb.Error:
        return set()
    finally:
        con.close()
    files = discover_survey_files(raw_dir)
    version = code_version()
    return {p for p, sha, ver in rows
            if p is not None and int(p) in files and ver == version and sha == sha256_file(files[int(p)])}


def run_everything(raw_dir: Path, instance: dg.DagsterInstance | None = None,
                   defs: dg.Definitions | None = None, accept_smaller: set[int] | frozenset[int] = frozenset(),
                   debug: bool = False) -> bool:
    """Load every survey year present, one run each, then refresh everything else in one run.

    Progress goes to stdout one line per step; a failure's root cause in plain lines.
    """
    if defs is None:
        from orchestration.definitions import defs as loaded

        defs = loaded
    instance = instance or dg.DagsterInstance.get()
    for run_id in release_dead_runs(instance):
        print(f"Run {run_id} was left unfinished by a process that is gone: marked failed.")
    years = register_years(instance, raw_dir)
    if not years:
        print(f"No survey deliveries found under {raw_dir / 'survey'}.")
        return False
    t0 = time.perf_counter()
    current = up_to_date_years(defs, raw_dir)
    for i, year in enumerate(years, 1):
        if year in current and int(year) not in accept_smaller:
            print(f"[{i}/{len(years) + 1}] survey year {year}: loaded from the same file by this code "
                  f"version; skipped", flush=True)
            continue
        print(f"[{i}/{len(years) + 1}] survey year {year}", flush=True)
        result = run_partition(defs, instance, year, PROGRESS_RUN_CONFIG,
                               accept_smaller=int(year) in accept_smaller)
        if not result.success:
            print(f"Survey year {year} was not loaded (run {result.run_id}); nothing after it ran.\n"
                  f"{failure_summary(result, debug)}", file=sys.stderr, flush=True)
            return False
    print(f"[{len(years) + 1}/{len(years) + 1}] reference data, panel, geography, models, reports",
          flush=True)
    result = defs.resolve_job_def("refresh_outputs").execute_in_process(
        instance=instance, run_config=PROGRESS_RUN_CONFIG, tags=process_tags(), raise_on_error=False)
    dt = time.perf_counter() - t0
    if not result.success:
        print(f"The refresh run failed (run {result.run_id}) after {dt:.1f} s.\n"
              f"{failure_summary(result, debug)}", file=sys.stderr, flush=True)
        return False
    print(f"Done in {dt:.1f} s: {len(years)} survey years.")
    return True
