"""Starts: from a given partition (labels or responsibilities), and the rule that a degenerate optimum loses."""

from __future__ import annotations

import importlib.util
import itertools
import warnings

import numpy as np
import pytest
from conftest import STRUCTURES, as_numpy, on_engine

from gaussmix import (
    CollapsedComponentWarning,
    GaussianMixture,
    GaussianMixtureSelector,
    InvalidParameterError,
)
from gaussmix.covariance import get_structure
from gaussmix.em.fit import FitSettings, fit_mixture
from gaussmix.em.observers import FitObserver
from gaussmix.em.search import SHORT_EM_ITERATIONS
from gaussmix.engines import get_engine


@pytest.fixture(scope="module")
def rows():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal([0, 0], 1.0, (150, 2)), rng.normal([5, 0], 1.0, (100, 2)),
                   rng.normal([0, 6], 0.7, (80, 2))])
    labels = np.repeat([0, 1, 2], [150, 100, 80])
    return X, labels


def test_labels_start_from_their_partition(rows):
    X, labels = rows
    model = GaussianMixture(3, init_params=labels, max_iter=0).fit(X)  # no EM: the starting parameters
    for k in range(3):
        np.testing.assert_allclose(model.means_[k], X[labels == k].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(model.covariances_[k], np.cov(X[labels == k].T, bias=True) + 1e-6 * X.var(axis=0)
                                   * np.eye(2), rtol=1e-9)
    np.testing.assert_allclose(model.weights_, [150 / 330, 100 / 330, 80 / 330])


def test_responsibilities_and_one_hot_labels_agree(rows, structure):
    X, labels = rows
    one_hot = np.eye(3)[labels]
    a = GaussianMixture(3, covariance_type=structure, init_params=labels).fit(X)
    b = GaussianMixture(3, covariance_type=structure, init_params=one_hot).fit(X)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    assert a.n_iter_ == b.n_iter_
    soft = np.full((X.shape[0], 3), 0.1) + 0.7 * one_hot
    c = GaussianMixture(3, covariance_type=structure, init_params=soft, max_iter=200, tol=1e-8).fit(X)
    assert np.mean(c.predict(X) == labels) > 0.95


def test_a_given_start_is_deterministic_and_runs_once(rows):
    X, labels = rows
    seen = []
    model = GaussianMixture(3, init_params=labels, n_init=5, random_state=None, callback=seen.append).fit(X)
    again = GaussianMixture(3, init_params=labels, n_init=1, random_state=123).fit(X)
    assert {info.restart for info in seen} == {0}
    np.testing.assert_array_equal(model.means_, again.means_)


def test_a_given_start_with_sample_weights_equals_repeated_rows(rows):
    X, labels = rows
    weights = np.where(np.arange(X.shape[0]) % 3 == 0, 2.0, 1.0)
    repeat = np.repeat(np.arange(X.shape[0]), weights.astype(int))
    weighted = GaussianMixture(3, init_params=labels).fit(X, sample_weight=weights)
    repeated = GaussianMixture(3, init_params=labels[repeat]).fit(X[repeat])
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-8)


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_a_given_start_on_every_engine(rows, engine):
    if importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed")
    X, labels = rows
    weights = np.linspace(0.5, 2.0, X.shape[0])
    reference = GaussianMixture(3, init_params=labels).fit(X, sample_weight=weights)
    for start in (labels, np.eye(3)[labels]):
        model = GaussianMixture(3, init_params=start).fit(on_engine(X, engine, chunks=64), sample_weight=weights)
        np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-8)
        assert as_numpy(model.predict(on_engine(X, engine))).shape == (X.shape[0],)


@pytest.mark.parametrize("start, message", [
    (np.zeros(10, dtype=int), "init_params gives 10 labels, but X has 330 rows"),
    (np.full(330, 3), r"labels must lie in \[0, 3\)"),
    (np.full(330, 0.5), "whole numbers"),
    (np.full((330, 2), 0.5), r"'init_params' should have the shape of \(330, 3\)"),
    (np.full((330, 3), 0.5), "must sum to 1 in every row; row 0 sums to 1.5"),
    (-np.eye(3)[np.zeros(330, dtype=int)], "finite and non-negative"),
    (np.zeros((330, 3, 1)), "labels \\(n_samples,\\) or responsibilities"),
])
def test_a_given_start_is_checked_against_x(rows, start, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(3, init_params=start).fit(rows[0])


def test_init_params_names_the_array_forms_in_its_error(rows):
    with pytest.raises(InvalidParameterError, match="or an array of labels of shape \\(n_samples,\\)"):
        GaussianMixture(3, init_params="hierarchical").fit(rows[0])
    with pytest.raises(InvalidParameterError, match="must name a method for a selector"):
        GaussianMixtureSelector([2, 3], init_params=rows[1]).fit(rows[0])


def test_a_given_start_round_trips_through_clone_and_files(rows, tmp_path):
    from sklearn.base import clone

    import gaussmix

    X, labels = rows
    model = GaussianMixture(3, init_params=labels).fit(X)
    copy = clone(model)
    np.testing.assert_array_equal(copy.init_params, labels)
    model.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.init_params, labels)
    np.testing.assert_array_equal(loaded.fit(X).means_, model.means_)


# -- a degenerate optimum is not a better optimum ---------------------------------------------------------
class Recorder(FitObserver):
    def __init__(self):
        self.results = []

    def restart_finished(self, restart, result):
        self.results.append(result)


