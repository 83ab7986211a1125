// Bernoulli mixtures for binary data (DESIGN.md §3): p(x | k) = Π_d μ_kd^x_d (1 − μ_kd)^(1 − x_d), so
// η = log μ − log(1 − μ), A = −log(1 − μ), h = 1. Fitted with the shared discrete-mixture machinery
// (discrete_mixture.hpp): fit_discrete_mixture<BernoulliMixture, T>, discrete_mixture_score<...> and so on.
#pragma once

#include <algorithm>

#include "entrosum/core/entropy.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"

namespace entrosum {

/// The Bernoulli family of discrete_mixture.hpp.
struct BernoulliMixture {
  /// M-step settings.
  struct Settings {
    /// Pseudo-count α ≥ 0 added to both outcomes: μ_kd = (Σ_n w r x_nd + α) / (N_k + 2α), the MAP estimate
    /// under a Beta(α + 1, α + 1) prior, which keeps μ away from 0 and 1. α = 0 is the exact M-step, after
    /// which F = S holds; α > 0 leaves a gap F − S of its order, which the monitor shows.
    double alpha = 0.0;
  };

  static constexpr const char* name = "Bernoulli";
  static constexpr bool has_second_statistic = false;
  /// No per-feature constants to check.
  static void check_settings(const Settings&, Index) {}
  static constexpr bool has_base_measure = false;
  /// The M-step is per (k, d); the pseudo-entropy is weighted by N_k.
  static constexpr bool normalises_components = false;
  static constexpr bool entropy_per_total = false;
  /// The statistics are over the data's own columns.
  static constexpr bool expands_columns = false;

  /// η(μ) = log μ − log(1 − μ), floored
  static double natural(const Settings&, Index, double mean) { return floored_log(mean) - floored_log1m(mean); }
  /// A(μ) = −log(1 − μ), floored
  static double log_partition(const Settings&, Index, double mean) { return -floored_log1m(mean); }

  /// Σ_n w r_nk log p(x_nd | μ) = ones log μ + (N_k − ones) log(1 − μ), ones = Σ w r x_nd ∈ [0, N_k]
  /// (clamped against rounding), with 0 · log 0 = 0 through the floored logs.
  static double expected_log_density(const Settings&, Index, double count, double first, double mean) {
    const double ones = std::clamp(first, 0.0, std::max(count, 0.0));
    return ones * floored_log(mean) + (count - ones) * floored_log1m(mean);
  }

  /// H_B(μ)
  static double entropy(const Settings&, Index, double mean) { return entropy::bernoulli(mean); }

  /// (ones + α) / (N_k + 2α), in [0, 1]
  static double m_step_mean(const Settings& settings, Index, double count, double first) {
    const double ones = std::clamp(first, 0.0, count);
    return (ones + settings.alpha) / (count + 2.0 * settings.alpha);
  }
};

/// Index of the first row holding a value other than exactly 0 or 1, or −1.
template <typename T>
Index first_non_binary_row(const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
