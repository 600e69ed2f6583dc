"""Small linear-algebra helpers shared by the estimators and the spec builder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg

# A column whose distance from the span of the columns before it is below this
# fraction of its own length counts as a linear combination of them (R^2 above
# 1 - 1e-16 or so). Looser than machine precision so that columns built as
# exact sums (a mean equal to the only value) are caught after rounding.
COLLINEARITY_TOL = 1e-8


def dependent_columns(
    X: np.ndarray, names: Sequence[str], tol: float = COLLINEARITY_TOL
) -> list[str]:
    """Names of the columns that are linear combinations of earlier columns.

    Columns are examined in order, so the earlier of two collinear columns is the
    one kept: callers put the columns they care about first. Each column is
    scaled to unit length (not centred: the constant is a column like any
    other), then an unpivoted QR factorisation gives, on the diagonal of R, each
    column's distance from the span of those before it. A dependent column is
    removed and the factorisation repeated, so one dependency does not perturb
    the verdict on later columns.
    """
    X = np.asarray(X, dtype=float)
    names = list(names)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError("X must be 2-D with one name per column")
    gram = X.T @ X
    norms = np.sqrt(np.diag(gram))
    dropped = [n for n, v in zip(names, norms) if v == 0.0]
    keep = [j for j, v in enumerate(norms) if v > 0.0]
    if not keep:
        return dropped
    if _clearly_independent(gram[np.ix_(keep, keep)] / np.outer(norms[keep], norms[keep])):
        return dropped
    Z = np.asfortranarray(X[:, keep])
    Z /= norms[keep]
    while Z.shape[1]:
        R = scipy.linalg.qr(Z, mode="r", check_finite=False)[0]
        diag = np.abs(np.diag(R))
        bad = np.flatnonzero(diag < tol)
        if bad.size:
            j = int(bad[0])
        elif Z.shape[1] > Z.shape[0]:
            # more columns than rows: the first n are independent and span everything
            j = Z.shape[0]
        else:
            break
        dropped.append(names[keep[j]])
        del keep[j]
        Z = np.asfortranarray(np.delete(Z, j, axis=1))
    order = {n: i for i, n in enumerate(names)}
    return sorted(dropped, key=order.__getitem__)


def _clearly_independent(C: np.ndarray, margin: float = 1e-6) -> bool:
    """Fast path: Cholesky of the unit-diagonal Gram matrix.

    Its squared diagonal is each column's residual share after the columns
    before it. Rounding in the Gram matrix can shift those shares by about
    1e-16 times its condition number squared, so only a verdict far from the
    threshold (every share above ``margin``) is trusted; anything closer goes to
    the QR factorisation.
    """
    try:
        L = np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.diag(L) ** 2 > margin))


def inverse_negative_definite(H: np.ndarray) -> np.ndarray:
    """Inverse of -H for a Hessian H of a log-likelihood; raises if not negative definite."""
    A = -np.asarray(H, dtype=float)
    A = 0.5 * (A + A.T)
    c, low = scipy.linalg.cho_factor(A, check_finite=True)
    return scipy.linalg.cho_solve((c, low), np.eye(A.shape[0]))
