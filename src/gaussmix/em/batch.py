"""Several EM runs at once: one pass over the rows per iteration for all of them.

On a few hundred rows an EM iteration costs mostly its fixed cost (a few
hundred Python and NumPy calls), not its arithmetic, and a search that runs
many short EM runs from different starts (:mod:`gaussmix.em.search`) pays that
cost once per run and iteration. :func:`run_em_batch` runs ``B`` fits of
``K`` components as one E-step pass with ``B K`` components whose
responsibilities are normalised within each fit, and one M-step over all
``B K`` components, so that the fixed cost is paid once per iteration for all
of them. Each fit follows the trajectory :func:`~gaussmix.em.loop.run_em`
would give it (the same iterates up to rounding, the same stopping rule and
the same errors); a fit leaves the batch when it stops.

Where no observer listens to the iteration events and the compiled loops
apply (:func:`~gaussmix.em.kernels.compiled_em_runs`), one compiled call
makes every plain iteration of every fit, and the general iteration below
only the others (a dropped component, a covariance without a factor).

It applies to maximum likelihood (:func:`batchable`). With per-component
covariances, whose M-step treats components one by one apart from
normalising the weights, the M-step is one over all ``B K`` components.
With a shared covariance (each fit has its own), the fits are evaluated in
the layout's per-component form (:attr:`~gaussmix.covariance.Layout.expanded`:
each fit's covariance repeated for its components) and each fit's M-step
pools its components' second moments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from gaussmix._errors import FitError
from gaussmix.covariance._linalg import SingularCovarianceError
from gaussmix.em._estep_loop import RUN_BEHIND, RUN_COLLAPSED, RUN_CONVERGED, RUN_GENERAL
from gaussmix.em.kernels import BEHIND, COLLAPSED, EARLY_STOPS, EarlyStop, compiled_em_iteration, compiled_em_runs
from gaussmix.em.loop import EMResult, IterationInfo, non_finite_message, run_em
from gaussmix.em.models import EMModel, MaximumLikelihood
from gaussmix.em.params import MixtureParams
from gaussmix.em.source import DataSource
from gaussmix.em.statistics import Statistics

__all__ = ["BATCH_ELEMENTS", "BEHIND", "COLLAPSED", "EARLY_STOPS", "EMRuns", "EarlyStop", "batchable", "fit_part",
           "m_steps", "run_em_batch", "run_one", "stack_fits"]

#: The largest ``rows x fits x components`` run as one batch; beyond it each pass's arithmetic
#: outweighs its fixed cost and the fits run one by one.
BATCH_ELEMENTS = 1 << 21
_EARLY = {RUN_COLLAPSED: COLLAPSED, RUN_BEHIND: BEHIND}


def batchable(source: DataSource, model: EMModel, n_fits: int, n_components: int) -> bool:
    """Whether ``n_fits`` fits of ``model`` to ``source`` can run as one batch (and are worth it)."""
    layout = model.structure.layout
    return (
        n_fits > 1
        and isinstance(model, MaximumLikelihood)  # a posterior too: the same E-step
        and model.noise is None
        and (layout.per_component or layout.expanded is not None)
        and source.n_samples * n_fits * n_components <= BATCH_ELEMENTS
    )


def stack_fits(params: Sequence[MixtureParams], layout) -> MixtureParams:
    """Several fits' parameters as one set (a shared covariance: one per fit, stacked)."""
    join = np.concatenate if layout.per_component else np.stack
    return MixtureParams(np.concatenate([p.weights for p in params]), np.concatenate([p.means for p in params]),
                         join([p.covariances for p in params]), join([p.precisions_cholesky for p in params]))


def fit_part(stacked: MixtureParams, b: int, n_components: int, layout) -> MixtureParams:
    """Fit ``b`` of stacked fits' parameters (of ``n_components`` components each; see :func:`stack_fits`)."""
    part = slice(b * n_components, (b + 1) * n_components)
    own = part if layout.per_component else b
    return MixtureParams(stacked.weights[part], stacked.means[part], stacked.covariances[own],
                         stacked.precisions_cholesky[own])


