// Private to the library: matrix products over a long inner dimension (a block's rows) taken in pieces short enough
// that Eigen packs both operands on the stack. Longer, Eigen packs them in heap blocks of a few hundred KiB, and glibc
// hands blocks of that size back to the kernel when they are freed, so that every product paid for fresh, zeroed
// pages: measured, a quarter of a diagonal Gaussian mixture's EM iteration went to page faults (20,000 x 32, K = 64).
#pragma once

#include <algorithm>
#include <type_traits>

#include <Eigen/Core>

namespace entrosum::detail {

/// Rows of the inner dimension per piece for operands up to `width` values wide: Eigen packs at most depth x width
/// values of each operand, kept at half its stack limit (its blocking may round the depth up to a register block).
template <typename T>
Eigen::Index stack_packed_depth(Eigen::Index width) {
  const Eigen::Index values = EIGEN_STACK_ALLOCATION_LIMIT / 2 / static_cast<Eigen::Index>(sizeof(T));
  return std::max<Eigen::Index>(16, values / std::max<Eigen::Index>(1, width));
}

/// into += leftᵀ · right over their rows, in pieces of stack_packed_depth rows. `into` may hold double while the
/// operands are float: each piece's product is then added in double.
template <typename Left, typename Right, typename Into>
void add_transposed_product(const Left& left, const Right& right, Into&& into) {
  using T = typename Left::Scalar;
  using Target = typename std::decay_t<Into>::Scalar;
  const Eigen::Index rows = left.rows();
  const Eigen::Index depth = stack_packed_depth<T>(std::max(left.cols(), right.cols()));
  for (Eigen::Index first = 0; first < rows; first += depth) {
    const Eigen::Index count = std::min(depth, rows - first);
    if constexpr (std::is_same_v<Target, T>)
      into.noalias() += left.middleRows(first, count).transpose() * right.middleRows(first, count);
    else
      into += (left.middleRows(first, count).transpose() * right.middleRows(first, count)).template cast<Target>();
  }
}

/// The lower triangle of `into` (column-major, x's scalar) += xᵀ · x over x's rows, in pieces of stack_packed_depth
/// rows.
template <typename X, typename Into>
void add_rank_update(const X& x, Into& into) {
  const Eigen::Index rows = x.rows();
  const Eigen::Index depth = stack_packed_depth<typename X::Scalar>(x.cols());
  for (Eigen::Index first = 0; first < rows; first += depth)
    into.template selfadjointView<Eigen::Lower>().rankUpdate(
        x.middleRows(first, std::min(depth, rows - first)).transpose());
}

}  // namespace entrosum::detail
