"""Fitting with restarts: initialise, run EM, keep the best run.

:func:`fit_mixture` is what the estimator calls; it knows nothing about
scikit-learn and can be used on its own.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gaussmix._errors import FitError
from gaussmix._namespace import NUMPY
from gaussmix.covariance._linalg import SingularCovarianceError
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.batch import EMRuns
from gaussmix.em.init import InitMethod, initial_params, seeding_rows
from gaussmix.em.kernels import weighted_log_prob
from gaussmix.em.kmeans import seed_centers
from gaussmix.em.loop import EMResult, IterationInfo, run_em
from gaussmix.em.models import EMModel, MaximumLikelihood
from gaussmix.em.params import MixtureParams, kernel_terms
from gaussmix.em.scale import DataScale
from gaussmix.em.source import DataSource
from gaussmix.em.splitmerge import SplitResponsibilities, candidate_moves, component_covariances, swapped


@dataclass(frozen=True)
class FitSettings:
    """Everything that defines a fit, already validated."""

    n_components: int
    structure: CovarianceStructure
    init: InitMethod
    n_init: int
    tol: float
    reg_covar: float
    max_iter: int


class FitObserver:
    """Receives progress events; the base class ignores them all."""

    @property
    def listens(self) -> bool:
        """Whether :meth:`iteration` uses its events (it is overridden).

        Where no observer listens, runs made several at once do not build
        the events and report only how many there were (:meth:`unreported`).
        """
        return type(self).iteration is not FitObserver.iteration

    def restart_started(self, restart: int, n_restarts: int) -> None:
        """Called before restart ``restart`` (0-based) initialises."""

    def iteration(self, info: IterationInfo) -> None:
        """Called with the starting parameters (iteration 0), then after each EM iteration."""

    def unreported(self, restart: int, n_iterations: int) -> None:
        """Called instead of :meth:`iteration` for the EM iterations of a run whose events were not built."""

    def restart_finished(self, restart: int, result: EMResult) -> None:
        """Called after restart ``restart`` has finished."""


class ObserverGroup(FitObserver):
    """Passes every event to several observers, in order."""

    def __init__(self, *observers: FitObserver):
        self.observers = observers

    @property
    def listens(self) -> bool:
        return any(observer.listens for observer in self.observers)

    def restart_started(self, restart, n_restarts):
        for observer in self.observers:
            observer.restart_started(restart, n_restarts)

    def iteration(self, info):
        for observer in self.observers:
            observer.iteration(info)

    def unreported(self, restart, n_iterations):
        for observer in self.observers:
            observer.unreported(restart, n_iterations)

    def restart_finished(self, restart, result):
        for observer in self.observers:
            observer.restart_finished(restart, result)


class CallbackObserver(FitObserver):
    """Calls ``callback(info)`` for every iteration event."""

    def __init__(self, callback):
        self.callback = callback

    def iteration(self, info):
        self.callback(info)


class VerbosePrinter(FitObserver):
    """Prints progress like scikit-learn's ``verbose`` option."""

    def __init__(self, verbose: int, interval: int):
        self.verbose = verbose
        self.interval = interval
        self._start = self._last = 0.0

    def restart_started(self, restart, n_restarts):
        print(f"Initialization {restart}")
        self._start = self._last = time.perf_counter()

    def iteration(self, info: IterationInfo):
        if info.iteration == 0 or info.iteration % self.interval:
            return
        if self.verbose == 1:
            print(f"  Iteration {info.iteration}")
        else:
            now = time.perf_counter()
            print(
                f"  Iteration {info.iteration}\t time lapse {now - self._last:.5f}s\t "
                f"ll change {info.change:.5f}"
            )
            self._last = now

    def restart_finished(self, restart, result: EMResult):
        status = "converged" if result.converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {status}.")
        else:
            print(
                f"Initialization {status}. time lapse {time.perf_counter() - self._start:.5f}s\t "
                f"lower bound {result.lower_bound:.5f}."
            )


def maximum_likelihood(source: DataSource, settings: FitSettings) -> MaximumLikelihood:
    """The maximum-likelihood model of ``settings`` for ``source``'s data (one pass for its moments)."""
    return MaximumLikelihood(settings.structure, DataScale.of(source, settings.reg_covar))


