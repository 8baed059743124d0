"""``full``: each component has its own unrestricted covariance matrix (mclust's VVV).

Shapes: covariances ``(K, d, d)``; second-moment statistic ``(K, d, d)``.
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


class Full(CovarianceStructure):
    name = "full"
    description = "one general covariance matrix per component"

    def covariance_shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def mahalanobis(self, xp, centred, precisions_cholesky):
        whitened = centred @ precisions_cholesky  # (K, n, d) @ (K, d, d)
        return xp.sum(whitened * whitened, axis=2).T

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

    def precisions_cholesky(self, covariances):
        lower = cholesky_lower(covariances)
        return np.swapaxes(inverse_lower(lower), -1, -2)

    def precisions_cholesky_from_precisions(self, precisions):
        return upper_cholesky_of(precisions)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky @ np.swapaxes(precisions_cholesky, -1, -2)

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        # (U U^T)^-1 = U^-T U^-1; U^T is lower triangular.
        inv_upper_t = inverse_lower(np.swapaxes(precisions_cholesky, -1, -2))
        return symmetrize(np.swapaxes(inv_upper_t, -1, -2) @ inv_upper_t)

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return np.sum(np.log(np.diagonal(precisions_cholesky, axis1=-2, axis2=-1)), axis=-1)

    def full_covariances(self, covariances, n_components, n_features):
        return covariances

    def default_covariances(self, variances, n_components):
        return np.broadcast_to(np.diag(variances), (n_components,) + (variances.size,) * 2).copy()

    def replace_components(self, covariances, source, mask):
        out = covariances.copy()
        out[mask] = source[mask]
        return out

    def check_precisions(self, precisions, n_components, n_features):
        name = "precisions_init"
        array = self._as_float_array(precisions, name)
        self._check_shape(array, self.covariance_shape(n_components, n_features), name)
        check_matrix_precisions(array, name)
        return array
