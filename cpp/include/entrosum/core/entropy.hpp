// Closed-form entropies and pseudo-entropies (DESIGN.md §3), written once and used by every model's
// entropy sum. All in nats.
#pragma once

#include <Eigen/Core>
#include <cmath>

namespace entrosum::entropy {

/// log(2 π)
inline constexpr double kLogTwoPi = 1.8378770664093454835606594728112;

/// log(2 π e)
inline constexpr double kLogTwoPiE = 2.8378770664093454835606594728112;

/// Entropy of a d-dimensional Gaussian given log det Σ: ½ (d log 2πe + log det Σ).
inline double gaussian_from_log_det(Eigen::Index dim, double log_det) {
  return 0.5 * (static_cast<double>(dim) * kLogTwoPiE + log_det);
}

/// Entropy of N(·, Σ) from a Cholesky factor L with Σ = L Lᵀ: log det Σ = 2 Σ_i log L_ii.
template <typename Derived>
double gaussian_from_cholesky(const Eigen::MatrixBase<Derived>& cholesky_factor) {
  const double log_det = 2.0 * cholesky_factor.diagonal().array().template cast<double>().log().sum();
  return gaussian_from_log_det(cholesky_factor.rows(), log_det);
}

/// Entropy of a Gaussian with diagonal covariance: Σ_d ½ log(2πe σ²_d).
template <typename Derived>
double gaussian_diagonal(const Eigen::MatrixBase<Derived>& variances) {
  return gaussian_from_log_det(variances.size(), variances.array().template cast<double>().log().sum());
}

/// Entropy of N(·, σ² I_d): (d/2) log(2πe σ²).
inline double gaussian_isotropic(Eigen::Index dim, double variance) {
  return gaussian_from_log_det(dim, static_cast<double>(dim) * std::log(variance));
}

/// Entropy of Laplace(0, λ) with scale λ, density exp(−|z|/λ)/(2λ): log(2 e λ).
inline double laplace(double scale) { return 1.0 + std::log(2.0 * scale); }

/// √(2/π)
inline constexpr double kSqrtTwoOverPi = 0.79788456080286535587989211986876;

/// E|z| for z ~ N(ν, s²) (the Laplace prior's cross-entropy term, DESIGN.md §3):
/// s √(2/π) exp(−ν²/(2s²)) + ν erf(ν/(√2 s)); |ν| when s = 0.
inline double gaussian_expected_abs(double mean, double sd) {
  if (!(sd > 0.0)) return std::abs(mean);
  const double u = mean / sd;
  return sd * kSqrtTwoOverPi * std::exp(-0.5 * u * u) + mean * std::erf(u * 0.70710678118654752440);
}

/// Entropy of Bernoulli(p), with 0 log 0 = 0.
inline double bernoulli(double p) {
  double h = 0.0;
  if (p > 0.0) h -= p * std::log(p);
  if (p < 1.0) h -= (1.0 - p) * std::log1p(-p);
  return h;
}

/// Entropy of a categorical distribution, −Σ π log π with 0 log 0 = 0.
template <typename Derived>
double categorical(const Eigen::MatrixBase<Derived>& probabilities) {
  double h = 0.0;
  for (Eigen::Index i = 0; i < probabilities.size(); ++i) {
    const double p = static_cast<double>(probabilities(i));
    if (p > 0.0) h -= p * std::log(p);
  }
  return h;
}

/// Rate above which the Poisson entropy uses its asymptotic expansion. The expansion's error is
/// O(λ⁻⁴): about 1e-9 here, where 20 (the usual switch) would leave about 1e-6.
inline constexpr double kPoissonAsymptoticRate = 100.0;

/// True entropy of Poisson(λ): −Σ_k p_k log p_k, summed over k ≤ λ + 40√(λ+1) + 50 below
/// kPoissonAsymptoticRate, otherwise ½ log(2πeλ) − 1/(12λ) − 1/(24λ²) − 19/(360λ³).
inline double poisson(double rate) {
  if (rate <= 0.0) return 0.0;
  if (rate >= kPoissonAsymptoticRate) {
    const double inv = 1.0 / rate;
    return 0.5 * (kLogTwoPiE + std::log(rate)) - inv / 12.0 - inv * inv / 24.0 - 19.0 * inv * inv * inv / 360.0;
  }
  const double log_rate = std::log(rate);
  const int last = static_cast<int>(rate + 40.0 * std::sqrt(rate + 1.0) + 50.0);
  double h = 0.0;
  for (int k = 0; k <= last; ++k) {
    const double log_p = k * log_rate - rate - std::lgamma(k + 1.0);
    h -= std::exp(log_p) * log_p;
  }
  return h;
}

/// Poisson pseudo-entropy A(η) − η·∇A(η) = λ − λ log λ (the entropy without the base measure
/// h(x) = 1/x!, whose expectation enters the entropy sum as a separate data term).
inline double poisson_pseudo(double rate) { return rate > 0.0 ? rate - rate * std::log(rate) : 0.0; }

}  // namespace entrosum::entropy
