"""Degenerate data: collapsed components must not crash a fit; errors say what to do."""

import warnings

import numpy as np
import pytest

from gaussmix import (
    CollapsedComponentWarning,
    ConstantFeatureWarning,
    ConvergenceWarning,
    EmptyComponentWarning,
    FitError,
    GaussianMixture,
)
from gaussmix.covariance import get_structure


def is_positive_definite(gm):
    d = gm.means_.shape[1]
    full = get_structure(gm.covariance_type).layout.full_covariances(gm.covariances_, gm.n_components, d)
    return all(np.min(np.linalg.eigvalsh(c)) > 0 for c in full)


def test_duplicate_rows(structure):
    rng = np.random.RandomState(0)
    X = np.vstack([np.tile([1.0, 2.0], (150, 1)), rng.normal(5, 1, (100, 2)), rng.normal(-5, 1, (50, 2))])
    if structure == "tied":  # the shared covariance also covers the spread-out clusters
        gm = GaussianMixture(3, covariance_type=structure, random_state=0, max_iter=300).fit(X)
        assert gm.collapsed_components_.size == 0
    else:
        with pytest.warns(CollapsedComponentWarning, match="component . collapsed"):
            gm = GaussianMixture(3, covariance_type=structure, random_state=0, max_iter=300).fit(X)
        spike = np.argmin(np.linalg.norm(gm.means_ - [1.0, 2.0], axis=1))
        assert list(gm.collapsed_components_) == [spike]
    assert is_positive_definite(gm)
    assert np.all(np.isfinite(gm.score_samples(X)))
    if structure != "tied":  # a component sits on the 150 identical rows
        spike = np.argmin(np.linalg.norm(gm.means_ - [1.0, 2.0], axis=1))
        assert np.array_equal(np.flatnonzero(gm.predict(X) == spike), np.arange(150))


def test_constant_feature(structure):
    rng = np.random.RandomState(1)
    X = np.column_stack([np.r_[rng.normal(0, 1, 100), rng.normal(6, 1, 100)], np.full(200, 3.5)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = GaussianMixture(2, covariance_type=structure, random_state=0).fit(X)
    # The constant feature is reported as such (it inflates the likelihood), and is no collapse.
    assert [w.category for w in caught] == [ConstantFeatureWarning]
    assert "feature 1 is constant in the data" in str(caught[0].message)
    assert gm.collapsed_components_.size == 0
    assert is_positive_definite(gm)
    assert sorted(np.bincount(gm.predict(X))) == [100, 100]
    assert np.all(np.isfinite(gm.score_samples(X)))


def test_fewer_rows_than_features(structure):
    rng = np.random.RandomState(2)
    X = np.vstack([rng.normal(0, 1, (6, 10)), rng.normal(8, 1, (6, 10))])
    if structure == "full":  # 6 rows span at most 5 of 10 directions (the tied pool spans them all)
        with pytest.warns(CollapsedComponentWarning):
            gm = GaussianMixture(2, covariance_type=structure, random_state=0).fit(X)
    else:
        gm = GaussianMixture(2, covariance_type=structure, random_state=0).fit(X)
    assert is_positive_definite(gm)
    assert sorted(np.bincount(gm.predict(X))) == [6, 6]


@pytest.mark.parametrize("case", ["duplicates", "constant feature"])
def test_reg_covar_zero_on_singular_data_says_what_to_change(structure, case):
    rng = np.random.RandomState(3)
    if case == "duplicates":
        X = np.vstack([np.tile([1.0, 2.0], (50, 1)), rng.normal(5, 1, (50, 2))])
    else:
        X = np.column_stack([np.r_[rng.normal(0, 1, 50), rng.normal(6, 1, 50)], np.zeros(100)])
    if (structure, case) in {("tied", "duplicates"), ("spherical", "constant feature")}:
        # A pooled covariance, or a variance averaged over features, stays regular: the fit works.
        gm = GaussianMixture(2, covariance_type=structure, reg_covar=0.0, random_state=0).fit(X)
        assert is_positive_definite(gm)
        return
    with pytest.raises(ValueError, match=r"singular.*reg_covar > 0"):
        GaussianMixture(2, covariance_type=structure, reg_covar=0.0, random_state=0).fit(X)


def test_fit_error_is_a_value_error():
    assert issubclass(FitError, ValueError)


def check_dropped(gm, X, means, structure):
    assert gm.weights_[2] == 0.0
    assert gm.weights_.sum() == pytest.approx(1.0)
    assert is_positive_definite(gm)
    assert 2 not in gm.predict(X)
    assert np.all(gm.predict_proba(X)[:, 2] == 0.0)
    assert 2 not in gm.sample(500)[1]
    assert np.all(np.isfinite(gm.score_samples(X)))
    # The dropped component counts for nothing: the fit equals a 2-component fit.
    two = GaussianMixture(2, covariance_type=structure, means_init=means[:2], random_state=0).fit(X)
    np.testing.assert_allclose(gm.means_[:2], two.means_, rtol=1e-6)
    np.testing.assert_allclose(gm.weights_[:2], two.weights_, rtol=1e-6)


FAR_MEANS = np.array([[0.0, 0.0], [8.0, 8.0], [1e4, 1e4]])  # the third is far from every row


def separated(seed=4):
    rng = np.random.RandomState(seed)
    return np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])


