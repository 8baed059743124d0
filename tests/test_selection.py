"""GaussianMixtureSelector: the grid, the criteria, failures, parallelism, the table."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import gaussmix
from gaussmix import GaussianMixture, GaussianMixtureSelector, InvalidParameterError
from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES as STRUCTURES
from gaussmix.datasets import load_faithful


@pytest.fixture(scope="module")
def faithful_search():
    X = load_faithful().data
    return X, GaussianMixtureSelector(n_init=10, tol=1e-6, max_iter=1000, random_state=0,
                                      covariance_types=STRUCTURES).fit(X)


def test_faithful_bic_selects_mclusts_model(faithful_search):
    X, selector = faithful_search
    assert selector.best_params_ == {"n_components": 3, "covariance_type": "tied"}
    table = selector.results_.sort_values("bic")
    best = table.iloc[0]
    assert best.bic == pytest.approx(2314.316, abs=0.05)  # mclust EEE,3: BIC -2314.316 in mclust's sign
    assert best.log_likelihood == pytest.approx(-1126.326, abs=0.02) and best.n_parameters == 11
    runners_up = [(r.covariance_type, r.n_components) for r in table.iloc[1:3].itertuples()]
    assert runners_up == [("tied", 4), ("full", 2)]  # mclust's next best: EEE,4 then VVV,2
    assert table.iloc[2].bic == pytest.approx(2322.192, abs=0.01)
    assert len(selector.results_) == 9 * 4
    # Spiky fits on this data's integer waiting times are rejected, as mclust reports NA for them.
    failed = selector.results_[selector.results_.error.notna()]
    assert failed.error.str.startswith("degenerate fit: component").all()
    np.testing.assert_array_equal(selector.predict(X), selector.best_estimator_.predict(X))


def test_table_values_match_the_models(faithful_search):
    X, selector = faithful_search
    fitted = selector.results_[selector.results_.error.isna()]
    for row in fitted.sample(6, random_state=0).itertuples():
        gm = GaussianMixture(row.n_components, covariance_type=row.covariance_type, init_params="emem", n_init=10,
                             tol=1e-6, max_iter=1000, random_state=0).fit(X)  # the selector's default start
        assert row.bic == pytest.approx(gm.bic(X), rel=1e-10)
        assert row.aic == pytest.approx(gm.aic(X), rel=1e-10)
        entropy = -np.sum(np.log(gm.predict_proba(X).max(axis=1)))
        assert row.icl == pytest.approx(gm.bic(X) + 2 * entropy, rel=1e-10)
        assert row.converged == gm.converged_ and row.n_iter == gm.n_iter_ and row.fit_time > 0


def test_icl_prefers_separated_clusters(blobs):
    X, _ = blobs
    selector = GaussianMixtureSelector(range(1, 6), criterion="icl", random_state=0, covariance_types=STRUCTURES).fit(X)
    assert selector.best_params_["n_components"] == 3
    table = selector.results_
    assert np.all(table.icl >= table.bic - 1e-9)  # ICL adds a non-negative entropy term


def test_cross_validated_likelihood(blobs):
    X, _ = blobs
    selector = GaussianMixtureSelector(range(1, 6), covariance_types=["full", "spherical"], criterion="cv", cv=4,
                                       random_state=0)
    selector.fit(X)
    table = selector.results_
    best = table.loc[table.cv_log_likelihood.idxmax()]
    assert selector.best_params_ == {"n_components": int(best.n_components), "covariance_type": best.covariance_type}
    assert selector.best_params_["n_components"] == 3
    assert table.cv_log_likelihood.notna().all() and (table.cv_std >= 0).all()
    # The held-out score of one candidate, by hand.
    from sklearn.model_selection import KFold

    scores = []
    for train, test in KFold(4, shuffle=True, random_state=0).split(X):
        gm = GaussianMixture(2, covariance_type="full", init_params="emem", n_init=3, random_state=0).fit(X[train])
        scores.append(gm.score(X[test]))
    row = table[(table.n_components == 2) & (table.covariance_type == "full")].iloc[0]
    assert row.cv_log_likelihood == pytest.approx(np.mean(scores), rel=1e-12)


def test_failed_candidates_are_recorded_not_raised():
    X = np.random.RandomState(0).normal(size=(6, 2))
    selector = GaussianMixtureSelector([1, 2, 10], covariance_types=["diag"], random_state=0).fit(X)
    failed = selector.results_[selector.results_.n_components == 10].iloc[0]
    assert "n_samples >= n_components" in failed.error and math.isnan(failed.bic)
    assert selector.best_params_["n_components"] in (1, 2)
    # A grid in which no count has enough rows is refused before any fit.
    with pytest.raises(ValueError, match=r"every candidate has more components \(at least 10\) than X has rows "
                                         r"with positive weight \(6\)"):
        GaussianMixtureSelector([10, 20], covariance_types=["full"]).fit(X)


def test_reproducible_whatever_the_parallelism(blobs):
    X, _ = blobs
    params = dict(n_components=range(1, 5), covariance_types=["full", "diag"], random_state=3)
    serial = GaussianMixtureSelector(**params).fit(X).results_.drop(columns="fit_time")
    parallel = GaussianMixtureSelector(**params, n_jobs=2).fit(X).results_.drop(columns="fit_time")
    again = GaussianMixtureSelector(**params).fit(X).results_.drop(columns="fit_time")
    # The same fits in the same order: equal up to rounding (worker processes may run other BLAS threads).
    for other in (parallel, again):
        pd.testing.assert_frame_equal(other, serial, rtol=1e-12, atol=0)
    # A smaller grid gives the same numbers for the candidates it shares.
    small = GaussianMixtureSelector([3], covariance_types=["diag"], random_state=3).fit(X).results_
    shared = serial[(serial.n_components == 3) & (serial.covariance_type == "diag")]
    assert small.bic.iloc[0] == pytest.approx(shared.bic.iloc[0], rel=1e-12)


def test_progress_lines(blobs, capsys):
    GaussianMixtureSelector([1, 2], covariance_types=["full"], verbose=1, random_state=0).fit(blobs[0])
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[1/2] full, 1 components: BIC") and err[1].startswith("[2/2] full, 2 components")


def test_records_without_pandas(blobs, monkeypatch):
    monkeypatch.setattr("gaussmix._tables.pandas_available", lambda: False)
    selector = GaussianMixtureSelector([1, 2], covariance_types=["full"], random_state=0).fit(blobs[0])
    assert isinstance(selector.results_, list) and selector.results_[1]["n_components"] == 2


def test_in_a_pipeline_and_select_function(blobs):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = blobs
    selector = GaussianMixtureSelector(range(1, 5), random_state=0, covariance_types=STRUCTURES)
    pipe = make_pipeline(StandardScaler(), selector).fit(X)
    assert pipe[-1].best_params_["n_components"] == 3
    assert np.isfinite(pipe.score(X))
    chosen = gaussmix.select(X, range(1, 5), covariance_types=["full"], random_state=0)
    assert chosen.best_params_ == {"n_components": 3, "covariance_type": "full"}
    Xs, labels = chosen.sample(10)
    assert Xs.shape == (10, 3) and chosen.bic(X) == pytest.approx(chosen.best_estimator_.bic(X))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(criterion="bick"), "criterion must be one of"),
        (dict(n_components=[0, 1]), "n_components must be an integer >= 1, got 0"),
        (dict(n_components=[]), "at least one component count"),
        (dict(n_components="abc"), "n_components must be"),
        (dict(covariance_types=["full", "VVX"]), "covariance_type must be one of"),
    ],
)
def test_bad_parameters(blobs, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixtureSelector(**params).fit(blobs[0])


def test_warns_when_the_best_count_is_the_largest_tried(blobs):
    from gaussmix import SelectionBoundaryWarning

    X, _ = blobs  # three clusters
    with pytest.warns(SelectionBoundaryWarning, match="has 2 components, the largest number tried"):
        GaussianMixtureSelector([1, 2], covariance_types=["full"], random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SelectionBoundaryWarning)
        GaussianMixtureSelector(range(1, 6), covariance_types=["full"], random_state=0).fit(X)
        GaussianMixtureSelector([3], covariance_types=["full"], random_state=0).fit(X)  # one count: no edge


def test_a_constant_feature_is_reported_once(blobs):
    from gaussmix import ConstantFeatureWarning

    X = np.column_stack([blobs[0], np.full(len(blobs[0]), 2.0)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GaussianMixtureSelector(range(1, 5), random_state=0, covariance_types=STRUCTURES).fit(X)
    constant = [w for w in caught if issubclass(w.category, ConstantFeatureWarning)]
    assert len(constant) == 1 and "feature 3 is constant" in str(constant[0].message)


def test_an_absurd_grid_fails_fast():
    X = np.random.RandomState(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="more than 10,000 component counts"):
        GaussianMixtureSelector(range(1, 10**9)).fit(X)
    with pytest.raises(ValueError, match="more than 10,000 component counts"):
        GaussianMixtureSelector(iter(range(1, 10**12))).fit(X)


@pytest.mark.filterwarnings("ignore::gaussmix.SelectionBoundaryWarning")
def test_the_selector_prepares_its_data_once(blobs, monkeypatch):
    """One data source (and one computation of the feature moments) serves every candidate."""
    import gaussmix.engines._chunked as chunked

    X = blobs[0]
    made, moments = [], []
    original_init, original_moments = chunked.ChunkedData.__init__, chunked.ChunkedData._compute_feature_moments

    def counting_init(self, data, *args, **kwargs):
        original_init(self, data, *args, **kwargs)
        if self.n_samples == X.shape[0]:
            made.append(self)

    def counting_moments(self):
        moments.append(self)
        return original_moments(self)

    monkeypatch.setattr(chunked.ChunkedData, "__init__", counting_init)
    monkeypatch.setattr(chunked.ChunkedData, "_compute_feature_moments", counting_moments)
    selector = GaussianMixtureSelector([1, 2, 3], covariance_types=["full", "diag"], n_init=2, random_state=0)
    selector.fit(X)
    assert len(made) == 1 and moments == made
    assert len(selector.results_) == 6


@pytest.mark.filterwarnings("ignore::gaussmix.SelectionBoundaryWarning")
def test_candidates_are_cloned_from_the_estimator_template(blobs):
    class Recording(GaussianMixture):
        pass

    seen = []
    template = Recording(callback=seen.append, covariance_type="spherical", n_components=7)
    selector = GaussianMixtureSelector([2, 3], covariance_types=["tied"], estimator=template, n_init=1,
                                       random_state=0).fit(blobs[0])
    best = selector.best_estimator_
    assert type(best) is Recording and best.covariance_type == "tied" and best.n_components in (2, 3)
    assert best.callback is template.callback and {info.covariance_type for info in seen} == {"tied"}
    assert template.n_components == 7 and not hasattr(template, "weights_")  # the template itself is untouched
    with pytest.raises(InvalidParameterError, match="estimator must be a gaussmix mixture"):
        GaussianMixtureSelector([2], estimator="GaussianMixture").fit(blobs[0])


@pytest.mark.filterwarnings("ignore::gaussmix.SelectionBoundaryWarning")
def test_on_dask_the_selector_computes_the_moments_once(blobs, monkeypatch):
    """Two passes for the moments in all, not two per candidate; criteria are one pass per candidate."""
    da = pytest.importorskip("dask.array")
    import gaussmix.engines._dask as dask_engine

    passes = []
    original = dask_engine.DaskData._reduce

    def counting(self, function, *args, **kwargs):
        passes.append(function.__name__)
        return original(self, function, *args, **kwargs)

    monkeypatch.setattr(dask_engine.DaskData, "_reduce", counting)
    X = da.from_array(blobs[0], chunks=(100, 3))
    selector = GaussianMixtureSelector([1, 2, 3], covariance_types=["full", "diag"], n_init=1, random_state=0).fit(X)
    assert passes.count("_block_sums") == 2
    # BIC, AIC and ICL of each candidate in one pass, and one for the chosen model's clustering table
    assert passes.count("_block_weighted_sum") == 7
    assert len(selector.results_) == 6
