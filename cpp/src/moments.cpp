#include "entrosum/moments.hpp"

#include <atomic>
#include <limits>

namespace entrosum {

Moments::Moments(Index n_features, bool full)
    : mean(Eigen::VectorXd::Zero(n_features)), scatter_diagonal(Eigen::VectorXd::Zero(n_features)) {
  if (full) scatter = Eigen::MatrixXd::Zero(n_features, n_features);
}

Moments& Moments::operator+=(const Moments& other) {
  if (other.count == 0.0) return *this;
  if (count == 0.0) {
    *this = other;
    return *this;
  }
  const double total = count + other.count;
  const Eigen::VectorXd delta = other.mean - mean;  // (n_features)
  const double factor = count * other.count / total;
  scatter_diagonal += other.scatter_diagonal + factor * delta.cwiseAbs2();
  if (full()) scatter += other.scatter + factor * delta * delta.transpose();
  mean += delta * (other.count / total);
  count = total;
  return *this;
}

template <typename T>
Moments chunk_moments(const DataRef<T>& chunk, bool full) {
  const Index n_features = chunk.cols();
  Moments moments(n_features, full);
  moments.count = static_cast<double>(chunk.rows());
  if (chunk.rows() == 0) return moments;
  // Summed in double: a float sum of values near 1e4 already loses the first decimal.
  moments.mean = chunk.template cast<double>().colwise().sum().transpose() / moments.count;
  // Centre in the data's precision around the chunk mean, so the products below do not cancel.
  const RowMatrix<T> centred = chunk.rowwise() - moments.mean.template cast<T>().transpose();
  moments.scatter_diagonal = centred.colwise().squaredNorm().template cast<double>().transpose();
  if (full) {
    using ColMatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
    ColMatrixT scatter = ColMatrixT::Zero(n_features, n_features);
    scatter.template selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
    moments.scatter = scatter.template selfadjointView<Eigen::Lower>().toDenseMatrix().template cast<double>();
  }
  return moments;
}

template <typename T>
Moments compute_moments(const DataRef<T>& data, bool full, const Execution& execution) {
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  return reduce_rows(
      data.rows(), chunk_size, execution, [&] { return Moments(data.cols(), full); },
      [&](Index begin, Index end, Moments& into) {
        into += chunk_moments<T>(data.middleRows(begin, end - begin), full);
      });
}

template <typename T>
Index first_nonfinite_row(const DataRef<T>& data, const Execution& execution) {
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  std::atomic<Index> first(std::numeric_limits<Index>::max());
  for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
    for (Index row = begin; row < end; ++row) {
      if (!data.row(row).allFinite()) {
        Index seen = first.load();
        while (row < seen && !first.compare_exchange_weak(seen, row)) {
        }
        return;
      }
    }
  });
  const Index row = first.load();
  return row == std::numeric_limits<Index>::max() ? -1 : row;
}

template Moments chunk_moments<float>(const DataRef<float>&, bool);
template Moments chunk_moments<double>(const DataRef<double>&, bool);
template Moments compute_moments<float>(const DataRef<float>&, bool, const Execution&);
template Moments compute_moments<double>(const DataRef<double>&, bool, const Execution&);
template Index first_nonfinite_row<float>(const DataRef<float>&, const Execution&);
template Index first_nonfinite_row<double>(const DataRef<double>&, const Execution&);

}  // namespace entrosum
