"""The one fit driver of every estimator: validation → data source → C++ EM → monitor → fitted attributes.

A model family subclasses :class:`EMEstimator` and writes only what is its own:

* ``_check_settings(X)``: validate its constructor parameters against the data, returning what its starts need;
* ``_fit_start(X, weights, settings, rng, monitor, passes)``: one start, its initial parameters and its EM (through
  ``_core`` in memory, or over the blocks of a Dask array), returning the C++ result: the parameters plus
  ``history``, ``stop_reason``, ``converged`` and ``setup_time``;
* ``_params_attributes(result, dtype)``: the fitted parameter attributes (``means_``, ``components_``, ...);

and where it differs from the defaults: ``_check_values`` (data values the family cannot model), ``_n_starts``
(several starts, the best kept), ``_takes_sample_weight``, ``_min_samples``, ``_numerical_advice``.

The driver owns the rest, the same for every model: data sources (arrays, memory maps, iterables of chunks, Dask
arrays), threads and chunks, NaN checks, the monitor and its progress display, the best of several starts, the
ConvergenceWarning, and setting every fitted attribute at once, so that a failed or interrupted fit leaves a
previously fitted model as it was. ``partial_fit`` (stepwise EM, ``online.update``) publishes through the same
attributes.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..exceptions import ComponentRecoveryWarning, ConvergenceWarning
from ..monitor import ConvergenceMonitor
from . import online
from .dask import DaskBlocks, is_dask_array
from .data_source import fit_data
from .estimator import BaseEstimator
from .validation import (
    check_data,
    check_int,
    check_random_state,
    check_sample_weight,
    check_tolerance,
    resolve_chunk_size,
    resolve_n_jobs,
)

#: Stop reasons after which a fit warns that it did not converge.
_UNCONVERGED = {"max_iter": "did not converge in max_iter={max_iter} iterations",
                "line_search": "stopped: its line search found no further increase"}


@dataclass(frozen=True)
class Passes:
    """How the C++ passes over the data run: ``n_threads`` threads over chunks of ``chunk_size`` rows (0: auto)."""

    n_threads: int
    chunk_size: int


class EMEstimator(BaseEstimator):
    """Base of every estimator: the fit driver, and the checks before inference on new data."""

    #: Advice appended to the error raised when a fit fails numerically.
    _numerical_advice = "Scale the data or choose fewer components."
    #: Fewest rows ``fit`` accepts.
    _min_samples = 2
    #: Whether ``fit`` and ``partial_fit`` take ``sample_weight``.
    _takes_sample_weight = False

    # Constructor parameters every estimator has and attributes every fit sets, declared for type checkers only
    # (no values, so ``hasattr`` still tells a fitted model).
    n_components: int
    tol: float | None
    gap_tol: float | None
    max_iter: int
    random_state: Any
    verbose: int
    n_jobs: int | None
    chunk_size: int | None
    learning_offset: float
    learning_decay: float
    n_features_in_: int
    monitor_: ConvergenceMonitor
    n_iter_: int
    converged_: bool
    lower_bound_: float
    lower_bounds_: np.ndarray

    # -- what each family provides ------------------------------------------------------------------
    def _check_settings(self, X: Any) -> Any:
        """Validate the constructor parameters for data ``X``; return what ``_fit_start`` needs."""
        raise NotImplementedError

    def _fit_start(self, X: Any, weights: np.ndarray, settings: Any, rng: np.random.Generator,
                   monitor: ConvergenceMonitor, passes: Passes) -> dict:
        """Run one start (initial parameters and EM); return the C++ result with its history."""
        raise NotImplementedError

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        """Return the fitted parameter attributes from a result's parameters."""
        raise NotImplementedError

    def _check_values(self, X: np.ndarray, n_threads: int) -> None:
        """Refuse data values the family cannot model (binary data, counts, ...); any finite value by default."""

    def _n_starts(self) -> int:
        """Return the number of starts of one fit; the one with the highest final ELBO is kept."""
        return 1

    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, passes: Passes) -> tuple[Any, dict]:
        """Return ``partial_fit``'s steps (``engine.steps``) and initial parameters from its first chunk."""
        raise NotImplementedError

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        """Return ``partial_fit``'s steps and the current parameters, to continue a fit with stepwise EM."""
        raise NotImplementedError

    def _online_result(self, params: dict, statistics: Any) -> dict:
        """Return the result that ``partial_fit`` makes fitted attributes from (the parameters, by default)."""
        return params

    # -- the driver ------------------------------------------------------------------------------------
    def _passes(self) -> Passes:
        return Passes(resolve_n_jobs(self.n_jobs), resolve_chunk_size(self.chunk_size))

    def _check_common_settings(self) -> None:
        """Validate the parameters every estimator has (before the family's own, ``_check_settings``)."""
        self._stop_options()
        check_int(self.verbose, "verbose", minimum=0)
        check_random_state(self.random_state)

    def _stop_options(self) -> Any:
        return _core.StopOptions(tol=check_tolerance(self.tol, "tol", allow_none=True),
                                 gap_tol=check_tolerance(self.gap_tol, "gap_tol", allow_none=True),
                                 max_iter=check_int(self.max_iter, "max_iter", minimum=1))

    def _new_monitor(self) -> ConvergenceMonitor:
        return ConvergenceMonitor(tol=self.tol, gap_tol=self.gap_tol, max_iter=self.max_iter, verbose=self.verbose,
                                  model=type(self).__name__)

    def _fit(self, X: Any, sample_weight: Any = None) -> Any:
        """Fit to ``X`` from any data source: what every estimator's ``fit`` calls."""
        if is_dask_array(X):
            from .dask_em import dask_blocks

            if sample_weight is not None:
                raise ValueError("sample_weight is not supported with a dask array yet; fit without it.")
            with dask_blocks(X) as blocks:
                return self._fit_data(blocks, None)
        with fit_data(X) as data:
            return self._fit_data(data, sample_weight)

    def _fit_data(self, X: Any, sample_weight: Any) -> Any:
        passes = self._passes()
        X = self._check_data(X, passes.n_threads, min_samples=self._min_samples)
        weights = self._check_sample_weight(sample_weight, X.shape[0])
        self._check_common_settings()
        settings = self._check_settings(X)
        rng = check_random_state(self.random_state)
        best: tuple[dict, ConvergenceMonitor] | None = None
        for _ in range(self._n_starts()):
            monitor = self._new_monitor()
            try:
                result = self._fit_start(X, weights, settings, rng, monitor, passes)
            except _core.NumericalError as error:
                raise ValueError(f"{type(self).__name__} could not be fitted: {error}. {self._numerical_advice}") \
                    from error
            finally:
                monitor._close_progress()  # also when the fit failed or was interrupted
            monitor._finish(result["history"], result["stop_reason"], result["converged"],
                            result.get("setup_time", 0.0), result.get("recoveries", ()))
            if best is None or monitor.elbo > best[1].elbo:
                best = (result, monitor)
        assert best is not None, "every estimator makes at least one start"
        result, monitor = best
        # All attributes are set together, after every start has succeeded, in one dict update that no signal can
        # split: Ctrl-C never leaves a half-updated model.
        vars(self).update(self._fitted_attributes(result, X.dtype, monitor, X.shape[1]))
        self._warn_of_recoveries(monitor.recoveries)
        self._warn_if_unconverged(monitor)
        return self

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
            For non-numeric data, or sample weights given to a model that takes none.
        """
        online.update(self, X, sample_weight)
        return self

    def _fitted_attributes(self, result: dict, dtype: np.dtype, monitor: ConvergenceMonitor,
                           n_features: int) -> dict[str, Any]:
        """Return every fitted attribute: the family's parameters and what all models share."""
        # lower_bounds_ holds ELBOs only: iterations of an annealed objective are NaN there (their values stay in
        # the monitor's history).
        lower_bounds = np.where(monitor.annealed, np.nan, monitor.history["elbo"])
        return {**self._params_attributes(result, dtype), "n_features_in_": int(n_features), "monitor_": monitor,
                "n_iter_": monitor.n_iter, "converged_": monitor.converged, "lower_bounds_": lower_bounds,
                "lower_bound_": float(lower_bounds[-1])}

    def _warn_of_recoveries(self, recoveries: list[dict[str, Any]], stacklevel: int = 5) -> None:
        """Warn of every component an M-step re-seeded, naming it and the iteration."""
        for recovery in recoveries:
            cause = ("was empty (no sample had any responsibility for it)" if recovery["reason"] == "empty"
                     else "collapsed (its covariance was singular)")
            warnings.warn(
                f"{type(self).__name__}: component {recovery['component']} {cause} at iteration "
                f"{recovery['iteration']}; it was re-seeded at the worst-explained sample (row {recovery['row']}) and "
                "the fit went on. Fewer components may suit these data.", ComponentRecoveryWarning,
                stacklevel=stacklevel)

    def _warn_if_unconverged(self, monitor: ConvergenceMonitor) -> None:
        why = _UNCONVERGED.get(monitor.stop_reason)
        if why is None:
            return
        warnings.warn(
            f"{type(self).__name__} {why.format(max_iter=self.max_iter)} (last change of the ELBO "
            f"{monitor.history['change'][-1]:.3g}, relative gap {monitor.relative_gap[-1]:.3g}); increase max_iter "
            "or loosen tol/gap_tol, or check the data.",
            ConvergenceWarning, stacklevel=5)  # the caller of fit: fit -> _fit -> _fit_data -> here

    # -- data ------------------------------------------------------------------------------------------
    def _check_data(self, X: Any, n_threads: int, *, n_features: int | None = None, min_samples: int = 1) -> Any:
        """Return ``X`` checked (shape, dtype, NaN, the family's values); a Dask array is checked on its workers."""
        if isinstance(X, DaskBlocks):  # every block checked on its worker, in parallel
            X.check(functools.partial(self._check_data, n_threads=1, n_features=n_features))
            if X.shape[0] < min_samples:
                raise ValueError(f"X has {X.shape[0]} sample(s); at least {min_samples} are required.")
            return X
        X = check_data(X, n_threads=n_threads, n_features=n_features, min_samples=min_samples)
        self._check_values(X, n_threads)
        return X

    def _check_sample_weight(self, sample_weight: Any, n_samples: int) -> np.ndarray:
        """Return the weights as float64 (empty: none); a model without weights refuses them."""
        if sample_weight is None:
            return np.empty(0)
        if not self._takes_sample_weight:
            raise TypeError(f"{type(self).__name__} does not take sample_weight.")
        return check_sample_weight(sample_weight, n_samples)

    def _inference_data(self, X: Any) -> tuple[np.ndarray, Passes]:
        """Check that the model is fitted and ``X`` has its features; return ``X`` and how passes over it run."""
        self._check_fitted("monitor_")
        passes = self._passes()
        return self._check_data(X, passes.n_threads, n_features=self.n_features_in_), passes


