"""PPCA against its closed-form maximum likelihood, scikit-learn's PCA, and the entropy-sum theorem."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

import entrosum

from conftest import gaussian_log_likelihood

H = 3


def ml_log_likelihood(X: np.ndarray, n_components: int) -> float:
    """−½[D log 2π + log|C| + D] at the ML solution, from numpy's eigendecomposition of the covariance."""
    covariance = np.cov(X, rowvar=False, bias=True)
    eigenvalues = np.linalg.eigvalsh(covariance)[::-1]
    noise = eigenvalues[n_components:].mean()
    log_det = np.log(eigenvalues[:n_components]).sum() + (X.shape[1] - n_components) * np.log(noise)
    return -0.5 * (X.shape[1] * np.log(2 * np.pi) + log_det + X.shape[1])


def test_closed_form_reaches_the_maximum_likelihood(isotropic_data):
    X = isotropic_data
    model = entrosum.PPCA(H, solver="closed_form").fit(X)
    reference = ml_log_likelihood(X, H)
    assert model.score(X) == pytest.approx(reference, rel=1e-8)
    assert model.lower_bound_ == pytest.approx(reference, rel=1e-8)
    # the C++ log-likelihood agrees with a direct evaluation of log N(x; μ, WWᵀ + σ²I)
    assert model.score(X) == pytest.approx(gaussian_log_likelihood(X, model.mean_, model.get_covariance()), rel=1e-12)
    # at the ML solution the entropy sum is −½[D log 2π + log|C| + D] as well
    assert model.monitor_.entropy_sum == pytest.approx(reference, rel=1e-10)
    assert model.monitor_.stop_reason == "closed_form" and model.converged_


def test_closed_form_equals_scikit_learn_pca_score(isotropic_data):
    X = isotropic_data
    ours = entrosum.PPCA(H).fit(X)
    theirs = PCA(n_components=H).fit(X)
    assert ours.score(X) == pytest.approx(theirs.score(X), abs=1e-6)
    assert ours.noise_variance_ == pytest.approx(theirs.noise_variance_, rel=1e-3)  # theirs divides by N − 1
    # same subspace: principal angles between the component spans vanish
    q_ours, _ = np.linalg.qr(ours.components_.T)
    cosines = np.linalg.svd(q_ours.T @ theirs.components_.T, compute_uv=False)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-10)


@pytest.mark.parametrize("precompute", [True, False])
def test_em_reaches_the_closed_form(isotropic_data, precompute):
    X = isotropic_data
    em = entrosum.PPCA(H, solver="em", precompute=precompute, tol=None, gap_tol=1e-11, max_iter=20_000,
                       random_state=0).fit(X)
    reference = ml_log_likelihood(X, H)
    assert em.converged_ and em.monitor_.stop_reason == "gap_tol"
    assert em.score(X) == pytest.approx(reference, rel=1e-8)
    # F = S at convergence, and F is the mean log-likelihood for exact posteriors
    assert em.monitor_.entropy_sum == pytest.approx(em.monitor_.elbo, rel=1e-8)
    assert em.lower_bound_ == pytest.approx(reference, rel=1e-8)


def test_em_gap_starts_nonzero_and_shrinks(isotropic_data):
    X = isotropic_data
    em = entrosum.PPCA(H, solver="em", tol=None, gap_tol=1e-10, max_iter=20_000, random_state=3).fit(X)
    relative_gap = em.monitor_.relative_gap
    assert relative_gap[0] > 1e-2  # clearly non-zero at the random start
    assert relative_gap[-1] < 1e-10
    # it shrinks: from its largest value on, it falls at every iteration
    peak = int(np.argmax(relative_gap))
    assert peak < relative_gap.size // 2
    assert np.all(np.diff(relative_gap[peak:]) < 0)
    # EM never decreases the ELBO (beyond round-off)
    assert np.all(np.diff(em.lower_bounds_) > -1e-12)


def test_elbo_is_log_likelihood_at_every_iteration(isotropic_data):
    """With exact posteriors, F(q_t, Θ_t) is the log-likelihood at Θ_t: check the first iterations."""
    X = isotropic_data
    for n_iterations in (1, 2, 5):
        model = entrosum.PPCA(H, solver="em", tol=None, max_iter=n_iterations, random_state=4)
        with pytest.warns(entrosum.ConvergenceWarning):
            model.fit(X)
        # the last record is F at the parameters before the last M-step: refit one fewer step to get them
        if n_iterations == 1:
            continue
        previous = entrosum.PPCA(H, solver="em", tol=None, max_iter=n_iterations - 1, random_state=4)
        with pytest.warns(entrosum.ConvergenceWarning):
            previous.fit(X)
        assert model.lower_bounds_[-1] == pytest.approx(previous.score(X), rel=1e-10)


