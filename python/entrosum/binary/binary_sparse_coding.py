"""Binary sparse coding: binary causes with a linear Gaussian observation model."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..monitor import ConvergenceMonitor
from .base import INFERENCE_SEED, INITIAL_PRIOR, BinaryLatentModel
from .steps import BinarySparseCodingSteps


@shared_docstring
class BinarySparseCoding(BinaryLatentModel):
    """Binary sparse coding with exact or truncated posteriors, learned by (truncated) variational EM.

    The model is z_h ~ Bern(π_h) (or one shared π), x | z ~ N(W z + b, σ² I). The M-step is closed form, and
    after it the free energy equals the entropy sum

        (1/N) Σ_n H[q_n] − Σ_h H_B(π_h) − (D/2) log(2 π e σ²),

    which the monitor records beside it.

    Parameters
    ----------
    n_components : int
        Number of binary causes H (at most 16 for ``posterior='exact'``, 64 otherwise).
    posterior : {'exact', 'truncated'}
        'exact': all 2^H states, shared by every data point. 'truncated': ``n_states`` states per data point,
        kept between iterations and improved at every E-step by proposals.
    n_states : int
        S, the states kept per data point (truncated), at most 2^H.
    proposals : None or (int, int, int)
        Proposals per data point and E-step: bit flips of kept states, draws from the prior, cross-overs of two
        kept states; None: S of each.
    shared_prior : bool
        One π for every cause.
    max_iter : int
        Most EM iterations per start.
    n_init : int
        Number of starts (random initial parameters); the fit with the highest final free energy is kept. EM for
        binary latents has local optima: on the 5×5 bars one start finds every bar in about 60% of the seeds.
    %(stopping)s
    inference_rounds : int
        E-steps of proposals when inferring the posterior of new data (truncated posterior).
    %(execution)s

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ: each cause's contribution to the mean.
    offset_ : ndarray of shape (n_features,)
        b.
    noise_variance_ : float
        σ².
    prior_ : ndarray of shape (n_components,)
        π.
    %(fitted)s
    """

    _numerical_advice = "Choose fewer components or check the data for duplicated features."
    _fitted_names = BinaryLatentModel._fitted_names + ("noise_variance_",)

    shared_prior: bool
    noise_variance_: float

    def __init__(self, n_components: int = 8, *, posterior: str = "exact", n_states: int = 32,
                 proposals: Any = None, shared_prior: bool = False, tol: float | None = 1e-5,
                 gap_tol: float | None = None, max_iter: int = 300, n_init: int = 1, inference_rounds: int = 20,
                 random_state: Any = None, n_jobs: int | None = None, chunk_size: int | None = None,
                 verbose: int = 0, learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    def _check_settings(self, X: Any = None) -> dict:
        settings = super()._check_settings(X)
        if not isinstance(self.shared_prior, (bool, np.bool_)):
            raise ValueError(f"shared_prior must be True or False, got {self.shared_prior!r}.")
        settings["shared_prior"] = bool(self.shared_prior)
        return settings

    def _initial_params(self, mean: np.ndarray, variance: np.ndarray, n_components: int,
                        rng: np.random.Generator) -> dict:
        scale = float(np.sqrt(max(variance.mean(), np.finfo(np.float64).tiny)))
        # causes start as random patterns of the data's scale about its mean, σ² as its variance, and π = 0.3 (on the
        # bars, 0.3 found every bar from more starts than 0.1, 0.2 or 0.5, and random rows of the data fewer still)
        return {"components": rng.standard_normal((mean.shape[0], n_components)) * scale, "offset": mean,
                "noise_variance": float(variance.mean()) or 1.0, "prior": np.full(n_components, INITIAL_PRIOR)}

    def _steps(self, settings: dict, seed: int, rounds: int = 1) -> BinarySparseCodingSteps:
        return BinarySparseCodingSteps(settings["posterior"], settings["n_states"], seed,
                                       tuple(settings["proposals"]), rounds, shared_prior=settings["shared_prior"])

    def _core_fit(self, X: np.ndarray, weights: np.ndarray, initial: dict, settings: dict, seed: int,
                  monitor: ConvergenceMonitor, passes: Passes) -> dict:
        return _core.fit_binary_sparse_coding(
            X, weights, initial, settings["posterior"], settings["n_states"], seed, settings["proposals"],
            settings["shared_prior"], self._stop_options(), passes.n_threads, passes.chunk_size,
            monitor._on_iteration if self.verbose else None)

    def _core_posterior(self, X: np.ndarray, params: dict, settings: dict, with_states: bool,
                        passes: Passes) -> dict:
        return _core.binary_sparse_coding_posterior(
            X, params, settings["posterior"], settings["n_states"], INFERENCE_SEED, settings["proposals"],
            settings["inference_rounds"], with_states, passes.n_threads, passes.chunk_size)

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        return {"components_": np.ascontiguousarray(result["components"].T.astype(dtype)),
                "offset_": result["offset"].astype(dtype), "noise_variance_": dtype.type(result["noise_variance"]),
                "prior_": result["prior"].astype(dtype)}

    def _check_family_params(self, n_features: int) -> None:
        super()._check_family_params(n_features)
        self._fitted_array("noise_variance_", (), positive=True)

    def _params(self) -> dict:
        self._check_fitted()
        return {"components": self.components_.T.astype(np.float64), "offset": self.offset_.astype(np.float64),
                "noise_variance": float(self.noise_variance_), "prior": self.prior_.astype(np.float64)}

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        params = self._params()
        latent = self._draw_latents(n_samples, rng)
        noise = rng.standard_normal((n_samples, params["offset"].shape[0])) * np.sqrt(params["noise_variance"])
        return latent @ params["components"].T + params["offset"] + noise
