"""Run the whole pipeline through Dagster from the command line.

Registers a partition for every survey delivery present, loads each year in its
own run, then refreshes everything else in one run. Each run is recorded in the
instance (DAGSTER_HOME), so the UI shows them.
"""


import os
import socket
import time
from pathlib import Path

import dagster as dg

from offshoring.readers.survey import discover_survey_files
from orchestration.partitions import SURVEY_YEARS
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
                  run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """Load one survey year in its own run (after releasing runs left by dead processes)."""
    release_dead_runs(instance)
    return defs.resolve_job_def("load_survey_year").execute_in_process(
        instance=instance, partition_key=year, run_config=run_config, tags=process_tags(),
        raise_on_error=False)


def register_years(instance: dg.DagsterInstance, raw_dir: Path) -> list[str]:
    """Add a partition for every survey file present; returns all year keys, sorted."""
    years = sorted(str(y) for y in discover_survey_files(raw_dir))
    known = set(instance.get_dynamic_partitions(SURVEY_YEARS))
    new = [y for y in years if y not in known]
    if new:
        instance.add_dynamic_partitions(SURVEY_YEARS, new)
    return years


def run_everything(raw_dir: Path, instance: dg.DagsterInstance | None = None,
                   defs: dg.Definitions | None = None) -> bool:
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
    for i, year in enumerate(years, 1):
        print(f"[{i}/{len(years) + 1}] survey year {year}", flush=True)
        result = run_partition(defs, instance, year, PROGRESS_RUN_CONFIG)
        if not result.success:
            print(f"Loading survey year {year} failed (run {result.run_id}); stopping.")
            return False
    print(f"[{len(years) + 1}/{len(years) + 1}] reference data, panel, geography, models, reports",
          flush=True)
    result = defs.resolve_job_def("refresh_outputs").execute_in_process(
        instance=instance, run_config=PROGRESS_RUN_CONFIG, tags=process_tags(), raise_on_error=False)
    dt = time.perf_counter() - t0
    if not result.success:
        print(f"The refresh run failed (run {result.run_id}) after {dt:.1f} s.")
        return False
    print(f"Done in {dt:.1f} s: {len(years)} survey years.")
    return True
