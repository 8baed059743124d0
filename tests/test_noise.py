"""A uniform noise component (``noise=``), against R's mclust 6.0.0 and its own definition.

The reference numbers are in ``benchmarks/noise`` (``mclust_noise.R`` writes them beside itself; no R is
needed here): mclust's chevron data and Old Faithful with 40 planted outliers, the first guess of the noise
mclust's examples make (prabclus's ``NNclean``, k = 5), Mclust's hierarchical start on the other rows, and
Mclust's fits with ``initialization = list(noise = guess)``.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import as_numpy, on_engine
from scipy import stats

import gaussmix
from gaussmix import (
    GaussianMixture,
    GaussianMixtureOutlierDetector,
    GaussianMixtureSelector,
)
from gaussmix.em.noise import hypervolume, noise_guess
from gaussmix.exceptions import InvalidParameterError

REFERENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "noise"


def rows(name: str) -> list[dict]:
    with open(REFERENCE / name, newline="") as handle:
        return list(csv.DictReader(handle))


def data_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    table = rows(f"{name}.csv")
    columns = [key for key in table[0] if key != "class"]
    return (np.array([[float(row[c]) for c in columns] for row in table]),
            np.array([row["class"] == "noise" for row in table]))


def start(name: str, n_components: int) -> np.ndarray:
    return np.array([int(row[f"G{n_components}"]) - 1 for row in rows("start.csv") if row["data"] == name])


def mclust_guess(name: str) -> np.ndarray:
    return np.array([row["noise"] == "TRUE" for row in rows("start.csv") if row["data"] == name])


def noise_fit(X, model, labels, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(int(labels.max()) + 1, covariance_type=model, noise=True, init_params=labels,
                               reg_covar=0.0, tol=1e-10, max_iter=10000, **settings).fit(X)


def precision_recall(called, truth):
    hits = np.sum(called & truth)
    return hits / max(np.sum(called), 1), hits / np.sum(truth)


CASES = [(row["data"], row["model"], int(row["G"])) for row in rows("mclust_noise.csv") if int(row["G"]) in (2, 3)]


@pytest.mark.parametrize(("name", "model", "n_components"), CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_noise_fit_equals_mclusts_from_the_same_start(name, model, n_components):
    """Mclust(X, G, model, initialization = list(noise = guess)): the same log-likelihood, df and BIC (1e-6
    relative), noise proportion and volume, and the same rows called noise."""
    (row,) = [r for r in rows("mclust_noise.csv") if (r["data"], r["model"], int(r["G"])) ==
              (name, model, n_components)]
    X, truth = data_set(name)
    fit = noise_fit(X, model, start(name, n_components))
    loglik = float(fit.score(X)) * len(X)
    assert fit._n_parameters() == int(row["df"])
    assert loglik == pytest.approx(float(row["loglik"]), rel=1e-6)
    assert -fit.bic(X) == pytest.approx(float(row["bic"]), rel=1e-6)
    assert fit.noise_proportion_ == pytest.approx(float(row["noise"]), abs=1e-4)
    assert 1 / fit.noise_volume_ == pytest.approx(float(row["Vinv"]), rel=1e-10)
    precision, recall = precision_recall(fit.predict(X) == -1, truth)
    assert precision == pytest.approx(float(row["precision"]), abs=0.005)
    assert recall == pytest.approx(float(row["recall"]), abs=0.005)


def test_gaussians_are_those_fitted_without_the_clutter():
    """On Old Faithful with planted outliers, the noise model's Gaussians equal (within sampling error) those
    fitted to Old Faithful alone, and its noise rows are found at least as well as by mclust's chosen model;
    without the noise component the outliers pull the Gaussians."""
    X, truth = data_set("outliers")
    clean = X[~truth]
    alone = GaussianMixture(2, init_params="hc").fit(clean)
    noisy = GaussianMixture(2, noise=True, init_params="hc").fit(X)
    plain = GaussianMixture(2, init_params="hc").fit(X)
    order = np.argsort(alone.means_[:, 0])
    for model in (noisy, plain):
        assert np.array_equal(np.argsort(model.means_[:, 0]), order)
    standard_error = np.sqrt(np.diagonal(alone.covariance_matrices_, axis1=1, axis2=2) /
                             (alone.weights_[:, None] * len(clean)))
    assert np.all(np.abs(noisy.means_ - alone.means_) < 2 * standard_error)
    assert np.any(np.abs(plain.means_ - alone.means_) > 2 * standard_error)  # the outliers' pull
    spread = np.linalg.det(noisy.covariance_matrices_) / np.linalg.det(alone.covariance_matrices_)
    assert np.all((spread > 0.7) & (spread < 1.4))
    (chosen,) = [r for r in rows("mclust_noise_selection.csv") if r["data"] == "outliers"]
    precision, recall = precision_recall(noisy.predict(X) == -1, truth)
    assert precision >= float(chosen["precision"]) - 0.01 and recall >= float(chosen["recall"]) - 0.01


def test_the_noise_is_one_more_component_of_the_density():
    X, _ = data_set("chevron")
    fit = GaussianMixture(2, covariance_type="EEV", noise=True, init_params="hc").fit(X)
    gaussians = sum(fit.weights_[k] * stats.multivariate_normal(fit.means_[k], fit.covariance_matrices_[k]).pdf(X)
                    for k in range(2))
    density = gaussians + fit.noise_proportion_ / fit.noise_volume_
    np.testing.assert_allclose(fit.score_samples(X), np.log(density), rtol=1e-10)
    proba = fit.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, -1], fit.noise_proportion_ / fit.noise_volume_ / density, rtol=1e-9)
    labels = fit.predict(X)
    np.testing.assert_array_equal(labels, np.where(np.argmax(proba, axis=1) == 2, -1, np.argmax(proba, axis=1)))
    assert math.isclose(fit.weights_.sum() + fit.noise_proportion_, 1.0)
    assert fit.noise_volume_ == pytest.approx(hypervolume(X))
    far = fit.predict_proba([[1e6, -1e6]])
    np.testing.assert_allclose(far, [[0.0, 0.0, 1.0]])
    assert fit.predict([[1e6, -1e6]])[0] == -1


def test_volume_options_and_the_parameter_count():
    X, _ = data_set("chevron")
    labels = start("chevron", 2)
    box = float(np.prod(np.ptp(X, axis=0)))
    measured = noise_fit(X, "VVV", labels, noise_volume="box")
    assert measured.noise_volume_ == pytest.approx(box)
    given = noise_fit(X, "VVV", labels, noise_volume=2 * box)
    assert given.noise_volume_ == pytest.approx(2 * box, rel=1e-12)
    assert measured._n_parameters() == given._n_parameters() + 1  # a given volume is not estimated
    hull = noise_fit(X, "VVV", labels, noise_volume="hull")
    assert hull.noise_volume_ < box
    with pytest.raises(InvalidParameterError, match="noise_volume must be None, one of"):
        GaussianMixture(2, noise=True, noise_volume=-1.0).fit(X)


def test_noise_given_as_a_mask_or_by_labels():
    X, _ = data_set("outliers")
    guess = mclust_guess("outliers")
    by_labels = noise_fit(X, "VVV", start("outliers", 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_mask = GaussianMixture(2, noise=guess, init_params=np.where(guess, 0, start("outliers", 2)), reg_covar=0.0,
                                  tol=1e-10, max_iter=10000).fit(X)
    np.testing.assert_allclose(by_mask.means_, by_labels.means_, rtol=1e-9)
    with pytest.raises(InvalidParameterError, match="boolean mask of the 312 rows"):
        GaussianMixture(2, noise=np.ones(5, dtype=bool)).fit(X)
    with pytest.raises(InvalidParameterError, match="leaving fewer than n_components=2"):
        GaussianMixture(2, noise=np.arange(len(X)) > 0).fit(X)


def test_first_guess_agrees_with_nnclean():
    """The nearest-neighbour rule calls noise nearly the same rows as prabclus's NNclean (k = 5)."""
    for name, agreement in (("chevron", 0.97), ("outliers", 0.9)):
        X, _ = data_set(name)
        assert np.mean(noise_guess(X) == mclust_guess(name)) >= agreement


