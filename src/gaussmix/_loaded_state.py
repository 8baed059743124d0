"""Checks of each estimator's fitted state as read from a model file, and its restoration.

One function per estimator class takes a new (unfitted) estimator and the
decoded state; it raises :class:`~gaussmix.exceptions.ModelFileError` for
anything a fit could not have produced, and otherwise sets the fitted
attributes (recomputing what is derived from them).
"""

from __future__ import annotations

import math

import numpy as np

from gaussmix.exceptions import ModelFileError


def _need(state: dict, names: tuple[str, ...], estimator: str) -> None:
    missing = [n for n in names if n not in state]
    if missing:
        raise ModelFileError(f"{estimator} state lacks {', '.join(missing)}")


def _integer(value, name: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ModelFileError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _feature_names(model, state: dict, n_features: int) -> None:
    names = state.get("feature_names_in_")
    if names is None:
        return
    if not (isinstance(names, np.ndarray) and names.shape == (n_features,) and all(isinstance(n, str) for n in names)):
        raise ModelFileError("feature_names_in_ must be n_features strings")
    model.feature_names_in_ = names


def _check_mixture(model, state: dict) -> None:
    from gaussmix._params import checked_params
    from gaussmix.covariance import get_structure

    _need(state, ("weights_", "means_", "covariances_", "precisions_cholesky_", "converged_", "n_iter_",
                  "lower_bound_", "lower_bounds_", "n_features_in_"), "GaussianMixture")
    model._settings()  # validates every hyper-parameter
    arrays = [state[n] for n in ("weights_", "means_", "covariances_", "precisions_cholesky_")]
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise ModelFileError("the parameters must be arrays")
    means = state["means_"]
    dtype = means.dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        raise ModelFileError(f"parameters must all be float32 or all float64, got {[str(a.dtype) for a in arrays]}")
    if means.ndim != 2 or means.shape[0] != model.n_components:
        raise ModelFileError(f"means has shape {means.shape}, expected ({model.n_components}, n_features)")
    structure = get_structure(model.covariance_type)
    try:
        checked_params(structure, state["weights_"], means, state["covariances_"], state["precisions_cholesky_"])
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    n_features = means.shape[1]
    if state["n_features_in_"] != n_features:
        raise ModelFileError(f"n_features_in {state['n_features_in_']!r} does not match means ({n_features})")
    n_iter, converged = state["n_iter_"], state["converged_"]
    _integer(n_iter, "n_iter")
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
    # The stored arrays are kept exactly, so that a reloaded model predicts identically.
    model.weights_, model.means_ = state["weights_"], means
    model.covariances_, model.precisions_cholesky_ = state["covariances_"], state["precisions_cholesky_"]
    model.precisions_ = structure.precisions(model.precisions_cholesky_.astype(np.float64)).astype(dtype)
    model.converged_, model.n_iter_ = converged, n_iter
    model.collapsed_components_ = collapsed.astype(int)
    model.lower_bound_, model.lower_bounds_ = float(bound), [float(b) for b in bounds]
    model.n_features_in_ = n_features
    _feature_names(model, state, n_features)


def _mixture_of(value, name: str, n_features: int):
    from gaussmix import GaussianMixture

    if not isinstance(value, GaussianMixture) or not hasattr(value, "converged_"):
        raise ModelFileError(f"{name} must be a fitted GaussianMixture")
    if value.n_features_in_ != n_features:
        raise ModelFileError(f"{name} has {value.n_features_in_} features, the estimator {n_features}")
    return value


def _check_selector(model, state: dict) -> None:
    _need(state, ("best_estimator_", "best_params_", "best_index_", "results_", "n_features_in_"),
          "GaussianMixtureSelector")
    n_features = _integer(state["n_features_in_"], "n_features_in_", 1)
    best = _mixture_of(state["best_estimator_"], "best_estimator_", n_features)
    results = state["results_"]
    n_rows = len(results)
    index = _integer(state["best_index_"], "best_index_")
    if index >= n_rows:
        raise ModelFileError(f"best_index_ {index} is beyond the {n_rows} candidates")
    params = state["best_params_"]
    if params != {"n_components": best.n_components, "covariance_type": best.covariance_type}:
        raise ModelFileError(f"best_params_ {params!r} do not describe best_estimator_")
    model.best_estimator_, model.best_params_, model.best_index_ = best, params, index
    model.results_, model.n_features_in_ = results, n_features
    _feature_names(model, state, n_features)


def _check_outlier_detector(model, state: dict) -> None:
    _need(state, ("mixture_", "offset_", "rare_components_", "n_features_in_"), "GaussianMixtureOutlierDetector")
    n_features = _integer(state["n_features_in_"], "n_features_in_", 1)
    mixture = _mixture_of(state["mixture_"], "mixture_", n_features)
    offset = state["offset_"]
    if not isinstance(offset, (int, float)) or not math.isfinite(offset):
        raise ModelFileError(f"offset_ must be a finite number, got {offset!r}")
    rare = np.asarray(state["rare_components_"])
    if rare.ndim != 1 or rare.dtype.kind not in "iu" or np.any((rare < 0) | (rare >= mixture.n_components)):
        raise ModelFileError("rare_components_ must be component indices of mixture_")
    if rare.size == mixture.n_components:
        raise ModelFileError("rare_components_ lists every component")
    model._check_params()
    model.mixture_, model.offset_, model.rare_components_ = mixture, float(offset), rare.astype(int)
    model.n_features_in_ = n_features
    _feature_names(model, state, n_features)
    model._normal = model._normal_model()


def _check_classifier(model, state: dict) -> None:
    _need(state, ("classes_", "class_prior_", "models_", "n_features_in_"), "GaussianMixtureClassifier")
    n_features = _integer(state["n_features_in_"], "n_features_in_", 1)
    classes, prior, models = state["classes_"], state["class_prior_"], state["models_"]
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 1:
        raise ModelFileError("classes_ must be a 1-D array of class labels")
    if not isinstance(prior, np.ndarray) or prior.shape != classes.shape or prior.dtype.kind != "f":
        raise ModelFileError("class_prior_ must hold one probability per class")
    if not np.all(np.isfinite(prior)) or np.any(prior <= 0) or abs(float(prior.sum()) - 1.0) > 1e-8:
        raise ModelFileError("class_prior_ must be positive and sum to 1")
    if not isinstance(models, dict) or len(models) != classes.size or any(c not in models for c in classes.tolist()):
        raise ModelFileError("models_ must hold one mixture per class of classes_")
    model.models_ = {label: _mixture_of(models[label.item() if hasattr(label, "item") else label],
                                        f"the mixture of class {label!r}", n_features) for label in classes}
    model.classes_, model.class_prior_, model.n_features_in_ = classes, prior, n_features
    if "structure_" in state:
        model.structure_, model.edda_bic_ = state["structure_"], state.get("edda_bic_")
    _feature_names(model, state, n_features)


CHECKS = {
    "GaussianMixture": _check_mixture,
    "GaussianMixtureSelector": _check_selector,
    "GaussianMixtureOutlierDetector": _check_outlier_detector,
    "GaussianMixtureClassifier": _check_classifier,
}
