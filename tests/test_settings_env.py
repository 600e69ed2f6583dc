"""Every OFFSHORING_* environment variable is a setting the pipeline reads: a misspelt one
(OFFSHORING_CONFIGDIR) used to be ignored in silence and the defaults ran in its place.
The refusal itself is in the battery (tests/test_gate_battery.py, `misspelt_setting`) and
in tests/test_ui_start.py; here what must not be refused, through the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from offshoring import settings

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "orchestration.cli", "run"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSHORING_")}
    env.update({"OFFSHORING_RAW_DIR": str(tmp_path / "no_such_raw"), "OFFSHORING_DB": str(tmp_path / "w.duckdb"),
                "OFFSHORING_REPORTS_DIR": str(tmp_path / "reports"), "DAGSTER_HOME": str(tmp_path / "home"),
                "OFFSHORING_PSEUDONYM_KEY": "settings-test-key-0123456789abcdef"})
    env.update(extra)
    return env


def _run(env) -> str:
    proc = subprocess.run(CLI, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_the_secrets_the_alert_settings_name_are_settings(tmp_path):
    """A secret's variable named in alerts.yaml is read by the alerts: not refused (the run then
    stops at the next check, the missing raw folder, which shows the variables passed)."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "alerts.yaml").write_text("email:\n  password_env: OFFSHORING_MAIL_SECRET\n"
                                     "slack:\n  webhook_url_env: OFFSHORING_HOOK\n")
    out = _run(_env(tmp_path, OFFSHORING_CONFIG_DIR=str(cfg), OFFSHORING_MAIL_SECRET="x", OFFSHORING_HOOK="y",
                    OFFSHORING_DUCKDB_MEMORY_LIMIT="2GB"))
    assert "no_such_raw does not exist" in out and "no setting" not in out, out
    # the same variable without the alert setting that names it is refused, naming it
    out = _run(_env(tmp_path, OFFSHORING_MAIL_SECRET="x"))
    assert "The environment sets OFFSHORING_MAIL_SECRET, which no setting of this pipeline reads" in out, out


def test_every_variable_the_code_reads_is_known():
    """The list the refusal checks against holds every OFFSHORING_* name in the code and the
    shipped settings (a setting added without it would be refused as unknown)."""
    from offshoring.alerts import AlertSettings
    from offshoring.spec import load_study_spec

    cfg = AlertSettings.load(load_study_spec(None).alerts.model_dump())
    known = {*settings.KNOWN_VARIABLES, cfg.email["password_env"], cfg.slack["webhook_url_env"]}
    found = set()
    for folder in ("offshoring", "orchestration", "assets", "config", "deploy", "scripts"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".yaml", ".yml", ".sh", ".md") and path.is_file():
                found |= set(re.findall(r"\bOFFSHORING_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")))
    assert found, "the scan found nothing: it reads the wrong folders"
    assert found - {"OFFSHORING_CONFIGDIR", "OFFSHORING_REPORT_DIR"} <= known, sorted(found - known)


def test_blank_and_padded_paths_are_named_for_what_they_hold(monkeypatch):
    import pytest

    monkeypatch.setenv(settings.ENV_DB, "   ")
    with pytest.raises(settings.SettingError, match=r"OFFSHORING_DB is set but empty \(blanks only\)"):
        settings.db_path()
    monkeypatch.setenv(settings.ENV_DB, "/data/w.duckdb\n")
    with pytest.raises(settings.SettingError, match=r"ends with white space \(a tab or a line end\).*Remove the "
                                                    r"white space"):
        settings.db_path()
    monkeypatch.setenv(settings.ENV_DB, "/data/w.duckdb ")
    with pytest.raises(settings.SettingError, match=r"ends with a space.*Remove the space"):
        settings.db_path()
