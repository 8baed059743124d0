"""Moves that leave a local optimum by moving one component elsewhere: split-and-merge, random swaps.

A fit that EM has converged can often be improved by taking a component
from where it is least needed (one of two that overlap, or one with little
weight) and using it to split a component that covers a wide region (after
Ueda, Nakano, Ghahramani & Hinton 2000, "SMEM algorithm for mixture
models"). A move is a new start: the converged fit's responsibilities with
component ``drop``'s rows shared among the others, and component ``split``'s
rows cut in two by the hyperplane through its mean across its widest
direction (the second half takes ``drop``'s place). Its statistics and one
M-step give the parameters EM continues from.

A random swap (after Zhao, Hautamaki, Karkkainen & Franti 2012, "Random
swap EM algorithm for Gaussian mixture models") moves a component chosen at
random to a row drawn at random: its mean becomes the row, its weight
``1/K`` (before the weights are normalised again), and its covariance a
fraction of that of the component the row is most likely under, so that EM
can settle it on whatever structure lies there (a shared covariance stays
as it is). Where split-and-merge moves go where the fit looks worst, swaps
reach optima no rule would point to, such as a narrow component on one arm
of the data.

A tight-group swap moves a component onto a group of a few rows lying
close together (a row and its nearest neighbours), with the group's own
mean and covariance: where covariances are full matrices and the data few,
the highest optima often have components on a handful of rows spanning
almost no volume, which random swaps rarely hit. The groups are ranked by
how much the likelihood would gain from a component fitted to them, less
what removing the moved component costs.

Everything here works on summed statistics, chunk-wise responsibilities or
parameters, so every engine can make the moves.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gaussmix._errors import FitError
from gaussmix.covariance._layout import Layout
from gaussmix.covariance._linalg import SingularCovarianceError
from gaussmix.covariance._registry import UNCONSTRAINED_STRUCTURE, get_structure
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.batch import fit_part, m_steps
from gaussmix.em.kernels import RESPONSIBILITIES, TermsResponsibilities
from gaussmix.em.params import MixtureParams, kernel_terms
from gaussmix.em.source import DataSource

__all__ = ["GroupMove", "GroupMoves", "Move", "SplitResponsibilities", "TightGroups", "candidate_moves",
           "component_covariances", "group_moves", "grouped", "move_starts", "swapped", "swapped_fits",
           "tight_groups"]

#: A move: (component to remove, component to split).
Move = tuple[int, int]
#: A tight-group swap: (which size of group, the row whose group it is, the component moved there).
GroupMove = tuple[int, int, int]
#: How much a split across the next-widest direction counts against the next removal or split.
DIRECTION_RANK = 2


class SplitResponsibilities(TermsResponsibilities):
    """The responsibilities of moves (see the module docstring), computed chunk by chunk.

    ``moves`` is a list of ``(move, direction)``; each move's ``K``
    responsibilities follow the previous one's (``len(moves) K`` columns),
    all from one evaluation of the fit's log-probabilities. With
    ``moves=None`` these are the fit's own responsibilities.
    """

    def __init__(self, structure: CovarianceStructure, params: MixtureParams,
                 moves: list[tuple[Move, np.ndarray]] | None = None):
        super().__init__(structure.layout, kernel_terms(structure, params, params.means.T @ params.weights))
        self.moves, self.means = moves, params.means

    def __call__(self, data: Any, start: int, stop: int, Xc: Any) -> Any:
        xp, dtype = data.xp, data.dtype
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_prob = self.log_prob(data, Xc)
            if self.moves is None:
                return RESPONSIBILITIES(xp, log_prob)
            columns, without = [], {}
            for (drop, split), direction in self.moves:
                if drop not in without:  # its rows go to the others, in proportion to their responsibilities
                    removed = np.zeros(self.means.shape[0])
                    removed[drop] = -np.inf
                    without[drop] = RESPONSIBILITIES(xp, log_prob + xp.asarray(removed, dtype=dtype)[None, :])
                resp = without[drop]
                centre = xp.asarray(self.means[split], dtype=dtype)
                side = (Xc - centre[None, :]) @ xp.asarray(direction, dtype=dtype)
                upper = xp.where(side > 0, 1.0, 0.0)
                own = [resp[:, k] for k in range(resp.shape[1])]
                own[drop] = own[split] * upper
                own[split] = own[split] * (1.0 - upper)
                columns.extend(own)
        return xp.stack(columns, axis=1)


def move_starts(source: DataSource, model: Any, params: MixtureParams,
                moves: list[tuple[Move, np.ndarray]]) -> list[MixtureParams | None]:
    """The parameters EM continues from after each of ``moves`` of the fit ``params``: the statistics of the
    move's responsibilities and one M-step of ``model`` (None where that fails).

    The statistics of every move come from one pass over the rows: each
    move's components are its own, and a shared covariance pools its own
    components' second moments (of the layout's per-component form); a
    shared layout without that form takes one pass per move.
    """
    structure, n_components = model.structure, params.n_components
    layout = structure.layout
    if not moves:
        return []
    if layout.per_component or layout.expanded is not None:
        each = structure if layout.per_component else replace(structure, layout=layout.expanded)
        together = source.statistics(each, SplitResponsibilities(structure, params, moves), len(moves) * n_components)
        # every move's M-step as one; a move whose M-step fails starts nowhere
        new, made, _, _ = m_steps(model, together, None, list(range(len(moves))), n_components)
        starts: list[MixtureParams | None] = [None] * len(moves)
        for i, move in enumerate(made):
            starts[move] = fit_part(new, i, n_components, layout)
        return starts
    starts = []
    for move in moves:  # a shared layout without a per-component form: one pass per move
        stats = source.statistics(structure, SplitResponsibilities(structure, params, [move]), n_components)
        try:
            starts.append(model.update(stats, None)[0])
        except (FitError, SingularCovarianceError):
            starts.append(None)
    return starts


def component_covariances(
    source: DataSource, structure: CovarianceStructure, params: MixtureParams, floor: np.ndarray
) -> np.ndarray:
    """Each component's own full covariance under the fit's responsibilities, ``(K, d, d)`` (one pass).

    ``floor`` (per feature) is added to the diagonal, so that components of
    few rows still have a volume and a widest direction.
    """
    full = get_structure(UNCONSTRAINED_STRUCTURE)
    stats = source.statistics(full, SplitResponsibilities(structure, params), params.n_components)
    scatter = full.layout.scatter(stats.counts, stats.first, stats.second)
    covariances = scatter / np.maximum(stats.counts, np.finfo(float).tiny)[:, None, None]
    return covariances + np.diag(floor)[None, :, :]


def _log_overlaps(means: np.ndarray, covariances: np.ndarray, log_dets: np.ndarray, first: np.ndarray,
                  second: np.ndarray) -> np.ndarray:
    """Minus the Bhattacharyya distance between components ``first[p]`` and ``second[p]`` for each pair ``p``
    (0 when identical; -inf where their average covariance has no Cholesky factor)."""
    average = 0.5 * (covariances[first] + covariances[second])
    diff = means[first] - means[second]
    try:  # all at once; one by one only when some average has no factor
        chol = np.linalg.cholesky(average)
        factored = np.ones(len(first), dtype=bool)
    except np.linalg.LinAlgError:
        chol = np.stack([np.eye(average.shape[-1])] * len(first))
        factored = np.zeros(len(first), dtype=bool)
        for p, matrix in enumerate(average):
            try:
                chol[p] = np.linalg.cholesky(matrix)
                factored[p] = True
            except np.linalg.LinAlgError:
                pass
    z = np.linalg.solve(chol, diff[:, :, None])[:, :, 0]
    log_det = 2 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    values = -(0.125 * np.sum(z * z, axis=1) + 0.5 * (log_det - 0.5 * (log_dets[first] + log_dets[second])))
    return np.where(factored, values, -np.inf)


def _settled(values):
    """``values`` rounded to 9 significant digits (infinities kept)."""
    array = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        digits = np.where(np.isfinite(array) & (array != 0),
                          8 - np.floor(np.log10(np.abs(np.where(array == 0, 1.0, array)))), 0)
    rounded = np.where(np.isfinite(array), np.round(array * 10.0 ** digits) / 10.0 ** digits, array)
    return rounded if rounded.ndim else float(rounded)


def _signed(vectors: np.ndarray) -> np.ndarray:
    """Eigenvectors (columns) with the sign that makes each one's largest entry positive."""
    largest = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[largest, np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs)