def degenerate_data():
    """Normal rows plus a tight knot of repeated rows: a component on the knot is a spike of density."""
    rng = np.random.RandomState(1)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(4, 1, (200, 2)), np.tile([[2.0, -3.0]], (12, 1))])
    return X


@pytest.mark.parametrize("structure", [s for s in STRUCTURES if get_structure(s).layout.per_component])
def test_restarts_prefer_a_fit_without_a_collapsed_component(structure):
    X = degenerate_data()
    source = get_engine("numpy").prepare(X, None, device=None).source
    settings = FitSettings(n_components=3, structure=get_structure(structure), init="random_from_data",
                           n_init=30, tol=1e-6, reg_covar=1e-6, max_iter=300)
    recorder = Recorder()
    best = fit_mixture(source, settings, np.random.RandomState(0), observer=recorder)
    collapsed = [r for r in recorder.results if r.collapsed]
    sound = [r for r in recorder.results if not r.collapsed]
    assert collapsed and sound  # the search met both kinds of optimum
    assert max(r.lower_bound for r in collapsed) > max(r.lower_bound for r in sound)  # the spike "wins" on likelihood
    assert not best.collapsed and best.lower_bound == max(r.lower_bound for r in sound)


def test_only_when_every_restart_collapses_is_a_collapsed_fit_kept_with_a_warning():
    X = np.vstack([np.tile([[0.0, 0.0]], (20, 1)), np.tile([[5.0, 5.0]], (20, 1)),
                   np.random.RandomState(0).normal(2, 1, (30, 2))])
    with pytest.warns(CollapsedComponentWarning):
        model = GaussianMixture(3, n_init=3, random_state=0).fit(X)
    assert model.collapsed_components_.size
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapsedComponentWarning)
        GaussianMixture(2, n_init=3, random_state=0).fit(degenerate_data())


# -- short-EM multi-starts ---------------------------------------------------------------------------------
def size_dominated(seed=5):
    """Four groups that differ in shape, all spread along one dominant "size" direction (as MASS::crabs)."""
    rng = np.random.RandomState(seed)
    size = rng.normal(0, 8, 200)
    offsets = np.array([[1.2, -1.2, 0, 0, 0], [-1.2, 1.2, 0, 0, 0], [0, 0, 1.2, -1.2, 0], [0, 0, -1.2, 1.2, 0]])
    labels = np.repeat(np.arange(4), 50)
    return size[:, None] * np.ones(5) / np.sqrt(5) + offsets[labels] + rng.normal(0, 0.5, (200, 5)), labels


def test_short_em_finds_the_basin_every_k_means_start_misses():
    from sklearn.metrics import adjusted_rand_score

    X, labels = size_dominated()
    kmeans = GaussianMixture(4, covariance_type="tied", n_init=10, random_state=0).fit(X)
    emem = GaussianMixture(4, covariance_type="tied", init_params="emem", n_init=10, random_state=0).fit(X)
    assert emem.lower_bound_ * 200 > kmeans.lower_bound_ * 200 + 100  # -1514.8 against -1634.8
    assert adjusted_rand_score(labels, emem.predict(X)) > 0.9 > 0.1 > adjusted_rand_score(labels, kmeans.predict(X))
    assert emem.converged_ and emem.n_iter_ == len(emem.lower_bounds_)
    assert np.all(np.diff(emem.lower_bounds_) > -1e-9)  # one EM trajectory: the short run, then its continuation


def test_short_em_is_deterministic_and_reports_every_run():
    X, _ = size_dominated()
    seen = []
    first = GaussianMixture(4, covariance_type="tied", init_params="emem", n_init=6, random_state=3,
                            callback=seen.append).fit(X)
    again = GaussianMixture(4, covariance_type="tied", init_params="emem", n_init=6, random_state=3).fit(X)
    np.testing.assert_array_equal(first.means_, again.means_)
    # six short runs (restarts 0-5), the three best continued (6-8), then the split-and-merge moves
    restarts = sorted({info.restart for info in seen})
    assert restarts == list(range(len(restarts))) and len(restarts) > 9
    assert max(info.iteration for info in seen if info.restart < 6) <= SHORT_EM_ITERATIONS
    final = [info for info in seen if info.restart == restarts[-1]]
    assert max(info.iteration for info in final) <= first.n_iter_


def separated_clusters():
    """Three tight, well separated groups on a line: 0, 30 and 60."""
    rng = np.random.RandomState(1)
    X = np.concatenate([rng.normal(centre, 1.0, (100, 2)) for centre in ((0, 0), (30, 0), (60, 0))])
    return X, np.repeat([0, 1, 2], 100)


def stuck_fit(X, structure):
    """EM converged from two means in the first group and one between the others: a local optimum."""
    return GaussianMixture(3, covariance_type=structure, means_init=[[-1, 0], [1, 0], [45, 0]], tol=1e-8,
                           max_iter=1000).fit(X)


