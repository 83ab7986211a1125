"""Probabilistic PCA (Tipping & Bishop): x = W z + μ + ε, z ~ N(0, I), ε ~ N(0, σ² I)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..engine.validation import check_choice, check_int
from ..monitor import ConvergenceMonitor
from .base import LinearGaussianModel, closed_form_result, use_covariance

#: ``svd_solver`` values of scikit-learn's PCA, accepted so that PPCA takes PCA's arguments.
SVD_SOLVERS = ("auto", "full", "covariance_eigh", "arpack", "randomized")


def full_rank_closed_form(moments: Any, seconds_before: float = 0.0) -> dict:
    """Return the maximum-likelihood PPCA with as many components as features.

    The model covariance WWᵀ + σ²I is then the data's covariance S itself, and every σ² from 0 to S's smallest
    eigenvalue λ_min gives it, with W = U (Λ − σ²)^½: the likelihood does not determine σ². This takes σ² = λ_min / 2
    (at least the floor of the data's scale), so that the posterior covariance σ² M⁻¹ and the log-likelihood stay
    well conditioned; at σ² → 0 they are computed from differences of numbers of order 1/σ².
    """
    started = time.perf_counter()
    eigenvalues, eigenvectors = np.linalg.eigh(moments.covariance)
    order = np.argsort(eigenvalues)[::-1]  # decreasing variance, as the closed form orders its components
    eigenvalues, eigenvectors = np.maximum(eigenvalues[order], 0.0), eigenvectors[:, order]
    noise = max(0.5 * float(eigenvalues[-1]), _core.linear_gaussian_noise_floor(moments))
    largest = np.argmax(np.abs(eigenvectors), axis=0)
    eigenvectors *= np.sign(eigenvectors[largest, np.arange(eigenvectors.shape[1])])  # largest entry positive
    components = eigenvectors * np.sqrt(np.maximum(eigenvalues - noise, 0.0))
    params = {"mean": np.array(moments.mean), "components": components,
              "noise_variance": np.full(components.shape[0], noise)}
    return closed_form_result(params, moments, seconds_before + time.perf_counter() - started)


@shared_docstring
class PPCA(LinearGaussianModel):
    """Probabilistic PCA (Tipping & Bishop): x = W z + μ + ε with z ~ N(0, I) and ε ~ N(0, σ² I).

    Parameters
    ----------
    n_components : int or None
        Latent dimension H, from 0 to n_features; None means n_features. With H = n_features the model
        covariance is the data's covariance S, which every σ² from 0 to S's smallest eigenvalue λ_min gives:
        PPCA takes σ² = λ_min / 2, which keeps the posterior and the log-likelihood well conditioned (PCA reports
        0). The closed form gives it whatever ``solver`` says.
    solver : {'auto', 'closed_form', 'em'}
        'closed_form': one pass for the covariance, then its eigendecomposition (the exact maximum
        likelihood). 'em': EM iterations, which also show learning in the monitor. 'auto' takes the
        closed form whenever the covariance is precomputed (see ``precompute``), else EM.
    precompute : {'auto', True, False}
        For EM: collect the D × D covariance once so that iterations no longer touch the data (True),
        or pass over the data in every iteration, memory O(D·H) (False, for wide data). 'auto' keeps
        the covariance when n_features <= 4096 and n_features <= max(n_samples, 1024).
    whiten : bool
        When True, :meth:`transform` multiplies the posterior means by (I − σ² M⁻¹)^(−½), M = WᵀW + σ²I, so that
        under the model they have unit covariance. For the closed form this is PCA's whitened projection
        uᵢᵀ(x − μ) / √λᵢ. The model, and so :meth:`score`, do not depend on it (scikit-learn's PCA computes its
        score with rescaled components when whitening).
    %(stopping)s
    max_iter : int
        Most EM iterations.
    %(execution)s
    svd_solver, copy, iterated_power, n_oversamples, power_iteration_normalizer
        scikit-learn's PCA arguments, accepted (and checked) so that PPCA takes PCA's parameters; they change
        nothing: the closed form is always the exact eigendecomposition of the covariance.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Wᵀ, ordered by decreasing variance for the closed form. Unlike PCA's unit-norm components, each row
        has the length √(λᵢ − σ²), the standard deviation the component adds along its direction.
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : float
        σ².
    explained_variance_ : ndarray of shape (n_components,)
        The model's variance along each principal direction, the eigenvalues of WWᵀ + σ²I that exceed σ²,
        largest first. At the maximum likelihood these are the data covariance's eigenvalues λᵢ with the
        maximum-likelihood normalisation 1/N, where PCA divides by N − 1: they are PCA's ``explained_variance_``
        times (N − 1)/N.
    explained_variance_ratio_ : ndarray of shape (n_components,)
        ``explained_variance_`` over the model's total variance tr(WWᵀ) + Dσ² (the data's total variance at the
        maximum likelihood); the same as PCA's.
    singular_values_ : ndarray of shape (n_components,)
        ``√(N · explained_variance_)``: the singular values of the centred data at the maximum likelihood, as PCA's.
    n_components_ : int
    n_samples_ : int
    %(fitted)s
    """

    # The parameters, declared for type checkers (``__init__`` sets them).
    solver: str
    whiten: bool
    svd_solver: str
    copy: bool
    iterated_power: Any
    n_oversamples: int
    power_iteration_normalizer: str
    n_components_: int

    _noise = "isotropic"
    _fitted_names = LinearGaussianModel._fitted_names + ("explained_variance_", "explained_variance_ratio_",
                                                         "singular_values_", "n_samples_")

    def __init__(self, n_components: int | None = 2, *, solver: str = "auto", precompute: Any = "auto",
                 whiten: bool = False, tol: float | None = 1e-4, gap_tol: float | None = None, max_iter: int = 1000,
                 random_state: Any = None, n_jobs: int | None = None, chunk_size: int | None = None,
                 verbose: int = 0, learning_offset: float = 10.0, learning_decay: float = 0.7,
                 svd_solver: str = "auto", copy: bool = True, iterated_power: Any = "auto", n_oversamples: int = 10,
                 power_iteration_normalizer: str = "auto") -> None:
        self._store_params(locals())

    def _check_settings(self, X: Any) -> int:
        check_choice(self.svd_solver, "svd_solver", SVD_SOLVERS)
        check_choice(self.power_iteration_normalizer, "power_iteration_normalizer", ("auto", "QR", "LU", "none"))
        if self.iterated_power != "auto":
            check_int(self.iterated_power, "iterated_power", minimum=0)
        check_int(self.n_oversamples, "n_oversamples", minimum=1)
        check_choice(self.whiten, "whiten", (False, True))
        return super()._check_settings(X)

    def _solve(self, X: np.ndarray, n_components: int, rng: np.random.Generator, passes: Passes,
               monitor: ConvergenceMonitor) -> dict:
        solver = check_choice(self.solver, "solver", ("auto", "closed_form", "em"))
        covariance = use_covariance(self.precompute, *X.shape)
        if solver == "closed_form" and self.precompute is False:
            raise ValueError("solver='closed_form' needs the covariance; use precompute=True or 'auto', "
                             "or solver='em' to stream the data.")
        if n_components == X.shape[1]:  # the data's covariance itself, in closed form
            started = time.perf_counter()
            moments = _core.linear_gaussian_moments(X, passes.n_threads, passes.chunk_size)
            return self._show(full_rank_closed_form(moments, time.perf_counter() - started), monitor)
        if solver == "closed_form" or (solver == "auto" and covariance):
            return self._show(_core.fit_ppca_closed_form(X, n_components, passes.n_threads, passes.chunk_size),
                              monitor)
        return self._fit_em(X, n_components, covariance, rng, passes, monitor)

    def _solve_moments(self, moments: Any, n_components: int, rng: np.random.Generator,
                       monitor: ConvergenceMonitor) -> dict:
        solver = check_choice(self.solver, "solver", ("auto", "closed_form", "em"))
        if n_components == moments.mean.shape[0]:
            return self._show(full_rank_closed_form(moments), monitor)
        if solver != "em":
            return self._show(_core.ppca_closed_form_from_moments(moments, n_components), monitor)
        return self._em_on_moments(moments, n_components, rng, monitor)

    def _show(self, result: dict, monitor: ConvergenceMonitor) -> dict:
        """Show a closed-form result's one record when verbose."""
        if monitor.verbose:
            history = result["history"]
            monitor._on_iteration({name: history[name][0] for name in history})
        return result

    def _public_noise(self, noise_variance: np.ndarray) -> Any:
        return noise_variance.dtype.type(noise_variance[0])

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        attributes = super()._params_attributes(result, dtype)
        components = attributes["components_"].astype(np.float64)  # (H, D)
        noise = float(attributes["noise_variance_"])
        # The model's variances along its principal directions: the eigenvalues of WᵀW, plus σ².
        added = np.sort(np.maximum(np.linalg.eigvalsh(components @ components.T), 0.0))[::-1]
        explained = added + noise
        total = float(np.sum(components**2)) + components.shape[1] * noise
        n_samples = int(result.get("n_samples", 0))
        return {**attributes, "explained_variance_": explained.astype(dtype),
                "explained_variance_ratio_": (explained / total).astype(dtype) if total > 0 else explained * 0,
                "singular_values_": np.sqrt(n_samples * explained).astype(dtype), "n_samples_": n_samples}

    def _transform_output(self, means: np.ndarray) -> np.ndarray:
        """Whiten the posterior means when ``whiten`` is set."""
        if not self.whiten:
            return means
        components = self.components_.T.astype(np.float64)  # W (D, H)
        noise = float(self.noise_variance_)
        # I − σ² M⁻¹ = M⁻¹ WᵀW shares WᵀW's eigenvectors V, with eigenvalues d / (d + σ²).
        gram, eigenvectors = np.linalg.eigh(components.T @ components)
        scale = np.where(gram > 0, np.sqrt((np.maximum(gram, 0.0) + noise) / np.where(gram > 0, gram, 1.0)), 0.0)
        whitening = (eigenvectors * scale) @ eigenvectors.T
        return (means.astype(np.float64) @ whitening).astype(means.dtype)

    def _closed_form_start(self) -> bool:
        return self.solver != "em"
