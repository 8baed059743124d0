"""Rows in memory (or on one device) as a data source, visited in chunks.

:class:`ChunkedData` is the data source of the NumPy and torch engines, and
of each block on the Dask engine's workers: every pass over the
data walks row chunks and sums what the kernels return, so the working
memory beyond the data is bounded by the chunk size, not by the number of
rows. Chunks are processed by a few threads, each running single-threaded
BLAS (on small machines splitting rows beats threaded BLAS on these
tall-skinny products); partial results are combined in chunk order, so the
result does not depend on the number of threads.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import nullcontext
from typing import Any

import numpy as np

from gaussmix._compiled import compiled
from gaussmix._namespace import NUMPY, ArrayNamespace, is_torch_tensor
from gaussmix.covariance._layout import Layout
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em import _moments_loop
from gaussmix.em.kernels import (
    Reduction,
    chunk_statistics,
    estep_statistics,
    fused_estep,
    labelled_chunk_statistics,
    limiting_log_prob,
    rows_estep,
    weighted_log_prob,
)
from gaussmix.em.params import KernelTerms, MixtureParams, kernel_terms
from gaussmix.em.sampling import RowGroups, fingerprints, heaviest_keys
from gaussmix.em.scale import checked_moments
from gaussmix.em.statistics import Statistics

#: Elements of the largest per-chunk temporary; sets the rows per chunk.
CHUNK_ELEMENTS = 1 << 19
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 64, 16384
#: Hard labels' statistics with one matrix per component are taken component by component from this many
#: features (n = 1e5, K = 16: 1.7x faster at d = 16, 5x at d = 32; at d = 8 no faster than one product).
LABELLED_MIN_FEATURES = 16
#: Data of at least twice this many rows is split into an even number of equal chunks.
PARALLEL_MIN_ROWS = 2048
#: Passes over fewer rows than PARALLEL_ROWS with less work than PARALLEL_MIN_WORK
#: (rows x (feature width + K) x d) run in one thread: workers would cost more than they save
#: (namespaces other than NumPy's; NumPy's see PARALLEL_MIN_CHUNK_WORK).
PARALLEL_ROWS = 16384
PARALLEL_MIN_WORK = 1e7
#: NumPy passes run on worker threads where a chunk's work, rows x (K x (width + 11) + 4 d), is at least this
#: (a chunk that takes about 0.7 ms on one core). A pass is a few dozen NumPy calls per chunk, and a thread holds
#: the GIL between them: with less work per call two threads spend their time handing it over. Measured E-steps
#: (one thread against two): full covariances, n = 1e5, d = 2, K = 4 (work 8.5e5): 1.73 against 2.41 ms;
#: diagonal, n = 1e6, d = 2, K = 4 (1.2e6): 19.5 against 18.6 ms; spherical, n = 1e5, d = 8, K = 16 (4.2e6):
#: 6.5 against 4.3 ms.
PARALLEL_MIN_CHUNK_WORK = 2e6
#: A chunk's E-step takes the compiled loop (:func:`~gaussmix.em.kernels.fused_estep_statistics`)
#: when rows x components x (1 + row-terms width / 16) is at most this: below it NumPy's fixed cost
#: per call outweighs the loop's slower exponentials and products (measured crossover, float64).
FUSED_MAX_WORK = 4000
#: Data of at most this many bytes are kept centred and transposed from one pass to the next
#: in host memory (NumPy, torch on the CPU; the shift is fixed for a whole fit). Larger data are centred afresh in
#: every pass, so their fits hold nothing beyond the data but chunk-sized temporaries.
CENTRED_CACHE_BYTES = 64 << 20


def namespace_of(X: Any) -> ArrayNamespace:
    """The namespace for the array ``X``: torch for tensors, NumPy for anything else."""
    if is_torch_tensor(X):
        from gaussmix.engines._torch_namespace import TorchNamespace

        return TorchNamespace(X.device)
    return NUMPY


def default_chunk_rows(n_components: int, width: int, xp: ArrayNamespace | None = None) -> int:
    """Rows per chunk so that the widest ``(width, rows)`` temporary has about ``chunk_elements`` entries.

    NumPy uses :data:`CHUNK_ELEMENTS` (cache-sized chunks); other namespaces
    say what suits their device (a GPU wants far larger chunks).
    """
    elements, max_rows = CHUNK_ELEMENTS, MAX_CHUNK_ROWS
    if xp is not None and xp.name != "numpy":
        elements, max_rows = xp.chunk_elements, xp.max_chunk_rows
    rows = elements // max(n_components, width, 1)
    return int(min(max_rows, max(MIN_CHUNK_ROWS, rows)))


def default_threads() -> int:
    """Worker threads: ``GAUSSMIX_NUM_THREADS`` if set, else the usable CPU cores."""
    configured = os.environ.get("GAUSSMIX_NUM_THREADS")
    if configured:
        return max(1, int(configured))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


_POOL: ThreadPoolExecutor | None = None


def _pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool of worker threads, created on first use."""
    global _POOL
    if _POOL is None or _POOL._max_workers < threads:
        _POOL = ThreadPoolExecutor(threads, thread_name_prefix="gaussmix")
    return _POOL


