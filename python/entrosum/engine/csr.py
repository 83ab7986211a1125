"""scipy.sparse input for the families that take it (Bernoulli, Poisson and multinomial mixtures).

A CSR matrix crosses into C++ as its three arrays, never densified: the passes touch each stored entry, so time and
memory follow the nonzeros. :func:`as_csr_data` checks and converts once (to CSR with canonical entries, float32 or
float64 values, 32-bit column indices, 64-bit row offsets), copying only what does not have those types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Column indices cross as 32-bit integers (scipy's own choice whenever they fit).
MAX_COLUMNS = 2**31 - 1


@dataclass(frozen=True)
class CsrData:
    """The arrays of a checked CSR matrix of shape (n_samples, n_features)."""

    indptr: np.ndarray  # (n_samples + 1,) int64 offsets of each row's entries
    indices: np.ndarray  # (nnz,) int32 column of each entry
    values: np.ndarray  # (nnz,) float32 or float64 value of each entry
    shape: tuple[int, int]

    ndim = 2

    @property
    def dtype(self) -> np.dtype:
        """The values' dtype (the dtype of the fitted parameters)."""
        return self.values.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by the three arrays."""
        return int(self.indptr.nbytes + self.indices.nbytes + self.values.nbytes)

    def core_args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Return the leading arguments of the ``_core.*_csr_*`` functions: (indptr, indices, data, n_features)."""
        return self.indptr, self.indices, self.values, self.shape[1]

    def entry_position(self, entry: int) -> tuple[int, int]:
        """Return the (row, column) of stored entry number ``entry``."""
        row = int(np.searchsorted(self.indptr, entry, side="right")) - 1
        return row, int(self.indices[entry])


def as_csr_data(X: Any, *, name: str = "X", min_samples: int = 1, n_features: int | None = None,
                estimator: str | None = None) -> CsrData:
    """Return the scipy.sparse matrix ``X`` as checked :class:`CsrData` (shape, dtype, finite values)."""
    matrix = X if X.format == "csr" else X.tocsr()  # CSC, COO, ... are converted once
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {matrix.shape}.")
    if matrix.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {matrix.dtype}.")
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (float32 or float64 preferred), got dtype {matrix.dtype}.")
    if not matrix.has_canonical_format:  # duplicate entries summed, as the matrix means them, on a copy
        matrix = matrix.copy()
        matrix.sum_duplicates()
    n_samples, n_columns = matrix.shape
    if n_columns == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={matrix.shape}) while a minimum of 1 is required.")
    if n_columns > MAX_COLUMNS:
        raise ValueError(f"{name} has {n_columns} columns; sparse input takes at most {MAX_COLUMNS}.")
    if n_samples < min_samples:
        raise ValueError(f"{name} has {n_samples} sample(s) (shape={matrix.shape}); at least {min_samples} are "
                         "required.")
    if n_features is not None and n_columns != n_features:
        raise ValueError(f"{name} has {n_columns} features, but {estimator or 'the model'} is expecting {n_features} "
                         "features as input (the number it was fitted with).")
    dtype = np.float32 if matrix.dtype in (np.float32, np.float16) else np.float64
    data = CsrData(np.ascontiguousarray(matrix.indptr, dtype=np.int64),
                   np.ascontiguousarray(matrix.indices, dtype=np.int32),
                   np.ascontiguousarray(matrix.data, dtype=dtype), (int(n_samples), int(n_columns)))
    finite = np.isfinite(data.values)
    if not finite.all():
        row, _ = data.entry_position(int(np.flatnonzero(~finite)[0]))
        raise ValueError(f"{name} contains NaN or infinity (first in row {row}); remove or impute those values.")
    return data
