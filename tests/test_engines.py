"""Every engine against the NumPy engine: same data, same initialisation, same answer.

The torch engine runs on torch's CPU build here (and on a GPU where one is
present: set ``GAUSSMIX_TEST_DEVICE=cuda``); the Dask engine on the threaded
scheduler, on a two-worker ``LocalCluster``, with a worker killed mid-fit,
and on data read from disk.
"""

import os
import signal
import subprocess
import sys
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import torch
from conftest import DEVICE, STRUCTURES, as_numpy, on_engine

import gaussmix.em.init as init_module
from gaussmix import GaussianMixture, InvalidParameterError, MissingDependencyError
from gaussmix.datasets import make_mixture
from gaussmix.em.init import INIT_METHODS

INITS = INIT_METHODS  # every method by name
MEANS = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 4.0]])


@pytest.fixture(scope="module")
def rows():
    X, _ = make_mixture(600, [0.4, 0.35, 0.25], MEANS, np.stack([np.eye(3)] * 3), random_state=0)
    return X


def fitted(X, engine="auto", **params):
    sample_weight = params.pop("sample_weight", None)
    settings = dict(n_components=3, random_state=0, max_iter=15, tol=0.0)
    settings.update(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged with tol=0
        return GaussianMixture(engine=engine, **settings).fit(X, sample_weight=sample_weight)


def assert_same_fit(a, b, rtol, up_to_order=False):
    """Same parameters (with ``up_to_order``: after sorting the components of both by their means)."""
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        x, y = getattr(a, name), getattr(b, name)
        assert isinstance(y, np.ndarray)
        if up_to_order and (a.covariance_type != "tied" or name in ("weights_", "means_")):
            x, y = x[np.lexsort(a.means_.T[::-1])], y[np.lexsort(b.means_.T[::-1])]
        np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(x))), err_msg=name)
    assert b.n_iter_ == a.n_iter_
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=rtol)


@pytest.mark.parametrize("engine", ["torch", "dask"])
@pytest.mark.parametrize("covariance_type", STRUCTURES)
@pytest.mark.parametrize("init", INITS)
def test_same_parameters_as_numpy(rows, engine, covariance_type, init):
    reference = fitted(rows, "numpy", covariance_type=covariance_type, init_params=init)
    other = fitted(on_engine(rows, engine), covariance_type=covariance_type, init_params=init)
    assert_same_fit(reference, other, 1e-8)


