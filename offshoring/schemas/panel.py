"""pandera (polars) schema of the firm-year panel, checked before it is written."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

SECTORS = ["clothing", "footwear"]
MACRO_AREAS = ["North-West", "North-East", "Centre", "South", "Islands"]
MARKET_AREAS = ["local", "provincial", "regional", "national", "international"]
NONNEG = [
    "turnover", "employees", "wage_costs", "subcontracting_italy", "subcontracting_europe",
    "subcontracting_north_africa", "subcontracting_east_asia", "subcontracting_other",
    "subcontracting_abroad",
]
FLAGS = [
    "credit_access", "high_value_added", "supplier", "outsourcing", "outsourcing_europe",
    "outsourcing_north_africa", "outsourcing_east_asia", "outsourcing_other", "profit",
    "foreign_owner",
]
SHARES = ["share_europe", "share_north_africa", "share_east_asia", "share_other"]


def _columns() -> dict[str, pa.Column]:
    cols: dict[str, pa.Column] = {
        "firm_id": pa.Column(str, pa.Check.str_matches(r"^[0-9a-f]{64}$"), nullable=False),
        "year": pa.Column(pl.Int32, pa.Check.in_range(1990, 2100), nullable=False),
        "sector": pa.Column(str, pa.Check.isin(SECTORS), nullable=False),
        "province": pa.Column(str, nullable=False),
        "macro_area": pa.Column(str, pa.Check.isin(MACRO_AREAS), nullable=False),
        "market_area_order": pa.Column(pl.Int8, pa.Check.in_range(1, 5), nullable=True),
        "export_share": pa.Column(float, pa.Check.in_range(0, 100), nullable=True),
        "export_ratio": pa.Column(float, pa.Check.in_range(0, 1), nullable=True),
        "district": pa.Column(pl.Int8, pa.Check.isin([0, 1]), nullable=True),
    }
    for c in NONNEG:
        cols[c] = pa.Column(float, pa.Check.ge(0), nullable=True)
    for c in FLAGS:
        cols[c] = pa.Column(pl.Int8, pa.Check.isin([0, 1]), nullable=True)
    for c in SHARES:
        cols[c] = pa.Column(float, pa.Check.in_range(0, 100.000001), nullable=True)
    return cols


FIRM_YEAR_SCHEMA = pa.DataFrameSchema(
    _columns(),
    unique=["firm_id", "year"],
    strict=False,
    coerce=False,
    name="panel.firm_years",
)


@dataclass
class PanelValidation:
    passed: bool
    n_rows: int
    failures: list[dict]  # rule, column, n_failing, rows (delivery file and data row; never values)

    def summary(self) -> str:
        if self.passed:
            return f"{self.n_rows} rows pass every rule"
        lines = [f"{len(self.failures)} rule(s) fail (the panel has {self.n_rows:,} rows; the failing rows, counted per rule, are below):"]
        for f in self.failures:
            lines.append(
                f"- column {f['column']!r}, rule {f['rule']}: {f['n_failing']} row(s), "
                f"first: {', '.join(str(r) for r in f['rows'])}"
            )
        return "\n".join(lines)


def _where(df: pl.DataFrame, i: int) -> str | int:
    """Where a panel row came from: the delivery file and its data row, when the panel has them."""
    if "source_file" in df.columns and "source_row" in df.columns and 0 <= i < df.height:
        return f"{df['source_file'][i]} row {df['source_row'][i]}"
    return i


def validate_panel(df: pl.DataFrame) -> PanelValidation:
    """Check every rule lazily and report which rows break which rule.

    Rows are reported by the delivery file and data row they came from (``source_file``,
    ``source_row``; a frame without them by position), never by firm identifiers or
    firm-level values.
    """
    try:
        FIRM_YEAR_SCHEMA.validate(df, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        if not isinstance(cases, pl.DataFrame):
            cases = pl.from_pandas(cases)
        failures = []
        group_cols = [c for c in ("column", "check") if c in cases.columns]
        for key, grp in cases.group_by(group_cols, maintain_order=True):
            col, rule = (list(key) + [None, None])[:2]
            idx = [] if "index" not in grp.columns else [
                int(i) for i in grp["index"].drop_nulls().head(5).to_list()
            ]
            rows = [_where(df, i) for i in idx]
            failures.append({"column": col, "rule": str(rule), "n_failing": grp.height,
                             "rows": rows})
        return PanelValidation(False, df.height, failures)
    return PanelValidation(True, df.height, [])
