"""The chunk-level steps of Laplace sparse coding (``engine.steps`` describes the interface)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import _core
from ..engine.steps import Params, StatisticsAreExpectation


@dataclass(frozen=True)
class SparseCodingSteps(StatisticsAreExpectation):
    """Steps of Laplace sparse coding by variational EM."""

    posterior: str
    e_step_tol: float
    e_step_max_iter: int
    prior_annealing: tuple[float, ...] = field(default=())
    observable_annealing: tuple[float, ...] = field(default=())
    #: σ² is kept at or above this (set from the data's power when a fit starts, see ``start``)
    noise_floor: float = 0.0

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0, row_offset: int = 0) -> Any:
        """Every row's optimal q by Newton steps, summed: a mergeable ``_core.SparseCodingExpectation``."""
        if sample_weight is not None and len(sample_weight):
            raise ValueError("SparseCoding does not take sample weights.")
        return _core.sparse_coding_e_step(X, params, self.posterior, self.e_step_tol, self.e_step_max_iter,
                                          n_threads, chunk_size)

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
