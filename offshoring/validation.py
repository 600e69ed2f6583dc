"""Validation of every raw input: the contract's rules, as pandera schemas.

Two outcomes, as the raw layer's contract says:

* a broken rule **rejects** the whole file (`ContractError`, nothing written):
  missing columns, unparseable numbers or dates, a `year` other than the file's,
  duplicate firm-year filings, negative amounts, shares outside 0-100, flags
  outside 0/1, unknown categories, malformed codes;
* an implausible but possible value is **recorded** as a `ValidationWarning`
  (a tax code whose check character is wrong, a return without an activity or
  municipality code), which the asset layer shows as a WARN-severity check. The
  plausibility of a delivery as a whole is judged against the other loaded years
  (`offshoring.plausibility`).

Messages name the file, the row (1-based data row, header excluded) and the
column, never a cell's value: the values include tax codes, which are personal
data. The same module holds the raw tables' layout (`RAW_TABLES`) and the
functions the asset checks call on the loaded tables.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

# the refusals (rule ids, Failure, ContractError) live apart, without pandera; re-exported
from offshoring.contract import MAX_ROWS_SHOWN, RAW_SCHEMA, RULES, ContractError, Failure  # noqa: F401


# ---------------------------------------------------------------------------
# Errors and warnings
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ValidationWarning:
    """An implausible but possible pattern, recorded and shown, not rejected."""

    rule: str
    table: str
    column: str | None
    n_rows: int
    description: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: warning rules per raw table: the asset layer can declare one WARN check per rule
WARNING_RULES: dict[str, dict[str, str]] = {
    "survey_returns": {
        "tax_code_bad_check_character": "tax code whose check character is wrong",
        "missing_ateco": "return without an ATECO code",
    },
    "aida_firm_years": {
        "tax_code_bad_check_character": "tax code whose check character is wrong",
    },
    "aida_subsidiaries": {
        "tax_code_bad_check_character": "tax code whose check character is wrong",
        "unknown_country": "country code not in ISO 3166-1 (classified as 'other')",
        "duplicate_participation": "rows alike in parent, subsidiary name, country and first year",
    },
    "llma": {},
    "census_employment": {},
    "municipalities": {},
}

# ---------------------------------------------------------------------------
# Shapes of codes (as regular expressions, for pandera and polars)
# ---------------------------------------------------------------------------

_D = "[0-9LMNPQRSTUV]"
TAX_CODE_RE = rf"^([0-9]{{11}}|[A-Z]{{6}}{_D}{{2}}[ABCDEHLMPRST]{_D}{{2}}[A-Z]{_D}{{3}}[A-Z])$"
MUNICIPALITY_RE = r"^[0-9]{6}$"
ATECO_RE = r"^[0-9]{2,6}$"
PROVINCE_RE = r"^[A-Z]{2}$"
COUNTRY_RE = r"^[A-Z]{2}$"
DIVISION_RE = r"^[0-9]{2}$"
MARKET_AREAS = ("local", "provincial", "regional", "national", "international")
SIZE_CLASSES = ("0-9", "10-49", "50-249", "250+")

SURVEY_AMOUNTS = (
    "turnover", "employees", "value_added", "wage_costs", "net_income", "roi", "export_share",
    "subcontracting_italy", "subcontracting_europe", "subcontracting_north_africa",
    "subcontracting_east_asia", "subcontracting_other",
)
SURVEY_NON_NEGATIVE = (
    "turnover", "employees", "wage_costs",
    "subcontracting_italy", "subcontracting_europe", "subcontracting_north_africa",
    "subcontracting_east_asia", "subcontracting_other",
)
SURVEY_FLAGS = ("credit_access", "high_value_added", "supplier")

# ---------------------------------------------------------------------------
# Pandera schemas, with a rule id attached to every check
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    """A column of a schema: dtype, nullability and (rule id, check) pairs."""

    dtype: Any
    nullable: bool = True
    checks: tuple[tuple[str, pa.Check], ...] = ()


@dataclass
class RuleSchema:
    """A pandera schema plus the rule each of its checks stands for."""

    name: str
    schema: pa.DataFrameSchema
    rule_of: dict[tuple[str, int], str]
    unique_rule: str | None = None
    #: rule -> extra words for its message (what to do), never a cell value
    details: dict[str, str] = field(default_factory=dict)

    def validate(self, frame: pl.DataFrame, *, file: str | Path, headers: dict[str, str] | None = None,
                 skip: Iterable[tuple[int, str]] = ()) -> list[Failure]:
        """Failures of `frame` (which carries `source_row`); an empty list when valid.

        `skip` holds (row index, column) pairs already reported (an unparseable
        cell is also empty after parsing: report it once).
        """
        try:
            self.schema.validate(frame, lazy=True)
            return []
        except SchemaErrors as exc:
            cases = exc.failure_cases
        except SchemaError as exc:  # pragma: no cover - lazy=True raises SchemaErrors
            cases = exc.failure_cases if isinstance(exc.failure_cases, pl.DataFrame) else None
            if cases is None:
                return [Failure("wrong_type", None, detail=f"schema {self.name}")]
        return self._failures(cases, frame, headers or {}, set(skip))

    def _failures(self, cases: pl.DataFrame, frame: pl.DataFrame, headers: dict[str, str],
                  skip: set[tuple[int, str]]) -> list[Failure]:
        # failure_case holds the offending value: drop it at once, it may be a tax code
        cases = cases.drop("failure_case")
        out: list[Failure] = []
        source_row = frame["source_row"] if "source_row" in frame.columns else None
        keys = cases.select("column", "check", "check_number").unique(maintain_order=True)
        for column, check, number in keys.iter_rows():
            sel = cases.filter(
                pl.col("column").eq_missing(column) & pl.col("check").eq_missing(check)
                & pl.col("check_number").eq_missing(number)
            )
            idx = [i for i in sel["index"].drop_nulls().unique().sort().to_list() if (i, column) not in skip]
            if check == "not_nullable":
                rule = "missing_value"
            elif check == "multiple_fields_uniqueness" or (check or "").startswith("field_uniqueness"):
                rule = self.unique_rule or "duplicate_key"
            elif check == "column_in_dataframe":
                rule = "missing_columns"
            elif number is not None and (column, int(number)) in self.rule_of:
                rule = self.rule_of[(column, int(number))]
            elif (check or "").startswith("dtype"):
                rule = "wrong_type"
            else:
                rule = str(check)
            if not idx and sel["index"].drop_nulls().len() > 0:
                continue  # all rows already reported by the parser
            rows = tuple(int(r) for r in source_row.gather(idx).sort().to_list()) if (source_row is not None and idx) else ()
            if rule == "duplicate_filing" or rule == "duplicate_key":
                cols = self.schema.unique or []
                column_label = ", ".join(cols) if cols else None
                out.append(Failure(rule, column_label, rows, len(rows)))
            else:
                out.append(Failure(rule, column, rows, len(rows), header=headers.get(column),
                                   detail=self.details.get(rule)))
        return out


def build_schema(name: str, columns: dict[str, Col], *, unique: Sequence[str] | None = None,
                 unique_rule: str | None = None, details: dict[str, str] | None = None) -> RuleSchema:
    pa_cols = {}
    rule_of: dict[tuple[str, int], str] = {}
    for col, spec in columns.items():
        pa_cols[col] = pa.Column(spec.dtype, checks=[c for _, c in spec.checks], nullable=spec.nullable)
        for i, (rule, _) in enumerate(spec.checks):
            rule_of[(col, i)] = rule
    schema = pa.DataFrameSchema(pa_cols, unique=list(unique) if unique else None, name=name, strict=False)
    return RuleSchema(name, schema, rule_of, unique_rule, dict(details or {}))


def _matches(rule: str, regex: str) -> tuple[str, pa.Check]:
    return rule, pa.Check.str_matches(regex)


def _non_negative() -> tuple[str, pa.Check]:
    return "negative_value", pa.Check.ge(0)


def _share() -> tuple[str, pa.Check]:
    return "share_out_of_range", pa.Check.in_range(0, 100)


_SOURCE_ROW = Col(pl.Int64, nullable=False)


@lru_cache(maxsize=64)
def survey_schema(year: int) -> RuleSchema:
    """The survey delivery of fiscal year `year`, typed, before pseudonymisation."""
    cols: dict[str, Col] = {
        "tax_code": Col(pl.String, False, (_matches("malformed_tax_code", TAX_CODE_RE),)),
        "year": Col(pl.Int32, False, (("year_mismatch", pa.Check.eq(int(year))),)),
        # a return cannot be filed before its fiscal year begins (a date after today is not
        # refused: a machine's clock may be wrong)
        "filing_date": Col(pl.Date, False, (("filing_before_year", pa.Check.ge(dt.date(int(year), 1, 1))),)),
        "ateco_2007": Col(pl.String, True, (_matches("malformed_ateco", ATECO_RE),)),
        "municipality_code": Col(pl.String, True, (_matches("malformed_municipality_code", MUNICIPALITY_RE),)),
    }
    for c in SURVEY_AMOUNTS:
        checks: list[tuple[str, pa.Check]] = []
        if c in SURVEY_NON_NEGATIVE:
            checks.append(_non_negative())
        if c == "export_share":
            checks.append(_share())
        cols[c] = Col(pl.Float64, True, tuple(checks))
    for c in SURVEY_FLAGS:
        cols[c] = Col(pl.Int8, True, (("flag_not_binary", pa.Check.isin([0, 1])),))
    cols["market_area"] = Col(pl.String, True, (("unknown_market_area", pa.Check.isin(list(MARKET_AREAS))),))
    cols["source_row"] = _SOURCE_ROW
    before = (f"a return of fiscal year {int(year)} is filed on or after 1 January {int(year)}: correct the "
              f"filing date (dd/mm/yyyy with the year in four digits, or yyyy-mm-dd), or move the return to "
              f"the file of its own fiscal year")
    return build_schema(f"survey_{year}", cols, unique=["tax_code", "year", "filing_date"],
                        unique_rule="duplicate_filing", details={"filing_before_year": before})


def aida_firms_schema(years: Sequence[int]) -> RuleSchema:
    """The AIDA export, wide (one turnover_<YYYY> and employees_<YYYY> per year)."""
    cols: dict[str, Col] = {
        "tax_code": Col(pl.String, False, (_matches("malformed_tax_code", TAX_CODE_RE),)),
        "company_name": Col(pl.String, True),
        # required: an empty sigla or code would drop the company from every province count,
        # or count it outside the two industries, without a word (docs/readings.md)
        "province": Col(pl.String, False, (_matches("malformed_province", PROVINCE_RE),)),
        "ateco_2007": Col(pl.String, False, (_matches("malformed_ateco", ATECO_RE),)),
    }
    for y in years:
        cols[f"turnover_{y}"] = Col(pl.Float64, True, (_non_negative(),))
        cols[f"employees_{y}"] = Col(pl.Float64, True, (_non_negative(),))
    cols["source_row"] = _SOURCE_ROW
    missing = ("a company's tax code, province (sigla of the registered office) and ATECO code place it "
               "in the panel, a province count and an industry; an empty one cannot be read as any of "
               "them: fill it in from the AIDA record, or export the company again")
    return build_schema("aida_firms", cols, unique=["tax_code"], unique_rule="duplicate_key",
                        details={"missing_value": missing})


def _last_after_first(data: Any) -> pl.LazyFrame:
    return data.lazyframe.select(
        pl.col("last_year").is_null() | pl.col("first_year").is_null()
        | (pl.col("last_year") >= pl.col("first_year"))
    )


@lru_cache(maxsize=1)
def aida_subsidiaries_schema() -> RuleSchema:
    cols = {
        "tax_code": Col(pl.String, False, (_matches("malformed_tax_code", TAX_CODE_RE),)),
        "subsidiary_name": Col(pl.String, True),
        "country_iso2": Col(pl.String, False, (
            _matches("malformed_country", COUNTRY_RE),
            ("country_not_foreign", pa.Check.notin(["IT"])),
        )),
        # required: whether the parent controls the subsidiary (a share above the threshold)
        # cannot be told from an empty share, and reading it as "not controlled" took the
        # parent out of the offshoring counts without a word
        "ownership_pct": Col(pl.Float64, False, (_share(),)),
        "first_year": Col(pl.Int32, False),
        "last_year": Col(pl.Int32, True, (("year_order", pa.Check(_last_after_first)),)),
        "source_row": _SOURCE_ROW,
    }
    missing = ("a participation needs its parent's tax code, the country, the share held and the first "
               "year held (an empty last year means still held): fill the cell in from the AIDA record; "
               "an empty share cannot say whether the parent controls the subsidiary")
    # no uniqueness rule: the contract has one row per participation, and two rows alike
    # may be two participations (same name, country and year); they are kept and warned about
    return build_schema("aida_subsidiaries", cols, details={"missing_value": missing})


@lru_cache(maxsize=1)
def llma_schema() -> RuleSchema:
    cols = {
        "municipality_code": Col(pl.String, False, (_matches("malformed_municipality_code", MUNICIPALITY_RE),)),
        "llma_code": Col(pl.String, False),
        "llma_name": Col(pl.String, True),
        "source_row": _SOURCE_ROW,
    }
    return build_schema("llma", cols, unique=["municipality_code"], unique_rule="duplicate_key")


@lru_cache(maxsize=1)
def census_schema() -> RuleSchema:
    cols = {
        "llma_code": Col(pl.String, False),
        "ateco_division": Col(pl.String, False, (_matches("malformed_division", DIVISION_RE),)),
        "size_class": Col(pl.String, False, (("unknown_size_class", pa.Check.isin(list(SIZE_CLASSES))),)),
        # required: the district procedure reads every count; an empty one used to load and
        # then stop the run half-way, after other tables had been replaced
        "local_units": Col(pl.Int64, False, (_non_negative(),)),
        "employees": Col(pl.Int64, False, (_non_negative(),)),
        "source_row": _SOURCE_ROW,
    }
    missing = ("the district procedure needs every count of every area, division and size class: write 0 "
               "where the census has no unit, and the published figure where it has one; a count the "
               "census suppressed cannot be read as 0 or left out (which areas are districts would change)")
    return build_schema("census_employment", cols, unique=["llma_code", "ateco_division", "size_class"],
                        unique_rule="duplicate_key", details={"missing_value": missing})


@lru_cache(maxsize=1)
def municipalities_schema() -> RuleSchema:
    code = (_matches("malformed_municipality_code", MUNICIPALITY_RE),)
    cols = {
        "municipality_code": Col(pl.String, False, code),
        "municipality_name": Col(pl.String, False),
        "province": Col(pl.String, True),
        "province_code": Col(pl.String, False),
        "region_code": Col(pl.String, False),
        "region": Col(pl.String, False),
        "macro_area": Col(pl.String, False, (("invalid_list", pa.Check.isin(
            ["North-West", "North-East", "Centre", "South", "Islands"])),)),
        "code_110": Col(pl.String, True, code),
        "code_107": Col(pl.String, True, code),
        "code_103": Col(pl.String, True, code),
        "source_row": _SOURCE_ROW,
    }
    return build_schema("municipalities", cols, unique=["municipality_code"], unique_rule="duplicate_key")


# ---------------------------------------------------------------------------
# Warnings
# ---------------------------------------------------------------------------


def survey_warnings(frame: pl.DataFrame) -> list[ValidationWarning]:
    """Warnings of a typed survey delivery (needs `tax_code_check_ok`). Only rules that fire.

    Facts of single returns only; the plausibility of the delivery as a whole (its
    scale, its returns above the turnover ceiling) is judged against the other loaded
    years after the load (`offshoring.plausibility`).
    """
    out: list[ValidationWarning] = []
    table = "survey_returns"
    out.extend(check_character_warnings(frame, table))
    # (a return without a municipality is refused, not warned about: `survey.municipality_failures`)
    for col, rule in (("ateco_2007", "missing_ateco"),):
        n = int(frame[col].null_count())
        if n:
            out.append(ValidationWarning(rule, table, col, n, f"{n} returns have no {col}"))
    return out


def check_character_warnings(frame: pl.DataFrame, table: str) -> list[ValidationWarning]:
    n = int((~frame["tax_code_check_ok"]).sum())
    if not n:
        return []
    return [ValidationWarning(
        "tax_code_bad_check_character", table, "tax_code", n,
        f"{n} rows carry a tax code whose check character is wrong (kept; the pseudonym is "
        f"computed from the code as filed)",
    )]


# ---------------------------------------------------------------------------
# The raw tables (the contract of docs/warehouse.md) and the checks on them
# ---------------------------------------------------------------------------

_SURVEY_COLUMNS: list[tuple[str, str]] = [
    ("firm_id", "VARCHAR"), ("year", "INTEGER"), ("filing_date", "DATE"),
    ("ateco_2007", "VARCHAR"), ("municipality_code", "VARCHAR"),
    ("turnover", "DOUBLE"), ("employees", "DOUBLE"), ("value_added", "DOUBLE"),
    ("wage_costs", "DOUBLE"), ("net_income", "DOUBLE"), ("roi", "DOUBLE"), ("export_share", "DOUBLE"),
    ("credit_access", "TINYINT"), ("market_area", "VARCHAR"), ("high_value_added", "TINYINT"),
    ("supplier", "TINYINT"),
    ("subcontracting_italy", "DOUBLE"), ("subcontracting_europe", "DOUBLE"),
    ("subcontracting_north_africa", "DOUBLE"), ("subcontracting_east_asia", "DOUBLE"),
    ("subcontracting_other", "DOUBLE"),
    ("legal_form", "VARCHAR"), ("foreign_owner", "TINYINT"), ("tax_code_check_ok", "BOOLEAN"),
    ("source_file", "VARCHAR"), ("source_row", "INTEGER"),
]

RAW_TABLES: dict[str, list[tuple[str, str]]] = {
    "survey_returns": _SURVEY_COLUMNS,
    "aida_firm_years": [
        ("firm_id", "VARCHAR"), ("company_name", "VARCHAR"), ("province", "VARCHAR"),
        ("ateco_2007", "VARCHAR"), ("year", "INTEGER"), ("turnover", "DOUBLE"), ("employees", "DOUBLE"),
        ("legal_form", "VARCHAR"), ("tax_code_check_ok", "BOOLEAN"),
        ("source_file", "VARCHAR"), ("source_row", "INTEGER"),
    ],
    "aida_subsidiaries": [
        ("firm_id", "VARCHAR"), ("subsidiary_name", "VARCHAR"), ("country_iso2", "VARCHAR"),
        ("destination", "VARCHAR"), ("ownership_pct", "DOUBLE"), ("first_year", "INTEGER"),
        ("last_year", "INTEGER"), ("tax_code_check_ok", "BOOLEAN"),
        ("source_file", "VARCHAR"), ("source_row", "INTEGER"),
    ],
    "municipalities": [
        ("municipality_code", "VARCHAR"), ("municipality_name", "VARCHAR"), ("province", "VARCHAR"),
        ("province_code", "VARCHAR"), ("province_name", "VARCHAR"), ("region_code", "VARCHAR"),
        ("region", "VARCHAR"), ("macro_area", "VARCHAR"), ("code_110", "VARCHAR"),
        ("code_107", "VARCHAR"), ("code_103", "VARCHAR"), ("cadastral_code", "VARCHAR"),
    ],
    "llma": [("municipality_code", "VARCHAR"), ("llma_code", "VARCHAR"), ("llma_name", "VARCHAR")],
    "census_employment": [
        ("llma_code", "VARCHAR"), ("ateco_division", "VARCHAR"), ("size_class", "VARCHAR"),
        ("local_units", "INTEGER"), ("employees", "INTEGER"),
    ],
    "load_log": [
        ("load_id", "VARCHAR"), ("table_name", "VARCHAR"), ("partition", "VARCHAR"),
        ("file", "VARCHAR"), ("sha256", "VARCHAR"), ("rows_read", "BIGINT"),
        ("rows_written", "BIGINT"), ("rows_rejected", "BIGINT"), ("reject_reasons", "VARCHAR"),
        ("loaded_at", "TIMESTAMP"), ("code_version", "VARCHAR"), ("status", "VARCHAR"),
        ("warnings", "VARCHAR"), ("file_format", "VARCHAR"), ("duration_s", "DOUBLE"),
    ],
}

#: the key of each raw table (asset checks: unique and not null)
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "survey_returns": ("firm_id", "year", "filing_date"),
    "aida_firm_years": ("firm_id", "year"),
    "aida_subsidiaries": ("firm_id", "source_row"),
    "municipalities": ("municipality_code",),
    "llma": ("municipality_code",),
    "census_employment": ("llma_code", "ateco_division", "size_class"),
    "load_log": ("load_id",),
}



@dataclass(frozen=True)
class CheckResult:
    """Outcome of a check on a loaded table, ready for an asset check's metadata."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _where(partition_col: str | None, partition: Any) -> tuple[str, list[Any]]:
    if partition_col is None or partition is None:
        return "", []
    return f" WHERE {partition_col} = ?", [partition]


