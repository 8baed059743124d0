"""The per-chunk kernels: log-probabilities, the E-step, statistics of given responsibilities.

Every kernel takes the array namespace ``xp`` first and works on one chunk
of rows, transposed and centred at the statistics' shift (``Xt`` of shape
``(d, m)``) so that each product runs along the long row dimension, and
``responsibilities`` as ``(K, m)``. A data source applies the kernels chunk
by chunk and adds their statistics; kernels never see more than a chunk.

The *reductions* at the end turn a chunk's ``(m, K)`` weighted
log-probabilities into what predictions return (log-densities, labels,
responsibilities) or what model selection sums (log-density and the log of
the largest responsibility).
"""

from __future__ import annotations

import functools
import math
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._compiled import compiled
from gaussmix._namespace import ArrayNamespace
from gaussmix._threads import blas_for_matrices
from gaussmix.covariance import constrained, diag, full, layouts, spherical, tied
from gaussmix.covariance._layout import Layout, without_cholesky
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em import _estep_loop
from gaussmix.em._estep_loop import estep_rows, runs
from gaussmix.em.models import EMPTY_COMPONENT_FRACTION, MaximumLikelihood
from gaussmix.em.params import KernelTerms, MixtureParams, joined_fits, log_norms, noise_log_prob
from gaussmix.em.statistics import Statistics


def log_prob_transposed(xp: ArrayNamespace, layout: Layout, Xt: Any, row_terms: Any, terms: KernelTerms) -> Any:
    """``log(weight_k N(x_i | k))`` for shifted, transposed rows: shape ``(K, m)``, with a noise component
    ``(K + 1, m)``, its constant ``log(weight / V)`` last."""
    log_prob = terms.log_norm[:, None] - 0.5 * layout.mahalanobis(xp, Xt, row_terms, terms.arrays)
    if terms.noise is None:
        return log_prob
    return xp.concat([log_prob, xp.ones((1, log_prob.shape[1]), xp.dtype_of(log_prob)) * terms.noise])


def weighted_log_prob(xp: ArrayNamespace, layout: Layout, X: Any, terms: KernelTerms, dtype: Any) -> Any:
    """``log(weight_k N(x_i | k))`` for a chunk of rows ``X`` (m, d), shape ``(m, K)``."""
    Xt = xp.centre_transposed(X, terms.shift, dtype)
    row_terms = layout.row_terms(xp, Xt, terms.n_components)
    return xp.transpose_last(log_prob_transposed(xp, layout, Xt, row_terms, terms))


def chunk_statistics(
    xp: ArrayNamespace,
    layout: Layout,
    Xt: Any,
    row_terms: Any,
    resp: Any,
    shift: np.ndarray,
    log_likelihood: Any,
    total_weight: Any,
    exact: bool = False,
    with_second: bool = True,
) -> Statistics:
    """Statistics of one chunk from its shifted rows and weighted responsibilities ``(K, m)``.

    ``exact``: the moments summed in float64 where the chunk is in float32,
    from float64 copies of the rows, responsibilities and row terms.
    ``with_second=False``: the second moment is left out (zeros), for a
    caller that knows it already (see :attr:`Layout.second_of_row_totals`).
    """
    if exact and xp.dtype_of(Xt) != np.float64:
        Xt, resp = xp.to_float64(Xt), xp.to_float64(resp)
        if row_terms is not None:  # built again from the float64 rows: the float32 ones are rounded
            row_terms = layout.row_terms(xp, Xt, resp.shape[0])
    if with_second:
        counts, first, second = layout.moments(xp, Xt, row_terms, resp)
    else:
        counts, first = layout.counts_and_first(xp, Xt, row_terms, resp)
        second = xp.asarray(np.zeros(layout.statistic_shape(resp.shape[0], Xt.shape[0])), dtype=np.float64)
    return Statistics(
        shift=shift,
        counts=xp.to_float64(counts),
        first=xp.to_float64(first),
        second=xp.to_float64(second),
        log_likelihood=log_likelihood,
        total_weight=total_weight,
    )


