"""``tied``: one covariance matrix shared by all components (mclust's EEE).

Shapes: covariances ``(d, d)``; second-moment statistic ``(d, d)``, pooled over
components (each component's rows centred at its own shift).
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

    def second_moment(self, xp, centred, resp):
        weighted = centred * resp.T[:, :, None]
        return xp.sum(xp.transpose_last(weighted) @ centred, axis=0)

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
