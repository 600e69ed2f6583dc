"""What a warehouse holds: its origin (synthetic or real) and which key made its pseudonyms.

A warehouse filled with real returns must never be overwritten by the synthetic demo,
and years pseudonymised under different keys would no longer join (the same firm would
have two ``firm_id``). So the first load writes ``meta.identity`` (origin and a
fingerprint of the key, an HMAC of a fixed text: it identifies the key without revealing
it), and every later load, and the command line before it starts, compares the run's
origin and key with it and refuses a mismatch before anything is written.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ORIGINS = ("synthetic", "real")
_FINGERPRINT_TEXT = b"offshoring warehouse key fingerprint v1"


class IdentityError(RuntimeError):
    """The run's origin or key does not match what the warehouse holds; nothing was written."""


def key_fingerprint(key: bytes) -> str:
    """A short, stable name of a key: HMAC-SHA256(key, fixed text), first 16 hex digits."""
    return hmac.digest(bytes(key), _FINGERPRINT_TEXT, "sha256").hex()[:16]


@dataclass(frozen=True)
class Identity:
    origin: str
    key_fingerprint: str

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, not {self.origin!r}")


def _table_exists(con: Any) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'meta' "
        "AND table_name = 'identity'").fetchall()[0][0])


def stored_identity(con: Any) -> Identity | None:
    """The warehouse's identity, or None for a warehouse nothing was loaded into yet."""
    if not _table_exists(con):
        return None
    row = con.execute("SELECT origin, key_fingerprint FROM meta.identity LIMIT 1").fetchall()
    return Identity(row[0][0], row[0][1]) if row else None


def _loaded_without_identity(con: Any) -> bool:
    """Whether raw data was loaded before identities were recorded (no record to compare with)."""
    has_log = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' "
        "AND table_name = 'load_log'").fetchall()[0][0]
    return bool(has_log) and bool(con.execute(
        "SELECT count(*) FROM raw.load_log WHERE status = 'loaded'").fetchall()[0][0])


def _legacy(database: str | Path) -> str:
    return (f"The warehouse {database} holds loaded data but no record of its origin and key "
            f"(it predates that record). Point OFFSHORING_DB at a new path, or run "
            f"`offshoring run --rekey` to rebuild it from the raw files.")


def mismatch(stored: Identity | None, wanted: Identity, database: str | Path) -> str | None:
    """The plain sentence refusing `wanted` on a warehouse holding `stored`, or None."""
    if stored is None or stored == wanted:
        return None
    db = str(database)
    if stored.origin != wanted.origin:
        if stored.origin == "real":
            return (f"The warehouse {db} holds real survey data; the synthetic demo will not write "
                    f"into it. Point OFFSHORING_DB (and OFFSHORING_REPORTS_DIR) at another path for "
                    f"the demo.")
        return (f"The warehouse {db} holds synthetic demo data; real files are not loaded into it. "
                f"Point OFFSHORING_DB (and OFFSHORING_REPORTS_DIR) at another path, or delete the "
                f"demo warehouse.")
    return (f"The warehouse {db} was pseudonymised with another key (fingerprint "
            f"{stored.key_fingerprint}, this run's key {wanted.key_fingerprint}): years loaded under "
            f"two keys would not join. Use the key it was built with, point OFFSHORING_DB at another "
            f"path, or rebuild it from the raw files under the new key with `offshoring run --rekey`.")


def ensure_identity(con: Any, wanted: Identity, database: str | Path) -> None:
    """Refuse a mismatch; record `wanted` in a warehouse that has none yet.

    Call inside the load's transaction, before anything is replaced: the record and the
    data are committed together. A warehouse that already holds raw tables but no
    identity (built before identities were recorded) is refused rather than guessed.
    """
    stored = stored_identity(con)
    problem = mismatch(stored, wanted, database)
    if problem:
        raise IdentityError(problem)
    if stored is not None:
        return
    if _loaded_without_identity(con):
        raise IdentityError(_legacy(database))
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute("CREATE TABLE IF NOT EXISTS meta.identity (origin VARCHAR NOT NULL, "
                "key_fingerprint VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)")
    con.execute("INSERT INTO meta.identity VALUES (?, ?, ?)",
                [wanted.origin, wanted.key_fingerprint, datetime.now(timezone.utc).replace(tzinfo=None)])


def check_database_file(database: str | Path, wanted: Identity, busy_ok: bool = False) -> str | None:
    """Pre-flight for the command line: the refusal sentence, or None (also when no file yet).

    Opens the file read-only and closes it at once, so it never blocks a writer for long. A
    file another process is writing (a run in progress) is said to be in use (it was "cannot
    be opened ... Is it a DuckDB file?"); with `busy_ok` (the UI, which can watch a run) it
    is not refused: the runs check the identity themselves when they write.
    """
    import re

    import duckdb

    path = Path(database)
    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower() and ("conflicting" in text.lower() or "could not set" in text.lower()):
            if busy_ok:
                return None
            pid = re.search(r"PID (\d+)", text)
            who = f"process {pid.group(1)}" if pid else "another process"
            return (f"The warehouse {path} is in use by {who} (a run in progress, the UI's daemon running "
                    f"one, or a notebook holding it open). Wait until that run ends, or close what holds "
                    f"it, and run again.")
        first = text.splitlines()[0] if text else type(exc).__name__
        return f"The warehouse {path} cannot be opened ({first}). Is it a DuckDB file?"
    try:
        stored = stored_identity(con)
        if stored is None and _loaded_without_identity(con):
            return _legacy(path)
        return mismatch(stored, wanted, path)
    finally:
        con.close()
