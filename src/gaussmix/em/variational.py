"""Variational inference for a Bayesian Gaussian mixture (scikit-learn's ``BayesianGaussianMixture``).

The model (Bishop 2006, section 10.2; Blei and Jordan 2006 for the
Dirichlet process) puts a Dirichlet distribution, or a Dirichlet process
truncated at ``K`` components (stick-breaking Beta variables), on the
weights, and a Gaussian-Wishart distribution on each component's mean and
precision. Variational EM alternates, as EM does:

* E-step: responsibilities from the *expected* log-weights and log-densities
  under the current posterior. These have the form of a Gaussian mixture's
  (:class:`VariationalPosterior.kernel_terms`): the precision is its expected
  value ``nu_k W_k``, and the constant of each component gains
  ``E[log pi_k] + (E[log det Lambda_k] - d log nu_k - d / beta_k) / 2``; so
  the engines' kernels serve unchanged;
* M-step: the posterior's parameters from the summed statistics
  (:meth:`Variational.update`), the same statistics maximum likelihood uses.

The bound is the evidence lower bound up to constants, as scikit-learn
computes it (its total, not per row). Its entropy term ``-sum r log r`` is
obtained from the statistics too: ``sum_ik r_ik log p_ik`` is a function of
the counts, first and second moments under the E-step's terms, and
``sum_i log sum_k p_ik`` is the E-step's log-likelihood. The bound of an
iteration needs the posterior the M-step makes from it, so the loop asks for
it after the update (:attr:`Variational.bound_after_update`).

The arithmetic follows scikit-learn 1.9's, so that from the same start the
parameters and bounds are scikit-learn's up to rounding (``reg_covar`` is in
units of each feature's variance, as everywhere in gaussmix: on data of unit
variance it is scikit-learn's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, gammaln

from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.params import LOG_2PI, KernelTerms, MixtureParams
from gaussmix.em.prior import covariance_form
from gaussmix.em.scale import DataScale, singular_message
from gaussmix.em.statistics import Statistics

#: The weight priors: scikit-learn's names.
WEIGHT_PRIORS = ("dirichlet_process", "dirichlet_distribution")

#: The layouts scikit-learn's four structures store their covariances in: a matrix per component, one
#: shared matrix, a variance per feature and component, one variance per component.
MATRIX, SHARED, VECTOR, SCALAR = range(4)


def _kind(structure: CovarianceStructure, n_features: int) -> int:
    """Which of the four layouts ``structure`` has (the variational posterior is defined for these)."""
    if not structure.layout.per_component:
        return SHARED
    return {2: MATRIX, 1: VECTOR, 0: SCALAR}[covariance_form(structure, n_features)]


@dataclass(frozen=True)
class VariationalPrior:
    """The prior's hyper-parameters, resolved (scikit-learn's trailing-underscore attributes).

    ``covariance`` has the structure's shape for one component: (d, d) for
    "full" and "tied", (d,) for "diag", () for "spherical".
    """

    process: bool
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    dof: float
    covariance: np.ndarray


@dataclass(frozen=True)
class VariationalPosterior:
    """The variational posterior beyond what :class:`MixtureParams` holds.

    ``weight_concentration`` is ``(K,)`` (Dirichlet distribution) or the
    pair of the Beta variables' parameters ``((K,), (K,))`` (Dirichlet
    process); ``mean_precision`` is ``(K,)``; ``dof`` is ``(K,)``, or a
    float for "tied".
    """

    weight_concentration: Any
    mean_precision: np.ndarray
    dof: Any
    process: bool

    def expected_log_weights(self) -> np.ndarray:
        """``E[log pi_k]`` under the posterior."""
        if self.process:
            a, b = self.weight_concentration
            total = digamma(a + b)
            return digamma(a) - total + np.hstack((0.0, np.cumsum(digamma(b) - total)[:-1]))
        alpha = self.weight_concentration
        return digamma(alpha) - digamma(np.sum(alpha))

    def expected_weights(self) -> np.ndarray:
        """The weights' posterior means (scikit-learn's ``weights_``)."""
        if self.process:
            a, b = self.weight_concentration
            total = a + b
            weights = a / total * np.hstack((1.0, np.cumprod(b / total)[:-1]))
            return weights / np.sum(weights)
        return self.weight_concentration / np.sum(self.weight_concentration)

    def dofs(self, n_components: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.dof, dtype=np.float64), (n_components,))

    def log_norms(self, structure: CovarianceStructure, params: MixtureParams) -> np.ndarray:
        """Each component's constant in the E-step: the expected log-weight and half the expected log-determinant,
        less ``d / (2 beta_k)`` and ``d/2 log(2 pi)``."""
        n_components, d = params.means.shape
        dof = self.dofs(n_components)
        log_det = structure.layout.log_det_precision_cholesky(params.precisions_cholesky, d)
        log_lambda = d * math.log(2.0) + np.sum(digamma(0.5 * (dof - np.arange(d)[:, None])), axis=0)
        return (self.expected_log_weights() + log_det - 0.5 * d * np.log(dof) - 0.5 * d * LOG_2PI
                + 0.5 * (log_lambda - d / self.mean_precision))

    def kernel_terms(self, structure: CovarianceStructure, params: MixtureParams, shift: np.ndarray) -> KernelTerms:
        """The E-step's terms: a Gaussian mixture's with expected log-weights and log-determinants."""
        return KernelTerms(log_norm=self.log_norms(structure, params),
                           arrays=structure.layout.kernel_arrays(params, shift), shift=shift)


@dataclass(frozen=True)
class Variational:
    """The variational posterior of a Bayesian Gaussian mixture under ``prior`` (see the module docstring)."""

    structure: CovarianceStructure
    scale: DataScale
    prior: VariationalPrior
    #: the weight one row of the given data has in the source (its weights are the given ones times this):
    #: the prior is worth rows, so the statistics are brought back to the given weights' units
    row_weight: float = 1.0
    flat = False
    bound_after_update = True

    def kernel_terms(self, params: MixtureParams, shift: np.ndarray) -> KernelTerms:
        return params.posterior.kernel_terms(self.structure, params, shift)

    def update(self, stats: Statistics, previous: MixtureParams | None, groups: int | None = None,
               ) -> tuple[MixtureParams, tuple[int, ...]]:
        """The posterior from summed statistics, as scikit-learn's ``_m_step`` makes it."""
        structure, prior, layout = self.structure, self.prior, self.structure.layout
        stats = self._in_rows(stats)
        n_components, d = stats.first.shape
        kind = _kind(structure, d)
        counts = stats.counts
        nk = counts + 10.0 * np.finfo(np.float64).eps
        xk = (stats.first + counts[:, None] * stats.shift) / nk[:, None]
        scatter = layout.scatter(counts, stats.first, stats.second)
        reg = self.scale.reg
        if kind == SHARED:
            sk = scatter / np.sum(nk) + np.diag(reg)
        elif kind == MATRIX:
            sk = scatter / nk[:, None, None] + np.diag(reg)[None]
        elif kind == VECTOR:
            sk = scatter / nk[:, None] + reg
        else:  # spherical: the mean of the diagonal
            sk = scatter / (nk * d) + float(np.mean(reg))
        if prior.process:
            concentration = (1.0 + nk, prior.weight_concentration + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0)))
        else:
            concentration = prior.weight_concentration + nk
        mean_precision = prior.mean_precision + nk
        means = (prior.mean_precision * prior.mean + nk[:, None] * xk) / mean_precision[:, None]
        diff = xk - prior.mean
        if kind == MATRIX:
            dof = prior.dof + nk
            covariances = (prior.covariance[None] + nk[:, None, None] * sk
                           + (nk * prior.mean_precision / mean_precision)[:, None, None]
                           * diff[:, :, None] * diff[:, None, :]) / dof[:, None, None]
        elif kind == SHARED:
            dof = prior.dof + float(np.sum(nk)) / n_components
            covariances = (prior.covariance + sk * float(np.sum(nk)) / n_components
                           + prior.mean_precision / n_components * ((nk / mean_precision) * diff.T) @ diff) / dof
        elif kind == VECTOR:
            dof = prior.dof + nk
            covariances = (prior.covariance + nk[:, None] * (sk + (prior.mean_precision / mean_precision)[:, None]
                                                             * diff**2)) / dof[:, None]
        else:
            dof = prior.dof + nk
            covariances = (prior.covariance + nk * (sk + prior.mean_precision / mean_precision
                                                    * np.mean(diff**2, axis=1))) / dof
        posterior = VariationalPosterior(concentration, mean_precision, dof, prior.process)
        params = MixtureParams(posterior.expected_weights(), means, covariances,
                               layout.precisions_cholesky(covariances), posterior=posterior)
        return params, ()

    def bound(self, stats: Statistics, params: MixtureParams, new: MixtureParams | None = None) -> float:
        """The evidence lower bound (up to constants) of the E-step under ``params`` and the posterior ``new``
        the M-step made from its statistics."""
        new = params if new is None else new
        stats = self._in_rows(stats)
        layout = self.structure.layout
        n_components, d = new.means.shape
        entropy = stats.log_likelihood - self._expected_log_prob(stats, params)
        posterior = new.posterior
        dof = posterior.dofs(n_components)
        log_det = layout.log_det_precision_cholesky(new.precisions_cholesky, d) - 0.5 * d * np.log(dof)
        wishart = -(dof * log_det + dof * d * 0.5 * math.log(2.0)
                    + np.sum(gammaln(0.5 * (dof - np.arange(d)[:, None])), axis=0))
        shared = _kind(self.structure, d) == SHARED
        log_wishart = n_components * float(wishart[0]) if shared else float(np.sum(wishart))
        if posterior.process:
            log_norm_weight = -float(np.sum(betaln(*posterior.weight_concentration)))
        else:
            alpha = posterior.weight_concentration
            log_norm_weight = float(gammaln(np.sum(alpha)) - np.sum(gammaln(alpha)))
        return float(entropy - log_wishart - log_norm_weight
                     - 0.5 * d * float(np.sum(np.log(posterior.mean_precision))))

    def _in_rows(self, stats: Statistics) -> Statistics:
        return stats if self.row_weight == 1.0 else stats.scaled(1.0 / self.row_weight)

    def _expected_log_prob(self, stats: Statistics, params: MixtureParams) -> float:
        """``sum_i w_i sum_k r_ik log p_ik`` under the E-step's terms, from the statistics alone."""
        layout = self.structure.layout
        log_norm = params.posterior.log_norms(self.structure, params)
        counts = stats.counts
        scatter = layout.scatter(counts, stats.first, stats.second)
        precisions = layout.precisions(params.precisions_cholesky)
        quadratic = float(np.sum(precisions * scatter))  # sum_k tr(P_k S_k), whatever the layout
        safe = np.where(counts > 0, counts, 1.0)
        centres = stats.shift + stats.first / safe[:, None]
        for k in range(params.n_components):
            if counts[k] > 0:
                z = layout.whiten(params.precisions_cholesky, k, centres[k] - params.means[k])
                quadratic += counts[k] * float(np.sum(z * z))
        return float(np.sum(np.where(counts > 0, log_norm * counts, 0.0))) - 0.5 * quadratic

    def singular_message(self, components: tuple[int, ...] | None, where: str) -> str:
        return singular_message(self.structure, components, self.scale.reg_covar, where)

    def collapsed(self, params: MixtureParams) -> tuple[int, ...]:
        """None: as scikit-learn, the restart of the highest bound is kept (the prior keeps covariances apart
        from zero)."""
        return ()

    def prior_term(self, params: MixtureParams) -> float:
        return 0.0
