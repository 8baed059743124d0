"""The E-step and its statistics as compiled loops over a chunk's rows, and whole EM iterations of small
data (see :mod:`gaussmix._compiled`).

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
:data:`KINDS` names which arrays each layout fills.

:func:`variance_iteration` and :func:`full_iteration` make a whole EM
iteration (E-step, statistics and M-step) of one or several mixtures from
the same passes; they live here because a compiled function can call only
the compiled functions of its own module. Everything here is in the
subset of Python numba compiles; nothing imports numba.
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
    centred = _centred(X, shift)
    resp = np.empty((X.shape[0], log_norm.shape[0]))
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
    _first_moments(centred, resp, counts, first)
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


def _centred(X, shift):
    """The rows minus ``shift``."""
    n_rows, d = X.shape
    centred = np.empty((n_rows, d))
    for i in range(n_rows):
        for j in range(d):
            centred[i, j] = X[i, j] - shift[j]
    return centred


def _first_moments(centred, resp, counts, first):
    """Add each component's total responsibility to ``counts`` and its weighted sum of rows to ``first``."""
    for i in range(centred.shape[0]):
        for c in range(resp.shape[1]):
            r = resp[i, c]
            counts[c] += r
            for j in range(centred.shape[1]):
                first[c, j] += r * centred[i, j]


def _responsibilities(values, log_norm, weights, groups, log_likelihood):
    """Squared distances ``values`` (rows, C) into weighted responsibilities, in place; each row's total.

    Adds each row's weighted log-density within each group to
    ``log_likelihood`` (NaN where it is 0 and the weight is not). Three
    passes: the log-densities shifted by each row's largest in its group,
    their exponentials all at once (:func:`_exp_in_place`), then the
    normalisation.
    """
    n_rows, n_total = values.shape
    n_per = n_total // groups
    weighted = weights.shape[0] > 0
    row_weights = np.zeros(n_rows)
    tops = np.empty((n_rows, groups))
    for i in range(n_rows):
        for g in range(groups):
            lo = g * n_per
            top = -math.inf
            for c in range(lo, lo + n_per):
                values[i, c] = log_norm[c] - 0.5 * values[i, c]
                if values[i, c] > top:
                    top = values[i, c]
            if not math.isfinite(top):
                top = 0.0
            tops[i, g] = top
            for c in range(lo, lo + n_per):
                values[i, c] -= top
    _exp_in_place(values.reshape(-1))
    for i in range(n_rows):
        w = weights[i] if weighted else 1.0
        for g in range(groups):
            lo = g * n_per
            total = 0.0
            for c in range(lo, lo + n_per):
                total += values[i, c]
            density = math.log(total) + tops[i, g] if total > 0.0 else -math.inf
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


#: exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 (ln 2 in two parts, the first exact in k ln 2)
LOG2E = 1.4426950408889634
LN2_HIGH = 0.6931471803691238
LN2_LOW = 1.9082149292705877e-10
ROUNDER = 6755399441055744.0  # 1.5 * 2^52: x + ROUNDER - ROUNDER rounds x to an integer (|x| < 2^51)
ROUNDER_BITS = 4843621399236968448  # the bits of ROUNDER as an int64


def _exp_in_place(a):
    """``a = exp(a)`` for a 1-d float64 array, in loops the compiler turns into SIMD code.

    On [-708, 709] a degree-12 Taylor polynomial of ``exp(r)``, ``|r| <= ln 2 / 2``
    (relative error below 4e-16), times ``2^k`` built from its exponent bits;
    below -745.2 the result is 0, and elsewhere (the edges, infinities, NaN)
    ``math.exp``. NumPy's own exponential is several times slower on CPUs
    without AVX-512, and libm's one by one too.
    """
    n = a.shape[0]
    polynomial = np.empty(n)
    powers = np.empty(n)
    for i in range(n):
        x = a[i]
        x = x if x > -708.0 else -708.0
        x = x if x < 709.0 else 709.0
        y = x * LOG2E + ROUNDER
        k = y - ROUNDER
        r = (x - k * LN2_HIGH) - k * LN2_LOW
        polynomial[i] = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
            1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800 + r * (
                1.0 / 39916800 + r * (1.0 / 479001600))))))))))))
        powers[i] = y
    bits = powers.view(np.int64)
    for i in range(n):
        bits[i] = (bits[i] - ROUNDER_BITS + 1023) << 52
    for i in range(n):
        x = a[i]
        if x >= -708.0 and x <= 709.0:
            a[i] = polynomial[i] * powers[i]
        elif x < -745.2:
            a[i] = 0.0
        else:
            a[i] = math.exp(x)


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


