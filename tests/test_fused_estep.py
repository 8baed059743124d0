"""The E-step of several mixtures at once, the compiled loop that does a small chunk's E-step in one call, and the
compiled EM iteration of small data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ENGINES, STRUCTURES, on_engine

import gaussmix._compiled as compiled_module
from gaussmix._compiled import compiled
from gaussmix import GaussianMixture
from gaussmix._namespace import NUMPY
from gaussmix.covariance import get_structure
from gaussmix.covariance.layouts import SharedDiagonalLayout
from gaussmix.em import _estep_loop, kernels
from gaussmix.em import batch as em_batch
from gaussmix.em import loop as em_loop
from gaussmix.em.fit import FitSettings, maximum_likelihood
from gaussmix.em.kernels import (
    EarlyStop,
    compiled_em_iteration,
    compiled_em_runs,
    estep_statistics,
    fused_estep_statistics,
    rows_estep,
)
from gaussmix.em.params import KernelTerms, MixtureParams, kernel_terms
from gaussmix.engines import _chunked as chunked
from gaussmix.engines import get_engine

pytest.importorskip("numba")
PER_COMPONENT = [s for s in STRUCTURES if get_structure(s).layout.per_component]
#: What the compiled EM runs take: scikit-learn's four structures, and mclust's ten others (a variance, volume,
#: shape or orientation shared by a mixture's components)
COMPILED = (*STRUCTURES, "EII", "EEI", "EVI", "VEI", "EEV", "EVV", "VEV", "VEE", "EVE", "VVE")


def shared(structure):
    """Whether the structure stores one covariance per mixture (tied, EEI)."""
    return not get_structure(structure).layout.per_component


@pytest.fixture(autouse=True)
def compiled_loops(monkeypatch):
    monkeypatch.setattr(compiled_module, "ENABLED", True)


def random_params(structure, n_components, n_features, rng, centre=5.0):
    """Components spread about ``centre`` with random covariances of the structure's shape."""
    layout = get_structure(structure).layout
    factors = rng.normal(size=(n_components, n_features, n_features))
    full = factors @ np.swapaxes(factors, 1, 2) + np.eye(n_features)
    diag = rng.uniform(0.5, 2.0, (n_components, n_features))
    spherical = rng.uniform(0.5, 2.0, n_components)  # the same draws for every structure
    covariances = {
        "full": full,
        "tied": full[0],
        "diag": diag,
        "spherical": spherical,
        "EII": np.full(n_components, spherical[0]),
        "EEI": diag[0],
        **dict.fromkeys(("EVI", "VEI"), diag),
        **dict.fromkeys(("EEV", "EVV", "VEV", "VEE", "EVE", "VVE"), full),
    }[structure]
    weights = rng.dirichlet(np.ones(n_components))
    means = centre + 3.0 * rng.normal(size=(n_components, n_features))
    return MixtureParams(weights, means, covariances, layout.precisions_cholesky(covariances))


def stacked(params_list):
    return MixtureParams(*(np.concatenate([getattr(p, name) for p in params_list])
                           for name in ("weights", "means", "covariances", "precisions_cholesky")))


def numpy_kernel(layout, X, weights, terms, groups=1, dtype=np.float64, compiled=False):
    """The kernels' E-step statistics: NumPy alone, or (``compiled``) with its elementwise passes as one loop."""
    enabled = compiled_module.ENABLED
    compiled_module.ENABLED = compiled
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # as the engines call it: far rows overflow
            Xt = NUMPY.centre_transposed(X, terms.shift, dtype)
            return estep_statistics(NUMPY, layout, Xt, weights, terms.on(NUMPY, dtype), dtype,
                                    groups).to_numpy(NUMPY)
    finally:
        compiled_module.ENABLED = enabled


def count_loops(monkeypatch, name):
    """Patch the engine's ``name`` (a compiled E-step's factory) to record, in the list returned, whether each
    call gave a loop."""
    made = getattr(chunked, name)
    calls = []

    def counted(*args):
        estep = made(*args)
        calls.append(estep is not None)
        return estep

    monkeypatch.setattr(chunked, name, counted)
    return calls


