#include "entrosum/core/moments.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <type_traits>

#include "entrosum/core/errors.hpp"

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

void Moments::scale(double factor) {
  count *= factor;
  scatter_diagonal *= factor;
  if (full()) scatter *= factor;
}

template <typename T>
MomentsAccumulator<T>::MomentsAccumulator(Index n_features, bool full)
    : reference_(Eigen::VectorXd::Zero(n_features)), sum_(Eigen::VectorXd::Zero(n_features)) {
  if (full) {
    scatter_ = Eigen::MatrixXd::Zero(n_features, n_features);
  } else {
    square_diagonal_ = Eigen::VectorXd::Zero(n_features);
  }
}

template <typename T>
void MomentsAccumulator<T>::add(const DataRef<T>& rows, MomentsWorkspace<T>* workspace) {
  if (rows.rows() == 0) return;
  MomentsWorkspace<T> own;
  MomentsWorkspace<T>& buffers = workspace ? *workspace : own;
  if (count_ == 0.0) {
    // The reference: the mean of the first rows, summed in double (a float sum of values near 1e4 already loses
    // the first decimal).
    // It is rounded to the data's precision: the rows are centred at exactly this point.
    const Index first = std::min<Index>(rows.rows(), std::is_same_v<T, float> ? kFloatBatchRows : kDoubleBatchRows);
    const Eigen::VectorXd mean =
        rows.topRows(first).template cast<double>().colwise().sum().transpose() / static_cast<double>(first);
    reference_ = mean.template cast<T>().template cast<double>();
  }
  const Index batch_rows = std::is_same_v<T, float> ? kFloatBatchRows : kDoubleBatchRows;
  for (Index begin = 0; begin < rows.rows(); begin += batch_rows)
    add_batch(rows.middleRows(begin, std::min(batch_rows, rows.rows() - begin)), buffers);
}

template <typename T>
void MomentsAccumulator<T>::add_batch(const DataRef<T>& rows, MomentsWorkspace<T>& workspace) {
  const Index n_rows = rows.rows();
  const Index n_features = rows.cols();
  // Centre in the data's precision about the reference, so the products below do not cancel.
  if (workspace.centred.rows() < n_rows || workspace.centred.cols() != n_features)
    workspace.centred.resize(std::max<Index>(n_rows, workspace.centred.rows()), n_features);
  auto centred = workspace.centred.topRows(n_rows);  // (n, D)
  centred.noalias() = rows.rowwise() - reference_.template cast<T>().transpose();
  count_ += static_cast<double>(n_rows);
  // Column sums as a matrix-vector product: row-major column reductions would stride through memory.
  const Eigen::Matrix<T, Eigen::Dynamic, 1> ones = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(n_rows);
  sum_ += (centred.transpose() * ones).template cast<double>();
  if (!full()) {
    square_diagonal_ += (centred.array().square().matrix().transpose() * ones).template cast<double>();
    return;
  }
  // Σ (x − r)(x − r)ᵀ, lower triangle; its diagonal is the sums of squares, read off in moments().
  if constexpr (std::is_same_v<T, double>) {
    scatter_.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
  } else {
    auto& product = workspace.product;
    if (product.rows() != n_features) product.resize(n_features, n_features);
    product.template triangularView<Eigen::Lower>().setZero();
    product.template selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
    scatter_.triangularView<Eigen::Lower>() += product.template cast<double>();
  }
}

template <typename T>
Moments MomentsAccumulator<T>::moments() const {
  Moments out(reference_.size(), full());
  out.count = count_;
  if (count_ == 0.0) return out;
  // About the mean: Σ (x − m)(x − m)ᵀ = Σ (x − r)(x − r)ᵀ − s sᵀ / n with s = Σ (x − r), m = r + s / n
  out.mean = reference_ + sum_ / count_;
  if (full()) {
    out.scatter = scatter_.selfadjointView<Eigen::Lower>();
    out.scatter -= sum_ * sum_.transpose() / count_;  // (s_i s_j) / n: exactly symmetric
    out.scatter_diagonal = out.scatter.diagonal();
  } else {
    out.scatter_diagonal = square_diagonal_ - sum_.cwiseAbs2() / count_;
  }
  return out;
}

