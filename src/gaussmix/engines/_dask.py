"""The Dask engine: EM over the blocks of a Dask array, locally or on a cluster.

Each pass over the data is one map and one tree reduction: every block
computes its sufficient statistics with the in-memory engine (the same
kernels, on the worker that holds the block), statistics are added pairwise
(a few kilobytes to megabytes, never rows), and the M-step runs on the
client. Whatever the chunking, the statistics are sums over the same rows,
so results agree with the in-memory engine to rounding.

Initialisation gathers at most a bounded number of rows: the whole data
when they are that small, otherwise a weighted sample whose draw is itself
a map (each block's largest race keys) and a reduction (the largest of
those), exactly the draw the in-memory engine makes.

Computations use Dask's current scheduler: a ``distributed.Client`` when
one is active, the threaded scheduler otherwise. Lost workers are handled
by Dask, which recomputes the blocks they held.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from typing import Any

import numpy as np

from gaussmix._errors import MissingDependencyError
from gaussmix._namespace import NUMPY, is_dask_collection
from gaussmix._threads import single_threaded_blas
from gaussmix._validation import unit_exponent
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.kernels import Reduction
from gaussmix.em.params import KernelTerms, MixtureParams
from gaussmix.em.sampling import merge_keys, top_keys
from gaussmix.em.scale import checked_moments
from gaussmix.em.statistics import Statistics
from gaussmix.engines._base import Engine, FitData
from gaussmix.engines._checks import check_features, check_names
from gaussmix.engines._chunked import ChunkedData
from gaussmix.engines._numpy import ENGINE as NUMPY_ENGINE


def import_dask():
    """``dask`` and ``dask.array``, or an error that says how to install them."""
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise MissingDependencyError(
            "the dask engine needs Dask: pip install 'gaussmix[dask]'"
        ) from exc
    return dask, da


def as_dask_array(X: Any, dtype=None):
    """A 2-D Dask array of ``X`` (array, dataframe or NumPy data) with whole rows in each block."""
    dask, da = import_dask()
    if hasattr(X, "to_dask_array"):  # a dask dataframe or series: row counts must be known
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        X = np.asarray(X)
        rows = max(1, min(X.shape[0], (1 << 24) // max(1, X.shape[1] if X.ndim == 2 else 1)))
        X = da.from_array(X, chunks=(rows,) + X.shape[1:])
    if any(math.isnan(rows) for rows in X.chunks[0]):  # e.g. after boolean indexing: count the rows once
        X = X.compute_chunk_sizes()
    if X.ndim == 2 and X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    if dtype is not None and X.dtype != dtype:
        X = X.astype(dtype)
    return X


def check_weights(sample_weight: Any, X: Any) -> tuple[Any, int, int]:
    """Sample weights for the Dask array ``X``: float64, blocked like its rows; how many are positive; an exponent.

    One pass over the weights checks that they are finite and non-negative;
    they come back scaled by the power of two ``2 ** exponent`` that brings
    the largest into [1, 2) (exactly; a fit does not depend on the weights'
    common scale, but model selection's count of rows does).
    """
    dask, da = import_dask()
    weights = as_dask_array(sample_weight, dtype=np.float64)
    if weights.ndim != 1 or weights.shape[0] != X.shape[0]:
        raise ValueError(
            f"sample_weight has shape {weights.shape}, expected ({X.shape[0]},): one weight per row."
        )
    weights = weights.rechunk((X.chunks[0],))
    bad, n_positive, largest = dask.compute(
        (~da.isfinite(weights) | (weights < 0)).sum(), (weights > 0).sum(), weights.max()
    )
    if bad:
        raise ValueError("sample_weight must be finite and non-negative.")
    if not n_positive:
        raise ValueError("sample_weight is zero for every row; at least one row needs a positive weight.")
    exponent = unit_exponent(float(largest))
    return da.ldexp(weights, exponent), int(n_positive), exponent


def _tree_sum(dask, parts: list[Any], add) -> Any:
    """Pairwise sums of delayed ``parts`` (a tree of depth log2 of their number)."""
    while len(parts) > 1:
        paired = [dask.delayed(add)(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            paired.append(parts[-1])
        parts = paired
    return parts[0]


def _add(a, b):
    return a + b


def _add_pairs(a, b):
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _block_sums(block, weights, offset, centre):
    """Weighted sums of the rows, or of squared deviations from ``centre`` with the largest deviation.

    The second entry counts non-finite values (for the sums of rows), or is
    the largest absolute deviation of each feature (about ``centre``).
    """
    values = np.asarray(block, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    if centre is None:
        bad = np.count_nonzero(~np.isfinite(values))
        with np.errstate(over="ignore", invalid="ignore"):
            total = values.sum(axis=0) if w is None else w @ values
        return total, np.array([bad])
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        deviation = values - centre
        counted = np.abs(deviation) if w is None else np.where(w[:, None] > 0, np.abs(deviation), 0.0)
        spread = np.max(counted, axis=0) if deviation.shape[0] else np.zeros(values.shape[1])
        squares = deviation * deviation
        total = squares.sum(axis=0) if w is None else w @ squares
    return total, spread


def _add_or_max(a, b):
    return a[0] + b[0], np.maximum(a[1], b[1])


#: glibc thresholds (bytes) set once in a worker process whose nanny lowered the trim threshold.
WORKER_MALLOC_THRESHOLD = 1 << 26
_MALLOC_TUNED = False


def _reuse_freed_memory() -> None:
    """Let a Dask worker reuse the memory of freed chunk temporaries.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``. That
    also switches off glibc's adaptive mmap threshold, so every temporary of
    a few megabytes is mapped afresh and page-faulted: the E-step ran 3-4x
    slower in a worker than in the client. Where the nanny has set it (and
    only there), raise the trim and mmap thresholds to 64 MiB: at most that
    much freed memory stays with each worker process.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    configured = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    if not configured.isdigit() or int(configured) >= WORKER_MALLOC_THRESHOLD or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, WORKER_MALLOC_THRESHOLD)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, WORKER_MALLOC_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def _local(block, weights, offset, moments) -> ChunkedData:
    _reuse_freed_memory()
    return ChunkedData(np.asarray(block), weights, n_threads=1, moments=moments, row_offset=offset)


