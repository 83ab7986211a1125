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
