"""The EM loop: E-step statistics, M-step from statistics, convergence.

:func:`run_em` is a plain function over a data source and a model
(:mod:`gaussmix.em.models`) and returns an :class:`EMResult`; the fit adds
restarts (:mod:`gaussmix.em.fit`), the estimator validation and attributes.
The M-step sees only summed statistics, never the rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gaussmix._errors import FitError
from gaussmix.covariance._linalg import SingularCovarianceError
from gaussmix.em.kernels import EarlyStop, compiled_em_iteration
from gaussmix.em.models import EMModel
from gaussmix.em.params import MixtureParams
from gaussmix.em.source import DataSource


@dataclass(frozen=True)
class IterationInfo:
    """What a fit's ``callback`` receives: once before EM starts, then after each iteration.

    Attributes
    ----------
    restart : int
        Which initialisation (0-based; see ``n_init``).
    iteration : int
        0 for the starting parameters (before any EM step), then 1, 2, ...
    lower_bound : float
        Weighted mean log-likelihood of the data under the parameters that
        entered this iteration (scikit-learn's ``lower_bounds_`` entries);
        ``-inf`` at iteration 0 of a fresh start.
    change : float
        ``lower_bound`` minus the previous iteration's (``nan`` at iteration 0).
    params : MixtureParams
        The parameters after this iteration (the starting ones at iteration 0),
        as float64 arrays shaped like the estimator's fitted attributes.
    covariance_type : str
        The covariance structure the parameters belong to.
    """

    restart: int
    iteration: int
    lower_bound: float
    change: float
    params: MixtureParams
    covariance_type: str

    @property
    def weights(self) -> np.ndarray:
        return self.params.weights

    @property
    def means(self) -> np.ndarray:
        return self.params.means

    @property
    def covariances(self) -> np.ndarray:
        return self.params.covariances


@dataclass(frozen=True)
class EMResult:
    """Outcome of one EM run."""

    params: MixtureParams
    lower_bound: float
    lower_bounds: tuple[float, ...]
    n_iter: int
    converged: bool
    #: (component, iteration) for each component dropped during the run
    dropped: tuple[tuple[int, int], ...] = ()
    #: components whose variance is only the regularisation in some direction
    collapsed: tuple[int, ...] = ()
    #: why EM stopped before converging or reaching max_iter (None if it did not)
    stopped: str | None = None
    #: features that do not vary in the data (to rounding)
    constant: tuple[int, ...] = ()


def non_finite_message(n_iter: int, restart: int) -> str:
    """What a log-likelihood that is not finite at EM iteration ``n_iter`` means and what to change."""
    return (
        f"the log-likelihood is not finite at EM iteration {n_iter} (restart {restart}): "
        "some rows have zero or infinite density under the current parameters, which "
        "happens with extreme values (rescale or clip the data) or with degenerate "
        "components (increase reg_covar or use fewer components)."
    )


def estep(source: DataSource, model: EMModel, params: MixtureParams, exact: bool = False):
    """The statistics of ``source`` under ``params``; ``exact``: computed in float64 whatever the source's
    compute dtype (``KernelTerms.in_float64``)."""
    terms = model.kernel_terms(params, source.shift)
    return source.estep(model.structure, dataclasses.replace(terms, in_float64=True) if exact else terms)


def run_em(
    source: DataSource,
    model: EMModel,
    params: MixtureParams,
    *,
    tol: float,
    max_iter: int,
    lower_bound: float = -math.inf,
    restart: int = 0,
    callback: Callable[[IterationInfo], None] | None = None,
    early: EarlyStop | None = None,
) -> EMResult:
    """Iterate EM from ``params`` until the lower bound changes by less than ``tol``.

    The lower bound of iteration ``t`` is the model's bound (for maximum
    likelihood, the weighted mean log-likelihood) of the parameters entering
    it (scikit-learn's convention), so the returned parameters are one
    M-step past ``lower_bounds[-1]``.

    Where the source computes in float32 and a covariance comes out
    singular, the iteration is taken again in float64, and so are the
    iterations after it (before, the model's terms ask for float64 where
    float32 rounding is not negligible beside a covariance, see
    :func:`~gaussmix.em.scale.beyond_rounding`). A covariance that still
    becomes singular in an M-step stops EM with a
    :class:`FitError`, as EM cannot continue from it; in the last iteration
    allowed (``max_iter``) no further E-step needs it, so EM instead returns
    the parameters that entered that iteration, not converged, with
    ``stopped`` saying why (the parameters are then those of
    ``lower_bounds[-1]``).

    With ``early`` (:class:`~gaussmix.em.kernels.EarlyStop`; for searches),
    EM also stops, not converged, after an iteration before ``max_iter``
    where a component collapsed or the bound cannot reach its target
    (``stopped`` says which).

    Raises
    ------
    FitError
        If the log-likelihood is not finite, or a covariance becomes
        singular before the last iteration.
    """
    lower_bounds: list[float] = []
    dropped: list[tuple[int, int]] = []
    converged = False
    n_iter = 0
    stopped = None
    structure = model.structure
    if callback is not None:
        callback(IterationInfo(restart, 0, lower_bound, math.nan, params, structure.name))
    compiled = compiled_em_iteration(source, model)
    exact = False
    for n_iter in range(1, max_iter + 1):
        previous_bound = lower_bound
        made = None if compiled is None else compiled(params, 1)
        if made is not None:  # plain arithmetic: the iteration below, compiled
            new_params, log_likelihood = made
            lower_bound, newly = float(log_likelihood[0]) / float(source.total_weight), ()
        else:
            stats = estep(source, model, params, exact)
            after = model.bound_after_update  # a bound that needs the M-step's result
            current = math.nan if after else model.bound(stats, params)
            if not (after or math.isfinite(current)):
                raise FitError(non_finite_message(n_iter, restart))
            lower_bound = current
            try:
                try:
                    new_params, newly = model.update(stats, params)
                except SingularCovarianceError:
                    if exact or np.dtype(source.dtype) == np.float64:
                        raise
                    # float32 rounding can be what made it singular: this step and the ones after it in float64
                    exact = True
                    stats = estep(source, model, params, exact)
                    new_params, newly = model.update(stats, params)
                if after:
                    lower_bound = model.bound(stats, params, new_params)
                    if not math.isfinite(lower_bound):
                        raise FitError(non_finite_message(n_iter, restart))
            except SingularCovarianceError as exc:
                message = model.singular_message(exc.components, f"at EM iteration {n_iter}")
                if n_iter < max_iter:
                    raise FitError(message) from None
                lower_bounds.append(lower_bound)
                stopped = message
                break
        params = new_params
        dropped.extend((k, n_iter) for k in newly)
        lower_bounds.append(lower_bound)
        change = lower_bound - previous_bound
        if callback is not None:
            callback(IterationInfo(restart, n_iter, lower_bound, change, params, structure.name))
        if abs(change) < tol:
            converged = True
            break
        if early is not None and n_iter < max_iter:
            stopped = early.reason(model.scale, structure.layout, params, n_iter, max_iter, lower_bound, change)
            if stopped is not None:
                break
    return EMResult(
        params=params,
        lower_bound=lower_bound,
        lower_bounds=tuple(lower_bounds),
        n_iter=n_iter,
        converged=converged,
        dropped=tuple(dropped),
        stopped=stopped,
    )