@pytest.mark.parametrize("structure", [s for s in STRUCTURES if get_structure(s).layout.per_component])
def test_a_split_and_merge_move_leaves_a_local_optimum(structure):
    from sklearn.metrics import adjusted_rand_score

    from gaussmix.em.loop import EMResult
    from gaussmix.em.params import MixtureParams
    from gaussmix.em.search import _split_and_merge

    X, labels = separated_clusters()
    stuck = stuck_fit(X, structure)
    assert adjusted_rand_score(labels, stuck.predict(X)) < 0.7  # two components share the first group
    settings = FitSettings(3, get_structure(structure), "emem", 1, 1e-8, 1e-6, 1000)
    data = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None)
    from gaussmix.em.fit import maximum_likelihood

    model = maximum_likelihood(data.source, settings)
    params = MixtureParams(stuck.weights_, stuck.means_, stuck.covariances_, stuck.precisions_cholesky_)
    start = EMResult(params, stuck.lower_bound_, tuple(stuck.lower_bounds_), stuck.n_iter_, True)
    moved = _split_and_merge(data.source, model, [start], settings, itertools.count(), FitObserver())
    assert moved.lower_bound > stuck.lower_bound_ + 0.5  # about 1.3 nats per row better
    fitted = GaussianMixture.from_parameters(moved.params.weights, moved.params.means, moved.params.covariances,
                                             covariance_type=structure)
    assert adjusted_rand_score(labels, fitted.predict(X)) == 1.0
    # the estimator makes the same moves after its short runs
    emem = GaussianMixture(3, covariance_type=structure, init_params="emem", n_init=2, random_state=0).fit(X)
    assert adjusted_rand_score(labels, emem.predict(X)) == 1.0


def test_a_fit_at_the_best_optimum_is_left_as_it_is():
    from gaussmix.em.fit import maximum_likelihood
    from gaussmix.em.loop import EMResult
    from gaussmix.em.params import MixtureParams
    from gaussmix.em.search import _split_and_merge

    X, _ = separated_clusters()
    best = GaussianMixture(3, means_init=[[0, 0], [30, 0], [60, 0]], tol=1e-8, max_iter=1000).fit(X)
    settings = FitSettings(3, get_structure("full"), "emem", 1, 1e-8, 1e-6, 1000)
    data = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None)
    params = MixtureParams(best.weights_, best.means_, best.covariances_, best.precisions_cholesky_)
    start = EMResult(params, best.lower_bound_, tuple(best.lower_bounds_), best.n_iter_, True)
    model = maximum_likelihood(data.source, settings)
    assert _split_and_merge(data.source, model, [start], settings, itertools.count(), FitObserver()) is start


@pytest.mark.parametrize("structure", STRUCTURES)
def test_move_starts_are_each_moves_statistics_and_m_step(structure):
    """Every move's start (one pass over the rows for them all; a shared covariance pools each move's own
    components) is the M-step of the fit's responsibilities with one component removed and another cut in two."""
    from gaussmix.em.fit import maximum_likelihood
    from gaussmix.em.splitmerge import candidate_moves, component_covariances, move_starts

    X, _ = separated_clusters()
    fit = stuck_fit(X, structure)
    settings = FitSettings(3, get_structure(structure), "emem", 1, 1e-8, 1e-6, 1000)
    source = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None).source
    model = maximum_likelihood(source, settings)
    params = as_result(fit).params
    moves = candidate_moves(params, component_covariances(source, model.structure, params, np.full(2, 1e-6)), 4)
    assert len(moves) == 4
    starts = move_starts(source, model, params, moves)
    from scipy.stats import multivariate_normal

    full = {"full": lambda c: c, "tied": lambda c: np.repeat(c[None], 3, axis=0),
            "diag": lambda c: np.stack([np.diag(v) for v in c]),
            "spherical": lambda c: np.stack([v * np.eye(2) for v in c])}[structure](fit.covariances_)
    log_prob = np.stack([np.log(fit.weights_[k]) + multivariate_normal(fit.means_[k], full[k]).logpdf(X)
                         for k in range(3)], axis=1)
    reg = model.scale.reg
    for ((drop, split), direction), start in zip(moves, starts):
        removed = log_prob.copy()
        removed[:, drop] = -np.inf
        top = removed.max(axis=1, keepdims=True)
        resp = np.exp(removed - top)
        resp /= resp.sum(axis=1, keepdims=True)
        upper = (X - params.means[split]) @ direction > 0
        resp[:, drop], resp[:, split] = resp[:, split] * upper, resp[:, split] * ~upper
        counts = resp.sum(axis=0)
        means = resp.T @ X / counts[:, None]
        scatter = np.stack([(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) for k in range(3)])
        if structure == "full":
            expected = scatter / counts[:, None, None] + np.diag(reg)
        elif structure == "tied":
            expected = scatter.sum(axis=0) / counts.sum() + np.diag(reg)
        elif structure == "diag":
            expected = np.stack([np.diag(m) for m in scatter]) / counts[:, None] + reg
        else:
            expected = np.trace(scatter, axis1=1, axis2=2) / (2 * counts) + reg.mean()
        np.testing.assert_allclose(start.weights, counts / counts.sum(), rtol=1e-9)
        np.testing.assert_allclose(start.means, means, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(start.covariances, expected, rtol=1e-7, atol=1e-9)
    assert move_starts(source, model, params, []) == []


def as_result(model, source_model=None):
    """A fitted estimator's parameters and bound as an EM result (collapsed components judged by ``source_model``)."""
    from gaussmix.em.loop import EMResult
    from gaussmix.em.params import MixtureParams

    params = MixtureParams(model.weights_, model.means_, model.covariances_, model.precisions_cholesky_)
    collapsed = () if source_model is None else source_model.collapsed(params)
    return EMResult(params, model.lower_bound_, tuple(model.lower_bounds_), model.n_iter_, True, collapsed=collapsed)


def separated_problem():
    """The separated clusters, a search's settings, data and model for them, and the best fit (full, K=3)."""
    from gaussmix.em.fit import maximum_likelihood

    X, _ = separated_clusters()
    settings = FitSettings(3, get_structure("full"), "emem", 1, 1e-8, 1e-6, 1000)
    source = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None).source
    best = as_result(GaussianMixture(3, means_init=[[0, 0], [30, 0], [60, 0]], tol=1e-8, max_iter=1000).fit(X))
    return X, settings, source, maximum_likelihood(source, settings), best


