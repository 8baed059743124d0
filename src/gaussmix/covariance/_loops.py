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


def shifted_column_squares(values, shift, out):
    """``out[j]`` := the sum over ``i`` of ``(values[i, j] - shift[i])**2``, the squared length of column ``j``
    of ``values`` less ``shift``: one pass over ``values``, which are left as they are."""
    n_rows, n_columns = values.shape
    for j in range(n_columns):
        out[j] = 0.0
    for i in range(n_rows):
        row, offset = values[i], shift[i]
        for j in range(n_columns):
            difference = row[j] - offset
            out[j] += difference * difference


def bearing_rows_scaled(columns, weights, norms, fraction, eps, kept, scales, out):
    """The rows (``columns``, (d, m): one row of data per column) that bear on a weighted second moment, each
    times the square root of its weight, into the first columns of ``out`` (d, m); returns how many.

    A row bears where its term ``weights[i] * norms[i]`` is above ``eps / m``
    of their total; where that is more than ``fraction`` of the rows, every
    row is written (as ``_bearing_rows`` decides). ``kept`` (integers) and
    ``scales``, m long, are scratch.
    """
    n_features, n_rows = columns.shape
    total = 0.0
    for i in range(n_rows):
        total += weights[i] * norms[i]
    bound = eps / n_rows * total
    count = 0
    for i in range(n_rows):
        count += weights[i] * norms[i] > bound
    every = count > fraction * n_rows
    written = 0
    for i in range(n_rows):
        weight = weights[i]
        if every or weight * norms[i] > bound:
            kept[written] = i
            scales[written] = math.sqrt(weight)
            written += 1
    for c in range(n_features):
        source, target = columns[c], out[c]
        for j in range(written):
            target[j] = source[kept[j]] * scales[j]
    return written
