"""Orchestration: simulate everything in memory, then write the contract's files and truth.json."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import polars as pl
import yaml

from offshoring import settings
from offshoring.readers.common import sha256_file
from offshoring.synth import aida as aida_mod
from offshoring.synth import census as census_mod
from offshoring.synth import firms as firms_mod
from offshoring.synth import geography as geo_mod
from offshoring.synth import location, outsourcing, returns, writers

GENERATOR = "offshoring.synth"
GENERATOR_VERSION = "1.0.0"
SURVEY_FORMATS = ("csv", "csv.gz", "parquet")
AIDA_FORMATS = ("xlsx", "csv")
# independent random streams, so a change in one part leaves the others' draws alone
_STREAMS = ("census", "population", "covariates", "tax_codes", "aida", "outcome", "amounts", "returns")


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(overrides: dict | None = None) -> dict:
    """config/synth.yaml of the project, merged with a user's copy (OFFSHORING_CONFIG_DIR)
    and then with `overrides`."""
    default = settings.defaults_config_dir() / "synth.yaml"
    with open(default, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    folder = settings.config_dir()
    user = folder / "synth.yaml" if folder is not None else default
    if user.exists() and user.resolve() != default.resolve():
        with open(user, encoding="utf-8") as fh:
            cfg = _deep_merge(cfg, yaml.safe_load(fh) or {})
    return _deep_merge(cfg, overrides or {})


def parse_years(spec: str | Iterable[int] | None, cfg: dict | None = None) -> list[int]:
    """'2005-2012', '2005,2006', range(2005, 2013) or None (the config's years)."""
    if spec is None:
        a, b = (cfg or load_config())["years"]
        return list(range(int(a), int(b) + 1))
    if isinstance(spec, str):
        spec = spec.strip()
        if "-" in spec:
            a, b = spec.split("-", 1)
            years = list(range(int(a), int(b) + 1))
        else:
            years = [int(x) for x in spec.replace(";", ",").split(",") if x.strip()]
    else:
        years = [int(y) for y in spec]
    years = sorted(set(years))
    if not years:
        raise ValueError("no years to generate")
    if years != list(range(years[0], years[-1] + 1)):
        raise ValueError(f"years must be consecutive, got {years}")
    return years


def ceilings(cfg: dict, years: list[int]) -> np.ndarray:
    steps = sorted(((int(e["from"]), float(e["eur"])) for e in cfg["turnover_ceiling"]))
    out = []
    for y in years:
        val = None
        for start, eur in steps:
            if y >= start:
                val = eur
        if val is None:
            raise ValueError(f"no turnover ceiling configured for {y}")
        out.append(val)
    return np.array(out)


_GEO_CACHE: dict[str, geo_mod.Geography] = {}


def _geography(cfg: dict, municipalities_path) -> geo_mod.Geography:
    key = json.dumps([cfg["geography"], cfg["districts"], str(municipalities_path)], sort_keys=True, default=str)
    if key not in _GEO_CACHE:
        _GEO_CACHE.clear()
        _GEO_CACHE[key] = geo_mod.build_geography(cfg, municipalities_path)
    return _GEO_CACHE[key]


@dataclass
class Simulation:
    cfg: dict
    seed: int
    years: list[int]
    geo: geo_mod.Geography
    weights: dict
    census: pl.DataFrame
    pop: firms_mod.Population
    aida: aida_mod.Aida
    off_counts: np.ndarray
    off_engaged: np.ndarray
    outcome: outsourcing.Outcome
    amounts: dict
    tables: dict[int, pl.DataFrame]
    stats: dict
    timings: dict = field(default_factory=dict)

    @property
    def window(self) -> np.ndarray:
        w = np.array([2007 <= y <= 2012 for y in self.years])
        return w if w.any() else np.ones(len(self.years), bool)


def _window_text(sim: "Simulation") -> str:
    ys = [int(y) for y, w in zip(sim.years, sim.window) if w]
    return f"{ys[0]}-{ys[-1]}" if ys[0] != ys[-1] else str(ys[0])


def simulate(firms: int, seed: int, years: list[int], cfg: dict, municipalities_path=None,
             with_returns: bool = True) -> Simulation:
    if firms < 50:
        raise ValueError("at least 50 firms")
    tm: dict[str, float] = {}
    t0 = time.perf_counter()
    rngs = {name: np.random.default_rng(np.random.SeedSequence([int(seed), i]))
            for i, name in enumerate(_STREAMS)}
    ceil = ceilings(cfg, years)
    geo = _geography(cfg, municipalities_path)
    weights = location.sector_weights(geo, cfg)
    tm["geography"] = time.perf_counter() - t0
    census = census_mod.build_census(rngs["census"], geo, cfg, weights)
    tm["census"] = time.perf_counter() - t0 - sum(tm.values())
    pop = firms_mod.draw_population(rngs["population"], geo, cfg, weights, np.array(years), ceil, firms)
    firms_mod.draw_covariates(rngs["covariates"], pop, cfg)
    taken: set[str] = set()
    firms_mod.assign_tax_codes(rngs["tax_codes"], pop, geo, cfg, taken)
    tm["firms"] = time.perf_counter() - t0 - sum(tm.values())
    scale = firms / float(cfg["probit"]["count_scale_reference_firms"])
    aida = aida_mod.build_aida(rngs["aida"], cfg, geo, pop, weights, scale, taken)
    threshold = float(cfg.get("offshoring_ownership_pct", 50))
    in_survey, s_turn = _aida_survey_view(aida, pop, None)
    off_counts, engaged = aida_mod.offshoring_counts(aida, len(geo.provinces), ceil, in_survey, s_turn, threshold)
    tm["aida"] = time.perf_counter() - t0 - sum(tm.values())
    out = outsourcing.simulate(rngs["outcome"], pop, cfg, off_counts, len(geo.provinces))
    window = np.array([2007 <= y <= 2012 for y in years])
    if not window.any():
        window[:] = True
    amts = outsourcing.amounts(rngs["amounts"], pop, out, cfg, window)
    aida_mod.fill_crossers(aida, pop, amts["turnover"])
    in_survey, s_turn = _aida_survey_view(aida, pop, amts["turnover"])
    check, engaged = aida_mod.offshoring_counts(aida, len(geo.provinces), ceil, in_survey, s_turn, threshold)
    if not np.array_equal(check, off_counts):
        raise AssertionError("offshoring counts changed once the crossers' AIDA rows were filled")
    tm["outsourcing"] = time.perf_counter() - t0 - sum(tm.values())
    tables, stats = ({}, {})
    if with_returns:
        tables, stats = returns.survey_tables(rngs["returns"], pop, geo, amts, cfg)
    tm["returns"] = time.perf_counter() - t0 - sum(tm.values())
    return Simulation(cfg=cfg, seed=int(seed), years=list(years), geo=geo, weights=weights, census=census,
                      pop=pop, aida=aida, off_counts=off_counts, off_engaged=engaged, outcome=out,
                      amounts=amts, tables=tables, stats=stats, timings=tm)


def _aida_survey_view(aida, pop, survey_turnover):
    """M x T: whether each AIDA firm has a survey return that year, and its turnover."""
    m, t = aida.firms.height, pop.t
    in_survey = np.zeros((m, t), bool)
    s_turn = np.full((m, t), np.nan)
    rows = aida.firms["survey_row"].to_numpy()
    for r in np.flatnonzero(rows >= 0):
        i = rows[r]
        for k in range(pop.first[i], pop.cross[i] + 1):
            in_survey[r, k] = True
            if survey_turnover is not None:
                s_turn[r, k] = survey_turnover[i, k]
            else:  # before amounts: under the ceiling in the panel, above it at the crossing
                s_turn[r, k] = pop.ceiling[k] * (1.5 if k == pop.cross[i] else 0.5)
    return in_survey, s_turn


# ----------------------------------------------------------------------------- truth


def _py(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _py(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_py(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if math.isnan(f) else round(f, 10)
    if isinstance(v, np.ndarray):
        return _py(v.tolist())
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def moments(sim: Simulation) -> dict:
    """Table 1-style averages over the 2007-2012 window (every generated year when none of
    them is in it: `window_years` says which), the probit counts, and more."""
    pop, out, am = sim.pop, sim.outcome, sim.amounts
    inp = pop.in_panel()
    y = out.y == 1
    win = sim.window[None, :]
    years = sim.years
    res: dict[str, Any] = {"window_years": _window_text(sim)}
    res["firms"] = int(inp.any(1).sum())
    res["firm_years"] = int(inp.sum())
    res["firm_years_by_year"] = {y_: int(inp[:, k].sum()) for k, y_ in enumerate(years)}
    res["outsourcing_firm_years_by_year"] = {y_: int((y & inp)[:, k].sum()) for k, y_ in enumerate(years)}
    res["outsourcing_per_year_2007_2012"] = float((y & inp & win).sum() / sim.window.sum())
    sectors = firms_mod.SECTORS
    res["outsourcing_by_sector_per_year_2007_2012"] = {
        s: float((y & inp & win & (pop.sector == i)[:, None]).sum() / sim.window.sum()) for i, s in enumerate(sectors)}
    res["outsourcing_by_sector_year"] = {
        s: {y_: int((y & inp & (pop.sector == i)[:, None])[:, k].sum()) for k, y_ in enumerate(years)}
        for i, s in enumerate(sectors)}
    tot = (y & inp & win).sum()
    res["outsourcing_macro_share_2007_2012"] = {
        a: float((y & inp & win & (pop.macro == i)[:, None]).sum() / max(tot, 1))
        for i, a in enumerate(firms_mod.MACRO_ORDER)}
    res["outsourcing_rate_by_year"] = {y_: float((y & inp)[:, k].sum() / max(inp[:, k].sum(), 1)) for k, y_ in enumerate(years)}
    mig = pop.migrant[:, None] & inp
    res["migrant_firms_by_year"] = {y_: int(mig[:, k].sum()) for k, y_ in enumerate(years)}
    res["migrant_firms"] = int(pop.migrant[inp.any(1)].sum())
    res["migrant_firms_by_country"] = {c: int(sum(1 for i in np.flatnonzero(pop.migrant) if pop.birthplace[i] == c))
                                       for c in sorted({pop.birthplace[i] for i in np.flatnonzero(pop.migrant)})}
    res["sole_proprietors"] = int(pop.sole.sum())
    res["ceiling_crossers"] = int((pop.cross >= 0).sum())
    res["survey_firm_years_above_ceiling"] = int(sum(
        1 for i in np.flatnonzero(pop.cross >= 0) if am["turnover"][i, pop.cross[i]] > pop.ceiling[pop.cross[i]]))
    # Table 1 profile of outsourcers and of all firms
    table1: dict[str, Any] = {}
    cov = pop.cov
    for i, s in enumerate(sectors):
        sel = y & inp & win & (pop.sector == i)[:, None]
        allf = inp & win & (pop.sector == i)[:, None]
        if not sel.any():
            continue
        table1[s] = {
            "outsourcing_firms_per_year": float(sel.sum() / sim.window.sum()),
            "turnover": float(am["turnover"][sel].mean()),
            "employees": float(cov["employees"][sel].mean()),
            "export_share": float(cov["export_share"][sel].mean()),
            "subcontracting_abroad": float(am["foreign"][sel].mean()),
            "subcontracting_italy": float(am["italy"][sel].mean()),
            "district_share": float(np.broadcast_to(pop.district[:, None], sel.shape)[sel].mean()),
            "all_firms_turnover": float(am["turnover"][allf].mean()),
            "all_firms_employees": float(cov["employees"][allf].mean()),
            "all_firms_export_share": float(cov["export_share"][allf].mean()),
            "all_firms_district_share": float(np.broadcast_to(pop.district[:, None], allf.shape)[allf].mean()),
            "mean_spell_duration_observed": _mean_run((y & inp & (pop.sector == i)[:, None])[:, sim.window]),
            "region_shares_of_amount": {r: float(am["by_region"][sel][:, j].sum() / am["foreign"][sel].sum())
                                        for j, r in enumerate(outsourcing.REGIONS)},
        }
    res["table1_outsourcing"] = table1
    # AIDA offshoring
    a = sim.aida
    eng = sim.off_engaged
    sec = a.firms["sector"].to_numpy()
    res["offshoring_firms_by_year"] = {y_: int(eng[:, k].sum()) for k, y_ in enumerate(years)}
    res["offshoring_per_year_2007_2012"] = float(eng[:, sim.window].sum() / sim.window.sum())
    res["offshoring_by_sector_per_year_2007_2012"] = {
        s: float(eng[sec == s][:, sim.window].sum() / sim.window.sum()) for s in sectors}
    subs = a.subs.filter(pl.col("ownership_pct") > 50)
    held_n = np.zeros(eng.shape)
    held_region = {r: np.zeros(eng.shape) for r in outsourcing.REGIONS}
    f = subs["firm"].to_numpy()
    fy = subs["first_year"].to_numpy()
    ly = subs["last_year"].fill_null(10 ** 6).to_numpy()
    reg = subs["region"].to_numpy()
    for k, y_ in enumerate(years):
        h = (fy <= y_) & (ly >= y_)
        np.add.at(held_n[:, k], f[h], 1)
        for r in outsourcing.REGIONS:
            np.add.at(held_region[r][:, k], f[h & (reg == r)], 1)
    prof = {}
    for s in sectors:
        m = eng & (sec == s)[:, None] & sim.window[None, :]
        if m.any():
            prof[s] = {
                "subsidiaries_per_firm": float(held_n[m].mean()),
                "turnover": float(np.nanmean(np.where(m, a.turnover, np.nan))),
                "employees": float(np.nanmean(np.where(m, a.employees, np.nan))),
                "share_of_firms_with_subsidiary_in": {
                    r: float((held_region[r][m] > 0).mean()) for r in outsourcing.REGIONS},
            }
    res["table1_offshoring"] = prof
    macro_of = np.array([firms_mod.MACRO_ORDER.index(sim.geo.muni.filter(pl.col("prov_idx") == p)["macro_area"][0])
                         for p in range(len(sim.geo.provinces))])
    prov = a.firms["prov_idx"].to_numpy()
    tot = eng[:, sim.window].sum()
    res["offshoring_macro_share_2007_2012"] = {
        ar: float(eng[macro_of[prov] == i][:, sim.window].sum() / max(tot, 1)) for i, ar in enumerate(firms_mod.MACRO_ORDER)}
    res["aida_firms"] = a.firms.height
    res["aida_firms_by_kind"] = {k: int(v) for k, v in a.firms.group_by("kind").len().sort("kind").iter_rows()}
    res["aida_subsidiaries"] = a.subs.height
    res["region_spells_ended"] = out.region_spell_ends
    res["region_spells_ended_by_hazard"] = out.region_spell_ends_by_hazard
    return res


def _mean_run(mask: np.ndarray) -> float:
    """Mean length of runs of consecutive True years (censored at the edges)."""
    runs = []
    for row in mask[mask.any(1)]:
        n = 0
        for v in row:
            if v:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        if n:
            runs.append(n)
    return float(np.mean(runs)) if runs else float("nan")


def _cox_truth(sim: Simulation) -> dict:
    """The Table 3 estimand: what the backshoring hazard of the generator is, on which rows of
    panel.spell_years it is identified, and its true values."""
    cfg = sim.cfg
    n = sim.pop.n
    b = outsourcing.cox_params(cfg, n)
    coefficients = {**b, **outsourcing.cox_dummy_params(cfg)}
    rows = sim.outcome.hazard_rows
    window = ~rows["left_censored"]
    durations = sorted({int(d) for d in rows["duration"]}) or [1]
    kappa = outsourcing.weibull_shape(cfg)
    return {
        "approximate": False,
        "model": "region spell (firm x foreign region) of foreign subcontracting, spell time t in years since "
                 "it began (spell-year of calendar year m = (m - start, m - start + 1], as "
                 "sql/panel_spell_years.sql): continuous-time proportional hazard "
                 "lambda(t | x) = lambda0_s(t) exp(b'x_m), Lambda0_s(t) = exp(c_s) t^kappa, x_m the covariates of "
                 "the spell-year as the pipeline computes them from the files, constant within it; s = industry "
                 "(footwear - clothing is the coefficient of the footwear dummy), no territorial effects",
        "estimand": "b = the log hazard ratios below, of the hazard that a region spell ends while the firm keeps "
                    "subcontracting abroad. The same b is the coefficient vector of (1) the Cox model in continuous "
                    "time and (2) the grouped-time proportional hazard the annual data follow exactly: "
                    "P(the region is gone next year | at risk in spell-year d, x) = 1 - exp(-exp(gamma_s,d + b'x)), "
                    "gamma_s,d = log(Lambda0_s(d) - Lambda0_s(d-1)) (Prentice-Gloeckler; "
                    "offshoring.econometrics.GroupedPH is its maximum likelihood estimator). A Cox fit on the "
                    "annual (start, stop] rows with Efron ties approximates the grouped likelihood (tied "
                    "event times): bench/montecarlo_table3.py measures it.",
        "competing_end": "the firm stopping foreign subcontracting altogether (the Table 2 probit, drawn before and "
                         "independently of the region clocks given the past) ends every region spell: a competing "
                         "end that censors each of them at the start of that spell-year. sql/panel_outsourcing_spells"
                         ".sql codes it as backshoring; the estimand needs it as censoring",
        "risk_rows": "the rows of panel.spell_years on which the hazard is identified, "
                     "offshoring.econometrics.grouped_ph.region_spell_risk_rows: region destinations, spells not "
                     "left-censored, without (a) the spell-year after which the firm stopped subcontracting abroad "
                     "altogether (the 'any' spell ends with backshoring that year) and (b) the last spell-year of a "
                     "censored spell (left the survey, crossed the ceiling, last survey year: next year unseen)",
        "time_scale": "years since the spell began; the first spell-year is (0, 1]; events and censoring at whole years",
        "ties": "grouped (interval-censored) annual data: exact in the complementary log-log model; the Cox "
                "partial likelihood needs a ties rule (config/cox_table3.yaml: efron)",
        "coefficients": coefficients,
        "hazard_ratios": {k: float(np.exp(v)) for k, v in coefficients.items()},
        "count_coefficient_scale": float(cfg["probit"]["count_scale_reference_firms"]) / n,
        "baseline": {
            "cumulative": "Lambda0_s(t) = exp(c_s) * t^kappa",
            "c": {s: float(v) for s, v in cfg["backshoring"]["baseline"].items()},
            "kappa": kappa,
            "grouped_gamma_clothing": outsourcing.grouped_baseline(cfg, durations, "clothing"),
            "grouped_gamma_footwear": outsourcing.grouped_baseline(cfg, durations, "footwear"),
        },
        "industry_effect_footwear": coefficients["footwear"],
        "territorial_effects": "none (0 for every macro-area)",
        "covariates_at": "the spell-year's own year (share, supplier, profit, wage, ROI, employees; the migrant "
                         "count at the year before it); export_share_pre and n_outsourcing_prov_pre fixed at the "
                         "spell start (year before it / count at the year before it)",
        "spell_years": {
            "hazard_rows": int(len(rows["status"])),
            "hazard_events": int(rows["status"].sum()),
            "hazard_rows_not_left_censored": int(window.sum()),
            "hazard_events_not_left_censored": int(rows["status"][window].sum()),
            "rows_firm_stopped_outsourcing": sim.outcome.region_rows_firm_stopped,
            "rows_next_year_unobserved": sim.outcome.region_rows_next_unobserved,
        },
    }


def truth(sim: Simulation, files: dict[str, Any]) -> dict:
    cfg = sim.cfg
    n = sim.pop.n
    p = cfg["probit"]
    params = outsourcing.probit_params(cfg, n)
    sigma_u = float(p["sigma_u"])
    dl = location.district_llmas(sim.geo)
    mom = moments(sim)
    stats = sim.stats
    counts = {
        "firms": mom["firms"],
        "firm_years": mom["firm_years"],
        "firm_years_by_year": mom["firm_years_by_year"],
        "outsourcing_firm_years_by_year": mom["outsourcing_firm_years_by_year"],
        "offshoring_firms_by_year": mom["offshoring_firms_by_year"],
        "migrant_firms_by_year": mom["migrant_firms_by_year"],
        "migrant_firms": mom["migrant_firms"],
        "survey_firm_years_above_ceiling": mom["survey_firm_years_above_ceiling"],
        "ceiling_crossers": mom["ceiling_crossers"],
        "refilings": sum(stats.get("refilings", {}).values()),
        "refilings_by_year": stats.get("refilings", {}),
        "refilings_changing_foreign_subcontracting": sum(stats.get("refilings_flipping_outsourcing", {}).values()),
        "survey_returns_by_year": stats.get("returns", {}),
        "roi_missing": sum(stats.get("roi_missing", {}).values()),
        "district_llmas": dl.height,
        "llmas": sim.geo.llma.height,
        "aida_firms": mom["aida_firms"],
        "aida_subsidiaries": mom["aida_subsidiaries"],
    }
    return _py({
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": sim.seed,
        "firms_requested": n,
        "years": sim.years,
        "turnover_ceiling": {y: float(c) for y, c in zip(sim.years, sim.pop.ceiling)},
        "config_sha256": hashlib.sha256(json.dumps(_py(cfg), sort_keys=True).encode()).hexdigest(),
        "files": files,
        "probit": {
            "model": "y_it = 1[x_it'b + alpha_i + e_it > 0], e ~ N(0,1), t after the firm's first panel year; "
                     "alpha_i = sum_v mean_<v>_lag_i * a_v + sum_v init_<v>_i * b_v + u_i, u_i ~ N(0, sigma_u^2)",
            "params": params,
            "sigma_u": sigma_u,
            "lnsig2u": math.log(sigma_u ** 2),
            "rho": sigma_u ** 2 / (1 + sigma_u ** 2),
            "count_coefficient_scale": float(p["count_scale_reference_firms"]) / n,
            "regressors": list(outsourcing.PROBIT_TERMS),
            "re_variables": list(outsourcing.RE_VARS),
            "definitions": {
                "estimation_sample": "survey SME firm-years (latest filing, turnover <= ceiling) after the firm's "
                                     "first panel year; every panel firm has consecutive years",
                "y_initial": "outcome in the firm's first panel year",
                "mean_<v>_lag": "mean of v at t-1 over the firm's estimation years (v over first..last-1)",
                "init_<v>": "v in the firm's first panel year",
                "n_outsourcing_prov_lag": "other survey SMEs of the province (current sigla) with y=1 at t-1",
                "n_offshoring_prov_lag": "AIDA firms of the province engaged in offshoring at t-1 "
                                         "(sql/panel_aida_large.sql rule, ownership > 50%)",
                "area_*": "ISTAT ripartizione of the municipality, base North-West; footwear: base clothing",
            },
            "initial_condition": {
                "model": "y_i,f = 1[const + scale * (x_i,f'b + alpha_i - u_i) + tau * tau_i + e_i > 0], e_i ~ N(0, sd^2); "
                         "x_i,f'b is the dynamic index without y_initial, y_lag and the province counts, with the "
                         "covariates of the first year; alpha_i - u_i the observable part of the random effect; "
                         "tau_i the firm type moving the covariate means. u_i is independent of y_i,f, so "
                         "alpha_i | (y_i,f, x_i) has exactly the Wooldridge form",
                "params": p["initial"],
            },
        },
        "cox": _cox_truth(sim),
        "districts": {
            "llma_codes": dl["llma_code"].to_list(),
            "by_llma": dl.to_dicts(),
            "procedure": "Sforzi-ISTAT 2011 (census/reference_district_flags reproduces it on census_employment.csv)",
        },
        "counts": counts,
        "moments": mom,
        "targets": cfg["targets"],
        "geography": {
            "llma_count": sim.geo.llma.height,
            "llma_edition": cfg["geography"]["llma_edition"],
            "contiguity": sim.geo.geometry_note,
            "municipalities": sim.geo.muni.height,
        },
        "destinations": {
            "outsourcing_preferences": cfg["destinations"]["outsourcing"],
            "fdi_preferences": cfg["destinations"]["fdi"],
            "country_region": {c: r for r, cs in cfg["destinations"]["countries"].items() for c in cs},
        },
        "parameters": cfg,
    })


# ----------------------------------------------------------------------------- files


_OWN_FILES = (
    ("survey", re.compile(r"^survey_\d{4}\.(csv|csv\.gz|parquet)$")),
    ("aida", re.compile(r"^aida_(firms\.(xlsx|csv)|subsidiaries\.csv)$")),
    ("reference", re.compile(r"^(llma|census_employment)\.csv$")),
)


def _remove_stale(out_dir: Path) -> list[str]:
    """Delete contract files a previous run may have left (other years or formats), so the
    folder holds exactly one delivery per input; nothing else is touched."""
    removed = []
    for sub, pattern in _OWN_FILES:
        folder = out_dir / sub
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.is_file() and pattern.match(p.name):
                    p.unlink()
                    removed.append(p.relative_to(out_dir).as_posix())
    truth_file = out_dir / "truth.json"
    if truth_file.exists():
        truth_file.unlink()
        removed.append("truth.json")
    return removed


def refuse_foreign_files(out_dir: Path) -> None:
    """Refuse a folder holding contract files the generator did not write (real deliveries,
    edited files): writing there would replace them, and synthetic data would sit beside
    real data."""
    from offshoring.truth import contract_files, generated_folder_problem

    if out_dir.exists() and contract_files(out_dir):
        problem = generated_folder_problem(out_dir)
        if problem:
            raise ValueError(f"{out_dir} holds files the generator did not write ({problem}); "
                             f"synthetic data is written only into an empty folder or over its own files. "
                             f"Choose another folder with --out.")


def write_files(sim: Simulation, out_dir: Path, aida_format: str = "xlsx", survey_format: str = "csv",
                encoding: str = "cp1252") -> dict[str, Any]:
    out_dir = Path(out_dir)
    _remove_stale(out_dir)
    files: dict[str, Any] = {"survey": {}}
    for year, df in sim.tables.items():
        path = writers.write_survey(df, out_dir, year, survey_format, encoding)
        files["survey"][year] = path.relative_to(out_dir).as_posix()
    a = sim.aida
    aida_cols = a.firms.select("tax_code", "company_name", "province", "ateco_2007")
    if aida_format == "xlsx":
        p = writers.write_aida_xlsx(out_dir / "aida" / "aida_firms.xlsx", aida_cols, sim.years, a.turnover,
                                    a.employees, a.employees_ns)
    elif aida_format == "csv":
        p = writers.write_aida_csv(out_dir / "aida" / "aida_firms.csv", aida_cols, sim.years, a.turnover,
                                   a.employees, a.employees_ns, encoding)
    else:
        raise ValueError(f"unknown AIDA format {aida_format!r} (xlsx, csv)")
    files["aida_firms"] = p.relative_to(out_dir).as_posix()
    subs = (a.subs.select("tax_code", "subsidiary_name", "country_iso2", "ownership_pct", "first_year", "last_year")
            .sort(["tax_code", "first_year", "country_iso2", "subsidiary_name", "ownership_pct"]))
    p = writers.write_csv(subs, out_dir / "aida" / "aida_subsidiaries.csv", encoding)
    files["aida_subsidiaries"] = p.relative_to(out_dir).as_posix()
    p = writers.write_csv(geo_mod.llma_table(sim.geo), out_dir / "reference" / "llma.csv", encoding)
    files["llma"] = p.relative_to(out_dir).as_posix()
    p = writers.write_csv(sim.census, out_dir / "reference" / "census_employment.csv", encoding)
    files["census_employment"] = p.relative_to(out_dir).as_posix()
    return files


def generate(out_dir: str | Path, firms: int | None = None, seed: int | None = None,
             years: str | Iterable[int] | None = None, aida_format: str = "xlsx",
             survey_format: str = "csv", encoding: str = "cp1252", config: dict | None = None,
             municipalities_path: str | Path | None = None) -> dict[str, Any]:
    """Write a synthetic raw-data folder (the data contract) and truth.json; return a summary.

    Same arguments => byte-identical files.
    """
    if survey_format not in SURVEY_FORMATS:
        raise ValueError(f"survey_format must be one of {SURVEY_FORMATS}")
    if aida_format not in AIDA_FORMATS:
        raise ValueError(f"aida_format must be one of {AIDA_FORMATS}")
    t0 = time.perf_counter()
    cfg = load_config(config)
    firms = int(firms if firms is not None else cfg["firms"])
    seed = int(seed if seed is not None else cfg["seed"])
    yrs = parse_years(years, cfg)
    sim = simulate(firms, seed, yrs, cfg, municipalities_path)
    t1 = time.perf_counter()
    out_dir = Path(out_dir)
    refuse_foreign_files(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = write_files(sim, out_dir, aida_format, survey_format, encoding)
    files["truth"] = "truth.json"
    tr = truth(sim, files)
    # the synthetic mode trusts this folder only while it holds exactly these files, unchanged
    written = [*files["survey"].values(), files["aida_firms"], files["aida_subsidiaries"], files["llma"],
               files["census_employment"]]
    tr["file_sha256"] = {rel: sha256_file(out_dir / rel) for rel in written}
    (out_dir / "truth.json").write_text(json.dumps(tr, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    t2 = time.perf_counter()
    c = tr["counts"]
    return {
        "out_dir": str(out_dir),
        "files": files,
        "seed": seed,
        "firms": c["firms"],
        "firm_years": c["firm_years"],
        "outsourcing_per_year": tr["moments"]["outsourcing_per_year_2007_2012"],
        "offshoring_per_year": tr["moments"]["offshoring_per_year_2007_2012"],
        # the years those averages are over: 2007-2012 where generated, else every generated year
        "per_year_window": _window_text(sim),
        "district_llmas": c["district_llmas"],
        "seconds_simulate": round(t1 - t0, 3),
        "seconds_write": round(t2 - t1, 3),
        "seconds_total": round(t2 - t0, 3),
        "timings": {k: round(v, 3) for k, v in sim.timings.items()},
    }
