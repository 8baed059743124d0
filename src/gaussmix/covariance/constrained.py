"""mclust's constrained covariance models (Celeux & Govaert 1995; Fraley & Raftery 2002).

Each component's covariance is ``Sigma_k = lambda_k D_k A_k D_k'``: a
*volume* ``lambda_k`` (``det(Sigma_k)^(1/d)``), a *shape* ``A_k`` (diagonal,
``det A_k = 1``) and an *orientation* ``D_k`` (orthogonal). A model's name
says, for volume, shape and orientation in turn, whether it is Equal for all
components, Variable, or the Identity: ``VEV`` has a volume per component, one
shape and an orientation per component. ``VVV``, ``EEE``, ``VVI`` and ``VII``
are ``full``, ``tied``, ``diag`` and ``spherical``; this module holds the ten
others, stored in the layout of the least constrained structure that holds
them (``EII`` as one variance per component, all equal; ``EEI`` as one shared
diagonal; ``VEI``, ``EVI`` as a diagonal per component; the rest as full
matrices).

Each estimate maximises the expected complete-data log-likelihood under its
constraint, ``-1/2 sum_k [n_k log det Sigma_k + tr(W_k Sigma_k^-1)]``, where
``W_k`` is component ``k``'s scatter with ``n_k reg`` added to its diagonal
(for ``full``, ``tied``, ``diag`` and ``spherical`` that is their estimate plus
``reg``; for every model it keeps each covariance at least ``reg`` away from
singular in the way the model allows). ``EII``, ``EEI``, ``EVI``, ``EEV`` and
``EVV`` have closed forms. ``VEI``, ``VEE`` and ``VEV`` alternate the volumes
and the shared part, each the exact maximiser given the other; ``EVE`` and
``VVE`` alternate the shapes and volumes with the common orientation, found
by sweeps of exact plane rotations (compiled with numba where it is
installed). The
iterations start from the previous M-step's estimate where there is one, so
each M-step does not lower the objective from where EM left it, and EM stays
monotone; from there an M-step makes one alternation (WARM_STEPS), and the
next goes on where it stopped (a generalised EM: on the data sets of
``benchmarks/models``, fits as good as with alternations to convergence, in
a third of the time). Components without weight (``counts == 0``) take no part; their
covariances are replaced afterwards.
"""

from __future__ import annotations

import math

import numpy as np

from gaussmix._compiled import compiled
from gaussmix.covariance._linalg import symmetrize
from gaussmix.covariance._loops import rotate_pairs
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.covariance.layouts import DIAGONAL, FULL, SCALAR, SHARED_DIAGONAL

#: Iterative estimates stop when an alternation lowers the objective by less than this, relative to it,
#: or after MAX_STEPS alternations; WARM_STEPS where they start from the previous M-step's estimate (each
#: alternation raises the expected log-likelihood, so EM stays monotone, and the next M-step goes on from
#: there: a generalised EM).
TOLERANCE = 1e-12
MAX_STEPS = 1000
WARM_STEPS = 1


def _steps(previous) -> int:
    return MAX_STEPS if previous is None else WARM_STEPS


def _total(counts: np.ndarray) -> float:
    return max(float(np.sum(counts)), np.finfo(float).tiny)


def _geometric_mean(values: np.ndarray) -> np.ndarray:
    """The geometric mean along the last axis (0 where a value is 0)."""
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(values), axis=-1))


def _normalised(values: np.ndarray) -> np.ndarray:
    """Positive values along the last axis scaled to a geometric mean of 1 (a shape: determinant 1)."""
    return values / _geometric_mean(values)[..., None]


def _converged(before: float, after: float) -> bool:
    return before - after <= TOLERANCE * max(abs(after), 1.0)


# -- one variance per component ------------------------------------------------------------------------------------
def _eii(scatter, counts, reg, previous):
    """``lambda I``: the pooled scatter's trace over ``n d`` (``scatter``: each component's trace)."""
    return np.full(scatter.shape, np.sum(scatter) / (_total(counts) * reg.shape[0]) + np.mean(reg))


