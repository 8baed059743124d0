"""The uniform numbers of :mod:`gaussmix.em.sampling` as one loop, for numba to compile (see
:mod:`gaussmix._compiled`).

The same integer arithmetic as :func:`gaussmix.em.sampling.uniforms`'s NumPy
path, bit for bit (unsigned 64-bit products wrap around in both), in one
pass instead of a dozen array operations: a search draws a few rows at a
time, many times, from a few hundred. Everything here is in the subset of
Python numba compiles; nothing imports numba.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_UNIT = 2.0**-53


def uniforms(prints: np.ndarray, key: np.uint64, out: np.ndarray) -> None:
    """``out[i]`` := the uniform number on (0, 1) of fingerprint ``prints[i]`` for a stream's ``key``."""
    for i in range(prints.shape[0]):
        z = prints[i] ^ key
        z = z ^ (z >> _S30)
        z = z * _M1
        z = z ^ (z >> _S27)
        z = z * _M2
        z = z ^ (z >> _S31)
        out[i] = (np.float64(z >> _S11) + 0.5) * _UNIT


def largest_keys(keys: np.ndarray, prints: np.ndarray, count: int, out: np.ndarray) -> int:
    """The positions of the ``count`` largest finite ``keys``, largest first (equal keys: the smaller
    fingerprint first), into ``out``; returns how many there are (fewer where fewer keys are finite)."""
    found = 0
    for i in range(keys.shape[0]):
        key = keys[i]
        if not key > -np.inf:
            continue
        if found == count:  # full: the newcomer must beat the last one kept
            last = out[found - 1]
            if key < keys[last] or (key == keys[last] and prints[i] > prints[last]):
                continue
            found -= 1
        place = found
        while place > 0:
            other = out[place - 1]
            if keys[other] > key or (keys[other] == key and prints[other] < prints[i]):
                break
            out[place] = other
            place -= 1
        out[place] = i
        found += 1
    return found
