// Mergeable first and second moments of data: count, mean and centred scatter, accumulated in
// double and merged with Chan et al.'s pairwise update, so variances never go negative even for
// float32 data with a large offset.
#pragma once

#include <Eigen/Core>

#include "entrosum/execution.hpp"
#include "entrosum/types.hpp"

namespace entrosum {

struct Moments {
  /// Number of rows seen.
  double count = 0.0;
  /// (n_features) mean of the rows.
  Eigen::VectorXd mean;
  /// (n_features) Σ_n (x_nd − mean_d)².
  Eigen::VectorXd scatter_diagonal;
  /// (n_features, n_features) Σ_n (x_n − mean)(x_n − mean)ᵀ; empty unless full moments were asked for.
  Eigen::MatrixXd scatter;

  Moments() = default;
  Moments(Index n_features, bool full);

  bool full() const { return scatter.size() > 0; }

  /// Chan et al.: merges another set of moments of disjoint rows into this one.
  Moments& operator+=(const Moments& other);

  /// (n_features) variances, scatter_diagonal / count.
  Eigen::VectorXd variances() const { return scatter_diagonal / count; }
  /// (n_features, n_features) covariance, scatter / count (full moments only).
  Eigen::MatrixXd covariance() const { return scatter / count; }
};

/// Moments of one chunk of rows.
template <typename T>
Moments chunk_moments(const DataRef<T>& chunk, bool full);

/// Moments of all rows, in one chunked, threaded pass.
template <typename T>
Moments compute_moments(const DataRef<T>& data, bool full, const Execution& execution);

/// Index of the first row holding NaN or ±inf, or −1 when all values are finite.
template <typename T>
Index first_nonfinite_row(const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
