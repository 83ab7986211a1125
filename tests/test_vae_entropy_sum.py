"""The three-entropy sum of Gaussian VAEs on numpy arrays (entrosum.vae): every variant of Damm et al. against a
direct numpy computation, batch-size invariance of the accumulated epoch values, the closed-form optimal variances,
and clear errors for batches that do not fit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import stats

from entrosum import _core
from entrosum.vae import EntropySumAccumulator, entropy_sum

LOG_2PI_E = np.log(2 * np.pi * np.e)


def batch(n_points=40, n_features=6, n_latent=3, n_samples=1, *, seed=0, dtype=np.float64) -> dict:
    """Encoder and decoder outputs of a made-up VAE for n_points data points (S decoder samples per point)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_points, n_features))
    mean = rng.normal(size=(n_points, n_latent))
    log_variance = rng.normal(-1.0, 0.5, size=(n_points, n_latent))
    decoded = x + 0.3 * rng.normal(size=(n_samples, n_points, n_features))
    arrays = {"X": x, "encoder_mean": mean, "encoder_log_variance": log_variance,
              "decoder_mean": decoded if n_samples > 1 else decoded[0],
              "decoder_log_variance_per_sample": rng.normal(-2.0, 0.3, size=decoded.shape if n_samples > 1
                                                            else decoded.shape[1:]),
              "decoder_log_variance_per_feature": rng.normal(-2.0, 0.3, size=n_features),
              "decoder_log_variance_scalar": np.float64(-1.7), "prior_log_variance": rng.normal(0.2, 0.3, n_latent)}
    return {k: np.asarray(v, dtype=dtype) for k, v in arrays.items()}


def direct(x, mean, log_variance, decoded, decoder_log_variance, prior_log_variance) -> dict:
    """F, S and its terms per point, computed directly (scipy's densities and entropies, no shared code)."""
    x, mean, log_variance = (np.asarray(a, np.float64) for a in (x, mean, log_variance))
    decoded = np.asarray(decoded, np.float64)
    decoded = decoded if decoded.ndim == 3 else decoded[np.newaxis]
    sigma = np.sqrt(np.exp(np.broadcast_to(np.asarray(decoder_log_variance, np.float64), decoded.shape)))
    tau = np.sqrt(np.exp(log_variance))
    alpha = np.sqrt(np.exp(prior_log_variance)) if prior_log_variance is not None else np.ones(mean.shape[1])
    # F: E_q log p(x|z) by the samples given, E_q log p(z) in closed form, H[q] by scipy
    reconstruction = stats.norm.logpdf(x[np.newaxis], decoded, sigma).sum(axis=2).mean(axis=0)
    cross = (stats.norm.logpdf(0.0, 0.0, alpha) - 0.5 * (mean**2 + tau**2) / alpha**2).sum(axis=1)
    posterior_entropy = stats.norm(0.0, tau).entropy().sum(axis=1)
    elbo = np.mean(reconstruction + cross + posterior_entropy)
    prior_entropy = stats.norm(0.0, alpha).entropy().sum()
    observable_entropy = np.mean(stats.norm(0.0, sigma).entropy().sum(axis=2).mean(axis=0))
    entropy_sum_ = posterior_entropy.mean() - prior_entropy - observable_entropy
    return {"elbo": elbo, "entropy_sum": entropy_sum_, "posterior_entropy": posterior_entropy.mean(),
            "prior_entropy": prior_entropy, "observable_entropy": observable_entropy, "gap": elbo - entropy_sum_}


VARIANTS = {
    # name: (decoder log-variance key, learned prior, samples per point)
    "vae1_scalar": ("decoder_log_variance_scalar", False, 1),
    "per_feature": ("decoder_log_variance_per_feature", False, 1),
    "vae2_learned_prior": ("decoder_log_variance_scalar", True, 1),
    "vae3_sigma_of_z": ("decoder_log_variance_per_sample", False, 4),
    "vae3_learned_prior": ("decoder_log_variance_per_sample", True, 1),
    "unit_variance": (None, False, 2),
}


def arguments(arrays: dict, variance_key, learned: bool) -> tuple:
    return (arrays["X"], arrays["encoder_mean"], arrays["encoder_log_variance"], arrays["decoder_mean"],
            None if variance_key is None else arrays[variance_key], arrays["prior_log_variance"] if learned else None)


@pytest.mark.parametrize("variant", VARIANTS)
def test_terms_match_a_direct_computation(variant):
    variance_key, learned, n_samples = VARIANTS[variant]
    args = arguments(batch(n_samples=n_samples, seed=1), variance_key, learned)
    got = entropy_sum(*args)
    expected = direct(*args[:4], 0.0 if variance_key is None else args[4], args[5])
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert got["entropy_sum"] == pytest.approx(got["posterior_entropy"] - got["prior_entropy"]
                                               - got["observable_entropy"], rel=1e-14)
    assert got["elbo"] == pytest.approx(got["reconstruction"] - got["kl_divergence"], rel=1e-14)