def fit_mixture(
    source: DataSource,
    settings: FitSettings,
    rng: np.random.RandomState,
    *,
    model: EMModel | None = None,
    weights_init: np.ndarray | None = None,
    means_init: np.ndarray | None = None,
    precisions_init: np.ndarray | None = None,
    warm_start: tuple[MixtureParams, float] | None = None,
    given: Any = None,
    observer: FitObserver | None = None,
) -> EMResult:
    """Fit ``settings.n_init`` times (once from a warm start or a given partition) and return the best run.

    The best run is the one with the highest final lower bound among the
    runs in which no component collapsed (a degenerate optimum is not a
    better one: its likelihood is inflated by a spike of density); only
    when every run collapsed is one of them returned, one with the fewest
    collapsed components. The first run is kept when several are equal.
    ``warm_start`` is ``(params, lower_bound)`` of a previous fit to
    continue from; ``given`` the responsibilities to start from (see
    :func:`~gaussmix.em.init.initial_params`). ``model`` is what EM
    optimises (default: :func:`maximum_likelihood`).

    With ``settings.init == "emem"`` the runs are short; the best continue
    to convergence, split-and-merge moves refine the first
    :data:`SPLIT_MERGE_BASES` distinct ones of those and random swaps the
    best (:data:`SHORT_EM_ITERATIONS`, :func:`_split_and_merge`,
    :func:`_random_swaps`). A short run
    that fails (a singular covariance) is one candidate fewer; only when
    every one fails does the fit fail.
    """
    observer = observer or FitObserver()
    model = maximum_likelihood(source, settings) if model is None else model
    deterministic = warm_start is not None or given is not None or settings.init == "hc"
    short = settings.init == "emem" and not deterministic
    n_restarts = 1 if deterministic else settings.n_init
    n_reported = n_restarts + (min(SHORT_EM_CONTINUED, n_restarts) if short else 0)

    def start(restart: int) -> tuple[MixtureParams, tuple[int, ...]]:
        method = short_em_method(restart) if short else settings.init
        try:
            return initial_params(
                source,
                model,
                n_components=settings.n_components,
                method=method,
                rng=rng,
                weights_init=weights_init,
                means_init=means_init,
                precisions_init=precisions_init,
                given=given,
            )
        except SingularCovarianceError as exc:
            raise FitError(model.singular_message(exc.components, "at initialisation")) from None

    if short:  # every start first (the same draws as one by one), then their short runs, batched where that pays
        starts = [start(restart) for restart in range(n_restarts)]
        short_runs = EMRuns(source, model, n_restarts, settings.n_components, lambda i: starts[i][0],
                            tol=max(settings.tol, SHORT_EM_TOL), max_iter=min(settings.max_iter, SHORT_EM_ITERATIONS),
                            record=observer.listens)
    best: EMResult | None = None
    runs: list[EMResult] = []
    for restart in range(n_restarts):
        observer.restart_started(restart, n_reported)
        if short:
            init_dropped = starts[restart][1]
            result = short_runs.run(restart, restart, observer)
            if isinstance(result, FitError):
                if not runs and restart == n_restarts - 1:
                    raise result
                continue  # a short start that failed is one fewer candidate
        else:
            if warm_start is not None:
                params, lower_bound = warm_start
                init_dropped: tuple[int, ...] = ()
            else:
                params, init_dropped = start(restart)
                lower_bound = -math.inf
            result = run_em(source, model, params, tol=settings.tol, max_iter=settings.max_iter,
                            lower_bound=lower_bound, restart=restart, callback=observer.iteration)
        if init_dropped:
            result = replace(result, dropped=tuple((k, 0) for k in init_dropped) + result.dropped)
        result = replace(result, collapsed=model.collapsed(result.params))
        observer.restart_finished(restart, result)
        runs.append(result)
        if best is None or _better(result, best):
            best = result
    assert best is not None  # n_restarts >= 1
    if short:
        best = _search(source, model, runs, settings, rng, n_restarts, n_reported, observer)
    constant = tuple(int(j) for j in np.flatnonzero(~model.scale.varies))
    return replace(best, constant=constant)


