"""The E-step and its statistics as compiled loops over a chunk's rows, and whole EM iterations and runs of
small data (see :mod:`gaussmix._compiled`).

The same arithmetic as :func:`gaussmix.em.kernels.estep_statistics` on the
layouts' kernel arrays (``Layout.kernel_arrays``): every row's squared
distances to the components, their normalisation within each group of
components into responsibilities, and the statistics. On a few hundred rows
NumPy spends most of an E-step calling rather than computing, over a dozen
passes; these loops do not.

Each pass is one call over the whole chunk, and each kind of distance has
its own tight loop. The innermost loop of each runs along contiguous
memory over independent sums (the rows of a component for the distances
and responsibilities, the components of a row for the statistics), which
the compiler turns into SIMD code; a sum along a row's few features is one
chain of dependent additions, and a call per row, or a branch per
component, costs more than the arithmetic. One signature serves every
layout (numba compiles each set of argument types once), so the arrays a
layout does not use are empty; :data:`KINDS` names which arrays each layout
fills.

:func:`runs` makes whole EM iterations (E-step, statistics and M-step) of
one or several mixtures from the same passes, until each mixture
converges (one iteration, with a limit of one); it lives here because a compiled function
can call only the compiled functions of its own module. Everything here is
in the subset of Python numba compiles; nothing imports numba.
"""

from __future__ import annotations

import math

import numpy as np

from gaussmix.covariance._loops import rotate_pairs

FULL_PACKED, FULL_WHITENED, SHARED, DIAGONAL, SHARED_DIAGONAL, SCALAR = range(6)
#: Below this many components, sums over rows run along the terms innermost (see :func:`_weighted_sums`).
FEW_COMPONENTS = 8
#: How the compiled M-steps tie a mixture's components together: not at all, or as mclust's models estimate
#: them: one variance (EII), one volume (EVI, EVV), one shape (VEI, VEV), one volume and shape (EEI, EEV), one
#: shape and orientation (VEE), one orientation (VVE), one volume and orientation (EVE)
(INDEPENDENT, EQUAL_VARIANCE, EQUAL_VOLUME, EQUAL_SHAPE, EQUAL_VOLUME_AND_SHAPE, EQUAL_SHAPE_AND_ORIENTATION,
 EQUAL_ORIENTATION, EQUAL_VOLUME_AND_ORIENTATION) = range(8)

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
    full = kind == FULL_PACKED or kind == FULL_WHITENED
    centred, columns, products, product_columns, norms = _prepared(X, shift, full, kind == SCALAR)
    distances = np.empty((log_norm.shape[0], X.shape[0]))
    if kind == FULL_PACKED:
        _packed_distances(product_columns, columns, table, linear, const, distances)
    elif kind == FULL_WHITENED:
        _whitened_distances(columns, matrices, linear, distances)
    elif kind == SHARED:
        _shared_distances(columns, matrices, linear, const, distances)
    elif kind == DIAGONAL or kind == SHARED_DIAGONAL:
        _diagonal_distances(columns, table, linear, const, distances)
    else:
        _scalar_distances(columns, norms, linear, const, scales, distances)
    resp = np.empty((X.shape[0], log_norm.shape[0]))
    row_weights = _responsibilities(distances, log_norm, weights, groups, log_likelihood, resp)
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


#: Rows :func:`few_components_rows` takes at a time (their centred copies stay in the L1 and L2 caches).
ROW_BLOCK = 256
#: Functions compiled with their sums in any order (see :func:`gaussmix._compiled.compiled`): dot products
#: along a row's features, whose terms are then summed in SIMD lanes (in order, one dependent chain).
REASSOCIATED = ("_row_dot", "_row_dots")
#: Functions compiled with products and sums fused where the CPU can (FMA): the exponential and the logarithm,
#: whose results differ from NumPy's in the last bits anyway (the exponential: 1.8 -> 1.4 ns a value).
CONTRACTED = ("_exp_into", "_log_into")


def few_components_rows(X, shift, weights, kind, log_norm, table, linear, const, scales, groups,
                        counts, first, second, log_likelihood):
    """:func:`estep_rows` for diagonal, shared diagonal and scalar covariances with few components, by rows.

    With fewer than :data:`FEW_COMPONENTS` components a loop over the
    components is too short for SIMD code, and the passes of
    :func:`estep_rows` over a transposed copy of the chunk cost more than
    the arithmetic. Here the rows are taken :data:`ROW_BLOCK` at a time,
    centred in place in a row-major block that stays in the caches; each
    distance is a dot product along a row's features (:func:`_row_dots`,
    summed in SIMD lanes), and each moment adds two rows at a time along
    the features. The arguments and outputs are those of
    :func:`estep_rows` (``X`` float64 or float32; the sums are float64).
    """
    n_rows, d = X.shape
    n_total = log_norm.shape[0]
    diagonal = kind != SCALAR
    weighted = weights.shape[0] > 0
    x = np.empty((ROW_BLOCK, d))
    y = np.empty((ROW_BLOCK, d if diagonal else 0))
    norms = np.empty(ROW_BLOCK)
    values = np.empty((n_total, ROW_BLOCK))
    terms = -2.0 * linear
    for start in range(0, n_rows, ROW_BLOCK):
        size = min(ROW_BLOCK, n_rows - start)
        for r in range(size):
            row, centred = X[start + r], x[r]
            for j in range(d):
                centred[j] = row[j] - shift[j]
            if diagonal:
                squares = y[r]
                for j in range(d):
                    squares[j] = centred[j] * centred[j]
            else:
                norms[r] = _row_dot(centred, centred)
        block = values[:, :size]
        for r in range(size):
            for c in range(n_total):
                if diagonal:
                    block[c, r] = const[c] + _row_dots(table[c], y[r], terms[c], x[r])
                else:
                    block[c, r] = scales[c] * ((norms[r] + const[c]) + _row_dot(terms[c], x[r]))
        normalise(block, log_norm, math.nan, weights[start:start + size] if weighted else weights, groups,
                  log_likelihood)
        _few_components_moments(kind, x, y, norms, block, counts, first, second)


def _row_dot(a, b):
    """``a . b`` (1-d)."""
    total = 0.0
    for j in range(a.shape[0]):
        total += a[j] * b[j]
    return total


def _row_dots(a, b, c, e):
    """``a . b + c . e`` (1-d)."""
    total = 0.0
    for j in range(a.shape[0]):
        total += a[j] * b[j] + c[j] * e[j]
    return total


