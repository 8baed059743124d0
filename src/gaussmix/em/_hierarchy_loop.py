"""The hierarchy's merges as one loop, for numba to compile (see :mod:`gaussmix._compiled`).

The same algorithm, criterion and rule for equal costs as
:func:`gaussmix.em.hierarchical.agglomerate`'s NumPy path, step for step:
that path spends its time in the calls of a few dozen small array
operations per merge, which this loop does in place. Everything here is
in the subset of Python numba compiles; nothing imports numba.
"""

from __future__ import annotations

import math

import numpy as np


def _determinant(matrix: np.ndarray, d: int) -> float:
    """The determinant of a small matrix, 0 when it is not positive (``matrix`` is overwritten).

    Closed forms for ``d <= 2``; Gaussian elimination with partial pivoting above.
    """
    if d == 1:
        det = matrix[0, 0]
    elif d == 2:
        det = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
    else:
        det = 1.0
        for j in range(d):
            pivot = j
            largest = abs(matrix[j, j])
            for i in range(j + 1, d):
                if abs(matrix[i, j]) > largest:
                    largest = abs(matrix[i, j])
                    pivot = i
            if largest == 0.0:
                return 0.0
            if pivot != j:
                for c in range(d):
                    matrix[j, c], matrix[pivot, c] = matrix[pivot, c], matrix[j, c]
                det = -det
            det *= matrix[j, j]
            for i in range(j + 1, d):
                factor = matrix[i, j] / matrix[j, j]
                for c in range(j + 1, d):
                    matrix[i, c] -= factor * matrix[j, c]
    return det if det > 0.0 else 0.0


def _term(weight: float, trace: float, scatter: np.ndarray, d: int, alpha: float, beta: float,
          work: np.ndarray) -> float:
    """mclust's VVV hierarchical term of one cluster (see the NumPy path's ``_terms``)."""
    value = beta * (trace + alpha) / weight
    if weight > d:
        for i in range(d):
            for j in range(d):
                work[i, j] = scatter[i, j] / weight
        value = value + _determinant(work, d)
    return weight * math.log(value)


def _merge_costs(a: int, start: int, cost, alive, weight, mean, scatter, traces, term, alpha: float,
                 beta: float, work: np.ndarray) -> None:
    """What merging cluster ``a`` with each live cluster from ``start`` on costs, into ``cost`` (both ways).

    The determinant of a merged covariance is written out for one and two
    features, where the loop spends most of its time.
    """
    k, d = mean.shape
    for o in range(start, k):
        if o == a or not alive[o]:
            continue
        w = weight[a] + weight[o]
        factor = weight[a] * weight[o] / w
        squared = 0.0
        for j in range(d):
            difference = mean[o, j] - mean[a, j]
            squared += difference * difference
        value = beta * (traces[a] + traces[o] + factor * squared + alpha) / w
        if w > d:
            if d == 1:
                det = (scatter[a, 0, 0] + scatter[o, 0, 0] + factor * squared) / w
            elif d == 2:
                x = mean[o, 0] - mean[a, 0]
                y = mean[o, 1] - mean[a, 1]
                xx = (scatter[a, 0, 0] + scatter[o, 0, 0] + factor * (x * x)) / w
                yy = (scatter[a, 1, 1] + scatter[o, 1, 1] + factor * (y * y)) / w
                xy = (scatter[a, 0, 1] + scatter[o, 0, 1] + factor * (x * y)) / w
                yx = (scatter[a, 1, 0] + scatter[o, 1, 0] + factor * (y * x)) / w
                det = xx * yy - xy * yx
            else:
                det = _merged_determinant(a, o, w, factor, mean, scatter, work)
            if det > 0.0:
                value = value + det
        cost[a, o] = cost[o, a] = w * math.log(value) - term[a] - term[o]


def _merged_determinant(a: int, o: int, w: float, factor: float, mean, scatter, work: np.ndarray) -> float:
    """``det`` of the covariance of clusters ``a`` and ``o`` merged, for three or more features."""
    d = mean.shape[1]
    for i in range(d):
        for j in range(d):
            work[i, j] = (scatter[a, i, j] + scatter[o, i, j]
                          + factor * ((mean[o, i] - mean[a, i]) * (mean[o, j] - mean[a, j]))) / w
    return _determinant(work, d)


