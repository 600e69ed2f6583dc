"""The survey deliveries: ``survey/survey_<YYYY>.csv | .csv.gz | .parquet``, one per year."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl

from offshoring.readers.column_map import ColumnMap
from offshoring.readers.common import Kind, RawFrame, coerce, inside_folder, read_any, schema_failures
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

_FILE_RE = re.compile(r"^survey_(\d{4})\.(csv|csv\.gz|parquet)$", re.IGNORECASE)


def survey_folder(raw_dir: str | Path) -> Path:
    raw = Path(raw_dir)
    return raw / "survey" if (raw / "survey").is_dir() else raw


def current_year() -> int:
    """This calendar year (a function, for tests to move the clock)."""
    return dt.date.today().year


def discover_survey_files(raw_dir: str | Path) -> dict[int, Path]:
    """Year -> delivery file, from the names ``survey_<YYYY>.(csv|csv.gz|parquet)``.

    `raw_dir` is the raw folder (its ``survey/`` subfolder is searched) or the
    survey folder itself. Refused with a `ContractError` naming the file: two
    files for one year (which one counts would be a guess), a year after this
    one (a fiscal year cannot be in the future: a typo in the name), and a file
    that is a link leading outside `raw_dir` (files are read only inside the raw
    folder).
    """
    folder = survey_folder(raw_dir)
    found: dict[int, list[Path]] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            m = _FILE_RE.match(p.name)
            if not m:
                continue
            inside_folder(p, raw_dir)
            if p.is_file():
                found.setdefault(int(m.group(1)), []).append(p)
    this_year = current_year()
    for y, ps in sorted(found.items()):
        if y > this_year:
            raise ContractError(ps[0], [Failure(
                "future_year", None,
                detail=f"the file name says {y}, and this is {this_year}: a fiscal year cannot be in the future; "
                       f"check the year in the name",
            )])
    clashes = {y: ps for y, ps in found.items() if len(ps) > 1}
    if clashes:
        raise ContractError(folder, [Failure("duplicate_delivery", None, detail=(
            f"{_names(ps)} are all deliveries for fiscal year {y}; keep one of them" if len(ps) > 2 else
            f"{ps[0].name} and {ps[1].name} are both deliveries for fiscal year {y}; keep one of them"))
            for y, ps in sorted(clashes.items())])
    return {y: ps[0] for y, ps in sorted(found.items())}


def _names(paths: list[Path]) -> str:
    return ", ".join(p.name for p in paths[:-1]) + f" and {paths[-1].name}"


def year_of_file(path: str | Path) -> int | None:
    m = _FILE_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


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
