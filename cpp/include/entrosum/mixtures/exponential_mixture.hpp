// Exponential mixtures for positive values (DESIGN.md "Second-wave models"): p(x | k) = Π_d β_kd e^(−β_kd x_d).
// In the mean parameter m = 1/β, η = −1/m, A = log m and h = 1, so the entropy sum uses the true entropy
// 1 + log m = 1 − log β and has no data term. Fitted with the shared discrete-mixture machinery
// (discrete_mixture.hpp): fit_discrete_mixture<ExponentialMixture, T> and so on.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"

namespace entrosum {

/// The exponential family of discrete_mixture.hpp.
struct ExponentialMixture {
  /// M-step settings: none; the M-step is exact.
  struct Settings {};

  static constexpr const char* name = "exponential";
  static constexpr bool has_second_statistic = false;
  /// No per-feature constants to check.
  static void check_settings(const Settings&, Index) {}
  static constexpr bool has_base_measure = false;
  /// The M-step is per (k, d); the pseudo-entropy is weighted by N_k.
  static constexpr bool normalises_components = false;
  static constexpr bool entropy_per_total = false;
  /// The statistics are over the data's own columns.
  static constexpr bool expands_columns = false;

  /// The mean, floored at DBL_MIN: a mean of 0 cannot come from positive data, only from a component
  /// whose responsibilities all underflowed, and must not turn η into −∞.
  static double floored(double mean) { return std::max(mean, std::numeric_limits<double>::min()); }

  /// η(m) = −1/m = −β
  static double natural(const Settings&, Index, double mean) { return -1.0 / floored(mean); }
  /// A(m) = log m = −log β
  static double log_partition(const Settings&, Index, double mean) { return std::log(floored(mean)); }

  /// Σ_n w r_nk [−x/m − log m] = −first/m − N_k log m
  static double expected_log_density(const Settings&, Index, double count, double first, double mean) {
    const double m = floored(mean);
    return -first / m - count * std::log(m);
  }

  /// The entropy 1 + log m = 1 − log β
  static double entropy(const Settings&, Index, double mean) { return 1.0 + std::log(floored(mean)); }

  /// Σ w r x / N_k
  static double m_step_mean(const Settings&, Index, double count, double first) { return std::max(first, 0.0) / count; }
};

/// Index of the first row holding a value that is not a positive normal number (x ≤ 0, subnormal or NaN), or −1.
template <typename T>
Index first_non_positive_row(const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
