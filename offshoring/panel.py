"""The panel stage: runs the SQL files under sql/ in order, with the settings SQL cannot read.

Settings come in as arguments (the study specification's `Thresholds`), never from a file.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

import duckdb

from offshoring.spec import Thresholds
from offshoring import settings
from offshoring.sqlfiles import run_sql


def register_ceilings(con: duckdb.DuckDBPyConnection, ceilings: dict[int, float]) -> None:
    """A temp table ``_ceiling(year, ceiling)`` the panel SQL joins on."""
    con.execute("CREATE OR REPLACE TEMP TABLE _ceiling (year INTEGER, ceiling DOUBLE)")
    if ceilings:
        con.executemany("INSERT INTO _ceiling VALUES (?, ?)", sorted(ceilings.items()))


class PanelSchemaError(ValueError):
    """The panel breaks its pandera schema; nothing was written."""

    def __init__(self, message: str, failures: list[dict] | None = None):
        super().__init__(message)
        self.failures = list(failures or [])


def _ceilings(con: duckdb.DuckDBPyConnection, thresholds: Thresholds) -> dict[int, float]:
    years = [r[0] for r in con.execute(
        "SELECT DISTINCT year FROM raw.survey_returns "
        "UNION SELECT DISTINCT year FROM raw.aida_firm_years").fetchall()]
    ceilings = thresholds.ceilings(years)
    register_ceilings(con, ceilings)
    return ceilings


def _survey_ranked(con: duckdb.DuckDBPyConnection, thresholds: Thresholds) -> dict[int, float]:
    ceilings = _ceilings(con, thresholds)
    # AIDA's turnover of each firm-year, for the survey returns whose turnover is empty: a
    # missing survey turnover cannot show the firm is under the ceiling when AIDA says it is
    # above (`sql/panel_survey_latest.sql`); without an AIDA load, no firm-year has one
    try:
        con.execute("SELECT firm_id, year, turnover FROM raw.aida_firm_years LIMIT 0")
        source = "SELECT firm_id, year, max(turnover) AS turnover FROM raw.aida_firm_years GROUP BY ALL"
    except duckdb.CatalogException:
        source = "SELECT NULL::VARCHAR AS firm_id, NULL::INTEGER AS year, NULL::DOUBLE AS turnover WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP VIEW _aida_turnover AS {source}")
    run_sql(con, "panel_survey_latest")
    return ceilings


def build_firm_years(con: duckdb.DuckDBPyConnection, thresholds: Thresholds):
    """panel.survey_rejects and panel.firm_years, validated before they are committed.

    Returns (ceilings by year, validation). Raises PanelSchemaError (after a
    rollback: the previous panel stays) when the panel breaks its schema.
    """

    with bounded_memory(con):
        ceilings = _survey_ranked(con, thresholds)
        con.execute("BEGIN TRANSACTION")
        try:
            run_sql(con, "panel_survey_rejects")
            run_sql(con, "panel_firm_years")
            validation = validate_in_duckdb(con)
            if not validation.passed:
                raise PanelSchemaError("panel.firm_years breaks its schema; nothing written.\n"
                                       + validation.summary(), validation.failures)
            empty = _years_left_empty(con)
            if empty:
                raise PanelSchemaError(_empty_years_message(con, empty), [
                    {"column": "year", "rule": "every_loaded_year_in_panel", "n_failing": len(empty),
                     "rows": [f"{y}: {n:,} survey returns, none kept" for y, n in empty]}])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            # the temp tables hold a copy of every survey return: free them with the step
            con.execute("DROP VIEW IF EXISTS temp._sme")
            con.execute("DROP VIEW IF EXISTS temp._aida_turnover")
            for t in ("_geo", "_survey_ranked"):
                con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    return ceilings, validation


def _years_left_empty(con: duckdb.DuckDBPyConnection) -> list[tuple[int, int]]:
    """(year, survey returns) of every loaded survey year with returns of the study's two
    industries but no firm-year in the new panel: a panel that silently lost a year (every
    return above a ceiling typed in thousands, say) would otherwise pass its schema; an empty
    panel passes every rule of it."""
    return [(int(y), int(n)) for y, n in con.execute(
        "SELECT r.year, count(*) FROM _survey_ranked r WHERE r.sector IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM panel.firm_years f WHERE f.year = r.year) "
        "GROUP BY r.year ORDER BY r.year").fetchall()]


def _empty_years_message(con: duckdb.DuckDBPyConnection, empty: list[tuple[int, int]]) -> str:
    parts, seen = [], set()
    for year, n in empty:
        reasons = con.execute("SELECT reason, count(*) FROM panel.survey_rejects WHERE year = ? "
                              "AND reason NOT IN ('outside_clothing_footwear', 'missing_ateco') GROUP BY reason ORDER BY 2 DESC",
                              [year]).fetchall()
        seen.update(r for r, _ in reasons)
        parts.append(f"{year} ({n:,} returns of the two industries, all left out: "
                     + ", ".join(f"{r} {c:,}" for r, c in reasons) + ")")
    hint = (" Check the turnover ceiling (thresholds.yaml turnover_ceiling, in EUR, not thousands) "
            "and the delivery's unit." if "above_turnover_ceiling" in seen else "")
    return ("panel.firm_years would have no firm-year for " + "; ".join(parts)
            + ". Nothing written: the previous panel stays." + hint)


# ---------------------------------------------------------------- memory of the connection

#: DuckDB's memory for a panel step: 1 GB, and 1 GB more per 3 million survey returns up
#: to 4 GB (beyond it, sorts, joins and temp tables spill to the database's temp
#: directory: at 1.7 million firms, 11.8 million returns, a 1 GB limit spilled 9 GB and
#: doubled the panel's time). DuckDB's own default is 80% of the machine: on a large world
#: the panel would take all of it. ``OFFSHORING_DUCKDB_MEMORY_LIMIT`` (a DuckDB size, e.g.
#: "2GB") overrides the rule.
MEMORY_LIMIT_GB = (1, 4)
ROWS_PER_GB = 3_000_000
MEMORY_LIMIT_ENV = settings.ENV_DUCKDB_MEMORY_LIMIT


def memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    """The limit a panel step runs under (see `MEMORY_LIMIT_GB`), from the environment or
    from the size of raw.survey_returns (DuckDB's estimate: no scan)."""
    if os.environ.get(MEMORY_LIMIT_ENV):
        return _size(os.environ[MEMORY_LIMIT_ENV])
    rows = con.execute("SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() "
                       "WHERE schema_name = 'raw' AND table_name = 'survey_returns'").fetchall()[0][0]
    lo, hi = MEMORY_LIMIT_GB
    return f"{min(hi, lo + int(rows) // ROWS_PER_GB)}GB"


@contextmanager
def bounded_memory(con: duckdb.DuckDBPyConnection, limit: str | None = None) -> Iterator[None]:
    """Run the block with DuckDB's memory limit set to ``limit`` (else `memory_limit`);
    the connection's previous limit is restored after it."""
    limit = _size(limit) if limit else memory_limit(con)
    before = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{_size(before)}'")


def _size(text: str) -> str:
    """A DuckDB size setting, refusing anything else (it is spliced into SET)."""
    t = str(text).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]?i?B", t, flags=re.IGNORECASE):
        raise ValueError(f"{MEMORY_LIMIT_ENV}: {text!r} is not a size such as '2GB' or '1.5 GiB'")
    return t


