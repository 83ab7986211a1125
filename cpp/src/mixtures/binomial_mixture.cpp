#include "entrosum/mixtures/binomial_mixture.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "discrete_mixture_impl.hpp"

namespace entrosum {

void BinomialMixture::check_settings(const Settings& s, Index n_features) {
  if (s.n_trials.size() != n_features)
    throw std::invalid_argument("n_trials holds " + std::to_string(s.n_trials.size()) + " values for data of " +
                                std::to_string(n_features) + " features");
  constexpr double kLargest = 9007199254740992.0;  // 2^53: every whole number below is a double
  for (Index d = 0; d < n_features; ++d) {
    const double n = s.n_trials(d);
    if (!(n >= 1.0 && n <= kLargest && n == std::floor(n)))
      throw std::invalid_argument("n_trials[" + std::to_string(d) + "] = " + std::to_string(n) +
                                  " is not a whole number of trials in [1, 2^53]");
  }
}

template <typename T>
Index first_non_binomial_row(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& n_trials,
                             const Execution& execution) {
  return first_row_where(data, execution, [&](const auto& row) {
    for (Index d = 0; d < row.size(); ++d) {
      const double x = static_cast<double>(row(d));
      if (!(x >= 0.0 && x <= n_trials(d) && x == std::floor(x))) return true;
    }
    return false;
  });
}

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(BinomialMixture)
template Index first_non_binomial_row<float>(const DataRef<float>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                             const Execution&);
template Index first_non_binomial_row<double>(const DataRef<double>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                              const Execution&);

}  // namespace entrosum