def _block_estep(block, weights, offset, moments, structure, terms, groups):
    with single_threaded_blas():  # blocks are the parallelism
        return _local(block, weights, offset, moments).estep(structure, terms, groups)


def _finite(block) -> np.ndarray:
    """The block as a NumPy array; ValueError (scikit-learn's message) if it holds NaN or infinity."""
    block = np.asarray(block)
    if not np.all(np.isfinite(block)):
        raise ValueError("Input X contains NaN or infinity.")
    return block


def _block_weighted_sum(block, weights, offset, moments, structure, params, reduction):
    with single_threaded_blas():
        return _local(_finite(block), weights, offset, moments).weighted_sum(structure, params, reduction)


def _block_reduce(block, structure, params, reduction):
    """``reduction`` of one block's rows (a NumPy array: what ``map_blocks`` returns)."""
    with single_threaded_blas():
        local = ChunkedData(_finite(block), n_threads=1)
        return np.concatenate(local.map_log_prob(structure, params, reduction))


def _block_statistics(block, weights, offset, moments, structure, responsibilities, n_components):
    with single_threaded_blas():
        return _local(block, weights, offset, moments).statistics(structure, responsibilities, n_components)


def _block_keys(block, weights, offset, moments, size, stream):
    local = _local(block, weights, offset, moments)
    chunks = ((start + offset, stop + offset, Xc, wc) for start, stop, Xc, wc in local.chunks(1))
    keys, rows = top_keys(chunks, size, stream, local.fingerprints)
    return keys, rows, np.asarray(block)[rows - offset]


def _merge_block_keys(size):
    def merge(a, b):
        keys, rows = merge_keys([(a[0], a[1]), (b[0], b[1])], size)
        lookup = dict(zip(np.concatenate([a[1], b[1]]).tolist(), np.concatenate([a[2], b[2]]), strict=True))
        values = np.array([lookup[r] for r in rows.tolist()]).reshape(len(rows), a[2].shape[1])
        return keys, rows, values.astype(a[2].dtype, copy=False)

    return merge


