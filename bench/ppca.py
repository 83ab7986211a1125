"""Benchmark: entrosum PPCA / FactorAnalysis against scikit-learn PCA / FactorAnalysis.

Run from the repository root (entrosum must be installed)::

    python bench/ppca.py [--quick] [--repeat K] [--lapack] [--models PPCA,FA]

    --quick     divide every N by 10 (a smoke run of a few minutes)
    --repeat K  best-of-K fit time per fit (default 1); memory is the largest of the K fits
    --lapack    also run scikit-learn FactorAnalysis with svd_method='lapack' (slow, optional)
    --models    run only PPCA or only FA (default both; sklearn FA dominates the run time)

The full default run takes about 25 minutes on a 2-core machine, almost all of it scikit-learn
FactorAnalysis (13 minutes for one 1e6 x 100 fit); --quick about 4 minutes. Timings on a shared
machine can show one-off stalls of many seconds: use --repeat 3 for the PPCA pair.

Data: low rank plus heteroscedastic noise, x = W z + mu + eps with z ~ N(0, I_H) and
eps ~ N(0, diag(psi)), psi differing per feature (so factor analysis fits better than PPCA). Each
configuration is generated from a fixed seed, chunk by chunk in float64 straight into a preallocated
array of the target dtype, so every worker process sees identical data.

Configurations: N=1,000,000 x D=100, H=10 and N=100,000 x D=784, H=50, each in float64 and float32.
Pairs: entrosum.PPCA() (default solver 'auto' -> closed form) vs sklearn PCA(n_components=H) (default
svd_solver 'auto'); entrosum.FactorAnalysis(tol=1e-6, max_iter=10000) vs sklearn FactorAnalysis
(defaults: tol=1e-2, svd_method='randomized').

Every fit runs in a fresh subprocess (this script re-invoked with a hidden ``--worker`` argument),
which generates the data itself, times ``fit`` only with time.perf_counter, measures the fit's peak
resident memory beyond the data, and scores the fitted model with its own library's ``score`` (mean
per-sample log-likelihood) on the same float64 X (float32 data are cast outside the timed region).

Printed (stdout): a header with the machine (CPU, cores, load, numpy GEMM GFLOP/s in float64 and
float32, BLAS threading from threadpoolctl, entrosum thread count), then one table with, per config,
dtype and model: entrosum fit time, peer fit time, ratio peer/entrosum (speed-up), both mean
log-likelihoods and their difference (entrosum - peer), both peak extra memories, entrosum iterations
(and the peer's), and whether the goals are met:
PPCA >= 3x faster than PCA at equal log-likelihood; FA >= 5x faster than sklearn FA at a log-likelihood
no lower. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from _common import (
    add_worker_option,
    blas_threads,
    build_note,
    entrosum_build,
    fill_in_chunks,
    log,
    measure,
    memory_note,
    print_footer,
    print_machine_header,
    print_table,
    run_as_worker,
    run_worker,
)

# (label, N, D, H)
CONFIGS = [("1e6x100", 1_000_000, 100, 10), ("1e5x784", 100_000, 784, 50)]
DTYPES = ("float64", "float32")
SEED = 20240601

# Goals (DESIGN.md §6 / the speed issue).
PPCA_SPEEDUP_GOAL = 3.0
FA_SPEEDUP_GOAL = 5.0
# "Equal" / "no lower" log-likelihood, in nats per sample: a tolerance for round-off (float32 fits).
EQUAL_LOGLIK_TOL = 1e-3
NO_LOWER_LOGLIK_TOL = 1e-4

FA_TOL = 1e-6
FA_MAX_ITER = 10_000


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def make_data(n_samples: int, n_features: int, n_components: int, dtype: str, seed: int) -> np.ndarray:
    """x = W z + mu + eps with heteroscedastic noise; generated in ~8 MiB float64 chunks."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_features, n_components))
    mu = rng.uniform(-3.0, 3.0, n_features)
    noise_sd = rng.uniform(0.2, 2.0, n_features)  # psi = noise_sd**2 spans a factor 100

    def chunk(n: int) -> np.ndarray:
        rows = rng.standard_normal((n, n_components)) @ W.T
        rows += mu
        rows += rng.standard_normal((n, n_features)) * noise_sd
        return rows

    return fill_in_chunks(n_samples, n_features, dtype, chunk)


