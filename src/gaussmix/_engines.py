"""Choosing an engine, and checking input for it.

=========  =====================================================================
engine     runs on
=========  =====================================================================
"numpy"    the in-memory engine: NumPy, threads over row chunks
"torch"    PyTorch on ``device`` (CPU or GPU); torch tensors stay on theirs
"dask"     Dask: one map and one tree reduction per pass, on any scheduler
"auto"     follows the input: a tensor runs on torch, a Dask collection on
           Dask, anything else on NumPy (on torch when ``device`` is given)
=========  =====================================================================

Neither torch nor dask is imported unless an engine needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussmix._data import ChunkedData
from gaussmix._namespace import is_dask_collection, is_torch_tensor
from gaussmix._validation import check_choice
from gaussmix.exceptions import InvalidParameterError

ENGINES: tuple[str, ...] = ("auto", "numpy", "torch", "dask")


def resolve_engine(engine: Any, device: Any, X: Any) -> str:
    """The engine that runs for input ``X``."""
    engine = check_choice(engine, "engine", ENGINES)
    if device is not None and engine in ("numpy", "dask"):
        raise InvalidParameterError(
            f"device={device!r} applies to the torch engine only, not engine={engine!r}; "
            "use engine='torch' (or 'auto') or device=None."
        )
    if engine != "auto":
        return engine
    if is_torch_tensor(X):
        return "torch"
    if is_dask_collection(X):
        return "dask"
    return "torch" if device is not None else "numpy"


def torch_namespace(device: Any, X: Any = None):
    """The torch namespace on ``device`` (default: the tensor ``X``'s device, else the CPU)."""
    from gaussmix._torch import TorchNamespace, import_torch

    torch = import_torch()
    if device is None:
        device = X.device if is_torch_tensor(X) else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(
            f"device={device!r} is not a torch device ({_reason(exc)}); use for example 'cpu', 'cuda' or 'cuda:1'."
        ) from None
    problem = _device_problem(torch, device)
    if problem:
        raise InvalidParameterError(f"device {str(device)!r} cannot be used here: {problem}.")
    if device.type == "cuda" and device.index is None:  # "cuda" is the current GPU, as tensors name it
        device = torch.device("cuda", torch.cuda.current_device())
    return TorchNamespace(device)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _device_problem(torch, device) -> str | None:
    """Why ``device`` is unusable on this machine, or None."""
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "this machine has no CUDA GPU that PyTorch can use (or PyTorch was built without CUDA)"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return f"this machine has {count} CUDA device{'s' * (count != 1)} (cuda:0 to cuda:{count - 1})"
        return None
    backend = getattr(torch.backends, device.type, None)
    available = getattr(backend, "is_available", None)
    if available is not None and not available():
        return f"PyTorch's {device.type} backend is not available on this machine"
    return None


def device_available(device: Any) -> bool:
    """Whether the torch ``device`` (a name or torch.device) can be used here (False without torch)."""
    from importlib.util import find_spec

    if find_spec("torch") is None:
        return False
    import torch

    try:
        return _device_problem(torch, torch.device(device)) is None
    except (RuntimeError, TypeError):
        return False


def check_tensor(estimator: Any, X: Any, *, reset: bool, min_samples: int = 1):
    """Validate a torch tensor as scikit-learn validates arrays; returns a float32 or float64 tensor."""
    import torch

    if X.layout != torch.strided:
        raise ValueError(
            f"A sparse tensor ({X.layout}) was passed, but dense data is required; use X.to_dense() "
            "if it fits in memory."
        )
    if X.is_complex():
        raise ValueError(f"Complex data not supported (a {X.dtype} tensor); pass real numbers.")
    X = X.detach()  # EM needs no gradients; a graph through every chunk would only cost memory
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D tensor, got a {X.ndim}D tensor of shape {tuple(X.shape)}; "
            "reshape it to (n_samples, n_features)."
        )
    if X.dtype not in (torch.float32, torch.float64):
        X = X.to(torch.float32 if X.dtype in (torch.float16, torch.bfloat16) else torch.float64)
    if X.shape[0] < min_samples:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) (shape={tuple(X.shape)}) while a minimum of "
            f"{min_samples} is required."
        )
    if X.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is required.")
    if not bool(torch.isfinite(X).all()):
        raise ValueError("Input X contains NaN or infinity.")
    _check_features(estimator, X.shape[1], reset)
    return X


def check_dask(estimator: Any, X: Any, *, reset: bool, min_samples: int = 1):
    """Validate a Dask collection's shape and dtype (values are checked as blocks are computed)."""
    from gaussmix._dask import as_dask_array

    columns = getattr(X, "columns", None) if X.__class__.__name__ == "DataFrame" else None
    X = as_dask_array(X)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got a {X.ndim}D Dask array of shape {X.shape}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
    if X.shape[0] < min_samples:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum of {min_samples} is required."
        )
    _check_features(estimator, X.shape[1], reset)
    names = None if columns is None else np.asarray([str(c) for c in columns], dtype=object)
    if columns is not None and not all(isinstance(c, str) for c in columns):
        names = None  # scikit-learn keeps names only when they are all strings
    if reset and names is not None:
        estimator.feature_names_in_ = names
    elif not reset:
        _check_names(estimator, names)
    return X


def _check_names(estimator: Any, names: Any) -> None:
    """scikit-learn's rule: columns named differently from the fit are an error."""
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and names is not None and list(names) != list(fitted):
        raise ValueError(
            f"The feature names should match those that were passed during fit; got {list(names)}, "
            f"fitted with {list(fitted)}."
        )


def _check_features(estimator: Any, n_features: int, reset: bool) -> None:
    if reset:
        estimator.n_features_in_ = int(n_features)
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )


def torch_data(X: Any, weights: Any, xp) -> ChunkedData:
    """The torch engine's data: on the device when they fit in its memory, streamed from the host otherwise."""
    resident = (
        is_torch_tensor(X) or xp.device.type != "cuda" or X.nbytes <= xp.torch.cuda.mem_get_info(xp.device)[0] // 4
    )
    # Rows that stay on the host are copied to the device chunk by chunk as they are visited.
    return ChunkedData(xp.asarray(X) if resident else X, weights, xp=xp)
