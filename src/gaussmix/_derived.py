"""Fitted models built from parameters rather than by EM: given parameters, marginals.

The estimator's ``from_parameters`` and ``marginal`` methods call these.
"""

from __future__ import annotations

import math

import numpy as np

from gaussmix._params import MixtureParams, checked_params
from gaussmix.covariance import get_structure


def from_parameters(cls, weights, means, covariances, *, covariance_type="full", feature_names=None, **params):
    """Body of :meth:`GaussianMixture.from_parameters`."""
    means_array = np.asarray(means)
    dtype = means_array.dtype if means_array.dtype in (np.float32, np.float64) else np.float64
    checked = checked_params(get_structure(covariance_type), weights, means, covariances)
    model = cls(checked.n_components, covariance_type=covariance_type, **params)
    model._settings()
    model._set_parameters(checked, dtype)
    model.converged_, model.n_iter_ = False, 0
    model.collapsed_components_ = np.array([], dtype=int)  # no data to judge by
    model.lower_bound_, model.lower_bounds_ = -math.inf, []
    model.n_features_in_ = checked.n_features
    if feature_names is not None:
        names = np.asarray(feature_names, dtype=object)
        if names.shape != (checked.n_features,) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"feature_names must be {checked.n_features} strings, got {feature_names!r}")
        model.feature_names_in_ = names
    return model


def marginal(model, features):
    """Body of :meth:`GaussianMixture.marginal`."""
    model._check_fitted()
    index = feature_indices(model, features)
    structure = get_structure(model.covariance_type)
    params = model._params_from_attributes()
    covariances = structure.marginal_covariances(params.covariances, index)
    projected = MixtureParams(
        weights=params.weights,
        means=params.means[:, index],
        covariances=covariances,
        precisions_cholesky=structure.precisions_cholesky(covariances),
    )
    names = None
    if hasattr(model, "feature_names_in_"):
        names = np.asarray(model.feature_names_in_)[index]
    return fitted_like(model, projected, model.means_.dtype, len(index), names)


def feature_indices(model, features) -> list[int]:
    """Indices of ``features`` (indices or names) of a fitted model; raises ValueError."""
    names = list(getattr(model, "feature_names_in_", []))
    index = []
    for f in np.atleast_1d(np.asarray(features, dtype=object)).tolist():
        if isinstance(f, str):
            if f not in names:
                raise ValueError(f"unknown feature {f!r}; the model's features are {names or 'unnamed'}.")
            index.append(names.index(f))
        elif isinstance(f, (int, np.integer)) and not isinstance(f, bool) and 0 <= f < model.n_features_in_:
            index.append(int(f))
        else:
            raise ValueError(
                f"features must be indices in [0, {model.n_features_in_}) or feature names, got {f!r}."
            )
    if not index or len(set(index)) != len(index):
        raise ValueError(f"features must name at least one feature, each once; got {features!r}.")
    return index


def fitted_like(template, params: MixtureParams, dtype, n_features: int, feature_names=None):
    """A new fitted estimator with ``template``'s hyper-parameters and fit record."""
    model = type(template)(**template.get_params())
    model._set_parameters(params, dtype)
    model.converged_ = template.converged_
    model.collapsed_components_ = np.array([], dtype=int)  # a collapse is judged on the data, which a view lacks
    model.n_iter_ = template.n_iter_
    model.lower_bound_ = template.lower_bound_
    model.lower_bounds_ = list(template.lower_bounds_)
    model.n_features_in_ = n_features
    if feature_names is not None:
        model.feature_names_in_ = np.asarray(feature_names, dtype=object)
    return model
