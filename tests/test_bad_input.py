"""Bad input: a ValueError whose message says what is wrong, and nothing lost."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError as SkNotFittedError

from gaussmix import GaussianMixture, InvalidParameterError, NotFittedError

GOOD = np.random.RandomState(0).normal(size=(40, 2))


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), "NaN"),
        (np.array([[0.0, 1.0], [np.inf, 2.0], [1.0, 1.0]]), "infinity"),
        (np.arange(10.0), "Expected 2D array"),
        (np.empty((0, 3)), "0 sample"),
        (np.empty((5, 0)), "0 feature"),
        ([["a", "b"], ["c", "d"]], "could not convert|numeric"),
        (np.ones((3, 2, 2)), "dim 3|3-dimensional|Expected 2D"),
    ],
)
def test_bad_training_data(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(X)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match=r"n_samples >= n_components.*n_components = 5, n_samples = 3"):
        GaussianMixture(5).fit(GOOD[:3])


def test_fewer_weighted_samples_than_components():
    weights = np.zeros(40)
    weights[:2] = 1.0
    with pytest.raises(ValueError, match=r"n_samples = 2 \(rows with positive weight\)"):
        GaussianMixture(3).fit(GOOD, sample_weight=weights)


def test_wrong_feature_count_at_predict_time():
    gm = GaussianMixture(2, random_state=0).fit(GOOD)
    for method in (gm.predict, gm.predict_proba, gm.score_samples, gm.score):
        with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
            method(np.ones((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        gm.predict(np.array([[np.nan, 0.0]]))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_components=0), "n_components must be an integer >= 1, got 0"),
        (dict(n_components=2.5), "n_components must be an integer"),
        (dict(covariance_type="ful"), r"covariance_type must be one of 'full', 'tied', 'diag', 'spherical', 'EII',"
                                      r".*'VVV', .*; got 'ful'"),
        (dict(init_params="kmeans+"), "init_params must be one of"),
        (dict(tol=-1.0), "tol must be a finite number >= 0"),
        (dict(reg_covar=-1e-6), "reg_covar must be a finite number >= 0"),
        (dict(reg_covar=float("nan")), "reg_covar must be a finite number >= 0"),
        (dict(max_iter=-1), "max_iter must be an integer >= 0"),
        (dict(n_init=0), "n_init must be an integer >= 1"),
        (dict(verbose_interval=0), "verbose_interval must be an integer >= 1"),
        (dict(warm_start="yes"), "warm_start must be True or False"),
    ],
)
def test_bad_hyperparameters(params, message):
    with pytest.raises(InvalidParameterError, match=message) as info:
        GaussianMixture(**{"n_components": 1, **params}).fit(GOOD)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(weights_init=[0.5, 0.5, 0.0]), r"'weights' should have the shape of \(2,\), but got \(3,\)"),
        (dict(weights_init=[1.5, -0.5]), r"weights_init ranges from -0.5 to 1.5; every weight must lie in \[0, 1\]"),
        (dict(weights_init=[0.3, 0.3]), r"weights_init sums to 0.6, which differs from 1 by 0.4"),
        (dict(weights_init=[0.5, 0.50001]), r"weights_init sums to 1.00001, which differs from 1 by 1e-05"),
        (dict(weights_init=[np.nan, 1.0]), "weights_init contains NaN"),
        (dict(means_init=[[0.0, 0.0]]), r"'means' should have the shape of \(2, 2\), but got \(1, 2\).*means_init"),
        (dict(means_init=[[0.0, np.inf], [1.0, 1.0]]), "means_init contains NaN or infinity"),
        (dict(precisions_init=np.ones((2, 3, 3))), r"'full precision' should have the shape of \(2, 2, 2\), but got "
                                                   r"\(2, 3, 3\).*precisions_init"),
        (dict(precisions_init=np.array([[[1.0, 0.5], [0.0, 1.0]]] * 2)), "precisions_init matrix .* is not symmetric"),
        (dict(precisions_init=np.array([[[1.0, 2.0], [2.0, 1.0]]] * 2)), "is not positive definite"),
        (dict(covariance_type="diag", precisions_init=[[1.0, -1.0], [1.0, 1.0]]), "'diag precision' should be "
                                                                                  "positive.*must be > 0"),
        (dict(covariance_type="spherical", precisions_init=[1.0, 0.0]), "must be > 0"),
        (dict(covariance_type="tied", precisions_init=np.eye(3)),
         r"should have the shape of \(2, 2\), but got \(3, 3\)"),
    ],
)
def test_bad_initial_arrays(params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, **params).fit(GOOD)


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.ones(39), r"sample_weight.shape == \(39,\), expected \(40,\)"),
        (-np.ones(40), "Negative values in data passed to sample_weight"),
        (np.r_[np.nan, np.ones(39)], "sample_weight contains NaN"),
        (np.zeros(40), "sample_weight is zero for every row"),
        (np.ones((40, 1)), "sample_weight must be 1D"),
        (["a"] * 40, "sample_weight must be an array of numbers"),
    ],
)
def test_bad_sample_weight(weights, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(GOOD, sample_weight=weights)


def test_not_fitted():
    gm = GaussianMixture(2)
    for call in (lambda: gm.predict(GOOD), lambda: gm.predict_proba(GOOD), lambda: gm.score_samples(GOOD),
                 lambda: gm.score(GOOD), lambda: gm.sample(3), lambda: gm.bic(GOOD), lambda: gm.aic(GOOD)):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    assert issubclass(NotFittedError, SkNotFittedError)


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_bad_sample_count(n):
    gm = GaussianMixture(1).fit(GOOD)
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(n)


@pytest.mark.parametrize(
    "bad_fit",
    [
        lambda gm: gm.fit(np.array([[np.nan, 1.0, 2.0]] * 5)),
        lambda gm: gm.fit(np.ones((50, 3)) + np.arange(50)[:, None], sample_weight=-np.ones(50)),
        lambda gm: gm.set_params(n_components=100).fit(np.random.RandomState(1).normal(size=(50, 3))),
    ],
)
def test_failed_refit_keeps_the_fitted_model(bad_fit):
    gm = GaussianMixture(2, random_state=0).fit(GOOD)
    before = {k: v for k, v in vars(gm).items() if k.endswith("_")}
    labels, scores = gm.predict(GOOD), gm.score_samples(GOOD)
    with pytest.raises(ValueError):
        bad_fit(gm)
    gm.set_params(n_components=2)
    after = {k: v for k, v in vars(gm).items() if k.endswith("_")}
    assert after.keys() == before.keys()
    assert gm.n_features_in_ == 2
    assert np.array_equal(gm.predict(GOOD), labels)
    np.testing.assert_array_equal(gm.score_samples(GOOD), scores)


def test_parameters_are_not_modified_by_fit():
    weights = [0.5, 0.5]
    gm = GaussianMixture(2, weights_init=weights, means_init=[[0, 0], [1, 1]]).fit(GOOD)
    assert gm.weights_init is weights and gm.means_init == [[0, 0], [1, 1]]
