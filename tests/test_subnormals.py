"""No subnormal arithmetic: the mixture E-step hands exact zeros, never subnormals, to the M-step, and every
pass over data runs with subnormals flushed to zero, without changing the caller's floating-point mode.

Subnormal numbers cost microcode assists on every operation that reads or makes them; on separated clusters
most responsibilities underflow, and a kernel that kept them as subnormals ran its M-step ~20x slower.
"""

from __future__ import annotations

import numpy as np
import pytest

import entrosum
from entrosum import _core


def separated_clusters(n=2000, n_components=16, n_features=8, seed=0, dtype=np.float64):
    """Clusters with unit noise, centres drawn N(0, 10²): far apart, as in the speed issue's first case."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 10.0, (n_components, n_features))
    labels = rng.integers(0, n_components, n)
    return (centres[labels] + rng.standard_normal((n, n_features))).astype(dtype), centres


def diag_log_joint(X, weights, means, variances):
    """(n, K) log π_k + log N(x_n; μ_k, diag σ²_k), in float64 by numpy."""
    X = np.asarray(X, np.float64)
    return (np.log(weights) - 0.5 * np.log(2 * np.pi * variances).sum(axis=1)
            - 0.5 * (((X[:, None, :] - means[None]) ** 2) / variances[None]).sum(axis=2))


def reference_responsibilities(log_joint, dtype):
    """Normalised responsibilities with every value below the dtype's smallest normal number set to 0."""
    shifted = log_joint - log_joint.max(axis=1, keepdims=True)
    tiny = np.finfo(dtype).tiny
    exp = np.exp(shifted)
    exp[exp < tiny] = 0.0
    resp = exp / exp.sum(axis=1, keepdims=True)
    resp[resp < tiny] = 0.0
    return resp


def is_subnormal(values):
    values = np.abs(np.asarray(values))
    return (values > 0) & (values < np.finfo(values.dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_e_step_kernel_writes_zeros_not_subnormals(dtype):
    X, centres = separated_clusters(n_features=16)
    K = centres.shape[0]
    log_joint = diag_log_joint(X, np.full(K, 1.0 / K), centres, np.ones_like(centres))
    shifted = log_joint - log_joint.max(axis=1, keepdims=True)
    # Most responsibilities underflow the normal range: the case this guards.
    assert np.mean(shifted < np.log(np.finfo(dtype).tiny)) > 0.5
    # Values just below the threshold, and a row of near-ties, so mixed SIMD packets are exercised.
    log_joint[:, 1] = log_joint.max(axis=1) + np.log(np.finfo(dtype).tiny) * np.linspace(0.98, 1.02, len(X))
    weights = np.linspace(0.5, 2.0, len(X))
    resp, log_likelihood, entropy, counts = _core.mixture_responsibilities(log_joint.astype(dtype), weights)
    assert resp.dtype == dtype
    assert not is_subnormal(resp).any()
    expected = reference_responsibilities(log_joint.astype(dtype).astype(np.float64), dtype) * weights[:, None]
    expected[expected < np.finfo(dtype).tiny] = 0.0
    # float32: exp of an argument near -87 carries the argument's rounding, ~1e-5 relative; values at the
    # threshold may fall either side of it (atol of a few smallest normals).
    rtol, atol = (1e-14, 0.0) if dtype == np.float64 else (1e-5, 4 * np.finfo(np.float32).tiny)
    np.testing.assert_allclose(resp, expected, rtol=rtol, atol=atol)
    np.testing.assert_allclose(counts, expected.sum(axis=0), rtol=rtol, atol=atol)
    rows = log_joint.astype(dtype).astype(np.float64)
    largest = rows.max(axis=1)
    expected_ll = weights @ (largest + np.log(np.exp(rows - largest[:, None]).sum(axis=1)))
    assert log_likelihood == pytest.approx(expected_ll, rel=1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_passes_flush_subnormals_and_leave_the_callers_mode_alone(n_threads):
    assert _core.passes_flush_subnormals(n_threads)
    smallest = np.finfo(np.float64).tiny
    assert smallest * np.float64(0.5) > 0  # this thread's own mode is restored after the pass
    X, _ = separated_clusters(n=300, n_components=3)
    entrosum.GaussianMixture(3, covariance_type="diag", random_state=0, n_jobs=n_threads).fit(X)
    assert smallest * np.float64(0.5) > 0


def numpy_diag_em(X, weights, means, variances, n_iter, reg_covar=1e-6):
    """EM for a diagonal Gaussian mixture in numpy (exact exponentials, subnormals kept): the reference."""
    for _ in range(n_iter):
        log_joint = diag_log_joint(X, weights, means, variances)
        shifted = log_joint - log_joint.max(axis=1, keepdims=True)
        resp = np.exp(shifted)
        resp /= resp.sum(axis=1, keepdims=True)
        counts = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
        weights = counts / len(X)
        means = resp.T @ X / counts[:, None]
        variances = resp.T @ X**2 / counts[:, None] - means**2 + reg_covar
    return weights, means, variances


def test_a_fit_where_most_responsibilities_underflow_matches_exact_arithmetic():
    X, centres = separated_clusters(n=3000, n_components=16, n_features=8, seed=1)
    K = centres.shape[0]
    rng = np.random.default_rng(2)
    start = dict(weights_init=np.full(K, 1.0 / K), means_init=centres + 0.3 * rng.standard_normal(centres.shape),
                 precisions_init=np.full(centres.shape, 0.5))
    with pytest.warns(entrosum.ConvergenceWarning):  # a fixed number of iterations: tol=None
        model = entrosum.GaussianMixture(K, covariance_type="diag", tol=None, max_iter=6, **start).fit(X)
    # 6 E-steps and 6 M-steps; scikit-learn's (and our) lower bound is computed before the last M-step.
    weights, means, variances = numpy_diag_em(X, start["weights_init"], start["means_init"],
                                              1.0 / start["precisions_init"], 6)
    np.testing.assert_allclose(model.weights_, weights, rtol=1e-12)
    np.testing.assert_allclose(model.means_, means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.covariances_, variances, rtol=1e-11)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_e_step_exponential_is_accurate_over_its_whole_range(dtype):
    """The kernel's own exp (a polynomial for float64, Eigen's for float32) against long double, on rows
    [0, x, (far below)] with x from log(smallest normal) to 0: r = e^x / (1 + e^x) within a few roundings; for
    x ≤ -38 (float64) the sum is exactly 1, so r is the exp alone, within an eps of the exact value."""
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    x = np.linspace(np.log(tiny) * 0.99999, 0.0, 100_003).astype(dtype)
    log_joint = np.full((len(x), 16), 2 * np.log(tiny), dtype=dtype)  # underflows: exact zeros
    log_joint[:, 0] = 0.0
    log_joint[:, 1] = x
    resp, _, _, _ = _core.mixture_responsibilities(log_joint, np.empty(0))
    exact = np.exp(x.astype(np.longdouble))
    relative = np.abs(resp[:, 1].astype(np.longdouble) / (exact / (1 + exact)) - 1) / eps
    assert float(relative.max()) < (2.0 if dtype == np.float64 else 4.0)
    if dtype == np.float64:
        alone = x <= -38.0
        assert float(np.abs(resp[alone, 1].astype(np.longdouble) / exact[alone] - 1).max()) < eps
    assert not is_subnormal(resp).any()