def _qualified(table: str) -> str:
    if table not in RAW_TABLES:
        raise KeyError(f"unknown raw table {table!r}; known: {sorted(RAW_TABLES)}")
    return f"{RAW_SCHEMA}.{table}"


def check_unique_keys(con: Any, table: str, *, year: int | None = None) -> CheckResult:
    """No two rows share the table's key (within `year` for the survey)."""
    key = TABLE_KEYS[table]
    where, params = _where("year" if table == "survey_returns" else None, year)
    cols = ", ".join(key)
    n = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {_qualified(table)}{where} "
        f"GROUP BY ALL HAVING count(*) > 1)", params,
    ).fetchall()[0][0]
    return CheckResult(n == 0, f"{n} duplicated keys ({cols}) in raw.{table}",
                       {"key": list(key), "duplicated_keys": int(n)})


def check_non_null_keys(con: Any, table: str, *, year: int | None = None) -> CheckResult:
    """No key column is empty."""
    key = TABLE_KEYS[table]
    where, params = _where("year" if table == "survey_returns" else None, year)
    cond = " OR ".join(f"{c} IS NULL" for c in key)
    clause = f"{where} AND ({cond})" if where else f" WHERE {cond}"
    n = con.execute(f"SELECT count(*) FROM {_qualified(table)}{clause}", params).fetchall()[0][0]
    return CheckResult(n == 0, f"{n} rows of raw.{table} with an empty key column",
                       {"key": list(key), "rows_with_null_key": int(n)})


