"""Chunking, threads and precision do not change results (DESIGN.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

import entrosum

from conftest import low_rank

MODELS = {
    "ppca_em": lambda **kw: entrosum.PPCA(3, solver="em", precompute=False, tol=None, max_iter=40, **kw),
    "ppca_closed_form": lambda **kw: entrosum.PPCA(3, solver="closed_form", **kw),
    "fa_streamed": lambda **kw: entrosum.FactorAnalysis(3, precompute=False, tol=None, max_iter=40, **kw),
    "fa_covariance": lambda **kw: entrosum.FactorAnalysis(3, precompute=True, tol=None, max_iter=40, **kw),
}


@pytest.fixture(scope="module")
def data():
    return low_rank(1003, 9, 3, noise_sd=np.linspace(0.3, 1.0, 9), offset=2.0, seed=11)


def fit(name, X, **kwargs):
    model = MODELS[name](random_state=0, **kwargs)
    if name == "ppca_closed_form":
        return model.fit(X)
    with pytest.warns(entrosum.ConvergenceWarning):
        return model.fit(X)


def assert_same_fit(a, b, rtol):
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(a.components_, b.components_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.noise_variance_, b.noise_variance_, rtol=rtol)
    np.testing.assert_allclose(a.mean_, b.mean_, rtol=rtol)
    for name in ("entropy_sum", "posterior_entropy", "observable_entropy", "gap"):
        np.testing.assert_allclose(a.monitor_.history[name], b.monitor_.history[name], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", MODELS)
def test_chunk_size_does_not_change_the_fit(data, name):
    assert_same_fit(fit(name, data, chunk_size=7), fit(name, data, chunk_size=len(data)), rtol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_thread_count_does_not_change_the_fit(data, name):
    one = fit(name, data, n_jobs=1, chunk_size=50)
    two = fit(name, data, n_jobs=2, chunk_size=50)
    # blocks are merged in a fixed order whatever the thread count: the results are identical
    np.testing.assert_array_equal(one.lower_bounds_, two.lower_bounds_)
    np.testing.assert_array_equal(one.components_, two.components_)


@pytest.mark.parametrize("name", MODELS)
def test_float32_agrees_with_float64(data, name):
    single = fit(name, data.astype(np.float32))
    double = fit(name, data)
    assert single.components_.dtype == np.float32 and single.mean_.dtype == np.float32
    assert np.asarray(single.noise_variance_).dtype == np.float32
    assert single.transform(data.astype(np.float32)).dtype == np.float32
    assert double.components_.dtype == np.float64
    np.testing.assert_allclose(single.lower_bounds_, double.lower_bounds_, rtol=1e-5)
    np.testing.assert_allclose(single.get_covariance(), double.get_covariance(), rtol=1e-3, atol=1e-4)


def test_float32_with_large_offset_keeps_positive_variances():
    X = low_rank(5000, 6, 2, noise_sd=0.5, offset=1e4, seed=3)
    single = entrosum.FactorAnalysis(2, tol=1e-8, max_iter=5000, random_state=0).fit(X.astype(np.float32))
    double = entrosum.FactorAnalysis(2, tol=1e-8, max_iter=5000, random_state=0).fit(X)
    assert np.all(single.noise_variance_ > 0)
    np.testing.assert_allclose(single.noise_variance_, double.noise_variance_, rtol=1e-2)
    assert single.score(X) == pytest.approx(double.score(X), rel=1e-4)


def test_random_state_makes_fits_reproducible(data):
    a = entrosum.FactorAnalysis(3, random_state=5).fit(data)
    b = entrosum.FactorAnalysis(3, random_state=5).fit(data)
    c = entrosum.FactorAnalysis(3, random_state=6).fit(data)
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)
    assert not np.array_equal(a.lower_bounds_, c.lower_bounds_)
