"""gaussmix: Gaussian mixture models fitted by EM on sufficient statistics.

>>> import gaussmix
>>> gm = gaussmix.GaussianMixture(n_components=3, covariance_type="tied", random_state=0)

Names are loaded on first use, so ``import gaussmix`` itself is fast and
imports neither scikit-learn nor any optional library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "GaussianMixture": "gaussmix._gaussian_mixture",
    "ConvergenceWarning": "gaussmix.exceptions",
    "EmptyComponentWarning": "gaussmix.exceptions",
    "FitError": "gaussmix.exceptions",
    "InvalidParameterError": "gaussmix.exceptions",
    "NotFittedError": "gaussmix.exceptions",
}

__all__ = [
    "ConvergenceWarning",
    "EmptyComponentWarning",
    "FitError",
    "GaussianMixture",
    "InvalidParameterError",
    "NotFittedError",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from gaussmix._gaussian_mixture import GaussianMixture
    from gaussmix.exceptions import (
        ConvergenceWarning,
        EmptyComponentWarning,
        FitError,
        InvalidParameterError,
        NotFittedError,
    )


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gaussmix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
