"""Saving and loading fitted models: one uncompressed ``.npz`` archive (see ``docs/model_format.md``).

The archive holds, as ``.npy`` members:

* ``metadata``: the UTF-8 bytes of a JSON object (a 1-D uint8 array) naming the format, its version,
  the model class, the constructor parameters, the entrosum version, the dtype and the monitor summary;
* one member per fitted array attribute (``weights_``, ``means_``, ``components_``, ...);
* ``monitor/<field>``: the monitor's history, one array per field;
* ``params/<name>``: constructor parameters that are arrays (``means_init``, ...).

Loading checks the archive before building anything and raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import io
import json
import numbers
import os
import secrets
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .registry import by_class_name

FORMAT_NAME = "entrosum-model"
FORMAT_VERSION = 1
METADATA = "metadata"
MONITOR_PREFIX = "monitor/"
PARAMS_PREFIX = "params/"
#: The monitor's scalar state kept in the metadata (its history goes into arrays).
_MONITOR_STATE = ("tol", "gap_tol", "max_iter", "verbose", "model", "stop_reason", "converged", "setup_time")


# -- saving ------------------------------------------------------------------------------------------
def save_model(estimator: Any, path: str | os.PathLike) -> None:
    """Write a fitted estimator to ``path`` (the name is used as given; no suffix is added).

    The file is written next to its destination and then renamed, so an interrupted or failed save
    never leaves a half-written model behind.
    """
    estimator._check_fitted("monitor_")
    monitor = estimator.monitor_
    class_name = type(estimator).__name__
    if by_class_name(class_name) is None:
        raise TypeError(f"{class_name} is not a registered entrosum model; it cannot be saved.")

    arrays: dict[str, np.ndarray] = {}
    fitted: dict[str, Any] = {}
    for name, value in sorted(vars(estimator).items()):
        if not name.endswith("_") or name.startswith("_") or name == "monitor_":
            continue
        fitted[name] = _encode_fitted(name, value, arrays)
    params, array_params = _encode_params(estimator.get_params(), arrays)
    for field, values in monitor.history.items():
        arrays[MONITOR_PREFIX + field] = np.ascontiguousarray(values)

    dtype = model_dtype(estimator)
    history = monitor.history
    last = {field: _json_float(values[-1]) for field, values in history.items()
            if field != "iteration" and len(values)}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": class_name,
        "entrosum_version": _version(),
        "dtype": dtype,
        "n_features": int(getattr(estimator, "n_features_in_", -1)),
        "n_components": _plain(estimator.get_params().get("n_components")),
        "params": params,
        "array_params": array_params,
        "fitted": fitted,
        "monitor": {**{key: _plain(getattr(monitor, key)) for key in _MONITOR_STATE},
                    "n_iter": monitor.n_iter, "fields": list(history), "last": last},
    }
    text = json.dumps(metadata, allow_nan=False, sort_keys=False)
    arrays[METADATA] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    path = Path(path)
    handle, temporary = _create_temporary(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            # numpy's stub checks **arrays against savez's own keyword arguments (allow_pickle)
            np.savez(stream, **arrays)  # type: ignore[arg-type]
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _create_temporary(path: Path) -> tuple[int, str]:
    """Create a new file next to ``path``, with the permissions the umask gives any new file (0666 & ~umask).

    ``tempfile.mkstemp`` would make it 0600 whatever the umask, and the rename would keep that.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = os.path.join(path.parent or ".", f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {str(path)!r}")


def _encode_fitted(name: str, value: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """How one fitted attribute is stored: small Python values in the metadata, numbers as arrays."""
    if isinstance(value, np.generic):  # a numpy scalar (np.float64 is also a float: test it first)
        arrays[name] = np.asarray(value)
        return {"kind": "scalar"}
    if isinstance(value, bool):
        return {"kind": "bool", "value": value}
    if isinstance(value, int):
        return {"kind": "int", "value": value}
    if isinstance(value, float):  # a Python float, kept exactly as a float64 scalar array
        arrays[name] = np.asarray(value, dtype=np.float64)
        return {"kind": "float"}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        # a 0-d array (tied_spherical's variance) stays 0-d: ascontiguousarray would make it (1,)
        arrays[name] = np.ascontiguousarray(value) if value.ndim else value.copy()
        return {"kind": "array"}
    if isinstance(value, np.ndarray) and value.ndim == 1 and all(isinstance(item, str) for item in value):
        return {"kind": "strings", "value": [str(item) for item in value]}  # e.g. feature_names_in_
    if isinstance(value, str):
        return {"kind": "str", "value": value}
    if isinstance(value, dict):  # plain diagnostics, e.g. SparseCoding.e_step_info_
        return {"kind": "json", "value": {str(key): _plain(item) for key, item in value.items()}}
    raise TypeError(f"fitted attribute {name} of type {type(value).__name__} cannot be saved.")


def _encode_params(params: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], list[str]]:
    """Return the constructor parameters: JSON values, arrays as members; a random Generator is not saved (None)."""
    encoded: dict[str, Any] = {}
    array_params = []
    for name, value in params.items():
        if isinstance(value, (np.ndarray, list, tuple)):
            arrays[PARAMS_PREFIX + name] = np.ascontiguousarray(np.asarray(value, dtype=np.float64))
            encoded[name] = None
            array_params.append(name)
        elif isinstance(value, (np.random.Generator, np.random.RandomState)):
            encoded[name] = None
        elif isinstance(value, Mapping):  # e.g. MixedMixture's families: pairs keep int keys apart from str ones
            encoded[name] = {"items": [[_plain(key), _plain_items(item)] for key, item in value.items()]}
        else:
            encoded[name] = _plain(value)
    return encoded, array_params


def _plain(value: Any) -> Any:
    """Return a JSON value for a parameter or a monitor setting."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _json_float(value)
    raise TypeError(f"the value {value!r} cannot be saved in the metadata.")


def _plain_items(value: Any) -> Any:
    """Return a JSON value for a plain value or a sequence of them (a dict parameter's entry)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item) for item in np.asarray(value, dtype=object).ravel()]
    return _plain(value)


def _dict_param(value: Any) -> dict | None:
    """Return the dict a parameter saved as {"items": [[key, value], ...]} stands for, or None if it is not one."""
    if not isinstance(value, dict) or set(value) != {"items"} or not isinstance(value["items"], list):
        return None
    result = {}
    for pair in value["items"]:
        if not isinstance(pair, list) or len(pair) != 2 or not _scalar_param(pair[0]) or pair[0] is None:
            return None
        key, item = pair
        if isinstance(item, list):
            if not all(_scalar_param(entry) for entry in item):
                return None
        elif not _scalar_param(item):
            return None
        result[key] = item
    return result


def _json_float(value: Any) -> float | None:
    """Return a finite float, or None for NaN and infinities (JSON has no such numbers)."""
    value = float(value)
    return value if np.isfinite(value) else None


def model_dtype(estimator: Any) -> str:
    """Return the precision of a fitted model: the dtype of its fitted arrays."""
    for name in ("means_", "mean_", "components_"):
        value = getattr(estimator, name, None)
        if isinstance(value, np.ndarray):
            return str(value.dtype)
    return "float64"


def _version() -> str:
    from .. import __version__

    return __version__


# -- loading -----------------------------------------------------------------------------------------
def load(path: str | os.PathLike) -> Any:
    """Read a model saved with ``estimator.save(path)``, whatever its class.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.

    Returns
    -------
    estimator
        The fitted estimator, of the class that was saved, with its monitor.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        For a file that is not an entrosum model, is corrupt or truncated, or has another format version.

    Examples
    --------
    >>> gmm.save("model.npz")  # doctest: +SKIP
    >>> entrosum.load("model.npz").predict(X)  # doctest: +SKIP
    """
    return load_model(path)


def load_model(path: str | os.PathLike, expected: type | None = None) -> Any:
    """Read a model written by :func:`save_model`.

    Parameters
    ----------
    path : str or path-like
    expected : estimator class, optional
        The class the file must hold (``GaussianMixture.load``); any registered model otherwise.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not an entrosum model (not a zip archive, truncated, corrupt, compressed members, arrays of
        other types or shapes than the model's, metadata of the wrong types or naming attributes the model does
        not have), has another format version, or holds another model than ``expected``. The message names the
        file and what is wrong; no other exception escapes for any content of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    with open(path, "rb") as stream:
        contents = stream.read()
    try:
        return _load(path, contents, expected)
    except _FileProblem as problem:
        raise ValueError(str(problem)) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # noqa: BLE001 - whatever a hostile file provokes becomes a ValueError naming it
        raise ValueError(f"{path} is not a readable entrosum model file: {type(error).__name__}: {error}") from error


class _FileProblem(Exception):
    """What is wrong with a model file, with the file named (raised as a ValueError by load_model)."""


def _load(path: Path, contents: bytes, expected: type | None) -> Any:
    try:
        archive = zipfile.ZipFile(io.BytesIO(contents))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise _FileProblem(f"{path} is not an entrosum model file: it is not a zip archive or it is truncated "
                           f"({error}).") from error
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        for info in members.values():
            if info.compress_type != zipfile.ZIP_STORED:
                raise _FileProblem(f"{path}: member {info.filename!r} is compressed; entrosum model files hold "
                                   "uncompressed members (np.savez, not np.savez_compressed).")
            if info.flag_bits & 0x1:
                raise _FileProblem(f"{path}: member {info.filename!r} is encrypted; entrosum model files are not.")
        metadata = _read_metadata(path, archive, members)
        cls = _model_class(path, metadata, expected)
        read = _reader(path, archive, members)
        return _build(path, cls, metadata, read)


#: Deepest nesting of JSON arrays and objects in the metadata (the C++ reader's kMaxMetadataDepth).
MAX_METADATA_DEPTH = 64


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (1 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def _read_metadata(path: Path, archive: zipfile.ZipFile, members: dict) -> dict:
    if METADATA + ".npy" not in members:
        raise _FileProblem(f"{path} is not an entrosum model file: it has no '{METADATA}' entry.")
    raw = _read_member(path, archive, members[METADATA + ".npy"])
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _FileProblem(f"{path}: the metadata entry must be a 1-D uint8 array of JSON text.")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _FileProblem(f"{path}: the metadata is not valid JSON ({error}); the file is corrupt.") from error
    except RecursionError as error:
        raise _FileProblem(f"{path}: the metadata nests arrays and objects more than {MAX_METADATA_DEPTH} deep; "
                           "the file is corrupt.") from error
    if _depth(metadata) - 1 > MAX_METADATA_DEPTH:
        raise _FileProblem(f"{path}: the metadata nests arrays and objects more than {MAX_METADATA_DEPTH} deep; "
                           "the file is corrupt.")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise _FileProblem(f"{path} is not an entrosum model file: its metadata does not name the format "
                           f"{FORMAT_NAME!r}.")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _FileProblem(f"{path} has model format version {version!r}; this entrosum ({_version()}) reads "
                           f"version {FORMAT_VERSION}. Use a matching entrosum version.")
    return metadata


def _model_class(path: Path, metadata: dict, expected: type | None) -> type:
    class_name = metadata.get("model")
    family = by_class_name(class_name) if isinstance(class_name, str) else None
    cls = family.estimator_class() if family else None
    if cls is None:
        raise _FileProblem(f"{path} holds a model of class {class_name!r}, which this entrosum ({_version()}) "
                           "does not provide.")
    if expected is not None and cls is not expected:
        raise _FileProblem(f"{path} holds a {class_name} model, not a {expected.__name__}; load it with "
                           f"{class_name}.load or entrosum.load.")
    return cls


#: Longest .npy header read (numpy's own limit for untrusted files).
_MAX_HEADER = 10000


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """Read one .npy member, checking its header against its size before allocating anything."""
    name = info.filename
    try:
        with archive.open(info) as stream:
            magic = stream.read(8)
            if len(magic) < 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3) or magic[7] != 0:
                raise _FileProblem(f"{path}: the member {name!r} is not a .npy array (bad magic); the file is "
                                   "corrupt.")
            width = 2 if magic[6] == 1 else 4
            length = int.from_bytes(stream.read(width), "little")
            if length > _MAX_HEADER:
                raise _FileProblem(f"{path}: the member {name!r} has a .npy header of {length} bytes (at most "
                                   f"{_MAX_HEADER}); the file is corrupt.")
            header = stream.read(length)
            dtype, fortran, shape = _parse_header(path, name, header, "utf-8" if magic[6] == 3 else "latin1")
            count = 1
            for extent in shape:
                count *= extent
            size = count * dtype.itemsize
            available = info.file_size - 8 - width - length
            if size != available:
                raise _FileProblem(f"{path}: the member {name!r} declares shape {shape} of {dtype} ({size} bytes), "
                                   f"but holds {max(available, 0)} bytes of data; the file is truncated or corrupt.")
            data = stream.read(size)
            stream.read()  # to the end, where zipfile checks the CRC-32
    except zipfile.BadZipFile as error:
        raise _FileProblem(f"{path}: the member {name!r} is corrupt ({error}).") from error
    if len(data) != size:
        raise _FileProblem(f"{path}: the member {name!r} is truncated.")
    array = np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")
    return np.array(array, dtype=dtype.newbyteorder("="), order="C")  # a writable copy in native byte order


def _parse_header(path: Path, name: str, header: bytes, encoding: str) -> tuple[np.dtype, bool, tuple[int, ...]]:
    """(dtype, fortran_order, shape) of a .npy header: a numeric dtype and non-negative extents, or _FileProblem."""
    import ast

    problem = f"{path}: the member {name!r} has a damaged .npy header"
    try:
        fields = ast.literal_eval(header.decode(encoding))
    except Exception as error:  # noqa: BLE001 - SyntaxError, ValueError, RecursionError, ... of hostile bytes
        raise _FileProblem(f"{problem} ({type(error).__name__}); the file is corrupt.") from error
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise _FileProblem(f"{problem} (keys); the file is corrupt.")
    descr, fortran, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not isinstance(descr, str) or not isinstance(fortran, bool) or not isinstance(shape, tuple) or \
            len(shape) > 32 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise _FileProblem(f"{problem} (descr, fortran_order or shape); the file is corrupt.")
    try:
        dtype = np.dtype(descr)
    except Exception as error:  # noqa: BLE001
        raise _FileProblem(f"{problem} (dtype {descr!r}); the file is corrupt.") from error
    if dtype.kind not in "biuf" or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise _FileProblem(f"{path}: the member {name!r} has dtype {descr!r}; model files hold only numbers (no "
                           "pickled objects).")
    return dtype, fortran, tuple(shape)


def _reader(path: Path, archive: zipfile.ZipFile, members: dict) -> Callable[[str], np.ndarray]:
    def read(name: str) -> np.ndarray:
        if not isinstance(name, str) or name + ".npy" not in members:
            raise _FileProblem(f"{path}: the array {name!r} named in the metadata is missing; the file is corrupt.")
        return _read_member(path, archive, members[name + ".npy"])

    return read


def _expect(path: Path, value: Any, kinds: type | tuple[type, ...], what: str) -> Any:
    """Return ``value`` if it is of ``kinds`` (a bool is not a number here), else _FileProblem naming ``what``."""
    numeric = kinds in (int, float, (int, float))
    if not isinstance(value, kinds) or (numeric and isinstance(value, bool)):
        raise _FileProblem(f"{path}: the metadata's {what} has the wrong type ({type(value).__name__}); the file is "
                           "corrupt.")
    return value


def _scalar_param(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _build(path: Path, cls: Any, metadata: dict, read: Callable[[str], np.ndarray]) -> Any:
    """Rebuild the estimator from its parameters, fitted attributes and monitor; every entry is checked."""
    from ..monitor import FIELDS, ConvergenceMonitor
    from ..monitor.convergence import _REASONS

    names = cls._param_names()
    params = dict(_expect(path, metadata.get("params"), dict, "'params'"))
    for name, given in params.items():
        if name not in names:
            raise _FileProblem(f"{path}: the metadata sets the parameter {name!r}, which {cls.__name__} does not "
                               "have; the file is corrupt.")
        as_dict = _dict_param(given)
        if as_dict is not None:
            params[name] = as_dict
        elif not _scalar_param(given):
            raise _FileProblem(f"{path}: the parameter {name!r} in the metadata is not a plain value; the file is "
                               "corrupt.")
    for name in _expect(path, metadata.get("array_params", []), list, "'array_params'"):
        if not isinstance(name, str) or name not in names:
            raise _FileProblem(f"{path}: the metadata names the array parameter {name!r}, which {cls.__name__} does "
                               "not have; the file is corrupt.")
        params[name] = read(PARAMS_PREFIX + name)
    estimator = cls(**params)

    allowed = cls._saved_attributes()
    fitted = _expect(path, metadata.get("fitted"), dict, "'fitted'")
    for name, entry in fitted.items():
        if name not in allowed:
            raise _FileProblem(f"{path}: the metadata sets the attribute {name!r}, which is not one of "
                               f"{cls.__name__}'s fitted attributes; the file is corrupt.")
        entry = _expect(path, entry, dict, f"entry of {name!r}")
        kind = entry.get("kind")
        what = f"value of {name!r}"
        if kind == "bool":
            value: Any = _expect(path, entry.get("value"), bool, what)
        elif kind == "int":
            value = _expect(path, entry.get("value"), int, what)
        elif kind == "str":
            value = _expect(path, entry.get("value"), str, what)
        elif kind == "json":
            value = dict(_expect(path, entry.get("value"), dict, what))
            if not all(_scalar_param(item) for item in value.values()):
                raise _FileProblem(f"{path}: the {what} holds more than plain values; the file is corrupt.")
        elif kind == "strings":
            items = _expect(path, entry.get("value"), list, what)
            if not all(isinstance(item, str) for item in items):
                raise _FileProblem(f"{path}: the {what} must be a list of strings; the file is corrupt.")
            value = np.asarray(items, dtype=object)
        elif kind in ("float", "scalar"):
            array = read(name)
            if array.ndim != 0:
                raise _FileProblem(f"{path}: the attribute {name!r} must be a scalar, got shape {array.shape}.")
            value = float(array[()]) if kind == "float" else array[()]
        elif kind == "array":
            value = read(name)
        else:
            raise _FileProblem(f"{path}: unknown kind {kind!r} of the fitted attribute {name!r}; the file is "
                               "corrupt.")
        setattr(estimator, name, value)

    state = _expect(path, metadata.get("monitor"), dict, "'monitor'")
    tolerances = [state.get(key) for key in ("tol", "gap_tol")]
    for key, value in zip(("tol", "gap_tol"), tolerances):
        if value is not None:
            _expect(path, value, (int, float), f"monitor.{key}")
    monitor = ConvergenceMonitor(tol=tolerances[0], gap_tol=tolerances[1],
                                 max_iter=_expect(path, state.get("max_iter"), int, "monitor.max_iter"),
                                 verbose=_expect(path, state.get("verbose"), int, "monitor.verbose"),
                                 model=_expect(path, state.get("model"), str, "monitor.model"))
    fields = _expect(path, state.get("fields"), list, "monitor.fields")
    if sorted(map(str, fields)) != sorted(FIELDS) or len(fields) != len(FIELDS):
        raise _FileProblem(f"{path}: the monitor's fields must be {', '.join(FIELDS)}; the file is corrupt.")
    history = {field: read(MONITOR_PREFIX + field) for field in fields}
    lengths = {values.shape for values in history.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise _FileProblem(f"{path}: the monitor's history must hold 1-D arrays of one length; the file is corrupt.")
    monitor.history = history
    reason = _expect(path, state.get("stop_reason"), str, "monitor.stop_reason")
    if reason not in _REASONS:
        raise _FileProblem(f"{path}: unknown monitor.stop_reason {reason!r}; the file is corrupt.")
    monitor.stop_reason = reason
    monitor.converged = _expect(path, state.get("converged"), bool, "monitor.converged")
    monitor.setup_time = float(_expect(path, state.get("setup_time"), (int, float), "monitor.setup_time"))
    estimator.monitor_ = monitor
    try:
        # the fitted arrays, then the parameters as fit would check them (for data of the fitted features)
        estimator._check_fitted_params()
        estimator._check_common_settings()
        estimator._check_settings(_Shape((2**62, estimator.n_features_in_)))
    except (ValueError, TypeError, MemoryError) as error:
        raise _FileProblem(f"{path}: {error} The file is corrupt.") from error
    for key, value in (("n_features", estimator.n_features_in_), ("dtype", model_dtype(estimator)),
                       ("n_components", params.get("n_components"))):
        if metadata.get(key) != value:
            raise _FileProblem(f"{path}: the metadata's {key} ({metadata.get(key)!r}) disagrees with the model's "
                               f"({value!r}); the file is corrupt.")
    return estimator


class _Shape:
    """Stands for data of a given shape where parameters are checked against data that are not there."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
