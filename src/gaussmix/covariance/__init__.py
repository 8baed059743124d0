"""Covariance structures, one module each, behind a registry.

>>> from gaussmix.covariance import available_structures, get_structure
>>> available_structures()
('full', 'tied', 'diag', 'spherical')
>>> get_structure("diag").covariance_shape(3, 2)
(3, 2)

A new structure is a subclass of :class:`CovarianceStructure` in its own module,
registered with :func:`register`; nothing else needs to change.
"""

from __future__ import annotations

from gaussmix.covariance._base import CovarianceStructure, SingularCovarianceError
from gaussmix.covariance.diag import Diag
from gaussmix.covariance.full import Full
from gaussmix.covariance.spherical import Spherical
from gaussmix.covariance.tied import Tied
from gaussmix.exceptions import InvalidParameterError

__all__ = [
    "CovarianceStructure",
    "SingularCovarianceError",
    "available_structures",
    "get_structure",
    "register",
]

_REGISTRY: dict[str, CovarianceStructure] = {}


def register(structure: CovarianceStructure) -> CovarianceStructure:
    """Add ``structure`` to the registry under ``structure.name``."""
    if not isinstance(structure, CovarianceStructure):
        raise TypeError(f"expected a CovarianceStructure instance, got {type(structure).__name__}")
    if structure.name in _REGISTRY:
        raise ValueError(f"a covariance structure named {structure.name!r} is already registered")
    _REGISTRY[structure.name] = structure
    return structure


def available_structures() -> tuple[str, ...]:
    """Names accepted as ``covariance_type``, in registration order."""
    return tuple(_REGISTRY)


def get_structure(name: str) -> CovarianceStructure:
    """The registered structure called ``name``; the error lists the valid names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in _REGISTRY)
        raise InvalidParameterError(f"covariance_type must be one of {valid}; got {name!r}.") from None


for _structure in (Full(), Tied(), Diag(), Spherical()):
    register(_structure)
del _structure
