"""The data's feature moments as loops, for numba to compile (see :mod:`gaussmix._compiled`).

The same sums as :meth:`gaussmix.engines._chunked.ChunkedData.feature_moments`'s
NumPy path, term for term (each column summed row after row, as NumPy
reduces the leading axis of a chunk), in one pass per chunk instead of half
a dozen passes and their temporaries. Everything here is in the subset of
Python numba compiles; nothing imports numba.
"""

from __future__ import annotations

import numpy as np


def column_sums(X: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """``out[j]`` := the sum over rows of ``X[i, j]`` (times ``weights[i]`` unless ``weights`` is empty)."""
    m, d = X.shape
    out[:] = 0.0
    if weights.shape[0] == 0:
        for i in range(m):
            for j in range(d):
                out[j] += np.float64(X[i, j])
    else:
        for i in range(m):
            w = weights[i]
            for j in range(d):
                out[j] += np.float64(X[i, j]) * w


def centred_squares(X: np.ndarray, mean: np.ndarray, weights: np.ndarray, squares: np.ndarray,
                    spread: np.ndarray) -> None:
    """``squares[j]`` := the (weighted) sum of ``(X[i, j] - mean[j])**2``; ``spread[j]`` := the largest
    ``|X[i, j] - mean[j]|`` over rows of positive weight, or 0 (``weights`` empty: all rows count, once)."""
    m, d = X.shape
    squares[:] = 0.0
    spread[:] = 0.0
    weighted = weights.shape[0] > 0
    for i in range(m):
        w = weights[i] if weighted else 1.0
        for j in range(d):
            diff = np.float64(X[i, j]) - mean[j]
            if weighted:
                squares[j] += diff * diff * w
            else:
                squares[j] += diff * diff
            if w > 0 and abs(diff) > spread[j]:
                spread[j] = abs(diff)
