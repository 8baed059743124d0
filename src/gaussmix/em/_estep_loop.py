"""The E-step and its statistics as compiled loops over a chunk's rows (see :mod:`gaussmix._compiled`).

The same arithmetic as :func:`gaussmix.em.kernels.estep_statistics` on the
layouts' kernel arrays (``Layout.kernel_arrays``), in three passes over
the chunk: every row's squared distances to the components, their
normalisation within each group of components into responsibilities, and
the statistics. On a few hundred rows NumPy spends most of an E-step
calling rather than computing, over a dozen passes; these loops do not.

Each pass is one call over the whole chunk, and each kind of distance has
its own tight loop: a call per row, or a branch per component, costs more
than the arithmetic (numba passes arrays between functions with reference
counting). One signature serves every layout (numba compiles each set of
argument types once), so the arrays a layout does not use are empty;
:data:`KINDS` names which arrays each layout fills. Everything here is in
the subset of Python numba compiles; nothing imports numba.
"""

from __future__ import annotations

import math

import numpy as np

FULL_PACKED, FULL_WHITENED, SHARED, DIAGONAL, SHARED_DIAGONAL, SCALAR = range(6)

#: For each kind: the layout's kernel arrays in the order of the loop's ``matrices`` (3-d), ``table``,
#: ``linear`` (each (C, .)) and ``const``, ``scales`` (each (C,)) arguments ("" where unused).
KINDS = {
    FULL_PACKED: ("", "packed", "linear", "const", ""),
    FULL_WHITENED: ("whiten", "", "means", "", ""),
    SHARED: ("whiten", "", "means", "const", ""),
    DIAGONAL: ("", "precisions", "linear", "const", ""),
    SHARED_DIAGONAL: ("", "precisions", "linear", "const", ""),
    SCALAR: ("", "", "means", "const", "precisions"),
}


def estep_rows(X, shift, weights, kind, log_norm, matrices, table, linear, const, scales, groups,
               counts, first, second, log_likelihood):
    """Add the statistics of rows ``X`` (not centred) under the kernel arrays to the outputs.

    ``log_norm`` has one entry per component (``C = groups * K``);
    responsibilities are normalised within each group of ``K`` consecutive
    components. ``weights`` is empty for unit weights. The outputs are
    float64 and added to: ``counts`` (C,), ``first`` (C, d), ``second``
    (rows: C, or 1 for a pooled moment; columns: the layout's), and
    ``log_likelihood`` (groups,), to which a row no component of a group
    can explain adds NaN unless its weight is 0 (its responsibilities
    there are 0).
    """
    n_rows, d = X.shape
    centred = np.empty((n_rows, d))
    for i in range(n_rows):
        for j in range(d):
            centred[i, j] = X[i, j] - shift[j]
    resp = np.empty((n_rows, log_norm.shape[0]))
    full = kind == FULL_PACKED or kind == FULL_WHITENED
    products = _packed_products(centred) if full else np.empty((0, 0))
    norms = _squared_norms(centred) if kind == SCALAR else np.empty(0)
    if kind == FULL_PACKED:
        _packed_distances(products, centred, table, linear, const, resp)
    elif kind == FULL_WHITENED:
        _whitened_distances(centred, matrices, linear, resp)
    elif kind == SHARED:
        _shared_distances(centred, matrices, linear, const, resp)
    elif kind == DIAGONAL or kind == SHARED_DIAGONAL:
        _diagonal_distances(centred, table, linear, const, resp)
    else:
        _scalar_distances(centred, norms, linear, const, scales, resp)
    row_weights = _responsibilities(resp, log_norm, weights, groups, log_likelihood)
    for i in range(n_rows):
        for c in range(resp.shape[1]):
            r = resp[i, c]
            counts[c] += r
            for j in range(d):
                first[c, j] += r * centred[i, j]
    if full:
        _packed_second(products, resp, second)
    elif kind == DIAGONAL:
        _diagonal_second(centred, resp, second)
    elif kind == SCALAR:
        _scalar_second(norms, resp, second)
    elif kind == SHARED:
        _pooled_second(centred, row_weights, second)
    else:
        _pooled_diagonal_second(centred, row_weights, second)


def _responsibilities(values, log_norm, weights, groups, log_likelihood):
    """Squared distances ``values`` (rows, C) into weighted responsibilities, in place; each row's total.

    Adds each row's weighted log-density within each group to
    ``log_likelihood`` (NaN where it is 0 and the weight is not).
    """
    n_rows, n_total = values.shape
    n_per = n_total // groups
    weighted = weights.shape[0] > 0
    row_weights = np.zeros(n_rows)
    for i in range(n_rows):
        w = weights[i] if weighted else 1.0
        for g in range(groups):
            lo = g * n_per
            top = -math.inf
            for c in range(lo, lo + n_per):
                values[i, c] = log_norm[c] - 0.5 * values[i, c]
                if values[i, c] > top:
                    top = values[i, c]
            if not math.isfinite(top):
                top = 0.0
            total = 0.0
            for c in range(lo, lo + n_per):
                values[i, c] = math.exp(values[i, c] - top)
                total += values[i, c]
            density = math.log(total) + top if total > 0.0 else -math.inf
            if not math.isfinite(density):
                if w > 0.0:
                    log_likelihood[g] = math.nan
                for c in range(lo, lo + n_per):
                    values[i, c] = 0.0
                continue
            log_likelihood[g] += w * density
            scale = w / total
            for c in range(lo, lo + n_per):
                values[i, c] *= scale
                row_weights[i] += values[i, c]
    return row_weights