# ----------------------------------------------------------------------------------------------
# Worker: one (library, model, config, dtype) fit in a fresh process (bench/_common.py)
# ----------------------------------------------------------------------------------------------

def _make_estimator(lib: str, model: str, n_components: int, svd_method: str):
    if lib == "entrosum":
        import entrosum
        if model == "PPCA":
            return entrosum.PPCA(n_components, n_jobs=-1)
        return entrosum.FactorAnalysis(n_components, tol=FA_TOL, max_iter=FA_MAX_ITER, random_state=0,
                                       n_jobs=-1)
    from sklearn.decomposition import PCA, FactorAnalysis
    if model == "PPCA":
        return PCA(n_components=n_components)
    return FactorAnalysis(n_components=n_components, svd_method=svd_method, random_state=0)


def worker(spec: dict) -> dict:
    # Import the library under test (only that one) before anything is measured.
    if spec["lib"] == "entrosum":
        import entrosum  # noqa: F401
    else:
        import sklearn.decomposition  # noqa: F401

    X = make_data(spec["N"], spec["D"], spec["H"], spec["dtype"], spec["seed"])
    runs = []
    estimator = None
    for _ in range(spec["repeat"]):
        estimator = _make_estimator(spec["lib"], spec["model"], spec["H"], spec["svd_method"])
        runs.append(measure(lambda est=estimator: est.fit(X))[1])
    X64 = X if X.dtype == np.float64 else X.astype(np.float64)  # scoring only, outside the timing
    score = float(estimator.score(X64))
    n_iter = getattr(estimator, "n_iter_", None)
    times = [run["time"] for run in runs]
    return {
        "time": min(times), "times": times, "score": score,
        "mem_extra_mib": max(run["mem_extra_mib"] for run in runs),
        "n_iter": None if n_iter is None else int(n_iter),
        "converged": getattr(estimator, "converged_", None),
        "svd_solver": getattr(estimator, "_fit_svd_solver", None),
        "hwm_reset": runs[-1]["hwm_reset"], "hwm_slack_mib": runs[-1]["hwm_slack_mib"],
        "blas_threads": blas_threads(), "data_mib": X.nbytes / 2**20, "loadavg": os.getloadavg()[0],
        "entrosum_build": entrosum_build() if spec["lib"] == "entrosum" else None,
    }


# ----------------------------------------------------------------------------------------------
# Header
# ----------------------------------------------------------------------------------------------

