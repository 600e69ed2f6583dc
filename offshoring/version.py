"""The code version recorded with every load and output: git commit, dirty or not."""

from __future__ import annotations

import functools
import subprocess

from offshoring import __version__
from offshoring.settings import PROJECT_ROOT


@functools.lru_cache(maxsize=1)
def git_state() -> dict[str, object]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def code_version() -> str:
    """``<package version>+<short commit>[.dirty]``, or the package version alone."""
    state = git_state()
    if not state["commit"]:
        return __version__
    suffix = ".dirty" if state["dirty"] else ""
    return f"{__version__}+{str(state['commit'])[:12]}{suffix}"
