"""Yearly refresh: load whatever deliveries are new, then refresh the outputs."""



import dagster as dg

from orchestration.jobs import load_survey_year
from assets.partitions import SURVEY_YEARS
from assets.resources import Folders
from offshoring.contract import ContractError
from orchestration.sensors import changed_deliveries, delivery_run_requests, delivery_state, refused_tick


def yearly_refresh_schedule(cron: str) -> dg.ScheduleDefinition:
    """The yearly refresh at `cron` (the study specification's schedule part)."""
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(cron):  # the specification checks the fields; Dagster has the last word
        from offshoring.spec import SpecError

        raise SpecError(f"schedule.yaml: yearly_refresh_cron '{cron}' is not a schedule Dagster can run; "
                        f"write five fields, e.g. '0 6 1 3 *' (06:00 on 1 March).")

    @dg.schedule(
        cron_schedule=cron, job=load_survey_year, default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every year (default 1 March, config/schedule.yaml): load new or changed "
                    "survey deliveries, one run per block of neighbouring years (as the delivery "
                    "sensor); the refresh sensor then refreshes everything downstream in one run.",
    )
    def yearly_refresh(context: dg.ScheduleEvaluationContext, folders: Folders):
        try:
            state = delivery_state(folders.raw, {})
        except ContractError as err:  # a refused raw folder: said in the tick, as the sensor says it
            return refused_tick(context, err)
        known = list(context.instance.get_dynamic_partitions(SURVEY_YEARS))
        new_years = [y for y in state if y not in set(known)]
        if new_years:
            context.instance.add_dynamic_partitions(SURVEY_YEARS, new_years)
        stamp = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "now"
        requests = delivery_run_requests(known + new_years, state,
                                         changed_deliveries(context.instance, state, {}), f"yearly-{stamp}",
                                         folders)
        if requests:
            return requests
        return dg.SkipReason("no new or changed survey delivery; outputs are up to date with the loaded years")

    return yearly_refresh
