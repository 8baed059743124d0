"""Model files: identical predictions after a round trip; every damaged file is refused."""

import json
import os
import pickle
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
    assert names == sorted(["metadata.npy", "weights.npy", "means.npy", "covariances.npy", "precisions_cholesky.npy"])
    with np.load(path, allow_pickle=False) as archive:  # readable without pickle
        metadata = json.loads(archive["metadata"].tobytes())
    assert metadata["format"] == "gaussmix-model" and metadata["format_version"] == 1
    assert metadata["params"]["covariance_type"] == fitted.covariance_type


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
    """Copy a model file, changing metadata entries and arrays."""
    import hashlib

    with np.load(source, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    meta = json.loads(contents.pop("metadata").tobytes())
    for key, value in (metadata or {}).items():
        section, _, field = key.partition(".")
        if field:
            meta[section][field] = value
        else:
            meta[section] = value
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
        "flipped byte": (tmp_path / "flip.npz", "damaged|checksum"),
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

    rewritten = {
        "tampered weights": (dict(arrays={"weights": w[::-1].copy()}, fix_checksums=False), "fails its checksum"),
        "weights off simplex": (dict(arrays={"weights": w * 2}), "sum to 1"),
        "negative weight": (dict(arrays={"weights": np.r_[1.5, -0.5, w[2:]]}), "non-negative"),
        "NaN mean": (dict(arrays={"means": np.where(np.eye(3, dtype=bool), np.nan, fitted.means_)}), "NaN"),
        "wrong shape": (dict(arrays={"means": fitted.means_[:2]}), "means has shape"),
        "not positive definite": (
            dict(arrays={"covariances": -fitted.covariances_}), "not symmetric positive definite"),
        "inconsistent factor": (
            dict(arrays={"precisions_cholesky": fitted.precisions_cholesky_ * 2}), "does not match"),
        "missing array": (dict(arrays={"means": None}), "missing arrays: means"),
        "pickled array": (dict(arrays={"weights": np.array([{"x": 1}], dtype=object)}), "damaged|pickled|object"),
        "newer format": (dict(metadata={"format_version": 2}), "model format 2 .* upgrade gaussmix"),
        "other format": (dict(metadata={"format": "something-else"}), "wrong format marker"),
        "bad hyper-parameter": (dict(metadata={"params.n_components": 0}), "n_components must be an integer >= 1"),
        "unknown hyper-parameter": (dict(metadata={"params.exec": "rm -rf /"}), "unknown hyper-parameters"),
        "feature count": (dict(metadata={"fitted.n_features_in": 7}), "n_features_in"),
        "feature names": (dict(metadata={"fitted.feature_names_in": ["a"]}), "feature_names_in"),
        "lower bounds": (dict(metadata={"fitted.lower_bounds": ["x"]}), "lower_bounds"),
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
