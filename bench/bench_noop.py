"""Benchmark: `offshoring run` with nothing changed since the last complete run, at the paper's size.

A world is set up once in `--workdir`: `offshoring demo --firms N` (generator files, every
asset built, the run's state recorded; about a minute and a half at 17,000 firms; reused when
the folder holds one). Then `offshoring run --synthetic` is timed `--repeat` times, each in
a fresh process, from outside (wall time of the command as users type it), and each must
print "Nothing changed since the last complete run" (a sample that ran the pipeline, because
the code changed meanwhile, is dropped and taken again, once).

The import share comes from as many runs under ``python -X importtime``: the sum of the
top-level imports (the interpreter's own start-up, ``python -c pass``, is measured apart).
What is left of the wall time is the decision itself (settings, key, warehouse identity,
hashes of the inputs, the recorded state) and the interpreter's exit. Printed: the medians, the import share, the
slowest top-level imports, and whether any library a run needs but the no-op does not
(scipy, statsmodels, pandas, pandera, dagster) was imported. Last line: one JSON object.

Target (2 cores, quiet): under 3 s.

    .venv/bin/python bench/bench_noop.py                       # 17,000 firms, 5 runs
    .venv/bin/python bench/bench_noop.py --workdir /tmp/noop_bench --keep   # keep the world for the next time
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine_info

TARGET_S = 3.0
NOOP_MESSAGE = "Nothing changed since the last complete run"
HEAVY_LIBRARIES = ("scipy", "statsmodels", "pandas", "pandera", "dagster")
PROJECT_PACKAGES = ("offshoring", "orchestration", "assets")


def _env(world: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSHORING_")}
    env.update({"OFFSHORING_RAW_DIR": str(world / "raw"), "OFFSHORING_DB": str(world / "warehouse.duckdb"),
                "OFFSHORING_REPORTS_DIR": str(world / "reports"), "DAGSTER_HOME": str(world / "dagster_home")})
    return env


def _command() -> list[str]:
    """The `offshoring` command of this interpreter's environment (as users run it)."""
    script = Path(sys.executable).parent / "offshoring"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestration.cli"]


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return time.perf_counter() - t0, proc


