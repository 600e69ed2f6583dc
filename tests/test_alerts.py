"""Alerts go out over a real SMTP server and an HTTP webhook on localhost, once, without firm data."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from offshoring.alerts import Alert, AlertSettings, dispatch, scrub

PERSONAL = "RSSMRA80A01H501U"
PSEUDONYM = "ab" * 32


@pytest.fixture()
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    import socket

    with socket.socket() as sock:  # a free port (the controller cannot start on port 0)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctl = Controller(Keep(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield port, received
    finally:
        ctl.stop()


@pytest.fixture()
def webhook():
    bodies = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers["Content-Length"])
            bodies.append(json.loads(self.rfile.read(n)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/hook", bodies
    finally:
        srv.shutdown()


def make_alert(**kw):
    base = dict(kind="check_failed", run_id="1234abcd-run", asset="survey_returns",
                partition="2008", check="va_per_employee_plausible", severity="WARN",
                description=f"12 rows beyond the 99.9th percentile (e.g. {PERSONAL}, {PSEUDONYM})",
                failing_counts={"n_rows": 12})
    base.update(kw)
    return Alert(**base)


def settings(tmp_path, port=None, hook=None):
    return AlertSettings.load({
        "enabled": True, "ui_base_url": "http://ui.local:3000",
        "email": {"enabled": port is not None, "host": "127.0.0.1", "port": port or 25,
                  "sender": "p@localhost", "recipients": ["team@localhost"]},
        "slack": {"enabled": hook is not None, "webhook_url": hook},
        "sent_log": str(tmp_path / "sent.json"),
    })


def test_email_and_slack_carry_the_facts_and_no_firm_data(tmp_path, smtp_server, webhook):
    port, mails = smtp_server
    url, bodies = webhook
    used = dispatch(make_alert(), settings(tmp_path, port, url))
    assert used == ["email", "slack"]
    assert len(mails) == 1 and len(bodies) == 1
    text = mails[0].get_payload(decode=True).decode()
    for body in (text, bodies[0]["text"]):
        assert "survey_returns" in body and "2008" in body and "va_per_employee_plausible" in body
        assert "n_rows=12" in body
        assert "http://ui.local:3000/runs/1234abcd-run" in body
        assert PERSONAL not in body and PSEUDONYM not in body


def test_same_failure_is_sent_once(tmp_path, smtp_server, webhook):
    port, mails = smtp_server
    url, bodies = webhook
    cfg = settings(tmp_path, port, url)
    assert dispatch(make_alert(), cfg) == ["email", "slack"]
    assert dispatch(make_alert(run_id="another-run"), cfg) == []
    assert dispatch(make_alert(partition="2009"), cfg) == ["email", "slack"]
    assert len(mails) == 2 and len(bodies) == 2


def test_off_by_default(tmp_path):
    from offshoring.spec import load_study_spec

    cfg = AlertSettings.load(load_study_spec().alerts.model_dump())
    assert cfg.enabled is False
    assert dispatch(make_alert(), cfg) == []


def test_only_integer_counts_pass_from_metadata():
    counts = Alert.counts_from_metadata({"n_rows": 3, "max_value": 1.5e6, "firm": PSEUDONYM,
                                         "flag": True})
    assert counts == {"n_rows": 3}


def test_scrub_removes_codes():
    assert scrub(f"x {PERSONAL} y 01234567897 z {PSEUDONYM}") == "x [redacted] y [redacted] z [redacted]"


def test_check_failure_sensor_on_a_local_instance(tmp_path, webhook, monkeypatch):
    """The sensor reads failed checks from the run-sharded SQLite storage `dagster dev`
    uses, sends each once, and keeps working tick after tick."""
    import dagster as dg

    from assets.resources import Study
    from orchestration.sensors import check_failure_alert_sensor

    url, bodies = webhook
    cfg_dir = tmp_path / "config"
    cfg_dir.mkdir()
    (cfg_dir / "alerts.yaml").write_text(
        "enabled: true\nui_base_url: http://ui.local:3000\n"
        f"slack: {{enabled: true, webhook_url: '{url}'}}\n"
        f"sent_log: {tmp_path / 'sent.json'}\n")
    study = {"study": Study(config_dir=str(cfg_dir))}

    @dg.asset(check_specs=[dg.AssetCheckSpec("plausible", asset="thing")])
    def thing():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="plausible", passed=False,
                                  severity=dg.AssetCheckSeverity.WARN,
                                  description="4 rows implausible", metadata={"n_rows": 4})

    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    dg.materialize([thing], instance=instance)
    cursor = None
    for _ in range(3):
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources=study)
        check_failure_alert_sensor(ctx)
        cursor = ctx.cursor
    assert len(bodies) == 1
    assert "thing" in bodies[0]["text"] and "plausible" in bodies[0]["text"]
    assert "n_rows=4" in bodies[0]["text"]
    dg.materialize([thing], instance=instance)  # same failure again: not re-sent
    check_failure_alert_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=study))
    assert len(bodies) == 1


def test_run_failure_sensor_sends_an_alert(tmp_path, webhook, monkeypatch):
    import dagster as dg

    from assets.resources import Study
    from orchestration.sensors import run_failure_alert_sensor

    url, bodies = webhook
    cfg_dir = tmp_path / "config"
    cfg_dir.mkdir()
    (cfg_dir / "alerts.yaml").write_text(
        f"enabled: true\nslack: {{enabled: true, webhook_url: '{url}'}}\n"
        f"sent_log: {tmp_path / 'sent.json'}\n")

    @dg.asset
    def broken():
        raise RuntimeError(f"boom for {PERSONAL}")

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(r.dagster_event for r in instance.all_logs(result.run_id)
                   if r.dagster_event is not None and r.dagster_event.event_type_value == "PIPELINE_FAILURE")
    ctx = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_instance=instance, dagster_run=run,
        dagster_event=failure, resources={"study": Study(config_dir=str(cfg_dir))}).for_run_failure()
    run_failure_alert_sensor(ctx)
    assert len(bodies) == 1
    assert result.run_id in bodies[0]["text"] and PERSONAL not in bodies[0]["text"]
