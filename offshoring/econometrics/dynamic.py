"""Estimation sample of the dynamic random-effects probit (Canello & Pavone, Table 2).

`build_dynamic_sample` turns the firm-year panel (``panel.firm_years``) and a
model spec (YAML, default ``config/probit_table2.yaml``) into ``endog``,
``exog`` and ``groups`` for `RandomEffectsProbit`, with a description of what
was kept and dropped.

Initial conditions follow Wooldridge (2005) as corrected by Rabe-Hesketh and
Skrondal (2013): the firm effect is modelled as a function of the initial
outcome, the means of the time-varying covariates over the estimation periods
(Mundlak) *and* the covariates' initial-period values. The means-only version
is biased when the covariates are autocorrelated (RHS 2013), so both sets of
columns enter by default.

* Initial period: each firm's first year in the panel (so firms entering late
  keep their observations), or one common year for all (``initial_period: 2005``;
  firms absent that year are dropped).
* Estimation observations: years after the firm's initial period within the
  spec's year range. The lag of a firm covariate is its value in the firm's row
  for ``t - 1``; an observation without that row is dropped (panel gap).
* ``mean_<v>_lag``: mean over the firm's estimation observations of ``v`` at
  ``t - 1``; ``init_<v>``: ``v`` in the firm's initial period.
* A Mundlak or initial-value column that is collinear with the others (say, a
  covariate constant within every firm) is dropped and reported; so is a dummy
  with no observations in its level.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ._linalg import dependent_columns
# the Table 2 spec is plain data, read without numpy or pandas; re-exported here
from .model_specs import DEFAULT_SPEC_FILE, DYNAMIC_KEYS, DynamicSpec, load_dynamic_spec  # noqa: F401


@dataclass
class DynamicSample:
    """Estimation sample: model inputs plus a record of how they were made.

    The design is held once: ``X``, one float64 array (observations x columns,
    Fortran order, rows sorted by firm and year) with its column names
    ``exog_names``; ``y`` the outcome. The model reads ``X`` in place (see
    `RandomEffectsProbit`). ``exog`` and ``endog`` are pandas views of the same
    memory, made on request; ``data`` (every constructed column, also those
    dropped as collinear, with firm, year and outcome) is a new frame built on
    request.
    """

    X: np.ndarray
    exog_names: list[str]
    y: np.ndarray
    groups: np.ndarray
    time: np.ndarray
    description: dict[str, Any]
    spec: DynamicSpec
    # constructed columns dropped from the design (dummies without observations,
    # collinear Mundlak / initial-value columns), and the order of all columns
    dropped_columns: dict[str, np.ndarray] = field(default_factory=dict)
    constructed_columns: list[str] = field(default_factory=list)

    @property
    def exog(self) -> pd.DataFrame:
        """The design as a DataFrame: a view of ``X``, no copy."""
        return pd.DataFrame(self.X, columns=list(self.exog_names), copy=False)

    @property
    def endog(self) -> pd.Series:
        return pd.Series(self.y, name=self.spec.outcome, copy=False)

    @property
    def data(self) -> pd.DataFrame:
        """Firm, year, every constructed column (kept or dropped) and the outcome:
        a new frame (a copy of the design), for inspection."""
        cols: dict[str, np.ndarray] = {self.spec.group: self.groups, self.spec.time: self.time}
        position = {c: j for j, c in enumerate(self.exog_names)}
        for c in self.constructed_columns or self.exog_names:
            cols[c] = self.X[:, position[c]] if c in position else self.dropped_columns[c]
        cols[self.spec.outcome] = self.y
        return pd.DataFrame(cols)

    def model(self, **kwargs):
        from .re_probit import RandomEffectsProbit

        return RandomEffectsProbit(
            self.y, self.X, self.groups, link=self.spec.link,
            exog_names=self.exog_names, **kwargs,
        )

    def fit(self, **fit_kwargs):
        """Fit the spec's model; the results carry this sample as ``results.sample``."""
        options = {**self.spec.fit_options, **fit_kwargs}
        results = self.model().fit(**options)
        results.sample = self
        return results


