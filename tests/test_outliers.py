"""GaussianMixtureOutlierDetector on data with planted outliers."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gaussmix import (
    GaussianMixture,
    GaussianMixtureOutlierDetector,
    GaussianMixtureSelector,
)
from gaussmix._outliers import weighted_quantile
from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES as STRUCTURES
from gaussmix.datasets import make_mixture


@pytest.fixture(scope="module")
def planted():
    """900 rows from three clusters plus 30 rows (3.2%) spread uniformly over a wide box."""
    inliers, _ = make_mixture(900, [0.5, 0.3, 0.2], [[0, 0], [6, 3], [-2, 7]],
                              [[[1, 0.5], [0.5, 1]], [[1.5, -0.4], [-0.4, 0.6]], [[0.4, 0], [0, 1.2]]], random_state=0)
    rng = np.random.RandomState(1)
    outliers = rng.uniform([-12, -10], [16, 18], size=(60, 2))
    # keep only points genuinely away from the clusters (density check against the generating mixture)
    truth_model = GaussianMixture.from_parameters([0.5, 0.3, 0.2], [[0, 0], [6, 3], [-2, 7]],
                                                  [[[1, 0.5], [0.5, 1]], [[1.5, -0.4], [-0.4, 0.6]],
                                                   [[0.4, 0], [0, 1.2]]])
    outliers = outliers[truth_model.score_samples(outliers) < -12][:30]
    X = np.vstack([inliers, outliers])
    is_outlier = np.r_[np.zeros(len(inliers), bool), np.ones(len(outliers), bool)]
    order = rng.permutation(len(X))
    return X[order], is_outlier[order]


def test_planted_outliers_are_found(planted):
    X, is_outlier = planted
    contamination = is_outlier.mean()
    detector = GaussianMixtureOutlierDetector(contamination=contamination, random_state=0).fit(X)
    auc = roc_auc_score(is_outlier, -detector.score_samples(X))
    flagged = detector.predict(X) == -1
    precision = (flagged & is_outlier).sum() / flagged.sum()
    recall = (flagged & is_outlier).sum() / is_outlier.sum()
    print(f"\nplanted outliers: ROC AUC {auc:.4f}, precision {precision:.3f} and recall {recall:.3f} "
          f"at the true contamination {contamination:.4f}; model "
          f"{detector.mixture_.n_components} x {detector.mixture_.covariance_type}")
    assert auc >= 0.98, f"ROC AUC {auc:.4f}"
    assert precision >= 0.85, f"precision {precision:.3f}"
    assert flagged.sum() == round(contamination * len(X))


def test_conventions(planted):
    X, _ = planted
    detector = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0), contamination=0.05).fit(X)
    scores = detector.score_samples(X)
    np.testing.assert_allclose(scores, detector.mixture_.score_samples(X))
    np.testing.assert_allclose(detector.decision_function(X), scores - detector.offset_)
    assert set(detector.predict(X)) == {-1, 1}
    assert np.array_equal(detector.fit_predict(X), detector.predict(X))
    # The threshold is numpy.percentile's 5% point of the training scores, as in IsolationForest.
    assert detector.offset_ == pytest.approx(np.percentile(scores, 5))
    assert (detector.predict(X) == -1).sum() == (scores < np.percentile(scores, 5)).sum()


def test_fixed_thresholds(planted):
    X, _ = planted
    log_floor = -7.0
    by_log = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0), threshold=log_floor).fit(X)
    by_density = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0), threshold=math.exp(log_floor),
                                                threshold_type="density").fit(X)
    assert by_log.offset_ == log_floor and by_density.offset_ == pytest.approx(log_floor)
    expected = np.where(by_log.score_samples(X) < log_floor, -1, 1)
    np.testing.assert_array_equal(by_log.predict(X), expected)
    np.testing.assert_array_equal(by_density.predict(X), expected)


def test_i_dont_know_this_point(planted):
    X, is_outlier = planted
    detector = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0), contamination=0.03).fit(X)
    labels = detector.predict_component(X)
    assert np.array_equal(labels == -1, detector.predict(X) == -1)
    np.testing.assert_array_equal(labels[labels >= 0], detector.mixture_.predict(X)[labels >= 0])
    # Also refuse points that are between components.
    strict = detector.predict_component(X, min_responsibility=0.99)
    ambiguous = detector.mixture_.predict_proba(X).max(axis=1) < 0.99
    assert np.all(strict[ambiguous] == -1) and np.all(strict[labels == -1] == -1)
    assert (strict == -1).sum() > (labels == -1).sum()
    between = np.array([[3.0, 1.5]])  # halfway between two clusters
    assert detector.predict_component(between, min_responsibility=0.9)[0] == -1


def test_rare_components_are_anomalies():
    rng = np.random.RandomState(3)
    common = np.vstack([rng.normal(0, 1, (500, 2)), rng.normal([8, 0], 1, (480, 2))])
    rare = rng.normal([4, 10], 0.3, (15, 2))  # a tight, rare cluster: 1.5% of the rows
    X = np.vstack([common, rare])
    plain = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0), contamination=0.01).fit(X)
    assert np.mean(plain.predict(rare) == -1) < 0.5  # by density alone the tight cluster looks normal
    detector = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0), contamination=0.01,
                                              min_weight=0.05).fit(X)
    (k,) = detector.rare_components_
    assert detector.mixture_.weights_[k] < 0.05
    np.testing.assert_allclose(detector.mixture_.means_[k], [4, 10], atol=0.3)
    assert np.all(detector.predict(rare) == -1)
    assert np.all(detector.predict_component(rare) == -1)
    assert np.mean(detector.predict(common) == 1) > 0.98


def test_weighted_quantile_equals_repeated_rows():
    rng = np.random.RandomState(0)
    values = rng.normal(size=40)
    counts = rng.randint(0, 4, 40)
    for fraction in (0.01, 0.1, 0.25, 0.5):
        repeated = np.repeat(values, counts)
        assert weighted_quantile(values, counts.astype(float), fraction) == weighted_quantile(
            repeated, np.ones(repeated.size), fraction)
    unit = rng.normal(size=25)
    for fraction in (0.01, 0.1, 0.3, 0.5):
        assert weighted_quantile(unit, np.ones(25), fraction) == pytest.approx(np.percentile(unit, 100 * fraction))
    assert weighted_quantile(np.arange(10.0), np.ones(10), 0.3) == pytest.approx(2.7)  # 3 values below


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(contamination=0.7), r"contamination must be a number in \(0, 0.5\]"),
        (dict(contamination=0), r"contamination must be a number in \(0, 0.5\]"),
        (dict(threshold_type="pdf"), "threshold_type must be"),
        (dict(threshold=-1.0, threshold_type="density"), "a density threshold must be positive"),
        (dict(threshold=float("nan")), "threshold must be a finite number"),
        (dict(min_weight=1.5), r"min_weight must be a number in \[0, 1\)"),
    ],
)
def test_bad_parameters(planted, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixtureOutlierDetector(GaussianMixture(2), **params).fit(planted[0])


def test_default_chooses_the_mixture_by_bic(planted):
    X, _ = planted
    detector = GaussianMixtureOutlierDetector(random_state=0).fit(X)
    selector = GaussianMixtureSelector(random_state=0, covariance_types=STRUCTURES).fit(X)
    assert (detector.mixture_.n_components, detector.mixture_.covariance_type) == tuple(
        selector.best_params_.values())