def test_model_file_sample_and_marginal_keep_the_noise(tmp_path):
    X, _ = data_set("chevron")
    fit = GaussianMixture(2, covariance_type="EEV", noise=True, init_params="hc", random_state=0).fit(X)
    fit.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), fit.predict(X))
    np.testing.assert_allclose(loaded.score_samples(X), fit.score_samples(X))
    assert loaded._n_parameters() == fit._n_parameters()
    drawn, labels = fit.sample(20000)
    assert np.mean(labels == -1) == pytest.approx(fit.noise_proportion_, abs=0.02)
    low, high = fit.noise_bounds_
    assert np.all((drawn[labels == -1] >= low) & (drawn[labels == -1] <= high))
    both = fit.marginal([0, 1])
    np.testing.assert_allclose(both.score_samples(X), fit.score_samples(X))
    one = fit.marginal([1])
    assert one.noise_volume_ == pytest.approx(high[1] - low[1])
    assert one.predict_proba(X[:, [1]]).shape == (len(X), 3)


def test_other_engines_and_float32():
    X, _ = data_set("chevron")
    labels = start("chevron", 2)
    expected = noise_fit(X, "VVV", labels)
    for dtype in (np.float64, np.float32):
        fit = noise_fit(on_engine(X, "torch", dtype=dtype), "VVV", labels)
        rtol = 1e-6 if dtype == np.float64 else 1e-3
        np.testing.assert_allclose(as_numpy(fit.means_), expected.means_, rtol=rtol)
        assert fit.noise_proportion_ == pytest.approx(expected.noise_proportion_, rel=rtol)
    with pytest.raises(InvalidParameterError, match="noise is not available for Dask"):
        GaussianMixture(2, noise=True).fit(on_engine(X, "dask"))


