"""Maximum a posteriori estimation with a conjugate prior (mclust's ``priorControl``).

The prior (Fraley and Raftery 2007, "Bayesian regularization for normal
mixture estimation and model-based clustering") puts on each component's
mean a normal distribution about ``mean`` whose covariance is the
component's own divided by ``shrinkage``, and on each covariance the model
estimates independently a conjugate distribution of ``dof`` degrees of
freedom about ``scale``: an inverse Wishart for a general matrix, an
inverse gamma for each variance of a diagonal matrix, or for the one
variance of a spherical one. Models whose components share one covariance
(EII, EEI, EEE/tied) have one such distribution; the others one per
component, restricted to the model's constraints on volume, shape and
orientation.

With this prior the posterior mode is found by the same EM: the M-step
estimates from *pseudo-statistics*, the summed statistics plus what the
prior contributes, and nothing else changes.

* The mean prior is a pseudo-row at ``mean`` of weight ``shrinkage`` in each
  component: the component's mean becomes
  ``(n_k xbar_k + shrinkage mean) / (n_k + shrinkage)`` and its scatter gains
  ``n_k shrinkage / (n_k + shrinkage) (xbar_k - mean)(xbar_k - mean)'``.
* The covariance prior adds ``scale`` (in the layout's form) to the scatter
  and ``dof + d + 1`` (a general matrix), ``dof + 2`` (each variance of a
  diagonal) or ``(dof + 2) / d`` (one variance for ``d`` features) to the
  count the structure divides by; the mean prior adds 1 more per
  component it covers (none with ``shrinkage=0``).

The model's own estimate then maximises the posterior over its constraint
set, since the log posterior has the form of a log-likelihood with those
counts and scatters. For VVV, EEE, VVI and VII this is the M-step of
mclust 6.0.0 with a prior; mclust has none for EVE, VEE, VVE and EVV, and
for the others its Fortran uses other counts (see ``benchmarks/prior``).

:func:`default_prior` is mclust's ``defaultPrior``. BIC with a prior is,
as mclust computes it, the usual one evaluated at the posterior mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.models import MaximumLikelihood
from gaussmix.em.params import MixtureParams
from gaussmix.em.statistics import Statistics

#: mclust's ``defaultPrior`` shrinkage: the mean prior is worth 1/100 of a row.
DEFAULT_SHRINKAGE = 0.01

#: The hyper-parameters a prior takes, in the order :class:`ConjugatePrior` has them.
HYPER_PARAMETERS = ("shrinkage", "mean", "dof", "scale")


@dataclass(frozen=True)
class ConjugatePrior:
    """A conjugate prior's hyper-parameters (see the module docstring).

    Attributes
    ----------
    shrinkage : float
        ``kappa >= 0``: how many rows the prior mean is worth in each
        component (0: no prior on the means).
    mean : ndarray of shape (n_features,)
        The prior mean.
    dof : float
        Degrees of freedom of the covariance prior (``> 0``).
    scale : ndarray of shape (), (n_features,) or (n_features, n_features)
        The covariance prior's scale: a matrix for models with general
        covariances, a variance per feature for diagonal ones and one
        variance for spherical ones (a scalar, a diagonal or a matrix is
        brought to the form each model needs: see :meth:`scale_for`).
    """

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: np.ndarray

    def scale_for(self, structure: CovarianceStructure, n_features: int) -> np.ndarray:
        """``scale`` in the form ``structure``'s scatter has: a matrix, one value per feature, or one value.

        A scalar ``s`` is ``s I`` for a matrix and ``s`` for each feature; a
        matrix gives its diagonal per feature, and a diagonal or matrix the
        mean of its diagonal as one value.
        """
        scale = np.asarray(self.scale, dtype=np.float64)
        diagonal = np.diag(scale) if scale.ndim == 2 else np.broadcast_to(scale, (n_features,))
        form = covariance_form(structure, n_features)
        if form == 2:
            return scale if scale.ndim == 2 else np.diag(diagonal)
        if form == 1:
            return diagonal.copy()
        return np.asarray(float(scale) if scale.ndim == 0 else float(np.mean(diagonal)))

    def extra_count(self, structure: CovarianceStructure, n_features: int) -> float:
        """What the covariance prior adds to the count the structure divides by (per covariance it covers)."""
        form = covariance_form(structure, n_features)
        if form == 2:
            return self.dof + n_features + 1.0
        if form == 1:
            return self.dof + 2.0
        return (self.dof + 2.0) / n_features


def covariance_form(structure: CovarianceStructure, n_features: int) -> int:
    """2, 1 or 0: whether each of ``structure``'s covariances is stored as a matrix, a value per feature or one
    value (its scatter has the same form)."""
    layout = structure.layout
    return len(layout.shape(1, n_features)) - (1 if layout.per_component else 0)


def shares_one_covariance(structure: CovarianceStructure, n_features: int) -> bool:
    """Whether every component has the same covariance (its parameter count does not grow with K)."""
    return structure.count(1, n_features) == structure.count(2, n_features)


def default_prior(
    structure: CovarianceStructure, n_components: int, data_mean: np.ndarray, covariance: np.ndarray | None,
    n_samples: float = math.inf, **given: Any,
) -> ConjugatePrior:
    """mclust's ``defaultPrior`` for data of mean ``data_mean`` and (unbiased) covariance ``covariance``
    (which may be None when ``scale`` is given).

    ``shrinkage`` 0.01, ``mean`` the data mean, ``dof`` ``d + 2`` and
    ``scale`` the data covariance times ``(1 / K)^(2 / d)`` (its mean
    variance, for diagonal and spherical models, as mclust's; its diagonal
    when there are no more rows than features). Any of them given in
    ``given`` replaces its default.
    """
    n_features = data_mean.shape[0]
    factor = (1.0 / n_components) ** (2.0 / n_features)
    if covariance is None:
        scale = None
    elif covariance_form(structure, n_features) == 2:
        scale = factor * (covariance if n_samples > n_features else np.diag(np.diag(covariance)))
    else:
        scale = np.asarray(factor * float(np.mean(np.diag(covariance))))
    values = dict(shrinkage=DEFAULT_SHRINKAGE, mean=data_mean, dof=n_features + 2.0, scale=scale)
    values.update({name: value for name, value in given.items() if value is not None})
    return ConjugatePrior(float(values["shrinkage"]), np.asarray(values["mean"], dtype=np.float64),
                          float(values["dof"]), np.asarray(values["scale"], dtype=np.float64))


@dataclass(frozen=True)
class MaximumAPosteriori(MaximumLikelihood):
    """A Gaussian mixture fitted by maximum a posteriori under ``prior`` (see the module docstring).

    The bound is the weighted mean of ``log p(x_i)`` plus the prior's log
    density (up to its normalising constant) over the total weight: the
    quantity EM increases. The log-likelihood itself (for BIC) is computed
    from the data at the fitted parameters.
    """

    prior: ConjugatePrior | None = None
    #: the weight one row has in the data source (its weights are the given ones times this): the prior's
    #: counts and scatter are in rows, so they are scaled by it
    row_weight: float = 1.0

    def _estimates(self, stats: Statistics, empty: np.ndarray, before: np.ndarray | None,
                   ) -> tuple[np.ndarray, np.ndarray]:
        structure, prior = self.structure, self.prior
        n_features = stats.first.shape[1]
        live = ~empty
        n_live = max(int(np.sum(live)), 1)
        counts = np.where(empty, 0.0, stats.counts)
        first = np.where(empty[:, None], 0.0, stats.first)
        kept = Statistics(stats.shift, counts, first, stats.second, 0.0, 0.0)
        unit = self.row_weight
        if prior.shrinkage > 0:  # a pseudo-row at the prior mean in every live component
            pseudo = Statistics(prior.mean, unit * prior.shrinkage * live, np.zeros_like(first),
                                np.zeros_like(stats.second), 0.0, 0.0).recentred(structure, stats.shift)
            kept = kept + pseudo
        scatter = structure.layout.scatter(kept.counts, kept.first, kept.second)
        scale = unit * self.prior.scale_for(structure, n_features)
        extra = unit * prior.extra_count(structure, n_features)
        shared = shares_one_covariance(structure, n_features)
        if shared:
            extra = extra / n_live
        if structure.layout.per_component:
            share = scale / n_live if shared else scale
            scatter = scatter + np.where(live.reshape((-1,) + (1,) * np.ndim(scale)), share, 0.0)
        else:
            scatter = scatter + scale
        # the mean prior's determinant counts one per component, whatever its weight in the mean
        pseudo_counts = np.where(live, counts + (unit if prior.shrinkage > 0 else 0.0) + extra, 0.0)
        means = kept.means
        return means, structure.estimate(scatter, pseudo_counts, self.scale.reg, before)

    flat = False

    def prior_term(self, params: MixtureParams) -> float:
        return self.row_weight * self.log_prior(params)

    def log_prior(self, params: MixtureParams) -> float:
        """The prior's log density at ``params``, without its normalising constant (live components only)."""
        structure, prior = self.structure, self.prior
        layout = structure.layout
        n_components, n_features = params.means.shape
        live = params.weights > 0
        if not np.any(live):
            return 0.0
        # per component: log det of the covariance and its precision's products with the scale and the mean
        log_det = -2.0 * np.broadcast_to(
            layout.log_det_precision_cholesky(params.precisions_cholesky, n_features), (n_components,))
        precisions = layout.full_covariances(layout.precisions(params.precisions_cholesky), n_components, n_features)
        scale = prior.scale_for(structure, n_features)
        form = covariance_form(structure, n_features)
        if form == 2:
            trace = np.einsum("kij,ji->k", precisions, scale)
        elif form == 1:
            trace = np.einsum("kjj,j->k", precisions, scale)
        else:  # one variance: its inverse times the scale
            trace = precisions[:, 0, 0] * float(scale)
        extra = prior.extra_count(structure, n_features)
        blocks = np.where(live, 1.0 / np.sum(live) if shares_one_covariance(structure, n_features) else 1.0, 0.0)
        total = -0.5 * np.sum(blocks * (extra * log_det + trace))
        if prior.shrinkage > 0:
            diff = params.means - prior.mean
            quadratic = np.einsum("ki,kij,kj->k", diff, precisions, diff)
            total += -0.5 * np.sum(np.where(live, log_det + prior.shrinkage * quadratic, 0.0))
        return float(total)


def data_covariance(source: Any, row_weight: float = 1.0) -> np.ndarray:
    """The unbiased covariance of a data source's rows (weights as frequencies, ``row_weight`` that of one
    row), one pass."""
    from gaussmix.covariance import UNCONSTRAINED_STRUCTURE, get_structure

    full = get_structure(UNCONSTRAINED_STRUCTURE)
    stats = source.statistics(full, lambda data, start, stop, Xc: data.xp.ones((stop - start, 1), data.dtype), 1)
    stats = stats.to_numpy(source.xp) if not isinstance(stats.counts, np.ndarray) else stats
    total = float(stats.counts[0]) / row_weight
    scatter = full.layout.scatter(stats.counts, stats.first, stats.second)[0] / row_weight
    return scatter / max(total - 1.0, math.ulp(1.0) * total)
