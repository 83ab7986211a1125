// Full covariances component by component (DESIGN.md §6): per block of rows and component, the centred rows
// x − μ_k times the precision Cholesky factor U_k (a triangular product), −½ of their squared norms plus a
// constant; after the log-sum-exp, each component's second moments from the rows it is responsible for, by a
// rank update about μ_k, turned into the sums about the shift that the M-step reads.
#include "gaussian_mixture_componentwise.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "gaussian_mixture_moments.hpp"

namespace entrosum::detail {

namespace {

/// Rows per block of the log-density products: (rows, D) centred and whitened blocks stay in L2.
constexpr Index kBlockRows = 256;
/// Rows gathered per rank update before it is added to the double sums (float data: short float sums).
constexpr Index kGatherRows = 512;
/// From this many features on, full covariances go component by component.
constexpr Index kComponentwiseFeatures = 48;

/// x − μ into `centred` (rows, D): in double and then rounded, so float rows far from the origin keep the
/// digits of their distance to μ.
template <typename T, typename Rows>
void centre_rows(const Rows& x, const Eigen::RowVectorXd& mean, RowMatrix<T>& centred) {
  centred.resize(x.rows(), x.cols());
  if constexpr (std::is_same_v<T, double>)
    centred = x.rowwise() - mean;
  else
    centred = (x.template cast<double>().rowwise() - mean).template cast<T>();
}

}  // namespace

template <typename T>
bool use_componentwise(CovarianceType type, Index n_features) {
  return type == CovarianceType::full && n_features >= kComponentwiseFeatures;
}

template <typename T>
ComponentwiseDensity<T> prepare_componentwise(const GaussianMixtureParams& p) {
  const Index K = p.n_components(), D = p.n_features();
  ComponentwiseDensity<T> density;
  density.means = p.means;
  density.factors = &p.precision_cholesky;
  // c_k = log π_k − ½ D log 2π + log det U_k
  const Eigen::VectorXd constants =
      p.weights.array().log() - 0.5 * static_cast<double>(D) * kLogTwoPi + log_det_precision_cholesky(p).array();
  density.offsets = constants.template cast<T>().transpose();
  return density;
}

template <typename T>
void componentwise_log_joint(const DataRef<T>& chunk, const ComponentwiseDensity<T>& density,
                             ComponentwiseBuffers<T>& buffers, Eigen::Ref<RowMatrix<T>> log_joint) {
  const Index n = chunk.rows(), D = chunk.cols(), K = density.offsets.size();
  for (Index begin = 0; begin < n; begin += kBlockRows) {
    const Index rows = std::min(kBlockRows, n - begin);
    for (Index k = 0; k < K; ++k) {
      centre_rows<T>(chunk.middleRows(begin, rows), density.means.row(k), buffers.centred);
      buffers.whitened.resize(rows, D);
      // z = (x − μ_k) U_k, U_k upper triangular: half the products of a full one. Float data cast U_k per block
      // (D² conversions beside rows·D²/2 products) rather than keep a float copy of every factor.
      const auto factor = density.factors->block(k * D, 0, D, D);
      if constexpr (std::is_same_v<T, double>) {
        buffers.whitened.noalias() = buffers.centred * factor.template triangularView<Eigen::Upper>();
      } else {
        buffers.upper = factor.template cast<T>();
        buffers.whitened.noalias() = buffers.centred * buffers.upper.template triangularView<Eigen::Upper>();
      }
      log_joint.col(k).segment(begin, rows) =
          (density.offsets(k) - T(0.5) * buffers.whitened.rowwise().squaredNorm().array()).matrix();
    }
  }
}

template <typename T>
void componentwise_statistics(const DataRef<T>& rows, const RowMatrix<T>& resp, const Eigen::MatrixXd& means,
                              const Eigen::VectorXd& shift, GaussianMixtureStats& stats,
                              ComponentwiseBuffers<T>& buffers, const std::vector<Index>* components) {
  const Index n = rows.rows(), D = rows.cols();
  const Index count_of_components = components ? static_cast<Index>(components->size()) : resp.cols();
  buffers.gathered.resize(std::min(n, kGatherRows), D);
  Eigen::MatrixXd scatter(D, D);  // Σ w r (x − μ_k)(x − μ_k)ᵀ of these rows, lower triangle
  Eigen::RowVectorXd centred(D);  // one row's x − μ_k
  for (Index index = 0; index < count_of_components; ++index) {
    const Index k = components ? (*components)[static_cast<std::size_t>(index)] : index;
    const Eigen::RowVectorXd mean = means.row(k);
    Eigen::RowVectorXd first = Eigen::RowVectorXd::Zero(D);  // Σ w r (x − μ_k)
    double count = 0.0;                                      // Σ w r
    scatter.setZero();
    Index gathered = 0;
    auto flush = [&] {  // the gathered rows' rank update, in T, added to the double sum
      if (gathered == 0) return;
      buffers.scatter.setZero(D, D);
      buffers.scatter.template selfadjointView<Eigen::Lower>().rankUpdate(
          buffers.gathered.topRows(gathered).transpose());
      scatter.template triangularView<Eigen::Lower>() += buffers.scatter.template cast<double>();
      gathered = 0;
    };
    const auto weights = resp.col(k);
    if (4 * (weights.array() > T(0)).count() > n) {
      // Most rows count (overlapping components): all of them, a block at a time, without gathering.
      for (Index begin = 0; begin < n; begin += buffers.gathered.rows()) {
        const Index block = std::min(buffers.gathered.rows(), n - begin);
        centre_rows<T>(rows.middleRows(begin, block), mean, buffers.centred);
        const Eigen::Matrix<T, Eigen::Dynamic, 1> r = weights.segment(begin, block).cwiseMax(T(0));
        first += (r.transpose() * buffers.centred).template cast<double>();
        count += static_cast<double>(r.sum());
        buffers.gathered.topRows(block) = buffers.centred.array().colwise() * r.array().sqrt();
        gathered = block;
        flush();
      }
    } else {
      // Only the rows with a non-zero responsibility: once components separate, a row has one or two.
      for (Index row = 0; row < n; ++row) {
        const double r = static_cast<double>(weights(row));
        if (!(r > 0.0)) continue;
        centred.noalias() = rows.row(row).template cast<double>() - mean;
        first += r * centred;
        count += r;
        buffers.gathered.row(gathered++) = (std::sqrt(r) * centred).template cast<T>();
        if (gathered == buffers.gathered.rows()) flush();
      }
      flush();
    }
    if (count == 0.0) continue;
    // About the shift, with d = μ_k − shift: Σ r (x − s) = F + N d and
    // Σ r (x − s)(x − s)ᵀ = S + F dᵀ + d Fᵀ + N d dᵀ (S, F about μ_k), packed row by row (i ≤ j).
    const Eigen::RowVectorXd d = mean - shift.transpose();
    stats.first.row(k) += first + count * d;
    Index offset = 0;
    for (Index i = 0; i < D; ++i)
      for (Index j = i; j < D; ++j)
        stats.second(k, offset++) += scatter(j, i) + first(i) * d(j) + d(i) * first(j) + count * d(i) * d(j);
  }
}

template <typename T>
void componentwise_accumulate(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                              const ComponentwiseDensity<T>& density, const Eigen::VectorXd& shift,
                              GaussianMixtureStats& stats, ComponentwiseBuffers<T>& buffers, Index row_offset) {
  buffers.resp.resize(chunk.rows(), density.offsets.size());
  componentwise_log_joint<T>(chunk, density, buffers, buffers.resp);
  normalise_log_joint<T>(buffers.resp, weights, stats.totals, buffers.row_log_likelihood);  // now w r
  note_worst(stats.totals, buffers.row_log_likelihood, chunk, row_offset, weights);
  componentwise_statistics<T>(chunk, buffers.resp, density.means, shift, stats, buffers, nullptr);
}

template bool use_componentwise<float>(CovarianceType, Index);
template bool use_componentwise<double>(CovarianceType, Index);
template ComponentwiseDensity<float> prepare_componentwise<float>(const GaussianMixtureParams&);
template ComponentwiseDensity<double> prepare_componentwise<double>(const GaussianMixtureParams&);
template void componentwise_log_joint<float>(const DataRef<float>&, const ComponentwiseDensity<float>&,
                                             ComponentwiseBuffers<float>&, Eigen::Ref<RowMatrix<float>>);
template void componentwise_log_joint<double>(const DataRef<double>&, const ComponentwiseDensity<double>&,
                                              ComponentwiseBuffers<double>&, Eigen::Ref<RowMatrix<double>>);
template void componentwise_statistics<float>(const DataRef<float>&, const RowMatrix<float>&, const Eigen::MatrixXd&,
                                              const Eigen::VectorXd&, GaussianMixtureStats&,
                                              ComponentwiseBuffers<float>&, const std::vector<Index>*);
template void componentwise_statistics<double>(const DataRef<double>&, const RowMatrix<double>&, const Eigen::MatrixXd&,
                                               const Eigen::VectorXd&, GaussianMixtureStats&,
                                               ComponentwiseBuffers<double>&, const std::vector<Index>*);
template void componentwise_accumulate<float>(const DataRef<float>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                              const ComponentwiseDensity<float>&, const Eigen::VectorXd&,
                                              GaussianMixtureStats&, ComponentwiseBuffers<float>&, Index);
template void componentwise_accumulate<double>(const DataRef<double>&, const Eigen::Ref<const Eigen::VectorXd>&,
                                               const ComponentwiseDensity<double>&, const Eigen::VectorXd&,
                                               GaussianMixtureStats&, ComponentwiseBuffers<double>&, Index);

}  // namespace entrosum::detail
