"""Closed-form entropies (cpp/include/entrosum/core/entropy.hpp, DESIGN.md §3) against independent references.

Every check compares the C++ closed form with something computed differently: numerical integration of
−p log p, a Monte Carlo estimate of −E[log p], scipy's own implementations, or direct summation of the
Poisson series in high precision (mpmath).  None of the references reuses the closed form under test.
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
from scipy import integrate, special, stats

from entrosum._core import entropy as ent

# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _random_spd(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A well-conditioned random symmetric positive-definite matrix with a non-trivial scale."""
    a = rng.standard_normal((dim, dim))
    return a @ a.T / dim + 0.5 * np.eye(dim)


def _neg_p_log_p(log_p: float) -> float:
    """−p log p from log p, with 0 log 0 = 0 (math.exp underflows silently to 0)."""
    return -math.exp(log_p) * log_p


def _quad_entropy_1d(logpdf, sd: float) -> float:
    """−∫ p log p over the real line, split at 0 so quad sees each smooth half separately."""
    f = lambda z: _neg_p_log_p(logpdf(z))  # noqa: E731
    opts = dict(epsabs=1e-13, epsrel=1e-13, limit=200)
    left, _ = integrate.quad(f, -60.0 * sd, 0.0, **opts)
    right, _ = integrate.quad(f, 0.0, 60.0 * sd, **opts)
    return left + right


def _dblquad_entropy_2d(cov: np.ndarray) -> float:
    """−∬ p log p for a zero-mean 2-D Gaussian, over a box of ±12 marginal standard deviations."""
    dist = stats.multivariate_normal(mean=np.zeros(2), cov=cov)
    sx, sy = np.sqrt(np.diag(cov))
    f = lambda y, x: _neg_p_log_p(float(dist.logpdf([x, y])))  # noqa: E731
    val, _ = integrate.dblquad(f, -12 * sx, 12 * sx, -12 * sy, 12 * sy, epsabs=1e-11, epsrel=1e-11)
    return val


def _mc_entropy(cov: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    """Monte Carlo −mean(log pdf) with its standard error, using scipy's multivariate_normal."""
    dist = stats.multivariate_normal(mean=np.zeros(cov.shape[0]), cov=cov)
    samples = dist.rvs(size=n, random_state=np.random.default_rng(seed))
    neg_log = -dist.logpdf(samples)
    return float(neg_log.mean()), float(neg_log.std(ddof=1) / math.sqrt(n))


# --------------------------------------------------------------------------------------------------
# Gaussian
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sd", [1e-3, 0.3, 1.0, 4.5])
def test_gaussian_1d_all_forms_match_quadrature(sd):
    var = sd * sd
    reference = _quad_entropy_1d(lambda z: stats.norm.logpdf(z, scale=sd), sd)
    assert ent.gaussian_from_cholesky(np.array([[sd]])) == pytest.approx(reference, abs=1e-11)
    assert ent.gaussian_diagonal(np.array([var])) == pytest.approx(reference, abs=1e-11)
    assert ent.gaussian_isotropic(1, var) == pytest.approx(reference, abs=1e-11)


@pytest.mark.parametrize(
    "cov",
    [
        np.array([[1.0, 0.0], [0.0, 1.0]]),
        np.array([[2.0, 0.9], [0.9, 0.7]]),
        np.array([[0.05, -0.03], [-0.03, 0.04]]),
        np.array([[9.0, 2.5], [2.5, 1.2]]),
    ],
    ids=["identity", "correlated", "small-anticorrelated", "large"],
)
def test_gaussian_from_cholesky_2d_matches_dblquad(cov):
    reference = _dblquad_entropy_2d(cov)
    chol = np.linalg.cholesky(cov)
    assert ent.gaussian_from_cholesky(chol) == pytest.approx(reference, abs=1e-10)


@pytest.mark.parametrize("variances", [(1.0, 1.0), (0.2, 3.0), (1e-2, 25.0)])
def test_gaussian_diagonal_2d_matches_dblquad(variances):
    cov = np.diag(variances)
    reference = _dblquad_entropy_2d(cov)
    assert ent.gaussian_diagonal(np.array(variances)) == pytest.approx(reference, abs=1e-10)


@pytest.mark.parametrize("variance", [0.25, 1.0, 6.0])
def test_gaussian_isotropic_2d_matches_dblquad(variance):
    reference = _dblquad_entropy_2d(variance * np.eye(2))
    assert ent.gaussian_isotropic(2, variance) == pytest.approx(reference, abs=1e-10)


@pytest.mark.parametrize("dim", [3, 5, 10])
def test_gaussian_from_cholesky_matches_monte_carlo(dim):
    rng = np.random.default_rng(1000 + dim)
    cov = _random_spd(dim, rng)
    estimate, se = _mc_entropy(cov, n=400_000, seed=2000 + dim)
    value = ent.gaussian_from_cholesky(np.linalg.cholesky(cov))
    assert abs(value - estimate) < 5.0 * se


@pytest.mark.parametrize("dim", [3, 7])
def test_gaussian_diagonal_matches_monte_carlo(dim):
    rng = np.random.default_rng(3000 + dim)
    variances = rng.uniform(0.05, 5.0, size=dim)
    estimate, se = _mc_entropy(np.diag(variances), n=400_000, seed=4000 + dim)
    assert abs(ent.gaussian_diagonal(variances) - estimate) < 5.0 * se


@pytest.mark.parametrize(("dim", "variance"), [(3, 0.5), (8, 2.0), (20, 1.0)])
def test_gaussian_isotropic_matches_monte_carlo(dim, variance):
    estimate, se = _mc_entropy(variance * np.eye(dim), n=400_000, seed=5000 + dim)
    assert abs(ent.gaussian_isotropic(dim, variance) - estimate) < 5.0 * se


@pytest.mark.parametrize("dim", [1, 2, 4, 9, 25])
def test_gaussian_from_cholesky_matches_scipy_entropy(dim):
    rng = np.random.default_rng(6000 + dim)
    cov = _random_spd(dim, rng)
    reference = stats.multivariate_normal(mean=np.zeros(dim), cov=cov).entropy()
    assert ent.gaussian_from_cholesky(np.linalg.cholesky(cov)) == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("dim", [1, 3, 12])
def test_gaussian_diagonal_and_isotropic_match_scipy_entropy(dim):
    rng = np.random.default_rng(7000 + dim)
    variances = rng.uniform(0.01, 10.0, size=dim)
    reference = stats.multivariate_normal(mean=np.zeros(dim), cov=np.diag(variances)).entropy()
    assert ent.gaussian_diagonal(variances) == pytest.approx(reference, abs=1e-12)
    iso = float(variances[0])
    reference_iso = stats.multivariate_normal(mean=np.zeros(dim), cov=iso * np.eye(dim)).entropy()
    assert ent.gaussian_isotropic(dim, iso) == pytest.approx(reference_iso, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Laplace
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.1, 1.0, 7.5])
def test_laplace_matches_quadrature(scale):
    # Density exp(−|z|/λ)/(2λ), written out here; quad is split at the kink z = 0.
    log_norm = math.log(2.0 * scale)
    reference = _quad_entropy_1d(lambda z: -abs(z) / scale - log_norm, scale)
    assert ent.laplace(scale) == pytest.approx(reference, abs=1e-11)


