"""Benchmark: loading one survey year of 100,000 rows vs a bare DuckDB ``read_csv``.

Writes a delivery in the Italian conventions (``;``, decimal comma, dd/mm/yyyy
dates, dotted ATECO codes) to a temporary folder, then times, each on a fresh
database of the same kind:

* baseline: ``CREATE TABLE t AS SELECT * FROM read_csv(file)`` (DuckDB's own
  sniffing, no validation);
* load: `offshoring.load.load_survey_year` (read, parse, pandera validation,
  warnings, pseudonyms, one transaction with the load log).

It prints the median of each and their ratio; the target is at most 2x. Run:

    python bench/bench_raw_load.py [--rows 100000] [--repeat 5] [--memory]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from offshoring import taxcode  # noqa: E402
from offshoring.load import create_schema, load_survey_year  # noqa: E402

KEY = b"benchmark-key-0123456789abcdef"
YEAR = 2008


def write_delivery(path: Path, n: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    bodies = rng.choice(10**10, size=n, replace=False)
    codes = [taxcode.make_company_code(f"{b:010d}") for b in bodies]
    # one firm in ten is a sole proprietor with a personal code
    for i in range(3, n, 10):
        sur = "".join(chr(65 + (i // 26**k) % 26) for k in range(3))
        codes[i] = taxcode.make_personal_code(sur, "MRA", 1960 + i % 30, 1 + i % 12, 1 + i % 28,
                                              bool(i % 2), "Z210" if i % 20 == 3 else "F205")
    money = lambda lo, hi: np.round(rng.uniform(lo, hi, n), 2)  # noqa: E731
    employees = np.round(rng.uniform(1, 40, n), 1)
    turnover = money(1e5, 7e6)
    days = rng.integers(0, 300, n)
    df = pl.DataFrame({
        "tax_code": codes,
        "year": np.full(n, YEAR),
        "filing_date": pl.Series(days, dtype=pl.Int32).cast(pl.Duration("ms")) * 86_400_000
        + pl.Series([date(YEAR + 1, 1, 1)]),
        "ateco_2007": rng.choice(["14.13.10", "14.14.00", "15.20.10", "14.19.00"], n),
        "municipality_code": rng.choice(["001272", "015146", "048017", "097042", "058091"], n),
        "turnover": turnover,
        "employees": employees,
        "value_added": np.round(turnover * rng.uniform(0.1, 0.4, n), 2),
        "wage_costs": np.round(employees * rng.uniform(15e3, 35e3, n), 2),
        "net_income": money(-5e4, 2e5),
        "roi": money(-10, 25),
        "export_share": np.round(rng.uniform(0, 100, n), 1),
        "credit_access": rng.integers(0, 2, n),
        "market_area": rng.choice(["local", "provincial", "regional", "national", "international"], n),
        "high_value_added": rng.integers(0, 2, n),
        "supplier": rng.integers(0, 2, n),
        "subcontracting_italy": money(0, 3e5),
        "subcontracting_europe": np.where(rng.random(n) < 0.2, money(0, 1e5), 0.0),
        "subcontracting_north_africa": np.where(rng.random(n) < 0.05, money(0, 5e4), 0.0),
        "subcontracting_east_asia": np.where(rng.random(n) < 0.05, money(0, 8e4), 0.0),
        "subcontracting_other": np.zeros(n),
    })
    df.write_csv(path, separator=";", decimal_comma=True, date_format="%d/%m/%Y")


def time_baseline(csv: Path, db: str) -> float:
    con = duckdb.connect(db)
    t = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv}')")
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def time_load(csv: Path, db: str) -> tuple[float, int]:
    con = duckdb.connect(db)
    create_schema(con)
    t = time.perf_counter()
    report = load_survey_year(con, csv, YEAR, key=KEY, column_map={}, code_version="bench")
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed, report.rows_written


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--memory", action="store_true", help="in-memory databases instead of files")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        csv = tmpdir / f"survey_{YEAR}.csv"
        write_delivery(csv, args.rows)
        size_mb = csv.stat().st_size / 1e6
        base, ours = [], []
        for i in range(args.repeat + 1):  # the first round warms caches and imports
            db_a = ":memory:" if args.memory else str(tmpdir / f"base_{i}.duckdb")
            db_b = ":memory:" if args.memory else str(tmpdir / f"load_{i}.duckdb")
            b = time_baseline(csv, db_a)
            o, written = time_load(csv, db_b)
            if written != args.rows:
                raise SystemExit(f"load wrote {written} rows, expected {args.rows}")
            if i:
                base.append(b)
                ours.append(o)
        mb, mo = statistics.median(base), statistics.median(ours)
        # rounds alternate baseline and load, so a paired ratio cancels most of the
        # noise of a shared machine
        ratio = statistics.median(o / b for o, b in zip(ours, base))
        kind = "in-memory" if args.memory else "file"
        load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"rows={args.rows} file={size_mb:.1f} MB databases={kind} repeats={args.repeat} "
              f"load average={load_avg:.2f} cpus={os.cpu_count()}")
        print(f"bare duckdb read_csv -> table: {mb:.3f} s (median)")
        print(f"load_survey_year:             {mo:.3f} s (median)")
        print(f"ratio: {ratio:.2f}x (median of paired rounds; target <= 2x) {'OK' if ratio <= 2 else 'ABOVE TARGET'}")
        return ratio


if __name__ == "__main__":
    main()
