"""Model fits stored in DuckDB, so reports read results the model assets wrote.

``models.coefficients`` has one row per model and term (estimate, standard error,
z, p-value, 95% interval and, on synthetic data, the true value and whether the
interval covers it); ``models.fit_stats`` one row per model and statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import duckdb
import pandas as pd

from offshoring.econometrics._summary import wald_interval

COEF_DDL = """
CREATE TABLE IF NOT EXISTS models.coefficients (
    model VARCHAR, term VARCHAR, position INTEGER, estimate DOUBLE, std_error DOUBLE,
    z DOUBLE, p_value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, true_value DOUBLE, covered BOOLEAN
)"""
STATS_DDL = "CREATE TABLE IF NOT EXISTS models.fit_stats (model VARCHAR, stat VARCHAR, value DOUBLE, text VARCHAR)"


@dataclass
class StoredFit:
    """statsmodels-like view of a stored fit: params, bse, pvalues, nobs, ngroups."""

    model: str
    params: pd.Series
    bse: pd.Series
    pvalues: pd.Series
    nobs: int
    ngroups: int | None  # None: the fit has no groups (an unclustered Cox fit), never 0
    stats: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, float] = field(default_factory=dict)


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def write_fit(con: duckdb.DuckDBPyConnection, model: str, params: pd.Series, bse: pd.Series,
              pvalues: pd.Series, *, nobs: int, ngroups: int | None, stats: Mapping[str, Any] | None = None,
              truth: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Replace the model's rows in both tables (one transaction); returns the coefficient frame."""
    truth = dict(truth or {})
    rows = []
    for i, term in enumerate(params.index):
        b, se = _f(params[term]), _f(bse.get(term))
        lo, hi = wald_interval(b, se) if b is not None and se is not None else (None, None)
        tv = _f(truth.get(term))
        rows.append({
            "model": model, "term": str(term), "position": i, "estimate": b, "std_error": se,
            "z": (b / se) if b is not None and se else None, "p_value": _f(pvalues.get(term)),
            "ci_low": lo, "ci_high": hi, "true_value": tv,
            "covered": (lo <= tv <= hi) if tv is not None and lo is not None else None,
        })
    coef = pd.DataFrame(rows)
    stat_rows = [{"model": model, "stat": "nobs", "value": float(nobs), "text": None},
                 {"model": model, "stat": "ngroups", "value": None if ngroups is None else float(ngroups),
                  "text": None}]
    for k, v in (stats or {}).items():
        fv = _f(v) if not isinstance(v, str) else None
        stat_rows.append({"model": model, "stat": k, "value": fv,
                          "text": None if fv is not None else str(v)})
    st = pd.DataFrame(stat_rows)
    con.execute("CREATE SCHEMA IF NOT EXISTS models")
    con.execute(COEF_DDL)
    con.execute(STATS_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM models.coefficients WHERE model = ?", [model])
        con.execute("DELETE FROM models.fit_stats WHERE model = ?", [model])
        con.register("_coef", coef)
        con.register("_stats", st)
        con.execute("INSERT INTO models.coefficients SELECT model, term, position, estimate, "
                    "std_error, z, p_value, ci_low, ci_high, true_value, covered FROM _coef")
        con.execute("INSERT INTO models.fit_stats SELECT model, stat, value, text FROM _stats")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("_coef", "_stats"):
            try:
                con.unregister(name)
            except Exception:
                pass
    return coef


def read_fit(con: duckdb.DuckDBPyConnection, model: str) -> StoredFit:
    coef = con.execute("SELECT term, estimate, std_error, p_value, true_value FROM models.coefficients "
                       "WHERE model = ? ORDER BY position", [model]).fetchdf()
    if coef.empty:
        raise LookupError(f"no stored fit for model {model!r}: materialize it first")
    stats_rows = con.execute("SELECT stat, value, text FROM models.fit_stats WHERE model = ?",
                             [model]).fetchall()
    stats = {s: (t if v is None else v) for s, v, t in stats_rows}
    idx = coef["term"].tolist()
    truth = {t: v for t, v in zip(idx, coef["true_value"]) if pd.notna(v)}
    return StoredFit(
        model=model,
        params=pd.Series(coef["estimate"].to_numpy(), index=idx),
        bse=pd.Series(coef["std_error"].to_numpy(), index=idx),
        pvalues=pd.Series(coef["p_value"].to_numpy(), index=idx),
        nobs=int(stats["nobs"]),
        ngroups=None if stats.get("ngroups") is None else int(stats["ngroups"]),
        stats=stats, truth=truth,
    )


def restamp(con: Any, model: str, stats: Mapping[str, Any]) -> None:
    """Replace some statistics of a stored fit (text values), in one transaction: a fit reused
    because its inputs and model settings are unchanged is recorded as valid under the current
    specification (`offshoring.variants.fit_spec_record`), so a report does not refuse it."""
    if not stats:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for stat, text in stats.items():
            con.execute("DELETE FROM models.fit_stats WHERE model = ? AND stat = ?", [model, stat])
            con.execute("INSERT INTO models.fit_stats VALUES (?, ?, NULL, ?)", [model, stat, str(text)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
