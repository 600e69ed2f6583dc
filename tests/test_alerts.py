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
    cfg = AlertSettings.load()
    assert cfg.enabled is False
    assert dispatch(make_alert(), cfg) == []


def test_only_integer_counts_pass_from_metadata():
    counts = Alert.counts_from_metadata({"n_rows": 3, "max_value": 1.5e6, "firm": PSEUDONYM,
                                         "flag": True})
    assert counts == {"n_rows": 3}


def test_scrub_removes_codes():
    assert scrub(f"x {PERSONAL} y 01234567897 z {PSEUDONYM}") == "x [redacted] y [redacted] z [redacted]"
