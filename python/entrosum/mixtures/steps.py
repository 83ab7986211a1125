"""The chunk-level steps of the mixtures (``engine.steps`` describes the interface)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..engine.csr import CsrData
from ..engine.steps import Params, StatisticsAreExpectation


@dataclass(frozen=True)
class GaussianMixtureSteps(StatisticsAreExpectation):
    """Steps of a Gaussian mixture with one covariance type."""

    covariance_type: str
    reg_covar: float
    learn_weights: bool = True

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0, row_offset: int = 0) -> Any:
        """Run the E-step over the rows of ``X``: a mergeable ``_core.GaussianMixtureExpectation``."""
        weights = np.empty(0) if sample_weight is None else sample_weight
        return _core.gmm_e_step(X, weights, self.covariance_type, params, n_threads, chunk_size, row_offset)

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms."""
        return _core.gmm_terms(expectation, self.covariance_type, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """π (unless fixed), μ and Σ (plus ``reg_covar``) from the statistics."""
        return _core.gmm_m_step(expectation, self.covariance_type, params, self.reg_covar, self.learn_weights)


@dataclass(frozen=True)
class DiscreteMixtureSteps(StatisticsAreExpectation):
    """Steps of a one-parameter-family mixture: ``prefix`` names the family's ``_core`` functions.

    ``'bernoulli_mixture'`` (with its pseudo-count ``alpha``), ``'poisson_mixture'``, ``'binomial_mixture'``
    (with its numbers of trials ``n_trials``, one per feature), ``'exponential_mixture'``,
    ``'multinomial_mixture'``, ``'categorical_mixture'`` (with its numbers of levels ``n_levels``) or
    ``'gamma_mixture'`` (whose parameters hold ``shapes`` too).
    """

    prefix: str
    alpha: float = 0.0
    n_trials: tuple[float, ...] = ()
    n_levels: tuple[int, ...] = ()

    def _settings(self) -> Any:
        return family_settings(self.prefix, self.alpha, self.n_trials, self.n_levels)

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0, row_offset: int = 0) -> Any:
        """Run the E-step over the rows of ``X``, data term included: a mergeable ``_core.DiscreteMixtureStats``."""
        weights = np.empty(0) if sample_weight is None else sample_weight
        return data_function(self.prefix, "e_step", X)(weights, params, self._settings(), n_threads, chunk_size,
                                                       row_offset)

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms (with the data term for Poisson and binomial)."""
        return getattr(_core, f"{self.prefix}_terms")(expectation, params, self._settings())

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """π and the means from the statistics."""
        return getattr(_core, f"{self.prefix}_m_step")(expectation, params, self._settings())


def data_function(prefix: str, name: str, X: Any) -> Any:
    """Return ``_core``'s ``{prefix}_{name}`` bound to the data ``X``.

    That is the dense function, or its CSR twin ``{prefix}_csr_{name}`` taking the CSR arrays (``engine.csr``) in
    place of the array.
    """
    if isinstance(X, CsrData):
        function = getattr(_core, f"{prefix}_csr_{name}")
        return lambda *args, **kwargs: function(*X.core_args(), *args, **kwargs)
    function = getattr(_core, f"{prefix}_{name}")
    return lambda *args, **kwargs: function(X, *args, **kwargs)


def family_settings(prefix: str, alpha: float = 0.0, n_trials: tuple[float, ...] = (),
                    n_levels: tuple[int, ...] = ()) -> Any:
    """Return the ``_core`` settings object of the one-parameter family named by ``prefix``."""
    if prefix == "bernoulli_mixture":
        return _core.BernoulliSettings(alpha=alpha)
    if prefix == "binomial_mixture":
        return _core.BinomialSettings(np.asarray(n_trials, dtype=np.float64))
    if prefix == "exponential_mixture":
        return _core.ExponentialSettings()
    if prefix == "gamma_mixture":
        return _core.GammaSettings()
    if prefix == "categorical_mixture":
        return _core.CategoricalSettings(np.asarray(n_levels, dtype=np.int64))
    if prefix == "multinomial_mixture":
        return _core.MultinomialSettings()
    return _core.PoissonSettings()
