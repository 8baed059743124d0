"""Engines: where the computations run, behind one seam.

=========  =====================================================================
engine     runs on
=========  =====================================================================
"numpy"    the in-memory engine: NumPy, threads over row chunks
"torch"    PyTorch on ``device`` (CPU or GPU); torch tensors stay on theirs
"dask"     Dask: one map and one tree reduction per pass, on any scheduler
"auto"     follows the input: a tensor runs on torch, a Dask collection on
           Dask, anything else on NumPy (on torch when ``device`` is given)
=========  =====================================================================

Each engine is one module defining ``ENGINE`` (an :class:`Engine`) and one
line in :data:`_ENGINES`. Neither torch nor dask is imported unless an
engine needs it: deciding which engine takes an input only looks at its
type's module, and reading the names (the command line's choices) imports
no numerical code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gaussmix._errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from gaussmix.engines._base import Engine, FitData

__all__ = ["ENGINES", "Engine", "FitData", "device_available", "get_engine", "resolve_engine"]

#: name -> module defining ``ENGINE``. ``engine="auto"`` asks each whether it takes the input, in
#: this order, and falls back on the engine that takes anything (NumPy).
_ENGINES: dict[str, str] = {
    "numpy": "gaussmix.engines._numpy",
    "torch": "gaussmix.engines._torch",
    "dask": "gaussmix.engines._dask",
}
#: The values of the estimators' ``engine`` parameter.
ENGINES: tuple[str, ...] = ("auto", *_ENGINES)


def get_engine(name: str) -> Engine:
    """The engine called ``name``."""
    from gaussmix._validation import check_choice

    return importlib.import_module(_ENGINES[check_choice(name, "engine", tuple(_ENGINES))]).ENGINE


def resolve_engine(engine: Any, device: Any, X: Any) -> Engine:
    """The engine that runs for input ``X``, given the estimator's ``engine`` and ``device``."""
    from gaussmix._validation import check_choice

    name = check_choice(engine, "engine", ENGINES)
    if name != "auto":
        chosen = get_engine(name)
        if device is not None and not chosen.uses_device:
            raise InvalidParameterError(
                f"device={device!r} applies to the torch engine only, not engine={name!r}; "
                "use engine='torch' (or 'auto') or device=None."
            )
        return chosen
    engines = [get_engine(candidate) for candidate in _ENGINES]
    for chosen in sorted(engines, key=lambda e: e.fallback):  # specific engines first, the fallback last
        if chosen.accepts(X, device):
            return chosen
    raise AssertionError("the fallback engine accepts every input")  # pragma: no cover


def __getattr__(name: str):
    if name in ("Engine", "FitData"):
        from gaussmix.engines import _base

        return getattr(_base, name)
    raise AttributeError(f"module 'gaussmix.engines' has no attribute {name!r}")


def device_available(device: Any) -> bool:
    """Whether the torch ``device`` (a name or torch.device) can be used here (False without torch)."""
    from gaussmix.engines._torch import device_available as available

    return available(device)
