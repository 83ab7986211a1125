"""The chunk-level steps of the binary-latent models (``engine.steps`` describes the interface).

An exact posterior needs nothing but the parameters. A truncated posterior keeps S states per data point from one
E-step to the next: a fit over the blocks of a Dask array keeps each block's states on its worker
(``dask_fit``), while ``partial_fit`` sees a chunk once, so it finds the chunk's states afresh by ``rounds``
E-steps of proposals from fresh sets (as ``transform`` does for new data) and blends in the last round's
statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..engine.steps import Params, StatisticsAreExpectation


@dataclass(frozen=True)
class BinaryLatentSteps(StatisticsAreExpectation):
    """What both models' steps share: the posterior's settings and the passes over blocks."""

    posterior: str
    n_states: int
    seed: int
    proposals: tuple[int, ...]
    #: E-steps of proposals per chunk in ``chunk_statistics`` (truncated posteriors; 1 for exact ones)
    rounds: int = 1

    def _block_function(self) -> Any:
        raise NotImplementedError

    def block(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None, states: np.ndarray | None,
              iteration: int, row_offset: int, n_threads: int = 1, chunk_size: int = 0) -> tuple[Any, Any]:
        """One E-step over rows ``row_offset + n`` of the data set from the kept ``states`` (None: fresh sets).

        Returns the mergeable statistics and the kept states afterwards (None for the exact posterior).
        """
        weights = np.empty(0) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        return self._block_function()(X, weights, params, self.posterior, self.n_states, self.seed,
                                      list(self.proposals), states, int(iteration), int(row_offset), n_threads,
                                      chunk_size)

    def chunk_statistics(self, params: Params, X: np.ndarray, sample_weight: np.ndarray | None = None,
                         n_threads: int = 1, chunk_size: int = 0, row_offset: int = 0) -> Any:
        """Return the statistics of a chunk seen once: the last of ``rounds`` E-steps from fresh state sets."""
        states = None
        rounds = self.rounds if self.posterior == "truncated" else 1
        for iteration in range(rounds):
            stats, states = self.block(params, X, sample_weight, states, iteration, row_offset, n_threads,
                                       chunk_size)
        return stats


@dataclass(frozen=True)
class BinarySparseCodingSteps(BinaryLatentSteps):
    """Steps of binary sparse coding: the closed-form M-step."""

    shared_prior: bool = False

    def _block_function(self) -> Any:
        return _core.binary_sparse_coding_block

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms."""
        return _core.binary_sparse_coding_terms(expectation, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """W, b and σ² by least squares, π as the mean activation (one shared value on request)."""
        return _core.binary_sparse_coding_update(expectation, params, self.shared_prior)


@dataclass(frozen=True)
class SigmoidBeliefNetSteps(BinaryLatentSteps):
    """Steps of a sigmoid belief net: π in closed form, (W, b) by Newton's method per observed dimension."""

    newton_tol: float = 1e-10
    newton_max_iter: int = 100

    def _block_function(self) -> Any:
        return _core.sigmoid_belief_net_block

    def terms(self, expectation: Any, params: Params) -> dict[str, float]:
        """F(q, Θ) per sample and the entropy sum's terms."""
        return _core.sigmoid_belief_net_terms(expectation, params)

    def m_step(self, expectation: Any, params: Params, stats: Any = None) -> Params:
        """π as the mean activation; (W_d, b_d) by Newton's method to ``newton_tol``."""
        return _core.sigmoid_belief_net_update(expectation, params, self.newton_tol, self.newton_max_iter)
