"""The ``offshoring`` command.

``demo`` runs the whole pipeline on synthetic data (written by the generator into an
empty raw folder); ``run`` runs it on the real files of the raw folder and never writes
data there; ``synth`` only writes synthetic files. ``run`` and ``demo`` go through
Dagster, so every run is recorded in the instance under ``DAGSTER_HOME`` and shows in
the UI.

Everything that can be checked before a run starts is checked here, and a refusal is
printed as a few plain lines (file, row, column, what to do) with exit code 2; a run
that fails prints the root cause the same way, exit code 1. The stack trace stays in
the run's log in the instance; ``--debug`` prints it too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from offshoring import settings

DEFAULT_FIRMS = 17000
EXIT_FAILED, EXIT_REFUSED = 1, 2


class Refusal(Exception):
    """Something that does not fit: said in plain words before anything is written."""


#: sha256 of the instance files earlier versions copied into DAGSTER_HOME: an unedited copy
#: is replaced by the current one (an edited one is the user's and is left alone)
_SHIPPED_INSTANCE_FILES = {
    "58186802d06772209f505e79babd038adec7e237901165b2af1deb58adcef1a1",
    "795744e189067dfef32c2a074e3fddbe64ad553c271dc50f43fdd49797e99b4a",
    "d43fe9d0ed21f7e3a87408dbb03cf529ee71b8dd6e2493ee6f6b30f463e9a192",
}


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project's folder unless set, with the project's instance file
    (copied when absent, or when it is an unedited copy of an earlier version's)."""
    import hashlib

    home = settings.dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    shipped = Path(__file__).resolve().parent / "instance" / "dagster.yaml"
    if not cfg.exists() or hashlib.sha256(cfg.read_bytes()).hexdigest() in _SHIPPED_INSTANCE_FILES:
        tmp = cfg.with_name(".dagster.yaml.tmp")
        shutil.copy(shipped, tmp)
        tmp.replace(cfg)
    return home


def _has_contract_files(raw: Path) -> bool:
    from offshoring.truth import contract_files

    return raw.is_dir() and bool(contract_files(raw))


def _check_raw_folder(raw: Path) -> dict[int, Path]:
    """The survey deliveries of a real raw folder, or a refusal saying what is missing."""
    from offshoring.readers.layout import discover_survey_files

    env = settings.ENV_RAW_DIR
    hint = ("Put the survey, aida and reference files there (README, 'Running on real files'), "
            "or run the synthetic demo with `offshoring demo`.")
    if not raw.exists():
        raise Refusal(f"The raw folder {raw} does not exist ({env}). {hint}")
    if not raw.is_dir():
        raise Refusal(f"The raw folder {raw} is not a folder ({env}). {hint}")
    files = discover_survey_files(raw)
    if not files:
        raise Refusal(f"No survey deliveries in {raw / 'survey'} (looked for survey_<YYYY>.csv, "
                      f".csv.gz or .parquet). {hint}")
    missing = [" or ".join(names) for names in REQUIRED_FILES
               if not any((raw / n).exists() or (raw / n).is_symlink() for n in names)]
    if missing:
        raise Refusal(f"The raw folder {raw} lacks {'; '.join(missing)}. {hint}")
    _check_yaml(raw / "column_map.yaml")
    return files


#: the contract's inputs besides the survey (one of each tuple)
REQUIRED_FILES = (("aida/aida_firms.xlsx", "aida/aida_firms.csv"), ("aida/aida_subsidiaries.csv",),
                  ("reference/llma.csv",), ("reference/census_employment.csv",))


def _check_yaml(path: Path) -> None:
    """A settings file that is not valid YAML, named with its line (never its text)."""
    import yaml

    if not path.is_file():
        return
    try:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise Refusal(f"{path} is not UTF-8 text; save it as UTF-8.") from None
    except yaml.YAMLError as exc:
        raise Refusal(f"{path} is not valid YAML: {_yaml_problem(exc)}. Fix it (indentation, brackets, "
                      f"colons) and run again.") from None
    if path.name == "column_map.yaml":  # every source, option, column, variable and factor checked
        from offshoring.readers.column_map import ColumnMapError, load_column_map

        try:
            load_column_map(path)
        except ColumnMapError as exc:
            raise Refusal(str(exc)) from None


