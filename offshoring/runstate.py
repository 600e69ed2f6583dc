"""What the last complete run was made from, so that an unchanged folder is a no-op.

A complete run (every survey year loaded, everything else refreshed) records in the
warehouse the SHA-256 of every input file, the specification's hash (whole, and per part:
`spec_parts`, see `StudySpec.part_sha256`), the code version and the data's origin. The
next run with the same state has nothing to do: its outputs would be the ones already
there; one whose specification differs in some parts refreshes what those parts affect.
A state recorded before `spec_parts` existed stays readable: its parts count as all changed.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offshoring.readers.layout import sha256_file
from offshoring.truth import contract_files
from offshoring.version import code_version

if TYPE_CHECKING:
    from offshoring.spec import StudySpec


def file_hashes(raw_dir: str | Path) -> dict[str, str]:
    """SHA-256 of every input file of the raw folder, by path relative to it."""
    raw = Path(raw_dir)
    return {p.relative_to(raw).as_posix(): sha256_file(p) for p in contract_files(raw)}


def _configured_parts(spec_sha256: str) -> dict[str, str] | None:
    """The part hashes of the specification in the configured folder, if it is the one of
    `spec_sha256` (the caller read it from there); None when it cannot be told."""
    from offshoring import settings
    from offshoring.spec import SpecError, load_study_spec

    try:
        spec = load_study_spec(settings.config_dir())
    except (SpecError, OSError, ValueError):
        return None
    return spec.part_sha256() if spec.sha256 == spec_sha256 else None


def inputs_state(raw_dir: str | Path, spec: "StudySpec | str", origin: str) -> dict[str, Any]:
    """The state a complete run records. `spec`: the study specification, or its SHA-256 (then
    its parts are those of the configured folder's specification, when it has that hash)."""
    if isinstance(spec, str):
        spec_sha256, parts = spec, _configured_parts(spec)
    else:
        spec_sha256, parts = spec.sha256, spec.part_sha256()
    state: dict[str, Any] = {
        "files": file_hashes(raw_dir),
        "spec_sha256": spec_sha256,
        "code_version": code_version(),
        "origin": origin,
    }
    if parts is not None:
        state["spec_parts"] = parts
    return state


def changed_spec_parts(state: dict[str, Any], spec: "StudySpec") -> set[str] | None:
    """The parts (and part keys, ``"thresholds.delivery_gate"``) of `spec` whose hash differs from
    the one `state` recorded; None when `state` recorded no parts (an older state): all changed."""
    before = state.get("spec_parts")
    if not isinstance(before, dict):
        return None
    if state.get("spec_sha256") == spec.sha256:
        return set()
    now = spec.part_sha256()
    return {name for name in set(before) | set(now) if before.get(name) != now.get(name)}


def last_state(database: str | Path) -> dict[str, Any] | None:
    """The state of the last complete run recorded in the warehouse, or None."""
    import duckdb

    path = Path(database)
    if not path.is_file():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("SELECT state FROM meta.run_state ORDER BY recorded_at DESC LIMIT 1").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return json.loads(row[0][0]) if row else None


def record_state(database: str | Path, state: dict[str, Any]) -> None:
    import duckdb

    con = duckdb.connect(str(database))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        con.execute("CREATE TABLE IF NOT EXISTS meta.run_state (recorded_at TIMESTAMP, state VARCHAR)")
        con.execute("DELETE FROM meta.run_state")
        con.execute("INSERT INTO meta.run_state VALUES (?, ?)",
                    [datetime.now(timezone.utc).replace(tzinfo=None), json.dumps(state, sort_keys=True)])
    finally:
        con.close()


def reports_origins(reports: Path) -> dict[str, list[str]]:
    """The origin (``synthetic`` or ``real``) each provenance record in the reports folder gives:
    origin -> the files saying it (``unknown`` for a record that says neither)."""
    found: dict[str, list[str]] = {}
    if not Path(reports).is_dir():
        return found
    for path in sorted(Path(reports).glob("*.provenance.json")):
        try:
            origin = json.loads(path.read_text(encoding="utf-8")).get("provenance", {}).get("data")
        except (OSError, ValueError, AttributeError):
            origin = None
        found.setdefault(str(origin) if origin in ("synthetic", "real") else "unknown", []).append(path.name)
    return found


def reports_digest(reports: str | Path) -> dict[str, Any]:
    """The reports folder as a complete run left it: its resolved path and the SHA-256 of every
    file in it (hidden files aside). Recorded with the run's state (``"reports"``): a folder
    that is another one, or whose files were changed or deleted since, is not up to date."""
    folder = Path(reports)
    files: dict[str, str] = {}
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                files[rel.as_posix()] = sha256_file(path)
    return {"dir": str(folder.resolve()), "files": files}


def reports_as_recorded(state: dict[str, Any] | None, reports: str | Path) -> bool:
    """Whether the reports folder holds exactly what the last complete run (`state`) wrote
    there: the same folder, every file as it was. A state recorded before the reports were
    recorded with it cannot tell: False (the reports are written again)."""
    recorded = (state or {}).get("reports")
    # the files, not the path: a copy of the folder (moved, restored from a backup) holding
    # exactly what the run wrote is up to date; another folder with older tables is not
    return isinstance(recorded, dict) and recorded.get("files") == reports_digest(reports)["files"]


def without_reports(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """`state` without its record of the reports folder (what `inputs_state` computes)."""
    return None if state is None else {k: v for k, v in state.items() if k != "reports"}


def reports_of(reports: Path, origin: str) -> bool:
    """True when the reports folder holds a complete set (its index) made from data of `origin`
    and of nothing else: a folder the demo wrote into (or a real run, for the demo) is not up to
    date, whatever the warehouse's state says."""
    return (Path(reports) / "index.html").exists() and set(reports_origins(reports)) == {origin}
