"""Checks of hyper-parameters, sample weights and initial arrays.

Messages name the parameter, what was expected, what was received and how to
fix it.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

from gaussmix._errors import InvalidParameterError


def check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidParameterError(
            f"{name} must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}."
        )
    if value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_real(value: Any, name: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidParameterError(
            f"{name} must be a number >= {minimum}, got {value!r} of type {type(value).__name__}."
        )
    if not math.isfinite(value) or value < minimum:
        raise InvalidParameterError(f"{name} must be a finite number >= {minimum}, got {value}.")
    return float(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise InvalidParameterError(f"{name} must be one of {valid}; got {value!r}.")
    return value


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    """Sample weights as float64 of shape (n_samples,): finite, >= 0, not all 0."""
    if sample_weight is None:
        return np.ones(n_samples)
    if isinstance(sample_weight, Real) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, float(sample_weight))
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"sample_weight must be an array of numbers, got {type(sample_weight).__name__}."
        ) from exc
    if weights.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1D array or scalar, got an array of shape {weights.shape}; "
            f"pass one weight per row of X ({n_samples} rows)."
        )
    if weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == ({weights.shape[0]},), expected ({n_samples},): "
            "pass one weight per row of X."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight contains NaN or infinity; weights must be finite.")
    if np.any(weights < 0):
        raise ValueError(
            f"Negative values in data passed to sample_weight (minimum {weights.min():g}); "
            "weights must be >= 0."
        )
    if not np.any(weights > 0):
        raise ValueError("sample_weight is zero for every row; at least one row needs a positive weight.")
    return weights


def shape_message(name: str, expected: tuple[int, ...], shape: tuple[int, ...], meaning: str) -> str:
    """scikit-learn's sentence for a wrong shape, then what the shape stands for."""
    return (
        f"The parameter {name!r} should have the shape of {expected}, but got {shape}. "
        f"In gaussmix: the shape is {meaning}."
    )


def unit_exponent(largest: float) -> int:
    """The power of two ``e`` for which ``ldexp(largest, e)`` (``largest > 0``) lies in [1, 2).

    Scaling weights by a power of two is exact; weights of 1e-320 or 1e308
    then compute like weights near 1, whose sums neither underflow nor
    overflow. A fit does not depend on the weights' common scale.
    """
    return 1 - int(np.frexp(largest)[1])


def check_weights_init(weights: Any, n_components: int, name: str = "weights_init") -> np.ndarray:
    """Initial (or generating) mixture weights: shape (n_components,), in [0, 1], summing to 1."""
    array = finite_array(weights, name)
    if array.shape != (n_components,):
        raise ValueError(shape_message("weights", (n_components,), array.shape,
                                       f"(n_components,): one weight per component ({name})"))
    if np.any(array < 0) or np.any(array > 1):
        # scikit-learn's sentence names the minimum "max value" and the maximum "min value".
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{np.min(array):.5f}, min value {np.max(array):.5f}. In gaussmix: {name} ranges from "
            f"{np.min(array):.6g} to {np.max(array):.6g}; every weight must lie in [0, 1]."
        )
    total = float(array.sum())
    if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-6):
        raise ValueError(
            f"The parameter 'weights' should be normalized, but got sum(weights) = {total:.5f}. "
            f"In gaussmix: {name} sums to {total:.10g}, which differs from 1 by {abs(total - 1.0):.3g} "
            "(more than 1e-6); divide the weights by their sum."
        )
    return array / array.sum()


def check_means_init(means: Any, n_components: int, n_features: int) -> np.ndarray:
    array = finite_array(means, "means_init")
    if array.shape != (n_components, n_features):
        raise ValueError(shape_message("means", (n_components, n_features), array.shape,
                                       "(n_components, n_features): one initial mean per component (means_init)"))
    return array


def check_init_method(value: Any, methods: tuple[str, ...]) -> str:
    """``init_params``: the name of a method, or ``"given"`` for an array (checked against X by
    :func:`check_initial_partition` when the data are known)."""
    if isinstance(value, str):
        if value in methods:
            return value
    elif isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "__array__"):
        return "given"
    valid = ", ".join(repr(m) for m in methods)
    raise InvalidParameterError(
        f"init_params must be one of {valid}, or an array of labels of shape (n_samples,) or of "
        f"responsibilities of shape (n_samples, n_components); got {value!r}."
    )


