"""Benchmark: 100 times the paper's size end to end (1,700,000 firms, 2005-2012).

About all of the survey's manufacturing firms. The same measurement as
``bench_pipeline.py`` (it is imported: generation in its own child process and reported
apart, then the pipeline in a fresh child through Dagster exactly as ``offshoring run``
does, time and CPU per asset and layer from the instance's event log, peak memory of
the process tree sampled from /proc), with what a run of this size needs besides:

* a memory cap per child (``--max-gib``, default 20): a child above it stops itself
  (exit 3) instead of taking the shared machine down, and the report says so;
* a time cap per child (``--timeout-min``);
* when the pipeline breaks (memory, time, an error), the report says where: the last
  asset started, the assets finished with their times (from the progress lines), the
  memory at the break, and the error's last lines;
* the raw folder is kept under ``--workdir`` and reused by a later run (the generation
  figures are kept beside it in ``generate.json``).

Goal (2 cores): the pipeline in under 15 minutes with a peak under 12 GiB. The last
line printed is one JSON object (``run_all.py --only bench_100x`` reads it).

    .venv/bin/python bench/bench_100x.py --workdir /tmp/b100          # generate (once) and run
    .venv/bin/python bench/bench_100x.py --workdir /tmp/b100 --firms 170000   # a smaller dry run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_pipeline as bp  # noqa: E402
from _measure import last_json_line, machine_info, run_measured  # noqa: E402

FIRMS = 100 * bp.PAPER_FIRMS
TARGETS = {"pipeline_s": 15 * 60.0, "peak_mib": 12 * 1024.0}
CAPPED_EXIT = 3


# ------------------------------------------------------------------------- children


def _watchdog(cap_mib: float, interval: float = 0.2) -> None:
    """Stop this process (exit 3, a message on stderr) once its RSS passes ``cap_mib``."""
    page = os.sysconf("SC_PAGE_SIZE")

    def watch() -> None:
        peak = 0.0
        while True:
            try:
                with open("/proc/self/statm") as fh:
                    rss = int(fh.read().split()[1]) * page / 2**20
            except OSError:
                rss = 0.0
            peak = max(peak, rss)
            if rss > cap_mib:
                sys.stderr.write(f"\nMEMORY CAP: RSS {rss:,.0f} MiB above the cap of {cap_mib:,.0f} MiB; "
                                 "stopping\n")
                sys.stderr.flush()
                sys.stdout.flush()
                os._exit(CAPPED_EXIT)
            time.sleep(interval)

    threading.Thread(target=watch, daemon=True).start()


def child_events(root: Path) -> None:
    """After a pipeline child died: its runs and steps from the instance it left (the same
    reading as bench_pipeline's child, which a dead child never reached); one JSON line."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    instance = dg.DagsterInstance.get()
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
             dg.DagsterEventType.STEP_FAILURE}
    runs, steps = [], []
    for run in instance.get_runs():
        stats = instance.get_run_stats(run.run_id)
        runs.append({"run_id": run.run_id, "job": run.job_name, "status": run.status.value,
                     "start": stats.start_time, "end": stats.end_time})
        open_steps: dict[str, float] = {}
        for rec in instance.all_logs(run.run_id, of_type=kinds):
            ev = rec.dagster_event
            if ev.event_type == dg.DagsterEventType.STEP_START:
                open_steps[ev.step_key] = rec.timestamp
            elif ev.step_key in open_steps:
                start = open_steps.pop(ev.step_key)
                steps.append({"asset": ev.step_key, "start": start, "end": rec.timestamp,
                              "ok": ev.event_type == dg.DagsterEventType.STEP_SUCCESS})
        steps += [{"asset": k, "start": t, "end": None, "ok": False} for k, t in open_steps.items()]
    print(json.dumps({"runs": runs, "steps": steps}, default=str))


