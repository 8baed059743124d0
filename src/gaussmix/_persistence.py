"""Model files: NumPy arrays plus JSON metadata, never pickle.

Format (version 1)
------------------
A model file is an uncompressed NumPy ``.npz`` archive (a zip file) with these
members, read back with ``numpy.load(..., allow_pickle=False)``:

=======================  ======================================================
``metadata``             uint8 array: UTF-8 JSON, described below
``weights``              (K,) float32 or float64
``means``                (K, d)
``covariances``          shaped by ``covariance_type`` (see ``GaussianMixture``)
``precisions_cholesky``  same shape as ``covariances``
``init.<name>``          optional: ``weights_init``, ``means_init`` or
                         ``precisions_init`` when these were given as arrays
=======================  ======================================================

The metadata object has the keys

* ``format`` (``"gaussmix-model"``) and ``format_version`` (``1``);
* ``gaussmix_version``: the version that wrote the file;
* ``estimator``: ``"GaussianMixture"``;
* ``params``: the hyper-parameters (``get_params()``); an array-valued one
  holds ``{"array": "init.<name>"}``; a ``random_state`` that is not an
  integer and a ``callback`` are stored as ``null``;
* ``fitted``: ``converged``, ``n_iter``, ``lower_bound`` (``null`` for -inf),
  ``lower_bounds``, ``n_features_in``, ``feature_names_in`` (or ``null``);
* ``arrays``: for each array member its ``dtype``, ``shape`` and ``sha256``
  (of its C-ordered bytes).

Loading checks the format and version, every checksum, dtype and shape, that
all values are finite, that the weights lie on the simplex, that the
covariances are positive definite and agree with the precision factors, and
the hyper-parameters; any failure raises :class:`~gaussmix.exceptions.ModelFileError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from gaussmix.exceptions import ModelFileError

FORMAT = "gaussmix-model"
FORMAT_VERSION = 1
PARAMETER_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")
INIT_ARRAYS = ("weights_init", "means_init", "precisions_init")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def save_model(model, path) -> None:
    """Write a fitted :class:`~gaussmix.GaussianMixture` to ``path`` atomically."""
    from gaussmix import __version__

    arrays: dict[str, np.ndarray] = {
        "weights": np.asarray(model.weights_),
        "means": np.asarray(model.means_),
        "covariances": np.asarray(model.covariances_),
        "precisions_cholesky": np.asarray(model.precisions_cholesky_),
    }
    params: dict[str, Any] = {}
    for key, value in model.get_params().items():
        if key in INIT_ARRAYS and value is not None:
            arrays[f"init.{key}"] = np.asarray(value, dtype=np.float64)
            params[key] = {"array": f"init.{key}"}
        elif key == "callback" or (key == "random_state" and not isinstance(value, (int, type(None)))):
            params[key] = None
        elif key == "device" and value is not None:
            params[key] = str(value)  # a torch.device is saved by name
        else:
            params[key] = value.item() if isinstance(value, np.generic) else value
    names = getattr(model, "feature_names_in_", None)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gaussmix_version": __version__,
        "estimator": type(model).__name__,
        "params": params,
        "fitted": {
            "converged": bool(model.converged_),
            "n_iter": int(model.n_iter_),
            "lower_bound": float(model.lower_bound_) if math.isfinite(model.lower_bound_) else None,
            "lower_bounds": [float(b) for b in model.lower_bounds_],
            "n_features_in": int(model.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
        },
        "arrays": {
            name: {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": _digest(a)} for name, a in arrays.items()
        },
    }
    blob = np.frombuffer(json.dumps(metadata, indent=1).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory; give a file name for the model")
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".gaussmix-", suffix=".tmp", delete=False)
    try:
        with handle:
            np.savez(handle, metadata=blob, **arrays)
        os.replace(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        raise


def load_model(path):
    """Read and validate a model file written by :meth:`GaussianMixture.save`.

    Raises
    ------
    ModelFileError
        If the file is missing, not a model file, damaged, tampered with, of
        an unsupported format version, or describes an invalid model.
    """
    path = os.fspath(path)
    where = f"{path}: "
    if not os.path.exists(path):
        raise ModelFileError(where + "no such file")
    if os.path.isdir(path):
        raise ModelFileError(where + "is a directory, not a model file")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04":
        what = "empty" if not magic else "not a zip archive"
        raise ModelFileError(where + f"not a gaussmix model file ({what})")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(where + f"damaged or truncated model file ({_reason(exc)})") from None
    try:
        with archive:
            metadata = _read_metadata(archive, where)
            arrays = _read_arrays(archive, metadata, where)
    except ModelFileError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(where + f"damaged or truncated model file ({_reason(exc)})") from None
    try:
        return _build(metadata, arrays)
    except ModelFileError as exc:
        raise ModelFileError(where + str(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(where + f"invalid model ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _read_metadata(archive, where: str) -> dict:
    if "metadata" not in archive.files:
        raise ModelFileError(where + "not a gaussmix model file (no metadata member)")
    raw = archive["metadata"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(where + "not a gaussmix model file (metadata is not UTF-8 text)")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(where + f"damaged metadata ({_reason(exc)})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(where + "not a gaussmix model file (wrong format marker)")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(where + f"damaged metadata (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            where + f"written in model format {version} by gaussmix {metadata.get('gaussmix_version')}; "
            f"this gaussmix reads format {FORMAT_VERSION} or older: upgrade gaussmix"
        )
    if version < 1:
        raise ModelFileError(where + f"unknown model format version {version}")
    if metadata.get("estimator") != "GaussianMixture":
        raise ModelFileError(where + f"unsupported estimator {metadata.get('estimator')!r}")
    for key in ("params", "fitted", "arrays"):
        if not isinstance(metadata.get(key), dict):
            raise ModelFileError(where + f"damaged metadata (missing {key!r})")
    return metadata


def _read_arrays(archive, metadata: dict, where: str) -> dict[str, np.ndarray]:
    described = metadata["arrays"]
    members = set(archive.files) - {"metadata"}
    missing = [n for n in PARAMETER_ARRAYS if n not in described or n not in members]
    if missing:
        raise ModelFileError(where + f"damaged model file (missing arrays: {', '.join(missing)})")
    if set(described) != members:
        extra = sorted(members.symmetric_difference(described))
        raise ModelFileError(where + f"damaged model file (arrays do not match the metadata: {', '.join(extra)})")
    arrays = {}
    for name, info in described.items():
        array = archive[name]
        if not isinstance(info, dict) or array.dtype.str.lstrip("<>|=") != np.dtype(str(info.get("dtype"))).str.lstrip(
            "<>|="
        ):
            raise ModelFileError(where + f"array {name!r} has dtype {array.dtype}, metadata says {info!r}")
        if list(array.shape) != info.get("shape"):
            raise ModelFileError(where + f"array {name!r} has shape {array.shape}, metadata says {info.get('shape')}")
        if _digest(array) != info.get("sha256"):
            raise ModelFileError(where + f"array {name!r} fails its checksum: the file was modified or damaged")
        arrays[name] = array
    return arrays


def _build(metadata: dict, arrays: dict[str, np.ndarray]):
    from gaussmix._gaussian_mixture import GaussianMixture
    from gaussmix._params import checked_params
    from gaussmix.covariance import get_structure

    params = dict(metadata["params"])
    for key in INIT_ARRAYS:
        value = params.get(key)
        if isinstance(value, dict):
            params[key] = arrays[value["array"]]
    allowed = set(GaussianMixture().get_params())
    unknown = set(params) - allowed
    if unknown:
        raise ModelFileError(f"unknown hyper-parameters {sorted(unknown)}")
    model = GaussianMixture(**params)
    model._settings()  # validates every hyper-parameter

    means = arrays["means"]
    dtype = means.dtype
    if dtype not in (np.float32, np.float64):
        raise ModelFileError(f"parameters must be float32 or float64, got {dtype}")
    if any(arrays[name].dtype != dtype for name in PARAMETER_ARRAYS):
        raise ModelFileError("parameter arrays have different dtypes")
    if means.ndim != 2 or means.shape[0] != model.n_components:
        raise ModelFileError(f"means has shape {means.shape}, expected ({model.n_components}, n_features)")
    try:
        checked_params(
            get_structure(model.covariance_type),
            arrays["weights"],
            means,
            arrays["covariances"],
            arrays["precisions_cholesky"],
        )
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    n_features = means.shape[1]

    fitted = metadata["fitted"]
    names = fitted.get("feature_names_in")
    if fitted.get("n_features_in") != n_features:
        raise ModelFileError(f"n_features_in {fitted.get('n_features_in')!r} does not match means ({n_features})")
    if names is not None and (
        not isinstance(names, list) or len(names) != n_features or not all(isinstance(n, str) for n in names)
    ):
        raise ModelFileError("feature_names_in must be a list of n_features strings")
    n_iter, converged = fitted.get("n_iter"), fitted.get("converged")
    bounds = fitted.get("lower_bounds")
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 0 or not isinstance(converged, bool):
        raise ModelFileError("n_iter and converged must be a non-negative integer and a boolean")
    if not isinstance(bounds, list) or not all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds):
        raise ModelFileError("lower_bounds must be a list of finite numbers")
    lower_bound = fitted.get("lower_bound")
    if lower_bound is not None and not (isinstance(lower_bound, (int, float)) and math.isfinite(lower_bound)):
        raise ModelFileError("lower_bound must be a finite number or null")

    # The stored arrays are kept exactly, so that a reloaded model predicts identically.
    model.weights_, model.means_ = arrays["weights"].copy(), means.copy()
    model.covariances_ = arrays["covariances"].copy()
    model.precisions_cholesky_ = arrays["precisions_cholesky"].copy()
    model.precisions_ = get_structure(model.covariance_type).precisions(
        model.precisions_cholesky_.astype(np.float64)
    ).astype(dtype)
    model.converged_ = converged
    model.n_iter_ = n_iter
    model.lower_bound_ = float(lower_bound) if lower_bound is not None else -math.inf
    model.lower_bounds_ = [float(b) for b in bounds]
    model.n_features_in_ = n_features
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    return model
