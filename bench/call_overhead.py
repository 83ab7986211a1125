"""Benchmark: the cost of one small call, where the work is tiny and the call is most of it.

What a user pays per call for the calls made many times on a few rows (``predict``, ``score_samples``,
``transform``, ``partial_fit`` on a mini-batch): Python-side validation, the bindings' argument conversion and the
C++ call. Per call, entrosum's time against scikit-learn's same call on the same fitted model, measured in the same
run; it is how a change to the bindings' build or to validation is checked. Each row is the best of REPEAT runs of
a loop of CALLS calls, wall and process CPU time per call, in microseconds; no peer: '-'. Single runs on a shared
machine spread by 10-20%: compare builds by alternating runs and taking each row's minimum.

    python bench/call_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import _common as common


def per_call(call: Callable[[], object], calls: int, repeat: int) -> tuple[float, float]:
    """(wall, CPU) microseconds per call: the best of ``repeat`` loops of ``calls`` calls."""
    call()  # warm-up: first-call imports and allocations
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            call()
        best_wall = min(best_wall, (time.perf_counter() - wall0) / calls * 1e6)
        best_cpu = min(best_cpu, (time.process_time() - cpu0) / calls * 1e6)
    return best_wall, best_cpu


def cases(rng: np.random.Generator) -> list[tuple[str, Callable[[], object], Callable[[], object] | None]]:
    """(name, entrosum call, scikit-learn call or None) on models fitted to small data, with 10-row inputs."""
    import sklearn.decomposition as skd
    import sklearn.mixture as skm

    import entrosum

    data = rng.normal(size=(2000, 8)) + rng.integers(0, 4, size=(2000, 1)) * 3.0
    rows = np.ascontiguousarray(data[:10])
    binary = (rng.random((2000, 16)) < 0.3).astype(float)
    out = []
    for covariance_type in ("full", "diag"):
        ours = entrosum.GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(data)
        theirs = skm.GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(data)
        out.append((f"GaussianMixture({covariance_type}).predict", lambda m=ours: m.predict(rows),
                    lambda m=theirs: m.predict(rows)))
        out.append((f"GaussianMixture({covariance_type}).score_samples", lambda m=ours: m.score_samples(rows),
                    lambda m=theirs: m.score_samples(rows)))
    ppca = entrosum.PPCA(3, random_state=0).fit(data)
    pca = skd.PCA(3, random_state=0).fit(data)
    out.append(("PPCA.transform", lambda: ppca.transform(rows), lambda: pca.transform(rows)))
    fa = entrosum.FactorAnalysis(3, random_state=0).fit(data)
    skfa = skd.FactorAnalysis(3, random_state=0).fit(data)
    out.append(("FactorAnalysis.score_samples", lambda: fa.score_samples(rows), lambda: skfa.score_samples(rows)))
    bernoulli = entrosum.BernoulliMixture(4, random_state=0).fit(binary)
    out.append(("BernoulliMixture.predict_proba", lambda: bernoulli.predict_proba(binary[:10]), None))
    stepwise = entrosum.GaussianMixture(4, covariance_type="diag", random_state=0)
    stepwise.partial_fit(data[:64])
    batch = data[64:128]
    out.append(("GaussianMixture(diag).partial_fit 64 rows", lambda: stepwise.partial_fit(batch), None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per loop")
    args = parser.parse_args()
    calls, repeat = (200, 3) if args.quick else (2000, 5)
    wall0 = time.perf_counter()
    common.print_machine_header("entrosum vs scikit-learn, one small call (10 rows)", args.quick,
                                quick_note=f"{calls} calls x {repeat}")
    rows = []
    ratios = []
    for name, ours, theirs in cases(np.random.default_rng(0)):
        ours_wall, ours_cpu = per_call(ours, calls, repeat)
        if theirs is None:
            rows.append([name, f"{ours_wall:.1f}", f"{ours_cpu:.1f}", "-", "-", "-"])
            continue
        theirs_wall, theirs_cpu = per_call(theirs, calls, repeat)
        ratios.append(theirs_wall / ours_wall)
        rows.append([name, f"{ours_wall:.1f}", f"{ours_cpu:.1f}", f"{theirs_wall:.1f}", f"{theirs_cpu:.1f}",
                     f"{ratios[-1]:.2f}x"])
    common.print_table(["call", "ent wall us", "ent cpu us", "sk wall us", "sk cpu us", "sk / ent"], rows,
                       right={1, 2, 3, 4, 5})
    print(f"# min ratio (scikit-learn time / entrosum time): {min(ratios):.2f}x")
    common.print_footer(wall0)


if __name__ == "__main__":
    main()