def broken_assets(root: Path, samples: list, cap_mib: float) -> list[dict]:
    """Time and peak memory of every asset of a run that broke, the one running at the
    break included (to the last sample)."""
    r = run_measured([sys.executable, __file__, "_events", str(root), str(cap_mib)], cwd=ROOT)
    got = last_json_line(r.stdout)
    if not got:
        return []
    last = samples[-1][0] if samples else time.time()
    rows: dict[str, dict] = {}
    for s in got["steps"]:
        end = s["end"] or last
        start_mib, peak_mib, cpu = bp._window(samples, s["start"], end)
        a = rows.setdefault(s["asset"], {"asset": s["asset"], "seconds": 0.0, "cpu_s": 0.0, "steps": 0,
                                         "peak_mib": 0.0, "rise_mib": 0.0, "finished": True})
        a["seconds"] = round(a["seconds"] + end - s["start"], 2)
        a["cpu_s"] = round(a["cpu_s"] + cpu, 2)
        a["steps"] += 1
        a["peak_mib"] = round(max(a["peak_mib"], peak_mib), 1)
        a["rise_mib"] = round(max(a["rise_mib"], peak_mib - start_mib), 1)
        a["finished"] = a["finished"] and s["end"] is not None
    return sorted(rows.values(), key=lambda a: -a["seconds"])


def child(kind: str, args: list[str], cap_mib: float) -> None:
    if kind == "_events":
        child_events(Path(args[0]))
        return
    _watchdog(cap_mib)
    if kind == "_generate":
        bp.child_generate(Path(args[0]), int(args[1]), int(args[2]))
    else:
        bp.child_pipeline(Path(args[0]))


# --------------------------------------------------------------------------- parent

_STARTED = re.compile(r"^\s+- (\w+) \.\.\.")
_FINISHED = re.compile(r"^\s+ok (\w+) \(([\d.]+) s\)")


def progress(stdout: str) -> dict:
    """What the pipeline's progress lines say: assets finished (with seconds, summed over
    the survey years' partitions) and the last asset started but not finished."""
    done: dict[str, float] = {}
    running = None
    for line in stdout.splitlines():
        m = _STARTED.match(line)
        if m:
            running = m.group(1)
            continue
        m = _FINISHED.match(line)
        if m:
            done[m.group(1)] = round(done.get(m.group(1), 0.0) + float(m.group(2)), 2)
            if running == m.group(1):
                running = None
    return {"finished": done, "running": running}


def _clean(root: Path) -> None:
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal", "warehouse.duckdb.tmp", "reports", "dagster_home"):
        p = root / name
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def generate(root: Path, firms: int, seed: int, cap_mib: float, timeout_s: float) -> dict:
    raw = root / "raw"
    saved = root / "generate.json"
    if (raw / "truth.json").exists() and saved.exists():
        gen = json.loads(saved.read_text())
        gen["reused"] = True
        print(f"== {firms:,} firms: reusing {raw} (generated in {gen.get('wall_s', 0):.1f} s, "
              f"peak {gen.get('maxrss_mib', 0):,.0f} MiB)", flush=True)
        return gen
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"== {firms:,} firms: generating ({bp.YEARS}, seed {seed}) ...", flush=True)
    r = run_measured([sys.executable, __file__, "_generate", str(raw), str(firms), str(seed), str(cap_mib)],
                     cwd=ROOT, timeout_s=timeout_s)
    gen = last_json_line(r.stdout) or {}
    gen.update(wall_s=round(r.wall_s, 3), cpu_s=round(r.cpu_s, 2), maxrss_mib=round(r.maxrss_mib, 1),
               tree_peak_mib=round(r.tree_peak_mib, 1), returncode=r.returncode,
               load_avg_before=[round(x, 2) for x in r.load_before],
               load_avg_after=[round(x, 2) for x in r.load_after])
    if r.returncode != 0:
        gen["error"] = ("memory cap" if r.returncode == CAPPED_EXIT else
                        "time cap" if r.wall_s >= timeout_s else f"exit {r.returncode}")
        gen["stderr_tail"] = r.stderr[-3000:]
        print(f"   generation FAILED ({gen['error']}) after {r.wall_s:.1f} s, peak "
              f"{max(r.maxrss_mib, r.tree_peak_mib):,.0f} MiB\n{r.stderr[-3000:]}", flush=True)
        return gen
    saved.write_text(json.dumps(gen, indent=2))
    print(f"   generated in {r.wall_s:.1f} s (CPU {r.cpu_s:.1f} s), peak {r.maxrss_mib:,.0f} MiB, "
          f"{gen.get('raw_mb', 0):,.0f} MB of raw files", flush=True)
    return gen


