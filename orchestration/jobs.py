"""Jobs: load one survey year; refresh everything built from the raw tables.

Both run their steps in one process: every step that writes takes the DuckDB writer
pool (one at a time) anyway, and a process per step would cost more than the work of
most steps (seconds of imports each)."""

import dagster as dg

from assets.partitions import survey_year_partitions

SURVEY_ASSET = "survey_returns"

load_survey_year = dg.define_asset_job(
    "load_survey_year",
    selection=dg.AssetSelection.assets(SURVEY_ASSET),
    partitions_def=survey_year_partitions,
    executor_def=dg.in_process_executor,
    description="Load one survey delivery (one partition = one year).",
)

refresh_outputs = dg.define_asset_job(
    "refresh_outputs",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SURVEY_ASSET),
    executor_def=dg.in_process_executor,
    description="Reference tables, AIDA, panel, geography, model fits and reports.",
)