#: Short-EM starts ("emem", after Biernacki, Celeux & Govaert 2003): each of the ``n_init`` starts
#: runs at most SHORT_EM_ITERATIONS iterations, or until the lower bound changes by less than
#: SHORT_EM_TOL per row; the SHORT_EM_CONTINUED best short runs then continue to convergence (and
#: further ones, in order, while every continued run has a collapsed component).
SHORT_EM_ITERATIONS = 20
SHORT_EM_TOL = 1e-3
SHORT_EM_CONTINUED = 3


def short_em_method(start: int) -> InitMethod:
    """The seeding of short-EM start ``start``: k-means first, then distinct random rows.

    Random rows land in basins that every k-means start misses when one
    direction dominates the data (k-means++ seeds, spread along that
    direction, mostly miss them too); the first start being k-means, "emem"
    with ``n_init=1`` is a k-means start run to convergence.
    """
    return "kmeans" if start == 0 else "random_from_data"


def _search(source, model, runs: list[EMResult], settings: FitSettings, rng, n_restarts: int, n_reported: int,
            observer) -> EMResult:
    """What short-EM starts lead to (see :func:`fit_mixture`), from their short ``runs``.

    The most promising continue; split-and-merge moves refine the first
    SPLIT_MERGE_BASES distinct ones of those, then random swaps refine the
    best, with at most RANDOM_SWAP_WORK times the EM iterations of the
    search before them.
    """
    counted = _IterationCount(observer)
    n_continued = min(SHORT_EM_CONTINUED, n_restarts)
    ranked = sorted(range(len(runs)), key=lambda i: (_rank(runs[i]), i))
    finished = _succeeded(_continued(source, model, [runs[i] for i in ranked[:n_continued]], settings,
                                     n_restarts, n_reported, counted))
    for position, index in enumerate(ranked[n_continued:], start=n_continued):
        if not min(finished, key=_rank).collapsed:
            break  # beyond the first few, continue runs only until one ends without a collapse
        finished += _succeeded(_continued(source, model, [runs[index]], settings, n_restarts + position,
                                          n_reported, counted))
    counter = itertools.count(n_restarts + len(finished))
    best = _split_and_merge(source, model, _distinct(finished, settings.tol)[:SPLIT_MERGE_BASES], settings,
                            counter, counted)
    spent = sum(run.n_iter for run in runs) + counted.count
    return _random_swaps(source, model, best, settings, rng, counter, counted, RANDOM_SWAP_WORK * spent)


class _IterationCount(ObserverGroup):
    """Passes every event on to ``observer`` and counts the EM iterations (``count``)."""

    def __init__(self, observer: FitObserver):
        super().__init__(observer)
        self.count = 0

    def iteration(self, info):
        self.count += info.iteration > 0
        super().iteration(info)

    def unreported(self, restart, n_iterations):
        self.count += n_iterations
        super().unreported(restart, n_iterations)


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

    def move_start(i: int) -> MixtureParams | None:
        move, direction = moves[i]
        responsibilities = SplitResponsibilities(structure, best.params, move, direction)
        try:
            return model.update(source.statistics(structure, responsibilities, n_components), None)[0]
        except (FitError, SingularCovarianceError):
            return None

    covariances = component_covariances(source, structure, best.params, floor)
    moves = candidate_moves(best.params, covariances, min(SPLIT_MERGE_MOVES, budget[0]), best.collapsed)
    # the moves in order, as if each ran when its turn came (a batch runs them all at once)
    trial_runs = EMRuns(source, model, len(moves), n_components, move_start, tol=max(settings.tol, SHORT_EM_TOL),
                        max_iter=min(settings.max_iter, SPLIT_MERGE_ITERATIONS), record=observer.listens)
    trials: list[EMResult] = []
    for trial in _trials(trial_runs, len(moves), model, counter, observer):
        budget[0] -= 1
        if trial is None:
            continue
        if _improves(trial, best, settings.tol):
            result = _continued_one(source, model, trial, settings, counter, observer)
            if result is not None and _improves(result, best, settings.tol):
                return result
        else:
            trials.append(trial)
    if trials:
        result = _continued_one(source, model, min(trials, key=_rank), settings, counter, observer)
        if result is not None and _improves(result, best, settings.tol):
            return result
    return None


