"""gaussmix's own errors and warnings, importable without scikit-learn.

The lower layers (covariance structures, EM) raise these; :mod:`gaussmix.exceptions`
re-exports them beside the two classes that subclass scikit-learn's.
"""

from __future__ import annotations


class EmptyComponentWarning(UserWarning):
    """A component lost all responsibility during EM and was dropped.

    A dropped component keeps its place in the fitted arrays (so their shapes
    stay ``(n_components, ...)``) but its weight is exactly 0: it predicts no
    points, contributes nothing to the density and is never sampled.
    """


class CollapsedComponentWarning(UserWarning):
    """A component collapsed: in some direction its variance is only the regularisation.

    This happens when a component sits on rows that share (nearly) one
    value in some direction: duplicates, a discrete feature, fewer rows than
    features. Its density is a spike held up by ``reg_covar``, and the
    likelihood of such a fit is inflated; model selection rejects it.
    """


class FitError(ValueError):
    """EM cannot continue: a singular covariance or a non-finite log-likelihood.

    The message says what happened and what to change.
    """


class InvalidParameterError(ValueError, TypeError):
    """A hyper-parameter has a wrong type or value.

    It is both a ValueError and a TypeError, like scikit-learn's error of the
    same name, so either ``except`` clause catches it.
    """


class ModelFileError(ValueError):
    """A model file cannot be loaded: missing, not a model file, damaged, or invalid.

    The message starts with the file's path and says what is wrong.
    """


class MissingDependencyError(ImportError):
    """An optional engine's library is not installed; the message says what to install."""


class SelectionBoundaryWarning(UserWarning):
    """Model selection chose the largest number of components it tried: the search may have stopped too soon."""


class ConstantFeatureWarning(UserWarning):
    """A feature takes one value in every row (to rounding).

    Its variance is only the regularisation, so every component's density
    is a spike in that direction: the log-likelihood, BIC and AIC are
    inflated by a constant that has nothing to do with the data's structure.
    """


for _error in (EmptyComponentWarning, CollapsedComponentWarning, FitError, InvalidParameterError, ModelFileError,
               MissingDependencyError, SelectionBoundaryWarning, ConstantFeatureWarning):
    _error.__module__ = "gaussmix.exceptions"  # where users find them
del _error
