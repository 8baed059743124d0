"""The distances of k-means++ seeding as one loop, for numba to compile (see :mod:`gaussmix._compiled`).

The same sums as :func:`gaussmix.em.kmeans.distances_to`'s NumPy path, term
for term (each row's squared differences added feature by feature, in
feature order), so both give the same seeds; the loop runs over blocks of
rows that stay in the first-level cache instead of NumPy's three passes
over the rows per centre. Everything here is in the subset of Python numba
compiles; nothing imports numba.
"""

from __future__ import annotations

import numpy as np

#: Rows per block: their running sums stay in the first-level cache.
BLOCK = 512


def distances_to(Zt: np.ndarray, centers: np.ndarray, out: np.ndarray) -> None:
    """``out[i, t]`` := the squared distance of row ``i`` (column ``i`` of ``Zt``, ``(d, m)``) to ``centers[t]``."""
    d, m = Zt.shape
    block = np.empty(BLOCK)
    for start in range(0, m, BLOCK):
        size = min(BLOCK, m - start)
        sums = block[:size]
        for t in range(centers.shape[0]):
            sums[:] = 0.0
            for j in range(d):
                c = centers[t, j]
                row = Zt[j, start : start + size]  # a slice: its loop below becomes SIMD code
                for i in range(size):
                    diff = row[i] - c
                    sums[i] += diff * diff
            for i in range(size):
                out[start + i, t] = sums[i]