# ------------------------------------------------------------------------ validation


def validate_in_duckdb(con: duckdb.DuckDBPyConnection, table: str = "panel.firm_years"):
    """The panel's pandera schema (`offshoring.schemas.panel.FIRM_YEAR_SCHEMA`) checked
    inside DuckDB: nothing of the panel is fetched into Python but the rows named in a
    failure, so memory does not grow with the panel.

    * columns and types: pandera itself on the table's first zero rows (exactly the
      polars types a fetch would give);
    * null and value rules: the schema's checks, translated to SQL (`_check_sql`), counted
      in one scan grouped by year; a check SQL cannot express is run by pandera on that
      column alone, one year at a time;
    * uniqueness of the key: one aggregation over the table.

    Failures are reported as `validate_panel` reports them, per year ("export_share (year
    2009)"), with up to five rows each, named by delivery file and data row.
    """
    from offshoring.schemas.panel import FIRM_YEAR_SCHEMA as schema
    from offshoring.schemas.panel import PanelValidation, validate_panel

    empty = con.sql(f"SELECT * FROM {table} LIMIT 0").pl()
    structure = validate_panel(empty)
    failures: list[dict] = list(structure.failures)
    broken = {f["column"] for f in structure.failures}
    present = set(empty.columns)
    q = _quote

    # (column label, rule, SQL condition true on a failing row); NULL counts as passing
    rules: list[tuple[str, str, str]] = []
    python_checks: list[tuple[str, object]] = []
    for name, col in schema.columns.items():
        if name not in present or name in broken:
            continue  # reported above (missing, or not the declared type)
        if not col.nullable:
            is_float = empty.schema[name].is_float()
            rules.append((name, "not_nullable",
                          f"{q(name)} IS NULL" + (f" OR isnan({q(name)})" if is_float else "")))
        for check in col.checks:
            cond = _check_sql(q(name), check)
            if cond is None:
                python_checks.append((name, check))
            else:
                rules.append((name, check.error or check.name, f"NOT ({cond})"))

    n_by_year: dict[int, int] = {}
    failing: list[tuple[int, int, int]] = []  # (year, rule index, n)
    if rules:
        counts = ", ".join(f"count(*) FILTER (WHERE {cond}) AS f{i}" for i, (_, _, cond) in enumerate(rules))
        for row in con.execute(f"SELECT year, count(*), {counts} FROM {table} GROUP BY year ORDER BY year"
                               ).fetchall():
            n_by_year[row[0]] = row[1]
            failing += [(row[0], i, n) for i, n in enumerate(row[2:]) if n]
    else:
        n_by_year = dict(con.execute(f"SELECT year, count(*) FROM {table} GROUP BY year ORDER BY year"
                                     ).fetchall())

    unique = _unique_failures(con, table, schema, present, empty)
    for year in sorted(n_by_year):
        failures += [f for y, f in unique if y == year]
        for y, i, n in failing:
            if y == year:
                col, rule, cond = rules[i]
                failures.append({"column": f"{col} (year {year})", "rule": str(rule), "n_failing": n,
                                 "rows": _first_rows(con, table, year, cond, empty.columns)})
        for name, check in python_checks:
            failures += _python_check(con, table, year, name, check, schema, empty.columns)
    return PanelValidation(not failures, sum(n_by_year.values()), failures)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            return f"'{value}'::DOUBLE"
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def _check_sql(col: str, check) -> str | None:
    """SQL that is true where pandera's built-in polars check passes (NULL: the value is
    null, which a nullable column's checks ignore), or None for a check it cannot express.

    DuckDB orders NaN above every number as polars does, so comparisons agree on NaN too.
    """
    s = check.statistics or {}
    name = check.name
    try:
        if name == "in_range":
            lo = ">=" if s.get("include_min", True) else ">"
            hi = "<=" if s.get("include_max", True) else "<"
            return (f"{col} {lo} {_literal(s['min_value'])} AND {col} {hi} {_literal(s['max_value'])}")
        ops = {"greater_than_or_equal_to": (">=", "min_value"), "greater_than": (">", "min_value"),
               "less_than_or_equal_to": ("<=", "max_value"), "less_than": ("<", "max_value"),
               "equal_to": ("=", "value"), "not_equal_to": ("<>", "value")}
        if name in ops:
            op, key = ops[name]
            return f"{col} {op} {_literal(s[key])}"
        if name in ("isin", "notin"):
            values = s["allowed_values" if name == "isin" else "forbidden_values"]
            if isinstance(values, str) or not values:
                return None  # pandera reads a string as its characters; rare enough for pandera
            items = ", ".join(_literal(v) for v in values)
            return f"{col} IN ({items})" if name == "isin" else f"{col} NOT IN ({items})"
        if name == "str_matches":
            pattern = getattr(s["pattern"], "pattern", s["pattern"])
            if not pattern.startswith("^"):
                pattern = "^" + pattern
            return f"regexp_matches({col}, {_literal(pattern)})"
    except (KeyError, TypeError):
        return None
    return None


