"""Offshore outsourcing: the dynamic random-effects probit, destinations and amounts.

For firm i in year t after its first panel year f_i:

    y_it = 1[ x_it' b + alpha_i + e_it > 0 ],  e_it ~ N(0, 1)

with x_it = (const, y_i,f, y_i,t-1, covariates at t-1, district, province counts at t-1,
footwear, macro-area dummies) under the names of `PROBIT_TERMS`, and the Wooldridge
random effect alpha_i = sum_v a_v mean_<v>_lag_i + sum_v b_v init_<v>_i + u_i,
u_i ~ N(0, sigma_u^2) independent of everything else. The first-year outcome has its own
probit in the first-year covariates and the firm type tau (which moves the covariate
means); u is independent of it, so the conditional model the estimator fits is exact.

Province counts are computed from the simulated firms year by year: the outsourcing count
of a firm's province at t-1 leaves the firm out; the offshoring count comes from AIDA by
the pipeline's rule. Both count coefficients are multiplied by 17000 / firms.

Destinations and backshoring (C&P Table 3): an outsourcing firm subcontracts in one to
three of four foreign regions. A region spell (firm x region, spell time t = years since
it began; the spell-year of calendar year m is the interval (m - start, m - start + 1])
has the continuous-time proportional hazard

    lambda(t | x) = lambda0_s(t) exp(b'x_m),   Lambda0_s(t) = exp(c_s) t^kappa  (Weibull)

with x_m the covariates of the spell-year as the pipeline computes them from the files
(`COX_TERMS`, the share on a per-mille grid so that the files reproduce it bit for bit),
constant within the spell-year; b = log of C&P Table 3's hazard ratios, the footwear
effect c_footwear - c_clothing, no territorial effects. Observed once a year, the region
is gone the next year with the grouped-time (complementary log-log) probability

    P(end in spell-year d | at risk) = 1 - exp(-exp(gamma_s,d + b'x)),
    gamma_s,d = log(Lambda0_s(d) - Lambda0_s(d - 1)),

with the same b. The hazard acts while the firm keeps subcontracting abroad. The firm's
own decision to stop altogether (the probit above, drawn first, independent of the region
clocks given the past) ends every region spell: for the hazard it is a competing end that
censors the spell at the start of that spell-year, as does leaving the survey or the last
survey year (see `offshoring.econometrics.grouped_ph.region_spell_risk_rows`). Every
spell-year the hazard acted on is recorded in `Outcome.hazard_rows`.

The region draws take the same random numbers, in the same order and shapes, whatever
they decide, so the outsourcing outcome y (Table 2) does not depend on this part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offshoring.synth.firms import MACRO_ORDER, Population, mundlak_terms

REGIONS = ("europe", "north_africa", "east_asia", "other")
RE_VARS = ("export_ratio", "market_area_order", "credit_access", "va_per_employee_k", "supplier")
PROBIT_TERMS = (
    "const", "y_initial", "y_lag", "export_ratio_lag", "market_area_order_lag", "credit_access_lag",
    "va_per_employee_k_lag", "supplier_lag", "district", "n_offshoring_prov_lag",
    "n_outsourcing_prov_lag", "footwear", "area_north_east", "area_centre", "area_south", "area_islands",
)
COX_TERMS = ("share_destination", "supplier", "profit", "export_share_pre", "wage_per_employee_k",
             "roi", "employees", "n_outsourcing_prov_pre", "n_migrant_prov_lag")
COUNT_TERMS = ("n_offshoring_prov_lag", "n_outsourcing_prov_lag")
COX_COUNT_TERMS = ("n_outsourcing_prov_pre", "n_migrant_prov_lag")
AREA_TERMS = ("area_north_east", "area_centre", "area_south", "area_islands")
# A firm uses at most three regions at once, so a firm that keeps subcontracting abroad
# after all its region spells ended always has a region it did not use the year before:
# taking an ended region up again the same year would read as a continuation in the files.
MAX_ACTIVE_REGIONS = 3
MIN_PERMILLE = 40             # smallest share of an active region (4%)
# status of a region spell-year in `Outcome.hazard_rows`: the region is gone the next year
# (1) or still used (0); the hazard decides both, while the firm keeps subcontracting abroad
SURVIVED, ENDED = 0, 1


def probit_params(cfg: dict, firms: int) -> dict[str, float]:
    """The coefficients actually used, under the estimator's names (counts scaled)."""
    p = cfg["probit"]
    scale = float(p["count_scale_reference_firms"]) / firms
    out = {"const": float(p["const"])}
    for k in PROBIT_TERMS[1:11]:
        v = float(p["coefficients"][k])
        out[k] = v * scale if k in COUNT_TERMS else v
    for k in PROBIT_TERMS[11:]:
        out[k] = float(p[k])
    for v in RE_VARS:
        out[f"mean_{v}_lag"] = float(p["re_mean"][v])
    for v in RE_VARS:
        out[f"init_{v}"] = float(p["re_init"][v])
    return out


