"""Loading the raw inputs into DuckDB: validate everything first, then one transaction.

Each ``load_*`` function reads and validates its file completely before it
touches the database (a `ContractError` leaves every table as it was), then in
one transaction replaces its part of the raw table — one survey year, or the
whole table for the other inputs — and appends a row to ``raw.load_log``. If
anything fails inside the transaction it is rolled back. A rejected file is also
recorded in the log (status ``rejected``, with the broken rules and row counts,
never a cell value), in a transaction of its own.

Tax codes never reach a table: `offshoring.pseudonym` derives legal form,
foreign birth and check-character validity, and the INSERT itself replaces the
code by ``firm_id`` (HMAC-SHA256 computed by DuckDB, the key bound as a query
parameter). The connection passed in must not be inside a transaction.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from offshoring.identity import Identity, ensure_identity
# the delivery gate's settings and the check of a whole folder before any load, light; re-exported
from offshoring.inputs import DeliveryGate, _loaded_hashes, check_changed_inputs  # noqa: F401
from offshoring.version import code_version
from offshoring import settings
from offshoring.pseudonym import PseudonymKeyError, hmac_sql, tax_code_fields
from offshoring.readers import aida as aida_reader
from offshoring.readers import reference as ref_reader
from offshoring.readers import survey as survey_reader
from offshoring.readers.column_map import ColumnMap, as_column_map
from offshoring.readers.common import sha256_file
from offshoring.readers.layout import municipality_list_path
from offshoring.validation import (
    RAW_SCHEMA,
    RAW_TABLES,
    ContractError,
    Failure,
    ValidationWarning,
    check_character_warnings,
    survey_warnings,
    warnings_json,
)

_CONTRACT_FOLDERS = {"survey", "aida", "reference"}


# ---------------------------------------------------------------------------
# Schema and reports
# ---------------------------------------------------------------------------


def create_schema(con: Any) -> None:
    """Create schema ``raw`` and every raw table if missing (idempotent)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for table, cols in RAW_TABLES.items():
        body = ", ".join(f'"{c}" {t}' for c, t in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{table} ({body})")


default_code_version = code_version  # the one code version of the project


@dataclass
class LoadReport:
    """What one load did; `as_metadata` gives the asset's metadata."""

    table: str
    partition: str | None
    file: str
    sha256: str
    rows_read: int
    rows_written: int
    rows_rejected: int
    reasons: list[dict[str, Any]]
    warnings: list[ValidationWarning]
    schema: dict[str, str]
    file_format: str
    code_version: str
    load_id: str = ""
    loaded_at: datetime | None = None
    duration_s: float = 0.0
    status: str = "loaded"

    def as_metadata(self) -> dict[str, Any]:
        return {
            "table": f"{RAW_SCHEMA}.{self.table}",
            "partition": self.partition,
            "file": self.file,
            "sha256": self.sha256,
            "row_count": self.rows_written,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "reject_reasons": self.reasons,
            "schema": dict(self.schema),
            "warnings": [w.as_dict() for w in self.warnings],
            "file_format": self.file_format,
            "code_version": self.code_version,
            "load_id": self.load_id,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class Prepared:
    """A validated input, ready to be written.

    `frame` still holds ``tax_code`` for tables keyed by firm: the writing INSERT
    replaces it by ``firm_id`` (`offshoring.pseudonym.hmac_sql`, with `key`), so the
    code never reaches a table. Neither is shown by repr().
    """

    table: str
    partition: str | None
    path: Path
    sha256: str
    frame: pl.DataFrame = field(repr=False)
    rows_read: int = 0
    rows_rejected: int = 0
    reasons: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[ValidationWarning] = field(default_factory=list)
    file_format: str = ""
    delete_where: tuple[str, list[Any]] = ("", [])
    key: bytes | None = field(default=None, repr=False)
    gate: DeliveryGate | None = None  # survey years only


_ACCEPT_HINT = ("If the year is genuinely smaller, accept it for this year: `offshoring run --accept-smaller "
                "{year}` (or `accept_smaller: [{year}]` under delivery_gate in thresholds.yaml); the "
                "acceptance is recorded in raw.load_log.")


def _gate_survey_year(con: Any, year: int, new_rows: int, gate: DeliveryGate, path: Path) -> ValidationWarning | None:
    """Refuse (ContractError) a delivery much smaller than what it replaces or its neighbours.

    Runs inside the load's transaction, before the old rows are deleted. Returns the
    warning recording an acceptance, or None.
    """
    counts = dict(con.execute(f"SELECT year, count(*) FROM {RAW_SCHEMA}.survey_returns GROUP BY year").fetchall())
    old = int(counts.get(int(year), 0))
    problem = None
    if old:
        if new_rows < old * (1 - gate.max_shrink_share):
            problem = (f"the delivery has {new_rows:,} returns where the one it replaces had {old:,} "
                       f"({(new_rows - old) / old:+.0%}; at most -{gate.max_shrink_share:.0%} is accepted "
                       f"without confirmation)")
    else:
        below = [y for y in counts if y < year]
        above = [y for y in counts if y > year]
        near = ([max(below)] if below else []) + ([min(above)] if above else [])
        if near:
            ref = sum(counts[y] for y in near) / len(near)
            if new_rows < gate.min_share_of_neighbours * ref:
                years = " and ".join(str(y) for y in near)
                problem = (f"the delivery has {new_rows:,} returns, {new_rows / ref:.0%} of the "
                           f"{ref:,.0f} of its neighbouring year{'s' if len(near) > 1 else ''} {years} "
                           f"(at least {gate.min_share_of_neighbours:.0%} is accepted without confirmation)")
        elif new_rows == 0:
            problem = "the delivery holds no returns"
    if problem is None:
        return None
    if int(year) in gate.accept_smaller:
        return ValidationWarning("accepted_smaller_delivery", "survey_returns", None, new_rows,
                                 f"accepted by the user for {year}: {problem}")
    raise ContractError(path, [Failure("smaller_delivery", None, detail=problem)],
                        n_rows_rejected=0, note=_ACCEPT_HINT.format(year=int(year)))


def _column_map(column_map: Any, path: Path) -> ColumnMap:
    # With no map given, a file in the contract's layout (<raw>/survey/..., <raw>/aida/...)
    # takes <raw>/column_map.yaml when there is one.
    if column_map is None and path.parent.name in _CONTRACT_FOLDERS:
        return as_column_map(None, path.parent.parent)
    return as_column_map(column_map)


def _empty_reasons(empty_rows: int) -> list[dict[str, Any]]:
    if not empty_rows:
        return []
    return [{"rule": "empty_row", "column": None, "n_rows": empty_rows, "first_rows": [],
             "description": "row with every cell empty, skipped"}]


def _select(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """The table's columns, typed; ``tax_code`` stands in for ``firm_id`` until the INSERT."""
    dtypes = {"VARCHAR": pl.String, "INTEGER": pl.Int32, "DOUBLE": pl.Float64, "TINYINT": pl.Int8,
              "BOOLEAN": pl.Boolean, "DATE": pl.Date, "BIGINT": pl.Int64}
    cols = [("tax_code" if c == "firm_id" else c, t) for c, t in RAW_TABLES[table]]
    return frame.select(pl.col(c).cast(dtypes[t]) for c, t in cols)


# ---------------------------------------------------------------------------
# Preparing each input (read, validate, derive from the tax code; no database)
# ---------------------------------------------------------------------------


def _check_key(key: Any) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise PseudonymKeyError("a pseudonymisation key (bytes) is needed: see offshoring.pseudonym.resolve_key")
    return bytes(key)


def prepare_survey_year(path: str | Path, year: int, *, key: bytes, column_map: Any = None,
                        gate: DeliveryGate | None = None, raw_dir: str | Path | None = None) -> Prepared:
    """`raw_dir`: the raw folder whose municipality list (override or bundled) the returns'
    municipality codes must be placeable in (default: the folder of a file at ``<raw>/survey/``)."""
    key = _check_key(key)
    path = Path(path)
    named = survey_reader.year_of_file(path)
    if named is not None and named != int(year):
        raise ContractError(path, [Failure("year_mismatch", None,
                                           detail=f"the file name says {named}, the load says {int(year)}")])
    cmap = _column_map(column_map, path)
    raw = survey_reader.read_survey_raw(path, cmap)
    with _rows_read(raw.rows_read):
        typed = survey_reader.parse_survey(raw, int(year), cmap,
                                           municipality_list=_municipality_list(path, raw_dir, "survey"))
    typed = tax_code_fields(typed)
    warnings = survey_warnings(typed)
    out = typed.with_columns(pl.lit(path.name).alias("source_file"))
    return Prepared(
        table="survey_returns", partition=str(int(year)), path=path,
        sha256=raw.sha256 or sha256_file(path), frame=_select(out, "survey_returns"),
        rows_read=raw.rows_read, rows_rejected=raw.empty_rows, reasons=_empty_reasons(raw.empty_rows),
        warnings=warnings, file_format=raw.file_format,
        delete_where=("year = ?", [int(year)]), key=key, gate=gate if gate is not None else DeliveryGate(),
    )


def _municipality_list(path: Path, raw_dir: str | Path | None, folder: str) -> Path:
    """The municipality list a delivery's geography is checked against: the user's list in
    ``<raw>/reference/`` if there is one, else the bundled one (`layout.municipality_list_path`).
    Without `raw_dir`, a file in the contract's layout (``<raw>/<folder>/...``) takes its raw folder's."""
    if raw_dir is None and path.parent.name == folder:
        raw_dir = path.parent.parent
    return municipality_list_path(raw_dir)


def prepare_aida_firms(path: str | Path, *, key: bytes, column_map: Any = None,
                       raw_dir: str | Path | None = None) -> Prepared:
    """`raw_dir`: the raw folder, whose municipality list (override or bundled) says which
    province sigle are valid; see `_municipality_list`."""
    key = _check_key(key)
    path = Path(path)
    cmap = _column_map(column_map, path)
    municipalities = _municipality_list(path, raw_dir, "aida")
    raw = aida_reader.read_aida_firms_raw(path, cmap)
    with _rows_read(raw.rows_read):
        _, long = aida_reader.parse_aida_firms(raw, cmap, municipality_list=municipalities)
    long = tax_code_fields(long)
    warnings = check_character_warnings(long.unique("source_row"), "aida_firm_years")
    out = long.with_columns(pl.lit(path.name).alias("source_file"))
    return Prepared(
        table="aida_firm_years", partition=None, path=path, sha256=raw.sha256 or sha256_file(path),
        frame=_select(out, "aida_firm_years"), rows_read=raw.rows_read, rows_rejected=raw.empty_rows,
        reasons=_empty_reasons(raw.empty_rows), warnings=warnings, file_format=raw.file_format, key=key,
    )


def prepare_aida_subsidiaries(path: str | Path, *, key: bytes, column_map: Any = None) -> Prepared:
    key = _check_key(key)
    path = Path(path)
    cmap = _column_map(column_map, path)
    raw = aida_reader.read_aida_subsidiaries_raw(path, cmap)
    with _rows_read(raw.rows_read):
        typed = aida_reader.parse_aida_subsidiaries(raw)
    typed = tax_code_fields(typed)
    warnings = check_character_warnings(typed, "aida_subsidiaries")
    n = aida_reader.unknown_countries(typed)
    if n:
        warnings.append(ValidationWarning(
            "unknown_country", "aida_subsidiaries", "country_iso2", n,
            f"{n} participations in a country code outside ISO 3166-1, classified as 'other'",
        ))
    n = int(typed.select(pl.struct("tax_code", "subsidiary_name", "country_iso2", "first_year")
                         .is_duplicated().sum()).item())
    if n:
        warnings.append(ValidationWarning(
            "duplicate_participation", "aida_subsidiaries", None, n,
            f"{n} rows are alike in parent, subsidiary name, country and first year; all are kept",
        ))
    out = typed.with_columns(pl.lit(path.name).alias("source_file"))
    return Prepared(
        table="aida_subsidiaries", partition=None, path=path, sha256=raw.sha256 or sha256_file(path),
        frame=_select(out, "aida_subsidiaries"), rows_read=raw.rows_read, rows_rejected=raw.empty_rows,
        reasons=_empty_reasons(raw.empty_rows), warnings=warnings, file_format=raw.file_format, key=key,
    )


def prepare_municipalities(path: str | Path | None = None) -> Prepared:
    from offshoring import geo

    p = Path(path) if path is not None else geo.bundled_list_path()
    frame = ref_reader.read_municipality_list(p)
    return Prepared(
        table="municipalities", partition=None, path=p, sha256=sha256_file(p),
        frame=_select(frame, "municipalities"), rows_read=frame.height,
        file_format="istat municipality list (csv; separator=';')",
    )


def prepare_llma(path: str | Path, *, column_map: Any = None, raw_dir: str | Path | None = None) -> Prepared:
    """`raw_dir`: the raw folder whose municipality list the map's codes must be in (default:
    the folder of a file at ``<raw>/reference/``)."""
    path = Path(path)
    frame, raw = ref_reader.read_llma(path, _column_map(column_map, path),
                                      municipality_list=_municipality_list(path, raw_dir, "reference"))
    return Prepared(
        table="llma", partition=None, path=path, sha256=raw.sha256 or sha256_file(path),
        frame=_select(frame, "llma"), rows_read=raw.rows_read, rows_rejected=raw.empty_rows,
        reasons=_empty_reasons(raw.empty_rows), file_format=raw.file_format,
    )


def prepare_census_employment(path: str | Path, *, column_map: Any = None) -> Prepared:
    path = Path(path)
    frame, raw = ref_reader.read_census_employment(path, _column_map(column_map, path))
    return Prepared(
        table="census_employment", partition=None, path=path, sha256=raw.sha256 or sha256_file(path),
        frame=_select(frame, "census_employment"), rows_read=raw.rows_read, rows_rejected=raw.empty_rows,
        reasons=_empty_reasons(raw.empty_rows), file_format=raw.file_format,
    )


class _rows_read:
    """Attach the number of rows read to a ContractError raised inside the block."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, ContractError):
            exc.rows_read = self.n
        return False


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def write_prepared(con: Any, prepared: Prepared, *, code_version: str | None = None,
                   identity: Identity | None = None, database: str | Path = "the warehouse",
                   _before_commit: Callable[[Any], None] | None = None) -> LoadReport:
    """Replace the prepared part of its table and log the load, in one transaction.

    Inside the transaction and before anything is deleted: the warehouse's `identity`
    (origin and key) is compared with the run's, and a survey year passes its
    `DeliveryGate`. A refusal rolls back, so the table stays as it was.
    """
    started = time.perf_counter()
    create_schema(con)
    table = f"{RAW_SCHEMA}.{prepared.table}"
    cols = [c for c, _ in RAW_TABLES[prepared.table]]
    col_list = ", ".join(f'"{c}"' for c in cols)
    report = LoadReport(
        table=prepared.table, partition=prepared.partition, file=str(prepared.path),
        sha256=prepared.sha256, rows_read=prepared.rows_read, rows_written=prepared.frame.height,
        rows_rejected=prepared.rows_rejected, reasons=prepared.reasons, warnings=prepared.warnings,
        schema=dict(RAW_TABLES[prepared.table]), file_format=prepared.file_format,
        code_version=code_version or default_code_version(), load_id=uuid.uuid4().hex,
        loaded_at=datetime.now(timezone.utc).replace(tzinfo=None),
    )
    select = [f'"{c}"' for c in cols]
    insert_params: list[Any] = []
    if "firm_id" in cols:
        if "tax_code" not in prepared.frame.columns or not prepared.key:
            raise PseudonymKeyError(f"{prepared.table}: tax codes and a key are needed to write firm_id")
        expr, insert_params = hmac_sql("tax_code", prepared.key)
        select[cols.index("firm_id")] = f'{expr} AS "firm_id"'
    view = f"_offshoring_new_{report.load_id}"
    con.register(view, prepared.frame.to_arrow())
    try:
        con.begin()
        try:
            if identity is not None:
                ensure_identity(con, identity, database)
            if prepared.gate is not None and prepared.partition is not None:
                accepted = _gate_survey_year(con, int(prepared.partition), prepared.frame.height,
                                             prepared.gate, prepared.path)
                if accepted is not None:
                    report.warnings = [*report.warnings, accepted]
            where, params = prepared.delete_where
            con.execute(f"DELETE FROM {table}" + (f" WHERE {where}" if where else ""), params)
            con.execute(f"INSERT INTO {table} ({col_list}) SELECT {', '.join(select)} FROM {view}", insert_params)
            report.duration_s = time.perf_counter() - started
            _insert_log(con, report)
            if _before_commit is not None:
                _before_commit(con)
            _fault_injection_pause()
            con.commit()
            _fault_injection_pause(FAULT_PAUSE_AFTER_ENV, prepared.table)
        except BaseException as exc:
            _rollback_quietly(con)
            raise _plain_io_error(exc, database) from exc
    finally:
        try:
            con.unregister(view)
        except Exception:  # noqa: BLE001 - a failed unregister must not hide the real error
            pass
    return report


def _rollback_quietly(con: Any) -> None:
    """Roll back if a transaction is still open; DuckDB aborts it by itself on some errors
    (a full disk), and "no transaction is active" must not replace the real cause."""
    try:
        con.rollback()
    except Exception:  # noqa: BLE001
        pass


class WarehouseWriteError(RuntimeError):
    """The warehouse could not be written (disk full, file not writable); nothing was replaced."""


def _plain_io_error(exc: BaseException, database: str | Path) -> BaseException:
    """A full disk or an unwritable file as one plain sentence; other errors unchanged."""
    text = str(exc).lower()
    if "no space left" in text or "disk full" in text or "not enough space" in text:
        return WarehouseWriteError(f"The disk holding {database} is full: nothing was written and the "
                                   f"warehouse is as it was. Free space (or point OFFSHORING_DB elsewhere) "
                                   f"and run again.")
    if "permission denied" in text or "read-only file system" in text:
        return WarehouseWriteError(f"{database} cannot be written (permission denied or read-only): "
                                   f"nothing was replaced.")
    return exc


FAULT_PAUSE_ENV, FAULT_PAUSE_AFTER_ENV, FAULT_MARKER_ENV = settings.ENV_FAULTS


def _fault_injection_pause(variable: str = FAULT_PAUSE_ENV, table: str | None = None) -> None:
    """Test-only fault injection: with OFFSHORING_FAULT_PAUSE_BEFORE_COMMIT=<seconds>,
    touch OFFSHORING_FAULT_MARKER and wait inside the open transaction, so a test can
    kill the process mid-load (with ..._AFTER_COMMIT, just after a load was committed,
    before the run has said so; ``<seconds>:<table>`` pauses only the loads of that raw
    table). Unset (always, outside tests) it does nothing."""
    pause = os.environ.get(variable)
    if not pause:
        return
    pause, _, only = pause.partition(":")
    if only and only != table:
        return
    marker = os.environ.get(FAULT_MARKER_ENV)
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(float(pause))


def _insert_log(con: Any, report: LoadReport) -> None:
    cols = [c for c, _ in RAW_TABLES["load_log"]]
    values = {
        "load_id": report.load_id, "table_name": report.table, "partition": report.partition,
        "file": report.file, "sha256": report.sha256, "rows_read": report.rows_read,
        "rows_written": report.rows_written, "rows_rejected": report.rows_rejected,
        "reject_reasons": json.dumps(report.reasons), "loaded_at": report.loaded_at,
        "code_version": report.code_version, "status": report.status,
        "warnings": warnings_json(report.warnings), "file_format": report.file_format,
        "duration_s": report.duration_s,
    }
    con.execute(
        f"INSERT INTO {RAW_SCHEMA}.load_log ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [values[c] for c in cols],
    )


def log_rejection(con: Any, table: str, partition: str | None, path: Path, error: ContractError, *,
                  code_version: str | None = None, started: float | None = None) -> LoadReport:
    """Record a rejected file in ``raw.load_log`` (its own transaction); data tables untouched."""
    create_schema(con)
    try:
        digest = sha256_file(path)
    except OSError:
        digest = ""
    report = LoadReport(
        table=table, partition=partition, file=str(path), sha256=digest,
        rows_read=int(getattr(error, "rows_read", 0) or 0), rows_written=0,
        rows_rejected=int(error.n_rows_rejected), reasons=error.reasons, warnings=[],
        schema=dict(RAW_TABLES[table]), file_format="", code_version=code_version or default_code_version(),
        load_id=uuid.uuid4().hex, loaded_at=datetime.now(timezone.utc).replace(tzinfo=None),
        duration_s=(time.perf_counter() - started) if started else 0.0, status="rejected",
    )
    con.begin()
    try:
        _insert_log(con, report)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return report


def _load(con: Any, table: str, partition: str | None, path: Path | None, prepare: Callable[[], Prepared], *,
          code_version: str | None, log_rejections: bool, identity: Identity | None = None,
          database: str | Path = "the warehouse") -> LoadReport:
    started = time.perf_counter()
    try:
        prepared = prepare()
        report = write_prepared(con, prepared, code_version=code_version, identity=identity, database=database)
    except ContractError as exc:
        # a file refused by the contract or by the delivery gate (rolled back): logged as rejected;
        # the asset layer can show the rejected attempt's metadata from `exc.report`
        if log_rejections and path is not None:
            exc.report = log_rejection(con, table, partition, Path(path), exc, code_version=code_version,
                                       started=started)
        raise
    report.duration_s = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------
# Public load functions
# ---------------------------------------------------------------------------


def load_survey_year(con: Any, path: str | Path, year: int, *, key: bytes, column_map: Any = None,
                     gate: DeliveryGate | None = None, code_version: str | None = None,
                     log_rejections: bool = True,
        identity: Identity | None = None, database: str | Path = "the warehouse") -> LoadReport:
    """Replace `year` in ``raw.survey_returns`` with the delivery at `path`.

    `gate` (default `DeliveryGate()`) refuses a delivery much smaller than what it replaces.
    Raises `ContractError` (nothing written) when the file breaks the contract.
    `identity` and `database`: see `write_prepared`.
    """
    return _load(con, "survey_returns", str(int(year)), Path(path),
                 lambda: prepare_survey_year(path, year, key=key, column_map=column_map, gate=gate),
                 code_version=code_version, log_rejections=log_rejections,
                 identity=identity, database=database)


def load_aida_firms(con: Any, path: str | Path, *, key: bytes, column_map: Any = None,
                    code_version: str | None = None, log_rejections: bool = True,
        identity: Identity | None = None, database: str | Path = "the warehouse",
                    raw_dir: str | Path | None = None) -> LoadReport:
    """Replace ``raw.aida_firm_years`` with the (wide) AIDA export at `path`, made long.

    `raw_dir`: the raw folder whose municipality list gives the valid province sigle
    (default: the folder of a file at ``<raw>/aida/``, else the bundled list)."""
    return _load(con, "aida_firm_years", None, Path(path),
                 lambda: prepare_aida_firms(path, key=key, column_map=column_map, raw_dir=raw_dir),
                 code_version=code_version, log_rejections=log_rejections,
                 identity=identity, database=database)


def load_aida_subsidiaries(con: Any, path: str | Path, *, key: bytes, column_map: Any = None,
                           code_version: str | None = None, log_rejections: bool = True,
        identity: Identity | None = None, database: str | Path = "the warehouse") -> LoadReport:
    """Replace ``raw.aida_subsidiaries``; each participation gets its destination region."""
    return _load(con, "aida_subsidiaries", None, Path(path),
                 lambda: prepare_aida_subsidiaries(path, key=key, column_map=column_map),
                 code_version=code_version, log_rejections=log_rejections,
                 identity=identity, database=database)


def load_municipalities(con: Any, path: str | Path | None = None, *, code_version: str | None = None,
                        log_rejections: bool = True,
        identity: Identity | None = None, database: str | Path = "the warehouse") -> LoadReport:
    """Replace ``raw.municipalities`` with the ISTAT list (bundled, or the user's file at `path`)."""
    from offshoring import geo

    p = Path(path) if path is not None else geo.bundled_list_path()
    return _load(con, "municipalities", None, p, lambda: prepare_municipalities(p),
                 code_version=code_version, log_rejections=log_rejections,
                 identity=identity, database=database)


def load_llma(con: Any, path: str | Path, *, column_map: Any = None, code_version: str | None = None,
              log_rejections: bool = True,
        identity: Identity | None = None, database: str | Path = "the warehouse") -> LoadReport:
    return _load(con, "llma", None, Path(path), lambda: prepare_llma(path, column_map=column_map),
                 code_version=code_version, log_rejections=log_rejections,
                 identity=identity, database=database)


def load_census_employment(con: Any, path: str | Path, *, column_map: Any = None,
                           code_version: str | None = None, log_rejections: bool = True,
        identity: Identity | None = None, database: str | Path = "the warehouse") -> LoadReport:
    return _load(con, "census_employment", None, Path(path),
                 lambda: prepare_census_employment(path, column_map=column_map),
                 code_version=code_version, log_rejections=log_rejections,
                 identity=identity, database=database)