@pytest.mark.parametrize("covariance_type", STRUCTURES)
def test_torch_float32_within_1e3(rows, covariance_type):
    reference = fitted(rows.astype(np.float32), "numpy", covariance_type=covariance_type)
    other = fitted(on_engine(rows, "torch", dtype=np.float32), covariance_type=covariance_type)
    assert other.means_.dtype == np.float32
    assert_same_fit(reference, other, 1e-3)


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_numpy_input_runs_on_the_named_engine(rows, engine):
    reference = fitted(rows, "numpy")
    assert_same_fit(reference, fitted(rows, engine), 1e-8)


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_large_data_initialise_from_a_sample(rows, engine, monkeypatch):
    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 200)  # 600 rows are "large"
    for init in INITS:
        reference = fitted(rows, "numpy", init_params=init)
        assert_same_fit(reference, fitted(on_engine(rows, engine), init_params=init), 1e-8)


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_sample_weight_n_init_and_means_init(rows, engine):
    weights = np.random.RandomState(1).uniform(0, 3, rows.shape[0])
    weights[:20] = 0.0
    for params in (dict(sample_weight=weights), dict(n_init=3), dict(means_init=MEANS + 0.5)):
        reference = fitted(rows, "numpy", **params)
        # Restarts that reach the same optimum in another component order tie to rounding:
        # which one is kept may differ.
        assert_same_fit(reference, fitted(on_engine(rows, engine), **params), 1e-8, up_to_order="n_init" in params)


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_warm_start_and_callback(rows, engine):
    seen = {"numpy": [], engine: []}
    models = {}
    for name, X in (("numpy", rows), (engine, on_engine(rows, engine))):
        model = GaussianMixture(3, max_iter=3, tol=0.0, warm_start=True, random_state=0, engine=name,
                                callback=lambda info, name=name: seen[name].append(info.lower_bound))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
            model.fit(X)  # continues from the first fit's parameters
        models[name] = model
    assert len(seen[engine]) == 2 * 4  # iteration 0 and 3 iterations, twice
    assert seen[engine][4] == pytest.approx(seen[engine][3], rel=1e-12)  # the warm start resumes
    np.testing.assert_allclose(seen[engine], seen["numpy"], rtol=1e-10)
    assert_same_fit(models["numpy"], models[engine], 1e-8)


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_predictions_match_and_come_back_in_the_inputs_kind(rows, engine):
    model = fitted(rows, "numpy", covariance_type="diag")
    X = on_engine(rows, engine)
    expected = {
        "predict": model.predict(rows),
        "predict_proba": model.predict_proba(rows),
        "score_samples": model.score_samples(rows),
    }
    for method, values in expected.items():
        result = getattr(model.set_params(engine="auto"), method)(X)
        if engine == "torch":
            assert isinstance(result, torch.Tensor) and result.device.type == torch.device(DEVICE).type
        else:
            assert isinstance(result, da.Array)  # lazy
        np.testing.assert_allclose(as_numpy(result), values, rtol=1e-10, atol=1e-12, err_msg=method)
    assert model.score(X) == pytest.approx(model.score(rows), rel=1e-12)
    assert model.bic(X) == pytest.approx(model.bic(rows), rel=1e-12)
    assert model.aic(X) == pytest.approx(model.aic(rows), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged with tol=0
        labels = fitted(X, engine, covariance_type="diag").fit_predict(X)
    np.testing.assert_array_equal(as_numpy(labels), expected["predict"])
    sample, component = model.sample(50)
    assert sample.shape == (50, 3) and component.shape == (50,)


def test_dask_result_does_not_depend_on_chunking(rows):
    reference = fitted(rows, "numpy", covariance_type="full")
    for chunks in (600, 250, 64, 7):
        other = fitted(on_engine(rows, "dask", chunks=chunks), covariance_type="full")
        assert_same_fit(reference, other, 1e-10)


def test_dask_dataframe_input(rows):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    frame = dd.from_pandas(pd.DataFrame(rows, columns=["a", "b", "c"]), npartitions=4)
    model = fitted(frame)
    assert_same_fit(fitted(rows, "numpy"), model, 1e-8)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c"])  # as for a pandas DataFrame
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the blocks of a named frame raise no feature-name warning
        labels = model.predict(frame).compute()
    np.testing.assert_array_equal(labels, model.predict(pd.DataFrame(rows, columns=["a", "b", "c"])))
    renamed = dd.from_pandas(pd.DataFrame(rows, columns=["a", "b", "z"]), npartitions=4)
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(renamed)


def test_torch_streams_data_from_the_host(rows):
    """Rows left on the host and copied chunk by chunk give the same fit."""
    from gaussmix.engines._chunked import ChunkedData
    from gaussmix.engines._torch import torch_namespace

    xp = torch_namespace(DEVICE)
    streamed = ChunkedData(rows, None, chunk_rows=64, xp=xp)
    resident = ChunkedData(rows, None, chunk_rows=64)
    assert streamed._streamed and not resident._streamed
    from gaussmix.covariance import get_structure

    model = fitted(rows, "numpy")
    params = model._params_from_attributes()
    from gaussmix.em.params import kernel_terms

    structure = get_structure("full")
    a = resident.estep(structure, kernel_terms(structure, params, resident.shift))
    b = streamed.estep(structure, kernel_terms(structure, params, streamed.shift))
    np.testing.assert_allclose(b.second, a.second, rtol=1e-12)
    assert b.log_likelihood == pytest.approx(a.log_likelihood, rel=1e-13)


@pytest.mark.parametrize("covariance_type", STRUCTURES)
def test_torch_on_the_cpu_splits_rows_over_worker_threads_as_numpy_does(rows, covariance_type, monkeypatch):
    """On the CPU the torch engine runs chunks on the NumPy engine's worker threads, each with one torch thread
    (restored after the pass), and its E-step's elementwise passes as the compiled loop on the tensors' memory:
    the same statistics as the NumPy engine's, with one worker or two."""
    from gaussmix.covariance import get_structure
    from gaussmix.em.params import kernel_terms
    from gaussmix.engines import _chunked
    from gaussmix.engines._chunked import ChunkedData
    from gaussmix.engines._torch import torch_namespace

    monkeypatch.setattr(_chunked, "PARALLEL_ROWS", 0)  # threads even on a few rows
    xp = torch_namespace("cpu")
    structure = get_structure(covariance_type)
    params = fitted(rows, "numpy", covariance_type=covariance_type)._params_from_attributes()
    reference = ChunkedData(rows, None, chunk_rows=64)
    expected = reference.estep(structure, kernel_terms(structure, params, reference.shift))
    threads = torch.get_num_threads()
    seen = []
    for workers in (1, 2):
        data = ChunkedData(torch.as_tensor(rows), None, chunk_rows=64, n_threads=workers, xp=xp)
        assert data.n_threads == workers
        inner = data.xp.one_thread_each

        def watched(inner=inner):
            seen.append(workers)
            return inner()

        monkeypatch.setattr(data.xp, "one_thread_each", watched, raising=False)
        got = data.estep(structure, kernel_terms(structure, params, data.shift))
        np.testing.assert_allclose(got.second, expected.second, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.first, expected.first, rtol=1e-10, atol=1e-10)
        assert got.log_likelihood == pytest.approx(expected.log_likelihood, rel=1e-12)
        assert torch.get_num_threads() == threads
    assert set(seen) == {1, 2}  # every pass of both entered it
    with xp.one_thread_each():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads


def test_engine_and_device_are_checked(rows):
    with pytest.raises(InvalidParameterError, match="engine"):
        GaussianMixture(2, engine="gpu").fit(rows)
    with pytest.raises(InvalidParameterError, match="torch engine only"):
        GaussianMixture(2, engine="numpy", device="cpu").fit(rows)
    with pytest.raises(InvalidParameterError, match="not a torch device"):
        GaussianMixture(2, device="warp-drive").fit(rows)
    with pytest.raises(InvalidParameterError, match="device 'cuda:99' cannot be used here"):
        GaussianMixture(2, device="cuda:99").fit(rows)


def test_complex_and_sparse_tensors_are_refused(rows):
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianMixture(2).fit(torch.tensor(rows, dtype=torch.complex128))
    with pytest.raises(ValueError, match="Complex data not supported"):  # as for NumPy input
        GaussianMixture(2).fit(rows.astype(np.complex128))
    with pytest.raises(ValueError, match="sparse tensor .* dense data is required"):
        GaussianMixture(2).fit(torch.tensor(rows).to_sparse())
    model = fitted(rows, "numpy")
    with pytest.raises(ValueError, match="Complex data not supported"):
        model.predict(torch.tensor(rows, dtype=torch.complex128))


@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_bad_input_on_every_engine(rows, engine):
    bad = rows.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        GaussianMixture(2, engine=engine).fit(on_engine(bad, engine))
    model = fitted(on_engine(rows, engine))
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.predict(on_engine(rows[:, :2], engine))
    before = model.means_.copy()
    with pytest.raises(ValueError):
        model.fit(on_engine(bad, engine))
    np.testing.assert_array_equal(model.means_, before)  # a failed fit loses nothing


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_gaussmix_imports_neither_torch_nor_dask():
    result = run_python(
        "import sys, numpy as np\n"
        "import gaussmix\n"
        "from gaussmix import GaussianMixture\n"
        "X = np.random.RandomState(0).normal(size=(200, 2))\n"
        "GaussianMixture(2).fit(X).predict(X)\n"
        "print(sorted(m for m in ('torch', 'dask') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("engine,extra", [("torch", "torch"), ("dask", "dask")])
def test_missing_library_says_what_to_install(engine, extra):
    result = run_python(
        "import sys, numpy as np\n"
        "class Missing:\n"  # an import system on which the library is not installed
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] == {engine!r}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from gaussmix import GaussianMixture, MissingDependencyError\n"
        "try:\n"
        f"    GaussianMixture(2, engine={engine!r}).fit(np.random.RandomState(0).normal(size=(50, 2)))\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install 'gaussmix[{extra}]'" in result.stdout
    assert issubclass(MissingDependencyError, ImportError)


# -- Dask on a cluster ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as local, distributed.Client(local) as client:
        yield local, client


def test_local_cluster_same_as_numpy(rows, cluster):
    _, client = cluster
    assert len(client.scheduler_info()["workers"]) == 2
    for covariance_type in STRUCTURES:
        reference = fitted(rows, "numpy", covariance_type=covariance_type)
        other = fitted(on_engine(rows, "dask", chunks=50), covariance_type=covariance_type)
        assert_same_fit(reference, other, 1e-8)


def test_fit_survives_a_worker_killed_mid_fit(rows, cluster):
    """Blocks held by a killed worker are recomputed; the fit finishes with the same result."""
    local, client = cluster
    X = client.persist(on_engine(rows, "dask", chunks=50))
    reference = fitted(rows, "numpy", max_iter=10)
    killed = []

    def kill_one(info):
        if info.iteration == 4 and not killed:
            pids = client.run(os.getpid)
            victim = sorted(pids)[0]
            os.kill(pids[victim], signal.SIGKILL)  # the worker process dies at once, with its blocks
            killed.append(victim)

    model = fitted(X, max_iter=10, callback=kill_one)
    assert killed
    assert_same_fit(reference, model, 1e-8)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next test


def test_out_of_core_zarr(rows, tmp_path, monkeypatch):
    """Rows read block by block from a chunked on-disk array, never gathered whole."""
    zarr = pytest.importorskip("zarr")
    from gaussmix.engines._dask import DaskData

    big = np.concatenate([rows + 0.01 * i for i in range(10)])  # 6,000 rows
    store = zarr.open_array(str(tmp_path / "rows.zarr"), mode="w", shape=big.shape, chunks=(500, 3), dtype="f8")
    store[:] = big
    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 1000)

    def refuse(self):
        raise AssertionError("the whole data were gathered")

    monkeypatch.setattr(DaskData, "in_memory", refuse)
    on_disk = da.from_zarr(str(tmp_path / "rows.zarr"))
    assert on_disk.numblocks == (12, 1)
    model = fitted(on_disk, covariance_type="full")
    assert_same_fit(fitted(big, "numpy", covariance_type="full"), model, 1e-8)
    labels = model.predict(on_disk)
    assert isinstance(labels, da.Array) and as_numpy(labels).shape == (6000,)


def test_out_of_core_parquet(rows, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    for part in range(3):
        frame.iloc[part * 200 : (part + 1) * 200].to_parquet(tmp_path / f"part{part}.parquet")
    lazy = dd.read_parquet(str(tmp_path / "*.parquet"))
    assert_same_fit(fitted(rows, "numpy"), fitted(lazy), 1e-8)


def test_default_scheduler_without_client(rows):
    with dask.config.set(scheduler="threads"):
        assert_same_fit(fitted(rows, "numpy"), fitted(on_engine(rows, "dask")), 1e-8)


# -- estimators built on GaussianMixture ---------------------------------------------------
@pytest.mark.parametrize("engine", ["torch", "dask"])
def test_selector_on_every_engine(rows, engine):
    from gaussmix import GaussianMixtureSelector

    # k-means starts keep this test short (short-EM starts on every engine: test_starts.py)
    settings = dict(n_components=[1, 2, 3, 4], covariance_types=["full", "diag"], n_init=2, init_params="kmeans",
                    random_state=0)
    reference = GaussianMixtureSelector(**settings).fit(rows)
    other = GaussianMixtureSelector(**settings).fit(on_engine(rows, engine))
    assert other.best_params_ == reference.best_params_ == {"n_components": 3, "covariance_type": "diag"}
    assert other.best_estimator_.engine == engine
    np.testing.assert_allclose(other.results_["bic"], reference.results_["bic"], rtol=1e-8)
    np.testing.assert_allclose(other.results_["icl"], reference.results_["icl"], rtol=1e-8)
    np.testing.assert_array_equal(as_numpy(other.predict(on_engine(rows, engine))), reference.predict(rows))
    assert other.score(on_engine(rows, engine)) == pytest.approx(reference.score(rows), rel=1e-8)


def test_outliers_and_classifier_take_the_engine_of_their_mixture(rows):
    from gaussmix import GaussianMixtureClassifier, GaussianMixtureOutlierDetector

    detector = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0, engine="torch")).fit(rows)
    reference = GaussianMixtureOutlierDetector(GaussianMixture(3, random_state=0)).fit(rows)
    assert detector.mixture_.engine == "torch"
    assert detector.offset_ == pytest.approx(reference.offset_, rel=1e-8)
    np.testing.assert_array_equal(detector.predict(rows), reference.predict(rows))
    y = (rows[:, 1] > 3).astype(int)
    classifier = GaussianMixtureClassifier(GaussianMixture(2, random_state=0, engine="dask")).fit(rows, y)
    assert all(model.engine == "dask" for model in classifier.models_.values())
    expected = GaussianMixtureClassifier(GaussianMixture(2, random_state=0)).fit(rows, y)
    np.testing.assert_allclose(classifier.predict_proba(rows), expected.predict_proba(rows), rtol=1e-8, atol=1e-12)


