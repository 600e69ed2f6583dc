"""The one Definitions of the code location (loaded by workspace.yaml)."""

import dagster as dg

import assets.geography
import assets.panel
import assets.raw
from orchestration import jobs
from orchestration.progress import step_progress
from orchestration.resources import default_resources

ASSET_MODULES = [assets.raw, assets.panel, assets.geography]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(ASSET_MODULES),
    asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
    jobs=[jobs.load_survey_year, jobs.refresh_outputs],
    resources=default_resources(),
    loggers={"step_progress": step_progress},
)
