"""The volume, shape and orientation of fitted covariances, as mclust reports them.

Every component's covariance is ``Sigma_k = lambda_k D_k A_k D_k'``: the
*volume* ``lambda_k = det(Sigma_k)^(1/d)``, the *shape* ``A_k`` (the
diagonal of eigenvalues over the volume, so ``det A_k = 1``) and the
*orientation* ``D_k`` (the eigenvectors, as columns). A model's name says
which of the three are Equal for all components (one value), Variable (one
per component) or the Identity (``A = I`` or ``D = I``), and
:func:`decompose` returns them in that form:

* ``volume``: a float (E) or ``(K,)``;
* ``shape``: ``(d,)`` (E or I) or ``(K, d)`` (V);
* ``orientation``: ``(d, d)`` (E or I) or ``(K, d, d)`` (V).

The eigenvalues come in decreasing order where the orientation is not the
identity (for models whose components share an orientation but not a shape,
in the order of the eigenvalues of the mean of their covariances, each
scaled to volume 1), and along the features where it is. Each eigenvector is
signed so that its largest entry is positive (an eigenvector's sign is
arbitrary; mclust's follow its linear algebra library's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussmix.covariance._linalg import symmetrize


@dataclass(frozen=True)
class Decomposition:
    """``Sigma_k = volume_k * orientation_k @ diag(shape_k) @ orientation_k.T`` (see the module docstring)."""

    model: str
    n_components: int
    volume: float | np.ndarray
    shape: np.ndarray
    orientation: np.ndarray

    def covariances(self) -> np.ndarray:
        """The ``(K, d, d)`` covariance matrices the decomposition stands for."""
        d = self.shape.shape[-1]
        volumes = np.broadcast_to(self.volume, (self.n_components,))
        shapes = np.broadcast_to(self.shape, (self.n_components, d))
        orientations = np.broadcast_to(self.orientation, (self.n_components, d, d))
        return symmetrize(volumes[:, None, None] * np.einsum("kij,kj,klj->kil", orientations, shapes, orientations))


def _signed(vectors: np.ndarray) -> np.ndarray:
    """Eigenvectors (columns) each with its entry of largest magnitude positive."""
    rows = np.argmax(np.abs(vectors), axis=-2)
    signs = np.sign(np.take_along_axis(vectors, rows[..., None, :], axis=-2))
    return vectors * np.where(signs == 0, 1.0, signs)


def model_name(covariance_type: str, n_features: int) -> str:
    """mclust's name of ``covariance_type`` on data of ``n_features`` features: ``"VVV"`` for ``"full"``,
    ``"E"`` or ``"V"`` (equal or varying variance) on one feature; a structure mclust lacks keeps its name."""
    from gaussmix.covariance import ONE_FEATURE_MODELS, get_structure

    if covariance_type in ONE_FEATURE_MODELS:
        return covariance_type
    name = get_structure(covariance_type).mclust_name
    if name is None:
        return covariance_type
    return ("E" if name[0] == "E" else "V") if n_features == 1 else name


def decompose(model: str, covariances: np.ndarray) -> Decomposition:
    """Volume, shape and orientation of ``(K, d, d)`` covariance matrices fitted under mclust's ``model``
    (a three-letter name such as ``"VEV"``; ``"E"`` and ``"V"`` for one feature)."""
    covariances = np.asarray(covariances, dtype=np.float64)
    n_components, d = covariances.shape[0], covariances.shape[-1]
    if len(model) == 1:
        model = model + "II"
    volume_kind, shape_kind, orientation_kind = model
    volumes = np.exp(np.linalg.slogdet(covariances)[1] / d)
    if orientation_kind == "I":
        shapes = np.diagonal(covariances, axis1=1, axis2=2) / volumes[:, None]
        orientations = np.broadcast_to(np.eye(d), covariances.shape)
    elif orientation_kind == "E":
        # the components share their eigenvectors: those of the mean of the covariances scaled to volume 1
        common = np.linalg.eigh(symmetrize(np.mean(covariances / volumes[:, None, None], axis=0)))[1][:, ::-1]
        common = _signed(common)
        shapes = np.einsum("ji,kjl,li->ki", common, covariances, common) / volumes[:, None]
        orientations = np.broadcast_to(common, covariances.shape)
    else:
        values, vectors = np.linalg.eigh(symmetrize(covariances))
        shapes, orientations = values[:, ::-1] / volumes[:, None], _signed(vectors[..., ::-1])
    volume = float(np.exp(np.mean(np.log(volumes)))) if volume_kind == "E" else volumes
    shape = np.exp(np.mean(np.log(shapes), axis=0)) if shape_kind in "EI" else shapes
    if shape_kind == "I":
        shape = np.ones(d)
    orientation = orientations[0].copy() if orientation_kind in "EI" else np.ascontiguousarray(orientations)
    return Decomposition(model, n_components, volume, shape, orientation)


def describe(model: str) -> str:
    """mclust's model name in words: ``describe("VEV") == "ellipsoidal, equal shape, varying volume and
    orientation"``."""
    if len(model) == 1:
        return f"one feature, {'equal' if model == 'E' else 'varying'} variance"
    volume, shape, orientation = model
    kind = "spherical" if shape == "I" else "diagonal" if orientation == "I" else "ellipsoidal"
    parts = [("volume", volume), ("shape", shape), ("orientation", orientation)]
    equal = [part for part, letter in parts if letter == "E"]
    varying = [part for part, letter in parts if letter == "V"]
    words = [kind] + [f"{how} {' and '.join(which) if len(which) < 3 else 'volume, shape and orientation'}"
                      for how, which in (("equal", equal), ("varying", varying)) if which]
    return ", ".join(words)


def described(covariance_type: str, n_features: int) -> str:
    """:func:`describe` of ``covariance_type``'s mclust name, or the structure's own description where
    mclust has no such model."""
    from gaussmix.covariance import get_structure

    name = model_name(covariance_type, n_features)
    if len(name) in (1, 3) and set(name) <= set("EVI"):
        return describe(name)
    return get_structure(covariance_type).description
