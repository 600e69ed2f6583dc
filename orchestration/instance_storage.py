"""The local instance's SQLite storage, with cheaper event-log writes.

Dagster's SQLite event log (`SqliteEventLogStorage`) builds a new SQLAlchemy engine for
every connection and opens and closes a database connection for every write. A run of
the pipeline records about 400 events, and most of them (materializations, asset-check
evaluations and their "planned" events) are written twice: to the run's own database
and to the cross-run index (``history/runs/index.db``). Opening and closing the index
for each event, and the checkpoint SQLite runs when the last connection to a database
in WAL mode closes, were most of what Dagster added to the pipeline's own work.

This storage is Dagster's, file for file and statement for statement, with one change in
how connections are made (benchmark: ``bench/bench_event_log.py``): one engine per database
file, kept with its one connection open between writes (the index, and a small
least-recently-used set of run databases; a fork opens its own). The web UI follows a
running run by watching its database file change, which a connection's close used to do
(the WAL checkpoint); the storage now touches the run's file after each write instead
(never after a read, or a watcher's own reads would wake it again).

Everything else (locking between processes, SQLite's journal and synchronous modes,
durability, the files' layout under ``DAGSTER_HOME``) is as Dagster has it. Named in
``orchestration/instance/dagster.yaml``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

#: run databases whose engines are kept (a long-lived web server reads many runs)
RUN_ENGINES_KEPT = 16


class PooledEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with kept engines, each keeping its one connection open."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()  # before the parent opens anything
        self._pid = os.getpid()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        if self._pid != os.getpid():  # a forked child never uses its parent's connection
            self._forget_engines(close=False)
        conn_string = self.conn_string_for_shard(shard)
        engine = self._engines.get(conn_string)
        if engine is not None:
            self._engines.move_to_end(conn_string)
            return engine
        # one connection per database, used under the storage's lock (one thread at a time)
        engine = create_engine(conn_string, poolclass=QueuePool, pool_size=1, max_overflow=0,
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                             "check_same_thread": False})
        self._engines[conn_string] = engine
        runs = [k for k in self._engines if not k.endswith(f"{INDEX_SHARD_NAME}.db")]
        for old in runs[:-RUN_ENGINES_KEPT]:
            self._engines.pop(old).dispose()
        return engine

    def _forget_engines(self, close: bool = True) -> None:
        engines, self._engines = list(self._engines.values()), OrderedDict()
        self._pid = os.getpid()
        for engine in engines:
            engine.dispose(close=close)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(str(shard))
            if shard not in self._initialized_dbs:
                # Dagster's set-up opens a second connection inside its first: its own engine
                self._initdb(create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                                           connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}))
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                sqlite = conn.connection.dbapi_connection
                before = sqlite.total_changes
                try:
                    with conn.begin():
                        yield conn
                except BaseException:
                    # not returned to the pool: a result still held (by the exception's
                    # traceback, say) would keep its read snapshot open on the kept connection
                    conn.invalidate()
                    raise
                wrote = sqlite.total_changes != before
            if wrote and shard != INDEX_SHARD_NAME:
                # a watcher (the web UI following a run) is woken by the run's file changing;
                # with the connection kept open, only the WAL file changes, so say it here
                # (after writes only: a watcher's own reads must not wake it again)
                with suppress(FileNotFoundError):
                    os.utime(self.path_for_shard(shard))

    def wipe(self) -> None:
        """As Dagster's: every run database deleted, the index emptied; the kept connections
        are closed and the files deleted under the storage's lock, so no thread of this process
        opens a run database between the two."""
        with self._db_lock:
            self._forget_engines()
            suffixes = (".db", ".db-wal", ".db-shm")
            index = {f"{INDEX_SHARD_NAME}{suffix}" for suffix in suffixes}
            for suffix in suffixes:
                for path in Path(self._base_dir).glob(f"*{suffix}"):
                    if path.name not in index:
                        path.unlink(missing_ok=True)
            self._initialized_dbs = set()
        self._wipe_index()

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            self._forget_engines()


class ProjectSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, event log, schedules under ``base_dir``) with the
    event log of `PooledEventLogStorage`."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # as DagsterSqliteStorage.__init__, with the event log below
        self.base_dir = str(base_dir)
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(self.base_dir))
        self._event_log_storage = PooledEventLogStorage(_event_logs_directory(self.base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(self.base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any):
        return cls.from_local(inst_data=inst_data, **config_value)

