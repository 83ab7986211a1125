"""GaussianMixture: scikit-learn's answer from the same start, the entropy-sum theorem at every M-step,
sample weights, chunking, threads, precision, and the estimator contract."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import entrosum

TYPES = ["full", "tied", "diag", "spherical"]


def blobs(n_per=(300, 200, 250), seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 4.0], [-3.0, 1.0, -2.0]])
    scales = np.array([[1.0, 2.0, 0.5], [1.0, 1.0, 1.0], [0.7, 0.7, 0.7]])
    parts = [rng.standard_normal((n, 3)) * s + c for n, c, s in zip(n_per, centres, scales)]
    mix = rng.standard_normal((3, 3)) * 0.3 + np.eye(3)  # correlate the features a little
    return np.concatenate(parts) @ mix + offset


@pytest.fixture(scope="module")
def X():
    return blobs()


def shared_start(X, covariance_type):
    """Initial parameters from one scikit-learn EM step from k-means, given to both libraries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = SklearnGaussianMixture(3, covariance_type=covariance_type, max_iter=1, random_state=1).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_same_start_same_answer_as_scikit_learn(X, covariance_type):
    start = shared_start(X, covariance_type)
    theirs = SklearnGaussianMixture(3, covariance_type=covariance_type, tol=1e-9, max_iter=500, **start).fit(X)
    ours = entrosum.GaussianMixture(3, covariance_type=covariance_type, tol=1e-9, max_iter=500, **start).fit(X)
    assert ours.n_iter_ == theirs.n_iter_ and ours.converged_ and theirs.converged_
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-8)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-8)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-8, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_entropy_sum_equals_elbo_after_every_m_step(X, covariance_type):
    """With reg_covar=0, F(q_t, Θ_{t+1}) = S(q_t, Θ_{t+1}) after every exact M-step (DESIGN.md §2)."""
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0, tol=None, gap_tol=1e-10,
                                     max_iter=5000, random_state=0).fit(X)
    h = model.monitor_.history
    assert model.n_iter_ >= 3 and model.monitor_.stop_reason == "gap_tol"
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    # before the M-step they differ (q_t is exact for Θ_t, but Θ_t is not the M-step of q_t) ...
    assert abs(h["gap"][0]) > 1e-3
    # ... and at convergence the ELBO, the entropy sum and the mean log-likelihood agree
    log_likelihood = model.score(X)
    assert h["elbo"][-1] == pytest.approx(log_likelihood, rel=1e-9)
    assert h["entropy_sum"][-1] == pytest.approx(log_likelihood, rel=1e-9)


def inverse_trace(model):
    """Σ_k π_k tr(Σ_k⁻¹) of the fitted model."""
    precisions = np.asarray(model.precisions_, dtype=np.float64)
    kind = model.covariance_type
    if kind == "full":
        return float(np.sum(model.weights_ * np.trace(precisions, axis1=1, axis2=2)))
    if kind == "tied":
        return float(np.trace(precisions))
    if kind == "diag":
        return float(np.sum(model.weights_ * precisions.sum(axis=1)))
    return float(np.sum(model.weights_ * precisions * model.means_.shape[1]))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_reg_covar_shows_as_a_gap_of_its_order(X, covariance_type):
    """With Σ_k = S_k + ε I, F − S after the M-step is ½ ε Σ_k π_k tr(Σ_k⁻¹): the monitor shows it."""
    reg = 1e-3
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, reg_covar=reg, tol=1e-10, max_iter=500,
                                     random_state=0).fit(X)
    h = model.monitor_.history
    expected = 0.5 * reg * inverse_trace(model)
    assert h["m_step_elbo"][-1] - h["m_step_entropy_sum"][-1] == pytest.approx(expected, rel=1e-6)
    assert h["gap"][-1] == pytest.approx(expected, rel=1e-3)  # before the M-step: converging to the same
    assert 1e-4 < h["gap"][-1] < 1e-2  # visible, and of the order of reg_covar


