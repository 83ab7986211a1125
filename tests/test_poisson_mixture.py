"""PoissonMixture: log-likelihoods against scipy, the entropy-sum theorem with its data term at every
M-step, the M-step, sample weights, chunking, threads, precision, recovery of known parameters, the
estimator contract and bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import poisson
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

import entrosum

from conftest import match_components, poisson_mixture_data

WEIGHTS = np.array([0.5, 0.3, 0.2])
RATES = np.array([[1.0, 6.0, 12.0, 2.0, 20.0],
                  [9.0, 0.5, 3.0, 15.0, 4.0],
                  [20.0, 12.0, 1.5, 5.0, 0.8]])


@pytest.fixture(scope="module")
def X():
    return poisson_mixture_data(1500, WEIGHTS, RATES, seed=1)[0]


@pytest.fixture(scope="module")
def start(X):
    """A fixed start for fits that must follow the same path."""
    rng = np.random.default_rng(2)
    return dict(weights_init=np.array([0.4, 0.35, 0.25]), means_init=rng.uniform(1.0, 15.0, (3, X.shape[1])))


def log_joint(model, X):
    """(n, K) log π_k + Σ_d log Poisson(x_nd; λ_kd), from scipy."""
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(model.means_, dtype=np.float64)
    return np.log(np.asarray(model.weights_, np.float64)) + np.stack(
        [poisson.logpmf(X, means[k]).sum(axis=1) for k in range(means.shape[0])], axis=1)


def test_log_likelihood_and_responsibilities_against_scipy(X):
    model = entrosum.PoissonMixture(3, random_state=0).fit(X)
    joint = log_joint(model, X)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)


def test_large_counts_and_zero_rates_score_like_scipy():
    """Counts above the log-factorial table (Stirling's series there) and a rate at exactly 0."""
    rates = np.array([[3000.0, 2.0, 0.0], [2500.0, 40.0, 0.0]])
    data, _ = poisson_mixture_data(400, np.array([0.6, 0.4]), rates, seed=3)
    assert data.max() > 1024
    model = entrosum.PoissonMixture(2, tol=None, gap_tol=1e-10, max_iter=2000, random_state=0).fit(data)
    assert np.all(model.means_[:, 2] == 0.0)
    joint = log_joint(model, data)
    np.testing.assert_allclose(model.score_samples(data), logsumexp(joint, axis=1), rtol=1e-12)
    h = model.monitor_.history
    np.testing.assert_allclose(h["data_term"], -gammaln(data + 1).sum(axis=1).mean(), rtol=1e-13)
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=1e-13, atol=1e-10)


def test_entropy_sum_equals_elbo_after_every_m_step(X):
    """F(q_t, Θ_{t+1}) = S(q_t, Θ_{t+1}) after every M-step (DESIGN.md §2), with the pseudo-entropy and the data
    term −(1/N) Σ log x!, also with a feature that is always 0 (rates at exactly 0); at convergence F = S = the
    mean log-likelihood."""
    data = np.column_stack([X, np.zeros(len(X))])
    model = entrosum.PoissonMixture(3, tol=None, gap_tol=1e-10, max_iter=5000, random_state=0).fit(data)
    h = model.monitor_.history
    assert model.monitor_.stop_reason == "gap_tol" and model.n_iter_ >= 3
    assert np.all(model.means_[:, -1] == 0.0)
    for name in ("elbo", "entropy_sum", "m_step_elbo", "m_step_entropy_sum"):
        assert np.all(np.isfinite(h[name])), name
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(h["data_term"], -gammaln(data + 1).sum(axis=1).mean(), rtol=1e-13)
    assert abs(h["gap"][0]) > 1e-6  # before the first M-step they differ
    log_likelihood = model.score(data)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    # the terms, recomputed from the fitted model (its parameters differ from the last E-step's by ~gap)
    resp = model.predict_proba(data)
    rates = model.means_
    pseudo = np.where(rates > 0, rates - rates * np.log(np.where(rates > 0, rates, 1.0)), 0.0)
    assert h["prior_entropy"][-1] == pytest.approx(-np.sum(model.weights_ * np.log(model.weights_)), rel=1e-9)
    assert h["observable_entropy"][-1] == pytest.approx(np.sum(resp.mean(axis=0) * pseudo.sum(axis=1)), rel=1e-9)


def test_m_step_against_a_direct_computation(X, start):
    """One iteration from a known start: λ = Σ r x / N_k and π = N_k / N with r from scipy."""
    model = entrosum.PoissonMixture(3, max_iter=1, **start)
    with pytest.warns(entrosum.ConvergenceWarning):
        model.fit(X)
    start_model = entrosum.PoissonMixture(3)
    start_model.weights_, start_model.means_ = start["weights_init"], start["means_init"]
    joint = log_joint(start_model, X)
    resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    counts = resp.sum(axis=0)
    np.testing.assert_allclose(model.weights_, counts / len(X), rtol=1e-12)
    np.testing.assert_allclose(model.means_, resp.T @ X / counts[:, None], rtol=1e-11)
    h = model.monitor_.history
    assert h["elbo"][0] == pytest.approx(logsumexp(joint, axis=1).mean(), rel=1e-12)  # F(q_1, Θ_1) = log-likelihood
    assert abs(h["m_step_elbo"][0] - h["m_step_entropy_sum"][0]) < 1e-12


