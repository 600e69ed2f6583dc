"""Monte Carlo of Table 3 (backshoring hazard) on the project's generator, end to end.

Not part of the test run. For each seed: the synthetic generator writes the raw files
(`offshoring.synth`, the same code as ``offshoring synth``), the pipeline's own loader and
SQL build ``panel.spell_years`` in an in-memory DuckDB (`offshoring.load`, the district
procedure, `offshoring.panel` and the files under ``sql/``, as the Dagster assets run
them, without Dagster), and four fits are compared with truth.json's ``cox`` section:

* ``cox_asset``: the Cox model exactly as ``assets/models.py::backshoring_cox`` fits it
  today (``fit_cox_table3`` on all of ``panel.spell_years``, ``config/cox_table3.yaml``),
  where a firm that stops subcontracting abroad altogether counts as backshoring in each
  of its regions: shown for reference, it does not target the generator's hazard;
* ``cox``: the same Cox fit on ``region_spell_risk_rows(spell_years)``, the rows the
  region-spell hazard decides (the firm's exit from foreign subcontracting and the
  unobserved last year of censored spells are censoring);
* ``cloglog``: the grouped-time proportional hazard (`fit_grouped_ph_table3`, one
  intercept per spell-year, firm-clustered errors with G/(G-1)) on the same rows;
* ``cloglog_asset``: the grouped-time fit on all rows, for reference.

Truth: the generator's hazard is a continuous-time proportional hazard in spell time
with spell-year covariates; observed once a year it is exactly the grouped-time model with
the same coefficients, so both the Cox and the cloglog fits are compared with the same
log hazard ratios (truth.json ``cox.coefficients``, the industry and territorial dummies
included); the cloglog's spell-year intercepts are compared with
``cox.baseline.grouped_gamma_clothing`` (clothing and North-West are the dummies' bases).
The Cox partial likelihood with Efron ties is an approximation on annual (tied) data: its
coverage here measures that approximation too.

Each seed also checks the rows: the spell-years the generator's hazard acted on (spells
not left-censored) must be exactly the rows ``region_spell_risk_rows`` keeps for the
region destinations, with the same covariates (bit for bit) and events.

    .venv/bin/python bench/montecarlo_table3.py --seeds 2-41 --firms 17000 \\
        --jsonl /tmp/mc_table3.jsonl
    .venv/bin/python bench/montecarlo_table3.py --report /tmp/mc_table3.jsonl --markdown

Per fit and coefficient: truth, bias (mean estimate - truth), Monte Carlo s.d. of the
estimates, mean s.e. / Monte Carlo s.d., coverage of the 95% Wald interval, the largest
|z| = |estimate - truth| / s.e.; below each table the share of all intervals that miss
and the largest |z|. Every replication is appended to the JSON lines file when done; a
rerun with the same file skips the seeds already there.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from offshoring.econometrics import (  # noqa: E402
    fit_cox_table3,
    fit_grouped_ph_table3,
    region_spell_risk_rows,
)
from offshoring.econometrics.errors import EstimationError  # noqa: E402

FITS = ("cox", "cloglog", "cox_asset", "cloglog_asset")
COVARIATES = ("share_destination", "supplier", "profit", "export_share_pre", "wage_per_employee_k",
              "roi", "employees", "n_outsourcing_prov_pre", "n_migrant_prov_lag")
REGIONS = ("europe", "north_africa", "east_asia", "other")


# ----------------------------------------------------------------------------- pipeline


def _call(fn, *args, **kwargs):
    """fn with the keyword arguments it takes (the loader's options change with the project)."""
    import inspect

    params = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def build_spell_years(raw: Path, study=None):
    """An in-memory DuckDB with the pipeline's tables up to panel.spell_years, built from a
    synthetic raw folder by the library functions the Dagster assets call, with the study
    specification (`offshoring.spec.load_study_spec`, defaults when None)."""
    import duckdb

    from offshoring import load as loader
    from offshoring import panel
    from offshoring.districts import run_district_procedure
    from offshoring.pseudonym import resolve_key
    from offshoring.readers.survey import discover_survey_files
    from offshoring.spec import load_study_spec
    from offshoring.sqlfiles import run_sql

    study = study or load_study_spec()
    th = study.thresholds
    con = duckdb.connect()
    key = resolve_key(True)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        loader.create_schema(con)
        for year, path in sorted(discover_survey_files(raw).items()):
            _call(loader.load_survey_year, con, path, year, key=key, ceiling=th.ceiling(year),
                  log_rejections=False)
        aida = next(p for p in (raw / "aida" / "aida_firms.xlsx", raw / "aida" / "aida_firms.csv") if p.exists())
        loader.load_aida_firms(con, aida, key=key, log_rejections=False)
        loader.load_aida_subsidiaries(con, raw / "aida" / "aida_subsidiaries.csv", key=key, log_rejections=False)
        loader.load_municipalities(con, log_rejections=False)
        loader.load_llma(con, raw / "reference" / "llma.csv", log_rejections=False)
        loader.load_census_employment(con, raw / "reference" / "census_employment.csv", log_rejections=False)
        run_sql(con, "geography_municipality_xwalk")
        run_sql(con, "geography_province_prefix")
        census = con.sql("SELECT * FROM raw.census_employment").pl()
        districts = run_district_procedure(census, study.districts)
        con.execute("CREATE SCHEMA IF NOT EXISTS geography")
        con.register("_districts", districts.table.to_arrow())
        con.execute("CREATE OR REPLACE TABLE geography.llma_districts AS SELECT * FROM _districts")
        con.unregister("_districts")
        panel.build_firm_years(con, th)
        panel.build_aida_offshoring(con, th)
        run_sql(con, "geography_province_spillovers")
        panel.build_model_panel(con, study.panel.leave_one_out)
        panel.build_spells(con)
        panel.build_spell_years(con)
    return con


def generate_sim(raw: Path, firms: int, seed: int):
    """Write the raw folder and truth.json as `offshoring.synth.generate` does; keep the
    in-memory simulation for the row check."""
    from offshoring.synth.dataset import load_config, parse_years, simulate, truth, write_files

    cfg = load_config()
    sim = simulate(firms, seed, parse_years(None, cfg), cfg)
    raw.mkdir(parents=True, exist_ok=True)
    files = write_files(sim, raw)
    tr = truth(sim, files)
    (raw / "truth.json").write_text(json.dumps(tr, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return sim, tr


def generator_rows(sim) -> pl.DataFrame:
    """The spell-years the generator's hazard acted on, spells not left-censored, keyed as
    the pipeline keys them (pseudonymised firm, year, destination)."""
    from offshoring.pseudonym import DEMO_KEY, pseudonymise

    h = sim.outcome.hazard_rows
    keep = ~h["left_censored"]
    ids = pseudonymise(pl.Series("tax_code", sim.pop.tax_code), DEMO_KEY).to_numpy()
    years = np.asarray(sim.years)
    frame = {
        "firm_id": ids[h["firm"][keep]],
        "year": years[h["year"][keep]].astype(np.int32),
        "destination": np.array(REGIONS)[h["region"][keep]],
        "stop_dgp": h["duration"][keep].astype(np.int32),
        "event_dgp": h["status"][keep].astype(np.int8),
    }
    for j, name in enumerate(COVARIATES):
        frame[f"{name}_dgp"] = h["x"][keep, j]
    return pl.DataFrame(frame)


def check_rows(spells: pl.DataFrame, sim) -> dict:
    """Rows the hazard acted on vs the risk rows the pipeline keeps: same set, same
    covariates, same events."""
    risk = (region_spell_risk_rows(spells)
            .filter(pl.col("destination").is_in(REGIONS) & ~pl.col("left_censored")))
    dgp = generator_rows(sim)
    keys = ["firm_id", "year", "destination"]
    both = risk.join(dgp, on=keys, how="inner")
    out = {"pipeline_rows": risk.height, "generator_rows": dgp.height, "matched": both.height,
           "events_differ": int((both["event"].cast(pl.Int8) != both["event_dgp"]).sum()),
           "stop_differs": int((both["stop"] != both["stop_dgp"]).sum()),
           "roi_missing": int(both["roi"].is_null().sum())}
    diffs = {}
    for name in COVARIATES:
        ok = both.filter(pl.col(name).is_not_null())
        a = ok[name].cast(pl.Float64).to_numpy()
        b = ok[f"{name}_dgp"].to_numpy()
        diffs[name] = int((a != b).sum())
    out["covariate_values_differ"] = diffs
    out["exact"] = bool(out["pipeline_rows"] == out["generator_rows"] == out["matched"]
                        and out["events_differ"] == 0 and out["stop_differs"] == 0
                        and not any(diffs.values()))
    return out


# ----------------------------------------------------------------------------- one seed


def _fit_record(res) -> dict:
    return {"params": {k: float(v) for k, v in res.params.items()},
            "bse": {k: float(v) for k, v in res.bse.items()},
            "nobs": int(res.nobs), "n_events": int(res.n_events),
            "ngroups": int(res.ngroups or 0)}


def one_seed(firms: int, seed: int, workdir: Path | None = None, study=None) -> dict:
    from offshoring.spec import load_study_spec

    study = study or load_study_spec()
    rec: dict = {"firms": firms, "seed": seed}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        raw = Path(tmp) / "raw"
        sim, tr = generate_sim(raw, firms, seed)
        t1 = time.perf_counter()
        con = build_spell_years(raw, study)
        spells = con.sql("SELECT * FROM panel.spell_years").pl()
        con.close()
    t2 = time.perf_counter()
    rec["truth"] = tr["cox"]["coefficients"]
    rec["truth_gamma"] = tr["cox"]["baseline"]["grouped_gamma_clothing"]
    rec["rows"] = check_rows(spells, sim)
    risk = region_spell_risk_rows(spells)
    rec["fits"] = {}
    for name, fit, data in (("cox", fit_cox_table3, risk), ("cloglog", fit_grouped_ph_table3, risk),
                            ("cox_asset", fit_cox_table3, spells),
                            ("cloglog_asset", fit_grouped_ph_table3, spells)):
        try:
            rec["fits"][name] = _fit_record(fit(data, study.cox))
        except EstimationError as exc:  # counted, never hidden
            rec["fits"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    rec["seconds"] = {"generate": t1 - t0, "pipeline": t2 - t1, "fits": time.perf_counter() - t2}
    return rec


# ----------------------------------------------------------------------------- report


def summarise(records: list[dict], fit: str) -> tuple[list[dict], dict]:
    ok = [r for r in records if "params" in r["fits"].get(fit, {})]
    failed = len(records) - len(ok)
    if not ok:
        return [], {"replications": 0, "failed": failed}
    terms = [t for t in ok[0]["truth"] if t in ok[0]["fits"][fit]["params"]]
    if fit.startswith("cloglog"):
        terms += [f"gamma_{d}" for d in ok[0]["truth_gamma"] if f"gamma_{d}" in ok[0]["fits"][fit]["params"]]
    rows, zs_all = [], []
    for t in terms:
        tv, est, se = [], [], []
        for r in ok:
            p, s = r["fits"][fit]["params"], r["fits"][fit]["bse"]
            if t not in p:
                continue
            truth = r["truth"][t] if t in r["truth"] else r["truth_gamma"][t.split("_", 1)[1]]
            tv.append(truth)
            est.append(p[t])
            se.append(s[t])
        tv, est, se = map(np.asarray, (tv, est, se))
        z = (est - tv) / se
        sd = est.std(ddof=1) if len(est) > 1 else float("nan")
        rows.append({"term": t, "truth": float(tv.mean()), "bias": float((est - tv).mean()),
                     "mc_sd": float(sd), "se_over_sd": float(se.mean() / sd) if sd > 0 else float("nan"),
                     "coverage": float((np.abs(z) <= 1.959964).mean()), "max_abs_z": float(np.abs(z).max()),
                     "n": int(len(z)), "baseline": t.startswith("gamma_")})
        zs_all.append((t, z))
    slopes = [(t, z) for t, z in zs_all if not t.startswith("gamma_")]
    allz = np.concatenate([z for _, z in slopes])
    worst = max(slopes, key=lambda tz: np.abs(tz[1]).max())
    overall = {"replications": len(ok), "failed": failed,
               "intervals": int(allz.size), "miss_share": float((np.abs(allz) > 1.959964).mean()),
               "max_abs_z": float(np.abs(allz).max()), "worst_term": worst[0],
               "beyond_3_5": int((np.abs(allz) > 3.5).sum())}
    return rows, overall


def report(records: list[dict], markdown: bool = False) -> str:
    out = []
    seeds = sorted(r["seed"] for r in records)
    firms = sorted({r["firms"] for r in records})
    out.append(f"{len(records)} replications, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} seeds), firms {firms}")
    exact = sum(r["rows"]["exact"] for r in records)
    out.append(f"row check (generator's hazard rows == pipeline risk rows, covariates bit for bit, events): "
               f"{exact}/{len(records)} seeds exact; risk rows per seed "
               f"{min(r['rows']['pipeline_rows'] for r in records)}-{max(r['rows']['pipeline_rows'] for r in records)}")
    for fit in FITS:
        rows, overall = summarise(records, fit)
        if not rows:
            out.append(f"\n{fit}: no successful fit ({overall.get('failed')} failed)")
            continue
        ev = [r["fits"][fit]["n_events"] for r in records if "n_events" in r["fits"].get(fit, {})]
        nobs = [r["fits"][fit]["nobs"] for r in records if "nobs" in r["fits"].get(fit, {})]
        out.append("")
        head = (f"{fit}: rows {min(nobs)}-{max(nobs)}, events {min(ev)}-{max(ev)} per seed; "
                f"{overall['replications']} fits, {overall['failed']} failed")
        if markdown:
            out.append(f"**{head}**\n")
            out.append("| term | truth | bias | MC s.d. | mean s.e. / MC s.d. | coverage 95% | max abs z |")
            out.append("|---|---:|---:|---:|---:|---:|---:|")
            for r in rows:
                out.append(f"| {r['term']} | {r['truth']:.5f} | {r['bias']:+.5f} | {r['mc_sd']:.5f} | "
                           f"{r['se_over_sd']:.2f} | {r['coverage']:.3f} | {r['max_abs_z']:.2f} |")
        else:
            out.append(head)
            out.append(f"{'term':<26}{'truth':>10}{'bias':>10}{'MC sd':>9}{'se/sd':>7}{'cover':>7}{'max|z|':>8}")
            for r in rows:
                out.append(f"{r['term']:<26}{r['truth']:>10.5f}{r['bias']:>+10.5f}{r['mc_sd']:>9.5f}"
                           f"{r['se_over_sd']:>7.2f}{r['coverage']:>7.3f}{r['max_abs_z']:>8.2f}")
        out.append(f"{'' if not markdown else chr(10)}covariates and dummies: {overall['intervals']} intervals, "
                   f"{100 * overall['miss_share']:.1f}% miss, largest |z| {overall['max_abs_z']:.2f} "
                   f"({overall['worst_term']}), {overall['beyond_3_5']} beyond 3.5")
    return "\n".join(out)


def _seeds(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="2-9", help="e.g. 2-9 or 2,5,7 (the default data use seed 1)")
    ap.add_argument("--firms", type=int, default=17000)
    ap.add_argument("--jsonl", type=Path, help="append each replication here; seeds already there are skipped")
    ap.add_argument("--report", type=Path, nargs="*", help="only print the tables of these JSON lines files")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.report:
        recs = [json.loads(line) for p in args.report for line in p.read_text().splitlines() if line.strip()]
        print(report(recs, args.markdown))
        return 0
    done: dict[int, dict] = {}
    if args.jsonl and args.jsonl.exists():
        for line in args.jsonl.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r["firms"] == args.firms:
                    done[r["seed"]] = r
    from offshoring.spec import load_study_spec

    study = load_study_spec()  # read once: every seed runs with the same specification
    t0, c0 = time.perf_counter(), time.process_time()
    recs = []
    for seed in _seeds(args.seeds):
        if seed in done:
            recs.append(done[seed])
            continue
        r = one_seed(args.firms, seed, args.workdir, study)
        recs.append(r)
        fc, fg = r["fits"]["cox"], r["fits"]["cloglog"]
        zc = max(abs(fc["params"][k] - r["truth"][k]) / fc["bse"][k] for k in fc.get("params", {}) if k in r["truth"]) \
            if "params" in fc else float("nan")
        zg = max(abs(fg["params"][k] - r["truth"][k]) / fg["bse"][k] for k in fg.get("params", {}) if k in r["truth"]) \
            if "params" in fg else float("nan")
        print(f"seed {seed}: rows exact {r['rows']['exact']}, events {fc.get('n_events')}, max|z| cox {zc:.2f} "
              f"cloglog {zg:.2f}, {sum(r['seconds'].values()):.1f} s", flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(r) + "\n")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print()
    print(report(recs, args.markdown))
    print(f"\nwall {wall:.0f} s, CPU {cpu:.0f} s (this process), {os.cpu_count()} CPUs, "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
