"""Jobs: load one survey year; refresh everything built from the raw tables."""

import dagster as dg

from orchestration.partitions import survey_year_partitions

SURVEY_ASSET = "survey_returns"

load_survey_year = dg.define_asset_job(
    "load_survey_year",
    selection=dg.AssetSelection.assets(SURVEY_ASSET),
    partitions_def=survey_year_partitions,
    description="Load one survey delivery (one partition = one year).",
)

refresh_outputs = dg.define_asset_job(
    "refresh_outputs",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SURVEY_ASSET),
    description="Reference tables, AIDA, panel, geography, model fits and reports.",
)
