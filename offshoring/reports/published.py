"""The estimates Canello & Pavone publish in Tables 2 and 3, copied from the paper.

The paper writes numbers the Italian way (``117.505`` is 117,505). Table 3 prints
``0..981`` for the share of outsourcing costs, a typo for 0.981, and gives hazard
ratios with stars only: no standard errors, no observation or group counts.
Observations (117,505) and groups (17,338) are printed under Table 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PublishedEstimate:
    value: float
    se: float | None
    stars: str


@dataclass(frozen=True)
class PublishedTable:
    name: str
    scale: str  # "coefficient" | "hazard_ratio"
    estimates: dict[str, PublishedEstimate] = field(default_factory=dict)
    nobs: int | None = None
    ngroups: int | None = None


def _e(value: float, se: float | None, stars: str = "") -> PublishedEstimate:
    return PublishedEstimate(value, se, stars)


# Table 2. Dynamic probit (random effects): probability of offshore outsourcing.
TABLE2 = PublishedTable(
    name="table2",
    scale="coefficient",
    estimates={
        "y_initial": _e(0.527, 0.039, "***"),
        "y_lag": _e(2.531, 0.032, "***"),
        "export_ratio_lag": _e(-0.019, 0.050),
        "market_area_order_lag": _e(0.132, 0.037, "***"),
        "credit_access_lag": _e(0.095, 0.058),
        "va_per_employee_k_lag": _e(0.001, 0.000, "***"),
        "supplier_lag": _e(0.094, 0.063),
        "district": _e(-0.055, 0.035),
        "n_offshoring_prov_lag": _e(-0.011, 0.010),
        "n_outsourcing_prov_lag": _e(0.018, 0.002, "***"),
    },
    nobs=117_505,
    ngroups=17_338,
)

# Table 3. Cox proportional hazards: hazard ratios of backshoring.
TABLE3 = PublishedTable(
    name="table3",
    scale="hazard_ratio",
    estimates={
        "share_destination": _e(0.981, None, "***"),  # printed "0..981"
        "supplier": _e(1.199, None, "**"),
        "profit": _e(0.643, None, "***"),
        "export_share_pre": _e(1.000, None),
        "wage_per_employee_k": _e(0.990, None, "***"),
        "roi": _e(1.000, None, "***"),
        "employees": _e(0.984, None, "***"),
        "n_outsourcing_prov_pre": _e(0.994, None, "***"),
        "n_migrant_prov_lag": _e(1.000, None, "*"),
    },
)

PUBLISHED = {"table2": TABLE2, "table3": TABLE3}
