"""Checks of each estimator's fitted state as read from a model file.

One function per estimator takes a new (unfitted) estimator and the decoded
state; it raises :class:`~gaussmix.exceptions.ModelFileError` for anything a
fit could not have produced, and otherwise returns the fitted attributes,
which the estimator writes through its one writer
(:meth:`~gaussmix._base.GaussmixEstimator._write_fitted`).
"""

from __future__ import annotations

import math

import numpy as np

from gaussmix._mixture import BaseMixture
from gaussmix._state import check_present, loaded_feature_names
from gaussmix.exceptions import ModelFileError


def _integer(value, name: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ModelFileError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _common(state: dict, n_features: int) -> dict:
    """``n_features_in_`` and, when stored, ``feature_names_in_``."""
    names = loaded_feature_names(state, n_features)
    return {"n_features_in_": n_features, **({} if names is None else {"feature_names_in_": names})}


def _mixture_of(value, name: str, n_features: int):
    if not isinstance(value, BaseMixture) or not value.__sklearn_is_fitted__():
        raise ModelFileError(f"{name} must be a fitted mixture")
    if value.n_features_in_ != n_features:
        raise ModelFileError(f"{name} has {value.n_features_in_} features, the estimator {n_features}")
    return value


def selector_state(model, state: dict, columns: tuple[str, ...]) -> dict:
    check_present(state, ("best_estimator_", "best_params_", "best_index_", "results_", "n_features_in_"),
          "GaussianMixtureSelector")
    n_features = _integer(state["n_features_in_"], "n_features_in_", 1)
    best = _mixture_of(state["best_estimator_"], "best_estimator_", n_features)
    results = state["results_"]
    stored = list(results.columns) if hasattr(results, "columns") else (list(results[0]) if results else list(columns))
    if stored != list(columns):
        raise ModelFileError(f"results_ has columns {stored}, expected {list(columns)}")
    n_rows = len(results)
    index = _integer(state["best_index_"], "best_index_")
    if index >= n_rows:
        raise ModelFileError(f"best_index_ {index} is beyond the {n_rows} candidates")
    params = state["best_params_"]
    if params != {"n_components": best.n_components, "covariance_type": best.covariance_type}:
        raise ModelFileError(f"best_params_ {params!r} do not describe best_estimator_")
    sizes = {}
    if "cluster_sizes_" in state:
        values = np.asarray(state["cluster_sizes_"])
        if (values.shape != (best.n_components,) or values.dtype.kind != "f" or not np.all(np.isfinite(values))
                or np.any(values < 0)):
            raise ModelFileError("cluster_sizes_ must hold a non-negative weight for each component of "
                                 "best_estimator_")
        sizes["cluster_sizes_"] = values
    return {"best_estimator_": best, "best_params_": params, "best_index_": index, "results_": results,
            **sizes, **_common(state, n_features)}


def outlier_detector_state(model, state: dict) -> dict:
    check_present(state, ("mixture_", "offset_", "rare_components_", "n_features_in_"),
                  "GaussianMixtureOutlierDetector")
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
    return {"mixture_": mixture, "offset_": float(offset), "rare_components_": rare.astype(int),
            **_common(state, n_features)}


def classifier_state(model, state: dict) -> dict:
    check_present(state, ("classes_", "class_prior_", "models_", "n_features_in_"), "GaussianMixtureClassifier")
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
    fitted = {label: _mixture_of(models[label.item() if hasattr(label, "item") else label],
                                 f"the mixture of class {label!r}", n_features) for label in classes}
    values = {"classes_": classes, "class_prior_": prior, "models_": fitted, **_common(state, n_features)}
    if "structure_" in state:
        values.update(structure_=state["structure_"], edda_bic_=state.get("edda_bic_"))
    return values
