"""Grouped-time proportional hazards: the complementary log-log model on spell-years.

When a proportional hazard ``lambda(t | x) = lambda0(t) exp(b'x)`` in continuous time is
observed only once a year (the spell ended somewhere in spell-year ``d`` = the interval
``(d - 1, d]``, covariates constant within it), the probability of the end in spell-year
``d`` given survival to ``d - 1`` is exactly

    P(end in d | at risk, x) = 1 - exp(-exp(gamma_d + b'x)),
    gamma_d = log(Lambda0(d) - Lambda0(d - 1)),

with the same ``b`` (Prentice & Gloeckler 1978; Allison 1982). Maximum likelihood on the
spell-year rows, a binary complementary log-log model with one intercept per spell-year
(per stratum and spell-year with ``strata``), is therefore exact for annual data, where a
Cox partial likelihood needs a rule for the many tied event times. Hazard ratios are
``exp(b)``.

Standard errors: ``oim`` (inverse observed information, the default model-based one),
``eim`` (expected information, as statsmodels' GLM fitted by IRLS) and ``cluster``
(default when groups are given): the sandwich ``H^-1 (sum_g s_g s_g') H^-1`` with the
observed information ``H`` and the sum ``s_g`` of a firm's score contributions, times
G/(G-1) (``cluster_correction=True``, default; statsmodels' ``cov_type="cluster"``
multiplies by G/(G-1) (N-1)/(N-K) instead).

A spell-year cell (stratum x spell-year) in which no spell ends, or every spell ends, has
its intercept at minus or plus infinity: its rows carry no information on ``b`` and are
left out before the fit (listed in ``description``), as a Cox risk set without events.

Validated in tests/test_grouped_ph.py against statsmodels' GLM (Binomial, CLogLog link).

For Table 3: `region_spell_risk_rows` keeps the rows of ``panel.spell_years`` on which
the region-spell hazard is identified, and `fit_grouped_ph_table3` fits the model of
``config/cox_table3.yaml`` (same rows, covariates and dummies as the Cox model) in this
form.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from ._linalg import dependent_columns
from ._summary import ResultsSummary, WaldResultsMixin, coefficient_table
from .cox import runaway_coefficients
from .errors import CollinearityError, ConvergenceError, PerfectPredictionError

_ETA_MAX = 700.0  # exp overflows beyond; probabilities are 0 or 1 to machine precision long before


def _pieces(eta: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: log-likelihood, score d l / d eta, observed and expected information
    (-d2 l / d eta2 and its expectation) of the complementary log-log Bernoulli."""
    eta = np.clip(eta, -_ETA_MAX, _ETA_MAX)
    mu = np.exp(eta)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p = -np.expm1(-mu)                       # 1 - exp(-mu), accurate for small mu
        surv = np.exp(-mu)
        logp = np.log(p)
        ll = np.where(y == 1, logp, -mu)
        # y = 1: mu e^-mu / p; y = 0: -mu
        r1 = np.where(p > 0, mu * surv / p, 1.0)
        score = np.where(y == 1, r1, -mu)
        # y = 1: mu e^-mu (mu - p) / p^2 (mu - p = mu + expm1(-mu), no cancellation trouble)
        w1 = np.where(p > 0, r1 * (mu + np.expm1(-mu)) / p, 0.0)
        w_obs = np.where(y == 1, w1, mu)
        w_exp = np.where(p > 0, mu * mu * surv / p, 0.0)
    return ll, score, w_obs, w_exp