def candidate_moves(params: MixtureParams, covariances: np.ndarray, n_moves: int,
                    collapsed: tuple[int, ...] = ()) -> list[tuple[Move, np.ndarray]]:
    """The ``n_moves`` most promising moves, with the direction each split cuts across.

    ``covariances`` are the components' own full covariances
    (:func:`component_covariances`). Components to remove, in order: one with
    no weight, then the ``collapsed`` ones, then the lighter of each pair by
    decreasing overlap (Bhattacharyya), then the lightest. Components to
    split (never a collapsed one): by decreasing ``weight * det^(1/2d)`` of
    their own covariance (weight times radius). Each split may cut across
    any of the component's principal directions, widest first. Moves are ordered by the rank of the removal
    plus the rank of the split plus DIRECTION_RANK times the rank of the
    direction.
    """
    # Scores are compared at 9 significant digits, and each direction's sign is fixed, so that
    # rounding (another BLAS, weights in place of repeated rows) does not reorder equal moves.
    weights, means = _settled(params.weights), params.means
    k = weights.shape[0]
    if k < 2:
        return []
    log_dets = np.linalg.slogdet(covariances)[1]
    removals: list[int] = [int(j) for j in np.flatnonzero(weights <= 0)]
    removals += [int(j) for j in collapsed if int(j) not in removals]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k) if weights[i] > 0 and weights[j] > 0]
    overlaps = []
    if pairs:
        first, second = (np.array(side) for side in zip(*pairs))
        values = _settled(_log_overlaps(means, covariances, log_dets, first, second))
        overlaps = [(float(value), i, j) for value, (i, j) in zip(np.atleast_1d(values), pairs)]
    for _, i, j in sorted(overlaps, key=lambda item: (-item[0], item[1], item[2])):
        lighter = j if weights[j] <= weights[i] else i
        if lighter not in removals:
            removals.append(lighter)
    for j in np.argsort(weights, kind="stable"):
        if int(j) not in removals:
            removals.append(int(j))
    d = covariances.shape[-1]
    with np.errstate(divide="ignore"):
        spread_score = _settled(np.where(weights > 0, np.log(weights) + log_dets / (2 * d), -np.inf))
    splits = [int(j) for j in np.argsort(-spread_score, kind="stable") if weights[j] > 0 and int(j) not in collapsed]
    vectors = np.linalg.eigh(covariances[splits])[1] if splits else []
    directions = {split: _signed(vectors[i][:, ::-1]) for i, split in enumerate(splits)}
    ranked = sorted(
        (a + b + DIRECTION_RANK * c, a, b, c, drop, split)
        for a, drop in enumerate(removals) for b, split in enumerate(splits) if drop != split
        for c in range(d)
    )
    moves: list[tuple[Move, np.ndarray]] = []
    for *_, c, drop, split in ranked[:n_moves]:
        moves.append(((drop, split), directions[split][:, c]))
    return moves


