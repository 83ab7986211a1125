#include "entrosum/mixtures/kmeans.hpp"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "entrosum/core/random.hpp"

namespace entrosum {

namespace {

double weight_at(const Eigen::Ref<const Eigen::VectorXd>& w, Index n) { return w.size() ? w(n) : 1.0; }

/// A weighted draw: the row n with cumulative Σ_{m≤n} mass_m first exceeding u·total.
Index draw(const Eigen::VectorXd& mass, Random& random) {
  const double target = random.uniform() * mass.sum();
  double cumulative = 0.0;
  for (Index n = 0; n < mass.size(); ++n) {
    cumulative += mass(n);
    if (cumulative > target) return n;
  }
  // round-off at the very end: the last row with mass
  for (Index n = mass.size() - 1; n >= 0; --n)
    if (mass(n) > 0.0) return n;
  return 0;
}

}  // namespace

bool KMeansStats::farther(const FarRow& a, const FarRow& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

void KMeansStats::offer(double distance, Index row) {
  const FarRow candidate{distance, row};
  if (farthest.size() < keep) {
    farthest.push_back(candidate);
    std::push_heap(farthest.begin(), farthest.end(), farther);
  } else if (farther(candidate, farthest.front())) {
    std::pop_heap(farthest.begin(), farthest.end(), farther);
    farthest.back() = candidate;
    std::push_heap(farthest.begin(), farthest.end(), farther);
  }
}

KMeansStats& KMeansStats::operator+=(const KMeansStats& o) {
  sums += o.sums;
  counts += o.counts;
  inertia += o.inertia;
  changed += o.changed;
  for (const FarRow& row : o.farthest) offer(row.first, row.second);
  return *this;
}

void KMeansStats::scale(double factor) {
  sums *= factor;
  counts *= factor;
  inertia *= factor;
}

template <typename T>
KMeansStats kmeans_assign(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                          const Eigen::Ref<const Eigen::MatrixXd>& centroids,
                          const Eigen::Ref<const Eigen::RowVectorXd>& shift, int* labels, Index row_offset,
                          const Execution& execution) {
  const Index N = data.rows(), K = centroids.rows(), D = data.cols();
  const Eigen::MatrixXd centred = centroids.rowwise() - shift;
  const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> centroids_t = centred.transpose().template cast<T>();
  const Eigen::Matrix<T, 1, Eigen::Dynamic> norms = centred.rowwise().squaredNorm().transpose().template cast<T>();
  const Index chunk_size = resolve_chunk_size(execution, D, sizeof(T));
  return reduce_rows(
      N, chunk_size, execution, [&] { return KMeansStats(K, D); },
      [&](Index begin, Index end, KMeansStats& into) {
        const RowMatrix<T> x = data.middleRows(begin, end - begin).rowwise() - shift.template cast<T>();
        // ||x − c||² − ||x||² = ||c||² − 2 x·c
        RowMatrix<T> distance = x * centroids_t;
        distance *= T(-2);
        distance.rowwise() += norms;
        for (Index i = 0; i < x.rows(); ++i) {
          Index best = 0;
          distance.row(i).minCoeff(&best);
          const Index n = begin + i;
          const double w = weight_at(sample_weight, n);
          if (labels[n] != best) ++into.changed;
          labels[n] = static_cast<int>(best);
          into.sums.row(best) += w * x.row(i).template cast<double>();
          into.counts(best) += w;
          const double squared = (x.row(i).template cast<double>() - centred.row(best)).squaredNorm();
          into.inertia += w * squared;
          if (w > 0.0) into.offer(squared, n + row_offset);
        }
      });
}

template <typename T>
std::vector<Index> kmeans_plusplus(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                   Index n_clusters, std::uint64_t seed, const Execution& execution) {
  const Index N = data.rows();
  Random random(seed);
  Eigen::VectorXd mass = sample_weight.size() ? Eigen::VectorXd(sample_weight) : Eigen::VectorXd::Ones(N);
  std::vector<Index> chosen{draw(mass, random)};
  Eigen::VectorXd nearest = Eigen::VectorXd::Constant(N, std::numeric_limits<double>::infinity());
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  while (static_cast<Index>(chosen.size()) < n_clusters) {
    // squared distance to the nearest chosen row, in double
    const Eigen::RowVectorXd centre = data.row(chosen.back()).template cast<double>();
    for_each_chunk(N, chunk_size, execution, [&](Index begin, Index end) {
      for (Index n = begin; n < end; ++n)
        nearest(n) = std::min(nearest(n), (data.row(n).template cast<double>() - centre).squaredNorm());
    });
    for (Index n = 0; n < N; ++n) mass(n) = weight_at(sample_weight, n) * nearest(n);
    if (!(mass.sum() > 0.0)) {
      // fewer distinct rows than clusters: take rows not chosen yet, in order
      for (Index n = 0; n < N && static_cast<Index>(chosen.size()) < n_clusters; ++n)
        if (std::find(chosen.begin(), chosen.end(), n) == chosen.end()) chosen.push_back(n);
      break;
    }
    chosen.push_back(draw(mass, random));
  }
  return chosen;
}

template <typename T>
KMeansResult kmeans(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index K,
                    std::uint64_t seed, int max_iter, const Execution& execution) {
  const Index N = data.rows(), D = data.cols();
  KMeansResult result;
  result.labels.assign(static_cast<std::size_t>(N), -1);
  result.centroids.resize(K, D);
  const std::vector<Index> seeds = kmeans_plusplus<T>(data, sample_weight, K, seed, execution);
  for (Index k = 0; k < K; ++k)
    result.centroids.row(k) = data.row(seeds[static_cast<std::size_t>(k)]).template cast<double>();
  // Distances are computed about the seeds' mean so that ||x||² − 2x·c + ||c||² does not cancel.
  const Eigen::RowVectorXd shift = result.centroids.colwise().mean();
  for (int iteration = 1; iteration <= max_iter; ++iteration) {
    const KMeansStats stats =
        kmeans_assign<T>(data, sample_weight, result.centroids, shift, result.labels.data(), 0, execution);
    result.inertia = stats.inertia;
    result.n_iter = iteration;
    std::vector<KMeansStats::FarRow> farthest = stats.farthest;
    std::sort(farthest.begin(), farthest.end(), KMeansStats::farther);
    std::size_t next_far = 0;
    bool relocated = false;
    for (Index k = 0; k < K; ++k) {
      if (stats.counts(k) > 0.0) {
        result.centroids.row(k) = stats.sums.row(k) / stats.counts(k) + shift;
      } else if (next_far < farthest.size()) {
        // An empty cluster moves to the sample farthest from its centroid (as scikit-learn's k-means does).
        result.centroids.row(k) = data.row(farthest[next_far++].second).template cast<double>();
        relocated = true;
      }
    }
    if (stats.changed == 0 && !relocated) break;  // assignments are stable: centroids are the means already
  }
  return result;
}

template std::vector<Index> kmeans_plusplus<float>(const DataRef<float>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                                   Index, std::uint64_t, const Execution&);
template std::vector<Index> kmeans_plusplus<double>(const DataRef<double>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                                    Index, std::uint64_t, const Execution&);
template KMeansStats kmeans_assign<float>(const DataRef<float>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                          const Eigen::Ref<const Eigen::MatrixXd>&,
                                          const Eigen::Ref<const Eigen::RowVectorXd>&, int*, Index, const Execution&);
template KMeansStats kmeans_assign<double>(const DataRef<double>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                           const Eigen::Ref<const Eigen::MatrixXd>&,
                                           const Eigen::Ref<const Eigen::RowVectorXd>&, int*, Index, const Execution&);
template KMeansResult kmeans<float>(const DataRef<float>&, const Eigen::Ref<const Eigen::VectorXd>&, Index,
                                    std::uint64_t, int, const Execution&);
template KMeansResult kmeans<double>(const DataRef<double>&, const Eigen::Ref<const Eigen::VectorXd>&, Index,
                                     std::uint64_t, int, const Execution&);

}  // namespace entrosum
