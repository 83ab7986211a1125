// Mergeable first and second moments of data: count, mean and centred scatter, accumulated in
// double and merged with Chan et al.'s pairwise update, so variances never go negative even for
// float32 data with a large offset.
#pragma once

#include <Eigen/Core>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"

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
  /// Weights every row by `factor` (count and scatters scale, the mean stays): stepwise EM blends running
  /// moments with a chunk's as (1 − ρ)·running + ρ·chunk, each normalised to a count of 1.
  void scale(double factor);

  /// (n_features) variances, scatter_diagonal / count.
  Eigen::VectorXd variances() const { return scatter_diagonal / count; }
  /// (n_features, n_features) covariance, scatter / count (full moments only).
  Eigen::MatrixXd covariance() const { return scatter / count; }
};

/// Moments of a block of rows accumulated about a fixed reference point (the block's first chunk mean),
/// so that each chunk adds straight into the block's sums: no D × D temporary and no merge per chunk.
/// Blocks are Chan-merged in their centred form.
template <typename T>
class MomentsAccumulator {
 public:
  MomentsAccumulator(Index n_features, bool full);

  /// Adds the rows of one chunk.
  void add(const DataRef<T>& chunk);
  /// Merges the moments of disjoint rows.
  MomentsAccumulator& operator+=(const MomentsAccumulator& other);
  /// The centred moments of all rows added.
  Moments moments() const;

 private:
  using ColMatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  double count_ = 0.0;
  Eigen::VectorXd reference_;        // (n_features)
  Eigen::VectorXd sum_;              // (n_features) Σ (x − reference)
  Eigen::VectorXd square_diagonal_;  // (n_features) Σ (x − reference)²
  Eigen::MatrixXd scatter_;          // (n_features, n_features) lower triangle of Σ (x − ref)(x − ref)ᵀ, or empty
  ColMatrixT chunk_scatter_;         // float only: one chunk's scatter in float before it joins the double sum
};

/// Moments of all rows, in one chunked, threaded pass.
template <typename T>
Moments compute_moments(const DataRef<T>& data, bool full, const Execution& execution);

/// Index of the first row holding NaN or ±inf, or −1 when all values are finite.
template <typename T>
Index first_nonfinite_row(const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
