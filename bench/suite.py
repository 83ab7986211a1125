"""Benchmark suite: entrosum against scikit-learn over fixed data regimes, with the speed goals of issue 12.

Run from the repository root (entrosum and scikit-learn with Pillow installed)::

    python bench/suite.py [--quick] [--only REGEX] [--dtypes float64,float32] [--threads 1,2]
                          [--repeat R] [--n-scale F] [--json PATH]

    --quick      smaller N, fewer iterations, 2 threads only where N >= 100k (the cases below)
    --only REGEX run only the cases whose name matches (re.search), e.g. 'gmm/overlap', '/full$', '^(ppca|fa)/'
    --dtypes     data types to run (default float64,float32; sparse coding runs float64 only in --quick)
    --threads    thread counts to run (default 1,2; --quick: 2 only for cases with N >= 100,000)
    --repeat R   best of R fits per row, in the same worker process (default 1 in --quick, else 2; PPCA's
                 closed forms, a fraction of a second, are always best of 3); memory is the largest of the R
    --n-scale F  multiply every N by F (a smoke test of the script; goals are judged on the N that ran)
    --json PATH  also write the header and every row, with all raw numbers, as JSON (to diff runs)

Cases (name: N x D x K, --quick N; K = components, latent dimensions or atoms). Data are generated from a fixed
seed per regime, chunk by chunk in float64 into the target dtype (bench/_common.fill_in_chunks):

  gmm/overlap/{full,tied,diag,spherical}    200,000 x 32 x 64 (20,000): K Gaussian clusters, centres ~ N(0, 0.25²
      I), unit noise, Dirichlet(5) weights. Two centres are 2·D·0.25² = 4 noise variances apart in squared
      distance, so a point's responsibility is spread over many components.
  gmm/separated/{full,tied,diag,spherical}  50,000 x 32 x 64 (--quick: diag and full only): centres ~ N(0, 10² I),
      unit noise. Responsibilities are 0 or 1 to round-off: the other components' log-densities are thousands
      of nats lower (the underflow regime of the log-sum-exp).
  gmm/highd/{diag,spherical}                200,000 x 128 x 128 (20,000), bench/gmm.py's data: centres ~ N(0, 3² I),
      per-cluster and per-feature noise sd in [0.5, 1.5]; gmm/highd/{full,tied} 20,000 x 128 x 128 with 5
      iterations (--quick: full only, 2 iterations), because scikit-learn's full covariances cost N·D²·K.
  gmm/digits/{full,tied,diag,spherical}     scikit-learn's digits, 1,797 x 64 (pixels 0..16), K=10. Below the
      N >= 20,000 of the goals: timed, not judged.
  gmm/colour/{full,tied,diag,spherical}     the RGB pixels of both scikit-learn sample photographs (china.jpg,
      flower.jpg), 546,560 x 3 scaled to [0, 1], K=64: colour quantisation (--quick: every 4th pixel, 136,640,
      full and diag only).
  ppca/lowrank/D100, fa/lowrank/D100        1,000,000 (PPCA; --quick 100,000) and 200,000 (FA; --quick 20,000)
      x 100 x 10; ppca/lowrank/D784, fa/lowrank/D784: 100,000 (--quick: 20,000) x 784 x 50. entrosum's FA
      iterations work on D x D matrices, scikit-learn's on the data, so the FA ratio grows with N.
      x = W z + mu + eps with z ~ N(0, I), eps ~ N(0, diag psi), sd in [0.2, 2] (bench/ppca.py's data).
  sc/patches/H64, sc/patches/H100           100,000 (20,000) 8x8 grey patches of both sample photographs (half
      from each, random positions, mean of the colour channels / 255), each patch centred; H atoms.

Pairs and what is timed; every fit runs in a fresh worker process (bench/_common.run_worker) that generates
its data, limits its threads, fits once on its first 512 rows (unmeasured: pages in the code and lazy imports),
and measures the fit's peak resident memory beyond the data:

- GaussianMixture (per EM iteration): entrosum.GaussianMixture(K, covariance_type, tol=0, reg_covar=1e-6,
  max_iter=I, n_jobs=T, *_init=start) vs sklearn.mixture.GaussianMixture with the same arguments. Same start,
  same work: per case one start (one scikit-learn EM iteration from k-means++ on 20,000 rows of the same
  distribution, random_state=0) is cast to the data dtype and given to both as weights_init, means_init,
  precisions_init; both run exactly I iterations (tol=0). With the same start and work their final lower
  bounds (mean log-likelihood before the last M-step) agree to round-off; column 'check' is their difference.
  Wall s/iter: entrosum sum(monitor_.history['time']) / I; scikit-learn from the start of its first E-step to
  the start of the E-step that fit() runs after the loop, / I (bench/_common.SklearnEStepClock).
  CPU s/iter (process CPU time, summed over threads): scikit-learn over the same loop; entrosum between the
  lines that verbose=2 prints after each iteration, so over iterations 2..I (bench/_common.IterationClock).
- PPCA (per fit, closed form vs closed form): entrosum.PPCA(H, n_jobs=T) (solver 'auto': the closed form on
  the D x D covariance) vs sklearn PCA(H, svd_solver='covariance_eigh'); wall and CPU of fit().
- FactorAnalysis (per fit, to the same tolerance): sklearn FactorAnalysis(H, random_state=0, max_iter=10000) with
  its default tol=1e-2 on the change of the total log-likelihood, vs entrosum.FactorAnalysis(H, tol=1e-2/N,
  max_iter=100000, random_state=0, n_jobs=T), whose tol is per sample (its F is the mean log-likelihood): both
  stop at the same change of the log-likelihood. Per-iteration times would compare entrosum's D x D iterations
  with scikit-learn's passes over the data; the iteration counts are in the JSON. For PPCA and FA, 'check' is
  the difference of the two models' mean log-likelihood, each scored by its own library on the same float64 X.
- Sparse coding (per pass): entrosum.SparseCoding(H, posterior='diag', acceleration=None, annealing=None, tol=None,
  max_iter=I, random_state=0, n_jobs=T) [plain EM; annealing with unit-norm atoms shrinks the codes, whose
  E-steps then take a fraction of the Newton steps of a learning pass], the median of its I iterations (wall:
  monitor; CPU: as for GaussianMixture, iterations 2..I) vs sklearn MiniBatchDictionaryLearning(H, max_iter=1,
  random_state=0), one epoch (its fit()), as bench/sparse_coding.py does. I = 10 (--quick: 6).

Threads: entrosum n_jobs=T (its own thread pool, single-threaded products inside); in every worker, entrosum's
and scikit-learn's, threadpoolctl.threadpool_limits(T) caps the BLAS and OpenMP pools at T threads, so both
libraries use T cores. 'ratio' = peer wall / entrosum wall (above 1: entrosum faster; the goals use it); 'cpu
ratio' the same in CPU time, which other jobs on the machine inflate less. 'MiB': the entrosum
fit's peak RSS beyond the data; 'param': its fitted arrays (the model's own parameters); 'xdata' = (MiB - param)
/ data size. '%GEMM': the entrosum time against numpy's GEMM rate in that dtype at T BLAS threads (measured in
the header), with the analytic work of work_flops(). 'gain': for float32 rows entrosum's float64 time over its
float32 time ('f32'), for 2-thread rows its 1-thread time over its 2-thread time ('2t').

Goals (issue 12), judged per row in 'goal' / 'status' (status 'ok', or 'MISS' and the goals missed; '[bar ok]'
when a missed speed goal still meets the bar at which the issue counts as resolved):
- GaussianMixture at N >= 20,000: float64 >= 8x scikit-learn per iteration (bar 5x; 3x for full at D=128);
  float32 >= 1.6x faster than entrosum float64; (MiB - param) <= 0.25x the data, every covariance type.
- PPCA >= 3x PCA(covariance_eigh) at D=100 and >= 1.5x at D=784; FactorAnalysis >= 20x sklearn FactorAnalysis.
- One sparse-coding EM pass >= 4x an MBDL epoch at H=64 and H=100 (bar 2x).
- 2 threads >= 1.7x faster than 1 for N >= 100,000 (meaningful on a quiet machine only).
The summary gives the minimum ratio over all GaussianMixture rows, over those at N >= 20,000 and over the
suite, the float32 gains, the 2-thread speed-ups and the misses. Progress goes to stderr.

Run time on the 2-core machine: --quick took 7 min (421 s) at a 1-minute load average of 2 to 8 (median 3.9;
other engineers' C++ builds on both cores), with fa/lowrank/D784 at 5,000 rows; at 20,000 rows (now) it adds
about a minute at that load, so about 8 minutes under load and less on a quiet machine. The full mode has not
been run: scaling the --quick fits to its sizes, iterations, threads and repeats gives about 2 hours at that
load, most of it scikit-learn on the colour pixels (full), scikit-learn FactorAnalysis at D=784, the
sparse-coding passes and scikit-learn's full covariances. Under load, BLAS threads that spin-wait make
scikit-learn's 2-thread times vary several-fold, and every wall time exceeds its CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np

from _common import (
    IterationClock,
    SklearnEStepClock,
    add_worker_option,
    blas_threads,
    build_note,
    entrosum_build,
    fill_in_chunks,
    fitted_arrays_mib,
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

SEED = 20240613
REG_COVAR = 1e-6
START_ROWS = 20_000  # rows the shared GaussianMixture start is computed on
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DTYPES = ("float64", "float32")
FA_SKLEARN_TOL = 1e-2  # sklearn FactorAnalysis's default: change of the total log-likelihood
FA_MAX_ITER = 100_000
PATCH_SIDE = 8

# Mixture regimes: name -> (sd of the centres, range of the noise sd per cluster and feature)
MIXTURES = {"overlap": (0.25, (1.0, 1.0)), "separated": (10.0, (1.0, 1.0)), "highd": (3.0, (0.5, 1.5))}
REGIMES = ("overlap", "separated", "highd", "digits", "colour", "lowrank", "patches")

# Goals (issue 12)
GOAL_MIN_SAMPLES = 20_000  # GaussianMixture goals hold at N >= this
GMM_SPEEDUP_GOAL, GMM_SPEEDUP_BAR, GMM_FULL_HIGH_D_BAR = 8.0, 5.0, 3.0  # float64, per iteration
FLOAT32_GAIN_GOAL = 1.6
MEMORY_GOAL = 0.25  # peak beyond data and parameters, as a multiple of the data
WARM_UP_ROWS = 512  # the worker's unmeasured first fit
PPCA_SPEEDUP_GOAL = {100: 3.0, 784: 1.5}
FA_SPEEDUP_GOAL = 20.0
SC_SPEEDUP_GOAL, SC_SPEEDUP_BAR = 4.0, 2.0
THREAD_GOAL, THREAD_GOAL_MIN_SAMPLES = 1.7, 100_000
PEERS = {"gmm": "sklearn GaussianMixture", "ppca": "sklearn PCA(svd_solver='covariance_eigh')",
         "fa": "sklearn FactorAnalysis", "sc": "sklearn MiniBatchDictionaryLearning (one epoch)"}
UNITS = {"gmm": "iter", "ppca": "fit", "fa": "fit", "sc": "pass"}


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    family: str  # 'gmm', 'ppca', 'fa', 'sc'
    regime: str  # one of REGIMES
    kind: str  # covariance type (gmm), else ''
    n: int
    d: int
    k: int  # components, latent dimensions or atoms
    iters: int  # EM iterations (gmm, sc)
    threads: tuple[int, ...]
    dtypes: tuple[str, ...]
    repeat: int

    @property
    def name(self) -> str:
        if self.family == "gmm":
            return f"gmm/{self.regime}/{self.kind}"
        if self.family == "sc":
            return f"sc/{self.regime}/H{self.k}"
        return f"{self.family}/{self.regime}/D{self.d}"

    @property
    def shape(self) -> str:
        return f"{self.n:,}x{self.d}x{self.k}"


def suite_cases(quick: bool, repeat: int, n_scale: float) -> list[Case]:
    """The suite: full mode, or --quick (smaller N, fewer iterations, 2 threads only where N >= 100,000)."""
    def scaled(n: int) -> int:
        return max(2, int(round(n * n_scale)))

    def threads(n: int) -> tuple[int, ...]:
        return (1, 2) if not quick or n >= THREAD_GOAL_MIN_SAMPLES else (1,)

    iters = 3 if quick else 10
    cases = []

    def add(family, regime, kind, n, d, k, iters=iters, dtypes=DTYPES, repeat=repeat):
        n = scaled(n)
        cases.append(Case(family, regime, kind, n, d, k, iters, threads(n), dtypes, repeat))

    for kind in COVARIANCE_TYPES:
        add("gmm", "overlap", kind, 20_000 if quick else 200_000, 32, 64)
    for kind in ("diag", "full") if quick else COVARIANCE_TYPES:
        add("gmm", "separated", kind, 50_000, 32, 64)
    for kind in ("diag", "spherical"):
        add("gmm", "highd", kind, 20_000 if quick else 200_000, 128, 128)
    for kind in ("full",) if quick else ("full", "tied"):
        add("gmm", "highd", kind, 20_000, 128, 128, iters=2 if quick else 5)
    for kind in COVARIANCE_TYPES:  # real data of a fixed size
        cases.append(Case("gmm", "digits", kind, 1797, 64, 10, iters, (1,) if quick else (1, 2), DTYPES, repeat))
    for kind in ("full", "diag") if quick else COVARIANCE_TYPES:
        add("gmm", "colour", kind, 136_640 if quick else 546_560, 3, 64)
    add("ppca", "lowrank", "", 100_000 if quick else 1_000_000, 100, 10, repeat=max(repeat, 3))
    add("ppca", "lowrank", "", 20_000 if quick else 100_000, 784, 50, repeat=max(repeat, 3))
    add("fa", "lowrank", "", 20_000 if quick else 200_000, 100, 10)
    add("fa", "lowrank", "", 20_000 if quick else 100_000, 784, 50)
    for atoms in (64, 100):
        add("sc", "patches", "", 20_000 if quick else 100_000, PATCH_SIDE**2, atoms, iters=6 if quick else 10,
            dtypes=("float64",) if quick else DTYPES)
    return cases


def work_flops(case: Case) -> float:
    """Analytic floating-point operations of one timed unit (iteration, fit or pass): a lower bound.

    Only the products that BLAS-style code would run as GEMMs are counted (2 flops per multiply-add):
    gmm   one EM iteration: gmm_em_flops in bench/_common.py (E-step and M-step products per covariance type).
    ppca  one closed-form fit: the D x D moment matrix Σ x xᵀ, symmetric: N·D² flops (the eigendecomposition,
          O(D³), is left out).
    fa    one fit: the same moment matrix, N·D² flops; its EM iterations work on D x D matrices (not counted).
    sc    one EM pass: the projection Wᵀx (2·N·D·H), the M-step's Σ x νᵀ (2·N·D·H) and Σ ννᵀ (symmetric, N·H²);
          each Newton step of the E-step adds 2·N·H² (WᵀW ν), not counted.
    """
    n, d, k = case.n, case.d, case.k
    if case.family == "gmm":
        return gmm_em_flops(case.kind, n, d, k)
    if case.family in ("ppca", "fa"):
        return float(n) * d * d
    return 4.0 * n * d * k + float(n) * k * k


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def regime_seed(regime: str) -> int:
    return SEED + REGIMES.index(regime)


def mixture_data(regime: str, n: int, d: int, k: int, dtype: str) -> np.ndarray:
    """K Gaussian clusters with diagonal covariances (MIXTURES[regime]); the same mixture for every n."""
    centre_sd, (noise_low, noise_high) = MIXTURES[regime]
    rng = np.random.default_rng(regime_seed(regime))
    centres = rng.normal(0.0, centre_sd, (k, d))
    noise_sd = rng.uniform(noise_low, noise_high, (k, d))
    weights = rng.dirichlet(np.full(k, 5.0))

    def chunk(m: int) -> np.ndarray:
        labels = rng.choice(k, size=m, p=weights)
        rows = rng.standard_normal((m, d))
        rows *= noise_sd[labels]
        rows += centres[labels]
        return rows

    return fill_in_chunks(n, d, dtype, chunk)


def lowrank_data(n: int, d: int, h: int, dtype: str) -> np.ndarray:
    """x = W z + mu + eps with heteroscedastic noise (sd in [0.2, 2] per feature)."""
    rng = np.random.default_rng(regime_seed("lowrank") + d)
    W = rng.standard_normal((d, h))
    mu = rng.uniform(-3.0, 3.0, d)
    noise_sd = rng.uniform(0.2, 2.0, d)

    def chunk(m: int) -> np.ndarray:
        rows = rng.standard_normal((m, h)) @ W.T
        rows += mu
        rows += rng.standard_normal((m, d)) * noise_sd
        return rows

    return fill_in_chunks(n, d, dtype, chunk)


def colour_pixels(n: int, dtype: str) -> np.ndarray:
    """n RGB pixels in [0, 1] of both sample photographs: every (546,560 // n)-th pixel."""
    from sklearn.datasets import load_sample_images
    pixels = np.concatenate([image.reshape(-1, 3) for image in load_sample_images().images])
    stride = max(1, len(pixels) // n)
    return np.ascontiguousarray(pixels[::stride][:n], dtype=dtype) / np.asarray(255, dtype=dtype)


def grey_patches(n: int, dtype: str) -> np.ndarray:
    """n centred grey 8x8 patches, half from each sample photograph, at random positions."""
    from sklearn.datasets import load_sample_images
    from sklearn.feature_extraction.image import extract_patches_2d
    images = load_sample_images().images
    parts = []
    for index, image in enumerate(images):
        count = n // len(images) + (index < n % len(images))
        patches = extract_patches_2d(image.mean(axis=2) / 255.0, (PATCH_SIDE, PATCH_SIDE), max_patches=count,
                                     random_state=regime_seed("patches") + index)
        parts.append(patches.reshape(count, -1))
    patches = np.concatenate(parts)
    patches -= patches.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(patches, dtype=dtype)


def make_data(regime: str, n: int, d: int, k: int, dtype: str) -> np.ndarray:
    if regime in MIXTURES:
        return mixture_data(regime, n, d, k, dtype)
    if regime == "digits":
        from sklearn.datasets import load_digits
        return np.ascontiguousarray(load_digits().data, dtype=dtype)
    if regime == "colour":
        return colour_pixels(n, dtype)
    if regime == "lowrank":
        return lowrank_data(n, d, k, dtype)
    return grey_patches(n, dtype)


# ----------------------------------------------------------------------------------------------
# The shared GaussianMixture start
# ----------------------------------------------------------------------------------------------

def make_start(case: Case, path: str) -> None:
    """Save one start (weights, means, precisions) for a GaussianMixture case to ``path``.

    One scikit-learn EM iteration from k-means++ centres on START_ROWS rows of the same distribution (the
    first rows of the same mixture; for real data every m-th row), in float64.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    if case.regime in MIXTURES:
        X = mixture_data(case.regime, min(case.n, START_ROWS), case.d, case.k, "float64")
    else:
        X = make_data(case.regime, case.n, case.d, case.k, "float64")
        X = X[::max(1, len(X) // START_ROWS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(case.k, covariance_type=case.kind, reg_covar=REG_COVAR, max_iter=1,
                                init_params="k-means++", random_state=0).fit(X)
    np.savez(path, weights=model.weights_, means=model.means_, precisions=model.precisions_)


def load_start(path: str, dtype: str) -> dict:
    """The start cast to the data dtype, as both libraries are given it (weights renormalised)."""
    with np.load(path) as start:
        weights = start["weights"].astype(dtype)
        return {"weights_init": weights / weights.sum(), "means_init": start["means"].astype(dtype),
                "precisions_init": start["precisions"].astype(dtype)}


# ----------------------------------------------------------------------------------------------
# Worker: one (case, dtype, threads, library) in a fresh process
# ----------------------------------------------------------------------------------------------
# Each fit function returns measure()'s dict plus 'wall' and 'cpu' (seconds per timed unit), 'param_mib',
# 'check' (lower bound or log-likelihood, or None) and details for the JSON.

def _entrosum_iterations(model, X: np.ndarray, median: bool) -> dict:
    """Fit an entrosum estimator built with verbose=2; wall from its monitor, CPU from its iteration lines."""
    import entrosum
    with warnings.catch_warnings(), IterationClock() as clock:
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)  # a fixed number of iterations
        warnings.simplefilter("ignore", entrosum.ComponentRecoveryWarning)  # counted in the R mark instead
        _, run = measure(lambda: model.fit(X))
    times = model.monitor_.history["time"]
    _, cpu = clock.deltas()
    summary = np.median if median else np.mean
    return dict(run, wall=float(summary(times)), cpu=float(summary(cpu)) if len(cpu) else None,
                n_iter=int(model.n_iter_),
                setup=float(model.monitor_.setup_time), param_mib=fitted_arrays_mib(model),
                iteration_times=[float(t) for t in times], iteration_cpu=[float(t) for t in cpu])


def _gmm_entrosum(spec: dict, X: np.ndarray) -> dict:
    import entrosum
    model = entrosum.GaussianMixture(spec["k"], covariance_type=spec["kind"], tol=0.0, reg_covar=REG_COVAR,
                                     max_iter=spec["iters"], n_jobs=spec["threads"], verbose=2,
                                     **load_start(spec["start"], spec["dtype"]))
    result = _entrosum_iterations(model, X, median=False)
    # components re-seeded because they emptied or collapsed: the fit then leaves scikit-learn's path (which keeps
    # them at a weight of 1e-16), so the check column compares different fits
    return dict(result, check=float(model.lower_bound_), recoveries=len(model.monitor_.recoveries))


def _gmm_sklearn(spec: dict, X: np.ndarray) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    model = GaussianMixture(spec["k"], covariance_type=spec["kind"], tol=0.0, reg_covar=REG_COVAR,
                            max_iter=spec["iters"], random_state=0, **load_start(spec["start"], spec["dtype"]))
    clock = SklearnEStepClock(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, run = measure(lambda: model.fit(X))
    wall, cpu = clock.per_iteration(int(model.n_iter_))
    return dict(run, wall=wall, cpu=cpu, n_iter=int(model.n_iter_), param_mib=fitted_arrays_mib(model),
                check=float(model.lower_bound_))


def _linear(spec: dict, X: np.ndarray) -> dict:
    """PPCA or FA, either library: one whole fit; check = the model's mean log-likelihood on float64 X."""
    n_components, n_samples = spec["k"], X.shape[0]
    if spec["lib"] == "entrosum":
        import entrosum
        model = (entrosum.PPCA(n_components, n_jobs=spec["threads"]) if spec["family"] == "ppca" else
                 entrosum.FactorAnalysis(n_components, tol=FA_SKLEARN_TOL / n_samples, max_iter=FA_MAX_ITER,
                                         random_state=0, n_jobs=spec["threads"]))
    else:
        from sklearn.decomposition import PCA, FactorAnalysis
        model = (PCA(n_components, svd_solver="covariance_eigh") if spec["family"] == "ppca" else
                 FactorAnalysis(n_components, tol=FA_SKLEARN_TOL, max_iter=10_000, random_state=0))
    _, run = measure(lambda: model.fit(X))
    X64 = X if X.dtype == np.float64 else X.astype(np.float64)  # scoring only, after the timing
    n_iter = getattr(model, "n_iter_", None)
    return dict(run, wall=run["time"], param_mib=fitted_arrays_mib(model), check=float(model.score(X64)),
                n_iter=None if n_iter is None else int(n_iter), converged=getattr(model, "converged_", None))


def _sc_entrosum(spec: dict, X: np.ndarray) -> dict:
    import entrosum
    model = entrosum.SparseCoding(spec["k"], posterior="diag", acceleration=None, annealing=None, tol=None,
                                  max_iter=spec["iters"], random_state=0, n_jobs=spec["threads"], verbose=2)
    result = _entrosum_iterations(model, X, median=True)
    return dict(result, check=None, elbo=float(model.monitor_.history["elbo"][-1]))


def _sc_sklearn(spec: dict, X: np.ndarray) -> dict:
    from sklearn.decomposition import MiniBatchDictionaryLearning
    model = MiniBatchDictionaryLearning(n_components=spec["k"], max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, run = measure(lambda: model.fit(X))
    return dict(run, wall=run["time"], param_mib=fitted_arrays_mib(model), check=None)


FITS = {("gmm", "entrosum"): _gmm_entrosum, ("gmm", "sklearn"): _gmm_sklearn, ("ppca", "entrosum"): _linear,
        ("ppca", "sklearn"): _linear, ("fa", "entrosum"): _linear, ("fa", "sklearn"): _linear,
        ("sc", "entrosum"): _sc_entrosum, ("sc", "sklearn"): _sc_sklearn}


def worker(spec: dict) -> dict:
    from threadpoolctl import threadpool_limits

    # Import the library under test (only that one) before anything is measured.
    if spec["lib"] == "entrosum":
        import entrosum  # noqa: F401
    else:
        import sklearn.decomposition  # noqa: F401
        import sklearn.mixture  # noqa: F401
    X = make_data(spec["regime"], spec["n"], spec["d"], spec["k"], spec["dtype"])
    fit = FITS[spec["family"], spec["lib"]]
    with threadpool_limits(limits=spec["threads"]):  # BLAS and OpenMP pools, in both libraries' workers
        # A warm-up fit on a few rows first, in both libraries: it pages in the code and the lazily imported
        # modules, so that the measured peak is the fit's working memory, not a one-off load of the library.
        fit(dict(spec, iters=2), X[:WARM_UP_ROWS].copy())
        runs = [fit(spec, X) for _ in range(spec["repeat"])]
        threads = blas_threads()
    best = min(runs, key=lambda run: run["wall"])
    return dict(best, walls=[run["wall"] for run in runs], mem_extra_mib=max(run["mem_extra_mib"] for run in runs),
                blas_threads=threads, data_mib=X.nbytes / 2**20, n_samples=int(X.shape[0]),
                loadavg=os.getloadavg()[0],
                entrosum_build=entrosum_build() if spec["lib"] == "entrosum" else None)


# ----------------------------------------------------------------------------------------------
# Goals
# ----------------------------------------------------------------------------------------------

@dataclass
class Goal:
    name: str  # 'speed', 'f32', 'mem', '2t'
    text: str  # for the goal column
    value: float
    ok: bool
    bar_ok: bool  # the lower bar at which the issue counts as resolved (= ok where there is none)


def judge(row: dict) -> list[Goal]:
    """The goals of one row (its gains, 'f32_gain' and 'thread_gain', already set)."""
    case: Case = row["case"]
    goals = []
    if case.family == "gmm":
        if case.n < GOAL_MIN_SAMPLES:
            return []
        if row["dtype"] == "float64":
            bar = GMM_FULL_HIGH_D_BAR if case.kind == "full" and case.d >= 128 else GMM_SPEEDUP_BAR
            goals.append(Goal("speed", f"speed>={GMM_SPEEDUP_GOAL:g}x[{bar:g}x]", row["ratio"],
                              row["ratio"] >= GMM_SPEEDUP_GOAL, row["ratio"] >= bar))
        elif row.get("f32_gain") is not None:
            gain = row["f32_gain"]
            goals.append(Goal("f32", f"f32>={FLOAT32_GAIN_GOAL:g}x", gain, gain >= FLOAT32_GAIN_GOAL,
                              gain >= FLOAT32_GAIN_GOAL))
        ratio = row["mem_x_data"]
        goals.append(Goal("mem", f"mem<={MEMORY_GOAL:g}", ratio, ratio <= MEMORY_GOAL, ratio <= MEMORY_GOAL))
    else:
        target, bar = {"ppca": (PPCA_SPEEDUP_GOAL.get(case.d), None), "fa": (FA_SPEEDUP_GOAL, None),
                       "sc": (SC_SPEEDUP_GOAL, SC_SPEEDUP_BAR)}[case.family]
        if target is not None:
            bar = target if bar is None else bar
            text = f"speed>={target:g}x" + (f"[{bar:g}x]" if bar != target else "")
            goals.append(Goal("speed", text, row["ratio"], row["ratio"] >= target, row["ratio"] >= bar))
    if row["threads"] == 2 and case.n >= THREAD_GOAL_MIN_SAMPLES and row.get("thread_gain") is not None:
        gain = row["thread_gain"]
        goals.append(Goal("2t", f"2t>={THREAD_GOAL:g}x", gain, gain >= THREAD_GOAL, gain >= THREAD_GOAL))
    return goals


def status_text(goals: list[Goal]) -> str:
    if not goals:
        return "-"
    misses = [goal.name + ("[bar ok]" if goal.bar_ok else "") for goal in goals if not goal.ok]
    return "ok" if not misses else "MISS " + ",".join(misses)


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def print_header(args, cases: list[Case]) -> dict:
    import sklearn.decomposition  # noqa: F401  (loads scipy's BLAS and sklearn's OpenMP runtime)
    import sklearn.mixture  # noqa: F401

    gflops = print_machine_header(
        "entrosum vs scikit-learn: benchmark suite over data regimes (issue 12)", args.quick,
        quick_note="smaller N, fewer iterations, 2 threads only at N >= 100k", gemm_threads=(1, 2),
        threads_line="# threads T per row: entrosum n_jobs=T; every worker (both libraries) runs under "
                     "threadpoolctl.threadpool_limits(T) (BLAS and OpenMP)")
    print(f"# peers: gmm: {PEERS['gmm']} (same start, tol=0, the same I iterations, reg_covar={REG_COVAR:g}); "
          f"ppca: {PEERS['ppca']}; fa: {PEERS['fa']} (tol={FA_SKLEARN_TOL:g} on the total log-likelihood; "
          f"entrosum tol={FA_SKLEARN_TOL:g}/N per sample); sc: {PEERS['sc']}")
    print("# unit: gmm s per EM iteration (entrosum: monitor; sklearn: its EM loop); ppca/fa s per fit(); "
          "sc s per pass (entrosum: median EM iteration; sklearn: one MBDL epoch). wall: elapsed; cpu: process "
          "CPU over all threads (entrosum gmm/sc: iterations 2..I). ratio = peer wall / entrosum wall (the goals); "
          "cpu ratio = peer cpu / entrosum cpu (less sensitive to other jobs; spin-waiting threads count)")
    print("# check: gmm final lower bounds entrosum - sklearn; ppca/fa mean log-likelihoods entrosum - sklearn. "
          "MiB: entrosum fit's peak RSS beyond the data (fresh process); param: its fitted arrays; "
          "xdata = (MiB - param) / data")
    print("# %GEMM: work_flops (analytic, GEMM-able products only) / entrosum s / numpy GEMM rate in that dtype "
          "at T threads. gain: f32 = entrosum float64 s / float32 s; 2t = entrosum 1-thread s / 2-thread s")
    print(f"# goals: gmm at N >= {GOAL_MIN_SAMPLES:,}: float64 >= {GMM_SPEEDUP_GOAL:g}x sklearn [bar "
          f"{GMM_SPEEDUP_BAR:g}x, {GMM_FULL_HIGH_D_BAR:g}x full at D=128], float32 >= {FLOAT32_GAIN_GOAL:g}x "
          f"float64, xdata <= {MEMORY_GOAL:g}; ppca >= {PPCA_SPEEDUP_GOAL[100]:g}x (D=100), "
          f">= {PPCA_SPEEDUP_GOAL[784]:g}x (D=784); fa >= {FA_SPEEDUP_GOAL:g}x; sc >= {SC_SPEEDUP_GOAL:g}x "
          f"[bar {SC_SPEEDUP_BAR:g}x]; 2 threads >= {THREAD_GOAL:g}x 1 thread at N >= "
          f"{THREAD_GOAL_MIN_SAMPLES:,}. [bar ok]: a missed goal that meets the bar at which the issue is resolved")
    print("# cases: " + "; ".join(f"{case.name} {case.shape}" + (f" I={case.iters}" if case.family in ("gmm", "sc")
                                                                   else "") for case in cases))
    sys.stdout.flush()
    return gflops


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 0.01 else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=os.path.dirname(os.path.abspath(__file__)),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, fewer iterations (about 8 minutes)")
    parser.add_argument("--only", help="run only the cases whose name matches this regular expression")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="data types to run (default float64,float32)")
    parser.add_argument("--threads", default="1,2", help="thread counts to run (default 1,2)")
    parser.add_argument("--repeat", type=int, help="best of R fits per row (default 1 with --quick, else 2)")
    parser.add_argument("--n-scale", type=float, default=1.0, help="multiply every N by this (smoke tests)")
    parser.add_argument("--json", help="write the header and all rows as JSON to this path")
    add_worker_option(parser)
    args = parser.parse_args()
    if run_as_worker(args, worker):
        return
    repeat = args.repeat if args.repeat is not None else 1 if args.quick else 2
    dtypes = [name.strip() for name in args.dtypes.split(",") if name.strip()]
    thread_counts = [int(name) for name in args.threads.split(",") if name.strip()]
    if not dtypes or not set(dtypes) <= set(DTYPES):
        parser.error(f"--dtypes takes a comma-separated subset of {','.join(DTYPES)}")
    if not thread_counts or min(thread_counts) < 1 or repeat < 1 or args.n_scale <= 0:
        parser.error("--threads, --repeat and --n-scale take positive numbers")
    cases = suite_cases(args.quick, repeat, args.n_scale)
    if args.only:
        cases = [case for case in cases if re.search(args.only, case.name)]
        if not cases:
            parser.error(f"--only {args.only!r} matches no case")

    wall0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_start_of_run = os.getloadavg()
    gflops = print_header(args, cases)
    build = entrosum_build()

    rows: list[dict] = []
    notes: list[str | None] = []
    with tempfile.TemporaryDirectory(prefix="entrosum-bench-suite-") as starts:
        for case in cases:
            start = None
            if case.family == "gmm":
                start = os.path.join(starts, case.name.replace("/", "-") + ".npz")
                make_start(case, start)
                log(wall0, f"{case.name} {case.shape}: start computed")
            for dtype in [dtype for dtype in case.dtypes if dtype in dtypes]:
                for threads in [t for t in case.threads if t in thread_counts]:
                    base = {"family": case.family, "regime": case.regime, "kind": case.kind, "n": case.n,
                            "d": case.d, "k": case.k, "iters": case.iters, "repeat": case.repeat, "dtype": dtype,
                            "threads": threads, "start": start}
                    results = {}
                    for lib in ("entrosum", "sklearn"):
                        t0 = time.perf_counter()
                        try:
                            results[lib] = res = run_worker(__file__, dict(base, lib=lib))
                        except RuntimeError as error:  # the worker's traceback is on stderr
                            reason = str(error).split(" for ", 1)[0]
                            notes.append(f"{case.name} {case.shape} {dtype} {threads}t {lib}: FAILED ({reason}; "
                                         f"its traceback is on stderr); the row is left out")
                            log(wall0, f"{case.name} {dtype} {threads}t {lib}: FAILED")
                            break
                        log(wall0, f"{case.name} {case.shape} {dtype} {threads}t {lib}: {_seconds(res['wall'])} "
                                   f"s/{UNITS[case.family]} wall, {_seconds(res['cpu'])} cpu "
                                   f"({time.perf_counter() - t0:.1f}s process, load {res['loadavg']:.2f})")
                    if len(results) == 2:
                        rows.append({"case": case, "dtype": dtype, "threads": threads, **results})

    # ---- derived columns and goals
    by_key = {(row["case"].name, row["dtype"], row["threads"]): row for row in rows}
    for row in rows:
        case, ent, peer = row["case"], row["entrosum"], row["sklearn"]
        row["ratio"] = peer["wall"] / ent["wall"]
        row["cpu_ratio"] = peer["cpu"] / ent["cpu"] if peer["cpu"] and ent["cpu"] else None
        row["mem_x_data"] = (ent["mem_extra_mib"] - ent["param_mib"]) / ent["data_mib"]
        row["gemm_pct"] = 100 * work_flops(case) / ent["wall"] / (gflops[row["dtype"], row["threads"]] * 1e9)
        row["check"] = (None if ent["check"] is None or peer["check"] is None else ent["check"] - peer["check"])
        f64 = by_key.get((case.name, "float64", row["threads"]))
        row["f32_gain"] = f64["entrosum"]["wall"] / ent["wall"] if row["dtype"] == "float32" and f64 else None
        one = by_key.get((case.name, row["dtype"], 1))
        row["thread_gain"] = one["entrosum"]["wall"] / ent["wall"] if row["threads"] == 2 and one else None
        row["peer_thread_gain"] = one["sklearn"]["wall"] / peer["wall"] if row["threads"] == 2 and one else None
        row["goals"] = judge(row)
        row["status"] = status_text(row["goals"])
        notes.append(build_note(f"{case.name} {row['dtype']} {row['threads']}t entrosum", ent, build))
        notes.append(memory_note(f"{case.name} {row['dtype']} {row['threads']}t entrosum", ent))
        if peer.get("converged") is False or ent.get("converged") is False:
            notes.append(f"{case.name} {row['dtype']} {row['threads']}t: a fit did not converge")

    # ---- table
    header = ["case", "N x D x K", "dtype", "thr", "unit", "ent wall", "ent cpu", "sk wall", "sk cpu", "ratio",
              "cpu ratio", "check", "MiB", "param", "xdata", "%GEMM", "gain", "goal", "status"]
    lines = []
    for row in rows:
        case, ent, peer = row["case"], row["entrosum"], row["sklearn"]
        gain = " ".join(text for text in (
            None if row["f32_gain"] is None else f"f32 {row['f32_gain']:.2f}x",
            None if row["thread_gain"] is None else f"2t {row['thread_gain']:.2f}x") if text) or "-"
        lines.append([case.name, case.shape, row["dtype"], str(row["threads"]), UNITS[case.family],
                      _seconds(ent["wall"]), _seconds(ent["cpu"]), _seconds(peer["wall"]), _seconds(peer["cpu"]),
                      f"{row['ratio']:.2f}x", _fmt(row["cpu_ratio"], ".2f") + ("x" if row["cpu_ratio"] else ""),
                      _fmt(row["check"], "+.1e") + ("R" if ent.get("recoveries") else ""),
                      f"{ent['mem_extra_mib']:.1f}",
                      f"{ent['param_mib']:.1f}", f"{row['mem_x_data']:.3f}", f"{row['gemm_pct']:.1f}%", gain,
                      " ".join(goal.text for goal in row["goals"]) or "-", row["status"]])
    print_table(header, lines, right=set(range(3, 17)) - {4})
    if any(row["entrosum"].get("recoveries") for row in rows):
        print("# R: entrosum re-seeded an empty or collapsed component, where scikit-learn keeps it at a weight of "
              "1e-16; from then on the two fits differ, and so do their lower bounds")

    # ---- summary
    def minimum(selected: list[dict]) -> str:
        if not selected:
            return "-"
        worst = min(selected, key=lambda row: row["ratio"])
        return f"{worst['ratio']:.2f}x ({worst['case'].name} {worst['dtype']} {worst['threads']}t)"

    gmm_rows = [row for row in rows if row["case"].family == "gmm"]
    print(f"# min ratio, all GaussianMixture rows: {minimum(gmm_rows)}; float64 only: "
          f"{minimum([row for row in gmm_rows if row['dtype'] == 'float64'])}")
    print(f"# min ratio, GaussianMixture rows at N >= {GOAL_MIN_SAMPLES:,}: "
          f"{minimum([row for row in gmm_rows if row['case'].n >= GOAL_MIN_SAMPLES])}; float64 only: "
          f"{minimum([row for row in gmm_rows if row['case'].n >= GOAL_MIN_SAMPLES and row['dtype'] == 'float64'])}")
    print(f"# min ratio over the suite: {minimum(rows)}")
    gains = [row for row in rows if row["f32_gain"] is not None]
    if gains:
        print("# float32 gain (entrosum float64 / float32 time): " + ", ".join(
            f"{row['case'].name} {row['threads']}t {row['f32_gain']:.2f}x" for row in gains))
    threaded = [row for row in rows if row["thread_gain"] is not None]
    if threaded:
        print("# 2-thread speed-up (1-thread / 2-thread wall), entrosum | sklearn: " + ", ".join(
            f"{row['case'].name} {row['dtype']} {row['thread_gain']:.2f}x | {row['peer_thread_gain']:.2f}x"
            for row in threaded))
    misses = [f"{row['case'].name} {row['dtype']} {row['threads']}t: " + ", ".join(
        f"{goal.name} {goal.value:.2f} (goal {goal.text}{', bar ok' if goal.bar_ok else ''})"
        for goal in row["goals"] if not goal.ok) for row in rows if row["status"].startswith("MISS")]
    print(f"# MISS ({len(misses)} of {sum(1 for row in rows if row['goals'])} judged rows):"
          + ("" if misses else " none"))
    for miss in misses:
        print(f"#   {miss}")
    data_sizes = sorted({(row["case"].name, row["dtype"], row["entrosum"]["data_mib"]) for row in rows})
    print("# data: " + "; ".join(f"{name} {dtype} {mib:.1f} MiB" for name, dtype, mib in data_sizes))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    loads = [row[lib]["loadavg"] for row in rows for lib in ("entrosum", "sklearn")]
    if loads and max(loads) > 1.5 * cores:
        notes.append(f"1-minute load average up to {max(loads):.1f} on {cores} cores during the fits: the machine "
                     f"was shared, wall times (scikit-learn's BLAS threads above all) are unreliable")
    for note in filter(None, notes):
        print("# note: " + note)
    print_footer(wall0)

    if args.json:
        def plain(row: dict) -> dict:
            case = row["case"]
            return {"case": case.name, "family": case.family, "regime": case.regime, "kind": case.kind,
                    "n": case.n, "d": case.d, "k": case.k, "iters": case.iters, "repeat": case.repeat,
                    "unit": UNITS[case.family], "dtype": row["dtype"], "threads": row["threads"],
                    "entrosum": row["entrosum"], "sklearn": row["sklearn"],
                    **{key: row[key] for key in ("ratio", "cpu_ratio", "check", "mem_x_data", "gemm_pct", "f32_gain",
                                                 "thread_gain", "peer_thread_gain", "status")},
                    "goals": [vars(goal) for goal in row["goals"]]}

        import sklearn

        import entrosum
        document = {"script": "bench/suite.py", "argv": sys.argv[1:], "quick": args.quick, "started": started,
                    "total_seconds": time.perf_counter() - wall0, "loadavg_start": load_start_of_run,
                    "loadavg_end": os.getloadavg(), "git_commit": git_commit(), "entrosum_build": build,
                    "versions": {"entrosum": getattr(entrosum, "__version__", None), "sklearn": sklearn.__version__,
                                 "numpy": np.__version__, "python": sys.version.split()[0]},
                    "gemm_gflops": {f"{dtype}/{threads}t": rate for (dtype, threads), rate in gflops.items()},
                    "notes": [note for note in notes if note], "rows": [plain(row) for row in rows]}
        with open(args.json, "w") as out:
            json.dump(document, out, indent=1)
        print(f"# rows written to {args.json}")


if __name__ == "__main__":
    main()