def _rows(fits: Sequence[int], n_components: int) -> np.ndarray:
    """The components of the fits at positions ``fits`` of a batch, in order."""
    return (np.asarray(fits)[:, None] * n_components + np.arange(n_components)).reshape(-1)


def _take(stacked: MixtureParams, fits: Sequence[int], n_components: int, layout) -> MixtureParams:
    """The fits at positions ``fits`` of stacked parameters, stacked (``stacked`` itself when that is all)."""
    if len(fits) * n_components == stacked.n_components:
        return stacked  # positions are increasing: all of them, in order
    rows = _rows(fits, n_components)
    own = rows if layout.per_component else np.asarray(fits)
    return MixtureParams(stacked.weights[rows], stacked.means[rows], stacked.covariances[own],
                         stacked.precisions_cholesky[own])


def _evaluated(model: MaximumLikelihood) -> MaximumLikelihood:
    """The model whose kernels evaluate stacked fits: ``model`` itself, or with a shared layout its
    per-component form (see :func:`_form`)."""
    layout = model.structure.layout
    if layout.per_component:
        return model
    return replace(model, structure=replace(model.structure, layout=layout.expanded))


def _form(stacked: MixtureParams, n_components: int, layout) -> MixtureParams:
    """Stacked fits' parameters as :func:`_evaluated`'s model takes them: with a shared layout, each
    fit's covariance repeated for its components."""
    if layout.per_component:
        return stacked
    return replace(stacked, covariances=np.repeat(stacked.covariances, n_components, axis=0),
                   precisions_cholesky=np.repeat(stacked.precisions_cholesky, n_components, axis=0))


class _Run:
    """One fit's trajectory through the batch (what :func:`~gaussmix.em.loop.run_em` keeps)."""

    def __init__(self, params: MixtureParams, lower_bound: float, max_iter: int, restart: int, record: bool,
                 name: str):
        self.params, self.lower_bound, self.max_iter, self.restart = params, lower_bound, max_iter, restart
        self.lower_bounds: list[float] = []
        self.dropped: list[tuple[int, int]] = []
        self.infos = [IterationInfo(restart, 0, lower_bound, math.nan, params, name)] if record else None
        self.events = 0  # iteration events made (or that would be made without record)
        self.n_iter = 0  # iterations made
        self.name = name
        self.outcome: EMResult | FitError | None = None

    def finish(self, n_iter: int, converged: bool, stopped: str | None = None) -> None:
        self.outcome = EMResult(params=self.params, lower_bound=self.lower_bound,
                                lower_bounds=tuple(self.lower_bounds), n_iter=n_iter, converged=converged,
                                dropped=tuple(self.dropped), stopped=stopped)


