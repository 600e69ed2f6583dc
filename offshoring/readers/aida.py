"""The AIDA export (wide, xlsx or csv) and the foreign subsidiaries file.

AIDA writes one row per company and one column per variable and year
(``turnover_2008``); `read_aida_firms` validates the wide table (so an error
names the column of the year, e.g. ``turnover_2009``) and then makes it long:
one row per company and year with any figure (years with neither turnover nor
employees are left out). ``n.d.`` and ``n.s.`` are missing; ``1.234.567`` is a
number with thousands separators, and so is ``1.234`` (AIDA's figures are whole
euros, thousands of euros or head counts, so a dot followed by exactly three
digits is a thousands separator, in text and Excel files alike).

A number cell of an xlsx export keeps its value (``123.456`` typed as a number is
123.456); only text cells follow AIDA's conventions above.

Excel drops leading zeros of codes typed as numbers; in an xlsx export a tax
code of 8 to 10 digits is zero-padded back to 11 (the check digit then tells
whether that was right).

The ``province`` sigla must be a province of the municipality list in use (the
user's list in ``<raw>/reference/`` or the bundled one) or one of the abolished
provinces the panel maps (`offshoring.geo.ABOLISHED_PROVINCES`): a firm of any
other sigla would count in the AIDA offshoring share yet vanish from every
province aggregate.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from offshoring.readers.column_map import ColumnMap
from offshoring.readers.common import (
    MAX_ROWS_KEPT,
    CellSet,
    Kind,
    RawFrame,
    coerce,
    read_any,
    schema_failures,
    year_columns,
)
from offshoring.validation import (
    PROVINCE_RE,
    ContractError,
    Failure,
    aida_firms_schema,
    aida_subsidiaries_schema,
)

AIDA_COLUMNS = ["tax_code", "company_name", "province", "ateco_2007"]
AIDA_STEMS = ("turnover", "employees")
_WIDE = re.compile(r"^(turnover|employees)_\d{4}$")
SUBSIDIARY_COLUMNS = ["tax_code", "subsidiary_name", "country_iso2", "ownership_pct", "first_year", "last_year"]

# --- destination regions of subsidiaries ------------------------------------------------
#
# The survey reports foreign subcontracting in four regions; subsidiaries get the
# same four from their country. The lists follow ISTAT's geographic areas of
# foreign-trade statistics, which the survey's regions mirror:
# * North Africa: Morocco, Algeria, Tunisia, Libya, Egypt (the data contract);
# * Europe: ISTAT's "Europa" — the EU, EFTA, the United Kingdom, the microstates,
#   the Western Balkans, Belarus, Moldova, Ukraine, Russia, and Turkey (in
#   ISTAT's Europe, in customs union with the EU, and the main near-shore
#   destination of Italian clothing and footwear). The Caucasus (GE, AM, AZ) is not.
# * East Asia: ISTAT's "Asia orientale" — China, Hong Kong, Macao, Taiwan, Japan,
#   both Koreas, Mongolia and South-East Asia (ASEAN and Timor-Leste).
#   South Asia (India, Bangladesh, Pakistan, Sri Lanka) is "other".
# * other: every remaining country.
NORTH_AFRICA = frozenset("MA DZ TN LY EG".split())
EUROPE = frozenset((
    # EU 27 (Italy itself is rejected earlier: not foreign)
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE "
    # EFTA, United Kingdom, Crown dependencies and territories, microstates
    "CH NO IS LI GB GG JE IM GI FO AX SJ AD MC SM VA "
    # Western Balkans, Eastern Europe, Turkey
    "AL BA ME MK RS XK BY MD UA RU TR"
).split())
EAST_ASIA = frozenset((
    "CN HK MO TW JP KR KP MN "
    "VN TH ID MY PH KH MM LA SG BN TL"
).split())
DESTINATIONS = ("europe", "north_africa", "east_asia", "other")

# ISO 3166-1 alpha-2 (officially assigned) plus XK (Kosovo, used by the EU and ISTAT)
ISO_COUNTRIES = frozenset((
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW XK"
).split())


def destination_expr(col: str = "country_iso2") -> pl.Expr:
    c = pl.col(col)
    return (
        pl.when(c.is_in(list(NORTH_AFRICA))).then(pl.lit("north_africa"))
        .when(c.is_in(list(EUROPE))).then(pl.lit("europe"))
        .when(c.is_in(list(EAST_ASIA))).then(pl.lit("east_asia"))
        .otherwise(pl.lit("other"))
    )


def destination_of(country_iso2: str) -> str:
    c = country_iso2.strip().upper()
    if c in NORTH_AFRICA:
        return "north_africa"
    if c in EUROPE:
        return "europe"
    if c in EAST_ASIA:
        return "east_asia"
    return "other"


# --- AIDA firms ------------------------------------------------------------------------

AIDA_KINDS: dict[str, Kind] = {
    "tax_code": "tax_code", "company_name": "text", "province": "upper", "ateco_2007": "ateco",
}


def read_aida_firms_raw(path: str | Path, column_map: ColumnMap | None = None) -> RawFrame:
    source = (column_map or ColumnMap()).source("aida_firms")
    # the number columns of an xlsx are also read as numbers (`read_xlsx`), so that a typed
    # 123.456 is not taken for AIDA's text '123.456' (123456)
    raw = read_any(Path(path), source, required=AIDA_COLUMNS, patterns_ok=True,
                   allowed=(".xlsx", ".csv", ".csv.gz", ".parquet"),
                   numeric=lambda c: bool(_WIDE.match(c)), strict_numbers=False)
    if not year_columns(raw.frame.columns, AIDA_STEMS):
        found = ", ".join(repr(h) for h in raw.frame.columns if h != "source_row")
        raise ContractError(path, [Failure(
            "missing_columns", None,
            detail=f"missing: turnover_<YYYY> or employees_<YYYY> columns (one per year); found: {found}",
        )])
    return raw


def parse_aida_firms(raw: RawFrame, column_map: ColumnMap | None = None, *,
                     municipality_list: str | Path | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(wide typed frame, long frame) of a validated AIDA export; raises `ContractError`.

    `municipality_list`: the ISTAT list whose province sigle are accepted (besides the
    abolished ones, `offshoring.geo.ABOLISHED_PROVINCES`); default the bundled list.
    """
    source = (column_map or ColumnMap()).source("aida_firms")
    years = year_columns(raw.frame.columns, AIDA_STEMS)
    kinds = dict(AIDA_KINDS)
    wide_cols = [f"{s}_{y}" for y in years for s in AIDA_STEMS if f"{s}_{y}" in raw.frame.columns]
    kinds.update({c: "number" for c in wide_cols})
    typed, failures, skip = coerce(raw, kinds, dot_thousands=True, scale=source.scale)
    for c in (f"{s}_{y}" for y in years for s in AIDA_STEMS):
        if c not in typed.columns:
            typed = typed.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    typed = typed.select(*AIDA_COLUMNS, *[f"{s}_{y}" for y in years for s in AIDA_STEMS], "source_row")
    failures += province_failures(typed, municipality_list, skip, header=raw.headers.get("province"))
    failures, rejected = schema_failures(aida_firms_schema(tuple(years)), typed, file=raw.path,
                                         headers=raw.headers, parsed=failures, skip=skip)
    if failures:
        raise ContractError(raw.path, failures, n_rows_rejected=rejected)
    long = to_long(typed, years)
    return typed, long


