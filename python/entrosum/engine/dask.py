"""Dask arrays on a ``distributed`` cluster, with the row blocks kept on the workers.

Each pass maps a function over the blocks there, and only small values (statistics, a few rows) come back to
the client (DESIGN.md §4).

``DaskBlocks`` persists the blocks of a dask array once per fit, C-contiguous and spanning every column, as
futures in row order; ``map`` runs a function on every block on the worker that holds it, ``reduce`` merges
the per-block statistics by a tree of additions on the workers in a fixed order (so the sums do not depend on
which worker finishes first) and fetches the one result. Everything the client receives passes through
``fetch``. The fit driver (``driver``) hands a dask array to the family's fit over blocks (``dask_em``).

dask and distributed are optional (``pip install "entrosum[dask]"``): this module imports them only when a
dask array is fitted. A fit needs a running ``distributed.Client`` (the current default client); without one it
raises rather than computing the blocks with the local scheduler, which would bring every block through this
process.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (checked by its type, without importing dask)."""
    kind = type(X)
    return kind.__name__ == "Array" and kind.__module__.split(".")[:2] == ["dask", "array"]


def current_client() -> Any:
    """Return the default ``distributed`` client, or raise a ValueError that says how to start one."""
    try:
        from distributed import default_client
    except ImportError as error:
        raise ImportError('Fitting a dask array needs distributed: pip install "entrosum[dask]".') from error
    try:
        return default_client()
    except ValueError:
        raise ValueError(
            "Fitting a dask array needs a distributed client, and none is running: start one first, e.g. "
            "`from distributed import Client, LocalCluster; client = Client(LocalCluster(n_workers=2))`."
        ) from None


def fetch(futures: Any) -> Any:
    """Bring the values of futures (one or a list) to the client: the only way values reach it."""
    from distributed import wait

    wait(futures)  # interruptible: Ctrl-C here stops the fit between passes
    if isinstance(futures, list):
        return [future.result() for future in futures]
    return futures.result()


def _prepare(block: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(block, dtype=dtype)


def _data_dtype(X: Any) -> np.dtype:
    """float32 stays float32 (float16 too), other real numbers become float64, as ``check_data`` does."""
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers (float32 or float64 preferred), got dtype {X.dtype}.")
    return np.dtype(np.float32 if X.dtype in (np.float32, np.float16) else np.float64)


class DaskBlocks:
    """The row blocks of a 2-D dask array, persisted on the workers of ``client`` for one fit.

    Use as a context manager: the blocks are released when the block ends, also after an error or Ctrl-C.
    """

    def __init__(self, X: Any, client: Any) -> None:
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D with shape {X.shape}.")
        if any(np.isnan(size) for size in X.shape):
            raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first.")
        self.dtype = _data_dtype(X)
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})  # every block spans all columns: a block is a set of whole rows
        import dask

        self.client = client
        self.shape = (int(X.shape[0]), int(X.shape[1]))
        self.sizes = [int(size) for size in X.chunks[0]]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        blocks = [dask.delayed(_prepare)(block, self.dtype) for block in X.to_delayed()[:, 0]]
        self.blocks = client.compute(blocks)  # futures: computed and kept on the workers

    def __enter__(self) -> DaskBlocks:
        """Return the blocks, persisted until the ``with`` block ends."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Release the blocks."""
        self.release()

    def release(self) -> None:
        """Let the workers drop the persisted blocks."""
        for future in self.blocks:
            future.release()
        self.blocks = []

    @property
    def n_blocks(self) -> int:
        """Number of row blocks."""
        return len(self.sizes)

    def map(self, function: Callable[..., Any], *per_block: list, **common: Any) -> list:
        """Futures of ``function(block, *per_block[i], **common)`` for every block i, run where the block is.

        ``per_block`` are lists with one entry per block (futures or values); ``common`` values are sent once.
        """
        common = {name: self.client.scatter(value, broadcast=True) if isinstance(value, np.ndarray) else value
                  for name, value in common.items()}
        return self.client.map(function, self.blocks, *per_block, pure=False, **common)

    def reduce(self, futures: list) -> Any:
        """Sum per-block statistics, added on the workers pairwise in ``steps.merge``'s fixed order."""
        while len(futures) > 1:
            futures = [self.client.submit(operator.add, futures[i], futures[i + 1], pure=False)
                       if i + 1 < len(futures) else futures[i] for i in range(0, len(futures), 2)]
        return fetch(futures[0])

    def rows(self, indices: Any) -> np.ndarray:
        """Rows of the data by global index, as a (len(indices), n_features) float64 array."""
        indices = np.asarray(indices, dtype=np.int64)
        blocks = np.searchsorted(self.offsets, indices, side="right") - 1
        futures = [self.client.submit(_row, self.blocks[b], int(i - self.offsets[b]), pure=False)
                   for b, i in zip(blocks, indices)]
        values = fetch(futures)
        return np.array(values, dtype=np.float64).reshape(len(indices), self.shape[1])

    def check(self, check_block: Callable[[np.ndarray], Any]) -> None:
        """Run ``check_block`` (which raises ValueError or TypeError for bad data) on every block on the workers.

        The first failure is raised here with the rows of its block.
        """
        results = fetch(self.map(_checked, check_block=check_block))
        for index, message in enumerate(results):
            if message is not None:
                kind, text = message
                begin, end = self.offsets[index], self.offsets[index + 1]
                raise kind(f"In the block of rows {begin} to {end - 1} of the dask array: {text}")


def _row(block: np.ndarray, index: int) -> np.ndarray:
    return block[index].astype(np.float64)


def _checked(block: np.ndarray, check_block: Callable[[np.ndarray], Any]) -> Any:
    try:
        check_block(block)
    except (ValueError, TypeError) as error:
        return type(error), str(error)
    return None
