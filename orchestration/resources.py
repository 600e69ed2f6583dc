"""Resources: the DuckDB warehouse and the folders the pipeline reads and writes."""


import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

from offshoring import settings


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file. One connection per asset; writes run in a pool of one.

    DuckDB allows a single writing process per file, so every asset that opens
    the file declares ``pool=WRITER_POOL`` and the instance limits that pool to
    one step at a time across all runs (``orchestration/instance/dagster.yaml``).
    A lock held by anything else is waited for, up to ``lock_timeout_s``.
    """

    database: str
    # Seconds to wait for the file lock when another process (a notebook, a run of
    # another instance) holds the file; the pool already serialises our own runs.
    lock_timeout_s: float = 300.0

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _connect_waiting(str(path), read_only, self.lock_timeout_s)
        try:
            yield con
        finally:
            con.close()


def _connect_waiting(path: str, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class Folders(dg.ConfigurableResource):
    """Where raw files are read, reports written and YAML settings found."""

    raw_dir: str
    reports_dir: str

    @property
    def raw(self) -> Path:
        return Path(self.raw_dir)

    @property
    def reports(self) -> Path:
        return Path(self.reports_dir)


WRITER_POOL = "duckdb_writer"


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment settings (read when definitions load)."""
    return {
        "warehouse": Warehouse(database=str(settings.db_path())),
        "folders": Folders(
            raw_dir=str(settings.raw_dir()), reports_dir=str(settings.reports_dir())
        ),
    }
