"""Readers of the raw contract inputs (survey, AIDA, reference files), without Dagster.

Each reader maps the delivery's headers to canonical names (`column_map`),
parses cells in the Italian or plain conventions (`common`), and validates with
the pandera schemas of `offshoring.validation`, raising `ContractError` before
anything is written. Finding the files (`layout`) needs neither polars nor pandera.

The names below are imported on first use, so that importing one light submodule
(``offshoring.readers.layout``) does not import every reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offshoring._lazy import lazy_exports

if TYPE_CHECKING:
    from offshoring.readers.column_map import ColumnMap, load_column_map
    from offshoring.readers.reference import RawFiles, discover_raw_files, municipality_list_path
    from offshoring.readers.survey import discover_survey_files, read_survey

#: exported name -> the submodule defining it
_EXPORTS = {
    "ColumnMap": "column_map",
    "RawFiles": "reference",
    "discover_raw_files": "reference",
    "discover_survey_files": "survey",
    "load_column_map": "column_map",
    "municipality_list_path": "reference",
    "read_survey": "survey",
}

__all__ = [
    "ColumnMap",
    "RawFiles",
    "discover_raw_files",
    "discover_survey_files",
    "load_column_map",
    "municipality_list_path",
    "read_survey",
]  # the names of _EXPORTS


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
