"""Compiled loops of the covariance layouts (see :mod:`gaussmix._compiled`; nothing here imports numba)."""

from __future__ import annotations

import math

import numpy as np

#: Every function here is written for numba: a module of loops that imports one compiles it with its own.
COMPILED_LOOPS = True


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


def rotate_pairs(inner, orientation, precisions):
    """One sweep of plane rotations of a common orientation, in place: what
    :func:`gaussmix.covariance.constrained._rotate_pairs` does with NumPy, one scalar at a time (each
    rotation is a few dozen operations, far below NumPy's cost of a call)."""
    n_components, d = inner.shape[0], inner.shape[1]
    for j in range(d - 1):
        for l in range(j + 1, d):
            p = 0.0
            q = 0.0
            for k in range(n_components):
                gap = precisions[k, j] - precisions[k, l]
                p += gap * (inner[k, j, j] - inner[k, l, l])
                q += gap * inner[k, j, l]
            p *= 0.5
            size = math.hypot(p, q)
            if size == 0.0:
                continue
            c2 = -p / size
            s2 = -q / size
            c = math.sqrt(0.5 * (1.0 + c2))
            s = s2 / (2.0 * c) if c > 0.0 else 1.0
            for r in range(d):
                a = orientation[r, j]
                b = orientation[r, l]
                orientation[r, j] = c * a + s * b
                orientation[r, l] = c * b - s * a
            for k in range(n_components):
                for m in range(d):
                    a = inner[k, j, m]
                    b = inner[k, l, m]
                    inner[k, j, m] = c * a + s * b
                    inner[k, l, m] = c * b - s * a
                for m in range(d):
                    a = inner[k, m, j]
                    b = inner[k, m, l]
                    inner[k, m, j] = c * a + s * b
                    inner[k, m, l] = c * b - s * a
