"""What a storage layout is: the contract every layout fulfils.

A *layout* is how a mixture's covariances are stored and computed with,
whatever constrains them: one matrix per component, one shared matrix,
one diagonal per component, one shared diagonal, one scalar per component.
It knows

* the shape of ``covariances_`` / ``precisions_cholesky_`` and of its
  second-moment statistic, and how many free entries it stores;
* the kernels, written against an explicit array namespace ``xp``: the
  squared Mahalanobis distances of centred rows and the second-moment
  statistic of responsibility-weighted rows (both through the rows' *row
  terms*, the per-row quantities they share, such as the quadratic
  products of a row's features);
* the centred scatter that the statistics describe, and how the statistic
  moves to another shift;
* conversions between covariances, precisions and precision Cholesky
  factors, log-determinants, marginals, checks and sampling (NumPy float64
  on the host: these arrays are small).

A covariance *structure* (:class:`~gaussmix.covariance.CovarianceStructure`)
is a layout plus an estimate: what the M-step makes of the scatter.

Conventions (scikit-learn's): ``precisions_cholesky`` holds, per component,
a matrix ``U`` with ``U @ U.T == precision``; the M-step produces the
upper-triangular one. Variance layouts hold ``1 / sqrt(var)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from gaussmix._compiled import compiled
from gaussmix._namespace import ArrayNamespace
from gaussmix.covariance._linalg import (
    SingularCovarianceError,
    check_matrix_precisions,
    cholesky_lower,
    inverse_lower,
    symmetrize,
    upper_cholesky_of,
)
from gaussmix.covariance._loops import factorless


class Layout(ABC):
    """How covariances are stored, and the kernels and conversions that go with the storage."""

    #: short name ("full", "shared", "diagonal", "shared-diagonal", "scalar")
    name: ClassVar[str]
    #: whether covariances are general matrices (rounding then spreads over all d directions)
    is_matrix: ClassVar[bool] = False
    #: whether each component has its own covariance (False: one shared by all)
    per_component: ClassVar[bool] = True
    #: whether :meth:`second_moment` depends on the responsibilities only through each row's total over the
    #: components (a shared matrix's pooled moment): it is then :meth:`rows_second_moment` of the rows'
    #: weights wherever the responsibilities are normalised, the same in every EM iteration
    second_of_row_totals: ClassVar[bool] = False

    @property
    def expanded(self) -> Layout | None:
        """For a shared layout, the per-component layout that holds its covariance once per component.

        Several mixtures, each with its own shared covariance, are then one
        set of components of that layout (their stored arrays repeated along
        a leading component axis), evaluated together
        (:mod:`gaussmix.em.batch`); :meth:`pooled_second` turns the
        statistics back. None for a per-component layout.
        """
        return None

    def pooled_second(self, second: np.ndarray) -> np.ndarray:
        """A shared layout's second moment from the per-component ones of :attr:`expanded` (their sum over
        the components, the last axis but one: leading axes are kept)."""
        raise NotImplementedError(f"the {self.name} layout is not shared")

    # -- shapes ----------------------------------------------------------------
    @abstractmethod
    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""

    @abstractmethod
    def statistic_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of :meth:`second_moment`'s result."""

    @abstractmethod
    def free_entries(self, n_components: int, n_features: int) -> int:
        """Distinct entries the stored covariances have (an upper bound on any structure's parameters)."""

    # -- kernels (array namespace xp) ----------------------------------------------
    # Rows arrive transposed and centred at a fixed shift ``c`` (the data
    # mean): ``Xt`` has shape (d, m). Keeping one shift for every component
    # turns the work into matrix products; statistics stay additive across
    # chunks and iterations.
    def row_terms_width(self, n_features: int, n_components: int) -> int:
        """Rows of :meth:`row_terms`' result per data row (sizes the chunks)."""
        return n_features

    @abstractmethod
    def row_terms(self, xp: ArrayNamespace, Xt: Any, n_components: int) -> Any:
        """Per-chunk quantities of the rows shared by :meth:`mahalanobis` and :meth:`second_moment` (None
        where the kernels need none: see :meth:`has_row_terms`).

        They depend on the rows alone, not on the parameters: a data source
        may keep them from one E-step to the next (kernels never write into
        them).
        """

    def has_row_terms(self, n_features: int, n_components: int) -> bool:
        """Whether :meth:`row_terms` are an array for this many features and components (else None)."""
        return True

    @abstractmethod
    def kernel_arrays(self, params: Any, shift: np.ndarray) -> dict[str, np.ndarray]:
        """Host float64 arrays the kernels need for ``params``, rows centred at ``shift``."""

    @abstractmethod
    def mahalanobis(self, xp: ArrayNamespace, Xt: Any, row_terms: Any, arrays: dict[str, Any]) -> Any:
        """Squared Mahalanobis distances, shape ``(K, m)``."""

    @abstractmethod
    def second_moment(self, xp: ArrayNamespace, Xt: Any, row_terms: Any, resp: Any) -> Any:
        """The layout's second-moment statistic of the rows about the shift.

        ``resp`` has shape ``(K, m)`` and already includes the sample
        weights. The result adds across chunks of rows.
        """

    def rows_second_moment(self, xp: ArrayNamespace, Xt: Any, weights: Any) -> Any:
        """:meth:`second_moment` of responsibilities whose sum over the components is each row's weight
        (``weights``: ``(m,)`` in ``Xt``'s dtype, or None for ones); only where :attr:`second_of_row_totals`."""
        raise NotImplementedError(f"the {self.name} layout's second moment depends on each responsibility")

    def moments(self, xp: ArrayNamespace, Xt: Any, row_terms: Any, resp: Any) -> tuple[Any, Any, Any]:
        """A chunk's counts ``(K,)``, first moments ``(K, d)`` and :meth:`second_moment` under ``resp``.

        Counts are summed in float64. The first moments are taken as
        ``(Xt resp')'``: a product with the long row axis inside, which BLAS
        runs about twice as fast as ``resp Xt'`` on these shapes.
        """
        counts, first = Layout.counts_and_first(self, xp, Xt, row_terms, resp)
        return counts, first, self.second_moment(xp, Xt, row_terms, resp)

    def counts_and_first(self, xp: ArrayNamespace, Xt: Any, row_terms: Any, resp: Any) -> tuple[Any, Any]:
        """A chunk's counts ``(K,)``, summed in float64, and first moments ``(K, d)`` under ``resp``: the
        moments without the second (see :meth:`moments`)."""
        return xp.sum(xp.to_float64(resp), axis=1), xp.transpose_last(xp.matmul(Xt, xp.transpose_last(resp)))

    # -- statistics (NumPy float64) ------------------------------------------------
    @abstractmethod
    def scatter(self, counts: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The centred scatter the statistics describe, in the layout's natural shape.

        ``sum_i r_ik (x_i - mean_k)(x_i - mean_k)'`` for each component (as
        the layout reduces it: a matrix, its diagonal, its trace, or the sum
        over components for a shared layout); components with ``counts == 0``
        give zeros.
        """

    @abstractmethod
    def recentre_second(
        self, second: np.ndarray, first: np.ndarray, counts: np.ndarray, delta: np.ndarray
    ) -> np.ndarray:
        """The second-moment statistic about ``shift - delta`` from the one about ``shift``.

        With ``x - c' = (x - c) + delta``: ``S' = S + F delta' + delta F' + n delta delta'``,
        reduced as the layout reduces its statistic.
        """

    # -- conversions (NumPy float64) ---------------------------------------------
    @abstractmethod
    def precisions_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """Precision Cholesky factors; raises :class:`SingularCovarianceError`."""

    @abstractmethod
    def precisions_cholesky_from_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Precision Cholesky factors from precisions."""

    @abstractmethod
    def precisions(self, precisions_cholesky: np.ndarray) -> np.ndarray:
        """Precisions from their Cholesky factors."""

    @abstractmethod
    def covariances_from_precisions_cholesky(self, precisions_cholesky: np.ndarray) -> np.ndarray:
        """Covariances from precision Cholesky factors."""

    @abstractmethod
    def log_det_precision_cholesky(self, precisions_cholesky: np.ndarray, n_features: int) -> np.ndarray:
        """``log det U`` per component, shape (K,) (broadcastable for a shared one)."""

    @abstractmethod
    def full_covariances(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        """Covariances expanded to ``(K, d, d)`` matrices (for plots and sampling)."""

    @abstractmethod
    def marginal_covariances(self, covariances: np.ndarray, features: list[int]) -> np.ndarray:
        """Covariances of the chosen features only (same layout, fewer features)."""

    @abstractmethod
    def default_covariances(self, variances: np.ndarray, n_components: int) -> np.ndarray:
        """Axis-aligned covariances with per-feature ``variances``, in this layout's shape."""

    @abstractmethod
    def whiten(self, precisions_cholesky: np.ndarray, k: int, diff: np.ndarray) -> np.ndarray:
        """``diff`` (m, d) in component ``k``'s whitened coordinates: ``|result|^2`` per row is its Mahalanobis term."""

    def replace_components(self, covariances: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``covariances`` with the components in ``mask`` taken from ``source`` (a shared one is unchanged)."""
        if not self.per_component:
            return covariances
        out = covariances.copy()
        out[mask] = source[mask]
        return out

    def take_components(self, covariances: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """The covariances of the components ``keep`` (a shared one is unchanged)."""
        return covariances[keep] if self.per_component else covariances.copy()

    # -- checks ------------------------------------------------------------------
    @abstractmethod
    def conditional_variances(self, covariances: np.ndarray, precisions_cholesky: np.ndarray) -> np.ndarray:
        """Variance of each feature given the others: ``(K, d)``, or ``(1, d)`` for a shared covariance.

        For a matrix it is ``1 / precision[j, j]``: at least the smallest
        eigenvalue and at most ``d`` times it, so it finds a singular
        direction at the cost of the precision factors themselves.
        """

    @abstractmethod
    def collapsed(
        self, covariances: np.ndarray, reg: np.ndarray, units: np.ndarray, thresholds: np.ndarray
    ) -> np.ndarray:
        """Per component, whether its variance without ``reg`` is at most its threshold in some direction.

        ``units`` (d,) is the standard deviation each feature is measured in;
        features with unit 0 are left out (directions within the other
        features only). ``thresholds`` has shape (K,); the result too.
        """

    @abstractmethod
    def check_covariance_values(self, covariances: np.ndarray) -> None:
        """Raise ValueError unless ``covariances`` (of the right shape) are symmetric positive definite."""

    @abstractmethod
    def check_precision_values(self, precisions: np.ndarray, structure: str, name: str) -> None:
        """Raise ValueError unless ``precisions`` (of the right shape) are valid precisions."""

    # -- sampling ----------------------------------------------------------------
    def sample(
        self, rng: np.random.RandomState, means: np.ndarray, covariances: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        """Draw ``counts[k]`` rows from component ``k``, concatenated in component order."""
        n_components, n_features = means.shape
        factors = np.linalg.cholesky(self.full_covariances(covariances, n_components, n_features))
        blocks = [
            means[k] + rng.standard_normal(size=(int(n), n_features)) @ factors[k].T
            for k, n in enumerate(counts)
        ]
        return np.concatenate(blocks, axis=0) if blocks else np.empty((0, n_features))

    def __repr__(self) -> str:
        return f"<covariance layout {self.name!r}>"


class MatrixLayout(Layout):
    """Layouts whose covariances are general matrices, one per component or shared.

    The conversions act on the last two axes, so they serve ``(K, d, d)`` and
    ``(d, d)`` arrays alike.
    """

    is_matrix = True

    def whiten(self, precisions_cholesky, k, diff):
        factor = precisions_cholesky if precisions_cholesky.ndim == 2 else precisions_cholesky[k]
        return diff @ factor

    def conditional_variances(self, covariances, precisions_cholesky):
        batch = precisions_cholesky.reshape((-1,) + precisions_cholesky.shape[-2:])
        with np.errstate(divide="ignore"):
            return 1.0 / np.sum(batch * batch, axis=-1)

    def collapsed(self, covariances, reg, units, thresholds):
        # The spread S is below t in some direction iff S - t I has no Cholesky factor.
        keep = np.flatnonzero(units > 0)
        batch = covariances.reshape((-1,) + covariances.shape[-2:])[:, keep][:, :, keep]
        spread = (batch - np.diag(reg[keep])) / np.outer(units[keep], units[keep])
        shared = batch.shape[0] != thresholds.shape[0]
        limits = np.array([np.max(thresholds)]) if shared else np.asarray(thresholds)
        shifted = symmetrize(spread) - limits[:, None, None] * np.eye(keep.size)
        flags = without_cholesky(shifted)
        return np.broadcast_to(flags, thresholds.shape)  # a shared matrix counts for every component

    def check_covariance_values(self, covariances):
        batch = covariances.reshape((-1,) + covariances.shape[-2:])
        for k, matrix in enumerate(batch):
            scale = max(float(np.max(np.abs(matrix))), np.finfo(float).tiny)
            if not np.allclose(matrix, matrix.T, rtol=1e-7, atol=1e-10 * scale):
                raise ValueError(f"covariance of component {k} is not symmetric")
        try:
            cholesky_lower(covariances)
        except SingularCovarianceError as exc:
            which = "the shared covariance" if exc.components is None else (
                "covariance of component " + ", ".join(str(k) for k in exc.components)
            )
            raise ValueError(f"{which} is not symmetric positive definite") from None

    def check_precision_values(self, precisions, structure, name):
        check_matrix_precisions(precisions, structure)

    def precisions_cholesky(self, covariances):
        return np.swapaxes(inverse_lower(cholesky_lower(covariances)), -1, -2)

    def precisions_cholesky_from_precisions(self, precisions):
        return upper_cholesky_of(precisions)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky @ np.swapaxes(precisions_cholesky, -1, -2)

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        # (U U^T)^-1 = U^-T U^-1, and U^T is lower triangular.
        inv_upper_t = inverse_lower(np.swapaxes(precisions_cholesky, -1, -2))
        return symmetrize(inv_upper_t @ np.swapaxes(inv_upper_t, -1, -2))

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return np.sum(np.log(np.diagonal(precisions_cholesky, axis1=-2, axis2=-1)), axis=-1)


class VarianceLayout(Layout):
    """Axis-aligned layouts whose covariances are stored as variances."""

    def check_covariance_values(self, covariances):
        if np.any(covariances <= 0):
            rows = covariances.reshape(covariances.shape[0] if self.per_component else 1, -1)
            k = int(np.flatnonzero(np.any(rows <= 0, axis=1))[0])
            which = f"covariance of component {k}" if self.per_component else "the shared covariance"
            raise ValueError(f"{which} is not positive (variances must be > 0)")

    def check_precision_values(self, precisions, structure, name):
        if np.any(precisions <= 0):
            raise ValueError(
                f"'{structure} precision' should be positive. In gaussmix: {name} holds inverse variances, "
                f"which must be > 0; its minimum is {precisions.min():.3g}."
            )

    def precisions_cholesky(self, covariances):
        bad = ~(np.isfinite(covariances) & (covariances > 0))
        if np.any(bad):
            if not self.per_component:
                raise SingularCovarianceError(None)
            rows = np.any(bad.reshape(bad.shape[0], -1), axis=1)
            raise SingularCovarianceError(tuple(int(k) for k in np.flatnonzero(rows)))
        return 1.0 / np.sqrt(covariances)

    def precisions_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky**2

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        return 1.0 / precisions_cholesky**2


def without_cholesky(matrices: np.ndarray) -> np.ndarray:
    """Which of a stack of matrices have no Cholesky factor.

    Where numba is installed, one compiled loop factors each matrix of up
    to :data:`_COMPILED_MAX_FEATURES` rows (:func:`~gaussmix.covariance._loops.factorless`).
    Otherwise all at once; where some have none, the factorisation runs
    column by column across the whole stack (a few array operations per
    column) for small matrices, and for larger ones each half of the stack
    in turn (a few calls for the one or two that usually have none among
    many). The same decisions as factoring each matrix alone, up to rounding.
    """
    loop = compiled(factorless) if matrices.shape[-1] <= _COMPILED_MAX_FEATURES else None
    if loop is not None:
        flags = np.empty(matrices.shape[0], bool)
        loop(np.ascontiguousarray(matrices, dtype=np.float64), flags)
        return flags
    try:
        np.linalg.cholesky(matrices)
        return np.zeros(matrices.shape[0], bool)
    except np.linalg.LinAlgError:
        if matrices.shape[0] == 1:
            return np.ones(1, bool)
    if matrices.shape[-1] <= _COLUMNWISE_MAX_FEATURES:
        return _failed_pivots(matrices)
    half = matrices.shape[0] // 2
    return np.concatenate([without_cholesky(matrices[:half]), without_cholesky(matrices[half:])])


#: Up to this many features, :func:`without_cholesky` factors a stack column by column.
_COLUMNWISE_MAX_FEATURES = 16
#: Up to this many features, it factors each matrix in a compiled loop where numba is installed.
_COMPILED_MAX_FEATURES = 64


def _failed_pivots(matrices: np.ndarray) -> np.ndarray:
    """Which matrices of the stack meet a pivot that is not positive in the Cholesky factorisation, made
    column by column for all of them at once (a NaN pivot does not count, as in LAPACK's factorisation)."""
    n, d = matrices.shape[0], matrices.shape[-1]
    lower = np.zeros((n, d, d))
    failed = np.zeros(n, bool)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(d):
            row = lower[:, j, :j]
            pivot = matrices[:, j, j] - np.einsum("nk,nk->n", row, row)
            failed |= pivot <= 0.0
            root = np.sqrt(np.where(failed, 1.0, pivot))
            lower[:, j, j] = root
            below = matrices[:, j + 1:, j] - np.einsum("nik,nk->ni", lower[:, j + 1:, :j], row)
            lower[:, j + 1:, j] = below / root[:, None]
    return failed
