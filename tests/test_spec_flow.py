"""A user's config folder changes the study with no code change, and everything follows.

On a copy of the session pipeline's warehouse, a config folder with another label, year
dummies and another ownership threshold is handed to the assets
(the `Study` resource): the fit, Table 2 and the provenance all follow, the fit stores the
new specification's hash, and a misspelt key stops everything naming it. The library
never reads the folder itself: no module of `offshoring/` imports the application layers.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from offshoring.spec import SpecError, load_study_spec
from orchestration.definitions import build_definitions
from assets.resources import Folders, Study, Warehouse

ROOT = Path(__file__).resolve().parent.parent


def test_user_config_folder_drives_fit_tables_and_provenance(pipeline_run, tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "probit_table2.yaml").write_text(
        "labels:\n  supplier_lag: Works mainly as a subcontractor (t-1)\n"
        "year_dummies: true\n")
    (cfg / "thresholds.yaml").write_text("offshoring_ownership_pct: 40\n")
    spec = load_study_spec(cfg)
    assert spec.thresholds.offshoring_ownership_pct == 40
    assert spec.thresholds.turnover_ceiling.default == 7_500_000  # the rest from the defaults

    db = tmp_path / "w.duckdb"
    shutil.copy(pipeline_run.db, db)
    defs = build_definitions({"warehouse": Warehouse(database=str(db)),
                              "folders": Folders(raw_dir=str(pipeline_run.raw), reports_dir=str(tmp_path / "r"),
                                                 synthetic=True),
                              "study": Study(config_dir=str(cfg))})
    keys = [dg.AssetKey(k) for k in ("aida_offshoring", "outsourcing_probit", "table2")]
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("refresh_outputs").execute_in_process(
            instance=instance, asset_selection=keys)
        assert result.success
        meta = {e.event_specific_data.materialization.asset_key.to_user_string():
                e.event_specific_data.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert meta["outsourcing_probit"]["spec_sha256"].value == spec.sha256
    assert meta["aida_offshoring"]["ownership_pct"].value == 40
    con = duckdb.connect(str(db), read_only=True)
    terms = [r[0] for r in con.execute("SELECT term FROM models.coefficients WHERE model = "
                                       "'outsourcing_probit'").fetchall()]
    stored = con.execute("SELECT text FROM models.fit_stats WHERE model = 'outsourcing_probit' "
                         "AND stat = 'spec_sha256'").fetchall()[0][0]
    con.close()
    year_terms = [t for t in terms if t.startswith("year")]
    assert year_terms and "area_south" in terms
    assert stored == spec.sha256
    table2 = (tmp_path / "r" / "table2.md").read_text()
    assert "Works mainly as a subcontractor (t-1)" in table2
    assert "Year dummies" in table2
    provenance = json.loads((tmp_path / "r" / "table2.provenance.json").read_text())
    text = json.dumps(provenance)
    assert spec.sha256 in text and '"year_dummies": true' in text and '"offshoring_ownership_pct": 40' in text


def test_misspelt_key_stops_naming_it(tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "thresholds.yaml").write_text("turnover_ceilling:\n  default: 7000000\n")
    with pytest.raises(SpecError, match=r"thresholds.yaml.*unknown key 'turnover_ceilling'; "
                                        r"did you mean 'turnover_ceiling'"):
        load_study_spec(cfg)
    (cfg / "thresholds.yaml").write_text("delivery_gate:\n  max_shrink_share: 2\n")
    with pytest.raises(SpecError, match=r"key 'delivery_gate.max_shrink_share': Input should be less than 1"):
        load_study_spec(cfg)
    (cfg / "thresholds.yaml").unlink()
    (cfg / "cox_table3.yaml").write_text("covariate: [roi]\n")
    with pytest.raises(SpecError, match=r"cox_table3.yaml: unknown key 'covariate'; did you mean 'covariates'"):
        load_study_spec(cfg)


def test_district_setting_of_the_wrong_type_stops_naming_it(tmp_path):
    """A threshold typed "1,5" reached the procedure and failed there naming neither file nor
    key; a quoted "false" read as true."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "districts.yaml").write_text('manufacturing_lq_threshold: "1,5"\n')
    with pytest.raises(SpecError, match=r"districts.yaml.*manufacturing_lq_threshold='1,5': expected a number"):
        load_study_spec(cfg)
    (cfg / "districts.yaml").write_text('single_medium_exception: "false"\n')
    with pytest.raises(SpecError, match=r"districts.yaml.*single_medium_exception='false': expected true or false"):
        load_study_spec(cfg)
    (cfg / "districts.yaml").write_text("manufacturing_lq_threshold: 2\nsingle_medium_exception: false\n")
    spec = load_study_spec(cfg)
    assert spec.districts.manufacturing_lq_threshold == 2 and spec.districts.single_medium_exception is False


