"""Accuracy in float32, independence from data scale, extreme points, chunking."""

import warnings

import numpy as np
import pytest
from conftest import as_numpy, estep, on_engine

from gaussmix import FitError, GaussianMixture
from gaussmix.covariance import get_structure
from gaussmix.engines._chunked import ChunkedData


def two_clusters(offset=0.0, n=2000, seed=0):
    rng = np.random.RandomState(seed)
    sd = np.sqrt(0.95)
    X = np.vstack([rng.normal(0, sd, (n, 2)), rng.normal(6, sd, (n, 2))]) + offset
    return X


def test_float32_far_from_origin_keeps_its_variances(structure, engine):
    """scikit-learn issue 30382: float32 data offset by 1e4; true variances 0.95 (on every engine)."""
    X64 = two_clusters(offset=1e4)
    X32 = on_engine(X64.astype(np.float32), engine, chunks=1000)
    gm64 = GaussianMixture(2, covariance_type=structure, random_state=0).fit(X64)
    gm32 = GaussianMixture(2, covariance_type=structure, random_state=0).fit(X32)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(gm32, name).dtype == np.float32, name
    np.testing.assert_allclose(gm32.covariances_, gm64.covariances_, rtol=2e-3, atol=2e-3)
    variances = get_structure(structure).layout.full_covariances(gm32.covariances_, 2, 2)
    assert np.all(np.abs(np.diagonal(variances, axis1=1, axis2=2) - 0.95) < 0.06)
    assert np.array_equal(as_numpy(gm32.predict(X32)), gm64.predict(X64))
    assert as_numpy(gm32.score_samples(X32)).dtype == np.float32
    assert as_numpy(gm32.predict_proba(X32)).dtype == np.float32
    assert gm32.sample(5)[0].dtype == np.float32


def few_rows_per_component(d=24, K=8, per=20, spread=30.0, seed=0):
    """Clusters of fewer rows than features far apart: each covariance is the regularisation in some
    direction, which float32 rounding about the data mean would swamp."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(0, spread, (K, d))
    return np.repeat(centres, per, axis=0) + rng.normal(size=(K * per, d)), centres


@pytest.mark.parametrize("d, K, per", [(24, 8, 20), (48, 4, 40)])
def test_float32_fits_with_fewer_rows_than_features_match_float64(d, K, per, engine):
    """Before, these float32 fits failed (a singular covariance) or ended 2% off float64's bound."""
    X, centres = few_rows_per_component(d, K, per)
    reference = GaussianMixture(K, means_init=centres, random_state=0).fit(X)
    gm = GaussianMixture(K, means_init=centres, random_state=0).fit(on_engine(X, engine, dtype=np.float32))
    assert gm.n_iter_ == reference.n_iter_
    assert gm.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(gm.means_, reference.means_, rtol=1e-5, atol=1e-4)


def test_float32_estep_in_float64_only_where_its_rounding_matters(structure):
    from gaussmix.em.models import MaximumLikelihood
    from gaussmix.em.scale import DataScale, beyond_rounding

    s = get_structure(structure)
    X, centres = few_rows_per_component()
    near = GaussianMixture(8, covariance_type=structure, means_init=centres, random_state=0).fit(X)
    params = near._params_from_attributes()
    for dtype, expected in ((np.float64, False), (np.float32, structure in ("full", "tied"))):
        scale = DataScale.of(ChunkedData(X.astype(dtype)), 1e-6)
        assert beyond_rounding(s, params, scale) is expected, dtype
        assert MaximumLikelihood(s, scale).kernel_terms(params, scale.mean).in_float64 is expected
    # Well-conditioned clusters stay in float32.
    wide = two_clusters()
    fit = GaussianMixture(2, covariance_type=structure, random_state=0).fit(wide)
    scale = DataScale.of(ChunkedData(wide.astype(np.float32)), 1e-6)
    assert not beyond_rounding(s, fit._params_from_attributes(), scale)


