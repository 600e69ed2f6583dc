"""The shared-server instance profile (deploy/dagster.yaml) against a real PostgreSQL.

A throwaway PostgreSQL cluster is started from Debian's `postgresql` binaries on a free
port of 127.0.0.1, with a database and a user with a password. A DAGSTER_HOME holding
deploy/dagster.yaml, unchanged, reaches it through the DAGSTER_PG_* variables. The whole
pipeline runs on a small synthetic dataset, and its runs and events are read back from
PostgreSQL with SQL and through Dagster. Last, `dagster-daemon run` takes a run requested
by the delivery sensor through the queue, as on the server. The refresh (`run_everything`) is
one run: every survey year as a partition range, and what is built from them.

Missing PostgreSQL binaries fail the test (``.ci/run`` installs them), not skip it.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import as_real_files, small_world_config

from assets.partitions import RANGE_END_TAG, RANGE_START_TAG

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_YAML = ROOT / "deploy" / "dagster.yaml"
BIN = Path(sys.executable).parent
FIRMS, SEED = 600, 2
PG_USER, PG_DB = "offshoring_dagster", "offshoring_dagster"


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    db: str
    socket_dir: str

    def env(self) -> dict[str, str]:
        return {"DAGSTER_PG_USERNAME": self.user, "DAGSTER_PG_PASSWORD": self.password,
                "DAGSTER_PG_HOST": self.host, "DAGSTER_PG_DB": self.db,
                "DAGSTER_PG_PORT": str(self.port)}

    def connect(self, **kw):
        import psycopg2

        args = {"host": self.host, "port": self.port, "user": self.user,
                "password": self.password, "dbname": self.db, **kw}
        return psycopg2.connect(**args)


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found under "
                "/usr/lib/postgresql/*/bin or on PATH: install Debian's `postgresql` package "
                "(`apt-get install -y postgresql`; .ci/run does it in CI)", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster of its own: initdb in a temporary folder, pg_ctl start on a free
    port, stopped and removed at the end. As root, the server runs as the `postgres` user
    (PostgreSQL refuses to run as root)."""
    import psycopg2

    bindir = _pg_bindir()
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="offshoring-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.fail("running as root but there is no `postgres` user to run the server "
                        "as: install Debian's `postgresql` package", pytrace=False)
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = base / "data", base / "server.log"
    started = False
    try:
        init = subprocess.run(
            as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                       "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                       "--no-sync"],
            capture_output=True, text=True, timeout=120, check=False)
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        for _ in range(3):  # another process may take the free port before the server does
            port = _free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -c port={port} "
                    f"-c unix_socket_directories={base} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off")
            start = subprocess.run(
                as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                           "-w", "-t", "60", "start"],
                capture_output=True, text=True, timeout=120, check=False)
            started = start.returncode == 0
            if started:
                break
        assert started, f"pg_ctl start failed:\n{start.stdout}{start.stderr}\n" + \
            (log.read_text() if log.exists() else "")

        password = secrets.token_urlsafe(18)
        admin = psycopg2.connect(host=str(base), port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {PG_USER} LOGIN PASSWORD %s", [password])
            cur.execute(f"CREATE DATABASE {PG_DB} OWNER {PG_USER}")
        admin.close()
        yield Postgres("127.0.0.1", port, PG_USER, password, PG_DB, str(base))
    finally:
        if started:
            subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                      "-w", "stop"], capture_output=True, timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _dagster_env(pg: Postgres, root: Path) -> dict[str, str]:
    return {**pg.env(),
            "DAGSTER_HOME": str(root / "dagster_home"),
            "OFFSHORING_RAW_DIR": str(root / "raw"),
            "OFFSHORING_DB": str(root / "warehouse.duckdb"),
            "OFFSHORING_REPORTS_DIR": str(root / "reports"),
            # real mode: the test re-delivers a changed year, which the synthetic mode refuses
            "OFFSHORING_PSEUDONYM_KEY": "postgres-test-key-0123456789abcdef",
            "OFFSHORING_CONFIG_DIR": str(small_world_config(root / "config"))}


RUN_SCRIPT = """
import json, os, sys
from pathlib import Path
import dagster as dg
from orchestration.definitions import build_definitions
from orchestration.pipeline import run_everything
from assets.resources import Folders, Warehouse

defs = build_definitions({
    "warehouse": Warehouse(database=os.environ["OFFSHORING_DB"]),
    "folders": Folders(raw_dir=os.environ["OFFSHORING_RAW_DIR"],
                       reports_dir=os.environ["OFFSHORING_REPORTS_DIR"]),
})
instance = dg.DagsterInstance.get()
try:
    ok = run_everything(Path(os.environ["OFFSHORING_RAW_DIR"]), instance=instance, defs=defs)
finally:
    instance.dispose()
sys.exit(0 if ok else 1)
"""


