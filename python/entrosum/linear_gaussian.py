"""Probabilistic PCA and factor analysis: x = W z + μ + ε, z ~ N(0, I), ε ~ N(0, Ψ).

Both estimators validate here and run every loop over data in C++ (``_core``); DESIGN.md §3 has
their E-step, M-step and entropy sums.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from . import _core
from ._dask import DaskBlocks, is_dask_array
from ._data_source import fit_data
from ._estimator import BaseEstimator
from ._online import OnlineMixin
from ._steps import LinearGaussianSteps
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

#: Largest n_features for which ``precompute='auto'`` keeps the D × D covariance (128 MiB in double).
MAX_PRECOMPUTE_FEATURES = 4096


def _use_covariance(precompute: Any, n_samples: int, n_features: int) -> bool:
    """Whether EM runs on the precomputed covariance (iterations independent of N) or streams the data."""
    check_choice(precompute, "precompute", ("auto", True, False))
    if precompute == "auto":
        # The covariance pass costs N·D² once; a streamed iteration costs N·D·H. Keep the D × D matrix
        # when it is small and the data are at least as tall as they are wide.
        return n_features <= MAX_PRECOMPUTE_FEATURES and n_features <= max(n_samples, 1024)
    return bool(precompute)


class _LinearGaussianModel(OnlineMixin, BaseEstimator):
    """Shared fit, transform, score and sample for PPCA and factor analysis."""

    _noise: str = ""  # 'isotropic' or 'diagonal'
    precompute: Any  # PPCA's and FactorAnalysis's parameter ('auto', True or False)

    # Declared for type checkers only (no values, so ``hasattr`` still tells a fitted model): the parameters
    # both models' ``__init__`` store, and the attributes ``fit`` sets.
    n_components: int
    tol: float | None
    gap_tol: float | None
    max_iter: int
    random_state: Any
    verbose: int
    n_jobs: int | None
    chunk_size: int | None
    components_: np.ndarray
    mean_: np.ndarray
    noise_variance_: Any
    n_features_in_: int
    monitor_: ConvergenceMonitor
    n_iter_: int
    converged_: bool
    lower_bound_: float
    lower_bounds_: np.ndarray

    def _check_settings(self, n_features: int) -> int:
        n_components = check_int(self.n_components, "n_components", minimum=1)
        if n_components >= n_features:
            raise ValueError(
                f"n_components={n_components} must be below n_features={n_features}; "
                "choose fewer components."
            )
        check_tolerance(self.tol, "tol", allow_none=True)
        check_tolerance(self.gap_tol, "gap_tol", allow_none=True)
        check_int(self.max_iter, "max_iter", minimum=1)
        check_int(self.verbose, "verbose", minimum=0)
        check_random_state(self.random_state)
        return n_components

    def _new_monitor(self) -> ConvergenceMonitor:
        return ConvergenceMonitor(tol=self.tol, gap_tol=self.gap_tol, max_iter=self.max_iter,
                                  verbose=self.verbose, model=type(self).__name__)

    def _stop_options(self) -> Any:
        return _core.StopOptions(tol=check_tolerance(self.tol, "tol", allow_none=True),
                                 gap_tol=check_tolerance(self.gap_tol, "gap_tol", allow_none=True),
                                 max_iter=self.max_iter)

    def _fit_em(self, X: np.ndarray, n_components: int, precompute: bool, n_threads: int, chunk_size: int,
                monitor: ConvergenceMonitor) -> dict:
        rng = check_random_state(self.random_state)
        # W starts random in units of the data's root mean variance; Ψ starts at the data variances.
        initial = rng.standard_normal((X.shape[1], n_components)) / np.sqrt(n_components)
        callback = monitor._on_iteration if self.verbose else None
        return _core.fit_linear_gaussian(X, initial, np.empty(0), self._noise, precompute, True, self._stop_options(),
                                         n_threads, chunk_size, callback)

    def _solve(self, X: np.ndarray, n_components: int, n_threads: int, chunk_size: int,
               monitor: ConvergenceMonitor) -> dict:
        raise NotImplementedError

    def _check_dask_solver(self, X: DaskBlocks) -> None:
        """On a dask array EM always runs on the moments (one pass); streaming the data per iteration is refused."""
        check_choice(self.precompute, "precompute", ("auto", True, False))
        if self.precompute is False:
            raise ValueError(f"{type(self).__name__} on a dask array runs on the data's moments, collected in one "
                             "pass; precompute=False (a pass per iteration) is not supported there. Use 'auto'.")

    def _closed_form_start(self) -> bool:
        """Whether ``partial_fit`` starts from the closed-form PPCA of its first chunk (else a random W)."""
        return False

    # -- partial_fit (OnlineMixin) ------------------------------------------------------------------
    def _online_check(self, X: Any, n_threads: int, n_features: int | None, first: bool) -> np.ndarray:
        return check_data(X, min_samples=2 if first else 1, n_features=n_features, n_threads=n_threads)

    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, n_threads: int,
                      chunk_size: int) -> tuple[Any, dict]:
        n_components = self._check_settings(X.shape[1])
        moments = _core.linear_gaussian_moments(X, n_threads, chunk_size)
        if self._closed_form_start():
            result = _core.ppca_closed_form_from_moments(moments, n_components)
            params = {name: result[name] for name in ("mean", "components", "noise_variance")}
        else:
            # as fit: W random in units of the data's root mean variance, Ψ at the data variances
            rng = check_random_state(self.random_state)
            initial = rng.standard_normal((X.shape[1], n_components)) / np.sqrt(n_components)
            params = _core.linear_gaussian_start(moments, initial, np.empty(0), self._noise)
        return LinearGaussianSteps(self._noise), params

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        mean, components, noise = self._params64()
        return LinearGaussianSteps(self._noise), {"mean": mean, "components": components, "noise_variance": noise}

    def _online_publish(self, params: dict, dtype: np.dtype, monitor: ConvergenceMonitor,
                        statistics: Any) -> dict[str, Any]:
        return {**self._fitted_attributes(params, dtype, monitor), "converged_": False}

    def fit(self, X: Any, y: Any = None) -> _LinearGaussianModel:
        """Fit the model to ``X`` of shape (n_samples, n_features).

        ``X`` may be an array in memory, a memory-mapped array (``np.load(path, mmap_mode='r')``, read in
        place a chunk at a time), or an iterable of 2-D chunks (or a function returning a fresh iterator of
        them) for data that live in several files; see ``entrosum._data_source``. A failed or interrupted
        fit raises and leaves a previously fitted model unchanged. A ``dask.array.Array`` is fitted on the current
        ``distributed`` client: one pass on the workers collects the data's moments, from which the closed form or
        EM runs here (``entrosum._dask``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : ignored

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

            with dask_blocks(X) as data:
                return self._fit(data)
        with fit_data(X) as data:
            return self._fit(data)

    def _fit(self, X: Any) -> _LinearGaussianModel:
        n_threads = resolve_n_jobs(self.n_jobs)
        chunk_size = resolve_chunk_size(self.chunk_size)
        if isinstance(X, DaskBlocks):  # every block checked on its worker, in parallel
            X.check(functools.partial(check_data, n_threads=1))
            if X.shape[0] < 2:
                raise ValueError(f"X has {X.shape[0]} sample(s); at least 2 are required.")
        else:
            X = check_data(X, min_samples=2, n_threads=n_threads)
        n_components = self._check_settings(X.shape[1])
        monitor = self._new_monitor()
        try:
            if isinstance(X, DaskBlocks):
                from ._dask_fit import linear_gaussian_solve

                self._check_dask_solver(X)
                result = linear_gaussian_solve(self, X, n_components, monitor)
            else:
                result = self._solve(X, n_components, n_threads, chunk_size, monitor)
        except _core.NumericalError as error:
            raise ValueError(
                f"{type(self).__name__} could not be fitted: {error}. Scale the data, remove constant "
                "or duplicated features, or choose fewer components."
            ) from error
        finally:
            monitor._close_progress()  # also when the fit failed or was interrupted
        monitor._finish(result["history"], result["stop_reason"], result["converged"], result.get("setup_time", 0.0))
        self._set_fitted(result, X.dtype, monitor)  # after success only: a failed fit keeps the previous one
        if result["stop_reason"] == "max_iter":
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} iterations "
                f"(last change of the ELBO {monitor.history['change'][-1]:.3g}, relative gap "
                f"{monitor.relative_gap[-1]:.3g}); increase max_iter or loosen tol/gap_tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _set_fitted(self, result: dict, dtype: np.dtype, monitor: ConvergenceMonitor) -> None:
        # One dict update, which no signal can split: Ctrl-C never leaves a half-updated model.
        vars(self).update(self._fitted_attributes(result, dtype, monitor))

    def _fitted_attributes(self, result: dict, dtype: np.dtype, monitor: ConvergenceMonitor) -> dict[str, Any]:
        mean = result["mean"].astype(dtype)
        lower_bounds = monitor.history["elbo"].copy()
        fitted = {
            "mean_": mean,
            "components_": np.ascontiguousarray(result["components"].T.astype(dtype)),
            "noise_variance_": self._public_noise(result["noise_variance"].astype(dtype)),
            "n_features_in_": int(mean.shape[0]),
            "monitor_": monitor,
            "n_iter_": monitor.n_iter,
            "converged_": monitor.converged,
            "lower_bounds_": lower_bounds,
            "lower_bound_": float(lower_bounds[-1]),
        }
        return fitted

    def _public_noise(self, noise_variance: np.ndarray) -> Any:
        return noise_variance

    def _noise_vector(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.noise_variance_, dtype=np.float64), self.mean_.shape).copy()

    def _params64(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean (D,), W (D, H), noise variances (D,)) in float64 for the C++ calls."""
        return (self.mean_.astype(np.float64), self.components_.T.astype(np.float64), self._noise_vector())

    def _checked(self, X: Any) -> tuple[np.ndarray, int]:
        self._check_fitted()
        n_threads = resolve_n_jobs(self.n_jobs)
        return check_data(X, n_features=self.n_features_in_, n_threads=n_threads), n_threads

    def transform(self, X: Any) -> np.ndarray:
        """Return the posterior means E[z | x].

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            In the dtype of ``X``.
        """
        X, n_threads = self._checked(X)
        return _core.linear_gaussian_posterior_mean(X, *self._params64(), n_threads,
                                                    resolve_chunk_size(self.chunk_size))

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the posterior means of ``X``."""
        return self.fit(X).transform(X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Return the log-likelihood log N(x; μ, WWᵀ + Ψ) of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples,)
            float64 log-likelihoods.
        """
        X, n_threads = self._checked(X)
        return _core.linear_gaussian_log_likelihood(X, *self._params64(), n_threads,
                                                    resolve_chunk_size(self.chunk_size))

    def score(self, X: Any, y: Any = None) -> float:
        """Return the mean log-likelihood of the samples in ``X``.

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

    def get_covariance(self) -> np.ndarray:
        """Return the model covariance WWᵀ + Ψ, shape (n_features, n_features)."""
        self._check_fitted()
        mean, components, noise = self._params64()
        return (components @ components.T + np.diag(noise)).astype(self.mean_.dtype)

    def get_precision(self) -> np.ndarray:
        """Return the inverse of :meth:`get_covariance`."""
        return np.linalg.inv(self.get_covariance().astype(np.float64)).astype(self.mean_.dtype)

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
        self._check_fitted()
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        mean, components, noise = self._params64()
        latent = rng.standard_normal((n_samples, components.shape[1]))
        noise_draws = rng.standard_normal((n_samples, mean.shape[0])) * np.sqrt(noise)
        return (latent @ components.T + mean + noise_draws).astype(self.mean_.dtype)


