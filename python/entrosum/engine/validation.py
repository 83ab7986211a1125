"""Validation of data and settings, done once in Python before any C++ call."""

from __future__ import annotations

import numbers
import os
import sys
import warnings
from typing import Any

import numpy as np

from .. import _core

#: The directory of the entrosum package: frames from files under it are entrosum's own.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def caller_stacklevel() -> int:
    """Return the ``stacklevel`` for ``warnings.warn`` that points at the first caller outside entrosum.

    Call it from the function that calls ``warnings.warn``; the warning then names the user's line (``fit(X)``,
    ``predict(X)``) however deep inside entrosum it is raised.
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy.sparse matrix or array (without importing scipy)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def check_not_sparse(X: Any, name: str = "X") -> None:
    """Refuse scipy.sparse input with a message that says what to do."""
    if is_sparse(X):
        raise TypeError(f"sparse input is not supported by {name} here: entrosum's models need dense data; convert "
                        f"it with {name}.toarray() if it fits in memory, or pass chunks of dense rows.")


def check_data(X: Any, *, name: str = "X", min_samples: int = 1, n_features: int | None = None,
               n_threads: int = 1, estimator: str | None = None, finite: bool = True) -> np.ndarray:
    """Return ``X`` as a C-contiguous float32 or float64 array of shape (n_samples, n_features).

    float32 stays float32 (no copy when already contiguous); other real numeric types become float64, and so do
    object arrays of numbers. Raises ``TypeError`` for sparse and non-numeric data and ``ValueError`` for complex
    data, a wrong shape, too few samples, a feature count different from the fitted one (``n_features``, the
    model ``estimator``), or NaN/inf; the messages follow scikit-learn's where its checks match them. With
    ``finite=False`` the values are not scanned: for a caller whose first pass over the data reports NaN/inf itself.
    """
    if X is None or isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a 2-D array of numbers, got {type(X).__name__}.")
    check_not_sparse(X, name)
    array = X if isinstance(X, np.ndarray) else np.asarray(X)
    if array.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {array.dtype}; entrosum's models are of "
                         "real numbers.")
    if array.dtype.kind == "O":
        # numbers held as objects are converted, as scikit-learn does; numpy's error names what is not a number
        array = array.astype(np.float64)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (float32 or float64 preferred), got dtype {array.dtype}."
        )
    if array.ndim != 2:
        hint = (" Reshape your data: X.reshape(-1, 1) if it has a single feature, X.reshape(1, -1) if it is a single "
                "sample.") if array.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got {array.ndim}-D with shape {array.shape}.{hint}"
        )
    dtype = np.float32 if array.dtype in (np.float32, np.float16) else np.float64
    array = np.ascontiguousarray(array, dtype=dtype)
    n_samples, n_columns = array.shape
    if n_columns == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required.")
    if n_samples < min_samples:
        raise ValueError(f"{name} has {n_samples} sample(s) (shape={array.shape}); at least {min_samples} are "
                         "required.")
    if n_features is not None and n_columns != n_features:
        raise ValueError(
            f"{name} has {n_columns} features, but {estimator or 'the model'} is expecting {n_features} features as "
            "input (the number it was fitted with)."
        )
    if finite:
        check_finite(array, n_threads, name)
    return array


def check_finite(array: np.ndarray, n_threads: int = 1, name: str = "X") -> None:
    """Raise ``ValueError`` naming the first row of a checked 2-D float array that holds NaN or infinity."""
    bad_row = _core.first_nonfinite_row(array, n_threads)
    if bad_row >= 0:
        raise ValueError(f"{name} contains NaN or infinity (first in row {bad_row}); remove or impute those values.")


def feature_names(X: Any) -> np.ndarray | None:
    """Return the column names of a data frame whose names are all strings (scikit-learn's rule), else None."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray) or not hasattr(X, "shape"):
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size == 0 or not all(isinstance(column, str) for column in names):
        return None
    return names


def check_feature_names(X: Any, fitted: np.ndarray | None, estimator: str) -> None:
    """Compare the column names of ``X`` with those seen in ``fit``, as scikit-learn does.

    Different names or another order is an error; names on one side only is a warning (``UserWarning``).
    """
    names = feature_names(X)
    if names is None and fitted is None:
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {estimator} was fitted with feature names",
                      UserWarning, stacklevel=caller_stacklevel())
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {estimator} was fitted without feature names", UserWarning,
                      stacklevel=caller_stacklevel())
        return
    if len(names) == len(fitted) and np.array_equal(names, fitted):
        return
    unseen = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))
    lines = ["The feature names should match those that were passed during fit."]
    if unseen:
        lines.append("Feature names unseen at fit time: " + ", ".join(map(str, unseen[:5])))
    if missing:
        lines.append("Feature names seen at fit time, yet now missing: " + ", ".join(map(str, missing[:5])))
    if not unseen and not missing:
        lines.append("Feature names must be in the same order as they were in fit.")
    raise ValueError("\n".join(lines))