def _imports(stderr: str) -> tuple[dict[str, float], dict[str, float], set[str]]:
    """From the lines ``python -X importtime`` writes: (seconds per top-level import, seconds per
    library imported by the project's own modules, every module imported)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") < 2:
            continue
        _, cumulative, name = line.split("|", 2)
        if cumulative.strip().isdigit():  # not the header line
            rows.append((len(name) - len(name.lstrip()), name.strip(), int(cumulative) / 1e6))
    top, libraries, names = {}, {}, set()
    ancestors: list[tuple[int, str]] = []
    for depth, module, seconds in reversed(rows):  # a parent before what it imported
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        names.add(module)
        if depth == 1:
            top[module] = top.get(module, 0.0) + seconds
        inside_library = any(a.split(".")[0] not in PROJECT_PACKAGES for _, a in ancestors)
        if "." not in module and module not in PROJECT_PACKAGES and not inside_library:
            libraries[module] = libraries.get(module, 0.0) + seconds
        ancestors.append((depth, module))
    return top, libraries, names


def set_up(world: Path, firms: int, env: dict[str, str]) -> float:
    """The world's first complete run (`offshoring demo`); 0 when it holds one already."""
    if (world / "warehouse.duckdb").exists() and (world / "reports" / "index.html").exists():
        return 0.0
    print(f"setting up {world}: offshoring demo --firms {firms} ...", flush=True)
    wall, proc = _timed(_command() + ["demo", "--firms", str(firms)], env)
    if proc.returncode != 0:
        raise SystemExit(f"offshoring demo failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def measure(world: Path, repeat: int, env: dict[str, str]) -> dict:
    cmd = _command() + ["run", "--synthetic"]
    walls: list[float] = []
    retaken = 0
    while len(walls) < repeat:
        wall, proc = _timed(cmd, env)
        if proc.returncode != 0:
            raise SystemExit(f"offshoring run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        if NOOP_MESSAGE not in proc.stdout:
            retaken += 1
            if retaken > 1:
                raise SystemExit("offshoring run ran the pipeline twice: the code or the data keep changing")
            continue  # it ran (the code changed since the world's run): the state is recorded now
        walls.append(wall)
    # the interpreter's own start-up imports (site, encodings, ...) count as start-up, not as imports
    _, bare = _timed([sys.executable, "-X", "importtime", "-c", "pass"], env)
    at_startup = _imports(bare.stderr)[2]
    importtime = [sys.executable, "-X", "importtime", "-m", "orchestration.cli", "run", "--synthetic"]
    imports, libs, modules = [], [], set()
    for _ in range(repeat):
        _, proc = _timed(importtime, env)
        if NOOP_MESSAGE not in proc.stdout:
            raise SystemExit("the no-op under -X importtime ran the pipeline")
        top, libraries, names = _imports(proc.stderr)
        imports.append(sum(s for m, s in top.items() if m not in at_startup))
        libs.append({m: s for m, s in libraries.items() if m not in at_startup})
        modules |= names
    startup = [_timed([sys.executable, "-c", "pass"], env)[0] for _ in range(repeat)]
    median_wall, median_imports, median_startup = (statistics.median(walls), statistics.median(imports),
                                                   statistics.median(startup))
    slowest = sorted({m for t in libs for m in t}, key=lambda m: -statistics.median(t.get(m, 0.0) for t in libs))[:6]
    return {
        "walls_s": [round(w, 3) for w in walls],
        "median_s": round(median_wall, 3),
        "median_imports_s": round(median_imports, 3),
        "import_share": round(median_imports / median_wall, 3),
        "median_startup_s": round(median_startup, 3),
        "median_rest_s": round(max(median_wall - median_imports - median_startup, 0.0), 3),
        "slowest_libraries_s": {m: round(statistics.median(t.get(m, 0.0) for t in libs), 3) for m in slowest},
        "heavy_imported": sorted({m.split(".")[0] for m in modules} & set(HEAVY_LIBRARIES)),
        "retaken": retaken,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--firms", type=int, default=17000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None, help="where the world is (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the world in --workdir for the next time")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench_noop_"))
    world = base / f"firms_{args.firms}"
    world.mkdir(parents=True, exist_ok=True)
    env = _env(world)
    load_before = os.getloadavg()
    try:
        setup_s = set_up(world, args.firms, env)
        figures = measure(world, args.repeat, env)
    finally:
        if not args.keep:
            shutil.rmtree(world if args.workdir else base, ignore_errors=True)
    load_after = os.getloadavg()
    met = figures["median_s"] < TARGET_S
    print(f"### no-op `offshoring run` at {args.firms:,} firms")
    print()
    print(f"wall (median of {args.repeat}): {figures['median_s']:.2f} s "
          f"(runs: {', '.join(f'{w:.2f}' for w in figures['walls_s'])}); target < {TARGET_S:.0f} s: "
          f"{'met' if met else 'MISSED'}")
    print(f"imports: {figures['median_imports_s']:.2f} s ({figures['import_share']:.0%} of the wall time); "
          f"interpreter start-up {figures['median_startup_s']:.2f} s; the rest (the decision itself, "
          f"the interpreter's exit) {figures['median_rest_s']:.2f} s")
    print("slowest libraries (with what they import): "
          + ", ".join(f"{m} {s:.2f} s" for m, s in figures["slowest_libraries_s"].items()))
    print(f"libraries only a run needs, imported: {', '.join(figures['heavy_imported']) or 'none'}")
    print(f"load average {load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} CPUs"
          + (f"; world set up in {setup_s:.0f} s" if setup_s else "; world reused"))
    out = {"bench": "noop", "firms": args.firms, "repeat": args.repeat, "target_s": TARGET_S, "target_met": met,
           "setup_s": round(setup_s, 1), "load_before": [round(x, 2) for x in load_before],
           "load_after": [round(x, 2) for x in load_after], "machine": machine_info(), **figures}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
