"""The chunk-level step API of every model family (DESIGN.md §4).

E-step on a chunk -> mergeable statistics -> M-step.

Each family is a small, picklable object (it holds only settings: strings and numbers) with

* ``chunk_statistics(params, X, sample_weight, n_threads, chunk_size)``: the C++ pass over one chunk of rows,
  returning a statistics value from ``_core`` that holds sums (not means) and the ELBO pieces summed over the
  chunk; values merge with ``a + b`` (in a fixed order for reproducible sums), scale with ``scaled(f)`` and
  pickle, so Dask can ship them between processes;
* ``statistics_depend_on_params``: False for PPCA and factor analysis, whose chunk statistics are the data's
  moments (count, mean, scatter) -- the exact posterior's statistics are linear in them for any parameters,
  so one pass serves every iteration;
* ``refine(params, stats)``: parameters that the statistics determine before the E-step (PPCA/FA: μ at the
  data mean, its exact optimum); the identity elsewhere;
* ``expectation(stats, params)``: q's statistics at ``params`` (the statistics themselves for the mixtures
  and sparse coding, computed from the moments for PPCA/FA);
* ``terms(expectation, params)``: F(q, Θ) per sample and the entropy sum's three terms (a dict);
* ``m_step(expectation, params, stats)``: new parameters (a dict of float64 arrays, the format ``_core``
  takes); ``stats`` are the merged statistics the expectation came from.

Parameters are plain dicts of numpy arrays and floats, so they pickle too. The drivers in ``_stepwise``
(stepwise EM for ``partial_fit``) and ``_dask`` (EM over the blocks of a Dask array) use only this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import _core

Params = dict[str, Any]


@dataclass(frozen=True)
class GaussianMixtureSteps:
    """Steps of a Gaussian mixture with one covariance type."""

    covariance_type: str
    reg_covar: float
    statistics_depend_on_params: bool = True

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0) -> Any:
        """Run the E-step over the rows of ``X``: a mergeable ``_core.GaussianMixtureExpectation``."""
        weights = np.empty(0) if sample_weight is None else sample_weight
        return _core.gmm_e_step(X, weights, self.covariance_type, params, n_threads, chunk_size)

    def refine(self, params: Params, stats: Any) -> Params:
        """Return the parameters unchanged (every parameter comes from the M-step)."""
        return params

    def expectation(self, stats: Any, params: Params) -> Any:
        """Return the statistics themselves: they are q's statistics at the parameters of their E-step."""
        return stats

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms."""
        return _core.gmm_terms(expectation, self.covariance_type, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """π, μ and Σ (plus ``reg_covar``) from the statistics."""
        return _core.gmm_m_step(expectation, self.covariance_type, params, self.reg_covar)


@dataclass(frozen=True)
class DiscreteMixtureSteps:
    """Steps of a Bernoulli (``prefix='bernoulli_mixture'``) or Poisson (``'poisson_mixture'``) mixture."""

    prefix: str
    alpha: float = 0.0
    statistics_depend_on_params: bool = True

    def _settings(self) -> Any:
        if self.prefix == "bernoulli_mixture":
            return _core.BernoulliSettings(alpha=self.alpha)
        return _core.PoissonSettings()

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0) -> Any:
        """Run the E-step over the rows of ``X``, data term included: a mergeable ``_core.DiscreteMixtureStats``."""
        weights = np.empty(0) if sample_weight is None else sample_weight
        return getattr(_core, f"{self.prefix}_e_step")(X, weights, params, n_threads, chunk_size)

    def refine(self, params: Params, stats: Any) -> Params:
        """Return the parameters unchanged (every parameter comes from the M-step)."""
        return params

    def expectation(self, stats: Any, params: Params) -> Any:
        """Return the statistics themselves: they are q's statistics at the parameters of their E-step."""
        return stats

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms (with the data term for Poisson)."""
        return getattr(_core, f"{self.prefix}_terms")(expectation, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """π and the means from the statistics."""
        return getattr(_core, f"{self.prefix}_m_step")(expectation, params, self._settings())


@dataclass(frozen=True)
class LinearGaussianSteps:
    """Steps of PPCA (``noise='isotropic'``) or factor analysis (``'diagonal'``), EM with parameter expansion."""

    noise: str
    statistics_depend_on_params: bool = False

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0) -> Any:
        """Compute the data's moments (count, mean, scatter) over the rows of ``X``: a mergeable ``_core.Moments``.

        ``params`` is not needed: q's statistics are linear in the moments for any parameters.
        """
        if sample_weight is not None and len(sample_weight):
            raise ValueError("PPCA and FactorAnalysis do not take sample weights.")
        return _core.linear_gaussian_moments(X, n_threads, chunk_size)

    def refine(self, params: Params, stats: Any) -> Params:
        """μ at the data mean, its exact optimum for any W and Ψ."""
        return {**params, "mean": np.array(stats.mean)}

    def expectation(self, stats: Any, params: Params) -> Any:
        """Compute the exact posterior at ``params`` and its statistics, from the moments (no pass over data)."""
        return _core.linear_gaussian_expectation(stats, params)

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms."""
        return _core.linear_gaussian_terms(expectation, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """W and Ψ from the statistics (μ stays), Ψ kept above a floor set by the moments' variances."""
        noise_floor = _core.linear_gaussian_noise_floor(stats)
        return _core.linear_gaussian_m_step(expectation, params, self.noise, True, noise_floor)


@dataclass(frozen=True)
class SparseCodingSteps:
    """Steps of Laplace sparse coding by variational EM."""

    posterior: str
    e_step_tol: float
    e_step_max_iter: int
    prior_annealing: tuple[float, ...] = field(default=())
    observable_annealing: tuple[float, ...] = field(default=())
    #: σ² is kept at or above this (set from the data's power when a fit starts, see ``start``)
    noise_floor: float = 0.0
    statistics_depend_on_params: bool = True

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0) -> Any:
        """Every row's optimal q by Newton steps, summed: a mergeable ``_core.SparseCodingExpectation``."""
        if sample_weight is not None and len(sample_weight):
            raise ValueError("SparseCoding does not take sample weights.")
        return _core.sparse_coding_e_step(X, params, self.posterior, self.e_step_tol, self.e_step_max_iter,
                                          n_threads, chunk_size)

    def refine(self, params: Params, stats: Any) -> Params:
        """Return the parameters unchanged (every parameter comes from the M-step)."""
        return params

    def expectation(self, stats: Any, params: Params) -> Any:
        """Return the statistics themselves: they are q's statistics at the parameters of their E-step."""
        return stats

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F_β(q, Θ) per sample and the (annealed) entropy sum's terms."""
        return _core.sparse_coding_terms(expectation, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """W (unit-norm columns, ``expectation`` rescaled with them in place), λ and σ², then the next β."""
        return _core.sparse_coding_m_step(expectation, params, list(self.prior_annealing),
                                          list(self.observable_annealing), self.noise_floor)

    def start(self, components: np.ndarray, n_features: int, power: float) -> tuple[Params, SparseCodingSteps]:
        """Return the starting parameters and these steps with the noise floor the data's power sets.

        The parameters come from initial atoms (D, H) and the data's power (1/(ND)) Σ ||x||².
        """
        params, noise_floor = _core.sparse_coding_start(components, np.empty(0), -1.0, n_features, power,
                                                        list(self.prior_annealing), list(self.observable_annealing))
        return params, replace(self, noise_floor=noise_floor)


def merge(values: list[Any]) -> Any:
    """Sum statistics values pairwise in a fixed tree order (the same order for the same list)."""
    if not values:
        raise ValueError("no statistics to merge")
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i] for i in range(0, len(values), 2)]
    return values[0]