def _first_rows(con, table: str, year: int, cond: str, columns: list[str]) -> list:
    """Up to five failing rows of a year as `validate_panel` names them (delivery file and
    data row; the row's position in the year, by firm, without them)."""
    if "source_file" in columns and "source_row" in columns:
        got = con.execute(f"SELECT source_file, source_row FROM {table} WHERE year = ? AND ({cond}) "
                          "ORDER BY firm_id, source_row LIMIT 5", [year]).fetchall()
        return [f"{f} row {r}" for f, r in got]
    order = "firm_id" if "firm_id" in columns else "1"
    got = con.execute(f"SELECT pos FROM (SELECT *, row_number() OVER (ORDER BY {order}) - 1 AS pos "
                      f"FROM {table} WHERE year = ?) WHERE {cond} ORDER BY pos LIMIT 5", [year]).fetchall()
    return [int(r[0]) for r in got]


def _unique_failures(con, table: str, schema, present: set[str], empty) -> list[tuple[int, dict]]:
    """Rows sharing a key, per year: pandera's multiple_fields_uniqueness (the first key
    list that has duplicates)."""
    if not schema.unique:
        return []
    keys = [schema.unique] if all(isinstance(x, str) for x in schema.unique) else schema.unique
    for key in keys:
        subset = [c for c in key if c in present]
        if not subset:
            continue
        cols = ", ".join(_quote(c) for c in subset)
        if not con.execute(f"SELECT 1 FROM {table} GROUP BY {cols} HAVING count(*) > 1 LIMIT 1").fetchall():
            continue
        dup = (f"({cols}) IN (SELECT ({cols}) FROM {table} GROUP BY {cols} HAVING count(*) > 1)"
               if len(subset) > 1 else f"{cols} IN (SELECT {cols} FROM {table} GROUP BY {cols} "
                                       "HAVING count(*) > 1)")
        out = []
        for year, n in con.execute(f"SELECT year, count(*) FROM {table} WHERE {dup} GROUP BY year "
                                   "ORDER BY year").fetchall():
            out.append((year, {"column": f"{schema.name} (year {year})", "rule": "multiple_fields_uniqueness",
                               "n_failing": n, "rows": _first_rows(con, table, year, dup, empty.columns)}))
        return out
    return []


