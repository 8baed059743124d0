"""Maximum a posteriori fits with a conjugate prior (``prior=``), against R's mclust 6.0.0 and the prior's
own definition.

The reference numbers are in ``benchmarks/prior`` (``mclust_prior.R`` writes them beside itself; no R is
needed here): mclust's ``me(X, model, z, prior = priorControl())`` from the hierarchical start Mclust uses.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import ENGINES, as_numpy, on_engine
from scipy import stats
from sklearn.datasets import load_iris

import gaussmix
from gaussmix import GaussianMixture, GaussianMixtureSelector
from gaussmix.covariance import MCLUST_MODELS, get_structure
from gaussmix.datasets import load_faithful
from gaussmix.em.params import MixtureParams
from gaussmix.exceptions import InvalidParameterError

REFERENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "prior"


def rows(name: str) -> list[dict]:
    with open(REFERENCE / name, newline="") as handle:
        return list(csv.DictReader(handle))


def data(name: str) -> np.ndarray:
    faithful, iris = load_faithful().data, load_iris().data
    if name == "diabetes":
        return np.loadtxt(REFERENCE / "diabetes.csv", delimiter=",", skiprows=1)
    return {"iris": iris, "faithful": faithful, "waiting": faithful[:, 1:], "eruptions": faithful[:, :1],
            "sepal_length": iris[:, :1]}[name]


_LABELS: dict = {}


def start(name: str, n_components: int) -> np.ndarray:
    """mclust's hierarchical start cut at ``n_components`` (0-based labels)."""
    if not _LABELS:
        collected = defaultdict(list)
        for row in rows("labels.csv"):
            collected[row["data"], int(row["G"])].append(int(row["label"]) - 1)
        _LABELS.update({key: np.asarray(value) for key, value in collected.items()})
    return _LABELS[name, n_components]


def map_fit(X, model, labels, **prior):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(int(labels.max()) + 1, covariance_type=model, prior=prior or "default",
                               init_params=labels, reg_covar=0.0, tol=1e-12, max_iter=100000).fit(X)


