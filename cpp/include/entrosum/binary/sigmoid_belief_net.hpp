// Sigmoid belief nets with one layer of binary causes (DESIGN.md "Second-wave models"):
//
//   z_h ~ Bern(π_h),   x_d | z ~ Bern(S(W_dᵀ z + b_d)),   binary x,
//
// learned by (truncated) variational EM over sets of states (binary_states.hpp). The E-step's statistics
// are aggregated per distinct state s: Q_s = Σ_n w_n q_n(s) and Σ_n w_n q_n(s) x_n, so the M-step needs no
// pass over the data: π in closed form, (W_d, b_d) per observed d by Newton's method (weighted logistic
// regression on features [s, 1]). At its optimum the free energy equals the entropy sum
//
//   S = H̄_q − Σ_h H_B(π_h) − (1/N) Σ_n E_{q_n} Σ_d H_B(S(W_dᵀ z + b_d)).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "entrosum/binary/binary_states.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// Θ = (W, b, π) in double.
struct SigmoidBeliefNetParams {
  /// (n_features, n_components) W
  Eigen::MatrixXd components;
  /// (n_features) b
  Eigen::VectorXd offset;
  /// (n_components) π
  Eigen::VectorXd prior;
};

/// q's statistics per distinct state (keys sorted), plus the sums of the free energy; mergeable.
struct SigmoidBeliefNetStats {
  double weight = 0.0;
  double posterior_entropy = 0.0;
  /// Σ w log Σ_{z∈K_n} p(x_n, z | Θ) at the E-step's Θ
  double log_joint_sum = 0.0;
  Index n_features = 0;
  Index n_components = 0;
  /// distinct states, ascending
  std::vector<std::uint64_t> keys;
  /// (K) Σ_n w_n q_n(s)
  Eigen::VectorXd state_weight;
  /// (K, D) Σ_n w_n q_n(s) x_n
  RowMatrix<double> data_sum;

  SigmoidBeliefNetStats() = default;
  SigmoidBeliefNetStats(Index n_features_, Index n_components_)
      : n_features(n_features_), n_components(n_components_) {}
  SigmoidBeliefNetStats& operator+=(const SigmoidBeliefNetStats& other);
  void scale(double factor);
};

/// F(q, Θ) per sample and the entropy sum's terms from q's statistics, for any Θ.
ElboTerms sigmoid_belief_net_terms(const SigmoidBeliefNetStats& stats, const SigmoidBeliefNetParams& params);

/// When the M-step's Newton iterations stop.
struct NewtonOptions {
  /// Stop when half the Newton decrement per sample is below this (nats).
  double tol = 1e-10;
  int max_iter = 100;
};

/// π in closed form; (W_d, b_d) by Newton from the current values, each observed dimension on its own.
SigmoidBeliefNetParams sigmoid_belief_net_m_step(const SigmoidBeliefNetStats& stats,
                                                 const SigmoidBeliefNetParams& params, const NewtonOptions& newton);

void check_sigmoid_belief_net_params(const SigmoidBeliefNetParams& params, Index n_features);

template <typename T>
SigmoidBeliefNetStats sigmoid_belief_net_e_step(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                                const SigmoidBeliefNetParams& params,
                                                const BinaryPosteriorOptions& posterior, TruncatedStates* states,
                                                int iteration, const Execution& execution,
                                                const BinaryPosteriorOutput<T>& output = {});

struct SigmoidBeliefNetOptions {
  BinaryPosteriorOptions posterior;
  NewtonOptions newton;
  StopOptions stop;
  Execution execution;
};

struct SigmoidBeliefNetFit {
  SigmoidBeliefNetParams params;
  ConvergenceMonitor monitor;
};

/// Fits from `initial`; the data must be 0/1.
template <typename T>
SigmoidBeliefNetFit fit_sigmoid_belief_net(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                           const SigmoidBeliefNetParams& initial,
                                           const SigmoidBeliefNetOptions& options,
                                           const IterationCallback& on_iteration = {});

/// Posterior of new data under fixed Θ (truncated: `rounds` E-steps from fresh state sets).
template <typename T>
SigmoidBeliefNetStats sigmoid_belief_net_infer(const DataRef<T>& data, const SigmoidBeliefNetParams& params,
                                               const BinaryPosteriorOptions& posterior, int rounds,
                                               const Execution& execution, const BinaryPosteriorOutput<T>& output);

}  // namespace entrosum
