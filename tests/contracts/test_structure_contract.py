"""The contract of a covariance structure, run over every registered one.

A new structure registered in ``gaussmix.covariance`` gets these tests for
free; the registered ones use every layout.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gaussmix._namespace import NUMPY
from gaussmix.covariance import CovarianceStructure, available_structures, get_structure, structure_aliases
from gaussmix.covariance._linalg import safe_counts
from gaussmix.covariance.layouts import SHARED_DIAGONAL
from gaussmix.em.kernels import chunk_statistics, weighted_log_prob
from gaussmix.em.params import MixtureParams, kernel_terms
from gaussmix.exceptions import InvalidParameterError


def _pooled_diagonal(scatter, counts, reg, previous):
    return scatter / max(float(np.sum(counts)), np.finfo(float).tiny) + reg


def _per_feature(n_components, n_features):
    return n_features


STRUCTURES = [get_structure(name) for name in available_structures()]
D = 3


@pytest.fixture(params=STRUCTURES, ids=lambda s: s.name)
def structure(request):
    return request.param


@pytest.fixture(params=[2, 6], ids=lambda k: f"K{k}")
def n_components(request):
    return request.param  # 2 components: the full layout whitens; 6: quadratic row terms


def statistics_about(structure, X, resp, weights, shift):
    """Statistics of responsibilities ``resp`` (m, K) and ``weights`` about ``shift``, directly from the kernels."""
    layout = structure.layout
    Xt = NUMPY.centre_transposed(X, np.asarray(shift, dtype=np.float64), np.float64)
    weighted = (resp * weights[:, None]).T
    row_terms = layout.row_terms(NUMPY, Xt, resp.shape[1])
    return chunk_statistics(NUMPY, layout, Xt, row_terms, weighted, np.asarray(shift, dtype=np.float64), 0.0,
                            float(weights.sum()))


@pytest.fixture
def case(structure, n_components):
    """Rows, weights, responsibilities, their statistics about the data mean, and parameters estimated from them."""
    rng = np.random.RandomState(n_components)
    X = rng.normal(size=(400, D)) @ rng.normal(size=(D, D)) + rng.normal(0, 3, D)
    weights = rng.uniform(0.2, 2.0, X.shape[0])
    resp = rng.dirichlet(np.ones(n_components), X.shape[0])
    shift = np.average(X, axis=0, weights=weights)
    stats = statistics_about(structure, X, resp, weights, shift)
    reg = np.full(D, 1e-3)
    covariances = structure.covariances(stats.counts, stats.first, stats.second, reg)
    layout = structure.layout
    params = MixtureParams(stats.counts / stats.counts.sum(), stats.means, covariances,
                           layout.precisions_cholesky(covariances))
    return dict(X=X, weights=weights, resp=resp, shift=shift, stats=stats, reg=reg, params=params)


def direct_scatter(X, resp, weights):
    """``sum_i w_i r_ik (x_i - m_k)(x_i - m_k)'`` per component, with ``m_k`` the weighted mean: (K, d, d)."""
    wr = resp * weights[:, None]
    counts = wr.sum(axis=0)
    means = (wr.T @ X) / counts[:, None]
    return np.stack([(wr[:, k, None] * (X - means[k])).T @ (X - means[k]) for k in range(resp.shape[1])]), counts


def test_shapes(structure, n_components, case):
    layout, params, stats = structure.layout, case["params"], case["stats"]
    expected = layout.shape(n_components, D)
    assert structure.covariance_shape(n_components, D) == expected
    assert params.covariances.shape == expected and params.precisions_cholesky.shape == expected
    assert stats.second.shape == layout.statistic_shape(n_components, D)
    assert layout.full_covariances(params.covariances, n_components, D).shape == (n_components, D, D)
    assert layout.default_covariances(np.ones(D), n_components).shape == expected
    assert layout.take_components(params.covariances, np.array([0])).shape == layout.shape(1, D) or (
        not layout.per_component)


def test_conversions_round_trip(structure, n_components, case):
    layout, params = structure.layout, case["params"]
    full = layout.full_covariances(params.covariances, n_components, D)
    precisions = layout.precisions(params.precisions_cholesky)
    full_precisions = layout.full_covariances(precisions, n_components, D)
    np.testing.assert_allclose(full @ full_precisions, np.broadcast_to(np.eye(D), full.shape), atol=1e-10)
    np.testing.assert_allclose(layout.covariances_from_precisions_cholesky(params.precisions_cholesky),
                               params.covariances, rtol=1e-10)
    again = layout.precisions_cholesky_from_precisions(precisions)
    np.testing.assert_allclose(layout.precisions(again), precisions, rtol=1e-10)
    log_det = np.broadcast_to(layout.log_det_precision_cholesky(params.precisions_cholesky, D), (n_components,))
    np.testing.assert_allclose(log_det, -0.5 * np.linalg.slogdet(full)[1], rtol=1e-10)
    conditional = np.broadcast_to(layout.conditional_variances(params.covariances, params.precisions_cholesky),
                                  (n_components, D) if layout.per_component else (1, D))
    expected = 1.0 / np.diagonal(full_precisions, axis1=1, axis2=2)
    np.testing.assert_allclose(conditional, expected[: conditional.shape[0]], rtol=1e-10)


