"""The local instance's storage (orchestration/instance_storage.py): Dagster's SQLite files,
written with kept engines whose connections stay open between writes.

What must hold: the project's instance file selects it; what it writes is what Dagster's own
storage reads (same files, same rows); a run still shows in the web UI while it runs (the UI
follows a run by watching its database file, which the storage touches after each write, and
only after writes); a forked process never uses its parent's connection; a long-lived process
keeps a bounded set of engines; wiping the instance still wipes it.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import event as sa_event

from orchestration.instance_storage import RUN_ENGINES_KEPT, PooledEventLogStorage, ProjectSqliteStorage

ROOT = Path(__file__).resolve().parent.parent
N_CHECKS = 6


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "orchestration" / "instance" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _checked_asset(attached: threading.Event | None = None, release: threading.Event | None = None):
    """An asset with checks; with the two events it waits for `attached` before its first check
    and for `release` after it (so a test can watch the run while it is open)."""
    @dg.asset(check_specs=[dg.AssetCheckSpec(f"c{i}", asset="checked") for i in range(N_CHECKS)])
    def checked():
        yield dg.MaterializeResult(metadata={"rows": 3})
        for i in range(N_CHECKS):
            if i == 0 and attached is not None:
                assert attached.wait(60), "the test never watched the run"
            yield dg.AssetCheckResult(check_name=f"c{i}", passed=i != 2, description=f"check {i}")
            if i == 0 and release is not None:
                assert release.wait(60), "the test never released the asset"

    return checked


def _stock_instance(home: Path, tmp_path: Path) -> dg.DagsterInstance:
    """Dagster's own SQLite storage over the same folder (no project class)."""
    cfg = tmp_path / "stock"
    cfg.mkdir(exist_ok=True)
    (cfg / "dagster.yaml").write_text(f"telemetry:\n  enabled: false\nstorage:\n  sqlite:\n    base_dir: {home}\n")
    return dg.DagsterInstance.from_config(str(cfg))


def test_the_instance_file_selects_it_and_dagster_reads_what_it_writes(home, tmp_path):
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert instance.get_ref().storage_data.class_name == ProjectSqliteStorage.__name__
        assert isinstance(storage, PooledEventLogStorage)
        connects: list[str] = []
        index_engine = storage._engine("index")  # noqa: SLF001
        sa_event.listen(index_engine, "connect", lambda *_: connects.append("index"))
        result = dg.materialize([_checked_asset()], instance=instance, raise_on_error=False)
        assert storage._engine("index") is index_engine  # noqa: SLF001 (the same engine all along)
        run_id = result.run_id
        run_file = home / "history" / "runs" / f"{run_id}.db"
        touched = run_file.stat().st_mtime_ns
        time.sleep(0.05)
        ours = [(e.event_type_value, e.step_key) for e in
                (r.dagster_event for r in instance.all_logs(run_id)) if e is not None]
        # reading the run's events did not touch its file (a watcher reading would wake itself)
        assert run_file.stat().st_mtime_ns == touched
    # ~20 index writes in that run (planned, evaluated, materialized), one connection for all
    assert connects == [], "the index connection was opened again instead of kept"
    assert (home / "history" / "runs" / f"{run_id}.db").is_file()
    assert (home / "history" / "runs" / "index.db").is_file()
    with _stock_instance(home, tmp_path) as stock:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        theirs = [(e.event_type_value, e.step_key) for e in
                  (r.dagster_event for r in stock.all_logs(run_id)) if e is not None]
        assert theirs == ours
        mat = stock.get_latest_materialization_event(dg.AssetKey("checked"))
        assert mat is not None and mat.run_id == run_id
        assert mat.asset_materialization.metadata["rows"].value == 3
        # the cross-run index has every check's evaluation (read through Dagster's own storage)
        for i in range(N_CHECKS):
            key = dg.AssetCheckKey(dg.AssetKey("checked"), f"c{i}")
            rec = stock.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
            assert rec.run_id == run_id
            assert rec.event.dagster_event.event_specific_data.passed is (i != 2)


def test_a_running_run_is_seen_while_it_runs(home):
    """The web UI's live view: a watch on the run's database sees its events before the run
    ends (the storage touches the run's file after each write)."""
    attached, release = threading.Event(), threading.Event()
    asset = _checked_asset(attached, release)
    seen: list[str] = []
    with dg.DagsterInstance.get() as instance:
        worker = threading.Thread(target=dg.materialize, args=([asset],), kwargs={"instance": instance,
                                                                                    "raise_on_error": False})
        worker.start()
        try:
            deadline = time.monotonic() + 60
            while not instance.get_runs() and time.monotonic() < deadline:
                time.sleep(0.05)
            run_id = instance.get_runs()[0].run_id
            watcher = dg.DagsterInstance.get()  # another instance object, as the web server has
            watcher.event_log_storage.watch(
                run_id, None, lambda entry, _cursor: seen.append(
                    entry.dagster_event.event_type_value if entry.dagster_event else "log"))
            attached.set()  # the first check's evaluation is written after the watch began
            while "ASSET_CHECK_EVALUATION" not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "ASSET_CHECK_EVALUATION" in seen, f"the watch saw only {seen} while the run was open"
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
        finally:
            attached.set()
            release.set()
            worker.join(60)
        watcher.dispose()
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS


