"""Fitting with restarts: initialise, run EM, keep the best run.

:func:`fit_mixture` is what the estimator calls; it knows nothing about
scikit-learn and can be used on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gaussmix._errors import FitError
from gaussmix.covariance._linalg import SingularCovarianceError
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em import search
from gaussmix.em.batch import EMRuns, run_one
from gaussmix.em.init import InitMethod, initial_params
from gaussmix.em.loop import EMResult
from gaussmix.em.models import EMModel, MaximumLikelihood
from gaussmix.em.observers import FitObserver
from gaussmix.em.params import MixtureParams
from gaussmix.em.scale import DataScale
from gaussmix.em.source import DataSource


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
    #: mclust's ``equalPro``: every component's weight is ``1 / n_components``
    equal_proportions: bool = False
    #: a conjugate prior's given hyper-parameters (see :mod:`gaussmix.em.prior`; the others are
    #: mclust's defaults), or None for maximum likelihood
    prior: Mapping[str, Any] | None = None
    #: the volume ``V`` of a uniform noise component's region (None: no noise component)
    noise_volume: float | None = None


def maximum_likelihood(source: DataSource, settings: FitSettings, row_weight: float = 1.0) -> MaximumLikelihood:
    """What EM optimises for ``settings`` on ``source``'s data: the likelihood, or with ``settings.prior`` the
    posterior (:class:`~gaussmix.em.prior.MaximumAPosteriori`; ``row_weight`` is the weight one row of the
    given data has in the source). One pass for the feature moments, and one more for the data covariance when
    a default prior needs it."""
    scale = DataScale.of(source, settings.reg_covar)
    noise = None if settings.noise_volume is None else -math.log(settings.noise_volume)
    if settings.prior is None:
        return MaximumLikelihood(settings.structure, scale, settings.equal_proportions, noise)
    from gaussmix.em import prior

    given = dict(settings.prior)
    covariance = prior.data_covariance(source, row_weight) if given.get("scale") is None else None
    conjugate = prior.default_prior(settings.structure, settings.n_components, scale.mean, covariance,
                                    source.total_weight / row_weight, **given)
    return prior.MaximumAPosteriori(settings.structure, scale, settings.equal_proportions, noise, conjugate,
                                    row_weight)


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
    signal: tuple[DataSource, float] | None = None,
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

    With a noise component (``model.noise``), ``signal`` is ``(source, weight)``:
    the rows a first guess calls signal (the others weighted 0) and the noise's
    starting weight. Each start is made on those rows, as mclust starts from
    them, its weights scaled to leave the noise its own; EM then runs on all
    the rows. With ``"emem"`` each of its starts is run to convergence, without
    the search's split-and-merge moves (which re-estimate from partitions of the
    Gaussian components alone).

    With ``settings.init == "emem"`` the runs are short and
    :func:`gaussmix.em.search.search` takes over from them. A short run
    that fails (a singular covariance) is one candidate fewer; only when
    every one fails does the fit fail.
    """
    observer = observer or FitObserver()
    model = maximum_likelihood(source, settings) if model is None else model
    deterministic = warm_start is not None or given is not None or settings.init == "hc"
    noisy = getattr(model, "noise", None) is not None
    emem = settings.init == "emem" and not deterministic
    short = emem and not noisy
    n_restarts = 1 if deterministic else settings.n_init
    n_reported = n_restarts + (search.n_continued(n_restarts) if short else 0)

    if noisy and signal is None:
        raise ValueError("a fit with a noise component needs the signal rows to start from")

    def start(restart: int) -> tuple[MixtureParams, tuple[int, ...]]:
        if noisy:
            params, dropped = start_on(restart, signal[0], replace(model, noise=None))
            if params.noise is None:  # a start from the Gaussians' parameters alone
                params = replace(params, weights=params.weights * (1.0 - signal[1]), noise=model.noise)
            return params, dropped
        return start_on(restart, source, model)

    def start_on(restart: int, source: DataSource, model: EMModel) -> tuple[MixtureParams, tuple[int, ...]]:
        method = search.short_em_method(restart) if emem else settings.init
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
                            tol=max(settings.tol, search.SHORT_EM_TOL),
                            max_iter=min(settings.max_iter, search.SHORT_EM_ITERATIONS),
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
            result = run_one(source, model, params, tol=settings.tol, max_iter=settings.max_iter,
                             lower_bound=lower_bound, restart=restart, observer=observer)
        if init_dropped:
            result = replace(result, dropped=tuple((k, 0) for k in init_dropped) + result.dropped)
        result = replace(result, collapsed=model.collapsed(result.params))
        observer.restart_finished(restart, result)
        runs.append(result)
        if best is None or search.better(result, best):
            best = result
    assert best is not None  # n_restarts >= 1
    if short:
        best = search.search(source, model, runs, settings, rng, n_restarts, n_reported, observer)
    constant = tuple(int(j) for j in np.flatnonzero(~model.scale.varies))
    return replace(best, constant=constant)
