"""The array namespace the numeric kernels are written against.

Kernels (the E-step, the sufficient statistics, k-means distances) take the
namespace as their first, required argument ``xp`` and use only the
operations listed in :class:`ArrayNamespace` plus Python's arithmetic
operators (``+ - * /``), which every supported array library implements.
Products of a chunk's arrays go through :meth:`ArrayNamespace.matmul`
(NumPy's ``@`` holds the GIL through small products, see there).
A new array library adds one namespace class (PyTorch's is in
:mod:`gaussmix.engines._torch_namespace`); the kernels do not change.

The M-step works on small per-component arrays and always runs in NumPy
float64 on the host, so linear algebra (Cholesky factors, triangular solves)
is not part of this interface. Per-chunk statistics stay in the namespace
(on the device) while they are summed; :meth:`ArrayNamespace.to_numpy` is
called once per pass on the total.
"""

from __future__ import annotations

import operator
from typing import Any, Protocol

import numpy as np


class ArrayNamespace(Protocol):
    """Operations the kernels use, with NumPy's names and meanings."""

    name: str
    #: Whether arrays are in host memory (compiled loops can work on them through :meth:`host_view`).
    in_host_memory: bool
    #: Elements of the largest per-chunk temporary, and the largest chunk in rows.
    chunk_elements: int
    max_chunk_rows: int

    def asarray(self, a: Any, dtype: Any = None) -> Any: ...
    def to_numpy(self, a: Any) -> np.ndarray: ...
    def to_float64(self, a: Any) -> Any: ...
    def to_numpy_many(self, arrays: list[Any]) -> list[np.ndarray]: ...
    def dtype_of(self, a: Any) -> np.dtype: ...
    def ones(self, shape: tuple[int, ...], dtype: Any) -> Any: ...
    def exp(self, a: Any) -> Any: ...
    def sqrt(self, a: Any) -> Any: ...
    def stack(self, arrays: list[Any], axis: int = 0) -> Any: ...
    def concat(self, arrays: list[Any]) -> Any: ...
    def log(self, a: Any) -> Any: ...
    def amax(self, a: Any, axis: int) -> Any: ...
    def centre_transposed(self, X: Any, shift: Any, dtype: Any) -> Any: ...
    def triu_products(self, Xt: Any, trailing: int = 0) -> Any: ...
    def sum(self, a: Any, axis: int | None = None) -> Any: ...
    def column_squares(self, a: Any) -> Any: ...
    def products_with_rows(self, a: Any, b: Any) -> Any: ...
    def matmul(self, a: Any, b: Any) -> Any: ...
    def argmax(self, a: Any, axis: int) -> Any: ...
    def argmin(self, a: Any, axis: int) -> Any: ...
    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def isfinite(self, a: Any) -> Any: ...
    def take(self, a: Any, indices: Any, axis: int) -> Any: ...
    def transpose_last(self, a: Any) -> Any: ...
    def reshape(self, a: Any, shape: tuple[int, ...]) -> Any: ...
    def logsumexp(self, a: Any, axis: int) -> Any: ...
    def put_rows(self, a: Any, rows: np.ndarray, values: Any) -> Any: ...
    def host_view(self, a: Any) -> np.ndarray: ...
    def worker_threads(self) -> int | None: ...
    def one_thread_each(self) -> Any: ...


