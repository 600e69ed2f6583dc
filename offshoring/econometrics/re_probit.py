"""Random-effects probit (and logit) by maximum likelihood.

The model is ``P(y_it = 1 | x_it, a_i) = F(x_it'b + a_i)`` with ``a_i ~ N(0, s2u)``
and ``F`` the normal (probit) or logistic (logit) distribution function. The
random intercept is integrated out of each firm's likelihood by Gauss-Hermite
quadrature, by default the mean-variance adaptive rule that Stata's
``xtprobit, re`` uses with 12 points (``intmethod(mvaghermite)``). The nodes of
firm ``i`` are placed on the random effect's own scale, ``a = mu_i + sqrt(2)
tau_i x_k``, weighted by ``phi(a / s_u) / s_u``, where ``mu_i`` and ``tau_i`` are
the posterior mean and standard deviation of ``a_i`` computed with the
quadrature itself and iterated to their fixed point at the current
parameters. The variance enters as ``lnsig2u = ln s2u``, as in Stata.

Everything is vectorised over the observations (sorted by firm) and kept in
log space. The passes over (observations x nodes) run by contiguous blocks of
whole firms (`BLOCK_ROWS` observations at most; group sums by sparse products
with each block's firm pattern), optionally in threads, and every quantity --
log-likelihood, gradient, Hessian (Louis' identity), firm scores -- is a sum
over firms of the blocks' shares, added in block order: memory does not grow
with observations x nodes, and the numbers do not depend on the block size
(beyond rounding) or on the threads (not at all). Newton's method uses the analytic
gradient and the analytic Hessian of the quadrature approximation with the
nodes held fixed -- for the adaptive rule, ``mu_i`` and ``tau_i`` are constants
on the random effect's scale, so ``lnsig2u`` enters only through the normal
weight, as in Stata's derivatives. The nodes are re-centred on the posterior
after each step and, near the maximum, iterated to their fixed point before
the derivatives are taken, so the estimates solve ``grad L(b; nodes(b)) = 0``
and the reported log-likelihood, scores and Hessian (OIM standard errors) are
those with the nodes adapted at the estimates. This is Stata's estimate: Stata
re-adapts the nodes at every iteration until the log-likelihood changes by
less than 1e-6 (relative) and then holds them fixed, which on the wagepan data
moves nothing by more than 4e-8. The maximiser of the exact integral is a
slightly different point (12 points: within 0.003 s.e. on wagepan); see
`RandomEffectsProbitResults.quadrature_check`.

The ordinary rule (``adaptive=False``, Stata's ``ghermite``) holds its nodes
fixed on the standardised scale ``a = s_u sqrt(2) x_k``; its derivatives are
those of the Gauss-Hermite approximation itself.

Columns constant within every firm (constant, initial values, Mundlak means,
dummies) are handled at the firm level, so the cost per Newton step is about
that of a few passes over (observations x nodes).

Validated (tests/test_re_probit.py, tests/test_re_probit_stata.py) against
Stata's published ``xtprobit ..., re`` estimate for the ``wagepan`` panel of
Wooldridge's textbook (coefficient of married .168908; here .1689080) and
against an independent implementation of Stata's algorithm.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse
from scipy import special, stats

from ._linalg import dependent_columns, inverse_negative_definite
from ._summary import ResultsSummary, coefficient_table, wald_conf_int
from .errors import (
    CollinearityError,
    ConvergenceError,
    PerfectPredictionError,
    SingletonGroupsError,
)

LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
SIGMA_NAME = "lnsig2u"
COV_TYPES = {
    "oim": "oim",
    "nonrobust": "oim",
    "hessian": "oim",
    "opg": "opg",
    "cluster": "cluster",
    "robust": "cluster",
}
# groups used to choose the start of rho (a random subset in larger panels)
GRID_GROUPS = 3000
# lnsig2u below this is treated as the boundary s_u = 0 (rho = 0).
BOUNDARY_LNSIG2U = -12.0
# lnsig2u above this means rho > 1 - 1e-6: the outcome is (nearly) constant
# within firms and the variance has no finite maximum.
DIVERGENT_LNSIG2U = 14.0
# adaptive rule: the nodes have converged when no posterior mean moves by more
# than this many posterior s.d. (nor any s.d. by this relative amount)
NODE_TOL = 1e-8
# below this Newton decrement the nodes are iterated to their fixed point at
# every iteration (above it they are updated once per iteration)
ADAPT_DECREMENT = 1e-4


# --------------------------------------------------------------------------- links


class _Probit:
    name = "probit"
    # variance of the latent error, used to rescale pooled start values
    latent_var = 1.0

    @staticmethod
    def logcdf(v: np.ndarray) -> np.ndarray:
        return special.log_ndtr(v)

    @staticmethod
    def cdf(v: np.ndarray) -> np.ndarray:
        return special.ndtr(v)

    @staticmethod
    def pdf(v: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * v * v - LOG_SQRT_2PI)

    @staticmethod
    def derivs(v: np.ndarray, logcdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and second derivatives of log F(v) with respect to v."""
        lam = -0.5 * v * v
        lam -= LOG_SQRT_2PI
        lam -= logcdf
        np.exp(lam, out=lam)
        d2 = lam + v
        d2 *= lam
        np.negative(d2, out=d2)
        return lam, d2

    @staticmethod
    def deriv1(v: np.ndarray, logcdf: np.ndarray) -> np.ndarray:
        """First derivative of log F(v) (as ``derivs``, without the second); in place of v."""
        lam = np.multiply(v, v, out=v)
        lam *= -0.5
        lam -= LOG_SQRT_2PI
        lam -= logcdf
        return np.exp(lam, out=lam)


