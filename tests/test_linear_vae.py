"""The linear VAE (entrosum.LinearVAE): at convergence its ELBO equals its entropy sum and both equal PPCA's maximum
log-likelihood (Damm et al.'s check on their data), the closed-form ELBO per sample against a direct computation,
the optimum's known form, transform, save/load, float32, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import entrosum
from entrosum import _core


def paper_data(n_samples=10_000, seed=0, dtype=np.float64) -> np.ndarray:
    """Damm et al.'s linear VAE data: W ~ U(0, 1)^(10×2), μ ~ U(0, 1)^10, x = W z + μ + 0.1 ε."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.0, 1.0, (10, 2))
    mean = rng.uniform(0.0, 1.0, 10)
    latent = rng.standard_normal((n_samples, 2))
    return (latent @ weights.T + mean + 0.1 * rng.standard_normal((n_samples, 10))).astype(dtype)


def ppca_max_log_likelihood(X: np.ndarray, n_components: int) -> float:
    """Tipping and Bishop's closed form per sample: eigenvalues of the ML covariance, σ² = mean of the rest."""
    n_features = X.shape[1]
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(X.astype(np.float64), rowvar=False, bias=True)))[::-1]
    sigma2 = eigenvalues[n_components:].mean()
    return -0.5 * (n_features * np.log(2 * np.pi) + np.log(eigenvalues[:n_components]).sum()
                   + (n_features - n_components) * np.log(sigma2) + n_features)


def elbo_per_sample(model: entrosum.LinearVAE, X: np.ndarray) -> np.ndarray:
    """E_q log p(x|z) + E_q log p(z) + H[q] for each sample, written out with q = N(V x + c, diag τ²)."""
    V, c, tau2 = (np.asarray(a, np.float64) for a in (model.encoder_weights_, model.encoder_bias_,
                                                       model.encoder_variances_))
    W, b, sigma2 = model.components_.T.astype(np.float64), model.mean_.astype(np.float64), float(model.noise_variance_)
    nu = X @ V.T + c
    n_features, n_components = W.shape
    expected_error = ((X - nu @ W.T - b) ** 2).sum(axis=1) + (tau2 * (W**2).sum(axis=0)).sum()
    reconstruction = -0.5 * n_features * np.log(2 * np.pi * sigma2) - 0.5 * expected_error / sigma2
    prior = -0.5 * n_components * np.log(2 * np.pi) - 0.5 * ((nu**2).sum(axis=1) + tau2.sum())
    posterior_entropy = 0.5 * np.log(2 * np.pi * np.e * tau2).sum()
    return reconstruction + prior + posterior_entropy


@pytest.fixture(scope="module")
def paper_fit() -> tuple[entrosum.LinearVAE, np.ndarray]:
    X = paper_data()
    return entrosum.LinearVAE(2, random_state=0).fit(X), X


def test_elbo_equals_entropy_sum_and_ppca_maximum_likelihood(paper_fit):
    model, X = paper_fit
    history = model.monitor_.history
    elbo, entropy_sum = history["elbo"][-1], history["entropy_sum"][-1]
    assert model.monitor_.converged
    assert abs(elbo - entropy_sum) < 1e-6
    reference = ppca_max_log_likelihood(X, 2)
    assert abs(elbo - reference) < 1e-6
    assert abs(entropy_sum - reference) < 1e-6
    assert abs(entrosum.PPCA(2).fit(X).score(X) - reference) < 1e-9  # the reference is PPCA's optimum
    # the gap closes over the fit, and L-BFGS never lowers the ELBO
    gap = np.abs(history["gap"])
    assert gap[0] > 1e-2 > 1e-6 > gap[-1]
    assert np.all(np.diff(history["elbo"]) > -1e-12)