def swapped(layout: Layout, params: MixtureParams, component: int, row: np.ndarray, owner: int,
            shrink: float) -> MixtureParams:
    """``params`` with ``component`` moved to ``row`` (a random swap, see the module docstring).

    ``owner`` is the component ``row`` is most likely under; with a
    covariance per component, the moved one gets ``shrink`` times its
    covariance.
    """
    n_components = params.n_components
    weights = params.weights.copy()
    weights[component] = 1.0 / n_components
    weights /= np.sum(weights)
    means = params.means.copy()
    means[component] = row
    covariances, precisions_cholesky = params.covariances, params.precisions_cholesky
    if layout.per_component:
        covariances = covariances.copy()
        covariances[component] = shrink * params.covariances[owner]
        precisions_cholesky = precisions_cholesky.copy()
        precisions_cholesky[component] = params.precisions_cholesky[owner] / np.sqrt(shrink)
    return MixtureParams(weights, means, covariances, precisions_cholesky)


def swapped_fits(layout: Layout, params: MixtureParams, components: np.ndarray, rows: np.ndarray,
                 owners: np.ndarray, shrink: float) -> MixtureParams:
    """The fits :func:`swapped` makes of ``params`` for each of ``components`` in turn (moved to the row of
    ``rows`` at the same position, whose component is the one of ``owners`` there), stacked as
    :func:`~gaussmix.em.batch.stack_fits` stacks fits: made at once, with the same values."""
    count, n_components = len(components), params.n_components
    moved = np.arange(count) * n_components + components  # the moved components' places in the stack

    def copies(values: np.ndarray) -> np.ndarray:  # ``count`` copies of ``values``, one after another
        out = np.empty((count,) + values.shape)
        out[...] = values
        return out

    weights = copies(params.weights)
    weights.reshape(-1)[moved] = 1.0 / n_components
    weights /= np.sum(weights, axis=1, keepdims=True)
    means = copies(params.means).reshape(-1, params.means.shape[1])
    means[moved] = rows
    covariances, precisions_cholesky = copies(params.covariances), copies(params.precisions_cholesky)
    if layout.per_component:  # else each fit keeps the shared covariance
        covariances = covariances.reshape((-1,) + params.covariances.shape[1:])
        covariances[moved] = shrink * params.covariances[owners]
        precisions_cholesky = precisions_cholesky.reshape(covariances.shape)
        precisions_cholesky[moved] = params.precisions_cholesky[owners] / np.sqrt(shrink)
    return MixtureParams(weights.reshape(-1), means, covariances, precisions_cholesky)


