"""The NumPy engine: rows in memory, chunks processed by a few threads.

Anything that is not a tensor or a Dask collection runs here: NumPy arrays,
lists, pandas and polars dataframes, sparse input (refused with
scikit-learn's message). A tensor given to this engine is copied to the
host first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussmix._namespace import is_torch_tensor
from gaussmix._validation import check_sample_weight, unit_exponent
from gaussmix.engines._base import Engine, FitData
from gaussmix.engines._chunked import ChunkedData


def check_array_input(estimator: Any, X: Any, *, reset: bool, min_samples: int = 1) -> np.ndarray:
    """``X`` as a float32 or float64 NumPy array, validated by scikit-learn against ``estimator``."""
    from sklearn.utils.validation import validate_data

    if is_torch_tensor(X):
        X = X.detach().cpu().numpy()
    return validate_data(estimator, X, dtype=[np.float64, np.float32], reset=reset, ensure_min_samples=min_samples)


def host_weights(sample_weight: Any, n_samples: int) -> tuple[np.ndarray | None, int, int]:
    """Checked weights rescaled by a power of two (None for unit weights), rows of positive weight, the exponent.

    Unit weights are not materialised: a weight vector is 8 bytes a row.
    """
    if sample_weight is None:
        return None, n_samples, 0
    if is_torch_tensor(sample_weight):
        sample_weight = sample_weight.detach().cpu().numpy()
    weights = check_sample_weight(sample_weight, n_samples)
    exponent = unit_exponent(float(np.max(weights)))
    return np.ldexp(weights, exponent), int(np.count_nonzero(weights)), exponent


class NumpyEngine(Engine):
    name = "numpy"
    fallback = True

    def accepts(self, X, device):
        return True

    def check(self, estimator, X, *, reset, min_samples=1):
        return check_array_input(estimator, X, reset=reset, min_samples=min_samples)

    def prepare(self, X, sample_weight, *, device):
        weights, n_positive, exponent = host_weights(sample_weight, X.shape[0])
        return FitData(ChunkedData(X, weights), n_positive, exponent, self, rows=X)

    def source(self, X, *, device):
        return ChunkedData(X)

    def evaluate(self, estimator, X, structure, params, reduction, *, device):
        X = self.check(estimator, X, reset=False)
        return np.concatenate(ChunkedData(X).map_log_prob(structure, params, reduction))


ENGINE = NumpyEngine()
