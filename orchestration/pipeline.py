"""Run the whole pipeline through Dagster from the command line.

Registers a partition for every survey delivery present, then, in one run, loads the
survey years and reference files that are new or changed (decided from the hashes and
code versions in raw.load_log, not by running) and refreshes what is built from them.
Years not contiguous in the partitions' order take one run per block (the downstream
refresh goes with the last). Each run is recorded in the instance (DAGSTER_HOME), so the
UI shows them, with one materialization per survey year loaded.
"""


import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from offshoring import inputs
from offshoring.readers.survey import discover_survey_files
from assets.partitions import SURVEY_YEARS, block_target, contiguous_blocks
from assets.resources import data_tags
from orchestration.progress import PROGRESS_RUN_CONFIG


PID_TAG = "offshoring/pid"
HOST_TAG = "offshoring/host"


def process_tags() -> dict[str, str]:
    """Tags naming the process that executes a run in-process (the CLI, tests)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def defs_data_tags(defs: dg.Definitions) -> dict[str, str]:
    """The data tag (`data_tags`) of the definitions' raw folder."""
    return data_tags(defs.resources["folders"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the in-process runs whose process died (SIGKILL, power loss) and free
    the writer-pool slots they held, so the next run is not blocked behind them.

    Only runs tagged with a pid on this host are judged; runs launched by the daemon
    are left to Dagster's run monitoring.
    """
    released = []
    runs = instance.get_runs(filters=dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]))
    for run in runs:
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or host != socket.gethostname() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the process running it (pid {pid}) is gone")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def run_partition(defs: dg.Definitions, instance: dg.DagsterInstance, year: str,
                  run_config: dict | None = None, accept_smaller: bool = False) -> dg.ExecuteInProcessResult:
    """Load one survey year in its own run (after releasing runs left by dead processes)."""
    release_dead_runs(instance)
    config = dict(run_config or {})
    if accept_smaller:
        config["ops"] = {"survey_returns": {"config": {"accept_smaller": True}}}
    return defs.resolve_job_def("load_survey_year").execute_in_process(
        instance=instance, partition_key=year, run_config=config or None,
        tags={**process_tags(), **defs_data_tags(defs)},
        raise_on_error=False)


def failure_summary(result: dg.ExecuteInProcessResult, debug: bool = False) -> str:
    """The root cause of a failed run in plain lines: the step and the message it failed with.

    A `dagster.Failure` carries a message written for users (file, row, column, what to
    do); any other error is named by its type, its stack trace left in the run's log
    (`debug` adds it here).
    """
    lines = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        if user is not None and user.description:
            text = user.description
        else:
            err = data.error
            while err is not None and err.cause is not None and err.cls_name in (
                    "DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"):
                err = err.cause
            first = (err.message.strip().splitlines() or [""])[0][:400] if err else ""
            text = (f"{first or (err.cls_name if err else 'error')} (the stack trace is in the run's log; "
                    f"rerun with --debug to print it)")
        lines.append(f"{event.step_key}: {text}")
        if debug and data.error is not None:
            lines.append(data.error.to_string())
    for ev in result.get_asset_check_evaluations():
        if not ev.passed and getattr(ev.severity, "value", "ERROR") == "ERROR":
            lines.append(f"check {ev.asset_key.to_user_string()}:{ev.check_name} failed: "
                         f"{ev.description or 'see the run in the UI'}")
    return "\n".join(lines) or "the run failed before any step ran (see the run's log)"


def report_checks_and_alert(defs: dg.Definitions, instance: dg.DagsterInstance,
                            result: dg.ExecuteInProcessResult) -> None:
    """After a command-line run: each failed WARN check in a plain line (a year delivered in
    thousands of EUR was published with exit 0 and one line naming the check only), and the
    alerts of config/alerts.yaml for every failed check and a failed run, as the daemon's
    sensors send them (the same alert, so it is sent once: the sensors skip it later). The
    command line used to send none, and the run-failure sensor never sees its runs."""
    from offshoring.alerts import Alert, AlertSettings, dispatch
    from orchestration.sensors import check_alert, run_failure_cause, run_origin

    failed = [ev for ev in result.get_asset_check_evaluations() if not ev.passed]
    run = instance.get_run_by_id(result.run_id)
    alerts = [check_alert(ev, result.run_id, run_origin(run)) for ev in failed]
    for ev, alert in zip(failed, alerts):
        if alert.severity == "WARN":
            print(f"Warning: check {alert.asset}:{alert.check}"
                  f"{f' [{alert.partition}]' if alert.partition else ''} did not pass: "
                  f"{ev.description or 'see the run in the UI'}", flush=True)
    study = (defs.resources or {}).get("study")
    if study is None or not hasattr(study, "spec"):
        return
    cfg = AlertSettings.load(study.spec.alerts.model_dump())
    if not cfg.enabled:
        return
    if not result.success:
        alerts.append(Alert(kind="run_failed", run_id=result.run_id, job=run.job_name if run else None,
                            partition=(run.tags.get("dagster/partition") if run else None),
                            description=run_failure_cause(instance, result.run_id, "run failed"),
                            origin=run_origin(run)))
    for alert in alerts:
        done = dispatch(alert, cfg)
        if done.sent:
            print(f"Alert sent ({', '.join(done.sent)}): {alert.subject()}", flush=True)
        for channel, why in done.failed.items():
            print(f"Alert could not be sent by {channel} ({why}): {alert.subject()}", file=sys.stderr, flush=True)


def register_years(instance: dg.DagsterInstance, raw_dir: Path) -> list[str]:
    """Add a partition for every survey file present; returns all year keys, sorted."""
    years = sorted(str(y) for y in discover_survey_files(raw_dir))
    known = set(instance.get_dynamic_partitions(SURVEY_YEARS))
    new = [y for y in years if y not in known]
    if new:
        instance.add_dynamic_partitions(SURVEY_YEARS, new)
    return years


def _database(defs: dg.Definitions) -> Path | None:
    warehouse = defs.resources.get("warehouse")
    db = Path(getattr(warehouse, "database", "") or "")
    return db if db.is_file() else None


def latest_loads(defs: dg.Definitions) -> dict[tuple[str, str | None], tuple[str, str]]:
    """(SHA-256, code version) of the file behind each raw table's (and survey year's) latest
    successful load, from raw.load_log; empty when there is no warehouse yet."""
    return inputs.latest_loads(_database(defs))


def up_to_date_years(defs: dg.Definitions, raw_dir: Path,
                     loads: dict[tuple[str, str | None], tuple[str, str]] | None = None) -> set[str]:
    """Years whose delivery the warehouse already holds: its latest load read a file with
    the same SHA-256, with this code version. Reloading them would change nothing, and a
    run that stops at a later, refused delivery then leaves the warehouse untouched."""
    from offshoring.readers.common import sha256_file
    from offshoring.version import code_version

    loads = latest_loads(defs) if loads is None else loads
    files = discover_survey_files(raw_dir)
    version = code_version()
    out = set()
    for (table, partition), (sha, ver) in loads.items():
        if table != "survey_returns" or partition is None or not partition.isdigit():
            continue
        path = files.get(int(partition))
        if path is not None and ver == version and sha == sha256_file(path):
            out.add(partition)
    return out


def up_to_date_references(defs: dg.Definitions, raw_dir: Path,
                          loads: dict[tuple[str, str | None], tuple[str, str]] | None = None) -> set[str]:
    """The reference loads (AIDA, reference tables: the unpartitioned raw assets) whose table
    holds the file they would read now, loaded by this code version: not run again."""
    from assets.raw import REFERENCE_FILES, reference_input
    from offshoring.readers.common import sha256_file
    from offshoring.version import code_version

    loads = latest_loads(defs) if loads is None else loads
    version = code_version()
    out = set()
    for asset, (table, _) in REFERENCE_FILES.items():
        last = loads.get((table, None))
        path = reference_input(Path(raw_dir), asset)
        if last is not None and path is not None and last[1] == version and last[0] == sha256_file(path):
            out.add(asset)
    return out


@dataclass
class RefreshPlan:
    """What a refresh does: which years and reference files it loads, what it rebuilds."""

    years: list[str]                  # every survey year present, sorted
    load: list[str]                   # the years to load (new, changed, or accepted smaller)
    references: list[str]             # reference loads to run (their file is new or changed)
    skipped_references: list[str]     # reference loads up to date
    downstream: list[str]             # the assets built from the raw tables to refresh
    why: str                          # why the downstream is what it is


COLUMN_MAP = inputs.COLUMN_MAP  # every reader takes it
#: files of the raw folder read by an asset that is not a load
OTHER_READERS = {"reference/districts.csv": "llma_districts"}


def _raw_assets(graph) -> tuple[set[dg.AssetKey], set[dg.AssetKey]]:
    keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    raw = {k for k in keys if graph.get(k).group_name == "raw"}
    return raw, keys - raw


#: What reads each part of the study specification (`StudySpec.as_dict()`: a part, or one key
#: of it, "thresholds.delivery_gate"), read off the assets (`study.spec.<part>` in assets/*.py):
#: asset names, "group:<group>" for every asset of a group, "variants:<table>" for the variant
#: fits of a table (their effective specification is the baseline's model part with their
#: overlay). A changed part refreshes these assets and what is downstream of them; a key
#: missing here falls back to its part's entry, and a part missing here to everything.
#: Every fit and provenance record also stores the whole specification's hash: metadata only.
SPEC_READERS: dict[str, tuple[str, ...]] = {
    # turnover ceilings (the SME panel; AIDA firms above them), the ownership threshold
    "thresholds": ("firm_years", "aida_offshoring"),
    # the delivery gate and the plausibility checks act when a survey year loads (what loads
    # is decided from raw.load_log, and a refused year loads once the gate lets it)
    "thresholds.delivery_gate": (),
    "thresholds.plausibility": (),
    "panel": ("model_panel",),
    # the district flags; a variant with its own panel reads them too, and is below
    # llma_districts (firm_years -> model_panel) anyway
    "districts": ("llma_districts",),
    "models": ("outsourcing_probit", "backshoring_cox", "backshoring_grouped_ph"),  # a key not below
    "models.probit": ("outsourcing_probit",),  # quadrature check, partial effects, the spec's file
    "models.cox": ("backshoring_cox", "backshoring_grouped_ph"),  # the spec's file
    "probit": ("outsourcing_probit", "variants:table2"),
    "probit.labels": ("table2", "table2_robustness"),  # row labels: the tables only, not the fit
    "cox": ("backshoring_cox", "backshoring_grouped_ph", "variants:table3"),
    "cox.labels": ("table3", "table3_grouped", "table3_robustness"),
    "reports": ("group:reports", "table2_robustness", "table3_robustness"),
    "variants": ("group:robustness",),
    # one table's variants (their files, or their descriptions, which name the baseline's
    # settings): that table's variant fits and robustness table, not the other's
    "variants.table2": ("variants:table2", "table2_robustness"),
    "variants.table3": ("variants:table3", "table3_robustness"),
    "alerts": (),    # the alert sensors, at their next tick
    "schedule": (),  # the schedule's cron, when the definitions load
    "files": (),     # which files the parts were read from, not what they say
}


def spec_readers(graph, spec, names: set[str]) -> tuple[set[dg.AssetKey] | None, list[str]]:
    """The assets reading the changed parts `names` of the specification (see `SPEC_READERS`),
    and the names that decided it; (None, [name]) when a changed part is not in the map."""
    keys: set[dg.AssetKey] = set()
    decided: list[str] = []
    all_keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    for part in sorted({n.split(".", 1)[0] for n in names}):
        subkeys = sorted(n for n in names if n.startswith(part + "."))
        for name in subkeys or [part]:
            readers = SPEC_READERS.get(name, SPEC_READERS.get(part))
            if readers is None:
                return None, [name]
            decided.append(name)
            for reader in readers:
                if reader.startswith("group:"):
                    keys |= {k for k in all_keys if graph.get(k).group_name == reader[len("group:"):]}
                elif reader.startswith("variants:"):
                    table = reader[len("variants:"):]
                    variants = (getattr(spec, "variants", None) or {}).get(table, ())
                    keys |= {dg.AssetKey(v.asset_name) for v in variants if v.main_fit is None}
                else:
                    keys.add(dg.AssetKey(reader))
    return keys & all_keys, decided


#: the asset groups that write the reports folder (and the variant fits the robustness tables read)
REPORT_GROUPS = ("reports", "robustness")


def plan_refresh(defs: dg.Definitions, raw_dir: Path, years: list[str],
                 accept_smaller: set[int] | frozenset[int] = frozenset()) -> RefreshPlan:
    """Decided from the hashes and code versions on record, not by running anything.

    A survey year or reference file loads when the warehouse's latest load of it read another
    file (SHA-256) or ran another code version. What is built from the raw tables is refreshed
    where it is downstream of what changed since the last complete run (meta.run_state: same
    code version and origin): the input files, and the parts of the specification (each part's
    readers, `SPEC_READERS`). With no such run to compare with, a run that recorded no parts
    of its specification, or a change it cannot place, all of it is.
    """
    from assets.raw import REFERENCE_FILES, reference_input
    from offshoring import runstate
    from offshoring.version import code_version

    raw_dir = Path(raw_dir)
    loads = latest_loads(defs)
    current = up_to_date_years(defs, raw_dir, loads)
    fresh_refs = up_to_date_references(defs, raw_dir, loads)
    graph = defs.resolve_asset_graph()
    raw_keys, built = _raw_assets(graph)

    db = _database(defs)
    state = runstate.last_state(db) if db is not None else None
    study, folders = defs.resources.get("study"), defs.resources.get("folders")
    spec = getattr(study, "spec", None)
    spec_sha = getattr(spec, "sha256", None)
    origin = getattr(folders, "origin", None)
    reports = Path(getattr(folders, "reports_dir", "") or "")
    changed: set[str] | None = None
    spec_changed: set[str] = set()
    stale_reports = False
    why = "no complete run on record to compare with"
    if state is not None and spec_sha is not None:
        parts = runstate.changed_spec_parts(state, spec)
        if (state.get("code_version"), state.get("origin")) != (code_version(), origin):
            why = "the code version or the origin differs from the last complete run"
        elif parts is None and state.get("spec_sha256") != spec_sha:
            why = ("the specification differs from the last complete run, which did not record "
                   "its parts")
        elif not runstate.reports_of(reports, origin):
            why = (f"the reports in {reports} are missing, or hold another origin's reports than "
                   f"this run's ({origin})")
        else:
            now = runstate.file_hashes(raw_dir)
            before = state.get("files") or {}
            changed = {rel for rel in set(now) | set(before) if now.get(rel) != before.get(rel)}
            spec_changed = parts or set()
            # the reports folder not as the last complete run left it (another folder, a report
            # deleted or edited, a run from the UI since): every report is written again
            stale_reports = not runstate.reports_as_recorded(state, reports)

    force_all = changed is not None and COLUMN_MAP in changed  # every reader takes the column map
    load = [y for y in years if force_all or y not in current or int(y) in accept_smaller]
    references = [a for a in REFERENCE_FILES if force_all or a not in fresh_refs]
    skipped = [a for a in REFERENCE_FILES if a not in references]

    roots: set[dg.AssetKey] | None = None
    if changed is not None:
        roots = {dg.AssetKey(a) for a in references} | ({dg.AssetKey("survey_returns")} if load else set())
        by_file = {}
        for asset in REFERENCE_FILES:
            path = reference_input(raw_dir, asset)
            if path is not None and path.is_relative_to(raw_dir):
                by_file[path.relative_to(raw_dir).as_posix()] = asset
        for rel in sorted(changed):
            asset = ("survey_returns" if rel.startswith("survey/") else by_file.get(rel)
                     or OTHER_READERS.get(rel) or ("survey_returns" if rel == COLUMN_MAP else None))
            if asset is None:
                roots, why = None, f"{rel} changed, which no single asset is known to read"
                break
            roots.add(dg.AssetKey(asset))
    decided: list[str] = []
    if roots is not None and spec_changed:
        readers, decided = spec_readers(graph, spec, spec_changed)
        if readers is None:
            roots, why = None, f"the specification's part '{decided[0]}' changed, which no map says who reads"
        else:
            roots |= readers
    if roots is None:
        downstream = built
    elif not roots:
        downstream = set()
        why = ("nothing that anything built from the raw tables reads changed since the last complete run"
               + (f" (specification: {', '.join(decided)})" if decided else ""))
    else:
        below = dg.AssetSelection.assets(*roots).downstream().resolve(graph)
        downstream = below - raw_keys
        why = ("what is downstream of the inputs changed since the last complete run"
               + (f" (specification: {', '.join(decided)})" if decided else ""))
    if roots is not None and stale_reports:
        # the outputs and what they read (fits whose inputs are unchanged are reused, not refitted)
        outputs = dg.AssetSelection.groups(*REPORT_GROUPS).resolve(graph)
        downstream = set(downstream) | outputs
        why = (why + "; " if downstream - outputs else "") + (
            f"the reports in {reports} are not as the last complete run left them (another folder, "
            f"or a report changed or deleted since): every report is written again")
    return RefreshPlan(years=years, load=load, references=references, skipped_references=skipped,
                       downstream=sorted(k.to_user_string() for k in downstream), why=why)


def _survey_config(years: list[str], accept_smaller: set[int] | frozenset[int]) -> dict:
    accepted = sorted(int(y) for y in years if int(y) in accept_smaller)
    return {"ops": {"survey_returns": {"config": {"accept_smaller_years": accepted, "print_progress": True}}}}


def _years_written(defs: dg.Definitions, raw_dir: Path, block: list[str]) -> set[str]:
    """The years of `block` (years the run was to load, none up to date before it) whose file
    the warehouse now holds: written by the run, whatever its events say."""
    if not block:
        return set()
    try:
        return up_to_date_years(defs, raw_dir) & set(block)
    except Exception:  # noqa: BLE001 - a warehouse that cannot be read now: the events say what they can
        return set()


def _loaded_partitions(result: dg.ExecuteInProcessResult) -> set[str]:
    out = set()
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            if mat.asset_key == dg.AssetKey("survey_returns") and mat.partition is not None:
                out.add(mat.partition)
    return out


def _refused_year(result: dg.ExecuteInProcessResult) -> str | None:
    """The year the survey step names as refused (its failure's ``refused_year`` metadata)."""
    for event in result.get_step_failure_events():
        data = getattr(event.event_specific_data, "user_failure_data", None)
        value = (getattr(data, "metadata", None) or {}).get("refused_year")
        if value is not None:
            return str(getattr(value, "value", value))
    return None


def _survey_failed(result: dg.ExecuteInProcessResult) -> bool:
    return any(e.step_key == "survey_returns" for e in result.get_step_failure_events())


def _span(years: list[str]) -> str:
    if not years:
        return ""
    ints = sorted(int(y) for y in years)
    if ints == list(range(ints[0], ints[-1] + 1)) and len(ints) > 2:
        return f"{ints[0]}-{ints[-1]}"
    return ", ".join(map(str, ints))


def run_everything(raw_dir: Path, instance: dg.DagsterInstance | None = None,
                   defs: dg.Definitions | None = None, accept_smaller: set[int] | frozenset[int] = frozenset(),
                   debug: bool = False) -> bool:
    """Load the survey years and reference files that are new or changed and refresh what is
    built from them, in one run (one more per extra block of years not contiguous in the
    partitions' order); what is up to date is not run.

    Progress goes to stdout one line per step and per year; a failure's root cause in plain lines.
    """
    if defs is None:
        from orchestration.definitions import defs as loaded

        defs = loaded
    instance = instance or dg.DagsterInstance.get()
    for run_id in release_dead_runs(instance):
        print(f"Run {run_id} was left unfinished by a process that is gone: marked failed.")
    years = register_years(instance, raw_dir)
    if not years:
        print(f"No survey deliveries found under {raw_dir / 'survey'}.")
        return False
    t0 = time.perf_counter()
    plan = plan_refresh(defs, raw_dir, years, accept_smaller)
    for year in years:
        if year not in plan.load:
            print(f"survey year {year}: loaded from the same file by this code version; skipped", flush=True)
    for asset in plan.skipped_references:
        print(f"{asset}: loaded from the same file by this code version; skipped", flush=True)
    blocks = contiguous_blocks(instance.get_dynamic_partitions(SURVEY_YEARS), plan.load)
    last_keys = [dg.AssetKey(a) for a in plan.references + plan.downstream]
    if not blocks and not last_keys:
        print(f"Nothing to load or refresh: everything is up to date ({plan.why}).", flush=True)
        return True
    if plan.downstream:
        print(f"Refreshing {len(plan.downstream)} assets: {plan.why}.", flush=True)
    n_runs = max(len(blocks), 1)
    for i in range(n_runs):
        block = blocks[i] if blocks else []
        last = i == n_runs - 1
        keys = ([dg.AssetKey("survey_returns")] if block else []) + (last_keys if last else [])
        parts = [f"survey year{'s' if len(block) > 1 else ''} {_span(block)}"] if block else []
        if last and plan.references:
            parts.append(", ".join(plan.references))
        if last and plan.downstream:
            parts.append(f"{len(plan.downstream)} assets built from them")
        print(f"[run {i + 1}/{n_runs}] " + "; ".join(parts), flush=True)
        result = _run(defs, instance, keys, block, accept_smaller, only_survey=not last)
        report_checks_and_alert(defs, instance, result)
        if not result.success:
            dt = time.perf_counter() - t0
            # what the warehouse holds now, not only what the run's events said: a run stopped
            # (SIGTERM, Ctrl-C) after the years were written but before their events were sent
            # has replaced them all the same
            written = _years_written(defs, raw_dir, block)
            loaded = sorted(_loaded_partitions(result) | written, key=int)
            refused = _refused_year(result) or next((y for y in sorted(block, key=int) if y not in loaded), None)
            if refused is not None and _survey_failed(result):
                kept = (f"; {_span(loaded)} loaded before it failed" if loaded else
                        "; no survey year of the run was replaced" if len(block) > 1 else "")
                print(f"Survey year {refused} was not loaded (run {result.run_id}){kept}; nothing built "
                      f"from the survey ran.\n{failure_summary(result, debug)}", file=sys.stderr, flush=True)
            elif loaded and _survey_failed(result):
                print(f"The run stopped (run {result.run_id}) after survey year{'s' if len(loaded) > 1 else ''} "
                      f"{_span(loaded)} had been written to the warehouse; nothing built from the survey ran, "
                      f"so the panel and the tables are those of the deliveries before. Run `offshoring run` "
                      f"again to build from them.\n{failure_summary(result, debug)}", file=sys.stderr, flush=True)
            else:
                print(f"The refresh run failed (run {result.run_id}) after {dt:.1f} s.\n"
                      f"{failure_summary(result, debug)}", file=sys.stderr, flush=True)
            return False
    dt = time.perf_counter() - t0
    print(f"Done in {dt:.1f} s: {len(years)} survey years ({len(plan.load)} loaded), "
          f"{len(plan.references)} reference file(s) loaded, {len(plan.downstream)} assets refreshed "
          f"in {n_runs} run{'s' if n_runs > 1 else ''}.", flush=True)
    return True


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey], block: list[str],
         accept_smaller: set[int] | frozenset[int], only_survey: bool) -> dg.ExecuteInProcessResult:
    """One run: the block of survey years (a partition range) and the other assets of `keys`."""
    release_dead_runs(instance)
    config = dict(PROGRESS_RUN_CONFIG)
    partition_key, tags = None, {}
    if block:
        config.update(_survey_config(block, accept_smaller))
        partition_key, tags = block_target(block)
    job = defs.resolve_job_def("load_survey_year" if only_survey else "refresh_outputs")
    return job.execute_in_process(
        instance=instance, run_config=config, partition_key=partition_key,
        tags={**process_tags(), **defs_data_tags(defs), **tags}, asset_selection=keys, raise_on_error=False)
