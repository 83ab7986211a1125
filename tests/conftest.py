"""Shared data for the tests: low-rank plus noise, generated with fixed seeds."""

from __future__ import annotations

import os

# scikit-learn's check_array_api_input (tests/test_sklearn_checks.py) runs only when SciPy's array API mode is on,
# which must be chosen before SciPy is first imported: here, before any test module.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest


def low_rank(n_samples: int, n_features: int, n_components: int, *, noise_sd: float | np.ndarray = 0.5,
             offset: float = 0.0, seed: int = 0) -> np.ndarray:
    """x = W z + μ + ε with Gaussian z and ε."""
    rng = np.random.default_rng(seed)
    components = rng.standard_normal((n_features, n_components))
    mean = offset + rng.standard_normal(n_features)
    latent = rng.standard_normal((n_samples, n_components))
    return latent @ components.T + mean + rng.standard_normal((n_samples, n_features)) * noise_sd


@pytest.fixture(scope="session")
def isotropic_data() -> np.ndarray:
    """(4000, 12) with a 3-dimensional signal and equal noise variances."""
    return low_rank(4000, 12, 3, noise_sd=0.5, seed=1)


@pytest.fixture(scope="session")
def heteroscedastic_data() -> np.ndarray:
    """(4000, 12) with a 3-dimensional signal and per-feature noise variances."""
    noise_sd = np.random.default_rng(7).uniform(0.2, 1.2, 12)
    return low_rank(4000, 12, 3, noise_sd=noise_sd, seed=2)


def gaussian_log_likelihood(X: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> float:
    """Mean log N(x; mean, covariance), computed directly from a Cholesky factor (the test's own reference)."""
    X = np.asarray(X, dtype=np.float64)
    factor = np.linalg.cholesky(covariance)
    whitened = np.linalg.solve(factor, (X - mean).T)
    log_det = 2.0 * np.log(np.diag(factor)).sum()
    d = X.shape[1]
    return float(np.mean(-0.5 * (d * np.log(2 * np.pi) + log_det + (whitened**2).sum(axis=0))))


def bernoulli_mixture_data(n_samples: int, weights: np.ndarray, probabilities: np.ndarray, *,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary rows from a Bernoulli mixture, and their components."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n_samples, p=weights)
    return (rng.random((n_samples, probabilities.shape[1])) < probabilities[labels]).astype(np.float64), labels


def poisson_mixture_data(n_samples: int, weights: np.ndarray, rates: np.ndarray, *,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Count rows from a Poisson mixture, and their components."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n_samples, p=weights)
    return rng.poisson(rates[labels]).astype(np.float64), labels


def binomial_mixture_data(n_samples: int, weights: np.ndarray, probabilities: np.ndarray, n_trials: np.ndarray, *,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Count rows from a binomial mixture with n_trials[d] trials in column d, and their components."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n_samples, p=weights)
    return rng.binomial(np.asarray(n_trials, dtype=np.int64), probabilities[labels]).astype(np.float64), labels


def exponential_mixture_data(n_samples: int, weights: np.ndarray, means: np.ndarray, *,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positive rows from an exponential mixture of the given means, and their components."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n_samples, p=weights)
    return rng.exponential(means[labels]), labels


def match_components(estimated_means: np.ndarray, true_means: np.ndarray) -> np.ndarray:
    """The permutation p with estimated component p[k] closest to true component k (smallest total distance)."""
    from itertools import permutations

    n = true_means.shape[0]
    return np.array(min(permutations(range(n)),
                        key=lambda p: sum(np.abs(estimated_means[p[k]] - true_means[k]).sum() for k in range(n))))


#: The column families of the MixedMixture case of model_cases, in the command line's form.
MIXED_FAMILIES = "gaussian=0,1;poisson=2,3;binomial=4;categorical=5;gamma=6"


def model_cases(dtype=np.float64) -> dict:
    """One small (estimator, data) pair per registered model family and setting, for tests that run the same
    check on every model (saving, the command line, interruption, out-of-core fits)."""
    import entrosum

    clusters = np.concatenate([np.random.default_rng(3).normal(centre, 1.0, (150, 4)) for centre in (-4, 0, 4)])
    binary, _ = bernoulli_mixture_data(400, np.array([0.5, 0.5]), np.array([[0.9, 0.8, 0.1, 0.2, 0.7],
                                                                               [0.1, 0.3, 0.9, 0.8, 0.2]]), seed=4)
    counts, _ = poisson_mixture_data(400, np.array([0.4, 0.6]), np.array([[1.0, 8.0, 3.0], [9.0, 0.5, 4.0]]),
                                     seed=5)
    trials, _ = binomial_mixture_data(400, np.array([0.5, 0.5]), np.array([[0.8, 0.2, 0.5], [0.1, 0.7, 0.9]]),
                                      np.array([10, 20, 5]), seed=8)
    positive, _ = exponential_mixture_data(400, np.array([0.5, 0.5]), np.array([[0.5, 5.0, 1.0], [6.0, 0.3, 1.0]]),
                                           seed=9)
    # a column or two of each: Gaussian, Poisson, binomial (5 trials), categorical codes 0..2, gamma
    mixed = np.column_stack([clusters[::3][:, :2], counts[:150, :2], trials[:150, 2], binary[:150, 0] + binary[:150, 1],
                             positive[:150, :1]])
    linear = low_rank(400, 6, 2, noise_sd=np.linspace(0.3, 0.9, 6), seed=6)
    rng = np.random.default_rng(7)
    atoms = rng.standard_normal((6, 3))
    atoms /= np.linalg.norm(atoms, axis=0)
    sparse = rng.laplace(size=(300, 3)) @ atoms.T + 0.3 * rng.standard_normal((300, 6))
    cases = {
        **{f"gmm_{kind}": (lambda kind=kind: entrosum.GaussianMixture(3, covariance_type=kind, random_state=0),
                           clusters) for kind in ("full", "tied", "diag", "spherical", "tied_diag", "tied_spherical")},
        "bernoulli": (lambda: entrosum.BernoulliMixture(2, alpha=0.5, random_state=0), binary),
        "poisson": (lambda: entrosum.PoissonMixture(2, random_state=0), counts),
        "binomial": (lambda: entrosum.BinomialMixture(2, n_trials=20, random_state=0), trials),
        "exponential": (lambda: entrosum.ExponentialMixture(2, random_state=0), positive),
        "gamma": (lambda: entrosum.GammaMixture(2, random_state=0), positive),
        "mixed": (lambda: entrosum.MixedMixture(2, MIXED_FAMILIES, n_trials=5, random_state=0), mixed),
        "multinomial": (lambda: entrosum.MultinomialMixture(2, random_state=0), counts),
        "categorical": (lambda: entrosum.CategoricalMixture(2, random_state=0), np.minimum(counts, 5.0)),
        "ppca": (lambda: entrosum.PPCA(2), linear),
        "ppca_em": (lambda: entrosum.PPCA(2, solver="em", random_state=0), linear),
        "fa": (lambda: entrosum.FactorAnalysis(2, random_state=0), linear),
        "sparse": (lambda: entrosum.SparseCoding(3, tol=1e-6, random_state=0), sparse),
        "linear_vae": (lambda: entrosum.LinearVAE(2, random_state=0), linear),
    }
    return {name: (make, data.astype(dtype)) for name, (make, data) in cases.items()}
