"""Benchmark: write the default synthetic dataset (17,000 firms, 2005-2012).

Times `offshoring.synth.generate` end to end (geography, census, firms, AIDA, the
outsourcing dynamics, the survey returns, writing every file and truth.json) in a
fresh process, by stage, and prints the headline counts. The target is under a minute
on a 2-core machine. Run:

    python bench/bench_synth.py [--firms 17000] [--seed S] [--repeat 1]
                                [--format csv|csv.gz|parquet] [--aida-format xlsx|csv]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from offshoring.synth import generate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=int, default=17000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--format", dest="survey_format", default="csv", choices=("csv", "csv.gz", "parquet"))
    ap.add_argument("--aida-format", default="xlsx", choices=("xlsx", "csv"))
    a = ap.parse_args(argv)
    times = []
    summary = None
    for r in range(a.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summary = generate(Path(tmp) / "raw", firms=a.firms, seed=a.seed, years="2005-2012",
                               survey_format=a.survey_format, aida_format=a.aida_format)
            times.append(time.perf_counter() - t0)
            size = sum(p.stat().st_size for p in (Path(tmp) / "raw").rglob("*") if p.is_file())
        print(f"run {r + 1}: {times[-1]:.2f} s  (stages: {summary['timings']}, "
              f"write {summary['seconds_write']:.2f} s, {size / 1e6:.1f} MB)")
    assert summary is not None
    print(f"median {statistics.median(times):.2f} s for {a.firms} firms "
          f"({'first run includes reading the geometry' if a.repeat > 1 else 'one run, geometry included'})")
    print(f"firms {summary['firms']}, firm-years {summary['firm_years']}, outsourcing firms/year "
          f"{summary['outsourcing_per_year']:.0f}, offshoring firms/year {summary['offshoring_per_year']:.0f}, "
          f"district LLMAs {summary['district_llmas']}")
    ok = statistics.median(times) < 60
    print("target (< 60 s):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
