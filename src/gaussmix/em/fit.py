"""Fitting with restarts: initialise, run EM, keep the best run.

:func:`fit_mixture` is what the estimator calls; it knows nothing about
scikit-learn and can be used on its own.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gaussmix._errors import FitError
from gaussmix.covariance._linalg import SingularCovarianceError
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.init import InitMethod, initial_params
from gaussmix.em.loop import EMResult, IterationInfo, run_em
from gaussmix.em.models import EMModel, MaximumLikelihood
from gaussmix.em.params import MixtureParams
from gaussmix.em.scale import DataScale
from gaussmix.em.source import DataSource
from gaussmix.em.splitmerge import SplitResponsibilities, candidate_moves, component_covariances


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

    def restart_started(self, restart: int, n_restarts: int) -> None:
        """Called before restart ``restart`` (0-based) initialises."""

    def iteration(self, info: IterationInfo) -> None:
        """Called with the starting parameters (iteration 0), then after each EM iteration."""

    def restart_finished(self, restart: int, result: EMResult) -> None:
        """Called after restart ``restart`` has finished."""


class ObserverGroup(FitObserver):
    """Passes every event to several observers, in order."""

    def __init__(self, *observers: FitObserver):
        self.observers = observers

    def restart_started(self, restart, n_restarts):
        for observer in self.observers:
            observer.restart_started(restart, n_restarts)

    def iteration(self, info):
        for observer in self.observers:
            observer.iteration(info)

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
    when every run collapsed is the best of them returned. The first run is
    kept when several are equal. ``warm_start`` is ``(params, lower_bound)``
    of a previous fit to continue from; ``given`` the responsibilities to
    start from (see :func:`~gaussmix.em.init.initial_params`). ``model`` is
    what EM optimises (default: :func:`maximum_likelihood`).

    With ``settings.init == "emem"`` the runs are short; the best continue
    to convergence and split-and-merge moves refine the best of those
    (:data:`SHORT_EM_ITERATIONS`, :func:`_split_and_merge`). A short run
    that fails (a singular covariance) is one candidate fewer; only when
    every one fails does the fit fail.
    """
    observer = observer or FitObserver()
    model = maximum_likelihood(source, settings) if model is None else model
    deterministic = warm_start is not None or given is not None or settings.init == "hc"
    short = settings.init == "emem" and not deterministic
    n_restarts = 1 if deterministic else settings.n_init
    n_continued = min(SHORT_EM_CONTINUED, n_restarts) if short else 0
    n_reported = n_restarts + n_continued

    best: EMResult | None = None
    runs: list[EMResult] = []
    for restart in range(n_restarts):
        observer.restart_started(restart, n_reported)
        if warm_start is not None:
            params, lower_bound = warm_start
            init_dropped: tuple[int, ...] = ()
        else:
            method = short_em_method(restart) if short else settings.init
            try:
                params, init_dropped = initial_params(
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
            lower_bound = -math.inf
        try:
            result = run_em(
                source,
                model,
                params,
                tol=max(settings.tol, SHORT_EM_TOL) if short else settings.tol,
                max_iter=min(settings.max_iter, SHORT_EM_ITERATIONS) if short else settings.max_iter,
                lower_bound=lower_bound,
                restart=restart,
                callback=observer.iteration,
            )
        except FitError:
            if not short or (not runs and restart == n_restarts - 1):
                raise
            continue  # a short start that failed is one fewer candidate
        if init_dropped:
            result = replace(result, dropped=tuple((k, 0) for k in init_dropped) + result.dropped)
        result = replace(result, collapsed=model.collapsed(result.params))
        observer.restart_finished(restart, result)
        runs.append(result)
        if best is None or _better(result, best):
            best = result
    assert best is not None  # n_restarts >= 1
    if short:
        # The most promising short runs continue to convergence; split-and-merge moves refine the best.
        ranked = sorted(range(len(runs)), key=lambda i: (_rank(runs[i]), i))
        finished: list[EMResult] = []
        for position, index in enumerate(ranked):
            if position >= n_continued and not min(finished, key=_rank).collapsed:
                break  # beyond the first few, continue runs only until one ends without a collapse
            finished.append(_continued(source, model, runs[index], settings, n_restarts + position, n_reported,
                                       observer))
        best = min(finished, key=_rank)  # the earliest of equals
        best = _split_and_merge(source, model, best, settings, n_restarts + len(finished), observer)
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


def _continued(source, model, start: EMResult, settings: FitSettings, restart: int, n_reported: int,
               observer) -> EMResult:
    """A short run continued to convergence (the iterations and bounds of both, as one run)."""
    observer.restart_started(restart, n_reported)
    if start.stopped is not None or start.n_iter >= settings.max_iter:
        observer.restart_finished(restart, start)
        return start
    rest = run_em(
        source, model, start.params, tol=settings.tol, max_iter=settings.max_iter - start.n_iter,
        lower_bound=start.lower_bound, restart=restart, callback=observer.iteration,
    )
    result = replace(
        rest,
        lower_bounds=start.lower_bounds + rest.lower_bounds,
        n_iter=start.n_iter + rest.n_iter,
        dropped=start.dropped + tuple((k, start.n_iter + it) for k, it in rest.dropped),
        collapsed=model.collapsed(rest.params),
    )
    observer.restart_finished(restart, result)
    return result


#: Split-and-merge rounds after the short-EM search (:mod:`gaussmix.em.splitmerge`): each round
#: tries the SPLIT_MERGE_MOVES most promising moves with short runs of at most
#: SPLIT_MERGE_ITERATIONS iterations, and keeps one that improves the fit after continuing to
#: convergence; at most SPLIT_MERGE_ROUNDS rounds and SPLIT_MERGE_TRIALS moves in all.
SPLIT_MERGE_MOVES = 16
SPLIT_MERGE_ROUNDS = 10
SPLIT_MERGE_ITERATIONS = 20
SPLIT_MERGE_TRIALS = 32


def _split_and_merge(source, model, best: EMResult, settings: FitSettings, restart: int, observer) -> EMResult:
    """``best`` improved by split-and-merge moves while they improve it (see :mod:`gaussmix.em.splitmerge`).

    In each round the moves are tried in order with short runs. A short run
    that already beats ``best`` continues to convergence at once and, if it
    still does, replaces it and starts the next round; when none does, the
    best short run continues. No improvement ends the search.
    """
    structure = model.structure
    n_components = settings.n_components
    if n_components < 2:
        return best
    floor = np.maximum(model.scale.reg, 1e-6 * model.scale.scale)
    counter = itertools.count(restart)

    def continued(run: EMResult) -> EMResult | None:
        number = next(counter)
        try:
            return _continued(source, model, run, settings, number, number + 1, observer)
        except FitError:
            return None

    budget = SPLIT_MERGE_TRIALS
    for _ in range(SPLIT_MERGE_ROUNDS):
        if budget <= 0:
            break
        covariances = component_covariances(source, structure, best.params, floor)
        trials: list[EMResult] = []
        improved = None
        for move, direction in candidate_moves(best.params, covariances, min(SPLIT_MERGE_MOVES, budget)):
            budget -= 1
            number = next(counter)
            observer.restart_started(number, number + 1)
            responsibilities = SplitResponsibilities(structure, best.params, move, direction)
            try:
                params, _ = model.update(source.statistics(structure, responsibilities, n_components), None)
                trial = run_em(
                    source, model, params, tol=max(settings.tol, SHORT_EM_TOL),
                    max_iter=min(settings.max_iter, SPLIT_MERGE_ITERATIONS), restart=number,
                    callback=observer.iteration,
                )
            except (FitError, SingularCovarianceError):
                continue
            trial = replace(trial, collapsed=model.collapsed(trial.params))
            observer.restart_finished(number, trial)
            if _improves(trial, best, settings.tol):
                result = continued(trial)
                if result is not None and _improves(result, best, settings.tol):
                    improved = result
                    break
            else:
                trials.append(trial)
        if improved is None and trials:
            result = continued(min(trials, key=_rank))
            if result is not None and _improves(result, best, settings.tol):
                improved = result
        if improved is None:
            break
        best = improved
    return best


def _rank(result: EMResult) -> tuple[bool, float]:
    """Sort key of runs, best first: no collapsed component first, then the higher lower bound."""
    return bool(result.collapsed), -result.lower_bound


def _improves(result: EMResult, best: EMResult, tol: float) -> bool:
    """Whether ``result`` beats ``best`` by more than ``tol`` per row (or has fewer collapsed components)."""
    if bool(result.collapsed) != bool(best.collapsed):
        return not result.collapsed
    return result.lower_bound > best.lower_bound + tol


def _better(result: EMResult, best: EMResult) -> bool:
    """Whether ``result`` beats ``best`` (see :func:`_rank`; the earlier run wins ties)."""
    return _rank(result) < _rank(best)