def test_a_forked_child_opens_its_own_connection(home):
    with dg.DagsterInstance.get() as instance:
        dg.materialize([_checked_asset()], instance=instance)
        storage = instance.event_log_storage
        parent_engine = storage._engine("index")  # noqa: SLF001
        pid = os.fork()
        if pid == 0:  # child: the kept engine (and its open connection) must not be reused
            code = 0 if storage._engine("index") is not parent_engine else 3  # noqa: SLF001
            try:
                dg.materialize([_checked_asset()], instance=instance)
            except BaseException:
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert storage._engine("index") is parent_engine  # noqa: SLF001
        assert len(instance.get_runs()) == 2


def test_engines_are_bounded_and_wipe_still_wipes(home):
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        for i in range(RUN_ENGINES_KEPT + 5):
            storage._engine(f"run-{i}")  # noqa: SLF001
        kept = list(storage._engines)  # noqa: SLF001
        assert len(kept) <= RUN_ENGINES_KEPT + 1 and any(k.endswith("index.db") for k in kept)
        assert kept[-1].endswith(f"run-{RUN_ENGINES_KEPT + 4}.db")  # the most recent stay
        result = dg.materialize([_checked_asset()], instance=instance)
        assert instance.all_logs(result.run_id)
        run_file = home / "history" / "runs" / f"{result.run_id}.db"
        assert run_file.is_file()
        instance.wipe()
        assert not run_file.exists() and (home / "history" / "runs" / "index.db").is_file()
        assert not instance.all_logs(result.run_id)
        assert instance.get_latest_materialization_event(dg.AssetKey("checked")) is None
        result = dg.materialize([_checked_asset()], instance=instance)  # and it writes again
        assert instance.get_latest_materialization_event(dg.AssetKey("checked")).run_id == result.run_id


def test_the_command_line_brings_an_unedited_instance_file_up_to_date(tmp_path, monkeypatch):
    """`offshoring` copies the instance file into DAGSTER_HOME when absent; an unedited copy
    from an earlier version (its bytes in git history) is replaced; an edited one is kept."""
    from orchestration.cli import ensure_dagster_home

    shipped = (ROOT / "orchestration" / "instance" / "dagster.yaml").read_bytes()
    earlier = EARLIER_INSTANCE_FILE.encode()
    for case, before, after in (("absent", None, shipped), ("earlier", earlier, shipped),
                                ("edited", earlier + b"# mine\n", earlier + b"# mine\n")):
        home = tmp_path / case
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        if before is not None:
            home.mkdir()
            (home / "dagster.yaml").write_bytes(before)
        assert ensure_dagster_home() == home
        assert (home / "dagster.yaml").read_bytes() == after, case


#: the instance file as commit e925c74 shipped it (`git show e925c74:orchestration/instance/dagster.yaml`)
EARLIER_INSTANCE_FILE = """\
# Local Dagster instance (copied into DAGSTER_HOME by `offshoring run` when absent).
# DuckDB allows one writing process per file: every asset that writes is in the
# pool "duckdb_writer", limited here to one step at a time across all runs
# (UI launches, schedules, sensors and backfills).
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
# The daemon marks failed the runs whose worker died and frees their pool slots.
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
"""


def test_a_connection_that_failed_is_not_kept(home):
    """A use that raised does not go back to the pool (a result it left open could pin an old
    read snapshot on the kept connection): the next use opens a fresh connection and sees
    what other writers wrote since."""
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        engine = storage._engine("index")  # noqa: SLF001
        connects: list[int] = []
        sa_event.listen(engine, "connect", lambda *_: connects.append(1))
        with pytest.raises(RuntimeError, match="boom"):
            with storage.index_connection() as conn:
                conn.exec_driver_sql("SELECT count(*) FROM event_logs").fetchall()
                raise RuntimeError("boom")
        with storage.index_connection() as conn:
            before = conn.exec_driver_sql("SELECT count(*) FROM event_logs").scalar()
        assert connects == [1]  # the failed connection was dropped, one new one made
        with storage.index_connection() as conn:  # and that one is kept
            conn.exec_driver_sql("SELECT 1").fetchall()
        assert connects == [1]
        with dg.DagsterInstance.get() as other:  # another writer (as another process would be)
            dg.materialize([_checked_asset()], instance=other)
        with storage.index_connection() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM event_logs").scalar() > before
