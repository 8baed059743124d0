"""The fitted state of a mixture estimator, as every way of obtaining one produces it.

A fitted mixture comes from EM (``fit``), from given parameters
(``from_parameters``), from another fitted mixture (``marginal``) or from a
model file (``load``), on any engine. Each builds a :class:`MixtureState`;
:meth:`MixtureState.attributes` is the one place that turns it into the
estimator's fitted attributes, so every path sets the same ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.loop import EMResult
from gaussmix.em.params import MixtureParams

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
        return values
