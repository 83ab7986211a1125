#include "entrosum/mixtures/multinomial_mixture.hpp"

#include "discrete_mixture_impl.hpp"

namespace entrosum {

template <typename T>
Index first_zero_total_row(const DataRef<T>& data, const Execution& execution) {
  // counts are checked first (first_non_count_row), so a zero sum means every count is 0
  return first_row_where(data, execution, [](const auto& row) { return !(row.array() != T(0)).any(); });
}

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(MultinomialMixture)
template Index first_zero_total_row<float>(const DataRef<float>&, const Execution&);
template Index first_zero_total_row<double>(const DataRef<double>&, const Execution&);

}  // namespace entrosum
