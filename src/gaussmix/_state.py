"""The fitted state of a mixture estimator, as every way of obtaining one produces it.

A fitted mixture comes from EM (``fit``), from given parameters
(``from_parameters``), from another fitted mixture (``marginal``) or from a
model file (``load``), on any engine. Each builds a :class:`MixtureState`;
:meth:`MixtureState.attributes` is the one place that turns it into the
estimator's fitted attributes, so every path sets the same ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.loop import EMResult
from gaussmix.em.params import MixtureParams, checked_params
from gaussmix.exceptions import ModelFileError

#: The fitted attributes of a mixture, in the order they are documented.
MIXTURE_ATTRIBUTES = (
    "weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "converged_",
    "collapsed_components_", "n_iter_", "lower_bound_", "lower_bounds_",
)


@dataclass(frozen=True)
class MixtureState:
    """Everything a fitted mixture estimator holds.

    Attributes
    ----------
    params : MixtureParams
        float64 parameters.
    dtype : numpy.dtype
        The dtype the fitted arrays are stored in (the training data's).
    n_features_in : int
    feature_names_in : ndarray of str or None
    converged, n_iter, lower_bound, lower_bounds :
        The fit record (no EM: not converged, 0 iterations, ``-inf``, empty).
    collapsed : tuple of int
        Components that collapsed in the fit (judged on the training data).
    extra : dict
        Fitted attributes of a particular mixture estimator beyond a
        Gaussian mixture's (a variational posterior's, say), by name.
    """

    params: MixtureParams
    dtype: Any
    n_features_in: int
    feature_names_in: np.ndarray | None = None
    converged: bool = False
    n_iter: int = 0
    lower_bound: float = -math.inf
    lower_bounds: tuple[float, ...] = ()
    collapsed: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_fit(cls, result: EMResult, dtype: Any, n_features_in: int, feature_names_in: Any = None) -> MixtureState:
        """The state an EM fit leaves."""
        return cls(
            params=result.params, dtype=dtype, n_features_in=n_features_in, feature_names_in=feature_names_in,
            converged=bool(result.converged), n_iter=int(result.n_iter), lower_bound=float(result.lower_bound),
            lower_bounds=tuple(float(b) for b in result.lower_bounds), collapsed=tuple(result.collapsed),
        )

    def attributes(self, structure: CovarianceStructure) -> dict[str, Any]:
        """The estimator's fitted attributes (arrays in :attr:`dtype`, precisions derived from their factors)."""
        params, dtype = self.params, np.dtype(self.dtype)
        values = {
            "weights_": params.weights.astype(dtype),
            "means_": params.means.astype(dtype),
            "covariances_": params.covariances.astype(dtype),
            "precisions_": structure.layout.precisions(params.precisions_cholesky).astype(dtype),
            "precisions_cholesky_": params.precisions_cholesky.astype(dtype),
            "converged_": bool(self.converged),
            "collapsed_components_": np.asarray(self.collapsed, dtype=int),
            "n_iter_": int(self.n_iter),
            "lower_bound_": float(self.lower_bound),
            "lower_bounds_": list(self.lower_bounds),
            "n_features_in_": int(self.n_features_in),
        }
        if self.feature_names_in is not None:
            values["feature_names_in_"] = np.asarray(self.feature_names_in, dtype=object)
        if params.noise is not None:
            values["noise_volume_"] = float(math.exp(-params.noise))
        return {**values, **self.extra}


def check_present(state: dict, names: tuple[str, ...], estimator: str) -> None:
    missing = [n for n in names if n not in state]
    if missing:
        raise ModelFileError(f"{estimator} state lacks {', '.join(missing)}")


def loaded_feature_names(state: dict, n_features: int) -> np.ndarray | None:
    """The stored ``feature_names_in_`` (None when the model had none), checked."""
    names = state.get("feature_names_in_")
    if names is None:
        return None
    if not (isinstance(names, np.ndarray) and names.shape == (n_features,) and all(isinstance(n, str) for n in names)):
        raise ModelFileError("feature_names_in_ must be n_features strings")
    return names


def mixture_state(model, state: dict) -> MixtureState:
    """A mixture's state from a model file: parameters checked as ``from_parameters`` checks them."""
    check_present(state, ("weights_", "means_", "covariances_", "precisions_cholesky_", "converged_", "n_iter_",
                  "lower_bound_", "lower_bounds_", "n_features_in_"), type(model).__name__)
    arrays = [state[n] for n in ("weights_", "means_", "covariances_", "precisions_cholesky_")]
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise ModelFileError("the parameters must be arrays")
    means = state["means_"]
    dtype = means.dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        raise ModelFileError(f"parameters must all be float32 or all float64, got {[str(a.dtype) for a in arrays]}")
    if means.ndim != 2 or means.shape[0] != model.n_components:
        raise ModelFileError(f"means has shape {means.shape}, expected ({model.n_components}, n_features)")
    structure = model._structure()
    volume = state.get("noise_volume_")
    if volume is not None and not (isinstance(volume, float) and math.isfinite(volume) and volume > 0):
        raise ModelFileError(f"noise_volume_ must be a positive number, got {volume!r}")
    noise = None if volume is None else -math.log(volume)
    extra = {}
    if noise is not None:
        corners = state.get("noise_bounds_")
        if not (isinstance(corners, np.ndarray) and corners.shape == (2, means.shape[1])
                and np.all(np.isfinite(corners)) and np.all(corners[0] <= corners[1])):
            raise ModelFileError("noise_bounds_ must be the region's lower and upper corners, (2, n_features)")
        extra["noise_bounds_"] = corners
    try:
        checked_params(structure, state["weights_"], means, state["covariances_"], state["precisions_cholesky_"],
                       noise)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    n_features = means.shape[1]
    if state["n_features_in_"] != n_features:
        raise ModelFileError(f"n_features_in {state['n_features_in_']!r} does not match means ({n_features})")
    n_iter, converged = state["n_iter_"], state["converged_"]
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 0:
        raise ModelFileError(f"n_iter must be an integer >= 0, got {n_iter!r}")
    if not isinstance(converged, bool):
        raise ModelFileError("converged must be a boolean")
    bounds, bound = state["lower_bounds_"], state["lower_bound_"]
    if not isinstance(bounds, list) or not all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds):
        raise ModelFileError("lower_bounds must be a list of finite numbers")
    if not isinstance(bound, (int, float)) or not (math.isfinite(bound) or bound == -math.inf):
        raise ModelFileError("lower_bound must be a finite number or -inf")
    collapsed = np.asarray(state.get("collapsed_components_", np.array([], dtype=int)))
    outside = (collapsed < 0) | (collapsed >= means.shape[0])
    if collapsed.dtype.kind not in "iu" or collapsed.ndim != 1 or np.any(outside):
        raise ModelFileError("collapsed_components_ must be component indices")
    # The stored arrays are kept exactly (float32 ones pass through float64 unchanged), so that a
    # reloaded model predicts identically.
    params = MixtureParams(*(np.asarray(state[n], dtype=np.float64)
                             for n in ("weights_", "means_", "covariances_", "precisions_cholesky_")), noise=noise)
    return MixtureState(params, dtype, n_features, loaded_feature_names(state, n_features), converged, n_iter,
                        float(bound), tuple(float(b) for b in bounds), tuple(int(k) for k in collapsed), extra)
