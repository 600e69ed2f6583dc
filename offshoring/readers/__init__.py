"""Readers of the raw contract inputs (survey, AIDA, reference files), without Dagster.

Each reader maps the delivery's headers to canonical names (`column_map`),
parses cells in the Italian or plain conventions (`common`), and validates with
the pandera schemas of `offshoring.validation`, raising `ContractError` before
anything is written.
"""

from offshoring.readers.column_map import ColumnMap, load_column_map
from offshoring.readers.reference import RawFiles, discover_raw_files, municipality_list_path
from offshoring.readers.survey import discover_survey_files, read_survey

__all__ = [
    "ColumnMap",
    "RawFiles",
    "discover_raw_files",
    "discover_survey_files",
    "load_column_map",
    "municipality_list_path",
    "read_survey",
]
