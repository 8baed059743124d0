"""The registry: the one list of covariance structure names and their aliases.

Built-in structures are listed here by name and module and imported on
first use, so reading the names (``available_structures``, the CLI's
choices) imports no numerical code. Each structure module defines
``STRUCTURE``, whose name must be the one it is listed under.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import TYPE_CHECKING

from gaussmix._errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from gaussmix.covariance._structure import CovarianceStructure

#: name -> (module defining ``STRUCTURE``, or ``module:ATTRIBUTE`` for a module defining several; aliases),
#: in the order users see them. The four structures scikit-learn has come first, under its names (mclust's
#: are their aliases); then mclust's other ten models (:mod:`gaussmix.covariance.constrained`).
_BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "full": ("gaussmix.covariance.full", ("VVV",)),
    "tied": ("gaussmix.covariance.tied", ("EEE",)),
    "diag": ("gaussmix.covariance.diag", ("VVI",)),
    "spherical": ("gaussmix.covariance.spherical", ("VII", "V")),
    "EII": ("gaussmix.covariance.constrained:EII", ("E",)),
    **{name: (f"gaussmix.covariance.constrained:{name}", ())
       for name in ("EEI", "VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV")},
}
#: mclust's names for its models of one feature (equal and varying variance); no other data take them.
ONE_FEATURE_MODELS = ("E", "V")
#: mclust's fourteen models of several features, in mclust's order (``mclust.options("emModelNames")``).
MCLUST_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")

#: The structure ``covariance_type`` defaults to (as scikit-learn's).
DEFAULT_STRUCTURE = "full"
#: scikit-learn's four structures: what the selector, the classifier and the demo compare unless told
#: which structures to compare.
SCIKIT_LEARN_STRUCTURES = ("full", "tied", "diag", "spherical")
#: The structure in which every component has its own unconstrained covariance: its statistics hold
#: each component's whole scatter matrix (what a split needs to find a component's widest direction).
UNCONSTRAINED_STRUCTURE = "full"

_MODULES: dict[str, str] = {name: module for name, (module, _) in _BUILTIN.items()}
_ALIASES: dict[str, str] = {alias: name for name, (_, aliases) in _BUILTIN.items() for alias in aliases}
_LOADED: dict[str, CovarianceStructure] = {}


def available_structures() -> tuple[str, ...]:
    """Names accepted as ``covariance_type``, in registration order (aliases not included)."""
    return tuple(_MODULES)


def structure_aliases() -> dict[str, str]:
    """Every alias and the name it stands for."""
    return dict(_ALIASES)


def canonical_name(name: str) -> str:
    """The registered name ``name`` stands for (itself, or what it is an alias of)."""
    if isinstance(name, str):
        if name in _MODULES:
            return name
        if name in _ALIASES:
            return _ALIASES[name]
    valid = ", ".join(repr(n) for n in (*_MODULES, *_ALIASES))
    raise InvalidParameterError(f"covariance_type must be one of {valid}; got {name!r}.")


def mclust_models(n_features: int) -> tuple[str, ...]:
    """The models mclust compares on data with ``n_features`` features (its default for ``Mclust``)."""
    return ONE_FEATURE_MODELS if n_features == 1 else MCLUST_MODELS


def check_features(name: str, n_features: int) -> None:
    """Raise InvalidParameterError where ``name`` is a one-feature model and the data have more features."""
    if name in ONE_FEATURE_MODELS and n_features != 1:
        raise InvalidParameterError(
            f"covariance_type={name!r} is mclust's name for a model of one feature, but the data have "
            f"{n_features}; use {'EII' if name == 'E' else 'VII'} (or any other model) for several features."
        )


def _pickled(structure: CovarianceStructure):
    """A registered structure unpickles as the registry's own object (in another process too)."""
    if _LOADED.get(structure.name) is structure:
        return (get_structure, (structure.name,))
    return object.__reduce_ex__(structure, 2)


def _loaded(structure: CovarianceStructure) -> None:
    if not _LOADED:
        import copyreg

        copyreg.pickle(type(structure), _pickled)
    _LOADED[structure.name] = structure


def get_structure(name: str) -> CovarianceStructure:
    """The registered structure called ``name`` (or an alias of it); the error lists the valid names."""
    canonical = canonical_name(name)
    structure = _LOADED.get(canonical)
    if structure is None:
        module, _, attribute = _MODULES[canonical].partition(":")
        structure = getattr(importlib.import_module(module), attribute or "STRUCTURE")
        if structure.name != canonical:
            raise RuntimeError(f"{_MODULES[canonical]} is {structure.name!r}, registered as {canonical!r}")
        aliases = tuple(alias for alias, target in _ALIASES.items() if target == canonical)
        structure = replace(structure, aliases=aliases)
        _loaded(structure)
    return structure


def register(structure: CovarianceStructure) -> CovarianceStructure:
    """Add ``structure`` to the registry under ``structure.name`` and its ``aliases``."""
    from gaussmix.covariance._structure import CovarianceStructure

    if not isinstance(structure, CovarianceStructure):
        raise TypeError(f"expected a CovarianceStructure, got {type(structure).__name__}")
    for name in (structure.name, *structure.aliases):
        if name in _MODULES or name in _ALIASES:
            raise ValueError(f"a covariance structure named {name!r} is already registered")
    _MODULES[structure.name] = ""
    _loaded(structure)
    _ALIASES.update(dict.fromkeys(structure.aliases, structure.name))
    return structure
