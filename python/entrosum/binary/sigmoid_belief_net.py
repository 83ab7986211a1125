"""Sigmoid belief nets: binary causes of binary data through logistic units."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..engine.validation import check_int, check_tolerance
from ..monitor import ConvergenceMonitor
from .base import INFERENCE_SEED, BinaryLatentModel
from .steps import SigmoidBeliefNetSteps


@shared_docstring
class SigmoidBeliefNet(BinaryLatentModel):
    """A sigmoid belief net with one layer of binary causes, learned by (truncated) variational EM.

    The model is z_h ~ Bern(π_h), x_d | z ~ Bern(S(W_dᵀ z + b_d)) for binary data x. The E-step's statistics are
    summed per distinct state, so the M-step needs no pass over the data: π in closed form, and (W_d, b_d) for
    each observed dimension by Newton's method (a weighted logistic regression over the states). At its optimum
    the free energy equals the entropy sum

        (1/N) Σ_n H[q_n] − Σ_h H_B(π_h) − (1/N) Σ_n E_{q_n} Σ_d H_B(S(W_dᵀ z + b_d)),

    to the Newton tolerance; the monitor records both.

    Parameters
    ----------
    n_components : int
        Number of binary causes H (at most 16 for ``posterior='exact'``, 64 otherwise).
    posterior : {'exact', 'truncated'}
        'exact': all 2^H states. 'truncated': ``n_states`` states per data point, kept between iterations and
        improved at every E-step by proposals (bit flips, prior draws, cross-overs).
    n_states : int
        S, the states kept per data point (truncated), at most 2^H.
    proposals : None or (int, int, int)
        Bit flips, prior draws and cross-overs per data point and E-step; None: S of each. More proposals find
        better states: on the 5×5 bars with S = 32, (64, 64, 64) and ``n_init=2`` found every bar in 5 of 5
        seeds, the default and one start 8 or 9 of the 10 bars.
    newton_tol : float
        The M-step's Newton iterations stop when half the Newton decrement per sample is below this.
    newton_max_iter : int
        Most Newton iterations per observed dimension and M-step.
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
        Wᵀ: each cause's weights on the observed units' log-odds.
    offset_ : ndarray of shape (n_features,)
        b.
    prior_ : ndarray of shape (n_components,)
        π.
    %(fitted)s
    """

    _numerical_advice = "Choose fewer components, or drop features that are constant."

    newton_tol: float
    newton_max_iter: int

    def __init__(self, n_components: int = 8, *, posterior: str = "exact", n_states: int = 32,
                 proposals: Any = None, newton_tol: float = 1e-10, newton_max_iter: int = 100,
                 tol: float | None = 1e-5, gap_tol: float | None = None, max_iter: int = 300, n_init: int = 1,
                 inference_rounds: int = 20, random_state: Any = None, n_jobs: int | None = None,
                 chunk_size: int | None = None, verbose: int = 0, learning_offset: float = 10.0,
                 learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    def _check_settings(self, X: Any = None) -> dict:
        settings = super()._check_settings(X)
        settings["newton_tol"] = check_tolerance(self.newton_tol, "newton_tol", allow_none=False)
        settings["newton_max_iter"] = check_int(self.newton_max_iter, "newton_max_iter", minimum=1)
        return settings

    def _check_values(self, X: np.ndarray, n_threads: int) -> None:
        row = _core.first_non_binary_row(X, n_threads)
        if row >= 0:
            bad = float(X[row][(X[row] != 0) & (X[row] != 1)][0])
            raise ValueError(f"X must be binary (every value 0 or 1) for {type(self).__name__}; row {row} holds "
                             f"{bad:g}.")

    def _initial_params(self, mean: np.ndarray, variance: np.ndarray, n_components: int,
                        rng: np.random.Generator) -> dict:
        mean = np.clip(mean, 0.01, 0.99)
        # Small positive random weights (each cause starts by switching features on), b at each feature's log-odds,
        # π = 0.1. On the bars, weights of either sign, larger ones, π = 0.3 or b well below the log-odds found
        # every bar in none of 5 seeds; this start in 4.
        return {"components": np.abs(rng.standard_normal((mean.shape[0], n_components))) * 0.5,
                "offset": np.log(mean / (1 - mean)).astype(np.float64),
                "prior": np.full(n_components, 0.1)}

    def _steps(self, settings: dict, seed: int, rounds: int = 1) -> SigmoidBeliefNetSteps:
        return SigmoidBeliefNetSteps(settings["posterior"], settings["n_states"], seed, tuple(settings["proposals"]),
                                     rounds, newton_tol=settings["newton_tol"],
                                     newton_max_iter=settings["newton_max_iter"])

    def _core_fit(self, X: np.ndarray, weights: np.ndarray, initial: dict, settings: dict, seed: int,
                  monitor: ConvergenceMonitor, passes: Passes) -> dict:
        return _core.fit_sigmoid_belief_net(
            X, weights, initial, settings["posterior"], settings["n_states"], seed, settings["proposals"],
            settings["newton_tol"], settings["newton_max_iter"], self._stop_options(), passes.n_threads,
            passes.chunk_size, monitor._on_iteration if self.verbose else None)

    def _core_posterior(self, X: np.ndarray, params: dict, settings: dict, with_states: bool,
                        passes: Passes) -> dict:
        return _core.sigmoid_belief_net_posterior(
            X, params, settings["posterior"], settings["n_states"], INFERENCE_SEED, settings["proposals"],
            settings["inference_rounds"], with_states, passes.n_threads, passes.chunk_size)

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        return {"components_": np.ascontiguousarray(result["components"].T.astype(dtype)),
                "offset_": result["offset"].astype(dtype), "prior_": result["prior"].astype(dtype)}

    def _params(self) -> dict:
        self._check_fitted()
        return {"components": self.components_.T.astype(np.float64), "offset": self.offset_.astype(np.float64),
                "prior": self.prior_.astype(np.float64)}

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        params = self._params()
        activation = self._draw_latents(n_samples, rng) @ params["components"].T + params["offset"]
        return (rng.random(activation.shape) < 1.0 / (1.0 + np.exp(-activation))).astype(np.float64)
