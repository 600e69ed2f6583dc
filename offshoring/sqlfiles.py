"""Run the DuckDB SQL files kept under ``sql/``, one file per table it builds."""

from __future__ import annotations

from typing import Any, Mapping

import duckdb

from offshoring.settings import shipped_dir

SQL_DIR = shipped_dir("sql")
#: the shared rules (sector, code layouts, latest filing), created before any other file runs
MACROS = "macros"


def sql_text(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text(encoding="utf-8")


def run_sql(con: duckdb.DuckDBPyConnection, name: str,
            params: Mapping[str, Any] | None = None) -> None:
    """Execute every statement of ``sql/<name>.sql``.

    Parameters are DuckDB named parameters (``$ceiling``); only those a
    statement mentions are passed to it.
    """
    params = dict(params or {})
    if name != MACROS:
        run_sql(con, MACROS)
    for stmt in _statements(sql_text(name)):
        used = {k: v for k, v in params.items() if f"${k}" in stmt}
        con.execute(stmt, used) if used else con.execute(stmt)


def query(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None):
    """The result of ``sql/<name>.sql`` (one SELECT, e.g. a report's aggregates) as a polars frame."""
    return con.sql(sql_text(name), params=dict(params or {}) or None).pl()


def _statements(text: str) -> list[str]:
    out, buf = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            continue
        buf.append(line)
        if stripped.endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            buf = []
    tail = "\n".join(buf).strip()
    if tail:
        out.append(tail)
    return out
