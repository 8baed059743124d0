"""The storage layouts: full, shared, diagonal, shared diagonal, scalar.

=====================  ==================  =====================  =================================
layout                 covariances         second-moment          kernels
=====================  ==================  =====================  =================================
``FULL``               ``(K, d, d)``       ``(K, d(d+1)/2)``      quadratic row terms, or whitening
``SHARED``             ``(d, d)``          ``(d, d)`` pooled      whitening once per chunk
``DIAGONAL``           ``(K, d)``          ``(K, d)``             squared rows
``SHARED_DIAGONAL``    ``(d,)``            ``(d,)`` pooled        squared rows
``SCALAR``             ``(K,)``            ``(K,)``               squared row norms
=====================  ==================  =====================  =================================

Full (quadratic row terms, most shapes), diagonal and scalar layouts share
one form: each row's *features* ``f(x) = [q(x); x; 1]``, with ``q(x)`` the
quadratic terms the layout's statistic sums (full: the upper-triangular
products ``x_i x_j``; diagonal: the squares ``x_j^2``; scalar: ``|x|^2``),
make the Mahalanobis term linear in them: ``c_k . f(x)`` with coefficients
``[P_k (packed: off-diagonal entries twice), -2 P_k mu_k, mu_k' P_k mu_k]``.
All components' distances are then one matrix product ``C @ F`` over a
chunk's features ``F``, and the statistics one more, ``F @ resp'``, whose rows
are the second moments, the first moments and the counts (the row of ones).
Two products with the long row axis inside: on a few features this is ten
times faster than separate products and elementwise passes.

Full covariances with few components (K <= 2, K <= 4 with d >= 16, K <= 16
with d >= 48) or many features (d >= 96) are whitened instead, one component
at a time, ``z = U_k' x``; the second moment is one symmetric product
``(sqrt(r_k) x)(sqrt(r_k) x)'`` per component.

Shared: the rows are whitened once per chunk, ``z = U' x``; the Mahalanobis
term is ``|z|^2 - 2 z . U' mu_k + |U' mu_k|^2``, so the work is ``m d^2 + m
d K`` flops instead of ``m K d^2``. The pooled second moment weighs each row
by its responsibilities' total, its weight: the engines take it once
(:attr:`~gaussmix.covariance._layout.Layout.second_of_row_totals`).

Diagonal and shared diagonal: ``sum_j p_kj (x_j - mu_kj)^2``, the features'
form with the squared rows (a shared diagonal's statistic pools the
components').

Scalar: ``p_k |x - mu_k|^2 = p_k (|x|^2 - 2 x . mu_k + |mu_k|^2)``, the
features' form with the squared norms.
"""

from __future__ import annotations

import functools

import numpy as np

from gaussmix._compiled import compiled
from gaussmix.covariance._layout import MatrixLayout, VarianceLayout
from gaussmix.covariance._linalg import safe_counts
from gaussmix.covariance._loops import bearing_rows_scaled, shifted_column_squares