def run_em_batch(
    source: DataSource,
    model: EMModel,
    starts: Sequence[MixtureParams],
    *,
    tol: float,
    max_iter: int | Sequence[int],
    restarts: Sequence[int],
    lower_bounds: Sequence[float] | None = None,
    record: bool = False,
    early: EarlyStop | None = None,
    stacked: MixtureParams | None = None,
) -> tuple[list[EMResult | FitError], list[list[IterationInfo] | int]]:
    """EM from each of ``starts`` (see :func:`~gaussmix.em.loop.run_em`), all in one batch.

    ``max_iter`` and ``lower_bounds`` (the bounds the starts come with;
    default ``-inf``) may differ from run to run. Returns, for each start,
    its :class:`EMResult` or the :class:`FitError` ``run_em`` would have
    raised, and with ``record`` the iteration events ``run_em`` would have
    passed to its callback, so that a caller can report them run by run
    (without, the number of iterations those events would have reported).
    ``restarts`` number the runs in messages and events.

    With ``early`` (see :class:`~gaussmix.em.kernels.EarlyStop`), a run
    that cannot be what a search looks for also stops: it ends with
    ``stopped`` :data:`COLLAPSED` or :data:`BEHIND`, not converged, with
    its last iteration's parameters and bounds, the same way with or
    without the compiled runs. ``stacked`` is ``starts`` stacked
    (:func:`stack_fits`), where the caller holds them so.
    """
    structure, layout = model.structure, model.structure.layout
    evaluated = _evaluated(model)
    n_components = starts[0].n_components
    limits = [max_iter] * len(starts) if isinstance(max_iter, int) else list(max_iter)
    bounds_in = [-math.inf] * len(starts) if lower_bounds is None else list(lower_bounds)
    runs = [_Run(p, bound, limit, r, record, structure.name)
            for p, bound, limit, r in zip(starts, bounds_in, limits, restarts)]
    active = [run for run in runs if run.max_iter >= 1]
    for run in runs:
        if run.max_iter < 1:
            run.finish(0, False)
    if not active:
        return [run.outcome for run in runs], [run.infos if record else run.events for run in runs]
    if stacked is None or len(active) < len(runs):
        stacked = stack_fits([run.params for run in active], layout)
    # without events to record, compiled runs make every plain iteration; else a compiled iteration each
    advance = None if record else compiled_em_runs(source, model)
    compiled = compiled_em_iteration(source, model) if advance is None else None
    while active:
        if advance is not None:
            made = advance(stacked, len(active), [run.lower_bound for run in active],
                           [run.max_iter - run.n_iter for run in active], tol, early,
                           [run.n_iter for run in active])
            if made is not None:
                stacked, active = _advanced(made, active, n_components, layout)
                if not active:
                    break
        # stacked holds the parameters of the active runs, in order (a run's own are taken out when needed)
        for run in active:
            run.n_iter += 1
        made = None if compiled is None else compiled(stacked, len(active))
        if made is not None:  # plain arithmetic for every run: the iteration below, compiled
            new, log_likelihood = made
            bounds = log_likelihood / float(source.total_weight)
            done, newly, failed = list(range(len(active))), [()] * len(active), {}
        else:
            terms = evaluated.kernel_terms(_form(stacked, n_components, layout), source.shift)
            stats = source.estep(evaluated.structure, terms, groups=len(active))
            bounds = np.atleast_1d(stats.log_likelihood) / float(stats.total_weight)
            if not model.flat:
                bounds = bounds + np.array([model.prior_term(fit_part(stacked, b, n_components, layout))
                                            for b in range(len(active))]) / float(stats.total_weight)
            keep = []
            for position, run in enumerate(active):
                if not math.isfinite(bounds[position]):
                    run.outcome = FitError(non_finite_message(run.n_iter, run.restart))
                else:
                    keep.append(position)
            new, done, newly, failed = m_steps(model, stats, stacked, keep, n_components)
        for position, components in failed.items():
            run = active[position]
            message = model.singular_message(components, f"at EM iteration {run.n_iter}")
            if run.n_iter < run.max_iter:
                run.outcome = FitError(message)
            else:  # as run_em: the parameters that entered the last iteration, with its bound
                run.params = fit_part(stacked, position, n_components, layout)
                run.lower_bound = float(bounds[position])
                run.lower_bounds.append(run.lower_bound)
                run.finish(run.n_iter, False, stopped=message)
        going = []
        for i, position in enumerate(done):
            run = active[position]
            previous_bound = run.lower_bound
            run.lower_bound = float(bounds[position])
            run.dropped.extend((k, run.n_iter) for k in newly[i])
            run.lower_bounds.append(run.lower_bound)
            change = run.lower_bound - previous_bound
            run.events += 1
            if run.infos is not None:
                run.params = fit_part(new, i, n_components, layout)
                run.infos.append(IterationInfo(run.restart, run.n_iter, run.lower_bound, change, run.params,
                                               run.name))
            if abs(change) < tol or run.n_iter == run.max_iter:
                run.params = fit_part(new, i, n_components, layout)
                run.finish(run.n_iter, abs(change) < tol)
                continue
            if early is not None:
                part = fit_part(new, i, n_components, layout)
                why = early.reason(model.scale, layout, part, run.n_iter, run.max_iter, run.lower_bound, change)
                if why is not None:
                    run.params = part
                    run.finish(run.n_iter, False, why)
                    continue
            going.append(i)
        active = [active[done[i]] for i in going]
        if active:
            stacked = _take(new, going, n_components, layout)
    return [run.outcome for run in runs], [run.infos if record else run.events for run in runs]