def test_selector_refuses_cross_validation_on_dask(rows):
    from gaussmix import GaussianMixtureSelector

    with pytest.raises(InvalidParameterError, match="not available for Dask"):
        GaussianMixtureSelector(n_components=2, criterion="cv").fit(on_engine(rows, "dask"))


def test_command_line_fit_on_each_engine(rows, tmp_path):
    from gaussmix import load
    from gaussmix.cli import main

    data = tmp_path / "rows.csv"
    np.savetxt(data, rows, delimiter=",", header="a,b,c", comments="")
    means = {}
    for engine in ("numpy", "torch", "dask"):
        out = tmp_path / f"{engine}.npz"
        assert main(["fit", str(data), "-o", str(out), "-k", "3", "--seed", "0", "--engine", engine, "-q"]) == 0
        means[engine] = load(out).means_
    np.testing.assert_allclose(means["torch"], means["numpy"], rtol=1e-8)
    np.testing.assert_allclose(means["dask"], means["numpy"], rtol=1e-8)


def test_command_line_device_needs_torch(rows, tmp_path, capsys):
    from gaussmix.cli import main

    data = tmp_path / "rows.csv"
    np.savetxt(data, rows, delimiter=",")
    argv = ["fit", str(data), "-o", str(tmp_path / "m.npz"), "--device", "cpu", "-q"]
    assert main([*argv, "--engine", "dask"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch engine only" in err
    assert main(argv) == 0  # --device alone chooses the torch engine


def test_model_fitted_on_torch_saves_and_loads(rows, tmp_path):
    from gaussmix import load

    model = fitted(torch.tensor(rows), "torch", device=torch.device("cpu"))
    model.save(tmp_path / "m.npz")
    again = load(tmp_path / "m.npz")
    assert again.device == "cpu" and again.engine == "torch"
    np.testing.assert_array_equal(again.predict(rows), as_numpy(model.predict(rows)))


def test_tensor_that_requires_grad(rows):
    X = torch.tensor(rows, requires_grad=True)
    model = fitted(X)
    assert_same_fit(fitted(rows, "numpy"), model, 1e-8)
    assert not model.score_samples(X).requires_grad


def test_dask_rows_of_unknown_count(rows):
    """A Dask array filtered by a lazy condition has blocks of unknown length until computed."""
    X = on_engine(rows, "dask")
    kept = X[X[:, 0] > -100.0]  # every row, but Dask cannot know that without computing
    assert any(np.isnan(c) for c in kept.chunks[0])
    assert_same_fit(fitted(rows, "numpy"), fitted(kept), 1e-8)


def test_dask_predictions_refuse_non_finite_rows(rows):
    """Blocks are checked as they are computed, as scikit-learn checks arrays."""
    import dask.array as da

    model = fitted(rows)  # engine="auto": Dask input is evaluated block by block
    bad = rows.copy()
    bad[3, 1] = np.nan
    bad[250, 0] = np.inf
    lazy = da.from_array(bad, chunks=(97, 3))
    for method in ("predict", "predict_proba", "score_samples"):
        with pytest.raises(ValueError, match="NaN or infinity"):
            getattr(model, method)(lazy).compute()
    for method in ("score", "bic"):
        with pytest.raises(ValueError, match="NaN or infinity"):
            getattr(model, method)(lazy)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "VEV"])
