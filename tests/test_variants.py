"""Robustness as assets: variant files, their fits, the robustness tables, through the CLI.

* the variant files are checked like the study specification (file, key, nearest key);
* a variant's own panel is built by the baseline's code in a scratch database: with the
  baseline's settings it is the baseline's panel, and the warehouse is never written;
* the default run writes both robustness tables and both specification curves, and the
  baseline column equals Table 2 / Table 3 exactly;
* a user's overlay file adds a column at the next `offshoring run` and refits nothing else.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from offshoring.spec import SpecError, load_study_spec
from offshoring.variants import fit_variant, table_hash

ROOT = Path(__file__).resolve().parents[1]
CLI = [str(Path(sys.executable).parent / "offshoring")]


def _user_variant(folder: Path, table: str, name: str, text: str) -> Path:
    d = folder / "variants" / table
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the files


def test_shipped_variants_load_baseline_first():
    spec = load_study_spec(None)
    t2 = [v.name for v in spec.variants["table2"]]
    t3 = [v.name for v in spec.variants["table3"]]
    assert t2[0] == "baseline" and t3[0] == "baseline"
    for name in ("ceiling_7_5m", "region_dummies", "logit", "quad_24", "oim_errors",
                 "years_2007_2012", "district_list"):
        assert name in t2
    assert {"grouped_time", "firm_spells"} <= set(t3)
    by = {v.name: v for v in spec.variants["table2"]}
    assert by["baseline"].main_fit == "outsourcing_probit"
    assert by["logit"].model_spec.link == "logit" and spec.probit.link == "probit"
    assert by["quad_24"].model_spec.quad_points == 24
    assert by["oim_errors"].model_spec.cov_type == "oim"
    assert by["ceiling_7_5m"].rebuilds_panel and by["ceiling_7_5m"].thresholds.ceiling(2005) == 7_500_000
    assert spec.thresholds.ceiling(2005) < 7_500_000  # the baseline's is untouched
    assert "region" in by["region_dummies"].model_spec.dummies
    t3v = {v.name: v for v in spec.variants["table3"]}
    assert t3v["grouped_time"].main_fit == "backshoring_grouped_ph"
    assert t3v["firm_spells"].model_spec.destinations == ("any",) or \
        list(t3v["firm_spells"].model_spec.destinations) == ["any"]


def test_unknown_key_is_refused_naming_file_and_nearest_key(tmp_path):
    path = _user_variant(tmp_path, "table2", "mine", "descripton: x\n")
    with pytest.raises(SpecError) as exc:
        load_study_spec(tmp_path)
    assert str(path) in str(exc.value) and "did you mean 'description'" in str(exc.value)


def test_unknown_model_key_is_refused(tmp_path):
    path = _user_variant(tmp_path, "table2", "mine", "description: x\nmodel:\n  lnik: logit\n")
    with pytest.raises(SpecError) as exc:
        load_study_spec(tmp_path)
    assert str(path) in str(exc.value) and "model.lnik" in str(exc.value) and "'link'" in str(exc.value)


def test_bad_values_are_refused(tmp_path):
    _user_variant(tmp_path, "table2", "mine", "description: x\nestimator: cox\n")
    with pytest.raises(SpecError, match="table2 is fitted with probit"):
        load_study_spec(tmp_path)
    shutil.rmtree(tmp_path / "variants")
    _user_variant(tmp_path, "table2", "mine", "description: x\ndistrict_list: /etc/passwd\n")
    with pytest.raises(SpecError, match="path inside the raw folder"):
        load_study_spec(tmp_path)
    shutil.rmtree(tmp_path / "variants")
    _user_variant(tmp_path, "table2", "Bad-Name", "description: x\n")
    with pytest.raises(SpecError, match="lower-case letters"):
        load_study_spec(tmp_path)
    shutil.rmtree(tmp_path / "variants")
    _user_variant(tmp_path, "table2", "mine", "description: x\nthresholds:\n  turnover_ceiling:\n    default: -1\n")
    with pytest.raises(SpecError, match="turnover_ceiling"):
        load_study_spec(tmp_path)
    shutil.rmtree(tmp_path / "variants")
    # read strictly, as every other settings file ('no' was read as false, "3" as 3)
    for text, key in (('enabled: "no"', "enabled"), ("enabled: 0", "enabled"), ('order: "3"', "order")):
        path = _user_variant(tmp_path, "table2", "mine", f"description: x\n{text}\n")
        with pytest.raises(SpecError) as exc:
            load_study_spec(tmp_path)
        assert str(path) in str(exc.value) and key in str(exc.value), str(exc.value)
        shutil.rmtree(tmp_path / "variants")
    (tmp_path / "variants" / "table9").mkdir(parents=True)
    with pytest.raises(SpecError, match="not a table with variants"):
        load_study_spec(tmp_path)


def test_user_file_replaces_or_disables_a_shipped_variant(tmp_path):
    _user_variant(tmp_path, "table2", "logit", "description: mine\nenabled: false\n")
    _user_variant(tmp_path, "table2", "quad_24", "description: thirty points\nmodel:\n  quad_points: 30\n")
    spec = load_study_spec(tmp_path)
    by = {v.name: v for v in spec.variants["table2"]}
    assert "logit" not in by
    assert by["quad_24"].model_spec.quad_points == 30 and by["quad_24"].description == "thirty points"
    assert spec.sha256 != load_study_spec(None).sha256  # the variants are part of the spec


def test_two_baselines_are_refused(tmp_path):
    _user_variant(tmp_path, "table2", "again", "description: the baseline again\n")
    with pytest.raises(SpecError, match="more than one variant is the baseline"):
        load_study_spec(tmp_path)


def _auditor_config(folder: Path) -> Path:
    """The user's baseline: OIM errors and 24 points for the probit, Breslow ties, other ceilings."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probit_table2.yaml").write_text("years:\n  first: 2008\n  last: 2011\ncov_type: oim\n"
                                               "quad_points: 24\n")
    (folder / "cox_table3.yaml").write_text("ties: breslow\n")
    (folder / "thresholds.yaml").write_text("turnover_ceiling:\n  default: 6000000\n"
                                            "  by_year: {2005: 4000000, 2006: 4000000}\n")
    return folder