#: Sizes of tight groups: rows beyond the d + 1 that span a full covariance (each row has a group of each size).
TIGHT_GROUP_EXTRA = (1, 3)
#: Rows compared at a time when finding each row's nearest neighbours (memory: this many times n times d).
_NEIGHBOUR_BLOCK = 128


@dataclass(frozen=True)
class TightGroups:
    """Each row's tight group: the row and its nearest neighbours, with the group's own Gaussian.

    ``members[i]`` are the rows of row ``i``'s group (``i`` first); ``means``
    and ``covariances`` (full, with the floor on their diagonal) the group's
    weighted moments, ``precisions_cholesky`` their factors; ``own`` the
    group's log-likelihood under that Gaussian with weight ``share`` (its
    share of the total weight; -inf where the covariance has no factor).
    """

    rows: np.ndarray
    weights: np.ndarray
    members: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    share: np.ndarray
    own: np.ndarray


def tight_groups(X: np.ndarray, weights: np.ndarray, scale: np.ndarray, floor: np.ndarray) -> list[TightGroups]:
    """The tight groups of every row of ``X``, one :class:`TightGroups` per size ``d + 1 + extra`` of
    TIGHT_GROUP_EXTRA (none of a size that is more than half the rows). Neighbours are nearest with each
    feature divided by ``sqrt(scale)``; ``floor`` (per feature) is added to each group's variances."""
    n, d = X.shape
    sizes = [d + 1 + extra for extra in TIGHT_GROUP_EXTRA if 2 * (d + 1 + extra) <= n]
    if not sizes:
        return []
    Z = X / np.sqrt(scale)
    members = np.empty((n, max(sizes)), dtype=np.intp)
    for begin in range(0, n, _NEIGHBOUR_BLOCK):
        block = Z[begin:begin + _NEIGHBOUR_BLOCK]
        distances = np.sum((block[:, None, :] - Z[None, :, :]) ** 2, axis=2)
        own_rows = np.arange(begin, begin + block.shape[0])
        distances[np.arange(block.shape[0]), own_rows] = -1.0  # the row itself first, even among duplicates
        nearest = np.argpartition(distances, max(sizes) - 1, axis=1)[:, :max(sizes)]
        order = np.lexsort((nearest, np.take_along_axis(distances, nearest, axis=1)), axis=1)
        members[begin:begin + block.shape[0]] = np.take_along_axis(nearest, order, axis=1)
    return [_group_gaussians(X, weights, members[:, :size], floor) for size in sizes]