def pipeline(root: Path, firms: int, seed: int, gen: dict, cap_mib: float, timeout_s: float) -> dict:
    _clean(root)
    print(f"== {firms:,} firms: pipeline (run_everything through Dagster) ...", flush=True)
    r = run_measured([sys.executable, __file__, "_pipeline", str(root), str(cap_mib)], cwd=ROOT, echo=True,
                     timeout_s=timeout_s)
    peak = max(r.maxrss_mib, r.tree_peak_mib)
    res: dict = {"firms": firms, "seed": seed, "generate": gen, "child_wall_s": round(r.wall_s, 3),
                 "child_cpu_s": round(r.cpu_s, 2), "maxrss_mib": round(r.maxrss_mib, 1),
                 "tree_peak_mib": round(r.tree_peak_mib, 1), "peak_mib": round(peak, 1),
                 "returncode": r.returncode, "load_avg_before": [round(x, 2) for x in r.load_before],
                 "load_avg_after": [round(x, 2) for x in r.load_after]}
    child_out = last_json_line(r.stdout)
    # kept before any printing: a report that fails must not lose a run of this length
    (root / "pipeline_child.json").write_text(json.dumps(
        {"returncode": r.returncode, "wall_s": r.wall_s, "maxrss_mib": r.maxrss_mib,
         "tree_peak_mib": r.tree_peak_mib, "child": child_out, "samples": r.samples}, default=str))
    if r.returncode == 0 and child_out is not None:
        res.update(ok=child_out["ok"], import_s=child_out["import_s"], pipeline_s=child_out["pipeline_s"],
                   pipeline_cpu_s=round(bp._window(r.samples, child_out["wall_start"], child_out["wall_end"])[2], 2),
                   vmhwm_mib=child_out.get("vmhwm_mib"), counts=child_out["counts"], models=child_out["models"])
        res.update(bp.summarise(child_out, r.samples))
        if not child_out["ok"]:
            res["broke"] = {"what": "an asset failed (see the run's output)", **progress(r.stdout),
                            "stderr_tail": r.stderr[-3000:]}
        return res
    what = ("memory cap" if r.returncode == CAPPED_EXIT else
            "time cap" if r.wall_s >= timeout_s else f"the child exited with {r.returncode}")
    # the last samples may be of the exiting process: the largest RSS of the last 3 seconds
    tail = [m for t, m, _ in r.samples if r.samples and t >= r.samples[-1][0] - 3]
    res.update(ok=False, pipeline_s=None,
               broke={"what": what, **progress(r.stdout), "at_s": round(r.wall_s, 1),
                      "rss_at_break_mib": round(max(tail), 1) if tail else None,
                      "stderr_tail": r.stderr[-3000:]},
               assets_at_break=broken_assets(root, r.samples, cap_mib))
    return res


