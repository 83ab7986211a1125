"""Multinomial mixtures for count vectors with varying totals (DESIGN.md "Second-wave models").

p(x | k) = m! / Π_l x_l! · Π_l p_kl^x_l, with the row's total m = Σ_l x_l given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.csr import CsrData
from ..engine.docs import shared_docstring
from ..engine.validation import check_int
from .discrete import DiscreteMixture


@shared_docstring
class MultinomialMixture(DiscreteMixture):
    """A mixture of multinomial distributions over count vectors with varying totals, fitted by EM.

    The ELBO and its entropy sum are monitored per iteration.

    Each row x_n is a vector of counts with total m_n = Σ_l x_nl > 0 (a bag of words, say), and component k
    draws its m_n counts from the probabilities p_k. The base measure m! / Π_l x_l! is not constant, so the
    entropy sum uses the pseudo-entropy m̄_k · (−Σ_l p_kl log p_kl), with m̄_k the component's
    responsibility-weighted mean total, and a data term:
    S = H̄[r] − H[π] − Σ_k π̄_k m̄_k H[p_k] + (1/N) Σ_n log (m_n! / Π_l x_nl!) (``monitor_.history['data_term']``).
    After every M-step it equals the ELBO, and at convergence both equal the mean log-likelihood.

    Parameters
    ----------
    n_components : int
        Number of components K.
    %(stopping)s
    %(mixture_starts)s
    weights_init, means_init : array-like, optional
        Initial weights (K,) and probabilities (K, D), each row non-negative with sum 1; they replace the
        corresponding values from ``init_params``.
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Probabilities p_kl of the components (each row sums to 1); E[x_l | k, m] = m p_kl.
    %(mixture_fitted)s

    The data must be counts (non-negative integers, any numeric dtype; float32 stays float32) with at least
    one nonzero count per row. A scipy.sparse matrix (a bag of words) is fitted and scored as it is, never
    densified: the passes touch its stored entries only, so time and memory follow its nonzeros (``engine.csr``).
    """

    # Counts: scikit-learn's checks then give it non-negative integers.
    _input_tags = {"positive_only": True, "categorical": True}
    _core_prefix = "multinomial_mixture"
    _means_range = {"minimum": 0.0, "maximum": 1.0}
    _data_requirement = "counts (non-negative integers, at least one nonzero per row)"
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

    def _check_values(self, X: Any, n_threads: int) -> None:
        super()._check_values(X, n_threads)
        if isinstance(X, CsrData):  # the entries are counts already: a zero total is a row without a positive one
            positive_rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))[X.values > 0]
            empty = np.flatnonzero(np.bincount(positive_rows, minlength=X.shape[0]) == 0)
            row = int(empty[0]) if empty.size else -1
        else:
            row = _core.first_zero_total_row(X, n_threads)
        if row >= 0:
            raise ValueError(f"X must be {self._data_requirement} for MultinomialMixture; row {row} has total 0 "
                             "(every count is 0). Remove the empty rows.")

    def _check_means_init(self, means: np.ndarray) -> None:
        if np.any(means < 0) or np.any(np.abs(means.sum(axis=1) - 1.0) > 1e-6):
            raise ValueError("means_init must hold probabilities for MultinomialMixture: non-negative, each row "
                             "summing to 1.")

    def _check_family_params(self, n_features: int) -> None:
        super()._check_family_params(n_features)
        sums = np.asarray(self.means_, dtype=np.float64).sum(axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-4):
            raise ValueError("MultinomialMixture.means_ must hold probabilities whose rows sum to 1; refit the "
                             "model.")

    def _settings(self) -> Any:
        return _core.MultinomialSettings()

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return int(K * (D - 1) + K - 1)

    def sample(self, n_samples: int = 1, total: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Draw count vectors of ``total`` counts each, and their components (random state: ``random_state``).

        The model describes the counts given the row's total, not the total, so the total is chosen here.

        Parameters
        ----------
        n_samples : int
            Number of samples.
        total : int
            The total m of every drawn row (at least 1).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            In the dtype of the fitted means.
        labels : ndarray of shape (n_samples,)
            The component each sample came from.
        """
        self._sample_total = check_int(total, "total", minimum=1)
        return super().sample(n_samples)

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        probabilities = np.clip(np.asarray(self.means_[k], dtype=np.float64), 0.0, None)
        total = getattr(self, "_sample_total", 100)
        return rng.multinomial(total, probabilities / probabilities.sum(), size=n).astype(np.float64)
