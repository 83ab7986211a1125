"""Binary sparse coding: the free energy against enumeration in numpy, truncated against exact posteriors, the
entropy sum after every M-step, the bars, threads and chunks, float32, sample weights and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

import entrosum
from entrosum import _core

# short fits on purpose: most tests stop at max_iter
pytestmark = pytest.mark.filterwarnings("ignore:.*did not converge")


def all_states(H: int) -> np.ndarray:
    """The 2^H states in the order of their binary value (bit h = unit h)."""
    return ((np.arange(2 ** H)[:, None] >> np.arange(H)) & 1).astype(np.float64)


def log_joints(X, W, b, noise, prior):
    """(n, 2^H) log p(x_n, s) computed state by state."""
    S = all_states(W.shape[1])
    means = S @ W.T + b                                      # (2^H, D)
    squared = ((X[:, None, :] - means[None]) ** 2).sum(-1)  # (n, 2^H)
    D = X.shape[1]
    log_prior = S @ np.log(prior) + (1 - S) @ np.log1p(-prior)
    return -0.5 * D * np.log(2 * np.pi * noise) - 0.5 * squared / noise + log_prior


def random_params(rng, D, H):
    return {"components": rng.standard_normal((D, H)), "offset": rng.standard_normal(D),
            "noise_variance": float(rng.uniform(0.3, 2.0)), "prior": rng.uniform(0.1, 0.6, H)}


def posterior_of(X, params, posterior="exact", n_states=1, rounds=1, with_states=True, **kwargs):
    return _core.binary_sparse_coding_posterior(X, params, posterior, n_states, 3, [], rounds, with_states, **kwargs)


def bars(n_samples, seed, noise_sd=0.3, p=0.2, side=5):
    """side × side images, 2·side bars (horizontal and vertical) each on with probability p, linear superposition."""
    rng = np.random.default_rng(seed)
    patterns = []
    for i in range(side):
        horizontal = np.zeros((side, side))
        horizontal[i] = 1
        patterns += [horizontal.ravel(), horizontal.T.ravel()]
    W = np.array(patterns)
    Z = (rng.random((n_samples, len(W))) < p).astype(float)
    return Z @ W + noise_sd * rng.standard_normal((n_samples, side * side)), W


def bars_found(components, patterns):
    unit = components / np.linalg.norm(components, axis=1, keepdims=True)
    cosines = np.abs(unit @ (patterns / np.linalg.norm(patterns, axis=1, keepdims=True)).T)
    return bool((cosines.max(axis=0) > 0.95).all())


# ---- the free energy against enumeration -----------------------------------------------------------------------

@pytest.mark.parametrize("H", [1, 4, 10])
def test_exact_free_energy_is_the_log_likelihood_by_enumeration(H):
    rng = np.random.default_rng(H)
    X = rng.standard_normal((60, 7))
    params = random_params(rng, 7, H)
    L = log_joints(X, params["components"], params["offset"], params["noise_variance"], params["prior"])
    expected = logsumexp(L, axis=1)
    out = posterior_of(X, params)
    assert out["free_energy"] == pytest.approx(expected.mean(), abs=1e-10, rel=0)
    # the ELBO from q's statistics (E log p + H[q]) is the same number
    assert out["terms"]["elbo"] == pytest.approx(expected.mean(), abs=1e-10, rel=0)
    q = np.exp(L - expected[:, None])
    np.testing.assert_allclose(out["probabilities"], q, atol=1e-12)
    np.testing.assert_allclose(out["means"], q @ all_states(H), atol=1e-12)
    assert out["terms"]["posterior_entropy"] == pytest.approx(-(q * np.log(q)).sum(1).mean(), abs=1e-10)
    np.testing.assert_array_equal(out["states"][5], all_states(H))


def test_truncated_with_every_state_is_exact_and_smaller_sets_are_below():
    rng = np.random.default_rng(1)
    H = 6
    X = rng.standard_normal((80, 5))
    params = random_params(rng, 5, H)
    exact = posterior_of(X, params)["free_energy"]
    full = posterior_of(X, params, "truncated", 2 ** H)
    assert full["free_energy"] == pytest.approx(exact, abs=1e-10, rel=0)
    previous = -np.inf
    for rounds in (1, 2, 4, 8):  # more rounds of proposals: larger, never above the exact value
        value = posterior_of(X, params, "truncated", 4, rounds)["free_energy"]
        assert previous - 1e-12 <= value < exact
        previous = value
    states, probabilities = (posterior_of(X, params, "truncated", 4, 3)[key] for key in ("states", "probabilities"))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-12)
    assert all(len({tuple(s) for s in row}) == 4 for row in states)  # distinct kept states


def test_fits_with_exact_and_full_truncated_posteriors_agree_and_match_enumeration():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((150, 6)) + (rng.random((150, 3)) < 0.3) @ rng.standard_normal((3, 6))
    kwargs = dict(tol=None, max_iter=8, random_state=0)
    exact = entrosum.BinarySparseCoding(3, **kwargs).fit(X)
    full = entrosum.BinarySparseCoding(3, posterior="truncated", n_states=8, **kwargs).fit(X)
    np.testing.assert_allclose(full.monitor_.history["elbo"], exact.monitor_.history["elbo"], atol=1e-10, rtol=0)
    L = log_joints(X, exact.components_.T, exact.offset_, exact.noise_variance_, exact.prior_)
    assert exact.score(X) == pytest.approx(logsumexp(L, axis=1).mean(), abs=1e-10)
    # EM: the log-likelihood never decreases
    assert np.all(np.diff(exact.monitor_.history["elbo"]) > -1e-10)


@pytest.mark.parametrize("posterior", ["exact", "truncated"])
def test_free_energy_equals_entropy_sum_after_every_m_step(posterior):
    X, _ = bars(300, 0)
    model = entrosum.BinarySparseCoding(10, posterior=posterior, n_states=16, tol=None, max_iter=15,
                                        random_state=0).fit(X)
    h = model.monitor_.history
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], atol=1e-10, rtol=0)
    # and the monitor's S is H̄_q − Σ H_B(π) − (D/2) log 2πeσ²
    assert np.all(np.diff(h["elbo"]) > -1e-10)  # the truncated free energy never decreases either
    assert np.all(h["m_step_elbo"] >= h["elbo"] - 1e-10)


def test_shared_prior():
    X, _ = bars(200, 1)
    model = entrosum.BinarySparseCoding(10, shared_prior=True, tol=None, max_iter=5, random_state=0).fit(X)
    assert np.ptp(model.prior_) == 0
    h = model.monitor_.history
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], atol=1e-10, rtol=0)


def test_m_step_matches_numpy_least_squares():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((100, 5))
    params = random_params(rng, 5, 3)
    L = log_joints(X, params["components"], params["offset"], params["noise_variance"], params["prior"])
    q = np.exp(L - logsumexp(L, axis=1, keepdims=True))
    S = np.hstack([all_states(3), np.ones((8, 1))])
    second = S.T @ np.diag(q.sum(0)) @ S
    cross = X.T @ (q @ S)
    out = _core.binary_sparse_coding_m_step(params, cross, second, 100.0, float((X ** 2).sum()), False)
    extended = np.linalg.solve(second, cross.T).T
    np.testing.assert_allclose(out["components"], extended[:, :3], atol=1e-10)
    np.testing.assert_allclose(out["offset"], extended[:, 3], atol=1e-10)
    residual = sum(q[:, k] @ ((X - S[k] @ extended.T) ** 2).sum(1) for k in range(8))
    assert out["noise_variance"] == pytest.approx(residual / 500, rel=1e-10)
    np.testing.assert_allclose(out["prior"], (q @ all_states(3)).mean(0), atol=1e-12)


def test_m_step_of_units_that_always_switch_together_is_the_minimum_norm_solution():
    # q puts no mass on the states where units 0 and 1 differ: Σ E[z̃ z̃ᵀ] is singular, and every solution of the
    # normal equations maximises the expected log-likelihood; the M-step takes numpy's minimum-norm one
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 4))
    params = random_params(rng, 4, 3)
    S = np.hstack([all_states(3), np.ones((8, 1))])
    together = S[:, 0] == S[:, 1]
    q = rng.random((60, 8)) * together
    q /= q.sum(1, keepdims=True)
    second = S.T @ np.diag(q.sum(0)) @ S
    cross = X.T @ (q @ S)
    assert np.linalg.matrix_rank(second) == 3
    out = _core.binary_sparse_coding_m_step(params, cross, second, 60.0, float((X ** 2).sum()), False)
    extended = np.linalg.lstsq(second, cross.T, rcond=None)[0].T
    np.testing.assert_allclose(out["components"], extended[:, :3], atol=1e-10)
    np.testing.assert_allclose(out["components"][:, 0], out["components"][:, 1], atol=1e-10)
    np.testing.assert_allclose(out["offset"], extended[:, 3], atol=1e-10)
    residual = sum(q[:, k] @ ((X - S[k] @ extended.T) ** 2).sum(1) for k in range(8))
    assert out["noise_variance"] == pytest.approx(residual / 240, rel=1e-10)


def test_default_fits_of_tiny_data_do_not_fail_on_units_that_switch_together():
    # scikit-learn's estimator checks fit the default model (8 units) to 12 points in 2-D with random seeds;
    # 9 seeds in 300 ended in a singular second moment before the M-step took the minimum-norm solution
    X = np.array([[a, b] for a in (1.0, 2.0, 3.0) for b in (1.0, 2.0, 3.0, 4.0)])
    for seed in (6, 20, 38, 58, 61, *range(10)):
        model = entrosum.BinarySparseCoding(random_state=seed).fit(X)
        assert np.all(np.isfinite(model.components_)) and model.noise_variance_ > 0


# ---- the bars -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("posterior", ["exact", "truncated"])
def test_bars_are_recovered(posterior):
    found = 0
    for seed in range(5):
        X, patterns = bars(2000, 10 + seed)
        model = entrosum.BinarySparseCoding(10, posterior=posterior, n_states=32, tol=1e-5, max_iter=150, n_init=3,
                                            random_state=seed).fit(X)
        found += bars_found(model.components_, patterns)
    assert found >= 4


# ---- threads, chunks, precision, weights ---------------------------------------------------------------------

@pytest.mark.parametrize("posterior", ["exact", "truncated"])
def test_threads_and_chunks(posterior):
    X, _ = bars(400, 3)

    def fit(**kwargs):
        return entrosum.BinarySparseCoding(10, posterior=posterior, n_states=16, tol=None, max_iter=6,
                                           random_state=1, **kwargs).fit(X)

    one, two = fit(n_jobs=1, chunk_size=50), fit(n_jobs=2, chunk_size=50)
    np.testing.assert_array_equal(one.monitor_.history["elbo"], two.monitor_.history["elbo"])
    np.testing.assert_array_equal(one.components_, two.components_)
    other = fit(chunk_size=33)  # other chunks: the same states, other rounding in the sums
    np.testing.assert_allclose(other.monitor_.history["elbo"], one.monitor_.history["elbo"], rtol=1e-11)
    np.testing.assert_allclose(other.components_, one.components_, atol=1e-9)


@pytest.mark.parametrize("posterior", ["exact", "truncated"])
def test_float32_agrees_with_float64(posterior):
    X, _ = bars(300, 4)
    kwargs = dict(posterior=posterior, n_states=16, tol=None, max_iter=5, random_state=2)
    double = entrosum.BinarySparseCoding(10, **kwargs).fit(X)
    single = entrosum.BinarySparseCoding(10, **kwargs).fit(X.astype(np.float32))
    assert single.components_.dtype == np.float32
    np.testing.assert_allclose(single.monitor_.history["elbo"], double.monitor_.history["elbo"], rtol=1e-5)
    np.testing.assert_allclose(single.components_, double.components_, atol=1e-3)
    assert single.transform(X.astype(np.float32)).dtype == np.float32


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((50, 4))
    counts = rng.integers(0, 3, 50)
    counts[0] = 1
    kwargs = dict(tol=None, max_iter=5, random_state=0)
    weighted = entrosum.BinarySparseCoding(3, **kwargs)
    weighted._initial_params = lambda *a: start  # the same start for both fits
    start = {"components": rng.standard_normal((4, 3)), "offset": np.zeros(4), "noise_variance": 1.0,
             "prior": np.full(3, 0.3)}
    weighted.fit(X, sample_weight=counts)
    repeated = entrosum.BinarySparseCoding(3, **kwargs)
    repeated._initial_params = lambda *a: start
    repeated.fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.monitor_.history["elbo"], repeated.monitor_.history["elbo"], atol=1e-10)
    np.testing.assert_allclose(weighted.components_, repeated.components_, atol=1e-9)


def test_sample_draws_from_the_model():
    X, _ = bars(500, 6)
    model = entrosum.BinarySparseCoding(10, tol=None, max_iter=3, random_state=0).fit(X)
    draws = model.sample(20000, random_state=1)
    expected_mean = model.prior_ @ model.components_ + model.offset_
    np.testing.assert_allclose(draws.mean(0), expected_mean, atol=0.05)


# ---- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(n_components=17), "at most 16"),
    (dict(n_components=3, posterior="truncated", n_states=0), "n_states"),
    (dict(n_components=3, posterior="truncated", n_states=9), "at most 2\\^n_components = 8"),
    (dict(n_components=3, posterior="sampled"), "posterior"),
    (dict(n_components=65, posterior="truncated"), "at most 64"),
    (dict(n_components=3, proposals=(1, 2)), "proposals"),
])
def test_bad_settings_are_clear_errors(kwargs, message):
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match=message):
        entrosum.BinarySparseCoding(**kwargs).fit(X)


def test_bad_data_and_failed_fits_leave_the_model():
    X = np.random.default_rng(0).standard_normal((30, 3))
    model = entrosum.BinarySparseCoding(2, tol=None, max_iter=2, random_state=0).fit(X)
    before = model.components_.copy()
    with pytest.raises(ValueError):
        model.fit(np.full((30, 3), np.nan))
    with pytest.raises(ValueError, match="sample_weight|weight"):
        model.fit(X, sample_weight=-np.ones(30))
    np.testing.assert_array_equal(model.components_, before)
    with pytest.raises(ValueError):
        model.transform(X[:, :2])
    with pytest.raises(ValueError, match="exact|at most"):
        _core.binary_sparse_coding_posterior(X, random_params(np.random.default_rng(1), 3, 17), "exact", 1, 0, [],
                                             1, False)


def test_enumeration_reference_is_itself_right():
    """The numpy reference against a literal double loop over states (guards the test's own algebra)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3, 2))
    p = random_params(rng, 2, 2)
    L = log_joints(X, p["components"], p["offset"], p["noise_variance"], p["prior"])
    for n, bits in itertools.product(range(3), itertools.product([0, 1], repeat=2)):
        s = np.array(bits[::-1], float)  # bit h = unit h: state index = Σ s_h 2^h
        k = int(s @ (2 ** np.arange(2)))
        r = X[n] - p["components"] @ s - p["offset"]
        value = (-np.log(2 * np.pi * p["noise_variance"]) - r @ r / (2 * p["noise_variance"])
                 + np.sum(s * np.log(p["prior"]) + (1 - s) * np.log1p(-p["prior"])))
        assert L[n, k] == pytest.approx(value, abs=1e-12)


# ---- saved models -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_class", [entrosum.BinarySparseCoding, entrosum.SigmoidBeliefNet])
@pytest.mark.parametrize("posterior", ["exact", "truncated"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saved_models_round_trip_and_the_cpp_reader_scores_them(model_class, posterior, dtype, tmp_path):
    X, _ = bars(200, 8)
    if model_class is entrosum.SigmoidBeliefNet:
        X = (X > 0.5).astype(float)
    X = X.astype(dtype)
    model = model_class(6, posterior=posterior, n_states=8, proposals=(4, 2, 2), tol=None, max_iter=3,
                        random_state=0).fit(X)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = entrosum.load(path)
    assert type(loaded) is model_class and loaded.get_params()["posterior"] == posterior
    for name in ("components_", "offset_", "prior_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
        assert getattr(loaded, name).dtype == dtype
    assert loaded.score(X) == model.score(X)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    saved = _core.SavedModel(str(path))
    assert saved.model == model_class.__name__
    assert saved.score(X) == model.score(X)  # the same inference (seed, rounds, proposals) in C++
    parameters = saved.parameters()
    np.testing.assert_array_equal(parameters["components"], model.components_.T.astype(np.float64))
    np.testing.assert_array_equal(parameters["prior"], model.prior_.astype(np.float64))
    assert parameters["posterior"] == posterior
    with pytest.raises(ValueError, match="no log-likelihood per sample"):
        saved.score_samples(X)

