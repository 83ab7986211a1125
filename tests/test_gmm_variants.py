"""GaussianMixture variants with entropy sums (issue 16, DESIGN.md "Second-wave models"): one diagonal covariance
shared by every component ('tied_diag'), one variance shared by every component and feature ('tied_spherical'),
and fixed weights (``learn_weights=False``). Checked against an EM written here in numpy from the same start,
the entropy-sum identity after every M-step, float32 against float64, recovery, saving and the gap that fixed
non-uniform weights leave open."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import entrosum
from entrosum import _core
from entrosum.exceptions import ConvergenceWarning

VARIANTS = ["tied_diag", "tied_spherical"]
GUARD = 10 * np.finfo(np.float64).eps  # the count guard of the M-step (as scikit-learn's)
CENTRES = np.array([[0.0, 0.0, 0.0], [5.0, 4.0, 4.0], [-4.0, 4.0, -3.0]])


def shared_variance_data(covariance_type: str, n: int = 900, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of three components with one covariance for all (diagonal or isotropic), and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    scale = np.array([1.0, 0.6, 1.4]) if covariance_type == "tied_diag" else np.ones(3)
    return CENTRES[labels] + rng.standard_normal((n, 3)) * scale, labels


def start(covariance_type: str) -> dict:
    """A start away from the answer, given to both implementations."""
    precisions = np.array([0.5, 0.8, 0.3]) if covariance_type == "tied_diag" else np.array(0.4)
    return dict(weights_init=np.array([0.2, 0.5, 0.3]), means_init=CENTRES + [[0.9, -0.7, 0.5]],
                precisions_init=precisions)


def fit_quietly(model, X, **kwargs):
    """Fit where max_iter (not tol) is meant to end the fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, **kwargs)


def numpy_em(X, covariance_type, weights, means, precisions, reg_covar, n_iter, learn_weights=True):
    """EM for the shared-variance mixtures, written out: returns the parameters and each E-step's mean
    log-likelihood (the lower bound F(q_t, Θ_t))."""
    n, D = X.shape
    variances = np.broadcast_to(1.0 / np.asarray(precisions, dtype=np.float64), (D,)).copy()
    lower_bounds = []
    for _ in range(n_iter):
        log_joint = (np.log(weights) - 0.5 * np.sum(np.log(2 * np.pi * variances))
                     - 0.5 * (((X[:, None, :] - means[None]) ** 2) / variances).sum(axis=2))
        top = log_joint.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
        lower_bounds.append(log_norm.mean())
        resp = np.exp(log_joint - log_norm[:, None])
        counts = resp.sum(axis=0) + GUARD
        if learn_weights:
            weights = counts / counts.sum()
        means = resp.T @ X / counts[:, None]
        scatter = np.einsum("nk,nkd->d", resp, (X[:, None, :] - means[None]) ** 2) / counts.sum()  # (D)
        variances = scatter + reg_covar if covariance_type == "tied_diag" else np.full(D, scatter.mean() + reg_covar)
    return weights, means, variances, np.array(lower_bounds)


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_same_start_same_answer_as_numpy_em(covariance_type):
    X, _ = shared_variance_data(covariance_type)
    init = start(covariance_type)
    ours = fit_quietly(entrosum.GaussianMixture(3, covariance_type=covariance_type, tol=None, max_iter=25,
                                                reg_covar=1e-4, **init), X)
    weights, means, variances, lower_bounds = numpy_em(X, covariance_type, init["weights_init"], init["means_init"],
                                                       init["precisions_init"], 1e-4, 25)
    assert ours.n_iter_ == 25
    np.testing.assert_allclose(ours.lower_bounds_, lower_bounds, rtol=1e-8)
    np.testing.assert_allclose(ours.weights_, weights, rtol=1e-8)
    np.testing.assert_allclose(ours.means_, means, rtol=1e-8, atol=1e-10)
    shared = variances if covariance_type == "tied_diag" else variances[0]
    assert ours.covariances_.shape == np.shape(shared) and ours.precisions_cholesky_.shape == np.shape(shared)
    np.testing.assert_allclose(ours.covariances_, shared, rtol=1e-8)
    np.testing.assert_allclose(ours.precisions_, 1.0 / shared, rtol=1e-8)
    np.testing.assert_allclose(ours.precisions_cholesky_, 1.0 / np.sqrt(shared), rtol=1e-8)
    # the log-likelihood of every row at the fitted parameters, from the reference's E-step
    log_joint = (np.log(weights) - 0.5 * np.sum(np.log(2 * np.pi * variances))
                 - 0.5 * (((X[:, None, :] - means[None]) ** 2) / variances).sum(axis=2))
    np.testing.assert_allclose(ours.score_samples(X), np.logaddexp.reduce(log_joint, axis=1), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_entropy_sum_equals_elbo_after_every_m_step(covariance_type):
    X, _ = shared_variance_data(covariance_type, seed=1)
    model = fit_quietly(entrosum.GaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0, tol=None,
                                                 gap_tol=1e-10, max_iter=2000, random_state=0), X)
    h = model.monitor_.history
    assert model.n_iter_ >= 3 and model.monitor_.stop_reason == "gap_tol"
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert abs(h["gap"][0]) > 1e-6  # before the first M-step they differ (k-means starts close)
    assert h["entropy_sum"][-1] == pytest.approx(model.score(X), rel=1e-9)
    # the terms: the observable entropy is the Gaussian entropy of the shared covariance (the same for every
    # component), the prior entropy that of π
    params = model._current_params()
    steps = model._steps()
    terms = steps.terms(steps.chunk_statistics(params, X), params)
    variances = np.broadcast_to(model.covariances_, (3,))
    assert terms["observable_entropy"] == pytest.approx(0.5 * np.sum(np.log(2 * np.pi * np.e * variances)),
                                                        rel=1e-13)
    assert terms["prior_entropy"] == pytest.approx(-np.sum(model.weights_ * np.log(model.weights_)), rel=1e-13)


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_float32_agrees_with_float64_far_from_the_origin(covariance_type):
    X, _ = shared_variance_data(covariance_type, seed=2)
    X32 = (X + 1e4).astype(np.float32)
    init = start(covariance_type)
    init["means_init"] = init["means_init"] + 1e4
    def make():
        return entrosum.GaussianMixture(3, covariance_type=covariance_type, tol=None, max_iter=100, **init)

    single, double = fit_quietly(make(), X32), fit_quietly(make(), X32.astype(np.float64))
    assert single.means_.dtype == np.float32 and single.covariances_.dtype == np.float32
    np.testing.assert_allclose(single.means_, double.means_, rtol=0, atol=1e-3)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=1e-3)
    np.testing.assert_allclose(single.weights_, double.weights_, atol=1e-5)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, abs=1e-4)


