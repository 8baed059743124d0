"""The kernels' array namespace for torch tensors.

Every kernel runs unchanged on tensors on any device. Chunks are large on a
GPU (launches are expensive, memory is plentiful), chunk statistics are
summed on the device in float64, and a pass brings one small set of
statistics back to the host.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from gaussmix._errors import MissingDependencyError
from gaussmix._namespace import NUMPY, row_products


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
        self.in_host_memory = self.device.type == "cpu"
        if self.device.type == "cuda":
            # Temporaries of 2^26 entries (256 MB in float32): few launches per pass.
            self.chunk_elements, self.max_chunk_rows = 1 << 26, 1 << 22
        else:  # as NumPy's chunks: the CPU's caches
            self.chunk_elements, self.max_chunk_rows = 1 << 19, 1 << 14

    def __eq__(self, other):
        return isinstance(other, TorchNamespace) and other.device == self.device

    def __reduce__(self):
        return (TorchNamespace, (str(self.device),))

    def __hash__(self):
        return hash(("torch", str(self.device)))

    def __repr__(self):
        return f"TorchNamespace({str(self.device)!r})"

    def host_view(self, a):
        """A CPU tensor as a NumPy array sharing its memory (made contiguous first)."""
        return a.contiguous().numpy()

    def worker_threads(self):
        """On the CPU, rows are split over worker threads as NumPy's are (torch's own threads on tall-skinny
        products cost more than they save); a GPU takes one stream of chunks."""
        return None if self.device.type == "cpu" else 1

    @contextmanager
    def one_thread_each(self):
        """torch's intra-op threads limited to one while worker threads run chunks (restored after)."""
        torch = self.torch
        threads = torch.get_num_threads()
        if self.device.type != "cpu" or threads == 1:
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

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

    def triu_products(self, Xt, trailing=0):
        """Packed upper-triangular products, one broadcast product per row (faster than gathers).

        On the CPU NumPy's multiplications write them into the tensor's memory:
        the same products (each one rounding), at 1.5-2 times the speed of
        torch's broadcast products on rows of a few hundred to a few thousand
        values.
        """
        if self.device.type == "cpu":
            return self.torch.from_numpy(NUMPY.triu_products(Xt.numpy(), trailing))
        d, m = Xt.shape
        out = self.torch.empty((d * (d + 1) // 2 + trailing, m), dtype=Xt.dtype, device=Xt.device)
        start = 0
        for i in range(d):
            self.torch.mul(Xt[i], Xt[i:], out=out[start : start + d - i])
            start += d - i
        return out

    def reshape(self, a, shape):
        return self.torch.reshape(a, shape)

    def sum(self, a, axis=None):
        return self.torch.sum(a) if axis is None else self.torch.sum(a, dim=axis)

    def column_squares(self, a):
        return self.torch.sum(a * a, dim=0)

    def products_with_rows(self, a, b):
        return row_products(a, b) if self.device.type == "cpu" else a @ b.T

    def matmul(self, a, b):
        return a @ b

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
