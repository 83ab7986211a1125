"""The batched E-step of sparse coding (diagonal posteriors, points solved side by side in SIMD lanes) against
the per-point solver it replaces.

- Factorising in double (mixed_precision=False): the same Newton steps per point, results equal to rounding, for
  dictionary sizes around the lane and block widths, chunks smaller than a batch, points that stop at max_iter,
  float32, and any number of threads.
- The default, single-precision factorisations refined in double: every point ends within the solver's tol of the
  same optimum (the ELBO within N·tol), with ill-conditioned systems redone in double, and the results do not
  depend on chunks or threads."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from entrosum import _core


def problem(n_samples: int, n_features: int, n_components: int, seed: int):
    """Data from a Laplace sparse code, and a different random dictionary with scales and noise to solve under."""
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((n_features, n_components))
    atoms /= np.linalg.norm(atoms, axis=0)
    X = rng.laplace(0.0, 1.0, (n_samples, n_components)) @ atoms.T + 0.3 * rng.standard_normal((n_samples, n_features))
    components = rng.standard_normal((n_features, n_components))
    components /= np.linalg.norm(components, axis=0)
    scales = rng.uniform(0.3, 1.5, n_components)
    return X, components, scales, 0.2


def posterior(X, components, scales, noise, *, batched, tol=1e-10, max_iter=100, n_threads=1, chunk_size=0,
              mixed_precision=False):
    return _core.sparse_coding_posterior(X, components, scales, noise, "diag", tol, max_iter, True, n_threads,
                                         chunk_size, batched, mixed_precision)


def assert_same_posterior(batched, reference, rtol):
    scale = np.abs(reference["means"]).max()
    np.testing.assert_allclose(batched["means"], reference["means"], rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(batched["spread"], reference["spread"], rtol=rtol)
    assert batched["solver"] == reference["solver"]  # the same Newton steps for every point
    for terms in ("es_elbo", "elbo"):
        for name, value in reference[terms].items():
            assert batched[terms][name] == pytest.approx(value, rel=rtol, abs=rtol), (terms, name)


@pytest.mark.parametrize("n_components", [1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 33, 64])
def test_batched_e_step_equals_the_per_point_solver(n_components):
    X, components, scales, noise = problem(300, 12, n_components, seed=n_components)
    reference = posterior(X, components, scales, noise, batched=False)
    assert_same_posterior(posterior(X, components, scales, noise, batched=True), reference, rtol=1e-9)


@pytest.mark.parametrize("chunk_size", [1, 3, 5, 11])
def test_chunks_smaller_than_a_batch(chunk_size):
    X, components, scales, noise = problem(60, 10, 6, seed=1)
    reference = posterior(X, components, scales, noise, batched=False)
    assert_same_posterior(posterior(X, components, scales, noise, batched=True, chunk_size=chunk_size), reference,
                          rtol=1e-9)


def test_points_that_stop_at_max_iter():
    # (e_step_max_iter must be at least 1: the bindings refuse 0)
    X, components, scales, noise = problem(200, 16, 24, seed=2)
    for max_iter in (1, 2, 3):
        reference = posterior(X, components, scales, noise, batched=False, max_iter=max_iter)
        batched = posterior(X, components, scales, noise, batched=True, max_iter=max_iter)
        assert batched["solver"]["unconverged"] > 0
        assert_same_posterior(batched, reference, rtol=1e-9)


def test_overcomplete_dictionary_with_widely_spread_step_counts():
    # 100 atoms in 64 dimensions (the patches benchmark's shape): 4 to 19 Newton steps per point
    X, components, scales, _ = problem(400, 64, 100, seed=3)
    reference = posterior(X, components, scales, 0.1, batched=False)
    assert reference["solver"]["max_solver_steps"] >= 1.5 * reference["solver"]["mean_solver_steps"]
    assert_same_posterior(posterior(X, components, scales, 0.1, batched=True), reference, rtol=1e-9)


def test_ill_conditioned_points_reach_the_same_optimum():
    # Smaller noise: 16 steps per point and curvatures spread so widely that rounding can change a point's last
    # step; both solvers still stop within their tolerance of the same optimum.
    X, components, scales, _ = problem(400, 64, 100, seed=3)
    reference = posterior(X, components, scales, 0.05, batched=False)
    batched = posterior(X, components, scales, 0.05, batched=True)
    assert reference["solver"]["unconverged"] == batched["solver"]["unconverged"] == 0
    assert batched["solver"]["mean_solver_steps"] == pytest.approx(reference["solver"]["mean_solver_steps"], rel=0.01)
    assert batched["es_elbo"]["elbo"] == pytest.approx(reference["es_elbo"]["elbo"], rel=1e-8)
    scale = np.abs(reference["means"]).max()
    np.testing.assert_allclose(batched["means"], reference["means"], rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("noise", [1e-2, 1e-3])
@pytest.mark.parametrize("solver", [dict(batched=False), dict(batched=True),
                                    dict(batched=True, mixed_precision=True)], ids=["per-point", "double", "mixed"])
def test_overcomplete_dictionary_at_low_noise_reaches_a_stationary_point(noise, solver):
    # 100 atoms in 64 dimensions: G = WᵀW/σ² is singular, and where a coefficient lies far from 0 the prior adds
    # no curvature; the solvers used to stop at the ridge start (every point unconverged at σ² = 1e-3). The
    # gradient of f (sparse_coding_posterior.hpp) at the returned q, in numpy, must vanish. Newton converges
    # slowly here (up to 90 steps at σ² = 1e-3, and another compilation of the library rounds its way to more),
    # hence the larger e_step_max_iter.
    X, components, scales, _ = problem(50, 64, 100, seed=3)
    result = posterior(X, components, scales, noise, max_iter=1000, **solver)
    assert result["solver"]["unconverged"] == 0
    b = 1.0 / noise
    gram = b * components.T @ components
    means, sd = result["means"], np.sqrt(result["spread"])
    u = means / sd
    grad_means = b * X @ components - means @ gram - erf(u / np.sqrt(2.0)) / scales
    grad_sd = 1.0 / sd - np.diag(gram) * sd - 2.0 * np.exp(-0.5 * u**2) / np.sqrt(2.0 * np.pi) / scales
    assert np.abs(grad_means).max() <= 1e-5 * np.abs(b * X @ components).max()
    assert np.abs(grad_sd * sd).max() <= 1e-3


def test_float32_data():
    X, components, scales, noise = problem(200, 12, 9, seed=4)
    single = X.astype(np.float32)
    reference = posterior(single, components, scales, noise, batched=False)
    batched = posterior(single, components, scales, noise, batched=True)
    assert batched["means"].dtype == np.float32
    np.testing.assert_allclose(batched["means"], reference["means"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batched["spread"], reference["spread"], rtol=1e-6)


def test_threads_do_not_change_the_batched_e_step():
    X, components, scales, noise = problem(3000, 16, 20, seed=5)
    params = {"components": components, "scales": scales, "noise_variance": noise, "prior_beta": 2.0,
              "observable_beta": 1.0, "step": 0}
    one = _core.sparse_coding_e_step(X, params, "diag", 1e-10, 100, 1, 100).__getstate__()
    for n_threads in (2, 3):
        other = _core.sparse_coding_e_step(X, params, "diag", 1e-10, 100, n_threads, 100).__getstate__()
        assert len(other) == len(one) and all(np.array_equal(a, b) for a, b in zip(one, other))
    one = posterior(X, components, scales, noise, batched=True, chunk_size=100)
    three = posterior(X, components, scales, noise, batched=True, n_threads=3, chunk_size=100)
    assert np.array_equal(one["means"], three["means"]) and np.array_equal(one["spread"], three["spread"])


# ---- mixed precision (the default) ----------------------------------------------------------------------------


def assert_same_optimum(mixed, reference, n_samples, tol=1e-10):
    """Both solvers stop once a point's Newton decrement (the objective still to gain, in nats) is below tol."""
    assert mixed["solver"]["unconverged"] == reference["solver"]["unconverged"] == 0
    assert mixed["elbo"]["elbo"] == pytest.approx(reference["elbo"]["elbo"], rel=1e-13, abs=2 * n_samples * tol)
    # A decrement δ leaves the point about √(2δ) from the optimum in the Newton system's norm.
    scale = np.abs(reference["means"]).max()
    np.testing.assert_allclose(mixed["means"], reference["means"], rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(mixed["spread"], reference["spread"], rtol=1e-3)


@pytest.mark.parametrize(("n_features", "n_components", "noise"),
                         [(12, 1, 0.2), (12, 5, 0.2), (12, 17, 0.2), (12, 33, 0.2), (12, 64, 0.2), (64, 100, 0.1),
                          (64, 100, 0.05)])
def test_mixed_precision_reaches_the_per_point_optimum(n_features, n_components, noise):
    X, components, scales, _ = problem(300, n_features, n_components, seed=n_components)
    reference = posterior(X, components, scales, noise, batched=False)
    mixed = posterior(X, components, scales, noise, batched=True, mixed_precision=True)
    assert_same_optimum(mixed, reference, len(X))
    # the refined steps are as good as exact ones: about the same number of them
    assert mixed["solver"]["mean_solver_steps"] == pytest.approx(reference["solver"]["mean_solver_steps"], rel=0.02)


def test_mixed_precision_redoes_ill_conditioned_systems_in_double():
    # Two pairs of nearly equal atoms: G has eigenvalues of order b·1e-6, so for many points the Newton system
    # G + diag(c) is not definite in single precision, or its refined step keeps a large residual. Such a lane
    # is factorised again in double; were it not, it would stop unconverged or elsewhere.
    X, components, scales, _ = problem(64, 16, 24, seed=7)
    rng = np.random.default_rng(0)
    components[:, 1] = components[:, 0] + 1e-3 * rng.standard_normal(16)
    components[:, 3] = components[:, 2] + 1e-3 * rng.standard_normal(16)
    components /= np.linalg.norm(components, axis=0)
    reference = posterior(X, components, scales, 0.1, batched=False)
    mixed = posterior(X, components, scales, 0.1, batched=True, mixed_precision=True)
    assert_same_optimum(mixed, reference, len(X))


def test_mixed_precision_float32_data():
    X, components, scales, noise = problem(200, 12, 9, seed=4)
    single = X.astype(np.float32)
    reference = posterior(single, components, scales, noise, batched=False)
    mixed = posterior(single, components, scales, noise, batched=True, mixed_precision=True)
    assert mixed["means"].dtype == np.float32
    assert_same_optimum(mixed, reference, len(X))


def test_mixed_precision_does_not_depend_on_chunks_or_threads():
    # Each lane's arithmetic is its own: threads change nothing, to the last bit. Chunks change the rounding of
    # the products of the data with W (as for the per-point solver), and that can tip a step over the threshold
    # of its refinement, so a few points end elsewhere within the solver's tol.
    X, components, scales, noise = problem(500, 64, 100, seed=6)
    one = posterior(X, components, scales, noise, batched=True, mixed_precision=True, chunk_size=100)
    for n_threads in (2, 3):
        other = posterior(X, components, scales, noise, batched=True, mixed_precision=True, chunk_size=100,
                          n_threads=n_threads)
        assert np.array_equal(one["means"], other["means"]) and np.array_equal(one["spread"], other["spread"])
        assert one["solver"] == other["solver"]
    scale = np.abs(one["means"]).max()
    for chunk_size in (7, 33, 500):
        other = posterior(X, components, scales, noise, batched=True, mixed_precision=True, chunk_size=chunk_size)
        np.testing.assert_allclose(other["means"], one["means"], rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(other["spread"], one["spread"], rtol=1e-8)
        assert other["elbo"]["elbo"] == pytest.approx(one["elbo"]["elbo"], rel=1e-13, abs=len(X) * 1e-10)
