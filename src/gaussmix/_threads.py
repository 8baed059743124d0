"""How many threads BLAS runs.

Passes over the data split rows over worker threads, each running
single-threaded BLAS (on small machines that beats threaded BLAS on
tall-skinny products), and the M-step's factorisations of small matrices
run single-threaded too: a second BLAS thread made a 128 x 128 Cholesky
factorisation 1.7 times slower on an idle 2-core machine, and up to 8 times
slower right after a pass, while the workers' threads were still spinning.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any

#: Matrices up to this order are factorised with one BLAS thread (larger ones gain from more).
SMALL_MATRIX_ORDER = 256

_BLAS: list | None = None


@contextmanager
def single_threaded_blas():
    """A context limiting BLAS to one thread (worker threads provide the parallelism).

    Entered once per pass over the data, so it only asks each BLAS library
    for its thread count (about a microsecond) and changes it only when it
    is not already 1; the count is restored on exit.
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController().select(user_api="blas").lib_controllers
    changed = [(library, count) for library in _BLAS if (count := library.get_num_threads()) != 1]
    for library, _ in changed:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, count in changed:
            library.set_num_threads(count)


def blas_for_matrices(order: int) -> Any:
    """A context for factorising matrices of ``order`` rows: one BLAS thread for small ones, else unchanged."""
    return single_threaded_blas() if order <= SMALL_MATRIX_ORDER else nullcontext()
