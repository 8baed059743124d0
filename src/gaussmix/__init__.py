"""gaussmix: Gaussian mixture models fitted by EM on sufficient statistics.

>>> import gaussmix
>>> gm = gaussmix.GaussianMixture(n_components=3, covariance_type="tied", random_state=0)
"""

from gaussmix._gaussian_mixture import GaussianMixture
from gaussmix.exceptions import (
    ConvergenceWarning,
    EmptyComponentWarning,
    FitError,
    InvalidParameterError,
    NotFittedError,
)

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "EmptyComponentWarning",
    "FitError",
    "GaussianMixture",
    "InvalidParameterError",
    "NotFittedError",
    "__version__",
]
