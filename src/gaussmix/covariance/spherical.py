"""``spherical``: each component has one variance shared by all features (mclust's VII).

Shapes: covariances ``(K,)`` (the variances); second-moment statistic ``(K,)``
(the responsibility-weighted sum of squared norms of the shifted rows).

Kernels: ``p_k |x - mu_k|^2 = p_k (|x|^2 - 2 x . mu_k + |mu_k|^2)``, one
matrix product against the means.
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

    def kernel_arrays(self, params, shift):
        centred_means = params.means - shift
        return {
            "precisions": params.precisions_cholesky**2,
            "means": centred_means,
            "const": np.sum(centred_means**2, axis=1),
        }

    def feature_width(self, n_features, n_components):
        return 1

    def features(self, xp, Xt, n_components):
        return xp.sum(Xt * Xt, axis=0)

    def mahalanobis(self, xp, Xt, features, arrays):
        squared = features[None, :] - 2.0 * (arrays["means"] @ Xt) + arrays["const"][:, None]
        return squared * arrays["precisions"][:, None]

    def second_moment(self, xp, Xt, features, resp):
        return resp @ features

    def second_moment_shape(self, n_components, n_features):
        return (n_components,)

    def covariances(self, counts, first, second, reg):
        c = safe_counts(counts)
        n_features = first.shape[1]
        scatter = second - np.sum(first * first, axis=1) / c
        return scatter / (c * n_features) + np.mean(reg)

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