class GroupedPH:
    """Grouped-time proportional hazards (complementary log-log) on spell-year rows.

    Parameters
    ----------
    exog : DataFrame (or array) of covariates, no constant (the baseline has one
        intercept per spell-year)
    duration : spell-year of each row, d for the interval (d - 1, d] (whole numbers)
    event : 1 if the spell ends in that spell-year
    groups : cluster label per row (firm); needed for ``cov_type="cluster"``
    strata : optional stratum label per row: separate baseline intercepts
    """

    def __init__(self, exog, duration, event, groups=None, strata=None):
        if isinstance(exog, pd.DataFrame):
            names = [str(c) for c in exog.columns]
            X = exog.to_numpy(dtype=float)
        else:
            X = np.asarray(exog, dtype=float)
            if X.ndim == 1:
                X = X[:, None]
            names = [f"x{j + 1}" for j in range(X.shape[1])]
        duration = np.asarray(duration, dtype=float).ravel()
        event = np.asarray(event, dtype=float).ravel()
        n = X.shape[0]
        if not (duration.size == event.size == n):
            raise ValueError("exog, duration and event differ in length")
        if n == 0:
            raise ValueError("no observations")
        if not np.all(np.isfinite(X)):
            bad = [nm for nm, ok in zip(names, np.isfinite(X).all(0)) if not ok]
            raise ValueError(f"exog has missing or infinite values in {bad}")
        if not np.all(np.isfinite(duration)) or np.any(duration != np.round(duration)) or np.any(duration < 1):
            raise ValueError("duration must be whole spell-years 1, 2, ... (the interval (d - 1, d])")
        if not np.all((event == 0) | (event == 1)):
            raise ValueError("event must be 0/1")
        groups_arr = None if groups is None else np.asarray(groups).ravel()
        if groups_arr is not None and groups_arr.size != n:
            raise ValueError("groups must have one label per row")
        strata_arr = None if strata is None else np.asarray(strata).astype(str).ravel()
        if strata_arr is not None and strata_arr.size != n:
            raise ValueError("strata must have one label per row")

        # baseline cells: spell-year (within stratum)
        d_int = duration.astype(np.int64)
        cell_key = (pd.Series(d_int).astype(str) if strata_arr is None
                    else pd.Series(strata_arr) + "|" + pd.Series(d_int).astype(str))
        frame = pd.DataFrame({"cell": cell_key.to_numpy(), "d": d_int, "e": event,
                              "stratum": strata_arr if strata_arr is not None else ""})
        agg = frame.groupby("cell", sort=False).agg(d=("d", "first"), stratum=("stratum", "first"),
                                                     rows=("e", "size"), events=("e", "sum"))
        agg = agg.sort_values(["stratum", "d"])
        degenerate = agg[(agg["events"] == 0) | (agg["events"] == agg["rows"])]
        keep = ~frame["cell"].isin(degenerate.index).to_numpy()
        self.description: dict[str, Any] = {
            "rows_in": int(n),
            "cells_dropped": {str(c): {"rows": int(r.rows), "events": int(r.events)}
                              for c, r in degenerate.iterrows()},
            "rows_dropped": int((~keep).sum()),
        }
        if not keep.any():
            raise ValueError("no spell-year has both spells that end and spells that go on: nothing to estimate")
        cells = agg.drop(degenerate.index)
        self.exog_names = names
        self.X = X[keep]
        self.duration = d_int[keep]
        self.event = event[keep]
        self.groups = None if groups_arr is None else groups_arr[keep]
        self.strata = None if strata_arr is None else strata_arr[keep]
        self.row_mask = keep  # rows of the input kept
        self.cells = cells
        cell_index = {c: j for j, c in enumerate(cells.index)}
        self.cell = frame.loc[keep, "cell"].map(cell_index).to_numpy()
        self.baseline_names = [
            f"gamma_{int(r.d)}" if strata_arr is None else f"gamma_{r.stratum}_{int(r.d)}"
            for r in cells.itertuples()]
        self.nobs = int(keep.sum())
        self.k_exog = X.shape[1]
        self.k_base = len(cells)
        self.k = self.k_exog + self.k_base
        self.n_events = int(self.event.sum())
        self.param_names = [*names, *self.baseline_names]
        # identification: a covariate that is a combination of the baseline cells (a constant,
        # a function of the spell-year) or of other covariates is not identified
        D = np.zeros((self.nobs, self.k_base))
        D[np.arange(self.nobs), self.cell] = 1.0
        dep = dependent_columns(np.column_stack([D, self.X]), [*self.baseline_names, *names])
        if dep:
            raise CollinearityError(
                f"covariates {dep} are linear combinations of the spell-year intercepts and the "
                "covariates before them: not identified; drop them")

    # ------------------------------------------------------------------ pieces

    def _eta(self, params: np.ndarray) -> np.ndarray:
        return self.X @ params[: self.k_exog] + params[self.k_exog:][self.cell]

    def _design_t(self, v: np.ndarray) -> np.ndarray:
        """[X, D]' v for a row vector (or n x m matrix) v."""
        v2 = v if v.ndim == 2 else v[:, None]
        top = self.X.T @ v2
        bottom = np.zeros((self.k_base, v2.shape[1]))
        np.add.at(bottom, self.cell, v2)
        out = np.vstack([top, bottom])
        return out if v.ndim == 2 else out[:, 0]

    def _weighted_gram(self, w: np.ndarray) -> np.ndarray:
        """[X, D]' diag(w) [X, D]."""
        k1 = self.k_exog
        H = np.zeros((self.k, self.k))
        Xw = self.X * w[:, None]
        H[:k1, :k1] = self.X.T @ Xw
        XD = np.zeros((self.k_base, k1))
        np.add.at(XD, self.cell, Xw)
        H[k1:, :k1] = XD
        H[:k1, k1:] = XD.T
        H[k1:, k1:] = np.diag(np.bincount(self.cell, weights=w, minlength=self.k_base))
        return H

    def loglike(self, params) -> float:
        ll, *_ = _pieces(self._eta(np.asarray(params, float)), self.event)
        return float(ll.sum())

    def score_obs(self, params) -> np.ndarray:
        """n x k: each row's contribution to the gradient."""
        params = np.asarray(params, float)
        _, s, _, _ = _pieces(self._eta(params), self.event)
        out = np.zeros((self.nobs, self.k))
        out[:, : self.k_exog] = self.X * s[:, None]
        out[np.arange(self.nobs), self.k_exog + self.cell] = s
        return out

    def information(self, params, observed: bool = True) -> np.ndarray:
        """Observed (minus the Hessian) or expected information matrix."""
        _, _, w_obs, w_exp = _pieces(self._eta(np.asarray(params, float)), self.event)
        return self._weighted_gram(w_obs if observed else w_exp)

    def _start(self) -> np.ndarray:
        rate = (self.cells["events"] / self.cells["rows"]).to_numpy(dtype=float)
        return np.concatenate([np.zeros(self.k_exog), np.log(-np.log1p(-rate))])

    def _llnull(self) -> float:
        e = self.cells["events"].to_numpy(float)
        r = self.cells["rows"].to_numpy(float)
        q = e / r
        return float(np.sum(e * np.log(q) + (r - e) * np.log1p(-q)))

    def _separation_sentence(self, names: list[str]) -> str:
        return (f"coefficients of {names} are heading to infinity: the "
                f"covariate{'s together' if len(names) > 1 else ''} separate{'' if len(names) > 1 else 's'} "
                "the spell-years that end a spell from those that do not, given the spell-year "
                f"intercepts ({self.n_events} events, {self.k_exog} covariates and {self.k_base} spell-year "
                f"intercepts, {self.nobs} rows)")

    # --------------------------------------------------------------------- fit

    def fit(
        self,
        cov_type: str | None = None,
        cluster_correction: bool = True,
        maxiter: int = 100,
        tol: float = 1e-12,
        start_params: Sequence[float] | None = None,
    ) -> "GroupedPHResults":
        """Newton-Raphson on the observed information with step halving.

        ``cov_type``: ``"cluster"`` (default when ``groups`` was given; ``"robust"`` is an
        alias), ``"oim"`` (default otherwise) or ``"eim"``. ``cluster_correction``: the
        G/(G-1) factor of the clustered sandwich.
        """
        if cov_type is None:
            cov_type = "cluster" if self.groups is not None else "oim"
        cov_type = {"robust": "cluster", "nonrobust": "oim"}.get(cov_type, cov_type)
        if cov_type not in ("cluster", "oim", "eim"):
            raise ValueError("cov_type must be 'cluster', 'oim' or 'eim'")
        if cov_type == "cluster" and self.groups is None:
            raise ValueError("cov_type='cluster' needs groups (the firm of each row)")
        t0 = time.perf_counter()
        theta = self._start() if start_params is None else np.asarray(start_params, float).copy()
        if theta.size != self.k:
            raise ValueError(f"start_params needs {self.k} values")
        llf = self.loglike(theta)
        converged = False
        failure = f"no convergence in {maxiter} iterations"
        it = 0
        last_step = None
        info_start = None
        for it in range(1, maxiter + 1):
            eta = self._eta(theta)
            _, s, w_obs, w_exp = _pieces(eta, self.event)
            grad = self._design_t(s)
            H = self._weighted_gram(w_obs)
            # A covariate's information collapses (by many orders of magnitude from where the
            # iterations started) only where every row it is non-zero on has an outcome the
            # linear predictor makes certain: the likelihood rises towards a supremum at
            # infinity. The Newton step there divides rounding noise by rounding noise (its
            # sign differs between machines), so the fit stops and names the covariates.
            info = np.diag(H)[: self.k_exog]
            if info_start is None:
                info_start = info
            collapsed = [nm for nm, i, i0 in zip(self.exog_names, info, info_start) if i < 1e-8 * i0]
            if collapsed:
                raise PerfectPredictionError(self._separation_sentence(collapsed))
            try:
                step = np.linalg.solve(H, grad)
                dec = float(grad @ step)
                if not np.isfinite(dec) or dec < 0:  # not positive definite here: Fisher scoring
                    raise np.linalg.LinAlgError
            except np.linalg.LinAlgError:
                try:
                    step = np.linalg.solve(self._weighted_gram(w_exp), grad)
                    dec = float(grad @ step)
                except np.linalg.LinAlgError:
                    dec = float("nan")
                if not np.isfinite(dec):
                    failure = "singular information matrix"
                    break
            last_step = step
            if dec < tol:
                # one last Newton step: the error is squared again (no line search needed here)
                last = theta + step
                last_ll = self.loglike(last)
                if np.isfinite(last_ll) and last_ll >= llf - 1e-12 * abs(llf):
                    theta, llf = last, last_ll
                converged = True
                break
            t = 1.0
            improved = False
            while t >= 1e-10:
                new_ll = self.loglike(theta + t * step)
                if np.isfinite(new_ll) and new_ll >= llf - 1e-12 * abs(llf):
                    improved = True
                    break
                t *= 0.5
            if not improved:
                failure = f"no step improves the log-likelihood (iteration {it})"
                break
            theta = theta + t * step
            llf = new_ll
        # whether or not the iterations met the criterion before the numbers ran out (the
        # last step tells only at a point that met it)
        runaway = runaway_coefficients(self.exog_names, theta[: self.k_exog], self.X.std(axis=0),
                                       last_step if converged else None)
        if runaway:
            raise PerfectPredictionError(self._separation_sentence(runaway))
        if not converged:
            raise ConvergenceError(failure)
        return GroupedPHResults(self, theta, cov_type, cluster_correction, it, time.perf_counter() - t0)


