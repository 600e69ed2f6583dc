"""The panel stage: runs the SQL files under sql/ in order, with the settings SQL cannot read.

Settings come in as arguments (the study specification's `Thresholds`), never from a file.
"""

from __future__ import annotations

import duckdb

from offshoring.spec import Thresholds
from offshoring.sqlfiles import run_sql


def register_ceilings(con: duckdb.DuckDBPyConnection, ceilings: dict[int, float]) -> None:
    """A temp table ``_ceiling(year, ceiling)`` the panel SQL joins on."""
    con.execute("CREATE OR REPLACE TEMP TABLE _ceiling (year INTEGER, ceiling DOUBLE)")
    if ceilings:
        con.executemany("INSERT INTO _ceiling VALUES (?, ?)", sorted(ceilings.items()))


class PanelSchemaError(ValueError):
    """The panel breaks its pandera schema; nothing was written."""

    def __init__(self, message: str, failures: list[dict] | None = None):
        super().__init__(message)
        self.failures = list(failures or [])


def _ceilings(con: duckdb.DuckDBPyConnection, thresholds: Thresholds) -> dict[int, float]:
    years = [r[0] for r in con.execute(
        "SELECT DISTINCT year FROM raw.survey_returns "
        "UNION SELECT DISTINCT year FROM raw.aida_firm_years").fetchall()]
    ceilings = thresholds.ceilings(years)
    register_ceilings(con, ceilings)
    return ceilings


def _survey_ranked(con: duckdb.DuckDBPyConnection, thresholds: Thresholds) -> dict[int, float]:
    ceilings = _ceilings(con, thresholds)
    run_sql(con, "panel_survey_latest")
    return ceilings


def build_firm_years(con: duckdb.DuckDBPyConnection, thresholds: Thresholds):
    """panel.survey_rejects and panel.firm_years, validated before they are committed.

    Returns (ceilings by year, validation). Raises PanelSchemaError (after a
    rollback: the previous panel stays) when the panel breaks its schema.
    """

    ceilings = _survey_ranked(con, thresholds)
    con.execute("BEGIN TRANSACTION")
    try:
        run_sql(con, "panel_survey_rejects")
        run_sql(con, "panel_firm_years")
        validation = _validate_by_year(con)
        if not validation.passed:
            raise PanelSchemaError("panel.firm_years breaks its schema; nothing written.\n"
                                   + validation.summary(), validation.failures)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return ceilings, validation


def _validate_by_year(con: duckdb.DuckDBPyConnection):
    """The panel's schema checked one year at a time (the key includes the year, so
    uniqueness is checked in full), holding one year in memory instead of the panel."""
    from offshoring.schemas.panel import PanelValidation, validate_panel

    years = [r[0] for r in con.execute("SELECT DISTINCT year FROM panel.firm_years ORDER BY 1").fetchall()]
    failures, n = [], 0
    for year in years:
        part = validate_panel(con.sql(f"SELECT * FROM panel.firm_years WHERE year = {int(year)} "
                                      "ORDER BY firm_id").pl())
        n += part.n_rows
        for f in part.failures:
            failures.append({**f, "column": f"{f['column']} (year {year})"})
    return PanelValidation(not failures, n, failures)


def build_aida_offshoring(con: duckdb.DuckDBPyConnection, thresholds: Thresholds) -> None:
    """panel.aida_large (AIDA firm-years with their dedup outcome) and panel.aida_offshoring."""
    _ceilings(con, thresholds)
    run_sql(con, "panel_aida_large")
    run_sql(con, "panel_aida_offshoring", {"ownership_pct": float(thresholds.offshoring_ownership_pct)})


def build_model_panel(con: duckdb.DuckDBPyConnection, leave_one_out: bool) -> None:
    run_sql(con, "panel_model_panel", {"leave_one_out": bool(leave_one_out)})


def build_spells(con: duckdb.DuckDBPyConnection) -> None:
    run_sql(con, "panel_outsourcing_spells")


def build_spell_years(con: duckdb.DuckDBPyConnection) -> None:
    run_sql(con, "panel_spell_years")
