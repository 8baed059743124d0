"""Compiled loops of the covariance layouts (see :mod:`gaussmix._compiled`; nothing here imports numba)."""

from __future__ import annotations

import math

import numpy as np


def factorless(matrices, out):
    """``out[m]`` := whether ``matrices[m]`` (symmetric, its lower triangle read) has no Cholesky factor.

    The factorisation of each matrix stops at its first pivot that is not
    positive (or not finite), as LAPACK's does; one call for a whole stack
    of small matrices costs less than NumPy's fixed cost of one.
    """
    n_matrices, d = matrices.shape[0], matrices.shape[1]
    factor = np.empty((d, d))
    for m in range(n_matrices):
        failed = False
        for i in range(d):
            for j in range(i + 1):
                value = matrices[m, i, j]
                for k in range(j):
                    value -= factor[i, k] * factor[j, k]
                if i == j:
                    if not (value > 0.0 and math.isfinite(value)):
                        failed = True
                        break
                    factor[i, i] = math.sqrt(value)
                else:
                    factor[i, j] = value / factor[j, j]
            if failed:
                break
        out[m] = failed
