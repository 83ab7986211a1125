"""Data larger than memory: memory-mapped files and iterables of chunks, turned into something ``fit`` reads in place.

A C-contiguous float32 or float64 array goes to the C++ passes as it is, without a copy, whether it lies in
memory or in a memory-mapped file (``np.memmap``, ``np.load(path, mmap_mode='r')``). For a mapped file each
pass drops the pages of the rows it has finished with (``release_hook`` in ``cpp/bindings``), so however
large the file, only a few chunks are resident.

Anything that cannot be read in place -- a memory-mapped array of another dtype (int16 counts, float16) or
layout, an iterable of 2-D chunks (a list of arrays, a generator), or a function returning a fresh iterator
of chunks -- is written once, chunk by chunk, into a temporary file of float32 (for float32 or float16 data)
or float64 values, which is then fitted as a memory-mapped array and deleted afterwards. Either way the fit
runs the very passes of an in-memory fit, so it gives the same model bit for bit, for every model and every
initialisation, and its memory does not grow with the number of rows (except for the O(N) labels and
distances of a k-means initialisation). The cost of the second case is one sequential write of the data to
the temporary directory (``TMPDIR``).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Rows are copied from a source that cannot be read in place in pieces of at most this many bytes (counted in
#: float64, the widest type they are converted to).
COPY_BYTES = 16 << 20


def memory_mapped(array: np.ndarray) -> Any:
    """Return the np.memmap that ``array`` is a view of (or is), or None for data in memory."""
    base: Any = array
    for _ in range(64):
        if isinstance(base, np.memmap):
            return base
        base = getattr(base, "base", None)
        if base is None or isinstance(base, mmap.mmap):
            return None
    return None


def readable_in_place(array: np.ndarray) -> bool:
    """Whether the C++ passes can read ``array`` without a copy."""
    return array.dtype in (np.float32, np.float64) and array.ndim == 2 and array.flags.c_contiguous


def is_chunk_source(X: Any) -> bool:
    """Whether ``X`` is an iterable of 2-D chunks (or a function giving one) rather than an array-like."""
    if isinstance(X, np.ndarray) or hasattr(X, "__array__") or isinstance(X, (str, bytes)):
        return False
    if callable(X):
        return True
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(isinstance(chunk, np.ndarray) and chunk.ndim == 2 for chunk in X)
    return hasattr(X, "__iter__")


def _release(array: np.ndarray) -> None:
    """Drop the pages of a memory-mapped slice that has been copied (its file stays in the page cache)."""
    mapping = memory_mapped(array)
    buffer = getattr(mapping, "_mmap", None) if mapping is not None else None
    if buffer is None or getattr(mapping, "mode", "c") not in ("r", "r+", "w+") or not hasattr(buffer, "madvise"):
        return
    start = np.frombuffer(buffer, dtype=np.uint8).ctypes.data  # address of the mapping
    # the bytes the slice spans (for a Fortran-order slice, parts of every column and what lies between)
    low = array.ctypes.data + sum((n - 1) * step for n, step in zip(array.shape, array.strides) if step < 0)
    high = array.ctypes.data + sum((n - 1) * step for n, step in zip(array.shape, array.strides) if step > 0)
    page = mmap.PAGESIZE
    first = (low - start) // page * page
    last = min(-(-(high + array.itemsize - start) // page) * page, len(buffer))
    if last > first >= 0:
        buffer.madvise(mmap.MADV_DONTNEED, first, last - first)


def _chunks(X: Any) -> Iterator[np.ndarray]:
    """Yield the 2-D pieces of a chunk source, or of an array read a bounded block of rows at a time."""
    if isinstance(X, np.ndarray):
        rows = max(1, COPY_BYTES // max(1, X.shape[1] * max(X.dtype.itemsize, 8)))
        for begin in range(0, X.shape[0], rows):
            yield X[begin:begin + rows]
        return
    source = X() if callable(X) else X
    yield from source


def _spool(X: Any, directory: str, name: str) -> np.ndarray:
    """Write the rows of ``X`` into a file in ``directory`` and map it; validates shapes and types on the way."""
    path = os.path.join(directory, "data.bin")
    dtype = None
    n_rows = n_features = 0
    with open(path, "wb") as stream:
        for index, chunk in enumerate(_chunks(X)):
            chunk = np.asarray(chunk)
            if chunk.ndim != 2:
                raise ValueError(f"chunk {index} of {name} must be 2-D (n_samples, n_features), got shape "
                                 f"{chunk.shape}.")
            if chunk.dtype.kind not in "biuf":
                raise TypeError(f"chunk {index} of {name} must hold real numbers, got dtype {chunk.dtype}.")
            if dtype is None:
                dtype = np.dtype(np.float32 if chunk.dtype in (np.float32, np.float16) else np.float64)
                n_features = chunk.shape[1]
                if n_features == 0:
                    raise ValueError(f"chunk {index} of {name} has 0 features (shape {chunk.shape}) while a minimum "
                                     "of 1 is required.")
            elif chunk.shape[1] != n_features:
                raise ValueError(f"chunk {index} of {name} has {chunk.shape[1]} features; the first chunk has "
                                 f"{n_features}.")
            stream.write(np.ascontiguousarray(chunk, dtype=dtype).data.cast("B"))
            n_rows += chunk.shape[0]
            _release(chunk)  # a slice of a mapped file (ours or the caller's) is not needed again
    if dtype is None or n_rows == 0:
        raise ValueError(f"{name} holds no rows: the iterable of chunks is empty.")
    return np.memmap(path, dtype=dtype, mode="r", shape=(n_rows, n_features))


@contextlib.contextmanager
def fit_data(X: Any, name: str = "X") -> Iterator[Any]:
    """Give ``X`` as ``fit`` reads it.

    That is ``X`` itself when it can be read in place (or is an ordinary array-like), else a
    temporary memory-mapped copy that is deleted when the block ends.
    """
    if isinstance(X, np.ndarray):
        if memory_mapped(X) is None or readable_in_place(X):
            yield X
            return
        if X.ndim != 2:
            yield X  # check_data reports the shape
            return
    elif not is_chunk_source(X):
        yield X
        return
    directory = tempfile.mkdtemp(prefix="entrosum-")
    try:
        yield _spool(X, directory, name)
    finally:
        # POSIX removes a mapped file at once (its pages go when the last view does); elsewhere it may stay.
        shutil.rmtree(directory, ignore_errors=True)

