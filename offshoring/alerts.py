"""Data-quality alerts over e-mail (SMTP) and a Slack webhook, each sent once.

An alert names the asset, partition, check, its description, counts of failing
rows and a link to the run; it never carries a tax code, a pseudonym or a
firm-level value (descriptions are scrubbed of anything shaped like one, and
only integer counts are passed on from check metadata).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import smtplib
import tempfile
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Collection, Mapping

from offshoring.settings import dagster_home

_PERSONAL = re.compile(r"\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b", re.I)
_COMPANY = re.compile(r"\b[0-9]{11}\b")
_PSEUDONYM = re.compile(r"\b[0-9a-f]{64}\b", re.I)


def scrub(text: str) -> str:
    """Replace anything shaped like a tax code or a pseudonym."""
    text = _PERSONAL.sub("[redacted]", text)
    text = _PSEUDONYM.sub("[redacted]", text)
    return _COMPANY.sub("[redacted]", text)


@dataclass(frozen=True)
class Alert:
    kind: str                      # "check_failed" or "run_failed"
    run_id: str
    description: str
    asset: str | None = None
    partition: str | None = None
    check: str | None = None
    severity: str = "ERROR"
    failing_counts: Mapping[str, int] = field(default_factory=dict)
    job: str | None = None
    origin: str | None = None      # "synthetic" or "real" (the run's offshoring/data tag)

    @staticmethod
    def counts_from_metadata(metadata: Mapping[str, Any]) -> dict[str, int]:
        """Integer entries of check metadata (row counts); everything else is dropped."""
        out = {}
        for k, v in metadata.items():
            value = getattr(v, "value", v)
            if isinstance(value, bool) or not isinstance(value, int):
                continue
            out[str(k)] = int(value)
        return out

    def fingerprint(self) -> str:
        # the origin too: a demo's failure must not stand for the same failure on real data
        key = json.dumps([self.kind, self.asset, self.partition, self.check, self.severity,
                          scrub(self.description), self.job if self.kind == "run_failed" else None,
                          self.origin])
        return hashlib.sha256(key.encode()).hexdigest()

    def run_url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/runs/{self.run_id}"

    def subject(self) -> str:
        tag = "[offshoring, synthetic data]" if self.origin == "synthetic" else "[offshoring]"
        if self.kind == "run_failed":
            return f"{tag} run failed: {self.job or self.run_id[:8]}"
        where = self.asset + (f" [{self.partition}]" if self.partition else "")
        return f"{tag} check {self.check} {self.severity}: {where}"

    def body(self, base_url: str) -> str:
        lines = [self.subject(), ""]
        if self.origin:
            lines.append("Data: " + ("synthetic (the generator's files, not real data)" if self.origin == "synthetic"
                                     else self.origin))
        if self.asset:
            lines.append(f"Asset: {self.asset}")
        if self.partition:
            lines.append(f"Partition: {self.partition}")
        if self.check:
            lines.append(f"Check: {self.check} (severity {self.severity})")
        if self.job:
            lines.append(f"Job: {self.job}")
        lines.append(f"Description: {scrub(self.description)}")
        if self.failing_counts:
            lines.append("Counts: " + ", ".join(f"{k}={v}" for k, v in sorted(self.failing_counts.items())))
        lines.append(f"Run: {self.run_url(base_url)}")
        return "\n".join(lines)


@dataclass
class AlertSettings:
    enabled: bool = False
    ui_base_url: str = "http://localhost:3000"
    email: dict[str, Any] = field(default_factory=dict)
    slack: dict[str, Any] = field(default_factory=dict)
    sent_log: Path | None = None

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> "AlertSettings":
        """From the study specification's ``alerts`` part (checked there: every key present)."""
        cfg = dict(data)
        log = cfg["sent_log"]
        return cls(
            enabled=bool(cfg["enabled"]),
            ui_base_url=str(cfg["ui_base_url"]),
            email=dict(cfg["email"]),
            slack=dict(cfg["slack"]),
            sent_log=Path(log) if log else None,
        )

    def log_path(self) -> Path:
        return self.sent_log or (dagster_home() / "alerts" / "sent.json")


