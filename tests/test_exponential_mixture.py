"""ExponentialMixture: log-likelihoods against scipy, the entropy against quadrature, the entropy-sum theorem at every
M-step, a numpy reference EM from the same start, recovery of a known mixture, sample weights, chunks, threads,
precision, saving and bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import logsumexp
from scipy.stats import expon
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

import entrosum

from conftest import exponential_mixture_data

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.2, 5.0, 1.0, 30.0],
                  [6.0, 0.3, 10.0, 1.0],
                  [40.0, 20.0, 0.1, 0.5]])


@pytest.fixture(scope="module")
def data():
    return exponential_mixture_data(1500, WEIGHTS, MEANS, seed=1)


@pytest.fixture(scope="module")
def X(data):
    return data[0]


@pytest.fixture(scope="module")
def start(X):
    rng = np.random.default_rng(2)
    return dict(weights_init=np.array([0.4, 0.35, 0.25]), means_init=rng.uniform(0.5, 2.0, (3, X.shape[1]))
                * X.mean(axis=0))


def log_joint(weights, means, X):
    """(n, K) log π_k + Σ_d log Exponential(x_nd; mean m_kd), from scipy."""
    return np.log(np.asarray(weights, np.float64)) + np.stack(
        [expon.logpdf(X, scale=np.asarray(means[k], np.float64)).sum(axis=1) for k in range(len(weights))], axis=1)


def test_log_likelihood_and_responsibilities_against_scipy(X):
    model = entrosum.ExponentialMixture(3, random_state=0).fit(X)
    joint = log_joint(model.weights_, model.means_, X)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)


def test_entropy_against_quadrature(X):
    """One component: the monitor's observable entropy is Σ_d (1 + log m_d), −∫ p log p by quadrature."""
    model = entrosum.ExponentialMixture(1, tol=1e-12).fit(X)
    np.testing.assert_allclose(model.means_[0], X.mean(axis=0), rtol=1e-13)
    integrated = sum(quad(lambda x, m=m: -expon.pdf(x, scale=m) * expon.logpdf(x, scale=m), 0, np.inf)[0]
                     for m in model.means_[0])
    assert model.monitor_.history["observable_entropy"][-1] == pytest.approx(integrated, rel=1e-9)
    assert model.monitor_.history["data_term"][-1] == 0.0


def test_entropy_sum_equals_elbo_after_every_m_step(X):
    model = entrosum.ExponentialMixture(3, tol=None, gap_tol=1e-10, max_iter=5000, random_state=0).fit(X)
    h = model.monitor_.history
    assert model.monitor_.stop_reason == "gap_tol" and model.n_iter_ >= 3
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert abs(h["gap"][0]) > 1e-6
    log_likelihood = model.score(X)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)


def test_em_against_a_numpy_reference_from_the_same_start(X, start):
    n_iter = 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        model = entrosum.ExponentialMixture(3, tol=None, max_iter=n_iter, **start).fit(X)
    weights, means = start["weights_init"], start["means_init"]
    bounds = []
    for _ in range(n_iter):
        joint = log_joint(weights, means, X)
        log_norm = logsumexp(joint, axis=1)
        bounds.append(log_norm.mean())
        resp = np.exp(joint - log_norm[:, None])
        counts = resp.sum(axis=0)
        weights, means = counts / counts.sum(), resp.T @ X / counts[:, None]
    np.testing.assert_allclose(model.lower_bounds_, bounds, rtol=1e-10)
    np.testing.assert_allclose(model.weights_, weights, rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.means_, means, rtol=1e-8)


def test_recovers_a_well_separated_mixture():
    data, labels = exponential_mixture_data(3000, WEIGHTS, MEANS * np.array([[1.0], [1.0], [1.0]]), seed=5)
    model = entrosum.ExponentialMixture(3, tol=1e-8, n_init=3, random_state=0).fit(data)
    assert adjusted_rand_score(labels, model.predict(data)) >= 0.95


def test_integer_weights_repeat_rows(X, start):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(tol=1e-9, max_iter=300, **start)
    weighted = entrosum.ExponentialMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.ExponentialMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.ExponentialMixture(3, tol=1e-8, random_state=2, chunk_size=c, n_jobs=j).fit(X)
            for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    for other in fits:
        assert other.n_iter_ == fits[1].n_iter_
        np.testing.assert_allclose(other.lower_bounds_, fits[1].lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, fits[1].means_, rtol=1e-11)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)


def test_float32_agrees_with_float64(X, start):
    kwargs = dict(tol=1e-8, max_iter=300, **start)
    double = entrosum.ExponentialMixture(3, **kwargs).fit(X)
    single = entrosum.ExponentialMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and double.means_.dtype == np.float64
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-4)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-4)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(single.score_samples(X.astype(np.float32)), double.score_samples(X), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_is_reproducible_and_never_lowers_the_elbo(X, init_params):
    fits = [entrosum.ExponentialMixture(3, init_params=init_params, random_state=4, tol=1e-6, max_iter=2000).fit(X)
            for _ in range(2)]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    assert np.all(np.diff(fits[0].lower_bounds_) > -1e-12)


def test_bic_aic_sample_clone_pickle_and_save(X, tmp_path):
    model = entrosum.ExponentialMixture(3, random_state=0).fit(X)
    log_likelihood = logsumexp(log_joint(model.weights_, model.means_, X), axis=1).sum()
    n_parameters = 3 * X.shape[1] + 3 - 1
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    draws, labels = model.sample(20_000)
    assert np.all(draws > 0)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], rtol=0.1)
    assert not hasattr(clone(model), "means_")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))
    model.save(tmp_path / "model.npz")
    np.testing.assert_array_equal(entrosum.load(tmp_path / "model.npz").score_samples(X), model.score_samples(X))
    saved = entrosum._core.SavedModel(str(tmp_path / "model.npz"))
    np.testing.assert_allclose(saved.score_samples(X), model.score_samples(X), rtol=1e-13)


@pytest.mark.parametrize("value, match", [
    (-1.0, "Negative values in data passed to ExponentialMixture"),
    (0.0, r"X must be positive \(every value > 0 and not subnormal\) for ExponentialMixture"),
    (5e-324, r"X must be positive \(every value > 0 and not subnormal\) for ExponentialMixture"),  # read as 0
])
def test_values_that_are_not_positive_are_named_with_their_row_and_column(X, value, match):
    bad = X.copy()
    bad[11, 2] = value
    for dtype in (np.float64, np.float32):
        shown = float(np.asarray(value, dtype=dtype))  # 5e-324 is 0 in float32
        with pytest.raises(ValueError, match=rf"{match}.*row 11 holds {shown:g} in column 2"):
            entrosum.ExponentialMixture(3).fit(bad.astype(dtype))


def test_bad_means_init_and_tampered_attributes(X):
    with pytest.raises(ValueError, match="means_init must hold positive means for ExponentialMixture"):
        entrosum.ExponentialMixture(2, means_init=np.zeros((2, X.shape[1]))).fit(X)
    model = entrosum.ExponentialMixture(2, random_state=0).fit(X)
    model.means_ = np.zeros_like(model.means_)
    with pytest.raises(ValueError, match="ExponentialMixture.means_ must be positive"):
        model.predict(X)