def test_component_without_rows_at_initialisation_is_dropped(structure):
    X = separated()
    with pytest.warns(EmptyComponentWarning, match=r"component 2 at initialisation"):
        gm = GaussianMixture(3, covariance_type=structure, means_init=FAR_MEANS, random_state=0).fit(X)
    check_dropped(gm, X, FAR_MEANS, structure)


def test_component_that_loses_its_rows_during_em_is_dropped(structure):
    X = separated()
    shape = get_structure(structure).covariance_shape(3, 2)
    precisions = {"full": np.stack([np.eye(2)] * 3), "tied": np.eye(2)}.get(structure, np.ones(shape))
    gm = GaussianMixture(
        3,
        covariance_type=structure,
        weights_init=[0.4, 0.4, 0.2],
        means_init=FAR_MEANS,
        precisions_init=precisions,
        random_state=0,
    )
    with pytest.warns(EmptyComponentWarning, match=r"component 2 at iteration 1"):
        gm.fit(X)
    check_dropped(gm, X, FAR_MEANS, structure)


def test_fewer_distinct_rows_than_components():
    X = np.repeat([[0.0, 0.0], [5.0, 5.0]], 20, axis=0)
    with pytest.warns(EmptyComponentWarning, match=r"at initialisation"), pytest.warns(CollapsedComponentWarning):
        gm = GaussianMixture(3, random_state=0).fit(X)
    assert np.count_nonzero(gm.weights_) == 2
    assert sorted(np.bincount(gm.predict(X), minlength=3)) == [0, 20, 20]


def test_non_finite_log_likelihood_is_an_error():
    rng = np.random.RandomState(5)
    X = rng.normal(0, 1, (50, 2))
    gm = GaussianMixture(
        1, covariance_type="spherical", weights_init=[1.0], means_init=[[1e3, 1e3]], precisions_init=[1e305]
    )
    with pytest.raises(FitError, match="log-likelihood is not finite at EM iteration 1"):
        gm.fit(X)


def test_values_too_large_to_square():
    X = np.array([[1e200, 1.0], [2e200, 2.0], [3e200, 0.0]])
    with pytest.raises(FitError, match="too large to square"):
        GaussianMixture(1).fit(X)


