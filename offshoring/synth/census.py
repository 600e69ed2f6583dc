"""Census employment by LLMA x ATECO division x local-unit size class.

Built so that the Sforzi-ISTAT industrial-district procedure finds exactly the intended
districts with wide margins:

* ordinary areas have a manufacturing share well below the national one (LQ < 0.9);
* district areas have 38-50% of employment in manufacturing, a dominant division holding
  about half of it, and no local unit with 250 or more employees in manufacturing;
* large-plant areas are manufacturing-specialised but most manufacturing employment is in
  units of 250+ employees, so the small-and-medium-enterprise test fails.

`reference_district_flags` is a compact implementation of the procedure (ISTAT 2015,
"I distretti industriali 2011"), used by the tests to check the margins.
"""

from __future__ import annotations

import numpy as np
import polars as pl

SIZE_CLASSES = ("0-9", "10-49", "50-249", "250+")
_BOUNDS = ((0, 9), (10, 49), (50, 249), (250, None))

MANUFACTURING = tuple(f"{d:02d}" for d in range(10, 34))
# national composition of manufacturing employment (percent, Census 2011 order of magnitude)
MANUF_MIX = {
    "10": 11.0, "11": 1.2, "12": 0.2, "13": 3.5, "14": 5.0, "15": 3.5, "16": 3.5, "17": 1.8,
    "18": 2.3, "19": 0.5, "20": 3.0, "21": 1.7, "22": 4.5, "23": 5.5, "24": 3.5, "25": 17.0,
    "26": 3.0, "27": 4.0, "28": 12.5, "29": 4.0, "30": 3.0, "31": 4.5, "32": 2.5, "33": 3.5,
}
# every other non-farm division (percent of non-manufacturing employment)
OTHER_MIX = {
    "05": 0.02, "06": 0.03, "07": 0.01, "08": 0.25, "09": 0.03,
    "35": 0.6, "36": 0.3, "37": 0.1, "38": 0.7, "39": 0.05,
    "41": 3.0, "42": 1.0, "43": 6.5,
    "45": 2.5, "46": 8.0, "47": 11.5,
    "49": 4.0, "50": 0.3, "51": 0.1, "52": 2.0, "53": 1.0,
    "55": 1.8, "56": 6.0,
    "58": 0.3, "59": 0.2, "60": 0.2, "61": 0.6, "62": 2.0, "63": 0.6,
    "64": 2.5, "65": 0.4, "66": 1.5, "68": 1.2,
    "69": 3.0, "70": 1.3, "71": 2.0, "72": 0.3, "73": 0.5, "74": 0.6, "75": 0.1,
    "77": 0.4, "78": 1.2, "79": 0.3, "80": 0.5, "81": 3.0, "82": 1.5,
    "84": 5.0, "85": 2.0, "86": 4.0, "87": 0.8, "88": 2.0,
    "90": 0.2, "91": 0.2, "92": 0.3, "93": 0.6, "94": 1.0, "95": 0.3, "96": 2.0,
}
OTHER_SIZE_SHARES = (0.45, 0.25, 0.15, 0.15)

# industry groups of the district procedure (main manufacturing specialisations)
GROUPS = {
    "food": ("10", "11", "12"),
    "textile_clothing": ("13", "14"),
    "leather_footwear": ("15",),
    "household_goods": ("16", "23", "31"),
    "jewellery_instruments": ("32",),
    "mechanics": ("25", "26", "27", "28", "33"),
    "metallurgy": ("24",),
    "chemicals_plastics": ("19", "20", "21", "22"),
    "transport_equipment": ("29", "30"),
    "paper_printing": ("17", "18"),
}
# macro-sectors compared with manufacturing in the prevalence test
MACRO_SECTORS = {
    "other_industry": ("05", "06", "07", "08", "09", "35", "36", "37", "38", "39", "41", "42", "43"),
    "consumer_services": ("45", "47", "55", "56", "90", "91", "92", "93", "94", "95", "96"),
    "business_services": ("46", "49", "50", "51", "52", "53", "58", "59", "60", "61", "62", "63",
                          "64", "65", "66", "68", "69", "70", "71", "72", "73", "74", "75",
                          "77", "78", "79", "80", "81", "82"),
    "social_services": ("84", "85", "86", "87", "88"),
}


def _units(rng: np.random.Generator, emp: np.ndarray, mean_sizes) -> np.ndarray:
    """Local units per size class, each within the class's employee bounds."""
    out = np.zeros(emp.shape, dtype=np.int64)
    for c, (lo, hi) in enumerate(_BOUNDS):
        e = emp[..., c]
        u = np.rint(e / mean_sizes[c] * np.exp(rng.normal(0, 0.15, size=e.shape)))
        u = np.maximum(u, np.ceil(e / hi) if hi else 1)
        if lo > 0:
            u = np.minimum(u, np.floor(e / lo))
        out[..., c] = np.where(e > 0, np.maximum(u, 1), 0)
    return out


