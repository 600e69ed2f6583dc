"""``offshoring synth``: write a synthetic raw-data folder.

`cli_main(argv)` is the whole command; `add_arguments(parser)` and `run(args)` let the
project CLI mount it as a subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys

from offshoring import settings


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--out", default=None,
                   help=f"output folder (default: the raw-data setting, {settings.ENV_RAW_DIR})")
    p.add_argument("--firms", type=int, default=None, help="survey firms (default 17000, config/synth.yaml)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: config/synth.yaml)")
    p.add_argument("--years", default=None, help="e.g. 2005-2012 (default: config/synth.yaml)")
    p.add_argument("--format", dest="survey_format", default="csv", choices=("csv", "csv.gz", "parquet"),
                   help="survey files: Italian CSV (default), gzipped CSV or Parquet")
    p.add_argument("--aida-format", default="xlsx", choices=("xlsx", "csv"),
                   help="AIDA firms export: xlsx (default) or Italian CSV")
    p.add_argument("--encoding", default="cp1252", choices=("cp1252", "utf-8"),
                   help="text encoding of the CSV files (default cp1252)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from offshoring.synth.dataset import generate

    out = args.out if args.out else str(settings.raw_dir())
    try:
        summary = generate(out, firms=args.firms, seed=args.seed, years=args.years,
                           aida_format=args.aida_format, survey_format=args.survey_format,
                           encoding=args.encoding)
    except ValueError as exc:
        print(f"offshoring synth: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {out}: {summary['firms']} firms, {summary['firm_years']} firm-years, "
              f"{summary['outsourcing_per_year']:.0f} outsourcing and {summary['offshoring_per_year']:.0f} "
              f"offshoring firms a year ({summary['per_year_window']}), {summary['district_llmas']} district LLMAs, "
              f"seed {summary['seed']}, {summary['seconds_total']:.1f} s")
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="offshoring synth", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
