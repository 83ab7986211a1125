"""BernoulliMixture: log-likelihoods against scipy, the entropy-sum theorem at every M-step, the M-step
and its pseudo-count, sample weights, chunking, threads, precision, recovery of known parameters, the
estimator contract and bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import bernoulli
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

import entrosum

from conftest import bernoulli_mixture_data, match_components

WEIGHTS = np.array([0.5, 0.3, 0.2])


def true_probabilities(n_features: int = 20, seed: int = 11) -> np.ndarray:
    """(3, n_features) well-separated success probabilities: each component favours its own features."""
    rng = np.random.default_rng(seed)
    probabilities = rng.uniform(0.05, 0.3, (3, n_features))
    for k in range(3):
        probabilities[k, k::3] = rng.uniform(0.7, 0.95, probabilities[k, k::3].shape)
    return probabilities


@pytest.fixture(scope="module")
def X():
    return bernoulli_mixture_data(1500, WEIGHTS, true_probabilities(), seed=1)[0]


@pytest.fixture(scope="module")
def start(X):
    """A fixed start for fits that must follow the same path."""
    rng = np.random.default_rng(2)
    return dict(weights_init=np.array([0.4, 0.35, 0.25]), means_init=rng.uniform(0.2, 0.8, (3, X.shape[1])))


def log_joint(model, X):
    """(n, K) log π_k + Σ_d log Bernoulli(x_nd; μ_kd), from scipy."""
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(model.means_, dtype=np.float64)
    return np.log(np.asarray(model.weights_, np.float64)) + np.stack(
        [bernoulli.logpmf(X, means[k]).sum(axis=1) for k in range(means.shape[0])], axis=1)


def test_log_likelihood_and_responsibilities_against_scipy(X):
    model = entrosum.BernoulliMixture(3, random_state=0).fit(X)
    joint = log_joint(model, X)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)
    assert model.score(X) == pytest.approx(logsumexp(joint, axis=1).mean(), rel=1e-12)


def test_parameters_at_exactly_zero_and_one_score_like_scipy(X):
    """μ = 0 or 1 makes an outcome impossible; the floored logs give no NaN and the same answer as scipy."""
    model = entrosum.BernoulliMixture(3, random_state=0).fit(X)
    model.means_[0, :2] = [0.0, 1.0]
    joint = log_joint(model, X)  # -inf where component 0 cannot have made the row
    assert np.isneginf(joint[:, 0]).any()
    scores = model.score_samples(X)
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)


def test_entropy_sum_equals_elbo_after_every_m_step(X):
    """alpha=0: F(q_t, Θ_{t+1}) = S(q_t, Θ_{t+1}) after every M-step (DESIGN.md §2), also with a feature that is
    always 0 and one that is always 1 (means at exactly 0 and 1); at convergence F = S = mean log-likelihood."""
    data = np.column_stack([X, np.zeros(len(X)), np.ones(len(X))])
    model = entrosum.BernoulliMixture(3, tol=None, gap_tol=1e-10, max_iter=5000, random_state=0).fit(data)
    h = model.monitor_.history
    assert model.monitor_.stop_reason == "gap_tol" and model.n_iter_ >= 3
    assert np.all(model.means_[:, -2] == 0.0) and np.all(model.means_[:, -1] >= 1.0 - 1e-14)
    for name in ("elbo", "entropy_sum", "m_step_elbo", "m_step_entropy_sum"):
        assert np.all(np.isfinite(h[name])), name
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert abs(h["gap"][0]) > 1e-4  # before the first M-step they differ
    assert np.all(h["data_term"] == 0.0)  # a constant base measure
    log_likelihood = model.score(data)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    # the terms, recomputed from the fitted model (its parameters differ from the last E-step's by ~gap)
    resp = model.predict_proba(data)
    posterior = -np.sum(resp * np.log(np.where(resp > 0, resp, 1.0)), axis=1).mean()
    prior = -np.sum(model.weights_ * np.log(model.weights_))
    observable = np.sum(resp.mean(axis=0) * bernoulli.entropy(model.means_).sum(axis=1))
    assert h["posterior_entropy"][-1] == pytest.approx(posterior, rel=1e-7)
    assert h["prior_entropy"][-1] == pytest.approx(prior, rel=1e-9)
    assert h["observable_entropy"][-1] == pytest.approx(observable, rel=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 2.5])
def test_m_step_against_a_direct_computation(X, start, alpha):
    """One iteration from a known start: μ = (Σ r x + α) / (N_k + 2α), π = N_k / N with r from scipy. α > 0
    is a regularised M-step, so the monitor shows a gap F − S after it: with m = Σ r x / N_k, the part of
    F − S that does not cancel is (1/N) Σ_kd N_k [m log μ + (1 − m) log(1 − μ) + H_B(μ)] > 0."""
    model = entrosum.BernoulliMixture(3, max_iter=1, alpha=alpha, **start)
    with pytest.warns(entrosum.ConvergenceWarning):
        model.fit(X)
    start_model = entrosum.BernoulliMixture(3)
    start_model.weights_, start_model.means_ = start["weights_init"], start["means_init"]
    joint = log_joint(start_model, X)
    resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    counts = resp.sum(axis=0)
    np.testing.assert_allclose(model.weights_, counts / len(X), rtol=1e-12)
    np.testing.assert_allclose(model.means_, (resp.T @ X + alpha) / (counts[:, None] + 2 * alpha), rtol=1e-11)
    h = model.monitor_.history
    m_step_gap = h["m_step_elbo"][0] - h["m_step_entropy_sum"][0]
    ones = resp.T @ X
    mu = np.asarray(model.means_)
    expected = np.sum(ones * np.log(mu) + (counts[:, None] - ones) * np.log1p(-mu)
                      + counts[:, None] * bernoulli.entropy(mu)) / len(X)
    if alpha == 0:
        assert abs(m_step_gap) < 1e-12 and abs(expected) < 1e-12
    else:
        assert m_step_gap == pytest.approx(expected, rel=1e-9)
        assert m_step_gap > 1e-3  # visible


def test_integer_weights_repeat_rows_and_zero_weights_drop_them(X, start):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(tol=1e-9, max_iter=300, **start)
    weighted = entrosum.BernoulliMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.BernoulliMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-9)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9, atol=1e-12)
    kept = counts > 0
    dropped = entrosum.BernoulliMixture(3, **kwargs).fit(X[kept], sample_weight=counts[kept])
    np.testing.assert_allclose(weighted.lower_bounds_, dropped.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(weighted.means_, dropped.means_, rtol=1e-12, atol=1e-14)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.BernoulliMixture(3, tol=1e-8, random_state=2, chunk_size=c, n_jobs=j).fit(X)
            for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    reference = fits[1]
    for other in fits:
        assert other.n_iter_ == reference.n_iter_
        np.testing.assert_allclose(other.lower_bounds_, reference.lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.weights_, reference.weights_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, reference.means_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)  # same blocks, any thread count


def test_float32_agrees_with_float64(X, start):
    # The same number of iterations in both (float64 converges in 11 here): a float32 fit's ELBO moves by
    # float32 rounding, ~1e-7 per iteration, so a small tol would make its iteration count platform-dependent.
    kwargs = dict(tol=None, max_iter=40, **start)
    with pytest.warns(entrosum.ConvergenceWarning):
        double = entrosum.BernoulliMixture(3, **kwargs).fit(X)
    with pytest.warns(entrosum.ConvergenceWarning):
        single = entrosum.BernoulliMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and single.weights_.dtype == np.float32
    assert double.means_.dtype == np.float64
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-5)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5, atol=1e-6)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(single.score_samples(X.astype(np.float32)), double.score_samples(X), rtol=1e-5)


def test_recovers_the_parameters_of_a_known_mixture():
    probabilities = true_probabilities()
    n = 8000
    data, labels = bernoulli_mixture_data(n, WEIGHTS, probabilities, seed=5)
    model = entrosum.BernoulliMixture(3, tol=1e-8, max_iter=1000, n_init=3, random_state=0).fit(data)
    order = match_components(model.means_, probabilities)
    weight_se = np.sqrt(WEIGHTS * (1 - WEIGHTS) / n)
    np.testing.assert_array_less(np.abs(model.weights_[order] - WEIGHTS), 4 * weight_se)
    mean_se = np.sqrt(probabilities * (1 - probabilities) / (n * WEIGHTS[:, None]))
    np.testing.assert_array_less(np.abs(model.means_[order] - probabilities), 4 * mean_se)
    assert adjusted_rand_score(labels, model.predict(data)) >= 0.95  # the recovery criterion


def test_fit_predict_equals_fit_then_predict(X):
    model = entrosum.BernoulliMixture(3, random_state=0)
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.predict(X))
    assert set(labels) == {0, 1, 2}
    assert model.monitor_.setup_time > 0  # the initialising passes (k-means, first M-step) are timed


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_is_reproducible_and_finds_the_clusters(X, init_params):
    a = entrosum.BernoulliMixture(3, init_params=init_params, random_state=4, tol=1e-6, max_iter=1000).fit(X)
    b = entrosum.BernoulliMixture(3, init_params=init_params, random_state=4, tol=1e-6, max_iter=1000).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)
    reference = entrosum.BernoulliMixture(3, n_init=5, tol=1e-6, max_iter=1000, random_state=0).fit(X)
    assert a.score(X) == pytest.approx(reference.score(X), abs=1e-3)


def test_initial_probabilities_from_single_rows_stay_inside_the_domain(X):
    """One-hot on one row gives (x_n + x̄) / 2: never 0 or 1 unless every row agrees (a boundary EM never leaves)."""
    labels = np.full(len(X), -1, dtype=np.intc)
    labels[[3, 100, 700]] = [0, 1, 2]
    params = entrosum._core.bernoulli_mixture_init_from_labels(X, np.empty(0), labels, 3,
                                                               entrosum._core.BernoulliSettings())
    np.testing.assert_allclose(params["means"], (X[[3, 100, 700]] + X.mean(axis=0)) / 2, rtol=1e-12)
    assert np.all((params["means"] > 0) & (params["means"] < 1))


def test_n_init_keeps_the_best(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        several = entrosum.BernoulliMixture(3, init_params="random", n_init=4, random_state=5, max_iter=3).fit(X)
        rng = np.random.default_rng(5)
        bounds = [entrosum.BernoulliMixture(3, init_params="random", max_iter=3, random_state=rng).fit(X).lower_bound_
                  for _ in range(4)]  # the same four starts, one at a time
    assert len(set(bounds)) == 4
    assert several.lower_bound_ == pytest.approx(max(bounds), rel=1e-12)


def test_warm_start_continues(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        warm = entrosum.BernoulliMixture(3, warm_start=True, max_iter=3, tol=1e-12, random_state=0)
        warm.fit(X)
        first = warm.lower_bounds_.copy()
        warm.fit(X)
        straight = entrosum.BernoulliMixture(3, max_iter=6, tol=1e-12, random_state=0).fit(X)
    np.testing.assert_allclose(np.concatenate([first, warm.lower_bounds_]), straight.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(warm.means_, straight.means_, rtol=1e-12)


def test_bic_aic_and_sample(X):
    model = entrosum.BernoulliMixture(3, random_state=0).fit(X)
    log_likelihood = logsumexp(log_joint(model, X), axis=1).sum()
    n_parameters = 3 * X.shape[1] + 3 - 1
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    draws, labels = model.sample(30_000)
    assert draws.shape == (30_000, X.shape[1]) and labels.shape == (30_000,)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 30_000, model.weights_, atol=0.015)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], atol=0.04)


def test_clone_and_pickle(X):
    model = entrosum.BernoulliMixture(3, alpha=0.5, random_state=1).fit(X)
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "means_")
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert repr(entrosum.BernoulliMixture(3, alpha=0.5)) == "BernoulliMixture(alpha=0.5, n_components=3)"


@pytest.mark.parametrize("bad, match", [
    (dict(n_components=10_000), "n_components = 10000, n_samples = 1500"),
    (dict(alpha=-1.0), "alpha must be a non-negative"),
    (dict(init_params="best"), "init_params must be one of"),
    (dict(means_init=np.full((2, 20), 0.5)), r"'means' should have the shape of \(3, 20\)"),
    (dict(means_init=np.full((3, 20), 1.5)), r"means_init must hold probabilities in \[0, 1\]"),
    (dict(means_init=np.full((3, 20), -0.1)), r"means_init must hold probabilities in \[0, 1\]"),
    (dict(weights_init=[0.5, 0.5, 0.5]), r"'weights' should be normalized, but got sum\(weights\) = 1.5"),
])
def test_bad_settings(X, bad, match):
    with pytest.raises(ValueError, match=match):
        entrosum.BernoulliMixture(**{"n_components": 3, **bad}).fit(X)


@pytest.mark.parametrize("value", [2.0, 0.5, -1.0])
def test_non_binary_data_is_named_with_its_row(X, value):
    bad = X.copy()
    bad[7, 3] = value
    bad[9, 0] = value
    with pytest.raises(ValueError, match=rf"X must be binary \(every value 0 or 1\) for BernoulliMixture; "
                                         rf"row 7 holds {value:g}"):
        entrosum.BernoulliMixture(3).fit(bad)
    model = entrosum.BernoulliMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="binary.*row 7"):
        model.predict(bad)


def test_bad_data_and_weights(X):
    for value in (np.nan, np.inf):
        bad = X.copy()
        bad[5, 1] = value
        with pytest.raises(ValueError, match=r"NaN or infinity \(first in row 5\)"):
            entrosum.BernoulliMixture(3).fit(bad)
    with pytest.raises(ValueError, match="must be 2-D"):
        entrosum.BernoulliMixture(3).fit(X[:, 0])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        entrosum.BernoulliMixture(3).fit(X, sample_weight=-np.ones(len(X)))
    model = entrosum.BernoulliMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 19 features, but BernoulliMixture is expecting 20 features"):
        model.score(X[:, 1:])


def test_failed_fit_leaves_the_model_unchanged(X):
    model = entrosum.BernoulliMixture(3, random_state=0).fit(X)
    means, weights, monitor = model.means_.copy(), model.weights_.copy(), model.monitor_
    bad = X.copy()
    bad[0, 0] = 3.0
    with pytest.raises(ValueError, match="binary"):
        model.fit(bad)
    with pytest.raises(ValueError, match="means_init"):
        model.set_params(means_init=np.full((3, 20), 2.0)).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        model.set_params(means_init=None, n_components=2000).fit(X)
    np.testing.assert_array_equal(model.means_, means)
    np.testing.assert_array_equal(model.weights_, weights)
    assert model.monitor_ is monitor
