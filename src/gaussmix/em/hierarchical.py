"""Model-based agglomerative hierarchical clustering: mclust's default start (``init_params="hc"``).

Every row starts as its own cluster and the two
clusters whose merge least decreases the classification likelihood of an
unconstrained Gaussian model are merged, until one cluster is left (Fraley
1998; Fraley & Raftery's ``hc``, model "VVV"). One hierarchy gives the
starting partition for every number of components.

The criterion is mclust's regularised one. A cluster of weight ``w`` (its
row count for unit weights) with scatter matrix ``W`` scores

    term = w log( det(W / w) [w > d] + beta (trace(W) + alpha) / w ),

which stays finite for clusters too small to have a non-singular scatter
(the determinant is left out while ``w <= d``); ``alpha`` is the data's
mean variance per feature (times mclust's ``alpha = 1``) and ``beta = 1``.
A merge costs ``term(A u B) - term(A) - term(B)``, and the cheapest merge is
taken at each step. Merged scatters follow from the clusters' weights,
means and scatters (``W_A + W_B + w_A w_B / w (m_A - m_B)(m_A - m_B)'``), so
each step costs one batch of ``d x d`` determinants against the other
clusters. With numba installed the merges run as one compiled loop
(:mod:`gaussmix.em._hierarchy_loop`, the same steps); without it, as
array operations over the clusters at each step.

The rows are first transformed as mclust's default ``hcUse = "SVD"`` does:
standardised (centred, divided by each feature's standard deviation), then
rotated onto their singular vectors and divided by the square roots of the
singular values. Sample weights count as repeated rows throughout.
"""

from __future__ import annotations

import numpy as np

from gaussmix._compiled import compiled
from gaussmix.em._hierarchy_loop import merge_loop, release_slot

#: Rows the hierarchy is built on at most (mclust's default subset size); larger data use a weighted sample.
HC_MAX_ROWS = 2000


