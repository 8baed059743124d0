"""``diag``: each component has its own axis-aligned (diagonal) covariance (mclust's VVI).

Shapes: covariances ``(K, d)`` (the variances); second-moment statistic ``(K, d)``.

Kernels: ``sum_j p_kj (x_j - mu_kj)^2`` expands into two matrix products
against the squared and the plain rows.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._base import VarianceStructure, safe_counts


class Diag(VarianceStructure):
    name = "diag"
    description = "one diagonal covariance matrix per component"

    def covariance_shape(self, n_components, n_features):
        return (n_components, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features

    def kernel_arrays(self, params, shift):
        precisions = params.precisions_cholesky**2
        centred_means = params.means - shift
        return {
            "precisions": precisions,
            "linear": centred_means * precisions,
            "const": np.sum(centred_means**2 * precisions, axis=1),
        }

    def features(self, xp, Xt, n_components):
        return Xt * Xt

    def mahalanobis(self, xp, Xt, features, arrays):
        return arrays["precisions"] @ features - 2.0 * (arrays["linear"] @ Xt) + arrays["const"][:, None]

    def second_moment(self, xp, Xt, features, resp):
        return resp @ xp.transpose_last(features)

    def second_moment_shape(self, n_components, n_features):
        return (n_components, n_features)

    def covariances(self, counts, first, second, reg):
        c = safe_counts(counts)[:, None]
        return (second - first * first / c) / c + reg

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return np.sum(np.log(precisions_cholesky), axis=1)

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