def label_order(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """The positions of ``labels`` sorted by label, stably (as 16-bit integers where they fit: NumPy sorts
    those by radix, 7 times faster on 20,000 labels)."""
    small = n_labels <= np.iinfo(np.int16).max
    return np.argsort(labels.astype(np.int16) if small else labels, kind="stable")


def labelled_chunk_statistics(
    xp: ArrayNamespace,
    layout: Layout,
    Xt: Any,
    labels: np.ndarray,
    weights: Any,
    n_components: int,
    shift: np.ndarray,
    total_weight: Any,
) -> Statistics:
    """Statistics of one chunk whose rows each belong wholly to one component, in float64.

    The statistics :func:`chunk_statistics` gives one-hot responsibilities
    (``labels``: host integers, one per row; ``weights``: the chunk's
    sample weights, or None for ones), taken component by component on its
    own rows: for a layout of one matrix per component, second moments of
    ``m d^2`` products instead of the ``m K d^2`` of products with
    responsibilities that are mostly zeros.
    """
    if not layout.per_component:
        raise ValueError(f"the {layout.name} layout is shared: its moments do not split by component")
    Xt = xp.to_float64(Xt)
    d, m = Xt.shape
    sizes = np.bincount(labels, minlength=n_components)
    present = np.flatnonzero(sizes)
    ends = np.cumsum(sizes)
    order = label_order(labels, n_components)
    grouped = xp.take(Xt, order, axis=1)
    w = xp.ones((1, m), np.float64) if weights is None else xp.reshape(xp.to_float64(xp.asarray(weights)), (1, m))
    w_grouped = xp.take(w, order, axis=1)
    parts = []
    for k in present:
        rows = slice(int(ends[k] - sizes[k]), int(ends[k]))
        Xk = grouped[:, rows]
        moments = layout.moments(xp, Xk, layout.row_terms(xp, Xk, 1), w_grouped[:, rows])
        parts.append([xp.to_float64(a) for a in moments])

    def by_component(i: int, shape: tuple[int, ...]) -> Any:
        return xp.put_rows(xp.asarray(np.zeros(shape), dtype=np.float64), present, xp.concat([p[i] for p in parts]))

    return Statistics(
        shift=shift,
        counts=by_component(0, (n_components,)),
        first=by_component(1, (n_components, d)),
        second=by_component(2, layout.statistic_shape(n_components, d)),
        log_likelihood=0.0,
        total_weight=total_weight,
    )


def estep_statistics(
    xp: ArrayNamespace,
    layout: Layout,
    Xt: Any,
    weights: Any,
    terms: KernelTerms,
    dtype: Any,
    groups: int = 1,
    with_second: bool = True,
    row_terms: Any = None,
) -> Statistics:
    """E-step on one chunk: responsibilities under ``terms``, then their statistics.

    ``Xt`` holds the chunk's rows minus ``terms.shift``, transposed
    (``(d, m)`` in ``dtype``; see ``ArrayNamespace.centre_transposed``);
    ``terms`` are in the namespace and dtype (:meth:`KernelTerms.on`).

    ``weights`` are the chunk's float64 sample weights (or None for ones).
    The log-likelihood is a 0-d array of the namespace (non-finite where a
    row has density 0; :meth:`Statistics.to_numpy` reports that as NaN).
    Log-sum-exp is fused with the responsibilities: each entry's
    exponential is computed once.

    With ``groups > 1`` the components are that many mixtures of equally
    many components each (several fits at once, one after the other):
    responsibilities are normalised within each, and the log-likelihood
    has one entry per mixture.

    With ``terms.in_float64`` a float32 chunk is converted and the E-step
    computes in float64 (the terms are float64 then, see
    :meth:`KernelTerms.on`).

    ``with_second=False`` leaves the second moment out (zeros; see
    :func:`chunk_statistics`). ``row_terms``: the chunk's
    :meth:`Layout.row_terms` in ``dtype``, where the caller keeps them
    (None: computed here).
    """
    if terms.in_float64 and dtype != np.float64:
        Xt, dtype, row_terms = xp.to_float64(Xt), np.float64, None
    if row_terms is None:
        row_terms = layout.row_terms(xp, Xt, terms.n_components)
    normalise = compiled(_estep_loop.normalise)
    if normalise is not None and xp.in_host_memory:  # the elementwise passes as one compiled loop
        host = xp.host_view(layout.mahalanobis(xp, Xt, row_terms, terms.arrays))  # contiguous, on the host
        resp = xp.asarray(host)  # the same memory
        sums = np.zeros(groups)
        w64 = _EMPTY if weights is None else np.asarray(xp.to_numpy(weights), dtype=np.float64)
        noise = math.nan if terms.noise is None else float(terms.noise)
        log_norm = np.asarray(xp.to_numpy(terms.log_norm), dtype=np.float64)
        if host.dtype == np.float64 and numpy_exponential():
            best = np.empty((groups, host.shape[1]))
            compiled(_estep_loop.shift_by_best)(host, log_norm, noise, groups, best)
            with np.errstate(under="ignore"):
                np.exp(host, out=host)
            compiled(_estep_loop.scale_by_totals)(host, best, noise, w64, groups, sums)
        else:
            normalise(host, log_norm, noise, w64, groups, sums)
        total_weight = float(host.shape[1]) if weights is None else float(np.sum(w64))
        return chunk_statistics(xp, layout, Xt, row_terms, resp, terms.shift, sums if groups > 1 else sums[0],
                                total_weight, with_second=with_second)
    log_prob = log_prob_transposed(xp, layout, Xt, row_terms, terms)
    rows = log_prob.shape[1]
    if groups > 1:
        log_prob = xp.reshape(log_prob, (groups, -1, rows))
    top = xp.amax(log_prob, axis=-2)
    top = xp.where(xp.isfinite(top), top, 0.0)
    scaled = xp.exp(log_prob - top[..., None, :])
    total = xp.sum(scaled, axis=-2)
    log_norm = xp.log(total) + top
    usable = xp.isfinite(log_norm) & (total > 0)
    w_compute = xp.ones((rows,), dtype) if weights is None else xp.asarray(weights, dtype=dtype)
    scale = xp.where(usable, w_compute / xp.where(usable, total, 1.0), 0.0)
    resp = scaled * scale[..., None, :]
    if groups > 1:
        resp = xp.reshape(resp, (-1, rows))
    elif terms.noise is not None:  # the noise's responsibilities have no statistics of their own
        resp = resp[:-1]

    norm64 = xp.to_float64(log_norm)
    if weights is None:
        log_likelihood = xp.sum(norm64, axis=-1)
        total_weight = float(rows)
    else:
        w64 = xp.to_float64(weights)
        # Rows of weight 0 count for nothing, even where p(x) = 0 (their log is -inf).
        log_likelihood = xp.sum(xp.where(w64 > 0, norm64, 0.0) * w64, axis=-1)
        total_weight = xp.sum(w64)
    return chunk_statistics(xp, layout, Xt, row_terms, resp, terms.shift, log_likelihood, total_weight,
                            with_second=with_second)


_EMPTY = np.empty(0)

#: Whether :func:`estep_statistics` takes NumPy's exponential between two compiled passes
#: (:func:`~gaussmix.em._estep_loop.shift_by_best`, :func:`~gaussmix.em._estep_loop.scale_by_totals`) rather
#: than the compiled :func:`~gaussmix.em._estep_loop.normalise` with its own; None: where
#: :func:`numpy_exponential_is_vectorised`. The two give the same responsibilities up to rounding.
NUMPY_EXPONENTIAL: bool | None = None


def numpy_exponential() -> bool:
    """The choice :data:`NUMPY_EXPONENTIAL` makes (float64 chunks only)."""
    return numpy_exponential_is_vectorised() if NUMPY_EXPONENTIAL is None else NUMPY_EXPONENTIAL


@functools.cache
def numpy_exponential_is_vectorised() -> bool:
    """Whether NumPy's float64 exponential runs 8 values at a time here: its AVX-512 loop, which NumPy
    takes on x86-64 Linux where the CPU has AVX-512 (measured at 0.65-0.8 ns a value on one core, against
    1.4 ns for the compiled polynomial, which numba runs 4 values at a time; NumPy's loop on CPUs without
    AVX-512 took 6.2 ns). Decided by the CPU, not by timing, so that a fit's rounding is the same in every
    process on a machine."""
    if not sys.platform.startswith("linux") or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # a NumPy that does not say: the compiled exponential
        return False
    return bool(__cpu_features__.get("AVX512_SKX", False))


def fused_estep_statistics(layout: Layout, X: np.ndarray, weights: np.ndarray | None, terms: KernelTerms,
                           groups: int = 1) -> Statistics | None:
    """:func:`estep_statistics` of a NumPy chunk ``X`` (rows, not centred) as one compiled loop.

    The same statistics up to rounding, without ``(K, m)`` temporaries
    beyond the chunk's own (:mod:`gaussmix.em._estep_loop`). None where
    that loop does not apply (see :func:`fused_estep`); the caller then
    takes :func:`estep_statistics`.
    """
    estep = fused_estep(layout, terms, groups) if X.dtype == np.float64 else None
    return None if estep is None else estep(X, weights)


def fused_estep(layout: Layout, terms: KernelTerms, groups: int = 1, by_rows: bool = False
                ) -> Callable[[np.ndarray, np.ndarray | None], Statistics] | None:
    """The compiled E-step under ``terms`` as ``estep(X, weights)`` for float64 chunks, its arrays
    prepared once; None where numba is unavailable or the layout is one the loop does not know.

    ``by_rows``: the loop over rows for few components
    (:func:`~gaussmix.em._estep_loop.few_components_rows`; None where it does
    not apply, see :func:`rows_estep`), which takes float32 chunks as well
    and computes in float64.
    """
    kind = _fused_kind(layout, terms)
    if by_rows and kind not in _ROW_KINDS:
        return None
    loop = None if kind is None else compiled(_estep_loop.few_components_rows if by_rows else estep_rows)
    if loop is None:
        return None
    n_components = terms.n_components
    empty = {1: np.empty(0), 2: np.empty((0, 0)), 3: np.empty((0, 0, 0))}
    arrays = [np.ascontiguousarray(terms.arrays[name], dtype=np.float64) if name else empty[dims]
              for name, dims in zip(_estep_loop.KINDS[kind], (3, 2, 2, 1, 1))]
    if arrays[0].ndim == 2:  # one shared whitening matrix
        arrays[0] = arrays[0][None]
    if by_rows:  # no whitening matrices
        arrays = arrays[1:]
    shift = np.asarray(terms.shift, dtype=np.float64)
    log_norm = np.asarray(terms.log_norm, dtype=np.float64)

    def estep(X: np.ndarray, weights: np.ndarray | None) -> Statistics:
        n_features = X.shape[1]
        second = np.zeros(_loop_second_shape(layout, n_components, n_features))
        counts, first = np.zeros(n_components), np.zeros((n_components, n_features))
        log_likelihood = np.zeros(groups)
        loop(X, shift, empty[1] if weights is None else np.asarray(weights, np.float64), kind, log_norm, *arrays,
             groups, counts, first, second, log_likelihood)
        total_weight = float(X.shape[0]) if weights is None else float(np.sum(weights))
        return Statistics(terms.shift, counts, first, second.reshape(layout.statistic_shape(n_components, n_features)),
                          log_likelihood if groups > 1 else log_likelihood[0], total_weight)

    return estep


def rows_estep(layout: Layout, terms: KernelTerms, groups: int = 1
               ) -> Callable[[np.ndarray, np.ndarray | None], Statistics] | None:
    """The compiled E-step by rows (:func:`fused_estep` with ``by_rows``) where it is the faster one on chunks
    of any size: diagonal, shared diagonal and scalar covariances with fewer than
    :data:`~gaussmix.em._estep_loop.FEW_COMPONENTS` components in all and at least :data:`ROWS_MIN_FEATURES`
    features; None elsewhere."""
    if terms.n_components >= _estep_loop.FEW_COMPONENTS or np.shape(terms.shift)[-1] < ROWS_MIN_FEATURES:
        return None
    return fused_estep(layout, terms, groups, by_rows=True)


def _fused_kind(layout: Layout, terms: KernelTerms) -> int | None:
    """The loop's kind for a layout's kernel arrays (None: a layout the loop does not know, or a noise
    component)."""
    if terms.noise is not None:
        return None
    kind = _FUSED_KINDS.get(type(layout))
    if kind == _estep_loop.FULL_PACKED and "packed" not in terms.arrays:
        return _estep_loop.FULL_WHITENED
    return kind


#: Features from which :func:`rows_estep` applies. Measured against NumPy's passes (2 threads, K = 4):
#: 1.2x faster at d = 16, 1.3-2.6x at d = 32, 2.1-3.2x at d = 64 and 128 (K = 2 at d = 64: 3x; K = 8: 1.1x,
#: K = 16: 0.8-0.9x); at d = 8 and below 0.7-0.9x.
ROWS_MIN_FEATURES = 16
#: The kinds :func:`~gaussmix.em._estep_loop.few_components_rows` takes.
_ROW_KINDS = (_estep_loop.DIAGONAL, _estep_loop.SHARED_DIAGONAL, _estep_loop.SCALAR)

_FUSED_KINDS = {
    layouts.FullLayout: _estep_loop.FULL_PACKED,
    layouts.SharedLayout: _estep_loop.SHARED,
    layouts.DiagonalLayout: _estep_loop.DIAGONAL,
    layouts.SharedDiagonalLayout: _estep_loop.SHARED_DIAGONAL,
    layouts.ScalarLayout: _estep_loop.SCALAR,
}


def _loop_second_shape(layout: Layout, n_components: int, n_features: int) -> tuple[int, int]:
    """The statistic's second-moment shape as the loop's 2-d output (one row per component or pooled)."""
    shape = layout.statistic_shape(n_components, n_features)
    if len(shape) == 2:
        return shape
    return (n_components, 1) if layout.per_component else (1, shape[0])


class TermsResponsibilities:
    """Base of responsibilities callables (``DataSource.statistics``) built on fixed kernel terms.

    :meth:`log_prob` gives a chunk's ``(m, K)`` weighted log-probabilities
    under ``terms``, moved to each namespace and dtype it meets once.
    """

    def __init__(self, layout: Layout, terms: KernelTerms):
        self.layout, self.terms = layout, terms
        self._on: dict = {}

    def log_prob(self, data: Any, Xc: Any) -> Any:
        xp, dtype = data.xp, data.dtype
        key = (id(xp), str(dtype))
        if key not in self._on:
            self._on[key] = self.terms.on(xp, dtype)
        return weighted_log_prob(xp, self.layout, Xc, self._on[key], dtype)


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
    log_norm = log_norms(structure, params)
    log_terms = np.empty((rows.shape[0], params.n_components))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for k in range(params.n_components):
            scale = np.max(np.abs(rows), axis=1) + np.max(np.abs(params.means[k]))
            scale = np.where(scale > 0, scale, 1.0)
            diff = rows / scale[:, None] - params.means[k] / scale[:, None]
            z = structure.layout.whiten(params.precisions_cholesky, k, diff)
            log_terms[:, k] = np.log(np.sum(z * z, axis=1)) + 2.0 * np.log(scale)
        log_prob = log_norm - 0.5 * np.exp(log_terms)
    if params.noise is not None:  # the noise's density is the same everywhere
        noise = noise_log_prob(params)
        log_prob = np.concatenate([log_prob, np.full((rows.shape[0], 1), noise)], axis=1)
        log_terms = np.concatenate([log_terms, np.full((rows.shape[0], 1), np.inf)], axis=1)
        log_norm = np.append(log_norm, noise)
    live = np.isfinite(log_norm)
    lost = ~np.any(np.isfinite(log_prob), axis=1)
    if np.any(lost):
        nearest = np.min(np.where(live, log_terms[lost], np.inf), axis=1, keepdims=True)
        log_prob[lost] = np.where(live & (log_terms[lost] == nearest), 0.0, -np.inf)
    return log_prob


# -- reductions of a chunk's weighted log-probabilities -----------------------------------------
@dataclass(frozen=True)
class Reduction:
    """A function of a chunk's ``(m, K)`` weighted log-probabilities, row by row.

    Attributes
    ----------
    function : callable
        ``function(xp, log_prob)`` -> ``(m,)`` or ``(m, columns)``.
    columns : int or None
        Columns of the result (None: one value per row; 0: one per component).
    integer : bool
        Whether the result holds integers (labels).
    limits : bool
        Whether rows too far from every component for their densities to be
        computed get their limiting log-probabilities first (responsibilities
        and labels need a distribution over the components).
    """

    function: Callable[[ArrayNamespace, Any], Any]
    columns: int | None = None
    integer: bool = False
    limits: bool = False

    def __call__(self, xp: ArrayNamespace, log_prob: Any) -> Any:
        return self.function(xp, log_prob)


def _log_density(xp, log_prob):
    return xp.logsumexp(log_prob, axis=1)


def _labels(xp, log_prob):
    return xp.argmax(log_prob, axis=1)


def _responsibilities(xp, log_prob):
    norm = xp.logsumexp(log_prob, axis=1)
    norm = xp.where(xp.isfinite(norm), norm, 0.0)
    return xp.exp(log_prob - norm[:, None])


def _density_and_certainty(xp, log_prob):
    """Log-density and the log of the largest responsibility (0 where the density is 0)."""
    norm = xp.logsumexp(log_prob, axis=1)
    finite = xp.isfinite(norm)
    certainty = xp.where(finite, xp.amax(log_prob, axis=1) - xp.where(finite, norm, 0.0), 0.0)
    return xp.stack([norm, certainty], axis=1)


def _classified(xp, log_prob):
    """One-hot rows: 1 for each row's most probable component (the first of equals)."""
    components = xp.asarray(np.arange(log_prob.shape[1]))
    return xp.where(xp.reshape(xp.argmax(log_prob, axis=1), (-1, 1)) == components[None, :], 1.0, 0.0)


def _uncertainty(xp, log_prob):
    """``1 - max_k`` responsibility (mclust's uncertainty)."""
    return 1.0 - xp.amax(_responsibilities(xp, log_prob), axis=1)


LOG_DENSITY = Reduction(_log_density)
LABELS = Reduction(_labels, integer=True, limits=True)
RESPONSIBILITIES = Reduction(_responsibilities, columns=0, limits=True)
UNCERTAINTY = Reduction(_uncertainty, limits=True)
DENSITY_AND_CERTAINTY = Reduction(_density_and_certainty, columns=2)
#: summed: the weight of the rows each component classifies (mclust's clustering table)
CLASSIFIED = Reduction(_classified, columns=0, limits=True)


#: The most ``rows x components x (terms + 4)`` one call of the compiled loops takes on (one thread,
#: every responsibility at once; ``terms`` is ``d``, or ``d (d + 3) / 2`` for full covariances): about
#: where the chunked passes, with NumPy's and BLAS's vector code, catch up with it (measured on 1,000
#: to 12,000 rows, 2 to 32 features). More mixtures than one call takes run in several calls (the same
#: arithmetic each, and no Python between iterations); a mixture too large alone takes the chunked passes.
COMPILED_MAX_WORK = 1 << 19


def compiled_em_iteration(source: Any, model: Any) -> Callable[[MixtureParams, int], tuple[MixtureParams, np.ndarray]
                                                              | None] | None:
    """A compiled EM iteration of maximum-likelihood mixtures of any of mclust's fourteen covariance models.

    Returns ``iteration(params, groups)``: the M-step's new parameters of
    ``groups`` mixtures of equal size (``params`` stacked, as
    :mod:`gaussmix.em.batch` holds them) and each mixture's log-likelihood
    under ``params``, or None where the iteration is not plain arithmetic (a
    dropped or emptied component, a density of 0, a covariance that is not
    positive definite; see :func:`~gaussmix.em._estep_loop._variance_step`)
    or one mixture is too much work for it (:data:`COMPILED_MAX_WORK`): the caller
    then makes it its general way, whose results these are up to rounding.
    None instead of a function where numba is unavailable, the layout is
    not full (per component or shared), diagonal or scalar, the source does not hold
    float64 NumPy rows, or the regularisation is below rounding noise (the
    M-step then checks for singular covariances).
    """
    loops = _CompiledEM.make(source, model)
    return None if loops is None else loops.iteration


def compiled_em_runs(source: Any, model: Any) -> Callable[..., tuple[MixtureParams, np.ndarray, np.ndarray,
                                                                     np.ndarray] | None] | None:
    """Compiled EM runs: many iterations of several mixtures in one call (where :func:`compiled_em_iteration` applies).

    Returns ``runs(params, groups, bounds, limits, tol, early=None, started=None)``: each of the
    ``groups`` mixtures stacked in ``params`` iterates from its bound
    ``bounds[g]`` for at most ``limits[g]`` iterations, until its bound
    changes by less than ``tol``, or until its next iteration is not plain
    arithmetic. Gives the mixtures' last iterates (stacked), each one's
    bounds by iteration (``(groups, max(limits))``, the first ``n_done[g]``
    of row ``g`` made), ``n_done`` and ``status`` (``RUN_CONVERGED``,
    ``RUN_LIMIT`` or ``RUN_GENERAL`` of :mod:`gaussmix.em._estep_loop`: the
    caller then makes the next iteration its general way); or None where
    one mixture is too much work for a call (:data:`COMPILED_MAX_WORK`).
    ``early`` (an :class:`EarlyStop`) lets a mixture stop sooner, where it
    cannot be what its caller looks for (``RUN_COLLAPSED``, ``RUN_BEHIND``);
    ``started[g]`` says how many iterations mixture ``g`` made before (0).
    """
    loops = _CompiledEM.make(source, model)
    return None if loops is None else loops.runs


#: What compiled runs give: the last iterates (stacked), bounds by iteration, iterations made, statuses.
_Runs = tuple[MixtureParams, np.ndarray, np.ndarray, np.ndarray]


class _CompiledEM:
    """The rows and settings the compiled EM loops of one source and model take (see :meth:`make`)."""

    def __init__(self, source: Any, model: Any, kind: int, terms: int, rows: tuple[np.ndarray, np.ndarray | None]):
        self.kind, self.terms = kind, terms
        self.full = kind == _estep_loop.FULL_PACKED
        self.X, weights = rows
        self.n_rows, self.n_features = source.n_samples, source.n_features
        self.pooled = not model.structure.layout.per_component
        self.coupling = _ITERATIONS[model.structure.estimate][1]
        self.weights = np.empty(0) if weights is None else weights
        self.shift = np.asarray(source.shift, dtype=np.float64)
        self.reg = np.asarray(model.scale.reg, dtype=np.float64)
        self.reg_mean = float(np.mean(self.reg))
        self.total_weight = float(source.total_weight)
        self.empty_weight = EMPTY_COMPONENT_FRACTION * self.total_weight
        self.collapse = collapse_limits(model.scale, model.structure.layout)

    @classmethod
    def make(cls, source: Any, model: Any) -> _CompiledEM | None:
        """The compiled loops of ``source`` and ``model``, or None where they do not apply; kept in the
        source's ``memo`` for the last model asked for (a search asks for the same one many times)."""
        if compiled(runs) is None:
            return None
        memo = getattr(source, "memo", None)
        kept = None if memo is None else memo.get("compiled em")
        if kept is not None and kept[0] is model:
            return kept[1]
        loops = cls._make(source, model)
        if memo is not None:
            memo["compiled em"] = (model, loops)
        return loops

    @classmethod
    def _make(cls, source: Any, model: Any) -> _CompiledEM | None:
        if type(model) is not MaximumLikelihood or model.equal_proportions or model.noise is not None:
            # the compiled M-step estimates weights, and knows no noise
            return None
        kind = _ITERATIONS.get(model.structure.estimate, (None,))[0]
        if kind is None or model.scale.checks_singularity:
            return None
        n_features = source.n_features
        terms = n_features * (n_features + 3) // 2 if kind == _estep_loop.FULL_PACKED else n_features
        if source.n_samples * (terms + 4) > COMPILED_MAX_WORK:  # too large even for one component: no copy
            return None
        rows = getattr(source, "float64_rows", lambda: None)()
        return None if rows is None else cls(source, model, kind, terms, rows)

    def fits(self, n_components: int) -> bool:
        """Whether ``n_components`` components in all are small enough work (:data:`COMPILED_MAX_WORK`)."""
        return self.n_rows * n_components * (self.terms + 4) <= COMPILED_MAX_WORK

    def _split(self, params: MixtureParams, groups: int, bounds, limits, tol: float, total_weight: float,
               early: EarlyStop | None = None, started=None) -> _Runs | None:
        """:meth:`_runs` of the ``groups`` mixtures in as few calls as :data:`COMPILED_MAX_WORK` allows, each
        on consecutive mixtures (None where one mixture alone is too much): the same runs as one call."""
        per_mixture = params.n_components // groups
        if not self.fits(per_mixture):
            return None
        step = max(1, COMPILED_MAX_WORK // (self.n_rows * per_mixture * (self.terms + 4)))
        if step >= groups:
            return self._runs(params, groups, bounds, limits, tol, total_weight, early, started)
        bounds, limits = np.asarray(bounds, dtype=np.float64), np.asarray(limits, dtype=np.int64)
        started = np.zeros(groups, dtype=np.int64) if started is None else np.asarray(started, dtype=np.int64)
        history = np.full((groups, int(limits.max(initial=0))), np.nan)
        parts, n_done, status = [], [], []
        for first in range(0, groups, step):
            last = min(first + step, groups)
            components = slice(first * per_mixture, last * per_mixture)
            own = slice(first, last) if self.pooled else components
            part = MixtureParams(params.weights[components], params.means[components], params.covariances[own],
                                 params.precisions_cholesky[own])
            made = self._runs(part, last - first, bounds[first:last], limits[first:last], tol, total_weight,
                              early, started[first:last])
            parts.append(made[0])
            history[first:last, :made[1].shape[1]] = made[1]
            n_done.append(made[2])
            status.append(made[3])
        return joined_fits(parts), history, np.concatenate(n_done), np.concatenate(status)

    def iteration(self, params: MixtureParams, groups: int) -> tuple[MixtureParams, np.ndarray] | None:
        """One iteration of every mixture: a compiled run with a limit of one (bounds as log-likelihoods)."""
        made = self._split(params, groups, np.full(groups, -np.inf), np.ones(groups, dtype=np.int64), -1.0, 1.0)
        if made is None or np.any(made[3] == _estep_loop.RUN_GENERAL):
            return None
        new, history = made[:2]
        return new, history[:, 0]

    def runs(self, params: MixtureParams, groups: int, bounds, limits, tol: float, early: EarlyStop | None = None,
             started=None) -> _Runs | None:
        return self._split(params, groups, bounds, limits, tol, self.total_weight, early, started)

    def _runs(self, params: MixtureParams, groups: int, bounds, limits, tol: float, total_weight: float,
              early: EarlyStop | None = None, started=None) -> _Runs | None:
        """:meth:`runs`, with bounds that are log-likelihoods over ``total_weight``."""
        n_components, d = params.means.shape
        if not self.fits(n_components):
            return None
        limits = np.asarray(limits, dtype=np.int64)
        history = np.empty((groups, int(limits.max(initial=0))))
        n_done, status = np.zeros(groups, dtype=np.int64), np.zeros(groups, dtype=np.int64)
        # every parameter array as a 2-d copy: one row per component (or shared matrix)
        means, weights = params.means.copy(), params.weights.reshape(-1, 1).copy()
        rows = params.covariances.size // (d * d) if self.full else (groups if self.pooled else n_components)
        covariances = params.covariances.reshape(rows, -1).copy()
        factors = params.precisions_cholesky.reshape(rows, -1).copy()
        bounds = np.asarray(bounds, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"), blas_for_matrices(d):
            compiled(runs)(self.X, self.shift, self.weights, self.kind, means, covariances, factors, weights, groups,
                           self.pooled, self.coupling, self.reg, self.reg_mean, self.empty_weight,
                           self.collapse if early is not None and early.collapsed else _NO_LIMITS,
                           -math.inf if early is None else float(early.target), 0.0 if early is None else early.slack,
                           0 if early is None else early.after,
                           np.zeros(groups, dtype=np.int64) if started is None else np.asarray(started, dtype=np.int64),
                           total_weight, tol, bounds, limits, history, n_done, status)
        shape = params.covariances.shape
        weights, covariances, factors = weights.reshape(-1), covariances.reshape(shape), factors.reshape(shape)
        return MixtureParams(weights, means, covariances, factors), history, n_done, status


@dataclass(frozen=True)
class EarlyStop:
    """Where compiled runs (:func:`compiled_em_runs`) stop a mixture before it converges: runs of a search
    that only look for a fit better than one they have, and would end up no better.

    Attributes
    ----------
    collapsed : bool
        Stop after an iteration that leaves a component collapsed (as
        :func:`_collapse_limits` decides: what stops is collapsed for
        :func:`~gaussmix.em.scale.collapsed_components` too; per-component
        covariances only).
    target : float
        Stop, after at least ``after`` iterations, where the bound would stay
        below ``target`` even if it went on rising ``slack`` times as fast as
        in the last iteration until the run's limit (EM's increments mostly
        shrink). ``-inf``: never.
    """

    collapsed: bool = False
    target: float = -math.inf
    slack: float = 2.0
    after: int = 2

    def reason(self, scale: Any, layout: Layout, params: MixtureParams, n_iter: int, max_iter: int, bound: float,
               change: float) -> str | None:
        """Why a run stops after its iteration ``n_iter`` (of at most ``max_iter``) to ``params``, its bound
        ``bound`` having risen by ``change`` (:data:`COLLAPSED` or :data:`BEHIND`; None: it goes on), as the
        compiled runs decide it."""
        limits = collapse_limits(scale, layout) if self.collapsed else _NO_LIMITS
        if collapsed_early(layout, params.covariances, scale.reg, limits):
            return COLLAPSED
        if n_iter > self.after and bound + self.slack * change * (max_iter - n_iter) < self.target:
            return BEHIND
        return None


#: ``EMResult.stopped`` of runs that an :class:`EarlyStop` stopped: a component collapsed, or the bound
#: could not reach the target.
COLLAPSED = "a component collapsed: its variance less the regularisation is at most reg_covar in some direction"
BEHIND = "the lower bound cannot reach its target at its present rate of increase"
EARLY_STOPS = (COLLAPSED, BEHIND)


_NO_LIMITS = np.empty(0)


def collapse_limits(scale: Any, layout: Layout) -> np.ndarray:
    """The variances less the regularisation at or below which an :class:`EarlyStop` takes a component to
    have collapsed (d,): ``reg_covar`` in units of each feature's variance (plus the regularisation), as
    :func:`~gaussmix.em.scale.collapsed_components` with the least value of its threshold; for a scalar
    variance, in units of the largest. Empty (never collapsed) for a shared covariance, and where some
    feature does not vary.
    """
    if not layout.per_component or not np.all(scale.varies):
        return _NO_LIMITS
    units = np.asarray(scale.variances + scale.reg, dtype=np.float64)
    if isinstance(layout, layouts.ScalarLayout):
        units = np.full_like(units, np.max(units))
    return scale.reg_covar * units


def collapsed_early(layout: Layout, covariances: np.ndarray, reg: np.ndarray, limits: np.ndarray) -> bool:
    """Whether one fit's ``covariances`` have a component that :func:`collapse_limits` ``limits`` take to have
    collapsed: its variance less ``reg`` at most the limit in some direction (the compiled runs' test)."""
    if not limits.size:
        return False
    if isinstance(layout, layouts.ScalarLayout):
        return bool(np.any(covariances - np.mean(reg) <= limits[0]))
    if not layout.is_matrix:
        return bool(np.any(covariances - reg <= limits))
    return bool(np.any(without_cholesky(covariances - np.diag(reg + limits))))


#: by estimate: the compiled runs' kind of iteration and how its M-step ties a mixture's components together
#: (the compiled M-steps are these estimates, not another model's)
_ITERATIONS = {
    full.estimate: (_estep_loop.FULL_PACKED, _estep_loop.INDEPENDENT),
    tied.estimate: (_estep_loop.FULL_PACKED, _estep_loop.INDEPENDENT),
    diag.estimate: (_estep_loop.DIAGONAL, _estep_loop.INDEPENDENT),
    spherical.estimate: (_estep_loop.SCALAR, _estep_loop.INDEPENDENT),
    constrained.EII.estimate: (_estep_loop.SCALAR, _estep_loop.EQUAL_VARIANCE),
    constrained.EEI.estimate: (_estep_loop.DIAGONAL, _estep_loop.EQUAL_VOLUME_AND_SHAPE),
    constrained.EVI.estimate: (_estep_loop.DIAGONAL, _estep_loop.EQUAL_VOLUME),
    constrained.VEI.estimate: (_estep_loop.DIAGONAL, _estep_loop.EQUAL_SHAPE),
    constrained.EEV.estimate: (_estep_loop.FULL_PACKED, _estep_loop.EQUAL_VOLUME_AND_SHAPE),
    constrained.EVV.estimate: (_estep_loop.FULL_PACKED, _estep_loop.EQUAL_VOLUME),
    constrained.VEV.estimate: (_estep_loop.FULL_PACKED, _estep_loop.EQUAL_SHAPE),
    constrained.VEE.estimate: (_estep_loop.FULL_PACKED, _estep_loop.EQUAL_SHAPE_AND_ORIENTATION),
    constrained.EVE.estimate: (_estep_loop.FULL_PACKED, _estep_loop.EQUAL_VOLUME_AND_ORIENTATION),
    constrained.VVE.estimate: (_estep_loop.FULL_PACKED, _estep_loop.EQUAL_ORIENTATION),
}