def _yaml_problem(exc: BaseException) -> str:
    """What is wrong and where, without the YAML parser's quote of the offending text."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or 'not valid YAML'}{where}"


def _prepare_demo(raw: Path, args: argparse.Namespace) -> None:
    """Write the generator's files into an empty (or missing) raw folder; reuse its own files."""
    from offshoring.truth import generated_folder_problem

    if _has_contract_files(raw):
        problem = generated_folder_problem(raw)
        if problem:
            raise Refusal(
                f"The demo runs only on synthetic files, but {problem}. Point {settings.ENV_RAW_DIR} "
                f"(and OFFSHORING_DB, OFFSHORING_REPORTS_DIR) at empty paths for the demo, or run real "
                f"files with `offshoring run`.")
        print(f"Synthetic data already in {raw}: reused.", flush=True)
        return
    others = sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) if raw.is_dir() else []
    if others:
        # the generator's files would land beside the user's own (a misplaced delivery, a
        # README, an archive), and a later refusal would leave them there
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise Refusal(
            f"The demo writes its synthetic files only into an empty folder, but {raw} "
            f"({settings.ENV_RAW_DIR}) holds {shown}. Point {settings.ENV_RAW_DIR} (and OFFSHORING_DB, "
            f"OFFSHORING_REPORTS_DIR) at empty paths for the demo; nothing was written.")
    from offshoring.synth import generate

    print(f"Writing synthetic data to {raw} ({args.firms} firms) ...", flush=True)
    t0 = time.perf_counter()
    summary = generate(raw, firms=args.firms, seed=args.seed)
    print(f"Synthetic data written in {time.perf_counter() - t0:.1f} s (seed {summary['seed']}; "
          f"true parameters in {raw / 'truth.json'}).", flush=True)


def _preflight(raw: Path, synthetic: bool, rekey: bool, accept_smaller: set[int]):
    """Refusals that need no run: the settings, the key, synthetic files in real mode, the
    warehouse's identity, and every changed delivery read and validated (with the delivery
    gate) before any is loaded. Returns the study specification (read once)."""
    from offshoring.identity import Identity, check_database_file, key_fingerprint
    from offshoring.pseudonym import resolve_key
    from offshoring.spec import load_study_spec
    from offshoring.truth import synthetic_in_real_mode

    delivered = _check_raw_folder(raw)
    spec = load_study_spec(settings.config_dir())  # every settings file parsed and checked
    problem = None if synthetic else synthetic_in_real_mode(raw)
    if problem:
        raise Refusal(problem)
    if synthetic:
        from offshoring.truth import generated_folder_problem

        problem = generated_folder_problem(raw)
        if problem:
            raise Refusal(f"Synthetic mode, but {problem}. The demo reads only the generator's own files: "
                          f"point {settings.ENV_RAW_DIR} at an empty folder for `offshoring demo`, or run "
                          f"real files with `offshoring run` and your key.")
    _check_report_years(spec, sorted(delivered))  # after what the files are: that comes first
    _check_reports_folder(settings.reports_dir(), "synthetic" if synthetic else "real", raw)
    _check_warehouse_path(settings.db_path())
    key = resolve_key(synthetic)
    if not rekey:
        wanted = Identity("synthetic" if synthetic else "real", key_fingerprint(key))
        problem = check_database_file(settings.db_path(), wanted)
        if problem:
            raise Refusal(problem)
        _check_years_still_delivered(raw, settings.db_path())
    from offshoring.inputs import DeliveryGate, check_changed_inputs

    gate = DeliveryGate.from_spec(spec.thresholds.delivery_gate, accept_smaller)
    checked = check_changed_inputs(raw, None if rekey else settings.db_path(), key=key, gate=gate)
    if checked:
        print(f"Checked {len(checked)} new or changed input file(s) before loading any.", flush=True)
    return spec


def _check_report_years(spec, years: list[int]) -> None:
    """The years the reports settings name are years delivered: a figure of a year without data
    (refused by its asset) would otherwise stop the run after the other reports were written."""
    if not years:
        return
    cfg = spec.reports
    held = f"{years[0]}-{years[-1]}" if years == list(range(years[0], years[-1] + 1)) else \
        ", ".join(map(str, years))
    for setting, year in (("figure1.year", cfg.figure1.year), ("figure2.year", cfg.figure2.year)):
        if year not in years:
            raise Refusal(f"reports.yaml: {setting} is {year}, a year with no survey delivery (the deliveries "
                          f"are {held}): the figure would show no firm at all. Set {setting} to a year "
                          f"delivered.")
    start, end = cfg.table1.start_year, cfg.table1.end_year
    if not any(start <= y and (end is None or y <= end) for y in years):
        raise Refusal(f"reports.yaml: Table 1's period (table1.start_year {start}, end_year "
                      f"{end if end is not None else 'latest'}) holds no year delivered (the deliveries are "
                      f"{held}). Set table1.start_year and end_year to years delivered.")