def test_the_design_tables_forms_of_the_entropy_sum():
    """DESIGN.md: VAE-1 S = (1/N) Σ Σ_h log τ − (D/2) log(2πe σ²); VAE-2 the same − Σ_h log α_h; VAE-3
    (1/N) Σ Σ_h log τ − (D/2) log(2πe) − (1/N) Σ E Σ_d log σ_d(z)."""
    arrays = batch(n_samples=3, seed=2)
    x, mean, log_variance = arrays["X"], arrays["encoder_mean"], arrays["encoder_log_variance"]
    n_features = x.shape[1]
    sum_log_tau = np.mean(0.5 * log_variance.sum(axis=1))
    log_sigma2 = arrays["decoder_log_variance_scalar"]
    vae1 = entropy_sum(x, mean, log_variance, arrays["decoder_mean"], log_sigma2)["entropy_sum"]
    assert vae1 == pytest.approx(sum_log_tau - n_features / 2 * (LOG_2PI_E + log_sigma2), rel=1e-13)
    prior = arrays["prior_log_variance"]
    vae2 = entropy_sum(x, mean, log_variance, arrays["decoder_mean"], log_sigma2, prior)["entropy_sum"]
    assert vae2 == pytest.approx(vae1 - 0.5 * prior.sum(), rel=1e-13)
    per_sample = arrays["decoder_log_variance_per_sample"]
    vae3 = entropy_sum(x, mean, log_variance, arrays["decoder_mean"], per_sample)["entropy_sum"]
    assert vae3 == pytest.approx(sum_log_tau - n_features / 2 * LOG_2PI_E
                                 - np.mean(0.5 * per_sample.sum(axis=2).mean(axis=0)), rel=1e-13)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_epoch_values_do_not_depend_on_the_batch_size(variant, dtype):
    variance_key, learned, n_samples = VARIANTS[variant]
    arrays = batch(n_points=57, n_samples=n_samples, seed=3, dtype=dtype)
    x, mean, log_variance, decoded, decoder_log_variance, prior = arguments(arrays, variance_key, learned)
    results = []
    for batch_size in (1, 7, len(x)):
        accumulator = EntropySumAccumulator()
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            decoder_rows = decoded[..., rows, :]
            if variance_key == "decoder_log_variance_per_sample":
                given = decoder_log_variance[..., rows, :]
            else:
                given = decoder_log_variance
            accumulator.add(x[rows], mean[rows], log_variance[rows], decoder_rows, given, prior)
        assert accumulator.count == len(x)
        results.append(accumulator)
    reference = results[-1].terms()
    for accumulator in results[:-1]:
        for name, value in accumulator.terms().items():
            assert value == pytest.approx(reference[name], rel=1e-12, abs=1e-12), name
        np.testing.assert_allclose(accumulator.optimal_prior_variances(), results[-1].optimal_prior_variances(),
                                   rtol=1e-12)
        np.testing.assert_allclose(accumulator.optimal_noise_variance(per_feature=True),
                                   results[-1].optimal_noise_variance(per_feature=True), rtol=1e-12)
    if dtype == np.float32:  # float32 inputs, summed in double: the float64 values of the same (rounded) numbers
        exact = entropy_sum(*(None if a is None else np.asarray(a, np.float64)
                              for a in (x, mean, log_variance, decoded, decoder_log_variance, prior)))
        for name, value in reference.items():
            assert value == pytest.approx(exact[name], rel=1e-12, abs=1e-12), name


def test_merged_accumulators_equal_one_and_pickle():
    arrays = batch(n_points=30, seed=4)
    x, mean, log_variance, decoded = (arrays[k] for k in ("X", "encoder_mean", "encoder_log_variance",
                                                          "decoder_mean"))
    log_sigma2 = arrays["decoder_log_variance_scalar"]
    whole = EntropySumAccumulator().add(x, mean, log_variance, decoded, log_sigma2)
    first = EntropySumAccumulator().add(x[:11], mean[:11], log_variance[:11], decoded[:11], log_sigma2)
    second = EntropySumAccumulator().add(x[11:], mean[11:], log_variance[11:], decoded[11:], log_sigma2)
    first += second
    for name, value in whole.terms().items():
        assert first.terms()[name] == pytest.approx(value, rel=1e-13, abs=1e-13)
    restored = pickle.loads(pickle.dumps(whole.statistics))
    assert isinstance(restored, _core.GaussianVaeStats)
    assert _core.gaussian_vae_terms(restored) == _core.gaussian_vae_terms(whole.statistics)