def cox_params(cfg: dict, firms: int) -> dict[str, float]:
    """Log hazard ratios of `COX_TERMS` (count terms scaled by 17000 / firms)."""
    b = cfg["backshoring"]
    scale = float(cfg["probit"]["count_scale_reference_firms"]) / firms
    out = {}
    for k in COX_TERMS:
        v = float(np.log(float(b["hazard_ratios"][k])))
        out[k] = v * scale if k in COX_COUNT_TERMS else v
    return out


def cox_dummy_params(cfg: dict) -> dict[str, float]:
    """True coefficients of the industry and territorial dummies of the Table 3 spec
    (bases clothing and North-West): footwear = c_footwear - c_clothing, areas 0."""
    c = cfg["backshoring"]["baseline"]
    out = {"footwear": float(c["footwear"]) - float(c["clothing"])}
    out.update({a: 0.0 for a in AREA_TERMS})
    return out


def weibull_shape(cfg: dict) -> float:
    return float(cfg["backshoring"].get("weibull_shape", 1.0))


def grouped_baseline(cfg: dict, durations, sector: str = "clothing") -> dict[int, float]:
    """gamma_d = log(Lambda0(d) - Lambda0(d-1)) of a sector: the intercept of spell-year d in
    the complementary log-log form (clothing is the base of the Table 3 dummies)."""
    c = float(cfg["backshoring"]["baseline"][sector])
    k = weibull_shape(cfg)
    return {int(d): c + float(np.log(float(d) ** k - float(d - 1) ** k)) for d in durations}


def _permille(sh: np.ndarray, act: np.ndarray) -> np.ndarray:
    """Shares as integers per mille: at least MIN_PERMILLE for an active region, 0 otherwise,
    summing to 1000 for a firm with any region (the rounding goes to its largest region)."""
    u = np.where(act, np.maximum(np.floor(sh * 1000.0), MIN_PERMILLE), 0).astype(np.int64)
    has = act.any(1)
    gap = np.where(has, 1000 - u.sum(1), 0)
    top = np.argmax(u, axis=1)
    u[np.arange(len(u)), top] += gap
    return u


@dataclass
class Outcome:
    y: np.ndarray                # N x T int8 (0 outside the survey years of the firm)
    active: np.ndarray           # N x T x 4 bool
    share: np.ndarray            # N x T x 4 float (fractions, 0 when inactive)
    n_out_lag: np.ndarray        # N x T, nan where undefined
    n_off_lag: np.ndarray
    n_mig_lag: np.ndarray
    alpha: np.ndarray
    u: np.ndarray
    count_out: np.ndarray        # P x T
    count_mig: np.ndarray        # P x T
    region_spell_ends: int
    region_spell_ends_by_hazard: int
    permille: np.ndarray = None  # N x T x 4 int: share * 1000 (the files' amounts are F x permille)
    # one entry per region spell-year the hazard acted on (the firm subcontracted abroad
    # that year and the next): firm, year index, region, spell start (year index), duration
    # interval d (the spell-year is (d-1, d]), left_censored (the spell began in the firm's
    # first panel year), the covariates x (COX_TERMS), eta = gamma_s,d + b'x, status
    hazard_rows: dict = None
    # region spell-years after which the firm stopped subcontracting abroad altogether
    # (competing end) or was not observed (left the panel, crossed the ceiling, last year)
    region_rows_firm_stopped: int = 0
    region_rows_next_unobserved: int = 0