def test_integer_weights_repeat_rows_and_zero_weights_drop_them(X, start):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(tol=1e-9, max_iter=300, **start)
    weighted = entrosum.PoissonMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.PoissonMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-9)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9, atol=1e-12)
    weighted_data_term = -np.average(gammaln(X + 1).sum(axis=1), weights=counts)
    np.testing.assert_allclose(weighted.monitor_.history["data_term"], weighted_data_term, rtol=1e-12)
    kept = counts > 0
    dropped = entrosum.PoissonMixture(3, **kwargs).fit(X[kept], sample_weight=counts[kept])
    np.testing.assert_allclose(weighted.lower_bounds_, dropped.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(weighted.means_, dropped.means_, rtol=1e-12, atol=1e-14)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.PoissonMixture(3, tol=1e-8, random_state=2, chunk_size=c, n_jobs=j).fit(X)
            for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    reference = fits[1]
    for other in fits:
        assert other.n_iter_ == reference.n_iter_
        np.testing.assert_allclose(other.lower_bounds_, reference.lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.weights_, reference.weights_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, reference.means_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)  # same blocks, any thread count


def test_float32_agrees_with_float64(X, start):
    kwargs = dict(tol=1e-8, max_iter=300, **start)
    double = entrosum.PoissonMixture(3, **kwargs).fit(X)
    single = entrosum.PoissonMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and single.weights_.dtype == np.float32
    assert double.means_.dtype == np.float64
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-5)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(single.score_samples(X.astype(np.float32)), double.score_samples(X), rtol=1e-5)


def test_recovers_the_parameters_of_a_known_mixture():
    n = 6000
    data, labels = poisson_mixture_data(n, WEIGHTS, RATES, seed=5)
    model = entrosum.PoissonMixture(3, tol=1e-8, max_iter=1000, n_init=3, random_state=0).fit(data)
    order = match_components(model.means_, RATES)
    weight_se = np.sqrt(WEIGHTS * (1 - WEIGHTS) / n)
    np.testing.assert_array_less(np.abs(model.weights_[order] - WEIGHTS), 4 * weight_se)
    rate_se = np.sqrt(RATES / (n * WEIGHTS[:, None]))
    np.testing.assert_array_less(np.abs(model.means_[order] - RATES), 4 * rate_se)
    assert adjusted_rand_score(labels, model.predict(data)) >= 0.95  # the recovery criterion


def test_fit_predict_equals_fit_then_predict(X):
    model = entrosum.PoissonMixture(3, random_state=0)
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.predict(X))
    assert set(labels) == {0, 1, 2}
    assert model.monitor_.setup_time > 0  # the initialising passes (k-means, first M-step) are timed


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_is_reproducible_and_never_lowers_the_elbo(X, init_params):
    a = entrosum.PoissonMixture(3, init_params=init_params, random_state=4, tol=1e-6, max_iter=5000).fit(X)
    b = entrosum.PoissonMixture(3, init_params=init_params, random_state=4, tol=1e-6, max_iter=5000).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)
    assert np.all(np.diff(a.lower_bounds_) > -1e-12)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_kmeans_inits_find_the_clusters(X, init_params):
    """(Random responsibilities start all rates near the data mean; EM from there can end in a local optimum.)"""
    best = entrosum.PoissonMixture(3, n_init=5, tol=1e-8, max_iter=1000, random_state=0).fit(X)
    for seed in range(3):
        model = entrosum.PoissonMixture(3, init_params=init_params, random_state=seed, tol=1e-8).fit(X)
        assert model.score(X) == pytest.approx(best.score(X), abs=1e-6)


def test_initial_rates_from_single_rows_stay_inside_the_domain(X):
    """One-hot on one row gives the M-step of that row plus one pseudo-row at the data mean: (x_n + x̄) / 2, so
    a rate is 0 only where every row is 0 (a rate of 0 is a boundary EM never leaves)."""
    data = np.column_stack([X, np.zeros(len(X))])
    chosen = [3, 100, 700]
    labels = np.full(len(data), -1, dtype=np.intc)
    labels[chosen] = [0, 1, 2]
    params = entrosum._core.poisson_mixture_init_from_labels(data, np.empty(0), labels, 3,
                                                             entrosum._core.PoissonSettings())
    np.testing.assert_allclose(params["means"], (data[chosen] + data.mean(axis=0)) / 2, rtol=1e-12)
    # π_k = N_k / Σ_j N_j, N_k = 1 + 1 (the row and the pseudo-row): weights that sum to 1 even where only some rows
    # are labelled (issue 13: N_k / N over every row gave 2 / (n + 3) each here, not a distribution)
    np.testing.assert_allclose(params["weights"], np.full(3, 1 / 3), rtol=1e-12)
    assert np.all(params["means"][:, :-1] > 0) and np.all(params["means"][:, -1] == 0)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(data))
    weighted = entrosum._core.poisson_mixture_init_from_labels(data, weights, labels, 3,
                                                               entrosum._core.PoissonSettings())
    mean_weight = weights.mean()
    expected = (weights[chosen, None] * data[chosen] + mean_weight * np.average(data, axis=0, weights=weights)) / (
        weights[chosen, None] + mean_weight)
    np.testing.assert_allclose(weighted["means"], expected, rtol=1e-12)


