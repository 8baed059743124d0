"""``tied``: one covariance matrix shared by all components (mclust's EEE).

Shapes: covariances ``(d, d)``; second-moment statistic ``(d, d)``: the
weighted second moment of all rows, which is the same for every component.

Kernels: the rows are whitened once per chunk, ``z = U' x``; the
Mahalanobis term is ``|z|^2 - 2 z . U' mu_k + |U' mu_k|^2``, so the work is
``m d^2 + m d K`` flops instead of ``m K d^2``.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._base import MatrixStructure, safe_counts, symmetrize


class Tied(MatrixStructure):
    name = "tied"
    description = "one general covariance matrix shared by all components"

    def covariance_shape(self, n_components, n_features):
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def kernel_arrays(self, params, shift):
        whitened_means = (params.means - shift) @ params.precisions_cholesky
        return {
            "whiten": np.ascontiguousarray(params.precisions_cholesky.T),
            "means": whitened_means,
            "const": np.sum(whitened_means**2, axis=1),
        }

    def features(self, xp, Xt, n_components):
        return None

    def mahalanobis(self, xp, Xt, features, arrays):
        z = arrays["whiten"] @ Xt  # (d, m)
        return xp.sum(z * z, axis=0)[None, :] - 2.0 * (arrays["means"] @ z) + arrays["const"][:, None]

    def second_moment(self, xp, Xt, features, resp):
        weights = xp.sum(resp, axis=0)
        return (Xt * weights[None, :]) @ xp.transpose_last(Xt)

    def second_moment_shape(self, n_components, n_features):
        return (n_features, n_features)

    def covariances(self, counts, first, second, reg):
        c = safe_counts(counts)
        between = (first / c[:, None]).T @ first  # sum_k first_k first_k^T / n_k
        cov = symmetrize((second - between) / max(float(np.sum(counts)), np.finfo(float).tiny))
        cov[np.diag_indices_from(cov)] += reg
        return cov

    def full_covariances(self, covariances, n_components, n_features):
        return np.broadcast_to(covariances, (n_components,) + covariances.shape).copy()

    def marginal_covariances(self, covariances, features):
        return covariances[features][:, features]

    def default_covariances(self, variances, n_components):
        return np.diag(variances)

    def replace_components(self, covariances, source, mask):
        return covariances
