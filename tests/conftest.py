"""Shared fixtures: one small synthetic dataset run through the whole pipeline, once per session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

E2E_FIRMS = 2500
E2E_SEED = 11


@dataclass
class PipelineRun:
    root: Path
    raw: Path
    db: Path
    reports: Path
    home: Path
    ok: bool
    truth: dict


def _env(root: Path) -> dict[str, str]:
    return {
        "OFFSHORING_RAW_DIR": str(root / "raw"),
        "OFFSHORING_DB": str(root / "warehouse.duckdb"),
        "OFFSHORING_REPORTS_DIR": str(root / "reports"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> PipelineRun:
    """Generate a small synthetic dataset and materialize every asset through Dagster."""
    import json

    import dagster as dg

    from offshoring.synth import generate
    from orchestration.definitions import build_definitions
    from orchestration.pipeline import run_everything
    from assets.resources import Folders, Warehouse

    root = tmp_path_factory.mktemp("pipeline")
    env = _env(root)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        raw = Path(env["OFFSHORING_RAW_DIR"])
        generate(raw, firms=E2E_FIRMS, seed=E2E_SEED)
        Path(env["DAGSTER_HOME"]).mkdir()
        defs = build_definitions({
            "warehouse": Warehouse(database=env["OFFSHORING_DB"]),
            "folders": Folders(raw_dir=env["OFFSHORING_RAW_DIR"],
                               reports_dir=env["OFFSHORING_REPORTS_DIR"], synthetic=True),
        })
        with dg.instance_for_test(temp_dir=env["DAGSTER_HOME"]) as instance:
            ok = run_everything(raw, instance=instance, defs=defs)
        truth = json.loads((raw / "truth.json").read_text())
        yield PipelineRun(root, raw, Path(env["OFFSHORING_DB"]), Path(env["OFFSHORING_REPORTS_DIR"]),
                          Path(env["DAGSTER_HOME"]), ok, truth)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: Table 3 without the territorial dummies: a world of a few hundred firms has macro-areas
#: in which no spell ends, and the fit then (rightly) refuses to estimate their effects
SMALL_WORLD_COX = ("dummies:\n  sector:\n    base: clothing\n    levels: {footwear: footwear}\n")


def small_world_config(folder: Path) -> Path:
    """A config folder for small synthetic worlds (see `SMALL_WORLD_COX`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cox_table3.yaml").write_text(SMALL_WORLD_COX)
    return folder
