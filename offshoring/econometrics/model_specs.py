"""The model specifications of Table 2 and Table 3 as data, read from YAML or a mapping.

`DynamicSpec` (the dynamic random-effects probit, ``config/probit_table2.yaml``) and
`CoxSpec` (the Cox model, ``config/cox_table3.yaml``), their valid keys and their readers.
Plain Python and YAML: the study specification (`offshoring.spec`) parses and checks the
model parts with these without importing numpy, pandas or scipy. `offshoring.econometrics.dynamic`
and `offshoring.econometrics.cox`, which build the samples and fit the models, re-export
every name here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def read_spec_mapping(spec, default_file: str, allowed: set[str], what: str) -> dict:
    """A model spec as a dict: from a YAML path, a mapping, or the default config file.

    Unknown keys are an error, so a typo does not silently fall back to a default.
    """
    import yaml

    if spec is None:
        # the shipped default (never the user's folder: that reaches the library as an argument)
        from offshoring.settings import defaults_config_dir

        spec = defaults_config_dir() / default_file
    if isinstance(spec, (str, Path)):
        with open(spec, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    else:
        raw = dict(spec)
    unknown = set(raw) - set(allowed)
    if unknown:
        raise ValueError(f"unknown keys in the {what}: {sorted(unknown)}")
    return raw


def check_setting_types(spec: Any, bools: tuple[str, ...], ints: tuple[str, ...], strs: tuple[str, ...],
                        optional: tuple[str, ...] = ()) -> None:
    """Each setting of the kind its key takes: a YAML ``true`` is not the number 1, a quoted
    ``"no"`` is not false, ``"12"`` is not 12. Refused naming the key (the caller names the
    file)."""
    import numbers

    written = {"first_year": "years.first", "last_year": "years.last"}  # as the file writes them
    for key in bools + ints + strs:
        v = getattr(spec, key)
        if v is None and key in optional:
            continue
        name = written.get(key, key)
        if key in bools and not isinstance(v, bool):
            raise ValueError(f"{name}={v!r}: expected true or false (unquoted)")
        if key in ints and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
            raise ValueError(f"{name}={v!r}: expected a whole number (unquoted)")
        if key in strs and not isinstance(v, str):
            raise ValueError(f"{name}={v!r}: expected a word (text)")


# --------------------------------------------------------------------- Table 2 spec

DEFAULT_SPEC_FILE = "probit_table2.yaml"
DYNAMIC_KEYS = {
    "outcome", "group", "time", "link", "lagged", "contemporaneous", "counts",
    "dummies", "mundlak", "initial_values", "year_dummies", "years",
    "initial_period", "quad_points", "adaptive", "cov_type", "labels", "description",
}


@dataclass(frozen=True)
class DynamicSpec:
    """The model of Table 2 as data (see ``config/probit_table2.yaml``)."""

    outcome: str = "outsourcing"
    group: str = "firm_id"
    time: str = "year"
    link: str = "probit"
    lagged: tuple[str, ...] = (
        "export_ratio", "market_area_order", "credit_access", "va_per_employee_k", "supplier",
    )
    contemporaneous: tuple[str, ...] = ("district",)
    counts: tuple[str, ...] = ("n_offshoring_prov_lag", "n_outsourcing_prov_lag")
    # source column -> (base level, {level: dummy column name})
    dummies: Mapping[str, tuple[str, Mapping[str, str]]] = field(
        default_factory=lambda: {
            "sector": ("clothing", {"footwear": "footwear"}),
            "macro_area": (
                "North-West",
                {
                    "North-East": "area_north_east",
                    "Centre": "area_centre",
                    "South": "area_south",
                    "Islands": "area_islands",
                },
            ),
        }
    )
    mundlak: tuple[str, ...] = (
        "export_ratio", "market_area_order", "credit_access", "va_per_employee_k", "supplier",
    )
    initial_values: bool = True
    year_dummies: bool = False
    first_year: int = 2006
    last_year: int | None = None  # None: the latest year in the panel
    initial_period: str | int = "first_year"
    quad_points: int = 12
    adaptive: bool = True
    cov_type: str = "cluster"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        check_setting_types(self, ("initial_values", "year_dummies", "adaptive"),
                            ("quad_points", "first_year", "last_year"),
                            ("outcome", "group", "time", "link", "cov_type"), optional=("last_year",))
        if isinstance(self.initial_period, bool):
            raise ValueError(f"initial_period={self.initial_period!r}: expected 'first_year' or a year")
        bad = [v for v in self.mundlak if v not in self.lagged]
        if bad:
            raise ValueError(f"mundlak variables must be lagged covariates too: {bad}")
        if not (self.initial_period == "first_year" or isinstance(self.initial_period, int)):
            raise ValueError("initial_period must be 'first_year' or a year")
        if self.last_year is not None and self.first_year > self.last_year:
            raise ValueError("years: first is after last")
        if self.link not in ("probit", "logit"):
            raise ValueError("link must be probit or logit")

    @property
    def exog_names(self) -> list[str]:
        """Column order of exog before any column is dropped."""
        cols = ["const", "y_initial", "y_lag"]
        cols += [f"{v}_lag" for v in self.lagged]
        cols += list(self.contemporaneous) + list(self.counts)
        for _, (_, levels) in self.dummies.items():
            cols += list(levels.values())
        for v in self.mundlak:
            cols.append(f"mean_{v}_lag")
            if self.initial_values:
                cols.append(f"init_{v}")
        return cols

    @property
    def fit_options(self) -> dict[str, Any]:
        return {"quad_points": self.quad_points, "adaptive": self.adaptive, "cov_type": self.cov_type}


def load_dynamic_spec(spec: str | Path | Mapping | DynamicSpec | None = None) -> DynamicSpec:
    """A `DynamicSpec` from a YAML path, a mapping, or the default config file.

    Unknown keys are an error, so a typo in the file does not silently fall back
    to a default.
    """
    if isinstance(spec, DynamicSpec):
        return spec
    raw = read_spec_mapping(spec, DEFAULT_SPEC_FILE, DYNAMIC_KEYS, "probit spec")
    kw: dict[str, Any] = {}
    for key in ("outcome", "group", "time", "link", "initial_values", "year_dummies",
                "initial_period", "quad_points", "adaptive", "cov_type"):
        if key in raw:
            kw[key] = raw[key]
    for key in ("lagged", "contemporaneous", "counts", "mundlak"):
        if key in raw:
            kw[key] = tuple(raw[key] or ())
    if "dummies" in raw:
        dummies = {}
        for src, d in (raw["dummies"] or {}).items():
            if "base" not in d or "levels" not in d:
                raise ValueError(f"dummies.{src} needs 'base' and 'levels'")
            dummies[src] = (d["base"], dict(d["levels"]))
        kw["dummies"] = dummies
    if "years" in raw:
        kw["first_year"] = raw["years"]["first"]
        kw["last_year"] = raw["years"].get("last")
    if "labels" in raw:
        kw["labels"] = dict(raw["labels"] or {})
    return DynamicSpec(**kw)


# --------------------------------------------------------------------- Table 3 spec

DEFAULT_COX_SPEC_FILE = "cox_table3.yaml"
COX_KEYS = {
    "start", "stop", "event", "cluster", "destinations", "destination_column",
    "exclude_left_censored", "ties", "cov_type", "cluster_correction", "strata",
    "covariates", "dummies", "ph_test_transform", "description", "firm_exit", "first_spell_year",
}


@dataclass(frozen=True)
class CoxSpec:
    """The model of Table 3 as data (see ``config/cox_table3.yaml``)."""

    covariates: tuple[str, ...] = (
        "share_destination", "supplier", "profit", "export_share_pre", "wage_per_employee_k",
        "roi", "employees", "n_outsourcing_prov_pre", "n_migrant_prov_lag",
    )
    labels: Mapping[str, str] = field(default_factory=dict)
    dummies: Mapping[str, tuple[str, Mapping[str, str]]] = field(
        default_factory=lambda: {
            "sector": ("clothing", {"footwear": "footwear"}),
            "macro_area": (
                "North-West",
                {"North-East": "area_north_east", "Centre": "area_centre",
                 "South": "area_south", "Islands": "area_islands"},
            ),
        }
    )
    start: str = "start"
    stop: str = "stop"
    event: str = "event"
    cluster: str = "firm_id"
    destination_column: str = "destination"
    destinations: tuple[str, ...] | None = ("europe", "north_africa", "east_asia", "other")
    exclude_left_censored: bool = True
    ties: str = "efron"
    cov_type: str = "cluster"
    cluster_correction: bool = False
    strata: tuple[str, ...] = ()
    ph_test_transform: str = "km"
    # a firm's complete stop of foreign subcontracting: a competing end that censors its
    # region spells ("censor"), or backshoring from each region ("event"); see
    # offshoring.econometrics.grouped_ph.region_spell_risk_rows
    firm_exit: str = "censor"
    # spells that began before this year are left out (None: every spell the left-censoring
    # rule keeps); 2007 is the paper's sentence read literally, "firms that have started
    # outsourcing ... during the period 2007-2012" (docs/readings.md)
    first_spell_year: int | None = None

    def __post_init__(self):
        check_setting_types(self, ("exclude_left_censored", "cluster_correction"), (),
                            ("start", "stop", "event", "cluster", "destination_column", "ties", "cov_type",
                             "ph_test_transform", "firm_exit"))
        if self.firm_exit not in ("censor", "event"):
            raise ValueError("firm_exit must be 'censor' or 'event'")
        if self.first_spell_year is not None and (
                isinstance(self.first_spell_year, bool) or not isinstance(self.first_spell_year, int)):
            raise ValueError(f"first_spell_year must be a year (an integer) or null, not {self.first_spell_year!r}")


def load_cox_spec(spec: str | Path | Mapping | CoxSpec | None = None) -> CoxSpec:
    if isinstance(spec, CoxSpec):
        return spec
    raw = read_spec_mapping(spec, DEFAULT_COX_SPEC_FILE, COX_KEYS, "Cox spec")
    kw: dict[str, Any] = {}
    for key in ("start", "stop", "event", "cluster", "destination_column", "exclude_left_censored",
                "ties", "cov_type", "cluster_correction", "ph_test_transform", "firm_exit", "first_spell_year"):
        if key in raw:
            kw[key] = raw[key]
    if "destinations" in raw:
        kw["destinations"] = None if raw["destinations"] is None else tuple(raw["destinations"])
    if "strata" in raw:
        kw["strata"] = tuple(raw["strata"] or ())
    if "covariates" in raw:
        covs, labels = [], {}
        for item in raw["covariates"]:
            if isinstance(item, str):
                covs.append(item)
            else:
                covs.append(item["name"])
                if "label" in item:
                    labels[item["name"]] = item["label"]
        kw["covariates"] = tuple(covs)
        kw["labels"] = labels
    if "dummies" in raw:
        kw["dummies"] = {src: (d["base"], dict(d["levels"])) for src, d in (raw["dummies"] or {}).items()}
    return CoxSpec(**kw)


# --------------------------------------------------------------------- the data's columns


def _spec_columns(spec: Any) -> list[tuple[str, str]]:
    """(key of the specification, column of the panel it names) for every column a fit reads."""
    out: list[tuple[str, str]] = []
    if isinstance(spec, DynamicSpec):
        out += [("outcome", spec.outcome), ("group", spec.group), ("time", spec.time)]
        for key in ("lagged", "contemporaneous", "counts"):
            out += [(key, c) for c in getattr(spec, key)]
    else:
        out += [("covariates", c) for c in spec.covariates]
        out += [("strata", c) for c in spec.strata]
    out += [("dummies", c) for c in spec.dummies]
    return out


def missing_column_sentence(columns: list[str], spec: Any, table: str, file: str) -> str | None:
    """A sentence naming the file, the key and the column a specification names that `table`
    does not have (with the nearest column), or None. A misspelt covariate used to reach the
    fit as DuckDB's "Referenced column not found", naming no file and no key."""
    import difflib

    have = set(columns)
    for key, col in _spec_columns(spec):
        if col not in have:
            near = difflib.get_close_matches(col, sorted(have), n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            return (f"{file}: {key} names '{col}', which is no column of {table}{hint}. Correct the name "
                    f"in {file}; the columns are listed in docs/warehouse.md.")
    return None
