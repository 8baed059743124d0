"""mclust's fourteen covariance models: each estimate is the constrained maximum, EM is monotone, and the
parameters of data sampled from a model are recovered."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import minimize

from gaussmix import GaussianMixture
from gaussmix.covariance import available_structures, get_structure

#: Each registered structure's mclust name: volume, shape, orientation (Equal, Variable, Identity).
MCLUST = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
MODELS = [MCLUST.get(name, name) for name in available_structures()]


def test_every_mclust_model_is_registered():
    assert sorted(MODELS) == sorted(["EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
                                     "VEV", "EVV", "VVV"])
    for name in MODELS:
        assert get_structure(name).name in available_structures()


def natural_scatter(layout, scatter):
    """The scatter in the layout's shape from full per-component scatter matrices (K, d, d)."""
    diagonal = np.diagonal(scatter, axis1=1, axis2=2)
    return {"full": scatter, "shared": scatter.sum(axis=0), "diagonal": diagonal,
            "shared-diagonal": diagonal.sum(axis=0), "scalar": diagonal.sum(axis=1)}[layout.name]


def objective(covariances, scatter, counts, reg):
    """``sum_k n_k log det Sigma_k + tr(W_k Sigma_k^-1)`` with ``n_k reg`` added to each ``W_k``'s diagonal."""
    regularised = scatter + counts[:, None, None] * np.diag(reg)
    return float(sum(n * np.linalg.slogdet(c)[1] + np.trace(np.linalg.solve(c, w))
                     for n, c, w in zip(counts, covariances, regularised)))


def constrained(name, theta, K, d):
    """Covariances of model ``name`` from unconstrained parameters: log volumes, log shapes (centred), and
    orientations as exponentials of skew-symmetric matrices."""
    position = 0

    def take(size):
        nonlocal position
        part = theta[position:position + size]
        position += size
        return part

    volume, shape, orientation = name
    volumes = np.exp(take(1 if volume == "E" else K) * np.ones(K))
    if shape == "I":
        shapes = np.zeros((K, d))
    else:
        free = take((d - 1) * (1 if shape == "E" else K)).reshape(-1, d - 1) * np.ones((K, 1))
        shapes = np.column_stack([free, -free.sum(axis=1)])
    upper = np.triu_indices(d, 1)
    rotations = []
    for k in range(K):
        if orientation == "I":
            rotations.append(np.eye(d))
            continue
        if orientation == "V" or k == 0:
            skew = np.zeros((d, d))
            skew[upper] = take(len(upper[0]))
            rotation = expm(skew - skew.T)
        rotations.append(rotation)
    assert position == len(theta)
    return np.array([v * r @ np.diag(np.exp(a)) @ r.T for v, a, r in zip(volumes, shapes, rotations)]), position


