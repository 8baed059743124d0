"""The short-EM search ("emem"): what short runs from many starts lead to.

After Biernacki, Celeux & Govaert (2003): ``n_init`` starts each run a few
EM iterations, the most promising continue to convergence, split-and-merge
moves refine the best of those (:mod:`gaussmix.em.splitmerge`), then random
swaps (and, for full covariances on small data, tight-group swaps) refine
the result while they improve it, within a budget of EM iterations
proportional to the search before them. Runs that start
together run as one batch where that pays (:class:`~gaussmix.em.batch.EMRuns`),
and trials that cannot beat the fit they start from stop early (a collapsed
component, a bound too far behind; :class:`~gaussmix.em.kernels.EarlyStop`).
The module constants set the search; ``benchmarks/bench_starts.py`` measures
them (its ``--variant`` option sets them here).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from gaussmix._errors import FitError
from gaussmix._namespace import NUMPY
from gaussmix.em.batch import EARLY_STOPS, EarlyStop, EMRuns, stack_fits
from gaussmix.em.init import InitMethod, seeding_rows
from gaussmix.em.kernels import weighted_log_prob
from gaussmix.em.kmeans import distinct_rows
from gaussmix.em.loop import EMResult
from gaussmix.em.observers import IterationCount
from gaussmix.em.params import joined_fits, kernel_terms
from gaussmix.em.splitmerge import (
    GroupMoves,
    TightGroups,
    candidate_moves,
    component_covariances,
    grouped,
    move_starts,
    swapped_fits,
    tight_groups,
)

if TYPE_CHECKING:
    from gaussmix.em.fit import FitSettings


#: Short-EM starts ("emem", after Biernacki, Celeux & Govaert 2003): each of the ``n_init`` starts
#: runs at most SHORT_EM_ITERATIONS iterations, or until the lower bound changes by less than
#: SHORT_EM_TOL per row; the SHORT_EM_CONTINUED best short runs then continue to convergence (and
#: further ones, in order, while every continued run has a collapsed component).
SHORT_EM_ITERATIONS = 20
SHORT_EM_TOL = 1e-3
SHORT_EM_CONTINUED = 2
#: The short runs are dealt in turn to this many independent searches (fewer where there are fewer
#: than SHORT_EM_CONTINUED short runs for each), each continued, refined and swapped on its own; the
#: best of their results wins. Two searches from five starts each reach the best known optimum more
#: often than one from ten with twice its swaps (a search's swaps stay in the basin it found), three
#: from three or four more often still, and four from two or three, each continuing two, more often
#: again (benchmarks/README.md).
SEARCHES = 4


def short_em_method(start: int) -> InitMethod:
    """The seeding of short-EM start ``start``: k-means first, then distinct random rows.

    Random rows land in basins that every k-means start misses when one
    direction dominates the data (k-means++ seeds, spread along that
    direction, mostly miss them too); the first start being k-means, "emem"
    with ``n_init=1`` is a k-means start run to convergence.
    """
    return "kmeans" if start == 0 else "random_from_data"


def search(source, model, runs: list[EMResult], settings: FitSettings, rng, n_restarts: int, n_reported: int,
           observer) -> EMResult:
    """What short-EM starts lead to, from their short ``runs`` (:func:`~gaussmix.em.fit.fit_mixture` made them).

    The runs are dealt in turn to :func:`n_searches` independent searches
    (:func:`_one_search`), numbered from ``n_restarts`` on; the first
    search's result wins unless another's is higher by more than ``tol``.
    """
    counted = IterationCount(observer)
    counter = itertools.count(n_restarts)
    count = n_searches(len(runs))
    found = None
    for group in range(count):
        result = _one_search(source, model, runs[group::count], settings, rng, counter, n_reported, counted)
        if found is None or _improves(result, found, settings.tol):
            found = result
    return found


def n_searches(n_runs: int) -> int:
    """How many independent searches ``n_runs`` short runs make (see :data:`SEARCHES`)."""
    return max(1, min(SEARCHES, n_runs // SHORT_EM_CONTINUED))


def n_continued(n_runs: int) -> int:
    """How many short runs continue to convergence at first, in all searches together."""
    count = n_searches(n_runs)
    return sum(min(SHORT_EM_CONTINUED, len(range(group, n_runs, count))) for group in range(count))


def _one_search(source, model, runs: list[EMResult], settings: FitSettings, rng, counter, n_reported: int,
                counted: IterationCount) -> EMResult:
    """One search from short ``runs``: continued runs, split-and-merge, then random swaps.

    The SHORT_EM_CONTINUED most promising continue to convergence (and
    further ones while every continued run has a collapsed component);
    split-and-merge moves refine the first SPLIT_MERGE_BASES distinct ones
    of those, then random swaps refine the best, with at most
    RANDOM_SWAP_WORK times the EM iterations of the search before them.
    Where every continued run ended at the same optimum, the data have
    few competing optima near it and the swaps are a short check instead
    (AGREED_WORK, AGREED_PATIENCE); the time saved goes to the others.
    Runs are numbered from ``counter``.
    """
    before = counted.count
    n_continued = min(SHORT_EM_CONTINUED, len(runs))
    ranked = _ranked(runs)
    finished = _succeeded(_continued(source, model, [runs[i] for i in ranked[:n_continued]], settings,
                                     _numbers(counter, n_continued), n_reported, counted))
    for index in ranked[n_continued:]:
        if not min(finished, key=_rank).collapsed:
            break  # beyond the first few, continue runs only until one ends without a collapse
        finished += _succeeded(_continued(source, model, [runs[index]], settings, next(counter), n_reported,
                                          counted))
    distinct = _distinct(finished, settings.tol)
    best = _split_and_merge(source, model, distinct[:SPLIT_MERGE_BASES], settings, counter, counted)
    spent = sum(run.n_iter for run in runs) + counted.count - before
    agreed = len(distinct) == 1 and len(finished) > 1
    work, patience = (AGREED_WORK, AGREED_PATIENCE) if agreed else (RANDOM_SWAP_WORK, RANDOM_SWAP_PATIENCE)
    return _random_swaps(source, model, best, settings, rng, counter, counted, work * spent, patience)


def _numbers(counter, count: int) -> int:
    """The first of ``count`` (at least 1) consecutive numbers taken from ``counter``."""
    first = next(counter)
    for _ in range(count - 1):
        next(counter)
    return first


def _continued(source, model, starts: list[EMResult], settings: FitSettings, restart: int, n_reported: int,
               observer) -> list[EMResult | FitError]:
    """Short runs continued to convergence, numbered from ``restart`` (each with the iterations and bounds of
    both, as one run), batched where that pays; a continuation that fails ends the list with its error."""
    pending = [i for i, start in enumerate(starts) if not _finished(start, settings)]
    rests = EMRuns(source, model, len(pending), settings.n_components, lambda j: starts[pending[j]].params,
                   tol=settings.tol, max_iter=[settings.max_iter - starts[i].n_iter for i in pending],
                   lower_bounds=[starts[i].lower_bound for i in pending], record=observer.listens)
    results: list[EMResult | FitError] = []
    for i, start in enumerate(starts):
        observer.restart_started(restart + i, n_reported)
        if i not in pending:
            observer.restart_finished(restart + i, start)
            results.append(start)
            continue
        rest = rests.run(pending.index(i), restart + i, observer)
        if isinstance(rest, FitError):
            results.append(rest)
            break
        results.append(_joined(model, start, rest, restart + i, observer))
    return results


def _succeeded(results: list[EMResult | FitError]) -> list[EMResult]:
    """``results``, or the error one of them is."""
    for result in results:
        if isinstance(result, FitError):
            raise result
    return results


def _finished(start: EMResult, settings: FitSettings) -> bool:
    """Whether a short run cannot continue (it stopped on a singular covariance, or used every iteration)."""
    return start.stopped is not None or start.n_iter >= settings.max_iter


def _joined(model, start: EMResult, rest: EMResult, restart: int, observer) -> EMResult:
    """A short run and its continuation as one run."""
    result = replace(
        rest,
        lower_bounds=start.lower_bounds + rest.lower_bounds,
        n_iter=start.n_iter + rest.n_iter,
        dropped=start.dropped + tuple((k, start.n_iter + it) for k, it in rest.dropped),
        collapsed=model.collapsed(rest.params),
    )
    observer.restart_finished(restart, result)
    return result


#: Where the fit they start from has no collapsed component, the trials of split-and-merge and of random
#: swaps stop as soon as one of theirs collapses, and drop out: they cannot beat that fit.
STOP_COLLAPSED = True


#: Split-and-merge rounds after the short-EM search (:mod:`gaussmix.em.splitmerge`), from each
#: distinct continued run: each round tries the SPLIT_MERGE_MOVES most promising moves with short
#: runs of at most SPLIT_MERGE_ITERATIONS iterations, and keeps one that improves the fit after
#: continuing to convergence; at most SPLIT_MERGE_ROUNDS rounds and SPLIT_MERGE_TRIALS moves in
#: all from each of the first SPLIT_MERGE_BASES distinct continued runs.
SPLIT_MERGE_MOVES = 16
SPLIT_MERGE_ROUNDS = 10
SPLIT_MERGE_ITERATIONS = 20
SPLIT_MERGE_TRIALS = 32
SPLIT_MERGE_BASES = 1


def _split_and_merge(source, model, bases: list[EMResult], settings: FitSettings, counter,
                     observer) -> EMResult:
    """The best of ``bases``, each improved by split-and-merge moves while they improve it.

    From each base in turn (see :mod:`gaussmix.em.splitmerge`), in each
    round the moves are tried in order with short runs. A short run that
    already beats the current fit continues to convergence at once and, if
    it still does, replaces it and starts the next round; when none does,
    the best short run continues. No improvement ends the search from that
    base, and so does reaching an optimum already reached (the search from
    there has been made). The earliest of equal results wins.
    """
    n_components = settings.n_components
    if n_components < 2:
        return min(bases, key=_rank)
    reached = list(bases)
    results = []
    for base in bases:
        best, budget = base, [SPLIT_MERGE_TRIALS]
        for _ in range(SPLIT_MERGE_ROUNDS):
            if budget[0] <= 0:
                break
            improved = _split_and_merge_round(source, model, best, settings, counter, budget, observer)
            if improved is None:
                break
            known = any(_same_optimum(improved, other, settings.tol) for other in reached)
            best = improved
            if known:
                break
            reached.append(improved)
        results.append(best)
    found = results[0]
    for result in results[1:]:  # the earliest wins unless another is higher by more than tol
        if _improves(result, found, settings.tol):
            found = result
    return found


def _split_and_merge_round(source, model, best: EMResult, settings: FitSettings, counter, budget: list[int],
                           observer) -> EMResult | None:
    """One round of moves from ``best`` (see :func:`_split_and_merge`): the improved fit, or None.

    ``budget[0]`` is how many moves may still be tried; each one tried counts.
    """
    structure, n_components = model.structure, settings.n_components
    floor = np.maximum(model.scale.reg, 1e-6 * model.scale.scale)

    covariances = component_covariances(source, structure, best.params, floor)
    moves = candidate_moves(best.params, covariances, min(SPLIT_MERGE_MOVES, budget[0]), best.collapsed)
    move_start = move_starts(source, model, best.params, moves).__getitem__

    # the moves in order, as if each ran when its turn came (a batch runs them all at once)
    trial_runs = EMRuns(source, model, len(moves), n_components, move_start, tol=max(settings.tol, SHORT_EM_TOL),
                        max_iter=min(settings.max_iter, SPLIT_MERGE_ITERATIONS), record=observer.listens,
                        early=EarlyStop(collapsed=STOP_COLLAPSED and not best.collapsed))
    trials: list[EMResult] = []
    for trial in _trials(trial_runs, len(moves), counter, observer):
        budget[0] -= 1
        if trial is None or trial.stopped in EARLY_STOPS:  # cannot beat a fit without collapsed components
            continue
        # a trial can beat a fit without collapsed components only by a higher bound: only then is it judged
        if best.collapsed or trial.lower_bound > best.lower_bound + settings.tol:
            trial = replace(trial, collapsed=model.collapsed(trial.params))
            if _improves(trial, best, settings.tol):
                result = _continued_one(source, model, trial, settings, counter, observer)
                if result is not None and _improves(result, best, settings.tol):
                    return result
                continue
        trials.append(trial)
    if trials:
        result = _continued_one(source, model, _best(trials, model), settings, counter, observer)
        if result is not None and _improves(result, best, settings.tol):
            return result
    return None


def _trials(runs: EMRuns, count: int, counter, observer) -> Iterator[EMResult | None]:
    """The first ``count`` runs of ``runs`` in turn, each numbered from ``counter`` and reported as it is
    asked for (None where it had no start or failed); their collapsed components are not judged yet."""
    for i in range(count):
        number = next(counter)
        observer.restart_started(number, number + 1)
        trial = runs.run(i, number, observer)
        if not isinstance(trial, EMResult):
            yield None
            continue
        observer.restart_finished(number, trial)
        yield trial


def _best(trials: list[EMResult], model) -> EMResult | None:
    """The best of runs whose collapsed components are not judged yet (:func:`_rank`; the earliest of equals).

    They are judged from the highest bound down, only until one has no
    collapsed component and the next bound is below its rounding: none
    after it can rank higher.
    """
    best, best_at = None, -1
    order = sorted(range(len(trials)), key=lambda i: -trials[i].lower_bound)  # stable: the earlier of equals first
    ordered = [trials[i] for i in order]
    judged = _collapsed_together(model, ordered)
    lowest = -math.inf  # once a run has no collapsed component: the lowest bound that can still tie it
    for i, (at, trial) in enumerate(zip(order, ordered)):
        if trial.lower_bound < lowest:
            break
        trial = replace(trial, collapsed=judged[i] if judged is not None else model.collapsed(trial.params))
        if best is None or _ahead(trial, best) or (not _ahead(best, trial) and at < best_at):
            best, best_at = trial, at
        if not trial.collapsed and lowest == -math.inf:
            lowest = trial.lower_bound - BOUND_ROUNDING * max(1.0, abs(trial.lower_bound))
    return best


def _collapsed_together(model, runs: list[EMResult]) -> list[tuple[int, ...]] | None:
    """Each run's collapsed components, judged in one call where covariances are per component (the same
    judgement as one by one; the fixed cost of a check outweighs its arithmetic on small data); else None."""
    if len(runs) < 2 or not model.structure.layout.per_component:
        return None
    size = runs[0].params.n_components
    found = model.collapsed(stack_fits([run.params for run in runs], model.structure.layout))
    return [tuple(k - i * size for k in found if k // size == i) for i in range(len(runs))]


def _continued_one(source, model, run: EMResult, settings: FitSettings, counter, observer) -> EMResult | None:
    """``run`` continued to convergence, numbered from ``counter`` (None if the continuation fails)."""
    number = next(counter)
    result = _continued(source, model, [run], settings, number, number + 1, observer)[0]
    return result if isinstance(result, EMResult) else None


#: Random swaps after split-and-merge (:func:`gaussmix.em.splitmerge.swapped`): in each round,
#: RANDOM_SWAP_TRIALS swaps of the best fit run at most RANDOM_SWAP_ITERATIONS iterations; at most
#: RANDOM_SWAP_ROUNDS rounds, ending after RANDOM_SWAP_PATIENCE in a row improve nothing. A moved
#: component's covariance is RANDOM_SWAP_SHRINK times that of the one its new mean is most likely under.
RANDOM_SWAP_ROUNDS = 128
RANDOM_SWAP_PATIENCE = 30
RANDOM_SWAP_TRIALS = 8
RANDOM_SWAP_ITERATIONS = 20
RANDOM_SWAP_SHRINK = 0.25
#: Of each round's trials, up to TIGHT_SWAP_TRIALS are tight-group swaps where covariances are full
#: matrices per component and the data have at most TIGHT_MAX_ROWS rows (see :func:`_tight_groups`).
TIGHT_SWAP_TRIALS = 4
TIGHT_MAX_ROWS = 2000
#: The swaps' EM iterations, at most, as a multiple of those of the search before them (short runs,
#: continuations, split-and-merge): where that search converged quickly, so must the swaps.
RANDOM_SWAP_WORK = 7.0
#: Where every continued run ended at the same optimum, the swaps end after AGREED_PATIENCE rounds in a
#: row without improvement, within AGREED_WORK times the iterations of the search before them.
AGREED_WORK = 1.0
AGREED_PATIENCE = 3
#: A swap trial stops after SWAP_BEHIND_AFTER iterations or more where its bound, rising SWAP_BEHIND_SLACK
#: times as fast as in its last iteration for the rest of its iterations, would not beat the fit (0: never).
SWAP_BEHIND_SLACK = 2.0
SWAP_BEHIND_AFTER = 2


def _random_swaps(source, model, best: EMResult, settings: FitSettings, rng: np.random.RandomState, counter,
                  observer: IterationCount, budget: float = math.inf,
                  patience: int | None = None) -> EMResult:
    """``best`` improved by rounds of random swaps while they improve it.

    Each round moves a component chosen at random to each of
    RANDOM_SWAP_TRIALS rows drawn at random (distinct, with probability
    proportional to their weight) and runs the moved fits briefly, as one
    batch where that pays; where :func:`_tight_groups` has groups, up to
    TIGHT_SWAP_TRIALS of the trials are instead the most promising
    tight-group swaps not yet tried from the current fit. The best of them
    continues to convergence if it already beats ``best`` and replaces it
    if it still does. No round starts once the swaps have run ``budget`` EM
    iterations (counted by ``observer``).
    """
    n_components, structure = settings.n_components, model.structure
    if n_components < 2:
        return best
    rows = seeding_rows(source, n_components, rng)
    X = np.asarray(rows.xp.to_numpy(rows.rows(np.arange(rows.n_samples))), dtype=np.float64)
    groups = _tight_groups(source, model)
    tried: set = set()
    moves = owners = None  # of the current fit, made once for all its rounds (None: to be made)
    unimproved, start = 0, observer.count
    patience = RANDOM_SWAP_PATIENCE if patience is None else patience
    for _ in range(RANDOM_SWAP_ROUNDS):
        if unimproved >= patience or observer.count - start >= budget:
            break
        unimproved += 1
        params = best.params
        if owners is None:  # the component each row is most likely under, and the groups' swaps
            terms = kernel_terms(structure, params, np.zeros(X.shape[1]))
            owners = np.argmax(weighted_log_prob(NUMPY, structure.layout, X, terms, np.float64), axis=1)
            if groups:
                moves = GroupMoves(groups, weighted_log_prob(NUMPY, structure.layout, groups[0].rows, terms,
                                                             np.float64))
        moved = [grouped(params, groups, move) for move in moves.take(TIGHT_SWAP_TRIALS, tried)] if groups else []
        n_random = RANDOM_SWAP_TRIALS - len(moved)
        chosen = distinct_rows(rows, n_random, rng)
        components = rng.randint(n_components, size=n_random)
        starts = swapped_fits(structure.layout, params, components, X[chosen], owners[chosen], RANDOM_SWAP_SHRINK)
        if moved:  # the tight-group swaps first (stacked fits join along their first axis)
            starts = joined_fits([stack_fits(moved, structure.layout), starts])
        runs = EMRuns(source, model, len(moved) + n_random, n_components, starts,
                      tol=max(settings.tol, SHORT_EM_TOL), max_iter=min(settings.max_iter, RANDOM_SWAP_ITERATIONS),
                      record=observer.listens, early=_swap_stops(best, settings))
        trials = [trial for trial in _trials(runs, len(moved) + n_random, counter, observer)
                  if trial is not None and trial.stopped not in EARLY_STOPS]
        if not best.collapsed:  # only a higher bound beats a fit without collapsed components (_improves)
            trials = [trial for trial in trials if trial.lower_bound > best.lower_bound + settings.tol]
        top = _best(trials, model)
        if top is None or not _improves(top, best, settings.tol):
            continue
        result = _continued_one(source, model, top, settings, counter, observer)
        if result is not None and _improves(result, best, settings.tol):
            best, unimproved, owners = result, 0, None
            tried = set()  # from a new fit, every group may be tried again
    return best


def _swap_stops(best: EMResult, settings: FitSettings) -> EarlyStop:
    """Where a swap round's trials stop early (:class:`~gaussmix.em.batch.EarlyStop`): where a component
    collapses, and where the bound falls behind what could beat ``best``, unless ``best`` has a collapsed
    component (then neither rules a trial out)."""
    if best.collapsed:
        return EarlyStop()
    target = best.lower_bound + settings.tol if SWAP_BEHIND_SLACK > 0 else -math.inf
    return EarlyStop(collapsed=STOP_COLLAPSED, target=target, slack=SWAP_BEHIND_SLACK, after=SWAP_BEHIND_AFTER)


def _tight_groups(source, model) -> list[TightGroups] | None:
    """The tight groups of the data's rows (:func:`~gaussmix.em.splitmerge.tight_groups`), kept in the
    source's ``memo`` for every fit of the same data; None unless covariances are full matrices per
    component and the data have at most TIGHT_MAX_ROWS rows (every row's nearest rows cost n² distances)."""
    layout = model.structure.layout
    if not (TIGHT_SWAP_TRIALS and layout.per_component and layout.is_matrix and source.n_samples <= TIGHT_MAX_ROWS):
        return None
    scale = model.scale
    key = ("tight groups", scale.reg_covar)
    if key not in source.memo:
        rows = source.in_memory()
        X = np.asarray(rows.xp.to_numpy(rows.rows(np.arange(rows.n_samples))), dtype=np.float64)
        source.memo[key] = tight_groups(X, rows.weights_numpy(), scale.scale,
                                        np.maximum(scale.reg, 1e-6 * scale.scale))
    return source.memo[key]


def _same_optimum(result: EMResult, other: EMResult, tol: float) -> bool:
    """Whether two converged runs are taken to be at the same optimum (bounds within 10 ``tol``)."""
    return len(result.collapsed) == len(other.collapsed) and abs(result.lower_bound - other.lower_bound) <= 10 * tol


def _distinct(runs: list[EMResult], tol: float) -> list[EMResult]:
    """``runs``, best first (see :func:`_rank`), without those at an optimum an earlier one reached."""
    kept: list[EMResult] = []
    for run in sorted(runs, key=_rank):
        if not any(_same_optimum(run, other, tol) for other in kept):
            kept.append(run)
    return kept


#: Bounds closer than this, relative to their size (at least 1), are equal: they differ by the rounding of
#: their sums alone, which another engine, BLAS or thread count changes (two runs at one optimum with their
#: components in another order, for instance). The earlier run wins ties.
BOUND_ROUNDING = 1e-10


def _ahead(result: EMResult, other: EMResult, tol: float = 0.0) -> bool:
    """Whether ``result`` ranks before ``other``: fewer collapsed components, then a bound higher by more
    than ``tol`` per row and more than its rounding (:data:`BOUND_ROUNDING`)."""
    if len(result.collapsed) != len(other.collapsed):
        return len(result.collapsed) < len(other.collapsed)
    margin = max(tol, BOUND_ROUNDING * max(1.0, abs(other.lower_bound)))
    return result.lower_bound > other.lower_bound + margin


def _rank(result: EMResult) -> tuple[int, float]:
    """Sort key of runs, best first: fewer collapsed components first, then the higher lower bound (sorts that
    must not depend on rounding compare with :func:`_ahead` instead)."""
    return len(result.collapsed), -result.lower_bound


def _ranked(runs: list[EMResult]) -> list[int]:
    """The positions of ``runs``, best first (:func:`_ahead`; the earlier of equals first)."""
    def compare(i: int, j: int) -> int:
        return -1 if _ahead(runs[i], runs[j]) else 1 if _ahead(runs[j], runs[i]) else i - j

    return sorted(range(len(runs)), key=functools.cmp_to_key(compare))


def _improves(result: EMResult, best: EMResult, tol: float) -> bool:
    """Whether ``result`` beats ``best`` by more than ``tol`` per row (or has fewer collapsed components)."""
    return _ahead(result, best, tol)


def better(result: EMResult, best: EMResult) -> bool:
    """Whether ``result`` beats ``best`` (see :func:`_ahead`; the earlier run wins ties)."""
    return _ahead(result, best)
