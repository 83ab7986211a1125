// The three-entropy sum of Gaussian variational autoencoders (Damm et al., arXiv:2010.14860; DESIGN.md,
// "Gaussian VAEs"), and their ELBO, accumulated over mini-batches.
//
// Model: a prior p(z) = N(0, diag α²) (α = 1: the standard normal prior), an encoder q_n = N(ν_n, diag τ_n²) and
// a decoder p(x | z) = N(μ(z), diag σ²(z)) whose variance is one scalar, one per feature, or a function of z.
// A training step already has, per data point, ν_n, log τ_n², and the decoder's outputs at S samples z_ns ~ q_n.
// From them, per point:
//
//   ELBO    F_n = (1/S) Σ_s log N(x_n; μ(z_ns), σ²(z_ns)) − KL(q_n ‖ p(z))      (Monte Carlo + analytic KL)
//   entropy sum S_n = H[q_n] − H[p(z)] − (1/S) Σ_s H[N(μ(z_ns), σ²(z_ns))]
//
// with H[N(·, diag v)] = ½ Σ (log 2πe + log v). Both are sums over points, so the statistics below add up over
// batches of any size, and an epoch's values (the sums divided by N) are exact over the whole data set. They also
// hold the sums the closed-form optimal variances need: σ²* = (1/(N D)) Σ_n E‖x_n − μ(z)‖² (per feature without the
// sum over d) and α_h²* = (1/N) Σ_n (ν_nh² + τ_nh²). At all of them at once the ELBO equals the entropy sum exactly;
// with the N(0, I) prior the gap that remains is ½ Σ_h (1 − α_h²*), which closes at stationarity of the encoder and
// a linear first decoder layer.
#pragma once

#include <Eigen/Core>
#include <string>

#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// The decoder's variance σ² (DESIGN.md, "Gaussian VAEs": VAE-1 and VAE-3).
enum class DecoderVariance {
  scalar,       ///< one σ² for every feature (a (1, 1) log-variance)
  per_feature,  ///< σ_d², one per feature (a (1, D) log-variance)
  per_sample,   ///< σ_d²(z), the decoder's output for every sample z (log-variances shaped as the decoder means)
};

const char* to_string(DecoderVariance variance);

/// Sums over data points of one or more mini-batches; mergeable (`+=`) in any grouping. All in double.
struct GaussianVaeStats {
  /// N, the data points added.
  double count = 0.0;
  /// Σ_n (1/S) Σ_s log N(x_n; μ(z_ns), σ²(z_ns)): the Monte Carlo reconstruction term.
  double reconstruction = 0.0;
  /// Σ_n KL(q_n ‖ p(z)), analytic.
  double kl_divergence = 0.0;
  /// Σ_n H[q_n].
  double posterior_entropy = 0.0;
  /// Σ_n H[p(z)] (the prior in force for each point's batch).
  double prior_entropy = 0.0;
  /// Σ_n (1/S) Σ_s H[p(x | z_ns)].
  double observable_entropy = 0.0;
  /// Σ_n Σ_h log τ_nh².
  double log_encoder_variance = 0.0;
  /// (n_latent) Σ_n ν_nh².
  Eigen::VectorXd encoder_mean_square;
  /// (n_latent) Σ_n τ_nh².
  Eigen::VectorXd encoder_variance;
  /// (n_features) Σ_n (1/S) Σ_s (x_nd − μ_d(z_ns))².
  Eigen::VectorXd squared_error;

  GaussianVaeStats() = default;
  GaussianVaeStats(Index n_features, Index n_latent);
  /// Sums of other points (an empty value adopts the other's sizes).
  GaussianVaeStats& operator+=(const GaussianVaeStats& other);
  /// Multiplies every sum by `factor`.
  void scale(double factor);
  bool empty() const { return count == 0.0; }
};

/// Adds one mini-batch of n points to `stats`.
///
/// - data (n, D) x_n; encoder_mean and encoder_log_variance (n, H) ν_n and log τ_n²;
/// - decoder_mean (S·n, D) μ(z_ns) for S ≥ 1 samples per point, sample-major: row s·n + i is sample s of point i
///   (a C-ordered (S, n, D) array);
/// - decoder_log_variance: (1, 1) log σ² for `scalar`, (1, D) for `per_feature`, (S·n, D) like decoder_mean for
///   `per_sample`;
/// - prior_log_variance (H) log α², or empty for the standard normal prior.
///
/// Shapes that do not fit raise std::invalid_argument, naming the argument and both shapes.
template <typename T>
void accumulate_gaussian_vae(const DataRef<T>& data, const DataRef<T>& encoder_mean,
                             const DataRef<T>& encoder_log_variance, const DataRef<T>& decoder_mean,
                             const DataRef<T>& decoder_log_variance, DecoderVariance decoder_variance,
                             const Eigen::VectorXd& prior_log_variance, GaussianVaeStats& stats);

/// F and the entropy sum's three terms per data point, from the sums (the prior and decoder variances those
/// batches were given). std::invalid_argument when no point was added.
ElboTerms gaussian_vae_terms(const GaussianVaeStats& stats);

/// The optimal scalar decoder variance σ²* = (1/(N D)) Σ_n E‖x_n − μ(z)‖².
double gaussian_vae_optimal_noise_variance(const GaussianVaeStats& stats);
/// (n_features) The optimal per-feature decoder variances σ_d²* = (1/N) Σ_n E (x_nd − μ_d(z))².
Eigen::VectorXd gaussian_vae_optimal_noise_variances(const GaussianVaeStats& stats);
/// (n_latent) The optimal prior variances α_h²* = (1/N) Σ_n (ν_nh² + τ_nh²).
Eigen::VectorXd gaussian_vae_optimal_prior_variances(const GaussianVaeStats& stats);

/// F and the entropy sum per data point with the optimal variances substituted: the decoder's (`scalar` or
/// `per_feature`; σ²(z) has no closed form: std::invalid_argument for `per_sample`) and, when `learned_prior`,
/// the prior's (otherwise N(0, I)). This is the entropy-based objective of DESIGN.md: F with σ² (and α²) at their
/// optimum, which equals the entropy sum exactly when the prior is learned too.
ElboTerms gaussian_vae_optimal_terms(const GaussianVaeStats& stats, DecoderVariance decoder_variance,
                                     bool learned_prior);

}  // namespace entrosum
