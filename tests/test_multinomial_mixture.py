"""MultinomialMixture: log-likelihoods against scipy.stats.multinomial, the pseudo-entropy identity, the
entropy-sum theorem with its data term at every M-step (monitor and steps API), a numpy reference EM, recovery
of a known mixture, sample weights, chunks, threads, precision, saving and bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import multinomial
from sklearn.metrics import adjusted_rand_score

import entrosum
from entrosum.mixtures.steps import DiscreteMixtureSteps

WEIGHTS = np.array([0.5, 0.3, 0.2])
PROBABILITIES = np.array([[0.40, 0.30, 0.10, 0.10, 0.05, 0.05],
                          [0.05, 0.05, 0.40, 0.30, 0.10, 0.10],
                          [0.10, 0.05, 0.05, 0.05, 0.35, 0.40]])
TINY = np.finfo(np.float64).tiny


def multinomial_mixture_data(n_samples, weights, probabilities, *, seed=0, low=5, high=60):
    """Count rows with totals uniform in [low, high) from a multinomial mixture, and their components."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n_samples, p=weights)
    totals = rng.integers(low, high, n_samples)
    X = np.stack([rng.multinomial(totals[n], probabilities[labels[n]]) for n in range(n_samples)])
    return X.astype(np.float64), labels


@pytest.fixture(scope="module")
def X():
    return multinomial_mixture_data(1200, WEIGHTS, PROBABILITIES, seed=1)[0]


@pytest.fixture(scope="module")
def start():
    rng = np.random.default_rng(2)
    means = rng.uniform(0.5, 1.5, (3, 6))
    return dict(weights_init=np.array([0.4, 0.35, 0.25]), means_init=means / means.sum(axis=1, keepdims=True))


def log_joint(weights, probabilities, X):
    """(n, K) log π_k + log Multinomial(x_n; m_n, p_k), from scipy."""
    totals = X.sum(axis=1).astype(np.int64)
    return np.log(np.asarray(weights, np.float64)) + np.stack(
        [multinomial.logpmf(X, totals, np.asarray(p, np.float64)) for p in probabilities], axis=1)


def log_base_measures(X):
    """(n) log (m! / Π_l x_l!)."""
    return gammaln(X.sum(axis=1) + 1.0) - gammaln(X + 1.0).sum(axis=1)


def test_log_likelihood_and_responsibilities_against_scipy(X):
    model = entrosum.MultinomialMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(model.means_.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    joint = log_joint(model.weights_, model.means_, X)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1)[:, None]),
                               rtol=1e-9, atol=1e-14)