def test_the_ceiling_variant_is_7_5_million_in_every_year_whatever_the_users_years(tmp_path):
    """The overlay merges key by key: a user's per-year ceiling (3 million in 2008) stayed in
    the variant named "7.5 million EUR in every year", and its footnote said so in brackets."""
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "thresholds.yaml").write_text("turnover_ceiling:\n  by_year: {2008: 3000000}\n")
    spec = load_study_spec(folder)
    assert spec.thresholds.ceiling(2008) == 3_000_000
    v = next(v for v in spec.variants["table2"] if v.name == "ceiling_7_5m")
    assert [v.thresholds.ceiling(y) for y in (2005, 2006, 2008, 2012)] == [7_500_000] * 4
    assert v.description.startswith("Turnover ceiling of 7.5 million EUR in every year (baseline:")
    assert "3 million EUR in 2008" in v.description  # the baseline's, in the baseline's bracket


def test_descriptions_name_the_current_baselines_settings(tmp_path):
    shipped = {t: {v.name: v.description for v in vs} for t, vs in load_study_spec(None).variants.items()}
    assert "(baseline: clustered by firm)" in shipped["table2"]["oim_errors"]
    assert "(baseline: 12-point adaptive" in shipped["table2"]["quad_24"]
    assert "(baseline: 7.5 million EUR (5.16 million EUR in 2005-2006))" in shipped["table2"]["ceiling_7_5m"]
    assert "Efron ties" in shipped["table3"]["baseline"]
    spec = load_study_spec(_auditor_config(tmp_path / "cfg"))
    d = {t: {v.name: v.description for v in vs} for t, vs in spec.variants.items()}
    assert d["table2"]["oim_errors"] == ("Standard errors: observed information (OIM) "
                                         "(baseline: observed information (OIM)).")
    assert "(baseline: 24-point adaptive" in d["table2"]["quad_24"]
    assert "(baseline: 6 million EUR (4 million EUR in 2005-2006))" in d["table2"]["ceiling_7_5m"]
    assert d["table2"]["years_2007_2012"] == "Estimation years pinned to 2007-2012 (baseline: 2008-2011)."
    assert "Breslow ties" in d["table3"]["baseline"] and "Efron" not in d["table3"]["baseline"]
    for text in (*d["table2"].values(), *d["table3"].values()):
        assert "{" not in text and "in the baseline)" not in text
    _user_variant(tmp_path / "bad", "table2", "mine", "description: \"{baseline.quadpoints}\"\nmodel:\n  link: logit\n")
    with pytest.raises(SpecError, match=r"unknown placeholder \{baseline.quadpoints\}.*baseline.quad_points"):
        load_study_spec(tmp_path / "bad")