@pytest.fixture(scope="module")
def deployed(postgres, tmp_path_factory):
    """The pipeline run once on the synthetic default with the deploy profile."""
    from offshoring.synth import generate

    root = tmp_path_factory.mktemp("pg_deploy")
    env = _dagster_env(postgres, root)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    raw = Path(env["OFFSHORING_RAW_DIR"])
    generate(raw, firms=FIRMS, seed=SEED)
    as_real_files(raw)  # real mode (a key): without the generator's marks
    years = sorted(p.stem.rsplit("_", 1)[-1] for p in (raw / "survey").glob("survey_*.*"))
    assert years
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    (root / "pipeline.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return root, env, years


def test_password_is_required_over_tcp(postgres):
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        postgres.connect(password="wrong").close()


def test_runs_and_events_are_in_postgres(postgres, deployed):
    _, _, years = deployed
    con = postgres.connect()
    try:
        with con.cursor() as cur:
            cur.execute("SELECT run_id, pipeline_name, status FROM runs ORDER BY create_timestamp")
            runs = cur.fetchall()
            assert {r[2] for r in runs} == {"SUCCESS"}, runs
            by_job: dict[str, list[str]] = {}
            for run_id, job, _ in runs:
                by_job.setdefault(job, []).append(run_id)
            # one run: every survey year (a partition range) and everything built from them
            assert set(by_job) == {"refresh_outputs"}
            assert len(by_job["refresh_outputs"]) == 1
            refresh_id = by_job["refresh_outputs"][0]

            cur.execute("SELECT key, value FROM run_tags WHERE run_id = %s AND key IN (%s, %s)",
                        [refresh_id, RANGE_START_TAG, RANGE_END_TAG])
            assert dict(cur.fetchall()) == {RANGE_START_TAG: years[0], RANGE_END_TAG: years[-1]}

            cur.execute("SELECT partition FROM dynamic_partitions "
                        "WHERE partitions_def_name = 'survey_year' ORDER BY partition")
            assert [r[0] for r in cur.fetchall()] == years

            cur.execute("SELECT run_id, event FROM event_logs "
                        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
                        [json.dumps(["outsourcing_probit"])])
            probit = cur.fetchall()
            assert [r[0] for r in probit] == [refresh_id]
            assert "outsourcing_probit" in probit[0][1]

            # one materialization per survey year, each its own partition, all in that run
            cur.execute("SELECT partition, run_id FROM event_logs "
                        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s "
                        "ORDER BY partition", [json.dumps(["survey_returns"])])
            loads = cur.fetchall()
            assert [r[0] for r in loads] == years
            assert {r[1] for r in loads} == {refresh_id}

            cur.execute("SELECT count(*) FROM event_logs "
                        "WHERE dagster_event_type = 'ASSET_CHECK_EVALUATION' AND run_id = %s",
                        [refresh_id])
            assert cur.fetchone()[0] > 0

            # the writer pool lives in PostgreSQL too, with one slot, all released
            cur.execute("SELECT count(*) FROM concurrency_slots WHERE concurrency_key = 'duckdb_writer'")
            assert cur.fetchone()[0] == 1
            cur.execute("SELECT count(*) FROM concurrency_slots WHERE run_id IS NOT NULL")
            assert cur.fetchone()[0] == 0
    finally:
        con.close()


def test_dagster_reads_the_runs_back(postgres, deployed, monkeypatch):
    import dagster as dg
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    _, env, years = deployed
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    instance = dg.DagsterInstance.get()
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert instance.run_monitoring_enabled
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.max_concurrent_runs == 4

        runs = instance.get_runs()
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        (refresh,) = runs
        assert refresh.job_name == "refresh_outputs"
        assert (refresh.tags[RANGE_START_TAG], refresh.tags[RANGE_END_TAG]) == (years[0], years[-1])
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("survey_returns"))) == years
        rec = instance.get_latest_materialization_event(dg.AssetKey("outsourcing_probit"))
        assert rec is not None and rec.run_id == refresh.run_id
        assert instance.get_dynamic_partitions("survey_year") == years
    finally:
        instance.dispose()


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert proc.poll() is None, f"the daemon exited:\n{log.read_text()[-4000:]}"
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}", pytrace=False)


def test_daemon_runs_a_sensor_request_through_the_queue(postgres, deployed, monkeypatch):
    """As on the server: a re-delivered survey file is seen by the sensor that
    `dagster-daemon run` evaluates; the run it requests waits in the queue, is dequeued
    and launched in its own process by the daemon, and reads the new file."""
    import dagster as dg

    from offshoring.readers.common import sha256_file
    from offshoring.readers.survey import discover_survey_files

    root, env, years = deployed
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    year = years[-1]
    path = discover_survey_files(Path(env["OFFSHORING_RAW_DIR"]))[int(year)]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))  # a corrected delivery: one return fewer
    new_sha = sha256_file(path)

    instance = dg.DagsterInstance.get()
    log = root / "daemon.log"
    daemon = None
    try:
        with open(log, "w") as out:
            daemon = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
                env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

        def sensor_run():
            runs = instance.get_runs(filters=dg.RunsFilter(
                tags={"dagster/sensor_name": "survey_delivery_sensor"}))
            return runs[0] if runs and runs[0].is_finished else None

        run = _wait(sensor_run, 300, "the sensor's run to finish", daemon, log)
        assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-4000:]
        assert run.job_name == "load_survey_year" and run.tags["dagster/partition"] == year
        assert run.tags["offshoring/sha256"] == new_sha

        con = postgres.connect()
        try:
            with con.cursor() as cur:
                cur.execute("SELECT dagster_event_type FROM event_logs WHERE run_id = %s "
                            "AND dagster_event_type LIKE 'PIPELINE_%%' ORDER BY id", [run.run_id])
                lifecycle = [r[0] for r in cur.fetchall()]
        finally:
            con.close()
        assert lifecycle[:2] == ["PIPELINE_ENQUEUED", "PIPELINE_STARTING"], lifecycle
        assert lifecycle[-1] == "PIPELINE_SUCCESS", lifecycle

        mat = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("survey_returns"),
                                  asset_partitions=[year]), limit=1).records[0]
        assert mat.run_id == run.run_id
        assert mat.asset_materialization.metadata["sha256"].value == new_sha

        beats = instance.get_daemon_heartbeats()
        assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING"} <= set(beats)
    finally:
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=30)
        if daemon is not None:
            try:  # its code server can outlive it (one was still running half an hour later)
                os.killpg(daemon.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        instance.dispose()