def assert_same_statistics(one, other, rtol=1e-10):
    for name in ("counts", "first", "second", "log_likelihood", "total_weight"):
        a, b = np.asarray(getattr(one, name), float), np.asarray(getattr(other, name), float)
        assert a.shape == b.shape, name
        scale = max(1.0, float(np.nanmax(np.abs(a), initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("n_components", [1, 2, 5])  # full: whitened rows for K <= 2, packed products above
@pytest.mark.parametrize("weighted", [False, True])
def test_the_compiled_loop_gives_the_kernels_statistics(structure, n_components, weighted):
    rng = np.random.RandomState(n_components)
    X = 5.0 + 3.0 * rng.normal(size=(150, 4))
    weights = rng.uniform(0.0, 3.0, 150) if weighted else None
    groups = 3 if structure in PER_COMPONENT else 1
    params = stacked([random_params(structure, n_components, 4, rng) for _ in range(groups)])
    if structure == "tied":
        params = MixtureParams(params.weights, params.means, params.covariances[:4],
                               params.precisions_cholesky[:4])
    structure_ = get_structure(structure)
    terms = kernel_terms(structure_, params, X.mean(axis=0))
    fused = fused_estep_statistics(structure_.layout, X, weights, terms, groups)
    assert fused is not None
    assert_same_statistics(fused, numpy_kernel(structure_.layout, X, weights, terms, groups))


@pytest.mark.parametrize("structure", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("numpy_exponential", [False, True])
def test_the_compiled_normalisation_gives_the_kernels_statistics(structure, dtype, weighted, numpy_exponential,
                                                                 monkeypatch):
    """Any chunk's E-step takes its elementwise passes (log-sum-exp, responsibilities, weights) as one compiled
    loop, or (float64, where NumPy's exponential is the faster) as two compiled passes about NumPy's
    exponential: the same statistics as NumPy's passes, for one mixture, several at once and with a noise
    component."""
    monkeypatch.setattr(kernels, "NUMPY_EXPONENTIAL", numpy_exponential)
    asked = []
    monkeypatch.setattr(kernels, "compiled", lambda function: asked.append(function.__name__) or compiled(function))
    rng = np.random.RandomState(4)
    X = 5.0 + 3.0 * rng.normal(size=(300, 3))
    weights = rng.uniform(0.0, 3.0, 300) if weighted else None
    structure_ = get_structure(structure)
    groups = 3 if structure_.layout.per_component else 1
    params = stacked([random_params(structure, 4, 3, rng) for _ in range(groups)])
    terms = kernel_terms(structure_, params, X.mean(axis=0))
    alone = kernel_terms(structure_, random_params(structure, 4, 3, rng), X.mean(axis=0))  # one mixture
    noisy = KernelTerms(alone.log_norm, alone.arrays, alone.shift, noise=np.log(0.1 / 1e4))
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    far = X.copy()
    far[11] = 1e200 if dtype == np.float64 else 1e25  # its distances overflow: no component explains it
    for case, n_groups in [(terms, groups), (noisy, 1)]:
        for rows in (X, far):
            expected = numpy_kernel(structure_.layout, rows, weights, case, n_groups, dtype)
            got = numpy_kernel(structure_.layout, rows, weights, case, n_groups, dtype, compiled=True)
            assert np.all(np.isnan(got.log_likelihood) == np.isnan(expected.log_likelihood))
            # The noise owns the far row, unless its quadratic terms overflow against coefficients of both signs
            # (a full covariance's products): inf - inf, which NumPy's passes give as well.
            lost = rows is far and (case.noise is None or "packed" in case.arrays)
            assert np.all(np.isnan(got.log_likelihood)) == lost
            if rows is X:
                assert_same_statistics(got, expected, rtol)
            else:  # where the likelihood is lost, NumPy's statistics may be NaN too
                np.testing.assert_allclose(got.first[np.isfinite(expected.first)],
                                           expected.first[np.isfinite(expected.first)], rtol=1e-4)
    split = numpy_exponential and dtype == np.float64
    assert ("shift_by_best" in asked and "scale_by_totals" in asked) == split


def test_the_compiled_loop_pools_a_shared_diagonal():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    layout = SharedDiagonalLayout()
    variances = rng.uniform(0.5, 2.0, 3)
    params = MixtureParams(np.array([0.3, 0.7]), rng.normal(size=(2, 3)), variances, 1.0 / np.sqrt(variances))
    log_norm = np.log(params.weights) + np.sum(np.log(params.precisions_cholesky)) - 1.5 * np.log(2 * np.pi)
    terms = KernelTerms(log_norm, layout.kernel_arrays(params, X.mean(axis=0)), X.mean(axis=0))
    fused = fused_estep_statistics(layout, X, None, terms)
    assert fused.second.shape == (3,)
    assert_same_statistics(fused, numpy_kernel(layout, X, None, terms))


@pytest.mark.parametrize("structure", PER_COMPONENT)
def test_a_mixture_that_cannot_explain_a_row_has_no_likelihood_and_the_others_keep_theirs(structure):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 2))
    X[7] = [1e5, -1e5]
    weights = np.ones(60)
    layout = get_structure(structure).layout
    wide = random_params(structure, 2, 2, rng, centre=0.0)
    covariances = wide.covariances * 1e-300  # row 7's distance overflows: its density is 0
    narrow = MixtureParams(wide.weights, wide.means, covariances, layout.precisions_cholesky(covariances))
    terms = kernel_terms(get_structure(structure), stacked([narrow, wide]), np.zeros(2))
    kept = slice(2, 4)  # the wide mixture's components

    def assert_same_for_the_wide_mixture(fused, expected):
        for name in ("counts", "first", "second"):
            np.testing.assert_allclose(getattr(fused, name)[kept], getattr(expected, name)[kept], rtol=1e-10)
        assert fused.log_likelihood[1] == pytest.approx(expected.log_likelihood[1], rel=1e-12)

    for w in (None, weights):
        fused, expected = fused_estep_statistics(layout, X, w, terms, 2), numpy_kernel(layout, X, w, terms, 2)
        assert np.isnan(fused.log_likelihood[0]) and np.isfinite(fused.log_likelihood[1])
        assert_same_for_the_wide_mixture(fused, expected)
    weights[7] = 0.0  # a row of weight 0 counts for nothing, even at density 0
    fused = fused_estep_statistics(layout, X, weights, terms, 2)
    assert np.all(np.isfinite(fused.log_likelihood))
    assert fused.counts[:2].sum() == pytest.approx(59.0) and fused.counts[kept].sum() == pytest.approx(59.0)
    assert_same_for_the_wide_mixture(fused, numpy_kernel(layout, X, weights, terms, 2))


def test_the_compiled_loop_is_only_for_float64_rows_and_with_numba(monkeypatch):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    structure = get_structure("diag")
    terms = kernel_terms(structure, random_params("diag", 2, 3, rng), X.mean(axis=0))
    assert fused_estep_statistics(structure.layout, X.astype(np.float32), None, terms) is None
    monkeypatch.setattr(compiled_module, "ENABLED", False)
    assert fused_estep_statistics(structure.layout, X, None, terms) is None


#: Structures whose E-step the loop by rows takes: diagonal, shared diagonal (EEI) and scalar variances
BY_ROWS = ("diag", "spherical", "EII", "EEI", "EVI", "VEI")


@pytest.mark.parametrize("structure", BY_ROWS)
@pytest.mark.parametrize("n_components", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_loop_by_rows_gives_the_kernels_statistics(structure, n_components, weighted):
    """Few components and many features: the loop by rows, over blocks of rows and an odd last row, alone and
    with two mixtures at once, gives NumPy's statistics; a row no component explains has no likelihood."""
    rng = np.random.RandomState(n_components)
    n_rows, n_features = 2 * _estep_loop.ROW_BLOCK + 7, 20
    X = 5.0 + 3.0 * rng.normal(size=(n_rows, n_features))
    weights = rng.uniform(0.0, 3.0, n_rows) if weighted else None
    structure_ = get_structure(structure)
    groups = 2 if structure_.layout.per_component else 1
    params = stacked([random_params(structure, n_components, n_features, rng) for _ in range(groups)])
    terms = kernel_terms(structure_, params, X.mean(axis=0))
    estep = rows_estep(structure_.layout, terms, groups)
    assert estep is not None
    assert_same_statistics(estep(X, weights), numpy_kernel(structure_.layout, X, weights, terms, groups))
    far = X.copy()
    far[300] = 1e200
    with np.errstate(over="ignore", invalid="ignore"):
        lost = estep(far, weights).log_likelihood
    assert np.all(np.isnan(lost) == np.isnan(numpy_kernel(structure_.layout, far, weights, terms, groups)
                                              .log_likelihood))
    assert np.all(np.isnan(lost)) == (not weighted or weights[300] > 0)


def test_the_loop_by_rows_is_for_few_components_many_features_and_variances_only():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 20))

    def estep(structure, n_components, n_features):
        params = random_params(structure, n_components, n_features, rng)
        return rows_estep(get_structure(structure).layout, kernel_terms(get_structure(structure), params,
                                                                        X[:, :n_features].mean(axis=0)))

    assert estep("diag", 7, 16) is not None and estep("spherical", 4, 20) is not None
    assert estep("diag", _estep_loop.FEW_COMPONENTS, 20) is None  # SIMD over the components instead
    assert estep("diag", 4, 8) is None  # NumPy's passes are as fast
    assert estep("full", 2, 20) is None and estep("tied", 2, 20) is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_estep_of_few_diagonal_components_takes_the_loop_by_rows(monkeypatch, dtype):
    """Float64 rows and float32 ones (computed in float64: the statistics of the rows as float32 holds them)."""
    rng = np.random.RandomState(5)
    X = np.vstack([rng.normal(0.0, 1.0, (3000, 24)), rng.normal(2.0, 0.5, (3000, 24))]).astype(dtype)
    source = get_engine("numpy").fit_data(GaussianMixture(), X, None, device=None).source
    structure = get_structure("diag")
    params = random_params("diag", 3, 24, rng, centre=1.0)
    terms = kernel_terms(structure, params, source.shift)
    taken = count_loops(monkeypatch, "rows_estep")
    by_rows = source.estep(structure, terms)
    assert taken == [True]
    monkeypatch.setattr(compiled_module, "ENABLED", False)
    in_float64 = get_engine("numpy").fit_data(GaussianMixture(), X.astype(np.float64), None, device=None).source
    assert_same_statistics(by_rows, in_float64.estep(structure, kernel_terms(structure, params, in_float64.shift)))
    if dtype == np.float32:  # NumPy's float32 passes: the same up to float32 rounding
        assert_same_statistics(by_rows, source.estep(structure, terms), rtol=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("structure", PER_COMPONENT)
def test_each_mixture_of_a_grouped_estep_gets_its_own_statistics(engine, structure):
    """``estep(..., groups=B)``: B mixtures at once give each the statistics it has on its own."""
    if engine != "numpy":
        pytest.importorskip("torch" if engine == "torch" else "dask")
    rng = np.random.RandomState(2)
    X = 5.0 + 2.0 * rng.normal(size=(300, 3))
    weights = rng.uniform(0.5, 2.0, 300)
    source = get_engine(engine).fit_data(GaussianMixture(), on_engine(X, engine), weights, device=None).source
    structure_ = get_structure(structure)
    parts = [random_params(structure, 3, 3, rng) for _ in range(4)]
    together = source.estep(structure_, kernel_terms(structure_, stacked(parts), source.shift), groups=4)
    assert together.log_likelihood.shape == (4,)
    for b, part in enumerate(parts):
        alone = source.estep(structure_, kernel_terms(structure_, part, source.shift))
        rows = slice(3 * b, 3 * b + 3)
        np.testing.assert_allclose(together.counts[rows], alone.counts, rtol=1e-9)
        np.testing.assert_allclose(together.first[rows], alone.first, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(together.second[rows], alone.second, rtol=1e-9, atol=1e-9)
        assert together.log_likelihood[b] == pytest.approx(alone.log_likelihood, rel=1e-10)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_fits_are_the_same_with_and_without_the_compiled_loop(structure, monkeypatch):
    rng = np.random.RandomState(3)
    X = np.vstack([rng.normal(0.0, 1.0, (60, 3)), rng.normal(4.0, 0.7, (60, 3))])
    loops = count_loops(monkeypatch, "fused_estep")
    for module in (em_loop, em_batch):  # the E-step alone (diag and spherical iterations have their own loop)
        monkeypatch.setattr(module, "compiled_em_iteration", lambda source, model: None)
    monkeypatch.setattr(em_batch, "compiled_em_runs", lambda source, model: None)
    fits = []
    for enabled in (True, False):
        monkeypatch.setattr(compiled_module, "ENABLED", enabled)
        fits.append(GaussianMixture(2, covariance_type=structure, tol=1e-8, random_state=0).fit(X))
        assert any(loops) == enabled and loops  # small enough for the loop: taken where numba is
        loops.clear()
    with_loop, without = fits
    assert with_loop.n_iter_ == without.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(with_loop, name), getattr(without, name), rtol=1e-8, atol=1e-10)


def iteration_problem(structure, weighted, reg_covar=1e-6, n_rows=150, dtype=np.float64, n_features=4):
    rng = np.random.RandomState(7)
    X = (5.0 + 3.0 * rng.normal(size=(n_rows, n_features))).astype(dtype)
    weights = rng.uniform(0.0, 3.0, n_rows) if weighted else None
    settings = FitSettings(3, get_structure(structure), "kmeans", 1, 1e-5, reg_covar, 100)
    source = get_engine("numpy").fit_data(GaussianMixture(), X, weights, device=None).source
    return source, maximum_likelihood(source, settings), rng


def stacked_fits(structure, parts):
    """Several fits' parameters as a batch holds them (a shared covariance: one per fit, stacked)."""
    if len(parts) == 1:
        return parts[0]
    join = np.stack if shared(structure) else np.concatenate
    return MixtureParams(np.concatenate([p.weights for p in parts]), np.concatenate([p.means for p in parts]),
                         join([p.covariances for p in parts]), join([p.precisions_cholesky for p in parts]))


@pytest.mark.parametrize("structure", COMPILED)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("n_features", [1, 4])
def test_a_compiled_iteration_is_each_mixtures_general_one(structure, weighted, groups, n_features):
    source, model, rng = iteration_problem(structure, weighted, n_features=n_features)
    parts = [random_params(structure, 3, n_features, rng) for _ in range(groups)]
    iteration = compiled_em_iteration(source, model)
    assert iteration is not None
    new, log_likelihood = iteration(stacked_fits(structure, parts), groups)
    assert log_likelihood.shape == (groups,)
    for b, part in enumerate(parts):
        stats = source.estep(model.structure, kernel_terms(model.structure, part, source.shift))
        expected, dropped = model.update(stats, part)
        assert dropped == ()
        assert log_likelihood[b] == pytest.approx(stats.log_likelihood, rel=1e-12)
        rows = slice(3 * b, 3 * b + 3)
        own = rows if not shared(structure) else (b if groups > 1 else slice(None))
        for name in ("weights", "means", "covariances", "precisions_cholesky"):
            got = getattr(new, name)[rows if name in ("weights", "means") else own]
            np.testing.assert_allclose(got, getattr(expected, name), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("structure", COMPILED)
def test_what_is_not_plain_arithmetic_is_left_to_the_general_iteration(structure):
    source, model, rng = iteration_problem(structure, False)
    iteration = compiled_em_iteration(source, model)
    params = random_params(structure, 3, 4, rng)
    assert iteration(params, 1) is not None
    dropped = MixtureParams(np.array([0.5, 0.5, 0.0]), params.means, params.covariances, params.precisions_cholesky)
    assert iteration(dropped, 1) is None  # a dropped component keeps its parameters: the general M-step's rule
    far = params.means.copy()
    far[2] += 1e4  # no row near it: an empty component
    assert iteration(MixtureParams(params.weights, far, params.covariances, params.precisions_cholesky), 1) is None
    if structure in ("diag", "spherical", "EII", "EVI", "VEI"):
        tiny = params.covariances * 1e-320  # infinite precisions: every row at density 0, no likelihood
        layout = get_structure(structure).layout
        assert iteration(MixtureParams(params.weights, params.means, tiny, layout.precisions_cholesky(tiny)), 1) is None


def test_the_compiled_iteration_is_only_where_it_applies(monkeypatch):
    assert compiled_em_iteration(*iteration_problem("diag", False, dtype=np.float32)[:2]) is None
    assert compiled_em_iteration(*iteration_problem("full", False, reg_covar=0.0)[:2]) is None  # checks singularity
    source, model, rng = iteration_problem("diag", False, n_rows=(1 << 19) // (3 * 8) + 1)
    assert compiled_em_iteration(source, model)(random_params("diag", 3, 4, rng), 1) is None  # too large at once
    source, model, _ = iteration_problem("diag", False, n_rows=(1 << 19) // 8 + 1)
    assert compiled_em_iteration(source, model) is None and "float64_rows" not in source.memo  # even for one
    assert compiled_em_runs(source, model) is None
    source, model, rng = iteration_problem("diag", False, n_rows=(1 << 19) // (3 * 8) + 1)
    assert compiled_em_runs(source, model)(random_params("diag", 3, 4, rng), 1, [-np.inf], [5], 1e-3) is None
    assert compiled_em_runs(*iteration_problem("full", False, reg_covar=0.0)[:2]) is None
    monkeypatch.setattr(compiled_module, "ENABLED", False)
    assert compiled_em_iteration(*iteration_problem("diag", False)[:2]) is None
    assert compiled_em_runs(*iteration_problem("diag", False)[:2]) is None


@pytest.mark.parametrize("structure", COMPILED)
@pytest.mark.parametrize("init_params", ["kmeans", "emem"])
def test_fits_are_the_same_with_compiled_runs_iterations_or_neither(structure, init_params, monkeypatch):
    rng = np.random.RandomState(4)
    X = np.vstack([rng.normal(0.0, 1.0, (80, 3)), rng.normal(4.0, 0.7, (60, 3)), rng.normal((0, 6, 0), 1.5, (60, 3))])
    fits = []
    for runs_on, iteration_on in ((True, True), (False, True), (False, False)):
        made = {"runs": [], "iteration": []}

        def counted(make, name, on):
            def wrapped(source, model):
                loop = make(source, model) if on else None
                made[name].append(loop is not None)
                return loop
            return wrapped

        monkeypatch.setattr(em_batch, "compiled_em_runs", counted(compiled_em_runs, "runs", runs_on))
        for module in (em_loop, em_batch):
            monkeypatch.setattr(module, "compiled_em_iteration", counted(compiled_em_iteration, "iteration",
                                                                         iteration_on))
        fits.append(GaussianMixture(3, covariance_type=structure, init_params=init_params, n_init=4, tol=1e-8,
                                    random_state=0).fit(X))
        assert made["runs"] and all(made["runs"]) == runs_on
        assert bool(made["iteration"]) == (not runs_on) and all(made["iteration"]) == iteration_on
    first = fits[0]
    for other in fits[1:]:
        assert first.n_iter_ == other.n_iter_
        assert first.lower_bound_ == pytest.approx(other.lower_bound_, rel=1e-12)
        # in the components' order (where restarts reach one optimum under other labels, with bounds equal to
        # the last bits, which of them is kept may differ)
        for name in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(in_order(first, name), in_order(other, name), rtol=1e-8, atol=1e-10)


def in_order(model, name):
    """A fitted attribute with the components in the order of their means."""
    values = getattr(model, name)
    if name == "covariances_" and not get_structure(model.covariance_type).layout.per_component:
        return values
    return values[np.lexsort(model.means_.T[::-1])]


@pytest.mark.parametrize("structure", COMPILED)
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_runs_are_each_mixtures_iterations_in_turn(structure, weighted):
    source, model, rng = iteration_problem(structure, weighted)
    parts = [random_params(structure, 3, 4, rng) for _ in range(3)]
    bounds, limits, tol = [-np.inf, -np.inf, -3.0], [1, 300, 3], 1e-4
    new, history, n_done, status = compiled_em_runs(source, model)(stacked_fits(structure, parts), 3, bounds,
                                                                   limits, tol)
    assert history.shape == (3, 300)
    iteration = compiled_em_iteration(source, model)
    for b, part in enumerate(parts):
        params, bound, expected = part, bounds[b], []
        for _ in range(limits[b]):
            params, log_likelihood = iteration(params, 1)
            previous, bound = bound, float(log_likelihood[0]) / float(source.total_weight)
            expected.append(bound)
            if abs(bound - previous) < tol:
                break
        converged = abs(bound - previous) < tol
        assert status[b] == (_estep_loop.RUN_CONVERGED if converged else _estep_loop.RUN_LIMIT)
        assert n_done[b] == len(expected) and (b != 0 or n_done[b] == 1)
        np.testing.assert_allclose(history[b, :n_done[b]], expected, rtol=1e-12)
        rows = slice(3 * b, 3 * b + 3)
        own = rows if not shared(structure) else b
        for name in ("weights", "means", "covariances", "precisions_cholesky"):
            got = getattr(new, name)[rows if name in ("weights", "means") else own]
            np.testing.assert_allclose(got, getattr(params, name), rtol=1e-9, atol=1e-12, err_msg=name)
    assert status[1] == _estep_loop.RUN_CONVERGED and status[0] == _estep_loop.RUN_LIMIT


@pytest.mark.parametrize("structure", COMPILED)
@pytest.mark.parametrize("per_call", [1, 2])
def test_more_mixtures_than_one_compiled_call_takes_run_in_several(structure, per_call, monkeypatch):
    source, model, rng = iteration_problem(structure, True)
    parts = [random_params(structure, 3, 4, rng) for _ in range(5)]
    bounds, limits, tol = [-np.inf, -np.inf, -3.0, -np.inf, -np.inf], [1, 300, 3, 40, 7], 1e-4
    whole = compiled_em_runs(source, model)(stacked_fits(structure, parts), 5, bounds, limits, tol)
    loops = kernels._CompiledEM.make(source, model)
    monkeypatch.setattr(kernels, "COMPILED_MAX_WORK", source.n_samples * 3 * per_call * (loops.terms + 4))
    calls = []
    runs = loops._runs
    monkeypatch.setattr(loops, "_runs", lambda params, groups, *rest: calls.append(groups) or runs(params, groups,
                                                                                                   *rest))
    split = loops.runs(stacked_fits(structure, parts), 5, bounds, limits, tol)
    assert calls == ([1] * 5 if per_call == 1 else [2, 2, 1])
    new, history, n_done, status = whole
    np.testing.assert_array_equal(split[2], n_done)
    np.testing.assert_array_equal(split[3], status)
    assert split[1].shape == history.shape == (5, 300)
    for b in range(5):
        np.testing.assert_allclose(split[1][b, :n_done[b]], history[b, :n_done[b]], rtol=1e-12)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert getattr(split[0], name).shape == getattr(new, name).shape
        np.testing.assert_allclose(getattr(split[0], name), getattr(new, name), rtol=1e-9, atol=1e-12, err_msg=name)
    monkeypatch.setattr(kernels, "COMPILED_MAX_WORK", source.n_samples * 3 * (loops.terms + 4) - 1)
    assert loops.runs(stacked_fits(structure, parts), 5, bounds, limits, tol) is None  # one mixture is too much


@pytest.mark.parametrize("structure", COMPILED)
def test_compiled_runs_stop_before_what_is_not_plain_arithmetic(structure):
    source, model, rng = iteration_problem(structure, False)
    good, bad = random_params(structure, 3, 4, rng), random_params(structure, 3, 4, rng)
    dropped = MixtureParams(np.array([0.5, 0.5, 0.0]), bad.means, bad.covariances, bad.precisions_cholesky)
    stacked = stacked_fits(structure, [dropped, good])
    new, history, n_done, status = compiled_em_runs(source, model)(stacked, 2, [-np.inf] * 2, [30, 30], 1e-4)
    assert status[0] == _estep_loop.RUN_GENERAL and n_done[0] == 0  # its first iteration: left as it was
    for name in ("weights", "means"):
        np.testing.assert_array_equal(getattr(new, name)[:3], getattr(dropped, name))
    own = slice(0, 3) if not shared(structure) else 0
    np.testing.assert_array_equal(new.covariances[own], stacked.covariances[own])
    assert status[1] != _estep_loop.RUN_GENERAL and n_done[1] > 1  # the other mixture is not held back


def test_the_compiled_exponential():
    exp_in_place = compiled_module.compiled(_estep_loop._exp_in_place)
    x = np.concatenate([np.linspace(-760.0, 715.0, 100_001), [0.0, -708.0, 709.0, -745.1, -745.3, 709.5],
                        [np.nan, np.inf, -np.inf]])
    result = x.copy()
    exp_in_place(result)
    with np.errstate(over="ignore"):
        expected = np.exp(x)
    normal = np.isfinite(expected) & (expected >= np.finfo(float).tiny)
    np.testing.assert_allclose(result[normal], expected[normal], rtol=1e-15)
    assert np.all(result[expected == 0.0] == 0.0)
    edges = ~normal & (expected > 0)  # subnormal results and overflow
    np.testing.assert_allclose(result[edges], expected[edges], rtol=1e-12, atol=1e-320)
    assert np.isnan(result[-3]) and result[-2] == np.inf and result[-1] == 0.0


def test_the_compiled_logarithm():
    log_in_place = compiled_module.compiled(_estep_loop._log_in_place)
    rng = np.random.RandomState(0)
    x = np.concatenate([np.exp(rng.uniform(-700.0, 700.0, 50_000)), 1.0 + rng.uniform(-1e-6, 1e-6, 1000),
                        rng.uniform(1.0, 9.0, 10_000), [1.0, 2.0, np.sqrt(2.0), np.finfo(float).max,
                                                        np.finfo(float).tiny, 5e-324, 1e-310, 0.0, -1.0, np.inf,
                                                        np.nan]])
    result = x.copy()
    log_in_place(result)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.log(x)
    finite = np.isfinite(expected) & (expected != 0.0)
    np.testing.assert_allclose(result[finite], expected[finite], rtol=2e-15)
    assert np.all(np.abs(result[expected == 0.0]) <= 1e-300)
    assert result[-4] == -np.inf and np.isnan(result[-3]) and result[-2] == np.inf and np.isnan(result[-1])


@pytest.mark.parametrize("structure", COMPILED)
def test_compiled_runs_can_stop_where_a_component_collapses(structure):
    """With ``stop_collapsed`` a mixture stops at its first iterate with a collapsed component, as
    ``collapsed_components`` judges it, and the other mixtures run on as without it."""
    from gaussmix.em.scale import collapsed_components

    source, model, rng = iteration_problem(structure, False, n_rows=150, n_features=3)
    X = source.in_memory().xp.to_numpy(source.in_memory().rows(np.arange(source.n_samples)))
    layout = get_structure(structure).layout
    onto = random_params(structure, 3, 3, rng)  # component 0 on eight identical rows, tight about them
    onto.means[0] = X[0]
    small = {"full": 0.01 * np.eye(3), "diag": np.full(3, 0.01), "spherical": 0.01, "EII": 0.01,
             "EVI": np.full(3, 0.01), "VEI": np.full(3, 0.01), **dict.fromkeys(("EEV", "EVV", "VEV", "VEE", "EVE",
                                                                              "VVE"), 0.01 * np.eye(3))}
    if not shared(structure):
        onto.covariances[0] = small[structure]
    onto = MixtureParams(np.array([0.1, 0.45, 0.45]), onto.means, onto.covariances,
                         layout.precisions_cholesky(onto.covariances))
    duplicated = np.repeat(X[:1], 8, axis=0)
    data = np.concatenate([duplicated, X[8:]])
    source = get_engine("numpy").fit_data(GaussianMixture(), data, None, device=None).source
    model = maximum_likelihood(source, FitSettings(3, get_structure(structure), "kmeans", 1, 1e-5, 1e-6, 100))
    parts = [onto, random_params(structure, 3, 3, rng)]
    runs = compiled_em_runs(source, model)
    plain = runs(stacked_fits(structure, parts), 2, [-np.inf] * 2, [60, 60], 1e-9)
    stopped = runs(stacked_fits(structure, parts), 2, [-np.inf] * 2, [60, 60], 1e-9, EarlyStop(collapsed=True))
    iteration = compiled_em_iteration(source, model)
    params, first = onto, None
    for it in range(1, 61):
        params = iteration(params, 1)[0]
        if collapsed_components(model.structure, params, model.scale):
            first = it
            break
    if structure in ("tied", "EEI", "EII", "EVI", "EEV", "EVV", "EVE"):  # a shared covariance, variance or volume does
        # not collapse onto one component's identical rows: never stopped
        assert first is None
        np.testing.assert_array_equal(stopped[2], plain[2])
        np.testing.assert_array_equal(stopped[3], plain[3])
        return
    assert first is not None and first < plain[2][0]  # it collapses, and would have gone on without the stop
    assert stopped[3][0] == _estep_loop.RUN_COLLAPSED and stopped[2][0] == first
    np.testing.assert_allclose(stopped[1][0, :first], plain[1][0, :first], rtol=1e-12)
    assert collapsed_components(model.structure, em_batch.fit_part(stopped[0], 0, 3, layout), model.scale)
    assert stopped[3][1] == plain[3][1] != _estep_loop.RUN_COLLAPSED and stopped[2][1] == plain[2][1]
    np.testing.assert_allclose(stopped[1][1, :plain[2][1]], plain[1][1, :plain[2][1]], rtol=1e-12)
    outcomes, _ = em_batch.run_em_batch(source, model, parts, tol=1e-9, max_iter=60, restarts=[0, 1],
                                        early=EarlyStop(collapsed=True))
    plain_outcomes, _ = em_batch.run_em_batch(source, model, parts, tol=1e-9, max_iter=60, restarts=[0, 1])
    assert outcomes[0].stopped == em_batch.COLLAPSED and not outcomes[0].converged and outcomes[0].n_iter == first
    assert plain_outcomes[0].stopped is None and plain_outcomes[0].n_iter > first
    assert outcomes[1].lower_bounds == plain_outcomes[1].lower_bounds and outcomes[1].stopped is None
    single = em_loop.run_em(source, model, onto, tol=1e-9, max_iter=60, early=EarlyStop(collapsed=True))
    assert single.stopped == em_batch.COLLAPSED and single.n_iter == first  # one run: the same stop


@pytest.mark.parametrize("structure", COMPILED)
def test_compiled_runs_can_stop_where_the_bound_cannot_reach_a_target(structure):
    """A mixture stops at the first iteration after ``after`` where its bound, rising ``slack`` times as fast as
    in that iteration until its limit, would stay below the target; until then its iterates are unchanged."""
    source, model, rng = iteration_problem(structure, True)
    parts = [random_params(structure, 3, 4, rng) for _ in range(3)]
    limits = [40, 40, 40]
    runs = compiled_em_runs(source, model)
    plain = runs(stacked_fits(structure, parts), 3, [-np.inf] * 3, limits, 1e-10)
    target = float(np.max([plain[1][b, plain[2][b] - 1] for b in range(3)])) + 1e-3  # above every final bound
    early = EarlyStop(target=target, slack=2.0, after=2)
    stopped = runs(stacked_fits(structure, parts), 3, [-np.inf] * 3, limits, 1e-10, early)
    n_stopped = 0
    for b in range(3):
        history = plain[1][b, :plain[2][b]]
        expected = next((n for n in range(early.after + 1, plain[2][b] + 1)
                         if n < limits[b] and abs(history[n - 1] - history[n - 2]) >= 1e-10
                         and history[n - 1] + 2.0 * (history[n - 1] - history[n - 2]) * (limits[b] - n) < target),
                        None)
        if expected is None:
            assert stopped[3][b] == plain[3][b] and stopped[2][b] == plain[2][b]
            continue
        n_stopped += 1
        assert stopped[3][b] == _estep_loop.RUN_BEHIND and stopped[2][b] == expected
        np.testing.assert_allclose(stopped[1][b, :expected], history[:expected], rtol=1e-12)
        single = em_loop.run_em(source, model, parts[b], tol=1e-10, max_iter=limits[b], early=early)
        assert single.stopped == em_batch.BEHIND and single.n_iter == expected  # one run: the same stop
    assert n_stopped >= 2
    never = runs(stacked_fits(structure, parts), 3, [-np.inf] * 3, limits, 1e-10, EarlyStop(slack=2.0, after=2))
    np.testing.assert_array_equal(never[2], plain[2])
    np.testing.assert_array_equal(never[3], plain[3])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("transposed", [False, True])
def test_whitened_full_kernels_give_numpys_numbers(dtype, transposed):
    """Full covariances whitened component by component (few components, many features): the compiled pass
    that sums each column's squares less the whitened mean, and the one that gathers and scales the rows bearing
    on each second moment, give the NumPy passes' numbers. One component takes a few rows only (a gathered
    subset), the others most (every row)."""
    from gaussmix.covariance.layouts import FullLayout

    rng = np.random.default_rng(11)
    n_rows, n_features, n_components = 600, 20, 3
    assert FullLayout.whitens(n_features, n_components)
    layout = get_structure("full").layout
    rows = rng.normal(size=(n_rows, n_features)).astype(dtype)
    Xt = rows.T if transposed else np.ascontiguousarray(rows.T)  # a view of the rows, or a transposed copy
    params = random_params("full", n_components, n_features, rng, centre=0.0)
    arrays = {name: np.asarray(value, dtype) for name, value in layout.kernel_arrays(params, np.zeros(n_features)).items()}
    resp = rng.dirichlet(np.ones(n_components), size=n_rows).T.astype(dtype)
    resp[0, 20:] *= 1e-30  # component 0: 20 rows bear on it, the others' terms are lost to rounding

    def kernels(enabled):
        compiled_module.ENABLED = enabled
        try:
            return layout.mahalanobis(NUMPY, Xt, None, arrays), layout.second_moment(NUMPY, Xt, None, resp)
        finally:
            compiled_module.ENABLED = True

    (distances, second), (expected_distances, expected_second) = kernels(True), kernels(False)
    assert distances.dtype == second.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(distances, expected_distances, rtol=rtol)
    np.testing.assert_allclose(second, expected_second, rtol=rtol, atol=rtol * np.abs(expected_second).max())
    # the gathered component's moment is that of its bearing rows alone, and close to that of all of them
    bearing = rows[:20].astype(np.float64) * np.sqrt(resp[0, :20].astype(np.float64))[:, None]
    rows_index, cols_index = np.triu_indices(n_features)
    np.testing.assert_allclose(second[0], (bearing.T @ bearing)[rows_index, cols_index], rtol=10 * rtol,
                               atol=10 * rtol * np.abs(second[0]).max())
