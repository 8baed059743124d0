"""What EM and initialisation need from the data: the data-source protocol.

A data source holds weighted rows wherever they live (NumPy arrays, tensors
on a device, the blocks of a Dask array) and answers in statistics: sums
over rows that add across chunks, blocks and machines. The EM loop, the
fit with restarts and initialisation are written against
:class:`DataSource` alone; an engine (:mod:`gaussmix.engines`) turns an
estimator's input into one.

:class:`RowSource` adds what k-means seeding and Lloyd iterations use: the
rows themselves, chunk by chunk. Initialisation obtains one with
:meth:`DataSource.in_memory` (all rows, when few) or
:meth:`DataSource.weighted_sample`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gaussmix._namespace import ArrayNamespace
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.kernels import Reduction
from gaussmix.em.params import KernelTerms, MixtureParams
from gaussmix.em.statistics import Statistics

#: ``responsibilities(source, start, stop, X_chunk)`` -> the chunk's ``(rows, K)`` responsibilities.
Responsibilities = Callable[[Any, int, int, Any], Any]


@runtime_checkable
class DataSource(Protocol):
    """Weighted rows as EM sees them.

    Attributes
    ----------
    n_samples, n_features : int
    dtype : numpy.dtype
        The compute dtype (float32 or float64); statistics are float64.
    xp : ArrayNamespace
        The namespace the kernels run in.
    total_weight : float
        The sum of the sample weights.
    shift : ndarray of shape (n_features,)
        The weighted data mean: every statistic is taken about it.
    """

    n_samples: int
    n_features: int
    dtype: np.dtype
    xp: ArrayNamespace
    #: results of starts computed once for these data and kept for later fits (a selector's candidates)
    memo: dict

    @property
    def total_weight(self) -> float: ...

    @property
    def shift(self) -> np.ndarray: ...

    def feature_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean and population variance of each feature (float64, computed once)."""

    def estep(self, structure: CovarianceStructure, terms: KernelTerms, groups: int = 1) -> Statistics:
        """Statistics (about :attr:`shift`) of the responsibilities under ``terms``, summed over all rows.

        With ``groups > 1`` the components are that many mixtures of equally
        many components, one after the other (several fits at once, with a
        per-component layout): responsibilities are normalised within each,
        and ``log_likelihood`` is an array with one entry per mixture.
        """

    def statistics(
        self, structure: CovarianceStructure, responsibilities: Responsibilities, n_components: int
    ) -> Statistics:
        """Statistics (about :attr:`shift`) of given responsibilities, summed over all rows."""

    def weighted_sum(self, structure: CovarianceStructure, params: MixtureParams, reduction: Reduction) -> np.ndarray:
        """``sum_i w_i reduction(row_i)`` over the rows of positive weight, float64 on the host."""

    def weighted_sample(self, size: int, stream: int) -> RowSource:
        """``size`` rows drawn with probability proportional to their weight, as rows in memory."""

    def in_memory(self) -> RowSource:
        """All the rows as rows in memory (used when they are few)."""


@runtime_checkable
class RowSource(DataSource, Protocol):
    """A data source whose rows can be visited chunk by chunk (k-means, value-based draws)."""

    def chunks(self, n_components: int, width: int | None = None) -> Iterator[tuple[int, int, Any, Any]]:
        """``(start, stop, X[start:stop], weights[start:stop] or None)`` for every chunk."""

    def map_chunks(self, function: Callable[[int, int, Any, Any], Any], n_components: int,
                   width: int | None = None) -> list[Any]:
        """``function(start, stop, X_chunk, w_chunk)`` for every chunk, results in chunk order."""

    def sum_chunks(self, function: Callable[[int, int, Any, Any], Any], n_components: int,
                   width: int | None = None) -> Any:
        """The sum of ``function``'s results over the chunks, added in chunk order."""

    def map_log_prob(self, structure: CovarianceStructure, params: MixtureParams, reduction: Reduction) -> list[Any]:
        """``reduction`` of every chunk's weighted log-probabilities, in row order (namespace arrays)."""

    def rows(self, indices: np.ndarray) -> Any:
        """The rows at ``indices`` as an array of the namespace."""

    def row_groups(self) -> Any:
        """Rows grouped by value fingerprint (:class:`~gaussmix.em.sampling.RowGroups`), for random draws."""

    def fingerprints(self, X_chunk: Any) -> np.ndarray:
        """Value fingerprints of a chunk's rows (see :mod:`gaussmix.em.sampling`)."""

    def weights_numpy(self) -> np.ndarray:
        """The sample weights as a NumPy float64 array (ones when none were given)."""
