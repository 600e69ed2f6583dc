"""Run a command in a child process and measure it: wall time, peak memory, output.

Peak memory is taken two ways, both for the child's whole process tree:

* ``maxrss``: ``ru_maxrss`` from ``os.wait4`` on the child (the kernel's high-water
  mark of the largest single process of the tree: the child or any descendant it
  reaped);
* ``tree_peak``: the largest *sum* of the RSS of the child and its live
  descendants, sampled from ``/proc`` every ``interval`` seconds (catches
  concurrent processes that ``ru_maxrss`` would report one at a time).

The samples (wall-clock time, tree RSS) are returned too, so a caller can
attribute memory to what the child was doing at the time.

Linux only (``/proc``); nothing here needs psutil.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class ChildResult:
    returncode: int
    wall_s: float
    maxrss_mib: float  # ru_maxrss of the tree's largest process
    tree_peak_mib: float  # largest sampled sum over the live tree
    stdout: str
    stderr: str
    cpu_s: float = 0.0  # user + system CPU of the child and its reaped descendants
    # (time.time(), tree RSS MiB, tree CPU seconds of the live processes)
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
        except OSError:
            continue
    return out


def _rss_pages(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process (its own threads), clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def tree_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process and all its live descendants.

    A descendant caught between fork and exec (``subprocess`` runs ``git`` from a
    process of several GiB) still maps its parent's pages: with the parent's name and
    at least 90% of its RSS it is taken for a copy and left out of the sum.
    """
    seen, stack, pages, ticks = set(), [(pid, None)], 0, 0
    while stack:
        p, parent = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        rss = _rss_pages(p)
        if parent is not None and rss >= 0.9 * parent[1] and _comm(p) == parent[0]:
            rss = 0
        pages += rss
        ticks += _cpu_ticks(p)
        kids = _children(p)
        if kids:
            me = (_comm(p), max(rss, 1))
            stack.extend((k, me) for k in kids)
    return pages * PAGE / 2**20, ticks / TICK


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its live descendants, MiB."""
    return tree_stats(pid)[0]


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 interval: float = 0.1, echo: bool = False, timeout_s: float | None = None) -> ChildResult:
    """Run ``cmd`` to completion; stdout/stderr are captured (and echoed if asked)."""
    load_before = os.getloadavg()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out if not echo else subprocess.PIPE,
                                stderr=err, text=True)
        samples: list[tuple[float, float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.time(), *tree_stats(proc.pid)))
                stop.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        echo_thread = None
        if echo:
            def pump() -> None:
                assert proc.stdout is not None
                for line in proc.stdout:
                    out.write(line)
                    if not line.lstrip().startswith("{"):  # machine-readable lines stay quiet
                        print(line, end="", flush=True)

            echo_thread = threading.Thread(target=pump, daemon=True)
            echo_thread.start()
        if timeout_s is not None:
            timer = threading.Timer(timeout_s, proc.kill)
            timer.daemon = True
            timer.start()
        # wait4 on this child alone: its rusage covers it and the descendants it reaped
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if timeout_s is not None:
            timer.cancel()
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if echo_thread is not None:
            echo_thread.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    peak = max((m for _, m, _ in samples), default=0.0)
    return ChildResult(
        returncode=proc.returncode, wall_s=wall, maxrss_mib=usage.ru_maxrss / 1024,
        tree_peak_mib=peak, cpu_s=usage.ru_utime + usage.ru_stime, stdout=stdout, stderr=stderr, samples=samples,
        load_before=load_before, load_after=os.getloadavg(),
    )


def last_json_line(text: str) -> dict | None:
    """The last line of ``text`` that parses as a JSON object, if any."""
    import json

    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def machine_info() -> dict:
    mem_kib = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "mem_gib": round(mem_kib / 2**20, 1),
            "load_avg": [round(x, 2) for x in os.getloadavg()]}