def check_initial_partition(values: Any, n_samples: int, n_components: int) -> tuple[str, np.ndarray]:
    """A start given as ``init_params``: ``("labels", int array)`` or ``("responsibilities", float array)``.

    Labels are one integer in ``[0, n_components)`` per row; responsibilities
    one row per row of X, non-negative, each summing to 1 (within 1e-6; they
    are renormalised).
    """
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        array = np.asarray([None], dtype=object)
    if array.dtype.kind not in "biuf":
        raise InvalidParameterError(
            f"init_params given as an array must hold numbers (labels or responsibilities), got dtype {array.dtype}."
        )
    if array.ndim == 1:
        if array.shape[0] != n_samples:
            raise ValueError(
                f"init_params gives {array.shape[0]} labels, but X has {n_samples} rows: pass one label per row."
            )
        labels = array.astype(np.float64)
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError("init_params labels must be whole numbers (component indices).")
        if np.any(labels < 0) or np.any(labels >= n_components):
            raise ValueError(
                f"init_params labels must lie in [0, {n_components}) for n_components={n_components}; they range "
                f"from {labels.min():g} to {labels.max():g}."
            )
        return "labels", labels.astype(np.intp)
    if array.ndim == 2:
        if array.shape != (n_samples, n_components):
            raise ValueError(shape_message("init_params", (n_samples, n_components), array.shape,
                                           "(n_samples, n_components): the responsibilities of each row "
                                           "(init_params)"))
        resp = array.astype(np.float64)
        if not np.all(np.isfinite(resp)) or np.any(resp < 0):
            raise ValueError("init_params responsibilities must be finite and non-negative.")
        sums = resp.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-6):
            row = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError(
                f"init_params responsibilities must sum to 1 in every row; row {row} sums to {sums[row]:.10g}."
            )
        return "responsibilities", resp / sums[:, None]
    raise ValueError(
        f"init_params given as an array must be labels (n_samples,) or responsibilities (n_samples, n_components); "
        f"got an array of shape {array.shape}."
    )


def finite_array(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers, got {type(values).__name__}.") from exc
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity; pass finite values.")
    return array


def call_unnamed(method, *args):
    """``method(*args)`` on arrays whose columns are already in the fitted model's order.

    scikit-learn warns when an unnamed array meets a model fitted on named
    columns; where the columns were matched to the model's names first
    (plots, the command line), the warning is noise.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return method(*args)


#: What ``prior=`` accepts besides None and a dict of hyper-parameters.
PRIOR_NAMES = ("default",)
_PRIOR_KEYS = ("shrinkage", "mean", "dof", "scale")


def check_prior(value: Any) -> dict[str, Any] | None:
    """``prior`` as the hyper-parameters given (``{}`` for ``"default"``), or None for no prior.

    The shapes of ``mean`` and ``scale`` are checked against the data by
    :func:`check_prior_shapes`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        check_choice(value, "prior", PRIOR_NAMES)
        return {}
    if not isinstance(value, dict):
        raise InvalidParameterError(
            f"prior must be None, 'default' or a dict with some of {', '.join(_PRIOR_KEYS)} (mclust's defaultPrior "
            f"gives the others); got {type(value).__name__}."
        )
    unknown = sorted(str(key) for key in value if key not in _PRIOR_KEYS)
    if unknown:
        raise InvalidParameterError(
            f"prior has unknown key {', '.join(map(repr, unknown))}; the hyper-parameters are "
            f"{', '.join(_PRIOR_KEYS)}."
        )
    checked: dict[str, Any] = {}
    if value.get("shrinkage") is not None:
        checked["shrinkage"] = check_real(value["shrinkage"], "prior['shrinkage']", 0.0)
    if value.get("dof") is not None:
        dof = check_real(value["dof"], "prior['dof']", 0.0)
        if dof <= 0:
            raise InvalidParameterError(f"prior['dof'] must be > 0, got {dof:g}.")
        checked["dof"] = dof
    for name in ("mean", "scale"):
        if value.get(name) is None:
            continue
        try:
            array = finite_array(value[name], f"prior[{name!r}]")
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from None
        checked[name] = array
    mean, scale = checked.get("mean"), checked.get("scale")
    if mean is not None and mean.ndim != 1:
        raise InvalidParameterError(f"prior['mean'] must have shape (n_features,), got shape {mean.shape}.")
    if scale is not None:
        if scale.ndim > 2 or (scale.ndim == 2 and scale.shape[0] != scale.shape[1]):
            raise InvalidParameterError(
                "prior['scale'] must be a number, a variance per feature (n_features,) or a matrix "
                f"(n_features, n_features); got shape {scale.shape}."
            )
        if scale.ndim < 2 and np.any(scale <= 0):
            raise InvalidParameterError("prior['scale'] must be positive.")
        if scale.ndim == 2:
            if not np.allclose(scale, scale.T, rtol=1e-10, atol=1e-12 * np.max(np.abs(scale))):
                raise InvalidParameterError("prior['scale'] must be a symmetric matrix.")
            if np.min(np.linalg.eigvalsh(scale)) <= 1e-12 * np.max(np.abs(scale)):
                raise InvalidParameterError("prior['scale'] must be positive definite.")
    if checked.get("shrinkage", None) == 0.0 and mean is not None:
        raise InvalidParameterError("prior['mean'] is given but prior['shrinkage'] is 0: give a positive shrinkage.")
    return checked


def check_prior_shapes(prior: dict[str, Any], n_features: int) -> None:
    """InvalidParameterError unless the prior's ``mean`` and ``scale`` fit data of ``n_features`` features."""
    mean, scale = prior.get("mean"), prior.get("scale")
    if mean is not None and mean.shape != (n_features,):
        raise InvalidParameterError(
            f"prior['mean'] has {mean.shape[0]} values but the data have {n_features} features."
        )
    if scale is not None and scale.ndim > 0 and scale.shape[0] != n_features:
        raise InvalidParameterError(
            f"prior['scale'] has shape {scale.shape} but the data have {n_features} features: give a number, "
            f"shape ({n_features},) or ({n_features}, {n_features})."
        )

