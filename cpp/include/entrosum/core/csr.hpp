// Compressed sparse rows (scipy.sparse's CSR layout) as a read-only view, so that a sparse matrix crosses into
// C++ without densifying: row n holds values[row_starts[n] .. row_starts[n + 1]) at the columns
// column_indices[...] of the same range. The offsets are absolute positions in the arrays, so a block of rows
// is the same arrays with a shifted row_starts.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "entrosum/core/types.hpp"

namespace entrosum {

template <typename T>
struct CsrRef {
  /// (rows + 1) offsets of each row's entries in column_indices and values, non-decreasing
  const std::int64_t* row_starts = nullptr;
  /// (nonzeros) the column of each entry, in [0, cols)
  const std::int32_t* column_indices = nullptr;
  /// (nonzeros) the value of each entry
  const T* values = nullptr;
  Index rows = 0;
  Index cols = 0;

  /// Rows [begin, begin + count) as a view of the same arrays.
  CsrRef middle_rows(Index begin, Index count) const {
    return {row_starts + begin, column_indices, values, count, cols};
  }
  /// Entries of rows [0, rows).
  Index nonzeros() const { return rows > 0 ? static_cast<Index>(row_starts[rows] - row_starts[0]) : 0; }
  /// The values of row n's entries (the zeros of the row are not there).
  Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> row_values(Index n) const {
    return {values + row_starts[n], static_cast<Index>(row_starts[n + 1] - row_starts[n])};
  }
  /// Row n as a dense (cols) vector in double (for the few rows a pass keeps, never for the data).
  Eigen::VectorXd dense_row(Index n) const {
    Eigen::VectorXd row = Eigen::VectorXd::Zero(cols);
    for (std::int64_t at = row_starts[n]; at < row_starts[n + 1]; ++at)
      row(column_indices[at]) += static_cast<double>(values[at]);
    return row;
  }
  /// Rows per chunk: the chunk's (rows, K) responsibilities plus its entries near the pass's target size.
  Index chunk_rows(Index chunk_size, Index n_components) const;
};

/// Rows per chunk for CSR data: an explicit size wins; otherwise about 1 MiB of responsibilities and entries.
template <typename T>
Index CsrRef<T>::chunk_rows(Index chunk_size, Index n_components) const {
  if (chunk_size > 0) return chunk_size;
  const Index entries_per_row = rows > 0 ? nonzeros() / rows + 1 : 1;
  const Index bytes_per_row =
      n_components * static_cast<Index>(sizeof(T)) + entries_per_row * static_cast<Index>(sizeof(T) + 4);
  const Index rows_per_chunk = (Index(1) << 20) / std::max<Index>(1, bytes_per_row);
  return std::clamp<Index>(rows_per_chunk, 256, 1 << 16);
}

}  // namespace entrosum