def test_split_and_merge_searches_from_every_distinct_base():
    from gaussmix.em.search import _distinct, _split_and_merge

    X, settings, source, model, best = separated_problem()
    stuck = as_result(stuck_fit(X, "full"))
    assert _distinct([stuck, best, stuck], settings.tol) == [best, stuck]  # best first, the same optimum once
    recorder = Recorder()
    found = _split_and_merge(source, model, [best, stuck], settings, itertools.count(), recorder)
    assert found is best  # the earliest of equal optima
    # the moves from the stuck fit were tried too, and reached the best optimum
    assert any(abs(r.lower_bound - best.lower_bound) < 1e-6 and r.converged for r in recorder.results)
    assert max(r.lower_bound for r in recorder.results) < best.lower_bound + 1e-6


def test_fewer_collapsed_components_rank_first():
    from gaussmix.em.loop import EMResult
    from gaussmix.em.search import _improves, _rank

    runs = [EMResult(None, bound, (bound,), 1, True, collapsed=collapsed)
            for bound, collapsed in ((5.0, (0, 1)), (3.0, (2,)), (1.0, ()))]
    assert [run.lower_bound for run in sorted(runs, key=_rank)] == [1.0, 3.0, 5.0]
    assert _improves(runs[1], runs[0], 1e-3) and not _improves(runs[0], runs[1], 1e-3)
    assert _improves(runs[2], runs[1], 1e-3) and not _improves(runs[1], runs[2], 1e-3)


@pytest.mark.parametrize("structure", [s for s in STRUCTURES if get_structure(s).layout.per_component])
def test_split_and_merge_moves_a_collapsed_component_first(structure):
    from gaussmix.em.fit import maximum_likelihood
    from gaussmix.em.search import _split_and_merge
    from gaussmix.em.splitmerge import candidate_moves, component_covariances

    X = degenerate_data()
    settings = FitSettings(3, get_structure(structure), "emem", 1, 1e-8, 1e-6, 1000)
    source = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None).source
    model = maximum_likelihood(source, settings)
    with pytest.warns(CollapsedComponentWarning):  # one component on the knot of repeated rows
        spiky = GaussianMixture(3, covariance_type=structure, means_init=[[0, 0], [4, 4], [2, -3]], tol=1e-8,
                                max_iter=1000).fit(X)
    start = as_result(spiky, model)
    assert start.collapsed == (2,)
    floor = np.maximum(model.scale.reg, 1e-6 * model.scale.scale)
    moves = candidate_moves(start.params, component_covariances(source, model.structure, start.params, floor), 8,
                            start.collapsed)
    assert moves[0][0][0] == 2 and all(split != 2 for (_, split), _ in moves)
    moved = _split_and_merge(source, model, [start], settings, itertools.count(), FitObserver())
    assert moved.collapsed == () and moved.lower_bound < start.lower_bound  # sound, though the spike scores higher


def test_candidate_moves_remove_an_overlapping_or_empty_component_and_split_a_wide_one():
    from gaussmix.em.params import MixtureParams
    from gaussmix.em.splitmerge import candidate_moves

    wide = np.diag([25.0, 1.0])
    covariances = np.stack([np.eye(2), np.eye(2), wide, np.eye(2)])
    means = np.array([[0.0, 0.0], [0.5, 0.0], [20.0, 0.0], [40.0, 0.0]])
    params = MixtureParams(np.array([0.2, 0.3, 0.4, 0.1]), means, covariances, covariances)
    moves = candidate_moves(params, covariances, 3)
    (drop, split), direction = moves[0]
    assert drop == 0 and split == 2  # the lighter of the overlapping pair; the widest, heaviest component
    np.testing.assert_allclose(np.abs(direction), [1.0, 0.0], atol=1e-12)  # across its widest direction
    assert len(moves) == 3 and len({move for move, _ in moves}) == 3
    empty = MixtureParams(np.array([0.5, 0.0, 0.5, 0.0]), means, covariances, covariances)
    assert candidate_moves(empty, covariances, 1)[0][0][0] == 1  # a component without weight goes first
    assert candidate_moves(MixtureParams(np.ones(1), means[:1], covariances[:1], covariances[:1]),
                           covariances[:1], 5) == []


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_short_em_with_moves_on_every_engine(engine):
    if importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed")
    X, _ = size_dominated()
    weights = np.linspace(0.5, 2.0, X.shape[0])
    options = dict(covariance_type="tied", init_params="emem", n_init=4, random_state=0)
    reference = GaussianMixture(4, **options).fit(X, sample_weight=weights)
    model = GaussianMixture(4, **options).fit(on_engine(X, engine, chunks=64), sample_weight=weights)
    assert model.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-8)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-6, atol=1e-8)


def test_short_em_with_sample_weights_equals_repeated_rows():
    X, _ = size_dominated()
    weights = np.where(np.arange(X.shape[0]) % 4 == 0, 2.0, 1.0)
    repeat = np.repeat(np.arange(X.shape[0]), weights.astype(int))
    options = dict(covariance_type="tied", init_params="emem", n_init=5, random_state=0)
    weighted = GaussianMixture(4, **options).fit(X, sample_weight=weights)
    repeated = GaussianMixture(4, **options).fit(X[repeat])
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-9)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-7, atol=1e-9)


