// Checks of the binary-latent statistics that Python hands back to C++ (pickled, merged, or given to an M-step),
// found by bind_statistics through argument-dependent lookup, as checks.hpp does for the other families.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "checks.hpp"
#include "entrosum/binary/binary_sparse_coding.hpp"
#include "entrosum/binary/sigmoid_belief_net.hpp"

namespace entrosum {

/// Σ w x z̃ᵀ (D, H+1) and Σ w z̃ z̃ᵀ (H+1, H+1), H >= 1.
inline void check_consistent(const BinarySparseCodingStats& s) {
  if (s.cross.cols() < 2 || s.cross.rows() < 1)
    throw py::value_error("the binary sparse coding statistics' cross moments have shape " +
                          shape_text(s.cross.rows(), s.cross.cols()) + "; expected (n_features, n_components + 1)");
  check_shape("the statistics' second moments", s.second_moment, s.cross.cols(), s.cross.cols());
}

/// The statistics of `n_features` features and `n_components` units (for an M-step or the terms).
inline void check_stats(const BinarySparseCodingStats& s, Index n_features, Index n_components) {
  check_shape("the statistics' cross moments", s.cross, n_features, n_components + 1);
  check_shape("the statistics' second moments", s.second_moment, n_components + 1, n_components + 1);
}

/// A fresh (empty) left side takes the right side's statistics.
inline void check_mergeable(const BinarySparseCodingStats& a, const BinarySparseCodingStats& b) {
  if (a.cross.size() == 0) return;
  check_stats(b, a.cross.rows(), a.cross.cols() - 1);
}

/// Ascending distinct keys of at most `n_components` units, one weight and one data row per key.
inline void check_consistent(const SigmoidBeliefNetStats& s) {
  if (s.n_features < 0 || s.n_components < 0 || s.n_components > kMaxBinaryComponents)
    throw py::value_error("the sigmoid belief net statistics' sizes are out of range");
  const Index count = static_cast<Index>(s.keys.size());
  check_size("the statistics' state weights", s.state_weight, count);
  check_shape("the statistics' data sums", s.data_sum, count, s.n_features);
  const std::uint64_t mask = s.n_components >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << s.n_components) - 1;
  for (std::size_t i = 0; i < s.keys.size(); ++i) {
    if ((s.keys[i] & ~mask) != 0)
      throw py::value_error("a state of the statistics switches on a unit beyond n_components");
    if (i > 0 && !(s.keys[i - 1] < s.keys[i]))
      throw py::value_error("the statistics' states must be distinct and ascending");
  }
}

inline void check_stats(const SigmoidBeliefNetStats& s, Index n_features, Index n_components) {
  if (s.keys.empty()) return;  // nothing to read
  if (s.n_features != n_features || s.n_components != n_components)
    throw py::value_error("the statistics hold " + std::to_string(s.n_features) + " features and " +
                          std::to_string(s.n_components) + " units; the parameters " + std::to_string(n_features) +
                          " and " + std::to_string(n_components));
}

inline void check_mergeable(const SigmoidBeliefNetStats& a, const SigmoidBeliefNetStats& b) {
  if (a.keys.empty() || b.keys.empty()) {
    if (a.n_features != 0 && b.n_features != 0 && (a.n_features != b.n_features || a.n_components != b.n_components))
      throw py::value_error("cannot merge statistics of different shapes");
    return;
  }
  check_stats(b, a.n_features, a.n_components);
}

}  // namespace entrosum