def test_a_variant_equal_to_the_baseline_is_known_and_not_fitted(tmp_path):
    import dagster as dg

    from assets.resources import Folders, Study, Warehouse
    from assets.robustness import build_assets

    shipped = {v.name: v for v in load_study_spec(None).variants["table2"]}
    assert not shipped["oim_errors"].same_fit_as(shipped["baseline"])
    config = _auditor_config(tmp_path / "cfg")
    spec = load_study_spec(config)
    by = {v.name: v for v in spec.variants["table2"]}
    assert by["oim_errors"].same_fit_as(by["baseline"]) and by["quad_24"].same_fit_as(by["baseline"])
    assert not by["logit"].same_fit_as(by["baseline"]) and not by["ceiling_7_5m"].same_fit_as(by["baseline"])
    # a label is the report's: a variant changing only labels is still the baseline's fit
    _user_variant(config, "table2", "relabelled", "description: x\nmodel:\n  labels: {y_lag: Lagged}\n")
    assert {v.name: v for v in load_study_spec(config).variants["table2"]}["relabelled"].same_fit_as(by["baseline"])
    asset = next(a for a in build_assets(spec.variants) if a.key.to_user_string() == "table2_variant_oim_errors")
    (tmp_path / "raw").mkdir()
    result = dg.materialize([asset], resources={
        "warehouse": Warehouse(database=str(tmp_path / "none.duckdb")),
        "folders": Folders(raw_dir=str(tmp_path / "raw"), reports_dir=str(tmp_path / "reports"), synthetic=False),
        "study": Study(config_dir=str(config))})
    meta = result.asset_materializations_for_node("table2_variant_oim_errors")[0].metadata
    assert meta["identical_to_baseline"].value is True and meta["fitted"].value is False
    assert not (tmp_path / "none.duckdb").exists()  # nothing was read or fitted


def test_model_asset_descriptions_assert_no_setting():
    from assets import models

    for asset in (models.outsourcing_probit, models.backshoring_cox, models.backshoring_grouped_ph):
        text = " ".join(asset.descriptions_by_key.values()).lower()
        for fixed in ("efron", "breslow", "firm-clustered", "clustered", "12 points", "oim"):
            assert fixed not in text, (asset.key, fixed)


# --------------------------------------------------------------------------- the fits


@pytest.fixture()
def warehouse_copy(pipeline_run, tmp_path):
    assert pipeline_run.ok
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(pipeline_run.db, db)
    return db


