"""Poisson mixtures for counts (DESIGN.md §3): p(x | k) = Π_d λ_kd^x_d e^(−λ_kd) / x_d!."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._discrete_mixture import DiscreteMixture


class PoissonMixture(DiscreteMixture):
    """A mixture of products of Poisson distributions, fitted by EM.

    The ELBO and its entropy sum are monitored per iteration.

    The Poisson base measure 1/x! is not constant, so the entropy sum uses the pseudo-entropy
    λ − λ log λ and a data term: S = H̄[r] − H[π] − Σ_k π̄_k Σ_d (λ_kd − λ_kd log λ_kd) − (1/N) Σ_n Σ_d log x_nd!
    (``monitor_.history['data_term']``). After every M-step it equals the ELBO, and at convergence both
    equal the mean log-likelihood.

    Parameters
    ----------
    n_components : int
        Number of components K.
    tol : float or None
        Stop when the ELBO per sample (the mean log-likelihood) changes by less than ``tol``.
    gap_tol : float or None
        Stop when |ELBO − entropy sum| / |ELBO| < ``gap_tol`` (with ``tol`` too, if both are set).
    max_iter : int
        Most EM iterations per start.
    n_init : int
        Number of starts; the fit with the highest final ELBO is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
        Initial responsibilities: k-means labels, one-hot on k-means++ seeds, uniform random numbers,
        or one-hot on random rows (scikit-learn's meanings).
    weights_init, means_init : array-like, optional
        Initial weights (K,) and rates (K, D), non-negative; they replace the corresponding values from
        ``init_params``.
    warm_start : bool
        Start the next ``fit`` from the current parameters (one start).
    random_state : int, Generator or None
        Seed of the initialisation.
    verbose : int
        1 prints the monitor's line per iteration.
    n_jobs : int or None
        Threads for the passes over the data; None or -1 for all cores.
    chunk_size : int or None
        Rows per chunk in those passes; None picks about 1 MiB per chunk.
    learning_offset : float
        t0 of ``partial_fit``'s step size ρ_t = (t + t0)^(-κ) (as in scikit-learn's LatentDirichletAllocation).
    learning_decay : float
        κ in (0.5, 1] of that step size; 1 weighs every chunk alike (a running mean).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Rates λ_kd = E[x_d | k].
    converged_, n_iter_, lower_bound_, lower_bounds_
        As in scikit-learn: ``lower_bounds_[t]`` is the mean log-likelihood before the t-th M-step.
    monitor_ : ConvergenceMonitor
        ELBO, entropy sum, its terms (with ``data_term``) and the gap per iteration, and the same after
        each M-step.
    n_features_in_ : int

    The data must be counts: non-negative integers (any numeric dtype; float32 stays float32).
    """

    _core_prefix = "poisson_mixture"
    _data_requirement = "counts (non-negative integers)"

    def __init__(self, n_components: int = 1, *, tol: float | None = 1e-3, gap_tol: float | None = None,
                 max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans", weights_init: Any = None,
                 means_init: Any = None, warm_start: bool = False, random_state: Any = None, verbose: int = 0,
                 n_jobs: int | None = None, chunk_size: int | None = None,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self.n_components = n_components
        self.tol = tol
        self.gap_tol = gap_tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay

    def _first_bad_row(self, X: np.ndarray, n_threads: int) -> int:
        return _core.first_non_count_row(X, n_threads)

    @staticmethod
    def _allowed(values: np.ndarray) -> np.ndarray:
        return (values >= 0) & (values == np.floor(values))

    def _check_means_init(self, means: np.ndarray) -> None:
        if np.any(means < 0):
            raise ValueError("means_init must hold non-negative rates for PoissonMixture; found "
                             f"{means.min():.6g}.")

    def _settings(self) -> Any:
        return _core.PoissonSettings()

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        rates = np.asarray(self.means_[k], dtype=np.float64)
        return rng.poisson(rates, size=(n, rates.shape[0])).astype(np.float64)