def _few_components_moments(kind, x, y, norms, resp, counts, first, second):
    """Add the moments of a block's centred rows ``x`` (their squares ``y``, squared norms ``norms``) under
    responsibilities ``resp`` (C, rows) to the outputs (see :func:`few_components_rows`): along the
    features, two rows at a time."""
    n_total, size = resp.shape
    d = x.shape[1]
    pooled = kind == SHARED_DIAGONAL
    r = 0
    while r < size:
        pair = r + 1 < size
        following = r + 1 if pair else r  # a last row alone: added with weight 0 as its own pair
        x0, y0, x1, y1 = x[r], y[r], x[following], y[following]
        total0, total1 = 0.0, 0.0
        for c in range(n_total):
            a0, a1 = resp[c, r], resp[c, following] if pair else 0.0
            counts[c] += a0 + a1
            total0 += a0
            total1 += a1
            sums = first[c]
            for j in range(d):
                sums[j] += a0 * x0[j] + a1 * x1[j]
            if kind == DIAGONAL:
                sums = second[c]
                for j in range(d):
                    sums[j] += a0 * y0[j] + a1 * y1[j]
            elif kind == SCALAR:
                second[c, 0] += a0 * norms[r] + a1 * norms[following]
        if pooled:
            sums = second[0]
            for j in range(d):
                sums[j] += total0 * y0[j] + total1 * y1[j]
        r += 2

def _prepared(X, shift, full, scalar):
    """What the passes take of rows ``X``: centred at ``shift`` by row and by column, with full
    covariances their packed products by row and by column, with scalar ones their squared norms."""
    centred = _centred(X, shift)
    products = _packed_products(centred) if full else np.empty((0, 0))
    norms = _squared_norms(centred) if scalar else np.empty(0)
    return centred, np.ascontiguousarray(centred.T), products, np.ascontiguousarray(products.T), norms


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
        r = resp[i]
        for c in range(resp.shape[1]):
            counts[c] += r[c]
    _weighted_sums(centred, resp, first)


def _weighted_sums(terms, resp, out):
    """Add each component's responsibility-weighted sum of the rows' ``terms`` (rows, T) to ``out`` (C, T).

    Like every loop here that adds over rows, it runs over the components
    innermost, on a transposed copy of its output: independent sums in
    contiguous memory, which the compiler turns into SIMD code (a sum over
    a row's features or products is one dependent chain).
    """
    n_rows, n_terms = terms.shape
    n_total = resp.shape[1]
    if n_total < FEW_COMPONENTS:  # too few components for SIMD code: the terms innermost instead
        for i in range(n_rows):
            values = terms[i]
            for c in range(n_total):
                r, total = resp[i, c], out[c]
                for q in range(n_terms):
                    total[q] += r * values[q]
        return
    sums = np.zeros((n_terms, n_total))
    for i in range(n_rows):
        r = resp[i]
        for q in range(n_terms):
            value = terms[i, q]
            total = sums[q]
            for c in range(n_total):
                total[c] += r[c] * value
    for c in range(n_total):
        for q in range(n_terms):
            out[c, q] += sums[q, c]


