"""Model files: NumPy arrays plus JSON metadata, never pickle.

Format (version 2)
------------------
A model file is a zip archive of uncompressed members, as NumPy's ``.npz``:
one ``.npy`` member per array and a ``metadata.npy`` member, a uint8 array
holding UTF-8 JSON::

    {"format": "gaussmix-model", "format_version": 2, "gaussmix_version": "...",
     "model": NODE, "arrays": {member: {"dtype": ..., "shape": [...], "sha256": ...}}}

A NODE describes one estimator: ``{"estimator": class name, "params":
{name: VALUE}, "state": {attribute: VALUE}}`` (``state`` is empty for an
unfitted estimator given as a hyper-parameter). A VALUE is JSON ``null``, a
boolean, an integer, a finite number, a string or a list of VALUEs, or one
of the tagged objects ``{"float": "nan" | "inf" | "-inf"}``, ``{"array":
member}`` (``"object": true`` for an array of Python strings),
``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}``, ``{"range":
[start, stop, step]}``, ``{"table": {"columns": [...], "rows": [[...],
...]}}`` (a table of results) or a NODE. Hyper-parameters that cannot be
stored (a callback, a ``RandomState``, a cross-validation splitter) are
stored as ``null``.

Version 1 files (a GaussianMixture with ``params``, ``fitted`` and
``arrays`` keys) are still read.

Reading never trusts the file: the metadata member is at most
:data:`MAX_METADATA_BYTES` and :data:`MAX_DEPTH` levels deep; every member
must be stored uncompressed, so nothing read can be larger than the file;
each array's header is read and checked against its member's size and the
metadata before any data is read; checksums, dtypes and shapes must match.
Then each estimator's state is checked: a mixture's weights on the simplex,
positive definite covariances that agree with their precision factors,
finite values, a consistent fit record; the other estimators' own
attributes and their mixtures. Any failure raises
:class:`~gaussmix.exceptions.ModelFileError`, whose message starts with the
path.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile

import numpy as np

from gaussmix.exceptions import ModelFileError

FORMAT = "gaussmix-model"
FORMAT_VERSION = 2
#: The metadata member is refused beyond this size ...
MAX_METADATA_BYTES = 16 << 20
#: ... or this nesting depth of JSON arrays and objects.
MAX_DEPTH = 64
#: Estimators a model file may hold, by class name: every gaussmix estimator registers itself
#: here when its class is defined (see :class:`gaussmix._base.GaussmixEstimator`).
ESTIMATORS: dict[str, type] = {}


def register_estimator(cls: type) -> type:
    """Let model files hold estimators of class ``cls`` (by its name, which must be new)."""
    known = ESTIMATORS.setdefault(cls.__name__, cls)
    if known is not cls:
        raise ValueError(f"a model-file estimator named {cls.__name__!r} is already registered ({known!r})")
    return cls


def _is_estimator(value) -> bool:
    return ESTIMATORS.get(type(value).__name__) is type(value)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# -- writing -------------------------------------------------------------------------
class _Encoder:
    """Turns estimators and values into JSON-able VALUEs, collecting arrays as members."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def estimator(self, model, prefix: str, fitted: bool) -> dict:
        """A NODE; the estimator's arrays become members named ``prefix + attribute``."""
        name = type(model).__name__
        if not _is_estimator(model):
            raise TypeError(f"cannot save a {name}: model files hold {', '.join(ESTIMATORS)}")
        params = {key: self.param(value, prefix + key) for key, value in model.get_params(deep=False).items()}
        state = {}
        if fitted:
            skip = getattr(type(model), "_derived_attributes", ())
            for key, value in vars(model).items():
                if key.endswith("_") and not key.startswith("_") and key not in skip:
                    state[key] = self.value(value, prefix + key)
        return {"estimator": name, "params": params, "state": state}

    def param(self, value, path: str):
        """A hyper-parameter; values that cannot be stored become None."""
        if _is_estimator(value):
            return self.estimator(value, path + ".", fitted=False)
        if isinstance(value, dict):
            return {"dict": [[self.param(k, f"{path}.k{i}"), self.param(v, f"{path}.{i}")]
                             for i, (k, v) in enumerate(value.items())]}
        if type(value).__module__.startswith("torch") and type(value).__name__ == "device":
            return str(value)  # a torch.device is stored by name
        try:
            return self.value(value, path)
        except TypeError:
            return None

    def value(self, value, path: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool) or isinstance(value, int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if isinstance(value, np.ndarray):
            return self.array(value, path)
        if _is_estimator(value):
            return self.estimator(value, path + ".", fitted=hasattr(value, "n_features_in_"))
        if isinstance(value, tuple):
            return {"tuple": [self.value(v, f"{path}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.value(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {"dict": [[self.value(k, f"{path}.k{i}"), self.value(v, f"{path}.{i}")]
                             for i, (k, v) in enumerate(value.items())]}
        if isinstance(value, range):
            return {"range": [value.start, value.stop, value.step]}
        if type(value).__name__ == "DataFrame":
            split = value.to_dict("split")
            rows = [[self.value(v, f"{path}.{i}") for v in row] for i, row in enumerate(split["data"])]
            return {"table": {"columns": [str(c) for c in split["columns"]], "rows": rows}}
        raise TypeError(f"cannot store a value of type {type(value).__name__} ({path})")

    def array(self, array: np.ndarray, path: str) -> dict:
        member = path
        if array.dtype == object:
            if not all(isinstance(v, str) for v in array.ravel()):
                raise TypeError(f"cannot store an object array that is not all strings ({path})")
            self.arrays[member] = array.astype(str)
            return {"array": member, "object": True}
        if array.dtype.kind not in "biufcU":
            raise TypeError(f"cannot store an array of dtype {array.dtype} ({path})")
        self.arrays[member] = np.ascontiguousarray(array)
        return {"array": member}


class SaveMixin:
    """``save(path)`` for every gaussmix estimator (read back with :func:`gaussmix.load`)."""

    def save(self, path) -> None:
        """Write the fitted estimator to ``path`` (see :func:`gaussmix.load`).

        The file is a zip archive of NumPy arrays plus JSON metadata; it holds
        no pickled objects, so loading it never runs code. It is written
        beside ``path`` and moved over it at the end: an interrupted save
        leaves any old file intact. Only a regular file or a new path is
        written (not a directory, device or FIFO); a new file gets the
        permissions the umask allows, a replaced one keeps its own.
        """
        from sklearn.exceptions import NotFittedError as SklearnNotFittedError
        from sklearn.utils.validation import check_is_fitted

        from gaussmix.exceptions import NotFittedError

        try:
            check_is_fitted(self)
        except SklearnNotFittedError as exc:
            raise NotFittedError(str(exc)) from None
        save_model(self, path)


def save_model(model, path) -> None:
    """Write a fitted gaussmix estimator to ``path`` atomically (only a regular file or a new path)."""
    from gaussmix._files import atomic_write
    from gaussmix._version import __version__

    encoder = _Encoder()
    node = encoder.estimator(model, "", fitted=True)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gaussmix_version": __version__,
        "model": node,
        "arrays": {
            name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _digest(a)}
            for name, a in encoder.arrays.items()
        },
    }
    blob = np.frombuffer(json.dumps(metadata, indent=1, allow_nan=False).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path, "wb", what="model file") as handle:
        np.savez(handle, metadata=blob, **encoder.arrays)


