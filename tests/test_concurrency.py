"""Parallel runs writing to one DuckDB file, and a load killed with SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import as_real_files

ROOT = Path(__file__).resolve().parent.parent
DAGSTER = str(Path(sys.executable).parent / "dagster")


@pytest.fixture(scope="module")
def small_raw(tmp_path_factory) -> Path:
    from offshoring.synth import generate

    raw = tmp_path_factory.mktemp("raw_small") / "raw"
    generate(raw, firms=400, seed=3)
    as_real_files(raw)  # run as real files (a key): the kill test loads a changed delivery
    return raw


def _env(tmp: Path, raw: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "orchestration" / "instance" / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home), "OFFSHORING_RAW_DIR": str(raw),
            "OFFSHORING_DB": str(tmp / "w.duckdb"), "OFFSHORING_REPORTS_DIR": str(tmp / "reports"),
            # real mode (a key): the kill test loads a changed delivery, which the demo mode refuses
            "OFFSHORING_SYNTHETIC": "0", "OFFSHORING_PSEUDONYM_KEY": "concurrency-test-key-0123456789"}


def _register_years(env: dict[str, str], years: list[str]) -> None:
    code = ("import dagster as dg; i = dg.DagsterInstance.get(); "
            f"i.add_dynamic_partitions('survey_year', {years!r})")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT, timeout=120)


def test_parallel_runs_see_no_lock_error(tmp_path, small_raw):
    """Two year loads and a five-asset run at once, each a run with the multiprocess
    executor (parallel steps inside the run too): the writer pool (limit 1 in the
    instance) serialises their steps."""
    env = _env(tmp_path, small_raw)
    years = ["2005", "2006"]
    _register_years(env, years)
    base = [DAGSTER, "asset", "materialize", "-m", "orchestration.definitions"]
    cmds = [base + ["--select", "survey_returns", "--partition", y] for y in years]
    cmds.append(base + ["--select", "aida_firm_years,aida_subsidiaries,municipalities,llma_map,"
                                    "census_employment"])
    procs = [subprocess.Popen(c, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in cmds]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert "Could not set lock" not in out and "Conflicting lock" not in out
    con = duckdb.connect(env["OFFSHORING_DB"], read_only=True)
    loaded = [r[0] for r in con.execute("SELECT DISTINCT year FROM raw.survey_returns ORDER BY 1").fetchall()]
    assert loaded == [int(y) for y in years]
    assert con.execute("SELECT count(*) FROM raw.census_employment").fetchall()[0][0] > 0
    con.close()
    # The pool, not the connection's lock retries, kept them apart: no two writing steps of
    # the three runs were ever in their compute at once (with the pool's limit lifted the
    # steps overlap, each waiting inside its compute for DuckDB's file lock).
    spans = _step_spans(Path(env["DAGSTER_HOME"]))
    assert len(spans) == 7 and len({run for run, *_ in spans}) == 3, spans
    spans.sort(key=lambda s: s[2])
    for (run_a, step_a, _, end_a), (run_b, step_b, start_b, _) in zip(spans, spans[1:]):
        assert end_a <= start_b, f"{step_a} ({run_a[:8]}) and {step_b} ({run_b[:8]}) wrote at once"


def _step_spans(home: Path) -> list[tuple[str, str, float, float]]:
    """(run, step, start, end) of every step of every run in the instance at `home`."""
    import dagster as dg
    from conftest import instance_at

    out = []
    with instance_at(home) as instance:
        for run in instance.get_runs():
            times: dict[str, dict[str, float]] = {}
            for rec in instance.all_logs(run.run_id, of_type={dg.DagsterEventType.STEP_START,
                                                             dg.DagsterEventType.STEP_SUCCESS}):
                kind = rec.dagster_event.event_type
                times.setdefault(rec.step_key, {})[kind.value] = rec.timestamp
            for step, t in times.items():
                out.append((run.run_id, step, t["STEP_START"], t["STEP_SUCCESS"]))
    return out


KILL_SCRIPT = """
import sys
import dagster as dg
from orchestration.definitions import defs
from orchestration.pipeline import run_partition
with dg.DagsterInstance.get() as instance:
    sys.exit(0 if run_partition(defs, instance, sys.argv[1]).success else 1)
