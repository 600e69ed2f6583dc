"""Average partial effects of the random-effects binary model.

With a normal random intercept the probability averaged over the firm effect
("average structural function", Wooldridge 2005) is, for the probit,
``Phi(x'b / sqrt(1 + s2u))``: the coefficients scaled down by
``sqrt(1 + s2u)``. Partial effects are averaged over the sample's covariates,
the initial conditions and Mundlak means included, so the effect of the lagged
outcome is ``mean_it[Phi(c (x_it'b with y_lag = 1)) - Phi(c (... y_lag = 0))]``,
``c = 1 / sqrt(1 + s2u)``. For the logit the average over the random effect has
no closed form and is computed by 40-point Gauss-Hermite quadrature.

Standard errors by the delta method with the fit's covariance matrix (analytic
Jacobian for the probit, central differences for the logit). They treat the
covariates as fixed, as Stata's ``margins`` does by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from ._summary import wald_interval

_GH_X, _GH_W = special.roots_hermite(40)


def marginal_probability(index: np.ndarray, sigma_u: float, link: str = "probit") -> np.ndarray:
    """P(y = 1 | x) averaged over a N(0, sigma_u^2) intercept, for linear index ``x'b``."""
    index = np.asarray(index, dtype=float)
    if link == "probit":
        return special.ndtr(index / np.sqrt(1.0 + sigma_u**2))
    nodes = np.sqrt(2.0) * sigma_u * _GH_X
    out = np.zeros_like(index)
    for x, w in zip(nodes, _GH_W):
        out += w * special.expit(index + x)
    return out / np.sqrt(np.pi)


def _marginal_density(index: np.ndarray, sigma_u: float, link: str) -> np.ndarray:
    """Derivative of `marginal_probability` with respect to the index."""
    if link == "probit":
        c = 1.0 / np.sqrt(1.0 + sigma_u**2)
        z = c * index
        return c * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    nodes = np.sqrt(2.0) * sigma_u * _GH_X
    out = np.zeros_like(index)
    for x, w in zip(nodes, _GH_W):
        f = special.expit(index + x)
        out += w * f * (1 - f)
    return out / np.sqrt(np.pi)


def _ape(params: np.ndarray, X: np.ndarray, j: int, discrete: bool, link: str) -> float:
    beta, sigma = params[:-1], np.exp(0.5 * params[-1])
    xb = X @ beta
    if discrete:
        a1 = xb + beta[j] * (1.0 - X[:, j])
        a0 = xb - beta[j] * X[:, j]
        return float(np.mean(marginal_probability(a1, sigma, link) - marginal_probability(a0, sigma, link)))
    return float(beta[j] * np.mean(_marginal_density(xb, sigma, link)))


def _ape_jacobian_probit(params: np.ndarray, X: np.ndarray, j: int, discrete: bool) -> np.ndarray:
    beta, s2 = params[:-1], np.exp(params[-1])
    c = 1.0 / np.sqrt(1.0 + s2)
    dc = -0.5 * s2 * c**3  # dc / dlnsig2u
    n, k = X.shape
    xb = X @ beta
    jac = np.empty(k + 1)
    if discrete:
        a1 = xb + beta[j] * (1.0 - X[:, j])
        a0 = xb - beta[j] * X[:, j]
        f1 = stats.norm.pdf(c * a1)
        f0 = stats.norm.pdf(c * a0)
        # X1 = X with column j set to 1, X0 with it set to 0
        g = c * (X.T @ (f1 - f0)) / n
        g[j] = c * np.mean(f1)
        jac[:k] = g
        jac[k] = dc * np.mean(f1 * a1 - f0 * a0)
        return jac
    z = c * xb
    f = stats.norm.pdf(z)
    jac[:k] = -beta[j] * c * c * (X.T @ (z * f)) / n
    jac[j] += c * np.mean(f)
    jac[k] = beta[j] * dc * np.mean(f * (1.0 - z * z))
    return jac


def _ape_jacobian_numeric(params: np.ndarray, X: np.ndarray, j: int, discrete: bool, link: str) -> np.ndarray:
    jac = np.empty(params.size)
    for i in range(params.size):
        h = 1e-5 * max(1.0, abs(params[i]))
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        jac[i] = (_ape(up, X, j, discrete, link) - _ape(dn, X, j, discrete, link)) / (2 * h)
    return jac


def average_partial_effects(
    results,
    variables: Sequence[str] | None = None,
    discrete: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """APE of each variable with delta-method standard errors.

    Parameters
    ----------
    results : a fitted `RandomEffectsProbitResults`
    variables : exog columns to report; default every non-constant column
    discrete : columns treated as 0 -> 1 changes; default the columns whose
        values are all 0 or 1 (the lagged outcome among them). Others get the
        derivative of the probability.
    """
    model = results.model
    names = model.exog_names
    X = model.X
    params = results.params_array
    V = results.cov_params().to_numpy()
    is_binary = {n: bool(np.all((X[:, i] == 0) | (X[:, i] == 1))) for i, n in enumerate(names)}
    if variables is None:
        variables = [n for i, n in enumerate(names) if X[:, i].min() != X[:, i].max()]
    unknown = [v for v in variables if v not in names]
    if unknown:
        raise KeyError(f"not in the model: {unknown}")
    disc = set(n for n, b in is_binary.items() if b) if discrete is None else set(discrete)
    rows = []
    for v in variables:
        j = names.index(v)
        d = v in disc
        ape = _ape(params, X, j, d, model.link)
        if model.link == "probit":
            jac = _ape_jacobian_probit(params, X, j, d)
        else:
            jac = _ape_jacobian_numeric(params, X, j, d, model.link)
        se = float(np.sqrt(jac @ V @ jac))
        z = ape / se if se > 0 else np.nan
        lo, hi = wald_interval(ape, se, alpha)
        rows.append(
            {
                "variable": v,
                "type": "discrete 0->1" if d else "derivative",
                "ape": ape,
                "std err": se,
                "z": z,
                "P>|z|": 2 * stats.norm.sf(abs(z)),
                f"lower {100 * (1 - alpha):g}%": lo,
                f"upper {100 * (1 - alpha):g}%": hi,
            }
        )
    return pd.DataFrame(rows).set_index("variable")
