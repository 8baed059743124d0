"""gaussmix: Gaussian mixture models fitted by EM on sufficient statistics.

>>> import gaussmix
>>> gm = gaussmix.GaussianMixture(n_components=3, covariance_type="tied", random_state=0)

Names are loaded on first use, so ``import gaussmix`` itself is fast and
imports neither scikit-learn nor any optional library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gaussmix._version import __version__

_LAZY = {
    "GaussianMixture": "gaussmix._gaussian_mixture",
    "BayesianGaussianMixture": "gaussmix._bayesian_mixture",
    "GaussianMixtureSelector": "gaussmix._selector",
    "GaussianMixtureOutlierDetector": "gaussmix._outliers",
    "GaussianMixtureClassifier": "gaussmix._classifier",
    "select": "gaussmix._selector",
    "IterationInfo": "gaussmix.em.loop",
    "MixtureParams": "gaussmix.em.params",
    "MixtureSummary": "gaussmix._summary",
    "ModelFileError": "gaussmix.exceptions",
    "CollapsedComponentWarning": "gaussmix.exceptions",
    "ConstantFeatureWarning": "gaussmix.exceptions",
    "ConvergenceWarning": "gaussmix.exceptions",
    "EmptyComponentWarning": "gaussmix.exceptions",
    "FitError": "gaussmix.exceptions",
    "InvalidParameterError": "gaussmix.exceptions",
    "MissingDependencyError": "gaussmix.exceptions",
    "NotFittedError": "gaussmix.exceptions",
    "SelectionBoundaryWarning": "gaussmix.exceptions",
}

#: The exported estimators (each can be saved and loaded).
_ESTIMATORS = ("GaussianMixture", "BayesianGaussianMixture", "GaussianMixtureSelector",
               "GaussianMixtureOutlierDetector", "GaussianMixtureClassifier")

__all__ = [
    "BayesianGaussianMixture",
    "CollapsedComponentWarning",
    "ConstantFeatureWarning",
    "ConvergenceWarning",
    "EmptyComponentWarning",
    "FitError",
    "GaussianMixture",
    "GaussianMixtureClassifier",
    "GaussianMixtureOutlierDetector",
    "GaussianMixtureSelector",
    "InvalidParameterError",
    "IterationInfo",
    "MissingDependencyError",
    "MixtureParams",
    "MixtureSummary",
    "ModelFileError",
    "NotFittedError",
    "SelectionBoundaryWarning",
    "__version__",
    "load",
    "select",
]

if TYPE_CHECKING:  # pragma: no cover
    from gaussmix._bayesian_mixture import BayesianGaussianMixture
    from gaussmix._classifier import GaussianMixtureClassifier
    from gaussmix._gaussian_mixture import GaussianMixture
    from gaussmix._outliers import GaussianMixtureOutlierDetector
    from gaussmix._selector import GaussianMixtureSelector, select
    from gaussmix._summary import MixtureSummary
    from gaussmix.em.loop import IterationInfo
    from gaussmix.em.params import MixtureParams
    from gaussmix.exceptions import (
        CollapsedComponentWarning,
        ConstantFeatureWarning,
        ConvergenceWarning,
        EmptyComponentWarning,
        FitError,
        InvalidParameterError,
        MissingDependencyError,
        ModelFileError,
        NotFittedError,
        SelectionBoundaryWarning,
    )


def load(path):
    """Load a model saved with :meth:`GaussianMixture.save`.

    The file is validated completely (format version, checksums, shapes,
    finite values, weights on the simplex, positive definite covariances);
    nothing in it is executed.

    Raises
    ------
    gaussmix.ModelFileError
        With a message that starts with the path and says what is wrong.
    """
    from gaussmix._persistence import load_model

    for name in _ESTIMATORS:
        __getattr__(name)  # defining an estimator class lets model files hold it
    return load_model(path)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gaussmix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
