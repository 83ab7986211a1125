"""Sparse coding on a Dask array: variational EM with the E-steps on the workers."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks, fetch
from ..engine.dask_em import em_result
from .steps import SparseCodingSteps


def _sum_of_squares(block: np.ndarray) -> float:
    return float(_core.sum_of_squares(block, 1, 0))


def sparse_coding_fit(data: DaskBlocks, initial: np.ndarray, settings: dict, stop: Any, monitor: Any) -> dict:
    """Run variational EM for sparse coding from initial atoms (D, H).

    The start comes from the data's power (one pass), then E-steps run per block.
    """
    if settings["solver"] != "em":
        raise ValueError("SparseCoding on a dask array runs variational EM (its E-step works block by block); "
                         "set solver='em'. solver='gradient' keeps every posterior in one process.")
    started = time.perf_counter()
    power = sum(fetch(data.map(_sum_of_squares))) / (data.shape[0] * data.shape[1])
    steps = SparseCodingSteps(settings["posterior"], settings["e_step_tol"], settings["e_step_max_iter"],
                              tuple(settings["prior_annealing"]), tuple(settings["observable_annealing"]))
    params, steps = steps.start(initial, data.shape[1], power)
    setup_time = time.perf_counter() - started
    last: list = []
    result = em_result(steps, data, params, stop, monitor, last)
    return {**result, **last[0].diagnostics, "setup_time": setup_time}