def test_the_optimum_has_the_known_form(paper_fit):
    """Orthogonal decoder columns, τ_h² = σ²/(σ² + ‖w_h‖²), and σ² equal to PPCA's."""
    model, X = paper_fit
    W = model.components_.T
    gram = W.T @ W
    assert abs(gram[0, 1]) < 1e-4 * np.sqrt(gram[0, 0] * gram[1, 1])  # rotations are only weakly determined
    sigma2 = float(model.noise_variance_)
    # The ELBO is flat to second order about the optimal τ² (a relative error e of τ² costs about e²/2 per latent
    # and sample), so the stop rule (tol=1e-10 on F) fixes τ² to about 1e-5 relative; CPUs with other vector
    # widths stop a few iterations apart (4e-5 was seen on AVX2).
    np.testing.assert_allclose(model.encoder_variances_, sigma2 / (sigma2 + np.diag(gram)), rtol=2e-4)
    # σ² is fixed by the stop rule to about √tol relative, as τ² above (2.4e-6 was seen on AVX2)
    assert sigma2 == pytest.approx(entrosum.PPCA(2).fit(X).noise_variance_, rel=2e-5)
    # W W^T + σ² I: the same flatness about the optimum (5e-5 relative seen on AVX2); F itself agrees to 1e-6
    np.testing.assert_allclose(model.get_covariance(), entrosum.PPCA(2).fit(X).get_covariance(), rtol=2e-4,
                               atol=1e-8)


def test_score_transform_and_the_monitor_agree_with_direct_formulas(paper_fit):
    model, X = paper_fit
    rows = X[:500]
    np.testing.assert_allclose(model.score_samples(rows), elbo_per_sample(model, rows), rtol=1e-12, atol=1e-12)
    assert model.score(X) == pytest.approx(model.monitor_.history["elbo"][-1], rel=1e-10)
    np.testing.assert_allclose(model.transform(rows), rows @ model.encoder_weights_.T + model.encoder_bias_,
                               rtol=1e-12, atol=1e-12)
    codes = model.transform(rows)
    np.testing.assert_allclose(model.inverse_transform(codes), codes @ model.components_ + model.mean_, rtol=1e-12)


def test_save_and_load_round_trip(paper_fit, tmp_path):
    model, X = paper_fit
    path = tmp_path / "linear_vae.npz"
    model.save(path)
    loaded = entrosum.load(path)
    assert type(loaded) is entrosum.LinearVAE
    for name in ("components_", "mean_", "noise_variance_", "encoder_weights_", "encoder_bias_",
                 "encoder_variances_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.monitor_.history["elbo"], model.monitor_.history["elbo"])
    np.testing.assert_array_equal(loaded.score_samples(X[:100]), model.score_samples(X[:100]))
    saved = _core.SavedModel(str(path))  # the C++ reader scores as the estimator does
    assert saved.model == "LinearVAE"
    np.testing.assert_allclose(saved.score_samples(X[:100]), model.score_samples(X[:100]), rtol=1e-13)


def test_float32_data_fit_to_the_same_optimum():
    X = paper_data(2000, seed=1)
    model32 = entrosum.LinearVAE(2, random_state=0).fit(X.astype(np.float32))
    assert model32.components_.dtype == np.float32
    assert model32.transform(X[:5].astype(np.float32)).dtype == np.float32
    reference = ppca_max_log_likelihood(X.astype(np.float32), 2)
    assert model32.score(X.astype(np.float32).astype(np.float64)) == pytest.approx(reference, abs=1e-6)
    # the monitor's values come from the float32 data's moments, whose scatter is summed to float32 precision
    assert model32.monitor_.history["elbo"][-1] == pytest.approx(reference, abs=1e-4)
    assert abs(model32.monitor_.history["gap"][-1]) < 1e-6


def test_invalid_settings_and_data_raise_clear_errors():
    X = paper_data(200)
    with pytest.raises(ValueError, match="n_components < n_features = 10"):
        entrosum.LinearVAE(10).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        entrosum.LinearVAE(0).fit(X)
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        entrosum.LinearVAE(2).fit(bad)
    model = entrosum.LinearVAE(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="10 features"):
        model.transform(X[:, :9])
    with pytest.raises(ValueError, match="10 features"):
        model.score_samples(X[:, :9])
