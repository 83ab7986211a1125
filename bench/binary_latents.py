"""Benchmark: binary sparse coding by entrosum against a vectorised numpy implementation of the same EM.

Run from the repository root::

    python bench/binary_latents.py [--quick]

Data: the bars of tests/test_binary_sparse_coding.py scaled up (side × side images, 2·side bars each on with
probability 2/H, bar value 1, noise sd 0.3), float64. Both implementations run in this process, one thread
(entrosum n_jobs=1; numpy's BLAS limited to one thread through threadpoolctl when installed), timed by process
CPU time (time.process_time) next to wall time, so other jobs on the machine inflate neither ratio much.

- exact E-step, H = 8, 10, 12 (2^H states): entrosum's time per EM iteration (fit with tol=None, max_iter=K,
  divided by K) against numpy's (the same E-step as two GEMMs and a log-sum-exp over all 2^H states, and the
  same closed-form M-step); the %GEMM of entrosum's iteration is the flops of its matrix products
  (2·N·2^H·H twice, for the log-joints and for E[z]) over numpy's measured double-precision GEMM rate on one
  thread.
- sigmoid belief net, exact E-step, H = 8, 10: entrosum's time per EM iteration against numpy's (the log-joints
  as one product over all 2^H states, and Newton's method per observed dimension, vectorised over dimensions, to
  the same stopping rule as entrosum's M-step: half the Newton decrement below 1e-10 per sample).
- truncated E-step, H = 16, S = 8, 16, 32, 64: entrosum's time per iteration (the numpy reference of the
  truncated E-step would be a Python loop per data point; it is not a fair peer, so only entrosum is timed, to
  show how the time grows with S); the same for the sigmoid belief net at S = 8 and 32.

TVO (the Lücke group's PyTorch package) is not on this machine's package index; it is not compared.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings

import numpy as np
from scipy.special import logsumexp

import entrosum


def bars(n_samples: int, side: int, p: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    patterns = []
    for i in range(side):
        horizontal = np.zeros((side, side))
        horizontal[i] = 1
        patterns += [horizontal.ravel(), horizontal.T.ravel()]
    W = np.array(patterns)
    Z = (rng.random((n_samples, len(W))) < p).astype(float)
    return Z @ W + 0.3 * rng.standard_normal((n_samples, side * side))


def numpy_em_iteration(X: np.ndarray, S: np.ndarray, params: dict) -> dict:
    """One exact EM iteration of binary sparse coding, vectorised over data points and states."""
    W, b, noise, prior = params["W"], params["b"], params["noise"], params["prior"]
    D = X.shape[1]
    centred = X - b
    quadratic = np.einsum("sh,hk,sk->s", S, W.T @ W, S)
    log_joint = (centred @ W @ S.T - 0.5 * quadratic) / noise - 0.5 * (centred ** 2).sum(1, keepdims=True) / noise
    log_joint += S @ np.log(prior / (1 - prior)) + np.log1p(-prior).sum() - 0.5 * D * np.log(2 * np.pi * noise)
    log_norm = logsumexp(log_joint, axis=1, keepdims=True)
    q = np.exp(log_joint - log_norm)
    means = q @ S
    Se = np.hstack([S, np.ones((S.shape[0], 1))])
    second = Se.T @ (q.sum(0)[:, None] * Se)
    cross = X.T @ np.hstack([means, np.ones((X.shape[0], 1))])
    extended = np.linalg.solve(second, cross.T).T
    residual = (X ** 2).sum() - 2 * (extended * cross).sum() + ((extended.T @ extended) * second).sum()
    return {"W": extended[:, :-1], "b": extended[:, -1], "noise": residual / X.size, "prior": means.mean(0),
            "elbo": float(log_norm.mean())}


def sbn_bars(n_samples: int, side: int, p: float, seed: int = 0) -> np.ndarray:
    """Binary bars: a pixel is on with probability S(8·[a bar through it is on] − 4)."""
    rng = np.random.default_rng(seed)
    lines = np.zeros((2 * side, side, side))
    for i in range(side):
        lines[i, i, :] = lines[side + i, :, i] = 1.0
    active = ((rng.random((n_samples, 2 * side)) < p) @ lines.reshape(2 * side, -1)) > 0
    return (rng.random(active.shape) < 1.0 / (1.0 + np.exp(-(8.0 * active - 4.0)))).astype(float)


def numpy_sbn_iteration(X: np.ndarray, S: np.ndarray, params: dict, tol: float = 1e-10) -> dict:
    """One exact EM iteration of a sigmoid belief net: E-step over all states, Newton per observed dimension."""
    W, b, prior = params["W"], params["b"], params["prior"]
    n = X.shape[0]
    activation = S @ W.T + b                                                      # (m, D)
    log_joint = X @ activation.T - np.logaddexp(0.0, activation).sum(1) + S @ np.log(prior / (1 - prior)) \
        + np.log1p(-prior).sum()
    log_norm = logsumexp(log_joint, axis=1, keepdims=True)
    q = np.exp(log_joint - log_norm)
    weight, target = q.sum(0), q.T @ X                                            # Σ_n q(s), Σ_n q(s) x_n
    Se = np.hstack([S, np.ones((S.shape[0], 1))])
    theta = np.hstack([W, b[:, None]])                                            # (D, H+1)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(Se @ theta.T)))                                 # (m, D)
        gradient = Se.T @ (target - weight[:, None] * p)                          # (H+1, D)
        curvature = np.einsum("sk,sd,sl->dkl", Se, weight[:, None] * p * (1 - p), Se)
        step = np.linalg.solve(curvature, gradient.T[:, :, None])[:, :, 0]         # (D, H+1)
        theta = theta + step
        if 0.5 * np.einsum("dk,kd->", step, gradient) <= tol * n:
            break
    return {"W": theta[:, :-1], "b": theta[:, -1], "prior": np.clip((q @ S).mean(0), 1e-12, 1 - 1e-12),
            "elbo": float(log_norm.mean())}


def gemm_rate() -> float:
    """Double-precision GEMM flops per CPU second on this thread (512 × 512 products)."""
    a = np.random.default_rng(0).standard_normal((512, 512))
    a @ a
    start, repeats = time.process_time(), 20
    for _ in range(repeats):
        a @ a
    return 2 * 512 ** 3 * repeats / (time.process_time() - start)


def timed(call) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 2,000 instead of 10,000, fewer iterations")
    args = parser.parse_args()
    n_samples, iterations = (2000, 3) if args.quick else (10000, 5)
    limits = contextlib.nullcontext()
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
    warnings.simplefilter("ignore")  # the timed fits stop at max_iter on purpose
    with limits:
        # warm-up: the first fit imports what its warnings and monitor need, which is not EM time
        entrosum.BinarySparseCoding(2, tol=None, max_iter=1, n_jobs=1).fit(bars(50, 2, 0.5))
        rate = gemm_rate()
        print(f"numpy GEMM, one thread: {rate / 1e9:.1f} GFLOP/s (process CPU time); N = {n_samples}")
        print("exact posterior: CPU seconds per EM iteration")
        print(f"{'H':>3} {'states':>7} {'entrosum':>9} {'numpy':>9} {'ratio':>6} {'%GEMM':>6} {'wall entrosum':>14}")
        for H in (8, 10, 12):
            X = bars(n_samples, H // 2, 2.0 / H)
            model = entrosum.BinarySparseCoding(H, tol=None, max_iter=iterations, random_state=0, n_jobs=1)
            _, wall, cpu = timed(lambda model=model, X=X: model.fit(X))
            S = ((np.arange(2 ** H)[:, None] >> np.arange(H)) & 1).astype(float)
            rng = np.random.default_rng(0)
            params = {"W": rng.standard_normal((X.shape[1], H)) * X.std(), "b": X.mean(0), "noise": X.var(),
                      "prior": np.full(H, 0.3)}

            def numpy_fit(params=params, X=X, S=S):
                for _ in range(iterations):
                    params = numpy_em_iteration(X, S, params)
                return params

            _, _, numpy_cpu = timed(numpy_fit)
            per, numpy_per = cpu / iterations, numpy_cpu / iterations
            flops = 2 * 2 * n_samples * 2 ** H * H
            print(f"{H:>3} {2 ** H:>7} {per:>9.4f} {numpy_per:>9.4f} {numpy_per / per:>6.1f} "
                  f"{100 * flops / per / rate:>6.1f} {wall / iterations:>14.4f}")
        print("sigmoid belief net, exact posterior: CPU seconds per EM iteration")
        print(f"{'H':>3} {'states':>7} {'entrosum':>9} {'numpy':>9} {'ratio':>6} {'wall entrosum':>14}")
        for H in (8, 10):
            X = sbn_bars(n_samples, H // 2, 2.0 / H)
            model = entrosum.SigmoidBeliefNet(H, tol=None, max_iter=iterations, random_state=0, n_jobs=1)
            _, wall, cpu = timed(lambda model=model, X=X: model.fit(X))
            S = ((np.arange(2 ** H)[:, None] >> np.arange(H)) & 1).astype(float)
            rng = np.random.default_rng(0)
            mean = np.clip(X.mean(0), 0.01, 0.99)
            params = {"W": np.abs(rng.standard_normal((X.shape[1], H))) * 0.5, "b": np.log(mean / (1 - mean)),
                      "prior": np.full(H, 0.1)}

            def numpy_sbn_fit(params=params, X=X, S=S):
                for _ in range(iterations):
                    params = numpy_sbn_iteration(X, S, params)
                return params

            _, _, numpy_cpu = timed(numpy_sbn_fit)
            per, numpy_per = cpu / iterations, numpy_cpu / iterations
            print(f"{H:>3} {2 ** H:>7} {per:>9.4f} {numpy_per:>9.4f} {numpy_per / per:>6.1f} "
                  f"{wall / iterations:>14.4f}")
        print("truncated posterior, H = 16: CPU seconds per EM iteration")
        X = bars(n_samples, 8, 2.0 / 16)
        for S_count in (8, 16, 32, 64):
            model = entrosum.BinarySparseCoding(16, posterior="truncated", n_states=S_count, tol=None,
                                                max_iter=iterations, random_state=0, n_jobs=1)
            _, wall, cpu = timed(lambda model=model: model.fit(X))
            print(f"  S = {S_count:>3}: {cpu / iterations:.4f} (wall {wall / iterations:.4f})")
        print("sigmoid belief net, truncated posterior, H = 16: CPU seconds per EM iteration")
        X = sbn_bars(n_samples, 8, 2.0 / 16)
        for S_count in (8, 32):
            model = entrosum.SigmoidBeliefNet(16, posterior="truncated", n_states=S_count, tol=None,
                                              max_iter=iterations, random_state=0, n_jobs=1)
            _, wall, cpu = timed(lambda model=model: model.fit(X))
            print(f"  S = {S_count:>3}: {cpu / iterations:.4f} (wall {wall / iterations:.4f})")


if __name__ == "__main__":
    main()
