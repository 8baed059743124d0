"""Mixture parameters as they pass between the layers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._namespace import ArrayNamespace
from gaussmix.covariance import CovarianceStructure

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class MixtureParams:
    """Parameters of a Gaussian mixture (NumPy float64, shapes as scikit-learn's).

    ``covariances`` and ``precisions_cholesky`` have the structure's shape (see
    :mod:`gaussmix.covariance`). A component whose weight is 0 was dropped: it
    is kept so that the arrays keep ``n_components`` rows.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]


@dataclass(frozen=True)
class KernelParams:
    """What the E-step kernel needs, as arrays of the engine's namespace and compute dtype.

    ``log_norm[k] = log weight_k + log det U_k - d/2 log(2 pi)``, so that
    ``log(weight_k N(x | k)) = log_norm[k] - mahalanobis(x, k) / 2``.
    """

    means: Any
    precisions_cholesky: Any
    log_norm: Any


def kernel_params(
    xp: ArrayNamespace, structure: CovarianceStructure, params: MixtureParams, dtype: Any
) -> KernelParams:
    """Move ``params`` to the namespace ``xp`` in ``dtype``, with the normalising constants."""
    with np.errstate(divide="ignore"):
        log_weights = np.log(params.weights)
    log_det = structure.log_det_precision_cholesky(params.precisions_cholesky, params.n_features)
    log_norm = log_weights + log_det - 0.5 * params.n_features * LOG_2PI
    return KernelParams(
        means=xp.asarray(params.means, dtype=dtype),
        precisions_cholesky=xp.asarray(params.precisions_cholesky, dtype=dtype),
        log_norm=xp.asarray(log_norm, dtype=dtype),
    )