def test_one_short_em_start_is_a_k_means_start_run_to_convergence(rows):
    X, _ = rows
    emem = GaussianMixture(3, init_params="emem", n_init=1, random_state=0, tol=1e-8).fit(X)
    kmeans = GaussianMixture(3, init_params="kmeans", n_init=1, random_state=0, tol=1e-8).fit(X)
    assert emem.lower_bound_ == pytest.approx(kmeans.lower_bound_, abs=1e-8)
    np.testing.assert_allclose(emem.means_, kmeans.means_, rtol=1e-6)


def ring_of_clusters():
    """Fourteen tight clusters on a circle of radius 10 (like mclust's ``wreath``)."""
    rng = np.random.RandomState(0)
    angles = np.arange(14) * 2 * np.pi / 14
    return np.vstack([rng.normal([10 * np.cos(a), 10 * np.sin(a)], 0.8, (40, 2)) for a in angles])


def with_and_without(monkeypatch, X, n_components, structure, constant, seeds=range(4)):
    """``emem`` x10 fits with random states ``seeds`` as the search is, then with ``search.<constant>`` set to 0,
    and their log-likelihoods (two lists each)."""
    import gaussmix.em.search as search

    def fits():
        return [GaussianMixture(n_components, covariance_type=structure, init_params="emem", n_init=10,
                                random_state=seed).fit(X) for seed in seeds]

    searched = fits()
    monkeypatch.setattr(search, constant, 0)
    fits_without = fits()
    return searched, [[model.score(X) * X.shape[0] for model in group] for group in (searched, fits_without)]


def test_random_swaps_reach_an_optimum_split_and_merge_misses(monkeypatch):
    X = ring_of_clusters()
    swapped, scores = with_and_without(monkeypatch, X, 2, "spherical", "RANDOM_SWAP_ROUNDS", seeds=range(6))
    # the best of a long random search (random rows x100, tol 1e-5) is -3737.585: one component on one cluster;
    # the searches of random states 0-5 end between -3747.7 and -3737.6 (two of them within 0.3 of it)
    assert max(scores[0]) > -3738.0 and min(scores[0]) > max(scores[1]) + 1.0  # without swaps: -3751 to -3758
    best = swapped[int(np.argmax(scores[0]))]
    tight = int(np.argmin(best.weights_))
    assert best.covariances_[tight] < 1.0 < 25.0 < best.covariances_[1 - tight]


@pytest.mark.parametrize("structure", STRUCTURES)
def test_a_random_swap_moves_one_component_to_a_row(structure):
    from gaussmix.em.batch import stack_fits
    from gaussmix.em.splitmerge import swapped, swapped_fits

    X = ring_of_clusters()
    model = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    layout = get_structure(structure).layout
    from gaussmix.em.params import MixtureParams

    params = MixtureParams(model.weights_, model.means_, model.covariances_, model.precisions_cholesky_)
    moved = swapped(layout, params, 1, X[7], 2, 0.25)
    np.testing.assert_array_equal(moved.means[[0, 2]], params.means[[0, 2]])
    np.testing.assert_array_equal(moved.means[1], X[7])
    weights = params.weights.copy()
    weights[1] = 1 / 3
    np.testing.assert_allclose(moved.weights, weights / weights.sum(), rtol=1e-15)
    if layout.per_component:
        np.testing.assert_allclose(moved.covariances[1], 0.25 * params.covariances[2], rtol=1e-15)
        np.testing.assert_array_equal(moved.covariances[[0, 2]], params.covariances[[0, 2]])
    else:
        np.testing.assert_array_equal(moved.covariances, params.covariances)  # a shared covariance stays
    np.testing.assert_allclose(moved.precisions_cholesky, layout.precisions_cholesky(moved.covariances), rtol=1e-12)
    np.testing.assert_array_equal(params.means, model.means_)  # the fit itself is left as it is
    # a round's swaps made at once: the same values, stacked as a batch takes them
    rng = np.random.RandomState(1)
    components, rows, owners = rng.randint(3, size=8), rng.randint(len(X), size=8), rng.randint(3, size=8)
    one_by_one = [swapped(layout, params, int(c), X[r], int(o), 0.25) for c, r, o in zip(components, rows, owners)]
    each, together = stack_fits(one_by_one, layout), swapped_fits(layout, params, components, X[rows], owners, 0.25)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert getattr(together, name).shape == getattr(each, name).shape
        np.testing.assert_array_equal(getattr(together, name), getattr(each, name))