# -- reading -------------------------------------------------------------------------
def load_model(path):
    """Read and validate a model file written by ``save``.

    Raises
    ------
    ModelFileError
        If the file is missing, not a model file, damaged, tampered with, of
        an unsupported format version, or describes an invalid model.
    """
    import os

    path = os.fspath(path)
    where = f"{path}: "
    if not os.path.exists(path):
        raise ModelFileError(where + "no such file")
    if os.path.isdir(path):
        raise ModelFileError(where + "is a directory, not a model file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
            if magic != b"PK\x03\x04":
                what = "empty" if not magic else "not a zip archive"
                raise ModelFileError(where + f"not a gaussmix model file ({what})")
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                metadata = _read_metadata(archive)
                arrays = _read_arrays(archive, metadata)
    except ModelFileError as exc:
        raise ModelFileError(where + str(exc)) from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise ModelFileError(where + f"damaged or truncated model file ({_reason(exc)})") from None
    try:
        return _Decoder(arrays).estimator(metadata["model"], "model")
    except ModelFileError as exc:
        raise ModelFileError(where + str(exc)) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ModelFileError(where + f"invalid model ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFileError(f"member {name!r} is compressed (gaussmix writes model files uncompressed)")
    if info.file_size != info.compress_size:
        raise ModelFileError(f"member {name!r} declares {info.file_size} bytes but stores {info.compress_size}")
    return info


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _check_depth(text: bytes) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH (before the parser recurses into it)."""
    skeleton = np.frombuffer(_STRING.sub(b"", text), dtype=np.uint8)
    steps = np.zeros(skeleton.shape, dtype=np.int64)
    steps[(skeleton == ord("[")) | (skeleton == ord("{"))] = 1
    steps[(skeleton == ord("]")) | (skeleton == ord("}"))] = -1
    if steps.size and int(np.max(np.cumsum(steps))) > MAX_DEPTH:
        raise ModelFileError(f"damaged metadata (nested more than {MAX_DEPTH} levels deep)")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed in the metadata")


def _read_metadata(archive: zipfile.ZipFile) -> dict:
    if "metadata.npy" not in archive.namelist():
        raise ModelFileError("not a gaussmix model file (no metadata member)")
    info = _member(archive, "metadata")
    if info.file_size > MAX_METADATA_BYTES:
        raise ModelFileError(f"damaged metadata ({info.file_size} bytes; at most {MAX_METADATA_BYTES} are read)")
    raw = _read_npy(archive, info, "metadata")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError("not a gaussmix model file (metadata is not UTF-8 text)")
    text = raw.tobytes()
    _check_depth(text)
    try:
        metadata = json.loads(text.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"damaged metadata ({_reason(exc)})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError("not a gaussmix model file (wrong format marker)")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"damaged metadata (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"written in model format {version} by gaussmix {metadata.get('gaussmix_version')}; "
            f"this gaussmix reads format {FORMAT_VERSION} or older: upgrade gaussmix"
        )
    if version < 1:
        raise ModelFileError(f"unknown model format version {version}")
    if version == 1:
        metadata = _from_version_1(metadata)
    if not isinstance(metadata.get("model"), dict) or not isinstance(metadata.get("arrays"), dict):
        raise ModelFileError("damaged metadata (missing 'model' or 'arrays')")
    return metadata


def _from_version_1(metadata: dict) -> dict:
    """A version-1 file's metadata (one GaussianMixture) as a version-2 NODE."""
    if metadata.get("estimator") != "GaussianMixture":
        raise ModelFileError(f"unsupported estimator {metadata.get('estimator')!r}")
    for key in ("params", "fitted", "arrays"):
        if not isinstance(metadata.get(key), dict):
            raise ModelFileError(f"damaged metadata (missing {key!r})")
    fitted = metadata["fitted"]
    bound = fitted.get("lower_bound")
    names = fitted.get("feature_names_in")
    state = {
        "weights_": {"array": "weights"},
        "means_": {"array": "means"},
        "covariances_": {"array": "covariances"},
        "precisions_cholesky_": {"array": "precisions_cholesky"},
        "converged_": fitted.get("converged"),
        "n_iter_": fitted.get("n_iter"),
        "lower_bound_": {"float": "-inf"} if bound is None else bound,
        "lower_bounds_": fitted.get("lower_bounds"),
        "n_features_in_": fitted.get("n_features_in"),
    }
    if names is not None:
        state["feature_names_in_"] = {"strings": names}
    return {**metadata, "model": {"estimator": "GaussianMixture", "params": metadata["params"], "state": state}}


def _read_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    """One member as an array: its header is checked against the member's size before the data are read."""
    fmt = np.lib.format
    with archive.open(info) as handle:
        try:
            version = fmt.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(handle)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unknown .npy version {version}")
        except (ValueError, SyntaxError, TypeError, EOFError) as exc:
            raise ModelFileError(f"member {name!r} is not a NumPy array ({_reason(exc)})") from None
        if dtype.hasobject or dtype.kind not in "biufcU" or dtype.fields is not None:
            raise ModelFileError(f"member {name!r} has unsupported dtype {dtype}")
        count = math.prod(shape)
        remaining = info.file_size - handle.tell()
        if count * dtype.itemsize != remaining:
            raise ModelFileError(
                f"member {name!r} claims shape {tuple(shape)} ({count * dtype.itemsize} bytes) but holds {remaining}"
            )
        data = handle.read(remaining)
    if len(data) != remaining:
        raise ModelFileError(f"member {name!r} is truncated")
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _read_arrays(archive: zipfile.ZipFile, metadata: dict) -> dict[str, np.ndarray]:
    described = metadata["arrays"]
    members = {n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")} - {"metadata"}
    others = [n for n in archive.namelist() if not n.endswith(".npy")]
    if others or set(described) != members:
        extra = sorted(members.symmetric_difference(described)) + others
        raise ModelFileError(f"damaged model file (arrays do not match the metadata: {', '.join(extra)})")
    arrays = {}
    for name, info in described.items():
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            raise ModelFileError(f"damaged metadata (array {name!r})")
        array = _read_npy(archive, _member(archive, name), name)
        try:
            expected = np.dtype(str(info.get("dtype")))
        except TypeError:
            raise ModelFileError(f"damaged metadata (array {name!r} has dtype {info.get('dtype')!r})") from None
        if array.dtype.str.lstrip("<>|=") != expected.str.lstrip("<>|="):
            raise ModelFileError(f"array {name!r} has dtype {array.dtype}, metadata says {info.get('dtype')}")
        if list(array.shape) != info["shape"]:
            raise ModelFileError(f"array {name!r} has shape {array.shape}, metadata says {info['shape']}")
        if _digest(array) != info.get("sha256"):
            raise ModelFileError(f"array {name!r} fails its checksum: the file was modified or damaged")
        arrays[name] = array
    return arrays


class _Decoder:
    """Rebuilds estimators from NODEs and checks each one's state."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.classes = ESTIMATORS

    def estimator(self, node, where: str):
        if not isinstance(node, dict) or not isinstance(node.get("params"), dict) or not isinstance(
            node.get("state", {}), dict
        ):
            raise ModelFileError(f"damaged metadata ({where} is not an estimator)")
        name = node.get("estimator")
        if name not in self.classes:
            raise ModelFileError(f"unsupported estimator {name!r}")
        cls = self.classes[name]
        params = {key: self.value(value, f"{where}.{key}") for key, value in node["params"].items()}
        unknown = set(params) - set(cls().get_params(deep=False))
        if unknown:
            raise ModelFileError(f"unknown hyper-parameters of {name}: {sorted(unknown)}")
        model = cls(**_usable_here(params))
        state = {key: self.value(value, f"{where}.{key}") for key, value in node.get("state", {}).items()}
        if state:
            try:
                model._restore_fitted(state)
            except ModelFileError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, NotImplementedError) as exc:
                raise ModelFileError(f"invalid {name} ({_reason(exc)})") from None
        return model

    def value(self, value, where: str):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if not isinstance(value, dict) or len(value) == 0:
            raise ModelFileError(f"damaged metadata ({where})")
        if "estimator" in value:
            return self.estimator(value, where)
        if "array" in value:
            if value["array"] not in self.arrays:
                raise ModelFileError(f"damaged metadata ({where} names a missing array {value['array']!r})")
            array = self.arrays[value["array"]]
            if value.get("object"):
                if array.dtype.kind != "U":
                    raise ModelFileError(f"damaged metadata ({where} is not an array of strings)")
                return array.astype(object)
            return array.copy()
        if "strings" in value:  # version 1: feature names as a list
            if not isinstance(value["strings"], list) or not all(isinstance(s, str) for s in value["strings"]):
                raise ModelFileError(f"damaged metadata ({where} must be a list of strings)")
            return np.asarray(value["strings"], dtype=object)
        if "float" in value:
            text = value["float"]
            if text not in ("nan", "inf", "-inf"):
                raise ModelFileError(f"damaged metadata ({where})")
            return float(text)
        if "tuple" in value and isinstance(value["tuple"], list):
            return tuple(self.value(v, where) for v in value["tuple"])
        if "dict" in value and isinstance(value["dict"], list):
            pairs = value["dict"]
            if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise ModelFileError(f"damaged metadata ({where})")
            out = {}
            for k, v in pairs:
                key = self.value(k, where)
                if isinstance(key, (list, dict, np.ndarray)):
                    raise ModelFileError(f"damaged metadata ({where} has an unhashable key)")
                out[key] = self.value(v, where)
            return out
        if "range" in value:
            parts = value["range"]
            if not (isinstance(parts, list) and len(parts) == 3 and all(type(p) is int for p in parts) and parts[2]):
                raise ModelFileError(f"damaged metadata ({where})")
            return range(*parts)
        if "table" in value:
            return self.table(value["table"], where)
        raise ModelFileError(f"damaged metadata ({where})")

    def table(self, table, where: str):
        """A table of records (a DataFrame when pandas is installed); its owner checks the columns."""
        columns = table.get("columns") if isinstance(table, dict) else None
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ModelFileError(f"damaged metadata ({where} is not a table)")
        rows = table.get("rows")
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
            raise ModelFileError(f"damaged metadata ({where} has malformed rows)")
        from gaussmix._tables import as_table

        return as_table([dict(zip(columns, [self.value(v, where) for v in row])) for row in rows], columns)


def _usable_here(params: dict) -> dict:
    """Hyper-parameters with a fitting engine or device this machine lacks replaced by the defaults.

    Where a model was fitted (a GPU, a cluster) is a preference of the fit,
    not a property of the model: a model file loads and predicts anywhere.
    """
    from gaussmix.engines import _ENGINES, device_available, get_engine

    engine, device = params.get("engine"), params.get("device")
    if engine is None and device is None:
        return params
    if engine in _ENGINES and not get_engine(engine).available():
        params = {**params, "engine": "auto", "device": None}
    elif device is not None and not device_available(device):
        params = {**params, "device": None}
        if params.get("engine") == "torch":
            params["engine"] = "auto"
    return params
