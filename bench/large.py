"""Large data: a diagonal Gaussian mixture fitted to a memory-mapped float32 file, against the same fit on an
in-memory slice and against scikit-learn on the largest slice it can hold (issue 5).

    python bench/large.py                 # 50 million x 32 float32 (6.4 GB) in TMPDIR, K = 64, 3 iterations
    python bench/large.py --quick         # 1/100 of the rows: a check that the script runs

Every fit runs in a fresh process from the same start (given weights, means and precisions, so no
initialisation pass) for a fixed number of EM iterations; the table gives the time per iteration, the rows per
second and the peak memory beyond what the process held before the fit (VmHWM, see bench/_common.py). The data
file is written once, chunk by chunk, and kept for later runs (``--keep``) or deleted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    add_worker_option,
    log,
    measure,
    print_footer,
    print_machine_header,
    print_table,
    run_as_worker,
    run_worker,
)


def write_data(path: str, n_rows: int, n_features: int, n_components: int, seed: int) -> None:
    """Rows of a K-component diagonal Gaussian mixture, written in 16 MiB float32 blocks."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_components, n_features))
    scales = rng.uniform(0.5, 1.5, size=(n_components, n_features))
    rows = max(1, (16 << 20) // (4 * n_features))
    with open(path, "wb") as stream:
        for start in range(0, n_rows, rows):
            n = min(rows, n_rows - start)
            labels = rng.integers(n_components, size=n)
            block = centres[labels] + scales[labels] * rng.standard_normal((n, n_features))
            block.astype(np.float32).tofile(stream)


def start(n_features: int, n_components: int, seed: int) -> dict:
    """A fixed start: equal weights, means from a wide normal, unit precisions."""
    rng = np.random.default_rng(seed + 1)
    return {"weights": np.full(n_components, 1.0 / n_components),
            "means": rng.normal(scale=3.0, size=(n_components, n_features)),
            "precisions": np.ones((n_components, n_features))}


def worker(spec: dict) -> dict:
    n_rows, n_features, n_components = spec["rows"], spec["features"], spec["components"]
    mapped = np.memmap(spec["path"], dtype=np.float32, mode="r", shape=(spec["file_rows"], n_features))
    if spec["where"] == "memmap":
        X = mapped[:n_rows]
    else:  # in memory: read before the measurement
        X = np.array(mapped[:n_rows], dtype=np.float32 if spec["peer"] == "entrosum" else np.float64)
        del mapped
    init = start(n_features, n_components, spec["seed"])
    if spec["peer"] == "entrosum":
        import entrosum

        model = entrosum.GaussianMixture(n_components, covariance_type="diag", tol=None,
                                         max_iter=spec["iterations"], weights_init=init["weights"],
                                         means_init=init["means"], precisions_init=init["precisions"],
                                         n_jobs=spec["jobs"])
    else:
        from sklearn.mixture import GaussianMixture

        model = GaussianMixture(n_components, covariance_type="diag", tol=0.0, max_iter=spec["iterations"],
                                weights_init=init["weights"], means_init=init["means"],
                                precisions_init=init["precisions"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, result = measure(lambda: model.fit(X))
    result["per_iteration"] = result["time"] / spec["iterations"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--slice-rows", type=int, default=10_000_000, help="rows of the in-memory entrosum fit")
    parser.add_argument("--memory-gb", type=float, default=16.0, help="memory scikit-learn may use")
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--file", help="the data file (default: in TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the data file")
    parser.add_argument("--quick", action="store_true", help="1/100 of the rows")
    parser.add_argument("--seed", type=int, default=0)
    add_worker_option(parser)
    args = parser.parse_args()
    if run_as_worker(args, worker):
        return
    wall0 = time.perf_counter()
    scale = 100 if args.quick else 1
    rows, slice_rows = args.rows // scale, args.slice_rows // scale
    # scikit-learn holds the data in float64 plus an (N, K) float64 responsibility array and its log
    sklearn_bytes_per_row = 8 * args.features + 2 * 8 * args.components
    sklearn_rows = min(rows, int(args.memory_gb * 2**30 * 0.8 / sklearn_bytes_per_row) // scale)
    path = args.file or os.path.join(tempfile.gettempdir(), f"entrosum-bench-large-{rows}x{args.features}.f32")
    expected = rows * args.features * 4
    if not (os.path.exists(path) and os.path.getsize(path) == expected):
        log(wall0, f"writing {expected / 2**30:.2f} GiB to {path}")
        write_data(path, rows, args.features, args.components, args.seed)
    print_machine_header(f"GaussianMixture diag, K={args.components}, {args.features} float32 features, "
                         f"{args.iterations} EM iterations from a fixed start{'   [--quick: N/100]' * args.quick}",
                         quick=False)
    base = {"path": path, "file_rows": rows, "features": args.features, "components": args.components,
            "iterations": args.iterations, "seed": args.seed, "jobs": args.jobs}
    runs = [("entrosum, memory-mapped file", {"peer": "entrosum", "where": "memmap", "rows": rows}),
            ("entrosum, in memory", {"peer": "entrosum", "where": "memory", "rows": slice_rows}),
            ("scikit-learn, in memory (float64)", {"peer": "sklearn", "where": "memory", "rows": sklearn_rows})]
    table = []
    for label, spec in runs:
        log(wall0, f"{label}: {spec['rows']} rows")
        result = run_worker(__file__, {**base, **spec})
        table.append([label, f"{spec['rows']:,}", f"{result['per_iteration']:.2f}",
                      f"{spec['rows'] / result['per_iteration'] / 1e6:.2f}", f"{result['mem_extra_mib']:.0f}"])
    table.append(["Dask, 2 workers", "-", "not yet", "-", "-"])
    print_table(["fit", "rows", "s / iteration", "M rows / s", "peak extra MiB"], table, right={1, 2, 3, 4})
    print(f"# file: {path} ({expected / 2**30:.2f} GiB)")
    if not args.keep and not args.file:
        os.unlink(path)
    print_footer(wall0)


if __name__ == "__main__":
    main()