@pytest.mark.parametrize("covariance_type", VARIANTS)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_recovers_a_generated_mixture(covariance_type, init_params):
    X, labels = shared_variance_data(covariance_type, n=1500, seed=3)
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, init_params=init_params, n_init=2,
                                     random_state=0).fit(X)
    assert adjusted_rand_score(labels, model.predict(X)) >= 0.95
    np.testing.assert_allclose(model.weights_[np.argsort(model.means_[:, 0])], [0.2, 0.5, 0.3], atol=0.05)


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_threads_chunks_and_sample_weights(covariance_type):
    X, _ = shared_variance_data(covariance_type, n=600, seed=4)

    def make(**kw):
        return entrosum.GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-8, max_iter=300,
                                        **kw)

    one = make(n_jobs=1, chunk_size=37).fit(X)
    two = make(n_jobs=2, chunk_size=37).fit(X)  # the same chunks merged in the same order: the same numbers
    np.testing.assert_array_equal(two.means_, one.means_)
    np.testing.assert_array_equal(two.covariances_, one.covariances_)
    whole = make(n_jobs=1).fit(X)  # other chunks: rounding only
    np.testing.assert_allclose(whole.means_, one.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(whole.covariances_, one.covariances_, rtol=1e-10)
    # an integer sample weight is a repeated row (from the same start: the initialisations see other data)
    repeats = np.random.default_rng(0).integers(1, 4, X.shape[0])
    init = start(covariance_type)
    weighted = make(**init).fit(X, sample_weight=repeats.astype(np.float64))
    repeated = make(**init).fit(np.repeat(X, repeats, axis=0))
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_save_load_round_trip_and_the_cpp_reader(covariance_type, tmp_path):
    X, _ = shared_variance_data(covariance_type, n=300, seed=5)
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = entrosum.load(path)
    assert loaded.covariance_type == covariance_type
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name), err_msg=name)
        assert getattr(loaded, name).shape == getattr(model, name).shape
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    saved = _core.SavedModel(str(path))
    parameters = saved.parameters()
    assert parameters["covariance_type"] == covariance_type
    np.testing.assert_array_equal(parameters["covariances"].ravel(), np.ravel(model.covariances_))
    np.testing.assert_array_equal(saved.score_samples(X), model.score_samples(X))


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_partial_fit_approaches_the_batch_fit(covariance_type):
    X, _ = shared_variance_data(covariance_type, n=3000, seed=6)
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(80):  # stepwise EM over a stream of draws from the data
        assert model.partial_fit(X[rng.choice(X.shape[0], 200)]) is model
    batch = entrosum.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    assert model.covariances_.shape == batch.covariances_.shape
    assert model.score(X) == pytest.approx(batch.score(X), abs=0.005)
    np.testing.assert_allclose(np.sort(model.weights_), np.sort(batch.weights_), atol=0.03)


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_information_criteria_and_sampling(covariance_type):
    X, _ = shared_variance_data(covariance_type, n=600, seed=7)
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    n_covariance = 3 if covariance_type == "tied_diag" else 1
    n_parameters = n_covariance + 3 * 3 + 2
    log_likelihood = model.score_samples(X).sum()
    assert model.bic(X) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(X.shape[0]), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
    fixed = entrosum.GaussianMixture(3, covariance_type=covariance_type, learn_weights=False, random_state=0).fit(X)
    assert fixed.aic(X) == pytest.approx(-2 * fixed.score_samples(X).sum() + 2 * (n_parameters - 2), rel=1e-12)
    samples, labels = model.set_params(random_state=1).sample(30000)
    for k in range(3):
        rows = samples[labels == k]
        np.testing.assert_allclose(rows.var(axis=0), np.broadcast_to(model.covariances_, (3,)), rtol=0.08)


