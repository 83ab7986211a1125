// Binary sparse coding (DESIGN.md "Second-wave models"):
//
//   z_h ~ Bern(π_h) (or one shared π),   x | z ~ N(W z + b, σ² I),
//
// learned by (truncated) variational EM with q_n(z) ∝ p(x_n, z | Θ) on a set of states per data point
// (binary_states.hpp). The M-step is closed form: [W b] by least squares on E[z̃], E[z̃ z̃ᵀ] (z̃ = [z; 1]),
// σ² = (1/(ND)) Σ E‖x − W z − b‖², π_h = (1/N) Σ E[z_h]. After it the free energy equals the entropy sum
//
//   S = H̄_q − Σ_h H_B(π_h) − (D/2) log(2πe σ²).
//
// Log-joints of many states are matrix products: ‖x − Ws − b‖² = ‖x − b‖² − 2 (x − b)ᵀ W s + sᵀ WᵀW s.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "entrosum/binary/binary_states.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// Θ = (W, b, σ², π), in double whatever the data's precision.
struct BinarySparseCodingParams {
  /// (n_features, n_components) W
  Eigen::MatrixXd components;
  /// (n_features) b
  Eigen::VectorXd offset;
  /// σ²
  double noise_variance = 1.0;
  /// (n_components) π_h (all equal with a shared prior)
  Eigen::VectorXd prior;
};

/// Weighted sums over data points of q's statistics; mergeable.
struct BinarySparseCodingStats {
  /// Σ w
  double weight = 0.0;
  /// Σ w ‖x‖²
  double squared_norm = 0.0;
  /// (D, H+1) Σ w x E[z̃]ᵀ, z̃ = [z; 1]
  Eigen::MatrixXd cross;
  /// (H+1, H+1) Σ w E[z̃ z̃ᵀ]
  Eigen::MatrixXd second_moment;
  /// Σ w H[q_n]
  double posterior_entropy = 0.0;
  /// Σ w log Σ_{z∈K_n} p(x_n, z | Θ): the free energy at the E-step's Θ, summed directly
  double log_joint_sum = 0.0;

  BinarySparseCodingStats() = default;
  BinarySparseCodingStats(Index n_features, Index n_components);
  BinarySparseCodingStats& operator+=(const BinarySparseCodingStats& other);
  void scale(double factor);
};

/// F(q, Θ) per sample and the entropy sum's terms, from the statistics of q, for any Θ.
ElboTerms binary_sparse_coding_terms(const BinarySparseCodingStats& stats, const BinarySparseCodingParams& params);

/// The closed-form M-step. Units no kept state switches on keep their column of W; units that always switch
/// together share their column evenly (the minimum-norm solution of the singular normal equations).
BinarySparseCodingParams binary_sparse_coding_m_step(const BinarySparseCodingStats& stats,
                                                     const BinarySparseCodingParams& params, bool shared_prior);

/// Checks parameters against the data's width; throws std::invalid_argument naming the problem.
void check_binary_sparse_coding_params(const BinarySparseCodingParams& params, Index n_features);

/// One E-step over `data` with optional per-row `weights` (empty: 1). For a truncated posterior, `states`
/// holds the kept sets (updated in place) and `iteration` selects the proposals' random streams.
template <typename T>
BinarySparseCodingStats binary_sparse_coding_e_step(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                                    const BinarySparseCodingParams& params,
                                                    const BinaryPosteriorOptions& posterior, TruncatedStates* states,
                                                    int iteration, const Execution& execution,
                                                    const BinaryPosteriorOutput<T>& output = {});

struct BinarySparseCodingOptions {
  BinaryPosteriorOptions posterior;
  /// One π for every unit.
  bool shared_prior = false;
  StopOptions stop;
  Execution execution;
};

struct BinarySparseCodingFit {
  BinarySparseCodingParams params;
  ConvergenceMonitor monitor;
};

/// Fits from `initial`; the monitor records every iteration.
template <typename T>
BinarySparseCodingFit fit_binary_sparse_coding(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                               const BinarySparseCodingParams& initial,
                                               const BinarySparseCodingOptions& options,
                                               const IterationCallback& on_iteration = {});

/// Posterior of new data under fixed Θ: for a truncated posterior, `rounds` E-steps of proposals from fresh
/// state sets; the statistics are those of the last one.
template <typename T>
BinarySparseCodingStats binary_sparse_coding_infer(const DataRef<T>& data, const BinarySparseCodingParams& params,
                                                   const BinaryPosteriorOptions& posterior, int rounds,
                                                   const Execution& execution, const BinaryPosteriorOutput<T>& output);

}  // namespace entrosum
