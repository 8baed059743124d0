"""What a covariance structure is: the contract every structure module fulfils.

A structure knows

* the shapes of its ``covariances_`` / ``precisions_cholesky_`` arrays and its
  number of free parameters;
* two kernels, written against an explicit array namespace ``xp``: the squared
  Mahalanobis distances of centred rows, and the second-moment sufficient
  statistic of responsibility-weighted centred rows (its shape is the
  structure's own: a matrix per component, one pooled matrix, a diagonal per
  component, or a scalar per component);
* its M-step from summed statistics, and the conversions between covariances,
  precisions and precision Cholesky factors (NumPy float64 on the host: these
  arrays are small);
* how to draw samples and how to check user-given precisions.

Nothing outside a structure module branches on the structure's name.

Conventions (the same as scikit-learn's): ``precisions_cholesky`` holds, per
component, a matrix ``U`` with ``U @ U.T == precision``; the M-step produces the
upper-triangular one. For ``diag`` and ``spherical`` it holds ``1 / sqrt(var)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from gaussmix._namespace import ArrayNamespace
from gaussmix._validation import finite_array


class SingularCovarianceError(ArithmeticError):
    """Internal: covariance matrices that are not positive definite.

    Carries the indices of the offending components (``None`` for a shared
    covariance); the EM driver turns it into a :class:`gaussmix.exceptions.FitError`
    whose message says what to change.
    """

    def __init__(self, components: tuple[int, ...] | None):
        self.components = components
        super().__init__(f"singular covariance in components {components}")


def safe_counts(counts: np.ndarray) -> np.ndarray:
    """Counts with zeros replaced by 1, for divisions whose numerators are 0 there."""
    return np.where(counts > 0, counts, 1.0)


def symmetrize(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def cholesky_lower(covariances: np.ndarray) -> np.ndarray:
    """Batched lower Cholesky factor; raises SingularCovarianceError naming the failures."""
    batch = covariances.reshape((-1,) + covariances.shape[-2:])
    if not np.all(np.isfinite(batch)):
        bad = tuple(int(k) for k in np.flatnonzero(~np.all(np.isfinite(batch), axis=(1, 2))))
        raise SingularCovarianceError(bad if covariances.ndim == 3 else None)
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        bad = []
        for k, matrix in enumerate(batch):
            try:
                np.linalg.cholesky(matrix)
            except np.linalg.LinAlgError:
                bad.append(k)
        raise SingularCovarianceError(tuple(bad) if covariances.ndim == 3 else None) from None


def inverse_lower(lower: np.ndarray) -> np.ndarray:
    """Inverse of (a batch of) lower-triangular matrices, lower-triangular.

    LAPACK's triangular inverse, one matrix at a time, is 3-5 times faster
    than a general inverse from 8 features on; for smaller matrices NumPy's
    batched inverse runs the whole batch in compiled code (SciPy's batched
    triangular solve loops in Python, 20 times slower); the exact zeros
    above the diagonal are restored.
    """
    if lower.shape[-1] < 8 or lower.dtype != np.float64:
        return np.tril(np.linalg.inv(lower))
    from scipy.linalg.lapack import dtrtri

    batch = lower.reshape((-1,) + lower.shape[-2:])
    out = np.empty_like(batch)
    for k, matrix in enumerate(batch):
        out[k], info = dtrtri(matrix, lower=1)
        if info != 0:
            raise SingularCovarianceError((k,) if lower.ndim == 3 else None)
    return np.tril(out.reshape(lower.shape))


def upper_cholesky_of(precisions: np.ndarray) -> np.ndarray:
    """Upper-triangular ``U`` with ``U @ U.T == precisions`` (batched).

    Reversing rows and columns turns the lower Cholesky factor of the reversed
    matrix into the upper factor of the original one.
    """
    flipped = precisions[..., ::-1, ::-1]
    return np.ascontiguousarray(cholesky_lower(flipped)[..., ::-1, ::-1])


def check_matrix_precisions(precisions: np.ndarray, structure: str) -> None:
    """Raise ValueError unless every matrix in ``precisions`` is symmetric positive definite."""
    batch = precisions.reshape((-1,) + precisions.shape[-2:])
    for k, matrix in enumerate(batch):
        where = f" (component {k})" if precisions.ndim == 3 else ""
        scale = max(float(np.max(np.abs(matrix))), np.finfo(float).tiny)
        if not np.allclose(matrix, matrix.T, rtol=1e-7, atol=1e-10 * scale):
            problem = f"is not symmetric: max |P - P.T| = {np.max(np.abs(matrix - matrix.T)):.3g}"
        else:
            try:
                np.linalg.cholesky(matrix)
                continue
            except np.linalg.LinAlgError:
                problem = f"is not positive definite: smallest eigenvalue {np.min(np.linalg.eigvalsh(matrix)):.3g}"
        raise ValueError(
            f"'{structure} precision' should be symmetric, positive-definite. In gaussmix: the "
            f"precisions_init matrix{where} {problem}; pass inverses of valid covariance matrices."
        )


class CovarianceStructure(ABC):
    """One covariance structure (``full``, ``tied``, ``diag``, ``spherical``, ...)."""

    #: registry name, the value users pass as ``covariance_type``
    name: ClassVar[str]
    #: one-line description used in error messages and documentation
    description: ClassVar[str]

    # -- shapes and counts -------------------------------------------------
    @abstractmethod
    def covariance_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""

    @abstractmethod
    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free parameters in the covariances."""

    # -- kernels (array namespace xp) ---------------------------------------
    # Rows arrive transposed and centred at a fixed shift ``c`` (the data
    # mean): ``Xt`` has shape (d, m). Keeping one shift for every component
    # turns the work into matrix products; statistics stay additive across
    # chunks and iterations.
    @abstractmethod
    def kernel_arrays(self, params: Any, shift: np.ndarray) -> dict[str, np.ndarray]:
        """Host float64 arrays the kernels need for ``params``, rows centred at ``shift``."""

    def feature_width(self, n_features: int, n_components: int) -> int:
        """Rows of :meth:`features`' result per data row (sizes the chunks)."""
        return n_features

    @abstractmethod
    def features(self, xp: ArrayNamespace, Xt: Any, n_components: int) -> Any:
        """Per-chunk quantities shared by :meth:`mahalanobis` and :meth:`second_moment`."""

    @abstractmethod
    def mahalanobis(self, xp: ArrayNamespace, Xt: Any, features: Any, arrays: dict[str, Any]) -> Any:
        """Squared Mahalanobis distances, shape ``(K, m)``."""

    @abstractmethod
    def second_moment(self, xp: ArrayNamespace, Xt: Any, features: Any, resp: Any) -> Any:
        """The structure's second-moment statistic of the rows about the shift.

        ``resp`` has shape ``(K, m)`` and already includes the sample
        weights. The result adds across chunks of rows.
        """

    @abstractmethod
    def second_moment_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of :meth:`second_moment`'s result."""

    # -- M-step and conversions (NumPy float64) -----------------------------
    @abstractmethod
    def covariances(
        self, counts: np.ndarray, first: np.ndarray, second: np.ndarray, reg: np.ndarray
    ) -> np.ndarray:
        """Covariances from statistics about a shift.

        ``counts`` (K,), ``first`` (K, d) and ``second`` are sums of weighted
        responsibilities, of shifted rows and of the second moment, all taken
        about the same shift; components with ``counts == 0`` give
        placeholder values. ``reg`` (d,) is added to each feature's variance.
        """

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
        """Covariances of the chosen features only (same structure, fewer features)."""

    @abstractmethod
    def default_covariances(self, variances: np.ndarray, n_components: int) -> np.ndarray:
        """Axis-aligned covariances with per-feature ``variances``, in this structure's shape."""

    @abstractmethod
    def _check_precision_values(self, precisions: np.ndarray, name: str) -> None:
        """Raise ValueError unless ``precisions`` (of the right shape) are valid precisions."""

    @abstractmethod
    def whiten(self, precisions_cholesky: np.ndarray, k: int, diff: np.ndarray) -> np.ndarray:
        """``diff`` (m, d) in component ``k``'s whitened coordinates: ``|result|^2`` per row is its Mahalanobis term."""

    # -- degeneracy checks (cost of the structure's own parameters) --------------
    #: whether covariances are general matrices (rounding then spreads over all d directions)
    is_matrix: ClassVar[bool] = False

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

    # -- shared behaviour ----------------------------------------------------
    def check_precisions(self, precisions: Any, n_components: int, n_features: int) -> np.ndarray:
        """Validate user-given precisions; return them as float64 or raise ValueError."""
        name = "precisions_init"
        array = finite_array(precisions, name)
        self._check_shape(array, self.covariance_shape(n_components, n_features), name)
        self._check_precision_values(array, name)
        return array

    def replace_components(
        self, covariances: np.ndarray, source: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        """``covariances`` with the components in ``mask`` taken from ``source``.

        A shared covariance has no per-component part; its structure returns
        it unchanged.
        """
        out = covariances.copy()
        out[mask] = source[mask]
        return out

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

    def _check_shape(self, array: np.ndarray, expected: tuple[int, ...], name: str) -> None:
        if array.shape != expected:
            from gaussmix._validation import shape_message

            raise ValueError(shape_message(f"{self.name} precision", expected, array.shape,
                                           f"that of covariances_ for covariance_type={self.name!r} ({name})"))

    def __repr__(self) -> str:
        return f"<covariance structure {self.name!r}: {self.description}>"


class MatrixStructure(CovarianceStructure):
    """Structures whose covariances are general matrices, one per component or shared.

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
        limits = [np.max(thresholds)] if shared else thresholds
        identity = np.eye(keep.size)
        flags = []
        for matrix, limit in zip(spread, limits):
            try:
                np.linalg.cholesky(symmetrize(matrix) - limit * identity)
                flags.append(False)
            except np.linalg.LinAlgError:
                flags.append(True)
        return np.broadcast_to(np.array(flags), thresholds.shape)  # a shared matrix counts for every component

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

    def precisions_cholesky(self, covariances):
        return np.swapaxes(inverse_lower(cholesky_lower(covariances)), -1, -2)

    def precisions_cholesky_from_precisions(self, precisions):
        return upper_cholesky_of(precisions)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky @ np.swapaxes(precisions_cholesky, -1, -2)

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        # (U U^T)^-1 = U^-T U^-1, and U^T is lower triangular.
        inv_upper_t = inverse_lower(np.swapaxes(precisions_cholesky, -1, -2))
        return symmetrize(np.swapaxes(inv_upper_t, -1, -2) @ inv_upper_t)

    def log_det_precision_cholesky(self, precisions_cholesky, n_features):
        return np.sum(np.log(np.diagonal(precisions_cholesky, axis1=-2, axis2=-1)), axis=-1)

    def _check_precision_values(self, precisions, name):
        check_matrix_precisions(precisions, self.name)


class VarianceStructure(CovarianceStructure):
    """Axis-aligned structures whose covariances are stored as variances."""

    def whiten(self, precisions_cholesky, k, diff):
        return diff * precisions_cholesky[k]

    def check_covariance_values(self, covariances):
        if np.any(covariances <= 0):
            k = int(np.flatnonzero(np.any(covariances.reshape(covariances.shape[0], -1) <= 0, axis=1))[0])
            raise ValueError(f"covariance of component {k} is not positive (variances must be > 0)")

    def precisions_cholesky(self, covariances):
        bad = ~(np.isfinite(covariances) & (covariances > 0))
        if np.any(bad):
            rows = np.any(bad.reshape(bad.shape[0], -1), axis=1)
            raise SingularCovarianceError(tuple(int(k) for k in np.flatnonzero(rows)))
        return 1.0 / np.sqrt(covariances)

    def precisions_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky**2

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        return 1.0 / precisions_cholesky**2

    def _check_precision_values(self, precisions, name):
        if np.any(precisions <= 0):
            raise ValueError(
                f"'{self.name} precision' should be positive. In gaussmix: {name} holds inverse variances, "
                f"which must be > 0; its minimum is {precisions.min():.3g}."
            )