template <typename T>
MomentsAccumulator<T>& MomentsAccumulator<T>::operator+=(const MomentsAccumulator& other) {
  if (other.count_ == 0.0) return *this;
  if (count_ == 0.0) {
    *this = other;
    return *this;
  }
  // The other's sums about this reference r, with δ = r' − r and x − r = (x − r') + δ:
  //   Σ (x − r) = s' + n' δ,   Σ (x − r)(x − r)ᵀ = S' + u δᵀ + δ uᵀ with u = s' + n' δ / 2.
  const Eigen::VectorXd delta = other.reference_ - reference_;  // (n_features)
  const Eigen::VectorXd shift = other.sum_ + (0.5 * other.count_) * delta;
  count_ += other.count_;
  sum_ += other.sum_ + other.count_ * delta;
  if (full()) {
    const Index n = scatter_.rows();
    for (Index j = 0; j < n; ++j) {
      scatter_.col(j).tail(n - j) +=
          other.scatter_.col(j).tail(n - j) + shift.tail(n - j) * delta(j) + delta.tail(n - j) * shift(j);
    }
  } else {
    square_diagonal_ += other.square_diagonal_ + 2.0 * shift.cwiseProduct(delta);
  }
  return *this;
}

Index moments_pass_rows(Index chunk_size, bool full) {
  if (!full || chunk_size >= kMomentsMinBlockRows) return chunk_size;
  return chunk_size * ((kMomentsMinBlockRows + chunk_size - 1) / chunk_size);
}

template <typename T>
Moments compute_moments(const DataRef<T>& data, bool full, const Execution& execution) {
  const Index n_features = data.cols();
  const Index chunk_size = resolve_chunk_size(execution, n_features, sizeof(T));
  Moments moments = reduce_rows(
                        data.rows(), moments_pass_rows(chunk_size, full), execution,
                        [&] { return MomentsAccumulator<T>(n_features, full); }, [] { return MomentsWorkspace<T>(); },
                        [&](Index begin, Index end, MomentsAccumulator<T>& into, MomentsWorkspace<T>& workspace) {
                          into.add(data.middleRows(begin, end - begin), &workspace);
                        })
                        .moments();
  // A NaN or ±inf anywhere makes the mean or a variance NaN or infinite, so finite moments clear the data.
  if (!moments.mean.allFinite() || !moments.scatter_diagonal.allFinite()) {
    const Index row = first_nonfinite_row<T>(data, execution);
    if (row >= 0) throw NonFiniteData(row);
    throw NumericalError(
        "the data's moments overflow: the sums of squares of its values exceed the floating-point range");
  }
  return moments;
}

template <typename T>
Index first_nonfinite_row(const DataRef<T>& data, const Execution& execution) {
  // Each chunk is first tested as a whole: x · 0 is NaN exactly for NaN and ±inf, so the sum of x · 0 over the
  // chunk is NaN iff the chunk holds a non-finite value (a vectorised pass at memory speed; Eigen's allFinite
  // tests value by value). Only such a chunk is searched row by row.
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  std::atomic<Index> first(std::numeric_limits<Index>::max());
  for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
    const auto chunk = data.middleRows(begin, end - begin);
    if (!std::isnan((chunk.array() * T(0)).sum())) return;
    for (Index row = begin; row < end; ++row) {
      if (!std::isnan((data.row(row).array() * T(0)).sum())) continue;
      Index seen = first.load();
      while (row < seen && !first.compare_exchange_weak(seen, row)) {
      }
      return;
    }
  });
  const Index row = first.load();
  return row == std::numeric_limits<Index>::max() ? -1 : row;
}

template struct MomentsWorkspace<float>;
template struct MomentsWorkspace<double>;
template class MomentsAccumulator<float>;
template class MomentsAccumulator<double>;
template Moments compute_moments<float>(const DataRef<float>&, bool, const Execution&);
template Moments compute_moments<double>(const DataRef<double>&, bool, const Execution&);
template Index first_nonfinite_row<float>(const DataRef<float>&, const Execution&);
template Index first_nonfinite_row<double>(const DataRef<double>&, const Execution&);

}  // namespace entrosum
