"""The code version recorded with every load and output: git commit, dirty or not."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

from offshoring import __version__
from offshoring.settings import PROJECT_ROOT


def _git(args: list[str], cwd: Path) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20,
                         check=True)
    return res.stdout.strip()


def git_state(repo: str | Path | None = None) -> dict[str, Any]:
    """Git commit and dirty flag of the code; ``commit: None`` with a reason when unknown.

    Dirty means modified or staged tracked files (untracked files are counted
    separately, as they rarely change behaviour but may).
    """
    repo = Path(repo) if repo is not None else PROJECT_ROOT
    try:
        commit = _git(["rev-parse", "HEAD"], repo)
        status = _git(["status", "--porcelain"], repo).splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        reason = getattr(exc, "stderr", None) or str(exc)
        return {"commit": None, "dirty": None, "error": str(reason).strip()[:300]}
    tracked = [s for s in status if not s.startswith("??")]
    return {"commit": commit, "dirty": bool(tracked), "modified_files": len(tracked),
            "untracked_files": len(status) - len(tracked)}


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+g<short commit>[.dirty]``, or the package version alone.

    Computed once per process: a run's loads all carry the same version.
    """
    state = git_state()
    if not state.get("commit"):
        return __version__
    return f"{__version__}+g{str(state['commit'])[:12]}{'.dirty' if state['dirty'] else ''}"
