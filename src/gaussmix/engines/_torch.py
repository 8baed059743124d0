"""The PyTorch engine: tensors on their device, NumPy input on a chosen one.

The kernels run unchanged on tensors through
:class:`~gaussmix.engines._torch_namespace.TorchNamespace`. Data that do
not fit in a GPU's memory stay on the host and are streamed chunk by chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussmix._errors import InvalidParameterError
from gaussmix._namespace import is_dask_collection, is_torch_tensor
from gaussmix.engines._base import Engine, FitData
from gaussmix.engines._checks import check_features
from gaussmix.engines._chunked import ChunkedData
from gaussmix.engines._numpy import check_array_input, host_weights
from gaussmix.engines._torch_namespace import TorchNamespace, import_torch


def torch_namespace(device: Any, X: Any = None):
    """The torch namespace on ``device`` (default: the tensor ``X``'s device, else the CPU)."""
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
    check_features(estimator, X.shape[1], reset)
    return X


def torch_data(X: Any, weights: Any, xp) -> ChunkedData:
    """The torch engine's data: on the device when they fit in its memory, streamed from the host otherwise."""
    resident = (
        is_torch_tensor(X) or xp.device.type != "cuda" or X.nbytes <= xp.torch.cuda.mem_get_info(xp.device)[0] // 4
    )
    # Rows that stay on the host are copied to the device chunk by chunk as they are visited.
    return ChunkedData(xp.asarray(X) if resident else X, weights, xp=xp)


class TorchEngine(Engine):
    name = "torch"
    uses_device = True
    title = "torch"
    library = "torch"

    def accepts(self, X, device):
        return is_torch_tensor(X) or (device is not None and not is_dask_collection(X))

    def check(self, estimator, X, *, reset, min_samples=1):
        if is_torch_tensor(X):
            return check_tensor(estimator, X, reset=reset, min_samples=min_samples)
        return check_array_input(estimator, X, reset=reset, min_samples=min_samples)

    def prepare(self, X, sample_weight, *, device):
        xp = torch_namespace(device, X)
        weights, n_positive, exponent = host_weights(sample_weight, X.shape[0])
        if device is None and is_torch_tensor(X):
            device = X.device
        return FitData(torch_data(X, weights, xp), n_positive, exponent, self, device, rows=X)

    def source(self, X, *, device):
        return torch_data(X, None, torch_namespace(device, X))

    def mean(self, values):
        return float(values.mean()) if is_torch_tensor(values) else float(np.mean(values))

    def evaluate(self, estimator, X, structure, params, reduction, *, device):
        X = self.check(estimator, X, reset=False)
        source = self.source(X, device=device)
        result = source.xp.concat(source.map_log_prob(structure, params, reduction))
        return result.to(X.device) if is_torch_tensor(X) else source.xp.to_numpy(result)


ENGINE = TorchEngine()