def _python_check(con, table: str, year: int, name: str, check, schema, columns: list[str]) -> list[dict]:
    """A check SQL cannot express: pandera on the one column (and the row's origin), one year."""
    from offshoring.schemas.panel import validate_panel  # noqa: F401  (same reporting)
    import pandera.polars as pa
    from pandera.errors import SchemaErrors

    keep = [c for c in (name, "source_file", "source_row") if c in columns]
    order = "firm_id" if "firm_id" in columns else "1"
    df = con.sql(f"SELECT {', '.join(_quote(c) for c in keep)} FROM {table} WHERE year = {int(year)} "
                 f"ORDER BY {order}").pl()
    sub = pa.DataFrameSchema({name: pa.Column(schema.columns[name].dtype, check, nullable=True)},
                             strict=False, coerce=False)
    try:
        sub.validate(df, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        idx = [int(i) for i in cases["index"].drop_nulls().head(5).to_list()] if "index" in cases.columns else []
        rows = [f"{df['source_file'][i]} row {df['source_row'][i]}" if "source_file" in df.columns else i
                for i in idx]
        return [{"column": f"{name} (year {year})", "rule": str(check.error or check.name),
                 "n_failing": cases.height, "rows": rows}]
    return []


def build_aida_offshoring(con: duckdb.DuckDBPyConnection, thresholds: Thresholds) -> None:
    """panel.aida_large (AIDA firm-years with their dedup outcome) and panel.aida_offshoring.

    Raises `AidaProvinceError`, before anything is written, when the AIDA table holds a
    province sigla that is neither in the municipality list nor an abolished province the
    list's codes can place (`geo.ABOLISHED_PROVINCES`): its firms would silently drop out
    of every province count and map."""
    from offshoring.geo import ABOLISHED_PROVINCES

    with bounded_memory(con):
        con.execute("CREATE OR REPLACE TEMP TABLE _abolished_provinces (sigla VARCHAR, prefix VARCHAR)")
        con.executemany("INSERT INTO _abolished_provinces VALUES (?, ?)", sorted(ABOLISHED_PROVINCES.items()))
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _province_successors AS "
            "SELECT ab.sigla, m.province FROM _abolished_provinces ab "
            "JOIN raw.municipalities m ON substr(m.code_110, 1, 3) = ab.prefix "
            "GROUP BY ab.sigla, m.province "
            "QUALIFY row_number() OVER (PARTITION BY ab.sigla ORDER BY count(*) DESC, m.province) = 1")
        unplaced = con.execute(
            "SELECT upper(trim(a.province)) AS sigla, count(DISTINCT a.source_row) AS n, "
            "min(a.source_file || ' row ' || a.source_row) AS first "
            "FROM raw.aida_firm_years a WHERE a.province IS NOT NULL AND upper(trim(a.province)) NOT IN "
            "(SELECT province FROM raw.municipalities) AND upper(trim(a.province)) NOT IN "
            "(SELECT sigla FROM _province_successors) "
            "GROUP BY 1 ORDER BY 1").fetchall()
        if unplaced:
            shown = ", ".join(f"'{s}' ({n} rows, e.g. {f})" for s, n, f in unplaced[:10])
            raise AidaProvinceError(
                f"The AIDA export (raw.aida_firm_years), column province: {len(unplaced)} sigla(s) "
                f"that are no province of the municipality list and no abolished province it can "
                f"place: {shown}. Their firms would drop out of the province counts and the map. "
                f"Correct the export's province column (the sigla of the registered office) or "
                f"supply a municipality list that has them (reference/Elenco-comuni-italiani.csv); "
                f"nothing was rebuilt.")
        _ceilings(con, thresholds)
        run_sql(con, "panel_aida_large")
        run_sql(con, "panel_aida_offshoring", {"ownership_pct": float(thresholds.offshoring_ownership_pct)})
        con.execute("DROP TABLE IF EXISTS temp._aida_classified")
        con.execute("DROP TABLE IF EXISTS temp._abolished_provinces")
        con.execute("DROP TABLE IF EXISTS temp._province_successors")


class AidaProvinceError(ValueError):
    """An AIDA province sigla the pipeline cannot place in the reference layout."""


def build_model_panel(con: duckdb.DuckDBPyConnection, leave_one_out: bool) -> None:
    with bounded_memory(con):
        run_sql(con, "panel_model_panel", {"leave_one_out": bool(leave_one_out)})


def build_spells(con: duckdb.DuckDBPyConnection) -> None:
    with bounded_memory(con):
        run_sql(con, "panel_outsourcing_spells")


def build_spell_years(con: duckdb.DuckDBPyConnection) -> None:
    with bounded_memory(con):
        run_sql(con, "panel_spell_years")


def build_dedup_report(con: duckdb.DuckDBPyConnection) -> None:
    with bounded_memory(con):
        run_sql(con, "panel_dedup_report")
