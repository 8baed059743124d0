"""callback, marginal, from_parameters and criterion_table."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture, InvalidParameterError, IterationInfo
from gaussmix.covariance import get_structure
from gaussmix.selection import criterion_table


def test_callback_sees_every_iteration(blobs, structure):
    X, _ = blobs
    seen = []
    gm = GaussianMixture(3, covariance_type=structure, n_init=2, random_state=0, callback=seen.append).fit(X)
    assert all(isinstance(info, IterationInfo) for info in seen)
    assert {info.covariance_type for info in seen} == {structure}
    for restart in (0, 1):
        mine = [info for info in seen if info.restart == restart]
        assert [info.iteration for info in mine] == list(range(len(mine)))
        assert mine[0].lower_bound == -np.inf and np.isnan(mine[0].change)
    best = [info for info in seen if info.restart == 0]
    if best[-1].lower_bound != gm.lower_bound_:
        best = [info for info in seen if info.restart == 1]
    assert [info.lower_bound for info in best[1:]] == gm.lower_bounds_
    np.testing.assert_allclose(best[-1].means, gm.means_)
    np.testing.assert_allclose(best[-1].weights, gm.weights_)
    np.testing.assert_allclose(best[-1].covariances, gm.covariances_)


def test_callback_error_stops_the_fit_and_keeps_the_old_model(blobs):
    X, _ = blobs
    gm = GaussianMixture(2, random_state=0).fit(X)
    means = gm.means_.copy()

    def stop(info):
        if info.iteration == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gm.set_params(n_components=3, callback=stop).fit(X)
    np.testing.assert_array_equal(gm.means_, means)
    with pytest.raises(InvalidParameterError, match="callback must be a callable"):
        GaussianMixture(callback="print").fit(X)


def test_marginal_density_matches_scipy(blobs, structure):
    X, _ = blobs
    gm = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    features = [2, 0]
    marginal = gm.marginal(features)
    assert marginal.n_features_in_ == 2 and marginal.covariance_type == structure
    full = get_structure(structure).layout.full_covariances(gm.covariances_, 3, 3)
    expected = logsumexp(
        [np.log(w) + multivariate_normal(m[features], c[np.ix_(features, features)]).logpdf(X[:, features])
         for w, m, c in zip(gm.weights_, gm.means_, full)],
        axis=0,
    )
    np.testing.assert_allclose(marginal.score_samples(X[:, features]), expected, rtol=1e-10)


def test_marginal_by_name_and_errors(blobs):
    import pandas as pd

    X = pd.DataFrame(blobs[0], columns=["a", "b", "c"])
    gm = GaussianMixture(2, random_state=0).fit(X)
    marginal = gm.marginal(["c"])
    np.testing.assert_array_equal(marginal.feature_names_in_, ["c"])
    np.testing.assert_allclose(marginal.means_[:, 0], gm.means_[:, 2])
    for bad in (["zz"], [3], [0, 0], []):
        with pytest.raises(ValueError):
            gm.marginal(bad)


def test_from_parameters(structure):
    means = np.array([[0.0, 0.0], [6.0, 6.0]])
    covariances = {
        "full": np.stack([np.eye(2), 2 * np.eye(2)]),
        "tied": np.eye(2),
        "diag": np.array([[1.0, 1.0], [2.0, 2.0]]),
        "spherical": np.array([1.0, 2.0]),
    }[structure]
    gm = GaussianMixture.from_parameters([0.5, 0.5], means, covariances, covariance_type=structure,
                                         feature_names=["u", "v"])
    assert gm.n_iter_ == 0 and not gm.converged_
    np.testing.assert_array_equal(gm.feature_names_in_, ["u", "v"])
    points = np.array([[0.5, -0.2], [5.0, 6.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unnamed array for a named model
        assert list(gm.predict(points)) == [0, 1]
    full = get_structure(structure).layout.full_covariances(covariances, 2, 2)
    expected = logsumexp([np.log(0.5) + multivariate_normal(m, c).logpdf(points) for m, c in zip(means, full)], axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_allclose(gm.score_samples(points), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "weights, covariances, message",
    [
        ([0.7, 0.7], np.stack([np.eye(2)] * 2), "sum to 1"),
        ([0.5, 0.5], np.stack([np.eye(2), -np.eye(2)]), "component 1 is not symmetric positive definite"),
        ([0.5, 0.5], np.eye(2), r"has shape \(2, 2\), expected \(2, 2, 2\)"),
        ([0.5, np.nan], np.stack([np.eye(2)] * 2), "NaN"),
    ],
)
def test_from_parameters_rejects_invalid(weights, covariances, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture.from_parameters(weights, [[0.0, 0.0], [1.0, 1.0]], covariances)


def test_warm_start_from_parameters_continues_em(blobs):
    X, _ = blobs
    fitted = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    start = GaussianMixture.from_parameters(fitted.weights_, fitted.means_, fitted.covariances_,
                                            warm_start=True, max_iter=5)
    start.fit(X)
    np.testing.assert_allclose(start.means_, fitted.means_, atol=1e-6)


def test_criterion_table(blobs):
    X, _ = blobs
    table = criterion_table(X, [1, 3], ["full", "spherical"], random_state=0, n_init=2)
    assert [(r["covariance_type"], r["n_components"]) for r in table] == [
        ("full", 1), ("full", 3), ("spherical", 1), ("spherical", 3)]
    for record in table:
        gm = GaussianMixture(record["n_components"], covariance_type=record["covariance_type"],
                             random_state=0, n_init=2).fit(X)
        assert record["bic"] == pytest.approx(gm.bic(X), rel=1e-12)
        assert record["aic"] == pytest.approx(gm.aic(X), rel=1e-12)
        assert record["n_parameters"] == gm._n_parameters() and record["error"] is None
    full3 = table[1]
    assert full3["bic"] == min(r["bic"] for r in table)


def test_criterion_table_records_failures_and_continues():
    X = np.random.RandomState(0).normal(size=(7, 2))
    table = criterion_table(X, [1, 8], ["diag"], random_state=0)
    assert table[0]["error"] is None and np.isfinite(table[0]["bic"])
    assert "n_samples >= n_components" in table[1]["error"] and np.isnan(table[1]["bic"])


def test_criterion_table_with_weights_equals_repeated_rows(blobs):
    X, _ = blobs
    counts = np.random.RandomState(1).randint(1, 3, X.shape[0])
    weighted = criterion_table(X, [2], ["tied"], sample_weight=counts, random_state=0)
    repeated = criterion_table(np.repeat(X, counts, axis=0), [2], ["tied"], random_state=0)
    assert weighted[0]["bic"] == pytest.approx(repeated[0]["bic"], rel=1e-9)