class NumpyNamespace:
    """:class:`ArrayNamespace` for NumPy arrays."""

    name = "numpy"
    in_host_memory = True
    chunk_elements = 1 << 19
    max_chunk_rows = 16384

    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a):
        return np.asarray(a)

    def to_float64(self, a):
        return np.asarray(a, dtype=np.float64)

    def to_numpy_many(self, arrays):
        """Several arrays (or Python numbers) at once; a device brings them back in one transfer."""
        return [np.asarray(a) for a in arrays]

    def dtype_of(self, a):
        return np.asarray(a).dtype if not hasattr(a, "dtype") else np.dtype(a.dtype)

    def ones(self, shape, dtype):
        return np.ones(shape, dtype=dtype)

    def exp(self, a):
        return np.exp(a)

    def sqrt(self, a):
        return np.sqrt(a)

    def stack(self, arrays, axis=0):
        return np.stack(arrays, axis=axis)

    def concat(self, arrays):
        return np.concatenate(arrays)

    def log(self, a):
        with np.errstate(divide="ignore"):
            return np.log(a)

    def amax(self, a, axis):
        return np.max(a, axis=axis)

    def centre_transposed(self, X, shift, dtype):
        """``(X - shift).T`` as a C-contiguous ``(d, m)`` array of ``dtype``."""
        out = np.empty((X.shape[1], X.shape[0]), dtype=dtype)
        np.subtract(X.T, shift[:, None], out=out, casting="same_kind")
        return out

    def host_view(self, a):
        """``a`` as a C-contiguous NumPy array, sharing its memory where it is contiguous already."""
        return np.ascontiguousarray(a)

    def worker_threads(self):
        """Threads a pass over chunks may use (None: the usable cores, see ``default_threads``)."""
        return None

    def one_thread_each(self):
        """A context in which the namespace's own operations use one thread each (the worker threads
        are the parallelism): BLAS limited to one thread."""
        from gaussmix._threads import single_threaded_blas

        return single_threaded_blas()

    def centre_rows(self, X, shift, dtype):
        """``(X - shift).T`` as the transposed view of a C-contiguous ``(m, d)`` array of ``dtype``.

        One pass along the rows as they lie in memory: several times faster
        than :meth:`centre_transposed`'s strided copy for wide rows, and as
        good for the matrix products; a chunk centred once per pass (data too
        large to keep centred) takes this one.
        """
        out = np.empty(X.shape, dtype=dtype)
        np.subtract(X, shift, out=out, casting="same_kind")
        return out.T

    def triu_products(self, Xt, trailing=0):
        """Rows ``Xt[i] * Xt[j]`` for ``i <= j``, in packed upper-triangular order: ``(d(d+1)/2, m)``, with
        ``trailing`` rows after them left for the caller to fill."""
        d, m = Xt.shape
        out = np.empty((d * (d + 1) // 2 + trailing, m), dtype=Xt.dtype)
        start = 0
        for i in range(d):
            width = d - i
            np.multiply(Xt[i], Xt[i:], out=out[start : start + width])
            start += width
        return out

    def sum(self, a, axis=None):
        return np.sum(a, axis=axis)

    def column_squares(self, a):
        """``sum(a * a, axis=0)`` of a 2-d array in one pass, without the squares in memory."""
        return np.einsum("ij,ij->j", a, a)

    def products_with_rows(self, a, b):
        """``a @ b.T`` for 2-d ``a`` (w, m) and ``b`` (K, m), the products along their long rows (see
        :func:`row_products`)."""
        return row_products(a, b, self.matmul)

    def matmul(self, a, b):
        """``a @ b``; for two matrices as ``np.dot``, which lets other threads run while BLAS multiplies.

        ``@`` keeps the GIL through the whole product when the result has
        fewer than about 500 entries (a chunk's moments: ``(w, K)`` from
        rows ``m`` long), so worker threads took such products one at a
        time: full covariances, n = 1e5, d = 2, K = 4, two workers were
        slower than one (chunks of 12,500 rows: 0.18 ms alone, 0.38 ms each
        side by side). The same BLAS call either way.
        """
        if a.ndim == 2 and b.ndim == 2:
            return np.dot(a, b)
        return a @ b

    def argmax(self, a, axis):
        return np.argmax(a, axis=axis)

    def argmin(self, a, axis):
        return np.argmin(a, axis=axis)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def isfinite(self, a):
        return np.isfinite(a)

    def take(self, a, indices, axis):
        return np.take(a, indices, axis=axis)

    def transpose_last(self, a):
        return np.swapaxes(a, -1, -2)

    def reshape(self, a, shape):
        return np.reshape(a, shape)

    def put_rows(self, a, rows, values):
        """A copy of ``a`` with the rows at the integer indices ``rows`` replaced by ``values``."""
        out = a.copy()
        out[rows] = values
        return out

    def logsumexp(self, a, axis):
        top = np.max(a, axis=axis, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore", under="ignore"):
            out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
        return np.squeeze(out, axis=axis)


NUMPY = NumpyNamespace()


def is_torch_tensor(X: Any) -> bool:
    """Whether ``X`` is a PyTorch tensor (without importing torch)."""
    return any(c.__module__ == "torch" and c.__name__ == "Tensor" for c in type(X).__mro__)


def is_dask_collection(X: Any) -> bool:
    """Whether ``X`` is a Dask array, dataframe or series (without importing dask)."""
    module = type(X).__module__
    return module.startswith(("dask.", "dask_expr")) and hasattr(X, "__dask_graph__")


def row_products(a: Any, b: Any, matmul: Any = operator.matmul) -> Any:
    """``a @ b.T`` for the rows ``a`` (w, m) and ``b`` (K, m) of a chunk: for a wide ``a`` and a short ``b``,
    as ``(b @ a.T).T`` (its transpose, a view), which BLAS takes faster (one thread, m rows per chunk as the
    engines size them: w = 65-561 and K = 4-16, 1.1-1.3 times in NumPy and up to 1.6 in torch on a CPU;
    w = 17 or K = 256: as fast or slower)."""
    w, K = a.shape[0], b.shape[0]
    if w >= 64 and (K <= 16 or (w >= 256 and K <= 64)):
        return matmul(b, a.T).T
    return matmul(a, b.T)
