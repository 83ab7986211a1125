#include "entrosum/mixtures/gamma_mixture.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "discrete_mixture_impl.hpp"

namespace entrosum {

double digamma(double x) {
  double value = 0.0;
  for (; x < 10.0; x += 1.0) value -= 1.0 / x;  // ψ(x) = ψ(x + 1) − 1/x
  // ψ(x) ~ log x − 1/(2x) − Σ_n B_2n / (2n x^2n)
  const double inv2 = 1.0 / (x * x);
  const double series =
      inv2 * (1.0 / 12.0 -
              inv2 * (1.0 / 120.0 -
                      inv2 * (1.0 / 252.0 -
                              inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
  return value + std::log(x) - 0.5 / x - series;
}

double trigamma(double x) {
  double value = 0.0;
  for (; x < 10.0; x += 1.0) value += 1.0 / (x * x);  // ψ'(x) = ψ'(x + 1) + 1/x²
  // ψ'(x) ~ 1/x + 1/(2x²) + Σ_n B_2n / x^(2n+1)
  const double inv = 1.0 / x, inv2 = inv * inv;
  const double series =
      inv * inv2 *
      (1.0 / 6.0 -
       inv2 * (1.0 / 30.0 -
               inv2 * (1.0 / 42.0 -
                       inv2 * (1.0 / 30.0 - inv2 * (5.0 / 66.0 - inv2 * (691.0 / 2730.0 - inv2 * 7.0 / 6.0))))));
  return value + inv + 0.5 * inv2 + series;
}

namespace {

/// log x − ψ(x) without the cancellation of the difference for large x: the series 1/(2x) + Σ_n B_2n / (2n x^2n)
/// after the recurrence up to x ≥ 10.
double log_minus_digamma(double x) {
  double value = 0.0;
  const double start = x;
  for (; x < 10.0; x += 1.0) value += 1.0 / x;  // −ψ(x) = −ψ(x + 1) + 1/x
  value += std::log(start / x);                 // log(start) = log(x) + log(start / x)
  const double inv2 = 1.0 / (x * x);
  const double series =
      inv2 * (1.0 / 12.0 -
              inv2 * (1.0 / 120.0 -
                      inv2 * (1.0 / 252.0 -
                              inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
  return value + 0.5 / x + series;
}

}  // namespace

double gamma_shape_from_log_gap(double s) {
  s = std::max(s, 1e-15);  // log m − mean(log x) ≥ 0 by Jensen; 0 only where a component's values are all equal
  // Minka's start, within a few per cent of the root, then Newton on f(k) = log k − ψ(k) − s, which is convex and
  // decreasing, so Newton from the left of the root stays left and converges monotonically
  double shape = (3.0 - s + std::sqrt((s - 3.0) * (s - 3.0) + 24.0 * s)) / (12.0 * s);
  for (int step = 0; step < 100; ++step) {
    const double f = log_minus_digamma(shape) - s;
    const double slope = 1.0 / shape - trigamma(shape);
    double next = shape - f / slope;
    if (!(next > 0.0)) next = 0.5 * shape;  // a step past 0 (never from the left of the root)
    const double change = std::abs(next - shape);
    shape = next;
    if (change <= 4.0 * std::numeric_limits<double>::epsilon() * shape) break;
  }
  return shape;
}

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(GammaMixture)

}  // namespace entrosum
