"""``diag``: each component has its own axis-aligned (diagonal) covariance (mclust's VVI).

Shapes: covariances ``(K, d)`` (the variances); second-moment statistic ``(K, d)``.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._base import CovarianceStructure, SingularCovarianceError, safe_counts


class Diag(CovarianceStructure):
    name = "diag"
    description = "one diagonal covariance matrix per component"

    def covariance_shape(self, n_components, n_features):
        return (n_components, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features

    def mahalanobis(self, xp, centred, precisions_cholesky):
        scaled = centred * precisions_cholesky[:, None, :]
        return xp.sum(scaled * scaled, axis=2).T

    def second_moment(self, xp, centred, resp):
        return xp.sum(centred * centred * resp.T[:, :, None], axis=1)

    def second_moment_shape(self, n_components, n_features):
        return (n_components, n_features)

    def covariances(self, counts, first, second, reg):
        c = safe_counts(counts)[:, None]
        return (second - first * first / c) / c + reg

    def precisions_cholesky(self, covariances):
        bad = ~(np.isfinite(covariances) & (covariances > 0))
        if np.any(bad):
            raise SingularCovarianceError(tuple(int(k) for k in np.flatnonzero(np.any(bad, axis=1))))
        return 1.0 / np.sqrt(covariances)

    def precisions_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky**2

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        return 1.0 / precisions_cholesky**2

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return np.sum(np.log(precisions_cholesky), axis=1)

    def full_covariances(self, covariances, n_components, n_features):
        out = np.zeros((n_components, n_features, n_features))
        idx = np.arange(n_features)
        out[:, idx, idx] = covariances
        return out

    def default_covariances(self, variances, n_components):
        return np.broadcast_to(variances, (n_components, variances.size)).copy()

    def replace_components(self, covariances, source, mask):
        out = covariances.copy()
        out[mask] = source[mask]
        return out

    def check_precisions(self, precisions, n_components, n_features):
        name = "precisions_init"
        array = self._as_float_array(precisions, name)
        self._check_shape(array, self.covariance_shape(n_components, n_features), name)
        if np.any(array <= 0):
            raise ValueError(
                f"{name} for covariance_type='diag' must be positive (inverse variances), "
                f"got minimum {array.min():.3g}."
            )
        return array
