import numpy as np
import pytest

from gaussmix.datasets import load_faithful, make_mixture


def test_faithful():
    faithful = load_faithful()
    X = faithful.data
    assert X.shape == (272, 2) and X.dtype == np.float64
    assert faithful.feature_names == ["eruptions", "waiting"]
    np.testing.assert_allclose(X[0], [3.6, 79.0])
    assert X[:, 0].min() == pytest.approx(1.6) and X[:, 0].max() == pytest.approx(5.1)
    assert X[:, 1].min() == 43 and X[:, 1].max() == 96
    np.testing.assert_allclose(X.mean(axis=0), [3.487783, 70.897059], rtol=1e-6)
    assert "Old Faithful" in faithful.DESCR
    data, target = load_faithful(return_X_y=True)
    np.testing.assert_array_equal(data, X) and target is None


def test_faithful_as_frame():
    frame = load_faithful(as_frame=True).frame
    assert list(frame.columns) == ["eruptions", "waiting"] and len(frame) == 272


def test_make_mixture_draws_from_the_mixture():
    weights = [0.2, 0.8]
    means = [[0.0, 0.0], [10.0, -5.0]]
    covs = [[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.5]]]
    X, y = make_mixture(20000, weights, means, covs, random_state=1)
    assert X.shape == (20000, 2) and y.shape == (20000,)
    np.testing.assert_allclose(np.bincount(y) / y.size, weights, atol=0.01)
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(axis=0), means[k], atol=0.06)
        np.testing.assert_allclose(np.cov(X[y == k].T), covs[k], atol=0.08)
    again, _ = make_mixture(20000, weights, means, covs, random_state=1)
    np.testing.assert_array_equal(X, again)
    assert not np.all(np.diff(y) >= 0)  # shuffled by default


def test_make_mixture_other_structures():
    X, y = make_mixture(100, [0.5, 0.5], [[0, 0, 0], [4, 4, 4]], [1.0, 2.0], covariance_type="spherical",
                        random_state=0, shuffle=False)
    assert X.shape == (100, 3) and np.all(np.diff(y) >= 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weights=[0.5, 0.6]), "weights sums to 1.1, which differs from 1 by 0.1"),
        (dict(means=[0, 1]), r"means must have shape \(n_components, n_features\)"),
        (dict(covariances=[[[1.0, 0.0], [0.0, 1.0]]]), r"must have shape \(2, 2, 2\)"),
        (dict(covariances=[[[1.0, 2.0], [2.0, 1.0]]] * 2), "positive definite"),
        (dict(n_samples=0), "n_samples must be an integer >= 1"),
    ],
)
def test_make_mixture_errors(kwargs, message):
    args = dict(n_samples=10, weights=[0.5, 0.5], means=[[0, 0], [1, 1]], covariances=[np.eye(2)] * 2)
    with pytest.raises(ValueError, match=message):
        make_mixture(**{**args, **kwargs})
