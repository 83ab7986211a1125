// What every mixture shares (DESIGN.md §3): the exact E-step turns a chunk's log joint
// log π_k + log p(x_n | k) into responsibilities by log-sum-exp, and accumulates the mean
// log-likelihood, the responsibilities' entropy and the (weighted) counts N_k.
#pragma once

#include <Eigen/Core>

#include "entrosum/monitor.hpp"
#include "entrosum/types.hpp"

namespace entrosum {

/// Sums over data points that every mixture's statistics carry; mergeable.
struct MixtureTotals {
  /// Σ_n w_n
  double count = 0.0;
  /// (n_components) N_k = Σ_n w_n r_nk
  Eigen::VectorXd resp_sum;
  /// Σ_n w_n log p(x_n | Θ)
  double log_likelihood = 0.0;
  /// −Σ_n w_n Σ_k r_nk log r_nk
  double resp_entropy = 0.0;

  MixtureTotals() = default;
  explicit MixtureTotals(Index n_components) : resp_sum(Eigen::VectorXd::Zero(n_components)) {}
  MixtureTotals& operator+=(const MixtureTotals& other) {
    count += other.count;
    resp_sum += other.resp_sum;
    log_likelihood += other.log_likelihood;
    resp_entropy += other.resp_entropy;
    return *this;
  }
};

/// Turns each row of `log_joint` (n, K), log π_k + log p(x_n | k), into the weighted responsibilities
/// w_n r_nk in place, and adds the row's log-likelihood, entropy and counts to `totals`.
/// `weights` is empty (all 1) or holds one weight per row.
template <typename T>
void normalise_log_joint(Eigen::Ref<RowMatrix<T>> log_joint, const Eigen::Ref<const Eigen::VectorXd>& weights,
                         MixtureTotals& totals);

/// The posterior entropy and prior entropy terms of a mixture's entropy sum, and its ELBO, per sample:
/// F = (1/N)[Σ_n log p(x_n)] at (q = exact posterior, Θ) and S = H̄[r] − H[π] − observable_entropy.
ElboTerms mixture_elbo_terms(const MixtureTotals& totals, const Eigen::VectorXd& weights,
                             double observable_entropy_per_sample);

/// F(q, Θ) per sample from expected complete-data log-likelihoods: (1/N)[Σ_k N_k log π_k +
/// expected_log_observable] + H̄[r]. Used for the ELBO after an M-step, with the old q.
double mixture_elbo_at(const MixtureTotals& totals, const Eigen::VectorXd& weights, double expected_log_observable);

}  // namespace entrosum
