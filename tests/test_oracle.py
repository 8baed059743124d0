"""Densities and responsibilities against independent formulas (scipy.stats)."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture
from gaussmix.covariance import get_structure


def mixture_logpdf(gm, X):
    d = X.shape[1]
    full = get_structure(gm.covariance_type).layout.full_covariances(gm.covariances_, gm.n_components, d)
    per_component = np.column_stack(
        [np.log(w) + multivariate_normal(m, c).logpdf(X) for w, m, c in zip(gm.weights_, gm.means_, full)]
    )
    return per_component


def test_score_samples_equals_scipy(blobs, structure):
    X = blobs[0]
    gm = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    weighted = mixture_logpdf(gm, X)
    np.testing.assert_allclose(gm.score_samples(X), logsumexp(weighted, axis=1), rtol=1e-10)
    np.testing.assert_allclose(gm.predict_proba(X), np.exp(weighted - logsumexp(weighted, axis=1)[:, None]), atol=1e-12)
    assert gm.score(X) == pytest.approx(np.mean(logsumexp(weighted, axis=1)), rel=1e-12)


def test_on_new_points_far_and_near(blobs, structure):
    X = blobs[0]
    gm = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    new = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 2.0], [-20.0, 40.0, 10.0]])
    np.testing.assert_allclose(gm.score_samples(new), logsumexp(mixture_logpdf(gm, new), axis=1), rtol=1e-10)


def test_precisions_are_inverse_covariances(blobs, structure):
    gm = GaussianMixture(3, covariance_type=structure, random_state=0).fit(blobs[0])
    structure_ = get_structure(structure)
    cov = structure_.layout.full_covariances(gm.covariances_, 3, 3)
    prec = structure_.layout.full_covariances(gm.precisions_, 3, 3)
    np.testing.assert_allclose(cov @ prec, np.broadcast_to(np.eye(3), cov.shape), atol=1e-10)
    if structure_.layout.is_matrix:
        chol = gm.precisions_cholesky_
        np.testing.assert_allclose(chol @ np.swapaxes(chol, -1, -2), gm.precisions_, rtol=1e-12)
        assert np.allclose(np.tril(chol, -1), 0)  # upper triangular, as in scikit-learn
    else:
        np.testing.assert_allclose(gm.precisions_cholesky_**2, gm.precisions_, rtol=1e-12)


def test_bic_aic_formulas(blobs, structure):
    X = blobs[0]
    gm = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    n, d = X.shape
    cov_params = {"full": 3 * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": 3 * d, "spherical": 3}[structure]
    p = cov_params + 3 * d + 2
    loglik = logsumexp(mixture_logpdf(gm, X), axis=1).sum()
    assert gm.bic(X) == pytest.approx(-2 * loglik + p * np.log(n), rel=1e-12)
    assert gm.aic(X) == pytest.approx(-2 * loglik + 2 * p, rel=1e-12)


def test_sample_matches_the_model(structure):
    gm = GaussianMixture(2, covariance_type=structure, random_state=0)
    rng = np.random.RandomState(0)
    gm.fit(np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(8, 2, (200, 2))]))
    X, y = gm.sample(40000)
    assert X.shape == (40000, 2) and y.shape == (40000,)
    assert np.all(np.diff(y) >= 0)  # grouped by component, as in scikit-learn
    np.testing.assert_allclose(np.bincount(y) / y.size, gm.weights_, atol=0.01)
    full = get_structure(structure).layout.full_covariances(gm.covariances_, 2, 2)
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(axis=0), gm.means_[k], atol=0.05 * np.sqrt(full[k].max()) + 0.03)
        np.testing.assert_allclose(np.cov(X[y == k].T), full[k], rtol=0.06, atol=0.03)
