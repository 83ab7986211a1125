"""GammaMixture: log-likelihoods against scipy, the entropy against quadrature, the shape's Newton solve, the
entropy-sum theorem at every M-step, a numpy reference EM from the same start, recovery of a known mixture, sample
weights, chunks, threads, precision, saving and bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import digamma, logsumexp, polygamma
from scipy.stats import gamma
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

import entrosum

WEIGHTS = np.array([0.5, 0.3, 0.2])
SHAPES = np.array([[2.0, 8.0, 0.7, 30.0],
                   [12.0, 1.5, 4.0, 3.0],
                   [5.0, 20.0, 1.0, 0.5]])
MEANS = np.array([[0.5, 5.0, 1.0, 30.0],
                  [6.0, 0.3, 10.0, 1.0],
                  [40.0, 20.0, 0.1, 0.5]])


def gamma_mixture_data(n, weights, means, shapes, seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n, p=weights)
    return rng.gamma(shapes[labels], means[labels] / shapes[labels]), labels


@pytest.fixture(scope="module")
def data():
    return gamma_mixture_data(1500, WEIGHTS, MEANS, SHAPES, seed=1)


@pytest.fixture(scope="module")
def X(data):
    return data[0]


@pytest.fixture(scope="module")
def start(X):
    rng = np.random.default_rng(2)
    return dict(weights_init=np.array([0.4, 0.35, 0.25]),
                means_init=rng.uniform(0.5, 2.0, (3, X.shape[1])) * X.mean(axis=0),
                shapes_init=rng.uniform(0.5, 3.0, (3, X.shape[1])))


def log_joint(weights, means, shapes, X):
    """(n, K) log π_k + Σ_d log Gamma(x_nd; k_kd, scale m_kd / k_kd), from scipy."""
    return np.log(np.asarray(weights, np.float64)) + np.stack(
        [gamma.logpdf(X, np.asarray(shapes[k], np.float64), scale=np.asarray(means[k] / shapes[k], np.float64)).sum(
            axis=1) for k in range(len(weights))], axis=1)


def shape_by_newton(gap):
    """The k with log k − ψ(k) = gap, by Newton in numpy (the reference of the M-step)."""
    k = (3 - gap + np.sqrt((gap - 3) ** 2 + 24 * gap)) / (12 * gap)
    for _ in range(100):
        k = k - (np.log(k) - digamma(k) - gap) / (1 / k - polygamma(1, k))
    return k


def test_log_likelihood_and_responsibilities_against_scipy(X):
    model = entrosum.GammaMixture(3, random_state=0).fit(X)
    joint = log_joint(model.weights_, model.means_, model.shapes_, X)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-11)


def test_one_component_is_the_maximum_likelihood_fit_and_its_entropy_matches_quadrature(X):
    """One component: the shapes solve log k − ψ(k) = log mean − mean(log x) (scipy's root finder), and the monitor's
    observable entropy is Σ_d of the gamma entropies, −∫ p log p by quadrature."""
    model = entrosum.GammaMixture(1, tol=1e-12).fit(X)
    np.testing.assert_allclose(model.means_[0], X.mean(axis=0), rtol=1e-13)
    gaps = np.log(X.mean(axis=0)) - np.log(X).mean(axis=0)
    roots = [brentq(lambda k, g=g: np.log(k) - digamma(k) - g, 1e-6, 1e6, xtol=1e-14, rtol=1e-15) for g in gaps]
    np.testing.assert_allclose(model.shapes_[0], roots, rtol=1e-11)
    integrated = 0.0
    for m, k in zip(model.means_[0], model.shapes_[0]):
        low, high = gamma.ppf([1e-16, 1 - 1e-16], k, scale=m / k)
        integrated += quad(lambda x, k=k, m=m: -gamma.pdf(x, k, scale=m / k) * gamma.logpdf(x, k, scale=m / k), low,
                           high, limit=200, epsabs=1e-13)[0]
    assert model.monitor_.history["observable_entropy"][-1] == pytest.approx(integrated, rel=1e-8)


@pytest.mark.parametrize("gap", [1e-8, 1e-4, 0.01, 0.5, 3.0, 40.0])
def test_shapes_solve_their_equation_over_a_wide_range(gap):
    """Two values per column chosen so that log mean − mean log x = gap: shapes from k ≈ 1/(2 gap) to k → 0, against
    the root found by mpmath at 40 digits (k is as sensitive to the rounding of the gap as 1/(2 gap) is)."""
    import mpmath

    log_b = brentq(lambda t: np.logaddexp(0.0, t) - np.log(2.0) - t / 2 - gap, 1e-12, 700.0, xtol=1e-300)
    X = np.array([[1.0], [np.exp(log_b)]])
    model = entrosum.GammaMixture(1, tol=1e-12).fit(X)
    observed = np.log(X.mean()) - np.log(X).mean()  # the gap of the data as rounded
    with mpmath.workdps(40):
        root = mpmath.findroot(lambda k: mpmath.log(k) - mpmath.digamma(k) - observed, model.shapes_[0, 0])
    assert model.shapes_[0, 0] == pytest.approx(float(root), rel=max(1e-12, 1e-14 / gap))


def test_entropy_sum_equals_elbo_after_every_m_step(X):
    model = entrosum.GammaMixture(3, tol=None, gap_tol=1e-10, max_iter=5000, init_params="random",
                                  random_state=0).fit(X)
    h = model.monitor_.history
    assert model.monitor_.stop_reason == "gap_tol" and model.n_iter_ >= 3
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert abs(h["gap"][0]) > 1e-6
    log_likelihood = model.score(X)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)


def test_em_against_a_numpy_reference_from_the_same_start(X, start):
    n_iter = 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        model = entrosum.GammaMixture(3, tol=None, max_iter=n_iter, **start).fit(X)
    weights, means, shapes = start["weights_init"], start["means_init"], start["shapes_init"]
    bounds = []
    for _ in range(n_iter):
        joint = log_joint(weights, means, shapes, X)
        log_norm = logsumexp(joint, axis=1)
        bounds.append(log_norm.mean())
        resp = np.exp(joint - log_norm[:, None])
        counts = resp.sum(axis=0)
        means = resp.T @ X / counts[:, None]
        shapes = shape_by_newton(np.log(means) - resp.T @ np.log(X) / counts[:, None])
        weights = counts / counts.sum()
    np.testing.assert_allclose(model.lower_bounds_, bounds, rtol=1e-10)
    np.testing.assert_allclose(model.weights_, weights, rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.means_, means, rtol=1e-8)
    np.testing.assert_allclose(model.shapes_, shapes, rtol=1e-8)


def test_recovers_a_well_separated_mixture():
    data, labels = gamma_mixture_data(3000, WEIGHTS, MEANS, SHAPES, seed=5)
    model = entrosum.GammaMixture(3, tol=1e-8, n_init=3, random_state=0).fit(data)
    assert adjusted_rand_score(labels, model.predict(data)) >= 0.95


def test_integer_weights_repeat_rows(X, start):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(tol=1e-9, max_iter=300, **start)
    weighted = entrosum.GammaMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.GammaMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8)
    np.testing.assert_allclose(weighted.shapes_, repeated.shapes_, rtol=1e-8)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.GammaMixture(3, tol=1e-8, random_state=2, chunk_size=c, n_jobs=j).fit(X)
            for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    for other in fits:
        assert other.n_iter_ == fits[1].n_iter_
        np.testing.assert_allclose(other.lower_bounds_, fits[1].lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.shapes_, fits[1].shapes_, rtol=1e-10)
    np.testing.assert_array_equal(fits[2].shapes_, fits[3].shapes_)


def test_float32_agrees_with_float64(X, start):
    kwargs = dict(tol=1e-8, max_iter=300, **start)
    double = entrosum.GammaMixture(3, **kwargs).fit(X)
    single = entrosum.GammaMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.shapes_.dtype == np.float32 and double.shapes_.dtype == np.float64
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-4)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-4)
    np.testing.assert_allclose(single.shapes_, double.shapes_, rtol=1e-4)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_is_reproducible_and_never_lowers_the_elbo(X, init_params):
    fits = [entrosum.GammaMixture(3, init_params=init_params, random_state=4, tol=1e-6, max_iter=2000).fit(X)
            for _ in range(2)]
    np.testing.assert_array_equal(fits[0].shapes_, fits[1].shapes_)
    assert np.all(np.diff(fits[0].lower_bounds_) > -1e-12)


def test_bic_aic_sample_clone_pickle_and_save(X, tmp_path):
    model = entrosum.GammaMixture(3, random_state=0).fit(X)
    log_likelihood = logsumexp(log_joint(model.weights_, model.means_, model.shapes_, X), axis=1).sum()
    n_parameters = 2 * 3 * X.shape[1] + 3 - 1
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    draws, labels = model.sample(20_000)
    assert np.all(draws > 0)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], rtol=0.1)
    assert not hasattr(clone(model), "shapes_")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))
    model.save(tmp_path / "model.npz")
    np.testing.assert_array_equal(entrosum.load(tmp_path / "model.npz").score_samples(X), model.score_samples(X))
    saved = entrosum._core.SavedModel(str(tmp_path / "model.npz"))
    np.testing.assert_array_equal(saved.parameters()["shapes"], model.shapes_)
    np.testing.assert_allclose(saved.score_samples(X), model.score_samples(X), rtol=1e-13)


@pytest.mark.parametrize("value, match", [
    (-1.0, "Negative values in data passed to GammaMixture"),
    (0.0, r"X must be positive \(every value > 0 and not subnormal\) for GammaMixture"),
    (5e-324, r"X must be positive \(every value > 0 and not subnormal\) for GammaMixture"),  # read as 0 by the passes
])
def test_values_that_are_not_positive_are_named_with_their_row_and_column(X, value, match):
    bad = X.copy()
    bad[11, 2] = value
    for dtype in (np.float64, np.float32):
        shown = float(np.asarray(value, dtype=dtype))  # 5e-324 is 0 in float32
        with pytest.raises(ValueError, match=rf"{match}.*row 11 holds {shown:g} in column 2"):
            entrosum.GammaMixture(3).fit(bad.astype(dtype))


def test_bad_initial_values_and_tampered_attributes(X):
    with pytest.raises(ValueError, match="means_init must hold positive means for GammaMixture"):
        entrosum.GammaMixture(2, means_init=np.zeros((2, X.shape[1]))).fit(X)
    with pytest.raises(ValueError, match=r"shapes_init must have shape \(2, 4\)"):
        entrosum.GammaMixture(2, shapes_init=np.ones((2, 3))).fit(X)
    with pytest.raises(ValueError, match="shapes_init must hold positive finite shapes"):
        entrosum.GammaMixture(2, shapes_init=-np.ones((2, 4))).fit(X)
    model = entrosum.GammaMixture(2, random_state=0).fit(X)
    model.shapes_ = model.shapes_[:, :2]
    with pytest.raises(ValueError, match=r"GammaMixture.shapes_ has shape \(2, 2\)"):
        model.predict(X)
    model.shapes_ = np.zeros((2, 4))
    with pytest.raises(ValueError, match="GammaMixture.shapes_ must be positive"):
        model.predict(X)