def _trials(runs: EMRuns, count: int, model, counter, observer) -> Iterator[EMResult | None]:
    """The first ``count`` runs of ``runs`` in turn, each numbered from ``counter`` and reported as it is
    asked for, with its collapsed components (None where it had no start or failed)."""
    for i in range(count):
        number = next(counter)
        observer.restart_started(number, number + 1)
        trial = runs.run(i, number, observer)
        if not isinstance(trial, EMResult):
            yield None
            continue
        trial = replace(trial, collapsed=model.collapsed(trial.params))
        observer.restart_finished(number, trial)
        yield trial


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
RANDOM_SWAP_PATIENCE = 16
RANDOM_SWAP_TRIALS = 8
RANDOM_SWAP_ITERATIONS = 20
RANDOM_SWAP_SHRINK = 0.25
#: The swaps' EM iterations, at most, as a multiple of those of the search before them (short runs,
#: continuations, split-and-merge): where that search converged quickly, so must the swaps.
RANDOM_SWAP_WORK = 4.0


def _random_swaps(source, model, best: EMResult, settings: FitSettings, rng: np.random.RandomState, counter,
                  observer: _IterationCount, budget: float = math.inf) -> EMResult:
    """``best`` improved by rounds of random swaps while they improve it.

    Each round moves a component chosen at random to each of
    RANDOM_SWAP_TRIALS rows drawn at random (distinct, with probability
    proportional to their weight) and runs the moved fits briefly, as one
    batch where that pays. The best of them continues to convergence if it
    already beats ``best`` and replaces it if it still does. No round
    starts once the swaps have run ``budget`` EM iterations (counted by
    ``observer``).
    """
    n_components, structure = settings.n_components, model.structure
    if n_components < 2:
        return best
    rows = seeding_rows(source, n_components, rng)
    unimproved, start = 0, observer.count
    for _ in range(RANDOM_SWAP_ROUNDS):
        if unimproved >= RANDOM_SWAP_PATIENCE or observer.count - start >= budget:
            break
        unimproved += 1
        centres = seed_centers(rows, RANDOM_SWAP_TRIALS, rng, "distinct")
        components = rng.randint(n_components, size=RANDOM_SWAP_TRIALS)
        params = best.params
        terms = kernel_terms(structure, params, np.zeros(centres.shape[1]))
        owners = np.argmax(weighted_log_prob(NUMPY, structure.layout, centres, terms, np.float64), axis=1)

        def swap_start(i: int, params: MixtureParams = params) -> MixtureParams:
            return swapped(structure.layout, params, int(components[i]), centres[i], int(owners[i]),
                           RANDOM_SWAP_SHRINK)

        runs = EMRuns(source, model, RANDOM_SWAP_TRIALS, n_components, swap_start,
                      tol=max(settings.tol, SHORT_EM_TOL), max_iter=min(settings.max_iter, RANDOM_SWAP_ITERATIONS),
                      record=observer.listens)
        trials = [trial for trial in _trials(runs, RANDOM_SWAP_TRIALS, model, counter, observer) if trial is not None]
        top = min(trials, key=_rank, default=None)
        if top is None or not _improves(top, best, settings.tol):
            continue
        result = _continued_one(source, model, top, settings, counter, observer)
        if result is not None and _improves(result, best, settings.tol):
            best, unimproved = result, 0
    return best


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


def _rank(result: EMResult) -> tuple[int, float]:
    """Sort key of runs, best first: fewer collapsed components first, then the higher lower bound."""
    return len(result.collapsed), -result.lower_bound


def _improves(result: EMResult, best: EMResult, tol: float) -> bool:
    """Whether ``result`` beats ``best`` by more than ``tol`` per row (or has fewer collapsed components)."""
    if len(result.collapsed) != len(best.collapsed):
        return len(result.collapsed) < len(best.collapsed)
    return result.lower_bound > best.lower_bound + tol


def _better(result: EMResult, best: EMResult) -> bool:
    """Whether ``result`` beats ``best`` (see :func:`_rank`; the earlier run wins ties)."""
    return _rank(result) < _rank(best)
