"""Data as the EM loop sees it: weighted rows, visited in chunks.

:class:`ChunkedData` is the in-memory engine: every pass over the data walks
row chunks and sums what the kernels return, so the working memory beyond the
data is bounded by the chunk size, not by the number of rows. The EM loop and
the initialisers only use the passes defined here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gaussmix._namespace import ArrayNamespace, namespace_of
from gaussmix._params import MixtureParams, kernel_params
from gaussmix._sampling import RowGroups, fingerprints
from gaussmix._stats import (
    Statistics,
    centre,
    estep_statistics,
    moments,
    weighted_log_prob,
)
from gaussmix.covariance import CovarianceStructure
from gaussmix.exceptions import FitError

#: Elements of one ``(K, rows, d)`` temporary; sets the rows per chunk.
CHUNK_ELEMENTS = 1 << 18


def default_chunk_rows(n_components: int, n_features: int) -> int:
    return max(32, CHUNK_ELEMENTS // max(1, n_components * n_features))


class ChunkedData:
    """Rows ``X`` with non-negative ``weights``, processed ``chunk_rows`` at a time.

    Parameters
    ----------
    X : array of shape (n_samples, n_features), float32 or float64
        Computations on rows run in this dtype; statistics are summed in float64.
    weights : array of shape (n_samples,) or None
        Sample weights (``None``: all ones).
    chunk_rows : int or None
        Rows per chunk; ``None`` chooses from the number of components and features.
    """

    def __init__(self, X: Any, weights: Any = None, chunk_rows: int | None = None):
        self.xp: ArrayNamespace = namespace_of(X)
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.dtype = self.xp.dtype_of(X)
        if weights is None:
            weights = np.ones(self.n_samples)
        self.weights = self.xp.asarray(weights, dtype=np.float64)
        self.total_weight = float(np.sum(self.xp.to_numpy(self.weights)))
        self._chunk_rows = chunk_rows
        self._groups: RowGroups | None = None
        self._moments: tuple[np.ndarray, np.ndarray] | None = None

    def chunk_rows(self, n_components: int) -> int:
        if self._chunk_rows is not None:
            return self._chunk_rows
        return default_chunk_rows(n_components, self.n_features)

    def chunks(self, n_components: int) -> Iterator[tuple[int, int, Any, Any]]:
        """Yield ``(start, stop, X[start:stop], weights[start:stop])``."""
        step = self.chunk_rows(n_components)
        for start in range(0, self.n_samples, step):
            stop = min(start + step, self.n_samples)
            yield start, stop, self.X[start:stop], self.weights[start:stop]

    def weights_numpy(self) -> np.ndarray:
        return np.asarray(self.xp.to_numpy(self.weights), dtype=np.float64)

    def fingerprints(self, X_chunk: Any) -> np.ndarray:
        """Value fingerprints of a chunk's rows (see :mod:`gaussmix._sampling`)."""
        mean, variances = self.feature_moments()
        scale = np.sqrt(np.where(variances > 0, variances, 1.0))
        return fingerprints(self.xp.to_numpy(X_chunk), mean, scale)

    def row_groups(self) -> RowGroups:
        """Rows grouped by fingerprint (computed once), for value-based random draws."""
        if self._groups is None:
            prints = np.concatenate([self.fingerprints(Xc) for _, _, Xc, _ in self.chunks(1)])
            self._groups = RowGroups.from_fingerprints(prints, self.weights_numpy())
        return self._groups

    # -- passes over the data -------------------------------------------------
    def feature_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean and (population) variance of each feature, in float64 (computed once)."""
        if self._moments is None:
            self._moments = self._compute_feature_moments()
        return self._moments

    def _compute_feature_moments(self) -> tuple[np.ndarray, np.ndarray]:
        xp = self.xp
        total = np.zeros(self.n_features)
        for _, _, Xc, wc in self.chunks(1):
            total += np.asarray(xp.to_numpy(xp.sum(xp.asarray(Xc, dtype=np.float64) * wc[:, None], axis=0)))
        mean = total / self.total_weight
        centre_ = xp.asarray(mean, dtype=np.float64)
        sq = np.zeros(self.n_features)
        with np.errstate(over="ignore", invalid="ignore"):
            for _, _, Xc, wc in self.chunks(1):
                diff = xp.asarray(Xc, dtype=np.float64) - centre_[None, :]
                sq += np.asarray(xp.to_numpy(xp.sum(diff * diff * wc[:, None], axis=0)))
        variances = sq / self.total_weight
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variances))):
            bad = int(np.flatnonzero(~(np.isfinite(mean) & np.isfinite(variances)))[0])
            raise FitError(
                f"feature {bad} has values too large to square in float64 (about 1e154 or more); "
                "rescale the data, for example divide it by its largest absolute value."
            )
        return mean, variances

    def estep(self, structure: CovarianceStructure, params: MixtureParams) -> Statistics:
        """Statistics of all rows under ``params``, taken about the current means."""
        xp = self.xp
        kp = kernel_params(xp, structure, params, self.dtype)
        stats = None
        # Distances can overflow to inf; the caller reports the non-finite likelihood.
        with np.errstate(over="ignore"):
            for _, _, Xc, wc in self.chunks(params.n_components):
                part = estep_statistics(xp, structure, Xc, wc, kp, params.means)
                stats = part if stats is None else stats + part
        return stats

    def statistics(
        self,
        structure: CovarianceStructure,
        responsibilities: Callable[[int, int, Any], Any],
        shift: np.ndarray,
    ) -> Statistics:
        """Statistics about ``shift`` of given responsibilities.

        ``responsibilities(start, stop, X_chunk)`` returns the chunk's
        ``(rows, K)`` responsibilities (without the sample weights) in the
        namespace's compute dtype. It is called once per chunk, in order.
        """
        xp = self.xp
        shift_dev = xp.asarray(shift, dtype=self.dtype)
        stats = None
        for start, stop, Xc, wc in self.chunks(shift.shape[0]):
            resp = responsibilities(start, stop, Xc) * xp.asarray(wc, dtype=self.dtype)[:, None]
            part = moments(
                xp,
                structure,
                centre(xp, Xc, shift_dev),
                resp,
                shift,
                log_likelihood=0.0,
                total_weight=float(np.sum(xp.to_numpy(wc))),
            )
            stats = part if stats is None else stats + part
        return stats

    def map_log_prob(
        self,
        structure: CovarianceStructure,
        params: MixtureParams,
        reduce: Callable[[ArrayNamespace, Any], Any],
    ) -> list[Any]:
        """``reduce(xp, weighted_log_prob)`` for each chunk, in row order."""
        xp = self.xp
        kp = kernel_params(xp, structure, params, self.dtype)
        with np.errstate(over="ignore"):  # a density may underflow to 0 (log -inf)
            return [
                reduce(xp, weighted_log_prob(xp, structure, Xc, kp))
                for _, _, Xc, _ in self.chunks(params.n_components)
            ]
