"""Which inputs of a raw folder differ from what the warehouse holds, checked before any load.

`check_changed_inputs` hashes every input and compares it with ``raw.load_log``; only a
file that differs is read, validated and passed through the delivery gate (`DeliveryGate`),
by `offshoring.load`'s preparers, imported then. An unchanged folder (the command line's
no-op) is decided without polars, pandera or the readers. `offshoring.load` re-exports
every name here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offshoring.contract import RAW_SCHEMA
from offshoring.readers.layout import sha256_file


@dataclass(frozen=True)
class DeliveryGate:
    """How much a survey delivery may differ in size from what it replaces, before it replaces it.

    A re-delivered year may lose at most `max_shrink_share` of the rows it replaces; a new
    year must hold at least `min_share_of_neighbours` of the mean of the nearest loaded
    years before and after it. A year in `accept_smaller` passes (the acceptance is
    recorded in ``raw.load_log``). A delivery with no returns never passes unaccepted.
    """

    max_shrink_share: float = 0.10
    min_share_of_neighbours: float = 0.5
    accept_smaller: frozenset[int] = frozenset()

    @classmethod
    def from_spec(cls, spec: Any, accept_years: Iterable[int] = ()) -> "DeliveryGate":
        """From the study specification's `delivery_gate` (thresholds), plus years accepted
        for this run (``--accept-smaller``)."""
        return cls(max_shrink_share=spec.max_shrink_share, min_share_of_neighbours=spec.min_share_of_neighbours,
                   accept_smaller=frozenset(int(y) for y in [*spec.accept_smaller, *accept_years]))

    def __post_init__(self) -> None:
        if not 0 <= self.max_shrink_share < 1:
            raise ValueError("delivery_gate.max_shrink_share must be in [0, 1)")
        if not 0 <= self.min_share_of_neighbours <= 1:
            raise ValueError("delivery_gate.min_share_of_neighbours must be in [0, 1]")


def latest_loads(database: str | Path | None) -> dict[tuple[str, str | None], tuple[str, str]]:
    """(SHA-256, code version) of the file behind each raw table's (and survey year's) latest
    successful load, from raw.load_log; empty when there is no warehouse yet."""
    import duckdb

    con = _open_read_only(database)
    if con is None:
        return {}
    try:
        rows = con.execute(
            f"SELECT table_name, partition, arg_max(sha256, loaded_at), arg_max(code_version, loaded_at) "
            f"FROM {RAW_SCHEMA}.load_log WHERE status = 'loaded' GROUP BY ALL").fetchall()
    except duckdb.Error:
        return {}
    finally:
        con.close()
    return {(t, p): (sha, ver) for t, p, sha, ver in rows}


def _loaded_hashes(database: str | Path | None) -> dict[tuple[str, str | None], str]:
    """SHA-256 of the file behind what each raw table (and survey year) holds now."""
    return {key: sha for key, (sha, _version) in latest_loads(database).items()}


def check_changed_inputs(raw_dir: str | Path, database: str | Path | None, *, key: bytes,
                         gate: DeliveryGate | None = None) -> list[Path]:
    """Read and validate every input of `raw_dir` whose file differs from what the warehouse
    holds, and pass each changed survey year through the delivery gate; write nothing.

    Run before any load, so that a folder with one bad delivery among several changed ones
    is refused whole (raises `ContractError` naming the file) instead of being half loaded.
    Returns the files checked (unchanged ones are skipped: the warehouse holds them already).
    """
    from offshoring.readers.layout import discover_raw_files

    from offshoring.version import code_version

    files = discover_raw_files(raw_dir)
    # what the run will not reload: the file the warehouse holds, loaded by this code version
    # (the rule of orchestration.pipeline.up_to_date_years); anything else is reloaded, so it
    # is checked here: a new version's stricter reader must refuse before any load, not midway
    version = code_version()
    loads = latest_loads(database)
    loaded = {k: sha for k, (sha, ver) in loads.items() if ver == version}
    gate = gate if gate is not None else DeliveryGate()
    checked: list[Path] = []
    # every reader takes the column map: a map new, changed or removed since the last run makes
    # the run reload every input (orchestration.pipeline.plan_refresh), so every one is checked
    every_input = bool(loads) and (column_map_changed(raw_dir, database)
                                   or municipality_list_changed(raw_dir, database))

    def changed(table: str, partition: str | None, path: Path | None) -> bool:
        return path is not None and (every_input or loaded.get((table, partition)) != sha256_file(path))

    con = None
    opened = False
    try:
        for year, path in sorted(files.survey.items()):
            if not changed("survey_returns", str(year), path):
                continue
            from offshoring import load  # the readers and validation: only for a changed file

            if not opened:
                con, opened = _open_read_only(database), True
            n = load.prepare_survey_year(path, year, key=key, gate=gate, raw_dir=raw_dir).frame.height
            if con is not None and loads:  # the gate against what the warehouse holds, whichever version loaded it
                load._gate_survey_year(con, year, n, gate, path)
            checked.append(path)
    finally:
        if con is not None:
            con.close()
    # table, file, the preparer of offshoring.load, whether it takes the key
    others = (("aida_firm_years", files.aida_firms, "prepare_aida_firms", True),
              ("aida_subsidiaries", files.aida_subsidiaries, "prepare_aida_subsidiaries", True),
              ("llma", files.llma, "prepare_llma", False),
              ("census_employment", files.census_employment, "prepare_census_employment", False),
              ("municipalities", files.municipalities, "prepare_municipalities", False))
    for table, path, preparer, keyed in others:
        if changed(table, None, path):
            from offshoring import load

            prepare = getattr(load, preparer)
            if keyed:
                # AIDA's province sigle are checked against this folder's municipality list
                prepare(path, key=key, **({"raw_dir": raw_dir} if table == "aida_firm_years" else {}))
            else:
                prepare(path)
            checked.append(path)
    return checked


COLUMN_MAP = "column_map.yaml"


def municipality_list_changed(raw_dir: str | Path, database: str | Path | None) -> bool:
    """Whether the user's municipality list in ``<raw>/reference/`` (either name) differs from the
    last complete run's (new, changed or removed): the survey's municipality codes, the LLMA map's
    and AIDA's province sigle are checked against it, so every input is checked again."""
    from offshoring.readers.layout import MUNICIPALITY_OVERRIDES

    return _changed_since_last_run(raw_dir, database, [f"reference/{n}" for n in MUNICIPALITY_OVERRIDES])


def column_map_changed(raw_dir: str | Path, database: str | Path | None) -> bool:
    """Whether ``<raw>/column_map.yaml`` differs from the one the warehouse's last complete run
    read (new, changed or removed)."""
    return _changed_since_last_run(raw_dir, database, [COLUMN_MAP])


def _changed_since_last_run(raw_dir: str | Path, database: str | Path | None, rels: list[str]) -> bool:
    """Whether any of the raw folder's files `rels` differs from the last complete run's record
    (new, changed or removed). A warehouse without a complete run on record cannot tell which
    files its tables were read with: counted as changed."""
    from offshoring.runstate import last_state

    state = last_state(database) if database is not None else None
    if state is None:
        return True
    before = state.get("files") or {}
    for rel in rels:
        path = Path(raw_dir) / rel
        if (sha256_file(path) if path.is_file() else None) != before.get(rel):
            return True
    return False


def _open_read_only(database: str | Path | None) -> Any:
    """A read-only connection to the warehouse, or None (no file, or one that does not open)."""
    import duckdb

    if database is None or not Path(database).is_file():
        return None
    try:
        return duckdb.connect(str(database), read_only=True)
    except duckdb.Error:
        return None
