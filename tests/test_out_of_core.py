"""Data larger than memory: memory-mapped arrays are read in place and their pages dropped behind each pass;
iterables of chunks (and memory-mapped arrays of other dtypes) are copied chunk by chunk into a temporary
mapped file. Every such fit is the in-memory fit, bit for bit; the resident memory of a fit over a mapped file
stays at a few chunks however large the file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import entrosum
from entrosum.engine import data_source

from conftest import model_cases

# SparseCoding.fit (owned by the sparse-coding branch) does not read chunk sources yet: it needs the three lines
# of the other estimators' fit (``with fit_data(X) as data``) and ``&data`` in its bindings' make_execution.
CASES = {name: case for name, case in model_cases().items() if name != "sparse"}


def fit(name: str, X, **settings):
    make, _ = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        return make().set_params(chunk_size=37, **settings).fit(X)


def assert_identical(a, b) -> None:
    """The same fitted attributes and monitor history, to the last bit."""
    names = sorted(n for n in vars(b) if n.endswith("_") and not n.startswith("_") and n != "monitor_")
    for name in names:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for field in ("elbo", "entropy_sum", "gap", "m_step_elbo"):
        np.testing.assert_array_equal(a.monitor_.history[field], b.monitor_.history[field], err_msg=field)


@pytest.mark.parametrize("name", CASES)
def test_memmap_and_chunks_give_the_in_memory_fit(name, tmp_path):
    data = CASES[name][1]
    reference = fit(name, data)
    np.save(tmp_path / "data.npy", data)
    mapped = np.load(tmp_path / "data.npy", mmap_mode="r")
    assert data_source.memory_mapped(mapped) is not None
    assert_identical(fit(name, mapped), reference)
    chunks = np.array_split(data, 7)
    assert_identical(fit(name, chunks), reference)                            # a list of arrays
    assert_identical(fit(name, (chunk for chunk in chunks)), reference)       # a generator, read once
    assert_identical(fit(name, lambda: iter(chunks)), reference)              # a fresh iterator per call
    # a mapped file of another layout is copied, not read in place
    np.save(tmp_path / "fortran.npy", np.asfortranarray(data))
    assert_identical(fit(name, np.load(tmp_path / "fortran.npy", mmap_mode="r")), reference)


def test_memmap_of_counts_in_int16_is_copied_chunk_by_chunk(tmp_path, monkeypatch):
    make, counts = CASES["poisson"]
    np.save(tmp_path / "counts.npy", counts.astype(np.int16))
    monkeypatch.setattr(data_source, "COPY_BYTES", 600)  # many pieces
    mapped = np.load(tmp_path / "counts.npy", mmap_mode="r")
    assert_identical(fit("poisson", mapped), fit("poisson", counts))


def test_float32_chunks_stay_float32():
    make, data = CASES["gmm_diag"]
    single = data.astype(np.float32)
    model = fit("gmm_diag", np.array_split(single, 3))
    assert model.means_.dtype == np.float32
    assert_identical(model, fit("gmm_diag", single))


def test_bad_chunks_are_rejected():
    make, data = CASES["fa"]
    with pytest.raises(ValueError, match="chunk 1 of X has 5 features; the first chunk has 6"):
        fit("fa", [data[:10], data[10:20, :5]])
    with pytest.raises(ValueError, match="chunk 0 of X must be 2-D"):
        fit("fa", iter([data[0], data[1]]))
    with pytest.raises(ValueError, match="holds no rows"):
        fit("fa", iter([]))
    with pytest.raises(TypeError, match="real numbers"):
        fit("fa", [data[:10], data[10:20].astype(str)])


def test_copy_on_write_memmap_is_not_released(tmp_path):
    # dropping pages of a private mapping would lose the user's changes to them: such maps are left alone
    make, data = CASES["gmm_diag"]
    np.save(tmp_path / "data.npy", data)
    private = np.load(tmp_path / "data.npy", mmap_mode="c")
    private[0] = 100.0  # a change that exists only in this process
    model = fit("gmm_diag", private)
    assert private[0, 0] == 100.0
    assert_identical(model, fit("gmm_diag", np.array(private)))


RSS_CHILD = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    import entrosum

    def status_kib(field):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

    path, mode, n_rows, n_features = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data = np.memmap(path, dtype=np.float32, mode=mode.split("/")[0], shape=(n_rows, n_features))
    def fit(X):
        model = entrosum.GaussianMixture(4, covariance_type="diag", init_params="random", tol=None, max_iter=3,
                                         random_state=0, n_jobs=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X)

    fit(np.array(data[:20_000]))  # first, the one-time set-up of threads and allocator arenas, in memory
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # the peak resident size (VmHWM) restarts from the current one
    before = status_kib("VmRSS")
    if mode.endswith("/chunks"):  # the same rows as a generator of 16 MiB slices: copied to a temporary file
        model = fit(data[begin:begin + 262_144] for begin in range(0, n_rows, 262_144))
    else:
        model = fit(data)
    print(json.dumps({"growth_mib": (status_kib("VmHWM") - before) / 1024, "means": model.means_.tolist()}))
""")


def test_peak_memory_of_a_memmap_fit_stays_at_a_few_chunks(tmp_path):
    # a 64 MiB float32 file: 64 times the default chunk of about 1 MiB
    n_rows, n_features = 1_048_576, 16
    rng = np.random.default_rng(0)
    path = tmp_path / "data.f32"
    with open(path, "wb") as stream:
        for _ in range(8):
            block = rng.standard_normal((n_rows // 8, n_features), dtype=np.float32)
            block[:, 0] += 4.0 * rng.integers(0, 4, n_rows // 8)
            block.tofile(stream)
    file_mib = path.stat().st_size / 2**20

    def run(mode: str) -> dict:
        result = subprocess.run([sys.executable, "-c", RSS_CHILD, str(path), mode, str(n_rows), str(n_features)],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    shared = run("r")
    private = run("c")  # the same passes over a map whose pages are kept: the whole file becomes resident
    chunks = run("r/chunks")
    assert shared["growth_mib"] < 12, shared["growth_mib"]
    assert private["growth_mib"] > 0.8 * file_mib, private["growth_mib"]
    assert chunks["growth_mib"] < 0.5 * file_mib, chunks["growth_mib"]  # a 16 MiB chunk at a time, then as above
    assert shared["means"] == private["means"] == chunks["means"]
