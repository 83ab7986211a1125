"""k-means++ seeding and Lloyd's k-means over the blocks of a Dask array.

They run as cpp/src/mixtures/kmeans.cpp runs them in memory: the same random draws, the same formulas, the same
stopping rule, so the same random state gives the same labels.

Per-row state (distances to the nearest seed, labels) stays on the workers as one future per block; the client
receives per-block sums, the Lloyd statistics (``_core.KMeansStats``) and the rows chosen as seeds. k-means++
draws the row whose running sum of masses first exceeds u · total. Here the sums run block by block instead of
row by row: they differ from the sequential ones by rounding (~1e-16 relative), so a different row is drawn only
if u · total falls within that rounding of a boundary.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks, fetch


def _nearest(block: np.ndarray, previous: np.ndarray | None, centre: np.ndarray) -> np.ndarray:
    """Squared distances (in double) of the block's rows to the nearest seed so far."""
    distance = np.sum((block.astype(np.float64) - centre) ** 2, axis=1)
    return distance if previous is None else np.minimum(previous, distance)


def _locate(mass: np.ndarray, start: float, target: float) -> tuple[int, float]:
    """(first index whose running sum from ``start`` exceeds ``target`` or -1, the running sum at the end)."""
    cumulative = np.cumsum(np.concatenate([[start], mass]))[1:]  # sequential, as the C++ loop adds
    above = np.flatnonzero(cumulative > target)
    return (int(above[0]) if above.size else -1), (float(cumulative[-1]) if mass.size else start)


def _last_with_mass(mass: np.ndarray) -> int:
    nonzero = np.flatnonzero(mass > 0.0)
    return int(nonzero[-1]) if nonzero.size else -1


def kmeans_plusplus(data: DaskBlocks, n_clusters: int, seed: int) -> list[int]:
    """Row indices chosen by k-means++ seeding (``_core.kmeans_plusplus`` on the whole data)."""
    uniforms = _core.random_uniforms(seed, n_clusters)
    n_rows = data.shape[0]
    # the first row with probability 1/N: the running count n + 1 first exceeds u · N at n = floor(u · N)
    chosen = [min(int(np.floor(uniforms[0] * float(n_rows))), n_rows - 1)]
    nearest: list = [None] * data.n_blocks
    try:
        while len(chosen) < n_clusters:
            centre = data.rows([chosen[-1]])[0]
            nearest = data.client.map(_nearest, data.blocks, nearest, centre=centre, pure=False)
            sums = fetch(data.client.map(np.sum, nearest, pure=False))
            total = float(np.sum(sums))
            if not total > 0.0:
                # fewer distinct rows than clusters: take rows not chosen yet, in order
                for row in range(n_rows):
                    if len(chosen) == n_clusters:
                        break
                    if row not in chosen:
                        chosen.append(row)
                break
            chosen.append(_draw(data, nearest, sums, uniforms[len(chosen)] * total))
    finally:
        for future in nearest:
            if future is not None:
                future.release()
    return chosen


def _draw(data: DaskBlocks, nearest: list, sums: list, target: float) -> int:
    """Return the global row whose running mass first exceeds ``target``."""
    start, first = 0.0, 0
    for index, value in enumerate(sums):  # skip whole blocks whose sum stays below the target
        if start + value > target:
            first = index
            break
        start += value
    else:
        first = len(sums) - 1
        start -= sums[-1]
    for index in range(first, data.n_blocks):
        row, start = fetch(data.client.submit(_locate, nearest[index], start, target, pure=False))
        if row >= 0:
            return int(data.offsets[index] + row)
    # round-off at the very end: the last row with mass
    for index in reversed(range(data.n_blocks)):
        row = fetch(data.client.submit(_last_with_mass, nearest[index], pure=False))
        if row >= 0:
            return int(data.offsets[index] + row)
    return 0


def _assign(block: np.ndarray, labels: np.ndarray, row_offset: int, centroids: np.ndarray,
            shift: np.ndarray) -> tuple:
    return _core.kmeans_assign(block, np.empty(0), centroids, shift, labels, row_offset, 1, 0)


def _initial_labels(size: int) -> np.ndarray:
    return np.full(size, -1, dtype=np.intc)


def kmeans_labels(data: DaskBlocks, n_clusters: int, seed: int, max_iter: int = 100) -> list:
    """Lloyd's k-means from k-means++ seeds (``_core.kmeans``): futures of each block's labels, on the workers."""
    centroids = data.rows(kmeans_plusplus(data, n_clusters, seed))
    # distances about the seeds' mean, so that ||x||² − 2x·c + ||c||² does not cancel
    shift = centroids.mean(axis=0)
    client = data.client
    labels = client.map(_initial_labels, data.sizes, pure=False)
    for _ in range(max_iter):
        results = data.map(_assign, labels, list(data.offsets[:-1]), centroids=centroids, shift=shift)
        previous = labels
        labels = client.map(operator_item, results, [1] * len(results), pure=False)
        stats = data.reduce(client.map(operator_item, results, [0] * len(results), pure=False))
        for future in previous + results:
            future.release()
        farthest = stats.farthest
        relocate = [k for k in range(n_clusters) if not stats.counts[k] > 0.0][:len(farthest)]
        centroids = centroids.copy()
        for k in range(n_clusters):
            if stats.counts[k] > 0.0:
                centroids[k] = stats.sums[k] / stats.counts[k] + shift
        if relocate:
            # an empty cluster moves to the sample farthest from its centroid (as scikit-learn's k-means does)
            centroids[relocate] = data.rows(farthest[:len(relocate)])
        if stats.changed == 0 and not relocate:
            break  # assignments are stable: the centroids are the means already
    return labels


def operator_item(values: tuple, index: int) -> object:
    """``values[index]``, as a task (splits a tuple result into futures)."""
    return values[index]