def flat_group():
    """Three overlapping clusters in 3-d and, among them, seven rows almost on a line segment."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal([0, 0, 0], 1.0, (80, 3)), rng.normal([4, 0, 0], 1.0, (80, 3)),
                   rng.normal([0, 4, 0], 1.0, (80, 3))])
    line = np.linspace(-1, 1, 7)[:, None] * np.array([[1.0, 0.5, 0.2]]) + [0.5, 0.5, 0.0]
    return np.vstack([X, line + rng.normal(0, 0.01, (7, 3))])


def test_tight_group_swaps_reach_a_flat_group_random_starts_miss(monkeypatch):
    """A component on seven rows spanning almost no volume: tight-group swaps put one there, random ones miss it."""
    X = flat_group()
    grouped, scores = with_and_without(monkeypatch, X, 4, "full", "TIGHT_SWAP_TRIALS")
    # random rows x300 (tol 1e-6) reach -1256.59 at best; with a component of the line's own the fit reaches
    # -1245.75 (all seven rows) or -1244.83 (six of them, the seventh left to the clusters)
    assert min(scores[0]) > -1246.0 and max(scores[1]) < -1250.0
    for model in grouped:
        line = int(np.argmin(model.weights_))
        owned = model.predict_proba(X)[:, line] > 0.5
        assert not owned[:-7].any() and owned[-7:].sum() >= 6
        assert model.weights_[line] * X.shape[0] == pytest.approx(owned.sum(), abs=0.1)
        volumes = np.linalg.slogdet(model.covariances_)[1]
        assert volumes[line] < np.delete(volumes, line).min() - 10.0


def test_tight_groups_are_each_rows_nearest_rows_with_their_weighted_moments():
    from gaussmix.em.splitmerge import TIGHT_GROUP_EXTRA, tight_groups

    rng = np.random.RandomState(3)
    X = rng.normal(size=(60, 3)) * [1.0, 10.0, 0.1]
    X[5] = X[9]  # a repeated row: each of the two is first in its own group
    weights = rng.uniform(0.5, 2.0, 60)
    scale = X.var(axis=0)
    floor = 1e-6 * scale
    groups = tight_groups(X, weights, scale, floor)
    assert [g.members.shape for g in groups] == [(60, 3 + 1 + extra) for extra in TIGHT_GROUP_EXTRA]
    distances = (((X[:, None, :] - X[None, :, :]) ** 2) / scale).sum(axis=2)
    for group in groups:
        size = group.members.shape[1]
        np.testing.assert_array_equal(group.members[:, 0], np.arange(60))
        for i in range(60):
            others = np.sort(np.delete(distances[i], i))
            np.testing.assert_allclose(np.sort(distances[i, group.members[i, 1:]]), others[:size - 1])
            w, rows = weights[group.members[i]], X[group.members[i]]
            mean = w @ rows / w.sum()
            covariance = (w[:, None] * (rows - mean)).T @ (rows - mean) / w.sum() + np.diag(floor)
            np.testing.assert_allclose(group.means[i], mean, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(group.covariances[i], covariance, rtol=1e-10, atol=1e-14)
            share = w.sum() / weights.sum()
            assert group.share[i] == pytest.approx(share, rel=1e-12)
            own = w.sum() * (np.log(share) - 0.5 * (3 * np.log(2 * np.pi) + np.linalg.slogdet(covariance)[1] + 3))
            assert group.own[i] == pytest.approx(own, rel=1e-10)
            factor = group.precisions_cholesky[i]
            np.testing.assert_allclose(factor @ factor.T @ covariance, np.eye(3), atol=1e-8)
    assert tight_groups(X[:9], weights[:9], scale, floor) == []  # too few rows for a group of any size


def test_ranked_scores_come_in_the_order_of_a_full_stable_sort_of_their_settled_values():
    from gaussmix.em.splitmerge import _RANKED_FIRST, _ranked, _settled

    rng = np.random.RandomState(0)
    for size in (10, _RANKED_FIRST, 3 * _RANKED_FIRST):
        scores = rng.choice(np.linspace(-5.0, 5.0, 41), size) * (1 + rng.choice([0.0, 1e-12], size))  # near-ties
        scores[rng.choice(size, 3, replace=False)] = [-np.inf, np.nan, np.inf]
        expected = np.argsort(-_settled(scores), kind="stable")
        np.testing.assert_array_equal(list(_ranked(scores)), expected)
        first = list(itertools.islice(_ranked(scores), 5))
        np.testing.assert_array_equal(first, expected[:5])


def test_group_moves_score_a_groups_gain_less_the_moved_components_loss():
    from scipy.special import logsumexp

    from gaussmix._namespace import NUMPY
    from gaussmix.em.kernels import weighted_log_prob
    from gaussmix.em.params import MixtureParams, kernel_terms
    from gaussmix.em.splitmerge import GroupMoves, group_moves, grouped, tight_groups

    X = flat_group()
    model = GaussianMixture(4, covariance_type="full", random_state=0).fit(X)  # no component on the line
    layout = get_structure("full").layout
    params = MixtureParams(model.weights_, model.means_, model.covariances_, model.precisions_cholesky_)
    weights = np.ones(X.shape[0])
    groups = tight_groups(X, weights, X.var(axis=0), 1e-6 * X.var(axis=0))
    terms = kernel_terms(get_structure("full"), params, np.zeros(3))
    log_prob = weighted_log_prob(NUMPY, layout, X, terms, np.float64)
    tried = set()
    moves = group_moves(groups, log_prob, 4, tried)
    assert len(moves) == 4 and tried == set(moves)
    size, row, component = moves[0]
    for i, first in enumerate(moves):  # no move starts in another's group
        assert all(first[1] not in groups[other[0]].members[other[1]] for other in moves[:i])

    def score(move):  # directly: the group's own fit less what moving the component away loses
        size, row, component = move
        group = groups[size]
        density = logsumexp(log_prob, axis=1)
        without = logsumexp(np.delete(log_prob, component, axis=1), axis=1)
        return group.own[row] - density[group.members[row]].sum() - (density - without).sum()

    scores = [score(move) for move in moves]
    assert scores == sorted(scores, reverse=True)
    everything = [(s, r, k) for s in range(len(groups)) for r in range(X.shape[0]) for k in range(4)]
    assert scores[0] == pytest.approx(max(score(move) for move in everything), rel=1e-9)
    again = group_moves(groups, log_prob, 4, tried)
    assert not set(again) & set(moves) and len(tried) == 8  # tried moves are not proposed again
    # the rounds of one fit take their moves from one ranking, as if each round ranked them afresh
    ranked, tried_once, tried_each = GroupMoves(groups, log_prob), set(), set()
    for count in (4, 4, 3, 4, 60, 200, 4):
        assert ranked.take(count, tried_once) == group_moves(groups, log_prob, count, tried_each)
    assert tried_once == tried_each and len(tried_once) > 150
    assert ranked.take(6, set()) == group_moves(groups, log_prob, 6, set())  # another set: from the first again
    assert len(ranked._ranked) > 256  # beyond the first part of the ranking (splitmerge._RANKED_FIRST)

    moved = grouped(params, groups, moves[0])
    group = groups[size]
    np.testing.assert_array_equal(moved.means[component], group.means[row])
    np.testing.assert_array_equal(moved.covariances[component], group.covariances[row])
    expected = params.weights.copy()
    expected[component] = group.share[row]
    np.testing.assert_allclose(moved.weights, expected / expected.sum(), rtol=1e-15)
    others = [k for k in range(4) if k != component]
    np.testing.assert_array_equal(moved.means[others], params.means[others])
    np.testing.assert_allclose(moved.precisions_cholesky, layout.precisions_cholesky(moved.covariances), rtol=1e-10)


def test_random_swaps_leave_the_best_optimum_as_it_is():
    from gaussmix.em.observers import IterationCount
    from gaussmix.em.search import (
        RANDOM_SWAP_PATIENCE,
        RANDOM_SWAP_TRIALS,
        _random_swaps,
    )

    X, settings, source, model, best = separated_problem()
    recorder = Recorder()
    counted = IterationCount(recorder)
    assert _random_swaps(source, model, best, settings, np.random.RandomState(0), itertools.count(), counted) is best
    assert len(recorder.results) == RANDOM_SWAP_PATIENCE * RANDOM_SWAP_TRIALS  # the rounds tried before giving up
    stuck = as_result(stuck_fit(X, "full"))
    found = _random_swaps(source, model, stuck, settings, np.random.RandomState(0), itertools.count(),
                          IterationCount(Recorder()))
    assert found.lower_bound == pytest.approx(best.lower_bound, abs=1e-6)


def test_a_search_depends_on_row_values_not_positions():
    X = ring_of_clusters()  # where the swaps' course decides the fit
    order = np.random.RandomState(1).permutation(X.shape[0])
    options = dict(covariance_type="spherical", init_params="emem", n_init=10, random_state=0)
    fit = GaussianMixture(8, **options).fit(X)  # with swaps to rows drawn by position, the two differ
    shuffled = GaussianMixture(8, **options).fit(X[order])
    assert shuffled.lower_bound_ == pytest.approx(fit.lower_bound_, rel=1e-9)
    np.testing.assert_array_equal(shuffled.predict(X[order]), fit.predict(X)[order])


def test_swaps_are_a_short_check_where_the_continued_runs_agree(monkeypatch):
    """Where every continued run ends at the same optimum the swaps get their short budget; elsewhere the long."""
    import gaussmix.em.search as search

    calls = []

    def recording(*args):
        calls.append(args[-2:])  # the budget and the patience
        return original(*args)

    original = search._random_swaps
    monkeypatch.setattr(search, "_random_swaps", recording)
    monkeypatch.setattr(search, "AGREED_WORK", 0.0)
    monkeypatch.setattr(search, "SEARCHES", 2)  # five short runs a search: here each one's continued runs agree
    X, _ = separated_clusters()
    model = GaussianMixture(3, init_params="emem", n_init=10, random_state=1).fit(X)
    assert calls == [(0.0, search.AGREED_PATIENCE)] * search.n_searches(10)  # each search's continued runs agree
    best = GaussianMixture(3, means_init=[[0, 0], [30, 0], [60, 0]], tol=1e-8, max_iter=1000).fit(X)
    assert model.score(X) == pytest.approx(best.score(X), abs=1e-3)  # and it is the best optimum
    calls.clear()
    X, _ = size_dominated()
    GaussianMixture(4, covariance_type="tied", init_params="emem", n_init=10, random_state=0).fit(X)
    assert len(calls) == search.n_searches(10)
    assert all(patience == search.RANDOM_SWAP_PATIENCE and budget > 0 for budget, patience in calls)  # they differ


def test_the_short_runs_are_dealt_to_independent_searches(monkeypatch):
    """With SEARCHES = 2, short runs 0, 2, 4, ... make one search and 1, 3, 5, ... the other; the better wins."""
    import gaussmix.em.search as search

    monkeypatch.setattr(search, "SEARCHES", 2)
    monkeypatch.setattr(search, "SHORT_EM_CONTINUED", 3)
    assert [search.n_searches(n) for n in (1, 3, 5, 6, 10)] == [1, 1, 1, 2, 2]  # at least 3 short runs a search
    assert [search.n_continued(n) for n in (3, 5, 10)] == [3, 3, 6]
    dealt, results = [], []

    def recording(source, model, runs, *args):
        dealt.append([run.lower_bounds for run in runs])
        results.append(original(source, model, runs, *args))
        return results[-1]

    original = search._one_search
    monkeypatch.setattr(search, "_one_search", recording)
    X, _ = size_dominated()
    seen = []
    fit = GaussianMixture(4, covariance_type="tied", init_params="emem", n_init=10, random_state=0,
                          callback=seen.append).fit(X)
    short = [tuple(info.lower_bound for info in seen if info.restart == r and info.iteration > 0) for r in range(10)]
    assert dealt == [short[0::2], short[1::2]]
    assert fit.lower_bound_ == pytest.approx(max(result.lower_bound for result in results), abs=fit.tol)
    restarts = sorted({info.restart for info in seen})
    assert restarts == list(range(len(restarts)))  # every run numbered once, in both searches


def test_the_best_swap_trial_is_the_best_by_rank_judged_only_as_far_as_needed():
    """``_best`` gives what ranking every trial would, judging collapses from the highest bound down."""
    import dataclasses
    import types

    import gaussmix.em.search as search
    from gaussmix.em.loop import EMResult

    rng = np.random.RandomState(0)
    for _ in range(300):
        n = rng.randint(1, 9)
        bounds = rng.choice([-1.0, -2.0, -3.0], size=n)  # equal bounds, to check that the earliest wins
        collapsed = [tuple(range(rng.choice([0, 0, 1, 2]))) for _ in range(n)]
        trials = [EMResult(params=i, lower_bound=float(b), lower_bounds=(float(b),), n_iter=1, converged=True)
                  for i, b in enumerate(bounds)]
        judged = []

        class Model:  # judged one by one, as with a shared covariance
            structure = types.SimpleNamespace(layout=types.SimpleNamespace(per_component=False))

            def collapsed(self, params):
                judged.append(params)
                return collapsed[params]

        best = search._best(trials, Model())
        expected = min((dataclasses.replace(t, collapsed=collapsed[t.params]) for t in trials), key=search._rank)
        assert (best.params, best.collapsed) == (expected.params, expected.collapsed)
        clean = [i for i in sorted(range(n), key=lambda i: -bounds[i]) if not collapsed[i]]
        # judged down to the first trial without a collapse, and the trials of its bound that could tie it
        assert len(judged) == (n if not clean else int(np.sum(bounds >= bounds[clean[0]])))
    assert search._best([], Model()) is None


def test_bounds_that_differ_by_rounding_alone_are_ties_that_the_earlier_run_wins():
    """Which of two runs at one optimum wins must not depend on the last bits of their bounds (another engine,
    BLAS or thread count changes them): within search.BOUND_ROUNDING the earlier run wins, beyond it the higher."""
    import types

    from gaussmix.em import search
    from gaussmix.em.loop import EMResult

    def run(i, bound, collapsed=()):
        return EMResult(params=i, lower_bound=bound, lower_bounds=(bound,), n_iter=1, converged=True,
                        collapsed=collapsed)

    model = types.SimpleNamespace(structure=types.SimpleNamespace(layout=types.SimpleNamespace(per_component=False)),
                                  collapsed=lambda params: ())
    bound = -5.253430046840225
    rounding = bound * (1 - 3e-15)  # a few units in the last place higher
    first, second = run(0, bound), run(1, rounding)
    assert not search.better(second, first) and not search.better(first, second)
    assert search._best([first, second], model).params == 0
    assert search._ranked([second, first]) == [0, 1] and search._ranked([first, second]) == [0, 1]
    assert not search._improves(second, first, 0.0)
    higher = run(1, bound + 1e-6)
    assert search.better(higher, first) and search._improves(higher, first, 0.0)
    assert search._best([first, higher], model).params == 1 and search._ranked([first, higher]) == [1, 0]
    assert search.better(run(1, bound - 1.0), run(0, bound, collapsed=(2,)))  # fewer collapses first


@pytest.mark.parametrize("structure", STRUCTURES)
def test_collapsed_components_of_several_runs_judged_together_as_one_by_one(structure):
    from gaussmix.em.fit import maximum_likelihood
    from gaussmix.em.loop import EMResult
    from gaussmix.em.params import MixtureParams
    from gaussmix.em.search import _best, _collapsed_together

    rng = np.random.RandomState(5)
    X = rng.normal(size=(120, 3)) * [1.0, 20.0, 0.01]
    settings = FitSettings(4, get_structure(structure), "emem", 1, 1e-8, 1e-6, 1000)
    model = maximum_likelihood(get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None).source,
                               settings)
    layout = model.structure.layout
    runs = []
    for i in range(6):
        fit = GaussianMixture(4, covariance_type=structure, random_state=i, tol=1e-2).fit(X)
        covariances, weights = fit.covariances_.copy(), fit.weights_.copy()
        onto_a_row = {"full": np.diag(model.scale.reg), "diag": model.scale.reg,
                      "spherical": np.mean(model.scale.reg)}.get(structure)
        if structure != "tied" and i % 2 == 0:  # a component onto one row: only the regularisation is left
            covariances[i % 4] = onto_a_row
            if i == 4:  # a dropped component does not count
                covariances[1], weights[1] = onto_a_row, 0.0
        params = MixtureParams(weights, fit.means_, covariances, layout.precisions_cholesky(covariances))
        runs.append(EMResult(params, -float(i), (), 5, False))
    one_by_one = [model.collapsed(run.params) for run in runs]
    if structure == "tied":
        assert _collapsed_together(model, runs) is None
    else:
        assert _collapsed_together(model, runs) == one_by_one
        assert one_by_one == [(0,), (), (2,), (), (0,), ()]
    best = _best(runs, model)  # highest bound first, judged until one has no collapsed component
    assert best.params is (runs[1] if structure != "tied" else runs[0]).params
    assert best.collapsed == ()
