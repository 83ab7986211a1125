"""``partial_fit`` for every estimator: stepwise EM through the chunk-level step API (``_stepwise``).

An estimator mixes in ``OnlineMixin`` and provides four hooks: the family's steps, the initial parameters from
a first chunk (its own initialisation and ``random_state``), its current parameters in the step format, and the
fitted attributes from parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._stepwise import StepwiseState, check_learning_rate, history_monitor, start_state, stepwise_update
from ._validation import resolve_chunk_size, resolve_n_jobs
from .monitor import ConvergenceMonitor


class OnlineMixin:
    """Adds ``partial_fit`` (stepwise EM) to an estimator."""

    # Set by the estimator (constructor parameters and fitted attributes), declared for type checkers.
    learning_offset: float
    learning_decay: float
    n_jobs: int | None
    chunk_size: int | None
    n_features_in_: int

    #: Advice for the error raised when an update fails numerically.
    _online_advice = "Use larger chunks, fewer components, or scale the data."

    # -- hooks ------------------------------------------------------------------------------------
    def _online_check(self, X: Any, n_threads: int, n_features: int | None, first: bool) -> np.ndarray:
        """Validate the chunk as ``fit`` validates data (and with ``n_features`` columns when given)."""
        raise NotImplementedError

    def _online_weights(self, sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
        if sample_weight is not None:
            raise TypeError(f"{type(self).__name__}.partial_fit does not take sample_weight.")
        return None

    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, n_threads: int,
                      chunk_size: int) -> tuple[Any, dict]:
        """Return (steps, initial parameters) from the first chunk."""
        raise NotImplementedError

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        """Return (steps, parameters) of the current fit, to continue it with stepwise EM."""
        raise NotImplementedError

    def _online_publish(self, params: dict, dtype: np.dtype, monitor: ConvergenceMonitor,
                        statistics: Any) -> dict[str, Any]:
        """Return the fitted attributes from parameters (not yet set)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------
    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Update the model with one chunk of rows by stepwise (online) EM.

        The chunk's E-step statistics, normalised per sample, are blended into running statistics,
        s <- (1 - ρ_t) s + ρ_t s_chunk / n_chunk with ρ_t = (t + learning_offset)^(-learning_decay) for the
        t-th chunk, and an M-step makes the parameters from them. The first call on an unfitted estimator
        initialises from its chunk with the estimator's initialisation and ``random_state``; a call after
        ``fit`` continues from the fitted parameters; ``fit`` starts afresh. ``monitor_`` records one entry per
        chunk: F and S of the chunk at the parameters before the update, and as ``m_step_elbo`` /
        ``m_step_entropy_sum`` those of the running statistics after it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One chunk of rows, validated as ``fit`` validates data.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Per-row weights (mixtures only).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a chunk of the wrong shape, with NaN or infinity, values the model cannot take, or a number of
            features other than the fitted one; for invalid ``learning_offset`` / ``learning_decay``; when an
            update fails numerically. A failed update leaves the model as it was.
        TypeError
            For non-numeric data.
        """
        offset, decay = check_learning_rate(self.learning_offset, self.learning_decay)
        n_threads = resolve_n_jobs(self.n_jobs)
        chunk_size = resolve_chunk_size(self.chunk_size)
        state: StepwiseState | None = getattr(self, "_online_state", None)
        if state is not None and state.monitor is not getattr(self, "monitor_", None):
            state = None  # a fit replaced the model since the last update
        fitted = hasattr(self, "monitor_")
        X = self._online_check(X, n_threads, self.n_features_in_ if fitted else None, first=state is None)
        weights = self._online_weights(sample_weight, X)
        try:
            if state is None:
                steps, params = (self._online_resume(X) if fitted
                                 else self._online_start(X, weights, n_threads, chunk_size))
                state = start_state(steps, params)
            state = stepwise_update(state, X, weights, offset, decay, n_threads, chunk_size)
        except _core.NumericalError as error:
            raise ValueError(f"{type(self).__name__}.partial_fit failed: {error}. {self._online_advice}") from error
        monitor = history_monitor(state, ConvergenceMonitor(tol=None, max_iter=state.n_updates, verbose=0,
                                                            model=type(self).__name__))
        attributes = self._online_publish(state.params, X.dtype, monitor, state.statistics)
        state = StepwiseState(state.steps, state.params, state.statistics, state.n_updates, state.history, monitor)
        # One dict update that no signal can split: the model is the old one or the new one, never a mix.
        vars(self).update({**attributes, "_online_state": state})
        return self