class _Logit:
    name = "logit"
    latent_var = np.pi**2 / 3.0

    @staticmethod
    def logcdf(v: np.ndarray) -> np.ndarray:
        return special.log_expit(v)

    @staticmethod
    def cdf(v: np.ndarray) -> np.ndarray:
        return special.expit(v)

    @staticmethod
    def pdf(v: np.ndarray) -> np.ndarray:
        f = special.expit(v)
        return f * (1.0 - f)

    @staticmethod
    def derivs(v: np.ndarray, logcdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d1 = special.expit(-v)
        d2 = d1 - 1.0
        d2 *= d1
        return d1, d2

    @staticmethod
    def deriv1(v: np.ndarray, logcdf: np.ndarray) -> np.ndarray:
        np.negative(v, out=v)
        return special.expit(v, out=v)


LINKS = {"probit": _Probit, "logit": _Logit}

# The likelihood passes work through contiguous blocks of whole groups (rows
# are sorted by group) of at most this many observations (a block holds at
# least one group): every (observations x nodes) array of a pass exists for one
# block at a time, a few MB at 12 nodes, so the memory of a pass does not grow
# with the sample and its arrays stay in the processor's cache. Only the
# (groups x nodes) posterior weights and nodes and the (groups x parameters)
# scores are kept whole. ``RandomEffectsProbit.block_rows`` overrides it.
BLOCK_ROWS = 16384
# worker threads of the block passes (``RandomEffectsProbit.threads``
# overrides it): two, or one on a single-CPU machine. Block results are
# combined in block order, so the numbers do not depend on the number of
# threads or on their timing (bit for bit). On the shared 2-core machine two
# threads took a fit and its quadrature check at 173,380 firms from 24.3 to
# 13.4 s at load 1.3-1.8 (paired ratios 0.53-0.64, four alternating rounds; the
# same CPU seconds), and from 24.7 to 22.4 s with the other core busy (load
# 2.5-2.9: ratios 0.86-0.91).
THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
# groups per chunk of the (groups x nodes) arithmetic outside the passes
GROUP_CHUNK = 65536
# `_score(..., keep_d1=True)` keeps the blocks' (observations x nodes) d log F
# / d eta for `_moments_after_step` while they take at most this many bytes;
# beyond, `_moments_after_step` computes them again block by block (the same
# numbers, one more pass over the data instead of the memory).
KEEP_D1_BYTES = 256 * 2**20


def _ordered_sum(parts):
    """Sum of per-block results in block order (deterministic)."""
    total = None
    for x in parts:
        total = x if total is None else total + x
    return total


# ------------------------------------------------------------------ pooled model


def pooled_binary_fit(
    y: np.ndarray,
    X: np.ndarray,
    link: str = "probit",
    maxiter: int = 60,
    tol: float = 1e-10,
    gram=None,
    matvec=None,
    rmatvec=None,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Pooled probit/logit by Newton's method: (params, llf, Hessian).

    Used for start values and for the likelihood-ratio test of rho = 0. Raises
    ``PerfectPredictionError`` when the iterations run away (separation).
    ``gram(w)`` may supply ``X' diag(w) X`` faster than the dense product, and
    ``matvec(b)`` / ``rmatvec(w)`` the products ``X b`` and ``X' w``; then ``X``
    is only asked for its number of columns (an int will do).
    """
    F = LINKS[link]
    q = 2.0 * y - 1.0
    k = X if isinstance(X, (int, np.integer)) else X.shape[1]
    if gram is None:
        def gram(w):
            return (X * w[:, None]).T @ X
    if matvec is None:
        def matvec(b):
            return X @ b
    if rmatvec is None:
        def rmatvec(w):
            return X.T @ w
    beta = np.zeros(k)
    ll_old = -np.inf
    for _ in range(maxiter):
        v = q * matvec(beta)
        lp = F.logcdf(v)
        ll = float(lp.sum())
        d1, d2 = F.derivs(v, lp)
        g = rmatvec(q * d1)
        H = gram(d2)
        step = np.linalg.solve(-H, g)
        dec = float(g @ step)
        if dec < tol and abs(ll - ll_old) < 1e-8 * (1 + abs(ll)):
            return beta, ll, H
        t = 1.0
        while True:
            trial = beta + t * step
            ll_t = float(F.logcdf(q * matvec(trial)).sum())
            if ll_t >= ll - 1e-12 * abs(ll) or t < 1e-6:
                break
            t *= 0.5
        beta, ll_old = trial, ll
        if np.max(np.abs(matvec(beta))) > 35:
            break
    raise PerfectPredictionError(
        f"the pooled {link} did not converge (linear index beyond +/-35 or {maxiter} "
        "iterations): a combination of the regressors predicts the outcome perfectly "
        "for some observations; drop or merge the offending regressors"
    )


# ------------------------------------------------------------------------ model


@dataclass
class _State:
    """One evaluation of the approximate log-likelihood at fixed nodes."""

    llf: float
    post: np.ndarray  # (G, K) posterior weights of the nodes
    a: np.ndarray  # (G, K) nodes on the scale of the random effect
    s2u: float = 1.0  # variance of the random effect at these parameters
    grad: np.ndarray | None = None
    hess: np.ndarray | None = None
    group_scores: np.ndarray | None = None  # (G, P+1)
    params: np.ndarray | None = None  # where it was evaluated
    # `_score(..., keep_d1=True)`: d log F / d eta of each block's (observations
    # x nodes) by block, if they fit in KEEP_D1_BYTES (else None: recomputed
    # when needed)
    d1_blocks: dict | None = None


@dataclass
class _ColumnBlocks:
    """Index tuples of the invariant (i) and varying (v) columns' blocks of a matrix."""

    ii: tuple
    vv: tuple
    iv: tuple
    vi: tuple


@dataclass
class _Pass:
    """What the blocks of one likelihood pass share."""

    params: np.ndarray
    lnsig2u: float
    sigma: float
    sx: np.ndarray  # sqrt(2) x_k
    logw_k: np.ndarray
    xbg: np.ndarray  # (G,) x'b of the group-invariant columns
    bvar: np.ndarray  # coefficients of the time-varying columns
    effect_scale: bool


class RandomEffectsProbit:
    """Random-effects binary-choice model with a normal random intercept.

    Parameters
    ----------
    endog : array-like of 0/1
    exog : pandas DataFrame (named columns; include the constant yourself) or 2-D array
    groups : array-like, one group label (firm) per observation
    link : ``"probit"`` (default) or ``"logit"``
    singletons : what to do with groups of one observation: ``"keep"`` (default,
        as Stata: they inform the coefficients, not the variance), ``"drop"``, or
        ``"raise"``. If every group has a single observation the variance is not
        identified and ``SingletonGroupsError`` is raised whatever the setting.

    exog_names : column names when ``exog`` is an array (default x1, x2, ...)

    ``fit()`` returns a `RandomEffectsProbitResults`. The model checks its data
    when built and raises `CollinearityError`, `PerfectPredictionError` or
    `SingletonGroupsError` instead of fitting a model that has no answer.

    Memory: a float64 array ``exog`` (C or Fortran order) whose rows are
    already sorted by group is read in place, not copied. The model keeps the
    design once, split into the columns constant within every group (one row
    per group) and the time-varying ones (one row per observation, C order for
    the likelihood's products); ``X`` rebuilds the full matrix on request.
    The likelihood is evaluated by blocks of whole groups of at most
    ``block_rows`` observations (default `BLOCK_ROWS`), in ``threads`` threads
    (default `THREADS`); set either on the model to override it. The block size
    changes the numbers by rounding only, the threads not at all.
    """

    block_rows: int | None = None
    threads: int | None = None

    def __init__(
        self,
        endog,
        exog,
        groups,
        link: str = "probit",
        singletons: str = "keep",
        exog_names: Sequence[str] | None = None,
    ):
        if link not in LINKS:
            raise ValueError(f"link must be one of {sorted(LINKS)}, got {link!r}")
        if singletons not in ("keep", "drop", "raise"):
            raise ValueError("singletons must be 'keep', 'drop' or 'raise'")
        self.link = link
        self._F = LINKS[link]

        if isinstance(exog, pd.DataFrame):
            names = [str(c) for c in exog.columns]
            X = exog.to_numpy(dtype=float)
        else:
            X = np.asarray(exog, dtype=float)
            if X.ndim == 1:
                X = X[:, None]
            names = [f"x{j + 1}" for j in range(X.shape[1])]
        if exog_names is not None:
            names = [str(c) for c in exog_names]
            if len(names) != X.shape[1]:
                raise ValueError(f"{len(names)} exog_names for {X.shape[1]} exog columns")
        if len(set(names)) != len(names):
            raise ValueError("exog column names must be unique")
        if SIGMA_NAME in names:
            raise ValueError(f"{SIGMA_NAME!r} is reserved for the variance parameter")
        y = np.asarray(endog, dtype=float).ravel()
        g = np.asarray(groups).ravel()
        n = X.shape[0]
        if y.shape[0] != n or g.shape[0] != n:
            raise ValueError(
                f"endog ({y.shape[0]}), exog ({n}) and groups ({g.shape[0]}) differ in length"
            )
        if n == 0:
            raise ValueError("no observations")
        # column by column: no (observations x columns) temporary
        finite = [bool(np.isfinite(X[:, j]).all()) for j in range(X.shape[1])]
        if not all(finite):
            bad = [nm for nm, ok in zip(names, finite) if not ok]
            raise ValueError(f"exog has missing or infinite values in {bad}")
        if not np.all(np.isfinite(y)) or not np.all((y == 0) | (y == 1)):
            raise ValueError("endog must be 0/1 without missing values")
        if pd.isna(pd.Series(g)).any():
            raise ValueError("groups has missing values")

        codes, uniques = pd.factorize(g, sort=False)
        if np.all(codes[1:] >= codes[:-1]):
            # rows already sorted by group (codes follow first appearance)
            order = np.arange(n)
        else:
            order = np.argsort(codes, kind="stable")
            codes = codes[order]
        sizes = np.bincount(codes, minlength=len(uniques))
        if singletons != "keep" and np.any(sizes == 1):
            if singletons == "raise":
                raise SingletonGroupsError(
                    f"{int(np.sum(sizes == 1))} groups have a single observation"
                )
            keep = sizes[codes] > 1
            order, codes = order[keep], codes[keep]
            codes, uniques2 = pd.factorize(codes, sort=False)
            uniques = uniques[uniques2]
            sizes = np.bincount(codes, minlength=len(uniques))
        if sizes.size and sizes.max() < 2:
            raise SingletonGroupsError(
                "every group has a single observation: the random-effect variance is "
                "not identified (use a pooled model, or check the group labels)"
            )

        self.exog_names = names
        self.param_names = [*names, SIGMA_NAME]
        self.endog_name = getattr(endog, "name", None) or "y"
        self._order = order  # position in the caller's data of each sorted row
        self._n_input = n
        in_place = order.shape[0] == n and np.array_equal(order, np.arange(n))
        self.y = y if in_place else y[order]
        Xs = X if in_place else X[order]  # sorted rows: a temporary copy only if not sorted
        del X
        self.gidx = codes.astype(np.intp)
        self.group_labels = np.asarray(uniques)
        self.sizes = sizes
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self.nobs = int(self.y.shape[0])
        self.ngroups = int(sizes.shape[0])
        self.k_exog = Xs.shape[1]
        self.n_singletons = int(np.sum(sizes == 1))
        self.q = 2.0 * self.y - 1.0

        self._pooled_cache = None
        self._check_design(Xs)
        self._prepare_structure(Xs)

    # ------------------------------------------------------------------ checks

    def _check_design(self, X: np.ndarray) -> None:
        y, names = self.y, self.exog_names
        if y.min() == y.max():
            raise PerfectPredictionError(
                f"the outcome is always {int(y[0])}: nothing to estimate"
            )
        lo, hi = X.min(axis=0), X.max(axis=0)
        binary = [j for j in range(X.shape[1])
                  if lo[j] < hi[j] and np.all((X[:, j] == lo[j]) | (X[:, j] == hi[j]))]
        if binary:
            n_hi = np.empty(len(binary))
            y_hi = np.empty(len(binary))
            for k, j in enumerate(binary):
                at_hi = X[:, j] == hi[j]
                n_hi[k], y_hi[k] = at_hi.sum(), y[at_hi].sum()
            n_lo, y_lo = y.size - n_hi, y.sum() - y_hi
            for k, j in enumerate(binary):
                for n_l, y_l, level, label in (
                    (n_hi[k], y_hi[k], hi[j], "!= 0" if lo[j] == 0 else f"== {hi[j]:g}"),
                    (n_lo[k], y_lo[k], lo[j], "== 0" if lo[j] == 0 else f"== {lo[j]:g}"),
                ):
                    if y_l == 0 or y_l == n_l:
                        what = "success" if y_l == n_l else "failure"
                        raise PerfectPredictionError(
                            f"{names[j]} {label} predicts {what} perfectly ({int(n_l)} "
                            "observations); drop the regressor or those observations"
                        )
        dep = dependent_columns(X, names)
        if dep:
            raise CollinearityError(
                f"exog columns {dep} are linear combinations of the columns before them "
                "(or all zero); drop them"
            )
        within = np.add.reduceat(self.y, self.starts)
        if np.all((within == 0) | (within == self.sizes)):
            raise PerfectPredictionError(
                "the outcome never varies within a group: the random-effect variance "
                "diverges (rho -> 1)"
            )

    def _prepare_structure(self, X: np.ndarray) -> None:
        """Split the columns into group-invariant and time-varying ones.

        Most columns of the dynamic model (constant, initial values, Mundlak
        means, dummies) are constant within a firm. Their products with
        observation-level weights reduce to group-level products, so the
        expensive observation-by-node work is confined to the few time-varying
        columns. ``X``: the design with rows sorted by group; the model keeps
        only the two parts (``_Xg``: one row per group, ``_Xv``: the varying
        columns, C order), so the design is held once.
        """
        starts = self.starts
        invariant = np.empty(X.shape[1], dtype=bool)
        for j in range(X.shape[1]):  # column by column: no (groups x columns) temporaries
            col = X[:, j]
            invariant[j] = np.array_equal(np.maximum.reduceat(col, starts), np.minimum.reduceat(col, starts))
        self._inv = np.flatnonzero(invariant)
        self._var = np.flatnonzero(~invariant)
        self._Xg = np.ascontiguousarray(X[starts][:, self._inv])  # (G, I)
        self._Xv = np.ascontiguousarray(X[:, self._var])  # (N, V)
        self._ix = _ColumnBlocks(
            ii=np.ix_(self._inv, self._inv), vv=np.ix_(self._var, self._var),
            iv=np.ix_(self._inv, self._var), vi=np.ix_(self._var, self._inv),
        )
        self._block_cache = None

    @property
    def X(self) -> np.ndarray:
        """The design (rows sorted by group), rebuilt from its two parts: a new array."""
        X = np.empty((self.nobs, self.k_exog), order="F")
        for k, j in enumerate(self._inv):
            X[:, j] = self._Xg[self.gidx, k]
        for k, j in enumerate(self._var):
            X[:, j] = self._Xv[:, k]
        return X

    def _xb(self, beta: np.ndarray) -> np.ndarray:
        xb = (self._Xg @ beta[self._inv])[self.gidx]
        if self._var.size:
            xb += self._Xv @ beta[self._var]
        return xb

    def _xt_w(self, w_obs: np.ndarray) -> np.ndarray:
        """X' w."""
        return self._xt_dot(w_obs, np.add.reduceat(w_obs, self.starts))

    def _xt_dot(self, w_obs: np.ndarray, w_grp: np.ndarray) -> np.ndarray:
        """X' w for observation weights w whose group sums are ``w_grp``."""
        out = np.empty(self.k_exog)
        out[self._inv] = self._Xg.T @ w_grp
        out[self._var] = self._Xv.T @ w_obs
        return out

    def _gram(self, w: np.ndarray, w_grp: np.ndarray | None = None) -> np.ndarray:
        """X' diag(w) X using the invariant/varying split (``w_grp``: group sums of w), by blocks."""

        def block(g0, g1, r0, r1):
            S = self._summer(g0, g1, r0, r1)
            wg = S @ w[r0:r1] if w_grp is None else w_grp[g0:g1]
            return self._gram_block(g0, g1, r0, r1, S, w[r0:r1], wg)

        return _ordered_sum(self._map_blocks(block))

    def _gram_block(self, g0, g1, r0, r1, S, w: np.ndarray, w_grp: np.ndarray) -> np.ndarray:
        """One block's share of X' diag(w) X (``w``: the block's rows, ``w_grp`` its groups' sums)."""
        var, ix = self._var, self._ix
        Xg = self._Xg[g0:g1]
        H = np.empty((self.k_exog, self.k_exog))
        H[ix.ii] = (Xg * w_grp[:, None]).T @ Xg
        if var.size:
            Xv = self._Xv[r0:r1]
            Wv = Xv * w[:, None]
            H[ix.vv] = Wv.T @ Xv
            cross = Xg.T @ (S @ Wv)
            H[ix.iv] = cross
            H[ix.vi] = cross.T
        return H

    # ---------------------------------------------------------------- blocks

    def _blocks(self) -> list[tuple[int, int, int, int]]:
        """Contiguous blocks of whole groups: (first group, end group, first row, end row).

        Each holds at most ``block_rows`` (default `BLOCK_ROWS`) rows, and at
        least one group whatever its size.
        """
        budget = max(1, int(self.block_rows or BLOCK_ROWS))
        cached = getattr(self, "_block_cache", None)
        if cached is not None and cached[0] == budget:
            return cached[1]
        ends = self.starts + self.sizes
        blocks = []
        g0, G = 0, self.ngroups
        while g0 < G:
            r0 = int(self.starts[g0])
            g1 = max(int(np.searchsorted(ends, r0 + budget, side="right")), g0 + 1)
            blocks.append((g0, g1, r0, int(ends[g1 - 1])))
            g0 = g1
        longest = max(r1 - r0 for _, _, r0, r1 in blocks)
        itype = np.int32 if self.nobs < 2**31 else np.int64
        # the sparse pattern summing a block's rows by group: local row numbers,
        # group pointers (shifted by the block's first row), unit weights
        self._block_rows_idx = np.arange(longest, dtype=itype)
        self._block_ptr = np.append(self.starts, self.nobs).astype(itype)
        self._block_ones = np.ones(longest)
        self._block_cache = (budget, blocks)
        return blocks

    def _summer(self, g0, g1, r0, r1):
        """(groups x rows) sparse matrix of a block: ``S @ M`` sums the rows of
        each group of M (the block's rows)."""
        n = r1 - r0
        ptr = self._block_ptr[g0:g1 + 1] - self._block_ptr.dtype.type(r0)
        return scipy.sparse.csr_matrix(
            (self._block_ones[:n], self._block_rows_idx[:n], ptr), shape=(g1 - g0, n), copy=False
        )

    def _map_blocks(self, fn) -> list:
        """[fn(g0, g1, r0, r1) for each block], in block order; in ``threads`` threads.

        Numpy's and scipy's array operations release the GIL, so the blocks of
        a pass run in parallel: the calling thread and ``threads - 1`` workers
        take the next block in turn. Each block writes only its own groups'
        rows of the whole (groups x ...) outputs, and its other results are
        returned in block order for the caller to combine in that order, so
        nothing depends on which thread took which block. (The calling thread
        works too: one worker fewer, one allocator arena and BLAS buffer fewer.)
        """
        blocks = self._blocks()
        n = min(int(self.threads or THREADS), len(blocks))
        if n <= 1:
            return [fn(*b) for b in blocks]
        out = [None] * len(blocks)
        turn = itertools.count()  # next() on it is atomic under the GIL
        err = np.geterr()  # the caller's floating-point error handling, for the workers too

        def work():
            with np.errstate(**err):
                for i in iter(turn.__next__, None):
                    if i >= len(blocks):
                        return
                    out[i] = fn(*blocks[i])

        with ThreadPoolExecutor(max_workers=n - 1) as pool:
            workers = [pool.submit(work) for _ in range(n - 1)]
            work()
            for w in workers:
                w.result()  # a worker's exception is raised here
        return out

    @staticmethod
    def _node_group_sums(S, d: np.ndarray, M: np.ndarray) -> np.ndarray:
        """(K, groups, V) sums over each group's rows of ``d[:, k] * M``, for a block.

        One sparse (groups x rows) product per node with the block's pattern
        (``S``, its `_summer`), ``d`` and ``M`` holding the block's rows.
        """
        K = d.shape[1]
        out = np.empty((K, S.shape[0], M.shape[1]))
        dT = np.ascontiguousarray(d.T)
        Z = scipy.sparse.csr_matrix((dT[0], S.indices, S.indptr), shape=S.shape, copy=False)
        for k in range(K):
            Z.data = dT[k]  # the same pattern, node k's weights
            out[k] = Z @ M
        return out

    # -------------------------------------------------------------- likelihood

    @staticmethod
    def _rule(K: int) -> tuple[np.ndarray, np.ndarray]:
        x, w = special.roots_hermite(K)
        # log of the weight of a = m + sqrt(2) s x_k, without the terms of the
        # firm and the parameters (log s, log phi(a / sigma_u) / sigma_u)
        logw = np.log(np.sqrt(2.0)) + np.log(w) + x * x
        return np.sqrt(2.0) * x, logw

    def _pass(self, params: np.ndarray, K: int, effect_scale: bool) -> _Pass:
        """What every block of a pass at ``params`` with K nodes shares."""
        P = self.k_exog
        beta, lnsig2u = params[:P], float(params[P])
        sx, logw_k = self._rule(K)
        return _Pass(
            params=params,
            lnsig2u=lnsig2u,
            sigma=np.exp(0.5 * lnsig2u),
            sx=sx,
            logw_k=logw_k,
            xbg=self._Xg @ beta[self._inv],
            bvar=beta[self._var],
            effect_scale=effect_scale,
        )

    def _block_nodes(self, ps: _Pass, m, s, g0, g1):
        """Nodes of a block's groups: (a, u, log weight), each (groups x K)."""
        nodes = m[g0:g1, None] + s[g0:g1, None] * ps.sx[None, :]
        if ps.effect_scale:
            a = nodes
            u = a / ps.sigma  # standardised value of the node
            logw = (np.log(s[g0:g1]) - 0.5 * ps.lnsig2u - LOG_SQRT_2PI)[:, None] + ps.logw_k[None, :] - 0.5 * u * u
        else:
            u = nodes
            a = ps.sigma * u
            logw = (np.log(s[g0:g1]) - LOG_SQRT_2PI)[:, None] + ps.logw_k[None, :] - 0.5 * u * u
        return a, u, logw

    def _block_logcdf(self, ps: _Pass, a: np.ndarray, g0, g1, r0, r1):
        """(v, log F(v)) for a block's rows: v = q * eta, eta = x'b + a (rows x K)."""
        sizes = self.sizes[g0:g1]
        xb = np.repeat(ps.xbg[g0:g1], sizes)
        if self._var.size:
            xb += self._Xv[r0:r1] @ ps.bvar
        v = np.repeat(a, sizes, axis=0)
        v += xb[:, None]
        v *= self.q[r0:r1, None]  # v = q * eta
        return v, self._F.logcdf(v)

    def _block_d1(self, v: np.ndarray, lp: np.ndarray, r0, r1) -> np.ndarray:
        """d log F / d eta of a block (written over v)."""
        d1 = self._F.deriv1(v, lp)
        d1 *= self.q[r0:r1, None]
        return d1

    @staticmethod
    def _block_posterior(logf: np.ndarray) -> tuple[np.ndarray, float]:
        """Posterior weights of the nodes (in place of the log joint) and the
        block's log-likelihood."""
        mx = logf.max(axis=1, keepdims=True)
        post = np.subtract(logf, mx, out=logf)
        np.exp(post, out=post)
        tot = post.sum(axis=1, keepdims=True)
        post /= tot
        return post, float(mx.sum() + np.log(tot).sum())

    def _evaluate(
        self,
        params: np.ndarray,
        m: np.ndarray,
        s: np.ndarray,
        K: int,
        order: int,
        effect_scale: bool = True,
    ) -> _State:
        """Log-likelihood (order 0), gradient (1) and Hessian (2) at fixed nodes.

        ``effect_scale=True`` (adaptive rule): the nodes of group i are fixed on
        the scale of the random effect, a_ik = m_i + sqrt(2) s_i x_k, with weight
        sqrt(2) s_i w_k exp(x_k^2) phi(a_ik / sigma_u) / sigma_u; lnsig2u then
        enters only through that weight, as in Stata's mvaghermite (whose
        derivatives hold mu_i and sigma_i constant).
        ``effect_scale=False`` (ordinary rule, m = 0, s = 1): the nodes are fixed
        on the standardised scale, a_ik = sigma_u (m_i + sqrt(2) s_i x_k), and the
        derivatives are those of the Gauss-Hermite approximation itself.

        eta_itk = x_it'b + a_ik. With p_ik the posterior weight of node k and
        S_ik the node's score, the gradient is sum_ik p_ik S_ik and the Hessian
        sum_i [E_p(d2 terms) + Var_p(S_ik)] (Louis' identity at fixed nodes).
        Every term is a sum over groups, so the pass runs by blocks of groups
        (`_blocks`); each block returns its shares of the log-likelihood,
        gradient and Hessian, summed in block order, and writes its groups'
        posterior weights, nodes and scores.
        """
        F, P, G = self._F, self.k_exog, self.ngroups
        inv, var, ix = self._inv, self._var, self._ix
        ps = self._pass(params, K, effect_scale)
        post_all = np.empty((G, K))
        a_all = np.empty((G, K))
        gs = np.empty((G, P + 1)) if order >= 1 else None

        def block(g0, g1, r0, r1):
            a, u, v, lp, S, post, llf = self._block_likelihood(ps, m, s, g0, g1, r0, r1, a_all, post_all)
            if order == 0 or not np.isfinite(llf):
                return llf, None, None

            sizes = self.sizes[g0:g1]
            q = self.q[r0:r1, None]
            if order == 1:
                d1 = self._block_d1(v, lp, r0, r1)
            else:
                d1, d2 = F.derivs(v, lp)
                d1 *= q  # now with respect to eta (d2 is unchanged: q^2 = 1)
            del lp, v
            # posterior means of d l / d eta and of the second derivative
            p_obs = np.repeat(post, sizes, axis=0)
            a_obs = np.einsum("nk,nk->n", p_obs, d1)
            if order == 2:
                A = np.einsum("nk,nk->n", p_obs, d2)
            del p_obs
            Xg = self._Xg[g0:g1]
            Xv = self._Xv[r0:r1]
            D1 = S @ d1  # (groups, K)
            pD1 = post * D1
            a_g = pD1.sum(axis=1)
            # score of node k for lnsig2u
            if effect_scale:
                c = 0.5 * (u * u - 1.0)  # d log weight / d lnsig2u
            else:
                deta = 0.5 * a  # d eta / d lnsig2u
                c = deta * D1
            grad = np.empty(P + 1)
            grad[inv] = Xg.T @ a_g
            grad[var] = Xv.T @ a_obs
            gs_sig = np.einsum("gk,gk->g", post, c)
            grad[P] = gs_sig.sum()
            gsb = gs[g0:g1]
            gsb[:, inv] = Xg * a_g[:, None]
            gsb[:, P] = gs_sig
            if order == 1:
                if var.size:
                    gsb[:, var] = S @ (Xv * a_obs[:, None])
                return llf, grad, None

            # expected second-derivative part
            D2 = S @ d2
            H = np.zeros((P + 1, P + 1))
            H[:P, :P] = self._gram_block(g0, g1, r0, r1, S, A, np.einsum("gk,gk->g", post, D2))
            if effect_scale:
                # eta does not depend on lnsig2u; d2 log weight / d lnsig2u^2 = -u^2 / 2
                H[P, P] = -0.5 * np.einsum("gk,gk->", post, u * u)
            else:
                pdeta = post * deta
                H[inv, P] = Xg.T @ np.einsum("gk,gk->g", pdeta, D2)
                if var.size:
                    H[var, P] = Xv.T @ np.einsum("nk,nk->n", np.repeat(pdeta, sizes, axis=0), d2)
                H[P, P] = np.einsum("gk,gk->", pdeta * deta, D2) + 0.5 * gs_sig.sum()
                H[P, :P] = H[:P, P]
            del d2

            # variance of the node scores S_ik = (x D1 | Sv | c) under the posterior
            pc = post * c
            H[ix.ii] += (Xg * (pD1 * D1).sum(axis=1)[:, None]).T @ Xg
            sig_inv = Xg.T @ np.einsum("gk,gk->g", pc, D1)
            H[inv, P] += sig_inv
            H[P, inv] += sig_inv
            H[P, P] += np.einsum("gk,gk->", pc, c)
            if var.size:
                Sv = self._node_group_sums(S, d1, Xv)  # (K, groups, V)
                gsb[:, var] = np.einsum("gk,kgv->gv", post, Sv)
                cross = Xg.T @ np.einsum("gk,kgv->gv", pD1, Sv)
                H[ix.iv] += cross
                H[ix.vi] += cross.T
                sig_var = np.einsum("gk,kgv->v", pc, Sv)
                H[var, P] += sig_var
                H[P, var] += sig_var
                Sv *= np.sqrt(post.T)[:, :, None]
                Sw = Sv.reshape(-1, var.size)
                H[ix.vv] += Sw.T @ Sw
            H -= gsb.T @ gsb
            return llf, grad, H

        parts = self._map_blocks(block)
        llf = _ordered_sum(p[0] for p in parts)
        state = _State(llf=llf, post=post_all, a=a_all, s2u=ps.sigma**2, params=params)
        if order == 0 or not np.isfinite(llf):
            return state
        state.grad = _ordered_sum(p[1] for p in parts)
        state.group_scores = gs
        if order == 2:
            H = _ordered_sum(p[2] for p in parts)
            state.hess = 0.5 * (H + H.T)
        return state

    def _block_likelihood(self, ps, m, s, g0, g1, r0, r1, a_all, post_all):
        """A block's nodes ``a`` (written into ``a_all``), standardised nodes ``u``, eta
        times q ``v``, log F ``lp``, the block's group summer ``S``, posterior weights
        (written into ``post_all``) and log-likelihood: what every pass starts from."""
        a, u, logw = self._block_nodes(ps, m, s, g0, g1)
        a_all[g0:g1] = a
        v, lp = self._block_logcdf(ps, a, g0, g1, r0, r1)
        S = self._summer(g0, g1, r0, r1)
        logf = S @ lp
        logf += logw
        post, llf = self._block_posterior(logf)
        post_all[g0:g1] = post
        return a, u, v, lp, S, post, llf

    def _score(
        self,
        params: np.ndarray,
        m: np.ndarray,
        s: np.ndarray,
        K: int,
        effect_scale: bool = True,
        keep_d1: bool = False,
    ) -> _State:
        """Log-likelihood and gradient at fixed nodes, and nothing else.

        The same quantities as ``_evaluate(..., order=1)`` (equal to rounding)
        without the firm-level scores and the second derivatives: what a
        quasi-Newton refit from nearby estimates needs (`quadrature_check`).
        The gradient's group sums come from the observation-level posterior
        means (``a_g = sum_t a_obs``), so no (groups x nodes) sum of the
        derivatives is formed on the effect scale. ``keep_d1``: keep the blocks'
        d log F / d eta for `_moments_after_step` if they fit in `KEEP_D1_BYTES`.
        """
        P, G = self.k_exog, self.ngroups
        inv, var = self._inv, self._var
        ps = self._pass(params, K, effect_scale)
        post_all = np.empty((G, K))
        a_all = np.empty((G, K))
        keep = keep_d1 and self.nobs * K * 8 <= KEEP_D1_BYTES

        def block(g0, g1, r0, r1):
            a, u, v, lp, S, post, llf = self._block_likelihood(ps, m, s, g0, g1, r0, r1, a_all, post_all)
            if not np.isfinite(llf):
                return llf, None, None
            d1 = self._block_d1(v, lp, r0, r1)
            del lp, v
            grad = np.empty(P + 1)
            if effect_scale:
                grad[P] = np.einsum("gk,gk->", post, 0.5 * (u * u - 1.0))
            else:
                grad[P] = np.einsum("gk,gk->", post, 0.5 * a * (S @ d1))
            a_obs = np.einsum("nk,nk->n", np.repeat(post, self.sizes[g0:g1], axis=0), d1)
            grad[inv] = self._Xg[g0:g1].T @ (S @ a_obs)
            grad[var] = self._Xv[r0:r1].T @ a_obs
            return llf, grad, ((g0, g1, r0, r1), d1) if keep else None

        parts = self._map_blocks(block)
        llf = _ordered_sum(p[0] for p in parts)
        state = _State(llf=llf, post=post_all, a=a_all, s2u=ps.sigma**2, params=params)
        if not np.isfinite(llf):
            return state
        state.grad = _ordered_sum(p[1] for p in parts)
        if keep:
            state.d1_blocks = dict(p[2] for p in parts)
        return state

    def _moments_after_step(self, state: _State, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior moments of the random effect at ``params + step``, to first order.

        ``state``: a `_score` evaluation at ``params`` on effect-scale nodes.
        At fixed nodes the posterior weights move with the node scores
        h_ik = sum_t d1_itk x_it'step_b + c_ik step_lnsig2u, so the posterior
        mean moves by Cov_p(a, h) and the variance by Cov_p((a - m)^2, h). Used
        to move the nodes with the estimates in the warm refits of
        `quadrature_check`. The d1_itk are the state's (``keep_d1``) or, when it
        did not keep them, computed again block by block (the same numbers).
        """
        P = self.k_exog
        post, a, s2u = state.post, state.a, state.s2u
        m_new, var_new = np.empty(post.shape[0]), np.empty(post.shape[0])
        xs_g = self._Xg @ step[:P][self._inv]
        s_var = step[:P][self._var]
        kept = state.d1_blocks or {}
        ps = self._pass(state.params, a.shape[1], True)

        def block(g0, g1, r0, r1):
            d1 = kept.get((g0, g1, r0, r1))
            if d1 is None:
                v, lp = self._block_logcdf(ps, a[g0:g1], g0, g1, r0, r1)
                d1 = self._block_d1(v, lp, r0, r1)
                del v, lp
            xs = np.repeat(xs_g[g0:g1], self.sizes[g0:g1])
            if self._var.size:
                xs += self._Xv[r0:r1] @ s_var
            d1 = d1 * xs[:, None]
            h = self._summer(g0, g1, r0, r1) @ d1
            # the block's groups: no (groups x nodes) temporaries of the whole sample
            pb, ab = post[g0:g1], a[g0:g1]
            u2 = ab * ab / s2u
            h += (0.5 * step[P]) * (u2 - 1.0)
            h -= np.einsum("gk,gk->g", pb, h)[:, None]
            m = np.einsum("gk,gk->g", pb, ab)
            dev2 = (ab - m[:, None]) ** 2
            var = np.einsum("gk,gk->g", pb, dev2)
            m_new[g0:g1] = m + np.einsum("gk,gk->g", pb * ab, h)
            var_new[g0:g1] = var + np.einsum("gk,gk->g", pb * dev2, h)

        self._map_blocks(block)
        return m_new, np.sqrt(np.maximum(var_new, 1e-12 * s2u))

    @staticmethod
    def _moments(state: _State) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the random effect (its own scale).

        Computed with the quadrature itself, as Stata's mu_i and sigma_i; by
        chunks of `GROUP_CHUNK` groups (no (groups x nodes) temporaries).
        """
        post, a = state.post, state.a
        G = post.shape[0]
        m, var = np.empty(G), np.empty(G)
        for i in range(0, G, GROUP_CHUNK):
            c = slice(i, i + GROUP_CHUNK)
            m[c] = np.einsum("gk,gk->g", post[c], a[c])
            var[c] = np.einsum("gk,gk->g", post[c], (a[c] - m[c, None]) ** 2)
        return m, np.sqrt(np.maximum(var, 1e-12 * state.s2u))

    @staticmethod
    def _node_move(m, s, m_new, s_new) -> float:
        """Largest move of the nodes, in posterior standard deviations."""
        return float(np.max(np.abs(m_new - m) / s + np.abs(np.log(s_new / s))))

    def _prior_nodes(self, params) -> tuple[np.ndarray, np.ndarray]:
        """Nodes of the random effect's prior N(0, s2u) (effect scale)."""
        G = self.ngroups
        return np.zeros(G), np.full(G, np.exp(0.5 * params[self.k_exog]))

    def _adapt(self, params, K, m, s, tol=NODE_TOL, maxiter=100, state=None):
        """Iterate the posterior moments at ``params`` to their fixed point.

        As Stata at each iteration of the maximisation: mu_i, sigma_i are
        recomputed with the quadrature at the current nodes until they stop
        moving. ``state``: an evaluation at ``params`` with nodes (m, s), if at
        hand. Returns the nodes (m, s); the last update moved them by less than
        ``tol`` and the iteration contracts fast, so they are at the fixed point
        to far better than ``tol``.
        """
        st = self._evaluate(params, m, s, K, 0) if state is None else state
        for _ in range(maxiter):
            if not np.isfinite(st.llf):
                break
            m2, s2 = self._moments(st)
            move = self._node_move(m, s, m2, s2)
            m, s = m2, s2
            if move < tol:
                break
            st = self._evaluate(params, m, s, K, 0)
        return m, s

    def _nodes(self, params, K, adaptive, refine=2):
        """Nodes for ``params``: the prior's refined ``refine`` times (adaptive) or the
        standardised Gauss-Hermite nodes (ordinary); see `_evaluate`."""
        if not adaptive:
            return np.zeros(self.ngroups), np.ones(self.ngroups)
        m, s = self._prior_nodes(params)
        for _ in range(refine):
            m, s = self._moments(self._evaluate(params, m, s, K, 0))
        return m, s

    def loglike(self, params, quad_points: int = 12, adaptive: bool = True) -> float:
        """Log-likelihood at ``params`` (coefficients then lnsig2u).

        With ``adaptive=True`` the nodes are re-centred on each firm's posterior
        until they stop moving, as Stata does at every evaluation.
        """
        params = np.asarray(params, dtype=float)
        if not adaptive:
            m, s = self._nodes(params, quad_points, False)
            return self._evaluate(params, m, s, quad_points, 0, effect_scale=False).llf
        m, s = self._adapt(params, quad_points, *self._prior_nodes(params), tol=1e-10)
        return self._evaluate(params, m, s, quad_points, 0).llf

    # --------------------------------------------------------------------- fit

    def _pooled(self) -> tuple[np.ndarray, float]:
        """Pooled coefficients and log-likelihood (cached: the LR test needs them too)."""
        if getattr(self, "_pooled_cache", None) is None:
            beta, llp, _ = pooled_binary_fit(
                self.y, self.k_exog, self.link, gram=self._gram,
                matvec=self._xb, rmatvec=self._xt_w,
            )
            self._pooled_cache = (beta, llp)
        return self._pooled_cache

    def _subset(self, group_idx: np.ndarray) -> RandomEffectsProbit:
        """The same model on some of the groups, without the data checks (start values)."""
        idx = np.sort(np.asarray(group_idx))
        lens = self.sizes[idx]
        rows = np.repeat(self.starts[idx], lens) + (
            np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        )
        new = object.__new__(type(self))
        new.link, new._F = self.link, self._F
        new.exog_names, new.param_names, new.endog_name = self.exog_names, self.param_names, self.endog_name
        new.y, new.q = self.y[rows], self.q[rows]
        new.sizes = lens
        new.starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.intp)
        new.gidx = np.repeat(np.arange(idx.size), lens).astype(np.intp)
        new.group_labels = self.group_labels[idx]
        new._order = None
        new.nobs, new.ngroups, new.k_exog = int(rows.size), int(idx.size), self.k_exog
        new.n_singletons = int(np.sum(lens == 1))
        new._pooled_cache = self._pooled_cache
        new.block_rows, new.threads = self.block_rows, self.threads
        X = np.empty((rows.size, self.k_exog), order="F")
        X[:, self._inv] = self._Xg[idx][new.gidx]
        X[:, self._var] = self._Xv[rows]
        new._prepare_structure(X)
        return new

    def _grid_start(self, beta: np.ndarray, K: int, adaptive: bool) -> np.ndarray:
        """Start on the path (b_pooled * sqrt(1 + s2u), ln s2u) at the best rho of a grid.

        As Stata's "Fitting full model: rho = 0.0, 0.1, ..." search: the pooled
        coefficients rescaled to the random-effects scale, rho stepped up until
        the log-likelihood falls.
        """
        F = self._F
        best_llf, best = -np.inf, None
        for rho in np.arange(0.1, 0.95, 0.1):
            s2 = F.latent_var * rho / (1.0 - rho)
            p = np.concatenate([beta * np.sqrt(1.0 + s2 / F.latent_var), [np.log(s2)]])
            m, s = self._nodes(p, K, adaptive, refine=1)
            llf = self._evaluate(p, m, s, K, 0, effect_scale=adaptive).llf
            if llf < best_llf:
                break
            best_llf, best = llf, p
        return best

    def start_params(self, quad_points: int = 12, adaptive: bool = True) -> np.ndarray:
        """Start values: the pooled coefficients rescaled at the best rho of a grid.

        The grid is searched on at most `GRID_GROUPS` randomly chosen groups: it
        only has to find the right order of magnitude of the variance.
        """
        beta, _ = self._pooled()
        if self.ngroups <= GRID_GROUPS:
            return self._grid_start(beta, quad_points, adaptive)
        rng = np.random.default_rng(12345)
        sub = self._subset(rng.choice(self.ngroups, size=GRID_GROUPS, replace=False))
        return sub._grid_start(beta, quad_points, adaptive)

    def _newton(self, params, K, adaptive, maxiter, tol, disp=False):
        """Newton's method at fixed nodes, re-adapted every iteration.

        Returns (params, state, history, iterations, boundary).

        Adaptive rule (Stata's mvaghermite): each iteration takes the Newton step
        of the approximation with the nodes held fixed on the random effect's
        scale, then re-centres the nodes on the posterior at the new estimates
        (one fixed-point update per iteration while far from the maximum). Near
        the maximum the posterior moments are iterated to their fixed point at
        the current estimates before the final derivatives are taken, so the
        reported estimates solve ``grad L(b; nodes(b)) = 0`` with the nodes held
        fixed -- Stata's estimates -- and llf, scores and Hessian (OIM standard
        errors) are those at nodes adapted at the estimates.
        """
        P = self.k_exog
        ev = self._evaluate if adaptive else (
            lambda p, m, s, K, order: self._evaluate(p, m, s, K, order, effect_scale=False)
        )
        m, s = self._nodes(params, K, adaptive)
        state = ev(params, m, s, K, 2)
        history = []
        converged = boundary = False
        it = 0
        for it in range(1, maxiter + 1):
            g, H = state.grad, state.hess
            if not (np.isfinite(state.llf) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
                raise ConvergenceError(
                    f"the log-likelihood or its derivatives are not finite at iteration {it}"
                )
            step, dec = _newton_step(g, H)
            if adaptive:
                m_new, s_new = self._moments(state)
                node_move = self._node_move(m, s, m_new, s_new)
            else:
                m_new, s_new, node_move = m, s, 0.0
            history.append((it, state.llf, dec, node_move))
            if disp:
                print(f"iter {it}: llf={state.llf:.6f} decrement={dec:.3e} node move={node_move:.2e}")
            at_boundary = params[P] < BOUNDARY_LNSIG2U
            small = _newton_step(g[:P], H[:P, :P])[1] < tol if at_boundary else dec < tol
            if small and node_move < NODE_TOL:
                converged = True
                boundary = at_boundary
                break
            if small:
                # only the nodes have still to settle (adaptive rule)
                m, s = self._adapt(params, K, m_new, s_new)
                state = ev(params, m, s, K, 2)
                continue
            if params[P] > DIVERGENT_LNSIG2U:
                raise ConvergenceError(
                    f"lnsig2u = {params[P]:.1f}: the random-effect variance diverges "
                    "(rho -> 1); the outcome is almost constant within groups"
                )
            # cap the variance step: lnsig2u moves on a log scale
            if abs(step[P]) > 1.0:
                step *= 1.0 / abs(step[P])
            if adaptive and dec < ADAPT_DECREMENT:
                # near the maximum: step at the current nodes (checked with a
                # cheap order-0 pass, which also starts the node iteration),
                # then settle the nodes at the new estimates before the
                # derivatives are taken there
                t = 1.0
                trial = ev(params + step, m, s, K, 0)
                while not (np.isfinite(trial.llf) and trial.llf >= state.llf - 1e-12 * abs(state.llf)):
                    t *= 0.5
                    if t < 1e-8:
                        raise ConvergenceError(
                            f"no step increases the log-likelihood at iteration {it} "
                            f"(llf {state.llf:.6f}, decrement {dec:.3e})"
                        )
                    trial = ev(params + t * step, m, s, K, 0)
                params = params + t * step
                m, s = self._adapt(params, K, m, s, state=trial)
                state = ev(params, m, s, K, 2)
                continue
            m, s = m_new, s_new
            ref = state.llf
            t = 1.0
            new = ev(params + step, m, s, K, 2)
            if not (np.isfinite(new.llf) and new.llf >= ref - 1e-9 * abs(ref)):
                ref = ev(params, m, s, K, 0).llf  # same nodes as the trial
                while not (np.isfinite(new.llf) and new.llf >= ref - 1e-12 * abs(ref)):
                    t *= 0.5
                    if t < 1e-8:
                        raise ConvergenceError(
                            f"no step increases the log-likelihood at iteration {it} "
                            f"(llf {ref:.6f}, decrement {dec:.3e})"
                        )
                    new = ev(params + t * step, m, s, K, 0)
                new = ev(params + t * step, m, s, K, 2)
            params = params + t * step
            state = new
        if not converged:
            raise ConvergenceError(
                f"no convergence after {maxiter} iterations (last decrement "
                f"{history[-1][2]:.3e}, llf {history[-1][1]:.6f}); try more iterations, "
                "other start values or check the design"
            )
        return params, state, history, it, boundary

    def fit(
        self,
        quad_points: int = 12,
        adaptive: bool = True,
        cov_type: str = "oim",
        cov_kwds: dict | None = None,
        start_params: Sequence[float] | None = None,
        maxiter: int = 100,
        tol: float = 1e-10,
        disp: bool = False,
        blas_threads: int | None = 1,
    ) -> RandomEffectsProbitResults:
        """Maximise the likelihood by Newton's method.

        Parameters
        ----------
        quad_points : number of quadrature nodes (Stata's default 12)
        adaptive : mean-variance adaptive quadrature (default) or ordinary Gauss-Hermite
        cov_type : ``"oim"`` (inverse of the observed information), ``"opg"``
            (outer product of the firm-level scores) or ``"cluster"`` (sandwich
            with the scores summed by cluster and multiplied by G/(G-1), as Stata's
            ``vce(cluster)``; clusters are the groups unless
            ``cov_kwds={"groups": labels}`` gives coarser ones)
        start_params : coefficients then lnsig2u; default see `start_params`
        tol : convergence when g' (-H)^-1 g < tol and the nodes have settled
        blas_threads : BLAS threads during the fit (default 1; None leaves them
            alone). The matrix products here have a few dozen columns and gain
            nothing from threads, while OpenBLAS threads spinning against other
            busy processes slowed a fit tenfold on a shared two-core machine.
        """
        with _limit_blas(blas_threads):
            return self._fit(quad_points, adaptive, cov_type, cov_kwds, start_params, maxiter, tol, disp)

    def _fit(self, quad_points, adaptive, cov_type, cov_kwds, start_params, maxiter, tol, disp):
        if cov_type not in COV_TYPES:
            raise ValueError(f"cov_type must be one of {sorted(set(COV_TYPES))}")
        cov_type = COV_TYPES[cov_type]
        if quad_points < 2:
            raise ValueError("quad_points must be at least 2")
        t0 = time.perf_counter()
        P = self.k_exog
        _, llp = self._pooled()
        if start_params is None:
            params = self.start_params(quad_points, adaptive)
        else:
            params = np.asarray(start_params, dtype=float).copy()
            if params.shape != (P + 1,):
                raise ValueError(f"start_params must have {P + 1} values")
        params, state, history, it, boundary = self._newton(params, quad_points, adaptive, maxiter, tol, disp)
        if boundary:
            warnings.warn(
                f"lnsig2u = {params[P]:.1f}: the random-effect variance is at its "
                "boundary (rho = 0); the pooled model fits as well and the standard "
                "error of lnsig2u is meaningless",
                stacklevel=3,
            )
        # the posterior moments of the random effect at the estimates: the
        # warm start of the nodes for refits nearby (quadrature_check)
        nodes = self._moments(state) if adaptive else None
        fit_time = time.perf_counter() - t0
        return RandomEffectsProbitResults(
            model=self,
            params=params,
            state=state,
            llf_pooled=llp,
            cov_type=cov_type,
            cov_kwds=cov_kwds or {},
            quad_points=quad_points,
            adaptive=adaptive,
            iterations=it,
            history=pd.DataFrame(history, columns=["iteration", "llf", "decrement", "node_move"]),
            boundary=boundary,
            fit_time=fit_time,
            nodes=nodes,
            fit_tol=tol,
        )


def _limit_blas(threads: int | None):
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the fit just uses the library default
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def _newton_step(g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, float]:
    """Newton direction solving (-H) d = g, with -H made positive definite if needed."""
    A = -0.5 * (H + H.T)
    try:
        c = scipy.linalg.cho_factor(A)
        d = scipy.linalg.cho_solve(c, g)
    except np.linalg.LinAlgError:
        w, V = np.linalg.eigh(A)
        floor = max(1e-8 * np.max(np.abs(w)), 1e-10)
        w = np.maximum(np.abs(w), floor)
        d = V @ ((V.T @ g) / w)
    return d, float(g @ d)


# ----------------------------------------------------------------------- results


class RandomEffectsProbitResults:
    """Results of `RandomEffectsProbit.fit`, named as in statsmodels.

    ``params`` and ``bse`` are Series indexed by the exog names plus
    ``lnsig2u``; ``cov_params()`` is a DataFrame; ``summary()`` gives the tables.
    ``hessian`` and ``group_scores`` (one row per group, model order) are kept
    so other covariance types can be had without refitting (`get_robustcov`).
    """

    def __init__(
        self,
        model,
        params,
        state: _State,
        llf_pooled,
        cov_type,
        cov_kwds,
        quad_points,
        adaptive,
        iterations,
        history,
        boundary,
        fit_time,
        nodes=None,
        fit_tol: float = 1e-10,
    ):
        self.model = model
        self.params_array = np.asarray(params, dtype=float)
        self.llf = state.llf
        self.hessian = state.hess
        self.group_scores = state.group_scores
        self.llf_pooled = float(llf_pooled)
        self.cov_type = cov_type
        self.cov_kwds = dict(cov_kwds)
        self.quad_points = quad_points
        self.adaptive = adaptive
        self.iterations = iterations
        self.history = history
        self.boundary = boundary
        self.fit_time = fit_time
        self.converged = True
        self.sample = None  # set by DynamicSample.fit: the estimation sample and its spec
        # adaptive rule: posterior mean and s.d. of each firm's effect at the estimates
        self.node_moments = nodes
        self.fit_tol = float(fit_tol)  # convergence criterion of the fit (refits use it too)
        self._cov = self._compute_cov(cov_type, self.cov_kwds)

    # ---------------------------------------------------------- covariance

    def _compute_cov(self, cov_type: str, cov_kwds: dict) -> np.ndarray:
        H, gs = self.hessian, self.group_scores
        k = H.shape[0]
        try:
            Hinv = inverse_negative_definite(H)
        except np.linalg.LinAlgError:
            if not self.boundary:
                raise ConvergenceError(
                    "the Hessian is not negative definite at the estimates: the "
                    "maximum is not a proper one (flat likelihood or redundant parameters)"
                ) from None
            Hinv = np.linalg.pinv(-H)
        if cov_type == "oim":
            return Hinv
        if cov_type == "opg":
            return np.linalg.inv(gs.T @ gs)
        clusters = cov_kwds.get("groups")
        if clusters is None:
            sc = gs
        else:
            clusters = np.asarray(clusters).ravel()
            if clusters.shape[0] != self.model.nobs:
                raise ValueError("cov_kwds['groups'] needs one label per observation")
            clusters = clusters[self.model._order]
            first = clusters[self.model.starts]
            codes, _ = pd.factorize(first)
            # a group must sit inside one cluster
            per_obs = pd.factorize(clusters)[0]
            firstcode = pd.factorize(clusters)[0][self.model.starts]
            if np.any(per_obs != firstcode[self.model.gidx]):
                raise ValueError("clusters must nest the groups (a group in one cluster)")
            sc = np.zeros((codes.max() + 1, k))
            np.add.at(sc, codes, gs)
        G = sc.shape[0]
        meat = sc.T @ sc * (G / (G - 1.0))
        return Hinv @ meat @ Hinv

    def cov_params(self) -> pd.DataFrame:
        names = self.model.param_names
        return pd.DataFrame(self._cov, index=names, columns=names)

    def get_robustcov(self, cov_type: str, cov_kwds: dict | None = None) -> pd.DataFrame:
        """Covariance of another type at the same estimates (no refit)."""
        return pd.DataFrame(
            self._compute_cov(COV_TYPES[cov_type], cov_kwds or {}),
            index=self.model.param_names,
            columns=self.model.param_names,
        )

    # ------------------------------------------------------------ accessors

    @property
    def params(self) -> pd.Series:
        return pd.Series(self.params_array, index=self.model.param_names, name="coef")

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._cov)), index=self.model.param_names, name="std err")

    @property
    def tvalues(self) -> pd.Series:
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.model.param_names)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        return wald_conf_int(self.params, self.bse, alpha)

    @property
    def nobs(self) -> int:
        return self.model.nobs

    @property
    def ngroups(self) -> int:
        return self.model.ngroups

    @property
    def link(self) -> str:
        return self.model.link

    @property
    def lnsig2u(self) -> float:
        return float(self.params_array[-1])

    @property
    def sigma_u(self) -> float:
        return float(np.exp(0.5 * self.lnsig2u))

    @property
    def sigma_u_se(self) -> float:
        return 0.5 * self.sigma_u * float(self.bse[SIGMA_NAME])

    @property
    def rho(self) -> float:
        """Share of the latent variance due to the firm effect (the latent error
        has variance 1 for probit, pi^2/3 for logit)."""
        s2 = self.sigma_u**2
        return s2 / (s2 + self.model._F.latent_var)

    @property
    def rho_se(self) -> float:
        return self.rho * (1 - self.rho) * float(self.bse[SIGMA_NAME])

    @property
    def lr_test_rho(self) -> dict:
        """LR test of rho = 0 against the pooled model (chi-bar-squared(01))."""
        stat = max(0.0, 2.0 * (self.llf - self.llf_pooled))
        return {"chibar2": stat, "pvalue": 0.5 * float(stats.chi2.sf(stat, 1))}

    @property
    def group_size(self) -> dict:
        s = self.model.sizes
        return {"min": int(s.min()), "avg": float(s.mean()), "max": int(s.max())}

    def predict(self, exog=None, which: str = "marginal") -> np.ndarray:
        """Probability averaged over the firm effect (``"marginal"``) or linear index (``"linear"``).

        Without ``exog``, for the estimation rows in the order they were given.
        """
        from .partial_effects import marginal_probability

        if exog is None:
            # the caller's row order; rows the model dropped (singletons="drop") are
            # NaN. From the model's two parts of the design (no copy of it).
            xb = np.full(self.model._n_input, np.nan)
            xb[self.model._order] = self.model._xb(self.params_array[:-1])
        else:
            X = exog[self.model.exog_names].to_numpy(float) if isinstance(exog, pd.DataFrame) else np.asarray(exog, float)
            xb = X @ self.params_array[:-1]
        if which == "linear":
            return xb
        return marginal_probability(xb, self.sigma_u, self.link)

    # --------------------------------------------------------------- extras

    def quadrature_check(
        self, points: Sequence[int] = (8, 16, 24), method: str = "warm"
    ) -> pd.DataFrame:
        """Refit with other numbers of nodes; relative change of every parameter.

        As Stata's ``quadchk``: relative changes below 1e-4 mean the number of
        nodes does not matter; above 1e-2 the quadrature is not approximating the
        likelihood reliably. Each refit starts from these estimates.

        ``method="warm"`` (default) computes only what the table needs: the
        estimates and log-likelihood at each number of nodes. Each refit starts
        from these estimates and, for the adaptive rule, from these nodes (the
        posterior moments of the firm effects, `node_moments`), and takes
        quasi-Newton steps with the gradient at the other number of nodes and
        this fit's Hessian (the estimates move by a fraction of a standard error,
        so the curvature is the same to many digits), re-centring the nodes at
        each step, until the fit's own criterion holds (decrement below the
        fit's ``tol``, nodes settled to `NODE_TOL`). No Hessian, scores or
        standard errors are computed at the other numbers of nodes: the cost is
        a few likelihood-and-gradient passes per number of nodes. A refit that
        does not settle within a few steps takes Newton steps with the Hessian at
        its own number of nodes. ``method="refit"``: full refits with
        `RandomEffectsProbit.fit` (standard errors included), the former path;
        the same numbers to the optimiser's tolerance.
        """
        if method not in ("warm", "refit"):
            raise ValueError("method must be 'warm' or 'refit'")
        base = self.params
        out = {f"q{self.quad_points}": base}
        rel = {}
        llfs = {f"q{self.quad_points}": self.llf}
        self.quadrature_check_iterations = {}
        for K in points:
            if method == "refit" or self.boundary:
                r = self.model.fit(
                    quad_points=K,
                    adaptive=self.adaptive,
                    cov_type="oim",
                    start_params=self.params_array,
                    tol=self.fit_tol,
                )
                params_K, llf_K, iters = r.params_array, r.llf, r.iterations
            else:
                try:
                    with _limit_blas(1):
                        params_K, llf_K, iters = self._warm_refit(K)
                except ConvergenceError:
                    # not settling from here: the full refit, with its line search
                    r = self.model.fit(
                        quad_points=K,
                        adaptive=self.adaptive,
                        cov_type="oim",
                        start_params=self.params_array,
                        tol=self.fit_tol,
                    )
                    params_K, llf_K, iters = r.params_array, r.llf, -r.iterations
            self.quadrature_check_iterations[K] = iters
            params_K = pd.Series(params_K, index=self.model.param_names, name="coef")
            out[f"q{K}"] = params_K
            llfs[f"q{K}"] = llf_K
            rel[f"rel_change_q{K}"] = (params_K - base) / np.maximum(np.abs(base), 1e-12)
        table = pd.concat([pd.DataFrame(out), pd.DataFrame(rel)], axis=1)
        llf_row = dict(llfs)
        for K in points:
            llf_row[f"rel_change_q{K}"] = (llfs[f"q{K}"] - self.llf) / abs(self.llf)
        table.loc["llf"] = pd.Series(llf_row)
        table.attrs["max_abs_rel_change"] = float(pd.DataFrame(rel).abs().max().max())
        return table

    def _warm_refit(self, K: int, maxiter: int = 30) -> tuple[np.ndarray, float, int]:
        """Estimates and log-likelihood with K nodes, from these estimates (see
        `quadrature_check`): (params, llf, iterations). Raises ConvergenceError
        when the steps do not settle (the caller then refits in full)."""
        model, adaptive, P = self.model, self.adaptive, self.model.k_exog
        tol = self.fit_tol
        params = self.params_array.copy()
        if adaptive and self.node_moments is not None:
            m, s = self.node_moments
        else:
            m, s = model._nodes(params, K, adaptive)
        H = self.hessian
        last_dec, own_hessian = np.inf, False
        for it in range(1, maxiter + 1):
            st = model._score(params, m, s, K, effect_scale=adaptive, keep_d1=adaptive)
            if not (np.isfinite(st.llf) and np.all(np.isfinite(st.grad))):
                raise ConvergenceError(
                    f"quadrature check with {K} nodes: the log-likelihood or its gradient "
                    f"is not finite at iteration {it}"
                )
            if adaptive:
                m_new, s_new = model._moments(st)
                node_move = model._node_move(m, s, m_new, s_new)
            else:
                m_new, s_new, node_move = m, s, 0.0
            step, dec = _newton_step(st.grad, H)
            if dec < tol and node_move < NODE_TOL:
                # converged on the fit's criterion; the step computed here costs
                # nothing more and takes the estimates to the maximum (within
                # dec ~ 1e-10, it moves the log-likelihood by dec / 2)
                return params + step, st.llf + 0.5 * dec, it
            rate = dec / last_dec
            if not own_hessian and rate > 1e-2 and dec * rate * rate > tol and node_move < 1e-6:
                # slow linear convergence not due to the nodes: the fit's
                # curvature is not good enough here (e.g. the ordinary rule with
                # few nodes moves the estimates by a standard error), so Newton
                # with K's own Hessian from now on
                H = model._evaluate(params, m, s, K, 2, effect_scale=adaptive).hess
                step, dec = _newton_step(st.grad, H)
                own_hessian = True
            last_dec = dec
            if abs(step[P]) > 1.0:
                step *= 1.0 / abs(step[P])
            if adaptive:
                # the nodes move with the estimates: re-centred on the posterior
                # at the new estimates (to first order in the step)
                m_new, s_new = model._moments_after_step(st, step)
            st = None
            params = params + step
            m, s = m_new, s_new
        raise ConvergenceError(
            f"quadrature check with {K} nodes: no convergence after {maxiter} iterations "
            f"(last decrement {last_dec:.3e})"
        )

    def average_partial_effects(self, variables=None, discrete=None, alpha: float = 0.05) -> pd.DataFrame:
        """Average partial effects with delta-method standard errors (see `partial_effects`)."""
        from .partial_effects import average_partial_effects

        return average_partial_effects(self, variables=variables, discrete=discrete, alpha=alpha)

    def summary(self, alpha: float = 0.05) -> ResultsSummary:
        table = coefficient_table(self.params, self.bse, alpha)
        labels = getattr(getattr(self.sample, "spec", None), "labels", None)
        if labels:
            table.insert(0, "label", [labels.get(n, n) for n in table.index])
        lr = self.lr_test_rho
        gs = self.group_size
        method = "mvaghermite" if self.adaptive else "ghermite"  # Stata's names
        info = [
            ("Dep. variable", self.model.endog_name),
            ("Model", f"RE {self.link}"),
            ("No. observations", self.nobs),
            ("No. groups", self.ngroups),
            ("Obs per group min", gs["min"]),
            ("Obs per group avg", round(gs["avg"], 2)),
            ("Obs per group max", gs["max"]),
            ("Integration", method),
            ("Quadrature points", self.quad_points),
            ("Covariance", self.cov_type),
            ("Log-likelihood", self.llf),
            ("Pooled log-lik.", self.llf_pooled),
            ("sigma_u", self.sigma_u),
            ("rho", self.rho),
            ("Iterations", self.iterations),
            ("Fit time (s)", round(self.fit_time, 3)),
        ]
        extra = pd.DataFrame(
            {"estimate": [self.sigma_u, self.rho], "std err": [self.sigma_u_se, self.rho_se]},
            index=["sigma_u", "rho"],
        )
        notes = [
            f"LR test of rho=0: chibar2(01) = {lr['chibar2']:.2f}  Prob >= chibar2 = {lr['pvalue']:.4g}"
        ]
        if self.cov_type == "cluster":
            notes.append(
                "Std. err. adjusted for clusters (scores summed by cluster, G/(G-1) factor)"
            )
        return ResultsSummary(
            title=f"Random-effects {self.link} regression", info=info, table=table,
            extra={"variance of the random effect": extra}, notes=notes,
        )
