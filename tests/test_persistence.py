"""Model files: identical predictions after a round trip; every damaged file is refused."""

import json
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest

import gaussmix
from gaussmix import GaussianMixture, ModelFileError


@pytest.fixture
def fitted(blobs, structure):
    return GaussianMixture(3, covariance_type=structure, random_state=0).fit(blobs[0])


def test_round_trip_predicts_identically(fitted, blobs, tmp_path):
    X, _ = blobs
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = gaussmix.load(path)
    assert type(loaded) is GaussianMixture
    assert loaded.get_params() == fitted.get_params()
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
                 "converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted, name), err_msg=name)
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.sample(20)[0], fitted.sample(20)[0])
    assert loaded.bic(X) == fitted.bic(X)


def test_round_trip_float32_names_and_init_arrays(blobs, tmp_path):
    import pandas as pd

    X = pd.DataFrame(blobs[0].astype(np.float32), columns=["a", "b", "c"])
    model = GaussianMixture(2, weights_init=[0.3, 0.7], means_init=[[0, 0, 0], [5, 5, 5]], random_state=4)
    model.fit(X)
    model.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    assert loaded.means_.dtype == np.float32
    np.testing.assert_array_equal(loaded.feature_names_in_, ["a", "b", "c"])
    np.testing.assert_array_equal(loaded.weights_init, [0.3, 0.7])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_unserialisable_parameters_are_stored_as_none(blobs, tmp_path):
    model = GaussianMixture(2, random_state=np.random.RandomState(0), callback=lambda info: None).fit(blobs[0])
    model.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    assert loaded.random_state is None and loaded.callback is None


def test_file_is_plain_arrays_and_json(fitted, tmp_path):
    path = tmp_path / "m.npz"
    fitted.save(path)
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    expected = ["metadata", "weights_", "means_", "covariances_", "precisions_cholesky_", "collapsed_components_"]
    assert names == sorted(f"{n}.npy" for n in expected)
    with np.load(path, allow_pickle=False) as archive:  # readable without pickle
        metadata = json.loads(archive["metadata"].tobytes())
    assert metadata["format"] == "gaussmix-model" and metadata["format_version"] == 2
    assert metadata["model"]["estimator"] == "GaussianMixture"
    assert metadata["model"]["params"]["covariance_type"] == fitted.covariance_type
    assert metadata["model"]["state"]["means_"] == {"array": "means_"}


def test_version_1_files_still_load(fitted, blobs, tmp_path):
    """A file in the first format (as gaussmix 0.1 wrote it) loads and predicts identically."""
    import hashlib

    arrays = {"weights": fitted.weights_, "means": fitted.means_, "covariances": fitted.covariances_,
              "precisions_cholesky": fitted.precisions_cholesky_}
    params = {k: v for k, v in fitted.get_params().items() if k != "callback"}
    metadata = {
        "format": "gaussmix-model", "format_version": 1, "gaussmix_version": "0.1.0", "estimator": "GaussianMixture",
        "params": {**params, "callback": None},
        "fitted": {"converged": True, "n_iter": int(fitted.n_iter_), "lower_bound": float(fitted.lower_bound_),
                   "lower_bounds": [float(b) for b in fitted.lower_bounds_], "n_features_in": 3,
                   "feature_names_in": ["a", "b", "c"]},
        "arrays": {n: {"dtype": str(a.dtype), "shape": list(a.shape),
                       "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}
                   for n, a in arrays.items()},
    }
    blob = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    np.savez(tmp_path / "v1.npz", metadata=blob, **arrays)
    loaded = gaussmix.load(tmp_path / "v1.npz")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        np.testing.assert_array_equal(loaded.predict_proba(blobs[0]), fitted.predict_proba(blobs[0]))
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    assert loaded.collapsed_components_.size == 0


def test_pickle_still_works(fitted, blobs):
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone.predict(blobs[0]), fitted.predict(blobs[0]))


def test_save_unfitted_raises():
    with pytest.raises(gaussmix.NotFittedError):
        GaussianMixture().save("never-written.npz")
    assert not os.path.exists("never-written.npz")


