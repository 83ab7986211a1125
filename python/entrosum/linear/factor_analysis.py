"""Factor analysis by EM: x = W z + μ + ε, z ~ N(0, I), ε ~ N(0, diag(ψ))."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..engine.validation import check_choice, check_int
from ..monitor import ConvergenceMonitor
from .base import LinearGaussianModel, closed_form_result, initial_components, use_covariance
from .rotation import ORTHOMAX_GAMMA, orthomax_rotation


@shared_docstring
class FactorAnalysis(LinearGaussianModel):
    """Factor analysis by EM: x = W z + μ + ε with z ~ N(0, I) and ε ~ N(0, diag(ψ)).

    Parameters
    ----------
    n_components : int or None
        Latent dimension H, from 0 to n_features; None means n_features. With H = 0 the model is a
        Gaussian with a diagonal covariance, ψ the data's variances (closed form, no EM).
    precompute : {'auto', True, False}
        Collect the D × D covariance once so that EM iterations no longer touch the data (True), or
        pass over the data in every iteration, memory O(D·H) (False, for wide data). 'auto' keeps the
        covariance when n_features <= 4096 and n_features <= max(n_samples, 1024).
    noise_variance_init : array-like of shape (n_features,), optional
        Initial ψ (positive); the data's variances when None.
    rotation : {None, 'varimax', 'quartimax'}
        Rotate the fitted loadings by an orthomax criterion (``entrosum.linear.rotation``): the model, its
        covariance and its score stay the same, ``components_`` and :meth:`transform` are rotated.
    %(stopping)s
    max_iter : int
        Most EM iterations.
    %(execution)s
    svd_method, iterated_power, copy
        scikit-learn's FactorAnalysis arguments, accepted (and checked) so that this class takes its parameters;
        they change nothing: EM here needs no singular value decomposition. As in scikit-learn, ``random_state``
        (the seed of EM's starting loadings) is 0 by default, so that a fit is the same every time.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ (the factor loadings), rotated when ``rotation`` is set.
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : ndarray of shape (n_features,)
        ψ.
    loglike_ : ndarray of shape (n_iterations,)
        The log-likelihood of the training data (a sum over samples, as in scikit-learn) at the parameters after
        each iteration, so ``loglike_[-1]`` is that of the fitted model; per sample and before each iteration's
        M-step it is ``lower_bounds_``.
    n_components_ : int
    %(fitted)s
    """

    # The parameters, declared for type checkers (``__init__`` sets them).
    noise_variance_init: Any
    rotation: str | None
    svd_method: str
    iterated_power: int
    copy: bool

    _noise = "diagonal"
    _fitted_names = LinearGaussianModel._fitted_names + ("loglike_",)

    def __init__(self, n_components: int | None = 2, *, precompute: Any = "auto", noise_variance_init: Any = None,
                 rotation: str | None = None, tol: float | None = 1e-4, gap_tol: float | None = None,
                 max_iter: int = 1000, random_state: Any = 0, n_jobs: int | None = None,
                 chunk_size: int | None = None, verbose: int = 0, learning_offset: float = 10.0,
                 learning_decay: float = 0.7, svd_method: str = "randomized", iterated_power: int = 3,
                 copy: bool = True) -> None:
        self._store_params(locals())

    def _check_settings(self, X: Any) -> int:
        check_choice(self.rotation, "rotation", (None, *ORTHOMAX_GAMMA))
        check_choice(self.svd_method, "svd_method", ("lapack", "randomized"))
        check_int(self.iterated_power, "iterated_power", minimum=0)
        self._initial_noise(X.shape[1])
        return super()._check_settings(X)

    def _initial_noise(self, n_features: int) -> np.ndarray | None:
        """Return ``noise_variance_init`` checked (shape, positive and finite), or None."""
        if self.noise_variance_init is None:
            return None
        noise = np.asarray(self.noise_variance_init)
        if noise.dtype.kind not in "biuf":
            raise TypeError(f"noise_variance_init must hold numbers, got dtype {noise.dtype}.")
        noise = noise.astype(np.float64)
        if noise.shape != (n_features,):
            raise ValueError(f"noise_variance_init must have shape ({n_features},) (n_features), got {noise.shape}.")
        if not np.all(np.isfinite(noise) & (noise > 0)):
            raise ValueError("noise_variance_init must hold positive finite variances.")
        return noise

    def _solve(self, X: np.ndarray, n_components: int, rng: np.random.Generator, passes: Passes,
               monitor: ConvergenceMonitor) -> dict:
        if n_components == 0 or use_covariance(self.precompute, *X.shape):
            # EM on D × D matrices from one pass: its moments also give the final log-likelihood.
            started = time.perf_counter()
            moments = _core.linear_gaussian_moments(X, passes.n_threads, passes.chunk_size)
            setup_time = time.perf_counter() - started
            result = self._solve_moments(moments, n_components, rng, monitor)
            return {**result, "setup_time": result.get("setup_time", 0.0) + setup_time}
        noise = self._initial_noise(X.shape[1])
        initial = np.empty(0) if noise is None else noise
        components = initial_components(rng, X.shape[1], n_components)
        callback = monitor._on_iteration if self.verbose else None
        result = _core.fit_linear_gaussian(X, components, initial, self._noise, False, True, self._stop_options(),
                                           passes.n_threads, passes.chunk_size, callback)
        final = _core.linear_gaussian_log_likelihood(X, result["mean"], result["components"], result["noise_variance"],
                                                     passes.n_threads, passes.chunk_size)
        return {**result, "final_log_likelihood": float(np.mean(final))}

    def _solve_moments(self, moments: Any, n_components: int, rng: np.random.Generator,
                       monitor: ConvergenceMonitor) -> dict:
        n_features = moments.mean.shape[0]
        if n_components == 0:  # ψ at the data's variances is the maximum likelihood
            started = time.perf_counter()
            noise = np.maximum(np.diag(moments.covariance), _core.linear_gaussian_noise_floor(moments))
            params = {"mean": np.array(moments.mean), "components": np.zeros((n_features, 0)), "noise_variance": noise}
            result = closed_form_result(params, moments, time.perf_counter() - started)
            if monitor.verbose:
                monitor._on_iteration({name: values[0] for name, values in result["history"].items()})
            return {**result, "final_log_likelihood": float(result["history"]["elbo"][0])}
        return self._em_on_moments(moments, n_components, rng, monitor, self._initial_noise(n_features))

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        attributes = super()._params_attributes(result, dtype)
        if self.rotation is not None and attributes["n_components_"] > 1:
            loadings = attributes["components_"].T.astype(np.float64)  # (D, H)
            rotated = loadings @ orthomax_rotation(loadings, self.rotation)
            attributes["components_"] = np.ascontiguousarray(rotated.T).astype(dtype)
        if "history" in result:  # a fit (partial_fit has no log-likelihood of all its data)
            elbo = np.asarray(result["history"]["elbo"], dtype=np.float64)
            after = np.append(elbo[1:], result.get("final_log_likelihood", elbo[-1]))
            attributes["loglike_"] = result["n_samples"] * after
        return attributes