class DaskData:
    """Rows held in a Dask array (with optional Dask sample weights), visited block by block.

    Offers what the EM loop and initialisation use of :class:`ChunkedData`.
    """

    xp = NUMPY

    def __init__(self, X: Any, weights: Any = None):
        self.dask, _ = import_dask()
        self.X = as_dask_array(X)
        self.n_samples, self.n_features = (int(v) for v in self.X.shape)
        self.dtype = np.dtype(self.X.dtype)
        if weights is not None:  # blocked like the rows (a no-op for weights from check_weights)
            weights = as_dask_array(weights, dtype=np.float64).rechunk((self.X.chunks[0],))
        self.weights = weights
        self.offsets = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]]).astype(int)
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self._total_weight: float | None = None if weights is not None else float(self.n_samples)
        self.memo: dict = {}  # what starts computed once for these data (a hierarchy)

    def __getstate__(self):
        return {key: value for key, value in vars(self).items() if key != "dask"}

    def __setstate__(self, state):
        vars(self).update(state)
        self.dask, _ = import_dask()

    # -- blocks -----------------------------------------------------------------
    def _blocks(self):
        """``(block, weights block or None, offset)`` as delayed objects, in row order."""
        blocks = self.X.to_delayed().ravel()
        weights = [None] * len(blocks) if self.weights is None else self.weights.to_delayed().ravel()
        return list(zip(blocks, weights, self.offsets.tolist(), strict=True))

    def _reduce(self, function, *args, add=_add):
        delayed = self.dask.delayed
        parts = [delayed(function)(b, w, off, *args) for b, w, off in self._blocks()]
        # Limited here too, so that tasks on this process's threads never run threaded BLAS
        # (each task restores the limit it found).
        with single_threaded_blas():
            (total,) = self.dask.compute(_tree_sum(self.dask, parts, add))
        return total

    # -- what the EM loop uses ------------------------------------------------------
    @property
    def total_weight(self) -> float:
        if self._total_weight is None:
            (total,) = self.dask.compute(self.weights.sum())
            self._total_weight = float(total)
        return self._total_weight

    @property
    def shift(self) -> np.ndarray:
        return self.feature_moments()[0]

    def feature_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean and variance of each feature (two passes); checks that all values are finite."""
        if self._moments is None:
            total, bad = self._reduce(_block_sums, None, add=_add_pairs)
            if bad[0]:
                raise ValueError(f"Input X contains NaN or infinity ({int(bad[0])} values).")
            mean = total / self.total_weight
            squares, spread = self._reduce(_block_sums, mean, add=_add_or_max)
            self._moments = checked_moments(mean, squares / self.total_weight, spread)
        return self._moments

    def estep(self, structure: CovarianceStructure, terms: KernelTerms, groups: int = 1) -> Statistics:
        return self._reduce(_block_estep, self.feature_moments(), structure, terms, groups)

    def weighted_sum(self, structure: CovarianceStructure, params: MixtureParams, reduction: Reduction) -> np.ndarray:
        # One pass: the blocks' log-probabilities need no shift, so no moments are computed for them.
        return self._reduce(_block_weighted_sum, self._moments, structure, params, reduction)

    def statistics(self, structure: CovarianceStructure, responsibilities, n_components: int) -> Statistics:
        return self._reduce(_block_statistics, self.feature_moments(), structure, responsibilities, n_components)

    # -- initialisation ---------------------------------------------------------------
    def in_memory(self) -> ChunkedData:
        """All rows gathered into an in-memory engine (used when they are few)."""
        X, w = self.dask.compute(self.X, self.weights)
        return ChunkedData(np.asarray(X), None if w is None else np.asarray(w), moments=self.feature_moments())

    def weighted_sample(self, size: int, stream: int) -> ChunkedData:
        """The in-memory engine's weighted sample of ``size`` rows, drawn block by block."""
        _, rows, values = self._reduce(
            _block_keys, self.feature_moments(), size, stream, add=_merge_block_keys(size)
        )
        order = np.argsort(rows, kind="stable")
        return ChunkedData(values[order], None)


def check_dask(estimator: Any, X: Any, *, reset: bool, min_samples: int = 1):
    """Validate a Dask collection's shape and dtype (values are checked as blocks are computed)."""
    columns = getattr(X, "columns", None) if X.__class__.__name__ == "DataFrame" else None
    X = as_dask_array(X)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got a {X.ndim}D Dask array of shape {X.shape}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
    if X.shape[0] < min_samples:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum of {min_samples} is required."
        )
    check_features(estimator, X.shape[1], reset)
    names = None if columns is None else np.asarray([str(c) for c in columns], dtype=object)
    if columns is not None and not all(isinstance(c, str) for c in columns):
        names = None  # scikit-learn keeps names only when they are all strings
    if reset and names is not None:
        estimator.feature_names_in_ = names
    elif not reset:
        check_names(estimator, names)
    return X


class DaskEngine(Engine):
    """Dask collections; rows given in memory are evaluated in memory (they come back as NumPy)."""

    name = "dask"
    indexable = False
    title = "Dask"
    library = "dask"
    _in_memory = NUMPY_ENGINE

    def accepts(self, X, device):
        return is_dask_collection(X)

    def check(self, estimator, X, *, reset, min_samples=1):
        return check_dask(estimator, X, reset=reset, min_samples=min_samples)

    def prepare(self, X, sample_weight, *, device):
        if sample_weight is None:
            return FitData(DaskData(X), X.shape[0], 0, self, rows=X)
        weights, n_positive, exponent = check_weights(sample_weight, X)
        return FitData(DaskData(X, weights), n_positive, exponent, self, rows=X)

    def source(self, X, *, device):
        return DaskData(X)

    def evaluate(self, estimator, X, structure, params, reduction, *, device):
        if not is_dask_collection(X):
            return self._in_memory.evaluate(estimator, X, structure, params, reduction, device=device)
        X = self.check(estimator, X, reset=False)
        dtype = np.int64 if reduction.integer else np.float64
        if reduction.columns is None:
            return X.map_blocks(_block_reduce, structure, params, reduction, drop_axis=1, dtype=dtype)
        columns = params.n_columns if reduction.columns == 0 else reduction.columns
        return X.map_blocks(_block_reduce, structure, params, reduction, dtype=dtype, chunks=(X.chunks[0], (columns,)))

    def mean(self, values):
        return float(values.mean().compute()) if is_dask_collection(values) else float(np.mean(values))

    def log_likelihood(self, estimator, X, structure, params, *, device):
        if not is_dask_collection(X):
            return self._in_memory.log_likelihood(estimator, X, structure, params, device=device)
        return super().log_likelihood(estimator, X, structure, params, device=device)


ENGINE = DaskEngine()
