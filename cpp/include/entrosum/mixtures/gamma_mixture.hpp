// Gamma mixtures for positive values (DESIGN.md "Second-wave models"): p(x | k) = Π_d β^k x^(k−1) e^(−βx) / Γ(k)
// with shape k_kd and rate β_kd both learned. A two-parameter family: T(x) = (x, log x), so the discrete-mixture
// engine collects the second statistic Σ_n w r log x (has_second_statistic) and keeps the shapes next to the
// means m = k/β. The M-step sets m to the weighted mean and k by Newton on log k − ψ(k) = log m − mean(log x)
// (then β = k/m); h = 1, so the entropy sum uses the entropies k − log β + log Γ(k) + (1 − k) ψ(k).
#pragma once

#include <cmath>
#include <utility>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"
#include "entrosum/mixtures/exponential_mixture.hpp"

namespace entrosum {

/// ψ(x) = d log Γ(x) / dx for x > 0: the recurrence ψ(x) = ψ(x + 1) − 1/x up to x ≥ 10, then the asymptotic
/// series (its first omitted term is below 1e-16 there).
double digamma(double x);
/// ψ'(x) for x > 0, by the recurrence ψ'(x) = ψ'(x + 1) + 1/x² and the asymptotic series.
double trigamma(double x);
/// The k > 0 with log k − ψ(k) = s for s > 0 (Newton from Minka's start, to rounding); s ≤ 1e-15 (all values of
/// a component equal, to rounding) gives the k of s = 1e-15.
double gamma_shape_from_log_gap(double s);

/// The gamma family of discrete_mixture.hpp, with a second statistic and shapes.
struct GammaMixture {
  /// M-step settings: none; the M-step is exact (Newton to rounding).
  struct Settings {};

  static constexpr const char* name = "gamma";
  static constexpr bool has_base_measure = false;
  /// The M-step is per (k, d); the pseudo-entropy is weighted by N_k.
  static constexpr bool normalises_components = false;
  static constexpr bool entropy_per_total = false;
  /// The statistics are over the data's own columns.
  static constexpr bool expands_columns = false;
  static constexpr bool has_second_statistic = true;
  /// No per-feature constants to check.
  static void check_settings(const Settings&, Index) {}

  /// the rate β = k / m, with the mean floored as for the exponential family
  static double rate(double mean, double shape) { return shape / ExponentialMixture::floored(mean); }
  /// η₁ = −β (the coefficient of x)
  static double natural(const Settings&, Index, double mean, double shape) { return -rate(mean, shape); }
  /// η₂ = k − 1 (the coefficient of log x)
  static double natural_second(const Settings&, Index, double, double shape) { return shape - 1.0; }
  /// A = log Γ(k) − k log β
  static double log_partition(const Settings&, Index, double mean, double shape) {
    return std::lgamma(shape) - shape * std::log(rate(mean, shape));
  }
  /// Σ_n w r [(k − 1) log x − β x − A] = (k − 1) second − β first − N_k A
  static double expected_log_density(const Settings& s, Index d, double count, double first, double second, double mean,
                                     double shape) {
    return (shape - 1.0) * second - rate(mean, shape) * first - count * log_partition(s, d, mean, shape);
  }
  /// The entropy k − log β + log Γ(k) + (1 − k) ψ(k)
  static double entropy(const Settings&, Index, double mean, double shape) {
    return shape - std::log(rate(mean, shape)) + std::lgamma(shape) + (1.0 - shape) * digamma(shape);
  }
  /// (m, k): m = Σ w r x / N_k, k from log k − ψ(k) = log m − Σ w r log x / N_k
  static std::pair<double, double> m_step(const Settings&, Index, double count, double first, double second) {
    const double mean = std::max(first, 0.0) / count;
    return {mean, gamma_shape_from_log_gap(std::log(ExponentialMixture::floored(mean)) - second / count)};
  }
};

}  // namespace entrosum