def print_assets(res: dict) -> None:
    """The pipeline's figures (bench_pipeline's per-size report, without its other parts)."""
    c = res.get("counts") or {}
    print(f"\n### pipeline: {c.get('panel.firm_years', 0):,} firm-years in panel.firm_years, "
          f"{c.get('raw.survey_returns', 0):,} survey returns; warehouse {c.get('db_mb', 0):,.0f} MB")
    print(f"pipeline:   {res['pipeline_s']:.1f} s = {res['pipeline_s'] / 60:.1f} min in {res['n_runs']} run(s) "
          f"(steps {res['steps_total_s']:.1f} s + Dagster {res['dagster_overhead_s']:.1f} s); imports and "
          f"definitions {res['import_s']:.1f} s before it")
    print(f"CPU:        {res['pipeline_cpu_s']:.1f} s during the pipeline ({res['pipeline_cpu_s'] / res['pipeline_s']:.2f} "
          f"cores busy on average)")
    print(f"peak memory: ru_maxrss {bp._mib(res['maxrss_mib'])}; sampled process tree {bp._mib(res['tree_peak_mib'])}")
    print(f"load average before/after: {res['load_avg_before'][0]:.2f} / {res['load_avg_after'][0]:.2f}")
    print("\n| layer | assets | steps | wall s | CPU s |\n|---|---:|---:|---:|---:|")
    for g, layer in res["layers"].items():
        print(f"| {g} | {layer['assets']} | {layer['steps']} | {layer['seconds']:.1f} | {layer['cpu_s']:.1f} |")
    print("\n| asset | layer | steps | wall s | CPU s | peak RSS MiB | rise MiB |\n|---|---|---:|---:|---:|---:|---:|")
    for a in res["assets"]:
        print(f"| {a['asset']} | {a['group']} | {a['steps']} | {a['seconds']:.2f} | {a['cpu_s']:.2f} | "
              f"{a['peak_mib']:,.0f} | {a['rise_mib']:,.0f} |")
    if res.get("models"):
        print("model fits: " + "; ".join(f"{k} {v}" for k, v in res["models"].items()))


def print_report(res: dict) -> dict:
    gen = res["generate"]
    print(f"\n### {res['firms']:,} firms (x{res['firms'] / bp.PAPER_FIRMS:g} the paper), end to end")
    if gen.get("error"):
        print(f"generation FAILED: {gen['error']} after {gen['wall_s']:.1f} s, peak {gen['maxrss_mib']:,.0f} MiB")
    else:
        print(f"generation: {gen.get('wall_s', 0):.1f} s wall, {gen.get('cpu_s', 0):.1f} s CPU, peak "
              f"{bp._mib(max(gen.get('maxrss_mib', 0), gen.get('tree_peak_mib', 0)))}, "
              f"{gen.get('raw_mb', 0):,.0f} MB of raw files, {gen.get('firm_years', 0):,} firm-years"
              + (" (reused; measured when it was written)" if gen.get("reused") else "")
              + " - not pipeline time")
        if gen.get("timings"):
            print(f"generation stages (s): {gen['timings']}, writing {gen.get('seconds_write')}")
    verdict = {"pipeline_s": res.get("pipeline_s"), "peak_mib": res["peak_mib"], "ok": bool(res.get("ok")),
               "time_target_s": TARGETS["pipeline_s"], "peak_target_mib": TARGETS["peak_mib"]}
    verdict["time_met"] = bool(res.get("ok")) and res["pipeline_s"] < TARGETS["pipeline_s"]
    verdict["memory_met"] = res["peak_mib"] < TARGETS["peak_mib"]
    if "assets" in res:
        print_assets(res)
    else:
        b = res["broke"]
        print(f"pipeline BROKE: {b['what']} after {b['at_s']:.0f} s; running: {b['running']}; "
              f"peak {bp._mib(res['peak_mib'])}, RSS at the break {b['rss_at_break_mib']} MiB")
        if res.get("assets_at_break"):
            print("\n| asset | steps | wall s | CPU s | peak RSS MiB | rise MiB | |\n|---|---:|---:|---:|---:|---:|---|")
            for a in res["assets_at_break"]:
                print(f"| {a['asset']} | {a['steps']} | {a['seconds']:.1f} | {a['cpu_s']:.1f} | "
                      f"{a['peak_mib']:,.0f} | {a['rise_mib']:,.0f} | {'' if a['finished'] else 'BROKE HERE'} |")
        else:
            print("\n| asset finished before the break | wall s (progress lines) |\n|---|---:|")
            for a, s in sorted(b["finished"].items(), key=lambda kv: -kv[1]):
                print(f"| {a} | {s:.1f} |")
        if b.get("stderr_tail"):
            print("\nlast lines of the error output:\n" + "\n".join(b["stderr_tail"].strip().splitlines()[-15:]))
    if res.get("broke") and "assets" in res:
        print(f"\nthe pipeline reported a failure: {res['broke']['what']}; last asset started "
              f"{res['broke']['running']}")
    print("\n### Targets (100x)")
    t = (f"pipeline {res['pipeline_s']:.1f} s = {res['pipeline_s'] / 60:.1f} min" if res.get("pipeline_s") else
         "pipeline did not finish")
    print(f"{res['firms']:,} firms: {t} (target < {TARGETS['pipeline_s'] / 60:.0f} min: "
          f"{'met' if verdict['time_met'] else 'MISSED'}); peak memory {res['peak_mib'] / 1024:.2f} GiB "
          f"(target < {TARGETS['peak_mib'] / 1024:.0f} GiB: {'met' if verdict['memory_met'] else 'MISSED'})")
    return verdict


