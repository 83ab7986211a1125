// The Gaussian VAE's ELBO and three-entropy sum over mini-batches (DESIGN.md, "Gaussian VAEs").
#include "entrosum/vae/gaussian_vae.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "entrosum/core/entropy.hpp"

namespace entrosum {

namespace {

using entropy::kLogTwoPi;

std::string shape(Index rows, Index cols) { return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")"; }

void expect_shape(const char* name, Index rows, Index cols, Index expected_rows, Index expected_cols,
                  const std::string& why) {
  if (rows != expected_rows || cols != expected_cols)
    throw std::invalid_argument(std::string(name) + " has shape " + shape(rows, cols) + ", expected " +
                                shape(expected_rows, expected_cols) + " (" + why + ")");
}

}  // namespace

const char* to_string(DecoderVariance variance) {
  switch (variance) {
    case DecoderVariance::scalar:
      return "scalar";
    case DecoderVariance::per_feature:
      return "per_feature";
    case DecoderVariance::per_sample:
      return "per_sample";
  }
  return "unknown";
}

GaussianVaeStats::GaussianVaeStats(Index n_features, Index n_latent)
    : encoder_mean_square(Eigen::VectorXd::Zero(n_latent)),
      encoder_variance(Eigen::VectorXd::Zero(n_latent)),
      squared_error(Eigen::VectorXd::Zero(n_features)) {}

GaussianVaeStats& GaussianVaeStats::operator+=(const GaussianVaeStats& other) {
  if (other.squared_error.size() == 0 && other.encoder_variance.size() == 0) return *this;  // nothing to add
  if (squared_error.size() == 0 && encoder_variance.size() == 0) {
    *this = other;
    return *this;
  }
  if (other.squared_error.size() != squared_error.size() || other.encoder_variance.size() != encoder_variance.size())
    throw std::invalid_argument("cannot merge VAE statistics of " + std::to_string(squared_error.size()) +
                                " features and " + std::to_string(encoder_variance.size()) + " latents with " +
                                std::to_string(other.squared_error.size()) + " features and " +
                                std::to_string(other.encoder_variance.size()) + " latents");
  count += other.count;
  reconstruction += other.reconstruction;
  kl_divergence += other.kl_divergence;
  posterior_entropy += other.posterior_entropy;
  prior_entropy += other.prior_entropy;
  observable_entropy += other.observable_entropy;
  log_encoder_variance += other.log_encoder_variance;
  encoder_mean_square += other.encoder_mean_square;
  encoder_variance += other.encoder_variance;
  squared_error += other.squared_error;
  return *this;
}

void GaussianVaeStats::scale(double factor) {
  count *= factor;
  reconstruction *= factor;
  kl_divergence *= factor;
  posterior_entropy *= factor;
  prior_entropy *= factor;
  observable_entropy *= factor;
  log_encoder_variance *= factor;
  encoder_mean_square *= factor;
  encoder_variance *= factor;
  squared_error *= factor;
}

template <typename T>
void accumulate_gaussian_vae(const DataRef<T>& data, const DataRef<T>& encoder_mean,
                             const DataRef<T>& encoder_log_variance, const DataRef<T>& decoder_mean,
                             const DataRef<T>& decoder_log_variance, DecoderVariance decoder_variance,
                             const Eigen::VectorXd& prior_log_variance, GaussianVaeStats& stats) {
  const Index n_points = data.rows();
  const Index n_features = data.cols();
  const Index n_latent = encoder_mean.cols();
  // ---- shapes ----
  expect_shape("encoder_mean", encoder_mean.rows(), n_latent, n_points, n_latent, "one row per data point");
  expect_shape("encoder_log_variance", encoder_log_variance.rows(), encoder_log_variance.cols(), n_points, n_latent,
               "as encoder_mean");
  if (n_points == 0) return;
  if (decoder_mean.cols() != n_features || decoder_mean.rows() % n_points != 0 || decoder_mean.rows() == 0)
    throw std::invalid_argument("decoder_mean has shape " + shape(decoder_mean.rows(), decoder_mean.cols()) +
                                ", expected (S * " + std::to_string(n_points) + ", " + std::to_string(n_features) +
                                ") for S samples of each of the " + std::to_string(n_points) + " data points");
  const Index n_samples = decoder_mean.rows() / n_points;
  switch (decoder_variance) {
    case DecoderVariance::scalar:
      expect_shape("decoder_log_variance", decoder_log_variance.rows(), decoder_log_variance.cols(), 1, 1,
                   "one scalar decoder variance");
      break;
    case DecoderVariance::per_feature:
      expect_shape("decoder_log_variance", decoder_log_variance.rows(), decoder_log_variance.cols(), 1, n_features,
                   "one decoder variance per feature");
      break;
    case DecoderVariance::per_sample:
      expect_shape("decoder_log_variance", decoder_log_variance.rows(), decoder_log_variance.cols(),
                   decoder_mean.rows(), n_features, "decoder variances for every sample, as decoder_mean");
      break;
  }
  const bool standard_prior = prior_log_variance.size() == 0;
  if (!standard_prior && prior_log_variance.size() != n_latent)
    throw std::invalid_argument("prior_log_variance has " + std::to_string(prior_log_variance.size()) +
                                " entries, expected one per latent dimension (" + std::to_string(n_latent) + ")");
  if (stats.squared_error.size() == 0 && stats.encoder_variance.size() == 0)
    stats = GaussianVaeStats(n_features, n_latent);
  if (stats.squared_error.size() != n_features || stats.encoder_variance.size() != n_latent)
    throw std::invalid_argument("the batch has " + std::to_string(n_features) + " features and " +
                                std::to_string(n_latent) + " latents; earlier batches had " +
                                std::to_string(stats.squared_error.size()) + " and " +
                                std::to_string(stats.encoder_variance.size()));

  // ---- the prior: H[p(z)] = ½ Σ_h (log 2πe + log α_h²) and 1/α² for the KL ----
  const Eigen::VectorXd prior_log = standard_prior ? Eigen::VectorXd::Zero(n_latent) : prior_log_variance;
  const Eigen::VectorXd prior_precision = (-prior_log.array()).exp();  // (H) 1/α²
  const double prior_entropy = 0.5 * (static_cast<double>(n_latent) * entropy::kLogTwoPiE + prior_log.sum());

  // A decoder variance that does not depend on z: its log-variances and inverses, once per batch.
  Eigen::VectorXd fixed_log_variance(n_features), fixed_precision(n_features);
  if (decoder_variance != DecoderVariance::per_sample) {
    for (Index d = 0; d < n_features; ++d)
      fixed_log_variance(d) = static_cast<double>(
          decoder_variance == DecoderVariance::scalar ? decoder_log_variance(0, 0) : decoder_log_variance(0, d));
    fixed_precision = (-fixed_log_variance.array()).exp();
  }
  const double fixed_observable_entropy =
      0.5 * (static_cast<double>(n_features) * entropy::kLogTwoPiE + fixed_log_variance.sum());

  const double per_sample = 1.0 / static_cast<double>(n_samples);
  GaussianVaeStats batch(n_features, n_latent);
  batch.count = static_cast<double>(n_points);
  for (Index i = 0; i < n_points; ++i) {
    // ---- the encoder: H[q_n] and KL(q_n ‖ p) = ½ Σ_h [(ν² + τ²)/α² − 1 − log τ² + log α²] ----
    double log_variance_sum = 0.0, kl = 0.0;
    for (Index h = 0; h < n_latent; ++h) {
      const double mean = static_cast<double>(encoder_mean(i, h));
      const double log_variance = static_cast<double>(encoder_log_variance(i, h));
      const double variance = std::exp(log_variance);
      log_variance_sum += log_variance;
      batch.encoder_mean_square(h) += mean * mean;
      batch.encoder_variance(h) += variance;
      kl += (mean * mean + variance) * prior_precision(h) - 1.0 - log_variance + prior_log(h);
    }
    batch.log_encoder_variance += log_variance_sum;
    batch.posterior_entropy += 0.5 * (static_cast<double>(n_latent) * entropy::kLogTwoPiE + log_variance_sum);
    batch.kl_divergence += 0.5 * kl;
    batch.prior_entropy += prior_entropy;

    // ---- the decoder, averaged over the S samples of this point ----
    double reconstruction = 0.0, observable_entropy = 0.0;
    for (Index s = 0; s < n_samples; ++s) {
      const Index row = s * n_points + i;
      double log_density = 0.0, log_variance_sum_x = 0.0;
      for (Index d = 0; d < n_features; ++d) {
        const double residual = static_cast<double>(data(i, d)) - static_cast<double>(decoder_mean(row, d));
        const double square = residual * residual;
        batch.squared_error(d) += per_sample * square;
        double log_variance, precision;
        if (decoder_variance == DecoderVariance::per_sample) {
          log_variance = static_cast<double>(decoder_log_variance(row, d));
          precision = std::exp(-log_variance);
          log_variance_sum_x += log_variance;
        } else {
          log_variance = fixed_log_variance(d);
          precision = fixed_precision(d);
        }
        log_density -= 0.5 * (kLogTwoPi + log_variance + square * precision);
      }
      reconstruction += log_density;
      observable_entropy += decoder_variance == DecoderVariance::per_sample
                                ? 0.5 * (static_cast<double>(n_features) * entropy::kLogTwoPiE + log_variance_sum_x)
                                : fixed_observable_entropy;
    }
    batch.reconstruction += per_sample * reconstruction;
    batch.observable_entropy += per_sample * observable_entropy;
  }
  stats += batch;
}

ElboTerms gaussian_vae_terms(const GaussianVaeStats& stats) {
  if (!(stats.count > 0.0)) throw std::invalid_argument("no data points were added");
  ElboTerms terms;
  terms.elbo = (stats.reconstruction - stats.kl_divergence) / stats.count;
  terms.posterior_entropy = stats.posterior_entropy / stats.count;
  terms.prior_entropy = stats.prior_entropy / stats.count;
  terms.observable_entropy = stats.observable_entropy / stats.count;
  return terms;
}

double gaussian_vae_optimal_noise_variance(const GaussianVaeStats& stats) {
  if (!(stats.count > 0.0)) throw std::invalid_argument("no data points were added");
  return stats.squared_error.sum() / (stats.count * static_cast<double>(stats.squared_error.size()));
}

Eigen::VectorXd gaussian_vae_optimal_noise_variances(const GaussianVaeStats& stats) {
  if (!(stats.count > 0.0)) throw std::invalid_argument("no data points were added");
  return stats.squared_error / stats.count;
}

Eigen::VectorXd gaussian_vae_optimal_prior_variances(const GaussianVaeStats& stats) {
  if (!(stats.count > 0.0)) throw std::invalid_argument("no data points were added");
  return (stats.encoder_mean_square + stats.encoder_variance) / stats.count;
}

ElboTerms gaussian_vae_optimal_terms(const GaussianVaeStats& stats, DecoderVariance decoder_variance,
                                     bool learned_prior) {
  if (decoder_variance == DecoderVariance::per_sample)
    throw std::invalid_argument("decoder variances that depend on z have no closed-form optimum");
  const double n = stats.count;
  const auto n_latent = static_cast<double>(stats.encoder_variance.size());
  // The decoder at σ²*: E log p(x | z) = −½ Σ_d log(2πe σ_d²*), which is also −H[p(x | z)].
  double observable_entropy;
  if (decoder_variance == DecoderVariance::scalar) {
    observable_entropy =
        entropy::gaussian_isotropic(stats.squared_error.size(), gaussian_vae_optimal_noise_variance(stats));
  } else {
    observable_entropy = entropy::gaussian_diagonal(gaussian_vae_optimal_noise_variances(stats));
  }
  // The prior: α² = α²* learned, or 1. KL summed = ½ Σ_h [(Σ_n ν² + τ²)/α_h² − N − Σ_n log τ_h² + N log α_h²].
  const Eigen::VectorXd second_moment = gaussian_vae_optimal_prior_variances(stats);  // (H) (1/N) Σ (ν² + τ²)
  const Eigen::VectorXd prior_variance =
      learned_prior ? second_moment : Eigen::VectorXd::Ones(stats.encoder_variance.size());
  const double kl = 0.5 * ((second_moment.array() / prior_variance.array()).sum() - n_latent -
                           stats.log_encoder_variance / n + prior_variance.array().log().sum());
  ElboTerms terms;
  terms.posterior_entropy = stats.posterior_entropy / n;
  terms.prior_entropy = entropy::gaussian_diagonal(prior_variance);
  terms.observable_entropy = observable_entropy;
  terms.elbo = -observable_entropy - kl;
  return terms;
}

template void accumulate_gaussian_vae<float>(const DataRef<float>&, const DataRef<float>&, const DataRef<float>&,
                                             const DataRef<float>&, const DataRef<float>&, DecoderVariance,
                                             const Eigen::VectorXd&, GaussianVaeStats&);
template void accumulate_gaussian_vae<double>(const DataRef<double>&, const DataRef<double>&, const DataRef<double>&,
                                              const DataRef<double>&, const DataRef<double>&, DecoderVariance,
                                              const Eigen::VectorXd&, GaussianVaeStats&);

}  // namespace entrosum
