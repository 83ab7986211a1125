"""The fits of every family on a Dask array.

Initialisation and EM run through the chunk-level step API (``_steps``) over blocks on the workers, the M-step
and the monitor on the client (``_stepwise.run_em``).

The estimators keep their own ``fit`` (validation, ``n_init``, warm starts, fitted attributes, warnings); where
they would pass over an in-memory array they call the functions here with a ``DaskBlocks``. Each function
reproduces the in-memory fit with the same random state: the same random draws in the same order, the same
initialising passes (k-means, one-hot or random responsibilities, moments, the data's power), the same EM
steps. Sums over blocks differ from in-memory sums by rounding only.

Worker tasks run the C++ passes with one thread each: the cluster's workers are the parallelism.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _core
from ._dask import DaskBlocks, current_client, fetch
from ._dask_kmeans import kmeans_labels, kmeans_plusplus
from ._steps import DiscreteMixtureSteps, LinearGaussianSteps, SparseCodingSteps, merge
from ._stepwise import run_em

#: Initialisations a mixture can start from on a Dask array (all of them, through the block mechanism).
DASK_INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


@contextlib.contextmanager
def dask_blocks(X: Any) -> Iterator[DaskBlocks]:
    """Keep the blocks of dask array ``X`` persisted on the current client's workers while the block runs."""
    with DaskBlocks(X, current_client()) as data:
        yield data


def _statistics_of(steps: Any, data: DaskBlocks | _Fixed, last: list | None = None) -> Any:
    """``statistics_of(params)`` for ``run_em``: the family's E-step on every block, merged."""
    def statistics_of(params: dict) -> Any:
        stats = data.reduce(data.map(_chunk_statistics, steps=steps, params=params))
        if last is not None:
            last[:] = [stats]
        return stats
    return statistics_of


def _chunk_statistics(block: np.ndarray, steps: Any, params: dict) -> Any:
    return steps.chunk_statistics(params, block)


def _em_result(steps: Any, data: DaskBlocks | _Fixed, params: dict, stop: Any, monitor: Any,
               last: list | None = None) -> dict:
    """EM from ``params``; the result in the format of the in-memory C++ fits (parameters, history, stop)."""
    callback = monitor._on_iteration if monitor.verbose else None
    params, core_monitor = run_em(steps, _statistics_of(steps, data, last), params, stop, callback)
    return {**params, "history": core_monitor.history, "stop_reason": core_monitor.stop_reason,
            "converged": core_monitor.converged, "setup_time": 0.0}


# -- mixtures ------------------------------------------------------------------------------------------

def mixture_em(estimator: Any, data: DaskBlocks, params: dict, monitor: Any) -> dict:
    """EM of a mixture estimator from initial parameters."""
    return _em_result(estimator._steps(), data, params, estimator._stop_options(), monitor)


def _labels_from_rows(size: int, row_offset: int, chosen: np.ndarray) -> np.ndarray:
    """One-hot labels of a block: component k for global row chosen[k], -1 elsewhere."""
    labels = np.full(size, -1, dtype=np.intc)
    inside = (chosen >= row_offset) & (chosen < row_offset + size)
    labels[chosen[inside] - row_offset] = np.flatnonzero(inside).astype(np.intc)
    return labels


def _responsibility_statistics(block: np.ndarray, labels: np.ndarray | None, row_offset: int, steps: Any,
                               n_components: int, seed: int, shift: np.ndarray | None = None,
                               covariance_type: str = "") -> Any:
    labels = np.empty(0, dtype=np.intc) if labels is None else labels
    if isinstance(steps, DiscreteMixtureSteps):
        return getattr(_core, f"{steps.prefix}_responsibility_statistics")(block, np.empty(0), labels, seed,
                                                                           row_offset, n_components)
    assert shift is not None, "a Gaussian mixture's statistics are taken about a shift"
    return _core.gmm_responsibility_statistics(block, np.empty(0), labels, seed, row_offset, n_components,
                                               covariance_type, shift)


