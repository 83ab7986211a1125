// Exceptions that cross the library boundary. Kernels that can fail numerically report which part
// failed; the Python layer turns these into a ValueError that says what to change.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace entrosum {

/// A decomposition or update failed (a non-positive-definite matrix, a vanishing variance).
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file that cannot be read as what it claims to be (not a zip archive, truncated, corrupt, compressed
/// members, another format version or another model); the message names the file and the problem.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Data holding NaN or ±inf, found by a pass that reads the data anyway instead of by a scan before it; `row` is
/// the first such row. Python sees a ValueError with the message its own validation gives.
class NonFiniteData : public std::invalid_argument {
 public:
  explicit NonFiniteData(std::ptrdiff_t first_row)
      : std::invalid_argument("X contains NaN or infinity (first in row " + std::to_string(first_row) +
                              "); remove or impute those values."),
        row(first_row) {}
  std::ptrdiff_t row;
};

/// The caller's interruption check asked the fit to stop (Ctrl-C in Python).
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("fit interrupted") {}
};

}  // namespace entrosum
