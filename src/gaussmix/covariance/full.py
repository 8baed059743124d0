"""``full``: each component has its own unrestricted covariance matrix (mclust's VVV).

Shapes: covariances ``(K, d, d)``; second-moment statistic ``(K, d, d)``.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._base import MatrixStructure, safe_counts, symmetrize


class Full(MatrixStructure):
    name = "full"
    description = "one general covariance matrix per component"

    def covariance_shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def second_moment(self, xp, centred, resp):
        weighted = centred * resp.T[:, :, None]
        return xp.transpose_last(weighted) @ centred  # (K, d, d)

    def second_moment_shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def covariances(self, counts, first, second, reg):
        c = safe_counts(counts)
        scatter = second - first[:, :, None] * first[:, None, :] / c[:, None, None]
        cov = symmetrize(scatter / c[:, None, None])
        idx = np.arange(first.shape[1])
        cov[:, idx, idx] += reg
        return cov

    def full_covariances(self, covariances, n_components, n_features):
        return covariances

    def marginal_covariances(self, covariances, features):
        return covariances[:, features][:, :, features]

    def default_covariances(self, variances, n_components):
        return np.broadcast_to(np.diag(variances), (n_components,) + (variances.size,) * 2).copy()