#: The largest value of a C++ ``int`` (iteration counts, thread counts).
MAX_INT = 2**31 - 1
#: The largest row count the C++ passes take for a chunk (an index of 64 bits with room for sums of two).
MAX_INDEX = 2**62


def check_int(value: Any, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an integer in [``minimum``, ``maximum``] (bool rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and int(value) > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}.")
    return int(value)


def physical_memory() -> int:
    """Bytes of memory of this machine (0 when the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 0


def check_memory(label: str, n_bytes: float, what: str, advice: str) -> None:
    """Raise MemoryError when ``n_bytes`` (for ``what``) exceed this machine's memory: an impossible allocation.

    ``label`` names the estimator and the parameters that set the size, ``advice`` what to change.
    """
    available = physical_memory()
    if available and n_bytes > available:
        raise MemoryError(f"{label} needs about {n_bytes / 2**30:.3g} GiB for {what}, more than this machine's "
                          f"{available / 2**30:.3g} GiB of memory. {advice}")


def check_tolerance(value: Any, name: str, *, allow_none: bool) -> float:
    """Return a non-negative finite tolerance; None (when allowed) switches the rule off and becomes -1."""
    if value is None and allow_none:
        return -1.0
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative number{' or None' if allow_none else ''}, got {value!r}.")
    if not np.isfinite(float(value)) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value}.")
    return float(value)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError naming them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def resolve_n_jobs(n_jobs: Any) -> int:
    """Threads to use: None or -1 mean every available core, a positive integer that many."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs is None or (isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, bool) and n_jobs == -1):
        return cores
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"n_jobs must be an integer or None, got {n_jobs!r}.")
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, -1 or None (all {cores} cores), got {n_jobs}.")
    if int(n_jobs) > MAX_INT:
        raise ValueError(f"n_jobs must be at most {MAX_INT}, got {n_jobs}.")
    return int(n_jobs)


def resolve_chunk_size(chunk_size: Any) -> int:
    """Rows per chunk for the C++ passes; None (0 for C++) picks about 1 MiB of data per chunk, at most 8,192 rows."""
    if chunk_size is None:
        return 0
    return check_int(chunk_size, "chunk_size", minimum=1, maximum=MAX_INDEX)


def check_random_state(random_state: Any) -> np.random.Generator:
    """Return a numpy Generator from None, an integer seed, a Generator or a legacy RandomState."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state < 0:
        raise ValueError(f"random_state must be None, a non-negative integer or a numpy Generator, got "
                         f"{random_state}.")
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(None if random_state is None else int(random_state))
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    raise TypeError(f"random_state must be None, an integer or a numpy Generator, got {random_state!r}.")


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    """Return n_samples finite non-negative float64 weights with a positive sum (a scalar applies to every row)."""
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold real numbers, got dtype {weights.dtype}.")
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {weights.shape}.")
    if not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(weights < 0):
        raise ValueError(
            f"sample_weight must be non-negative; found {weights.min()} at index {int(np.argmin(weights))}.")
    largest = weights.max()
    if not largest > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs a positive weight.")
    # Only the ratios of the weights matter: normalised to a mean of 1 (first by the largest, so that the sum cannot
    # overflow), every fit is the same whatever constant multiplies them, also where an absolute guard (the count
    # guard 10·eps of an M-step, the emptiness of a component) meets weights of 1e-300 or 1e300. Weights of 1 stay 1.
    weights = weights / largest
    return weights * (n_samples / weights.sum())


def check_fitted_array(estimator: str, name: str, value: Any, shape: tuple[int, ...] | None = None, *,
                       ndim: int | None = None, why: str = "", minimum: float | None = None,
                       maximum: float | None = None, positive: bool = False) -> np.ndarray:
    """Return a fitted attribute checked before C++ reads it: a finite real array of ``shape`` (or ``ndim``).

    ``why`` says where the expected shape comes from; ``minimum``, ``maximum`` and ``positive`` bound the values.
    Any failure is a ValueError naming ``estimator.name``.
    """
    label = f"{estimator}.{name}"
    scalar = shape == () and isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (isinstance(value, (np.ndarray, np.generic)) or scalar):
        raise ValueError(f"{label} must be a numpy array, got {type(value).__name__}; refit the model.")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{label} must hold real numbers, got dtype {array.dtype}; refit the model.")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{label} has shape {array.shape}, expected {shape}{f' ({why})' if why else ''}; the fitted "
                         "attributes do not fit together (changed by hand?): refit the model.")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{label} must be {ndim}-D, got shape {array.shape}; refit the model.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{label} contains NaN or infinity; refit the model.")
    if array.size and (positive and not np.all(array > 0) or minimum is not None and not np.all(array >= minimum)
                       or maximum is not None and not np.all(array <= maximum)):
        bounds = ("positive" if positive else
                  f"in [{minimum}, {maximum}]" if minimum is not None and maximum is not None else
                  f">= {minimum}" if minimum is not None else f"<= {maximum}")
        raise ValueError(f"{label} must be {bounds}; found values in [{array.min():.6g}, {array.max():.6g}].")
    return array
