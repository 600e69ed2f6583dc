"""Resources: the DuckDB warehouse and the folders the pipeline reads and writes."""


import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import dagster as dg
import duckdb

from pydantic import PrivateAttr

from offshoring import settings
from offshoring.spec import StudySpec, load_study_spec


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file. One connection per asset; writes run in a pool of one.

    DuckDB allows a single writing process per file, so every asset that opens
    the file declares ``pool=WRITER_POOL`` and the instance limits that pool to
    one step at a time across all runs (``orchestration/instance/dagster.yaml``).
    A lock held by anything else is waited for, up to ``lock_timeout_s``.
    """

    database: str
    # Seconds to wait for the file lock when another process (a notebook, a run of
    # another instance) holds the file; the pool already serialises our own runs.
    lock_timeout_s: float = 300.0

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _connect_waiting(str(path), read_only, self.lock_timeout_s)
        try:
            yield con
        finally:
            con.close()


def _connect_waiting(path: str, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class Folders(dg.ConfigurableResource):
    """Where raw files are read and reports written, and what the raw files are.

    `synthetic` is the demo mode, asked for explicitly (``offshoring demo``,
    ``OFFSHORING_SYNTHETIC=1``): the raw folder must then hold the generator's files,
    unchanged, and the public demo key pseudonymises them. Off, the files are real and
    the user's key is required.
    """

    raw_dir: str
    reports_dir: str
    synthetic: bool = False

    @property
    def origin(self) -> str:
        return "synthetic" if self.synthetic else "real"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # every run that reads the folders says which data it used, the UI's "Materialize"
        # runs too (the command line, the sensors and the schedule tag theirs when they launch)
        run = getattr(context, "dagster_run", None)
        instance = getattr(context, "instance", None)
        if run is None or instance is None or run.tags.get(DATA_TAG) == self.origin:
            return
        try:
            instance.add_run_tags(run.run_id, {DATA_TAG: self.origin})
        except Exception as exc:  # noqa: BLE001 - a tag must never fail the run; the log says it
            context.log.warning(f"could not tag the run {DATA_TAG}={self.origin}: {exc}")

    @property
    def raw(self) -> Path:
        return Path(self.raw_dir)

    @property
    def reports(self) -> Path:
        return Path(self.reports_dir)


#: the run tag saying whether a run works on synthetic or real data (shown in the UI's run lists)
DATA_TAG = "offshoring/data"


def data_tags(folders: "Folders") -> dict[str, str]:
    """``{"offshoring/data": "synthetic" | "real"}``: every run the CLI, the sensors or the
    schedule launch carries it, so the UI's run list and run pages say which data a run used."""
    return {DATA_TAG: folders.origin}


class Study(dg.ConfigurableResource):
    """The study specification (`offshoring.spec.StudySpec`), read and checked once per step.

    `config_dir` is the user's folder of YAML files (``OFFSHORING_CONFIG_DIR``); every
    file or key it lacks comes from the project's defaults.
    """

    config_dir: str | None = None
    _spec: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._spec = load_study_spec(self.config_dir)

    @property
    def spec(self) -> StudySpec:
        if self._spec is None:
            self._spec = load_study_spec(self.config_dir)
        return self._spec


WRITER_POOL = "duckdb_writer"


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment settings (read when definitions load)."""
    return {
        "warehouse": Warehouse(database=str(settings.db_path())),
        "folders": Folders(
            raw_dir=str(settings.raw_dir()), reports_dir=str(settings.reports_dir()),
            synthetic=settings.synthetic(),
        ),
        "study": Study(config_dir=str(settings.config_dir()) if settings.config_dir() else None),
    }
