"""CategoricalMixture: log-likelihoods against scipy.stats.multinomial with one trial (and direct indexing),
entropies against summation, the entropy-sum theorem at every M-step (monitor and steps API), a numpy reference
EM, recovery of a known mixture, sample weights, chunks, threads, precision, saving and bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multinomial
from sklearn.metrics import adjusted_rand_score

import entrosum
from entrosum.mixtures.steps import DiscreteMixtureSteps

WEIGHTS = np.array([0.5, 0.3, 0.2])
LEVELS = np.array([3, 2, 4, 3])
#: per column d, a (K, L_d) table
PROBABILITIES = [np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]),
                 np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]),
                 np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.05, 0.05, 0.1, 0.8]]),
                 np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.3, 0.4, 0.3]])]
TINY = np.finfo(np.float64).tiny


def categorical_mixture_data(n_samples, *, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(WEIGHTS), size=n_samples, p=WEIGHTS)
    columns = [np.array([rng.choice(len(p[0]), p=p[k]) for k in labels]) for p in PROBABILITIES]
    return np.stack(columns, axis=1).astype(np.float64), labels


@pytest.fixture(scope="module")
def X():
    return categorical_mixture_data(1200, seed=1)[0]


@pytest.fixture(scope="module")
def start():
    rng = np.random.default_rng(2)
    tables = [rng.uniform(0.5, 1.5, (3, L)) for L in LEVELS]
    means = np.concatenate([t / t.sum(axis=1, keepdims=True) for t in tables], axis=1)
    return dict(n_levels=LEVELS, weights_init=np.array([0.4, 0.35, 0.25]), means_init=means)


def one_hot(X, n_levels):
    return np.concatenate([np.eye(L)[X[:, d].astype(int)] for d, L in enumerate(n_levels)], axis=1)


def log_joint(weights, tables, X):
    """(n, K) log π_k + Σ_d log Multinomial(one_hot(x_d); 1, p_kd), from scipy."""
    columns = [one_hot(X[:, [d]], [t.shape[1]]) for d, t in enumerate(tables)]
    return np.log(weights) + np.stack([sum(multinomial.logpmf(c, 1, t[k]) for c, t in zip(columns, tables))
                                       for k in range(len(weights))], axis=1)


def test_log_likelihood_and_responsibilities_against_scipy(X):
    model = entrosum.CategoricalMixture(3, random_state=0).fit(X)
    np.testing.assert_array_equal(model.n_levels_, LEVELS)
    tables = model.probabilities_
    assert [t.shape for t in tables] == [(3, L) for L in LEVELS]
    for t in tables:
        np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    joint = log_joint(model.weights_, tables, X)
    # direct indexing agrees with scipy
    direct = np.log(model.weights_) + sum(np.log(t[:, X[:, d].astype(int)]).T for d, t in enumerate(tables))
    np.testing.assert_allclose(joint, direct, rtol=1e-13)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1)[:, None]),
                               rtol=1e-9, atol=1e-14)


def test_entropy_against_summation(X):
    """One component: the observable entropy is Σ_d −Σ_l p log p of the column frequencies."""
    model = entrosum.CategoricalMixture(1, tol=1e-12).fit(X)
    summed = 0.0
    for d, L in enumerate(LEVELS):
        p = np.bincount(X[:, d].astype(int), minlength=L) / len(X)
        np.testing.assert_allclose(model.probabilities_[d][0], p, rtol=1e-13)
        summed -= sum(q * np.log(q) for q in p if q > 0)
    h = model.monitor_.history
    assert h["observable_entropy"][-1] == pytest.approx(summed, rel=1e-12)
    assert h["data_term"][-1] == 0.0
    assert h["elbo"][-1] == pytest.approx(-summed, rel=1e-12)


def test_entropy_sum_equals_elbo_after_every_m_step(X):
    """F(q_t, Θ_{t+1}) = S(q_t, Θ_{t+1}) after every M-step, with a level that never occurs (p at exactly 0)."""
    model = entrosum.CategoricalMixture(3, n_levels=LEVELS + 1, tol=None, gap_tol=1e-10, max_iter=5000,
                                        init_params="random", random_state=0).fit(X)
    h = model.monitor_.history
    assert model.monitor_.stop_reason == "gap_tol" and model.n_iter_ >= 3
    assert np.all(model.probabilities_[0][:, -1] == 0.0)
    for name in ("elbo", "entropy_sum", "m_step_elbo", "m_step_entropy_sum"):
        assert np.all(np.isfinite(h[name])), name
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert abs(h["gap"][0]) > 1e-6
    log_likelihood = model.score(X)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)


def test_entropy_sum_through_the_steps_api(X, start):
    steps = DiscreteMixtureSteps("categorical_mixture", n_levels=tuple(int(L) for L in LEVELS))
    params = {"weights": start["weights_init"], "means": start["means_init"]}
    for _ in range(6):
        stats = steps.chunk_statistics(params, X[:500])
        stats += steps.chunk_statistics(params, X[500:], row_offset=500)
        new = steps.m_step(stats, params)
        terms = steps.terms(stats, new)
        assert terms["elbo"] == pytest.approx(terms["entropy_sum"], abs=1e-10)
        assert terms["elbo"] >= steps.terms(stats, params)["elbo"] - 1e-12
        params = {"weights": new["weights"], "means": new["means"]}


def reference_em(X, n_levels, weights, means, n_iter):
    """EM for a categorical mixture in numpy on the one-hot codes."""
    Z = one_hot(X, n_levels)
    offsets = np.concatenate([[0], np.cumsum(n_levels)])
    bounds = []
    for _ in range(n_iter):
        joint = np.log(weights) + Z @ np.log(np.maximum(means, TINY)).T
        log_norm = logsumexp(joint, axis=1)
        bounds.append(np.mean(log_norm))
        resp = np.exp(joint - log_norm[:, None])
        counts = resp.sum(axis=0)
        frequencies = resp.T @ Z
        means = np.concatenate([frequencies[:, a:b] / frequencies[:, a:b].sum(axis=1, keepdims=True)
                                for a, b in zip(offsets[:-1], offsets[1:])], axis=1)
        weights = counts / counts.sum()
    return np.array(bounds), weights, means


def test_against_a_numpy_reference_em(X, start):
    n_iter = 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        model = entrosum.CategoricalMixture(3, tol=None, max_iter=n_iter, **start).fit(X[:300])
    bounds, weights, means = reference_em(X[:300], LEVELS, start["weights_init"], start["means_init"], n_iter)
    np.testing.assert_allclose(model.lower_bounds_, bounds, rtol=1e-10)
    np.testing.assert_allclose(model.weights_, weights, rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.means_, means, rtol=0, atol=1e-8)


def test_recovers_a_well_separated_mixture():
    """Ten columns of four levels; component k puts 0.85 on level (k + d) mod 4 of column d."""
    rng = np.random.default_rng(5)
    labels = rng.choice(3, size=3000, p=WEIGHTS)
    peaks = (labels[:, None] + np.arange(10)) % 4
    spread = rng.integers(0, 4, (3000, 10))
    data = np.where(rng.random((3000, 10)) < 0.8, peaks, spread).astype(np.float64)  # P(peak) = 0.8 + 0.2 / 4
    model = entrosum.CategoricalMixture(3, tol=1e-8, n_init=2, init_params="random", random_state=0).fit(data)
    assert adjusted_rand_score(labels, model.predict(data)) >= 0.95


def test_integer_weights_repeat_rows(X, start):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(tol=1e-9, max_iter=300, **start)
    weighted = entrosum.CategoricalMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.CategoricalMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9, atol=1e-12)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.CategoricalMixture(3, tol=1e-8, random_state=2, chunk_size=c, n_jobs=j).fit(X)
            for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    for other in fits:
        assert other.n_iter_ == fits[1].n_iter_
        np.testing.assert_allclose(other.lower_bounds_, fits[1].lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, fits[1].means_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)


def test_float32_agrees_with_float64(X, start):
    kwargs = dict(tol=None, max_iter=40, **start)  # the same iterations: this mixture converges slowly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        double = entrosum.CategoricalMixture(3, **kwargs).fit(X)
        single = entrosum.CategoricalMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and double.means_.dtype == np.float64
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5, atol=1e-6)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(single.score_samples(X.astype(np.float32)), double.score_samples(X), rtol=1e-5)


def test_bic_aic_sample_pickle_and_save(X, tmp_path):
    model = entrosum.CategoricalMixture(3, random_state=0).fit(X)
    log_likelihood = logsumexp(log_joint(model.weights_, model.probabilities_, X), axis=1).sum()
    n_parameters = 3 * int(np.sum(LEVELS - 1)) + 3 - 1
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    draws, labels = model.sample(20_000)
    for k in range(3):
        for d, L in enumerate(LEVELS):
            frequencies = np.bincount(draws[labels == k, d].astype(int), minlength=L) / np.sum(labels == k)
            np.testing.assert_allclose(frequencies, model.probabilities_[d][k], rtol=0, atol=0.03)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))
    model.save(tmp_path / "model.npz")
    loaded = entrosum.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.n_levels_, LEVELS)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    saved = entrosum._core.SavedModel(str(tmp_path / "model.npz"))  # the C++ reader
    np.testing.assert_array_equal(saved.parameters()["n_levels"], LEVELS)
    np.testing.assert_allclose(saved.score_samples(X), model.score_samples(X), rtol=1e-13)


@pytest.mark.parametrize("value, column, match", [
    (-1.0, 2, "Negative values in data passed to CategoricalMixture"),
    (1.5, 2, r"whole numbers from 0 to n_levels - 1"),
    (3.0, 1, r"which has L_d = 2 levels"),
])
def test_bad_codes_are_named_with_their_row_column_and_levels(X, value, column, match):
    bad = X.copy()
    bad[11, column] = value
    for dtype in (np.float64, np.float32):
        with pytest.raises(ValueError, match=match):
            entrosum.CategoricalMixture(3, n_levels=LEVELS).fit(bad.astype(dtype))
        with pytest.raises(ValueError, match=rf"row 11 holds {value:g} in column {column}"):
            entrosum.CategoricalMixture(3, n_levels=LEVELS).fit(bad.astype(dtype))
    model = entrosum.CategoricalMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match=rf"row 11 holds {value:g} in column {column}"):
        model.predict(bad)


def test_a_code_unseen_at_fit_is_refused(X):
    model = entrosum.CategoricalMixture(2, random_state=0).fit(X)
    bad = X.copy()
    bad[5, 3] = 3.0  # column 3 had levels 0, 1, 2
    with pytest.raises(ValueError, match=r"row 5 holds 3 in column 3, which has L_d = 3 levels \(a code not seen"):
        model.score_samples(bad)


@pytest.mark.parametrize("n_levels, match", [
    (0, r"column 0 has 0\."),
    (2.5, r"column 0 has 2.5"),
    (LEVELS[:2], r"shape \(4,\), got \(2,\)"),
    ("many", "n_levels must"),
    (True, "n_levels must"),
])
def test_bad_n_levels(X, n_levels, match):
    with pytest.raises(ValueError, match=match):
        entrosum.CategoricalMixture(2, n_levels=n_levels).fit(X)


def test_bad_means_init_and_tampered_attributes(X):
    with pytest.raises(ValueError, match="means_init must have the shape"):
        entrosum.CategoricalMixture(2, n_levels=LEVELS, means_init=np.full((2, 4), 0.5)).fit(X)
    with pytest.raises(ValueError, match="means_init must hold probabilities"):
        entrosum.CategoricalMixture(2, n_levels=LEVELS, means_init=np.full((2, LEVELS.sum()), 0.5)).fit(X)
    model = entrosum.CategoricalMixture(2, random_state=0).fit(X)
    model.means_ = model.means_ * 0.5
    with pytest.raises(ValueError, match="levels sum to 1"):
        model.predict(X)