def _writable_ancestor(path: Path) -> tuple[Path, bool]:
    """The nearest existing folder at or above `path` (what creating `path` writes into), and
    whether a file can be written there: tried, not asked (permission bits lie to root)."""
    import tempfile

    parent = path
    while not parent.exists() and parent != parent.parent:  # a missing drive or share is its own parent
        parent = parent.parent
    try:
        if not parent.is_dir():
            return parent, False
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError:
        return parent, False
    return parent, True


def _check_environment() -> None:
    """Every OFFSHORING_* environment variable is a setting this pipeline reads, or a secret the
    alert settings name (their `password_env`, `webhook_url_env`)."""
    if not settings.unknown_variables():
        return
    from offshoring.alerts import AlertSettings
    from offshoring.spec import load_study_spec

    cfg = AlertSettings.load(load_study_spec(settings.config_dir()).alerts.model_dump())
    secrets = [name for name in (cfg.email.get("password_env"), cfg.slack.get("webhook_url_env")) if name]
    unknown = settings.unknown_variables(secrets)
    if unknown:
        raise Refusal(settings.unknown_variable_sentence(unknown, secrets))


def _check_warehouse_path(db: Path) -> None:
    """Before anything runs: the warehouse's folder can be written (DuckDB writes the file and
    its write-ahead log beside it). A folder that cannot be failed inside the run with six
    IOExceptions naming no setting."""
    parent, writable = _writable_ancestor(db.parent)
    if writable and db.is_file():
        try:
            with open(db, "ab"):
                pass
        except OSError:
            writable = False
    if not writable:
        raise Refusal(f"The warehouse {db} ({settings.ENV_DB}) cannot be written there ({parent} is not a "
                      f"folder this user can write, or the file is read-only). Point {settings.ENV_DB} at a "
                      f"file in a folder you can write.")


def _check_reports_folder(reports: Path, origin: str, raw: Path | None = None) -> None:
    """Before anything loads: the reports folder can be written, is apart from the raw folder,
    and the demo does not write its synthetic tables over a real run's (a real run replaces the
    demo's, and says so)."""
    if raw is not None:
        r, d = reports.resolve(), raw.resolve()
        if r == d or d in r.parents or r in d.parents:
            if r in d.parents:  # the raw folder inside the reports folder
                why = ("the reports and their provenance would be written around the deliveries, and whoever "
                       "shares or clears the reports folder takes the confidential files with it")
                where = "holds"
            else:
                why = "tables and figures would be written among the deliveries (and read as new inputs)"
                where = "is" if r == d else "is inside"
            raise Refusal(f"The reports folder {reports} ({settings.ENV_REPORTS_DIR}) {where} the raw folder "
                          f"{raw} ({settings.ENV_RAW_DIR}): {why}. Point {settings.ENV_REPORTS_DIR} at a "
                          f"folder of its own.")
    if reports.exists() and not reports.is_dir():
        raise Refusal(f"The reports folder {reports} ({settings.ENV_REPORTS_DIR}) is a file, not a folder. "
                      f"Point {settings.ENV_REPORTS_DIR} at a folder (it is created if missing).")
    parent, writable = _writable_ancestor(reports)
    if not writable:
        raise Refusal(f"The reports folder {reports} ({settings.ENV_REPORTS_DIR}) cannot be written "
                      f"({parent} is not a writable folder). Point {settings.ENV_REPORTS_DIR} elsewhere.")
    if origin == "synthetic":
        from offshoring import runstate

        real = runstate.reports_origins(reports).get("real")
        if real:
            raise Refusal(f"The reports folder {reports} holds reports of real data ({real[0]} says so); the "
                          f"demo would write synthetic tables over them. Point {settings.ENV_REPORTS_DIR} "
                          f"at another folder for the demo.")


