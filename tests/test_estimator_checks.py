"""scikit-learn's own compatibility checks, every one of them, on every estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import (
    GaussianMixture,
    GaussianMixtureClassifier,
    GaussianMixtureOutlierDetector,
    GaussianMixtureSelector,
)


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(n_components=2, covariance_type="tied", n_init=2, max_iter=20),
        GaussianMixture(n_components=2, covariance_type="diag", init_params="k-means++"),
        GaussianMixture(n_components=2, covariance_type="spherical", init_params="random_from_data"),
        GaussianMixtureSelector(n_components=(1, 2, 3)),
        GaussianMixtureSelector(n_components=(1, 2), criterion="cv", cv=3),
        GaussianMixtureOutlierDetector(),
        GaussianMixtureOutlierDetector(GaussianMixture(2), min_weight=0.05),
        GaussianMixtureClassifier(),
        GaussianMixtureClassifier(model_type="EDDA"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