"""


def _rows(db: str, year: int) -> tuple[int, float]:
    con = duckdb.connect(db, read_only=True)
    try:
        n, s = con.execute("SELECT count(*), coalesce(sum(turnover), 0) FROM raw.survey_returns "
                           "WHERE year = ?", [year]).fetchall()[0]
        return int(n), float(s)
    finally:
        con.close()


def test_sigkill_mid_load_leaves_database_consistent(tmp_path, small_raw):
    """Kill -9 a run while its load transaction is open (after the old rows were deleted
    and the new ones inserted, before COMMIT): the year is as before, and the next run
    succeeds."""
    raw = tmp_path / "raw"
    shutil.copytree(small_raw, raw)
    env = _env(tmp_path, raw)
    _register_years(env, ["2008"])
    run = [sys.executable, "-c", KILL_SCRIPT, "2008"]
    first = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    before = _rows(env["OFFSHORING_DB"], 2008)
    assert before[0] > 0

    # a corrected re-delivery: one return fewer
    src = raw / "survey" / "survey_2008.csv"
    original = src.read_bytes()
    lines = original.decode("cp1252").splitlines(keepends=True)
    src.write_bytes("".join(lines[:-1]).encode("cp1252"))

    marker = tmp_path / "in_transaction"
    fault_env = {**env, "OFFSHORING_FAULT_PAUSE_BEFORE_COMMIT": "60", "OFFSHORING_FAULT_MARKER": str(marker)}
    p = subprocess.Popen(run, env=fault_env, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert p.poll() is None, "the run ended before reaching the load transaction"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL

    # DuckDB replays its WAL on open: the uncommitted delete and insert are gone
    assert _rows(env["OFFSHORING_DB"], 2008) == before
    con = duckdb.connect(env["OFFSHORING_DB"], read_only=True)
    assert con.execute("SELECT count(*) FROM raw.load_log WHERE partition = '2008' "
                       "AND status = 'loaded'").fetchall()[0][0] == 1
    con.close()

    # the next run succeeds and loads the re-delivery
    again = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    after = _rows(env["OFFSHORING_DB"], 2008)
    assert after[0] == before[0] - 1


def test_a_run_stopped_after_a_year_was_written_says_what_it_wrote(tmp_path, small_raw):
    """SIGTERM (Ctrl-C, a scheduler's stop) just after a survey year was committed, before the
    run had sent its events: the command line said "no survey year of the run was replaced"
    while the warehouse held the new year. What it says now is what raw.load_log holds."""
    env = _env(tmp_path, small_raw)
    marker = tmp_path / "committed"
    fault = {**env, "OFFSHORING_FAULT_PAUSE_AFTER_COMMIT": "120:survey_returns", "OFFSHORING_FAULT_MARKER": str(marker)}
    cli = str(Path(sys.executable).parent / "offshoring")
    p = subprocess.Popen([cli, "run"], env=fault, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode != 0
    con = duckdb.connect(env["OFFSHORING_DB"], read_only=True)
    written = [r[0] for r in con.execute("SELECT partition FROM raw.load_log WHERE table_name = 'survey_returns' "
                                         "AND status = 'loaded' ORDER BY partition").fetchall()]
    panel = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'panel'").fetchall()
    con.close()
    assert written, "the pause comes after a commit: a year is in the warehouse"
    assert "no survey year of the run was replaced" not in err, err
    assert f"{written[0]}" in err and ("loaded before it failed" in err or "had been written" in err), err
    assert panel == [(0,)]  # nothing built from the survey ran