class SentLog:
    """Fingerprints of alerts already sent, in a small JSON file (atomic rewrite).

    The command line and the daemon's sensors write it both: `claim()` holds a lock on a
    file beside it (two writers used to lose each other's entries, so alerts went out twice,
    and one could fail on the other's temporary file)."""

    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def claim(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> list[str]:
        try:
            return list(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            return []

    def seen(self, fp: str) -> bool:
        return fp in set(self._read())

    def add(self, fp: str) -> None:
        items = self._read()
        if fp in items:
            return
        items.append(fp)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(items[-10000:]))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


#: seconds a channel may take: the check sensor's tick has a minute for all its alerts
SEND_TIMEOUT = 10


def send_email(alert: Alert, cfg: AlertSettings) -> None:
    e = cfg.email
    msg = EmailMessage()
    msg["Subject"] = alert.subject()
    msg["From"] = e.get("sender", "offshoring-pipeline@localhost")
    msg["To"] = ", ".join(e.get("recipients") or [])
    msg.set_content(alert.body(cfg.ui_base_url))
    with smtplib.SMTP(e.get("host", "localhost"), int(e.get("port", 25)), timeout=SEND_TIMEOUT) as smtp:
        if e.get("starttls"):
            smtp.starttls()
        if e.get("username"):
            smtp.login(e["username"], os.environ.get(e.get("password_env") or "", ""))
        smtp.send_message(msg)


def send_slack(alert: Alert, cfg: AlertSettings) -> None:
    url = cfg.slack.get("webhook_url") or os.environ.get(cfg.slack.get("webhook_url_env") or "", "")
    if not url:
        raise ValueError("slack alerts are on but no webhook URL is set "
                         f"(set {cfg.slack.get('webhook_url_env')} or slack.webhook_url)")
    payload = json.dumps({"text": alert.body(cfg.ui_base_url)}).encode()
    req = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=SEND_TIMEOUT) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"slack webhook answered {resp.status}")


@dataclass
class Dispatched:
    """What one alert did: the channels it went out on now, and the channels that could not
    send it (with why); a channel that sent it before is in neither."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.sent)


def dispatch(alert: Alert, cfg: AlertSettings, skip: Collection[str] = ()) -> Dispatched:
    """Send an alert on every channel that is on, once per channel.

    Each channel is tried on its own and remembered on its own: a channel that fails (an
    SMTP server down, a webhook answering 500) neither stops the others nor makes them send
    the alert again; it is tried again at the next call, and `failed` says why. `skip`:
    channels not tried now (down earlier in the same sensor tick: each try can wait for its
    timeout), reported as failed so the caller retries them."""
    out = Dispatched()
    if not cfg.enabled:
        return out
    log = SentLog(cfg.log_path())
    fp = alert.fingerprint()
    if log.seen(fp):  # sent on every channel (the log of versions before per-channel entries)
        return out
    channels = []
    if cfg.email.get("enabled") and cfg.email.get("recipients"):
        channels.append(("email", send_email))
    if cfg.slack.get("enabled"):
        channels.append(("slack", send_slack))
    for name, send in channels:
        key = f"{fp}:{name}"
        if name in skip:
            if not log.seen(key):
                out.failed[name] = "not tried: the channel failed earlier in this tick"
            continue
        try:
            with log.claim():  # the check, the send and the record as one: no other process sends it too
                if log.seen(key):
                    continue
                try:
                    send(alert, cfg)
                except Exception as exc:  # noqa: BLE001 - any failure of a channel is reported, never raised
                    out.failed[name] = f"{type(exc).__name__}: {exc}"
                    continue
                out.sent.append(name)
                log.add(key)
        except OSError as exc:  # the log itself (its folder gone, a full disk): said, never raised
            out.failed[name] = (f"{'sent, but ' if name in out.sent else ''}the sent log "
                                f"{log.path} could not be written: {exc}")
    return out
