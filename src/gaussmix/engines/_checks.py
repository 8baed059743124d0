"""Checks of input shared by the engines: feature counts and names, as scikit-learn keeps them."""

from __future__ import annotations

from typing import Any


def check_names(estimator: Any, names: Any) -> None:
    """scikit-learn's rule: columns named differently from the fit are an error."""
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and names is not None and list(names) != list(fitted):
        raise ValueError(
            f"The feature names should match those that were passed during fit; got {list(names)}, "
            f"fitted with {list(fitted)}."
        )


def check_features(estimator: Any, n_features: int, reset: bool) -> None:
    if reset:
        estimator.n_features_in_ = int(n_features)
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
