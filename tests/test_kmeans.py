"""k-means for initialisation: Lloyd's fixed point, no empty clusters, thread independence."""

from __future__ import annotations

import numpy as np
import pytest

from entrosum import _core


def blobs(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    return centres[rng.integers(k, size=n)] + rng.standard_normal((n, d))


@pytest.mark.parametrize("seed", range(4))
def test_no_cluster_is_left_empty(seed):
    """With many clusters some empty out during Lloyd; they move to far samples instead of staying empty."""
    X = blobs(20_000, 128, 128, seed=1)
    _, labels, _, _ = _core.kmeans(X, np.empty(0), 128, seed, 100, 2, 0)
    assert np.bincount(labels, minlength=128).min() > 0


def test_converged_result_is_a_lloyd_fixed_point():
    X = blobs(3000, 5, 6, seed=2)
    weights = np.random.default_rng(3).uniform(0.5, 2.0, len(X))
    centroids, labels, inertia, n_iter = _core.kmeans(X, weights, 6, 0, 300, 1, 0)
    assert n_iter < 300
    distances = ((X[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, distances.argmin(axis=1))
    for k in range(6):
        members = labels == k
        expected = np.average(X[members], axis=0, weights=weights[members])
        np.testing.assert_allclose(centroids[k], expected, rtol=1e-10, atol=1e-10)
    assert inertia == pytest.approx(np.sum(weights * distances.min(axis=1)), rel=1e-10)


def test_threads_and_chunks_do_not_change_the_result():
    X = blobs(5000, 8, 10, seed=4)
    runs = [_core.kmeans(X, np.empty(0), 10, 7, 100, threads, chunk) for threads, chunk in ((1, 64), (2, 64), (1, 0))]
    for centroids, labels, _, _ in runs[1:]:
        np.testing.assert_array_equal(labels, runs[0][1])
        np.testing.assert_allclose(centroids, runs[0][0], rtol=1e-12)
