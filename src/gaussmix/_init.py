"""Initial parameters: from k-means, seeds, random responsibilities or given arrays.

Every method ends the same way: responsibilities (hard or soft) for all rows,
their sufficient statistics, and one M-step. So initial covariances always
come from the data, and sample weights count exactly as in EM.

=====================  ======================================================
``"kmeans"``           k-means++ seeding, then weighted Lloyd iterations;
                       each row belongs to its nearest final centre.
``"k-means++"``        k-means++ seeding only; each row belongs to its
                       nearest seed.
``"random_from_data"`` ``n_components`` distinct rows drawn with probability
                       proportional to their weight; nearest-seed assignment.
``"random"``           uniformly random responsibilities, normalised per row
                       (a function of the row's values, see
                       :mod:`gaussmix._sampling`).
=====================  ======================================================

User-given ``means_init`` replace the seeds (rows are assigned to the
nearest given mean); given ``weights_init``, ``means_init`` and
``precisions_init`` replace the corresponding estimates, and when all three
are given no pass over the data is needed.

On more than :data:`INIT_SAMPLE_ROWS` rows (or 100 per component), seeding
and Lloyd iterations run on a subsample of that many rows drawn with
probability proportional to their weight; the full data are then assigned
to the nearest centre while their statistics are taken. The draw depends on
row values, not order; a row of weight 2 and two copies of it are then
equivalent in distribution (exactly so on smaller data).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from gaussmix._data import ChunkedData
from gaussmix._em import m_step
from gaussmix._kmeans import lloyd, nearest, nearest_in_chunk, seed_centers
from gaussmix._params import MixtureParams
from gaussmix._sampling import heaviest_keys, new_stream, uniforms
from gaussmix._stats import Statistics
from gaussmix.covariance import CovarianceStructure

InitMethod = Literal["kmeans", "k-means++", "random", "random_from_data"]
#: Rows above which k-means initialisation works on a subsample.
INIT_SAMPLE_ROWS = 20_000
INIT_METHODS: tuple[str, ...] = ("kmeans", "k-means++", "random", "random_from_data")


def _labels_responsibilities(data: ChunkedData, labels: np.ndarray, n_components: int):
    xp = data.xp

    def responsibilities(start, stop, Xc):
        onehot = np.zeros((stop - start, n_components))
        onehot[np.arange(stop - start), labels[start:stop]] = 1.0
        return xp.asarray(onehot, dtype=data.dtype)

    return responsibilities


def labelled_statistics(
    data: ChunkedData, structure: CovarianceStructure, labels: np.ndarray, n_components: int
) -> Statistics:
    """Statistics of hard labels (each row belongs wholly to ``labels[i]``)."""
    return data.statistics(structure, _labels_responsibilities(data, labels, n_components), n_components)


def _nearest_responsibilities(data: ChunkedData, centers: np.ndarray):
    """One-hot responsibilities of the nearest centre, computed chunk by chunk (no stored labels)."""
    xp = data.xp
    n_components = centers.shape[0]

    def responsibilities(start, stop, Xc):
        labels = nearest_in_chunk(data, Xc, centers)
        onehot = np.zeros((stop - start, n_components))
        onehot[np.arange(stop - start), labels] = 1.0
        return xp.asarray(onehot, dtype=data.dtype)

    return responsibilities


def _subsample(data: ChunkedData, n_components: int, rng: np.random.RandomState) -> ChunkedData | None:
    """A weighted subsample for k-means, or None when the data are small enough to use whole."""
    size = max(INIT_SAMPLE_ROWS, 100 * n_components)
    if data.n_samples <= size:
        return None
    rows = heaviest_keys(data.chunks(1), size, new_stream(rng), data.fingerprints)
    xp = data.xp
    return ChunkedData(xp.take(data.X, xp.asarray(rows), axis=0), None, n_threads=data.n_threads)


def _random_responsibilities(data: ChunkedData, streams: list[int]):
    """Uniform random responsibilities that are a function of each row's values."""
    xp = data.xp

    def responsibilities(start, stop, Xc):
        prints = data.fingerprints(Xc)
        resp = np.stack([uniforms(prints, stream) for stream in streams], axis=1)
        resp /= resp.sum(axis=1, keepdims=True)
        return xp.asarray(resp, dtype=data.dtype)

    return responsibilities


def initial_params(
    data: ChunkedData,
    structure: CovarianceStructure,
    *,
    n_components: int,
    method: InitMethod,
    rng: np.random.RandomState,
    reg: np.ndarray,
    data_variances: np.ndarray,
    weights_init: np.ndarray | None = None,
    means_init: np.ndarray | None = None,
    precisions_init: np.ndarray | None = None,
) -> tuple[MixtureParams, tuple[int, ...]]:
    """Initial parameters and the components that received no rows.

    Raises :class:`gaussmix.covariance.SingularCovarianceError` if an initial
    covariance is singular (only possible with ``reg_covar=0``).
    """
    if weights_init is not None and means_init is not None and precisions_init is not None:
        prec_chol = structure.precisions_cholesky_from_precisions(precisions_init)
        covariances = structure.covariances_from_precisions_cholesky(prec_chol)
        return MixtureParams(weights_init.copy(), means_init.copy(), covariances, prec_chol), ()

    responsibilities: Any
    if means_init is not None:
        responsibilities = _nearest_responsibilities(data, means_init)
    elif method == "random":
        responsibilities = _random_responsibilities(data, [new_stream(rng) for _ in range(n_components)])
    else:
        sample = _subsample(data, n_components, rng)
        source = data if sample is None else sample
        seeding = "distinct" if method == "random_from_data" else "k-means++"
        centers = seed_centers(source, n_components, rng, seeding)
        if method == "kmeans":
            centers, labels = lloyd(source, centers)
        else:
            labels = nearest(source, centers)[0]
        if sample is None:
            responsibilities = _labels_responsibilities(data, labels, n_components)
        else:
            responsibilities = _nearest_responsibilities(data, centers)

    stats = data.statistics(structure, responsibilities, n_components)
    params, empty = m_step(structure, stats, reg, None, data_variances)

    weights, means = params.weights, params.means
    covariances, prec_chol = params.covariances, params.precisions_cholesky
    if weights_init is not None:
        weights = weights_init.copy()
        empty = ()
    if means_init is not None:
        means = means_init.copy()
    if precisions_init is not None:
        prec_chol = structure.precisions_cholesky_from_precisions(precisions_init)
        covariances = structure.covariances_from_precisions_cholesky(prec_chol)
    return MixtureParams(weights, means, covariances, prec_chol), empty
