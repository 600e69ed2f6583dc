"""The generator's truth.json: read only in synthetic mode, and only for files it wrote.

`generated_folder_problem` is how the synthetic mode knows a folder is the generator's:
truth.json carries the SHA-256 of every file the generator wrote, and every contract
file present must be one of them, unchanged. A truth.json beside other files (real
deliveries, or files edited since) is not trusted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MARKER = "offshoring.synth"
#: folders of the data contract whose files the manifest must cover
CONTRACT_FOLDERS = ("survey", "aida", "reference")


def read_truth(raw_dir: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """(truth, None) for our generator's file; (None, warning) for any other; (None, None) if absent."""
    path = Path(raw_dir) / "truth.json"
    if not path.exists():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{path} is not readable JSON ({type(exc).__name__}); ignored"
    if not isinstance(data, dict) or data.get("generator") != MARKER:
        return None, (f"{path} was not written by the project's generator "
                      f"(no \"generator\": \"{MARKER}\"); ignored")
    return data, None


def contract_files(raw_dir: str | Path) -> list[Path]:
    """Every file under the contract's folders, plus the column map (sorted)."""
    raw = Path(raw_dir)
    files = [p for sub in CONTRACT_FOLDERS if (raw / sub).is_dir()
             for p in sorted((raw / sub).rglob("*")) if p.is_file() or p.is_symlink()]
    if (raw / "column_map.yaml").exists():
        files.append(raw / "column_map.yaml")
    return files


def generated_folder_problem(raw_dir: str | Path) -> str | None:
    """None when `raw_dir` holds only files the generator wrote, unchanged; else why not."""
    from offshoring.readers.layout import sha256_file

    raw = Path(raw_dir)
    truth, warning = read_truth(raw)
    if truth is None:
        return warning or f"{raw} has no truth.json from the generator"
    written = truth.get("file_sha256")
    if not isinstance(written, dict):
        return f"{raw / 'truth.json'} lists no file hashes (written by an older generator); generate again"
    for p in contract_files(raw):
        rel = p.relative_to(raw).as_posix()
        if p.is_symlink():
            return f"{p} is a link; the generator writes plain files"
        if rel not in written:
            return f"{p} was not written by the generator"
        if sha256_file(p) != written[rel]:
            return f"{p} was changed after the generator wrote it"
    return None


def generator_marks(raw_dir: str | Path) -> list[str]:
    """The raw folder's files that say they were written by the project's generator, whatever
    truth.json says (a copy of the demo's files without it is still synthetic): the AIDA
    workbook's author in its document properties, a Parquet survey file's key-value metadata.
    A CSV has nowhere to carry such a mark, so a copy of only the generator's CSV files without
    its truth.json cannot be recognised (said in docs/readings.md)."""
    import re
    import zipfile

    raw = Path(raw_dir)
    marks: list[str] = []
    for path in sorted((raw / "aida").glob("*.xlsx")) if (raw / "aida").is_dir() else []:
        try:
            with zipfile.ZipFile(path) as z:
                core = z.read("docProps/core.xml").decode("utf-8", "replace")
        except (OSError, KeyError, zipfile.BadZipFile):
            continue  # not a workbook with document properties: the reader says what is wrong
        author = re.search(r"<dc:creator>([^<]*)</dc:creator>", core)
        if author and author.group(1).strip() == MARKER:
            marks.append(f"{path} (its document properties name {MARKER} as the author)")
    for path in sorted((raw / "survey").glob("*.parquet")) if (raw / "survey").is_dir() else []:
        try:
            import polars as pl

            meta = pl.read_parquet_metadata(path)
        except Exception:  # noqa: BLE001 - an unreadable file is the reader's to refuse, with its reason
            continue
        if meta.get("generator") == MARKER:
            marks.append(f"{path} (its metadata name {MARKER} as the generator)")
    return marks


def synthetic_in_real_mode(raw_dir: str | Path) -> str | None:
    """Why a run for real data must not read `raw_dir` (the generator's files), or None."""
    raw = Path(raw_dir)
    if generated_folder_problem(raw) is None:
        return (f"{raw} holds the generator's synthetic files, unchanged. Run them as the demo, "
                f"`offshoring demo` (or `offshoring run --synthetic`), so every output says so.")
    marks = generator_marks(raw)
    if marks:
        return (f"{raw} holds files written by the synthetic-data generator: {'; '.join(marks[:3])}"
                f"{f' and {len(marks) - 3} more' if len(marks) > 3 else ''}. A run for real data does not "
                f"read them. Run synthetic files as the demo (`offshoring demo`, or `offshoring run "
                f"--synthetic` with the generator's truth.json beside them), or replace them with the real "
                f"deliveries.")
    return None
