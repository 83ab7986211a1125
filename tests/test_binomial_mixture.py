"""BinomialMixture: log-likelihoods against scipy, the pseudo-entropy against summation, the entropy-sum theorem
with its data term at every M-step, a numpy reference EM on scikit-learn's digits as a binomial(16) mixture,
recovery of a known mixture, sample weights, chunks, threads, precision, saving and bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import binom
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

import entrosum

from conftest import binomial_mixture_data

WEIGHTS = np.array([0.5, 0.3, 0.2])
PROBABILITIES = np.array([[0.1, 0.8, 0.5, 0.3, 0.9, 0.2],
                          [0.7, 0.2, 0.1, 0.9, 0.4, 0.6],
                          [0.4, 0.5, 0.9, 0.1, 0.1, 0.95]])
TRIALS = np.array([10, 25, 3, 12, 1, 40])
TINY = np.finfo(np.float64).tiny


@pytest.fixture(scope="module")
def data():
    return binomial_mixture_data(1500, WEIGHTS, PROBABILITIES, TRIALS, seed=1)


@pytest.fixture(scope="module")
def X(data):
    return data[0]


@pytest.fixture(scope="module")
def start(X):
    rng = np.random.default_rng(2)
    return dict(weights_init=np.array([0.4, 0.35, 0.25]), means_init=rng.uniform(0.2, 0.8, (3, X.shape[1])) * TRIALS)


def log_joint(weights, means, n_trials, X):
    """(n, K) log π_k + Σ_d log Binomial(x_nd; n_d, m_kd / n_d), from scipy."""
    probabilities = np.asarray(means, np.float64) / n_trials
    return np.log(np.asarray(weights, np.float64)) + np.stack(
        [binom.logpmf(X, n_trials, probabilities[k]).sum(axis=1) for k in range(len(weights))], axis=1)


def log_binomial_coefficients(X, n_trials):
    return (gammaln(n_trials + 1.0) - gammaln(X + 1.0) - gammaln(n_trials - X + 1.0)).sum(axis=1)


def test_log_likelihood_and_responsibilities_against_scipy(X):
    model = entrosum.BinomialMixture(3, n_trials=TRIALS, random_state=0).fit(X)
    np.testing.assert_array_equal(model.n_trials_, TRIALS.astype(float))
    joint = log_joint(model.weights_, model.means_, TRIALS, X)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)


def test_one_number_of_trials_for_every_column(X):
    both = [entrosum.BinomialMixture(2, n_trials=n, random_state=0).fit(X) for n in (40, np.full(X.shape[1], 40))]
    np.testing.assert_array_equal(both[0].n_trials_, np.full(X.shape[1], 40.0))
    np.testing.assert_array_equal(both[0].means_, both[1].means_)


def test_pseudo_entropy_against_summation(X):
    """One component: the monitor's observable entropy is Σ_d n_d H_B(p_d), the pseudo-entropy A − η∇A, which is
    −Σ_x p(x) [log p(x) − log C(n, x)] by summation over x = 0..n."""
    model = entrosum.BinomialMixture(1, n_trials=TRIALS, tol=1e-12).fit(X)
    probabilities = model.means_[0] / TRIALS
    np.testing.assert_allclose(probabilities, X.mean(axis=0) / TRIALS, rtol=1e-13)
    summed = 0.0
    for n, p in zip(TRIALS, probabilities):
        x = np.arange(n + 1)
        pmf = binom.pmf(x, n, p)
        log_coefficient = gammaln(n + 1.0) - gammaln(x + 1.0) - gammaln(n - x + 1.0)
        summed -= np.sum(pmf * (binom.logpmf(x, n, p) - log_coefficient))
    assert model.monitor_.history["observable_entropy"][-1] == pytest.approx(summed, rel=1e-12)
    assert model.monitor_.history["prior_entropy"][-1] == 0.0


def test_entropy_sum_equals_elbo_after_every_m_step(X):
    """F(q_t, Θ_{t+1}) = S(q_t, Θ_{t+1}) after every M-step, with the pseudo-entropy n H_B(p) and the data term
    (1/N) Σ log C(n, x), also with a column that is always 0 and one that is always n (p at exactly 0 and 1)."""
    data = np.column_stack([X, np.zeros(len(X)), np.full(len(X), 7.0)])
    n_trials = np.r_[TRIALS, 4, 7]
    model = entrosum.BinomialMixture(3, n_trials=n_trials, tol=None, gap_tol=1e-10, max_iter=5000,
                                     init_params="random", random_state=0).fit(data)
    h = model.monitor_.history
    assert model.monitor_.stop_reason == "gap_tol" and model.n_iter_ >= 3
    assert np.all(model.means_[:, -2] == 0.0)
    np.testing.assert_allclose(model.means_[:, -1], 7.0, rtol=1e-13)  # N_k carries a guard of 10 ε
    for name in ("elbo", "entropy_sum", "m_step_elbo", "m_step_entropy_sum"):
        assert np.all(np.isfinite(h[name])), name
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(h["data_term"], log_binomial_coefficients(data, n_trials).mean(), rtol=1e-13)
    assert h["data_term"][0] > 1.0
    assert abs(h["gap"][0]) > 1e-6
    log_likelihood = model.score(data)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)


def reference_em(X, n_trials, weights, means, n_iter):
    """EM for a binomial mixture in numpy: the log-likelihood before each M-step and the final parameters."""
    bounds = []
    log_coefficients = log_binomial_coefficients(X, n_trials)
    for _ in range(n_iter):
        p = means / n_trials
        joint = (np.log(weights) + X @ np.log(np.maximum(p, TINY)).T
                 + (n_trials - X) @ np.log(np.maximum(1.0 - p, TINY)).T)
        log_norm = logsumexp(joint, axis=1)
        bounds.append(np.mean(log_norm + log_coefficients))
        resp = np.exp(joint - log_norm[:, None])
        counts = resp.sum(axis=0)
        weights, means = counts / counts.sum(), resp.T @ X / counts[:, None]
    return np.array(bounds), weights, means


def test_digits_as_a_binomial_16_mixture_against_a_numpy_reference_em():
    """scikit-learn's 8×8 digits, each pixel a count out of 16, fitted from one start by both."""
    X = load_digits().data
    assert X.max() == 16
    rng = np.random.default_rng(0)
    weights = np.full(10, 0.1)
    means = X[rng.choice(len(X), 10, replace=False)] * 0.5 + X.mean(axis=0) * 0.5  # inside (0, 16) where x varies
    n_iter = 25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        model = entrosum.BinomialMixture(10, n_trials=16, tol=None, max_iter=n_iter, weights_init=weights,
                                         means_init=means).fit(X)
    bounds, ref_weights, ref_means = reference_em(X, np.full(64, 16.0), weights, means, n_iter)
    np.testing.assert_allclose(model.lower_bounds_, bounds, rtol=1e-10)
    np.testing.assert_allclose(model.weights_, ref_weights, rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.means_, ref_means, rtol=0, atol=1e-8)
    h = model.monitor_.history
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert np.all(np.diff(model.lower_bounds_) > -1e-12)


