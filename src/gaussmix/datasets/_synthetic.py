"""Labelled samples from a known Gaussian mixture."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from gaussmix._validation import check_int, check_weights_init
from gaussmix.covariance import get_structure


def make_mixture(
    n_samples: int,
    weights: Any,
    means: Any,
    covariances: Any,
    random_state: Any = None,
    *,
    covariance_type: str = "full",
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a labelled sample from the mixture ``sum_k weights[k] N(means[k], covariances[k])``.

    Parameters
    ----------
    n_samples : int
        Number of rows.
    weights : array-like of shape (n_components,)
        Mixing weights, summing to 1.
    means : array-like of shape (n_components, n_features)
    covariances : array-like
        Shaped by ``covariance_type``: ``(n_components, n_features, n_features)``
        for "full", ``(n_features, n_features)`` for "tied",
        ``(n_components, n_features)`` for "diag", ``(n_components,)`` for
        "spherical". Must be positive definite.
    random_state : int, RandomState instance or None
    covariance_type : str, default="full"
    shuffle : bool, default=True
        Shuffle rows; otherwise rows come grouped by component.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        The component each row came from.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix.datasets import make_mixture
    >>> X, y = make_mixture(500, [0.5, 0.5], [[0, 0], [5, 5]], [[1, 1], [1, 1]],
    ...                     random_state=0, covariance_type="diag")
    >>> X.shape, np.bincount(y)
    ((500, 2), array([253, 247]))
    """
    n_samples = check_int(n_samples, "n_samples", 1)
    structure = get_structure(covariance_type)
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2:
        raise ValueError(f"means must have shape (n_components, n_features), got shape {means.shape}.")
    n_components, n_features = means.shape
    weights = check_weights_init(weights, n_components, name="weights")
    covariances = np.asarray(covariances, dtype=np.float64)
    expected = structure.covariance_shape(n_components, n_features)
    if covariances.shape != expected:
        raise ValueError(
            f"covariances for covariance_type={covariance_type!r} must have shape {expected}, "
            f"got shape {covariances.shape}."
        )
    full = structure.layout.full_covariances(covariances, n_components, n_features)
    if not np.all(np.isfinite(full)) or np.any(
        [np.min(np.linalg.eigvalsh(0.5 * (c + c.T))) <= 0 for c in full]
    ):
        raise ValueError("covariances must be finite, symmetric and positive definite.")
    rng = check_random_state(random_state)
    counts = rng.multinomial(n_samples, weights)
    X = structure.layout.sample(rng, means, covariances, counts)
    y = np.repeat(np.arange(n_components), counts)
    if shuffle:
        order = rng.permutation(n_samples)
        X, y = X[order], y[order]
    return X, y
