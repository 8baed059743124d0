"""scikit-learn's own compatibility checks, every one of them, on every estimator.

The outlier detector and the classifier are checked with a selector over
K = 1..3 (their default starts, on a smaller grid than their defaults' nine
and five counts), which keeps the checks' many small fits quick.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import (
    BayesianGaussianMixture,
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
        GaussianMixture(n_components=3, init_params="emem", n_init=2),
        GaussianMixture(n_components=2, prior="default"),
        BayesianGaussianMixture(n_components=3),
        BayesianGaussianMixture(n_components=2, covariance_type="tied",
                                weight_concentration_prior_type="dirichlet_distribution"),
        BayesianGaussianMixture(n_components=2, covariance_type="diag"),
        BayesianGaussianMixture(n_components=2, covariance_type="spherical", init_params="hc"),
        GaussianMixtureSelector(n_components=(1, 2, 3), covariance_types=("full", "EII", "VEV")),
        GaussianMixtureSelector(n_components=(1, 2), criterion="cv", cv=3, covariance_types=("full", "diag")),
        GaussianMixtureOutlierDetector(GaussianMixtureSelector(range(1, 4), covariance_types=("full", "diag"))),
        GaussianMixtureOutlierDetector(GaussianMixture(2), min_weight=0.05),
        GaussianMixtureClassifier(GaussianMixtureSelector(range(1, 4), covariance_types=("full", "diag"))),
        GaussianMixtureClassifier(model_type="EDDA"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
