// Poisson mixtures for counts (DESIGN.md §3): p(x | k) = Π_d λ_kd^x_d e^(−λ_kd) / x_d!, so η = log λ,
// A = λ and the base measure h(x) = 1 / Π_d x_d! is not constant: the entropy sum uses the
// pseudo-entropy λ − λ log λ and adds the data term (1/N) Σ_n log h(x_n). Fitted with the shared
// discrete-mixture machinery (discrete_mixture.hpp): fit_discrete_mixture<PoissonMixture, T> and so on.
#pragma once

#include <algorithm>

#include "entrosum/core/entropy.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"

namespace entrosum {

/// log x! = log Γ(x + 1) for x ≥ 0: a table for small integers, Stirling's series for large x, and
/// std::lgamma otherwise. Thread-safe (std::lgamma may write the global signgam, so the chunked passes
/// avoid it for counts).
double log_factorial(double x);

/// The Poisson family of discrete_mixture.hpp.
struct PoissonMixture {
  /// M-step settings: none; the M-step is exact.
  struct Settings {};

  static constexpr const char* name = "Poisson";
  static constexpr bool has_second_statistic = false;
  /// No per-feature constants to check.
  static void check_settings(const Settings&, Index) {}
  static constexpr bool has_base_measure = true;
  /// The M-step is per (k, d); the pseudo-entropy is weighted by N_k.
  static constexpr bool normalises_components = false;
  static constexpr bool entropy_per_total = false;
  /// The statistics are over the data's own columns.
  static constexpr bool expands_columns = false;

  /// log h(x) = −Σ_d log x_d!
  template <typename Row>
  static double log_base_measure(const Settings&, const Row& row) {
    double value = 0.0;
    for (Index d = 0; d < row.size(); ++d) value -= log_factorial(static_cast<double>(row(d)));
    return value;
  }

  /// η(λ) = log λ, floored
  static double natural(const Settings&, Index, double mean) { return floored_log(mean); }
  /// A(λ) = λ
  static double log_partition(const Settings&, Index, double mean) { return mean; }

  /// Σ_n w r_nk [x_nd log λ − λ] = first log λ − N_k λ (without log h), with 0 · log 0 = 0
  static double expected_log_density(const Settings&, Index, double count, double first, double mean) {
    return first * floored_log(mean) - count * mean;
  }

  /// The pseudo-entropy λ − λ log λ
  static double entropy(const Settings&, Index, double mean) { return entropy::poisson_pseudo(mean); }

  /// Σ w r x / N_k
  static double m_step_mean(const Settings&, Index, double count, double first) { return std::max(first, 0.0) / count; }
};

/// Index of the first row holding a value that is not a count (negative or not an integer), or −1.
template <typename T>
Index first_non_count_row(const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
