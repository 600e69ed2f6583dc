"""Where the synthetic firms are: municipality weights per sector.

A sector's firms split into a district part (share `district_firm_share`, placed in the
sector's district LLMAs by their configured shares, a small part in other districts) and
a background part over every other municipality, proportional to population^exponent
times a regional multiplier and a hotspot multiplier for named cities' areas. So the
expected share of firms in districts is exactly the configured one.
"""

from __future__ import annotations

import numpy as np
import polars as pl

SECTORS = ("clothing", "footwear")


def sector_weights(geo, cfg: dict) -> dict[str, np.ndarray]:
    muni = geo.muni
    pop = muni["pop"].to_numpy()
    gamma = float(cfg["geography"]["population_exponent"])
    base = pop ** gamma
    llma_of = muni["llma_idx"].to_numpy()
    kind = np.array(geo.llma["kind"].to_list())
    in_district = kind[llma_of] == "district"
    region = np.array(muni["region"].to_list())
    names = muni["municipality_name"].to_list()
    name_llma: dict[str, int] = {}
    for nm, li, p in sorted(zip(names, llma_of, pop), key=lambda r: -r[2]):
        name_llma.setdefault(nm, int(li))
    out = {}
    other_share = float(cfg["district_share_other_districts"])
    for sector in SECTORS:
        bcfg = cfg["background"][sector]
        rmult = np.array([float(bcfg["regions"].get(r, 1.0)) for r in region])
        hot = np.ones(geo.llma.height)
        for nm, m in bcfg.get("hotspots", {}).items():
            if nm not in name_llma:
                raise ValueError(f"synth config: hotspot {nm!r} is not a municipality")
            hot[name_llma[nm]] *= float(m)
        bg = np.where(in_district, 0.0, base * rmult * hot[llma_of])
        bg = bg / bg.sum()
        dist = np.zeros_like(bg)
        own = cfg["districts"][sector]
        own_llma = {}
        for e in own:
            li = int(llma_of[geo.anchors[f"{e['anchor']}|{e.get('province')}"]])
            own_llma[li] = own_llma.get(li, 0.0) + float(e["share"])
        tot_share = sum(own_llma.values())
        for li, sh in own_llma.items():
            rows = llma_of == li
            dist[rows] += (1 - other_share) * sh / tot_share * base[rows] / base[rows].sum()
        others = in_district & ~np.isin(llma_of, list(own_llma))
        if others.any():
            dist[others] += other_share * base[others] / base[others].sum()
        else:
            dist *= 1 / (1 - other_share)
        d = float(cfg["district_firm_share"][sector])
        out[sector] = (1 - d) * bg + d * dist
    return _cap_provinces(out, geo, cfg)


def _cap_provinces(w: dict[str, np.ndarray], geo, cfg: dict) -> dict[str, np.ndarray]:
    """Scale down provinces holding more than `max_province_share` of all firms.

    The province spillover of Table 2 (0.018 per outsourcing firm of the province) feeds
    back on itself in the simulated economy; a province with too many firms tips into
    near-universal outsourcing. The cap keeps every province below that tipping point.
    """
    cap = float(cfg["geography"].get("max_province_share", 1.0))
    fshare = float(cfg["population"]["footwear_share"])
    prov = geo.muni["prov_idx"].to_numpy()
    n_prov = len(geo.provinces)
    w = {k: v / v.sum() for k, v in w.items()}
    for _ in range(50):
        tot = (1 - fshare) * w["clothing"] + fshare * w["footwear"]
        share = np.bincount(prov, weights=tot, minlength=n_prov)
        over = share > cap * 1.0005
        if not over.any():
            break
        f = np.where(over, cap / np.maximum(share, 1e-12), 1.0)[prov]
        w = {k: v * f for k, v in w.items()}
        w = {k: v / v.sum() for k, v in w.items()}
    return w


def district_llmas(geo) -> pl.DataFrame:
    return (geo.llma.filter(pl.col("kind") == "district")
            .select("llma_code", "llma_name", "province", "division", "specialisation", "anchor")
            .sort("llma_code"))