class PPCA(_LinearGaussianModel):
    """Probabilistic PCA (Tipping & Bishop): x = W z + μ + ε with z ~ N(0, I) and ε ~ N(0, σ² I).

    Parameters
    ----------
    n_components : int
        Latent dimension H, below n_features.
    solver : {'auto', 'closed_form', 'em'}
        'closed_form': one pass for the covariance, then its eigendecomposition (the exact maximum
        likelihood). 'em': EM iterations, which also show learning in the monitor. 'auto' takes the
        closed form whenever the covariance is precomputed (see ``precompute``), else EM.
    precompute : {'auto', True, False}
        For EM: collect the D × D covariance once so that iterations no longer touch the data (True),
        or pass over the data in every iteration, memory O(D·H) (False, for wide data). 'auto' keeps
        the covariance when n_features <= 4096 and n_features <= max(n_samples, 1024).
    tol : float or None
        EM stops when the ELBO per sample changes by less than ``tol``.
    gap_tol : float or None
        EM stops when |ELBO − entropy sum| / |ELBO| < ``gap_tol`` (with ``tol`` too, if both are set).
    max_iter : int
        Most EM iterations.
    random_state : int, Generator or None
        Seed of the random initial W for EM.
    n_jobs : int or None
        Threads for the passes over the data; None or -1 for all cores.
    chunk_size : int or None
        Rows per chunk in those passes; None picks about 1 MiB per chunk.
    learning_offset : float
        t0 of ``partial_fit``'s step size ρ_t = (t + t0)^(-κ) (as in scikit-learn's LatentDirichletAllocation).
    learning_decay : float
        κ in (0.5, 1] of that step size; 1 weighs every chunk alike (a running mean).
    verbose : int
        1 prints the monitor's line per EM iteration.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ, ordered by decreasing variance for the closed form.
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : float
        σ².
    monitor_ : ConvergenceMonitor
        ELBO, entropy sum, its terms and the gap per iteration.
    n_iter_, converged_, lower_bound_, lower_bounds_
        As in scikit-learn; ``lower_bounds_`` is the ELBO per sample per iteration.
    """

    _noise = "isotropic"

    def __init__(self, n_components: int = 2, *, solver: str = "auto", precompute: Any = "auto",
                 tol: float | None = 1e-4, gap_tol: float | None = None, max_iter: int = 1000,
                 random_state: Any = None, n_jobs: int | None = None, chunk_size: int | None = None,
                 verbose: int = 0,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self.n_components = n_components
        self.solver = solver
        self.precompute = precompute
        self.tol = tol
        self.gap_tol = gap_tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.verbose = verbose

    def _solve(self, X: np.ndarray, n_components: int, n_threads: int, chunk_size: int,
               monitor: ConvergenceMonitor) -> dict:
        solver = check_choice(self.solver, "solver", ("auto", "closed_form", "em"))
        use_covariance = _use_covariance(self.precompute, *X.shape)
        if solver == "closed_form" and self.precompute is False:
            raise ValueError("solver='closed_form' needs the covariance; use precompute=True or 'auto', "
                             "or solver='em' to stream the data.")
        if solver == "closed_form" or (solver == "auto" and use_covariance):
            result = _core.fit_ppca_closed_form(X, n_components, n_threads, chunk_size)
            if self.verbose:
                history = result["history"]
                monitor._on_iteration({name: history[name][0] for name in history})
            return result
        return self._fit_em(X, n_components, use_covariance, n_threads, chunk_size, monitor)

    def _public_noise(self, noise_variance: np.ndarray) -> Any:
        return noise_variance.dtype.type(noise_variance[0])

    def _closed_form_start(self) -> bool:
        return self.solver != "em"


class FactorAnalysis(_LinearGaussianModel):
    """Factor analysis by EM: x = W z + μ + ε with z ~ N(0, I) and ε ~ N(0, diag(ψ)).

    Parameters
    ----------
    n_components : int
        Latent dimension H, below n_features.
    precompute : {'auto', True, False}
        Collect the D × D covariance once so that EM iterations no longer touch the data (True), or
        pass over the data in every iteration, memory O(D·H) (False, for wide data). 'auto' keeps the
        covariance when n_features <= 4096 and n_features <= max(n_samples, 1024).
    tol, gap_tol, max_iter, random_state, n_jobs, chunk_size, verbose, learning_offset, learning_decay
        As for :class:`PPCA`.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ (the factor loadings).
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : ndarray of shape (n_features,)
        ψ.
    monitor_, n_iter_, converged_, lower_bound_, lower_bounds_
        As for :class:`PPCA`.
    """

    _noise = "diagonal"

    def __init__(self, n_components: int = 2, *, precompute: Any = "auto", tol: float | None = 1e-4,
                 gap_tol: float | None = None, max_iter: int = 1000, random_state: Any = None,
                 n_jobs: int | None = None, chunk_size: int | None = None, verbose: int = 0,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self.n_components = n_components
        self.precompute = precompute
        self.tol = tol
        self.gap_tol = gap_tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.verbose = verbose

    def _solve(self, X: np.ndarray, n_components: int, n_threads: int, chunk_size: int,
               monitor: ConvergenceMonitor) -> dict:
        use_covariance = _use_covariance(self.precompute, *X.shape)
        return self._fit_em(X, n_components, use_covariance, n_threads, chunk_size, monitor)
