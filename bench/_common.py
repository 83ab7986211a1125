"""Plumbing shared by the benchmark scripts in ``bench/`` (not a benchmark itself).

- Every fit runs in a fresh subprocess: the script re-invokes itself with a hidden ``--worker`` JSON
  argument (:func:`add_worker_option`, :func:`run_as_worker`, :func:`run_worker`), and the worker prints
  one JSON line as the last line of its stdout.
- :func:`measure` times one call (wall and process CPU time) and measures its peak resident memory beyond
  what the process held right before it (VmHWM / VmRSS from ``/proc/self/status``, with the peak reset
  through ``/proc/self/clear_refs``); :func:`fitted_arrays_mib` is the size of a fitted estimator's arrays.
- Time per EM iteration, wall and CPU: :class:`SklearnEStepClock` marks the start of every E-step of a
  scikit-learn mixture's ``fit``; :class:`IterationClock` marks the end of every entrosum iteration from the
  line that ``verbose=2`` prints per iteration (public behaviour, no private hook).
- :func:`gmm_em_flops`: the analytic work of one Gaussian-mixture EM iteration, for %GEMM.
- :func:`fill_in_chunks` generates a data set chunk by chunk in float64 straight into a preallocated
  array of the target dtype, so every worker process sees identical data at little extra memory.
- :func:`print_machine_header` prints the machine, versions, numpy GEMM peak (at the default or at given
  BLAS thread counts) and thread pools; :func:`print_table` and :func:`print_footer` the results.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def fill_in_chunks(n_samples: int, n_features: int, dtype: str,
                   make_chunk: Callable[[int], np.ndarray]) -> np.ndarray:
    """An (n_samples, n_features) array of ``dtype`` filled by ``make_chunk(n)`` in ~8 MiB float64 chunks.

    ``make_chunk(n)`` returns the next n rows in float64 (drawing from the caller's seeded generator), so
    the data depend only on the seed, and the float64 temporaries stay small next to the data.
    """
    X = np.empty((n_samples, n_features), dtype=dtype)
    rows = max(1, (1 << 20) // n_features)
    for start in range(0, n_samples, rows):
        n = min(rows, n_samples - start)
        X[start:start + n] = make_chunk(n)  # cast to the target dtype on assignment
    return X


# ----------------------------------------------------------------------------------------------
# Memory and timing of one call
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


def measure(call: Callable[[], Any]) -> tuple[Any, dict]:
    """Run ``call()``; return its result and {'time', 'cpu', 'mem_extra_mib', 'hwm_reset', 'hwm_slack_mib'}.

    'time' is the wall time of the call (time.perf_counter), 'cpu' its process CPU time summed over all
    threads (time.process_time: other jobs on a shared machine inflate it far less than the wall time, but
    threads that spin-wait count). 'mem_extra_mib' is its peak memory beyond
    what the process held before it = VmHWM after the call minus VmRSS right before it. VmHWM (the
    kernel's ru_maxrss) is the process's all-time peak RSS, so by itself it would still hold the peak of
    data generation (or of an earlier repeat). On Linux >= 4.0 it can be reset to the current RSS
    (clear_refs '5'), which makes the difference exact. Where that is unavailable ('hwm_reset' False),
    a call whose peak stays below the earlier peak is understated by at most VmHWM - VmRSS before the
    call ('hwm_slack_mib'), which chunked data generation keeps small. Freed memory that the allocator
    keeps mapped is not counted again by a later call in the same process, hence one fresh process per
    fit (:func:`run_worker`).
    """
    gc.collect()
    reset = _reset_peak()
    rss_before = _status_kib("VmRSS")
    hwm_slack = _status_kib("VmHWM") - rss_before
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    extra = (_status_kib("VmHWM") - rss_before) / 1024.0
    return result, {"time": seconds, "cpu": cpu, "mem_extra_mib": extra, "hwm_reset": reset,
                    "hwm_slack_mib": hwm_slack / 1024.0}


def fitted_arrays_mib(estimator: Any) -> float:
    """MiB held by a fitted estimator's numpy arrays (its public attributes ending in '_': the parameters).

    A fit's peak memory minus this is the working memory beyond the data and the model's own parameters.
    """
    return sum(value.nbytes for name, value in vars(estimator).items()
               if name.endswith("_") and not name.startswith("_") and isinstance(value, np.ndarray)) / 2**20


def memory_note(prefix: str, result: dict) -> str | None:
    """A note for the report when the peak could not be reset (see :func:`measure`), else None."""
    if result["hwm_reset"]:
        return None
    return (f"{prefix}: VmHWM reset unavailable; memory may be understated by up to "
            f"{result['hwm_slack_mib']:.1f} MiB")


# ----------------------------------------------------------------------------------------------
# Time per EM iteration, wall and process CPU
# ----------------------------------------------------------------------------------------------

class SklearnEStepClock:
    """Marks (wall, process CPU) at the start of every E-step of a scikit-learn mixture's ``fit``.

    scikit-learn's ``fit`` runs the initialisation, then per iteration an E-step, an M-step and the lower
    bound, then one more E-step after the loop (for fit_predict's labels): the starts of the E-steps
    delimit the EM loop. Wraps the instance's ``_e_step`` (a private method; :meth:`per_iteration` checks
    the count, so a change in scikit-learn shows as an error, not as a wrong number).
    """

    def __init__(self, model: Any) -> None:
        self.starts: list[tuple[float, float]] = []
        e_step = model._e_step

        def timed_e_step(*args: Any, **kwargs: Any) -> Any:
            self.starts.append((time.perf_counter(), time.process_time()))
            return e_step(*args, **kwargs)

        model._e_step = timed_e_step

    def per_iteration(self, n_iter: int) -> tuple[float, float]:
        """(wall, CPU) seconds per iteration over the whole EM loop of a fit that ran ``n_iter`` iterations."""
        if len(self.starts) != n_iter + 1:
            raise RuntimeError(f"scikit-learn ran {len(self.starts)} E-steps for {n_iter} iterations, expected "
                               f"{n_iter + 1}: its fit() changed; update SklearnEStepClock")
        (wall0, cpu0), (wall1, cpu1) = self.starts[0], self.starts[n_iter]
        return (wall1 - wall0) / n_iter, (cpu1 - cpu0) / n_iter


#: The start of the line an entrosum fit with ``verbose=2`` prints after each iteration.
ITERATION_LINE = re.compile(r"(\w+: )?iter\s")


class IterationClock(io.TextIOBase):
    """Marks (wall, process CPU) at the end of every iteration of an entrosum fit run with ``verbose=2``.

    With ``verbose=2`` an entrosum estimator prints one line per iteration, from C++ right after the
    iteration, on ``sys.stdout``; inside ``with IterationClock() as clock:`` those lines come here and are
    stamped, not printed. Differences of consecutive marks are the iterations after the first; the first
    iteration has no mark before it (the monitor's wall time covers it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[float, float]] = []
        self._redirect: Any = None

    def write(self, text: str) -> int:
        # "GaussianMixture: iter     2  F=..." (the monitor names the model first)
        if ITERATION_LINE.match(text):
            self.marks.append((time.perf_counter(), time.process_time()))
        return len(text)

    def __enter__(self) -> IterationClock:
        self._redirect = contextlib.redirect_stdout(self)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._redirect.__exit__(*exc)

    def deltas(self) -> tuple[np.ndarray, np.ndarray]:
        """(wall, CPU) seconds of the 2nd, 3rd, ... iterations."""
        marks = np.array(self.marks).reshape(-1, 2)
        return np.diff(marks[:, 0]), np.diff(marks[:, 1])


def gmm_em_flops(covariance_type: str, n: int, d: int, k: int) -> float:
    """Floating-point operations of one EM iteration's dominant products: 2 x these multiply-adds.

    diag:      E-step [x², x] (N x 2D) times (2D x K); M-step respᵀ (K x N) times [x, x²]
               -> 2 N·2D·K
    spherical: the same on [x, ‖x‖²] (N x (D+1))
               -> 2 N·(D+1)·K
    full:      E-step (x − μ_k) U_k for every k: N·D²·K; M-step scatter Σ_n r_nk x_n x_nᵀ (symmetric):
               N·D²·K / 2, and respᵀ x: N·D·K
               -> 1.5 N·D²·K + N·D·K
    tied:      E-step x U: N·D², (xU)(μU)ᵀ: N·D·K; M-step respᵀ x: N·D·K, xᵀx (symmetric): N·D²/2
               -> 1.5 N·D² + 2 N·D·K
    Elementwise work (exp, log-sum-exp) is not counted, so this is a lower bound on the work done.
    """
    multiply_adds = {"diag": 2 * n * 2 * d * k, "spherical": 2 * n * (d + 1) * k,
                     "full": 1.5 * n * d * d * k + n * d * k, "tied": 1.5 * n * d * d + 2 * n * d * k}
    return 2.0 * multiply_adds[covariance_type]


# ----------------------------------------------------------------------------------------------
# Fresh-process workers
# ----------------------------------------------------------------------------------------------

def add_worker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def run_as_worker(args: argparse.Namespace, worker: Callable[[dict], dict]) -> bool:
    """In a worker process (``--worker SPEC``), run ``worker(spec)``, print its JSON result, return True."""
    if not args.worker:
        return False
    print(json.dumps(worker(json.loads(args.worker))))
    return True


def run_worker(script: str, spec: dict) -> dict:
    """Run ``script --worker SPEC`` in a fresh Python process and return its JSON result.

    A spec with ``threads`` T starts the worker's BLAS and OpenMP pools at T threads (environment variables read
    at import): OpenBLAS's idle worker threads spin for tens of milliseconds after numpy is imported and after
    each BLAS call, which counted as process CPU time in one-thread rows even under threadpoolctl's limit
    (measured: a one-thread PPCA fit of 27 ms wall showed 55 ms of CPU).
    """
    env = dict(os.environ)
    if "threads" in spec:
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[variable] = str(spec["threads"])
    proc = subprocess.run([sys.executable, os.path.abspath(script), "--worker", json.dumps(spec)],
                          stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}) for {spec}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def blas_threads() -> list[int]:
    """Thread counts of the BLAS libraries loaded in this process (threadpoolctl)."""
    from threadpoolctl import threadpool_info
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def log(wall0: float, message: str) -> None:
    """A progress line on stderr, stamped with the seconds since ``wall0``."""
    print(f"[{time.perf_counter() - wall0:7.1f}s] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Machine header
# ----------------------------------------------------------------------------------------------

def entrosum_build() -> str:
    """Modification time of the installed entrosum extension, to detect a reinstall during a run."""
    import entrosum._core as core
    extension = core._module.__file__  # the compiled build the dispatcher chose
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(extension)))


def build_note(prefix: str, result: dict, build: str) -> str | None:
    """A note when a worker ran on another entrosum extension than the header's, else None."""
    if result.get("entrosum_build") in (None, build):
        return None
    return (f"{prefix}: ran on an entrosum extension built {result['entrosum_build']}, not {build} "
            f"(reinstalled during the run)")


def gemm_gflops(dtype, n: int = 2000, repeat: int = 5, threads: int | None = None) -> float:
    """numpy's best n x n matrix-multiply rate in GFLOP/s (2 n³ flops).

    With its default BLAS threads, or with ``threads`` BLAS threads (threadpoolctl).
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    with threadpool_limits(limits=threads, user_api="blas") if threads else contextlib.nullcontext():
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


def print_machine_header(title: str, quick: bool, peers: Sequence[tuple[str, str]] = (), quick_note: str = "N/10",
                         gemm_threads: Sequence[int] = (), threads_line: str | None = None) -> dict[Any, float]:
    """Print the machine lines of a benchmark header; return numpy's GEMM GFLOP/s per dtype name.

    Import the peer libraries before calling, so that threadpoolctl lists their thread pools too.
    ``peers`` are extra (name, version) pairs for the versions line; ``quick_note`` says what --quick
    changes. With ``gemm_threads`` the GEMM rate is measured at each of those BLAS thread counts instead of
    the default, and the result is keyed by (dtype name, threads). ``threads_line`` replaces the closing
    line on how entrosum and the peers use threads.
    """
    import sklearn
    from threadpoolctl import threadpool_info

    import entrosum

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# {title}{f'   [--quick: {quick_note}]' if quick else ''}")
    print(f"# python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          + "".join(f"{name} {version}, " for name, version in peers)
          + f"entrosum {getattr(entrosum, '__version__', '?')} (extension built {entrosum_build()})")
    print(f"# CPU: {cpu_model()}, {os.cpu_count()} logical cores, {cores} usable; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    gflops: dict[Any, float] = {}
    if gemm_threads:
        for threads in gemm_threads:
            for dtype in ("float64", "float32"):
                gflops[dtype, threads] = gemm_gflops(dtype, threads=threads)
        print("# numpy GEMM 2000x2000: " + "; ".join(
            f"{threads} BLAS thread{'s' if threads > 1 else ''}: float64 {gflops['float64', threads]:.1f}, "
            f"float32 {gflops['float32', threads]:.1f} GFLOP/s" for threads in gemm_threads))
    else:
        gflops = {"float64": gemm_gflops(np.float64), "float32": gemm_gflops(np.float32)}
        print(f"# numpy GEMM 2000x2000: float64 {gflops['float64']:.1f} GFLOP/s, "
              f"float32 {gflops['float32']:.1f} GFLOP/s")
    # Sorted: threadpool_info's order follows Python's string hashing and changes from run to run.
    for info in sorted(threadpool_info(), key=lambda info: (info["user_api"], info["filepath"])):
        print(f"# threadpoolctl: {info['user_api']} {info['internal_api']} {info.get('version')} "
              f"threads={info['num_threads']} layer={info.get('threading_layer', '-')} "
              f"arch={info.get('architecture', '-')}")
    if threads_line is None:
        from entrosum.engine.validation import resolve_n_jobs
        threads_line = (f"# entrosum n_jobs=-1 -> {resolve_n_jobs(-1)} threads (own std::thread pool, "
                        f"single-threaded Eigen products); scikit-learn: numpy BLAS threads as above")
    print(threads_line)
    return gflops


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------

def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    """Print an aligned text table between blank lines; columns in ``right`` are right-aligned."""
    widths = [max(len(str(col)) for col in column) for column in zip(header, *rows)]

    def fmt(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print()
    print(fmt(header))
    print(fmt(["-" * w for w in widths]))
    for row in rows:
        print(fmt(row))
    print()


def print_footer(wall0: float) -> None:
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total wall time {time.perf_counter() - wall0:.0f} s")
