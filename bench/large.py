"""Large data: a diagonal Gaussian mixture fitted to a memory-mapped float32 file, against the same fit on an
in-memory slice, against scikit-learn on the largest slice it can hold, and the same fit on a Dask array over the
same file with a LocalCluster of two worker processes (issue 5).

    python bench/large.py --dir /data     # 50 million x 32 float32 (6.4 GB) .npy in /data, K = 64, 3 iterations
    python bench/large.py --rows 2000000 --iters 3                 # scaled down
    python bench/large.py --quick         # 1/100 of the rows: a check that the script runs

Every fit runs in a fresh process from the same start (given weights, means and precisions, so no
initialisation pass) for a fixed number of EM iterations; the table gives the time per iteration, the rows per
second and the peak memory beyond what the process held before the fit (VmHWM, see bench/_common.py). The data
file (``.npy``) is written once, chunk by chunk, into ``--dir`` (TMPDIR by default) and reused by later runs
when it is there; without ``--dir`` or ``--keep`` it is deleted at the end.

The Dask fit builds its array from ``np.load(path, mmap_mode='r')`` slices inside delayed functions, so each
worker maps the file itself and no data travel through the client; its time per iteration includes the
scheduling of every pass, its memory is given for the client and for the largest worker (each process's VmHWM
beyond its RSS before the fit).
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
    """Rows of a K-component diagonal Gaussian mixture, written to a .npy file in 16 MiB float32 blocks."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_components, n_features))
    scales = rng.uniform(0.5, 1.5, size=(n_components, n_features))
    rows = max(1, (16 << 20) // (4 * n_features))
    partial = path + ".partial"  # renamed when complete, so an interrupted write is never reused
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    for start in range(0, n_rows, rows):
        n = min(rows, n_rows - start)
        labels = rng.integers(n_components, size=n)
        out[start:start + n] = centres[labels] + scales[labels] * rng.standard_normal((n, n_features))
    out.flush()
    del out
    os.replace(partial, path)


def _block(path: str, begin: int, end: int) -> np.ndarray:
    """Rows [begin, end) of the file, mapped by the worker that runs this (nothing is read here)."""
    return np.load(path, mmap_mode="r")[begin:end]


def _peak_reset() -> int:
    """Reset this process's VmHWM and return its RSS in KiB (run on each Dask worker)."""
    from _common import _reset_peak, _status_kib

    _reset_peak()
    return _status_kib("VmRSS")


def _peak() -> int:
    from _common import _status_kib

    return _status_kib("VmHWM")


def dask_fit(spec: dict, model: object) -> dict:
    """The fit on a Dask array over the file with a LocalCluster of two single-threaded worker processes."""
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    n_rows, n_features = spec["rows"], spec["features"]
    block_rows = max(1, (64 << 20) // (4 * n_features))  # 64 MiB blocks
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(sys.path.insert, 0, bench_dir)  # _common for the memory probes
        blocks = [da.from_delayed(dask.delayed(_block)(spec["path"], begin, min(begin + block_rows, n_rows)),
                                  (min(begin + block_rows, n_rows) - begin, n_features), dtype=np.float32)
                  for begin in range(0, n_rows, block_rows)]
        X = da.concatenate(blocks)
        before = client.run(_peak_reset)
        _, result = measure(lambda: model.fit(X))
        peaks = client.run(_peak)
    result["workers_extra_mib"] = max((peaks[name] - before[name]) / 1024.0 for name in peaks)
    return result


def _complete(path: str, n_rows: int, n_features: int) -> bool:
    """Whether ``path`` holds the whole data set already (a .npy of the right shape and dtype)."""
    try:
        mapped = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return mapped.shape == (n_rows, n_features) and mapped.dtype == np.float32


def start(n_features: int, n_components: int, seed: int) -> dict:
    """A fixed start: equal weights, means from a wide normal, unit precisions."""
    rng = np.random.default_rng(seed + 1)
    return {"weights": np.full(n_components, 1.0 / n_components),
            "means": rng.normal(scale=3.0, size=(n_components, n_features)),
            "precisions": np.ones((n_components, n_features))}


def worker(spec: dict) -> dict:
    n_rows, n_features, n_components = spec["rows"], spec["features"], spec["components"]
    mapped = np.load(spec["path"], mmap_mode="r")
    if spec["where"] in ("memmap", "dask"):
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
        if spec["where"] == "dask":
            del X, mapped
            result = dask_fit(spec, model)
        else:
            _, result = measure(lambda: model.fit(X))
    result["per_iteration"] = result["time"] / spec["iterations"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--iters", "--iterations", dest="iterations", type=int, default=3,
                        help="EM iterations per fit")
    parser.add_argument("--slice-rows", type=int, default=10_000_000, help="rows of the in-memory entrosum fit")
    parser.add_argument("--memory-gb", type=float, default=16.0, help="memory scikit-learn may use")
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--dir", help="where the data file is written, and reused when present (default: TMPDIR)")
    parser.add_argument("--file", help="the data file (.npy; default: in --dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data file")
    parser.add_argument("--no-dask", action="store_true", help="leave out the Dask fit")
    parser.add_argument("--quick", action="store_true", help="1/100 of the rows")
    parser.add_argument("--seed", type=int, default=0)
    add_worker_option(parser)
    args = parser.parse_args()
    if run_as_worker(args, worker):
        return
    wall0 = time.perf_counter()
    scale = 100 if args.quick else 1
    rows = args.rows // scale
    slice_rows = min(rows, args.slice_rows // scale)
    # scikit-learn holds the data in float64 plus about six (N, K) float64 arrays at its peak (log-densities,
    # their weighted sum, log-responsibilities, responsibilities and temporaries): bench/gmm.py measured
    # 3.0 KB per row at D=32, K=64, and 2 (N, K) arrays only, the first estimate here, ran out of memory
    sklearn_bytes_per_row = 8 * args.features + 6 * 8 * args.components
    sklearn_rows = min(rows, int(args.memory_gb * 2**30 * 0.8 / sklearn_bytes_per_row) // scale)
    directory = args.dir or tempfile.gettempdir()
    os.makedirs(directory, exist_ok=True)
    path = args.file or os.path.join(directory, f"entrosum-bench-large-{rows}x{args.features}-seed{args.seed}.npy")
    expected = rows * args.features * 4
    if not _complete(path, rows, args.features):
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
    if not args.no_dask:
        runs.append(("entrosum, Dask, 2 workers, same file", {"peer": "entrosum", "where": "dask", "rows": rows}))
    table = []
    for label, spec in runs:
        log(wall0, f"{label}: {spec['rows']} rows")
        result = run_worker(__file__, {**base, **spec})
        workers = result.get("workers_extra_mib")
        table.append([label, f"{spec['rows']:,}", f"{result['per_iteration']:.2f}",
                      f"{spec['rows'] / result['per_iteration'] / 1e6:.2f}", f"{result['mem_extra_mib']:.0f}",
                      "-" if workers is None else f"{workers:.0f}"])
    print_table(["fit", "rows", "s / iteration", "M rows / s", "peak extra MiB", "per worker MiB"], table,
                right={1, 2, 3, 4, 5})
    print(f"# file: {path} ({expected / 2**30:.2f} GiB)")
    if not args.keep and not args.file and not args.dir:
        os.unlink(path)
    print_footer(wall0)


if __name__ == "__main__":
    main()