def _check_years_still_delivered(raw: Path, db: Path) -> None:
    """A survey year the warehouse holds whose delivery is gone from the raw folder: a run would
    keep it in the panel, the models and the tables while their provenance lists only the files
    present. Refused, naming the years (the panel asset refuses the same from Dagster)."""
    if not db.exists():
        return
    import duckdb

    # light: the no-op path imports no pandas
    from offshoring.readers.layout import removed_delivery_sentence, years_no_longer_delivered

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return  # the identity check above has already judged the file; the run says the rest
    try:
        held = [int(y) for y, in con.execute("SELECT DISTINCT year FROM raw.survey_returns ORDER BY 1").fetchall()]
    except duckdb.Error:
        held = []
    finally:
        con.close()
    gone = years_no_longer_delivered(held, raw)
    if gone:
        raise Refusal(removed_delivery_sentence(gone, raw, db, settings.ENV_DB))


def _run(raw: Path, args: argparse.Namespace, synthetic: bool) -> int:
    os.environ[settings.ENV_SYNTHETIC] = "1" if synthetic else "0"
    rekey = bool(getattr(args, "rekey", False))
    if rekey and synthetic:
        raise Refusal("--rekey rebuilds a real warehouse under a new key; the demo has one fixed key.")
    accept = set(getattr(args, "accept_smaller", None) or ())
    spec = _preflight(raw, synthetic, rekey, accept)
    db = settings.db_path()
    from offshoring import runstate

    state = runstate.inputs_state(raw, spec, "synthetic" if synthetic else "real")
    accepting = bool(getattr(args, "accept_smaller", None))
    last = runstate.last_state(db)
    if (not rekey and not accepting and runstate.without_reports(last) == state
            and runstate.reports_of(settings.reports_dir(), "synthetic" if synthetic else "real")
            and runstate.reports_as_recorded(last, settings.reports_dir())):
        print(f"Nothing changed since the last complete run (same files, specification and code "
              f"version): the warehouse {db} and the reports in {settings.reports_dir()} are up to date.",
              flush=True)
        return 0
    home = ensure_dagster_home()
    target = db.with_name(db.name + ".rekey") if rekey else db
    if rekey:
        _remove_database(target)
        os.environ[settings.ENV_DB] = str(target)
    print(f"{'Synthetic demo' if synthetic else 'Real data'}: raw {raw}; warehouse {db}"
          f"{' (rebuilt under the new key)' if rekey else ''}; reports {settings.reports_dir()}; "
          f"Dagster instance {home}", flush=True)

    from orchestration.pipeline import run_everything

    try:
        ok = run_everything(raw_dir=raw, accept_smaller=set(getattr(args, "accept_smaller", None) or ()),
                            debug=args.debug)
    finally:
        if rekey:
            os.environ[settings.ENV_DB] = str(db)
    if rekey:
        if ok:
            _remove_database(db)
            os.replace(target, db)
            print(f"{db} rebuilt from the raw files under the new key.", flush=True)
        else:
            _remove_database(target)
            print(f"{db} is unchanged.", flush=True)
    if ok:
        # with the reports folder as this run left it: a later run into another folder, or
        # after a report was deleted or edited, is then no no-op
        runstate.record_state(db, {**state, "reports": runstate.reports_digest(settings.reports_dir())})
    return 0 if ok else EXIT_FAILED


