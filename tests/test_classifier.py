"""GaussianMixtureClassifier: iris, Bayes' rule, priors, EDDA against LDA."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.datasets import load_iris
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold, cross_val_score

from gaussmix import GaussianMixture, GaussianMixtureClassifier
from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.mark.parametrize("model_type, max_train, max_cv", [("MclustDA", 0.04, 0.06), ("EDDA", 0.04, 0.05)])
def test_iris_errors(iris, model_type, max_train, max_cv):
    X, y = iris
    clf = GaussianMixtureClassifier(model_type=model_type, random_state=0).fit(X, y)
    train_error = 1 - clf.score(X, y)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv_error = 1 - cross_val_score(GaussianMixtureClassifier(model_type=model_type, random_state=0), X, y,
                                       cv=folds).mean()
    structures = getattr(clf, "structure_", None) or {
        int(c): (m.n_components, m.covariance_type) for c, m in clf.models_.items()}
    print(f"\niris {model_type}: training error {train_error:.4f}, 5-fold CV error {cv_error:.4f}; {structures}")
    assert train_error <= max_train
    assert cv_error <= max_cv


def test_predict_proba_is_bayes_rule(iris):
    X, y = iris
    clf = GaussianMixtureClassifier(GaussianMixture(2, covariance_type="diag", random_state=0)).fit(X, y)
    joint = np.column_stack([np.log(p) + clf.models_[c].score_samples(X)
                             for c, p in zip(clf.classes_, clf.class_prior_)])
    np.testing.assert_allclose(clf.predict_log_proba(X), joint - logsumexp(joint, axis=1, keepdims=True), atol=1e-10)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[joint.argmax(axis=1)])
    np.testing.assert_allclose(clf.class_prior_, [1 / 3] * 3)
    for c in clf.classes_:
        assert clf.models_[c].n_components == 2 and clf.models_[c].covariance_type == "diag"


def test_edda_tied_is_linear_discriminant_analysis(iris):
    X, y = iris
    ours = GaussianMixtureClassifier(model_type="EDDA", covariance_types=["tied"], reg_covar=0.0).fit(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    assert ours.structure_ == "tied"
    np.testing.assert_allclose(ours.predict_proba(X), lda.predict_proba(X), atol=1e-8)
    for c in ours.classes_:  # one covariance for every class
        np.testing.assert_allclose(ours.models_[c].covariances_[0], lda.covariance_, rtol=1e-10)


def test_edda_structure_is_chosen_by_total_bic(iris):
    X, y = iris
    clf = GaussianMixtureClassifier(model_type="EDDA", reg_covar=0.0).fit(X, y)
    assert set(clf.edda_bic_) == set(SCIKIT_LEARN_STRUCTURES)
    assert clf.structure_ == min(clf.edda_bic_, key=clf.edda_bic_.get)
    # The full candidate's BIC by hand: one full Gaussian per class.
    loglik, d = 0.0, X.shape[1]
    for c in np.unique(y):
        gm = GaussianMixture(1, covariance_type="full", reg_covar=0.0).fit(X[y == c])
        loglik += gm.score_samples(X[y == c]).sum()
    n_parameters = 3 * d + 3 * d * (d + 1) // 2
    assert clf.edda_bic_["full"] == pytest.approx(-2 * loglik + n_parameters * np.log(len(X)), rel=1e-9)


def test_priors_and_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    uniform = GaussianMixtureClassifier(GaussianMixture(1), priors="uniform").fit(X[:120], names[:120])
    assert list(uniform.classes_) == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(uniform.class_prior_, [1 / 3] * 3)
    empirical = GaussianMixtureClassifier(GaussianMixture(1)).fit(X[:120], names[:120])
    np.testing.assert_allclose(empirical.class_prior_, [50 / 120, 50 / 120, 20 / 120])
    skewed = GaussianMixtureClassifier(GaussianMixture(1), priors=[0.01, 0.01, 0.98]).fit(X[:120], names[:120])
    assert (skewed.predict(X) == "virginica").sum() > (uniform.predict(X) == "virginica").sum()
    with pytest.raises(ValueError, match="priors must be 3 positive numbers"):
        GaussianMixtureClassifier(GaussianMixture(1), priors=[0.5, 0.5]).fit(X, names)


def test_per_class_estimators_and_errors(iris):
    X, y = iris
    per_class = {0: GaussianMixture(1), 1: GaussianMixture(2, covariance_type="diag"), 2: GaussianMixture(3)}
    clf = GaussianMixtureClassifier(per_class, random_state=0).fit(X, y)
    assert [clf.models_[c].n_components for c in clf.classes_] == [1, 2, 3]
    with pytest.raises(ValueError, match="mixture has no estimator for class 2"):
        GaussianMixtureClassifier({0: GaussianMixture(1), 1: GaussianMixture(1)}).fit(X, y)
    with pytest.raises(ValueError, match="class 2 has no rows with positive weight"):
        GaussianMixtureClassifier(GaussianMixture(1)).fit(X, y, sample_weight=(y != 2).astype(float))
    with pytest.raises(ValueError, match="fitting the density of class 0: .*n_components"):
        GaussianMixtureClassifier(GaussianMixture(60)).fit(X, y)
    with pytest.raises(ValueError, match="model_type must be one of"):
        GaussianMixtureClassifier(model_type="QDA").fit(X, y)


def test_priors_as_a_dict_by_class(iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    by_dict = GaussianMixtureClassifier(model_type="EDDA", priors={"virginica": 0.5, "setosa": 0.25,
                                                                   "versicolor": 0.25}).fit(X, labels)
    by_array = GaussianMixtureClassifier(model_type="EDDA", priors=[0.25, 0.25, 0.5]).fit(X, labels)
    np.testing.assert_array_equal(by_dict.class_prior_, [0.25, 0.25, 0.5])
    np.testing.assert_allclose(by_dict.predict_proba(X), by_array.predict_proba(X))
    with pytest.raises(ValueError, match="no prior for class 'virginica'"):
        GaussianMixtureClassifier(model_type="EDDA", priors={"setosa": 0.5, "versicolor": 0.5}).fit(X, labels)
    with pytest.raises(ValueError, match="no class 'iris' in the training labels"):
        GaussianMixtureClassifier(model_type="EDDA", priors={"setosa": 0.5, "versicolor": 0.25, "virginica": 0.25,
                                                             "iris": 0.0}).fit(X, labels)
    with pytest.raises(ValueError, match="must sum to 1, got sum 1.0001"):
        GaussianMixtureClassifier(model_type="EDDA", priors=[0.25, 0.25, 0.5001]).fit(X, labels)


@pytest.mark.parametrize("weight", [1e-320, 1e308])
def test_priors_from_extreme_sample_weights(iris, weight):
    X, y = iris
    clf = GaussianMixtureClassifier(mixture=GaussianMixture(1)).fit(X, y, sample_weight=np.full(len(y), weight))
    np.testing.assert_allclose(clf.class_prior_, [1 / 3] * 3)
    reference = GaussianMixtureClassifier(mixture=GaussianMixture(1)).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), reference.predict_proba(X), rtol=1e-9, atol=1e-12)
