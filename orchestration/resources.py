"""Resources: the DuckDB warehouse and the folders the pipeline reads and writes."""


from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

from offshoring import settings


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file. One connection per asset; writes run in a pool of one.

    DuckDB allows a single writing process per file, so every asset that
    writes declares ``pool=WRITER_POOL`` and the instance limits that pool to
    one run step at a time (see ``orchestration/instance/dagster.yaml``).
    """

    database: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


class Folders(dg.ConfigurableResource):
    """Where raw files are read, reports written and YAML settings found."""

    raw_dir: str
    reports_dir: str

    @property
    def raw(self) -> Path:
        return Path(self.raw_dir)

    @property
    def reports(self) -> Path:
        return Path(self.reports_dir)


WRITER_POOL = "duckdb_writer"


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment settings (read when definitions load)."""
    return {
        "warehouse": Warehouse(database=str(settings.db_path())),
        "folders": Folders(
            raw_dir=str(settings.raw_dir()), reports_dir=str(settings.reports_dir())
        ),
    }