class ScoreMixin:
    """``score`` as the mean of ``score_samples`` (the mean log-likelihood), for models with a likelihood."""

    def score_samples(self, X: Any) -> np.ndarray:
        """Return the log-likelihood of each sample (each model defines it)."""
        raise NotImplementedError

    def score(self, X: Any, y: Any = None) -> float:
        """Return the mean log-likelihood of the samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.
        y : ignored

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))


class TransformMixin:
    """``fit_transform`` for models whose ``transform`` gives posterior means."""

    def fit(self, X: Any, y: Any = None) -> Any:
        """Fit the model (each model defines it)."""
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:
        """Return the posterior means (each model defines it)."""
        raise NotImplementedError

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the posterior means of ``X``."""
        return self.fit(X).transform(X)


class PriorSampler(EMEstimator):
    """An estimator whose ``sample`` draws z from the prior and then x given z (``_draw``)."""

    components_: np.ndarray

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Return ``n_samples`` draws of x, in float64."""
        raise NotImplementedError

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draw samples from the fitted model.

        Parameters
        ----------
        n_samples : int
            Number of samples.
        random_state : int, Generator or None
            Seed; the estimator's own ``random_state`` when None.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            In the dtype of the fitted parameters.
        """
        self._check_fitted("components_")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return self._draw(n_samples, rng).astype(self.components_.dtype)