#: distinct unknown sigle named one by one in a refusal; any others are counted together
MAX_UNKNOWN_PROVINCES_SHOWN = 10


def valid_provinces(municipality_list: str | Path | None = None) -> frozenset[str]:
    """Province sigle of the ISTAT list (bundled unless given) plus the abolished provinces it
    can place (`reference.ListedCodes.provinces`). An unusable list is refused (`ContractError`)."""
    from offshoring.readers.reference import listed_codes

    return listed_codes(municipality_list).provinces


def province_failures(typed: pl.DataFrame, municipality_list: str | Path | None, skip: CellSet, *,
                      header: str | None = None) -> list[Failure]:
    """An `unknown_province` failure per sigla (well-formed, two letters) that is neither a
    province of `municipality_list` nor an abolished one, naming the sigla (a public code,
    not firm data) and its rows; their cells are added to `skip`."""
    from offshoring import geo

    from offshoring.readers.reference import listed_codes

    listed = listed_codes(municipality_list)
    province = typed.get_column("province")
    unknown = (province.str.contains(PROVINCE_RE) & ~province.is_in(list(listed.provinces)))
    unknown = unknown.fill_null(False)
    if not unknown.any():
        return []
    positions = unknown.arg_true()
    skip.add("province", positions.to_numpy())
    found = (typed.select("province", "source_row")[positions]
             .group_by("province", maintain_order=True)
             .agg(pl.col("source_row").head(MAX_ROWS_KEPT).alias("rows"), pl.len().alias("n")))
    abolished = ", ".join(sorted(geo.ABOLISHED_PROVINCES))
    todo = (f"list in use: {listed.name}, {listed.path}; abolished provinces accepted: {abolished}. Correct the registered "
            f"office's sigla in the AIDA export; if the province is newer than the list, place ISTAT's "
            f"current list at reference/municipalities.csv in the raw folder")
    out = []
    shown = found.head(MAX_UNKNOWN_PROVINCES_SHOWN)
    for value, rows, n in shown.iter_rows():
        out.append(Failure("unknown_province", "province", tuple(rows), int(n), header=header,
                           detail=f"'{value}'; {todo}"))
    rest = found.slice(MAX_UNKNOWN_PROVINCES_SHOWN)
    if rest.height:
        rows = sorted(r for rs in rest.get_column("rows").to_list() for r in rs)[:MAX_ROWS_KEPT]
        out.append(Failure("unknown_province", "province", tuple(rows), int(rest.get_column("n").sum()),
                           header=header, detail=f"{rest.height} other sigle; {todo}"))
    return out


