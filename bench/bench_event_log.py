"""Benchmark: what the instance's storage costs per run, Dagster's own against the project's.

One asset with ``--checks`` asset checks (a run then records about 3 events per check: the
check planned, its output, its evaluation; plus the run's own ~15), materialized in a fresh
DAGSTER_HOME under each storage, the two alternating round by round so that a burst of load
from other work falls on both:

* ``dagster``: Dagster's default SQLite storage (``storage: sqlite``), a new engine and a new
  connection for every write;
* ``project``: ``orchestration/instance/dagster.yaml`` as shipped
  (`orchestration.instance_storage.ProjectSqliteStorage`: engines kept, the index
  connection kept open).

Each round also checks that the two runs recorded the same event types in the same order.
Printed: per-round times, the paired ratio project / dagster per round and its median, and
the time per event; the last line is one JSON object.

    .venv/bin/python bench/bench_event_log.py [--checks 60] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STOCK_YAML = "telemetry:\n  enabled: false\nstorage:\n  sqlite:\n    base_dir: {home}\n"


def _home(kind: str, tmp: Path, i: int) -> Path:
    home = tmp / f"{kind}_{i}"
    home.mkdir()
    if kind == "project":
        shutil.copy(ROOT / "orchestration" / "instance" / "dagster.yaml", home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(STOCK_YAML.format(home=home))
    return home


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="also write the JSON object to this file")
    args = ap.parse_args(argv)

    import dagster as dg

    logging.disable(logging.CRITICAL)  # Dagster's console lines would be timed too
    n = args.checks

    @dg.asset(check_specs=[dg.AssetCheckSpec(f"c{i}", asset="checked") for i in range(n)])
    def checked():
        yield dg.MaterializeResult(metadata={"rows": 1})
        for i in range(n):
            yield dg.AssetCheckResult(check_name=f"c{i}", passed=True, description="x" * 100)

    times: dict[str, list[float]] = {"dagster": [], "project": []}
    events: dict[str, int] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench_event_log_") as tmp:
        for r in range(args.rounds):
            order = ("dagster", "project") if r % 2 == 0 else ("project", "dagster")
            kinds: dict[str, list[str]] = {}
            for kind in order:
                home = _home(kind, Path(tmp), r)
                os.environ["DAGSTER_HOME"] = str(home)
                with dg.DagsterInstance.get() as instance:
                    dg.materialize([checked], instance=instance)  # the databases exist; then time one run
                    t0 = time.perf_counter()
                    result = dg.materialize([checked], instance=instance)
                    times[kind].append(time.perf_counter() - t0)
                    kinds[kind] = [e.event_type_value for e in
                                   (rec.dagster_event for rec in instance.all_logs(result.run_id)) if e]
            if kinds["dagster"] != kinds["project"]:
                print("the two storages recorded different events:", kinds, file=sys.stderr)
                return 1
            events = {k: len(v) for k, v in kinds.items()}
            load.append(os.getloadavg()[0])
    ratios = [p / d for p, d in zip(times["project"], times["dagster"])]
    n_events = events["dagster"]
    out = {
        "bench": "event_log", "checks": n, "rounds": args.rounds, "events_per_run": n_events,
        "dagster_s": times["dagster"], "project_s": times["project"], "paired_ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "ms_per_event_dagster": 1000 * statistics.median(times["dagster"]) / n_events,
        "ms_per_event_project": 1000 * statistics.median(times["project"]) / n_events,
        "load_avg": [min(load), max(load)],
    }
    print(f"### event-log storage: one run of an asset with {n} checks ({n_events} events in the run's log)\n")
    print("| round | Dagster's storage s | project storage s | project / Dagster |")
    print("|---:|---:|---:|---:|")
    for i, (d, p, q) in enumerate(zip(times["dagster"], times["project"], ratios), 1):
        print(f"| {i} | {d:.2f} | {p:.2f} | {q:.2f} |")
    print(f"\nmedian paired ratio {out['median_ratio']:.2f}; per event {out['ms_per_event_dagster']:.1f} ms "
          f"-> {out['ms_per_event_project']:.1f} ms (medians); same events in both: yes; "
          f"load average {min(load):.2f}-{max(load):.2f} on {os.cpu_count()} CPUs")
    line = json.dumps(out)
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
