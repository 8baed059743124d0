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
                       :mod:`gaussmix.em.sampling`).
=====================  ======================================================

A given partition (labels, or responsibilities of every row) replaces all
of these as the start; its statistics and one M-step give the initial
parameters. User-given ``means_init`` replace the seeds (rows are assigned
to the nearest given mean); given ``weights_init``, ``means_init`` and
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

from dataclasses import replace
from typing import Any, Literal

import numpy as np

from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em import INIT_METHODS
from gaussmix.em.hierarchical import HC_MAX_ROWS, agglomerate, partition, svd_transform
from gaussmix.em.kmeans import StandardisedRows, lloyd, nearest_in_chunk, seed_centers
from gaussmix.em.models import EMModel
from gaussmix.em.params import MixtureParams
from gaussmix.em.sampling import new_stream, uniforms
from gaussmix.em.source import DataSource, RowSource
from gaussmix.em.statistics import Statistics

__all__ = ["INIT_METHODS", "InitMethod", "initial_params"]

InitMethod = Literal["kmeans", "k-means++", "random", "random_from_data", "emem", "hc", "given"]
#: Rows above which k-means initialisation works on a subsample.
INIT_SAMPLE_ROWS = 20_000


class LabelResponsibilities:
    """One-hot responsibilities of given labels (``labels[i]`` for row ``i`` of the whole data)."""

    def __init__(self, labels: np.ndarray, n_components: int):
        self.labels, self.n_components = labels, n_components

    def __call__(self, data: RowSource, start: int, stop: int, Xc: Any) -> Any:
        return _one_hot(data, self.labels_of(data, start, stop, Xc), self.n_components)

    def labels_of(self, data: RowSource, start: int, stop: int, Xc: Any) -> np.ndarray:
        """The component of each row of the chunk (a data source's statistics take them as they are)."""
        return self.labels[start:stop]


class GivenResponsibilities:
    """Responsibilities given for every row of the whole data, ``(n, K)`` (each row sums to 1)."""

    def __init__(self, responsibilities: np.ndarray):
        self.responsibilities = responsibilities

    def __call__(self, data: RowSource, start: int, stop: int, Xc: Any) -> Any:
        return data.xp.asarray(self.responsibilities[start:stop], dtype=data.dtype)


class NearestResponsibilities:
    """One-hot responsibilities of the nearest centre, computed chunk by chunk (no stored labels)."""

    def __init__(self, centers: np.ndarray):
        self.centers = centers

    def __call__(self, data: RowSource, start: int, stop: int, Xc: Any) -> Any:
        return _one_hot(data, self.labels_of(data, start, stop, Xc), self.centers.shape[0])

    def labels_of(self, data: RowSource, start: int, stop: int, Xc: Any) -> np.ndarray:
        """The component of each row of the chunk: its nearest centre."""
        return nearest_in_chunk(data, Xc, self.centers)


class RandomResponsibilities:
    """Uniform random responsibilities that are a function of each row's values."""

    def __init__(self, streams: list[int]):
        self.streams = streams

    def __call__(self, data: RowSource, start: int, stop: int, Xc: Any) -> Any:
        prints = data.fingerprints(Xc)
        resp = np.stack([uniforms(prints, stream) for stream in self.streams], axis=1)
        resp /= resp.sum(axis=1, keepdims=True)
        return data.xp.asarray(resp, dtype=data.dtype)


def _one_hot(data: RowSource, labels: np.ndarray, n_components: int) -> Any:
    onehot = np.zeros((labels.shape[0], n_components))
    onehot[np.arange(labels.shape[0]), labels] = 1.0
    return data.xp.asarray(onehot, dtype=data.dtype)


def labelled_statistics(
    data: DataSource, structure: CovarianceStructure, labels: np.ndarray, n_components: int
) -> Statistics:
    """Statistics of hard labels (each row belongs wholly to ``labels[i]``)."""
    return data.statistics(structure, LabelResponsibilities(labels, n_components), n_components)


def subsample_size(n_components: int) -> int:
    """Rows k-means initialisation works on: :data:`INIT_SAMPLE_ROWS`, or 100 per component."""
    return max(INIT_SAMPLE_ROWS, 100 * n_components)


def _subsample(data: DataSource, n_components: int, rng: np.random.RandomState) -> RowSource | None:
    """A weighted subsample for k-means, or None when the data are small enough to use whole."""
    size = subsample_size(n_components)
    if data.n_samples <= size:
        return None
    return data.weighted_sample(size, new_stream(rng))


def seeding_rows(data: DataSource, n_components: int, rng: np.random.RandomState) -> RowSource:
    """The rows seeds are drawn from: the data, or a weighted subsample of data too large to hold."""
    sample = _subsample(data, n_components, rng)
    return data.in_memory() if sample is None else sample