def to_long(wide: pl.DataFrame, years: list[int]) -> pl.DataFrame:
    parts = [
        wide.select(
            *AIDA_COLUMNS,
            pl.lit(y, dtype=pl.Int32).alias("year"),
            pl.col(f"turnover_{y}").alias("turnover"),
            pl.col(f"employees_{y}").alias("employees"),
            "source_row",
        )
        for y in years
    ]
    long = pl.concat(parts) if parts else pl.DataFrame()
    return long.filter(pl.col("turnover").is_not_null() | pl.col("employees").is_not_null()).sort(
        "source_row", "year"
    )


# --- subsidiaries ------------------------------------------------------------------------

SUBSIDIARY_KINDS: dict[str, Kind] = {
    "tax_code": "tax_code", "subsidiary_name": "text", "country_iso2": "upper",
    "ownership_pct": "number", "first_year": "integer", "last_year": "integer",
}


def read_aida_subsidiaries_raw(path: str | Path, column_map: ColumnMap | None = None) -> RawFrame:
    source = (column_map or ColumnMap()).source("aida_subsidiaries")
    # decimal comma as in the survey: a number holding the other mark reads two ways and is refused
    # (`check_marks`); the years are read as text, for a mark in them to be refused too
    return read_any(Path(path), source, required=SUBSIDIARY_COLUMNS,
                    allowed=(".csv", ".csv.gz", ".parquet", ".xlsx"),
                    numeric=lambda c: SUBSIDIARY_KINDS.get(c) == "number" and c not in source.values,
                    check_marks=True)


def parse_aida_subsidiaries(raw: RawFrame) -> pl.DataFrame:
    """Typed, validated participations with ``destination``; raises `ContractError`."""
    typed, failures, skip = coerce(raw, SUBSIDIARY_KINDS, dot_thousands=False)
    typed = typed.select(*SUBSIDIARY_COLUMNS, "source_row")
    failures, rejected = schema_failures(aida_subsidiaries_schema(), typed, file=raw.path, headers=raw.headers,
                                         parsed=failures, skip=skip)
    if failures:
        raise ContractError(raw.path, failures, n_rows_rejected=rejected)
    return typed.with_columns(destination_expr().alias("destination"))


def unknown_countries(frame: pl.DataFrame) -> int:
    return int((~frame["country_iso2"].is_in(list(ISO_COUNTRIES))).sum())
