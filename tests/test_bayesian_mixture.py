"""BayesianGaussianMixture against scikit-learn's (the same start, the same arithmetic) and on gaussmix's own
terms: sample weights, engines, float32, model files, degenerate data, scale."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import ENGINES, as_numpy, on_engine
from sklearn.cluster import KMeans
from sklearn.mixture import BayesianGaussianMixture as ScikitBayesianGaussianMixture

import gaussmix
from gaussmix import BayesianGaussianMixture
from gaussmix.exceptions import InvalidParameterError

STRUCTURES = ("full", "tied", "diag", "spherical")
PRIORS = ("dirichlet_process", "dirichlet_distribution")


def three_clusters(seed=0, standardised=True):
    rng = np.random.RandomState(seed)
    X = np.vstack([rng.normal(0, 1, (150, 3)), rng.normal(3, 0.7, (100, 3)), rng.normal([0, 4, -2], 1.2, (120, 3))])
    return (X - X.mean(axis=0)) / X.std(axis=0) if standardised else X


def scikit_run(X, responsibilities, n_iter, **params):
    """scikit-learn's variational EM from given responsibilities, iteration by iteration (its private steps,
    which its own fit runs), and its bounds."""
    model = ScikitBayesianGaussianMixture(**params)
    model._check_parameters(X)
    model._initialize(X, responsibilities)
    bounds = []
    for _ in range(n_iter):
        log_prob_norm, log_resp = model._e_step(X)
        model._m_step(X, log_resp)
        bounds.append(float(np.squeeze(model._compute_lower_bound(log_resp, log_prob_norm))))
    model._set_parameters(model._get_parameters())
    return model, np.array(bounds)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("structure", STRUCTURES)
def test_parameters_and_bounds_equal_scikit_learns_from_the_same_start(structure, prior):
    X = three_clusters()
    labels = KMeans(5, n_init=1, random_state=0).fit(X).labels_
    start = np.eye(5)[labels]
    params = dict(n_components=5, covariance_type=structure, weight_concentration_prior_type=prior, reg_covar=0.0)
    expected, bounds = scikit_run(X, start, 30, **params)
    fit = BayesianGaussianMixture(**params, init_params=start, max_iter=30, tol=0.0).fit(X)
    np.testing.assert_allclose(fit.lower_bounds_, bounds, rtol=1e-6)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "mean_precision_",
                 "degrees_of_freedom_"):
        np.testing.assert_allclose(getattr(fit, name), getattr(expected, name), rtol=1e-6, atol=1e-9, err_msg=name)
    concentration = fit.weight_concentration_
    if prior == "dirichlet_process":
        for ours, theirs in zip(concentration, expected.weight_concentration_):
            np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    else:
        np.testing.assert_allclose(concentration, expected.weight_concentration_, rtol=1e-6)
    np.testing.assert_allclose(fit.predict_proba(X), expected.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(fit.score_samples(X), expected.score_samples(X), rtol=1e-8)


def test_reg_covar_is_scikit_learns_on_data_of_unit_variance():
    X = three_clusters()
    start = np.eye(3)[KMeans(3, n_init=1, random_state=0).fit(X).labels_]
    expected, _ = scikit_run(X, start, 10, n_components=3, reg_covar=1e-2)
    fit = BayesianGaussianMixture(3, init_params=start, max_iter=10, tol=0.0, reg_covar=1e-2).fit(X)
    np.testing.assert_allclose(fit.covariances_, expected.covariances_, rtol=1e-6)


def test_a_dirichlet_process_switches_off_the_components_the_data_do_not_need():
    """Ten components offered for three clusters: as in scikit-learn, the posterior puts almost no weight on
    seven of them, and its three weighty components are the clusters."""
    X = three_clusters()
    fit = BayesianGaussianMixture(10, weight_concentration_prior=1e-3, max_iter=500, random_state=0).fit(X)
    theirs = ScikitBayesianGaussianMixture(n_components=10, weight_concentration_prior=1e-3, max_iter=500,
                                           random_state=0).fit(X)
    for model in (fit, theirs):
        weights = np.sort(model.weights_)
        assert np.all(weights[:-3] < 1e-2) and np.all(weights[-3:] > 0.2)
    np.testing.assert_allclose(np.sort(fit.weights_)[-3:], np.sort(theirs.weights_)[-3:], atol=0.02)
    assert len(set(fit.predict(X))) == 3


def test_sample_weight_is_a_repeated_row():
    X = three_clusters()[:120]
    weights = np.arange(120) % 3 + 1.0
    repeated = np.repeat(X, weights.astype(int), axis=0)
    labels = np.arange(120) % 2
    a = BayesianGaussianMixture(2, init_params=labels, tol=1e-10, max_iter=500).fit(X, sample_weight=weights)
    b = BayesianGaussianMixture(2, init_params=np.repeat(labels, weights.astype(int)), tol=1e-10,
                                max_iter=500).fit(repeated)
    for name in ("weights_", "means_", "covariances_", "mean_precision_", "degrees_of_freedom_", "covariance_prior_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-8, err_msg=name)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-9)
    scaled = BayesianGaussianMixture(2, init_params=labels, tol=1e-10, max_iter=500).fit(X, sample_weight=weights * 2)
    assert not np.allclose(scaled.mean_precision_, a.mean_precision_)  # twice the rows: twice the evidence


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_and_float32(engine):
    X = three_clusters()
    start = np.eye(3)[KMeans(3, n_init=1, random_state=0).fit(X).labels_]
    expected = BayesianGaussianMixture(3, covariance_type="full", init_params=start, max_iter=50, tol=0.0).fit(X)
    for dtype in (np.float64, np.float32):
        fit = BayesianGaussianMixture(3, covariance_type="full", init_params=start, max_iter=50,
                                      tol=0.0).fit(on_engine(X, engine, dtype=dtype))
        rtol = 1e-7 if dtype == np.float64 else 2e-3
        np.testing.assert_allclose(as_numpy(fit.means_), expected.means_, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(fit.lower_bound_, expected.lower_bound_, rtol=rtol)
        np.testing.assert_allclose(as_numpy(fit.predict_proba(on_engine(X, engine, dtype=dtype))),
                                   expected.predict_proba(X), atol=10 * rtol)


@pytest.mark.parametrize("prior", PRIORS)
def test_model_file_round_trip(tmp_path, prior):
    X = three_clusters()
    fit = BayesianGaussianMixture(4, covariance_type="tied", weight_concentration_prior_type=prior,
                                  random_state=0).fit(X)
    fit.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    assert type(loaded.weight_concentration_) is type(fit.weight_concentration_)
    np.testing.assert_allclose(loaded.predict_proba(X), fit.predict_proba(X))
    np.testing.assert_allclose(loaded.score_samples(X), fit.score_samples(X))
    warm = loaded.set_params(warm_start=True, max_iter=5).fit(X)
    assert warm.lower_bound_ >= fit.lower_bound_ - 1e-9 * abs(fit.lower_bound_)


def test_scale_free_and_robust_to_degenerate_data():
    X = three_clusters(standardised=False)
    fit = BayesianGaussianMixture(3, random_state=0).fit(X)
    tiny = BayesianGaussianMixture(3, random_state=0).fit(X * 1e-6)
    np.testing.assert_array_equal(tiny.predict(X * 1e-6), fit.predict(X))
    np.testing.assert_allclose(tiny.means_ * 1e6, fit.means_, rtol=1e-6)
    repeated = np.vstack([X, np.tile(X[:1], (200, 1))])  # a fifth of the rows on one point
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        spike = BayesianGaussianMixture(4, random_state=0).fit(repeated)
    assert np.all(np.isfinite(spike.covariances_)) and np.isfinite(spike.lower_bound_)
    constant = np.column_stack([X, np.full(len(X), 7.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat = BayesianGaussianMixture(3, random_state=0).fit(constant)
    assert np.all(np.isfinite(flat.score_samples(constant)))
    far = fit.predict_proba([[1e8, -1e8, 1e8]])
    assert np.isclose(far.sum(), 1.0)


@pytest.mark.parametrize("params,words", [
    ({"degrees_of_freedom_prior": 1.0}, "should be greater than 2"),
    ({"weight_concentration_prior_type": "stick"}, "weight_concentration_prior_type must be one of"),
    ({"covariance_type": "VEV"}, "covariance_type must be one of"),
    ({"covariance_prior": np.eye(2)}, "should have the shape of (3, 3)"),
    ({"covariance_type": "diag", "covariance_prior": [1.0, -1.0, 1.0]}, "should be positive"),
    ({"mean_prior": [0.0, 1.0]}, "should have the shape of (3,)"),
    ({"weight_concentration_prior": -1.0}, "weight_concentration_prior must be"),
    ({"init_params": "emem"}, "init_params"),
])
def test_bad_parameters_get_a_clear_error(params, words):
    with pytest.raises(InvalidParameterError) as info:
        BayesianGaussianMixture(2, **params).fit(three_clusters())
    assert words in str(info.value)


def test_cli_fit_and_report_take_bayesian(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    source = Path(gaussmix.__file__).parent / "datasets" / "data" / "faithful.csv"
    model = tmp_path / "m.npz"
    run = subprocess.run([sys.executable, "-m", "gaussmix", "fit", str(source), "-o", str(model), "-k", "6",
                          "--bayesian", "--seed", "0"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "variational Bayes with a dirichlet process prior; 2 with weight above 0.01" in run.stdout
    assert isinstance(gaussmix.load(model), BayesianGaussianMixture)
    run = subprocess.run([sys.executable, "-m", "gaussmix", "fit", str(source), "-o", str(model), "-k", "2",
                          "--bayesian", "--noise"], capture_output=True, text=True)
    assert run.returncode == 2 and "leave out --prior and --noise" in run.stderr
    report = tmp_path / "r.html"
    run = subprocess.run([sys.executable, "-m", "gaussmix", "report", str(source), "-o", str(report), "--select",
                          "3", "--bayesian", "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "variational Bayes with a dirichlet process prior on the weights" in report.read_text()
