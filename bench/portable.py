"""Benchmark: the portable build (run-time dispatch) against a -march=native build, on this machine.

Run from the repository root::

    python bench/portable.py [--native DIR] [--portable DIR] [--repeat R] [--quick]

    --native DIR    an entrosum installed with ``pip install --target DIR .`` (the default local build,
                    -march=native); built into a temporary directory when omitted
    --portable DIR  the same with ``-C cmake.define.ENTROSUM_NATIVE=OFF`` (the wheel's build: baseline,
                    avx2 and avx512 variants); built when omitted
    --repeat R      best of R runs per workload (default 3)
    --quick         a tenth of the rows

Building both takes several minutes on two cores (the portable one compiles the library three times).

Each workload runs in a fresh process whose PYTHONPATH holds one of the builds, with ENTROSUM_CPU unset (the
dispatcher's own choice, printed) and, for the portable build, also forced to ``baseline`` (plain x86-64, what
a wheel without dispatch would run). Time is per EM iteration (the monitor's median) for the mixtures and per
fit for PPCA (closed form) and FA (iterations on the covariance after one pass), best of R. Goal: the
portable build within 15% of the native one (ratio <= 1.15).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import cpu_model, log, print_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOAD = r"""
import json, sys, time, warnings
import numpy as np
import entrosum
from entrosum import _core
spec = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
N, D, K = spec["N"], spec["D"], spec["K"]
model = spec["model"]
if model in ("gmm", "ppca", "fa"):
    centres = rng.normal(0.0, 3.0, (K, D))
    X = centres[rng.integers(0, K, N)] + rng.normal(0.0, 1.0, (N, D))
elif model == "bernoulli":
    X = (rng.random((N, D)) < rng.random((K, D))[rng.integers(0, K, N)]).astype(float)
X = X.astype(spec["dtype"])
warnings.simplefilter("ignore")
if model == "gmm":
    est = entrosum.GaussianMixture(K, covariance_type=spec["cov"], max_iter=6, tol=0, init_params="random",
                                   random_state=0, n_jobs=-1)
elif model == "bernoulli":
    est = entrosum.BernoulliMixture(K, max_iter=6, tol=0, init_params="random", random_state=0, n_jobs=-1)
elif model == "ppca":
    est = entrosum.PPCA(K, n_jobs=-1)
else:
    est = entrosum.FactorAnalysis(K, max_iter=6, tol=0, n_jobs=-1)
start = time.perf_counter()
est.fit(X)
total = time.perf_counter() - start
times = np.asarray(est.monitor_.history["time"])
# PPCA's closed form and FA's iterations on the covariance do not pass over the data per iteration:
# time the whole fit for them.
per_iteration = float(np.median(times[1:])) if model == "gmm" or model == "bernoulli" else total
print(json.dumps({"variant": _core.cpu_variant, "seconds": per_iteration}))
"""

WORKLOADS = [
    dict(name="GaussianMixture full", model="gmm", cov="full", N=200_000, D=32, K=64, dtype="float64"),
    dict(name="GaussianMixture diag", model="gmm", cov="diag", N=400_000, D=32, K=64, dtype="float64"),
    dict(name="GaussianMixture diag f32", model="gmm", cov="diag", N=400_000, D=32, K=64, dtype="float32"),
    dict(name="GaussianMixture tied", model="gmm", cov="tied", N=400_000, D=32, K=64, dtype="float64"),
    dict(name="BernoulliMixture", model="bernoulli", N=400_000, D=64, K=32, dtype="float64"),
    dict(name="PPCA (closed form)", model="ppca", N=400_000, D=128, K=16, dtype="float64"),
    dict(name="FactorAnalysis", model="fa", N=200_000, D=64, K=8, dtype="float64"),
]


def build(target: str, portable: bool) -> None:
    args = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--quiet",
            "--target", target, "-C", f"build-dir={target}-build"]
    if portable:
        args += ["-C", "cmake.define.ENTROSUM_NATIVE=OFF"]
    subprocess.run(args + [REPO], check=True)


def run(target: str, spec: dict, variant: str | None, repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=target)
    env.pop("ENTROSUM_CPU", None)
    if variant:
        env["ENTROSUM_CPU"] = variant
    best = None
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-c", WORKLOAD, json.dumps(spec)], env=env, cwd=tempfile.gettempdir(),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{spec['name']} ({variant or 'default'}) failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--native")
    parser.add_argument("--portable")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    wall0 = time.perf_counter()
    scratch = tempfile.mkdtemp(prefix="entrosum-portable-")
    native, portable = args.native, args.portable
    if native is None:
        native = os.path.join(scratch, "native")
        log(wall0, "building the native variant")
        build(native, portable=False)
    if portable is None:
        portable = os.path.join(scratch, "portable")
        log(wall0, "building the portable variants")
        build(portable, portable=True)

    print("# entrosum: portable build (run-time dispatch) vs -march=native build")
    print(f"# CPU: {cpu_model()}, {os.cpu_count()} logical cores; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# native: {native}\n# portable: {portable}\n# best of {args.repeat}; seconds per EM iteration "
          "(monitor median; mixtures) or per fit (PPCA, FA); ratio = portable / native; goal <= 1.15")
    rows = []
    for spec in WORKLOADS:
        spec = dict(spec)
        if args.quick:
            spec["N"] //= 10
        log(wall0, spec["name"])
        a = run(native, spec, None, args.repeat)
        b = run(portable, spec, None, args.repeat)
        c = run(portable, spec, "baseline", args.repeat)
        ratio = b["seconds"] / a["seconds"]
        rows.append([spec["name"], f"{spec['N']:,}x{spec['D']}x{spec['K']}", spec["dtype"],
                     f"{a['seconds']:.4f}", f"{b['seconds']:.4f} ({b['variant']})", f"{ratio:.2f}",
                     f"{c['seconds']:.4f}", f"{c['seconds'] / a['seconds']:.2f}", "ok" if ratio <= 1.15 else "MISS"])
    print_table(["workload", "N x D x K", "dtype", "native s", "portable s (variant)", "ratio", "baseline s",
                 "baseline ratio", "goal"], rows, right={3, 5, 6, 7})
    print(f"# total wall time {time.perf_counter() - wall0:.0f} s")


if __name__ == "__main__":
    main()
