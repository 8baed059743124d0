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


@functools.cache
def _compile(function: types.FunctionType) -> Callable | None:
    """``function`` and every function of its module it may call, compiled together.

    Compiled code calls only compiled functions, so each plain function of
    the module is compiled in a copy of the module's namespace in which its
    helpers are their compiled versions; the module itself is left as it is.
    """
    numba = _numba()
    if numba is None:
        return None
    namespace = dict(function.__globals__)
    for key, value in function.__globals__.items():
        if isinstance(value, types.FunctionType) and value.__module__ == function.__module__:
            copy = types.FunctionType(value.__code__, namespace, value.__name__, value.__defaults__)
            copy.__module__, copy.__qualname__ = value.__module__, value.__qualname__
            namespace[key] = _jit(numba, copy)
    return namespace[function.__name__]


def _jit(numba, function: types.FunctionType):
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # nowhere to cache compiled code: compile in every process
        return numba.njit(nogil=True)(function)


def compiled(function: Callable) -> Callable | None:
    """``function`` compiled by numba (cached), or None when numba is unavailable or disabled."""
    if not ENABLED:
        return None
    return _compile(function)