def test_recovers_a_well_separated_mixture():
    data, labels = binomial_mixture_data(3000, WEIGHTS, PROBABILITIES, TRIALS, seed=5)
    model = entrosum.BinomialMixture(3, n_trials=TRIALS, tol=1e-8, n_init=2, random_state=0).fit(data)
    assert adjusted_rand_score(labels, model.predict(data)) >= 0.95


def test_integer_weights_repeat_rows(X, start):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(n_trials=TRIALS, tol=1e-9, max_iter=300, **start)
    weighted = entrosum.BinomialMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.BinomialMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.monitor_.history["data_term"],
                               np.average(log_binomial_coefficients(X, TRIALS), weights=counts), rtol=1e-12)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.BinomialMixture(3, n_trials=TRIALS, tol=1e-8, random_state=2, chunk_size=c, n_jobs=j).fit(X)
            for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    for other in fits:
        assert other.n_iter_ == fits[1].n_iter_
        np.testing.assert_allclose(other.lower_bounds_, fits[1].lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, fits[1].means_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)


def test_float32_agrees_with_float64(X, start):
    kwargs = dict(n_trials=TRIALS, tol=1e-8, max_iter=300, **start)
    double = entrosum.BinomialMixture(3, **kwargs).fit(X)
    single = entrosum.BinomialMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and double.means_.dtype == np.float64
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-5)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5, atol=1e-6)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(single.score_samples(X.astype(np.float32)), double.score_samples(X), rtol=1e-5)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_is_reproducible_and_never_lowers_the_elbo(X, init_params):
    fits = [entrosum.BinomialMixture(3, n_trials=TRIALS, init_params=init_params, random_state=4, tol=1e-6,
                                     max_iter=2000).fit(X) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    assert np.all(np.diff(fits[0].lower_bounds_) > -1e-12)


def test_bic_aic_sample_clone_pickle_and_save(X, tmp_path):
    model = entrosum.BinomialMixture(3, n_trials=TRIALS, random_state=0).fit(X)
    log_likelihood = logsumexp(log_joint(model.weights_, model.means_, TRIALS, X), axis=1).sum()
    n_parameters = 3 * X.shape[1] + 3 - 1
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    draws, labels = model.sample(20_000)
    assert np.all(draws <= TRIALS) and np.all(draws == np.floor(draws))
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], rtol=0.05, atol=0.05)
    np.testing.assert_array_equal(clone(model).get_params()["n_trials"], TRIALS)
    assert not hasattr(clone(model), "means_")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))
    model.save(tmp_path / "model.npz")
    loaded = entrosum.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.n_trials_, model.n_trials_)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    saved = entrosum._core.SavedModel(str(tmp_path / "model.npz"))  # the C++ reader
    np.testing.assert_array_equal(saved.parameters()["n_trials"], TRIALS)
    np.testing.assert_allclose(saved.score_samples(X), model.score_samples(X), rtol=1e-13)


