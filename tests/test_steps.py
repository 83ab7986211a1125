"""The chunk-level step API (E-step on a chunk -> mergeable statistics -> M-step) of every family.

EM driven by ``entrosum.engine.stepwise.run_em`` over statistics merged from chunks (pickled and unpickled, as Dask
ships them) must reproduce the C++ in-memory EM; merged statistics must be the statistics of the union of rows,
including when the chunks' E-steps used different parameters (GMM statistics about different shifts)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from entrosum import _core
from entrosum.engine.steps import merge
from entrosum.engine.stepwise import run_em
from entrosum.linear.steps import LinearGaussianSteps
from entrosum.mixtures.steps import DiscreteMixtureSteps, GaussianMixtureSteps
from entrosum.sparse.steps import SparseCodingSteps


def _gaussian_data(rng: np.random.Generator, n: int = 900) -> np.ndarray:
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 3.0, -2.0], [-3.0, 4.0, 1.0]])
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.standard_normal((n, 3)) * np.array([1.0, 0.6, 0.8])


def _chunked_statistics(steps, chunks):
    def statistics_of(params):
        return merge([pickle.loads(pickle.dumps(steps.chunk_statistics(params, chunk))) for chunk in chunks])
    return statistics_of


def _compare_history(history: dict, reference: dict, tolerance: float) -> None:
    assert len(history["elbo"]) == len(reference["elbo"])
    for name in ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy", "m_step_elbo",
                 "m_step_entropy_sum"):
        np.testing.assert_allclose(history[name], reference[name], rtol=0, atol=tolerance, err_msg=name)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_em_from_chunks_matches_in_memory_em(covariance_type):
    rng = np.random.default_rng(0)
    X = _gaussian_data(rng)
    labels = rng.integers(0, 3, X.shape[0]).astype(np.intc)
    start = _core.gmm_init_from_labels(X, np.empty(0), labels, 3, covariance_type, 1e-6, 1, 0)
    stop = _core.StopOptions(tol=1e-9, max_iter=40)
    reference = _core.gmm_fit(X, np.empty(0), covariance_type, dict(start), 1e-6, stop, 1, 0, None)
    steps = GaussianMixtureSteps(covariance_type, 1e-6)
    params, monitor = run_em(steps, _chunked_statistics(steps, np.array_split(X, 7)), start, stop)
    _compare_history(monitor.history, reference["history"], 1e-11)
    for name in ("weights", "means", "covariances", "precision_cholesky"):
        np.testing.assert_allclose(params[name], reference[name], rtol=0, atol=1e-10, err_msg=name)
    assert monitor.stop_reason == reference["stop_reason"]


def _responsibilities(X: np.ndarray, params: dict) -> np.ndarray:
    """Diagonal-GMM posteriors computed directly (the reference for the C++ E-step)."""
    variances = params["covariances"]
    log_joint = (np.log(params["weights"]) - 0.5 * np.sum(np.log(2 * np.pi * variances), axis=1)
                 - 0.5 * np.sum((X[:, None, :] - params["means"][None]) ** 2 / variances[None], axis=2))
    log_joint -= log_joint.max(axis=1, keepdims=True)
    resp = np.exp(log_joint)
    return resp / resp.sum(axis=1, keepdims=True)


def test_statistics_of_different_parameters_merge_about_one_shift():
    # Two chunks, E-steps with different parameters (so different shifts): the M-step of the merged statistics
    # is the weighted M-step over the union of rows with each chunk's own responsibilities, computed directly.
    rng = np.random.default_rng(1)
    X = _gaussian_data(rng, 600) + 50.0  # far from the origin: a wrong re-centring would show
    first, second = X[:250], X[250:]
    diag_params = []
    for shift in (0.0, 1.5):
        params = _core.gmm_init_from_labels(X, np.empty(0), rng.integers(0, 3, 600).astype(np.intc), 3, "diag",
                                            1e-6, 1, 0)
        params["means"] = params["means"] + shift
        params["precision_cholesky"] = 1 / np.sqrt(params["covariances"])
        diag_params.append(params)
    resp = np.concatenate([_responsibilities(first, diag_params[0]), _responsibilities(second, diag_params[1])])

    steps = GaussianMixtureSteps("diag", 0.0)
    merged = steps.chunk_statistics(diag_params[0], first) + steps.chunk_statistics(diag_params[1], second)
    reversed_merge = steps.chunk_statistics(diag_params[1], second) + steps.chunk_statistics(diag_params[0], first)
    counts = resp.sum(axis=0)
    means = resp.T @ X / counts[:, None]
    variances = np.stack([resp[:, k] @ (X - means[k]) ** 2 / counts[k] for k in range(3)])
    for stats in (merged, reversed_merge):
        updated = steps.m_step(stats, diag_params[0])
        np.testing.assert_allclose(updated["weights"], counts / 600, rtol=1e-12)
        np.testing.assert_allclose(updated["means"], means, rtol=1e-12)
        np.testing.assert_allclose(updated["covariances"], variances, rtol=1e-9)


def test_gaussian_mixture_recentring_for_every_covariance_type():
    # Statistics of one E-step re-centred by merging with an empty-shift value about another shift give the same
    # M-step as without re-centring, for every layout of the second moments.
    rng = np.random.default_rng(2)
    X = _gaussian_data(rng, 400) + 20.0
    labels = rng.integers(0, 3, 400).astype(np.intc)
    for kind in ("full", "tied", "diag", "spherical"):
        params = _core.gmm_init_from_labels(X, np.empty(0), labels, 3, kind, 1e-6, 1, 0)
        steps = GaussianMixtureSteps(kind, 1e-6)
        stats = steps.chunk_statistics(params, X)
        other = {**params, "means": params["means"] + np.array([3.0, -2.0, 1.0])}
        zero = steps.chunk_statistics(other, X[:0])  # no rows, about another shift
        moved = zero + stats  # re-centred onto the other shift
        assert not np.allclose(moved.shift, stats.shift)
        a, b = steps.m_step(stats, params), steps.m_step(moved, params)
        for name in ("weights", "means", "covariances"):
            np.testing.assert_allclose(b[name], a[name], rtol=1e-11, atol=1e-11, err_msg=f"{kind} {name}")
        terms_a, terms_b = steps.terms(stats, params), steps.terms(moved, params)
        assert terms_b["elbo"] == pytest.approx(terms_a["elbo"], rel=1e-12)


@pytest.mark.parametrize("prefix", ["bernoulli_mixture", "poisson_mixture"])
def test_discrete_mixture_em_from_chunks_matches_in_memory_em(prefix):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 800)
    if prefix == "bernoulli_mixture":
        X = (rng.random((800, 12)) < np.array([[0.2] * 6 + [0.8] * 6, [0.8] * 6 + [0.2] * 6])[labels]).astype(float)
        settings = _core.BernoulliSettings(alpha=0.0)
    else:
        X = rng.poisson(np.array([[1.0] * 6 + [6.0] * 6, [6.0] * 6 + [1.0] * 6])[labels]).astype(float)
        settings = _core.PoissonSettings()
    start = getattr(_core, f"{prefix}_init_random")(X, np.empty(0), 7, 2, settings, 1, 0)
    stop = _core.StopOptions(tol=1e-10, max_iter=60)
    reference = getattr(_core, f"{prefix}_fit")(X, np.empty(0), start["weights"], start["means"], settings, stop, 1, 0,
                                                None)
    steps = DiscreteMixtureSteps(prefix)
    params, monitor = run_em(steps, _chunked_statistics(steps, np.array_split(X, 5)), start, stop)
    _compare_history(monitor.history, reference["history"], 1e-11)
    np.testing.assert_allclose(params["means"], reference["means"], rtol=0, atol=1e-10)
    if prefix == "poisson_mixture":  # the data term −(1/N) Σ log x! is in the merged statistics
        assert monitor.history["data_term"][-1] == pytest.approx(reference["history"]["data_term"][-1], rel=1e-13)
        assert monitor.history["data_term"][-1] < -1.0


@pytest.mark.parametrize("noise", ["isotropic", "diagonal"])
def test_linear_gaussian_em_from_chunk_moments_matches_in_memory_em(noise):
    rng = np.random.default_rng(4)
    W = rng.standard_normal((8, 2))
    X = rng.standard_normal((700, 2)) @ W.T + rng.standard_normal((700, 8)) * np.linspace(0.3, 0.8, 8) + 3.0
    initial = rng.standard_normal((8, 2)) / np.sqrt(2)
    stop = _core.StopOptions(tol=1e-10, max_iter=300)
    reference = _core.fit_linear_gaussian(X, initial, np.empty(0), noise, True, True, stop, 1, 0, None)
    steps = LinearGaussianSteps(noise)
    chunks = np.array_split(X, 6)
    moments = merge([steps.chunk_statistics(None, chunk) for chunk in chunks])
    assert moments.count == 700
    np.testing.assert_allclose(moments.mean, X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(moments.covariance, np.cov(X.T, bias=True), rtol=1e-11)
    start = _core.linear_gaussian_start(moments, initial, np.empty(0), noise)
    calls = []
    params, monitor = run_em(steps, lambda p: calls.append(1) or moments, start, stop)
    assert len(calls) == 1  # the moments serve every iteration
    _compare_history(monitor.history, reference["history"], 1e-11)
    for name in ("mean", "components", "noise_variance"):
        np.testing.assert_allclose(params[name], reference[name], rtol=0, atol=1e-9, err_msg=name)


def test_ppca_closed_form_from_merged_moments_matches_the_fit():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 9)) + 0.2 * rng.standard_normal((500, 9))
    moments = merge([_core.linear_gaussian_moments(chunk) for chunk in np.array_split(X, 4)])
    mine = _core.ppca_closed_form_from_moments(moments, 3)
    reference = _core.fit_ppca_closed_form(X, 3)
    np.testing.assert_allclose(mine["components"], reference["components"], rtol=0, atol=1e-10)
    assert mine["history"]["elbo"][0] == pytest.approx(reference["history"]["elbo"][0], rel=1e-13)


@pytest.mark.parametrize("posterior", ["diag", "full"])
def test_sparse_coding_em_from_chunks_matches_in_memory_em(posterior):
    rng = np.random.default_rng(6)
    W = rng.standard_normal((6, 3))
    X = rng.laplace(size=(300, 3)) @ W.T + 0.3 * rng.standard_normal((300, 6))
    initial = rng.standard_normal((6, 3))
    annealing = [4.0, 2.0]
    stop = _core.StopOptions(tol=1e-8, max_iter=15)
    reference = _core.fit_sparse_coding(X, initial, np.empty(0), -1.0, posterior, "em", annealing, [], 1e-10, 100,
                                        stop, 1, 0, None)
    steps = SparseCodingSteps(posterior, 1e-10, 100, tuple(annealing), ())
    start, steps = steps.start(initial, 6, _core.sum_of_squares(X) / X.size)
    params, monitor = run_em(steps, _chunked_statistics(steps, np.array_split(X, 4)), start, stop)
    _compare_history(monitor.history, reference["history"], 1e-10)
    np.testing.assert_array_equal(monitor.history["prior_beta"], reference["history"]["prior_beta"])
    np.testing.assert_allclose(params["components"], reference["components"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(params["scales"], reference["scales"], rtol=0, atol=1e-9)


def test_statistics_pickle_and_scale():
    rng = np.random.default_rng(7)
    X = _gaussian_data(rng, 200)
    labels = rng.integers(0, 3, 200).astype(np.intc)
    params = _core.gmm_init_from_labels(X, np.empty(0), labels, 3, "full", 1e-6, 1, 0)
    values = [GaussianMixtureSteps("full", 1e-6).chunk_statistics(params, X),
              DiscreteMixtureSteps("poisson_mixture").chunk_statistics(
                  {"weights": np.full(2, 0.5), "means": np.ones((2, 3))}, np.abs(np.round(X))),
              LinearGaussianSteps("diagonal").chunk_statistics(None, X)]
    for value in values:
        copy = pickle.loads(pickle.dumps(value))
        assert type(copy) is type(value) and type(value).__module__ == "entrosum._core"
        assert copy.count == value.count == 200
        assert value.scaled(0.25).count == 50
        assert (value + copy).count == 400
