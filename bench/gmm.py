"""Benchmark: entrosum GaussianMixture against scikit-learn GaussianMixture (and mlpack's gmm_train).

Run from the repository root (entrosum must be installed)::

    python bench/gmm.py [--quick] [--iters I] [--types full,tied,diag,spherical] [--configs 1e6x32x64,2e5x128x128]
                        [--repeat R] [--no-mlpack]

    --quick      divide every N by 10
    --iters I    EM iterations per fit, the same for every library (default 5)
    --types      covariance types to run (default all four; the 2e5x128x128 config has only diag)
    --configs    configurations to run (default both)
    --repeat R   best-of-R per fit (default 1); memory is the largest of the R fits
    --no-mlpack  skip mlpack even when its Python package is installed

Configurations: N=1,000,000 x D=32, K=64 with all four covariance types, and N=200,000 x D=128, K=128
with diagonal covariances, each in float64 and float32.

Data: a mixture of K Gaussian clusters, centres ~ N(0, 3² I), per-cluster and per-feature noise standard
deviations in [0.5, 1.5], weights from a Dirichlet(5) draw; generated from a fixed seed per configuration,
chunk by chunk in float64 straight into a preallocated array of the target dtype, so every worker
process sees identical data.

Same start, same work: per (configuration, covariance type) the script computes one start in this
process (one scikit-learn EM iteration from k-means labels on the first 50,000 rows, random_state=0),
casts it to the data dtype and gives it to both libraries as weights_init / means_init /
precisions_init. Both run tol=0 (never converged early) and the same max_iter=I, reg_covar=1e-6; their
ConvergenceWarnings are silenced. With the same start and iteration count the two final lower bounds
(mean log-likelihood before the last M-step, the same definition in both) agree to round-off, which the
table shows. mlpack cannot take this start (gmm_train re-initialises with its own k-means even when given
an input_model), so it is compared on time per iteration only, for the types it has (full, diag), in
float64 only (its Python binding computes in float64).

Time per iteration = the EM loop's time / iterations: entrosum from its monitor (sum of
monitor_.history['time']), scikit-learn from the start of its first E-step to the start of the extra
E-step that its fit() runs after the loop (for fit_predict's labels), timed by wrapping _e_step;
mlpack as (time with I iterations - time with 1 iteration) / (I - 1), which cancels its k-means start
and data conversion. 'fit s' is the whole fit() call. Every fit runs in a fresh subprocess (this script
re-invoked with a hidden ``--worker`` argument, see bench/_common.py) that measures its peak resident
memory beyond the data.

Threads: entrosum n_jobs=-1 (its own pool over all usable cores); scikit-learn and mlpack use their BLAS
(and OpenMP) threads as listed in the header, all at their defaults.

Printed (stdout): the machine header (CPU, load, numpy GEMM GFLOP/s per dtype, thread pools), then one
table per configuration, dtype and covariance type: seconds per iteration (entrosum, its median
iteration, scikit-learn), speed-up, whole-fit seconds, both final lower bounds and their difference,
peak memory beyond the data in MiB and as a multiple of the data size, the achieved fraction of numpy's
GEMM rate in that dtype (analytic flops per iteration, see gmm_em_flops in bench/_common.py), entrosum's
float32 gain over its float64 time, mlpack's time per iteration, and whether the goals are met:
>= 8x faster per iteration than scikit-learn in float64; float32 >= 1.6x faster than entrosum's float64;
memory beyond the data <= 0.25x the data size. Progress goes to stderr.

Run time on a 2-core machine shared with a compiler (load 3-5): --quick took 6 and 14 minutes in two
runs; the full run is projected at 50 minutes to 1 h 45 min (10x the fit times; N enters linearly):
mostly scikit-learn's full and tied covariances and mlpack's full covariance (about 12 min each at
the lower load). --types diag,spherical or --no-mlpack shorten it. Under such load BLAS threads that
spin-wait make scikit-learn's times vary several-fold from run to run (its float32 full covariance
took 61 and 3 s per iteration in those two runs), and numpy's GEMM rate, hence %GEMM, moves too; a
note says when the load exceeded the cores.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import warnings

import numpy as np

from _common import (
    SklearnEStepClock,
    add_worker_option,
    blas_threads,
    build_note,
    entrosum_build,
    fill_in_chunks,
    gmm_em_flops,
    log,
    measure,
    memory_note,
    print_footer,
    print_machine_header,
    print_table,
    run_as_worker,
    run_worker,
)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# name -> (N, D, K, covariance types)
CONFIGS = {"1e6x32x64": (1_000_000, 32, 64, COVARIANCE_TYPES), "2e5x128x128": (200_000, 128, 128, ("diag",))}
DTYPES = ("float64", "float32")
SEED = 20240611
REG_COVAR = 1e-6
START_ROWS = 50_000  # rows the shared start is computed on
MLPACK_TYPES = {"full": {"no_force_positive": True}, "diag": {"diagonal_covariance": True}}
MLPACK_KMEANS_ITERATIONS = 10  # its start only; cancelled out of the time per iteration

# Goals (DESIGN.md §6 / the speed issue).
SPEEDUP_GOAL = 8.0  # per iteration against scikit-learn, float64
FLOAT32_GAIN_GOAL = 1.6  # entrosum float64 s/iter over entrosum float32 s/iter
MEMORY_GOAL = 0.25  # peak memory beyond the data, as a fraction of the data size


# ----------------------------------------------------------------------------------------------
# Data, start and work
# ----------------------------------------------------------------------------------------------

def make_data(n_samples: int, n_features: int, n_components: int, dtype: str, seed: int) -> np.ndarray:
    """A mixture of K Gaussian clusters with diagonal covariances; generated in ~8 MiB float64 chunks."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (n_components, n_features))
    noise_sd = rng.uniform(0.5, 1.5, (n_components, n_features))
    weights = rng.dirichlet(np.full(n_components, 5.0))

    def chunk(n: int) -> np.ndarray:
        labels = rng.choice(n_components, size=n, p=weights)
        rows = rng.standard_normal((n, n_features))
        rows *= noise_sd[labels]
        rows += centres[labels]
        return rows

    return fill_in_chunks(n_samples, n_features, dtype, chunk)