def test_fixed_uniform_weights_keep_the_identity():
    X, _ = shared_variance_data("tied_diag", seed=8)
    model = fit_quietly(entrosum.GaussianMixture(3, covariance_type="tied_diag", learn_weights=False, reg_covar=0.0,
                                                 tol=None, gap_tol=1e-10, max_iter=2000, random_state=0), X)
    np.testing.assert_array_equal(model.weights_, np.full(3, 1 / 3))
    h = model.monitor_.history
    np.testing.assert_allclose(h["prior_entropy"], np.log(3), rtol=1e-15)
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert model.monitor_.stop_reason == "gap_tol"


@pytest.mark.parametrize("covariance_type", ["full", *VARIANTS])
def test_fixed_non_uniform_weights_leave_the_gap_open(covariance_type):
    """With π fixed at weights that are not the posterior's mean, F − S = Σ_k (π̄_k − π_k) log π_k after an M-step
    (π̄_k the mean responsibility): the identity breaks, and the monitor shows it."""
    X, labels = shared_variance_data(covariance_type if covariance_type != "full" else "tied_diag", seed=9)
    fixed = np.array([0.1, 0.3, 0.6])
    model = fit_quietly(entrosum.GaussianMixture(3, covariance_type=covariance_type, learn_weights=False,
                                                 weights_init=fixed, reg_covar=0.0, tol=1e-12, max_iter=500,
                                                 random_state=0), X)
    np.testing.assert_array_equal(model.weights_, fixed)
    h = model.monitor_.history
    m_step_gap = h["m_step_elbo"] - h["m_step_entropy_sum"]
    assert np.all(np.abs(m_step_gap) > 0.05), m_step_gap.min()
    assert np.all(np.abs(h["gap"]) > 0.05)
    mean_resp = model.predict_proba(X).mean(axis=0)  # converged: q of the last M-step is that of the fit
    assert m_step_gap[-1] == pytest.approx(np.sum((mean_resp - fixed) * np.log(fixed)), abs=1e-6)


@pytest.mark.parametrize("covariance_type", VARIANTS)
def test_fixed_weights_with_partial_fit_and_given_start(covariance_type):
    X, _ = shared_variance_data(covariance_type, n=1000, seed=10)
    init = start(covariance_type)
    del init["weights_init"]
    model = entrosum.GaussianMixture(3, covariance_type=covariance_type, learn_weights=False, **init)
    for chunk in np.array_split(X, 4):
        model.partial_fit(chunk)
    np.testing.assert_array_equal(model.weights_, np.full(3, 1 / 3))


def test_bad_covariance_type_lists_the_six_types():
    X, _ = shared_variance_data("tied_diag", n=50)
    with pytest.raises(ValueError, match="covariance_type") as error:
        entrosum.GaussianMixture(2, covariance_type="tied_full").fit(X)
    for kind in ("full", "tied", "diag", "spherical", "tied_diag", "tied_spherical"):
        assert f"'{kind}'" in str(error.value)
    with pytest.raises(ValueError, match="learn_weights"):
        entrosum.GaussianMixture(2, learn_weights="no").fit(X)
    with pytest.raises(ValueError, match="tied_diag precision"):
        entrosum.GaussianMixture(3, covariance_type="tied_diag", precisions_init=np.ones((3, 3))).fit(X)
