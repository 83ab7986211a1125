"""``python -m entrosum demo``: fit each model on generated data and show that its ELBO equals the
entropy sum at convergence, term by term."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from .bernoulli_mixture import BernoulliMixture
from .gaussian_mixture import GaussianMixture
from .linear_gaussian import PPCA, FactorAnalysis
from .poisson_mixture import PoissonMixture

#: |F − S| / |F| below which the demo says the two agree.
AGREEMENT = 1e-6


def low_rank_data(n_samples: int, n_features: int, n_components: int, *, heteroscedastic: bool,
                  seed: int = 0) -> np.ndarray:
    """Data from x = W z + μ + ε: Gaussian z, per-feature (or equal) noise variances."""
    rng = np.random.default_rng(seed)
    components = rng.standard_normal((n_features, n_components))
    noise_sd = rng.uniform(0.2, 1.0, n_features) if heteroscedastic else np.full(n_features, 0.5)
    latent = rng.standard_normal((n_samples, n_components))
    noise = rng.standard_normal((n_samples, n_features)) * noise_sd
    return latent @ components.T + rng.standard_normal(n_features) + noise


def clustered_data(n_samples: int, n_features: int, n_components: int, seed: int = 2) -> np.ndarray:
    """Gaussian clusters with random centres, scales and correlations."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_components, n_features))
    mixing = [np.eye(n_features) + 0.3 * rng.standard_normal((n_features, n_features)) for _ in range(n_components)]
    labels = rng.integers(n_components, size=n_samples)
    noise = rng.standard_normal((n_samples, n_features))
    return np.stack([noise[i] @ mixing[k] for i, k in enumerate(labels)]) + centres[labels]


def binary_mixture_data(n_samples: int, n_features: int, n_components: int, seed: int = 0) -> np.ndarray:
    """Binary rows from a Bernoulli mixture whose components favour different features."""
    rng = np.random.default_rng(seed)
    probabilities = rng.uniform(0.05, 0.35, (n_components, n_features))
    for k in range(n_components):
        probabilities[k, k::n_components] += 0.55
    labels = rng.choice(n_components, size=n_samples, p=rng.dirichlet(np.full(n_components, 5.0)))
    return (rng.random((n_samples, n_features)) < probabilities[labels]).astype(np.float64)


def count_mixture_data(n_samples: int, n_features: int, n_components: int, seed: int = 0) -> np.ndarray:
    """Count rows from a Poisson mixture with rates between 0.5 and 20."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.5, 20.0, (n_components, n_features))
    labels = rng.choice(n_components, size=n_samples, p=rng.dirichlet(np.full(n_components, 5.0)))
    return rng.poisson(rates[labels]).astype(np.float64)


def _models() -> list[tuple[str, Callable[[], Any], np.ndarray]]:
    isotropic = low_rank_data(20_000, 20, 4, heteroscedastic=False)
    heteroscedastic = low_rank_data(20_000, 20, 4, heteroscedastic=True, seed=1)
    binary = binary_mixture_data(20_000, 30, 4, seed=2)
    counts = count_mixture_data(20_000, 8, 3, seed=3)
    clusters = clustered_data(5_000, 5, 4)

    def mixture(kind: str) -> Callable[[], Any]:
        # reg_covar=0: with it the M-step is exact and F = S holds (reg_covar > 0 leaves a gap of its order)
        return lambda: GaussianMixture(4, covariance_type=kind, reg_covar=0.0, tol=None, gap_tol=1e-9,
                                       max_iter=5_000, random_state=0)

    return [
        *[(f"GaussianMixture {kind}", mixture(kind), clusters) for kind in ("full", "tied", "diag", "spherical")],
        ("PPCA (closed form)", lambda: PPCA(4, solver="closed_form"), isotropic),
        ("PPCA (EM)", lambda: PPCA(4, solver="em", tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), isotropic),
        ("FactorAnalysis (EM)",
         lambda: FactorAnalysis(4, tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), heteroscedastic),
        ("BernoulliMixture (EM)",
         lambda: BernoulliMixture(4, tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), binary),
        ("PoissonMixture (EM)",
         lambda: PoissonMixture(3, tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), counts),
    ]


def run(print_reports: bool = False) -> list[dict]:
    """Fit every model, print a table of the ELBO, the entropy sum, its terms and the gap."""
    rows = []
    header = (f"{'model':27s}{'iters':>6s}{'ELBO F':>14s}{'entropy sum S':>15s}{'H[q]':>11s}"
              f"{'H[prior]':>11s}{'E H[p(x|z)]':>13s}{'log h(x)':>11s}{'gap F-S':>11s}{'log-lik':>13s}  agree  time")
    print("Each model's ELBO per sample and its entropy-sum form (nats), on generated data:")
    print(header)
    print("-" * len(header))
    for name, make, data in _models():
        start = time.perf_counter()
        model = make().fit(data)
        seconds = time.perf_counter() - start
        m = model.monitor_
        last = {key: values[-1] for key, values in m.history.items()}
        agree = abs(last["gap"]) <= AGREEMENT * abs(last["elbo"])
        log_likelihood = model.score(data)
        print(f"{name:27s}{m.n_iter:6d}{last['elbo']:14.6f}{last['entropy_sum']:15.6f}"
              f"{last['posterior_entropy']:11.4f}{last['prior_entropy']:11.4f}{last['observable_entropy']:13.4f}"
              f"{last['data_term']:11.4f}{last['gap']:11.1e}{log_likelihood:13.6f}  {'yes' if agree else 'NO ':5s}"
              f"{seconds:6.2f}s")
        rows.append({"model": name, "agree": agree, **last, "log_likelihood": log_likelihood})
        if print_reports:
            print(m.report())
    print("\nF = S holds at convergence (Lücke & Warnken): the ELBO is a sum of entropies, S = H[q] − H[prior] − "
          "E H[p(x|z)] + log h(x)\n(the Poisson factor uses the pseudo-entropy λ − λ log λ and the data term "
          "(1/N) Σ log h(x) = −(1/N) Σ log x!).")
    return rows
