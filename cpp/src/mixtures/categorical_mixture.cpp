#include "entrosum/mixtures/categorical_mixture.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "discrete_mixture_impl.hpp"

namespace entrosum {

namespace {
constexpr Index kMostLevels = Index(1) << 31;  // in all: the one-hot chunk and the means stay addressable
}  // namespace

void CategoricalMixture::check_settings(const Settings& s, Index n_features) {
  if (s.n_levels.size() != n_features)
    throw std::invalid_argument("n_levels holds " + std::to_string(s.n_levels.size()) + " values for data of " +
                                std::to_string(n_features) + " features");
  Index total = 0;
  for (Index d = 0; d < n_features; ++d) {
    const Index levels = s.n_levels(d);
    if (levels < 1 || levels >= kMostLevels)
      throw std::invalid_argument("n_levels[" + std::to_string(d) + "] = " + std::to_string(levels) +
                                  " is not a number of levels in [1, 2^31)");
    total += levels;
    if (total >= kMostLevels) throw std::invalid_argument("n_levels sum to 2^31 levels or more");
  }
}

void CategoricalMixture::check_expanded_width(const Settings& s, Index width) {
  check_settings(s, s.n_levels.size());
  if (expanded_width(s) != width)
    throw std::invalid_argument("parameters or statistics of " + std::to_string(width) + " columns do not fit " +
                                std::to_string(expanded_width(s)) + " levels (the sum of n_levels)");
}

template <typename T>
Index first_non_code_row(const DataRef<T>& data,
                         const Eigen::Ref<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>& n_levels,
                         const Execution& execution) {
  return first_row_where(data, execution, [&](const auto& row) {
    for (Index d = 0; d < row.size(); ++d) {
      const double x = static_cast<double>(row(d));
      if (!(x >= 0.0 && x < static_cast<double>(n_levels(d)) && x == std::floor(x))) return true;
    }
    return false;
  });
}

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(CategoricalMixture)
template Index first_non_code_row<float>(const DataRef<float>&,
                                         const Eigen::Ref<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>&,
                                         const Execution&);
template Index first_non_code_row<double>(const DataRef<double>&,
                                          const Eigen::Ref<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>&,
                                          const Execution&);

}  // namespace entrosum