def _gumbel_pick(rng, logp: np.ndarray, allowed: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Boolean n x R: k[i] distinct regions drawn with probabilities exp(logp) among allowed."""
    g = logp + rng.gumbel(size=logp.shape)
    g = np.where(allowed, g, -np.inf)
    order = np.argsort(-g, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(logp.shape[1])[None, :].repeat(len(logp), 0), axis=1)
    return (rank < k[:, None]) & allowed


def simulate(rng: np.random.Generator, pop: Population, cfg: dict, off_counts: np.ndarray,
             n_prov: int) -> Outcome:
    n, t = pop.n, pop.t
    p = cfg["probit"]
    b = probit_params(cfg, n)
    inp = pop.in_panel()
    cov = pop.cov

    # random effect (Wooldridge 2005, unconstrained)
    terms = mundlak_terms(pop, RE_VARS)
    sigma_u = float(p["sigma_u"])
    u = rng.normal(0, sigma_u, n)
    alpha = u.copy()
    for v in RE_VARS:
        alpha += b[f"mean_{v}_lag"] * terms[f"mean_{v}_lag"] + b[f"init_{v}"] * terms[f"init_{v}"]

    fw = (pop.sector == 1).astype(float)
    area = {name: (pop.macro == MACRO_ORDER.index(label)).astype(float)
            for name, label in (("area_north_east", "North-East"), ("area_centre", "Centre"),
                                ("area_south", "South"), ("area_islands", "Islands"))}
    static = (b["const"] + b["district"] * pop.district + b["footwear"] * fw
              + sum(b[k] * area[k] for k in area))
    ic = p["initial"]
    # first-year outcome: own probit in the first-year covariates, the observable part of the
    # random effect (so that the initial cross-section looks like the dynamic process's) and
    # the firm type; u is left out, so alpha | (y_initial, x) keeps the Wooldridge form
    lam = float(ic["scale"])
    init_static = (float(ic["const"]) + float(ic["tau"]) * pop.tau
                   + lam * (static + alpha - u))

    # destinations and backshoring hazard
    d = cfg["destinations"]
    prefs = np.array([[float(d["outsourcing"][s][r]) for r in REGIONS] for s in ("clothing", "footwear")])
    logpref = np.log(prefs)[pop.sector]
    nreg_p = np.cumsum(np.array(d["n_regions_at_start"], float))
    nreg_p /= nreg_p[-1]
    add_prob = float(d["add_region_prob"])
    share_sd = float(d["share_noise_sd"])
    cox = cox_params(cfg, n)
    beta = np.array([cox[k] for k in COX_TERMS])
    c_s = np.array([float(cfg["backshoring"]["baseline"][s]) for s in ("clothing", "footwear")])[pop.sector]
    kappa = weibull_shape(cfg)

    y = np.zeros((n, t), np.int8)
    active = np.zeros((n, t, 4), bool)
    share = np.zeros((n, t, 4))
    permille = np.zeros((n, t, 4), np.int64)
    n_out_lag = np.full((n, t), np.nan)
    n_off_lag = np.full((n, t), np.nan)
    n_mig_lag = np.full((n, t), np.nan)
    cnt_out = np.zeros((n_prov, t))
    cnt_mig = np.zeros((n_prov, t))
    spell_export_pre = np.full((n, 4), np.nan)
    spell_nout_pre = np.zeros((n, 4))
    spell_start = np.full((n, 4), -1)
    ends_total = 0
    ends_hazard = 0
    rows_stopped = 0
    rows_unobserved = 0
    rec: dict[str, list] = {k: [] for k in ("firm", "year", "region", "spell_start", "duration",
                                            "left_censored", "x", "eta", "status")}
    mig = pop.migrant.astype(float)

    for k in range(t):
        here = inp[:, k]
        new = here & (pop.first == k)
        cont = here & (pop.first < k)
        # first panel year: own probit
        if new.any():
            idx = init_static[new] + lam * (
                b["export_ratio_lag"] * cov["export_ratio"][new, k]
                + b["market_area_order_lag"] * cov["market_area_order"][new, k]
                + b["credit_access_lag"] * cov["credit_access"][new, k]
                + b["va_per_employee_k_lag"] * cov["va_per_employee_k"][new, k]
                + b["supplier_lag"] * cov["supplier"][new, k])
            y[new, k] = (idx + rng.normal(0, float(ic["sd"]), new.sum()) > 0)
        if k > 0:
            n_out_lag[cont, k] = cnt_out[pop.prov[cont], k - 1] - y[cont, k - 1]
            n_off_lag[cont, k] = off_counts[pop.prov[cont], k - 1]
            n_mig_lag[cont, k] = cnt_mig[pop.prov[cont], k - 1] - mig[cont]
            idx = (static[cont] + b["y_initial"] * y[cont, pop.first[cont]] + b["y_lag"] * y[cont, k - 1]
                   + b["export_ratio_lag"] * cov["export_ratio"][cont, k - 1]
                   + b["market_area_order_lag"] * cov["market_area_order"][cont, k - 1]
                   + b["credit_access_lag"] * cov["credit_access"][cont, k - 1]
                   + b["va_per_employee_k_lag"] * cov["va_per_employee_k"][cont, k - 1]
                   + b["supplier_lag"] * cov["supplier"][cont, k - 1]
                   + b["n_offshoring_prov_lag"] * n_off_lag[cont, k]
                   + b["n_outsourcing_prov_lag"] * n_out_lag[cont, k]
                   + alpha[cont])
            y[cont, k] = (idx + rng.normal(0, 1, cont.sum()) > 0)
        cnt_out[:, k] = np.bincount(pop.prov[here], weights=y[here, k], minlength=n_prov)
        cnt_mig[:, k] = np.bincount(pop.prov[here], weights=mig[here], minlength=n_prov)

        # ---- destinations
        yk = y[:, k] == 1
        prev_y = np.zeros(n, bool)
        if k > 0:
            prev_y = cont & (y[:, k - 1] == 1)
            # region spells of t-1 whose hazard is not seen: the firm stopped subcontracting
            # abroad altogether (competing end), or is not in the panel at t
            was = active[:, k - 1]
            rows_stopped += int(was[here & ~yk].sum())
            rows_unobserved += int(was[~here].sum())
        stay = yk & prev_y
        start = yk & ~prev_y
        act = np.zeros((n, 4), bool)
        if k > 0 and stay.any():
            s = np.flatnonzero(stay)
            prev_act = active[s, k - 1]
            km = k - 1
            x = _row_covariates(pop, s, km, share_pct=(100.0 * permille[s, km]) / 1000.0,
                                export_pre=spell_export_pre[s], nout_pre=spell_nout_pre[s],
                                cnt_mig=cnt_mig, mig=mig, inp=inp)
            dur = km - spell_start[s] + 1
            gamma = c_s[s][:, None] + np.log(np.maximum(dur, 1.0) ** kappa - np.maximum(dur - 1.0, 0.0) ** kappa)
            # export_share_pre is missing only for spells of the firm's first panel year
            # (left-censored in the files); its log hazard ratio is 0
            eta = gamma + np.einsum("nrj,j->nr", np.nan_to_num(x), beta)
            h = -np.expm1(-np.exp(eta))
            end = prev_act & (rng.random(prev_act.shape) < h)
            ends_hazard += int(end.sum())
            ii, rr = np.nonzero(prev_act)
            rec["firm"].append(s[ii])
            rec["year"].append(np.full(len(ii), km))
            rec["region"].append(rr)
            rec["spell_start"].append(spell_start[s[ii], rr])
            rec["duration"].append(dur[ii, rr])
            rec["left_censored"].append(spell_start[s[ii], rr] == pop.first[s[ii]])
            rec["x"].append(x[ii, rr])
            rec["eta"].append(eta[ii, rr])
            rec["status"].append(np.where(end[ii, rr], ENDED, SURVIVED))
            surv = prev_act & ~end
            none_left = ~surv.any(1)
            add = (rng.random(len(s)) < add_prob) & (surv.sum(1) < MAX_ACTIVE_REGIONS)
            want = (none_left | add).astype(int)
            # never a region used at t-1: one that just ended would read as continuing
            allowed = ~prev_act
            if (allowed.sum(1) < want).any():
                raise AssertionError("a firm has no region left to move to")
            pick = _gumbel_pick(rng, logpref[s], allowed, want)
            act[s] = surv | pick
            newly = pick
            spell_export_pre[s] = np.where(newly, cov["export_share"][s, km][:, None], spell_export_pre[s])
            spell_nout_pre[s] = np.where(newly, n_out_lag[s, k][:, None], spell_nout_pre[s])
            spell_start[s] = np.where(newly, k, spell_start[s])
        if start.any():
            s = np.flatnonzero(start)
            kreg = 1 + np.searchsorted(nreg_p, rng.random(len(s)), side="right").clip(0, MAX_ACTIVE_REGIONS - 1)
            pick = _gumbel_pick(rng, logpref[s], np.ones((len(s), 4), bool), kreg)
            act[s] = pick
            ex = cov["export_share"][s, k - 1] if k > 0 else np.full(len(s), np.nan)
            ex = np.where(pop.first[s] < k, ex, np.nan)
            nout = np.where(pop.first[s] < k, n_out_lag[s, k],
                            cnt_out[pop.prov[s], k] - y[s, k])
            spell_export_pre[s] = np.where(pick, ex[:, None], np.nan)
            spell_nout_pre[s] = np.where(pick, nout[:, None], 0.0)
            spell_start[s] = np.where(pick, k, -1)
        if k > 0:
            ended_any = active[:, k - 1] & ~act & here[:, None]
            ends_total += int(ended_any.sum())
        active[:, k] = act
        # shares: persistent for continuing regions, preference-weighted for new ones
        w = np.zeros((n, 4))
        if k > 0:
            cont_reg = act & active[:, k - 1]
            w = np.where(cont_reg, share[:, k - 1], 0.0)
        newr = act & ~(w > 0)
        w = np.where(newr, prefs[pop.sector] * np.where(w.sum(1, keepdims=True) > 0, 0.6, 1.0), w)
        w = w * np.exp(rng.normal(0, share_sd, (n, 4)))
        w = np.where(act, np.maximum(w, 1e-9), 0.0)
        tot = w.sum(1, keepdims=True)
        sh = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
        # on a per-mille grid: the files hold amounts F x permille, so the pipeline's share
        # 100 * amount / total is the same double as 100 * permille / 1000 here
        permille[:, k] = _permille(sh, act)
        share[:, k] = permille[:, k] / 1000.0
    rows_unobserved += int(active[:, t - 1].sum())  # the last year: no next year

    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in rec.items() if k != "x"}
    cat["x"] = np.concatenate(rec["x"]) if rec["x"] else np.zeros((0, len(COX_TERMS)))
    for k in ("firm", "year", "region", "spell_start", "duration", "status"):
        cat[k] = cat[k].astype(np.int64)
    cat["left_censored"] = cat["left_censored"].astype(bool)
    return Outcome(y=y, active=active, share=share, n_out_lag=n_out_lag, n_off_lag=n_off_lag,
                   n_mig_lag=n_mig_lag, alpha=alpha, u=u, count_out=cnt_out, count_mig=cnt_mig,
                   region_spell_ends=ends_total, region_spell_ends_by_hazard=ends_hazard,
                   permille=permille, hazard_rows=cat, region_rows_firm_stopped=rows_stopped,
                   region_rows_next_unobserved=rows_unobserved)


def _row_covariates(pop: Population, s: np.ndarray, km: int, *, share_pct: np.ndarray,
                    export_pre: np.ndarray, nout_pre: np.ndarray, cnt_mig: np.ndarray,
                    mig: np.ndarray, inp: np.ndarray) -> np.ndarray:
    """len(s) x 4 x len(COX_TERMS): the spell-year covariates of year km for firms s, as
    sql/panel_spell_years.sql computes them from the files (the firm-level ones repeated
    over the four regions)."""
    cov = pop.cov
    if km >= 1:
        # province count of migrant-owned SMEs at km-1, the firm left out if it was there
        mig_lag = cnt_mig[pop.prov[s], km - 1] - mig[s] * inp[s, km - 1]
    else:  # no year before: missing in the files (only spells of the first panel year)
        mig_lag = cnt_mig[pop.prov[s], km] - mig[s]
    firm = {"supplier": cov["supplier"][s, km], "profit": cov["profit"][s, km],
            "wage_per_employee_k": cov["wage_per_employee_k"][s, km], "roi": cov["roi"][s, km],
            "employees": cov["employees"][s, km], "n_migrant_prov_lag": mig_lag}
    out = np.empty((len(s), 4, len(COX_TERMS)))
    for j, name in enumerate(COX_TERMS):
        if name == "share_destination":
            out[:, :, j] = share_pct
        elif name == "export_share_pre":
            out[:, :, j] = export_pre
        elif name == "n_outsourcing_prov_pre":
            out[:, :, j] = nout_pre
        else:
            out[:, :, j] = np.asarray(firm[name], float)[:, None]
    return out


def amounts(rng: np.random.Generator, pop: Population, out: Outcome, cfg: dict,
            window: np.ndarray) -> dict[str, np.ndarray]:
    """Subcontracting amounts by destination, Italian subcontracting and turnover (EUR)."""
    a = cfg["amounts"]
    n, t = pop.n, pop.t
    inp = pop.in_panel()
    base = pop.cov["base_turnover"]
    fw = pop.sector == 1
    ref = np.array([np.median(base[(pop.sector == s)[:, None] & inp]) if ((pop.sector == s)[:, None] & inp).any() else 1e6
                    for s in (0, 1)])[pop.sector]
    survey = inp.copy()
    cr = np.flatnonzero(pop.cross >= 0)
    survey[cr, pop.cross[cr]] = True
    y = out.y == 1
    targets = np.where(fw, float(a["foreign_subcontracting"]["footwear"]), float(a["foreign_subcontracting"]["clothing"]))
    logf = (float(a["foreign_elasticity"]) * (np.log(base) - np.log(ref)[:, None])
            + rng.normal(0, float(a["foreign_firm_sd"]), n)[:, None]
            + rng.normal(0, float(a["foreign_year_sd"]), (n, t)))
    raw = np.exp(logf)
    sel = y & inp & window[None, :]
    mult = targets.copy()
    cap = 1.2 * base
    for _ in range(4):  # the cap bites a little: rescale until the mean hits the target
        f_try = np.minimum(raw * mult[:, None], cap)
        for s in (0, 1):
            m = sel & (pop.sector == s)[:, None]
            if m.any():
                tgt = targets[pop.sector == s][0]
                mult[pop.sector == s] *= tgt / f_try[m].mean()
    foreign = np.where(y & survey, np.maximum(np.minimum(raw * mult[:, None], cap), 5000.0), 0.0)
    # whole thousands of EUR split by the per-mille shares: each region's amount is an integer
    # and 100 * amount / total reproduces the share the backshoring hazard used, bit for bit
    thousands = np.rint(foreign / 1000.0)
    by_region = thousands[:, :, None] * out.permille
    foreign = by_region.sum(2)

    # Italian subcontracting: most district firms, outsourcers and non-suppliers use it
    ip = a["italy_prob"]
    firm = rng.normal(0, 0.5, n)[:, None]
    z = (float(ip["const"]) + float(ip["district"]) * pop.district[:, None] + float(ip["outsourcing"]) * y
         + float(ip["supplier"]) * pop.cov["supplier"] + firm + rng.normal(0, 0.3, (n, t)))
    has_it = z > 0
    it_raw = np.exp(0.9 * (np.log(base) - np.log(ref)[:, None]) + rng.normal(0, float(a["italy_firm_sd"]), n)[:, None]
                    + rng.normal(0, 0.25, (n, t)))
    it_target = np.where(fw, float(a["italy_subcontracting"]["footwear"]), float(a["italy_subcontracting"]["clothing"]))
    italy = np.where(has_it & survey, it_raw, 0.0)
    for s in (0, 1):
        m = sel & (pop.sector == s)[:, None]
        if m.any() and italy[m].mean() > 0:
            italy = np.where((pop.sector == s)[:, None], italy * it_target[pop.sector == s][0] / italy[m].mean(), italy)
    italy = np.rint(np.minimum(italy, 0.8 * base))

    turnover = base + float(a["turnover_from_foreign"]) * foreign
    ceil = pop.ceiling[None, :]
    top = 0.9 * ceil
    room = 0.095 * ceil
    squashed = np.where(turnover > top, top + room * np.tanh((turnover - top) / room), turnover)
    not_cross = np.ones((n, t), bool)
    not_cross[cr, pop.cross[cr]] = False
    turnover = np.rint(np.where(not_cross, squashed, np.maximum(turnover, 1.02 * ceil)))
    # costs never exceed revenues after the squash
    excess = np.divide(foreign + italy, 0.95 * turnover, out=np.zeros_like(turnover), where=turnover > 0)
    f = np.divide(1.0, excess, out=np.ones_like(excess), where=excess > 1)
    thousands = np.where(f < 1, np.maximum(np.floor(thousands * f), 1.0), thousands)
    by_region = thousands[:, :, None] * out.permille
    italy = np.rint(italy * f)
    return {"turnover": turnover, "italy": italy, "by_region": by_region,
            "foreign": by_region.sum(2), "survey": survey}