def test_known_parameters_score_against_scipy():
    """The C++ score of given parameters (the chunk-level step API's score), probabilities with an exact 0."""
    X = multinomial_mixture_data(200, WEIGHTS, PROBABILITIES, seed=3)[0]
    weights, probabilities = np.array([0.3, 0.7]), np.array([[0.5, 0.5, 0, 0, 0, 0], [0.1, 0.2, 0.3, 0.1, 0.2, 0.1]])
    log_likelihood, resp = entrosum._core.multinomial_mixture_score(X, weights, probabilities,
                                                                     entrosum._core.MultinomialSettings(), True)
    joint = log_joint(weights, probabilities, X)
    np.testing.assert_allclose(log_likelihood, logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(resp, np.exp(joint - logsumexp(joint, axis=1)[:, None]), rtol=1e-9, atol=1e-300)


def test_pseudo_entropy_identity(X):
    """One component: the observable entropy is m̄ H[p] with m̄ the mean total, and it equals A − η∇A summed over
    rows: −(1/N) Σ_n [log p(x_n) − log h(x_n)] = −(1/N) Σ_n Σ_l x_nl log p_l (at the M-step's p = Σx / Σm)."""
    model = entrosum.MultinomialMixture(1, tol=1e-12).fit(X)
    p = model.means_[0]
    np.testing.assert_allclose(p, X.sum(axis=0) / X.sum(), rtol=1e-13)
    mean_total = X.sum(axis=1).mean()
    entropy = -np.sum(p * np.log(p))
    h = model.monitor_.history
    assert h["observable_entropy"][-1] == pytest.approx(mean_total * entropy, rel=1e-12)
    per_row = multinomial.logpmf(X, X.sum(axis=1).astype(np.int64), p) - log_base_measures(X)
    assert h["observable_entropy"][-1] == pytest.approx(-per_row.mean(), rel=1e-12)
    assert h["prior_entropy"][-1] == 0.0
    assert h["data_term"][-1] == pytest.approx(log_base_measures(X).mean(), rel=1e-13)


def test_entropy_sum_equals_elbo_after_every_m_step(X):
    """F(q_t, Θ_{t+1}) = S(q_t, Θ_{t+1}) after every M-step, with a word that never occurs (p at exactly 0)."""
    data = np.column_stack([X, np.zeros(len(X))])
    model = entrosum.MultinomialMixture(3, tol=None, gap_tol=1e-10, max_iter=5000, init_params="random",
                                        random_state=0).fit(data)
    h = model.monitor_.history
    assert model.monitor_.stop_reason == "gap_tol" and model.n_iter_ >= 3
    assert np.all(model.means_[:, -1] == 0.0)
    for name in ("elbo", "entropy_sum", "m_step_elbo", "m_step_entropy_sum"):
        assert np.all(np.isfinite(h[name])), name
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(h["data_term"], log_base_measures(data).mean(), rtol=1e-13)
    assert abs(h["gap"][0]) > 1e-6
    log_likelihood = model.score(data)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)


def test_entropy_sum_through_the_steps_api(X, start):
    """The chunk-level steps: E-step over two halves, merged, M-step, then F(q_old, Θ_new) = S(q_old, Θ_new)."""
    steps = DiscreteMixtureSteps("multinomial_mixture")
    params = {"weights": start["weights_init"], "means": start["means_init"]}
    for _ in range(6):
        stats = steps.chunk_statistics(params, X[:500])
        stats += steps.chunk_statistics(params, X[500:], row_offset=500)
        new = steps.m_step(stats, params)
        terms = steps.terms(stats, new)
        assert terms["elbo"] == pytest.approx(terms["entropy_sum"], abs=1e-10)
        assert terms["data_term"] == pytest.approx(log_base_measures(X).mean(), rel=1e-13)
        before = steps.terms(stats, params)
        assert terms["elbo"] >= before["elbo"] - 1e-12
        params = {"weights": new["weights"], "means": new["means"]}


def reference_em(X, weights, probabilities, n_iter):
    """EM for a multinomial mixture in numpy: the log-likelihood before each M-step and the final parameters."""
    bounds = []
    log_h = log_base_measures(X)
    for _ in range(n_iter):
        joint = np.log(weights) + X @ np.log(np.maximum(probabilities, TINY)).T
        log_norm = logsumexp(joint, axis=1)
        bounds.append(np.mean(log_norm + log_h))
        resp = np.exp(joint - log_norm[:, None])
        counts = resp.sum(axis=0)
        word_counts = resp.T @ X
        weights, probabilities = counts / counts.sum(), word_counts / word_counts.sum(axis=1, keepdims=True)
    return np.array(bounds), weights, probabilities


def test_against_a_numpy_reference_em(X, start):
    n_iter = 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        model = entrosum.MultinomialMixture(3, tol=None, max_iter=n_iter, **start).fit(X[:300])
    bounds, ref_weights, ref_probabilities = reference_em(X[:300], start["weights_init"], start["means_init"], n_iter)
    np.testing.assert_allclose(model.lower_bounds_, bounds, rtol=1e-10)
    np.testing.assert_allclose(model.weights_, ref_weights, rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.means_, ref_probabilities, rtol=0, atol=1e-8)


def test_recovers_a_well_separated_mixture():
    data, labels = multinomial_mixture_data(3000, WEIGHTS, PROBABILITIES, seed=5)
    model = entrosum.MultinomialMixture(3, tol=1e-8, n_init=2, random_state=0).fit(data)
    assert adjusted_rand_score(labels, model.predict(data)) >= 0.95


