"""Gamma mixtures for positive values (DESIGN.md "Second-wave models"): p(x | k) = Π_d β^k x^(k−1) e^(−βx) / Γ(k)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..monitor import ConvergenceMonitor
from .discrete import DiscreteMixture


@shared_docstring
class GammaMixture(DiscreteMixture):
    """A mixture of products of gamma distributions with learned shapes and rates, fitted by EM.

    The ELBO and its entropy sum are monitored per iteration.

    The gamma family has two sufficient statistics, x and log x. The M-step sets each mean m = k/β to the
    responsibility-weighted mean of x and the shape k by Newton's method on log k − ψ(k) = log m − mean(log x)
    (weighted means over the component). The base measure is constant, so the entropy sum is
    H̄[r] − H[π] − Σ_k π̄_k Σ_d H_kd with the gamma entropies H = k − log β + log Γ(k) + (1 − k) ψ(k); after
    every M-step it equals the ELBO, and at convergence both equal the mean log-likelihood.

    Parameters
    ----------
    n_components : int
        Number of components K.
    %(stopping)s
    %(mixture_starts)s
    weights_init, means_init, shapes_init : array-like, optional
        Initial weights (K,), positive means (K, D) and positive shapes (K, D); they replace the corresponding
        values from ``init_params``. Given weights and means without shapes start from shapes 1 (exponential
        distributions).
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Means m_kd = E[x_d | k] = k_kd / β_kd.
    shapes_ : ndarray of shape (n_components, n_features)
        Shapes k_kd; the rates are ``shapes_ / means_``.
    %(mixture_fitted)s

    The data must be positive (every value > 0 and none subnormal; any numeric dtype; float32 stays float32).
    """

    shapes_init: Any  # the parameter, declared for type checkers (``__init__`` sets it)
    shapes_: np.ndarray

    _input_tags = {"positive_only": True}
    _core_prefix = "gamma_mixture"
    _means_range = {"minimum": 0.0}
    _data_requirement = "positive (every value > 0 and not subnormal)"
    _fitted_names = ("weights_", "means_", "shapes_")

    def __init__(self, n_components: int = 1, *, tol: float | None = 1e-3, gap_tol: float | None = None,
                 max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans", weights_init: Any = None,
                 means_init: Any = None, shapes_init: Any = None, warm_start: bool = False, random_state: Any = None,
                 verbose: int = 0, n_jobs: int | None = None, chunk_size: int | None = None,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    def _first_bad_row(self, X: np.ndarray, n_threads: int) -> int:
        return _core.first_non_positive_row(X, n_threads)

    @staticmethod
    def _allowed(values: np.ndarray) -> np.ndarray:
        # the passes over the data read subnormal numbers as 0 (core/floating_point.hpp), so they are refused too
        return values >= np.finfo(values.dtype).tiny

    # -- initial values ----------------------------------------------------------------------------
    def _check_means_init(self, means: np.ndarray) -> None:
        if np.any(means <= 0):
            raise ValueError(f"means_init must hold positive means for GammaMixture; found {means.min():.6g}.")

    def _check_initial_values(self, X: np.ndarray) -> None:
        super()._check_initial_values(X)
        if self.shapes_init is not None:
            shapes = np.asarray(self.shapes_init, dtype=np.float64)
            expected = (self.n_components, X.shape[1])
            if shapes.shape != expected:
                raise ValueError(f"shapes_init must have shape {expected} (n_components × n_features), got "
                                 f"{shapes.shape}.")
            if not np.all(np.isfinite(shapes)) or np.any(shapes <= 0):
                raise ValueError("shapes_init must hold positive finite shapes for GammaMixture.")

    def _apply_initial_values(self, params: dict) -> dict:
        params = super()._apply_initial_values(params)
        if self.shapes_init is not None:
            params["shapes"] = np.asarray(self.shapes_init, dtype=np.float64)
        elif "shapes" not in params or self.means_init is not None:
            params["shapes"] = np.ones_like(params["means"])  # exponential distributions about the given means
        return params

    # -- fitted parameters -------------------------------------------------------------------------
    def _check_family_params(self, n_features: int) -> None:
        super()._check_family_params(n_features)
        self._fitted_array("means_", positive=True)
        self._fitted_array("shapes_", self.means_.shape, why="as means_", positive=True)

    def _settings(self) -> Any:
        return _core.GammaSettings()

    def _run_em(self, X: np.ndarray, weights: np.ndarray, params: dict, monitor: ConvergenceMonitor,
                passes: Passes) -> dict:
        callback = monitor._on_iteration if self.verbose else None
        return _core.gamma_mixture_fit(X, weights, params["weights"], params["means"], self._settings(),
                                       self._stop_options(), passes.n_threads, passes.chunk_size, callback,
                                       params["shapes"])

    def _current_params(self) -> dict:
        return {**super()._current_params(), "shapes": self.shapes_.astype(np.float64)}

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        return {**super()._params_attributes(result, dtype),
                "shapes_": np.ascontiguousarray(result["shapes"]).astype(dtype)}

    def _score_core(self, X: np.ndarray, with_responsibilities: bool,
                    passes: Passes) -> tuple[np.ndarray, np.ndarray | None]:
        return _core.gamma_mixture_score(X, self.weights_.astype(np.float64), self.means_.astype(np.float64),
                                         self._settings(), with_responsibilities, passes.n_threads,
                                         passes.chunk_size, self.shapes_.astype(np.float64))

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return int(2 * K * D + K - 1)

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        shapes = np.asarray(self.shapes_[k], dtype=np.float64)
        means = np.asarray(self.means_[k], dtype=np.float64)
        return rng.gamma(shapes, means / shapes, size=(n, shapes.shape[0]))
