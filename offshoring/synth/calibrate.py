"""Calibrate the probit's free intercepts to the targets (run by hand; values go to config).

Table 2 gives the slopes; the constant, the sector and area effects ("Industry dummies:
yes", "Territorial dummies: yes") and the intercept of the first-year equation are not
reported. This script finds values that give, at the default size and seed:

* about `targets.outsourcing_per_year` outsourcing firms a year in 2007-2012 (Table 1: 741),
* the Table 1 split by sector (486 clothing, 255 footwear),
* `targets.outsourcing_macro_share` by macro-area,
* a first-year count equal to the 2007-2012 average (no drift).

The covariates do not depend on these parameters, so the population is simulated once and
the outcome re-run with common random numbers.

    python -m offshoring.synth.calibrate [--firms 17000] [--seed S] [--rounds 40]
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np

from offshoring.synth import firms as firms_mod
from offshoring.synth import outsourcing
from offshoring.synth.dataset import _STREAMS, load_config, parse_years, simulate

AREAS = {"North-East": "area_north_east", "Centre": "area_centre", "South": "area_south",
         "Islands": "area_islands"}


def _measure_one(sim, cfg) -> dict:
    pop = sim.pop
    inp = pop.in_panel()
    # the generator's own outcome stream, so the default seed reproduces exactly
    rng = np.random.default_rng(np.random.SeedSequence([sim.seed, _STREAMS.index("outcome")]))
    out = outsourcing.simulate(rng, pop, cfg, sim.off_counts, len(sim.geo.provinces))
    y = (out.y == 1) & inp
    win = sim.window
    per_year = y.sum(0)
    return {
        "total": float(per_year[win].mean()),
        "first": float(per_year[0]),
        "sector": {s: float(y[:, win][pop.sector == i].sum() / win.sum()) for i, s in enumerate(firms_mod.SECTORS)},
        "macro": {a: float(y[:, win][pop.macro == i].sum() / max(y[:, win].sum(), 1))
                  for i, a in enumerate(firms_mod.MACRO_ORDER)},
        "by_year": per_year.tolist(),
    }


def _measure(sims, cfg) -> dict:
    """Averages over several simulated populations (seed-to-seed variation is large)."""
    ms = [_measure_one(s, cfg) for s in sims]
    avg = lambda key: {k: float(np.mean([m[key][k] for m in ms])) for k in ms[0][key]}  # noqa: E731
    return {"total": float(np.mean([m["total"] for m in ms])), "first": float(np.mean([m["first"] for m in ms])),
            "sector": avg("sector"), "macro": avg("macro"),
            "by_year": np.mean([m["by_year"] for m in ms], axis=0).round(1).tolist()}


def calibrate(firms: int = 17000, seed: int = 20240607, rounds: int = 40, macro: bool = True,
              verbose: bool = True, overrides: dict | None = None, populations: int = 4) -> dict:
    cfg = load_config(overrides)
    sims = [simulate(firms, seed + j, parse_years(None, cfg), cfg, with_returns=False) for j in range(populations)]
    tg = cfg["targets"]
    scale = firms / float(cfg["probit"]["count_scale_reference_firms"])
    total_t = float(tg["outsourcing_per_year"]) * scale
    sec_t = {s: float(v) * scale for s, v in tg["outsourcing_by_sector"].items()}
    macro_t = tg["outsourcing_macro_share"]
    c = copy.deepcopy(cfg)
    p = c["probit"]
    k = 0.3
    keys = ("const", "footwear", *AREAS.values())
    history: list[dict] = []
    for r in range(rounds):
        m = _measure(sims, c)
        p["const"] += k * np.log(total_t / max(m["total"], 1))
        fw_gap = np.log(sec_t["footwear"] / max(m["sector"]["footwear"], 1)) - np.log(
            sec_t["clothing"] / max(m["sector"]["clothing"], 1))
        p["footwear"] += k * fw_gap
        p["initial"]["const"] += 0.6 * k * np.log(m["total"] / max(m["first"], 1))
        if macro:
            base = np.log(macro_t["North-West"] / max(m["macro"]["North-West"], 1e-3))
            for area, name in AREAS.items():
                p[name] += 0.5 * k * (np.log(macro_t[area] / max(m["macro"][area], 1e-3)) - base)
        if verbose:
            print(r, round(m["total"], 1), {s: round(v, 1) for s, v in m["sector"].items()},
                  {a: round(v, 3) for a, v in m["macro"].items()}, "first", m["first"])
        history.append({**{kk: p[kk] for kk in keys}, "initial": p["initial"]["const"]})
    # the spillover feedback makes the outcome jumpy in the parameters: average the second
    # half of the iterations (Polyak averaging)
    tail = history[len(history) // 2:]
    for kk in keys:
        p[kk] = float(np.mean([h[kk] for h in tail]))
    p["initial"]["const"] = float(np.mean([h["initial"] for h in tail]))
    m = _measure(sims, c)
    result = {"const": round(p["const"], 3), "footwear": round(p["footwear"], 3),
              "initial_const": round(p["initial"]["const"], 3),
              **{name: round(p[name], 3) for name in AREAS.values()}, "measured": m}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m offshoring.synth.calibrate")
    ap.add_argument("--firms", type=int, default=17000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--no-macro", action="store_true")
    ap.add_argument("--populations", type=int, default=4, help="seeds averaged over")
    ap.add_argument("--overrides", default="{}", help="JSON merged into the config")
    a = ap.parse_args(argv)
    cfg = load_config()
    res = calibrate(a.firms, a.seed if a.seed is not None else int(cfg["seed"]), a.rounds, not a.no_macro,
                    overrides=json.loads(a.overrides), populations=a.populations)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
