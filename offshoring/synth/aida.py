"""The AIDA export: larger companies of the two industries and their foreign participations.

Who is in it:

* offshoring companies (large, controlling foreign subsidiaries in some years), as many as
  make the configured average number engaged in offshoring per year (C&P Table 1: 322
  clothing and 105 footwear firms at 17,000 survey firms, scaled with the firm count);
* large companies without foreign control (some with minority stakes);
* smaller AIDA-only companies under the ceiling, some with foreign subsidiaries (excluded
  from the offshoring count by the ceiling);
* a few companies outside the two industries (excluded by sector);
* the survey firms that cross the turnover ceiling, from their crossing year.

`offshoring_counts` applies the pipeline's rule (sql/panel_aida_large.sql and
sql/panel_aida_offshoring.sql) to these data, so the province counts the probit uses are
the ones the pipeline will compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from offshoring.synth import names
from offshoring.synth.firms import SECTORS, _sample_weighted

REGIONS = ("europe", "north_africa", "east_asia", "other")


@dataclass
class Aida:
    firms: pl.DataFrame                 # tax_code, company_name, province, ateco_2007, sector, kind, prov_idx
    turnover: np.ndarray                # M x T, nan = n.d.
    employees: np.ndarray               # M x T, nan = n.d. or n.s.
    employees_ns: np.ndarray            # M x T bool: write n.s.
    subs: pl.DataFrame                  # tax_code, subsidiary_name, country_iso2, region, ownership_pct, first_year, last_year
    years: np.ndarray


def _year_profile(years: np.ndarray) -> np.ndarray:
    # the 2009 trade collapse, then a partial recovery (fashion exports, ISTAT)
    prof = {2008: -0.02, 2009: -0.14, 2010: -0.08, 2011: -0.04, 2012: -0.07}
    return np.array([prof.get(int(y), 0.0) for y in years])


def _pick(rng, keys, probs, size):
    p = np.asarray(probs, float)
    idx = np.searchsorted(np.cumsum(p) / p.sum(), rng.random(size), side="right").clip(0, len(keys) - 1)
    return [keys[i] for i in idx]


def build_aida(rng: np.random.Generator, cfg: dict, geo, pop, weights: dict[str, np.ndarray],
               scale: float, taken: set[str]) -> Aida:
    acfg = cfg["aida"]
    years = pop.years
    t = len(years)
    y0, y_end = int(years[0]), int(years[-1])
    ceiling = pop.ceiling
    macro_mult = np.array([float(acfg["macro_multiplier"][a]) for a in geo.muni["macro_area"].to_list()])
    loc = {s: weights[s] * macro_mult for s in SECTORS}
    prov_of_muni = geo.muni["prov_idx"].to_numpy()
    office = np.array([c[:3] for c in geo.muni["code_103"].to_list()])
    targets = {s: float(acfg["offshoring_firms"][s]) * scale for s in SECTORS}
    total_target = sum(targets.values())
    window = np.array([(2007 <= y <= 2012) for y in years])
    if not window.any():
        window[:] = True
    prof = _year_profile(years)

    recs = []           # per firm dicts of static attributes
    turn, empl = [], []
    subs = []

    def paths(level: float, emp_level: float, active: np.ndarray):
        noise = np.cumsum(rng.normal(0, 0.06, t)) * 0.7 + rng.normal(0, 0.03, t)
        tv = level * np.exp(prof + noise)
        ev = emp_level * np.exp(0.6 * (prof + noise) + rng.normal(0, 0.03, t))
        return np.where(active, tv, np.nan), np.where(active, ev, np.nan)

    def active_years():
        start = 0 if rng.random() > 0.08 else int(rng.integers(1, max(t, 2)))
        end = t - 1 if rng.random() > 0.05 else int(rng.integers(start, t))
        a = np.zeros(t, bool)
        a[start:end + 1] = True
        return a

    def new_firm(sector: str, kind: str, level: float, emp_level: float, large: bool, ateco: str | None = None):
        muni = int(_sample_weighted(rng, loc[sector if sector in SECTORS else "clothing"], 1)[0])
        act = active_years()
        tv, ev = paths(level, emp_level, act)
        if not large:  # AIDA-only firms under the ceiling stay under it
            tv = np.minimum(tv, 0.95 * ceiling * rng.uniform(0.8, 1.0, t))
        if ateco is None:
            pool = cfg["population"]["ateco"][sector]
            ateco = _pick(rng, list(pool), list(pool.values()), 1)[0]
        recs.append({"sector": sector, "kind": kind, "muni": muni, "ateco": ateco.replace(".", ""),
                     "large": large, "active": act})
        turn.append(tv)
        empl.append(ev)
        return len(recs) - 1

    def sub_rows(j: int, sector: str, start: int, end: int | None, controlled: bool):
        pref = cfg["destinations"]["fdi"][sector if sector in SECTORS else "clothing"]
        region = _pick(rng, list(pref), list(pref.values()), 1)[0]
        cc = cfg["destinations"]["countries"][region]
        country = _pick(rng, list(cc), list(cc.values()), 1)[0]
        if controlled:
            own = 100.0 if rng.random() < 0.55 else round(float(rng.uniform(51, 99.99)), 2)
        else:
            own = 50.0 if rng.random() < 0.25 else round(float(rng.uniform(5, 49.99)), 2)
        subs.append({"firm": j, "region": region, "country_iso2": country, "ownership_pct": own,
                     "first_year": int(start), "last_year": None if end is None else int(end)})

    # offshoring companies, drawn in pools until the yearly target is met
    mean_emp = {s: float(acfg["employees_offshoring"][s]) for s in SECTORS}
    mean_turn = {s: float(acfg["turnover_offshoring"][s]) for s in SECTORS}
    per_firm = {s: float(acfg["subsidiaries_per_firm"][s]) for s in SECTORS}
    sigma = 0.85
    mn_by_sector: dict[str, list[int]] = {s: [] for s in SECTORS}
    for sector in SECTORS:
        need = targets[sector] * window.sum()
        got = 0.0
        lam = max(0.05, (per_firm[sector] - 1) * (1.35 if sector == "clothing" else 1.45))
        while got < need - 0.5:
            level = max(mean_turn[sector] * np.exp(rng.normal(-0.5 * sigma ** 2, sigma)), 9.0e6 * rng.uniform(1, 1.6))
            emp_level = level / mean_turn[sector] * mean_emp[sector] * np.exp(rng.normal(0, 0.2))
            j = new_firm(sector, "offshoring", level, emp_level, True)
            act = recs[j]["active"]
            a_idx = np.flatnonzero(act)
            a0, a1 = int(a_idx[0]), int(a_idx[-1])
            if rng.random() < float(acfg["share_before_first_year"]) and a0 == 0:
                s_year = y0 - int(rng.integers(1, 11))
            else:
                s_year = int(years[a0 + int(rng.integers(0, a1 - a0 + 1))])
            still = rng.random() < float(acfg["share_still_held"]) and a1 == t - 1
            e_year = None if still else int(rng.integers(max(s_year, y0), int(years[a1]) + 1))
            sub_rows(j, sector, s_year, e_year, True)
            for _ in range(int(rng.poisson(lam))):
                lo = min(s_year + int(rng.integers(0, 4)), y_end if e_year is None else e_year)
                if e_year is None:
                    end = None if rng.random() < 0.8 else int(rng.integers(max(lo, y0), y_end + 1))
                else:
                    end = int(rng.integers(lo, e_year + 1))
                sub_rows(j, sector, lo, end, True)
            for _ in range(int(rng.poisson(float(acfg["minority_stakes_per_firm"])))):
                lo = int(rng.integers(y0 - 5, y_end + 1))
                sub_rows(j, sector, lo, None if rng.random() < 0.6 else int(rng.integers(lo, y_end + 2)), False)
            held = np.array([(y >= s_year) and (e_year is None or y <= e_year) for y in years]) & act
            got += float((held & window).sum())
            mn_by_sector[sector].append(j)

    # large companies without foreign control
    n_large = int(round(float(acfg["large_without_fdi_ratio"]) * total_target))
    for k in range(n_large):
        sector = "footwear" if rng.random() < 0.28 else "clothing"
        level = max(18e6 * np.exp(rng.normal(-0.35, 0.8)), 8.0e6 * rng.uniform(1, 1.5))
        j = new_firm(sector, "large", level, level / 250e3 * np.exp(rng.normal(0, 0.25)), True)
        for _ in range(int(rng.poisson(0.2))):
            lo = int(rng.integers(y0 - 5, y_end + 1))
            sub_rows(j, sector, lo, None if rng.random() < 0.6 else int(rng.integers(lo, y_end + 2)), False)
    # smaller AIDA-only companies (under the ceiling), some controlling a foreign firm
    n_small = int(round(float(acfg["small_firm_ratio"]) * total_target))
    for k in range(n_small):
        sector = "footwear" if rng.random() < 0.3 else "clothing"
        level = float(rng.uniform(2.0e6, 5.0e6))
        j = new_firm(sector, "small", level, level / 160e3, False)
        if rng.random() < 0.4:
            lo = int(rng.integers(y0 - 4, y_end + 1))
            sub_rows(j, sector, lo, None, True)
    # outside the two industries (leather goods, textiles), with foreign subsidiaries
    n_out = max(1, int(round(float(acfg["outside_industry_ratio"]) * total_target)))
    for k in range(n_out):
        ateco = "15.12.00" if rng.random() < 0.6 else "13.20.00"
        level = max(30e6 * np.exp(rng.normal(-0.3, 0.7)), 9e6)
        j = new_firm("other", "outside_industry", level, level / 250e3, True, ateco=ateco)
        sub_rows(j, "clothing", y0 - 3, None, True)

    # missing cells
    turnover = np.array(turn) if turn else np.zeros((0, t))
    employees = np.array(empl) if empl else np.zeros((0, t))
    m = turnover.shape[0]
    nd_t = rng.random((m, t)) < float(acfg["nd_rate_turnover"])
    nd_e = rng.random((m, t)) < float(acfg["nd_rate_employees"])
    ns_e = (~nd_e) & (rng.random((m, t)) < float(acfg["ns_rate_employees"]))
    turnover = np.where(nd_t, np.nan, np.rint(turnover))
    employees = np.where(nd_e | ns_e, np.nan, np.maximum(np.rint(employees), 1))

    # crossers from the survey (turnover filled later from their survey amounts)
    cross_rows = np.flatnonzero(pop.cross >= 0)
    ncr = len(cross_rows)
    for i in cross_rows:
        recs.append({"sector": SECTORS[pop.sector[i]], "kind": "crosser", "muni": int(pop.muni[i]),
                     "ateco": pop.ateco[i].replace(".", ""), "large": True, "active": None, "survey_row": int(i)})
    turnover = np.vstack([turnover, np.full((ncr, t), np.nan)])
    employees = np.vstack([employees, np.full((ncr, t), np.nan)])
    ns_e = np.vstack([ns_e, np.zeros((ncr, t), bool)])

    # codes and names
    n_all = len(recs)
    own = [r for r in range(n_all) if recs[r]["kind"] != "crosser"]
    codes = [""] * n_all
    new_codes = names.company_codes(rng, [office[recs[r]["muni"]] for r in own], taken)
    for r, c in zip(own, new_codes):
        codes[r] = c
    for r in range(n_all):
        if recs[r]["kind"] == "crosser":
            codes[r] = pop.tax_code[recs[r]["survey_row"]]
    cnames = names.company_names(rng, [recs[r]["sector"] for r in range(n_all)],
                                 np.array([recs[r]["kind"] in ("offshoring", "large", "outside_industry") for r in range(n_all)]))
    provinces = np.array(geo.provinces)
    firms = pl.DataFrame({
        "tax_code": codes,
        "company_name": cnames,
        "province": [str(provinces[prov_of_muni[recs[r]["muni"]]]) for r in range(n_all)],
        "ateco_2007": [recs[r]["ateco"] for r in range(n_all)],
        "sector": [recs[r]["sector"] for r in range(n_all)],
        "kind": [recs[r]["kind"] for r in range(n_all)],
        "prov_idx": [int(prov_of_muni[recs[r]["muni"]]) for r in range(n_all)],
        "survey_row": [recs[r].get("survey_row", -1) for r in range(n_all)],
    })
    sub_df = pl.DataFrame({
        "firm": [s["firm"] for s in subs],
        "region": [s["region"] for s in subs],
        "country_iso2": [s["country_iso2"] for s in subs],
        "ownership_pct": [float(s["ownership_pct"]) for s in subs],
        "first_year": [s["first_year"] for s in subs],
        "last_year": pl.Series([s["last_year"] for s in subs], dtype=pl.Int64),
    }, schema_overrides={"firm": pl.Int64, "first_year": pl.Int64})
    parent_names = [cnames[f] for f in sub_df["firm"].to_list()]
    sub_df = sub_df.with_columns(
        pl.Series("tax_code", [codes[f] for f in sub_df["firm"].to_list()], dtype=pl.Utf8),
        pl.Series("subsidiary_name", names.subsidiary_names(rng, parent_names, sub_df["region"].to_list()), dtype=pl.Utf8),
    )
    return Aida(firms=firms, turnover=turnover, employees=employees, employees_ns=ns_e, subs=sub_df, years=years)


def fill_crossers(aida: Aida, pop, survey_turnover: np.ndarray) -> None:
    """AIDA values of the survey firms that crossed the ceiling, from the crossing year."""
    rows = aida.firms["survey_row"].to_numpy()
    for r in np.flatnonzero(rows >= 0):
        i = rows[r]
        c = pop.cross[i]
        for k in range(c, pop.t):
            aida.turnover[r, k] = survey_turnover[i, k]
            aida.employees[r, k] = max(1.0, float(np.rint(pop.cov["employees"][i, k])))


def offshoring_counts(aida: Aida, n_prov: int, ceiling: np.ndarray, in_survey: np.ndarray,
                      survey_turnover: np.ndarray, threshold: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Province x year counts of AIDA firms engaged in offshoring, by the pipeline's rule.

    A firm-year counts when it has data (turnover or employees), is in the two industries,
    is large (a survey return above the ceiling that year; or no survey return and AIDA
    turnover above the ceiling or missing) and controls a foreign subsidiary (share above
    `threshold`) that year. `in_survey` / `survey_turnover` are M x T for the AIDA rows.
    Returns (counts P x T, engaged M x T bool).
    """
    years = aida.years
    t = len(years)
    m = aida.firms.height
    has_data = ~np.isnan(aida.turnover) | ~np.isnan(aida.employees)
    ateco = aida.firms["ateco_2007"].to_list()
    in_sector = np.array([a.startswith("14") or a.startswith("1520") for a in ateco])
    ceil = ceiling[None, :]
    large = np.where(in_survey, survey_turnover > ceil,
                     np.isnan(aida.turnover) | (aida.turnover > ceil))
    controls = np.zeros((m, t), bool)
    s = aida.subs.filter(pl.col("ownership_pct") > threshold)
    f = s["firm"].to_numpy()
    fy = s["first_year"].to_numpy()
    ly = s["last_year"].fill_null(10 ** 6).to_numpy()
    for k, y in enumerate(years):
        held = (fy <= y) & (ly >= y)
        controls[f[held], k] = True
    engaged = has_data & in_sector[:, None] & large & controls
    prov = aida.firms["prov_idx"].to_numpy()
    counts = np.zeros((n_prov, t))
    for k in range(t):
        counts[:, k] = np.bincount(prov[engaged[:, k]], minlength=n_prov)
    return counts, engaged
