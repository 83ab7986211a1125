// The Gaussian-mixture E-step (DESIGN.md §3, §6): log-density coefficients prepared once per set of
// parameters, then per block of rows one product for the log-densities, a row-wise log-sum-exp, and one
// product for the statistics, all while the block is in cache.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/narrow_products.hpp"
#include "../core/simd_mask.hpp"
#include "../core/stack_products.hpp"
#include "entrosum/mixtures/gaussian_mixture.hpp"
#include "gaussian_mixture_componentwise.hpp"
#include "gaussian_mixture_moments.hpp"

namespace entrosum {

namespace {

using namespace detail;

/// A component whose mean lies more than 8 standard deviations from the shift (Mahalanobis distance² 64) is
/// "far": float sums about the shift lose ~eps·64 of its variances (4e-6), and more beyond.
constexpr double kNearShift = 64.0;

/// Coefficients A (K, F) and offsets b (K) with log π_k + log N(x; μ_k, Σ_k) = features · A_kᵀ + b_k for
/// the diagonal and spherical types (features as in linear_features, means relative to the shift).
struct LinearLogDensity {
  Eigen::MatrixXd coefficients;
  Eigen::VectorXd offsets;
};

LinearLogDensity linear_log_density(const GaussianMixtureParams& p, const Eigen::MatrixXd& centred_means,
                                    const Eigen::VectorXd& constants) {
  const Index K = p.n_components(), D = p.n_features();
  LinearLogDensity out;
  if (p.covariance_type == CovarianceType::diag) {
    // −½ Σ_d P_kd (x_d − μ_kd)² = Σ_d x_d μ_kd P_kd − ½ Σ_d x_d² P_kd − ½ Σ_d μ_kd² P_kd
    const Eigen::ArrayXXd precision = p.precision_cholesky.array().square();  // (K, D)
    out.coefficients.resize(K, 2 * D);
    out.coefficients.leftCols(D) = centred_means.array() * precision;
    out.coefficients.rightCols(D) = -0.5 * precision;
    out.offsets = constants.array() - 0.5 * (centred_means.array().square() * precision).rowwise().sum();
  } else if (p.covariance_type == CovarianceType::full) {
    // −½ (x − μ)ᵀP(x − μ) = xᵀPμ − ½ Σ_i P_ii x_i² − Σ_{i<j} P_ij x_i x_j − ½ μᵀPμ
    out.coefficients.resize(K, feature_count(CovarianceType::full, D));
    out.offsets.resize(K);
    for (Index k = 0; k < K; ++k) {
      const Eigen::MatrixXd upper = p.precision_cholesky.block(k * D, 0, D, D);
      const Eigen::MatrixXd precision = upper * upper.transpose();
      const Eigen::VectorXd weighted_mean = precision * centred_means.row(k).transpose();
      out.coefficients.row(k).head(D) = weighted_mean.transpose();
      Index offset = D;
      for (Index i = 0; i < D; ++i) {
        out.coefficients(k, offset) = -0.5 * precision(i, i);
        out.coefficients.row(k).segment(offset + 1, D - i - 1) = -precision.row(i).tail(D - i - 1);
        offset += D - i;
      }
      out.offsets(k) = constants(k) - 0.5 * centred_means.row(k).dot(weighted_mean);
    }
  } else {
    const Eigen::ArrayXd precision = p.precision_cholesky.col(0).array().square();  // (K)
    out.coefficients.resize(K, D + 1);
    out.coefficients.leftCols(D) = centred_means.array().colwise() * precision;
    out.coefficients.col(D) = -0.5 * precision;
    out.offsets = constants.array() - 0.5 * precision * centred_means.rowwise().squaredNorm().array();
  }
  return out;
}

/// The coefficients of log π_k + log N(x; μ_k, Σ_k) in the shifted row y = x − shift, in compute type U.
template <typename U>
GaussianLogDensity<U> prepare_log_density(const GaussianMixtureParams& p, const Eigen::VectorXd& shift) {
  const Eigen::MatrixXd centred_means = p.means.rowwise() - shift.transpose();  // (K, D)
  // c_k = log π_k − ½ D log 2π + log det U_k
  const Eigen::VectorXd constants =
      p.weights.array().log() - 0.5 * p.n_features() * kLogTwoPi + log_det_precision_cholesky(p).array();
  GaussianLogDensity<U> density;
  density.type = p.covariance_type;
  if (p.covariance_type == CovarianceType::tied) {
    // −½ ||yU − m_k||² = (yU)·m_k − ½ ||yU||² − ½ ||m_k||², with m_k = (μ_k − shift) U
    const Eigen::MatrixXd whitened_means = centred_means * p.precision_cholesky;  // (K, D)
    density.whitening = p.precision_cholesky.template cast<U>();
    density.coefficients = whitened_means.template cast<U>();
    density.offsets = (constants.array() - 0.5 * whitened_means.rowwise().squaredNorm().array())
                          .matrix()
                          .template cast<U>()
                          .transpose();
  } else {
    const LinearLogDensity linear = linear_log_density(p, centred_means, constants);
    density.coefficients = linear.coefficients.template cast<U>();
    density.offsets = linear.offsets.template cast<U>().transpose();
    if (p.covariance_type == CovarianceType::full) {
      density.means = p.means;
      const Index D = p.n_features();
      for (Index k = 0; k < p.n_components(); ++k) {
        // ||(μ_k − shift) U_k||²: how many variances the shift lies from the component
        const Eigen::RowVectorXd whitened = centred_means.row(k) * p.precision_cholesky.block(k * D, 0, D, D);
        if (whitened.squaredNorm() > kNearShift) density.far_components.push_back(k);
      }
    }
  }
  return density;
}

/// Rows handled at once: the block's features and log joint (about 128 KiB) stay in L2 between the two
/// products, and 128 rows or more keep the products efficient. Each thread holds a block: on narrow data (colour
/// pixels, K = 64 log joints per 3 values) 512 KiB blocks made a second thread cost a third of the data's memory.
template <typename U>
Index block_rows(const GaussianLogDensity<U>& density) {
  const Index width = std::max<Index>(1, density.coefficients.cols() + density.offsets.size());
  return std::clamp<Index>((Index(128) << 10) / (width * static_cast<Index>(sizeof(U))), 128, 1024);
}

/// Float data's full-covariance features up to this width (D ≤ 10) are made in double when components lie far
/// from the shift: the double product is then cheaper than the per-component passes that keep float's digits.
constexpr Index kDoubleFeatureWidth = 64;
/// Rows per piece of those double products.
constexpr Index kDoubleFeatureRows = 64;

/// Whether the statistics of a block are cheaper row by row over its non-zero responsibilities than as a
/// product: below one in eight (separated components: one or two per row).
template <typename Resp>
bool sparse_enough(const Resp& resp) {
  return 8 * (resp.array() != 0).count() < resp.size();
}

/// Adds Σ w r features(x − shift) over the non-zero responsibilities only, into row-major double sums (K,
/// width). Each row's features are made in double from the data, so float data's sums keep their digits
/// however far a component lies from the shift.
/// A row's non-zero responsibilities are found a SIMD packet at a time (a row has one or two among K): the lanes
/// that are not zero come out of one comparison as bits, and only those components are visited, in order.
template <typename T, typename U>
void accumulate_sparse_rows(const DataRef<T>& rows, const RowMatrix<U>& resp, const Eigen::VectorXd& shift,
                            CovarianceType type, RowMatrix<double>& sums) {
  namespace ei = Eigen::internal;
  using Packet = typename ei::packet_traits<U>::type;
  constexpr Index lanes = ei::packet_traits<U>::size;
  const Index K = resp.cols();
  const Packet zero = ei::pzero(Packet());
  const Packet ones = ei::ptrue(Packet());
  RowMatrix<double> centred(1, rows.cols()), features;
  for (Index row = 0; row < resp.rows(); ++row) {
    const U* r = &resp(row, 0);
    bool made = false;
    auto add = [&](Index k) {
      if (!made) {
        centred = rows.row(row).template cast<double>() - shift.transpose();
        fill_linear_features<double>(centred, type, features);
        made = true;
      }
      sums.row(k) += static_cast<double>(r[k]) * features.row(0);
    };
    Index k = 0;
    for (; k + lanes <= K; k += lanes) {  // lanes that are not zero (NaN included), lowest first
      std::uint32_t bits = lane_bits(ei::pandnot(ones, ei::pcmp_eq(ei::ploadu<Packet>(r + k), zero)));
      for (; bits != 0; bits &= bits - 1) add(k + lowest_set_bit(bits));
    }
    for (; k < K; ++k)
      if (r[k] != U(0)) add(k);
  }
}

template <typename U>
using BlockBuffers = GaussianBlockBuffers<U>;

/// Fills buffers.resp with the (rows, K) log joint of buffers.shifted (and features for the linear types).
template <typename U>
void block_log_joint(const GaussianLogDensity<U>& density, Index rows, BlockBuffers<U>& buffers) {
  const auto shifted = buffers.shifted.topRows(rows);
  auto resp = buffers.resp.topRows(rows);
  if (density.type == CovarianceType::tied) {
    buffers.features.resize(rows, shifted.cols());
    auto whitened = buffers.features.topRows(rows);
    whitened.noalias() = shifted * density.whitening;              // (rows, D) y U
    resp.noalias() = whitened * density.coefficients.transpose();  // (rows, K) (yU)·m_k
    resp.colwise() -= U(0.5) * whitened.rowwise().squaredNorm();
  } else {
    fill_linear_features<U>(shifted, density.type, buffers.features);
    resp.noalias() = buffers.features * density.coefficients.transpose();
  }
  resp.rowwise() += density.offsets;
}

/// Shifts rows [begin, begin + rows) of `chunk` into buffers.shifted, in compute type U.
template <typename U, typename T>
void shift_rows(const DataRef<T>& chunk, Index begin, Index rows, const Eigen::VectorXd& shift,
                BlockBuffers<U>& buffers) {
  buffers.shifted.resize(rows, chunk.cols());
  buffers.shifted = chunk.middleRows(begin, rows).template cast<U>().rowwise() - shift.template cast<U>().transpose();
}

template <typename U, typename T>
void accumulate_blocks(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                       const GaussianLogDensity<U>& density, const Eigen::VectorXd& shift, GaussianMixtureStats& stats,
                       BlockBuffers<U>& buffers, ComponentwiseBuffers<T>& componentwise, Index row_offset) {
  const Index block = block_rows(density), K = density.offsets.size();
  for (Index begin = 0; begin < chunk.rows(); begin += block) {
    const Index rows = std::min(block, chunk.rows() - begin);
    shift_rows<U>(chunk, begin, rows, shift, buffers);
    buffers.resp.resize(rows, K);
    block_log_joint(density, rows, buffers);
    const Eigen::VectorXd block_weights =
        weights.size() ? Eigen::VectorXd(weights.segment(begin, rows)) : Eigen::VectorXd();
    normalise_log_joint<U>(buffers.resp, block_weights, stats.totals, buffers.row_log_likelihood);
    note_worst(stats.totals, buffers.row_log_likelihood, chunk.middleRows(begin, rows), row_offset + begin,
               block_weights);
    if (density.type == CovarianceType::tied) {
      accumulate_moments<U>(buffers.shifted.topRows(buffers.resp.rows()), buffers.resp, CovarianceType::tied, stats);
    } else if (sparse_enough(buffers.resp)) {
      if (buffers.double_sums.rows() != K) buffers.double_sums = RowMatrix<double>::Zero(K, buffers.features.cols());
      accumulate_sparse_rows<T, U>(chunk.middleRows(begin, rows), buffers.resp, shift, density.type,
                                   buffers.double_sums);
    } else if (std::is_same_v<U, float> && !density.far_components.empty() &&
               buffers.features.cols() <= kDoubleFeatureWidth) {
      // Few features (full covariances of colour pixels: 9): every component's sums from the rows' features
      // made in double about the shift cost less than a pass per far component.
      // In pieces of kDoubleFeatureRows rows, so that the double copies stay a few KiB; their buffers are kept
      // from piece to piece, and the products add up in the chunk's double sums.
      if (buffers.double_sums_transposed.cols() != K)
        buffers.double_sums_transposed = RowMatrix<double>::Zero(buffers.features.cols(), K);
      for (Index first = 0; first < rows; first += kDoubleFeatureRows) {
        const Index count = std::min(kDoubleFeatureRows, rows - first);
        buffers.double_shifted =
            chunk.middleRows(begin + first, count).template cast<double>().rowwise() - shift.transpose();
        fill_linear_features<double>(buffers.double_shifted, density.type, buffers.double_features);
        buffers.double_resp = buffers.resp.middleRows(first, count).template cast<double>();
        add_narrow_transposed_product(buffers.double_features, buffers.double_resp, buffers.double_sums_transposed);
      }
    } else if (std::is_same_v<U, float> && !density.far_components.empty()) {
      // Float quadratic features about the shift cancel in the sums of a component far from it: those go
      // component by component, about their means; the others come from the product as usual.
      const Index D = stats.first.cols();
      Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(K, buffers.features.cols());
      add_transposed_product(buffers.resp, buffers.features, sums);
      for (Index k : density.far_components) sums.row(k).setZero();
      stats.first += sums.leftCols(D);
      stats.second += sums.rightCols(sums.cols() - D);
      componentwise_statistics<T>(chunk.middleRows(begin, rows), buffers.resp, density.means, shift, stats,
                                  componentwise, &density.far_components);
    } else {
      accumulate_linear_features<U>(buffers.features, buffers.resp, stats);
    }
  }
  if (buffers.double_sums.rows() == K) {  // the chunk's double sums join the statistics
    const Index D = stats.first.cols();
    stats.first += buffers.double_sums.leftCols(D);
    stats.second += buffers.double_sums.rightCols(buffers.double_sums.cols() - D);
    buffers.double_sums.resize(0, 0);
  }
  if (buffers.double_sums_transposed.cols() == K) {
    const Index D = stats.first.cols();
    stats.first += buffers.double_sums_transposed.topRows(D).transpose();
    stats.second += buffers.double_sums_transposed.bottomRows(buffers.double_sums_transposed.rows() - D).transpose();
    buffers.double_sums_transposed.resize(0, 0);
  }
}

template <typename U, typename T>
RowMatrix<T> blocks_log_joint(const DataRef<T>& chunk, const GaussianLogDensity<U>& density,
                              const Eigen::VectorXd& shift) {
  const Index block = block_rows(density), K = density.offsets.size();
  RowMatrix<T> log_joint(chunk.rows(), K);
  BlockBuffers<U> buffers;
  for (Index begin = 0; begin < chunk.rows(); begin += block) {
    const Index rows = std::min(block, chunk.rows() - begin);
    shift_rows<U>(chunk, begin, rows, shift, buffers);
    buffers.resp.resize(rows, K);
    block_log_joint(density, rows, buffers);
    log_joint.middleRows(begin, rows) = buffers.resp.template cast<T>();
  }
  return log_joint;
}

}  // namespace

template <typename T>
GaussianMixtureEStep<T>::GaussianMixtureEStep(const GaussianMixtureParams& params)
    : shift_(shift_of(params)), componentwise_(use_componentwise<T>(params.covariance_type, params.n_features())) {
  if (componentwise_)
    componentwise_density_ = prepare_componentwise<T>(params);
  else
    density_ = prepare_log_density<T>(broadcast_shared_variances(params), shift_);  // tied_diag: the diag kernel
}

template <typename T>
void GaussianMixtureEStep<T>::accumulate(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                                         GaussianMixtureStats& stats, Workspace& workspace, Index row_offset) const {
  if (componentwise_)
    componentwise_accumulate<T>(chunk, weights, componentwise_density_, shift_, stats, workspace.componentwise,
                                row_offset);
  else
    accumulate_blocks<T, T>(chunk, weights, density_, shift_, stats, workspace.buffers, workspace.componentwise,
                            row_offset);
}

template <typename T>
RowMatrix<T> GaussianMixtureEStep<T>::log_joint(const DataRef<T>& chunk) const {
  if (!componentwise_) return blocks_log_joint<T, T>(chunk, density_, shift_);
  RowMatrix<T> log_joint(chunk.rows(), componentwise_density_.offsets.size());
  detail::ComponentwiseBuffers<T> buffers;
  componentwise_log_joint<T>(chunk, componentwise_density_, buffers, log_joint);
  return log_joint;
}

template class GaussianMixtureEStep<float>;
template class GaussianMixtureEStep<double>;

}  // namespace entrosum
