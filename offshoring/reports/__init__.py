"""Report library: disclosure control, tables, figures, provenance, index page.

Pure library code (no Dagster). Assets call, in order: a builder (`tables`,
`figures`) that reads cell aggregates from DuckDB, `sdc.protect`, a writer
(`render.write_table`, `figures.write_figure`) that runs `sdc.assert_safe` before
writing, and finally `html.write_index`.
"""

from __future__ import annotations

from typing import Any

from offshoring import settings

CONFIG_FILE = "reports.yaml"


def load_report_config() -> dict[str, Any]:
    """``config/reports.yaml`` (or the user's copy under ``OFFSHORING_CONFIG_DIR``)."""
    return settings.load_config(CONFIG_FILE)
