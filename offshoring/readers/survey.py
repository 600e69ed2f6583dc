"""The survey deliveries: ``survey/survey_<YYYY>.csv | .csv.gz | .parquet``, one per year."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from offshoring.readers import layout
from offshoring.readers.column_map import ColumnMap
from offshoring.readers.common import MAX_ROWS_KEPT, CellSet, Kind, RawFrame, coerce, read_any, schema_failures
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


def parse_survey(raw: RawFrame, year: int, column_map: ColumnMap | None = None, *,
                 municipality_list: str | Path | None = None) -> pl.DataFrame:
    """Typed and validated survey rows (still with ``tax_code``); raises `ContractError`.

    Every failure of the file is collected before raising, so one error lists
    all broken rules (each with its first rows and its exact count). A return
    the panel could not place in a province (`municipality_failures`, against
    `municipality_list`, default the bundled list) is refused here, before the load.
    """
    source = (column_map or ColumnMap()).source("survey")
    values = {**source.values, "market_area": {**MARKET_AREA_SYNONYMS, **source.values.get("market_area", {})}}
    typed, failures, skip = coerce(raw, SURVEY_KINDS, dot_thousands=False, value_maps=values,
                                   scale=source.scale)
    typed = typed.select(*SURVEY_COLUMNS, "source_row")
    failures += municipality_failures(typed, int(year), municipality_list, skip,
                                      header=raw.headers.get("municipality_code"))
    failures, rejected = schema_failures(survey_schema(int(year)), typed, file=raw.path, headers=raw.headers,
                                         parsed=failures, skip=skip)
    if failures:
        raise ContractError(raw.path, _ordered(failures), n_rows_rejected=rejected)
    return typed


def municipality_failures(typed: pl.DataFrame, year: int, municipality_list: str | Path | None,
                          skip: CellSet, *, header: str | None = None) -> list[Failure]:
    """Returns the panel could not place in a province, refused before the load (only those
    the panel uses: the latest filing of a firm-year, in the two industries): an empty
    `municipality_code` (`missing_municipality`), or a well-formed code that is in no layout of
    the municipality list and whose first three digits are no province of the return's
    year's layout (`unplaceable_municipality`). A code of another layout, or of a municipality
    since merged away (its province from its prefix), is placed by the panel and passes."""
    from offshoring import geo
    from offshoring.readers.reference import listed_codes
    from offshoring.validation import MUNICIPALITY_RE

    col = typed.get_column("municipality_code")
    # only the returns the panel places: the latest filing of its firm-year (the contract: it is
    # the one that counts), in clothing or footwear (sql/macros.sql sector_of); a superseded
    # filing or another industry's return needs no municipality
    counts = typed.select(
        (pl.col("filing_date") == pl.col("filing_date").max().over("tax_code")).fill_null(False)
        & (pl.col("ateco_2007").str.starts_with("14") | pl.col("ateco_2007").str.starts_with("1520")).fill_null(False)
    ).to_series()
    missing = col.is_null() & counts
    out: list[Failure] = []
    if missing.any():
        pos = missing.arg_true()
        skip.add("municipality_code", pos.to_numpy())
        rows = typed.get_column("source_row")[pos]
        out.append(Failure("missing_municipality", "municipality_code", tuple(rows.head(MAX_ROWS_KEPT).to_list()),
                           int(pos.len()), header=header,
                           detail="the panel needs every return's municipality (its province and labour "
                                  "market area): fill it in the delivery"))
    listed = listed_codes(municipality_list)
    layout_col = geo.layout_for_year(int(year))
    unplaced = (counts & col.str.contains(MUNICIPALITY_RE).fill_null(False)
                & ~col.is_in(list(listed.every_layout)).fill_null(False)
                & ~col.str.slice(0, 3).is_in(list(listed.prefixes[layout_col])).fill_null(False))
    if unplaced.any():
        pos = unplaced.arg_true()
        skip.add("municipality_code", pos.to_numpy())
        rows = typed.get_column("source_row")[pos]
        out.append(Failure("unplaceable_municipality", "municipality_code",
                           tuple(rows.head(MAX_ROWS_KEPT).to_list()), int(pos.len()), header=header,
                           detail=f"checked against {listed.name}, layout of {int(year)} ({layout_col}); correct the "
                                  f"code, or place ISTAT's newer list at reference/Elenco-comuni-italiani.csv"))
    return out


def _ordered(failures: list[Failure]) -> list[Failure]:
    order = {c: i for i, c in enumerate(SURVEY_COLUMNS)}
    return sorted(failures, key=lambda f: (min(f.rows) if f.rows else 0, order.get(f.column or "", 99)))


def read_survey(path: str | Path, year: int | None = None, column_map: ColumnMap | None = None) -> pl.DataFrame:
    """Read and validate one delivery (year from the file name unless given)."""
    year = year if year is not None else year_of_file(path)
    if year is None:
        raise ValueError(f"{path}: no year in the file name (survey_<YYYY>.csv) and none given")
    return parse_survey(read_survey_raw(path, column_map), year, column_map)
