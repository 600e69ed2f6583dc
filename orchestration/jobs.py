"""Jobs: load survey years; refresh everything built from the raw tables.

Both run their steps in one process: every step that writes takes the DuckDB writer
pool (one at a time) anyway, and a process per step would cost more than the work of
most steps (seconds of imports each).

`refresh_outputs` can hold a whole refresh in one run: the survey years to load (a
range of partitions: the survey asset has a single-run backfill policy), the reference
loads whose file changed, and everything downstream. Run without a partition it
touches only the unpartitioned assets selected (what the refresh sensor asks for).
"""

import dagster as dg

from assets.partitions import survey_year_partitions

SURVEY_ASSET = "survey_returns"

load_survey_year = dg.define_asset_job(
    "load_survey_year",
    selection=dg.AssetSelection.assets(SURVEY_ASSET),
    partitions_def=survey_year_partitions,
    executor_def=dg.in_process_executor,
    description="Load survey deliveries: one partition = one year; a partition range loads "
                "several years in one run, each in its own transaction.",
)

refresh_outputs = dg.define_asset_job(
    "refresh_outputs",
    selection=dg.AssetSelection.all(),
    partitions_def=survey_year_partitions,
    executor_def=dg.in_process_executor,
    description="Survey years (a partition range, when given), reference tables, AIDA, panel, "
                "geography, model fits and reports; `offshoring run` selects only what changed.",
)
