"""Cox proportional-hazards model for (start, stop] data with firm-clustered errors.

The spell-year table has one row per spell and year: the spell is at risk at
time ``t`` in the row with ``start < t <= stop``, and covariates may change from
row to row. The partial likelihood uses Efron's handling of tied event times
(events are recorded annually, so ties are the rule); Breslow's is an option.

Standard errors:

* ``oim``: inverse of the observed information;
* ``cluster`` (default when clusters are given): the sandwich of Lin & Wei
  (1989), ``I^-1 (sum_c U_c U_c') I^-1``, with ``U_c`` the sum over a cluster's
  rows of their Efron-weighted score residuals. A row's residual collects its
  contributions at the event times inside its own ``(start, stop]``, so a
  spell's sum does not depend on how the spell is cut into rows: splitting a row
  in two leaves the estimates and both kinds of standard errors unchanged
  (lifelines' ``CoxTimeVaryingFitter`` has no clustered errors and its
  ``CoxPHFitter(entry_col=...)`` route gives errors that change when a spell is
  split). No small-sample factor by default, as R's ``coxph`` and lifelines;
  ``cluster_correction=True`` multiplies by G/(G-1) as Stata.

The proportional-hazards test is Grambsch & Therneau's (1994) on scaled
Schoenfeld residuals, per covariate and global, as R's ``cox.zph`` before
survival 3.0 (and lifelines), with the time transforms ``km`` (R's default),
``rank``, ``identity`` and ``log``.

Validated in tests/test_cox.py against R's ``coxph`` on the Rossi recidivism
data as shipped with lifelines.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from ._linalg import dependent_columns
from ._summary import ResultsSummary, WaldResultsMixin, coefficient_table
from .errors import CollinearityError, ConvergenceError, PerfectPredictionError
# the Table 3 spec is plain data, read without numpy or scipy; re-exported here
from .model_specs import COX_KEYS, DEFAULT_COX_SPEC_FILE, CoxSpec, load_cox_spec  # noqa: F401


@dataclass
class _Stratum:
    """Precomputed indexing of one stratum."""

    rows: np.ndarray  # positions in the model's arrays
    times: np.ndarray  # distinct event times, increasing
    n_ev: np.ndarray  # events at each time
    lo: np.ndarray  # per row: number of event times <= start
    hi: np.ndarray  # per row: number of event times <= stop
    ev_rows: np.ndarray  # stratum-local positions of event rows, by event time
    ev_time: np.ndarray  # index of each event row's time
    frac: np.ndarray  # Efron fraction l / d of each event "slot"
    slot_time: np.ndarray  # event-time index of each slot
    at_risk: np.ndarray  # per row: in the risk set of at least one event time (lo < hi)
    tree: "_IntervalTree"  # the rows' spans [lo, hi) of event times, as dyadic blocks


class _IntervalTree:
    """Sums over the event times a row spans, and over the rows at risk at a time, with
    no subtraction.

    Row ``i`` is at risk at the event times ``lo[i] <= t < hi[i]``. Running sums
    (add a row's weight when it enters, subtract it when it leaves) lose every digit
    when the weights span many orders of magnitude, as ``exp(x'b)`` does when a
    coefficient runs away: a risk set of weights 1e-30 after rows of weight 1 have
    left comes out as rounding noise, zero or negative. Here each span is cut into
    O(log m) dyadic blocks of a binary tree over the m event times, and both kinds of
    sums add non-negative terms only (up to the sign of the covariates), so every sum is
    accurate relative to its own size.
    """

    def __init__(self, lo: np.ndarray, hi: np.ndarray, m: int):
        size = 1
        while size < max(m, 1):
            size *= 2
        self.m, self.size, self.n = m, size, lo.size
        left, right = lo.astype(np.int64) + size, hi.astype(np.int64) + size
        rows = np.arange(lo.size)
        pair_rows, pair_nodes = [], []
        while True:
            active = left < right
            if not active.any():
                break
            a = active & (left % 2 == 1)
            pair_rows.append(rows[a])
            pair_nodes.append(left[a])
            left = left + a
            b = active & (right % 2 == 1)
            right = right - b
            pair_rows.append(rows[b])
            pair_nodes.append(right[b])
            left //= 2
            right //= 2
        self.pair_rows = np.concatenate(pair_rows) if pair_rows else np.zeros(0, np.int64)
        self.pair_nodes = np.concatenate(pair_nodes) if pair_nodes else np.zeros(0, np.int64)
        depth = size.bit_length()  # levels from a leaf up to the root (node 1)
        self.leaf_path = (np.arange(m)[:, None] + size) >> np.arange(depth)[None, :]

    def at_times(self, w: np.ndarray) -> np.ndarray:
        """Per event time, the sum of ``w`` (one value or row of values per row) over the
        rows at risk then."""
        w2 = w[:, None] if w.ndim == 1 else w
        nodes = np.empty((2 * self.size, w2.shape[1]))
        for j in range(w2.shape[1]):
            nodes[:, j] = np.bincount(self.pair_nodes, w2[self.pair_rows, j], 2 * self.size)
        out = nodes[self.leaf_path].sum(axis=1)
        return out[:, 0] if w.ndim == 1 else out

    def over_span(self, a: np.ndarray) -> np.ndarray:
        """Per row, the sum of ``a`` (one value or row of values per event time) over the
        event times the row is at risk."""
        a2 = a[:, None] if a.ndim == 1 else a
        nodes = np.zeros((2 * self.size, a2.shape[1]))
        nodes[self.size: self.size + self.m] = a2
        level = self.size // 2
        while level >= 1:
            idx = np.arange(level, 2 * level)
            nodes[idx] = nodes[2 * idx] + nodes[2 * idx + 1]
            level //= 2
        out = np.empty((self.n, a2.shape[1]))
        for j in range(a2.shape[1]):
            out[:, j] = np.bincount(self.pair_rows, nodes[self.pair_nodes, j], self.n)
        return out[:, 0] if a.ndim == 1 else out


class _RiskSetUnderflow(ConvergenceError):
    """exp(x'b) of every row at risk at an event time is below the floating-point range."""


class CoxPH:
    """Cox model on (start, stop] rows.

    Parameters
    ----------
    exog : DataFrame of covariates (no constant)
    start, stop : interval of each row; the row is at risk at t with start < t <= stop
    event : 1 if the spell ends with the event at ``stop``
    groups : cluster label per row (firm); needed for ``cov_type="cluster"``
    strata : optional stratum label per row (separate baseline hazards)
    ties : ``"efron"`` (default) or ``"breslow"``
    """

    def __init__(
        self,
        exog,
        start,
        stop,
        event,
        groups=None,
        strata=None,
        ties: str = "efron",
    ):
        if ties not in ("efron", "breslow"):
            raise ValueError("ties must be 'efron' or 'breslow'")
        if isinstance(exog, pd.DataFrame):
            names = [str(c) for c in exog.columns]
            X = exog.to_numpy(dtype=float)
        else:
            X = np.asarray(exog, dtype=float)
            if X.ndim == 1:
                X = X[:, None]
            names = [f"x{j + 1}" for j in range(X.shape[1])]
        start = np.asarray(start, dtype=float).ravel()
        stop = np.asarray(stop, dtype=float).ravel()
        event = np.asarray(event, dtype=float).ravel()
        n = X.shape[0]
        if not (start.size == stop.size == event.size == n):
            raise ValueError("exog, start, stop and event differ in length")
        if n == 0:
            raise ValueError("no observations")
        if not np.all(np.isfinite(X)):
            bad = [nm for nm, ok in zip(names, np.isfinite(X).all(0)) if not ok]
            raise ValueError(f"exog has missing or infinite values in {bad}")
        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(stop))):
            raise ValueError("start/stop have missing values")
        if np.any(stop <= start):
            raise ValueError(f"{int(np.sum(stop <= start))} rows have stop <= start")
        if not np.all((event == 0) | (event == 1)):
            raise ValueError("event must be 0/1")
        if event.sum() == 0:
            raise ValueError("no events: nothing to estimate")
        self.exog_names = names
        self.X = X
        self.start, self.stop, self.event = start, stop, event
        self.ties = ties
        self.nobs = n
        self.k = X.shape[1]
        self.n_events = int(event.sum())
        self.groups = None if groups is None else np.asarray(groups).ravel()
        if self.groups is not None and self.groups.size != n:
            raise ValueError("groups must have one label per row")
        strata_arr = np.zeros(n, dtype=np.intp) if strata is None else pd.factorize(np.asarray(strata).ravel())[0]
        self.strata = strata_arr
        self._strata = [self._index_stratum(np.flatnonzero(strata_arr == s)) for s in np.unique(strata_arr)]
        # centre within strata for numerical stability (estimates unchanged)
        self._Xc = X.copy()
        for st in self._strata:
            self._Xc[st.rows] -= X[st.rows].mean(axis=0)
        const = [nm for nm, sd in zip(names, self._Xc.std(axis=0)) if sd == 0]
        if const:
            raise CollinearityError(f"covariates {const} do not vary (within strata): not identified")
        dep = dependent_columns(self._Xc, names)
        if dep:
            raise CollinearityError(
                f"covariates {dep} are linear combinations of the columns before them; drop them"
            )

    @classmethod
    def from_frame(
        cls,
        data: pd.DataFrame | pl.DataFrame,
        covariates: Sequence[str],
        start: str = "start",
        stop: str = "stop",
        event: str = "event",
        cluster: str | None = None,
        strata: str | Sequence[str] | None = None,
        ties: str = "efron",
    ) -> "CoxPH":
        if isinstance(data, pl.DataFrame):
            data = data.to_pandas()
        st = None
        if strata:
            cols = [strata] if isinstance(strata, str) else list(strata)
            st = data[cols].astype(str).agg("|".join, axis=1).to_numpy()
        return cls(
            data[list(covariates)].astype(float),
            data[start],
            data[stop],
            data[event],
            groups=None if cluster is None else data[cluster].to_numpy(),
            strata=st,
            ties=ties,
        )

    # --------------------------------------------------------------- indexing

    def _index_stratum(self, rows: np.ndarray) -> _Stratum:
        start, stop, event = self.start[rows], self.stop[rows], self.event[rows]
        ev = event == 1
        times, n_ev = np.unique(stop[ev], return_counts=True)
        lo = np.searchsorted(times, start, side="right")
        hi = np.searchsorted(times, stop, side="right")
        ev_local = np.flatnonzero(ev)
        ev_time = np.searchsorted(times, stop[ev_local])
        order = np.argsort(ev_time, kind="stable")
        ev_local, ev_time = ev_local[order], ev_time[order]
        slot_time = np.repeat(np.arange(times.size), n_ev)
        first = np.concatenate([[0], np.cumsum(n_ev)[:-1]])
        pos = np.arange(slot_time.size) - np.repeat(first, n_ev)
        frac = pos / np.repeat(n_ev, n_ev) if self.ties == "efron" else np.zeros(slot_time.size)
        return _Stratum(rows, times, n_ev, lo, hi, ev_local, ev_time, frac, slot_time,
                        at_risk=lo < hi, tree=_IntervalTree(lo, hi, times.size))

    # -------------------------------------------------------------- likelihood

    def _evaluate(self, beta: np.ndarray, order: int = 2) -> dict[str, Any]:
        """Log partial likelihood, score, information and residuals at ``beta``."""
        k = self.k
        llf = 0.0
        grad = np.zeros(k)
        info = np.zeros((k, k))
        score_resid = np.zeros((self.nobs, k)) if order >= 2 else None
        schoenfeld = []
        for st in self._strata:
            if not st.at_risk.any():  # a stratum without events: no term
                continue
            X = self._Xc[st.rows]
            eta = X @ beta
            # rows at risk at no event time (e.g. spell-years after the last event time)
            # do not enter the likelihood: they must not set the scale
            shift = eta[st.at_risk].max()
            r = np.exp(np.minimum(eta - shift, 0.0))
            r[~st.at_risk] = 0.0
            m = st.times.size
            # risk-set sums at each event time: rows with lo <= i < hi
            rX = X * r[:, None]
            S0R = st.tree.at_times(r)
            S1R = st.tree.at_times(rX)
            evr = st.ev_rows
            S0D = np.bincount(st.ev_time, r[evr], m)
            S1D = np.zeros((m, k))
            np.add.at(S1D, st.ev_time, rX[evr])
            # Efron slots: one per event, l = 0..d-1 at each time
            f = st.frac
            tslot = st.slot_time
            S0l = S0R[tslot] - f * S0D[tslot]
            if not np.all(S0l > 0):
                # never empty (an event row is at risk at its own time): exp(x'b) of the
                # whole risk set is below the floating-point range, the linear predictor
                # spanning more than about 700 (a coefficient running away)
                raise _RiskSetUnderflow(
                    "exp(x'b) underflows for every row at risk at an event time: the linear "
                    f"predictor spans {float(np.ptp(eta[st.at_risk])):.0f} (coefficients running away)")
            S1l = S1R[tslot] - f[:, None] * S1D[tslot]
            xbar = S1l / S0l[:, None]
            llf += float(eta[evr].sum() - shift * evr.size - np.log(S0l).sum())
            grad += X[evr].sum(axis=0) - xbar.sum(axis=0)
            if order == 0:
                continue
            inv0 = 1.0 / S0l
            a_t = np.bincount(tslot, inv0, m)  # sum_l 1/S0_l
            b_t = np.bincount(tslot, f * inv0, m)  # sum_l f_l/S0_l
            # sum over event times inside each row's (start, stop]
            CA = st.tree.over_span(a_t)
            w = r * CA
            w[evr] -= r[evr] * b_t[st.ev_time]
            info += (X * w[:, None]).T @ X - xbar.T @ xbar
            # Schoenfeld residuals of the event rows: x_j - mean over slots of xbar
            xbar_t = np.zeros((m, k))
            np.add.at(xbar_t, tslot, xbar)
            xbar_t /= st.n_ev[:, None]
            schoenfeld.append((st.rows[evr], X[evr] - xbar_t[st.ev_time]))
            if order >= 2:
                B_t = np.zeros((m, k))
                np.add.at(B_t, tslot, xbar * inv0[:, None])
                Bf_t = np.zeros((m, k))
                np.add.at(Bf_t, tslot, xbar * (f * inv0)[:, None])
                CB = st.tree.over_span(B_t)
                U = -r[:, None] * (X * CA[:, None] - CB)
                U[evr] += X[evr] - xbar_t[st.ev_time]
                U[evr] += r[evr, None] * (X[evr] * b_t[st.ev_time, None] - Bf_t[st.ev_time])
                score_resid[st.rows] = U
        out = {"llf": llf, "grad": grad, "info": 0.5 * (info + info.T)}
        if order >= 1:
            rows = np.concatenate([s[0] for s in schoenfeld])
            res = np.vstack([s[1] for s in schoenfeld])
            out["schoenfeld"] = (rows, res)
        if order >= 2:
            out["score_resid"] = score_resid
        return out

    def loglike(self, params) -> float:
        return self._evaluate(np.asarray(params, dtype=float), order=0)["llf"]

    # ---------------------------------------------------------------------- fit

    def fit(
        self,
        cov_type: str | None = None,
        cluster_correction: bool = False,
        maxiter: int = 50,
        tol: float = 1e-12,
        start_params: Sequence[float] | None = None,
    ) -> "CoxResults":
        """Newton-Raphson with step halving from zero (or ``start_params``).

        ``cov_type``: ``"cluster"`` (default when ``groups`` was given; ``"robust"``
        is an alias) or ``"oim"``.
        """
        if cov_type is None:
            cov_type = "cluster" if self.groups is not None else "oim"
        cov_type = {"robust": "cluster", "nonrobust": "oim"}.get(cov_type, cov_type)
        if cov_type not in ("cluster", "oim"):
            raise ValueError("cov_type must be 'cluster' or 'oim'")
        if cov_type == "cluster" and self.groups is None:
            raise ValueError("cov_type='cluster' needs groups (the firm of each row)")
        t0 = time.perf_counter()
        beta = np.zeros(self.k) if start_params is None else np.asarray(start_params, float).copy()
        llnull = self.loglike(np.zeros(self.k))
        cur = self._evaluate(beta, order=1)
        converged = False
        failure = f"no convergence in {maxiter} iterations"
        it = 0
        last_step = None
        for it in range(1, maxiter + 1):
            try:
                step = np.linalg.solve(cur["info"], cur["grad"])
            except np.linalg.LinAlgError:
                failure = "singular information matrix"
                break
            last_step = step
            dec = float(cur["grad"] @ step)
            if not np.isfinite(dec):
                failure = "singular information matrix"
                break
            if dec < tol:
                converged = True
                break
            t = 1.0
            new = None
            while True:
                try:
                    trial = self._evaluate(beta + t * step, order=1)
                except _RiskSetUnderflow:
                    trial = None  # the step overshoots so far that a risk set underflows: shorter
                if trial is not None and trial["llf"] >= cur["llf"] - 1e-12 * abs(cur["llf"]):
                    new = trial
                    break
                t *= 0.5
                if t < 1e-10:
                    break
            if new is None:
                failure = f"no step improves the partial likelihood (iteration {it})"
                break
            beta = beta + t * step
            cur = new
        # whether or not the iterations met the criterion before the numbers ran out (the
        # last step tells only at a point that met it)
        runaway = runaway_coefficients(self.exog_names, beta, self._Xc.std(axis=0),
                                       last_step if converged else None)
        if runaway:
            raise PerfectPredictionError(
                f"coefficients of {runaway} are heading to infinity (monotone likelihood): the "
                f"covariate{'s together' if len(runaway) > 1 else ''} separate{'' if len(runaway) > 1 else 's'} "
                "the spells that end from those still at risk at each event time "
                f"({self.n_events} events, {self.k} covariates, {self.nobs} rows)"
            )
        if not converged:
            raise ConvergenceError(failure)
        final = self._evaluate(beta, order=2)
        return CoxResults(
            model=self,
            params=beta,
            evaluation=final,
            llnull=llnull,
            cov_type=cov_type,
            cluster_correction=cluster_correction,
            iterations=it,
            fit_time=time.perf_counter() - t0,
        )


def runaway_coefficients(names, params, sd, last_step=None) -> list[str]:
    """Names of the coefficients that head to infinity rather than to an estimate.

    A coefficient is running away when its hazard ratio exceeds e^10 per standard
    deviation of the covariate, or when the last Newton step, taken where the likelihood
    no longer changes, still moves it outwards by more than 1e-3 standard deviation units
    and 1e-4 of its value (as R's ``coxph`` warns "coefficient may be infinite"). On a
    likelihood that rises without end the score and the information vanish together, so
    the convergence criterion is met with the step still of order one (about 1 for a
    dummy whose level has no event, however rare the level, and however small its
    hazard ratio per s.d. looks). At a finite maximum the last step is below 1e-6
    standard errors (the criterion is a Newton decrement below 1e-12), so it flags only a
    coefficient whose standard error exceeds 1000 per s.d. of its covariate. Pass
    ``last_step`` only from a point where the convergence criterion was met.
    """
    b = np.asarray(params, dtype=float)
    sd = np.asarray(sd, dtype=float)
    out = np.abs(b * sd) > 10
    if last_step is not None:
        st = np.asarray(last_step, dtype=float)[: b.size]
        out |= (st * b > 0) & (np.abs(st * sd) > 1e-3) & (np.abs(st) > 1e-4 * np.abs(b))
    return [nm for nm, flag in zip(names, out) if flag]


class CoxResults(WaldResultsMixin):
    """Results of `CoxPH.fit`, named as in statsmodels and lifelines.

    ``params`` are log hazard ratios, ``bse`` their standard errors of the
    chosen type (``bse_oim`` and ``bse_cluster`` both kept), ``hazard_ratios``
    and ``hazard_ratio_conf_int()`` on the ratio scale.
    """

    def __init__(self, model: CoxPH, params, evaluation, llnull, cov_type, cluster_correction, iterations, fit_time):
        self.model = model
        self.params_array = np.asarray(params, dtype=float)
        self.llf = float(evaluation["llf"])
        self.llnull = float(llnull)
        self.information = evaluation["info"]
        self.score = evaluation["grad"]  # gradient at the estimates (about zero)
        self.score_residuals_array = evaluation["score_resid"]
        self._schoenfeld = evaluation["schoenfeld"]
        self.cov_type = cov_type
        self.cluster_correction = cluster_correction
        self.iterations = iterations
        self.fit_time = fit_time
        self.sample = None
        self.cov_oim = np.linalg.inv(self.information)
        self.cov_cluster = None
        if model.groups is not None:
            codes = pd.factorize(model.groups)[0]
            Uc = np.zeros((codes.max() + 1, model.k))
            np.add.at(Uc, codes, self.score_residuals_array)
            G = Uc.shape[0]
            meat = Uc.T @ Uc * (G / (G - 1.0) if cluster_correction else 1.0)
            self.cov_cluster = self.cov_oim @ meat @ self.cov_oim
            self.ngroups = G
        else:
            self.ngroups = None
        self._cov = self.cov_cluster if cov_type == "cluster" else self.cov_oim

    # --------------------------------------------------------------- accessors

    @property
    def names(self) -> list[str]:
        return self.model.exog_names

    @property
    def hazard_ratios(self) -> pd.Series:
        return np.exp(self.params).rename("hazard ratio")

    def hazard_ratio_conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        ci = np.exp(self.conf_int(alpha))
        ci.columns = ["lower", "upper"]
        return ci

    @property
    def nobs(self) -> int:
        return self.model.nobs

    @property
    def n_events(self) -> int:
        return self.model.n_events

    @property
    def lr_test(self) -> dict:
        stat = 2 * (self.llf - self.llnull)
        return {"stat": stat, "df": self.model.k, "pvalue": float(stats.chi2.sf(stat, self.model.k))}

    def score_residuals(self) -> pd.DataFrame:
        """Efron-weighted score residual of each row (model's row order)."""
        return pd.DataFrame(self.score_residuals_array, columns=self.names)

    def schoenfeld_residuals(self, scaled: bool = False) -> pd.DataFrame:
        """Schoenfeld residuals of the event rows, indexed by row position, sorted by time.

        ``scaled=True`` gives n_events * residual @ V (V the inverse information),
        without adding the coefficients (as lifelines; R's cox.zph adds them for
        its plots).
        """
        rows, res = self._schoenfeld
        order = np.lexsort((rows, self.model.stop[rows]))
        rows, res = rows[order], res[order]
        if scaled:
            res = self.n_events * res @ self.cov_oim
        return pd.DataFrame(res, index=pd.Index(rows, name="row"), columns=self.names)

    def ph_test(self, transform: str = "km") -> pd.DataFrame:
        """Grambsch-Therneau test of proportional hazards on scaled Schoenfeld residuals.

        One chi-squared(1) statistic per covariate and a global chi-squared(k),
        against a transform of event time: ``km`` (1 - left-continuous
        Kaplan-Meier, R's default), ``rank`` (rank among event times),
        ``identity`` or ``log``. Uses the model-based variance, as R.
        """
        res = self.schoenfeld_residuals()
        times = self.model.stop[res.index.to_numpy()]
        g = _time_transform(self.model, times, transform)
        g = g - g.mean()
        d = self.n_events
        V = self.cov_oim
        s = res.to_numpy()
        scaled = d * s @ V
        num = (g[:, None] * scaled).sum(axis=0)
        per = num**2 / (d * np.diag(V) * (g**2).sum())
        tg = g @ s
        glob = float(tg @ V @ tg) * d / (g**2).sum()
        k = self.model.k
        table = pd.DataFrame(
            {
                "rho": [np.corrcoef(g, scaled[:, j])[0, 1] if np.std(scaled[:, j]) > 0 else np.nan for j in range(k)] + [np.nan],
                "chi2": [*per, glob],
                "df": [1] * k + [k],
            },
            index=[*self.names, "GLOBAL"],
        )
        table["P>chi2"] = stats.chi2.sf(table["chi2"], table["df"])
        table.attrs["transform"] = transform
        return table

    def summary(self, alpha: float = 0.05) -> ResultsSummary:
        table = coefficient_table(self.params, self.bse, alpha, exp=True)
        if self.cov_cluster is not None and self.cov_type == "cluster":
            table.insert(3, "std err (oim)", self.bse_oim)
        if self.sample is not None and self.sample.labels:
            table.insert(0, "label", [self.sample.labels.get(n, n) for n in self.names])
        lr = self.lr_test
        info = [
            ("Model", "Cox PH, (start, stop]"),
            ("Ties", self.model.ties),
            ("No. rows", self.nobs),
            ("No. events", self.n_events),
            ("No. clusters", self.ngroups if self.ngroups is not None else "-"),
            ("Strata", len(self.model._strata)),
            ("Covariance", self.cov_type + (" (G/(G-1))" if self.cluster_correction and self.cov_type == "cluster" else "")),
            ("Log partial lik.", self.llf),
            ("LR chi2", round(lr["stat"], 3)),
            ("Prob > chi2", lr["pvalue"]),
            ("Iterations", self.iterations),
        ]
        notes = []
        if self.cov_type == "cluster":
            notes.append("Std. err. clustered (Lin-Wei sandwich of Efron score residuals summed by cluster)")
        return ResultsSummary(title="Cox proportional hazards regression", info=info, table=table, notes=notes)


def _time_transform(model: CoxPH, times: np.ndarray, transform: str) -> np.ndarray:
    if transform == "identity":
        return times.astype(float)
    if transform == "log":
        return np.log(times)
    if transform == "rank":
        return stats.rankdata(times)
    if transform == "km":
        # left-continuous Kaplan-Meier over all strata, risk sets start < t <= stop
        ev = model.event == 1
        ut, d = np.unique(model.stop[ev], return_counts=True)
        lo = np.searchsorted(ut, model.start, side="right")
        hi = np.searchsorted(ut, model.stop, side="right")
        n_risk = np.cumsum(np.bincount(lo, minlength=ut.size + 1) - np.bincount(hi, minlength=ut.size + 1))[: ut.size]
        surv = np.cumprod(1 - d / n_risk)
        left = np.concatenate([[1.0], surv[:-1]])
        return 1 - left[np.searchsorted(ut, times)]
    raise ValueError("transform must be 'km', 'rank', 'identity' or 'log'")


# --------------------------------------------------------------------- Table 3 spec


@dataclass
class CoxSample:
    data: pd.DataFrame  # the rows used, with the dummy columns
    exog_names: list[str]
    description: dict[str, Any]
    spec: CoxSpec
    labels: dict[str, str]

    def model(self) -> CoxPH:
        sp = self.spec
        return CoxPH.from_frame(
            self.data, self.exog_names, sp.start, sp.stop, sp.event,
            cluster=sp.cluster, strata=list(sp.strata) or None, ties=sp.ties,
        )

    def fit(self, **kwargs) -> CoxResults:
        options = {"cov_type": self.spec.cov_type, "cluster_correction": self.spec.cluster_correction, **kwargs}
        try:
            res = self.model().fit(**options)
        except PerfectPredictionError as exc:
            hint = levels_without_events_note(self)
            if hint:
                raise PerfectPredictionError(f"{exc}. {hint}") from exc
            raise
        res.sample = self
        return res


def levels_without_events_note(sample: CoxSample) -> str:
    """A sentence naming the dummies' levels in which no spell of the sample ends ('' if none)."""
    parts = []
    for src, levels in sample.description.get("levels_without_events", {}).items():
        base, named = sample.spec.dummies[src]
        for level, rows in levels.items():
            rows = f"{rows} row" + ("" if rows == 1 else "s")
            if level == str(base):
                parts.append(f"{src} = {level!r}, the base level ({rows}): the hazard ratios of all "
                             f"other {src} levels are infinite")
            elif level in named:
                parts.append(f"{src} = {level!r} ({named[level]}, {rows}): its hazard ratio is 0")
    if not parts:
        return ""
    return ("No spell of the sample ends in " + "; in ".join(parts)
            + ". Not identified in this sample: merge the level with another or drop the dummy from the spec")


def build_cox_sample(
    spell_years: pl.DataFrame | pd.DataFrame,
    spec: str | Path | Mapping | CoxSpec | None = None,
) -> CoxSample:
    """Rows and columns of the Table 3 model from the spell-year table."""
    sp = load_cox_spec(spec)
    df = spell_years.to_pandas() if isinstance(spell_years, pl.DataFrame) else spell_years.copy()
    need = [sp.start, sp.stop, sp.event, sp.cluster, *sp.covariates, *sp.dummies, *sp.strata]
    if sp.destinations is not None:
        need.append(sp.destination_column)
    if sp.exclude_left_censored:
        need.append("left_censored")
    if sp.first_spell_year is not None:
        need.append("year")
    missing = [c for c in dict.fromkeys(need) if c not in df.columns]
    if missing:
        raise KeyError(f"the spell-year table lacks columns {missing}")
    desc: dict[str, Any] = {"rows_in": int(len(df)), "rows_dropped": {}}
    if sp.destinations is not None:
        keep = df[sp.destination_column].isin(sp.destinations)
        if (~keep).any():
            desc["rows_dropped"]["destination not in the spec"] = int((~keep).sum())
        df = df[keep]
    if sp.exclude_left_censored:
        lc = df["left_censored"].fillna(False).astype(bool)
        if lc.any():
            desc["rows_dropped"]["left-censored spell"] = int(lc.sum())
            desc["events_dropped_left_censored"] = int(df.loc[lc, sp.event].sum())
        df = df[~lc]
    if sp.first_spell_year is not None:
        # the spell's first year: the row's calendar year less the years since the spell began
        early = (df["year"] - df[sp.start]) < int(sp.first_spell_year)
        if early.any():
            desc["rows_dropped"][f"spell began before {int(sp.first_spell_year)}"] = int(early.sum())
            desc["events_dropped_early_start"] = int(df.loc[early, sp.event].sum())
        df = df[~early]
    for c in [*sp.covariates, *sp.dummies, *sp.strata]:
        bad = df[c].isna()
        if bad.any():
            desc["rows_dropped"][f"missing {c}"] = int(bad.sum())
            desc.setdefault("events_dropped_missing", 0)
            desc["events_dropped_missing"] += int(df.loc[bad, sp.event].sum())
            df = df[~bad]
    df = df.copy()
    names = list(sp.covariates)
    dropped_cols = {}
    unknown = {}
    for src, (base, levels) in sp.dummies.items():
        extra = set(df[src].unique()) - set(levels) - {base}
        if extra:
            unknown[src] = sorted(map(str, extra))
        for level, name in levels.items():
            df[name] = (df[src] == level).astype(float)
            if df[name].sum() == 0:
                dropped_cols[name] = "dummy with no rows in its level"
            else:
                names.append(name)
    if unknown:
        raise ValueError(f"levels not in the spec's dummies: {unknown}")
    # a level in which no spell ends has a hazard ratio of 0 (a base level: the others'
    # are infinite): the likelihood has no maximum, the fit will say so
    no_event: dict[str, dict[str, int]] = {}
    for src in sp.dummies:
        by_level = df.groupby(src, observed=True)[sp.event].agg(["size", "sum"])
        for level, row in by_level.iterrows():
            if row["sum"] == 0:
                no_event.setdefault(src, {})[str(level)] = int(row["size"])
    if len(df) == 0:
        raise ValueError("no rows left for the Cox model: " + str(desc["rows_dropped"]))
    desc.update(
        {
            "rows": int(len(df)),
            "events": int(df[sp.event].sum()),
            "clusters": int(df[sp.cluster].nunique()),
            "spells": int(df.groupby([sp.cluster, *( [sp.destination_column] if sp.destination_column in df else []),
                                       *(["spell_no"] if "spell_no" in df else [])]).ngroups),
            "columns": names,
            "columns_dropped": dropped_cols,
            "levels_without_events": no_event,
        }
    )
    labels = {n: sp.labels.get(n, n) for n in names}
    return CoxSample(data=df.reset_index(drop=True), exog_names=names, description=desc, spec=sp, labels=labels)


def fit_cox_table3(
    spell_years: pl.DataFrame | pd.DataFrame,
    spec: str | Path | Mapping | CoxSpec | None = None,
    **fit_kwargs,
) -> CoxResults:
    """Fit the Table 3 model (or another spec) to the spell-year table.

    Returns `CoxResults` with the sample as ``results.sample``.
    """
    return build_cox_sample(spell_years, spec).fit(**fit_kwargs)
