"""init_params="hc": mclust's model-based hierarchical start, checked against mclust's own numbers.

tests/data/mclust/hc_faithful.R made the reference files with R's mclust 6.0.0.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import gaussmix._compiled as compiled_module
import gaussmix.em.init as init_module
from gaussmix import GaussianMixture, GaussianMixtureSelector
from gaussmix.datasets import load_faithful
from gaussmix.em.hierarchical import agglomerate, partition, svd_transform

REFERENCE = Path(__file__).parent / "data" / "mclust"


def reference(name: str) -> np.ndarray:
    return np.loadtxt(REFERENCE / name, delimiter=",", skiprows=1, dtype=int)


@pytest.fixture(scope="module")
def faithful():
    return load_faithful().data


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    """The hierarchy's compiled loop (where numba is installed) and its NumPy path."""
    if request.param == "compiled":
        pytest.importorskip("numba")
    monkeypatch.setattr(compiled_module, "ENABLED", request.param == "compiled")
    return request.param


def test_the_merges_are_mclusts(faithful, path):
    """Every one of the 271 merges, in order, including mclust's rule for equal costs (32 duplicate rows)."""
    merges, _ = agglomerate(svd_transform(faithful, np.ones(len(faithful))), np.ones(len(faithful)))
    np.testing.assert_array_equal(merges + 1, reference("hc_faithful_merges.csv"))


def hierarchy(X, weights, compiled, monkeypatch):
    monkeypatch.setattr(compiled_module, "ENABLED", compiled)
    return agglomerate(svd_transform(X, weights), weights)


@pytest.mark.parametrize("d", [1, 2, 3, 6])
def test_the_compiled_loop_makes_the_same_merges(d, monkeypatch):
    """Weighted rows (zeros included), repeated rows and rows heavier than d: the same hierarchy both ways."""
    pytest.importorskip("numba")
    rng = np.random.RandomState(d)
    X = np.vstack([rng.normal(size=(40, d)) @ rng.normal(size=(d, d)), rng.normal(4, 1, (30, d))])
    X = np.vstack([X, X[:8]])  # repeated rows: equal costs
    for weights in (np.ones(len(X)), rng.randint(0, 4, len(X)).astype(float), rng.uniform(0.5, 9, len(X))):
        expected = hierarchy(X, weights, False, monkeypatch)
        merges, start = hierarchy(X, weights, True, monkeypatch)
        np.testing.assert_array_equal(merges, expected[0])
        np.testing.assert_array_equal(start, expected[1])


def test_the_partitions_are_mclusts(faithful, path):
    merges, start = agglomerate(svd_transform(faithful, np.ones(len(faithful))), np.ones(len(faithful)))
    expected = reference("hc_faithful_partitions.csv")
    for n_clusters in range(1, 7):
        np.testing.assert_array_equal(partition(merges, start, n_clusters) + 1, expected[:, n_clusters - 1])


def test_a_fit_from_the_hierarchy_reaches_mclusts_log_likelihood(faithful):
    model = GaussianMixture(3, covariance_type="tied", init_params="hc", tol=1e-8, max_iter=1000).fit(faithful)
    assert model.score(faithful) * len(faithful) >= -1126.326 - 0.02  # mclust's EEE, 3 components


def test_the_start_is_deterministic_and_runs_once(faithful):
    seen = []
    first = GaussianMixture(3, init_params="hc", n_init=5, random_state=1, callback=seen.append).fit(faithful)
    again = GaussianMixture(3, init_params="hc", random_state=2).fit(faithful)
    np.testing.assert_array_equal(first.means_, again.means_)
    assert {info.restart for info in seen} == {0}


def test_a_selector_builds_the_hierarchy_once(faithful, monkeypatch):
    calls = []
    original = init_module.agglomerate
    monkeypatch.setattr(init_module, "agglomerate", lambda *a, **k: calls.append(1) or original(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selector = GaussianMixtureSelector(range(1, 6), covariance_types=["full", "tied"], init_params="hc",
                                           n_init=1, random_state=0).fit(faithful)
    assert len(calls) == 1 and len(selector.results_) == 10


def test_larger_data_use_a_weighted_sample(monkeypatch):
    """Above the row limit the hierarchy is built on a weighted sample; EM's first E-step assigns the rest."""
    monkeypatch.setattr(init_module, "HC_MAX_ROWS", 150)
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(6, 1, (300, 2))])
    a = GaussianMixture(2, init_params="hc", random_state=0).fit(X)
    b = GaussianMixture(2, init_params="hc", random_state=0).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert sorted(np.round(a.means_[:, 0]).tolist()) == [0.0, 6.0]


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_the_sampled_hierarchy_on_every_engine(monkeypatch, engine):
    pytest.importorskip(engine)
    from conftest import on_engine

    monkeypatch.setattr(init_module, "HC_MAX_ROWS", 150)
    rng = np.random.RandomState(1)
    X = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(6, 1, (300, 2))])
    weights = rng.uniform(0.5, 2.0, X.shape[0])
    reference = GaussianMixture(2, init_params="hc", random_state=0).fit(X, sample_weight=weights)
    model = GaussianMixture(2, init_params="hc", random_state=0).fit(on_engine(X, engine, chunks=128),
                                                                    sample_weight=weights)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-8)


def test_degenerate_data_do_not_break_the_hierarchy(path):
    """A constant feature, every row identical, one feature: the hierarchy still gives a start."""
    rng = np.random.RandomState(0)
    cases = [np.column_stack([rng.normal(size=60), np.ones(60)]), np.ones((10, 2)), rng.normal(size=(50, 1))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for X in cases:
            model = GaussianMixture(2, init_params="hc").fit(X)
            assert np.isclose(model.weights_.sum(), 1.0) and np.all(np.isfinite(model.means_))


def test_compiling_leaves_the_loop_module_as_it_is(monkeypatch):
    """The compiled loop calls compiled helpers from a copy of its module's namespace; the module keeps plain ones."""
    pytest.importorskip("numba")
    import types

    from gaussmix.em import _hierarchy_loop

    monkeypatch.setattr(compiled_module, "ENABLED", True)
    assert compiled_module.compiled(_hierarchy_loop.merge_loop) is not None
    assert isinstance(_hierarchy_loop._merge_costs, types.FunctionType)
    monkeypatch.setattr(compiled_module, "ENABLED", False)
    assert compiled_module.compiled(_hierarchy_loop.merge_loop) is None
