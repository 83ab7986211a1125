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
import gc
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

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
    X = np.empty((n_samples, n_features), dtype=dtype)
    rows = max(1, (1 << 20) // n_features)
    for start in range(0, n_samples, rows):
        n = min(rows, n_samples - start)
        chunk = rng.standard_normal((n, n_components)) @ W.T
        chunk += mu
        chunk += rng.standard_normal((n, n_features)) * noise_sd
        X[start:start + n] = chunk  # cast to the target dtype on assignment
    return X


# ----------------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------------

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------
# Worker: one (library, model, config, dtype) fit in a fresh process
# ----------------------------------------------------------------------------------------------

def entrosum_build() -> str:
    """Modification time of the installed entrosum extension, to detect a reinstall during a run."""
    import entrosum._core as core
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(core.__file__)))


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
    from threadpoolctl import threadpool_info

    X = make_data(spec["N"], spec["D"], spec["H"], spec["dtype"], spec["seed"])
    times, extras = [], []
    estimator = None
    for _ in range(spec["repeat"]):
        estimator = None
        gc.collect()
        # Peak memory of the fit beyond the data = VmHWM after the fit minus VmRSS right before it.
        # VmHWM (the kernel's ru_maxrss) is the process's all-time peak RSS, so by itself it would
        # still hold the peak of data generation (or of an earlier repeat). On Linux >= 4.0 it can be
        # reset to the current RSS (clear_refs '5'), which makes the difference exact. Where that is
        # unavailable, a fit whose peak stays below the generation peak is understated by at most
        # VmHWM - VmRSS before the fit ('hwm_slack_mib'), which the ~8 MiB chunked generation keeps
        # small. Freed memory that the allocator keeps mapped is not counted again by a later repeat,
        # hence one fresh process per fit.
        reset = _reset_peak()
        rss_before = _status_kib("VmRSS")
        hwm_slack = _status_kib("VmHWM") - rss_before
        estimator = _make_estimator(spec["lib"], spec["model"], spec["H"], spec["svd_method"])
        t0 = time.perf_counter()
        estimator.fit(X)
        times.append(time.perf_counter() - t0)
        extras.append((_status_kib("VmHWM") - rss_before) / 1024.0)
    X64 = X if X.dtype == np.float64 else X.astype(np.float64)  # scoring only, outside the timing
    score = float(estimator.score(X64))
    n_iter = getattr(estimator, "n_iter_", None)
    blas_threads = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return {
        "time": min(times), "times": times, "score": score, "mem_extra_mib": max(extras),
        "n_iter": None if n_iter is None else int(n_iter),
        "converged": getattr(estimator, "converged_", None),
        "svd_solver": getattr(estimator, "_fit_svd_solver", None),
        "hwm_reset": reset, "hwm_slack_mib": hwm_slack / 1024.0, "blas_threads": blas_threads,
        "data_mib": X.nbytes / 2**20, "loadavg": os.getloadavg()[0],
        "entrosum_build": entrosum_build() if spec["lib"] == "entrosum" else None,
    }


def run_worker(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}) for {spec}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# Header
# ----------------------------------------------------------------------------------------------

def gemm_gflops(dtype, n: int = 2000, repeat: int = 5) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_header(args) -> None:
    import sklearn
    import sklearn.decomposition  # noqa: F401  (loads sklearn's OpenMP runtime, if any)
    from threadpoolctl import threadpool_info

    import entrosum
    from entrosum._validation import resolve_n_jobs

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# entrosum PPCA / FactorAnalysis vs scikit-learn PCA / FactorAnalysis"
          f"{'   [--quick: N/10]' if args.quick else ''}")
    print(f"# python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"entrosum {getattr(entrosum, '__version__', '?')} (extension built {entrosum_build()})")
    print(f"# CPU: {cpu_model()}, {os.cpu_count()} logical cores, {cores} usable; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# numpy GEMM 2000x2000: float64 {gemm_gflops(np.float64):.1f} GFLOP/s, "
          f"float32 {gemm_gflops(np.float32):.1f} GFLOP/s")
    for info in threadpool_info():
        print(f"# threadpoolctl: {info['user_api']} {info['internal_api']} {info.get('version')} "
              f"threads={info['num_threads']} layer={info.get('threading_layer', '-')} "
              f"arch={info.get('architecture', '-')}")
    print(f"# entrosum n_jobs=-1 -> {resolve_n_jobs(-1)} threads (own std::thread pool, single-threaded "
          f"Eigen products); scikit-learn: numpy BLAS threads as above")
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
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
                    entrosum_results[model] = run_worker(dict(base, lib="entrosum"))
                    print(f"[{time.perf_counter() - wall0:7.1f}s] {label} {dtype} entrosum {model}: "
                          f"{entrosum_results[model]['time']:.3f}s fit ({time.perf_counter() - t0:.1f}s process, "
                          f"load {entrosum_results[model]['loadavg']:.2f})",
                          file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                peer = run_worker(dict(base, lib="sklearn"))
                print(f"[{time.perf_counter() - wall0:7.1f}s] {label} {dtype} sklearn {peer_name}: "
                      f"{peer['time']:.3f}s fit ({time.perf_counter() - t0:.1f}s process, load {peer['loadavg']:.2f})",
                      file=sys.stderr, flush=True)
                rows.append((label, dtype, model, peer_name, entrosum_results[model], peer))

    # ---- table
    header = ("config", "dtype", "model (vs peer)", "entrosum s", "peer s", "speed-up", "entrosum loglik",
              "peer loglik", "diff", "entrosum MiB", "peer MiB", "ent iter", "peer iter", "goal")
    lines = []
    notes = []
    for label, dtype, model, peer_name, ent, peer in rows:
        if ent["entrosum_build"] != build:
            notes.append(f"{label} {dtype} entrosum {model}: ran on an entrosum extension built "
                         f"{ent['entrosum_build']}, not {build} (reinstalled during the run)")
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
            if not res["hwm_reset"]:
                notes.append(f"{label} {dtype} {who} {model}: VmHWM reset unavailable; memory may be "
                             f"understated by up to {res['hwm_slack_mib']:.1f} MiB")
    widths = [max(len(str(col)) for col in column) for column in zip(header, *lines)]
    right = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

    def fmt(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print()
    print(fmt(header))
    print(fmt(["-" * w for w in widths]))
    for line in lines:
        print(fmt(line))
    print()
    data_sizes = sorted({(r[0], r[1], r[4]["data_mib"]) for r in rows})
    print("# data: " + "; ".join(f"{lab} {dt} {mib:.0f} MiB" for lab, dt, mib in data_sizes))
    for note in notes:
        print("# note: " + note)
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total wall time {time.perf_counter() - wall0:.0f} s")


if __name__ == "__main__":
    main()