def n_free(name, K, d):
    sizes = {"E": 1, "V": K, "I": 0}
    return (sizes[name[0]] + sizes[name[1]] * (d - 1) + sizes[name[2]] * d * (d - 1) // 2)


@pytest.mark.parametrize("name", MODELS)
def test_each_estimate_maximises_the_expected_log_likelihood_under_its_constraint(name):
    """On small random statistics, no parameters a generic optimiser finds under the model's constraint
    do better than the estimate, and the estimate satisfies the constraint."""
    rng = np.random.RandomState(sum(map(ord, name)))
    K, d = 3, 3
    structure = get_structure(name)
    assert structure.n_covariance_parameters(K, d) == n_free(name, K, d)
    counts = rng.uniform(5.0, 30.0, size=K)
    scatter = np.array([n * (m @ m.T / d + 0.1 * np.eye(d)) for n, m in zip(counts, rng.normal(size=(K, d, d)))])
    reg = np.full(d, 1e-3)
    estimate = structure.estimate(natural_scatter(structure.layout, scatter), counts, reg, None)
    ours = structure.layout.full_covariances(estimate, K, d)
    best = objective(ours, scatter, counts, reg)

    found = np.inf
    for start in range(4):
        theta0 = rng.normal(scale=0.5, size=n_free(name, K, d))
        result = minimize(lambda t: objective(constrained(name, t, K, d)[0], scatter, counts, reg), theta0,
                          method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
        found = min(found, result.fun)
    assert best <= found + 1e-7 * abs(found)
    assert found <= best + 1e-4 * abs(best)  # the optimiser reaches it too: both are the maximum

    assert_form(name, ours)


def assert_form(name, covariances):
    """That covariances (K, d, d) have model ``name``'s form: volumes, shapes and orientations equal where
    the name says so, the identity where it says I."""
    K = covariances.shape[0]
    values = np.linalg.eigvalsh(covariances)
    volumes = np.exp(np.mean(np.log(values), axis=1))
    if name[0] == "E":
        np.testing.assert_allclose(volumes, volumes[0], rtol=1e-9)
    shapes = values / volumes[:, None]
    if name[1] == "E":
        np.testing.assert_allclose(shapes, shapes[:1].repeat(K, axis=0), rtol=1e-6)
    if name[1:] == "II":
        np.testing.assert_allclose(shapes, 1.0, rtol=1e-9)
    if name[2] == "I":
        np.testing.assert_allclose(covariances, np.array([np.diag(np.diag(c)) for c in covariances]), atol=1e-12)
    if name[2] == "E":  # one orientation: the covariances commute
        scale = np.abs(covariances).max() ** 2
        for k in range(1, K):
            np.testing.assert_allclose(covariances[0] @ covariances[k], covariances[k] @ covariances[0],
                                       atol=1e-9 * scale)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.filterwarnings("ignore::gaussmix.exceptions.ConvergenceWarning")  # 40 iterations from a poor start
def test_em_is_monotone_and_recovers_a_sampled_model(name):
    """Data sampled from three well separated components of the model's form: every EM iteration raises the
    bound, and the fitted covariances are the sampled ones within sampling error."""
    rng = np.random.RandomState(7)
    K, d, n = 3, 3, 3000
    volume, shape, orientation = name
    volumes = np.array([1.0, 1.0, 1.0]) if volume == "E" else np.array([0.5, 1.0, 2.0])
    shapes = np.ones((K, d)) if shape == "I" else np.array([[3.0, 1.0, 1 / 3]] * K)
    if shape == "V":
        shapes = np.array([[3.0, 1.0, 1 / 3], [1.5, 1.0, 1 / 1.5], [2.0, 0.25, 2.0]])
    base = np.linalg.qr(rng.normal(size=(d, d)))[0]
    rotations = [np.eye(d)] * K if orientation == "I" else [base] * K
    if orientation == "V":
        rotations = [np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(K)]
    covariances = np.array([v * r @ np.diag(a) @ r.T for v, a, r in zip(volumes, shapes, rotations)])
    means = np.array([[0.0, 0.0, 0.0], [12.0, 0.0, 0.0], [0.0, 12.0, 0.0]])
    labels = rng.choice(K, size=n, p=[0.3, 0.3, 0.4])
    X = means[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(covariances)[labels], rng.normal(size=(n, d)))
    gm = GaussianMixture(K, covariance_type=name, means_init=means, tol=1e-10, max_iter=500, random_state=0).fit(X)
    # every iteration raises the bound, up to rounding at convergence (the M-step adds reg_covar, so the
    # likelihood is not exactly what it maximises)
    assert len(gm.lower_bounds_) > 1 and np.all(np.diff(gm.lower_bounds_) >= -1e-9 * np.abs(gm.lower_bounds_[1:]))
    far = GaussianMixture(K, covariance_type=name, init_params="random", tol=1e-12, max_iter=40,
                          random_state=1).fit(X[:500])  # from a poor start: many iterations
    assert len(far.lower_bounds_) > 5
    assert np.all(np.diff(far.lower_bounds_) >= -1e-9 * np.abs(far.lower_bounds_[1:]))
    fitted = get_structure(name).layout.full_covariances(gm.covariances_, K, d)
    assert_form(name, fitted)  # the model's own M-step, not the unconstrained one
    order = np.argsort(gm.means_[:, 0] + 2 * gm.means_[:, 1])  # 0: origin, 1: along x, 2: along y
    np.testing.assert_allclose(fitted[order], covariances, atol=0.15 * np.max(covariances))


def test_iris_reaches_mclusts_best_model():
    """Mclust's choice for iris is VEV with 2 components: log-likelihood -215.726, BIC -561.729 in its sign."""
    from sklearn.datasets import load_iris

    X = load_iris().data
    gm = GaussianMixture(2, covariance_type="VEV", init_params="emem", n_init=3, tol=1e-8, random_state=0).fit(X)
    assert gm.score(X) * len(X) == pytest.approx(-215.726, abs=2e-3)
    assert gm.bic(X) == pytest.approx(561.729, abs=2e-2)
    assert_form("VEV", gm.covariances_)


@pytest.mark.parametrize("name", ["EII", "EEI", "VEI", "EVE", "VVE", "VEV"])
def test_every_engine_fits_the_constrained_models_as_numpy_does(name, engine):
    """The M-step runs on the host from the engines' float64 statistics: the same fit on every engine, and
    float32 rows give float32 parameters of the same fit."""
    from conftest import as_numpy, on_engine
    from sklearn.datasets import load_iris

    X = load_iris().data
    settings = dict(covariance_type=name, tol=1e-8, max_iter=2000, random_state=0)
    ours = GaussianMixture(3, engine=engine, **settings).fit(on_engine(X, engine))
    reference = GaussianMixture(3, **settings).fit(X)
    assert ours.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-9)
    np.testing.assert_allclose(as_numpy(ours.covariances_), reference.covariances_, rtol=1e-7, atol=1e-10)
    # float32 rows from the float64 fit's optimum stay there (from a start, rounding may lead elsewhere)
    single = GaussianMixture(3, means_init=reference.means_, **settings).fit(X.astype(np.float32))
    assert single.covariances_.dtype == np.float32
    assert single.lower_bound_ == pytest.approx(reference.lower_bound_, abs=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_a_model_file_keeps_the_model_and_its_parameter_count(name, tmp_path):
    from sklearn.datasets import load_iris

    import gaussmix

    X = load_iris().data
    gm = GaussianMixture(2, covariance_type=name, random_state=0).fit(X)
    gm.save(tmp_path / "model.npz")
    back = gaussmix.load(tmp_path / "model.npz")
    assert back.covariance_type == name
    np.testing.assert_array_equal(back.score_samples(X), gm.score_samples(X))
    dof = 2 * 4 + 1 + get_structure(name).n_covariance_parameters(2, 4)  # means, weights, covariances
    assert back.bic(X) == pytest.approx(-2 * gm.score(X) * len(X) + dof * np.log(len(X)), rel=1e-12)


def mclust_fits(data: str) -> list[dict]:
    """Mclust's fits of ``data`` (benchmarks/models/mclust_models.csv, written by mclust_models.R with mclust
    6.0.0 from its default hierarchical start)."""
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "models" / "mclust_models.csv"
    return [row for row in csv.DictReader(open(path)) if row["data"] == data]


@pytest.mark.parametrize("name", MODELS)
def test_from_mclusts_start_every_fit_of_faithful_reaches_mclusts(name):
    """On Old Faithful, each model with 1 to 9 components from the same hierarchical start as Mclust: at
    least Mclust's log-likelihood (within max(0.02, 1e-5 |l|)), with Mclust's number of parameters."""
    from gaussmix.datasets import load_faithful

    X = load_faithful(return_X_y=True)[0]
    rows = [row for row in mclust_fits("faithful") if row["model"] == name and row["loglik"] != "NA"]
    assert len(rows) >= 8
    for row in rows:
        gm = GaussianMixture(int(row["G"]), covariance_type=name, init_params="hc", tol=1e-8, max_iter=2000,
                             random_state=0).fit(X)
        ours, theirs = gm.score(X) * X.shape[0], float(row["loglik"])
        assert ours >= theirs - max(0.02, 1e-5 * abs(theirs)), (row["G"], ours, theirs)
        assert gm._n_parameters() == int(row["df"])
        # BIC as mclust's, of the opposite sign: with the same parameter count, it differs by twice the gap
        assert -gm.bic(X) - float(row["bic"]) == pytest.approx(2 * (ours - theirs), abs=1e-6 * abs(theirs))


def test_the_compiled_rotation_sweep_is_the_numpy_one():
    """EVE's and VVE's sweep of plane rotations, compiled (numba) and with NumPy: the same rotations."""
    from gaussmix._compiled import compiled
    from gaussmix.covariance._loops import rotate_pairs
    from gaussmix.covariance.constrained import _rotate_pairs

    loop = compiled(rotate_pairs)
    if loop is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    for d in (2, 3, 7):
        A = rng.normal(size=(4, d, d + 3))
        scatter = A @ A.transpose(0, 2, 1)
        orientation = np.linalg.qr(rng.normal(size=(d, d)))[0]
        inner = np.einsum("ji,kjm,ml->kil", orientation, scatter, orientation)
        precisions = rng.uniform(0.5, 2.0, size=(4, d))
        ours = [inner.copy(), orientation.copy()]
        theirs = [inner.copy(), orientation.copy()]
        loop(ours[0], ours[1], precisions)
        _rotate_pairs(theirs[0], theirs[1], precisions)
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-10 * np.abs(inner).max())
        np.testing.assert_allclose(ours[1].T @ ours[1], np.eye(d), atol=1e-12)