@pytest.mark.parametrize("file, text, message", [
    ("thresholds.yaml", "offshoring_ownership_pct: true\n", r"offshoring_ownership_pct': Input should be a valid number"),
    ("thresholds.yaml", "offshoring_ownership_pct: '50'\n", r"offshoring_ownership_pct': Input should be a valid number "
     r"\(YAML read '50' as text: write the number in full, without quotes: 50\)"),
    # YAML 1.1 reads an exponent without its sign as text
    ("thresholds.yaml", "turnover_ceiling:\n  default: 7.5e6\n",
     r"turnover_ceiling\.default': Input should be a valid number \(YAML read '7\.5e6' as text: write the number "
     r"in full, without quotes: 7500000\)"),
    ("panel.yaml", "leave_one_out: 'no'\n", r"leave_one_out': Input should be a valid boolean"),
    ("panel.yaml", "leave_one_out: 0\n", r"leave_one_out': Input should be a valid boolean"),
    ("reports.yaml", "sdc:\n  min_firms: true\n", r"sdc\.min_firms': Input should be a valid integer"),
    ("probit_table2.yaml", "quad_points: true\n", r"quad_points=True: expected a whole number"),
    ("probit_table2.yaml", "adaptive: 1\n", r"adaptive=1: expected true or false"),
    ("probit_table2.yaml", "years:\n  first: '2008'\n", r"years\.first='2008': expected a whole number"),
    ("cox_table3.yaml", "exclude_left_censored: 'no'\n", r"exclude_left_censored='no': expected true or false"),
    # checked before the run, not after other reports were rewritten (Table 1) or when the
    # definitions load (the schedule: "DagsterInvalidDefinitionError", naming no file)
    ("reports.yaml", "table1:\n  start_year: 2012\n  end_year: 2007\n", r"end_year 2007 is before start_year 2012"),
    ("schedule.yaml", "yearly_refresh_cron: '99 99 99 99 99'\n",
     r"yearly_refresh_cron'.*the minute field '99' of '99 99 99 99 99' is outside 0-59"),
    ("schedule.yaml", "yearly_refresh_cron: '0 6 1 march *'\n", r"month field 'march'.*not a number or a month"),
    ("schedule.yaml", "yearly_refresh_cron: '0 6 31 2 *'\n", r"never runs: month 2 has no day 31"),
])
def test_a_value_of_another_kind_is_refused_not_converted(tmp_path, file, text, message):
    """`offshoring_ownership_pct: true` ran with a 1% threshold (the AIDA offshoring table grew
    by a quarter), `leave_one_out: "no"` was false, `"50"` was 50: each is refused, naming the
    file and the key; so are years out of order and a schedule that cannot run."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / file).write_text(text)
    with pytest.raises(SpecError, match=rf"{file}.*{message}"):
        load_study_spec(cfg)


def test_a_settings_file_of_another_name_is_refused_not_ignored(tmp_path):
    """thresholds.yml (with a misspelt key inside) was ignored without a word and the
    defaults kept; a variant saved as .yml too."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "README.md").write_text("my settings\n")  # not a settings file: left alone
    (cfg / ".hidden.yaml").write_text("x: 1\n")
    load_study_spec(cfg)
    (cfg / "thresholds.yml").write_text("turnover_ceilling:\n  default: 7000000\n")
    with pytest.raises(SpecError, match=r"thresholds\.yml is not a settings file.*rename it thresholds\.yaml"):
        load_study_spec(cfg)
    (cfg / "thresholds.yml").unlink()
    (cfg / "column_map.yaml").write_text("survey: {}\n")
    with pytest.raises(SpecError, match=r"column map belongs in the raw folder"):
        load_study_spec(cfg)
    (cfg / "column_map.yaml").unlink()
    (cfg / "notes.json").write_text("{}\n")
    with pytest.raises(SpecError, match=r"notes\.json is not a settings file.*the settings files are"):
        load_study_spec(cfg)
    (cfg / "notes.json").unlink()
    (cfg / "variant" / "table2").mkdir(parents=True)
    with pytest.raises(SpecError, match=r"variant would be ignored.*rename the folder variants"):
        load_study_spec(cfg)
    (cfg / "variant" / "table2").rmdir()
    (cfg / "variant").rmdir()
    (cfg / "old").mkdir()  # another folder (old settings, say): left alone
    (cfg / "variants" / "table2").mkdir(parents=True)
    (cfg / "variants" / "table2" / "my_variant.yml").write_text("description: mine\n")
    with pytest.raises(SpecError, match=r"my_variant\.yml would be ignored.*rename it my_variant\.yaml"):
        load_study_spec(cfg)
    (cfg / "variants" / "table2" / "my_variant.yml").unlink()
    # a model specification named in the user's models.yaml is a settings file
    import yaml

    models = yaml.safe_load((ROOT / "config" / "models.yaml").read_text())
    (cfg / "my_probit.yaml").write_text((ROOT / "config" / "probit_table2.yaml").read_text())
    models["probit"]["spec"] = "my_probit.yaml"
    (cfg / "models.yaml").write_text(yaml.safe_dump(models))
    assert load_study_spec(cfg).files["probit"].endswith("my_probit.yaml")


def test_the_library_imports_neither_orchestration_nor_assets():
    offenders = []
    for path in sorted((ROOT / "offshoring").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in ("orchestration", "assets", "dagster"):
                    offenders.append(f"{path.relative_to(ROOT)} imports {n}")
    assert offenders == []
