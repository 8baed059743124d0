"""scikit-learn's own compatibility checks, every one of them."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(n_components=2, covariance_type="tied", n_init=2, max_iter=20),
        GaussianMixture(n_components=2, covariance_type="diag", init_params="k-means++"),
        GaussianMixture(n_components=2, covariance_type="spherical", init_params="random_from_data"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