LOG_2PI = math.log(2.0 * math.pi)


def variance_iteration(X, shift, weights, kind, means, variances, mix_weights, groups, reg, reg_mean,
                       empty_weight, new_means, new_variances, new_precisions, new_weights, log_likelihood):
    """One EM iteration of ``groups`` mixtures with diagonal (``DIAGONAL``) or scalar (``SCALAR``) variances.

    The E-step (as :func:`estep_rows`) under the parameters ``means`` (C, d),
    ``variances`` ((C, d) or (C, 1)) and ``mix_weights`` (C,), then the
    maximum-likelihood M-step (``reg`` (d,) added to each variance, or its
    mean ``reg_mean`` to a scalar one) into the ``new_`` arrays, with the
    precisions' Cholesky factors ``1 / sqrt(variance)``. ``log_likelihood``
    (groups,) receives each mixture's weighted log-likelihood.

    Returns False, leaving the outputs incomplete, where the iteration needs
    more than these arithmetic steps: a weight that is 0, a log-likelihood
    that is not finite, a component with at most ``empty_weight`` of
    responsibility, or a variance that is not positive and finite. The
    caller then makes the iteration its general way.
    """
    n_components, d = means.shape
    for c in range(n_components):
        if not mix_weights[c] > 0.0:
            return False
    precisions = np.empty(variances.shape)
    linear = np.empty((n_components, d))
    const = np.zeros(n_components)
    log_norm = np.empty(n_components)
    for c in range(n_components):
        log_det = 0.0
        for j in range(variances.shape[1]):
            factor = 1.0 / math.sqrt(variances[c, j])
            precisions[c, j] = factor * factor
            log_det += math.log(factor)
        if kind == SCALAR:
            log_det *= d
        log_norm[c] = math.log(mix_weights[c]) + log_det - 0.5 * d * LOG_2PI
        for j in range(d):
            centred = means[c, j] - shift[j]
            if kind == SCALAR:
                linear[c, j] = centred
                const[c] += centred * centred
            else:
                linear[c, j] = centred * precisions[c, j]
                const[c] += centred * centred * precisions[c, j]
    counts = np.zeros(n_components)
    first = np.zeros((n_components, d))
    second = np.zeros(variances.shape)
    centred = _centred(X, shift)
    resp = np.empty((X.shape[0], n_components))
    if kind == SCALAR:
        norms = _squared_norms(centred)
        _scalar_distances(centred, norms, linear, const, precisions[:, 0].copy(), resp)
    else:
        _diagonal_distances(centred, precisions, linear, const, resp)
    _responsibilities(resp, log_norm, weights, groups, log_likelihood)
    _first_moments(centred, resp, counts, first)
    if kind == SCALAR:
        _scalar_second(norms, resp, second)
    else:
        _diagonal_second(centred, resp, second)
    if not _new_weights(log_likelihood, counts, empty_weight, new_weights):
        return False
    for c in range(n_components):
        spread = 0.0
        for j in range(d):
            mean = first[c, j] / counts[c]
            new_means[c, j] = shift[j] + mean
            if kind == SCALAR:
                spread += first[c, j] * first[c, j]
            else:
                value = (second[c, j] - first[c, j] * first[c, j] / counts[c]) / counts[c] + reg[j]
                if not (value > 0.0 and math.isfinite(value)):
                    return False
                new_variances[c, j] = value
                new_precisions[c, j] = 1.0 / math.sqrt(value)
        if kind == SCALAR:
            value = (second[c, 0] - spread / counts[c]) / (counts[c] * d) + reg_mean
            if not (value > 0.0 and math.isfinite(value)):
                return False
            new_variances[c, 0] = value
            new_precisions[c, 0] = 1.0 / math.sqrt(value)
    return True


