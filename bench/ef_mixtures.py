"""Benchmark: exponential-family mixtures by entrosum against pomegranate's GeneralMixtureModel.

Run from the repository root::

    python bench/ef_mixtures.py [--quick] [--n N] [--iterations I]

pomegranate (1.x, on PyTorch) is the peer the issue names; install it beside torch 2.13.0 (the CPU build this
machine's package index serves) with ``pip install torch==2.13.0 pomegranate``. Without it the script says so and
times entrosum alone.

For each family the data are a generated mixture of K = 8 components over D = 20 features with N rows (100,000;
20,000 with --quick). Both libraries run one thread (entrosum ``n_jobs=1``; ``torch.set_num_threads(1)``) on the
same array, in float64 and in float32 (pomegranate computes in the data's dtype). The time per EM iteration is
(fit with I iterations − fit with 1 iteration) / (I − 1), by process CPU time and by wall time, so each library's
initialisation is left out; each figure is the best of three such pairs. The ratio is pomegranate's time over
entrosum's (above 1: entrosum is faster). Families that this version of entrosum does not have are skipped.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import entrosum

K, D = 8, 20
#: The families timed, in order ("mixed": a table of Gaussian, categorical, Poisson and gamma columns).
FAMILIES = ["bernoulli", "poisson", "exponential", "gamma", "gaussian", "categorical", "mixed"]
#: Levels of every categorical column.
LEVELS = 5
#: The mixed table's columns: five of each family, in this order.
MIXED_FAMILIES = {"gaussian": list(range(0, 5)), "categorical": list(range(5, 10)), "poisson": list(range(10, 15)),
                  "gamma": list(range(15, 20))}


def categorical_codes(rng: np.random.Generator, labels: np.ndarray, columns: int) -> np.ndarray:
    """Integer codes 0..LEVELS−1 of `columns` columns: each component's level probabilities from a Dirichlet(1)."""
    probabilities = rng.dirichlet(np.ones(LEVELS), size=(K, columns))  # (K, columns, LEVELS)
    cumulative = probabilities.cumsum(axis=2)[labels]  # (n, columns, LEVELS)
    return (rng.random((labels.size, columns, 1)) > cumulative).sum(axis=2).clip(0, LEVELS - 1).astype(np.float64)


def generated(family: str, n: int, seed: int = 0) -> np.ndarray:
    """n rows of a K-component mixture of the family over D features, well separated."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    if family == "bernoulli":
        return (rng.random((n, D)) < rng.uniform(0.05, 0.95, (K, D))[labels]).astype(np.float64)
    if family == "poisson":
        return rng.poisson(rng.uniform(0.5, 20.0, (K, D))[labels]).astype(np.float64)
    if family == "exponential":
        return rng.exponential(rng.uniform(0.2, 5.0, (K, D))[labels])
    if family == "gamma":
        return rng.gamma(rng.uniform(1.0, 8.0, (K, D))[labels], rng.uniform(0.2, 2.0, (K, D))[labels])
    if family == "gaussian":
        return rng.normal(rng.normal(0.0, 3.0, (K, D))[labels], rng.uniform(0.5, 2.0, (K, D))[labels])
    if family == "categorical":
        return categorical_codes(rng, labels, D)
    if family == "mixed":
        return np.hstack([rng.normal(rng.normal(0.0, 3.0, (K, 5))[labels], rng.uniform(0.5, 2.0, (K, 5))[labels]),
                          categorical_codes(rng, labels, 5),
                          rng.poisson(rng.uniform(0.5, 20.0, (K, 5))[labels]).astype(np.float64),
                          rng.gamma(rng.uniform(1.0, 8.0, (K, 5))[labels], rng.uniform(0.2, 2.0, (K, 5))[labels])])
    raise ValueError(family)


def entrosum_model(family: str, iterations: int) -> Any:
    """The entrosum estimator of the family, or None when this version lacks it."""
    common = dict(tol=None, max_iter=iterations, n_jobs=1, random_state=0)
    if family == "gaussian":
        return entrosum.GaussianMixture(K, covariance_type="diag", reg_covar=1e-6, init_params="random_from_data",
                                        **common)
    name = {"bernoulli": "BernoulliMixture", "poisson": "PoissonMixture", "exponential": "ExponentialMixture",
            "gamma": "GammaMixture", "categorical": "CategoricalMixture", "mixed": "MixedMixture"}[family]
    cls = getattr(entrosum, name, None)
    if cls is None:
        return None
    if family == "categorical":
        return cls(K, n_levels=LEVELS, init_params="random_from_data", **common)
    if family == "mixed":
        return cls(K, families=MIXED_FAMILIES, n_levels=LEVELS, reg_covar=1e-6, init_params="random_from_data",
                   **common)
    return cls(K, init_params="random_from_data", **common)


def pomegranate_model(family: str, iterations: int, dtype: np.dtype) -> Any:
    """pomegranate's mixture of K product distributions of the family (its own random initialisation)."""
    from pomegranate import distributions
    from pomegranate.gmm import GeneralMixtureModel

    class FloatCodes(distributions.Categorical):  # type: ignore[misc]
        """pomegranate's Categorical on codes held as floats (a table's one tensor has one dtype)."""

        def log_probability(self, X: Any) -> Any:
            return super().log_probability(X.long())

        def summarize(self, X: Any, sample_weight: Any = None) -> Any:
            return super().summarize(X.long(), sample_weight=sample_weight)

    def mixed() -> Any:
        # one distribution per column, in MIXED_FAMILIES' order
        return distributions.IndependentComponents(
            [distributions.Normal(covariance_type="diag") for _ in range(5)]
            + [FloatCodes(n_categories=LEVELS) for _ in range(5)]
            + [distributions.Poisson() for _ in range(5)] + [distributions.Gamma() for _ in range(5)])

    make: Callable[[], Any] = {
        "bernoulli": distributions.Bernoulli, "poisson": distributions.Poisson,
        "exponential": distributions.Exponential, "gamma": distributions.Gamma,
        "gaussian": lambda: distributions.Normal(covariance_type="diag"),
        "categorical": lambda: distributions.Categorical(n_categories=LEVELS), "mixed": mixed,
    }[family]
    # tol=-inf: exactly max_iter iterations, as entrosum's tol=None
    return GeneralMixtureModel([make() for _ in range(K)], max_iter=iterations, tol=-np.inf, random_state=0)


