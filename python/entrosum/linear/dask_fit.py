"""PPCA and factor analysis on a Dask array: the data's moments in one pass over the blocks, then EM here."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks
from ..engine.dask_em import Fixed, chunk_statistics, em_result
from ..engine.validation import check_choice
from .base import initial_components
from .steps import LinearGaussianSteps


def linear_gaussian_solve(estimator: Any, data: DaskBlocks, n_components: int, rng: np.random.Generator,
                          monitor: Any) -> dict:
    """Fit PPCA or factor analysis from the data's moments, collected in one pass over the blocks.

    Then the closed form (PPCA) or EM on D × D matrices runs on the client, as the in-memory fit with a
    precomputed covariance.
    """
    started = time.perf_counter()
    steps = LinearGaussianSteps(estimator._noise)
    moments = data.reduce(data.map(chunk_statistics, list(data.offsets[:-1]), steps=steps, params=None))
    setup_time = time.perf_counter() - started
    solver = check_choice(getattr(estimator, "solver", "em"), "solver", ("auto", "closed_form", "em"))
    if solver != "em":
        result = _core.ppca_closed_form_from_moments(moments, n_components)
        if monitor.verbose:
            history = result["history"]
            monitor._on_iteration({name: history[name][0] for name in history})
        return {**result, "setup_time": setup_time}
    initial = initial_components(rng, data.shape[1], n_components)
    params = _core.linear_gaussian_start(moments, initial, np.empty(0), estimator._noise)
    result = em_result(steps, Fixed(moments), params, estimator._stop_options(), monitor)
    return {**result, "setup_time": setup_time}
