"""Sufficient statistics: sums over rows that add across chunks (the kernels are in :mod:`gaussmix.em.kernels`).

For each component ``k`` and one fixed shift ``c`` (the data mean) the
statistics of a set of rows ``x_i`` with weights ``w_i`` and responsibilities
``r_ik`` are

* ``counts[k] = sum_i w_i r_ik``,
* ``first[k] = sum_i w_i r_ik (x_i - c)``,
* ``second[k]``: the layout's second moment of ``w_i r_ik (x_i - c)``,

plus ``sum_i w_i log p(x_i)`` and ``sum_i w_i``. Every entry is a sum over rows,
so statistics of disjoint chunks add up to the statistics of their union: this
is what lets one M-step serve in-memory, GPU, distributed and streamed data.

Shifting by the data mean removes any common offset before products are
taken (the textbook ``E[x^2] - E[x]^2`` about the origin cancels
catastrophically in float32); chunk sums are added up in float64. What
remains is a rounding error of order ``eps R^2`` in a component's variance,
``R`` being the distance of its mean from the data mean in its own standard
deviations: about 1e-8 for R = 1e4 in float64.

Statistics move exactly to another shift (:meth:`Statistics.recentred`)
and another scale of the weights (:meth:`Statistics.scaled`), so batches
taken about different shifts, or weighted differently, combine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gaussmix._namespace import ArrayNamespace
from gaussmix.covariance._structure import CovarianceStructure


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

    def part(self, components: slice) -> Statistics:
        """The statistics of some of the components (a per-component layout's), with the same totals."""
        shift = self.shift if np.ndim(self.shift) == 1 else self.shift[components]
        return Statistics(shift, self.counts[components], self.first[components], self.second[components],
                          self.log_likelihood, self.total_weight)

    def to_numpy(self, xp: ArrayNamespace) -> Statistics:
        """These statistics with NumPy float64 arrays (one transfer from the device).

        A log-likelihood that is not finite (a row of density 0) becomes NaN
        (entry by entry, for the statistics of several mixtures at once).
        """
        counts, first, second, log_likelihood, total_weight = xp.to_numpy_many(
            [self.counts, self.first, self.second, self.log_likelihood, self.total_weight]
        )
        log_likelihood = np.asarray(log_likelihood, dtype=np.float64)
        log_likelihood = np.where(np.isfinite(log_likelihood), log_likelihood, np.nan)
        return Statistics(
            shift=self.shift,
            counts=np.asarray(counts, dtype=np.float64),
            first=np.asarray(first, dtype=np.float64),
            second=np.asarray(second, dtype=np.float64),
            log_likelihood=float(log_likelihood) if log_likelihood.ndim == 0 else log_likelihood,
            total_weight=float(total_weight),
        )

    def recentred(self, structure: CovarianceStructure, shift: np.ndarray) -> Statistics:
        """The same statistics taken about ``shift`` (host arrays; exact up to rounding).

        With ``delta = self.shift - shift``, the first moments gain
        ``counts * delta`` and the second moment the terms its layout's
        reduction of ``F delta' + delta F' + n delta delta'`` gives
        (:meth:`Layout.recentre_second`). Statistics of batches taken about
        different shifts then add up once recentred to one shift.
        """
        shift = np.asarray(shift, dtype=np.float64)
        delta = np.asarray(self.shift, dtype=np.float64) - shift
        if not np.any(delta):
            return replace(self, shift=shift)
        return replace(
            self,
            shift=shift,
            first=self.first + self.counts[:, None] * delta,
            second=structure.layout.recentre_second(self.second, self.first, self.counts, delta),
        )

    def scaled(self, factor: float) -> Statistics:
        """Every sum multiplied by ``factor`` (the statistics of the rows with weights times ``factor``).

        Exact for a power of two; stepwise EM weighs batches this way.
        """
        return Statistics(
            shift=self.shift,
            counts=self.counts * factor,
            first=self.first * factor,
            second=self.second * factor,
            log_likelihood=self.log_likelihood * factor,
            total_weight=self.total_weight * factor,
        )

    @property
    def means(self) -> np.ndarray:
        """Weighted means of the components (the shift where a count is 0)."""
        counts = np.where(self.counts > 0, self.counts, 1.0)
        return self.shift + self.first / counts[:, None]
