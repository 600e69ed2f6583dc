"""Settings of the panel stage that SQL cannot read by itself."""

from __future__ import annotations

from typing import Any, Iterable

import duckdb

from offshoring.settings import load_config


def turnover_ceilings(years: Iterable[int], thresholds: dict[str, Any] | None = None) -> dict[int, float]:
    """The survey's turnover ceiling for each year (config/thresholds.yaml).

    ``turnover_ceiling: {default: 7500000, by_year: {2005: 5164569, ...}}``
    """
    cfg = thresholds if thresholds is not None else load_config("thresholds.yaml")
    spec = cfg.get("turnover_ceiling", 7_500_000)
    if isinstance(spec, (int, float)):
        return {int(y): float(spec) for y in years}
    default = float(spec.get("default", 7_500_000))
    by_year = {int(k): float(v) for k, v in (spec.get("by_year") or {}).items()}
    return {int(y): by_year.get(int(y), default) for y in years}


def register_ceilings(con: duckdb.DuckDBPyConnection, ceilings: dict[int, float]) -> None:
    """A temp table ``_ceiling(year, ceiling)`` the panel SQL joins on."""
    con.execute("CREATE OR REPLACE TEMP TABLE _ceiling (year INTEGER, ceiling DOUBLE)")
    if ceilings:
        con.executemany("INSERT INTO _ceiling VALUES (?, ?)", sorted(ceilings.items()))
