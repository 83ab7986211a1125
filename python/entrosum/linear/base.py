"""What PPCA and factor analysis share: x = W z + μ + ε, z ~ N(0, I), ε ~ N(0, Ψ).

Both estimators validate here and run every loop over data in C++ (``_core``); DESIGN.md §3 has
their E-step, M-step and entropy sums.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks
from ..engine.driver import Passes, PriorSampler, ScoreMixin, TransformMixin
from ..engine.validation import check_choice, check_int, check_memory, check_random_state
from ..monitor import FIELDS, ConvergenceMonitor
from .steps import LinearGaussianSteps

#: Largest n_features for which ``precompute='auto'`` keeps the D × D covariance (128 MiB in double).
MAX_PRECOMPUTE_FEATURES = 4096


def use_covariance(precompute: Any, n_samples: int, n_features: int) -> bool:
    """Whether EM runs on the precomputed covariance (iterations independent of N) or streams the data."""
    check_choice(precompute, "precompute", ("auto", True, False))
    if precompute == "auto":
        # The covariance pass costs N·D² once; a streamed iteration costs N·D·H. Keep the D × D matrix
        # when it is small and the data are at least as tall as they are wide.
        return n_features <= MAX_PRECOMPUTE_FEATURES and n_features <= max(n_samples, 1024)
    return bool(precompute)


def initial_components(rng: np.random.Generator, n_features: int, n_components: int) -> np.ndarray:
    """EM's random starting W (D, H), in units of the data's root mean variance (Ψ starts at the data variances)."""
    return rng.standard_normal((n_features, n_components)) / np.sqrt(n_components)


def closed_form_result(params: dict, moments: Any, seconds: float) -> dict:
    """Return a fit solved in closed form from the data's moments, with its one monitor record.

    The record holds F and the entropy sum's terms of the exact posterior at ``params``, as the C++ closed form
    records them (stop reason 'closed_form').
    """
    terms = _core.linear_gaussian_terms(_core.linear_gaussian_expectation(moments, params), params)
    record = {**terms, "iteration": 1, "gap": terms["elbo"] - terms["entropy_sum"], "change": math.nan,
              "time": seconds, "m_step_elbo": terms["elbo"], "m_step_entropy_sum": terms["entropy_sum"]}
    history = {name: np.array([record[name]], dtype=np.int64 if name == "iteration" else np.float64)
               for name in FIELDS}
    return {**params, "history": history, "stop_reason": "closed_form", "converged": True}


def moments_log_likelihood(moments: Any, params: dict) -> float:
    """Mean log-likelihood of the data whose moments are given, at ``params`` (F of the exact posterior)."""
    return float(_core.linear_gaussian_terms(_core.linear_gaussian_expectation(moments, params), params)["elbo"])


class LinearGaussianModel(ScoreMixin, TransformMixin, PriorSampler):
    """Shared fit, transform, score and sample for PPCA and factor analysis."""

    _noise: str = ""  # 'isotropic' or 'diagonal'
    # Every fit in memory starts with _core's moments pass (closed form, EM on the moments, or fit_linear_gaussian),
    # which names the first row with NaN or infinity.
    _fit_pass_checks_finite = True
    _numerical_advice = "Scale the data, remove constant or duplicated features, or choose fewer components."
    precompute: Any  # PPCA's and FactorAnalysis's parameter ('auto', True or False)

    # Declared for type checkers only (no values, so ``hasattr`` still tells a fitted model): the attributes
    # ``fit`` sets.
    components_: np.ndarray
    mean_: np.ndarray
    noise_variance_: Any

    _fitted_names: tuple[str, ...] = ("mean_", "components_", "noise_variance_", "n_components_")

    def _check_family_params(self, n_features: int) -> None:
        """Check ``mean_`` (D,), ``components_`` (H, D) and positive noise variances (a scalar for PPCA, else (D,))."""
        self._fitted_array("mean_", (n_features,), why="n_features_in_")
        self._fitted_array("components_", ndim=2)
        self._fitted_array("components_", (self.components_.shape[0], n_features), why="n_features_in_ columns")
        noise_shape = () if self._noise == "isotropic" else (n_features,)
        self._fitted_array("noise_variance_", noise_shape, why="n_features_in_", positive=True)

    def _check_settings(self, X: Any) -> int:
        """Return n_components (None: n_features), checked against the data's features."""
        n_features = X.shape[1]
        if self.n_components is None:
            return int(n_features)
        n_components = check_int(self.n_components, "n_components", minimum=0)
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} must be at most n_features={n_features}; "
                "choose fewer components."
            )
        # the D × D covariance and its factorisations, where the fit works on them
        if n_components in (0, n_features) or use_covariance(self.precompute, X.shape[0], n_features):
            check_memory(f"{type(self).__name__} on {n_features} features with precompute={self.precompute!r}",
                         32.0 * n_features * n_features, "the covariance of the features and its factorisations",
                         "Use precompute=False (a pass over the data per iteration) or fewer features.")
        check_memory(f"{type(self).__name__}(n_components={n_components}) on {n_features} features",
                     48.0 * n_features * max(n_components, 1), "its components and statistics",
                     "Choose fewer components or fewer features.")
        return n_components

    def _fit_start(self, X: Any, weights: np.ndarray, settings: Any, rng: np.random.Generator,
                   monitor: ConvergenceMonitor, passes: Passes) -> dict:
        if isinstance(X, DaskBlocks):
            from .dask_fit import linear_gaussian_moments

            self._check_dask_solver(X)
            started = time.perf_counter()
            moments = linear_gaussian_moments(self, X)
            setup_time = time.perf_counter() - started
            result = self._solve_moments(moments, settings, rng, monitor)
            result["setup_time"] = result.get("setup_time", 0.0) + setup_time
        else:
            result = self._solve(X, settings, rng, passes, monitor)
        return {**result, "n_samples": int(X.shape[0])}

    def _solve_moments(self, moments: Any, n_components: int, rng: np.random.Generator,
                       monitor: ConvergenceMonitor) -> dict:
        """Fit from the data's moments (count, mean, covariance): the closed form or EM on D × D matrices."""
        raise NotImplementedError

    def _em_on_moments(self, moments: Any, n_components: int, rng: np.random.Generator, monitor: ConvergenceMonitor,
                       noise_variance: np.ndarray | None = None) -> dict:
        """EM on the moments (iterations independent of N), as the C++ fit with a precomputed covariance runs it.

        The result also holds ``final_log_likelihood``, the mean log-likelihood at the returned parameters.
        """
        from ..engine.dask_em import Fixed, em_result

        initial = initial_components(rng, moments.mean.shape[0], n_components)
        noise = np.empty(0) if noise_variance is None else noise_variance
        params = _core.linear_gaussian_start(moments, initial, noise, self._noise)
        result = em_result(LinearGaussianSteps(self._noise), Fixed(moments), params, self._stop_options(), monitor)
        final = {name: result[name] for name in ("mean", "components", "noise_variance")}
        return {**result, "final_log_likelihood": moments_log_likelihood(moments, final)}

    def _fit_em(self, X: np.ndarray, n_components: int, precompute: bool, rng: np.random.Generator, passes: Passes,
                monitor: ConvergenceMonitor) -> dict:
        initial = initial_components(rng, X.shape[1], n_components)
        callback = monitor._on_iteration if self.verbose else None
        return _core.fit_linear_gaussian(X, initial, np.empty(0), self._noise, precompute, True, self._stop_options(),
                                         passes.n_threads, passes.chunk_size, callback)

    def _solve(self, X: np.ndarray, n_components: int, rng: np.random.Generator, passes: Passes,
               monitor: ConvergenceMonitor) -> dict:
        """Fit in memory: the closed form or EM."""
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

    # -- partial_fit (stepwise EM, engine.online) ---------------------------------------------------
    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, passes: Passes) -> tuple[Any, dict]:
        n_components = self._check_settings(X)
        if not 0 < n_components < X.shape[1]:
            raise ValueError(f"partial_fit learns 1 to n_features - 1 = {X.shape[1] - 1} components by stepwise EM; "
                             f"got n_components={n_components}. Use fit for {n_components} components.")
        moments = _core.linear_gaussian_moments(X, passes.n_threads, passes.chunk_size)
        if self._closed_form_start():
            result = _core.ppca_closed_form_from_moments(moments, n_components)
            params = {name: result[name] for name in ("mean", "components", "noise_variance")}
        else:
            initial = initial_components(check_random_state(self.random_state), X.shape[1], n_components)
            params = _core.linear_gaussian_start(moments, initial, np.empty(0), self._noise)
        return LinearGaussianSteps(self._noise), params

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        mean, components, noise = self._params64()
        return LinearGaussianSteps(self._noise), {"mean": mean, "components": components, "noise_variance": noise}

    def fit(self, X: Any, y: Any = None) -> LinearGaussianModel:
        """Fit the model to ``X`` of shape (n_samples, n_features).

        ``X`` may be an array in memory, a memory-mapped array (``np.load(path, mmap_mode='r')``, read in
        place a chunk at a time), or an iterable of 2-D chunks (or a function returning a fresh iterator of
        them) for data that live in several files; see ``entrosum.engine.data_source``. A failed or interrupted
        fit raises and leaves a previously fitted model unchanged. A ``dask.array.Array`` is fitted on the current
        ``distributed`` client: one pass on the workers collects the data's moments, from which the closed form or
        EM runs here (``entrosum.engine.dask``).

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
        return self._fit(X)

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        components = np.asarray(result["components"]).reshape(len(result["mean"]), -1)  # (D, H), also for H = 0
        return {"mean_": result["mean"].astype(dtype),
                "components_": np.ascontiguousarray(components.T.astype(dtype)),
                "noise_variance_": self._public_noise(result["noise_variance"].astype(dtype)),
                "n_components_": int(components.shape[1])}

    def _public_noise(self, noise_variance: np.ndarray) -> Any:
        return noise_variance

    def _noise_vector(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.noise_variance_, dtype=np.float64), self.mean_.shape).copy()

    def _params64(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean (D,), W (D, H), noise variances (D,)) in float64 for the C++ calls."""
        self._check_fitted_params()
        return (self.mean_.astype(np.float64), self.components_.T.astype(np.float64), self._noise_vector())

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
        X, passes = self._inference_data(X)
        means = _core.linear_gaussian_posterior_mean(X, *self._params64(), passes.n_threads, passes.chunk_size)
        return self._transform_output(means)

    def _transform_output(self, means: np.ndarray) -> np.ndarray:
        """Return what ``transform`` gives from the posterior means (PPCA may whiten them)."""
        return means

    def score_samples(self, X: Any) -> np.ndarray:
        """Return the log-likelihood log N(x; μ, WWᵀ + Ψ) of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples,)
            The log-likelihoods, computed in double, in the dtype of ``X`` (float32 or float64).
        """
        X, passes = self._inference_data(X)
        # computed in double; given in the data's dtype, as scikit-learn does
        return self._core_log_likelihoods(X, passes).astype(X.dtype, copy=False)

    def _core_log_likelihoods(self, X: np.ndarray, passes: Passes) -> np.ndarray:
        return _core.linear_gaussian_log_likelihood(X, *self._params64(), passes.n_threads, passes.chunk_size)

    def _log_likelihoods(self, X: Any) -> np.ndarray:
        """Return the log-likelihoods log p(x_n) in float64."""
        X, passes = self._inference_data(X)
        return self._core_log_likelihoods(X, passes)

    def get_covariance(self) -> np.ndarray:
        """Return the model covariance WWᵀ + Ψ, shape (n_features, n_features)."""
        self._check_fitted()
        mean, components, noise = self._params64()
        return (components @ components.T + np.diag(noise)).astype(self.mean_.dtype)

    def get_precision(self) -> np.ndarray:
        """Return the inverse of :meth:`get_covariance`."""
        return np.linalg.inv(self.get_covariance().astype(np.float64)).astype(self.mean_.dtype)

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        mean, components, noise = self._params64()
        latent = rng.standard_normal((n_samples, components.shape[1]))
        noise_draws = rng.standard_normal((n_samples, mean.shape[0])) * np.sqrt(noise)
        return latent @ components.T + mean + noise_draws
