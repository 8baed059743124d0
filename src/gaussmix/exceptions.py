"""Errors and warnings raised by gaussmix.

They subclass scikit-learn's classes where scikit-learn has an equivalent, so
code written against :class:`sklearn.mixture.GaussianMixture` that catches
``sklearn.exceptions.NotFittedError`` or ``ConvergenceWarning`` keeps working.
The others live in a module without scikit-learn (``gaussmix._errors``), so
that the covariance structures and the EM layer import without it; they are
the same classes.
"""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from gaussmix._errors import (
    CollapsedComponentWarning,
    ConstantFeatureWarning,
    EmptyComponentWarning,
    FitError,
    InvalidParameterError,
    MissingDependencyError,
    ModelFileError,
    SelectionBoundaryWarning,
)

__all__ = [
    "CollapsedComponentWarning",
    "ConstantFeatureWarning",
    "ConvergenceWarning",
    "EmptyComponentWarning",
    "FitError",
    "InvalidParameterError",
    "MissingDependencyError",
    "ModelFileError",
    "NotFittedError",
    "SelectionBoundaryWarning",
]


class NotFittedError(_SklearnNotFittedError):
    """A method that needs a fitted model was called before ``fit``."""


class ConvergenceWarning(_SklearnConvergenceWarning):
    """EM stopped at ``max_iter`` before the lower bound changed by less than ``tol``."""