def test_a_refit_checks_the_data_against_the_new_n_trials(X):
    model = entrosum.BinomialMixture(2, n_trials=TRIALS, random_state=0).fit(X)
    with pytest.raises(ValueError, match="column 1"):
        model.set_params(n_trials=np.r_[TRIALS[0], 5, TRIALS[2:]]).fit(X)
    np.testing.assert_array_equal(model.n_trials_, TRIALS)
    assert model.score(X) < 0  # scoring uses the fitted numbers of trials
    wide = model.set_params(n_trials=100).fit(X)
    np.testing.assert_array_equal(wide.n_trials_, np.full(X.shape[1], 100.0))


@pytest.mark.parametrize("value, column, match", [
    (-1.0, 2, "Negative values in data passed to BinomialMixture"),
    (2.5, 2, "whole numbers from 0 to n_trials"),
    (4.0, 2, "whole numbers from 0 to n_trials"),  # column 2 has 3 trials
    (41.0, 5, "whole numbers from 0 to n_trials"),
])
def test_bad_counts_are_named_with_their_row_and_column(X, value, column, match):
    bad = X.copy()
    bad[11, column] = value
    for dtype in (np.float64, np.float32):
        with pytest.raises(ValueError, match=rf"{match}.*row 11 holds {value:g} in column {column}"):
            entrosum.BinomialMixture(3, n_trials=TRIALS).fit(bad.astype(dtype))
    model = entrosum.BinomialMixture(3, n_trials=TRIALS, random_state=0).fit(X)
    with pytest.raises(ValueError, match=rf"row 11 holds {value:g} in column {column}"):
        model.predict(bad)


@pytest.mark.parametrize("n_trials, match", [
    (0, r"column 0 has 0\."),
    (2.5, r"column 0 has 2.5"),
    (np.r_[TRIALS[:-1], np.nan], "column 5 has nan"),
    (TRIALS[:3], r"shape \(6,\), got \(3,\)"),
    ("many", "n_trials must"),
    (True, "n_trials must"),
])
def test_bad_n_trials(X, n_trials, match):
    with pytest.raises(ValueError, match=match):
        entrosum.BinomialMixture(2, n_trials=n_trials).fit(X)


def test_bad_means_init_and_tampered_attributes(X):
    with pytest.raises(ValueError, match=r"means_init must hold mean counts in \[0, n_trials\]"):
        entrosum.BinomialMixture(2, n_trials=TRIALS, means_init=np.tile(TRIALS + 1.0, (2, 1))).fit(X)
    model = entrosum.BinomialMixture(2, n_trials=TRIALS, random_state=0).fit(X)
    model.n_trials_ = TRIALS[:4].astype(float)
    with pytest.raises(ValueError, match=r"BinomialMixture.n_trials_ has shape \(4,\)"):
        model.predict(X)
    model.n_trials_ = np.full(6, 0.5)
    with pytest.raises(ValueError, match="n_trials_ must be in"):
        model.predict(X)
    model.n_trials_ = np.full(6, 2.0)
    with pytest.raises(ValueError, match="means_ must be mean counts no larger than n_trials_"):
        model.score_samples(np.zeros((2, 6)))
