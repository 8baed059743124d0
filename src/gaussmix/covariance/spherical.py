"""``spherical``: each component has one variance shared by all features (mclust's VII).

Shapes: covariances ``(K,)`` (the variances); second-moment statistic ``(K,)``
(the responsibility-weighted sum of squared distances to the shift).
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._base import VarianceStructure, safe_counts


class Spherical(VarianceStructure):
    name = "spherical"
    description = "one variance per component, the same for every feature"

    def covariance_shape(self, n_components, n_features):
        return (n_components,)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components

    def mahalanobis(self, xp, centred, precisions_cholesky):
        squared = xp.sum(centred * centred, axis=2).T
        return squared * (precisions_cholesky * precisions_cholesky)[None, :]

    def second_moment(self, xp, centred, resp):
        return xp.sum(xp.sum(centred * centred, axis=2) * resp.T, axis=1)

    def second_moment_shape(self, n_components, n_features):
        return (n_components,)

    def covariances(self, counts, first, second, reg):
        c = safe_counts(counts)
        n_features = first.shape[1]
        scatter = second - np.sum(first * first, axis=1) / c
        return scatter / (c * n_features) + np.mean(reg)

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return n_features * np.log(precisions_cholesky)

    def full_covariances(self, covariances, n_components, n_features):
        return covariances[:, None, None] * np.eye(n_features)

    def marginal_covariances(self, covariances, features):
        return covariances.copy()

    def default_covariances(self, variances, n_components):
        return np.full(n_components, float(np.mean(variances)))
