"""Properties that hold for any data (hypothesis draws the data sets)."""

import warnings

import numpy as np
import pytest
from conftest import STRUCTURES, estep
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gaussmix import FitError, GaussianMixture
from gaussmix.covariance import get_structure
from gaussmix.engines._chunked import ChunkedData

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mixtures(draw, min_rows=20):
    """A data set from a random mixture, a structure and a component count."""
    seed = draw(st.integers(0, 2**31 - 1))
    n_features = draw(st.integers(1, 4))
    n_components = draw(st.integers(1, 4))
    n_rows = draw(st.integers(max(min_rows, 4 * n_components * (n_features + 1)), 150))
    spread = draw(st.sampled_from([0.5, 3.0, 10.0]))
    rng = np.random.RandomState(seed)
    centres = rng.normal(0, spread, (n_components, n_features))
    scales = rng.uniform(0.3, 2.0, (n_components, n_features))
    labels = rng.randint(0, n_components, n_rows)
    X = centres[labels] + rng.normal(size=(n_rows, n_features)) * scales[labels]
    structure = draw(st.sampled_from(STRUCTURES))
    return X, structure, n_components, seed


def fit(X, structure, k, seed, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, covariance_type=structure, random_state=seed % 1000, **params)
        return gm.fit(X, sample_weight=sample_weight)


def full_covariances(gm):
    d = gm.means_.shape[1]
    return get_structure(gm.covariance_type).layout.full_covariances(gm.covariances_, gm.n_components, d)


@SETTINGS
@given(mixtures())
def test_weights_and_responsibilities_on_the_simplex(case):
    X, structure, k, seed = case
    gm = fit(X, structure, k, seed)
    assert np.all(gm.weights_ >= 0) and gm.weights_.sum() == pytest.approx(1.0, abs=1e-12)
    resp = gm.predict_proba(X)
    assert np.all(resp >= 0) and np.allclose(resp.sum(axis=1), 1.0, atol=1e-12)


@SETTINGS
@given(mixtures())
def test_covariances_symmetric_positive_definite(case):
    X, structure, k, seed = case
    for cov in full_covariances(fit(X, structure, k, seed)):
        np.testing.assert_array_equal(cov, cov.T)
        assert np.min(np.linalg.eigvalsh(cov)) > 0


@SETTINGS
@given(mixtures())
def test_lower_bound_never_decreases_without_regularisation(case):
    X, structure, k, seed = case
    try:
        gm = fit(X, structure, k, seed, reg_covar=0.0, tol=1e-9, max_iter=200)
    except FitError:
        assume(False)  # a component collapsed onto too few rows: no EM to check
    bounds = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-9 * (1 + np.abs(bounds[1:])))


@SETTINGS
@given(mixtures(), st.randoms(use_true_random=False))
def test_permuting_rows_changes_nothing(case, random):
    X, structure, k, seed = case
    order = np.array(random.sample(range(X.shape[0]), X.shape[0]))
    a = fit(X, structure, k, seed)
    b = fit(X[order], structure, k, seed)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(a.predict(X)[order], b.predict(X[order]))


@SETTINGS
@given(mixtures(), st.integers(1, 40))
def test_chunked_statistics_equal_unchunked(case, chunk_rows):
    X, structure, k, seed = case
    gm = fit(X, structure, k, seed, max_iter=2)
    params = gm._params_from_attributes()
    weights = np.random.RandomState(seed).uniform(0, 3, X.shape[0])
    s = get_structure(structure)
    whole = estep(ChunkedData(X, weights, chunk_rows=X.shape[0]), s, params)
    parts = estep(ChunkedData(X, weights, chunk_rows=chunk_rows), s, params)
    for name in ("counts", "first", "second"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-9, atol=1e-9)
    assert parts.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-11)


