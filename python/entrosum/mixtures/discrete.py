"""What the Bernoulli and Poisson mixtures share (DESIGN.md §3).

Parameters (weights, means), the C++ calls
of the shared discrete-mixture machinery, and the checks of data values and initial means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _core
from ..engine.csr import CsrData
from ..engine.driver import Passes
from ..engine.validation import check_memory
from ..monitor import ConvergenceMonitor
from .base import BaseMixture
from .steps import DiscreteMixtureSteps, data_function


class DiscreteMixture(BaseMixture):
    """A mixture of products of one-parameter families in their means (Bernoulli, Poisson, binomial, exponential).

    Subclasses set ``_core_prefix`` (the C++ family), ``_first_bad_row`` (the C++ scan for data the
    family cannot model) and the texts of their errors, and provide ``_settings`` and sampling.
    """

    #: Prefix of the family's functions in ``_core``, e.g. ``"bernoulli_mixture"``.
    _core_prefix = ""
    #: What the data must be, for the error message, e.g. ``"binary (every value 0 or 1)"``.
    _data_requirement = ""

    def _first_bad_row(self, X: np.ndarray, n_threads: int) -> int:
        """Index of the first row the family cannot model, or -1."""
        raise NotImplementedError

    def _settings(self) -> Any:
        """Return the family's M-step settings for ``_core``."""
        raise NotImplementedError

    def _core_function(self, name: str) -> Callable[..., Any]:
        return getattr(_core, f"{self._core_prefix}_{name}")

    def _data_function(self, name: str, X: Any) -> Callable[..., Any]:
        """Return the family's ``_core`` pass ``name`` over ``X``, called with ``X`` first (dense or CSR)."""
        return data_function(self._core_prefix, name, X)

    # -- data -------------------------------------------------------------------------------------
    def _check_values(self, X: Any, n_threads: int) -> None:
        if isinstance(X, CsrData):
            self._check_sparse_values(X)
            return
        row = self._first_bad_row(X, n_threads)
        if row >= 0:
            negative_rows = np.flatnonzero(np.any(X < 0, axis=1))  # (only on this error path)
            if negative_rows.size:  # scikit-learn's wording, which its checks of non-negative models match
                row = int(negative_rows[0])
                column = int(np.flatnonzero(X[row] < 0)[0])
                raise ValueError(f"Negative values in data passed to {type(self).__name__}: X must be "
                                 f"{self._data_requirement} for {type(self).__name__}; row {row} holds "
                                 f"{float(X[row, column]):g} in column {column}.")
            values = X[row]
            column = int(np.flatnonzero(~self._allowed(values))[0])
            raise ValueError(f"X must be {self._data_requirement} for {type(self).__name__}; row {row} holds "
                             f"{float(values[column]):g} in column {column}.")

    def _check_sparse_values(self, X: CsrData) -> None:
        """Check the stored entries of CSR data (its zeros are valid for every family that takes it)."""
        bad = np.flatnonzero(~self._allowed(X.values))
        if bad.size:
            row, column = X.entry_position(int(bad[0]))
            value, name = float(X.values[bad[0]]), type(self).__name__
            # the dense check's words (scikit-learn's for negative values)
            start = f"Negative values in data passed to {name}: " if value < 0 else ""
            raise ValueError(f"{start}X must be {self._data_requirement} for {name}; row {row} holds {value:g} in "
                             f"column {column}.")

    def _allowed(self, values: np.ndarray) -> np.ndarray:
        """Which of a row's values the family can model (only used to name the offending value)."""
        raise NotImplementedError

    def _check_family_settings(self, X: np.ndarray) -> None:
        check_memory(f"{type(self).__name__}(n_components={self.n_components}) on {X.shape[1]} features",
                     48.0 * self.n_components * X.shape[1], "its means and statistics",
                     "Choose fewer components or fewer features.")

    # -- initialisation ---------------------------------------------------------------------------
    def _init_from_labels(self, X: np.ndarray, weights: np.ndarray, labels: np.ndarray, passes: Passes) -> dict:
        return self._data_function("init_from_labels", X)(weights, labels, self.n_components, self._settings(),
                                                       passes.n_threads, passes.chunk_size)

    def _init_random(self, X: np.ndarray, weights: np.ndarray, seed: int, passes: Passes) -> dict:
        return self._data_function("init_random", X)(weights, seed, self.n_components, self._settings(),
                                                  passes.n_threads, passes.chunk_size)

    # -- EM and results ---------------------------------------------------------------------------
    def _steps(self) -> DiscreteMixtureSteps:
        return DiscreteMixtureSteps(self._core_prefix, float(getattr(self, "alpha", 0.0)), self._steps_n_trials(),
                                    self._steps_n_levels())

    def _steps_n_trials(self) -> tuple[float, ...]:
        """Return the numbers of trials the steps carry (binomial only)."""
        return ()

    def _steps_n_levels(self) -> tuple[int, ...]:
        """Return the numbers of levels the steps carry (categorical only)."""
        return ()

    def _run_em(self, X: np.ndarray, weights: np.ndarray, params: dict, monitor: ConvergenceMonitor,
                passes: Passes) -> dict:
        callback = monitor._on_iteration if self.verbose else None
        return self._data_function("fit", X)(weights, params["weights"], params["means"], self._settings(),
                                          self._stop_options(), passes.n_threads, passes.chunk_size, callback)

    def _current_params(self) -> dict:
        self._check_fitted_params()
        return {"weights": self.weights_.astype(np.float64), "means": self.means_.astype(np.float64)}

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        return {"weights_": np.asarray(result["weights"]).astype(dtype),
                "means_": np.ascontiguousarray(result["means"]).astype(dtype)}

    def _score_core(self, X: np.ndarray, with_responsibilities: bool,
                    passes: Passes) -> tuple[np.ndarray, np.ndarray | None]:
        return self._data_function("score", X)(self.weights_.astype(np.float64), self.means_.astype(np.float64),
                                            self._settings(), with_responsibilities, passes.n_threads,
                                            passes.chunk_size)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return int(K * D + K - 1)
