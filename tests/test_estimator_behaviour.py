"""Behaviour a scikit-learn user relies on beyond the common checks."""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning

from gaussmix import ConvergenceWarning, GaussianMixture
from gaussmix.em.init import INIT_METHODS

INITS = INIT_METHODS  # every method by name


@pytest.mark.parametrize("init", INITS)
def test_fit_predict_equals_fit_then_predict(blobs, structure, init):
    X, _ = blobs
    params = dict(n_components=3, covariance_type=structure, init_params=init, random_state=0, max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = GaussianMixture(**params).fit_predict(X)
        again = GaussianMixture(**params).fit(X).predict(X)
    np.testing.assert_array_equal(labels, again)


def test_recovers_the_generating_mixture(blobs, structure):
    X, y = blobs
    gm = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    labels = gm.predict(X)
    # Each true cluster maps to one component (a perfect partition up to numbering).
    pairs = {(a, b) for a, b in zip(y, labels)}
    assert len(pairs) == 3


def test_convergence_warning_is_sklearns(blobs):
    sklearn_sentence = re.escape(
        "Best performing initialization did not converge. Try different init parameters, or increase "
        "max_iter, tol, or check for degenerate data."
    )
    with pytest.warns(ConvergenceWarning, match=sklearn_sentence + ".* only 1 iteration") as record:
        GaussianMixture(3, max_iter=1, random_state=0).fit(blobs[0])
    assert issubclass(record[0].category, SkConvergenceWarning)
    with pytest.warns(ConvergenceWarning, match=sklearn_sentence + r".* After 2 iterations the lower bound still "
                      r"changed by \d"):
        GaussianMixture(3, max_iter=2, tol=0, random_state=0).fit(blobs[0])


def test_max_iter_zero_returns_the_initialisation(blobs):
    X, _ = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm = GaussianMixture(3, max_iter=0, n_init=3, random_state=0).fit(X)
    assert gm.n_iter_ == 0 and gm.lower_bound_ == -np.inf and gm.lower_bounds_ == []
    assert not gm.converged_
    assert gm.predict(X).shape == (300,)


def test_warm_start_continues_from_the_fitted_parameters(blobs, capsys):
    X, _ = blobs
    params = dict(n_components=3, covariance_type="full", max_iter=2, random_state=0, tol=0)
    gm = GaussianMixture(warm_start=True, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
        first = gm.lower_bounds_
        gm.set_params(n_init=5, verbose=1).fit(X)  # n_init is ignored when continuing
        second = gm.lower_bounds_
        assert capsys.readouterr().out.count("Initialization ") == 2  # one start, one end line
        cold = GaussianMixture(**{**params, "max_iter": 4}).fit(X)
    assert second[0] >= first[-1] - 1e-12
    # Two warm 2-iteration fits equal one cold 4-iteration fit from the same start.
    np.testing.assert_allclose(gm.means_, cold.means_, rtol=1e-10)
    np.testing.assert_allclose(first + second, cold.lower_bounds_, rtol=1e-12)


def test_verbose_output(blobs, capsys):
    GaussianMixture(3, verbose=2, verbose_interval=1, n_init=2, random_state=0).fit(blobs[0])
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Initialization 1" in out
    assert "Iteration 1\t time lapse" in out and "ll change" in out
    assert "Initialization converged." in out.replace(" time lapse", "\n").replace(". time", ".")


def test_dataframe_feature_names(blobs):
    import pandas as pd

    X, _ = blobs
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    gm = GaussianMixture(3, random_state=0).fit(frame)
    np.testing.assert_array_equal(gm.feature_names_in_, ["a", "b", "c"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        unnamed = gm.predict(X)
    np.testing.assert_array_equal(gm.predict(frame), unnamed)
    with pytest.raises(ValueError, match="feature names"):
        gm.predict(frame.rename(columns={"a": "z"}))


def test_means_init_alone_starts_from_those_means(blobs):
    X, y = blobs
    true_means = np.array([X[y == k].mean(axis=0) for k in range(3)])
    with pytest.warns(ConvergenceWarning):
        gm = GaussianMixture(3, means_init=true_means, max_iter=1, tol=0).fit(X)
    # One EM step from a nearest-mean start keeps each component on its cluster.
    np.testing.assert_allclose(gm.means_, true_means, atol=0.2)


def test_sample_is_reproducible(blobs):
    gm = GaussianMixture(3, random_state=5).fit(blobs[0])
    a, la = gm.sample(50)
    b, lb = gm.sample(50)
    np.testing.assert_array_equal(a, b) and np.testing.assert_array_equal(la, lb)


def test_starting_covariances_are_the_inverses_of_precisions_init():
    """The starting point reported (iteration 0, and the fit with max_iter=0) holds covariances = precisions^-1."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    A = rng.normal(size=(2, 3, 3))
    precisions = A @ np.swapaxes(A, 1, 2) + np.eye(3)
    for structure, given in (("full", precisions), ("tied", precisions[0])):
        seen = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(2, covariance_type=structure, weights_init=[0.5, 0.5], means_init=X[:2],
                                 precisions_init=given, max_iter=0, callback=seen.append).fit(X)
        np.testing.assert_allclose(gm.covariances_, np.linalg.inv(given), rtol=1e-10)
        np.testing.assert_allclose(seen[0].covariances, np.linalg.inv(given), rtol=1e-10)


def test_warnings_point_at_the_callers_line():
    X = np.column_stack([np.random.RandomState(0).normal(size=100), np.ones(100)])
    for method in ("fit", "fit_predict"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            getattr(GaussianMixture(1), method)(X)
        assert caught and {w.filename for w in caught} == {__file__}, method
