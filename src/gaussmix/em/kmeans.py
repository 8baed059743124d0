"""Weighted k-means on the chunked data passes: seeding and Lloyd iterations.

Sample weights enter every step: seeds are drawn with probability
proportional to ``weight * D(x)^2`` (k-means++) or to ``weight`` (random rows),
and centres are weighted means. Draws depend on row values only, so a row
of weight 0 is never chosen, a row of weight 2 acts exactly as two copies of
it, and the order of the rows does not matter.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from gaussmix._compiled import compiled
from gaussmix._namespace import ArrayNamespace
from gaussmix.em import _kmeans_loop
from gaussmix.em.sampling import new_stream
from gaussmix.em.source import RowSource


def squared_distances(xp: ArrayNamespace, Xt: Any, centers: Any) -> Any:
    """Squared distances between standardised rows ``Xt`` (d, m) and centres (K, d): ``(K, m)``.

    ``|x|^2 - 2 x.c + |c|^2`` with one matrix product; rounding can leave
    tiny negative values, which do not change which centre is nearest.
    """
    row_norms = xp.sum(Xt * Xt, axis=0)
    center_norms = xp.sum(centers * centers, axis=1)
    return row_norms[None, :] - 2.0 * (centers @ Xt) + center_norms[:, None]


class _Standardised:
    """Rows shifted by the data mean and divided by each feature's standard deviation."""

    def __init__(self, data: RowSource):
        variances = data.feature_moments()[1]
        self.data = data
        self.scale = np.sqrt(np.where(variances > 0, variances, 1.0))

    def rows(self, Xc: Any) -> Any:
        data = self.data
        Xt = data.xp.centre_transposed(Xc, data.shift, data.dtype)
        return Xt / data.xp.asarray(self.scale, dtype=data.dtype)[:, None]

    def centers(self, centers: np.ndarray) -> Any:
        return self.data.xp.asarray((centers - self.data.shift) / self.scale, dtype=self.data.dtype)


def standardised_rows(data: RowSource) -> np.ndarray:
    """Every row of ``data`` standardised as :class:`_Standardised` does, in float64, as ``(d, m)`` columns.

    For the few rows seeding works on (at most a sample's, see :func:`gaussmix.em.init.subsample_size`):
    made once, they serve every step of the seeding.
    """
    space = _Standardised(data)
    Zt = np.empty((data.n_features, data.n_samples))
    for start, stop, Xc, _ in data.chunks(1):
        rows = np.asarray(data.xp.to_numpy(Xc), dtype=np.float64)
        np.divide((rows - data.shift).T, space.scale[:, None], out=Zt[:, start:stop])
    return Zt


