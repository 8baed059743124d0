"""scikit-learn's own mixture tests, run against gaussmix's GaussianMixture and BayesianGaussianMixture.

The test modules are read from the installed scikit-learn, their import of
``sklearn.mixture.GaussianMixture`` and ``BayesianGaussianMixture`` is
replaced by gaussmix's classes, and their test functions are collected here. Left out are the tests of
scikit-learn's private helpers (they test scikit-learn's internals, not the
estimator's behaviour) and those of its array-API dispatch.
"""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path

import numpy as np
import pytest

#: Tests that call scikit-learn's private helpers or its array-API machinery.
PRIVATE = {
    "test_suffstat_sk_full",
    "test_suffstat_sk_tied",
    "test_suffstat_sk_diag",
    "test_gaussian_suffstat_sk_spherical",
    "test_compute_log_det_cholesky",
    "test_gaussian_mixture_log_probabilities",
    "test_gaussian_mixture_precisions_init_diag",
    "test_gaussian_mixture_precisions_init",
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters",
    "test_gaussian_mixture_array_api_compliance",
    "test_gaussian_mixture_raises_where_array_api_not_implemented",
    "test_log_dirichlet_norm",
    "test_log_wishart_norm",
}


def _suite(name: str) -> types.ModuleType:
    """scikit-learn's ``sklearn/mixture/tests/<name>.py`` with gaussmix's estimators imported."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "mixture" / "tests" / f"{name}.py"
    source = path.read_text(encoding="utf-8")
    swapped, count = re.subn(
        r"^from sklearn\.mixture import (.*)$", lambda m: f"from gaussmix import {m.group(1)}", source,
        flags=re.MULTILINE,
    )
    assert count == 1, f"{path}: expected one 'from sklearn.mixture import' line, found {count}"
    module = types.ModuleType(f"sklearn_suite_{name}")
    module.__file__ = str(path)
    exec(compile(swapped, str(path), "exec"), module.__dict__)
    import gaussmix

    for estimator in ("GaussianMixture", "BayesianGaussianMixture"):
        if hasattr(module, estimator):
            assert getattr(module, estimator) is getattr(gaussmix, estimator)
    return module


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def global_dtype(request):
    return request.param


@pytest.fixture(params=[42])
def global_random_seed(request):
    return request.param


for _name in ("test_gaussian_mixture", "test_mixture", "test_bayesian_mixture"):
    _module = _suite(_name)
    for _test, _function in vars(_module).items():
        if _test.startswith("test_") and callable(_function) and _test not in PRIVATE:
            globals()[f"{_test}__{_name.removeprefix('test_')}"] = _function
del _name, _module, _test, _function