def full_iteration(X, shift, weights, means, factors, mix_weights, groups, pooled, reg, empty_weight,
                   new_means, new_covariances, new_factors, new_weights, log_likelihood):
    """One EM iteration of ``groups`` mixtures with full covariances (see :func:`variance_iteration`).

    ``factors`` (C, d, d) are the precisions' upper-triangular Cholesky
    factors ``U`` (precision ``U U'``) of each component. The M-step
    estimates a covariance per component, or with ``pooled`` one per
    mixture from its components' pooled scatter (its components' factors
    are then its own, repeated), adds ``reg`` (d,) to its diagonal and
    factors it (lower Cholesky factor ``L``, then ``U = (L^-1)'``) into
    ``new_covariances`` and ``new_factors`` (C or ``groups``, d, d).
    Returns False where :func:`variance_iteration` does, or where a new
    covariance has no Cholesky factor.
    """
    n_components, d = means.shape
    for c in range(n_components):
        if not mix_weights[c] > 0.0:
            return False
    n_packed = d * (d + 1) // 2
    packed = np.empty((n_components, n_packed))
    linear = np.empty((n_components, d))
    const = np.zeros(n_components)
    log_norm = np.empty(n_components)
    precision = np.empty((d, d))
    centred = np.empty(d)
    for c in range(n_components):
        log_det = 0.0
        for a in range(d):
            log_det += math.log(factors[c, a, a])
            for b in range(a, d):
                value = 0.0
                for k in range(d):
                    value += factors[c, a, k] * factors[c, b, k]
                precision[a, b] = value
                precision[b, a] = value
        log_norm[c] = math.log(mix_weights[c]) + log_det - 0.5 * d * LOG_2PI
        for a in range(d):
            centred[a] = means[c, a] - shift[a]
        q = 0
        for a in range(d):
            value = 0.0
            for b in range(d):
                value += precision[a, b] * centred[b]
            linear[c, a] = value
            const[c] += centred[a] * value
            for b in range(a, d):
                packed[c, q] = precision[a, b] if a == b else 2.0 * precision[a, b]
                q += 1
    counts = np.zeros(n_components)
    first = np.zeros((n_components, d))
    second = np.zeros((n_components, n_packed))
    centred = _centred(X, shift)
    products = _packed_products(centred)
    resp = np.empty((X.shape[0], n_components))
    _packed_distances(products, centred, packed, linear, const, resp)
    _responsibilities(resp, log_norm, weights, groups, log_likelihood)
    _first_moments(centred, resp, counts, first)
    _packed_second(products, resp, second)
    if not _new_weights(log_likelihood, counts, empty_weight, new_weights):
        return False
    size = n_components // groups
    for c in range(n_components):
        for a in range(d):
            new_means[c, a] = shift[a] + first[c, a] / counts[c]
    lower = np.empty((d, d))
    scatter = np.empty(n_packed)
    for m in range(new_covariances.shape[0]):  # each component's covariance, or each mixture's
        members = range(m * size, (m + 1) * size) if pooled else range(m, m + 1)
        total = 0.0
        for q in range(n_packed):
            scatter[q] = 0.0
        for c in members:
            total += counts[c]
            q = 0
            for a in range(d):
                for b in range(a, d):
                    scatter[q] += second[c, q] - first[c, a] * first[c, b] / counts[c]
                    q += 1
        q = 0
        for a in range(d):
            for b in range(a, d):
                value = scatter[q] / total
                if a == b:
                    value += reg[a]
                new_covariances[m, a, b] = value
                new_covariances[m, b, a] = value
                q += 1
        if not _cholesky_lower(new_covariances[m], lower):
            return False
        _inverse_lower_transposed(lower, new_factors[m])
    return True


def _cholesky_lower(matrix, lower):
    """``lower`` := the lower Cholesky factor of ``matrix``; False if it has none (not positive definite)."""
    d = matrix.shape[0]
    for i in range(d):
        for j in range(i + 1):
            value = matrix[i, j]
            for k in range(j):
                value -= lower[i, k] * lower[j, k]
            if i == j:
                if not (value > 0.0 and math.isfinite(value)):
                    return False
                lower[i, i] = math.sqrt(value)
            else:
                lower[i, j] = value / lower[j, j]
        for j in range(i + 1, d):
            lower[i, j] = 0.0
    return True


def _inverse_lower_transposed(lower, out):
    """``out`` := ``(L^-1)'`` for a lower-triangular ``L`` with a positive diagonal (forward substitution)."""
    d = lower.shape[0]
    for j in range(d):  # column j of L^-1 is row j of out
        for i in range(d):
            if i < j:
                out[j, i] = 0.0
                continue
            value = 1.0 if i == j else 0.0
            for k in range(j, i):
                value -= lower[i, k] * out[j, k]
            out[j, i] = value / lower[i, i]


def _new_weights(log_likelihood, counts, empty_weight, new_weights):
    """Each mixture's weights, its components' counts over their sum, into ``new_weights``.

    False where a mixture's log-likelihood is not finite or one of its
    components has at most ``empty_weight`` of responsibility.
    """
    groups = log_likelihood.shape[0]
    size = counts.shape[0] // groups
    for g in range(groups):
        if not math.isfinite(log_likelihood[g]):
            return False
        total = 0.0
        for c in range(g * size, (g + 1) * size):
            if counts[c] <= empty_weight:
                return False
            total += counts[c]
        for c in range(g * size, (g + 1) * size):
            new_weights[c] = counts[c] / total
    return True

