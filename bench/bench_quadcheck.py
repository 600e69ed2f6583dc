"""Cost of the quadrature check relative to the fit (goal: fit + check <= 1.5 x fit).

Simulates a firm-year panel of the paper's size (17,338 firms, about 113,000
estimation observations; ``--firms`` for other sizes), builds the Table 2
sample, and in one process, ``--repeat`` times (default 3):

* fits the default model (adaptive 12 points, clustered errors) on a fresh model
  (built, with its data checks, outside the timings);
* runs the default quadrature check (8, 16 and 24 points, warm-started, point
  estimates and log-likelihood only) on that fit;
* fits and checks in one timed block on another fresh model (the paired figure);
* runs the former check (full refits with standard errors, ``method="refit"``).

Prints a table of medians, the paired ratio (fit + check) / fit of each
repetition (median; goal <= 1.5) beside the former path's, the largest
difference between the two checks' tables, and a last line with one JSON object
of the figures. BLAS threads are pinned to one (``--threads``), as in
bench_probit.py. CPU seconds (``time.process_time``) are printed beside the wall
seconds: on the shared two-core machine the wall times of one process swing by
a factor of two with the others' load, its CPU seconds much less.

    .venv/bin/python bench/bench_quadcheck.py [--firms 17338] [--repeat 3] [--points 8,16,24]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from offshoring.econometrics import RandomEffectsProbit, build_dynamic_sample  # noqa: E402
from offshoring.econometrics.simulate import simulate_firm_years  # noqa: E402


CPU = {}


def timed(fn, key=None):
    """Wall seconds of fn() (and its CPU seconds in CPU[key]) with its result."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    if key:
        CPU[key] = time.process_time() - c0
    return wall, out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--firms", type=int, default=17338)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--points", default="8,16,24", help="numbers of nodes of the check")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (0 = library default)")
    ap.add_argument("--skip-old", action="store_true", help="do not time the former (full refit) check")
    args = ap.parse_args(argv)
    points = tuple(int(p) for p in args.points.split(","))

    limiter = None
    if args.threads > 0:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(args.threads)

    panel, _ = simulate_firm_years(n_firms=args.firms, seed=args.seed)
    sample = build_dynamic_sample(panel)
    del panel
    y, X, g = sample.endog, sample.exog, sample.groups
    options = sample.spec.fit_options
    print(f"sample: {len(y):,} observations, {len(np.unique(g)):,} firms, {X.shape[1]} regressors + lnsig2u; "
          f"fit {options}, check at {points} nodes")

    rows = []
    max_diff = max_rel_diff = 0.0
    iterations = None
    for rep in range(args.repeat):
        # models built outside the timings (the data checks are not the fit's)
        model_a, model_b = RandomEffectsProbit(y, X, g), RandomEffectsProbit(y, X, g)
        fit_s, res = timed(lambda: model_a.fit(**options), "fit")
        check_s, new = timed(lambda: res.quadrature_check(points), "check")
        iterations = dict(res.quadrature_check_iterations)

        def fit_and_check():
            r = model_b.fit(**options)
            return r.quadrature_check(points)

        both_s, _ = timed(fit_and_check, "both")
        row = {"fit_s": fit_s, "check_s": check_s, "fit_check_s": both_s,
               "paired_ratio": (fit_s + check_s) / fit_s, "block_ratio": both_s / fit_s,
               "fit_cpu_s": CPU["fit"], "check_cpu_s": CPU["check"], "fit_check_cpu_s": CPU["both"],
               "paired_ratio_cpu": (CPU["fit"] + CPU["check"]) / CPU["fit"]}
        if not args.skip_old:
            old_s, old = timed(lambda: res.quadrature_check(points, method="refit"), "old")
            est = [f"q{K}" for K in points]
            d = (new[est] - old[est]).abs()
            max_diff = max(max_diff, float(d.drop(index="llf").to_numpy().max()))
            max_rel_diff = max(max_rel_diff, float((d / old[est].abs()).to_numpy().max()))
            row.update(old_check_s=old_s, old_ratio=(fit_s + old_s) / fit_s,
                       old_check_cpu_s=CPU["old"], old_ratio_cpu=(CPU["fit"] + CPU["old"]) / CPU["fit"])
        rows.append(row)
        print(f"  repetition {rep + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))

    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print()
    print(f"{'':32s}{'wall s':>10s}{'CPU s':>10s}   (medians of {args.repeat})")
    print(f"{'fit alone':32s}{med['fit_s']:10.3f}{med['fit_cpu_s']:10.3f}")
    print(f"{'check alone (warm)':32s}{med['check_s']:10.3f}{med['check_cpu_s']:10.3f}")
    print(f"{'fit + check (one block)':32s}{med['fit_check_s']:10.3f}{med['fit_check_cpu_s']:10.3f}")
    if "old_check_s" in med:
        print(f"{'check alone (former: refits)':32s}{med['old_check_s']:10.3f}{med['old_check_cpu_s']:10.3f}")
    print()
    print("(fit + check) / fit, paired by repetition, median (goal <= 1.5):")
    for label, key in (("wall", "paired_ratio"), ("CPU", "paired_ratio_cpu")):
        verdict = "OK" if med[key] <= 1.5 else "ABOVE GOAL"
        line = f"  {label:5s} new {med[key]:.2f} {verdict}"
        old_key = "old_ratio" if label == "wall" else "old_ratio_cpu"
        if old_key in med:
            line += f"   former check {med[old_key]:.2f}"
        print(line)
    print(f"  one timed block fit+check / fit (wall): {med['block_ratio']:.2f}")
    if "old_ratio" in med:
        print(f"largest difference between the two checks' estimates: {max_diff:.2e} "
              f"({max_rel_diff:.2e} relative)")
    print(f"warm check iterations (gradient passes) per number of nodes: {iterations}")
    out = {
        "firms": args.firms,
        "nobs": int(len(y)),
        "points": list(points),
        "repeat": args.repeat,
        "blas_threads": args.threads or "default",
        **{f"median_{k}": round(v, 4) for k, v in med.items()},
        "ratio_goal": 1.5,
        "warm_iterations": {str(k): v for k, v in (iterations or {}).items()},
        "runs": [{k: round(v, 4) for k, v in r.items()} for r in rows],
    }
    if not args.skip_old:
        out.update(max_abs_diff_vs_refit=max_diff, max_rel_diff_vs_refit=max_rel_diff)
    if limiter is not None:
        limiter.restore_original_limits()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
