"""sample_weight: 2 is a duplicated row, 0 is an absent row, in EM and every init."""

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.em.init import INIT_METHODS

INITS = INIT_METHODS  # every method by name
ATTRS = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def assert_same_fit(a, b, rtol=1e-8):
    assert a.n_iter_ == b.n_iter_
    for name in ATTRS:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=1e-10, err_msg=name)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-10)


@pytest.fixture
def data(blobs):
    X, _ = blobs
    counts = np.random.RandomState(7).randint(0, 4, X.shape[0])
    return X, counts


@pytest.mark.parametrize("init", INITS)
def test_integer_weights_equal_repeated_rows(data, structure, init):
    X, counts = data
    params = dict(n_components=3, covariance_type=structure, init_params=init, random_state=0)
    weighted = GaussianMixture(**params).fit(X, sample_weight=counts)
    repeated = GaussianMixture(**params).fit(np.repeat(X, counts, axis=0))
    assert_same_fit(weighted, repeated)


@pytest.mark.parametrize("init", INITS)
def test_zero_weight_equals_absent_row(data, structure, init):
    X, counts = data
    weights = (counts > 0).astype(float)
    params = dict(n_components=3, covariance_type=structure, init_params=init, random_state=0)
    weighted = GaussianMixture(**params).fit(X, sample_weight=weights)
    subset = GaussianMixture(**params).fit(X[weights > 0])
    assert_same_fit(weighted, subset)


@pytest.mark.parametrize("init", INITS)
def test_row_order_does_not_matter(data, structure, init):
    X, counts = data
    order = np.random.RandomState(3).permutation(X.shape[0])
    params = dict(n_components=3, covariance_type=structure, init_params=init, random_state=0)
    a = GaussianMixture(**params).fit(X, sample_weight=counts)
    b = GaussianMixture(**params).fit(X[order], sample_weight=counts[order])
    assert_same_fit(a, b)


def test_scaling_all_weights_changes_nothing(data, structure):
    X, counts = data
    a = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X, sample_weight=counts)
    b = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X, sample_weight=counts * 0.37)
    assert_same_fit(a, b)


def test_fractional_weights_shift_the_fit_towards_heavy_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(0, 1, (400, 1))
    weights = np.where(X[:, 0] > 0, 3.0, 1.0)
    gm = GaussianMixture(1).fit(X, sample_weight=weights)
    expected_mean = np.average(X[:, 0], weights=weights)
    expected_var = np.average((X[:, 0] - expected_mean) ** 2, weights=weights)
    assert gm.means_[0, 0] == pytest.approx(expected_mean, rel=1e-12)
    assert gm.covariances_[0, 0, 0] == pytest.approx(expected_var * (1 + 1e-6), rel=1e-9)


def test_lower_bound_is_the_weighted_mean_log_likelihood(data, structure):
    X, counts = data
    gm = GaussianMixture(3, covariance_type=structure, random_state=0, tol=1e-10, max_iter=500)
    gm.fit(X, sample_weight=counts)
    expected = np.average(gm.score_samples(X), weights=counts)
    assert gm.lower_bound_ == pytest.approx(expected, abs=1e-8)