@SETTINGS
@given(mixtures(), st.data())
def test_duplicated_row_equals_weight_two(case, data):
    X, structure, k, seed = case
    doubled = data.draw(st.lists(st.integers(0, X.shape[0] - 1), min_size=1, max_size=10, unique=True))
    weights = np.ones(X.shape[0])
    weights[doubled] = 2.0
    a = fit(X, structure, k, seed, sample_weight=weights, tol=1e-6)
    b = fit(np.vstack([X, X[doubled]]), structure, k, seed, tol=1e-6)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-7, atol=1e-9)


@SETTINGS
@given(mixtures(), st.sampled_from([1e-7, 1e-3, 1e3, 1e7]))
def test_scale_invariance(case, scale):
    X, structure, k, seed = case
    a = fit(X, structure, k, seed)
    b = fit(X * scale, structure, k, seed)
    np.testing.assert_array_equal(a.predict(X), b.predict(X * scale))
    np.testing.assert_allclose(b.means_ / scale, a.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.covariances_ / scale**2, a.covariances_, rtol=1e-6, atol=1e-12)


@SETTINGS
@given(mixtures(), st.data())
def test_affine_map_maps_parameters_and_shifts_log_density(case, data):
    """x -> A x + b from the mapped start: means and covariances map, log p shifts by -log|det A|."""
    X, structure, k, seed = case
    d = X.shape[1]
    rng = np.random.RandomState(seed)
    layout = get_structure(structure).layout
    if layout.is_matrix:
        A = rng.normal(size=(d, d)) + 3 * np.eye(d)
        assume(abs(np.linalg.det(A)) > 0.1)
    elif layout.name == "diagonal":
        A = np.diag(rng.uniform(0.2, 5.0, d) * rng.choice([-1, 1], d))
    else:
        A = rng.uniform(0.2, 5.0) * np.eye(d)
    b = rng.normal(0, 10, d)
    try:
        start = fit(X, structure, k, seed, reg_covar=0.0, max_iter=1)
    except FitError:
        assume(False)
    s = get_structure(structure)
    cov = full_covariances(start)
    mapped_cov = A @ cov @ A.T
    packed = {  # the mapped covariances in the layout's storage
        "full": mapped_cov,
        "shared": mapped_cov[0],
        "diagonal": np.diagonal(mapped_cov, axis1=1, axis2=2),
        "scalar": mapped_cov[:, 0, 0],
    }[layout.name]
    prec = s.layout.precisions(s.layout.precisions_cholesky(packed))
    init = dict(
        weights_init=start.weights_,
        reg_covar=0.0,
        tol=1e-7,
        max_iter=50,
    )
    try:
        a = fit(X, structure, k, seed, means_init=start.means_, precisions_init=start.precisions_, **init)
        Y = X @ A.T + b
        m = fit(Y, structure, k, seed, means_init=start.means_ @ A.T + b, precisions_init=prec, **init)
    except FitError:
        assume(False)
    assert a.n_iter_ == m.n_iter_
    scale = np.abs(a.means_).max() + 1
    np.testing.assert_allclose(m.means_, a.means_ @ A.T + b, rtol=1e-6, atol=1e-6 * scale * np.abs(A).max())
    np.testing.assert_allclose(full_covariances(m), A @ full_covariances(a) @ A.T, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(
        m.score_samples(Y), a.score_samples(X) - np.log(abs(np.linalg.det(A))), rtol=1e-6, atol=1e-6
    )


@SETTINGS
@given(mixtures(), st.sampled_from([100.0, 1000.0]))
def test_far_points_have_finite_scores(case, distance):
    X, structure, k, seed = case
    gm = fit(X, structure, k, seed)
    sd = np.sqrt(X.var(axis=0).max()) + 1e-12
    far = X.mean(axis=0) + distance * sd * np.eye(X.shape[1])
    scores = gm.score_samples(far)
    assert np.all(np.isfinite(scores))
    assert np.allclose(gm.predict_proba(far).sum(axis=1), 1.0)
