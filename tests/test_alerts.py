"""Alerts go out over a real SMTP server and an HTTP webhook on localhost, once, without firm data."""

from __future__ import annotations

import json
import re
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
            body = json.loads(self.rfile.read(n))
            if "fail" in self.path:  # a webhook that answers an error
                self.send_response(500)
                self.end_headers()
                return
            bodies.append(body)
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
    assert used.sent == ["email", "slack"] and used.failed == {}
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
    assert dispatch(make_alert(), cfg).sent == ["email", "slack"]
    assert dispatch(make_alert(run_id="another-run"), cfg).sent == []
    assert dispatch(make_alert(partition="2009"), cfg).sent == ["email", "slack"]
    assert len(mails) == 2 and len(bodies) == 2


def test_a_failing_channel_neither_stops_nor_repeats_the_others(tmp_path, smtp_server, webhook):
    """A webhook answering 500 crashed the sensor tick after the e-mail went out: the same
    e-mail then went out on every tick, and any later alert was stuck behind it. Each channel
    is now tried and remembered on its own; the failing one is retried, and says why."""
    port, mails = smtp_server
    url, bodies = webhook
    cfg = settings(tmp_path, port, url + "-fail")
    first = dispatch(make_alert(), cfg)
    assert first.sent == ["email"] and set(first.failed) == {"slack"}
    again = dispatch(make_alert(), cfg)  # the next tick: the e-mail is not sent twice
    assert again.sent == [] and set(again.failed) == {"slack"}
    assert len(mails) == 1
    healed = settings(tmp_path, port, url)
    assert dispatch(make_alert(), healed).sent == ["slack"] and len(mails) == 1 and len(bodies) == 1
    # a channel that cannot be reached at all (nothing listens) does not stop the other
    down = settings(tmp_path, 1, url)
    other = dispatch(make_alert(partition="2010"), down)
    assert other.sent == ["slack"] and set(other.failed) == {"email"}


def test_off_by_default(tmp_path):
    from offshoring.spec import load_study_spec

    cfg = AlertSettings.load(load_study_spec().alerts.model_dump())
    assert cfg.enabled is False
    assert dispatch(make_alert(), cfg).sent == []


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


def test_the_check_sensor_retries_a_channel_that_failed(tmp_path, webhook):
    """The webhook answers an error: the tick does not crash, says it could not send, and keeps
    its cursor there; once the webhook works, the next tick sends the alert, once."""
    import dagster as dg

    from assets.resources import Study
    from orchestration.sensors import check_failure_alert_sensor

    url, bodies = webhook
    cfg_dir = tmp_path / "config"
    cfg_dir.mkdir()

    def study(hook: str) -> dict:
        (cfg_dir / "alerts.yaml").write_text(
            "enabled: true\nui_base_url: http://ui.local:3000\n"
            f"slack: {{enabled: true, webhook_url: '{hook}'}}\n"
            f"sent_log: {tmp_path / 'sent.json'}\n")
        return {"study": Study(config_dir=str(cfg_dir))}

    @dg.asset(check_specs=[dg.AssetCheckSpec("plausible", asset="thing")])
    def thing():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="plausible", passed=False, severity=dg.AssetCheckSeverity.WARN,
                                  description="4 rows implausible")

    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    dg.materialize([thing], instance=instance)
    ctx = dg.build_sensor_context(instance=instance, resources=study(url + "-fail"))
    skipped = check_failure_alert_sensor(ctx)
    assert "1 could not be sent" in skipped.skip_message and bodies == []
    ctx2 = dg.build_sensor_context(instance=instance, cursor=ctx.cursor, resources=study(url))
    assert "1 alert(s) sent" in check_failure_alert_sensor(ctx2).skip_message
    ctx3 = dg.build_sensor_context(instance=instance, cursor=ctx2.cursor, resources=study(url))
    check_failure_alert_sensor(ctx3)
    assert len(bodies) == 1 and "plausible" in bodies[0]["text"]


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
    # the cause, not Dagster's "Steps failed: ['broken']" (the same text for every cause, so
    # a second, different failure of the step was taken for the first and never sent)
    assert "broken: RuntimeError: boom for" in bodies[0]["text"] or "broken: boom for" in bodies[0]["text"], \
        bodies[0]["text"]