def test_a_float32_step_singular_in_float32_is_taken_again_in_float64(monkeypatch):
    """Without the advance decision, a float32 M-step that fails is retried in float64 (and stays there)."""
    import gaussmix.em.models as models

    X, centres = few_rows_per_component()
    reference = GaussianMixture(8, means_init=centres, random_state=0).fit(X)
    monkeypatch.setattr(models, "beyond_rounding", lambda *args: False)
    gm = GaussianMixture(8, means_init=centres, random_state=0).fit(X.astype(np.float32))
    assert gm.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-6)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random_from_data", "random"])
def test_same_clustering_at_every_scale(structure, init, engine):
    X = two_clusters(n=300) + [3.0, -1.0]
    reference = GaussianMixture(2, covariance_type=structure, init_params=init, random_state=0).fit(X)
    labels = reference.predict(X)
    for scale in (1e-8, 1e-4, 1e4, 1e8):
        scaled = on_engine(X * scale, engine)
        gm = GaussianMixture(2, covariance_type=structure, init_params=init, random_state=0).fit(scaled)
        assert np.array_equal(as_numpy(gm.predict(scaled)), labels), scale
        assert gm.n_iter_ == reference.n_iter_
        np.testing.assert_allclose(gm.means_ / scale, reference.means_, rtol=1e-6)
        np.testing.assert_allclose(gm.covariances_ / scale**2, reference.covariances_, rtol=1e-6)
        np.testing.assert_allclose(gm.weights_, reference.weights_, rtol=1e-6)
        # Densities scale by 1 / scale**d.
        assert gm.lower_bound_ == pytest.approx(reference.lower_bound_ - 2 * np.log(scale), rel=1e-8)


def test_sklearn_absolute_reg_covar_breaks_at_small_scale_but_ours_does_not():
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X = two_clusters(n=500) * 1e-6
    truth = np.repeat([0, 1], 500)
    theirs = SkGaussianMixture(2, random_state=0).fit(X).predict(X)
    ours = GaussianMixture(2, random_state=0).fit(X).predict(X)
    agreement = lambda labels: max(np.mean(labels == truth), np.mean(labels != truth))  # noqa: E731
    assert agreement(ours) > 0.999
    assert agreement(theirs) < 0.9  # reg_covar=1e-6 swamps variances of 1e-12


