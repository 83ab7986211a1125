"""Probabilistic PCA (Tipping & Bishop): x = W z + μ + ε, z ~ N(0, I), ε ~ N(0, σ² I)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..engine.validation import check_choice
from ..monitor import ConvergenceMonitor
from .base import LinearGaussianModel, use_covariance


@shared_docstring
class PPCA(LinearGaussianModel):
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
    %(stopping)s
    max_iter : int
        Most EM iterations.
    %(execution)s

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ, ordered by decreasing variance for the closed form.
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : float
        σ².
    %(fitted)s
    """

    solver: str  # the parameter, declared for type checkers (``__init__`` sets it)

    _noise = "isotropic"

    def __init__(self, n_components: int = 2, *, solver: str = "auto", precompute: Any = "auto",
                 tol: float | None = 1e-4, gap_tol: float | None = None, max_iter: int = 1000,
                 random_state: Any = None, n_jobs: int | None = None, chunk_size: int | None = None,
                 verbose: int = 0,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    def _solve(self, X: np.ndarray, n_components: int, rng: np.random.Generator, passes: Passes,
               monitor: ConvergenceMonitor) -> dict:
        solver = check_choice(self.solver, "solver", ("auto", "closed_form", "em"))
        covariance = use_covariance(self.precompute, *X.shape)
        if solver == "closed_form" and self.precompute is False:
            raise ValueError("solver='closed_form' needs the covariance; use precompute=True or 'auto', "
                             "or solver='em' to stream the data.")
        if solver == "closed_form" or (solver == "auto" and covariance):
            result = _core.fit_ppca_closed_form(X, n_components, passes.n_threads, passes.chunk_size)
            if self.verbose:
                history = result["history"]
                monitor._on_iteration({name: history[name][0] for name in history})
            return result
        return self._fit_em(X, n_components, covariance, rng, passes, monitor)

    def _public_noise(self, noise_variance: np.ndarray) -> Any:
        return noise_variance.dtype.type(noise_variance[0])

    def _closed_form_start(self) -> bool:
        return self.solver != "em"