def _group_gaussians(X: np.ndarray, weights: np.ndarray, members: np.ndarray, floor: np.ndarray) -> TightGroups:
    """The groups ``members`` (rows of ``X``) with their own Gaussians (see :class:`TightGroups`)."""
    d = X.shape[1]
    w = weights[members]
    group_weight = np.maximum(np.sum(w, axis=1), np.finfo(float).tiny)  # rows of weight 0 make no group
    means = np.einsum("ng,ngd->nd", w, X[members]) / group_weight[:, None]
    centred = X[members] - means[:, None, :]
    covariances = np.einsum("ng,ngi,ngj->nij", w, centred, centred) / group_weight[:, None, None]
    covariances += np.diag(floor)[None, :, :]
    log_dets = np.linalg.slogdet(covariances)[1]
    share = group_weight / np.sum(weights)
    own = group_weight * (-0.5 * (d * math.log(2 * math.pi) + log_dets + d) + np.log(share))
    own[np.sum(w, axis=1) <= 0] = -np.inf
    layout = get_structure(UNCONSTRAINED_STRUCTURE).layout
    try:  # all at once; one by one only when some covariance has no factor
        factors = layout.precisions_cholesky(covariances)
    except SingularCovarianceError:
        factors = np.zeros_like(covariances)
        for i, covariance in enumerate(covariances):
            try:
                factors[i] = layout.precisions_cholesky(covariance[None])[0]
            except SingularCovarianceError:
                own[i] = -np.inf
    return TightGroups(X, weights, members, means, covariances, factors, share, own)


def group_moves(groups: list[TightGroups], log_prob: np.ndarray, count: int, tried: set) -> list[GroupMove]:
    """The ``count`` most promising tight-group swaps not in ``tried`` (which they join).

    A swap ``(size, row, component)`` moves ``component`` onto the group of
    ``groups[size]`` around ``row``. ``log_prob`` is ``log(weight_k N(x_i | k))``
    of the fit at the groups' rows. A swap scores the likelihood its group
    gains from a component of its own, less the likelihood the other rows
    lose when the component moves away (each row keeping what the other
    components give it). No swap of a round starts in another's group.
    """
    return GroupMoves(groups, log_prob).take(count, tried)


