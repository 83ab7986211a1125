#include "entrosum/mixtures/exponential_mixture.hpp"

#include "discrete_mixture_impl.hpp"

namespace entrosum {

template <typename T>
Index first_non_positive_row(const DataRef<T>& data, const Execution& execution) {
  return first_row_where(data, execution, [](const auto& row) { return !(row.array() > T(0)).all(); });
}

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(ExponentialMixture)
template Index first_non_positive_row<float>(const DataRef<float>&, const Execution&);
template Index first_non_positive_row<double>(const DataRef<double>&, const Execution&);

}  // namespace entrosum