# -- diagonal ------------------------------------------------------------------------------------------------------
def _eei(scatter, counts, reg, previous):
    """``lambda B``, shared: the pooled scatter's diagonal over ``n`` (``scatter``: that diagonal, (d,))."""
    return scatter / _total(counts) + reg


def _diagonal_objective(w: np.ndarray, counts: np.ndarray, variances: np.ndarray) -> float:
    """``sum_k n_k log det Sigma_k + tr(W_k Sigma_k^-1)`` for diagonal covariances."""
    return float(np.sum(counts[:, None] * np.log(variances) + w / variances))


def _volumes_and_shape(w: np.ndarray, counts: np.ndarray, shape: np.ndarray,
                       steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal covariances ``lambda_k A`` (one shape ``A``) for scatters along the axes ``w`` (K, d): the
    volumes given the shape and the shape given the volumes in turn, from ``shape``, until they settle (at
    most ``steps`` times)."""
    d = w.shape[1]
    volumes = np.sum(w / shape, axis=1) / (counts * d)
    objective = np.inf
    for _ in range(steps):
        shape = _normalised(np.sum(w / volumes[:, None], axis=0))
        volumes = np.sum(w / shape, axis=1) / (counts * d)
        before, objective = objective, _diagonal_objective(w, counts, volumes[:, None] * shape)
        if _converged(before, objective):
            break
    return volumes, shape


def _vei(scatter, counts, reg, previous):
    """``lambda_k B``: volumes and the shared shape in turn."""
    live = counts > 0
    w, n = scatter[live] + counts[live, None] * reg, counts[live]
    if previous is None or not np.all(np.isfinite(previous[live])):
        shape = _normalised(np.sum(w, axis=0))
    else:
        shape = _normalised(previous[live][np.argmax(n)])
    volumes, shape = _volumes_and_shape(w, n, shape, _steps(previous))
    out = np.empty_like(scatter, dtype=np.float64)
    out[:] = np.mean(volumes) * shape
    out[live] = volumes[:, None] * shape
    return out


def _evi(scatter, counts, reg, previous):
    """``lambda B_k``: each shape from the component's own variances, one volume (closed form)."""
    live = counts > 0
    w = scatter + counts[:, None] * reg
    sizes = _geometric_mean(w[live])
    volume = float(np.sum(sizes)) / _total(counts)
    out = np.full(scatter.shape, volume)
    out[live] = volume * w[live] / sizes[:, None]
    return out


# -- full matrices -------------------------------------------------------------------------------------------------
def _regularised(scatter: np.ndarray, counts: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = symmetrize(scatter)
    idx = np.arange(out.shape[-1])
    out[:, idx, idx] += counts[:, None] * reg
    return out


def _eigen_descending(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (decreasing) and eigenvectors (as columns, in that order) of symmetric matrices."""
    values, vectors = np.linalg.eigh(matrices)
    return values[..., ::-1], vectors[..., ::-1]


def _rotated(vectors: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``D diag(values) D'`` (batched over leading axes of ``values`` and, if it has them, ``vectors``)."""
    return symmetrize(np.einsum("...ij,...j,...kj->...ik", vectors, values, vectors))


def _filled(live: np.ndarray, matrices: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``(K, d, d)``: ``matrices`` at the live components, ``fill`` at the others."""
    out = np.empty((live.shape[0],) + fill.shape)
    out[:] = fill
    out[live] = matrices
    return out


def _evv(scatter, counts, reg, previous):
    """``lambda C_k``: each ``C_k`` the component's scatter scaled to determinant 1, one volume (closed form)."""
    live = counts > 0
    w = _regularised(scatter, counts, reg)[live]
    d = w.shape[-1]
    sign, log_det = np.linalg.slogdet(w)
    sizes = np.exp(log_det / d)
    volume = float(np.sum(sizes)) / _total(counts)
    return _filled(live, volume * w / sizes[:, None, None], volume * np.eye(d))


def _eev(scatter, counts, reg, previous):
    """``lambda D_k A D_k'``: each orientation the component's eigenvectors, the eigenvalues pooled (closed form)."""
    live = counts > 0
    values, vectors = _eigen_descending(_regularised(scatter, counts, reg)[live])
    pooled = np.sum(values, axis=0) / _total(counts)  # lambda A
    return _filled(live, _rotated(vectors, pooled[None, :]), np.diag(pooled))


def _vev(scatter, counts, reg, previous):
    """``lambda_k D_k A D_k'``: orientations from the eigenvectors; volumes and the shared shape in turn."""
    live = counts > 0
    values, vectors = _eigen_descending(_regularised(scatter, counts, reg)[live])
    n = counts[live]
    if previous is None or not np.all(np.isfinite(previous[live])):
        shape = _normalised(np.sum(values, axis=0))
    else:
        shape = _normalised(np.linalg.eigvalsh(previous[live][np.argmax(n)])[::-1])
    volumes, shape = _volumes_and_shape(values, n, shape, _steps(previous))
    return _filled(live, _rotated(vectors, volumes[:, None] * shape), np.mean(volumes) * np.diag(shape))


def _vee(scatter, counts, reg, previous):
    """``lambda_k C``: volumes and the shared matrix (determinant 1) in turn."""
    live = counts > 0
    w, n = _regularised(scatter, counts, reg)[live], counts[live]
    d = w.shape[-1]
    if previous is None or not np.all(np.isfinite(previous[live])):
        common = np.sum(w, axis=0)
    else:
        common = previous[live][np.argmax(n)]
    common = common / np.exp(np.linalg.slogdet(common)[1] / d)
    volumes = np.einsum("kij,ji->k", w, np.linalg.inv(common)) / (n * d)
    objective = np.inf
    for _ in range(_steps(previous)):
        common = symmetrize(np.sum(w / volumes[:, None, None], axis=0))
        common = common / np.exp(np.linalg.slogdet(common)[1] / d)
        volumes = np.einsum("kij,ji->k", w, np.linalg.inv(common)) / (n * d)
        # with each volume the maximiser given C: tr(W_k Sigma_k^-1) = n_k d
        before, objective = objective, float(np.sum(n * d * np.log(volumes)) + np.sum(n) * d)
        if _converged(before, objective):
            break
    return _filled(live, volumes[:, None, None] * common, np.mean(volumes) * common)


def _rotate_pairs(inner: np.ndarray, orientation: np.ndarray, precisions: np.ndarray) -> None:
    """One sweep of plane rotations lowering ``sum_k tr(W_k D diag(precisions_k) D')`` over orthogonal ``D``,
    in place: ``orientation`` is ``D`` and ``inner`` holds ``D' W_k D`` (K, d, d).

    Rotating columns ``j`` and ``l`` of ``D`` by an angle ``t`` changes the
    sum by ``P cos 2t + Q sin 2t`` plus a constant, with ``P`` and ``Q`` sums
    over the components of ``D' W_k D``'s entries at ``j`` and ``l``; the
    best angle is exact, so each rotation lowers the sum or leaves it (the
    pairwise rotations of Flury & Gautschi's algorithm for common principal
    components, with the precisions held fixed). Each sweep costs about what
    one majorisation step of Browne & McNicholas (2014) does and lowers the
    sum by far more.
    """
    d = orientation.shape[0]
    for j in range(d - 1):
        for l in range(j + 1, d):
            gap = precisions[:, j] - precisions[:, l]
            p = 0.5 * float(np.sum(gap * (inner[:, j, j] - inner[:, l, l])))
            q = float(np.sum(gap * inner[:, j, l]))
            size = math.hypot(p, q)
            if size == 0.0:
                continue
            c2, s2 = -p / size, -q / size  # cos 2t, sin 2t at the minimum
            c = math.sqrt(0.5 * (1.0 + c2))
            s = s2 / (2.0 * c) if c > 0.0 else 1.0
            rotation, pair = np.array([[c, -s], [s, c]]), [j, l]
            orientation[:, pair] = orientation[:, pair] @ rotation
            inner[:, pair, :] = np.einsum("ba,kbm->kam", rotation, inner[:, pair, :])
            inner[:, :, pair] = inner[:, :, pair] @ rotation


def _shared_orientation(scatter, counts, reg, previous, equal_volume: bool):
    """``lambda D A_k D'`` (``equal_volume``: EVE) or ``lambda_k D A_k D'`` (VVE): the variances along a
    common orientation ``D`` given it (closed form), and ``D`` given them, in turn."""
    live = counts > 0
    w, n = _regularised(scatter, counts, reg)[live], counts[live]
    if previous is None or not np.all(np.isfinite(previous[live])):
        orientation = _eigen_descending(np.sum(w, axis=0))[1]
    else:  # the previous covariances share their eigenvectors: those of their sum
        orientation = _eigen_descending(np.sum(previous[live], axis=0))[1]
    orientation = orientation.copy()
    inner = orientation.T @ w @ orientation  # D' W_k D (as products: an einsum of three would take d^4 steps)
    objective = np.inf
    for _ in range(_steps(previous)):
        along = np.diagonal(inner, axis1=1, axis2=2)  # diag(D' W_k D)
        if equal_volume:  # A_k from the shape of diag(D' W_k D); one volume
            sizes = _geometric_mean(along)
            variances = float(np.sum(sizes)) / float(np.sum(n)) * along / sizes[:, None]
        else:  # lambda_k A_k is any diagonal: diag(D' W_k D) / n_k
            variances = along / n[:, None]
        before, objective = objective, _diagonal_objective(along, n, variances)
        if _converged(before, objective):
            break
        (compiled(rotate_pairs) or _rotate_pairs)(inner, orientation, 1.0 / variances)
    fill = _rotated(orientation, np.exp(np.mean(np.log(variances), axis=0)))
    return _filled(live, _rotated(orientation[None], variances), fill)


def _eve(scatter, counts, reg, previous):
    return _shared_orientation(scatter, counts, reg, previous, equal_volume=True)


def _vve(scatter, counts, reg, previous):
    return _shared_orientation(scatter, counts, reg, previous, equal_volume=False)


# -- the models ----------------------------------------------------------------------------------------------------
def _rotations(d: int) -> int:
    """Free parameters of an orientation: ``d (d - 1) / 2``."""
    return d * (d - 1) // 2


EII = CovarianceStructure(
    name="EII", description="spherical, equal volume: one variance for every feature and component",
    layout=SCALAR, estimate=_eii, count=lambda k, d: 1, couples=True)
EEI = CovarianceStructure(
    name="EEI", description="diagonal, equal volume and shape: one diagonal covariance shared by all components",
    layout=SHARED_DIAGONAL, estimate=_eei, count=lambda k, d: d)
VEI = CovarianceStructure(
    name="VEI", description="diagonal, varying volume, equal shape",
    layout=DIAGONAL, estimate=_vei, count=lambda k, d: k + d - 1, couples=True)
EVI = CovarianceStructure(
    name="EVI", description="diagonal, equal volume, varying shape",
    layout=DIAGONAL, estimate=_evi, count=lambda k, d: 1 + k * (d - 1), couples=True)
VEE = CovarianceStructure(
    name="VEE", description="ellipsoidal, varying volume, equal shape and orientation",
    layout=FULL, estimate=_vee, count=lambda k, d: k + d - 1 + _rotations(d), couples=True)
EVE = CovarianceStructure(
    name="EVE", description="ellipsoidal, equal volume and orientation, varying shape",
    layout=FULL, estimate=_eve, count=lambda k, d: 1 + k * (d - 1) + _rotations(d), couples=True)
VVE = CovarianceStructure(
    name="VVE", description="ellipsoidal, varying volume and shape, equal orientation",
    layout=FULL, estimate=_vve, count=lambda k, d: k * d + _rotations(d), couples=True)
EEV = CovarianceStructure(
    name="EEV", description="ellipsoidal, equal volume and shape, varying orientation",
    layout=FULL, estimate=_eev, count=lambda k, d: d + k * _rotations(d), couples=True)
VEV = CovarianceStructure(
    name="VEV", description="ellipsoidal, varying volume and orientation, equal shape",
    layout=FULL, estimate=_vev, count=lambda k, d: k + d - 1 + k * _rotations(d), couples=True)
EVV = CovarianceStructure(
    name="EVV", description="ellipsoidal, equal volume, varying shape and orientation",
    layout=FULL, estimate=_evv, count=lambda k, d: 1 + k * (d - 1) + k * _rotations(d), couples=True)