def test_scratch_panel_with_baseline_settings_is_the_baseline_panel(pipeline_run, warehouse_copy, tmp_path):
    """The variant path builds the panel with the baseline's code: given the baseline's
    thresholds it reproduces panel.model_panel row for row, and the fit equals the
    baseline's; the warehouse's tables are not written and the scratch file is removed."""
    (tmp_path / "cfg").mkdir()
    _user_variant(tmp_path / "cfg", "table2", "same_panel",
                  "description: the baseline's ceilings, restated\n"
                  "thresholds:\n  turnover_ceiling:\n    default: 7500000\n")
    spec = load_study_spec(tmp_path / "cfg")
    variant = {v.name: v for v in spec.variants["table2"]}["same_panel"]
    assert variant.rebuilds_panel and variant.main_fit is None
    scratch = tmp_path / "scratch"
    con = duckdb.connect(str(warehouse_copy))
    try:
        tables = ["panel.model_panel", "panel.firm_years", "geography.province_spillovers",
                  "panel.aida_offshoring", "panel.spell_years"]
        before = {t: table_hash(con, t) for t in tables}
        from offshoring import variants as vmod

        seen = {}
        real_fit_on = vmod._fit_on

        def spy(con_, v):
            seen["model_panel"] = table_hash(con_, "panel.model_panel")
            seen["catalog"] = con_.execute("SELECT current_database()").fetchall()[0][0]
            return real_fit_on(con_, v)

        vmod._fit_on = spy
        try:
            fit = fit_variant(con, variant, pipeline_run.raw, spec.districts, scratch)
        finally:
            vmod._fit_on = real_fit_on
        assert seen["catalog"] != "warehouse"  # fitted inside the scratch database
        assert seen["model_panel"] == before["panel.model_panel"]
        assert {t: table_hash(con, t) for t in tables} == before
        assert not list(scratch.glob("*.duckdb*"))
        base = con.execute("SELECT term, estimate FROM models.coefficients WHERE model = 'outsourcing_probit'"
                           ).fetchall()
    finally:
        con.close()
    for term, estimate in base:
        assert fit.results.params[term] == pytest.approx(estimate, rel=1e-9, abs=1e-12)


def test_ceiling_variant_keeps_the_firms_between_the_ceilings(pipeline_run, warehouse_copy, tmp_path):
    spec = load_study_spec(None)
    variant = {v.name: v for v in spec.variants["table2"]}["ceiling_7_5m"]
    con = duckdb.connect(str(warehouse_copy))
    try:
        between = con.execute(
            "SELECT count(*) FROM panel.survey_rejects r JOIN raw.survey_returns s USING (source_file, source_row) "
            "WHERE r.year <= 2006 AND r.reason = 'above_turnover_ceiling' AND s.turnover <= 7500000"
        ).fetchall()[0][0]
        base_n = con.execute("SELECT value FROM models.fit_stats WHERE model = 'outsourcing_probit' "
                             "AND stat = 'nobs'").fetchall()[0][0]
        fit = fit_variant(con, variant, pipeline_run.raw, spec.districts, tmp_path / "scratch")
    finally:
        con.close()
    assert between > 0, "the test world has no firm between the two ceilings"
    assert fit.results.nobs > base_n


def test_district_list_variant_is_not_fitted_without_its_file(pipeline_run, warehouse_copy, tmp_path):
    from offshoring.variants import VariantNotFitted

    spec = load_study_spec(None)
    variant = {v.name: v for v in spec.variants["table2"]}["district_list"]
    con = duckdb.connect(str(warehouse_copy))
    try:
        with pytest.raises(VariantNotFitted, match="no district list at"):
            fit_variant(con, variant, tmp_path / "raw_without_list", spec.districts, tmp_path / "s")
        # with a list, the district flag comes from it
        raw = tmp_path / "raw_with_list"
        (raw / "reference").mkdir(parents=True)
        codes = [r[0] for r in con.execute("SELECT DISTINCT llma_code FROM panel.model_panel "
                                           "WHERE llma_code IS NOT NULL ORDER BY 1 LIMIT 40").fetchall()]
        (raw / "reference" / "istat_districts.csv").write_text("llma_code\n" + "\n".join(codes) + "\n")
        fit = fit_variant(con, variant, raw, spec.districts, tmp_path / "s")
        base = con.execute("SELECT estimate FROM models.coefficients WHERE model = 'outsourcing_probit' "
                           "AND term = 'district'").fetchall()[0][0]
    finally:
        con.close()
    assert fit.results.params["district"] != pytest.approx(base, rel=1e-6)


# --------------------------------------------------------------------------- the default run