def test_optimal_variances_in_closed_form():
    arrays = batch(n_points=80, n_samples=3, seed=5)
    x, mean, log_variance, decoded = (arrays[k] for k in ("X", "encoder_mean", "encoder_log_variance",
                                                          "decoder_mean"))
    residual2 = (x[np.newaxis] - decoded) ** 2
    accumulator = EntropySumAccumulator().add(x, mean, log_variance, decoded, 0.0)
    sigma2 = accumulator.optimal_noise_variance()
    assert sigma2 == pytest.approx(residual2.mean(), rel=1e-13)
    np.testing.assert_allclose(accumulator.optimal_noise_variance(per_feature=True), residual2.mean(axis=(0, 1)),
                               rtol=1e-13)
    alpha2 = accumulator.optimal_prior_variances()
    np.testing.assert_allclose(alpha2, (mean**2 + np.exp(log_variance)).mean(axis=0), rtol=1e-13)

    # σ²* maximises F: the optimal terms are F at σ²*, and F is lower on either side of it
    optimal = accumulator.optimal_terms()
    at_optimum = entropy_sum(x, mean, log_variance, decoded, np.log(sigma2))
    assert optimal["elbo"] == pytest.approx(at_optimum["elbo"], rel=1e-12)
    for factor in (0.9, 1.1):
        assert entropy_sum(x, mean, log_variance, decoded, np.log(factor * sigma2))["elbo"] < optimal["elbo"]
    # ... and α²* the prior's: with both at their optimum F equals the entropy sum exactly
    both = accumulator.optimal_terms(learned_prior=True)
    assert both["gap"] == pytest.approx(0.0, abs=1e-12)
    with_prior = entropy_sum(x, mean, log_variance, decoded, np.log(sigma2), np.log(alpha2))
    assert both["elbo"] == pytest.approx(with_prior["elbo"], rel=1e-12)
    assert both["entropy_sum"] == pytest.approx(with_prior["entropy_sum"], rel=1e-12)
    # with N(0, I), the gap that is left at σ²* is ½ Σ_h (1 − α_h²*)
    assert optimal["gap"] == pytest.approx(0.5 * np.sum(1.0 - alpha2), rel=1e-12)
    per_feature = accumulator.optimal_terms(decoder_variance="per_feature")
    assert per_feature["elbo"] == pytest.approx(
        entropy_sum(x, mean, log_variance, decoded, np.log(residual2.mean(axis=(0, 1))))["elbo"], rel=1e-12)


def test_mismatched_batches_give_clear_errors():
    arrays = batch(n_points=10, seed=6)
    x, mean, log_variance, decoded = (arrays[k] for k in ("X", "encoder_mean", "encoder_log_variance",
                                                          "decoder_mean"))
    with pytest.raises(ValueError, match=r"encoder_mean must have shape \(n_points, n_latent\) = \(10, H\)"):
        entropy_sum(x, mean[:9], log_variance, decoded)
    with pytest.raises(ValueError, match=r"encoder_log_variance must have encoder_mean's shape \(10, 3\), got "
                                         r"\(10, 2\)"):
        entropy_sum(x, mean, log_variance[:, :2], decoded)
    with pytest.raises(ValueError, match=r"decoder_mean must have X's shape \(10, 6\)"):
        entropy_sum(x, mean, log_variance, decoded[:, :5])
    with pytest.raises(ValueError, match=r"decoder_log_variance must be a scalar .* got shape \(5,\)"):
        entropy_sum(x, mean, log_variance, decoded, np.zeros(5))
    with pytest.raises(ValueError, match=r"prior_log_variance must have one entry per latent dimension \(3,\)"):
        entropy_sum(x, mean, log_variance, decoded, 0.0, np.zeros(4))
    with pytest.raises(ValueError, match="X must be 2-D"):
        entropy_sum(x[0], mean, log_variance, decoded)
    bad = log_variance.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="encoder_log_variance holds NaN or infinity"):
        entropy_sum(x, mean, bad, decoded)
    with pytest.raises(TypeError, match="real numbers"):
        entropy_sum(x.astype(str), mean, log_variance, decoded)
    accumulator = EntropySumAccumulator().add(x, mean, log_variance, decoded, 0.0)
    with pytest.raises(ValueError, match="per_feature decoder variance .* earlier batches had a scalar one"):
        accumulator.add(x, mean, log_variance, decoded, np.zeros(6))
    with pytest.raises(ValueError, match="the batch has 5 features and 3 latents; earlier batches had 6 and 3"):
        accumulator.add(x[:, :5], mean, log_variance, decoded[:, :5], 0.0)
    with pytest.raises(ValueError, match="no batch has been added"):
        EntropySumAccumulator().terms()
    per_sample = EntropySumAccumulator().add(x, mean, log_variance, decoded, np.zeros_like(decoded))
    with pytest.raises(ValueError, match="closed form for 'scalar' or 'per_feature'"):
        per_sample.optimal_terms()
