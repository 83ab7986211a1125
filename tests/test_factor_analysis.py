"""Factor analysis: at convergence ELBO = entropy sum = log-likelihood, and at least scikit-learn's fit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import FactorAnalysis as SklearnFactorAnalysis

import entrosum

from conftest import gaussian_log_likelihood

H = 3


@pytest.fixture(scope="module")
def fitted(heteroscedastic_data):
    return entrosum.FactorAnalysis(H, tol=None, gap_tol=1e-11, max_iter=50_000, random_state=0).fit(
        heteroscedastic_data
    )


def test_elbo_entropy_sum_and_log_likelihood_agree_at_convergence(fitted, heteroscedastic_data):
    X = heteroscedastic_data
    assert fitted.converged_ and fitted.monitor_.stop_reason == "gap_tol"
    W = fitted.components_.T
    covariance = W @ W.T + np.diag(fitted.noise_variance_)  # the test's own C = WWᵀ + Ψ
    log_likelihood = gaussian_log_likelihood(X, fitted.mean_, covariance)
    monitor = fitted.monitor_
    assert monitor.elbo == pytest.approx(log_likelihood, rel=1e-9)
    assert monitor.entropy_sum == pytest.approx(log_likelihood, rel=1e-9)
    assert fitted.score(X) == pytest.approx(log_likelihood, rel=1e-12)


def test_entropy_terms_are_the_closed_forms(fitted):
    """The three terms of the entropy sum, recomputed from the fitted parameters."""
    W = fitted.components_.T.astype(np.float64)
    psi = fitted.noise_variance_.astype(np.float64)
    posterior_covariance = np.linalg.inv(np.eye(H) + W.T @ (W / psi[:, None]))
    history = fitted.monitor_.history
    log_2pie = np.log(2 * np.pi * np.e)
    # the last record belongs to the parameters before the last M-step; at convergence they coincide
    assert history["posterior_entropy"][-1] == pytest.approx(
        0.5 * (H * log_2pie + np.linalg.slogdet(posterior_covariance)[1]), rel=1e-8)
    assert history["prior_entropy"][-1] == pytest.approx(0.5 * H * log_2pie, rel=1e-14)
    assert history["observable_entropy"][-1] == pytest.approx(0.5 * np.sum(np.log(2 * np.pi * np.e * psi)), rel=1e-8)
    np.testing.assert_array_equal(history["data_term"], 0.0)


def test_at_least_scikit_learn(fitted, heteroscedastic_data):
    X = heteroscedastic_data
    theirs = SklearnFactorAnalysis(H, random_state=0).fit(X)
    assert fitted.score(X) >= theirs.score(X) - 1e-4
    np.testing.assert_allclose(fitted.get_covariance(), theirs.get_covariance(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("precompute", [True, False])
def test_streamed_and_covariance_em_agree(heteroscedastic_data, precompute):
    """The E-step from the precomputed covariance equals the E-step streamed over the data."""
    X = heteroscedastic_data
    kwargs = dict(tol=None, max_iter=25, random_state=1)
    with pytest.warns(entrosum.ConvergenceWarning):
        reference = entrosum.FactorAnalysis(H, precompute=True, **kwargs).fit(X)
    with pytest.warns(entrosum.ConvergenceWarning):
        other = entrosum.FactorAnalysis(H, precompute=precompute, **kwargs).fit(X)
    np.testing.assert_allclose(other.lower_bounds_, reference.lower_bounds_, rtol=1e-11)
    np.testing.assert_allclose(other.components_, reference.components_, rtol=1e-9, atol=1e-11)


def test_em_increases_the_elbo_monotonically(heteroscedastic_data):
    model = entrosum.FactorAnalysis(H, tol=1e-10, max_iter=5000, random_state=2).fit(heteroscedastic_data)
    assert np.all(np.diff(model.lower_bounds_) > -1e-12)
    assert model.monitor_.relative_gap[0] > 1e-3


def test_transform_gives_posterior_means(fitted, heteroscedastic_data):
    X = heteroscedastic_data
    W = fitted.components_.T
    psi = fitted.noise_variance_
    G = np.linalg.inv(np.eye(H) + W.T @ (W / psi[:, None]))
    expected = (X - fitted.mean_) @ (W / psi[:, None]) @ G
    np.testing.assert_allclose(fitted.transform(X), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["varimax", "quartimax"])
def test_rotation_matches_scikit_learn_and_keeps_the_model(heteroscedastic_data, method):
    """Orthomax rotations from the published iteration: scikit-learn's result on the same loadings, the same
    covariance and score, rotated posterior means."""
    from sklearn.decomposition._factor_analysis import _ortho_rotation  # scikit-learn's, as the reference

    from entrosum.linear.rotation import orthomax_rotation

    rng = np.random.default_rng(3)
    for n_components in (2, 3, 5):
        loadings = rng.standard_normal((12, n_components))
        np.testing.assert_allclose(loadings @ orthomax_rotation(loadings, method),
                                   _ortho_rotation(loadings, method).T, rtol=1e-10, atol=1e-12)
    X = heteroscedastic_data
    plain = entrosum.FactorAnalysis(H, random_state=0).fit(X)
    rotated = entrosum.FactorAnalysis(H, rotation=method, random_state=0).fit(X)
    np.testing.assert_allclose(rotated.components_.T, _ortho_rotation(plain.components_.T, method).T, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(rotated.get_covariance(), plain.get_covariance(), rtol=1e-12, atol=1e-14)
    assert rotated.score(X) == pytest.approx(plain.score(X), rel=1e-12)
    R = np.linalg.lstsq(plain.components_.T, rotated.components_.T, rcond=None)[0]  # the rotation applied
    np.testing.assert_allclose(R @ R.T, np.eye(H), atol=1e-9)
    np.testing.assert_allclose(rotated.transform(X), plain.transform(X) @ R, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="rotation must be one of None, 'varimax', 'quartimax'"):
        entrosum.FactorAnalysis(H, rotation="promax").fit(X)


def test_loglike_is_the_total_log_likelihood_after_each_iteration(heteroscedastic_data):
    X = heteroscedastic_data
    for precompute in (True, False):
        model = entrosum.FactorAnalysis(H, precompute=precompute, tol=1e-8, random_state=0).fit(X)
        assert model.loglike_.shape == (model.n_iter_,)
        assert model.loglike_[-1] == pytest.approx(model.score_samples(X).sum(), rel=1e-12)
        np.testing.assert_allclose(model.loglike_[:-1], len(X) * model.lower_bounds_[1:], rtol=1e-12)
        assert np.all(np.diff(model.loglike_) > -1e-9)


def test_noise_variance_init_and_zero_to_all_components(heteroscedastic_data):
    X = heteroscedastic_data
    start = np.linspace(0.5, 2.0, X.shape[1])
    model = entrosum.FactorAnalysis(H, noise_variance_init=start, max_iter=1, tol=None)
    with pytest.warns(entrosum.ConvergenceWarning):
        model.fit(X)
    assert model.monitor_.history["observable_entropy"][0] == pytest.approx(
        0.5 * np.sum(np.log(2 * np.pi * np.e * start)), rel=1e-12)  # the first E-step used the given ψ
    with pytest.raises(ValueError, match=r"noise_variance_init must have shape \(12,\)"):
        entrosum.FactorAnalysis(H, noise_variance_init=np.ones(5)).fit(X)
    with pytest.raises(ValueError, match="positive finite"):
        entrosum.FactorAnalysis(H, noise_variance_init=np.zeros(12)).fit(X)
    # no factor: a diagonal Gaussian in closed form
    diagonal = entrosum.FactorAnalysis(0).fit(X)
    assert diagonal.components_.shape == (0, 12) and diagonal.monitor_.stop_reason == "closed_form"
    np.testing.assert_allclose(diagonal.noise_variance_, X.var(axis=0), rtol=1e-12)
    assert diagonal.score(X) == pytest.approx(gaussian_log_likelihood(X, X.mean(0), np.diag(X.var(0))), rel=1e-12)
    # as many factors as features, and None meaning that
    for n_components in (12, None):
        full = entrosum.FactorAnalysis(n_components, max_iter=200, tol=1e-6).fit(X)
        assert full.components_.shape == (12, 12) and full.n_components_ == 12
        np.testing.assert_allclose(full.get_covariance() @ full.get_precision(), np.eye(12), atol=1e-10)
