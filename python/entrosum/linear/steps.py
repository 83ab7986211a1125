"""The chunk-level steps of PPCA and factor analysis (``engine.steps`` describes the interface)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..engine.steps import Params


@dataclass(frozen=True)
class LinearGaussianSteps:
    """Steps of PPCA (``noise='isotropic'``) or factor analysis (``'diagonal'``), EM with parameter expansion."""

    noise: str
    statistics_depend_on_params: bool = False

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0, row_offset: int = 0) -> Any:
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
