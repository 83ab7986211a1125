"""What binary sparse coding and sigmoid belief nets share: the posterior over binary states and its API.

Each data point's posterior q_n(z) ∝ p(x_n, z | Θ) lives on a set of binary states: all 2^H of them
(``posterior='exact'``) or S kept states per data point (``posterior='truncated'``), improved at every E-step
by proposals (bit flips, prior draws, cross-overs), a proposal replacing a kept state only when its joint is
larger. The free energy (1/N) Σ_n log Σ_{z∈K_n} p(x_n, z | Θ) is the log-likelihood for the exact posterior
and a lower bound of it for the truncated one. Every loop over data runs in C++ (``_core``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.dask import DaskBlocks
from ..engine.driver import Passes, PriorSampler, TransformMixin
from ..engine.validation import check_choice, check_int, check_random_state
from ..monitor import ConvergenceMonitor
from .dask_fit import data_moments, em_result
from .steps import BinaryLatentSteps

#: Most latent units of the exact posterior (2^16 states per data point).
MAX_EXACT_COMPONENTS = 16
#: Most latent units of a truncated posterior (a state is one 64-bit word).
MAX_COMPONENTS = 64
#: π of every cause at the start of a fit.
INITIAL_PRIOR = 0.3
#: Seed of the proposals when inferring the posterior of new data: the same data give the same posterior.
INFERENCE_SEED = 0


class BinaryLatentModel(TransformMixin, PriorSampler):
    """Base of the binary-latent estimators (``_core`` functions named by ``_core_name``)."""

    _takes_sample_weight = True
    _min_samples = 1
    _fitted_names: tuple[str, ...] = ("components_", "offset_", "prior_")

    posterior: str
    n_states: int
    proposals: Any
    inference_rounds: int
    n_init: int
    components_: np.ndarray
    offset_: np.ndarray
    prior_: np.ndarray

    # -- what each model provides ----------------------------------------------------------------
    def _initial_params(self, mean: np.ndarray, variance: np.ndarray, n_components: int,
                        rng: np.random.Generator) -> dict:
        """Return the starting parameters from the data's (weighted) mean and variance per feature."""
        raise NotImplementedError

    def _steps(self, settings: dict, seed: int, rounds: int = 1) -> BinaryLatentSteps:
        """Return the model's chunk-level steps (``binary.steps``) with the posterior's settings."""
        raise NotImplementedError

    def _core_fit(self, X: np.ndarray, weights: np.ndarray, initial: dict, settings: dict, seed: int,
                  monitor: ConvergenceMonitor, passes: Passes) -> dict:
        raise NotImplementedError

    def _core_posterior(self, X: np.ndarray, params: dict, settings: dict, with_states: bool,
                        passes: Passes) -> dict:
        raise NotImplementedError

    def _params(self) -> dict:
        """Return the fitted parameters as the float64 dict the C++ functions take."""
        raise NotImplementedError

    def _check_family_params(self, n_features: int) -> None:
        """Check ``components_`` (H, D) with H >= 1, ``offset_`` (D,) and ``prior_`` (H,) strictly inside (0, 1)."""
        components = self._fitted_array("components_", ndim=2)
        if components.shape[0] < 1:
            raise ValueError(f"{type(self).__name__}.components_ has shape {components.shape}; a fitted model has at "
                             "least one cause. Refit the model.")
        self._fitted_array("components_", (components.shape[0], n_features), why="n_features_in_ columns")
        self._fitted_array("offset_", (n_features,), why="n_features_in_")
        prior = self._fitted_array("prior_", (components.shape[0],), why="one per cause in components_")
        if not np.all((prior > 0) & (prior < 1)):
            raise ValueError(f"{type(self).__name__}.prior_ must lie strictly between 0 and 1; refit the model.")

    def _n_starts(self) -> int:
        return check_int(self.n_init, "n_init", minimum=1)

    # -- settings ----------------------------------------------------------------------------------
    def _check_settings(self, X: Any = None) -> dict:
        posterior = check_choice(self.posterior, "posterior", ("exact", "truncated"))
        limit = MAX_EXACT_COMPONENTS if posterior == "exact" else MAX_COMPONENTS
        n_components = check_int(self.n_components, "n_components", minimum=1)
        if n_components > limit:
            reason = (f"the exact posterior enumerates 2^n_components states; use posterior='truncated' above "
                      f"{MAX_EXACT_COMPONENTS}" if posterior == "exact" else "a state is one 64-bit word")
            raise ValueError(f"n_components must be at most {limit} with posterior={posterior!r} ({reason}); "
                             f"got {n_components}.")
        n_states = check_int(self.n_states, "n_states", minimum=1)
        if posterior == "truncated" and n_components < 63 and n_states > 2 ** n_components:
            raise ValueError(f"n_states must be at most 2^n_components = {2 ** n_components} (the number of distinct "
                             f"states); got {n_states}.")
        if self.proposals is None:
            proposals: list[int] = []
        else:
            # whole floats too: a saved model's JSON gives the tuple back as a list of numbers
            values = [int(v) if isinstance(v, (float, np.floating)) and float(v).is_integer() else v
                      for v in self.proposals]
            if len(values) != 3:
                raise ValueError("proposals must be None or (bit_flips, prior_draws, crossovers), three integers "
                                 f">= 0 per data point and E-step; got {self.proposals!r}.")
            proposals = [check_int(v, "proposals", minimum=0) for v in values]
        return {"n_components": n_components, "posterior": posterior, "n_states": n_states, "proposals": proposals,
                "inference_rounds": check_int(self.inference_rounds, "inference_rounds", minimum=1)}

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit the model to ``X`` of shape (n_samples, n_features), with optional per-row ``sample_weight``.

        A failed fit raises and leaves a previously fitted model unchanged.
        """
        return self._fit(X, sample_weight)

    def _fit_start(self, X: Any, weights: np.ndarray, settings: Any, rng: np.random.Generator,
                   monitor: ConvergenceMonitor, passes: Passes) -> dict:
        if isinstance(X, DaskBlocks):
            mean, variance = data_moments(X)
        else:
            mean, variance = _weighted_moments(X, weights)
        initial = self._initial_params(mean, variance, settings["n_components"], rng)
        seed = int(rng.integers(0, 2 ** 63))
        if isinstance(X, DaskBlocks):
            return em_result(self._steps(settings, seed), X, initial, self._stop_options(), monitor)
        return self._core_fit(X, weights, initial, settings, seed, monitor, passes)

    # -- partial_fit (stepwise EM, engine.online) ----------------------------------------------------
    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, passes: Passes) -> tuple[Any, dict]:
        settings = self._check_settings(X)
        rng = check_random_state(self.random_state)
        mean, variance = _weighted_moments(X, np.empty(0) if weights is None else weights)
        initial = self._initial_params(mean, variance, settings["n_components"], rng)
        seed = int(rng.integers(0, 2 ** 63))
        return self._steps(settings, seed, rounds=settings["inference_rounds"]), initial

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        settings = self._check_settings(X)
        return self._steps(settings, INFERENCE_SEED, rounds=settings["inference_rounds"]), self._params()

    # -- inference ---------------------------------------------------------------------------------
    def _infer(self, X: Any, with_states: bool) -> dict:
        X, passes = self._inference_data(X)
        return self._core_posterior(X, self._params(), self._check_settings(), with_states, passes)

    def transform(self, X: Any) -> np.ndarray:
        """Return the posterior marginals E_q[z] (n_samples, n_components) under the fitted parameters.

        For a truncated posterior, each data point's states come from ``inference_rounds`` E-steps of proposals
        from fresh state sets (seeded alike on every call).
        """
        return self._infer(X, with_states=False)["means"]

    def predict_posterior(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return each sample's states and their posterior probabilities.

        (Named like ``predict_proba`` and like ``SparseCoding.predict_posterior``: ``posterior`` is the parameter
        choosing exact or truncated posteriors.)

        Returns
        -------
        states : ndarray of uint8, shape (n_samples, n_states, n_components)
            The 0/1 states (all 2^H of them, in the order of their binary value, for the exact posterior; the
            kept ones, most probable first, for the truncated one).
        probabilities : ndarray of shape (n_samples, n_states)
            q_n of each state; each row sums to 1.
        """
        result = self._infer(X, with_states=True)
        return result["states"], result["probabilities"]

    def score(self, X: Any, y: Any = None) -> float:
        """Return the free energy per sample of ``X`` after its own E-step under the fitted parameters.

        The mean log-likelihood for the exact posterior; a lower bound of it for the truncated one.
        """
        return float(self._infer(X, with_states=False)["free_energy"])

    def _draw_latents(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return (rng.random((n_samples, self.prior_.shape[0])) < self.prior_.astype(np.float64)).astype(np.float64)


def _weighted_moments(X: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the (weighted) mean and variance per feature of data in memory, in float64."""
    w = weights if weights.size else None
    mean = np.average(X, axis=0, weights=w).astype(np.float64)
    return mean, np.average((X - mean) ** 2, axis=0, weights=w).astype(np.float64)
