"""The local instance's SQLite storage, with cheaper event-log writes.

Dagster's SQLite event log (`SqliteEventLogStorage`) builds a new SQLAlchemy engine for
every connection and opens and closes a database connection for every write. A run of
the pipeline records about 400 events, and most of them (materializations, asset-check
evaluations and their "planned" events) are written twice: to the run's own database
and to the cross-run index (``history/runs/index.db``). Opening and closing the index
for each event, and the checkpoint SQLite runs when the last connection to a database
in WAL mode closes, were most of what Dagster added to the pipeline's own work.

This storage is Dagster's, file for file and statement for statement, with two changes
in how connections are made (benchmark: ``bench/bench_event_log.py``):

* one engine per database file, kept (a small least-recently-used set of run databases
  plus the index) instead of one per connection;
* the index database's connection is kept open between writes (a one-connection
  pool). The run databases still open and close a connection per write, because the
  web UI follows a running run by watching its database file change, and a
  connection's close is what writes the file (the WAL checkpoint).

Everything else (locking between processes, SQLite's journal and synchronous modes,
durability, the files' layout under ``DAGSTER_HOME``) is as Dagster has it. Named in
``orchestration/instance/dagster.yaml``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
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


class PooledIndexEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with kept engines and a kept connection to the index."""

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
        args = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        if shard == INDEX_SHARD_NAME:
            # one connection, used under the storage's lock (so by one thread at a time)
            engine = create_engine(conn_string, poolclass=QueuePool, pool_size=1, max_overflow=0,
                                   connect_args={**args, "check_same_thread": False})
        else:
            engine = create_engine(conn_string, poolclass=NullPool, connect_args=args)
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
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def wipe(self) -> None:
        with self._db_lock:
            self._forget_engines()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            self._forget_engines()


class ProjectSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, event log, schedules under ``base_dir``) with the
    event log of `PooledIndexEventLogStorage`."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # as DagsterSqliteStorage.__init__, with the event log below
        self.base_dir = str(base_dir)
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(self.base_dir))
        self._event_log_storage = PooledIndexEventLogStorage(_event_logs_directory(self.base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(self.base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any):
        return cls.from_local(inst_data=inst_data, **config_value)

