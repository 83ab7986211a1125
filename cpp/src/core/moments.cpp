#include "entrosum/core/moments.hpp"

#include <type_traits>

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
    : reference_(Eigen::VectorXd::Zero(n_features)),
      sum_(Eigen::VectorXd::Zero(n_features)),
      square_diagonal_(Eigen::VectorXd::Zero(n_features)) {
  if (full) scatter_ = Eigen::MatrixXd::Zero(n_features, n_features);
}

template <typename T>
void MomentsAccumulator<T>::add(const DataRef<T>& chunk) {
  if (chunk.rows() == 0) return;
  if (count_ == 0.0) {
    // Summed in double: a float sum of values near 1e4 already loses the first decimal.
    reference_ = chunk.template cast<double>().colwise().sum().transpose() / static_cast<double>(chunk.rows());
  }
  // Centre in the data's precision about the reference, so the products below do not cancel.
  const RowMatrix<T> centred = chunk.rowwise() - reference_.template cast<T>().transpose();  // (n, D)
  count_ += static_cast<double>(chunk.rows());
  // Column sums as a matrix-vector product: row-major column reductions would stride through memory.
  const Eigen::Matrix<T, Eigen::Dynamic, 1> ones = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(centred.rows());
  sum_ += (centred.transpose() * ones).template cast<double>();
  if (scatter_.size() == 0) {
    square_diagonal_ += (centred.array().square().matrix().transpose() * ones).template cast<double>();
    return;
  }
  // The sums of squares are the scatter's diagonal, read off in moments().
  if constexpr (std::is_same_v<T, double>) {
    scatter_.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
  } else {
    if (chunk_scatter_.size() == 0) chunk_scatter_.resize(scatter_.rows(), scatter_.cols());
    chunk_scatter_.setZero();
    chunk_scatter_.template selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
    scatter_.triangularView<Eigen::Lower>() += chunk_scatter_.template cast<double>();
  }
}

template <typename T>
Moments MomentsAccumulator<T>::moments() const {
  Moments out(reference_.size(), scatter_.size() > 0);
  out.count = count_;
  if (count_ == 0.0) return out;
  // About the mean: Σ (x − m)(x − m)ᵀ = Σ (x − r)(x − r)ᵀ − s sᵀ / n with s = Σ (x − r), m = r + s / n
  out.mean = reference_ + sum_ / count_;
  if (scatter_.size() > 0) {
    out.scatter = scatter_.selfadjointView<Eigen::Lower>();
    out.scatter -= sum_ * sum_.transpose() / count_;
    out.scatter_diagonal = out.scatter.diagonal();
  } else {
    out.scatter_diagonal = square_diagonal_ - sum_.cwiseAbs2() / count_;
  }
  return out;
}

template <typename T>
MomentsAccumulator<T>& MomentsAccumulator<T>::operator+=(const MomentsAccumulator& other) {
  if (other.count_ == 0.0) return *this;
  Moments merged = moments();
  merged += other.moments();
  count_ = merged.count;
  reference_ = merged.mean;
  sum_.setZero();
  if (scatter_.size() > 0) {
    scatter_ = merged.scatter;
  } else {
    square_diagonal_ = merged.scatter_diagonal;
  }
  return *this;
}

template <typename T>
Moments compute_moments(const DataRef<T>& data, bool full, const Execution& execution) {
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  return reduce_rows(
             data.rows(), chunk_size, execution, [&] { return MomentsAccumulator<T>(data.cols(), full); },
             [&](Index begin, Index end, MomentsAccumulator<T>& into) {
               into.add(data.middleRows(begin, end - begin));
             })
      .moments();
}

template <typename T>
Index first_nonfinite_row(const DataRef<T>& data, const Execution& execution) {
  return first_row_where(data, execution, [](const auto& row) { return !row.allFinite(); });
}

template class MomentsAccumulator<float>;
template class MomentsAccumulator<double>;
template Moments compute_moments<float>(const DataRef<float>&, bool, const Execution&);
template Moments compute_moments<double>(const DataRef<double>&, bool, const Execution&);
template Index first_nonfinite_row<float>(const DataRef<float>&, const Execution&);
template Index first_nonfinite_row<double>(const DataRef<double>&, const Execution&);

}  // namespace entrosum
