"""Gaussian mixtures with full, tied, diagonal or spherical covariances (DESIGN.md §3).

They have the parameters and attributes of ``sklearn.mixture.GaussianMixture``, and two covariance types of their
own whose entropy sums the papers give (DESIGN.md, "Second-wave models"): 'tied_diag', one diagonal covariance
shared by every component, and 'tied_spherical', one variance shared by every component and feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..engine.validation import check_choice, check_memory, check_tolerance
from ..monitor import ConvergenceMonitor
from .base import BaseMixture
from .steps import GaussianMixtureSteps

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical", "tied_diag", "tied_spherical")
#: Types whose one covariance serves every component.
SHARED_TYPES = ("tied", "tied_diag", "tied_spherical")

#: scikit-learn's words for a covariance that is not positive definite (code written for it matches them).
ILL_DEFINED = ("Fitting the mixture model failed because some components have ill-defined empirical covariance (for "
               "instance caused by singleton or collapsed samples). Try to decrease the number of components, "
               "increase reg_covar, or scale the input data.")


def _stack(array: np.ndarray, covariance_type: str) -> np.ndarray:
    """Public shapes → the C++ stacked layout.

    full (K, D, D) → (K·D, D), spherical (K,) → (K, 1), tied_diag (D,) → (1, D), tied_spherical () → (1, 1).
    """
    array = np.asarray(array, dtype=np.float64)
    if covariance_type == "full":
        return array.reshape(-1, array.shape[-1])
    if covariance_type in ("spherical", "tied_spherical"):
        return array.reshape(-1, 1)
    if covariance_type == "tied_diag":
        return array.reshape(1, -1)
    return array


def _unstack(array: np.ndarray, covariance_type: str, n_components: int) -> np.ndarray:
    if covariance_type == "full":
        return np.ascontiguousarray(array).reshape(n_components, -1, array.shape[-1])
    if covariance_type == "spherical":
        return np.ascontiguousarray(array[:, 0])
    if covariance_type == "tied_diag":
        return np.ascontiguousarray(array[0])
    if covariance_type == "tied_spherical":
        return np.asarray(array, dtype=np.float64).reshape(())  # a 0-d array: spherical's (K,) without the K
    return np.ascontiguousarray(array)


def _expected_shape(covariance_type: str, n_components: int, n_features: int) -> tuple[int, ...]:
    return {"full": (n_components, n_features, n_features), "tied": (n_features, n_features),
            "diag": (n_components, n_features), "spherical": (n_components,), "tied_diag": (n_features,),
            "tied_spherical": ()}[covariance_type]


@shared_docstring
class GaussianMixture(BaseMixture):
    """A mixture of Gaussians fitted by EM, with the ELBO and its entropy sum monitored per iteration.

    Parameters
    ----------
    n_components : int
        Number of components K.
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied_diag', 'tied_spherical'}
        One full covariance per component, one shared by all, diagonal ones, or one variance each; or one
        diagonal covariance shared by all components ('tied_diag': ``covariances_`` of shape (n_features,)),
        or one variance shared by all components and features ('tied_spherical': ``covariances_`` a 0-d
        array, shape ()). Their entropy sums subtract ½ Σ_d log(2πe σ²_d), or (D/2) log(2πe σ²).
    %(stopping)s
    reg_covar : float
        Added to the diagonal of every covariance so they stay positive definite; with
        ``reg_covar > 0`` the entropy sum differs from the ELBO by a gap of that order.
    %(mixture_starts)s
    weights_init, means_init, precisions_init : array-like, optional
        Initial weights (K,), means (K, D) and precisions (shape per covariance type); they replace the
        corresponding values from ``init_params``.
    learn_weights : bool
        Whether the M-step updates the weights π. With False they stay at ``weights_init``, or 1/K when it
        is not given. F = S after every exact M-step then holds only for uniform weights (the prior entropy
        is log K); fixed non-uniform weights leave a gap, which the monitor shows.
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
        As in scikit-learn; ``precisions_cholesky_`` holds factors U with precision U Uᵀ.
    %(mixture_fitted)s
    """

    _numerical_advice = "Use fewer components, another initialisation, a larger reg_covar, or scale the data."

    # Parameters of this family and fitted attributes, declared for type checkers (``__init__`` and ``fit`` set them).
    covariance_type: str
    reg_covar: float
    learn_weights: bool
    precisions_init: Any
    covariances_: np.ndarray
    precisions_: np.ndarray
    precisions_cholesky_: np.ndarray

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full", tol: float | None = 1e-3,
                 gap_tol: float | None = None, reg_covar: float = 1e-6, max_iter: int = 100, n_init: int = 1,
                 init_params: str = "kmeans", weights_init: Any = None, means_init: Any = None,
                 precisions_init: Any = None, warm_start: bool = False, random_state: Any = None, verbose: int = 0,
                 n_jobs: int | None = None, chunk_size: int | None = None,
                 learning_offset: float = 10.0, learning_decay: float = 0.7, learn_weights: bool = True) -> None:
        self._store_params(locals())

    # -- settings ---------------------------------------------------------------------------------
    def _check_family_settings(self, X: np.ndarray) -> None:
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_tolerance(self.reg_covar, "reg_covar", allow_none=False)
        if not isinstance(self.learn_weights, (bool, np.bool_)):
            raise ValueError(f"learn_weights must be True or False, got {self.learn_weights!r}.")
        K, D = self.n_components, X.shape[1]
        # covariances, precision factors, precisions and the statistics: about six arrays of the covariances' size
        size = {"full": K * D * D, "tied": D * D + K * D}.get(self.covariance_type, K * D)
        check_memory(f"GaussianMixture(n_components={K}, covariance_type={self.covariance_type!r}) on {D} features",
                     48.0 * size, f"its {self.covariance_type} covariances",
                     "Choose fewer components, covariance_type='diag', or fewer features.")
        if self.precisions_init is not None:
            shape = _expected_shape(self.covariance_type, K, D)
            precisions = np.asarray(self.precisions_init, dtype=np.float64)
            if precisions.shape != shape:
                raise ValueError(f"The parameter '{self.covariance_type} precision' should have the shape of {shape}, "
                                 f"but got {precisions.shape} (precisions_init for covariance_type="
                                 f"'{self.covariance_type}').")
            self._check_precisions_init(precisions)

    # -- initialisation ---------------------------------------------------------------------------
    def _init_from_labels(self, X: np.ndarray, weights: np.ndarray, labels: np.ndarray, passes: Passes) -> dict:
        K, kind = self.n_components, self.covariance_type
        used = np.unique(labels[labels >= 0])
        if used.size == K:
            return _core.gmm_init_from_labels(X, weights, labels, K, kind, self.reg_covar, passes.n_threads,
                                              passes.chunk_size)
        # k-means found fewer clusters than components (the data have fewer distinct rows than components). The
        # empty components start as scikit-learn's M-step makes them, whose count guard 10·eps divides their zero
        # sums: at the origin, with covariance reg_covar·I and weight 10·eps / N. With reg_covar = 0 their
        # covariance is 0, which no Gaussian has.
        if not self.reg_covar > 0:
            raise ValueError(f"{ILL_DEFINED} (k-means found {used.size} clusters for {K} components; "
                             "reg_covar=0 leaves the others without a covariance)")
        index = np.full(K, -1, dtype=np.intc)
        index[used] = np.arange(used.size, dtype=np.intc)
        found = _core.gmm_init_from_labels(X, weights, np.where(labels >= 0, index[np.maximum(labels, 0)], -1)
                                           .astype(np.intc), used.size, kind, self.reg_covar, passes.n_threads,
                                           passes.chunk_size)
        D = X.shape[1]
        total = float(weights.sum()) if weights.size else float(X.shape[0])
        params = {"weights": np.full(K, 10 * np.finfo(np.float64).eps / total), "means": np.zeros((K, D))}
        params["weights"][used] = found["weights"]
        params["means"][used] = found["means"]
        if kind in SHARED_TYPES:
            params["covariances"], params["precision_cholesky"] = found["covariances"], found["precision_cholesky"]
            return params
        shape = {"full": (K, D, D), "diag": (K, D), "spherical": (K,)}[kind]
        covariances = np.zeros(shape)
        covariances[:] = self.reg_covar * np.eye(D) if kind == "full" else self.reg_covar
        cholesky = np.zeros(shape)
        cholesky[:] = np.eye(D) / np.sqrt(self.reg_covar) if kind == "full" else 1.0 / np.sqrt(self.reg_covar)
        covariances[used] = _unstack(found["covariances"], kind, used.size)
        cholesky[used] = _unstack(found["precision_cholesky"], kind, used.size)
        params["covariances"], params["precision_cholesky"] = _stack(covariances, kind), _stack(cholesky, kind)
        return params

    def _init_random(self, X: np.ndarray, weights: np.ndarray, seed: int, passes: Passes) -> dict:
        return _core.gmm_init_random(X, weights, seed, self.n_components, self.covariance_type, self.reg_covar,
                                     passes.n_threads, passes.chunk_size)

    def _init_given(self) -> bool:
        # fixed weights without weights_init are uniform: given too
        weights_given = self.weights_init is not None or not self.learn_weights
        return weights_given and self.means_init is not None and self.precisions_init is not None

    def _apply_initial_values(self, params: dict) -> dict:
        params = super()._apply_initial_values(params)
        if not self.learn_weights and self.weights_init is None:
            params["weights"] = np.full(self.n_components, 1.0 / self.n_components)
        if self.precisions_init is not None:
            params["precision_cholesky"] = self._cholesky_of_precisions(np.asarray(self.precisions_init, np.float64))
            params["covariances"] = _core.gmm_covariances(self.covariance_type, params["means"],
                                                          params["precision_cholesky"])
        return params

    def _gap_regularisation(self) -> str | None:
        return f"reg_covar={self.reg_covar}" if self.reg_covar else None

    def _numerical_message(self, error: Exception) -> str:
        if any(word in str(error) for word in ("covariance", "variance", "empty")):
            return f"{type(self).__name__} could not be fitted: {error}. {ILL_DEFINED}"
        return super()._numerical_message(error)

    def _check_precisions_init(self, precisions: np.ndarray) -> None:
        """Refuse precisions that are not symmetric positive definite (full, tied) or not positive (diag, spherical)."""
        kind = self.covariance_type
        if kind in ("diag", "spherical", "tied_diag", "tied_spherical"):
            if not np.all(precisions > 0):
                raise ValueError(f"'{kind} precision' should be positive (precisions_init).")
            return
        for matrix in precisions.reshape(-1, *precisions.shape[-2:]):
            if not (np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0)):
                raise ValueError(f"'{kind} precision' should be symmetric, positive-definite (precisions_init).")

    def _cholesky_of_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Factors F with precision F Fᵀ, as scikit-learn makes them from precisions_init."""
        kind = self.covariance_type
        try:
            if kind == "full":
                return _stack(np.linalg.cholesky(precisions), kind)
            if kind == "tied":
                return np.linalg.cholesky(precisions)
        except np.linalg.LinAlgError as error:
            raise ValueError(f"'{kind} precision' should be symmetric, positive-definite (precisions_init).") \
                from error
        return _stack(np.sqrt(precisions), kind)

    # -- EM and results ---------------------------------------------------------------------------
    def _steps(self) -> GaussianMixtureSteps:
        return GaussianMixtureSteps(self.covariance_type, float(self.reg_covar), bool(self.learn_weights))

    def _run_em(self, X: np.ndarray, weights: np.ndarray, params: dict, monitor: ConvergenceMonitor,
                passes: Passes) -> dict:
        callback = monitor._on_iteration if self.verbose else None
        # the core takes the start's covariances and factors over (it removes them from `params`), so that full
        # covariances, K·D² each, are not held both here and there through the fit
        return _core.gmm_fit(X, weights, self.covariance_type, params, float(self.reg_covar), self._stop_options(),
                             passes.n_threads, passes.chunk_size, callback, bool(self.learn_weights))

    _fitted_names = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")

    def _check_family_params(self, n_features: int) -> None:
        """Check weights and means, then every covariance attribute's shape for ``covariance_type``."""
        super()._check_family_params(n_features)
        kind = check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        shape = _expected_shape(kind, self.weights_.shape[0], n_features)
        why = f"covariance_type={kind!r}, {self.weights_.shape[0]} components, {n_features} features"
        for name in ("precisions_cholesky_", "covariances_", "precisions_"):
            # the shared variances: positive, or the log-densities would be NaN
            self._fitted_array(name, shape, why=why, positive=kind in ("tied_diag", "tied_spherical"))

    def _current_params(self) -> dict:
        self._check_fitted_params()
        kind = self.covariance_type
        return {"weights": self.weights_.astype(np.float64), "means": self.means_.astype(np.float64),
                "covariances": _stack(self.covariances_, kind),
                "precision_cholesky": _stack(self.precisions_cholesky_, kind)}

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        kind, K = self.covariance_type, result["weights"].shape[0]
        cholesky = _unstack(result["precision_cholesky"], kind, K)
        if kind in ("full", "tied"):
            precisions = cholesky @ np.swapaxes(cholesky, -1, -2)  # U Uᵀ, per component for full
        else:
            precisions = np.asarray(cholesky**2)  # stays an array for tied_spherical's 0-d factor
        # float64 results are used as they are: copies of K·D² arrays would double the memory a fit ends with
        return {"weights_": result["weights"].astype(dtype),
                "means_": np.ascontiguousarray(result["means"]).astype(dtype),
                "covariances_": _unstack(result["covariances"], kind, K).astype(dtype, copy=False),
                "precisions_cholesky_": cholesky.astype(dtype, copy=False),
                "precisions_": precisions.astype(dtype, copy=False)}

    def _score_core(self, X: np.ndarray, with_responsibilities: bool,
                    passes: Passes) -> tuple[np.ndarray, np.ndarray | None]:
        kind = self.covariance_type
        return _core.gmm_score(X, kind, self.weights_.astype(np.float64), self.means_.astype(np.float64),
                               _stack(self.precisions_cholesky_, kind), with_responsibilities, passes.n_threads,
                               passes.chunk_size)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        covariance = {"full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2, "diag": K * D,
                      "spherical": K, "tied_diag": D, "tied_spherical": 1}[self.covariance_type]
        free_weights = K - 1 if self.learn_weights else 0
        return int(covariance + K * D + free_weights)

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        kind = self.covariance_type
        mean = self.means_[k].astype(np.float64)
        if kind == "full":
            return rng.multivariate_normal(mean, self.covariances_[k].astype(np.float64), n)
        if kind == "tied":
            return rng.multivariate_normal(mean, self.covariances_.astype(np.float64), n)
        variances = self.covariances_ if kind in SHARED_TYPES else self.covariances_[k]
        scale = np.sqrt(np.asarray(variances, dtype=np.float64))
        return mean + rng.standard_normal((n, mean.shape[0])) * scale
