"""Mixture parameters as they pass between the layers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._namespace import ArrayNamespace
from gaussmix.covariance._structure import CovarianceStructure

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class MixtureParams:
    """Parameters of a Gaussian mixture (NumPy float64, shapes as scikit-learn's).

    ``covariances`` and ``precisions_cholesky`` have the structure's shape (see
    :mod:`gaussmix.covariance`). A component whose weight is 0 was dropped: it
    is kept so that the arrays keep ``n_components`` rows.

    ``noise`` is the log-density ``-log V`` of a uniform noise component over
    a region of volume ``V`` (Banfield and Raftery 1993), or None for none;
    its weight is what the Gaussian components' weights leave of 1.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    noise: float | None = None
    #: a variational posterior's further parameters (:class:`~gaussmix.em.variational.VariationalPosterior`),
    #: whose expected log-densities the E-step then uses; None for a Gaussian mixture
    posterior: Any = None

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @property
    def n_columns(self) -> int:
        """Columns of the responsibilities: the components, and the noise's last where there is one."""
        return self.means.shape[0] + (self.noise is not None)

    @property
    def noise_weight(self) -> float:
        """The noise component's weight (0 without one)."""
        return 0.0 if self.noise is None else max(0.0, 1.0 - float(np.sum(self.weights)))


def joined_fits(parts: Sequence[MixtureParams]) -> MixtureParams:
    """Stacked fits (as :func:`gaussmix.em.batch.stack_fits` stacks them) of ``parts``, each of them stacked
    fits too, one after another: every array joined along its first axis."""
    return MixtureParams(*(np.concatenate([getattr(part, name) for part in parts])
                           for name in ("weights", "means", "covariances", "precisions_cholesky")))


@dataclass(frozen=True)
class KernelTerms:
    """What the E-step kernels need: per component, a constant and the layout's arrays.

    ``log(weight_k N(x | k)) = log_norm[k] - mahalanobis(x, k) / 2``, with
    ``log_norm[k] = log weight_k + log det U_k - d/2 log(2 pi)`` for a
    Gaussian mixture and ``arrays`` the layout's own (see
    ``Layout.kernel_arrays``) for rows centred at ``shift``. An EM model
    builds them on the host in float64 (:meth:`EMModel.kernel_terms`); a
    data source moves them to its namespace and compute dtype with
    :meth:`on`. Other models put their own terms here (expected values
    under a posterior, say) and the kernels stay the same.
    """

    log_norm: Any
    arrays: dict[str, Any]
    shift: np.ndarray
    #: ``log(noise weight / V)``: a last, constant column of the log-probabilities (None: no noise)
    noise: float | None = None
    #: an E-step under these terms computes in float64 whatever the source's dtype (its float32 chunks are
    #: converted): where float32 rounding is not negligible beside the covariances (see
    #: :func:`gaussmix.em.scale.beyond_rounding` and ``run_em``)
    in_float64: bool = False

    def on(self, xp: ArrayNamespace, dtype: Any) -> KernelTerms:
        """These terms as arrays of ``xp`` in ``dtype`` (float64 with :attr:`in_float64`; the shift stays a
        NumPy float64 array)."""
        dtype = np.float64 if self.in_float64 else dtype
        return KernelTerms(
            log_norm=xp.asarray(self.log_norm, dtype=dtype),
            arrays={name: xp.asarray(value, dtype=dtype) for name, value in self.arrays.items()},
            shift=self.shift,
            noise=self.noise,
            in_float64=self.in_float64,
        )

    @property
    def n_components(self) -> int:
        return int(self.log_norm.shape[0])


def log_norms(structure: CovarianceStructure, params: MixtureParams) -> np.ndarray:
    """``log weight_k + log det U_k - d/2 log(2 pi)`` per component (``-inf`` for a dropped one)."""
    with np.errstate(divide="ignore"):
        log_weights = np.log(params.weights)
    log_det = structure.layout.log_det_precision_cholesky(params.precisions_cholesky, params.n_features)
    return log_weights + log_det - 0.5 * params.n_features * LOG_2PI


def kernel_terms(structure: CovarianceStructure, params: MixtureParams, shift: np.ndarray) -> KernelTerms:
    """The Gaussian mixture's :class:`KernelTerms` for rows centred at ``shift`` (host float64); a variational
    posterior's own (its expected log-densities) where ``params`` carry one."""
    if params.posterior is not None:
        return params.posterior.kernel_terms(structure, params, shift)
    return KernelTerms(
        log_norm=log_norms(structure, params), arrays=structure.layout.kernel_arrays(params, shift), shift=shift,
        noise=noise_log_prob(params),
    )


def noise_log_prob(params: MixtureParams) -> float | None:
    """``log(noise weight) - log V``, the noise column's constant (None without noise; -inf at weight 0)."""
    if params.noise is None:
        return None
    weight = params.noise_weight
    return params.noise + math.log(weight) if weight > 0 else -math.inf


def checked_params(
    structure: CovarianceStructure,
    weights: Any,
    means: Any,
    covariances: Any,
    precisions_cholesky: Any = None,
    noise: float | None = None,
) -> MixtureParams:
    """Validate parameter arrays and return them as float64 :class:`MixtureParams`.

    Checks shapes against ``means``' ``(K, d)``, finite values, weights on the
    simplex (with a ``noise`` component, summing to at most 1), symmetric
    positive definite covariances and, when given, precision factors that
    agree with the covariances. Raises ValueError.
    """
    from gaussmix._validation import finite_array

    dtype = np.asarray(means).dtype
    means = finite_array(means, "means")
    if means.ndim != 2:
        raise ValueError(f"means must have shape (n_components, n_features), got shape {means.shape}")
    n_components, n_features = means.shape
    weights = finite_array(weights, "weights")
    covariances = finite_array(covariances, "covariances")
    expected = structure.covariance_shape(n_components, n_features)
    if weights.shape != (n_components,):
        raise ValueError(f"weights has shape {weights.shape}, expected ({n_components},)")
    if covariances.shape != expected:
        raise ValueError(
            f"covariances for covariance_type={structure.name!r} has shape {covariances.shape}, expected {expected}"
        )
    tolerance = 1e-5 if dtype == np.float32 else 1e-8
    if np.any(weights < 0):
        raise ValueError(f"weights must be non-negative, got minimum {np.min(weights):.6g}")
    if noise is not None:
        if not math.isfinite(noise):
            raise ValueError(f"the noise's log-density must be finite, got {noise}")
        if float(np.sum(weights)) > 1.0 + tolerance:
            raise ValueError(f"weights with a noise component must sum to at most 1, got {float(np.sum(weights)):.6g}")
    elif abs(float(np.sum(weights)) - 1.0) > tolerance:
        raise ValueError(
            f"weights must sum to 1 (within {tolerance:g}), got sum 1{float(np.sum(weights)) - 1.0:+.3g}"
        )
    structure.layout.check_covariance_values(covariances)
    expected_chol = structure.layout.precisions_cholesky(covariances)
    if precisions_cholesky is None:
        return MixtureParams(weights, means, covariances, expected_chol, noise)
    prec_chol = finite_array(precisions_cholesky, "precisions_cholesky")
    rtol = 1e-2 if dtype == np.float32 else 1e-5
    if prec_chol.shape != expected or not np.allclose(
        prec_chol, expected_chol, rtol=rtol, atol=rtol * np.max(np.abs(expected_chol))
    ):
        raise ValueError("precisions_cholesky does not match the covariances")
    return MixtureParams(weights, means, covariances, prec_chol, noise)