def _csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_default_run_writes_robustness_tables_and_curves(pipeline_run):
    assert pipeline_run.ok
    rep = pipeline_run.reports
    for table, main in (("table2", "table2"), ("table3", "table3")):
        for suffix in (".md", ".tex", ".csv", ".provenance.json"):
            assert (rep / f"{table}_robustness{suffix}").is_file()
        for suffix in (".png", ".svg", "_data.csv"):
            assert (rep / f"{table}_specification_curve{suffix}").is_file()
        # column (1) is the standalone table's figures, exactly
        single = {r[0]: r[1:] for r in _csv(rep / f"{main}.csv")[1:] if r and r[0]}
        rob = _csv(rep / f"{table}_robustness.csv")
        assert rob[0][1].startswith("(1)") and "baseline" in rob[0][1]
        rows = rob[1:]
        checked = 0
        for i, r in enumerate(rows):
            if r and r[0] in single and single[r[0]][0] not in ("", "Yes", "No"):
                est, se = single[r[0]][:2]
                assert r[1] == est, (table, r[0])
                if r[0] in ("Observations", "Groups"):
                    continue
                assert rows[i + 1][0] == "" and rows[i + 1][1] == se, (table, r[0])
                checked += 1
        assert checked >= 5
        md = (rep / f"{table}_robustness.md").read_text()
        assert "synthetic data" in md
    md2 = (rep / "table2_robustness.md").read_text()
    for name in ("ceiling_7_5m", "logit", "quad_24", "oim_errors", "years_2007_2012"):
        assert name in md2
    assert "district_list" in md2 and "not fitted: no district list" in md2


# --------------------------------------------------------------------------- through the CLI


def _cli_env(root: Path, pipeline_run, config: Path) -> dict[str, str]:
    raw = root / "raw"
    shutil.copytree(pipeline_run.raw, raw)
    shutil.copy(pipeline_run.db, root / "warehouse.duckdb")
    (root / "dagster_home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFSHORING_", "DAGSTER_"))}
    env.update({"OFFSHORING_RAW_DIR": str(raw), "OFFSHORING_DB": str(root / "warehouse.duckdb"),
                "OFFSHORING_REPORTS_DIR": str(root / "reports"), "DAGSTER_HOME": str(root / "dagster_home"),
                "OFFSHORING_CONFIG_DIR": str(config)})
    return env