class GroupedPHResults(WaldResultsMixin):
    """Results of `GroupedPH.fit`, named as in statsmodels.

    ``params``: the covariates' coefficients (log hazard ratios) then the spell-year
    intercepts ``gamma_d``; ``hazard_ratios`` and ``hazard_ratio_conf_int()`` for the
    covariates; ``baseline`` the intercepts alone.
    """

    def __init__(self, model: GroupedPH, params, cov_type, cluster_correction, iterations, fit_time):
        self.model = model
        self.params_array = np.asarray(params, float)
        self.llf = model.loglike(self.params_array)
        self.llnull = model._llnull()
        self.cov_type = cov_type
        self.cluster_correction = bool(cluster_correction)
        self.iterations = iterations
        self.fit_time = fit_time
        self.sample = None
        self.information = model.information(self.params_array, observed=True)
        self.cov_oim = np.linalg.inv(self.information)
        self.cov_eim = np.linalg.inv(model.information(self.params_array, observed=False))
        self.score = model._design_t(_pieces(model._eta(self.params_array), model.event)[1])
        self.cov_cluster = None
        self.ngroups = None
        if model.groups is not None:
            codes = pd.factorize(model.groups)[0]
            G = int(codes.max()) + 1
            Sg = np.zeros((G, model.k))
            np.add.at(Sg, codes, model.score_obs(self.params_array))
            meat = Sg.T @ Sg * (G / (G - 1.0) if cluster_correction and G > 1 else 1.0)
            self.cov_cluster = self.cov_oim @ meat @ self.cov_oim
            self.ngroups = G
        self._cov = {"cluster": self.cov_cluster, "oim": self.cov_oim, "eim": self.cov_eim}[cov_type]

    # --------------------------------------------------------------- accessors

    @property
    def names(self) -> list[str]:
        return self.model.param_names

    @property
    def exog_names(self) -> list[str]:
        return self.model.exog_names

    @property
    def bse_eim(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov_eim)), index=self.names)

    @property
    def hazard_ratios(self) -> pd.Series:
        return np.exp(self.params[self.exog_names]).rename("hazard ratio")

    def hazard_ratio_conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        ci = np.exp(self.conf_int(alpha).loc[self.exog_names])
        ci.columns = ["lower", "upper"]
        return ci

    @property
    def baseline(self) -> pd.Series:
        """The spell-year intercepts gamma_d = log(Lambda0(d) - Lambda0(d-1))."""
        return self.params[self.model.baseline_names].rename("gamma")

    @property
    def nobs(self) -> int:
        return self.model.nobs

    @property
    def n_events(self) -> int:
        return self.model.n_events

    @property
    def lr_test(self) -> dict:
        """Likelihood ratio test of all covariates against the intercepts-only model."""
        stat = 2 * (self.llf - self.llnull)
        k = self.model.k_exog
        return {"stat": stat, "df": k, "pvalue": float(stats.chi2.sf(stat, k))}

    def summary(self, alpha: float = 0.05) -> ResultsSummary:
        names = self.exog_names
        table = coefficient_table(self.params[names], self.bse[names], alpha, exp=True)
        if self.cov_type == "cluster":
            table.insert(3, "std err (oim)", self.bse_oim[names])
        if self.sample is not None and getattr(self.sample, "labels", None):
            table.insert(0, "label", [self.sample.labels.get(n, n) for n in names])
        base = self.model.baseline_names
        extra = {"Spell-year intercepts gamma_d = log(Lambda0(d) - Lambda0(d-1))":
                 pd.DataFrame({"coef": self.params[base], "std err": self.bse[base],
                               "rows": self.model.cells["rows"].to_numpy(),
                               "events": self.model.cells["events"].to_numpy().astype(int)}, index=base)}
        lr = self.lr_test
        cov = self.cov_type + (" (G/(G-1))" if self.cov_type == "cluster" and self.cluster_correction else "")
        info = [
            ("Model", "grouped PH, cloglog"),
            ("Baseline", "gamma per year"),
            ("No. rows", self.nobs),
            ("No. events", self.n_events),
            ("No. clusters", self.ngroups if self.ngroups is not None else "-"),
            ("Rows dropped", self.model.description["rows_dropped"]),
            ("Covariance", cov),
            ("Log-likelihood", self.llf),
            ("LR chi2", round(lr["stat"], 3)),
            ("Prob > chi2", lr["pvalue"]),
            ("Iterations", self.iterations),
        ]
        notes = ["P(end in spell-year d | at risk) = 1 - exp(-exp(gamma_d + x'b)): exact for a proportional "
                 "hazard observed once a year; exp(b) are hazard ratios"]
        if self.cov_type == "cluster":
            notes.append("Std. err. clustered (sandwich of the score summed by cluster, observed information)")
        return ResultsSummary(title="Grouped-time proportional hazards regression", info=info, table=table,
                              extra=extra, notes=notes)


