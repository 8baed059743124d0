"""The data's scale as EM sees it, and the decisions taken relative to it.

Everything numerical that depends on the units of the data is decided here,
relative to each feature's spread: the regularisation (``reg_covar`` in
units of each feature's variance), which features are constant, when a
covariance counts as singular (within rounding of zero), when a component
counts as collapsed, and which values are too small or too large for the
arithmetic. A fit therefore gives the same result at any scale of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._errors import FitError
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.params import MixtureParams


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
    collapsed = structure.layout.collapsed(params.covariances, scale.reg, units, thresholds)
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
    conditional = structure.layout.conditional_variances(params.covariances, params.precisions_cholesky)
    with np.errstate(invalid="ignore"):
        relative = np.min(conditional / scale.scale, axis=1)
    floor = scale.noise_floor(params.means, factor=params.n_features if structure.layout.is_matrix else 1.0)
    alive = params.weights > 0
    if relative.shape[0] != params.n_components:  # one shared covariance
        return None if not relative[0] > np.max(floor[alive]) else ()
    return tuple(int(k) for k in np.flatnonzero(~(relative > floor) & alive))


def beyond_rounding(structure: CovarianceStructure, params: MixtureParams, scale: DataScale) -> bool:
    """Whether the compute dtype's rounding is not negligible beside a live component's covariance.

    Only a dtype coarser than float64 is asked about: a smallest variance
    (given the other features) within its rounding noise of zero, measured
    as :func:`singular_components` measures it, but with float32's epsilon.
    A float32 E-step would then lose that direction (the distances and the
    second moments about the data mean carry errors of about ``eps`` times
    the squared distance from it), so EM computes that E-step in float64.
    Components with fewer rows than features (whose covariance is the
    regularisation in some direction) are the usual case.
    """
    if scale.eps <= np.finfo(np.float64).eps:
        return False
    conditional = structure.layout.conditional_variances(params.covariances, params.precisions_cholesky)
    with np.errstate(invalid="ignore"):
        relative = np.min(conditional / scale.scale, axis=1)
    floor = scale.noise_floor(params.means, factor=params.n_features if structure.layout.is_matrix else 1.0)
    alive = params.weights > 0
    if not np.any(alive):
        return False
    if relative.shape[0] != params.n_components:  # one shared covariance
        return not relative[0] > np.max(floor[alive])
    return bool(np.any(~(relative > floor) & alive))


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


def checked_moments(mean: np.ndarray, variances: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, variances)``, or FitError naming the first feature whose squares leave float64's range.

    ``spread`` is each feature's largest distance from its mean (over rows
    of positive weight): a feature that varies but whose variance
    underflows (values of about 1e-143 or less) cannot be fitted
    faithfully, and neither can one whose squares overflow.
    """
    finite = np.isfinite(mean) & np.isfinite(variances)
    if not np.all(finite):
        bad = int(np.flatnonzero(~finite)[0])
        raise FitError(
            f"feature {bad} has values too large to square in float64 (about 1e154 or more); "
            "rescale the data, for example divide it by its largest absolute value."
        )
    smallest = smallest_variance(np.float64)
    tiny = (spread > 0) & (variances < smallest) & (spread > 4.0 * float(np.finfo(np.float64).eps) * np.abs(mean))
    if np.any(tiny):
        bad = int(np.flatnonzero(tiny)[0])
        raise too_small(bad, np.float64, f"they vary by {spread[bad]:.3g}, so their variance is below {smallest:.3g}")
    return mean, variances


def smallest_variance(dtype) -> float:
    """The smallest variance of a feature that ``dtype`` arithmetic fits faithfully.

    Components can be a millionth of the data's spread (the default
    regularisation) and precisions are inverse variances, so a variance
    within ``1e6 / eps`` of the smallest normal number is too small.
    """
    info = np.finfo(dtype)
    return float(info.tiny) / float(info.eps) * 1e6


def too_small(feature: int, dtype, detail: str) -> FitError:
    """The error for a feature whose values are too small for ``dtype`` arithmetic."""
    return FitError(
        f"feature {feature} has values too small for {np.dtype(dtype).name} arithmetic ({detail}): rescale the "
        "data, for example divide each feature by its largest absolute value."
    )