def _previous_delivery(con: Any, year: int) -> tuple[int, int] | None:
    """(year, rows) of the latest survey year in the warehouse before `year`, or None."""
    prev = con.execute(
        f"SELECT year, count(*) FROM {_qualified('survey_returns')} WHERE year < ? "
        f"GROUP BY year ORDER BY year DESC LIMIT 1", [year],
    ).fetchall()
    return (int(prev[0][0]), int(prev[0][1])) if prev else None


def row_count_vs_previous(con: Any, year: int, *, ratio: float = 0.5) -> tuple[bool, int, int | None]:
    """(passed, rows of `year`, rows of the previous delivery) for raw.survey_returns.

    The previous delivery is the latest loaded year before `year`; with none the
    check passes (not checked). It fails when the year has fewer than `ratio` times the
    rows. The asset passes the specification's ``delivery_gate.min_share_of_neighbours``
    (`row_count_check`); the default here is only for direct calls.
    """
    current = con.execute(f"SELECT count(*) FROM {_qualified('survey_returns')} WHERE year = ?",
                          [year]).fetchall()[0][0]
    prev = _previous_delivery(con, year)
    if prev is None:
        return True, int(current), None
    return bool(current >= ratio * prev[1]), int(current), int(prev[1])


def row_count_check(con: Any, year: int, *, ratio: float) -> CheckResult:
    """`row_count_vs_previous` as a check result: the ratio used (the delivery gate's
    ``min_share_of_neighbours`` in the asset) in its description and metadata; with no
    earlier year in the warehouse it says plainly it was NOT checked (``checked: false``)."""
    passed, current, previous = row_count_vs_previous(con, year, ratio=ratio)
    prev = _previous_delivery(con, year)
    meta: dict[str, Any] = {"rows": current, "previous_rows": previous, "min_ratio": ratio,
                            "checked": prev is not None}
    if prev is None:
        return CheckResult(True, f"NOT checked: {current} rows in {year}, no previous delivery in the warehouse "
                                 f"to compare with (bound: {ratio:g} times the previous year's rows)", meta)
    share = current / prev[1] if prev[1] else float("inf")
    meta.update({"previous_year": prev[0], "ratio": round(share, 4), "min_rows": ratio * prev[1]})
    verdict = "at least" if passed else "below"
    return CheckResult(passed, f"{current} rows in {year}, {previous} in the previous delivery ({prev[0]}): "
                               f"{share:.0%} of it, {verdict} the minimum of {ratio:.0%} "
                               f"(delivery_gate.min_share_of_neighbours)", meta)