def paired_ratio(res: dict, small: dict | None) -> dict | None:
    """x100 against x1 (or any smaller size) measured in the same invocation: growth per asset."""
    if small is None or "assets" not in res or "assets" not in small:
        return None
    growth = bp.ratios(small, res)
    bp.print_ratios(small, res, growth)
    return growth


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_generate", "_pipeline", "_events"):
        child(argv[0], argv[1:-1], float(argv[-1]))
        return {}
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--firms", type=int, default=FIRMS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_100x"),
                    help="kept: the raw folder is reused by the next run (default /tmp/bench_100x)")
    ap.add_argument("--regenerate", action="store_true", help="write the raw folder again")
    ap.add_argument("--max-gib", type=float, default=20.0, help="memory cap of each child (GiB)")
    ap.add_argument("--timeout-min", type=float, default=60.0, help="time cap of each child (minutes)")
    ap.add_argument("--paired", type=int, default=0, metavar="FIRMS",
                    help="also run the pipeline at this size first (e.g. 17000) and print the growth "
                         "ratios of the same invocation")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    info = machine_info()
    print(f"machine: {info['cpus']} CPUs, {info['mem_gib']} GiB, load average {info['load_avg']}", flush=True)
    cap, timeout = args.max_gib * 1024, args.timeout_min * 60
    small = None
    if args.paired:
        sroot = args.workdir / f"firms_{args.paired}_seed_{args.seed}"
        sgen = generate(sroot, args.paired, args.seed, cap, timeout)
        if not sgen.get("error"):
            small = pipeline(sroot, args.paired, args.seed, sgen, cap, timeout)
            if "assets" in small:
                print_assets(small)
    root = args.workdir / f"firms_{args.firms}_seed_{args.seed}"
    if args.regenerate:
        shutil.rmtree(root, ignore_errors=True)
    gen = generate(root, args.firms, args.seed, cap, timeout)
    if gen.get("error"):
        res = {"firms": args.firms, "seed": args.seed, "generate": gen, "ok": False, "pipeline_s": None,
               "peak_mib": max(gen["maxrss_mib"], gen["tree_peak_mib"]),
               "broke": {"what": f"generation: {gen['error']}", "running": "generate", "finished": {},
                         "at_s": gen["wall_s"], "rss_at_break_mib": None, "stderr_tail": gen.get("stderr_tail", "")}}
    else:
        res = pipeline(root, args.firms, args.seed, gen, cap, timeout)
    verdict = print_report(res)
    growth = paired_ratio(res, small)
    summary = {"bench": "bench_100x", "machine": info, "result": res, "small": small, "growth": growth,
               "targets": verdict}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, default=str))
    return summary


if __name__ == "__main__":
    main()
