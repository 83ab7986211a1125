"""The chunk-level steps of the linear VAE (``engine.steps`` describes the interface).

The linear VAE's ELBO has a closed form in the data's moments (count, mean, covariance) for any parameters, so its
chunk statistics are the moments, which merge and blend as PPCA's do, and the "M-step" is L-BFGS on the closed-form
ELBO of the merged moments, from the current parameters. ``partial_fit`` (stepwise) and fits on Dask arrays use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..engine.steps import Params


@dataclass(frozen=True)
class LinearVaeSteps:
    """Steps of the linear VAE: moments as statistics; each update runs up to ``max_iter`` L-BFGS steps."""

    max_iter: int = 50
    gtol: float = 1e-10
    statistics_depend_on_params: bool = False

    def chunk_statistics(self, params: Params | None, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0, row_offset: int = 0) -> Any:
        """Compute the data's moments (count, mean, scatter) over the rows of ``X``: a mergeable ``_core.Moments``."""
        if sample_weight is not None and len(sample_weight):
            raise ValueError("LinearVAE does not take sample weights.")
        return _core.linear_gaussian_moments(X, n_threads, chunk_size)

    def refine(self, params: Params, stats: Any) -> Params:
        """Set the biases to their exact optimum for the data's mean: c = −V x̄, b = x̄."""
        mean = np.array(stats.mean)
        return {**params, "encoder_bias": -np.asarray(params["encoder_weights"]) @ mean, "decoder_bias": mean}

    def expectation(self, stats: Any, params: Params) -> Any:
        """Return the moments: the closed-form ELBO needs nothing else."""
        return stats

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F per sample and the entropy sum's terms, in closed form."""
        return _core.linear_vae_terms(expectation, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """Up to ``max_iter`` L-BFGS steps on the closed-form ELBO of the moments, from ``params``."""
        stop = _core.StopOptions(tol=-1.0, gap_tol=-1.0, max_iter=self.max_iter + 1)
        result = _core.fit_linear_vae_from_moments(expectation, params, stop, self.gtol)
        return {name: result[name] for name in PARAM_NAMES}


#: The parameter dict's entries, as ``_core`` takes them.
PARAM_NAMES = ("encoder_weights", "encoder_bias", "encoder_variance", "decoder_weights", "decoder_bias",
               "noise_variance")
