"""Exponential mixtures for positive values (DESIGN.md "Second-wave models"): p(x | k) = Π_d β_kd e^(−β_kd x_d)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from .discrete import DiscreteMixture


@shared_docstring
class ExponentialMixture(DiscreteMixture):
    """A mixture of products of exponential distributions, fitted by EM.

    The ELBO and its entropy sum are monitored per iteration.

    The base measure is constant, so the entropy sum is H̄[r] − H[π] − Σ_k π̄_k Σ_d (1 + log m_kd), with
    1 + log m = 1 − log β the entropy of an exponential distribution of mean m = 1/β. After every M-step it
    equals the ELBO, and at convergence both equal the mean log-likelihood.

    Parameters
    ----------
    n_components : int
        Number of components K.
    %(stopping)s
    %(mixture_starts)s
    weights_init, means_init : array-like, optional
        Initial weights (K,) and positive means (K, D); they replace the corresponding values from
        ``init_params``.
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Means m_kd = E[x_d | k] = 1/β_kd.
    %(mixture_fitted)s

    The data must be positive (every value > 0 and none subnormal; any numeric dtype; float32 stays float32).
    """

    _input_tags = {"positive_only": True}
    _core_prefix = "exponential_mixture"
    _means_range = {"minimum": 0.0}
    _data_requirement = "positive (every value > 0 and not subnormal)"

    def __init__(self, n_components: int = 1, *, tol: float | None = 1e-3, gap_tol: float | None = None,
                 max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans", weights_init: Any = None,
                 means_init: Any = None, warm_start: bool = False, random_state: Any = None, verbose: int = 0,
                 n_jobs: int | None = None, chunk_size: int | None = None,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    def _first_bad_row(self, X: np.ndarray, n_threads: int) -> int:
        return _core.first_non_positive_row(X, n_threads)

    @staticmethod
    def _allowed(values: np.ndarray) -> np.ndarray:
        # the passes over the data read subnormal numbers as 0 (core/floating_point.hpp), so they are refused too
        return values >= np.finfo(values.dtype).tiny

    def _check_means_init(self, means: np.ndarray) -> None:
        if np.any(means <= 0):
            raise ValueError("means_init must hold positive means for ExponentialMixture; found "
                             f"{means.min():.6g}.")

    def _check_family_params(self, n_features: int) -> None:
        super()._check_family_params(n_features)
        self._fitted_array("means_", positive=True)

    def _settings(self) -> Any:
        return _core.ExponentialSettings()

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        means = np.asarray(self.means_[k], dtype=np.float64)
        return rng.exponential(means, size=(n, means.shape[0]))
