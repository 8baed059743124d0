"""The EM loop drives a model: a new model is one class, and every engine's source runs it unchanged."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import STRUCTURES, on_engine

from gaussmix import ConvergenceWarning, GaussianMixture
from gaussmix.covariance import get_structure
from gaussmix.em.fit import FitSettings, fit_mixture, maximum_likelihood
from gaussmix.em.loop import run_em
from gaussmix.em.models import MaximumLikelihood
from gaussmix.em.params import MixtureParams
from gaussmix.engines import get_engine


@dataclass(frozen=True)
class EqualProportions(MaximumLikelihood):
    """Maximum likelihood with every weight fixed at 1/K (mclust's equalPro): only the update changes."""

    def update(self, stats, previous):
        params, dropped = super().update(stats, previous)
        k = params.n_components
        return MixtureParams(np.full(k, 1.0 / k), params.means, params.covariances,
                             params.precisions_cholesky), dropped


@pytest.fixture(scope="module")
def rows():
    rng = np.random.RandomState(3)
    return np.vstack([rng.normal(0, 1, (400, 2)), rng.normal([4, 0], 0.5, (100, 2))])


def settings(structure, **overrides):
    values = dict(n_components=2, structure=get_structure(structure), init="kmeans", n_init=1, tol=1e-8,
                  reg_covar=1e-6, max_iter=200)
    return FitSettings(**{**values, **overrides})


@pytest.mark.parametrize("structure", STRUCTURES)
def test_a_model_with_its_own_update_is_all_a_new_estimate_needs(rows, structure):
    source = get_engine("numpy").prepare(rows, None, device=None).source
    scale = maximum_likelihood(source, settings(structure)).scale
    fixed = fit_mixture(source, settings(structure), np.random.RandomState(0),
                        model=EqualProportions(get_structure(structure), scale))
    free = fit_mixture(source, settings(structure), np.random.RandomState(0))
    np.testing.assert_array_equal(fixed.params.weights, [0.5, 0.5])
    assert abs(free.params.weights[0] - 0.8) < 0.05  # the data are 4:1; only the model differs
    assert np.all(np.diff(fixed.lower_bounds) >= -1e-12)  # still EM: the bound never decreases
    assert fixed.lower_bound < free.lower_bound


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_every_engines_source_runs_a_model_unchanged(rows, engine):
    if importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed")
    with pytest.warns(ConvergenceWarning):
        start = GaussianMixture(2, max_iter=1, random_state=0).fit(rows)._params_from_attributes()
    results = []
    for name in ("numpy", engine):
        source = get_engine(name).prepare(on_engine(rows, name), None, device="cpu" if name == "torch" else None).source
        model = EqualProportions(get_structure("full"), maximum_likelihood(source, settings("full")).scale)
        results.append(run_em(source, model, start, tol=1e-8, max_iter=50))
    np.testing.assert_allclose(results[1].params.means, results[0].params.means, rtol=1e-8)
    assert results[1].n_iter == results[0].n_iter


def test_the_regularisation_is_the_models_state(rows):
    """The data scale is computed once, before EM, and the M-step never reads the rows again."""
    source = get_engine("numpy").prepare(rows, None, device=None).source
    model = maximum_likelihood(source, settings("diag", reg_covar=1e-2))
    variances = rows.var(axis=0)
    np.testing.assert_allclose(model.scale.reg, 1e-2 * variances, rtol=1e-12)
    stats = source.estep(model.structure, model.kernel_terms(
        GaussianMixture(2, covariance_type="diag", random_state=0).fit(rows)._params_from_attributes(), source.shift))
    params, _ = model.update(stats, None)
    bare, _ = MaximumLikelihood(model.structure, type(model.scale).from_moments(
        source.shift, variances, 0.0, np.float64)).update(stats, None)
    np.testing.assert_allclose(params.covariances - bare.covariances, np.broadcast_to(1e-2 * variances, (2, 2)),
                               rtol=1e-9)