def relative(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / abs(theirs)


# -- against mclust ------------------------------------------------------------------------------------------------
#: The models whose M-step with a prior in mclust 6.0.0 is the posterior mode of the prior mclust documents.
MATCHING = ("VVV", "EEE", "VVI", "VII", "E", "V")
#: The models mclust 6.0.0 fits with a prior.
MCLUST_PRIOR_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
CASES = [(row["data"], row["model"], int(row["G"])) for row in rows("mclust_prior.csv")
         if row["model"] in MATCHING and 2 <= int(row["G"]) <= 4]


@pytest.mark.parametrize(("name", "model", "n_components"), CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_map_fit_equals_mclusts_from_the_same_start(name, model, n_components):
    """Same log-likelihood, parameter count and BIC (mclust's sign) as mclust's fit with priorControl(), to
    1e-5 relative (the issue asks for 1e-4; the measured differences are below 4e-6)."""
    (row,) = [r for r in rows("mclust_prior.csv")
              if (r["data"], r["model"], int(r["G"])) == (name, model, n_components)]
    X = data(name)
    fit = map_fit(X, model, start(name, n_components))
    loglik = float(fit.score(X)) * len(X)
    assert fit._n_parameters() == int(row["df"])
    assert relative(loglik, float(row["loglik"])) < 1e-5
    assert relative(-fit.bic(X), float(row["bic"])) < 1e-5


@pytest.mark.parametrize("model", ["VVV", "EEE", "VVI", "VII"])
@pytest.mark.parametrize("name", ["iris", "faithful", "diabetes"])
def test_map_parameters_equal_mclusts(name, model):
    """Weights, means and covariances of the three-component fits equal mclust's (where mclust's fit did not
    fail: faithful's VVI empties a component)."""
    if not any((r["data"], r["model"], r["G"]) == (name, model, "3") for r in rows("mclust_prior.csv")):
        pytest.skip("mclust's fit failed")
    X = data(name)
    fit = map_fit(X, model, start(name, 3))
    expected = {"weight": np.zeros(3), "mean": np.zeros((3, X.shape[1])),
                "covariance": np.zeros((3, X.shape[1], X.shape[1]))}
    for row in rows("mclust_prior_params.csv"):
        if (row["data"], row["model"]) != (name, model):
            continue
        k, i, j, value = int(row["component"]) - 1, int(row["i"]) - 1, int(row["j"]) - 1, float(row["value"])
        if row["what"] == "weight":
            expected["weight"][k] = value
        elif row["what"] == "mean":
            expected["mean"][k, i] = value
        else:
            expected["covariance"][k, i, j] = value
    np.testing.assert_allclose(fit.weights_, expected["weight"], rtol=1e-4)
    np.testing.assert_allclose(fit.means_, expected["mean"], rtol=1e-4)
    np.testing.assert_allclose(fit.covariance_matrices_, expected["covariance"], rtol=1e-4,
                               atol=1e-6 * np.max(np.abs(expected["covariance"])))


@pytest.mark.parametrize("name", ["iris", "faithful", "diabetes"])
def test_mclusts_eii_is_the_prior_without_its_scale(name):
    """mclust's EII leaves the prior's scale out of the variance (its one-feature E keeps it, and equals
    ours): with a vanishing scale, the fits are mclust's."""
    X = data(name)
    for n_components in (2, 3):
        (row,) = [r for r in rows("mclust_prior.csv") if (r["data"], r["model"], int(r["G"])) ==
                  (name, "EII", n_components)]
        ours = map_fit(X, "EII", start(name, n_components), scale=1e-12 * float(np.mean(np.var(X, axis=0))))
        assert relative(float(ours.score(X)) * len(X), float(row["loglik"])) < 1e-6


@pytest.mark.parametrize("name,expected", [("faithful", ("EEE", 3)), ("diabetes", ("VVV", 4)), ("iris", ("VEV", 2))])
def test_selector_with_prior_makes_mclusts_choice(name, expected):
    """Mclust(X, prior = priorControl()) compares the ten models mclust has a prior for; from the same
    hierarchical start the selector over those makes its choice, with at least its BIC where the model's
    prior M-step is mclust's (Mclust stops at its default relative change of 1e-5, short of the mode)."""
    (row,) = [r for r in rows("mclust_prior_selection.csv") if r["data"] == name]
    assert (row["model"], int(row["G"])) == expected
    X = data(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selector = GaussianMixtureSelector(range(1, 10) if name != "iris" else range(1, 4), prior="default",
                                           covariance_types=MCLUST_PRIOR_MODELS, init_params="hc", n_init=1,
                                           tol=1e-8, random_state=0).fit(X)
    assert (selector.best_params_["covariance_type"], selector.best_params_["n_components"]) == expected
    if expected[0] in MATCHING:
        ours, theirs = -selector.results_["bic"][selector.best_index_], float(row["bic"])
        assert ours >= theirs - 1e-6 * abs(theirs) and relative(ours, theirs) < 1e-4
    assert "Prior: conjugate, mclust's defaults" in str(selector.summary())


# -- the prior's own definition ------------------------------------------------------------------------------------
def log_posterior(model: GaussianMixture, X: np.ndarray, params: MixtureParams, em_model) -> float:
    """The log-likelihood plus the model's log prior density (what EM with a prior increases)."""
    structure = get_structure(model.covariance_type)
    full = structure.layout.full_covariances(params.covariances, params.n_components, X.shape[1])
    density = sum(params.weights[k] * stats.multivariate_normal(params.means[k], full[k]).pdf(X)
                  for k in range(params.n_components))
    return float(np.sum(np.log(density))) + em_model.log_prior(params)


def em_model_of(model: GaussianMixture, X: np.ndarray):
    data_ = model._engine(X).fit_data(model, X, None, device=None)
    return model._em_model(data_, model._checked_settings())


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_map_fit_is_a_posterior_mode_reached_monotonically(model):
    """For every model: the posterior never decreases over EM, and moving the fitted parameters (every
    covariance scaled, which every model allows, or a mean shifted) lowers it."""
    X = data("faithful")
    fit = GaussianMixture(3, covariance_type=model, prior="default", init_params="hc", reg_covar=0.0, tol=1e-12,
                          max_iter=5000).fit(X)
    bounds = np.asarray(fit.lower_bounds_[1:])
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    em_model = em_model_of(fit, X)
    layout = get_structure(model).layout
    params = fit._params_from_attributes()
    best = log_posterior(fit, X, params, em_model)
    assert best == pytest.approx(fit.lower_bound_ * len(X), rel=1e-9)
    for factor in (1 - 1e-3, 1 + 1e-3):
        covariances = params.covariances * factor
        moved = MixtureParams(params.weights, params.means, covariances, layout.precisions_cholesky(covariances))
        assert log_posterior(fit, X, moved, em_model) < best
    spread = np.std(X, axis=0)
    for k in range(3):
        for sign in (-1, 1):
            means = params.means.copy()
            means[k] += sign * 1e-3 * spread
            assert log_posterior(fit, X, MixtureParams(params.weights, means, params.covariances,
                                                       params.precisions_cholesky), em_model) < best


def test_log_prior_is_the_documented_density():
    """Differences of the log prior equal those of the normal-inverse-Wishart density (VVV, per component)
    and of the normal-inverse-gamma densities (VVI per variance, VII one variance per component)."""
    X = data("iris")
    rng = np.random.default_rng(0)
    for model in ("VVV", "VVI", "VII", "EEE"):
        fit = GaussianMixture(3, covariance_type=model, prior="default", init_params="hc").fit(X)
        em_model = em_model_of(fit, X)
        prior = em_model.prior
        structure = get_structure(model)
        layout = structure.layout
        params = fit._params_from_attributes()

        def scipy_log_prior(p):
            full = layout.full_covariances(p.covariances, 3, 4)
            total = sum(stats.multivariate_normal(prior.mean, full[k] / prior.shrinkage).logpdf(p.means[k])
                        for k in range(3))
            if model == "VVV":
                total += sum(stats.invwishart(prior.dof, prior.scale).logpdf(full[k]) for k in range(3))
            elif model == "EEE":
                total += stats.invwishart(prior.dof, prior.scale).logpdf(full[0])
            elif model == "VVI":
                total += sum(stats.invgamma(prior.dof / 2, scale=float(prior.scale) / 2).logpdf(v)
                             for v in p.covariances.ravel())
            else:
                total += sum(stats.invgamma(prior.dof / 2, scale=float(prior.scale) / 2).logpdf(v)
                             for v in p.covariances)
            return total

        other = params.covariances * np.exp(rng.uniform(-0.3, 0.3, size=params.covariances.shape[:1])
                                            ).reshape((-1,) + (1,) * (params.covariances.ndim - 1))
        moved = MixtureParams(params.weights, params.means + rng.normal(0, 0.1, params.means.shape), other,
                              layout.precisions_cholesky(other))
        assert em_model.log_prior(moved) - em_model.log_prior(params) == pytest.approx(
            scipy_log_prior(moved) - scipy_log_prior(params), rel=1e-9, abs=1e-9)


def test_prior_keeps_a_component_on_repeated_rows_regular():
    """Rows sharing one value make the maximum-likelihood fit degenerate (a component collapses onto them);
    with the prior the same start gives a regular fit whose covariances keep the prior's floor."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (60, 2)), rng.normal(6, 1, (60, 2)), np.tile([[3.0, 3.0]], (12, 1))])
    labels = np.repeat([0, 1, 2], [60, 60, 12])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = GaussianMixture(3, init_params=labels).fit(X)
    assert plain.collapsed_components_.tolist() == [2]
    fit = GaussianMixture(3, init_params=labels, prior="default").fit(X)
    assert fit.collapsed_components_.size == 0
    smallest = np.min(np.linalg.eigvalsh(fit.covariance_matrices_))
    floor = np.min(np.linalg.eigvalsh(np.cov(X.T))) * (1 / 3) / (len(X) + 4 + 2 + 2)
    assert smallest > floor
    assert fit.bic(X) > plain.bic(X)  # the spike's inflated likelihood is gone


def test_given_hyper_parameters_are_used():
    X = data("faithful")
    centre = np.array([3.0, 70.0])
    pulled = GaussianMixture(2, prior={"shrinkage": 1e8, "mean": centre}, init_params="hc").fit(X)
    np.testing.assert_allclose(pulled.means_, np.tile(centre, (2, 1)), rtol=1e-4)
    strong = GaussianMixture(2, covariance_type="diag", prior={"dof": 1e9, "scale": [1e9, 4e9]},
                             init_params="hc").fit(X)
    np.testing.assert_allclose(strong.covariances_, np.tile([1.0, 4.0], (2, 1)), rtol=1e-3)
    matrix = np.array([[2.0, 0.5], [0.5, 1.0]]) * 1e9
    shared = GaussianMixture(2, covariance_type="tied", prior={"dof": 1e9, "scale": matrix}, init_params="hc").fit(X)
    np.testing.assert_allclose(shared.covariances_, matrix / 1e9, rtol=1e-3)


@pytest.mark.parametrize("prior,words", [
    ("strong", "prior must be one of 'default'"),
    (3, "prior must be None, 'default' or a dict"),
    ({"dof": 0}, "prior['dof'] must be > 0"),
    ({"shrinkage": -1}, "prior['shrinkage'] must be a finite number >= 0"),
    ({"spread": 1}, "unknown key 'spread'"),
    ({"scale": [[1.0, 2.0], [2.0, 1.0]]}, "positive definite"),
    ({"scale": [[1.0, 2.0], [0.0, 1.0]]}, "symmetric"),
    ({"scale": -1.0}, "must be positive"),
    ({"mean": [1.0, 2.0, 3.0]}, "has 3 values but the data have 2 features"),
    ({"scale": np.eye(3)}, "has shape (3, 3) but the data have 2 features"),
    ({"mean": [1.0, 2.0], "shrinkage": 0}, "give a positive shrinkage"),
    ({"mean": [1.0, np.nan]}, "contains NaN"),
])
def test_bad_priors_get_a_clear_error(prior, words):
    with pytest.raises(InvalidParameterError) as info:
        GaussianMixture(2, prior=prior).fit(data("faithful"))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_selector_refuses_a_prior_its_estimator_cannot_take():
    from gaussmix import GaussianMixtureOutlierDetector

    if "prior" in GaussianMixtureOutlierDetector().get_params():
        pytest.skip("the detector takes a prior")
    with pytest.raises(InvalidParameterError, match="takes no prior"):
        GaussianMixtureSelector(2, estimator=_NoPrior(), prior="default").fit(data("faithful"))


class _NoPrior(GaussianMixture):
    """A mixture estimator without the prior parameter."""

    def __init__(self, n_components=1, *, covariance_type="full", n_init=1, init_params="kmeans", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, random_state=None, engine="auto", device=None):
        super().__init__(n_components, covariance_type=covariance_type, n_init=n_init, init_params=init_params,
                         tol=tol, reg_covar=reg_covar, max_iter=max_iter, random_state=random_state, engine=engine,
                         device=device)

    def get_params(self, deep=True):
        params = super().get_params(deep)
        params.pop("prior", None)
        return params


@pytest.mark.parametrize("engine", ENGINES)
def test_prior_on_every_engine_and_in_float32(engine):
    """The prior only changes the M-step, so every engine gives the NumPy float64 fit (40 iterations each)."""
    X = data("faithful")
    labels = start("faithful", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = GaussianMixture(3, covariance_type="EEE", prior="default", init_params=labels, tol=0.0,
                                   max_iter=40).fit(X)
    for dtype in (np.float64, np.float32):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = GaussianMixture(3, covariance_type="EEE", prior="default", init_params=labels, tol=0.0,
                                  max_iter=40).fit(on_engine(X, engine, dtype=dtype))
        rtol = 1e-6 if dtype == np.float64 else 2e-3
        np.testing.assert_allclose(as_numpy(fit.means_), expected.means_, rtol=rtol)
        np.testing.assert_allclose(as_numpy(fit.covariances_), expected.covariances_, rtol=10 * rtol)


def test_sample_weight_is_a_repeated_row():
    X = data("faithful")[:60]
    weights = np.arange(60) % 3 + 1.0
    repeated = np.repeat(X, weights.astype(int), axis=0)
    a = GaussianMixture(2, prior="default", init_params=np.arange(60) % 2, tol=1e-10).fit(X, sample_weight=weights)
    b = GaussianMixture(2, prior="default", init_params=np.repeat(np.arange(60) % 2, weights.astype(int)),
                        tol=1e-10).fit(repeated)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-8)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-8)


def test_model_file_keeps_the_prior(tmp_path):
    X = data("faithful")
    fit = GaussianMixture(2, prior={"scale": np.diag([0.5, 30.0]), "dof": 5.0}, random_state=0).fit(X)
    fit.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    assert set(loaded.prior) == {"scale", "dof"}
    np.testing.assert_array_equal(loaded.prior["scale"], fit.prior["scale"])
    np.testing.assert_allclose(loaded.predict_proba(X), fit.predict_proba(X))
    refit = loaded.set_params(random_state=0).fit(X)
    np.testing.assert_allclose(refit.means_, fit.means_)


def test_cli_fit_and_report_take_the_default_prior(tmp_path):
    source = Path(gaussmix.__file__).parent / "datasets" / "data" / "faithful.csv"
    model = tmp_path / "m.npz"
    run = subprocess.run([sys.executable, "-m", "gaussmix", "fit", str(source), "-o", str(model), "-k", "3",
                          "--covariance", "EEE", "--prior", "default", "--init", "hc"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "maximum a posteriori with mclust's default prior" in run.stdout
    assert gaussmix.load(model).prior == "default"
    report = tmp_path / "r.html"
    run = subprocess.run([sys.executable, "-m", "gaussmix", "report", str(source), "-o", str(report), "--select",
                          "2-3", "--structures", "EEE", "VVV", "--prior", "default", "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    text = report.read_text()
    assert "maximum a posteriori (prior: conjugate, mclust&#x27;s defaults" in text
    assert "Prior: conjugate" in text


def test_default_prior_is_mclusts():
    """defaultPrior: shrinkage 0.01, the data mean, d + 2 degrees of freedom, the (unbiased) covariance times
    (1/K)^(2/d), or its mean variance for diagonal and spherical models."""
    X = data("iris")
    for model, matrix in (("VVV", True), ("EEE", True), ("VVI", False), ("EII", False)):
        em_model = em_model_of(GaussianMixture(3, covariance_type=model, prior="default"), X)
        prior = em_model.prior
        assert prior.shrinkage == 0.01 and prior.dof == 6.0
        np.testing.assert_allclose(prior.mean, X.mean(axis=0))
        expected = np.cov(X.T) * (1 / 3) ** 0.5
        np.testing.assert_allclose(prior.scale, expected if matrix else np.mean(np.diag(expected)), rtol=1e-12)
    assert math.isclose(float(em_model_of(GaussianMixture(2, covariance_type="E", prior="default"),
                                          X[:, :1]).prior.scale), np.var(X[:, 0], ddof=1) / 4, rel_tol=1e-12)
