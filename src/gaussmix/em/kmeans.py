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
from gaussmix._threads import single_threaded_blas
from gaussmix.em import _kmeans_loop
from gaussmix.em.kernels import label_order
from gaussmix.em.sampling import new_stream
from gaussmix.em.source import RowSource


class _Standardised:
    """Rows shifted by the data mean and divided by each feature's standard deviation."""

    def __init__(self, data: RowSource):
        variances = data.feature_moments()[1]
        self.data = data
        self.scale = np.sqrt(np.where(variances > 0, variances, 1.0))

    def centers(self, centers: np.ndarray) -> Any:
        return self.data.xp.asarray((centers - self.data.shift) / self.scale, dtype=self.data.dtype)


class StandardisedRows:
    """The rows k-means works on, standardised as :class:`_Standardised` does, once, in float64.

    They are few (a sample's at most, see :func:`gaussmix.em.init.subsample_size`),
    so one ``(d, m)`` copy serves every step of seeding and of Lloyd's
    iterations, with one product per step instead of a pass over chunks.
    """

    #: Rows per block of the distances to all centres: ``(block, K)`` temporaries.
    BLOCK = 4096

    def __init__(self, data: RowSource):
        space = _Standardised(data)
        self.data, self.shift, self.scale = data, data.shift, space.scale
        self.weights = data.weights_numpy()
        self.Zt = np.empty((data.n_features, data.n_samples))
        for start, stop, Xc, _ in data.chunks(1):
            rows = np.asarray(data.xp.to_numpy(Xc), dtype=np.float64)
            np.divide((rows - self.shift).T, self.scale[:, None], out=self.Zt[:, start:stop])
        self.norms = np.einsum("ij,ij->j", self.Zt, self.Zt)
        self.weighted = self.Zt * self.weights

    def standardise(self, centers: np.ndarray) -> np.ndarray:
        return (centers - self.shift) / self.scale

    def nearest(self, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the nearest centre for each row, and the squared standardised distance to it.

        The nearest centre has the least ``|c|^2 - 2 z.c`` (one product per
        block of rows, and one pass over it); the distance adds ``|z|^2``.
        Rounding can leave tiny negative values, which do not change which
        centre is nearest and are reported as 0.
        """
        C = self.standardise(centers)
        scaled = -2.0 * C.T  # (d, K)
        center_norms = np.einsum("kd,kd->k", C, C)
        m = self.Zt.shape[1]
        labels, dist = np.empty(m, dtype=np.intp), np.empty(m)
        scores = np.empty((min(m, self.BLOCK), C.shape[0]))
        with single_threaded_blas():  # a product with a short inner dimension: a second thread slowed it down
            for start in range(0, m, self.BLOCK):
                block = slice(start, min(start + self.BLOCK, m))
                part = scores[: block.stop - start]
                np.matmul(self.Zt[:, block].T, scaled, out=part)
                part += center_norms
                best = np.argmin(part, axis=1)
                labels[block] = best
                dist[block] = np.maximum(part[np.arange(part.shape[0]), best] + self.norms[block], 0.0)
        return labels, dist

    def means(self, labels: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
        """Weighted counts and weighted means of the rows of each cluster (the shift where empty)."""
        counts = np.bincount(labels, weights=self.weights, minlength=n_clusters)
        sizes = np.bincount(labels, minlength=n_clusters)
        order = label_order(labels, n_clusters)
        grouped = np.take(self.weighted, order, axis=1)
        starts = np.cumsum(sizes) - sizes
        sums = np.zeros((n_clusters, self.Zt.shape[0]))
        filled = sizes > 0
        sums[filled] = np.add.reduceat(grouped, starts[filled], axis=1).T  # one segment per cluster with rows
        return counts, self.shift + self.scale * sums / np.where(counts > 0, counts, 1.0)[:, None]


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
    C = space.centers(centers)
    # The nearest centre has the least |c|^2 - 2 z.c: one product, rows along the first axis (an argmin along
    # the contiguous one), no transposed copy of the chunk.
    Z = (xp.asarray(Xc, dtype=data.dtype) - xp.asarray(data.shift, dtype=data.dtype)[None, :]) / xp.asarray(
        space.scale, dtype=data.dtype)[None, :]
    scores = Z @ xp.transpose_last(-2.0 * C) + xp.sum(C * C, axis=1)[None, :]
    return np.asarray(xp.to_numpy(xp.argmin(scores, axis=1)))


def _rows(data: RowSource, indices: np.ndarray) -> np.ndarray:
    return np.asarray(data.xp.to_numpy(data.rows(indices)), dtype=np.float64)


def seed_centers(
    data: RowSource,
    n_clusters: int,
    rng: np.random.RandomState,
    method: Literal["k-means++", "distinct"],
    standardised: StandardisedRows | None = None,
) -> np.ndarray:
    """Choose ``n_clusters`` rows of the data as centres.

    ``"k-means++"`` is greedy k-means++ (Arthur & Vassilvitskii 2007, with
    ``2 + log K`` candidates per step, keeping the one that lowers the
    weighted potential most). ``"distinct"`` draws rows of distinct values
    with probability proportional to their weight, without replacement.
    Draws depend on row values, not positions (see :mod:`gaussmix.em.sampling`).
    ``standardised``: the rows of ``data`` standardised, where the caller has them.
    """
    if method == "distinct":
        return _rows(data, distinct_rows(data, n_clusters, rng))
    groups = data.row_groups()

    def rows_of(chosen) -> np.ndarray:
        return _rows(data, groups.representative[np.asarray(chosen, dtype=np.intp)])

    rows = StandardisedRows(data) if standardised is None else standardised
    weights = rows.weights
    centers = np.empty((n_clusters, data.n_features))
    centers[0] = rows_of([groups.draw(groups.weight, new_stream(rng))])[0]
    closest = distances_to(rows.Zt, rows.standardise(centers[:1]))[:, 0]
    n_trials = 2 + int(math.log(n_clusters))
    for c in range(1, n_clusters):
        scores = groups.weight * closest[groups.representative]
        if not np.any(scores > 0):  # every row already coincides with a centre
            scores = groups.weight
        candidates = [groups.draw(scores, new_stream(rng)) for _ in range(n_trials)]
        cand_rows = rows_of(candidates)
        trial = np.minimum(closest[:, None], distances_to(rows.Zt, rows.standardise(cand_rows)))
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


def lloyd(
    data: RowSource,
    centers: np.ndarray,
    *,
    max_iter: int = 300,
    tol: float = 1e-4,
    standardised: StandardisedRows | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd iterations from ``centers`` on the (few) rows of ``data``; returns final centres and labels.

    Distances are measured in standardised units (each feature divided by
    its standard deviation). Stops when no label changes or when the total
    squared centre shift, in those units, falls below ``tol``. A
    cluster left empty is moved to the (positive-weight) row farthest from
    its centre. ``standardised``: the rows of ``data`` standardised, where
    the caller has them.
    """
    rows = StandardisedRows(data) if standardised is None else standardised
    variances = data.feature_moments()[1]
    scale = np.where(variances > 0, variances, 1.0)
    centers = centers.copy()
    previous = None
    for _ in range(max_iter):
        labels, dist = rows.nearest(centers)
        if previous is not None and np.array_equal(labels, previous):
            return centers, labels
        previous = labels
        counts, new = rows.means(labels, centers.shape[0])
        empty = np.flatnonzero(counts <= 0)
        if empty.size:
            far = np.argsort(-np.where(rows.weights > 0, dist, -1.0), kind="stable")[: empty.size]
            new[empty] = _rows(data, far)
        shift = float(np.sum((new - centers) ** 2 / scale))
        centers = new
        if shift <= tol:
            break
    return centers, rows.nearest(centers)[0]
