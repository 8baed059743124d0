"""What EM optimises: the model the loop drives.

The loop (:func:`gaussmix.em.loop.run_em`) alternates two steps and knows
nothing else about the model:

* E-step: a data source evaluates the kernels on every chunk with the
  model's :meth:`EMModel.kernel_terms` and sums the statistics of the
  resulting responsibilities;
* M-step: :meth:`EMModel.update` turns the summed statistics into new
  parameters, and :meth:`EMModel.bound` says what the iteration achieved.

:class:`MaximumLikelihood` is the Gaussian mixture fitted by maximum
likelihood. Its state is the data's scale (:class:`~gaussmix.em.scale.DataScale`),
which sets the regularisation; it is computed once, before EM, and never
recomputed from the rows inside the loop, so a model can also be built
for data that arrive in batches. Other models are further classes with the
same methods: maximum a posteriori adds a prior's pseudo-statistics before
the estimate (its ``update``); a variational posterior puts expected values
in the kernel terms and has its own update and bound.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from gaussmix._threads import blas_for_matrices
from gaussmix.covariance._linalg import SingularCovarianceError
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.params import KernelTerms, MixtureParams, kernel_terms
from gaussmix.em.scale import (
    DataScale,
    beyond_rounding,
    collapsed_components,
    singular_components,
    singular_message,
)
from gaussmix.em.statistics import Statistics

#: A component whose total responsibility falls to this fraction of the total
#: sample weight or below is dropped (see :class:`gaussmix.exceptions.EmptyComponentWarning`).
EMPTY_COMPONENT_FRACTION = 1e-12


class EMModel(Protocol):
    """The strategy :func:`~gaussmix.em.loop.run_em` drives."""

    structure: CovarianceStructure
    scale: DataScale

    def kernel_terms(self, params: MixtureParams, shift: np.ndarray) -> KernelTerms:
        """What the E-step kernels need for ``params``, rows centred at ``shift`` (host float64)."""

    def update(
        self, stats: Statistics, previous: MixtureParams | None
    ) -> tuple[MixtureParams, tuple[int, ...]]:
        """The M-step: new parameters and the components it dropped.

        Raises :class:`~gaussmix.covariance.SingularCovarianceError` when it
        cannot produce usable covariances.
        """

    #: whether the objective is the log-likelihood alone (else :meth:`prior_term` adds to it)
    flat: bool
    #: whether :meth:`bound` takes the M-step's result too (``bound(stats, params, new)``), asked after it
    bound_after_update: bool

    def bound(self, stats: Statistics, params: MixtureParams) -> float:
        """The objective of ``params`` (the parameters that produced ``stats`` in the E-step)."""

    def prior_term(self, params: MixtureParams) -> float:
        """What the objective adds to the weighted log-likelihood of ``params`` (a prior's log density)."""

    def singular_message(self, components: tuple[int, ...] | None, where: str) -> str:
        """What a failed M-step means and what to change."""

    def collapsed(self, params: MixtureParams) -> tuple[int, ...]:
        """Components of a final fit that collapsed (see :func:`~gaussmix.em.scale.collapsed_components`)."""


@dataclass(frozen=True)
class MaximumLikelihood:
    """A Gaussian mixture fitted by maximum likelihood (regularised by ``scale.reg``).

    The bound is the weighted mean log-likelihood per sample. With
    ``equal_proportions`` (mclust's ``equalPro``) the weights are not
    estimated: the live components of a mixture share its weight equally.
    """

    structure: CovarianceStructure
    scale: DataScale
    equal_proportions: bool = False
    #: ``-log V``: a uniform noise component over a region of volume ``V`` fitted with the Gaussians (its
    #: weight is what theirs leave of 1), or None
    noise: float | None = None

    def kernel_terms(self, params: MixtureParams, shift: np.ndarray) -> KernelTerms:
        if self.noise is not None and params.noise != self.noise:
            params = replace(params, noise=self.noise)
        terms = kernel_terms(self.structure, params, shift)
        if beyond_rounding(self.structure, params, self.scale):  # float32 would lose a direction: in float64
            terms = replace(terms, in_float64=True)
        return terms

    def update(
        self, stats: Statistics, previous: MixtureParams | None, groups: int | None = None
    ) -> tuple[MixtureParams, tuple[int, ...]]:
        """New parameters from statistics; returns them and the newly dropped components.

        A component with (almost) no responsibility keeps its previous mean
        and covariance (axis-aligned data-scale covariances when there is
        none) and gets weight 0.

        With ``groups`` given, the components are that many mixtures of
        equal size (as the E-step's groups, :mod:`gaussmix.em.batch`), whose
        weights sum to 1 within each. With a shared layout, ``stats.second``
        then holds one pooled second moment per mixture, and the parameters
        (``previous`` and the result) one covariance per mixture, stacked
        (even for one mixture).

        Raises
        ------
        SingularCovarianceError
            If a covariance is not positive definite, or (with a
            regularisation below rounding noise) is zero in some direction
            up to rounding. With groups and a shared layout, it names the
            mixtures whose covariance failed.
        """
        with blas_for_matrices(stats.first.shape[-1]):
            return self._update(stats, previous, groups)

    def _update(self, stats, previous, groups):
        structure, scale, layout = self.structure, self.scale, self.structure.layout
        n_components = stats.counts.shape[0]
        grouped = groups is not None and not layout.per_component
        groups = 1 if groups is None else groups
        size = n_components // groups
        empty = stats.counts <= EMPTY_COMPONENT_FRACTION * stats.total_weight
        counts = np.where(empty, 0.0, stats.counts)
        before = None if previous is None else previous.covariances
        if grouped or (structure.couples and groups > 1):  # each mixture estimated apart
            parts = [slice(g * size, (g + 1) * size) for g in range(groups)]
            if grouped:  # one shared covariance per mixture
                pieces = [self._estimates(Statistics(stats.shift, stats.counts[part], stats.first[part],
                                                     stats.second[g], 0.0, stats.total_weight),
                                          empty[part], None if before is None else before[g])
                          for g, part in enumerate(parts)]
            else:
                pieces = [self._estimates(stats.part(part), empty[part], None if before is None else before[part])
                          for part in parts]
            means = np.concatenate([piece[0] for piece in pieces])
            covariances = (np.stack if grouped else np.concatenate)([piece[1] for piece in pieces])
            stored = layout.expanded if grouped else layout
        else:
            means, covariances = self._estimates(stats, empty, before)
            stored = layout
        if np.any(empty):
            if previous is not None:
                means = np.where(empty[:, None], previous.means, means)
                source = previous.covariances
            else:
                source = layout.default_covariances(scale.scale + scale.reg, n_components)
            covariances = layout.replace_components(covariances, source, empty)
        shares = (counts > 0).astype(float) if self.equal_proportions else counts
        sums = np.sum(shares.reshape(groups, size), axis=1)
        # (a mixture whose components are all empty can only be one beside a noise component that owns every row)
        weights = (shares.reshape(groups, size) / np.where(sums > 0, sums, 1.0)[:, None]).reshape(-1)
        if self.noise is not None:  # the rows the noise does not own share the Gaussians' weight
            weights = weights * min(1.0, float(np.sum(counts)) / stats.total_weight)
        precisions_cholesky = stored.precisions_cholesky(covariances)
        params = MixtureParams(weights, means, covariances, precisions_cholesky, self.noise)
        if stored is layout:
            singular = singular_components(structure, params, scale)
        else:
            singular = tuple(g for g in range(groups) if singular_components(
                structure, _group(params, g, size), scale) is None)
        if singular != ():
            raise SingularCovarianceError(singular)
        was_alive = np.ones(n_components, bool) if previous is None else previous.weights > 0
        newly = tuple(int(k) for k in np.flatnonzero(empty & was_alive))
        return params, newly

    def _estimates(self, stats: Statistics, empty: np.ndarray, before: np.ndarray | None,
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The means and covariances of one mixture's live components from its statistics (``empty``: the others,
        whose entries are replaced afterwards)."""
        counts = np.where(empty, 0.0, stats.counts)
        first = np.where(empty[:, None], 0.0, stats.first)
        means = stats.shift + first / np.where(empty, 1.0, counts)[:, None]
        return means, self.structure.covariances(counts, first, stats.second, self.scale.reg, before)

    #: whether the objective is the likelihood alone (no prior term: see :meth:`prior_term`)
    flat = True
    #: whether :meth:`bound` needs the M-step's result (the loop then asks for it after the update)
    bound_after_update = False

    def prior_term(self, params: MixtureParams) -> float:
        """What the objective adds to the weighted log-likelihood of ``params`` (0: none; a prior's log density
        in a posterior model)."""
        return 0.0

    def bound(self, stats: Statistics, params: MixtureParams) -> float:
        return (stats.log_likelihood + self.prior_term(params)) / stats.total_weight

    def singular_message(self, components: tuple[int, ...] | None, where: str) -> str:
        return singular_message(self.structure, components, self.scale.reg_covar, where)

    def collapsed(self, params: MixtureParams) -> tuple[int, ...]:
        return collapsed_components(self.structure, params, self.scale)


def _group(params: MixtureParams, group: int, size: int) -> MixtureParams:
    """Mixture ``group`` of parameters holding several of ``size`` components, each with a shared covariance."""
    part = slice(group * size, (group + 1) * size)
    return MixtureParams(params.weights[part], params.means[part], params.covariances[group],
                         params.precisions_cholesky[group])
