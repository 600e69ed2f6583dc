"""The no-op's modules import no heavy library: reading and checking the study specification,
finding the raw folder's files and the run state need neither the estimators' libraries (scipy,
statsmodels, pandas) nor the readers' validation (pandera) nor Dagster.

In a fresh interpreter (a subprocess), so that what the test run imported does not count; the
list of modules is checked, not a time. Through the command line on a world that has run:
`test_one_run.test_unchanged_folder_imports_no_heavy_library`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY_LIBRARIES = {"scipy", "statsmodels", "pandas", "pandera", "dagster"}

PROBE = """
import json, sys
from pathlib import Path

from orchestration import cli
from offshoring import identity, inputs, pseudonym, runstate, truth
from offshoring.readers import layout
from offshoring.spec import load_study_spec

raw = Path(sys.argv[1])
spec = load_study_spec(None)  # every part parsed and checked, the model specs and variants included
assert layout.discover_survey_files(raw) == {}
assert truth.generated_folder_problem(raw)
state = runstate.inputs_state(raw, spec, "real")
assert state["spec_parts"]
print(json.dumps(sorted(sys.modules)))
"""


def test_noop_modules_import_no_heavy_library(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSHORING_")}
    env["GIT_DIR"] = str(tmp_path / "no_git")  # the code version without git's state
    (tmp_path / "raw").mkdir()
    proc = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "raw")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = json.loads(proc.stdout.splitlines()[-1])
    assert "offshoring.econometrics.model_specs" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY_LIBRARIES)
    assert not heavy, heavy[:20]
