"""Fits on a dask array with a LocalCluster of two worker processes: the same model as the in-memory fit with the
same random_state (initialisation included), validation on the workers, no data brought to the client, and a
clean stop on Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
import time

import dask.array as da
import distributed
import numpy as np
import pytest

import entrosum
from entrosum import _core
from entrosum.engine import dask as _dask

# Uneven row blocks, so block boundaries fall anywhere.
BLOCKS = (170, 333, 60, 237)
N_ROWS = sum(BLOCKS)
HISTORY = ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy", "m_step_elbo",
           "m_step_entropy_sum")


@pytest.fixture(scope="module")
def client():
    # The scheduler's HTTP server on a free port (":0"): its default, 8787, may be held by another test's cluster in a
    # process beside this one (pytest-xdist), and the clash leaks a socket that pytest reports as an error.
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
                                  worker_dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def _gaussian(rng: np.random.Generator) -> np.ndarray:
    centres = np.array([[0.0, 0.0, 0.0, 1.0], [5.0, 3.0, -2.0, 0.0], [-3.0, 5.0, 1.0, 2.0]])
    return centres[rng.integers(0, 3, N_ROWS)] + rng.standard_normal((N_ROWS, 4)) * np.array([1.0, 0.6, 0.8, 1.2])


def _data(kind: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, N_ROWS)
    if kind == "binary":
        probabilities = np.array([[0.15] * 5 + [0.8] * 5, [0.8] * 5 + [0.2] * 5])
        return (rng.random((N_ROWS, 10)) < probabilities[labels]).astype(np.float64)
    if kind == "counts":
        return rng.poisson(np.array([[1.0] * 4 + [7.0] * 4, [6.0] * 4 + [0.5] * 4])[labels]).astype(np.float64)
    if kind == "trials":
        return rng.binomial(12, np.array([[0.1] * 4 + [0.7] * 4, [0.6] * 4 + [0.2] * 4])[labels]).astype(np.float64)
    if kind == "codes":
        return np.minimum(rng.poisson(np.array([[1.0] * 4 + [7.0] * 4, [6.0] * 4 + [0.5] * 4])[labels]), 11.0)
    if kind == "word_counts":
        return rng.poisson(np.array([[1.0] * 4 + [7.0] * 4, [6.0] * 4 + [0.5] * 4])[labels]).astype(np.float64) + 1.0
    if kind == "positive":
        return rng.exponential(np.array([[1.0] * 4 + [9.0] * 4, [8.0] * 4 + [0.5] * 4])[labels])
    if kind == "mixed":
        return np.column_stack([rng.normal(np.array([[-3.0, 0.0], [3.0, 1.0]])[labels]),
                                rng.poisson(np.array([1.0, 7.0])[labels]),
                                np.where(labels, 2, 0) + (rng.random(N_ROWS) < 0.2),
                                rng.gamma(3.0, np.array([0.5, 3.0])[labels])])
    if kind == "linear":
        W = rng.standard_normal((9, 3))
        return rng.standard_normal((N_ROWS, 3)) @ W.T + rng.standard_normal((N_ROWS, 9)) * np.linspace(0.2, 0.9, 9)
    if kind == "bsc":  # 4 binary causes over 8 features
        W = rng.choice([-1.5, 0.0, 2.0], size=(8, 4))
        return (rng.random((N_ROWS, 4)) < 0.3) @ W.T + 0.3 * rng.standard_normal((N_ROWS, 8))
    if kind == "sparse":
        W = rng.standard_normal((6, 4))
        return rng.laplace(size=(N_ROWS, 4)) @ W.T + 0.3 * rng.standard_normal((N_ROWS, 6))
    return _gaussian(rng)


def _dask_array(X: np.ndarray):
    return da.from_array(X, chunks=(BLOCKS, X.shape[1]))


MODELS = {
    "gmm-full-kmeans": (lambda: entrosum.GaussianMixture(3, covariance_type="full", random_state=0), "gaussian"),
    "gmm-diag-kmeans++": (lambda: entrosum.GaussianMixture(4, covariance_type="diag", init_params="k-means++",
                                                           tol=1e-6, random_state=1), "gaussian"),
    "gmm-tied-random": (lambda: entrosum.GaussianMixture(3, covariance_type="tied", init_params="random",
                                                         max_iter=30, random_state=2), "gaussian"),
    "gmm-spherical-random_from_data": (lambda: entrosum.GaussianMixture(
        3, covariance_type="spherical", init_params="random_from_data", n_init=2, random_state=3), "gaussian"),
    "gmm-tied_diag-kmeans-fixed-weights": (lambda: entrosum.GaussianMixture(
        3, covariance_type="tied_diag", learn_weights=False, random_state=9), "gaussian"),
    "gmm-tied_spherical-random": (lambda: entrosum.GaussianMixture(
        3, covariance_type="tied_spherical", init_params="random", max_iter=30, random_state=10), "gaussian"),
    "bernoulli-kmeans": (lambda: entrosum.BernoulliMixture(2, tol=1e-8, random_state=4), "binary"),
    "poisson-kmeans": (lambda: entrosum.PoissonMixture(2, tol=1e-8, random_state=5), "counts"),
    "binomial-random": (lambda: entrosum.BinomialMixture(2, n_trials=12, init_params="random", tol=1e-8,
                                                         random_state=5), "trials"),
    "exponential-kmeans": (lambda: entrosum.ExponentialMixture(2, tol=1e-8, random_state=5), "positive"),
    "categorical-random": (lambda: entrosum.CategoricalMixture(2, n_levels=12, init_params="random", tol=1e-8,
                                                               random_state=5), "codes"),
    "multinomial-kmeans": (lambda: entrosum.MultinomialMixture(2, tol=1e-8, random_state=5), "word_counts"),
    "gamma-k-means++": (lambda: entrosum.GammaMixture(2, init_params="k-means++", tol=1e-8, random_state=5),
                        "positive"),
    "mixed-kmeans": (lambda: entrosum.MixedMixture(2, {"gaussian": [0, 1], "poisson": [2], "categorical": [3],
                                                       "gamma": [4]}, tol=1e-8, random_state=5), "mixed"),
    "ppca-closed-form": (lambda: entrosum.PPCA(3), "linear"),
    "ppca-em": (lambda: entrosum.PPCA(3, solver="em", tol=1e-9, random_state=6), "linear"),
    "fa": (lambda: entrosum.FactorAnalysis(3, tol=1e-9, random_state=7), "linear"),
    "sparse-coding": (lambda: entrosum.SparseCoding(4, max_iter=12, tol=1e-6, random_state=8), "sparse"),
    # plain EM (a dask fit has no quasi-Newton steps) stopped by tol after the annealing schedule's warm-up
    "sparse-coding-warm-up": (lambda: entrosum.SparseCoding(4, acceleration=None, tol=1e3, random_state=8), "sparse"),
    "bsc-exact": (lambda: entrosum.BinarySparseCoding(4, max_iter=15, tol=None, random_state=9), "bsc"),
    "bsc-truncated": (lambda: entrosum.BinarySparseCoding(4, posterior="truncated", n_states=5, max_iter=15, n_init=2,
                                                          tol=None, random_state=10), "bsc"),
    # Newton to the last digits in the sigmoid belief net's M-step, so that rounding in the merged sums cannot move
    # its stopping point
    "sbn-exact": (lambda: entrosum.SigmoidBeliefNet(2, max_iter=10, tol=None, newton_tol=1e-15, random_state=11),
                  "binary"),
    "sbn-truncated": (lambda: entrosum.SigmoidBeliefNet(3, posterior="truncated", n_states=3, max_iter=10, tol=None,
                                                        newton_tol=1e-15, random_state=12), "binary"),
}

PARAMETERS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "components_", "mean_",
              "noise_variance_", "scales_", "offset_", "prior_")


def _assert_same_fit(mine, reference, tolerance: float, rtol: float = 0.0) -> None:
    compared = 0
    for name in PARAMETERS:
        if hasattr(reference, name):
            assert np.asarray(getattr(mine, name)).dtype == np.asarray(getattr(reference, name)).dtype, name
            np.testing.assert_allclose(getattr(mine, name), getattr(reference, name), rtol=rtol, atol=tolerance,
                                       err_msg=name)
            compared += 1
    assert compared >= 2
    history, expected = mine.monitor_.history, reference.monitor_.history
    assert len(history["elbo"]) == len(expected["elbo"])
    for name in HISTORY:
        np.testing.assert_allclose(history[name], expected[name], rtol=max(rtol, 1e-13), atol=tolerance,
                                   err_msg=name)
    assert mine.monitor_.stop_reason == reference.monitor_.stop_reason
    assert mine.n_iter_ == reference.n_iter_


@pytest.mark.filterwarnings("ignore::entrosum.ConvergenceWarning")  # the short runs of some models stop at max_iter
@pytest.mark.parametrize("name", list(MODELS))
def test_dask_fit_equals_the_in_memory_fit(client, name):
    make, kind = MODELS[name]
    X = _data(kind)
    reference = make().fit(X)
    mine = make().fit(_dask_array(X))
    _assert_same_fit(mine, reference, 1e-10)
    if hasattr(reference, "predict"):  # the same start: every row in the same component
        np.testing.assert_array_equal(mine.predict(X), reference.predict(X))


def test_float32_dask_fit_stays_float32_and_equals_the_in_memory_fit(client):
    X = _gaussian(np.random.default_rng(12)).astype(np.float32)
    reference = entrosum.GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    mine = entrosum.GaussianMixture(3, covariance_type="diag", random_state=0).fit(_dask_array(X))
    assert mine.means_.dtype == np.float32
    # The E-step sums float32 products per chunk of rows before adding them up in double, so another split into
    # chunks (here: blocks) changes the sums by float32 rounding, ~1e-7 relative per sum: relative to the data's
    # scale (about 5), not to each value (a mean near 0 moves by the same absolute amount).
    _assert_same_fit(mine, reference, 1e-5, rtol=1e-5)
    np.testing.assert_array_equal(mine.predict(X), reference.predict(X))


def test_kmeans_over_blocks_matches_the_c_plus_plus_kmeans(client):
    from entrosum.engine.dask_em import dask_blocks
    from entrosum.mixtures.dask_kmeans import kmeans_labels, kmeans_plusplus

    X = _gaussian(np.random.default_rng(13))
    with dask_blocks(_dask_array(X)) as data:
        seeds = kmeans_plusplus(data, 5, 1234)
        labels = np.concatenate(_dask.fetch(kmeans_labels(data, 5, 1234)))
    np.testing.assert_array_equal(seeds, _core.kmeans_plusplus(X, np.empty(0), 5, 1234))
    np.testing.assert_array_equal(labels, _core.kmeans(X, np.empty(0), 5, 1234)[1])


def test_nan_in_one_block_raises_and_keeps_the_previous_fit(client):
    X = _data("gaussian")
    model = entrosum.GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    means = model.means_.copy()
    bad = X.copy()
    bad[400, 2] = np.nan  # in the second block (rows 170 to 502)
    with pytest.raises(ValueError, match=r"rows 170 to 502 .*NaN or infinity \(first in row 230\)"):
        model.fit(_dask_array(bad))
    np.testing.assert_array_equal(model.means_, means)
    with pytest.raises(ValueError, match="binary"):
        entrosum.BernoulliMixture(2).fit(_dask_array(X))


def _generated_block(seed: int, n_rows: int) -> np.ndarray:
    return _gaussian(np.random.default_rng(seed))[:n_rows]


def test_the_data_stay_on_the_workers(client, monkeypatch):
    # Blocks generated on the workers, never on the client; everything the fit brings back is recorded.
    import dask

    blocks = [da.from_delayed(dask.delayed(_generated_block)(seed, size), (size, 4), dtype=np.float64)
              for seed, size in enumerate(BLOCKS)]
    X = da.concatenate(blocks)
    received = []
    fetch = _dask.fetch

    def recording_fetch(futures):
        values = fetch(futures)
        received.extend(values if isinstance(futures, list) else [values])
        return values
    monkeypatch.setattr(_dask, "fetch", recording_fetch)
    monkeypatch.setattr("entrosum.mixtures.dask_kmeans.fetch", recording_fetch)
    monkeypatch.setattr("entrosum.sparse.dask_fit.fetch", recording_fetch)
    model = entrosum.GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    assert model.converged_ and len(received) > 20
    kinds = {type(value).__name__ for value in received}
    assert "GaussianMixtureExpectation" in kinds and "KMeansStats" in kinds
    arrays = [value for value in received if isinstance(value, np.ndarray)]
    assert all(value.size <= 4 for value in arrays)  # single rows (k-means seeds) at most
    assert not any(isinstance(value, (list, tuple)) and len(value) > 2 for value in received)
    reference = np.concatenate([_generated_block(seed, size) for seed, size in enumerate(BLOCKS)])
    _assert_same_fit(model, entrosum.GaussianMixture(3, covariance_type="full", random_state=0).fit(reference),
                     1e-10)


def test_ctrl_c_between_passes_keeps_the_previous_fit_and_releases_the_blocks(client, monkeypatch):
    X = _data("gaussian")
    model = entrosum.GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    weights = model.weights_.copy()
    calls = []
    fetch = _dask.fetch

    def interrupted_fetch(futures):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return fetch(futures)
    for module in ("entrosum.engine.dask", "entrosum.mixtures.dask_kmeans", "entrosum.sparse.dask_fit"):
        monkeypatch.setattr(f"{module}.fetch", interrupted_fetch)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(n_components=2).fit(_dask_array(X))
    np.testing.assert_array_equal(model.weights_, weights)
    assert len(calls) == 10
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0


def test_unsupported_settings_are_refused_with_a_clear_error(client):
    X = _dask_array(_data("linear"))
    with pytest.raises(ValueError, match="sample_weight is not supported with a dask array"):
        entrosum.GaussianMixture(2).fit(X, sample_weight=np.ones(N_ROWS))
    with pytest.raises(ValueError, match="precompute=False"):
        entrosum.FactorAnalysis(2, precompute=False).fit(X)
    with pytest.raises(ValueError, match="solver='em'"):
        entrosum.SparseCoding(2, solver="gradient").fit(X)
    with pytest.raises(ValueError, match="must be 2-D"):
        entrosum.PPCA(1).fit(X[:, 0])


def test_without_a_client_the_error_says_how_to_start_one():
    code = ("import dask.array as da, entrosum\n"
            "try:\n"
            "    entrosum.PPCA(1).fit(da.ones((10, 3)))\n"
            "except ValueError as error:\n"
            "    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "needs a distributed client, and none is running" in out.stdout, out.stderr
