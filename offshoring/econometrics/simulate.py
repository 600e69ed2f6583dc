"""Data simulated from the two models with known coefficients.

Used by the recovery tests, the Monte Carlo script and the benchmark. The
frames have the columns and names of ``panel.firm_years`` and
``panel.spell_years`` (docs/warehouse.md), so they go through the same spec
builders as the real data, and the true parameters are keyed by the estimators'
column names.

* `simulate_firm_years`: a firm-year panel in which the dynamic probit with
  Wooldridge/Rabe-Hesketh-Skrondal initial conditions is exactly the true
  conditional model: the firm effect is a linear function of the means of the
  lagged covariates over the estimation years and of their initial values, plus
  an independent normal term.
* `simulate_spell_years`: spells of offshore outsourcing by destination, one row
  per spell-year in (start, stop] form, with time-varying covariates, several
  spells per firm and events recorded at the end of the year (annual ties), from
  a continuous-time proportional-hazards model with a piecewise-constant
  baseline.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special

MACRO_AREAS = ["North-West", "North-East", "Centre", "South", "Islands"]
AREA_DUMMIES = ["area_north_east", "area_centre", "area_south", "area_islands"]
FIRM_COVARIATES = ["export_ratio", "market_area_order", "credit_access", "va_per_employee_k", "supplier"]

# Table 2 of Canello & Pavone for the reported coefficients; the rest chosen so that
# about 5% of firm-years outsource, near the paper (741 of ~17,000 firms a year).
PROBIT_TRUTH = {
    "const": -5.0,
    "y_initial": 0.527,
    "y_lag": 2.531,
    "export_ratio_lag": -0.019,
    "market_area_order_lag": 0.132,
    "credit_access_lag": 0.095,
    "va_per_employee_k_lag": 0.001,
    "supplier_lag": 0.094,
    "district": -0.055,
    "n_offshoring_prov_lag": -0.011,
    "n_outsourcing_prov_lag": 0.018,
    "footwear": 0.10,
    "area_north_east": 0.05,
    "area_centre": 0.05,
    "area_south": 0.15,
    "area_islands": -0.10,
    "mean_export_ratio_lag": 0.60,
    "init_export_ratio": 0.15,
    "mean_market_area_order_lag": 0.18,
    "init_market_area_order": 0.05,
    "mean_credit_access_lag": 0.30,
    "init_credit_access": 0.05,
    "mean_va_per_employee_k_lag": 0.008,
    "init_va_per_employee_k": 0.002,
    "mean_supplier_lag": -0.25,
    "init_supplier": -0.05,
    "lnsig2u": float(np.log(0.55**2)),
}

# Table 3 hazard ratios (log scale) per unit of the simulated covariates.
COX_TRUTH = {
    "share_destination": float(np.log(0.981)),
    "supplier": float(np.log(1.199)),
    "profit": float(np.log(0.643)),
    "export_share_pre": float(np.log(1.000)),
    "wage_per_employee_k": float(np.log(0.990)),
    "roi": float(np.log(0.998)),
    "employees": float(np.log(0.984)),
    "n_outsourcing_prov_pre": float(np.log(0.994)),
    "n_migrant_prov_lag": float(np.log(1.001)),
    "footwear": 0.10,
    "area_north_east": -0.05,
    "area_centre": 0.05,
    "area_south": 0.15,
    "area_islands": 0.10,
}


def _firm_ids(n: int, prefix: str = "f") -> np.ndarray:
    return np.array([f"{prefix}{i:06d}" for i in range(n)])


def simulate_firm_years(
    n_firms: int = 2000,
    seed: int = 0,
    first_year: int = 2005,
    last_year: int = 2012,
    late_entry_share: float = 0.15,
    n_provinces: int = 100,
    truth: dict[str, float] | None = None,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Firm-year panel with an outcome from the dynamic RE probit; (frame, true params).

    Firms enter in ``first_year`` or, with probability ``late_entry_share``, in a
    later year (at least two years before ``last_year``), and stay to
    ``last_year`` without gaps. The default estimation sample (years after each
    firm's first year) then has the true parameters ``truth``.
    """
    rng = np.random.default_rng(seed)
    b = dict(PROBIT_TRUTH if truth is None else truth)
    years = np.arange(first_year, last_year + 1)
    T = years.size
    n = n_firms

    entry = np.where(
        rng.random(n) < late_entry_share,
        rng.integers(first_year + 1, last_year - 1, size=n),
        first_year,
    )
    present = years[None, :] >= entry[:, None]  # (n, T)
    tau = rng.standard_normal(n)  # firm type: moves covariate means and the initial outcome
    footwear = (rng.random(n) < 0.33).astype(float)
    area = rng.choice(5, size=n, p=[0.2, 0.25, 0.3, 0.2, 0.05])
    district = (rng.random(n) < 0.3 + 0.1 * footwear).astype(float)
    province = rng.integers(0, n_provinces, size=n)

    def ar1(sd_e: float, rho: float) -> np.ndarray:
        e = rng.standard_normal((n, T)) * sd_e
        out = np.empty((n, T))
        out[:, 0] = e[:, 0] / np.sqrt(1 - rho**2)
        for j in range(1, T):
            out[:, j] = rho * out[:, j - 1] + e[:, j]
        return out

    export_ratio = np.clip(0.2 + 0.08 * tau[:, None] + ar1(0.06, 0.7), 0.0, 1.0)
    market_area = np.clip(np.rint(3 + 0.7 * tau[:, None] + ar1(0.5, 0.8)), 1, 5)
    credit = (0.3 + 0.3 * tau[:, None] + ar1(0.6, 0.7) > 0).astype(float)
    va = 40 + 8 * tau[:, None] + ar1(5.0, 0.6)
    supplier = np.empty((n, T))
    supplier[:, 0] = rng.random(n) < special.ndtr(-0.3 - 0.3 * tau)
    for j in range(1, T):
        flip = rng.random(n) < 0.1
        supplier[:, j] = np.where(flip, 1 - supplier[:, j - 1], supplier[:, j - 1])
    X = {
        "export_ratio": export_ratio,
        "market_area_order": market_area,
        "credit_access": credit,
        "va_per_employee_k": va,
        "supplier": supplier,
    }
    # province counts (already "lagged" in the panel's sense)
    lam_out = rng.gamma(2.0, 6.0, size=n_provinces)
    lam_off = rng.gamma(1.5, 2.0, size=n_provinces)
    n_out = rng.poisson(lam_out[:, None] * np.exp(0.05 * (years - first_year))[None, :])
    n_off = rng.poisson(np.repeat(lam_off[:, None], T, axis=1))
    n_out_f = n_out[province].astype(float)
    n_off_f = n_off[province].astype(float)

    # initial outcome in the entry year
    e_idx = entry - first_year
    rows = np.arange(n)
    x0 = {v: X[v][rows, e_idx] for v in FIRM_COVARIATES}
    index0 = (
        -2.4 + 0.5 * x0["export_ratio"] + 0.1 * x0["market_area_order"] + 0.15 * x0["credit_access"]
        + 0.004 * x0["va_per_employee_k"] - 0.2 * x0["supplier"] + 0.1 * footwear + 0.35 * tau
    )
    y0 = (index0 + rng.standard_normal(n) > 0).astype(float)

    # Wooldridge/RHS random effect: means of x_{t-1} over estimation years (entry+1..last),
    # i.e. of x over entry..last-1, and initial values
    lag_mask = present[:, :-1]
    a = rng.standard_normal(n) * np.exp(0.5 * b["lnsig2u"])
    for v in FIRM_COVARIATES:
        vals = X[v][:, :-1]
        mean_lag = (vals * lag_mask).sum(1) / lag_mask.sum(1)
        a += b[f"mean_{v}_lag"] * mean_lag + b[f"init_{v}"] * x0[v]

    static = (
        b["const"] + b["y_initial"] * y0 + b["district"] * district + b["footwear"] * footwear
        + sum(b[d] * (area == k + 1) for k, d in enumerate(AREA_DUMMIES))
        + a
    )
    y = np.full((n, T), np.nan)
    y[rows, e_idx] = y0
    for j in range(1, T):
        idx = (
            static + b["y_lag"] * np.nan_to_num(y[:, j - 1])
            + sum(b[f"{v}_lag"] * X[v][:, j - 1] for v in FIRM_COVARIATES)
            + b["n_offshoring_prov_lag"] * n_off_f[:, j] + b["n_outsourcing_prov_lag"] * n_out_f[:, j]
        )
        draw = (idx + rng.standard_normal(n) > 0).astype(float)
        later = years[j] > entry
        y[later, j] = draw[later]

    fi, tj = np.nonzero(present)
    ids = _firm_ids(n)
    frame = pl.DataFrame(
        {
            "firm_id": ids[fi],
            "year": years[tj].astype(np.int32),
            "outsourcing": y[fi, tj].astype(np.int8),
            **{v: X[v][fi, tj] for v in FIRM_COVARIATES},
            "district": district[fi].astype(np.int8),
            "n_offshoring_prov_lag": n_off_f[fi, tj],
            "n_outsourcing_prov_lag": n_out_f[fi, tj],
            "sector": np.where(footwear[fi] == 1, "footwear", "clothing"),
            "macro_area": np.array(MACRO_AREAS)[area[fi]],
            "province": np.array([f"P{p:03d}" for p in range(n_provinces)])[province[fi]],
        }
    ).with_columns(
        pl.col("market_area_order").cast(pl.Int8),
        pl.col("credit_access").cast(pl.Int8),
        pl.col("supplier").cast(pl.Int8),
    )
    return frame, b


