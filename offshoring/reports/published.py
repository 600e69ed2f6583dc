"""The values Canello & Pavone publish, copied from the paper: Table 1, the few shares of
Figure 1 given in the text, and the estimates of Tables 2 and 3.

The paper writes numbers the Italian way (``117.505`` is 117,505; ``2.333.955`` is
2,333,955). Table 3 prints ``0..981`` for the share of outsourcing costs, a typo for
0.981, and gives hazard ratios with stars only: no standard errors, no observation or
group counts. Observations (117,505) and groups (17,338) are printed under Table 2.
Figure 1 is a bar chart without numbers; the text (section 3.2) gives two of its bars:
"only 4% of clothing firms and 2% of footwear producer[s]" invest in North Africa.
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


# Table 1 (average values over 2007-2012): (statistic, "sector:type") -> value. The
# cells the paper leaves empty (a statistic not collected for that type) are absent.
TABLE1: dict[tuple[str, str], float] = {
    ("n_firms", "clothing:outsourcing"): 486, ("n_firms", "clothing:offshoring"): 322,
    ("n_firms", "footwear:outsourcing"): 255, ("n_firms", "footwear:offshoring"): 105,
    ("duration", "clothing:outsourcing"): 3.02, ("duration", "clothing:offshoring"): 3.86,
    ("duration", "footwear:outsourcing"): 2.81, ("duration", "footwear:offshoring"): 4.11,
    ("turnover", "clothing:outsourcing"): 2_333_955, ("turnover", "clothing:offshoring"): 41_626_846,
    ("turnover", "footwear:outsourcing"): 2_886_648, ("turnover", "footwear:offshoring"): 45_109_899,
    ("employees", "clothing:outsourcing"): 12.23, ("employees", "clothing:offshoring"): 168,
    ("employees", "footwear:outsourcing"): 17.23, ("employees", "footwear:offshoring"): 165,
    ("export_share", "clothing:outsourcing"): 18.35, ("export_share", "footwear:outsourcing"): 36.00,
    ("subcontracting_abroad", "clothing:outsourcing"): 684_464,
    ("subcontracting_abroad", "footwear:outsourcing"): 293_064,
    ("subcontracting_italy", "clothing:outsourcing"): 324_555,
    ("subcontracting_italy", "footwear:outsourcing"): 275_670,
    ("n_subsidiaries", "clothing:offshoring"): 2.31, ("n_subsidiaries", "footwear:offshoring"): 2.68,
    ("district_share", "clothing:outsourcing"): 22, ("district_share", "footwear:outsourcing"): 47,
}
TABLE1_PERIOD = (2007, 2012)

# Figure 1 (2008), bars the text gives: (region, "sector:type") -> % of firms.
FIGURE1: dict[tuple[str, str], float] = {
    ("north_africa", "clothing:offshoring"): 4.0,
    ("north_africa", "footwear:offshoring"): 2.0,
}
FIGURE1_YEAR = 2008
