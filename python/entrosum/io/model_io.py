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
import tempfile
import zipfile
from collections.abc import Callable
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
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            # numpy's stub checks **arrays against savez's own keyword arguments (allow_pickle)
            np.savez(stream, **arrays)  # type: ignore[arg-type]
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


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
        arrays[name] = np.ascontiguousarray(value)
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
        The file is not an entrosum model (not a zip archive, truncated, corrupt, compressed members),
        has another format version, or holds another model than ``expected``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    try:
        with open(path, "rb") as stream:
            contents = stream.read()
        archive = zipfile.ZipFile(io.BytesIO(contents))
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not an entrosum model file: it is not a zip archive or it is truncated "
                         f"({error}).") from error
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        for info in members.values():
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{path}: member {info.filename!r} is compressed; entrosum model files hold "
                                 "uncompressed members (np.savez, not np.savez_compressed).")
        metadata = _read_metadata(path, archive, members)
        cls = _model_class(path, metadata, expected)
        read = _reader(path, archive, members)
        return _build(path, cls, metadata, read)


def _read_metadata(path: Path, archive: zipfile.ZipFile, members: dict) -> dict:
    if METADATA + ".npy" not in members:
        raise ValueError(f"{path} is not an entrosum model file: it has no '{METADATA}' entry.")
    raw = _read_member(path, archive, METADATA + ".npy")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: the metadata entry must be a 1-D uint8 array of JSON text.")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: the metadata is not valid JSON ({error}); the file is corrupt.") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not an entrosum model file: its metadata does not name the format "
                         f"{FORMAT_NAME!r}.")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has model format version {version!r}; this entrosum ({_version()}) reads "
                         f"version {FORMAT_VERSION}. Use a matching entrosum version.")
    return metadata


def _model_class(path: Path, metadata: dict, expected: type | None) -> type:
    class_name = metadata.get("model")
    family = by_class_name(class_name) if isinstance(class_name, str) else None
    cls = family.estimator_class() if family else None
    if cls is None:
        raise ValueError(f"{path} holds a model of class {class_name!r}, which this entrosum ({_version()}) "
                         "does not provide.")
    if expected is not None and cls is not expected:
        raise ValueError(f"{path} holds a {class_name} model, not a {expected.__name__}; load it with "
                         f"{class_name}.load or entrosum.load.")
    return cls


def _read_member(path: Path, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    try:
        with archive.open(name) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: the member {name!r} is corrupt ({error}).") from error


def _reader(path: Path, archive: zipfile.ZipFile, members: dict) -> Callable[[str], np.ndarray]:
    def read(name: str) -> np.ndarray:
        if name + ".npy" not in members:
            raise ValueError(f"{path}: the array {name!r} named in the metadata is missing; the file is corrupt.")
        return _read_member(path, archive, name + ".npy")

    return read


def _build(path: Path, cls: type, metadata: dict, read: Callable[[str], np.ndarray]) -> Any:
    """Rebuild the estimator from its parameters, fitted attributes and monitor."""
    from ..monitor import ConvergenceMonitor

    try:
        params = dict(metadata["params"])
        for name in metadata.get("array_params", []):
            params[name] = read(PARAMS_PREFIX + name)
        estimator = cls(**params)
        for name, entry in metadata["fitted"].items():
            kind = entry["kind"]
            if kind in ("bool", "int", "str", "json"):
                value = {"bool": bool, "int": int, "str": str, "json": dict}[kind](entry["value"])
            elif kind == "strings":
                value = np.asarray([str(item) for item in entry["value"]], dtype=object)
            elif kind == "float":
                value = float(read(name)[()])
            elif kind == "scalar":
                value = read(name)[()]
            elif kind == "array":
                value = read(name)
            else:
                raise ValueError(f"unknown kind {kind!r} of the fitted attribute {name!r}")
            setattr(estimator, name, value)
        state = metadata["monitor"]
        monitor = ConvergenceMonitor(tol=state["tol"], gap_tol=state["gap_tol"], max_iter=state["max_iter"],
                                     verbose=state["verbose"], model=state["model"])
        monitor.history = {field: read(MONITOR_PREFIX + field) for field in state["fields"]}
        monitor.stop_reason = state["stop_reason"]
        monitor.converged = bool(state["converged"])
        monitor.setup_time = float(state["setup_time"])
        estimator.monitor_ = monitor
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: the metadata lacks or mistypes an entry ({error!r}); the file is corrupt.") \
            from error
    return estimator
