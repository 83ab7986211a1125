"""What the mixture estimators share.

The fit loop over ``n_init`` starts, ``warm_start``, prediction,
scores, information criteria and sampling, following ``sklearn.mixture.GaussianMixture``.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from . import _core
from ._dask import DaskBlocks, is_dask_array
from ._data_source import fit_data
from ._estimator import BaseEstimator
from ._online import OnlineMixin
from ._validation import (
    check_choice,
    check_data,
    check_int,
    check_random_state,
    check_tolerance,
    resolve_chunk_size,
    resolve_n_jobs,
)
from .exceptions import ConvergenceWarning
from .monitor import ConvergenceMonitor

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def check_sample_weight(sample_weight: Any, n_samples: int, dtype: Any = np.float64) -> np.ndarray:
    """Return an empty array for no weights, else n_samples finite non-negative float64 weights with a positive sum."""
    if sample_weight is None:
        return np.empty(0)
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
    if not weights.sum() > 0:
        raise ValueError("sample_weight sums to 0; at least one sample needs a positive weight.")
    return weights


class BaseMixture(OnlineMixin, BaseEstimator):
    """A mixture fitted by EM; subclasses supply the parameters and the C++ calls of one family."""

    _name_of_components = "components"

    # Declared for type checkers only (no values, so ``hasattr`` still tells a fitted model): the parameters
    # every mixture's ``__init__`` stores, and the attributes ``fit`` sets.
    n_components: int
    tol: float | None
    gap_tol: float | None
    max_iter: int
    n_init: int
    init_params: str
    weights_init: Any
    means_init: Any
    warm_start: bool
    random_state: Any
    verbose: int
    n_jobs: int | None
    chunk_size: int | None
    weights_: np.ndarray
    means_: np.ndarray
    n_features_in_: int
    monitor_: ConvergenceMonitor
    n_iter_: int
    converged_: bool
    lower_bound_: float
    lower_bounds_: np.ndarray

    # -- to be provided by each family -------------------------------------------------------------
    #: Advice appended to the error raised when a fit fails numerically.
    _numerical_advice = "Use fewer components or check the data."

    def _validate_data_values(self, X: np.ndarray, n_threads: int) -> None:
        """Family-specific checks of the data values (binary, counts, ...)."""

    def _check_family_settings(self, X: np.ndarray) -> None:
        """Family-specific settings (covariance type, pseudo-counts, further initial parameters)."""

    def _check_means_init(self, means: np.ndarray) -> None:
        """Family-specific range of ``means_init`` (shape and finiteness are checked already)."""

    def _init_from_labels(self, X: np.ndarray, weights: np.ndarray, labels: np.ndarray, n_threads: int,
                          chunk_size: int) -> dict:
        """Parameters from one-hot responsibilities (label -1: none), as the family's M-step makes them."""
        raise NotImplementedError

    def _init_random(self, X: np.ndarray, weights: np.ndarray, seed: int, n_threads: int, chunk_size: int) -> dict:
        """Parameters from uniform random responsibilities drawn from ``seed``."""
        raise NotImplementedError

    def _init_given(self) -> bool:
        """Whether the user-given initial parameters are complete, so no pass over the data is needed."""
        return self.weights_init is not None and self.means_init is not None

    def _apply_initial_values(self, params: dict) -> dict:
        """Replace initial parameters by the user-given ones."""
        if self.weights_init is not None:
            params["weights"] = np.asarray(self.weights_init, dtype=np.float64)
        if self.means_init is not None:
            params["means"] = np.asarray(self.means_init, dtype=np.float64)
        return params

    def _run_em(self, X: np.ndarray, weights: np.ndarray, params: dict, monitor: ConvergenceMonitor,
                n_threads: int, chunk_size: int) -> dict:
        raise NotImplementedError

    def _current_params(self) -> dict:
        raise NotImplementedError

    def _params_attributes(self, params: dict, dtype: np.dtype) -> dict[str, Any]:
        """Return the fitted parameter attributes (``weights_``, ``means_``, ...) from the C++ result."""
        raise NotImplementedError

    def _score_core(self, X: np.ndarray, with_responsibilities: bool, n_threads: int,
                    chunk_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _n_parameters(self) -> int:
        raise NotImplementedError

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _steps(self) -> Any:
        """Return the family's chunk-level steps (``entrosum._steps``) with this estimator's settings."""
        raise NotImplementedError

    # -- partial_fit (OnlineMixin) ------------------------------------------------------------------
    def _online_check(self, X: Any, n_threads: int, n_features: int | None, first: bool) -> np.ndarray:
        return self._check_data(X, n_threads, n_features=n_features)

    def _online_weights(self, sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
        return None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0])

    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, n_threads: int,
                      chunk_size: int) -> tuple[Any, dict]:
        self._check_settings(X)
        rng = check_random_state(self.random_state)
        weights = np.empty(0) if weights is None else weights
        return self._steps(), self._initial_params(X, weights, rng, n_threads, chunk_size)

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        self._check_family_settings(X)
        return self._steps(), self._current_params()

    def _online_publish(self, params: dict, dtype: np.dtype, monitor: ConvergenceMonitor,
                        statistics: Any) -> dict[str, Any]:
        lower_bounds = monitor.history["elbo"].copy()
        return {**self._params_attributes(params, dtype), "n_features_in_": int(np.shape(params["means"])[1]),
                "monitor_": monitor, "n_iter_": monitor.n_iter, "converged_": False, "lower_bounds_": lower_bounds,
                "lower_bound_": float(lower_bounds[-1])}

    # -- shared -----------------------------------------------------------------------------------
    def _check_data(self, X: Any, n_threads: int, **kwargs: Any) -> Any:
        if isinstance(X, DaskBlocks):  # every block checked on its worker, in parallel
            X.check(functools.partial(self._check_data, n_threads=1, **kwargs))
            return X
        X = check_data(X, n_threads=n_threads, **kwargs)
        self._validate_data_values(X, n_threads)
        return X

    def _check_initial_values(self, X: np.ndarray) -> None:
        K, D = self.n_components, X.shape[1]
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, dtype=np.float64)
            if weights.shape != (K,):
                raise ValueError(f"weights_init must have shape ({K},), got {weights.shape}.")
            if np.any(weights < 0) or np.any(weights > 1) or not np.isclose(weights.sum(), 1.0):
                raise ValueError(f"weights_init must be in [0, 1] and sum to 1, got sum {weights.sum():.6g}.")
        if self.means_init is not None:
            means = np.asarray(self.means_init, dtype=np.float64)
            if means.shape != (K, D):
                raise ValueError(
                    f"means_init must have shape ({K}, {D}) (n_components, n_features), got {means.shape}.")
            if not np.all(np.isfinite(means)):
                raise ValueError("means_init contains NaN or infinity.")
            self._check_means_init(means)

    def _initial_params(self, X: np.ndarray, weights: np.ndarray, rng: np.random.Generator, n_threads: int,
                        chunk_size: int) -> dict:
        """Return initial parameters from ``init_params`` (scikit-learn's meanings), then the user-given values.

        'kmeans': one-hot on k-means labels; 'k-means++': one-hot on the k-means++ seeds only;
        'random': uniform random responsibilities; 'random_from_data': one-hot on random rows.
        """
        if isinstance(X, DaskBlocks):
            from ._dask_fit import mixture_initial_params

            return mixture_initial_params(self, X, rng)
        K = self.n_components
        seed = int(rng.integers(2**63))
        if self._init_given():
            params: dict = {}  # everything is given: no pass over the data
        elif self.init_params == "kmeans":
            labels = _core.kmeans(X, weights, K, seed, 100, n_threads, chunk_size)[1]
            params = self._init_from_labels(X, weights, labels, n_threads, chunk_size)
        elif self.init_params == "random":
            params = self._init_random(X, weights, seed, n_threads, chunk_size)
        else:
            if self.init_params == "k-means++":
                chosen = _core.kmeans_plusplus(X, weights, K, seed, n_threads)
            else:
                chosen = rng.choice(X.shape[0], size=K, replace=False)
            labels = np.full(X.shape[0], -1, dtype=np.intc)
            labels[chosen] = np.arange(K, dtype=np.intc)
            params = self._init_from_labels(X, weights, labels, n_threads, chunk_size)
        return self._apply_initial_values(params)

    def _check_settings(self, X: np.ndarray) -> None:
        n_components = check_int(self.n_components, "n_components", minimum=1)
        if n_components > X.shape[0]:
            raise ValueError(f"n_components={n_components} must be at most n_samples={X.shape[0]}; "
                             "choose fewer components.")
        check_tolerance(self.tol, "tol", allow_none=True)
        check_tolerance(self.gap_tol, "gap_tol", allow_none=True)
        check_int(self.max_iter, "max_iter", minimum=1)
        check_int(self.n_init, "n_init", minimum=1)
        check_int(self.verbose, "verbose", minimum=0)
        check_choice(self.init_params, "init_params", INIT_PARAMS)
        check_random_state(self.random_state)
        self._check_initial_values(X)
        self._check_family_settings(X)

    def _stop_options(self) -> Any:
        return _core.StopOptions(tol=check_tolerance(self.tol, "tol", allow_none=True),
                                 gap_tol=check_tolerance(self.gap_tol, "gap_tol", allow_none=True),
                                 max_iter=self.max_iter)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BaseMixture:
        """Fit by EM, keeping the best of ``n_init`` starts (highest final ELBO).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            An array in memory, a memory-mapped array (``np.load(path, mmap_mode='r')``, read in place a
            chunk at a time), or an iterable of 2-D chunks (or a function returning a fresh iterator of them)
            for data that live in several files; see ``entrosum._data_source``. A ``dask.array.Array`` is
            fitted on the current ``distributed`` client: its blocks stay on the workers, which run every pass
            over them, while the M-steps run here; the result equals the in-memory fit with the same
            ``random_state`` up to rounding (``entrosum._dask``).
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; an integer weight acts like repeating the row (not with a dask array).

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid data or parameters, or when the fit fails numerically (the message says what to change).
            A failed or interrupted fit leaves a previously fitted model unchanged.
        ConvergenceWarning
            Issued (a warning) when ``max_iter`` is reached first.
        """
        if is_dask_array(X):
            from ._dask_fit import dask_blocks

            if sample_weight is not None:
                raise ValueError("sample_weight is not supported with a dask array yet; fit without it.")
            with dask_blocks(X) as data:
                return self._fit(data, None)
        with fit_data(X) as data:
            return self._fit(data, sample_weight)

    def _fit(self, X: Any, sample_weight: Any) -> BaseMixture:
        n_threads = resolve_n_jobs(self.n_jobs)
        chunk_size = resolve_chunk_size(self.chunk_size)
        X = self._check_data(X, n_threads)
        weights = check_sample_weight(sample_weight, X.shape[0])
        self._check_settings(X)
        em: Callable[..., dict] = self._run_em
        if isinstance(X, DaskBlocks):
            from ._dask_fit import mixture_em

            def dask_em(X: DaskBlocks, weights: np.ndarray, params: dict, monitor: ConvergenceMonitor,
                        *_: Any) -> dict:
                return mixture_em(self, X, params, monitor)

            em = dask_em
        warm = bool(self.warm_start) and hasattr(self, "monitor_")
        if warm and self.n_features_in_ != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {self.n_features_in_} "
                             "features; warm_start needs the same features.")
        rng = check_random_state(self.random_state)
        best = None
        for _ in range(1 if warm else self.n_init):
            monitor = ConvergenceMonitor(tol=self.tol, gap_tol=self.gap_tol, max_iter=self.max_iter,
                                         verbose=self.verbose, model=type(self).__name__)
            try:
                started = time.perf_counter()
                initial = (self._current_params() if warm
                           else self._initial_params(X, weights, rng, n_threads, chunk_size))
                setup_time = time.perf_counter() - started  # the initialising passes (k-means, first M-step)
                result = em(X, weights, initial, monitor, n_threads, chunk_size)
            except _core.NumericalError as error:
                raise ValueError(
                    f"{type(self).__name__} could not be fitted: {error}. {self._numerical_advice}"
                ) from error
            finally:
                monitor._close_progress()  # also when the fit failed or was interrupted
            monitor._finish(result["history"], result["stop_reason"], result["converged"],
                            result["setup_time"] + setup_time)
            if best is None or monitor.elbo > best[1].elbo:
                best = (result, monitor)
        assert best is not None  # n_init >= 1 was checked
        result, monitor = best
        lower_bounds = monitor.history["elbo"].copy()
        fitted = {**self._params_attributes(result, X.dtype), "n_features_in_": X.shape[1], "monitor_": monitor,
                  "n_iter_": monitor.n_iter, "converged_": monitor.converged, "lower_bounds_": lower_bounds,
                  "lower_bound_": float(lower_bounds[-1])}
        # All attributes are set together, after every start has succeeded, in one dict update that no signal
        # can split: Ctrl-C never leaves a half-updated model.
        vars(self).update(fitted)
        if monitor.stop_reason == "max_iter":
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} iterations (last change of the "
                f"ELBO {monitor.history['change'][-1]:.3g}); increase max_iter or tol, or check the data.",
                ConvergenceWarning, stacklevel=2)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit, then return the most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, as for :meth:`fit`.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _checked(self, X: Any) -> tuple[np.ndarray, int, int]:
        self._check_fitted("monitor_")
        n_threads = resolve_n_jobs(self.n_jobs)
        X = self._check_data(X, n_threads, n_features=self.n_features_in_)
        return X, n_threads, resolve_chunk_size(self.chunk_size)

    def score_samples(self, X: Any) -> np.ndarray:
        """Return the log-likelihood log p(x_n) of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples,)
            float64 log-likelihoods.

        Raises
        ------
        NotFittedError
            When the model has not been fitted.
        """
        X, n_threads, chunk_size = self._checked(X)
        return self._score_core(X, False, n_threads, chunk_size)[0]

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

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the responsibilities p(k | x_n).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Each row sums to 1.
        """
        X, n_threads, chunk_size = self._checked(X)
        # Asked for with_responsibilities=True, the core returns them (never None).
        return cast(np.ndarray, self._score_core(X, True, n_threads, chunk_size)[1])

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return np.argmax(self.predict_proba(X), axis=1)

    def bic(self, X: Any) -> float:
        """Return the Bayesian information criterion −2 log-likelihood + n_parameters · log n_samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        float
            Lower is better.
        """
        scores = self.score_samples(X)
        return float(-2.0 * scores.sum() + self._n_parameters() * np.log(scores.shape[0]))

    def aic(self, X: Any) -> float:
        """Return the Akaike information criterion −2 log-likelihood + 2 n_parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        float
            Lower is better.
        """
        return float(-2.0 * self.score_samples(X).sum() + 2.0 * self._n_parameters())

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples and their components from the fitted mixture (random state: ``random_state``).

        Parameters
        ----------
        n_samples : int
            Number of samples.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            In the dtype of the fitted means.
        labels : ndarray of shape (n_samples,)
            The component each sample came from.
        """
        self._check_fitted("monitor_")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, np.asarray(self.weights_, dtype=np.float64))
        draws = [self._sample_component(k, int(n), rng) for k, n in enumerate(counts)]
        labels = np.repeat(np.arange(len(counts)), counts)
        return np.concatenate(draws).astype(self.means_.dtype), labels
