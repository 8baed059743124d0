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

from gaussmix._data import ChunkedData
from gaussmix._namespace import ArrayNamespace
from gaussmix._sampling import new_stream


def squared_distances(xp: ArrayNamespace, X: Any, centers: Any, inverse_scale: Any) -> Any:
    """Squared distances of rows to centres in standardised units, shape ``(n, K)``.

    Each feature's difference is divided by that feature's standard
    deviation, so no feature dominates because of its units.
    """
    diff = (X[None, :, :] - centers[:, None, :]) * inverse_scale
    return xp.sum(diff * diff, axis=2).T


def _inverse_scale(data: ChunkedData) -> Any:
    variances = data.feature_moments()[1]
    return data.xp.asarray(1.0 / np.sqrt(np.where(variances > 0, variances, 1.0)), dtype=data.dtype)


def _distances_to(data: ChunkedData, centers: np.ndarray) -> np.ndarray:
    """``(n, K)`` float64 squared distances of every row to ``centers``."""
    xp = data.xp
    dev = xp.asarray(centers, dtype=data.dtype)
    inverse_scale = _inverse_scale(data)
    parts = [
        np.asarray(xp.to_numpy(squared_distances(xp, Xc, dev, inverse_scale)), dtype=np.float64)
        for _, _, Xc, _ in data.chunks(centers.shape[0])
    ]
    return np.concatenate(parts, axis=0)


def nearest(data: ChunkedData, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre for each row, and the squared distance to it."""
    xp = data.xp
    dev = xp.asarray(centers, dtype=data.dtype)
    inverse_scale = _inverse_scale(data)
    labels, dist = [], []
    for _, _, Xc, _ in data.chunks(centers.shape[0]):
        d2 = np.asarray(xp.to_numpy(squared_distances(xp, Xc, dev, inverse_scale)), dtype=np.float64)
        best = np.argmin(d2, axis=1)
        labels.append(best)
        dist.append(d2[np.arange(d2.shape[0]), best])
    return np.concatenate(labels), np.concatenate(dist)


def _rows(data: ChunkedData, indices: np.ndarray) -> np.ndarray:
    xp = data.xp
    return np.asarray(xp.to_numpy(xp.take(data.X, xp.asarray(indices), axis=0)), dtype=np.float64)


def seed_centers(
    data: ChunkedData,
    n_clusters: int,
    rng: np.random.RandomState,
    method: Literal["k-means++", "distinct"],
) -> np.ndarray:
    """Choose ``n_clusters`` rows of the data as centres.

    ``"k-means++"`` is greedy k-means++ (Arthur & Vassilvitskii 2007, with
    ``2 + log K`` candidates per step, keeping the one that lowers the
    weighted potential most). ``"distinct"`` draws rows of distinct values
    with probability proportional to their weight, without replacement.
    Draws depend on row values, not positions (see :mod:`gaussmix._sampling`).
    """
    groups = data.row_groups()

    def rows_of(chosen) -> np.ndarray:
        return _rows(data, groups.representative[np.asarray(chosen, dtype=np.intp)])

    if method == "distinct":
        chosen = list(groups.draw_distinct(groups.weight, n_clusters, new_stream(rng)))
        while len(chosen) < n_clusters:  # fewer distinct rows than clusters: repeat some
            chosen.append(groups.draw(groups.weight, new_stream(rng)))
        return rows_of(chosen)

    weights = data.weights_numpy()
    centers = np.empty((n_clusters, data.n_features))
    centers[0] = rows_of([groups.draw(groups.weight, new_stream(rng))])[0]
    closest = _distances_to(data, centers[:1])[:, 0]
    n_trials = 2 + int(math.log(n_clusters))
    for c in range(1, n_clusters):
        scores = groups.weight * closest[groups.representative]
        if not np.any(scores > 0):  # every row already coincides with a centre
            scores = groups.weight
        candidates = [groups.draw(scores, new_stream(rng)) for _ in range(n_trials)]
        cand_rows = rows_of(candidates)
        trial = np.minimum(closest[:, None], _distances_to(data, cand_rows))
        best = int(np.argmin(weights @ trial))
        centers[c] = cand_rows[best]
        closest = trial[:, best]
    return centers


def _cluster_sums(data: ChunkedData, labels: np.ndarray, centers: np.ndarray):
    """Weighted counts and weighted sums of ``x - centers[label]`` per cluster."""
    xp = data.xp
    n_clusters = centers.shape[0]
    dev = xp.asarray(centers, dtype=data.dtype)
    counts = np.zeros(n_clusters)
    offsets = np.zeros_like(centers)
    for start, stop, Xc, wc in data.chunks(n_clusters):
        lab = labels[start:stop]
        w64 = np.asarray(xp.to_numpy(wc), dtype=np.float64)
        counts += np.bincount(lab, weights=w64, minlength=n_clusters)
        diff = Xc - xp.take(dev, xp.asarray(lab), axis=0)
        onehot = np.zeros((stop - start, n_clusters))
        onehot[np.arange(stop - start), lab] = w64
        offsets += np.asarray(
            xp.to_numpy(xp.transpose_last(xp.asarray(onehot, dtype=data.dtype)) @ diff), dtype=np.float64
        )
    return counts, offsets


def lloyd(
    data: ChunkedData,
    centers: np.ndarray,
    *,
    max_iter: int = 300,
    tol: float = 1e-4,
    variances: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd iterations from ``centers``; returns final centres and labels.

    Distances are measured in standardised units (each feature divided by
    its standard deviation). Stops when no label changes or when the total
    squared centre shift, in those units, falls below ``tol``. A
    cluster left empty is moved to the (positive-weight) row farthest from
    its centre.
    """
    if variances is None:
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
        counts, offsets = _cluster_sums(data, labels, centers)
        new = centers + offsets / np.where(counts > 0, counts, 1.0)[:, None]
        empty = np.flatnonzero(counts <= 0)
        if empty.size:
            far = np.argsort(-np.where(weights > 0, dist, -1.0), kind="stable")[: empty.size]
            new[empty] = _rows(data, far)
        shift = float(np.sum((new - centers) ** 2 / scale))
        centers = new
        if shift <= threshold:
            break
    return centers, nearest(data, centers)[0]
