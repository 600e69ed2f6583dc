"""The package runs BLAS on one thread unless the user set the thread count.

OpenBLAS threads spinning against other busy processes on a shared two-core machine made a
100,000 x 26 Gram product take 3 s instead of 15 ms; the pipeline sets one thread before
numpy is first imported. Checked in fresh processes (the test process has imported numpy).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = ("import json, offshoring, numpy, scipy.linalg; "
         "from offshoring.reports.provenance import blas_threads; print(json.dumps(blas_threads()))")


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_one_blas_thread_by_default_in_every_library():
    got = _probe()
    assert got["threads"] == 1, got
    assert len(got["libraries"]) >= 1 and all(lib["threads"] == 1 for lib in got["libraries"])
    assert got["env"]["OPENBLAS_NUM_THREADS"] == "1"


def test_a_users_thread_count_is_kept():
    got = _probe(OPENBLAS_NUM_THREADS="2")
    assert got["threads"] == 2 and got["env"]["OPENBLAS_NUM_THREADS"] == "2", got
