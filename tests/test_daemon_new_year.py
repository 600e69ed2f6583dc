"""The daemon path users run: `offshoring ui` (dagster dev), nothing else, brings a new year to
the reports, catches up a year loaded while it was off, and stops cleanly on SIGTERM.

1. `offshoring run` loads 2005-2012 and writes the reports (Table 1 says 2007-2012).
2. With the UI off, the 2013 delivery is loaded by a run of its own (as a user of the
   Dagster CLI or a notebook would); nothing refreshes the reports.
3. `offshoring ui` starts: its refresh sensor sees a load newer than the reports and
   brings them to 2013, with no command.
4. A corrected 2012 delivery (one return fewer) is dropped in the survey folder: the
   delivery sensor loads it and the refresh sensor rebuilds the reports, whose provenance
   then lists the new file's hash.
5. SIGTERM to `offshoring ui`: it exits within 10 s and leaves no process behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import as_real_files, instance_at, small_world_config
from ui_helpers import free_port, leftovers_of

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "orchestration.cli"]
KEY = "daemon-test-key-0123456789abcdef"

LOAD_2013 = """
import dagster as dg
from orchestration.definitions import defs
from orchestration.pipeline import register_years, run_partition
from offshoring import settings
with dg.DagsterInstance.get() as instance:
    register_years(instance, settings.raw_dir())
    assert run_partition(defs, instance, "2013").success
"""


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> float:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"offshoring ui exited ({proc.returncode}) while waiting for {what}:\n"
                                 + log.read_text(errors="replace")[-4000:])
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n" + log.read_text(errors="replace")[-4000:])
        time.sleep(2)
    return time.monotonic() - t0


def test_new_year_reaches_the_reports_under_the_daemon(tmp_path):
    from offshoring.synth import generate

    raw = tmp_path / "raw"
    generate(raw, firms=2500, seed=11, years=range(2005, 2014))
    as_real_files(raw)  # run as real files (a key), so a corrected delivery can be loaded
    held = tmp_path / "survey_2013.csv"
    shutil.move(raw / "survey" / "survey_2013.csv", held)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSHORING_")}
    env.update({"OFFSHORING_RAW_DIR": str(raw), "OFFSHORING_DB": str(tmp_path / "w.duckdb"),
                "OFFSHORING_REPORTS_DIR": str(tmp_path / "reports"), "DAGSTER_HOME": str(tmp_path / "home"),
                "OFFSHORING_PSEUDONYM_KEY": KEY,
                "OFFSHORING_CONFIG_DIR": str(small_world_config(tmp_path / "config"))})
    first = subprocess.run(CLI + ["run"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    table1 = tmp_path / "reports" / "table1.md"
    assert "2007-2012" in table1.read_text()

    # 2. loaded while no daemon runs: the reports stay as they were
    shutil.copy(held, raw / "survey" / "survey_2013.csv")
    loaded = subprocess.run([sys.executable, "-c", LOAD_2013], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert loaded.returncode == 0, loaded.stdout[-3000:] + loaded.stderr[-3000:]
    assert "2007-2012" in table1.read_text()

    # 3. the UI (and its daemon) catches up
    log = tmp_path / "ui.log"
    port = free_port()
    with open(log, "wb") as out:
        ui = subprocess.Popen(CLI + ["ui", "--port", str(port)], env=env, cwd=tmp_path, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        caught_up = _wait(lambda: "2007-2013" in table1.read_text(), 420, "catch-up of 2013", ui, log)

        # 4. a corrected delivery of 2012 (one return fewer) under the running daemon
        path = raw / "survey" / "survey_2012.csv"
        lines = path.read_bytes().decode("cp1252").splitlines(keepends=True)
        path.write_bytes("".join(lines[:-1]).encode("cp1252"))
        new_sha = hashlib.sha256(path.read_bytes()).hexdigest()
        provenance = tmp_path / "reports" / "table1.provenance.json"
        redelivered = _wait(lambda: provenance.exists() and new_sha in provenance.read_text(), 420,
                            "reports after the re-delivery of 2012", ui, log)
        print(f"daemon: catch-up {caught_up:.0f} s, re-delivery to reports {redelivered:.0f} s")
    finally:
        # 5. a clean stop
        t0 = time.monotonic()
        os.kill(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            raise AssertionError("offshoring ui did not exit within 10 s of SIGTERM")
        stopped = time.monotonic() - t0
        leftovers = leftovers_of(tmp_path / "home", 15)
    assert stopped <= 10, stopped
    assert leftovers == [], leftovers
    # every run, the CLI's and the ones the delivery and refresh sensors launched, says which data
    with instance_at(tmp_path / "home") as instance:
        runs = instance.get_runs()
    assert {r.tags.get("offshoring/data") for r in runs} == {"real"}
    assert any("offshoring/delivery" in r.tags for r in runs)  # the delivery sensor's
    assert any("offshoring/trigger" in r.tags for r in runs)  # the refresh sensor's
