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

namespace {

/// (rows) ||x_n||² of CSR rows, in double.
template <typename T>
Eigen::VectorXd csr_row_squared_norms(const CsrRef<T>& data) {
  Eigen::VectorXd norms(data.rows);
  for (Index n = 0; n < data.rows; ++n) norms(n) = data.row_values(n).template cast<double>().squaredNorm();
  return norms;
}

/// Lloyd's iterations from the seed rows: `row_of(n)` is row n in double, `assign(centroids, shift, labels)` one
/// assignment pass (kmeans_assign or its CSR form), with distances about `shift`.
template <typename RowOf, typename Assign>
KMeansResult lloyd(Index N, const std::vector<Index>& seeds, const RowOf& row_of, bool centre_on_seeds, int max_iter,
                   const Assign& assign) {
  const Index K = static_cast<Index>(seeds.size());
  KMeansResult result;
  result.labels.assign(static_cast<std::size_t>(N), -1);
  for (Index k = 0; k < K; ++k) {
    const Eigen::RowVectorXd seed_row = row_of(seeds[static_cast<std::size_t>(k)]);
    if (k == 0) result.centroids.resize(K, seed_row.size());
    result.centroids.row(k) = seed_row;
  }
  // Dense distances are computed about the seeds' mean so that ||x||² − 2x·c + ||c||² does not cancel; sparse
  // ones about 0, which keeps the rows sparse.
  const Eigen::RowVectorXd shift = centre_on_seeds
                                       ? Eigen::RowVectorXd(result.centroids.colwise().mean())
                                       : Eigen::RowVectorXd(Eigen::RowVectorXd::Zero(result.centroids.cols()));
  for (int iteration = 1; iteration <= max_iter; ++iteration) {
    const KMeansStats stats = assign(result.centroids, shift, result.labels.data());
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
        result.centroids.row(k) = row_of(farthest[next_far++].second);
        relocated = true;
      }
    }
    if (stats.changed == 0 && !relocated) break;  // assignments are stable: centroids are the means already
  }
  return result;
}

/// k-means++ from a function giving each row's squared distance to a chosen row: `nearer(centre_row, nearest)`
/// lowers `nearest` (one entry per row) to the distances from row `centre_row` where they are smaller.
template <typename Nearer>
std::vector<Index> plusplus(Index N, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index n_clusters,
                            std::uint64_t seed, const Nearer& nearer) {
  Random random(seed);
  Eigen::VectorXd mass = sample_weight.size() ? Eigen::VectorXd(sample_weight) : Eigen::VectorXd::Ones(N);
  std::vector<Index> chosen{draw(mass, random)};
  Eigen::VectorXd nearest = Eigen::VectorXd::Constant(N, std::numeric_limits<double>::infinity());
  while (static_cast<Index>(chosen.size()) < n_clusters) {
    nearer(chosen.back(), nearest);
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

}  // namespace

template <typename T>
std::vector<Index> kmeans_plusplus(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                   Index n_clusters, std::uint64_t seed, const Execution& execution) {
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  return plusplus(data.rows(), sample_weight, n_clusters, seed, [&](Index centre_row, Eigen::VectorXd& nearest) {
    // squared distance to the nearest chosen row, in double
    const Eigen::RowVectorXd centre = data.row(centre_row).template cast<double>();
    for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
      for (Index n = begin; n < end; ++n)
        nearest(n) = std::min(nearest(n), (data.row(n).template cast<double>() - centre).squaredNorm());
    });
  });
}

template <typename T>
KMeansResult kmeans(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index K,
                    std::uint64_t seed, int max_iter, const Execution& execution) {
  const std::vector<Index> seeds = kmeans_plusplus<T>(data, sample_weight, K, seed, execution);
  return lloyd(
      data.rows(), seeds, [&](Index n) { return Eigen::RowVectorXd(data.row(n).template cast<double>()); }, true,
      max_iter,
      [&](const Eigen::MatrixXd& centroids, const Eigen::RowVectorXd& shift, int* labels) {
        return kmeans_assign<T>(data, sample_weight, centroids, shift, labels, 0, execution);
      });
}

