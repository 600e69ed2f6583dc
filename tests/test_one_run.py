"""One run per refresh, and only what changed runs: counted in the Dagster instance.

Through the command line users run (`offshoring run` in a subprocess, real-file mode with a
key), on one small world whose raw folder changes from test to test (the tests run in
order, each on the state the previous one left):

1. a first run of the 2005-2012 deliveries is one run: one materialization per survey
   year, one of every other asset;
2. the same folder again materializes nothing;
3. a new year (2013) is one run: its partition and what is built from the survey, not
   the reference loads or the geography built from them alone;
4. two re-delivered neighbouring years load in one run over a partition range; two that
   are not neighbours in one run each (the refresh goes with the second);
5. a changed reference file reloads that file and what is built from it, not the survey;
6. a changed part of the specification reloads nothing and rebuilds what reads that part
   and what is built from it: the panel setting the model panel and below; a report label
   the tables showing it; a probit key the probit fits and the tables; an alert setting
   nothing at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from conftest import as_real_files, instance_at, small_world_config
from test_instance_storage import EARLIER_INSTANCE_FILE


ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "orchestration.cli"]
KEY = "one-run-key-0123456789abcdef-not-secret"
YEARS = [str(y) for y in range(2005, 2013)]
REFERENCE_LOADS = {"municipalities", "llma_map", "census_employment", "aida_firm_years", "aida_subsidiaries"}
#: built from the reference files alone: a new survey year does not touch them
FROM_REFERENCE_ONLY = {"municipality_xwalk", "llma_districts"}


class World:
    def __init__(self, root: Path):
        self.root = root
        self.raw = root / "raw"
        self.home = root / "home"
        # the BLAS thread variables left out too: the CLI chooses them (one thread unless set)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("OFFSHORING_") and k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        self.config = small_world_config(root / "config")
        self.env.update({"OFFSHORING_RAW_DIR": str(self.raw), "OFFSHORING_DB": str(root / "w.duckdb"),
                         "OFFSHORING_REPORTS_DIR": str(root / "reports"), "DAGSTER_HOME": str(self.home),
                         "OFFSHORING_PSEUDONYM_KEY": KEY,
                         "OFFSHORING_CONFIG_DIR": str(self.config),
                         # the code version pinned (no git: the package version), so that a commit
                         # made in the checkout while the tests run is not a change they see
                         "GIT_DIR": str(root / "no_git")})
        self.seen: set[str] = set()
        from orchestration.definitions import build_definitions
        from assets.resources import Study

        self.graph = build_definitions(
            {"study": Study(config_dir=self.env["OFFSHORING_CONFIG_DIR"])}).resolve_asset_graph()

    def below(self, *assets: str) -> set[str]:
        """The assets built from `assets` (downstream, themselves excluded)."""
        keys = dg.AssetSelection.assets(*assets).downstream().resolve(self.graph)
        return {k.to_user_string() for k in keys} - set(assets)

    def group(self, name: str) -> set[str]:
        return {k.to_user_string() for k in self.graph.get_all_asset_keys() if self.graph.get(k).group_name == name}

    def every_asset(self) -> set[str]:
        return {k.to_user_string() for k in self.graph.get_all_asset_keys()
                if self.graph.get(k).is_materializable}

    def run(self, *args: str, env: dict[str, str] | None = None,
            python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        proc = subprocess.run([CLI[0], *python_flags, *CLI[1:], "run", *args], env=env or self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    def new_runs(self) -> list[dg.DagsterRun]:
        """The runs recorded since the last call, oldest first."""
        with instance_at(self.home) as instance:
            runs = [r for r in reversed(instance.get_runs()) if r.run_id not in self.seen]
        self.seen.update(r.run_id for r in runs)
        return runs

    def materialized(self, runs: list[dg.DagsterRun]) -> list[tuple[str, str | None]]:
        """(asset, partition) of every materialization of `runs`."""
        out = []
        with instance_at(self.home) as instance:
            for run in runs:
                for rec in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
                    mat = rec.dagster_event.event_specific_data.materialization
                    out.append((mat.asset_key.to_user_string(), mat.partition))
        return out

    def survey(self, year: str) -> Path:
        return self.raw / "survey" / f"survey_{year}.csv"

    def redeliver(self, year: str) -> None:
        """The same delivery less its last return (a correction, within the delivery gate)."""
        path = self.survey(year)
        lines = path.read_bytes().decode("cp1252").splitlines(keepends=True)
        path.write_bytes("".join(lines[:-1]).encode("cp1252"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from offshoring.synth import generate

    w = World(tmp_path_factory.mktemp("one_run"))
    generate(w.raw, firms=900, seed=5, years=range(2005, 2014), aida_format="csv")
    (w.raw / "truth.json").unlink()  # contract files: real mode, so deliveries can change
    shutil.move(w.survey("2013"), w.root / "survey_2013.csv")
    # an instance folder as an earlier version left it: the first run brings its file up to date
    w.home.mkdir()
    (w.home / "dagster.yaml").write_text(EARLIER_INSTANCE_FILE)
    return w


def _assets(mats: list[tuple[str, str | None]]) -> set[str]:
    return {a for a, _ in mats if a != "survey_returns"}


def _partitions(mats: list[tuple[str, str | None]]) -> list[str]:
    return sorted(p for a, p in mats if a == "survey_returns")


def test_first_run_is_one_run(world):
    proc = world.run()
    runs = world.new_runs()
    assert len(runs) == 1, [(r.job_name, r.tags) for r in runs]
    run = runs[0]
    assert run.job_name == "refresh_outputs"
    assert run.tags.get("offshoring/data") == "real"  # the UI's run list says which data
    assert (run.tags.get("dagster/asset_partition_range_start"),
            run.tags.get("dagster/asset_partition_range_end")) == ("2005", "2012")
    mats = world.materialized(runs)
    assert _partitions(mats) == YEARS  # one materialization per year, each its own partition
    assert _assets(mats) == world.every_asset() - {"survey_returns"}
    assert len(mats) == len(YEARS) + len(_assets(mats))  # every other asset once
    for year in YEARS:  # the per-year progress lines
        assert f"survey year {year}: " in proc.stdout
    # each year's materialization carries its own file's hash (what the delivery sensor reads)
    with instance_at(world.home) as instance:
        from orchestration.sensors import loaded_sha256
        from offshoring.readers.common import sha256_file

        assert loaded_sha256(instance) == {y: sha256_file(world.survey(y)) for y in YEARS}
        # the earlier version's unedited instance file was replaced, so the run used the
        # project's storage (orchestration/instance_storage.py)
        assert instance.get_ref().storage_data.class_name == "ProjectSqliteStorage"
    assert (world.home / "dagster.yaml").read_bytes() == (ROOT / "orchestration" / "instance" / "dagster.yaml").read_bytes()
    # the run's BLAS ran on one thread (not set by the caller), and the provenance says so
    prov = json.loads((world.root / "reports" / "table2.provenance.json").read_text())["provenance"]
    assert prov["blas"]["threads"] == 1 and prov["blas"]["libraries"], prov["blas"]
    assert prov["blas"]["env"]["OPENBLAS_NUM_THREADS"] == "1"


def test_unchanged_folder_materializes_nothing(world):
    proc = world.run()
    assert "Nothing changed since the last complete run" in proc.stdout
    assert world.new_runs() == []


#: what the no-op must not import: the estimators', the readers' (pandera) and Dagster's libraries
HEAVY_LIBRARIES = {"scipy", "statsmodels", "pandas", "pandera", "dagster"}


def test_unchanged_folder_imports_no_heavy_library(world):
    """The no-op decides (every pre-flight check included) without importing what only a run
    needs: the modules `python -X importtime` lists for the command, not its time."""
    proc = world.run(python_flags=("-X", "importtime"))
    assert "Nothing changed since the last complete run" in proc.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert {"offshoring.spec", "offshoring.pseudonym", "offshoring.runstate"} <= imported  # the command's list
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY_LIBRARIES)
    assert not heavy, heavy[:20]
    assert world.new_runs() == []


def test_new_year_is_one_run_of_its_partition_and_what_is_built_from_it(world):
    shutil.copy(world.root / "survey_2013.csv", world.survey("2013"))
    world.run()
    runs = world.new_runs()
    assert len(runs) == 1
    assert runs[0].tags.get("dagster/partition") == "2013"
    mats = world.materialized(runs)
    assert _partitions(mats) == ["2013"]
    assert _assets(mats) == world.below("survey_returns")
    assert not _assets(mats) & (REFERENCE_LOADS | FROM_REFERENCE_ONLY)  # nothing a new year does not change


def test_neighbouring_years_load_in_one_run(world):
    world.redeliver("2010")
    world.redeliver("2011")
    proc = world.run()
    runs = world.new_runs()
    assert len(runs) == 1
    assert (runs[0].tags.get("dagster/asset_partition_range_start"),
            runs[0].tags.get("dagster/asset_partition_range_end")) == ("2010", "2011")
    mats = world.materialized(runs)
    assert _partitions(mats) == ["2010", "2011"]
    assert _assets(mats) == world.below("survey_returns")
    assert "survey year 2009: loaded from the same file by this code version; skipped" in proc.stdout


def test_years_apart_load_in_one_run_per_block(world):
    world.redeliver("2006")
    world.redeliver("2012")
    world.run()
    runs = world.new_runs()
    assert [r.job_name for r in runs] == ["load_survey_year", "refresh_outputs"]
    assert [r.tags.get("dagster/partition") for r in runs] == ["2006", "2012"]
    mats = world.materialized(runs)
    assert _partitions(mats) == ["2006", "2012"]
    assert _assets(mats) == world.below("survey_returns")


def test_changed_reference_file_reloads_it_and_what_is_built_from_it(world):
    path = world.raw / "reference" / "llma.csv"
    text = path.read_bytes()
    ending = b"\r\n" if b"\r\n" in text else b"\n"
    lines = text.rstrip(b"\r\n").split(ending)
    path.write_bytes(ending.join([lines[0], *reversed(lines[1:])]) + ending)  # same rows, another order
    world.run()
    runs = world.new_runs()
    assert len(runs) == 1
    mats = world.materialized(runs)
    assert _partitions(mats) == []
    assert _assets(mats) == {"llma_map"} | world.below("llma_map")
    assert "municipality_xwalk" in _assets(mats) and "aida_offshoring" not in _assets(mats)


def test_changed_specification_reloads_nothing(world):
    (world.config / "panel.yaml").write_text("leave_one_out: false\n")
    proc = world.run()
    runs = world.new_runs()
    assert len(runs) == 1
    mats = world.materialized(runs)
    assert _partitions(mats) == []
    assert not (_assets(mats) & REFERENCE_LOADS)
    assert _assets(mats) == {"model_panel"} | world.below("model_panel")
    assert "panel.leave_one_out" in proc.stdout  # the part named as the reason


def _probit_file(world, **keys) -> None:
    """The user's probit_table2.yaml: the default's labels (one changed) and `keys`."""
    import yaml

    default = yaml.safe_load((ROOT / "config" / "probit_table2.yaml").read_text())
    labels = dict(default["labels"], district="Inside an industrial district (relabelled)")
    (world.config / "probit_table2.yaml").write_text(yaml.safe_dump({"labels": labels, **keys}))


def test_changed_report_label_rewrites_the_tables_only(world):
    _probit_file(world)
    world.run()
    runs = world.new_runs()
    assert len(runs) == 1
    mats = world.materialized(runs)
    assert _assets(mats) == {"table2", "table2_robustness", "report_index"}  # no panel, no fit
    assert "Inside an industrial district (relabelled)" in (world.root / "reports" / "table2.md").read_text()


def test_changed_probit_key_refits_the_probit_and_what_shows_it(world):
    _probit_file(world, quad_points=10)
    world.run()
    runs = world.new_runs()
    assert len(runs) == 1
    mats = world.materialized(runs)
    variants = {a for a in world.every_asset() if a.startswith("table2_variant_")}
    assert variants
    assert _assets(mats) == {"outsourcing_probit"} | variants | world.below("outsourcing_probit", *variants)
    assert not _assets(mats) & world.group("panel")
    assert not _assets(mats) & {"backshoring_cox", "table3", "table1"}


def test_changed_alert_setting_runs_nothing(world):
    (world.config / "alerts.yaml").write_text("ui_base_url: http://pipeline.example:3000\n")
    proc = world.run()
    assert "Nothing to load or refresh" in proc.stdout
    assert world.new_runs() == []
    proc = world.run()  # the new state was recorded
    assert "Nothing changed since the last complete run" in proc.stdout
    assert world.new_runs() == []


def test_reports_of_another_origin_are_not_up_to_date(world):
    """The demo's reports written into this run's folder (a shared OFFSHORING_REPORTS_DIR): the
    warehouse is up to date, the reports are not; the next run rewrites them all, as real."""
    path = world.root / "reports" / "table1.provenance.json"
    record = json.loads(path.read_text())
    record["provenance"]["data"] = "synthetic"
    path.write_text(json.dumps(record))
    # and an output only the demo wrote: no real run rewrites it, so it is removed
    extra = dict(record, output=dict(record["output"], name="demo_only", files=[{"file": "demo_only.md", "sha256": None}]))
    (world.root / "reports" / "demo_only.provenance.json").write_text(json.dumps(extra))
    (world.root / "reports" / "demo_only.md").write_text("synthetic\n")
    proc = world.run()
    assert "Nothing changed since the last complete run" not in proc.stdout
    assert "another origin's reports" in proc.stdout
    mats = world.materialized(world.new_runs())
    assert {"table1", "table2", "report_index"} <= _assets(mats)
    assert not _assets(mats) & world.group("raw")
    assert json.loads(path.read_text())["provenance"]["data"] == "real"
    assert not (world.root / "reports" / "demo_only.md").exists()
    assert not (world.root / "reports" / "demo_only.provenance.json").exists()
    assert "demo_only" not in (world.root / "reports" / "index.html").read_text()
    assert "Nothing changed since the last complete run" in world.run().stdout


def test_reports_not_as_the_last_run_left_them_are_written_again(world):
    """The no-op trusted a reports folder holding an index of the right origin: a table deleted
    since was never written again, and after a run into another folder the first one was "up
    to date" while its tables could show an older period. The run records the reports folder
    it wrote (every file's SHA-256); a folder not as recorded has its reports written again,
    nothing refitted or reloaded."""
    (world.root / "reports" / "table2.md").unlink()
    proc = world.run()
    assert "Nothing changed since the last complete run" not in proc.stdout
    assert "not as the last complete run left them" in proc.stdout
    mats = _assets(world.materialized(world.new_runs()))
    assert {"table2", "table1", "report_index"} <= mats
    assert not mats & (world.group("raw") | world.group("panel") | world.group("models"))
    assert (world.root / "reports" / "table2.md").exists()
    assert "Nothing changed since the last complete run" in world.run().stdout

    other = {**world.env, "OFFSHORING_REPORTS_DIR": str(world.root / "reports_b")}
    world.run(env=other)
    assert (world.root / "reports_b" / "table2.md").exists()
    world.new_runs()
    proc = world.run()  # back into the first folder: not what the last complete run wrote
    assert "Nothing changed since the last complete run" not in proc.stdout
    assert "table2" in _assets(world.materialized(world.new_runs()))
    assert "Nothing changed since the last complete run" in world.run().stdout


def test_a_threshold_that_changes_no_panel_row_keeps_the_fits_shown(world):
    """A ceiling for a year with no data: the thresholds differ, the panel does not, so no fit is
    redone; the fits are recorded as valid under the new settings, and the tables, which refuse
    a fit made under other model settings, are written (they refused on every run before)."""
    before = (world.root / "reports" / "table2.md").read_text()
    (world.config / "thresholds.yaml").write_text("turnover_ceiling:\n  by_year:\n    1999: 5164569\n")
    try:
        world.run()  # exit 0 asserted
        mats = world.materialized(world.new_runs())
        assert {"table2", "table3", "table2_robustness"} <= _assets(mats)
        assert (world.root / "reports" / "table2.md").read_text().split("Source")[0] == before.split("Source")[0]
    finally:
        (world.config / "thresholds.yaml").unlink()
    world.run()
    world.new_runs()


def test_a_state_without_spec_parts_counts_them_all_changed(world, monkeypatch):
    """A state recorded before the parts were: the same specification is still no change; another
    one is a change of every part (planned in-process, not run)."""
    from assets.resources import Folders, Study, Warehouse
    from offshoring import runstate, version
    from orchestration.definitions import build_definitions
    from orchestration.pipeline import plan_refresh

    state = runstate.last_state(world.root / "w.duckdb")
    assert state is not None and "spec_parts" in state
    monkeypatch.setattr(version, "code_version", lambda: state["code_version"])
    defs = build_definitions({
        "warehouse": Warehouse(database=str(world.root / "w.duckdb")),
        "folders": Folders(raw_dir=str(world.raw), reports_dir=str(world.root / "reports"), synthetic=False),
        "study": Study(config_dir=str(world.config))})
    years = sorted(p.stem.split("_")[-1] for p in (world.raw / "survey").glob("survey_*.csv"))
    built = world.every_asset() - REFERENCE_LOADS - {"survey_returns"}
    assert plan_refresh(defs, world.raw, years).downstream == []
    old = {k: v for k, v in state.items() if k != "spec_parts"}
    monkeypatch.setattr(runstate, "last_state", lambda db: old)
    assert plan_refresh(defs, world.raw, years).downstream == []
    old["spec_sha256"] = "0" * 64
    plan = plan_refresh(defs, world.raw, years)
    assert plan.load == [] and set(plan.downstream) == built


def test_every_part_of_the_specification_has_its_readers():
    """`SPEC_READERS` names each part of the specification, and every part an asset reads
    (`study.spec.<part>` in assets/*.py); a part it does not name would refresh everything."""
    import re

    from offshoring.spec import load_study_spec
    from orchestration.pipeline import SPEC_READERS

    parts = set(load_study_spec(None).as_dict())
    assert parts <= set(SPEC_READERS)
    read = {m for f in (ROOT / "assets").glob("*.py")
            for m in re.findall(r"study\.spec\.(\w+)", f.read_text())} - {"sha256", "as_dict"}
    assert read and read <= parts, read - parts


def test_a_refused_year_stops_the_run_there(tmp_path, monkeypatch, capsys):
    """In one run over several years, a year refused in the run (past any pre-flight check:
    the run is started without it) leaves every year of the run as it was: each year is
    checked before any is written. The refused year is logged as rejected, the CLI's message
    names it, and nothing built from the survey runs."""
    import duckdb

    from offshoring.synth import generate
    from orchestration.definitions import build_definitions
    from orchestration.pipeline import run_everything
    from assets.resources import Folders, Study, Warehouse

    raw = tmp_path / "raw"
    generate(raw, firms=400, seed=7, years=range(2005, 2011))
    as_real_files(raw)  # without the generator's marks: run as real files with a key
    path = raw / "survey" / "survey_2008.csv"
    lines = path.read_bytes().decode("cp1252").splitlines(keepends=True)
    lines[3] = lines[3][: len(lines[3]) // 2] + "\n"  # a row cut in the middle
    path.write_bytes("".join(lines).encode("cp1252"))
    defs = build_definitions({
        "warehouse": Warehouse(database=str(tmp_path / "w.duckdb")),
        # not synthetic: the generator's files, one changed, are run as real files with a key
        "folders": Folders(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"), synthetic=False),
        "study": Study(config_dir=str(small_world_config(tmp_path / "config")))})
    monkeypatch.setenv("OFFSHORING_PSEUDONYM_KEY", KEY)
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        assert not run_everything(raw, instance=instance, defs=defs)
        err = capsys.readouterr().err
        assert "Survey year 2008 was not loaded" in err and "no survey year of the run was replaced" in err
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.FAILURE
        mats = [(r.dagster_event.event_specific_data.materialization.asset_key.to_user_string(),
                 r.dagster_event.event_specific_data.materialization.partition)
                for r in instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)]
    assert _partitions(mats) == []
    assert not _assets(mats) & world_below_survey(defs)
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        years = [r[0] for r in con.execute("SELECT DISTINCT year FROM raw.survey_returns ORDER BY 1").fetchall()]
        logged = con.execute("SELECT partition, status FROM raw.load_log WHERE table_name = "
                             "'survey_returns' ORDER BY 1").fetchall()
    finally:
        con.close()
    assert years == [] and logged == [("2008", "rejected")]


def world_below_survey(defs) -> set[str]:
    keys = dg.AssetSelection.assets("survey_returns").downstream().resolve(defs.resolve_asset_graph())
    return {k.to_user_string() for k in keys} - {"survey_returns"}