def test_long_fit_with_a_collapsing_component_finishes():
    """A component collapsing onto one point mid-fit does not stop EM (reg_covar > 0)."""
    rng = np.random.RandomState(6)
    X = np.vstack([rng.normal(0, 1, (200, 3)), [[30.0, 30.0, 30.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(3, max_iter=500, tol=1e-8, random_state=0, init_params="random").fit(X)
    assert np.all(np.isfinite(gm.lower_bounds_))
    assert is_positive_definite(gm)


def test_discrete_feature_spike_is_reported():
    """Rows sharing one value of a feature (a discrete reading) can hold up a density spike."""
    rng = np.random.RandomState(7)
    spread = np.column_stack([rng.normal(0, 2, 300), rng.normal(0, 2, 300)])
    shared = np.column_stack([rng.normal(0, 2, 15), np.full(15, 1.0)])  # 15 rows with y exactly 1.0
    X = np.vstack([spread, shared])
    start = np.array([[0.0, 0.0], [0.0, 1.0]])
    with pytest.warns(CollapsedComponentWarning, match="component 1 collapsed"):
        spiky = GaussianMixture(2, covariance_type="diag", means_init=start, weights_init=[0.95, 0.05],
                                precisions_init=[[0.25, 0.25], [0.25, 1e6]], max_iter=500).fit(X)
    assert list(spiky.collapsed_components_) == [1]
    floor = 1e-6 * X[:, 1].var()
    # Next to nothing but the regularisation (to rounding: the spread itself may come out a hair below 0).
    assert floor * (1 - 1e-6) <= spiky.covariances_[1, 1] <= 2 * floor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sound = GaussianMixture(1, covariance_type="diag").fit(X)
    assert sound.collapsed_components_.size == 0


def test_faithful_tied_model_is_sound():
    from gaussmix.datasets import load_faithful

    X = load_faithful().data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sound = GaussianMixture(3, covariance_type="tied", n_init=10, random_state=0).fit(X)
    assert sound.collapsed_components_.size == 0


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
@pytest.mark.parametrize("jitter", [0.0, 1e-15])
@pytest.mark.parametrize("structure", ["full", "diag", "spherical"])  # a pooled covariance does not collapse
def test_singularity_is_decided_relative_to_the_data_scale(structure, scale, jitter):
    """A collapsed variance of rounding size (not an exact zero) is singular at every scale."""
    rng = np.random.RandomState(3)
    spike = np.tile([1.0, 2.0], (50, 1)) * (1.0 + jitter * rng.standard_normal((50, 2)))
    X = np.vstack([spike, rng.normal(5, 1, (50, 2))]) * scale
    with pytest.raises(FitError, match=r"ill-defined empirical covariance.*singular.*reg_covar > 0"):
        GaussianMixture(2, covariance_type=structure, reg_covar=0.0, random_state=0).fit(X)


def test_singular_in_the_last_iteration_keeps_the_parameters_that_entered_it():
    """scikit-learn issue 18216: a one-iteration fit whose M-step collapses does not raise."""
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(30, 3))
    start = dict(weights_init=[0.1, 0.9], means_init=[X[0], X[1:].mean(axis=0)], precisions_init=[1e6, 10.0])
    gm = GaussianMixture(2, covariance_type="spherical", reg_covar=0.0, max_iter=1, **start)
    with pytest.warns(ConvergenceWarning, match="the fitted parameters are those that entered it.*singular"):
        gm.fit(X)
    assert not gm.converged_ and gm.n_iter_ == 1 and len(gm.lower_bounds_) == 1
    np.testing.assert_allclose(gm.covariances_, [1e-6, 0.1])  # the starting parameters
    assert np.isfinite(gm.score(X))
    with pytest.raises(FitError, match="singular at EM iteration 1"):  # EM cannot go on from it
        GaussianMixture(2, covariance_type="spherical", reg_covar=0.0, max_iter=2, **start).fit(X)


@pytest.mark.parametrize("compiled", [True, False])  # without numba: up to 16 column by column, above by halves
@pytest.mark.parametrize("n_features", [1, 3, 20, 70])  # and with numba, above 64
def test_matrices_without_a_cholesky_factor_are_found_in_a_stack_as_one_by_one(n_features, compiled, monkeypatch):
    from gaussmix import _compiled as compiled_module
    from gaussmix.covariance._layout import without_cholesky

    monkeypatch.setattr(compiled_module, "ENABLED", compiled)

    rng = np.random.RandomState(0)
    d = n_features
    for size in (0, 1, 2, 7, 16, 40):
        A = rng.normal(size=(size, d, d))
        matrices = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(d)
        bad = rng.rand(size) < 0.3
        for k in np.flatnonzero(bad):
            if rng.rand() < 0.5:
                matrices[k] -= (50.0 * d) * np.eye(d)  # negative definite
            else:
                w, v = np.linalg.eigh(matrices[k])
                w[rng.randint(d)] = -0.05  # one negative direction among positive ones
                matrices[k] = (v * w) @ v.T
        expected = []
        for matrix in matrices:
            try:
                np.linalg.cholesky(matrix)
                expected.append(False)
            except np.linalg.LinAlgError:
                expected.append(True)
        np.testing.assert_array_equal(without_cholesky(matrices), np.array(expected, bool))
        np.testing.assert_array_equal(without_cholesky(matrices), bad)
