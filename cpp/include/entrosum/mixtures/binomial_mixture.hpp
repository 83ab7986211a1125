// Binomial mixtures for counts out of a known number of trials n_d per feature (DESIGN.md "Second-wave
// models"): p(x | k) = Π_d C(n_d, x_d) p_kd^x_d (1 − p_kd)^(n_d − x_d). In the mean parameter m = n p,
// η = log p − log(1 − p), A = −n log(1 − p), and the base measure h(x) = Π_d C(n_d, x_d) is not constant:
// the entropy sum uses the pseudo-entropy n H_B(p) and adds the data term (1/N) Σ_n log h(x_n). Fitted
// with the shared discrete-mixture machinery (discrete_mixture.hpp): fit_discrete_mixture<BinomialMixture, T>.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "entrosum/core/entropy.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"

namespace entrosum {

/// The binomial family of discrete_mixture.hpp.
struct BinomialMixture {
  /// The known numbers of trials; the M-step is exact.
  struct Settings {
    /// (n_features) n_d ≥ 1, whole numbers
    Eigen::VectorXd n_trials;
  };

  static constexpr const char* name = "binomial";
  static constexpr bool has_second_statistic = false;
  static constexpr bool has_base_measure = true;
  /// The M-step is per (k, d); the pseudo-entropy is weighted by N_k.
  static constexpr bool normalises_components = false;
  static constexpr bool entropy_per_total = false;
  /// The statistics are over the data's own columns.
  static constexpr bool expands_columns = false;

  /// n_trials must hold one whole number in [1, 2^53] per feature; std::invalid_argument otherwise.
  static void check_settings(const Settings& s, Index n_features);

  /// log h(x) = Σ_d log C(n_d, x_d) = Σ_d [log n_d! − log x_d! − log (n_d − x_d)!]
  template <typename Row>
  static double log_base_measure(const Settings& s, const Row& row) {
    double value = 0.0;
    for (Index d = 0; d < row.size(); ++d) {
      const double n = s.n_trials(d), x = static_cast<double>(row(d));
      value += log_factorial(n) - log_factorial(x) - log_factorial(n - x);
    }
    return value;
  }

  /// p = m / n, in [0, 1]
  static double probability(const Settings& s, Index d, double mean) {
    return std::clamp(mean / s.n_trials(d), 0.0, 1.0);
  }
  /// η = log p − log(1 − p), floored
  static double natural(const Settings& s, Index d, double mean) {
    const double p = probability(s, d, mean);
    return floored_log(p) - floored_log1m(p);
  }
  /// A = −n log(1 − p), floored
  static double log_partition(const Settings& s, Index d, double mean) {
    return -s.n_trials(d) * floored_log1m(probability(s, d, mean));
  }

  /// Σ_n w r_nk [x log p + (n − x) log(1 − p)] = first log p + (n N_k − first) log(1 − p), first ∈ [0, n N_k]
  /// clamped against rounding, with 0 · log 0 = 0 through the floored logs.
  static double expected_log_density(const Settings& s, Index d, double count, double first, double mean) {
    const double trials = s.n_trials(d) * std::max(count, 0.0);
    const double successes = std::clamp(first, 0.0, trials);
    const double p = probability(s, d, mean);
    return successes * floored_log(p) + (trials - successes) * floored_log1m(p);
  }

  /// The pseudo-entropy A − η ∇A = n H_B(p)
  static double entropy(const Settings& s, Index d, double mean) {
    return s.n_trials(d) * entropy::bernoulli(probability(s, d, mean));
  }

  /// Σ w r x / N_k, in [0, n]
  static double m_step_mean(const Settings& s, Index d, double count, double first) {
    return std::clamp(first / count, 0.0, s.n_trials(d));
  }
};

/// Index of the first row holding a value that is not a whole number in [0, n_d] for its feature d, or −1.
template <typename T>
Index first_non_binomial_row(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& n_trials,
                             const Execution& execution);

}  // namespace entrosum
