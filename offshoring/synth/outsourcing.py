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

Destinations: an outsourcing firm subcontracts in one or more of four regions. A region
spell ends with a discrete-time proportional hazard (complementary log-log) whose
coefficients are the logs of C&P Table 3's hazard ratios, evaluated at t-1; when the firm
stops outsourcing every region spell ends.
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
    b = cfg["backshoring"]
    scale = float(cfg["probit"]["count_scale_reference_firms"]) / firms
    out = {}
    for k in COX_TERMS:
        v = float(np.log(float(b["hazard_ratios"][k])))
        out[k] = v * scale if k in COX_COUNT_TERMS else v
    return out


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
    rows = np.arange(n)

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
    base_h = np.array([float(cfg["backshoring"]["baseline"][s]) for s in ("clothing", "footwear")])[pop.sector]

    y = np.zeros((n, t), np.int8)
    active = np.zeros((n, t, 4), bool)
    share = np.zeros((n, t, 4))
    n_out_lag = np.full((n, t), np.nan)
    n_off_lag = np.full((n, t), np.nan)
    n_mig_lag = np.full((n, t), np.nan)
    cnt_out = np.zeros((n_prov, t))
    cnt_mig = np.zeros((n_prov, t))
    spell_export_pre = np.full((n, 4), np.nan)
    spell_nout_pre = np.zeros((n, 4))
    ends_total = 0
    ends_hazard = 0
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
        stay = yk & prev_y
        start = yk & ~prev_y
        act = np.zeros((n, 4), bool)
        if k > 0 and stay.any():
            s = np.flatnonzero(stay)
            prev_act = active[s, k - 1]
            km = k - 1
            # the spell-year row of t-1 carries n_migrant_prov_lag of t-1 (count at t-2)
            mig_lag = (cnt_mig[pop.prov[s], km - 1] if km >= 1 else cnt_mig[pop.prov[s], km]) - mig[s]
            eta = (base_h[s][:, None]
                   + cox["share_destination"] * 100 * share[s, km]
                   + (cox["supplier"] * cov["supplier"][s, km] + cox["profit"] * cov["profit"][s, km]
                      + cox["wage_per_employee_k"] * cov["wage_per_employee_k"][s, km]
                      + cox["roi"] * cov["roi"][s, km] + cox["employees"] * cov["employees"][s, km]
                      + cox["n_migrant_prov_lag"] * mig_lag)[:, None]
                   + cox["export_share_pre"] * np.nan_to_num(spell_export_pre[s])
                   + cox["n_outsourcing_prov_pre"] * spell_nout_pre[s])
            h = 1 - np.exp(-np.exp(eta))
            end = prev_act & (rng.random(prev_act.shape) < h)
            ends_hazard += int(end.sum())
            surv = prev_act & ~end
            none_left = ~surv.any(1)
            add = rng.random(len(s)) < add_prob
            want = (none_left | add).astype(int)
            # a region that just ended is not taken up again the same year (that would be a
            # continuation in the data, not backshoring), unless no other region is left
            allowed = ~surv & ~end
            allowed = np.where(allowed.any(1)[:, None], allowed, ~surv)
            pick = _gumbel_pick(rng, logpref[s], allowed, want)
            act[s] = surv | pick
            newly = pick
            spell_export_pre[s] = np.where(newly, cov["export_share"][s, km][:, None], spell_export_pre[s])
            spell_nout_pre[s] = np.where(newly, n_out_lag[s, k][:, None], spell_nout_pre[s])
        if start.any():
            s = np.flatnonzero(start)
            kreg = 1 + np.searchsorted(nreg_p, rng.random(len(s)), side="right").clip(0, 2)
            pick = _gumbel_pick(rng, logpref[s], np.ones((len(s), 4), bool), kreg)
            act[s] = pick
            ex = cov["export_share"][s, k - 1] if k > 0 else np.full(len(s), np.nan)
            ex = np.where(pop.first[s] < k, ex, np.nan)
            nout = np.where(pop.first[s] < k, n_out_lag[s, k],
                            cnt_out[pop.prov[s], k] - y[s, k])
            spell_export_pre[s] = np.where(pick, ex[:, None], np.nan)
            spell_nout_pre[s] = np.where(pick, nout[:, None], 0.0)
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
        sh = np.where(act, np.maximum(sh, 0.04), 0.0)
        tot = sh.sum(1, keepdims=True)
        share[:, k] = np.divide(sh, tot, out=np.zeros_like(sh), where=tot > 0)

    return Outcome(y=y, active=active, share=share, n_out_lag=n_out_lag, n_off_lag=n_off_lag,
                   n_mig_lag=n_mig_lag, alpha=alpha, u=u, count_out=cnt_out, count_mig=cnt_mig,
                   region_spell_ends=ends_total, region_spell_ends_by_hazard=ends_hazard)


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
    by_region = np.rint(foreign[:, :, None] * out.share)
    by_region = np.where(out.active, np.maximum(by_region, 1.0), 0.0)
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
    by_region = np.where(out.active, np.maximum(np.rint(by_region * f[:, :, None]), 1.0), 0.0)
    italy = np.rint(italy * f)
    return {"turnover": turnover, "italy": italy, "by_region": by_region,
            "foreign": by_region.sum(2), "survey": survey}
