"""What the last complete run was made from, so that an unchanged folder is a no-op.

A complete run (every survey year loaded, everything else refreshed) records in the
warehouse the SHA-256 of every input file, the specification's hash, the code version
and the data's origin. The next run with the same state has nothing to do: its outputs
would be the ones already there.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from offshoring.readers.common import sha256_file
from offshoring.truth import contract_files
from offshoring.version import code_version


def inputs_state(raw_dir: str | Path, spec_sha256: str, origin: str) -> dict[str, Any]:
    raw = Path(raw_dir)
    return {
        "files": {p.relative_to(raw).as_posix(): sha256_file(p) for p in contract_files(raw)},
        "spec_sha256": spec_sha256,
        "code_version": code_version(),
        "origin": origin,
    }


def last_state(database: str | Path) -> dict[str, Any] | None:
    """The state of the last complete run recorded in the warehouse, or None."""
    import duckdb

    path = Path(database)
    if not path.is_file():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("SELECT state FROM meta.run_state ORDER BY recorded_at DESC LIMIT 1").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return json.loads(row[0][0]) if row else None


def record_state(database: str | Path, state: dict[str, Any]) -> None:
    import duckdb

    con = duckdb.connect(str(database))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        con.execute("CREATE TABLE IF NOT EXISTS meta.run_state (recorded_at TIMESTAMP, state VARCHAR)")
        con.execute("DELETE FROM meta.run_state")
        con.execute("INSERT INTO meta.run_state VALUES (?, ?)",
                    [datetime.now(timezone.utc).replace(tzinfo=None), json.dumps(state, sort_keys=True)])
    finally:
        con.close()
