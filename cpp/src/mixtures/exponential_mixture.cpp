#include "entrosum/mixtures/exponential_mixture.hpp"

#include <limits>

#include "discrete_mixture_impl.hpp"

namespace entrosum {

template <typename T>
Index first_non_positive_row(const DataRef<T>& data, const Execution& execution) {
  // the smallest normal number, not 0: the passes read subnormal numbers as 0 (core/floating_point.hpp)
  return first_row_where(data, execution,
                         [](const auto& row) { return !(row.array() >= std::numeric_limits<T>::min()).all(); });
}

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(ExponentialMixture)
template Index first_non_positive_row<float>(const DataRef<float>&, const Execution&);
template Index first_non_positive_row<double>(const DataRef<double>&, const Execution&);

}  // namespace entrosum
