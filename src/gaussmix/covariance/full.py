"""``full``: each component has its own unrestricted covariance matrix (mclust's VVV).

Shapes: covariances ``(K, d, d)``; second-moment statistic ``(K, d(d+1)/2)``,
the upper triangle of each component's second moment, packed row by row.

Kernels, chosen by the number of components K and features d:

* quadratic features (most shapes): with ``q(x)`` the upper-triangular
  products ``x_i x_j`` of a row (off-diagonal ones counted twice against a
  symmetric matrix), the Mahalanobis term is
  ``q(x) . P_k - 2 x . P_k mu_k + mu_k' P_k mu_k``, one matrix product against
  all components' packed precisions; the second moment is ``resp @ q``. Both
  cost about ``m K d^2`` flops with long inner dimensions.
* per-component whitening (K <= 2, or K <= 4 with d >= 16, where products
  with only K rows would be inefficient): ``z = U_k' x`` for each component,
  and the second moment as one symmetric product ``(sqrt(r_k) x)(sqrt(r_k) x)'``
  per component.
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

    @staticmethod
    def whitens(n_features: int, n_components: int) -> bool:
        """Whether per-component whitening beats quadratic features (measured crossover).

        From about 96 features the quadratic features of a row (d(d+1)/2 of
        them) outgrow the caches and whitening is 3-9 times faster.
        """
        return n_components <= 2 or (n_components <= 4 and n_features >= 16) or n_features >= 96

    def feature_width(self, n_features, n_components):
        return n_features if self.whitens(n_features, n_components) else n_features * (n_features + 1) // 2

    def kernel_arrays(self, params, shift):
        if self.whitens(params.n_features, params.n_components):
            whiten = np.ascontiguousarray(np.swapaxes(params.precisions_cholesky, -1, -2))
            return {"whiten": whiten, "means": (whiten @ (params.means - shift)[:, :, None])[:, :, 0]}
        rows, cols = packed_index(params.n_features)
        precisions = self.precisions(params.precisions_cholesky)
        centred_means = params.means - shift
        weighted = precisions @ centred_means[:, :, None]
        return {
            "packed": precisions[:, rows, cols] * np.where(rows == cols, 1.0, 2.0),
            "linear": weighted[:, :, 0],
            "const": np.einsum("kd,kd->k", centred_means, weighted[:, :, 0]),
        }

    def features(self, xp, Xt, n_components):
        if self.whitens(Xt.shape[0], n_components):
            return None
        return xp.triu_products(Xt)

    def mahalanobis(self, xp, Xt, features, arrays):
        if features is None:
            z = arrays["whiten"] @ Xt[None, :, :] - arrays["means"][:, :, None]  # (K, d, m), K small
            return xp.sum(z * z, axis=1)
        return arrays["packed"] @ features - 2.0 * (arrays["linear"] @ Xt) + arrays["const"][:, None]

    def second_moment(self, xp, Xt, features, resp):
        if features is None:
            rows, cols = packed_index(Xt.shape[0])
            blocks = []
            for k in range(resp.shape[0]):
                scaled = Xt * xp.sqrt(resp[k])[None, :]
                blocks.append((scaled @ xp.transpose_last(scaled))[rows, cols])
            return xp.stack(blocks)
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
