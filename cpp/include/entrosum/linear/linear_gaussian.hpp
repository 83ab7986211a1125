// Linear-Gaussian latent models (DESIGN.md §3): z ~ N(0, I_H), x | z ~ N(W z + μ, Ψ).
// Factor analysis has a diagonal Ψ; probabilistic PCA is the same model with Ψ = σ² I, so both
// share one E-step, one ELBO and one M-step and differ only in how the noise is updated.
//
// The exact posterior is q_n = N(ν_n, G) with G = (I + WᵀΨ⁻¹W)⁻¹ and ν_n = G WᵀΨ⁻¹ (x_n − μ);
// for PPCA this is N(M⁻¹Wᵀ(x_n − μ), σ² M⁻¹) with M = WᵀW + σ²I.
#pragma once

#include <Eigen/Core>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/moments.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

enum class NoiseModel {
  isotropic,  ///< Ψ = σ² I: probabilistic PCA
  diagonal,   ///< Ψ = diag(ψ): factor analysis
};

/// How the M-step treats the scale of the latent space.
enum class ParameterExpansion {
  none,              ///< plain EM
  prior_covariance,  ///< PX-EM: also learn Σ_z, then fold it into W (same fixed points, much faster)
};

/// Parameters Θ = (μ, W, Ψ); held in double whatever the data's precision.
struct LinearGaussianParams {
  /// (n_features) μ
  Eigen::VectorXd mean;
  /// (n_features, n_components) W
  Eigen::MatrixXd components;
  /// (n_features) diagonal of Ψ; all equal for the isotropic model
  Eigen::VectorXd noise_variance;
};

/// The exact posterior at given parameters; its covariance is shared by all data points.
struct LinearGaussianPosterior {
  /// (n_components, n_components) G = (I + WᵀΨ⁻¹W)⁻¹
  Eigen::MatrixXd covariance;
  /// (n_features, n_components) Ψ⁻¹ W G, so that ν_n = projectionᵀ (x_n − μ)
  Eigen::MatrixXd projection;
  /// H[q_n] = ½ log det(2πe G)
  double entropy = 0.0;

  static LinearGaussianPosterior from(const LinearGaussianParams& params);
};

/// Expected sufficient statistics of q over the data, centred at μ; mergeable.
struct LinearGaussianStats {
  double count = 0.0;
  /// (n_features) Σ_n (x_nd − μ_d)²
  Eigen::VectorXd centred_square;
  /// (n_features, n_components) Σ_n (x_n − μ) ν_nᵀ
  Eigen::MatrixXd cross;
  /// (n_components, n_components) Σ_n ν_n ν_nᵀ
  Eigen::MatrixXd mean_outer;

  LinearGaussianStats() = default;
  LinearGaussianStats(Index n_features, Index n_components);
  LinearGaussianStats& operator+=(const LinearGaussianStats& other);
};

/// What an E-step yields: the posterior it used and the statistics it gathered.
struct LinearGaussianExpectation {
  LinearGaussianPosterior posterior;
  LinearGaussianStats stats;
};

/// Adds the statistics of one chunk of rows to `stats` (the streaming E-step).
template <typename T>
void accumulate_linear_gaussian_stats(const DataRef<T>& chunk, const Eigen::VectorXd& mean,
                                      const LinearGaussianPosterior& posterior, LinearGaussianStats& stats);

/// The same statistics from the data's full moments, without touching the data: every sum over n is
/// a product with the scatter matrix (DESIGN.md §6).
LinearGaussianStats linear_gaussian_stats_from_moments(const Moments& moments,
                                                       const LinearGaussianPosterior& posterior);

/// The E-step from the data's full moments for any Θ: q's posterior and its statistics centred at Θ's μ (the
/// scatter about the data mean plus N δδᵀ, δ = data mean − μ, when μ is not the data mean). The moments are
/// what a chunk-level pass yields for these models (partial_fit, Dask): every E-step is then free of the data.
LinearGaussianExpectation linear_gaussian_expectation(const Moments& moments, const LinearGaussianParams& params);

/// Noise variances are kept at or above this floor: kRelativeNoiseFloor times the mean data variance.
double linear_gaussian_noise_floor(const Moments& moments);

/// F(q, Θ) and the entropy sum S(q, Θ) per sample, for the q whose statistics are given (centred at Θ's μ).
ElboTerms linear_gaussian_elbo(const LinearGaussianExpectation& expectation, const LinearGaussianParams& params);

