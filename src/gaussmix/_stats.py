"""Sufficient statistics and the per-chunk kernels that produce them.

For each component ``k`` and a per-component shift ``c_k`` (normally the
current mean) the statistics of a set of rows ``x_i`` with weights ``w_i`` and
responsibilities ``r_ik`` are

* ``counts[k] = sum_i w_i r_ik``,
* ``first[k] = sum_i w_i r_ik (x_i - c_k)``,
* ``second[k]``: the structure's second moment of ``w_i r_ik (x_i - c_k)``,

plus ``sum_i w_i log p(x_i)`` and ``sum_i w_i``. Every entry is a sum over rows,
so statistics of disjoint chunks add up to the statistics of their union: this
is what lets one M-step serve in-memory, GPU, distributed and streamed data.

Centring at ``c_k`` before multiplying avoids the cancellation of the textbook
``E[x^2] - E[x]^2`` (catastrophic in float32 for data far from the origin);
each chunk's sums are added up in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._namespace import ArrayNamespace
from gaussmix._params import KernelParams
from gaussmix.covariance import CovarianceStructure


@dataclass(frozen=True)
class Statistics:
    """Sufficient statistics about ``shift`` (see the module docstring).

    ``log_likelihood`` is ``sum_i w_i log p(x_i)`` under the parameters of the
    E-step that produced the statistics (0 for statistics built from given
    responsibilities). All arrays are NumPy float64.
    """

    shift: np.ndarray
    counts: np.ndarray
    first: np.ndarray
    second: np.ndarray
    log_likelihood: float
    total_weight: float

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

    @property
    def means(self) -> np.ndarray:
        """Weighted means of the components (the shift where a count is 0)."""
        counts = np.where(self.counts > 0, self.counts, 1.0)
        return self.shift + self.first / counts[:, None]


def _to_float64(xp: ArrayNamespace, a: Any) -> np.ndarray:
    return np.asarray(xp.to_numpy(a), dtype=np.float64)


def centre(xp: ArrayNamespace, X: Any, shift: Any) -> Any:
    """Rows minus each component's shift, shape ``(K, n, d)``."""
    return X[None, :, :] - shift[:, None, :]


def _log_prob_centred(xp: ArrayNamespace, structure: CovarianceStructure, centred: Any, kp: KernelParams) -> Any:
    return kp.log_norm[None, :] - 0.5 * structure.mahalanobis(xp, centred, kp.precisions_cholesky)


def weighted_log_prob(
    xp: ArrayNamespace, structure: CovarianceStructure, X: Any, kp: KernelParams
) -> Any:
    """``log(weight_k N(x_i | k))`` for a chunk of rows, shape ``(n, K)``."""
    return _log_prob_centred(xp, structure, centre(xp, X, kp.means), kp)


def moments(
    xp: ArrayNamespace,
    structure: CovarianceStructure,
    centred: Any,
    resp: Any,
    shift: np.ndarray,
    log_likelihood: float,
    total_weight: float,
) -> Statistics:
    """Statistics of one chunk from its centred rows and weighted responsibilities."""
    return Statistics(
        shift=shift,
        counts=np.sum(_to_float64(xp, resp), axis=0),
        first=_to_float64(xp, xp.sum(centred * xp.transpose_last(resp)[:, :, None], axis=1)),
        second=_to_float64(xp, structure.second_moment(xp, centred, resp)),
        log_likelihood=log_likelihood,
        total_weight=total_weight,
    )


def estep_statistics(
    xp: ArrayNamespace,
    structure: CovarianceStructure,
    X: Any,
    weights: Any,
    kp: KernelParams,
    shift: np.ndarray,
) -> Statistics:
    """E-step on one chunk: responsibilities under ``kp``, then their statistics.

    ``weights`` are the chunk's float64 sample weights. The statistics are
    taken about ``shift``, the host copy of ``kp.means`` (the rows are centred
    at the component means).
    """
    centred = centre(xp, X, kp.means)
    log_prob = _log_prob_centred(xp, structure, centred, kp)
    log_norm = xp.logsumexp(log_prob, axis=1)
    finite = xp.isfinite(log_norm)
    # A row whose density is 0 or infinite gets no responsibility here; the
    # log-likelihood below becomes non-finite and the caller reports it.
    safe_norm = xp.where(finite, log_norm, 0.0)
    w_compute = xp.asarray(xp.where(finite, weights, 0.0), dtype=xp.dtype_of(X))
    resp = xp.exp(log_prob - safe_norm[:, None]) * w_compute[:, None]

    w64 = _to_float64(xp, weights)
    norm64 = _to_float64(xp, log_norm)
    counted = w64 > 0  # rows of weight 0 count for nothing, even where p(x) = 0
    if np.all(np.isfinite(norm64[counted])):
        log_likelihood = float(np.sum(norm64[counted] * w64[counted]))
    else:
        log_likelihood = float("nan")
    return moments(
        xp,
        structure,
        centred,
        resp,
        shift,
        log_likelihood=log_likelihood,
        total_weight=float(np.sum(w64)),
    )
