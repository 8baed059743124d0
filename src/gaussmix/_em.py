"""The EM loop: E-step statistics, M-step from statistics, convergence.

:func:`run_em` is a plain function over a data engine and returns an
:class:`EMResult`; the estimator adds restarts, validation and attributes.
The M-step (:func:`m_step`) sees only summed statistics, never the rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gaussmix._data import ChunkedData
from gaussmix._params import MixtureParams
from gaussmix._stats import Statistics
from gaussmix.covariance import CovarianceStructure, SingularCovarianceError
from gaussmix.exceptions import FitError

#: A component whose total responsibility falls to this fraction of the total
#: sample weight or below is dropped (see :class:`gaussmix.exceptions.EmptyComponentWarning`).
EMPTY_COMPONENT_FRACTION = 1e-12


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


def regularization(reg_covar: float, variances: np.ndarray, means: np.ndarray, eps: float) -> np.ndarray:
    """What to add to each feature's variance: ``reg_covar`` times that feature's variance.

    This makes results independent of the units and scale of each feature.
    A feature whose spread is below the rounding of its values counts as
    constant and takes the mean scale of the other features (1 if every
    feature is constant).
    """
    constant = variances <= (4.0 * eps * np.abs(means)) ** 2
    constant |= variances <= np.finfo(np.float64).tiny
    if np.all(constant):
        scale = np.ones_like(variances)
    else:
        scale = np.where(constant, np.mean(variances[~constant]), variances)
    return reg_covar * scale


def collapsed_components(
    structure: CovarianceStructure,
    params: MixtureParams,
    reg: np.ndarray,
    reg_covar: float,
    data_variances: np.ndarray,
) -> tuple[int, ...]:
    """Components whose own spread is at most ``reg_covar`` of the data's in some direction.

    The spread of component ``k`` is its covariance minus the
    regularisation; it is compared with ``diag(data_variances) + reg`` by a
    generalised eigenvalue. Directions in which the data themselves do not
    vary (constant features) are not counted.
    """
    if reg_covar <= 0:
        return ()
    n_components, n_features = params.means.shape
    full = structure.full_covariances(params.covariances, n_components, n_features)
    scale = np.sqrt(data_variances + reg)
    varies = data_variances > 100.0 * reg
    collapsed = []
    for k in range(n_components):
        if params.weights[k] == 0:
            continue
        spread = (full[k] - np.diag(reg)) / np.outer(scale, scale)
        values, vectors = np.linalg.eigh(0.5 * (spread + spread.T))
        for value, vector in zip(values, vectors.T):
            if value <= reg_covar and np.sum(vector[varies] ** 2) > 0.5:
                collapsed.append(k)
                break
    return tuple(collapsed)


def _singular_message(
    structure: CovarianceStructure, components: tuple[int, ...] | None, reg_covar: float, where: str
) -> str:
    what = "the shared covariance" if components is None else (
        "the covariance of component " + ", ".join(str(k) for k in components)
    )
    advice = (
        "set reg_covar > 0 (the default 1e-6 adds a millionth of each feature's variance)"
        if reg_covar == 0
        else f"increase reg_covar (now {reg_covar:g}, relative to each feature's variance)"
    )
    return (
        f"{what} became singular {where} (covariance_type={structure.name!r}): a component "
        "collapsed onto too few distinct points or a constant feature. To fix it, "
        f"{advice}, use fewer components, or drop duplicate rows and constant features."
    )


def m_step(
    structure: CovarianceStructure,
    stats: Statistics,
    reg: np.ndarray,
    previous: MixtureParams | None,
    fallback_variances: np.ndarray,
) -> tuple[MixtureParams, tuple[int, ...]]:
    """New parameters from statistics; returns them and the newly dropped components.

    A component with (almost) no responsibility keeps its previous mean and
    covariance (axis-aligned data-scale covariances when there is none) and
    gets weight 0.
    """
    n_components = stats.counts.shape[0]
    empty = stats.counts <= EMPTY_COMPONENT_FRACTION * stats.total_weight
    counts = np.where(empty, 0.0, stats.counts)
    first = np.where(empty[:, None], 0.0, stats.first)
    means = stats.shift + first / np.where(empty, 1.0, counts)[:, None]
    covariances = structure.covariances(counts, first, stats.second, reg)
    if np.any(empty):
        if previous is not None:
            means = np.where(empty[:, None], previous.means, means)
            source = previous.covariances
        else:
            source = structure.default_covariances(fallback_variances + reg, n_components)
        covariances = structure.replace_components(covariances, source, empty)
    weights = counts / np.sum(counts)
    precisions_cholesky = structure.precisions_cholesky(covariances)
    was_alive = np.ones(n_components, bool) if previous is None else previous.weights > 0
    newly = tuple(int(k) for k in np.flatnonzero(empty & was_alive))
    return MixtureParams(weights, means, covariances, precisions_cholesky), newly


def run_em(
    data: ChunkedData,
    structure: CovarianceStructure,
    params: MixtureParams,
    *,
    reg: np.ndarray,
    reg_covar: float,
    fallback_variances: np.ndarray,
    tol: float,
    max_iter: int,
    lower_bound: float = -math.inf,
    restart: int = 0,
    callback: Callable[[IterationInfo], None] | None = None,
) -> EMResult:
    """Iterate EM from ``params`` until the lower bound changes by less than ``tol``.

    The lower bound of iteration ``t`` is the weighted mean log-likelihood of
    the parameters entering it (scikit-learn's convention), so the returned
    parameters are one M-step past ``lower_bounds[-1]``.

    Raises
    ------
    FitError
        If the log-likelihood is not finite or a covariance becomes singular.
    """
    lower_bounds: list[float] = []
    dropped: list[tuple[int, int]] = []
    converged = False
    n_iter = 0
    if callback is not None:
        callback(IterationInfo(restart, 0, lower_bound, math.nan, params, structure.name))
    for n_iter in range(1, max_iter + 1):
        stats = data.estep(structure, params)
        previous_bound = lower_bound
        lower_bound = stats.log_likelihood / stats.total_weight
        if not math.isfinite(lower_bound):
            raise FitError(
                f"the log-likelihood is not finite at EM iteration {n_iter} (restart {restart}): "
                "some rows have zero or infinite density under the current parameters, which "
                "happens with extreme values (rescale or clip the data) or with degenerate "
                "components (increase reg_covar or use fewer components)."
            )
        try:
            params, newly = m_step(structure, stats, reg, params, fallback_variances)
        except SingularCovarianceError as exc:
            raise FitError(
                _singular_message(structure, exc.components, reg_covar, f"at EM iteration {n_iter}")
            ) from None
        dropped.extend((k, n_iter) for k in newly)
        lower_bounds.append(lower_bound)
        change = lower_bound - previous_bound
        if callback is not None:
            callback(IterationInfo(restart, n_iter, lower_bound, change, params, structure.name))
        if abs(change) < tol:
            converged = True
            break
    return EMResult(
        params=params,
        lower_bound=lower_bound,
        lower_bounds=tuple(lower_bounds),
        n_iter=n_iter,
        converged=converged,
        dropped=tuple(dropped),
    )