def _from_responsibilities(estimator: Any, data: DaskBlocks, labels: list | None, seed: int) -> dict:
    """Compute initial parameters from one-hot responsibilities on ``labels`` (futures per block).

    With ``labels`` None, from random responsibilities of ``seed``: the passes of ``*_init_from_labels`` /
    ``*_init_random``.
    """
    steps, K = estimator._steps(), estimator.n_components
    per_block = [labels or [None] * data.n_blocks, list(data.offsets[:-1])]
    if isinstance(steps, DiscreteMixtureSteps):
        sums = data.reduce(data.map(_responsibility_statistics, *per_block, steps=steps, n_components=K, seed=seed))
        return getattr(_core, f"{steps.prefix}_from_initial_statistics")(sums, estimator._settings())
    # Gaussian: the means first (about the first row, a reference inside the data), then the second moments
    # about the weighted mean of the means.
    first = data.reduce(data.map(_responsibility_statistics, *per_block, steps=steps, n_components=K, seed=seed,
                                 shift=data.rows([0])[0], covariance_type="diag"))
    means, shift = _core.gmm_initial_means(first)
    second = data.reduce(data.map(_responsibility_statistics, *per_block, steps=steps, n_components=K, seed=seed,
                                  shift=shift, covariance_type=steps.covariance_type))
    return _core.gmm_from_initial_statistics(second, means, steps.reg_covar)


def mixture_initial_params(estimator: Any, data: DaskBlocks, rng: np.random.Generator) -> dict:
    """``BaseMixture._initial_params`` over the blocks: the same draws from ``rng`` and the same passes."""
    K = estimator.n_components
    seed = int(rng.integers(2**63))
    if estimator._init_given():
        params: dict = {}
    elif estimator.init_params == "kmeans":
        labels = kmeans_labels(data, K, seed, 100)
        params = _from_responsibilities(estimator, data, labels, seed)
    elif estimator.init_params == "random":
        params = _from_responsibilities(estimator, data, None, seed)
    elif estimator.init_params in ("k-means++", "random_from_data"):
        if estimator.init_params == "k-means++":
            chosen = np.asarray(kmeans_plusplus(data, K, seed), dtype=np.int64)
        else:
            chosen = rng.choice(data.shape[0], size=K, replace=False).astype(np.int64)
        labels = data.client.map(_labels_from_rows, data.sizes, list(data.offsets[:-1]), chosen=chosen, pure=False)
        params = _from_responsibilities(estimator, data, labels, seed)
    else:
        raise ValueError(f"init_params={estimator.init_params!r} cannot initialise a fit on a dask array; use one "
                         f"of {', '.join(map(repr, DASK_INIT_PARAMS))}.")
    return estimator._apply_initial_values(params)


# -- PPCA and factor analysis ------------------------------------------------------------------------------

def linear_gaussian_solve(estimator: Any, data: DaskBlocks, n_components: int, monitor: Any) -> dict:
    """Fit PPCA or factor analysis from the data's moments, collected in one pass over the blocks.

    Then the closed form (PPCA) or EM on D × D matrices runs on the client, as the in-memory fit with a
    precomputed covariance.
    """
    from ._validation import check_choice, check_random_state

    started = time.perf_counter()
    steps = LinearGaussianSteps(estimator._noise)
    moments = data.reduce(data.map(_chunk_statistics, steps=steps, params=None))
    setup_time = time.perf_counter() - started
    solver = check_choice(getattr(estimator, "solver", "em"), "solver", ("auto", "closed_form", "em"))
    if solver != "em":
        result = _core.ppca_closed_form_from_moments(moments, n_components)
        if monitor.verbose:
            history = result["history"]
            monitor._on_iteration({name: history[name][0] for name in history})
        return {**result, "setup_time": setup_time}
    rng = check_random_state(estimator.random_state)
    # as the in-memory fit: W random in units of the data's root mean variance, Ψ at the data variances
    initial = rng.standard_normal((data.shape[1], n_components)) / np.sqrt(n_components)
    params = _core.linear_gaussian_start(moments, initial, np.empty(0), estimator._noise)
    result = _em_result(steps, _Fixed(moments), params, estimator._stop_options(), monitor)
    return {**result, "setup_time": setup_time}


class _Fixed:
    """Stands in for the blocks when the statistics do not depend on the parameters: one pass served them."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats

    def map(self, *args: Any, **kwargs: Any) -> list:
        return [self.stats]

    def reduce(self, values: list) -> Any:
        return merge(values)


# -- sparse coding ---------------------------------------------------------------------------------------

def _sum_of_squares(block: np.ndarray) -> float:
    return float(_core.sum_of_squares(block, 1, 0))


def sparse_coding_fit(data: DaskBlocks, initial: np.ndarray, settings: dict, monitor: Any) -> dict:
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
    stop = _core.StopOptions(tol=settings["tol"], gap_tol=settings["gap_tol"], max_iter=settings["max_iter"])
    last: list = []
    result = _em_result(steps, data, params, stop, monitor, last)
    return {**result, **last[0].diagnostics, "setup_time": setup_time}
