"""The one Definitions of the code location (loaded by workspace.yaml)."""

from collections.abc import Mapping

import dagster as dg

import assets.geography
import assets.models
import assets.panel
import assets.raw
import assets.reports
import assets.robustness
from orchestration import jobs, schedules, sensors
from orchestration.progress import step_progress
from assets.resources import default_resources

ASSET_MODULES = [assets.raw, assets.geography, assets.panel, assets.models, assets.reports]


def build_definitions(resources: Mapping[str, object] | None = None) -> dg.Definitions:
    """Definitions with the given resources (tests point them at temporary folders); each one
    not given is the default from the settings. The study specification is read (and
    checked) here too: the schedule's cron is part of it."""
    resources = {**default_resources(), **(dict(resources) if resources is not None else {})}
    study = resources["study"]
    return dg.Definitions(
        assets=[*dg.load_assets_from_modules(ASSET_MODULES),
                *assets.robustness.build_assets(study.spec.variants)],
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[jobs.load_survey_year, jobs.refresh_outputs],
        schedules=[schedules.yearly_refresh_schedule(study.spec.schedule.yearly_refresh_cron)],
        sensors=[sensors.survey_delivery_sensor, sensors.outputs_refresh_sensor,
                 sensors.check_failure_alert_sensor, sensors.run_failure_alert_sensor],
        resources=resources,
        loggers={"step_progress": step_progress},
    )


defs = build_definitions()
