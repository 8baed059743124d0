"""Several EM runs as one batch: each run follows the trajectory it has on its own."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS, STRUCTURES, on_engine

from gaussmix import GaussianMixture
from gaussmix._errors import FitError
from gaussmix._namespace import NUMPY
from gaussmix.covariance import get_structure
from gaussmix.em import batch
from gaussmix.em.batch import batchable, run_em_batch
from gaussmix.em.fit import FitSettings, maximum_likelihood
from gaussmix.em.init import initial_params
from gaussmix.em.loop import EMResult, run_em
from gaussmix.em.observers import FitObserver
from gaussmix.em.params import MixtureParams
from gaussmix.engines import get_engine


def problem(structure, X, weights=None, n_components=4, reg_covar=1e-6, engine="numpy"):
    settings = FitSettings(n_components, get_structure(structure), "random_from_data", 1, 1e-5, reg_covar, 1000)
    source = get_engine(engine).fit_data(GaussianMixture(), on_engine(X, engine), weights, device=None).source
    return source, maximum_likelihood(source, settings)


def random_starts(source, model, count, n_components=4, seed=0):
    rng = np.random.RandomState(seed)
    return [initial_params(source, model, n_components=n_components, method="random_from_data", rng=rng)[0]
            for _ in range(count)]


def alone(source, model, params, restart, **options):
    events = []
    try:
        return run_em(source, model, params, restart=restart, callback=events.append, **options), events
    except FitError as exc:
        return exc, events


def assert_same_run(one, other):
    assert type(one) is type(other)
    if isinstance(one, FitError):
        assert str(one) == str(other)
        return
    assert (one.n_iter, one.converged, one.dropped, one.stopped) == (other.n_iter, other.converged, other.dropped,
                                                                      other.stopped)
    np.testing.assert_allclose(one.lower_bounds, other.lower_bounds, rtol=1e-10, atol=1e-12)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(getattr(one.params, name), getattr(other.params, name), rtol=1e-8, atol=1e-12)


def clusters(seed=0):
    rng = np.random.RandomState(seed)
    return np.vstack([rng.normal(centre, scale, (60, 3)) for centre, scale in ((0, 1.0), (4, 0.5), (8, 2.0))])


@pytest.mark.parametrize("structure", MODELS)  # mclust's models whose components share a part too
@pytest.mark.parametrize("weighted", [False, True])
def test_each_run_of_a_batch_is_the_run_on_its_own(structure, weighted):
    X = clusters()
    weights = np.random.RandomState(1).uniform(0.2, 3.0, X.shape[0]) if weighted else None
    source, model = problem(structure, X, weights)
    starts = random_starts(source, model, 6)
    limits = [20, 20, 3, 50, 1, 20]
    bounds = [-np.inf, -np.inf, -np.inf, -5.0, -np.inf, -np.inf]
    outcomes, events = run_em_batch(source, model, starts, tol=1e-4, max_iter=limits, lower_bounds=bounds,
                                    restarts=range(10, 16), record=True)
    for i, (params, outcome, recorded) in enumerate(zip(starts, outcomes, events)):
        expected, seen = alone(source, model, params, 10 + i, tol=1e-4, max_iter=limits[i], lower_bound=bounds[i])
        assert_same_run(outcome, expected)
        assert [(e.restart, e.iteration) for e in recorded] == [(e.restart, e.iteration) for e in seen]
        np.testing.assert_allclose([e.lower_bound for e in recorded], [e.lower_bound for e in seen], rtol=1e-10)
    assert any(o.converged for o in outcomes) and any(not o.converged for o in outcomes)  # runs left at different times


def test_a_run_that_fails_leaves_the_others_as_they_are():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(30, 3))
    source, model = problem("spherical", X, n_components=2, reg_covar=0.0)
    layout = get_structure("spherical").layout

    def params(weights, means, precisions):
        covariances = 1.0 / np.asarray(precisions, float)
        return MixtureParams(np.asarray(weights, float), np.asarray(means, float), covariances,
                             layout.precisions_cholesky(covariances))

    collapsing = params([0.1, 0.9], [X[0], X[1:].mean(axis=0)], [1e6, 10.0])  # singular after iteration 1
    far = params([0.5, 0.5], [[1e3, 1e3, 1e3], [2e3, 2e3, 2e3]], [1e305, 1e305])  # no finite likelihood
    sound = random_starts(source, model, 2, n_components=2)
    starts = [sound[0], collapsing, far, sound[1]]
    for max_iter in (1, 2, 30):
        outcomes, _ = run_em_batch(source, model, starts, tol=1e-6, max_iter=max_iter, restarts=range(4))
        for i, (start, outcome) in enumerate(zip(starts, outcomes)):
            assert_same_run(outcome, alone(source, model, start, i, tol=1e-6, max_iter=max_iter)[0])
        assert isinstance(outcomes[2], FitError) and "not finite at EM iteration 1" in str(outcomes[2])
        if max_iter == 1:
            assert outcomes[1].stopped and "singular" in outcomes[1].stopped  # kept the parameters entering it
        else:
            assert isinstance(outcomes[1], FitError) and "singular at EM iteration 1" in str(outcomes[1])


def test_a_fit_whose_shared_covariance_fails_leaves_the_others_as_they_are():
    rng = np.random.RandomState(0)
    t = rng.uniform(size=40)
    X = np.column_stack([t, np.repeat([0.0, 1e3], 20)])  # two parallel lines: pooled within them, no spread in y
    source, model = problem("tied", X, n_components=2, reg_covar=0.0)
    layout = get_structure("tied").layout
    covariance = np.diag([0.1, 1e4])
    split = MixtureParams(np.array([0.5, 0.5]), np.array([[0.5, 0.0], [0.5, 1e3]]), covariance,
                          layout.precisions_cholesky(covariance))  # each line its own component: singular
    together = MixtureParams(np.array([0.5, 0.5]), np.array([[0.2, 500.0], [0.8, 500.0]]), covariance,
                             layout.precisions_cholesky(covariance))
    starts = [together, split, together]
    for max_iter in (1, 2, 30):
        outcomes, _ = run_em_batch(source, model, starts, tol=1e-6, max_iter=max_iter, restarts=range(3))
        for i, (start, outcome) in enumerate(zip(starts, outcomes)):
            assert_same_run(outcome, alone(source, model, start, i, tol=1e-6, max_iter=max_iter)[0])
        assert isinstance(outcomes[0], EMResult) and not outcomes[0].stopped
        if max_iter == 1:
            assert outcomes[1].stopped and "singular" in outcomes[1].stopped
        else:
            assert isinstance(outcomes[1], FitError) and "singular at EM iteration 1" in str(outcomes[1])


def test_what_is_batched():
    X = clusters()
    source, model = problem("full", X)
    assert batchable(source, model, 10, 4) and not batchable(source, model, 1, 4)
    assert not batchable(source, model, 10, batch.BATCH_ELEMENTS // (10 * X.shape[0]) + 1)  # too large
    tied_source, tied_model = problem("tied", X)
    assert batchable(tied_source, tied_model, 10, 4)  # each fit's shared covariance repeated per component


class Events(FitObserver):
    def __init__(self):
        self.events = []

    def restart_started(self, restart, n_restarts):
        self.events.append(("started", restart))

    def iteration(self, info):
        self.events.append(("iteration", info.restart, info.iteration, round(info.lower_bound, 6)))

    def restart_finished(self, restart, result):
        self.events.append(("finished", restart, round(result.lower_bound, 6)))


@pytest.mark.parametrize("structure", STRUCTURES)
def test_short_em_makes_the_same_search_with_and_without_batches(structure, monkeypatch):
    from test_starts import size_dominated

    from gaussmix.em.fit import fit_mixture

    X, _ = size_dominated()
    settings = FitSettings(4, get_structure(structure), "emem", 10, 1e-5, 1e-6, 1000)
    results = []
    for elements in (batch.BATCH_ELEMENTS, 0):
        monkeypatch.setattr(batch, "BATCH_ELEMENTS", elements)
        source = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None).source
        events = Events()
        result = fit_mixture(source, settings, np.random.RandomState(0), observer=events)
        results.append((result, events.events))
    (batched, batched_events), (single, single_events) = results
    assert_same_run(batched, single)
    assert batched_events == single_events  # the same runs, reported in the same order


@pytest.mark.parametrize("structure", STRUCTURES)
def test_a_search_nobody_listens_to_is_the_same_search(structure, monkeypatch):
    """Batches whose events nobody uses report only how many iterations they made, and the search (whose
    later rounds are budgeted by those iterations) is the same."""
    from test_starts import size_dominated

    from gaussmix.em import search
    from gaussmix.em.fit import fit_mixture

    for work, patience in (("RANDOM_SWAP_WORK", "RANDOM_SWAP_PATIENCE"), ("AGREED_WORK", "AGREED_PATIENCE")):
        monkeypatch.setattr(search, work, 0.05)  # the budget, not patience, ends the swaps
        monkeypatch.setattr(search, patience, 100)

    X, _ = size_dominated()
    settings = FitSettings(4, get_structure(structure), "emem", 10, 1e-5, 1e-6, 1000)
    class Runs(FitObserver):  # not listening to iterations
        def __init__(self):
            self.finished = []

        def restart_finished(self, restart, result):
            self.finished.append((restart, round(result.lower_bound, 6)))

    listening, deaf = Events(), Runs()
    assert listening.listens and not deaf.listens
    results = []
    for observer in (listening, deaf):
        source = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None).source
        results.append(fit_mixture(source, settings, np.random.RandomState(0), observer=observer))
    assert_same_run(*results)
    assert deaf.finished == [event[1:] for event in listening.events if event[0] == "finished"]
    outcomes, counts = run_em_batch(source, maximum_likelihood(source, settings),
                                    random_starts(source, maximum_likelihood(source, settings), 3),
                                    tol=1e-5, max_iter=[2, 30, 0], restarts=range(3))
    assert counts == [outcome.n_iter for outcome in outcomes]


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_batches_run_on_every_engine(engine):
    pytest.importorskip("torch" if engine == "torch" else "dask")
    X = clusters()
    results = []
    for name in ("numpy", engine):
        source, model = problem("full", X, engine=name)
        starts = random_starts(source, model, 5)
        results.append(run_em_batch(source, model, starts, tol=1e-5, max_iter=40, restarts=range(5))[0])
    for one, other in zip(*results):
        assert one.n_iter == other.n_iter
        np.testing.assert_allclose(one.lower_bounds, other.lower_bounds, rtol=1e-9)


def test_shared_layouts_pool_the_second_moments_of_their_expanded_form():
    from gaussmix.covariance.layouts import (
        DIAGONAL,
        FULL,
        SCALAR,
        SHARED,
        SHARED_DIAGONAL,
    )

    assert SHARED.expanded is FULL and SHARED_DIAGONAL.expanded is DIAGONAL
    assert FULL.expanded is None and DIAGONAL.expanded is None and SCALAR.expanded is None
    rng = np.random.RandomState(0)
    X, resp = rng.normal(size=(3, 40)), rng.dirichlet(np.ones(4), size=40).T  # (d, m) rows, (K, m)
    for shared in (SHARED, SHARED_DIAGONAL):
        expanded = shared.expanded
        per_component = expanded.second_moment(NUMPY, X, expanded.row_terms(NUMPY, X, 4), resp)
        direct = shared.second_moment(NUMPY, X, shared.row_terms(NUMPY, X, 4), resp)
        np.testing.assert_allclose(shared.pooled_second(per_component), direct, rtol=1e-12)
        stacked = np.stack([per_component, 2 * per_component])  # leading axes are kept
        np.testing.assert_allclose(shared.pooled_second(stacked)[1], 2 * direct, rtol=1e-12)
