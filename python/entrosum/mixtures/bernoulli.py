"""Bernoulli mixtures for binary data (DESIGN.md §3): p(x | k) = Π_d μ_kd^x_d (1 − μ_kd)^(1 − x_d)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.validation import check_tolerance
from .discrete import DiscreteMixture


@shared_docstring
class BernoulliMixture(DiscreteMixture):
    """A mixture of products of Bernoulli distributions, fitted by EM.

    The ELBO and its entropy sum are monitored per iteration.

    The entropy sum is H̄[r] − H[π] − Σ_k π̄_k Σ_d H_B(μ_kd), with H_B the Bernoulli entropy; after every
    exact M-step (``alpha=0``) it equals the ELBO, and at convergence both equal the mean log-likelihood.

    Parameters
    ----------
    n_components : int
        Number of components K.
    %(stopping)s
    alpha : float
        Pseudo-count α ≥ 0 added to both outcomes in the M-step, μ_kd = (Σ_n r_nk x_nd + α) / (N_k + 2α)
        (the MAP estimate under a Beta(α + 1, α + 1) prior). It keeps μ away from 0 and 1, where a single
        unseen value would have probability 0. The default 0 is the exact M-step; with ``alpha > 0`` the
        entropy sum differs from the ELBO by a gap of the order of α / N_k, which the monitor shows.
    %(mixture_starts)s
    weights_init, means_init : array-like, optional
        Initial weights (K,) and success probabilities (K, D) in [0, 1]; they replace the corresponding
        values from ``init_params``.
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Success probabilities μ_kd = p(x_d = 1 | k).
    %(mixture_fitted)s

    The data must be binary: every value exactly 0 or 1 (any numeric dtype; float32 stays float32). A scipy.sparse
    matrix is fitted and scored as it is, never densified: the passes touch its stored entries only, so time and
    memory follow its nonzeros (``engine.csr``).
    """

    alpha: float  # the parameter, declared for type checkers (``__init__`` sets it)

    # Binary data are non-negative; scikit-learn has no tag for binary input (see tests/test_sklearn_checks.py).
    _input_tags = {"positive_only": True}
    _core_prefix = "bernoulli_mixture"
    _means_range = {"minimum": 0.0, "maximum": 1.0}
    _data_requirement = "binary (every value 0 or 1)"
    _takes_sparse = True

    def __init__(self, n_components: int = 1, *, tol: float | None = 1e-3, gap_tol: float | None = None,
                 alpha: float = 0.0, max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans",
                 weights_init: Any = None, means_init: Any = None, warm_start: bool = False, random_state: Any = None,
                 verbose: int = 0, n_jobs: int | None = None, chunk_size: int | None = None,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    def _first_bad_row(self, X: np.ndarray, n_threads: int) -> int:
        return _core.first_non_binary_row(X, n_threads)

    @staticmethod
    def _allowed(values: np.ndarray) -> np.ndarray:
        return (values == 0) | (values == 1)

    def _gap_regularisation(self) -> str | None:
        return f"alpha={self.alpha}" if self.alpha else None

    def _check_family_settings(self, X: np.ndarray) -> None:
        check_tolerance(self.alpha, "alpha", allow_none=False)
        super()._check_family_settings(X)

    def _check_means_init(self, means: np.ndarray) -> None:
        if np.any(means < 0) or np.any(means > 1):
            raise ValueError("means_init must hold probabilities in [0, 1] for BernoulliMixture; found values in "
                             f"[{means.min():.6g}, {means.max():.6g}].")

    def _settings(self) -> Any:
        return _core.BernoulliSettings(alpha=float(self.alpha))

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        probabilities = np.asarray(self.means_[k], dtype=np.float64)
        return (rng.random((n, probabilities.shape[0])) < probabilities).astype(np.float64)
