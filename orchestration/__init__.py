"""Dagster wiring: the one Definitions, resources, partitions, jobs, schedules, sensors."""
