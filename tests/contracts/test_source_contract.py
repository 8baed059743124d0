"""The contract of an engine and its data source, run over every registered engine against NumPy's.

A new engine (one module plus one registry line) gets these tests for free:
its source answers what EM and initialisation ask with the NumPy engine's
numbers, and its predictions come back in the input's kind.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from conftest import DEVICE, ENGINES, STRUCTURES, as_numpy, on_engine

from gaussmix import GaussianMixture
from gaussmix.covariance import get_structure
from gaussmix.em.init import LabelResponsibilities
from gaussmix.em.kernels import DENSITY_AND_CERTAINTY, LABELS, LOG_DENSITY, RESPONSIBILITIES
from gaussmix.em.params import kernel_terms
from gaussmix.em.source import DataSource, RowSource
from gaussmix.engines import Engine, get_engine, resolve_engine

LIBRARY = {"torch": "torch", "dask": "dask"}


@pytest.fixture(params=ENGINES)
def engine(request):
    library = LIBRARY.get(request.param)
    if library and importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    return request.param


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(1)
    X = np.vstack([rng.normal(0, 1, (300, 3)), rng.normal(4, 1.5, (250, 3))]) + np.array([10.0, -5.0, 0.0])
    weights = rng.uniform(0.0, 3.0, X.shape[0])
    weights[::7] = 0.0
    labels = (X[:, 0] > 12).astype(int) + (X[:, 1] > -3).astype(int)
    return X, weights, labels


def prepared(name, X, weights):
    engine = get_engine(name)
    device = DEVICE if engine.uses_device else None
    return engine, engine.fit_data(GaussianMixture(), on_engine(X, name, chunks=128), weights, device=device)


def params_for(structure):
    """Parameters of a short fit (EM stopped early: a point that is not a fixed point)."""
    rng = np.random.RandomState(2)
    X = np.vstack([rng.normal(0, 1, (200, 3)), rng.normal(4, 1.5, (200, 3))]) + np.array([10.0, -5.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianMixture(3, covariance_type=structure, random_state=0, max_iter=5).fit(X)
    return model._params_from_attributes()


def test_every_engine_is_registered_and_resolves_its_input(engine, data):
    chosen = get_engine(engine)
    assert isinstance(chosen, Engine) and chosen.name == engine
    device = DEVICE if chosen.uses_device else None
    assert resolve_engine("auto", None, on_engine(data[0], engine)) is chosen
    assert resolve_engine(engine, device, data[0]) is chosen


def test_sizes_weights_and_moments(engine, data):
    X, weights, _ = data
    _, reference = prepared("numpy", X, weights)
    _, fit_data = prepared(engine, X, weights)
    source, expected = fit_data.source, reference.source
    assert isinstance(source, DataSource)
    assert (source.n_samples, source.n_features, source.dtype) == (expected.n_samples, expected.n_features,
                                                                 expected.dtype)
    assert fit_data.n_positive == reference.n_positive == int(np.count_nonzero(weights))
    assert fit_data.given_scale(source.total_weight) == pytest.approx(weights.sum(), rel=1e-12)
    np.testing.assert_allclose(source.shift, expected.shift, rtol=1e-12)
    for ours, theirs in zip(source.feature_moments(), expected.feature_moments(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11)


@pytest.mark.parametrize("structure_name", STRUCTURES)
def test_statistics_equal_the_numpy_engines(engine, data, structure_name):
    X, weights, labels = data
    structure = get_structure(structure_name)
    params = params_for(structure_name)
    _, reference = prepared("numpy", X, weights)
    _, fit_data = prepared(engine, X, weights)
    source, expected = fit_data.source, reference.source
    ours = source.estep(structure, kernel_terms(structure, params, source.shift))
    theirs = expected.estep(structure, kernel_terms(structure, params, expected.shift))
    for name in ("counts", "first", "second", "log_likelihood", "total_weight"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-10, atol=1e-9, err_msg=name)
    given = LabelResponsibilities(labels, 3)
    ours, theirs = source.statistics(structure, given, 3), expected.statistics(structure, given, 3)
    for name in ("counts", "first", "second"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-10, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(source.weighted_sum(structure, params, DENSITY_AND_CERTAINTY),
                               expected.weighted_sum(structure, params, DENSITY_AND_CERTAINTY), rtol=1e-10)


def test_rows_for_initialisation(engine, data):
    X, weights, _ = data
    _, reference = prepared("numpy", X, weights)
    _, fit_data = prepared(engine, X, weights)
    sample, expected = fit_data.source.weighted_sample(50, 7), reference.source.weighted_sample(50, 7)
    assert isinstance(sample, RowSource)
    np.testing.assert_allclose(as_numpy(sample.rows(np.arange(50))), as_numpy(expected.rows(np.arange(50))))
    whole = fit_data.source.in_memory()
    assert isinstance(whole, RowSource) and whole.n_samples == X.shape[0]
    np.testing.assert_allclose(as_numpy(whole.rows(np.arange(X.shape[0]))), X)
    np.testing.assert_allclose(whole.weights_numpy(), fit_data.source.in_memory().weights_numpy())


@pytest.mark.parametrize("reduction", [LOG_DENSITY, LABELS, RESPONSIBILITIES], ids=["density", "labels", "resp"])
def test_results_come_back_in_the_inputs_kind(engine, data, reduction):
    X = data[0]
    start = params_for("full")
    model = GaussianMixture.from_parameters(start.weights, start.means, start.covariances)
    chosen = get_engine(engine)
    device = DEVICE if chosen.uses_device else None
    given = on_engine(X, engine, chunks=128)
    structure, params = get_structure("full"), model._params_from_attributes()
    result = chosen.evaluate(model, given, structure, params, reduction, device=device)
    expected = get_engine("numpy").evaluate(model, X, structure, params, reduction, device=None)
    assert type(result).__module__.split(".")[0] == type(given).__module__.split(".")[0]
    np.testing.assert_allclose(as_numpy(result), expected, rtol=1e-10, atol=1e-12)
    total, n = chosen.log_likelihood(model, given, structure, params, device=device)
    assert n == X.shape[0] and total == pytest.approx(float(np.sum(model.score_samples(X))), rel=1e-12)
