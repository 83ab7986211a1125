"""Poisson mixtures for counts (DESIGN.md §3): p(x | k) = Π_d λ_kd^x_d e^(−λ_kd) / x_d!."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from .discrete import DiscreteMixture


@shared_docstring
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
    %(stopping)s
    %(mixture_starts)s
    weights_init, means_init : array-like, optional
        Initial weights (K,) and rates (K, D), non-negative; they replace the corresponding values from
        ``init_params``.
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Rates λ_kd = E[x_d | k].
    %(mixture_fitted)s

    The data must be counts: non-negative integers (any numeric dtype; float32 stays float32). A scipy.sparse
    matrix (a bag of words) is fitted and scored as it is, never densified: the passes touch its stored entries
    only, so time and memory follow its nonzeros (``engine.csr``).
    """

    # Counts: scikit-learn's checks then give it non-negative integers.
    _input_tags = {"positive_only": True, "categorical": True}
    _core_prefix = "poisson_mixture"
    _means_range = {"minimum": 0.0}
    _data_requirement = "counts (non-negative integers)"
    _takes_sparse = True

    def __init__(self, n_components: int = 1, *, tol: float | None = 1e-3, gap_tol: float | None = None,
                 max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans", weights_init: Any = None,
                 means_init: Any = None, warm_start: bool = False, random_state: Any = None, verbose: int = 0,
                 n_jobs: int | None = None, chunk_size: int | None = None,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

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