def per_iteration(fit: Callable[[int], Any], iterations: int) -> tuple[float, float]:
    """(CPU, wall) seconds per iteration: the best of three (I-iteration fit − 1-iteration fit) / (I − 1)."""
    fit(2)  # warm-up: imports, allocations and torch's first calls are not EM time
    best_cpu = best_wall = np.inf
    for _ in range(3):
        times = []
        for count in (1, iterations):
            wall, cpu = time.perf_counter(), time.process_time()
            fit(count)
            times.append((time.process_time() - cpu, time.perf_counter() - wall))
        best_cpu = min(best_cpu, (times[1][0] - times[0][0]) / (iterations - 1))
        best_wall = min(best_wall, (times[1][1] - times[0][1]) / (iterations - 1))
    return best_cpu, best_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 20,000 instead of 100,000")
    parser.add_argument("--n", type=int, default=None, help="rows per data set")
    parser.add_argument("--iterations", type=int, default=11, help="EM iterations of the longer timed fit")
    parser.add_argument("--only", nargs="+", choices=FAMILIES, default=FAMILIES, help="the families to time")
    args = parser.parse_args()
    n = args.n or (20_000 if args.quick else 100_000)
    warnings.simplefilter("ignore")  # fixed iteration counts: convergence warnings on purpose
    try:
        import torch

        torch.set_num_threads(1)
        import pomegranate  # noqa: F401

        have_peer = True
    except ImportError:
        have_peer = False
        print("pomegranate is not installed (pip install torch==2.13.0 pomegranate): timing entrosum alone")
    print(f"per EM iteration, {n:,} rows x {D} features, K = {K}, one thread; CPU seconds (wall in brackets)")
    print(f"{'family':12s} {'dtype':8s} {'entrosum':>20s} {'pomegranate':>20s} {'ratio':>7s}")
    for family in args.only:
        if entrosum_model(family, 2) is None:
            print(f"{family:12s} (not in this version of entrosum)")
            continue
        for dtype in (np.float64, np.float32):
            X = generated(family, n).astype(dtype)
            mine = per_iteration(lambda count, X=X, family=family: entrosum_model(family, count).fit(X),
                                 args.iterations)
            peer = (np.nan, np.nan)
            if have_peer and family == "categorical":  # pomegranate takes codes as integers
                tensor = torch.from_numpy(X.astype(np.int64))
                peer = per_iteration(lambda count, tensor=tensor, dtype=dtype, family=family: pomegranate_model(
                    family, count, dtype).fit(tensor), args.iterations)
            elif have_peer:
                tensor = torch.from_numpy(X)
                peer = per_iteration(lambda count, tensor=tensor, dtype=dtype, family=family: pomegranate_model(
                    family, count, dtype).fit(tensor), args.iterations)
            ratio = peer[0] / mine[0]
            print(f"{family:12s} {np.dtype(dtype).name:8s} {mine[0]:>10.4f} ({mine[1]:.4f}) {peer[0]:>10.4f} "
                  f"({peer[1]:.4f}) {ratio:>6.1f}x")


if __name__ == "__main__":
    main()