class GroupMoves:
    """The tight-group swaps of one fit, scored and ranked once (see :func:`group_moves`): every round of
    swaps from the same fit takes its moves from here, the ranking made only as far as it is asked for."""

    def __init__(self, groups: list[TightGroups], log_prob: np.ndarray):
        top = np.max(log_prob, axis=1, keepdims=True)
        scaled = np.exp(log_prob - top)
        total = np.sum(scaled, axis=1)
        log_density = np.log(total) + top[:, 0]
        resp = scaled / total[:, None]
        weights = groups[0].weights
        with np.errstate(divide="ignore"):
            costs = -weights @ np.log(np.maximum(1.0 - resp, np.finfo(float).tiny))
        gains = np.concatenate([group.own - np.sum(weights[group.members] * log_density[group.members], axis=1)
                                for group in groups])
        self.groups, self.shape = groups, log_prob.shape
        self.scores = (gains[:, None] - costs[None, :]).ravel()
        self._ranking, self._ranked = _ranked(self.scores), []
        self._passed, self._tried = 0, None  # ranked moves before _passed: in _tried, or no finite score

    def _order(self, position: int) -> Iterator[tuple[int, int]]:
        """The moves' positions in the ranking and indices, best first from ``position``: those ranked
        already, then the ranking goes on."""
        while True:
            if position == len(self._ranked):
                following = next(self._ranking, None)
                if following is None:
                    return
                self._ranked.append(following)
            yield position, self._ranked[position]
            position += 1

    def take(self, count: int, tried: set) -> list[GroupMove]:
        """The ``count`` best moves not in ``tried`` (which they join), no two in one another's group.

        ``tried`` only grows from one call to the next with the same set
        (the moves before the first one that may still be taken are not
        looked at again).
        """
        n_rows, n_components = self.shape
        moves: list[GroupMove] = []
        taken = np.zeros(n_rows, dtype=bool)
        if tried is not self._tried:
            self._passed, self._tried = 0, tried
        passing = True  # every move so far is tried or has no finite score
        for position, flat in self._order(self._passed):
            index, component = divmod(int(flat), n_components)
            size, row = divmod(index, n_rows)
            if not np.isfinite(self.scores[flat]) or (size, row, component) in tried:
                if passing:
                    self._passed = position + 1
                continue
            passing = False
            if taken[row]:
                continue
            moves.append((size, row, component))
            tried.add((size, row, component))
            taken[self.groups[size].members[row]] = True
            if len(moves) == count:
                break
        return moves


#: How many of the highest scores :func:`_ranked` sorts first.
_RANKED_FIRST = 256


def _ranked(scores: np.ndarray) -> Iterator[int]:
    """Indices of ``scores`` from the highest down, as a stable sort of their :func:`_settled` values gives them.

    The highest _RANKED_FIRST (and any within 1e-7 of the lowest of those)
    are sorted first, and given while they are at least that lowest (no
    other score can then come before them); the rest are sorted only if
    they are asked for.
    """
    if scores.size <= _RANKED_FIRST:
        yield from np.argsort(-_settled(scores), kind="stable")
        return
    with np.errstate(invalid="ignore"):
        cut = -np.partition(-np.where(np.isnan(scores), -np.inf, scores), _RANKED_FIRST - 1)[_RANKED_FIRST - 1]
        margin = 1e-7 * abs(cut) if np.isfinite(cut) else 0.0
        first = np.flatnonzero(scores >= cut - margin)  # every other score settles below those at least ``cut``
    given = []
    for index in first[np.argsort(-_settled(scores[first]), kind="stable")]:
        if not scores[index] >= cut:
            break
        given.append(index)
        yield index
    rest = np.ones(scores.size, dtype=bool)
    rest[given] = False
    rest = np.flatnonzero(rest)
    yield from rest[np.argsort(-_settled(scores[rest]), kind="stable")]


def grouped(params: MixtureParams, groups: list[TightGroups], move: GroupMove) -> MixtureParams:
    """``params`` (full covariances) with a component moved onto a tight group (see :func:`group_moves`)."""
    size, row, component = move
    group = groups[size]
    weights = params.weights.copy()
    weights[component] = group.share[row]
    weights /= np.sum(weights)
    means = params.means.copy()
    means[component] = group.means[row]
    covariances, precisions_cholesky = params.covariances.copy(), params.precisions_cholesky.copy()
    covariances[component] = group.covariances[row]
    precisions_cholesky[component] = group.precisions_cholesky[row]
    return MixtureParams(weights, means, covariances, precisions_cholesky)
