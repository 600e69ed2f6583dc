"""Where the heavy assets spend time and memory, phase by phase, on a built warehouse.

Reads a warehouse left by ``bench/bench_pipeline.py --workdir DIR --keep`` (read-only)
and times, each with CPU seconds and the process's peak RSS during the phase (Linux
``/proc/self/clear_refs`` resets the high-water mark):

* outsourcing_probit: ``SELECT *`` of panel.model_panel to polars (what the asset does)
  against selecting only the spec's columns; the estimation sample; the fit (12-point
  adaptive quadrature, clustered errors); the quadrature check (config/models.yaml,
  refits at 8, 16, 24 points); the average partial effects;
* firm_years: the pandera validation of the whole panel as the asset runs it
  (``SELECT *`` to polars, one frame) against one year at a time (the key contains
  the year, so per-year uniqueness is the same rule);
* reports: hashing the raw folder for provenance, as each report asset does.

    .venv/bin/python bench/profile_assets.py /tmp/bp/firms_170000_seed_1 [--only probit,firm_years,provenance]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS: list[dict] = []


def _status(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@contextmanager
def phase(asset: str, name: str, **extra):
    gc.collect()
    exact = _reset_peak()
    rss0 = _status("VmRSS")
    c0, t0 = time.process_time(), time.perf_counter()
    yield
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status("VmHWM") if exact else float("nan")
    row = {"asset": asset, "phase": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
           "rss_before_mib": round(rss0), "peak_mib": round(peak), "rise_mib": round(peak - rss0), **extra}
    RESULTS.append(row)
    print(f"  {asset:<20} {name:<52} wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
          f"peak {peak:7.0f} MiB (+{peak - rss0:5.0f})", flush=True)


def profile_probit(db: str) -> None:
    import duckdb

    from offshoring.econometrics.dynamic import build_dynamic_sample
    from offshoring.spec import load_study_spec

    study = load_study_spec()
    spec, cfg = study.probit, study.models.probit
    cols = list(dict.fromkeys([spec.group, spec.time, spec.outcome, *spec.lagged, *spec.contemporaneous,
                               *spec.counts, *spec.dummies]))
    con = duckdb.connect(db, read_only=True)
    with phase("outsourcing_probit", "SELECT * FROM panel.model_panel -> polars (asset)"):
        panel = con.sql("SELECT * FROM panel.model_panel").pl()
    width_all = panel.width
    del panel
    with phase("outsourcing_probit", f"SELECT {len(cols)} spec columns -> polars", columns=len(cols)):
        panel = con.sql(f"SELECT {', '.join(cols)} FROM panel.model_panel").pl()
    con.close()
    print(f"    (model_panel has {width_all} columns; the spec needs {len(cols)})")
    with phase("outsourcing_probit", "build_dynamic_sample (polars -> pandas exog)"):
        sample = build_dynamic_sample(panel, spec)
    del panel
    with phase("outsourcing_probit", "fit: 12-point adaptive, clustered SEs (+bse)",
               nobs=len(sample.endog)):
        res = sample.fit()
        res.bse  # noqa: B018
    print(f"    {res.nobs:,} obs, {res.ngroups:,} firms, {res.iterations} Newton iterations, "
          f"fit_time {res.fit_time:.1f} s")
    points = tuple(cfg.quadrature_check)
    if points:
        with phase("outsourcing_probit", f"quadrature_check {points} ({len(points)} refits)"):
            quad = res.quadrature_check(points)
        print(f"    max |relative change| {quad.attrs.get('max_abs_rel_change'):.2e}")
    terms = [t for t in cfg.partial_effects if t in res.params.index]
    if terms:
        with phase("outsourcing_probit", f"average_partial_effects {terms}"):
            res.average_partial_effects(terms)


def profile_firm_years(db: str) -> None:
    import duckdb

    from offshoring.schemas.panel import FIRM_YEAR_SCHEMA, validate_panel

    con = duckdb.connect(db, read_only=True)
    with phase("firm_years", "SELECT * FROM panel.firm_years -> polars (asset)"):
        df = con.sql("SELECT * FROM panel.firm_years").pl()
    with phase("firm_years", "validate_panel(whole panel) (asset)", rows=df.height):
        v = validate_panel(df)
    assert v.passed, v.summary()
    del df
    cols = list(FIRM_YEAR_SCHEMA.columns)
    with phase("firm_years", f"select + validate the {len(cols)} schema columns, whole panel"):
        df = con.sql(f"SELECT {', '.join(cols)} FROM panel.firm_years").pl()
        v = validate_panel(df)
    assert v.passed
    del df
    years = [r[0] for r in con.execute("SELECT DISTINCT year FROM panel.firm_years ORDER BY 1").fetchall()]
    with phase("firm_years", f"select + validate all columns one year at a time ({len(years)})"):
        for y in years:
            v = validate_panel(con.sql("SELECT * FROM panel.firm_years WHERE year = ?", params=[y]).pl())
            assert v.passed
    con.close()


def profile_provenance(root: Path) -> None:
    from offshoring.reports.provenance import input_hashes

    raw = root / "raw"
    size = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file())
    with phase("reports", f"hash the raw folder once ({size / 1e6:.0f} MB; 8 times per run)"):
        input_hashes([raw])


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="a size folder of bench_pipeline.py --keep (holds warehouse.duckdb, raw/)")
    ap.add_argument("--only", default="probit,firm_years,provenance")
    ap.add_argument("--threads", type=int, default=0, help="BLAS threads (0 = library default, as the pipeline)")
    args = ap.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    db = str(args.root / "warehouse.duckdb")
    only = set(args.only.split(","))
    print(f"profiling {db}")
    if "provenance" in only:
        profile_provenance(args.root)
    if "firm_years" in only:
        profile_firm_years(db)
    if "probit" in only:
        profile_probit(db)
    print(json.dumps({"bench": "profile_assets", "root": str(args.root), "phases": RESULTS}))
    return RESULTS


if __name__ == "__main__":
    main()