template <typename T>
std::vector<Index> kmeans_plusplus_csr(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                       Index n_clusters, std::uint64_t seed, const Execution& execution) {
  const Eigen::VectorXd row_norms = csr_row_squared_norms(data);
  const Index chunk_size = data.chunk_rows(execution.chunk_size, 1);
  return plusplus(data.rows, sample_weight, n_clusters, seed, [&](Index centre_row, Eigen::VectorXd& nearest) {
    // ||x − c||² = ||x||² − 2 x·c + ||c||², clipped at 0 against rounding
    const Eigen::VectorXd centre = data.dense_row(centre_row);
    const double centre_norm = row_norms(centre_row);
    for_each_chunk(data.rows, chunk_size, execution, [&](Index begin, Index end) {
      for (Index n = begin; n < end; ++n) {
        double dot = 0.0;
        for (std::int64_t at = data.row_starts[n]; at < data.row_starts[n + 1]; ++at)
          dot += static_cast<double>(data.values[at]) * centre(data.column_indices[at]);
        nearest(n) = std::min(nearest(n), std::max(0.0, row_norms(n) - 2.0 * dot + centre_norm));
      }
    });
  });
}

template <typename T>
KMeansStats kmeans_assign_csr(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                              const Eigen::Ref<const Eigen::MatrixXd>& centroids, int* labels, Index row_offset,
                              const Execution& execution) {
  const Index K = centroids.rows(), D = data.cols;
  const RowMatrix<double> centroids_by_feature = centroids.transpose();  // (D, K)
  const Eigen::RowVectorXd centroid_norms = centroids.rowwise().squaredNorm().transpose();
  return reduce_rows(
      data.rows, data.chunk_rows(execution.chunk_size, K), execution, [&] { return KMeansStats(K, D); },
      [&](Index begin, Index end, KMeansStats& into) {
        for (Index n = begin; n < end; ++n) {
          // ||x − c||² = ||x||² + (||c||² − 2 x·c), the bracket from the row's entries
          Eigen::RowVectorXd distance = centroid_norms;
          double row_norm = 0.0;
          for (std::int64_t at = data.row_starts[n]; at < data.row_starts[n + 1]; ++at) {
            const double value = static_cast<double>(data.values[at]);
            distance -= (2.0 * value) * centroids_by_feature.row(data.column_indices[at]);
            row_norm += value * value;
          }
          Index best = 0;
          const double squared = std::max(0.0, row_norm + distance.minCoeff(&best));
          const double w = weight_at(sample_weight, n);
          if (labels[n] != best) ++into.changed;
          labels[n] = static_cast<int>(best);
          for (std::int64_t at = data.row_starts[n]; at < data.row_starts[n + 1]; ++at)
            into.sums(best, data.column_indices[at]) += w * static_cast<double>(data.values[at]);
          into.counts(best) += w;
          into.inertia += w * squared;
          if (w > 0.0) into.offer(squared, n + row_offset);
        }
      });
}

template <typename T>
KMeansResult kmeans_csr(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index K,
                        std::uint64_t seed, int max_iter, const Execution& execution) {
  const std::vector<Index> seeds = kmeans_plusplus_csr<T>(data, sample_weight, K, seed, execution);
  return lloyd(
      data.rows, seeds, [&](Index n) { return Eigen::RowVectorXd(data.dense_row(n).transpose()); }, false, max_iter,
      [&](const Eigen::MatrixXd& centroids, const Eigen::RowVectorXd&, int* labels) {
        return kmeans_assign_csr<T>(data, sample_weight, centroids, labels, 0, execution);
      });
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

#define ENTROSUM_INSTANTIATE_KMEANS_CSR(T)                                                                            \
  template std::vector<Index> kmeans_plusplus_csr<T>(const CsrRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,      \
                                                     Index, std::uint64_t, const Execution&);                         \
  template KMeansStats kmeans_assign_csr<T>(const CsrRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,               \
                                            const Eigen::Ref<const Eigen::MatrixXd>&, int*, Index, const Execution&); \
  template KMeansResult kmeans_csr<T>(const CsrRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, Index,              \
                                      std::uint64_t, int, const Execution&);
ENTROSUM_INSTANTIATE_KMEANS_CSR(float)
ENTROSUM_INSTANTIATE_KMEANS_CSR(double)

}  // namespace entrosum