@pytest.mark.parametrize("at", ["data mean", "origin"])
def test_log_probabilities_match_scipy(structure, n_components, case, at):
    """The Mahalanobis kernel (with the layout's row terms) against SciPy's Gaussian log-density."""
    layout, params, X = structure.layout, case["params"], case["X"]
    shift = case["shift"] if at == "data mean" else np.zeros(D)
    terms = kernel_terms(structure, params, shift).on(NUMPY, np.float64)
    ours = weighted_log_prob(NUMPY, layout, X, terms, np.float64)
    full = layout.full_covariances(params.covariances, n_components, D)
    theirs = np.column_stack([np.log(params.weights[k]) + multivariate_normal(params.means[k], full[k]).logpdf(X)
                              for k in range(n_components)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    whitened = np.column_stack([np.sum(layout.whiten(params.precisions_cholesky, k, X - params.means[k]) ** 2, axis=1)
                                for k in range(n_components)])
    log_norm = np.log(params.weights) - 0.5 * np.linalg.slogdet(full)[1] - 0.5 * D * np.log(2 * np.pi)
    np.testing.assert_allclose(log_norm - 0.5 * whitened, theirs, rtol=1e-9, atol=1e-9)


def layout_mle(layout_name, scatter, counts, reg):
    """The maximum-likelihood covariances of each layout, computed directly from the scatter matrices."""
    d = scatter.shape[-1]
    if layout_name == "full":
        return scatter / counts[:, None, None] + np.diag(reg)
    if layout_name == "shared":
        return scatter.sum(axis=0) / counts.sum() + np.diag(reg)
    if layout_name == "diagonal":
        return np.diagonal(scatter, axis1=1, axis2=2) / counts[:, None] + reg
    if layout_name == "shared-diagonal":
        return np.diagonal(scatter.sum(axis=0)) / counts.sum() + reg
    if layout_name == "scalar":
        return np.trace(scatter, axis1=1, axis2=2) / (d * counts) + np.mean(reg)
    raise AssertionError(f"no direct computation for layout {layout_name!r}")


def test_estimate_against_a_direct_weighted_computation(structure, n_components, case):
    """Structures with as many parameters as their layout has entries are the layout's maximum likelihood."""
    layout = structure.layout
    scatter, counts = direct_scatter(case["X"], case["resp"], case["weights"])
    np.testing.assert_allclose(case["stats"].counts, counts, rtol=1e-12)
    if structure.n_covariance_parameters(n_components, D) < layout.free_entries(n_components, D):
        pytest.skip("a constrained structure: checked against a numerical optimiser instead")
    expected = layout_mle(layout.name, scatter, counts, case["reg"])
    np.testing.assert_allclose(case["params"].covariances, expected, rtol=1e-9)


def test_parameter_count_is_the_dimension_of_what_the_estimate_reaches(structure, n_components, case):
    """The rank of the estimate's Jacobian (in the statistic's coordinates) is the structure's parameter count."""
    stats, reg = case["stats"], case["reg"]
    base = structure.covariances(stats.counts, stats.first, stats.second, reg).ravel()
    flat = stats.second.ravel()
    step = 1e-6 * np.maximum(np.abs(flat), 1.0)
    columns = []
    for j in range(flat.size):
        moved = flat.copy()
        moved[j] += step[j]
        out = structure.covariances(stats.counts, stats.first, moved.reshape(stats.second.shape), reg).ravel()
        columns.append((out - base) / step[j])
    singular = np.linalg.svd(np.column_stack(columns), compute_uv=False)
    rank = int(np.sum(singular > 1e-6 * singular[0]))
    count = structure.n_covariance_parameters(n_components, D)
    assert rank == count
    assert count <= structure.layout.free_entries(n_components, D)


def test_statistics_recentre_exactly(structure, case):
    """Statistics taken about one shift, moved to another, equal those taken about the other."""
    X, resp, weights = case["X"], case["resp"], case["weights"]
    other = case["shift"] + np.array([5.0, -3.0, 0.5])
    direct = statistics_about(structure, X, resp, weights, other)
    moved = case["stats"].recentred(structure, other)
    for name in ("counts", "first", "second"):
        np.testing.assert_allclose(getattr(moved, name), getattr(direct, name), rtol=1e-10, atol=1e-8)
    np.testing.assert_array_equal(moved.shift, other)
    # Batches taken about different shifts add once recentred.
    half = X.shape[0] // 2
    first_half = statistics_about(structure, X[:half], resp[:half], weights[:half], case["shift"])
    second_half = statistics_about(structure, X[half:], resp[half:], weights[half:], other)
    combined = first_half.recentred(structure, other) + second_half
    for name in ("counts", "first", "second"):
        np.testing.assert_allclose(getattr(combined, name), getattr(direct, name), rtol=1e-10, atol=1e-8)


def test_statistics_rescale_exactly(structure, case):
    X, resp, weights = case["X"], case["resp"], case["weights"]
    doubled = statistics_about(structure, X, resp, 4.0 * weights, case["shift"])
    scaled = case["stats"].scaled(4.0)
    for name in ("counts", "first", "second", "total_weight"):
        np.testing.assert_array_equal(getattr(scaled, name), getattr(doubled, name))


def test_scatter_is_the_centred_scatter(structure, n_components, case):
    stats, layout = case["stats"], structure.layout
    scatter, counts = direct_scatter(case["X"], case["resp"], case["weights"])
    reduced = {
        "full": scatter,
        "shared": scatter.sum(axis=0),
        "diagonal": np.diagonal(scatter, axis1=1, axis2=2),
        "shared-diagonal": np.diagonal(scatter.sum(axis=0)),
        "scalar": np.trace(scatter, axis1=1, axis2=2),
    }[layout.name]
    np.testing.assert_allclose(layout.scatter(stats.counts, stats.first, stats.second), reduced, rtol=1e-9,
                               atol=1e-9 * np.max(np.abs(reduced)))
    empty = layout.scatter(np.zeros(n_components), np.zeros_like(stats.first), np.zeros_like(stats.second))
    assert np.all(empty == 0) and np.all(safe_counts(np.zeros(2)) == 1)


def test_sampling_follows_the_covariances(structure, n_components, case):
    layout, params = structure.layout, case["params"]
    counts = np.full(n_components, 20_000)
    rows = layout.sample(np.random.RandomState(0), params.means, params.covariances, counts)
    full = layout.full_covariances(params.covariances, n_components, D)
    for k in range(n_components):
        block = rows[k * 20_000:(k + 1) * 20_000]
        scale = np.sqrt(np.outer(np.diag(full[k]), np.diag(full[k])))
        assert np.max(np.abs(np.cov(block.T) - full[k]) / scale) < 0.05
        assert np.max(np.abs(block.mean(axis=0) - params.means[k]) / np.sqrt(np.diag(full[k]))) < 0.05


def test_marginals_and_component_edits(structure, n_components, case):
    layout, params = structure.layout, case["params"]
    full = layout.full_covariances(params.covariances, n_components, D)
    marginal = layout.marginal_covariances(params.covariances, [2, 0])
    np.testing.assert_allclose(layout.full_covariances(marginal, n_components, 2),
                               full[:, [2, 0]][:, :, [2, 0]] if layout.name != "scalar" else
                               layout.full_covariances(params.covariances, n_components, 2))
    defaults = layout.default_covariances(np.array([1.0, 2.0, 3.0]), n_components)
    replaced = layout.replace_components(params.covariances, defaults, np.arange(n_components) == 0)
    if layout.per_component:
        np.testing.assert_array_equal(replaced[0], defaults[0])
        np.testing.assert_array_equal(replaced[1:], params.covariances[1:])
    else:
        np.testing.assert_array_equal(replaced, params.covariances)


def test_value_checks(structure, n_components, case):
    layout, params = structure.layout, case["params"]
    layout.check_covariance_values(params.covariances)
    broken = params.covariances.copy()
    if layout.is_matrix:
        broken[..., 0, 0] = -1.0
    else:
        broken.flat[0] = -1.0
    with pytest.raises(ValueError, match="not"):
        layout.check_covariance_values(broken)
    precisions = layout.precisions(params.precisions_cholesky)
    np.testing.assert_array_equal(structure.check_precisions(precisions, n_components, D), precisions)
    with pytest.raises(ValueError, match=f"'{structure.name} precision' should"):
        structure.check_precisions(np.ones(layout.shape(n_components + 1, D + 1)), n_components, D)


def test_the_registry():
    names = available_structures()
    assert len(set(names)) == len(names) > 0
    for name in names:
        structure = get_structure(name)
        assert structure.name == name and get_structure(name) is structure
        assert pickle.loads(pickle.dumps(structure)) is structure
    for alias, name in structure_aliases().items():
        assert get_structure(alias) is get_structure(name)
    with pytest.raises(InvalidParameterError, match="covariance_type must be one of " + repr(names[0])):
        get_structure("no such structure")
    pooled = CovarianceStructure("pooled diagonal", "one diagonal covariance shared by all components",
                                 SHARED_DIAGONAL, _pooled_diagonal, _per_feature)
    copy = pickle.loads(pickle.dumps(pooled))  # an unregistered structure pickles by value
    assert copy.name == "pooled diagonal" and copy is not pooled
    assert set(structure_aliases()) >= {"VVV", "EEE", "VVI", "VII"}
