"""Sufficient statistics and the per-chunk kernels that produce them.

For each component ``k`` and one fixed shift ``c`` (the data mean) the
statistics of a set of rows ``x_i`` with weights ``w_i`` and responsibilities
``r_ik`` are

* ``counts[k] = sum_i w_i r_ik``,
* ``first[k] = sum_i w_i r_ik (x_i - c)``,
* ``second[k]``: the structure's second moment of ``w_i r_ik (x_i - c)``,

plus ``sum_i w_i log p(x_i)`` and ``sum_i w_i``. Every entry is a sum over rows,
so statistics of disjoint chunks add up to the statistics of their union: this
is what lets one M-step serve in-memory, GPU, distributed and streamed data.

Shifting by the data mean removes any common offset before products are
taken (the textbook ``E[x^2] - E[x]^2`` about the origin cancels
catastrophically in float32); chunk sums are added up in float64. What
remains is a rounding error of order ``eps R^2`` in a component's variance,
``R`` being the distance of its mean from the data mean in its own standard
deviations: about 1e-8 for R = 1e4 in float64.

Rows are processed transposed, ``Xt`` of shape ``(d, m)``, and
responsibilities as ``(K, m)``, so that every product runs along the long
row dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._namespace import ArrayNamespace
from gaussmix._params import LOG_2PI, KernelParams, MixtureParams
from gaussmix.covariance import CovarianceStructure


@dataclass(frozen=True)
class Statistics:
    """Sufficient statistics about ``shift`` (see the module docstring).

    ``shift`` has shape ``(d,)`` (or ``(K, d)``, one per component).

    ``log_likelihood`` is ``sum_i w_i log p(x_i)`` under the parameters of the
    E-step that produced the statistics (0 for statistics built from given
    responsibilities). Chunk statistics hold float64 arrays of the engine's
    namespace (on its device) so that they can be summed there;
    :meth:`to_numpy` brings a total to the host.
    """

    shift: np.ndarray
    counts: np.ndarray
    first: np.ndarray
    second: np.ndarray
    log_likelihood: Any
    total_weight: Any

    def __add__(self, other: Statistics) -> Statistics:
        if not isinstance(other, Statistics):
            return NotImplemented
        if other.shift is not self.shift and not np.array_equal(other.shift, self.shift):
            raise ValueError("statistics taken about different shifts cannot be added")
        return Statistics(
            shift=self.shift,
            counts=self.counts + other.counts,
            first=self.first + other.first,
            second=self.second + other.second,
            log_likelihood=self.log_likelihood + other.log_likelihood,
            total_weight=self.total_weight + other.total_weight,
        )

    def to_numpy(self, xp: ArrayNamespace) -> Statistics:
        """These statistics with NumPy float64 arrays (one transfer from the device).

        A log-likelihood that is not finite (a row of density 0) becomes NaN.
        """
        counts, first, second, log_likelihood, total_weight = xp.to_numpy_many(
            [self.counts, self.first, self.second, self.log_likelihood, self.total_weight]
        )
        log_likelihood = float(log_likelihood)
        return Statistics(
            shift=self.shift,
            counts=np.asarray(counts, dtype=np.float64),
            first=np.asarray(first, dtype=np.float64),
            second=np.asarray(second, dtype=np.float64),
            log_likelihood=log_likelihood if np.isfinite(log_likelihood) else float("nan"),
            total_weight=float(total_weight),
        )

    @property
    def means(self) -> np.ndarray:
        """Weighted means of the components (the shift where a count is 0)."""
        counts = np.where(self.counts > 0, self.counts, 1.0)
        return self.shift + self.first / counts[:, None]


def log_prob_transposed(
    xp: ArrayNamespace, structure: CovarianceStructure, Xt: Any, features: Any, kp: KernelParams
) -> Any:
    """``log(weight_k N(x_i | k))`` for shifted, transposed rows: shape ``(K, m)``."""
    return kp.log_norm[:, None] - 0.5 * structure.mahalanobis(xp, Xt, features, kp.arrays)


def weighted_log_prob(
    xp: ArrayNamespace, structure: CovarianceStructure, X: Any, kp: KernelParams, dtype: Any
) -> Any:
    """``log(weight_k N(x_i | k))`` for a chunk of rows, shape ``(m, K)``."""
    Xt = xp.centre_transposed(X, kp.shift, dtype)
    features = structure.features(xp, Xt, kp.log_norm.shape[0])
    return xp.transpose_last(log_prob_transposed(xp, structure, Xt, features, kp))


def moments(
    xp: ArrayNamespace,
    structure: CovarianceStructure,
    Xt: Any,
    features: Any,
    resp: Any,
    shift: np.ndarray,
    log_likelihood: Any,
    total_weight: Any,
) -> Statistics:
    """Statistics of one chunk from its shifted rows and weighted responsibilities ``(K, m)``."""
    return Statistics(
        shift=shift,
        counts=xp.sum(xp.to_float64(resp), axis=1),
        first=xp.to_float64(resp @ xp.transpose_last(Xt)),
        second=xp.to_float64(structure.second_moment(xp, Xt, features, resp)),
        log_likelihood=log_likelihood,
        total_weight=total_weight,
    )


def estep_statistics(
    xp: ArrayNamespace,
    structure: CovarianceStructure,
    Xt: Any,
    weights: Any,
    kp: KernelParams,
    dtype: Any,
) -> Statistics:
    """E-step on one chunk: responsibilities under ``kp``, then their statistics.

    ``Xt`` holds the chunk's rows minus ``kp.shift``, transposed (``(d, m)``
    in ``dtype``; see ``ArrayNamespace.centre_transposed``).

    ``weights`` are the chunk's float64 sample weights (or None for ones).
    The log-likelihood is a 0-d array of the namespace (non-finite where a
    row has density 0; :meth:`Statistics.to_numpy` reports that as NaN).
    Log-sum-exp is fused with the responsibilities: each entry's
    exponential is computed once.
    """
    features = structure.features(xp, Xt, kp.log_norm.shape[0])
    log_prob = log_prob_transposed(xp, structure, Xt, features, kp)
    top = xp.amax(log_prob, axis=0)
    top = xp.where(xp.isfinite(top), top, 0.0)
    scaled = xp.exp(log_prob - top[None, :])
    total = xp.sum(scaled, axis=0)
    log_norm = xp.log(total) + top
    usable = xp.isfinite(log_norm) & (total > 0)
    w_compute = xp.ones(total.shape, dtype) if weights is None else xp.asarray(weights, dtype=dtype)
    scale = xp.where(usable, w_compute / xp.where(usable, total, 1.0), 0.0)
    resp = scaled * scale[None, :]

    norm64 = xp.to_float64(log_norm)
    if weights is None:
        log_likelihood = xp.sum(norm64)
        total_weight = float(norm64.shape[0])
    else:
        w64 = xp.to_float64(weights)
        # Rows of weight 0 count for nothing, even where p(x) = 0 (their log is -inf).
        log_likelihood = xp.sum(xp.where(w64 > 0, norm64, 0.0) * w64)
        total_weight = xp.sum(w64)
    return moments(xp, structure, Xt, features, resp, kp.shift, log_likelihood, total_weight)


def limiting_log_prob(structure: CovarianceStructure, params: MixtureParams, rows: np.ndarray) -> np.ndarray:
    """``log(weight_k N(x | k))`` for rows so far out that the usual kernel overflows, shape ``(m, K)``.

    Each row's Mahalanobis terms are computed on the row scaled down by its
    largest magnitude, so they never overflow on the way, and are compared
    in log space. Where every component's density underflows to 0, the row
    belongs in the limit to the component with the smallest Mahalanobis
    term (equal shares on ties): the result is 0 there and -inf elsewhere,
    so that responsibilities are still a distribution over the components.
    """
    rows = np.asarray(rows, dtype=np.float64)
    n_features = params.n_features
    with np.errstate(divide="ignore"):
        log_weights = np.log(params.weights)
    log_det = structure.log_det_precision_cholesky(params.precisions_cholesky, n_features)
    log_norm = log_weights + log_det - 0.5 * n_features * LOG_2PI
    log_terms = np.empty((rows.shape[0], params.n_components))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for k in range(params.n_components):
            scale = np.max(np.abs(rows), axis=1) + np.max(np.abs(params.means[k]))
            scale = np.where(scale > 0, scale, 1.0)
            diff = rows / scale[:, None] - params.means[k] / scale[:, None]
            z = structure.whiten(params.precisions_cholesky, k, diff)
            log_terms[:, k] = np.log(np.sum(z * z, axis=1)) + 2.0 * np.log(scale)
        log_prob = log_norm - 0.5 * np.exp(log_terms)
    live = np.isfinite(log_norm)
    lost = ~np.any(np.isfinite(log_prob), axis=1)
    if np.any(lost):
        nearest = np.min(np.where(live, log_terms[lost], np.inf), axis=1, keepdims=True)
        log_prob[lost] = np.where(live & (log_terms[lost] == nearest), 0.0, -np.inf)
    return log_prob
