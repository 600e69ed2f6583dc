"""Errors raised by the estimators.

Each says what is wrong with the data or the fit in words a user can act on;
the estimators raise them rather than return numbers that look valid but are
not (a coefficient heading to infinity, an arbitrary pick among collinear
columns, a variance with nothing to identify it).
"""

from __future__ import annotations


class EstimationError(Exception):
    """Base class of the estimators' errors."""


class PerfectPredictionError(EstimationError, ValueError):
    """A regressor (or the design as a whole) separates the outcome."""


class CollinearityError(EstimationError, ValueError):
    """Columns of the design are linearly dependent."""


class SingletonGroupsError(EstimationError, ValueError):
    """Groups of one observation leave the random-effect variance unidentified."""


class EmptySampleError(EstimationError, ValueError):
    """No observation is left for the estimation (e.g. its years are not in the data)."""


class ConvergenceError(EstimationError, RuntimeError):
    """The optimiser stopped without meeting the convergence criteria."""