def test_outlier_detector_calls_outliers_the_rows_more_probably_noise():
    X, truth = data_set("outliers")
    mixture = GaussianMixture(2, noise=True, init_params="hc")
    detector = GaussianMixtureOutlierDetector(mixture).fit(X)
    noise_share = detector.mixture_.predict_proba(X)[:, -1]
    np.testing.assert_array_equal(detector.predict(X) == -1, noise_share > 0.5)
    labels = detector.predict_component(X)
    assert np.all(labels[noise_share > 0.5] == -1)
    precision, recall = precision_recall(detector.predict(X) == -1, truth)
    assert precision > 0.8 and recall > 0.6


def test_selector_with_noise_makes_mclusts_choice():
    """Mclust(chevron, initialization = list(noise = guess)) chooses EEV with 2 components."""
    X, _ = data_set("chevron")
    (chosen,) = [r for r in rows("mclust_noise_selection.csv") if r["data"] == "chevron"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selector = GaussianMixtureSelector(range(1, 6), noise=mclust_guess("chevron"), init_params="hc",
                                           n_init=1, tol=1e-8, random_state=0).fit(X)
    assert (selector.best_params_["covariance_type"], selector.best_params_["n_components"]) == \
        (chosen["model"], int(chosen["G"]))
    assert selector.results_["bic"][selector.best_index_] <= -float(chosen["bic"]) + 1e-6 * abs(float(chosen["bic"]))
    text = str(selector.summary())
    assert "and a noise component of weight" in text and " noise\n" in text


def test_cli_fit_predict_and_report_with_noise(tmp_path):
    data = REFERENCE / "chevron.csv"
    model = tmp_path / "m.npz"
    run = subprocess.run([sys.executable, "-m", "gaussmix", "fit", str(data), "--columns", "x", "y", "-o",
                          str(model), "-k", "2", "--covariance", "EEV", "--noise", "--init", "hc"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "with a noise component of weight" in run.stdout
    run = subprocess.run([sys.executable, "-m", "gaussmix", "predict", str(model), str(data), "--columns", "x", "y"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    header, *lines = run.stdout.splitlines()
    assert header.split(",")[-1] == "prob_noise"
    assert any(line.startswith("-1,") for line in lines)
    report = tmp_path / "r.html"
    run = subprocess.run([sys.executable, "-m", "gaussmix", "report", str(data), "--columns", "x", "y", "-o",
                          str(report), "--select", "1-2", "--structures", "EEV", "--noise", "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "uniform noise component of weight" in report.read_text()


def test_rows_in_a_subspace_have_no_noise_density():
    """A uniform density over a region of no volume does not exist: a clear error, not a noise that owns
    every row."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])  # the third feature depends on the others
    with pytest.raises(InvalidParameterError, match="lie in a subspace"):
        GaussianMixture(2, noise=True).fit(X)
    fit = GaussianMixture(2, noise=True, noise_volume="box").fit(X)  # a box has volume: the user's choice
    assert fit.noise_volume_ == pytest.approx(float(np.prod(np.ptp(X, axis=0))))
