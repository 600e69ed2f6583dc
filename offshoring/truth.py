"""The generator's truth.json, trusted only when the project's own generator wrote it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MARKER = "offshoring.synth"


def read_truth(raw_dir: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """(truth, None) for our generator's file; (None, warning) for any other; (None, None) if absent."""
    path = Path(raw_dir) / "truth.json"
    if not path.exists():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{path} is not readable JSON ({exc}); ignored"
    if not isinstance(data, dict) or data.get("generator") != MARKER:
        return None, (f"{path} was not written by the project's generator "
                      f"(no \"generator\": \"{MARKER}\"); ignored")
    return data, None


def seed_of(raw_dir: str | Path) -> int | None:
    truth, _ = read_truth(raw_dir)
    return None if truth is None else truth.get("seed")
