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


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z):
    z = z ^ (z >> _S30)
    z = z * _M1
    z = z ^ (z >> _S27)
    z = z * _M2
    return z ^ (z >> _S31)


def _grid_bits(value, center, scale, grid, limit):
    """A value standardised, rounded to the grid and clipped, as the bits of a 64-bit integer."""
    g = np.rint((value - center) / scale * grid)
    g = min(max(g, -limit), limit)
    return np.uint64(np.int64(g))


def fingerprints(rows: np.ndarray, center: np.ndarray, scale: np.ndarray, grid: float, limit: float,
                 salts: np.ndarray, block: int, out: np.ndarray) -> None:
    """``out[i]`` := the fingerprint of ``rows[i]`` (float64), as :func:`gaussmix.em.sampling.fingerprints`
    computes it (values on a grid of ``1 / grid`` standard deviations, clipped at ``limit``): a chain over
    the features, or, with ``salts`` (one per feature), over blocks of ``block`` features."""
    n, d = rows.shape
    for i in range(n):
        h = _GOLDEN
        if salts.shape[0] == 0:
            for j in range(d):
                h = _mix(h + _grid_bits(rows[i, j], center[j], scale[j], grid, limit) + _GOLDEN)
        else:
            for start in range(0, d, block):
                total = np.uint64(0)
                for j in range(start, min(start + block, d)):
                    total += _mix(_grid_bits(rows[i, j], center[j], scale[j], grid, limit) + salts[j])
                h = _mix(h + total + _GOLDEN)
        out[i] = h