def _fitted_at(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT model, text FROM models.fit_stats WHERE stat = 'fitted_at'").fetchall())
    finally:
        con.close()


def test_an_overlay_file_adds_a_column_and_refits_nothing_else(pipeline_run, tmp_path):
    """The user's path: drop one YAML file in the config folder, run `offshoring run` again."""
    config = tmp_path / "config"
    config.mkdir()
    env = _cli_env(tmp_path, pipeline_run, config)
    before = _fitted_at(tmp_path / "warehouse.duckdb")
    assert {"outsourcing_probit", "backshoring_cox", "table2_variant_logit"} <= set(before)
    _user_variant(config, "table2", "no_supplier",
                  "description: Without the supplier dummy.\norder: 90\nmodel:\n"
                  "  lagged: [export_ratio, market_area_order, credit_access, va_per_employee_k]\n"
                  "  mundlak: [export_ratio, market_area_order, credit_access, va_per_employee_k]\n")
    done = subprocess.run(CLI + ["run", "--synthetic"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = _fitted_at(tmp_path / "warehouse.duckdb")
    refitted = sorted(m for m in after if before.get(m) != after[m])
    assert refitted == ["table2_variant_no_supplier"]
    rob = _csv(tmp_path / "reports" / "table2_robustness.csv")
    header = rob[0]
    assert header[-1] == "data_source"  # the CSV says which data, on every row
    assert header[-2].endswith("no_supplier") and len(header) == len(_csv(pipeline_run.reports /
                                                                          "table2_robustness.csv")[0]) + 1
    supplier = next(r for r in rob if r[0] == "Supplier")
    assert supplier[-2] == "" and supplier[1] not in ("", "–")  # CSV: empty where there is no estimate
    md = (tmp_path / "reports" / "table2_robustness.md").read_text()
    assert next(line for line in md.splitlines() if line.startswith("| Supplier |")).endswith("| – |")
    assert "Without the supplier dummy." in md


def test_a_bad_variant_file_stops_the_run_before_anything_changes(pipeline_run, tmp_path):
    """The user's path: a misspelt key in a variant file is refused by `offshoring run` with a
    plain sentence naming the file and the nearest key; the warehouse and reports stay."""
    config = tmp_path / "config"
    config.mkdir()
    env = _cli_env(tmp_path, pipeline_run, config)
    path = _user_variant(config, "table2", "mine", "descripton: typo\n")
    db = tmp_path / "warehouse.duckdb"
    before = db.read_bytes()
    done = subprocess.run(CLI + ["run", "--synthetic"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert str(path) in out and "did you mean 'description'" in out and "Traceback" not in out
    assert db.read_bytes() == before
    assert not (tmp_path / "reports").exists()


def test_a_variant_names_every_list_it_changes_under_the_users_baseline(tmp_path):
    """A variant's `model` key replaces the baseline's whole: with the user's Table 3 on fewer
    covariates, firm_spells and share_of_all_subcontracting put the removed ones back while
    their footnotes named one change. The differences are now computed from the two
    specifications, and the robustness table prints them beside the description."""
    import yaml

    from offshoring.variants import spec_differences

    folder = tmp_path / "cfg"
    folder.mkdir()
    cox = yaml.safe_load((Path(__file__).resolve().parent.parent / "config" / "cox_table3.yaml").read_text())
    cox["covariates"] = [c for c in cox["covariates"] if c["name"] not in ("wage_per_employee_k", "roi")]
    (folder / "cox_table3.yaml").write_text(yaml.safe_dump(cox))
    (folder / "probit_table2.yaml").write_text("dummies:\n  macro_area:\n    base: North-West\n    levels:\n"
                                              "      North-East: area_north_east\n      Centre: area_centre\n"
                                              "      South: area_south\n      Islands: area_islands\n")
    spec = load_study_spec(folder)
    by3 = {v.name: v for v in spec.variants["table3"]}
    base3 = next(v for v in spec.variants["table3"] if v.is_baseline)
    assert spec_differences(base3.model_spec, by3["firm_spells"].model_spec) == [
        "covariates without share_destination; with wage_per_employee_k, roi",
        "destinations without europe, north_africa, east_asia, other; with any"]
    assert spec_differences(base3.model_spec, by3["share_of_all_subcontracting"].model_spec) == [
        "covariates without share_destination; with share_destination_all, wage_per_employee_k, roi"]
    assert spec_differences(base3.model_spec, by3["spells_from_2007"].model_spec) == []
    by2 = {v.name: v for v in spec.variants["table2"]}
    base2 = next(v for v in spec.variants["table2"] if v.is_baseline)
    # the user's baseline has no industry dummy; the region variant's dummies put it back
    assert spec_differences(base2.model_spec, by2["region_dummies"].model_spec) == [
        "dummies without macro_area; with sector, region"]
    assert spec_differences(base2.model_spec, by2["logit"].model_spec) == []


def test_a_variant_not_fitted_records_the_specification_it_was_tried_under(pipeline_run):
    """A not-fitted variant's rows hold the specification record, as a later run that finds
    nothing changed writes it: an incremental warehouse equals a fresh one (it held two rows
    more, found by an outside check)."""
    from offshoring.variants import fit_spec_record

    spec = load_study_spec(None)
    variant = {v.name: v for v in spec.variants["table2"]}["district_list"]
    con = duckdb.connect(str(pipeline_run.db), read_only=True)
    try:
        rows = dict(con.execute("SELECT stat, text FROM models.fit_stats WHERE model = ?",
                                [variant.fit_key]).fetchall())
    finally:
        con.close()
    assert "no district list" in rows["not_fitted"], rows
    assert rows["fit_spec_sha256"] == fit_spec_record(variant.fit_spec(spec.districts))["fit_spec_sha256"]
