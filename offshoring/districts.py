"""Industrial districts: the Sforzi-ISTAT procedure on census employment.

Input is the 2011 Census of Industry and Services aggregated by local labour
market area (LLMA, ISTAT "sistema locale del lavoro"), ATECO 2007 division and
local-unit size class (``llma_code, ateco_division, size_class, local_units,
employees``). Output is one row per LLMA with the district flag, the dominant
manufacturing industry group, an area type and every index the decision rests
on.

The steps follow the Sforzi-ISTAT procedure as revised by ISTAT in 2006 and
used for the 2011 districts (ISTAT, *I distretti industriali 2011*, 2015),
in the form summarised by Boix (2008, Annex 1, "Industrial districts,
innovation and I-district effect", UAB working paper 08.07):

1. **Manufacturing area.** Location quotients (LQ) and prevalence indices of
   employment by macro-sector. An LLMA is (prevalently) manufacturing when its
   manufacturing LQ exceeds 1 and its manufacturing prevalence exceeds that of
   business services and of consumer services.
2. **SME area.** LQs of manufacturing employment by size class (small < 50,
   medium 50-249, large 250+ employees per local unit). The area is of small
   and medium enterprises when the highest LQ is that of a small or medium
   class.
3. **Dominant industry.** Manufacturing is split into industry groups; the
   dominant ("principale") group is the specialised group (LQ > 1) with the
   highest prevalence.
4. **District.** An SME manufacturing area whose dominant group is mainly made
   of SMEs (SME share of its employment above 50%), except when the group's
   SME character rests on a single medium-sized unit employing more than all
   its small units together.

Every threshold, size cut, grouping and rule variant is a field of
`DistrictSettings` (defaults in ``config/districts.yaml``; each default and its
source in ``docs/districts.md``). Canello and Pavone (2016, *Regional Studies*
50(8)) revise these criteria; their revised rules are not in our sources, so
they are not hard-coded: the relevant criteria are settings, and a
user-supplied list of district LLMAs (e.g. ISTAT's 141 districts of 2011) can
override the computed flags.

Data are by size *class* with counts of local units, not individual units, so
the single-medium-unit exception is read on the aggregates: exactly
``single_medium_units`` (1) local unit in the medium class of the dominant
group, no unit in a large class, and that class's employees above
``single_medium_employment_ratio`` (1.0) times those of the small classes.

Never imports Dagster.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import polars as pl
import polars.selectors as cs
import yaml

__all__ = [
    "AREA_TYPES",
    "DistrictResult",
    "DistrictSettings",
    "classify_llmas",
    "district_metadata",
    "read_override_list",
    "run_district_procedure",
]

METHOD_VERSION = "sforzi-istat-2006/1"

CENSUS_COLUMNS = ("llma_code", "ateco_division", "size_class", "local_units", "employees")

AREA_TYPES = (
    "non_manufacturing",
    "manufacturing_large_firm",
    "manufacturing_sme_non_district",
    "district",
    # Labels when an override list changes the computed flag.
    "district_by_override",  # listed, but the procedure says non-district
    "non_district_by_override",  # not listed, but the procedure says district
)


def _divs(first: int, last: int) -> list[str]:
    return [f"{i:02d}" for i in range(first, last + 1)]


# Macro-sectors for step 1, by ATECO 2007 division (NACE Rev. 2 sections).
# Only `manufacturing` and the `competitor_sectors` take part in the rule; the
# others only enter the LLMA total. The split of services into business and
# consumer services is our reading at 2-digit level (see docs/districts.md).
DEFAULT_SECTORS: dict[str, list[str]] = {
    "extractive": _divs(5, 9),  # B
    "manufacturing": _divs(10, 33),  # C
    "utilities": _divs(35, 39),  # D, E
    "construction": _divs(41, 43),  # F
    "trade_transport": ["45", "46", *_divs(49, 53)],  # G45-46, H
    "business_services": [*_divs(58, 66), "68", *_divs(69, 75), *_divs(77, 82)],  # J, K, L, M, N
    "consumer_services": ["47", "55", "56", *_divs(90, 96)],  # G47, I, R, S
    "social_services": _divs(84, 88),  # O, P, Q
}

# Manufacturing industry groups ("gruppi di industrie") of the Sforzi-ISTAT
# procedure, approximated at 2-digit ATECO 2007. ISTAT defines them on finer
# codes; textiles & clothing (13, 14) and leather & footwear (15) are kept
# apart as in ISTAT, since the study's sectors are clothing and footwear.
# The order is the final tie-break for the dominant group (earlier wins).
DEFAULT_INDUSTRY_GROUPS: dict[str, list[str]] = {
    "textiles_clothing": ["13", "14"],
    "leather_footwear": ["15"],
    "household_goods": ["16", "23", "31"],  # wood, ceramics/non-metallic minerals, furniture
    "jewellery_musical_toys": ["32"],  # jewellery, musical instruments, toys, other
    "food": ["10", "11", "12"],
    "mechanical": ["26", "27", "28", "33"],  # electronics/optical, electrical, machinery, repair
    "metal": ["24", "25"],  # basic metals, metal products
    "chemicals_petroleum_rubber_plastics": ["19", "20", "21", "22"],
    "paper_printing": ["17", "18"],
    "transport_equipment": ["29", "30"],
}

# Local-unit size classes of the census file -> size groups (EU
# Recommendation 2003/361/EC cuts: < 50 small, 50-249 medium, 250+ large).
DEFAULT_SIZE_GROUPS: dict[str, list[str]] = {
    "small": ["0-9", "10-49"],
    "medium": ["50-249"],
    "large": ["250+"],
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "unmapped_divisions": ("other", "error", "drop"),
    "prevalence_index": ("excess_employment", "share_difference", "location_quotient"),
    "sme_area_rule": ("size_lq_max", "sme_lq"),
    "size_lq_base": ("manufacturing", "total"),
    "group_lq_base": ("total", "manufacturing"),
    "dominant_selection": ("prevalence", "lq", "employees"),
    "dominant_tie_break": ("employees_then_order", "order"),
    "dominant_scope": ("manufacturing", "all"),
    "dominant_sme_rule": ("sme_share", "size_lq_max"),
    "override_mode": ("replace", "union"),
    "override_unknown": ("error", "ignore"),
}


@dataclass(frozen=True)
class DistrictSettings:
    """Every threshold and choice of the district procedure.

    Defaults reproduce the Sforzi-ISTAT procedure as we read it (see the module
    docstring and docs/districts.md, which gives the source of each default).
    Comparisons against thresholds are strict (``>``) unless
    ``strict_inequalities`` is false (then ``>=``).
    """

    # --- input ------------------------------------------------------------
    sectors: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_SECTORS.items()})
    excluded_divisions: list[str] = field(default_factory=lambda: ["01", "02", "03"])
    unmapped_divisions: str = "other"
    size_groups: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_SIZE_GROUPS.items()})
    sme_size_groups: list[str] = field(default_factory=lambda: ["small", "medium"])
    industry_groups: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_INDUSTRY_GROUPS.items()}
    )
    strict_inequalities: bool = True
    tie_tolerance: float = 1e-9
    # --- step 1: manufacturing area -----------------------------------------
    manufacturing_sector: str = "manufacturing"
    competitor_sectors: list[str] = field(default_factory=lambda: ["business_services", "consumer_services"])
    manufacturing_lq_threshold: float = 1.0
    prevalence_index: str = "excess_employment"
    # --- step 2: SME area -----------------------------------------------------
    sme_area_rule: str = "size_lq_max"
    sme_lq_threshold: float = 1.0
    size_lq_base: str = "manufacturing"
    # --- step 3: dominant industry group ------------------------------------
    group_lq_base: str = "total"
    dominant_min_lq: float = 1.0
    dominant_selection: str = "prevalence"
    dominant_tie_break: str = "employees_then_order"
    dominant_scope: str = "manufacturing"
    # --- step 4: district -----------------------------------------------------
    dominant_sme_rule: str = "sme_share"
    dominant_sme_share_threshold: float = 0.5
    dominant_min_employees: int = 0
    single_medium_exception: bool = True
    single_medium_size_group: str = "medium"
    single_medium_units: int = 1
    single_medium_require_no_large: bool = True
    single_medium_employment_ratio: float = 1.0
    # --- override list --------------------------------------------------------
    override_mode: str = "replace"
    override_unknown: str = "error"
    override_file: str | None = None

    def __post_init__(self) -> None:
        self._check_types()
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"districts setting {name}={value!r}: expected one of {allowed}")
        for name in ("sectors", "size_groups", "industry_groups"):
            mapping = getattr(self, name)
            if not isinstance(mapping, Mapping) or not mapping:
                raise ValueError(f"districts setting {name}: expected a non-empty mapping")
            seen: dict[str, str] = {}
            for key, codes in mapping.items():
                if not isinstance(codes, (list, tuple)) or not codes:
                    raise ValueError(f"districts setting {name}.{key}: expected a non-empty list")
                for code in codes:
                    code = _norm_code(code) if name != "size_groups" else str(code)
                    if code in seen:
                        raise ValueError(
                            f"districts setting {name}: {code!r} is in both {seen[code]!r} and {key!r}"
                        )
                    seen[code] = key
        if self.manufacturing_sector not in self.sectors:
            raise ValueError(f"manufacturing_sector {self.manufacturing_sector!r} is not a key of sectors")
        for s in self.competitor_sectors:
            if s not in self.sectors or s == self.manufacturing_sector:
                raise ValueError(f"competitor sector {s!r} is not a non-manufacturing key of sectors")
        if "other" in self.sectors:
            raise ValueError("'other' is reserved for unmapped divisions; rename that sector")
        manuf = {_norm_code(c) for c in self.sectors[self.manufacturing_sector]}
        for g, codes in self.industry_groups.items():
            outside = sorted({_norm_code(c) for c in codes} - manuf)
            if outside:
                raise ValueError(f"industry group {g!r} has non-manufacturing divisions {outside}")
        sme = set(self.sme_size_groups)
        if not sme or not sme <= set(self.size_groups):
            raise ValueError("sme_size_groups must be a non-empty subset of the size_groups keys")
        if sme == set(self.size_groups):
            raise ValueError("at least one size group must be non-SME (large)")
        if self.single_medium_size_group not in sme:
            raise ValueError("single_medium_size_group must be one of sme_size_groups")
        if self.tie_tolerance < 0 or self.single_medium_units < 0 or self.dominant_min_employees < 0:
            raise ValueError("tie_tolerance, single_medium_units and dominant_min_employees must be >= 0")

    # ------------------------------------------------------------------ io
    def _check_types(self) -> None:
        """Each setting of the type its default has: a threshold written "1,5" (a string) would
        otherwise reach the procedure and fail there without naming the key, and a quoted
        "false" would read as true."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if default is None:
                ok, what = value is None or isinstance(value, str), "a file name"
            elif isinstance(default, bool):
                ok, what = isinstance(value, bool), "true or false (unquoted)"
            elif isinstance(default, float):
                ok, what = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
            elif isinstance(default, int):
                ok, what = isinstance(value, int) and not isinstance(value, bool), "a whole number"
            elif isinstance(default, str):
                ok, what = isinstance(value, str), "a text"
            elif isinstance(default, list):
                ok, what = isinstance(value, (list, tuple)), "a list"
            else:
                ok, what = isinstance(value, Mapping), "a mapping"
            if not ok:
                raise ValueError(f"districts setting {f.name}={value!r}: expected {what}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "DistrictSettings":
        """Settings from a (possibly partial) mapping; missing keys keep defaults.

        Unknown keys are an error, so a typo never silently falls back to a
        default. Mappings (sectors, groups) given are taken whole.
        """
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown districts settings: {unknown}")
        for key in ("sectors", "industry_groups"):
            if key in data and data[key] is not None:
                data[key] = {str(k): [_norm_code(c) for c in v] for k, v in dict(data[key]).items()}
        if "size_groups" in data and data["size_groups"] is not None:
            data["size_groups"] = {str(k): [str(c) for c in v] for k, v in dict(data["size_groups"]).items()}
        if "excluded_divisions" in data and data["excluded_divisions"] is not None:
            data["excluded_divisions"] = [_norm_code(c) for c in data["excluded_divisions"]]
        for key in ("sme_size_groups", "competitor_sectors"):
            if key in data and data[key] is not None:
                data[key] = [str(c) for c in data[key]]
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "DistrictSettings":
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        return cls.from_dict(data)

    def as_metadata(self) -> dict[str, Any]:
        """Every setting as plain JSON-able values, plus the method tag."""
        out: dict[str, Any] = {"method": METHOD_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = {k: list(v) for k, v in value.items()}
            elif isinstance(value, (list, tuple)):
                value = list(value)
            out[f.name] = value
        return out

    # ------------------------------------------------------------- helpers
    def gt(self, a: pl.Expr, b: pl.Expr | float) -> pl.Expr:
        return a > b if self.strict_inequalities else a >= b

    @property
    def non_sme_size_groups(self) -> list[str]:
        return [g for g in self.size_groups if g not in self.sme_size_groups]


def _norm_code(code: Any) -> str:
    text = str(code).strip()
    return text.zfill(2) if text.isdigit() else text


def _coerce_settings(settings: DistrictSettings | Mapping[str, Any] | None) -> DistrictSettings:
    if settings is None:
        return DistrictSettings()
    if isinstance(settings, DistrictSettings):
        return settings
    if isinstance(settings, Mapping):
        return DistrictSettings.from_dict(settings)
    raise TypeError(f"settings must be DistrictSettings, a mapping or None, not {type(settings).__name__}")


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------


def _prepare(census: pl.DataFrame, s: DistrictSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validated rows with sector, group and size group; and the list of all LLMAs."""
    if isinstance(census, pl.LazyFrame):
        census = census.collect()
    missing = [c for c in CENSUS_COLUMNS if c not in census.columns]
    if missing:
        raise ValueError(f"census table lacks columns {missing}")
    df = census.select(
        pl.col("llma_code").cast(pl.Utf8).str.strip_chars(),
        pl.col("ateco_division").cast(pl.Utf8).str.strip_chars(),
        pl.col("size_class").cast(pl.Utf8).str.strip_chars(),
        pl.col("local_units").cast(pl.Int64),
        pl.col("employees").cast(pl.Int64),
    )
    nulls = {c: n for c, n in zip(df.columns, df.null_count().row(0)) if n}
    if nulls:
        raise ValueError(f"census table has nulls: {nulls}")
    negative = df.filter((pl.col("local_units") < 0) | (pl.col("employees") < 0)).height
    if negative:
        raise ValueError(f"census table has {negative} rows with negative local_units or employees")
    df = df.with_columns(
        pl.when(pl.col("ateco_division").str.contains(r"^\d+$"))
        .then(pl.col("ateco_division").str.zfill(2))
        .otherwise(pl.col("ateco_division"))
    )
    llmas = df.select("llma_code").unique().sort("llma_code")

    size_map = pl.DataFrame(
        [(c, g) for g, codes in s.size_groups.items() for c in codes],
        schema={"size_class": pl.Utf8, "size_group": pl.Utf8},
        orient="row",
    )
    unknown_sizes = sorted(set(df["size_class"].unique().to_list()) - set(size_map["size_class"].to_list()))
    if unknown_sizes:
        raise ValueError(f"census size classes not in size_groups: {unknown_sizes}")

    df = df.filter(~pl.col("ateco_division").is_in([_norm_code(c) for c in s.excluded_divisions]))
    sector_map = pl.DataFrame(
        [(_norm_code(c), k) for k, codes in s.sectors.items() for c in codes],
        schema={"ateco_division": pl.Utf8, "sector": pl.Utf8},
        orient="row",
    )
    group_map = pl.DataFrame(
        [(_norm_code(c), g, i) for i, (g, codes) in enumerate(s.industry_groups.items()) for c in codes],
        schema={"ateco_division": pl.Utf8, "industry_group": pl.Utf8, "group_order": pl.Int32},
        orient="row",
    )
    df = (
        df.join(sector_map, on="ateco_division", how="left")
        .join(group_map, on="ateco_division", how="left")
        .join(size_map, on="size_class", how="left")
    )
    unmapped = df.filter(pl.col("sector").is_null())
    if unmapped.height:
        if s.unmapped_divisions == "error":
            codes = sorted(unmapped["ateco_division"].unique().to_list())
            raise ValueError(f"census divisions in no sector: {codes}")
        if s.unmapped_divisions == "drop":
            df = df.filter(pl.col("sector").is_not_null())
        else:
            df = df.with_columns(pl.col("sector").fill_null("other"))
    return df, llmas


# ---------------------------------------------------------------------------
# indices
# ---------------------------------------------------------------------------


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num/den, null when den is 0 (or null)."""
    return pl.when(den > 0).then(num / den).otherwise(None)


def _lq(local: pl.Expr, local_base: pl.Expr, nat: pl.Expr, nat_base: pl.Expr) -> pl.Expr:
    return _ratio(_ratio(local, local_base), _ratio(nat, nat_base))


def _prevalence(kind: str, local: pl.Expr, local_base: pl.Expr, nat: pl.Expr, nat_base: pl.Expr) -> pl.Expr:
    """Prevalence index: how far the local activity exceeds its national weight.

    ``excess_employment`` = local employees minus those expected at the
    national share (Boix 2008: "location quotient in absolute value");
    ``share_difference`` = local share minus national share (same ranking
    inside an LLMA); ``location_quotient`` = the LQ itself.
    """
    if kind == "excess_employment":
        return local - local_base * _ratio(nat, nat_base)
    if kind == "share_difference":
        return _ratio(local, local_base) - _ratio(nat, nat_base)
    return _lq(local, local_base, nat, nat_base)


def _wide(
    long: pl.DataFrame,
    index: str,
    on: str,
    value: str,
    keys: Iterable[str],
    prefix: str,
    dtype: pl.DataType = pl.Int64,
) -> pl.DataFrame:
    """Pivot `long` to one column per key (zero-filled, cast to `dtype`), named prefix+key."""
    keys = list(keys)
    if long.height:
        wide = long.pivot(on=on, index=index, values=value, aggregate_function="sum")
    else:
        wide = pl.DataFrame(schema={index: pl.Utf8})
    for k in keys:
        if k not in wide.columns:
            wide = wide.with_columns(pl.lit(0).alias(k))
    return wide.select(index, *[pl.col(k).fill_null(0).cast(dtype).alias(prefix + k) for k in keys])


def _max_h(cols: list[pl.Expr]) -> pl.Expr:
    return pl.max_horizontal([c.fill_null(0.0) for c in cols])


def _step1(rows: pl.DataFrame, llmas: pl.DataFrame, s: DistrictSettings) -> pl.DataFrame:
    sectors = list(s.sectors)
    by_sector = rows.group_by("llma_code", "sector").agg(pl.col("employees").sum())
    wide = llmas.join(_wide(by_sector, "llma_code", "sector", "employees", sectors, "emp_"), on="llma_code", how="left")
    total = rows.group_by("llma_code").agg(pl.col("employees").sum().alias("employees_total"))
    wide = wide.join(total, on="llma_code", how="left").with_columns(
        cs.starts_with("emp_").fill_null(0), pl.col("employees_total").fill_null(0)
    )
    nat_total = float(rows["employees"].sum() or 0)
    nat = {k: float(wide[f"emp_{k}"].sum()) for k in sectors}
    m = s.manufacturing_sector
    exprs = []
    for k in sectors:
        local, base = pl.col(f"emp_{k}"), pl.col("employees_total")
        exprs.append(_lq(local, base, pl.lit(nat[k]), pl.lit(nat_total)).alias(f"lq_{k}"))
        exprs.append(
            _prevalence(s.prevalence_index, local, base, pl.lit(nat[k]), pl.lit(nat_total)).alias(f"prevalence_{k}")
        )
    wide = wide.with_columns(exprs).with_columns(
        pl.col(f"emp_{m}").alias("employees_manufacturing"),
        _ratio(pl.col(f"emp_{m}"), pl.col("employees_total")).alias("manufacturing_share"),
    )
    cond = s.gt(pl.col(f"lq_{m}").fill_null(0.0), s.manufacturing_lq_threshold)
    for c in s.competitor_sectors:
        cond = cond & s.gt(pl.col(f"prevalence_{m}").fill_null(0.0), pl.col(f"prevalence_{c}").fill_null(0.0))
    return wide.with_columns(cond.alias("manufacturing_area")).drop(cs.starts_with("emp_"))


def _step2(manuf: pl.DataFrame, step1: pl.DataFrame, s: DistrictSettings) -> pl.DataFrame:
    groups = list(s.size_groups)
    by_size = manuf.group_by("llma_code", "size_group").agg(pl.col("employees").sum())
    wide = step1.select("llma_code", "employees_total", "employees_manufacturing").join(
        _wide(by_size, "llma_code", "size_group", "employees", groups, "emp_"), on="llma_code", how="left"
    ).with_columns(cs.starts_with("emp_").fill_null(0))
    nat = {g: float(wide[f"emp_{g}"].sum()) for g in groups}
    nat_manuf = float(sum(nat.values()))
    nat_total = float(step1["employees_total"].sum())
    if s.size_lq_base == "manufacturing":
        base, nat_base = pl.col("employees_manufacturing"), nat_manuf
    else:
        base, nat_base = pl.col("employees_total"), nat_total
    exprs = []
    for g in groups:
        exprs.append(_ratio(pl.col(f"emp_{g}"), pl.col("employees_manufacturing")).alias(f"size_share_{g}"))
        exprs.append(_lq(pl.col(f"emp_{g}"), base, pl.lit(nat[g]), pl.lit(nat_base)).alias(f"size_lq_{g}"))
    sme_emp = pl.sum_horizontal([pl.col(f"emp_{g}") for g in s.sme_size_groups])
    nat_sme = sum(nat[g] for g in s.sme_size_groups)
    exprs.append(_ratio(sme_emp, pl.col("employees_manufacturing")).alias("sme_share"))
    exprs.append(_lq(sme_emp, pl.col("employees_manufacturing"), pl.lit(nat_sme), pl.lit(nat_manuf)).alias("sme_lq"))
    wide = wide.with_columns(exprs)
    if s.sme_area_rule == "size_lq_max":
        best_sme = _max_h([pl.col(f"size_lq_{g}") for g in s.sme_size_groups])
        best_other = _max_h([pl.col(f"size_lq_{g}") for g in s.non_sme_size_groups])
        cond = (pl.col("employees_manufacturing") > 0) & s.gt(best_sme, best_other)
    else:
        cond = s.gt(pl.col("sme_lq").fill_null(0.0), s.sme_lq_threshold)
    wide = wide.with_columns(cond.alias("sme_area"))
    return wide.drop("employees_total", "employees_manufacturing", cs.starts_with("emp_"))


def _step3(manuf: pl.DataFrame, step1: pl.DataFrame, s: DistrictSettings) -> pl.DataFrame:
    """Dominant group per LLMA (long -> one row per LLMA with a dominant group)."""
    grouped = manuf.filter(pl.col("industry_group").is_not_null())
    by_group = grouped.group_by("llma_code", "industry_group", "group_order").agg(pl.col("employees").sum())
    nat = by_group.group_by("industry_group").agg(pl.col("employees").sum().alias("nat_group"))
    base_col = "employees_total" if s.group_lq_base == "total" else "employees_manufacturing"
    nat_base = float(step1[base_col].sum())
    g = by_group.join(nat, on="industry_group").join(
        step1.select("llma_code", pl.col(base_col).alias("base"), "employees_manufacturing"), on="llma_code"
    )
    e, b, n = pl.col("employees"), pl.col("base"), pl.col("nat_group").cast(pl.Float64)
    g = g.with_columns(
        _lq(e, b, n, pl.lit(nat_base)).alias("dominant_lq"),
        _prevalence(s.prevalence_index, e, b, n, pl.lit(nat_base)).alias("dominant_prevalence"),
    )
    sel = {"prevalence": "dominant_prevalence", "lq": "dominant_lq", "employees": "employees"}[s.dominant_selection]
    cand = g.filter((pl.col("employees") > 0) & s.gt(pl.col("dominant_lq").fill_null(0.0), s.dominant_min_lq))
    cand = cand.with_columns(pl.col(sel).cast(pl.Float64).alias("_sel"))
    cand = cand.with_columns(pl.col("_sel").max().over("llma_code").alias("_top"))
    tol = pl.lit(s.tie_tolerance) * pl.max_horizontal(pl.lit(1.0), pl.col("_top").abs())
    cand = cand.with_columns(((pl.col("_top") - pl.col("_sel")) <= tol).alias("_at_top"))
    counts = cand.group_by("llma_code").agg(
        pl.len().cast(pl.Int32).alias("n_specialised_groups"),
        pl.col("_at_top").sum().cast(pl.Int32).alias("_n_top"),
    )
    top = cand.filter(pl.col("_at_top"))
    if s.dominant_tie_break == "employees_then_order":
        top = top.sort(["llma_code", "employees", "group_order"], descending=[False, True, False])
    else:
        top = top.sort(["llma_code", "group_order"])
    dom = top.group_by("llma_code", maintain_order=True).first().join(counts, on="llma_code")
    return dom.select(
        "llma_code",
        pl.col("industry_group").alias("dominant_group"),
        "dominant_lq",
        "dominant_prevalence",
        pl.col("employees").alias("dominant_employees"),
        _ratio(pl.col("employees"), pl.col("employees_manufacturing")).alias("dominant_share_of_manufacturing"),
        (pl.col("_n_top") > 1).alias("dominant_tie"),
        "n_specialised_groups",
    )


def _step4(manuf: pl.DataFrame, dom: pl.DataFrame, s: DistrictSettings) -> pl.DataFrame:
    """Size structure of each LLMA's dominant group and the 'mainly SME' test."""
    sizes = list(s.size_groups)
    grouped = manuf.filter(pl.col("industry_group").is_not_null())
    long = grouped.group_by("llma_code", "industry_group", "size_group").agg(
        pl.col("employees").sum(), pl.col("local_units").sum()
    )
    nat = long.group_by("industry_group", "size_group").agg(pl.col("employees").sum().alias("nat"))
    nat = nat.with_columns(pl.col("nat").sum().over("industry_group").alias("nat_group"))
    long = long.join(
        dom.select("llma_code", pl.col("dominant_group").alias("industry_group")),
        on=["llma_code", "industry_group"],
        how="inner",
    ).join(nat, on=["industry_group", "size_group"], how="left")
    long = long.with_columns(pl.col("employees").sum().over("llma_code").alias("grp"))
    long = long.with_columns(
        _lq(pl.col("employees"), pl.col("grp"), pl.col("nat").cast(pl.Float64), pl.col("nat_group").cast(pl.Float64))
        .alias("lq")
    )
    emp = _wide(long, "llma_code", "size_group", "employees", sizes, "dominant_employees_")
    units = _wide(long, "llma_code", "size_group", "local_units", sizes, "dominant_units_")
    lq = _wide(long, "llma_code", "size_group", "lq", sizes, "dominant_size_lq_", pl.Float64)
    out = dom.select("llma_code", "dominant_employees").join(emp, on="llma_code", how="left").join(
        units, on="llma_code", how="left"
    ).join(lq, on="llma_code", how="left")

    sme_emp = pl.sum_horizontal([pl.col(f"dominant_employees_{g}") for g in s.sme_size_groups])
    out = out.with_columns(_ratio(sme_emp, pl.col("dominant_employees")).alias("dominant_sme_share"))
    if s.dominant_sme_rule == "sme_share":
        sme_test = s.gt(pl.col("dominant_sme_share").fill_null(0.0), s.dominant_sme_share_threshold)
    else:
        best_sme = _max_h([pl.col(f"dominant_size_lq_{g}") for g in s.sme_size_groups])
        best_other = _max_h([pl.col(f"dominant_size_lq_{g}") for g in s.non_sme_size_groups])
        sme_test = s.gt(best_sme, best_other)

    med = s.single_medium_size_group
    small_groups = [g for g in s.sme_size_groups if g != med]
    small_emp = (
        pl.sum_horizontal([pl.col(f"dominant_employees_{g}") for g in small_groups]) if small_groups else pl.lit(0)
    )
    large_units = pl.sum_horizontal([pl.col(f"dominant_units_{g}") for g in s.non_sme_size_groups])
    exception = (pl.col(f"dominant_units_{med}") == s.single_medium_units) & s.gt(
        pl.col(f"dominant_employees_{med}").cast(pl.Float64),
        small_emp.cast(pl.Float64) * s.single_medium_employment_ratio,
    )
    if s.single_medium_require_no_large:
        exception = exception & (large_units == 0)
    if not s.single_medium_exception:
        exception = pl.lit(False)
    out = out.with_columns(
        exception.alias("single_medium_exception"),
        (sme_test & ~exception).alias("dominant_sme"),
    )
    return out.drop("dominant_employees")


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


@dataclass
class DistrictResult:
    table: pl.DataFrame
    metadata: dict[str, Any]


def read_override_list(path: str | Path) -> list[str]:
    """LLMA codes from a file: a CSV with an ``llma_code`` column, or one code per line.

    Blank lines and lines starting with ``#`` are skipped.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return []
    reader = csv.reader(lines, delimiter=";" if ";" in lines[0] else ",")
    rows = list(reader)
    header = [h.strip().lower() for h in rows[0]]
    if "llma_code" in header:
        i = header.index("llma_code")
        return [r[i].strip() for r in rows[1:] if len(r) > i and r[i].strip()]
    return [r[0].strip() for r in rows if r and r[0].strip()]


def _resolve_override(override: Iterable[str] | None, s: DistrictSettings) -> list[str] | None:
    if override is not None:
        if isinstance(override, str):
            raise TypeError("override must be a list of LLMA codes, not a string")
        return [str(c).strip() for c in override]
    if s.override_file:
        from offshoring.settings import base_dir

        p = Path(s.override_file).expanduser()
        return read_override_list(p if p.is_absolute() else base_dir() / p)
    return None


def run_district_procedure(
    census: pl.DataFrame,
    settings: DistrictSettings | Mapping[str, Any] | None = None,
    override: list[str] | None = None,
) -> DistrictResult:
    """The classification table and its metadata (settings, counts, override effects)."""
    s = _coerce_settings(settings)
    rows, llmas = _prepare(census, s)
    manuf = rows.filter(pl.col("sector") == s.manufacturing_sector)

    t = _step1(rows, llmas, s)
    t = t.join(_step2(manuf, t, s), on="llma_code", how="left")
    dom = _step3(manuf, t, s)
    if s.dominant_scope == "manufacturing":
        dom = dom.join(t.filter(pl.col("manufacturing_area")).select("llma_code"), on="llma_code", how="semi")
    t = t.join(dom, on="llma_code", how="left").join(_step4(manuf, dom, s), on="llma_code", how="left")
    t = t.with_columns(
        pl.col("sme_area").fill_null(False),
        pl.col("dominant_tie").fill_null(False),
        pl.col("n_specialised_groups").fill_null(0),
        pl.col("single_medium_exception").fill_null(False),
        pl.col("dominant_sme").fill_null(False),
    )
    has_dom = pl.col("dominant_group").is_not_null()
    big_enough = pl.col("dominant_employees").fill_null(0) >= s.dominant_min_employees
    district = pl.col("manufacturing_area") & pl.col("sme_area") & has_dom & pl.col("dominant_sme") & big_enough
    t = t.with_columns(
        district.cast(pl.Int8).alias("district_computed"),
        (pl.col("manufacturing_area") & ~pl.col("sme_area") & pl.col("dominant_sme"))
        .alias("large_firm_district_features"),
    ).with_columns(
        pl.when(~pl.col("manufacturing_area"))
        .then(pl.lit("non_manufacturing"))
        .when(~pl.col("sme_area"))
        .then(pl.lit("manufacturing_large_firm"))
        .when(pl.col("district_computed") == 1)
        .then(pl.lit("district"))
        .otherwise(pl.lit("manufacturing_sme_non_district"))
        .alias("area_type_computed")
    )

    codes = _resolve_override(override, s)
    override_info: dict[str, Any] = {"used": codes is not None}
    if codes is None:
        t = t.with_columns(
            pl.col("district_computed").alias("district"),
            pl.lit("procedure").alias("district_source"),
            pl.col("area_type_computed").alias("area_type"),
        )
    else:
        listed = sorted(set(codes))
        known = set(t["llma_code"].to_list())
        unknown = [c for c in listed if c not in known]
        if unknown and s.override_unknown == "error":
            raise ValueError(f"override lists {len(unknown)} LLMA codes absent from the census: {unknown[:10]}")
        in_list = pl.col("llma_code").is_in(listed)
        if s.override_mode == "replace":
            flag = in_list
            source = pl.lit("override")
        else:  # union: computed districts plus the listed ones
            flag = in_list | (pl.col("district_computed") == 1)
            source = (
                pl.when((pl.col("district_computed") == 0) & in_list)
                .then(pl.lit("override"))
                .otherwise(pl.lit("procedure"))
            )
        t = t.with_columns(flag.cast(pl.Int8).alias("district"), source.alias("district_source"))
        t = t.with_columns(
            pl.when(pl.col("district") == pl.col("district_computed"))
            .then(pl.col("area_type_computed"))
            .when(pl.col("district") == 1)
            .then(pl.lit("district_by_override"))
            .otherwise(pl.lit("non_district_by_override"))
            .alias("area_type")
        )
        override_info.update(
            mode=s.override_mode,
            n_listed=len(listed),
            unknown_codes=unknown,
            added=t.filter((pl.col("district") == 1) & (pl.col("district_computed") == 0))["llma_code"].to_list(),
            removed=t.filter((pl.col("district") == 0) & (pl.col("district_computed") == 1))["llma_code"].to_list(),
        )

    t = t.select(_column_order(t.columns)).sort("llma_code")
    return DistrictResult(table=t, metadata=district_metadata(t, s, override_info))


def classify_llmas(
    census: pl.DataFrame,
    settings: DistrictSettings | Mapping[str, Any] | None = None,
    override: list[str] | None = None,
) -> pl.DataFrame:
    """One row per LLMA: district flag, dominant group, area type and the indices.

    `settings` is a `DistrictSettings`, a (partial) mapping of settings, or
    None for the defaults. `override`, when given (or when
    ``settings.override_file`` names a file), is a list of district LLMA codes
    that overrides the computed flags (``override_mode``); the computed flag
    stays in ``district_computed`` and ``district_source`` says where the flag
    came from. Use `run_district_procedure` to also get the metadata.
    """
    return run_district_procedure(census, settings, override).table


def district_metadata(table: pl.DataFrame, s: DistrictSettings, override_info: dict[str, Any] | None = None) -> dict[str, Any]:
    counts = table.group_by("area_type").len().sort("area_type")
    by_group = (
        table.filter(pl.col("district") == 1)
        .group_by("dominant_group")
        .len()
        .sort("dominant_group", nulls_last=True)
    )
    return {
        "settings": s.as_metadata(),
        "n_llmas": table.height,
        "n_districts": int(table["district"].sum() or 0),
        "n_districts_computed": int(table["district_computed"].sum() or 0),
        "n_manufacturing_areas": int(table["manufacturing_area"].sum() or 0),
        "area_types": dict(zip(counts["area_type"].to_list(), counts["len"].to_list())),
        "districts_by_group": {str(k): v for k, v in zip(by_group["dominant_group"].to_list(), by_group["len"].to_list())},
        "n_dominant_ties": int(table["dominant_tie"].sum() or 0),
        "n_single_medium_exceptions": int(table["single_medium_exception"].sum() or 0),
        "override": override_info or {"used": False},
    }


_HEAD = [
    "llma_code",
    "district",
    "district_source",
    "area_type",
    "dominant_group",
    "district_computed",
    "area_type_computed",
    "employees_total",
    "employees_manufacturing",
    "manufacturing_share",
    "manufacturing_area",
]


def _column_order(cols: list[str]) -> list[str]:
    head = [c for c in _HEAD if c in cols]
    rest = [c for c in cols if c not in head]
    return head + rest