def test_transform_gives_posterior_means(isotropic_data):
    X = isotropic_data
    model = entrosum.PPCA(H).fit(X)
    W = model.components_.T
    M = W.T @ W + model.noise_variance_ * np.eye(H)
    expected = np.linalg.solve(M, W.T @ (X - model.mean_).T).T
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.fit_transform(X), expected, rtol=1e-10, atol=1e-12)


def test_sample_follows_the_model(isotropic_data):
    model = entrosum.PPCA(H).fit(isotropic_data)
    draws = model.sample(200_000, random_state=0)
    assert draws.shape == (200_000, isotropic_data.shape[1])
    covariance = model.get_covariance()
    n = draws.shape[0]
    # five standard errors of the sample mean and of the sample covariance, (C_ii C_jj + C_ij²)/n
    mean_error = 5 * np.sqrt(np.diag(covariance) / n)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - model.mean_), mean_error)
    variance = np.outer(np.diag(covariance), np.diag(covariance)) + covariance**2
    np.testing.assert_array_less(np.abs(np.cov(draws, rowvar=False) - covariance), 5 * np.sqrt(variance / n))
    np.testing.assert_array_equal(model.sample(5, random_state=1), model.sample(5, random_state=1))


def test_wide_data_uses_em_and_matches_closed_form():
    """n_features > n_samples: EM streams the data (no D × D matrix) and reaches the closed form."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 2)) @ rng.standard_normal((2, 3000)) + 0.3 * rng.standard_normal((60, 3000))
    em = entrosum.PPCA(2, precompute=False, tol=None, gap_tol=1e-10, max_iter=5000, random_state=0).fit(X)
    assert em.monitor_.n_iter > 1  # 'auto' took EM because precompute=False
    closed = entrosum.PPCA(2, solver="closed_form").fit(X)
    assert em.score(X) == pytest.approx(closed.score(X), rel=1e-8)


def test_explained_variance_and_singular_values_follow_pca(isotropic_data):
    """PPCA's explained variances are PCA's with the 1/N normalisation; the ratios and singular values agree."""
    X = isotropic_data
    N = X.shape[0]
    ours = entrosum.PPCA(H).fit(X)
    theirs = PCA(n_components=H).fit(X)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_ * (N - 1) / N, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(ours.singular_values_, theirs.singular_values_, rtol=1e-10)
    assert ours.n_samples_ == N and ours.n_components_ == H
    assert np.all(ours.explained_variance_ >= ours.noise_variance_)
    em = entrosum.PPCA(H, solver="em", tol=1e-12, max_iter=20000, random_state=0).fit(X)  # from the parameters
    np.testing.assert_allclose(em.explained_variance_, ours.explained_variance_, rtol=1e-6)


def test_whiten_rescales_transform_only(isotropic_data):
    X = isotropic_data
    plain = entrosum.PPCA(H).fit(X)
    white = entrosum.PPCA(H, whiten=True).fit(X)
    codes = white.transform(X)
    np.testing.assert_allclose(np.cov(codes, rowvar=False, bias=True), np.eye(H), atol=1e-8)
    # PCA whitens with the 1/(N − 1) variances, PPCA with its maximum-likelihood 1/N ones
    pca = np.abs(PCA(H, whiten=True).fit_transform(X)) * np.sqrt(len(X) / (len(X) - 1))
    np.testing.assert_allclose(np.abs(codes), pca, rtol=1e-7, atol=1e-9)
    assert white.score(X) == plain.score(X)


def test_zero_and_all_components(isotropic_data):
    X = isotropic_data
    D = X.shape[1]
    none = entrosum.PPCA(0).fit(X)
    assert none.components_.shape == (0, D)
    assert none.noise_variance_ == pytest.approx(X.var(axis=0).mean(), rel=1e-12)
    for n_components in (D, None):
        full = entrosum.PPCA(n_components).fit(X)
        covariance = np.cov(X, rowvar=False, bias=True)
        np.testing.assert_allclose(full.get_covariance(), covariance, rtol=1e-9, atol=1e-11)
        assert full.score(X) == pytest.approx(gaussian_log_likelihood(X, X.mean(0), covariance), rel=1e-10)
        smallest = np.linalg.eigvalsh(covariance)[0]
        assert full.noise_variance_ == pytest.approx(smallest / 2, rel=1e-9)  # any σ² up to it gives S
        assert full.monitor_.elbo == pytest.approx(full.score(X), rel=1e-10)
