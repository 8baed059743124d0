"""The PyTorch engine: the kernels' array namespace for torch tensors, and the engine itself.

Every kernel runs unchanged on tensors on any device. Chunks are large on a
GPU (launches are expensive, memory is plentiful), chunk statistics are
summed on the device in float64, and a pass brings one small set of
statistics back to the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussmix._errors import InvalidParameterError, MissingDependencyError
from gaussmix._namespace import is_dask_collection, is_torch_tensor
from gaussmix.engines._base import Engine, FitData
from gaussmix.engines._checks import check_features
from gaussmix.engines._chunked import ChunkedData
from gaussmix.engines._numpy import check_array_input, host_weights


def import_torch():
    """``torch``, or an error that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            "the torch engine needs PyTorch: pip install 'gaussmix[torch]'"
        ) from exc
    return torch


_TORCH_DTYPES = {"float32": "float32", "float64": "float64", "int64": "int64", "bool": "bool", "int32": "int32"}


class TorchNamespace:
    """:class:`gaussmix._namespace.ArrayNamespace` for tensors on one ``device``."""

    name = "torch"

    def __init__(self, device: Any = None):
        torch = import_torch()
        self.torch = torch
        self.device = torch.device("cpu" if device is None else device)
        if self.device.type == "cuda":
            # Temporaries of 2^26 entries (256 MB in float32): few launches per pass.
            self.chunk_elements, self.max_chunk_rows = 1 << 26, 1 << 22
        else:
            self.chunk_elements, self.max_chunk_rows = 1 << 21, 1 << 16

    def __eq__(self, other):
        return isinstance(other, TorchNamespace) and other.device == self.device

    def __reduce__(self):
        return (TorchNamespace, (str(self.device),))

    def __hash__(self):
        return hash(("torch", str(self.device)))

    def __repr__(self):
        return f"TorchNamespace({str(self.device)!r})"

    def torch_dtype(self, dtype: Any):
        if dtype is None or isinstance(dtype, self.torch.dtype):
            return dtype
        return getattr(self.torch, _TORCH_DTYPES[np.dtype(dtype).name])

    def asarray(self, a, dtype=None):
        torch = self.torch
        dtype = self.torch_dtype(dtype)
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=dtype)
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            a = a.copy()  # torch.as_tensor warns on read-only arrays
        if isinstance(a, (int, float)):
            return torch.tensor(a, dtype=dtype, device=self.device)
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

    def to_numpy(self, a):
        if isinstance(a, self.torch.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def to_float64(self, a):
        return a.to(self.torch.float64)

    def to_numpy_many(self, arrays):
        """float64 arrays brought to the host in one transfer (one synchronisation on a GPU)."""
        torch = self.torch
        tensors = [torch.as_tensor(a, dtype=torch.float64, device=self.device) for a in arrays]
        flat = torch.cat([t.reshape(-1) for t in tensors]).cpu().numpy()
        out, start = [], 0
        for t in tensors:
            out.append(flat[start : start + t.numel()].reshape(tuple(t.shape)))
            start += t.numel()
        return out

    def dtype_of(self, a):
        return np.dtype(str(a.dtype).removeprefix("torch."))

    def ones(self, shape, dtype):
        return self.torch.ones(shape, dtype=self.torch_dtype(dtype), device=self.device)

    def exp(self, a):
        return self.torch.exp(a)

    def sqrt(self, a):
        return self.torch.sqrt(a)

    def stack(self, arrays, axis=0):
        return self.torch.stack(arrays, dim=axis)

    def concat(self, arrays):
        return self.torch.cat(arrays)

    def log(self, a):
        return self.torch.log(a)

    def amax(self, a, axis):
        return self.torch.amax(a, dim=axis)

    def centre_transposed(self, X, shift, dtype):
        """``(X - shift).T`` as a contiguous ``(d, m)`` tensor of ``dtype``, the difference taken in float64."""
        torch = self.torch
        shift64 = torch.as_tensor(np.asarray(shift, dtype=np.float64), device=X.device)
        out = (X.to(torch.float64) - shift64).to(self.torch_dtype(dtype))
        return out.T.contiguous()

    def triu_products(self, Xt):
        """Packed upper-triangular products, one broadcast product per row (faster than gathers)."""
        d, m = Xt.shape
        out = self.torch.empty((d * (d + 1) // 2, m), dtype=Xt.dtype, device=Xt.device)
        start = 0
        for i in range(d):
            self.torch.mul(Xt[i], Xt[i:], out=out[start : start + d - i])
            start += d - i
        return out

    def sum(self, a, axis=None):
        return self.torch.sum(a) if axis is None else self.torch.sum(a, dim=axis)

    def argmax(self, a, axis):
        return self.torch.argmax(a, dim=axis)

    def argmin(self, a, axis):
        return self.torch.argmin(a, dim=axis)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)  # a Python number takes the tensor's dtype

    def isfinite(self, a):
        return self.torch.isfinite(a)

    def take(self, a, indices, axis):
        indices = self.asarray(indices).to(device=a.device, dtype=self.torch.int64)
        return self.torch.index_select(a, axis, indices)

    def transpose_last(self, a):
        return a.transpose(-1, -2)

    def put_rows(self, a, rows, values):
        out = a.clone()
        out[self.asarray(rows).to(device=a.device, dtype=self.torch.int64)] = values.to(a.device)
        return out

    def logsumexp(self, a, axis):
        return self.torch.logsumexp(a, dim=axis)


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
