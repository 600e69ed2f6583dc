"""Run every benchmark under bench/ and write a Markdown summary (bench/RESULTS.md).

Each script runs in its own child process (wall time and peak memory of its process
tree are measured from outside, see ``bench/_measure.py``); its figures are read from
the last JSON line it prints (or the ``--json`` file it writes), with a fallback to
its printed text for scripts that print no JSON. The summary holds a table of the
headline figures against their targets, then each script's command and output.

    .venv/bin/python bench/run_all.py            # everything, 10x end-to-end included (~15-20 min)
    .venv/bin/python bench/run_all.py --quick    # skips the 170,000-firm end-to-end run
    .venv/bin/python bench/run_all.py --only pipeline,probit --out /tmp/RESULTS.md

Benchmarks: quadcheck (fit + quadrature check over the fit, paired in one process, target
<= 1.5x), probit_memory (peak memory of the probit's sample and fit, before vs after the
design was held once, same estimates), synth (synthetic data at 17,000 firms, target < 60 s), raw_load (one survey
year of 100,000 rows vs bare DuckDB read_csv, target <= 2x), probit (dynamic RE probit
vs statsmodels pooled Probit, target <= 10x, and vs panelbox), pipeline (end to end
through Dagster at 17,000 and 170,000 firms, targets < 60 s and < 5 min, peak < 4 GiB),
noop (`offshoring run` with nothing changed at 17,000 firms, with its import share, target < 3 s).
``montecarlo`` (bias and coverage, not speed) and ``bench_100x`` (1.7 million firms end to
end, tens of minutes) run only when named in --only. With --only, the benchmarks run are
merged into the existing summary (their table rows and ``## name`` sections replaced or
added; the rest kept); --replace writes a new file instead.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _measure import last_json_line, machine_info, run_measured


@dataclass
class Bench:
    name: str
    script: str
    args: list[str]
    quick_args: list[str] | None = None
    json_flag: bool = False  # the script accepts --json PATH
    timeout_s: float = 1800
    default: bool = True
    # figures from the printed text when the script prints no JSON
    parse_text: Callable[[str], dict[str, Any]] | None = None
    # headline, target, verdict ("met" / "MISSED" / "") from the figures
    headline: Callable[[dict[str, Any]], tuple[str, str, str]] = lambda d: ("", "", "")
    figures: dict[str, Any] = field(default_factory=dict)


def _num(pattern: str, text: str, cast=float):
    m = re.search(pattern, text)
    return cast(m.group(1).replace(",", "")) if m else None


# ------------------------------------------------------------------ text parsers


def parse_synth(text: str) -> dict[str, Any]:
    return {
        "median_s": _num(r"median ([\d.]+) s for", text),
        "firms": _num(r"s for (\d+) firms", text, int),
        "firm_years": _num(r"firm-years (\d+)", text, int),
        "target_met": "target (< 60 s): met" in text,
    }


def parse_raw_load(text: str) -> dict[str, Any]:
    return {
        "rows": _num(r"rows=(\d+)", text, int),
        "baseline_s": _num(r"read_csv -> table:\s+([\d.]+) s", text),
        "load_s": _num(r"load_survey_year:\s+([\d.]+) s", text),
        "ratio": _num(r"ratio: ([\d.]+)x", text),
    }


# --------------------------------------------------------------------- headlines


def head_synth(d: dict) -> tuple[str, str, str]:
    s = d.get("median_s")
    if s is None:
        return ("no figures parsed", "< 60 s", "")
    return (f"{s:.1f} s for {d.get('firms') or 0:,} firms ({d.get('firm_years') or 0:,} firm-years)",
            "< 60 s", "met" if s < 60 else "MISSED")


def head_raw_load(d: dict) -> tuple[str, str, str]:
    r = d.get("ratio")
    if r is None:
        return ("no figures parsed", "<= 2x", "")
    text = (f"load {d['load_s']:.2f} s vs bare read_csv {d['baseline_s']:.2f} s for "
            f"{d.get('rows') or 0:,} rows: {r:.2f}x")
    return (text, "<= 2x", "met" if r <= 2 else "MISSED")


def head_probit(d: dict) -> tuple[str, str, str]:
    r = d.get("ratio_to_pooled")
    if r is None:
        return ("no figures parsed", "<= 10x pooled", "")
    text = (f"RE probit {d.get('ours_s', 0):.2f} s vs pooled Probit {d.get('statsmodels_probit_s', 0):.2f} s "
            f"({d.get('nobs', 0):,} obs): {r:.1f}x")
    if "panelbox_over_ours" in d:
        text += (f"; panelbox {d['panelbox_over_ours']:.0f}x slower on {d.get('panelbox_firms')} firms, "
                 f"max |diff| {d.get('max_abs_param_diff_vs_panelbox', float('nan')):.1e}")
    return (text, "<= 10x pooled", "met" if r <= 10 else "MISSED")


def head_pipeline(d: dict) -> tuple[str, str, str]:
    targets = d.get("targets") or {}
    if not targets:
        return ("no figures parsed", "", "")
    parts, ok = [], True
    for n, v in targets.items():
        parts.append(f"{int(n):,} firms: {v['pipeline_s']:.1f} s, peak {v['peak_mib'] / 1024:.2f} GiB")
        ok = ok and v.get("time_met", True) and v["memory_met"] and v["ok"]
    return ("; ".join(parts), "17k < 60 s, 170k < 300 s, peak < 4 GiB", "met" if ok else "MISSED")


def head_noop(d: dict) -> tuple[str, str, str]:
    s = d.get("median_s")
    if s is None:
        return ("no figures parsed", "< 3 s", "")
    text = (f"{d.get('firms', 0):,} firms: {s:.2f} s (median of {d.get('repeat')}), imports "
            f"{d.get('median_imports_s', 0):.2f} s ({d.get('import_share', 0):.0%}); heavy libraries imported: "
            f"{', '.join(d.get('heavy_imported') or []) or 'none'}")
    return (text, "< 3 s", "met" if s < 3 else "MISSED")


def head_event_log(d: dict) -> tuple[str, str, str]:
    r = d.get("median_ratio")
    if r is None:
        return ("no figures parsed", "", "")
    text = (f"{d.get('events_per_run')} events per run: project storage / Dagster's {r:.2f} (paired, median of "
            f"{d.get('rounds')}); {d.get('ms_per_event_dagster', 0):.1f} -> {d.get('ms_per_event_project', 0):.1f} ms per event")
    return (text, "cheaper than Dagster's storage", "met" if r < 1 else "MISSED")


def head_montecarlo(d: dict) -> tuple[str, str, str]:
    return ("see output", "", "")


def head_100x(d: dict) -> tuple[str, str, str]:
    v, res = d.get("targets") or {}, d.get("result") or {}
    if not v:
        return ("no figures parsed", "", "")
    target = "< 15 min, peak < 12 GiB"
    peak = f"peak {v['peak_mib'] / 1024:.2f} GiB"
    if not v.get("ok"):
        broke = res.get("broke") or {}
        return (f"{res.get('firms', 0):,} firms: BROKE ({broke.get('what')}; at {broke.get('running')}), {peak}",
                target, "MISSED")
    return (f"{res['firms']:,} firms: pipeline {v['pipeline_s'] / 60:.1f} min, {peak}", target,
            "met" if v["time_met"] and v["memory_met"] else "MISSED")


def head_quadcheck(d: dict) -> tuple[str, str, str]:
    r = d.get("median_paired_ratio")
    if r is None:
        return ("no figures parsed", "fit + check <= 1.5x fit", "")
    text = (f"{d.get('firms', 0):,} firms: fit + check {r:.2f}x the fit (CPU {d.get('median_paired_ratio_cpu', 0):.2f}x); "
            f"former refits {d.get('median_old_ratio', float('nan')):.2f}x; "
            f"max |diff| vs refits {d.get('max_abs_diff_vs_refit', float('nan')):.1e}")
    return (text, "fit + check <= 1.5x fit", "met" if r <= 1.5 else "MISSED")


def head_probit_memory(d: dict) -> tuple[str, str, str]:
    runs = d.get("runs") or []
    if not runs:
        return ("no figures parsed", "", "")
    parts = []
    for run in runs:
        b, a = run.get("before") or {}, run.get("after") or {}
        parts.append(f"{run['firms']:,} firms: process peak {b.get('ru_maxrss_mib', 0):,.0f} -> "
                     f"{a.get('ru_maxrss_mib', 0):,.0f} MiB, fit peak {b.get('fit_peak_above_start_mib', 0):,.0f} -> "
                     f"{a.get('fit_peak_above_start_mib', 0):,.0f} MiB (max |diff| {run.get('max_abs_diff_params', 0):.0e})")
    return ("; ".join(parts), "less memory, same estimates", "")


BENCHES = [
    Bench("synth", "bench_synth.py", ["--firms", "17000"], parse_text=parse_synth, headline=head_synth,
          timeout_s=900),
    Bench("raw_load", "bench_raw_load.py", ["--rows", "100000", "--repeat", "5"],
          quick_args=["--rows", "100000", "--repeat", "3"], parse_text=parse_raw_load,
          headline=head_raw_load, timeout_s=1200),
    Bench("probit", "bench_probit.py", ["--repeat", "3"], quick_args=["--repeat", "1"], json_flag=True,
          headline=head_probit, timeout_s=2400),
    # two rounds per size, the fastest reported: one burst of load from other work on the
    # shared machine would otherwise decide the verdict
    Bench("pipeline", "bench_pipeline.py", ["--firms", "17000,170000", "--repeat", "2"],
          quick_args=["--firms", "17000", "--repeat", "2"],
          json_flag=True, headline=head_pipeline, timeout_s=5400),
    # `offshoring run` with nothing changed (sets up its own world with `offshoring demo`, ~1.5 min)
    Bench("noop", "bench_noop.py", ["--firms", "17000", "--repeat", "5"], json_flag=True, headline=head_noop,
          timeout_s=1200),
    # the instance's event-log writes: Dagster's SQLite storage against the project's (~1 min)
    Bench("event_log", "bench_event_log.py", ["--rounds", "5"], quick_args=["--rounds", "3"], json_flag=True,
          headline=head_event_log, timeout_s=900),
    Bench("quadcheck", "bench_quadcheck.py", ["--repeat", "3"], quick_args=["--repeat", "1"],
          headline=head_quadcheck, timeout_s=1800),
    Bench("probit_memory", "bench_probit_memory.py", [], quick_args=["--firms", "17338"],
          headline=head_probit_memory, timeout_s=2400),
    Bench("montecarlo", "montecarlo_probit.py", ["--reps", "20"], default=False, headline=head_montecarlo,
          timeout_s=3600),
    # 1.7 million firms: generation (once, kept in /tmp/bench_100x) and the pipeline take tens of
    # minutes and up to ~12 GiB; only when named (--only bench_100x)
    Bench("bench_100x", "bench_100x.py", ["--workdir", "/tmp/bench_100x"], json_flag=True, default=False,
          headline=head_100x, timeout_s=3 * 3600),
]


def run_bench(b: Bench, quick: bool, tmp: Path) -> dict[str, Any]:
    args = list(b.quick_args if quick and b.quick_args is not None else b.args)
    json_path = tmp / f"{b.name}.json"
    if b.json_flag:
        args += ["--json", str(json_path)]
    cmd = [sys.executable, str(HERE / b.script), *args]
    shown = " ".join([".venv/bin/python", f"bench/{b.script}", *[a for a in args if a != str(json_path)
                                                                 and a != "--json"]])
    print(f"\n===== {b.name}: {shown}", flush=True)
    t0 = time.time()
    r = run_measured(cmd, cwd=ROOT, echo=True, timeout_s=b.timeout_s)
    figures = last_json_line(r.stdout)
    if figures is None and b.json_flag and json_path.exists():
        figures = json.loads(json_path.read_text())
    if figures is None and b.parse_text is not None:
        figures = b.parse_text(r.stdout)
    figures = figures or {}
    status = "ok" if r.returncode == 0 else f"exit {r.returncode}"
    if r.returncode != 0 and r.wall_s >= b.timeout_s:
        status = f"killed after {b.timeout_s:.0f} s"
    try:
        headline, target, verdict = b.headline(figures)
    except Exception as exc:  # noqa: BLE001  (a changed script must not lose the other results)
        headline, target, verdict = (f"figures not understood: {exc}", "", "")
    if r.returncode != 0:
        verdict = "FAILED"
    return {
        "name": b.name, "command": shown, "status": status, "started": t0,
        "wall_s": round(r.wall_s, 1), "cpu_s": round(r.cpu_s, 1),
        "peak_mib": round(max(r.maxrss_mib, r.tree_peak_mib), 1),
        "load_before": [round(x, 2) for x in r.load_before], "load_after": [round(x, 2) for x in r.load_after],
        "headline": headline, "target": target, "verdict": verdict, "figures": figures,
        "stdout": r.stdout, "stderr_tail": r.stderr[-4000:] if r.returncode else "",
    }


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True, check=False).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _printed_report(stdout: str) -> str:
    """The Markdown part a script printed (from its first '### ' heading), JSON lines dropped."""
    lines = [ln for ln in stdout.splitlines() if not ln.lstrip().startswith("{")]
    for i, ln in enumerate(lines):
        if ln.startswith("### "):
            return "\n".join(lines[i:]).strip()
    return ""


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _section(r: dict) -> list[str]:
    out = ["", f"## {r['name']}", "", f"`{r['command']}`", ""]
    report = _printed_report(r["stdout"])
    if report:
        out += [report, ""]
    if r["figures"]:
        small = {k: v for k, v in r["figures"].items()
                 if v is not None and k != "bench" and not isinstance(v, (list, dict))}
        if small:
            out += ["| figure | value |", "|---|---|"]
            out += [f"| {k} | {_cell(v)} |" for k, v in small.items()]
            out.append("")
    text = "\n".join(ln for ln in r["stdout"].splitlines() if not ln.lstrip().startswith("{"))
    out += ["<details><summary>full output</summary>", "", "```", text.strip(), "```", "", "</details>"]
    if r["stderr_tail"]:
        out += ["", "stderr (tail):", "", "```", r["stderr_tail"].strip(), "```"]
    return out


def _row(r: dict) -> str:
    return (f"| {r['name']} | {r['status']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['peak_mib']:,.0f} | {r['load_before'][0]:.1f} / {r['load_after'][0]:.1f} | "
            f"{_cell(r['headline'])} | {_cell(r['target'])} | {r['verdict']} |")


def merge_markdown(results: list[dict], path: Path) -> None:
    """Put the benchmarks just run into an existing summary: each one's row of the table and
    its `## name` section are replaced (or added); everything else in the file stays."""
    lines = path.read_text(encoding="utf-8").splitlines()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    for r in results:
        row = _row(r)
        at = next((i for i, ln in enumerate(lines) if ln.startswith(f"| {r['name']} |")), None)
        if at is not None:
            lines[at] = row
        else:  # after the last row of the first table
            first = next((i for i, ln in enumerate(lines) if ln.startswith("| benchmark |")), None)
            if first is None:
                lines[1:1] = ["", "| benchmark | status | wall s | CPU s | peak MiB | load (start/end) | result | "
                              "target | verdict |", "|---|---|---:|---:|---:|---|---|---|---|", row]
            else:
                end = first
                while end + 1 < len(lines) and lines[end + 1].startswith("|"):
                    end += 1
                lines.insert(end + 1, row)
        section = _section(r)[1:]
        section[2] = f"`{r['command']}` (run {now}; commit {_git_commit()})"
        start = next((i for i, ln in enumerate(lines) if ln == f"## {r['name']}"), None)
        if start is None:
            lines += [""] + section
        else:
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            lines[start:end] = section + [""]
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


def write_markdown(results: list[dict], path: Path, quick: bool, info: dict, t_total: float) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmark results",
        "",
        (f"Written by `bench/run_all.py{' --quick' if quick else ''}` on {now}; commit {_git_commit()}; "
         f"{info['cpus']} CPUs, {info['mem_gib']} GiB; load average at the start "
         f"{info['load_avg'][0]:.2f} (the machine is shared: a load above the CPU count slows every "
         f"wall time, compare the CPU seconds). Total {t_total / 60:.1f} min."),
        "",
        "| benchmark | status | wall s | CPU s | peak MiB | load (start/end) | result | target | verdict |",
        "|---|---|---:|---:|---:|---|---|---|---|",
    ]
    for r in results:
        out.append(_row(r))
    for r in results:
        out += _section(r)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="skip the 170,000-firm end-to-end run and repeat the small timings less")
    ap.add_argument("--only", help="comma-separated: " + ",".join(b.name for b in BENCHES))
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--replace", action="store_true",
                    help="with --only: write a new summary instead of merging into the existing one")
    args = ap.parse_args(argv)
    names = {b.name for b in BENCHES}
    if args.only:
        wanted = [x.strip() for x in args.only.split(",") if x.strip()]
        unknown = set(wanted) - names
        if unknown:
            ap.error(f"unknown benchmarks {sorted(unknown)}; choose from {sorted(names)}")
        selected = [b for b in BENCHES if b.name in wanted]
    else:
        selected = [b for b in BENCHES if b.default]
    info = machine_info()
    t0 = time.perf_counter()
    results = []
    # a subset (--only) goes into the existing summary; everything writes a new one
    merge = bool(args.only) and not args.replace and args.out.exists()
    with tempfile.TemporaryDirectory(prefix="bench_run_all_") as tmp:
        for b in selected:
            results.append(run_bench(b, args.quick, Path(tmp)))
            # rewrite after every benchmark, so an interrupted run keeps what it measured
            if merge:
                merge_markdown(results[-1:], args.out)
            else:
                write_markdown(results, args.out, args.quick, info, time.perf_counter() - t0)
    print(f"\nwrote {args.out}")
    for r in results:
        print(f"  {r['name']:<10} {r['status']:<8} {r['wall_s']:>8.1f} s  {r['verdict'] or '-':<7} {r['headline']}")
    summary = {"bench": "run_all", "out": str(args.out),
               "results": [{k: v for k, v in r.items() if k not in ("stdout", "stderr_tail")} for r in results]}
    print(json.dumps(summary, default=str))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