def check_schema(con: Any, table: str) -> CheckResult:
    """The table's columns and types equal the contract (`RAW_TABLES`), in order."""
    expected = RAW_TABLES[table]
    actual = [
        (name, dtype)
        for name, dtype in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [RAW_SCHEMA, table],
        ).fetchall()
    ]
    problems: list[str] = []
    exp_names = [c for c, _ in expected]
    act = dict(actual)
    for c, t in expected:
        if c not in act:
            problems.append(f"missing column {c}")
        elif act[c] != t:
            problems.append(f"column {c} is {act[c]}, contract says {t}")
    for c, _ in actual:
        if c not in exp_names:
            problems.append(f"extra column {c}")
    if not problems and [c for c, _ in actual] != exp_names:
        problems.append("columns out of order")
    return CheckResult(not problems, "; ".join(problems) or f"raw.{table} matches the contract",
                       {"expected": dict(expected), "actual": dict(actual), "problems": problems})


def warnings_json(warnings: Sequence[ValidationWarning]) -> str:
    return json.dumps([w.as_dict() for w in warnings])


def table_checks(con: Any, table: str, *, year: int | None = None,
                 row_count_ratio: float = 0.5) -> dict[str, CheckResult]:
    """Every table check for `table` (and the row-count check for a survey year), by name.

    `row_count_ratio`: the bound of ``row_count_vs_previous``; the asset passes the
    specification's ``delivery_gate.min_share_of_neighbours``."""
    out = {
        "unique_keys": check_unique_keys(con, table, year=year),
        "non_null_keys": check_non_null_keys(con, table, year=year),
        "schema_matches_contract": check_schema(con, table),
    }
    if table == "survey_returns" and year is not None:
        out["row_count_vs_previous"] = row_count_check(con, year, ratio=row_count_ratio)
    return out


def warning_checks(warnings: Sequence[ValidationWarning], table: str) -> dict[str, CheckResult]:
    """One result per warning rule of `table` (`WARNING_RULES`): failed when the rule fired.

    Meant for asset checks of WARN severity: a failure shows, and fails nothing.
    """
    fired = {w.rule: w for w in warnings if w.table == table}
    out = {}
    for rule, meaning in WARNING_RULES.get(table, {}).items():
        w = fired.get(rule)
        out[rule] = CheckResult(
            w is None,
            w.description if w else f"no rows: {meaning}",
            {"n_rows": w.n_rows if w else 0, "column": w.column if w else None},
        )
    return out