def _split_sizes(rng, emp: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Integer employees by size class (last axis), moved down where a class is too small."""
    s = shares * np.exp(rng.normal(0, 0.12, size=shares.shape))
    s = np.where(shares > 0, s, 0.0)
    s = s / s.sum(-1, keepdims=True)
    tot = np.rint(emp).astype(np.int64)
    e = np.floor(tot[..., None] * s).astype(np.int64)
    e[..., 0] += tot - e.sum(-1)
    for c in (3, 2, 1):
        lo = _BOUNDS[c][0]
        small = (e[..., c] > 0) & (e[..., c] < lo)
        e[..., c - 1] += np.where(small, e[..., c], 0)
        e[..., c] = np.where(small, 0, e[..., c])
    return e


def build_census(rng: np.random.Generator, geo, cfg: dict, fashion_weights: dict[str, np.ndarray]) -> pl.DataFrame:
    """The census table.

    `fashion_weights[sector]` are municipality location weights of survey firms; their
    LLMA sums place the non-district employment of divisions 14 and 15.
    """
    ccfg = cfg["census"]
    llma = geo.llma
    n_l = llma.height
    llma_of = geo.muni["llma_idx"].to_numpy()
    macro = llma["macro_area"].to_list()
    kind = np.array(llma["kind"].to_list())
    div = llma["division"].to_list()
    pop = llma["pop"].to_numpy()
    rate = np.array([ccfg["employment_rate"][m] for m in macro])
    total = pop * rate * np.exp(rng.normal(0, 0.08, n_l))
    mfac = np.array([ccfg["manufacturing_macro_factor"][m] for m in macro])
    lo, hi = ccfg["manufacturing_share_ordinary"]
    mshare = rng.uniform(lo, hi, n_l) * mfac
    is_d = kind == "district"
    is_p = kind == "large_plant"
    mshare[is_d] = rng.uniform(*ccfg["manufacturing_share_district"], is_d.sum())
    mshare[is_p] = rng.uniform(*ccfg["manufacturing_share_large_plant"], is_p.sum())
    m_emp = total * mshare
    fash = {
        "14": float(ccfg["national_employees"]["14"])
        * np.bincount(llma_of, weights=fashion_weights["clothing"], minlength=n_l) / fashion_weights["clothing"].sum(),
        "15": float(ccfg["national_employees"]["15"])
        * np.bincount(llma_of, weights=fashion_weights["footwear"], minlength=n_l) / fashion_weights["footwear"].sum(),
    }
    divs = list(MANUFACTURING)
    col = {d: j for j, d in enumerate(divs)}
    mix = np.array([MANUF_MIX[d] for d in divs])[None, :] * np.exp(rng.normal(0, 0.35, (n_l, len(divs))))
    fixed = np.full((n_l, len(divs)), np.nan)
    dom_lo = np.where(is_d, ccfg["district_dominant_share"][0], ccfg["large_plant_dominant_share"][0])
    dom_hi = np.where(is_d, ccfg["district_dominant_share"][1], ccfg["large_plant_dominant_share"][1])
    dom_share = rng.uniform(dom_lo, dom_hi)
    for i in range(n_l):
        if kind[i] == "ordinary":
            f14, f15 = fash["14"][i], fash["15"][i]
            scale = min(1.0, 0.45 * m_emp[i] / (f14 + f15)) if f14 + f15 > 0 else 1.0
            fixed[i, col["14"]] = f14 * scale
            fixed[i, col["15"]] = f15 * scale
        else:
            fixed[i, col[div[i]]] = dom_share[i] * m_emp[i]
            for d in ("14", "15"):
                if d != div[i]:
                    fixed[i, col[d]] = min(fash[d][i], 0.15 * m_emp[i])
    # ordinary areas have a few large plants in some divisions, so that the national share
    # of manufacturing in small and medium units is about 85% as in Italy and the SME
    # tests of the procedure have a margin
    per_plant = float(ccfg["ordinary_employees_per_large_plant_division"])
    lp_mix = np.array([MANUF_MIX[d] for d in divs])
    plants = np.zeros((n_l, len(divs)), dtype=bool)
    for i in np.flatnonzero(kind == "ordinary"):
        k = min(4, int(rng.poisson(m_emp[i] / per_plant)))
        if k:
            js = rng.choice(len(divs), size=k, replace=False, p=lp_mix / lp_mix.sum())
            plants[i, js] = True
            fixed[i, js] = rng.uniform(0.12, 0.25, size=k) * m_emp[i]
    free = np.isnan(fixed)
    rest = m_emp - np.nansum(fixed, axis=1)
    scale = np.where(rest < 0.2 * m_emp, 0.8 * m_emp / (m_emp - np.maximum(rest, 0)), 1.0)
    fixed = fixed * scale[:, None]
    rest = m_emp - np.nansum(fixed, axis=1)
    mix = np.where(free, mix, 0.0)
    manuf = np.where(free, mix / mix.sum(1, keepdims=True) * rest[:, None], fixed)

    sizes = {k: np.asarray(v, float) for k, v in ccfg["size_shares"].items()}
    shares = np.broadcast_to(sizes["ordinary"], (n_l, len(divs), 4)).copy()
    shares[is_d] = sizes["district"]
    for i in np.flatnonzero(is_p):
        shares[i, col[div[i]]] = sizes["large_plant"]
    shares[plants] = sizes["ordinary_large_plant"]
    mean_sizes = [float(x) for x in ccfg["mean_unit_size"]]
    e_man = _split_sizes(rng, manuf, shares)
    u_man = _units(rng, e_man, mean_sizes)

    odivs = list(OTHER_MIX)
    omix = np.array([OTHER_MIX[d] for d in odivs])[None, :] * np.exp(rng.normal(0, 0.2, (n_l, len(odivs))))
    other = omix / omix.sum(1, keepdims=True) * (total - m_emp)[:, None]
    e_oth = _split_sizes(rng, other, np.broadcast_to(np.asarray(OTHER_SIZE_SHARES), (n_l, len(odivs), 4)))
    u_oth = _units(rng, e_oth, mean_sizes)

    e_all = np.concatenate([e_man, e_oth], axis=1)
    u_all = np.concatenate([u_man, u_oth], axis=1)
    all_divs = divs + odivs
    ii, jj, cc = np.nonzero(u_all > 0)
    codes = np.array(llma["llma_code"].to_list())
    census = pl.DataFrame({
        "llma_code": codes[ii],
        "ateco_division": np.array(all_divs)[jj],
        "size_class": np.array(SIZE_CLASSES)[cc],
        "local_units": u_all[ii, jj, cc].astype(np.int64),
        "employees": e_all[ii, jj, cc].astype(np.int64),
    }).sort(["llma_code", "ateco_division", "size_class"])
    return _cap_ordinary_lq(census, llma)


def _cap_ordinary_lq(census: pl.DataFrame, llma: pl.DataFrame, cap: float = 0.85) -> pl.DataFrame:
    """Shrink manufacturing of ordinary areas whose LQ would come close to 1."""
    ordinary = set(llma.filter(pl.col("kind") == "ordinary")["llma_code"].to_list())
    for _ in range(5):
        lq = manufacturing_lq(census)
        over = lq.filter(pl.col("llma_code").is_in(list(ordinary)) & (pl.col("lq") > cap))
        if over.height == 0:
            return census
        factor = dict(zip(over["llma_code"].to_list(), (cap * 0.95 / over["lq"]).to_list()))
        f = pl.col("llma_code").replace_strict(factor, default=1.0, return_dtype=pl.Float64)
        manuf = pl.col("ateco_division").is_in(list(MANUFACTURING))
        census = census.with_columns(
            pl.when(manuf).then((pl.col("employees") * f).round(0).cast(pl.Int64)).otherwise(pl.col("employees")).alias("employees"),
            pl.when(manuf).then((pl.col("local_units") * f).round(0).cast(pl.Int64)).otherwise(pl.col("local_units")).alias("local_units"),
        ).filter(pl.col("local_units") > 0)
        census = _fix_bounds(census)
    return census


def _fix_bounds(census: pl.DataFrame) -> pl.DataFrame:
    lo = pl.col("size_class").replace_strict({"0-9": 0, "10-49": 10, "50-249": 50, "250+": 250}, return_dtype=pl.Int64)
    hi = pl.col("size_class").replace_strict({"0-9": 9, "10-49": 49, "50-249": 249, "250+": 10**9}, return_dtype=pl.Int64)
    units = pl.max_horizontal(pl.col("local_units"), (pl.col("employees") / hi).ceil().cast(pl.Int64))
    units = pl.when(lo > 0).then(pl.min_horizontal(units, (pl.col("employees") // pl.max_horizontal(lo, 1)))).otherwise(units)
    return census.with_columns(units.alias("local_units")).filter(pl.col("local_units") > 0)


def manufacturing_lq(census: pl.DataFrame) -> pl.DataFrame:
    manuf = pl.col("ateco_division").is_in(list(MANUFACTURING))
    per = census.group_by("llma_code").agg(pl.col("employees").sum().alias("tot"),
                                           pl.col("employees").filter(manuf).sum().alias("man"))
    nat = per["man"].sum() / per["tot"].sum()
    return per.with_columns((pl.col("man") / pl.col("tot") / nat).alias("lq")).sort("llma_code")


def reference_district_flags(census: pl.DataFrame) -> pl.DataFrame:
    """A compact Sforzi-ISTAT procedure: llma_code, district, dominant_group, and the indices.

    1. manufacturing LQ > 1 and larger than the LQ of every other macro-sector;
    2. share of manufacturing employees in units under 250 above the national share;
    3. dominant group: the largest manufacturing group (by employees) among those with LQ > 1;
    4. the dominant group's employees in units under 250 above half its employees and
       at least the national share of the group.
    """
    c = census.with_columns(
        pl.col("ateco_division").is_in(list(MANUFACTURING)).alias("manuf"),
        (pl.col("size_class") != "250+").alias("sme"),
    )
    div_group = {d: g for g, ds in GROUPS.items() for d in ds}
    div_macro = {d: g for g, ds in MACRO_SECTORS.items() for d in ds}
    c = c.with_columns(
        pl.col("ateco_division").replace_strict(div_group, default=None, return_dtype=pl.Utf8).alias("group"),
        pl.when(pl.col("manuf")).then(pl.lit("manufacturing"))
        .otherwise(pl.col("ateco_division").replace_strict(div_macro, default="other", return_dtype=pl.Utf8)).alias("macro"),
    )
    tot = c.group_by("llma_code").agg(pl.col("employees").sum().alias("tot"))
    grand = tot["tot"].sum()
    macro = (c.group_by("llma_code", "macro").agg(pl.col("employees").sum().alias("e"))
             .join(tot, on="llma_code"))
    nat_macro = c.group_by("macro").agg((pl.col("employees").sum() / grand).alias("nat"))
    macro = macro.join(nat_macro, on="macro").with_columns((pl.col("e") / pl.col("tot") / pl.col("nat")).alias("lq"))
    lq_man = macro.filter(pl.col("macro") == "manufacturing").select("llma_code", pl.col("lq").alias("lq_manufacturing"))
    lq_oth = macro.filter(pl.col("macro") != "manufacturing").group_by("llma_code").agg(pl.col("lq").max().alias("lq_other_max"))
    m = c.filter(pl.col("manuf"))
    sme = m.group_by("llma_code").agg((pl.col("employees").filter(pl.col("sme")).sum() / pl.col("employees").sum()).alias("sme_share"))
    nat_sme = m.filter(pl.col("sme"))["employees"].sum() / m["employees"].sum()
    grp = (m.group_by("llma_code", "group").agg(pl.col("employees").sum().alias("e"),
                                                pl.col("employees").filter(pl.col("sme")).sum().alias("e_sme"))
           .join(tot, on="llma_code"))
    nat_grp = m.group_by("group").agg((pl.col("employees").sum() / grand).alias("nat_share"),
                                      (pl.col("employees").filter(pl.col("sme")).sum() / pl.col("employees").sum()).alias("nat_sme"))
    grp = grp.join(nat_grp, on="group").with_columns((pl.col("e") / pl.col("tot") / pl.col("nat_share")).alias("lq"))
    dom = (grp.filter(pl.col("lq") > 1).sort(["llma_code", "e"], descending=[False, True])
           .group_by("llma_code", maintain_order=True).first()
           .select("llma_code", pl.col("group").alias("dominant_group"), pl.col("lq").alias("lq_dominant"),
                   (pl.col("e_sme") / pl.col("e")).alias("dominant_sme_share"), pl.col("nat_sme").alias("dominant_nat_sme")))
    out = (tot.select("llma_code").join(lq_man, on="llma_code", how="left").join(lq_oth, on="llma_code", how="left")
           .join(sme, on="llma_code", how="left").join(dom, on="llma_code", how="left")
           .with_columns(pl.lit(nat_sme).alias("nat_sme_share")))
    flag = ((pl.col("lq_manufacturing") > 1) & (pl.col("lq_manufacturing") > pl.col("lq_other_max"))
            & (pl.col("sme_share") > pl.col("nat_sme_share"))
            & pl.col("dominant_group").is_not_null()
            & (pl.col("dominant_sme_share") > 0.5) & (pl.col("dominant_sme_share") >= pl.col("dominant_nat_sme")))
    return out.with_columns(flag.fill_null(False).cast(pl.Int8).alias("district")).sort("llma_code")