def _advanced(made, active: list[_Run], n_components: int, layout) -> tuple[MixtureParams, list[_Run]]:
    """The active runs after compiled runs ``made`` (see :func:`~gaussmix.em.kernels.compiled_em_runs`).

    Those that converged, reached their limit or stopped early (see
    :func:`run_em_batch`) finish; the others, whose next iteration is not
    plain arithmetic, are returned with their parameters, stacked.
    """
    new, history, n_done, status = made
    going = []
    for i, run in enumerate(active):
        count = int(n_done[i])
        if count:
            run.lower_bounds.extend(history[i, :count].tolist())
            run.lower_bound = run.lower_bounds[-1]
            run.n_iter += count
            run.events += count
        if status[i] == RUN_GENERAL:
            going.append(i)
        else:
            run.params = fit_part(new, i, n_components, layout)
            run.finish(run.n_iter, status[i] == RUN_CONVERGED, _EARLY.get(int(status[i])))
    if not going:
        return new, []
    return _take(new, going, n_components, layout), [active[i] for i in going]


def m_steps(model: MaximumLikelihood, stats: Statistics, stacked: MixtureParams | None, keep: list[int],
            n_components: int) -> tuple[MixtureParams | None, list[int], list[tuple[int, ...]],
                                        dict[int, tuple[int, ...] | None]]:
    """The M-steps of the fits at positions ``keep`` of the batch (``stacked``: the parameters of all, or None
    where the statistics come from no previous parameters), as one.

    Returns the new parameters of the fits whose M-step succeeded, stacked,
    their positions, the components each newly dropped (numbered within
    it), and for each fit that failed (by position) its failed components
    (None: its shared covariance).
    """
    layout = model.structure.layout
    failed: dict[int, tuple[int, ...] | None] = {}
    fits = list(keep)
    while fits:  # a fit that fails leaves, and the others' M-step is made again without it
        rows = _rows(fits, n_components)
        second = stats.second[rows]
        if not layout.per_component:  # each fit pools its components' second moments
            second = layout.pooled_second(second.reshape((len(fits), n_components) + second.shape[1:]))
        part = Statistics(stats.shift, stats.counts[rows], stats.first[rows], second, 0.0, stats.total_weight)
        try:
            previous = None if stacked is None else _take(stacked, fits, n_components, layout)
            new, dropped = model.update(part, previous, groups=len(fits))
        except SingularCovarianceError as exc:
            by_fit: dict[int, tuple[int, ...] | None] = {}
            if not layout.per_component:
                by_fit = dict.fromkeys(range(len(fits)) if exc.components is None else exc.components)
            else:
                for k in range(len(fits) * n_components) if exc.components is None else exc.components:
                    by_fit[k // n_components] = by_fit.get(k // n_components, ()) + (k % n_components,)
            failed.update({fits[i]: components for i, components in by_fit.items()})
            fits = [p for i, p in enumerate(fits) if i not in by_fit]
            continue
        newly = [tuple(k - i * n_components for k in dropped if k // n_components == i) for i in range(len(fits))]
        return new, fits, newly, failed
    return None, [], [], failed


class EMRuns:
    """EM from ``n_runs`` starts: as one batch where that pays (:func:`batchable`), else each when asked for.

    ``start(i)`` gives run ``i``'s starting parameters (``n_components``
    components), or None where it has none; or ``start`` holds every run's,
    stacked (:func:`stack_fits`). ``max_iter``, ``lower_bounds``
    and ``early`` are as in :func:`run_em_batch`. :meth:`run` gives run
    ``i``'s outcome and passes its iteration events to ``observer``, numbered
    ``restart``. One by one, the run is made then, so its events arrive as it
    goes and runs not asked for cost nothing; in a batch, every run was made
    at once and its events are passed on afterwards, or, when the observer
    does not listen to them (``record=False``), only their number.
    """

    def __init__(self, source: DataSource, model: EMModel, n_runs: int, n_components: int,
                 start: Callable[[int], MixtureParams | None] | MixtureParams, *, tol: float,
                 max_iter: int | Sequence[int], lower_bounds: Sequence[float] | None = None, record: bool = True,
                 early: EarlyStop | None = None):
        stacked = start if isinstance(start, MixtureParams) else None
        if stacked is not None:
            layout = model.structure.layout
            start = lambda i: fit_part(stacked, i, n_components, layout)  # noqa: E731
        self.source, self.model, self.start, self.tol, self.early = source, model, start, tol, early
        self.limits = [max_iter] * n_runs if isinstance(max_iter, int) else list(max_iter)
        self.bounds = [-math.inf] * n_runs if lower_bounds is None else list(lower_bounds)
        self.batch: dict[int, tuple[EMResult | FitError, list[IterationInfo] | int]] | None = None
        if batchable(source, model, n_runs, n_components):
            starts = {i: start(i) for i in range(n_runs)}
            made = [i for i, params in starts.items() if params is not None]
            self.batch = {}
            if made:
                outcomes, events = run_em_batch(
                    source, model, [starts[i] for i in made], tol=tol, max_iter=[self.limits[i] for i in made],
                    lower_bounds=[self.bounds[i] for i in made], restarts=made, record=record,
                    early=early, stacked=stacked,
                )
                self.batch = dict(zip(made, zip(outcomes, events)))

    def run(self, i: int, restart: int, observer) -> EMResult | FitError | None:
        """Run ``i``'s result, the :class:`FitError` it ended with, or None if it had no start.

        ``observer`` is a :class:`~gaussmix.em.observers.FitObserver`.
        """
        if self.batch is not None:
            if i not in self.batch:
                return None
            outcome, infos = self.batch[i]
            if isinstance(infos, int):
                observer.unreported(restart, infos)
                return outcome
            for info in infos:
                observer.iteration(info if info.restart == restart else replace(info, restart=restart))
            return outcome
        params = self.start(i)
        if params is None:
            return None
        try:
            return run_one(self.source, self.model, params, tol=self.tol, max_iter=self.limits[i],
                           lower_bound=self.bounds[i], restart=restart, observer=observer, early=self.early)
        except FitError as exc:
            return exc


def run_one(source: DataSource, model: EMModel, params: MixtureParams, *, tol: float, max_iter: int,
            lower_bound: float, restart: int, observer, early: EarlyStop | None = None) -> EMResult:
    """EM from ``params``, as :func:`~gaussmix.em.loop.run_em` with ``observer``'s iteration events.

    Where ``observer`` does not listen to them and compiled runs apply
    (:func:`~gaussmix.em.kernels.compiled_em_runs`), a batch of one makes
    the run, its plain iterations in one compiled call, and the observer
    hears only how many there were. ``early`` is as in
    :func:`run_em_batch`. Raises the :class:`FitError` of the run.
    """
    if not observer.listens and batchable(source, model, 2, 1) and compiled_em_runs(source, model) is not None:
        (outcome,), (events,) = run_em_batch(source, model, [params], tol=tol, max_iter=max_iter, restarts=[restart],
                                             lower_bounds=[lower_bound], early=early)
        observer.unreported(restart, events)
        if isinstance(outcome, FitError):
            raise outcome
        return outcome
    return run_em(source, model, params, tol=tol, max_iter=max_iter, lower_bound=lower_bound, restart=restart,
                  callback=observer.iteration, early=early)
