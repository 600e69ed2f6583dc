"""Settings from environment variables, with the documented defaults.

Paths are resolved against the project root (the folder holding
``pyproject.toml``) when relative, so the CLI, Dagster and tests agree on where
data lives whatever the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
#: a source checkout (editable install, tests, CI) rather than an installed wheel
IN_SOURCE_TREE = (PROJECT_ROOT / "pyproject.toml").is_file()


def shipped_dir(name: str) -> Path:
    """``sql`` or ``config``: at the top of a source checkout; inside the package when installed
    from a wheel (``offshoring/_sql``, ``offshoring/_config``; see pyproject.toml)."""
    if IN_SOURCE_TREE and (PROJECT_ROOT / name).is_dir():
        return PROJECT_ROOT / name
    return PACKAGE_DIR / f"_{name}"


def base_dir() -> Path:
    """What relative path settings are relative to: the project folder in a source checkout,
    else the working directory (an installed package has no project folder)."""
    return PROJECT_ROOT if IN_SOURCE_TREE else Path.cwd()

ENV_RAW_DIR = "OFFSHORING_RAW_DIR"
ENV_DB = "OFFSHORING_DB"
ENV_REPORTS_DIR = "OFFSHORING_REPORTS_DIR"
ENV_CONFIG_DIR = "OFFSHORING_CONFIG_DIR"
ENV_PSEUDONYM_KEY = "OFFSHORING_PSEUDONYM_KEY"
ENV_PSEUDONYM_KEY_FILE = "OFFSHORING_PSEUDONYM_KEY_FILE"
ENV_SYNTHETIC = "OFFSHORING_SYNTHETIC"


#: read elsewhere: the DuckDB memory limit of the panel build (offshoring/panel.py) and the
#: fault injection the crash tests use (offshoring/load.py)
ENV_DUCKDB_MEMORY_LIMIT = "OFFSHORING_DUCKDB_MEMORY_LIMIT"
ENV_FAULTS = ("OFFSHORING_FAULT_PAUSE_BEFORE_COMMIT", "OFFSHORING_FAULT_PAUSE_AFTER_COMMIT",
              "OFFSHORING_FAULT_MARKER")
KNOWN_VARIABLES = (ENV_RAW_DIR, ENV_DB, ENV_REPORTS_DIR, ENV_CONFIG_DIR, ENV_PSEUDONYM_KEY,
                   ENV_PSEUDONYM_KEY_FILE, ENV_SYNTHETIC, ENV_DUCKDB_MEMORY_LIMIT, *ENV_FAULTS)
PREFIX = "OFFSHORING_"


class SettingError(ValueError):
    """A setting (environment variable or config file) that cannot be used as given."""


def unknown_variables(also_known=()) -> list[str]:
    """The OFFSHORING_* environment variables that no setting reads (`also_known`: the names
    the alert settings give their secrets). A misspelt one (OFFSHORING_CONFIGDIR) was
    ignored without a word, and the run used the default in its place."""
    known = {*KNOWN_VARIABLES, *also_known}
    return sorted(k for k in os.environ if k.startswith(PREFIX) and k not in known)


def unknown_variable_sentence(names: list[str], also_known=()) -> str:
    import difflib

    known = sorted({*KNOWN_VARIABLES, *also_known} - set(ENV_FAULTS))
    parts = []
    for name in names:
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        parts.append(f"{name}" + (f" (did you mean {near[0]}?)" if near else ""))
    return (f"The environment sets {', '.join(parts)}, which no setting of this pipeline reads: it "
            f"would be ignored and the default used in its place. Correct the name or unset it; the "
            f"settings are listed in the README ('Settings').")


def synthetic() -> bool:
    """Whether the run is the synthetic demo (OFFSHORING_SYNTHETIC=1), asked for explicitly.

    Off unless set: real files are never taken for synthetic ones, and the demo's public
    pseudonymisation key is used only in this mode.
    """
    value = (os.environ.get(ENV_SYNTHETIC) or "0").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise SettingError(f"{ENV_SYNTHETIC} must be 1 (synthetic demo) or 0 (real files), not {value!r}")


def _path(env: str, default: str) -> Path:
    value = os.environ.get(env)
    if value is not None and not value.strip():
        # an empty setting fell back to the default inside the project folder: real data
        # would have been written into the checkout
        raise SettingError(f"{env} is set but empty{'' if not value else ' (blanks only)'}. Give it a path, or unset it to use "
                           + (f"the default ({default}, in {base_dir()})." if default else "the shipped settings only."))
    if value is not None and value != value.strip():
        kind = "a space" if value[:1] == " " or value[-1:] == " " else "white space (a tab or a line end)"
        raise SettingError(f"{env}={value!r} begins or ends with {kind}, which is almost always a typo "
                           f"(the path would be {value!r}, not {value.strip()!r}). Remove the "
                           f"{'space' if kind == 'a space' else 'white space'}.")
    value = value or default
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base_dir() / p)


def raw_dir() -> Path:
    return _path(ENV_RAW_DIR, "data/raw")


def db_path() -> Path:
    return _path(ENV_DB, "data/warehouse.duckdb")


def reports_dir() -> Path:
    return _path(ENV_REPORTS_DIR, "reports")


def dagster_home() -> Path:
    return _path("DAGSTER_HOME", ".dagster_home")


def config_dir() -> Path | None:
    """The user's folder of YAML settings (`OFFSHORING_CONFIG_DIR`), or None: defaults only.

    A user folder need not hold every file nor every key: what it lacks is taken from
    the shipped defaults (`defaults_config_dir`); see `offshoring.spec`.
    """
    value = os.environ.get(ENV_CONFIG_DIR)
    return None if value is None else _path(ENV_CONFIG_DIR, "" if not value.strip() else value)


def defaults_config_dir() -> Path:
    """The folder of the default YAML files (the only place a default is written)."""
    return shipped_dir("config")


@dataclass(frozen=True)
class Settings:
    """A snapshot of every path setting, recorded in output metadata."""

    raw_dir: Path = field(default_factory=raw_dir)
    db_path: Path = field(default_factory=db_path)
    reports_dir: Path = field(default_factory=reports_dir)
    config_dir: Path = field(default_factory=config_dir)
    dagster_home: Path = field(default_factory=dagster_home)

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}
