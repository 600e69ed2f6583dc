"""An ordinary (non-editable) install works away from the source tree.

The project is built as a wheel and installed into a fresh virtual environment (its
dependencies taken from the test environment by a path entry, so nothing is
downloaded); the demo then runs from an unrelated folder: the SQL files and the default
settings come from inside the installed package, and every relative path setting from
the working directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import instance_at

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_runs_the_demo_from_another_folder(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path, timeout=600)
    (wheel,) = wheels.glob("offshoring-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # dependencies from the test environment, after the fresh one's own packages
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # without PYTHONPATH: a source tree on it (its egg-info) would make pip skip the install
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, timeout=300, env=clean)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OFFSHORING_", "DAGSTER_HOME", "PYTHONPATH"))}
    where = subprocess.run(
        [str(py), "-c", "import offshoring, offshoring.settings as s; "
                        "print(offshoring.__file__); print(s.IN_SOURCE_TREE); print(s.shipped_dir('sql'))"],
        cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(site)), where
    assert where[1] == "False"
    assert Path(where[2]) == site / "offshoring" / "_sql" and (Path(where[2]) / "panel_firm_years.sql").exists()

    proc = subprocess.run([str(venv / "bin" / "offshoring"), "demo", "--firms", "2500", "--seed", "11"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / "data" / "raw" / "truth.json").exists()
    assert (work / "data" / "warehouse.duckdb").exists()
    assert (work / "reports" / "index.html").exists() and (work / "reports" / "table2.md").exists()
    # what the demo prints says it is synthetic, everywhere: every table, the index, every
    # provenance record; and it is compared with the generator's truth
    import json

    tables_md = sorted((work / "reports").glob("*.md"))
    assert len(tables_md) >= 8
    for md in tables_md:
        assert "synthetic data from the project's generator (seed 11)" in md.read_text(), md.name
    assert "synthetic" in (work / "reports" / "index.html").read_text().lower()
    for prov in (work / "reports").glob("*.provenance.json"):
        assert json.loads(prov.read_text())["provenance"]["data"] == "synthetic", prov.name
    comparison = (work / "reports" / "table2_comparison.md").read_text()
    assert "True value" in comparison and "intervals miss" in comparison
    assert (work / ".dagster_home" / "dagster.yaml").exists()
    # the UI's run list says the demo's runs used synthetic data
    with instance_at(work / ".dagster_home") as instance:
        runs = instance.get_runs()
    assert runs and {r.tags.get("offshoring/data") for r in runs} == {"synthetic"}