def _packed_products(centred):
    """Each row's products ``x_a x_b`` for ``a <= b``, in packed upper-triangular order: (rows, d(d+1)/2)."""
    n_rows, d = centred.shape
    products = np.empty((n_rows, d * (d + 1) // 2))
    for i in range(n_rows):
        p = 0
        for a in range(d):
            for b in range(a, d):
                products[i, p] = centred[i, a] * centred[i, b]
                p += 1
    return products


def _packed_distances(products, centred, packed, linear, const, out):
    """``packed_c . q(x) - 2 linear_c . x + const_c``, ``q(x)`` a row's packed products (full)."""
    n_rows, d = centred.shape
    for i in range(n_rows):
        for c in range(out.shape[1]):
            value = 0.0
            for q in range(products.shape[1]):
                value += packed[c, q] * products[i, q]
            cross = 0.0
            for j in range(d):
                cross += linear[c, j] * centred[i, j]
            out[i, c] = value - 2.0 * cross + const[c]


def _whitened_distances(centred, whiten, means, out):
    """``|W_c x - m_c|^2``, with ``m_c`` the whitened mean (full, few components)."""
    n_rows, d = centred.shape
    for i in range(n_rows):
        for c in range(out.shape[1]):
            value = 0.0
            for a in range(d):
                z = -means[c, a]
                for b in range(d):
                    z += whiten[c, a, b] * centred[i, b]
                value += z * z
            out[i, c] = value


def _shared_distances(centred, whiten, means, const, out):
    """``|z|^2 - 2 z . m_c + const_c`` for each row whitened once, ``z = W x`` (shared)."""
    n_rows, d = centred.shape
    z = np.empty(d)
    for i in range(n_rows):
        norm = 0.0
        for a in range(d):
            value = 0.0
            for b in range(d):
                value += whiten[0, a, b] * centred[i, b]
            z[a] = value
            norm += value * value
        for c in range(out.shape[1]):
            cross = 0.0
            for j in range(d):
                cross += means[c, j] * z[j]
            out[i, c] = norm - 2.0 * cross + const[c]


def _diagonal_distances(centred, precisions, linear, const, out):
    """``precisions_c . x^2 - 2 linear_c . x + const_c`` (diagonal and shared diagonal)."""
    n_rows, d = centred.shape
    for i in range(n_rows):
        for c in range(out.shape[1]):
            value = 0.0
            for j in range(d):
                x = centred[i, j]
                value += (precisions[c, j] * x - 2.0 * linear[c, j]) * x
            out[i, c] = value + const[c]


def _squared_norms(centred):
    """Each row's ``|x|^2``."""
    n_rows, d = centred.shape
    norms = np.zeros(n_rows)
    for i in range(n_rows):
        for j in range(d):
            norms[i] += centred[i, j] * centred[i, j]
    return norms


def _scalar_distances(centred, norms, means, const, precisions, out):
    """``p_c (|x|^2 - 2 x . mu_c + |mu_c|^2)``."""
    n_rows, d = centred.shape
    for i in range(n_rows):
        for c in range(out.shape[1]):
            cross = 0.0
            for j in range(d):
                cross += means[c, j] * centred[i, j]
            out[i, c] = (norms[i] - 2.0 * cross + const[c]) * precisions[c]


def _packed_second(products, resp, second):
    for i in range(products.shape[0]):
        for c in range(resp.shape[1]):
            r = resp[i, c]
            if r != 0.0:
                for q in range(products.shape[1]):
                    second[c, q] += r * products[i, q]


def _diagonal_second(centred, resp, second):
    n_rows, d = centred.shape
    for i in range(n_rows):
        for c in range(resp.shape[1]):
            r = resp[i, c]
            for j in range(d):
                second[c, j] += r * centred[i, j] * centred[i, j]


def _scalar_second(norms, resp, second):
    for i in range(norms.shape[0]):
        for c in range(resp.shape[1]):
            second[c, 0] += resp[i, c] * norms[i]


def _pooled_second(centred, row_weights, second):
    n_rows, d = centred.shape
    for i in range(n_rows):
        r = row_weights[i]
        for a in range(d):
            for b in range(d):
                second[a, b] += r * centred[i, a] * centred[i, b]


def _pooled_diagonal_second(centred, row_weights, second):
    n_rows, d = centred.shape
    for i in range(n_rows):
        for j in range(d):
            second[0, j] += row_weights[i] * centred[i, j] * centred[i, j]
