// Mergeable first and second moments of data: count, mean and centred scatter, accumulated in
// double about a reference point inside the data and merged with Chan et al.'s pairwise update, so
// variances never go negative even for float32 data with a large offset.
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

/// Buffers that one thread reuses for every batch of rows it adds to a MomentsAccumulator.
template <typename T>
struct MomentsWorkspace {
  /// (batch rows, n_features) the batch centred at the accumulator's reference, in the data's precision
  RowMatrix<T> centred;
  /// float data: (n_features, n_features) one batch's product in float, before it joins the double sums
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> product;
};

/// Moments of rows accumulated about a fixed reference point r (the mean of the first rows added, in double):
/// n, Σ (x − r) and the lower triangle of Σ (x − r)(x − r)ᵀ. Each batch of rows is centred at r in the data's
/// precision (so the products do not cancel) and adds one symmetric rank-k product straight into the double
/// sums; float data take their products in float over batches of at most kFloatBatchRows rows, then join the
/// double sums. Accumulators of disjoint rows merge by moving the other's sums to this reference (one pass over
/// the triangle); moments() centres at the mean once.
template <typename T>
class MomentsAccumulator {
 public:
  MomentsAccumulator(Index n_features, bool full);

  /// Adds rows, with temporary buffers of its own or, for a pass, of the calling thread.
  void add(const DataRef<T>& rows, MomentsWorkspace<T>* workspace = nullptr);
  /// Merges the moments of disjoint rows.
  MomentsAccumulator& operator+=(const MomentsAccumulator& other);
  /// The centred moments of all rows added.
  Moments moments() const;

  /// Rows per batch (one centring and one product). A float sum of k products carries a relative error of about
  /// √k · 6e-8 before it joins the double sums; double batches keep their centred copy in cache.
  static constexpr Index kFloatBatchRows = 512;
  static constexpr Index kDoubleBatchRows = 256;

 private:
  bool full() const { return scatter_.size() > 0; }
  void add_batch(const DataRef<T>& rows, MomentsWorkspace<T>& workspace);

  double count_ = 0.0;
  Eigen::VectorXd reference_;        // (n_features) r
  Eigen::VectorXd sum_;              // (n_features) Σ (x − r)
  Eigen::VectorXd square_diagonal_;  // (n_features) Σ (x − r)², diagonal moments only
  Eigen::MatrixXd scatter_;          // (n_features, n_features) lower triangle of Σ (x − r)(x − r)ᵀ, or empty
};

/// Fewest rows per block of a pass for full moments.
inline constexpr Index kMomentsMinBlockRows = 4096;

/// Rows per chunk of compute_moments' pass: whole chunks of `chunk_size`, and for full moments at least
/// kMomentsMinBlockRows rows, so that each block's D × D accumulator (zeroed once, merged once) costs little next to
/// its products. Depends on the sizes only, never on the thread count.
Index moments_pass_rows(Index chunk_size, bool full);

/// Moments of all rows, in one chunked, threaded pass. The pass also checks the data's values: when the moments
/// come out non-finite, the data are searched for their first row with NaN or ±inf, reported as NonFiniteData, so
/// that callers need no separate scan before it; finite data whose sums of squares overflow are a NumericalError.
template <typename T>
Moments compute_moments(const DataRef<T>& data, bool full, const Execution& execution);

/// Index of the first row holding NaN or ±inf, or −1 when all values are finite.
template <typename T>
Index first_nonfinite_row(const DataRef<T>& data, const Execution& execution);

}  // namespace entrosum
