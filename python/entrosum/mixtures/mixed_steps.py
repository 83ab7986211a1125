"""The chunk-level steps of a mixed mixture (``engine.steps`` describes the interface)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..engine.steps import Params, StatisticsAreExpectation

#: The column families, in the order of their codes in ``_core.MixedSpec``.
FAMILIES = ("gaussian", "bernoulli", "poisson", "binomial", "categorical", "exponential", "gamma")


@dataclass(frozen=True)
class MixedMixtureSteps(StatisticsAreExpectation):
    """Steps of a mixed mixture: the family code of each column and the families' known constants.

    ``n_trials`` holds one number per binomial column and ``n_levels`` one per categorical column, both in column
    order; ``reg_covar`` is added to the Gaussian variances in the M-step.
    """

    families: tuple[int, ...]
    n_trials: tuple[float, ...] = ()
    n_levels: tuple[int, ...] = ()
    reg_covar: float = 0.0

    def spec(self) -> Any:
        """Return the ``_core.MixedSpec`` of these settings."""
        return _core.MixedSpec(list(self.families), np.asarray(self.n_trials, dtype=np.float64),
                               list(self.n_levels), self.reg_covar)

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0, row_offset: int = 0) -> Any:
        """Run the E-step over the rows of ``X``, data term included: a mergeable ``_core.MixedMixtureStats``."""
        weights = np.empty(0) if sample_weight is None else sample_weight
        return _core.mixed_mixture_e_step(X, weights, params, self.spec(), n_threads, chunk_size, row_offset)

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms, with the data term of the Poisson and binomial columns."""
        return _core.mixed_mixture_terms(expectation, params, self.spec())

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """π and every column's parameters from the statistics."""
        return _core.mixed_mixture_m_step(expectation, params, self.spec())
