"""Settings from environment variables, with the documented defaults.

Paths are resolved against the project root (the folder holding
``pyproject.toml``) when relative, so the CLI, Dagster and tests agree on where
data lives whatever the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent

ENV_RAW_DIR = "OFFSHORING_RAW_DIR"
ENV_DB = "OFFSHORING_DB"
ENV_REPORTS_DIR = "OFFSHORING_REPORTS_DIR"
ENV_CONFIG_DIR = "OFFSHORING_CONFIG_DIR"
ENV_PSEUDONYM_KEY = "OFFSHORING_PSEUDONYM_KEY"
ENV_PSEUDONYM_KEY_FILE = "OFFSHORING_PSEUDONYM_KEY_FILE"
ENV_SYNTHETIC = "OFFSHORING_SYNTHETIC"


class SettingError(ValueError):
    """A setting (environment variable or config file) that cannot be used as given."""


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
    value = os.environ.get(env) or default
    p = Path(value).expanduser()
    return p if p.is_absolute() else (PROJECT_ROOT / p)


def raw_dir() -> Path:
    return _path(ENV_RAW_DIR, "data/raw")


def db_path() -> Path:
    return _path(ENV_DB, "data/warehouse.duckdb")


def reports_dir() -> Path:
    return _path(ENV_REPORTS_DIR, "reports")


def dagster_home() -> Path:
    return _path("DAGSTER_HOME", ".dagster_home")


def config_dir() -> Path:
    """Folder of YAML specs and thresholds; `OFFSHORING_CONFIG_DIR` overrides it.

    A user folder need not hold every file: a file missing there is taken from
    the project's own ``config/``.
    """
    return _path(ENV_CONFIG_DIR, "config")


def defaults_config_dir() -> Path:
    """The folder of the default YAML files (the only place a default is written)."""
    return PROJECT_ROOT / "config"


def config_file(name: str) -> Path:
    user = config_dir() / name
    if user.exists():
        return user
    default = PROJECT_ROOT / "config" / name
    if default.exists():
        return default
    raise FileNotFoundError(
        f"config file {name!r} not found in {config_dir()} nor in {PROJECT_ROOT / 'config'}"
    )


def load_config(name: str) -> dict[str, Any]:
    """Read a YAML file from the config folder (see `config_dir`)."""
    path = config_file(name)
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


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