def chunk_bounds(n_rows: int, max_rows: int) -> list[tuple[int, int]]:
    """Equal chunks of at most ``max_rows`` rows; an even number of them for larger data.

    The bounds depend on the data and the chunk size only, never on the
    number of threads, so sums come out bit-identical whatever the threading.
    """
    count = max(1, -(-n_rows // max_rows))
    if count % 2 and n_rows >= 2 * PARALLEL_MIN_ROWS:
        count += 1
    rows = -(-n_rows // count)
    return [(start, min(n_rows, start + rows)) for start in range(0, n_rows, rows)]


class ChunkedData:
    """Rows ``X`` with non-negative ``weights``, processed ``chunk_rows`` at a time.

    Parameters
    ----------
    X : array of shape (n_samples, n_features), float32 or float64
        Computations on rows run in this dtype; statistics are summed in float64.
    weights : array of shape (n_samples,) or None
        Sample weights (``None``: all ones, without storing them).
    chunk_rows : int or None
        Rows per chunk; ``None`` chooses from the number of components and features.
    n_threads : int or None
        Worker threads (``None``: :func:`default_threads`; always 1 for
        namespaces other than NumPy, which parallelise on their own).
    xp : ArrayNamespace or None
        The namespace computations run in (``None``: ``X``'s own). When it
        is not ``X``'s, ``X`` stays where it is and each chunk is moved to
        the namespace as it is visited: a GPU streams data that do not fit
        in its memory.
    moments : (mean, variance) or None
        The feature moments, when known (a block of larger data uses those of
        the whole).
    row_offset : int
        Index of the first row in the whole data (for a block of it).
    """

    def __init__(
        self,
        X: Any,
        weights: Any = None,
        chunk_rows: int | None = None,
        n_threads: int | None = None,
        *,
        xp: ArrayNamespace | None = None,
        moments: tuple[np.ndarray, np.ndarray] | None = None,
        row_offset: int = 0,
    ):
        own = namespace_of(X)
        self.xp: ArrayNamespace = own if xp is None else xp
        self._streamed = self.xp.name != own.name or getattr(self.xp, "device", None) != getattr(
            own, "device", None
        )
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.dtype = own.dtype_of(X)
        if weights is not None:  # kept beside the rows: on the host when they are streamed
            holder = own if self._streamed else self.xp
            weights = holder.asarray(weights, dtype=np.float64)
            self.total_weight = float(np.sum(holder.to_numpy(weights)))
        else:
            self.total_weight = float(self.n_samples)
        self.weights = weights
        self._chunk_rows = chunk_rows
        fixed = self.xp.worker_threads()
        if fixed is not None:
            self.n_threads = fixed
        else:
            self.n_threads = default_threads() if n_threads is None else max(1, int(n_threads))
        self.row_offset = int(row_offset)
        self._groups: RowGroups | None = None
        self.memo: dict = {}  # what starts computed once for these data (a hierarchy)
        self._moments = moments
        self._keep_centred = (
            self.xp.in_host_memory and self.n_samples * self.n_features * self.dtype.itemsize <= CENTRED_CACHE_BYTES
        )
        self._centred: dict[tuple, Any] = {}  # centred rows by (start, stop), row terms by (layout, start, stop)
        self._centred_bytes = 0
        self._centred_lock = threading.Lock()

    def __getstate__(self):
        # Sent to another process (parallel candidates): the rows and what was computed of them,
        # without the lock and the cache of centred chunks.
        state = dict(vars(self))
        state.update(_centred={}, _centred_bytes=0, _centred_lock=None)
        return state

    def __setstate__(self, state):
        vars(self).update(state)
        self._centred_lock = threading.Lock()

    def chunk_rows(self, n_components: int, width: int | None = None) -> int:
        if self._chunk_rows is not None:
            return self._chunk_rows
        return default_chunk_rows(n_components, self.n_features if width is None else width, self.xp)

    def chunks(self, n_components: int, width: int | None = None) -> Iterator[tuple[int, int, Any, Any]]:
        """Yield ``(start, stop, X[start:stop], weights[start:stop] or None)``.

        Chunks are sized for temporaries ``n_components`` or ``width`` rows
        deep (``width`` defaults to the number of features).
        """
        for start, stop in chunk_bounds(self.n_samples, self.chunk_rows(n_components, width)):
            weights = None if self.weights is None else self.weights[start:stop]
            Xc = self.X[start:stop]
            if self._streamed:
                Xc = self.xp.asarray(Xc)
                weights = None if weights is None else self.xp.asarray(weights)
            yield start, stop, Xc, weights

    def in_memory(self) -> ChunkedData:
        """These data as an in-memory engine: itself."""
        return self

    def weighted_sample(self, size: int, stream: int) -> ChunkedData:
        """``size`` rows drawn with probability proportional to their weight (see :func:`heaviest_keys`)."""
        rows = heaviest_keys(self.chunks(1), size, stream, self.fingerprints)
        return ChunkedData(self.rows(rows), None, n_threads=self.n_threads, xp=self.xp)

    def rows(self, indices: np.ndarray) -> Any:
        """The rows at ``indices`` as an array of the namespace."""
        if self._streamed:
            return self.xp.asarray(self.X[np.asarray(indices)])
        return self.xp.take(self.X, self.xp.asarray(np.asarray(indices)), axis=0)

    def map_chunks(
        self, function: Callable[[int, int, Any, Any], Any], n_components: int, width: int | None = None
    ) -> list[Any]:
        """``function(start, stop, X_chunk, w_chunk)`` for every chunk, results in chunk order."""
        return list(self._ordered(function, n_components, width))

    def sum_chunks(
        self, function: Callable[[int, int, Any, Any], Any], n_components: int, width: int | None = None
    ) -> Any:
        """The sum of ``function``'s results over the chunks, added in chunk order as they arrive.

        Only a few chunk results exist at a time, whatever the number of
        chunks (a full covariance's statistics are ``K d^2 / 2`` numbers per
        chunk), and the order of the additions never depends on the threads.
        """
        total = None
        for part in self._ordered(function, n_components, width):
            total = part if total is None else total + part
        return total

    def _ordered(self, function, n_components: int, width: int | None) -> Iterator[Any]:
        """Results of ``function`` for every chunk, in chunk order, from at most two per thread in flight.

        Worker threads run single-threaded BLAS. If the consumer stops (an
        error, or Ctrl-C in the main thread), chunks not yet started are
        cancelled, so an interrupted pass ends within one chunk per thread.
        """
        chunks = self.chunks(n_components, width)
        bounds = chunk_bounds(self.n_samples, self.chunk_rows(n_components, width))
        threads = min(self.n_threads, len(bounds))
        if threads > 1 and not self._worth_threads(bounds, n_components, width):
            threads = 1
        if threads <= 1:
            with self.xp.one_thread_each() if self.xp.worker_threads() is None else nullcontext():
                for chunk in chunks:
                    yield function(*chunk)
            return
        pool = _pool(threads)
        pending: deque = deque()

        def oldest():
            result = pending[0].result()  # still pending while it is awaited
            pending.popleft()
            return result

        with self.xp.one_thread_each():
            try:
                for chunk in chunks:
                    pending.append(pool.submit(function, *chunk))
                    if len(pending) >= 2 * threads:
                        yield oldest()
                while pending:
                    yield oldest()
            finally:
                for future in pending:
                    future.cancel()
                # Chunks already running finish before BLAS gets its thread count back: changing it
                # while another thread is inside BLAS is not safe.
                wait(pending)

    def _worth_threads(self, bounds: list[tuple[int, int]], n_components: int, width: int | None) -> bool:
        """Whether a pass over chunks ``bounds`` gains from worker threads (see :data:`PARALLEL_MIN_CHUNK_WORK`)."""
        d = self.n_features
        width = d if width is None else width
        if self.xp.name == "numpy":
            rows = max(stop - start for start, stop in bounds)
            return rows * (n_components * (width + 11) + 4 * d) >= PARALLEL_MIN_CHUNK_WORK
        return self.n_samples >= PARALLEL_ROWS or self.n_samples * (width + n_components) * d >= PARALLEL_MIN_WORK

    def float64_rows(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The rows as one C-contiguous float64 NumPy array and their weights (None: all 1), for compiled
        loops over all of them; None unless the NumPy engine holds float64 rows."""
        if self.xp.name != "numpy" or self._streamed or self.dtype != np.float64:
            return None
        if "float64_rows" not in self.memo:
            self.memo["float64_rows"] = np.ascontiguousarray(self.X, dtype=np.float64)
        return self.memo["float64_rows"], None if self.weights is None else np.asarray(self.weights, np.float64)

    def weights_numpy(self) -> np.ndarray:
        if self.weights is None:
            return np.ones(self.n_samples)
        return np.asarray(namespace_of(self.weights).to_numpy(self.weights), dtype=np.float64)

    def fingerprints(self, X_chunk: Any) -> np.ndarray:
        """Value fingerprints of a chunk's rows (see :mod:`gaussmix.em.sampling`)."""
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
    @property
    def shift(self) -> np.ndarray:
        """The fixed shift of every kernel: the weighted data mean."""
        return self.feature_moments()[0]

    def feature_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean and (population) variance of each feature, in float64 (computed once)."""
        if self._moments is None:
            self._moments = self._compute_feature_moments()
        return self._moments

    def _compute_feature_moments(self) -> tuple[np.ndarray, np.ndarray]:
        xp = self.xp
        sums, squares = compiled(_moments_loop.column_sums), compiled(_moments_loop.centred_squares)
        if xp.name == "numpy" and sums is not None and squares is not None:  # the same sums, a pass per chunk each
            none = np.empty(0)

            def chunk_sums(start, stop, Xc, wc):
                out = np.empty(self.n_features)
                sums(np.ascontiguousarray(Xc), none if wc is None else np.asarray(wc, dtype=np.float64), out)
                return out

            total = np.zeros(self.n_features)
            for part in self.map_chunks(chunk_sums, 1):
                total += part
            mean = total / self.total_weight

            def chunk_squares(start, stop, Xc, wc):
                sq, spread = np.empty(self.n_features), np.empty(self.n_features)
                squares(np.ascontiguousarray(Xc), mean, none if wc is None else np.asarray(wc, dtype=np.float64), sq,
                        spread)
                return sq, spread

            sq, spread = np.zeros(self.n_features), np.zeros(self.n_features)
            with np.errstate(over="ignore", invalid="ignore"):
                for part_sq, part_spread in self.map_chunks(chunk_squares, 1):
                    sq += part_sq
                    spread = np.maximum(spread, part_spread)
                return checked_moments(mean, sq / self.total_weight, spread)

        def column_sums(values, w):
            return np.asarray(xp.to_numpy(xp.sum(values if w is None else values * w[:, None], axis=0)))

        total = np.zeros(self.n_features)
        for _, _, Xc, wc in self.chunks(1):
            total += column_sums(xp.asarray(Xc, dtype=np.float64), wc)
        mean = total / self.total_weight
        centre_ = xp.asarray(mean, dtype=np.float64)
        sq = np.zeros(self.n_features)
        spread = np.zeros(self.n_features)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for _, _, Xc, wc in self.chunks(1):
                diff = xp.asarray(Xc, dtype=np.float64) - centre_[None, :]
                sq += column_sums(diff * diff, wc)
                deviation = abs(diff) if wc is None else xp.where(wc[:, None] > 0, abs(diff), 0.0)
                spread = np.maximum(spread, np.asarray(xp.to_numpy(xp.amax(deviation, axis=0))))
        return checked_moments(mean, sq / self.total_weight, spread)

    def centred(self, start: int, stop: int, Xc: Any) -> Any:
        """Rows ``start:stop`` (the chunk ``Xc``) minus :attr:`shift`, transposed: ``(d, rows)``.

        Kept for later passes when the whole data take at most
        :data:`CENTRED_CACHE_BYTES` in the compute dtype (arrays in host memory only;
        different chunkings keep at most that much in all; larger data are
        centred along their rows, as a transposed view). The array is shared:
        kernels never write into it.
        """
        key = (start, stop)
        Xt = self._centred.get(key)
        if Xt is not None:
            return Xt
        if self.xp.name == "numpy" and not self._keep_centred:
            return self.xp.centre_rows(Xc, self.shift, self.dtype)
        Xt = self.xp.centre_transposed(Xc, self.shift, self.dtype)
        if self._keep_centred:
            self._keep(key, Xt)
        return Xt

    def _keep(self, key: tuple, array: Any) -> None:
        """Keep ``array`` for later passes under ``key``, if it fits in what is left of
        :data:`CENTRED_CACHE_BYTES`."""
        with self._centred_lock:
            if self._centred_bytes + array.nbytes <= CENTRED_CACHE_BYTES:
                self._centred[key] = array
                self._centred_bytes += array.nbytes

    def row_terms(self, layout: Layout, start: int, stop: int, Xt: Any, n_components: int) -> Any:
        """``layout``'s row terms of the chunk ``Xt`` (rows ``start:stop`` as :meth:`centred` gives them).

        They depend on the rows alone: kept beside kept centred rows, within
        the same :data:`CENTRED_CACHE_BYTES` (diagonal covariances, d = 32,
        K = 16, n = 1e4: the E-step 1.6 times as fast when they are not
        built again in every pass). Kernels never write into them.
        """
        if not layout.has_row_terms(Xt.shape[0], n_components):
            return None
        key = (layout.name, start, stop)
        kept = self._centred.get(key)
        if kept is not None:
            return kept
        row_terms = layout.row_terms(self.xp, Xt, n_components)
        if self._centred.get((start, stop)) is Xt:  # only beside rows kept centred, in the compute dtype
            if isinstance(row_terms, np.ndarray):
                row_terms.setflags(write=False)
            self._keep(key, row_terms)
        return row_terms

    def estep(self, structure: CovarianceStructure, terms: KernelTerms, groups: int = 1) -> Statistics:
        """Statistics of all rows under the kernel ``terms`` (host arrays), taken about :attr:`shift`.

        ``groups`` mixtures of equal size at once: see :meth:`DataSource.estep`.
        Chunks small enough that NumPy would spend the E-step calling
        rather than computing take the compiled loop, where there is one
        (:func:`~gaussmix.em.kernels.fused_estep_statistics`), and so do
        chunks of any size with few diagonal or scalar components over many
        features, by rows (:func:`~gaussmix.em.kernels.rows_estep`).
        """
        xp, layout = self.xp, structure.layout
        on_device = terms.on(xp, self.dtype)
        width = layout.row_terms_width(self.n_features, terms.n_components)
        fused = None
        if xp.name == "numpy":
            fused = rows_estep(layout, terms, groups)  # float32 rows too: it computes in float64
            if fused is None and self.dtype == np.float64:
                largest = max(stop - start for start, stop in chunk_bounds(self.n_samples, self.chunk_rows(
                    terms.n_components, width)))
                if largest * terms.n_components * (1.0 + width / 16) <= FUSED_MAX_WORK:
                    fused = fused_estep(layout, terms, groups)

        # Where each row's responsibilities add up to its weight (no noise component, one mixture), a shared
        # matrix's second moment is the rows' own: taken in the first E-step, kept for the later ones.
        pooled = compute = None
        if fused is None and groups == 1 and terms.noise is None and layout.second_of_row_totals:
            compute = np.dtype(np.float64) if terms.in_float64 else self.dtype
            pooled = ("rows' second moment", compute.name)
        known = None if pooled is None else self.memo.get(pooled)

        def chunk_estep(start, stop, Xc, wc):
            # Distances can overflow to inf; the caller reports the non-finite likelihood.
            with np.errstate(over="ignore", invalid="ignore"):
                if fused is not None:
                    return fused(Xc, wc)
                Xt = self.centred(start, stop, Xc)
                row_terms = None if terms.in_float64 else self.row_terms(layout, start, stop, Xt, terms.n_components)
                stats = estep_statistics(xp, layout, Xt, wc, on_device, self.dtype, groups, with_second=pooled is None,
                                         row_terms=row_terms)
                if pooled is None or known is not None:
                    return stats
                Xt = xp.to_float64(Xt) if compute != self.dtype else Xt
                second = layout.rows_second_moment(xp, Xt, None if wc is None else xp.asarray(wc, dtype=compute))
                return dataclasses.replace(stats, second=xp.to_float64(second))

        total = self.sum_chunks(chunk_estep, terms.n_components, width).to_numpy(xp)
        if pooled is None:
            return total
        if known is None:
            known = total.second
            known.setflags(write=False)  # shared by every later E-step
            self.memo[pooled] = known
        return dataclasses.replace(total, second=known)

    def statistics(
        self,
        structure: CovarianceStructure,
        responsibilities: Callable[[ChunkedData, int, int, Any], Any],
        n_components: int,
    ) -> Statistics:
        """Statistics about :attr:`shift` of given responsibilities.

        ``responsibilities(data, start, stop, X_chunk)`` returns the chunk's
        ``(rows, K)`` responsibilities (without the sample weights) in the
        namespace's compute dtype; ``start`` and ``stop`` index the whole
        data (they include :attr:`row_offset`). Responsibilities that give
        each row wholly to one component say so with a method
        ``labels_of(data, start, stop, X_chunk)`` (the components, host
        integers): with one matrix per component, their moments are then
        taken component by component
        (:func:`~gaussmix.em.kernels.labelled_chunk_statistics`), in chunks
        sized for the rows alone.
        """
        xp, layout = self.xp, structure.layout
        shift = self.shift
        labels_of = getattr(responsibilities, "labels_of", None)
        if (labels_of is not None and layout.is_matrix and layout.per_component
                and self.n_features >= LABELLED_MIN_FEATURES):

            def chunk_labelled(start, stop, Xc, wc):
                offset = self.row_offset
                labels = labels_of(self, start + offset, stop + offset, Xc)
                total = float(stop - start) if wc is None else xp.sum(wc)
                return labelled_chunk_statistics(xp, layout, self.centred(start, stop, Xc), labels, wc,
                                                 n_components, shift, total)

            return self.sum_chunks(chunk_labelled, 1, self.n_features).to_numpy(xp)

        def chunk_given(start, stop, Xc, wc):
            offset = self.row_offset
            resp = xp.transpose_last(responsibilities(self, start + offset, stop + offset, Xc))
            if wc is not None:
                resp = resp * xp.asarray(wc, dtype=self.dtype)[None, :]
            Xt = self.centred(start, stop, Xc)
            total = float(stop - start) if wc is None else xp.sum(wc)
            row_terms = self.row_terms(layout, start, stop, Xt, n_components)
            # Given responsibilities start a fit (or a move of a search): summed in float64 whatever the dtype, as
            # float32 rounding of the second moments can make a covariance of few rows singular.
            return chunk_statistics(xp, layout, Xt, row_terms, resp, shift, 0.0, total, exact=True)

        width = layout.row_terms_width(self.n_features, n_components)
        return self.sum_chunks(chunk_given, n_components, width).to_numpy(xp)

    def map_log_prob(self, structure: CovarianceStructure, params: MixtureParams, reduction: Reduction) -> list[Any]:
        """``reduction(xp, weighted_log_prob)`` for each chunk (``(m, K)`` arrays), in row order.

        With ``reduction.limits``, rows so far from every component that
        their log-probabilities overflow (or are all ``-inf``) get
        :func:`~gaussmix.em.kernels.limiting_log_prob` instead, so that their
        responsibilities still sum to 1.
        """
        return self._over_log_prob(structure, params, reduction, lambda values, wc: values, sum_up=False)

    def weighted_sum(self, structure: CovarianceStructure, params: MixtureParams, reduction: Reduction) -> np.ndarray:
        """``sum_i w_i reduction(row_i)`` over the rows of positive weight, float64 on the host."""
        xp = self.xp

        def weigh(values, wc):
            values = xp.to_float64(values)
            if wc is None:
                return xp.sum(values, axis=0)
            w = xp.to_float64(xp.asarray(wc))
            w = w[:, None] if len(values.shape) > 1 else w
            return xp.sum(xp.where(w > 0, values, 0.0) * w, axis=0)  # weight 0 counts nothing, even at -inf

        total = self._over_log_prob(structure, params, reduction, weigh, sum_up=True)
        return np.asarray(xp.to_numpy(total), dtype=np.float64)

    def _over_log_prob(self, structure, params, reduction, finish, sum_up: bool):
        xp, layout = self.xp, structure.layout
        shift = params.weights @ params.means  # any shift works; this one keeps values small
        terms = kernel_terms(structure, params, shift).on(xp, self.dtype)

        def chunk_reduce(start, stop, Xc, wc):
            with np.errstate(over="ignore", invalid="ignore"):  # a density may underflow to 0
                log_prob = weighted_log_prob(xp, layout, Xc, terms, self.dtype)
                if reduction.limits:
                    log_prob = self._in_the_limit(structure, params, Xc, log_prob)
                return finish(reduction(xp, log_prob), wc)

        width = layout.row_terms_width(self.n_features, params.n_components)
        walk = self.sum_chunks if sum_up else self.map_chunks
        return walk(chunk_reduce, params.n_components, width)

    def _in_the_limit(self, structure, params, Xc, log_prob):
        """``log_prob`` with its unusable rows (no finite entry) replaced by their limiting values."""
        xp = self.xp
        lost = np.flatnonzero(~xp.to_numpy(xp.isfinite(xp.amax(log_prob, axis=1))))
        if lost.size == 0:
            return log_prob
        rows = xp.to_numpy(xp.take(Xc, xp.asarray(lost), axis=0))
        limit = limiting_log_prob(structure, params, rows)
        return xp.put_rows(log_prob, lost, xp.asarray(limit, dtype=xp.dtype_of(log_prob)))
