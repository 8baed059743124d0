"""The EM loop: E-step statistics, M-step from statistics, convergence.

:func:`run_em` is a plain function over a data engine and returns an
:class:`EMResult`; the estimator adds restarts, validation and attributes.
The M-step (:func:`m_step`) sees only summed statistics, never the rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._data import ChunkedData, smallest_variance, too_small
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
    #: why EM stopped before converging or reaching max_iter (None if it did not)
    stopped: str | None = None
    #: features that do not vary in the data (to rounding)
    constant: tuple[int, ...] = ()


@dataclass(frozen=True)
class DataScale:
    """The data's scale as EM uses it: computed once per fit from the feature moments.

    Attributes
    ----------
    mean, variances : ndarray of shape (n_features,)
        Weighted mean (the statistics' shift) and population variance of each feature.
    scale : ndarray of shape (n_features,)
        The variance a feature's spread is measured against: its variance, or
        for a constant feature the mean variance of the others (1 if every
        feature is constant).
    varies : ndarray of bool
        Features whose spread exceeds the rounding of their values.
    reg : ndarray of shape (n_features,)
        What is added to each feature's variance: ``reg_covar * scale``.
    reg_covar : float
    eps : float
        Machine epsilon of the dtype the kernels compute in.
    """

    mean: np.ndarray
    variances: np.ndarray
    scale: np.ndarray
    varies: np.ndarray
    reg: np.ndarray
    reg_covar: float
    eps: float

    @classmethod
    def of(cls, data: Any, reg_covar: float) -> DataScale:
        """The scale of a data engine's rows (their feature moments, computed once)."""
        mean, variances = data.feature_moments()
        return cls.from_moments(mean, variances, reg_covar, data.dtype)

    @classmethod
    def from_moments(cls, mean: np.ndarray, variances: np.ndarray, reg_covar: float, dtype: Any) -> DataScale:
        eps = float(np.finfo(dtype).eps)
        constant = variances <= (4.0 * eps * np.abs(mean)) ** 2
        constant |= variances <= np.finfo(np.float64).tiny
        if np.all(constant):
            scale = np.ones_like(variances)
        else:
            scale = np.where(constant, np.mean(variances[~constant]), variances)
        check_range(variances, ~constant, dtype)
        return cls(mean, variances, scale, ~constant, reg_covar * scale, float(reg_covar), eps)

    def noise_floor(self, means: np.ndarray, factor: float = 1.0) -> np.ndarray:
        """Per component, the relative variance that rounding alone can produce, shape (K,).

        Statistics are taken about the data mean, so a component's variance
        carries a rounding error of about ``eps`` times its squared distance
        from the data mean, in units of each feature's scale.
        """
        distance = np.max((means - self.mean) ** 2 / self.scale, axis=1)
        return SINGULAR_EPS * factor * self.eps * (1.0 + distance)

    @property
    def checks_singularity(self) -> bool:
        """Whether the regularisation is too small to keep covariances above rounding noise."""
        return self.reg_covar < self.eps


#: A variance within this many machine epsilons (of the feature's scale) of zero counts as zero.
SINGULAR_EPS = 64.0


def constant_features_message(features: tuple[int, ...], reg_covar: float) -> str:
    """What a ConstantFeatureWarning says."""
    which = ", ".join(str(j) for j in features[:10]) + (" ..." if len(features) > 10 else "")
    return (
        f"feature {which} is constant in the data: its variance in every component is only the regularisation "
        f"(reg_covar={reg_covar:g} of the mean variance of the other features), which inflates the "
        "log-likelihood, BIC and AIC by a spike of density; drop constant features."
    )


def check_range(variances: np.ndarray, varies: np.ndarray, dtype: Any) -> None:
    """FitError unless every varying feature's variance is at least :func:`smallest_variance` of ``dtype``."""
    smallest = smallest_variance(dtype)
    small = varies & (variances < smallest)
    if np.any(small):
        j = int(np.flatnonzero(small)[0])
        raise too_small(j, dtype, f"variance {variances[j]:.3g}, below {smallest:.3g}")


def collapsed_components(structure: CovarianceStructure, params: MixtureParams, scale: DataScale) -> tuple[int, ...]:
    """Components whose own spread is at most ``reg_covar`` of the data's in some direction.

    The spread of component ``k`` is its covariance minus the
    regularisation, measured in units of each feature's variance (plus the
    regularisation); directions in which the data themselves do not vary
    (constant features) are not counted. A spread below the rounding noise
    counts as collapsed whatever ``reg_covar``. The structure computes the
    test at the cost of its own parameters (O(K d) for diagonal and
    spherical covariances, one Cholesky factorisation per matrix).
    """
    if not np.any(scale.varies):
        return ()
    units = np.where(scale.varies, np.sqrt(scale.variances + scale.reg), 0.0)
    thresholds = np.maximum(scale.reg_covar, scale.noise_floor(params.means))
    collapsed = structure.collapsed(params.covariances, scale.reg, units, thresholds)
    return tuple(int(k) for k in np.flatnonzero(collapsed & (params.weights > 0)))


def singular_components(
    structure: CovarianceStructure, params: MixtureParams, scale: DataScale
) -> tuple[int, ...] | None:
    """Components whose covariance is zero in some direction, up to rounding; ``()`` if none.

    Decided relative to the data's scale: a variance (given the other
    features) within a few machine epsilons of the feature's variance is
    rounding noise, not spread. Only checked while the regularisation is
    below that noise (``reg_covar`` 0 or nearly). ``None`` stands for a
    shared covariance.
    """
    if not scale.checks_singularity:
        return ()
    conditional = structure.conditional_variances(params.covariances, params.precisions_cholesky)
    with np.errstate(invalid="ignore"):
        relative = np.min(conditional / scale.scale, axis=1)
    floor = scale.noise_floor(params.means, factor=params.n_features if structure.is_matrix else 1.0)
    alive = params.weights > 0
    if relative.shape[0] != params.n_components:  # one shared covariance
        return None if not relative[0] > np.max(floor[alive]) else ()
    return tuple(int(k) for k in np.flatnonzero(~(relative > floor) & alive))


def singular_message(structure: CovarianceStructure, components: tuple[int, ...] | None, reg_covar: float,
                     where: str) -> str:
    """scikit-learn's sentence for an ill-defined covariance, then what happened and what to change."""
    what = "the shared covariance" if components is None else (
        "the covariance of component " + ", ".join(str(k) for k in components)
    )
    advice = (
        "set reg_covar > 0 (the default 1e-6 adds a millionth of each feature's variance)"
        if reg_covar == 0
        else f"increase reg_covar (now {reg_covar:g}, relative to each feature's variance)"
    )
    return (
        f"{SKLEARN_SINGULAR} In gaussmix: {what} became singular {where} (covariance_type="
        f"{structure.name!r}): a component collapsed onto too few distinct points or a constant feature. "
        f"To fix it, {advice}, use fewer components, or drop duplicate rows and constant features."
    )


#: scikit-learn's message for a singular covariance, kept first so that code matching it keeps working.
SKLEARN_SINGULAR = (
    "Fitting the mixture model failed because some components have ill-defined empirical covariance "
    "(for instance caused by singleton or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


def m_step(
    structure: CovarianceStructure,
    stats: Statistics,
    scale: DataScale,
    previous: MixtureParams | None,
) -> tuple[MixtureParams, tuple[int, ...]]:
    """New parameters from statistics; returns them and the newly dropped components.

    A component with (almost) no responsibility keeps its previous mean and
    covariance (axis-aligned data-scale covariances when there is none) and
    gets weight 0.

    Raises
    ------
    SingularCovarianceError
        If a covariance is not positive definite, or (with a regularisation
        below rounding noise) is zero in some direction up to rounding.
    """
    n_components = stats.counts.shape[0]
    empty = stats.counts <= EMPTY_COMPONENT_FRACTION * stats.total_weight
    counts = np.where(empty, 0.0, stats.counts)
    first = np.where(empty[:, None], 0.0, stats.first)
    means = stats.shift + first / np.where(empty, 1.0, counts)[:, None]
    covariances = structure.covariances(counts, first, stats.second, scale.reg)
    if np.any(empty):
        if previous is not None:
            means = np.where(empty[:, None], previous.means, means)
            source = previous.covariances
        else:
            source = structure.default_covariances(scale.scale + scale.reg, n_components)
        covariances = structure.replace_components(covariances, source, empty)
    weights = counts / np.sum(counts)
    precisions_cholesky = structure.precisions_cholesky(covariances)
    params = MixtureParams(weights, means, covariances, precisions_cholesky)
    singular = singular_components(structure, params, scale)
    if singular != ():
        raise SingularCovarianceError(singular)
    was_alive = np.ones(n_components, bool) if previous is None else previous.weights > 0
    newly = tuple(int(k) for k in np.flatnonzero(empty & was_alive))
    return params, newly


def run_em(
    data: ChunkedData,
    structure: CovarianceStructure,
    params: MixtureParams,
    *,
    scale: DataScale,
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

    A covariance that becomes singular in an M-step stops EM with a
    :class:`FitError`, as EM cannot continue from it; in the last iteration
    allowed (``max_iter``) no further E-step needs it, so EM instead returns
    the parameters that entered that iteration, not converged, with
    ``stopped`` saying why (the parameters are then those of
    ``lower_bounds[-1]``).

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
    if callback is not None:
        callback(IterationInfo(restart, 0, lower_bound, math.nan, params, structure.name))
    for n_iter in range(1, max_iter + 1):
        stats = data.estep(structure, params)
        previous_bound = lower_bound
        current = stats.log_likelihood / stats.total_weight
        if not math.isfinite(current):
            raise FitError(
                f"the log-likelihood is not finite at EM iteration {n_iter} (restart {restart}): "
                "some rows have zero or infinite density under the current parameters, which "
                "happens with extreme values (rescale or clip the data) or with degenerate "
                "components (increase reg_covar or use fewer components)."
            )
        lower_bound = current
        try:
            new_params, newly = m_step(structure, stats, scale, params)
        except SingularCovarianceError as exc:
            message = singular_message(structure, exc.components, scale.reg_covar, f"at EM iteration {n_iter}")
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
    return EMResult(
        params=params,
        lower_bound=lower_bound,
        lower_bounds=tuple(lower_bounds),
        n_iter=n_iter,
        converged=converged,
        dropped=tuple(dropped),
        stopped=stopped,
    )
