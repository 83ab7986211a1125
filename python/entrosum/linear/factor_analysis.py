"""Factor analysis by EM: x = W z + μ + ε, z ~ N(0, I), ε ~ N(0, diag(ψ))."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..monitor import ConvergenceMonitor
from .base import LinearGaussianModel, use_covariance


@shared_docstring
class FactorAnalysis(LinearGaussianModel):
    """Factor analysis by EM: x = W z + μ + ε with z ~ N(0, I) and ε ~ N(0, diag(ψ)).

    Parameters
    ----------
    n_components : int
        Latent dimension H, below n_features.
    precompute : {'auto', True, False}
        Collect the D × D covariance once so that EM iterations no longer touch the data (True), or
        pass over the data in every iteration, memory O(D·H) (False, for wide data). 'auto' keeps the
        covariance when n_features <= 4096 and n_features <= max(n_samples, 1024).
    %(stopping)s
    max_iter : int
        Most EM iterations.
    %(execution)s

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ (the factor loadings).
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : ndarray of shape (n_features,)
        ψ.
    %(fitted)s
    """

    _noise = "diagonal"

    def __init__(self, n_components: int = 2, *, precompute: Any = "auto", tol: float | None = 1e-4,
                 gap_tol: float | None = None, max_iter: int = 1000, random_state: Any = None,
                 n_jobs: int | None = None, chunk_size: int | None = None, verbose: int = 0,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    def _solve(self, X: np.ndarray, n_components: int, rng: np.random.Generator, passes: Passes,
               monitor: ConvergenceMonitor) -> dict:
        return self._fit_em(X, n_components, use_covariance(self.precompute, *X.shape), rng, passes, monitor)