def test_integer_weights_repeat_rows(X, start):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(tol=1e-9, max_iter=300, **start)
    weighted = entrosum.MultinomialMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.MultinomialMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.monitor_.history["data_term"],
                               np.average(log_base_measures(X), weights=counts), rtol=1e-12)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.MultinomialMixture(3, tol=1e-8, random_state=2, chunk_size=c, n_jobs=j).fit(X)
            for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    for other in fits:
        assert other.n_iter_ == fits[1].n_iter_
        np.testing.assert_allclose(other.lower_bounds_, fits[1].lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, fits[1].means_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)


def test_float32_agrees_with_float64(X, start):
    # the same 300 iterations for both: float32 resolves the ELBO to ~1e-6 per sample, so a tol of 1e-8 would stop (or
    # not) by the rounding of the last change, which differs between CPU builds
    kwargs = dict(tol=None, max_iter=300, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)  # a fixed number of iterations, not a stop rule
        double = entrosum.MultinomialMixture(3, **kwargs).fit(X)
        single = entrosum.MultinomialMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and double.means_.dtype == np.float64
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-5)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5, atol=1e-6)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(single.score_samples(X.astype(np.float32)), double.score_samples(X), rtol=1e-5)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_is_reproducible_and_never_lowers_the_elbo(X, init_params):
    fits = [entrosum.MultinomialMixture(3, init_params=init_params, random_state=4, tol=1e-6,
                                        max_iter=2000).fit(X) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_allclose(fits[0].means_.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    assert np.all(np.diff(fits[0].lower_bounds_) > -1e-12)


def test_bic_aic_sample_pickle_and_save(X, tmp_path):
    model = entrosum.MultinomialMixture(3, random_state=0).fit(X)
    log_likelihood = logsumexp(log_joint(model.weights_, model.means_, X), axis=1).sum()
    n_parameters = 3 * (X.shape[1] - 1) + 3 - 1
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    draws, labels = model.sample(20_000, total=50)
    np.testing.assert_array_equal(draws.sum(axis=1), 50.0)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0) / 50, model.means_[k], rtol=0, atol=0.01)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))
    model.save(tmp_path / "model.npz")
    loaded = entrosum.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    saved = entrosum._core.SavedModel(str(tmp_path / "model.npz"))  # the C++ reader
    np.testing.assert_array_equal(saved.parameters()["means"], model.means_)
    np.testing.assert_allclose(saved.score_samples(X), model.score_samples(X), rtol=1e-13)


@pytest.mark.parametrize("value, column, match", [
    (-1.0, 2, "Negative values in data passed to MultinomialMixture"),
    (2.5, 4, "non-negative integers"),
])
def test_bad_counts_are_named_with_their_row_and_column(X, value, column, match):
    bad = X.copy()
    bad[11, column] = value
    for dtype in (np.float64, np.float32):
        with pytest.raises(ValueError, match=rf"{match}.*row 11 holds {value:g} in column {column}"):
            entrosum.MultinomialMixture(3).fit(bad.astype(dtype))
    model = entrosum.MultinomialMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match=rf"row 11 holds {value:g} in column {column}"):
        model.predict(bad)


def test_a_row_without_counts_is_named(X):
    bad = X.copy()
    bad[17] = 0.0
    for dtype in (np.float64, np.float32):
        with pytest.raises(ValueError, match="row 17 has total 0"):
            entrosum.MultinomialMixture(2).fit(bad.astype(dtype))
    model = entrosum.MultinomialMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="row 17 has total 0"):
        model.score_samples(bad)


def test_bad_means_init_and_tampered_attributes(X):
    with pytest.raises(ValueError, match="means_init must hold probabilities"):
        entrosum.MultinomialMixture(2, means_init=np.full((2, X.shape[1]), 0.5)).fit(X)
    model = entrosum.MultinomialMixture(2, random_state=0).fit(X)
    model.means_ = model.means_ * 0.5
    with pytest.raises(ValueError, match="rows sum to 1"):
        model.predict(X)