def _remove_database(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        if p.exists():
            p.unlink()


def cmd_run(args: argparse.Namespace) -> int:
    # --synthetic or OFFSHORING_SYNTHETIC=1 (checked: any other value than 0/1 is refused)
    return _run(settings.raw_dir(), args, synthetic=bool(args.synthetic) or settings.synthetic())


def cmd_demo(args: argparse.Namespace) -> int:
    from offshoring.identity import Identity, check_database_file, key_fingerprint
    from offshoring.pseudonym import DEMO_KEY

    raw = settings.raw_dir()
    os.environ[settings.ENV_SYNTHETIC] = "1"
    # before anything is generated: the demo never writes into a real warehouse
    problem = check_database_file(settings.db_path(), Identity("synthetic", key_fingerprint(DEMO_KEY)))
    if problem:
        raise Refusal(problem)
    _check_reports_folder(settings.reports_dir(), "synthetic", raw)  # nor over a real run's reports (before generating)
    _check_warehouse_path(settings.db_path())
    from offshoring.spec import load_study_spec

    spec = load_study_spec(settings.config_dir())  # the settings refused before any file is generated
    if not _has_contract_files(raw):  # the report years against the years the generator will write
        from offshoring.synth.dataset import load_config, parse_years

        _check_report_years(spec, sorted(parse_years(None, load_config())))
    _prepare_demo(raw, args)
    return _run(raw, args, synthetic=True)


UI_STOP_SECONDS = 8.0


def _ui_preflight(raw: Path, synthetic: bool) -> None:
    """What a run refuses before it starts, checked before the UI starts: its sensors, schedule
    and materializations would otherwise fail one by one inside Dagster (a missing key as a
    step's stack trace, a missing folder as "Sensor function returned an empty result").
    The deliveries themselves are read by the sensors' own gate, as they arrive."""
    from offshoring.identity import Identity, check_database_file, key_fingerprint
    from offshoring.pseudonym import resolve_key
    from offshoring.spec import load_study_spec
    from offshoring.truth import generated_folder_problem, synthetic_in_real_mode

    load_study_spec(settings.config_dir())
    if synthetic:
        if not _has_contract_files(raw):
            raise Refusal(f"No synthetic data in {raw} ({settings.ENV_RAW_DIR}): run `offshoring demo` first, "
                          f"then `offshoring ui --synthetic`.")
        problem = generated_folder_problem(raw)
        if problem:
            raise Refusal(f"Synthetic mode, but {problem}. Open the UI on real files with `offshoring ui` "
                          f"and your key.")
    else:
        _check_raw_folder(raw)
        problem = synthetic_in_real_mode(raw)
        if problem:
            raise Refusal(problem)
    _check_reports_folder(settings.reports_dir(), "synthetic" if synthetic else "real", raw)
    _check_warehouse_path(settings.db_path())
    key = resolve_key(synthetic)
    problem = check_database_file(settings.db_path(),  # a run in progress: the UI can watch it
                                  Identity("synthetic" if synthetic else "real", key_fingerprint(key)),
                                  busy_ok=True)
    if problem:
        raise Refusal(problem)


def cmd_ui(args: argparse.Namespace) -> int:
    """`dagster dev` on the project's instance, stopped cleanly on Ctrl-C or SIGTERM.

    dagster dev runs in a session of its own (webserver, daemon, code server and run workers
    stay in it, whatever process group they take); a stop request is passed on as SIGTERM to
    every process of the session, and whatever is still alive after `UI_STOP_SECONDS` is
    killed, so nothing is left behind, also when dagster dev ends by itself.
    """
    import signal
    import subprocess

    # the flag, or the setting the README says the UI reads (it used to be overwritten by 0)
    synthetic = bool(args.synthetic) or settings.synthetic()
    os.environ[settings.ENV_SYNTHETIC] = "1" if synthetic else "0"
    _ui_preflight(settings.raw_dir(), synthetic)
    home = ensure_dagster_home()
    dagster = Path(sys.executable).parent / "dagster"
    cmd = [str(dagster), "dev", "-m", "orchestration.definitions", "-h", args.host, "-p", str(args.port)]
    # The handlers first: a stop asked for while dagster dev starts (SIGTERM right after the
    # line below) used to kill this process alone and leave dagster dev and its webserver,
    # daemon and code server running, orphaned.
    stop = {"asked": False}

    def ask_stop(signum, frame) -> None:
        stop["asked"] = True

    signal.signal(signal.SIGINT, ask_stop)
    signal.signal(signal.SIGTERM, ask_stop)
    print(f"Dagster UI on http://{args.host}:{args.port} ({'synthetic demo' if synthetic else 'real data'}; "
          f"instance {home}). Ctrl-C stops it.", flush=True)

    def restore_signals() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    if stop["asked"]:
        return 0
    # a session of its own: every process dagster dev starts stays in it, whatever process
    # group it puts itself in, so the stop finds them all (Ctrl-C reaches them through us)
    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=restore_signals, stdin=subprocess.DEVNULL)
    while proc.poll() is None and not stop["asked"]:
        time.sleep(0.2)
    if proc.poll() is None or _session_pids(proc.pid):
        _stop_group(proc)  # also when dagster dev ended by itself: what it started must not outlive it
    return 0 if stop["asked"] or proc.returncode == 0 else EXIT_FAILED


