"""The moments pass of PPCA and factor analysis and the closed form's partial eigensolver, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from entrosum import _core


def offset_data(n_samples: int, n_features: int, seed: int, offset: float = 1e3) -> np.ndarray:
    """Correlated rows with features of different scales, far from the origin (centring matters)."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((n_features, n_features)) * rng.uniform(0.1, 3.0, n_features)
    return rng.standard_normal((n_samples, n_features)) @ mixing + offset * rng.uniform(0.5, 1.5, n_features)


@pytest.fixture(scope="module")
def data():
    # 20,000 rows: several blocks of the pass (at least 4096 rows each) whatever the chunk size
    return offset_data(20_000, 37, seed=0)


@pytest.mark.parametrize("chunk_size", [0, 7, 1000])
@pytest.mark.parametrize("n_threads", [1, 3])
def test_float64_moments_equal_numpy(data, chunk_size, n_threads):
    moments = _core.linear_gaussian_moments(data, n_threads, chunk_size)
    reference = np.cov(data.T, bias=True)
    assert moments.count == len(data)
    np.testing.assert_allclose(moments.mean, data.mean(axis=0), rtol=1e-13)
    scale = np.sqrt(np.outer(np.diag(reference), np.diag(reference)))  # entrywise, relative to the variances
    assert np.abs(moments.covariance - reference).max() / scale.min() < 1e-12
    np.testing.assert_allclose(moments.covariance, reference, rtol=1e-12, atol=1e-12 * scale.max())
    assert np.array_equal(moments.covariance, moments.covariance.T)


def test_float32_moments_agree_with_float64(data):
    single = data.astype(np.float32)
    exact = np.cov(single.astype(np.float64).T, bias=True)  # the float32 values, in double
    moments = _core.linear_gaussian_moments(single, 2, 0)
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    # float32 products over batches of at most 512 rows, summed in double: about √512 · 6e-8
    assert np.abs(moments.covariance - exact).max() / scale.max() < 1e-5
    np.testing.assert_allclose(moments.mean, single.astype(np.float64).mean(axis=0), rtol=1e-7)
    assert np.all(np.diag(moments.covariance) > 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_moments_do_not_depend_on_the_thread_count(data, dtype):
    X = data.astype(dtype)
    one = _core.linear_gaussian_moments(X, 1, 300)
    for n_threads in (2, 3, 8):
        other = _core.linear_gaussian_moments(X, n_threads, 300)
        assert np.array_equal(one.covariance, other.covariance) and np.array_equal(one.mean, other.mean)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_moments_barely_depend_on_the_chunk_size(data, dtype):
    X = data.astype(dtype)
    reference = _core.linear_gaussian_moments(X, 1, len(X))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for chunk_size in (1, 7, 4096, 5000):
        other = _core.linear_gaussian_moments(X, 2, chunk_size)
        np.testing.assert_allclose(other.mean, reference.mean, rtol=rtol)
        assert np.abs(other.covariance - reference.covariance).max() < rtol * np.abs(reference.covariance).max()


def test_merged_moments_of_chunks_equal_the_pass(data):
    parts = [_core.linear_gaussian_moments(chunk) for chunk in np.array_split(data, 5)]
    merged = parts[0]
    for part in parts[1:]:
        merged += part
    whole = _core.linear_gaussian_moments(data, 2, 0)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13)
    np.testing.assert_allclose(merged.covariance, whole.covariance, rtol=1e-11, atol=1e-11)


def test_float32_with_an_offset_far_above_the_spread_keeps_its_variances():
    rng = np.random.default_rng(1)
    X = (1e4 + rng.standard_normal((30_000, 5)) * np.array([1.0, 0.1, 0.01, 1e-3, 2.0])).astype(np.float32)
    exact = np.cov(X.astype(np.float64).T, bias=True)
    variances = np.diag(_core.linear_gaussian_moments(X, 2, 0).covariance)
    np.testing.assert_allclose(variances, np.diag(exact), rtol=1e-4)


def closed_form_reference(covariance: np.ndarray, n_components: int) -> tuple[np.ndarray, float]:
    """W Wᵀ and σ² of the ML PPCA from numpy's full eigendecomposition (W Wᵀ is unique where W is not)."""
    values, vectors = np.linalg.eigh(covariance)
    values, vectors = values[::-1], vectors[:, ::-1]
    noise = values[n_components:].mean()
    top = vectors[:, :n_components] * np.sqrt(np.maximum(values[:n_components] - noise, 0.0))
    return top @ top.T, noise


def spectrum_matrix(values: np.ndarray, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(values), len(values))))
    return (q * values) @ q.T


SPECTRA = {
    "random": lambda d: np.random.default_rng(2).chisquare(3, d),
    "low rank plus isotropic noise": lambda d: np.r_[np.linspace(50.0, 10.0, 12), np.full(d - 12, 0.5)],
    "clusters inside the top": lambda d: np.r_[9.0 + np.arange(3) * 1e-10, [4.0] * 3, np.linspace(1, 2, d - 6)],
    "graded to 1e-13": lambda d: np.logspace(0, -13, d),
    "rank deficient": lambda d: np.r_[np.linspace(3.0, 1.0, 15), np.zeros(d - 15)],
}


@pytest.mark.parametrize("n_features", [2, 40, 300])
@pytest.mark.parametrize("spectrum", list(SPECTRA))
def test_closed_form_eigenpairs_equal_numpy(spectrum, n_features):
    n_components = 1 if n_features == 2 else 10
    covariance = spectrum_matrix(SPECTRA[spectrum](max(n_features, 16))[:n_features], seed=n_features)
    # Moments holding this covariance: 8 rows scaled so that count · covariance is the scatter
    moments = _core.Moments.__new__(_core.Moments)
    moments.__setstate__((8.0, np.zeros(n_features), 8.0 * np.diag(covariance), 8.0 * covariance))
    fit = _core.ppca_closed_form_from_moments(moments, n_components)
    reference_outer, reference_noise = closed_form_reference(covariance, n_components)
    components = fit["components"]
    scale = np.abs(covariance).max()
    assert fit["noise_variance"][0] == pytest.approx(max(reference_noise, 1e-12 * np.trace(covariance) / n_features),
                                                     rel=1e-9, abs=1e-13 * scale)
    np.testing.assert_allclose(components @ components.T, reference_outer, rtol=0, atol=1e-9 * scale)
    # columns ordered by decreasing variance, each with its largest entry positive
    norms = np.linalg.norm(components, axis=0)
    assert np.all(np.diff(norms) <= 1e-12 * norms[0])
    largest = components[np.abs(components).argmax(axis=0), np.arange(n_components)]
    assert np.all(largest > 0)
