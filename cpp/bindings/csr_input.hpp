// scipy.sparse CSR matrices as C++ CsrRef views: the three arrays cross without a copy and are checked first, since
// a pass trusts every offset and column index it reads.
#pragma once

#include <cstdint>
#include <string>

#include "common.hpp"
#include "entrosum/core/csr.hpp"

namespace entrosum::bindings {

using RowStartArray = py::array_t<std::int64_t, py::array::c_style>;
using ColumnIndexArray = py::array_t<std::int32_t, py::array::c_style>;

/// The view of (indptr, indices, data) with `n_features` columns; ValueError naming the array that does not fit.
template <typename T>
CsrRef<T> as_csr(const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values,
                 Index n_features) {
  if (indptr.ndim() != 1 || indptr.size() < 2)
    throw py::value_error("a CSR matrix's indptr must be 1-D with one entry per row plus one (at least one row)");
  if (indices.ndim() != 1 || values.ndim() != 1 || indices.size() != values.size())
    throw py::value_error("a CSR matrix's indices and data must be 1-D arrays of the same length");
  if (n_features < 1) throw py::value_error("a CSR matrix must have at least one column");
  const std::int64_t* starts = indptr.data();
  const Index rows = indptr.size() - 1;
  if (starts[0] != 0 || starts[rows] != static_cast<std::int64_t>(indices.size()))
    throw py::value_error("a CSR matrix's indptr must start at 0 and end at the number of stored entries (" +
                          std::to_string(indices.size()) + ")");
  for (Index n = 0; n < rows; ++n)
    if (starts[n + 1] < starts[n])
      throw py::value_error("a CSR matrix's indptr must not decrease; it does at row " + std::to_string(n));
  const std::int32_t* columns = indices.data();
  for (py::ssize_t at = 0; at < indices.size(); ++at)
    if (columns[at] < 0 || columns[at] >= n_features)
      throw py::value_error("a CSR matrix's column index " + std::to_string(columns[at]) + " at entry " +
                            std::to_string(at) + " is outside [0, " + std::to_string(n_features) + ")");
  return {starts, columns, values.data(), rows, n_features};
}

}  // namespace entrosum::bindings
