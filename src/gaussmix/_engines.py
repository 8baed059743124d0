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
        raise InvalidParameterError(f"device={device!r} is not a torch device: {exc}") from None
    if device.type == "cuda" and device.index is None:  # "cuda" is the current GPU, as tensors name it
        device = torch.device("cuda", torch.cuda.current_device())
    return TorchNamespace(device)


def check_tensor(estimator: Any, X: Any, *, reset: bool, min_samples: int = 1):
    """Validate a torch tensor as scikit-learn validates arrays; returns a float32 or float64 tensor."""
    import torch

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
    return X


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
