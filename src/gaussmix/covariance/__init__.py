"""Covariance structures: storage layouts and estimates, behind a registry.

>>> from gaussmix.covariance import available_structures, get_structure
>>> available_structures()[:6]
('full', 'tied', 'diag', 'spherical', 'EII', 'EEI')
>>> get_structure("diag").covariance_shape(3, 2)
(3, 2)

A structure (:class:`CovarianceStructure`) is a name, aliases, a storage
:class:`Layout` (shapes, kernels, conversions, sampling; see
:mod:`gaussmix.covariance.layouts`), an estimate from summed statistics and
a parameter count. A new structure is one module defining ``STRUCTURE``
plus its line in the registry (or a call to :func:`register`); nothing
else changes. The registry is the only list of names; importing it needs
neither scikit-learn nor NumPy.
"""

from __future__ import annotations

import importlib

from gaussmix.covariance._registry import (
    DEFAULT_STRUCTURE,
    MCLUST_MODELS,
    ONE_FEATURE_MODELS,
    SCIKIT_LEARN_STRUCTURES,
    UNCONSTRAINED_STRUCTURE,
    available_structures,
    canonical_name,
    check_features,
    get_structure,
    mclust_models,
    register,
    structure_aliases,
)

__all__ = [
    "DEFAULT_STRUCTURE",
    "MCLUST_MODELS",
    "ONE_FEATURE_MODELS",
    "SCIKIT_LEARN_STRUCTURES",
    "UNCONSTRAINED_STRUCTURE",
    "CovarianceStructure",
    "Layout",
    "SingularCovarianceError",
    "available_structures",
    "canonical_name",
    "check_features",
    "get_structure",
    "mclust_models",
    "register",
    "structure_aliases",
]

_LAZY = {
    "CovarianceStructure": "gaussmix.covariance._structure",
    "Layout": "gaussmix.covariance._layout",
    "SingularCovarianceError": "gaussmix.covariance._linalg",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gaussmix.covariance' has no attribute {name!r}")