def _stop_group(proc) -> None:
    """SIGTERM to every process of the UI's session, SIGKILL to what is left after
    `UI_STOP_SECONDS`. A process started while the others stop (a code server the webserver
    was launching when the signal came, in a process group of its own) is found by the next
    look at the session and stopped too; it used to be left behind."""
    import signal

    sid = proc.pid  # start_new_session: the session id is its pid
    termed: set[int] = set()  # once each: a second SIGTERM cuts a graceful stop short

    def signal_all(sig) -> None:
        if not Path("/proc").is_dir():  # no process table to read: the group signal must do
            if sig != signal.SIGTERM or sid not in termed:
                termed.add(sid)
                try:
                    os.killpg(sid, sig)
                except ProcessLookupError:
                    pass
            return
        for pid in _session_pids(sid):
            if sig == signal.SIGTERM and pid in termed:
                continue
            termed.add(pid)
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + UI_STOP_SECONDS
    while time.monotonic() < deadline and (proc.poll() is None or _session_pids(sid)):
        signal_all(signal.SIGTERM)  # late starters
        time.sleep(0.2)
    for _ in range(50):  # what has not stopped, and anything it started meanwhile
        if proc.poll() is not None and not _session_pids(sid):
            break
        signal_all(signal.SIGKILL)
        time.sleep(0.05)
    try:
        proc.wait(timeout=2)
    except Exception:  # noqa: BLE001 - it was killed; nothing more to wait for
        pass


def _session_pids(sid: int) -> list[int]:
    """Live processes of session `sid` (field 3 of /proc/PID/stat after the command; a process
    group lies inside its session). Linux /proc; elsewhere none (`_stop_group` then signals
    the process group)."""
    out = []
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return out
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _plain(exc: BaseException) -> str | None:
    """The message of an error whose text is meant for users (never echoes file values)."""
    from yaml import YAMLError

    from offshoring.identity import IdentityError
    from offshoring.load import WarehouseWriteError
    from offshoring.pseudonym import PseudonymKeyError
    from offshoring.validation import ContractError

    from offshoring.spec import SpecError

    if isinstance(exc, (Refusal, ContractError, PseudonymKeyError, IdentityError, WarehouseWriteError,
                        settings.SettingError, SpecError)):
        return str(exc)
    if isinstance(exc, YAMLError):
        return f"A settings file is not valid YAML: {_yaml_problem(exc)}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "synth":
        from offshoring.synth import cli_main

        return cli_main(argv[1:])
    parser = argparse.ArgumentParser(prog="offshoring", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("synth", help="write synthetic raw data only (see `offshoring synth --help`)")
    demo = sub.add_parser("demo", help="the whole pipeline on synthetic data (written into an empty raw folder)")
    demo.add_argument("--firms", type=int, default=DEFAULT_FIRMS, help="firms of the synthetic data")
    demo.add_argument("--seed", type=int, default=None, help="seed of the synthetic data "
                                                             "(default: config/synth.yaml)")
    run = sub.add_parser("run", help="the whole pipeline on the real files of the raw folder")
    run.add_argument("--synthetic", action="store_true",
                     help="the raw folder holds the generator's files: run them as the demo")
    run.add_argument("--accept-smaller", type=int, action="append", metavar="YEAR",
                     help="accept this year's delivery although it is much smaller than the one it "
                          "replaces or its neighbours (repeatable; recorded in raw.load_log)")
    run.add_argument("--rekey", action="store_true",
                     help="rebuild the warehouse from the raw files under the current key "
                          "(the old one is replaced only when the rebuild succeeds)")
    ui = sub.add_parser("ui", help="the Dagster UI and daemon on the project's instance (Ctrl-C stops it)")
    ui.add_argument("--synthetic", action="store_true", help="the demo's data (as `offshoring demo`)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    for p in (demo, run, ui):
        p.add_argument("--debug", action="store_true", help="print stack traces of failures")
    args = parser.parse_args(argv)
    try:
        commands = {"demo": cmd_demo, "run": cmd_run, "ui": cmd_ui}
        _check_environment()  # first: a misspelt setting would make every later check read a default
        return commands[args.command](args)
    except Exception as exc:  # noqa: BLE001 - the command line's last word on any failure
        if args.debug:
            traceback.print_exc()
        message = _plain(exc)
        if message is None:
            print(f"offshoring {args.command} failed: {type(exc).__name__} (rerun with --debug for the "
                  f"details).", file=sys.stderr)
            return EXIT_FAILED
        print(f"offshoring {args.command}: refused. {message}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
