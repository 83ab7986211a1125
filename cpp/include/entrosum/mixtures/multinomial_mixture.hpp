// Multinomial mixtures for count vectors with varying totals m_n = Σ_l x_nl (DESIGN.md "Second-wave models"):
// p(x | k) = m! / Π_l x_l! · Π_l p_kl^x_l. Given the total, η_kl = log p_kl, A = 0 and the base measure
// h(x) = m! / Π_l x_l! is not constant: the entropy sum uses the pseudo-entropy m̄_k · (−Σ_l p_kl log p_kl), with
// m̄_k = Σ_l Σ_n w r_nk x_nl / N_k the component's weighted mean total, and adds the data term (1/N) Σ_n w_n log h(x_n).
// The means are the probabilities p_kl (each row sums to 1). Fitted with the shared discrete-mixture machinery
// (discrete_mixture.hpp): fit_discrete_mixture<MultinomialMixture, T>.
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"

namespace entrosum {

/// The multinomial family of discrete_mixture.hpp.
struct MultinomialMixture {
  /// M-step settings: none; the M-step is exact.
  struct Settings {};

  static constexpr const char* name = "multinomial";
  static constexpr bool has_second_statistic = false;
  /// No per-feature constants to check.
  static void check_settings(const Settings&, Index) {}
  static constexpr bool has_base_measure = true;
  /// The M-step normalises each component's probabilities; the pseudo-entropy is per unit of total.
  static constexpr bool normalises_components = true;
  static constexpr bool entropy_per_total = true;
  /// The statistics are over the data's own columns.
  static constexpr bool expands_columns = false;

  /// log h(x) = log m! − Σ_l log x_l!, m = Σ_l x_l
  template <typename Row>
  static double log_base_measure(const Settings&, const Row& row) {
    double total = 0.0, value = 0.0;
    for (Index l = 0; l < row.size(); ++l) {
      const double x = static_cast<double>(row(l));
      total += x;
      value -= log_factorial(x);
    }
    return value + log_factorial(total);
  }

  /// η = log p, floored
  static double natural(const Settings&, Index, double probability) { return floored_log(probability); }
  /// A = 0 given the total
  static double log_partition(const Settings&, Index, double) { return 0.0; }

  /// Σ_n w r_nk x_nl log p_kl = first log p (without log h), with 0 · log 0 = 0
  static double expected_log_density(const Settings&, Index, double, double first, double probability) {
    return std::max(first, 0.0) * floored_log(probability);
  }

  /// −p log p: one level's share of the per-unit entropy (entropy_per_total)
  static double entropy(const Settings&, Index, double probability) {
    return probability > 0.0 ? -probability * std::log(probability) : 0.0;
  }

  /// Σ w r x_l, normalised by normalise_component
  static double m_step_mean(const Settings&, Index, double, double first) { return std::max(first, 0.0); }

  /// Row k of the (K, D) means divided by its sum: p_kl = Σ r x_l / Σ_l Σ r x_l. A row without counts (a
  /// component with no responsibility) becomes uniform; the M-step re-seeds it.
  static void normalise_component(const Settings&, Eigen::MatrixXd& means, Index k) {
    const double total = means.row(k).sum();
    if (total > 0.0)
      means.row(k) /= total;
    else
      means.row(k).setConstant(1.0 / static_cast<double>(means.cols()));
  }
};

/// Index of the first row whose total Σ_l x_l is 0 (a multinomial needs at least one count), or −1.
template <typename T>
Index first_zero_total_row(const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
