// Private to the library: the two matrix products of an exponential-family mixture's chunk, compiled once per
// scalar type (chunk_products.cpp). Each family's source file calls them instead of instantiating Eigen's matrix
// product kernels itself: those kernels were most of the compile time of the eight family files.
#pragma once

#include <Eigen/Core>

#include "entrosum/core/types.hpp"

namespace entrosum::detail {

/// (n, K) x · coefficientsᵀ of a chunk x (n, P) and coefficients (K, P); with `accumulate`, added to `out` (which
/// then already has that shape) instead of replacing it.
template <typename T>
void product_with_coefficients(const DataRef<T>& x, const DataRef<T>& coefficients, RowMatrix<T>& out,
                               bool accumulate = false);

/// into (K, P) += respᵀ · x over a chunk's rows, the products in T, the sums in double.
template <typename T>
void add_weighted_sums(const DataRef<T>& resp, const DataRef<T>& x, Eigen::MatrixXd& into);

}  // namespace entrosum::detail
