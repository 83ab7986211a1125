// k-means for initialising mixtures: k-means++ seeding (Arthur & Vassilvitskii) and Lloyd iterations,
// both as chunked, threaded passes whose results do not depend on the thread count.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <utility>
#include <vector>

#include "entrosum/core/csr.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// Indices of `n_clusters` rows chosen by k-means++: the first with probability ∝ weight, each next
/// with probability ∝ weight · (squared distance to the nearest chosen row).
template <typename T>
std::vector<Index> kmeans_plusplus(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                   Index n_clusters, std::uint64_t seed, const Execution& execution);

struct KMeansResult {
  /// (n_clusters, n_features)
  Eigen::MatrixXd centroids;
  /// (n_samples) index of each row's nearest centroid
  std::vector<int> labels;
  /// Σ_n w_n ||x_n − c_{label n}||²
  double inertia = 0.0;
  int n_iter = 0;
};

/// The sums of one Lloyd assignment over some rows: mergeable, so that blocks of rows held by different
/// processes (Dask) give the pass over all of them.
struct KMeansStats {
  /// (squared distance to the assigned centroid, row): larger distance first, then the lower row.
  using FarRow = std::pair<double, Index>;
  static bool farther(const FarRow& a, const FarRow& b);

  Eigen::MatrixXd sums;    // (K, D) Σ w x over each cluster, relative to the shift
  Eigen::VectorXd counts;  // (K)
  double inertia = 0.0;
  Index changed = 0;
  /// The `keep` rows farthest from their centroids (a heap whose top is the nearest of them): the places
  /// an empty cluster moves to. A well-defined set whatever the blocks, so results stay thread-independent.
  std::vector<FarRow> farthest;
  std::size_t keep = 0;

  KMeansStats() = default;
  KMeansStats(Index K, Index D)
      : sums(Eigen::MatrixXd::Zero(K, D)), counts(Eigen::VectorXd::Zero(K)), keep(static_cast<std::size_t>(K)) {}
  void offer(double distance, Index row);
  KMeansStats& operator+=(const KMeansStats& other);
  /// Multiplies the sums by `factor` (for the statistics interface; k-means itself never scales).
  void scale(double factor);
};

/// One Lloyd assignment: each row's nearest centroid (distances about `shift`, in the data's precision),
/// written to `labels` (one per row, read first to count the changes), and the sums of the rows per
/// cluster relative to `shift`. Rows are reported to `farthest` as row + `row_offset`.
template <typename T>
KMeansStats kmeans_assign(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                          const Eigen::Ref<const Eigen::MatrixXd>& centroids,
                          const Eigen::Ref<const Eigen::RowVectorXd>& shift, int* labels, Index row_offset,
                          const Execution& execution);

/// Lloyd's algorithm from k-means++ seeds, until no label changes or `max_iter` passes. A cluster that
/// empties keeps its previous centroid.
template <typename T>
KMeansResult kmeans(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index n_clusters,
                    std::uint64_t seed, int max_iter, const Execution& execution);

/// k-means++ on CSR rows (distances ||x||² − 2 x·c + ||c||² from each row's entries).
template <typename T>
std::vector<Index> kmeans_plusplus_csr(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                       Index n_clusters, std::uint64_t seed, const Execution& execution);

/// One Lloyd assignment of CSR rows (kmeans_assign about 0, so the rows stay sparse).
template <typename T>
KMeansStats kmeans_assign_csr(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                              const Eigen::Ref<const Eigen::MatrixXd>& centroids, int* labels, Index row_offset,
                              const Execution& execution);

/// kmeans on CSR rows: time and memory follow the entries (the centroids are dense, (n_clusters, n_features)).
template <typename T>
KMeansResult kmeans_csr(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index n_clusters,
                        std::uint64_t seed, int max_iter, const Execution& execution);

}  // namespace entrosum