def svd_transform(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The rows as mclust's ``hcUse = "SVD"`` transforms them (weights count as repeated rows).

    Constant features (no spread) are left out.
    """
    total = float(np.sum(weights))
    mean = weights @ X / total
    centred = X - mean
    variance = weights @ (centred * centred) / max(total - 1.0, np.finfo(float).tiny)
    keep = variance > 0
    scaled = centred[:, keep] / np.sqrt(variance[keep])
    _, singular, vt = np.linalg.svd(np.sqrt(weights)[:, None] * scaled, full_matrices=False)
    rank = int(np.sum(singular > singular[0] * max(scaled.shape) * np.finfo(float).eps)) if singular.size else 0
    return (scaled @ vt[:rank].T) / np.sqrt(singular[:rank])


def _terms(weight: np.ndarray, trace: np.ndarray, det: np.ndarray | None, alpha: float, beta: float
           ) -> np.ndarray:
    """mclust's VVV hierarchical term of clusters of ``weight`` (k,) with scatter traces ``trace`` (k,).

    ``det`` (k,) are the determinants of the scatters divided by their weights, used only for
    clusters heavier than ``d``; None when there are none.
    """
    value = beta * (trace + alpha) / weight
    if det is not None:
        value = value + det
    return weight * np.log(value)


def _determinants(weight: np.ndarray, scatter: np.ndarray) -> np.ndarray | None:
    """``det(scatter / weight)`` for clusters heavier than ``d`` (0 for the others; 0 when not positive)."""
    d = scatter.shape[-1]
    big = weight > d
    if not np.any(big):
        return None
    out = np.zeros(weight.shape)
    covariance = scatter[big] / weight[big, None, None]
    if d == 1:
        det = covariance[:, 0, 0]
    elif d == 2:
        det = covariance[:, 0, 0] * covariance[:, 1, 1] - covariance[:, 0, 1] * covariance[:, 1, 0]
    else:
        sign, logdet = np.linalg.slogdet(covariance)
        det = np.where(sign > 0, np.exp(logdet), 0.0)
    out[big] = np.maximum(det, 0.0)
    return out


def _scatter_terms(weight: np.ndarray, scatter: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return _terms(weight, np.trace(scatter, axis1=-2, axis2=-1), _determinants(weight, scatter), alpha, beta)


def agglomerate(
    Z: np.ndarray, weights: np.ndarray, alpha: float = 1.0, beta: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The hierarchy: its merges, cheapest first, and each row's starting cluster.

    Returns ``merges`` of shape ``(n_clusters - 1, 2)``, pairs of cluster
    names, and ``start`` of shape ``(n,)``, the name of each row's starting
    cluster (-1 for rows of weight 0, which take no part). A cluster is
    named by its first row (the smallest row index in it); merging
    ``(a, b)``, ``a < b``, keeps the name ``a``, as mclust's ``hc`` reports
    merges. Every row starts as its own cluster (identical rows, whose
    merge costs least, merge first, as in mclust).
    """
    n, d = Z.shape
    rows = np.flatnonzero(weights > 0)
    k = rows.size
    name = rows.copy()
    start = np.full(n, -1, dtype=np.intp)
    start[rows] = rows
    weight = weights[rows].astype(np.float64)
    mean = Z[rows].astype(np.float64)
    total = float(np.sum(weights))
    spread = float(np.sum(weights @ (Z - weights @ Z / total) ** 2)) / (total * d) if d else 0.0  # no varying feature
    alpha = max(alpha * spread, np.finfo(float).eps)
    loop = compiled(merge_loop) if k > 1 else None
    if loop is not None:
        return loop(weight, mean, name, alpha, beta), start
    scatter = np.zeros((k, d, d))  # a row, of any weight, has no scatter
    term = _scatter_terms(weight, scatter, alpha, beta)
    traces = np.zeros(k)

    def costs(a: int, others: np.ndarray) -> np.ndarray:
        w = weight[a] + weight[others]
        delta = mean[others] - mean[a]
        factor = weight[a] * weight[others] / w
        trace = traces[a] + traces[others] + factor * np.einsum("ij,ij->i", delta, delta)
        det = None
        if np.any(w > d):
            merged = scatter[a] + scatter[others] + factor[:, None, None] * (delta[:, :, None] * delta[:, None, :])
            det = _determinants(w, merged)
        return _terms(w, trace, det, alpha, beta) - term[a] - term[others]

    if np.max(weight, initial=0.0) * 2 <= d:
        # Pairs of rows too light for a determinant: the cost needs only their squared distances.
        # Differences taken before squaring: identical rows are at distance exactly 0 (their equal
        # costs are ties that mclust's rule breaks).
        squared = np.empty((k, k))
        for begin in range(0, k, 256):
            block = mean[begin:begin + 256, None, :] - mean[None, :, :]
            squared[begin:begin + 256] = np.einsum("ijk,ijk->ij", block, block)
        w = weight[:, None] + weight[None, :]
        merged = _terms(w, (weight[:, None] * weight[None, :] / w) * squared, None, alpha, beta)
        cost = merged - term[:, None] - term[None, :]
        np.fill_diagonal(cost, np.inf)
    else:
        cost = np.full((k, k), np.inf)
        for a in range(k - 1):
            cost[a, a + 1:] = costs(a, np.arange(a + 1, k))
        cost = np.minimum(cost, cost.T)
    alive = np.ones(k, bool)
    best = np.argmin(cost, axis=1)
    best_cost = cost[np.arange(k), best]
    # mclust's slots: cluster j's position in its scan; a merge keeps the first slot and moves the
    # last cluster into the second. Equal costs go to the pair that comes last in the scan.
    slot = np.arange(k)
    at_slot = np.arange(k)
    merges = np.empty((max(k - 1, 0), 2), dtype=np.intp)
    for step in range(k - 1):
        a, b = _cheapest(cost, best_cost, alive, slot)
        merges[step] = sorted((name[a], name[b]))
        name[a] = min(name[a], name[b])
        release_slot(slot, at_slot, b, k - 1 - step)
        w = weight[a] + weight[b]
        delta = mean[b] - mean[a]
        scatter[a] = scatter[a] + scatter[b] + (weight[a] * weight[b] / w) * np.outer(delta, delta)
        mean[a] = (weight[a] * mean[a] + weight[b] * mean[b]) / w
        weight[a] = w
        traces[a] = np.trace(scatter[a])
        term[a] = _terms(weight[a:a + 1], traces[a:a + 1], _determinants(weight[a:a + 1], scatter[a:a + 1]),
                         alpha, beta)[0]
        alive[b] = False
        cost[b, :] = cost[:, b] = np.inf
        others = np.flatnonzero(alive)
        others = others[others != a]
        cost[a, :] = np.inf
        if others.size:
            cost[a, others] = cost[others, a] = costs(a, others)
        # Rows whose best partner was merged away, or that now pair best with the new cluster.
        stale = alive & ((best == a) | (best == b) | (cost[:, a] < best_cost))
        stale[a] = True
        rows = np.flatnonzero(stale)
        best[rows] = np.argmin(cost[rows], axis=1)
        best_cost[rows] = cost[rows, best[rows]]
        best_cost[b] = np.inf
    return merges, start


def _cheapest(cost: np.ndarray, best_cost: np.ndarray, alive: np.ndarray, slot: np.ndarray) -> tuple[int, int]:
    """The clusters ``(a, b)`` to merge, ``slot[a] < slot[b]``: the least cost, ties to the last pair in slot order."""
    lowest = np.min(np.where(alive, best_cost, np.inf))
    rows = np.flatnonzero(alive & (best_cost == lowest))
    at, partners = np.nonzero(cost[rows] == lowest)
    pair = np.stack([rows[at], partners])
    pair = np.take_along_axis(pair, np.argsort(slot[pair], axis=0, kind="stable"), axis=0)  # (first, second) by slot
    chosen = np.lexsort((slot[pair[0]], slot[pair[1]]))[-1]  # the largest (slot of second, slot of first)
    return int(pair[0, chosen]), int(pair[1, chosen])


def partition(merges: np.ndarray, start: np.ndarray, n_clusters: int) -> np.ndarray:
    """Labels ``0 .. n_clusters - 1`` of the rows, cutting the hierarchy at ``n_clusters`` clusters.

    Clusters are numbered in the order of their first row. Rows of weight 0
    (``start`` -1) get label 0: they count for nothing in the statistics.
    """
    n = start.shape[0]
    rows = np.flatnonzero(start >= 0)
    parent = np.arange(n)
    parent[rows] = start[rows]
    n_initial = merges.shape[0] + 1
    for a, b in merges[: max(n_initial - n_clusters, 0)]:
        parent[b] = a

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    roots = np.array([root(int(i)) for i in rows])
    labels = np.zeros(n, dtype=np.intp)
    _, first = np.unique(roots, return_index=True)
    numbering = {int(roots[f]): position for position, f in enumerate(np.sort(first))}
    labels[rows] = [numbering[int(r)] for r in roots]
    return labels
