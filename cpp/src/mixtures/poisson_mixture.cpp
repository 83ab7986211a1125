#include "entrosum/mixtures/poisson_mixture.hpp"

#include <array>
#include <cmath>

#include "discrete_mixture_impl.hpp"

namespace entrosum {

namespace {

/// Counts below this come from a table.
constexpr int kLogFactorialTableSize = 1024;

const std::array<double, kLogFactorialTableSize>& log_factorial_table() {
  // Filled once (a function-local static is initialised by one thread only).
  static const std::array<double, kLogFactorialTableSize> table = [] {
    std::array<double, kLogFactorialTableSize> values{};
    for (int k = 0; k < kLogFactorialTableSize; ++k) values[static_cast<std::size_t>(k)] = std::lgamma(k + 1.0);
    return values;
  }();
  return table;
}

}  // namespace

double log_factorial(double x) {
  if (x >= kLogFactorialTableSize) {
    // Stirling's series for log Γ(z), z = x + 1 ≥ 1025: the next term, 1/(1680 z⁷), is below 1e-24.
    const double z = x + 1.0, inv = 1.0 / z, inv2 = inv * inv;
    constexpr double kHalfLogTwoPi = 0.91893853320467274178032973640562;
    return (z - 0.5) * std::log(z) - z + kHalfLogTwoPi + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0));
  }
  const double whole = std::floor(x);
  if (whole == x && x >= 0.0) return log_factorial_table()[static_cast<std::size_t>(whole)];
  return std::lgamma(x + 1.0);  // not a count: only reached by callers that skipped validation
}

template <typename T>
Index first_non_count_row(const DataRef<T>& data, const Execution& execution) {
  return first_row_where(data, execution, [](const auto& row) {
    return !(row.array() >= T(0) && row.array() == row.array().floor()).all();
  });
}

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(PoissonMixture)
template Index first_non_count_row<float>(const DataRef<float>&, const Execution&);
template Index first_non_count_row<double>(const DataRef<double>&, const Execution&);

}  // namespace entrosum
