"""The warm-started quadrature check gives the numbers of the full refits, for less.

`RandomEffectsProbitResults.quadrature_check` (default ``method="warm"``) refits
each number of nodes from the estimates and the nodes of the fit with
likelihood-and-gradient passes only; ``method="refit"`` is the former path (a
full `fit`, standard errors included, per number of nodes). Both stop on the
fit's criterion, so their tables agree to the optimiser's tolerance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offshoring.econometrics import RandomEffectsProbit, build_dynamic_sample
from offshoring.econometrics.re_probit import _newton_step
from offshoring.econometrics.simulate import simulate_firm_years

POINTS = (8, 16, 24)


def tight_estimates(model, K: int, start: np.ndarray, adaptive: bool = True) -> np.ndarray:
    """The estimates with K nodes to many more digits than any fit's criterion:
    Newton steps with K's own Hessian at nodes settled to 1e-13."""
    p = np.asarray(start, float).copy()
    m, s = model._nodes(p, K, adaptive)
    for _ in range(4):
        if adaptive:
            m, s = model._adapt(p, K, m, s, tol=1e-13)
        st = model._evaluate(p, m, s, K, 2, effect_scale=adaptive)
        p = p + _newton_step(st.grad, st.hess)[0]
    return p


def assert_same_table(new: pd.DataFrame, old: pd.DataFrame, res, rtol: float = 1e-5) -> None:
    """The layout is the same and the numbers agree to the optimiser's tolerance.

    Both paths stop when the Newton decrement is below the fit's ``tol`` (1e-10),
    i.e. within 1e-5 standard errors of the maximum. The full refits return the
    first point that passes, which can be the start itself (2.7e-6 s.e., 1.6e-6
    relative, short of the 16- and 24-point maxima on the simulated panel; 2e-6
    relative on wagepan); the warm check ends with the step computed at that
    point and lands within 1e-7 (see `assert_at_the_maximum`).
    """
    assert list(new.columns) == list(old.columns)
    assert list(new.index) == list(old.index)
    assert new.index[-1] == "llf"
    est = [c for c in new.columns if not c.startswith("rel_change_")]
    rel = [c for c in new.columns if c.startswith("rel_change_")]
    assert est == [f"q{res.quad_points}", *[f"q{K}" for K in POINTS]]
    np.testing.assert_allclose(new[est].to_numpy(), old[est].to_numpy(), rtol=rtol, atol=0)
    gap = (new[est] - old[est]).drop(index="llf").abs().to_numpy()
    assert np.all(gap <= 1e-5 * res.bse.to_numpy()[:, None])
    np.testing.assert_allclose(new.loc["llf", est], old.loc["llf", est], rtol=1e-9)
    # the relative changes are differences of those, scaled by the estimates
    np.testing.assert_allclose(new[rel].to_numpy(), old[rel].to_numpy(), rtol=0, atol=rtol)
    assert new.attrs["max_abs_rel_change"] == pytest.approx(old.attrs["max_abs_rel_change"], abs=rtol)


def assert_at_the_maximum(new: pd.DataFrame, old: pd.DataFrame, res, rtol: float = 1e-7,
                          se_tol: float | None = None) -> None:
    """The warm check's estimates are the K-point maxima to ``rtol`` (relative)
    and never farther from them than the full refits'; or, with ``se_tol``,
    within that many standard errors of them."""
    se = res.bse.to_numpy()
    for K in POINTS:
        tight = tight_estimates(res.model, K, old[f"q{K}"].to_numpy()[:-1], res.adaptive)
        err_new = np.abs(new[f"q{K}"].to_numpy()[:-1] - tight)
        err_old = np.abs(old[f"q{K}"].to_numpy()[:-1] - tight)
        if se_tol is not None:
            assert np.all(err_new <= se_tol * se), K
            continue
        assert np.all(err_new <= rtol * np.abs(tight)), K
        assert err_new.max() <= max(err_old.max(), 1e-10), K


@pytest.fixture(scope="module")
def simulated_fit():
    panel, _ = simulate_firm_years(n_firms=3000, seed=7)
    sample = build_dynamic_sample(panel)
    return sample.fit(cov_type="cluster")


def test_warm_check_equals_full_refits_on_simulated_panel(simulated_fit):
    res = simulated_fit
    new = res.quadrature_check(POINTS)
    warm_iterations = dict(res.quadrature_check_iterations)
    old = res.quadrature_check(POINTS, method="refit")
    assert_same_table(new, old, res)
    assert_at_the_maximum(new, old, res)
    # a handful of gradient passes per number of nodes, no Hessian
    assert all(1 <= it <= 10 for it in warm_iterations.values()), warm_iterations
    # the table the pipeline writes: the layout is unchanged
    assert new.loc["llf", "q12"] == res.llf
    assert set(new.index) == {*res.params.index, "llf"}


def test_warm_check_equals_full_refits_on_wagepan(wagepan_fit):
    res = wagepan_fit
    new = res.quadrature_check(POINTS)
    old = res.quadrature_check(POINTS, method="refit")
    assert_same_table(new, old, res)
    assert_at_the_maximum(new, old, res)


def test_warm_check_at_the_fit_own_points_is_the_fit(wagepan_fit):
    qc = wagepan_fit.quadrature_check((12,))
    assert wagepan_fit.quadrature_check_iterations == {12: 1}
    # the fit stopped within its tolerance of the maximum (here 3e-7 relative);
    # the check's one step lands on it
    est = qc["q12"].to_numpy()[:-1]
    np.testing.assert_allclose(est, wagepan_fit.params_array, rtol=1e-6)
    assert np.all(np.abs(est - wagepan_fit.params_array) <= 1e-5 * wagepan_fit.bse.to_numpy())
    assert qc.loc["llf", "rel_change_q12"] == pytest.approx(0, abs=1e-14)


def test_warm_check_ordinary_quadrature(wagepan_design):
    """The ordinary rule moves the estimates by up to a standard error between 8
    and 24 nodes: the warm check then switches to Newton with the Hessian at the
    other number of nodes, and the full refits are the less precise of the two."""
    y, X, g = wagepan_design
    res = RandomEffectsProbit(y, X, g).fit(quad_points=12, adaptive=False)
    assert res.node_moments is None
    new = res.quadrature_check(POINTS)
    assert all(1 <= it <= 10 for it in res.quadrature_check_iterations.values())
    old = res.quadrature_check(POINTS, method="refit")
    assert_same_table(new, old, res, rtol=1e-4)
    # within 2e-7 s.e. of the maxima (the full refits: up to 4e-6 s.e., 16 nodes)
    assert_at_the_maximum(new, old, res, se_tol=1e-6)


def test_warm_check_rejects_unknown_method(wagepan_fit):
    with pytest.raises(ValueError, match="method"):
        wagepan_fit.quadrature_check(POINTS, method="fast")
