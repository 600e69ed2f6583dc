"""The raw loads launched from Dagster (the UI, the daemon's sensors) refuse what the command
line's pre-flight refuses, and read what it checked.

* the ISTAT list: a user's ``reference/Elenco-comuni-italiani.csv`` is loaded (not the bundled
  list), and two override files at once are refused in the pre-flight's words;
* two candidates for one input (``aida_firms.xlsx`` and ``aida_firms.csv``) are refused, never
  one of them picked;
* a run over several survey years reads, validates and gates every year before it writes any:
  a refused year leaves every year of the run as it was.

Each materializes the assets as the UI does (a partition range for several years), on small
hand-written or generated folders, and compares the warehouse before and after.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets import raw as raw_assets
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG, SURVEY_YEARS
from assets.resources import Folders, Study, Warehouse
from fixtures_raw import survey_rows, write_survey_csv
from offshoring import geo
from offshoring.readers.layout import discover_raw_files
from offshoring.validation import ContractError
from test_gate_battery import table_digests

KEY = "load-gates-key-0123456789abcdef-not-secret"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OFFSHORING_PSEUDONYM_KEY", KEY)


def _resources(root: Path, raw: Path, config_dir: Path | None = None) -> dict:
    return {"warehouse": Warehouse(database=str(root / "w.duckdb")),
            "folders": Folders(raw_dir=str(raw), reports_dir=str(root / "reports")),
            "study": Study(config_dir=str(config_dir)) if config_dir else Study()}


def _materialize(assets: list, root: Path, raw: Path, years: list[str] | None = None,
                 instance: dg.DagsterInstance | None = None,
                 config_dir: Path | None = None) -> dg.ExecuteInProcessResult:
    """As the UI launches it: one run, a partition range for several survey years."""
    instance = instance or dg.DagsterInstance.ephemeral()
    tags = {}
    if years:
        instance.add_dynamic_partitions(SURVEY_YEARS, years)
        tags = {RANGE_START_TAG: years[0], RANGE_END_TAG: years[-1]}
    return dg.materialize(assets, instance=instance, tags=tags, raise_on_error=False,
                          resources=_resources(root, raw, config_dir))


def _failure(result: dg.ExecuteInProcessResult) -> str:
    events = result.get_step_failure_events()
    assert events, "the run did not fail"
    return events[0].step_failure_data.user_failure_data.description


def _pre_flight_refusal(raw: Path) -> str:
    with pytest.raises(ContractError) as info:
        discover_raw_files(raw)
    return str(info.value)


def _user_list(raw: Path, name: str, n: int) -> Path:
    """A user's ISTAT list: the bundled list's header and its first `n` municipalities."""
    lines = geo.bundled_list_path().read_bytes().splitlines(keepends=True)
    path = raw / "reference" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines[: n + 1]))
    return path


# --- the ISTAT list ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Elenco-comuni-italiani.csv", "municipalities.csv"])
def test_a_users_istat_list_is_the_one_loaded(tmp_path, name):
    raw = tmp_path / "raw"
    user = _user_list(raw, name, 100)
    assert raw_assets.reference_input(raw, "municipalities") == user  # what decides "up to date"
    assert discover_raw_files(raw).municipalities == user  # what the pre-flight checks
    result = _materialize([raw_assets.municipalities], tmp_path, raw)
    assert result.success
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM raw.municipalities").fetchall()[0][0]
        files = con.execute("SELECT file FROM raw.load_log WHERE table_name = 'municipalities'").fetchall()
    finally:
        con.close()
    assert files == [(str(user),)]
    assert 0 < n <= 100  # the user's list, not the bundled one (~7,900 municipalities)


def test_two_istat_lists_are_refused_as_the_pre_flight_refuses_them(tmp_path):
    raw = tmp_path / "raw"
    (raw / "reference").mkdir(parents=True)
    assert _materialize([raw_assets.municipalities], tmp_path, raw).success  # the bundled list
    before = table_digests(tmp_path / "w.duckdb")
    _user_list(raw, "municipalities.csv", 50)
    _user_list(raw, "Elenco-comuni-italiani.csv", 100)
    result = _materialize([raw_assets.municipalities], tmp_path, raw)
    assert not result.success
    message = _failure(result)
    assert message == _pre_flight_refusal(raw)
    assert "municipalities.csv" in message and "Elenco-comuni-italiani.csv" in message and "keep one" in message
    assert raw_assets.reference_input(raw, "municipalities") is None  # not "up to date" either
    assert table_digests(tmp_path / "w.duckdb") == before


# --- the generator's files in real mode ------------------------------------------------------------


def test_generated_files_without_truth_are_refused_from_dagster(tmp_path):
    """From the UI or a sensor as from the command line: the generator's workbook, its
    truth.json deleted, is still synthetic, and a run for real data loads none of it."""
    from offshoring.synth import generate

    raw = tmp_path / "raw"
    generate(raw, firms=300, seed=4, years=range(2009, 2011))  # AIDA as a workbook: its author says so
    (raw / "truth.json").unlink()
    result = _materialize([raw_assets.aida_firm_years, raw_assets.llma_map], tmp_path, raw)
    assert not result.success
    text = _failure(result)
    assert "written by the synthetic-data generator" in text and "aida_firms.xlsx" in text
    assert not (tmp_path / "w.duckdb").exists() or "aida_firm_years" not in str(
        table_digests(tmp_path / "w.duckdb")[0])


# --- two candidates for one input ----------------------------------------------------------------


def test_aida_xlsx_and_csv_together_are_refused_from_dagster(tmp_path):
    import polars as pl

    from offshoring.synth import generate

    raw = tmp_path / "raw"
    generate(raw, firms=300, seed=4, years=range(2009, 2011), aida_format="csv")
    (raw / "truth.json").unlink()
    assert _materialize([raw_assets.aida_firm_years], tmp_path, raw).success
    before = table_digests(tmp_path / "w.duckdb")
    # the same export saved as a workbook too: which one counts would be a guess
    frame = pl.read_csv(raw / "aida" / "aida_firms.csv", separator=";", infer_schema=False)
    frame.write_excel(raw / "aida" / "aida_firms.xlsx")
    result = _materialize([raw_assets.aida_firm_years], tmp_path, raw)
    assert not result.success
    message = _failure(result)
    assert message == _pre_flight_refusal(raw)
    assert "aida_firms.xlsx" in message and "aida_firms.csv" in message and "keep one" in message
    assert raw_assets.reference_input(raw, "aida_firm_years") is None
    assert table_digests(tmp_path / "w.duckdb") == before


# --- several survey years in one run ----------------------------------------------------------


def _survey_world(tmp_path: Path, sizes: dict[int, int], seed: int = 1) -> tuple[Path, dg.DagsterInstance]:
    """A warehouse holding the survey years `sizes` (returns per year), loaded in one run."""
    raw = tmp_path / "raw"
    for year, n in sizes.items():
        write_survey_csv(raw / "survey" / f"survey_{year}.csv", survey_rows(n, year, seed=seed))
    instance = dg.DagsterInstance.ephemeral()
    years = [str(y) for y in sorted(sizes)]
    assert _materialize([raw_assets.survey_returns], tmp_path, raw, years, instance).success
    return raw, instance


def _by_year(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT year, count(*), sum(turnover) FROM raw.survey_returns "
                           "GROUP BY year ORDER BY year").fetchall()
    finally:
        con.close()


def _materialized(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """The survey partitions the run recorded as materialized (in the instance, as the UI shows)."""
    return [r.event_log_entry.dagster_event.event_specific_data.materialization.partition
            for r in instance.get_records_for_run(
                result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records]


def test_a_refused_year_leaves_every_year_of_the_run_as_it_was(tmp_path):
    raw, instance = _survey_world(tmp_path, {2009: 20, 2010: 20, 2011: 20})
    before = table_digests(tmp_path / "w.duckdb")
    # a new, valid 2009 and 2011; a 2010 that breaks the contract (row 5, turnover)
    write_survey_csv(raw / "survey" / "survey_2009.csv", survey_rows(21, 2009, seed=2))
    write_survey_csv(raw / "survey" / "survey_2010.csv", survey_rows(20, 2010, seed=2),
                     raw_cells={(4, "turnover"): "abc"})
    write_survey_csv(raw / "survey" / "survey_2011.csv", survey_rows(21, 2011, seed=2))
    result = _materialize([raw_assets.survey_returns], tmp_path, raw, ["2009", "2010", "2011"], instance)
    assert not result.success
    message = _failure(result)
    assert "survey_2010.csv" in message and "turnover" in message
    assert "No survey year of this run was replaced" in message
    assert table_digests(tmp_path / "w.duckdb") == before
    assert _materialized(instance, result) == []
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:  # the refusal is on record
        assert con.execute("SELECT partition FROM raw.load_log WHERE status = 'rejected'").fetchall() == [("2010",)]
    finally:
        con.close()
    # with the delivery fixed the three years load in one run
    write_survey_csv(raw / "survey" / "survey_2010.csv", survey_rows(21, 2010, seed=2))
    assert _materialize([raw_assets.survey_returns], tmp_path, raw, ["2009", "2010", "2011"], instance).success
    assert [r[:2] for r in _by_year(tmp_path / "w.duckdb")] == [(2009, 21), (2010, 21), (2011, 21)]


def test_the_delivery_gate_counts_the_years_written_before_in_the_run(tmp_path):
    """2010 is new: against the warehouse (2009: 20 returns) its 30 returns pass; once the run
    has replaced 2009 with 100 returns they are below half of their neighbour's, and the write
    would refuse it. Refused before 2009 is replaced."""
    raw, instance = _survey_world(tmp_path, {2009: 20})
    before = table_digests(tmp_path / "w.duckdb")
    write_survey_csv(raw / "survey" / "survey_2009.csv", survey_rows(100, 2009, seed=2))
    write_survey_csv(raw / "survey" / "survey_2010.csv", survey_rows(30, 2010, seed=2))
    result = _materialize([raw_assets.survey_returns], tmp_path, raw, ["2009", "2010"], instance)
    assert not result.success
    message = _failure(result)
    assert "survey_2010.csv" in message and "smaller_delivery" in message and "2009" in message
    assert table_digests(tmp_path / "w.duckdb") == before


def test_years_beyond_the_memory_budget_are_read_again(tmp_path, monkeypatch):
    held, _ = _survey_world(tmp_path / "held", {2009: 20, 2010: 25, 2011: 30})
    monkeypatch.setattr(raw_assets, "HOLD_VALIDATED_BYTES", 0)  # no year held: each read twice
    reread, _ = _survey_world(tmp_path / "reread", {2009: 20, 2010: 25, 2011: 30})
    assert _by_year(tmp_path / "held" / "w.duckdb") == _by_year(tmp_path / "reread" / "w.duckdb")
    assert [r[1] for r in _by_year(tmp_path / "reread" / "w.duckdb")] == [20, 25, 30]


def test_a_file_replaced_between_its_check_and_its_write_is_refused(tmp_path, monkeypatch):
    raw, instance = _survey_world(tmp_path, {2009: 20, 2010: 20})
    write_survey_csv(raw / "survey" / "survey_2009.csv", survey_rows(21, 2009, seed=2))
    write_survey_csv(raw / "survey" / "survey_2010.csv", survey_rows(21, 2010, seed=2))
    monkeypatch.setattr(raw_assets, "HOLD_VALIDATED_BYTES", 0)
    check = raw_assets._check_years

    def check_then_replace(*args, **kwargs):
        out = check(*args, **kwargs)
        write_survey_csv(raw / "survey" / "survey_2010.csv", survey_rows(22, 2010, seed=3))
        return out

    monkeypatch.setattr(raw_assets, "_check_years", check_then_replace)
    result = _materialize([raw_assets.survey_returns], tmp_path, raw, ["2009", "2010"], instance)
    assert not result.success
    assert "survey_2010.csv changed while this run was loading it" in _failure(result)
    # 2009 (checked, unchanged) is loaded and recorded as such; 2010 is as it was
    assert [r[:2] for r in _by_year(tmp_path / "w.duckdb")] == [(2009, 21), (2010, 20)]
    assert _materialized(instance, result) == ["2009"]


# --- the survey's checks, in a run over several years ---------------------------------------


def _checks(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dict]:
    """(check, year) -> passed, description and metadata, of every check evaluation the run
    recorded (the earlier years' as events of their own, the last year's as the step's outputs)."""
    out = {}
    for rec in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        e = rec.dagster_event.event_specific_data
        meta = {k: getattr(m, "value", m) for k, m in e.metadata.items()}
        key = (e.check_name, str(meta["partition"]))
        assert key not in out, key  # each year's check evaluated once
        out[key] = {"passed": e.passed, "description": e.description, "metadata": meta}
    return out


def _in_thousands(rows: list[dict]) -> list[dict]:
    return [{**r, **{c: round(r[c] / 1000, 3) for c in ("turnover", "value_added", "wage_costs")}} for r in rows]


def test_each_year_of_a_run_is_checked_against_all_the_other_years(tmp_path):
    """The usual first load (every year in one run), with the first year's delivery in thousands
    of EUR: that year is the one the scale check blames, compared with the years written after
    it in the run; the clean years pass. Checked one by one right after each write, 2005 had
    nothing to compare with and passed, and the clean 2006 was blamed."""
    raw = tmp_path / "raw"
    write_survey_csv(raw / "survey" / "survey_2005.csv", _in_thousands(survey_rows(30, 2005)))
    for year in (2006, 2007):
        write_survey_csv(raw / "survey" / f"survey_{year}.csv", survey_rows(30, year))
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize([raw_assets.survey_returns], tmp_path, raw, ["2005", "2006", "2007"], instance)
    assert result.success
    checks = _checks(instance, result)
    bad = checks[("amounts_on_usual_scale", "2005")]
    assert not bad["passed"], bad["description"]
    assert "turnover" in bad["description"] and "wage_costs" in bad["description"]
    assert bad["metadata"]["compared_with_years"] == [2006, 2007]
    for year in ("2006", "2007"):
        clean = checks[("amounts_on_usual_scale", year)]
        assert clean["passed"], clean["description"]
        assert clean["metadata"]["compared_with_years"] == [y for y in (2005, 2006, 2007) if str(y) != year]
    # every check of every year recorded, once
    names = {spec.name for spec in raw_assets.survey_returns.check_specs}
    assert set(checks) == {(n, y) for n in names for y in ("2005", "2006", "2007")}


def test_a_year_alone_says_its_comparisons_were_not_made(tmp_path):
    """With one survey year in the warehouse the comparisons pass (a Dagster check has no
    'skipped' result) and say plainly they were not made."""
    raw = tmp_path / "raw"
    write_survey_csv(raw / "survey" / "survey_2009.csv", survey_rows(20, 2009))
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize([raw_assets.survey_returns], tmp_path, raw, ["2009"], instance)
    assert result.success
    checks = _checks(instance, result)
    for name in ("amounts_on_usual_scale", "row_count_vs_previous"):
        res = checks[(name, "2009")]
        assert res["passed"] and "NOT checked" in res["description"], res
        assert res["metadata"]["checked"] is False
    ceiling = checks[("turnover_above_ceiling", "2009")]  # its absolute bound is checked
    assert ceiling["passed"] and "NOT compared with other years" in ceiling["description"]
    assert ceiling["metadata"]["compared_with_other_years"] is False


def test_the_row_count_warning_reads_its_ratio_from_the_specification(tmp_path):
    """A user's delivery gate asks for 90% of the neighbouring years; 2011 (55% of 2010) is
    accepted past the gate and the row-count warning fires at the same bar, its ratio shown."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "thresholds.yaml").write_text("delivery_gate:\n  min_share_of_neighbours: 0.9\n"
                                         "  accept_smaller: [2011]\n")
    raw = tmp_path / "raw"
    write_survey_csv(raw / "survey" / "survey_2010.csv", survey_rows(40, 2010))
    write_survey_csv(raw / "survey" / "survey_2011.csv", survey_rows(22, 2011))
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize([raw_assets.survey_returns], tmp_path, raw, ["2010", "2011"], instance, cfg)
    assert result.success
    res = _checks(instance, result)[("row_count_vs_previous", "2011")]
    assert not res["passed"], res["description"]
    assert res["metadata"]["min_ratio"] == 0.9 and res["metadata"]["ratio"] == 0.55
    assert "90%" in res["description"] and "55%" in res["description"]


# --- the column map (the command line's pre-flight; through the CLI: tests/test_gate_battery.py) --


def test_the_column_map_counts_as_changed_when_new_changed_or_removed(tmp_path):
    from offshoring import runstate
    from offshoring.inputs import column_map_changed
    from offshoring.readers.layout import sha256_file

    raw, db = tmp_path / "raw", tmp_path / "w.duckdb"
    raw.mkdir()
    cmap = raw / "column_map.yaml"
    assert column_map_changed(raw, db)  # no complete run on record: which map was read is unknown
    runstate.record_state(db, {"files": {}})
    assert not column_map_changed(raw, db)  # none then, none now
    cmap.write_text("survey:\n  columns:\n    FATTURATO: turnover\n")
    assert column_map_changed(raw, db)  # new
    runstate.record_state(db, {"files": {"column_map.yaml": sha256_file(cmap)}})
    assert not column_map_changed(raw, db)  # the same
    cmap.write_text("survey:\n  columns:\n    RICAVI: turnover\n")
    assert column_map_changed(raw, db)  # changed
    cmap.unlink()
    assert column_map_changed(raw, db)  # removed


def test_a_map_code_the_loaded_list_lacks_stops_the_crosswalk(tmp_path, _key):
    """From the UI (no pre-flight): the LLMA map loaded against the bundled list, then a user's
    shorter list loaded: the crosswalk refuses to build (its firms would get no area), naming
    the cause, and the geography is not rebuilt."""
    from assets.geography import municipality_xwalk
    from fixtures_raw import llma_rows, write_csv

    raw = tmp_path / "raw"
    write_csv(raw / "reference" / "llma.csv", llma_rows())
    ok = _materialize([raw_assets.municipalities, raw_assets.llma_map, municipality_xwalk], tmp_path, raw)
    assert ok.success
    before = table_digests(tmp_path / "w.duckdb")[0]["geography.municipality_xwalk"]
    _user_list(raw, "Elenco-comuni-italiani.csv", 60)  # lacks most of the map's municipalities
    result = _materialize([raw_assets.municipalities, municipality_xwalk], tmp_path, raw)
    assert not result.success
    assert "the municipality list loaded now does not have" in _failure(result)
    assert table_digests(tmp_path / "w.duckdb")[0]["geography.municipality_xwalk"] == before


# --- a delivery taken out of the folder ----------------------------------------------------------


def test_a_delivery_taken_out_of_the_folder_is_refused_by_the_panel_from_dagster(pipeline_run, tmp_path):
    """The command line refuses a warehouse holding a survey year whose file is gone; from the
    UI or a sensor the panel kept the year in the panel, the models and the tables while the
    provenance listed only the files present. The panel asset refuses it in the same words, and
    nothing is replaced."""
    import shutil

    from assets import panel as panel_assets
    from offshoring.readers.layout import discover_survey_files

    raw, db = tmp_path / "raw", tmp_path / "w.duckdb"
    shutil.copytree(pipeline_run.raw, raw)
    shutil.copy(pipeline_run.db, db)
    before = table_digests(db)
    files = discover_survey_files(raw)
    year = min(files)
    files[year].unlink()
    resources = {"warehouse": Warehouse(database=str(db)),
                 "folders": Folders(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"), synthetic=True),
                 "study": Study()}
    result = dg.materialize([panel_assets.firm_years], instance=dg.DagsterInstance.ephemeral(),
                            resources=resources, raise_on_error=False)
    assert not result.success
    text = _failure(result)
    assert text.startswith(f"The warehouse {db} holds survey year {year}, whose delivery is no longer in "
                           f"{raw / 'survey'}"), text
    assert "Put the file back" in text and "OFFSHORING_DB" in text
    assert table_digests(db) == before
    # the file back: the panel builds
    shutil.copy(pipeline_run.raw / "survey" / files[year].name, files[year])
    assert dg.materialize([panel_assets.firm_years], instance=dg.DagsterInstance.ephemeral(),
                          resources=resources, raise_on_error=False).success
