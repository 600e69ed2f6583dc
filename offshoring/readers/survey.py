"""The survey deliveries: ``survey/survey_<YYYY>.csv | .csv.gz | .parquet``, one per year."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from offshoring.readers.column_map import ColumnMap
from offshoring.readers.common import Kind, RawFrame, coerce, read_any
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


def discover_survey_files(raw_dir: str | Path) -> dict[int, Path]:
    """Year -> delivery file, from the names ``survey_<YYYY>.(csv|csv.gz|parquet)``.

    `raw_dir` is the raw folder (its ``survey/`` subfolder is searched) or the
    survey folder itself. Two files for one year are an error: which one counts
    would be a guess.
    """
    folder = survey_folder(raw_dir)
    found: dict[int, list[Path]] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            m = _FILE_RE.match(p.name)
            if m and p.is_file():
                found.setdefault(int(m.group(1)), []).append(p)
    clashes = {y: ps for y, ps in found.items() if len(ps) > 1}
    if clashes:
        detail = "; ".join(f"{y}: {', '.join(p.name for p in ps)}" for y, ps in sorted(clashes.items()))
        raise ContractError(folder, [Failure("duplicate_key", None,
                                             detail=f"more than one delivery for a year ({detail}); keep one")])
    return {y: ps[0] for y, ps in sorted(found.items())}


def year_of_file(path: str | Path) -> int | None:
    m = _FILE_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def read_survey_raw(path: str | Path, column_map: ColumnMap | None = None) -> RawFrame:
    """The delivery with canonical headers, cells as delivered."""
    source = (column_map or ColumnMap()).source("survey")
    return read_any(Path(path), source, required=SURVEY_COLUMNS,
                    allowed=(".csv", ".csv.gz", ".parquet"),
                    numeric=lambda c: SURVEY_KINDS.get(c) in ("number", "integer", "flag") and c not in source.values)


def parse_survey(raw: RawFrame, year: int, column_map: ColumnMap | None = None) -> pl.DataFrame:
    """Typed and validated survey rows (still with ``tax_code``); raises `ContractError`.

    Every failure of the file is collected before raising, so one error lists
    all broken rules.
    """
    source = (column_map or ColumnMap()).source("survey")
    values = {**source.values, "market_area": {**MARKET_AREA_SYNONYMS, **source.values.get("market_area", {})}}
    typed, failures, skip = coerce(raw, SURVEY_KINDS, dot_thousands=False, value_maps=values,
                                   scale=source.scale)
    typed = typed.select(*SURVEY_COLUMNS, "source_row")
    failures += survey_schema(int(year)).validate(typed, file=raw.path, headers=raw.headers, skip=skip)
    if failures:
        raise ContractError(raw.path, _ordered(failures))
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