def print_header(args) -> None:
    import sklearn.decomposition  # noqa: F401  (loads sklearn's OpenMP runtime, if any)

    print_machine_header("entrosum PPCA / FactorAnalysis vs scikit-learn PCA / FactorAnalysis", args.quick)
    print("# entrosum.PPCA(H, n_jobs=-1) [solver auto]   vs  sklearn PCA(n_components=H) [svd_solver auto]")
    print(f"# entrosum.FactorAnalysis(H, tol={FA_TOL:g}, max_iter={FA_MAX_ITER}, n_jobs=-1)  vs  "
          f"sklearn FactorAnalysis(H) [tol=1e-2, svd_method randomized{' / lapack' if args.lapack else ''}]")
    print(f"# time: fit only, best of {args.repeat}; log-lik: each library's score() on the same float64 X "
          f"(mean nats/sample); mem: peak RSS of the fit beyond the data, MiB, one fresh process per fit")
    print(f"# goals: PPCA >= {PPCA_SPEEDUP_GOAL:g}x faster than PCA at equal log-lik (|diff| <= "
          f"{EQUAL_LOGLIK_TOL:g}); FA >= {FA_SPEEDUP_GOAL:g}x faster than sklearn FA at log-lik no lower "
          f"(diff >= -{NO_LOWER_LOGLIK_TOL:g})")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def goal_status(model: str, ratio: float, diff: float) -> str:
    if model == "PPCA":
        speed_ok, loglik_ok = ratio >= PPCA_SPEEDUP_GOAL, abs(diff) <= EQUAL_LOGLIK_TOL
    else:
        speed_ok, loglik_ok = ratio >= FA_SPEEDUP_GOAL, diff >= -NO_LOWER_LOGLIK_TOL
    misses = [name for name, ok in (("speed", speed_ok), ("loglik", loglik_ok)) if not ok]
    return "ok" if not misses else "MISS " + "+".join(misses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="divide N by 10")
    parser.add_argument("--repeat", type=int, default=1, help="best-of-K fit time")
    parser.add_argument("--lapack", action="store_true",
                        help="also run sklearn FactorAnalysis(svd_method='lapack')")
    parser.add_argument("--models", default="PPCA,FA",
                        help="comma-separated subset of PPCA,FA to run (default both)")
    add_worker_option(parser)
    args = parser.parse_args()
    if run_as_worker(args, worker):
        return

    wall0 = time.perf_counter()
    print_header(args)
    build = entrosum_build()

    pairs = [("PPCA", "PCA", "randomized"), ("FA", "FA", "randomized")]  # svd_method only used by FA
    if args.lapack:
        pairs.append(("FA", "FA-lapack", "lapack"))
    wanted = {name.strip() for name in args.models.split(",")}
    if not wanted <= {"PPCA", "FA"}:
        parser.error("--models takes PPCA, FA or PPCA,FA")
    pairs = [pair for pair in pairs if pair[0] in wanted]

    rows = []
    for index, (_, n, d, h) in enumerate(CONFIGS):
        n = n // 10 if args.quick else n
        label = f"N={n:,} D={d} H={h}"
        for dtype in DTYPES:
            entrosum_results = {}
            for model, peer_name, svd_method in pairs:
                base = {"N": n, "D": d, "H": h, "dtype": dtype, "seed": SEED + index, "repeat": args.repeat,
                        "model": model, "svd_method": svd_method}
                if model not in entrosum_results:
                    t0 = time.perf_counter()
                    entrosum_results[model] = run_worker(__file__, dict(base, lib="entrosum"))
                    log(wall0, f"{label} {dtype} entrosum {model}: {entrosum_results[model]['time']:.3f}s fit "
                               f"({time.perf_counter() - t0:.1f}s process, "
                               f"load {entrosum_results[model]['loadavg']:.2f})")
                t0 = time.perf_counter()
                peer = run_worker(__file__, dict(base, lib="sklearn"))
                log(wall0, f"{label} {dtype} sklearn {peer_name}: {peer['time']:.3f}s fit "
                           f"({time.perf_counter() - t0:.1f}s process, load {peer['loadavg']:.2f})")
                rows.append((label, dtype, model, peer_name, entrosum_results[model], peer))

    # ---- table
    header = ("config", "dtype", "model (vs peer)", "entrosum s", "peer s", "speed-up", "entrosum loglik",
              "peer loglik", "diff", "entrosum MiB", "peer MiB", "ent iter", "peer iter", "goal")
    lines = []
    notes = []
    for label, dtype, model, peer_name, ent, peer in rows:
        notes.append(build_note(f"{label} {dtype} entrosum {model}", ent, build))
        ratio = peer["time"] / ent["time"]
        diff = ent["score"] - peer["score"]
        peer_label = peer_name + (f"[{peer['svd_solver']}]" if peer.get("svd_solver") else "")
        lines.append((label, dtype, f"{model} (vs {peer_label})", f"{ent['time']:.3f}", f"{peer['time']:.3f}",
                      f"{ratio:.2f}x", f"{ent['score']:.6f}", f"{peer['score']:.6f}", f"{diff:+.2e}",
                      f"{ent['mem_extra_mib']:.1f}", f"{peer['mem_extra_mib']:.1f}",
                      "-" if ent["n_iter"] is None else str(ent["n_iter"]),
                      "-" if peer["n_iter"] is None else str(peer["n_iter"]),
                      goal_status(model, ratio, diff)))
        for who, res in (("entrosum", ent), ("sklearn", peer)):
            if res.get("converged") is False:
                notes.append(f"{label} {dtype} {who} {model}: did not converge in {res['n_iter']} iterations")
            notes.append(memory_note(f"{label} {dtype} {who} {model}", res))
    print_table(header, lines, right={3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
    data_sizes = sorted({(r[0], r[1], r[4]["data_mib"]) for r in rows})
    print("# data: " + "; ".join(f"{lab} {dt} {mib:.0f} MiB" for lab, dt, mib in data_sizes))
    for note in filter(None, notes):
        print("# note: " + note)
    print_footer(wall0)


if __name__ == "__main__":
    main()
