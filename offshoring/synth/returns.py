"""Survey returns, one table per fiscal year, in the contract's canonical columns.

A return is written for every panel firm-year and for the year a firm crosses the
turnover ceiling. Some returns are filed twice: the first filing carries slightly
different numbers (sometimes foreign subcontracting booked as Italian, or the reverse)
and the corrected re-filing, filed later, carries the true values.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from offshoring.geo import layout_for_year
from offshoring.synth.firms import MARKET_AREAS, Population

SURVEY_COLUMNS = (
    "tax_code", "year", "filing_date", "ateco_2007", "municipality_code", "turnover", "employees",
    "value_added", "wage_costs", "net_income", "roi", "export_share", "credit_access", "market_area",
    "high_value_added", "supplier", "subcontracting_italy", "subcontracting_europe",
    "subcontracting_north_africa", "subcontracting_east_asia", "subcontracting_other",
)
MONEY = ("turnover", "value_added", "wage_costs", "net_income", "subcontracting_italy",
         "subcontracting_europe", "subcontracting_north_africa", "subcontracting_east_asia",
         "subcontracting_other")
REGION_COLS = ("subcontracting_europe", "subcontracting_north_africa", "subcontracting_east_asia",
               "subcontracting_other")


def survey_tables(rng: np.random.Generator, pop: Population, geo, amounts: dict, cfg: dict) -> tuple[dict[int, pl.DataFrame], dict]:
    pcfg = cfg["population"]
    survey = amounts["survey"]
    cov = pop.cov
    tax = np.array(pop.tax_code, dtype=object)
    ateco = np.array(pop.ateco, dtype=object)
    ateco_nodot = np.array([a.replace(".", "") for a in pop.ateco], dtype=object)
    markets = np.array(MARKET_AREAS, dtype=object)
    dots_until = int(pcfg["ateco_dots_until"])
    tables: dict[int, pl.DataFrame] = {}
    stats = {"refilings": {}, "refilings_flipping_outsourcing": {}, "roi_missing": {}, "returns": {},
             "above_ceiling": {}}
    for k, year in enumerate(pop.years):
        year = int(year)
        rows = np.flatnonzero(survey[:, k])
        layout = layout_for_year(year)
        codes = np.array(geo.muni[layout].to_list(), dtype=object)
        nr = len(rows)
        origin = dt.date(year + 1, 5, 2)
        df = pl.DataFrame({
            "tax_code": pl.Series(tax[rows], dtype=pl.Utf8),
            "year": pl.Series(np.full(nr, year), dtype=pl.Int64),
            "filing_date": pl.Series([origin + dt.timedelta(days=int(d)) for d in rng.integers(0, 183, nr)], dtype=pl.Date),
            "ateco_2007": pl.Series((ateco if year <= dots_until else ateco_nodot)[rows], dtype=pl.Utf8),
            "municipality_code": pl.Series(codes[pop.muni[rows]], dtype=pl.Utf8),
            "turnover": amounts["turnover"][rows, k],
            "employees": cov["employees"][rows, k],
            "value_added": cov["value_added"][rows, k],
            "wage_costs": cov["wage_costs"][rows, k],
            "net_income": cov["net_income"][rows, k],
            "roi": cov["roi"][rows, k],
            "export_share": cov["export_share"][rows, k],
            "credit_access": cov["credit_access"][rows, k].astype(np.int64),
            "market_area": pl.Series(markets[cov["market_area_order"][rows, k] - 1], dtype=pl.Utf8),
            "high_value_added": cov["high_value_added"][rows, k].astype(np.int64),
            "supplier": cov["supplier"][rows, k].astype(np.int64),
            "subcontracting_italy": amounts["italy"][rows, k],
            "subcontracting_europe": amounts["by_region"][rows, k, 0],
            "subcontracting_north_africa": amounts["by_region"][rows, k, 1],
            "subcontracting_east_asia": amounts["by_region"][rows, k, 2],
            "subcontracting_other": amounts["by_region"][rows, k, 3],
        })
        roi_na = rng.random(nr) < float(pcfg["roi_missing_rate"])
        df = df.with_columns(pl.when(pl.Series(roi_na)).then(None).otherwise(pl.col("roi")).alias("roi"))
        df = df.with_columns(*(pl.col(c).cast(pl.Int64) for c in MONEY))
        stats["roi_missing"][year] = int(roi_na.sum())
        stats["above_ceiling"][year] = int((df["turnover"] > pop.ceiling[k]).sum())
        # corrected re-filings: never for the above-ceiling return of a crossing firm
        in_panel = pop.in_panel()[rows, k]
        refile = (rng.random(nr) < float(pcfg["refiling_rate"])) & in_panel
        orig = df.filter(pl.Series(refile))
        m = orig.height
        if m:
            f = lambda lo, hi: pl.Series(rng.uniform(lo, hi, m))  # noqa: E731
            first_date = [origin + dt.timedelta(days=int(d)) for d in rng.integers(0, 150, m)]
            later = [d + dt.timedelta(days=int(x)) for d, x in zip(first_date, rng.integers(10, 240, m))]
            flip = rng.random(m) < 0.15
            abroad = orig.select(pl.sum_horizontal(*REGION_COLS)).to_series()
            ceiling = float(pop.ceiling[k])
            orig = orig.with_columns(
                pl.Series("filing_date", first_date, dtype=pl.Date),
                pl.min_horizontal(pl.col("turnover") * f(0.93, 1.07), pl.lit(0.999 * ceiling)).round(0).cast(pl.Int64).alias("turnover"),
                (pl.col("value_added") * f(0.93, 1.07)).round(0).cast(pl.Int64).alias("value_added"),
                (pl.col("wage_costs") * f(0.95, 1.05)).round(0).cast(pl.Int64).alias("wage_costs"),
                (pl.col("net_income") * f(0.85, 1.15)).round(0).cast(pl.Int64).alias("net_income"),
                (pl.col("employees") * f(0.97, 1.03)).round(2).clip(0.5).alias("employees"),
                *((pl.col(c) * f(0.9, 1.1)).round(0).cast(pl.Int64).alias(c) for c in REGION_COLS + ("subcontracting_italy",)),
            )
            flip_s = pl.Series(flip)
            had = pl.Series((abroad > 0).to_numpy())
            orig = orig.with_columns(
                # booked as Italian subcontracting in the first filing
                *(pl.when(flip_s & had).then(0).otherwise(pl.col(c)).alias(c) for c in REGION_COLS),
                pl.when(flip_s & had).then(pl.col("subcontracting_italy") + pl.Series(abroad.to_numpy()))
                .otherwise(pl.col("subcontracting_italy")).alias("subcontracting_italy"),
            ).with_columns(
                # a spurious foreign amount, removed by the correction
                pl.when(flip_s & ~had).then((pl.col("turnover") * 0.03).round(0).cast(pl.Int64))
                .otherwise(pl.col("subcontracting_europe")).alias("subcontracting_europe"),
            )
            idx = np.flatnonzero(refile)
            dates = df["filing_date"].to_list()
            for j, d in zip(idx, later):
                dates[j] = d
            df = df.with_columns(pl.Series("filing_date", dates, dtype=pl.Date))
            df = pl.concat([df, orig.select(df.columns)])
            stats["refilings_flipping_outsourcing"][year] = int(flip.sum())
        else:
            stats["refilings_flipping_outsourcing"][year] = 0
        stats["refilings"][year] = int(m)
        df = df.sort(["filing_date", "tax_code"]).select(list(SURVEY_COLUMNS))
        stats["returns"][year] = df.height
        tables[year] = df
    return tables, stats