def make_start(n_features: int, n_components: int, covariance_type: str, seed: int, path: str) -> None:
    """Save one start (weights, means, precisions) for a configuration and covariance type to ``path``.

    One EM iteration from k-means labels on the first START_ROWS rows of the same mixture, by scikit-learn
    (its KMeans relocates empty clusters; entrosum's init_params='kmeans' can leave a cluster empty at
    K=128 and then fails).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    X = make_data(START_ROWS, n_features, n_components, "float64", seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(n_components, covariance_type=covariance_type, reg_covar=REG_COVAR, max_iter=1,
                                init_params="kmeans", random_state=0).fit(X)
    np.savez(path, weights=model.weights_, means=model.means_, precisions=model.precisions_)


def load_start(path: str, dtype: str) -> dict:
    """The start cast to the data dtype, as both libraries are given it (weights renormalised)."""
    with np.load(path) as start:
        weights = start["weights"].astype(dtype)
        return {"weights_init": weights / weights.sum(), "means_init": start["means"].astype(dtype),
                "precisions_init": start["precisions"].astype(dtype)}


# ----------------------------------------------------------------------------------------------
# Worker: one (library, config, dtype, covariance type) fit in a fresh process
# ----------------------------------------------------------------------------------------------

def _fit_entrosum(spec: dict, X: np.ndarray) -> dict:
    import entrosum
    model = entrosum.GaussianMixture(spec["K"], covariance_type=spec["type"], tol=0.0, reg_covar=REG_COVAR,
                                     max_iter=spec["iters"], n_jobs=-1, **load_start(spec["start"], spec["dtype"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.exceptions.ConvergenceWarning)
        _, run = measure(lambda: model.fit(X))
    iteration_times = model.monitor_.history["time"]
    return dict(run, n_iter=int(model.n_iter_), per_iter=float(iteration_times.sum()) / model.n_iter_,
                median_iter=float(np.median(iteration_times)), setup=float(model.monitor_.setup_time),
                lower_bound=float(model.lower_bound_))


def _fit_sklearn(spec: dict, X: np.ndarray) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    model = GaussianMixture(spec["K"], covariance_type=spec["type"], tol=0.0, reg_covar=REG_COVAR,
                            max_iter=spec["iters"], random_state=0, **load_start(spec["start"], spec["dtype"]))
    clock = SklearnEStepClock(model)  # the starts of the E-steps delimit the EM loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, run = measure(lambda: model.fit(X))
    n_iter = int(model.n_iter_)
    return dict(run, n_iter=n_iter, per_iter=clock.per_iteration(n_iter)[0], lower_bound=float(model.lower_bound_))


def _fit_mlpack(spec: dict, X: np.ndarray) -> dict:
    import mlpack

    def train(iterations: int) -> dict:
        return measure(lambda: mlpack.gmm_train(
            gaussians=spec["K"], input_=X, max_iterations=iterations, tolerance=0.0,
            kmeans_max_iterations=MLPACK_KMEANS_ITERATIONS, seed=1, **MLPACK_TYPES[spec["type"]]))[1]

    one, full = train(1), train(spec["iters"])
    per_iter = (full["time"] - one["time"]) / (spec["iters"] - 1) if spec["iters"] > 1 else None
    return dict(full, mem_extra_mib=max(one["mem_extra_mib"], full["mem_extra_mib"]), n_iter=spec["iters"],
                per_iter=per_iter, time_one_iter=one["time"], lower_bound=None)


def worker(spec: dict) -> dict:
    # Import the library under test (only that one) before anything is measured.
    importlib.import_module({"entrosum": "entrosum", "sklearn": "sklearn.mixture", "mlpack": "mlpack"}[spec["lib"]])
    fit = {"entrosum": _fit_entrosum, "sklearn": _fit_sklearn, "mlpack": _fit_mlpack}[spec["lib"]]

    X = make_data(spec["N"], spec["D"], spec["K"], spec["dtype"], spec["seed"])
    runs = [fit(spec, X) for _ in range(spec["repeat"])]
    best = min(runs, key=lambda run: run["time"] if run["per_iter"] is None else run["per_iter"])
    return dict(best, times=[run["time"] for run in runs], mem_extra_mib=max(run["mem_extra_mib"] for run in runs),
                blas_threads=blas_threads(), data_mib=X.nbytes / 2**20, loadavg=os.getloadavg()[0],
                entrosum_build=entrosum_build() if spec["lib"] == "entrosum" else None)


# ----------------------------------------------------------------------------------------------
# Header
# ----------------------------------------------------------------------------------------------

def find_mlpack(skip: bool) -> tuple[str | None, str]:
    """(mlpack's version or None, a line saying whether and how it runs)."""
    if skip:
        return None, "mlpack: skipped (--no-mlpack)"
    try:
        mlpack = importlib.import_module("mlpack")
    except Exception as error:  # any failure to import means: not available
        return None, (f"mlpack: not available ({type(error).__name__}: {error}); `pip install mlpack` installs "
                      f"it where a wheel exists for this Python")
    version = getattr(mlpack, "__version__", "?")
    return version, (f"mlpack {version} gmm_train(gaussians=K, max_iterations=I, tolerance=0, seed=1, "
                     f"kmeans_max_iterations={MLPACK_KMEANS_ITERATIONS}; full: no_force_positive; diag: "
                     f"diagonal_covariance): its own k-means start, so time per iteration only; full and diag, "
                     f"float64 only")


def print_header(args, mlpack_version: str | None, mlpack_line: str) -> dict[str, float]:
    import sklearn.mixture  # noqa: F401  (loads scipy's BLAS and sklearn's OpenMP runtime)

    gflops = print_machine_header(
        "entrosum GaussianMixture vs scikit-learn GaussianMixture (and mlpack gmm_train)", args.quick,
        peers=[("mlpack", mlpack_version)] if mlpack_version else [])
    print(f"# entrosum.GaussianMixture(K, covariance_type, tol=0, reg_covar={REG_COVAR:g}, max_iter={args.iters}, "
          f"n_jobs=-1, *_init=start)  vs  sklearn.mixture.GaussianMixture(the same, random_state=0)")
    print(f"# start: per config and covariance type, one sklearn EM iteration from k-means labels on the first "
          f"{START_ROWS:,} rows, cast to the data dtype, given to both")
    print(f"# {mlpack_line}")
    print(f"# s/it: EM loop time / iterations, best of {args.repeat} (entrosum: its monitor; 'med': its median "
          f"iteration; sklearn: first E-step to its post-loop E-step; mlpack: (t(I) - t(1)) / (I - 1)); "
          f"fit s: the whole fit() call")
    print("# lower bound: mean log-likelihood before the last M-step (diff = entrosum - sklearn); MiB: peak RSS "
          "of the fit beyond the data, one fresh process per fit; xdata: that over the data size")
    print("# %GEMM: gmm_em_flops (analytic, dominant products only) / s per iteration / numpy GEMM FLOP/s in that "
          "dtype; f32 gain: entrosum float64 s/it over float32 s/it")
    print(f"# goals: float64 >= {SPEEDUP_GOAL:g}x faster per iteration than sklearn; float32 >= "
          f"{FLOAT32_GAIN_GOAL:g}x faster than entrosum float64; memory beyond the data <= {MEMORY_GOAL:g}x data")
    sys.stdout.flush()
    return gflops


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def goal_status(dtype: str, speedup: float, float32_gain: float | None, memory_ratio: float) -> str:
    if dtype == "float64":
        speed_ok = speedup >= SPEEDUP_GOAL
    elif float32_gain is None:
        return "n/a (no float64 run)"
    else:
        speed_ok = float32_gain >= FLOAT32_GAIN_GOAL
    misses = [name for name, ok in (("speed", speed_ok), ("mem", memory_ratio <= MEMORY_GOAL)) if not ok]
    return "ok" if not misses else "MISS " + "+".join(misses)


def _subset(parser: argparse.ArgumentParser, option: str, value: str, allowed) -> list[str]:
    wanted = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in allowed]
    if unknown or not wanted:
        parser.error(f"{option} takes a comma-separated subset of {','.join(allowed)}")
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="divide N by 10")
    parser.add_argument("--iters", type=int, default=5, help="EM iterations per fit (default 5)")
    parser.add_argument("--types", default=",".join(COVARIANCE_TYPES), help="covariance types to run")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="configurations to run")
    parser.add_argument("--repeat", type=int, default=1, help="best-of-R per fit")
    parser.add_argument("--no-mlpack", action="store_true", help="skip mlpack even if installed")
    add_worker_option(parser)
    args = parser.parse_args()
    if run_as_worker(args, worker):
        return
    if args.iters < 1 or args.repeat < 1:
        parser.error("--iters and --repeat take positive integers")
    types = _subset(parser, "--types", args.types, COVARIANCE_TYPES)
    configs = _subset(parser, "--configs", args.configs, list(CONFIGS))

    wall0 = time.perf_counter()
    mlpack_version, mlpack_line = find_mlpack(args.no_mlpack)
    gflops = print_header(args, mlpack_version, mlpack_line)
    build = entrosum_build()

    rows = []
    with tempfile.TemporaryDirectory(prefix="entrosum-bench-gmm-") as starts:
        for name in configs:
            n, d, k, config_types = CONFIGS[name]
            n = n // 10 if args.quick else n
            seed = SEED + list(CONFIGS).index(name)
            label = f"N={n:,} D={d} K={k}"
            kinds = [kind for kind in config_types if kind in types]
            for kind in kinds:
                make_start(d, k, kind, seed, os.path.join(starts, f"{name}-{kind}.npz"))
                log(wall0, f"{label} {kind}: start computed")
            for dtype in DTYPES:
                for kind in kinds:
                    base = {"N": n, "D": d, "K": k, "dtype": dtype, "seed": seed, "type": kind, "iters": args.iters,
                            "repeat": args.repeat, "start": os.path.join(starts, f"{name}-{kind}.npz")}
                    results = {}
                    libs = ["entrosum", "sklearn"]
                    if mlpack_version and kind in MLPACK_TYPES and dtype == "float64":
                        libs.append("mlpack")
                    for lib in libs:
                        t0 = time.perf_counter()
                        res = results[lib] = run_worker(__file__, dict(base, lib=lib))
                        per_iter = "-" if res["per_iter"] is None else f"{res['per_iter']:.3f}"
                        log(wall0, f"{label} {dtype} {kind} {lib}: {per_iter} s/iter, {res['time']:.2f}s fit "
                                   f"({time.perf_counter() - t0:.1f}s process, load {res['loadavg']:.2f})")
                    rows.append((label, dtype, kind, (n, d, k), results))

    # ---- table
    with_mlpack = mlpack_version is not None
    header = ["config", "dtype", "cov", "ent s/it", "ent med", "sk s/it", "speed-up", "ent fit s", "sk fit s",
              "ent lower bound", "sk lower bound", "diff", "ent MiB", "sk MiB", "ent xdata", "sk xdata",
              "ent %GEMM", "sk %GEMM", "f32 gain"]
    if with_mlpack:
        header += ["mlpack s/it", "vs mlpack", "mlpack MiB"]
    header.append("goal")
    float64_per_iter = {(label, kind): res["entrosum"]["per_iter"]
                        for label, dtype, kind, _, res in rows if dtype == "float64"}
    lines, notes = [], []
    for label, dtype, kind, (n, d, k), res in rows:
        ent, skl = res["entrosum"], res["sklearn"]
        notes.append(build_note(f"{label} {dtype} {kind} entrosum", ent, build))
        for lib, run in res.items():
            notes.append(memory_note(f"{label} {dtype} {kind} {lib}", run))
        speedup = skl["per_iter"] / ent["per_iter"]
        data_mib = ent["data_mib"]
        f64 = float64_per_iter.get((label, kind))
        f32_gain = f64 / ent["per_iter"] if dtype == "float32" and f64 else None
        flops = gmm_em_flops(kind, n, d, k)
        line = [label, dtype, kind, f"{ent['per_iter']:.3f}", f"{ent['median_iter']:.3f}", f"{skl['per_iter']:.3f}",
                f"{speedup:.2f}x", f"{ent['time']:.2f}", f"{skl['time']:.2f}", f"{ent['lower_bound']:.6f}",
                f"{skl['lower_bound']:.6f}", f"{ent['lower_bound'] - skl['lower_bound']:+.1e}",
                f"{ent['mem_extra_mib']:.1f}", f"{skl['mem_extra_mib']:.1f}",
                f"{ent['mem_extra_mib'] / data_mib:.3f}", f"{skl['mem_extra_mib'] / data_mib:.2f}",
                f"{100 * flops / ent['per_iter'] / (gflops[dtype] * 1e9):.1f}%",
                f"{100 * flops / skl['per_iter'] / (gflops[dtype] * 1e9):.1f}%",
                "-" if f32_gain is None else f"{f32_gain:.2f}x"]
        if with_mlpack:
            mlp = res.get("mlpack")
            if mlp is None or mlp["per_iter"] is None:
                line += ["-", "-", "-" if mlp is None else f"{mlp['mem_extra_mib']:.1f}"]
            else:
                line += [f"{mlp['per_iter']:.3f}", f"{mlp['per_iter'] / ent['per_iter']:.2f}x",
                         f"{mlp['mem_extra_mib']:.1f}"]
        line.append(goal_status(dtype, speedup, f32_gain, ent["mem_extra_mib"] / data_mib))
        lines.append(line)
    print_table(header, lines, right=set(range(3, len(header) - 1)))
    data_sizes = sorted({(label, dtype, res["entrosum"]["data_mib"]) for label, dtype, _, _, res in rows})
    print("# data: " + "; ".join(f"{label} {dtype} {mib:.0f} MiB" for label, dtype, mib in data_sizes))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    loads = [run["loadavg"] for *_, res in rows for run in res.values()]
    if loads and max(loads) > 1.5 * cores:
        notes.append(f"1-minute load average up to {max(loads):.1f} on {cores} cores during the fits: the machine "
                     f"was shared, times (scikit-learn's BLAS threads above all) are unreliable")
    if with_mlpack and args.iters == 1:
        notes.append("mlpack s/it needs --iters >= 2 (it is the difference between I iterations and 1)")
    for note in filter(None, notes):
        print("# note: " + note)
    print_footer(wall0)


if __name__ == "__main__":
    main()