@pytest.mark.parametrize("scale", [1e-4, 0.1, 1.0, 7.5, 1e3])
def test_laplace_matches_scipy_entropy(scale):
    assert ent.laplace(scale) == pytest.approx(stats.laplace(scale=scale).entropy(), abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Bernoulli and categorical
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1e-12, 0.3, 0.5, 0.999])
def test_bernoulli_matches_direct_formula(p):
    # Evaluated at 50 significant digits so that log(1 − p) at p = 1e-12 is not itself a rounding error.
    with mpmath.workdps(50):
        mp_p = mpmath.mpf(p)
        reference = float(-mp_p * mpmath.log(mp_p) - (1 - mp_p) * mpmath.log(1 - mp_p))
    assert ent.bernoulli(p) == pytest.approx(reference, rel=1e-14)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_bernoulli_edges_are_exactly_zero(p):
    value = ent.bernoulli(p)
    assert not math.isnan(value)
    assert value == 0.0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [2, 3, 10, 200])
def test_categorical_matches_scipy_on_random_vectors(size, seed):
    probs = np.random.default_rng(seed * 1000 + size).dirichlet(np.full(size, 0.7))
    assert ent.categorical(probs) == pytest.approx(stats.entropy(probs), rel=1e-13, abs=1e-15)


@pytest.mark.parametrize(
    "probs",
    [
        [1.0],
        [0.0, 1.0, 0.0],
        [0.5, 0.0, 0.5],
        [0.0, 0.2, 0.0, 0.3, 0.5, 0.0],
        [1e-300, 0.0, 1.0 - 1e-12, 1e-12 - 1e-300],
    ],
)
def test_categorical_with_zeros(probs):
    probs = np.asarray(probs, dtype=float)
    value = ent.categorical(probs)
    assert not math.isnan(value)
    assert value == pytest.approx(stats.entropy(probs), rel=1e-13, abs=1e-15)
    # Dropping the zeros must not change anything (0 log 0 = 0).
    assert value == ent.categorical(probs[probs > 0])


def test_categorical_one_hot_is_exactly_zero():
    assert ent.categorical(np.array([0.0, 0.0, 1.0, 0.0])) == 0.0