def build_dynamic_sample(
    panel: pl.DataFrame | pd.DataFrame,
    spec: str | Path | Mapping | DynamicSpec | None = None,
) -> DynamicSample:
    """Estimation sample of the dynamic probit from a firm-year panel.

    Parameters
    ----------
    panel : polars (or pandas) frame keyed by firm and year with the spec's columns
    spec : a `DynamicSpec`, a mapping or YAML path in the format of
        ``config/probit_table2.yaml``; default that file
    """
    sp = load_dynamic_spec(spec)
    if isinstance(panel, pd.DataFrame):
        panel = pl.from_pandas(panel)
    g, t, y = sp.group, sp.time, sp.outcome
    dummy_src = list(sp.dummies)
    needed = [g, t, y, *sp.lagged, *sp.contemporaneous, *sp.counts, *dummy_src]
    needed = list(dict.fromkeys(needed))
    missing_cols = [c for c in needed if c not in panel.columns]
    if missing_cols:
        raise KeyError(f"the panel lacks columns {missing_cols}")
    if panel.schema[g].is_float():
        n_nan = panel.select(pl.col(g).is_nan().sum()).item()
        if n_nan:
            raise ValueError(f"{n_nan} rows of the panel have NaN as {g}: a firm id must be a value "
                             f"(an empty id is null, and its rows are not a firm)")
    # sorted by firm and year once: duplicates, firms and lags are then read off
    # neighbouring rows (no hash tables the size of the panel)
    df = panel.select(needed).with_columns(pl.col(t).cast(pl.Int64)).sort([g, t])
    same_firm = pl.col(g).eq_missing(pl.col(g).shift(1)) & (pl.int_range(pl.len()) > 0)
    same_key = same_firm & pl.col(t).eq_missing(pl.col(t).shift(1))
    n_dup = df.select((same_key & ~same_key.shift(1).fill_null(False)).sum()).item()
    if n_dup:
        raise ValueError(f"{n_dup} duplicated ({g}, {t}) keys in the panel")

    dropped_rows: dict[str, int] = {}
    dropped_firms: dict[str, int] = {}
    n_firms_panel = df.select((~same_firm).sum()).item()
    if sp.last_year is None:  # up to the latest year loaded: a new delivery extends the sample
        sp = dataclasses.replace(sp, last_year=int(df[t].max()))

    # -- initial period per firm
    if sp.initial_period == "first_year":
        window = df.filter((pl.col(t) >= sp.first_year - 1) & (pl.col(t) <= sp.last_year))
        init_year = window.group_by(g).agg(pl.col(t).min().alias("_t0"))
        n_outside = n_firms_panel - init_year.height
        if n_outside:
            dropped_firms[f"no row between {sp.first_year - 1} and {sp.last_year}"] = n_outside
        rule = (
            f"each firm's first year in the panel from {sp.first_year - 1} "
            f"(the year before the first estimation year) on"
        )
    else:
        y0 = int(sp.initial_period)
        present = df.filter(pl.col(t) == y0).select(g).unique()
        init_year = present.with_columns(pl.lit(y0, dtype=pl.Int64).alias("_t0"))
        n_absent = n_firms_panel - present.height
        if n_absent:
            dropped_firms[f"no row in the common initial year {y0}"] = n_absent
        rule = f"common initial year {y0}"

    init_cols = [y, *sp.mundlak] if sp.initial_values else [y]
    init_vals = (
        df.join(init_year, on=g, how="inner")
        .filter(pl.col(t) == pl.col("_t0"))
        .select([g, "_t0", *[pl.col(c).alias(f"_init_{c}") for c in init_cols]])
    )

    # -- lags from the firm's row at t - 1: with the panel sorted by firm and year and its
    # keys unique (checked above), that row exists iff it is the row just before, of the
    # same firm, one year earlier; a shift, not a self-join (which held a second copy of the
    # panel and its hash table: most of the sample's memory at 10x the paper)
    df = df.with_columns(
        ((pl.col(g) == pl.col(g).shift(1)) & (pl.col(t) == pl.col(t).shift(1) + 1)).fill_null(False)
        .alias("_has_lag"),
        pl.col(y).shift(1).alias("_lag_y"),
        *[pl.col(v).shift(1).alias(f"_lag_{v}") for v in sp.lagged],
    )
    # -- estimation observations: years after the initial period within the range
    est = df.join(init_vals, on=g, how="inner", maintain_order="left").filter(
        (pl.col(t) > pl.col("_t0")) & (pl.col(t) >= sp.first_year) & (pl.col(t) <= sp.last_year)
    )
    n_candidates = est.height
    firms_without_est = init_vals.height - est[g].n_unique()
    if firms_without_est:
        dropped_firms["no year after the initial period in the estimation range"] = firms_without_est

    # -- rows without the firm's row for t - 1
    no_lag = est.filter(~pl.col("_has_lag")).height
    if no_lag:
        dropped_rows["no row for the firm in t-1 (panel gap)"] = no_lag
    est = est.filter(pl.col("_has_lag"))

    # -- missing values
    checks = [(y, y), *[(f"_lag_{v}", f"{v} at t-1") for v in sp.lagged], ("_lag_y", f"{y} at t-1")]
    checks += [(c, c) for c in [*sp.contemporaneous, *sp.counts, *dummy_src]]
    checks += [(f"_init_{c}", f"{c} in the initial period") for c in init_cols]
    for col, label in checks:
        bad = pl.col(col).is_null()
        if est.schema[col].is_float():
            bad = bad | pl.col(col).is_nan()
        n_bad = est.filter(bad).height
        if n_bad:
            dropped_rows[f"missing {label}"] = n_bad
            est = est.filter(~bad)

    # -- dummies
    unknown: dict[str, list] = {}
    dummy_exprs: dict[str, pl.Expr] = {}
    for src, (base, levels) in sp.dummies.items():
        seen = set(est[src].unique().to_list())
        extra = seen - set(levels) - {base}
        if extra:
            unknown[src] = sorted(map(str, extra))
        for level, name in levels.items():
            dummy_exprs[name] = (pl.col(src) == level).cast(pl.Float64)
    if unknown:
        raise ValueError(f"levels not in the spec's dummies (add them or a base): {unknown}")

    year_cols: list[str] = []
    if sp.year_dummies:
        years_present = sorted(est[t].unique().to_list())
        year_cols = [f"year_{yr}" for yr in years_present[1:]]
        dummy_exprs.update({f"year_{yr}": (pl.col(t) == yr).cast(pl.Float64) for yr in years_present[1:]})
    # every constructed column is an expression on `est`, evaluated straight into the design
    # (no frame holding all of them beside the design)
    exprs: dict[str, pl.Expr] = {
        "const": pl.lit(1.0, dtype=pl.Float64),
        "y_initial": pl.col(f"_init_{y}").cast(pl.Float64),
        "y_lag": pl.col("_lag_y").cast(pl.Float64),
        **{f"{v}_lag": pl.col(f"_lag_{v}").cast(pl.Float64) for v in sp.lagged},
        **{c: pl.col(c).cast(pl.Float64) for c in [*sp.contemporaneous, *sp.counts]},
        **dummy_exprs,
        **{f"mean_{v}_lag": pl.col(f"_lag_{v}").cast(pl.Float64).mean().over(g) for v in sp.mundlak},
    }
    if sp.initial_values:
        exprs.update({f"init_{v}": pl.col(f"_init_{v}").cast(pl.Float64) for v in sp.mundlak})
    columns = sp.exog_names
    n_front = len(columns) - len([c for c in columns if c.startswith(("mean_", "init_"))])
    columns = columns[:n_front] + year_cols + columns[n_front:]

    if est.height == 0:
        from offshoring.econometrics.errors import EmptySampleError

        raise EmptySampleError(f"no estimation observation left in the years {sp.first_year}-{sp.last_year} "
                               f"of the specification (dropped: {({**dropped_rows, **dropped_firms})})")

    dropped_cols: dict[str, str] = {}
    dropped_data: dict[str, np.ndarray] = {}
    counts = est.select([exprs[n].sum().alias(n) for n in dummy_exprs]).row(0, named=True) if dummy_exprs else {}
    for name in columns:
        if name in counts and counts[name] == 0:
            dropped_cols[name] = "dummy with no observations in its level"
            dropped_data[name] = np.zeros(est.height)
    keep = [c for c in columns if c not in dropped_cols]
    # the design, once: one float64 array filled from the expressions (Fortran order)
    X = _design(est, keep, exprs)
    re_cols = {c for c in keep if c.startswith("mean_") or c.startswith("init_")}
    dep = dependent_columns(X, keep)
    collinear = [c for c in dep if c in re_cols]
    if collinear:  # (rare) rebuilt without them
        for c in collinear:
            dropped_cols[c] = "collinear with the other columns (e.g. constant within firms)"
            dropped_data[c] = X[:, keep.index(c)].copy()
        keep = [c for c in keep if c not in dropped_cols]
        del X
        X = _design(est, keep, exprs)

    endog = est[y].cast(pl.Float64).to_numpy()
    groups = est[g].to_numpy()
    times = est[t].to_numpy()
    sizes = est.group_by(g).len()["len"].to_numpy()
    initial_years = {int(k): int(v) for k, v in
                     est.group_by("_t0").agg(pl.col(g).n_unique()).sort("_t0").iter_rows()}
    n_obs = est.height
    del est
    description = {
        "outcome": y,
        "link": sp.link,
        "estimation_years": sorted(int(v) for v in np.unique(times)),
        "year_range": [sp.first_year, sp.last_year],
        "initial_period": rule,
        "initial_years": initial_years,
        "n_obs": int(n_obs),
        "n_firms": int(len(sizes)),
        "obs_per_firm": {"min": int(sizes.min()), "avg": float(sizes.mean()), "max": int(sizes.max())},
        "outcome_share": float(endog.mean()),
        "firms_in_panel": int(n_firms_panel),
        "candidate_obs": int(n_candidates),
        "rows_dropped": dropped_rows,
        "firms_dropped": dropped_firms,
        "columns": keep,
        "columns_dropped": dropped_cols,
        "other_collinear_columns": [c for c in dep if c not in re_cols],
    }
    return DynamicSample(
        X=X, exog_names=keep, y=endog, groups=groups, time=times, description=description, spec=sp,
        dropped_columns=dropped_data, constructed_columns=list(columns),
    )


def _design(frame: pl.DataFrame, columns: list[str], exprs: Mapping[str, pl.Expr],
            chunk: int = 8) -> np.ndarray:
    """The expressions of ``columns`` evaluated on ``frame`` into one writable float64
    array in Fortran order, a few columns at a time (so at most ``chunk`` evaluated
    columns exist beside the array)."""
    X = np.empty((frame.height, len(columns)), order="F")
    for start in range(0, len(columns), chunk):
        part = columns[start:start + chunk]
        block = frame.select([exprs[c].alias(c) for c in part])
        for j, c in enumerate(part, start):
            X[:, j] = block.get_column(c).to_numpy()  # a literal (the constant) broadcasts
        del block
    return X


def fit_dynamic_probit(
    panel: pl.DataFrame | pd.DataFrame,
    spec: str | Path | Mapping | DynamicSpec | None = None,
    **fit_kwargs,
):
    """Build the sample and fit the spec's model (default: Table 2).

    Returns the `RandomEffectsProbitResults`, with the sample (and its
    description) as ``results.sample``.
    """
    return build_dynamic_sample(panel, spec).fit(**fit_kwargs)
