"""Benchmark: mixtures of counts and binary data on scipy.sparse CSR input against the same data densified.

Run from the repository root::

    python bench/sparse_mixtures.py [--quick] [--n N] [--features D] [--words W]

The data are a generated corpus: N documents (100,000; 20,000 with --quick) over a vocabulary of D = 10,000 words,
about W = 50 distinct words per document, drawn from K = 8 topics (each topic favours its own 5% of the words). The
Poisson and multinomial mixtures fit the counts, the Bernoulli mixture their presence (x > 0). Each configuration
runs in a fresh process (``_common.run_worker``), one thread, float64: the time per EM iteration is (fit with I
iterations − fit with 1 iteration) / (I − 1) by process CPU time and wall time, and the peak memory is the fit's
peak resident memory beyond what the process held before it (VmHWM, reset first), set beside the bytes of the
CSR entries (data and column indices) and of the dense array. The ratio is the dense time over the CSR time.
Families this version of entrosum lacks, or that do not take sparse input, are skipped.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

import entrosum
from _common import add_worker_option, measure, run_as_worker, run_worker

K = 8
FAMILIES = {"poisson": "PoissonMixture", "bernoulli": "BernoulliMixture", "multinomial": "MultinomialMixture"}


def corpus(n: int, n_words: int, words_per_document: int, seed: int = 0) -> Any:
    """An (n, n_words) CSR matrix of word counts: each document draws its words from its topic's favoured words
    (80%) or from the whole vocabulary (20%)."""
    import scipy.sparse as sparse

    rng = np.random.default_rng(seed)
    favoured = [rng.choice(n_words, size=max(1, n_words // 20), replace=False) for _ in range(K)]
    topics = rng.integers(K, size=n)
    rows, columns = [], []
    for start in range(0, n, 10_000):  # in blocks, so that generation stays small beside the corpus
        block = np.arange(start, min(n, start + 10_000))
        lengths = rng.poisson(words_per_document, size=block.size) + 1
        row = np.repeat(block, lengths)
        from_topic = rng.random(row.size) < 0.8
        words = rng.integers(n_words, size=row.size)
        topic_of_row = topics[row]
        picks = rng.integers(favoured[0].size, size=row.size)
        words[from_topic] = np.array([favoured[t][p] for t, p in zip(topic_of_row[from_topic], picks[from_topic])])
        rows.append(row)
        columns.append(words)
    row = np.concatenate(rows)
    column = np.concatenate(columns)
    matrix = sparse.csr_matrix((np.ones(row.size), (row, column)), shape=(n, n_words))
    matrix.sum_duplicates()  # repeated words become counts
    return matrix


def model(family: str, iterations: int) -> Any:
    cls = getattr(entrosum, FAMILIES[family], None)
    if cls is None:
        return None
    return cls(K, tol=None, max_iter=iterations, n_jobs=1, random_state=0, init_params="random_from_data")


def worker(spec: dict) -> dict:
    """Time and measure one (family, layout) in this process."""
    warnings.simplefilter("ignore")  # fixed iteration counts: convergence warnings on purpose
    data = corpus(spec["n"], spec["features"], spec["words"])
    if spec["family"] == "bernoulli":
        data.data[:] = 1.0
    if spec["layout"] == "dense":
        data = data.toarray()
    entry_bytes = int(data.nnz * 12) if spec["layout"] == "csr" else int(data.size * 8)
    model(spec["family"], 2).fit(data)  # warm-up: first calls and allocations are not EM time
    best_cpu = best_wall = np.inf
    peak = 0.0
    for _ in range(spec["repeats"]):
        one, one_stats = measure(lambda: model(spec["family"], 1).fit(data))
        many, stats = measure(lambda: model(spec["family"], spec["iterations"]).fit(data))
        peak = max(peak, stats["mem_extra_mib"])
        best_cpu = min(best_cpu, (stats["cpu"] - one_stats["cpu"]) / (spec["iterations"] - 1))
        best_wall = min(best_wall, (stats["time"] - one_stats["time"]) / (spec["iterations"] - 1))
    return {"cpu": best_cpu, "wall": best_wall, "peak_mib": peak, "data_mib": entry_bytes / 2**20,
            "lower_bound": float(many.lower_bound_)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 20,000 instead of 100,000")
    parser.add_argument("--n", type=int, default=None, help="documents")
    parser.add_argument("--features", type=int, default=10_000, help="vocabulary size")
    parser.add_argument("--words", type=int, default=50, help="mean distinct words per document")
    parser.add_argument("--iterations", type=int, default=6, help="EM iterations of the longer timed fit")
    parser.add_argument("--repeats", type=int, default=2, help="timed pairs per configuration (best kept)")
    add_worker_option(parser)
    args = parser.parse_args()
    if run_as_worker(args, worker):
        return
    n = args.n or (20_000 if args.quick else 100_000)
    started = time.perf_counter()
    print(f"{n:,} documents x {args.features:,} words, ~{args.words} words each, K = {K}, one thread, float64")
    print("per EM iteration: CPU seconds (wall); peak memory of the fit beyond the data; data: CSR entries or dense")
    print(f"{'family':12s} {'layout':6s} {'CPU s':>9s} {'wall s':>9s} {'peak MiB':>9s} {'data MiB':>9s} "
          f"{'dense/CSR':>9s} {'F':>12s}")
    for family in FAMILIES:
        if model(family, 2) is None or not getattr(model(family, 2), "_takes_sparse", False):
            print(f"{family:12s} (no sparse input in this version of entrosum)")
            continue
        results = {}
        for layout in ("csr", "dense"):
            spec = {"family": family, "layout": layout, "n": n, "features": args.features, "words": args.words,
                    "iterations": args.iterations, "repeats": args.repeats}
            results[layout] = result = run_worker(__file__, spec)
            ratio = f"{results['dense']['cpu'] / results['csr']['cpu']:.1f}x" if layout == "dense" else ""
            print(f"{family:12s} {layout:6s} {result['cpu']:>9.4f} {result['wall']:>9.4f} "
                  f"{result['peak_mib']:>9.1f} {result['data_mib']:>9.1f} {ratio:>9s} {result['lower_bound']:>12.6f}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
