// The linear VAE (DESIGN.md, "Gaussian VAEs"; Lucas et al. 2019, Damm et al. arXiv:2010.14860): prior
// z ~ N(0, I_H), decoder x | z ~ N(W z + b, σ² I_D), encoder q_n = N(V x_n + c, diag τ²) with one τ² shared by all
// data points. Its ELBO is an expectation of a quadratic in z, so it has a closed form in the data's count, mean
// x̄ and covariance C (no sampling); with m = V x̄ + c, e = x̄ − W m − b and t = τ²:
//
//   F = −(D/2) log 2πσ² − (1/(2σ²)) [tr C − 2 tr(V C W) + tr(WᵀW V C Vᵀ) + ‖e‖² + Σ_h t_h ‖w_h‖²]
//       − ½ [tr(V C Vᵀ) + ‖m‖² + Σ_h t_h] + ½ Σ_h log t_h + H/2
//
// (E log p(z) contributes −(H/2) log 2π and H[q] (H/2) log 2πe, hence H/2), and the entropy sum is
//
//   S = H[q] − H[N(0, I)] − H[N(·, σ² I)] = ½ Σ_h log t_h − (D/2) log(2πe σ²).
//
// F = S wherever F is stationary in all parameters jointly; at the maximum both equal PPCA's maximum
// log-likelihood (the encoder's diagonal covariance is exact there, as W has orthogonal columns).
#pragma once

#include <Eigen/Core>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/lbfgs.hpp"
#include "entrosum/core/moments.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// Θ of the linear VAE, in double whatever the data's precision.
struct LinearVaeParams {
  /// (n_components, n_features) V: the encoder mean is ν = V x + c
  Eigen::MatrixXd encoder_weights;
  /// (n_components) c
  Eigen::VectorXd encoder_bias;
  /// (n_components) τ², the encoder's variances, shared by all data points
  Eigen::VectorXd encoder_variance;
  /// (n_features, n_components) W: the decoder mean is W z + b
  Eigen::MatrixXd decoder_weights;
  /// (n_features) b
  Eigen::VectorXd decoder_bias;
  /// σ²
  double noise_variance = 1.0;
};

struct LinearVaeOptions {
  /// The monitor's rules: tol on the change of F per sample, gap_tol on |F − S| / |F|, max_iter L-BFGS steps.
  StopOptions stop;
  /// L-BFGS converges when ||∇F||_∞ ≤ gtol · max(1, |F|) in the standardised units of the fit.
  double gtol = 1e-10;
  /// L-BFGS correction pairs.
  int memory = 10;
  /// Passes over the data (the one pass for the moments) and the interruption check.
  Execution execution;
};

struct LinearVaeFit {
  LinearVaeParams params;
  ConvergenceMonitor monitor;
  /// How L-BFGS ended ("gradient", "callback" when the monitor's rule stopped it, "max_iter", "line_search").
  const char* lbfgs_status = "callback";
  /// Evaluations of the closed-form ELBO and its gradient.
  int evaluations = 0;
};

/// F and the entropy sum's terms per sample, in closed form, for data with the given full moments.
ElboTerms linear_vae_terms(const Moments& moments, const LinearVaeParams& params);

/// Maximises the closed-form ELBO by L-BFGS from `initial`'s V, W and τ². The biases are set to their exact
/// optimum for any V and W (c = −V x̄, b = x̄) and σ² to its optimum σ²* = (1/D) E‖x − W z − b‖², so L-BFGS moves
/// V, W and log τ² (in units standardised by the data's root mean variance). The monitor records F and S at the
/// start and after every accepted step; `on_iteration` sees each record. Needs 1 ≤ n_components < n_features.
LinearVaeFit fit_linear_vae_from_moments(const Moments& moments, const LinearVaeParams& initial,
                                         const LinearVaeOptions& options, const IterationCallback& on_iteration = {});

/// The same after one chunked pass over the data for its moments.
template <typename T>
LinearVaeFit fit_linear_vae(const DataRef<T>& data, const LinearVaeParams& initial, const LinearVaeOptions& options,
                            const IterationCallback& on_iteration = {});

/// (n_samples) The closed-form ELBO of each sample.
template <typename T>
Eigen::VectorXd linear_vae_elbo_samples(const DataRef<T>& data, const LinearVaeParams& params,
                                        const Execution& execution);

/// (n_samples, n_components) The encoder means ν_n = V x_n + c.
template <typename T>
RowMatrix<T> linear_vae_encode(const DataRef<T>& data, const LinearVaeParams& params, const Execution& execution);

}  // namespace entrosum
