"""Ctrl-C during any fit: a fit in a subprocess sent SIGINT stops within a second, for every model and in every
phase (validation and k-means initialisation, EM iterations, the closed-form eigendecomposition), and the
estimator is then unfitted or still holds its previous fit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: Seconds from SIGINT to the fit's KeyboardInterrupt. Where the system tells the child's CPU time (Linux), the
#: work done in that time is counted instead, which a loaded machine does not stretch as it stretches wall time:
#: at most LIMIT seconds on each of the threads the fits use (all cores, n_jobs=None).
LIMIT = 1.0
THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of process ``pid`` so far (every thread), or None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, fields start at 3 (state)
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 (utime) and 15 (stime)

CASES = [
    "gmm_full", "gmm_tied", "gmm_diag", "gmm_spherical", "bernoulli", "poisson", "mixed", "ppca_em",
    "ppca_em_streamed", "fa", "sparse", "gmm_kmeans_init", "refit_gmm_full", "refit_poisson", "refit_mixed", "refit_fa",
    "ppca_closed_form_wide",
    "sparse_full_large", "partial_fit_sparse_full", "partial_fit_gmm", "sparse_quasi_newton",
]
#: Cases whose data take a while to prepare, or whose fit reaches its long step only after a while.
SLOW_START = ("gmm_kmeans_init", "sparse_full_large", "partial_fit_sparse_full",
              "partial_fit_gmm", "sparse_quasi_newton")


@pytest.mark.parametrize("case", CASES)
def test_sigint_stops_the_fit_within_a_second(case):
    # A child per case: the cases are separate tests, so that pytest-xdist spreads them like any other module's
    # (one test of all twenty cases was the last test left on one worker while the other waited).
    child = Path(__file__).resolve().parent / "interrupt_child.py"
    with subprocess.Popen([sys.executable, str(child), case], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            line = process.stdout.readline()
            assert line == f"ready {case}\n", (line, process.stderr.read() if not line else "")
            # the fit is under way: validation and initialisation, or EM (or the eigendecomposition); the small
            # cases' data are validated and initialised in milliseconds
            time.sleep(1.5 if case in SLOW_START else 0.25)
            sent, cpu_at_signal = time.perf_counter(), cpu_seconds(process.pid)
            os.kill(process.pid, signal.SIGINT)
            report = json.loads(process.stdout.readline())
            wall, cpu_now = time.perf_counter() - sent, cpu_seconds(process.pid)
        finally:
            process.kill()
    seconds = wall if cpu_at_signal is None or cpu_now is None else (cpu_now - cpu_at_signal) / THREADS
    assert report["outcome"] == "interrupted"
    assert seconds < LIMIT, f"{case} took {seconds:.2f} s to stop"
    assert report["state_ok"], f"{case} left a half-updated or changed model"