def distances_to(Zt: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``(m, t)`` squared distances of the standardised rows ``Zt`` ``(d, m)`` to standardised ``centers``.

    Differences are taken before squaring, so a row equal to a centre is at
    distance exactly 0 (seeding relies on it), and each row's distance is
    summed feature by feature, so it does not depend on the row's position.
    """
    out = np.empty((Zt.shape[1], centers.shape[0]))
    loop = compiled(_kmeans_loop.distances_to)
    if loop is not None:
        loop(Zt, np.ascontiguousarray(centers, dtype=np.float64), out)
        return out
    diff = np.empty_like(Zt)
    for t, center in enumerate(centers):
        np.subtract(Zt, center[:, None], out=diff)
        np.multiply(diff, diff, out=diff)
        np.sum(diff, axis=0, out=out[:, t])
    return out


def nearest_in_chunk(data: RowSource, Xc: Any, centers: np.ndarray) -> np.ndarray:
    """Nearest centre (standardised distances) of each row of one chunk of ``data``."""
    xp = data.xp
    space = _Standardised(data)
    d2 = squared_distances(xp, space.rows(Xc), space.centers(centers))
    return np.asarray(xp.to_numpy(xp.argmin(d2, axis=0)))


def nearest(data: RowSource, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre for each row, and the squared standardised distance to it."""
    xp = data.xp
    space = _Standardised(data)
    dev = space.centers(centers)

    def chunk(start, stop, Xc, wc):
        d2 = np.asarray(xp.to_numpy(squared_distances(xp, space.rows(Xc), dev)), dtype=np.float64)
        best = np.argmin(d2, axis=0)
        return best, np.maximum(d2[best, np.arange(d2.shape[1])], 0.0)

    parts = data.map_chunks(chunk, centers.shape[0])
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _rows(data: RowSource, indices: np.ndarray) -> np.ndarray:
    return np.asarray(data.xp.to_numpy(data.rows(indices)), dtype=np.float64)


def seed_centers(
    data: RowSource,
    n_clusters: int,
    rng: np.random.RandomState,
    method: Literal["k-means++", "distinct"],
) -> np.ndarray:
    """Choose ``n_clusters`` rows of the data as centres.

    ``"k-means++"`` is greedy k-means++ (Arthur & Vassilvitskii 2007, with
    ``2 + log K`` candidates per step, keeping the one that lowers the
    weighted potential most). ``"distinct"`` draws rows of distinct values
    with probability proportional to their weight, without replacement.
    Draws depend on row values, not positions (see :mod:`gaussmix.em.sampling`).
    """
    if method == "distinct":
        return _rows(data, distinct_rows(data, n_clusters, rng))
    groups = data.row_groups()

    def rows_of(chosen) -> np.ndarray:
        return _rows(data, groups.representative[np.asarray(chosen, dtype=np.intp)])

    weights = data.weights_numpy()
    Zt = standardised_rows(data)
    space = _Standardised(data)
    centers = np.empty((n_clusters, data.n_features))
    centers[0] = rows_of([groups.draw(groups.weight, new_stream(rng))])[0]
    closest = distances_to(Zt, (centers[:1] - data.shift) / space.scale)[:, 0]
    n_trials = 2 + int(math.log(n_clusters))
    for c in range(1, n_clusters):
        scores = groups.weight * closest[groups.representative]
        if not np.any(scores > 0):  # every row already coincides with a centre
            scores = groups.weight
        candidates = [groups.draw(scores, new_stream(rng)) for _ in range(n_trials)]
        cand_rows = rows_of(candidates)
        trial = np.minimum(closest[:, None], distances_to(Zt, (cand_rows - data.shift) / space.scale))
        best = int(np.argmin(weights @ trial))
        centers[c] = cand_rows[best]
        closest = trial[:, best]
    return centers


def distinct_rows(data: RowSource, count: int, rng: np.random.RandomState) -> np.ndarray:
    """Indices of ``count`` rows of distinct values, drawn without replacement with probability proportional
    to their weight; where there are fewer such rows than ``count``, some are drawn again. Draws depend on
    row values, not positions (see :mod:`gaussmix.em.sampling`)."""
    groups = data.row_groups()
    chosen = list(groups.draw_distinct(groups.weight, count, new_stream(rng)))
    while len(chosen) < count:  # fewer distinct rows than asked for: repeat some
        chosen.append(groups.draw(groups.weight, new_stream(rng)))
    return groups.representative[np.asarray(chosen, dtype=np.intp)]


def _cluster_means(data: RowSource, labels: np.ndarray, n_clusters: int):
    """Weighted counts and weighted means of the rows of each cluster (the shift where empty)."""
    xp = data.xp
    shift = data.shift

    def chunk(start, stop, Xc, wc):
        lab = labels[start:stop]
        w64 = np.ones(stop - start) if wc is None else np.asarray(xp.to_numpy(wc), dtype=np.float64)
        onehot = np.zeros((n_clusters, stop - start))
        onehot[lab, np.arange(stop - start)] = w64
        Xt = xp.centre_transposed(Xc, shift, data.dtype)
        sums = np.asarray(xp.to_numpy(xp.asarray(onehot, dtype=data.dtype) @ xp.transpose_last(Xt)), np.float64)
        return np.bincount(lab, weights=w64, minlength=n_clusters), sums

    parts = data.map_chunks(chunk, n_clusters)
    counts = np.sum([p[0] for p in parts], axis=0)
    sums = np.sum([p[1] for p in parts], axis=0)
    return counts, shift + sums / np.where(counts > 0, counts, 1.0)[:, None]


def lloyd(
    data: RowSource,
    centers: np.ndarray,
    *,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd iterations from ``centers``; returns final centres and labels.

    Distances are measured in standardised units (each feature divided by
    its standard deviation). Stops when no label changes or when the total
    squared centre shift, in those units, falls below ``tol``. A
    cluster left empty is moved to the (positive-weight) row farthest from
    its centre.
    """
    variances = data.feature_moments()[1]
    scale = np.where(variances > 0, variances, 1.0)
    threshold = tol
    weights = data.weights_numpy()
    centers = centers.copy()
    previous = None
    for _ in range(max_iter):
        labels, dist = nearest(data, centers)
        if previous is not None and np.array_equal(labels, previous):
            return centers, labels
        previous = labels
        counts, new = _cluster_means(data, labels, centers.shape[0])
        empty = np.flatnonzero(counts <= 0)
        if empty.size:
            far = np.argsort(-np.where(weights > 0, dist, -1.0), kind="stable")[: empty.size]
            new[empty] = _rows(data, far)
        shift = float(np.sum((new - centers) ** 2 / scale))
        centers = new
        if shift <= threshold:
            break
    return centers, nearest(data, centers)[0]
