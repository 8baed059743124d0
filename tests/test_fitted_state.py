"""Every exported estimator has the same fitted attributes, however it was obtained.

A mixture is fitted on each engine, built from parameters, taken as a
marginal, chosen by a selector and loaded from a file; the other
estimators are fitted and loaded. Each way goes through the one writer of
the fitted state, so each must leave the same attributes, of the same
kinds.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import ENGINES, on_engine

import gaussmix
from gaussmix import (
    GaussianMixture,
    GaussianMixtureClassifier,
    GaussianMixtureOutlierDetector,
    GaussianMixtureSelector,
)
from gaussmix._state import MIXTURE_ATTRIBUTES


def fitted_attributes(estimator) -> dict:
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("_")}


def available(engine: str) -> bool:
    return engine == "numpy" or importlib.util.find_spec(engine) is not None


@pytest.fixture(scope="module")
def rows():
    rng = np.random.RandomState(0)
    return np.vstack([rng.normal(0, 1, (120, 3)), rng.normal(5, 1, (100, 3))])


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def mixtures_every_way(rows, tmp_path):
    """(how, fitted GaussianMixture) for every way a fitted mixture comes about."""
    ways = []
    for engine in ENGINES:
        if available(engine):
            ways.append((f"fit on {engine}", quietly(GaussianMixture(2, random_state=0).fit, on_engine(rows, engine))))
    reference = ways[0][1]
    ways.append(("fit in float32", quietly(GaussianMixture(2, random_state=0).fit, rows.astype(np.float32))))
    ways.append(("from_parameters", GaussianMixture.from_parameters(reference.weights_, reference.means_,
                                                                    reference.covariances_)))
    ways.append(("marginal", reference.marginal([0, 2])))
    reference.save(tmp_path / "mixture.npz")
    ways.append(("load", gaussmix.load(tmp_path / "mixture.npz")))
    selector = quietly(GaussianMixtureSelector([1, 2], covariance_types=["full"], n_init=1, random_state=0).fit, rows)
    ways.append(("chosen by a selector", selector.best_estimator_))
    return ways


def test_a_mixture_has_the_same_attributes_every_way(rows, tmp_path):
    expected = {*MIXTURE_ATTRIBUTES, "n_features_in_"}
    for how, model in mixtures_every_way(rows, tmp_path):
        attributes = fitted_attributes(model)
        assert set(attributes) == expected, how
        dtype = model.means_.dtype
        for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
            assert isinstance(attributes[name], np.ndarray) and attributes[name].dtype == dtype, (how, name)
        assert isinstance(model.converged_, bool) and isinstance(model.n_iter_, int), how
        assert isinstance(model.lower_bound_, float) and isinstance(model.lower_bounds_, list), how
        assert model.collapsed_components_.dtype.kind == "i" and model.collapsed_components_.ndim == 1, how
        assert model.n_features_in_ == model.means_.shape[1], how
        np.testing.assert_allclose(model.covariances_ @ model.precisions_,
                                   np.broadcast_to(np.eye(model.n_features_in_), model.covariances_.shape),
                                   atol=1e-4 if dtype == np.float32 else 1e-9, err_msg=how)


def test_feature_names_are_kept_every_way(rows, tmp_path):
    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    fitted = quietly(GaussianMixture(2, random_state=0).fit, frame)
    fitted.save(tmp_path / "named.npz")
    ways = {
        "fit": fitted,
        "from_parameters": GaussianMixture.from_parameters(fitted.weights_, fitted.means_, fitted.covariances_,
                                                           feature_names=["a", "b", "c"]),
        "load": gaussmix.load(tmp_path / "named.npz"),
    }
    for how, model in ways.items():
        assert list(model.feature_names_in_) == ["a", "b", "c"], how
        assert set(fitted_attributes(model)) == {*MIXTURE_ATTRIBUTES, "n_features_in_", "feature_names_in_"}, how
    assert list(fitted.marginal(["c", "a"]).feature_names_in_) == ["c", "a"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_selector_has_the_same_attributes_on_every_engine_and_when_loaded(rows, tmp_path, engine):
    if not available(engine):
        pytest.skip(f"{engine} is not installed")
    selector = GaussianMixtureSelector([1, 2], covariance_types=["full", "diag"], n_init=1, random_state=0)
    quietly(selector.fit, on_engine(rows, engine))
    selector.save(tmp_path / "selector.npz")
    loaded = gaussmix.load(tmp_path / "selector.npz")
    expected = {"best_estimator_", "best_params_", "best_index_", "results_", "cluster_sizes_", "n_features_in_"}
    np.testing.assert_array_equal(loaded.cluster_sizes_, selector.cluster_sizes_)
    assert selector.cluster_sizes_.sum() == len(rows)
    for model in (selector, loaded):
        assert set(fitted_attributes(model)) == expected
        assert isinstance(model.best_estimator_, GaussianMixture)
        assert set(fitted_attributes(model.best_estimator_)) == {*MIXTURE_ATTRIBUTES, "n_features_in_"}
    assert loaded.best_params_ == selector.best_params_


def test_the_outlier_detector_and_the_classifier_fitted_and_loaded(rows, tmp_path):
    labels = (rows[:, 0] > 2.5).astype(int)
    estimators = {
        "outlier detector": (GaussianMixtureOutlierDetector(GaussianMixture(2, random_state=0), min_weight=0.1),
                             {"offset_", "mixture_", "rare_components_", "n_features_in_"}, (rows,)),
        "MclustDA": (GaussianMixtureClassifier(GaussianMixture(1)), {"models_", "classes_", "class_prior_",
                                                                     "n_features_in_"}, (rows, labels)),
        "EDDA": (GaussianMixtureClassifier(model_type="EDDA"), {"models_", "classes_", "class_prior_",
                                                                "n_features_in_", "structure_", "edda_bic_"},
                 (rows, labels)),
    }
    for how, (estimator, expected, data) in estimators.items():
        quietly(estimator.fit, *data)
        estimator.save(tmp_path / "model.npz")
        loaded = gaussmix.load(tmp_path / "model.npz")
        for model in (estimator, loaded):
            assert set(fitted_attributes(model)) == expected, how
        np.testing.assert_array_equal(loaded.predict(rows), estimator.predict(rows), err_msg=how)


def test_refitting_removes_what_a_previous_fit_left(rows):
    """EDDA's choice is not left behind by a later MclustDA fit; a failed fit leaves the previous state."""
    labels = (rows[:, 0] > 2.5).astype(int)
    classifier = quietly(GaussianMixtureClassifier(model_type="EDDA").fit, rows, labels)
    assert hasattr(classifier, "structure_")
    quietly(classifier.set_params(model_type="MclustDA", mixture=GaussianMixture(1)).fit, rows, labels)
    assert not hasattr(classifier, "structure_") and not hasattr(classifier, "edda_bic_")
    mixture = GaussianMixture(2, random_state=0).fit(rows)
    before = fitted_attributes(mixture)
    with pytest.raises(ValueError):
        mixture.fit(rows[:, :2][:1])
    assert fitted_attributes(mixture).keys() == before.keys()
    np.testing.assert_array_equal(mixture.means_, before["means_"])


def test_only_gaussmix_estimators_are_model_file_estimators(rows, tmp_path):
    """Templates and users' subclasses are not: a file cannot name them, and saving one says so."""
    from gaussmix._persistence import ESTIMATORS

    gaussmix.load  # noqa: B018 - loading defines every estimator
    for name in ("GaussianMixture", "BayesianGaussianMixture", "GaussianMixtureSelector",
                 "GaussianMixtureOutlierDetector", "GaussianMixtureClassifier"):
        getattr(gaussmix, name)
    assert set(ESTIMATORS) == {"GaussianMixture", "BayesianGaussianMixture", "GaussianMixtureSelector",
                               "GaussianMixtureOutlierDetector", "GaussianMixtureClassifier"}

    class GaussianMixture(gaussmix.GaussianMixture):  # a user's class of the same name
        pass

    mine = quietly(GaussianMixture(2, random_state=0).fit, rows)
    with pytest.raises(TypeError, match="cannot save a GaussianMixture"):
        mine.save(tmp_path / "mine.npz")
    quietly(gaussmix.GaussianMixture(2, random_state=0).fit, rows).save(tmp_path / "theirs.npz")  # still saves
    assert type(gaussmix.load(tmp_path / "theirs.npz")) is gaussmix.GaussianMixture
