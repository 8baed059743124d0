"""Initialisation on data larger than the k-means subsample."""

import numpy as np
import pytest

import gaussmix.em.init as init_module
from gaussmix import GaussianMixture
from gaussmix.datasets import make_mixture
from gaussmix.em.sampling import heaviest_keys
from gaussmix.engines._chunked import ChunkedData


@pytest.fixture
def large(monkeypatch):
    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 500)  # make 3,000 rows "large"
    X, y = make_mixture(3000, [0.5, 0.3, 0.2], [[0, 0], [6, 4], [-2, 7]], [np.eye(2)] * 3, random_state=0)
    return X, y


def test_subsample_draws_follow_the_weights():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 2))
    weights = np.r_[np.full(200, 1.0), np.full(100, 3.0), np.zeros(100)]
    data = ChunkedData(X, weights, chunk_rows=64)
    heavy = []
    for stream in range(300):
        rows = heaviest_keys(data.chunks(1), 20, stream, data.fingerprints)
        assert rows.size == 20 and np.all(rows < 300)  # weight 0 is never drawn
        heavy.append(np.mean(rows >= 200))
    # With 200 rows of weight 1 and 100 of weight 3, a single draw is heavy with probability 0.6;
    # sampling 20 without replacement keeps the share close to it.
    assert np.mean(heavy) == pytest.approx(0.6, abs=0.03)


def test_subsample_does_not_depend_on_row_order():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(500, 3))
    order = rng.permutation(500)
    a = ChunkedData(X, chunk_rows=37)
    b = ChunkedData(X[order], chunk_rows=53)
    rows_a = heaviest_keys(a.chunks(1), 50, 7, a.fingerprints)
    rows_b = heaviest_keys(b.chunks(1), 50, 7, b.fingerprints)
    np.testing.assert_array_equal(np.sort(order[rows_b]), rows_a)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random_from_data"])
def test_large_data_fit_is_good_and_order_free(large, init):
    X, y = large
    gm = GaussianMixture(3, init_params=init, random_state=0).fit(X)
    labels = gm.predict(X)
    assert len({(a, b) for a, b in zip(y, labels)}) == 3  # the three clusters, up to numbering
    order = np.random.RandomState(2).permutation(len(X))
    shuffled = GaussianMixture(3, init_params=init, random_state=0).fit(X[order])
    np.testing.assert_allclose(shuffled.means_, gm.means_, rtol=1e-8)
    weights = np.r_[np.ones(len(X)), np.zeros(200)]
    padded = np.vstack([X, np.random.RandomState(3).normal(50, 1, (200, 2))])
    with_zeros = GaussianMixture(3, init_params=init, random_state=0).fit(padded, sample_weight=weights)
    np.testing.assert_allclose(with_zeros.means_, gm.means_, rtol=1e-8)


def test_wide_rows_get_value_fingerprints_in_blocks():
    """Rows of more than 64 features are hashed block by block: still a function of the values alone."""
    from gaussmix.em.sampling import fingerprints

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 200))
    X[7] = X[3]  # a duplicate row
    mean, scale = X.mean(axis=0), X.std(axis=0)
    prints = fingerprints(X, mean, scale)
    order = rng.permutation(40)
    np.testing.assert_array_equal(fingerprints(X[order], mean, scale), prints[order])
    assert prints[7] == prints[3] and len(set(prints.tolist())) == 39
    swapped = X.copy()
    swapped[:, [0, 1]] = swapped[:, [1, 0]]  # the position of a value matters
    assert not np.any(fingerprints(swapped, mean[[1, 0, *range(2, 200)]], scale[[1, 0, *range(2, 200)]]) == prints)
