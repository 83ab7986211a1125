"""PPCA and factor analysis on a Dask array: the data's moments in one pass over the blocks, then the fit here."""

from __future__ import annotations

from typing import Any

from ..engine.dask import DaskBlocks
from ..engine.dask_em import chunk_statistics
from .steps import LinearGaussianSteps


def linear_gaussian_moments(estimator: Any, data: DaskBlocks) -> Any:
    """Collect the data's moments (count, mean, scatter) on the workers, merged in a fixed order.

    From them the closed form (PPCA) or EM on D × D matrices runs on the client, as the in-memory fit with a
    precomputed covariance (``LinearGaussianModel._solve_moments``).
    """
    steps = LinearGaussianSteps(estimator._noise)
    return data.reduce(data.map(chunk_statistics, list(data.offsets[:-1]), steps=steps, params=None))
