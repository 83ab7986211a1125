"""The linear VAE: linear encoder and decoder, fitted on its closed-form ELBO by L-BFGS (DESIGN.md, "Gaussian VAEs").

Prior z ~ N(0, I), decoder x | z ~ N(W z + b, σ² I), encoder q(z | x) = N(V x + c, diag τ²) with one τ² shared by
every data point. Its ELBO is the expectation of a quadratic in z, so it has a closed form in the data's count, mean
and covariance, with no sampling: one chunked pass collects them (in memory, memory-mapped, chunk iterables, Dask)
and the C++ fit maximises the ELBO on D × D matrices, its entropy sum and ELBO recorded per L-BFGS step. At the
maximum both equal PPCA's maximum log-likelihood (Lucas et al. 2019; Damm et al., arXiv:2010.14860).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks
from ..engine.docs import shared_docstring
from ..engine.driver import Passes, PriorSampler, ScoreMixin, TransformMixin
from ..engine.validation import check_data, check_int, check_random_state, check_tolerance
from ..monitor import ConvergenceMonitor
from .steps import PARAM_NAMES, LinearVaeSteps


def initial_params(rng: np.random.Generator, moments: Any, n_components: int) -> dict:
    """Random starting parameters in the data's units: W and V of the data's scale, τ² = 1, biases at the optimum.

    In units of the data's root mean variance s, W' ~ N(0, 1/H) and V' ~ N(0, 1/D); then W = s W', V = V' / s.
    """
    mean = np.asarray(moments.mean, dtype=np.float64)
    n_features = mean.shape[0]
    scale = float(np.sqrt(max(np.trace(np.asarray(moments.covariance)) / n_features, np.finfo(float).tiny)))
    decoder_weights = rng.standard_normal((n_features, n_components)) / np.sqrt(n_components) * scale
    encoder_weights = rng.standard_normal((n_components, n_features)) / np.sqrt(n_features) / scale
    return {"encoder_weights": encoder_weights, "encoder_bias": -encoder_weights @ mean,
            "encoder_variance": np.ones(n_components), "decoder_weights": decoder_weights,
            "decoder_bias": mean.copy(), "noise_variance": scale**2}


@shared_docstring
class LinearVAE(ScoreMixin, TransformMixin, PriorSampler):
    """Linear variational autoencoder, fitted on its closed-form ELBO by L-BFGS.

    The model is z ~ N(0, I), x | z ~ N(W z + b, σ² I), and the encoder is q(z | x) = N(V x + c, diag τ²) with the
    variances τ² shared by all data points. The ELBO needs no sampling: it is a function of the data's mean and
    covariance, collected in one pass. The fit maximises it over V, W and τ² by L-BFGS with the biases and σ² at
    their exact optimum (c = −V x̄, b = x̄, σ² = the mean expected squared residual per feature). The monitor records
    F and the entropy sum S = Σ_h log τ_h − (D/2) log(2πe σ²) at every step; they meet at the maximum, where both
    equal the maximum log-likelihood of PPCA with the same number of components (the encoder's diagonal covariance
    is then exact, W having orthogonal columns).

    Parameters
    ----------
    n_components : int
        Latent dimension H, from 1 to n_features − 1.
    tol : float or None
        Stop when the ELBO per sample changes by less than ``tol`` between L-BFGS steps (and the gap rule holds);
        None switches the rule off.
    gap_tol : float or None
        Stop when also ``|ELBO − entropy sum| / |ELBO| < gap_tol``. Both rules are needed: near the optimum F
        changes quadratically while the gap shrinks only linearly (F alone stops with a gap of about
        ``sqrt(tol)``), and the gap is F's derivative along a rescaling of each latent dimension only (it can
        vanish away from the optimum). The defaults end with F and S within about 1e-7 of PPCA's maximum
        log-likelihood per sample; L-BFGS cannot resolve the gap much below that in double precision, and a fit
        whose line search stalls there with a relative gap below 1e-6 counts as converged (stop reason
        'gradient').
    max_iter : int
        Most L-BFGS steps (the monitor's first record is the starting point).
    gtol : float
        L-BFGS also stops, converged, when the gradient's largest entry is below ``gtol`` · max(1, ``|F|``) in
        units of the data's root mean variance.
    %(execution)s

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ, the decoder's weights.
    mean_ : ndarray of shape (n_features,)
        b, the decoder's bias (the data mean).
    noise_variance_ : float
        σ².
    encoder_weights_ : ndarray of shape (n_components, n_features)
        V.
    encoder_bias_ : ndarray of shape (n_components,)
        c (= −V x̄).
    encoder_variances_ : ndarray of shape (n_components,)
        τ², the encoder's variances, shared by all data points.
    n_components_ : int
    lbfgs_info_ : dict
        ``evaluations`` of the ELBO and its gradient and the L-BFGS ``status`` ('callback' when the monitor's rule
        stopped it, 'gradient' when the gradient vanished, 'line_search' when F could not be increased further).
    %(fitted)s
    """

    _numerical_advice = "Scale the data, remove constant or duplicated features, or choose fewer components."
    _fitted_names = ("components_", "mean_", "noise_variance_", "n_components_", "encoder_weights_", "encoder_bias_",
                     "encoder_variances_", "lbfgs_info_")

    # Parameters and fitted attributes, declared for type checkers (set by ``__init__`` and by fit / partial_fit).
    gtol: float
    components_: np.ndarray
    mean_: np.ndarray
    noise_variance_: Any
    encoder_weights_: np.ndarray
    encoder_bias_: np.ndarray
    encoder_variances_: np.ndarray

    def __init__(self, n_components: int = 2, *, tol: float | None = 1e-10, gap_tol: float | None = 1e-8,
                 max_iter: int = 10000, gtol: float = 1e-10, random_state: Any = None, n_jobs: int | None = None,
                 chunk_size: int | None = None, verbose: int = 0, learning_offset: float = 10.0,
                 learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    # -- settings and fit ------------------------------------------------------------------------------
    def _check_settings(self, X: Any) -> int:
        n_features = X.shape[1]
        n_components = check_int(self.n_components, "n_components", minimum=1)
        if n_components >= n_features:
            raise ValueError(f"LinearVAE needs n_components < n_features = {n_features}, got n_components="
                             f"{n_components}; choose fewer components (with as many as features, PPCA models the "
                             "data's covariance exactly).")
        check_tolerance(self.gtol, "gtol", allow_none=False)
        return n_components

    def fit(self, X: Any, y: Any = None) -> LinearVAE:
        """Fit the linear VAE to ``X`` of shape (n_samples, n_features).

        One pass collects the data's mean and covariance (an array in memory, a memory-mapped array, an iterable of
        chunks, or a ``dask.array.Array`` on the current ``distributed`` client); L-BFGS then works on D × D
        matrices. A failed or interrupted fit raises and leaves a previously fitted model unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : ignored

        Returns
        -------
        self
        """
        return self._fit(X)

    def _moments(self, X: Any, passes: Passes) -> Any:
        if isinstance(X, DaskBlocks):
            from ..engine.dask_em import chunk_statistics

            steps = LinearVaeSteps()
            return X.reduce(X.map(chunk_statistics, list(X.offsets[:-1]), steps=steps, params=None))
        return _core.linear_gaussian_moments(X, passes.n_threads, passes.chunk_size)

    def _fit_start(self, X: Any, weights: np.ndarray, settings: Any, rng: np.random.Generator,
                   monitor: ConvergenceMonitor, passes: Passes) -> dict:
        started = time.perf_counter()
        moments = self._moments(X, passes)
        setup_time = time.perf_counter() - started
        initial = initial_params(rng, moments, settings)
        callback = monitor._on_iteration if self.verbose else None
        result = _core.fit_linear_vae_from_moments(moments, initial, self._stop_options(),
                                                   check_tolerance(self.gtol, "gtol", allow_none=False), callback)
        return {**result, "setup_time": setup_time}

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        decoder_weights = np.asarray(result["decoder_weights"])
        attributes = {
            "components_": np.ascontiguousarray(decoder_weights.T.astype(dtype)),
            "mean_": np.asarray(result["decoder_bias"]).astype(dtype),
            "noise_variance_": dtype.type(result["noise_variance"]),
            "encoder_weights_": np.ascontiguousarray(np.asarray(result["encoder_weights"]).astype(dtype)),
            "encoder_bias_": np.asarray(result["encoder_bias"]).astype(dtype),
            "encoder_variances_": np.asarray(result["encoder_variance"]).astype(dtype),
            "n_components_": int(decoder_weights.shape[1]),
        }
        if "evaluations" in result:
            attributes["lbfgs_info_"] = {"evaluations": int(result["evaluations"]),
                                         "status": str(result["lbfgs_status"])}
        return attributes

    # -- partial_fit (stepwise, engine.online) -------------------------------------------------------------
    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, passes: Passes) -> tuple[Any, dict]:
        n_components = self._check_settings(X)
        moments = _core.linear_gaussian_moments(X, passes.n_threads, passes.chunk_size)
        params = initial_params(check_random_state(self.random_state), moments, n_components)
        return LinearVaeSteps(gtol=check_tolerance(self.gtol, "gtol", allow_none=False)), params

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        return LinearVaeSteps(gtol=check_tolerance(self.gtol, "gtol", allow_none=False)), self._params64()

    def _online_result(self, params: dict, statistics: Any) -> dict:
        return {name: params[name] for name in PARAM_NAMES}

    # -- inference -----------------------------------------------------------------------------------------
    def _check_family_params(self, n_features: int) -> None:
        """Check the decoder and the encoder against each other and ``n_features``.

        Decoder: ``components_`` (H, D), ``mean_`` (D,), σ² > 0; encoder: ``encoder_weights_`` (H, D),
        ``encoder_bias_`` (H,), ``encoder_variances_`` (H,) > 0.
        """
        components = self._fitted_array("components_", ndim=2)
        H = components.shape[0]
        self._fitted_array("components_", (H, n_features), why="n_features_in_ columns")
        self._fitted_array("mean_", (n_features,), why="n_features_in_")
        self._fitted_array("noise_variance_", (), positive=True)
        self._fitted_array("encoder_weights_", (H, n_features), why="as components_")
        self._fitted_array("encoder_bias_", (H,), why="one per row of components_")
        self._fitted_array("encoder_variances_", (H,), why="one per row of components_", positive=True)

    def _params64(self) -> dict:
        """Return the fitted parameters in float64, as ``_core`` takes them."""
        self._check_fitted()
        return {"encoder_weights": self.encoder_weights_.astype(np.float64),
                "encoder_bias": self.encoder_bias_.astype(np.float64),
                "encoder_variance": self.encoder_variances_.astype(np.float64),
                "decoder_weights": self.components_.T.astype(np.float64),
                "decoder_bias": self.mean_.astype(np.float64), "noise_variance": float(self.noise_variance_)}

    def transform(self, X: Any) -> np.ndarray:
        """Return the encoder means V x + c.

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
        return _core.linear_vae_encode(X, self._params64(), passes.n_threads, passes.chunk_size)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Return the decoder means W z + b for codes ``Z``.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        self._check_fitted()
        Z = check_data(Z, name="Z", n_features=self.components_.shape[0])
        return (Z.astype(np.float64) @ self.components_.astype(np.float64) + self.mean_).astype(self.components_.dtype)

    def score_samples(self, X: Any) -> np.ndarray:
        """Return each sample's ELBO, in closed form (a lower bound of its log-likelihood under the decoder).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples,)
            Computed in double, given in the dtype of ``X``.
        """
        X, passes = self._inference_data(X)
        return self._core_elbo(X, passes).astype(X.dtype, copy=False)

    def _core_elbo(self, X: np.ndarray, passes: Passes) -> np.ndarray:
        return _core.linear_vae_elbo_samples(X, self._params64(), passes.n_threads, passes.chunk_size)

    def _log_likelihoods(self, X: Any) -> np.ndarray:
        """Return each sample's ELBO in float64 (the model's score; its log-likelihood is bounded below by it)."""
        X, passes = self._inference_data(X)
        return self._core_elbo(X, passes)

    def get_covariance(self) -> np.ndarray:
        """Return the decoder's marginal covariance W Wᵀ + σ² I, shape (n_features, n_features)."""
        self._check_fitted()
        components = self.components_.T.astype(np.float64)
        covariance = components @ components.T + float(self.noise_variance_) * np.eye(components.shape[0])
        return covariance.astype(self.mean_.dtype)

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        params = self._params64()
        latent = rng.standard_normal((n_samples, params["decoder_weights"].shape[1]))
        noise = rng.standard_normal((n_samples, params["decoder_bias"].shape[0])) * np.sqrt(params["noise_variance"])
        return latent @ params["decoder_weights"].T + params["decoder_bias"] + noise
