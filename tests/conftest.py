"""Shared fixtures.

``SCIPY_ARRAY_API`` must be set before SciPy is imported for scikit-learn's
array-API estimator check to run instead of being skipped.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gaussmix.covariance import available_structures, get_structure  # noqa: E402
from gaussmix.datasets import make_mixture  # noqa: E402
from gaussmix.engines import ENGINES as ENGINE_CHOICES  # noqa: E402

#: scikit-learn's four covariance structures, which the estimator, engine and API tests run over.
STRUCTURES = ("full", "tied", "diag", "spherical")
#: Every registered covariance structure (mclust's fourteen models; tests/test_constrained.py and the
#: structure contracts run over them).
MODELS = available_structures()
#: The structures whose covariances are general matrices.
MATRIX_STRUCTURES = tuple(s for s in STRUCTURES if get_structure(s).layout.is_matrix)

BLOB_MEANS = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 7.0, 5.0]])
BLOB_COVS = np.array(
    [
        [[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.8]],
        [[1.5, -0.4, 0.1], [-0.4, 0.7, 0.0], [0.1, 0.0, 1.0]],
        [[0.6, 0.0, 0.0], [0.0, 1.8, 0.5], [0.0, 0.5, 1.0]],
    ]
)


@pytest.fixture
def blobs():
    """300 rows from three well-separated 3-D Gaussians, with their labels."""
    return make_mixture(300, [0.4, 0.35, 0.25], BLOB_MEANS, BLOB_COVS, random_state=0)


@pytest.fixture(params=STRUCTURES)
def structure(request):
    return request.param


#: Every engine (the engine tests run each against NumPy).
ENGINES = tuple(e for e in ENGINE_CHOICES if e != "auto")


#: Torch device of the engine tests ("cuda" on a machine with a GPU).
DEVICE = os.environ.get("GAUSSMIX_TEST_DEVICE", "cpu")


def on_engine(X, engine, chunks=97, dtype=None):
    """``X`` as the engine's input: a NumPy array, a tensor on DEVICE or a Dask array of ``chunks`` rows."""
    X = np.asarray(X, dtype=dtype)
    if engine == "torch":
        import torch

        return torch.tensor(X, device=DEVICE)
    if engine == "dask":
        import dask.array as da

        return da.from_array(X, chunks=(chunks, X.shape[1]))
    return X


def as_numpy(a):
    """A result of any engine (array, tensor, lazy Dask array) as a NumPy array."""
    if hasattr(a, "compute"):
        a = a.compute()
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


def estep(source, structure, params):
    """E-step statistics of a Gaussian mixture's ``params`` on a data source."""
    from gaussmix.em.params import kernel_terms

    return source.estep(structure, kernel_terms(structure, params, source.shift))
