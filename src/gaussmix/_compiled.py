"""Optional compiled loops (numba).

Some algorithms are a long sequence of small dependent steps, where NumPy
spends its time calling rather than computing (the hierarchy's merges are
one). Their loops are written once, in the subset of Python that numba
compiles, in modules that never import numba themselves; :func:`compiled`
turns such a function into machine code on first use and caches the code
on disk (numba's ``cache=True``), so later processes load it in well under
a second.

Nothing here is required: without numba (not installed, or
``GAUSSMIX_NUMBA=0`` in the environment) :func:`compiled` returns None and
the caller takes its NumPy path, which gives the same results. numba is
imported only when a compiled loop is first needed, so ``import gaussmix``
stays light.
"""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable

#: Set to False to use the NumPy paths (tests compare the two).
ENABLED = os.environ.get("GAUSSMIX_NUMBA", "1") != "0"


@functools.cache
def _numba():
    try:
        import numba
    except ImportError:  # an optional dependency
        return None
    return numba


def _compile(function: types.FunctionType) -> Callable | None:
    """``function`` compiled, with every function of its module it may call (see :func:`_compiled_module`)."""
    namespace = _compiled_module(function.__module__, function.__globals__)
    return None if namespace is None else namespace[function.__name__]


_MODULES: dict[str, dict | None] = {}


def _compiled_module(name: str, globals_: dict) -> dict | None:
    """A copy of module ``name``'s namespace in which each of its plain functions is compiled.

    Compiled code calls only compiled functions, so each function is copied
    into this namespace, where its helpers are their compiled versions; the
    module itself is left as it is. A function imported from another module
    of loops (one that sets ``COMPILED_LOOPS = True``) is compiled with
    them, in this namespace (so it may use only names this module has too).
    One namespace per module: a helper that several entry points call is
    compiled once for each argument types.
    """
    if name not in _MODULES:
        numba = _numba()
        if numba is None:
            _MODULES[name] = None
        else:
            namespace = dict(globals_)
            for key, value in globals_.items():
                if isinstance(value, types.FunctionType) and (value.__module__ == name or _is_loop(value)):
                    copy = types.FunctionType(value.__code__, namespace, value.__name__, value.__defaults__)
                    copy.__module__, copy.__qualname__ = value.__module__, value.__qualname__
                    namespace[key] = _jit(numba, copy, _flags(sys.modules.get(value.__module__), key))
            _MODULES[name] = namespace
    return _MODULES[name]


def _is_loop(function: types.FunctionType) -> bool:
    return bool(getattr(sys.modules.get(function.__module__), "COMPILED_LOOPS", False))


#: Division by zero gives inf or NaN, as in NumPy (the loops' NumPy counterparts), rather than raising:
#: a division that may raise is never turned into SIMD code.
_OPTIONS = dict(nogil=True, error_model="numpy")


def _jit(numba, function: types.FunctionType, fastmath: frozenset = frozenset()):
    """``function`` compiled with numba's ``fastmath`` flags (a loop module names the functions that take
    them, see :func:`_flags`)."""
    options = dict(_OPTIONS, fastmath=set(fastmath)) if fastmath else _OPTIONS
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # nowhere to cache compiled code: compile in every process
        return numba.njit(**options)(function)


def _flags(module: types.ModuleType | None, name: str) -> frozenset:
    """The ``fastmath`` flags of a loop module's function ``name``: ``reassoc`` where its sums may be taken
    in any order (so in SIMD lanes; the module lists such functions, short dot products, in its
    ``REASSOCIATED``), ``contract`` where a product and a sum may be one rounding (FMA instructions; the
    module's ``CONTRACTED``). Loops that must give NumPy's numbers to the last bit take neither."""
    flags = set()
    if name in getattr(module, "REASSOCIATED", ()):
        flags.add("reassoc")
    if name in getattr(module, "CONTRACTED", ()):
        flags.add("contract")
    return frozenset(flags)


def compiled(function: Callable) -> Callable | None:
    """``function`` compiled by numba (cached), or None when numba is unavailable or disabled."""
    if not ENABLED:
        return None
    return _compile(function)
