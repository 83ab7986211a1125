"""A mixture's initialisation and EM over the blocks of a Dask array (``engine.dask_em``).

``BaseMixture._initial_params`` over blocks: the same random draws from the same generator and the same passes
as in memory (k-means or k-means++ over blocks in ``dask_kmeans``, then one-hot or random responsibilities).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks
from ..engine.dask_em import em_result
from .dask_kmeans import kmeans_labels, kmeans_plusplus
from .mixed_steps import MixedMixtureSteps
from .steps import DiscreteMixtureSteps

#: Initialisations a mixture can start from on a Dask array (all of them, through the block mechanism).
DASK_INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def mixture_em(estimator: Any, data: DaskBlocks, params: dict, monitor: Any) -> dict:
    """EM of a mixture estimator from initial parameters."""
    return em_result(estimator._steps(), data, params, estimator._stop_options(), monitor)


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
    if isinstance(steps, MixedMixtureSteps):
        return _core.mixed_mixture_responsibility_statistics(block, np.empty(0), labels, seed, row_offset,
                                                             n_components, steps.spec())
    if isinstance(steps, DiscreteMixtureSteps):
        return getattr(_core, f"{steps.prefix}_responsibility_statistics")(block, np.empty(0), labels, seed,
                                                                           row_offset, n_components, steps._settings())
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
    if isinstance(steps, MixedMixtureSteps):
        sums = data.reduce(data.map(_responsibility_statistics, *per_block, steps=steps, n_components=K, seed=seed))
        return _core.mixed_mixture_from_initial_statistics(sums, steps.spec())
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
