"""The ``offshoring`` command: ``synth`` writes synthetic raw data, ``run`` materializes everything.

``run`` goes through Dagster, so every run is recorded in the instance under
``DAGSTER_HOME`` and shows in the UI (``dagster dev -w workspace.yaml``).
The library stays free of Dagster: this module imports it only inside ``run``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from offshoring import settings

DEFAULT_SEED = None  # the generator's default (config/synth.yaml)
DEFAULT_FIRMS = 17000


def _raw_is_empty(raw: Path) -> bool:
    return not raw.exists() or not any(p for p in raw.rglob("*") if p.is_file())


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project's folder unless set, with the project's instance file."""
    home = settings.dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        shutil.copy(settings.PROJECT_ROOT / "orchestration" / "instance" / "dagster.yaml", cfg)
    return home


def cmd_run(args: argparse.Namespace) -> int:
    raw = settings.raw_dir()
    if _raw_is_empty(raw):
        from offshoring.synth import generate

        print(f"Raw folder {raw} is empty: writing the synthetic default there "
              f"({args.firms} firms).", flush=True)
        t0 = time.perf_counter()
        summary = generate(raw, firms=args.firms, seed=args.seed)
        print(f"Synthetic data written in {time.perf_counter() - t0:.1f} s "
              f"(seed {summary['seed']}; true parameters in {raw / 'truth.json'}).", flush=True)
    home = ensure_dagster_home()

    from orchestration.pipeline import run_everything

    print(f"Dagster instance: {home}; warehouse: {settings.db_path()}; "
          f"reports: {settings.reports_dir()}", flush=True)
    ok = run_everything(raw_dir=raw)
    return 0 if ok else 1


def cmd_synth(argv: list[str]) -> int:
    from offshoring.synth import cli_main

    return cli_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "synth":
        return cmd_synth(argv[1:])
    parser = argparse.ArgumentParser(prog="offshoring", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("synth", help="write synthetic raw data (see `offshoring synth --help`)")
    run = sub.add_parser("run", help="materialize every asset for every survey year present")
    run.add_argument("--firms", type=int, default=DEFAULT_FIRMS,
                     help="firms of the synthetic default, when the raw folder is empty")
    run.add_argument("--seed", type=int, default=DEFAULT_SEED,
                     help="seed of the synthetic default, when the raw folder is empty "
                          "(default: config/synth.yaml)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