def test_failed_save_keeps_the_old_file(fitted, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    fitted.save(path)
    before = path.read_bytes()

    def broken_savez(handle, **arrays):
        handle.write(b"PK\x03\x04partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def rewrite(source, target, *, metadata=None, arrays=None, fix_checksums=True):
    """Copy a model file, changing metadata entries (dotted paths) and arrays."""
    import hashlib

    with np.load(source, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    meta = json.loads(contents.pop("metadata").tobytes())
    for key, value in (metadata or {}).items():
        *parents, field = key.split(".")
        section = meta
        for parent in parents:
            section = section[parent]
        section[field] = value
    for name, value in (arrays or {}).items():
        if value is None:
            contents.pop(name)
        else:
            contents[name] = value
            if fix_checksums:
                meta["arrays"][name] = {
                    "dtype": str(value.dtype), "shape": list(value.shape),
                    "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                }
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(target, "wb") as handle:
        np.savez(handle, metadata=blob, **contents)
    return target


@pytest.mark.parametrize("structure", ["full"])
def test_damaged_files(fitted, tmp_path):
    good = tmp_path / "good.npz"
    fitted.save(good)
    data = good.read_bytes()
    w = fitted.weights_
    cases = {
        "missing": (tmp_path / "absent.npz", "no such file"),
        "directory": (tmp_path, "is a directory"),
        "empty": (tmp_path / "empty.npz", "not a gaussmix model file \\(empty\\)"),
        "text": (tmp_path / "text.npz", "not a zip archive"),
        "truncated": (tmp_path / "cut.npz", "damaged or truncated"),
        "flipped byte": (tmp_path / "flip.npz", "damaged|checksum|CRC"),
        "foreign npz": (tmp_path / "foreign.npz", "no metadata member"),
        "bare npy": (tmp_path / "bare.npz", "not a zip archive"),
    }
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("weights = [0.5, 0.5]\n")
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    offset = data.find(np.ascontiguousarray(fitted.means_).tobytes())
    flipped[offset + 3] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    np.savez(tmp_path / "foreign.npz", weights=w)
    np.save(tmp_path / "bare.npy", w)
    os.replace(tmp_path / "bare.npy", tmp_path / "bare.npz")
    for name, (path, message) in cases.items():
        expect_refused(path, message, name)
    # A flipped byte is caught by the zip CRC or by our checksum, never loads.

    state = "model.state."
    rewritten = {
        "tampered weights": (dict(arrays={"weights_": w[::-1].copy()}, fix_checksums=False), "fails its checksum"),
        "weights off simplex": (dict(arrays={"weights_": w * 2}), "sum to 1"),
        "negative weight": (dict(arrays={"weights_": np.r_[1.5, -0.5, w[2:]]}), "non-negative"),
        "NaN mean": (dict(arrays={"means_": np.where(np.eye(3, dtype=bool), np.nan, fitted.means_)}), "NaN"),
        "wrong shape": (dict(arrays={"means_": fitted.means_[:2]}), "means has shape"),
        "not positive definite": (
            dict(arrays={"covariances_": -fitted.covariances_}), "not symmetric positive definite"),
        "inconsistent factor": (
            dict(arrays={"precisions_cholesky_": fitted.precisions_cholesky_ * 2}), "does not match"),
        "missing array": (dict(arrays={"means_": None}), "arrays do not match the metadata: means_"),
        "pickled array": (dict(arrays={"weights_": np.array([{"x": 1}], dtype=object)}), "unsupported dtype object"),
        "newer format": (dict(metadata={"format_version": 3}), "model format 3 .* upgrade gaussmix"),
        "other format": (dict(metadata={"format": "something-else"}), "wrong format marker"),
        "bad hyper-parameter": (dict(metadata={"model.params.n_components": 0}),
                                "n_components must be an integer >= 1"),
        "unknown hyper-parameter": (dict(metadata={"model.params.exec": "rm -rf /"}), "unknown hyper-parameters"),
        "unknown estimator": (dict(metadata={"model.estimator": "os.system"}), "unsupported estimator 'os.system'"),
        "feature count": (dict(metadata={state + "n_features_in_": 7}), "n_features_in"),
        "feature names": (dict(metadata={state + "feature_names_in_": {"array": "weights_", "object": True}}),
                          "not an array of strings"),
        "lower bounds": (dict(metadata={state + "lower_bounds_": ["x"]}), "lower_bounds"),
        "missing state": (dict(metadata={"model.state": {"weights_": {"array": "weights_"}}}), "state lacks"),
        "NaN literal": (dict(metadata={state + "lower_bound_": float("nan")}), "NaN is not allowed"),
    }
    for name, (changes, message) in rewritten.items():
        expect_refused(rewrite(good, tmp_path / "bad.npz", **changes), message, name)


def expect_refused(path, message, case):
    try:
        with pytest.raises(ModelFileError, match=message):
            gaussmix.load(path)
    except BaseException as exc:
        raise AssertionError(f"case {case!r}: {exc}") from None


def test_errors_are_value_errors_naming_the_file(tmp_path):
    assert issubclass(ModelFileError, ValueError)
    with pytest.raises(ModelFileError, match=str(tmp_path / "x.npz")):
        gaussmix.load(tmp_path / "x.npz")


# -- hostile files: every limit is checked before memory is spent ---------------------------
def _zip(path, members, deflated=()):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED)
    return path


def _npy(array):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _metadata(model=None, arrays=None, text=None):
    meta = {"format": "gaussmix-model", "format_version": 2, "model": model or {}, "arrays": arrays or {}}
    return _npy(np.frombuffer((text or json.dumps(meta)).encode(), dtype=np.uint8))


def test_hostile_files_are_refused_cheaply(tmp_path):
    import tracemalloc

    header = np.lib.format
    huge_header = bytearray(_npy(np.zeros(4)))
    # An .npy header claiming 10^6 x 10^6 float64 (8 TB) in front of 32 bytes of data.
    claimed = header.header_data_from_array_1_0(np.zeros(4))
    claimed["shape"] = (10**6, 10**6)
    import io

    buffer = io.BytesIO()
    header.write_array_header_1_0(buffer, claimed)
    huge_header = buffer.getvalue() + np.zeros(4).tobytes()
    bomb = b"\0" * (256 << 20)  # 256 MiB of zeros, about 256 KB deflated
    cases = {
        "deeply nested JSON": (
            _zip(tmp_path / "deep.npz", {"metadata.npy": _metadata(text="[" * 100_000 + "]" * 100_000)}),
            "nested more than 64 levels"),
        "oversized metadata": (_zip(tmp_path / "big.npz", {"metadata.npy": _npy(np.zeros(20 << 20, np.uint8))}),
                               "at most .* are read"),
        "raw bytes member": (_zip(tmp_path / "raw.npz", {"metadata.npy": _metadata(arrays={"weights_": {"shape": [2]}}),
                                                        "weights_.npy": b"just some bytes"}),
                             "member 'weights_' is not a NumPy array"),
        "huge shape header": (_zip(tmp_path / "shape.npz", {"metadata.npy": _metadata(arrays={"means_": {"shape": []}}),
                                                           "means_.npy": huge_header}),
                              r"claims shape \(1000000, 1000000\)"),
        "zip bomb": (_zip(tmp_path / "bomb.npz",
                          {"metadata.npy": _metadata(arrays={"means_": {"shape": [256 << 20], "dtype": "|u1"}}),
                           "means_.npy": bomb}, deflated=["means_.npy"]), "member 'means_' is compressed"),
        "raw bytes metadata": (_zip(tmp_path / "rawmeta.npz", {"metadata.npy": b"{}"}),
                               "member 'metadata' is not a NumPy array"),
    }
    assert os.path.getsize(tmp_path / "bomb.npz") < 2 << 20
    for case, (path, message) in cases.items():
        tracemalloc.start()
        try:
            expect_refused(path, message, case)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 64 << 20, (case, peak)


# -- every estimator saves and loads the same way --------------------------------------------
def _same_predictions(a, b, X, methods):
    for method in methods:
        np.testing.assert_array_equal(getattr(a, method)(X), getattr(b, method)(X), err_msg=method)


def test_selector_round_trip(tmp_path):
    import pandas as pd

    from gaussmix import GaussianMixtureSelector
    from gaussmix.datasets import load_faithful

    X = load_faithful().data
    selector = GaussianMixtureSelector(range(1, 4), covariance_types=["tied", "diag"], n_init=2,
                                       random_state=0).fit(X)
    selector.save(tmp_path / "s.npz")
    loaded = gaussmix.load(tmp_path / "s.npz")
    assert type(loaded) is GaussianMixtureSelector and loaded.best_params_ == selector.best_params_
    assert loaded.n_components == range(1, 4) and loaded.get_params() == selector.get_params()
    pd.testing.assert_frame_equal(loaded.results_, selector.results_)
    _same_predictions(loaded, selector, X, ("predict", "predict_proba", "score_samples"))


def test_outlier_detector_round_trip(tmp_path):
    from gaussmix import GaussianMixtureOutlierDetector

    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(6, 0.3, (6, 2)), [[9.0, -9.0]]])
    detector = GaussianMixtureOutlierDetector(GaussianMixture(2, random_state=0), min_weight=0.05,
                                              contamination=0.02).fit(X)
    detector.save(tmp_path / "d.npz")
    loaded = gaussmix.load(tmp_path / "d.npz")
    assert type(loaded) is GaussianMixtureOutlierDetector
    assert isinstance(loaded.mixture, GaussianMixture) and loaded.mixture.get_params() == detector.mixture.get_params()
    assert loaded.offset_ == detector.offset_ and list(loaded.rare_components_) == list(detector.rare_components_)
    _same_predictions(loaded, detector, X, ("predict", "score_samples", "decision_function", "predict_component"))


@pytest.mark.parametrize("labels", ["strings", "integers"])
@pytest.mark.parametrize("model_type", ["MclustDA", "EDDA"])
def test_classifier_round_trip(tmp_path, labels, model_type):
    from sklearn.datasets import load_iris

    from gaussmix import GaussianMixtureClassifier, GaussianMixtureSelector

    X, y = load_iris(return_X_y=True)
    if labels == "strings":
        y = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    mixture = None
    if model_type == "MclustDA":
        mixture = {label: GaussianMixture(2, random_state=0) for label in np.unique(y)}
        mixture[np.unique(y)[0]] = GaussianMixtureSelector(range(1, 3), covariance_types=["full"])
    clf = GaussianMixtureClassifier(mixture, model_type=model_type, random_state=0).fit(X, y)
    clf.save(tmp_path / "c.npz")
    loaded = gaussmix.load(tmp_path / "c.npz")
    assert type(loaded) is GaussianMixtureClassifier
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    _same_predictions(loaded, clf, X, ("predict", "predict_proba"))
    if model_type == "EDDA":
        assert loaded.structure_ == clf.structure_ and loaded.edda_bic_ == clf.edda_bic_
    else:
        assert set(loaded.mixture) == set(clf.mixture)


def test_damaged_nested_estimator_is_refused(tmp_path):
    from gaussmix import GaussianMixtureOutlierDetector

    X = np.random.RandomState(0).normal(size=(100, 2))
    GaussianMixtureOutlierDetector(GaussianMixture(1)).fit(X).save(tmp_path / "d.npz")
    bad = rewrite(tmp_path / "d.npz", tmp_path / "bad.npz", metadata={"model.state.offset_": "low"})
    expect_refused(bad, "offset_ must be a finite number", "offset")
    bad = rewrite(tmp_path / "d.npz", tmp_path / "bad.npz",
                  metadata={"model.state.mixture_.state.n_features_in_": 5})
    expect_refused(bad, "n_features_in", "nested")


def test_refit_with_more_components_after_warm_start_saves_and_loads(blobs, tmp_path):
    X = blobs[0]
    model = GaussianMixture(2, warm_start=True, random_state=0).fit(X)
    with pytest.warns(UserWarning, match="warm_start=True, but the fitted model .* starting afresh"):
        model.set_params(n_components=3).fit(X)
    assert model.means_.shape == (3, 3)
    model.save(tmp_path / "m.npz")
    loaded = gaussmix.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_model_fitted_on_a_device_loads_and_predicts_anywhere(fitted, blobs, tmp_path, monkeypatch):
    """The device is where the fit ran, not part of the model: a file naming an absent GPU still predicts."""
    path = rewrite_params(fitted, tmp_path, engine="torch", device="cuda:7")
    import gaussmix.engines as engines

    monkeypatch.setattr(engines, "device_available", lambda device: False)
    loaded = gaussmix.load(path)
    assert loaded.device is None and loaded.engine == "auto"
    np.testing.assert_allclose(loaded.score_samples(blobs[0]), fitted.score_samples(blobs[0]), rtol=1e-12)


def rewrite_params(fitted, tmp_path, **params):
    fitted.save(tmp_path / "m.npz")
    return rewrite(tmp_path / "m.npz", tmp_path / "device.npz",
                   metadata={f"model.params.{k}": v for k, v in params.items()})


# -- where models are written ------------------------------------------------------------------
def test_new_model_files_respect_the_umask(fitted, tmp_path):
    previous = os.umask(0o022)
    try:
        fitted.save(tmp_path / "a.npz")
        os.umask(0o077)
        fitted.save(tmp_path / "b.npz")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.npz").stat().st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "a.npz", 0o640)
    fitted.save(tmp_path / "a.npz")  # a replaced file keeps its permissions
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o640


def test_only_regular_files_are_overwritten(fitted, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is a FIFO"):
        fitted.save(fifo)
    assert fifo.is_fifo()
    with pytest.raises(ValueError, match="is a character device"):
        fitted.save("/dev/null")
    with pytest.raises(ValueError, match="is a directory"):
        fitted.save(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        fitted.save(tmp_path / "absent" / "m.npz")
    # A link to a regular file: the file is replaced, the link stays.
    (tmp_path / "real.npz").write_bytes(b"old")
    os.symlink(tmp_path / "real.npz", tmp_path / "link.npz")
    fitted.save(tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink()
    assert type(gaussmix.load(tmp_path / "real.npz")) is GaussianMixture
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "pipe", "real.npz"]


def test_warm_start_on_data_with_other_features_starts_afresh(blobs):
    X = blobs[0]
    model = GaussianMixture(2, warm_start=True, random_state=0).fit(X[:, :2])
    with pytest.warns(UserWarning, match=r"fitted model \(2 components, 2 features.* this fit \(2 components, 3 "
                                         r"features"):
        model.fit(X)
    assert model.means_.shape == (2, 3) and model.n_features_in_ == 3