# --------------------------------------------------------------------------------------------------
# Poisson
# --------------------------------------------------------------------------------------------------

_SWITCH = 100.0  # kPoissonAsymptoticRate in entropy.hpp


def _poisson_k_range(rate: float) -> range:
    spread = 60.0 * math.sqrt(rate) + 100.0
    return range(max(0, int(rate - spread)), int(rate + spread) + 1)


@functools.cache
def _poisson_reference(rate: float) -> tuple[float, float]:
    """(−Σ p_k log p_k, Σ p_k log k!) by direct summation at 30 digits.

    k runs to λ + 60√λ + 100 (and from max(0, λ − 60√λ − 100)); the omitted tails are far below
    double precision.
    """
    with mpmath.workdps(30):
        lam = mpmath.mpf(rate)
        log_lam = mpmath.log(lam)
        h = mpmath.mpf(0)
        e_log_fact = mpmath.mpf(0)
        for k in _poisson_k_range(rate):
            log_fact = mpmath.loggamma(k + 1)
            log_p = k * log_lam - lam - log_fact
            p = mpmath.exp(log_p)
            h -= p * log_p
            e_log_fact += p * log_fact
        return float(h), float(e_log_fact)


def _asymptotic_error_bound(rate: float) -> float:
    """Honest bound on the error of the truncated asymptotic series used for rate ≥ 100.

    The omitted terms start at −9/(80 λ⁴) (≈ −1.125e-9 at λ = 100); the measured error at λ = 100 is
    1.16e-9 and at λ = 150 is 2.27e-10, i.e. ≈ 0.116/λ⁴, so 0.125/λ⁴ bounds it, plus 1e-12 for rounding.
    """
    return 0.125 / rate**4 + 1e-12


def test_poisson_reference_agrees_with_scipy_pmf():
    # Guard the mpmath reference itself against scipy's independent pmf (double precision, log-space).
    for rate in (0.5, 20.0, 150.0):
        k = np.arange(_poisson_k_range(rate).stop)
        log_p = stats.poisson.logpmf(k, rate)
        h = float(-np.sum(special.xlogy(np.exp(log_p), np.exp(log_p))))
        assert _poisson_reference(rate)[0] == pytest.approx(h, rel=1e-12)


def test_poisson_zero_rate():
    assert ent.poisson(0.0) == 0.0


@pytest.mark.parametrize("rate", [1e-12, 1e-3, 0.5, 1.0, 3.0, 19.9, 20.0, 50.0, 99.9, _SWITCH - 1e-9])
def test_poisson_series_region_matches_summation(rate):
    reference, _ = _poisson_reference(rate)
    assert ent.poisson(rate) == pytest.approx(reference, rel=1e-12, abs=0.0)


@pytest.mark.parametrize("rate", [100.0, 100.5, 150.0, 1000.0, 1e5])
def test_poisson_asymptotic_region_matches_summation(rate):
    reference, _ = _poisson_reference(rate)
    err = abs(ent.poisson(rate) - reference)
    assert err < 1e-8
    assert err < _asymptotic_error_bound(rate)


def test_poisson_continuity_across_switch():
    below = ent.poisson(_SWITCH - 1e-9)
    at = ent.poisson(_SWITCH)
    # The true entropy changes by ≈ 1e-9/(2·100) here, so the gap is the asymptotic series's error.
    assert abs(at - below) < 1e-8
    assert abs(at - below) < _asymptotic_error_bound(_SWITCH)


# --------------------------------------------------------------------------------------------------
# Poisson pseudo-entropy
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1e-6, 1e-3, 0.5, 1.0, 2.0, 3.0, 20.0, 150.0, 1e5])
def test_poisson_pseudo_is_legendre_form_of_log_partition(rate):
    # Natural parameter η = log λ, log-partition A(η) = e^η; A'(η) by numerical differentiation.
    with mpmath.workdps(40):
        eta = mpmath.log(mpmath.mpf(rate))
        a_prime = mpmath.diff(mpmath.exp, eta)
        reference = float(mpmath.exp(eta) - eta * a_prime)
    assert ent.poisson_pseudo(rate) == pytest.approx(reference, rel=1e-13, abs=1e-15)


def test_poisson_pseudo_zero_rate():
    assert ent.poisson_pseudo(0.0) == 0.0


@pytest.mark.parametrize("rate", [1e-3, 0.5, 3.0, 20.0, 50.0, 99.9, 1000.0])
def test_poisson_entropy_is_pseudo_plus_expected_log_factorial(rate):
    _, e_log_fact = _poisson_reference(rate)
    assert ent.poisson(rate) == pytest.approx(ent.poisson_pseudo(rate) + e_log_fact, abs=1e-10)