def test_points_far_away_get_finite_scores(structure, engine):
    X = two_clusters(n=300)
    for dtype in (np.float64, np.float32):
        gm = GaussianMixture(2, covariance_type=structure, random_state=0).fit(on_engine(X.astype(dtype), engine))
        far = on_engine(np.array([[1000.0, 1000.0], [-1000.0, 3.0], [3.0, 1e4]], dtype=dtype), engine)
        scores = as_numpy(gm.score_samples(far))
        assert np.all(np.isfinite(scores))
        assert np.all(scores < -1e4)
        resp = as_numpy(gm.predict_proba(far))
        assert np.all(np.isfinite(resp)) and np.allclose(resp.sum(axis=1), 1.0)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_chunked_statistics_equal_unchunked(structure, chunk_rows, blobs):
    X, _ = blobs
    gm = GaussianMixture(3, covariance_type=structure, random_state=0, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    params = gm._params_from_attributes()
    weights = np.random.RandomState(0).uniform(0, 2, X.shape[0])
    whole = estep(ChunkedData(X, weights, chunk_rows=X.shape[0]), get_structure(structure), params)
    chunked = estep(ChunkedData(X, weights, chunk_rows=chunk_rows), get_structure(structure), params)
    for name in ("counts", "first", "second"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-10, atol=1e-10)
    assert chunked.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    assert chunked.total_weight == pytest.approx(whole.total_weight, rel=1e-14)


def test_chunk_size_does_not_change_the_fit(structure, blobs, monkeypatch):
    X, _ = blobs
    reference = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    monkeypatch.setattr("gaussmix.engines._chunked.CHUNK_ELEMENTS", 40)  # 40 // (3*3) -> the 32-row minimum
    small = GaussianMixture(3, covariance_type=structure, random_state=0).fit(X)
    np.testing.assert_allclose(small.means_, reference.means_, rtol=1e-10)
    np.testing.assert_allclose(small.covariances_, reference.covariances_, rtol=1e-9)
    assert small.n_iter_ == reference.n_iter_


@pytest.mark.parametrize("structure_name", ["full", "tied", "diag", "spherical"])
def test_centred_rows_are_kept_only_within_the_budget(blobs, monkeypatch, structure_name):
    """Passes after the first reuse the centred rows, with identical statistics, up to the byte budget; larger
    data are centred along their rows in each pass, with the same statistics up to rounding."""
    import gaussmix._compiled as compiled_module
    import gaussmix.engines._chunked as data_module

    monkeypatch.setattr(compiled_module, "ENABLED", False)  # the NumPy kernels' path (the loop centres as it goes)

    X, _ = blobs
    structure = get_structure(structure_name)
    params = GaussianMixture(3, covariance_type=structure_name, random_state=0).fit(X)._params_from_attributes()
    data = ChunkedData(X, chunk_rows=64)
    first = estep(data, structure, params)
    rows = [v for k, v in data._centred.items() if len(k) == 2]
    assert sum(v.nbytes for v in rows) == X.nbytes  # every chunk kept, and beside it its row terms, if any
    assert data._centred_bytes == sum(v.nbytes for v in data._centred.values())
    again = estep(data, structure, params)
    np.testing.assert_array_equal(again.second, first.second)
    assert again.log_likelihood == first.log_likelihood
    monkeypatch.setattr(data_module, "CENTRED_CACHE_BYTES", X.nbytes - 1)  # larger data: nothing kept
    large = ChunkedData(X, chunk_rows=64)
    centred_again = estep(large, structure, params)
    for name in ("counts", "first", "second"):
        np.testing.assert_allclose(getattr(centred_again, name), getattr(first, name), rtol=1e-12, atol=1e-9)
    assert centred_again.log_likelihood == pytest.approx(first.log_likelihood, rel=1e-13)
    assert large._centred_bytes == 0 and not large._centred


@pytest.mark.parametrize("structure_name", ["full", "tied", "diag", "spherical"])
def test_numpy_passes_take_worker_threads_only_for_chunks_worth_them(structure_name, monkeypatch):
    """Chunks with little work each run in the calling thread (two threads would spend the pass handing over the
    GIL between NumPy calls); larger ones on the workers. The statistics are the same either way, bit for bit:
    the chunks and the order of their sums do not depend on the threads."""
    import gaussmix.engines._chunked as data_module
    from gaussmix.em.params import kernel_terms

    rng = np.random.default_rng(3)
    X = rng.normal(size=(6000, 3)) * [1.0, 2.0, 3.0] + 5.0
    structure = get_structure(structure_name)
    params = GaussianMixture(4, covariance_type=structure_name, random_state=0).fit(X)._params_from_attributes()
    seen = []
    monkeypatch.setattr(data_module, "estep_statistics", _recording(data_module.estep_statistics, seen))
    results = {}
    for least in (data_module.PARALLEL_MIN_CHUNK_WORK, 0):
        monkeypatch.setattr(data_module, "PARALLEL_MIN_CHUNK_WORK", least)
        data = ChunkedData(X, chunk_rows=1500, n_threads=2)  # 4 chunks of 1,500 rows: 2e5 at most
        seen.clear()
        results[least] = data.estep(structure, kernel_terms(structure, params, data.shift))
        threads = {name.startswith("gaussmix") for name in seen}
        assert threads == ({True} if least == 0 else {False}), (least, seen)
    few, many = results.values()
    for name in ("counts", "first", "second"):
        np.testing.assert_array_equal(getattr(few, name), getattr(many, name))
    assert few.log_likelihood == many.log_likelihood


def _recording(function, names):
    """``function``, noting the name of the thread that runs each call in ``names``."""
    import threading

    def recorded(*args, **kwargs):
        names.append(threading.current_thread().name)
        return function(*args, **kwargs)

    return recorded


# -- correct or a clear error, never silently wrong -------------------------------------------
@pytest.mark.parametrize("scale", [1e-155, 1e-200, 1e-300])
def test_data_too_small_for_float64_is_an_error(scale):
    X = two_clusters() * scale
    with pytest.raises(FitError, match="feature 0 has values too small for float64 arithmetic"):
        GaussianMixture(2, random_state=0).fit(X)


def test_data_near_the_smallest_safe_scale_still_clusters_correctly():
    X = two_clusters()
    labels = GaussianMixture(2, random_state=0).fit_predict(X)
    for scale in (1e-120, 1e-135):
        assert np.array_equal(GaussianMixture(2, random_state=0).fit_predict(X * scale), labels), scale


@pytest.mark.parametrize("weight", [1e-320, 1e-300, 1e300, 1e308])
def test_extreme_but_equal_sample_weights_give_the_unweighted_fit(engine, weight):
    X = two_clusters()
    reference = GaussianMixture(2, random_state=0).fit(X)
    weights = np.full(X.shape[0], weight)
    if engine == "dask":
        import dask.array as da

        weights = da.from_array(weights, chunks=97)
    gm = GaussianMixture(2, random_state=0).fit(on_engine(X, engine), sample_weight=weights)
    np.testing.assert_allclose(gm.means_, reference.means_, rtol=1e-10)
    np.testing.assert_allclose(gm.covariances_, reference.covariances_, rtol=1e-10)
    assert gm.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-12)