def release_slot(slot: np.ndarray, at_slot: np.ndarray, b: int, last: int) -> None:
    """Cluster ``b`` merged away: the cluster in the ``last`` slot moves into its slot (mclust's scan order).

    Shared by both paths of the hierarchy, whose rule for equal costs depends on these slots.
    """
    if slot[b] != last:
        moved = at_slot[last]
        at_slot[slot[b]] = moved
        slot[moved] = slot[b]


def _argmin_row(cost: np.ndarray, alive: np.ndarray, row: int) -> int:
    """The first live column of the least cost in ``row`` (0 when every cost is infinite)."""
    lowest = np.inf
    at = 0
    for c in range(cost.shape[1]):
        if alive[c] and cost[row, c] < lowest:
            lowest = cost[row, c]
            at = c
    return at


def merge_loop(weight: np.ndarray, mean: np.ndarray, name: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """The merges ``(k - 1, 2)`` of ``k`` starting clusters (one per row), as pairs of names.

    ``weight`` (k,), ``mean`` (k, d) and ``name`` (k,) describe the starting
    clusters and are updated in place.
    """
    k, d = mean.shape
    scatter = np.zeros((k, d, d))
    traces = np.zeros(k)
    delta = np.empty(d)
    work = np.empty((d, d))
    term = np.empty(k)
    for i in range(k):
        term[i] = _term(weight[i], 0.0, scatter[i], d, alpha, beta, work)
    cost = np.full((k, k), np.inf)
    alive = np.ones(k, dtype=np.bool_)
    for a in range(k):
        _merge_costs(a, a + 1, cost, alive, weight, mean, scatter, traces, term, alpha, beta, work)
    best = np.empty(k, dtype=np.intp)
    best_cost = np.empty(k)
    for i in range(k):
        best[i] = _argmin_row(cost, alive, i)
        best_cost[i] = cost[i, best[i]]
    slot = np.arange(k)
    at_slot = np.arange(k)
    merges = np.empty((max(k - 1, 0), 2), dtype=np.intp)
    for step in range(k - 1):
        # The cheapest merge; equal costs go to the pair that comes last in slot order.
        lowest = np.inf
        for i in range(k):
            if alive[i] and best_cost[i] < lowest:
                lowest = best_cost[i]
        a = b = -1
        for i in range(k):
            if alive[i] and best_cost[i] == lowest:
                for j in range(k):
                    if alive[j] and cost[i, j] == lowest:
                        first, second = (i, j) if slot[i] < slot[j] else (j, i)
                        if a < 0 or slot[second] > slot[b] or (slot[second] == slot[b] and slot[first] > slot[a]):
                            a, b = first, second
        merges[step, 0] = min(name[a], name[b])
        merges[step, 1] = max(name[a], name[b])
        name[a] = merges[step, 0]
        release_slot(slot, at_slot, b, k - 1 - step)
        w = weight[a] + weight[b]
        factor = weight[a] * weight[b] / w
        for i in range(d):
            delta[i] = mean[b, i] - mean[a, i]
        for i in range(d):
            for j in range(d):
                scatter[a, i, j] = scatter[a, i, j] + scatter[b, i, j] + factor * (delta[i] * delta[j])
        for i in range(d):
            mean[a, i] = (weight[a] * mean[a, i] + weight[b] * mean[b, i]) / w
        weight[a] = w
        trace = 0.0
        for i in range(d):
            trace += scatter[a, i, i]
        traces[a] = trace
        term[a] = _term(w, trace, scatter[a], d, alpha, beta, work)
        alive[b] = False  # costs of dead clusters are left as they are and never read
        _merge_costs(a, 0, cost, alive, weight, mean, scatter, traces, term, alpha, beta, work)
        # Rows whose best partner was merged away, or whose cost to the new cluster rose, scan again;
        # rows that now pair best with the new cluster pair with it (their other costs have not
        # changed, so a cost below every one of them is the row's least, whatever the order).
        for i in range(k):
            if not alive[i]:
                continue
            if i == a or best[i] == b or (best[i] == a and not cost[a, i] < best_cost[i]):
                best[i] = _argmin_row(cost, alive, i)
                best_cost[i] = cost[i, best[i]]
            elif cost[a, i] < best_cost[i]:
                best[i] = a
                best_cost[i] = cost[a, i]
        best_cost[b] = np.inf
    return merges
