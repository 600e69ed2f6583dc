"""Run the whole pipeline through Dagster from the command line.

Registers a partition for every survey delivery present, loads each year in its
own run, then refreshes everything else in one run. Each run is recorded in the
instance (DAGSTER_HOME), so the UI shows them.
"""


import time
from pathlib import Path

import dagster as dg

from offshoring.readers.survey import discover_survey_files
from orchestration.partitions import SURVEY_YEARS
from orchestration.progress import PROGRESS_RUN_CONFIG


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
    years = register_years(instance, raw_dir)
    if not years:
        print(f"No survey deliveries found under {raw_dir / 'survey'}.")
        return False
    t0 = time.perf_counter()
    load = defs.resolve_job_def("load_survey_year")
    for i, year in enumerate(years, 1):
        print(f"[{i}/{len(years) + 1}] survey year {year}", flush=True)
        result = load.execute_in_process(instance=instance, partition_key=year,
                                         run_config=PROGRESS_RUN_CONFIG, raise_on_error=False)
        if not result.success:
            print(f"Loading survey year {year} failed (run {result.run_id}); stopping.")
            return False
    print(f"[{len(years) + 1}/{len(years) + 1}] reference data, panel, geography, models, reports",
          flush=True)
    result = defs.resolve_job_def("refresh_outputs").execute_in_process(
        instance=instance, run_config=PROGRESS_RUN_CONFIG, raise_on_error=False)
    dt = time.perf_counter() - t0
    if not result.success:
        print(f"The refresh run failed (run {result.run_id}) after {dt:.1f} s.")
        return False
    print(f"Done in {dt:.1f} s: {len(years)} survey years.")
    return True
