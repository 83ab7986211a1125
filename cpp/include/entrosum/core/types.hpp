// Shared type aliases: data are row-major (n_samples, n_features), so a C-contiguous numpy array
// crosses into C++ without a copy.
#pragma once

#include <Eigen/Core>

namespace entrosum {

using Index = Eigen::Index;

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A read-only view of a data matrix or of a chunk of its rows, (n_samples, n_features).
template <typename T>
using DataRef = Eigen::Ref<const RowMatrix<T>>;

}  // namespace entrosum