def test_responsibilities_of_points_beyond_float_range_sum_to_one(engine, structure):
    X = two_clusters()
    gm = GaussianMixture(2, covariance_type=structure, random_state=0).fit(X)
    directions = np.array([[1.0, 1.0], [-1.0, 0.2], [0.0, 1.0], [3.0, -1.0]])
    far = np.vstack([directions * 1e200, [[1e300, -1e300]], [[1e160, 2.0]]])
    proba = as_numpy(gm.predict_proba(on_engine(far, engine)))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # In the limit x = t v, t -> infinity, the component with the smallest v' P_k v takes the row.
    precisions = get_structure(structure).layout.full_covariances(gm.precisions_, 2, 2) if structure != "tied" else None
    for row, p in zip(far, proba):
        v = row / np.max(np.abs(row))
        if precisions is None:  # one shared covariance: the nearest mean in Mahalanobis terms wins
            continue
        quadratic = [v @ precisions[k] @ v for k in range(2)]
        assert np.argmax(p) == int(np.argmin(quadratic)), (row, quadratic, p)
    np.testing.assert_array_equal(as_numpy(gm.predict(on_engine(far, engine))), np.argmax(proba, axis=1))
    assert np.all(as_numpy(gm.score_samples(on_engine(far, engine))) == -np.inf)


def test_setting_another_structure_after_fitting_says_so():
    gm = GaussianMixture(2, covariance_type="full", random_state=0).fit(two_clusters())
    gm.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match=r"covariance_type was changed after fitting"):
        gm.predict(two_clusters())


