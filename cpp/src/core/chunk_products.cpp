#include "chunk_products.hpp"

#include "stack_products.hpp"

namespace entrosum::detail {

template <typename T>
void product_with_coefficients(const DataRef<T>& x, const DataRef<T>& coefficients, RowMatrix<T>& out,
                               bool accumulate) {
  if (accumulate) {
    out.noalias() += x * coefficients.transpose();
  } else {
    out.resize(x.rows(), coefficients.rows());
    out.noalias() = x * coefficients.transpose();
  }
}

template <typename T>
void add_weighted_sums(const DataRef<T>& resp, const DataRef<T>& x, Eigen::MatrixXd& into) {
  add_transposed_product(resp, x, into);
}

template void product_with_coefficients<float>(const DataRef<float>&, const DataRef<float>&, RowMatrix<float>&, bool);
template void product_with_coefficients<double>(const DataRef<double>&, const DataRef<double>&, RowMatrix<double>&,
                                                bool);
template void add_weighted_sums<float>(const DataRef<float>&, const DataRef<float>&, Eigen::MatrixXd&);
template void add_weighted_sums<double>(const DataRef<double>&, const DataRef<double>&, Eigen::MatrixXd&);

}  // namespace entrosum::detail
