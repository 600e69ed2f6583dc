"""Peak memory of building the probit's estimation sample and fitting it, before vs after.

For each size (``--firms``, default 17,338 and 173,380 firms; about 113,000 and
1.13 million estimation observations) the parent simulates a firm-year panel
once (offshoring.econometrics.simulate, the columns of ``panel.model_panel``
that config/probit_table2.yaml uses) and writes it to a Parquet file. Then one
child process per (size, code version) reads it as a polars frame, as the
``outsourcing_probit`` asset does, and measures

* ``build``: ``build_dynamic_sample(panel)`` (the panel is then dropped, as in
  the asset);
* ``fit``: ``sample.fit()`` with the spec's options (adaptive 12 points,
  clustered errors);
* ``check``: what the ``outsourcing_probit`` asset computes next, the
  quadrature check (``--quadrature-check``, default 8,16,24 nodes, as
  config/models.yaml) and the average partial effects (``--partial-effects``,
  default y_lag,y_initial); an empty value skips either.

Peak resident memory of each phase is the kernel's high-water mark (``VmHWM``),
reset before the phase (``/proc/self/clear_refs``), less the resident memory
when the phase starts; also reported: the resident memory the sample holds
after the build, and the child's process peak: the largest VmHWM of its phases
(``ru_maxrss`` reads the high-water mark that the resets clear, so by itself it
gives the last phase's peak). Each child runs in a fresh
interpreter, so the versions do not share allocator state.

The "before" version is the code of ``--baseline`` (default bd73b83, the
commit before the change) for the files ``--files`` of offshoring/econometrics
(default dynamic.py,re_probit.py), loaded as a copy of the econometrics package
in a temporary folder; "after" is the working tree. The estimates of the two
are compared (largest absolute difference). ``--rounds N`` runs each version N
times, alternating (before, after, before, after, ...), and prints the paired
ratios after / before of the fit's time and the process peak.

    .venv/bin/python bench/bench_probit_memory.py [--firms 17338,173380] [--baseline bd73b83]
        [--files re_probit.py] [--rounds 1] [--panel-file model_panel.parquet]

``--panel-file``: a Parquet file of a model panel (e.g. ``panel.model_panel``
of a pipeline run's warehouse, exported with DuckDB's COPY ... TO) is used
instead of the simulated panels (``--firms`` is then ignored).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIB = 2**20
# the figures of a child's record that are medians over rounds
NUMERIC = ("rss_with_panel_mib", "build_peak_above_start_mib", "rss_after_build_mib", "sample_held_mib",
           "fit_peak_above_start_mib", "rss_after_fit_mib", "check_peak_above_start_mib", "build_s",
           "fit_s", "check_s", "process_peak_mib", "ru_maxrss_mib")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


# the process's high-water mark over the phases: resetting VmHWM for a phase
# (clear_refs) also resets what ru_maxrss reports, so it is read before each reset
_PROCESS_PEAK_KIB = [0]


def _reset_peak() -> bool:
    _PROCESS_PEAK_KIB[0] = max(_PROCESS_PEAK_KIB[0], _status_kib("VmHWM"))
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _phase(fn):
    """(result, peak MiB above the start, RSS MiB at the end, seconds) of fn()."""
    gc.collect()
    start = _rss_mib()
    _reset_peak()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM") / 1024
    return out, peak - start, _rss_mib(), seconds


def child(args) -> None:
    import polars as pl
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if args.probit_threads:
        # the worker threads of the model's likelihood passes (the class default)
        from offshoring.econometrics.re_probit import RandomEffectsProbit

        RandomEffectsProbit.threads = args.probit_threads
    if args.version == "before":
        sys.path.insert(0, args.package_root)
        import oldecon as econ  # noqa: F401  (the copy made by the parent)
        from oldecon.dynamic import build_dynamic_sample
    else:
        from offshoring.econometrics.dynamic import build_dynamic_sample
    panel = pl.read_parquet(args.panel)
    gc.collect()
    base = _rss_mib()
    holder = {"panel": panel}
    del panel

    def build():
        sample = build_dynamic_sample(holder.pop("panel"))  # the asset drops the panel next
        return sample

    sample, build_peak, after_build, build_s = _phase(build)
    res, fit_peak, after_fit, fit_s = _phase(lambda: sample.fit())
    points = tuple(int(k) for k in args.quadrature_check.split(",") if k)
    terms = [t for t in args.partial_effects.split(",") if t and t in res.params.index]

    def check():
        quad = res.quadrature_check(points) if points else None
        ape = res.average_partial_effects(terms) if terms else None
        return quad, ape

    (quad, _), check_peak, _, check_s = _phase(check)
    out = {
        "version": args.version,
        "nobs": int(res.nobs),
        "groups": int(res.ngroups),
        "params": [float(v) for v in res.params_array],
        "llf": float(res.llf),
        "bse": [float(v) for v in res.bse.to_numpy()],
        "rss_with_panel_mib": round(base, 1),
        "build_peak_above_start_mib": round(build_peak, 1),
        "rss_after_build_mib": round(after_build, 1),
        "sample_held_mib": round(after_build - base, 1),
        "fit_peak_above_start_mib": round(fit_peak, 1),
        "rss_after_fit_mib": round(after_fit, 1),
        "build_s": round(build_s, 2),
        "fit_s": round(fit_s, 2),
        "check_peak_above_start_mib": round(check_peak, 1),
        "check_s": round(check_s, 2),
        "quad": [] if quad is None else [float(v) for v in quad.iloc[:, : 1 + len(points)].to_numpy().ravel()],
        # the whole child's peak (the largest VmHWM of the phases)
        "process_peak_mib": round(max(_PROCESS_PEAK_KIB[0], _status_kib("VmHWM")) / 1024, 1),
        # the kernel's figure since the last reset (the check phase), kept for reference
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))


def make_old_package(rev: str, folder: Path, files: list[str]) -> Path:
    """A copy of offshoring/econometrics named ``oldecon`` with the files of ``rev``."""
    pkg = folder / "oldecon"
    shutil.copytree(ROOT / "offshoring" / "econometrics", pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in files:
        text = subprocess.run(["git", "show", f"{rev}:offshoring/econometrics/{name}"], cwd=ROOT,
                              check=True, capture_output=True, text=True).stdout
        (pkg / name).write_text(text)
    return folder


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--firms", default="17338,173380", help="comma-separated numbers of firms")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline", default="bd73b83", help="git revision of the 'before' code")
    ap.add_argument("--versions", default="before,after")
    ap.add_argument("--files", default="dynamic.py,re_probit.py",
                    help="files of offshoring/econometrics taken from --baseline for 'before'")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs of each version, alternating (paired ratios printed)")
    ap.add_argument("--probit-threads", type=int, default=0,
                    help="worker threads of the 'after' model's passes (0: its default)")
    ap.add_argument("--panel-file", type=Path, help="a model panel in Parquet instead of simulating")
    ap.add_argument("--quadrature-check", default="8,16,24", help="nodes of the check phase ('' skips)")
    ap.add_argument("--partial-effects", default="y_lag,y_initial", help="APE terms of the check phase ('' skips)")
    # child mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--panel", help=argparse.SUPPRESS)
    ap.add_argument("--version", help=argparse.SUPPRESS)
    ap.add_argument("--package-root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return {}

    import numpy as np

    from offshoring.econometrics.dynamic import load_dynamic_spec
    from offshoring.econometrics.simulate import simulate_firm_years

    spec = load_dynamic_spec()
    cols = sorted({spec.group, spec.time, spec.outcome, *spec.lagged, *spec.contemporaneous,
                   *spec.counts, *spec.dummies})
    versions = args.versions.split(",")
    results: dict = {"baseline": args.baseline, "runs": []}
    with tempfile.TemporaryDirectory(prefix="probit_mem_") as tmp:
        tmp = Path(tmp)
        pkg_root = (make_old_package(args.baseline, tmp / "old", args.files.split(","))
                    if "before" in versions else None)
        sizes = ["file"] if args.panel_file else [int(f) for f in args.firms.split(",")]
        for firms in sizes:
            if args.panel_file:
                import polars as pl

                path = args.panel_file.resolve()
                firms = pl.scan_parquet(path).select(pl.col(spec.group).n_unique()).collect().item()
            else:
                panel, _ = simulate_firm_years(n_firms=firms, seed=args.seed)
                path = tmp / f"panel_{firms}.parquet"
                panel.select(cols).write_parquet(path)
                del panel
            runs: dict = {v: [] for v in versions}
            for r in range(args.rounds):
                # alternate the order round by round: a burst of load hits both versions
                for version in (versions if r % 2 == 0 else versions[::-1]):
                    cmd = [sys.executable, __file__, "--child", "--panel", str(path), "--version", version,
                           "--quadrature-check", args.quadrature_check,
                           "--partial-effects", args.partial_effects,
                           "--probit-threads", str(args.probit_threads)]
                    if pkg_root is not None:
                        cmd += ["--package-root", str(pkg_root)]
                    load0 = os.getloadavg()[0]
                    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT,
                                          env={**os.environ, "OMP_NUM_THREADS": "1",
                                               "OPENBLAS_NUM_THREADS": "1"})
                    if proc.returncode != 0:
                        print(proc.stderr[-3000:], file=sys.stderr)
                        raise SystemExit(f"child {version} at {firms} firms failed")
                    rec = json.loads(proc.stdout.strip().splitlines()[-1])
                    rec["load_start_end"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
                    runs[version].append(rec)
                    print(f"{firms:,} firms, round {r + 1}, {version}: fit {rec['fit_s']:.1f} s, check "
                          f"{rec['check_s']:.1f} s, process peak {rec['process_peak_mib']:,.0f} MiB "
                          f"(load {load0:.1f})", file=sys.stderr, flush=True)
            row = {"firms": firms, "nobs": runs[versions[0]][0]["nobs"]}
            for version, recs in runs.items():
                # the median over the rounds of every figure; the rounds themselves kept too
                row[version] = {k: float(np.median([rec[k] for rec in recs])) for k in NUMERIC}
                row[version]["rounds"] = [{k: rec[k] for k in (*NUMERIC, "load_start_end")} for rec in recs]
            if {"before", "after"} <= set(runs):
                b, a = runs["before"][0], runs["after"][0]
                row["max_abs_diff_params"] = float(np.max(np.abs(np.subtract(a["params"], b["params"]))))
                row["max_abs_diff_bse"] = float(np.max(np.abs(np.subtract(a["bse"], b["bse"]))))
                row["llf_diff"] = a["llf"] - b["llf"]
                if a["quad"] and len(a["quad"]) == len(b["quad"]):
                    row["max_abs_diff_quadrature_check"] = float(
                        np.max(np.abs(np.subtract(a["quad"], b["quad"]))))
                row["paired_ratios_after_over_before"] = {
                    k: [round(ra[k] / rb[k], 3) for ra, rb in zip(runs["after"], runs["before"])]
                    for k in ("fit_s", "check_s", "process_peak_mib")
                }
            results["runs"].append(row)

    keys = [("rss_with_panel_mib", "RSS with the panel loaded"),
            ("build_peak_above_start_mib", "build: peak above start"),
            ("sample_held_mib", "build: sample held after"),
            ("fit_peak_above_start_mib", "fit: peak above start"),
            ("check_peak_above_start_mib", "check: peak above start"),
            ("process_peak_mib", "process peak (all phases)"),
            ("build_s", "build seconds"),
            ("fit_s", "fit seconds"),
            ("check_s", "check seconds")]
    for row in results["runs"]:
        median = " (medians of the rounds)" if args.rounds > 1 else ""
        print(f"\n{row['firms']:,} firms, {row['nobs']:,} observations (MiB unless seconds){median}")
        print(f"{'':30s}" + "".join(f"{v:>12s}" for v in versions))
        for key, label in keys:
            print(f"{label:30s}" + "".join(f"{row[v][key]:12.1f}" for v in versions))
        if "max_abs_diff_params" in row:
            print(f"largest |after - before|: estimates {row['max_abs_diff_params']:.1e}, "
                  f"std. errors {row['max_abs_diff_bse']:.1e}, llf {row['llf_diff']:.1e}, "
                  f"quadrature check {row.get('max_abs_diff_quadrature_check', float('nan')):.1e}")
            for k, ratios in row["paired_ratios_after_over_before"].items():
                print(f"paired after / before, {k}: " + " ".join(f"{x:.2f}" for x in ratios))
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