def hierarchical_start(data: DataSource, n_components: int, rng: np.random.RandomState):
    """``(sample or None, labels)``: the hierarchy's partition into ``n_components`` clusters.

    The hierarchy is built once per data source (and sample) and kept in
    its ``memo``, so every number of components of a selector cuts the same
    tree. Data of more than :data:`~gaussmix.em.hierarchical.HC_MAX_ROWS`
    rows use a weighted sample of that many rows; the labels are then the
    sample's (``sample`` is returned).
    """
    sample = None
    key: tuple = ("hc",)
    if data.n_samples > HC_MAX_ROWS:
        stream = new_stream(rng)
        key = ("hc", stream)
        if key not in data.memo:
            sample = data.weighted_sample(HC_MAX_ROWS, stream)
    if key not in data.memo:
        rows = data.in_memory() if sample is None else sample
        X = np.asarray(rows.xp.to_numpy(rows.rows(np.arange(rows.n_samples))), dtype=np.float64)
        weights = rows.weights_numpy()
        merges, start = agglomerate(svd_transform(X, weights), weights)
        data.memo[key] = (sample, merges, start, X, weights)
    sample, merges, start, X, weights = data.memo[key]
    labels = partition(merges, start, n_components)
    # Components numbered by their means (lexicographically), not by their first row: the same
    # mixture whatever the order of the rows.
    counted = weights > 0  # every cluster has rows of positive weight; the others count for nothing
    means = np.stack([np.average(X[counted & (labels == k)], axis=0, weights=weights[counted & (labels == k)])
                      for k in range(n_components)])
    rank = np.empty(n_components, dtype=np.intp)
    rank[np.lexsort(means.T[::-1])] = np.arange(n_components)
    return sample, rank[labels]


def initial_params(
    data: DataSource,
    model: EMModel,
    *,
    n_components: int,
    method: InitMethod,
    rng: np.random.RandomState,
    weights_init: np.ndarray | None = None,
    means_init: np.ndarray | None = None,
    precisions_init: np.ndarray | None = None,
    given: Any = None,
) -> tuple[MixtureParams, tuple[int, ...]]:
    """Initial parameters and the components that received no rows.

    ``given`` (responsibilities of every row, such as :class:`LabelResponsibilities`)
    replaces ``method`` and ``means_init`` as the start. Every method ends
    with ``model``'s M-step. Raises
    :class:`gaussmix.covariance.SingularCovarianceError` if an initial
    covariance is singular (only possible with ``reg_covar=0``).
    """
    structure, layout = model.structure, model.structure.layout
    if weights_init is not None and means_init is not None and precisions_init is not None:
        prec_chol = layout.precisions_cholesky_from_precisions(precisions_init)
        covariances = layout.covariances_from_precisions_cholesky(prec_chol)
        return MixtureParams(weights_init.copy(), means_init.copy(), covariances, prec_chol), ()

    responsibilities: Any
    if given is not None:
        responsibilities = given
    elif method == "hc" and means_init is None:
        sample, labels = hierarchical_start(data, n_components, rng)
        if sample is not None:  # built on a sample: its parameters, and EM's first E-step assigns the rest
            data = sample
        responsibilities = LabelResponsibilities(labels, n_components)
    elif means_init is not None:
        responsibilities = NearestResponsibilities(means_init)
    elif method == "random":
        responsibilities = RandomResponsibilities([new_stream(rng) for _ in range(n_components)])
    else:
        sample = _subsample(data, n_components, rng)
        if sample is None:
            data = data.in_memory()  # the whole data, small enough to hold (a no-op in memory)
        source = data if sample is None else sample
        seeding = "distinct" if method == "random_from_data" else "k-means++"
        rows = StandardisedRows(source)
        centers = seed_centers(source, n_components, rng, seeding, rows)
        if method == "kmeans":
            centers, labels = lloyd(source, centers, standardised=rows)
        else:
            labels = rows.nearest(centers)[0]
        if sample is None:
            responsibilities = LabelResponsibilities(labels, n_components)
        else:
            responsibilities = NearestResponsibilities(centers)

    stats = data.statistics(structure, responsibilities, n_components)
    params, empty = model.update(stats, None)

    weights, means = params.weights, params.means
    covariances, prec_chol = params.covariances, params.precisions_cholesky
    if weights_init is not None:
        weights = weights_init.copy()
        empty = ()
    if means_init is not None:
        means = means_init.copy()
    if precisions_init is not None:
        prec_chol = layout.precisions_cholesky_from_precisions(precisions_init)
        covariances = layout.covariances_from_precisions_cholesky(prec_chol)
    return replace(params, weights=weights, means=means, covariances=covariances, precisions_cholesky=prec_chol), empty
