"""scipy.sparse input of the Bernoulli, Poisson and multinomial mixtures.

The CSR passes against the dense ones (fits, scores, k-means, partial_fit), threads and weights, peak memory near
the nonzeros, and bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sparse

import entrosum
from entrosum import _core


def sparse_counts(n, D, K, seed, density=0.05):
    """Counts of a K-component Poisson mixture whose rates are mostly 0: a sparse bag-of-words-like table."""
    rng = np.random.default_rng(seed)
    rates = np.where(rng.random((K, D)) < density, rng.uniform(1.0, 6.0, (K, D)), 0.0)
    labels = rng.integers(K, size=n)
    return rng.poisson(rates[labels]).astype(np.float64)


def sparse_binary(n, D, K, seed):
    rng = np.random.default_rng(seed)
    probabilities = np.where(rng.random((K, D)) < 0.2, 0.8, 0.02)
    labels = rng.integers(K, size=n)
    return (rng.random((n, D)) < probabilities[labels]).astype(np.float64)


def sparse_documents(n, D, K, seed):
    """Word counts with at least one word per document (a multinomial row needs a positive total)."""
    counts = sparse_counts(n, D, K, seed)
    counts[np.arange(n), np.random.default_rng(seed).integers(D, size=n)] += 1.0
    return counts


CASES = [(entrosum.PoissonMixture, sparse_counts), (entrosum.BernoulliMixture, sparse_binary),
         (entrosum.MultinomialMixture, sparse_documents)]


def fitted_pair(cls, dense, **settings):
    """Dense and CSR fits of 40 iterations (a fixed count: the paths are compared, not convergence)."""
    options = dict(n_components=3, random_state=0, chunk_size=97, tol=None, max_iter=40, **settings)
    return cls(**options).fit(dense), cls(**options).fit(sparse.csr_matrix(dense))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("cls", "make"), CASES)
@pytest.mark.parametrize("init", ["random_from_data", "random", "kmeans", "k-means++"])
def test_csr_fit_equals_the_dense_fit(cls, make, init):
    dense = make(600, 40, 3, seed=1)
    assert (dense == 0).mean() > 0.7
    dense_model, sparse_model = fitted_pair(cls, dense, init_params=init)
    np.testing.assert_allclose(sparse_model.weights_, dense_model.weights_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sparse_model.means_, dense_model.means_, rtol=1e-12, atol=1e-14)
    assert sparse_model.n_iter_ == dense_model.n_iter_
    for name in ("elbo", "entropy_sum", "data_term"):
        np.testing.assert_allclose(sparse_model.monitor_.history[name], dense_model.monitor_.history[name],
                                   rtol=1e-12)
    # the theorem on the sparse path: F = S after every M-step
    history = sparse_model.monitor_.history
    np.testing.assert_allclose(history["m_step_elbo"][1:], history["m_step_entropy_sum"][1:], rtol=0, atol=1e-10)


@pytest.mark.parametrize(("cls", "make"), CASES)
def test_csr_scores_equal_the_dense_scores(cls, make):
    dense = make(500, 30, 3, seed=2)
    model = cls(3, random_state=0).fit(dense)
    matrix = sparse.csr_matrix(dense)
    np.testing.assert_allclose(model.score_samples(matrix), model.score_samples(dense), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(matrix), model.predict_proba(dense), rtol=1e-11, atol=1e-14)
    np.testing.assert_array_equal(model.predict(matrix), model.predict(dense))
    assert model.bic(matrix) == pytest.approx(model.bic(dense), rel=1e-12)


def test_other_sparse_formats_and_float32_are_taken():
    dense = sparse_counts(400, 25, 3, seed=3)
    reference = entrosum.PoissonMixture(3, random_state=0).fit(sparse.csr_matrix(dense))
    for matrix in (sparse.csc_matrix(dense), sparse.coo_matrix(dense), sparse.csr_array(dense)):
        model = entrosum.PoissonMixture(3, random_state=0).fit(matrix)
        np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-12)
    single = entrosum.PoissonMixture(3, random_state=0).fit(sparse.csr_matrix(dense.astype(np.float32)))
    assert single.means_.dtype == np.float32
    np.testing.assert_allclose(single.means_, reference.means_, rtol=1e-4, atol=1e-5)


def test_duplicate_entries_are_summed_as_scipy_means_them():
    dense = sparse_counts(200, 10, 2, seed=4)
    coo = sparse.coo_matrix(dense)
    halves = np.floor(coo.data / 2)
    doubled = sparse.csr_matrix((np.concatenate([halves, coo.data - halves]),
                                 (np.concatenate([coo.row, coo.row]), np.concatenate([coo.col, coo.col]))),
                                shape=dense.shape)
    doubled.has_canonical_format = False
    model = entrosum.PoissonMixture(2, random_state=0).fit(sparse.csr_matrix(dense))
    np.testing.assert_allclose(model.score_samples(doubled), model.score_samples(dense), rtol=1e-12)


@pytest.mark.parametrize(("cls", "make"), CASES)
def test_threads_do_not_change_the_csr_fit(cls, make):
    matrix = sparse.csr_matrix(make(3000, 30, 3, seed=5))
    one = cls(3, random_state=0, n_jobs=1, chunk_size=100).fit(matrix)
    two = cls(3, random_state=0, n_jobs=2, chunk_size=100).fit(matrix)
    np.testing.assert_array_equal(one.means_, two.means_)
    np.testing.assert_array_equal(one.monitor_.history["elbo"], two.monitor_.history["elbo"])


def test_sample_weights_act_as_repeated_rows_on_csr():
    dense = sparse_counts(300, 20, 2, seed=6)
    repeats = np.random.default_rng(0).integers(1, 4, size=dense.shape[0])
    start = dict(weights_init=np.array([0.5, 0.5]), means_init=np.full((2, 20), 0.5) + np.arange(2)[:, None])
    weighted = entrosum.PoissonMixture(2, **start).fit(sparse.csr_matrix(dense), sample_weight=repeats)
    repeated = entrosum.PoissonMixture(2, **start).fit(sparse.csr_matrix(np.repeat(dense, repeats, axis=0)))
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


def test_kmeans_on_csr_matches_dense_kmeans_on_counts():
    """Integer counts make every squared distance exact, so k-means++ draws the same seeds and Lloyd the same labels."""
    dense = sparse_counts(800, 30, 4, seed=7)
    matrix = sparse.csr_matrix(dense)
    args = (matrix.indptr.astype(np.int64), matrix.indices, matrix.data, dense.shape[1])
    weights = np.empty(0)
    np.testing.assert_array_equal(_core.kmeans_plusplus_csr(*args, weights, 4, 11),
                                  _core.kmeans_plusplus(dense, weights, 4, 11))
    centroids, labels, inertia, _ = _core.kmeans_csr(*args, weights, 4, 11)
    dense_centroids, dense_labels, dense_inertia, _ = _core.kmeans(dense, weights, 4, 11)
    np.testing.assert_array_equal(labels, dense_labels)
    np.testing.assert_allclose(centroids, dense_centroids, rtol=1e-12, atol=1e-12)
    assert inertia == pytest.approx(dense_inertia, rel=1e-10)


def test_partial_fit_on_csr_chunks_equals_dense_chunks():
    dense = sparse_counts(900, 20, 3, seed=8)
    dense_model = entrosum.PoissonMixture(3, random_state=0)
    sparse_model = entrosum.PoissonMixture(3, random_state=0)
    for chunk in np.array_split(dense, 3):
        dense_model.partial_fit(chunk)
        sparse_model.partial_fit(sparse.csr_matrix(chunk))
    np.testing.assert_allclose(sparse_model.means_, dense_model.means_, rtol=1e-12)
    np.testing.assert_allclose(sparse_model.monitor_.history["elbo"], dense_model.monitor_.history["elbo"],
                               rtol=1e-12)


@pytest.mark.parametrize(("cls", "value", "words"), [
    (entrosum.PoissonMixture, -1.0, "Negative values"),
    (entrosum.PoissonMixture, 1.5, "counts"),
    (entrosum.BernoulliMixture, 2.0, "binary"),
])
def test_bad_entries_name_row_and_column(cls, value, words):
    dense = np.zeros((10, 6))
    dense[::2, 1] = 1.0
    dense[7, 4] = value
    with pytest.raises(ValueError, match=rf"{words}.*row 7 holds {value:g} in column 4"):
        cls(2).fit(sparse.csr_matrix(dense))


def test_non_finite_entries_and_wrong_features_are_refused():
    dense = sparse_counts(50, 8, 2, seed=9)
    dense[5, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity.*row 5"):
        entrosum.PoissonMixture(2).fit(sparse.csr_matrix(dense))
    model = entrosum.PoissonMixture(2, random_state=0).fit(sparse.csr_matrix(sparse_counts(50, 8, 2, seed=9)))
    with pytest.raises(ValueError, match="9 features.*expecting 8"):
        model.predict(sparse.csr_matrix(np.ones((3, 9))))


def test_a_multinomial_row_without_counts_is_named():
    dense = sparse_documents(30, 8, 2, seed=10)
    dense[12] = 0.0
    matrix = sparse.csr_matrix(dense)
    with pytest.raises(ValueError, match="row 12 has total 0"):
        entrosum.MultinomialMixture(2).fit(matrix)
    at = matrix.indptr[12]  # a stored zero in row 12 is no count either
    indptr = matrix.indptr.copy()
    indptr[13:] += 1
    stored_zero = sparse.csr_matrix((np.insert(matrix.data, at, 0.0), np.insert(matrix.indices, at, 3), indptr),
                                    shape=matrix.shape)
    assert stored_zero.nnz == matrix.nnz + 1
    with pytest.raises(ValueError, match="row 12 has total 0"):
        entrosum.MultinomialMixture(2).fit(stored_zero)


def test_models_without_sparse_input_still_refuse_it():
    with pytest.raises(TypeError, match="sparse input is not supported"):
        entrosum.GaussianMixture(2).fit(sparse.csr_matrix(np.eye(5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_malformed_csr_arrays_raise_instead_of_crashing(dtype):
    matrix = sparse.csr_matrix(np.eye(4, dtype=dtype))
    indptr, indices, values = matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32), matrix.data
    weights, means, settings = np.full(2, 0.5), np.full((2, 4), 0.5), _core.PoissonSettings()
    score = _core.poisson_mixture_csr_score
    with pytest.raises(ValueError, match="outside"):
        score(indptr, np.array([0, 1, 9, 3], np.int32), values, 4, weights, means, settings, False)
    with pytest.raises(ValueError, match="must not decrease"):
        score(np.array([0, 2, 1, 3, 4], np.int64), indices, values, 4, weights, means, settings, False)
    with pytest.raises(ValueError, match="start at 0 and end"):
        score(np.array([0, 1, 2, 3, 7], np.int64), indices, values, 4, weights, means, settings, False)
    with pytest.raises(ValueError, match="same length"):
        score(indptr, indices, values[:3], 4, weights, means, settings, False)
    with pytest.raises(ValueError, match="means"):
        score(indptr, indices, values, 5, weights, means, settings, False)


def test_peak_memory_of_a_csr_fit_follows_the_nonzeros():
    """20,000 x 20,000 counts with 30 entries per row: 7 MB of entries, 3.2 GB densified. The fit's peak resident
    memory (VmHWM, reset after the data are made) grows by a small multiple of the entries only."""
    script = textwrap.dedent("""
        import numpy as np, scipy.sparse as sparse, entrosum
        n, D, per_row = 20000, 20000, 30
        rng = np.random.default_rng(0)
        indices = rng.integers(D, size=(n, per_row)).astype(np.int32)
        indices.sort(axis=1)
        matrix = sparse.csr_matrix((rng.integers(1, 5, size=n * per_row).astype(np.float64), indices.ravel(),
                                    np.arange(0, n * per_row + 1, per_row)), shape=(n, D))
        matrix.sum_duplicates()
        entrosum.PoissonMixture(2, max_iter=1).fit(sparse.csr_matrix(np.ones((4, 3))))  # imports and first calls
        def peak():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak to the current resident size
        before = peak()
        entrosum.PoissonMixture(5, random_state=0, max_iter=5, tol=None).fit(matrix)
        print(matrix.data.nbytes + matrix.indices.nbytes, peak() - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    entry_bytes, growth = map(int, out.stdout.split())
    # the (K, D) statistics and means are 0.8 MB per copy; the dense data would be 3.2 GB
    assert growth < 3 * entry_bytes + 40 * 2**20, (entry_bytes, growth)
