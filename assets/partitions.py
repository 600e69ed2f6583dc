"""Survey years are discovered from the files present, so their partitions are dynamic.

A new delivery (``survey_2013.csv``) becomes a partition when the file sensor or
``offshoring run`` registers it; nothing lists years in code.
"""

import dagster as dg

SURVEY_YEARS = "survey_year"

survey_year_partitions = dg.DynamicPartitionsDefinition(name=SURVEY_YEARS)
