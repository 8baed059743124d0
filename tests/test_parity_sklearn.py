"""Same answers as scikit-learn's GaussianMixture from the same starting point."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture
from gaussmix.covariance import get_structure

ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def standardise(X):
    """Unit variance per feature: gaussmix's relative reg_covar equals sklearn's absolute one."""
    return (X - X.mean(axis=0)) / X.std(axis=0)


def starting_point(X, structure, n_components=3, seed=1):
    """Rough, deliberately imperfect initial parameters for both libraries."""
    rng = np.random.RandomState(seed)
    d = X.shape[1]
    means = X[rng.choice(X.shape[0], n_components, replace=False)]
    weights = np.full(n_components, 1.0 / n_components)
    variances = np.linspace(0.5, 1.5, n_components)
    shape = get_structure(structure).covariance_shape(n_components, d)
    precisions = {
        "full": np.stack([np.eye(d) / v for v in variances]),
        "tied": np.eye(d) * 1.2,
        "diag": np.outer(1 / variances, np.ones(d)),
        "spherical": 1 / variances,
    }[structure]
    assert precisions.shape == shape
    return dict(weights_init=weights, means_init=means, precisions_init=precisions)


def fit_both(X, structure, **params):
    ours = GaussianMixture(covariance_type=structure, **params).fit(X)
    theirs = SkGaussianMixture(covariance_type=structure, **params).fit(X)
    return ours, theirs


@pytest.mark.parametrize("reg_covar", [1e-6, 0.0])
def test_same_parameters_and_likelihood_from_same_init(blobs, structure, reg_covar):
    X = standardise(blobs[0])
    init = starting_point(X, structure)
    ours, theirs = fit_both(
        X, structure, n_components=3, reg_covar=reg_covar, tol=1e-10, max_iter=500, **init
    )
    assert ours.converged_ and theirs.converged_
    assert ours.n_iter_ == theirs.n_iter_
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-6, atol=1e-6, err_msg=name)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, abs=1e-6)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    assert ours.bic(X) == pytest.approx(theirs.bic(X), abs=1e-5)
    assert ours.aic(X) == pytest.approx(theirs.aic(X), abs=1e-5)


def test_every_iteration_matches_with_default_tolerance(blobs, structure):
    """Same stopping iteration and lower bounds at sklearn's default tol and max_iter."""
    X = standardise(blobs[0])
    init = starting_point(X, structure, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = fit_both(X, structure, n_components=3, **init)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-7, atol=1e-9)


def test_unscaled_data_without_regularisation(blobs, structure):
    """With reg_covar=0 the scale convention is irrelevant: parity on raw data too."""
    X = blobs[0] * [1.0, 30.0, 0.01] + [100.0, -5.0, 0.0]
    init = starting_point(X, structure, seed=2)
    init["precisions_init"] = {
        "full": np.stack([np.diag(1 / X.var(axis=0))] * 3),
        "tied": np.diag(1 / X.var(axis=0)),
        "diag": np.tile(1 / X.var(axis=0), (3, 1)),
        "spherical": np.full(3, 1 / X.var(axis=0).mean()),
    }[structure]
    ours, theirs = fit_both(X, structure, n_components=3, reg_covar=0.0, tol=1e-10, max_iter=500, **init)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-6, err_msg=name)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-9)


def test_default_fit_matches_sklearn_on_well_scaled_data(blobs, structure):
    """Default settings (k-means init, tol) reach scikit-learn's solution on standardised data."""
    X = standardise(blobs[0])
    ours, theirs = fit_both(X, structure, n_components=3, random_state=0, tol=1e-8, max_iter=1000)
    order_ours = np.lexsort(ours.means_.T)
    order_theirs = np.lexsort(theirs.means_.T)
    np.testing.assert_allclose(ours.means_[order_ours], theirs.means_[order_theirs], atol=1e-5)
    np.testing.assert_allclose(ours.weights_[order_ours], theirs.weights_[order_theirs], atol=1e-5)
    assert ours.score(X) == pytest.approx(theirs.score(X), abs=1e-7)
    # Same partition of the rows, up to the numbering of the components.
    relabel = dict(zip(order_ours, order_theirs))
    assert np.array_equal([relabel[k] for k in ours.predict(X)], theirs.predict(X))


@pytest.mark.parametrize("n_components, n_features, whitened", [(2, 3, True), (4, 16, True), (6, 16, False),
                                                                 (7, 48, True)])
def test_full_covariance_kernels_agree_with_sklearn(n_components, n_features, whitened):
    """Both full-covariance kernels (whitening for few components or many features, quadratic features
    otherwise)."""
    from gaussmix.covariance.layouts import FULL

    rng = np.random.RandomState(n_components)
    centres = rng.normal(0, 4, (n_components, n_features))
    X = standardise(centres[rng.randint(0, n_components, 2000)] + rng.normal(size=(2000, n_features)))
    init = dict(weights_init=np.full(n_components, 1 / n_components),
                means_init=X[rng.choice(2000, n_components, replace=False)],
                precisions_init=np.stack([np.eye(n_features) * 2.0] * n_components))
    assert FULL.whitens(n_features, n_components) == whitened
    ours, theirs = fit_both(X, "full", n_components=n_components, tol=1e-10, max_iter=300, **init)
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-6, atol=1e-6, err_msg=name)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, abs=1e-6)
