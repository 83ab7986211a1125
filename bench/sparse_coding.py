"""Benchmark: entrosum SparseCoding against scikit-learn MiniBatchDictionaryLearning and DictionaryLearning.

Run from the repository root (entrosum and scikit-learn with Pillow installed)::

    python bench/sparse_coding.py [--quick] [--em-iters K] [--dl-iters K] [--no-dl] [--atoms 64,100]

    --quick        N = 10,000 patches instead of 100,000 (a smoke run)
    --em-iters K   EM iterations of entrosum (default 20)
    --dl-iters K   iterations of scikit-learn DictionaryLearning (default 1; each is a pass over all data)
    --no-dl        skip DictionaryLearning (the slowest part of the run)
    --atoms LIST   the numbers of atoms H (default 64,100)

Data: 100,000 random 8x8 patches of scikit-learn's sample image china.jpg, grey (mean of the colour
channels, scaled to [0, 1]), each patch centred (its mean removed); float64, identical in every worker.

Fits, each in a fresh process (bench/_common.py), timed with time.perf_counter around fit() only:
- entrosum.SparseCoding(H, posterior='diag', acceleration=None, annealing=None, max_iter=K, tol=None, n_jobs=-1):
  variational EM with Gaussian posteriors, no annealing (annealed passes, with unit-norm atoms, shrink the codes,
  whose E-steps then take a fraction of the Newton steps of a learning pass); "time per pass" is the median wall
  time of one EM iteration (E-step over all patches plus the M-step) from its monitor.
- sklearn MiniBatchDictionaryLearning(H, max_iter=1): one epoch (its defaults: batch_size 256, alpha 1,
  fit_algorithm 'lars'); "time per pass" is the fit time.
- sklearn DictionaryLearning(H, max_iter=K): batch dictionary learning; "time per pass" = fit time / K.
- the joint-gradient solver on the bars test of tests/test_sparse_coding.py (N=1000 5x5 images, 10 bars,
  Laplace(0, 1) sources, noise sd 0.1, H=10, full posteriors, tol 1e-6): time to converge, iterations, bars
  recovered (|cos| > 0.95); EM accelerated by quasi-Newton steps (acceleration='quasi-newton', tol 1e-6), with
  its E-step passes; and plain EM on the same data for the same wall-clock order, for contrast.

Reconstruction error: ||X - Z W||^2 / ||X||^2 on the training patches, with Z each library's transform()
(entrosum: posterior means; scikit-learn: its default transform, OMP with 10% of n_features non-zeros),
computed after the timed fit. Peak memory: the fit's peak RSS beyond the data (MiB). "fit cpu s" is the
fit's CPU time summed over threads, a measure of work that other jobs on a shared machine do not inflate
(wall times do; the load average is printed).

Goal (the issue): one EM iteration over all 100,000 patches faster than one epoch of
MiniBatchDictionaryLearning, while giving full posteriors where scikit-learn gives point estimates.
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
    log,
    measure,
    memory_note,
    print_footer,
    print_machine_header,
    print_table,
    run_as_worker,
    run_worker,
)

N_PATCHES = 100_000
SIDE = 8
SEED = 20240612
BARS_SEED = 0


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def make_patches(n_patches: int, seed: int) -> np.ndarray:
    """(n_patches, 64) centred grey 8x8 patches of china.jpg at random positions."""
    from sklearn.datasets import load_sample_image
    from sklearn.feature_extraction.image import extract_patches_2d

    image = load_sample_image("china.jpg").mean(axis=2) / 255.0
    patches = extract_patches_2d(image, (SIDE, SIDE), max_patches=n_patches, random_state=seed)
    patches = patches.reshape(n_patches, SIDE * SIDE)
    return np.ascontiguousarray(patches - patches.mean(axis=1, keepdims=True))


def make_bars(n_samples: int, seed: int, side: int = 5, noise_sd: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    atoms = np.zeros((2 * side, side, side))
    for k in range(side):
        atoms[2 * k, k, :] = 1.0
        atoms[2 * k + 1, :, k] = 1.0
    atoms = atoms.reshape(2 * side, -1)
    X = rng.laplace(0.0, 1.0, (n_samples, 2 * side)) @ atoms + noise_sd * rng.standard_normal((n_samples, side**2))
    return X, atoms


# ----------------------------------------------------------------------------------------------
# Worker
# ----------------------------------------------------------------------------------------------

def relative_error(X: np.ndarray, codes: np.ndarray, atoms: np.ndarray) -> float:
    return float(((X - codes @ atoms) ** 2).sum() / (X**2).sum())


def timed(call) -> dict:
    """measure() of the call, plus its CPU time over all threads (robust to other jobs on the machine)."""
    cpu = time.process_time()
    _, run = measure(call)
    run["cpu"] = time.process_time() - cpu
    return run


def worker(spec: dict) -> dict:
    task = spec["task"]
    if task in ("entrosum", "bars-gradient", "bars-em", "bars-qn"):
        import entrosum
    else:
        from sklearn.decomposition import DictionaryLearning, MiniBatchDictionaryLearning
    result: dict = {"loadavg": os.getloadavg()[0], "blas_threads": blas_threads(),
                    "entrosum_build": entrosum_build() if task != "mbdl" and task != "dl" else None}

    if task.startswith("bars"):
        X, atoms = make_bars(1000, BARS_SEED)
        if task == "bars-gradient":
            model = entrosum.SparseCoding(10, posterior="full", solver="gradient", tol=1e-6, max_iter=20_000,
                                          random_state=100 + BARS_SEED)
        elif task == "bars-qn":
            model = entrosum.SparseCoding(10, posterior="full", acceleration="quasi-newton", tol=1e-6,
                                          max_iter=20_000, random_state=100 + BARS_SEED)
        else:
            model = entrosum.SparseCoding(10, posterior="full", acceleration=None, tol=None, max_iter=spec["iters"],
                                          random_state=100 + BARS_SEED)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = timed(lambda: model.fit(X))
        unit = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
        cosines = np.abs(unit @ model.components_.T).max(axis=1)
        result.update(run, n_iter=model.n_iter_, recovered=int((cosines > 0.95).sum()),
                      elbo=float(model.monitor_.history["elbo"][-1]), stop=model.monitor_.stop_reason,
                      noise=float(model.noise_variance_), pass_time=float(np.median(model.monitor_.history["time"])),
                      passes=int(model.e_step_info_.get("passes", model.n_iter_)))
        return result

    X = make_patches(spec["N"], SEED)
    result["data_mib"] = X.nbytes / 2**20
    H = spec["H"]
    if task == "entrosum":
        model = entrosum.SparseCoding(H, posterior="diag", acceleration=None, annealing=None, tol=None,
                                      max_iter=spec["iters"], random_state=0, n_jobs=-1)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", entrosum.ConvergenceWarning)  # a fixed number of iterations
            run = timed(lambda: model.fit(X))
        times = model.monitor_.history["time"]
        result.update(run, pass_time=float(np.median(times)), n_iter=int(model.n_iter_),
                      setup=float(model.monitor_.setup_time), elbo=float(model.monitor_.history["elbo"][-1]),
                      e_steps=float(model.e_step_info_["mean_solver_steps"]),
                      unconverged=int(model.e_step_info_["unconverged"]))
        t0 = time.perf_counter()
        codes = model.transform(X)
        result["transform_time"] = time.perf_counter() - t0
        result["error"] = relative_error(X, codes, model.components_)
    else:
        if task == "mbdl":
            model = MiniBatchDictionaryLearning(n_components=H, max_iter=1, random_state=0)
        else:
            model = DictionaryLearning(n_components=H, max_iter=spec["iters"], random_state=0)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = timed(lambda: model.fit(X))
        n_iter = int(getattr(model, "n_iter_", 1))
        result.update(run, n_iter=n_iter, pass_time=run["time"] / max(n_iter, 1))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OMP's "ended prematurely" on nearly dependent atoms
            codes = model.transform(X)
        result["transform_time"] = time.perf_counter() - t0
        result["error"] = relative_error(X, codes, model.components_)
    return result


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 patches instead of 100,000")
    parser.add_argument("--em-iters", type=int, default=20, help="EM iterations of entrosum")
    parser.add_argument("--dl-iters", type=int, default=1, help="iterations of sklearn DictionaryLearning")
    parser.add_argument("--no-dl", action="store_true", help="skip sklearn DictionaryLearning")
    parser.add_argument("--atoms", default="64,100", help="comma-separated numbers of atoms")
    add_worker_option(parser)
    args = parser.parse_args()
    if run_as_worker(args, worker):
        return

    import sklearn.decomposition  # noqa: F401  (its thread pools show in the header)

    wall0 = time.perf_counter()
    n_patches = N_PATCHES // 10 if args.quick else N_PATCHES
    print_machine_header("entrosum SparseCoding vs scikit-learn (MiniBatch)DictionaryLearning", args.quick)
    print(f"# data: {n_patches:,} centred grey 8x8 patches of china.jpg, float64")
    print(f"# entrosum.SparseCoding(H, posterior='diag', acceleration=None, annealing=None, "
          f"max_iter={args.em_iters}, tol=None, n_jobs=-1) [plain EM]; "
          "sklearn MiniBatchDictionaryLearning(H, max_iter=1) [one epoch]; "
          f"sklearn DictionaryLearning(H, max_iter={args.dl_iters})")
    print("# pass: entrosum = median EM iteration (monitor); MBDL = its one epoch; DL = fit / iterations. "
          "error: ||X - transform(X) W||^2 / ||X||^2 on the training patches. MiB: peak RSS of the fit beyond "
          "the data")
    sys.stdout.flush()
    build = entrosum_build()

    rows, notes = [], []
    for H in [int(h) for h in args.atoms.split(",")]:
        runs = [("entrosum EM (diag)", "entrosum", args.em_iters), ("sklearn MiniBatchDictionaryLearning", "mbdl", 1)]
        if not args.no_dl:
            runs.append(("sklearn DictionaryLearning", "dl", args.dl_iters))
        results = {}
        for name, task, iters in runs:
            t0 = time.perf_counter()
            results[task] = run_worker(__file__, {"task": task, "N": n_patches, "H": H, "iters": iters})
            log(wall0, f"H={H} {name}: fit {results[task]['time']:.2f}s, pass {results[task]['pass_time']:.2f}s "
                       f"({time.perf_counter() - t0:.1f}s process, load {results[task]['loadavg']:.2f})")
        epoch = results["mbdl"]["pass_time"]
        for name, task, _ in runs:
            res = results[task]
            speedup = epoch / res["pass_time"]
            goal = "-"
            if task == "entrosum":
                goal = "ok" if res["pass_time"] < epoch else "MISS"
                notes.append(f"H={H} entrosum: {res['e_steps']:.2f} Newton steps per patch in the last E-step, "
                             f"{res['unconverged']} patches at the step limit; setup pass {res['setup']:.2f}s; "
                             f"last F (per patch) {res['elbo']:.4f}")
                notes.append(build_note(f"H={H} entrosum", res, build))
            notes.append(memory_note(f"H={H} {name}", res))
            rows.append((f"{n_patches // 1000}k patches H={H}", name, f"{res['pass_time']:.2f}", str(res["n_iter"]),
                         f"{res['time']:.2f}", f"{res['cpu']:.2f}", f"{speedup:.2f}x", f"{res['error']:.4f}",
                         f"{res['transform_time']:.2f}", f"{res['mem_extra_mib']:.0f}", goal))

    bars = {}
    for task, label in (("bars-gradient", "entrosum joint gradient (full)"),
                        ("bars-qn", "entrosum EM + quasi-Newton (full)"), ("bars-em", "entrosum EM (full)")):
        t0 = time.perf_counter()
        spec = {"task": task, "iters": 500}
        bars[task] = res = run_worker(__file__, spec)
        log(wall0, f"bars {label}: {res['time']:.2f}s, {res['n_iter']} iterations, {res['passes']} passes, "
                   f"{res['recovered']}/10 bars ({time.perf_counter() - t0:.1f}s process)")
        rows.append(("bars 1000x25 H=10", label, f"{res['pass_time']:.4f}", str(res["passes"]), f"{res['time']:.2f}",
                     f"{res['cpu']:.2f}", "-", f"{res['recovered']}/10 bars", "-", f"{res['mem_extra_mib']:.0f}",
                     f"stop={res['stop']}"))
        notes.append(f"bars {label}: last F {res['elbo']:.5f}, sigma^2 {res['noise']:.5f} (true 0.01)")

    header = ("data", "fit", "s/pass", "passes", "fit s", "fit cpu s", "vs MBDL epoch", "error", "transform s", "MiB",
              "goal")
    print_table(header, rows, right={2, 3, 4, 5, 6, 7, 8, 9})
    print("# vs MBDL epoch: one MBDL epoch divided by one pass of the row (higher: faster per pass). Bars: "
          "s/pass is the median iteration, fit s the time to converge (gradient and EM + quasi-Newton, tol 1e-6) "
          "or to run 500 EM iterations; passes: L-BFGS steps (gradient), E-step passes (EM + quasi-Newton: EM "
          "iterations and line-search trials), EM iterations; error column: bars recovered (|cos| > 0.95)")
    for note in filter(None, notes):
        print("# note: " + note)
    print_footer(wall0)


if __name__ == "__main__":
    main()