@pytest.mark.parametrize("n_features", [1, 3, 7, 9])
@pytest.mark.parametrize("n_matrices", [1, 5, 200])
def test_triangular_inverse_of_every_batch_size(n_features, n_matrices):
    from gaussmix.covariance._linalg import inverse_lower

    rng = np.random.default_rng(n_features * 1000 + n_matrices)
    a = rng.normal(size=(n_matrices, n_features, n_features))
    lower = np.linalg.cholesky(a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(n_features))
    inverse = inverse_lower(lower)
    assert np.all(np.triu(inverse, 1) == 0)
    identity = np.broadcast_to(np.eye(n_features), inverse.shape)
    assert np.allclose(lower @ inverse, identity, atol=1e-10)
    assert np.allclose(inverse_lower(lower[0]), inverse[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_feature_moments_are_the_same_with_or_without_the_compiled_loops(monkeypatch, dtype, weighted):
    """Column sums row after row in both paths: the same mean and variances bit for bit (so the same shift
    for every kernel), and the same errors for data float64 cannot square or whose variance underflows."""
    import gaussmix._compiled as compiled_module
    from gaussmix.engines._chunked import ChunkedData

    rng = np.random.RandomState(9)
    X = (rng.normal(size=(5000, 4)) * [1.0, 1e3, 1e-3, 10.0] + [0.0, 5e3, -1.0, 1e6]).astype(dtype)
    weights = rng.choice([0.0, 0.5, 1.0, 3.0], size=5000) if weighted else None
    found = []
    for enabled in (True, False):
        monkeypatch.setattr(compiled_module, "ENABLED", enabled)
        found.append(ChunkedData(X, weights, chunk_rows=700).feature_moments())
        for bad, message in ((np.array([[1e200, 1.0], [2e200, 2.0], [3e200, 0.0]]), "too large to square"),
                             (two_clusters() * 1e-200, "too small for float64")):
            with pytest.raises(FitError, match=message):
                ChunkedData(bad).feature_moments()
    for a, b in zip(*found):
        np.testing.assert_array_equal(a, b)
    mean = np.average(X.astype(np.float64), axis=0, weights=weights)
    np.testing.assert_allclose(found[0][0], mean, rtol=1e-12)
    np.testing.assert_allclose(found[0][1], np.average((X - mean) ** 2, axis=0, weights=weights), rtol=1e-9)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize(("width", "n_components"), [(17, 4), (65, 16), (300, 64), (561, 4), (300, 256)])
def test_products_along_a_chunks_rows_are_its_matrix_product(engine, width, n_components):
    """``a @ b.T`` of a chunk's features and responsibilities, whichever way round BLAS takes it."""
    if engine == "torch":
        pytest.importorskip("torch")
    from gaussmix.engines._chunked import namespace_of

    rng = np.random.RandomState(width + n_components)
    a, b = rng.normal(size=(width, 500)), rng.uniform(size=(n_components, 500))
    xp = namespace_of(on_engine(a, engine))
    product = as_numpy(xp.products_with_rows(on_engine(a, engine), on_engine(b, engine)))
    assert product.shape == (width, n_components)
    np.testing.assert_allclose(product, a @ b.T, rtol=1e-12, atol=1e-12 * np.abs(a).sum(axis=1).max())
    c = rng.normal(size=(n_components, width))  # the namespace's own products: those of @
    for left, right in ((c, a), (c[None], a[None])):
        got = as_numpy(xp.matmul(on_engine(left, engine), on_engine(right, engine)))
        np.testing.assert_allclose(got, left @ right, rtol=1e-12, atol=1e-12 * np.abs(c).sum(axis=1).max() * 10)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_packed_products_are_each_pair_of_features_multiplied_once(engine, dtype):
    """The rows ``x_a x_b`` (a <= b) of full covariances' features, in packed order, each one rounded
    product, with the requested rows left after them; from a transposed view of rows as well (the chunks
    of data too large to keep centred)."""
    if engine == "torch":
        pytest.importorskip("torch")
    from gaussmix.covariance.layouts import packed_index
    from gaussmix.engines._chunked import namespace_of

    rng = np.random.RandomState(3)
    d, m = 7, 300
    rows, cols = packed_index(d)
    for Xt in (rng.normal(size=(d, m)).astype(dtype), rng.normal(size=(m, d)).astype(dtype).T):
        xp = namespace_of(on_engine(Xt, engine))
        out = xp.triu_products(on_engine(Xt, engine), trailing=3)
        assert tuple(out.shape) == (d * (d + 1) // 2 + 3, m)
        assert xp.dtype_of(out) == dtype
        np.testing.assert_array_equal(as_numpy(out[: rows.size]), Xt[rows] * Xt[cols])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_whitened_second_moment_leaves_out_only_rows_lost_to_rounding(dtype):
    """With many components most rows' responsibilities are 0 or negligible for a component: its second moment
    is taken over the others, and differs from the sum over all rows by less than its rounding."""
    from gaussmix._namespace import NUMPY
    from gaussmix.covariance import layouts

    rng = np.random.RandomState(0)
    d, m = 40, 600
    Xt = rng.normal(size=(d, m)).astype(dtype)
    resp = np.zeros((4, m), dtype)
    resp[0] = rng.uniform(size=m)  # every row bears on it: no gathering
    resp[1, :50] = rng.uniform(size=50)  # 50 rows, the others exactly 0
    resp[2, :50] = rng.uniform(size=50)
    resp[2, 50:] = 1e-30  # negligible beside the 50
    resp[3, :50] = rng.uniform(size=50)
    resp[3, 50:] = 1e-6  # small, but not lost to rounding: kept
    norms = np.einsum("ij,ij->j", Xt, Xt)
    eps = np.finfo(dtype).eps
    assert layouts._bearing_rows(NUMPY, resp[0] * norms, eps) is None
    assert layouts._bearing_rows(NUMPY, resp[3] * norms, eps) is None
    for k in (1, 2):
        kept = layouts._bearing_rows(NUMPY, resp[k] * norms, eps)
        np.testing.assert_array_equal(kept, np.arange(50))
    layout = layouts.FullLayout()
    second = layout.second_moment(NUMPY, Xt, None, resp)
    x64, r64 = Xt.astype(np.float64), resp.astype(np.float64)
    rows, cols = layouts.packed_index(d)
    for k in range(4):
        exact = ((x64 * r64[k]) @ x64.T)[rows, cols]
        trace = np.trace((x64 * r64[k]) @ x64.T)
        np.testing.assert_allclose(second[k], exact, rtol=0, atol=64 * eps * trace)  # the sums' own rounding


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_tied_second_moment_is_taken_in_the_first_estep_and_kept(dtype, weighted, monkeypatch):
    """A shared matrix's second moment depends on the responsibilities only through each row's total (its
    weight): the engine takes it once and keeps it, and it equals the one of each E-step's responsibilities."""
    from gaussmix._namespace import NUMPY
    from gaussmix.covariance.layouts import SharedLayout
    from gaussmix.em.kernels import estep_statistics
    from gaussmix.em.params import MixtureParams, kernel_terms

    rng = np.random.default_rng(5)
    X = (rng.normal(size=(6000, 5)) * [1.0, 2.0, 3.0, 4.0, 5.0] + 10.0).astype(dtype)
    w = rng.uniform(0.1, 3.0, 6000) if weighted else None
    structure = get_structure("tied")
    data = ChunkedData(X, w, chunk_rows=1500, n_threads=2)  # chunks too large for the compiled E-step
    taken = []
    own = SharedLayout.rows_second_moment
    monkeypatch.setattr(SharedLayout, "rows_second_moment", lambda *a: taken.append(1) or own(*a))

    def params(seed):
        r = np.random.default_rng(seed)
        factor = r.normal(size=(5, 5))
        cov = factor @ factor.T + np.eye(5)
        return MixtureParams(r.dirichlet(np.ones(3)), 10 + 3 * r.normal(size=(3, 5)), cov,
                             structure.layout.precisions_cholesky(cov))

    for seed, expect_taken in ((1, 4), (2, 0)):  # 4 chunks: taken in the first E-step only
        terms = kernel_terms(structure, params(seed), data.shift)
        got = data.estep(structure, terms)
        assert len(taken) == expect_taken
        Xt = NUMPY.centre_transposed(X, data.shift, dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            expected = estep_statistics(NUMPY, structure.layout, Xt, w, terms.on(NUMPY, dtype), dtype)
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        assert np.abs(got.second - expected.second).max() <= rtol * np.abs(expected.second).max()
        np.testing.assert_allclose(got.first, expected.first, rtol=rtol, atol=rtol * np.abs(expected.first).max())
        assert not got.second.flags.writeable
        taken.clear()

    # With a noise component the responsibilities of the Gaussian ones no longer add up to the weights
    noisy = MixtureParams(*(getattr(params(3), name) * (0.8 if name == "weights" else 1)
                            for name in ("weights", "means", "covariances", "precisions_cholesky")), noise=-20.0)
    terms = kernel_terms(structure, noisy, data.shift)
    got = data.estep(structure, terms)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = estep_statistics(NUMPY, structure.layout, NUMPY.centre_transposed(X, data.shift, dtype), w,
                                    terms.on(NUMPY, dtype), dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert np.abs(got.second - expected.second).max() <= rtol * np.abs(expected.second).max()
    assert np.abs(got.second - data.memo[("rows' second moment", np.dtype(dtype).name)]).max() > 0.01 * np.abs(
        expected.second).max()


@pytest.mark.parametrize("structure", ["diag", "spherical", "full"])
def test_row_terms_are_kept_beside_the_centred_rows_and_give_the_same_statistics(structure, monkeypatch):
    """The row terms depend on the rows alone: built in the first E-step, kept (read-only) for the next ones
    within the cache's bytes, and the statistics are those of terms built afresh."""
    from gaussmix._namespace import NUMPY
    from gaussmix.em.kernels import estep_statistics
    from gaussmix.em.params import MixtureParams, kernel_terms
    from gaussmix.engines import _chunked

    rng = np.random.default_rng(7)
    X = rng.normal(size=(8000, 6)) * [1.0, 2.0, 3.0, 1.0, 2.0, 3.0] + 5.0
    s = get_structure(structure)
    layout = type(s.layout)
    built = []
    own = layout.row_terms
    monkeypatch.setattr(layout, "row_terms", lambda *a: built.append(1) or own(*a))

    def params(seed):
        r = np.random.default_rng(seed)
        cov = {"diag": r.uniform(0.5, 3.0, (8, 6)), "spherical": r.uniform(0.5, 3.0, 8),
               "full": np.stack([f @ f.T + np.eye(6) for f in r.normal(size=(8, 6, 6))])}[structure]
        return MixtureParams(r.dirichlet(np.ones(8)), 5 + 2 * r.normal(size=(8, 6)), cov, s.layout.precisions_cholesky(cov))

    data = ChunkedData(X, None, chunk_rows=2000, n_threads=2)  # 4 chunks, too large for the compiled E-step
    for seed, expect_built in ((1, 4), (2, 0)):
        terms = kernel_terms(s, params(seed), data.shift)
        got = data.estep(s, terms)
        assert len(built) == expect_built
        Xt = NUMPY.centre_transposed(X, data.shift, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            expected = estep_statistics(NUMPY, s.layout, Xt, None, terms.on(NUMPY, np.float64), np.float64)
        for name in ("counts", "first", "second"):
            a, b = getattr(got, name), getattr(expected, name)
            assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max(), name
        built.clear()
    kept = [v for k, v in data._centred.items() if len(k) == 3]
    assert len(kept) == 4 and not any(v.flags.writeable for v in kept)

    # Data beyond the cache's bytes: neither the centred rows nor the row terms are kept
    monkeypatch.setattr(_chunked, "CENTRED_CACHE_BYTES", X.nbytes - 1)
    small = ChunkedData(X, None, chunk_rows=2000, n_threads=2)
    for _ in range(2):
        small.estep(s, kernel_terms(s, params(1), small.shift))
        assert len(built) == 4
        built.clear()