_DISPATCH_MANY = """
import sys, time
from offshoring.alerts import Alert, AlertSettings, dispatch
cfg = AlertSettings.load({"enabled": True, "ui_base_url": "http://ui.local:3000",
                          "email": {"enabled": False}, "slack": {"enabled": True, "webhook_url": sys.argv[1]},
                          "sent_log": sys.argv[2]})
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all start together
for i in range(150):
    dispatch(Alert(kind="check_failed", run_id="r", asset="survey_returns", partition=str(2000 + i),
                   check="c", severity="WARN", description="d"), cfg)
"""


def test_two_processes_send_each_alert_once(tmp_path, webhook):
    """The command line and the daemon's sensor both dispatch, to one sent log: every alert goes
    out once, and the log keeps every entry (two writers used to lose each other's entries, so
    alerts went out twice, and one could fail on the other's temporary file)."""
    import subprocess
    import sys
    import time

    url, bodies = webhook
    log = tmp_path / "sent.json"
    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", _DISPATCH_MANY, url, str(log), start],
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    partitions = sorted(re.search(r"survey_returns \[(\d+)\]", b["text"]).group(1) for b in bodies)
    assert partitions == sorted(str(2000 + i) for i in range(150)), partitions
    assert len(json.loads(log.read_text())) == 150
    assert not list(tmp_path.glob("*.tmp"))


def test_an_alert_says_synthetic_data_and_a_demo_alert_does_not_stand_for_a_real_one(tmp_path, webhook):
    url, bodies = webhook
    cfg = settings(tmp_path, hook=url)
    assert dispatch(make_alert(origin="synthetic"), cfg).sent == ["slack"]
    assert dispatch(make_alert(origin="real"), cfg).sent == ["slack"]  # the same failure on real data
    assert bodies[0]["text"].startswith("[offshoring, synthetic data] check")
    assert "Data: synthetic (the generator's files, not real data)" in bodies[0]["text"]
    assert bodies[1]["text"].startswith("[offshoring] check") and "Data: real" in bodies[1]["text"]


def test_a_channel_down_is_tried_once_per_tick(tmp_path, webhook, monkeypatch):
    """Two failed checks, the webhook down: the tick tries it once (each try can wait for the
    timeout; two held alerts used to take the whole tick), holds the cursor at the first, and
    the next tick, the webhook up, sends both once."""
    import dagster as dg

    from assets.resources import Study
    from orchestration.sensors import check_failure_alert_sensor

    url, bodies = webhook
    tries = []
    cfg_dir = tmp_path / "config"
    cfg_dir.mkdir()

    def study(hook: str) -> dict:
        (cfg_dir / "alerts.yaml").write_text(
            "enabled: true\n" f"slack: {{enabled: true, webhook_url: '{hook}'}}\n"
            f"sent_log: {tmp_path / 'sent.json'}\n")
        return {"study": Study(config_dir=str(cfg_dir))}

    @dg.asset(check_specs=[dg.AssetCheckSpec("a", asset="thing"), dg.AssetCheckSpec("b", asset="thing")])
    def thing():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="a", passed=False, description="a failed")
        yield dg.AssetCheckResult(check_name="b", passed=False, description="b failed")

    import offshoring.alerts as alerts_module

    real_send = alerts_module.send_slack

    def counting(alert, cfg):
        tries.append(alert.check)
        return real_send(alert, cfg)

    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    dg.materialize([thing], instance=instance)
    monkeypatch.setattr(alerts_module, "send_slack", counting)
    ctx = dg.build_sensor_context(instance=instance, resources=study(url + "-fail"))
    skipped = check_failure_alert_sensor(ctx)
    assert tries == ["a"] and "2 could not be sent" in skipped.skip_message, (tries, skipped.skip_message)
    ctx2 = dg.build_sensor_context(instance=instance, cursor=ctx.cursor, resources=study(url))
    assert "2 alert(s) sent" in check_failure_alert_sensor(ctx2).skip_message
    assert sorted(b["text"].split("check ")[1].split(" ")[0] for b in bodies) == ["a", "b"]
