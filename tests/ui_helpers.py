"""Plumbing for the browser test: a `dagster dev` process group, GraphQL calls, Chromium.

`dagster dev` started from a non-interactive parent may inherit ignored SIGINT/SIGTERM;
the child restores the default handlers and gets its own session, so the whole tree
(webserver, daemon, code server, run workers) shares one process group and session
that we can signal and then sweep for leftovers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAGSTER = str(Path(sys.executable).parent / "dagster")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # if pytest itself is killed (no finally runs), dagster dev still gets a SIGTERM
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def pids_with_home(home: Path) -> list[int]:
    """Live processes whose environment has DAGSTER_HOME=`home`: everything a UI started on
    that instance, in whatever session or process group it put itself, orphaned or not."""
    want = f"DAGSTER_HOME={home}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if want not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(int(entry))
    return out


def leftovers_of(home: Path, seconds: float = 20) -> list[int]:
    """The processes on the instance at `home` still alive after up to `seconds` (children of a
    stopped UI may outlive it by a moment), SIGKILLed so that none outlives the test."""
    deadline = time.monotonic() + seconds
    while pids_with_home(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = pids_with_home(home)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``, read from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # fields after the parenthesised command: state ppid pgrp session ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
    except OSError:
        return "?"


class DagsterDev:
    """`dagster dev` on 127.0.0.1 in its own session; `stop()` ends the whole tree."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None):
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.stop_report: dict = {}

    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [DAGSTER, "dev", "-w", "workspace.yaml", "-p", str(self.port), "-h", "127.0.0.1"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_default_signals)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _alive_or_fail(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with code {self.proc.returncode}:\n"
                               f"{self.log_tail()}")

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        req = urllib.request.Request(
            f"{self.url}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read())
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait_ready(self, timeout: float) -> float:
        """Until the webserver answers and the code location is loaded; returns seconds."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            self._alive_or_fail()
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"dagster dev did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                     locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        while True:
            self._alive_or_fail()
            try:
                entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                entries = []
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            if entries and len(loaded) == len(entries):
                errors = [e["locationOrLoadError"] for e in entries
                          if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
                if errors:
                    raise RuntimeError(f"code location failed to load: {errors}")
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise TimeoutError(f"code location not loaded within {timeout:.0f} s: {entries}")
            time.sleep(0.5)

    def stop(self, term_timeout: float = 60) -> dict:
        """SIGTERM to the process group, SIGKILL after ``term_timeout``, then SIGKILL
        anything of the session still alive. Returns what happened."""
        if self.proc is None:
            return {}
        sid = self.proc.pid  # start_new_session: session id == process group id == pid
        t0 = time.monotonic()
        report = {"sigterm_exit_seconds": None, "killed_after_timeout": False, "leftovers": []}
        try:
            os.killpg(sid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=term_timeout)
        except subprocess.TimeoutExpired:
            report["killed_after_timeout"] = True
            try:
                os.killpg(sid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        # children shut down by dagster dev may outlive it by a moment
        deadline = time.monotonic() + 15
        while session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
        report["sigterm_exit_seconds"] = round(time.monotonic() - t0, 1)
        leftovers = session_pids(sid)
        report["leftovers"] = [(pid, _cmdline(pid)) for pid in leftovers]
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
        report["after_sigkill"] = [(pid, _cmdline(pid)) for pid in session_pids(sid)]
        self._log.close()
        self.stop_report = report
        return report


def launch_chromium(playwright):
    """Debian's chromium, headless, nothing fetched from the network; Playwright gives
    each launch a fresh temporary profile."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                      args=CHROMIUM_ARGS, timeout=120_000)