# --------------------------------------------------------------------- Table 3


def region_spell_risk_rows(spell_years: pl.DataFrame | pd.DataFrame, firm_exit: str = "censor") -> pl.DataFrame:
    """The rows of ``panel.spell_years`` whose outcome the region-spell hazard decides.

    The table must still hold its ``any`` rows (the firm's spells of foreign
    subcontracting to any region). Dropped:

    * region spell-years after which the firm stopped subcontracting abroad altogether
      (its ``any`` row has the event that year): sql/panel_outsourcing_spells.sql codes
      them as backshoring in every region, but this end is the firm's decision (Table 2),
      a competing end that censors the region spells at the start of that spell-year;
    * the last spell-year of a censored spell (the firm left the survey, crossed the
      turnover ceiling, or the year is the last survey year): whether the spell went on
      is not seen, so the spell is censored at the start of that spell-year (the SQL keeps
      the row with event 0, as if the spell had survived it);
    * region spell-years after which the firm's ``any`` spell ended without an event while
      it was still in the survey: its return of the next year left some foreign amounts
      empty (``status_unknown``), so a region left that year may be the firm's complete
      stop, the competing end, as well as backshoring from the region; censored at the
      start of that spell-year like the others (with ``firm_exit="censor"`` only).

    With ``firm_exit="event"`` (the Cox spec's `firm_exit`) the first rule is not applied:
    a firm's complete stop then counts as backshoring from each of its regions, as the SQL
    codes it. Everything else (left-censored spells, missing covariates, destinations) is
    left to the model spec (`build_cox_sample`). Returns a polars frame with the input's
    columns.
    """
    if firm_exit not in ("censor", "event"):
        raise ValueError("firm_exit must be 'censor' or 'event'")
    df = spell_years if isinstance(spell_years, pl.DataFrame) else pl.from_pandas(spell_years)
    need = {"firm_id", "destination", "spell_no", "year", "event"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise KeyError(f"the spell-year table lacks columns {missing}")
    if df.filter(pl.col("destination") == "any").height == 0:
        raise ValueError("the spell-year table has no 'any' rows: the firms' exits from foreign "
                         "subcontracting cannot be told from region backshoring")
    last = (df.group_by("firm_id", "destination", "spell_no")
            .agg(pl.col("year").max().alias("_last_year"), pl.col("event").max().alias("_ended")))
    # the firm's complete stop after `year`, or a year after which whether it went on abroad
    # is unknown while one of its regions ended in backshoring (an 'any' spell ending then
    # without an event: the firm is in the next year's panel, its status not reported)
    any_ends = last.filter(pl.col("destination") == "any")
    region_events = (df.filter((pl.col("destination") != "any") & (pl.col("event") == 1))
                     .select("firm_id", "year").unique())
    unknown = (any_ends.filter(pl.col("_ended") == 0)
               .select("firm_id", pl.col("_last_year").alias("year"))
               .join(region_events, on=["firm_id", "year"], how="semi"))
    stops = (pl.concat([df.filter((pl.col("destination") == "any") & (pl.col("event") == 1))
                        .select("firm_id", "year"), unknown.select("firm_id", pl.col("year").cast(df.schema["year"]))])
             .unique().with_columns(pl.lit(True).alias("_firm_stops")))
    out = (df.with_row_index("_row")
           .join(stops, on=["firm_id", "year"], how="left")
           .join(last, on=["firm_id", "destination", "spell_no"], how="left")
           .filter(~(pl.col("_firm_stops").fill_null(False) & (pl.col("destination") != "any")
                     & pl.lit(firm_exit == "censor")))
           .filter(~((pl.col("year") == pl.col("_last_year")) & (pl.col("_ended") == 0)))
           .sort("_row")
           .drop("_row", "_firm_stops", "_last_year", "_ended"))
    return out


def fit_grouped_ph_table3(
    spell_years: pl.DataFrame | pd.DataFrame,
    spec: str | Path | Mapping | Any | None = None,
    **fit_kwargs,
) -> GroupedPHResults:
    """The Table 3 model of ``config/cox_table3.yaml`` (or another Cox spec) in grouped-time
    form: the Cox model's rows, covariates, dummies, strata and cluster, with one intercept
    per spell-year (``stop`` of the annual (start, stop] rows) instead of the Cox baseline.

    Pass ``region_spell_risk_rows(spell_years)`` for the estimand of the generator (see
    truth.json's ``cox`` section). ``fit_kwargs`` go to `GroupedPH.fit` (default: the
    spec's ``cov_type``, with the G/(G-1) cluster factor). Returns the results with the
    sample as ``results.sample``.
    """
    from .cox import build_cox_sample, levels_without_events_note

    sample = build_cox_sample(spell_years, spec)
    sp = sample.spec
    df = sample.data
    width = (df[sp.stop] - df[sp.start]).to_numpy(dtype=float)
    if not np.all(width == 1):
        raise ValueError("grouped-time form needs spell-year rows of one unit each (stop - start = 1)")
    strata = None
    if sp.strata:
        strata = df[list(sp.strata)].astype(str).agg("|".join, axis=1).to_numpy()
    model = GroupedPH(df[sample.exog_names].astype(float), df[sp.stop], df[sp.event],
                      groups=df[sp.cluster].to_numpy(), strata=strata)
    options = {"cov_type": sp.cov_type, **fit_kwargs}
    try:
        res = model.fit(**options)
    except PerfectPredictionError as exc:
        hint = levels_without_events_note(sample)
        if hint:
            raise PerfectPredictionError(f"{exc}. {hint}") from exc
        raise
    res.sample = sample
    return res