@pytest.mark.parametrize("covariance_type", TYPES)
def test_log_likelihood_against_scipy(X, covariance_type):
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    covariances = {"full": lambda k: model.covariances_[k], "tied": lambda k: model.covariances_,
                   "diag": lambda k: np.diag(model.covariances_[k]),
                   "spherical": lambda k: model.covariances_[k] * np.eye(3)}[covariance_type]
    densities = np.stack([model.weights_[k] * multivariate_normal(model.means_[k], covariances(k)).pdf(X)
                          for k in range(3)], axis=1)
    np.testing.assert_allclose(model.score_samples(X), np.log(densities.sum(axis=1)), rtol=1e-10)
    np.testing.assert_allclose(model.predict_proba(X), densities / densities.sum(axis=1, keepdims=True), atol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_integer_weights_repeat_rows_and_zero_weights_drop_them(X, covariance_type):
    start = shared_start(X, covariance_type)
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(covariance_type=covariance_type, tol=1e-9, max_iter=300, **start)
    weighted = entrosum.GaussianMixture(3, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.GaussianMixture(3, **kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_chunks_and_threads_do_not_change_the_fit(X, covariance_type):
    fits = [entrosum.GaussianMixture(3, covariance_type=covariance_type, tol=1e-8, random_state=2, chunk_size=c,
                                     n_jobs=j).fit(X) for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    reference = fits[1]
    for other in fits:
        np.testing.assert_allclose(other.lower_bounds_, reference.lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, reference.means_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(other.covariances_, reference.covariances_, rtol=1e-11, atol=1e-12)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)  # same blocks, any thread count


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_with_a_large_offset(covariance_type):
    X = blobs(offset=1e4)
    start = shared_start(X, covariance_type)
    kwargs = dict(covariance_type=covariance_type, tol=1e-6, max_iter=200, **start)
    double = entrosum.GaussianMixture(3, **kwargs).fit(X)
    single = entrosum.GaussianMixture(3, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and single.covariances_.dtype == np.float32
    variances = single.covariances_ if covariance_type in ("diag", "spherical") else np.diagonal(
        single.covariances_, axis1=-2, axis2=-1)
    assert np.all(variances > 0)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-6)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=2e-3, atol=2e-3)
    assert single.score(X) == pytest.approx(double.score(X), abs=1e-3)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_single_point_components_start_at_reg_covar(covariance_type):
    # random_from_data starts each component from one row: its variance is exactly zero, and squares
    # rounded in float32 must not make it negative; it starts at reg_covar, as in float64.
    rng = np.random.default_rng(3)
    X = (rng.normal(0.0, 3.0, (2000, 8)) + 10.0).astype(np.float32)
    model = entrosum.GaussianMixture(16, covariance_type=covariance_type, init_params="random_from_data",
                                     random_state=0, reg_covar=1e-6, max_iter=300).fit(X)
    variances = model.covariances_ if covariance_type in ("diag", "spherical") else np.diagonal(
        model.covariances_, axis1=-2, axis2=-1)
    assert np.all(np.isfinite(variances)) and np.all(variances >= 1e-6 * (1 - 1e-6))
    assert np.isfinite(model.lower_bound_) and model.converged_


def test_fit_predict_equals_fit_then_predict(X):
    model = entrosum.GaussianMixture(3, random_state=0)
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.predict(X))
    assert set(labels) == {0, 1, 2}


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_is_reproducible_and_finds_the_clusters(X, init_params):
    a = entrosum.GaussianMixture(3, init_params=init_params, random_state=4, max_iter=500).fit(X)
    b = entrosum.GaussianMixture(3, init_params=init_params, random_state=4, max_iter=500).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    reference = SklearnGaussianMixture(3, random_state=0, n_init=3).fit(X)
    assert a.score(X) == pytest.approx(reference.score(X), abs=1e-3)


def test_n_init_keeps_the_best(X):
    singles = [entrosum.GaussianMixture(3, init_params="random", n_init=1, random_state=s, max_iter=5)
               for s in range(1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        several = entrosum.GaussianMixture(3, init_params="random", n_init=4, random_state=5, max_iter=5).fit(X)
        rng = np.random.default_rng(5)
        bounds = []
        for _ in range(4):  # the same four starts, one at a time
            model = entrosum.GaussianMixture(3, init_params="random", max_iter=5, random_state=rng)
            bounds.append(model.fit(X).lower_bound_)
    assert several.lower_bound_ == pytest.approx(max(bounds), rel=1e-12)
    assert len(singles) == 1


def test_warm_start_continues(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        warm = entrosum.GaussianMixture(3, warm_start=True, max_iter=2, tol=1e-12, random_state=0)
        warm.fit(X)
        first = warm.lower_bounds_.copy()
        warm.fit(X)
        straight = entrosum.GaussianMixture(3, max_iter=4, tol=1e-12, random_state=0).fit(X)
    np.testing.assert_allclose(np.concatenate([first, warm.lower_bounds_]), straight.lower_bounds_, rtol=1e-12)


def test_bic_aic_and_sample(X):
    model = entrosum.GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    reference = SklearnGaussianMixture(3, covariance_type="diag", weights_init=model.weights_,
                                       means_init=model.means_, precisions_init=model.precisions_, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X)
    reference.weights_, reference.means_ = model.weights_, model.means_
    reference.covariances_, reference.precisions_cholesky_ = model.covariances_, model.precisions_cholesky_
    assert model.bic(X) == pytest.approx(reference.bic(X), rel=1e-10)
    assert model.aic(X) == pytest.approx(reference.aic(X), rel=1e-10)
    draws, labels = model.sample(30_000)
    assert draws.shape == (30_000, 3) and labels.shape == (30_000,)
    np.testing.assert_allclose(np.bincount(labels) / 30_000, model.weights_, atol=0.015)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], atol=0.1)


@pytest.mark.parametrize("bad, error, match", [
    (dict(covariance_type="banded"), ValueError, "covariance_type must be one of 'full', 'tied', 'diag', 'spherical'"),
    (dict(n_components=10_000), ValueError, "n_components = 10000, n_samples = 750"),
    (dict(reg_covar=-1.0), ValueError, "reg_covar must be a non-negative"),
    (dict(init_params="best"), ValueError, "init_params must be one of"),
    (dict(means_init=np.zeros((2, 3))), ValueError, r"'means' should have the shape of \(3, 3\)"),
    (dict(weights_init=[0.5, 0.5, 0.5]), ValueError, "'weights' should be normalized, but got sum\\(weights\\) = 1.5"),
    (dict(precisions_init=np.ones((3, 3))), ValueError, r"'full precision' should have the shape of \(3, 3, 3\)"),
    (dict(n_init=0), ValueError, "n_init must be at least 1"),
])
def test_bad_settings(X, bad, error, match):
    with pytest.raises(error, match=match):
        entrosum.GaussianMixture(**{"n_components": 3, **bad}).fit(X)


def test_bad_data_and_weights(X):
    bad = X.copy()
    bad[5, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        entrosum.GaussianMixture(3).fit(bad)
    with pytest.raises(ValueError, match="must be 2-D"):
        entrosum.GaussianMixture(3).fit(X[:, 0])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        entrosum.GaussianMixture(3).fit(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(750,\)"):
        entrosum.GaussianMixture(3).fit(X, sample_weight=np.ones(3))


def test_failed_fit_leaves_the_model_unchanged(X):
    model = entrosum.GaussianMixture(3, random_state=0).fit(X)
    means = model.means_.copy()
    with pytest.raises(ValueError):
        model.set_params(means_init=np.zeros((1, 3))).fit(X)
    collapsed = np.repeat(X[:2], 25, axis=0)  # two distinct points, two components: singular covariances
    with pytest.raises(ValueError, match="component .* collapsed.*reg_covar"):
        model.set_params(n_components=2, means_init=None, reg_covar=0.0).fit(collapsed)
    np.testing.assert_array_equal(model.means_, means)


@pytest.mark.parametrize("init", ["given", "k-means"])
def test_full_covariance_fit_holds_one_working_copy_of_the_parameters(init):
    """At D = 128 and K = 64 each K·D² array (covariances, factors, precisions) is twice the data. A fit in one
    thread peaks at the three fitted arrays plus its statistics (K·D(D+1)/2), not at the ten copies it once made
    (the start in Python and in C++, the E-step's copy of the factors, old and new parameters, unpacked scatters).
    Peak RSS in a fresh process, with every large block mapped and unmapped on its own so that RSS follows
    the live memory (MALLOC_MMAP_THRESHOLD_), after a warm-up fit that does every lazy import."""
    script = textwrap.dedent(f"""
        import warnings
        import numpy as np, entrosum
        warnings.simplefilter("ignore")
        n, D, K = 4000, 128, 64
        rng = np.random.default_rng(0)
        centres = 3 * rng.standard_normal((K, D))
        X = centres[rng.integers(K, size=n)] + rng.standard_normal((n, D))
        given = dict(weights_init=np.full(K, 1 / K), means_init=centres + 0.1,
                     precisions_init=np.tile(np.eye(D), (K, 1, 1)))
        start = given if {init!r} == "given" else dict(random_state=0)
        entrosum.GaussianMixture(2, covariance_type="full", max_iter=2, tol=None, random_state=0).fit(X[:600])
        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak to the current resident size
        before = status("VmRSS")
        model = entrosum.GaussianMixture(K, covariance_type="full", max_iter=3, tol=None, n_jobs=1, **start).fit(X)
        fitted = sum(value.nbytes for name, value in vars(model).items()
                     if name.endswith("_") and isinstance(value, np.ndarray))
        print(K * D * D * 8, fitted, status("VmHWM") - before)
    """)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    unit, fitted, growth = map(int, out.stdout.split())
    assert fitted == pytest.approx(3 * unit, rel=0.01)
    # beyond the fitted arrays: the statistics of the running total and of the block in progress (½ unit each)
    assert growth - fitted < 1.0 * unit, (growth - fitted) / unit


def test_float32_narrow_data_far_from_the_shift_keep_double_statistics():
    # Colour-like float32 data (3 columns, full covariances) whose components overlap within two groups 25 standard
    # deviations either side of the data's mean: every row has several non-zero responsibilities, and every component
    # lies far from the shift, so the statistics come from features made in double (21 components: columns left over
    # after whole SIMD packets of components). One iteration from the same start equals float64's to float32's
    # resolution: a row or a component missing from those sums moves a mean by 1e-3.
    rng = np.random.default_rng(7)
    K, per = 21, 150
    group = np.repeat([0.0, 1.0], [10, 11])
    centres = group[:, None] + rng.normal(0.0, 0.01, (K, 3))
    X = np.concatenate([centre + rng.normal(0.0, 0.02, (per, 3)) for centre in centres]) + 100.0
    start = dict(weights_init=np.full(K, 1.0 / K), means_init=centres + 100.0,
                 precisions_init=np.tile(np.eye(3) / 0.02**2, (K, 1, 1)))
    kwargs = dict(covariance_type="full", tol=0.0, max_iter=1, reg_covar=1e-6, **start)
    with pytest.warns(ConvergenceWarning):
        double = entrosum.GaussianMixture(K, **kwargs).fit(X)
    with pytest.warns(ConvergenceWarning):
        single = entrosum.GaussianMixture(K, **kwargs).fit(X.astype(np.float32))
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-3)
    np.testing.assert_allclose(single.means_, double.means_, rtol=0, atol=2e-5)
    # float32's responsibilities differ from float64's by about 1e-4: the covariances (about 4e-4) follow by 1e-3
    scale = np.max(np.abs(double.covariances_))
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=1e-2, atol=1e-2 * scale)
