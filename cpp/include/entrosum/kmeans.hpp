// k-means for initialising mixtures: k-means++ seeding (Arthur & Vassilvitskii) and Lloyd iterations,
// both as chunked, threaded passes whose results do not depend on the thread count.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "entrosum/execution.hpp"
#include "entrosum/types.hpp"

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

/// Lloyd's algorithm from k-means++ seeds, until no label changes or `max_iter` passes. A cluster that
/// empties keeps its previous centroid.
template <typename T>
KMeansResult kmeans(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index n_clusters,
                    std::uint64_t seed, int max_iter, const Execution& execution);

}  // namespace entrosum
