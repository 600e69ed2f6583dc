"""Survey years are discovered from the files present, so their partitions are dynamic.

A new delivery (``survey_2013.csv``) becomes a partition when the file sensor or
``offshoring run`` registers it; nothing lists years in code.

Several years load in one run (the survey asset has a single-run backfill policy): a run
covers a range of partition keys, in the order the partitions were registered, so a set of
years goes into as few runs as it has contiguous blocks in that order.
"""

from collections.abc import Iterable, Sequence

import dagster as dg

SURVEY_YEARS = "survey_year"

survey_year_partitions = dg.DynamicPartitionsDefinition(name=SURVEY_YEARS)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def contiguous_blocks(order: Sequence[str], wanted: Iterable[str]) -> list[list[str]]:
    """The `wanted` keys cut into runs of neighbours in `order` (the partitions' order).

    Each block is one partition range, so one run; a key not in `order` is an error (it
    must be registered first)."""
    wanted = set(wanted)
    missing = wanted - set(order)
    if missing:
        raise ValueError(f"partitions not registered: {sorted(missing)}")
    blocks: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key in wanted:
            current.append(key)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def block_target(block: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """(partition key, run tags) of one block's run: a single year is a plain partition run,
    several a partition-range run (the tags Dagster's own single-run backfills set)."""
    if not block:
        raise ValueError("an empty block has no run")
    if len(block) == 1:
        return block[0], {}
    return None, {RANGE_START_TAG: block[0], RANGE_END_TAG: block[-1]}
