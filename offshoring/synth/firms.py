"""The survey firm population: location, sector, legal form, owners, entry and exit, and
the yearly firm-level covariates.

Arrays are indexed by firm (N) or firm x year (N x T). Covariates are persistent paths:
a firm mean (moved by the firm type `tau`) plus AR(1) deviations, so the Mundlak means
and initial values of the random-effect equation matter. Every value the survey carries
is rounded to its written precision here, and the probit regressors are computed from the
rounded values exactly as the pipeline computes them from the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from offshoring.synth import names

MARKET_AREAS = ("local", "provincial", "regional", "national", "international")
MACRO_ORDER = ("North-West", "North-East", "Centre", "South", "Islands")
SECTORS = ("clothing", "footwear")


@dataclass
class Population:
    years: np.ndarray
    ceiling: np.ndarray                 # per year
    sector: np.ndarray                  # 0 clothing, 1 footwear
    muni: np.ndarray                    # row of geo.muni
    prov: np.ndarray                    # index into geo.provinces
    llma: np.ndarray
    district: np.ndarray                # 0/1, LLMA is an intended district
    macro: np.ndarray                   # index into MACRO_ORDER
    first: np.ndarray                   # year index of the first panel year
    last: np.ndarray                    # year index of the last panel year
    cross: np.ndarray                   # year index of the above-ceiling return, -1 if none
    migrant: np.ndarray                 # bool
    birthplace: list[str]               # cadastral code of the owner's birthplace ('' for companies)
    sole: np.ndarray                    # bool: sole proprietor
    tau: np.ndarray
    ateco: list[str]
    tax_code: list[str] = field(default_factory=list)
    cov: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.sector)

    @property
    def t(self) -> int:
        return len(self.years)

    def in_panel(self) -> np.ndarray:
        ti = np.arange(self.t)[None, :]
        return (ti >= self.first[:, None]) & (ti <= self.last[:, None])


def _ar1(rng: np.random.Generator, n: int, t: int, rho: float, sd: float) -> np.ndarray:
    out = np.empty((n, t))
    out[:, 0] = rng.normal(0, sd / np.sqrt(1 - rho ** 2), n)
    for k in range(1, t):
        out[:, k] = rho * out[:, k - 1] + rng.normal(0, sd, n)
    return out


def _logistic(x):
    return 1 / (1 + np.exp(-x))


def _sample_weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    c = np.cumsum(weights)
    return np.searchsorted(c, rng.random(size) * c[-1], side="right").clip(0, len(weights) - 1)


def draw_population(rng: np.random.Generator, geo, cfg: dict, weights: dict[str, np.ndarray],
                    years: np.ndarray, ceiling: np.ndarray, n: int) -> Population:
    pcfg = cfg["population"]
    t = len(years)
    sector = (rng.random(n) < float(pcfg["footwear_share"])).astype(np.int8)
    muni = np.empty(n, dtype=np.int64)
    for s, name in enumerate(SECTORS):
        rows = np.flatnonzero(sector == s)
        muni[rows] = _sample_weighted(rng, weights[name], len(rows))
    m = geo.muni
    prov = m["prov_idx"].to_numpy()[muni]
    llma = m["llma_idx"].to_numpy()[muni]
    kind = np.array(geo.llma["kind"].to_list())
    district = (kind[llma] == "district").astype(np.int8)
    macro_idx = {a: i for i, a in enumerate(MACRO_ORDER)}
    macro = np.array([macro_idx[a] for a in m["macro_area"].to_list()])[muni]

    # entry and exit
    first = np.where(rng.random(n) < float(pcfg["incumbent_share"]), 0,
                     rng.integers(1, max(t, 2), size=n)).clip(0, t - 1)
    life = rng.geometric(float(pcfg["exit_hazard"]), size=n)
    last = np.minimum(t - 1, first + life - 1)

    # migrant owners: sector base x province multiplier
    mcfg = cfg["migrants"]
    provinces = np.array(geo.provinces)
    p_mig = np.zeros(n)
    country = np.array([""] * n, dtype=object)
    for s, name in enumerate(SECTORS):
        rows = sector == s
        mult = np.array([float(mcfg["province_multiplier"][name].get(p, 1.0)) for p in provinces])
        p_mig[rows] = np.minimum(float(mcfg["cap"]), float(mcfg["base"][name]) * mult[prov[rows]])
    migrant = rng.random(n) < p_mig
    codes = {name: (list(mcfg["countries"][name]), np.array(list(mcfg["countries"][name].values()), float))
             for name in SECTORS}
    china = mcfg["countries"].get("china_provinces", {})
    u = rng.random(n)
    for i in np.flatnonzero(migrant):
        ks, ps = codes[SECTORS[sector[i]]]
        pr = provinces[prov[i]]
        if pr in china and "Z210" in ks:
            ps = ps.copy()
            j = ks.index("Z210")
            rest = (1 - float(china[pr])) / max(ps.sum() - ps[j], 1e-9)
            ps = ps * rest
            ps[j] = float(china[pr])
        country[i] = ks[int(np.searchsorted(np.cumsum(ps) / ps.sum(), u[i], side="right").clip(0, len(ks) - 1))]

    tau = rng.normal(0, 1, n) - 0.6 * migrant
    ateco = []
    ac = {name: (list(pcfg["ateco"][name]), np.array(list(pcfg["ateco"][name].values()), float)) for name in SECTORS}
    ua = rng.random(n)
    for i in range(n):
        ks, ps = ac[SECTORS[sector[i]]]
        ateco.append(ks[int(np.searchsorted(np.cumsum(ps) / ps.sum(), ua[i], side="right").clip(0, len(ks) - 1))])
    return Population(years=years, ceiling=ceiling, sector=sector, muni=muni, prov=prov, llma=llma,
                      district=district, macro=macro, first=first, last=last,
                      cross=np.full(n, -1), migrant=migrant, birthplace=list(country),
                      sole=migrant.copy(), tau=tau, ateco=ateco)


def draw_covariates(rng: np.random.Generator, pop: Population, cfg: dict) -> None:
    """Fill pop.cov with written-precision yearly values; choose sole proprietors and crossers."""
    c = cfg["covariates"]
    n, t = pop.n, pop.t
    fw = pop.sector == 1
    mig = pop.migrant.astype(float)
    tau = pop.tau
    rho = float(c["ar_rho"])

    def by_sector(d):
        return np.where(fw, float(d["footwear"]), float(d["clothing"]))

    # export share (percent): exporters with a persistent level, occasional exports of others
    e = c["exporter_logit"]
    exporter = rng.random(n) < _logistic(by_sector(e) + float(e["tau"]) * tau + float(e["migrant"]) * mig)
    s = c["export_share_logit"]
    lvl = by_sector(s) + float(s["tau"]) * tau + rng.normal(0, float(s["firm_sd"]), n)
    share = 100 * _logistic(lvl[:, None] + _ar1(rng, n, t, rho, float(s["year_sd"])))
    occasional = rng.random((n, t)) < 0.08
    pause = rng.random((n, t)) < 0.05
    share = np.where(exporter[:, None], np.where(pause, 0.0, share),
                     np.where(occasional, rng.uniform(0.5, 6.0, (n, t)), 0.0))
    export_share = np.round(share, 1)

    ma = c["market_area"]
    lat = (float(ma["const"]) + float(ma["tau"]) * tau + float(ma["migrant"]) * mig
           + rng.normal(0, float(ma["firm_sd"]), n))[:, None] \
        + float(ma["export"]) * export_share / 100 + _ar1(rng, n, t, rho, float(ma["year_sd"]))
    market = (1 + (lat > 1.5).astype(int) + (lat > 2.5) + (lat > 3.5) + (lat > 4.5)).astype(np.int8)

    cr = c["credit"]
    credit = ((float(cr["const"]) + float(cr["tau"]) * tau + float(cr["migrant"]) * mig
               + rng.normal(0, float(cr["firm_sd"]), n))[:, None]
              + _ar1(rng, n, t, rho, float(cr["year_sd"])) > 0).astype(np.int8)

    sp = c["supplier"]
    supplier = ((by_sector(sp) + float(sp["tau"]) * tau + float(sp["migrant"]) * mig
                 + rng.normal(0, float(sp["firm_sd"]), n))[:, None]
                + _ar1(rng, n, t, rho, float(sp["year_sd"])) > 0).astype(np.int8)

    hv = c["high_value_added"]
    hva = ((float(hv["const"]) + float(hv["tau"]) * tau + rng.normal(0, float(hv["firm_sd"]), n))[:, None]
           + float(hv["supplier"]) * supplier + rng.normal(0, 0.3, (n, t)) > 0).astype(np.int8)

    va = c["va_per_employee"]
    log_vape = (np.log(by_sector(va)) + float(va["tau"]) * tau + float(va["migrant"]) * mig
                + rng.normal(0, float(va["firm_sd"]), n))[:, None] + _ar1(rng, n, t, rho, float(va["year_sd"]))
    vape = np.exp(log_vape).clip(8.0, 250.0)

    em = c["employees"]
    log_emp = (by_sector(em) + float(em["tau"]) * tau + float(em["migrant"]) * mig
               + rng.normal(0, float(em["firm_sd"]), n))[:, None] \
        + _ar1(rng, n, t, float(em["rho"]), float(em["year_sd"]))
    emp = np.exp(log_emp)

    tv = c["turnover_to_va"]
    ratio = np.exp((np.log(by_sector(tv)) + float(tv["tau"]) * tau + rng.normal(0, float(tv["firm_sd"]), n))[:, None]
                   + rng.normal(0, float(tv["year_sd"]), (n, t))).clip(1.3, 12.0)

    # sole proprietors: most micro firms; migrants all (the only visible foreign owners)
    a, b = (float(x) for x in cfg["population"]["sole_proprietor_logit"])
    emp0 = emp[np.arange(n), pop.first]
    pop.sole = pop.migrant | (rng.random(n) < _logistic(a + b * np.log(emp0)))

    # ceiling crossers: companies, chosen among the larger ones
    base = vape * emp * ratio * 1000
    ceil = pop.ceiling[None, :]
    eligible = (~pop.sole) & (pop.first < t - 1)
    n_cross = int(round(float(cfg["population"]["ceiling_crossers"]) * n))
    idx = np.flatnonzero(eligible)
    if n_cross and len(idx):
        w = (base[idx] / ceil).max(axis=1) ** 2
        w = w / w.sum()
        take = rng.choice(idx, size=min(n_cross, len(idx)), replace=False, p=w)
        take.sort()
        hi = np.minimum(pop.last[take] + 1, t - 1)
        c_year = pop.first[take] + 1 + (rng.random(len(take)) * (hi - pop.first[take])).astype(int)
        c_year = np.minimum(c_year, hi)
        pop.cross[take] = c_year
        pop.last[take] = c_year - 1
    crossers = pop.cross >= 0
    # keep survey SMEs under the ceiling: shrink employees (value added per employee and the
    # turnover/VA ratio, the exogenous drivers, are untouched)
    ti = np.arange(t)[None, :]
    cap = np.where(crossers[:, None] & (ti < pop.cross[:, None]), 0.9, 0.78) * ceil
    over = base > cap
    shrink = np.where(over, cap / base * rng.uniform(0.85, 1.0, (n, t)), 1.0)
    at_cross = crossers[:, None] & (ti == pop.cross[:, None])
    after = crossers[:, None] & (ti > pop.cross[:, None])
    shrink = np.where(at_cross | after, 1.0, shrink)
    emp = emp * shrink
    # crossing year: turnover 5-60% above the ceiling, then growth
    if crossers.any():
        rows = np.flatnonzero(crossers)
        cy = pop.cross[rows]
        target = pop.ceiling[cy] * rng.uniform(1.05, 1.6, len(rows))
        k = vape[rows, cy] * ratio[rows, cy] * 1000
        emp[rows, cy] = target / k
        for j in range(t):
            later = rows[cy < j]
            if len(later):
                emp[later, j] = emp[later, j - 1] * rng.uniform(0.97, 1.12, len(later)) \
                    * ratio[later, j - 1] / ratio[later, j] * vape[later, j - 1] / vape[later, j]

    employees = np.maximum(np.round(emp, 2), 0.5)
    value_added = np.rint(vape * employees * 1000)
    va_per_employee_k = value_added / employees / 1000
    base = value_added * ratio

    wv = c["wage_to_va"]
    wage_share = np.clip(float(wv["mean"]) + rng.normal(0, float(wv["sd"]), n)[:, None]
                         + rng.normal(0, 0.04, (n, t)), 0.3, 0.95)
    wage_costs = np.rint(value_added * wage_share)
    margin = (rng.normal(0.04, 0.07, n)[:, None] + 0.02 * tau[:, None] + _ar1(rng, n, t, 0.5, 0.05))
    capital = float(c["capital_to_turnover"]) * base
    ebit = margin * base
    roi = np.round(100 * ebit / capital, 2)
    pre_tax = ebit - 0.015 * capital
    net_income = np.rint(np.where(pre_tax > 0, 0.62 * pre_tax, pre_tax))

    pop.cov = {
        "export_share": export_share,
        "export_ratio": export_share / 100,
        "market_area_order": market,
        "credit_access": credit,
        "supplier": supplier,
        "high_value_added": hva,
        "employees": employees,
        "value_added": value_added,
        "va_per_employee_k": va_per_employee_k,
        "wage_costs": wage_costs,
        "wage_per_employee_k": wage_costs / employees / 1000,
        "base_turnover": base,
        "net_income": net_income,
        "profit": (net_income > 0).astype(np.int8),
        "roi": roi,
    }


def assign_tax_codes(rng: np.random.Generator, pop: Population, geo, cfg: dict, taken: set[str]) -> None:
    """11-digit codes for companies, 16-character codici fiscali for sole proprietors."""
    m = geo.muni
    cadastral = np.array(m["cadastral_code"].to_list())
    office = np.array([c[:3] for c in m["code_103"].to_list()])
    prov_rows: dict[int, np.ndarray] = {}
    prov_idx = m["prov_idx"].to_numpy()
    pop_w = m["pop"].to_numpy()
    south = np.isin(np.array(m["macro_area"].to_list()), ["South", "Islands"])
    n = pop.n
    places = [""] * n
    u = rng.random((n, 2))
    for i in np.flatnonzero(pop.sole):
        if pop.migrant[i]:
            places[i] = pop.birthplace[i]
            continue
        p = int(pop.prov[i])
        if u[i, 0] < 0.72:  # born in the province of the firm
            rows = prov_rows.get(p)
            if rows is None:
                rows = prov_rows[p] = np.flatnonzero(prov_idx == p)
            w = pop_w[rows]
            places[i] = cadastral[rows[int(np.searchsorted(np.cumsum(w) / w.sum(), u[i, 1], side="right").clip(0, len(rows) - 1))]]
        else:  # elsewhere in Italy, more often in the South (internal migration)
            w = pop_w * np.where(south, 2.0, 1.0)
            places[i] = cadastral[int(np.searchsorted(np.cumsum(w) / w.sum(), u[i, 1], side="right").clip(0, len(w) - 1))]
    sole_rows = np.flatnonzero(pop.sole)
    female = rng.random(len(sole_rows)) < np.where(pop.migrant[sole_rows], 0.45, 0.35)
    by = np.where(pop.migrant[sole_rows], rng.integers(1958, 1990, len(sole_rows)),
                  rng.integers(1940, 1986, len(sole_rows)))
    omo = rng.random(len(sole_rows)) < float(cfg["population"]["omocodia_rate"])
    personal = names.personal_codes(rng, [places[i] for i in sole_rows], female, by, omo, taken)
    comp_rows = np.flatnonzero(~pop.sole)
    company = names.company_codes(rng, [office[pop.muni[i]] for i in comp_rows], taken)
    codes = [""] * n
    for i, code in zip(sole_rows, personal):
        codes[i] = code
    for i, code in zip(comp_rows, company):
        codes[i] = code
    pop.tax_code = codes
    pop.birthplace = places


def mundlak_terms(pop: Population, variables: tuple[str, ...]) -> dict[str, np.ndarray]:
    """init_<v> (value in the first panel year) and mean_<v>_lag (mean of v at t-1 over the
    firm's estimation years t = first+1..last, i.e. of v over first..last-1)."""
    out = {}
    n, t = pop.n, pop.t
    rows = np.arange(n)
    ti = np.arange(t)[None, :]
    window = (ti >= pop.first[:, None]) & (ti <= (pop.last - 1)[:, None])
    cnt = window.sum(1)
    for v in variables:
        x = pop.cov[v].astype(float)
        out[f"init_{v}"] = x[rows, pop.first]
        s = np.where(window, x, 0.0).sum(1)
        out[f"mean_{v}_lag"] = np.where(cnt > 0, s / np.maximum(cnt, 1), x[rows, pop.first])
    return out