@functools.lru_cache(maxsize=64)
def packed_index(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each packed upper-triangular entry, row by row (cached: never write into them)."""
    return np.triu_indices(n_features)


class FeatureKernels:
    """Kernels of a layout whose distances are linear in a row's features ``[q(x); x; 1]`` (see above).

    The layout gives :meth:`quadratic_terms` (``(w, m)`` of a chunk; or
    :meth:`features` whole, where it can write them in place),
    :meth:`feature_coefficients` and :meth:`second_from_sums` (its statistic
    from the ``(w, K)`` sums of the quadratic terms); the layout's row terms,
    distances and moments follow.
    """

    def quadratic_terms(self, xp, Xt):
        raise NotImplementedError

    def feature_coefficients(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """``(K, w + d + 1)``: the distances' coefficients of the features."""
        raise NotImplementedError

    def second_from_sums(self, xp, sums):
        return xp.transpose_last(sums)

    def features(self, xp, Xt):
        ones = xp.ones((1, Xt.shape[1]), xp.dtype_of(Xt))
        return xp.concat([self.quadratic_terms(xp, Xt), Xt, ones])

    def feature_distances(self, arrays, features):
        return arrays["coefficients"] @ features

    def row_terms(self, xp, Xt, n_components):
        return self.features(xp, Xt)

    def mahalanobis(self, xp, Xt, row_terms, arrays):
        return self.feature_distances(arrays, row_terms)

    def second_moment(self, xp, Xt, row_terms, resp):
        return self.feature_moments(xp, Xt, row_terms, resp)[2]

    def moments(self, xp, Xt, row_terms, resp):
        return self.feature_moments(xp, Xt, row_terms, resp)

    def feature_moments(self, xp, Xt, features, resp):
        sums = xp.products_with_rows(features, resp)  # (w + d + 1, K): quadratic terms, rows, ones
        width = features.shape[0] - Xt.shape[0] - 1
        # The counts (the row of ones) in float64: from the product in float64, else summed apart.
        counts = sums[-1] if xp.dtype_of(resp) == np.float64 else xp.sum(xp.to_float64(resp), axis=1)
        return counts, xp.transpose_last(sums[width:-1]), self.second_from_sums(xp, sums[:width])


def _shifted_column_squares(xp, z, shift):
    """``column_squares(z - shift[:, None])`` of a ``(d, m)`` array ``z`` (which may be overwritten): one
    compiled pass over ``z`` in host memory. Subtracting in place and then summing the squares took two
    passes, in all a third as long again as the product that made ``z`` (d = 32, m = 2,500: 54 us against
    100 us for the product, 14 us in one pass)."""
    loop = compiled(shifted_column_squares) if xp.in_host_memory else None
    if loop is None:
        z -= shift[:, None]  # in place, then the squares summed in one pass (d = 32, K = 4: 2.9x faster)
        return xp.column_squares(z)
    values = xp.host_view(z)
    out = np.empty(values.shape[1], dtype=values.dtype)
    loop(values, np.asarray(xp.to_numpy(shift), dtype=values.dtype), out)
    return xp.asarray(out)


def _outer_terms(first: np.ndarray, counts: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``F delta' + delta F' + n delta delta'`` per row of ``first`` (K, d) -> (K, d, d)."""
    cross = first[:, :, None] * delta[None, None, :]
    return cross + np.swapaxes(cross, -1, -2) + counts[:, None, None] * np.outer(delta, delta)


#: A component's second moment is taken over the rows that bear on it (:func:`_bearing_rows`) where they are
#: at most this fraction of the chunk: gathering them costs a pass over them.
BEARING_FRACTION = 0.75


def _whitened_second_moments(loop, Xt, resp, norms, eps, packed):
    """:meth:`FullLayout.second_moment` of a whitened NumPy chunk ``Xt`` (d, m) with the compiled loop ``loop``
    (:func:`~gaussmix.covariance._loops.bearing_rows_scaled`; ``norms``, ``eps`` and the ``packed`` index as
    that method has them): each component's bearing rows gathered and scaled in one pass, then one symmetric
    product (an E-step of full n = 1e4, d = 64, K = 16: 1.14x faster than gathering, scaling and multiplying
    in NumPy)."""
    n_features, n_rows = Xt.shape
    packed_rows, packed_cols = packed
    kept, scales = np.empty(n_rows, dtype=np.intp), np.empty(n_rows, dtype=Xt.dtype)
    scaled = np.empty((n_features, n_rows), dtype=Xt.dtype)
    resp = np.asarray(resp, dtype=Xt.dtype)
    blocks = np.empty((resp.shape[0], packed_rows.size), dtype=Xt.dtype)
    for k in range(resp.shape[0]):
        bearing = scaled[:, : loop(Xt, resp[k], norms, BEARING_FRACTION, eps, kept, scales, scaled)]
        blocks[k] = np.dot(bearing, bearing.T)[packed_rows, packed_cols]
    return blocks


def _bearing_rows(xp, terms, eps):
    """The positions of the rows whose term ``r_i |x_i|^2`` (``terms``, host memory) in a component's second
    moment is above ``eps / m`` of their total, or None where that is most rows (:data:`BEARING_FRACTION`).

    The terms left out add up to at most ``eps`` times the trace of the
    moment, a positive semi-definite matrix whose every entry is at most its
    trace: less than the rounding of the sum itself. With many components
    most rows have responsibilities of exactly 0 or far below that (d = 128,
    K = 64: about 90% of them in the first iteration, 98% after it).
    """
    values = xp.host_view(terms)
    kept = np.flatnonzero(values > eps / values.shape[0] * float(np.sum(values)))
    return kept if kept.size <= BEARING_FRACTION * values.shape[0] else None


class FullLayout(FeatureKernels, MatrixLayout):
    """One general matrix per component."""

    name = "full"

    def shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def statistic_shape(self, n_components, n_features):
        return (n_components, n_features * (n_features + 1) // 2)

    def free_entries(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    @staticmethod
    def whitens(n_features: int, n_components: int) -> bool:
        """Whether per-component whitening beats quadratic row terms (measured crossover).

        From about 96 features the quadratic terms of a row (d(d+1)/2 of
        them) outgrow the caches and whitening is 3-9 times faster; with 16
        components it is already 1.6 times faster at 64 features (square
        products against the whitening matrices, where the quadratic terms
        take products with only 16 output rows).
        """
        return (n_components <= 2 or (n_components <= 4 and n_features >= 16)
                or (n_components <= 16 and n_features >= 48) or n_features >= 96)

    def row_terms_width(self, n_features, n_components):
        # Whitening keeps a few (d, m) arrays per component live: sized by four of them, a chunk's stay in the
        # caches (d = 128: 1,024 rows; at 4,096 rows an iteration took 1.5 times as long).
        return 4 * n_features if self.whitens(n_features, n_components) else (n_features + 1) * (n_features + 2) // 2

    def has_row_terms(self, n_features, n_components):
        return not self.whitens(n_features, n_components)

    def row_terms(self, xp, Xt, n_components):
        if not self.has_row_terms(Xt.shape[0], n_components):
            return None
        return super().row_terms(xp, Xt, n_components)

    def features(self, xp, Xt):
        # The packed products x_a x_b (a <= b) as the quadratic terms, written where the features go: no copy
        # of the widest temporary
        d = Xt.shape[0]
        width = d * (d + 1) // 2
        features = xp.triu_products(Xt, trailing=d + 1)
        features[width : width + d] = Xt
        features[width + d] = 1.0
        return features

    def kernel_arrays(self, params, shift):
        if self.whitens(params.n_features, params.n_components):
            whiten = np.ascontiguousarray(np.swapaxes(params.precisions_cholesky, -1, -2))
            return {"whiten": whiten, "means": (whiten @ (params.means - shift)[:, :, None])[:, :, 0]}
        rows, cols = packed_index(params.n_features)
        precisions = self.precisions(params.precisions_cholesky)
        centred_means = params.means - shift
        weighted = precisions @ centred_means[:, :, None]
        arrays = {
            "packed": precisions[:, rows, cols] * np.where(rows == cols, 1.0, 2.0),
            "linear": weighted[:, :, 0],
            "const": np.einsum("kd,kd->k", centred_means, weighted[:, :, 0]),
        }
        return {**arrays, "coefficients": self.feature_coefficients(arrays)}

    def feature_coefficients(self, arrays):
        return np.concatenate([arrays["packed"], -2.0 * arrays["linear"], arrays["const"][:, None]], axis=1)

    def mahalanobis(self, xp, Xt, row_terms, arrays):
        if row_terms is None:  # one component at a time: (d, m) temporaries, not (K, d, m)
            squared = []
            for whiten, mean in zip(arrays["whiten"], arrays["means"]):
                squared.append(_shifted_column_squares(xp, xp.matmul(whiten, Xt), mean))
            return xp.stack(squared)
        return super().mahalanobis(xp, Xt, row_terms, arrays)

    def second_moment(self, xp, Xt, row_terms, resp):
        if row_terms is None:
            rows, cols = packed_index(Xt.shape[0])
            norms = xp.column_squares(Xt) if xp.in_host_memory else None
            eps = np.finfo(xp.dtype_of(Xt)).eps
            loop = compiled(bearing_rows_scaled) if xp.name == "numpy" else None
            if loop is not None and np.result_type(Xt, resp) == Xt.dtype:  # gathered and scaled in one pass
                return _whitened_second_moments(loop, Xt, resp, norms, float(eps), (rows, cols))
            blocks = []
            for k in range(resp.shape[0]):
                weights, columns = resp[k], Xt
                if norms is not None:  # only the rows whose terms are not lost to rounding in the sum
                    kept = _bearing_rows(xp, weights * norms, eps)
                    if kept is not None:
                        weights, columns = xp.take(weights, kept, axis=0), xp.take(Xt, kept, axis=1)
                scaled = columns * xp.sqrt(weights)[None, :]
                blocks.append(xp.matmul(scaled, xp.transpose_last(scaled))[rows, cols])
            return xp.stack(blocks)
        return super().second_moment(xp, Xt, row_terms, resp)

    def moments(self, xp, Xt, row_terms, resp):
        if row_terms is None:  # whitened: the layouts' general moments
            return MatrixLayout.moments(self, xp, Xt, row_terms, resp)
        return super().moments(xp, Xt, row_terms, resp)

    def scatter(self, counts, first, second):
        n_components, n_features = first.shape
        rows, cols = packed_index(n_features)
        full = np.empty((n_components, n_features, n_features))
        full[:, rows, cols] = second
        full[:, cols, rows] = second
        return full - first[:, :, None] * first[:, None, :] / safe_counts(counts)[:, None, None]

    def recentre_second(self, second, first, counts, delta):
        rows, cols = packed_index(first.shape[1])
        return second + _outer_terms(first, counts, delta)[:, rows, cols]

    def full_covariances(self, covariances, n_components, n_features):
        return covariances

    def marginal_covariances(self, covariances, features):
        return covariances[:, features][:, :, features]

    def default_covariances(self, variances, n_components):
        return np.broadcast_to(np.diag(variances), (n_components,) + (variances.size,) * 2).copy()


class SharedLayout(MatrixLayout):
    """One general matrix shared by all components."""

    name = "shared"
    per_component = False

    @property
    def expanded(self):
        return FULL

    def pooled_second(self, second):
        n_features = int(round((np.sqrt(8 * second.shape[-1] + 1) - 1) / 2))
        rows, cols = packed_index(n_features)
        pooled = np.empty(second.shape[:-2] + (n_features, n_features))
        pooled[..., rows, cols] = pooled[..., cols, rows] = np.sum(second, axis=-2)
        return pooled

    def shape(self, n_components, n_features):
        return (n_features, n_features)

    def statistic_shape(self, n_components, n_features):
        return (n_features, n_features)

    def free_entries(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def has_row_terms(self, n_features, n_components):
        return False

    def row_terms(self, xp, Xt, n_components):
        return None

    def kernel_arrays(self, params, shift):
        whitened_means = (params.means - shift) @ params.precisions_cholesky
        return {
            "whiten": np.ascontiguousarray(params.precisions_cholesky.T),
            "means": whitened_means,
            "const": np.sum(whitened_means**2, axis=1),
        }

    def mahalanobis(self, xp, Xt, row_terms, arrays):
        z = arrays["whiten"] @ Xt  # (d, m)
        return xp.column_squares(z)[None, :] - 2.0 * (arrays["means"] @ z) + arrays["const"][:, None]

    second_of_row_totals = True

    def second_moment(self, xp, Xt, row_terms, resp):
        return self.rows_second_moment(xp, Xt, xp.sum(resp, axis=0))

    def rows_second_moment(self, xp, Xt, weights):
        # A product with its own transpose (BLAS's symmetric rank-k update: half the multiplications)
        scaled = Xt if weights is None else Xt * xp.sqrt(weights)[None, :]
        return xp.matmul(scaled, xp.transpose_last(scaled))

    def scatter(self, counts, first, second):
        between = (first / safe_counts(counts)[:, None]).T @ first  # sum_k first_k first_k' / n_k
        return second - between

    def recentre_second(self, second, first, counts, delta):
        total = np.sum(first, axis=0, keepdims=True)
        return second + _outer_terms(total, np.sum(counts, keepdims=True), delta)[0]

    def full_covariances(self, covariances, n_components, n_features):
        return np.broadcast_to(covariances, (n_components,) + covariances.shape).copy()

    def marginal_covariances(self, covariances, features):
        return covariances[features][:, features]

    def default_covariances(self, variances, n_components):
        return np.diag(variances)


class DiagonalLayout(FeatureKernels, VarianceLayout):
    """One diagonal matrix per component, stored as its variances."""

    name = "diagonal"

    def shape(self, n_components, n_features):
        return (n_components, n_features)

    def statistic_shape(self, n_components, n_features):
        return (n_components, n_features)

    def free_entries(self, n_components, n_features):
        return n_components * n_features

    def row_terms_width(self, n_features, n_components):
        return 2 * n_features + 1

    def quadratic_terms(self, xp, Xt):
        return Xt * Xt

    def kernel_arrays(self, params, shift):
        precisions = np.broadcast_to(params.precisions_cholesky**2, params.means.shape)
        centred_means = params.means - shift
        arrays = {
            "precisions": np.ascontiguousarray(precisions),
            "linear": centred_means * precisions,
            "const": np.sum(centred_means**2 * precisions, axis=1),
        }
        return {**arrays, "coefficients": self.feature_coefficients(arrays)}

    def feature_coefficients(self, arrays):
        return np.concatenate([arrays["precisions"], -2.0 * arrays["linear"], arrays["const"][:, None]], axis=1)

    def scatter(self, counts, first, second):
        return second - first * first / safe_counts(counts)[:, None]

    def recentre_second(self, second, first, counts, delta):
        return second + 2.0 * first * delta + counts[:, None] * delta**2

    def whiten(self, precisions_cholesky, k, diff):
        return diff * precisions_cholesky[k]

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return np.sum(np.log(precisions_cholesky), axis=-1)

    def conditional_variances(self, covariances, precisions_cholesky):
        return covariances

    def collapsed(self, covariances, reg, units, thresholds):
        keep = units > 0
        return np.min((covariances[:, keep] - reg[keep]) / units[keep] ** 2, axis=1) <= thresholds

    def full_covariances(self, covariances, n_components, n_features):
        out = np.zeros((n_components, n_features, n_features))
        idx = np.arange(n_features)
        out[:, idx, idx] = covariances
        return out

    def marginal_covariances(self, covariances, features):
        return covariances[:, features]

    def default_covariances(self, variances, n_components):
        return np.broadcast_to(variances, (n_components, variances.size)).copy()


class SharedDiagonalLayout(DiagonalLayout):
    """One diagonal matrix shared by all components (mclust's EEI), stored as its variances."""

    name = "shared-diagonal"
    per_component = False

    @property
    def expanded(self):
        return DIAGONAL

    def pooled_second(self, second):
        return np.sum(second, axis=-2)

    def shape(self, n_components, n_features):
        return (n_features,)

    def statistic_shape(self, n_components, n_features):
        return (n_features,)

    def free_entries(self, n_components, n_features):
        return n_features

    def second_from_sums(self, xp, sums):
        return xp.sum(sums, axis=1)  # pooled over the components

    def scatter(self, counts, first, second):
        return second - np.sum(first * first / safe_counts(counts)[:, None], axis=0)

    def recentre_second(self, second, first, counts, delta):
        return second + 2.0 * np.sum(first, axis=0) * delta + np.sum(counts) * delta**2

    def whiten(self, precisions_cholesky, k, diff):
        return diff * precisions_cholesky

    def conditional_variances(self, covariances, precisions_cholesky):
        return covariances[None, :]

    def collapsed(self, covariances, reg, units, thresholds):
        keep = units > 0
        flag = np.min((covariances[keep] - reg[keep]) / units[keep] ** 2) <= np.max(thresholds)
        return np.full(thresholds.shape, flag)

    def full_covariances(self, covariances, n_components, n_features):
        return np.broadcast_to(np.diag(covariances), (n_components, n_features, n_features)).copy()

    def marginal_covariances(self, covariances, features):
        return covariances[features]

    def default_covariances(self, variances, n_components):
        return variances.copy()


class ScalarLayout(FeatureKernels, VarianceLayout):
    """One variance per component, the same for every feature."""

    name = "scalar"

    def shape(self, n_components, n_features):
        return (n_components,)

    def statistic_shape(self, n_components, n_features):
        return (n_components,)

    def free_entries(self, n_components, n_features):
        return n_components

    def row_terms_width(self, n_features, n_components):
        return n_features + 2

    def quadratic_terms(self, xp, Xt):
        return xp.reshape(xp.column_squares(Xt), (1, -1))

    def kernel_arrays(self, params, shift):
        centred_means = params.means - shift
        arrays = {
            "precisions": params.precisions_cholesky**2,
            "means": centred_means,
            "const": np.sum(centred_means**2, axis=1),
        }
        return {**arrays, "coefficients": self.feature_coefficients(arrays)}

    def feature_coefficients(self, arrays):
        terms = np.concatenate([np.ones((arrays["means"].shape[0], 1)), -2.0 * arrays["means"],
                                arrays["const"][:, None]], axis=1)
        with np.errstate(over="ignore", invalid="ignore"):  # a collapsed component's distances are inf or NaN
            return terms * arrays["precisions"][:, None]

    def second_from_sums(self, xp, sums):
        return sums[0]

    def scatter(self, counts, first, second):
        return second - np.sum(first * first, axis=1) / safe_counts(counts)

    def recentre_second(self, second, first, counts, delta):
        return second + 2.0 * (first @ delta) + counts * float(delta @ delta)

    def whiten(self, precisions_cholesky, k, diff):
        return diff * precisions_cholesky[k]

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return n_features * np.log(precisions_cholesky)

    def conditional_variances(self, covariances, precisions_cholesky):
        return covariances[:, None]

    def collapsed(self, covariances, reg, units, thresholds):
        return (covariances - np.mean(reg)) / np.max(units) ** 2 <= thresholds

    def full_covariances(self, covariances, n_components, n_features):
        return covariances[:, None, None] * np.eye(n_features)

    def marginal_covariances(self, covariances, features):
        return covariances.copy()

    def default_covariances(self, variances, n_components):
        return np.full(n_components, float(np.mean(variances)))


FULL = FullLayout()
SHARED = SharedLayout()
DIAGONAL = DiagonalLayout()
SHARED_DIAGONAL = SharedDiagonalLayout()
SCALAR = ScalarLayout()
