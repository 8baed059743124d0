"""``full``: each component has its own unrestricted covariance matrix (mclust's VVV).

Shapes: covariances ``(K, d, d)``; second-moment statistic ``(K, d(d+1)/2)``,
the upper triangle of each component's second moment, packed row by row.

Kernels: with ``q(x)`` the upper-triangular products ``x_i x_j`` of a row
(off-diagonal ones counted twice against a symmetric matrix), the
Mahalanobis term is ``q(x) . P_k - 2 x . P_k mu_k + mu_k' P_k mu_k``: one matrix
product against all components' packed precisions; the second moment is
``resp @ q``. Both cost about ``m K d^2`` flops with long inner dimensions.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._base import MatrixStructure, safe_counts, symmetrize


def packed_index(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each packed upper-triangular entry, row by row."""
    return np.triu_indices(n_features)


class Full(MatrixStructure):
    name = "full"
    description = "one general covariance matrix per component"

    def covariance_shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def kernel_arrays(self, params, shift):
        rows, cols = packed_index(params.n_features)
        precisions = self.precisions(params.precisions_cholesky)
        centred_means = params.means - shift
        weighted = precisions @ centred_means[:, :, None]
        return {
            "packed": precisions[:, rows, cols] * np.where(rows == cols, 1.0, 2.0),
            "linear": weighted[:, :, 0],
            "const": np.einsum("kd,kd->k", centred_means, weighted[:, :, 0]),
        }

    def feature_width(self, n_features):
        return n_features * (n_features + 1) // 2

    def features(self, xp, Xt):
        return xp.triu_products(Xt)

    def mahalanobis(self, xp, Xt, features, arrays):
        return arrays["packed"] @ features - 2.0 * (arrays["linear"] @ Xt) + arrays["const"][:, None]

    def second_moment(self, xp, Xt, features, resp):
        return resp @ xp.transpose_last(features)

    def second_moment_shape(self, n_components, n_features):
        return (n_components, n_features * (n_features + 1) // 2)

    def covariances(self, counts, first, second, reg):
        n_components, n_features = first.shape
        rows, cols = packed_index(n_features)
        full = np.empty((n_components, n_features, n_features))
        full[:, rows, cols] = second
        full[:, cols, rows] = second
        c = safe_counts(counts)
        scatter = full - first[:, :, None] * first[:, None, :] / c[:, None, None]
        cov = symmetrize(scatter / c[:, None, None])
        idx = np.arange(n_features)
        cov[:, idx, idx] += reg
        return cov

    def full_covariances(self, covariances, n_components, n_features):
        return covariances

    def marginal_covariances(self, covariances, features):
        return covariances[:, features][:, :, features]

    def default_covariances(self, variances, n_components):
        return np.broadcast_to(np.diag(variances), (n_components,) + (variances.size,) * 2).copy()
