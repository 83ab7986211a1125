"""Binary latents on a Dask array: the E-steps on the workers, each block's kept states staying there.

The start draws the same random numbers as the in-memory fit, from the data's mean and variance collected over
the blocks, and EM runs through ``stepwise.run_em``, the twin of the C++ loop. A truncated posterior's kept
states never travel: each E-step's task on a block returns the block's statistics and its new states, the
statistics are merged, and the states stay on the worker as the input of the block's next E-step. Proposals are
drawn from the streams of the rows' global indices, so the fit equals the in-memory one up to the rounding of
the merged sums.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks
from ..engine.stepwise import run_em
from .steps import BinaryLatentSteps


def data_moments(data: DaskBlocks) -> tuple[np.ndarray, np.ndarray]:
    """Return the data's mean and (biased) variance per feature, merged over the blocks in a fixed order."""
    moments = data.reduce(data.map(_moments))
    covariance = np.asarray(moments.covariance)
    return np.asarray(moments.mean, dtype=np.float64), np.diag(covariance).astype(np.float64)


def _moments(block: np.ndarray) -> Any:
    return _core.linear_gaussian_moments(block, 1, 0)


def _block_e_step(block: np.ndarray, row_offset: int, states: Any, steps: BinaryLatentSteps, params: dict,
                  iteration: int) -> tuple[Any, Any]:
    return steps.block(params, block, None, states, iteration, int(row_offset))


def em_result(steps: BinaryLatentSteps, data: DaskBlocks, params: dict, stop: Any, monitor: Any) -> dict:
    """EM from ``params`` over the blocks; the result in the format of the in-memory C++ fits."""
    client = data.client
    offsets = list(data.offsets[:-1])
    kept: list[Any] = [None] * data.n_blocks  # futures of each block's states (None: fresh sets)
    iteration = 0

    def statistics_of(current: dict) -> Any:
        nonlocal kept, iteration
        results = data.map(_block_e_step, offsets, kept, steps=steps, params=current, iteration=iteration)
        iteration += 1
        stats = [client.submit(operator.getitem, result, 0, pure=False) for result in results]
        kept = [client.submit(operator.getitem, result, 1, pure=False) for result in results]
        return data.reduce(stats)

    callback = monitor._on_iteration if monitor.verbose else None
    params, core_monitor = run_em(steps, statistics_of, params, stop, callback)
    return {**params, "history": core_monitor.history, "stop_reason": core_monitor.stop_reason,
            "converged": core_monitor.converged, "setup_time": 0.0, "recoveries": core_monitor.recoveries}