def _responsibilities(values, log_norm, weights, groups, log_likelihood, resp):
    """Squared distances ``values`` (C, rows) into weighted responsibilities ``resp`` (rows, C); each row's total.

    ``values`` is overwritten. Adds each row's weighted log-density within
    each group to ``log_likelihood`` (NaN where it is 0 and the weight is
    not). The passes run over the rows innermost, component by component
    (a group's few components would make short loops): the log-densities
    shifted by each row's largest in its group, their exponentials all at
    once (:func:`_exp_in_place`), the totals and their logarithms
    (:func:`_log_in_place`), then the normalisation; the result is
    transposed for the statistics' loops.
    """
    n_total, n_rows = values.shape
    n_per = n_total // groups
    tops = np.empty((groups, n_rows))
    for c in range(n_total):
        row = values[c]
        shift = log_norm[c]
        for i in range(n_rows):
            row[i] = shift - 0.5 * row[i]
    for g in range(groups):
        top = tops[g]
        for i in range(n_rows):
            top[i] = -math.inf
        for c in range(g * n_per, (g + 1) * n_per):
            row = values[c]
            for i in range(n_rows):
                top[i] = row[i] if row[i] > top[i] else top[i]
        for i in range(n_rows):
            top[i] = top[i] if (top[i] > -math.inf) & (top[i] < math.inf) else 0.0
        for c in range(g * n_per, (g + 1) * n_per):
            row = values[c]
            for i in range(n_rows):
                row[i] -= top[i]
    _exp_in_place(values.reshape(-1))
    totals = np.zeros((groups, n_rows))
    for c in range(n_total):
        row, total = values[c], totals[c // n_per]
        for i in range(n_rows):
            total[i] += row[i]
    logs = totals.copy()
    _log_in_place(logs.reshape(-1))
    scales = np.empty((groups, n_rows))
    for g in range(groups):
        log_likelihood[g] += _row_scales(totals[g], logs[g], tops[g], weights, 0, scales[g])
    row_weights = np.zeros(n_rows)
    for c in range(n_total):
        row, scale = values[c], scales[c // n_per]
        for i in range(n_rows):
            value = row[i] * scale[i]
            row[i] = value if value >= RESPONSIBILITY_FLOOR else 0.0
            row_weights[i] += row[i]
    for i in range(n_rows):
        for c in range(n_total):
            resp[i, c] = values[c, i]
    return row_weights


#: exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 (ln 2 in two parts, the first exact in k ln 2)
LOG2E = 1.4426950408889634
LN2_HIGH = 0.6931471803691238
LN2_LOW = 1.9082149292705877e-10
ROUNDER = 6755399441055744.0  # 1.5 * 2^52: x + ROUNDER - ROUNDER rounds x to an integer (|x| < 2^51)
ROUNDER_BITS = 4843621399236968448  # the bits of ROUNDER as an int64
#: 1 / j!, the Taylor coefficients of exp
EXP_TERMS = tuple(1.0 / math.factorial(j) for j in range(13))


#: Responsibilities below this, the smallest normal float64, are set to 0. They add nothing a sum of
#: responsibilities can hold, and products with subnormal numbers run many times slower on some CPUs
#: (diag n=1e4, d=64, K=64 on an AVX-512 VM: 31.9 -> 6.9 ms an iteration; K=256: 175 -> 31 ms).
RESPONSIBILITY_FLOOR = 2.2250738585072014e-308
#: The same for responsibilities kept in float32: its smallest normal number (float32 full n=1e4, d=64, K=256
#: on that VM: 2,050 ms an iteration, eight times float64's, while its responsibilities were subnormal).
RESPONSIBILITY_FLOOR_FLOAT32 = 1.1754943508222875e-38


#: Rows :func:`normalise` takes at a time: its scratch rows and the block of distances stay in the L1 and L2 caches.
NORMALISE_BLOCK = 1024


def normalise(values, log_norm, noise, weights, groups, log_likelihood):
    """Squared distances ``values`` (C, rows) into weighted responsibilities, in place; the E-step's
    elementwise part on any layout's distances.

    The log-probabilities are ``log_norm[c] - values[c] / 2``; ``noise`` is the
    log-probability of a noise component shared by all rows (NaN: none; only
    with one group), which takes part in each row's normalisation but has no
    row of its own. ``values`` may be float32 or float64: exponentials and
    sums are taken in float64. ``weights`` is empty for unit weights. Adds
    each group's weighted log-density to ``log_likelihood`` (groups,), NaN
    where a row of positive weight has density 0 (see :func:`estep_rows`).
    Rows are taken :data:`NORMALISE_BLOCK` at a time, each block in a few
    passes over its components (their largest log-probability, the
    exponentials, the totals and their logarithms, the scaling).
    """
    n_total, n_rows = values.shape
    n_per = n_total // groups
    with_noise = not math.isnan(noise)
    block = NORMALISE_BLOCK
    floor = RESPONSIBILITY_FLOOR_FLOAT32 if values.itemsize == 4 else RESPONSIBILITY_FLOOR
    args, polynomial, powers = np.empty(block), np.empty(block), np.empty(block)
    top, totals, scales = np.empty(block), np.empty(block), np.empty(block)
    for start in range(0, n_rows, block):
        stop = min(n_rows, start + block)
        size = stop - start
        arg, poly, power = args[:size], polynomial[:size], powers[:size]
        best, total, scale = top[:size], totals[:size], scales[:size]
        for g in range(groups):
            for i in range(size):
                best[i] = noise if with_noise else -math.inf
            for c in range(g * n_per, (g + 1) * n_per):
                row, shift = values[c, start:stop], log_norm[c]
                for i in range(size):
                    value = shift - 0.5 * row[i]
                    best[i] = value if value > best[i] else best[i]
            for i in range(size):
                best[i] = best[i] if (best[i] > -math.inf) & (best[i] < math.inf) else 0.0
                total[i] = noise - best[i] if with_noise else -math.inf
            if with_noise:
                _exp_into(total, poly, power)
            else:
                for i in range(size):
                    total[i] = 0.0
            for c in range(g * n_per, (g + 1) * n_per):
                row, shift = values[c, start:stop], log_norm[c]
                for i in range(size):
                    arg[i] = (shift - 0.5 * row[i]) - best[i]
                _exp_into(arg, poly, power)
                for i in range(size):
                    row[i] = arg[i]
                    total[i] += arg[i]
            for i in range(size):
                arg[i] = total[i]
            _log_into(arg, poly, power)
            log_likelihood[g] += _row_scales(total, arg, best, weights, start, scale)
            for c in range(g * n_per, (g + 1) * n_per):
                row = values[c, start:stop]
                for i in range(size):
                    value = row[i] * scale[i]
                    row[i] = value if value >= floor else 0.0


def shift_by_best(values, log_norm, noise, groups, best):
    """The first half of :func:`normalise` where the exponentials are taken outside (float64 ``values``):
    ``values[c]`` becomes ``log_norm[c] - values[c] / 2`` minus each row's largest log-probability in the
    group of ``c`` (with the noise's, if any; 0 where that is not finite), which goes to ``best``
    (groups, rows). :func:`scale_by_totals` is the second half, after the exponentials of ``values``."""
    n_total, n_rows = values.shape
    n_per = n_total // groups
    with_noise = not math.isnan(noise)
    for g in range(groups):
        top = best[g]
        for i in range(n_rows):
            top[i] = noise if with_noise else -math.inf
        for c in range(g * n_per, (g + 1) * n_per):
            row, shift = values[c], log_norm[c]
            for i in range(n_rows):
                value = shift - 0.5 * row[i]
                top[i] = value if value > top[i] else top[i]
        for i in range(n_rows):
            top[i] = top[i] if (top[i] > -math.inf) & (top[i] < math.inf) else 0.0
        for c in range(g * n_per, (g + 1) * n_per):
            row, shift = values[c], log_norm[c]
            for i in range(n_rows):
                row[i] = (shift - 0.5 * row[i]) - top[i]


def scale_by_totals(values, best, noise, weights, groups, log_likelihood):
    """The second half of :func:`normalise` (see :func:`shift_by_best`): ``values`` hold the exponentials
    of the shifted log-probabilities; each row's are scaled by its weight over their total within the
    group, and each group's weighted log-density is added to ``log_likelihood``, as :func:`normalise`
    does."""
    n_total, n_rows = values.shape
    n_per = n_total // groups
    with_noise = not math.isnan(noise)
    totals, logs = np.empty(n_rows), np.empty(n_rows)
    scratch, spare = np.empty(n_rows), np.empty(n_rows)
    for g in range(groups):
        top = best[g]
        if with_noise:
            for i in range(n_rows):
                totals[i] = noise - top[i]
            _exp_into(totals, scratch, spare)
        else:
            for i in range(n_rows):
                totals[i] = 0.0
        for c in range(g * n_per, (g + 1) * n_per):
            row = values[c]
            for i in range(n_rows):
                totals[i] += row[i]
        for i in range(n_rows):
            logs[i] = totals[i]
        _log_into(logs, scratch, spare)
        log_likelihood[g] += _row_scales(totals, logs, top, weights, 0, totals)  # the scales replace the totals
        for c in range(g * n_per, (g + 1) * n_per):
            row = values[c]
            for i in range(n_rows):
                value = row[i] * totals[i]
                row[i] = value if value >= RESPONSIBILITY_FLOOR else 0.0


def _row_scales(totals, logs, top, weights, offset, scales):
    """Each row's weighted log-density ``logs + top`` (``logs``: the logarithms of its ``totals`` of
    exponentials shifted by ``top``), summed and returned, and into ``scales`` its weight over its total
    (``weights[offset + i]``; ones where ``weights`` is empty). A row no component explains (a total of 0, or
    a density not finite) adds NaN unless its weight is 0, and its scale is 0. ``scales`` may be ``totals``."""
    weighted = weights.shape[0] > 0
    added = 0.0
    for i in range(totals.shape[0]):
        w = weights[offset + i] if weighted else 1.0
        density = logs[i] + top[i] if totals[i] > 0.0 else -math.inf
        if (density > -math.inf) & (density < math.inf):
            added += w * density
            scales[i] = w / totals[i]
        else:  # no component of the group explains the row: NaN unless its weight is 0
            added += math.nan if w > 0.0 else 0.0
            scales[i] = 0.0
    return added


def _exp_in_place(a):
    """``a = exp(a)`` for a 1-d float64 array, in loops the compiler turns into SIMD code.

    On [-708, 709]: ``1 + r q(r)``, ``q`` the degree-11 Taylor polynomial of
    ``(exp(r) - 1) / r`` for ``|r| <= ln 2 / 2`` (relative error below
    5e-16), times ``2^k`` built from its exponent bits. ``q`` is evaluated
    by Estrin's scheme, whose short chains of dependent steps let the CPU
    overlap consecutive values (Horner's rule is one chain of 22). Below
    -745.2 the result is 0, and elsewhere (the edges, infinities, NaN)
    ``math.exp``, in a last pass only where there are such values. NumPy's
    own exponential is several times slower on CPUs without AVX-512, and
    libm's one by one too.
    """
    _exp_into(a, np.empty(a.shape[0]), np.empty(a.shape[0]))


def _exp_into(a, polynomial, powers):
    """:func:`_exp_in_place` with scratch arrays of ``a``'s length."""
    n = a.shape[0]
    for i in range(n):
        x = min(max(a[i], -708.0), 709.0)
        y = x * LOG2E + ROUNDER
        k = y - ROUNDER
        r = (x - k * LN2_HIGH) - k * LN2_LOW
        r2 = r * r
        r4 = r2 * r2
        low = (EXP_TERMS[1] + EXP_TERMS[2] * r) + (EXP_TERMS[3] + EXP_TERMS[4] * r) * r2
        middle = (EXP_TERMS[5] + EXP_TERMS[6] * r) + (EXP_TERMS[7] + EXP_TERMS[8] * r) * r2
        high = (EXP_TERMS[9] + EXP_TERMS[10] * r) + (EXP_TERMS[11] + EXP_TERMS[12] * r) * r2
        polynomial[i] = 1.0 + r * ((low + middle * r4) + high * (r4 * r4))
        powers[i] = y
    bits = powers.view(np.int64)
    for i in range(n):
        bits[i] = (bits[i] - ROUNDER_BITS + 1023) << 52
    others = 0
    for i in range(n):  # the results inside [-708, 709] and 0 below it; powers keeps the arguments
        x = a[i]
        inside = (x >= -708.0) & (x <= 709.0)
        a[i] = polynomial[i] * powers[i] if inside else 0.0
        powers[i] = x
        others += not (inside | (x < -745.2))
    if others:
        for i in range(n):
            x = powers[i]
            if not (x >= -708.0 and x <= 709.0 or x < -745.2):
                a[i] = math.exp(x)


#: For the logarithm: 1 / (2j + 1), the Taylor coefficients of atanh(s) / s in s^2; the bits of 2^52
#: and of 1.0, and the mantissa's bits
ATANH_TERMS = tuple(1.0 / (2 * j + 1) for j in range(10))
TWO52_BITS = 0x4330000000000000
ONE_BITS = 0x3FF0000000000000
MANTISSA_BITS = (1 << 52) - 1
SQRT2 = math.sqrt(2.0)
SMALLEST_NORMAL = 2.2250738585072014e-308


def _log_in_place(a):
    """``a = log(a)`` for a 1-d float64 array, in loops the compiler turns into SIMD code.

    For positive normal ``x = m 2^e`` (``m`` scaled into [sqrt(1/2), sqrt(2))),
    ``log x = e ln 2 + 2 atanh(s)``, ``s = (m - 1) / (m + 1)`` (``|s| < 0.172``),
    the series of ``atanh`` to ``s^19`` by Estrin's scheme (relative error
    below 5e-16); ``e`` is read from the exponent bits as a float without an
    integer conversion (which AVX2 lacks). Elsewhere (0, subnormal, negative,
    infinite, NaN) ``np.log``, in a last pass only where there are such values.
    """
    _log_into(a, np.empty(a.shape[0]), np.empty(a.shape[0]))


def _log_into(a, mantissas, exponents):
    """:func:`_log_in_place` with scratch arrays of ``a``'s length."""
    n = a.shape[0]
    bits = a.view(np.int64)
    mantissa_bits = mantissas.view(np.int64)
    exponent_bits = exponents.view(np.int64)
    for i in range(n):
        b = bits[i]
        exponent_bits[i] = (b >> 52) | TWO52_BITS  # 2^52 + the biased exponent
        mantissa_bits[i] = (b & MANTISSA_BITS) | ONE_BITS  # in [1, 2)
    others = 0
    for i in range(n):
        x = a[i]
        m = mantissas[i]
        big = m > SQRT2
        m = m * (0.5 if big else 1.0)
        e = (exponents[i] - 4503599627371519.0) + (1.0 if big else 0.0)  # minus 2^52 + 1023
        f = m - 1.0
        s = f / (2.0 + f)
        z = s * s
        z2 = z * z
        z4 = z2 * z2
        low = (ATANH_TERMS[1] + ATANH_TERMS[2] * z) + (ATANH_TERMS[3] + ATANH_TERMS[4] * z) * z2
        high = (ATANH_TERMS[5] + ATANH_TERMS[6] * z) + (ATANH_TERMS[7] + ATANH_TERMS[8] * z) * z2 + ATANH_TERMS[9] * z4
        twice = s + s
        normal = (x >= SMALLEST_NORMAL) & (x < math.inf)
        a[i] = (e * LN2_HIGH + (twice + (twice * ((low + high * z4) * z) + e * LN2_LOW))) if normal else 0.0
        mantissas[i] = x
        others += 0 if normal else 1
    if others:
        for i in range(n):
            x = mantissas[i]
            if not ((x >= SMALLEST_NORMAL) & (x < math.inf)):
                a[i] = np.log(x)


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


def _packed_distances(products, columns, packed, linear, const, out):
    """``packed_c . q(x) - 2 linear_c . x + const_c`` into ``out`` (C, rows) (full).

    ``q(x)`` are a row's packed products; ``products`` (terms, rows) and
    ``columns`` (d, rows) hold them and the centred rows by column, so
    that each term is added to all rows at once (see :func:`_weighted_sums`).
    """
    n_rows = columns.shape[1]
    for c in range(out.shape[0]):
        row = out[c]
        for i in range(n_rows):
            row[i] = const[c]
        for q in range(products.shape[0]):
            term, values = packed[c, q], products[q]
            for i in range(n_rows):
                row[i] += term * values[i]
        for j in range(columns.shape[0]):
            term, values = -2.0 * linear[c, j], columns[j]
            for i in range(n_rows):
                row[i] += term * values[i]


def _whitened_distances(columns, whiten, means, out):
    """``|W_c x - m_c|^2``, with ``m_c`` the whitened mean (full, few components), into ``out`` (C, rows)."""
    d, n_rows = columns.shape
    z = np.empty(n_rows)
    for c in range(out.shape[0]):
        row = out[c]
        for i in range(n_rows):
            row[i] = 0.0
        for a in range(d):
            for i in range(n_rows):
                z[i] = -means[c, a]
            for b in range(d):
                term, values = whiten[c, a, b], columns[b]
                for i in range(n_rows):
                    z[i] += term * values[i]
            for i in range(n_rows):
                row[i] += z[i] * z[i]


def _shared_distances(columns, whiten, means, const, out):
    """``|z|^2 - 2 z . m_c + const_c`` for each row whitened once, ``z = W x`` (shared), into ``out`` (C, rows)."""
    d, n_rows = columns.shape
    z = np.zeros((d, n_rows))
    norms = np.zeros(n_rows)
    for a in range(d):
        whitened = z[a]
        for b in range(d):
            term, values = whiten[0, a, b], columns[b]
            for i in range(n_rows):
                whitened[i] += term * values[i]
        for i in range(n_rows):
            norms[i] += whitened[i] * whitened[i]
    for c in range(out.shape[0]):
        row = out[c]
        for i in range(n_rows):
            row[i] = norms[i] + const[c]
        for j in range(d):
            term, values = -2.0 * means[c, j], z[j]
            for i in range(n_rows):
                row[i] += term * values[i]


def _diagonal_distances(columns, precisions, linear, const, out):
    """``precisions_c . x^2 - 2 linear_c . x + const_c`` (diagonal and shared diagonal), into ``out`` (C, rows)."""
    n_rows = columns.shape[1]
    for c in range(out.shape[0]):
        row = out[c]
        for i in range(n_rows):
            row[i] = const[c]
        for j in range(columns.shape[0]):
            scaled, term, values = precisions[c, j], -2.0 * linear[c, j], columns[j]
            for i in range(n_rows):
                row[i] += (scaled * values[i] + term) * values[i]


def _squared_norms(centred):
    """Each row's ``|x|^2``."""
    n_rows, d = centred.shape
    norms = np.zeros(n_rows)
    for i in range(n_rows):
        for j in range(d):
            norms[i] += centred[i, j] * centred[i, j]
    return norms


def _scalar_distances(columns, norms, means, const, precisions, out):
    """``p_c (|x|^2 - 2 x . mu_c + |mu_c|^2)``, into ``out`` (C, rows)."""
    n_rows = columns.shape[1]
    for c in range(out.shape[0]):
        row = out[c]
        for i in range(n_rows):
            row[i] = norms[i] + const[c]
        for j in range(columns.shape[0]):
            term, values = -2.0 * means[c, j], columns[j]
            for i in range(n_rows):
                row[i] += term * values[i]
        for i in range(n_rows):
            row[i] *= precisions[c]


def _packed_second(products, resp, second):
    _weighted_sums(products, resp, second)


def _diagonal_second(centred, resp, second):
    n_rows, d = centred.shape
    if resp.shape[1] >= FEW_COMPONENTS:
        _weighted_sums(centred * centred, resp, second)
        return
    squares = np.empty(d)
    for i in range(n_rows):  # as _weighted_sums adds them, without the rows' squares in memory
        for j in range(d):
            squares[j] = centred[i, j] * centred[i, j]
        for c in range(resp.shape[1]):
            r, total = resp[i, c], second[c]
            for j in range(d):
                total[j] += r * squares[j]


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


def _variance_step(data, shift, weights, kind, means, variances, mix_weights, groups, coupling, reg, reg_mean,
                   empty_weight, collapse, new_means, new_variances, new_precisions, new_weights, log_likelihood, ok,
                   collapsed):
    """One EM iteration of ``groups`` mixtures with diagonal (``DIAGONAL``) or scalar (``SCALAR``) variances.

    The E-step (as :func:`estep_rows`) under the parameters ``means`` (C, d),
    ``variances`` ((C, d) or (C, 1)) and ``mix_weights`` (C,), then the
    maximum-likelihood M-step (``reg`` (d,) added to each variance, or its
    mean ``reg_mean`` to a scalar one; with a ``coupling``, the estimate of
    mclust's EII, EVI or VEI, which tie a mixture's components together)
    into the ``new_`` arrays, with the
    precisions' Cholesky factors ``1 / sqrt(variance)``. ``log_likelihood``
    (groups,) receives each mixture's weighted log-likelihood.

    The rows are as :func:`_prepared` gives them. ``ok[g]`` := False
    (mixture ``g``'s outputs then incomplete) where its iteration needs
    more than these arithmetic steps: a weight that is 0, a log-likelihood
    that is not finite, a component with at most ``empty_weight`` of
    responsibility, or a variance that is not positive and finite. The
    caller then makes that iteration its general way. ``collapsed[g]`` :=
    True where a component's new variance less ``reg`` (``reg_mean``) is at
    most ``collapse`` (d,) for some feature (a scalar variance: for the
    first; ``collapse`` empty: not checked).
    """
    n_components, d = means.shape
    size = n_components // groups
    for c in range(n_components):
        if not mix_weights[c] > 0.0:
            ok[c // size] = False
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
    centred, columns, _, _, norms = data
    distances = np.empty((n_components, centred.shape[0]))
    if kind == SCALAR:
        _scalar_distances(columns, norms, linear, const, precisions[:, 0].copy(), distances)
    else:
        _diagonal_distances(columns, precisions, linear, const, distances)
    resp = np.empty((centred.shape[0], n_components))
    _responsibilities(distances, log_norm, weights, groups, log_likelihood, resp)
    _first_moments(centred, resp, counts, first)
    if kind == SCALAR:
        _scalar_second(norms, resp, second)
    else:
        _diagonal_second(centred, resp, second)
    _new_weights(log_likelihood, counts, empty_weight, new_weights, ok)
    for c in range(n_components):
        if not ok[c // size]:
            continue
        spread = 0.0
        for j in range(d):
            mean = first[c, j] / counts[c]
            new_means[c, j] = shift[j] + mean
            if kind == SCALAR:
                spread += first[c, j] * first[c, j]
            else:
                value = (second[c, j] - first[c, j] * first[c, j] / counts[c]) / counts[c] + reg[j]
                if coupling != INDEPENDENT:  # the regularised scatter n_c (variance): coupled below
                    new_variances[c, j] = value * counts[c]
                    continue
                _new_variance(value, reg[j], collapse, new_variances, new_precisions, c, j, ok, collapsed, size)
        if kind == SCALAR:
            scatter = second[c, 0] - spread / counts[c]  # the component's trace about its mean
            if coupling == EQUAL_VARIANCE:  # summed over the mixture's components below
                new_variances[c, 0] = scatter
                continue
            value = scatter / (counts[c] * d) + reg_mean
            _new_variance(value, reg_mean, collapse, new_variances, new_precisions, c, 0, ok, collapsed, size)
    if coupling != INDEPENDENT:
        for g in range(groups):
            if ok[g]:
                _coupled(coupling, new_variances, variances, counts, g * size, size, d, reg, reg_mean, collapse,
                         new_precisions, ok, collapsed)


def _coupled(coupling, out, previous, counts, first_component, size, d, reg, reg_mean, collapse, new_precisions, ok,
             collapsed):
    """The M-step of one mixture of mclust's EII, EEI, EVI or VEI (``coupling``) in place, as
    :mod:`gaussmix.covariance.constrained` estimates it: ``out`` holds each component's scatter (EII: its
    trace) with ``n_c reg`` added (EVI, VEI), and gets the variances; ``previous`` holds the variances the
    iteration started from (VEI's shape starts from those of its largest component)."""
    members = range(first_component, first_component + size)
    total = 0.0
    for c in members:
        total += counts[c]
    if coupling == EQUAL_VARIANCE:
        trace = 0.0
        for c in members:
            trace += out[c, 0]
        for c in members:
            _new_variance(trace / (total * d) + reg_mean, reg_mean, collapse, out, new_precisions, c, 0, ok,
                          collapsed, size)
        return
    if coupling == EQUAL_VOLUME_AND_SHAPE:  # EEI: one diagonal, the pooled scatter over the weight
        for j in range(d):
            value = 0.0
            for c in members:
                value += out[c, j]
            for c in members:
                _new_variance(value / total, reg[j], collapse, out, new_precisions, c, j, ok, collapsed, size)
        return
    if coupling == EQUAL_VOLUME:  # each shape from its own scatter, one volume: sum of sizes over the weight
        sizes = np.empty(size)
        volume = 0.0
        for i in range(size):
            sizes[i] = _geometric_mean(out[first_component + i])
            volume += sizes[i]
        volume /= total
        for i in range(size):
            for j in range(d):
                _new_variance(volume * out[first_component + i, j] / sizes[i], reg[j], collapse, out,
                              new_precisions, first_component + i, j, ok, collapsed, size)
        return
    # EQUAL_SHAPE: the shape of the largest component's previous variances, then one alternation
    shape = previous[_largest(counts, first_component, size)].copy()
    volumes = np.empty(size)
    _one_alternation(out[first_component:first_component + size], counts[first_component:first_component + size],
                     shape, volumes)
    for i in range(size):
        for j in range(d):
            _new_variance(volumes[i] * shape[j], reg[j], collapse, out, new_precisions, first_component + i, j,
                          ok, collapsed, size)


def _largest(counts, first_component, size):
    """The component of most weight among ``size`` from ``first_component`` (the first of equals)."""
    largest = first_component
    for c in range(first_component, first_component + size):
        if counts[c] > counts[largest]:
            largest = c
    return largest


def _geometric_mean(values):
    return math.exp(_mean_log(values))


def _new_variance(value, reg, collapse, new_variances, new_precisions, c, j, ok, collapsed, size):
    """Component ``c``'s new variance ``value`` of feature ``j`` (a scalar variance: ``j`` 0) and its
    precision's factor, with the checks of :func:`_variance_step` (``reg``: what the variance holds of the
    regularisation)."""
    if not (value > 0.0 and math.isfinite(value)):
        ok[c // size] = False
    new_variances[c, j] = value
    new_precisions[c, j] = 1.0 / math.sqrt(value)
    if collapse.shape[0] and value - reg <= collapse[j]:
        collapsed[c // size] = True


def _full_step(data, shift, weights, means, factors, previous, mix_weights, groups, pooled, coupling, reg,
               empty_weight, collapse, new_means, new_covariances, new_factors, new_weights, log_likelihood, ok,
               collapsed):
    """One EM iteration of ``groups`` mixtures with full covariances (see :func:`_variance_step`).

    ``factors`` (C, d, d) are the precisions' upper-triangular Cholesky
    factors ``U`` (precision ``U U'``) of each component. The M-step
    estimates a covariance per component, or with ``pooled`` one per
    mixture from its components' pooled scatter (its components' factors
    are then its own, repeated), adds ``reg`` (d,) to its diagonal and
    factors it (lower Cholesky factor ``L``, then ``U = (L^-1)'``) into
    ``new_covariances`` and ``new_factors`` (C or ``groups``, d, d).
    ``ok[g]`` := False where :func:`_variance_step` says so, or where a new
    covariance of mixture ``g`` has no Cholesky factor; ``collapsed[g]`` :=
    True where a component's new covariance less ``reg`` is at most
    ``collapse`` (d,) in some direction (per-component covariances only;
    ``collapse`` empty: not checked).
    """
    n_components, d = means.shape
    size = n_components // groups
    for c in range(n_components):
        if not mix_weights[c] > 0.0:
            ok[c // size] = False
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
    centred, columns, products, product_columns, _ = data
    distances = np.empty((n_components, centred.shape[0]))
    _packed_distances(product_columns, columns, packed, linear, const, distances)
    resp = np.empty((centred.shape[0], n_components))
    _responsibilities(distances, log_norm, weights, groups, log_likelihood, resp)
    _first_moments(centred, resp, counts, first)
    _packed_second(products, resp, second)
    _new_weights(log_likelihood, counts, empty_weight, new_weights, ok)
    for c in range(n_components):
        for a in range(d):
            new_means[c, a] = shift[a] + first[c, a] / counts[c]
    lower = np.empty((d, d))
    spread = np.empty((d, d))
    scatter = np.empty(n_packed)
    for m in range(new_covariances.shape[0]):  # each component's covariance, or each mixture's
        group = m if pooled else m // size
        if not ok[group]:
            continue
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
        factor = total if coupling != INDEPENDENT else 1.0  # coupled: the regularised scatter, estimated below
        q = 0
        for a in range(d):
            for b in range(a, d):
                value = scatter[q] / total
                if a == b:
                    value += reg[a]
                new_covariances[m, a, b] = value * factor
                new_covariances[m, b, a] = value * factor
                q += 1
        if coupling == INDEPENDENT:
            _factored(new_covariances, m, group, pooled, reg, collapse, new_factors, lower, spread, ok, collapsed)
    if coupling != INDEPENDENT:
        for g in range(groups):
            if ok[g]:
                _coupled_full(coupling, new_covariances, previous, counts, g * size, size)
                for c in range(g * size, (g + 1) * size):
                    _factored(new_covariances, c, g, False, reg, collapse, new_factors, lower, spread, ok, collapsed)


def _factored(new_covariances, m, group, pooled, reg, collapse, new_factors, lower, spread, ok, collapsed):
    """Covariance ``m``'s precision factor, and its checks (see :func:`_full_step`)."""
    d = new_covariances.shape[1]
    if not _cholesky_lower(new_covariances[m], lower):
        ok[group] = False
        return
    _inverse_lower_transposed(lower, new_factors[m])
    if collapse.shape[0] and not pooled:  # its spread less the limits: positive definite unless collapsed
        for a in range(d):
            for b in range(d):
                spread[a, b] = new_covariances[m, a, b] - (reg[a] + collapse[a] if a == b else 0.0)
        if not _cholesky_lower(spread, lower):
            collapsed[group] = True


def _descending_eigh(matrix):
    """Eigenvalues (decreasing) and eigenvectors (columns, in that order) of a symmetric matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return values[::-1].copy(), vectors[:, ::-1].copy()


def _log_det(matrix, lower):
    """``log det`` of a symmetric positive definite matrix (-inf where it has no Cholesky factor)."""
    if not _cholesky_lower(matrix, lower):
        return -math.inf
    total = 0.0
    for a in range(matrix.shape[0]):
        total += 2.0 * math.log(lower[a, a])
    return total


def _coupled_full(coupling, out, previous, counts, first_component, size):
    """The M-step of one mixture of mclust's EEV, EVV, VEV or VEE (``coupling``) in place, as
    :mod:`gaussmix.covariance.constrained` estimates it from a previous estimate: ``out`` holds each
    component's regularised scatter ``W_c`` and gets its covariance; ``previous`` holds the covariances
    the iteration started from (VEV's shape and VEE's matrix start from those of the largest component)."""
    d = out.shape[1]
    total = 0.0
    for c in range(first_component, first_component + size):
        total += counts[c]
    largest = _largest(counts, first_component, size)
    lower = np.empty((d, d))
    if coupling == EQUAL_VOLUME:  # EVV: each W_c scaled to determinant 1, one volume
        sizes = np.empty(size)
        volume = 0.0
        for i in range(size):
            sizes[i] = math.exp(_log_det(out[first_component + i], lower) / d)
            volume += sizes[i]
        volume /= total
        for i in range(size):
            for a in range(d):
                for b in range(d):
                    out[first_component + i, a, b] *= volume / sizes[i]
        return
    if coupling == EQUAL_VOLUME_AND_SHAPE or coupling == EQUAL_SHAPE:  # EEV, VEV: eigenvalues pooled
        values = np.empty((size, d))
        vectors = np.empty((size, d, d))
        for i in range(size):
            values[i], vectors[i] = _descending_eigh(out[first_component + i])
        shape = np.zeros(d)
        volumes = np.ones(size)
        if coupling == EQUAL_VOLUME_AND_SHAPE:
            for i in range(size):
                for j in range(d):
                    shape[j] += values[i, j]
            for j in range(d):
                shape[j] /= total
        else:  # VEV: the shape of the largest component's previous covariance, then one alternation
            shape = _descending_eigh(previous[largest])[0]
            _one_alternation(values, counts[first_component:first_component + size], shape, volumes)
        for i in range(size):
            for a in range(d):
                for b in range(a, d):
                    value = 0.0
                    for j in range(d):
                        value += vectors[i, a, j] * volumes[i] * shape[j] * vectors[i, b, j]
                    out[first_component + i, a, b] = value
                    out[first_component + i, b, a] = value
        return
    if coupling == EQUAL_ORIENTATION or coupling == EQUAL_VOLUME_AND_ORIENTATION:  # VVE, EVE
        _shared_orientation(coupling, out, previous, counts, first_component, size, total)
        return
    # VEE: one matrix C of determinant 1 and a volume per component, from the largest component's previous C
    common = previous[largest].copy()
    _unit_determinant(common, lower)
    volumes = np.empty(size)
    _volumes_given(out, first_component, size, counts, common, lower, volumes)
    common[:, :] = 0.0
    for i in range(size):
        for a in range(d):
            for b in range(d):
                common[a, b] += out[first_component + i, a, b] / volumes[i]
    for a in range(d):
        for b in range(a + 1, d):
            mean = 0.5 * (common[a, b] + common[b, a])
            common[a, b] = mean
            common[b, a] = mean
    _unit_determinant(common, lower)
    _volumes_given(out, first_component, size, counts, common, lower, volumes)
    for i in range(size):
        for a in range(d):
            for b in range(d):
                out[first_component + i, a, b] = volumes[i] * common[a, b]


def _shared_orientation(coupling, out, previous, counts, first_component, size, total):
    """VVE's and EVE's step: the variances along the common orientation of the previous covariances (the
    eigenvectors of their sum), then one sweep of plane rotations of the orientation given them."""
    d = out.shape[1]
    summed = np.zeros((d, d))
    for i in range(size):
        for a in range(d):
            for b in range(d):
                summed[a, b] += previous[first_component + i, a, b]
    orientation = _descending_eigh(summed)[1]
    inner = np.zeros((size, d, d))  # D' W_c D, as (D' W_c) D
    half = np.empty((d, d))
    for i in range(size):
        for a in range(d):
            for f in range(d):
                value = 0.0
                for e in range(d):
                    value += orientation[e, a] * out[first_component + i, e, f]
                half[a, f] = value
        for a in range(d):
            for b in range(d):
                value = 0.0
                for f in range(d):
                    value += half[a, f] * orientation[f, b]
                inner[i, a, b] = value
    variances = np.empty((size, d))
    volume = 0.0
    for i in range(size):
        for j in range(d):
            variances[i, j] = inner[i, j, j]
        if coupling == EQUAL_VOLUME_AND_ORIENTATION:  # EVE: each shape, one volume
            volume += _geometric_mean(variances[i])
    for i in range(size):
        if coupling == EQUAL_VOLUME_AND_ORIENTATION:
            own = _geometric_mean(variances[i])
            for j in range(d):
                variances[i, j] *= (volume / total) / own
        else:  # VVE: any diagonal
            for j in range(d):
                variances[i, j] /= counts[first_component + i]
    precisions = np.empty((size, d))
    for i in range(size):
        for j in range(d):
            precisions[i, j] = 1.0 / variances[i, j]
    rotate_pairs(inner, orientation, precisions)
    for i in range(size):
        for a in range(d):
            for b in range(a, d):
                value = 0.0
                for j in range(d):
                    value += orientation[a, j] * variances[i, j] * orientation[b, j]
                out[first_component + i, a, b] = value
                out[first_component + i, b, a] = value


def _unit_determinant(matrix, lower):
    d = matrix.shape[0]
    factor = math.exp(_log_det(matrix, lower) / d)
    for a in range(d):
        for b in range(d):
            matrix[a, b] /= factor


def _volumes_given(out, first_component, size, counts, common, lower, volumes):
    """VEE's volumes given its matrix: ``tr(W_c C^-1) / (n_c d)``."""
    d = common.shape[0]
    inverse = np.linalg.inv(common)
    for i in range(size):
        value = 0.0
        for a in range(d):
            for b in range(d):
                value += out[first_component + i, a, b] * inverse[b, a]
        volumes[i] = value / (counts[first_component + i] * d)


def _one_alternation(values, counts, shape, volumes):
    """VEI's and VEV's step, in place: the shape (normalised) given, then the volumes given the shape, the
    shape given the volumes and the volumes given it (``values``: each component's scatter along its axes)."""
    size, d = values.shape
    _normalise(shape)
    _volumes_given_shape(values, counts, shape, volumes)
    for j in range(d):
        value = 0.0
        for i in range(size):
            value += values[i, j] / volumes[i]
        shape[j] = value
    _normalise(shape)
    _volumes_given_shape(values, counts, shape, volumes)


def _normalise(shape):
    """``shape`` scaled to a geometric mean of 1, in place."""
    factor = math.exp(_mean_log(shape))
    for j in range(shape.shape[0]):
        shape[j] /= factor


def _volumes_given_shape(values, counts, shape, volumes):
    size, d = values.shape
    for i in range(size):
        value = 0.0
        for j in range(d):
            value += values[i, j] / shape[j]
        volumes[i] = value / (counts[i] * d)


def _mean_log(values):
    total = 0.0
    for value in values:
        total += math.log(value)
    return total / values.shape[0]


#: What :func:`runs` says of each mixture: it converged, it made all the iterations it was allowed, its
#: next iteration is not plain arithmetic (the caller makes that one), a component collapsed, or its bound
#: is too far behind its target to reach it
RUN_CONVERGED, RUN_LIMIT, RUN_GENERAL, RUN_COLLAPSED, RUN_BEHIND = range(5)


def runs(X, shift, weights, kind, means, covariances, factors, mix_weights, groups, pooled, coupling, reg, reg_mean,
         empty_weight, collapse, target, slack, after, started, total_weight, tol, bounds, limits, history, n_done,
         status):
    """EM iterations (:func:`_full_step` for ``FULL_PACKED``, else :func:`_variance_step`) of each of ``groups``
    mixtures until it stops, in place.

    Mixture ``g`` (its ``K`` consecutive rows of ``means``, ``covariances``,
    their precisions' factors ``factors`` and ``mix_weights`` (C, 1); with
    ``pooled`` one row of ``covariances`` and ``factors`` per mixture; a
    full matrix as a row of ``d * d`` entries; ``coupling``: see
    :func:`_variance_step`) starts from the bound
    ``bounds[g]`` and makes at most ``limits[g]`` iterations; it stops where
    its bound (log-likelihood over ``total_weight``) changes by less than
    ``tol``, or before an iteration that is not plain arithmetic. Each
    iteration's bound goes to ``history[g]``; ``n_done[g]`` counts them,
    ``status[g]`` says why it stopped (``RUN_*``), and the parameter arrays
    hold its last iterate. Where ``collapse`` (d,) is not empty, a mixture
    also stops after an iteration that leaves one of its components with a
    variance less ``reg`` of at most ``collapse`` in some direction
    (``RUN_COLLAPSED``; see :func:`_variance_step`, :func:`_full_step`);
    and after more than ``after`` iterations in all (``started[g]`` of them
    made before this call), one whose bound, were it to go on rising
    ``slack`` times as fast as in its last iteration until its limit, would
    stay below ``target`` (``RUN_BEHIND``; ``-inf``: never).
    The mixtures still going make each iteration
    together, as one step over all of them would (each mixture's arithmetic
    is its own). Every parameter array is 2-d, so that the bookkeeping
    compiles once.
    """
    size = means.shape[0] // groups
    d = means.shape[1]
    own = 1 if pooled else size
    full = kind == FULL_PACKED
    data = _prepared(X, shift, full, kind == SCALAR)
    going = np.arange(groups)
    m, s, f, w = means.copy(), covariances.copy(), factors.copy(), mix_weights.copy()
    bound = bounds.copy()
    n_done[:] = 0
    while going.shape[0] > 0:
        count = going.shape[0]
        new_m, new_s, new_f, new_w = np.empty_like(m), np.empty_like(s), np.empty_like(f), np.empty_like(w)
        log_likelihood = np.zeros(count)
        ok = np.ones(count, dtype=np.bool_)
        collapsed = np.zeros(count, dtype=np.bool_)
        if full:
            each = _repeated(f, size) if pooled else f  # the factor of each component
            _full_step(data, shift, weights, m, each.reshape((each.shape[0], d, d)), s.reshape((s.shape[0], d, d)),
                       w.reshape(w.shape[0]), count, pooled, coupling, reg, empty_weight, collapse, new_m,
                       new_s.reshape((s.shape[0], d, d)), new_f.reshape((f.shape[0], d, d)), new_w.reshape(w.shape[0]),
                       log_likelihood, ok, collapsed)
        elif pooled:  # one diagonal per mixture (EEI): each component's, then the mixture's own row
            each, new_each, new_each_f = _repeated(s, size), np.empty((count * size, d)), np.empty((count * size, d))
            _variance_step(data, shift, weights, kind, m, each, w.reshape(w.shape[0]), count, coupling, reg,
                           reg_mean, empty_weight, collapse, new_m, new_each, new_each_f, new_w.reshape(w.shape[0]),
                           log_likelihood, ok, collapsed)
            for g in range(count):
                new_s[g] = new_each[g * size]
                new_f[g] = new_each_f[g * size]
        else:
            _variance_step(data, shift, weights, kind, m, s, w.reshape(w.shape[0]), count, coupling, reg, reg_mean,
                           empty_weight, collapse, new_m, new_s, new_f, new_w.reshape(w.shape[0]), log_likelihood,
                           ok, collapsed)
        stops = _stops(going, ok, collapsed, log_likelihood / total_weight, tol, bound, limits, history, n_done,
                       status, target, slack, after, started)
        _stopped(means, m, new_m, going, stops, size)
        _stopped(covariances, s, new_s, going, stops, own)
        _stopped(factors, f, new_f, going, stops, own)
        _stopped(mix_weights, w, new_w, going, stops, size)
        kept = np.flatnonzero(stops < 0)
        going = going[kept]
        m, s, f, w = _kept(new_m, kept, size), _kept(new_s, kept, own), _kept(new_f, kept, own), \
            _kept(new_w, kept, size)


def _stops(going, ok, collapsed, new_bounds, tol, bound, limits, history, n_done, status, target, slack, after,
           started):
    """Each mixture's iteration in a run (mixture ``going[a]`` at position ``a``): -1 where it goes on,
    else how it stops (``RUN_*``); its bound, history, count and status are updated."""
    stops = np.full(going.shape[0], -1)
    for a in range(going.shape[0]):
        g = going[a]
        if not ok[a]:
            stops[a] = RUN_GENERAL
        else:
            previous = bound[g]
            bound[g] = new_bounds[a]
            history[g, n_done[g]] = new_bounds[a]
            n_done[g] += 1
            if abs(new_bounds[a] - previous) < tol:
                stops[a] = RUN_CONVERGED
            elif n_done[g] >= limits[g]:
                stops[a] = RUN_LIMIT
            elif collapsed[a]:
                stops[a] = RUN_COLLAPSED
            elif started[g] + n_done[g] > after and new_bounds[a] + slack * (new_bounds[a] - previous) * (
                    limits[g] - n_done[g]) < target:
                stops[a] = RUN_BEHIND
        if stops[a] >= 0:
            status[g] = stops[a]
    return stops


def _stopped(out, old, new, going, stops, size):
    """The parameters (``size`` entries per mixture) of the mixtures that stop, into ``out``: those that
    entered the iteration where the next is not plain arithmetic, else the iteration's."""
    for a in range(going.shape[0]):
        if stops[a] >= 0:
            _put(out, old if stops[a] == RUN_GENERAL else new, going[a], a, size)


def _put(out, values, g, a, size):
    """Rows ``g size`` to ``(g + 1) size`` of ``out`` := those from ``a size`` of ``values`` (both 2-d)."""
    for i in range(size):
        for j in range(values.shape[1]):
            out[g * size + i, j] = values[a * size + i, j]


def _kept(values, kept, size):
    """The rows of the mixtures at positions ``kept`` (``size`` consecutive rows each), in order."""
    out = np.empty((kept.shape[0] * size, values.shape[1]))
    for i in range(kept.shape[0]):
        _put(out, values, i, kept[i], size)
    return out


def _repeated(values, size):
    """Each row of ``values`` (one per mixture) ``size`` times in a row."""
    out = np.empty((values.shape[0] * size, values.shape[1]))
    for i in range(out.shape[0]):
        for j in range(values.shape[1]):
            out[i, j] = values[i // size, j]
    return out


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


def _new_weights(log_likelihood, counts, empty_weight, new_weights, ok):
    """Each mixture's weights, its components' counts over their sum, into ``new_weights``.

    ``ok[g]`` := False where mixture ``g``'s log-likelihood is not finite or
    one of its components has at most ``empty_weight`` of responsibility.
    """
    groups = log_likelihood.shape[0]
    size = counts.shape[0] // groups
    for g in range(groups):
        total = 0.0
        for c in range(g * size, (g + 1) * size):
            if counts[c] <= empty_weight:
                ok[g] = False
            total += counts[c]
        if not math.isfinite(log_likelihood[g]):
            ok[g] = False
        for c in range(g * size, (g + 1) * size):
            new_weights[c] = counts[c] / total