def test_statistics_of_hard_labels_are_those_of_one_hot_responsibilities(namespace, dtype, covariance_type,
                                                                          monkeypatch):
    """Labels say which component each row belongs to; with a matrix per component and many features their
    moments are taken component by component on the component's rows: the same statistics (float64 sums)
    as one-hot responsibilities, with sample weights (some 0) and a component without rows."""
    from gaussmix.covariance import get_structure
    from gaussmix.em.init import LabelResponsibilities, NearestResponsibilities, _one_hot
    from gaussmix.engines import _chunked
    from gaussmix.engines._chunked import ChunkedData
    from gaussmix.engines._torch import torch_namespace

    rng = np.random.RandomState(6)
    n, d, K = 700, 20, 5
    X = (rng.normal(size=(n, d)) * np.linspace(0.5, 3.0, d) + 10.0).astype(dtype)
    weights = rng.choice([0.0, 0.5, 1.0, 2.0], size=n)
    labels = rng.choice([0, 1, 3, 4], size=n)  # component 2 has no rows
    xp = torch_namespace("cpu") if namespace == "torch" else None
    structure = get_structure(covariance_type)
    taken = []
    by_label = _chunked.labelled_chunk_statistics
    monkeypatch.setattr(_chunked, "labelled_chunk_statistics", lambda *args: taken.append(1) or by_label(*args))
    for w in (None, weights):
        data = ChunkedData(torch.as_tensor(X) if xp else X, w, chunk_rows=128, xp=xp)

        def one_hot(source, start, stop, Xc):  # the same responsibilities, without the labels
            return _one_hot(source, labels[start:stop], K)

        expected = data.statistics(structure, one_hot, K)
        got = data.statistics(structure, LabelResponsibilities(labels, K), K)
        for name in ("counts", "first", "second"):
            np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-12, atol=1e-9)
        assert got.total_weight == pytest.approx(expected.total_weight)
        assert np.all(got.counts[2] == 0) and np.all(got.first[2] == 0)
        centers = as_numpy(X[:K]).astype(np.float64)
        nearest = NearestResponsibilities(centers)
        got = data.statistics(structure, nearest, K)
        expected = data.statistics(structure, lambda source, a, b, Xc: nearest(source, a, b, Xc), K)
        np.testing.assert_allclose(got.second, expected.second, rtol=1e-12, atol=1e-9)
    assert bool(taken) == (covariance_type in ("full", "VEV"))  # one matrix per component
    assert _chunked.LABELLED_MIN_FEATURES <= d
