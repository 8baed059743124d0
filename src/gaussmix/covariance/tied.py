"""``tied``: one covariance matrix shared by all components (mclust's EEE).

Shapes: covariances ``(d, d)``; second-moment statistic ``(d, d)``, pooled over
components (each component's rows centred at its own shift).
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._base import (
    CovarianceStructure,
    check_matrix_precisions,
    cholesky_lower,
    inverse_lower,
    safe_counts,
    symmetrize,
    upper_cholesky_of,
)


class Tied(CovarianceStructure):
    name = "tied"
    description = "one general covariance matrix shared by all components"

    def covariance_shape(self, n_components, n_features):
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def mahalanobis(self, xp, centred, precisions_cholesky):
        whitened = centred @ precisions_cholesky  # (K, n, d) @ (d, d)
        return xp.sum(whitened * whitened, axis=2).T

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

    def precisions_cholesky(self, covariances):
        return inverse_lower(cholesky_lower(covariances)).T

    def precisions_cholesky_from_precisions(self, precisions):
        return upper_cholesky_of(precisions)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky @ precisions_cholesky.T

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        inv_upper_t = inverse_lower(precisions_cholesky.T)
        return symmetrize(inv_upper_t.T @ inv_upper_t)

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return np.sum(np.log(np.diag(precisions_cholesky)))

    def full_covariances(self, covariances, n_components, n_features):
        return np.broadcast_to(covariances, (n_components,) + covariances.shape).copy()

    def default_covariances(self, variances, n_components):
        return np.diag(variances)

    def replace_components(self, covariances, source, mask):
        return covariances

    def check_precisions(self, precisions, n_components, n_features):
        name = "precisions_init"
        array = self._as_float_array(precisions, name)
        self._check_shape(array, self.covariance_shape(n_components, n_features), name)
        check_matrix_precisions(array, name)
        return array