def simulate_spell_years(
    n_firms: int = 1000,
    seed: int = 0,
    first_year: int = 2006,
    last_year: int = 2012,
    baseline: tuple[float, ...] = (0.30, 0.25, 0.22, 0.20, 0.18, 0.18, 0.18),
    truth: dict[str, float] | None = None,
    left_censored_share: float = 0.1,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Spell-year frame from a proportional-hazards model; (frame, true log hazard ratios).

    Each firm has one to three spells in different destinations, starting in a
    random year; spell-year ``k`` covers spell time ``(k-1, k]``. The hazard in
    that year is ``h0_k * exp(x_k' beta)`` with ``x_k`` the covariates of the
    calendar year, and an event is recorded at ``stop = k`` (so events in the same
    spell year tie). Spells still running in ``last_year`` are censored. Some
    spells are flagged left-censored (already running when observed); they follow
    the same model, so excluding them loses only precision.

    ``baseline[k-1]`` is the cumulative baseline hazard of spell year ``k`` for a
    firm at the covariates' reference values (see the centring below).
    """
    rng = np.random.default_rng(seed)
    b = dict(COX_TRUTH if truth is None else truth)
    names = list(COX_TRUTH)
    years = np.arange(first_year, last_year + 1)
    T = years.size
    n = n_firms
    footwear = (rng.random(n) < 0.35).astype(float)
    area = rng.choice(5, size=n, p=[0.15, 0.25, 0.35, 0.2, 0.05])
    size_f = rng.lognormal(2.3, 0.7, size=n)
    wage_f = 22 + 4 * rng.standard_normal(n)
    roi_f = 5 + 6 * rng.standard_normal(n)
    migr_prov = rng.gamma(2.0, 60.0, size=n)
    out_prov = rng.gamma(2.0, 10.0, size=n)
    supplier_f = rng.random(n) < 0.4

    def firm_year(base: np.ndarray, sd: float) -> np.ndarray:
        return base[:, None] + sd * rng.standard_normal((n, T))

    employees = np.maximum(1.0, np.rint(firm_year(size_f, 1.5)))
    wage = firm_year(wage_f, 1.5)
    roi = firm_year(roi_f, 3.0)
    profit = (roi + rng.standard_normal((n, T)) * 3 > 2).astype(float)
    supplier = np.where(rng.random((n, T)) < 0.08, ~supplier_f[:, None], supplier_f[:, None]).astype(float)
    migrants = firm_year(migr_prov, 5.0).clip(0)
    export_pre = np.clip(20 + 15 * rng.standard_normal((n, T)), 0, 100)
    outsourcers_pre = firm_year(out_prov, 2.0).clip(0)

    dests = np.array(["europe", "north_africa", "east_asia", "other"])
    rows: list[dict] = []
    # reference values so that `baseline` is the hazard of a typical spell
    ref = (
        b["share_destination"] * 60 + b["supplier"] * 0.4 + b["profit"] * 0.6
        + b["wage_per_employee_k"] * 22 + b["roi"] * 5 + b["employees"] * 11
        + b["n_outsourcing_prov_pre"] * 20 + b["n_migrant_prov_lag"] * 120
    )
    n_spells = rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])
    for i in range(n):
        chosen = rng.choice(4, size=n_spells[i], replace=False)
        for s_no, d in enumerate(chosen, start=1):
            start_j = int(rng.integers(0, T - 1))
            share = float(np.clip(rng.normal(60, 25), 1, 100))
            left = bool(rng.random() < left_censored_share)
            static = (
                b["footwear"] * footwear[i]
                + sum(b[dn] * (area[i] == k + 1) for k, dn in enumerate(AREA_DUMMIES))
                + b["export_share_pre"] * export_pre[i, start_j]
                + b["n_outsourcing_prov_pre"] * outsourcers_pre[i, start_j]
                - ref
            )
            for k, j in enumerate(range(start_j, T), start=1):
                sh = float(np.clip(share + rng.normal(0, 5), 0, 100))
                eta = static + (
                    b["share_destination"] * sh + b["supplier"] * supplier[i, j] + b["profit"] * profit[i, j]
                    + b["wage_per_employee_k"] * wage[i, j] + b["roi"] * roi[i, j]
                    + b["employees"] * employees[i, j] + b["n_migrant_prov_lag"] * migrants[i, j]
                )
                h0 = baseline[min(k, len(baseline)) - 1]
                event = rng.random() < -np.expm1(-h0 * np.exp(eta))
                rows.append(
                    {
                        "firm_id": f"c{i:06d}",
                        "destination": dests[d],
                        "spell_no": s_no,
                        "year": int(years[j]),
                        "start": k - 1,
                        "stop": k,
                        "event": int(event),
                        "left_censored": left,
                        "share_destination": sh,
                        "supplier": int(supplier[i, j]),
                        "profit": int(profit[i, j]),
                        "export_share_pre": float(export_pre[i, start_j]),
                        "wage_per_employee_k": float(wage[i, j]),
                        "roi": float(roi[i, j]),
                        "employees": float(employees[i, j]),
                        "n_outsourcing_prov_pre": float(outsourcers_pre[i, start_j]),
                        "n_migrant_prov_lag": float(migrants[i, j]),
                        "sector": "footwear" if footwear[i] else "clothing",
                        "macro_area": MACRO_AREAS[area[i]],
                    }
                )
                if event:
                    break
    frame = pl.DataFrame(rows).with_columns(
        pl.col("start").cast(pl.Int32), pl.col("stop").cast(pl.Int32), pl.col("event").cast(pl.Int8)
    )
    return frame, {k: b[k] for k in names}