/// The exact M-step for W and Ψ (μ stays at the data mean, its exact optimum); noise variances are kept
/// at or above `noise_floor`. With parameter expansion, W is then multiplied by the Cholesky factor of
/// the learned prior covariance (1/N) Σ_n E[z zᵀ].
LinearGaussianParams linear_gaussian_m_step(const LinearGaussianExpectation& expectation,
                                            const LinearGaussianParams& params, NoiseModel noise, double noise_floor,
                                            ParameterExpansion expansion);

/// The EM model for run_em: the E-step streams the data, or uses precomputed full moments.
template <typename T>
class LinearGaussianModel {
 public:
  using Params = LinearGaussianParams;
  using Expectation = LinearGaussianExpectation;

  /// `moments` full: E-steps use them (no pass over the data); otherwise every E-step streams `data`.
  LinearGaussianModel(const DataRef<T>& data, const Moments& moments, NoiseModel noise, ParameterExpansion expansion,
                      double noise_floor, const Execution& execution)
      : data_(data),
        moments_(moments),
        noise_(noise),
        expansion_(expansion),
        noise_floor_(noise_floor),
        execution_(execution) {}

  Expectation e_step(const Params& params) const;
  ElboTerms evaluate(const Expectation& expectation, const Params& params) const {
    return linear_gaussian_elbo(expectation, params);
  }
  Params m_step(const Expectation& expectation, const Params& params) const {
    return linear_gaussian_m_step(expectation, params, noise_, noise_floor_, expansion_);
  }

 private:
  DataRef<T> data_;
  const Moments& moments_;
  NoiseModel noise_;
  ParameterExpansion expansion_;
  double noise_floor_;
  Execution execution_;
};

struct LinearGaussianOptions {
  NoiseModel noise = NoiseModel::diagonal;
  ParameterExpansion expansion = ParameterExpansion::prior_covariance;
  /// Collect the D × D covariance once and run EM on it (iterations independent of N), instead of a
  /// pass over the data per iteration.
  bool precompute = true;
  StopOptions stop;
  Execution execution;
};

struct LinearGaussianFit {
  LinearGaussianParams params;
  ConvergenceMonitor monitor;
};

/// Noise variances are kept at or above this fraction of the mean data variance.
inline constexpr double kRelativeNoiseFloor = 1e-12;

/// EM from initial W and Ψ (μ is set to the data mean). The monitor records every iteration.
/// With an empty `initial.noise_variance`, the fit starts from the data's scale instead: Ψ at the
/// feature variances (their mean for PPCA) and W = initial.components · √(mean variance).
template <typename T>
LinearGaussianFit fit_linear_gaussian(const DataRef<T>& data, const LinearGaussianParams& initial,
                                      const LinearGaussianOptions& options, const IterationCallback& on_iteration = {});

/// The starting parameters of fit_linear_gaussian: μ at the data mean and, for an empty
/// `initial.noise_variance`, Ψ and the scale of W from the data's variances.
LinearGaussianParams linear_gaussian_start(const Moments& moments, const LinearGaussianParams& initial,
                                           NoiseModel noise);

/// The closed-form PPCA from the data's full moments (what fit_ppca_closed_form does after its pass).
LinearGaussianFit ppca_closed_form_from_moments(const Moments& moments, Index n_components, const Execution& execution);

/// The maximum-likelihood PPCA in closed form (Tipping & Bishop): one pass for the covariance, then
/// its symmetric eigendecomposition. σ² is the mean of the discarded eigenvalues and
/// W = U_H (L_H − σ² I)^½, columns ordered by decreasing variance, each with its largest entry positive.
template <typename T>
LinearGaussianFit fit_ppca_closed_form(const DataRef<T>& data, Index n_components, const Execution& execution);

/// (n_samples) log p(x_n | Θ) = log N(x_n; μ, WWᵀ + Ψ), via the Woodbury identity.
template <typename T>
Eigen::VectorXd linear_gaussian_log_likelihood(const DataRef<T>& data, const LinearGaussianParams& params,
                                               const Execution& execution);

/// (n_samples, n_components) posterior means ν_n.
template <typename T>
RowMatrix<T> linear_gaussian_posterior_mean(const DataRef<T>& data, const LinearGaussianParams& params,
                                            const Execution& execution);

}  // namespace entrosum
