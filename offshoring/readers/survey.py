"""The survey deliveries: ``survey/survey_<YYYY>.csv | .csv.gz | .parquet``, one per year."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from offshoring.readers import layout
from offshoring.readers.column_map import ColumnMap
from offshoring.readers.common import Kind, RawFrame, coerce, read_any, schema_failures
# finding the deliveries is `layout`'s (no polars, no pandera); re-exported here
from offshoring.readers.layout import current_year, survey_folder, year_of_file  # noqa: F401
from offshoring.validation import (
    SURVEY_AMOUNTS,
    SURVEY_FLAGS,
    ContractError,
    Failure,
    survey_schema,
)

SURVEY_COLUMNS = [
    "tax_code", "year", "filing_date", "ateco_2007", "municipality_code",
    "turnover", "employees", "value_added", "wage_costs", "net_income", "roi", "export_share",
    "credit_access", "market_area", "high_value_added", "supplier",
    "subcontracting_italy", "subcontracting_europe", "subcontracting_north_africa",
    "subcontracting_east_asia", "subcontracting_other",
]

SURVEY_KINDS: dict[str, Kind] = {
    "tax_code": "tax_code", "year": "integer", "filing_date": "date", "ateco_2007": "ateco",
    "municipality_code": "municipality", "market_area": "lower",
    **{c: "number" for c in SURVEY_AMOUNTS},
    **{c: "flag" for c in SURVEY_FLAGS},
}

#: Italian names of the market areas, accepted besides the contract's English ones
MARKET_AREA_SYNONYMS = {
    "locale": "local", "provinciale": "provincial", "regionale": "regional",
    "nazionale": "national", "internazionale": "international", "estero": "international",
}

def discover_survey_files(raw_dir: str | Path) -> dict[int, Path]:
    """Year -> delivery file (`layout.discover_survey_files`), as of `current_year()`."""
    return layout.discover_survey_files(raw_dir, current_year())


def read_survey_raw(path: str | Path, column_map: ColumnMap | None = None) -> RawFrame:
    """The delivery with canonical headers, cells as delivered."""
    source = (column_map or ColumnMap()).source("survey")
    return read_any(Path(path), source, required=SURVEY_COLUMNS,
                    allowed=(".csv", ".csv.gz", ".parquet"),
                    numeric=lambda c: SURVEY_KINDS.get(c) in ("number", "integer", "flag") and c not in source.values,
                    check_marks=True)


def parse_survey(raw: RawFrame, year: int, column_map: ColumnMap | None = None) -> pl.DataFrame:
    """Typed and validated survey rows (still with ``tax_code``); raises `ContractError`.

    Every failure of the file is collected before raising, so one error lists
    all broken rules (each with its first rows and its exact count).
    """
    source = (column_map or ColumnMap()).source("survey")
    values = {**source.values, "market_area": {**MARKET_AREA_SYNONYMS, **source.values.get("market_area", {})}}
    typed, failures, skip = coerce(raw, SURVEY_KINDS, dot_thousands=False, value_maps=values,
                                   scale=source.scale)
    typed = typed.select(*SURVEY_COLUMNS, "source_row")
    failures, rejected = schema_failures(survey_schema(int(year)), typed, file=raw.path, headers=raw.headers,
                                         parsed=failures, skip=skip)
    if failures:
        raise ContractError(raw.path, _ordered(failures), n_rows_rejected=rejected)
    return typed


def _ordered(failures: list[Failure]) -> list[Failure]:
    order = {c: i for i, c in enumerate(SURVEY_COLUMNS)}
    return sorted(failures, key=lambda f: (min(f.rows) if f.rows else 0, order.get(f.column or "", 99)))


def read_survey(path: str | Path, year: int | None = None, column_map: ColumnMap | None = None) -> pl.DataFrame:
    """Read and validate one delivery (year from the file name unless given)."""
    year = year if year is not None else year_of_file(path)
    if year is None:
        raise ValueError(f"{path}: no year in the file name (survey_<YYYY>.csv) and none given")
    return parse_survey(read_survey_raw(path, column_map), year, column_map)