def test_n_init_keeps_the_best(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        several = entrosum.PoissonMixture(3, init_params="random", n_init=4, random_state=5, max_iter=3).fit(X)
        rng = np.random.default_rng(5)
        bounds = [entrosum.PoissonMixture(3, init_params="random", max_iter=3, random_state=rng).fit(X).lower_bound_
                  for _ in range(4)]  # the same four starts, one at a time
    assert len(set(bounds)) == 4
    assert several.lower_bound_ == pytest.approx(max(bounds), rel=1e-12)


def test_warm_start_continues(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        warm = entrosum.PoissonMixture(3, warm_start=True, max_iter=3, tol=1e-12, init_params="random",
                                       random_state=0)
        warm.fit(X)
        first = warm.lower_bounds_.copy()
        warm.fit(X)
        straight = entrosum.PoissonMixture(3, max_iter=6, tol=1e-12, init_params="random", random_state=0).fit(X)
    np.testing.assert_allclose(np.concatenate([first, warm.lower_bounds_]), straight.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(warm.means_, straight.means_, rtol=1e-12)


def test_bic_aic_and_sample(X):
    model = entrosum.PoissonMixture(3, random_state=0).fit(X)
    log_likelihood = logsumexp(log_joint(model, X), axis=1).sum()
    n_parameters = 3 * X.shape[1] + 3 - 1
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    draws, labels = model.sample(30_000)
    assert draws.shape == (30_000, X.shape[1]) and labels.shape == (30_000,)
    np.testing.assert_array_equal(draws, np.floor(draws))
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 30_000, model.weights_, atol=0.015)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], rtol=0.05, atol=0.05)


def test_clone_and_pickle(X):
    model = entrosum.PoissonMixture(3, random_state=1).fit(X)
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "means_")
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("bad, match", [
    (dict(n_components=10_000), "n_components = 10000, n_samples = 1500"),
    (dict(init_params="best"), "init_params must be one of"),
    (dict(means_init=np.ones((3, 4))), r"'means' should have the shape of \(3, 5\)"),
    (dict(means_init=np.full((3, 5), -0.5)), "means_init must hold non-negative rates for PoissonMixture"),
    (dict(means_init=np.full((3, 5), np.nan)), "means_init contains NaN or infinity"),
    (dict(weights_init=[0.2, 0.2]), r"'weights' should have the shape of \(3,\)"),
])
def test_bad_settings(X, bad, match):
    with pytest.raises(ValueError, match=match):
        entrosum.PoissonMixture(**{"n_components": 3, **bad}).fit(X)


@pytest.mark.parametrize("value", [-1.0, 2.5, 1e-9])
def test_non_count_data_is_named_with_its_row(X, value):
    bad = X.copy()
    bad[11, 2] = value
    with pytest.raises(ValueError, match=rf"X must be counts \(non-negative integers\) for PoissonMixture; "
                                         rf"row 11 holds {value:g}"):
        entrosum.PoissonMixture(3).fit(bad)
    with pytest.raises(ValueError, match="counts.*row 11"):
        entrosum.PoissonMixture(3).fit(bad.astype(np.float32))


def test_bad_data_and_weights(X):
    for value in (np.nan, -np.inf):
        bad = X.copy()
        bad[5, 1] = value
        with pytest.raises(ValueError, match=r"NaN or infinity \(first in row 5\)"):
            entrosum.PoissonMixture(3).fit(bad)
    with pytest.raises(ValueError, match="must be 2-D"):
        entrosum.PoissonMixture(3).fit(X[None])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        entrosum.PoissonMixture(3).fit(X, sample_weight=np.r_[-1.0, np.ones(len(X) - 1)])


def test_failed_fit_leaves_the_model_unchanged(X):
    model = entrosum.PoissonMixture(3, random_state=0).fit(X)
    means, weights, monitor = model.means_.copy(), model.weights_.copy(), model.monitor_
    bad = X.copy()
    bad[0, 0] = -2.0
    with pytest.raises(ValueError, match="counts"):
        model.fit(bad)
    with pytest.raises(ValueError, match="means_init"):
        model.set_params(means_init=-np.ones((3, 5))).fit(X)
    np.testing.assert_array_equal(model.means_, means)
    np.testing.assert_array_equal(model.weights_, weights)
    assert model.monitor_ is monitor
