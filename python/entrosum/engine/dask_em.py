"""EM over the blocks of a Dask array: the E-steps on the workers, the M-steps and the monitor on the client.

EM runs through the chunk-level step API (``engine.steps``): each block's statistics are made on its worker,
merged there in a fixed order, and ``stepwise.run_em`` (the twin of the C++ EM loop) runs the M-step and the
monitor here. Each family's initialisation over blocks lives with the family (``mixtures.dask_init``,
``linear.dask_fit``, ``sparse.dask_fit``); each reproduces the in-memory fit with the same random state: the
same random draws in the same order, the same initialising passes, the same EM steps. Sums over blocks differ
from in-memory sums by rounding only.

Worker tasks run the C++ passes with one thread each: the cluster's workers are the parallelism.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .dask import DaskBlocks, current_client
from .steps import merge
from .stepwise import run_em


@contextlib.contextmanager
def dask_blocks(X: Any) -> Iterator[DaskBlocks]:
    """Keep the blocks of dask array ``X`` persisted on the current client's workers while the block runs."""
    with DaskBlocks(X, current_client()) as data:
        yield data


def _statistics_of(steps: Any, data: DaskBlocks | Fixed, last: list | None = None) -> Any:
    """``statistics_of(params)`` for ``run_em``: the family's E-step on every block, merged."""
    def statistics_of(params: dict) -> Any:
        stats = data.reduce(data.map(chunk_statistics, list(data.offsets[:-1]), steps=steps, params=params))
        if last is not None:
            last[:] = [stats]
        return stats
    return statistics_of


def chunk_statistics(block: np.ndarray, row_offset: int, steps: Any, params: dict | None) -> Any:
    """Run the family's E-step on one block, rows ``row_offset + n`` of the data (a worker task)."""
    return steps.chunk_statistics(params, block, row_offset=int(row_offset))


def em_result(steps: Any, data: DaskBlocks | Fixed, params: dict, stop: Any, monitor: Any,
              last: list | None = None) -> dict:
    """EM from ``params``; the result in the format of the in-memory C++ fits (parameters, history, stop)."""
    callback = monitor._on_iteration if monitor.verbose else None
    params, core_monitor = run_em(steps, _statistics_of(steps, data, last), params, stop, callback)
    return {**params, "history": core_monitor.history, "stop_reason": core_monitor.stop_reason,
            "converged": core_monitor.converged, "setup_time": 0.0, "recoveries": core_monitor.recoveries}


class Fixed:
    """Stands in for the blocks when the statistics do not depend on the parameters: one pass served them."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats
        self.offsets = np.zeros(2, dtype=np.int64)  # one "block" starting at row 0

    def map(self, *args: Any, **kwargs: Any) -> list:
        """Return the one statistics value, whatever the function."""
        return [self.stats]

    def reduce(self, values: list) -> Any:
        """Merge the values (here: the one value)."""
        return merge(values)
