"""Weighted k-means on the chunked data passes: seeding and Lloyd iterations.

Sample weights enter every step: seeds are drawn with probability
proportional to ``weight * D(x)^2`` (k-means++) or to ``weight`` (random rows),
and centres are weighted means. Draws use inverse-CDF sampling on cumulative
sums, so a row of weight 0 is never chosen and a row of weight 2 is chosen
exactly as often as two copies of it would be.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from gaussmix._data import ChunkedData
from gaussmix._namespace import ArrayNamespace


def squared_distances(xp: ArrayNamespace, X: Any, centers: Any) -> Any:
    """Squared Euclidean distances of rows to centres, shape ``(n, K)``."""
    diff = X[None, :, :] - centers[:, None, :]
    return xp.sum(diff * diff, axis=2).T


def _distances_to(data: ChunkedData, centers: np.ndarray) -> np.ndarray:
    """``(n, K)`` float64 squared distances of every row to ``centers``."""
    xp = data.xp
    dev = xp.asarray(centers, dtype=data.dtype)
    parts = [
        np.asarray(xp.to_numpy(squared_distances(xp, Xc, dev)), dtype=np.float64)
        for _, _, Xc, _ in data.chunks(centers.shape[0])
    ]
    return np.concatenate(parts, axis=0)


def nearest(data: ChunkedData, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre for each row, and the squared distance to it."""
    xp = data.xp
    dev = xp.asarray(centers, dtype=data.dtype)
    labels, dist = [], []
    for _, _, Xc, _ in data.chunks(centers.shape[0]):
        d2 = np.asarray(xp.to_numpy(squared_distances(xp, Xc, dev)), dtype=np.float64)
        best = np.argmin(d2, axis=1)
        labels.append(best)
        dist.append(d2[np.arange(d2.shape[0]), best])
    return np.concatenate(labels), np.concatenate(dist)


def _rows(data: ChunkedData, indices: np.ndarray) -> np.ndarray:
    xp = data.xp
    return np.asarray(xp.to_numpy(xp.take(data.X, xp.asarray(indices), axis=0)), dtype=np.float64)


def _draw(cumulative: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: the first row whose cumulative score exceeds each value."""
    return np.minimum(np.searchsorted(cumulative, draws, side="right"), cumulative.size - 1)


def seed_centers(
    data: ChunkedData,
    n_clusters: int,
    rng: np.random.RandomState,
    method: Literal["k-means++", "distinct"],
) -> np.ndarray:
    """Choose ``n_clusters`` rows of the data as centres.

    ``"k-means++"`` is greedy k-means++ (Arthur & Vassilvitskii 2007, with
    ``2 + log K`` candidates per step, keeping the one that lowers the
    potential most). ``"distinct"`` draws rows with probability proportional
    to their weight, among rows not equal to a centre already chosen.
    """
    weights = np.asarray(data.xp.to_numpy(data.weights), dtype=np.float64)
    weight_cdf = np.cumsum(weights)
    first = _draw(weight_cdf, rng.uniform(size=1) * weight_cdf[-1])
    centers = np.empty((n_clusters, data.n_features))
    centers[0] = _rows(data, first)[0]
    closest = _distances_to(data, centers[:1])[:, 0]
    n_trials = 2 + int(math.log(n_clusters)) if method == "k-means++" else 1

    for c in range(1, n_clusters):
        score = weights * closest if method == "k-means++" else weights * (closest > 0)
        cdf = np.cumsum(score)
        if cdf[-1] > 0:
            candidates = _draw(cdf, rng.uniform(size=n_trials) * cdf[-1])
        else:  # fewer distinct rows than clusters: repeat rows, still by weight
            candidates = _draw(weight_cdf, rng.uniform(size=n_trials) * weight_cdf[-1])
        cand_rows = _rows(data, candidates)
        if n_trials == 1:
            best = 0
            new_closest = np.minimum(closest, _distances_to(data, cand_rows)[:, 0])
        else:
            trial = np.minimum(closest[:, None], _distances_to(data, cand_rows))
            best = int(np.argmin(weights @ trial))
            new_closest = trial[:, best]
        centers[c] = cand_rows[best]
        closest = new_closest
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

    Stops when no label changes or when the total squared centre shift falls
    below ``tol`` times the mean feature variance. A cluster left empty is
    moved to the (positive-weight) row farthest from its centre.
    """
    if variances is None:
        variances = data.feature_moments()[1]
    threshold = tol * float(np.mean(variances))
    weights = np.asarray(data.xp.to_numpy(data.weights), dtype=np.float64)
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
        shift = float(np.sum((new - centers) ** 2))
        centers = new
        if shift <= threshold:
            break
    return centers, nearest(data, centers)[0]
