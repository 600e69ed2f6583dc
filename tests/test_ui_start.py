"""`offshoring ui` checks what a run checks before it starts the UI.

It used to start with no key, on a raw folder that did not exist, and to overwrite
OFFSHORING_SYNTHETIC=1 with 0 (the README says the UI reads the setting): the failures
then came one by one inside Dagster, as a step's stack trace or "Sensor function returned
an empty result".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ui_helpers import free_port, leftovers_of, pids_with_home

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "orchestration.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSHORING_")}
    env.update({"OFFSHORING_RAW_DIR": str(tmp_path / "raw"), "OFFSHORING_DB": str(tmp_path / "w.duckdb"),
                "OFFSHORING_REPORTS_DIR": str(tmp_path / "reports"), "DAGSTER_HOME": str(tmp_path / "home")})
    env.update(extra)
    return env


def _refused(tmp_path: Path, env: dict[str, str], *patterns: str, args: tuple[str, ...] = ()) -> None:
    proc = subprocess.run(CLI + ["ui", "--port", str(free_port()), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-2000:]
    assert "Traceback" not in out and "Dagster UI on" not in out, out[-2000:]
    for p in patterns:
        assert p in out, out[-2000:]
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())


def test_the_ui_refuses_what_a_run_refuses_before_it_starts(tmp_path):
    from offshoring.synth import generate

    # a raw folder that does not exist
    _refused(tmp_path, _env(tmp_path, OFFSHORING_PSEUDONYM_KEY="ui-test-key-0123456789abcdef"),
             "does not exist (OFFSHORING_RAW_DIR)")
    # the demo's UI before the demo
    _refused(tmp_path, _env(tmp_path), "No synthetic data in", "run `offshoring demo` first", args=("--synthetic",))
    generate(tmp_path / "raw", firms=300, seed=3)
    # real mode on the generator's files
    _refused(tmp_path, _env(tmp_path, OFFSHORING_PSEUDONYM_KEY="ui-test-key-0123456789abcdef"),
             "holds the generator's synthetic files")
    # an invalid setting is refused, not overwritten
    _refused(tmp_path, _env(tmp_path, OFFSHORING_SYNTHETIC="2"), "OFFSHORING_SYNTHETIC must be 1")
    # a misspelt one is refused, not ignored
    _refused(tmp_path, _env(tmp_path, OFFSHORING_SYNTHETIC="1", OFFSHORING_REPORT_DIR=str(tmp_path / "r")),
             "OFFSHORING_REPORT_DIR (did you mean OFFSHORING_REPORTS_DIR?), which no setting")


def test_the_ui_reads_the_synthetic_setting(tmp_path):
    """OFFSHORING_SYNTHETIC=1 without --synthetic: the UI runs in demo mode (it said "real data"
    and its runs then refused the generator's files); SIGTERM stops it and everything it started."""
    from offshoring.synth import generate

    generate(tmp_path / "raw", firms=300, seed=3)
    first, leftovers = _start_and_stop(tmp_path, _env(tmp_path, OFFSHORING_SYNTHETIC="1"), settle=0.5)
    assert "(synthetic demo;" in first and "real data" not in first, first[-2000:]
    assert not leftovers, f"processes of the UI left behind: {leftovers}"


def test_sigterm_while_the_ui_starts_leaves_nothing_behind(tmp_path):
    """SIGTERM the moment the UI says it starts (a service manager stopping it at once, a test
    on a loaded machine): it used to kill `offshoring ui` alone, before its handler was set,
    and leave dagster dev, its webserver, daemon and code server running, orphaned (2 ms
    after the first line did it here)."""
    from offshoring.synth import generate

    generate(tmp_path / "raw", firms=300, seed=3)
    for settle in (0, 0.002, 0.005, 0.02):
        _, leftovers = _start_and_stop(tmp_path, _env(tmp_path, OFFSHORING_SYNTHETIC="1"), settle=settle)
        assert not leftovers, f"SIGTERM {settle} s after the first line: processes left behind: {leftovers}"


def _start_and_stop(tmp_path, env, settle: float) -> tuple[str, list[int]]:
    """Start `offshoring ui`, SIGTERM it `settle` s after its first line; what it printed and
    the processes of its instance still alive 20 s later (killed, so none outlives the test)."""
    log = tmp_path / "ui.log"
    with open(log, "wb") as out:
        ui = subprocess.Popen(CLI + ["ui", "--port", str(free_port())], env=env, cwd=ROOT, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    home = Path(env["DAGSTER_HOME"])
    try:
        deadline = time.monotonic() + 60
        while "\n" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            assert ui.poll() is None, log.read_text(errors="replace")[-2000:]
            time.sleep(0.001)
        time.sleep(settle)
    finally:
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=30)
        leftovers = leftovers_of(home)
    first = log.read_text(errors="replace")
    assert "Dagster UI on" in first, first[-2000:]
    return first, leftovers


def test_a_warehouse_in_use_is_said_so_and_the_ui_starts_beside_a_run(tmp_path):
    """Another process writing the warehouse (a run in progress): `offshoring run` said the file
    "cannot be opened ... Is it a DuckDB file?", and the UI refused to start, so a long run
    could not be watched. The run now names the process holding it; the UI starts."""
    import duckdb

    from offshoring.synth import generate

    generate(tmp_path / "raw", firms=300, seed=3)
    env = _env(tmp_path, OFFSHORING_SYNTHETIC="1")
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(120)", str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        run = subprocess.run([sys.executable, "-m", "orchestration.cli", "run"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        out = run.stdout + run.stderr
        assert run.returncode == 2, out[-2000:]
        assert f"The warehouse {db} is in use by process {holder.pid} (a run in progress" in out, out[-2000:]
        assert "Is it a DuckDB file" not in out
        assert not (tmp_path / "reports").exists() and not (tmp_path / "home").exists()  # nothing started
        first, leftovers = _start_and_stop(tmp_path, env, settle=0.5)
        assert "Dagster UI on" in first and "refused" not in first, first
        assert not leftovers
    finally:
        holder.kill()
        holder.wait()


def test_what_dagster_dev_started_does_not_outlive_it(tmp_path):
    """dagster dev ends by itself (here: killed): `offshoring ui` ends too and stops what it had
    started (its webserver, daemon and code server were left running)."""
    from offshoring.synth import generate

    generate(tmp_path / "raw", firms=300, seed=3)
    env = _env(tmp_path, OFFSHORING_SYNTHETIC="1")
    home = Path(env["DAGSTER_HOME"])
    log = tmp_path / "ui.log"
    with open(log, "wb") as out:
        ui = subprocess.Popen(CLI + ["ui", "--port", str(free_port())], env=env, cwd=ROOT, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        def dev_and_children():
            pids = pids_with_home(home)
            cmd = {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in pids if Path(f"/proc/{p}/cmdline").exists()}
            dev = [p for p, c in cmd.items() if b"dagster\x00dev" in c]
            return dev, [p for p in pids if p not in dev and p != ui.pid]

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            dev, children = dev_and_children()
            if dev and len(children) >= 2:  # a code server and more have started
                break
            assert ui.poll() is None, log.read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        assert dev and children, log.read_text(errors="replace")[-2000:]
        os.kill(dev[0], signal.SIGKILL)
        ui.wait(timeout=30)
    finally:
        if ui.poll() is None:
            ui.kill()
        leftovers = leftovers_of(home)
    assert not leftovers, f"left behind after dagster dev ended: {leftovers}"
